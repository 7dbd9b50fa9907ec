// SPDX-License-Identifier: GPL-2.0-only OR MIT
/*
 * libFuzzer harness for the manifest parser (dtm_parse), which reads a
 * file anyone with access to the backup directory could have written.
 *
 * Input: one control byte, then the manifest.  Control bit 0 reseals the
 * header checksum, bit 1 (with bit 0) also stores the root recomputed from
 * the leaves, so that the fuzzer gets past both into the geometry checks
 * and the tree.  A manifest that parses must encode back to its header.
 *
 * Control bit 2 makes the input a leaves file (dt-copy-extents --hash-to,
 * dtm_leaves_check) instead; bit 0 then seals its trailer's checksum.  A
 * leaves file that passes must walk within its clusters and counts.
 */
#include <assert.h>
#include <endian.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "manifest.h"

static struct dtm_hasher *hasher(unsigned int alg)
{
	static struct dtm_hasher *hs[3];

	if (alg > 2)
		return NULL;
	if (!hs[alg])
		hs[alg] = dtm_hasher_new(alg);
	return hs[alg];
}

static void reseal(unsigned char *buf)
{
	uint32_t c = htole32(dt_crc32c(buf, DTM_CSUM_OFFSET));

	memcpy(buf + DTM_CSUM_OFFSET, &c, 4);
}

/* Store the root the leaves give, if the header is good enough to say. */
static void fix_root(unsigned char *buf, size_t len)
{
	struct dtm_header h;
	struct dtm m;
	const char *why;

	if (dtm_decode_header(buf, len, &h, &why) || len != dtm_file_size(&h) ||
	    !hasher(h.algorithm) || dtm_init(&m, h.algorithm, h.cluster_sectors, h.data_bytes))
		return;
	memcpy(dtm_leaf(&m, 0), buf + DTM_HEADER_SIZE, h.clusters * h.hash_size);
	if (!dtm_build_tree(&m, hasher(h.algorithm)))
		memcpy(buf + 80, m.h.root, h.hash_size);
	dtm_free(&m);
	reseal(buf);
}

struct walk {
	struct dtm_leaves_info li;
	uint64_t runs, records;
};

static int walk_run(void *ctx, uint64_t first, uint64_t count, const unsigned char *h)
{
	struct walk *w = ctx;
	volatile unsigned char sink = 0;
	uint64_t i;

	assert(count >= 1 && first < w->li.clusters && count <= w->li.clusters - first);
	for (i = 0; i < count * w->li.hash_size; i++)
		sink ^= h[i];	/* every hash lies inside the buffer (ASan) */
	(void)sink;
	w->runs++;
	w->records += count;
	return 0;
}

static void fuzz_leaves(unsigned char *buf, size_t len, int seal)
{
	struct walk w = { 0 };
	const char *why = NULL;

	if (seal && len >= DTM_LEAVES_HEADER + DTM_LEAVES_TRAILER) {
		uint32_t c = htole32(dt_crc32c(buf, len - 4));

		memcpy(buf + len - 4, &c, 4);
	}
	if (!dtm_leaves_check(buf, len, &w.li, &why)) {
		assert(!dtm_leaves_walk(buf, len, walk_run, &w));
		assert(w.runs == w.li.runs && w.records == w.li.records);
	} else {
		assert(why && *why);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *buf, again[DTM_HEADER_SIZE];
	const char *why = NULL;
	struct dtm m;
	size_t len;

	if (size < 1)
		return 0;
	len = size - 1;
	buf = malloc(len ? len : 1);
	assert(buf);
	memcpy(buf, data + 1, len);
	if (data[0] & 4) {
		fuzz_leaves(buf, len, data[0] & 1);
		free(buf);
		return 0;
	}
	if ((data[0] & 1) && len >= DTM_HEADER_SIZE) {
		reseal(buf);
		if (data[0] & 2)
			fix_root(buf, len);
	}
	if (!dtm_parse(buf, len, &m, &why)) {
		assert(m.levels >= 1 && m.count[m.levels - 1] == 1);
		assert(!memcmp(m.h.root, m.level[m.levels - 1], m.h.hash_size));
		dtm_encode_header(&m.h, again);
		assert(!memcmp(again, buf, DTM_HEADER_SIZE));
		dtm_free(&m);
	} else {
		assert(why && *why);
	}
	free(buf);
	return 0;
}
