// SPDX-License-Identifier: GPL-2.0-only OR MIT
/*
 * What the target says about itself: its status line, the geometry it
 * must agree with, and what its message errors mean to a user.
 * See status.h for the contracts.
 */
#include <errno.h>
#include <string.h>

#include "status.h"
#include "strutils.h"

static int is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n';
}

/* Next blank-separated token of *p: its start and length, 0 at the end. */
static size_t next_token(const char **p, const char **tok)
{
	const char *s = *p;
	size_t n = 0;

	while (is_blank(*s))
		s++;
	*tok = s;
	while (s[n] && !is_blank(s[n]))
		n++;
	*p = s + n;
	return n;
}

/* Copies a token of allowed characters into a DT_TOKEN_MAX buffer. */
static int copy_token(char *dst, const char *tok, size_t len, const char *allowed)
{
	size_t i;

	if (len == 0 || len >= DT_TOKEN_MAX)
		return -EINVAL;
	for (i = 0; i < len; i++)
		if (!strchr(allowed, tok[i]))
			return -EINVAL;
	memcpy(dst, tok, len);
	dst[len] = '\0';
	return 0;
}

#define WORD_CHARS "abcdefghijklmnopqrstuvwxyz0123456789_"
#define UUID_CHARS "0123456789abcdefABCDEF-"

static int is_dash(const char *tok, size_t len)
{
	return len == 1 && tok[0] == '-';
}

int dt_parse_frozen_id(const char *s, size_t len, int strict,
		       char out[DT_FROZEN_ID_LEN + 1])
{
	size_t i;

	if (len != DT_FROZEN_ID_LEN)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		char c = s[i];

		if (!strict && c >= 'A' && c <= 'F')
			c = (char)(c - 'A' + 'a');
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return -EINVAL;
		out[i] = c;
	}
	out[len] = '\0';
	return 0;
}

int dt_parse_checkpoint_reply(const char *reply, char id[DT_FROZEN_ID_LEN + 1])
{
	size_t len = strlen(reply);

	if (len && reply[len - 1] == '\n')
		len--;
	if (len == 0 && !reply[0])
		return 1;
	return dt_parse_frozen_id(reply, len, 1, id) ? -EBADMSG : 0;
}

/* Field 9: the frozen id, which must agree with the frozen count. */
static int parse_frozen_id_field(const char *tok, size_t len, struct dt_status *st)
{
	st->reports_frozen_id = 1;
	if (is_dash(tok, len))
		return st->has_frozen ? -EINVAL : 0;
	if (!st->has_frozen)
		return -EINVAL;
	return dt_parse_frozen_id(tok, len, 1, st->frozen_id);
}

/* Fields 10 to 12: the snapshot state and its store's numbers. */
static int parse_snapshot_fields(const char *const tok[], const size_t len[],
				 struct dt_status *st)
{
	if (!len[1] || !len[2])
		return -EINVAL;
	st->reports_snapshot = 1;
	if (is_dash(tok[0], len[0])) {
		memcpy(st->snapshot, "-", 2);
		return is_dash(tok[1], len[1]) && is_dash(tok[2], len[2]) ? 0 : -EINVAL;
	}
	if (copy_token(st->snapshot, tok[0], len[0], WORD_CHARS) ||
	    dt_dec_to_u64(tok[1], len[1], &st->store_used_sectors) ||
	    dt_dec_to_u64(tok[2], len[2], &st->store_sectors) ||
	    st->store_used_sectors > st->store_sectors)
		return -EINVAL;
	st->has_store = 1;
	return 0;
}

int dt_parse_status(const char *params, struct dt_status *st)
{
	const char *tok[DT_STATUS_FIELDS_MAX];
	size_t len[DT_STATUS_FIELDS_MAX];
	const char *p = params;
	uint64_t cs;
	int i;

	memset(st, 0, sizeof(*st));
	if (!params)
		return -EINVAL;
	for (i = 0; i < DT_STATUS_FIELDS_MAX; i++) {
		len[i] = next_token(&p, &tok[i]);
		if (!len[i] && i < DT_STATUS_FIELDS)
			return -EINVAL;
	}
	if (dt_dec_to_u64(tok[0], len[0], &cs) || !dt_cluster_sectors_valid(cs))
		return -EINVAL;
	st->cluster_sectors = (uint32_t)cs;
	if (dt_dec_to_u64(tok[1], len[1], &st->clusters) || !st->clusters ||
	    dt_dec_to_u64(tok[2], len[2], &st->dirty_clusters) ||
	    st->dirty_clusters > st->clusters)
		return -EINVAL;
	if (is_dash(tok[3], len[3])) {
		st->has_frozen = 0;
	} else {
		if (dt_dec_to_u64(tok[3], len[3], &st->frozen_clusters) ||
		    st->frozen_clusters > st->clusters)
			return -EINVAL;
		st->has_frozen = 1;
	}
	if (copy_token(st->mode, tok[4], len[4], WORD_CHARS) ||
	    copy_token(st->health, tok[5], len[5], WORD_CHARS) ||
	    copy_token(st->uuid, tok[6], len[6], UUID_CHARS) ||
	    dt_dec_to_u64(tok[7], len[7], &st->sequence))
		return -EINVAL;
	i = DT_STATUS_FIELD_FROZEN_ID - 1;
	if (len[i] && parse_frozen_id_field(tok[i], len[i], st))
		return -EINVAL;
	i = DT_STATUS_FIELD_SNAPSHOT - 1;
	if (len[i] && parse_snapshot_fields(tok + i, len + i, st))
		return -EINVAL;
	return 0;
}

int dt_geometry_check(const struct dt_geometry *g)
{
	if (!dt_cluster_sectors_valid(g->cluster_sectors) || !g->length)
		return -EINVAL;
	if (g->dev_sectors > (UINT64_MAX >> 9))
		return -EINVAL;
	if (g->start > g->dev_sectors || g->length > g->dev_sectors - g->start)
		return -EINVAL;
	if (g->clusters != dt_nr_clusters(g->length, g->cluster_sectors))
		return -EINVAL;
	return 0;
}

uint64_t dt_clusters_bytes(const struct dt_geometry *g, uint64_t n)
{
	uint64_t sectors = n * g->cluster_sectors;

	return (sectors < g->length ? sectors : g->length) << 9;
}

/* What an errno of the target means; verb NULL: for every message. */
static const struct {
	int err;
	const char *verb;
	const char *sentence;
} message_errors[] = {
	{ ENXIO, NULL, "no such device" },
	{ EBUSY, NULL, "device is suspended; resume it first" },
	{ EEXIST, DT_MSG_CHECKPOINT,
	  "a checkpoint is already frozen; commit or roll it back first" },
	{ ENOENT, DT_MSG_COMMIT, "nothing is frozen" },
	{ ENOENT, DT_MSG_ROLLBACK, "nothing is frozen" },
	{ ENOENT, DT_MSG_BITMAP, "nothing is frozen" },
	{ ERANGE, DT_MSG_MARK, "extent beyond the end of the device" },
	{ ERANGE, DT_MSG_RELEASE, "extent beyond the end of the device" },
	{ ENOENT, DT_MSG_RELEASE, "no active snapshot (no checkpoint, or no snapshot store)" },
	{ EINVAL, NULL, "the target rejected the message (invalid argument)" },
	{ EAGAIN, DT_MSG_BITMAP, "bitmap changed during dump, try again" },
	{ EBADMSG, NULL, "malformed reply from target" },
};

const char *dt_message_error(const char *verb, int err)
{
	unsigned int i;

	for (i = 0; i < sizeof(message_errors) / sizeof(message_errors[0]); i++)
		if (message_errors[i].err == err &&
		    (!message_errors[i].verb || !strcmp(message_errors[i].verb, verb)))
			return message_errors[i].sentence;
	return NULL;
}
