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
 * Every function here but dt_md_submit_live_spans() does synchronous I/O
 * with bios it allocates itself and may sleep; the caller serialises them.
 */
#include <linux/bio.h>
#include <linux/crc32c.h>
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/vmalloc.h>

#include "dm-dirtytrack-metadata.h"

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
			blk_opf_t opf, sector_t sector, void *buf, size_t len)
{
	if (is_vmalloc_addr(buf) && op_is_write(opf))
		flush_kernel_vmap_range(buf, len);

	while (len) {
		unsigned short nr_vecs = min_t(size_t, BIO_MAX_VECS,
					       DIV_ROUND_UP(len, PAGE_SIZE));
		struct bio *bio = bio_alloc(bdev, nr_vecs, opf, GFP_NOIO);
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
static int dt_md_io(struct block_device *bdev, blk_opf_t opf, sector_t sector,
		    void *buf, size_t len)
{
	struct bio *last = NULL;
	int r;

	dt_md_chain(&last, bdev, opf, sector, buf, len);
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

int dt_md_read_superblock(struct block_device *bdev, struct dt_sb_info *info,
			  const char **error)
{
	struct dt_disk_superblock *sb;
	void *block;
	int r;

	*error = NULL;
	block = kmalloc(DT_BLOCK_SIZE, GFP_KERNEL);
	if (!block)
		return -ENOMEM;

	r = dt_md_io(bdev, REQ_OP_READ | REQ_SYNC, 0, block, DT_BLOCK_SIZE);
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

int dt_md_write_superblock(struct block_device *bdev,
			   const struct dt_sb_info *info)
{
	void *block;
	int r;

	block = kzalloc(DT_BLOCK_SIZE, GFP_NOIO);
	if (!block)
		return -ENOMEM;
	dt_sb_pack(info, block);
	r = dt_md_io(bdev, REQ_OP_WRITE | REQ_SYNC | REQ_PREFLUSH | REQ_FUA, 0,
		     block, DT_BLOCK_SIZE);
	kfree(block);
	return r;
}

static sector_t dt_bitmap_sector(u64 nr_clusters, bool frozen)
{
	u64 block = 1 + (frozen ? dt_bitmap_blocks(nr_clusters) : 0);

	return block * DT_BLOCK_SECTORS;
}

int dt_md_read_bitmap(struct block_device *bdev, u64 nr_clusters, bool frozen,
		      void *buf)
{
	return dt_md_io(bdev, REQ_OP_READ | REQ_SYNC,
			dt_bitmap_sector(nr_clusters, frozen), buf,
			dt_bitmap_blocks(nr_clusters) * DT_BLOCK_SIZE);
}

int dt_md_write_bitmap(struct block_device *bdev, u64 nr_clusters, bool frozen,
		       const void *buf)
{
	return dt_md_io(bdev, REQ_OP_WRITE | REQ_SYNC,
			dt_bitmap_sector(nr_clusters, frozen), (void *)buf,
			dt_bitmap_blocks(nr_clusters) * DT_BLOCK_SIZE);
}

int dt_md_write_live_spans(struct block_device *bdev,
			   const struct dt_md_span *spans, unsigned int nr)
{
	struct bio *last = NULL;
	unsigned int i;

	for (i = 0; i < nr; i++)
		dt_md_chain(&last, bdev, REQ_OP_WRITE | REQ_SYNC | REQ_FUA,
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
