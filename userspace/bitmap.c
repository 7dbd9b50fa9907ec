// SPDX-License-Identifier: GPL-2.0-only OR MIT
/*
 * The paged bitmap replies of the target decoded into 64-bit groups,
 * and the arithmetic on them: counting, walking extents, the status map.
 * See bitmap.h for the contracts.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bitmap.h"
#include "strutils.h"

/* Lowercase hex digit value + 1; 0 for anything else (NUL included). */
static const unsigned char hex_plus1[256] = {
	['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5,
	['5'] = 6, ['6'] = 7, ['7'] = 8, ['8'] = 9, ['9'] = 10,
	['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
};

/* Bit position (base64url digit, DT_POS_DIGITS) value + 1; 0 for anything else. */
static const unsigned char pos_plus1[256] = {
	['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5, ['F'] = 6, ['G'] = 7,
	['H'] = 8, ['I'] = 9, ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13,
	['N'] = 14, ['O'] = 15, ['P'] = 16, ['Q'] = 17, ['R'] = 18, ['S'] = 19,
	['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24, ['Y'] = 25,
	['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30, ['e'] = 31,
	['f'] = 32, ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36, ['k'] = 37,
	['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41, ['p'] = 42, ['q'] = 43,
	['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48, ['w'] = 49,
	['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55,
	['3'] = 56, ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61,
	['9'] = 62, ['-'] = 63, ['_'] = 64,
};

/* A decimal field of a reply header, ended by a space or NUL. */
static int reply_field(const char **p, uint64_t *v)
{
	const char *s = *p;
	size_t n = 0;

	while (s[n] >= '0' && s[n] <= '9')
		n++;
	if (n > 20 || dt_dec_to_u64(s, n, v))
		return -EBADMSG;
	*p = s + n;
	return 0;
}

/* One group: 16 hex digits, byte 0 first, each byte high nibble first. */
static int decode_group(const char *s, uint64_t *word)
{
	uint64_t w = 0;
	unsigned int i;

	for (i = 0; i < 2 * DT_GROUP_BYTES; i += 2) {
		unsigned int hi = hex_plus1[(unsigned char)s[i]];
		unsigned int lo;

		if (!hi)
			return -EBADMSG;
		lo = hex_plus1[(unsigned char)s[i + 1]];
		if (!lo)
			return -EBADMSG;
		w |= (uint64_t)(((hi - 1) << 4) | (lo - 1)) << (i * 4);
	}
	*word = w;
	return 0;
}

/* A zero run "z<hex>.", at most 16 digits, 1 <= n <= @room; returns its length. */
static int decode_zero_run(const char **p, uint64_t room, uint64_t *n)
{
	const char *s = *p + 1;
	uint64_t v = 0;
	unsigned int i;

	for (i = 0; hex_plus1[(unsigned char)s[i]]; i++) {
		if (i == 16)
			return -EBADMSG;
		v = (v << 4) | (hex_plus1[(unsigned char)s[i]] - 1U);
	}
	if (i == 0 || s[i] != DT_ZERO_RUN_END || v == 0 || v > room)
		return -EBADMSG;
	*p = s + i + 1;
	*n = v;
	return 0;
}

/*
 * A sparse group: DT_SPARSE_MARK + k - 1, then k bit positions in strictly
 * ascending order, one base64url digit each.
 */
static int decode_sparse(const char **p, uint64_t *word)
{
	const char *s = *p;
	unsigned int k = (unsigned int)(*s - DT_SPARSE_MARK) + 1, i;
	uint64_t w = 0;
	int prev = -1;

	for (i = 1; i <= k; i++) {
		int pos = pos_plus1[(unsigned char)s[i]] - 1;

		if (pos <= prev)	/* not a digit (-1), or not ascending */
			return -EBADMSG;
		w |= UINT64_C(1) << pos;
		prev = pos;
	}
	*p = s + k + 1;
	*word = w;
	return 0;
}

int dt_decode_reply(const char *reply, uint64_t first_group, uint64_t clusters,
		    uint64_t *words, struct dt_reply *r)
{
	uint64_t ngroups = dt_groups(clusters);
	const char *p = reply;
	uint64_t g, end, n;
	unsigned int tail;

	if (!p || reply_field(&p, &r->epoch) || *p++ != ' ' ||
	    reply_field(&p, &r->first_group) || *p++ != ' ' ||
	    reply_field(&p, &r->nr_groups))
		return -EBADMSG;
	if (r->first_group != first_group)
		return -EBADMSG;
	if (r->nr_groups == 0) {
		if (*p == ' ')
			p++;
	} else {
		if (first_group >= ngroups || r->nr_groups > ngroups - first_group)
			return -EBADMSG;
		if (*p++ != ' ')
			return -EBADMSG;
		end = first_group + r->nr_groups;
		for (g = first_group; g < end; ) {
			if (*p == DT_ZERO_RUN) {
				if (decode_zero_run(&p, end - g, &n))
					return -EBADMSG;
				memset(words + g, 0, n * sizeof(*words));
				g += n;
			} else if (*p >= DT_SPARSE_MARK &&
				   *p < DT_SPARSE_MARK + (int)DT_SPARSE_MAX) {
				if (decode_sparse(&p, &words[g]))
					return -EBADMSG;
				g++;
			} else {
				if (decode_group(p, &words[g]))
					return -EBADMSG;
				p += 2 * DT_GROUP_BYTES;
				g++;
			}
		}
		tail = clusters % DT_GROUP_CLUSTERS;
		if (end == ngroups && tail && (words[ngroups - 1] >> tail))
			return -EBADMSG;
	}
	if (*p == '\n')
		p++;
	return *p ? -EBADMSG : 0;
}

int dt_read_bitmap(dt_fetch_fn fetch, void *ctx, uint64_t clusters,
		   uint64_t *words)
{
	uint64_t ngroups = dt_groups(clusters);
	uint64_t g = 0, epoch = 0;
	int have_epoch = 0, restarted = 0;
	struct dt_reply r;
	char *reply;
	int ret;

	while (g < ngroups) {
		reply = NULL;
		ret = fetch(ctx, g, &reply);
		if (ret)
			return ret;
		ret = dt_decode_reply(reply, g, clusters, words, &r);
		free(reply);
		if (ret)
			return ret;
		if (have_epoch && r.epoch != epoch) {
			/* The sets were swapped, cleared or merged: start again. */
			if (restarted)
				return -EAGAIN;
			restarted = 1;
			have_epoch = 0;
			g = 0;
			continue;
		}
		epoch = r.epoch;
		have_epoch = 1;
		if (r.nr_groups == 0)
			return -EBADMSG;	/* the bitmap ends before its last group */
		g += r.nr_groups;
	}
	return 0;
}

static inline uint64_t mask_from(unsigned int bit)
{
	return bit >= 64 ? 0 : ~0ULL << bit;
}

uint64_t dt_count_bits(const uint64_t *words, uint64_t from, uint64_t to)
{
	uint64_t n = 0, g, last;

	if (from >= to)
		return 0;
	g = from / 64;
	last = (to - 1) / 64;
	if (g == last)
		return __builtin_popcountll(words[g] & mask_from(from % 64) &
					    ~mask_from((to - 1) % 64 + 1));
	n = __builtin_popcountll(words[g] & mask_from(from % 64));
	for (g++; g < last; g++)
		n += __builtin_popcountll(words[g]);
	return n + __builtin_popcountll(words[last] & ~mask_from((to - 1) % 64 + 1));
}

int dt_walk_extents(const uint64_t *words, uint64_t clusters,
		    dt_extent_fn fn, void *ctx)
{
	uint64_t ngroups = dt_groups(clusters);
	uint64_t g, run_start = 0;
	unsigned int tail = clusters % 64;
	int in_run = 0;
	int ret;

	for (g = 0; g < ngroups; g++) {
		uint64_t w = words[g];
		uint64_t base = g * 64;
		unsigned int pos = 0;

		if (g == ngroups - 1 && tail)
			w &= ~mask_from(tail);
		if (in_run ? w == ~0ULL : w == 0)
			continue;
		for (;;) {
			uint64_t m;

			if (!in_run) {
				m = w & mask_from(pos);
				if (!m)
					break;
				pos = __builtin_ctzll(m);
				run_start = base + pos;
				in_run = 1;
			}
			m = ~w & mask_from(pos);
			if (!m)
				break;
			pos = __builtin_ctzll(m);
			ret = fn(ctx, run_start, base + pos - run_start);
			if (ret)
				return ret;
			in_run = 0;
		}
	}
	return in_run ? fn(ctx, run_start, clusters - run_start) : 0;
}

void dt_dirty_map(const uint64_t *words, uint64_t clusters, unsigned int width,
		  char *out)
{
	unsigned int i;

	for (i = 0; i < width; i++) {
		uint64_t from = clusters * i / width;
		uint64_t to = clusters * (i + 1) / width;
		uint64_t size = to - from;
		uint64_t n = dt_count_bits(words, from, to);

		if (n == 0)
			out[i] = ' ';
		else if (n * 4 < size)
			out[i] = '.';
		else if (n * 4 < size * 3)
			out[i] = ':';
		else
			out[i] = '#';
	}
	out[width] = '\0';
}
