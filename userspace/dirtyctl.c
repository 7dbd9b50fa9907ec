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
#include <unistd.h>

#include "dm.h"
#include "inspect.h"
#include "output.h"
#include "parse.h"

#ifndef DIRTYCTL_VERSION
#define DIRTYCTL_VERSION "unknown"
#endif

#define PROG "dirtyctl"
#define EXIT_USAGE 2

enum {
	OPT_JSON	= 1 << 0,
	OPT_BYTES	= 1 << 1,
	OPT_OUTPUT	= 1 << 2,
	OPT_FORMAT	= 1 << 3,
	OPT_FROZEN	= 1 << 4,
};

/* Long option names by flag, for "option --x is not valid with y". */
static const char *const option_names[] = {
	"--json", "--bytes", "--output", "--format", "--frozen",
};

struct dt_control {
	const struct dt_command *cmd;
	char **args;			/* positional arguments after the command */
	int nargs;
	unsigned int options;		/* OPT_* given on the command line */
	const char *output;		/* -o FILE */
	enum dt_format format;		/* --format, or json with -J */
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

/* "dirtyctl: <message>" on stderr, without the newline. */
static void __attribute__((format(printf, 1, 0))) vmessage(const char *fmt, va_list ap)
{
	fputs(PROG ": ", stderr);
	vfprintf(stderr, fmt, ap);
}

static void __attribute__((format(printf, 1, 2))) warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmessage(fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int __attribute__((format(printf, 1, 2))) usage_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmessage(fmt, ap);
	va_end(ap);
	fputs("\nTry '" PROG " --help' for more information.\n", stderr);
	return EXIT_USAGE;
}

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
	t->geo.start = t->dev.start;
	t->geo.length = t->dev.length;
	t->geo.dev_sectors = t->dev.dev_sectors;
	if (dt_parse_status(t->dev.status, &t->status)) {
		warnx("%s: malformed status from target", arg);
		goto fail;
	}
	t->geo.cluster_sectors = t->status.cluster_sectors;
	t->geo.clusters = t->status.clusters;
	if (dt_geometry_check(&t->geo)) {
		warnx("%s: status of the target does not match its table", arg);
		goto fail;
	}
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

static int cmd_checkpoint(struct dt_control *ctl)
{
	return simple_message(ctl, DT_MSG_CHECKPOINT);
}

static int cmd_commit(struct dt_control *ctl)
{
	return simple_message(ctl, DT_MSG_COMMIT);
}

static int cmd_rollback(struct dt_control *ctl)
{
	return simple_message(ctl, DT_MSG_ROLLBACK);
}

static int cmd_mark(struct dt_control *ctl)
{
	uint64_t start, nr, rel, end;
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
	rel = start - t.geo.start;
	snprintf(msg, sizeof(msg), "%s %llu %llu", DT_MSG_MARK,
		 (unsigned long long)rel, (unsigned long long)nr);
	ret = send_to_target(&t, DT_MSG_MARK, msg);
out:
	dt_device_free(&t.dev);
	return ret;
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
	char uuid[DT_UUID_STR_LEN];
	struct dt_json j;
	unsigned int i, n = 0;

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
	dt_json_key(&j, "flags");
	fputc('[', stdout);
	for (i = 0; i < sizeof(sb_flags) / sizeof(sb_flags[0]); i++)
		if (m->flags & sb_flags[i].flag)
			printf("%s\"%s\"", n++ ? ", " : "", sb_flags[i].name);
	fputc(']', stdout);
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
	  1, 1, OPT_JSON | OPT_BYTES },
	{ "dump", cmd_dump, "DEV", "list the changed extents",
	  1, 1, OPT_JSON | OPT_FROZEN | OPT_FORMAT | OPT_OUTPUT },
	{ "clear", cmd_clear, "DEV", "forget all changes (after a full backup)",
	  1, 1, 0 },
	{ "checkpoint", cmd_checkpoint, "DEV", "freeze the changes for a backup",
	  1, 1, 0 },
	{ "commit", cmd_commit, "DEV", "drop the frozen changes: the backup succeeded",
	  1, 1, 0 },
	{ "rollback", cmd_rollback, "DEV", "merge the frozen changes back: the backup failed",
	  1, 1, 0 },
	{ "mark", cmd_mark, "DEV START_SECTOR NR_SECTORS", "mark an extent changed by hand",
	  3, 3, 0 },
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

		snprintf(syn, sizeof(syn), "%s %s", commands[i].name, commands[i].args);
		fprintf(out, " %-36s %s\n", syn, commands[i].help);
	}
	fputs("\nOptions:\n"
	      " -J, --json               JSON output (status, inspect; dump: --format json)\n"
	      " -b, --bytes              print sizes in bytes (status, inspect)\n"
	      "     --format FORMAT      dump as ranges (default), bytes, json or ddrescue\n"
	      "     --frozen             dump the frozen set of the checkpoint\n"
	      " -o, --output FILE        dump into FILE, replaced atomically\n"
	      "\n"
	      " -h, --help               display this help\n"
	      " -V, --version            display version\n"
	      "\nOffsets are 512-byte sectors (ranges) or bytes (bytes, json, ddrescue)\n"
	      "of the whole dm device.\n"
	      "\nFor more details see dirtyctl(8).\n", out);
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
	enum { OPT_FORMAT_LONG = 0x100, OPT_FROZEN_LONG };
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "json", no_argument, NULL, 'J' },
		{ "bytes", no_argument, NULL, 'b' },
		{ "output", required_argument, NULL, 'o' },
		{ "format", required_argument, NULL, OPT_FORMAT_LONG },
		{ "frozen", no_argument, NULL, OPT_FROZEN_LONG },
		{ NULL, 0, NULL, 0 },
	};
	struct dt_control ctl = { .format = DT_FORMAT_RANGES };
	const char *format_name = NULL;
	unsigned int bad, i;
	int c;

	atexit(close_stdout);
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":hVJbo:", longopts, NULL)) != -1) {
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
