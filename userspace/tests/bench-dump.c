// SPDX-License-Identifier: GPL-2.0-only OR MIT
/*
 * bench-dump - time dirtyctl's dump pipeline on a synthetic bitmap.
 *
 *   bench-dump [CLUSTERS [DENSITY [FORMAT [OUTPUT]]]]
 *
 * Makes a random bitmap of CLUSTERS clusters (default 2^28) with the
 * given fraction dirty (default 0.01), encodes it into replies of
 * DT_TEST_REPLY_MAX bytes as the kernel target does (not timed: that is
 * the kernel's share), then times what dirtyctl does with them: decode
 * every page (each copied first, as libdevmapper hands it over), then
 * build extents and format them (default ranges) into OUTPUT (default
 * /dev/null).  Prints CPU and wall seconds of each step.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../parse.h"
#include "encode.h"

struct pages {
	char **text;
	uint64_t *first;
	size_t n, cap;
	uint64_t bytes;
};

static int fetch_page(void *ctx, uint64_t first_group, char **reply)
{
	const struct pages *p = ctx;
	size_t lo = 0, hi = p->n;

	while (lo < hi) {			/* pages are sorted by first group */
		size_t mid = (lo + hi) / 2;

		if (p->first[mid] < first_group)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == p->n || p->first[lo] != first_group)
		return -EIO;
	*reply = strdup(p->text[lo]);
	return *reply ? 0 : -ENOMEM;
}

static double now(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define rng dt_test_rng

/* Each cluster dirty with probability @p, independently. */
static void make_bitmap(uint64_t *w, uint64_t clusters, double p)
{
	uint64_t groups = dt_groups(clusters), c;

	if (p >= 0.5 && p <= 0.5) {
		for (c = 0; c < groups; c++)
			w[c] = rng();
	} else {
		/* Geometric gaps between dirty clusters. */
		double scale = 1.0 / log1p(-p);

		for (c = 0; ; c++) {
			double u = ((double)(rng() >> 11) + 1.0) / 9007199254740993.0;

			c += (uint64_t)floor(log(u) * scale);
			if (c >= clusters)
				break;
			w[c / 64] |= 1ULL << (c % 64);
		}
	}
	if (clusters % 64)
		w[groups - 1] &= (1ULL << (clusters % 64)) - 1;
}

static void encode_pages(const uint64_t *w, uint64_t clusters, struct pages *p)
{
	uint64_t groups = dt_groups(clusters), g = 0;
	char *buf = malloc(DT_TEST_REPLY_MAX);

	if (!buf)
		exit(1);
	while (g < groups) {
		uint64_t n = dt_test_encode_page(w, clusters, g, 1, buf, DT_TEST_REPLY_MAX);

		if (p->n == p->cap) {
			p->cap = p->cap ? 2 * p->cap : 1024;
			p->text = realloc(p->text, p->cap * sizeof(*p->text));
			p->first = realloc(p->first, p->cap * sizeof(*p->first));
			if (!p->text || !p->first)
				exit(1);
		}
		p->text[p->n] = strdup(buf);
		p->first[p->n++] = g;
		p->bytes += strlen(buf);
		g += n;
	}
	free(buf);
}

static int count_extent(void *ctx, uint64_t first, uint64_t nr)
{
	(void)first;
	(void)nr;
	++*(uint64_t *)ctx;
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t clusters = argc > 1 ? strtoull(argv[1], NULL, 0) : 1ULL << 28;
	double density = argc > 2 ? atof(argv[2]) : 0.01;
	const char *format = argc > 3 ? argv[3] : "ranges";
	const char *output = argc > 4 ? argv[4] : "/dev/null";
	struct dt_geometry geo = {
		.cluster_sectors = 128, .clusters = clusters,
		.length = clusters * 128, .dev_sectors = clusters * 128,
	};
	struct pages pages = { 0 };
	uint64_t *truth, *words, extents = 0, set;
	double c0, c1, w1, c2, w2, c3, w3, decode_cpu, decode_wall;
	struct dt_writer wr;
	struct dt_dump d;
	enum dt_format fmt;
	off_t written;
	size_t i;
	int fd;

	if (!clusters || density <= 0 || density > 1 || dt_format_from_name(format, &fmt)) {
		fprintf(stderr, "usage: bench-dump [CLUSTERS [DENSITY [FORMAT [OUTPUT]]]]\n");
		return 2;
	}
	truth = calloc(dt_groups(clusters), sizeof(*truth));
	words = calloc(dt_groups(clusters), sizeof(*words));
	if (!truth || !words)
		return 1;
	make_bitmap(truth, clusters, density);
	set = dt_count_bits(truth, 0, clusters);

	c0 = now(CLOCK_PROCESS_CPUTIME_ID);
	encode_pages(truth, clusters, &pages);
	c1 = now(CLOCK_PROCESS_CPUTIME_ID);
	w1 = now(CLOCK_MONOTONIC);
	if (dt_read_bitmap(fetch_page, &pages, clusters, words)) {
		fprintf(stderr, "bench-dump: decode failed\n");
		return 1;
	}
	decode_cpu = now(CLOCK_PROCESS_CPUTIME_ID) - c1;
	decode_wall = now(CLOCK_MONOTONIC) - w1;
	if (memcmp(truth, words, dt_groups(clusters) * sizeof(*words))) {
		fprintf(stderr, "bench-dump: decoded bitmap differs\n");
		return 1;
	}

	fd = open(output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || dt_writer_init(&wr, fd)) {
		perror(output);
		return 1;
	}
	d = (struct dt_dump) { .w = &wr, .format = fmt, .geo = &geo, .device = "bench" };
	c2 = now(CLOCK_PROCESS_CPUTIME_ID);
	w2 = now(CLOCK_MONOTONIC);
	if (dt_dump_bitmap(&d, words)) {
		fprintf(stderr, "bench-dump: writing %s failed\n", output);
		return 1;
	}
	c3 = now(CLOCK_PROCESS_CPUTIME_ID);
	w3 = now(CLOCK_MONOTONIC);
	written = lseek(fd, 0, SEEK_CUR);
	dt_writer_free(&wr);
	close(fd);
	dt_walk_extents(words, clusters, count_extent, &extents);

	printf("bench-dump: %llu clusters, %.2f%% dirty (%llu set), format %s -> %s\n",
	       (unsigned long long)clusters, 100.0 * (double)set / (double)clusters,
	       (unsigned long long)set, format, output);
	printf("  replies:        %zu of at most %u bytes, %.1f MiB of text "
	       "(encoding, the kernel's share: %.3f s cpu)\n", pages.n, DT_TEST_REPLY_MAX,
	       (double)pages.bytes / 1048576.0, c1 - c0);
	printf("  decode:         %.3f s cpu, %.3f s wall\n", decode_cpu, decode_wall);
	printf("  extents+format: %.3f s cpu, %.3f s wall, %llu extents\n", c3 - c2, w3 - w2,
	       (unsigned long long)extents);
	if (written > 0)
		printf("  written:        %.1f MiB\n", (double)written / 1048576.0);
	printf("  dirtyctl total: %.3f s cpu, %.3f s wall\n", decode_cpu + c3 - c2,
	       decode_wall + w3 - w2);
	for (i = 0; i < pages.n; i++)
		free(pages.text[i]);
	free(pages.text);
	free(pages.first);
	free(truth);
	free(words);
	return 0;
}
