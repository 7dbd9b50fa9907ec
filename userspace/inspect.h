/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/*
 * Offline reading of a dirtytrack metadata device (dirtyctl inspect).
 * The device is hostile input: every size and offset is checked by the
 * ABI header's dt_sb_validate() before it is used, and every read may
 * come back short.
 */
#ifndef DIRTYCTL_INSPECT_H
#define DIRTYCTL_INSPECT_H

#include <stddef.h>
#include <stdint.h>

#include "../kernel/dm-dirtytrack-abi.h"

/* Where the metadata comes from: a device, a file, or memory (tests). */
struct dt_md_source {
	/* Reads exactly @len bytes at @off: 0, or -errno (-ENODATA if short). */
	int (*read)(void *ctx, void *buf, size_t len, uint64_t off);
	void *ctx;
	uint64_t size;		/* bytes */
};

enum dt_md_state {
	DT_MD_SOUND,		/* the superblock passed validation */
	DT_MD_UNFORMATTED,	/* the first 4 KiB are all zero */
	DT_MD_CORRUPT,		/* see problem */
};

struct dt_md_info {
	enum dt_md_state state;
	const char *problem;		/* DT_MD_CORRUPT: what is wrong */
	uint32_t csum;			/* CRC-32C computed over bytes 4..511 */

	/* Superblock fields in host order; meaningful when DT_MD_SOUND. */
	uint32_t version;
	uint32_t flags;
	unsigned char uuid[DT_UUID_SIZE];
	uint64_t sequence;
	uint64_t generation;
	uint64_t data_sectors;
	uint32_t cluster_sectors;
	uint64_t clusters;
	uint64_t bitmap_blocks;
	uint64_t live_block;
	uint64_t frozen_block;
	uint64_t sb_dirty_clusters;	/* the counters the superblock stores */
	uint64_t sb_frozen_clusters;
	uint64_t frozen_sequence;
	uint64_t frozen_id;		/* 0: none (or a format from before ids) */

	/* Counted in the bitmaps, bits below clusters only. */
	uint64_t dirty_clusters;
	uint64_t frozen_clusters;
	uint64_t stray_bits;		/* set bits at or beyond clusters */
};

/*
 * dt_md_inspect - read and validate the superblock of @src and count both
 * bitmaps.  Returns 0 with info->state telling the verdict, or -errno
 * when a read failed.
 */
int dt_md_inspect(const struct dt_md_source *src, struct dt_md_info *info);

/* A source reading @fd with pread(); @fd_ctx must outlive the source. */
void dt_md_source_fd(struct dt_md_source *src, int *fd_ctx, uint64_t size);

/*
 * dt_md_open - open @path read-only: a block device (size from
 * BLKGETSIZE64, exclusively when possible) or a regular file.  *in_use
 * is set when a block device is held open exclusively by someone else,
 * such as an active table.  Returns 0, -ENOTBLK for other file types, or
 * -errno.
 */
int dt_md_open(const char *path, int *fd, uint64_t *size, int *in_use);

#endif
