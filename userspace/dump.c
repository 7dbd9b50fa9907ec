// SPDX-License-Identifier: GPL-2.0-only OR MIT
/*
 * The dump formats: extents of a bitmap as ranges, bytes, JSON or a GNU
 * ddrescue mapfile.
 * See dump.h for the contracts.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dump.h"
#include "json.h"
#include "strutils.h"

/* "0x" and at least 8 uppercase hex digits, as ddrescue writes them. */
static size_t u64_to_ddrescue_hex(char *p, uint64_t v)
{
	static const char hex[] = "0123456789ABCDEF";
	unsigned int digits = v >> 32 ? (67U - (unsigned int)__builtin_clzll(v)) / 4 : 8;
	char *e = p + 2 + digits;

	p[0] = '0';
	p[1] = 'x';
	while (e > p + 2) {
		*--e = hex[v & 0xf];
		v >>= 4;
	}
	return 2 + digits;
}

int dt_format_from_name(const char *name, enum dt_format *fmt)
{
	static const char *const names[] = {
		[DT_FORMAT_RANGES] = "ranges",
		[DT_FORMAT_BYTES] = "bytes",
		[DT_FORMAT_JSON] = "json",
		[DT_FORMAT_DDRESCUE] = "ddrescue",
	};
	unsigned int i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcmp(name, names[i])) {
			*fmt = (enum dt_format)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* Puts a ddrescue mapfile comment line, control characters replaced. */
static void put_comment(struct dt_writer *w, const char *prefix, const char *s)
{
	char c[1];

	dt_writer_puts(w, prefix);
	for (; *s; s++) {
		c[0] = ((unsigned char)*s < 0x20 || *s == 0x7f) ? '?' : *s;
		dt_writer_put(w, c, 1);
	}
	dt_writer_put(w, "\n", 1);
}

static void put_ddrescue_line(struct dt_writer *w, uint64_t start, uint64_t nr,
			      char status)
{
	char *p = dt_writer_room(w, DT_WRITER_LINE_MAX), *s = p;

	if (!p)
		return;
	p += u64_to_ddrescue_hex(p, start << 9);
	*p++ = ' ';
	*p++ = ' ';
	p += u64_to_ddrescue_hex(p, nr << 9);
	*p++ = ' ';
	*p++ = ' ';
	*p++ = status;
	*p++ = '\n';
	w->len += (size_t)(p - s);
}

void dt_dump_begin(struct dt_dump *d)
{
	struct dt_writer *w = d->w;
	char num[24];
	char *q;

	d->pos = 0;
	d->extents = 0;
	switch (d->format) {
	case DT_FORMAT_RANGES:
	case DT_FORMAT_BYTES:
		break;
	case DT_FORMAT_JSON:
		q = dt_json_quote(d->device);
		if (!q) {
			w->err = w->err ? w->err : -ENOMEM;
			return;
		}
		dt_writer_puts(w, "{\"device\": ");
		dt_writer_puts(w, q);
		dt_writer_puts(w, ", \"cluster_sectors\": ");
		dt_writer_put(w, num, dt_u64_to_dec(num, d->geo->cluster_sectors));
		dt_writer_puts(w, ", \"extents\": [");
		free(q);
		break;
	case DT_FORMAT_DDRESCUE:
		put_comment(w, "# Mapfile. Created by dirtyctl from dm-dirtytrack device ",
			    d->device);
		if (d->comment)
			put_comment(w, "# ", d->comment);
		dt_writer_puts(w, "# current_pos  current_status  current_pass\n"
				  "0x00000000     +               1\n"
				  "#      pos        size  status\n");
		break;
	}
}

void dt_dump_extent(struct dt_dump *d, uint64_t start, uint64_t nr)
{
	struct dt_writer *w = d->w;
	char *p, *s;

	if (d->format == DT_FORMAT_DDRESCUE) {
		if (start > d->pos)
			put_ddrescue_line(w, d->pos, start - d->pos, '?');
		put_ddrescue_line(w, start, nr, '+');
		d->pos = start + nr;
		d->extents++;
		return;
	}
	p = s = dt_writer_room(w, DT_WRITER_LINE_MAX);
	if (!p)
		return;
	switch (d->format) {
	case DT_FORMAT_RANGES:
		p += dt_u64_to_dec(p, start);
		*p++ = ' ';
		p += dt_u64_to_dec(p, nr);
		*p++ = '\n';
		break;
	case DT_FORMAT_BYTES:
		p += dt_u64_to_dec(p, start << 9);
		*p++ = ' ';
		p += dt_u64_to_dec(p, nr << 9);
		*p++ = '\n';
		break;
	case DT_FORMAT_JSON:
		if (d->extents) {
			memcpy(p, ",\n  {\"offset\": ", 15);
			p += 15;
		} else {
			memcpy(p, "\n  {\"offset\": ", 14);
			p += 14;
		}
		p += dt_u64_to_dec(p, start << 9);
		memcpy(p, ", \"length\": ", 12);
		p += 12;
		p += dt_u64_to_dec(p, nr << 9);
		*p++ = '}';
		break;
	case DT_FORMAT_DDRESCUE:
		break;
	}
	w->len += (size_t)(p - s);
	d->extents++;
}

int dt_dump_end(struct dt_dump *d)
{
	switch (d->format) {
	case DT_FORMAT_RANGES:
	case DT_FORMAT_BYTES:
		break;
	case DT_FORMAT_JSON:
		dt_writer_puts(d->w, d->extents ? "\n]}\n" : "]}\n");
		break;
	case DT_FORMAT_DDRESCUE:
		if (d->pos < d->geo->dev_sectors)
			put_ddrescue_line(d->w, d->pos, d->geo->dev_sectors - d->pos, '?');
		break;
	}
	return dt_writer_flush(d->w);
}

/* Clusters to device sectors, the last cluster clipped to the target. */
static int dump_cluster_extent(void *ctx, uint64_t first, uint64_t nr)
{
	struct dt_dump *d = ctx;
	const struct dt_geometry *g = d->geo;
	uint64_t from = first * g->cluster_sectors;
	uint64_t to = (first + nr) * g->cluster_sectors;

	if (to > g->length)
		to = g->length;
	dt_dump_extent(d, g->start + from, to - from);
	return d->w->err;
}

int dt_dump_bitmap(struct dt_dump *d, const uint64_t *words)
{
	int ret;

	dt_dump_begin(d);
	ret = dt_walk_extents(words, d->geo->clusters, dump_cluster_extent, d);
	if (ret)
		return ret;
	return dt_dump_end(d);
}
