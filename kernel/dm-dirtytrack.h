/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * dm-dirtytrack internal interface: the target's state (struct dirtytrack)
 * and the functions its files share.  Nothing here is exported; the module
 * is one object.
 *
 *   dm-dirtytrack-target.c    ctr/dtr, map/end_io, suspend/resume, status,
 *                             the valid flag, module init
 *   dm-dirtytrack-sets.c      the in-memory sets: bitmaps, mark, merge,
 *                             swap (epoch), drain
 *   dm-dirtytrack-intent.c    crash_safe write-intent batches, the direct
 *                             path (dt_aw_*), held bios and their retry
 *   dm-dirtytrack-metadata.c  all metadata I/O: superblock, bitmaps,
 *                             format, load
 *   dm-dirtytrack-messages.c  message parsing and handlers
 *   dm-dirtytrack-snapshot.c  the snapshot store and its view target
 *
 * Copyright (C) 2026 The dm-dirtytrack authors
 */
#ifndef DM_DIRTYTRACK_H
#define DM_DIRTYTRACK_H

#include <linux/bio.h>
#include <linux/bitops.h>
#include <linux/completion.h>
#include <linux/device-mapper.h>
#include <linux/mutex.h>
#include <linux/percpu-refcount.h>
#include <linux/rcupdate.h>
#include <linux/sched/mm.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include "dm-dirtytrack-metadata.h"
#include "dm-dirtytrack-snapshot.h"

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
	struct bio_set md_bs;		/* every metadata bio */
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
	unsigned int lock_noio;	/* its holder's memalloc_noio_save() */
	/*
	 * The superblock's buffer, under 'lock': allocated by the
	 * constructor so that no superblock write can fail for memory (a
	 * failed one degrades tracking until the next full copy).
	 */
	void *sb_block;
	/*
	 * A bitmap for the stored frozen set, set aside by the constructor
	 * (or kept from the last activation) so that resume, which runs with
	 * the device suspended, need not allocate one; under 'lock'.
	 */
	struct dt_bitmap *spare;

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
	struct dt_md_own_bio aw_bio;	/* the bio most batches need */

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
static inline size_t dt_bitmap_bytes(u64 nr_clusters)
{
	return (size_t)(dt_bitmap_blocks(nr_clusters) * DT_BLOCK_SIZE);
}

/* The live set, to a holder of 'lock'. */
static inline struct dt_bitmap *dt_live_locked(struct dirtytrack *dt)
{
	return rcu_dereference_protected(dt->live, lockdep_is_held(&dt->lock));
}

/* dm-dirtytrack-sets.c: the in-memory sets. */
struct dt_bitmap *dt_bitmap_alloc(u64 nr_clusters, bool durable);
struct dt_bitmap *dt_bitmap_alloc_stored(u64 nr_clusters);
void dt_bitmap_free(struct dt_bitmap *bm);
void dt_bitmap_wait_drained(struct dt_bitmap *bm);
void dt_bitmap_clip(struct dt_bitmap *bm, u64 nr_clusters);
void dt_bitmap_recount(struct dt_bitmap *bm, u64 nr_clusters);
void dt_bitmap_fill(struct dt_bitmap *bm, u64 nr_clusters);
void dt_bitmap_mark(struct dt_bitmap *bm, u64 first, u64 last);
void dt_bitmap_merge(struct dt_bitmap *dst, const struct dt_bitmap *src,
		     u64 nr_clusters);
bool dt_range_set(const unsigned long *bits, u64 first, u64 last);
void dt_mark_live(struct dirtytrack *dt, u64 first, u64 last);
struct dt_bitmap *dt_swap_live(struct dirtytrack *dt, struct dt_bitmap *new);
u64 dt_new_frozen_id(void);

/* dm-dirtytrack-intent.c: write-intent batches and held bios. */
void dt_intent_init(struct dirtytrack *dt);
void dt_lock(struct dirtytrack *dt);
void dt_unlock(struct dirtytrack *dt);
int dt_batch_flush(struct dirtytrack *dt);
void dt_batch_add_range(struct dirtytrack *dt, u64 first, u64 last);
void dt_durable_mark(struct dt_bitmap *live, u64 first, u64 last);
int dt_persist_live(struct dirtytrack *dt);
int dt_hold_crash_safe(struct dirtytrack *dt, struct bio *bio);

/* dm-dirtytrack-metadata.c: the target's metadata I/O. */
int dt_write_superblock(struct dirtytrack *dt, bool valid);
int dt_make_honest(struct dirtytrack *dt);
void dt_write_metadata(struct dirtytrack *dt);
int dt_load(struct dirtytrack *dt);

/* dm-dirtytrack-messages.c */
int dt_message(struct dm_target *ti, unsigned int argc, char **argv,
	       char *result, unsigned int maxlen);

/* dm-dirtytrack-target.c: status state and the valid flag. */
void dt_set_health(struct dirtytrack *dt, enum dt_health health);
void dt_metadata_failed(struct dirtytrack *dt, const char *what, int r);
void dt_update_frozen_count(struct dirtytrack *dt);
int dt_invalidate(struct dirtytrack *dt);

#endif /* DM_DIRTYTRACK_H */
