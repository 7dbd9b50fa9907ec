// SPDX-License-Identifier: GPL-2.0-only OR MIT
/*
 * Host unit tests of the hash manifest (manifest.c), TAP output: format
 * round trip and rejection of every kind of damage, tree update against a
 * full rebuild, diff by descending the tree, crash-safe save, and the
 * leaves file of hash-while-copying (round trip, every truncation and
 * every flipped bit refused).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../crc32c.h"
#include "../manifest.h"

static unsigned int tests_run, tests_failed;
static int case_failed;

static int check(int ok, const char *what, int line)
{
	if (!ok) {
		printf("#   line %d: check failed: %s\n", line, what);
		case_failed = 1;
	}
	return ok;
}

#define CHECK(cond) check(!!(cond), #cond, __LINE__)

static void end(const char *name)
{
	tests_run++;
	if (case_failed)
		tests_failed++;
	printf("%s %u - %s\n", case_failed ? "not ok" : "ok", tests_run, name);
	case_failed = 0;
}

/* A manifest of @clusters clusters whose leaves are hashes of their index. */
static void make(struct dtm *m, struct dtm_hasher *hs, uint64_t data_bytes, uint32_t cs)
{
	uint64_t c;

	if (dtm_init(m, DTM_ALG_SHA256, cs, data_bytes))
		abort();
	for (c = 0; c < m->h.clusters; c++)
		dtm_hash(hs, &c, sizeof(c), dtm_leaf(m, c));
	dtm_build_tree(m, hs);
}

static unsigned char *serialize(const struct dtm *m, size_t *len)
{
	size_t leaves = m->h.clusters * m->h.hash_size;
	unsigned char *buf = malloc(DTM_HEADER_SIZE + leaves);

	dtm_encode_header(&m->h, buf);
	memcpy(buf + DTM_HEADER_SIZE, dtm_leaf(m, 0), leaves);
	*len = DTM_HEADER_SIZE + leaves;
	return buf;
}

static void reseal(unsigned char *buf)
{
	uint32_t c = dt_crc32c(buf, DTM_CSUM_OFFSET);

	memcpy(buf + DTM_CSUM_OFFSET, &c, 4);	/* little-endian host */
}

static void test_known_answer(struct dtm_hasher *hs)
{
	/* sha256("abc") */
	static const char want[] =
		"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
	unsigned char h[32];
	char hex[65];
	struct dtm_hasher *b = dtm_hasher_new(DTM_ALG_BLAKE2B256);

	CHECK(!dtm_hash(hs, "abc", 3, h));
	dtm_hex(h, 32, hex);
	CHECK(!strcmp(hex, want));
	CHECK(b != NULL);
	if (b) {
		/* BLAKE2b-512("abc"), first 32 bytes (RFC 7693 appendix A) */
		CHECK(!dtm_hash(b, "abc", 3, h));
		dtm_hex(h, 32, hex);
		CHECK(!strncmp(hex, "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d1", 64));
	}
	dtm_hasher_free(b);
	end("leaves are the plain SHA-256 and truncated BLAKE2b-512 of the data");
}

static void test_round_trip(struct dtm_hasher *hs)
{
	struct dtm m, p;
	const char *why = NULL;
	unsigned char *buf;
	size_t len;

	make(&m, hs, 1000 * 512, 8);	/* 125 clusters, the last one short */
	m.h.flags = DTM_FLAG_IDENTITY;
	memset(m.h.uuid, 0xab, 16);
	m.h.sequence = 42;
	buf = serialize(&m, &len);
	CHECK(len == 512 + 125 * 32);
	CHECK(!memcmp(buf, "DTMANIF", 8));
	CHECK(!dtm_parse(buf, len, &p, &why));
	if (!case_failed) {
		CHECK(p.h.sequence == 42 && p.h.clusters == 125 && p.h.cluster_sectors == 8);
		CHECK(!memcmp(p.h.root, m.h.root, 32));
		CHECK(p.h.flags == DTM_FLAG_IDENTITY);
		CHECK(dtm_cluster_len(&p, 124) == 1000 * 512 - 124 * 4096);
		dtm_free(&p);
	}
	free(buf);
	dtm_free(&m);
	end("a manifest survives serialize and parse with header, leaves and root");
}

static int rejected(const unsigned char *buf, size_t len, const char *want)
{
	struct dtm p;
	const char *why = "";
	int r = dtm_parse(buf, len, &p, &why);

	if (!r) {
		dtm_free(&p);
		printf("#   accepted, wanted \"%s\"\n", want);
		return 0;
	}
	if (!strstr(why, want)) {
		printf("#   rejected with \"%s\", wanted \"%s\"\n", why, want);
		return 0;
	}
	return r == -EBADMSG;
}

static void test_damage(struct dtm_hasher *hs)
{
	struct dtm m;
	unsigned char *buf;
	size_t len;

	make(&m, hs, 64 * 4096, 8);
	buf = serialize(&m, &len);

	buf[100] ^= 1;
	CHECK(rejected(buf, len, "checksum"));
	buf[100] ^= 1;
	buf[0] = 'X';
	CHECK(rejected(buf, len, "magic"));
	buf[0] = 'D';
	buf[DTM_HEADER_SIZE + 5 * 32] ^= 0x80;	/* a leaf */
	CHECK(rejected(buf, len, "root"));
	buf[DTM_HEADER_SIZE + 5 * 32] ^= 0x80;
	CHECK(rejected(buf, len - 1, "truncated"));
	CHECK(rejected(buf, 100, "shorter"));
	buf[20] = 4;				/* unknown flag */
	reseal(buf);
	CHECK(rejected(buf, len, "flags"));
	buf[20] = 0;
	buf[24] = 3;				/* cluster_sectors 3 */
	reseal(buf);
	CHECK(rejected(buf, len, "power of two"));
	buf[24] = 8;
	buf[40] = 63;				/* clusters */
	reseal(buf);
	CHECK(rejected(buf, len, "cluster count"));
	buf[40] = 64;
	buf[16] = 9;				/* algorithm */
	reseal(buf);
	CHECK(rejected(buf, len, "algorithm"));
	buf[16] = 1;
	buf[300] = 1;				/* reserved */
	reseal(buf);
	CHECK(rejected(buf, len, "reserved"));
	buf[300] = 0;
	buf[48] = 1;				/* uuid without IDENTITY */
	reseal(buf);
	CHECK(rejected(buf, len, "identity"));
	buf[48] = 0;
	reseal(buf);
	{
		struct dtm p;
		const char *why;

		CHECK(!dtm_parse(buf, len, &p, &why));
		dtm_free(&p);
	}
	free(buf);
	dtm_free(&m);
	end("damaged headers, leaves and sizes are rejected, each with its reason");
}

static void test_update_tree(struct dtm_hasher *hs)
{
	static const uint64_t sizes[] = { 1, 2, 3, 7, 64, 65, 1000 };
	size_t i;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint64_t n = sizes[i], c, first, nr;
		struct dtm a, b;

		make(&a, hs, n * 4096, 8);
		make(&b, hs, n * 4096, 8);
		for (first = 0; first < n; first += 1 + n / 5) {
			nr = 1 + (first * 7) % (n - first);
			for (c = first; c < first + nr; c++)
				dtm_leaf(&a, c)[0] ^= 0x5a;
			CHECK(!dtm_update_tree(&a, hs, first, nr));
			for (c = first; c < first + nr; c++)
				dtm_leaf(&b, c)[0] ^= 0x5a;
			CHECK(!dtm_build_tree(&b, hs));
			CHECK(!memcmp(a.h.root, b.h.root, 32));
		}
		if (n == 1)
			CHECK(!memcmp(a.h.root, dtm_leaf(&a, 0), 32));
		dtm_free(&a);
		dtm_free(&b);
	}
	end("updating the nodes above changed leaves gives the root of a full rebuild");
}

struct collect {
	uint64_t c[64];
	unsigned int n;
};

static int collect(void *ctx, uint64_t c)
{
	struct collect *k = ctx;

	if (k->n < 64)
		k->c[k->n] = c;
	k->n++;
	return 0;
}

static void test_diff(struct dtm_hasher *hs)
{
	static const uint64_t changed[] = { 0, 1, 77, 500, 998 };
	struct collect k = { 0 };
	struct dtm a, b;
	unsigned int i;

	make(&a, hs, 999 * 4096, 8);
	make(&b, hs, 999 * 4096, 8);
	CHECK(!dtm_diff(&a, &b, collect, &k) && k.n == 0);
	for (i = 0; i < 5; i++) {
		dtm_leaf(&b, changed[i])[31] ^= 1;
		dtm_update_tree(&b, hs, changed[i], 1);
	}
	CHECK(!dtm_diff(&a, &b, collect, &k));
	CHECK(k.n == 5);
	for (i = 0; i < 5 && i < k.n; i++)
		CHECK(k.c[i] == changed[i]);
	dtm_free(&b);
	make(&b, hs, 998 * 4096, 8);
	CHECK(dtm_diff(&a, &b, collect, &k) == -EINVAL);
	dtm_free(&a);
	dtm_free(&b);
	end("diff descends to exactly the differing clusters, ascending");
}

static void test_save_load(struct dtm_hasher *hs)
{
	char dir[] = "/tmp/manifest-tests.XXXXXX", path[64], tmp[80];
	struct dtm m, p;
	const char *why, *what;
	struct stat st;

	if (!mkdtemp(dir))
		abort();
	snprintf(path, sizeof(path), "%s/m", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	make(&m, hs, 100 * 4096, 8);
	CHECK(!dtm_save(&m, path, &what));
	CHECK(stat(tmp, &st) && errno == ENOENT);
	CHECK(!stat(path, &st) && (st.st_mode & 0777) == 0600);
	CHECK(!dtm_load(path, &p, &why) && !(p.h.flags & DTM_FLAG_STALE));
	dtm_free(&p);
	CHECK(!dtm_mark_stale(path));
	CHECK(!dtm_load(path, &p, &why) && (p.h.flags & DTM_FLAG_STALE));
	dtm_free(&p);
	CHECK(dtm_load(tmp, &p, &why) == -ENOENT);
	CHECK(!dtm_mark_stale(tmp));	/* missing: nothing to distrust */
	unlink(path);
	rmdir(dir);
	dtm_free(&m);
	end("save replaces the file durably (mode 0600, no .tmp left); invalidate sets STALE");
}

static void test_uuid(void)
{
	unsigned char u[16];
	char s[37];

	CHECK(!dtm_parse_uuid("5b8a4c2e-0000-4000-8000-00000000000a", u));
	dtm_format_uuid(u, s);
	CHECK(!strcmp(s, "5b8a4c2e-0000-4000-8000-00000000000a"));
	CHECK(dtm_parse_uuid("5b8a4c2e", u) == -EINVAL);
	CHECK(dtm_parse_uuid("5b8a4c2e-0000-4000-8000-00000000000a00", u) == -EINVAL);
	CHECK(dtm_parse_uuid("zb8a4c2e-0000-4000-8000-00000000000a", u) == -EINVAL);
	end("uuids parse from and print to their text form");
}

struct walked {
	unsigned char leaf[6000][32];
	uint64_t records;
};

static int walk_run(void *ctx, uint64_t first, uint64_t count, const unsigned char *h)
{
	struct walked *w = ctx;

	memcpy(w->leaf[first], h, count * 32);
	w->records += count;
	return 0;
}

/* Writes a leaves file of the clusters @cl (in order), and reads it whole. */
static unsigned char *leaves_file(const char *path, const uint64_t *cl, size_t n,
				  uint64_t data_bytes, size_t *len)
{
	struct dtm_leaves_out lo;
	unsigned char h[32], *buf;
	size_t i;

	if (dtm_leaves_create(&lo, path, DTM_ALG_SHA256, 8))
		abort();
	for (i = 0; i < n; i++) {
		memset(h, 0, sizeof(h));
		memcpy(h, &cl[i], sizeof(cl[i]));
		h[31] = (unsigned char)i;	/* a later record of a cluster differs */
		if (dtm_leaves_add(&lo, cl[i], h))
			abort();
	}
	if (dtm_leaves_finish(&lo, data_bytes) || dtm_read_file(path, 1 << 30, &buf, len))
		abort();
	return buf;
}

static void test_leaves(void)
{
	static const uint64_t small[] = { 3, 4, 5, 9, 0, 3, 5000 };
	static struct walked w;
	char dir[] = "/tmp/manifest-tests.XXXXXX", path[64];
	struct dtm_leaves_info li;
	uint64_t *big, data = 5000ULL * 4096 + 512;
	unsigned char *buf, *copy;
	const char *why;
	size_t len, i, bit;
	unsigned char want[32] = { 0 };

	if (!mkdtemp(dir))
		abort();
	snprintf(path, sizeof(path), "%s/leaves", dir);
	buf = leaves_file(path, small, 7, data, &len);
	CHECK(!dtm_leaves_check(buf, len, &li, &why));
	CHECK(li.clusters == 5001 && li.records == 7 && li.runs == 5 && li.data_bytes == data);
	CHECK(!dtm_leaves_walk(buf, len, walk_run, &w) && w.records == 7);
	memcpy(want, &small[0], 8);
	want[31] = 5;		/* cluster 3: the later record holds */
	CHECK(!memcmp(w.leaf[3], want, 32));
	/* Every truncation and every flipped bit is refused. */
	copy = malloc(len);
	for (i = 0; i < len; i++)
		CHECK(dtm_leaves_check(buf, i, &li, &why) == -EBADMSG);
	for (i = 0; i < len; i++)
		for (bit = 0; bit < 8; bit++) {
			memcpy(copy, buf, len);
			copy[i] ^= (unsigned char)(1 << bit);
			if (!CHECK(dtm_leaves_check(copy, len, &li, &why) == -EBADMSG))
				printf("#   byte %zu bit %zu accepted\n", i, bit);
		}
	free(copy);
	free(buf);
	/* A cluster beyond the data is refused, checksum and all. */
	{
		static const uint64_t beyond[] = { 5001 };

		buf = leaves_file(path, beyond, 1, data, &len);
		CHECK(dtm_leaves_check(buf, len, &li, &why) == -EBADMSG &&
		      !strcmp(why, "a run lies beyond the last cluster"));
		free(buf);
	}
	/* Long runs are split at DTM_LEAVES_MAX_RUN hashes. */
	big = malloc(5001 * sizeof(*big));
	for (i = 0; i < 5001; i++)
		big[i] = i;
	buf = leaves_file(path, big, 5001, data, &len);
	CHECK(!dtm_leaves_check(buf, len, &li, &why));
	CHECK(li.runs == 2 && li.records == 5001);
	w.records = 0;
	CHECK(!dtm_leaves_walk(buf, len, walk_run, &w) && w.records == 5001);
	memset(want, 0, sizeof(want));
	memcpy(want, &big[4500], 8);
	want[31] = (unsigned char)4500;
	CHECK(!memcmp(w.leaf[4500], want, 32));
	free(buf);
	free(big);
	unlink(path);
	rmdir(dir);
	end("leaves files round trip; every truncation and flipped bit is refused");
}

int main(void)
{
	struct dtm_hasher *hs = dtm_hasher_new(DTM_ALG_SHA256);

	if (!hs) {
		printf("1..0 # SKIP libcrypto has no SHA-256\n");
		return 0;
	}
	printf("1..8\n");
	test_known_answer(hs);
	test_round_trip(hs);
	test_damage(hs);
	test_update_tree(hs);
	test_diff(hs);
	test_save_load(hs);
	test_uuid();
	test_leaves();
	dtm_hasher_free(hs);
	return tests_failed ? 1 : 0;
}
