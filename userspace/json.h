/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/*
 * JSON output: the writer, the string quoting every JSON text of
 * dirtyctl goes through, and the UTF-8 checks that keep it valid.
 */
#ifndef DIRTYCTL_JSON_H
#define DIRTYCTL_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * The one JSON writer of dirtyctl (after util-linux lib/jsonwrt.c): one
 * object, one member per line, string arrays inline.  Every string goes
 * through dt_json_quote(), so the output is valid JSON whatever the
 * bytes of a device name.
 */
struct dt_json {
	FILE *f;
	int members;
	int elements;		/* of the open array */
};

void dt_json_begin(struct dt_json *j, FILE *f);
void dt_json_key(struct dt_json *j, const char *key);	/* then write the value */
void dt_json_u64(struct dt_json *j, const char *key, uint64_t v);
void dt_json_u64_or_null(struct dt_json *j, const char *key, int present, uint64_t v);
void dt_json_bool(struct dt_json *j, const char *key, int v);
int dt_json_str(struct dt_json *j, const char *key, const char *s); /* 0 or -ENOMEM */
void dt_json_null(struct dt_json *j, const char *key);
int dt_json_str_or_null(struct dt_json *j, const char *key, const char *s); /* "" or NULL: null */
void dt_json_array_begin(struct dt_json *j, const char *key);
int dt_json_array_str(struct dt_json *j, const char *s);	/* 0 or -ENOMEM */
void dt_json_array_end(struct dt_json *j);
void dt_json_end(struct dt_json *j);

/*
 * Length of the well-formed UTF-8 sequence at @s (1 to 4; Unicode's
 * table 3-7: no overlong forms, no surrogates, nothing above U+10FFFF),
 * 0 when none starts there or at the end of the string.
 */
size_t dt_utf8_len(const unsigned char *s);

/* U+FFFD, the character that stands for a byte that is not UTF-8. */
#define DT_UTF8_REPLACEMENT "\xef\xbf\xbd"

/*
 * dt_utf8_sanitize - @s with each byte that is not part of a well-formed
 * UTF-8 sequence replaced by U+FFFD, malloc'd; NULL on ENOMEM.
 */
char *dt_utf8_sanitize(const char *s);

/*
 * dt_json_quote - @s as a JSON string, quotes included, malloc'd; NULL
 * on ENOMEM.  Always valid JSON (RFC 8259): '"' and '\\' escaped,
 * control characters (and DEL) as \n, \t, \r or \u00XX, each byte that
 * is not part of well-formed UTF-8 as \ufffd (the replacement character;
 * a JSON string cannot hold such a byte).
 */
char *dt_json_quote(const char *s);

#endif
