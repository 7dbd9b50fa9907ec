/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * dm-dirtytrack metadata layer: superblock and bitmap I/O on the metadata
 * device.  The on-disk structures live in dm-dirtytrack-abi.h (shared with
 * userspace); this layer owns reading, validating and writing them.  The
 * target never touches the disk format directly.
 *
 * None of these functions take locks: the caller serialises all metadata
 * I/O (the target does it with its 'lock' mutex, or, for the write-intent
 * batches of crash_safe mode, by keeping 'lock' holders out while one is
 * in flight).  All of them but dt_md_submit_live_spans() may sleep.
 *
 * Every bio comes from @bs, a bio_set of the caller's own (with
 * BIOSET_NEED_BVECS), never from fs_bio_set: metadata writes must make
 * progress when memory is short because writes to the tracked device are
 * held for them.  The synchronous functions allocate with GFP_NOIO and
 * need at most two bios of @bs at a time to make progress.
 */
#ifndef DM_DIRTYTRACK_METADATA_H
#define DM_DIRTYTRACK_METADATA_H

#include <linux/blkdev.h>
#include <linux/types.h>

#include "dm-dirtytrack-abi.h"

/* The superblock in CPU byte order. */
struct dt_sb_info {
	u32 flags;		/* DT_SB_FLAG_* */
	u8 uuid[DT_UUID_SIZE];
	u64 sequence;
	u64 generation;
	u64 data_sectors;
	u32 cluster_sectors;
	u64 nr_clusters;
	u64 dirty_clusters;
	u64 frozen_clusters;
	u64 frozen_sequence;
	u64 frozen_id;		/* nonzero exactly when FROZEN is set */
};

/*
 * dt_md_read_superblock - read and validate block 0 of @bdev.
 *
 * Returns 0 and fills @info for a sound superblock; -ENODATA when the first
 * 4 KiB are all zero (an unformatted device, free to format); -EINVAL for
 * anything else, with @error set to a sentence a user can act on; another
 * negative errno on I/O failure.
 */
int dt_md_read_superblock(struct block_device *bdev, struct bio_set *bs,
			  struct dt_sb_info *info, const char **error);

/*
 * dt_md_write_superblock - write @info as block 0, durably.
 *
 * The write carries REQ_PREFLUSH and REQ_FUA: everything written to the
 * metadata device before it (the bitmaps) is durable before the superblock
 * that describes it, and the superblock itself is durable on return.
 * @block is the caller's DT_BLOCK_SIZE buffer (kmalloc'ed, so page-aligned),
 * overwritten: the write allocates nothing that can fail, so that a
 * superblock write fails only when the device fails it.
 * Returns 0 or a negative errno.
 */
int dt_md_write_superblock(struct block_device *bdev, struct bio_set *bs,
			   const struct dt_sb_info *info, void *block);

/*
 * dt_md_read_bitmap / dt_md_write_bitmap - transfer one bitmap of a
 * geometry of @nr_clusters between @buf and the metadata device.
 * @frozen selects the frozen rather than the live bitmap.  @buf holds
 * dt_bitmap_blocks(nr_clusters) * DT_BLOCK_SIZE bytes and is either
 * kmalloc'ed or vmalloc'ed.  Writes are not durable until the next
 * dt_md_write_superblock().  Returns 0 or a negative errno.
 */
int dt_md_read_bitmap(struct block_device *bdev, struct bio_set *bs,
		      u64 nr_clusters, bool frozen, void *buf);
int dt_md_write_bitmap(struct block_device *bdev, struct bio_set *bs,
		       u64 nr_clusters, bool frozen, const void *buf);

/*
 * A run of 512-byte sectors of the live bitmap (@sector counted from its
 * start) and the bytes for them.
 */
struct dt_md_span {
	sector_t sector;
	unsigned int nr_sectors;
	const void *buf;
};

/*
 * dt_md_write_live_spans - write @nr runs of sectors of the live bitmap with
 * REQ_FUA, all in flight at once: durable on return.  For crash_safe mode's
 * write-intent updates.  Returns 0 or a negative errno (of any of them).
 */
int dt_md_write_live_spans(struct block_device *bdev, struct bio_set *bs,
			   const struct dt_md_span *spans, unsigned int nr);

/*
 * A bio with room for one page, kept by the caller of
 * dt_md_submit_live_spans() so that the common batch, one run within one
 * page, needs no allocation.  It is free again once @end_io has called
 * dt_md_put_live_bio().
 */
struct dt_md_own_bio {
	struct bio bio;
	struct bio_vec bvec;
};

/*
 * dt_md_submit_live_spans - the same writes, submitted and not waited for:
 * @end_io runs, with @private in bi_private, once all of them are done, and
 * sees the first error of any in bi_status; it must dt_md_put_live_bio()
 * its bio.  Never sleeps, so it may run in a target's map function: the
 * last run is written with @own where it fits in one page, the others with
 * bios from @bs taken without waiting; when one cannot be had nothing is
 * submitted and -ENOMEM is returned (-EINVAL for @nr 0).  The caller keeps
 * @spans' buffers and @own until @end_io.
 */
int dt_md_submit_live_spans(struct block_device *bdev, struct bio_set *bs,
			    struct dt_md_own_bio *own,
			    const struct dt_md_span *spans, unsigned int nr,
			    bio_end_io_t *end_io, void *private);
void dt_md_put_live_bio(struct bio *bio);

#endif /* DM_DIRTYTRACK_METADATA_H */
