// SPDX-License-Identifier: GPL-2.0-only OR MIT
/*
 * dirtyctl - control a dm-dirtytrack device: show and dump the clusters
 * that changed, checkpoint them for a backup, commit or roll back.
 *
 * Shape after util-linux blkzone: a table of commands with their
 * argument counts, options and help; one control struct with the parsed
 * command line; usage() loops over the table.  Talking to the target is
 * dm.c, everything that parses or formats is parse.c, offline metadata is
 * inspect.c.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/fs.h>

#include <libsmartcols.h>

#include "dm.h"
#include "inspect.h"
#include "output.h"
#include "parse.h"

#ifndef DIRTYCTL_VERSION
#define DIRTYCTL_VERSION "unknown"
#endif

#define PROG "dirtyctl"
#include "c.h"

enum {
	OPT_JSON	= 1 << 0,
	OPT_BYTES	= 1 << 1,
	OPT_OUTPUT	= 1 << 2,
	OPT_FORMAT	= 1 << 3,
	OPT_FROZEN	= 1 << 4,
	OPT_EXPORT	= 1 << 5,
	OPT_ID		= 1 << 6,
	OPT_NOHEADINGS	= 1 << 7,
	OPT_RAW		= 1 << 8,
	OPT_FREEZE	= 1 << 9,
	OPT_REMOVE	= 1 << 10,
};

/* Long option names by flag, for "option --x is not valid with y". */
static const char *const option_names[] = {
	"--json", "--bytes", "--output", "--format", "--frozen", "--export", "--id",
	"--noheadings", "--raw", "--freeze", "--remove",
};

struct dt_control {
	const struct dt_command *cmd;
	char **args;			/* positional arguments after the command */
	int nargs;
	unsigned int options;		/* OPT_* given on the command line */
	const char *output;		/* -o FILE; list: -o COLUMNS */
	enum dt_format format;		/* --format, or json with -J */
	char frozen_id[DT_FROZEN_ID_LEN + 1]; /* --id, "" without */
};

struct dt_command {
	const char *name;
	int (*handler)(struct dt_control *ctl);
	const char *args;
	const char *help;
	int min_args;
	int max_args;
	unsigned int options;		/* OPT_* this command accepts */
};

/* A dm device with its dirtytrack target, looked up and checked. */
struct dt_target {
	const char *arg;		/* DEV as the user wrote it */
	struct dt_device dev;
	struct dt_status status;
	struct dt_geometry geo;
};

/* ------------------------------------------------------------------ */
/* Messages to the user                                                */
/* ------------------------------------------------------------------ */

/* "dirtyctl: <dev>: <what a failed @verb with -@err means>", exit 1. */
static int fail_errno(const char *dev, const char *verb, int err)
{
	const char *why;

	if (err == -EPERM || err == -EACCES) {
		warnx("needs root (cannot open /dev/mapper/control)");
		return EXIT_FAILURE;
	}
	if (err == -ENODEV) {
		warnx("device-mapper is not available (cannot open /dev/mapper/control)");
		return EXIT_FAILURE;
	}
	why = dt_message_error(verb, -err);
	warnx("%s: %s", dev, why ? why : strerror(-err));
	return EXIT_FAILURE;
}

/* ------------------------------------------------------------------ */
/* The target                                                          */
/* ------------------------------------------------------------------ */

/*
 * Looks up @arg and checks that it is a dirtytrack device with a sound
 * status line; with @need_resumed also that it is not suspended.
 * Returns 0, or the exit status after printing why not.
 */
/*
 * Checks the dirtytrack target of a looked-up device: a sound status
 * line that matches the table.  Returns 0, or 1 after printing why not.
 */
static int check_target(struct dt_target *t)
{
	const char *arg = t->arg;

	t->geo.start = t->dev.start;
	t->geo.length = t->dev.length;
	t->geo.dev_sectors = t->dev.dev_sectors;
	if (dt_parse_status(t->dev.status, &t->status)) {
		warnx("%s: malformed status from target", arg);
		return EXIT_FAILURE;
	}
	t->geo.cluster_sectors = t->status.cluster_sectors;
	t->geo.clusters = t->status.clusters;
	if (dt_geometry_check(&t->geo)) {
		warnx("%s: status of the target does not match its table", arg);
		return EXIT_FAILURE;
	}
	return 0;
}

static int open_target(const char *arg, struct dt_target *t, int need_resumed)
{
	int ret;

	memset(t, 0, sizeof(*t));
	t->arg = arg;
	ret = dt_lookup_device(arg, &t->dev);
	if (ret == -ENOTBLK) {
		warnx("%s: not a device-mapper device", arg);
		return EXIT_FAILURE;
	}
	if (ret)
		return fail_errno(arg, "", ret);
	if (!t->dev.found) {
		if (t->dev.first_type[0])
			warnx("%s: not a dirtytrack device (target type %s)", arg,
			      t->dev.first_type);
		else
			warnx("%s: not a dirtytrack device (no table loaded)", arg);
		goto fail;
	}
	if (check_target(t))
		goto fail;
	if (need_resumed && t->dev.suspended) {
		warnx("%s: device is suspended; resume it first", arg);
		goto fail;
	}
	return 0;
fail:
	dt_device_free(&t->dev);
	return EXIT_FAILURE;
}

struct bitmap_fetch {
	const char *name;
	uint64_t sector;
	const char *set;
};

static int fetch_page(void *ctx, uint64_t first_group, char **reply)
{
	const struct bitmap_fetch *f = ctx;
	char msg[64];

	snprintf(msg, sizeof(msg), "%s %s %llu", DT_MSG_BITMAP, f->set,
		 (unsigned long long)first_group);
	return dt_send_message(f->name, f->sector, msg, reply);
}

/* Reads the live or the frozen set into a new array; 0 or -errno. */
static int read_bitmap(const struct dt_target *t, int frozen, uint64_t **words)
{
	struct bitmap_fetch f = {
		.name = t->dev.name,
		.sector = t->geo.start,
		.set = frozen ? DT_SET_FROZEN : DT_SET_LIVE,
	};
	uint64_t groups = dt_groups(t->geo.clusters);
	int ret;

	if (groups > SIZE_MAX / sizeof(**words))
		return -ENOMEM;
	*words = calloc((size_t)groups, sizeof(**words));
	if (!*words)
		return -ENOMEM;
	ret = dt_read_bitmap(fetch_page, &f, t->geo.clusters, *words);
	if (ret) {
		free(*words);
		*words = NULL;
	}
	return ret;
}

/* ------------------------------------------------------------------ */
/* status                                                              */
/* ------------------------------------------------------------------ */

/* The status map from the live set; a NUL-terminated line or why not. */
static const char *status_map(const struct dt_target *t, char map[DT_MAP_WIDTH + 1])
{
	const struct dt_status *st = &t->status;
	unsigned int width = st->clusters < DT_MAP_WIDTH ? (unsigned int)st->clusters :
			     DT_MAP_WIDTH;
	uint64_t *words;
	const char *why;
	int ret;

	if (st->dirty_clusters == 0 || st->dirty_clusters == st->clusters) {
		/* Nothing to read: all clean or all dirty. */
		memset(map, st->dirty_clusters ? '#' : ' ', width);
		map[width] = '\0';
		return NULL;
	}
	ret = read_bitmap(t, 0, &words);
	if (ret) {
		why = dt_message_error(DT_MSG_BITMAP, -ret);
		return why ? why : strerror(-ret);
	}
	dt_dirty_map(words, st->clusters, width, map);
	free(words);
	return NULL;
}

static int cmd_status(struct dt_control *ctl)
{
	char map[DT_MAP_WIDTH + 1];
	struct dt_status_report r;
	struct dt_target t;
	int ret = open_target(ctl->args[0], &t, 0);

	if (ret)
		return ret;
	r = (struct dt_status_report) {
		.name = t.dev.name,
		.st = &t.status,
		.geo = &t.geo,
		.suspended = t.dev.suspended,
	};
	if (ctl->options & OPT_JSON) {
		if (dt_print_status_json(stdout, &r))
			ret = fail_errno(t.arg, "", -ENOMEM);
	} else if (ctl->options & OPT_EXPORT) {
		dt_print_status_export(stdout, &r);
	} else {
		r.map_error = status_map(&t, map);
		r.map = r.map_error ? NULL : map;
		dt_print_status_human(stdout, &r, !!(ctl->options & OPT_BYTES));
	}
	dt_device_free(&t.dev);
	return ret;
}

/* ------------------------------------------------------------------ */
/* dump                                                                */
/* ------------------------------------------------------------------ */

static int cmd_dump(struct dt_control *ctl)
{
	int frozen = !!(ctl->options & OPT_FROZEN);
	const char *out_name;
	struct dt_writer w;
	struct dt_dump d;
	struct dt_target t;
	struct dt_output o;
	uint64_t *words = NULL;
	char comment[160];
	int ret;

	ret = open_target(ctl->args[0], &t, 0);
	if (ret)
		return ret;
	if (frozen && !t.status.has_frozen) {
		ret = fail_errno(t.arg, DT_MSG_BITMAP, -ENOENT);
		goto out;
	}
	ret = read_bitmap(&t, frozen, &words);
	if (ret) {
		ret = fail_errno(t.arg, DT_MSG_BITMAP, ret);
		goto out;
	}

	out_name = ctl->output && strcmp(ctl->output, "-") ? ctl->output : "standard output";
	ret = dt_output_open(&o, ctl->output);
	if (ret) {
		warnx("%s: %s", out_name, strerror(-ret));
		ret = EXIT_FAILURE;
		goto out;
	}
	snprintf(comment, sizeof(comment), "%s set, uuid %s, sequence %llu, cluster_sectors %u",
		 frozen ? "frozen" : "live", t.status.uuid,
		 (unsigned long long)t.status.sequence, t.geo.cluster_sectors);
	d = (struct dt_dump) {
		.w = &w,
		.format = ctl->format,
		.geo = &t.geo,
		.device = t.dev.name,
		.comment = comment,
	};
	ret = dt_writer_init(&w, o.fd);
	if (!ret)
		ret = dt_dump_bitmap(&d, words);
	dt_writer_free(&w);
	ret = ret ? ret : dt_output_close(&o, 1);
	if (ret) {
		dt_output_close(&o, 0);
		warnx("%s: %s", out_name, strerror(-ret));
		ret = EXIT_FAILURE;
	}
out:
	free(words);
	dt_device_free(&t.dev);
	return ret;
}

/* ------------------------------------------------------------------ */
/* clear, checkpoint, commit, rollback, mark                           */
/* ------------------------------------------------------------------ */

static int send_to_target(const struct dt_target *t, const char *verb, const char *msg)
{
	int ret = dt_send_message(t->dev.name, t->geo.start, msg, NULL);

	return ret ? fail_errno(t->arg, verb, ret) : EXIT_SUCCESS;
}

static int simple_message(struct dt_control *ctl, const char *verb)
{
	struct dt_target t;
	int ret = open_target(ctl->args[0], &t, 1);

	if (ret)
		return ret;
	ret = send_to_target(&t, verb, verb);
	dt_device_free(&t.dev);
	return ret;
}

static int cmd_clear(struct dt_control *ctl)
{
	return simple_message(ctl, DT_MSG_CLEAR);
}

/*
 * The new frozen set's id on stdout: the one line a backup job keeps to
 * commit or roll back exactly this set.  A target from before frozen set
 * ids replies nothing, and nothing is printed.
 */
/*
 * The mount point of a file system on dev_t @maj:@min, from
 * /proc/self/mountinfo (octal escapes undone), in @buf; 0 when found,
 * 1 when nothing is mounted from it, -errno when it cannot be read.
 */
static int find_mount(unsigned int maj, unsigned int min, char *buf, size_t size)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	unsigned int ma, mi;
	char *line = NULL, mnt[4096];
	size_t cap = 0;
	int ret = 1;

	if (!f)
		return -errno;
	while (ret == 1 && getline(&line, &cap, f) > 0) {
		const char *p;
		size_t n = 0;

		if (sscanf(line, "%*u %*u %u:%u %*s %4095s", &ma, &mi, mnt) != 3 ||
		    ma != maj || mi != min)
			continue;
		for (p = mnt; *p && n + 1 < size; n++) {
			if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' &&
			    p[2] <= '7' && p[3] >= '0' && p[3] <= '7') {
				buf[n] = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
				p += 4;
			} else {
				buf[n] = *p++;
			}
		}
		buf[n] = '\0';
		ret = 0;
	}
	free(line);
	fclose(f);
	return ret;
}

/* Sends checkpoint to @t and prints the frozen set's id. */
static int take_checkpoint(const struct dt_target *t)
{
	char id[DT_FROZEN_ID_LEN + 1];
	char *reply = NULL;
	int ret = dt_send_message(t->dev.name, t->geo.start, DT_MSG_CHECKPOINT, &reply);

	if (ret) {
		ret = fail_errno(t->arg, DT_MSG_CHECKPOINT, ret);
		goto out;
	}
	switch (dt_parse_checkpoint_reply(reply, id)) {
	case 0:
		printf("%s\n", id);
		break;
	case 1:
		break;
	default:
		warnx("%s: checkpoint taken, but the target's reply is not a frozen set id",
		      t->arg);
		ret = EXIT_FAILURE;
	}
out:
	free(reply);
	return ret;
}

/*
 * checkpoint --freeze: a file system mounted from the device is frozen
 * (FIFREEZE) for the checkpoint only and always thawed, also when the
 * checkpoint fails; the signals that end a job are held meanwhile so
 * that it is never left frozen.  Nothing mounted: a plain checkpoint.
 */
static int frozen_checkpoint(const struct dt_target *t)
{
	char mnt[4096];
	sigset_t block, old;
	int fd, ret, found = find_mount(t->dev.major, t->dev.minor, mnt, sizeof(mnt));

	if (found < 0) {
		warnx("%s: cannot read /proc/self/mountinfo: %s", t->arg, strerror(-found));
		return EXIT_FAILURE;
	}
	if (found)
		return take_checkpoint(t);
	fd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		warnx("%s: cannot open mount point %s to freeze it: %s", t->arg, mnt,
		      strerror(errno));
		return EXIT_FAILURE;
	}
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGQUIT);
	sigaddset(&block, SIGPIPE);
	sigprocmask(SIG_BLOCK, &block, &old);
	if (ioctl(fd, FIFREEZE, 0) < 0) {
		warnx("%s: cannot freeze the file system on %s: %s; no checkpoint taken",
		      t->arg, mnt, strerror(errno));
		ret = EXIT_FAILURE;
		goto out;
	}
	ret = take_checkpoint(t);
	if (ioctl(fd, FITHAW, 0) < 0) {
		warnx("%s: cannot thaw the file system on %s: %s; thaw it with fsfreeze -u %s",
		      t->arg, mnt, strerror(errno), mnt);
		ret = EXIT_FAILURE;
	}
out:
	close(fd);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return ret;
}

static int cmd_checkpoint(struct dt_control *ctl)
{
	struct dt_target t;
	int ret = open_target(ctl->args[0], &t, 1);

	if (ret)
		return ret;
	if (ctl->options & OPT_FREEZE)
		ret = frozen_checkpoint(&t);
	else
		ret = take_checkpoint(&t);
	dt_device_free(&t.dev);
	return ret;
}

/* commit or rollback, of the set with the --id given, if one is. */
static int end_checkpoint(struct dt_control *ctl, const char *verb, const char *undone)
{
	struct dt_target t;
	char msg[64];
	int ret = open_target(ctl->args[0], &t, 1);

	if (ret)
		return ret;
	snprintf(msg, sizeof(msg), "%s%s%s", verb, ctl->frozen_id[0] ? " " : "",
		 ctl->frozen_id);
	ret = dt_send_message(t.dev.name, t.geo.start, msg, NULL);
	if (ret == -ESTALE && ctl->frozen_id[0]) {
		warnx("%s: the frozen set is not %s (another checkpoint took its place); "
		      "nothing %s", t.arg, ctl->frozen_id, undone);
		ret = EXIT_FAILURE;
	} else if (ret) {
		ret = fail_errno(t.arg, verb, ret);
	}
	dt_device_free(&t.dev);
	return ret;
}

static int cmd_commit(struct dt_control *ctl)
{
	return end_checkpoint(ctl, DT_MSG_COMMIT, "committed");
}

static int cmd_rollback(struct dt_control *ctl)
{
	return end_checkpoint(ctl, DT_MSG_ROLLBACK, "rolled back");
}

/*
 * send_extent: MESSAGE <target-relative start> <nr> for a device extent
 * given as START_SECTOR NR_SECTORS (sectors of DEV, as dump prints them),
 * checked against the target first.  mark and release.
 */
static int send_extent(struct dt_control *ctl, const char *message)
{
	uint64_t start, nr, end;
	const char *why;
	struct dt_target t;
	char msg[96];
	int ret;

	why = dt_parse_sectors(ctl->args[1], &start);
	if (why)
		return usage_error("invalid START_SECTOR '%s': %s", ctl->args[1], why);
	why = dt_parse_sectors(ctl->args[2], &nr);
	if (why)
		return usage_error("invalid NR_SECTORS '%s': %s", ctl->args[2], why);
	if (nr == 0)
		return usage_error("invalid NR_SECTORS '%s': must be greater than 0",
				   ctl->args[2]);

	ret = open_target(ctl->args[0], &t, 1);
	if (ret)
		return ret;
	end = t.geo.start + t.geo.length;
	if (start < t.geo.start || start >= end || nr > end - start) {
		warnx("%s: extent %llu+%llu lies outside the dirtytrack target "
		      "(sectors %llu to %llu)", t.arg, (unsigned long long)start,
		      (unsigned long long)nr, (unsigned long long)t.geo.start,
		      (unsigned long long)(end - 1));
		ret = EXIT_FAILURE;
		goto out;
	}
	snprintf(msg, sizeof(msg), "%s %llu %llu", message,
		 (unsigned long long)(start - t.geo.start), (unsigned long long)nr);
	ret = send_to_target(&t, message, msg);
out:
	dt_device_free(&t.dev);
	return ret;
}

static int cmd_mark(struct dt_control *ctl)
{
	return send_extent(ctl, DT_MSG_MARK);
}

/*
 * release: the backup has read a device extent; the target stops
 * preserving its whole clusters.
 */
static int cmd_release(struct dt_control *ctl)
{
	return send_extent(ctl, DT_MSG_RELEASE);
}

/*
 * view DEV: the read-only dirtytrack-view device NAME-view of the active
 * snapshot, as "dmsetup create --readonly"; its path on stdout.
 * view DEV --remove: remove it.
 */
static int cmd_view(struct dt_control *ctl)
{
	char view[DT_DM_NAME_MAX], params[DT_DM_NAME_MAX + 16];
	struct dt_device other;
	struct dt_target t;
	int ret = open_target(ctl->args[0], &t, !(ctl->options & OPT_REMOVE));

	if (ret)
		return ret;
	if ((size_t)snprintf(view, sizeof(view), "%s-view", t.dev.name) >= sizeof(view)) {
		warnx("%s: dm name too long for a view name", t.arg);
		ret = EXIT_FAILURE;
		goto out;
	}
	ret = dt_lookup_device(view, &other);
	dt_device_free(&other);
	if (ctl->options & OPT_REMOVE) {
		if (ret == -ENXIO) {
			warnx("%s: no view device %s", t.arg, view);
			ret = EXIT_FAILURE;
		} else if (ret) {
			ret = fail_errno(view, "", ret);
		} else {
			ret = dt_remove_device(view);
			if (ret == -EBUSY) {
				warnx("%s: view %s is in use; close it first", t.arg, view);
				ret = EXIT_FAILURE;
			} else if (ret) {
				ret = fail_errno(view, "", ret);
			}
		}
		goto out;
	}
	if (ret != -ENXIO) {
		if (!ret)
			warnx("%s: view %s exists; remove it first (dirtyctl view %s --remove)",
			      t.arg, view, t.arg);
		ret = ret ? fail_errno(view, "", ret) : EXIT_FAILURE;
		goto out;
	}
	if (!t.status.has_store) {
		warnx("%s: no snapshot store in the table (feature snapshot_store)", t.arg);
		ret = EXIT_FAILURE;
		goto out;
	}
	if (strcmp(t.status.snapshot, "active")) {
		warnx("%s: no active snapshot (snapshot is %s); take a checkpoint first",
		      t.arg, t.status.snapshot);
		ret = EXIT_FAILURE;
		goto out;
	}
	snprintf(params, sizeof(params), "/dev/mapper/%s", t.dev.name);
	ret = dt_create_readonly(view, t.geo.length, "dirtytrack-view", params);
	if (ret) {
		ret = fail_errno(view, "", ret);
		goto out;
	}
	printf("/dev/mapper/%s\n", view);
out:
	dt_device_free(&t.dev);
	return ret;
}

/* ------------------------------------------------------------------ */
/* list                                                                */
/* ------------------------------------------------------------------ */

enum {
	COL_NAME, COL_SIZE, COL_CLUSTER, COL_CLUSTERS, COL_DIRTY, COL_FROZEN,
	COL_FROZEN_ID, COL_MODE, COL_HEALTH, COL_SEQUENCE, COL_UUID,
};

enum { COL_TEXT, COL_COUNT, COL_BYTES };	/* what a cell holds */

static const struct list_column {
	const char *name;
	double width;			/* libsmartcols width hint */
	int flags;			/* SCOLS_FL_* */
	int kind;			/* COL_TEXT, COL_COUNT or COL_BYTES */
	int shown;			/* in the default set */
	const char *help;
} list_columns[] = {
	[COL_NAME] = { "NAME", 0.2, SCOLS_FL_NOEXTREMES, COL_TEXT, 1, "dm device name" },
	[COL_SIZE] = { "SIZE", 5, SCOLS_FL_RIGHT, COL_BYTES, 1, "size of the dm device" },
	[COL_CLUSTER] = { "CLUSTER", 5, SCOLS_FL_RIGHT, COL_BYTES, 1,
			  "cluster size (tracking granularity)" },
	[COL_CLUSTERS] = { "CLUSTERS", 5, SCOLS_FL_RIGHT, COL_COUNT, 0, "number of clusters" },
	[COL_DIRTY] = { "DIRTY", 5, SCOLS_FL_RIGHT, COL_BYTES, 1,
			"changed since the last commit or clear (live set)" },
	[COL_FROZEN] = { "FROZEN", 5, SCOLS_FL_RIGHT, COL_BYTES, 1,
			 "frozen by the checkpoint, empty when none" },
	[COL_FROZEN_ID] = { "FROZEN-ID", 16, 0, COL_TEXT, 1,
			    "id of the frozen set, empty when none" },
	[COL_MODE] = { "MODE", 10, 0, COL_TEXT, 1, "default or crash_safe" },
	[COL_HEALTH] = { "HEALTH", 10, 0, COL_TEXT, 1,
			 "ok, unclean_shutdown or metadata_error" },
	[COL_SEQUENCE] = { "SEQUENCE", 5, SCOLS_FL_RIGHT, COL_COUNT, 0,
			   "grows with every clear and commit" },
	[COL_UUID] = { "UUID", 36, 0, COL_TEXT, 0, "identity of the tracking history" },
};

#define NR_LIST_COLUMNS (sizeof(list_columns) / sizeof(list_columns[0]))

static int list_column_id(const char *name, size_t len)
{
	unsigned int i;

	for (i = 0; i < NR_LIST_COLUMNS; i++)
		if (strlen(list_columns[i].name) == len &&
		    !strncasecmp(list_columns[i].name, name, len))
			return (int)i;
	return -1;
}

/*
 * The columns of -o LIST ("+LIST" adds to the default ones) into @cols;
 * their number, or -1 after naming the unknown column.
 */
static int parse_list_columns(const char *spec, int cols[NR_LIST_COLUMNS * 2])
{
	unsigned int i;
	int n = 0;

	if (!spec || *spec == '+') {
		for (i = 0; i < NR_LIST_COLUMNS; i++)
			if (list_columns[i].shown)
				cols[n++] = (int)i;
		if (!spec)
			return n;
		spec++;
	}
	while (*spec) {
		size_t len = strcspn(spec, ",");
		int id = list_column_id(spec, len);

		if (id < 0 || n >= (int)NR_LIST_COLUMNS * 2) {
			usage_error("unknown column: %.*s", (int)len, spec);
			return -1;
		}
		cols[n++] = id;
		spec += len;
		if (*spec)
			spec++;
	}
	return n;
}

/* A size as lsblk prints it ("1.5G", "512B"), or bytes with @exact. */
static const char *list_size(uint64_t bytes, int exact, char buf[DT_HUMAN_MAX])
{
	char *p, *q;

	if (exact) {
		snprintf(buf, DT_HUMAN_MAX, "%llu", (unsigned long long)bytes);
		return buf;
	}
	dt_size_to_human(bytes, buf);
	for (p = q = buf; *p; p++)
		if (*p != ' ' && *p != 'i' && !(*p == 'B' && q > buf && q[-1] > '9'))
			*q++ = *p;
	*q = '\0';
	return buf;
}

/* The text of column @col for @t; NULL for an empty cell. */
static const char *list_cell(const struct dt_target *t, int col, int exact,
			     char buf[DT_HUMAN_MAX])
{
	const struct dt_status *st = &t->status;
	uint64_t v;

	switch (col) {
	case COL_SIZE:
		return list_size(t->geo.dev_sectors << 9, exact, buf);
	case COL_CLUSTER:
		return list_size((uint64_t)st->cluster_sectors << 9, exact, buf);
	case COL_CLUSTERS:
		v = st->clusters;
		break;
	case COL_DIRTY:
		return list_size(dt_clusters_bytes(&t->geo, st->dirty_clusters), exact, buf);
	case COL_FROZEN:
		if (!st->has_frozen)
			return NULL;
		return list_size(dt_clusters_bytes(&t->geo, st->frozen_clusters), exact, buf);
	case COL_FROZEN_ID:
		return st->frozen_id[0] ? st->frozen_id : NULL;
	case COL_MODE:
		return st->mode;
	case COL_HEALTH:
		return st->health;
	case COL_SEQUENCE:
		v = st->sequence;
		break;
	case COL_UUID:
		return st->uuid;
	default:
		return NULL;
	}
	snprintf(buf, DT_HUMAN_MAX, "%llu", (unsigned long long)v);
	return buf;
}

static int list_add_line(struct libscols_table *tb, const struct dt_target *t,
			 const int *cols, int ncols, int exact)
{
	struct libscols_line *ln = scols_table_new_line(tb, NULL);
	char buf[DT_HUMAN_MAX], *name;
	const char *cell;
	int i, ret = 0;

	if (!ln)
		return -ENOMEM;
	for (i = 0; i < ncols && !ret; i++) {
		if (cols[i] == COL_NAME) {
			/* libsmartcols escapes controls but passes bytes through. */
			name = dt_utf8_sanitize(t->dev.name);
			ret = name ? scols_line_refer_data(ln, (size_t)i, name) : -ENOMEM;
			if (ret)
				free(name);
			continue;
		}
		cell = list_cell(t, cols[i], exact, buf);
		if (cell)
			ret = scols_line_set_data(ln, (size_t)i, cell);
	}
	return ret;
}

/* Adds @name to @tb if it is a dirtytrack device; 1 when it is broken. */
static int list_device(struct libscols_table *tb, const char *name, const int *cols,
		       int ncols, int exact)
{
	struct dt_target t = { .arg = name };
	int ret = dt_lookup_device(name, &t.dev);

	if (ret == -ENXIO)
		return 0;		/* removed since the list was read */
	if (ret)
		return fail_errno(name, "", ret);
	if (t.dev.found) {
		ret = check_target(&t);
		if (!ret && list_add_line(tb, &t, cols, ncols, exact))
			ret = fail_errno(name, "", -ENOMEM);
	}
	dt_device_free(&t.dev);
	return ret;
}

static int cmd_list(struct dt_control *ctl)
{
	int exact = !!(ctl->options & OPT_BYTES), json = !!(ctl->options & OPT_JSON);
	int cols[NR_LIST_COLUMNS * 2], ncols, i, ret, status = EXIT_SUCCESS;
	struct libscols_table *tb;
	char **names, **p;

	ncols = parse_list_columns(ctl->output, cols);
	if (ncols < 0)
		return EXIT_USAGE;
	ret = dt_list_devices(&names);
	if (ret)
		return fail_errno("device-mapper", "", ret);
	scols_init_debug(0);
	tb = scols_new_table();
	if (!tb) {
		dt_names_free(names);
		return fail_errno("list", "", -ENOMEM);
	}
	scols_table_enable_json(tb, json);
	scols_table_set_name(tb, "dirtytrack");
	scols_table_enable_noheadings(tb, !!(ctl->options & OPT_NOHEADINGS));
	scols_table_enable_raw(tb, !!(ctl->options & OPT_RAW));
	for (i = 0; i < ncols; i++) {
		const struct list_column *c = &list_columns[cols[i]];
		struct libscols_column *cl = scols_table_new_column(tb, c->name, c->width,
								    c->flags);

		if (!cl) {
			status = fail_errno("list", "", -ENOMEM);
			goto out;
		}
		if (c->kind == COL_COUNT || (c->kind == COL_BYTES && exact))
			scols_column_set_json_type(cl, SCOLS_JSON_NUMBER);
	}
	for (p = names; *p; p++)
		if (list_device(tb, *p, cols, ncols, exact))
			status = EXIT_FAILURE;
	scols_print_table(tb);
out:
	scols_unref_table(tb);
	dt_names_free(names);
	return status;
}

/* ------------------------------------------------------------------ */
/* inspect                                                             */
/* ------------------------------------------------------------------ */

static const struct {
	uint32_t flag;
	const char *name;
} sb_flags[] = {
	{ DT_SB_FLAG_VALID, "valid" },
	{ DT_SB_FLAG_FROZEN, "frozen" },
	{ DT_SB_FLAG_UNCLEAN, "unclean" },
	{ DT_SB_FLAG_METADATA_ERROR, "metadata_error" },
};

static int inspect_json(const char *path, const struct dt_md_info *m, int in_use)
{
	int frozen = !!(m->flags & DT_SB_FLAG_FROZEN);
	char uuid[DT_UUID_STR_LEN], id[DT_FROZEN_ID_LEN + 1];
	struct dt_json j;
	unsigned int i;

	dt_format_uuid(m->uuid, uuid);
	dt_json_begin(&j, stdout);
	if (dt_json_str(&j, "device", path))
		return -ENOMEM;
	dt_json_bool(&j, "valid", !!(m->flags & DT_SB_FLAG_VALID));
	dt_json_str(&j, "uuid", uuid);
	dt_json_u64(&j, "sequence", m->sequence);
	dt_json_u64(&j, "generation", m->generation);
	dt_json_u64(&j, "version", m->version);
	dt_json_u64(&j, "data_sectors", m->data_sectors);
	dt_json_u64(&j, "cluster_sectors", m->cluster_sectors);
	dt_json_u64(&j, "clusters", m->clusters);
	dt_json_u64(&j, "bitmap_blocks", m->bitmap_blocks);
	dt_json_u64(&j, "dirty_clusters", m->dirty_clusters);
	dt_json_u64_or_null(&j, "frozen_clusters", frozen, m->frozen_clusters);
	dt_json_u64_or_null(&j, "frozen_sequence", frozen, m->frozen_sequence);
	if (m->frozen_id) {
		snprintf(id, sizeof(id), "%016llx", (unsigned long long)m->frozen_id);
		dt_json_str(&j, "frozen_id", id);
	} else {
		dt_json_null(&j, "frozen_id");
	}
	dt_json_array_begin(&j, "flags");
	for (i = 0; i < sizeof(sb_flags) / sizeof(sb_flags[0]); i++)
		if ((m->flags & sb_flags[i].flag) && dt_json_array_str(&j, sb_flags[i].name))
			return -ENOMEM;
	dt_json_array_end(&j);
	dt_json_u64(&j, "superblock_dirty_clusters", m->sb_dirty_clusters);
	dt_json_u64(&j, "superblock_frozen_clusters", m->sb_frozen_clusters);
	dt_json_u64(&j, "stray_bits", m->stray_bits);
	dt_json_bool(&j, "in_use", in_use);
	dt_json_end(&j);
	return 0;
}

static void print_count(const char *label, uint64_t counted, uint64_t stored)
{
	printf("%-17s%llu", label, (unsigned long long)counted);
	if (counted != stored)
		printf(" (the superblock counter says %llu)", (unsigned long long)stored);
	putchar('\n');
}

static void inspect_human(const char *path, const struct dt_md_info *m, int exact)
{
	char uuid[DT_UUID_STR_LEN], size[DT_HUMAN_MAX], cluster[DT_HUMAN_MAX];
	unsigned int i;

	dt_format_uuid(m->uuid, uuid);
	printf("%s: dirtytrack metadata, format version %u\n", path, m->version);
	printf("%-17s%s\n", "valid:", (m->flags & DT_SB_FLAG_VALID) ? "yes" :
	       "no (the target is active or was not shut down cleanly)");
	printf("%-17s%s\n", "uuid:", uuid);
	printf("%-17s%llu\n", "sequence:", (unsigned long long)m->sequence);
	printf("%-17s%llu\n", "generation:", (unsigned long long)m->generation);
	printf("%-17s%s (%llu sectors)\n", "data size:",
	       dt_size_or_bytes(m->data_sectors << 9, exact, size),
	       (unsigned long long)m->data_sectors);
	printf("%-17s%s (%u sectors)\n", "cluster size:",
	       dt_size_or_bytes((uint64_t)m->cluster_sectors << 9, exact, cluster),
	       m->cluster_sectors);
	printf("%-17s%llu\n", "clusters:", (unsigned long long)m->clusters);
	printf("%-17s%llu blocks each, live at block %llu, frozen at block %llu\n",
	       "bitmaps:", (unsigned long long)m->bitmap_blocks,
	       (unsigned long long)m->live_block, (unsigned long long)m->frozen_block);
	print_count("dirty clusters:", m->dirty_clusters, m->sb_dirty_clusters);
	if (m->flags & DT_SB_FLAG_FROZEN) {
		printf("%-17s%llu (frozen at sequence %llu)", "frozen clusters:",
		       (unsigned long long)m->frozen_clusters,
		       (unsigned long long)m->frozen_sequence);
		if (m->frozen_clusters != m->sb_frozen_clusters)
			printf(" (the superblock counter says %llu)",
			       (unsigned long long)m->sb_frozen_clusters);
		putchar('\n');
		if (m->frozen_id)
			printf("%-17s%016llx\n", "frozen id:",
			       (unsigned long long)m->frozen_id);
	} else {
		printf("%-17snone\n", "frozen clusters:");
	}
	printf("%-17s", "flags:");
	for (i = 0; i < sizeof(sb_flags) / sizeof(sb_flags[0]); i++)
		if (m->flags & sb_flags[i].flag)
			printf("%s ", sb_flags[i].name);
	printf("%s\n", m->flags ? "" : "none");
	if (m->stray_bits)
		printf("warning: %llu bits set beyond the last cluster\n",
		       (unsigned long long)m->stray_bits);
}

static int cmd_inspect(struct dt_control *ctl)
{
	const char *path = ctl->args[0];
	struct dt_md_source src;
	struct dt_md_info info;
	uint64_t size;
	int fd, in_use, ret;

	ret = dt_md_open(path, &fd, &size, &in_use);
	if (ret == -ENOTBLK) {
		warnx("%s: not a block device or regular file", path);
		return EXIT_FAILURE;
	}
	if (ret) {
		warnx("%s: %s", path, strerror(-ret));
		return EXIT_FAILURE;
	}
	if (in_use)
		warnx("%s: in use (an active table owns it?); what it holds may be stale",
		      path);
	dt_md_source_fd(&src, &fd, size);
	ret = dt_md_inspect(&src, &info);
	close(fd);
	if (ret) {
		warnx("%s: %s", path, ret == -ENODATA ? "short read (device shrank?)" :
		      strerror(-ret));
		return EXIT_FAILURE;
	}
	switch (info.state) {
	case DT_MD_UNFORMATTED:
		warnx("%s: unformatted (all zero)", path);
		return EXIT_FAILURE;
	case DT_MD_CORRUPT:
		warnx("%s: %s", path, info.problem);
		return EXIT_FAILURE;
	case DT_MD_SOUND:
		break;
	}
	if (ctl->options & OPT_JSON) {
		if (inspect_json(path, &info, in_use))
			return fail_errno(path, "", -ENOMEM);
	} else {
		inspect_human(path, &info, !!(ctl->options & OPT_BYTES));
	}
	return EXIT_SUCCESS;
}

/* ------------------------------------------------------------------ */
/* Command line                                                        */
/* ------------------------------------------------------------------ */

static const struct dt_command commands[] = {
	{ "status", cmd_status, "DEV", "show what changed and the tracking state",
	  1, 1, OPT_JSON | OPT_BYTES | OPT_EXPORT },
	{ "list", cmd_list, "", "list every dirtytrack device and its state",
	  0, 0, OPT_JSON | OPT_BYTES | OPT_OUTPUT | OPT_NOHEADINGS | OPT_RAW },
	{ "dump", cmd_dump, "DEV", "list the changed extents",
	  1, 1, OPT_JSON | OPT_FROZEN | OPT_FORMAT | OPT_OUTPUT },
	{ "clear", cmd_clear, "DEV", "forget all changes (after a full backup)",
	  1, 1, 0 },
	{ "checkpoint", cmd_checkpoint, "DEV", "freeze the changes for a backup; print its id",
	  1, 1, OPT_FREEZE },
	{ "commit", cmd_commit, "DEV", "drop the frozen changes: the backup succeeded",
	  1, 1, OPT_ID },
	{ "rollback", cmd_rollback, "DEV", "merge the frozen changes back: the backup failed",
	  1, 1, OPT_ID },
	{ "mark", cmd_mark, "DEV START_SECTOR NR_SECTORS", "mark an extent changed by hand",
	  3, 3, 0 },
	{ "view", cmd_view, "DEV", "create (--remove: remove) the read-only snapshot view",
	  1, 1, OPT_REMOVE },
	{ "release", cmd_release, "DEV START_SECTOR NR_SECTORS",
	  "the backup has read an extent: stop preserving it", 3, 3, 0 },
	{ "inspect", cmd_inspect, "METADATA_DEV", "show a metadata device no table uses",
	  1, 1, OPT_JSON | OPT_BYTES },
};

static void __attribute__((noreturn)) usage(void)
{
	FILE *out = stdout;
	unsigned int i;

	fputs("\nUsage:\n " PROG " <command> [options] <device> [arguments]\n\n", out);
	fputs("Find the clusters of a dm-dirtytrack device that changed, for\n"
	      "incremental backups.\n\n", out);
	fputs("Commands:\n", out);
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		char syn[64];

		snprintf(syn, sizeof(syn), "%s%s%s", commands[i].name,
			 commands[i].args[0] ? " " : "", commands[i].args);
		fprintf(out, " %-36s %s\n", syn, commands[i].help);
	}
	fputs("\nOptions:\n"
	      " -J, --json               JSON output (status, list, inspect; dump: --format json)\n"
	      "     --export             status as KEY=value lines for a shell's eval\n"
	      " -b, --bytes              print sizes in bytes (status, list, inspect)\n"
	      "     --format FORMAT      dump as ranges (default), bytes, json or ddrescue\n"
	      "     --frozen             dump the frozen set of the checkpoint\n"
	      " -o, --output FILE        dump into FILE, replaced atomically\n"
	      " -o, --output LIST        list: the columns to show (+LIST: add to the default)\n"
	      " -n, --noheadings         list: no column headings\n"
	      " -r, --raw                list: raw output\n"
	      "     --id ID              commit, rollback: only the frozen set with this id\n"
	      "\n"
	      " -h, --help               display this help\n"
	      " -V, --version            display version\n"
	      "\nOffsets are 512-byte sectors (ranges) or bytes (bytes, json, ddrescue)\n"
	      "of the whole dm device.\n", out);
	fputs("\nColumns of list:\n", out);
	for (i = 0; i < NR_LIST_COLUMNS; i++)
		fprintf(out, " %10s  %s\n", list_columns[i].name, list_columns[i].help);
	fputs("\nFor more details see dirtyctl(8).\n", out);
	exit(EXIT_SUCCESS);
}

static const struct dt_command *find_command(const char *name)
{
	unsigned int i;

	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

static void close_stdout(void)
{
	if (fflush(stdout) || ferror(stdout) || close(STDOUT_FILENO)) {
		if (errno == EPIPE || errno == EBADF)
			_exit(EXIT_FAILURE);
		warnx("write error: %s", strerror(errno));
		_exit(EXIT_FAILURE);
	}
}

int main(int argc, char **argv)
{
	enum { OPT_FORMAT_LONG = 0x100, OPT_FROZEN_LONG, OPT_EXPORT_LONG, OPT_ID_LONG,
	       OPT_FREEZE_LONG, OPT_REMOVE_LONG };
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "json", no_argument, NULL, 'J' },
		{ "bytes", no_argument, NULL, 'b' },
		{ "output", required_argument, NULL, 'o' },
		{ "format", required_argument, NULL, OPT_FORMAT_LONG },
		{ "frozen", no_argument, NULL, OPT_FROZEN_LONG },
		{ "export", no_argument, NULL, OPT_EXPORT_LONG },
		{ "id", required_argument, NULL, OPT_ID_LONG },
		{ "noheadings", no_argument, NULL, 'n' },
		{ "raw", no_argument, NULL, 'r' },
		{ "freeze", no_argument, NULL, OPT_FREEZE_LONG },
		{ "remove", no_argument, NULL, OPT_REMOVE_LONG },
		{ NULL, 0, NULL, 0 },
	};
	struct dt_control ctl = { .format = DT_FORMAT_RANGES };
	const char *format_name = NULL, *id = NULL;
	unsigned int bad, i;
	int c;

	atexit(close_stdout);
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":hVJbo:nr", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage();
		case 'V':
			printf(PROG " %s\n", DIRTYCTL_VERSION);
			return EXIT_SUCCESS;
		case 'J':
			ctl.options |= OPT_JSON;
			break;
		case 'b':
			ctl.options |= OPT_BYTES;
			break;
		case 'o':
			ctl.options |= OPT_OUTPUT;
			ctl.output = optarg;
			break;
		case OPT_FORMAT_LONG:
			ctl.options |= OPT_FORMAT;
			format_name = optarg;
			break;
		case OPT_FROZEN_LONG:
			ctl.options |= OPT_FROZEN;
			break;
		case OPT_EXPORT_LONG:
			ctl.options |= OPT_EXPORT;
			break;
		case OPT_ID_LONG:
			ctl.options |= OPT_ID;
			id = optarg;
			break;
		case OPT_FREEZE_LONG:
			ctl.options |= OPT_FREEZE;
			break;
		case OPT_REMOVE_LONG:
			ctl.options |= OPT_REMOVE;
			break;
		case 'n':
			ctl.options |= OPT_NOHEADINGS;
			break;
		case 'r':
			ctl.options |= OPT_RAW;
			break;
		case ':':
			return usage_error("option '%s' requires an argument", argv[optind - 1]);
		default:
			if (optopt)
				return usage_error("invalid option -- '%c'", optopt);
			return usage_error("unrecognized option '%s'", argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return usage_error("no command specified");
	ctl.cmd = find_command(argv[optind]);
	if (!ctl.cmd)
		return usage_error("unknown command '%s'", argv[optind]);
	ctl.args = argv + optind + 1;
	ctl.nargs = argc - optind - 1;
	if (ctl.nargs < ctl.cmd->min_args)
		return usage_error("%s: missing argument: %s %s", ctl.cmd->name,
				   ctl.cmd->name, ctl.cmd->args);
	if (ctl.nargs > ctl.cmd->max_args)
		return usage_error("%s: too many arguments: %s %s", ctl.cmd->name,
				   ctl.cmd->name, ctl.cmd->args);
	for (i = 0; i < (unsigned int)ctl.nargs; i++)
		if (!ctl.args[i][0])
			return usage_error("%s: empty argument", ctl.cmd->name);
	bad = ctl.options & ~ctl.cmd->options;
	if (bad) {
		for (i = 0; !(bad & (1U << i)); i++)
			;
		return usage_error("option %s is not valid with %s", option_names[i],
				   ctl.cmd->name);
	}
	if ((ctl.options & OPT_JSON) && (ctl.options & OPT_EXPORT))
		return usage_error("--json conflicts with --export");
	if (id && dt_parse_frozen_id(id, strlen(id), 0, ctl.frozen_id))
		return usage_error("invalid frozen set id '%s': must be %d hex digits, "
				   "as checkpoint prints it", id, DT_FROZEN_ID_LEN);
	if (format_name && dt_format_from_name(format_name, &ctl.format))
		return usage_error("unknown format '%s' (ranges, bytes, json, ddrescue)",
				   format_name);
	if (ctl.cmd->handler == cmd_dump && (ctl.options & OPT_JSON)) {
		if (format_name && ctl.format != DT_FORMAT_JSON)
			return usage_error("--json conflicts with --format %s", format_name);
		ctl.format = DT_FORMAT_JSON;
	}

	dt_dm_init();
	return ctl.cmd->handler(&ctl);
}
