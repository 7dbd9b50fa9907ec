// SPDX-License-Identifier: GPL-2.0-only OR MIT
/*
 * libFuzzer harness for the manifest parser (dtm_parse), which reads a
 * file anyone with access to the backup directory could have written.
 *
 * Input: one control byte, then the manifest.  Control bit 0 reseals the
 * header checksum, bit 1 (with bit 0) also stores the root recomputed from
 * the leaves, so that the fuzzer gets past both into the geometry checks
 * and the tree.  A manifest that parses must encode back to its header.
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
