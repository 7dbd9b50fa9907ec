// SPDX-License-Identifier: GPL-2.0-only OR MIT
/*
 * bench-mkbitmap: the dirty sets of the dump benchmark (scripts/bench).
 *
 *   bench-mkbitmap CLUSTERS PERCENT SEED BITMAP_OUT [ERA_XML_OUT BLOCK_SECTORS]
 *
 * Writes a dirtytrack bitmap of CLUSTERS clusters (cluster c is bit c % 8
 * of byte c / 8, as in kernel/dm-dirtytrack-abi.h), padded with zero bits to
 * whole 4 KiB metadata blocks, in which every cluster is dirty with
 * probability PERCENT/100, independently (a fixed PRNG: the same SEED gives
 * the same set).  The bench script copies it over the live bitmap of a
 * formatted metadata device; the kernel recounts the bits on load.
 *
 * With ERA_XML_OUT it also writes the same set as an era_restore(8) XML
 * document: era 1 holds the dirty blocks, the current era is 2, so
 * `era_invalidate --written-since 1` lists exactly these blocks.
 *
 * Prints the number of dirty clusters on stdout.
 *
 * A stand-alone file compiled by scripts/bench with the host compiler; it
 * includes nothing of the project so that it can move (e.g. to userspace/).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK_BITS (4096ULL * 8)

static uint64_t state;

/* splitmix64: fast, and good enough for a benchmark's random pattern. */
static uint64_t next(void)
{
	uint64_t z = (state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void die(const char *what)
{
	fprintf(stderr, "bench-mkbitmap: %s: %s\n", what, strerror(errno));
	exit(1);
}

static uint64_t parse_u64(const char *s, const char *what)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || !*s || *end) {
		fprintf(stderr, "bench-mkbitmap: bad %s '%s'\n", what, s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	uint64_t clusters, seed, padded, c, dirty = 0, block_sectors = 0;
	double percent;
	uint32_t threshold;	/* a 32-bit draw below it means dirty */
	unsigned char *map;
	FILE *out, *xml = NULL;

	if (argc != 5 && argc != 7) {
		fprintf(stderr, "usage: bench-mkbitmap CLUSTERS PERCENT SEED BITMAP_OUT [ERA_XML_OUT BLOCK_SECTORS]\n");
		return 2;
	}
	clusters = parse_u64(argv[1], "cluster count");
	percent = strtod(argv[2], NULL);
	seed = parse_u64(argv[3], "seed");
	if (clusters == 0 || percent < 0 || percent > 100) {
		fprintf(stderr, "bench-mkbitmap: bad cluster count or percentage\n");
		return 2;
	}
	if (argc == 7)
		block_sectors = parse_u64(argv[6], "block size");

	padded = (clusters + BLOCK_BITS - 1) / BLOCK_BITS * BLOCK_BITS;
	map = calloc(padded / 8, 1);
	if (!map)
		die("allocating the bitmap");
	threshold = percent >= 100 ? UINT32_MAX : (uint32_t)(percent / 100 * 4294967296.0);
	state = seed;

	if (argc == 7) {
		xml = fopen(argv[5], "w");
		if (!xml)
			die(argv[5]);
		fprintf(xml, "<superblock uuid=\"\" block_size=\"%" PRIu64 "\" nr_blocks=\"%" PRIu64 "\" current_era=\"2\">\n",
			block_sectors, clusters);
		fputs("  <era_array>\n", xml);
	}
	for (c = 0; c < clusters; c += 2) {
		uint64_t r = next();
		int k;

		for (k = 0; k < 2 && c + k < clusters; k++) {
			uint32_t draw = (uint32_t)(r >> (32 * k));

			if (draw < threshold || percent >= 100) {
				map[(c + k) / 8] |= 1U << ((c + k) % 8);
				dirty++;
				if (xml)
					fprintf(xml, "    <era block=\"%" PRIu64 "\" era=\"1\"/>\n", c + k);
			}
		}
	}
	if (xml) {
		fputs("  </era_array>\n</superblock>\n", xml);
		if (fclose(xml))
			die(argv[5]);
	}

	out = fopen(argv[4], "w");
	if (!out)
		die(argv[4]);
	if (fwrite(map, 1, padded / 8, out) != padded / 8 || fclose(out))
		die(argv[4]);
	printf("%" PRIu64 "\n", dirty);
	return 0;
}
