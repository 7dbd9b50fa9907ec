// SPDX-License-Identifier: GPL-2.0-only OR MIT
/*
 * dt-logcheck: crash-consistency checker for dm-dirtytrack's crash_safe mode.
 *
 *   dt-logcheck replay [options] LOG
 *   dt-logcheck image --md FILE --data FILE [--ref FILE] [options]
 *
 * "replay" reads a dm-log-writes log (drivers/md/dm-log-writes.c) of a
 * device that holds the metadata and the data of one dirtytrack target as
 * two slices, replays its entries in order onto an in-memory copy of the
 * device's initial content and, after every entry, checks the invariant
 * of crash_safe mode against the state a crash right there would leave:
 *
 *   every data sector whose content differs from the last backup lies in
 *   a cluster that the replayed metadata marks dirty (live, or frozen
 *   while the superblock says a frozen set is stored).
 *
 * "The last backup" is the reference image: the initial content for the
 * sequence number of the first superblock, and for every later sequence
 * the data as replayed at the last mark named "ref..." logged before the
 * superblock that carries that sequence (the workload logs such a mark
 * right after each checkpoint, whose commit takes the next sequence, and
 * right before each clear of a quiesced device).  A second, stronger
 * invariant is checked as well: every cluster written at all since that
 * mark is marked.  Discarded sectors have no defined content: they count
 * as changed until the reference has the same discard.
 *
 * The points of a dm-log-writes log where a crash image is well defined
 * are the entries with FLUSH or FUA (everything before them is durable);
 * they are counted apart.  Every other entry boundary is checked too: a
 * prefix of a flush group is the crash image where only some of the
 * unflushed writes reached the disk.
 *
 * With --final the replay must end equal to the device as the guest left
 * it (a check of the replayer itself; sectors whose content is undefined,
 * discarded or written in an order the log cannot tell, are left out).
 *
 * --grown-from SECTORS: the target was created shorter (SECTORS) and grown
 * to the data slice during the run.  A superblock of the old size is then
 * read as the grown table would load it: its bitmaps hold the old
 * clusters, every cluster that holds a sector past SECTORS is dirty.
 *
 * Two negative controls must find violations in the same log:
 * --drop-bitmap-writes ignores every write to the bitmap blocks;
 * --delay-metadata N moves every metadata write past the N entries logged
 * after it (N = 1: a data write is checked before the bitmap write that the
 * target made durable just before issuing it).
 *
 * What a dm-log-writes log cannot show: it logs a plain (non-FUA) write only
 * at the next flush, so a plain data write that reached the disk before its
 * bitmap block would still be logged after it.  The workload therefore
 * also issues O_DSYNC (FUA) data writes, which are logged as they complete.
 *
 * "image" checks the same invariant once, on a metadata and a data image
 * left by a crash, against a reference image (zeros without --ref), and can
 * write the clusters that must be marked and the clusters that are marked,
 * one index per line.
 *
 * Exit status: 0 the invariant holds everywhere, 1 a violation (each is
 * described on stdout), 2 usage, I/O or log format error, or a replay
 * that does not reproduce --final.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../kernel/dm-dirtytrack-abi.h"
#include "../../userspace/crc32c.h"

#define SECTOR 512U

/* dm-log-writes on-disk format (drivers/md/dm-log-writes.c). */
#define LW_MAGIC		0x6a736677736872ULL
#define LW_VERSION		1ULL
#define LW_FLUSH		(1U << 0)
#define LW_FUA			(1U << 1)
#define LW_DISCARD		(1U << 2)
#define LW_MARK			(1U << 3)
#define LW_METADATA		(1U << 4)

struct lw_super {
	uint64_t magic;
	uint64_t version;
	uint64_t nr_entries;
	uint32_t sectorsize;
} __attribute__((packed));

struct lw_entry {
	uint64_t sector;
	uint64_t nr_sectors;
	uint64_t flags;
	uint64_t data_len;
} __attribute__((packed));

static const char *prog = "dt-logcheck";

static __attribute__((noreturn, format(printf, 1, 2))) void fatal(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static void *xmap(size_t len)
{
	void *p = mmap(NULL, len ? len : 1, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		fatal("cannot allocate %zu bytes", len);
	return p;
}

/* Map FILE read-only; its size in *len. */
static const uint8_t *map_file(const char *path, size_t *len)
{
	struct stat st;
	void *p;
	int fd = open(path, O_RDONLY);

	if (fd < 0 || fstat(fd, &st))
		fatal("%s: %s", path, strerror(errno));
	*len = st.st_size;
	if (!*len) {
		close(fd);
		return xmap(0);
	}
	p = mmap(NULL, *len, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED)
		fatal("%s: mmap: %s", path, strerror(errno));
	close(fd);
	return p;
}

static bool all_zero(const uint8_t *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

static bool test_bit_le(const uint8_t *bits, uint64_t c)
{
	return bits[c / 8] & (1U << (c % 8));
}

/* ------------------------------------------------------------------ */
/* The metadata as a crash would leave it                              */
/* ------------------------------------------------------------------ */

enum md_state {
	MD_UNFORMATTED,	/* first 4 KiB zero: nothing tracked */
	MD_CORRUPT,	/* a superblock the target would refuse */
	MD_INVALID,	/* valid flag clear: the target loads all dirty */
	MD_VALID,	/* bitmaps trusted: live, and frozen if FROZEN */
};

struct md_view {
	enum md_state state;
	const char *error;
	bool grown;	/* the superblock is of the --grown-from geometry */
	uint32_t flags;
	uint64_t sequence;
	uint64_t generation;
	uint8_t uuid[DT_UUID_SIZE];
	uint64_t live_set, frozen_set;	/* bits set in each stored bitmap */
};

/*
 * --grown-from: the data device had this many sectors before a growth
 * logged in the same run.  A superblock of that size is what the target
 * would load into the grown table: its bitmaps are the prefix, and every
 * cluster from the first one holding a new sector on is dirty.
 */
static uint64_t grown_from;

/*
 * Read the superblock and bitmaps of a metadata area of @md_sectors at
 * @md, for a data device of @data_sectors tracked at @cs.  Fills @covered
 * (one byte per cluster) with what the target would load as dirty.
 */
static void md_evaluate(const uint8_t *md, uint64_t md_sectors,
			uint64_t data_sectors, uint32_t cs, uint64_t nclusters,
			uint8_t *covered, struct md_view *v)
{
	const struct dt_disk_superblock *sb = (const void *)md;
	uint64_t c, live_off, frozen_off;
	const uint8_t *live, *frozen;

	memset(v, 0, sizeof(*v));
	if (md_sectors * SECTOR < DT_BLOCK_SIZE || all_zero(md, DT_BLOCK_SIZE)) {
		v->state = MD_UNFORMATTED;
		memset(covered, 0, nclusters);
		return;
	}
	v->error = dt_sb_validate(sb, dt_crc32c(md + 4, DT_SB_SIZE - 4),
				  md_sectors);
	if (!v->error && !all_zero(md + DT_SB_SIZE, DT_BLOCK_SIZE - DT_SB_SIZE))
		v->error = "superblock block not zero after 512 bytes";
	if (!v->error && grown_from && grown_from < data_sectors &&
	    le64toh(sb->data_sectors) == grown_from &&
	    le32toh(sb->cluster_sectors) == cs)
		v->grown = true;
	if (!v->error && !v->grown &&
	    (le64toh(sb->data_sectors) != data_sectors ||
	     le32toh(sb->cluster_sectors) != cs))
		v->error = "superblock geometry differs from the data slice";
	if (v->error) {
		v->state = MD_CORRUPT;
		memset(covered, 0, nclusters);
		return;
	}
	v->flags = le32toh(sb->flags);
	v->sequence = le64toh(sb->sequence);
	v->generation = le64toh(sb->generation);
	memcpy(v->uuid, sb->uuid, DT_UUID_SIZE);
	if (!(v->flags & DT_SB_FLAG_VALID)) {
		v->state = MD_INVALID;
		memset(covered, 1, nclusters);
		return;
	}
	v->state = MD_VALID;
	live_off = le64toh(sb->live_block) * DT_BLOCK_SIZE;
	frozen_off = le64toh(sb->frozen_block) * DT_BLOCK_SIZE;
	live = md + live_off;
	frozen = md + frozen_off;
	for (c = 0; c < nclusters; c++) {
		bool l, f;

		if (v->grown && c >= grown_from / cs) {
			covered[c] = 1;	/* new to the device: dirty */
			continue;
		}
		l = test_bit_le(live, c);
		f = (v->flags & DT_SB_FLAG_FROZEN) && test_bit_le(frozen, c);
		v->live_set += l;
		v->frozen_set += f;
		covered[c] = l || f;
	}
}

static const char *md_state_name(enum md_state s)
{
	switch (s) {
	case MD_UNFORMATTED:
		return "unformatted";
	case MD_CORRUPT:
		return "corrupt";
	case MD_INVALID:
		return "valid-flag-clear";
	default:
		return "valid";
	}
}

/* ------------------------------------------------------------------ */
/* replay                                                              */
/* ------------------------------------------------------------------ */

struct replay {
	/* geometry, in 512-byte sectors of the logged device */
	uint64_t dev_sectors, md_start, md_len, data_start, data_len;
	uint32_t cs;
	uint64_t nclusters;
	bool drop_bitmap_writes;
	uint64_t delay_md;	/* apply metadata writes this many entries late */
	uint64_t trace_sector;	/* --trace-sector + 1, or 0 */
	const char *ref_prefix;
	int verbose;

	/* the device as replayed so far */
	uint8_t *img;
	uint32_t *disc;		/* per sector: 0, or the discard that left it */
	uint32_t nr_discards;
	/*
	 * The log does not always give the order in which writes to one
	 * sector reached the disk: dm-log-writes logs a plain write at the
	 * next flush and a FUA write as it completes (a plain write may be
	 * logged after a later FUA one), and writes in flight together land
	 * in any order.  Per sector, the last two writes (their data in the
	 * log, NULL for a discard) and the flush interval each was logged in:
	 * the --final check accepts the older one when both are that close.
	 */
	const uint8_t **last_data, **prev_data;
	uint32_t *last_epoch, *prev_epoch;
	uint32_t flush_epoch;

	/* the reference ("last backup") and the candidate from the last mark */
	uint8_t *ref_img, *cand_img;
	uint32_t *ref_disc, *cand_disc;
	char ref_name[256], cand_name[256];
	bool cand_valid;
	bool bound;		/* a superblock fixed the reference's sequence */
	uint64_t bound_seq;
	uint8_t uuid[DT_UUID_SIZE];

	/* per cluster */
	uint32_t *diffcnt;	/* sectors differing from the reference */
	uint8_t *wr_ref;	/* written since the reference mark */
	uint8_t *wr_cand;	/* written since the candidate mark */
	uint8_t *covered;	/* marked by the replayed metadata */
	uint8_t *ever_violated;
	uint64_t *last_writer;	/* last entry that wrote the cluster (+1) */
	uint64_t nviol;		/* clusters differing and not covered */
	uint64_t nviolw;	/* clusters written and not covered */
	uint64_t ndiffc;	/* clusters with diffcnt != 0 */
	struct md_view md;

	/* counts */
	uint64_t entry;		/* index of the entry being replayed */
	uint64_t points_all, points_flush;
	uint64_t viol_points_all, viol_points_flush;
	uint64_t viol_clusters, reports;
	uint64_t n_write_md, n_write_data, n_write_other, n_discard;
	uint64_t n_flush, n_fua, n_mark, n_ref_marks, n_rebinds;
	uint64_t pts_unformatted, pts_corrupt, pts_invalid, pts_valid, pts_frozen;
	uint64_t pts_grown_valid, pts_grown_invalid;
	uint64_t bytes_data;
	uint64_t max_diff_clusters;
	uint64_t seq_first, seq_last;
	char corrupt_first[256];
};

/* A metadata write held back by --delay-metadata. */
struct md_delayed {
	uint64_t due, sector, nr;
	const uint8_t *data;
	bool fua;
};

static inline bool sector_differs(const struct replay *r, uint64_t k)
{
	if (r->disc[r->data_start + k] != r->ref_disc[k])
		return true;
	if (r->ref_disc[k])
		return false;
	return memcmp(r->img + (r->data_start + k) * SECTOR,
		      r->ref_img + k * SECTOR, SECTOR) != 0;
}

static void recount_violations(struct replay *r)
{
	uint64_t c;

	r->nviol = r->nviolw = 0;
	for (c = 0; c < r->nclusters; c++) {
		if (r->covered[c])
			continue;
		r->nviol += r->diffcnt[c] != 0;
		r->nviolw += r->wr_ref[c];
	}
}

static void recount_diff(struct replay *r)
{
	uint64_t k;

	memset(r->diffcnt, 0, r->nclusters * sizeof(*r->diffcnt));
	r->ndiffc = 0;
	for (k = 0; k < r->data_len; k++)
		if (sector_differs(r, k) && r->diffcnt[k / r->cs]++ == 0)
			r->ndiffc++;
}

static void mark_written(struct replay *r, uint64_t c)
{
	if (!r->wr_ref[c]) {
		r->wr_ref[c] = 1;
		if (!r->covered[c])
			r->nviolw++;
	}
	r->wr_cand[c] = 1;
	r->last_writer[c] = r->entry + 1;
}

/* Sector @k of the data slice changes: keep diffcnt and nviol current. */
static void data_sector_update(struct replay *r, uint64_t k, bool was)
{
	bool now = sector_differs(r, k);
	uint64_t c = k / r->cs;

	if (was == now)
		return;
	if (now) {
		if (r->diffcnt[c]++ == 0) {
			r->ndiffc++;
			r->nviol += !r->covered[c];
		}
	} else {
		if (--r->diffcnt[c] == 0) {
			r->ndiffc--;
			r->nviol -= !r->covered[c];
		}
	}
}

static bool in_bitmap_blocks(const struct replay *r, uint64_t dev_sector)
{
	return dev_sector >= r->md_start + DT_BLOCK_SECTORS &&
	       dev_sector < r->md_start + r->md_len;
}

/*
 * Apply one write (@data non-NULL) or discard of @n sectors at device
 * sector @s.  Returns true when it touched the metadata slice.
 */
static bool apply(struct replay *r, uint64_t s, uint64_t n, const uint8_t *data,
		  bool fua)
{
	bool md = false, dat = false, other = false;
	uint32_t id = 0;
	uint64_t i;

	if (s > r->dev_sectors || n > r->dev_sectors - s)
		fatal("entry %" PRIu64 ": sectors %" PRIu64 "+%" PRIu64
		      " beyond the device (%" PRIu64 " sectors)",
		      r->entry, s, n, r->dev_sectors);
	if (!data)
		id = ++r->nr_discards;
	if (r->trace_sector && r->trace_sector - 1 >= s && r->trace_sector - 1 < s + n)
		printf("trace: entry %" PRIu64 " %s sectors %" PRIu64 "+%" PRIu64
		       "%s, sector %" PRIu64 " crc32c %08x\n", r->entry,
		       data ? "writes" : "discards", s, n, fua ? " FUA" : "",
		       r->trace_sector - 1,
		       data ? dt_crc32c(data + (r->trace_sector - 1 - s) * SECTOR, SECTOR) : 0);
	for (i = 0; i < n; i++) {
		uint64_t d = s + i;
		bool in_data = d >= r->data_start && d < r->data_start + r->data_len;
		bool was = false;

		if (d >= r->md_start && d < r->md_start + r->md_len) {
			md = true;
			if (r->drop_bitmap_writes && in_bitmap_blocks(r, d))
				continue;
		} else if (in_data) {
			dat = true;
			was = sector_differs(r, d - r->data_start);
		} else {
			other = true;
		}
		r->prev_data[d] = r->last_data[d];
		r->prev_epoch[d] = r->last_epoch[d];
		r->last_data[d] = data ? data + i * SECTOR : NULL;
		r->last_epoch[d] = r->flush_epoch;
		if (data) {
			memcpy(r->img + d * SECTOR, data + i * SECTOR, SECTOR);
			r->disc[d] = 0;
		} else {
			memset(r->img + d * SECTOR, 0, SECTOR);
			r->disc[d] = id;
		}
		if (in_data) {
			uint64_t k = d - r->data_start;

			data_sector_update(r, k, was);
			if (k % r->cs == 0 || i == 0)
				mark_written(r, k / r->cs);
		}
	}
	if (md)
		r->n_write_md++;
	if (dat) {
		r->n_write_data++;
		r->bytes_data += n * SECTOR;
	}
	if (other)
		r->n_write_other++;
	return md;
}

static void uuid_str(const uint8_t *u, char *out)
{
	unsigned int i;
	char *p = out;

	for (i = 0; i < DT_UUID_SIZE; i++) {
		p += sprintf(p, "%02x", u[i]);
		if (i == 3 || i == 5 || i == 7 || i == 9)
			*p++ = '-';
	}
	*p = 0;
}

/* The metadata slice changed: re-read it as a crash would leave it. */
static void md_changed(struct replay *r)
{
	struct md_view *v = &r->md;

	md_evaluate(r->img + r->md_start * SECTOR, r->md_len, r->data_len,
		    r->cs, r->nclusters, r->covered, v);
	if (v->state == MD_VALID || v->state == MD_INVALID) {
		if (!r->bound) {
			/* The first superblock: the initial image is its backup. */
			r->bound = true;
			r->bound_seq = r->seq_first = r->seq_last = v->sequence;
			memcpy(r->uuid, v->uuid, DT_UUID_SIZE);
			snprintf(r->ref_name, sizeof(r->ref_name), "initial image");
		} else if (memcmp(r->uuid, v->uuid, DT_UUID_SIZE)) {
			char a[40], b[40];

			uuid_str(r->uuid, a);
			uuid_str(v->uuid, b);
			fatal("entry %" PRIu64 ": superblock uuid changed from %s to %s",
			      r->entry, a, b);
		} else if (v->sequence != r->bound_seq) {
			if (v->sequence != r->bound_seq + 1)
				fatal("entry %" PRIu64 ": sequence went from %" PRIu64
				      " to %" PRIu64 " (expected one step)", r->entry,
				      r->bound_seq, v->sequence);
			if (!r->cand_valid)
				fatal("entry %" PRIu64 ": sequence %" PRIu64
				      " without a '%s' mark before it", r->entry,
				      v->sequence, r->ref_prefix);
			/* A commit or clear: the backup is the data at the mark. */
			memcpy(r->ref_img, r->cand_img, r->data_len * SECTOR);
			memcpy(r->ref_disc, r->cand_disc, r->data_len * sizeof(uint32_t));
			memcpy(r->wr_ref, r->wr_cand, r->nclusters);
			memcpy(r->ref_name, r->cand_name, sizeof(r->ref_name));
			r->cand_valid = false;
			r->bound_seq = r->seq_last = v->sequence;
			r->n_rebinds++;
			recount_diff(r);
			if (r->verbose)
				printf("entry %" PRIu64 ": sequence %" PRIu64
				       ", reference is now mark '%s'\n", r->entry,
				       v->sequence, r->ref_name);
		}
	}
	recount_violations(r);
}

static void on_mark(struct replay *r, const char *name)
{
	r->n_mark++;
	if (r->verbose)
		printf("entry %" PRIu64 ": mark '%s'\n", r->entry, name);
	if (strncmp(name, r->ref_prefix, strlen(r->ref_prefix)))
		return;
	memcpy(r->cand_img, r->img + r->data_start * SECTOR, r->data_len * SECTOR);
	memcpy(r->cand_disc, r->disc + r->data_start, r->data_len * sizeof(uint32_t));
	memset(r->wr_cand, 0, r->nclusters);
	snprintf(r->cand_name, sizeof(r->cand_name), "%s", name);
	r->cand_valid = true;
	r->n_ref_marks++;
}

static void flags_str(uint64_t f, char *out)
{
	static const char *const names[] = { "FLUSH", "FUA", "DISCARD", "MARK", "METADATA" };
	unsigned int i;

	*out = 0;
	for (i = 0; i < 5; i++)
		if (f & (1ULL << i))
			sprintf(out + strlen(out), "%s%s", *out ? "|" : "", names[i]);
	if (!*out)
		strcpy(out, "-");
}

static void report_violation(struct replay *r, const struct lw_entry *e,
			     bool flush_point)
{
	char fl[64];
	uint64_t c, k;
	int shown = 0;

	flags_str(e->flags, fl);
	printf("VIOLATION at replay point after entry %" PRIu64 " (%s, sector %" PRIu64
	       " +%" PRIu64 ", %s point): metadata %s, sequence %" PRIu64
	       ", flags 0x%x, reference '%s'; %" PRIu64
	       " changed and %" PRIu64 " written clusters not marked\n",
	       r->entry, fl, (uint64_t)e->sector, (uint64_t)e->nr_sectors,
	       flush_point ? "flush/FUA" : "mid-group", md_state_name(r->md.state),
	       r->md.sequence, r->md.flags, r->ref_name, r->nviol, r->nviolw);
	if (r->md.state == MD_CORRUPT)
		printf("  superblock: %s\n", r->md.error);
	for (c = 0; c < r->nclusters && shown < 4; c++) {
		if (r->covered[c] || (!r->diffcnt[c] && !r->wr_ref[c]))
			continue;
		for (k = c * r->cs; k < (c + 1) * r->cs && k < r->data_len; k++)
			if (sector_differs(r, k))
				break;
		printf("  cluster %" PRIu64 ": %s, data sector %" PRIu64
		       " (device sector %" PRIu64 "), last written by entry %" PRIu64 "\n",
		       c, r->diffcnt[c] ? "content differs from the reference" :
		       "written since the reference (content equal)",
		       k < r->data_len && r->diffcnt[c] ? k : c * r->cs,
		       r->data_start + (k < r->data_len && r->diffcnt[c] ? k : c * r->cs),
		       r->last_writer[c] - 1);
		shown++;
	}
}

static void check_point(struct replay *r, const struct lw_entry *e)
{
	bool flush_point = e->flags & (LW_FLUSH | LW_FUA);
	uint64_t c, ndiff = 0;

	r->points_all++;
	if (flush_point)
		r->points_flush++;
	switch (r->md.state) {
	case MD_UNFORMATTED:
		r->pts_unformatted++;
		break;
	case MD_CORRUPT:
		r->pts_corrupt++;
		if (!r->corrupt_first[0])
			snprintf(r->corrupt_first, sizeof(r->corrupt_first),
				 "entry %" PRIu64 ": %s", r->entry, r->md.error);
		break;
	case MD_INVALID:
		r->pts_invalid++;
		r->pts_grown_invalid += r->md.grown;
		break;
	case MD_VALID:
		r->pts_valid++;
		r->pts_grown_valid += r->md.grown;
		if (r->md.flags & DT_SB_FLAG_FROZEN)
			r->pts_frozen++;
		break;
	}
	if (flush_point && r->verbose > 1) {
		ndiff = r->ndiffc;
		printf("point %" PRIu64 " (entry %" PRIu64 "): seq %" PRIu64
		       " %s, %" PRIu64 " clusters differ, live %" PRIu64
		       " frozen %" PRIu64 "\n", r->points_flush, r->entry,
		       r->md.sequence, md_state_name(r->md.state), ndiff,
		       r->md.live_set, r->md.frozen_set);
	}
	if (!r->nviol && !r->nviolw && r->md.state != MD_CORRUPT)
		return;
	r->viol_points_all++;
	if (flush_point)
		r->viol_points_flush++;
	for (c = 0; c < r->nclusters; c++)
		if (!r->covered[c] && (r->diffcnt[c] || r->wr_ref[c]) &&
		    !r->ever_violated[c]) {
			r->ever_violated[c] = 1;
			r->viol_clusters++;
		}
	if (r->reports++ < 10)
		report_violation(r, e, flush_point);
}

static int cmd_replay(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "md", required_argument, NULL, 'm' },
		{ "data", required_argument, NULL, 'd' },
		{ "cluster-sectors", required_argument, NULL, 'c' },
		{ "initial", required_argument, NULL, 'i' },
		{ "final", required_argument, NULL, 'f' },
		{ "dev-sectors", required_argument, NULL, 's' },
		{ "ref-prefix", required_argument, NULL, 'p' },
		{ "drop-bitmap-writes", no_argument, NULL, 'D' },
		{ "delay-metadata", required_argument, NULL, 'L' },
		{ "trace-sector", required_argument, NULL, 'T' },
		{ "grown-from", required_argument, NULL, 'G' },
		{ "verbose", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	struct replay R = { .ref_prefix = "ref" }, *r = &R;
	const char *initial = NULL, *final = NULL;
	const struct lw_super *super;
	const uint8_t *log;
	size_t log_len, pos, ss;
	uint64_t i, nr_entries, ss_sectors, mismatches = 0, first_mismatch = 0;
	uint64_t skipped_disc = 0, skipped_amb = 0;
	char last_mark[256] = "";
	struct md_delayed *delayed = NULL;
	size_t nr_delayed = 0, first_delayed = 0;
	int opt, rc;

	while ((opt = getopt_long(argc, argv, "v", opts, NULL)) != -1) {
		switch (opt) {
		case 'm':
			if (sscanf(optarg, "%" SCNu64 ":%" SCNu64, &r->md_start, &r->md_len) != 2)
				fatal("--md START:LENGTH in sectors");
			break;
		case 'd':
			if (sscanf(optarg, "%" SCNu64 ":%" SCNu64, &r->data_start, &r->data_len) != 2)
				fatal("--data START:LENGTH in sectors");
			break;
		case 'c':
			r->cs = strtoul(optarg, NULL, 10);
			break;
		case 'i':
			initial = optarg;
			break;
		case 'f':
			final = optarg;
			break;
		case 's':
			r->dev_sectors = strtoull(optarg, NULL, 10);
			break;
		case 'p':
			r->ref_prefix = optarg;
			break;
		case 'D':
			r->drop_bitmap_writes = true;
			break;
		case 'L':
			r->delay_md = strtoull(optarg, NULL, 10);
			break;
		case 'T':
			r->trace_sector = strtoull(optarg, NULL, 10) + 1;
			break;
		case 'G':
			grown_from = strtoull(optarg, NULL, 10);
			break;
		case 'v':
			r->verbose++;
			break;
		default:
			return 2;
		}
	}
	if (optind + 1 != argc || !r->md_len || !r->data_len ||
	    !dt_cluster_sectors_valid(r->cs))
		fatal("usage: replay --md START:LEN --data START:LEN --cluster-sectors N "
		      "[--dev-sectors N] [--initial FILE] [--final FILE] [--ref-prefix P] "
		      "[--drop-bitmap-writes] [--delay-metadata N] [--trace-sector S] "
		      "[--grown-from SECTORS] [-v] LOG");

	if (!r->dev_sectors) {
		size_t len;

		if (!final && !initial)
			fatal("need --dev-sectors, --initial or --final for the device size");
		map_file(final ? final : initial, &len);
		r->dev_sectors = len / SECTOR;
	}
	if (r->md_start + r->md_len > r->dev_sectors ||
	    r->data_start + r->data_len > r->dev_sectors)
		fatal("slices do not fit the device of %" PRIu64 " sectors", r->dev_sectors);
	r->nclusters = dt_nr_clusters(r->data_len, r->cs);

	r->img = xmap(r->dev_sectors * SECTOR);
	r->disc = xmap(r->dev_sectors * sizeof(uint32_t));
	r->last_data = xmap(r->dev_sectors * sizeof(*r->last_data));
	r->prev_data = xmap(r->dev_sectors * sizeof(*r->prev_data));
	r->last_epoch = xmap(r->dev_sectors * sizeof(uint32_t));
	r->prev_epoch = xmap(r->dev_sectors * sizeof(uint32_t));
	if (initial) {
		size_t len;
		const uint8_t *p = map_file(initial, &len);

		if (len < r->dev_sectors * SECTOR)
			fatal("%s: shorter than the device", initial);
		memcpy(r->img, p, r->dev_sectors * SECTOR);
	}
	r->ref_img = xmap(r->data_len * SECTOR);
	r->cand_img = xmap(r->data_len * SECTOR);
	r->ref_disc = xmap(r->data_len * sizeof(uint32_t));
	r->cand_disc = xmap(r->data_len * sizeof(uint32_t));
	memcpy(r->ref_img, r->img + r->data_start * SECTOR, r->data_len * SECTOR);
	r->diffcnt = xmap(r->nclusters * sizeof(uint32_t));
	r->wr_ref = xmap(r->nclusters);
	r->wr_cand = xmap(r->nclusters);
	r->covered = xmap(r->nclusters);
	r->ever_violated = xmap(r->nclusters);
	r->last_writer = xmap(r->nclusters * sizeof(uint64_t));
	snprintf(r->ref_name, sizeof(r->ref_name), "initial image");
	md_changed(r);

	log = map_file(argv[optind], &log_len);
	super = (const void *)log;
	if (log_len < sizeof(*super) || le64toh(super->magic) != LW_MAGIC)
		fatal("%s: not a dm-log-writes log (bad magic)", argv[optind]);
	if (le64toh(super->version) != LW_VERSION)
		fatal("%s: log version %" PRIu64, argv[optind], (uint64_t)le64toh(super->version));
	ss = le32toh(super->sectorsize);
	if (ss < SECTOR || ss % SECTOR || ss > 65536)
		fatal("%s: sector size %zu", argv[optind], ss);
	ss_sectors = ss / SECTOR;
	nr_entries = le64toh(super->nr_entries);

	pos = ss;
	for (i = 0; i < nr_entries; i++) {
		struct lw_entry e;
		bool md = false;

		r->entry = i;
		/* --delay-metadata: writes moved past the N entries after them */
		while (first_delayed < nr_delayed && delayed[first_delayed].due < i) {
			const struct md_delayed *dw = &delayed[first_delayed++];

			if (apply(r, dw->sector, dw->nr, dw->data, dw->fua))
				md_changed(r);
		}
		if (pos + ss > log_len)
			fatal("entry %" PRIu64 " at byte %zu: beyond the log", i, pos);
		memcpy(&e, log + pos, sizeof(e));
		e.sector = le64toh(e.sector) * ss_sectors;
		e.nr_sectors = le64toh(e.nr_sectors) * ss_sectors;
		e.flags = le64toh(e.flags);
		e.data_len = le64toh(e.data_len);
		if (e.flags & ~(uint64_t)(LW_FLUSH | LW_FUA | LW_DISCARD | LW_MARK | LW_METADATA))
			fatal("entry %" PRIu64 ": unknown flags 0x%" PRIx64, i, (uint64_t)e.flags);
		pos += ss;
		if (e.flags & LW_FLUSH)
			r->n_flush++;
		if (e.flags & LW_FUA)
			r->n_fua++;
		if (e.flags & LW_MARK) {
			size_t len = e.data_len;

			if (len > ss - sizeof(e) || len >= sizeof(last_mark))
				fatal("entry %" PRIu64 ": mark of %zu bytes", i, len);
			memcpy(last_mark, log + pos - ss + sizeof(e), len);
			last_mark[len] = 0;
			on_mark(r, last_mark);
		} else if (e.data_len) {
			fatal("entry %" PRIu64 ": inline data is not supported", i);
		} else if (e.flags & LW_DISCARD) {
			r->n_discard++;
			md = apply(r, e.sector, e.nr_sectors, NULL, false);
		} else if (e.nr_sectors) {
			if (pos + e.nr_sectors * SECTOR > log_len)
				fatal("entry %" PRIu64 ": data beyond the log", i);
			if (r->delay_md && e.sector < r->md_start + r->md_len &&
			    e.sector + e.nr_sectors > r->md_start) {
				/* Negative control: the metadata write lands late. */
				delayed = realloc(delayed, (nr_delayed + 1) * sizeof(*delayed));
				if (!delayed)
					fatal("out of memory");
				delayed[nr_delayed++] = (struct md_delayed){
					i + r->delay_md, e.sector, e.nr_sectors,
					log + pos, e.flags & LW_FUA };
			} else {
				md = apply(r, e.sector, e.nr_sectors, log + pos,
					   e.flags & LW_FUA);
			}
			pos += e.nr_sectors * SECTOR;
		}

		if (e.flags & LW_FLUSH)
			r->flush_epoch++;
		if (md)
			md_changed(r);
		check_point(r, &e);
		if ((e.flags & (LW_FLUSH | LW_FUA)) && r->ndiffc > r->max_diff_clusters)
			r->max_diff_clusters = r->ndiffc;
	}

	while (first_delayed < nr_delayed) {
		const struct md_delayed *dw = &delayed[first_delayed++];

		if (apply(r, dw->sector, dw->nr, dw->data, dw->fua))
			md_changed(r);
	}
	free(delayed);

	if (final) {
		size_t len;
		const uint8_t *p = map_file(final, &len);
		uint64_t k;

		if (len < r->dev_sectors * SECTOR)
			fatal("%s: shorter than the device", final);
		for (k = 0; k < r->dev_sectors; k++) {
			if (r->disc[k]) {
				skipped_disc++;
				continue;
			}
			if (memcmp(p + k * SECTOR, r->img + k * SECTOR, SECTOR) &&
			    r->prev_data[k] && r->prev_epoch[k] + 1 >= r->last_epoch[k] &&
			    !memcmp(p + k * SECTOR, r->prev_data[k], SECTOR)) {
				skipped_amb++;
				continue;
			}
			if (memcmp(p + k * SECTOR, r->img + k * SECTOR, SECTOR)) {
				if (!mismatches++)
					first_mismatch = k;
				if (r->trace_sector == k + 1)
					printf("trace: the device has crc32c %08x\n",
					       dt_crc32c(p + k * SECTOR, SECTOR));
			}
		}
	}

	printf("log: %" PRIu64 " entries, sector size %zu, last mark '%s'\n",
	       nr_entries, ss, last_mark);
	printf("entries: %" PRIu64 " metadata writes, %" PRIu64 " data writes (%" PRIu64
	       " MiB), %" PRIu64 " other, %" PRIu64 " discards, %" PRIu64 " FLUSH, %"
	       PRIu64 " FUA, %" PRIu64 " marks (%" PRIu64 " reference marks)\n",
	       r->n_write_md, r->n_write_data, r->bytes_data >> 20, r->n_write_other,
	       r->n_discard, r->n_flush, r->n_fua, r->n_mark, r->n_ref_marks);
	printf("superblock: sequence %" PRIu64 " to %" PRIu64 ", %" PRIu64
	       " reference changes; points: %" PRIu64 " valid (%" PRIu64
	       " with a frozen set), %" PRIu64 " valid flag clear, %" PRIu64
	       " unformatted, %" PRIu64 " corrupt%s%s\n",
	       r->seq_first, r->seq_last, r->n_rebinds, r->pts_valid, r->pts_frozen,
	       r->pts_invalid, r->pts_unformatted, r->pts_corrupt,
	       r->corrupt_first[0] ? "; first: " : "", r->corrupt_first);
	if (grown_from)
		printf("grown from %" PRIu64 " sectors: points with the old geometry: %"
		       PRIu64 " valid, %" PRIu64 " valid flag clear\n", grown_from,
		       r->pts_grown_valid, r->pts_grown_invalid);
	printf("final metadata: %s, sequence %" PRIu64 ", flags 0x%x, live %" PRIu64
	       ", frozen %" PRIu64 "\n", md_state_name(r->md.state), r->md.sequence,
	       r->md.flags, r->md.live_set, r->md.frozen_set);
	printf("largest changed set at a flush/FUA point: %" PRIu64 " of %" PRIu64
	       " clusters\n", r->max_diff_clusters, r->nclusters);
	printf("replay points checked: %" PRIu64 " flush/FUA points, %" PRIu64
	       " entry boundaries in all\n", r->points_flush, r->points_all);
	printf("violations: %" PRIu64 " at flush/FUA points, %" PRIu64
	       " at all points, %" PRIu64 " clusters\n", r->viol_points_flush,
	       r->viol_points_all, r->viol_clusters);
	rc = r->viol_points_all ? 1 : 0;
	if (final) {
		printf("final image: %s", mismatches ? "DIFFERS" : "equal to the replay");
		if (mismatches)
			printf(" (%" PRIu64 " sectors, first %" PRIu64 ")", mismatches, first_mismatch);
		printf(" (%" PRIu64 " discarded sectors not compared; %" PRIu64
		       " hold the previous of two writes logged close together)\n",
		       skipped_disc, skipped_amb);
		if (mismatches)
			rc = 2;
	}
	return rc;
}

/* ------------------------------------------------------------------ */
/* image                                                               */
/* ------------------------------------------------------------------ */

static void write_list(const char *path, const uint8_t *set, uint64_t n)
{
	FILE *f = fopen(path, "w");
	uint64_t c;

	if (!f)
		fatal("%s: %s", path, strerror(errno));
	for (c = 0; c < n; c++)
		if (set[c])
			fprintf(f, "%" PRIu64 "\n", c);
	if (fclose(f))
		fatal("%s: %s", path, strerror(errno));
}

static int cmd_image(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "md", required_argument, NULL, 'm' },
		{ "data", required_argument, NULL, 'd' },
		{ "ref", required_argument, NULL, 'r' },
		{ "cluster-sectors", required_argument, NULL, 'c' },
		{ "changed-out", required_argument, NULL, 'C' },
		{ "marked-out", required_argument, NULL, 'M' },
		{ NULL, 0, NULL, 0 },
	};
	const char *md_path = NULL, *data_path = NULL, *ref_path = NULL;
	const char *changed_out = NULL, *marked_out = NULL;
	const uint8_t *md, *data, *ref = NULL;
	size_t md_len, data_len, ref_len = 0;
	uint64_t data_sectors, nclusters, c, k, nchanged_s = 0, nchanged = 0, viol = 0;
	uint8_t *covered, *changed;
	struct md_view v;
	char u[40];
	uint32_t cs = 0;
	int opt, shown = 0;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'm':
			md_path = optarg;
			break;
		case 'd':
			data_path = optarg;
			break;
		case 'r':
			ref_path = optarg;
			break;
		case 'c':
			cs = strtoul(optarg, NULL, 10);
			break;
		case 'C':
			changed_out = optarg;
			break;
		case 'M':
			marked_out = optarg;
			break;
		default:
			return 2;
		}
	}
	if (optind != argc || !md_path || !data_path)
		fatal("usage: image --md FILE --data FILE [--ref FILE] [--cluster-sectors N] "
		      "[--changed-out FILE] [--marked-out FILE]");
	md = map_file(md_path, &md_len);
	data = map_file(data_path, &data_len);
	if (ref_path) {
		ref = map_file(ref_path, &ref_len);
		if (ref_len < data_len)
			fatal("%s: shorter than %s", ref_path, data_path);
	}
	data_sectors = data_len / SECTOR;
	if (!cs) {
		if (md_len < DT_SB_SIZE)
			fatal("%s: too short", md_path);
		cs = le32toh(((const struct dt_disk_superblock *)md)->cluster_sectors);
	}
	if (!dt_cluster_sectors_valid(cs))
		fatal("cluster size unknown: pass --cluster-sectors");
	nclusters = dt_nr_clusters(data_sectors, cs);
	covered = xmap(nclusters);
	changed = xmap(nclusters);
	md_evaluate(md, md_len / SECTOR, data_sectors, cs, nclusters, covered, &v);

	for (k = 0; k < data_sectors; k++) {
		const uint8_t *p = data + k * SECTOR;
		bool differs = ref ? memcmp(p, ref + k * SECTOR, SECTOR) != 0 :
				     !all_zero(p, SECTOR);

		if (!differs)
			continue;
		nchanged_s++;
		c = k / cs;
		if (!changed[c]) {
			changed[c] = 1;
			nchanged++;
			if (!covered[c]) {
				viol++;
				if (shown++ < 10)
					printf("VIOLATION: cluster %" PRIu64 " (data sector %"
					       PRIu64 ") differs from the reference and is not marked\n",
					       c, k);
			}
		}
	}
	uuid_str(v.uuid, u);
	printf("metadata: %s%s%s, uuid %s, sequence %" PRIu64 ", generation %" PRIu64
	       ", flags 0x%x, live %" PRIu64 ", frozen %" PRIu64 "\n",
	       md_state_name(v.state), v.error ? ": " : "", v.error ? v.error : "",
	       u, v.sequence, v.generation, v.flags, v.live_set, v.frozen_set);
	printf("data: %" PRIu64 " sectors differ from the %s in %" PRIu64
	       " of %" PRIu64 " clusters\n", nchanged_s, ref ? "reference" : "zero image",
	       nchanged, nclusters);
	printf("violations: %" PRIu64 " clusters\n", viol);
	if (changed_out)
		write_list(changed_out, changed, nclusters);
	if (marked_out)
		write_list(marked_out, covered, nclusters);
	return viol || v.state == MD_CORRUPT ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		fatal("usage: dt-logcheck replay|image ...  (see the comment at the top of dt-logcheck.c)");
	if (!strcmp(argv[1], "replay"))
		return cmd_replay(argc - 1, argv + 1);
	if (!strcmp(argv[1], "image"))
		return cmd_image(argc - 1, argv + 1);
	fatal("unknown command %s", argv[1]);
}
