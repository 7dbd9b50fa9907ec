// SPDX-License-Identifier: GPL-2.0-only OR MIT
/*
 * libFuzzer harness for the status line parser, the number parsers, the
 * checkpoint reply and the JSON string quoting.
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
		assert(!st.frozen_id[0] || (st.has_frozen && strlen(st.frozen_id) == 16));
		assert(!st.has_store ||
		       (st.reports_snapshot && st.store_used_sectors <= st.store_sectors));
		g.dev_sectors = g.length;
		dt_geometry_check(&g);
	}
	if (!dt_parse_sectors(text, &v))
		assert(text[0] >= '0' && text[0] <= '9');
	dt_parse_u64(text, &v);
	{
		char id[DT_FROZEN_ID_LEN + 1], *q;
		const unsigned char *u;
		size_t n;

		if (dt_parse_checkpoint_reply(text, id) == 0)
			assert(strlen(id) == DT_FROZEN_ID_LEN);

		/* a JSON string: well-formed UTF-8, no control characters */
		q = dt_json_quote(text);
		assert(q && q[0] == '"');
		for (u = (const unsigned char *)q; *u; u += n) {
			n = dt_utf8_len(u);
			assert(n && *u >= 0x20 && *u != 0x7f);
		}
		free(q);
	}
	free(text);
	return 0;
}
