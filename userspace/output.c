// SPDX-License-Identifier: GPL-2.0-only OR MIT
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "output.h"

/* The temporary file being written, removed if a signal ends us. */
static char *volatile output_tmp;

static void remove_output_tmp(int sig)
{
	char *tmp = output_tmp;

	if (tmp)
		unlink(tmp);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void catch_fatal_signals(void)
{
	static const int signals[] = { SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGXFSZ };
	unsigned int i;

	for (i = 0; i < sizeof(signals) / sizeof(signals[0]); i++) {
		struct sigaction old;

		/* Keep a signal ignored as it was, e.g. SIGPIPE under nohup. */
		if (sigaction(signals[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN)
			signal(signals[i], remove_output_tmp);
	}
}

static void forget_tmp(struct dt_output *o)
{
	output_tmp = NULL;
	free(o->tmp);
	o->tmp = NULL;
}

int dt_output_open(struct dt_output *o, const char *path)
{
	mode_t mask;
	int err;

	struct stat st;

	memset(o, 0, sizeof(*o));
	if (!path || !strcmp(path, "-")) {
		o->fd = STDOUT_FILENO;
		return 0;
	}
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		/* A FIFO, a terminal, /dev/stdout: nothing to replace atomically. */
		o->fd = open(path, O_WRONLY | O_CLOEXEC);
		return o->fd < 0 ? -errno : 0;
	}
	o->path = path;
	if (asprintf(&o->tmp, "%s.XXXXXX", path) < 0) {
		o->tmp = NULL;
		return -ENOMEM;
	}
	catch_fatal_signals();
	o->fd = mkostemp(o->tmp, O_CLOEXEC);
	if (o->fd < 0) {
		err = -errno;
		forget_tmp(o);
		return err;
	}
	output_tmp = o->tmp;
	/* As if created with open(0666): mkostemp() made it 0600. */
	mask = umask(0);
	umask(mask);
	if (fchmod(o->fd, 0666 & ~mask) < 0) {
		err = -errno;
		close(o->fd);
		unlink(o->tmp);
		forget_tmp(o);
		return err;
	}
	return 0;
}

int dt_output_close(struct dt_output *o, int ok)
{
	int ret = 0;

	if (!o->path) {
		/* Standard output is closed at exit; anything else now. */
		if (o->fd != STDOUT_FILENO && o->fd >= 0 && close(o->fd) < 0 && ok)
			ret = -errno;
		o->fd = -1;
		return ret;
	}
	if (!o->tmp)
		return 0;
	if (ok && fsync(o->fd) < 0)
		ret = -errno;
	if (close(o->fd) < 0 && !ret)
		ret = -errno;
	if (ok && !ret && rename(o->tmp, o->path) < 0)
		ret = -errno;
	if (!ok || ret)
		unlink(o->tmp);
	forget_tmp(o);
	return ret;
}
