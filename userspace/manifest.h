/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/*
 * The hash manifest of a backup image: one hash per cluster and a Merkle
 * root over them (Documentation/manifest.md has the format byte by byte).
 *
 * Everything here is a pure function of memory, except dtm_load(),
 * dtm_save() and dtm_mark_stale(), which read and replace a manifest
 * file.  The parser (dtm_parse) takes untrusted bytes and is fuzzed.
 */
#ifndef DT_MANIFEST_H
#define DT_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#define DTM_MAGIC		"DTMANIF"	/* 7 characters and a NUL */
#define DTM_VERSION		1
#define DTM_HEADER_SIZE		512
#define DTM_MAX_HASH		64
#define DTM_CSUM_OFFSET		(DTM_HEADER_SIZE - 4)

/* Algorithm ids, as stored. */
#define DTM_ALG_SHA256		1
#define DTM_ALG_BLAKE2B256	2	/* BLAKE2b-512, first 32 bytes */

/* Header flags. */
#define DTM_FLAG_STALE		(1U << 0)	/* the image may have changed */
#define DTM_FLAG_IDENTITY	(1U << 1)	/* uuid and sequence are set */
#define DTM_FLAGS_KNOWN		(DTM_FLAG_STALE | DTM_FLAG_IDENTITY)

#define DTM_MIN_CLUSTER_SECTORS	1
#define DTM_MAX_CLUSTER_SECTORS	65536		/* 32 MiB */
#define DTM_MAX_CLUSTERS	(1ULL << 40)
#define DTM_DEFAULT_CLUSTER_SECTORS 128		/* 64 KiB */

struct dtm_header {
	uint32_t version;
	uint16_t algorithm;
	uint16_t hash_size;
	uint32_t flags;
	uint32_t cluster_sectors;
	uint64_t data_bytes;
	uint64_t clusters;
	unsigned char uuid[16];
	uint64_t sequence;
	unsigned char root[DTM_MAX_HASH];
};

/*
 * The tree in memory: level 0 holds the leaves (cluster hashes), level
 * k + 1 node j is H(0x01 || level k node 2j || node 2j + 1), or node 2j
 * itself when it has no right sibling.  The last level has one node: the
 * root.
 */
struct dtm {
	struct dtm_header h;
	unsigned int levels;
	uint64_t count[65];
	unsigned char *level[65];	/* level[0]: clusters * hash_size bytes */
};

/* Name of an algorithm ("sha256", "blake2b256"), or NULL. */
const char *dtm_algorithm_name(unsigned int algorithm);
/* Id of an algorithm name, or 0. */
unsigned int dtm_algorithm_from_name(const char *name);

/* ------------------------------------------------------------------ */
/* Hashing                                                             */
/* ------------------------------------------------------------------ */

struct dtm_hasher;

/* NULL when the algorithm is unknown or libcrypto lacks it. */
struct dtm_hasher *dtm_hasher_new(unsigned int algorithm);
void dtm_hasher_free(struct dtm_hasher *hs);
/* @out gets hash_size bytes; 0 or -EIO (libcrypto failed). */
int dtm_hash(struct dtm_hasher *hs, const void *data, size_t len, unsigned char *out);
/*
 * A hash fed piece by piece (the copier's chunks): dtm_hash_begin, then
 * dtm_hash_feed any number of times, then dtm_hash_end.  Each 0 or -EIO.
 */
int dtm_hash_begin(struct dtm_hasher *hs);
int dtm_hash_feed(struct dtm_hasher *hs, const void *data, size_t len);
int dtm_hash_end(struct dtm_hasher *hs, unsigned char *out);
/* hash_size of an algorithm, or 0. */
unsigned int dtm_algorithm_size(unsigned int algorithm);
/* An inner node: H(0x01 || left || right). */
int dtm_hash_node(struct dtm_hasher *hs, const unsigned char *left,
		  const unsigned char *right, unsigned char *out);

/* ------------------------------------------------------------------ */
/* The manifest in memory                                              */
/* ------------------------------------------------------------------ */

/*
 * dtm_init - an empty manifest (all leaves zero, no tree yet) for
 * @data_bytes (a non-zero multiple of 512) in clusters of
 * @cluster_sectors.  0, -EINVAL or -ENOMEM.
 */
int dtm_init(struct dtm *m, unsigned int algorithm, uint32_t cluster_sectors,
	     uint64_t data_bytes);
void dtm_free(struct dtm *m);

static inline uint64_t dtm_cluster_bytes(const struct dtm *m)
{
	return (uint64_t)m->h.cluster_sectors << 9;
}

/* Bytes of cluster @c (the last one may be short). */
uint64_t dtm_cluster_len(const struct dtm *m, uint64_t c);

static inline unsigned char *dtm_leaf(const struct dtm *m, uint64_t c)
{
	return m->level[0] + c * m->h.hash_size;
}

/* Recompute every inner level and the root from the leaves. */
int dtm_build_tree(struct dtm *m, struct dtm_hasher *hs);

/*
 * dtm_update_tree - recompute the inner nodes above leaves
 * [first, first + nr) only, and the root.  The levels must have been
 * built once.  0 or -EIO.
 */
int dtm_update_tree(struct dtm *m, struct dtm_hasher *hs, uint64_t first, uint64_t nr);

/*
 * dtm_diff - call @fn with each cluster whose leaf differs between @a and
 * @b (same algorithm and geometry), ascending, visiting only subtrees
 * whose hashes differ.  Stops at and returns @fn's first non-zero value.
 */
typedef int (*dtm_cluster_fn)(void *ctx, uint64_t cluster);
int dtm_diff(const struct dtm *a, const struct dtm *b, dtm_cluster_fn fn, void *ctx);

/* ------------------------------------------------------------------ */
/* Serialized form                                                     */
/* ------------------------------------------------------------------ */

/* Size of the serialized manifest. */
static inline uint64_t dtm_file_size(const struct dtm_header *h)
{
	return DTM_HEADER_SIZE + h->clusters * h->hash_size;
}

/* The 512-byte header of @h, checksum included. */
void dtm_encode_header(const struct dtm_header *h, unsigned char out[DTM_HEADER_SIZE]);

/*
 * dtm_decode_header - check and decode a header.  Returns 0, or
 * -EBADMSG with *why saying what is wrong (bad magic, checksum, version,
 * unknown algorithm or flag, geometry out of range or inconsistent).
 */
int dtm_decode_header(const unsigned char *buf, size_t len, struct dtm_header *h,
		      const char **why);

/*
 * dtm_parse - the whole manifest from @len bytes: header, then exactly
 * clusters * hash_size bytes of leaves; rebuilds the tree and checks it
 * against the stored root.  0, -EBADMSG (*why set), -ENOMEM, -EIO.
 */
int dtm_parse(const unsigned char *buf, size_t len, struct dtm *m, const char **why);

/*
 * dtm_load - read and dtm_parse @path.  -errno for a file that cannot be
 * read (*why NULL), -EBADMSG with *why for one that is not a good
 * manifest.
 */
int dtm_load(const char *path, struct dtm *m, const char **why);

/*
 * dtm_save - replace @path with @m durably: @path.tmp is written, fsynced
 * and renamed over @path, then the directory is fsynced.  A crash leaves
 * the old file or the new one.  0 or -errno (*what names the step).
 */
int dtm_save(const struct dtm *m, const char *path, const char **what);

/*
 * dtm_mark_stale - set the stale flag in @path's header in place and
 * fsync: from now on the manifest is not trusted until replaced.  A torn
 * header fails its checksum, which is not trusted either.  A file that
 * does not exist is fine (nothing to distrust).  0 or -errno.
 */
int dtm_mark_stale(const char *path);

/* ------------------------------------------------------------------ */
/* Leaves file: cluster hashes made while copying                      */
/* ------------------------------------------------------------------ */

/*
 * dt-copy-extents --hash-to writes the hashes of the clusters it copied
 * into a leaves file (Documentation/manifest.md, "Leaves file"); the
 * manifest update takes them instead of rereading the image.  The file
 * is checked whole (trailer, checksum, every run) before one leaf of it
 * is used: a truncated or damaged file is refused.
 */
#define DTM_LEAVES_MAGIC	"DTLEAVS"	/* header, 7 characters and a NUL */
#define DTM_LEAVES_END_MAGIC	"DTLVEND"	/* trailer */
#define DTM_LEAVES_VERSION	1
#define DTM_LEAVES_HEADER	16
#define DTM_LEAVES_RUN_HEADER	16
#define DTM_LEAVES_TRAILER	64
#define DTM_LEAVES_MAX_RUN	4096		/* hashes per run */

struct dtm_leaves_info {
	unsigned int algorithm;
	unsigned int hash_size;
	uint32_t cluster_sectors;
	uint64_t data_bytes;
	uint64_t clusters;
	uint64_t runs;
	uint64_t records;		/* hashes in all runs */
};

/*
 * dtm_leaves_check - check a whole leaves file of @len bytes: header,
 * trailer, checksum, geometry, and runs that fill the space between
 * exactly, within the clusters.  0 and @li filled, or -EBADMSG with *why.
 */
int dtm_leaves_check(const unsigned char *buf, size_t len, struct dtm_leaves_info *li,
		     const char **why);

/*
 * dtm_leaves_walk - call @fn with each run of a file that passed
 * dtm_leaves_check, in file order (a cluster may appear again: the later
 * hash is the one that holds).  Stops at @fn's first non-zero value.
 */
typedef int (*dtm_run_fn)(void *ctx, uint64_t first, uint64_t count,
			  const unsigned char *hashes);
int dtm_leaves_walk(const unsigned char *buf, size_t len, dtm_run_fn fn, void *ctx);

/* Reads a whole file into *buf (malloc'd).  0 or -errno. */
int dtm_read_file(const char *path, uint64_t max, unsigned char **buf, size_t *len);

/* Writing one, run by run; consecutive clusters share a run. */
struct dtm_leaves_out {
	int fd;
	unsigned int algorithm, hash_size;
	uint32_t cluster_sectors;
	uint32_t crc;
	uint64_t runs, records;
	uint64_t run_first, run_count;
	unsigned char *run;		/* run header and up to MAX_RUN hashes */
};

/* Creates (truncates) @path, mode 0600.  0 or -errno. */
int dtm_leaves_create(struct dtm_leaves_out *lo, const char *path, unsigned int algorithm,
		      uint32_t cluster_sectors);
int dtm_leaves_add(struct dtm_leaves_out *lo, uint64_t cluster, const unsigned char *hash);
/* The last run and the trailer for @data_bytes of data; closes.  0 or -errno. */
int dtm_leaves_finish(struct dtm_leaves_out *lo, uint64_t data_bytes);
/* Closes without a trailer (an unfinished file is refused by its reader). */
void dtm_leaves_abort(struct dtm_leaves_out *lo);

/* "xxxxxxxx-xxxx-..." (dashes optional) into 16 bytes; 0 or -EINVAL. */
int dtm_parse_uuid(const char *s, unsigned char uuid[16]);
void dtm_format_uuid(const unsigned char uuid[16], char out[37]);

/* Lowercase hex of @len bytes into @out (2 * len + 1 bytes). */
void dtm_hex(const unsigned char *p, size_t len, char *out);

#endif
