/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/*
 * A buffered writer with sticky errors: what every dump goes through.
 */
#ifndef DIRTYCTL_WRITER_H
#define DIRTYCTL_WRITER_H

#include <stddef.h>

/*
 * A large write buffer in front of a file descriptor.  With fd -1 the
 * buffer grows and keeps everything (unit tests read it back).  Errors
 * are sticky: the first one is kept in err and later writes are dropped.
 */
struct dt_writer {
	int fd;
	char *buf;
	size_t len;
	size_t cap;
	int err;			/* 0 or the first -errno */
};

int dt_writer_init(struct dt_writer *w, int fd);
void dt_writer_put(struct dt_writer *w, const char *s, size_t n);
void dt_writer_puts(struct dt_writer *w, const char *s);
int dt_writer_flush(struct dt_writer *w);	/* 0 or -errno */
void dt_writer_free(struct dt_writer *w);

/* Longest text dt_writer_room() callers write at once (one dump line). */
#define DT_WRITER_LINE_MAX	128U

/* Room for @n more bytes at the end of the buffer, or NULL after an error. */
char *dt_writer_room(struct dt_writer *w, size_t n);

#endif
