/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/*
 * Number and text helpers of both programs' output: one strict decimal
 * parser, decimal formatting, human sizes, sector counts with suffixes,
 * uuids, shell quoting.  After util-linux lib/strutils.c.
 */
#ifndef DIRTYCTL_STRUTILS_H
#define DIRTYCTL_STRUTILS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../kernel/dm-dirtytrack-abi.h"

/*
 * dt_dec_to_u64 - the one strict decimal parser: exactly @len digits, no
 * sign, no spaces.  Returns 0 and *v, -EINVAL for an empty or non-digit
 * text, -ERANGE when it does not fit in 64 bits.
 */
int dt_dec_to_u64(const char *s, size_t len, uint64_t *v);

/*
 * dt_parse_u64_range - dt_dec_to_u64() over [@s, @end), for line parsers:
 * returns NULL and *v, or what is wrong ("missing number", "not a decimal
 * number", "number too large").
 */
const char *dt_parse_u64_range(const char *s, const char *end, uint64_t *v);

/* Decimal digits of @v at @p, no NUL; returns the number of digits. */
size_t dt_u64_to_dec(char *p, uint64_t v);

/*
 * dt_size_to_human - "512 B", "64 KiB", "1.2 GiB": binary units, one
 * decimal rounded to nearest, none when it is zero.  Returns @buf.
 */
#define DT_HUMAN_MAX 32
char *dt_size_to_human(uint64_t bytes, char buf[DT_HUMAN_MAX]);

/* "@bytes bytes" with @exact, else dt_size_to_human(). */
const char *dt_size_or_bytes(uint64_t bytes, int exact, char buf[DT_HUMAN_MAX]);

/*
 * dt_parse_u64 - a strict unsigned decimal: digits only, no sign, no
 * spaces, no overflow.  Returns NULL and *v, or what is wrong.
 */
const char *dt_parse_u64(const char *s, uint64_t *v);

/*
 * dt_parse_sectors - a count of 512-byte sectors: a plain number or with
 * suffix "s" is sectors; with K, M, G, T, P, E (optionally "iB", powers
 * of 1024) or KB, MB, ... (powers of 1000) it is bytes and must be a
 * multiple of 512.  Suffixes are case-insensitive.  Returns NULL and
 * *sectors, or what is wrong.
 */
const char *dt_parse_sectors(const char *s, uint64_t *sectors);

/* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" for a 16-byte uuid. */
#define DT_UUID_STR_LEN 37
void dt_format_uuid(const unsigned char uuid[DT_UUID_SIZE], char out[DT_UUID_STR_LEN]);

/*
 * dt_shell_quote_put - write @s so that a POSIX shell's eval gives it
 * back, on one line: characters special to the shell are escaped with a
 * backslash; a control character, which would end the line or hide in a
 * terminal, is written as the 4 characters \xNN (libdevmapper's mangling
 * of such names), escaped so that eval keeps them.  Bytes from 0x80 pass
 * through: no shell gives them a meaning.
 */
#define DT_SHELL_SAFE "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" \
		      "0123456789_-.,/:@%+="
void dt_shell_quote_put(FILE *f, const char *s);

#endif
