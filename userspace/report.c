// SPDX-License-Identifier: GPL-2.0-only OR MIT
/*
 * What "dirtyctl status" prints: human, JSON and KEY=value export.
 * See report.h for the contracts.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"
#include "bitmap.h"
#include "json.h"
#include "strutils.h"

int dt_print_status_json(FILE *f, const struct dt_status_report *r)
{
	const struct dt_status *st = r->st;
	struct dt_json j;

	dt_json_begin(&j, f);
	if (dt_json_str(&j, "device", r->name) || dt_json_str(&j, "uuid", st->uuid))
		return -ENOMEM;
	dt_json_u64(&j, "sequence", st->sequence);
	dt_json_u64(&j, "cluster_sectors", st->cluster_sectors);
	dt_json_u64(&j, "clusters", st->clusters);
	dt_json_u64(&j, "dirty_clusters", st->dirty_clusters);
	dt_json_u64_or_null(&j, "frozen_clusters", st->has_frozen, st->frozen_clusters);
	if (dt_json_str(&j, "mode", st->mode) || dt_json_str(&j, "health", st->health))
		return -ENOMEM;
	dt_json_bool(&j, "suspended", r->suspended);
	dt_json_u64(&j, "start_sector", r->geo->start);
	dt_json_u64(&j, "length_sectors", r->geo->length);
	dt_json_u64(&j, "size_bytes", r->geo->length << 9);
	if (dt_json_str_or_null(&j, "frozen_id", st->frozen_id))
		return -ENOMEM;
	if (st->reports_snapshot) {
		if (dt_json_str_or_null(&j, "snapshot", strcmp(st->snapshot, "-") ?
					st->snapshot : NULL))
			return -ENOMEM;
		dt_json_u64_or_null(&j, "store_used_sectors", st->has_store,
				    st->store_used_sectors);
		dt_json_u64_or_null(&j, "store_sectors", st->has_store, st->store_sectors);
	}
	dt_json_end(&j);
	return 0;
}

/* One KEY=value line, the value quoted for the shell. */
static void export_str(FILE *f, const char *key, const char *value)
{
	fprintf(f, "%s=", key);
	dt_shell_quote_put(f, value);
	fputc('\n', f);
}

static void export_u64(FILE *f, const char *key, int present, uint64_t v)
{
	if (present)
		fprintf(f, "%s=%llu\n", key, (unsigned long long)v);
	else
		fprintf(f, "%s=\n", key);
}

void dt_print_status_export(FILE *f, const struct dt_status_report *r)
{
	const struct dt_status *st = r->st;

	export_str(f, "DEVICE", r->name);
	export_str(f, "UUID", st->uuid);
	export_u64(f, "SEQUENCE", 1, st->sequence);
	export_u64(f, "CLUSTER_SECTORS", 1, st->cluster_sectors);
	export_u64(f, "CLUSTERS", 1, st->clusters);
	export_u64(f, "DIRTY_CLUSTERS", 1, st->dirty_clusters);
	export_u64(f, "FROZEN_CLUSTERS", st->has_frozen, st->frozen_clusters);
	export_str(f, "FROZEN_ID", st->frozen_id);
	export_str(f, "MODE", st->mode);
	export_str(f, "HEALTH", st->health);
	if (st->reports_snapshot) {
		export_str(f, "SNAPSHOT", st->snapshot);
		export_u64(f, "STORE_USED_SECTORS", st->has_store, st->store_used_sectors);
		export_u64(f, "STORE_SECTORS", st->has_store, st->store_sectors);
	}
}

static const char *health_explained(const char *health)
{
	if (!strcmp(health, DT_HEALTH_UNCLEAN))
		return "the device was not shut down cleanly: every cluster counts as "
		       "changed until the next clear or commit";
	if (!strcmp(health, DT_HEALTH_METADATA_ERROR))
		return "the metadata device failed: tracking goes on in memory, and "
		       "every cluster will count as changed after the next activation";
	return NULL;
}

void dt_print_status_human(FILE *f, const struct dt_status_report *r, int exact)
{
	const struct dt_status *st = r->st;
	char changed[DT_HUMAN_MAX], size[DT_HUMAN_MAX], cluster[DT_HUMAN_MAX];
	char frozen[DT_HUMAN_MAX];
	uint64_t per_cell;
	const char *why;
	size_t width, i;

	fprintf(f, "%s: %s of %s changed (%llu of %llu clusters of %s), frozen: ", r->name,
		dt_size_or_bytes(dt_clusters_bytes(r->geo, st->dirty_clusters), exact, changed),
		dt_size_or_bytes(r->geo->length << 9, exact, size),
		(unsigned long long)st->dirty_clusters, (unsigned long long)st->clusters,
		dt_size_or_bytes((uint64_t)st->cluster_sectors << 9, exact, cluster));
	if (st->has_frozen)
		fprintf(f, "%s (%llu clusters)",
			dt_size_or_bytes(dt_clusters_bytes(r->geo, st->frozen_clusters), exact,
					 frozen),
			(unsigned long long)st->frozen_clusters);
	else
		fputs("none", f);
	fprintf(f, ", mode %s, health %s, sequence %llu%s\n", st->mode, st->health,
		(unsigned long long)st->sequence, r->suspended ? ", suspended" : "");
	fprintf(f, "uuid: %s\n", st->uuid);
	if (st->frozen_id[0])
		fprintf(f, "frozen id: %s\n", st->frozen_id);
	if (st->has_store)
		fprintf(f, "snapshot: %s, store %s of %s used\n", st->snapshot,
			dt_size_or_bytes(st->store_used_sectors << 9, exact, changed),
			dt_size_or_bytes(st->store_sectors << 9, exact, size));
	else if (st->reports_snapshot)
		fputs("snapshot: none (no snapshot store in the table)\n", f);
	why = health_explained(st->health);
	if (why)
		fprintf(f, "note: %s\n", why);
	if (!r->map) {
		fprintf(f, "map: unavailable (%s)\n", r->map_error ? r->map_error : "unknown");
		return;
	}
	width = strlen(r->map);
	per_cell = (st->clusters + width - 1) / width;
	fprintf(f, "map: %zu cells of %s%llu cluster%s; %s\n", width,
		st->clusters % width ? "about " : "", (unsigned long long)per_cell,
		per_cell == 1 ? "" : "s", DT_MAP_LEGEND);
	for (i = 0; i < width; i += DT_MAP_LINE)
		fprintf(f, "  |%.*s|\n", DT_MAP_LINE, r->map + i);
}
