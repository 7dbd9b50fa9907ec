/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/*
 * The paged bitmap replies of the target decoded into 64-bit groups,
 * and the arithmetic on them: counting, walking extents, the status map.
 */
#ifndef DIRTYCTL_BITMAP_H
#define DIRTYCTL_BITMAP_H

#include <stdint.h>

#include "../kernel/dm-dirtytrack-abi.h"

/* Groups of DT_GROUP_CLUSTERS clusters needed for @clusters. */
static inline uint64_t dt_groups(uint64_t clusters)
{
	return clusters / DT_GROUP_CLUSTERS + (clusters % DT_GROUP_CLUSTERS != 0);
}

struct dt_reply {
	uint64_t epoch;
	uint64_t first_group;
	uint64_t nr_groups;
};

/*
 * dt_decode_reply - validate one reply to "bitmap <set> <first_group>"
 * and store its groups in @words[first_group ..].
 *
 * @words holds dt_groups(@clusters) groups; group g is the 64-bit word
 * whose bit k is cluster g * 64 + k.  The reply must start at
 * @first_group, stay within the bitmap, encode exactly nr_groups groups
 * in lowercase hex and zero runs, and have no bit set at or beyond
 * @clusters.  Returns 0 and fills @r, or -EBADMSG; on error @words may
 * have been partly written.
 */
int dt_decode_reply(const char *reply, uint64_t first_group, uint64_t clusters,
		    uint64_t *words, struct dt_reply *r);

/* Sends "bitmap <set> <first_group>"; 0 and a malloc'd *reply, or -errno. */
typedef int (*dt_fetch_fn)(void *ctx, uint64_t first_group, char **reply);

/*
 * dt_read_bitmap - read a whole bitmap page by page through @fetch.
 *
 * Continues from first_group + nr_groups until the last group or a
 * reply with nr_groups == 0.  When the epoch changes between pages the
 * read starts again once; a second change returns -EAGAIN.  Returns 0,
 * -EBADMSG for a malformed reply (also a bitmap that ends early), or
 * the error of @fetch.
 */
int dt_read_bitmap(dt_fetch_fn fetch, void *ctx, uint64_t clusters,
		   uint64_t *words);

/* Set bits in clusters [from, to). */
uint64_t dt_count_bits(const uint64_t *words, uint64_t from, uint64_t to);

/*
 * dt_walk_extents - call @fn for each maximal run of set bits among the
 * first @clusters bits, in ascending order, with its first cluster and
 * length.  Stops and returns the first non-zero value @fn returns.
 */
typedef int (*dt_extent_fn)(void *ctx, uint64_t first_cluster,
			    uint64_t nr_clusters);
int dt_walk_extents(const uint64_t *words, uint64_t clusters,
		    dt_extent_fn fn, void *ctx);

#define DT_MAP_WIDTH	128	/* cells of the status map */
#define DT_MAP_LINE	64	/* cells per printed line */

/*
 * dt_dirty_map - summarise the bitmap in @width characters (@width <=
 * clusters), each a bucket of about clusters / width clusters:
 * ' ' clean, '.' under 25% dirty, ':' under 75%, '#' 75% or more.
 * @out gets @width characters and a NUL.
 */
#define DT_MAP_LEGEND "' ' clean, '.' under 25% changed, ':' under 75%, '#' 75% or more"
void dt_dirty_map(const uint64_t *words, uint64_t clusters, unsigned int width,
		  char *out);

#endif
