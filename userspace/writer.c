// SPDX-License-Identifier: GPL-2.0-only OR MIT
/*
 * A buffered writer with sticky errors: what every dump goes through.
 * See writer.h for the contracts.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "writer.h"

#define WRITER_FD_BUFFER	(1U << 20)
#define WRITER_MEM_BUFFER	4096U
#define DT_WRITER_LINE_MAX		128U	/* longest line a dump writes at once */

int dt_writer_init(struct dt_writer *w, int fd)
{
	memset(w, 0, sizeof(*w));
	w->fd = fd;
	w->cap = fd >= 0 ? WRITER_FD_BUFFER : WRITER_MEM_BUFFER;
	w->buf = malloc(w->cap);
	if (!w->buf)
		return w->err = -ENOMEM;
	return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t r = write(fd, p, n);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

int dt_writer_flush(struct dt_writer *w)
{
	if (w->fd >= 0 && w->len && !w->err)
		w->err = write_all(w->fd, w->buf, w->len);
	if (w->fd >= 0)
		w->len = 0;
	return w->err;
}

/* Room for @n more bytes at the end of the buffer, or NULL after an error. */
char *dt_writer_room(struct dt_writer *w, size_t n)
{
	if (w->err)
		return NULL;
	if (w->cap - w->len >= n)
		return w->buf + w->len;
	if (w->fd >= 0) {
		if (dt_writer_flush(w))
			return NULL;
		if (w->cap >= n)
			return w->buf;
	}
	while (w->cap - w->len < n) {
		size_t cap = w->cap * 2;
		char *buf = realloc(w->buf, cap);

		if (!buf) {
			w->err = -ENOMEM;
			return NULL;
		}
		w->buf = buf;
		w->cap = cap;
	}
	return w->buf + w->len;
}

void dt_writer_put(struct dt_writer *w, const char *s, size_t n)
{
	char *p = dt_writer_room(w, n);

	if (p) {
		memcpy(p, s, n);
		w->len += n;
	}
}

void dt_writer_puts(struct dt_writer *w, const char *s)
{
	dt_writer_put(w, s, strlen(s));
}

void dt_writer_free(struct dt_writer *w)
{
	free(w->buf);
	w->buf = NULL;
	w->len = w->cap = 0;
}
