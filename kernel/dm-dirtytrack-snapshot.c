// SPDX-License-Identifier: GPL-2.0-only
/*
 * dm-dirtytrack snapshot store: the frozen set as of a checkpoint, kept
 * readable while the device stays in use, and the read-only view target
 * "dirtytrack-view" that serves it.
 *
 * Only the frozen set is preserved.  At checkpoint the frozen bitmap is
 * copied into 'cow': the clusters whose content at the checkpoint is still
 * only on the data device.  A write to a cluster in 'cow' is held while
 * dm-kcopyd copies the cluster to a free slot of the store, then the
 * cluster leaves 'cow' and the write (and every write to it that arrived
 * meanwhile: they share one copy) goes on.  A write to any other cluster
 * costs one bit test.  "release" takes clusters out of 'cow' and frees
 * their slots: the backup has read them.
 *
 * Ordering of view reads against preservation, as dm-snapshot's
 * track_chunk()/__check_for_conflicting_io() do it: a view read of
 * clusters that the store does not hold (yet) reads the data device and is
 * tracked, with the range of clusters it covers; a finished copy first
 * makes new view reads go to the store, then waits until no tracked read
 * covers its cluster, and only then lets the held writes reach the data
 * device.  So a view read never sees a write made after the checkpoint,
 * and reading never costs store space.  A view bio goes to the data device
 * whole, over as many clusters as it covers, up to the first cluster the
 * store holds; a cluster the store holds is read from its slot alone.
 *
 * Nothing here allocates in the map path: held bios go on a list that a
 * workqueue (WQ_MEM_RECLAIM) processes; copy descriptors come from a
 * mempool there; kcopyd has its own reserved pages.
 *
 * Copyright (C) 2026 The dm-dirtytrack authors
 */
#include <linux/bio.h>
#include <linux/bitops.h>
#include <linux/blkdev.h>
#include <linux/device-mapper.h>
#include <linux/dm-io.h>
#include <linux/dm-kcopyd.h>
#include <linux/hashtable.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mempool.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/rcupdate.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include "dm-dirtytrack-abi.h"
#include "dm-dirtytrack-snapshot.h"

#define DM_MSG_PREFIX "dirtytrack"

/* 6.1 opens devices with fmode_t, 6.5 and later with blk_mode_t. */
#ifndef BLK_OPEN_WRITE
#define BLK_OPEN_WRITE FMODE_WRITE
#endif

enum dt_snap_state {
	DT_SNAP_IDLE,		/* no snapshot */
	DT_SNAP_STARTING,	/* checkpoint under way: every write waits */
	DT_SNAP_ACTIVE,		/* preserving the frozen set */
	DT_SNAP_INVALID,	/* store full or a copy failed: nothing kept */
};

#define DT_SNAP_HASH_BITS 8
/* Clusters "release" handles per hold of the lock. */
#define DT_SNAP_RELEASE_BATCH 4096

/* A cluster being copied to the store, and the writes waiting for it. */
struct dt_copy {
	struct hlist_node node;		/* in 'copies', keyed by cluster */
	struct list_head done_entry;	/* in 'done' once kcopyd is through */
	struct dt_snap *s;
	u64 cluster;
	bool copied;			/* the store holds it: views read there */
	bool released;			/* released while copying: free the slot */
	bool failed;
	struct bio_list bios;
};

/* Per bio of the view. */
struct dt_view_io {
	struct list_head node;		/* in 'reads' while tracked */
	u64 first, last;		/* the clusters it reads */
	bool tracked;
};

struct dt_snap {
	struct kref kref;		/* the target's, and one per view */
	struct list_head entry;		/* in dt_snaps */
	dev_t md_devt;			/* of the dirtytrack device */
	struct dm_target *ti;
	struct block_device *data_bdev;
	struct block_device *store_bdev;
	dev_t data_devt, store_devt;	/* for views: outlive the bdevs */
	u32 cluster_sectors;
	unsigned int cluster_shift;
	u64 nr_clusters;
	sector_t data_sectors;
	u32 nr_slots;

	/* Everything below up to 'wait' is protected by 'lock'. */
	spinlock_t lock;
	enum dt_snap_state state;	/* also read locklessly by the map path */
	u64 generation;			/* grows at every checkpoint and end */
	unsigned long *cow;		/* frozen, not preserved, not released */
	unsigned long *slot_used;	/* nr_slots bits */
	u32 *slot_of;			/* per cluster: store slot + 1, or 0 */
	u32 used_slots;
	u32 next_slot;
	DECLARE_HASHTABLE(copies, DT_SNAP_HASH_BITS);
	struct list_head reads;		/* view bios to the data device */
	struct bio_list deferred;	/* writes for the worker */
	struct list_head done;		/* copies kcopyd has finished */
	unsigned int copies_inflight;
	unsigned int reads_inflight;	/* view bios in flight */
	wait_queue_head_t wait;		/* a read or copy ended */

	struct dm_kcopyd_client *kc;
	mempool_t copy_pool;
	struct workqueue_struct *wq;
	struct work_struct work;
};

/* Stores by dirtytrack device, for views to find; under dt_snaps_lock. */
static LIST_HEAD(dt_snaps);
static DEFINE_MUTEX(dt_snaps_lock);

/* The frozen bitmap's bit order (as on disk), like the target's dt_bit(). */
static inline unsigned long dt_snap_bit(u64 cluster)
{
	return (unsigned long)cluster ^ BITOP_LE_SWIZZLE;
}

static size_t dt_snap_bitmap_bytes(u64 nr_clusters)
{
	return dt_bitmap_blocks(nr_clusters) * DT_BLOCK_SIZE;
}

/* ------------------------------------------------------------------ */
/* Store slots and lookups (all under 'lock')                          */
/* ------------------------------------------------------------------ */

static int dt_snap_alloc_slot(struct dt_snap *s)
{
	unsigned long slot;

	if (s->used_slots == s->nr_slots)
		return -ENOSPC;
	slot = find_next_zero_bit(s->slot_used, s->nr_slots, s->next_slot);
	if (slot >= s->nr_slots)
		slot = find_first_zero_bit(s->slot_used, s->nr_slots);
	__set_bit(slot, s->slot_used);
	s->used_slots++;
	s->next_slot = slot + 1;
	return slot;
}

static void dt_snap_free_slot(struct dt_snap *s, u64 cluster)
{
	u32 slot = s->slot_of[cluster];

	if (!slot)
		return;
	__clear_bit(slot - 1, s->slot_used);
	s->used_slots--;
	s->slot_of[cluster] = 0;
}

static struct dt_copy *dt_snap_find_copy(struct dt_snap *s, u64 cluster)
{
	struct dt_copy *cp;

	hash_for_each_possible(s->copies, cp, node, cluster)
		if (cp->cluster == cluster)
			return cp;
	return NULL;
}

/*
 * Whether a view read of @cluster from the data device is in flight.  The
 * list holds at most the view's queue depth of bios.
 */
static bool dt_snap_read_tracked(struct dt_snap *s, u64 cluster)
{
	struct dt_view_io *io;
	unsigned long flags;
	bool tracked = false;

	spin_lock_irqsave(&s->lock, flags);
	list_for_each_entry(io, &s->reads, node) {
		if (io->first <= cluster && cluster <= io->last) {
			tracked = true;
			break;
		}
	}
	spin_unlock_irqrestore(&s->lock, flags);
	return tracked;
}

/*
 * Move every write the snapshot holds to @bios: the deferred ones and
 * those waiting for a copy (whose copies finish on their own).
 */
static void dt_snap_take_all_locked(struct dt_snap *s, struct bio_list *bios)
{
	struct dt_copy *cp;
	unsigned int b;

	bio_list_merge(bios, &s->deferred);
	bio_list_init(&s->deferred);
	hash_for_each(s->copies, b, cp, node) {
		bio_list_merge(bios, &cp->bios);
		bio_list_init(&cp->bios);
	}
}

/* The store can keep nothing more: drop the snapshot, never the writes. */
static void dt_snap_invalidate_locked(struct dt_snap *s, struct bio_list *bios)
{
	s->state = DT_SNAP_INVALID;
	dt_snap_take_all_locked(s, bios);
}

static void dt_snap_resubmit_all(struct dt_snap *s, struct bio_list *bios)
{
	struct bio *bio;

	while ((bio = bio_list_pop(bios)))
		dt_resubmit_write(s->ti, bio);
}

/* ------------------------------------------------------------------ */
/* Copy-before-write                                                   */
/* ------------------------------------------------------------------ */

static void dt_snap_copied(int read_err, unsigned long write_err, void *context)
{
	struct dt_copy *cp = context;
	struct dt_snap *s = cp->s;
	unsigned long flags;

	cp->failed = read_err || write_err;
	spin_lock_irqsave(&s->lock, flags);
	list_add_tail(&cp->done_entry, &s->done);
	spin_unlock_irqrestore(&s->lock, flags);
	queue_work(s->wq, &s->work);
}

static void dt_snap_start_copy(struct dt_snap *s, struct dt_copy *cp,
			       u32 slot)
{
	sector_t start = cp->cluster << s->cluster_shift;
	struct dm_io_region from = {
		.bdev = s->data_bdev,
		.sector = start,
		.count = min_t(sector_t, s->cluster_sectors,
			       s->data_sectors - start),
	};
	struct dm_io_region to = {
		.bdev = s->store_bdev,
		.sector = (sector_t)slot << s->cluster_shift,
		.count = from.count,
	};

	dm_kcopyd_copy(s->kc, &from, 1, &to, 0, dt_snap_copied, cp);
}

static void dt_snap_bio_clusters(struct dt_snap *s, struct bio *bio,
				 u64 *first, u64 *last)
{
	/* Remapped by dt_map(): target-relative, the data device 1:1. */
	sector_t sector = bio->bi_iter.bi_sector;

	*first = sector >> s->cluster_shift;
	*last = (sector + bio_sectors(bio) - 1) >> s->cluster_shift;
}

/*
 * Send a held write on: to the copy of the first of its clusters that
 * still needs one (starting that copy if nobody has), or to the target
 * when none does.  Worker context; may sleep.
 */
static void dt_snap_route(struct dt_snap *s, struct bio *bio)
{
	struct dt_copy *cp = NULL, *other;
	struct bio_list bios;
	u64 first, last, c;
	int slot;

	dt_snap_bio_clusters(s, bio, &first, &last);
again:
	spin_lock_irq(&s->lock);
	if (s->state != DT_SNAP_ACTIVE)
		goto pass;
	c = find_next_bit_le(s->cow, last + 1, first);
	if (c > last)
		goto pass;
	other = dt_snap_find_copy(s, c);
	if (other) {
		bio_list_add(&other->bios, bio);
		spin_unlock_irq(&s->lock);
		goto free;
	}
	if (!cp) {
		spin_unlock_irq(&s->lock);
		cp = mempool_alloc(&s->copy_pool, GFP_NOIO);
		goto again;
	}
	slot = dt_snap_alloc_slot(s);
	if (slot < 0) {
		bio_list_init(&bios);
		dt_snap_invalidate_locked(s, &bios);
		spin_unlock_irq(&s->lock);
		DMERR("%s: snapshot store full (%u slots of %u sectors); the snapshot is invalid",
		      dm_table_device_name(s->ti->table), s->nr_slots,
		      s->cluster_sectors);
		dt_snap_resubmit_all(s, &bios);
		dt_resubmit_write(s->ti, bio);
		goto free;
	}
	memset(cp, 0, sizeof(*cp));
	cp->s = s;
	cp->cluster = c;
	bio_list_init(&cp->bios);
	bio_list_add(&cp->bios, bio);
	s->slot_of[c] = slot + 1;
	hash_add(s->copies, &cp->node, c);
	s->copies_inflight++;
	spin_unlock_irq(&s->lock);
	dt_snap_start_copy(s, cp, slot);
	return;

pass:
	spin_unlock_irq(&s->lock);
	dt_resubmit_write(s->ti, bio);
free:
	if (cp)
		mempool_free(cp, &s->copy_pool);
}

/*
 * kcopyd finished @cp.  New view reads of its cluster go to the store from
 * now on; reads that went to the data device are waited for before the
 * writes held for the cluster go on.
 */
static void dt_snap_copy_finish(struct dt_snap *s, struct dt_copy *cp)
{
	struct bio_list bios;
	bool wait_reads = false;
	u64 c = cp->cluster;
	struct bio *bio;

	bio_list_init(&bios);
	spin_lock_irq(&s->lock);
	if (s->state == DT_SNAP_ACTIVE) {
		if (cp->failed) {
			dt_snap_invalidate_locked(s, &bios);
			DMERR("%s: copy of cluster %llu to the snapshot store failed; the snapshot is invalid",
			      dm_table_device_name(s->ti->table), c);
		} else {
			cp->copied = true;
			wait_reads = true;
		}
	}
	spin_unlock_irq(&s->lock);

	if (wait_reads)
		wait_event(s->wait, !dt_snap_read_tracked(s, c));

	spin_lock_irq(&s->lock);
	hash_del(&cp->node);
	if (s->state == DT_SNAP_ACTIVE) {
		clear_bit(dt_snap_bit(c), s->cow);
		if (cp->released)
			dt_snap_free_slot(s, c);
	}
	bio_list_merge(&bios, &cp->bios);
	s->copies_inflight--;
	spin_unlock_irq(&s->lock);
	wake_up(&s->wait);
	mempool_free(cp, &s->copy_pool);

	/* A write over several clusters may need another copy. */
	while ((bio = bio_list_pop(&bios)))
		dt_snap_route(s, bio);
}

static void dt_snap_work(struct work_struct *ws)
{
	struct dt_snap *s = container_of(ws, struct dt_snap, work);
	struct dt_copy *cp, *tmp;
	struct bio_list bios;
	LIST_HEAD(done);
	struct bio *bio;

	bio_list_init(&bios);
	spin_lock_irq(&s->lock);
	list_splice_init(&s->done, &done);
	if (s->state != DT_SNAP_STARTING) {
		bio_list_merge(&bios, &s->deferred);
		bio_list_init(&s->deferred);
	}
	spin_unlock_irq(&s->lock);

	list_for_each_entry_safe(cp, tmp, &done, done_entry)
		dt_snap_copy_finish(s, cp);
	while ((bio = bio_list_pop(&bios)))
		dt_snap_route(s, bio);
}

bool dt_snap_hold_write(struct dt_snap *s, struct bio *bio, u64 first,
			u64 last)
{
	enum dt_snap_state state = smp_load_acquire(&s->state);
	unsigned long flags;
	bool held = false;

	if (likely(state == DT_SNAP_IDLE || state == DT_SNAP_INVALID))
		return false;
	if (state == DT_SNAP_ACTIVE) {
		if (first == last) {
			if (likely(!test_bit(dt_snap_bit(first), s->cow)))
				return false;
		} else if (find_next_bit_le(s->cow, last + 1, first) > last) {
			return false;
		}
	}

	spin_lock_irqsave(&s->lock, flags);
	if (s->state == DT_SNAP_STARTING || s->state == DT_SNAP_ACTIVE) {
		bio_list_add(&s->deferred, bio);
		if (s->state == DT_SNAP_ACTIVE)
			queue_work(s->wq, &s->work);
		held = true;
	}
	spin_unlock_irqrestore(&s->lock, flags);
	return held;
}

/* ------------------------------------------------------------------ */
/* Snapshot life                                                       */
/* ------------------------------------------------------------------ */

void dt_snap_checkpoint_begin(struct dt_snap *s)
{
	spin_lock_irq(&s->lock);
	s->state = DT_SNAP_STARTING;
	s->generation++;
	spin_unlock_irq(&s->lock);
	/*
	 * dt_map() tests the state and marks the live set in one RCU read
	 * section: after this grace period, every write that did not see
	 * STARTING was marked in the set about to be frozen.
	 */
	synchronize_rcu();
}

void dt_snap_checkpoint_done(struct dt_snap *s, const void *frozen_bits)
{
	/* No reader of 'cow' while STARTING: writes are held unlooked-at. */
	memcpy(s->cow, frozen_bits, dt_snap_bitmap_bytes(s->nr_clusters));
	spin_lock_irq(&s->lock);
	if (s->state == DT_SNAP_STARTING)
		smp_store_release(&s->state, DT_SNAP_ACTIVE);
	spin_unlock_irq(&s->lock);
	queue_work(s->wq, &s->work);
}

static bool dt_snap_quiet(struct dt_snap *s)
{
	bool quiet;

	spin_lock_irq(&s->lock);
	quiet = !s->copies_inflight && !s->reads_inflight;
	spin_unlock_irq(&s->lock);
	return quiet;
}

void dt_snap_end(struct dt_snap *s)
{
	struct bio_list bios;

	bio_list_init(&bios);
	spin_lock_irq(&s->lock);
	if (s->state == DT_SNAP_IDLE) {
		spin_unlock_irq(&s->lock);
		return;
	}
	s->state = DT_SNAP_IDLE;
	s->generation++;
	dt_snap_take_all_locked(s, &bios);
	spin_unlock_irq(&s->lock);

	dt_snap_resubmit_all(s, &bios);
	/* Copies and view reads in flight still use the slots and devices. */
	wait_event(s->wait, dt_snap_quiet(s));
	flush_work(&s->work);

	/* IDLE: nobody reads these any more but under 'lock', to find IDLE. */
	memset(s->cow, 0, dt_snap_bitmap_bytes(s->nr_clusters));
	memset(s->slot_of, 0, s->nr_clusters * sizeof(*s->slot_of));
	spin_lock_irq(&s->lock);
	bitmap_zero(s->slot_used, s->nr_slots);
	s->used_slots = 0;
	s->next_slot = 0;
	spin_unlock_irq(&s->lock);
}

int dt_snap_release(struct dt_snap *s, u64 start, u64 nr, u64 len)
{
	u64 first, end, c, stop;
	struct dt_copy *cp;
	int r = 0;

	if (!nr)
		return -EINVAL;
	if (start >= len || nr > len - start)
		return -ERANGE;
	/* Whole clusters only; the device's last cluster may be short. */
	first = DIV_ROUND_UP(start, (u64)s->cluster_sectors);
	end = start + nr == len ? s->nr_clusters : (start + nr) >> s->cluster_shift;

	for (c = first; ; c = stop) {
		spin_lock_irq(&s->lock);
		if (s->state != DT_SNAP_ACTIVE) {
			/* An invalid snapshot keeps nothing to release. */
			if (s->state != DT_SNAP_INVALID)
				r = -ENOENT;
			spin_unlock_irq(&s->lock);
			break;
		}
		stop = min(end, c + DT_SNAP_RELEASE_BATCH);
		for (; c < stop; c++) {
			clear_bit(dt_snap_bit(c), s->cow);
			if (!s->slot_of[c])
				continue;
			cp = dt_snap_find_copy(s, c);
			if (cp)
				cp->released = true;
			else
				dt_snap_free_slot(s, c);
		}
		spin_unlock_irq(&s->lock);
		if (stop >= end)
			break;
		cond_resched();
	}
	return r;
}

void dt_snap_status(struct dt_snap *s, char *result, unsigned int maxlen,
		    unsigned int *status_sz)
{
	static const char * const names[] = {
		[DT_SNAP_IDLE] = DT_SNAPSHOT_IDLE,
		[DT_SNAP_STARTING] = DT_SNAPSHOT_ACTIVE,
		[DT_SNAP_ACTIVE] = DT_SNAPSHOT_ACTIVE,
		[DT_SNAP_INVALID] = DT_SNAPSHOT_INVALID,
	};
	unsigned int sz = *status_sz;
	enum dt_snap_state state;
	unsigned long flags;
	u32 used;

	spin_lock_irqsave(&s->lock, flags);
	state = s->state;
	used = s->used_slots;
	spin_unlock_irqrestore(&s->lock, flags);
	DMEMIT("%s %llu %llu", names[state],
	       (unsigned long long)used << s->cluster_shift,
	       (unsigned long long)s->nr_slots << s->cluster_shift);
	*status_sz = sz;
}

/* ------------------------------------------------------------------ */
/* Creation and destruction                                            */
/* ------------------------------------------------------------------ */

static void dt_snap_free(struct kref *kref)
{
	kfree(container_of(kref, struct dt_snap, kref));
}

static void dt_snap_free_resources(struct dt_snap *s)
{
	if (s->wq)
		destroy_workqueue(s->wq);
	if (!IS_ERR_OR_NULL(s->kc))
		dm_kcopyd_client_destroy(s->kc);
	mempool_exit(&s->copy_pool);
	kvfree(s->cow);
	kvfree(s->slot_used);
	kvfree(s->slot_of);
}

struct dt_snap *dt_snap_create(struct dm_target *ti, struct dm_dev *data,
			       struct dm_dev *store, u32 cluster_sectors,
			       u64 nr_clusters, char **error)
{
	u64 slots = bdev_nr_sectors(store->bdev) >> __ffs(cluster_sectors);
	struct dt_snap *s;

	if (!slots) {
		*error = "Snapshot store smaller than one cluster";
		return ERR_PTR(-EINVAL);
	}
	if (nr_clusters >= U32_MAX) {
		*error = "Too many clusters for a snapshot store";
		return ERR_PTR(-EINVAL);
	}
	s = kzalloc(sizeof(*s), GFP_KERNEL);
	if (!s) {
		*error = "Cannot allocate snapshot store";
		return ERR_PTR(-ENOMEM);
	}
	kref_init(&s->kref);
	s->ti = ti;
	s->md_devt = disk_devt(dm_disk(dm_table_get_md(ti->table)));
	s->data_bdev = data->bdev;
	s->store_bdev = store->bdev;
	s->data_devt = data->bdev->bd_dev;
	s->store_devt = store->bdev->bd_dev;
	s->cluster_sectors = cluster_sectors;
	s->cluster_shift = __ffs(cluster_sectors);
	s->nr_clusters = nr_clusters;
	s->data_sectors = ti->len;
	/* Slot numbers are stored plus one in a u32. */
	s->nr_slots = min_t(u64, slots, U32_MAX - 1);
	spin_lock_init(&s->lock);
	hash_init(s->copies);
	INIT_LIST_HEAD(&s->reads);
	bio_list_init(&s->deferred);
	INIT_LIST_HEAD(&s->done);
	init_waitqueue_head(&s->wait);
	INIT_WORK(&s->work, dt_snap_work);

	*error = "Cannot allocate snapshot store";
	s->cow = kvzalloc(dt_snap_bitmap_bytes(nr_clusters), GFP_KERNEL);
	s->slot_used = kvcalloc(BITS_TO_LONGS(s->nr_slots), sizeof(long),
				GFP_KERNEL);
	s->slot_of = kvcalloc(nr_clusters, sizeof(*s->slot_of), GFP_KERNEL);
	if (!s->cow || !s->slot_used || !s->slot_of)
		goto bad;
	if (mempool_init_kmalloc_pool(&s->copy_pool, 16, sizeof(struct dt_copy)))
		goto bad;
	s->wq = alloc_workqueue("dirtytrack_snap", WQ_MEM_RECLAIM, 0);
	if (!s->wq)
		goto bad;
	s->kc = dm_kcopyd_client_create(NULL);
	if (IS_ERR(s->kc)) {
		*error = "Cannot create kcopyd client";
		goto bad;
	}

	mutex_lock(&dt_snaps_lock);
	list_add(&s->entry, &dt_snaps);
	mutex_unlock(&dt_snaps_lock);
	return s;

bad:
	dt_snap_free_resources(s);
	kfree(s);
	return ERR_PTR(-ENOMEM);
}

void dt_snap_put(struct dt_snap *s)
{
	mutex_lock(&dt_snaps_lock);
	list_del(&s->entry);
	mutex_unlock(&dt_snaps_lock);
	/* Normally ended at postsuspend already. */
	dt_snap_end(s);
	dt_snap_free_resources(s);
	s->cow = NULL;
	s->slot_of = NULL;
	s->slot_used = NULL;
	kref_put(&s->kref, dt_snap_free);
}

/* ------------------------------------------------------------------ */
/* The view: dirtytrack-view <tracked_dm_dev>                          */
/* ------------------------------------------------------------------ */

/*
 * The view opens the tracked device's data device and the store, not the
 * tracked device itself: a file system mounted on the tracked device holds
 * it exclusively (the point of a live backup), and dm devices share their
 * claim on the devices under them.  The tracked device is only named, by
 * its dev_t, to find its snapshot.
 */
struct dt_view {
	dev_t tracked;
	struct dm_dev *data;
	struct dm_dev *store;
	struct dt_snap *snap;
	u64 generation;		/* of the snapshot this view serves */
};

/* A device named as dm table lines name them: MAJOR:MINOR or a path. */
static int dt_view_devt(const char *name, dev_t *devt)
{
	unsigned int major, minor;
	char dummy;

	if (sscanf(name, "%u:%u%c", &major, &minor, &dummy) == 2) {
		*devt = MKDEV(major, minor);
		if (MAJOR(*devt) != major || MINOR(*devt) != minor)
			return -EOVERFLOW;
		return 0;
	}
	return lookup_bdev(name, devt);
}

/* Open device @devt for the view's table, read-only as the table is. */
static int dt_view_get_device(struct dm_target *ti, dev_t devt,
			      struct dm_dev **dev)
{
	char name[24];

	snprintf(name, sizeof(name), "%u:%u", MAJOR(devt), MINOR(devt));
	return dm_get_device(ti, name, dm_table_get_mode(ti->table), dev);
}

/* The store with an active snapshot behind dirtytrack device @devt. */
static struct dt_snap *dt_snap_get_active(dev_t devt, u64 *generation)
{
	struct dt_snap *s, *found = NULL;

	mutex_lock(&dt_snaps_lock);
	list_for_each_entry(s, &dt_snaps, entry) {
		if (s->md_devt != devt)
			continue;
		spin_lock_irq(&s->lock);
		if (s->state == DT_SNAP_ACTIVE) {
			found = s;
			*generation = s->generation;
			kref_get(&s->kref);
		}
		spin_unlock_irq(&s->lock);
		if (found)
			break;
	}
	mutex_unlock(&dt_snaps_lock);
	return found;
}

static int dt_view_ctr(struct dm_target *ti, unsigned int argc, char **argv)
{
	struct dt_view *v;
	int r;

	if (argc != 1) {
		ti->error = "Invalid argument count: need <dirtytrack_device>";
		return -EINVAL;
	}
	if (dm_table_get_mode(ti->table) & BLK_OPEN_WRITE) {
		ti->error = "A dirtytrack-view is read-only: create it with --readonly";
		return -EROFS;
	}
	v = kzalloc(sizeof(*v), GFP_KERNEL);
	if (!v) {
		ti->error = "Cannot allocate context";
		return -ENOMEM;
	}
	r = dt_view_devt(argv[0], &v->tracked);
	if (r) {
		DMERR("%s: cannot find dirtytrack device %s: error %d",
		      dm_table_device_name(ti->table), argv[0], r);
		ti->error = "Cannot find the dirtytrack device";
		goto bad;
	}
	v->snap = dt_snap_get_active(v->tracked, &v->generation);
	if (!v->snap) {
		DMERR("%s: %s has no active snapshot (not a dirtytrack device with a snapshot_store, or no checkpoint)",
		      dm_table_device_name(ti->table), argv[0]);
		ti->error = "No active snapshot on that device";
		r = -ENOENT;
		goto bad;
	}
	if (ti->begin + ti->len > v->snap->data_sectors) {
		ti->error = "View longer than the tracked device";
		r = -EINVAL;
		goto bad_snap;
	}
	r = dt_view_get_device(ti, v->snap->data_devt, &v->data);
	if (r) {
		ti->error = "Error opening the data device";
		goto bad_snap;
	}
	r = dt_view_get_device(ti, v->snap->store_devt, &v->store);
	if (r) {
		ti->error = "Error opening the snapshot store";
		goto bad_data;
	}
	ti->per_io_data_size = sizeof(struct dt_view_io);
	ti->private = v;
	return 0;

bad_data:
	dm_put_device(ti, v->data);
bad_snap:
	kref_put(&v->snap->kref, dt_snap_free);
bad:
	kfree(v);
	return r;
}

static void dt_view_dtr(struct dm_target *ti)
{
	struct dt_view *v = ti->private;

	dm_put_device(ti, v->store);
	dm_put_device(ti, v->data);
	kref_put(&v->snap->kref, dt_snap_free);
	kfree(v);
}

/*
 * The slot (plus one) that view reads of @c read, or 0 when they read the
 * data device: the store does not hold @c, or its copy is still running.
 * Called with 'lock' held.
 */
static u32 dt_view_slot(struct dt_snap *s, u64 c)
{
	u32 slot = s->slot_of[c];
	struct dt_copy *cp;

	if (!slot)
		return 0;
	cp = dt_snap_find_copy(s, c);
	return !cp || cp->copied ? slot : 0;
}

/*
 * Sector n of the view is sector n of the tracked device as of the
 * checkpoint.  A bio is cut (dm_accept_partial_bio) where it would cross
 * from clusters on the data device to one in the store, or out of one in
 * the store.
 */
static int dt_view_map(struct dm_target *ti, struct bio *bio)
{
	struct dt_view *v = ti->private;
	struct dt_snap *s = v->snap;
	struct dt_view_io *io = dm_per_bio_data(bio, sizeof(*io));
	sector_t sector = bio->bi_iter.bi_sector;	/* = tracked sector */
	unsigned long flags;
	u64 c, e, last;
	u32 slot;

	io->tracked = false;
	if (op_is_write(bio_op(bio)) || !bio_sectors(bio))
		return DM_MAPIO_KILL;
	c = sector >> s->cluster_shift;
	last = (sector + bio_sectors(bio) - 1) >> s->cluster_shift;

	spin_lock_irqsave(&s->lock, flags);
	if (s->state != DT_SNAP_ACTIVE || s->generation != v->generation) {
		spin_unlock_irqrestore(&s->lock, flags);
		return DM_MAPIO_KILL;
	}
	slot = dt_view_slot(s, c);
	if (slot) {
		if (last > c)
			dm_accept_partial_bio(bio, ((c + 1) << s->cluster_shift) -
					      sector);
		bio_set_dev(bio, v->store->bdev);
		bio->bi_iter.bi_sector = ((sector_t)(slot - 1) << s->cluster_shift) +
			(sector & (s->cluster_sectors - 1));
	} else {
		/* The data device still has them: hold back their writes. */
		for (e = c; e < last && !dt_view_slot(s, e + 1); e++)
			;
		if (e < last)
			dm_accept_partial_bio(bio, ((e + 1) << s->cluster_shift) -
					      sector);
		bio_set_dev(bio, v->data->bdev);
		bio->bi_iter.bi_sector = sector;
		io->tracked = true;
		io->first = c;
		io->last = e;
		list_add(&io->node, &s->reads);
	}
	s->reads_inflight++;
	spin_unlock_irqrestore(&s->lock, flags);
	return DM_MAPIO_REMAPPED;
}

static int dt_view_end_io(struct dm_target *ti, struct bio *bio,
			  blk_status_t *error)
{
	struct dt_view *v = ti->private;
	struct dt_snap *s = v->snap;
	struct dt_view_io *io = dm_per_bio_data(bio, sizeof(*io));
	unsigned long flags;

	spin_lock_irqsave(&s->lock, flags);
	if (io->tracked)
		list_del(&io->node);
	s->reads_inflight--;
	spin_unlock_irqrestore(&s->lock, flags);
	wake_up(&s->wait);
	return DM_ENDIO_DONE;
}

static void dt_view_status(struct dm_target *ti, status_type_t type,
			   unsigned int status_flags, char *result,
			   unsigned int maxlen)
{
	struct dt_view *v = ti->private;
	struct dt_snap *s = v->snap;
	unsigned int sz = 0;
	bool valid;

	switch (type) {
	case STATUSTYPE_INFO:
		spin_lock_irq(&s->lock);
		valid = s->state == DT_SNAP_ACTIVE &&
			s->generation == v->generation;
		spin_unlock_irq(&s->lock);
		DMEMIT("%s", valid ? "active" : "ended");
		break;
	case STATUSTYPE_TABLE:
		DMEMIT("%u:%u", MAJOR(v->tracked), MINOR(v->tracked));
		break;
	case STATUSTYPE_IMA:
		DMEMIT_TARGET_NAME_VERSION(ti->type);
		DMEMIT(",tracked_device=%u:%u;", MAJOR(v->tracked),
		       MINOR(v->tracked));
		break;
	}
}

static int dt_view_iterate_devices(struct dm_target *ti,
				   iterate_devices_callout_fn fn, void *data)
{
	struct dt_view *v = ti->private;

	int r;

	r = fn(ti, v->data, ti->begin, ti->len, data);
	if (!r)
		r = fn(ti, v->store, 0, bdev_nr_sectors(v->store->bdev), data);
	return r;
}

static struct target_type dt_view_target = {
	.name = DT_VIEW_TARGET_NAME,
	.version = {1, 0, 0},
	.module = THIS_MODULE,
	.ctr = dt_view_ctr,
	.dtr = dt_view_dtr,
	.map = dt_view_map,
	.end_io = dt_view_end_io,
	.status = dt_view_status,
	.iterate_devices = dt_view_iterate_devices,
};

int dt_snap_init(void)
{
	return dm_register_target(&dt_view_target);
}

void dt_snap_exit(void)
{
	dm_unregister_target(&dt_view_target);
}
