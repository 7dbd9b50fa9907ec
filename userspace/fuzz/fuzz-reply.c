// SPDX-License-Identifier: GPL-2.0-only OR MIT
/*
 * libFuzzer harness for the paged bitmap reply decoder, the paged reader
 * and everything downstream (extents and all four dump formats).
 *
 * Input: 4 bytes cluster count (little-endian, reduced to 1..2^20),
 * 4 bytes first group, 1 control byte, then the reply text.  Control
 * bit 0 feeds the text to dt_read_bitmap() as pages separated by '|'
 * instead of decoding one reply at first_group.
 */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

#define MAX_CLUSTERS (1U << 20)

struct pages {
	char *text;		/* NUL-separated pages */
	char *next;
	char *end;
};

static int page_fetch(void *ctx, uint64_t first_group, char **reply)
{
	struct pages *p = ctx;

	(void)first_group;
	if (p->next >= p->end)
		return -EIO;
	*reply = strdup(p->next);
	p->next += strlen(p->next) + 1;
	return *reply ? 0 : -ENOMEM;
}

static void dump_all_formats(const uint64_t *words, uint64_t clusters)
{
	struct dt_geometry g = {
		.start = 7, .length = clusters * 8 - 3, .dev_sectors = clusters * 8 + 100,
		.cluster_sectors = 8, .clusters = clusters,
	};
	enum dt_format f;

	for (f = DT_FORMAT_RANGES; f <= DT_FORMAT_DDRESCUE; f++) {
		struct dt_writer w;
		struct dt_dump d = { .w = &w, .format = f, .geo = &g, .device = "fuzz" };

		if (dt_writer_init(&w, -1))
			return;
		dt_dump_bitmap(&d, words);
		dt_writer_free(&w);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t c32, f32;
	uint64_t clusters, groups, first, i;
	struct dt_reply r;
	uint64_t *words;
	char *text;
	int ret;

	if (size < 9)
		return 0;
	memcpy(&c32, data, 4);
	memcpy(&f32, data + 4, 4);
	clusters = le32toh(c32) % MAX_CLUSTERS + 1;
	groups = dt_groups(clusters);
	first = le32toh(f32) % (groups + 1);
	text = malloc(size - 9 + 1);
	words = calloc(groups, sizeof(*words));
	if (!text || !words)
		goto out;
	memcpy(text, data + 9, size - 9);
	text[size - 9] = '\0';

	if (data[8] & 1) {
		struct pages p = { .text = text, .next = text, .end = text + size - 9 + 1 };

		for (i = 0; i < size - 9; i++)
			if (text[i] == '|')
				text[i] = '\0';
		ret = dt_read_bitmap(page_fetch, &p, clusters, words);
		assert(ret == 0 || ret == -EBADMSG || ret == -EAGAIN || ret == -EIO ||
		       ret == -ENOMEM);
	} else {
		ret = dt_decode_reply(text, first, clusters, words, &r);
		assert(ret == 0 || ret == -EBADMSG);
		if (ret == 0) {
			assert(r.first_group == first);
			assert(r.nr_groups <= groups - first || r.nr_groups == 0);
		}
	}
	if (ret == 0) {
		if (clusters % 64)
			assert((words[groups - 1] >> (clusters % 64)) == 0);
		dump_all_formats(words, clusters);
	}
out:
	free(text);
	free(words);
	return 0;
}
