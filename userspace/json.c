// SPDX-License-Identifier: GPL-2.0-only OR MIT
/*
 * The one JSON writer of dirtyctl, and the UTF-8 checks that keep its
 * strings valid whatever bytes a device name holds.
 * See json.h for the contracts.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

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
