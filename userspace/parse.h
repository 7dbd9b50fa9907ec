/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/*
 * Pure functions of dirtyctl: no device-mapper, no global state.
 *
 * Everything that turns the target's untrusted text (status line, paged
 * bitmap replies) into numbers, the bitmap into extents, and extents
 * into output lives here, so that it can be unit-tested and fuzzed on a
 * host without the kernel module.
 *
 * Coordinates: a "cluster" is target-relative (bit c of the bitmap); a
 * "sector" in output is a 512-byte sector of the whole dm device, i.e.
 * target start + c * cluster_sectors, clipped to the target's end.
 */
#ifndef DIRTYCTL_PARSE_H
#define DIRTYCTL_PARSE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../kernel/dm-dirtytrack-abi.h"

/* ------------------------------------------------------------------ */
/* Status line                                                         */
/* ------------------------------------------------------------------ */

#define DT_TOKEN_MAX	64	/* longest mode, health or uuid we accept */

struct dt_status {
	uint32_t cluster_sectors;
	uint64_t clusters;
	uint64_t dirty_clusters;
	int has_frozen;			/* 0 when the target printed '-' */
	uint64_t frozen_clusters;	/* valid when has_frozen */
	char mode[DT_TOKEN_MAX];
	char health[DT_TOKEN_MAX];
	char uuid[DT_TOKEN_MAX];
	uint64_t sequence;
};

/*
 * dt_parse_status - parse the params of a dirtytrack status line
 * (everything after the target type, see the ABI header).
 *
 * Fields beyond the DT_STATUS_FIELDS known ones are ignored so that a
 * newer target can append to the line.  Returns 0, or -EINVAL when the
 * line is short or a field is malformed or inconsistent (dirty or frozen
 * count above the cluster count, invalid cluster size).
 */
int dt_parse_status(const char *params, struct dt_status *st);

/* ------------------------------------------------------------------ */
/* Geometry                                                            */
/* ------------------------------------------------------------------ */

struct dt_geometry {
	uint64_t start;			/* target start, device sectors */
	uint64_t length;		/* target length, sectors */
	uint64_t dev_sectors;		/* size of the whole dm device */
	uint32_t cluster_sectors;
	uint64_t clusters;
};

/* Groups of DT_GROUP_CLUSTERS clusters needed for @clusters. */
static inline uint64_t dt_groups(uint64_t clusters)
{
	return clusters / DT_GROUP_CLUSTERS + (clusters % DT_GROUP_CLUSTERS != 0);
}

/*
 * dt_geometry_check - does the target's status agree with its table?
 * Returns 0, or -EINVAL when the cluster count is not
 * ceil(length / cluster_sectors), the target does not lie inside the
 * device, or the device is too large to express in bytes.
 */
int dt_geometry_check(const struct dt_geometry *g);

/* ------------------------------------------------------------------ */
/* Paged bitmap replies                                                */
/* ------------------------------------------------------------------ */

struct dt_reply {
	uint64_t epoch;
	uint64_t first_group;
	uint64_t nr_groups;
};

/*
 * dt_decode_reply - validate one reply to "bitmap <set> <first_group>"
 * and store its groups in @words[first_group ..].
 *
 * @words holds dt_groups(@clusters) groups; group g is the 64-bit word
 * whose bit k is cluster g * 64 + k.  The reply must start at
 * @first_group, stay within the bitmap, encode exactly nr_groups groups
 * in lowercase hex and zero runs, and have no bit set at or beyond
 * @clusters.  Returns 0 and fills @r, or -EBADMSG; on error @words may
 * have been partly written.
 */
int dt_decode_reply(const char *reply, uint64_t first_group, uint64_t clusters,
		    uint64_t *words, struct dt_reply *r);

/* Sends "bitmap <set> <first_group>"; 0 and a malloc'd *reply, or -errno. */
typedef int (*dt_fetch_fn)(void *ctx, uint64_t first_group, char **reply);

/*
 * dt_read_bitmap - read a whole bitmap page by page through @fetch.
 *
 * Continues from first_group + nr_groups until the last group or a
 * reply with nr_groups == 0.  When the epoch changes between pages the
 * read starts again once; a second change returns -EAGAIN.  Returns 0,
 * -EBADMSG for a malformed reply (also a bitmap that ends early), or
 * the error of @fetch.
 */
int dt_read_bitmap(dt_fetch_fn fetch, void *ctx, uint64_t clusters,
		   uint64_t *words);

/* ------------------------------------------------------------------ */
/* Bitmap arithmetic                                                   */
/* ------------------------------------------------------------------ */

/* Set bits in clusters [from, to). */
uint64_t dt_count_bits(const uint64_t *words, uint64_t from, uint64_t to);

/*
 * dt_walk_extents - call @fn for each maximal run of set bits among the
 * first @clusters bits, in ascending order, with its first cluster and
 * length.  Stops and returns the first non-zero value @fn returns.
 */
typedef int (*dt_extent_fn)(void *ctx, uint64_t first_cluster,
			    uint64_t nr_clusters);
int dt_walk_extents(const uint64_t *words, uint64_t clusters,
		    dt_extent_fn fn, void *ctx);

#define DT_MAP_WIDTH	128	/* cells of the status map */
#define DT_MAP_LINE	64	/* cells per printed line */

/*
 * dt_dirty_map - summarise the bitmap in @width characters (@width <=
 * clusters), each a bucket of about clusters / width clusters:
 * ' ' clean, '.' under 25% dirty, ':' under 75%, '#' 75% or more.
 * @out gets @width characters and a NUL.
 */
#define DT_MAP_LEGEND "' ' clean, '.' under 25% changed, ':' under 75%, '#' 75% or more"
void dt_dirty_map(const uint64_t *words, uint64_t clusters, unsigned int width,
		  char *out);

/* ------------------------------------------------------------------ */
/* Buffered output                                                     */
/* ------------------------------------------------------------------ */

/*
 * A large write buffer in front of a file descriptor.  With fd -1 the
 * buffer grows and keeps everything (unit tests read it back).  Errors
 * are sticky: the first one is kept in err and later writes are dropped.
 */
struct dt_writer {
	int fd;
	char *buf;
	size_t len;
	size_t cap;
	int err;			/* 0 or the first -errno */
};

int dt_writer_init(struct dt_writer *w, int fd);
void dt_writer_put(struct dt_writer *w, const char *s, size_t n);
void dt_writer_puts(struct dt_writer *w, const char *s);
int dt_writer_flush(struct dt_writer *w);	/* 0 or -errno */
void dt_writer_free(struct dt_writer *w);

/* ------------------------------------------------------------------ */
/* dump                                                                */
/* ------------------------------------------------------------------ */

enum dt_format {
	DT_FORMAT_RANGES,
	DT_FORMAT_BYTES,
	DT_FORMAT_JSON,
	DT_FORMAT_DDRESCUE,
};

/* 0 and *fmt for "ranges", "bytes", "json", "ddrescue"; else -EINVAL. */
int dt_format_from_name(const char *name, enum dt_format *fmt);

struct dt_dump {
	struct dt_writer *w;
	enum dt_format format;
	const struct dt_geometry *geo;
	const char *device;	/* dm name, for json and the ddrescue header */
	const char *comment;	/* extra ddrescue header line, or NULL */
	/* private */
	uint64_t pos;		/* ddrescue: sectors covered so far */
	uint64_t extents;	/* extents written */
};

/*
 * dt_dump_bitmap - write every dirty extent of @words (dt_groups(clusters)
 * groups) in device sectors, coalesced, ascending and clipped to the
 * target, in d->format.  Returns 0 or the writer's -errno.
 */
int dt_dump_bitmap(struct dt_dump *d, const uint64_t *words);

/* The same in three steps, for callers that produce extents themselves. */
void dt_dump_begin(struct dt_dump *d);
void dt_dump_extent(struct dt_dump *d, uint64_t start_sector, uint64_t nr_sectors);
int dt_dump_end(struct dt_dump *d);

/* ------------------------------------------------------------------ */
/* status and JSON output                                              */
/* ------------------------------------------------------------------ */

/* Everything "dirtyctl status" shows about one device. */
struct dt_status_report {
	const char *name;		/* dm name */
	const struct dt_status *st;
	const struct dt_geometry *geo;
	int suspended;
	const char *map;		/* dt_dirty_map() of the live set, or NULL */
	const char *map_error;		/* why there is no map, or NULL */
};

/*
 * The at-a-glance line, the uuid, a note when health is not ok, and the
 * map; sizes in bytes with @exact, else human.
 */
void dt_print_status_human(FILE *f, const struct dt_status_report *r, int exact);

/* The status as a JSON object; 0 or -ENOMEM. */
int dt_print_status_json(FILE *f, const struct dt_status_report *r);

/* A minimal writer of one flat JSON object, one member per line. */
struct dt_json {
	FILE *f;
	int members;
};

void dt_json_begin(struct dt_json *j, FILE *f);
void dt_json_key(struct dt_json *j, const char *key);	/* then write the value */
void dt_json_u64(struct dt_json *j, const char *key, uint64_t v);
void dt_json_u64_or_null(struct dt_json *j, const char *key, int present, uint64_t v);
void dt_json_bool(struct dt_json *j, const char *key, int v);
int dt_json_str(struct dt_json *j, const char *key, const char *s); /* 0 or -ENOMEM */
void dt_json_end(struct dt_json *j);

/* ------------------------------------------------------------------ */
/* Text helpers                                                        */
/* ------------------------------------------------------------------ */

/* Decimal digits of @v at @p, no NUL; returns the number of digits. */
size_t dt_u64_to_dec(char *p, uint64_t v);

/*
 * dt_size_to_human - "512 B", "64 KiB", "1.2 GiB": binary units, one
 * decimal rounded to nearest, none when it is zero.  Returns @buf.
 */
#define DT_HUMAN_MAX 32
char *dt_size_to_human(uint64_t bytes, char buf[DT_HUMAN_MAX]);

/* "@bytes bytes" with @exact, else dt_size_to_human(). */
const char *dt_size_or_bytes(uint64_t bytes, int exact, char buf[DT_HUMAN_MAX]);

/*
 * dt_parse_u64 - a strict unsigned decimal: digits only, no sign, no
 * spaces, no overflow.  Returns NULL and *v, or what is wrong.
 */
const char *dt_parse_u64(const char *s, uint64_t *v);

/*
 * dt_parse_sectors - a count of 512-byte sectors: a plain number or with
 * suffix "s" is sectors; with K, M, G, T, P, E (optionally "iB", powers
 * of 1024) or KB, MB, ... (powers of 1000) it is bytes and must be a
 * multiple of 512.  Suffixes are case-insensitive.  Returns NULL and
 * *sectors, or what is wrong.
 */
const char *dt_parse_sectors(const char *s, uint64_t *sectors);

/* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" for a 16-byte uuid. */
#define DT_UUID_STR_LEN 37
void dt_format_uuid(const unsigned char uuid[DT_UUID_SIZE], char out[DT_UUID_STR_LEN]);

/* @s as a JSON string, quotes included, malloc'd; NULL on ENOMEM. */
char *dt_json_quote(const char *s);

/*
 * dt_message_error - what a failed message means to a user, for message
 * @verb (DT_MSG_*) failing with -@err; NULL when strerror() says it best.
 */
const char *dt_message_error(const char *verb, int err);

#endif
