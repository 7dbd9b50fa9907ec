// SPDX-License-Identifier: GPL-2.0-only OR MIT
/*
 * libFuzzer harness for dt-copy-extents' extent-list parser
 * (dt_extent_parse_line), which reads whatever is piped into the copier.
 *
 * The input is split into lines at '\n' as the copier's getline() loop
 * does.  Each line's result is checked against a plain oracle (digits,
 * one space, digits, in range), and every extent that parses is written
 * by dump's bytes format (when sector-aligned, as dump's extents are)
 * and must parse back to the same offset and length.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dump.h"
#include "extents.h"

/* The oracle: 1 for an extent, 0 for a blank or comment line, -1 else. */
static int oracle(const char *s, size_t len, uint64_t *off, uint64_t *n)
{
	const char *sp = NULL;
	unsigned __int128 v[2] = { 0, 0 };
	size_t i, field = 0, digits[2] = { 0, 0 };

	if (len == 0 || s[0] == '#')
		return 0;
	for (i = 0; i < len; i++) {
		if (s[i] == ' ' && !sp) {
			sp = s + i;
			field = 1;
		} else if (s[i] >= '0' && s[i] <= '9') {
			v[field] = v[field] * 10 + (unsigned int)(s[i] - '0');
			if (v[field] > UINT64_MAX)
				v[field] = (unsigned __int128)UINT64_MAX + 1;	/* saturate */
			digits[field]++;
		} else {
			return -1;
		}
	}
	if (!sp || !digits[0] || !digits[1] || v[0] > UINT64_MAX || v[1] > UINT64_MAX ||
	    v[1] == 0 || v[0] + v[1] > INT64_MAX)
		return -1;
	*off = (uint64_t)v[0];
	*n = (uint64_t)v[1];
	return 1;
}

/* Dump's bytes line for the extent, parsed back. */
static void through_dump(uint64_t off, uint64_t n)
{
	struct dt_geometry g = { .length = 1, .dev_sectors = 1, .cluster_sectors = 1,
				 .clusters = 1 };
	struct dt_writer w;
	struct dt_dump d = { .w = &w, .format = DT_FORMAT_BYTES, .geo = &g, .device = "d" };
	uint64_t off2 = 0, n2 = 0;
	const char *why = NULL;

	if (off % 512 || n % 512)
		return;
	assert(!dt_writer_init(&w, -1));
	dt_dump_begin(&d);
	dt_dump_extent(&d, off >> 9, n >> 9);
	assert(w.len > 1 && w.buf[w.len - 1] == '\n');
	assert(dt_extent_parse_line(w.buf, w.len - 1, &off2, &n2, &why) == 1);
	assert(off2 == off && n2 == n);
	dt_writer_free(&w);
}

static void one_line(const char *s, size_t len)
{
	uint64_t off = 0, n = 0, off2 = 0, n2 = 0;
	const char *why = NULL;
	int r = dt_extent_parse_line(s, len, &off, &n, &why);

	assert(r == oracle(s, len, &off2, &n2));
	if (r < 0) {
		assert(why && *why);
	} else if (r > 0) {
		assert(off == off2 && n == n2);
		assert(n && off <= (uint64_t)INT64_MAX - n);
		through_dump(off, n);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size, *nl;
	char *line;
	size_t len;

	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		/* A copy of exactly the line: ASan sees any read past it. */
		line = malloc(len ? len : 1);
		assert(line);
		memcpy(line, p, len);
		one_line(line, len);
		free(line);
		p += len + (nl != NULL);
	}
	return 0;
}
