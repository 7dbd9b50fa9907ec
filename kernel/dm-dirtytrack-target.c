// SPDX-License-Identifier: GPL-2.0-only
/*
 * dm-dirtytrack: a device-mapper target that passes I/O through to a data
 * device and records, one bit per cluster, which clusters were written.
 * The bitmap lives on a metadata device; see dm-dirtytrack-metadata.c for
 * the valid-flag protocol and Documentation/dm-dirtytrack.rst for the
 * interface.  This file is the target itself (table line, map, suspend
 * and resume, status); dm-dirtytrack.h lists the others.
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

#include "dm-dirtytrack.h"

#define DM_MSG_PREFIX "dirtytrack"

/* ------------------------------------------------------------------ */
/* Status state                                                        */
/* ------------------------------------------------------------------ */

void dt_set_health(struct dirtytrack *dt, enum dt_health health)
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
void dt_metadata_failed(struct dirtytrack *dt, const char *what, int r)
{
	if (!test_and_set_bit(DT_F_METADATA_ERROR, &dt->flags))
		DMERR("%s: metadata %s failed (%d); tracking is degraded and every cluster will be dirty on the next activation",
		      dm_table_device_name(dt->ti->table), what, r);
	dt_set_health(dt, DT_HEALTH_IS_METADATA_ERROR);
}

void dt_update_frozen_count(struct dirtytrack *dt)
{
	spin_lock(&dt->state_lock);
	dt->frozen_clusters = dt->frozen ?
		atomic_long_read(&dt->frozen->nr_set) : -1;
	spin_unlock(&dt->state_lock);
}

/*
 * Default mode: make the on-disk superblock stop promising an exact bitmap,
 * before the in-memory sets first differ from the stored ones.  Returns 0
 * when that is durable (or was already), else the error: then what is on
 * disk may still claim VALID, and writes stay held.  Nothing to do in
 * crash_safe mode, whose stored bitmap is always a superset.  Called with
 * 'lock' held; sleeps.
 */
int dt_invalidate(struct dirtytrack *dt)
{
	if (dt->crash_safe || !test_bit(DT_F_SB_VALID_ON_DISK, &dt->flags))
		return 0;
	return dt_write_superblock(dt, false);
}

/* ------------------------------------------------------------------ */
/* Constructor and destructor                                          */
/* ------------------------------------------------------------------ */

/*
 * Table-load errors: ti->error is a static sentence, as in upstream
 * targets; the details (sizes, names, numbers) go to the kernel log on a
 * "device-mapper: dirtytrack: <dev>: " line just before it, in the same
 * words, so that what users and tests look for is unchanged.
 */
#define DT_CTR_ERR(ti, msg, fmt, ...)					\
	do {								\
		DMERR("%s: " msg ": " fmt,				\
		      dm_table_device_name((ti)->table), ##__VA_ARGS__);	\
		(ti)->error = msg;					\
	} while (0)

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
		DT_CTR_ERR(ti, "Unknown feature", "%s", name);
		return -EINVAL;
	}
	return 0;
}

/*
 * Read-only look at the metadata device: refuse what this table cannot use.
 * @frozen: whether it holds a frozen set that resume will load.
 */
static int dt_check_metadata(struct dirtytrack *dt, struct dm_target *ti,
			     bool *frozen)
{
	struct block_device *bdev = dt->metadata_dev->bdev;
	u64 need = dt_metadata_min_sectors(dt->nr_clusters);
	u64 have = bdev_nr_sectors(bdev);
	struct dt_sb_info info;
	const char *error;
	int r;

	if (have < need) {
		DT_CTR_ERR(ti, "Metadata device too small",
			   "need %llu sectors, have %llu", need, have);
		return -EINVAL;
	}

	*frozen = false;
	r = dt_md_read_superblock(bdev, &dt->md_bs, &info, &error);
	if (r == -ENODATA)
		return 0;
	if (r == -EINVAL) {
		DMERR("%s: Metadata device is not usable (%s); refusing to overwrite it",
		      dm_table_device_name(ti->table), error);
		ti->error = "Metadata device is not usable; refusing to overwrite it";
		return r;
	}
	if (r) {
		/* An I/O error, or no memory for the read (@error NULL). */
		ti->error = error ? "Cannot read the metadata superblock" :
				    "Cannot allocate memory to read the metadata superblock";
		DMERR("%s: %s (%d)", dm_table_device_name(ti->table),
		      ti->error, r);
		return r;
	}
	if (info.cluster_sectors != dt->cluster_sectors) {
		DT_CTR_ERR(ti, "Cluster size mismatch",
			   "metadata has %u sectors, table has %u",
			   info.cluster_sectors, dt->cluster_sectors);
		return -EINVAL;
	}
	if (info.data_sectors > ti->len) {
		DT_CTR_ERR(ti, "Data device shrank",
			   "metadata tracks %llu sectors, table has %llu",
			   info.data_sectors, (unsigned long long)ti->len);
		return -EINVAL;
	}
	*frozen = (info.flags & DT_SB_FLAG_VALID) &&
		  (info.flags & DT_SB_FLAG_FROZEN);
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
	bool stored_frozen;
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
	spin_lock_init(&dt->state_lock);
	dt_intent_init(dt);
	dt->frozen_clusters = -1;
	/*
	 * Metadata bios come from a pool of the target's own, never from
	 * fs_bio_set: a metadata write must make progress when the memory
	 * it needs is waiting for writes to this very device.
	 */
	if (bioset_init(&dt->md_bs, 16, 0, BIOSET_NEED_BVECS)) {
		ti->error = "Cannot allocate metadata bios";
		r = -ENOMEM;
		goto bad;
	}
	dt->sb_block = kmalloc(DT_BLOCK_SIZE, GFP_KERNEL);
	if (!dt->sb_block) {
		ti->error = "Cannot allocate the superblock buffer";
		r = -ENOMEM;
		goto bad;
	}

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
		DMERR("%s: bitmap of %llu clusters needs %llu bytes, above the %llu this machine allows",
		      dm_table_device_name(ti->table), dt->nr_clusters,
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

	r = dt_check_metadata(dt, ti, &stored_frozen);
	if (r)
		goto bad_live;

	r = -ENOMEM;
	live = dt_bitmap_alloc(dt->nr_clusters, dt->crash_safe);
	if (!live) {
		DT_CTR_ERR(ti, "Cannot allocate the bitmap", "%llu clusters",
			   dt->nr_clusters);
		goto bad_live;
	}
	/*
	 * Every bitmap resume needs is allocated here, before the old table
	 * is suspended, so that resume only reads into it.  (A frozen set
	 * the old table stores after this load is allocated at resume, in a
	 * memalloc_noio scope: see dt_take_spare().)
	 */
	if (stored_frozen) {
		dt->spare = dt_bitmap_alloc_stored(dt->nr_clusters);
		if (!dt->spare) {
			DT_CTR_ERR(ti, "Cannot allocate the bitmap",
				   "frozen set of %llu clusters",
				   dt->nr_clusters);
			goto bad_wq;
		}
	}
	if (dt->crash_safe) {
		dt->batch_buf = kvmalloc(DT_BATCH_BLOCKS * DT_BLOCK_SIZE,
					 GFP_KERNEL);
		if (!dt->batch_buf) {
			ti->error = "Cannot allocate write-intent buffer";
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
	kvfree(dt->batch_buf);
	dt_bitmap_free(dt->spare);
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
	bioset_exit(&dt->md_bs);
	kfree(dt->sb_block);
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
	bioset_exit(&dt->md_bs);
	kfree(dt->sb_block);
	kvfree(dt->batch_buf);
	dt_bitmap_free(dt->spare);
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
	/* Not needed by what was stored: give the memory back. */
	dt_bitmap_free(dt->spare);
	dt->spare = NULL;
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
