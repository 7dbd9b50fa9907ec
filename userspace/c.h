/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/*
 * What dirtyctl, dt-copy-extents and dt-manifest say the same way, in the
 * manner of util-linux include/c.h: a message is one line
 * "<PROG>: <message>" on stderr; a usage error adds the --help hint and
 * exits 2.  Header-only: define PROG (the program's name in its messages)
 * before including it.  A program that keeps a line of its own open on
 * stderr (a progress line) defines DT_BEFORE_MESSAGE to a function that
 * ends it.
 */
#ifndef DIRTYCTL_C_H
#define DIRTYCTL_C_H

#include <stdarg.h>
#include <stdio.h>

#ifndef PROG
#error "define PROG, the program's name in its messages, before including c.h"
#endif

#define EXIT_USAGE 2

/* "PROG: <message>" on stderr, without the newline. */
static inline void __attribute__((format(printf, 1, 0))) vmessage(const char *fmt, va_list ap)
{
#ifdef DT_BEFORE_MESSAGE
	DT_BEFORE_MESSAGE();
#endif
	fputs(PROG ": ", stderr);
	vfprintf(stderr, fmt, ap);
}

/* "PROG: <message>" and a newline on stderr. */
static inline void __attribute__((format(printf, 1, 2))) warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmessage(fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* The message, then "Try 'PROG --help' for more information."; EXIT_USAGE. */
static inline int __attribute__((format(printf, 1, 2))) usage_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmessage(fmt, ap);
	va_end(ap);
	fputs("\nTry '" PROG " --help' for more information.\n", stderr);
	return EXIT_USAGE;
}

#endif
