// SPDX-License-Identifier: GPL-2.0-only OR MIT
/*
 * The hash manifest: format, hashing (OpenSSL libcrypto), Merkle tree,
 * crash-safe replacement.  See manifest.h and Documentation/manifest.md.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "crc32c.h"
#include "manifest.h"

/* ------------------------------------------------------------------ */
/* Algorithms                                                          */
/* ------------------------------------------------------------------ */

struct dtm_algo {
	unsigned int id;
	const char *name;		/* ours */
	const char *evp_name;		/* libcrypto's */
	unsigned int size;		/* bytes kept */
};

static const struct dtm_algo algos[] = {
	{ DTM_ALG_SHA256, "sha256", "SHA256", 32 },
	{ DTM_ALG_BLAKE2B256, "blake2b256", "BLAKE2B-512", 32 },
};

static const struct dtm_algo *find_algo(unsigned int id)
{
	size_t i;

	for (i = 0; i < sizeof(algos) / sizeof(algos[0]); i++)
		if (algos[i].id == id)
			return &algos[i];
	return NULL;
}

const char *dtm_algorithm_name(unsigned int algorithm)
{
	const struct dtm_algo *a = find_algo(algorithm);

	return a ? a->name : NULL;
}

unsigned int dtm_algorithm_from_name(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(algos) / sizeof(algos[0]); i++)
		if (!strcmp(algos[i].name, name))
			return algos[i].id;
	return 0;
}

struct dtm_hasher {
	const struct dtm_algo *algo;
	EVP_MD *md;
	EVP_MD_CTX *ctx;
};

struct dtm_hasher *dtm_hasher_new(unsigned int algorithm)
{
	struct dtm_hasher *hs = calloc(1, sizeof(*hs));

	if (!hs)
		return NULL;
	hs->algo = find_algo(algorithm);
	if (!hs->algo)
		goto fail;
	/* Fetched once: a by-name lookup per cluster would cost more than small hashes. */
	hs->md = EVP_MD_fetch(NULL, hs->algo->evp_name, NULL);
	hs->ctx = EVP_MD_CTX_new();
	if (!hs->md || !hs->ctx || (unsigned int)EVP_MD_get_size(hs->md) < hs->algo->size)
		goto fail;
	return hs;
fail:
	dtm_hasher_free(hs);
	return NULL;
}

void dtm_hasher_free(struct dtm_hasher *hs)
{
	if (!hs)
		return;
	EVP_MD_CTX_free(hs->ctx);
	EVP_MD_free(hs->md);
	free(hs);
}

static int hash_parts(struct dtm_hasher *hs, const void *a, size_t alen,
		      const void *b, size_t blen, const void *c, size_t clen,
		      unsigned char *out)
{
	unsigned char full[EVP_MAX_MD_SIZE];
	unsigned int n;

	if (!EVP_DigestInit_ex2(hs->ctx, hs->md, NULL) ||
	    !EVP_DigestUpdate(hs->ctx, a, alen) ||
	    (blen && !EVP_DigestUpdate(hs->ctx, b, blen)) ||
	    (clen && !EVP_DigestUpdate(hs->ctx, c, clen)) ||
	    !EVP_DigestFinal_ex(hs->ctx, full, &n) || n < hs->algo->size)
		return -EIO;
	memcpy(out, full, hs->algo->size);
	return 0;
}

int dtm_hash(struct dtm_hasher *hs, const void *data, size_t len, unsigned char *out)
{
	return hash_parts(hs, data, len, NULL, 0, NULL, 0, out);
}

int dtm_hash_begin(struct dtm_hasher *hs)
{
	return EVP_DigestInit_ex2(hs->ctx, hs->md, NULL) ? 0 : -EIO;
}

int dtm_hash_feed(struct dtm_hasher *hs, const void *data, size_t len)
{
	return EVP_DigestUpdate(hs->ctx, data, len) ? 0 : -EIO;
}

int dtm_hash_end(struct dtm_hasher *hs, unsigned char *out)
{
	unsigned char full[EVP_MAX_MD_SIZE];
	unsigned int n;

	if (!EVP_DigestFinal_ex(hs->ctx, full, &n) || n < hs->algo->size)
		return -EIO;
	memcpy(out, full, hs->algo->size);
	return 0;
}

unsigned int dtm_algorithm_size(unsigned int algorithm)
{
	const struct dtm_algo *a = find_algo(algorithm);

	return a ? a->size : 0;
}

int dtm_hash_node(struct dtm_hasher *hs, const unsigned char *left,
		  const unsigned char *right, unsigned char *out)
{
	static const unsigned char inner = 0x01;

	return hash_parts(hs, &inner, 1, left, hs->algo->size, right, hs->algo->size, out);
}

/* ------------------------------------------------------------------ */
/* The manifest in memory                                              */
/* ------------------------------------------------------------------ */

static uint64_t div_up(uint64_t a, uint64_t b)
{
	return a / b + (a % b != 0);
}

/* Sizes every level; the leaves must be allocated already. */
static int alloc_levels(struct dtm *m)
{
	uint64_t n = m->h.clusters;
	unsigned int k = 0;

	m->count[0] = n;
	while (n > 1) {
		n = div_up(n, 2);
		k++;
		m->count[k] = n;
		m->level[k] = calloc(n, m->h.hash_size);
		if (!m->level[k])
			return -ENOMEM;
	}
	m->levels = k + 1;
	return 0;
}

static int geometry_ok(uint32_t cluster_sectors, uint64_t data_bytes, const char **why)
{
	if (cluster_sectors < DTM_MIN_CLUSTER_SECTORS || cluster_sectors > DTM_MAX_CLUSTER_SECTORS ||
	    (cluster_sectors & (cluster_sectors - 1))) {
		*why = "cluster size is not a power of two between 512 bytes and 32 MiB";
		return 0;
	}
	if (!data_bytes || data_bytes % 512) {
		*why = "data size is zero or not a multiple of 512 bytes";
		return 0;
	}
	if (div_up(data_bytes, (uint64_t)cluster_sectors << 9) > DTM_MAX_CLUSTERS) {
		*why = "too many clusters";
		return 0;
	}
	return 1;
}

int dtm_init(struct dtm *m, unsigned int algorithm, uint32_t cluster_sectors,
	     uint64_t data_bytes)
{
	const struct dtm_algo *a = find_algo(algorithm);
	const char *why;

	memset(m, 0, sizeof(*m));
	if (!a || !geometry_ok(cluster_sectors, data_bytes, &why))
		return -EINVAL;
	m->h.version = DTM_VERSION;
	m->h.algorithm = (uint16_t)algorithm;
	m->h.hash_size = (uint16_t)a->size;
	m->h.cluster_sectors = cluster_sectors;
	m->h.data_bytes = data_bytes;
	m->h.clusters = div_up(data_bytes, (uint64_t)cluster_sectors << 9);
	if (m->h.clusters > SIZE_MAX / m->h.hash_size)
		return -ENOMEM;
	m->level[0] = calloc(m->h.clusters, m->h.hash_size);
	if (!m->level[0] || alloc_levels(m)) {
		dtm_free(m);
		return -ENOMEM;
	}
	return 0;
}

void dtm_free(struct dtm *m)
{
	unsigned int k;

	for (k = 0; k < sizeof(m->level) / sizeof(m->level[0]); k++) {
		free(m->level[k]);
		m->level[k] = NULL;
	}
	m->levels = 0;
}

uint64_t dtm_cluster_len(const struct dtm *m, uint64_t c)
{
	uint64_t cb = dtm_cluster_bytes(m), off = c * cb;

	return m->h.data_bytes - off < cb ? m->h.data_bytes - off : cb;
}

/* Recompute nodes [from, to] of level k + 1 from level k. */
static int rehash_level(struct dtm *m, struct dtm_hasher *hs, unsigned int k,
			uint64_t from, uint64_t to)
{
	size_t hsz = m->h.hash_size;
	uint64_t j;

	for (j = from; j <= to; j++) {
		const unsigned char *l = m->level[k] + 2 * j * hsz;
		unsigned char *out = m->level[k + 1] + j * hsz;

		if (2 * j + 1 < m->count[k]) {
			if (dtm_hash_node(hs, l, l + hsz, out))
				return -EIO;
		} else {
			memcpy(out, l, hsz);
		}
	}
	return 0;
}

static void set_root(struct dtm *m)
{
	memset(m->h.root, 0, sizeof(m->h.root));
	memcpy(m->h.root, m->level[m->levels - 1], m->h.hash_size);
}

int dtm_update_tree(struct dtm *m, struct dtm_hasher *hs, uint64_t first, uint64_t nr)
{
	uint64_t from = first, to;
	unsigned int k;

	if (!nr || first >= m->h.clusters)
		return 0;
	to = first + nr - 1 < m->h.clusters ? first + nr - 1 : m->h.clusters - 1;
	for (k = 0; k + 1 < m->levels; k++) {
		from /= 2;
		to /= 2;
		if (rehash_level(m, hs, k, from, to))
			return -EIO;
	}
	set_root(m);
	return 0;
}

int dtm_build_tree(struct dtm *m, struct dtm_hasher *hs)
{
	unsigned int k;

	for (k = 0; k + 1 < m->levels; k++)
		if (rehash_level(m, hs, k, 0, m->count[k + 1] - 1))
			return -EIO;
	set_root(m);
	return 0;
}

static int descend(const struct dtm *a, const struct dtm *b, unsigned int k, uint64_t j,
		   dtm_cluster_fn fn, void *ctx)
{
	size_t hsz = a->h.hash_size;
	int ret;

	if (!memcmp(a->level[k] + j * hsz, b->level[k] + j * hsz, hsz))
		return 0;
	if (!k)
		return fn(ctx, j);
	ret = descend(a, b, k - 1, 2 * j, fn, ctx);
	if (!ret && 2 * j + 1 < a->count[k - 1])
		ret = descend(a, b, k - 1, 2 * j + 1, fn, ctx);
	return ret;
}

int dtm_diff(const struct dtm *a, const struct dtm *b, dtm_cluster_fn fn, void *ctx)
{
	if (a->h.algorithm != b->h.algorithm || a->h.cluster_sectors != b->h.cluster_sectors ||
	    a->h.data_bytes != b->h.data_bytes || a->levels != b->levels)
		return -EINVAL;
	return descend(a, b, a->levels - 1, 0, fn, ctx);
}

/* ------------------------------------------------------------------ */
/* Serialized form                                                     */
/* ------------------------------------------------------------------ */

/* Byte offsets in the header (Documentation/manifest.md). */
#define OFF_MAGIC		0
#define OFF_VERSION		8
#define OFF_HEADER_SIZE		12
#define OFF_ALGORITHM		16
#define OFF_HASH_SIZE		18
#define OFF_FLAGS		20
#define OFF_CLUSTER_SECTORS	24
#define OFF_RESERVED		28
#define OFF_DATA_BYTES		32
#define OFF_CLUSTERS		40
#define OFF_UUID		48
#define OFF_SEQUENCE		64
#define OFF_LEAVES		72
#define OFF_ROOT		80
#define OFF_PAD			(OFF_ROOT + DTM_MAX_HASH)

static void put16(unsigned char *p, uint16_t v) { v = htole16(v); memcpy(p, &v, 2); }
static void put32(unsigned char *p, uint32_t v) { v = htole32(v); memcpy(p, &v, 4); }
static void put64(unsigned char *p, uint64_t v) { v = htole64(v); memcpy(p, &v, 8); }
static uint16_t get16(const unsigned char *p) { uint16_t v; memcpy(&v, p, 2); return le16toh(v); }
static uint32_t get32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return le32toh(v); }
static uint64_t get64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return le64toh(v); }

void dtm_encode_header(const struct dtm_header *h, unsigned char out[DTM_HEADER_SIZE])
{
	memset(out, 0, DTM_HEADER_SIZE);
	memcpy(out + OFF_MAGIC, DTM_MAGIC, 8);
	put32(out + OFF_VERSION, h->version);
	put32(out + OFF_HEADER_SIZE, DTM_HEADER_SIZE);
	put16(out + OFF_ALGORITHM, h->algorithm);
	put16(out + OFF_HASH_SIZE, h->hash_size);
	put32(out + OFF_FLAGS, h->flags);
	put32(out + OFF_CLUSTER_SECTORS, h->cluster_sectors);
	put64(out + OFF_DATA_BYTES, h->data_bytes);
	put64(out + OFF_CLUSTERS, h->clusters);
	memcpy(out + OFF_UUID, h->uuid, 16);
	put64(out + OFF_SEQUENCE, h->sequence);
	put64(out + OFF_LEAVES, DTM_HEADER_SIZE);
	memcpy(out + OFF_ROOT, h->root, h->hash_size <= DTM_MAX_HASH ? h->hash_size : DTM_MAX_HASH);
	put32(out + DTM_CSUM_OFFSET, dt_crc32c(out, DTM_CSUM_OFFSET));
}

static int all_zero(const unsigned char *p, size_t n)
{
	while (n--)
		if (*p++)
			return 0;
	return 1;
}

int dtm_decode_header(const unsigned char *buf, size_t len, struct dtm_header *h,
		      const char **why)
{
	const struct dtm_algo *a;

	memset(h, 0, sizeof(*h));
	if (len < DTM_HEADER_SIZE) {
		*why = "shorter than its header";
		return -EBADMSG;
	}
	if (memcmp(buf + OFF_MAGIC, DTM_MAGIC, 8)) {
		*why = "not a manifest (bad magic)";
		return -EBADMSG;
	}
	if (get32(buf + DTM_CSUM_OFFSET) != dt_crc32c(buf, DTM_CSUM_OFFSET)) {
		*why = "header checksum mismatch";
		return -EBADMSG;
	}
	h->version = get32(buf + OFF_VERSION);
	if (h->version != DTM_VERSION) {
		*why = "unknown format version";
		return -EBADMSG;
	}
	if (get32(buf + OFF_HEADER_SIZE) != DTM_HEADER_SIZE ||
	    get64(buf + OFF_LEAVES) != DTM_HEADER_SIZE) {
		*why = "unexpected header size or leaf offset";
		return -EBADMSG;
	}
	h->algorithm = get16(buf + OFF_ALGORITHM);
	h->hash_size = get16(buf + OFF_HASH_SIZE);
	a = find_algo(h->algorithm);
	if (!a || a->size != h->hash_size) {
		*why = "unknown hash algorithm or hash size";
		return -EBADMSG;
	}
	h->flags = get32(buf + OFF_FLAGS);
	if (h->flags & ~DTM_FLAGS_KNOWN) {
		*why = "unknown header flags";
		return -EBADMSG;
	}
	h->cluster_sectors = get32(buf + OFF_CLUSTER_SECTORS);
	h->data_bytes = get64(buf + OFF_DATA_BYTES);
	h->clusters = get64(buf + OFF_CLUSTERS);
	if (!geometry_ok(h->cluster_sectors, h->data_bytes, why))
		return -EBADMSG;
	if (h->clusters != div_up(h->data_bytes, (uint64_t)h->cluster_sectors << 9)) {
		*why = "cluster count does not match the data size";
		return -EBADMSG;
	}
	memcpy(h->uuid, buf + OFF_UUID, 16);
	h->sequence = get64(buf + OFF_SEQUENCE);
	if (!(h->flags & DTM_FLAG_IDENTITY) && (!all_zero(h->uuid, 16) || h->sequence)) {
		*why = "identity set without its flag";
		return -EBADMSG;
	}
	memcpy(h->root, buf + OFF_ROOT, h->hash_size);
	if (get32(buf + OFF_RESERVED) ||
	    !all_zero(buf + OFF_ROOT + h->hash_size, DTM_MAX_HASH - h->hash_size) ||
	    !all_zero(buf + OFF_PAD, DTM_CSUM_OFFSET - OFF_PAD)) {
		*why = "reserved bytes are not zero";
		return -EBADMSG;
	}
	return 0;
}

int dtm_parse(const unsigned char *buf, size_t len, struct dtm *m, const char **why)
{
	struct dtm_header h;
	struct dtm_hasher *hs;
	int ret;

	memset(m, 0, sizeof(*m));
	ret = dtm_decode_header(buf, len, &h, why);
	if (ret)
		return ret;
	if (len != dtm_file_size(&h)) {
		*why = len < dtm_file_size(&h) ? "truncated" : "longer than its leaves";
		return -EBADMSG;
	}
	hs = dtm_hasher_new(h.algorithm);
	if (!hs) {
		*why = "libcrypto lacks the hash algorithm";
		return -EBADMSG;
	}
	ret = dtm_init(m, h.algorithm, h.cluster_sectors, h.data_bytes);
	if (ret) {
		*why = "out of memory";
		goto out;
	}
	memcpy(dtm_leaf(m, 0), buf + DTM_HEADER_SIZE, h.clusters * h.hash_size);
	ret = dtm_build_tree(m, hs);
	if (ret) {
		*why = "libcrypto failed";
		goto out;
	}
	if (memcmp(m->h.root, h.root, h.hash_size)) {
		*why = "Merkle root does not match the leaves";
		ret = -EBADMSG;
		goto out;
	}
	m->h = h;
out:
	dtm_hasher_free(hs);
	if (ret)
		dtm_free(m);
	return ret;
}

int dtm_read_file(const char *path, uint64_t max, unsigned char **bufp, size_t *len)
{
	struct stat st;
	unsigned char *buf = NULL;
	size_t done = 0;
	ssize_t n;
	int fd, ret = 0;

	*bufp = NULL;
	*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		ret = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = -EBADMSG;
		goto out;
	}
	if ((uint64_t)st.st_size > max || (uint64_t)st.st_size > SIZE_MAX) {
		ret = -EFBIG;
		goto out;
	}
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf) {
		ret = -ENOMEM;
		goto out;
	}
	while (done < (size_t)st.st_size) {
		n = read(fd, buf + done, (size_t)st.st_size - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			goto out;
		}
		if (!n)
			break;
		done += (size_t)n;
	}
out:
	close(fd);
	if (ret)
		free(buf);
	else {
		*bufp = buf;
		*len = done;
	}
	return ret;
}

int dtm_load(const char *path, struct dtm *m, const char **why)
{
	unsigned char *buf;
	size_t len;
	int ret;

	*why = NULL;
	memset(m, 0, sizeof(*m));
	ret = dtm_read_file(path, DTM_HEADER_SIZE + DTM_MAX_CLUSTERS * DTM_MAX_HASH, &buf, &len);
	if (ret == -EBADMSG)
		*why = "not a regular file";
	else if (ret == -EFBIG) {
		*why = "too large";
		ret = -EBADMSG;
	}
	if (ret)
		return ret;
	ret = dtm_parse(buf, len, m, why);
	free(buf);
	return ret;
}

static int write_all(int fd, const void *p, size_t len)
{
	const unsigned char *b = p;
	ssize_t n;

	while (len) {
		n = write(fd, b, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Tests stop the program at a named step (DT_MANIFEST_CRASH_AT=STEP). */
static void crash_point(const char *step)
{
	const char *at = getenv("DT_MANIFEST_CRASH_AT");

	if (at && !strcmp(at, step))
		abort();
}

static int fsync_dir_of(const char *path)
{
	char *dir = strdup(path), *slash;
	int fd, ret = 0;

	if (!dir)
		return -ENOMEM;
	slash = strrchr(dir, '/');
	if (!slash)
		strcpy(dir, ".");
	else if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd))
		ret = -errno;
	if (fd >= 0)
		close(fd);
	free(dir);
	return ret;
}

int dtm_save(const struct dtm *m, const char *path, const char **what)
{
	unsigned char hdr[DTM_HEADER_SIZE];
	size_t leaves = m->h.clusters * m->h.hash_size;
	char *tmp;
	int fd, ret;

	if (asprintf(&tmp, "%s.tmp", path) < 0) {
		*what = "allocate";
		return -ENOMEM;
	}
	*what = "create the temporary file";
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		goto out;
	}
	dtm_encode_header(&m->h, hdr);
	*what = "write the temporary file";
	ret = write_all(fd, hdr, sizeof(hdr));
	if (!ret)
		ret = write_all(fd, dtm_leaf(m, 0), leaves / 2);
	crash_point("tmp-half-written");
	if (!ret)
		ret = write_all(fd, dtm_leaf(m, 0) + leaves / 2, leaves - leaves / 2);
	if (!ret && fsync(fd)) {
		*what = "fsync the temporary file";
		ret = -errno;
	}
	if (close(fd) && !ret) {
		*what = "close the temporary file";
		ret = -errno;
	}
	crash_point("before-rename");
	if (!ret && rename(tmp, path)) {
		*what = "rename the temporary file";
		ret = -errno;
	}
	if (ret) {
		unlink(tmp);
		goto out;
	}
	crash_point("after-rename");
	*what = "fsync the directory";
	ret = fsync_dir_of(path);
out:
	free(tmp);
	return ret;
}

int dtm_mark_stale(const char *path)
{
	unsigned char hdr[DTM_HEADER_SIZE];
	struct dtm_header h;
	const char *why;
	ssize_t n;
	int fd, ret = 0;

	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	n = pread(fd, hdr, sizeof(hdr), 0);
	if (n < 0) {
		ret = -errno;
		goto out;
	}
	if (dtm_decode_header(hdr, (size_t)n, &h, &why))
		goto out;	/* not trusted already */
	h.flags |= DTM_FLAG_STALE;
	dtm_encode_header(&h, hdr);
	if (pwrite(fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr) || fsync(fd))
		ret = errno ? -errno : -EIO;
out:
	close(fd);
	return ret;
}

/* ------------------------------------------------------------------ */
/* Leaves file                                                         */
/* ------------------------------------------------------------------ */

/* Trailer offsets (Documentation/manifest.md, "Leaves file"). */
#define LT_MAGIC		0
#define LT_ALGORITHM		8
#define LT_HASH_SIZE		10
#define LT_CLUSTER_SECTORS	12
#define LT_DATA_BYTES		16
#define LT_CLUSTERS		24
#define LT_RUNS			32
#define LT_RECORDS		40
#define LT_RESERVED		48
#define LT_CSUM			60

int dtm_leaves_check(const unsigned char *buf, size_t len, struct dtm_leaves_info *li,
		     const char **why)
{
	const unsigned char *t;
	const struct dtm_algo *a;
	uint64_t runs = 0, records = 0, first, count;
	size_t pos, end;

	memset(li, 0, sizeof(*li));
	if (len < DTM_LEAVES_HEADER + DTM_LEAVES_TRAILER) {
		*why = "truncated (shorter than its header and trailer)";
		return -EBADMSG;
	}
	if (memcmp(buf, DTM_LEAVES_MAGIC, 8)) {
		*why = "not a leaves file (bad magic)";
		return -EBADMSG;
	}
	t = buf + len - DTM_LEAVES_TRAILER;
	if (memcmp(t + LT_MAGIC, DTM_LEAVES_END_MAGIC, 8)) {
		*why = "truncated (no trailer)";
		return -EBADMSG;
	}
	if (get32(t + LT_CSUM) != dt_crc32c(buf, len - 4)) {
		*why = "checksum mismatch";
		return -EBADMSG;
	}
	if (get32(buf + 8) != DTM_LEAVES_VERSION || get32(buf + 12) ||
	    !all_zero(t + LT_RESERVED, LT_CSUM - LT_RESERVED)) {
		*why = "unknown version or reserved bytes not zero";
		return -EBADMSG;
	}
	li->algorithm = get16(t + LT_ALGORITHM);
	li->hash_size = get16(t + LT_HASH_SIZE);
	a = find_algo(li->algorithm);
	if (!a || a->size != li->hash_size) {
		*why = "unknown hash algorithm or hash size";
		return -EBADMSG;
	}
	li->cluster_sectors = get32(t + LT_CLUSTER_SECTORS);
	li->data_bytes = get64(t + LT_DATA_BYTES);
	li->clusters = get64(t + LT_CLUSTERS);
	if (!geometry_ok(li->cluster_sectors, li->data_bytes, why))
		return -EBADMSG;
	if (li->clusters != div_up(li->data_bytes, (uint64_t)li->cluster_sectors << 9)) {
		*why = "cluster count does not match the data size";
		return -EBADMSG;
	}
	end = len - DTM_LEAVES_TRAILER;
	for (pos = DTM_LEAVES_HEADER; pos < end; runs++) {
		if (end - pos < DTM_LEAVES_RUN_HEADER) {
			*why = "a run header is cut short";
			return -EBADMSG;
		}
		first = get64(buf + pos);
		count = get32(buf + pos + 8);
		if (!count || count > DTM_LEAVES_MAX_RUN || get32(buf + pos + 12)) {
			*why = "a run has a bad length or reserved bytes";
			return -EBADMSG;
		}
		if (first >= li->clusters || count > li->clusters - first) {
			*why = "a run lies beyond the last cluster";
			return -EBADMSG;
		}
		pos += DTM_LEAVES_RUN_HEADER;
		if ((end - pos) / li->hash_size < count) {
			*why = "a run is cut short";
			return -EBADMSG;
		}
		pos += count * li->hash_size;
		records += count;
	}
	if (runs != get64(t + LT_RUNS) || records != get64(t + LT_RECORDS)) {
		*why = "run or record count does not match the trailer";
		return -EBADMSG;
	}
	li->runs = runs;
	li->records = records;
	return 0;
}

int dtm_leaves_walk(const unsigned char *buf, size_t len, dtm_run_fn fn, void *ctx)
{
	const unsigned char *t = buf + len - DTM_LEAVES_TRAILER;
	unsigned int hsz = get16(t + LT_HASH_SIZE);
	size_t pos, end = len - DTM_LEAVES_TRAILER;
	uint64_t count;
	int ret;

	for (pos = DTM_LEAVES_HEADER; pos < end; pos += count * hsz) {
		count = get32(buf + pos + 8);
		ret = fn(ctx, get64(buf + pos), count, buf + pos + DTM_LEAVES_RUN_HEADER);
		if (ret)
			return ret;
		pos += DTM_LEAVES_RUN_HEADER;
	}
	return 0;
}

static int leaves_write(struct dtm_leaves_out *lo, const void *p, size_t len)
{
	lo->crc = dt_crc32c_extend(lo->crc, p, len);
	return write_all(lo->fd, p, len);
}

int dtm_leaves_create(struct dtm_leaves_out *lo, const char *path, unsigned int algorithm,
		      uint32_t cluster_sectors)
{
	unsigned char hdr[DTM_LEAVES_HEADER] = { 0 };
	const struct dtm_algo *a = find_algo(algorithm);
	int ret;

	memset(lo, 0, sizeof(*lo));
	lo->fd = -1;
	if (!a)
		return -EINVAL;
	lo->algorithm = algorithm;
	lo->hash_size = a->size;
	lo->cluster_sectors = cluster_sectors;
	lo->run = malloc(DTM_LEAVES_RUN_HEADER + (size_t)DTM_LEAVES_MAX_RUN * a->size);
	if (!lo->run)
		return -ENOMEM;
	lo->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (lo->fd < 0) {
		ret = -errno;
		dtm_leaves_abort(lo);
		return ret;
	}
	memcpy(hdr, DTM_LEAVES_MAGIC, 8);
	put32(hdr + 8, DTM_LEAVES_VERSION);
	ret = leaves_write(lo, hdr, sizeof(hdr));
	if (ret)
		dtm_leaves_abort(lo);
	return ret;
}

static int leaves_flush_run(struct dtm_leaves_out *lo)
{
	int ret;

	if (!lo->run_count)
		return 0;
	put64(lo->run, lo->run_first);
	put32(lo->run + 8, (uint32_t)lo->run_count);
	put32(lo->run + 12, 0);
	ret = leaves_write(lo, lo->run, DTM_LEAVES_RUN_HEADER + lo->run_count * lo->hash_size);
	lo->runs++;
	lo->records += lo->run_count;
	lo->run_count = 0;
	return ret;
}

int dtm_leaves_add(struct dtm_leaves_out *lo, uint64_t cluster, const unsigned char *hash)
{
	int ret;

	if (lo->run_count && (cluster != lo->run_first + lo->run_count ||
			      lo->run_count == DTM_LEAVES_MAX_RUN)) {
		ret = leaves_flush_run(lo);
		if (ret)
			return ret;
	}
	if (!lo->run_count)
		lo->run_first = cluster;
	memcpy(lo->run + DTM_LEAVES_RUN_HEADER + lo->run_count * lo->hash_size, hash,
	       lo->hash_size);
	lo->run_count++;
	return 0;
}

int dtm_leaves_finish(struct dtm_leaves_out *lo, uint64_t data_bytes)
{
	unsigned char t[DTM_LEAVES_TRAILER] = { 0 };
	int ret = leaves_flush_run(lo);

	memcpy(t + LT_MAGIC, DTM_LEAVES_END_MAGIC, 8);
	put16(t + LT_ALGORITHM, (uint16_t)lo->algorithm);
	put16(t + LT_HASH_SIZE, (uint16_t)lo->hash_size);
	put32(t + LT_CLUSTER_SECTORS, lo->cluster_sectors);
	put64(t + LT_DATA_BYTES, data_bytes);
	put64(t + LT_CLUSTERS, div_up(data_bytes, (uint64_t)lo->cluster_sectors << 9));
	put64(t + LT_RUNS, lo->runs);
	put64(t + LT_RECORDS, lo->records);
	lo->crc = dt_crc32c_extend(lo->crc, t, LT_CSUM);
	put32(t + LT_CSUM, lo->crc);
	if (!ret)
		ret = write_all(lo->fd, t, sizeof(t));
	if (close(lo->fd) && !ret)
		ret = -errno;
	lo->fd = -1;
	free(lo->run);
	lo->run = NULL;
	return ret;
}

void dtm_leaves_abort(struct dtm_leaves_out *lo)
{
	if (lo->fd >= 0)
		close(lo->fd);
	lo->fd = -1;
	free(lo->run);
	lo->run = NULL;
}

/* ------------------------------------------------------------------ */
/* Text                                                                */
/* ------------------------------------------------------------------ */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int dtm_parse_uuid(const char *s, unsigned char uuid[16])
{
	unsigned int n = 0;
	int hi, lo;

	while (*s) {
		if (*s == '-') {
			s++;
			continue;
		}
		hi = hexval(s[0]);
		lo = hi < 0 ? -1 : hexval(s[1]);
		if (lo < 0 || n == 16)
			return -EINVAL;
		uuid[n++] = (unsigned char)(hi << 4 | lo);
		s += 2;
	}
	return n == 16 ? 0 : -EINVAL;
}

void dtm_hex(const unsigned char *p, size_t len, char *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = hex[p[i] >> 4];
		out[2 * i + 1] = hex[p[i] & 15];
	}
	out[2 * len] = '\0';
}

void dtm_format_uuid(const unsigned char uuid[16], char out[37])
{
	char hex[33];

	dtm_hex(uuid, 16, hex);
	snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16,
		 hex + 20);
}
