/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/*
 * The dump formats: extents of a bitmap as ranges, bytes, JSON or a GNU
 * ddrescue mapfile.
 */
#ifndef DIRTYCTL_DUMP_H
#define DIRTYCTL_DUMP_H

#include <stdint.h>

#include "bitmap.h"
#include "status.h"
#include "writer.h"

enum dt_format {
	DT_FORMAT_RANGES,
	DT_FORMAT_BYTES,
	DT_FORMAT_JSON,
	DT_FORMAT_DDRESCUE,
};

/* 0 and *fmt for "ranges", "bytes", "json", "ddrescue"; else -EINVAL. */
int dt_format_from_name(const char *name, enum dt_format *fmt);

struct dt_dump {
	struct dt_writer *w;
	enum dt_format format;
	const struct dt_geometry *geo;
	const char *device;	/* dm name, for json and the ddrescue header */
	const char *comment;	/* extra ddrescue header line, or NULL */
	/* private */
	uint64_t pos;		/* ddrescue: sectors covered so far */
	uint64_t extents;	/* extents written */
};

/*
 * dt_dump_bitmap - write every dirty extent of @words (dt_groups(clusters)
 * groups) in device sectors, coalesced, ascending and clipped to the
 * target, in d->format.  Returns 0 or the writer's -errno.
 */
int dt_dump_bitmap(struct dt_dump *d, const uint64_t *words);

/* The same in three steps, for callers that produce extents themselves. */
void dt_dump_begin(struct dt_dump *d);
void dt_dump_extent(struct dt_dump *d, uint64_t start_sector, uint64_t nr_sectors);
int dt_dump_end(struct dt_dump *d);

#endif
