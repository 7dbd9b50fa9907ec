/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * dm-dirtytrack snapshot store: preserves the frozen set as of a checkpoint
 * while a backup reads it (copy-before-write with dm-kcopyd), and the
 * read-only "dirtytrack-view" target that serves it.
 *
 * The dirtytrack target owns one struct dt_snap per table that has a
 * snapshot_store feature and calls it from a handful of places:
 *
 *   dt_snap_create()/dt_snap_put()     ctr / dtr
 *   dt_snap_hold_write()               dt_map(), for every data-changing
 *                                      bio, inside the RCU read section
 *                                      that marks the live set
 *   dt_snap_checkpoint_begin()         checkpoint, before the live set is
 *                                      swapped
 *   dt_snap_checkpoint_done()          checkpoint, once the frozen set has
 *                                      drained
 *   dt_snap_end()                      commit, rollback, postsuspend (and a
 *                                      checkpoint that failed)
 *   dt_snap_release()                  the "release" message
 *   dt_snap_status()                   status fields 10-12
 *
 * The snapshot gives back the bios it held with dt_resubmit_write(), which
 * the target implements: it marks and submits the bio as dt_map() would
 * have, without asking the snapshot again.
 */
#ifndef DM_DIRTYTRACK_SNAPSHOT_H
#define DM_DIRTYTRACK_SNAPSHOT_H

#include <linux/device-mapper.h>
#include <linux/types.h>

#include "dm-dirtytrack-abi.h"

struct dt_snap;

/*
 * dt_snap_create - the store of the dirtytrack target @ti, on @store, for
 * @data of @nr_clusters clusters of @cluster_sectors.  Registers it so that
 * a view on the dirtytrack device can find it.  Returns the store or an
 * ERR_PTR, with @error set to a static string.
 */
struct dt_snap *dt_snap_create(struct dm_target *ti, struct dm_dev *data,
			       struct dm_dev *store, u32 cluster_sectors,
			       u64 nr_clusters, char **error);

/* The target is being destroyed: unregister and drop its reference. */
void dt_snap_put(struct dt_snap *s);

/*
 * dt_snap_hold_write - called from dt_map() for a write to clusters
 * @first..@last.  Returns true when the snapshot took @bio (it gives it back
 * later with dt_resubmit_write()); false, after at most one bit test per
 * cluster, when the write may go on now.  Never sleeps or allocates.
 */
bool dt_snap_hold_write(struct dt_snap *s, struct bio *bio, u64 first,
			u64 last);

/*
 * Checkpoint: dt_snap_checkpoint_begin() makes every new write wait (call
 * it before the live set is swapped; it waits for an RCU grace period, so
 * that no dt_map() that missed it marks the new live set);
 * dt_snap_checkpoint_done() starts the snapshot of @frozen_bits (the
 * frozen set, on-disk bit order) once every write marked in the frozen set
 * has completed, and lets the waiting writes go on.
 */
void dt_snap_checkpoint_begin(struct dt_snap *s);
void dt_snap_checkpoint_done(struct dt_snap *s, const void *frozen_bits);

/* End the snapshot (if any), let every held write go, free the store. */
void dt_snap_end(struct dt_snap *s);

/*
 * release <start> <nr_sectors>: the clusters fully inside the extent need
 * no more preserving.  -ENOENT without a snapshot, -ERANGE beyond @len.
 */
int dt_snap_release(struct dt_snap *s, u64 start, u64 nr, u64 len);

/* Status fields 10-12: "<snapshot> <store_used_sectors> <store_sectors>". */
void dt_snap_status(struct dt_snap *s, char *result, unsigned int maxlen,
		    unsigned int *sz);

/* Implemented by the target: map and submit a write the snapshot held. */
void dt_resubmit_write(struct dm_target *ti, struct bio *bio);

/* Module init/exit: the view target. */
int dt_snap_init(void);
void dt_snap_exit(void);

#endif /* DM_DIRTYTRACK_SNAPSHOT_H */
