/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/*
 * Pure functions of dirtyctl: no device-mapper; no state but constant
 * tables.  Everything that turns the target's untrusted text (status
 * line, paged bitmap replies) into numbers, the bitmap into extents, and
 * extents into output, so that it can be unit-tested and fuzzed on a
 * host without the kernel module.  One header per concern:
 *
 *   status.h    the status line, geometry, what message errors mean
 *   bitmap.h    paged bitmap replies, counting and walking, the map
 *   writer.h    the buffered writer every dump goes through
 *   dump.h      the dump formats
 *   json.h      the one JSON writer and its UTF-8 checks
 *   report.h    what "dirtyctl status" prints
 *   strutils.h  one decimal parser, number and text formatting
 *
 * Coordinates: a "cluster" is target-relative (bit c of the bitmap); a
 * "sector" in output is a 512-byte sector of the whole dm device, i.e.
 * target start + c * cluster_sectors, clipped to the target's end.
 */
#ifndef DIRTYCTL_PARSE_H
#define DIRTYCTL_PARSE_H

#include "bitmap.h"
#include "dump.h"
#include "json.h"
#include "report.h"
#include "status.h"
#include "strutils.h"
#include "writer.h"

#endif
