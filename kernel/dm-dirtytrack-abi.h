/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/*
 * dm-dirtytrack: everything the kernel target and userspace must agree on.
 *
 * This one header is included by the kernel module (kernel/) and by
 * dirtyctl (userspace/).  It defines the on-disk metadata format, its
 * validator, the geometry arithmetic, the message vocabulary and the
 * reply format of the paged bitmap read.  Nothing here is defined twice.
 *
 * On-disk layout (all integers little-endian, blocks of 4096 bytes):
 *
 *   block 0                       superblock (struct dt_disk_superblock,
 *                                 512 bytes, rest of the block zero)
 *   block 1 ..                    live bitmap, bitmap_blocks blocks
 *   block 1 + bitmap_blocks ..    frozen bitmap, bitmap_blocks blocks
 *
 * Bitmaps: cluster c is bit (c % 8) of byte (c / 8), least significant
 * bit first.  Bits at and beyond nr_clusters are zero.  The whole
 * description, byte by byte, is in Documentation/dm-dirtytrack.rst.
 */
#ifndef DM_DIRTYTRACK_ABI_H
#define DM_DIRTYTRACK_ABI_H

#include <linux/types.h>

#ifdef __KERNEL__
#include <asm/byteorder.h>
#define DT_LE32(x) le32_to_cpu(x)
#define DT_LE64(x) le64_to_cpu(x)
#else
#include <endian.h>
#include <stddef.h>
#define DT_LE32(x) le32toh(x)
#define DT_LE64(x) le64toh(x)
#endif

/* ------------------------------------------------------------------ */
/* On-disk format                                                      */
/* ------------------------------------------------------------------ */

#define DT_SB_MAGIC		0x4b525444U	/* "DTRK" as little-endian bytes */
#define DT_SB_VERSION		1U
#define DT_BLOCK_SIZE		4096U		/* metadata block, bytes */
#define DT_BLOCK_SECTORS	(DT_BLOCK_SIZE >> 9)
#define DT_SB_SIZE		512U		/* checksummed bytes of block 0 */
#define DT_UUID_SIZE		16U
#define DT_BITS_PER_BLOCK	(DT_BLOCK_SIZE * 8ULL)

#define DT_MIN_CLUSTER_SECTORS	8U		/* 4 KiB */
#define DT_MAX_CLUSTER_SECTORS	(1U << 21)	/* 1 GiB */

/* Superblock flags. */
#define DT_SB_FLAG_VALID	(1U << 0) /* stored bitmaps are exact */
#define DT_SB_FLAG_FROZEN	(1U << 1) /* a frozen (checkpointed) set exists */
#define DT_SB_FLAG_UNCLEAN	(1U << 2) /* all-dirty since an unclean shutdown,
					   * until the next clear or commit */
#define DT_SB_FLAG_METADATA_ERROR (1U << 3) /* last activation saw metadata I/O errors */
#define DT_SB_FLAGS_KNOWN	(DT_SB_FLAG_VALID | DT_SB_FLAG_FROZEN | \
				 DT_SB_FLAG_UNCLEAN | DT_SB_FLAG_METADATA_ERROR)

struct dt_disk_superblock {
	__le32 csum;		/*   0: CRC-32C of bytes 4..511 */
	__le32 magic;		/*   4: DT_SB_MAGIC */
	__le32 version;		/*   8: DT_SB_VERSION */
	__le32 flags;		/*  12: DT_SB_FLAG_* */
	__u8   uuid[DT_UUID_SIZE]; /* 16: random, written at format */
	__le64 sequence;	/*  32: grows with every clear and commit */
	__le64 generation;	/*  40: grows with every superblock write */
	__le64 data_sectors;	/*  48: length of the tracked device */
	__le32 cluster_sectors;	/*  56: tracking granularity */
	__le32 block_size;	/*  60: DT_BLOCK_SIZE */
	__le64 nr_clusters;	/*  64: ceil(data_sectors / cluster_sectors) */
	__le64 bitmap_blocks;	/*  72: blocks per bitmap */
	__le64 live_block;	/*  80: first block of the live bitmap (1) */
	__le64 frozen_block;	/*  88: first block of the frozen bitmap */
	__le64 dirty_clusters;	/*  96: bits set in the live bitmap */
	__le64 frozen_clusters;	/* 104: bits set in the frozen bitmap */
	__le64 frozen_sequence;	/* 112: sequence when the frozen set was taken */
	__le64 frozen_id;	/* 120: identity of the frozen set: nonzero
				 * with DT_SB_FLAG_FROZEN, zero without */
	__u8   reserved[DT_SB_SIZE - 128]; /* 128: zero */
} __attribute__((packed));

/* ------------------------------------------------------------------ */
/* Geometry                                                            */
/* ------------------------------------------------------------------ */

static inline int dt_cluster_sectors_valid(__u64 cs)
{
	return cs >= DT_MIN_CLUSTER_SECTORS && cs <= DT_MAX_CLUSTER_SECTORS &&
	       (cs & (cs - 1)) == 0;
}

static inline __u64 dt_nr_clusters(__u64 data_sectors, __u32 cluster_sectors)
{
	return (data_sectors + cluster_sectors - 1) / cluster_sectors;
}

static inline __u64 dt_bitmap_blocks(__u64 nr_clusters)
{
	return (nr_clusters + DT_BITS_PER_BLOCK - 1) / DT_BITS_PER_BLOCK;
}

/* Smallest metadata device, in 512-byte sectors, for nr_clusters. */
static inline __u64 dt_metadata_min_sectors(__u64 nr_clusters)
{
	return (1 + 2 * dt_bitmap_blocks(nr_clusters)) * DT_BLOCK_SECTORS;
}

/* True when all @len bytes at @p are zero: an unformatted device. */
static inline int dt_all_zero(const void *p, unsigned long len)
{
	const unsigned char *c = (const unsigned char *)p;
	unsigned long i;

	for (i = 0; i < len; i++)
		if (c[i])
			return 0;
	return 1;
}

/*
 * dt_sb_validate - check a superblock read from a device of @md_sectors.
 * @csum is the CRC-32C the caller computed over bytes 4..511 (the kernel
 * and userspace compute it with their own crc32c; see dt_sb_csum users).
 *
 * Returns NULL when the superblock is sound, else a sentence naming the
 * first problem found.  Pure function: no I/O, no allocation.
 */
static inline const char *dt_sb_validate(const struct dt_disk_superblock *sb,
					 __u32 csum, __u64 md_sectors)
{
	__u64 data_sectors = DT_LE64(sb->data_sectors);
	__u32 cs = DT_LE32(sb->cluster_sectors);
	__u64 nr = DT_LE64(sb->nr_clusters);
	__u64 bb = DT_LE64(sb->bitmap_blocks);
	unsigned int i;

	if (DT_LE32(sb->magic) != DT_SB_MAGIC)
		return "bad magic: not a dirtytrack superblock";
	if (DT_LE32(sb->csum) != csum)
		return "bad checksum";
	if (DT_LE32(sb->version) != DT_SB_VERSION)
		return "unknown format version";
	if (DT_LE32(sb->flags) & ~DT_SB_FLAGS_KNOWN)
		return "unknown flags";
	if (DT_LE32(sb->block_size) != DT_BLOCK_SIZE)
		return "bad block size";
	if (!dt_cluster_sectors_valid(cs))
		return "bad cluster size";
	if (data_sectors == 0 || data_sectors > (1ULL << 56))
		return "bad data size";
	if (nr != dt_nr_clusters(data_sectors, cs))
		return "cluster count does not match the data size";
	if (bb != dt_bitmap_blocks(nr))
		return "bitmap size does not match the cluster count";
	if (DT_LE64(sb->live_block) != 1 || DT_LE64(sb->frozen_block) != 1 + bb)
		return "bad bitmap location";
	if (md_sectors < dt_metadata_min_sectors(nr))
		return "metadata device smaller than its bitmaps";
	if (DT_LE64(sb->dirty_clusters) > nr || DT_LE64(sb->frozen_clusters) > nr)
		return "bad dirty cluster count";
	/* FROZEN without an id: stored before frozen sets had identities. */
	if (!(DT_LE32(sb->flags) & DT_SB_FLAG_FROZEN) && DT_LE64(sb->frozen_id))
		return "frozen set identity without a frozen set";
	for (i = 0; i < sizeof(sb->reserved); i++)
		if (sb->reserved[i])
			return "reserved bytes not zero";
	return (const char *)0;
}

/* ------------------------------------------------------------------ */
/* Status line (dmsetup status)                                        */
/* ------------------------------------------------------------------ */
/*
 *   <cluster_sectors> <clusters> <dirty_clusters> <frozen_clusters|->
 *   <mode> <health> <uuid> <sequence> <frozen_id|->
 * uuid as lowercase 8-4-4-4-12 hex (its bytes in order), frozen_id as 16
 * lowercase hex digits ('-' when nothing is frozen), numbers decimal.
 * DT_STATUS_FIELDS is the number of fields a reader needs (the first
 * eight); the ninth, frozen_id, exists since the frozen set identity.
 * Readers ignore fields past those they know: later versions may add some.
 */
#define DT_STATUS_FIELDS	8
#define DT_FROZEN_ID_DIGITS	16
#define DT_MODE_DEFAULT		"default"
#define DT_MODE_CRASH_SAFE	"crash_safe"
#define DT_HEALTH_OK		"ok"
#define DT_HEALTH_UNCLEAN	"unclean_shutdown"
#define DT_HEALTH_METADATA_ERROR "metadata_error"
#define DT_FEATURE_CRASH_SAFE	"crash_safe"
#define DT_FEATURE_AVAILABILITY	"availability"

/* ------------------------------------------------------------------ */
/* Messages (dmsetup message DEV 0 ...)                                */
/* ------------------------------------------------------------------ */
/*
 * State-changing messages return no data:
 *   clear                       empty the live set; sequence + 1
 *   checkpoint                  live set becomes the frozen set, new empty
 *                               live set; -EEXIST if one is frozen already.
 *                               Replies with the frozen set's identity,
 *                               16 lowercase hex digits (status field 9)
 *   commit [<frozen_id>]        drop the frozen set; sequence + 1;
 *                               -ENOENT if none
 *   rollback [<frozen_id>]      merge the frozen set into the live set;
 *                               -ENOENT if none
 *   mark <start> <nr_sectors>   mark the clusters of a sector extent
 *                               (target-relative) dirty; -ERANGE beyond
 *                               the end
 * With <frozen_id> (16 hex digits), commit and rollback refuse with
 * -ESTALE when the frozen set has another identity, changing nothing.
 * All return -EBUSY while the target does not own its metadata
 * (suspended, or a resume failed), -EINVAL on malformed arguments, and
 * -EIO when a metadata write they need failed (see the documentation for
 * the state each leaves behind).
 *
 * The one data-returning message is read-only, hence safe to repeat:
 *   bitmap <live|frozen> <first_group>
 * A group is 8 bytes (64 clusters) of the bitmap.  The reply is
 *   <epoch> <first_group> <nr_groups> <payload>
 * (the three numbers in decimal, each followed by one space, also when the
 * payload is empty) where <epoch> (up to 64 bits) changes whenever the sets
 * are swapped, cleared or merged, and across a table reload or a resume
 * (a reader that sees it change between pages must start again), and
 * <payload> encodes nr_groups groups, as many as fit in the reply buffer:
 *   16 lowercase hex digits   one group, its 8 bytes in ascending order
 *   z<hex>.                   that many all-zero groups (lowercase hex)
 *   <G..N><k positions>       one group with k = 1..8 bits set: the letter
 *                             'G' + k - 1, then the positions (0..63, bit
 *                             p of the group is cluster 64 * g + p) in
 *                             ascending order, one base64url digit each
 *                             (RFC 4648: A-Z 0-25, a-z 26-51, 0-9 52-61,
 *                             '-' 62, '_' 63)
 * A reader accepts either form for any nonzero group; the target writes a
 * group with at most DT_SPARSE_MAX bits as positions, which at 1% dirty is
 * about 4 times shorter than hex.
 * nr_groups == 0 means first_group is at or past the end.  Asking for the
 * frozen set when there is none fails with -ENOENT.
 */
#define DT_MSG_CLEAR		"clear"
#define DT_MSG_CHECKPOINT	"checkpoint"
#define DT_MSG_COMMIT		"commit"
#define DT_MSG_ROLLBACK		"rollback"
#define DT_MSG_MARK		"mark"
#define DT_MSG_BITMAP		"bitmap"
#define DT_SET_LIVE		"live"
#define DT_SET_FROZEN		"frozen"
#define DT_GROUP_BYTES		8U
#define DT_GROUP_CLUSTERS	(DT_GROUP_BYTES * 8U)
#define DT_ZERO_RUN		'z'
#define DT_ZERO_RUN_END		'.'
#define DT_SPARSE_MARK		'G'	/* 'G' + k - 1: k positions follow */
#define DT_SPARSE_MAX		8U
#define DT_POS_DIGITS \
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

/* ------------------------------------------------------------------ */
/* Snapshot store                                                      */
/* ------------------------------------------------------------------ */
/*
 * Table feature "snapshot_store <dev>" (two feature arguments).  Status
 * fields 10-12, after field 9 <frozen_id>:
 *   <snapshot> <store_used_sectors> <store_sectors>
 * snapshot is "-" without a store, else one of the DT_SNAPSHOT_* words;
 * the two numbers are "-" without a store.
 * Message "release <start_sector> <nr_sectors>" (target-relative): the
 * whole clusters inside need no more preserving; -ENOENT without a
 * snapshot, -ERANGE beyond the end.
 * The view: "<start> <length> dirtytrack-view <dirtytrack_dev>", loaded
 * read-only; sector n of it is target-relative sector n as of the
 * checkpoint (meaningful for frozen, unreleased clusters only).
 */
#define DT_FEATURE_SNAPSHOT_STORE	"snapshot_store"
#define DT_MSG_RELEASE			"release"
#define DT_VIEW_TARGET_NAME		"dirtytrack-view"
#define DT_SNAPSHOT_NONE		"-"
#define DT_SNAPSHOT_IDLE		"idle"
#define DT_SNAPSHOT_ACTIVE		"active"
#define DT_SNAPSHOT_INVALID		"invalid"
#define DT_STATUS_FIELD_SNAPSHOT	10	/* 1-based, of the target's fields */

#endif /* DM_DIRTYTRACK_ABI_H */
