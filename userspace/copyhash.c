// SPDX-License-Identifier: GPL-2.0-only OR MIT
/*
 * Hash while copying (copyhash.h): the copier's chunks are fed cluster by
 * cluster into one streaming hash; clusters the copy does not cover whole
 * are read back from the destination at the end.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "copyhash.h"

int copy_hash_init(struct copy_hash *ch, const char *path, unsigned int algorithm,
		   uint32_t cluster_sectors)
{
	memset(ch, 0, sizeof(*ch));
	ch->out.fd = -1;
	ch->cb = (uint64_t)cluster_sectors << 9;
	ch->hs = dtm_hasher_new(algorithm);
	if (!ch->hs)
		return -EINVAL;
	return dtm_leaves_create(&ch->out, path, algorithm, cluster_sectors);
}

static int add_reread(struct copy_hash *ch, uint64_t c)
{
	if (ch->nreread && ch->reread[ch->nreread - 1] == c)
		return 0;
	if (ch->nreread == ch->capreread) {
		size_t cap = ch->capreread ? 2 * ch->capreread : 64;
		uint64_t *r = realloc(ch->reread, cap * sizeof(*r));

		if (!r)
			return -ENOMEM;
		ch->reread = r;
		ch->capreread = cap;
	}
	ch->reread[ch->nreread++] = c;
	return 0;
}

static int end_cluster(struct copy_hash *ch)
{
	unsigned char hash[DTM_MAX_HASH];
	int ret = dtm_hash_end(ch->hs, hash);

	ch->active = 0;
	if (!ret)
		ret = dtm_leaves_add(&ch->out, ch->cur, hash);
	ch->hashed++;
	return ret;
}

int copy_hash_feed(struct copy_hash *ch, uint64_t off, const unsigned char *buf, size_t len)
{
	uint64_t c, within, n;
	int ret;

	while (len) {
		c = off / ch->cb;
		within = off % ch->cb;
		/* Not the continuation of the cluster being fed: read it back later. */
		if (ch->active && (c != ch->cur || within != ch->fed)) {
			ch->active = 0;
			ret = add_reread(ch, ch->cur);
			if (ret)
				return ret;
		}
		if (!ch->active) {
			if (within) {
				/* Starts inside a cluster: its head is not in memory. */
				ret = add_reread(ch, c);
				if (ret)
					return ret;
				n = ch->cb - within < len ? ch->cb - within : len;
				off += n;
				buf += n;
				len -= (size_t)n;
				continue;
			}
			ret = dtm_hash_begin(ch->hs);
			if (ret)
				return ret;
			ch->active = 1;
			ch->cur = c;
			ch->fed = 0;
		}
		n = ch->cb - ch->fed < len ? ch->cb - ch->fed : len;
		ret = dtm_hash_feed(ch->hs, buf, (size_t)n);
		if (ret)
			return ret;
		ch->fed += n;
		off += n;
		buf += n;
		len -= (size_t)n;
		if (ch->fed == ch->cb) {
			ret = end_cluster(ch);
			if (ret)
				return ret;
		}
	}
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int read_back(int fd, unsigned char *buf, size_t len, uint64_t off)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = pread(fd, buf + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (!n)
			return -ENODATA;
		done += (size_t)n;
	}
	return 0;
}

int copy_hash_finish(struct copy_hash *ch, int dst_fd, uint64_t data_bytes, const char **what)
{
	unsigned char hash[DTM_MAX_HASH], *buf = NULL;
	size_t i, n = 0;
	int ret = 0;

	*what = "hash";
	if (ch->active) {
		/* The short last cluster, whole: else read it back. */
		if (ch->cur * ch->cb + ch->fed == data_bytes)
			ret = end_cluster(ch);
		else
			ret = add_reread(ch, ch->cur);
		ch->active = 0;
	}
	if (!ret && ch->nreread) {
		qsort(ch->reread, ch->nreread, sizeof(ch->reread[0]), cmp_u64);
		for (i = 0; i < ch->nreread; i++)
			if (!n || ch->reread[n - 1] != ch->reread[i])
				ch->reread[n++] = ch->reread[i];
		buf = malloc(ch->cb);
		if (!buf)
			ret = -ENOMEM;
	}
	for (i = 0; !ret && i < n; i++) {
		uint64_t off = ch->reread[i] * ch->cb;
		size_t len;

		if (off >= data_bytes) {
			*what = "read back a cluster beyond the end of";
			ret = -ENODATA;
			break;
		}
		len = (size_t)(data_bytes - off < ch->cb ? data_bytes - off : ch->cb);
		*what = "read back a cluster of";
		ret = read_back(dst_fd, buf, len, off);
		*what = "hash";
		if (!ret)
			ret = dtm_hash(ch->hs, buf, len, hash);
		if (!ret)
			ret = dtm_leaves_add(&ch->out, ch->reread[i], hash);
		ch->reread_done++;
	}
	free(buf);
	if (!ret) {
		*what = "write the leaves file";
		ret = dtm_leaves_finish(&ch->out, data_bytes);
	}
	return ret;
}

void copy_hash_free(struct copy_hash *ch)
{
	dtm_leaves_abort(&ch->out);
	dtm_hasher_free(ch->hs);
	free(ch->reread);
	ch->hs = NULL;
	ch->reread = NULL;
}
