// SPDX-License-Identifier: GPL-2.0-only
/*
 * dm-dirtytrack metadata I/O.
 *
 * Layout (see dm-dirtytrack-abi.h and Documentation/dm-dirtytrack.rst):
 * block 0 holds the superblock, followed by the live bitmap and then the
 * frozen bitmap, each dt_bitmap_blocks(nr_clusters) blocks of 4 KiB.
 *
 * The valid-flag protocol that gives these blocks meaning is run by the
 * target (dm-dirtytrack-target.c):
 *
 *  - A superblock with DT_SB_FLAG_VALID set promises that both bitmaps on
 *    the device are exact.  It is written only after the bitmaps, and the
 *    write carries REQ_PREFLUSH, so the promise is never ahead of the data.
 *  - Before the in-memory state first diverges from that promise (the first
 *    write after activation, or a message that changes the sets), the
 *    target durably writes the superblock with the flag cleared.
 *  - A superblock found without the flag means the activation that wrote
 *    it ended uncleanly: the bitmaps are not trusted and every cluster is
 *    dirty.
 *  - In crash_safe mode the flag stays set: bitmap blocks are written with
 *    FUA before the writes that need them, so the stored sets are always a
 *    superset of the changed clusters (dt_md_write_live_spans(),
 *    dt_md_submit_live_spans()).
 *
 * Every dt_md_* function here but dt_md_submit_live_spans() does
 * synchronous I/O with bios from the caller's bio_set and may sleep; the
 * caller serialises them.  The second half of the file is the target's use of
 * them (superblock state, storing and loading the sets, formatting), run
 * with the target's 'lock' held.
 */
#include <linux/bio.h>
#include <linux/crc32c.h>
#include <linux/device-mapper.h>
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/random.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uuid.h>
#include <linux/vmalloc.h>

#include "dm-dirtytrack.h"

#define DM_MSG_PREFIX "dirtytrack"

/* Standard CRC-32C (Castagnoli) of the superblock after its csum field. */
static u32 dt_sb_csum(const struct dt_disk_superblock *sb)
{
	const u8 *p = (const u8 *)sb + sizeof(sb->csum);

	return ~crc32c(~0U, p, DT_SB_SIZE - sizeof(sb->csum));
}

static struct page *dt_buf_page(const void *buf)
{
	return is_vmalloc_addr(buf) ? vmalloc_to_page(buf) : virt_to_page(buf);
}

/*
 * Add as much of @len bytes at @buf (page-aligned, kmalloc'ed or vmalloc'ed)
 * to @bio as its vectors hold; returns the number of bytes added.
 */
static size_t dt_bio_add_buf(struct bio *bio, const void *buf, size_t len)
{
	size_t done = 0;

	while (done < len && bio->bi_vcnt < bio->bi_max_vecs) {
		unsigned int off = offset_in_page(buf + done);
		unsigned int n = min_t(size_t, len - done, PAGE_SIZE - off);

		if (bio_add_page(bio, dt_buf_page(buf + done), n, off) != n)
			break;
		done += n;
	}
	return done;
}

/*
 * Add bios for @len bytes at @sector from or to @buf, which is page-aligned
 * (kmalloc'ed power-of-two or page-allocator sizes, or vmalloc), to the
 * chain that ends with *@last: every bio but the newest is submitted at
 * once, chained to its successor, so that they all run in parallel and the
 * newest completes only after all of them, with the first error of any.
 */
static void dt_md_chain(struct bio **last, struct block_device *bdev,
			struct bio_set *bs, blk_opf_t opf, sector_t sector,
			void *buf, size_t len)
{
	if (is_vmalloc_addr(buf) && op_is_write(opf))
		flush_kernel_vmap_range(buf, len);

	while (len) {
		unsigned short nr_vecs = min_t(size_t, BIO_MAX_VECS,
					       DIV_ROUND_UP(len, PAGE_SIZE));
		struct bio *bio = bio_alloc_bioset(bdev, nr_vecs, opf,
						   GFP_NOIO, bs);
		size_t n;

		bio->bi_iter.bi_sector = sector;
		n = dt_bio_add_buf(bio, buf, len);
		buf += n;
		len -= n;
		sector += bio_sectors(bio);
		if (*last) {
			bio_chain(*last, bio);
			submit_bio(*last);
		}
		*last = bio;
	}
}

/* Submit the chain ending with @last and wait for all of it. */
static int dt_md_chain_wait(struct bio *last)
{
	int r;

	if (!last)
		return 0;
	r = submit_bio_wait(last);
	bio_put(last);
	return r;
}

/* Synchronous I/O of @len bytes at @sector from or to @buf. */
static int dt_md_io(struct block_device *bdev, struct bio_set *bs,
		    blk_opf_t opf, sector_t sector, void *buf, size_t len)
{
	struct bio *last = NULL;
	int r;

	dt_md_chain(&last, bdev, bs, opf, sector, buf, len);
	r = dt_md_chain_wait(last);
	if (is_vmalloc_addr(buf) && !op_is_write(opf))
		invalidate_kernel_vmap_range(buf, len);
	return r;
}

static void dt_sb_unpack(const struct dt_disk_superblock *sb,
			 struct dt_sb_info *info)
{
	info->flags = le32_to_cpu(sb->flags);
	memcpy(info->uuid, sb->uuid, DT_UUID_SIZE);
	info->sequence = le64_to_cpu(sb->sequence);
	info->generation = le64_to_cpu(sb->generation);
	info->data_sectors = le64_to_cpu(sb->data_sectors);
	info->cluster_sectors = le32_to_cpu(sb->cluster_sectors);
	info->nr_clusters = le64_to_cpu(sb->nr_clusters);
	info->dirty_clusters = le64_to_cpu(sb->dirty_clusters);
	info->frozen_clusters = le64_to_cpu(sb->frozen_clusters);
	info->frozen_sequence = le64_to_cpu(sb->frozen_sequence);
	info->frozen_id = le64_to_cpu(sb->frozen_id);
}

static void dt_sb_pack(const struct dt_sb_info *info,
		       struct dt_disk_superblock *sb)
{
	u64 bitmap_blocks = dt_bitmap_blocks(info->nr_clusters);

	memset(sb, 0, sizeof(*sb));
	sb->magic = cpu_to_le32(DT_SB_MAGIC);
	sb->version = cpu_to_le32(DT_SB_VERSION);
	sb->flags = cpu_to_le32(info->flags);
	memcpy(sb->uuid, info->uuid, DT_UUID_SIZE);
	sb->sequence = cpu_to_le64(info->sequence);
	sb->generation = cpu_to_le64(info->generation);
	sb->data_sectors = cpu_to_le64(info->data_sectors);
	sb->cluster_sectors = cpu_to_le32(info->cluster_sectors);
	sb->block_size = cpu_to_le32(DT_BLOCK_SIZE);
	sb->nr_clusters = cpu_to_le64(info->nr_clusters);
	sb->bitmap_blocks = cpu_to_le64(bitmap_blocks);
	sb->live_block = cpu_to_le64(1);
	sb->frozen_block = cpu_to_le64(1 + bitmap_blocks);
	sb->dirty_clusters = cpu_to_le64(info->dirty_clusters);
	sb->frozen_clusters = cpu_to_le64(info->frozen_clusters);
	sb->frozen_sequence = cpu_to_le64(info->frozen_sequence);
	sb->frozen_id = cpu_to_le64(info->frozen_id);
	sb->csum = cpu_to_le32(dt_sb_csum(sb));
}

int dt_md_read_superblock(struct block_device *bdev, struct bio_set *bs,
			  struct dt_sb_info *info, const char **error)
{
	struct dt_disk_superblock *sb;
	void *block;
	int r;

	*error = NULL;
	block = kmalloc(DT_BLOCK_SIZE, GFP_NOIO);
	if (!block)
		return -ENOMEM;

	r = dt_md_io(bdev, bs, REQ_OP_READ | REQ_SYNC, 0, block, DT_BLOCK_SIZE);
	if (r) {
		*error = "Cannot read the metadata superblock";
		goto out;
	}
	if (dt_all_zero(block, DT_BLOCK_SIZE)) {
		r = -ENODATA;
		goto out;
	}

	sb = block;
	*error = dt_sb_validate(sb, dt_sb_csum(sb), bdev_nr_sectors(bdev));
	if (*error) {
		r = -EINVAL;
		goto out;
	}
	dt_sb_unpack(sb, info);
out:
	kfree(block);
	return r;
}

int dt_md_write_superblock(struct block_device *bdev, struct bio_set *bs,
			   const struct dt_sb_info *info, void *block)
{
	memset(block, 0, DT_BLOCK_SIZE);
	dt_sb_pack(info, block);
	return dt_md_io(bdev, bs, REQ_OP_WRITE | REQ_SYNC | REQ_PREFLUSH | REQ_FUA,
			0, block, DT_BLOCK_SIZE);
}

static sector_t dt_bitmap_sector(u64 nr_clusters, bool frozen)
{
	u64 block = 1 + (frozen ? dt_bitmap_blocks(nr_clusters) : 0);

	return block * DT_BLOCK_SECTORS;
}

int dt_md_read_bitmap(struct block_device *bdev, struct bio_set *bs,
		      u64 nr_clusters, bool frozen, void *buf)
{
	return dt_md_io(bdev, bs, REQ_OP_READ | REQ_SYNC,
			dt_bitmap_sector(nr_clusters, frozen), buf,
			dt_bitmap_blocks(nr_clusters) * DT_BLOCK_SIZE);
}

int dt_md_write_bitmap(struct block_device *bdev, struct bio_set *bs,
		       u64 nr_clusters, bool frozen, const void *buf)
{
	return dt_md_io(bdev, bs, REQ_OP_WRITE | REQ_SYNC,
			dt_bitmap_sector(nr_clusters, frozen), (void *)buf,
			dt_bitmap_blocks(nr_clusters) * DT_BLOCK_SIZE);
}

int dt_md_write_live_spans(struct block_device *bdev, struct bio_set *bs,
			   const struct dt_md_span *spans, unsigned int nr)
{
	struct bio *last = NULL;
	unsigned int i;

	for (i = 0; i < nr; i++)
		dt_md_chain(&last, bdev, bs, REQ_OP_WRITE | REQ_SYNC | REQ_FUA,
			    DT_BLOCK_SECTORS + spans[i].sector,
			    (void *)spans[i].buf,
			    (size_t)spans[i].nr_sectors << SECTOR_SHIFT);
	return dt_md_chain_wait(last);
}

int dt_md_submit_live_spans(struct block_device *bdev, struct bio_set *bs,
			    struct dt_md_own_bio *own,
			    const struct dt_md_span *spans, unsigned int nr,
			    bio_end_io_t *end_io, void *private)
{
	const blk_opf_t opf = REQ_OP_WRITE | REQ_SYNC | REQ_FUA;
	struct bio_list bios;
	struct bio *bio, *parent;
	unsigned int i;

	if (!nr)
		return -EINVAL;
	bio_list_init(&bios);
	for (i = 0; i < nr; i++) {
		const void *buf = spans[i].buf;
		size_t len = (size_t)spans[i].nr_sectors << SECTOR_SHIFT;
		unsigned short nr_vecs = DIV_ROUND_UP(offset_in_page(buf) + len,
						      PAGE_SIZE);

		if (is_vmalloc_addr(buf))
			flush_kernel_vmap_range((void *)buf, len);
		if (i == nr - 1 && nr_vecs == 1) {
			bio = &own->bio;
			bio_init(bio, bdev, &own->bvec, 1, opf);
		} else {
			bio = bio_alloc_bioset(bdev, nr_vecs, opf, GFP_NOWAIT,
					       bs);
			if (!bio)
				goto nomem;
		}
		bio->bi_iter.bi_sector = DT_BLOCK_SECTORS + spans[i].sector;
		bio_list_add(&bios, bio);
		/* nr_vecs covers every page the span touches. */
		if (WARN_ON_ONCE(dt_bio_add_buf(bio, buf, len) != len))
			goto nomem;
	}
	/* Chain every bio to the last before any of them can complete. */
	parent = bios.tail;
	parent->bi_end_io = end_io;
	parent->bi_private = private;
	bio_list_for_each(bio, &bios)
		if (bio != parent)
			bio_chain(bio, parent);
	while ((bio = bio_list_pop(&bios)))
		submit_bio(bio);
	return 0;

nomem:
	while ((bio = bio_list_pop(&bios)))
		dt_md_put_live_bio(bio);
	return -ENOMEM;
}

void dt_md_put_live_bio(struct bio *bio)
{
	if (bio->bi_pool)
		bio_put(bio);
	else
		bio_uninit(bio);	/* the caller's own */
}

/* ------------------------------------------------------------------ */
/* The target's metadata: superblock, sets, format and load           */
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
int dt_write_superblock(struct dirtytrack *dt, bool valid)
{
	struct dt_sb_info info;
	int r;

	lockdep_assert_held(&dt->lock);
	dt_sb_snapshot(dt, &info, dt_sb_flags(dt, valid));
	r = dt_md_write_superblock(dt->metadata_dev->bdev, &dt->md_bs, &info,
				   dt->sb_block);
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
int dt_make_honest(struct dirtytrack *dt)
{
	if (test_bit(DT_F_HONEST, &dt->flags))
		return 0;
	return dt_write_superblock(dt, false);
}


/*
 * Write both sets, then the superblock with the valid flag (unless metadata
 * I/O failed in this activation).  Called with 'lock' held, no I/O in
 * flight (postsuspend).
 */
void dt_write_metadata(struct dirtytrack *dt)
{
	struct block_device *bdev = dt->metadata_dev->bdev;
	int r;

	r = dt_md_write_bitmap(bdev, &dt->md_bs, dt->nr_clusters, false,
			       dt_live_locked(dt)->bits);
	if (!r && dt->frozen)
		r = dt_md_write_bitmap(bdev, &dt->md_bs, dt->nr_clusters, true,
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
	r = dt_md_write_superblock(dt->metadata_dev->bdev, &dt->md_bs, &info,
				   dt->sb_block);
	if (r)
		return r;
	DMINFO("%s: formatted metadata device %s",
	       dm_table_device_name(dt->ti->table), dt->metadata_dev->name);
	return 0;
}

/* Read a stored set of the geometry in @info into a bitmap of ours. */
static int dt_load_set(struct dirtytrack *dt, const struct dt_sb_info *info,
		       bool frozen, struct dt_bitmap *bm)
{
	int r;

	if (info->nr_clusters == dt->nr_clusters)
		return dt_md_read_bitmap(dt->metadata_dev->bdev, &dt->md_bs,
					 dt->nr_clusters, frozen, bm->bits);

	/* Grown: the stored bitmap is the prefix of ours. */
	memset(bm->bits, 0, dt_bitmap_bytes(dt->nr_clusters));
	r = dt_md_read_bitmap(dt->metadata_dev->bdev, &dt->md_bs,
			      info->nr_clusters, frozen, bm->bits);
	if (r)
		return r;
	dt_bitmap_clip(bm, info->nr_clusters);
	return 0;
}

/*
 * A bitmap for the stored frozen set: the spare (set aside by the
 * constructor, or the frozen set of this instance's last activation), or
 * else a new one.  This runs at resume, with the device suspended: the
 * allocation is in dt_lock()'s memalloc_noio scope, so that reclaim never
 * waits for writes to this device.
 */
static struct dt_bitmap *dt_take_spare(struct dirtytrack *dt)
{
	struct dt_bitmap *bm = dt->spare;

	dt->spare = NULL;
	if (!bm)
		return dt_bitmap_alloc_stored(dt->nr_clusters);
	/*
	 * Drained already: set aside by dt_bitmap_alloc_stored(), or a
	 * frozen set of this instance, which its checkpoint or its load
	 * waited for.
	 */
	return bm;
}

/*
 * Load the metadata into memory.  Returns 0 with the sets loaded, or a
 * negative errno for a superblock that this table cannot use.  Metadata
 * read errors do not fail: they load an all-dirty set, degraded.
 */
int dt_load(struct dirtytrack *dt)
{
	struct dt_bitmap *live = dt_live_locked(dt);
	struct dt_bitmap *frozen = NULL;
	struct dt_sb_info info;
	const char *error;
	bool grown;
	int r;

	/*
	 * Forget what an earlier activation of this instance had in memory,
	 * keeping its frozen set's buffer for the one stored.
	 */
	if (dt->frozen && !dt->spare)
		dt->spare = dt->frozen;
	else
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

	r = dt_md_read_superblock(dt->metadata_dev->bdev, &dt->md_bs, &info,
				  &error);
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
		frozen = dt_take_spare(dt);
		if (!frozen) {
			DMERR("%s: cannot allocate the frozen set of %llu clusters",
			      dm_table_device_name(dt->ti->table),
			      dt->nr_clusters);
			return -ENOMEM;
		}
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
