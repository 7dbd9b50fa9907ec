/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/*
 * Hash while copying: dt-copy-extents --hash-to hashes the manifest's
 * clusters from the chunks it copies, while they are in memory, and
 * writes them into a leaves file (manifest.h) for "dt-manifest update
 * --leaves".  A cluster the copy covers only in part (an extent that
 * starts or ends inside it) is hashed at the end by reading it back from
 * the destination, after every write: the leaves are those of the
 * destination as the copy left it.
 */
#ifndef DT_COPYHASH_H
#define DT_COPYHASH_H

#include <stddef.h>
#include <stdint.h>

#include "manifest.h"

struct copy_hash {
	struct dtm_hasher *hs;
	struct dtm_leaves_out out;
	uint64_t cb;			/* cluster bytes */
	int active;			/* a cluster is being fed */
	uint64_t cur, fed;		/* its index, and bytes fed from its start */
	uint64_t *reread;		/* clusters covered in part */
	size_t nreread, capreread;
	uint64_t hashed;		/* from memory */
	uint64_t reread_done;		/* read back from the destination */
};

/* 0, or -errno (-EINVAL: libcrypto lacks @algorithm). */
int copy_hash_init(struct copy_hash *ch, const char *path, unsigned int algorithm,
		   uint32_t cluster_sectors);

/* @len bytes now at offset @off of the destination.  0 or -errno. */
int copy_hash_feed(struct copy_hash *ch, uint64_t off, const unsigned char *buf, size_t len);

/*
 * After the last write: the cluster being fed, when it ends at
 * @data_bytes (the destination's size), and every cluster covered in part,
 * read from @dst_fd; then the trailer.  0 or -errno (*what names the step).
 */
int copy_hash_finish(struct copy_hash *ch, int dst_fd, uint64_t data_bytes, const char **what);

/* Frees everything; an unfinished file is left without its trailer. */
void copy_hash_free(struct copy_hash *ch);

#endif
