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

/*
 * The one walk over a string's bytes for both: each well-formed UTF-8
 * sequence is copied, each byte that is not one becomes U+FFFD; with
 * @json the result is a JSON string: quoted, '"', '\\' and controls
 * escaped, U+FFFD written as \ufffd.  Malloc'd; NULL on ENOMEM.
 */
static char *utf8_copy(const char *s, int json)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t n = strlen(s), len;
	char *out, *p;

	/* Per byte in: at most 6 out ("\u001f", "\ufffd"), 3 without @json. */
	if (n > (SIZE_MAX - 3) / 6)
		return NULL;
	out = malloc(n * (json ? 6 : 3) + 3);
	if (!out)
		return NULL;
	p = out;
	if (json)
		*p++ = '"';
	while (*u) {
		len = dt_utf8_len(u);
		if (json && len == 1 && (*u < 0x20 || *u == 0x7f || *u == '"' || *u == '\\')) {
			*p++ = '\\';
			switch (*u) {
			case '"':  *p++ = '"'; break;
			case '\\': *p++ = '\\'; break;
			case '\n': *p++ = 'n'; break;
			case '\t': *p++ = 't'; break;
			case '\r': *p++ = 'r'; break;
			default:   p += sprintf(p, "u%04x", *u); break;
			}
			u++;
		} else if (len) {
			memcpy(p, u, len);
			p += len;
			u += len;
		} else if (json) {
			memcpy(p, "\\ufffd", 6);
			p += 6;
			u++;
		} else {
			memcpy(p, DT_UTF8_REPLACEMENT, 3);
			p += 3;
			u++;
		}
	}
	if (json)
		*p++ = '"';
	*p = '\0';
	return out;
}

char *dt_utf8_sanitize(const char *s)
{
	return utf8_copy(s, 0);
}

char *dt_json_quote(const char *s)
{
	return utf8_copy(s, 1);
}
