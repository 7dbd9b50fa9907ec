// SPDX-License-Identifier: GPL-2.0-only
/*
 * dm-dirtytrack messages: parsing (dt_msg_parse()), the handlers of every
 * state change, and the paged bitmap reply.
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
	/*
	 * crash_safe: no batch records durable bits in a set that is not
	 * live (dt_lock() stopped the direct path, and no marker sees @old
	 * as live any more): the frozen set needs one bitmap, not two.
	 */
	kvfree(old->durable);
	old->durable = NULL;
	dt->frozen = old;
	dt_set_frozen_id(dt, id);
	dt_update_frozen_count(dt);
	if (dt->crash_safe) {
		r = dt_md_write_bitmap(dt->metadata_dev->bdev, &dt->md_bs,
				       dt->nr_clusters, true, old->bits);
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

int dt_message(struct dm_target *ti, unsigned int argc, char **argv,
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
	 * State changes are refused while the device is suspended (below,
	 * authoritatively, by ownership); refused here first, before the
	 * allocation.
	 */
	if (dm_suspended(ti))
		return -EBUSY;
	/*
	 * A new set is allocated before any lock is taken: reclaim may write
	 * to this very device, whose held bios need 'lock'.  And without I/O
	 * to reclaim with: a suspend may begin meanwhile, and writes to the
	 * device would then wait for its resume.
	 */
	if (m.op == DT_OP_CLEAR || m.op == DT_OP_CHECKPOINT) {
		unsigned int noio = memalloc_noio_save();

		empty = dt_bitmap_alloc(dt->nr_clusters, dt->crash_safe);
		memalloc_noio_restore(noio);
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
