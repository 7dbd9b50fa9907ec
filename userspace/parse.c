// SPDX-License-Identifier: GPL-2.0-only OR MIT
/*
 * Pure functions of dirtyctl: parsing of the target's untrusted text,
 * bitmap to extents, extents to output.  See parse.h for the contracts.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "parse.h"

/* ------------------------------------------------------------------ */
/* Tokens and numbers                                                  */
/* ------------------------------------------------------------------ */

static int is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n';
}

/* Next blank-separated token of *p: its start and length, 0 at the end. */
static size_t next_token(const char **p, const char **tok)
{
	const char *s = *p;
	size_t n = 0;

	while (is_blank(*s))
		s++;
	*tok = s;
	while (s[n] && !is_blank(s[n]))
		n++;
	*p = s + n;
	return n;
}

/* Strict decimal of exactly @len characters; 0 or -EINVAL. */
static int dec_to_u64(const char *s, size_t len, uint64_t *v)
{
	uint64_t x = 0;
	size_t i;

	if (len == 0)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		unsigned int d = (unsigned char)s[i] - '0';

		if (d > 9 || x > (UINT64_MAX - d) / 10)
			return -EINVAL;
		x = x * 10 + d;
	}
	*v = x;
	return 0;
}

/* Copies a token of allowed characters into a DT_TOKEN_MAX buffer. */
static int copy_token(char *dst, const char *tok, size_t len, const char *allowed)
{
	size_t i;

	if (len == 0 || len >= DT_TOKEN_MAX)
		return -EINVAL;
	for (i = 0; i < len; i++)
		if (!strchr(allowed, tok[i]))
			return -EINVAL;
	memcpy(dst, tok, len);
	dst[len] = '\0';
	return 0;
}

#define WORD_CHARS "abcdefghijklmnopqrstuvwxyz0123456789_"
#define UUID_CHARS "0123456789abcdefABCDEF-"

/* ------------------------------------------------------------------ */
/* Status line                                                         */
/* ------------------------------------------------------------------ */

static int is_dash(const char *tok, size_t len)
{
	return len == 1 && tok[0] == '-';
}

int dt_parse_frozen_id(const char *s, size_t len, int strict,
		       char out[DT_FROZEN_ID_LEN + 1])
{
	size_t i;

	if (len != DT_FROZEN_ID_LEN)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		char c = s[i];

		if (!strict && c >= 'A' && c <= 'F')
			c = (char)(c - 'A' + 'a');
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return -EINVAL;
		out[i] = c;
	}
	out[len] = '\0';
	return 0;
}

int dt_parse_checkpoint_reply(const char *reply, char id[DT_FROZEN_ID_LEN + 1])
{
	size_t len = strlen(reply);

	if (len && reply[len - 1] == '\n')
		len--;
	if (len == 0 && !reply[0])
		return 1;
	return dt_parse_frozen_id(reply, len, 1, id) ? -EBADMSG : 0;
}

/* Field 9: the frozen id, which must agree with the frozen count. */
static int parse_frozen_id_field(const char *tok, size_t len, struct dt_status *st)
{
	st->reports_frozen_id = 1;
	if (is_dash(tok, len))
		return st->has_frozen ? -EINVAL : 0;
	if (!st->has_frozen)
		return -EINVAL;
	return dt_parse_frozen_id(tok, len, 1, st->frozen_id);
}

/* Fields 10 to 12: the snapshot state and its store's numbers. */
static int parse_snapshot_fields(const char *const tok[], const size_t len[],
				 struct dt_status *st)
{
	if (!len[1] || !len[2])
		return -EINVAL;
	st->reports_snapshot = 1;
	if (is_dash(tok[0], len[0])) {
		memcpy(st->snapshot, "-", 2);
		return is_dash(tok[1], len[1]) && is_dash(tok[2], len[2]) ? 0 : -EINVAL;
	}
	if (copy_token(st->snapshot, tok[0], len[0], WORD_CHARS) ||
	    dec_to_u64(tok[1], len[1], &st->store_used_sectors) ||
	    dec_to_u64(tok[2], len[2], &st->store_sectors) ||
	    st->store_used_sectors > st->store_sectors)
		return -EINVAL;
	st->has_store = 1;
	return 0;
}

int dt_parse_status(const char *params, struct dt_status *st)
{
	const char *tok[DT_STATUS_FIELDS_MAX];
	size_t len[DT_STATUS_FIELDS_MAX];
	const char *p = params;
	uint64_t cs;
	int i;

	memset(st, 0, sizeof(*st));
	if (!params)
		return -EINVAL;
	for (i = 0; i < DT_STATUS_FIELDS_MAX; i++) {
		len[i] = next_token(&p, &tok[i]);
		if (!len[i] && i < DT_STATUS_FIELDS)
			return -EINVAL;
	}
	if (dec_to_u64(tok[0], len[0], &cs) || !dt_cluster_sectors_valid(cs))
		return -EINVAL;
	st->cluster_sectors = (uint32_t)cs;
	if (dec_to_u64(tok[1], len[1], &st->clusters) || !st->clusters ||
	    dec_to_u64(tok[2], len[2], &st->dirty_clusters) ||
	    st->dirty_clusters > st->clusters)
		return -EINVAL;
	if (is_dash(tok[3], len[3])) {
		st->has_frozen = 0;
	} else {
		if (dec_to_u64(tok[3], len[3], &st->frozen_clusters) ||
		    st->frozen_clusters > st->clusters)
			return -EINVAL;
		st->has_frozen = 1;
	}
	if (copy_token(st->mode, tok[4], len[4], WORD_CHARS) ||
	    copy_token(st->health, tok[5], len[5], WORD_CHARS) ||
	    copy_token(st->uuid, tok[6], len[6], UUID_CHARS) ||
	    dec_to_u64(tok[7], len[7], &st->sequence))
		return -EINVAL;
	i = DT_STATUS_FIELD_FROZEN_ID - 1;
	if (len[i] && parse_frozen_id_field(tok[i], len[i], st))
		return -EINVAL;
	i = DT_STATUS_FIELD_SNAPSHOT - 1;
	if (len[i] && parse_snapshot_fields(tok + i, len + i, st))
		return -EINVAL;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Geometry                                                            */
/* ------------------------------------------------------------------ */

int dt_geometry_check(const struct dt_geometry *g)
{
	if (!dt_cluster_sectors_valid(g->cluster_sectors) || !g->length)
		return -EINVAL;
	if (g->dev_sectors > (UINT64_MAX >> 9))
		return -EINVAL;
	if (g->start > g->dev_sectors || g->length > g->dev_sectors - g->start)
		return -EINVAL;
	if (g->clusters != dt_nr_clusters(g->length, g->cluster_sectors))
		return -EINVAL;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Paged bitmap replies                                                */
/* ------------------------------------------------------------------ */

/* Lowercase hex digit value + 1; 0 for anything else (NUL included). */
static const unsigned char hex_plus1[256] = {
	['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5,
	['5'] = 6, ['6'] = 7, ['7'] = 8, ['8'] = 9, ['9'] = 10,
	['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
};

/* Bit position (base64url digit) value + 1; 0 for anything else. */
static unsigned char pos_plus1[256];

static void init_pos_plus1(void)
{
	static const char digits[] = DT_POS_DIGITS;
	unsigned int i;

	if (pos_plus1[(unsigned char)digits[0]])
		return;
	for (i = 0; i < 64; i++)
		pos_plus1[(unsigned char)digits[i]] = (unsigned char)(i + 1);
}

/* A decimal field of a reply header, ended by a space or NUL. */
static int reply_field(const char **p, uint64_t *v)
{
	const char *s = *p;
	size_t n = 0;

	while (s[n] >= '0' && s[n] <= '9')
		n++;
	if (n > 20 || dec_to_u64(s, n, v))
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

	init_pos_plus1();
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

/* ------------------------------------------------------------------ */
/* Bitmap arithmetic                                                   */
/* ------------------------------------------------------------------ */

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

/* ------------------------------------------------------------------ */
/* Buffered output                                                     */
/* ------------------------------------------------------------------ */

#define WRITER_FD_BUFFER	(1U << 20)
#define WRITER_MEM_BUFFER	4096U
#define LINE_MAX_BYTES		128U	/* longest line a dump writes at once */

int dt_writer_init(struct dt_writer *w, int fd)
{
	memset(w, 0, sizeof(*w));
	w->fd = fd;
	w->cap = fd >= 0 ? WRITER_FD_BUFFER : WRITER_MEM_BUFFER;
	w->buf = malloc(w->cap);
	if (!w->buf)
		return w->err = -ENOMEM;
	return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t r = write(fd, p, n);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

int dt_writer_flush(struct dt_writer *w)
{
	if (w->fd >= 0 && w->len && !w->err)
		w->err = write_all(w->fd, w->buf, w->len);
	if (w->fd >= 0)
		w->len = 0;
	return w->err;
}

/* Room for @n more bytes at the end of the buffer, or NULL after an error. */
static char *writer_room(struct dt_writer *w, size_t n)
{
	if (w->err)
		return NULL;
	if (w->cap - w->len >= n)
		return w->buf + w->len;
	if (w->fd >= 0) {
		if (dt_writer_flush(w))
			return NULL;
		if (w->cap >= n)
			return w->buf;
	}
	while (w->cap - w->len < n) {
		size_t cap = w->cap * 2;
		char *buf = realloc(w->buf, cap);

		if (!buf) {
			w->err = -ENOMEM;
			return NULL;
		}
		w->buf = buf;
		w->cap = cap;
	}
	return w->buf + w->len;
}

void dt_writer_put(struct dt_writer *w, const char *s, size_t n)
{
	char *p = writer_room(w, n);

	if (p) {
		memcpy(p, s, n);
		w->len += n;
	}
}

void dt_writer_puts(struct dt_writer *w, const char *s)
{
	dt_writer_put(w, s, strlen(s));
}

void dt_writer_free(struct dt_writer *w)
{
	free(w->buf);
	w->buf = NULL;
	w->len = w->cap = 0;
}

/* ------------------------------------------------------------------ */
/* Fast integer formatting                                             */
/* ------------------------------------------------------------------ */

static const char digit_pairs[201] =
	"00010203040506070809101112131415161718192021222324252627282930313233343536373839"
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879"
	"8081828384858687888990919293949596979899";

static const uint64_t powers_of_10[20] = {
	1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL,
	10000000ULL, 100000000ULL, 1000000000ULL, 10000000000ULL,
	100000000000ULL, 1000000000000ULL, 10000000000000ULL,
	100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL,
	100000000000000000ULL, 1000000000000000000ULL, 10000000000000000000ULL,
};

/* Digits are written in place from the end: no temporary, no memcpy call. */
size_t dt_u64_to_dec(char *p, uint64_t v)
{
	unsigned int t, n;
	char *e;

	if (v < 10) {
		*p = (char)('0' + v);
		return 1;
	}
	/* log10 from log2: 1233 / 4096 ~ log10(2). */
	t = ((64U - (unsigned int)__builtin_clzll(v)) * 1233U) >> 12;
	n = t + 1 - (v < powers_of_10[t]);
	e = p + n;
	while (v >= 100) {
		unsigned int d = (unsigned int)(v % 100);

		v /= 100;
		e -= 2;
		e[0] = digit_pairs[2 * d];
		e[1] = digit_pairs[2 * d + 1];
	}
	if (v >= 10) {
		e[-2] = digit_pairs[2 * v];
		e[-1] = digit_pairs[2 * v + 1];
	} else {
		e[-1] = (char)('0' + v);
	}
	return n;
}

/* "0x" and at least 8 uppercase hex digits, as ddrescue writes them. */
static size_t u64_to_ddrescue_hex(char *p, uint64_t v)
{
	static const char hex[] = "0123456789ABCDEF";
	unsigned int digits = v >> 32 ? (67U - (unsigned int)__builtin_clzll(v)) / 4 : 8;
	char *e = p + 2 + digits;

	p[0] = '0';
	p[1] = 'x';
	while (e > p + 2) {
		*--e = hex[v & 0xf];
		v >>= 4;
	}
	return 2 + digits;
}

/* ------------------------------------------------------------------ */
/* dump                                                                */
/* ------------------------------------------------------------------ */

int dt_format_from_name(const char *name, enum dt_format *fmt)
{
	static const char *const names[] = {
		[DT_FORMAT_RANGES] = "ranges",
		[DT_FORMAT_BYTES] = "bytes",
		[DT_FORMAT_JSON] = "json",
		[DT_FORMAT_DDRESCUE] = "ddrescue",
	};
	unsigned int i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcmp(name, names[i])) {
			*fmt = (enum dt_format)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* Puts a ddrescue mapfile comment line, control characters replaced. */
static void put_comment(struct dt_writer *w, const char *prefix, const char *s)
{
	char c[1];

	dt_writer_puts(w, prefix);
	for (; *s; s++) {
		c[0] = ((unsigned char)*s < 0x20 || *s == 0x7f) ? '?' : *s;
		dt_writer_put(w, c, 1);
	}
	dt_writer_put(w, "\n", 1);
}

static void put_ddrescue_line(struct dt_writer *w, uint64_t start, uint64_t nr,
			      char status)
{
	char *p = writer_room(w, LINE_MAX_BYTES), *s = p;

	if (!p)
		return;
	p += u64_to_ddrescue_hex(p, start << 9);
	*p++ = ' ';
	*p++ = ' ';
	p += u64_to_ddrescue_hex(p, nr << 9);
	*p++ = ' ';
	*p++ = ' ';
	*p++ = status;
	*p++ = '\n';
	w->len += (size_t)(p - s);
}

void dt_dump_begin(struct dt_dump *d)
{
	struct dt_writer *w = d->w;
	char num[24];
	char *q;

	d->pos = 0;
	d->extents = 0;
	switch (d->format) {
	case DT_FORMAT_RANGES:
	case DT_FORMAT_BYTES:
		break;
	case DT_FORMAT_JSON:
		q = dt_json_quote(d->device);
		if (!q) {
			w->err = w->err ? w->err : -ENOMEM;
			return;
		}
		dt_writer_puts(w, "{\"device\": ");
		dt_writer_puts(w, q);
		dt_writer_puts(w, ", \"cluster_sectors\": ");
		dt_writer_put(w, num, dt_u64_to_dec(num, d->geo->cluster_sectors));
		dt_writer_puts(w, ", \"extents\": [");
		free(q);
		break;
	case DT_FORMAT_DDRESCUE:
		put_comment(w, "# Mapfile. Created by dirtyctl from dm-dirtytrack device ",
			    d->device);
		if (d->comment)
			put_comment(w, "# ", d->comment);
		dt_writer_puts(w, "# current_pos  current_status  current_pass\n"
				  "0x00000000     +               1\n"
				  "#      pos        size  status\n");
		break;
	}
}

void dt_dump_extent(struct dt_dump *d, uint64_t start, uint64_t nr)
{
	struct dt_writer *w = d->w;
	char *p, *s;

	if (d->format == DT_FORMAT_DDRESCUE) {
		if (start > d->pos)
			put_ddrescue_line(w, d->pos, start - d->pos, '?');
		put_ddrescue_line(w, start, nr, '+');
		d->pos = start + nr;
		d->extents++;
		return;
	}
	p = s = writer_room(w, LINE_MAX_BYTES);
	if (!p)
		return;
	switch (d->format) {
	case DT_FORMAT_RANGES:
		p += dt_u64_to_dec(p, start);
		*p++ = ' ';
		p += dt_u64_to_dec(p, nr);
		*p++ = '\n';
		break;
	case DT_FORMAT_BYTES:
		p += dt_u64_to_dec(p, start << 9);
		*p++ = ' ';
		p += dt_u64_to_dec(p, nr << 9);
		*p++ = '\n';
		break;
	case DT_FORMAT_JSON:
		if (d->extents) {
			memcpy(p, ",\n  {\"offset\": ", 15);
			p += 15;
		} else {
			memcpy(p, "\n  {\"offset\": ", 14);
			p += 14;
		}
		p += dt_u64_to_dec(p, start << 9);
		memcpy(p, ", \"length\": ", 12);
		p += 12;
		p += dt_u64_to_dec(p, nr << 9);
		*p++ = '}';
		break;
	case DT_FORMAT_DDRESCUE:
		break;
	}
	w->len += (size_t)(p - s);
	d->extents++;
}

int dt_dump_end(struct dt_dump *d)
{
	switch (d->format) {
	case DT_FORMAT_RANGES:
	case DT_FORMAT_BYTES:
		break;
	case DT_FORMAT_JSON:
		dt_writer_puts(d->w, d->extents ? "\n]}\n" : "]}\n");
		break;
	case DT_FORMAT_DDRESCUE:
		if (d->pos < d->geo->dev_sectors)
			put_ddrescue_line(d->w, d->pos, d->geo->dev_sectors - d->pos, '?');
		break;
	}
	return dt_writer_flush(d->w);
}

/* Clusters to device sectors, the last cluster clipped to the target. */
static int dump_cluster_extent(void *ctx, uint64_t first, uint64_t nr)
{
	struct dt_dump *d = ctx;
	const struct dt_geometry *g = d->geo;
	uint64_t from = first * g->cluster_sectors;
	uint64_t to = (first + nr) * g->cluster_sectors;

	if (to > g->length)
		to = g->length;
	dt_dump_extent(d, g->start + from, to - from);
	return d->w->err;
}

int dt_dump_bitmap(struct dt_dump *d, const uint64_t *words)
{
	int ret;

	dt_dump_begin(d);
	ret = dt_walk_extents(words, d->geo->clusters, dump_cluster_extent, d);
	if (ret)
		return ret;
	return dt_dump_end(d);
}

/* ------------------------------------------------------------------ */
/* status and JSON output                                              */
/* ------------------------------------------------------------------ */

void dt_json_begin(struct dt_json *j, FILE *f)
{
	j->f = f;
	j->members = 0;
	fputc('{', f);
}

void dt_json_key(struct dt_json *j, const char *key)
{
	fprintf(j->f, "%s\n  \"%s\": ", j->members++ ? "," : "", key);
}

void dt_json_u64(struct dt_json *j, const char *key, uint64_t v)
{
	dt_json_key(j, key);
	fprintf(j->f, "%llu", (unsigned long long)v);
}

void dt_json_u64_or_null(struct dt_json *j, const char *key, int present, uint64_t v)
{
	if (present) {
		dt_json_u64(j, key, v);
	} else {
		dt_json_key(j, key);
		fputs("null", j->f);
	}
}

void dt_json_bool(struct dt_json *j, const char *key, int v)
{
	dt_json_key(j, key);
	fputs(v ? "true" : "false", j->f);
}

int dt_json_str(struct dt_json *j, const char *key, const char *s)
{
	char *q = dt_json_quote(s);

	if (!q)
		return -ENOMEM;
	dt_json_key(j, key);
	fputs(q, j->f);
	free(q);
	return 0;
}

void dt_json_null(struct dt_json *j, const char *key)
{
	dt_json_key(j, key);
	fputs("null", j->f);
}

int dt_json_str_or_null(struct dt_json *j, const char *key, const char *s)
{
	if (s && *s)
		return dt_json_str(j, key, s);
	dt_json_null(j, key);
	return 0;
}

void dt_json_array_begin(struct dt_json *j, const char *key)
{
	dt_json_key(j, key);
	fputc('[', j->f);
	j->elements = 0;
}

int dt_json_array_str(struct dt_json *j, const char *s)
{
	char *q = dt_json_quote(s);

	if (!q)
		return -ENOMEM;
	fprintf(j->f, "%s%s", j->elements++ ? ", " : "", q);
	free(q);
	return 0;
}

void dt_json_array_end(struct dt_json *j)
{
	fputc(']', j->f);
}

void dt_json_end(struct dt_json *j)
{
	fputs("\n}\n", j->f);
}

int dt_print_status_json(FILE *f, const struct dt_status_report *r)
{
	const struct dt_status *st = r->st;
	struct dt_json j;

	dt_json_begin(&j, f);
	if (dt_json_str(&j, "device", r->name) || dt_json_str(&j, "uuid", st->uuid))
		return -ENOMEM;
	dt_json_u64(&j, "sequence", st->sequence);
	dt_json_u64(&j, "cluster_sectors", st->cluster_sectors);
	dt_json_u64(&j, "clusters", st->clusters);
	dt_json_u64(&j, "dirty_clusters", st->dirty_clusters);
	dt_json_u64_or_null(&j, "frozen_clusters", st->has_frozen, st->frozen_clusters);
	if (dt_json_str(&j, "mode", st->mode) || dt_json_str(&j, "health", st->health))
		return -ENOMEM;
	dt_json_bool(&j, "suspended", r->suspended);
	dt_json_u64(&j, "start_sector", r->geo->start);
	dt_json_u64(&j, "length_sectors", r->geo->length);
	dt_json_u64(&j, "size_bytes", r->geo->length << 9);
	if (dt_json_str_or_null(&j, "frozen_id", st->frozen_id))
		return -ENOMEM;
	if (st->reports_snapshot) {
		if (dt_json_str_or_null(&j, "snapshot", strcmp(st->snapshot, "-") ?
					st->snapshot : NULL))
			return -ENOMEM;
		dt_json_u64_or_null(&j, "store_used_sectors", st->has_store,
				    st->store_used_sectors);
		dt_json_u64_or_null(&j, "store_sectors", st->has_store, st->store_sectors);
	}
	dt_json_end(&j);
	return 0;
}

/* One KEY=value line, the value quoted for the shell. */
static void export_str(FILE *f, const char *key, const char *value)
{
	fprintf(f, "%s=", key);
	dt_shell_quote_put(f, value);
	fputc('\n', f);
}

static void export_u64(FILE *f, const char *key, int present, uint64_t v)
{
	if (present)
		fprintf(f, "%s=%llu\n", key, (unsigned long long)v);
	else
		fprintf(f, "%s=\n", key);
}

void dt_print_status_export(FILE *f, const struct dt_status_report *r)
{
	const struct dt_status *st = r->st;

	export_str(f, "DEVICE", r->name);
	export_str(f, "UUID", st->uuid);
	export_u64(f, "SEQUENCE", 1, st->sequence);
	export_u64(f, "CLUSTER_SECTORS", 1, st->cluster_sectors);
	export_u64(f, "CLUSTERS", 1, st->clusters);
	export_u64(f, "DIRTY_CLUSTERS", 1, st->dirty_clusters);
	export_u64(f, "FROZEN_CLUSTERS", st->has_frozen, st->frozen_clusters);
	export_str(f, "FROZEN_ID", st->frozen_id);
	export_str(f, "MODE", st->mode);
	export_str(f, "HEALTH", st->health);
	if (st->reports_snapshot) {
		export_str(f, "SNAPSHOT", st->snapshot);
		export_u64(f, "STORE_USED_SECTORS", st->has_store, st->store_used_sectors);
		export_u64(f, "STORE_SECTORS", st->has_store, st->store_sectors);
	}
}

uint64_t dt_clusters_bytes(const struct dt_geometry *g, uint64_t n)
{
	uint64_t sectors = n * g->cluster_sectors;

	return (sectors < g->length ? sectors : g->length) << 9;
}

static const char *health_explained(const char *health)
{
	if (!strcmp(health, DT_HEALTH_UNCLEAN))
		return "the device was not shut down cleanly: every cluster counts as "
		       "changed until the next clear or commit";
	if (!strcmp(health, DT_HEALTH_METADATA_ERROR))
		return "the metadata device failed: tracking goes on in memory, and "
		       "every cluster will count as changed after the next activation";
	return NULL;
}

void dt_print_status_human(FILE *f, const struct dt_status_report *r, int exact)
{
	const struct dt_status *st = r->st;
	char changed[DT_HUMAN_MAX], size[DT_HUMAN_MAX], cluster[DT_HUMAN_MAX];
	char frozen[DT_HUMAN_MAX];
	uint64_t per_cell;
	const char *why;
	size_t width, i;

	fprintf(f, "%s: %s of %s changed (%llu of %llu clusters of %s), frozen: ", r->name,
		dt_size_or_bytes(dt_clusters_bytes(r->geo, st->dirty_clusters), exact, changed),
		dt_size_or_bytes(r->geo->length << 9, exact, size),
		(unsigned long long)st->dirty_clusters, (unsigned long long)st->clusters,
		dt_size_or_bytes((uint64_t)st->cluster_sectors << 9, exact, cluster));
	if (st->has_frozen)
		fprintf(f, "%s (%llu clusters)",
			dt_size_or_bytes(dt_clusters_bytes(r->geo, st->frozen_clusters), exact,
					 frozen),
			(unsigned long long)st->frozen_clusters);
	else
		fputs("none", f);
	fprintf(f, ", mode %s, health %s, sequence %llu%s\n", st->mode, st->health,
		(unsigned long long)st->sequence, r->suspended ? ", suspended" : "");
	fprintf(f, "uuid: %s\n", st->uuid);
	if (st->frozen_id[0])
		fprintf(f, "frozen id: %s\n", st->frozen_id);
	if (st->has_store)
		fprintf(f, "snapshot: %s, store %s of %s used\n", st->snapshot,
			dt_size_or_bytes(st->store_used_sectors << 9, exact, changed),
			dt_size_or_bytes(st->store_sectors << 9, exact, size));
	else if (st->reports_snapshot)
		fputs("snapshot: none (no snapshot store in the table)\n", f);
	why = health_explained(st->health);
	if (why)
		fprintf(f, "note: %s\n", why);
	if (!r->map) {
		fprintf(f, "map: unavailable (%s)\n", r->map_error ? r->map_error : "unknown");
		return;
	}
	width = strlen(r->map);
	per_cell = (st->clusters + width - 1) / width;
	fprintf(f, "map: %zu cells of %s%llu cluster%s; %s\n", width,
		st->clusters % width ? "about " : "", (unsigned long long)per_cell,
		per_cell == 1 ? "" : "s", DT_MAP_LEGEND);
	for (i = 0; i < width; i += DT_MAP_LINE)
		fprintf(f, "  |%.*s|\n", DT_MAP_LINE, r->map + i);
}

/* ------------------------------------------------------------------ */
/* Text helpers                                                        */
/* ------------------------------------------------------------------ */

char *dt_size_to_human(uint64_t bytes, char buf[DT_HUMAN_MAX])
{
	static const char *const units[] = {
		"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"
	};
	unsigned int u = 0;
	uint64_t unit, whole, tenths;

	while (u < 6 && (bytes >> (10 * (u + 1))))
		u++;
	if (u == 0) {
		snprintf(buf, DT_HUMAN_MAX, "%llu B", (unsigned long long)bytes);
		return buf;
	}
	unit = 1ULL << (10 * u);
	whole = bytes >> (10 * u);
	tenths = ((bytes & (unit - 1)) * 10 + unit / 2) / unit;
	if (tenths == 10) {
		whole++;
		tenths = 0;
	}
	if (whole == 1024 && u < 6) {
		u++;
		whole = 1;
	}
	/* whole < 1024 here except for EiB, which tops out at 16. */
	if (tenths)
		snprintf(buf, DT_HUMAN_MAX, "%u.%u %s", (unsigned int)whole,
			 (unsigned int)tenths, units[u]);
	else
		snprintf(buf, DT_HUMAN_MAX, "%u %s", (unsigned int)whole, units[u]);
	return buf;
}

const char *dt_size_or_bytes(uint64_t bytes, int exact, char buf[DT_HUMAN_MAX])
{
	if (!exact)
		return dt_size_to_human(bytes, buf);
	snprintf(buf, DT_HUMAN_MAX, "%llu bytes", (unsigned long long)bytes);
	return buf;
}

/* Leading digits of @s into *v; their count, or -EINVAL/-ERANGE. */
static int leading_u64(const char *s, uint64_t *v)
{
	uint64_t x = 0;
	int n = 0;

	while (s[n] >= '0' && s[n] <= '9') {
		unsigned int d = (unsigned int)(s[n] - '0');

		if (x > (UINT64_MAX - d) / 10)
			return -ERANGE;
		x = x * 10 + d;
		n++;
	}
	if (!n)
		return -EINVAL;
	*v = x;
	return n;
}

static const char *number_problem(const char *s, int err)
{
	if (!*s)
		return "is empty";
	if (*s == '-')
		return "must not be negative";
	if (err == -ERANGE)
		return "is too large";
	return "is not a number";
}

const char *dt_parse_u64(const char *s, uint64_t *v)
{
	int n = leading_u64(s, v);

	if (n < 0)
		return number_problem(s, n);
	if (s[n])
		return "is not a number";
	return NULL;
}

const char *dt_parse_sectors(const char *s, uint64_t *sectors)
{
	static const struct {
		const char *suffix;
		unsigned int base;	/* 1024 or 1000 */
		unsigned int power;
	} suffixes[] = {
		{ "k", 1024, 1 }, { "kib", 1024, 1 }, { "kb", 1000, 1 },
		{ "m", 1024, 2 }, { "mib", 1024, 2 }, { "mb", 1000, 2 },
		{ "g", 1024, 3 }, { "gib", 1024, 3 }, { "gb", 1000, 3 },
		{ "t", 1024, 4 }, { "tib", 1024, 4 }, { "tb", 1000, 4 },
		{ "p", 1024, 5 }, { "pib", 1024, 5 }, { "pb", 1000, 5 },
		{ "e", 1024, 6 }, { "eib", 1024, 6 }, { "eb", 1000, 6 },
	};
	uint64_t v, mult = 1;
	const char *suffix;
	unsigned int i, k;
	int n = leading_u64(s, &v);

	if (n < 0)
		return number_problem(s, n);
	suffix = s + n;
	if (!*suffix || !strcasecmp(suffix, "s")) {
		*sectors = v;
		return NULL;
	}
	for (i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++)
		if (!strcasecmp(suffix, suffixes[i].suffix))
			break;
	if (i == sizeof(suffixes) / sizeof(suffixes[0]))
		return "has an unknown suffix (use s, K, M, G, T, P, E, KiB, KB, ...)";
	for (k = 0; k < suffixes[i].power; k++)
		mult *= suffixes[i].base;
	if (v > UINT64_MAX / mult)
		return "is too large";
	v *= mult;
	if (v % 512)
		return "is not a multiple of 512 bytes";
	*sectors = v / 512;
	return NULL;
}

void dt_format_uuid(const unsigned char uuid[DT_UUID_SIZE], char out[DT_UUID_STR_LEN])
{
	static const char hex[] = "0123456789abcdef";
	unsigned int i;
	char *p = out;

	for (i = 0; i < DT_UUID_SIZE; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*p++ = '-';
		*p++ = hex[uuid[i] >> 4];
		*p++ = hex[uuid[i] & 0xf];
	}
	*p = '\0';
}

size_t dt_utf8_len(const unsigned char *s)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t n, i;

	if (c < 0x80)
		return c ? 1 : 0;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		if (c == 0xe0)
			lo = 0xa0;	/* no overlong forms */
		else if (c == 0xed)
			hi = 0x9f;	/* no UTF-16 surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		if (c == 0xf0)
			lo = 0x90;	/* no overlong forms */
		else if (c == 0xf4)
			hi = 0x8f;	/* nothing above U+10FFFF */
	} else {
		return 0;
	}
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

char *dt_utf8_sanitize(const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t n = strlen(s);
	char *out, *p;

	if (n > (SIZE_MAX - 1) / 3)
		return NULL;
	out = malloc(n * 3 + 1);
	if (!out)
		return NULL;
	for (p = out; *u; ) {
		size_t len = dt_utf8_len(u);

		if (len) {
			memcpy(p, u, len);
			p += len;
			u += len;
		} else {
			memcpy(p, DT_UTF8_REPLACEMENT, 3);
			p += 3;
			u++;
		}
	}
	*p = '\0';
	return out;
}

char *dt_json_quote(const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t n = strlen(s);
	char *out, *p;

	if (n > (SIZE_MAX - 3) / 6)
		return NULL;
	out = malloc(n * 6 + 3);
	if (!out)
		return NULL;
	p = out;
	*p++ = '"';
	while (*u) {
		unsigned char c = *u;
		size_t len;

		switch (c) {
		case '"':  *p++ = '\\'; *p++ = '"'; u++; continue;
		case '\\': *p++ = '\\'; *p++ = '\\'; u++; continue;
		case '\n': *p++ = '\\'; *p++ = 'n'; u++; continue;
		case '\t': *p++ = '\\'; *p++ = 't'; u++; continue;
		case '\r': *p++ = '\\'; *p++ = 'r'; u++; continue;
		}
		if (c < 0x20 || c == 0x7f) {
			p += sprintf(p, "\\u%04x", c);
			u++;
			continue;
		}
		len = dt_utf8_len(u);
		if (!len) {
			memcpy(p, "\\ufffd", 6);	/* a byte that is not UTF-8 */
			p += 6;
			u++;
			continue;
		}
		memcpy(p, u, len);
		p += len;
		u += len;
	}
	*p++ = '"';
	*p = '\0';
	return out;
}

void dt_shell_quote_put(FILE *f, const char *s)
{
	const unsigned char *u = (const unsigned char *)s;

	for (; *u; u++) {
		if (*u < 0x20 || *u == 0x7f)
			fprintf(f, "\\\\x%02x", *u);
		else if (*u >= 0x80 || strchr(DT_SHELL_SAFE, *u))
			fputc(*u, f);
		else
			fprintf(f, "\\%c", *u);
	}
}

/* What an errno of the target means; verb NULL: for every message. */
static const struct {
	int err;
	const char *verb;
	const char *sentence;
} message_errors[] = {
	{ ENXIO, NULL, "no such device" },
	{ EBUSY, NULL, "device is suspended; resume it first" },
	{ EEXIST, DT_MSG_CHECKPOINT,
	  "a checkpoint is already frozen; commit or roll it back first" },
	{ ENOENT, DT_MSG_COMMIT, "nothing is frozen" },
	{ ENOENT, DT_MSG_ROLLBACK, "nothing is frozen" },
	{ ENOENT, DT_MSG_BITMAP, "nothing is frozen" },
	{ ERANGE, DT_MSG_MARK, "extent beyond the end of the device" },
	{ EINVAL, NULL, "the target rejected the message (invalid argument)" },
	{ EAGAIN, DT_MSG_BITMAP, "bitmap changed during dump, try again" },
	{ EBADMSG, NULL, "malformed reply from target" },
};

const char *dt_message_error(const char *verb, int err)
{
	unsigned int i;

	for (i = 0; i < sizeof(message_errors) / sizeof(message_errors[0]); i++)
		if (message_errors[i].err == err &&
		    (!message_errors[i].verb || !strcmp(message_errors[i].verb, verb)))
			return message_errors[i].sentence;
	return NULL;
}
