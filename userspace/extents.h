/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/*
 * The extent list dt-copy-extents reads: what "dirtyctl dump --format
 * bytes" writes, one "<offset> <length>" line per extent, decimal bytes.
 * Pure: no I/O, no state, so that it can be unit-tested and fuzzed.
 */
#ifndef DIRTYCTL_EXTENTS_H
#define DIRTYCTL_EXTENTS_H

#include <stddef.h>
#include <stdint.h>

/*
 * dt_extent_parse_line - one line of an extent list, @len bytes without
 * its newline (it may hold any byte, NUL included).  The offset and the
 * length are strict decimals (digits only) separated by one space; the
 * length is not zero and the extent ends at most at the largest file
 * offset (INT64_MAX).  Extents need not be sorted and may overlap: each
 * is copied as listed.
 *
 * Returns 1 with *offset and *length for an extent, 0 for an empty line
 * or a '#' comment, -1 with *why (a static message) for anything else.
 */
int dt_extent_parse_line(const char *line, size_t len, uint64_t *offset,
			 uint64_t *length, const char **why);

#endif
