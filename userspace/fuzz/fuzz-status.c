// SPDX-License-Identifier: GPL-2.0-only OR MIT
/*
 * libFuzzer harness for the status line parser and the number parsers.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dt_status st;
	uint64_t v;
	char *text = malloc(size + 1);

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (dt_parse_status(text, &st) == 0) {
		struct dt_geometry g = {
			.length = st.clusters * st.cluster_sectors,
			.cluster_sectors = st.cluster_sectors,
			.clusters = st.clusters,
		};

		assert(dt_cluster_sectors_valid(st.cluster_sectors));
		assert(st.dirty_clusters <= st.clusters);
		assert(!st.has_frozen || st.frozen_clusters <= st.clusters);
		assert(strlen(st.uuid) && strlen(st.mode) && strlen(st.health));
		g.dev_sectors = g.length;
		dt_geometry_check(&g);
	}
	if (!dt_parse_sectors(text, &v))
		assert(text[0] >= '0' && text[0] <= '9');
	dt_parse_u64(text, &v);
	free(text);
	return 0;
}
