// SPDX-License-Identifier: GPL-2.0-only OR MIT
/*
 * dt-manifest - the hash manifest of a dm-dirtytrack backup image: one
 * cryptographic hash per cluster and a Merkle root over them, kept beside
 * the image as IMAGE.manifest (Documentation/manifest.md, dt-manifest(8)).
 *
 *   build IMAGE             hash the whole image
 *   update IMAGE --extents  rehash only the listed extents (rebuild when
 *                           the manifest cannot be trusted)
 *   invalidate IMAGE        mark the manifest stale before IMAGE changes
 *   verify IMAGE            rehash IMAGE, name every cluster that differs
 *   show IMAGE              print the header
 *   diff A B                the extents where two manifests differ
 *   changed DEV MANIFEST    the extents of DEV that differ from MANIFEST
 *   check DEV MANIFEST      self-check of tracking: clean clusters of DEV
 *                           must match MANIFEST
 *
 * Exit status: build, update, invalidate, show: 0 done, 1 failure, 2 usage.
 * verify, diff, changed, check (like cmp): 0 no difference, 1 differences,
 * 2 usage error or trouble (no trusted manifest, I/O error).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/fs.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "strutils.h"

#include "manifest.h"
#include "parse.h"

#ifndef DIRTYCTL_VERSION
#define DIRTYCTL_VERSION "unknown"
#endif

#define PROG "dt-manifest"
#include "c.h"
#define EXIT_DIFFER 1
#define EXIT_TROUBLE 2
#define CHUNK_BYTES (8U << 20)
#define ALIGN_BYTES 4096U
#define DEFAULT_SAMPLE 1024

/* SHA-256 wins on CPUs with the SHA extensions (Documentation/performance.md). */
#define DEFAULT_ALGORITHM DTM_ALG_SHA256

static void usage(FILE *f)
{
	fputs("Usage:\n"
	      " " PROG " build IMAGE [options]\n"
	      " " PROG " update IMAGE --extents FILE [options]\n"
	      " " PROG " invalidate IMAGE [options]\n"
	      " " PROG " verify IMAGE [options]\n"
	      " " PROG " show IMAGE [options]\n"
	      " " PROG " diff A.manifest B.manifest [--format FORMAT]\n"
	      " " PROG " changed DEV MANIFEST [--format FORMAT]\n"
	      " " PROG " check DEV MANIFEST [--all | --sample N] [--dirty-extents FILE]\n\n"
	      "Keep, verify and compare the hash manifest of a backup image: one hash\n"
	      "per cluster and a Merkle root, in IMAGE.manifest.\n\n"
	      "Options:\n"
	      " -m, --manifest FILE         the manifest (default IMAGE.manifest)\n"
	      " -e, --extents FILE          update: \"<offset> <length>\" byte extents (- for stdin)\n"
	      " -c, --cluster-sectors N     build: cluster size in 512-byte sectors (default 128)\n"
	      " -a, --algorithm NAME        build: sha256 (default) or blake2b256\n"
	      "     --uuid UUID             build, update: record the device's metadata uuid\n"
	      "     --sequence N            build, update: and its sequence\n"
	      "     --expect-uuid UUID      trust the manifest only for this uuid\n"
	      "     --expect-sequence N     and this sequence\n"
	      " -f, --format FORMAT         diff, changed: ranges, bytes (default), json, ddrescue\n"
	      "     --all                   check: every clean cluster\n"
	      "     --sample N              check: N clean clusters at random (default 1024)\n"
	      "     --seed N                check: seed of the sample\n"
	      "     --dirty-extents FILE    check: the dirty byte extents, instead of asking dirtyctl\n"
	      "     --leaves FILE           build, update: the cluster hashes dt-copy-extents\n"
	      "                              --hash-to wrote while copying; not read again\n"
	      "                              (repeatable: one file per copy, later ones win)\n"
	      "     --stale-ok              update: the caller marked it stale itself before\n"
	      "                              writing the image, and the extents list every change\n"
	      "     --threads N             hash on N threads (default: one per usable CPU)\n"
	      " -q, --quiet                 no note when a manifest is rebuilt\n"
	      " -h, --help                  display this help\n"
	      " -V, --version               display version\n\n"
	      "Exit status: build, update, invalidate, show: 0 done, 1 failure, 2 usage.\n"
	      "verify, diff, changed, check: 0 no difference, 1 differences,\n"
	      "2 usage error or trouble (no trusted manifest, I/O error).\n\n"
	      "For more details see dt-manifest(8).\n", f);
}

/* ------------------------------------------------------------------ */
/* Options                                                             */
/* ------------------------------------------------------------------ */

struct opts {
	const char *cmd;
	const char *args[2];
	int nargs;
	const char *manifest;
	char *manifest_alloc;
	const char *extents;
	const char **leaves;		/* --leaves, in the order given */
	size_t nleaves;
	const char *dirty_extents;
	uint32_t cluster_sectors;	/* 0: not given */
	unsigned int algorithm;		/* 0: not given */
	int has_uuid, has_sequence;
	unsigned char uuid[16];
	uint64_t sequence;
	int has_expect_uuid, has_expect_sequence;
	unsigned char expect_uuid[16];
	uint64_t expect_sequence;
	enum dt_format format;
	int all;
	uint64_t sample;
	uint64_t seed;
	int has_seed;
	int quiet;
	int stale_ok;
};

/* ------------------------------------------------------------------ */
/* Reading images and devices                                          */
/* ------------------------------------------------------------------ */

struct source {
	const char *name;
	int fd;			/* buffered */
	int direct_fd;		/* O_DIRECT (devices), or -1 */
	uint64_t size;
};

static int source_open(struct source *s, const char *name, int direct)
{
	struct stat st;

	s->name = name;
	s->direct_fd = -1;
	s->fd = open(name, O_RDONLY | O_CLOEXEC);
	if (s->fd < 0) {
		warnx("cannot open %s: %s", name, strerror(errno));
		return -1;
	}
	if (fstat(s->fd, &st)) {
		warnx("cannot stat %s: %s", name, strerror(errno));
		return -1;
	}
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(s->fd, BLKGETSIZE64, &s->size)) {
			warnx("cannot get the size of %s: %s", name, strerror(errno));
			return -1;
		}
		/*
		 * A device is read past its page cache: the cache may hold
		 * data older than what reached the device below it.
		 */
		if (direct)
			s->direct_fd = open(name, O_RDONLY | O_DIRECT | O_CLOEXEC);
	} else if (S_ISREG(st.st_mode)) {
		s->size = (uint64_t)st.st_size;
		posix_fadvise(s->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
		/* Whole images are read past the cache: what is on disk is verified. */
		if (direct)
			s->direct_fd = open(name, O_RDONLY | O_DIRECT | O_CLOEXEC);
	} else {
		warnx("%s is neither a regular file nor a block device", name);
		return -1;
	}
	return 0;
}

static void source_close(struct source *s)
{
	if (s->fd >= 0)
		close(s->fd);
	if (s->direct_fd >= 0)
		close(s->direct_fd);
	s->fd = s->direct_fd = -1;
}

static int source_read(struct source *s, unsigned char *buf, size_t len, uint64_t off)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = -1;
		if (s->direct_fd >= 0) {
			n = pread(s->direct_fd, buf + done, len - done, (off_t)(off + done));
			if (n < 0 && errno == EINVAL)
				n = pread(s->fd, buf + done, len - done, (off_t)(off + done));
		} else {
			n = pread(s->fd, buf + done, len - done, (off_t)(off + done));
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			warnx("read %s at offset %" PRIu64 ": %s", s->name, off + done,
			      strerror(errno));
			return -1;
		}
		if (!n) {
			warnx("read %s at offset %" PRIu64 ": unexpected end", s->name, off + done);
			return -1;
		}
		done += (size_t)n;
	}
	return 0;
}

/* Called with each cluster's hash, in ascending order. */
typedef int (*cluster_fn)(void *ctx, uint64_t cluster, const unsigned char *hash);

/*
 * Reads and hashes a range of clusters on every CPU.  One reader thread
 * fills chunk buffers in order, a pool of workers hashes whole chunks
 * (each with its own libcrypto context), and the caller takes the chunks'
 * hashes in cluster order: the callback sees exactly what one thread
 * would give it, in the same order.  A range of one chunk is read and
 * hashed by the caller alone.
 */
#define MAX_WORKERS 64
#define POOL_BYTES (128U << 20)		/* all chunk buffers together, at most */

static unsigned int opt_threads;	/* --threads, 0: every CPU we may run on */

enum { SLOT_FREE, SLOT_READING, SLOT_READ, SLOT_HASHING, SLOT_HASHED };

struct slot {
	unsigned char *buf;
	unsigned char *hashes;		/* per * hash_size */
	uint64_t chunk;			/* which chunk of the scan it holds */
	int state;
	int err;			/* -1 read failed, -2 libcrypto failed */
};

struct scanner {
	struct source *src;
	struct dtm *m;			/* geometry and algorithm */
	struct dtm_hasher *hs;		/* the caller's */
	unsigned int nworkers, nslots;
	struct dtm_hasher *whs[MAX_WORKERS];
	struct slot *slots;
	size_t buf_len;
	/* one scan() */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint64_t first, end, per, nchunks, next_hash;
	int stop;
};

static unsigned int cpus(void)
{
	cpu_set_t set;
	long n;

	if (!sched_getaffinity(0, sizeof(set), &set) && CPU_COUNT(&set) > 0)
		return (unsigned int)CPU_COUNT(&set);
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned int)n : 1;
}

static int scanner_init(struct scanner *sc, struct source *src, struct dtm *m)
{
	uint64_t cb = dtm_cluster_bytes(m), chunk;
	unsigned int i;

	memset(sc, 0, sizeof(*sc));
	sc->src = src;
	sc->m = m;
	sc->nworkers = opt_threads ? opt_threads : cpus();
	if (sc->nworkers > MAX_WORKERS)
		sc->nworkers = MAX_WORKERS;
	/* A buffer being read, one being consumed, one per worker. */
	sc->nslots = sc->nworkers + 2;
	chunk = POOL_BYTES / sc->nslots < CHUNK_BYTES ? POOL_BYTES / sc->nslots : CHUNK_BYTES;
	sc->buf_len = cb > chunk ? (size_t)cb : (size_t)(chunk / cb * cb);
	sc->hs = dtm_hasher_new(m->h.algorithm);
	for (i = 0; sc->hs && i < sc->nworkers; i++)
		sc->whs[i] = dtm_hasher_new(m->h.algorithm);
	if (!sc->hs || (sc->nworkers && !sc->whs[sc->nworkers - 1])) {
		warnx("libcrypto does not offer %s", dtm_algorithm_name(m->h.algorithm));
		return -1;
	}
	sc->slots = calloc(sc->nslots, sizeof(*sc->slots));
	if (!sc->slots)
		goto oom;
	for (i = 0; i < sc->nslots; i++) {
		if (posix_memalign((void **)&sc->slots[i].buf, ALIGN_BYTES, sc->buf_len))
			goto oom;
		sc->slots[i].hashes = malloc(sc->buf_len / cb * m->h.hash_size + m->h.hash_size);
		if (!sc->slots[i].hashes)
			goto oom;
	}
	return 0;
oom:
	warnx("out of memory");
	return -1;
}

static void scanner_free(struct scanner *sc)
{
	unsigned int i;

	dtm_hasher_free(sc->hs);
	for (i = 0; i < MAX_WORKERS; i++)
		dtm_hasher_free(sc->whs[i]);
	for (i = 0; sc->slots && i < sc->nslots; i++) {
		free(sc->slots[i].buf);
		free(sc->slots[i].hashes);
	}
	free(sc->slots);
	memset(sc, 0, sizeof(*sc));
}

/* Bytes of the chunk of at most @per clusters from cluster @c on. */
static size_t chunk_len(const struct scanner *sc, uint64_t c, uint64_t n)
{
	uint64_t cb = dtm_cluster_bytes(sc->m), off = c * cb;

	return (size_t)((c + n) * cb > sc->m->h.data_bytes ? sc->m->h.data_bytes - off : n * cb);
}

/* Clusters [*c, *c + *n) of chunk @j of the scan. */
static void chunk_clusters(const struct scanner *sc, uint64_t j, uint64_t *c, uint64_t *n)
{
	*c = sc->first + j * sc->per;
	*n = sc->end - *c < sc->per ? sc->end - *c : sc->per;
}

static void *reader(void *arg)
{
	struct scanner *sc = arg;
	uint64_t cb = dtm_cluster_bytes(sc->m), j, c, n;
	struct slot *s;
	int err;

	for (j = 0; j < sc->nchunks; j++) {
		s = &sc->slots[j % sc->nslots];
		pthread_mutex_lock(&sc->lock);
		while (!sc->stop && s->state != SLOT_FREE)
			pthread_cond_wait(&sc->cond, &sc->lock);
		if (sc->stop) {
			pthread_mutex_unlock(&sc->lock);
			break;
		}
		s->state = SLOT_READING;
		s->chunk = j;
		pthread_mutex_unlock(&sc->lock);
		chunk_clusters(sc, j, &c, &n);
		err = source_read(sc->src, s->buf, chunk_len(sc, c, n), c * cb) ? -1 : 0;
		pthread_mutex_lock(&sc->lock);
		s->err = err;
		s->state = SLOT_READ;
		pthread_cond_broadcast(&sc->cond);
		pthread_mutex_unlock(&sc->lock);
		if (err)
			break;
	}
	return NULL;
}

struct worker {
	struct scanner *sc;
	struct dtm_hasher *hs;
};

static void *worker(void *arg)
{
	struct worker *w = arg;
	struct scanner *sc = w->sc;
	uint64_t cb = dtm_cluster_bytes(sc->m), j, c, n, i;
	struct slot *s;

	for (;;) {
		pthread_mutex_lock(&sc->lock);
		for (;;) {
			if (sc->stop || sc->next_hash >= sc->nchunks) {
				pthread_mutex_unlock(&sc->lock);
				return NULL;
			}
			s = &sc->slots[sc->next_hash % sc->nslots];
			if (s->chunk == sc->next_hash && s->state == SLOT_READ)
				break;
			pthread_cond_wait(&sc->cond, &sc->lock);
		}
		j = sc->next_hash++;
		s->state = SLOT_HASHING;
		pthread_mutex_unlock(&sc->lock);
		chunk_clusters(sc, j, &c, &n);
		for (i = 0; !s->err && i < n; i++)
			if (dtm_hash(w->hs, s->buf + i * cb, (size_t)dtm_cluster_len(sc->m, c + i),
				     s->hashes + i * sc->m->h.hash_size))
				s->err = -2;
		pthread_mutex_lock(&sc->lock);
		s->state = SLOT_HASHED;
		pthread_cond_broadcast(&sc->cond);
		pthread_mutex_unlock(&sc->lock);
	}
}

/* One chunk, by the caller alone. */
static int scan_one(struct scanner *sc, uint64_t first, uint64_t nr, cluster_fn fn, void *ctx)
{
	uint64_t cb = dtm_cluster_bytes(sc->m), i;
	unsigned char hash[DTM_MAX_HASH];
	int ret;

	if (source_read(sc->src, sc->slots[0].buf, chunk_len(sc, first, nr), first * cb))
		return -1;
	for (i = 0; i < nr; i++) {
		if (dtm_hash(sc->hs, sc->slots[0].buf + i * cb,
			     (size_t)dtm_cluster_len(sc->m, first + i), hash)) {
			warnx("libcrypto failed to hash %s", sc->src->name);
			return -1;
		}
		ret = fn(ctx, first + i, hash);
		if (ret)
			return ret;
	}
	return 0;
}

/* Hash clusters [first, first + nr) of the source, calling @fn for each, in order. */
static int scan(struct scanner *sc, uint64_t first, uint64_t nr, cluster_fn fn, void *ctx)
{
	uint64_t per = sc->buf_len / dtm_cluster_bytes(sc->m), j, c, n, i;
	struct worker w[MAX_WORKERS];
	pthread_t rthread, wthread[MAX_WORKERS];
	unsigned int k, started = 0;
	struct slot *s;
	int ret = 0;

	if (!nr)
		return 0;
	if (nr <= per)
		return scan_one(sc, first, nr, fn, ctx);
	sc->first = first;
	sc->end = first + nr;
	sc->per = per;
	sc->nchunks = (nr + per - 1) / per;
	sc->next_hash = 0;
	sc->stop = 0;
	for (k = 0; k < sc->nslots; k++) {
		sc->slots[k].state = SLOT_FREE;
		sc->slots[k].chunk = UINT64_MAX;
		sc->slots[k].err = 0;
	}
	pthread_mutex_init(&sc->lock, NULL);
	pthread_cond_init(&sc->cond, NULL);
	if (pthread_create(&rthread, NULL, reader, sc)) {
		warnx("cannot start a reader thread");
		ret = -1;
		goto out;
	}
	for (k = 0; k < sc->nworkers; k++, started++) {
		w[k].sc = sc;
		w[k].hs = sc->whs[k];
		if (pthread_create(&wthread[k], NULL, worker, &w[k]))
			break;
	}
	if (!started) {
		warnx("cannot start a hashing thread");
		ret = -1;
	}
	for (j = 0; j < sc->nchunks && !ret; j++) {
		s = &sc->slots[j % sc->nslots];
		pthread_mutex_lock(&sc->lock);
		while (s->chunk != j || s->state != SLOT_HASHED)
			pthread_cond_wait(&sc->cond, &sc->lock);
		pthread_mutex_unlock(&sc->lock);
		if (s->err == -2)
			warnx("libcrypto failed to hash %s", sc->src->name);
		ret = s->err ? -1 : 0;	/* a read error was reported by the reader */
		chunk_clusters(sc, j, &c, &n);
		for (i = 0; !ret && i < n; i++)
			ret = fn(ctx, c + i, s->hashes + i * sc->m->h.hash_size);
		pthread_mutex_lock(&sc->lock);
		s->state = SLOT_FREE;
		pthread_cond_broadcast(&sc->cond);
		pthread_mutex_unlock(&sc->lock);
	}
	/* Done or failed: let every thread that waits see it and leave. */
	pthread_mutex_lock(&sc->lock);
	sc->stop = 1;
	pthread_cond_broadcast(&sc->cond);
	pthread_mutex_unlock(&sc->lock);
	for (k = 0; k < started; k++)
		pthread_join(wthread[k], NULL);
	pthread_join(rthread, NULL);
out:
	pthread_cond_destroy(&sc->cond);
	pthread_mutex_destroy(&sc->lock);
	return ret;
}

static int store_leaf(void *ctx, uint64_t cluster, const unsigned char *hash)
{
	struct dtm *m = ctx;

	memcpy(dtm_leaf(m, cluster), hash, m->h.hash_size);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Manifests                                                           */
/* ------------------------------------------------------------------ */

static void set_identity(struct dtm *m, const struct opts *o)
{
	if (o->has_uuid) {
		memcpy(m->h.uuid, o->uuid, 16);
		m->h.sequence = o->sequence;
		m->h.flags |= DTM_FLAG_IDENTITY;
	}
}

/*
 * Loads the manifest and checks it against the image's state: not stale,
 * the expected uuid and sequence, @size bytes of data (0: any), the
 * requested cluster size and algorithm.  Returns 0, -1 with *why set
 * when it must not be trusted, -2 when the file cannot be read.
 */
static int load_trusted(const struct opts *o, const char *path, uint64_t size,
			struct dtm *m, const char **why)
{
	static char msg[160];
	int ret = dtm_load(path, m, why);

	if (ret == -EBADMSG)
		return -1;
	if (ret == -ENOENT) {
		*why = "does not exist";
		return -1;
	}
	if (ret) {
		snprintf(msg, sizeof(msg), "cannot read it: %s", strerror(-ret));
		*why = msg;
		return -2;
	}
	*why = NULL;
	if ((m->h.flags & DTM_FLAG_STALE) && !o->stale_ok)
		*why = "stale: an update of the image was interrupted or is in progress";
	else if (size && m->h.data_bytes != size) {
		snprintf(msg, sizeof(msg), "made for %" PRIu64 " bytes of data, the image has %" PRIu64,
			 m->h.data_bytes, size);
		*why = msg;
	} else if (o->cluster_sectors && m->h.cluster_sectors != o->cluster_sectors)
		*why = "has another cluster size";
	else if (o->algorithm && m->h.algorithm != o->algorithm)
		*why = "uses another hash algorithm";
	else if ((o->has_expect_uuid || o->has_expect_sequence) && !(m->h.flags & DTM_FLAG_IDENTITY))
		*why = "records no device identity";
	else if (o->has_expect_uuid && memcmp(m->h.uuid, o->expect_uuid, 16))
		*why = "is for another device uuid";
	else if (o->has_expect_sequence && m->h.sequence != o->expect_sequence) {
		snprintf(msg, sizeof(msg), "is for sequence %" PRIu64 ", expected %" PRIu64,
			 m->h.sequence, o->expect_sequence);
		*why = msg;
	}
	if (*why) {
		dtm_free(m);
		return -1;
	}
	return 0;
}

static int save(const struct dtm *m, const char *path)
{
	const char *what;
	int ret = dtm_save(m, path, &what);

	if (ret)
		warnx("%s: cannot %s: %s", path, what, strerror(-ret));
	return ret;
}

struct range {
	uint64_t first, nr;	/* clusters */
};

struct ranges {
	struct range *r;
	size_t n, cap;
};

static int ranges_add(struct ranges *rs, uint64_t first, uint64_t nr)
{
	if (rs->n && rs->r[rs->n - 1].first + rs->r[rs->n - 1].nr >= first &&
	    rs->r[rs->n - 1].first <= first) {
		struct range *l = &rs->r[rs->n - 1];

		if (first + nr > l->first + l->nr)
			l->nr = first + nr - l->first;
		return 0;
	}
	if (rs->n == rs->cap) {
		size_t cap = rs->cap ? 2 * rs->cap : 64;
		struct range *r = realloc(rs->r, cap * sizeof(*r));

		if (!r)
			return -1;
		rs->r = r;
		rs->cap = cap;
	}
	rs->r[rs->n].first = first;
	rs->r[rs->n].nr = nr;
	rs->n++;
	return 0;
}

static int cmp_range(const void *a, const void *b)
{
	const struct range *x = a, *y = b;

	return x->first < y->first ? -1 : x->first > y->first;
}

/* Sort and merge overlapping or adjacent ranges. */
static void ranges_normalize(struct ranges *rs)
{
	size_t i, n = 0;

	if (!rs->n)
		return;
	qsort(rs->r, rs->n, sizeof(rs->r[0]), cmp_range);
	for (i = 1; i < rs->n; i++) {
		struct range *l = &rs->r[n];

		if (rs->r[i].first <= l->first + l->nr) {
			if (rs->r[i].first + rs->r[i].nr > l->first + l->nr)
				l->nr = rs->r[i].first + rs->r[i].nr - l->first;
		} else {
			rs->r[++n] = rs->r[i];
		}
	}
	rs->n = n + 1;
}

/*
 * Reads "<offset> <length>" byte extents from @path (- for stdin) as the
 * clusters of @cluster_bytes they touch, within @size bytes.
 */
static int read_extents(const char *path, uint64_t cluster_bytes, uint64_t size,
			struct ranges *rs)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	uint64_t lineno = 0, off, n;
	const char *why = NULL;
	int ret = 0;

	if (!f) {
		warnx("cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	while ((len = getline(&line, &cap, f)) > 0) {
		char *sp;

		lineno++;
		if (line[len - 1] == '\n')
			line[--len] = '\0';
		if (!len || line[0] == '#')
			continue;
		sp = strchr(line, ' ');
		why = sp ? dt_parse_u64_range(line, sp, &off) : "expected \"<offset> <length>\"";
		if (!why)
			why = dt_parse_u64_range(sp + 1, line + len, &n);
		if (!why && !n)
			why = "zero length";
		if (!why && (off >= size || n > size - off))
			why = "extent ends beyond the image";
		if (!why && ranges_add(rs, off / cluster_bytes,
				       (off + n - 1) / cluster_bytes - off / cluster_bytes + 1))
			why = "out of memory";
		if (why) {
			warnx("%s, line %" PRIu64 ": %s", path, lineno, why);
			ret = -1;
			break;
		}
	}
	if (!ret && ferror(f)) {
		warnx("cannot read %s: %s", path, strerror(errno));
		ret = -1;
	}
	free(line);
	if (f != stdin)
		fclose(f);
	if (!ret)
		ranges_normalize(rs);
	return ret;
}

/* ------------------------------------------------------------------ */
/* Leaves from the copy (dt-copy-extents --hash-to)                    */
/* ------------------------------------------------------------------ */

/* The leaves files of --leaves, each checked whole, in the order given. */
struct leaves {
	struct leaves_file {
		unsigned char *buf;
		size_t len;
	} *f;
	size_t n;
	struct ranges covered;		/* clusters with a hash, normalized */
};

static int leaves_cover(void *ctx, uint64_t first, uint64_t count, const unsigned char *h)
{
	struct leaves *lv = ctx;

	(void)h;
	return ranges_add(&lv->covered, first, count);
}

static int leaves_apply_one(void *ctx, uint64_t first, uint64_t count, const unsigned char *h)
{
	struct dtm *m = ctx;

	memcpy(dtm_leaf(m, first), h, count * m->h.hash_size);
	return 0;
}

/* Into @m, file after file: a cluster's hash is the last one given. */
static void leaves_apply(const struct leaves *lv, struct dtm *m)
{
	size_t i;

	for (i = 0; i < lv->n; i++)
		dtm_leaves_walk(lv->f[i].buf, lv->f[i].len, leaves_apply_one, m);
}

static void leaves_free(struct leaves *lv)
{
	size_t i;

	for (i = 0; i < lv->n; i++)
		free(lv->f[i].buf);
	free(lv->f);
	free(lv->covered.r);
	memset(lv, 0, sizeof(*lv));
}

/* One leaves file into lv->f[lv->n]; NULL if it can be used, else why not. */
static const char *leaves_load_one(const char *path, const struct dtm *m, struct leaves *lv)
{
	struct leaves_file *lf = &lv->f[lv->n];
	struct dtm_leaves_info li;
	const char *why = NULL;
	uint64_t max = 2 * m->h.clusters * (m->h.hash_size + DTM_LEAVES_RUN_HEADER) + 4096;
	int r;

	r = dtm_read_file(path, max, &lf->buf, &lf->len);
	if (r == -EFBIG)
		return "larger than the image's clusters allow";
	if (r == -EBADMSG)
		return "not a regular file";
	if (r)
		return strerror(-r);
	lv->n++;
	if (dtm_leaves_check(lf->buf, lf->len, &li, &why))
		return why ? why : "damaged";
	if (li.algorithm != m->h.algorithm || li.cluster_sectors != m->h.cluster_sectors)
		return "another algorithm or cluster size than the manifest's";
	if (li.data_bytes != m->h.data_bytes)
		return "made for another data size than the image's";
	if (dtm_leaves_walk(lf->buf, lf->len, leaves_cover, lv))
		return "out of memory";
	return NULL;
}

/*
 * Loads every --leaves file for @m (algorithm, cluster size, data size).
 * Returns 0 when they can all be used; otherwise says why on stderr and
 * returns -1: the caller rehashes from the image.  Each file is checked
 * whole before one of its hashes is used, and one refused file refuses
 * them all.
 */
static int leaves_load(const struct opts *o, const struct dtm *m, struct leaves *lv)
{
	const char *why = NULL;
	size_t i;

	memset(lv, 0, sizeof(*lv));
	lv->f = calloc(o->nleaves, sizeof(*lv->f));
	if (!lv->f)
		why = "out of memory";
	for (i = 0; i < o->nleaves && !why; i++)
		why = leaves_load_one(o->leaves[i], m, lv);
	if (!why) {
		ranges_normalize(&lv->covered);
		return 0;
	}
	warnx("%s: leaves refused (%s): rehashing from %s", o->leaves[i ? i - 1 : 0], why,
	      o->args[0]);
	leaves_free(lv);
	return -1;
}

static int ranges_equal(const struct ranges *a, const struct ranges *b)
{
	size_t i;

	if (a->n != b->n)
		return 0;
	for (i = 0; i < a->n; i++)
		if (a->r[i].first != b->r[i].first || a->r[i].nr != b->r[i].nr)
			return 0;
	return 1;
}

/* ------------------------------------------------------------------ */
/* build, update, invalidate, show                                     */
/* ------------------------------------------------------------------ */

/*
 * Hash all of @src into a new manifest and save it; with --leaves, the
 * clusters they cover are taken from them and only the others are read.
 */
static int build_from(const struct opts *o, struct source *src, const char *path)
{
	struct scanner sc = { 0 };
	struct leaves lv = { 0 };
	struct dtm m;
	unsigned int alg = o->algorithm ? o->algorithm : DEFAULT_ALGORITHM;
	uint32_t cs = o->cluster_sectors ? o->cluster_sectors : DTM_DEFAULT_CLUSTER_SECTORS;
	uint64_t c = 0, to;
	size_t i = 0;
	int ret = -1, have = 0;

	if (!src->size || src->size % 512) {
		warnx("%s: size %" PRIu64 " is not a non-zero multiple of 512 bytes", src->name,
		      src->size);
		return -1;
	}
	if (dtm_init(&m, alg, cs, src->size)) {
		warnx("%s: out of memory for %" PRIu64 " bytes of data", path, src->size);
		return -1;
	}
	if (o->nleaves && !leaves_load(o, &m, &lv)) {
		leaves_apply(&lv, &m);
		have = 1;
	}
	if (scanner_init(&sc, src, &m))
		goto out;
	/* The gaps between the clusters the leaves cover (all of it without). */
	for (;;) {
		to = have && i < lv.covered.n ? lv.covered.r[i].first : m.h.clusters;
		if (to > c && scan(&sc, c, to - c, store_leaf, &m))
			goto out;
		if (!have || i >= lv.covered.n)
			break;
		c = lv.covered.r[i].first + lv.covered.r[i].nr;
		i++;
	}
	if (dtm_build_tree(&m, sc.hs))
		warnx("libcrypto failed");
	else {
		set_identity(&m, o);
		ret = save(&m, path);
	}
out:
	scanner_free(&sc);
	leaves_free(&lv);
	dtm_free(&m);
	return ret;
}

static int cmd_build(const struct opts *o)
{
	struct source src;
	int ret;

	if (source_open(&src, o->args[0], 1)) {
		source_close(&src);
		return EXIT_FAILURE;
	}
	ret = build_from(o, &src, o->manifest);
	source_close(&src);
	return ret ? EXIT_FAILURE : EXIT_SUCCESS;
}

static int cmd_update(const struct opts *o)
{
	struct scanner sc = { 0 };
	struct ranges rs = { 0 };
	struct leaves lv = { 0 };
	struct source src;
	struct dtm m;
	const char *why;
	size_t i;
	int ret = EXIT_FAILURE, r, have = 0;

	if (source_open(&src, o->args[0], 0))
		goto out_src;
	r = load_trusted(o, o->manifest, src.size, &m, &why);
	if (r) {
		if (!o->quiet)
			warnx("%s: rebuilding it from %s: the manifest %s", o->manifest,
			      o->args[0], why);
		ret = build_from(o, &src, o->manifest) ? EXIT_FAILURE : EXIT_SUCCESS;
		goto out_src;
	}
	if (read_extents(o->extents, dtm_cluster_bytes(&m), m.h.data_bytes, &rs))
		goto out;
	/* The leaves of the copy must be those of exactly the listed clusters. */
	if (o->nleaves && !leaves_load(o, &m, &lv)) {
		if (ranges_equal(&lv.covered, &rs)) {
			have = 1;
		} else {
			warnx("%s%s: leaves refused (they cover other clusters than %s lists): "
			      "rehashing from %s", o->leaves[0],
			      o->nleaves > 1 ? " and the other leaves files" : "", o->extents,
			      o->args[0]);
			leaves_free(&lv);
		}
	}
	/* Killed from here on, the manifest is rebuilt, never trusted. */
	r = dtm_mark_stale(o->manifest);
	if (r) {
		warnx("%s: cannot mark it stale: %s", o->manifest, strerror(-r));
		goto out;
	}
	if (scanner_init(&sc, &src, &m))
		goto out;
	if (have)
		leaves_apply(&lv, &m);
	for (i = 0; i < rs.n; i++) {
		if (!have && scan(&sc, rs.r[i].first, rs.r[i].nr, store_leaf, &m))
			goto out;
		if (dtm_update_tree(&m, sc.hs, rs.r[i].first, rs.r[i].nr)) {
			warnx("libcrypto failed");
			goto out;
		}
	}
	m.h.flags &= ~DTM_FLAG_STALE;
	set_identity(&m, o);
	if (!save(&m, o->manifest))
		ret = EXIT_SUCCESS;
out:
	scanner_free(&sc);
	leaves_free(&lv);
	free(rs.r);
	dtm_free(&m);
out_src:
	source_close(&src);
	return ret;
}

static int cmd_invalidate(const struct opts *o)
{
	int r = dtm_mark_stale(o->manifest);

	if (r) {
		warnx("%s: cannot mark it stale: %s", o->manifest, strerror(-r));
		return EXIT_FAILURE;
	}
	return EXIT_SUCCESS;
}

static int cmd_show(const struct opts *o)
{
	char uuid[37], root[2 * DTM_MAX_HASH + 1];
	const char *why;
	struct stat st;
	struct dtm m;
	int r = dtm_load(o->manifest, &m, &why);

	if (r) {
		warnx("%s: %s", o->manifest, why ? why : strerror(-r));
		return EXIT_FAILURE;
	}
	dtm_format_uuid(m.h.uuid, uuid);
	dtm_hex(m.h.root, m.h.hash_size, root);
	printf("version: %" PRIu32 "\nalgorithm: %s\ncluster_sectors: %" PRIu32 "\n"
	       "data_bytes: %" PRIu64 "\nclusters: %" PRIu64 "\n",
	       m.h.version, dtm_algorithm_name(m.h.algorithm), m.h.cluster_sectors,
	       m.h.data_bytes, m.h.clusters);
	if (m.h.flags & DTM_FLAG_IDENTITY)
		printf("uuid: %s\nsequence: %" PRIu64 "\n", uuid, m.h.sequence);
	else
		printf("uuid: -\nsequence: -\n");
	printf("stale: %s\nroot: %s\n", m.h.flags & DTM_FLAG_STALE ? "yes" : "no", root);
	dtm_free(&m);
	/* Trusted for IMAGE (its size, when it is a file) and the expectations? */
	if (stat(o->args[0], &st) || !S_ISREG(st.st_mode))
		st.st_size = 0;
	r = load_trusted(o, o->manifest, (uint64_t)st.st_size, &m, &why);
	if (!r)
		dtm_free(&m);
	printf("trusted: %s%s%s\n", r ? "no (" : "yes", r ? why : "", r ? ")" : "");
	if (fflush(stdout))
		return EXIT_FAILURE;
	return r ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* ------------------------------------------------------------------ */
/* verify, changed                                                     */
/* ------------------------------------------------------------------ */

/* Differing clusters, coalesced into extents of the dump formats. */
struct differ {
	struct dtm *m;
	struct dt_writer w;
	struct dt_geometry geo;
	struct dt_dump d;
	int per_cluster;		/* verify: one line per cluster */
	uint64_t run_first, run_nr;	/* pending coalesced run */
	uint64_t clusters, bytes;	/* differing */
};

static int differ_init(struct differ *df, struct dtm *m, enum dt_format fmt,
		       const char *name, const char *comment)
{
	memset(df, 0, sizeof(*df));
	df->m = m;
	if (dt_writer_init(&df->w, STDOUT_FILENO)) {
		warnx("out of memory");
		return -1;
	}
	df->geo.start = 0;
	df->geo.length = m->h.data_bytes >> 9;
	df->geo.dev_sectors = m->h.data_bytes >> 9;
	df->geo.cluster_sectors = m->h.cluster_sectors;
	df->geo.clusters = m->h.clusters;
	df->d.w = &df->w;
	df->d.format = fmt;
	df->d.geo = &df->geo;
	df->d.device = name;
	df->d.comment = comment;
	dt_dump_begin(&df->d);
	return 0;
}

static void differ_flush_run(struct differ *df)
{
	uint64_t cs = df->m->h.cluster_sectors, from, to;

	if (!df->run_nr)
		return;
	from = df->run_first * cs;
	to = (df->run_first + df->run_nr) * cs;
	if (to > df->geo.length)
		to = df->geo.length;
	dt_dump_extent(&df->d, from, to - from);
	df->run_nr = 0;
}

static void differ_add(struct differ *df, uint64_t c)
{
	df->clusters++;
	df->bytes += dtm_cluster_len(df->m, c);
	if (df->run_nr && df->run_first + df->run_nr == c && !df->per_cluster) {
		df->run_nr++;
		return;
	}
	differ_flush_run(df);
	df->run_first = c;
	df->run_nr = 1;
}

static int differ_end(struct differ *df)
{
	int r;

	differ_flush_run(df);
	r = dt_dump_end(&df->d);
	dt_writer_free(&df->w);
	if (r)
		warnx("write standard output: %s", strerror(-r));
	return r;
}

static int compare_leaf(void *ctx, uint64_t c, const unsigned char *hash)
{
	struct differ *df = ctx;

	if (memcmp(dtm_leaf(df->m, c), hash, df->m->h.hash_size))
		differ_add(df, c);
	return df->w.err;
}

/* verify IMAGE / changed DEV MANIFEST: rehash @data against @path. */
static int compare_source(const struct opts *o, const char *data, const char *path,
			  int direct, int per_cluster, enum dt_format fmt)
{
	struct scanner sc = { 0 };
	struct differ df;
	struct source src;
	struct dtm m;
	const char *why;
	int ret = EXIT_TROUBLE;

	if (source_open(&src, data, direct))
		goto out_src;
	if (load_trusted(o, path, 0, &m, &why)) {
		warnx("%s: cannot compare %s with it: the manifest %s", path, data, why);
		goto out_src;
	}
	if (m.h.data_bytes != src.size) {
		warnx("%s: %s has %" PRIu64 " bytes, the manifest is for %" PRIu64, path, data,
		      src.size, m.h.data_bytes);
		goto out_m;
	}
	if (scanner_init(&sc, &src, &m) ||
	    differ_init(&df, &m, fmt, data, "dt-manifest: clusters that differ from the manifest"))
		goto out;
	df.per_cluster = per_cluster;
	if (scan(&sc, 0, m.h.clusters, compare_leaf, &df)) {
		differ_end(&df);
		goto out;
	}
	if (!differ_end(&df))
		ret = df.clusters ? EXIT_DIFFER : EXIT_SUCCESS;
	if (ret == EXIT_DIFFER)
		warnx("%s: %" PRIu64 " of %" PRIu64 " clusters (%" PRIu64 " bytes) differ from %s",
		      data, df.clusters, m.h.clusters, df.bytes, path);
out:
	scanner_free(&sc);
out_m:
	dtm_free(&m);
out_src:
	source_close(&src);
	return ret;
}

static int cmd_verify(const struct opts *o)
{
	return compare_source(o, o->args[0], o->manifest, 1, 1, DT_FORMAT_BYTES);
}

static int cmd_changed(const struct opts *o)
{
	char *path = NULL;
	int ret;

	/* A bare dm name, as dirtyctl takes it. */
	if (!strchr(o->args[0], '/') && access(o->args[0], F_OK) &&
	    asprintf(&path, "/dev/mapper/%s", o->args[0]) < 0) {
		warnx("out of memory");
		return EXIT_TROUBLE;
	}
	ret = compare_source(o, path ? path : o->args[0], o->args[1], 1, 0, o->format);
	free(path);
	return ret;
}

/* ------------------------------------------------------------------ */
/* diff                                                                */
/* ------------------------------------------------------------------ */

static int diff_cluster(void *ctx, uint64_t c)
{
	struct differ *df = ctx;

	differ_add(df, c);
	return df->w.err;
}

static int cmd_diff(const struct opts *o)
{
	struct dtm a, b;
	struct differ df;
	const char *why;
	int ret = EXIT_TROUBLE;

	if (load_trusted(o, o->args[0], 0, &a, &why)) {
		warnx("%s: cannot compare: the manifest %s", o->args[0], why);
		return EXIT_TROUBLE;
	}
	if (load_trusted(o, o->args[1], 0, &b, &why)) {
		warnx("%s: cannot compare: the manifest %s", o->args[1], why);
		goto out_a;
	}
	if (a.h.algorithm != b.h.algorithm || a.h.cluster_sectors != b.h.cluster_sectors ||
	    a.h.data_bytes != b.h.data_bytes) {
		warnx("%s and %s cannot be compared: algorithm, cluster size or data size differ",
		      o->args[0], o->args[1]);
		goto out;
	}
	if (differ_init(&df, &a, o->format, o->args[1],
			"dt-manifest diff: clusters whose hashes differ between two manifests"))
		goto out;
	if (dtm_diff(&a, &b, diff_cluster, &df)) {
		differ_end(&df);
		goto out;
	}
	if (!differ_end(&df))
		ret = df.clusters ? EXIT_DIFFER : EXIT_SUCCESS;
out:
	dtm_free(&b);
out_a:
	dtm_free(&a);
	return ret;
}

/* ------------------------------------------------------------------ */
/* check: the self-check of tracking                                   */
/* ------------------------------------------------------------------ */

/* Runs @argv, its standard output into *out (malloc'd).  Exit status or -1. */
static int run_capture(char *const argv[], char **out)
{
	int pfd[2], status;
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	ssize_t n;
	pid_t pid;

	*out = NULL;
	if (!buf || pipe2(pfd, O_CLOEXEC)) {
		free(buf);
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		free(buf);
		return -1;
	}
	if (!pid) {
		dup2(pfd[1], STDOUT_FILENO);
		execvp(argv[0], argv);
		fprintf(stderr, PROG ": cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(pfd[1]);
	for (;;) {
		if (len + 1 >= cap) {
			char *nb = realloc(buf, cap * 2);

			if (!nb)
				break;
			buf = nb;
			cap *= 2;
		}
		n = read(pfd[0], buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			free(buf);
			return -1;
		}
	*out = buf;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/*
 * The value of KEY in `dirtyctl status --export` output (KEY=value lines),
 * into @v.  The values read here (uuid, numbers) need no shell unquoting.
 */
static int export_field(const char *out, const char *key, char *v, size_t size)
{
	size_t klen = strlen(key);
	const char *p = out, *e;

	for (; *p; p = *e ? e + 1 : e) {
		e = p + strcspn(p, "\n");
		if ((size_t)(e - p) > klen && !strncmp(p, key, klen) && p[klen] == '=') {
			p += klen + 1;
			if ((size_t)(e - p) >= size)
				return -1;
			memcpy(v, p, (size_t)(e - p));
			v[e - p] = '\0';
			return 0;
		}
	}
	return -1;
}

struct live {
	unsigned char uuid[16];
	uint64_t sequence;
	int frozen;
};

static const char *dirtyctl(void)
{
	const char *d = getenv("DIRTYCTL");

	return d && *d ? d : "dirtyctl";
}

static int live_status(const char *dev, struct live *l)
{
	char *argv[] = { (char *)dirtyctl(), (char *)"status", (char *)dev, (char *)"--export", NULL };
	char *out, v[64];
	int r = run_capture(argv, &out);

	if (r) {
		warnx("%s: %s status failed", dev, argv[0]);
		free(out);
		return -1;
	}
	r = export_field(out, "UUID", v, sizeof(v)) || dtm_parse_uuid(v, l->uuid) ||
	    export_field(out, "SEQUENCE", v, sizeof(v)) ||
	    dt_parse_u64_range(v, v + strlen(v), &l->sequence) ||
	    export_field(out, "FROZEN_CLUSTERS", v, sizeof(v));
	l->frozen = !r && *v;
	free(out);
	if (r)
		warnx("%s: unexpected output of %s status --export", dev, argv[0]);
	return r ? -1 : 0;
}

/* The dirty set (live, and frozen when there is one) as manifest clusters. */
static int live_dirty(const char *dev, const struct live *l, const struct dtm *m,
		      struct ranges *rs, const char *tmpdir)
{
	char path[4200];
	int set;

	for (set = 0; set < 1 + l->frozen; set++) {
		char *argv[] = { (char *)dirtyctl(), (char *)"dump", (char *)dev,
				 (char *)"--frozen", (char *)"--format", (char *)"bytes",
				 (char *)"-o", path, NULL };
		char *out;

		if (!set)	/* the live set: no --frozen */
			memmove(&argv[3], &argv[4], 5 * sizeof(argv[0]));
		snprintf(path, sizeof(path), "%s/dump%d", tmpdir, set);
		if (run_capture(argv, &out)) {
			free(out);
			warnx("%s: %s dump failed", dev, argv[0]);
			return -1;
		}
		free(out);
		if (read_extents(path, dtm_cluster_bytes(m), m->h.data_bytes, rs))
			return -1;
		unlink(path);
	}
	ranges_normalize(rs);
	return 0;
}

static int in_ranges(const struct ranges *rs, uint64_t c)
{
	size_t lo = 0, hi = rs->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (c < rs->r[mid].first)
			hi = mid;
		else if (c >= rs->r[mid].first + rs->r[mid].nr)
			lo = mid + 1;
		else
			return 1;
	}
	return 0;
}

struct checker {
	struct dtm *m;
	uint64_t *bad;
	size_t nbad, capbad;
	uint64_t checked;
};

static int check_leaf(void *ctx, uint64_t c, const unsigned char *hash)
{
	struct checker *ck = ctx;

	ck->checked++;
	if (!memcmp(dtm_leaf(ck->m, c), hash, ck->m->h.hash_size))
		return 0;
	if (ck->nbad == ck->capbad) {
		size_t cap = ck->capbad ? 2 * ck->capbad : 16;
		uint64_t *b = realloc(ck->bad, cap * sizeof(*b));

		if (!b)
			return -1;
		ck->bad = b;
		ck->capbad = cap;
	}
	ck->bad[ck->nbad++] = c;
	return 0;
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static int cmd_check(const struct opts *o)
{
	const char *dev = o->args[0], *path = o->args[1], *why;
	char tmpdir[] = "/tmp/dt-manifest.XXXXXX";
	struct ranges dirty = { 0 }, dirty2 = { 0 };
	struct scanner sc = { 0 };
	struct checker ck = { 0 };
	struct live l = { 0 }, l2 = { 0 };
	struct source src;
	struct dtm m;
	uint64_t c, clean = 0, pick, seed, reported = 0;
	char *dev_path = NULL;
	size_t i;
	int ret = EXIT_TROUBLE, live = !o->dirty_extents, have_tmp = 0;

	if (live && strchr(dev, '/') == NULL) {
		if (asprintf(&dev_path, "/dev/mapper/%s", dev) < 0)
			return EXIT_TROUBLE;
	}
	src.fd = src.direct_fd = -1;
	if (source_open(&src, dev_path ? dev_path : dev, 1))
		goto out_src;
	if (load_trusted(o, path, 0, &m, &why)) {
		warnx("%s: cannot check %s against it: the manifest %s", path, dev, why);
		goto out_src;
	}
	ck.m = &m;
	if (m.h.data_bytes != src.size) {
		warnx("%s: %s has %" PRIu64 " bytes, the manifest is for %" PRIu64, path, dev,
		      src.size, m.h.data_bytes);
		goto out;
	}
	if (live) {
		if (!(m.h.flags & DTM_FLAG_IDENTITY)) {
			warnx("%s: records no device identity: cannot tell which changes it misses", path);
			goto out;
		}
		if (!mkdtemp(tmpdir)) {
			warnx("cannot create a temporary directory: %s", strerror(errno));
			goto out;
		}
		have_tmp = 1;
		if (live_status(dev, &l))
			goto out;
		if (memcmp(l.uuid, m.h.uuid, 16) || l.sequence != m.h.sequence) {
			warnx("%s: the manifest is not of the device's current history (sequence %"
			      PRIu64 ", device at %" PRIu64 " or another uuid): run a backup first",
			      path, m.h.sequence, l.sequence);
			goto out;
		}
		if (live_dirty(dev, &l, &m, &dirty, tmpdir))
			goto out;
	} else if (read_extents(o->dirty_extents, dtm_cluster_bytes(&m), m.h.data_bytes, &dirty)) {
		goto out;
	}
	for (i = 0; i < dirty.n; i++)
		clean += dirty.r[i].nr;
	clean = m.h.clusters - clean;
	if (scanner_init(&sc, &src, &m))
		goto out;
	/*
	 * A sample: each clean cluster is taken with probability sample /
	 * clean, so the sample spreads over the whole device.
	 */
	seed = o->has_seed ? o->seed : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	seed = seed ? seed : 1;
	pick = o->all || o->sample >= clean ? UINT64_MAX :
		(uint64_t)((double)o->sample / (double)clean * (double)UINT64_MAX);
	if (pick == UINT64_MAX) {
		/* Every clean cluster: the runs between dirty ranges, in large reads. */
		for (c = 0, i = 0; c < m.h.clusters; i++) {
			uint64_t to = i < dirty.n ? dirty.r[i].first : m.h.clusters;

			if (to > c && scan(&sc, c, to - c, check_leaf, &ck))
				goto out;
			if (i >= dirty.n)
				break;
			c = dirty.r[i].first + dirty.r[i].nr;
		}
	} else {
		for (c = 0; c < m.h.clusters; c++) {
			if (in_ranges(&dirty, c) || xorshift(&seed) > pick)
				continue;
			if (scan(&sc, c, 1, check_leaf, &ck))
				goto out;
		}
	}
	if (live && ck.nbad) {
		/*
		 * A write during the check marks its cluster before it reaches
		 * the device: what is dirty now was written, not missed.
		 */
		if (live_status(dev, &l2))
			goto out;
		if (memcmp(l2.uuid, l.uuid, 16) || l2.sequence != l.sequence) {
			warnx("%s: the device's history moved on during the check: run it again", dev);
			goto out;
		}
		if (live_dirty(dev, &l2, &m, &dirty2, tmpdir))
			goto out;
	}
	for (i = 0; i < ck.nbad; i++) {
		if (live && in_ranges(&dirty2, ck.bad[i]))
			continue;
		printf("%s: cluster at %" PRIu64 " (%" PRIu64 " bytes) changed but is not marked "
		       "dirty: a write bypassed tracking\n", dev, ck.bad[i] * dtm_cluster_bytes(&m),
		       dtm_cluster_len(&m, ck.bad[i]));
		reported++;
	}
	if (fflush(stdout))
		goto out;
	warnx("%s: %" PRIu64 " of %" PRIu64 " clean clusters checked, %" PRIu64
	      " changed without being marked dirty", dev, ck.checked, clean, reported);
	if (reported)
		warnx("%s: the backup image lacks these changes: make a full copy", dev);
	ret = reported ? EXIT_DIFFER : EXIT_SUCCESS;
out:
	scanner_free(&sc);
	dtm_free(&m);
out_src:
	if (have_tmp)
		rmdir(tmpdir);
	source_close(&src);
	free(ck.bad);
	free(dirty.r);
	free(dirty2.r);
	free(dev_path);
	return ret;
}

/* ------------------------------------------------------------------ */
/* main                                                                */
/* ------------------------------------------------------------------ */

struct command {
	const char *name;
	int nargs;
	int (*fn)(const struct opts *o);
	int image_manifest;	/* args[0] is IMAGE: default manifest IMAGE.manifest */
};

static const struct command commands[] = {
	{ "build", 1, cmd_build, 1 },
	{ "update", 1, cmd_update, 1 },
	{ "invalidate", 1, cmd_invalidate, 1 },
	{ "verify", 1, cmd_verify, 1 },
	{ "show", 1, cmd_show, 1 },
	{ "diff", 2, cmd_diff, 0 },
	{ "changed", 2, cmd_changed, 0 },
	{ "check", 2, cmd_check, 0 },
};

enum {
	OPT_UUID = 256, OPT_SEQUENCE, OPT_EXPECT_UUID, OPT_EXPECT_SEQUENCE, OPT_ALL,
	OPT_SAMPLE, OPT_SEED, OPT_DIRTY, OPT_STALE_OK, OPT_LEAVES, OPT_THREADS,
};

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "manifest", required_argument, NULL, 'm' },
		{ "extents", required_argument, NULL, 'e' },
		{ "cluster-sectors", required_argument, NULL, 'c' },
		{ "algorithm", required_argument, NULL, 'a' },
		{ "uuid", required_argument, NULL, OPT_UUID },
		{ "sequence", required_argument, NULL, OPT_SEQUENCE },
		{ "expect-uuid", required_argument, NULL, OPT_EXPECT_UUID },
		{ "expect-sequence", required_argument, NULL, OPT_EXPECT_SEQUENCE },
		{ "format", required_argument, NULL, 'f' },
		{ "all", no_argument, NULL, OPT_ALL },
		{ "sample", required_argument, NULL, OPT_SAMPLE },
		{ "seed", required_argument, NULL, OPT_SEED },
		{ "dirty-extents", required_argument, NULL, OPT_DIRTY },
		{ "stale-ok", no_argument, NULL, OPT_STALE_OK },
		{ "leaves", required_argument, NULL, OPT_LEAVES },
		{ "threads", required_argument, NULL, OPT_THREADS },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const struct command *cmd = NULL;
	struct opts o = { .format = DT_FORMAT_BYTES, .sample = DEFAULT_SAMPLE };
	uint64_t v;
	size_t i;
	int opt, ret;

	while ((opt = getopt_long(argc, argv, "m:e:c:a:f:qhV", longopts, NULL)) != -1) {
		const char *a = optarg;

		switch (opt) {
		case 'm':
			o.manifest = a;
			break;
		case 'e':
			o.extents = a;
			break;
		case 'c':
			if (dt_parse_u64_range(a, a + strlen(a), &v) || !v ||
			    v > DTM_MAX_CLUSTER_SECTORS || (v & (v - 1)))
				return usage_error("invalid --cluster-sectors '%s': a power of two from 1 to %d",
						   a, DTM_MAX_CLUSTER_SECTORS);
			o.cluster_sectors = (uint32_t)v;
			break;
		case 'a':
			o.algorithm = dtm_algorithm_from_name(a);
			if (!o.algorithm)
				return usage_error("unknown --algorithm '%s': sha256 or blake2b256", a);
			break;
		case OPT_UUID:
		case OPT_EXPECT_UUID:
			if (dtm_parse_uuid(a, opt == OPT_UUID ? o.uuid : o.expect_uuid))
				return usage_error("invalid uuid '%s'", a);
			*(opt == OPT_UUID ? &o.has_uuid : &o.has_expect_uuid) = 1;
			break;
		case OPT_SEQUENCE:
		case OPT_EXPECT_SEQUENCE:
			if (dt_parse_u64_range(a, a + strlen(a), &v))
				return usage_error("invalid sequence '%s'", a);
			if (opt == OPT_SEQUENCE) {
				o.sequence = v;
				o.has_sequence = 1;
			} else {
				o.expect_sequence = v;
				o.has_expect_sequence = 1;
			}
			break;
		case 'f':
			if (dt_format_from_name(a, &o.format))
				return usage_error("unknown --format '%s': ranges, bytes, json or ddrescue", a);
			break;
		case OPT_ALL:
			o.all = 1;
			break;
		case OPT_SAMPLE:
		case OPT_SEED:
			if (dt_parse_u64_range(a, a + strlen(a), &v))
				return usage_error("invalid number '%s'", a);
			if (opt == OPT_SAMPLE) {
				o.sample = v;
			} else {
				o.seed = v;
				o.has_seed = 1;
			}
			break;
		case OPT_DIRTY:
			o.dirty_extents = a;
			break;
		case OPT_STALE_OK:
			o.stale_ok = 1;
			break;
		case OPT_LEAVES: {
			const char **l = realloc(o.leaves, (o.nleaves + 1) * sizeof(*l));

			if (!l) {
				warnx("out of memory");
				free(o.leaves);
				return EXIT_FAILURE;
			}
			l[o.nleaves++] = a;
			o.leaves = l;
			break;
		}
		case OPT_THREADS:
			if (dt_parse_u64_range(a, a + strlen(a), &v) || !v || v > MAX_WORKERS)
				return usage_error("invalid --threads '%s': 1 to %d", a, MAX_WORKERS);
			opt_threads = (unsigned int)v;
			break;
		case 'q':
			o.quiet = 1;
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
	if (optind >= argc)
		return usage_error("no command given");
	o.cmd = argv[optind++];
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(commands[i].name, o.cmd))
			cmd = &commands[i];
	if (!cmd)
		return usage_error("unknown command '%s'", o.cmd);
	if (argc - optind != cmd->nargs)
		return usage_error("%s: expected %s", o.cmd,
				   cmd->nargs == 1 ? "IMAGE" :
				   !strcmp(o.cmd, "diff") ? "A.manifest and B.manifest" :
				   "DEV and MANIFEST");
	for (i = 0; i < (size_t)cmd->nargs; i++)
		o.args[i] = argv[optind + i];
	o.nargs = cmd->nargs;
	if (o.has_uuid != o.has_sequence)
		return usage_error("--uuid and --sequence go together");
	if (!strcmp(o.cmd, "update") && !o.extents)
		return usage_error("update: --extents FILE is required");
	if (o.nleaves && strcmp(o.cmd, "update") && strcmp(o.cmd, "build"))
		return usage_error("%s: --leaves goes with build and update", o.cmd);
	if (cmd->image_manifest && !o.manifest) {
		if (asprintf(&o.manifest_alloc, "%s.manifest", o.args[0]) < 0) {
			warnx("out of memory");
			return EXIT_FAILURE;
		}
		o.manifest = o.manifest_alloc;
	}
	ret = cmd->fn(&o);
	free(o.leaves);
	free(o.manifest_alloc);
	return ret;
}
