// SPDX-License-Identifier: GPL-2.0-only OR MIT
/*
 * libFuzzer harness for the metadata reader behind "dirtyctl inspect".
 *
 * Input: one control byte, then the device image.  Control bit 0 seals
 * the superblock with a correct checksum (so the fuzzer gets past it),
 * bits 1-7 make the device claim up to 127 blocks more than the image
 * holds, so that reads come back short.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "inspect.h"

struct image {
	const unsigned char *data;
	size_t len;
};

static int image_read(void *ctx, void *buf, size_t len, uint64_t off)
{
	const struct image *m = ctx;

	if (off > m->len || len > m->len - off)
		return -61;		/* -ENODATA */
	memcpy(buf, m->data + off, len);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dt_md_source src;
	struct dt_md_info info;
	struct image m;
	unsigned char *copy;
	int ret;

	if (size < 1)
		return 0;
	m.len = size - 1;
	copy = malloc(m.len ? m.len : 1);
	if (!copy)
		return 0;
	memcpy(copy, data + 1, m.len);
	if ((data[0] & 1) && m.len >= DT_SB_SIZE) {
		uint32_t csum = htole32(dt_crc32c(copy + 4, DT_SB_SIZE - 4));

		memcpy(copy, &csum, sizeof(csum));
	}
	m.data = copy;
	src.read = image_read;
	src.ctx = &m;
	src.size = m.len + (uint64_t)(data[0] >> 1) * DT_BLOCK_SIZE;

	ret = dt_md_inspect(&src, &info);
	if (ret == 0 && info.state == DT_MD_SOUND) {
		assert(info.problem == NULL);
		assert(info.dirty_clusters <= info.clusters);
		assert(info.frozen_clusters <= info.clusters);
		assert(dt_metadata_min_sectors(info.clusters) <= src.size >> 9);
	}
	if (ret == 0 && info.state == DT_MD_CORRUPT)
		assert(info.problem != NULL);
	free(copy);
	return 0;
}
