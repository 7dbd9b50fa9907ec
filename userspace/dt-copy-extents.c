// SPDX-License-Identifier: GPL-2.0-only OR MIT
/*
 * dt-copy-extents - copy a list of byte extents from one file or block
 * device to the same offsets of another, then make the copy durable.
 *
 * The copying half of scripts/dirtytrack-backup: it reads the extents that
 * "dirtyctl dump --format bytes" prints ("<offset> <length>" per line) on
 * standard input and copies each one in large chunks, so that a backup run
 * costs one process however many extents changed.
 *
 *   - The source is read with O_DIRECT where it allows it: a block device's
 *     page cache may hold data older than what a filesystem or an O_DIRECT
 *     writer put on the device, and a backup must read the device itself.
 *     Chunks the device refuses to read directly are read through the cache.
 *   - --sparse: every all-zero 4 KiB block of a regular destination is
 *     punched out (written as zeros where punching is not supported), so
 *     the image stays sparse where the device reads zeros, on every run,
 *     and is still exact where the destination held data before: a punched
 *     range reads zeros whatever it held.
 *   - A block-device destination is opened with O_EXCL: a mounted or
 *     otherwise claimed device is refused (EBUSY). A regular destination
 *     that does not exist is created with mode 0600: it holds a disk.
 *   - The destination is fsync()ed before success is reported.
 *   - Any failure stops the copy with one line on stderr that names the
 *     file, the offset and the cause; the exit status is 1.
 *   - --hash-to FILE hashes the manifest's clusters (Documentation/
 *     manifest.md) from the chunks while they are in memory and writes
 *     them to FILE for "dt-manifest update --leaves": the image is not
 *     read again.  Clusters an extent covers only in part are read back
 *     from DST after the last write.  Hashing never fails the copy: on a
 *     hashing error FILE is left without its trailer, which its reader
 *     refuses (and rehashes the image instead), and a warning is printed.
 *   - --progress-fd puts a progress line on another descriptor (the
 *     terminal), so that a caller can keep stderr for the error alone.
 *     On a terminal the line is redrawn, with an ETA when --total is
 *     given; elsewhere a full line is printed every --progress-interval
 *     seconds (default 60).
 *
 * On success it prints "<extents> <bytes>" (what it copied) on stdout.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "copyhash.h"
#include "extents.h"
#include "strutils.h"

#ifndef DIRTYCTL_VERSION
#define DIRTYCTL_VERSION "unknown"
#endif

#define PROG "dt-copy-extents"
#define CHUNK_BYTES (1U << 20)		/* one read and one write */
#define ALIGN_BYTES 4096U		/* buffer alignment for O_DIRECT */
#define PROGRESS_NS 500000000LL		/* progress line refresh on a terminal */
#define SPARSE_BLOCK 4096U		/* --sparse granularity */

struct copy {
	const char *src_name;
	const char *dst_name;
	int src_fd;			/* buffered */
	int src_direct_fd;		/* O_DIRECT, or -1 */
	int dst_fd;
	int dst_is_regular;
	int sparse;			/* --sparse */
	int punch_works;		/* cleared on the first EOPNOTSUPP */
	unsigned char *buf;
	uint64_t chunk_off;		/* file offset of buf[0] */
	uint64_t extents;		/* copied so far */
	uint64_t bytes;
	/* progress line */
	int progress_fd;		/* -1: none */
	FILE *progress;
	int progress_shown;		/* a line without its newline is out */
	int progress_tty;		/* redraw one line; else print lines */
	long long interval_ns;		/* between lines when not a terminal */
	uint64_t total;			/* --total, 0 if unknown */
	uint64_t done;			/* --done: of total, copied before */
	long long start_ns;
	long long last_ns;
	/* --hash-to */
	const char *hash_to;
	struct copy_hash *hash;		/* NULL: not hashing, or given up */
};

static int progress_on_stderr;	/* a progress line is showing on stderr */

/* A message on stderr ends the progress line there first. */
static void end_stderr_progress(void)
{
	if (progress_on_stderr) {
		fputc('\n', stderr);
		progress_on_stderr = 0;
	}
}

#define DT_BEFORE_MESSAGE end_stderr_progress
#include "c.h"

static void usage(FILE *f)
{
	fputs("Usage:\n"
	      " " PROG " [options] SRC DST < EXTENTS\n\n"
	      "Copy the byte extents listed on standard input, one \"<offset> <length>\"\n"
	      "line each, from SRC to the same offsets of DST, then fsync DST.\n"
	      "Prints \"<extents> <bytes>\" when done.\n\n"
	      "Options:\n"
	      " -s, --sparse        punch all-zero 4 KiB blocks out of a regular DST\n"
	      " -p, --progress      show a progress line on standard error\n"
	      "     --progress-fd N show it on file descriptor N instead\n"
	      "     --progress-interval SECONDS\n"
	      "                     between progress lines when not on a terminal (60)\n"
	      " -t, --total BYTES   the sum of the lengths, for the progress line\n"
	      "     --done BYTES    of --total, copied before this run (a copy in parts)\n"
	      "     --hash-to FILE  write the hashes of the manifest's clusters of DST\n"
	      "                     that the copy wrote to FILE (dt-manifest update --leaves)\n"
	      " -a, --algorithm NAME  with --hash-to: sha256 (default) or blake2b256\n"
	      " -c, --cluster-sectors N  with --hash-to: manifest cluster size in\n"
	      "                     512-byte sectors (default 128)\n"
	      " -h, --help          display this help\n"
	      " -V, --version       display version\n\n"
	      "Exit status: 0 copied and synced, 1 failure, 2 usage error.\n", f);
}

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void show_progress(struct copy *c, int final)
{
	long long ns = now_ns();
	uint64_t shown = c->done + c->bytes;
	double secs, mib = (double)shown / (1 << 20);
	long long interval = c->progress_tty ? PROGRESS_NS : c->interval_ns;

	if (!c->progress || (!final && ns - c->last_ns < interval))
		return;
	if (!c->progress_tty && final)
		return;		/* the caller reports the result */
	c->last_ns = ns;
	secs = (double)(ns - c->start_ns) / 1e9;
	fputs(c->progress_tty ? "\r\033[Kcopying: " : "copying: ", c->progress);
	fprintf(c->progress, "%.1f MiB", mib);
	if (c->total)
		fprintf(c->progress, " of %.1f MiB (%d%%)", (double)c->total / (1 << 20),
			(int)((double)shown * 100 / (double)c->total));
	/* The rate and the ETA: of this run's own bytes. */
	if (secs > 0)
		fprintf(c->progress, ", %.1f MiB/s", (double)c->bytes / (1 << 20) / secs);
	if (c->total && secs > 0 && c->bytes && shown < c->total) {
		long long eta = (long long)((double)(c->total - shown) * secs /
					    (double)c->bytes);

		fprintf(c->progress, ", ETA %lld:%02lld:%02lld", eta / 3600, eta / 60 % 60,
			eta % 60);
	}
	if (c->progress_tty) {
		c->progress_shown = 1;
		progress_on_stderr = c->progress == stderr;
	} else {
		fputc('\n', c->progress);
	}
	fflush(c->progress);
}

/* Ends the progress line, if one is showing. */
static void end_progress(struct copy *c)
{
	if (c->progress && c->progress_shown) {
		fputc('\n', c->progress);
		fflush(c->progress);
		c->progress_shown = 0;
		progress_on_stderr = 0;
	}
}

static int all_zero(const unsigned char *p, size_t len)
{
	static const unsigned char zero[4096];

	while (len >= sizeof(zero)) {
		if (memcmp(p, zero, sizeof(zero)))
			return 0;
		p += sizeof(zero);
		len -= sizeof(zero);
	}
	return !memcmp(p, zero, len);
}

/* One pread(), directly unless the device refuses this one (EINVAL). */
static ssize_t read_some(struct copy *c, unsigned char *p, size_t len, uint64_t off)
{
	ssize_t n;

	if (c->src_direct_fd >= 0) {
		n = pread(c->src_direct_fd, p, len, (off_t)off);
		if (n >= 0 || errno != EINVAL)
			return n;
	}
	return pread(c->src_fd, p, len, (off_t)off);
}

/* Reads exactly @len bytes at @off.  Returns 0, or -1 after printing why. */
static int read_chunk(struct copy *c, uint64_t off, size_t len)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = read_some(c, c->buf + done, len - done, off + done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			warnx("read %s at offset %" PRIu64 ": %s", c->src_name, off + done,
			      strerror(errno));
			return -1;
		}
		if (n == 0) {
			warnx("read %s at offset %" PRIu64 ": extent lies beyond the end",
			      c->src_name, off + done);
			return -1;
		}
		done += (size_t)n;
	}
	return 0;
}

static int write_all(struct copy *c, const unsigned char *p, size_t len, uint64_t off)
{
	ssize_t n;

	while (len) {
		n = pwrite(c->dst_fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			warnx("write %s at offset %" PRIu64 ": %s", c->dst_name, off,
			      strerror(errno));
			return -1;
		}
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

/* An all-zero chunk in --sparse mode: a hole where possible, else zeros. */
static int write_zero_chunk(struct copy *c, uint64_t off, size_t len)
{
	if (c->dst_is_regular && c->punch_works) {
		if (!fallocate(c->dst_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			       (off_t)off, (off_t)len))
			return 0;
		if (errno != EOPNOTSUPP && errno != ENOSYS) {
			warnx("punch a hole in %s at offset %" PRIu64 ": %s", c->dst_name,
			      off, strerror(errno));
			return -1;
		}
		c->punch_works = 0;
	}
	return write_all(c, c->buf + (off - c->chunk_off), len, off);
}

/*
 * --sparse into a regular file: the all-zero SPARSE_BLOCK blocks of the
 * chunk at @off are punched, the others written, in runs of each kind.
 */
static int write_sparse(struct copy *c, uint64_t off, size_t len)
{
	size_t pos = 0, end, blk;
	int zero;

	while (pos < len) {
		blk = len - pos < SPARSE_BLOCK ? len - pos : SPARSE_BLOCK;
		zero = all_zero(c->buf + pos, blk);
		end = pos + blk;
		while (end < len) {
			blk = len - end < SPARSE_BLOCK ? len - end : SPARSE_BLOCK;
			if (all_zero(c->buf + end, blk) != zero)
				break;
			end += blk;
		}
		if (zero ? write_zero_chunk(c, off + pos, end - pos) :
			   write_all(c, c->buf + pos, end - pos, off + pos))
			return -1;
		pos = end;
	}
	return 0;
}

/* Hashing is given up, never the copy: the leaves file stays unfinished. */
static void hash_give_up(struct copy *c, const char *what, int err)
{
	warnx("%s: cannot %s %s: %s; the hashes are left out (dt-manifest rehashes the image)",
	      c->hash_to, what, c->dst_name, strerror(err));
	copy_hash_free(c->hash);
	c->hash = NULL;
}

/* The chunk just written at @off, from memory. */
static void hash_chunk(struct copy *c, uint64_t off, size_t n)
{
	int r = copy_hash_feed(c->hash, off, c->buf, n);

	if (r)
		hash_give_up(c, "hash the copy of", -r);
}

/* After the fsync: the clusters covered in part, and the trailer. */
static void hash_finish(struct copy *c)
{
	struct stat st;
	uint64_t size = 0;
	const char *what = "get the size of";
	int r = fstat(c->dst_fd, &st) ? -errno : 0;

	if (!r && S_ISBLK(st.st_mode))
		r = ioctl(c->dst_fd, BLKGETSIZE64, &size) ? -errno : 0;
	else if (!r)
		size = (uint64_t)st.st_size;
	if (!r)
		r = copy_hash_finish(c->hash, c->dst_fd, size, &what);
	if (r) {
		hash_give_up(c, what, -r);
		return;
	}
	copy_hash_free(c->hash);
	c->hash = NULL;
}

static int copy_extent(struct copy *c, uint64_t off, uint64_t len)
{
	size_t n;

	while (len) {
		n = len < CHUNK_BYTES ? (size_t)len : CHUNK_BYTES;
		if (read_chunk(c, off, n))
			return -1;
		c->chunk_off = off;
		if (c->sparse && c->dst_is_regular) {
			if (write_sparse(c, off, n))
				return -1;
		} else if (write_all(c, c->buf, n, off)) {
			return -1;
		}
		if (c->hash)
			hash_chunk(c, off, n);
		off += n;
		len -= n;
		c->bytes += n;
		show_progress(c, 0);
	}
	c->extents++;
	return 0;
}

static int open_files(struct copy *c)
{
	struct stat s, d;

	c->src_fd = open(c->src_name, O_RDONLY | O_CLOEXEC);
	if (c->src_fd < 0) {
		warnx("cannot open %s: %s", c->src_name, strerror(errno));
		return -1;
	}
	/* Not every file system does O_DIRECT; then the cache it is. */
	c->src_direct_fd = open(c->src_name, O_RDONLY | O_DIRECT | O_CLOEXEC);
	/*
	 * A block device is opened exclusively: one that is mounted, or held
	 * by device-mapper, md or another exclusive opener, is refused. A new
	 * regular file is readable by its owner only.
	 */
	/* Hashing reads back clusters the copy covers in part. */
	int mode = c->hash_to ? O_RDWR : O_WRONLY;

	if (!stat(c->dst_name, &d) && S_ISBLK(d.st_mode))
		c->dst_fd = open(c->dst_name, mode | O_EXCL | O_CLOEXEC);
	else
		c->dst_fd = open(c->dst_name, mode | O_CREAT | O_CLOEXEC, 0600);
	if (c->dst_fd < 0) {
		if (errno == EBUSY)
			warnx("cannot open %s: %s (mounted, or in use by another device?)",
			      c->dst_name, strerror(errno));
		else
			warnx("cannot open %s: %s", c->dst_name, strerror(errno));
		return -1;
	}
	if (fstat(c->src_fd, &s) || fstat(c->dst_fd, &d)) {
		warnx("cannot stat %s or %s: %s", c->src_name, c->dst_name, strerror(errno));
		return -1;
	}
	if ((S_ISBLK(s.st_mode) && S_ISBLK(d.st_mode) && s.st_rdev == d.st_rdev) ||
	    (s.st_dev == d.st_dev && s.st_ino == d.st_ino)) {
		warnx("%s and %s are the same file", c->src_name, c->dst_name);
		return -1;
	}
	c->dst_is_regular = S_ISREG(d.st_mode);
	return 0;
}

static int copy_all(struct copy *c, FILE *in)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	uint64_t lineno = 0, off, n;
	const char *why;
	int ret = 0, r;

	while ((len = getline(&line, &cap, in)) > 0) {
		lineno++;
		if (line[len - 1] == '\n')
			line[--len] = '\0';
		r = dt_extent_parse_line(line, (size_t)len, &off, &n, &why);
		if (r < 0) {
			warnx("standard input, line %" PRIu64 ": %s", lineno, why);
			ret = -1;
			break;
		}
		if (r > 0 && copy_extent(c, off, n)) {
			ret = -1;
			break;
		}
	}
	if (!ret && ferror(in)) {
		warnx("cannot read the extent list: %s", strerror(errno));
		ret = -1;
	}
	free(line);
	return ret;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "sparse", no_argument, NULL, 's' },
		{ "progress", no_argument, NULL, 'p' },
		{ "progress-fd", required_argument, NULL, 'P' },
		{ "total", required_argument, NULL, 't' },
		{ "done", required_argument, NULL, 'D' },
		{ "progress-interval", required_argument, NULL, 'I' },
		{ "hash-to", required_argument, NULL, 'H' },
		{ "algorithm", required_argument, NULL, 'a' },
		{ "cluster-sectors", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct copy c = { .src_fd = -1, .src_direct_fd = -1, .dst_fd = -1,
			  .punch_works = 1, .progress_fd = -1,
			  .interval_ns = 60 * 1000000000LL };
	struct copy_hash hash;
	unsigned int algorithm = DTM_ALG_SHA256;
	uint32_t cluster_sectors = DTM_DEFAULT_CLUSTER_SECTORS;
	int hash_opts = 0;
	uint64_t fd;
	int opt, ret;

	while ((opt = getopt_long(argc, argv, "spt:a:c:hV", longopts, NULL)) != -1) {
		switch (opt) {
		case 's':
			c.sparse = 1;
			break;
		case 'p':
			c.progress_fd = STDERR_FILENO;
			break;
		case 'P':
			if (dt_parse_u64_range(optarg, optarg + strlen(optarg), &fd) || fd > INT_MAX)
				return usage_error("invalid --progress-fd: expected a file descriptor");
			c.progress_fd = (int)fd;
			break;
		case 'I':
			if (dt_parse_u64_range(optarg, optarg + strlen(optarg), &fd) || fd > 86400 * 365)
				return usage_error("invalid --progress-interval: expected seconds");
			c.interval_ns = (long long)fd * 1000000000LL;
			break;
		case 't':
			if (dt_parse_u64_range(optarg, optarg + strlen(optarg), &c.total))
				return usage_error("invalid --total: expected a number of bytes");
			break;
		case 'D':
			if (dt_parse_u64_range(optarg, optarg + strlen(optarg), &c.done))
				return usage_error("invalid --done: expected a number of bytes");
			break;
		case 'H':
			c.hash_to = optarg;
			break;
		case 'a':
			algorithm = dtm_algorithm_from_name(optarg);
			if (!algorithm)
				return usage_error("unknown --algorithm: sha256 or blake2b256");
			hash_opts = 1;
			break;
		case 'c':
			if (dt_parse_u64_range(optarg, optarg + strlen(optarg), &fd) || !fd ||
			    fd > DTM_MAX_CLUSTER_SECTORS || (fd & (fd - 1)))
				return usage_error("invalid --cluster-sectors: a power of two from 1 to 65536");
			cluster_sectors = (uint32_t)fd;
			hash_opts = 1;
			break;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		case 'V':
			puts(PROG " " DIRTYCTL_VERSION);
			return EXIT_SUCCESS;
		default:
			fputs("Try '" PROG " --help' for more information.\n", stderr);
			return EXIT_USAGE;
		}
	}
	if (argc - optind != 2)
		return usage_error("expected SRC and DST");
	if (hash_opts && !c.hash_to)
		return usage_error("--algorithm and --cluster-sectors go with --hash-to");
	c.src_name = argv[optind];
	c.dst_name = argv[optind + 1];

	if (posix_memalign((void **)&c.buf, ALIGN_BYTES, CHUNK_BYTES)) {
		warnx("out of memory");
		return EXIT_FAILURE;
	}
	if (c.progress_fd >= 0) {
		c.progress = c.progress_fd == STDERR_FILENO ? stderr : fdopen(c.progress_fd, "w");
		if (!c.progress) {
			warnx("cannot use file descriptor %d for progress: %s", c.progress_fd,
			      strerror(errno));
			free(c.buf);
			return EXIT_FAILURE;
		}
		c.progress_tty = isatty(fileno(c.progress));
	}
	if (c.hash_to) {
		ret = copy_hash_init(&hash, c.hash_to, algorithm, cluster_sectors);
		if (ret) {
			warnx("cannot create %s: %s", c.hash_to,
			      ret == -EINVAL ? "libcrypto lacks the hash algorithm" : strerror(-ret));
			copy_hash_free(&hash);
			return EXIT_FAILURE;
		}
		c.hash = &hash;
	}
	c.start_ns = c.last_ns = now_ns();
	ret = open_files(&c) || copy_all(&c, stdin) ? -1 : 0;
	if (!ret && fsync(c.dst_fd)) {
		warnx("fsync %s: %s", c.dst_name, strerror(errno));
		ret = -1;
	}
	if (!ret && c.hash)
		hash_finish(&c);
	if (c.hash)
		copy_hash_free(c.hash);
	if (!ret && close(c.dst_fd)) {
		warnx("close %s: %s", c.dst_name, strerror(errno));
		ret = -1;
	}
	if (!ret)
		show_progress(&c, 1);
	end_progress(&c);
	free(c.buf);
	if (ret)
		return EXIT_FAILURE;
	printf("%" PRIu64 " %" PRIu64 "\n", c.extents, c.bytes);
	return fflush(stdout) ? EXIT_FAILURE : EXIT_SUCCESS;
}
