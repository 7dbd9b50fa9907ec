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

/*
 * Optional fields newer targets append to the DT_STATUS_FIELDS known to
 * every target (their numbers, counted from 1):
 *   9   <frozen_id>           16 lowercase hex digits, '-' when nothing is
 *                             frozen (the id checkpoint replies with)
 *   10  <snapshot>            '-' (no snapshot store in the table), idle,
 *                             active or invalid
 *   11  <store_used_sectors>  '-' without a store
 *   12  <store_sectors>       '-' without a store
 */
#define DT_STATUS_FIELD_FROZEN_ID	9
#define DT_STATUS_FIELD_SNAPSHOT	10
#define DT_STATUS_FIELDS_MAX		12
#define DT_FROZEN_ID_LEN		16	/* hex digits of a frozen set id */

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
	int reports_frozen_id;		/* the target printed field 9 */
	char frozen_id[DT_FROZEN_ID_LEN + 1]; /* "" when none is frozen */
	int reports_snapshot;		/* the target printed fields 10-12 */
	char snapshot[DT_TOKEN_MAX];	/* "-" when the table has no store */
	int has_store;			/* the two store numbers are valid */
	uint64_t store_used_sectors;
	uint64_t store_sectors;
};

/*
 * dt_parse_status - parse the params of a dirtytrack status line
 * (everything after the target type, see the ABI header).
 *
 * The first DT_STATUS_FIELDS fields are required; the optional ones
 * above are parsed when present (10 to 12 come together); fields beyond
 * DT_STATUS_FIELDS_MAX are ignored so that a newer target can append to
 * the line.  Returns 0, or -EINVAL when the line is short or a field is
 * malformed or inconsistent (dirty or frozen count above the cluster
 * count, invalid cluster size, a frozen id without a frozen count or the
 * reverse, store numbers without a store or the reverse, more of the
 * store used than it has).
 */
int dt_parse_status(const char *params, struct dt_status *st);

/*
 * dt_parse_frozen_id - a frozen set id: exactly DT_FROZEN_ID_LEN hex
 * digits; with @strict lowercase only (the target's own text), else
 * uppercase is accepted and lowered (a user's).  @len is the length of
 * @s to consider.  Returns 0 and @out (NUL-terminated), or -EINVAL.
 */
int dt_parse_frozen_id(const char *s, size_t len, int strict,
		       char out[DT_FROZEN_ID_LEN + 1]);

/*
 * dt_parse_checkpoint_reply - the reply of "checkpoint": the new frozen
 * set's id, optionally followed by one newline.  Returns 0 and @id, 1
 * when the reply is empty (a target from before frozen set ids), or
 * -EBADMSG.
 */
int dt_parse_checkpoint_reply(const char *reply, char id[DT_FROZEN_ID_LEN + 1]);

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

/* Bytes covered by @n clusters, at most the target's size. */
uint64_t dt_clusters_bytes(const struct dt_geometry *g, uint64_t n);

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

/*
 * The status as a JSON object; 0 or -ENOMEM.  frozen_id is null when
 * nothing is frozen (or the target has no ids); snapshot (null without a
 * store), store_used_sectors and store_sectors (null without a store) are
 * there when the target reports them.
 */
int dt_print_status_json(FILE *f, const struct dt_status_report *r);

/*
 * The status as KEY=value lines for a shell's eval, as blkid -o export:
 * DEVICE UUID SEQUENCE CLUSTER_SECTORS CLUSTERS DIRTY_CLUSTERS
 * FROZEN_CLUSTERS FROZEN_ID MODE HEALTH, then SNAPSHOT STORE_USED_SECTORS
 * STORE_SECTORS when the target reports them.  A value that does not
 * exist (nothing frozen, no store) is empty; values are quoted with
 * dt_shell_quote_put().
 */
void dt_print_status_export(FILE *f, const struct dt_status_report *r);

/*
 * The one JSON writer of dirtyctl (after util-linux lib/jsonwrt.c): one
 * object, one member per line, string arrays inline.  Every string goes
 * through dt_json_quote(), so the output is valid JSON whatever the
 * bytes of a device name.
 */
struct dt_json {
	FILE *f;
	int members;
	int elements;		/* of the open array */
};

void dt_json_begin(struct dt_json *j, FILE *f);
void dt_json_key(struct dt_json *j, const char *key);	/* then write the value */
void dt_json_u64(struct dt_json *j, const char *key, uint64_t v);
void dt_json_u64_or_null(struct dt_json *j, const char *key, int present, uint64_t v);
void dt_json_bool(struct dt_json *j, const char *key, int v);
int dt_json_str(struct dt_json *j, const char *key, const char *s); /* 0 or -ENOMEM */
void dt_json_null(struct dt_json *j, const char *key);
int dt_json_str_or_null(struct dt_json *j, const char *key, const char *s); /* "" or NULL: null */
void dt_json_array_begin(struct dt_json *j, const char *key);
int dt_json_array_str(struct dt_json *j, const char *s);	/* 0 or -ENOMEM */
void dt_json_array_end(struct dt_json *j);
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

/*
 * Length of the well-formed UTF-8 sequence at @s (1 to 4; Unicode's
 * table 3-7: no overlong forms, no surrogates, nothing above U+10FFFF),
 * 0 when none starts there or at the end of the string.
 */
size_t dt_utf8_len(const unsigned char *s);

/* U+FFFD, the character that stands for a byte that is not UTF-8. */
#define DT_UTF8_REPLACEMENT "\xef\xbf\xbd"

/*
 * dt_utf8_sanitize - @s with each byte that is not part of a well-formed
 * UTF-8 sequence replaced by U+FFFD, malloc'd; NULL on ENOMEM.
 */
char *dt_utf8_sanitize(const char *s);

/*
 * dt_json_quote - @s as a JSON string, quotes included, malloc'd; NULL
 * on ENOMEM.  Always valid JSON (RFC 8259): '"' and '\\' escaped,
 * control characters (and DEL) as \n, \t, \r or \u00XX, each byte that
 * is not part of well-formed UTF-8 as \ufffd (the replacement character;
 * a JSON string cannot hold such a byte).
 */
char *dt_json_quote(const char *s);

/*
 * dt_shell_quote_put - write @s so that a POSIX shell's eval gives it
 * back, on one line: characters special to the shell are escaped with a
 * backslash; a control character, which would end the line or hide in a
 * terminal, is written as the 4 characters \xNN (libdevmapper's mangling
 * of such names), escaped so that eval keeps them.  Bytes from 0x80 pass
 * through: no shell gives them a meaning.
 */
#define DT_SHELL_SAFE "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" \
		      "0123456789_-.,/:@%+="
void dt_shell_quote_put(FILE *f, const char *s);

/*
 * dt_message_error - what a failed message means to a user, for message
 * @verb (DT_MSG_*) failing with -@err; NULL when strerror() says it best.
 */
const char *dt_message_error(const char *verb, int err);

#endif
