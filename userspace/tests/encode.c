// SPDX-License-Identifier: GPL-2.0-only OR MIT
#include <endian.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../crc32c.h"
#include "../parse.h"
#include "encode.h"

#define REPLY_HEADER_MAX 64	/* as in dm-dirtytrack-target.c */
#define REPLY_ITEM_MAX 18

static char *put_zero_run(char *p, uint64_t zeros)
{
	return p + sprintf(p, "%c%llx%c", DT_ZERO_RUN, (unsigned long long)zeros,
			   DT_ZERO_RUN_END);
}

uint64_t dt_test_encode_page(const uint64_t *words, uint64_t clusters,
			     uint64_t first, uint64_t epoch, char *out,
			     size_t maxlen)
{
	static const char hex[] = "0123456789abcdef";
	uint64_t ngroups = dt_groups(clusters), g, zeros = 0;
	char *p = out + REPLY_HEADER_MAX, *end = out + maxlen - 2;
	int header;

	/* The kernel refuses smaller buffers with -ENOSPC. */
	if (maxlen < REPLY_HEADER_MAX + REPLY_ITEM_MAX + 2)
		abort();
	if (first > ngroups)
		first = ngroups;
	for (g = first; g < ngroups; g++) {
		uint64_t v = htole64(words[g]);
		const unsigned char *b = (const unsigned char *)&v;
		unsigned int i;

		if (end - p < 2 * REPLY_ITEM_MAX)
			break;
		if (!v) {
			zeros++;
			continue;
		}
		if (zeros) {
			p = put_zero_run(p, zeros);
			zeros = 0;
		}
		/* As the kernel: few bits as positions, more as hex. */
		if ((unsigned int)__builtin_popcountll(words[g]) <= DT_SPARSE_MAX) {
			static const char digits[] = DT_POS_DIGITS;
			uint64_t w = words[g];

			*p++ = (char)(DT_SPARSE_MARK + __builtin_popcountll(w) - 1);
			for (; w; w &= w - 1)
				*p++ = digits[__builtin_ctzll(w)];
			continue;
		}
		for (i = 0; i < DT_GROUP_BYTES; i++) {
			*p++ = hex[b[i] >> 4];
			*p++ = hex[b[i] & 0xf];
		}
	}
	if (zeros)
		p = put_zero_run(p, zeros);
	*p = '\0';
	header = snprintf(out, REPLY_HEADER_MAX, "%llu %llu %llu ",
			  (unsigned long long)epoch, (unsigned long long)first,
			  (unsigned long long)(g - first));
	memmove(out + header, out + REPLY_HEADER_MAX,
		(size_t)(p - (out + REPLY_HEADER_MAX)) + 1);
	return g - first;
}

void dt_test_seal_superblock(unsigned char *block)
{
	uint32_t csum = htole32(dt_crc32c(block + 4, DT_SB_SIZE - 4));

	memcpy(block, &csum, sizeof(csum));
}

void dt_test_make_superblock(unsigned char *block, uint64_t data_sectors,
			     uint32_t cluster_sectors, uint32_t flags)
{
	struct dt_disk_superblock sb;
	uint64_t nr = dt_nr_clusters(data_sectors, cluster_sectors);
	uint64_t bb = dt_bitmap_blocks(nr);
	unsigned int i;

	memset(block, 0, DT_BLOCK_SIZE);
	memset(&sb, 0, sizeof(sb));
	sb.magic = htole32(DT_SB_MAGIC);
	sb.version = htole32(DT_SB_VERSION);
	sb.flags = htole32(flags);
	for (i = 0; i < DT_UUID_SIZE; i++)
		sb.uuid[i] = (__u8)(0x10 * i + i);
	sb.sequence = htole64(7);
	sb.generation = htole64(42);
	sb.data_sectors = htole64(data_sectors);
	sb.cluster_sectors = htole32(cluster_sectors);
	sb.block_size = htole32(DT_BLOCK_SIZE);
	sb.nr_clusters = htole64(nr);
	sb.bitmap_blocks = htole64(bb);
	sb.live_block = htole64(1);
	sb.frozen_block = htole64(1 + bb);
	sb.frozen_sequence = htole64((flags & DT_SB_FLAG_FROZEN) ? 6 : 0);
	sb.frozen_id = htole64((flags & DT_SB_FLAG_FROZEN) ? 0x0123456789abcdefULL : 0);
	memcpy(block, &sb, sizeof(sb));
	dt_test_seal_superblock(block);
}

uint64_t dt_test_metadata_bytes(const unsigned char *block)
{
	struct dt_disk_superblock sb;

	memcpy(&sb, block, sizeof(sb));
	return dt_metadata_min_sectors(le64toh(sb.nr_clusters)) << 9;
}

uint64_t dt_test_rng(void)
{
	static uint64_t state = 0x9E3779B97F4A7C15ULL;

	state ^= state << 13;
	state ^= state >> 7;
	state ^= state << 17;
	return state;
}
