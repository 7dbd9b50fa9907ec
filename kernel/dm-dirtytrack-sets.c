// SPDX-License-Identifier: GPL-2.0-only
/*
 * dm-dirtytrack in-memory sets: the bitmaps of the live, frozen and
 * retiring sets, marking, merging, swapping the live set (and its epoch)
 * and waiting for a retired set to drain.
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

static void dt_bitmap_drained(struct percpu_ref *ref)
{
	struct dt_bitmap *bm = container_of(ref, struct dt_bitmap, inflight);

	/* For every wait to come: a set may be waited for more than once. */
	complete_all(&bm->drained);
}

void dt_bitmap_free(struct dt_bitmap *bm)
{
	if (bm) {
		percpu_ref_exit(&bm->inflight);
		kvfree(bm->durable);
		kvfree(bm->bits);
		kfree(bm);
	}
}

struct dt_bitmap *dt_bitmap_alloc(u64 nr_clusters, bool durable)
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
 * A bitmap for a set read from disk, in which no write is ever marked: its
 * count is killed and the switch waited for, so that freeing it later never
 * races the RCU callback of the kill.
 */
struct dt_bitmap *dt_bitmap_alloc_stored(u64 nr_clusters)
{
	struct dt_bitmap *bm = dt_bitmap_alloc(nr_clusters, false);

	if (bm) {
		percpu_ref_kill(&bm->inflight);
		dt_bitmap_wait_drained(bm);
	}
	return bm;
}

/*
 * Wait until every write marked in @bm has completed.  @bm must no longer
 * be the live set (see dt_swap_live).  Sleeps; call without 'lock' (held
 * bios may need it to complete).
 */
void dt_bitmap_wait_drained(struct dt_bitmap *bm)
{
	wait_for_completion(&bm->drained);
}

/* Zero every bit at and past @nr_clusters (untrusted input from disk). */
void dt_bitmap_clip(struct dt_bitmap *bm, u64 nr_clusters)
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

void dt_bitmap_recount(struct dt_bitmap *bm, u64 nr_clusters)
{
	size_t i, nr_longs = dt_bitmap_bytes(nr_clusters) / sizeof(long);
	long n = 0;

	for (i = 0; i < nr_longs; i++)
		n += hweight_long(bm->bits[i]);
	atomic_long_set(&bm->nr_set, n);
}

void dt_bitmap_fill(struct dt_bitmap *bm, u64 nr_clusters)
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
void dt_bitmap_mark(struct dt_bitmap *bm, u64 first, u64 last)
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
void dt_bitmap_merge(struct dt_bitmap *dst, const struct dt_bitmap *src,
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
void dt_mark_live(struct dirtytrack *dt, u64 first, u64 last)
{
	struct dt_bitmap *live;

	rcu_read_lock();
	live = rcu_dereference(dt->live);
	dt_bitmap_mark(live, first, last);
	rcu_read_unlock();
}


/*
 * Publish @new as the live set and bump the epoch.  Returns the old live
 * set, which no marker uses any more once this returns.  Called with
 * 'lock' held; sleeps (synchronize_rcu).
 */
struct dt_bitmap *dt_swap_live(struct dirtytrack *dt,
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
bool dt_range_set(const unsigned long *bits, u64 first, u64 last)
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

/* A frozen set's identity: random, never 0 (which means none). */
u64 dt_new_frozen_id(void)
{
	u64 id;

	do {
		id = get_random_u64();
	} while (!id);
	return id;
}
