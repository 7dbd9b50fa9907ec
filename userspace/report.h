/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/*
 * What "dirtyctl status" prints: human, JSON and KEY=value export.
 */
#ifndef DIRTYCTL_REPORT_H
#define DIRTYCTL_REPORT_H

#include <stdio.h>

#include "status.h"

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

#endif
