/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/*
 * What the target says about itself: its status line, the geometry it
 * must agree with, and what its message errors mean to a user.
 */
#ifndef DIRTYCTL_STATUS_H
#define DIRTYCTL_STATUS_H

#include <stdint.h>

#include "../kernel/dm-dirtytrack-abi.h"

#define DT_TOKEN_MAX	64	/* longest mode, health or uuid we accept */

/*
 * Optional fields newer targets append to the DT_STATUS_FIELDS known to
 * every target (their numbers, counted from 1):
 *   9   <frozen_id>           16 lowercase hex digits, '-' when nothing is
 *                             frozen (the id checkpoint replies with)
 *   10  <snapshot>            '-' (no snapshot store in the table), idle,
 *                             active or invalid
 *   11  <store_used_sectors>  '-' without a store
 *   12  <store_sectors>       '-' without a store
 */
#define DT_STATUS_FIELD_FROZEN_ID	9
#define DT_STATUS_FIELD_SNAPSHOT	10
#define DT_STATUS_FIELDS_MAX		12
#define DT_FROZEN_ID_LEN		16	/* hex digits of a frozen set id */

struct dt_status {
	uint32_t cluster_sectors;
	uint64_t clusters;
	uint64_t dirty_clusters;
	int has_frozen;			/* 0 when the target printed '-' */
	uint64_t frozen_clusters;	/* valid when has_frozen */
	char mode[DT_TOKEN_MAX];
	char health[DT_TOKEN_MAX];
	char uuid[DT_TOKEN_MAX];
	uint64_t sequence;
	int reports_frozen_id;		/* the target printed field 9 */
	char frozen_id[DT_FROZEN_ID_LEN + 1]; /* "" when none is frozen */
	int reports_snapshot;		/* the target printed fields 10-12 */
	char snapshot[DT_TOKEN_MAX];	/* "-" when the table has no store */
	int has_store;			/* the two store numbers are valid */
	uint64_t store_used_sectors;
	uint64_t store_sectors;
};

/*
 * dt_parse_status - parse the params of a dirtytrack status line
 * (everything after the target type, see the ABI header).
 *
 * The first DT_STATUS_FIELDS fields are required; the optional ones
 * above are parsed when present (10 to 12 come together); fields beyond
 * DT_STATUS_FIELDS_MAX are ignored so that a newer target can append to
 * the line.  Returns 0, or -EINVAL when the line is short or a field is
 * malformed or inconsistent (dirty or frozen count above the cluster
 * count, invalid cluster size, a frozen id without a frozen count or the
 * reverse, store numbers without a store or the reverse, more of the
 * store used than it has).
 */
int dt_parse_status(const char *params, struct dt_status *st);

/*
 * dt_parse_frozen_id - a frozen set id: exactly DT_FROZEN_ID_LEN hex
 * digits; with @strict lowercase only (the target's own text), else
 * uppercase is accepted and lowered (a user's).  @len is the length of
 * @s to consider.  Returns 0 and @out (NUL-terminated), or -EINVAL.
 */
int dt_parse_frozen_id(const char *s, size_t len, int strict,
		       char out[DT_FROZEN_ID_LEN + 1]);

/*
 * dt_parse_checkpoint_reply - the reply of "checkpoint": the new frozen
 * set's id, optionally followed by one newline.  Returns 0 and @id, 1
 * when the reply is empty (a target from before frozen set ids), or
 * -EBADMSG.
 */
int dt_parse_checkpoint_reply(const char *reply, char id[DT_FROZEN_ID_LEN + 1]);

struct dt_geometry {
	uint64_t start;			/* target start, device sectors */
	uint64_t length;		/* target length, sectors */
	uint64_t dev_sectors;		/* size of the whole dm device */
	uint32_t cluster_sectors;
	uint64_t clusters;
};

/*
 * dt_geometry_check - does the target's status agree with its table?
 * Returns 0, or -EINVAL when the cluster count is not
 * ceil(length / cluster_sectors), the target does not lie inside the
 * device, or the device is too large to express in bytes.
 */
int dt_geometry_check(const struct dt_geometry *g);

/* Bytes covered by @n clusters, at most the target's size. */
uint64_t dt_clusters_bytes(const struct dt_geometry *g, uint64_t n);

/*
 * dt_message_error - what a failed message means to a user, for message
 * @verb (DT_MSG_*) failing with -@err; NULL when strerror() says it best.
 */
const char *dt_message_error(const char *verb, int err);

#endif
