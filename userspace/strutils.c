// SPDX-License-Identifier: GPL-2.0-only OR MIT
/*
 * Number and text helpers of both programs' output: one strict decimal
 * parser, decimal formatting, human sizes, sector counts with suffixes,
 * uuids, shell quoting.  After util-linux lib/strutils.c.
 * See strutils.h for the contracts.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "strutils.h"

/* Strict decimal of exactly @len characters; 0 or -EINVAL. */
int dt_dec_to_u64(const char *s, size_t len, uint64_t *v)
{
	uint64_t x = 0;
	size_t i;

	if (len == 0)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		unsigned int d = (unsigned char)s[i] - '0';

		if (d > 9)
			return -EINVAL;
		if (x > (UINT64_MAX - d) / 10)
			return -ERANGE;
		x = x * 10 + d;
	}
	*v = x;
	return 0;
}

const char *dt_parse_u64_range(const char *s, const char *end, uint64_t *v)
{
	switch (dt_dec_to_u64(s, (size_t)(end - s), v)) {
	case 0:
		return NULL;
	case -ERANGE:
		return "number too large";
	default:
		return s == end ? "missing number" : "not a decimal number";
	}
}

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
	size_t n = strspn(s, "0123456789");
	int ret = dt_dec_to_u64(s, n, v);

	return ret ? ret : (int)n;
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
