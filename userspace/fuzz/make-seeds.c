// SPDX-License-Identifier: GPL-2.0-only OR MIT
/*
 * make-seeds FUZZER DIR - write a small seed corpus for fuzz-FUZZER
 * (superblock, reply, status, manifest or extents) into DIR, built with
 * the same test encoder the unit tests use, so the seeds are what the
 * kernel sends; the extent lists are what dump's bytes format writes.
 */
#include <endian.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"
#include "tests/encode.h"

static const char *dir;
static unsigned int seeds;

static void put_seed(const void *data, size_t len)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/seed-%02u", dir, seeds++);
	f = fopen(path, "wb");
	if (!f || fwrite(data, 1, len, f) != len || fclose(f)) {
		perror(path);
		exit(1);
	}
}

static void superblock_seed(uint32_t flags, unsigned char control, int zero)
{
	size_t len = 1 + 3 * DT_BLOCK_SIZE;
	unsigned char *buf = calloc(1, len);

	if (!buf)
		exit(1);
	buf[0] = control;
	if (!zero) {
		dt_test_make_superblock(buf + 1, 1000, 8, flags);
		buf[1 + DT_BLOCK_SIZE] = 0x5a;			/* live bits */
		buf[1 + 2 * DT_BLOCK_SIZE + 3] = 0x81;		/* frozen bits */
	}
	put_seed(buf, len);
	free(buf);
}

static void reply_seed(uint32_t clusters, uint32_t first, unsigned char control,
		       const char *text)
{
	size_t len = 9 + strlen(text);
	unsigned char *buf = malloc(len);
	uint32_t c = htole32(clusters - 1), f = htole32(first);

	if (!buf)
		exit(1);
	memcpy(buf, &c, 4);
	memcpy(buf + 4, &f, 4);
	buf[8] = control;
	memcpy(buf + 9, text, strlen(text));
	put_seed(buf, len);
	free(buf);
}

static void encoded_reply_seeds(void)
{
	uint64_t words[40] = { 0 };
	char reply[512], pages[8192] = "";
	uint64_t first = 0, n;

	words[1] = 0xff;
	words[7] = 0x8000000000000001ULL;
	words[39] = 0x3;
	dt_test_encode_page(words, 40 * 64 - 2, 0, 5, reply, sizeof(reply));
	reply_seed(40 * 64 - 2, 0, 0, reply);
	/* The same bitmap in small pages, for dt_read_bitmap(). */
	while (first < 40) {
		n = dt_test_encode_page(words, 40 * 64 - 2, first, 5, reply, 120);
		if (first)
			strcat(pages, "|");
		strcat(pages, reply);
		first += n;
	}
	reply_seed(40 * 64 - 2, 0, 1, pages);
}

/* A manifest header (Documentation/manifest.md) and zero leaves; the
 * fuzzer's control byte 3 seals the checksum and the root. */
/*
 * A leaves file (dt-copy-extents --hash-to) with runs of @counts hashes
 * from cluster @firsts; control byte 5: a leaves file, checksum sealed.
 */
static void leaves_seed(uint16_t alg, uint32_t cs, uint64_t data_bytes, const uint64_t *firsts,
			const uint32_t *counts, size_t runs)
{
	uint64_t clusters = (data_bytes + cs * 512ULL - 1) / (cs * 512ULL), records = 0;
	size_t len = 1 + 16 + 64, i, pos;
	unsigned char *buf, *t;
	uint16_t v16;
	uint32_t v32;
	uint64_t v64;

	for (i = 0; i < runs; i++)
		len += 16 + counts[i] * 32;
	buf = calloc(1, len);
	if (!buf)
		exit(1);
	buf[0] = 5;
	memcpy(buf + 1, "DTLEAVS", 8);
	v32 = htole32(1); memcpy(buf + 9, &v32, 4);
	for (i = 0, pos = 17; i < runs; i++) {
		v64 = htole64(firsts[i]); memcpy(buf + pos, &v64, 8);
		v32 = htole32(counts[i]); memcpy(buf + pos + 8, &v32, 4);
		memset(buf + pos + 16, (int)(0x11 * (i + 1)), counts[i] * 32);
		pos += 16 + counts[i] * 32;
		records += counts[i];
	}
	t = buf + pos;
	memcpy(t, "DTLVEND", 8);
	v16 = htole16(alg); memcpy(t + 8, &v16, 2);
	v16 = htole16(32); memcpy(t + 10, &v16, 2);
	v32 = htole32(cs); memcpy(t + 12, &v32, 4);
	v64 = htole64(data_bytes); memcpy(t + 16, &v64, 8);
	v64 = htole64(clusters); memcpy(t + 24, &v64, 8);
	v64 = htole64(runs); memcpy(t + 32, &v64, 8);
	v64 = htole64(records); memcpy(t + 40, &v64, 8);
	put_seed(buf, len);
	free(buf);
}

static void manifest_seed(uint16_t alg, uint32_t cs, uint64_t data_bytes, uint32_t flags)
{
	uint64_t clusters = (data_bytes + cs * 512ULL - 1) / (cs * 512ULL);
	size_t len = 1 + 512 + clusters * 32;
	unsigned char *buf = calloc(1, len), *h = buf + 1;
	uint16_t v16;
	uint32_t v32;
	uint64_t v64;

	if (!buf)
		exit(1);
	buf[0] = 3;
	memcpy(h, "DTMANIF", 8);
	v32 = htole32(1); memcpy(h + 8, &v32, 4);
	v32 = htole32(512); memcpy(h + 12, &v32, 4);
	v16 = htole16(alg); memcpy(h + 16, &v16, 2);
	v16 = htole16(32); memcpy(h + 18, &v16, 2);
	v32 = htole32(flags); memcpy(h + 20, &v32, 4);
	v32 = htole32(cs); memcpy(h + 24, &v32, 4);
	v64 = htole64(data_bytes); memcpy(h + 32, &v64, 8);
	v64 = htole64(clusters); memcpy(h + 40, &v64, 8);
	if (flags & 2) {
		memset(h + 48, 0xab, 16);
		v64 = htole64(7); memcpy(h + 64, &v64, 8);
	}
	v64 = htole64(512); memcpy(h + 72, &v64, 8);
	for (v64 = 0; v64 < clusters * 32; v64++)
		h[512 + v64] = (unsigned char)(v64 * 7);
	put_seed(buf, len);
	free(buf);
}

/* An extent list as "dirtyctl dump --format bytes" writes it. */
static void extents_seed(uint64_t clusters, uint32_t cs, uint64_t start, uint64_t tail,
			 unsigned int stride)
{
	struct dt_geometry g = {
		.start = start, .length = clusters * cs - tail,
		.dev_sectors = start + clusters * cs, .cluster_sectors = cs,
		.clusters = clusters,
	};
	uint64_t *words = calloc(dt_groups(clusters) + 1, sizeof(*words)), c;
	struct dt_writer w;
	struct dt_dump d = { .w = &w, .format = DT_FORMAT_BYTES, .geo = &g, .device = "d" };

	if (!words || dt_writer_init(&w, -1))
		exit(1);
	for (c = 0; c < clusters; c += stride)
		words[c / 64] |= 1ULL << (c % 64);
	words[(clusters - 1) / 64] |= 1ULL << ((clusters - 1) % 64);
	if (dt_dump_bitmap(&d, words))
		exit(1);
	put_seed(w.buf, w.len);
	dt_writer_free(&w);
	free(words);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: make-seeds superblock|reply|status|manifest|extents DIR\n");
		return 2;
	}
	dir = argv[2];
	if (!strcmp(argv[1], "superblock")) {
		superblock_seed(DT_SB_FLAG_VALID, 0, 0);
		superblock_seed(DT_SB_FLAG_VALID | DT_SB_FLAG_FROZEN, 1, 0);
		superblock_seed(DT_SB_FLAG_UNCLEAN, 3, 0);
		superblock_seed(0, 0, 1);
	} else if (!strcmp(argv[1], "reply")) {
		reply_seed(128, 0, 0, "9 0 2 0100000000000080ff00000000000000");
		reply_seed(64 * 300, 0, 0, "3 0 300 z12c.");
		reply_seed(5 * 64, 1, 0, "1 1 4 z1.00000000000000ffz1.8000000000000000");
		reply_seed(192, 0, 0, "4 0 3 GAH-_NABCDEFGH");
		reply_seed(128, 2, 0, "5 2 0 ");
		encoded_reply_seeds();
	} else if (!strcmp(argv[1], "status")) {
		static const char *const lines[] = {
			"128 1638400 12345 - default ok 1b4e28ba-2fa1-11d2-883f-0016d3cca427 7",
			"8 100 3 42 crash_safe unclean_shutdown 1b4e28ba-2fa1-11d2-883f-0016d3cca427 1",
			"2097152 1 1 0 default metadata_error 00000000-0000-0000-0000-000000000000 0",
			"8 100 3 2 default ok 1b4e28ba-2fa1-11d2-883f-0016d3cca427 7 "
			"0123456789abcdef active 640 2048",
			"8 100 3 - default ok 1b4e28ba-2fa1-11d2-883f-0016d3cca427 7 - - - -",
			"0123456789abcdef\n",
			"64K",
			"18446744073709551615",
		};
		unsigned int i;

		for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
			put_seed(lines[i], strlen(lines[i]));
	} else if (!strcmp(argv[1], "manifest")) {
		manifest_seed(1, 128, 65536 * 3, 0);
		manifest_seed(1, 8, 4096 * 5 + 512, 2);
		manifest_seed(2, 1, 512 * 7, 2);
		manifest_seed(1, 65536, 512, 1);
		manifest_seed(2, 16, 8192 * 64, 0);
		{
			static const uint64_t f[] = { 0, 5, 2 };
			static const uint32_t n[] = { 3, 1, 2 };

			leaves_seed(1, 128, 65536 * 6 + 512, f, n, 3);
			leaves_seed(2, 8, 4096 * 9, f + 1, n + 1, 1);
			leaves_seed(1, 1, 512, NULL, NULL, 0);
		}
	} else if (!strcmp(argv[1], "extents")) {
		static const char *const lists[] = {
			"# offset length\n\n0 4096\n8192 4096\n",
			"9223372036854771711 4096\n0 9223372036854775807\n",
			"0 4096\r\n0 0\n18446744073709551616 1\n0 4096 x\n",
		};
		unsigned int i;

		extents_seed(100, 8, 0, 0, 3);
		extents_seed(1000, 128, 2048, 5, 7);
		extents_seed(64, 8, 63, 7, 1);
		for (i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
			put_seed(lists[i], strlen(lists[i]));
	} else {
		fprintf(stderr, "make-seeds: unknown fuzzer %s\n", argv[1]);
		return 2;
	}
	return 0;
}
