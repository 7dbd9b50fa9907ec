// SPDX-License-Identifier: GPL-2.0-only
/*
 * dm-dirtytrack write-intent engine (crash_safe mode) and held bios: the
 * batches of live-bitmap sectors, the direct path that writes them from
 * dt_map() (dt_aw_*), and the bios held until what they need is durable
 * (their bits, or in the default mode the cleared valid flag), with the
 * retry and failure policy for metadata that cannot be written.
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
int dt_batch_flush(struct dirtytrack *dt)
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
	r = dt_md_write_live_spans(dt->metadata_dev->bdev, &dt->md_bs,
				   dt->batch_spans, nr_spans);
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
void dt_batch_add_range(struct dirtytrack *dt, u64 first, u64 last)
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
void dt_durable_mark(struct dt_bitmap *live, u64 first, u64 last)
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
int dt_persist_live(struct dirtytrack *dt)
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
	if (!dt_md_submit_live_spans(dt->metadata_dev->bdev, &dt->md_bs,
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
int dt_hold_crash_safe(struct dirtytrack *dt, struct bio *bio)
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
 *
 * Writes to the device may wait for a holder of 'lock' (held bios, a
 * suspended device at resume), so its holder allocates nothing that
 * reclaim could only provide by writing to the device: everything under
 * 'lock' runs in a memalloc_noio scope.
 */
void dt_lock(struct dirtytrack *dt)
{
	mutex_lock(&dt->lock);
	dt->lock_noio = memalloc_noio_save();
	if (!dt->crash_safe)
		return;
	spin_lock(&dt->held_lock);
	dt->aw_blocked = true;
	spin_unlock(&dt->held_lock);
	wait_event(dt->aw_wait, dt_aw_idle(dt));
}

void dt_unlock(struct dirtytrack *dt)
{
	if (dt->crash_safe) {
		spin_lock(&dt->held_lock);
		dt->aw_blocked = false;
		spin_unlock(&dt->held_lock);
	}
	memalloc_noio_restore(dt->lock_noio);
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

/* The held bios, the direct path and their workers, for the constructor. */
void dt_intent_init(struct dirtytrack *dt)
{
	spin_lock_init(&dt->held_lock);
	bio_list_init(&dt->held);
	INIT_WORK(&dt->held_work, dt_held_work);
	INIT_DELAYED_WORK(&dt->retry_work, dt_retry_work);
	INIT_WORK(&dt->aw_work, dt_aw_work);
	init_waitqueue_head(&dt->aw_wait);
	bio_list_init(&dt->aw_bios);
}
