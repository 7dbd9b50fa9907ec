// SPDX-License-Identifier: GPL-2.0-only OR MIT
/*
 * Offline reading of a dirtytrack metadata device.  The layout is the one
 * of the ABI header: block 0 the superblock, then the live and the
 * frozen bitmap of bitmap_blocks blocks each.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "inspect.h"

#define CHUNK_BYTES	(256U * 1024U)	/* bitmap read size, multiple of 8 */

static void decode_superblock(const struct dt_disk_superblock *sb,
			      struct dt_md_info *info)
{
	info->version = DT_LE32(sb->version);
	info->flags = DT_LE32(sb->flags);
	memcpy(info->uuid, sb->uuid, DT_UUID_SIZE);
	info->sequence = DT_LE64(sb->sequence);
	info->generation = DT_LE64(sb->generation);
	info->data_sectors = DT_LE64(sb->data_sectors);
	info->cluster_sectors = DT_LE32(sb->cluster_sectors);
	info->clusters = DT_LE64(sb->nr_clusters);
	info->bitmap_blocks = DT_LE64(sb->bitmap_blocks);
	info->live_block = DT_LE64(sb->live_block);
	info->frozen_block = DT_LE64(sb->frozen_block);
	info->sb_dirty_clusters = DT_LE64(sb->dirty_clusters);
	info->sb_frozen_clusters = DT_LE64(sb->frozen_clusters);
	info->frozen_sequence = DT_LE64(sb->frozen_sequence);
	info->frozen_id = DT_LE64(sb->frozen_id);
}

/*
 * Counts one bitmap of @blocks blocks at block @first: set bits below
 * @clusters into *set, set bits beyond into *stray.
 */
static int count_bitmap(const struct dt_md_source *src, unsigned char *buf,
			uint64_t first, uint64_t blocks, uint64_t clusters,
			uint64_t *set, uint64_t *stray)
{
	uint64_t total = blocks * DT_BLOCK_SIZE;
	uint64_t off, bit = 0;
	int ret;

	*set = *stray = 0;
	for (off = 0; off < total; off += CHUNK_BYTES) {
		size_t len = total - off < CHUNK_BYTES ? (size_t)(total - off) : CHUNK_BYTES;
		size_t i;

		ret = src->read(src->ctx, buf, len, first * DT_BLOCK_SIZE + off);
		if (ret)
			return ret;
		for (i = 0; i < len; i += 8, bit += 64) {
			uint64_t w, below;

			memcpy(&w, buf + i, 8);
			w = le64toh(w);
			if (bit + 64 <= clusters)
				below = w;
			else if (bit >= clusters)
				below = 0;
			else
				below = w & ((1ULL << (clusters - bit)) - 1);
			*set += (uint64_t)__builtin_popcountll(below);
			*stray += (uint64_t)__builtin_popcountll(w ^ below);
		}
	}
	return 0;
}

int dt_md_inspect(const struct dt_md_source *src, struct dt_md_info *info)
{
	unsigned char block[DT_BLOCK_SIZE];
	struct dt_disk_superblock sb;
	size_t len;
	unsigned char *buf;
	uint64_t stray_live, stray_frozen;
	int ret;

	memset(info, 0, sizeof(*info));
	if (src->size < DT_SB_SIZE) {
		info->state = DT_MD_CORRUPT;
		info->problem = "too small to hold a superblock";
		return 0;
	}
	len = src->size < DT_BLOCK_SIZE ? (size_t)src->size : DT_BLOCK_SIZE;
	ret = src->read(src->ctx, block, len, 0);
	if (ret)
		return ret;
	if (dt_all_zero(block, len)) {
		info->state = DT_MD_UNFORMATTED;
		return 0;
	}
	memcpy(&sb, block, sizeof(sb));
	info->csum = dt_crc32c(block + 4, DT_SB_SIZE - 4);
	info->problem = dt_sb_validate(&sb, info->csum, src->size >> 9);
	if (info->problem) {
		info->state = DT_MD_CORRUPT;
		return 0;
	}
	info->state = DT_MD_SOUND;
	decode_superblock(&sb, info);

	/* The validator proved both bitmaps lie within src->size. */
	buf = malloc(CHUNK_BYTES);
	if (!buf)
		return -ENOMEM;
	ret = count_bitmap(src, buf, info->live_block, info->bitmap_blocks,
			   info->clusters, &info->dirty_clusters, &stray_live);
	if (!ret)
		ret = count_bitmap(src, buf, info->frozen_block, info->bitmap_blocks,
				   info->clusters, &info->frozen_clusters,
				   &stray_frozen);
	free(buf);
	if (ret)
		return ret;
	info->stray_bits = stray_live + stray_frozen;
	return 0;
}

static int fd_read(void *ctx, void *buf, size_t len, uint64_t off)
{
	int fd = *(int *)ctx;
	char *p = buf;

	while (len) {
		ssize_t r = pread(fd, p, len, (off_t)off);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -ENODATA;
		p += r;
		off += (uint64_t)r;
		len -= (size_t)r;
	}
	return 0;
}

void dt_md_source_fd(struct dt_md_source *src, int *fd_ctx, uint64_t size)
{
	src->read = fd_read;
	src->ctx = fd_ctx;
	src->size = size;
}

int dt_md_open(const char *path, int *fd, uint64_t *size, int *in_use)
{
	struct stat st;
	int ret;

	*in_use = 0;
	*fd = open(path, O_RDONLY | O_CLOEXEC | O_EXCL);
	if (*fd < 0 && errno == EBUSY) {
		*in_use = 1;
		*fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	if (*fd < 0)
		return -errno;
	if (fstat(*fd, &st) < 0)
		goto fail;
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(*fd, BLKGETSIZE64, size) < 0)
			goto fail;
		/*
		 * The target writes its metadata with bios, past the page cache
		 * of the device: drop what an earlier reader left there.
		 */
		posix_fadvise(*fd, 0, 0, POSIX_FADV_DONTNEED);
	} else if (S_ISREG(st.st_mode)) {
		*size = (uint64_t)st.st_size;
	} else {
		errno = ENOTBLK;
		goto fail;
	}
	return 0;
fail:
	ret = -errno;
	close(*fd);
	*fd = -1;
	return ret;
}
