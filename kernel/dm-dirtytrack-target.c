// SPDX-License-Identifier: GPL-2.0-only
/*
 * dm-dirtytrack: a device-mapper target that passes I/O through to a data
 * device and records, one bit per cluster, which clusters were written.
 * The bitmap lives on a metadata device; see dm-dirtytrack-metadata.c for
 * the valid-flag protocol and Documentation/dm-dirtytrack.rst for the
 * interface.
 *
 * Copyright (C) 2026 The dm-dirtytrack authors
 */
#include <linux/bio.h>
#include <linux/bitops.h>
#include <linux/ctype.h>
#include <linux/device-mapper.h>
#include <linux/module.h>
#include <linux/completion.h>
#include <linux/mutex.h>
#include <linux/percpu-refcount.h>
#include <linux/random.h>
#include <linux/rcupdate.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/uuid.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include "dm-dirtytrack-metadata.h"
#include "dm-dirtytrack-snapshot.h"

#define DM_MSG_PREFIX "dirtytrack"

/*
 * How long writes that need metadata which cannot be written are held and
 * retried (about once a second) before they fail, unless the table has
 * the availability feature.  See "Metadata I/O errors" in
 * Documentation/dm-dirtytrack.rst.
 */
static unsigned int metadata_hold_seconds = 30;
module_param(metadata_hold_seconds, uint, 0644);
MODULE_PARM_DESC(metadata_hold_seconds,
		 "Seconds writes are held while their metadata cannot be written, then failed (default 30)");

/*
 * The largest bitmap a table may ask for: kvmalloc() refuses, with a
 * warning, above INT_MAX bytes, and every bit number must fit in an
 * unsigned long (a 32-bit machine).  dt_bit() and dt_bitmap_bytes() rely
 * on it.
 */
#define DT_MAX_BITMAP_BYTES min_t(u64, INT_MAX, ULONG_MAX / 8)

/*
 * A set of clusters: one bit per cluster in the on-disk byte order (cluster
 * c is bit c % 8 of byte c / 8), so the buffer goes to disk as it is.
 */
struct dt_bitmap {
	unsigned long *bits;	/* bitmap_blocks(nr_clusters) * 4 KiB */
	atomic_long_t nr_set;	/* bits set; exact once writers are gone */
	/*
	 * crash_safe only: the bits known durable in the live area of the
	 * metadata device; written under dirtytrack 'lock', read locklessly.
	 */
	unsigned long *durable;
	/* One reference per write marked in this set and not yet completed. */
	struct percpu_ref inflight;
	struct completion drained;	/* inflight killed and at zero */
};

enum dt_flags {
	DT_F_OWNER,		/* metadata loaded by this instance (resumed) */
	DT_F_SB_VALID_ON_DISK,	/* the durable superblock may have VALID set */
	DT_F_METADATA_ERROR,	/* a metadata I/O failed in this activation */
	/*
	 * After a metadata error, a superblock that does not claim VALID
	 * (and says METADATA_ERROR) is durable: the stored state is honest
	 * again, whatever the bitmaps hold.
	 */
	DT_F_HONEST,
	/*
	 * Writes need no metadata any more: set with DT_F_HONEST, or when
	 * the availability feature gave up waiting for it.  dt_map() stops
	 * holding writes only on this flag, never on DT_F_METADATA_ERROR.
	 */
	DT_F_DEGRADED,
};

/*
 * A block of the live bitmap queued for a write-intent batch, and which of
 * its 512-byte sectors (bit s: sector s) hold bits that must become durable.
 */
struct dt_batch_entry {
	u64 block;
	u8 sectors;
};

/* Blocks of the live bitmap one write-intent batch writes at most. */
#define DT_BATCH_BLOCKS 64

enum dt_health {
	DT_HEALTH_IS_OK,
	DT_HEALTH_IS_UNCLEAN,
	DT_HEALTH_IS_METADATA_ERROR,
};

struct dirtytrack {
	struct dm_target *ti;
	struct dm_dev *metadata_dev;
	struct dm_dev *data_dev;
	struct dm_dev *store_dev;	/* snapshot_store, or NULL */
	struct dt_snap *snap;		/* its snapshot, or NULL */
	u32 cluster_sectors;
	unsigned int cluster_shift;
	u64 nr_clusters;
	bool crash_safe;
	bool availability;	/* feature: never hold writes for metadata */

	/* The set new writes go to; replaced under 'lock', read under RCU. */
	struct dt_bitmap __rcu *live;
	/* The checkpointed set; protected by 'lock'. */
	struct dt_bitmap *frozen;
	/*
	 * crash_safe: the live set a clear retired, until it has drained;
	 * every write-intent snapshot carries its bits too.  Set and cleared
	 * under 'lock' with the direct path blocked (dt_lock()).
	 */
	struct dt_bitmap *retiring;
	/*
	 * Changes whenever 'live' is replaced or merged into, and at every
	 * load (seeded from the stored generation, so it changes across a
	 * table reload too); read and written under 'lock'.
	 */
	u64 epoch;
	unsigned long flags;	/* DT_F_*, atomic bit ops */

	/* Serialises state-changing messages; taken before 'lock'. */
	struct mutex msg_lock;
	/* Serialises state changes, resume/suspend and all metadata I/O. */
	struct mutex lock;

	/*
	 * Bios held until their metadata is durable: the cleared valid flag
	 * (default mode) or their clusters' bits (crash_safe).
	 */
	spinlock_t held_lock;
	struct bio_list held;		/* protected by held_lock */
	struct workqueue_struct *wq;
	struct work_struct held_work;
	/* Retries what the metadata errors hold; see dt_hold_failed(). */
	struct delayed_work retry_work;
	unsigned long hold_since;	/* jiffies; under 'lock' */
	bool holding;			/* hold_since is set; under 'lock' */
	/*
	 * crash_safe: the write-intent batch, and snapshots of the blocks it
	 * writes.  Owned by whoever holds 'lock' with the direct path
	 * blocked (dt_lock()), or else by the owner of 'aw_busy'.
	 */
	void *batch_buf;
	unsigned int md_sectors_per_lbs;	/* of the metadata device */
	struct dt_batch_entry batch[DT_BATCH_BLOCKS];
	/* A block's 8 sectors make at most 4 runs. */
	struct dt_md_span batch_spans[DT_BATCH_BLOCKS * DT_BLOCK_SECTORS / 2];
	unsigned int batch_nr;

	/*
	 * crash_safe: batches run directly, from dt_map() and from the
	 * completion of the batch before, with no worker in between.
	 * 'aw_busy' (a batch is being built or is in flight) and 'aw_blocked'
	 * (a holder of 'lock' owns the batch and the live set) are under
	 * 'held_lock'.  While 'aw_busy' is set the live set is not replaced.
	 */
	bool aw_busy;
	bool aw_blocked;
	wait_queue_head_t aw_wait;	/* woken when 'aw_busy' is cleared */
	struct bio_list aw_bios;	/* the bios of the batch in flight */
	blk_status_t aw_status;		/* of its metadata write */
	struct work_struct aw_work;	/* completes it outside a submitter */
	struct workqueue_struct *aw_wq;
	struct bio_set aw_bs;		/* its metadata bios */
	struct dt_md_own_bio aw_bio;	/* and the one most batches need */

	/*
	 * What status reports; written under both 'lock' and 'state_lock',
	 * read under 'state_lock' alone so that status never sleeps.
	 */
	spinlock_t state_lock;
	struct dt_sb_info sb;	/* uuid, sequence, flags of the metadata */
	long frozen_clusters;	/* -1 when nothing is frozen */
	enum dt_health health;
};

struct dt_per_bio {
	u64 first;		/* first and last cluster written */
	u64 last;
	struct dt_bitmap *bm;	/* the set it was marked in, or NULL */
};

/* ------------------------------------------------------------------ */
/* Bitmaps                                                             */
/* ------------------------------------------------------------------ */

/*
 * Byte-order independent bit numbers, as in asm-generic/bitops/le.h.  No
 * truncation: the table load refuses bitmaps of more than
 * DT_MAX_BITMAP_BYTES, so every cluster number fits in an unsigned long.
 */
static inline unsigned long dt_bit(u64 cluster)
{
	return (unsigned long)cluster ^ BITOP_LE_SWIZZLE;
}

/* The bitmap size in bytes; fits a size_t (see DT_MAX_BITMAP_BYTES). */
static size_t dt_bitmap_bytes(u64 nr_clusters)
{
	return (size_t)(dt_bitmap_blocks(nr_clusters) * DT_BLOCK_SIZE);
}

static void dt_bitmap_drained(struct percpu_ref *ref)
{
	struct dt_bitmap *bm = container_of(ref, struct dt_bitmap, inflight);

	complete(&bm->drained);
}

static void dt_bitmap_free(struct dt_bitmap *bm)
{
	if (bm) {
		percpu_ref_exit(&bm->inflight);
		kvfree(bm->durable);
		kvfree(bm->bits);
		kfree(bm);
	}
}

static struct dt_bitmap *dt_bitmap_alloc(u64 nr_clusters, bool durable)
{
	struct dt_bitmap *bm = kzalloc(sizeof(*bm), GFP_KERNEL);

	if (!bm)
		return NULL;
	init_completion(&bm->drained);
	if (percpu_ref_init(&bm->inflight, dt_bitmap_drained, 0, GFP_KERNEL)) {
		kfree(bm);
		return NULL;
	}
	bm->bits = kvzalloc(dt_bitmap_bytes(nr_clusters),
			    GFP_KERNEL | __GFP_NOWARN);
	if (durable)
		bm->durable = kvzalloc(dt_bitmap_bytes(nr_clusters),
				       GFP_KERNEL | __GFP_NOWARN);
	if (!bm->bits || (durable && !bm->durable)) {
		dt_bitmap_free(bm);
		return NULL;
	}
	atomic_long_set(&bm->nr_set, 0);
	return bm;
}

/*
 * Wait until every write marked in @bm has completed.  @bm must no longer
 * be the live set (see dt_swap_live).  Sleeps; call without 'lock' (held
 * bios may need it to complete).
 */
static void dt_bitmap_wait_drained(struct dt_bitmap *bm)
{
	wait_for_completion(&bm->drained);
}

/* Zero every bit at and past @nr_clusters (untrusted input from disk). */
static void dt_bitmap_clip(struct dt_bitmap *bm, u64 nr_clusters)
{
	u8 *bytes = (u8 *)bm->bits;
	size_t full = nr_clusters / 8;
	size_t size = dt_bitmap_bytes(nr_clusters);

	if (nr_clusters % 8) {
		bytes[full] &= (1U << (nr_clusters % 8)) - 1;
		full++;
	}
	memset(bytes + full, 0, size - full);
}

static void dt_bitmap_recount(struct dt_bitmap *bm, u64 nr_clusters)
{
	size_t i, nr_longs = dt_bitmap_bytes(nr_clusters) / sizeof(long);
	long n = 0;

	for (i = 0; i < nr_longs; i++)
		n += hweight_long(bm->bits[i]);
	atomic_long_set(&bm->nr_set, n);
}

static void dt_bitmap_fill(struct dt_bitmap *bm, u64 nr_clusters)
{
	memset(bm->bits, 0xff, dt_bitmap_bytes(nr_clusters));
	dt_bitmap_clip(bm, nr_clusters);
	atomic_long_set(&bm->nr_set, nr_clusters);
}

/*
 * Mark clusters @first..@last.  Lock-free and allocation-free; a cluster
 * already set costs one read.  Safe against concurrent markers: bits are
 * only ever set with atomic operations, and counted once.
 */
static void dt_bitmap_mark(struct dt_bitmap *bm, u64 first, u64 last)
{
	u64 c = first;

	while (c <= last) {
		if (c % BITS_PER_LONG == 0 && last - c >= BITS_PER_LONG - 1) {
			/* A whole word: 64 consecutive clusters in any byte order. */
			unsigned long *word = &bm->bits[c / BITS_PER_LONG];

			if (READ_ONCE(*word) != ~0UL) {
				long old = atomic_long_fetch_or(~0UL,
						(atomic_long_t *)word);

				atomic_long_add(BITS_PER_LONG - hweight_long(old),
						&bm->nr_set);
			}
			c += BITS_PER_LONG;
			continue;
		}
		if (!test_bit(dt_bit(c), bm->bits) &&
		    !test_and_set_bit(dt_bit(c), bm->bits))
			atomic_long_inc(&bm->nr_set);
		c++;
	}
}

/* Merge @src into @dst, which may have concurrent markers. */
static void dt_bitmap_merge(struct dt_bitmap *dst, const struct dt_bitmap *src,
			    u64 nr_clusters)
{
	size_t i, nr_longs = dt_bitmap_bytes(nr_clusters) / sizeof(long);

	for (i = 0; i < nr_longs; i++) {
		unsigned long add = src->bits[i];
		unsigned long old;

		if (!add)
			continue;
		old = atomic_long_fetch_or(add, (atomic_long_t *)&dst->bits[i]);
		atomic_long_add(hweight_long(add & ~old), &dst->nr_set);
	}
}

/* Mark a target-relative cluster range in the current live set. */
static void dt_mark_live(struct dirtytrack *dt, u64 first, u64 last)
{
	struct dt_bitmap *live;

	rcu_read_lock();
	live = rcu_dereference(dt->live);
	dt_bitmap_mark(live, first, last);
	rcu_read_unlock();
}

static struct dt_bitmap *dt_live_locked(struct dirtytrack *dt)
{
	return rcu_dereference_protected(dt->live, lockdep_is_held(&dt->lock));
}

/*
 * Publish @new as the live set and bump the epoch.  Returns the old live
 * set, which no marker uses any more once this returns.  Called with
 * 'lock' held; sleeps (synchronize_rcu).
 */
static struct dt_bitmap *dt_swap_live(struct dirtytrack *dt,
				      struct dt_bitmap *new)
{
	struct dt_bitmap *old = dt_live_locked(dt);

	rcu_assign_pointer(dt->live, new);
	dt->epoch++;
	synchronize_rcu();
	/* No marker can take a new reference on @old any more. */
	percpu_ref_kill(&old->inflight);
	return old;
}

/* True when every cluster @first..@last is set in @bits. */
static bool dt_range_set(const unsigned long *bits, u64 first, u64 last)
{
	u64 c;

	for (c = first; c <= last; c++) {
		if (c % BITS_PER_LONG == 0 && last - c >= BITS_PER_LONG - 1) {
			if (READ_ONCE(bits[c / BITS_PER_LONG]) != ~0UL)
				return false;
			c += BITS_PER_LONG - 1;
			continue;
		}
		if (!test_bit(dt_bit(c), bits))
			return false;
	}
	return true;
}

/* ------------------------------------------------------------------ */
/* Status state                                                        */
/* ------------------------------------------------------------------ */

static void dt_set_health(struct dirtytrack *dt, enum dt_health health)
{
	spin_lock(&dt->state_lock);
	dt->health = health;
	spin_unlock(&dt->state_lock);
}

/*
 * The single place that records a metadata error.  It does not let any
 * write go unprotected: that waits for a superblock that stops vouching
 * for the stored bitmap to be durable (DT_F_HONEST, set by
 * dt_write_superblock()).
 */
static void dt_metadata_failed(struct dirtytrack *dt, const char *what, int r)
{
	if (!test_and_set_bit(DT_F_METADATA_ERROR, &dt->flags))
		DMERR("%s: metadata %s failed (%d); tracking is degraded and every cluster will be dirty on the next activation",
		      dm_table_device_name(dt->ti->table), what, r);
	dt_set_health(dt, DT_HEALTH_IS_METADATA_ERROR);
}

static void dt_update_frozen_count(struct dirtytrack *dt)
{
	spin_lock(&dt->state_lock);
	dt->frozen_clusters = dt->frozen ?
		atomic_long_read(&dt->frozen->nr_set) : -1;
	spin_unlock(&dt->state_lock);
}

/* ------------------------------------------------------------------ */
/* The valid-flag protocol                                             */
/* ------------------------------------------------------------------ */

/* Fill dt->sb's counters from memory.  Called with 'lock' held. */
static void dt_sb_snapshot(struct dirtytrack *dt, struct dt_sb_info *info,
			   u32 flags)
{
	spin_lock(&dt->state_lock);
	dt->sb.flags = flags;
	dt->sb.generation++;
	dt->sb.dirty_clusters = atomic_long_read(&dt_live_locked(dt)->nr_set);
	dt->sb.frozen_clusters = dt->frozen ?
		atomic_long_read(&dt->frozen->nr_set) : 0;
	*info = dt->sb;
	if (!dt->frozen)
		info->frozen_id = 0;
	spin_unlock(&dt->state_lock);
}

static u32 dt_sb_flags(struct dirtytrack *dt, bool valid)
{
	u32 flags = 0;

	if (valid && !test_bit(DT_F_METADATA_ERROR, &dt->flags))
		flags |= DT_SB_FLAG_VALID;
	if (dt->frozen)
		flags |= DT_SB_FLAG_FROZEN;
	if (dt->health == DT_HEALTH_IS_UNCLEAN)
		flags |= DT_SB_FLAG_UNCLEAN;
	if (test_bit(DT_F_METADATA_ERROR, &dt->flags))
		flags |= DT_SB_FLAG_METADATA_ERROR;
	return flags;
}

/* Write the superblock with the current state.  Called with 'lock' held. */
static int dt_write_superblock(struct dirtytrack *dt, bool valid)
{
	struct dt_sb_info info;
	int r;

	dt_sb_snapshot(dt, &info, dt_sb_flags(dt, valid));
	r = dt_md_write_superblock(dt->metadata_dev->bdev, &info);
	if (r) {
		/* What is on disk now is unknown: it may still claim VALID. */
		dt_metadata_failed(dt, "superblock write", r);
		return r;
	}
	if (info.flags & DT_SB_FLAG_VALID) {
		set_bit(DT_F_SB_VALID_ON_DISK, &dt->flags);
		return 0;
	}
	clear_bit(DT_F_SB_VALID_ON_DISK, &dt->flags);
	if (info.flags & DT_SB_FLAG_METADATA_ERROR) {
		/* Honest at last: writes need their metadata no more. */
		set_bit(DT_F_HONEST, &dt->flags);
		set_bit(DT_F_DEGRADED, &dt->flags);
	}
	return 0;
}

/*
 * After a metadata error: make the stored superblock stop vouching for the
 * stored bitmaps.  Returns 0 once that is durable (at once if it already
 * is), else the error.  Called with 'lock' held; sleeps.
 */
static int dt_make_honest(struct dirtytrack *dt)
{
	if (test_bit(DT_F_HONEST, &dt->flags))
		return 0;
	return dt_write_superblock(dt, false);
}

/* Take the held bios. */
static void dt_take_held(struct dirtytrack *dt, struct bio_list *bios)
{
	bio_list_init(bios);
	spin_lock(&dt->held_lock);
	bio_list_merge(bios, &dt->held);
	bio_list_init(&dt->held);
	spin_unlock(&dt->held_lock);
}

static void dt_release_held(struct bio_list *bios)
{
	struct bio *bio;

	while ((bio = bio_list_pop(bios)))
		dm_submit_bio_remap(bio, NULL);
}

/*
 * Default mode: make the on-disk superblock stop promising an exact bitmap,
 * before the in-memory sets first differ from the stored ones.  Returns 0
 * when that is durable (or was already), else the error: then what is on
 * disk may still claim VALID, and writes stay held.  Nothing to do in
 * crash_safe mode, whose stored bitmap is always a superset.  Called with
 * 'lock' held; sleeps.
 */
static int dt_invalidate(struct dirtytrack *dt)
{
	if (dt->crash_safe || !test_bit(DT_F_SB_VALID_ON_DISK, &dt->flags))
		return 0;
	return dt_write_superblock(dt, false);
}

/*
 * crash_safe mode: the write-intent batch.  The 512-byte sectors of the
 * live bitmap that hold new bits are collected with dt_batch_add() (per
 * 4 KiB block), snapshotted by dt_batch_spans() and written with FUA, all
 * runs of consecutive sectors in flight at once: by dt_batch_flush(),
 * which waits, or by the direct path (dt_aw_run_locked()), which does not.
 * Every bit set before the snapshot is then durable; the writer records
 * the ranges it needed in the live set's 'durable' bitmap
 * (dt_durable_mark()), which lets later writes to those clusters pass
 * without waiting.
 */
static int dt_cmp_entry(const void *a, const void *b)
{
	u64 x = ((const struct dt_batch_entry *)a)->block;
	u64 y = ((const struct dt_batch_entry *)b)->block;

	return x < y ? -1 : x > y;
}

/*
 * Snapshot the queued sectors of @live, rounded out to the metadata
 * device's logical block size, into 'batch_buf', and describe them in
 * 'batch_spans'.  Empties the batch; returns the number of spans.
 */
static unsigned int dt_batch_spans(struct dirtytrack *dt,
				   struct dt_bitmap *live)
{
	unsigned int spb = dt->md_sectors_per_lbs;
	struct dt_md_span *spans = dt->batch_spans, *last = NULL;
	unsigned int i, s, e, nr = dt->batch_nr, nr_spans = 0;

	dt->batch_nr = 0;
	if (nr > 1)
		sort(dt->batch, nr, sizeof(dt->batch[0]), dt_cmp_entry, NULL);
	for (i = 0; i < nr; i++) {
		u64 block = dt->batch[i].block;
		unsigned long mask = dt->batch[i].sectors;
		u8 *slot = dt->batch_buf + i * DT_BLOCK_SIZE;
		const u8 *bits = (const u8 *)live->bits + block * DT_BLOCK_SIZE;
		const u8 *old = dt->retiring ? (const u8 *)dt->retiring->bits +
					       block * DT_BLOCK_SIZE : NULL;

		/* Whole logical blocks of the metadata device. */
		for (s = 0; s < DT_BLOCK_SECTORS; s += spb)
			if (mask & GENMASK(s + spb - 1, s))
				mask |= GENMASK(s + spb - 1, s);

		for_each_set_bitrange(s, e, &mask, DT_BLOCK_SECTORS) {
			sector_t sector = block * DT_BLOCK_SECTORS + s;

			memcpy(slot + s * SECTOR_SIZE, bits + s * SECTOR_SIZE,
			       (e - s) * SECTOR_SIZE);
			/* Bits of writes still in flight from before a clear. */
			if (old) {
				unsigned int j;

				for (j = s * SECTOR_SIZE; j < e * SECTOR_SIZE; j++)
					slot[j] |= old[j];
			}
			/* Contiguous on disk and in the buffer: one write. */
			if (last && last->sector + last->nr_sectors == sector &&
			    last->buf + last->nr_sectors * SECTOR_SIZE ==
			    slot + s * SECTOR_SIZE) {
				last->nr_sectors += e - s;
				continue;
			}
			last = &spans[nr_spans++];
			last->sector = sector;
			last->nr_sectors = e - s;
			last->buf = slot + s * SECTOR_SIZE;
		}
	}
	return nr_spans;
}

/*
 * Write the queued sectors, durably.  Returns 0 when they are durable, or
 * need not be any more (after a metadata error, once the superblock no
 * longer vouches for the bitmap), and an error (now or for an earlier flush
 * of this activation) when they may not be and the stored state may still
 * vouch for them.  Called with 'lock' held and the direct path blocked.
 */
static int dt_batch_flush(struct dirtytrack *dt)
{
	unsigned int nr_spans;
	int r;

	if (test_bit(DT_F_METADATA_ERROR, &dt->flags)) {
		dt->batch_nr = 0;
		return test_bit(DT_F_HONEST, &dt->flags) ? 0 : -EIO;
	}
	if (!dt->batch_nr)
		return 0;

	nr_spans = dt_batch_spans(dt, dt_live_locked(dt));
	r = dt_md_write_live_spans(dt->metadata_dev->bdev, dt->batch_spans,
				   nr_spans);
	if (r) {
		dt_metadata_failed(dt, "write-intent bitmap write", r);
		/*
		 * The stored bitmap may now miss bits: stop vouching for it.
		 * Until that is durable, writes that need bits stay held.
		 */
		if (!dt_make_honest(dt))
			r = 0;
	}
	return r;
}

static void dt_batch_add(struct dirtytrack *dt, u64 block, u8 sectors)
{
	unsigned int i;

	for (i = 0; i < dt->batch_nr; i++) {
		if (dt->batch[i].block == block) {
			dt->batch[i].sectors |= sectors;
			return;
		}
	}
	if (dt->batch_nr == DT_BATCH_BLOCKS)
		dt_batch_flush(dt);
	dt->batch[dt->batch_nr].block = block;
	dt->batch[dt->batch_nr].sectors = sectors;
	dt->batch_nr++;
}

/* crash_safe: queue the bitmap sectors holding clusters @first..@last. */
static void dt_batch_add_range(struct dirtytrack *dt, u64 first, u64 last)
{
	const u64 per_sector = SECTOR_SIZE * 8;
	u64 b;

	for (b = first / DT_BITS_PER_BLOCK; b <= last / DT_BITS_PER_BLOCK; b++) {
		u64 lo = max(first, b * DT_BITS_PER_BLOCK);
		u64 hi = min(last, (b + 1) * DT_BITS_PER_BLOCK - 1);

		dt_batch_add(dt, b,
			     GENMASK((hi % DT_BITS_PER_BLOCK) / per_sector,
				     (lo % DT_BITS_PER_BLOCK) / per_sector));
	}
}

/*
 * crash_safe: record clusters @first..@last of the live set @live, set in
 * it before a flush that succeeded, as durable.  Only the owner of the
 * batch writes 'durable'; dt_map() reads it lock-free.
 */
static void dt_durable_mark(struct dt_bitmap *live, u64 first, u64 last)
{
	unsigned long *durable = live->durable;
	u64 c = first;

	while (c <= last) {
		if (c % BITS_PER_LONG == 0 && last - c >= BITS_PER_LONG - 1) {
			WRITE_ONCE(durable[c / BITS_PER_LONG], ~0UL);
			c += BITS_PER_LONG;
			continue;
		}
		if (!test_bit(dt_bit(c), durable))
			set_bit(dt_bit(c), durable);
		c++;
	}
}

/*
 * crash_safe: write the whole live set durably.  Its bits are not recorded
 * as durable (that would need a snapshot of the whole set); a later write
 * to one of them waits for one more bitmap write, which is only slower.
 * Returns 0 when it is durable (always in the default mode).
 */
static int dt_persist_live(struct dirtytrack *dt)
{
	if (!dt->crash_safe)
		return 0;
	dt_batch_add_range(dt, 0, dt->nr_clusters - 1);
	return dt_batch_flush(dt);
}

/*
 * crash_safe: queue the bits of held @bio in the batch for @live, marked
 * again there if @bio was marked in a set that is no longer live (see
 * dt_persist_bios()).
 */
static void dt_batch_add_bio(struct dirtytrack *dt, struct dt_bitmap *live,
			     struct bio *bio)
{
	struct dt_per_bio *pb = dm_per_bio_data(bio, sizeof(*pb));

	if (pb->bm != live)
		dt_bitmap_mark(live, pb->first, pb->last);
	dt_batch_add_range(dt, pb->first, pb->last);
}

/* crash_safe: the batch holding @bios was written: record them durable. */
static void dt_durable_mark_bios(struct dt_bitmap *live,
				 struct bio_list *bios)
{
	struct bio *bio;

	bio_list_for_each(bio, bios) {
		struct dt_per_bio *pb = dm_per_bio_data(bio, sizeof(*pb));

		dt_durable_mark(live, pb->first, pb->last);
	}
}

/*
 * crash_safe: make the bits of held @bios durable.  A bio marked in a set
 * that has since been frozen is durable already (a checkpoint writes the
 * frozen set); one marked in a set since cleared is marked again in the
 * live set, so that it is never lost.  Returns 0 when the bios may go:
 * their bits are durable, or a failed metadata write was followed by a
 * durable superblock that no longer vouches for the bitmap.
 */
static int dt_persist_bios(struct dirtytrack *dt, struct bio_list *bios)
{
	struct dt_bitmap *live = dt_live_locked(dt);
	struct bio *bio;

	if (test_bit(DT_F_DEGRADED, &dt->flags))
		return 0;
	bio_list_for_each(bio, bios)
		dt_batch_add_bio(dt, live, bio);
	if (!dt_batch_flush(dt)) {
		dt_durable_mark_bios(live, bios);
		return 0;
	}
	return dt_make_honest(dt) ? -EIO : 0;
}

/*
 * The held bios cannot go: the metadata they need cannot be written, and
 * the stored state may still vouch for a bitmap that lacks them.  With
 * the availability feature they go all the same (what that can lose is in
 * the documentation).  Otherwise they are held and retried about once a
 * second, for metadata_hold_seconds since the hold began, and then failed;
 * once that time is up, each new hold is tried once before it fails.
 * Called with 'lock' held.
 */
static void dt_hold_failed(struct dirtytrack *dt, struct bio_list *bios)
{
	const char *name = dm_table_device_name(dt->ti->table);
	unsigned int nr = 0;
	struct bio *bio;

	if (dt->availability) {
		if (!test_and_set_bit(DT_F_DEGRADED, &dt->flags))
			DMERR("%s: the superblock cannot be made to stop vouching for the stored bitmap; availability: writes go on, and a crash before a later superblock write succeeds may lose their clusters",
			      name);
		dt_release_held(bios);
		queue_delayed_work(dt->wq, &dt->retry_work, HZ);
		return;
	}
	if (!dt->holding) {
		dt->holding = true;
		dt->hold_since = jiffies;
		DMERR("%s: metadata cannot be written; holding writes that need it for up to %u s",
		      name, metadata_hold_seconds);
	}
	if (time_before(jiffies, dt->hold_since +
				 (unsigned long)metadata_hold_seconds * HZ)) {
		spin_lock(&dt->held_lock);
		bio_list_merge_head(&dt->held, bios);
		spin_unlock(&dt->held_lock);
		queue_delayed_work(dt->wq, &dt->retry_work, HZ);
		return;
	}
	while ((bio = bio_list_pop(bios))) {
		bio_io_error(bio);
		nr++;
	}
	DMERR_LIMIT("%s: metadata still cannot be written after %u s; failed %u writes",
		    name, metadata_hold_seconds, nr);
}

/*
 * Let the held bios go once what they need is durable: their bits
 * (crash_safe) or the cleared valid flag (default mode).  Called with
 * 'lock' held (dt_lock()); sleeps.
 */
static void dt_process_held(struct dirtytrack *dt)
{
	struct bio_list bios;
	int r;

	dt_take_held(dt, &bios);
	if (dt->crash_safe)
		r = dt_persist_bios(dt, &bios);
	else if (test_bit(DT_F_DEGRADED, &dt->flags))
		r = 0;
	else
		r = dt_invalidate(dt);
	if (r) {
		dt_hold_failed(dt, &bios);
		return;
	}
	dt->holding = false;
	dt_release_held(&bios);
}

/*
 * crash_safe: the direct path.  A write that must wait for its bits is
 * held, and the submitter that finds no batch in flight builds one from
 * the held bios and submits its metadata writes from dt_map() itself.  The
 * completion marks the batch's ranges durable, lets its bios go and starts
 * the next batch from what was held meanwhile.  On a metadata device that
 * completes in the submitter's context (brd, zram, null_blk) all of this
 * runs in the thread that wrote, with no worker to wake; elsewhere a work
 * item completes the batch.  Holders of 'lock' block the path (dt_lock())
 * and use the worker path above; so does a batch that cannot be built or
 * whose write fails: its bios go back to be retried by dt_process_held(),
 * which knows how to fail.
 */
static bool dt_aw_idle(struct dirtytrack *dt)
{
	bool idle;

	spin_lock(&dt->held_lock);
	idle = !dt->aw_busy;
	spin_unlock(&dt->held_lock);
	return idle;
}

/*
 * Give up 'aw_busy' and hand what is still held to the worker.  Called
 * with 'held_lock' held, and 'dt' is not touched after it is dropped: a
 * waiter in dt_lock() may go on to suspend and destroy the target (whose
 * destructor drains the worker first).
 */
static void dt_aw_stop_locked(struct dirtytrack *dt)
{
	dt->aw_busy = false;
	/* A waiter queues itself before it takes 'held_lock' to look. */
	if (waitqueue_active(&dt->aw_wait))
		wake_up(&dt->aw_wait);
	if (!bio_list_empty(&dt->held))
		queue_work(dt->wq, &dt->held_work);
}

static void dt_aw_endio(struct bio *bio);

/*
 * Build and submit the next batch from the held bios, or give up
 * 'aw_busy' when there is none to build.  Called by the owner of
 * 'aw_busy' with 'held_lock' held, which it drops; never sleeps.
 */
static void dt_aw_run_locked(struct dirtytrack *dt)
	__releases(&dt->held_lock)
{
	/* Not replaced while 'aw_busy' is ours. */
	struct dt_bitmap *live = rcu_dereference_protected(dt->live, 1);
	struct bio_list bios;
	unsigned int nr_spans;
	struct bio *bio;

	bio_list_init(&bios);
	if (dt->aw_blocked || test_bit(DT_F_METADATA_ERROR, &dt->flags))
		goto stop;
	while ((bio = bio_list_peek(&dt->held))) {
		struct dt_per_bio *pb = dm_per_bio_data(bio, sizeof(*pb));
		u64 blocks = pb->last / DT_BITS_PER_BLOCK -
			     pb->first / DT_BITS_PER_BLOCK + 1;

		/* What does not fit waits for the next batch. */
		if (dt->batch_nr + blocks > DT_BATCH_BLOCKS)
			break;
		bio_list_pop(&dt->held);
		bio_list_add(&bios, bio);
		dt_batch_add_bio(dt, live, bio);
	}
	if (bio_list_empty(&bios))
		goto stop;	/* none held, or one too big: the worker's */
	spin_unlock(&dt->held_lock);

	dt->aw_bios = bios;
	nr_spans = dt_batch_spans(dt, live);
	if (!dt_md_submit_live_spans(dt->metadata_dev->bdev, &dt->aw_bs,
				     &dt->aw_bio, dt->batch_spans, nr_spans,
				     dt_aw_endio, dt))
		return;

	/* No bio to be had without waiting: the worker writes them. */
	spin_lock(&dt->held_lock);
	bio_list_merge_head(&dt->held, &dt->aw_bios);
	bio_list_init(&dt->aw_bios);
stop:
	dt->batch_nr = 0;
	dt_aw_stop_locked(dt);
	spin_unlock(&dt->held_lock);
}

/* The batch's metadata write is done: release its bios, go on. */
static void dt_aw_complete(struct dirtytrack *dt)
{
	struct dt_bitmap *live = rcu_dereference_protected(dt->live, 1);
	struct bio_list bios = dt->aw_bios;

	bio_list_init(&dt->aw_bios);
	if (dt->aw_status) {
		spin_lock(&dt->held_lock);
		bio_list_merge_head(&dt->held, &bios);
		dt_aw_stop_locked(dt);
		spin_unlock(&dt->held_lock);
		return;
	}
	dt_durable_mark_bios(live, &bios);
	dt_release_held(&bios);
	spin_lock(&dt->held_lock);
	dt_aw_run_locked(dt);
}

static void dt_aw_work(struct work_struct *ws)
{
	dt_aw_complete(container_of(ws, struct dirtytrack, aw_work));
}

static void dt_aw_endio(struct bio *bio)
{
	struct dirtytrack *dt = bio->bi_private;

	dt->aw_status = bio->bi_status;
	dt_md_put_live_bio(bio);
	/*
	 * Inside a submitter's bio loop the bios released here are only
	 * queued on it: go on in place.  From an interrupt, or a driver's
	 * own thread that might block on the very bios it is to complete,
	 * hand over to the work item.
	 */
	if (in_task() && current->bio_list)
		dt_aw_complete(dt);
	else
		queue_work(dt->aw_wq, &dt->aw_work);
}

/* crash_safe: hold @bio until its bits are durable. */
static int dt_hold_crash_safe(struct dirtytrack *dt, struct bio *bio)
{
	spin_lock(&dt->held_lock);
	bio_list_add(&dt->held, bio);
	/* A batch in flight takes it next; a holder of 'lock', the worker. */
	if (!dt->aw_busy && !dt->aw_blocked) {
		dt->aw_busy = true;
		dt_aw_run_locked(dt);
		return DM_MAPIO_SUBMITTED;
	}
	if (!dt->aw_busy)
		queue_work(dt->wq, &dt->held_work);
	spin_unlock(&dt->held_lock);
	return DM_MAPIO_SUBMITTED;
}

/*
 * 'lock', and in crash_safe mode the batch and the live set with it: the
 * direct path is stopped, and a batch it has in flight waited for.
 */
static void dt_lock(struct dirtytrack *dt)
{
	mutex_lock(&dt->lock);
	if (!dt->crash_safe)
		return;
	spin_lock(&dt->held_lock);
	dt->aw_blocked = true;
	spin_unlock(&dt->held_lock);
	wait_event(dt->aw_wait, dt_aw_idle(dt));
}

static void dt_unlock(struct dirtytrack *dt)
{
	if (dt->crash_safe) {
		spin_lock(&dt->held_lock);
		dt->aw_blocked = false;
		spin_unlock(&dt->held_lock);
	}
	mutex_unlock(&dt->lock);
}

static void dt_held_work(struct work_struct *ws)
{
	struct dirtytrack *dt = container_of(ws, struct dirtytrack, held_work);

	dt_lock(dt);
	dt_process_held(dt);
	dt_unlock(dt);
}

/*
 * The retry of dt_hold_failed(): the held bios again, and with the
 * availability feature, the superblock until it stops vouching.
 */
static void dt_retry_work(struct work_struct *ws)
{
	struct dirtytrack *dt = container_of(to_delayed_work(ws),
					     struct dirtytrack, retry_work);

	dt_lock(dt);
	if (test_bit(DT_F_OWNER, &dt->flags)) {
		if (dt->availability && !test_bit(DT_F_HONEST, &dt->flags) &&
		    test_bit(DT_F_DEGRADED, &dt->flags) &&
		    dt_make_honest(dt))
			queue_delayed_work(dt->wq, &dt->retry_work, HZ);
		dt_process_held(dt);
	}
	dt_unlock(dt);
}

/*
 * Write both sets, then the superblock with the valid flag (unless metadata
 * I/O failed in this activation).  Called with 'lock' held, no I/O in
 * flight (postsuspend).
 */
static void dt_write_metadata(struct dirtytrack *dt)
{
	struct block_device *bdev = dt->metadata_dev->bdev;
	int r;

	r = dt_md_write_bitmap(bdev, dt->nr_clusters, false,
			       dt_live_locked(dt)->bits);
	if (!r && dt->frozen)
		r = dt_md_write_bitmap(bdev, dt->nr_clusters, true,
				       dt->frozen->bits);
	if (r)
		dt_metadata_failed(dt, "bitmap write", r);
	dt_write_superblock(dt, true);
}

/* ------------------------------------------------------------------ */
/* Loading at resume                                                   */
/* ------------------------------------------------------------------ */

static int dt_format(struct dirtytrack *dt)
{
	struct dt_sb_info info = {};
	int r;

	generate_random_uuid(info.uuid);
	info.data_sectors = dt->ti->len;
	info.cluster_sectors = dt->cluster_sectors;
	info.nr_clusters = dt->nr_clusters;

	spin_lock(&dt->state_lock);
	dt->sb = info;
	dt->health = DT_HEALTH_IS_OK;
	spin_unlock(&dt->state_lock);

	/* No valid flag: a crash before the first clean suspend is unclean. */
	dt_sb_snapshot(dt, &info, dt_sb_flags(dt, false));
	r = dt_md_write_superblock(dt->metadata_dev->bdev, &info);
	if (r)
		return r;
	DMINFO("%s: formatted metadata device %s",
	       dm_table_device_name(dt->ti->table), dt->metadata_dev->name);
	return 0;
}

/* A frozen set's identity: random, never 0 (which means none). */
static u64 dt_new_frozen_id(void)
{
	u64 id;

	do {
		id = get_random_u64();
	} while (!id);
	return id;
}

/* Read a stored set of the geometry in @info into a bitmap of ours. */
static int dt_load_set(struct dirtytrack *dt, const struct dt_sb_info *info,
		       bool frozen, struct dt_bitmap *bm)
{
	int r;

	if (info->nr_clusters == dt->nr_clusters)
		return dt_md_read_bitmap(dt->metadata_dev->bdev,
					 dt->nr_clusters, frozen, bm->bits);

	/* Grown: the stored bitmap is the prefix of ours. */
	memset(bm->bits, 0, dt_bitmap_bytes(dt->nr_clusters));
	r = dt_md_read_bitmap(dt->metadata_dev->bdev, info->nr_clusters,
			      frozen, bm->bits);
	if (r)
		return r;
	dt_bitmap_clip(bm, info->nr_clusters);
	return 0;
}

/*
 * Load the metadata into memory.  Returns 0 with the sets loaded, or a
 * negative errno for a superblock that this table cannot use.  Metadata
 * read errors do not fail: they load an all-dirty set, degraded.
 */
static int dt_load(struct dirtytrack *dt)
{
	struct dt_bitmap *live = dt_live_locked(dt);
	struct dt_bitmap *frozen = NULL;
	struct dt_sb_info info;
	const char *error;
	bool grown;
	int r;

	/* Forget what an earlier activation of this instance had in memory. */
	dt_bitmap_free(dt->frozen);
	dt->frozen = NULL;
	memset(live->bits, 0, dt_bitmap_bytes(dt->nr_clusters));
	if (live->durable)
		memset(live->durable, 0, dt_bitmap_bytes(dt->nr_clusters));
	atomic_long_set(&live->nr_set, 0);
	dt->epoch++;
	clear_bit(DT_F_METADATA_ERROR, &dt->flags);
	clear_bit(DT_F_SB_VALID_ON_DISK, &dt->flags);
	clear_bit(DT_F_HONEST, &dt->flags);
	clear_bit(DT_F_DEGRADED, &dt->flags);
	dt->holding = false;
	spin_lock(&dt->state_lock);
	dt->sb.frozen_id = 0;
	dt->sb.data_sectors = dt->ti->len;
	dt->sb.cluster_sectors = dt->cluster_sectors;
	dt->sb.nr_clusters = dt->nr_clusters;
	dt->health = DT_HEALTH_IS_OK;
	spin_unlock(&dt->state_lock);

	r = dt_md_read_superblock(dt->metadata_dev->bdev, &info, &error);
	if (r == -ENODATA)
		goto format;
	if (r == -EINVAL || r == -ENOMEM) {
		DMERR("%s: cannot load metadata: %s",
		      dm_table_device_name(dt->ti->table), error ? error : "out of memory");
		return r;
	}
	if (r)
		goto read_error;

	if (info.cluster_sectors != dt->cluster_sectors ||
	    info.data_sectors > dt->ti->len) {
		DMERR("%s: metadata geometry changed under this table (cluster %u sectors, data %llu sectors)",
		      dm_table_device_name(dt->ti->table), info.cluster_sectors,
		      info.data_sectors);
		return -EINVAL;
	}
	grown = info.data_sectors < dt->ti->len;
	/*
	 * Every activation that changed a set stored a newer generation
	 * before it gave up the metadata: epochs of this load never repeat
	 * one a reader may have seen from an earlier instance.
	 */
	dt->epoch = max(dt->epoch, info.generation << 32);

	spin_lock(&dt->state_lock);
	dt->sb = info;
	dt->sb.data_sectors = dt->ti->len;
	dt->sb.nr_clusters = dt->nr_clusters;
	dt->health = (info.flags & DT_SB_FLAG_UNCLEAN) ?
		DT_HEALTH_IS_UNCLEAN : DT_HEALTH_IS_OK;
	spin_unlock(&dt->state_lock);

	if (!(info.flags & DT_SB_FLAG_VALID)) {
		/* Unclean shutdown: nothing stored can be trusted. */
		DMWARN("%s: metadata was not shut down cleanly; every cluster is dirty",
		       dm_table_device_name(dt->ti->table));
		dt_bitmap_fill(live, dt->nr_clusters);
		dt_set_health(dt, DT_HEALTH_IS_UNCLEAN);
		return 0;
	}

	r = dt_load_set(dt, &info, false, live);
	if (r)
		goto read_error;
	dt_bitmap_clip(live, dt->nr_clusters);
	dt_bitmap_recount(live, dt->nr_clusters);

	if (info.flags & DT_SB_FLAG_FROZEN) {
		frozen = dt_bitmap_alloc(dt->nr_clusters, false);
		if (!frozen)
			return -ENOMEM;
		/*
		 * No write is marked in a stored set.  Kill its count and wait
		 * for the switch to finish, so that freeing it later never
		 * races the RCU callback of the kill.
		 */
		percpu_ref_kill(&frozen->inflight);
		dt_bitmap_wait_drained(frozen);
		r = dt_load_set(dt, &info, true, frozen);
		if (r) {
			dt_bitmap_free(frozen);
			goto read_error;
		}
		dt_bitmap_clip(frozen, dt->nr_clusters);
		dt_bitmap_recount(frozen, dt->nr_clusters);
		dt->frozen = frozen;
		/*
		 * Stored before frozen sets had identities: give it one, so
		 * that commit and rollback can be fenced from now on.
		 */
		if (!info.frozen_id) {
			spin_lock(&dt->state_lock);
			dt->sb.frozen_id = dt_new_frozen_id();
			spin_unlock(&dt->state_lock);
		}
	}

	set_bit(DT_F_SB_VALID_ON_DISK, &dt->flags);
	if (grown) {
		/* Clusters that hold data new to the device are dirty. */
		u64 first = info.data_sectors >> dt->cluster_shift;

		/*
		 * The bitmaps move: the live area grows over the start of
		 * the old frozen area, and dt_write_metadata() stores both
		 * in the new geometry before the superblock that describes
		 * it.  Until then the old superblock must not vouch for the
		 * areas it points at: store one without the valid flag
		 * first.  A crash in between loads all dirty; a failed
		 * write degrades, and preresume then overwrites nothing.
		 * The default mode's dt_invalidate() writes the same.
		 */
		if (dt->crash_safe && dt->frozen)
			dt_write_superblock(dt, false);
		dt_invalidate(dt);
		dt_bitmap_mark(live, first, dt->nr_clusters - 1);
		DMINFO("%s: data grew from %llu to %llu sectors; new clusters marked dirty",
		       dm_table_device_name(dt->ti->table), info.data_sectors,
		       (unsigned long long)dt->ti->len);
	}
	return 0;

format:
	r = dt_format(dt);
	if (r)
		goto read_error;
	return 0;

read_error:
	/* Degraded: all dirty; suspend will try to store that, never VALID. */
	dt_metadata_failed(dt, "read", r);
	dt_bitmap_fill(live, dt->nr_clusters);
	spin_lock(&dt->state_lock);
	if (!memchr_inv(dt->sb.uuid, 0, DT_UUID_SIZE))
		generate_random_uuid(dt->sb.uuid);
	dt->sb.frozen_id = 0;
	spin_unlock(&dt->state_lock);
	/* What is on disk is unknown: make it stop vouching for itself. */
	if (dt->crash_safe)
		dt_write_superblock(dt, false);
	else
		set_bit(DT_F_SB_VALID_ON_DISK, &dt->flags);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Constructor and destructor                                          */
/* ------------------------------------------------------------------ */

/*
 * ctr error strings that carry numbers: a small ring of buffers, since
 * ti->error must outlive the constructor that sets it.
 */
#define DT_ERROR_SLOTS 8
static char dt_error_ring[DT_ERROR_SLOTS][128];
static atomic_t dt_error_next = ATOMIC_INIT(0);

static __printf(2, 3) void dt_error(struct dm_target *ti, const char *fmt, ...)
{
	char *buf = dt_error_ring[atomic_inc_return(&dt_error_next) % DT_ERROR_SLOTS];
	va_list args;

	va_start(args, fmt);
	vscnprintf(buf, sizeof(dt_error_ring[0]), fmt, args);
	va_end(args);
	ti->error = buf;
}

static int dt_parse_features(struct dm_arg_set *as, struct dirtytrack *dt,
			     struct dm_target *ti, const char **store_path)
{
	static const struct dm_arg _args[] = {
		{0, 4, "Invalid number of feature arguments"},
	};
	unsigned int argc;
	const char *name;
	int r;

	if (!as->argc)
		return 0;

	r = dm_read_arg_group(_args, as, &argc, &ti->error);
	if (r)
		return r;

	while (argc--) {
		name = dm_shift_arg(as);
		if (!strcasecmp(name, DT_FEATURE_CRASH_SAFE)) {
			dt->crash_safe = true;
			continue;
		}
		if (!strcasecmp(name, DT_FEATURE_AVAILABILITY)) {
			dt->availability = true;
			continue;
		}
		if (!strcasecmp(name, DT_FEATURE_SNAPSHOT_STORE) && argc &&
		    !*store_path) {
			*store_path = dm_shift_arg(as);
			argc--;
			continue;
		}
		dt_error(ti, "Unknown feature: %s", name);
		return -EINVAL;
	}
	return 0;
}

/* Read-only look at the metadata device: refuse what this table cannot use. */
static int dt_check_metadata(struct dirtytrack *dt, struct dm_target *ti)
{
	struct block_device *bdev = dt->metadata_dev->bdev;
	u64 need = dt_metadata_min_sectors(dt->nr_clusters);
	u64 have = bdev_nr_sectors(bdev);
	struct dt_sb_info info;
	const char *error;
	int r;

	if (have < need) {
		dt_error(ti, "Metadata device too small: need %llu sectors, have %llu",
			 need, have);
		return -EINVAL;
	}

	r = dt_md_read_superblock(bdev, &info, &error);
	if (r == -ENODATA)
		return 0;
	if (r == -EINVAL) {
		dt_error(ti, "Metadata device is not usable (%s); refusing to overwrite it",
			 error);
		return r;
	}
	if (r) {
		dt_error(ti, "%s", error ? error : "Cannot read the metadata device");
		return r;
	}
	if (info.cluster_sectors != dt->cluster_sectors) {
		dt_error(ti, "Cluster size mismatch: metadata has %u sectors, table has %u",
			 info.cluster_sectors, dt->cluster_sectors);
		return -EINVAL;
	}
	if (info.data_sectors > ti->len) {
		dt_error(ti, "Data device shrank: metadata tracks %llu sectors, table has %llu",
			 info.data_sectors, (unsigned long long)ti->len);
		return -EINVAL;
	}
	return 0;
}

/* snapshot_store <dev>: open it and set up its snapshot. */
static int dt_open_store(struct dirtytrack *dt, struct dm_target *ti,
			 const char *path)
{
	struct dt_snap *snap;
	int r;

	r = dm_get_device(ti, path, dm_table_get_mode(ti->table),
			  &dt->store_dev);
	if (r) {
		ti->error = "Error opening snapshot store";
		return r;
	}
	if (dt->store_dev->bdev == dt->data_dev->bdev ||
	    dt->store_dev->bdev == dt->metadata_dev->bdev) {
		ti->error = "Snapshot store must differ from the data and metadata devices";
		return -EINVAL;
	}
	snap = dt_snap_create(ti, dt->data_dev, dt->store_dev,
			      dt->cluster_sectors, dt->nr_clusters,
			      &ti->error);
	if (IS_ERR(snap))
		return PTR_ERR(snap);
	dt->snap = snap;
	return 0;
}

/*
 * Construct a dirtytrack target:
 *
 *   <metadata_dev> <data_dev> <cluster_sectors> [<#feature_args> <feature>...]
 *
 *   metadata_dev:    holds the superblock and the bitmaps; an all-zero
 *                    device is formatted on first resume
 *   data_dev:        the tracked device, mapped 1:1 from sector 0
 *   cluster_sectors: tracking granularity, a power of two from 8 to 2^21
 *   features:        crash_safe: write-intent tracking, exact after a crash
 *                    availability: never hold or fail a write because its
 *                    metadata cannot be written (see the documentation)
 *                    snapshot_store <dev>: preserve the frozen set as of
 *                    each checkpoint (dm-dirtytrack-snapshot.c)
 */
static int dt_ctr(struct dm_target *ti, unsigned int argc, char **argv)
{
	const char *store_path = NULL;
	struct dt_bitmap *live = NULL;
	struct dm_arg_set as;
	struct dirtytrack *dt;
	unsigned int cs;
	int r;

	if (argc < 3) {
		ti->error = "Invalid argument count: need <metadata_dev> <data_dev> <cluster_sectors> [<#features> <feature>...]";
		return -EINVAL;
	}

	dt = kzalloc(sizeof(*dt), GFP_KERNEL);
	if (!dt) {
		ti->error = "Cannot allocate context";
		return -ENOMEM;
	}
	dt->ti = ti;
	mutex_init(&dt->msg_lock);
	mutex_init(&dt->lock);
	spin_lock_init(&dt->held_lock);
	spin_lock_init(&dt->state_lock);
	bio_list_init(&dt->held);
	INIT_WORK(&dt->held_work, dt_held_work);
	INIT_DELAYED_WORK(&dt->retry_work, dt_retry_work);
	INIT_WORK(&dt->aw_work, dt_aw_work);
	init_waitqueue_head(&dt->aw_wait);
	bio_list_init(&dt->aw_bios);
	dt->frozen_clusters = -1;

	if (kstrtouint(argv[2], 10, &cs) || !dt_cluster_sectors_valid(cs)) {
		ti->error = "Invalid cluster size: must be a power of two from 8 to 2097152 sectors";
		r = -EINVAL;
		goto bad;
	}
	dt->cluster_sectors = cs;
	dt->cluster_shift = __ffs(cs);
	dt->nr_clusters = dt_nr_clusters(ti->len, cs);
	if (dt_bitmap_blocks(dt->nr_clusters) * DT_BLOCK_SIZE >
	    DT_MAX_BITMAP_BYTES) {
		DMERR("bitmap of %llu clusters needs %llu bytes, above the %llu this machine allows",
		      dt->nr_clusters,
		      dt_bitmap_blocks(dt->nr_clusters) * DT_BLOCK_SIZE,
		      (unsigned long long)DT_MAX_BITMAP_BYTES);
		ti->error = "Bitmap too large for this machine";
		r = -EINVAL;
		goto bad;
	}

	as.argc = argc - 3;
	as.argv = argv + 3;
	r = dt_parse_features(&as, dt, ti, &store_path);
	if (r)
		goto bad;
	if (as.argc) {
		ti->error = "Invalid argument count: unexpected arguments after the features";
		r = -EINVAL;
		goto bad;
	}

	r = dm_get_device(ti, argv[0], dm_table_get_mode(ti->table),
			  &dt->metadata_dev);
	if (r) {
		ti->error = "Error opening metadata device";
		goto bad;
	}
	r = dm_get_device(ti, argv[1], dm_table_get_mode(ti->table),
			  &dt->data_dev);
	if (r) {
		ti->error = "Error opening data device";
		goto bad_data;
	}
	if (dt->metadata_dev->bdev == dt->data_dev->bdev) {
		ti->error = "Metadata and data devices must differ";
		r = -EINVAL;
		goto bad_live;
	}
	if (bdev_logical_block_size(dt->metadata_dev->bdev) > DT_BLOCK_SIZE) {
		ti->error = "Metadata device logical block size above 4096 bytes is not supported";
		r = -EINVAL;
		goto bad_live;
	}
	dt->md_sectors_per_lbs =
		bdev_logical_block_size(dt->metadata_dev->bdev) >> SECTOR_SHIFT;
	if (store_path) {
		r = dt_open_store(dt, ti, store_path);
		if (r)
			goto bad_live;
	}

	r = dt_check_metadata(dt, ti);
	if (r)
		goto bad_live;

	r = -ENOMEM;
	live = dt_bitmap_alloc(dt->nr_clusters, dt->crash_safe);
	if (!live) {
		dt_error(ti, "Cannot allocate a bitmap of %llu clusters",
			 dt->nr_clusters);
		goto bad_live;
	}
	if (dt->crash_safe) {
		dt->batch_buf = kvmalloc(DT_BATCH_BLOCKS * DT_BLOCK_SIZE,
					 GFP_KERNEL);
		if (!dt->batch_buf) {
			ti->error = "Cannot allocate write-intent buffer";
			goto bad_wq;
		}
		if (bioset_init(&dt->aw_bs, 16, 0, BIOSET_NEED_BVECS)) {
			ti->error = "Cannot allocate write-intent bios";
			goto bad_wq;
		}
		dt->aw_wq = alloc_workqueue("dirtytrack_aw",
					    WQ_MEM_RECLAIM | WQ_UNBOUND, 0);
		if (!dt->aw_wq) {
			ti->error = "Cannot allocate workqueue";
			goto bad_wq;
		}
	}

	dt->wq = alloc_workqueue("dirtytrack", WQ_MEM_RECLAIM | WQ_UNBOUND, 0);
	if (!dt->wq) {
		ti->error = "Cannot allocate workqueue";
		goto bad_wq;
	}
	RCU_INIT_POINTER(dt->live, live);

	ti->num_flush_bios = 1;
	ti->num_discard_bios = 1;
	ti->num_secure_erase_bios = 1;
	ti->num_write_zeroes_bios = 1;
	ti->per_io_data_size = sizeof(struct dt_per_bio);
	ti->private = dt;
	return 0;

bad_wq:
	if (dt->aw_wq)
		destroy_workqueue(dt->aw_wq);
	bioset_exit(&dt->aw_bs);
	kvfree(dt->batch_buf);
	dt_bitmap_free(live);
bad_live:
	if (dt->snap)
		dt_snap_put(dt->snap);
	if (dt->store_dev)
		dm_put_device(ti, dt->store_dev);
	dm_put_device(ti, dt->data_dev);
bad_data:
	dm_put_device(ti, dt->metadata_dev);
bad:
	kfree(dt);
	return r;
}

static void dt_dtr(struct dm_target *ti)
{
	struct dirtytrack *dt = ti->private;

	/* Metadata was written at postsuspend; nothing is written here. */
	cancel_delayed_work_sync(&dt->retry_work);
	destroy_workqueue(dt->wq);
	if (dt->aw_wq)
		destroy_workqueue(dt->aw_wq);
	bioset_exit(&dt->aw_bs);
	kvfree(dt->batch_buf);
	dt_bitmap_free(dt->frozen);
	dt_bitmap_free(rcu_dereference_raw(dt->live));
	if (dt->snap) {
		dt_snap_put(dt->snap);
		dm_put_device(ti, dt->store_dev);
	}
	dm_put_device(ti, dt->data_dev);
	dm_put_device(ti, dt->metadata_dev);
	kfree(dt);
}

/* ------------------------------------------------------------------ */
/* I/O                                                                 */
/* ------------------------------------------------------------------ */

static bool dt_bio_changes_data(struct bio *bio)
{
	return op_is_write(bio_op(bio)) && bio_sectors(bio);
}

static int dt_map_write(struct dirtytrack *dt, struct bio *bio, bool ask_snap);

static int dt_map(struct dm_target *ti, struct bio *bio)
{
	struct dirtytrack *dt = ti->private;
	struct dt_per_bio *pb = dm_per_bio_data(bio, sizeof(*pb));
	sector_t offset = dm_target_offset(ti, bio->bi_iter.bi_sector);

	pb->bm = NULL;
	bio_set_dev(bio, dt->data_dev->bdev);
	if (!bio_sectors(bio))
		return DM_MAPIO_REMAPPED;	/* empty flush: nothing to mark */

	bio->bi_iter.bi_sector = offset;
	if (!dt_bio_changes_data(bio))
		return DM_MAPIO_REMAPPED;

	pb->first = offset >> dt->cluster_shift;
	pb->last = (offset + bio_sectors(bio) - 1) >> dt->cluster_shift;
	return dt_map_write(dt, bio, true);
}

/*
 * Mark a remapped write and send it on (or hold it).  @ask_snap: let the
 * snapshot hold it first; dt_snap_checkpoint_begin() relies on that test
 * and the marking sharing one RCU read section.
 */
static int dt_map_write(struct dirtytrack *dt, struct bio *bio, bool ask_snap)
{
	struct dt_per_bio *pb = dm_per_bio_data(bio, sizeof(*pb));
	struct dt_bitmap *live;
	bool hold;

	rcu_read_lock();
	if (ask_snap && dt->snap &&
	    dt_snap_hold_write(dt->snap, bio, pb->first, pb->last)) {
		rcu_read_unlock();
		return DM_MAPIO_SUBMITTED;
	}
	live = rcu_dereference(dt->live);
	/*
	 * Cannot fail: a set is killed a grace period after it stopped
	 * being live (dt_swap_live()).  Without the reference, end_io
	 * leaves the bio alone.
	 */
	if (!WARN_ON_ONCE(!percpu_ref_tryget_live_rcu(&live->inflight)))
		pb->bm = live;
	/* The common case, one cluster already dirty, without a call. */
	if (pb->first != pb->last || !test_bit(dt_bit(pb->first), live->bits))
		dt_bitmap_mark(live, pb->first, pb->last);
	/*
	 * Only DT_F_DEGRADED lets a write pass without its metadata: it is
	 * set once the stored superblock no longer vouches for the bitmap
	 * (or the availability feature gave up), never at the error itself.
	 */
	if (dt->crash_safe)
		hold = !dt_range_set(live->durable, pb->first, pb->last) &&
		       !test_bit(DT_F_DEGRADED, &dt->flags);
	else
		hold = test_bit(DT_F_SB_VALID_ON_DISK, &dt->flags) &&
		       !test_bit(DT_F_DEGRADED, &dt->flags);
	rcu_read_unlock();

	if (unlikely(hold)) {
		if (dt->crash_safe)
			return dt_hold_crash_safe(dt, bio);
		spin_lock(&dt->held_lock);
		hold = test_bit(DT_F_SB_VALID_ON_DISK, &dt->flags) &&
		       !test_bit(DT_F_DEGRADED, &dt->flags);
		if (hold)
			bio_list_add(&dt->held, bio);
		spin_unlock(&dt->held_lock);
		if (hold) {
			queue_work(dt->wq, &dt->held_work);
			return DM_MAPIO_SUBMITTED;
		}
	}
	return DM_MAPIO_REMAPPED;
}

/* A write the snapshot held until its clusters were preserved. */
void dt_resubmit_write(struct dm_target *ti, struct bio *bio)
{
	if (dt_map_write(ti->private, bio, false) == DM_MAPIO_REMAPPED)
		dm_submit_bio_remap(bio, NULL);
}

/*
 * A write marked in a set that stopped being live while it was in flight
 * (a checkpoint or clear) is marked again in the live set, so that no
 * write completing after a checkpoint can hide in a frozen set that a
 * backup may already have read.  Then the set may drain.
 */
static int dt_end_io(struct dm_target *ti, struct bio *bio,
		     blk_status_t *error)
{
	struct dirtytrack *dt = ti->private;
	struct dt_per_bio *pb = dm_per_bio_data(bio, sizeof(*pb));
	struct dt_bitmap *bm = pb->bm;

	if (bm) {
		if (bm != rcu_access_pointer(dt->live))
			dt_mark_live(dt, pb->first, pb->last);
		percpu_ref_put(&bm->inflight);
	}
	return DM_ENDIO_DONE;
}

/* ------------------------------------------------------------------ */
/* Suspend and resume                                                  */
/* ------------------------------------------------------------------ */

static int dt_preresume(struct dm_target *ti)
{
	struct dirtytrack *dt = ti->private;
	struct dt_bitmap *live;
	int r = 0;

	dt_lock(dt);
	if (test_bit(DT_F_OWNER, &dt->flags))
		goto out;
	r = dt_load(dt);
	if (r)
		goto out;
	if (dt->crash_safe && !test_bit(DT_F_METADATA_ERROR, &dt->flags)) {
		/*
		 * Store exactly what was loaded (all dirty after an unclean
		 * default-mode shutdown, new clusters after growth) with the
		 * valid flag, and take it as durable: from here on the stored
		 * bitmap only ever grows ahead of the writes.
		 */
		dt_write_metadata(dt);
		live = dt_live_locked(dt);
		if (!test_bit(DT_F_METADATA_ERROR, &dt->flags))
			memcpy(live->durable, live->bits,
			       dt_bitmap_bytes(dt->nr_clusters));
	}
	set_bit(DT_F_OWNER, &dt->flags);
	dt_update_frozen_count(dt);
out:
	dt_unlock(dt);
	return r;
}

static void dt_postsuspend(struct dm_target *ti)
{
	struct dirtytrack *dt = ti->private;

	/* No write is in flight, none held: only retries of the superblock. */
	cancel_delayed_work_sync(&dt->retry_work);
	/* The store does not survive deactivation. */
	if (dt->snap)
		dt_snap_end(dt->snap);
	flush_workqueue(dt->wq);
	dt_lock(dt);
	if (test_bit(DT_F_OWNER, &dt->flags)) {
		/* crash_safe: marks made at completion are not stored yet. */
		if (dt->crash_safe ||
		    !test_bit(DT_F_SB_VALID_ON_DISK, &dt->flags) ||
		    test_bit(DT_F_METADATA_ERROR, &dt->flags))
			dt_write_metadata(dt);
		clear_bit(DT_F_OWNER, &dt->flags);
	}
	dt_unlock(dt);
}

/* ------------------------------------------------------------------ */
/* Messages                                                            */
/* ------------------------------------------------------------------ */
/*
 * State-changing messages run with 'msg_lock' and 'lock' held.  Those that
 * wait for a retired set to drain drop 'lock' meanwhile (held bios may need
 * it); 'msg_lock' keeps other messages out.
 * In crash_safe mode each keeps the stored metadata a superset of the
 * changed clusters at every instant (Documentation/dm-dirtytrack.rst).
 */

static void dt_end_unclean(struct dirtytrack *dt, bool bump_sequence)
{
	spin_lock(&dt->state_lock);
	if (bump_sequence)
		dt->sb.sequence++;
	if (dt->health == DT_HEALTH_IS_UNCLEAN)
		dt->health = DT_HEALTH_IS_OK;
	spin_unlock(&dt->state_lock);
}

/* Undo dt_end_unclean(dt, true) after its superblock could not be stored. */
static void dt_restore_sequence(struct dirtytrack *dt, u64 sequence)
{
	spin_lock(&dt->state_lock);
	dt->sb.sequence = sequence;
	spin_unlock(&dt->state_lock);
}

static u64 dt_sequence(struct dirtytrack *dt)
{
	u64 sequence;

	spin_lock(&dt->state_lock);
	sequence = dt->sb.sequence;
	spin_unlock(&dt->state_lock);
	return sequence;
}

static void dt_set_frozen_id(struct dirtytrack *dt, u64 id)
{
	spin_lock(&dt->state_lock);
	dt->sb.frozen_id = id;
	if (id)
		dt->sb.frozen_sequence = dt->sb.sequence;
	spin_unlock(&dt->state_lock);
}

/* Wait for @old to drain with 'lock' dropped; false if we lost ownership. */
static bool dt_wait_drained_unlocked(struct dirtytrack *dt,
				     struct dt_bitmap *old)
{
	dt_unlock(dt);
	dt_bitmap_wait_drained(old);
	dt_lock(dt);
	return test_bit(DT_F_OWNER, &dt->flags);
}

/*
 * Before a message makes the sets differ from the stored ones: the stored
 * superblock must not vouch for what they are about to stop matching (the
 * default mode's valid flag; after a metadata error, in either mode, the
 * superblock that says so).  Returns -EIO, having changed nothing, when
 * that cannot be made durable.
 */
static int dt_prepare_change(struct dirtytrack *dt)
{
	int r;

	if (test_bit(DT_F_METADATA_ERROR, &dt->flags))
		r = dt_make_honest(dt);
	else
		r = dt_invalidate(dt);
	return r ? -EIO : 0;
}

/*
 * clear: the new sequence is stored before any bit is dropped; if it
 * cannot be, nothing changes and the message fails.  In crash_safe mode
 * the writes that completed while the old set drained are then stored;
 * if that fails, the set is cleared all the same (its sequence is on
 * disk) and the message fails with tracking degraded.
 */
static int dt_msg_clear(struct dirtytrack *dt, struct dt_bitmap **empty)
{
	struct dt_bitmap *old;
	bool owner;
	u64 sequence = dt_sequence(dt);
	int r;

	r = dt_prepare_change(dt);
	if (r)
		return r;
	dt_end_unclean(dt, true);
	if (dt_write_superblock(dt, dt->crash_safe)) {
		dt_restore_sequence(dt, sequence);
		dt_make_honest(dt);
		return -EIO;
	}
	old = dt_swap_live(dt, *empty);
	*empty = NULL;
	/*
	 * crash_safe: until @old has drained, a write-intent batch for the
	 * new set must not drop from disk the bits of writes still in
	 * flight: it stores their union.  Once drained, every such write is
	 * marked again in the live set, which is then stored whole.
	 */
	if (dt->crash_safe)
		dt->retiring = old;
	owner = dt_wait_drained_unlocked(dt, old);
	dt->retiring = NULL;
	if (owner)
		r = dt_persist_live(dt);	/* writes that completed meanwhile */
	dt_bitmap_free(old);
	return r ? -EIO : 0;
}

/*
 * checkpoint: the live set becomes the frozen set, under a new identity,
 * which is the reply.  In crash_safe mode the frozen set and a superblock
 * that says so are stored before any block of the new live set overwrites
 * the old one; if they cannot be, the frozen set is merged back into the
 * live set (nothing is frozen) and the message fails.
 */
static int dt_msg_checkpoint(struct dirtytrack *dt, struct dt_bitmap **empty,
			     char *result, unsigned int maxlen)
{
	struct dt_bitmap *old;
	bool owner;
	u64 id;
	int r = 0;

	r = dt_prepare_change(dt);
	if (r)
		return r;
	id = dt_new_frozen_id();
	/* From here until it is done (or ended), every new write waits. */
	if (dt->snap)
		dt_snap_checkpoint_begin(dt->snap);
	old = dt_swap_live(dt, *empty);
	*empty = NULL;
	dt->frozen = old;
	dt_set_frozen_id(dt, id);
	dt_update_frozen_count(dt);
	if (dt->crash_safe) {
		r = dt_md_write_bitmap(dt->metadata_dev->bdev, dt->nr_clusters,
				       true, old->bits);
		if (r)
			dt_metadata_failed(dt, "frozen bitmap write", r);
		else
			r = dt_write_superblock(dt, true);
	}
	/*
	 * Every write marked in the frozen set has completed on return, and
	 * is in the snapshot: preservation starts only now.
	 */
	owner = dt_wait_drained_unlocked(dt, old);
	if (dt->snap) {
		if (!r && owner)
			dt_snap_checkpoint_done(dt->snap, old->bits);
		else
			dt_snap_end(dt->snap);	/* lets the waiting writes go */
	}
	if (!r) {
		scnprintf(result, maxlen, "%016llx", id);
		return 1;
	}
	if (owner) {
		dt_bitmap_merge(dt_live_locked(dt), old, dt->nr_clusters);
		dt->frozen = NULL;
		dt_bitmap_free(old);
		dt->epoch++;
		dt_set_frozen_id(dt, 0);
		dt_update_frozen_count(dt);
		dt_make_honest(dt);
	}
	return -EIO;
}

/*
 * commit: the frozen set is dropped only once the superblock with the new
 * sequence (and without the frozen set) is durable.  If it is not, the
 * frozen set stays, under the same identity, and so does the sequence.
 */
static int dt_msg_commit(struct dirtytrack *dt)
{
	struct dt_bitmap *frozen = dt->frozen;
	u64 sequence = dt_sequence(dt);
	int r;

	r = dt_prepare_change(dt);
	if (r)
		return r;
	/* The backup is over, whatever the commit's outcome. */
	if (dt->snap)
		dt_snap_end(dt->snap);
	/* crash_safe: the live set holds re-marked writes; store it first. */
	if (dt_persist_live(dt))
		return -EIO;
	dt->frozen = NULL;
	dt_end_unclean(dt, true);
	/*
	 * Store the new sequence before returning, in the default mode too
	 * (with the valid flag clear, as it already is on disk): a backup
	 * job records it, and after a crash the device must not come back
	 * with an older one that a later clear or commit would bring level
	 * with the job's again, making the job take a history that does
	 * not continue its own for one that does.
	 */
	if (dt_write_superblock(dt, dt->crash_safe)) {
		dt->frozen = frozen;
		dt_restore_sequence(dt, sequence);
		dt_make_honest(dt);
		return -EIO;
	}
	dt_bitmap_free(frozen);
	dt->epoch++;
	dt_set_frozen_id(dt, 0);
	dt_update_frozen_count(dt);
	return 0;
}

/*
 * rollback: the frozen set is merged into the live set, which is stored
 * (crash_safe) before the frozen set is dropped.  If a metadata write
 * fails, the live set keeps the merged bits and the frozen set stays.
 */
static int dt_msg_rollback(struct dirtytrack *dt)
{
	struct dt_bitmap *frozen = dt->frozen;
	int r;

	r = dt_prepare_change(dt);
	if (r)
		return r;
	if (dt->snap)
		dt_snap_end(dt->snap);
	dt_bitmap_merge(dt_live_locked(dt), frozen, dt->nr_clusters);
	dt->epoch++;
	if (dt_persist_live(dt))
		return -EIO;
	dt->frozen = NULL;
	if (dt->crash_safe && dt_write_superblock(dt, true)) {
		dt->frozen = frozen;
		dt_make_honest(dt);
		return -EIO;
	}
	dt_bitmap_free(frozen);
	dt_set_frozen_id(dt, 0);
	dt_update_frozen_count(dt);
	return 0;
}

/* mark: clusters @first..@last dirty, durably in crash_safe mode. */
static int dt_msg_mark(struct dirtytrack *dt, u64 first, u64 last)
{
	int r;

	r = dt_prepare_change(dt);
	if (r)
		return r;
	dt_bitmap_mark(dt_live_locked(dt), first, last);
	if (dt->crash_safe) {
		dt_batch_add_range(dt, first, last);
		if (dt_batch_flush(dt))
			return -EIO;
		dt_durable_mark(dt_live_locked(dt), first, last);
	}
	return 0;
}

/* release <start> <nr_sectors>: the backup has read that extent. */
static int dt_msg_release(struct dirtytrack *dt, u64 start, u64 len)
{
	if (!dt->snap)
		return -ENOENT;
	return dt_snap_release(dt->snap, start, len, dt->ti->len);
}

/*
 * bitmap <live|frozen> <first_group>: read-only, safe to repeat.  Encodes
 * as many 8-byte groups as fit in @result (see dm-dirtytrack-abi.h).
 */
#define DT_REPLY_HEADER_MAX 64	/* "<epoch> <first_group> <nr_groups> " */
#define DT_REPLY_ITEM_MAX 18	/* "z<16 hex>." */

/*
 * "z<hex>." for @n zero groups, without vsnprintf: at 1% dirty about a
 * million zero runs of one or two groups fill a 256M-cluster bitmap, and
 * parsing a format string for each was a measurable share of the read.
 */
static char *dt_put_zero_run(char *p, u64 n)
{
	char digits[16];
	int i = 0;

	do {
		digits[i++] = hex_asc[n & 0xf];
		n >>= 4;
	} while (n);
	*p++ = DT_ZERO_RUN;
	while (i)
		*p++ = digits[--i];
	*p++ = DT_ZERO_RUN_END;
	return p;
}

/* A nonzero group, @v its bits (bit p: cluster 64 * g + p), @bytes on disk. */
static char *dt_put_group(char *p, const u8 *bytes, u64 v)
{
	static const char digits[] = DT_POS_DIGITS;
	unsigned int k = hweight64(v);

	if (k > DT_SPARSE_MAX)
		return bin2hex(p, bytes, DT_GROUP_BYTES);
	*p++ = DT_SPARSE_MARK + k - 1;
	for (; v; v &= v - 1)
		*p++ = digits[__ffs64(v)];
	return p;
}

static int dt_msg_bitmap(struct dirtytrack *dt, bool frozen, u64 first,
			 char *result, unsigned int maxlen)
{
	u64 nr_groups = DIV_ROUND_UP(dt->nr_clusters, DT_GROUP_CLUSTERS);
	struct dt_bitmap *bm = frozen ? dt->frozen : dt_live_locked(dt);
	u64 g, zeros = 0;
	char *p, *end;
	int header;

	if (!bm)
		return -ENOENT;
	/* Room for the header, a zero run and a group, and dm core's slack. */
	if (maxlen < DT_REPLY_HEADER_MAX + 2 * DT_REPLY_ITEM_MAX + 2)
		return -ENOSPC;
	if (first > nr_groups)
		first = nr_groups;

	p = result + DT_REPLY_HEADER_MAX;
	end = result + maxlen - 2;	/* strlen + 1 < maxlen: no overflow */
	for (g = first; g < nr_groups; g++) {
		const u8 *bytes = (const u8 *)bm->bits + g * DT_GROUP_BYTES;
		u64 v;

		/* Room for a pending zero run and this group, always. */
		if (end - p < 2 * DT_REPLY_ITEM_MAX)
			break;
		v = le64_to_cpup((const __le64 *)bytes);
		if (!v) {
			zeros++;
			continue;
		}
		if (zeros) {
			p = dt_put_zero_run(p, zeros);
			zeros = 0;
		}
		p = dt_put_group(p, bytes, v);
	}
	if (zeros)
		p = dt_put_zero_run(p, zeros);
	*p = '\0';

	header = scnprintf(result, DT_REPLY_HEADER_MAX, "%llu %llu %llu ",
			   dt->epoch, first, g - first);
	memmove(result + header, result + DT_REPLY_HEADER_MAX,
		p - (result + DT_REPLY_HEADER_MAX) + 1);
	return 1;
}

/* A message, parsed and checked before any lock is taken. */
struct dt_msg {
	enum {
		DT_OP_BITMAP,
		DT_OP_CLEAR,
		DT_OP_CHECKPOINT,
		DT_OP_COMMIT,
		DT_OP_ROLLBACK,
		DT_OP_MARK,
		DT_OP_RELEASE,
	} op;
	bool frozen;		/* bitmap: the frozen set */
	bool has_id;		/* commit, rollback: a frozen_id was given */
	u64 id;
	u64 first;		/* bitmap: first group; mark: first cluster */
	u64 last;		/* mark: last cluster */
	u64 start;		/* release: first sector */
	u64 nr;			/* release: number of sectors */
};

/* A frozen set identity: exactly 16 hex digits. */
static int dt_parse_frozen_id(const char *arg, u64 *id)
{
	unsigned int i;

	if (strlen(arg) != DT_FROZEN_ID_DIGITS)
		return -EINVAL;
	for (i = 0; i < DT_FROZEN_ID_DIGITS; i++)
		if (!isxdigit(arg[i]))
			return -EINVAL;
	return kstrtou64(arg, 16, id);
}

static int dt_msg_parse(struct dirtytrack *dt, unsigned int argc, char **argv,
			struct dt_msg *m)
{
	const char *name = argv[0];
	u64 start, len;

	memset(m, 0, sizeof(*m));
	if (!strcasecmp(name, DT_MSG_BITMAP) && argc == 3) {
		m->op = DT_OP_BITMAP;
		if (!strcmp(argv[1], DT_SET_FROZEN))
			m->frozen = true;
		else if (strcmp(argv[1], DT_SET_LIVE))
			return -EINVAL;
		return kstrtou64(argv[2], 10, &m->first) ? -EINVAL : 0;
	}
	if (!strcasecmp(name, DT_MSG_CLEAR) && argc == 1) {
		m->op = DT_OP_CLEAR;
		return 0;
	}
	if (!strcasecmp(name, DT_MSG_CHECKPOINT) && argc == 1) {
		m->op = DT_OP_CHECKPOINT;
		return 0;
	}
	if ((!strcasecmp(name, DT_MSG_COMMIT) ||
	     !strcasecmp(name, DT_MSG_ROLLBACK)) && argc <= 2) {
		m->op = !strcasecmp(name, DT_MSG_COMMIT) ? DT_OP_COMMIT :
							    DT_OP_ROLLBACK;
		if (argc == 1)
			return 0;
		m->has_id = true;
		return dt_parse_frozen_id(argv[1], &m->id);
	}
	if (!strcasecmp(name, DT_MSG_MARK) && argc == 3) {
		m->op = DT_OP_MARK;
		if (kstrtou64(argv[1], 10, &start) ||
		    kstrtou64(argv[2], 10, &len) || !len)
			return -EINVAL;
		if (start >= dt->ti->len || len > dt->ti->len - start)
			return -ERANGE;
		m->first = start >> dt->cluster_shift;
		m->last = (start + len - 1) >> dt->cluster_shift;
		return 0;
	}
	if (!strcasecmp(name, DT_MSG_RELEASE) && argc == 3) {
		m->op = DT_OP_RELEASE;
		return kstrtou64(argv[1], 10, &m->start) ||
		       kstrtou64(argv[2], 10, &m->nr) ? -EINVAL : 0;
	}
	DMWARN_LIMIT("%s: unrecognised message '%s' with %u arguments",
		     dm_table_device_name(dt->ti->table), name, argc - 1);
	return -EINVAL;
}

static int dt_message(struct dm_target *ti, unsigned int argc, char **argv,
		      char *result, unsigned int maxlen)
{
	struct dirtytrack *dt = ti->private;
	struct dt_bitmap *empty = NULL;
	struct dt_msg m;
	int r;

	if (!argc)
		return -EINVAL;
	r = dt_msg_parse(dt, argc, argv, &m);
	if (r)
		return r;

	if (m.op == DT_OP_BITMAP) {
		mutex_lock(&dt->lock);
		r = dt_msg_bitmap(dt, m.frozen, m.first, result, maxlen);
		mutex_unlock(&dt->lock);
		return r;
	}

	/*
	 * A new set is allocated before any lock is taken: reclaim may write
	 * to this very device, whose held bios need 'lock'.
	 */
	if (m.op == DT_OP_CLEAR || m.op == DT_OP_CHECKPOINT) {
		empty = dt_bitmap_alloc(dt->nr_clusters, dt->crash_safe);
		if (!empty)
			return -ENOMEM;
	}

	mutex_lock(&dt->msg_lock);
	dt_lock(dt);
	/*
	 * Everything else changes state, which needs the metadata owned:
	 * loaded by this instance's resume and not yet stored by its suspend
	 * (a failed resume leaves it unowned).
	 */
	if (!test_bit(DT_F_OWNER, &dt->flags)) {
		r = -EBUSY;
		goto out;
	}
	switch (m.op) {
	case DT_OP_CLEAR:
		r = dt_msg_clear(dt, &empty);
		break;
	case DT_OP_CHECKPOINT:
		r = dt->frozen ? -EEXIST :
			dt_msg_checkpoint(dt, &empty, result, maxlen);
		break;
	case DT_OP_COMMIT:
	case DT_OP_ROLLBACK:
		if (!dt->frozen)
			r = -ENOENT;
		else if (m.has_id && m.id != dt->sb.frozen_id)
			r = -ESTALE;
		else if (m.op == DT_OP_COMMIT)
			r = dt_msg_commit(dt);
		else
			r = dt_msg_rollback(dt);
		break;
	case DT_OP_MARK:
		r = dt_msg_mark(dt, m.first, m.last);
		break;
	case DT_OP_RELEASE:
		r = dt_msg_release(dt, m.start, m.nr);
		break;
	default:
		r = -EINVAL;
		break;
	}
out:
	dt_unlock(dt);
	mutex_unlock(&dt->msg_lock);
	dt_bitmap_free(empty);
	return r;
}

/* ------------------------------------------------------------------ */
/* Status                                                              */
/* ------------------------------------------------------------------ */

static const char *dt_health_name(enum dt_health health)
{
	switch (health) {
	case DT_HEALTH_IS_UNCLEAN:
		return DT_HEALTH_UNCLEAN;
	case DT_HEALTH_IS_METADATA_ERROR:
		return DT_HEALTH_METADATA_ERROR;
	default:
		return DT_HEALTH_OK;
	}
}

/*
 * Status, answered from memory without sleeping (also while suspended):
 *
 *   <cluster_sectors> <clusters> <dirty_clusters> <frozen_clusters|->
 *   <mode> <health> <uuid> <sequence> <frozen_id|->
 *   <snapshot> <store_used_sectors> <store_sectors>
 *
 * mode is "default" or "crash_safe"; health is "ok", "unclean_shutdown"
 * (every cluster counted dirty until the next clear or commit) or
 * "metadata_error" (metadata I/O failed: see dt_hold_failed() for what
 * that does to writes).  frozen_id is the frozen set's identity, 16
 * lowercase hex digits, as the checkpoint message replied it.
 */
static void dt_status(struct dm_target *ti, status_type_t type,
		      unsigned int status_flags, char *result,
		      unsigned int maxlen)
{
	struct dirtytrack *dt = ti->private;
	unsigned int sz = 0;
	long dirty, frozen;
	enum dt_health health;
	u8 uuid[DT_UUID_SIZE];
	u64 sequence, frozen_id;

	switch (type) {
	case STATUSTYPE_INFO:
		rcu_read_lock();
		dirty = atomic_long_read(&rcu_dereference(dt->live)->nr_set);
		rcu_read_unlock();
		spin_lock(&dt->state_lock);
		frozen = dt->frozen_clusters;
		health = dt->health;
		memcpy(uuid, dt->sb.uuid, sizeof(uuid));
		sequence = dt->sb.sequence;
		frozen_id = dt->sb.frozen_id;
		spin_unlock(&dt->state_lock);

		DMEMIT("%u %llu %ld ", dt->cluster_sectors, dt->nr_clusters,
		       dirty);
		if (frozen < 0)
			DMEMIT("- ");
		else
			DMEMIT("%ld ", frozen);
		DMEMIT("%s %s %pUb %llu",
		       dt->crash_safe ? DT_MODE_CRASH_SAFE : DT_MODE_DEFAULT,
		       dt_health_name(health), uuid, sequence);
		if (frozen < 0)
			DMEMIT(" -");
		else
			DMEMIT(" %016llx", frozen_id);
		DMEMIT(" ");
		if (dt->snap)
			dt_snap_status(dt->snap, result, maxlen, &sz);
		else
			DMEMIT("%s - -", DT_SNAPSHOT_NONE);
		break;

	case STATUSTYPE_TABLE:
		DMEMIT("%s %s %u", dt->metadata_dev->name, dt->data_dev->name,
		       dt->cluster_sectors);
		if (dt->crash_safe || dt->availability || dt->store_dev)
			DMEMIT(" %u", (dt->crash_safe ? 1 : 0) +
			       (dt->availability ? 1 : 0) +
			       (dt->store_dev ? 2 : 0));
		if (dt->crash_safe)
			DMEMIT(" %s", DT_FEATURE_CRASH_SAFE);
		if (dt->availability)
			DMEMIT(" %s", DT_FEATURE_AVAILABILITY);
		if (dt->store_dev)
			DMEMIT(" %s %s", DT_FEATURE_SNAPSHOT_STORE,
			       dt->store_dev->name);
		break;

	case STATUSTYPE_IMA:
		DMEMIT_TARGET_NAME_VERSION(ti->type);
		DMEMIT(",metadata_device_name=%s,data_device_name=%s,cluster_sectors=%u,crash_safe=%c,availability=%c;",
		       dt->metadata_dev->name, dt->data_dev->name,
		       dt->cluster_sectors, dt->crash_safe ? 'y' : 'n',
		       dt->availability ? 'y' : 'n');
		break;
	}
}

static int dt_iterate_devices(struct dm_target *ti,
			      iterate_devices_callout_fn fn, void *data)
{
	struct dirtytrack *dt = ti->private;

	/* Only the data device shapes the queue limits. */
	return fn(ti, dt->data_dev, 0, ti->len, data);
}

static struct target_type dirtytrack_target = {
	.name = "dirtytrack",
	.version = {1, 0, 0},
	.module = THIS_MODULE,
	.ctr = dt_ctr,
	.dtr = dt_dtr,
	.map = dt_map,
	.end_io = dt_end_io,
	.postsuspend = dt_postsuspend,
	.preresume = dt_preresume,
	.status = dt_status,
	.message = dt_message,
	.iterate_devices = dt_iterate_devices,
};

static int __init dm_dirtytrack_init(void)
{
	int r = dm_register_target(&dirtytrack_target);

	if (r < 0) {
		DMERR("register failed %d", r);
		return r;
	}
	r = dt_snap_init();
	if (r < 0) {
		DMERR("register of %s failed %d", DT_VIEW_TARGET_NAME, r);
		dm_unregister_target(&dirtytrack_target);
	}
	return r;
}

static void __exit dm_dirtytrack_exit(void)
{
	dt_snap_exit();
	dm_unregister_target(&dirtytrack_target);
}

module_init(dm_dirtytrack_init);
module_exit(dm_dirtytrack_exit);

MODULE_DESCRIPTION(DM_NAME " target that tracks changed clusters for incremental backup");
MODULE_AUTHOR("The dm-dirtytrack authors");
MODULE_LICENSE("GPL");
MODULE_ALIAS("dm-dirtytrack");
