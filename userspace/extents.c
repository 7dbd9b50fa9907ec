// SPDX-License-Identifier: GPL-2.0-only OR MIT
/*
 * The extent list dt-copy-extents reads.
 * See extents.h for the contract.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "extents.h"
#include "strutils.h"

/* One of the two numbers of a line: NULL and *v, or what is wrong. */
static const char *parse_field(const char *s, const char *end, uint64_t *v, int is_length)
{
	static const char *const msgs[2][3] = {
		{ "missing offset", "offset is not a decimal number", "offset too large" },
		{ "missing length", "length is not a decimal number", "length too large" },
	};

	if (s == end)
		return msgs[is_length][0];
	switch (dt_dec_to_u64(s, (size_t)(end - s), v)) {
	case 0:
		return NULL;
	case -ERANGE:
		return msgs[is_length][2];
	default:
		return msgs[is_length][1];
	}
}

/* What is wrong with a line that is neither empty nor a comment, or NULL. */
static const char *parse_extent(const char *line, size_t len, uint64_t *offset,
				uint64_t *length)
{
	const char *sp, *end = line + len, *why;

	if (memchr(line, '\0', len))
		return "NUL byte in the line";
	if (line[len - 1] == '\r')
		return "carriage return at the end of the line (DOS line ending?)";
	sp = memchr(line, ' ', len);
	if (!sp)
		return "expected \"<offset> <length>\"";
	if (memchr(sp + 1, ' ', (size_t)(end - sp - 1)))
		return "expected \"<offset> <length>\": more than one space";
	why = parse_field(line, sp, offset, 0);
	if (!why)
		why = parse_field(sp + 1, end, length, 1);
	if (why)
		return why;
	if (*length == 0)
		return "zero length";
	if (*length > (uint64_t)INT64_MAX || *offset > (uint64_t)INT64_MAX - *length)
		return "extent ends beyond the largest file offset";
	return NULL;
}

int dt_extent_parse_line(const char *line, size_t len, uint64_t *offset,
			 uint64_t *length, const char **why)
{
	if (len == 0 || line[0] == '#')
		return 0;
	*why = parse_extent(line, len, offset, length);
	return *why ? -1 : 1;
}
