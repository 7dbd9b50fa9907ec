/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/*
 * Where a dump goes: standard output, or FILE replaced atomically (a
 * temporary file beside it, fsync, rename).  An error or a fatal signal
 * mid-dump leaves FILE as it was and no temporary file behind.  A FILE
 * that exists and is not a regular file (a FIFO, /dev/stdout) is written
 * directly: there is nothing to replace.
 */
#ifndef DIRTYCTL_OUTPUT_H
#define DIRTYCTL_OUTPUT_H

struct dt_output {
	const char *path;	/* the file to replace; NULL: write fd directly */
	char *tmp;		/* the temporary file while open */
	int fd;
};

/* Opens standard output (@path NULL or "-") or a temporary file; 0 or -errno. */
int dt_output_open(struct dt_output *o, const char *path);

/*
 * dt_output_close - with @ok, make the output durable and put it in
 * place; without, remove every trace of it.  Returns 0 or -errno (then
 * nothing was put in place).
 */
int dt_output_close(struct dt_output *o, int ok);

#endif
