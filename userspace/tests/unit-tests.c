// SPDX-License-Identifier: GPL-2.0-only OR MIT
/*
 * Host unit tests of dirtyctl, TAP output: one test per behaviour, named
 * as a sentence.  With DIRTYCTL=path/to/dirtyctl in the environment the
 * command line itself is tested too (usage errors, inspect of images).
 *
 *   tests/unit-tests [substring]   run the tests whose name contains it
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <dirent.h>
#include <unistd.h>

#include "../crc32c.h"
#include "../extents.h"
#include "../inspect.h"
#include "../output.h"
#include "../parse.h"
#include "encode.h"

/* ------------------------------------------------------------------ */
/* TAP                                                                 */
/* ------------------------------------------------------------------ */

static unsigned int tests_run, tests_failed;
static int case_failed;
static const char *filter;
static char tmpdir[64];
static FILE *tap;		/* TAP lines, printed after the plan */

#define tprintf(...) fprintf(tap, __VA_ARGS__)

static int check(int ok, const char *what, const char *file, int line)
{
	if (!ok) {
		tprintf("#   %s:%d: check failed: %s\n", file, line, what);
		case_failed = 1;
	}
	return ok;
}

#define CHECK(cond) check(!!(cond), #cond, __FILE__, __LINE__)

#define CHECK_U64(a, b) do {						\
	uint64_t a_ = (a), b_ = (b);					\
	if (!check(a_ == b_, #a " == " #b, __FILE__, __LINE__))		\
		tprintf("#     got %" PRIu64 ", want %" PRIu64 "\n", a_, b_); \
} while (0)

#define CHECK_STR(a, b) do {						\
	const char *a_ = (a), *b_ = (b);				\
	if (!check(a_ && b_ && !strcmp(a_, b_), #a " equals " #b,	\
		   __FILE__, __LINE__))					\
		tprintf("#     got:\n%s\n#     want:\n%s\n",		\
		       a_ ? a_ : "(null)", b_ ? b_ : "(null)");	\
} while (0)

static void begin(void)
{
	case_failed = 0;
}

static void __attribute__((format(printf, 1, 2))) end(const char *fmt, ...)
{
	char name[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(name, sizeof(name), fmt, ap);
	va_end(ap);
	tests_run++;
	if (case_failed)
		tests_failed++;
	tprintf("%sok %u - %s\n", case_failed ? "not " : "", tests_run, name);
}

static void __attribute__((format(printf, 2, 3))) skip(const char *why, const char *fmt, ...)
{
	char name[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(name, sizeof(name), fmt, ap);
	va_end(ap);
	tests_run++;
	tprintf("ok %u - %s # SKIP %s\n", tests_run, name, why);
}

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

#define rng dt_test_rng

static uint64_t *new_bitmap(uint64_t clusters)
{
	uint64_t *w = calloc(dt_groups(clusters) + 1, sizeof(*w));

	if (!w)
		abort();
	return w;
}

static void set_bit(uint64_t *w, uint64_t c)
{
	w[c / 64] |= 1ULL << (c % 64);
}

static int test_bit(const uint64_t *w, uint64_t c)
{
	return (w[c / 64] >> (c % 64)) & 1;
}

static void random_bitmap(uint64_t *w, uint64_t clusters, unsigned int percent)
{
	uint64_t c;

	memset(w, 0, dt_groups(clusters) * sizeof(*w));
	for (c = 0; c < clusters; c++)
		if (rng() % 100 < percent)
			set_bit(w, c);
}

/* The output of a dump of @words, as a string. */
static char *dump_string(const uint64_t *words, const struct dt_geometry *g,
			 enum dt_format fmt, const char *device, const char *comment)
{
	struct dt_writer w;
	struct dt_dump d = {
		.w = &w, .format = fmt, .geo = g, .device = device, .comment = comment,
	};
	char *s;

	if (dt_writer_init(&w, -1) || dt_dump_bitmap(&d, words))
		abort();
	s = strndup(w.buf, w.len);
	dt_writer_free(&w);
	return s;
}

struct extent_list {
	uint64_t first[64];
	uint64_t nr[64];
	unsigned int n;
};

static int collect_extent(void *ctx, uint64_t first, uint64_t nr)
{
	struct extent_list *l = ctx;

	if (l->n == 64)
		return -E2BIG;
	l->first[l->n] = first;
	l->nr[l->n++] = nr;
	return 0;
}

/* A fake target answering "bitmap" from memory, as the kernel would. */
struct fake_target {
	const uint64_t *words;
	const uint64_t *next_words;	/* served after an epoch change */
	uint64_t clusters;
	uint64_t epoch;
	size_t maxlen;
	unsigned int calls;
	unsigned int change_at[2];	/* change the epoch before these calls */
	int fail;			/* -errno to fail every call with */
};

static int fake_fetch(void *ctx, uint64_t first, char **reply)
{
	struct fake_target *t = ctx;
	unsigned int i;

	t->calls++;
	if (t->fail)
		return t->fail;
	for (i = 0; i < 2; i++) {
		if (t->change_at[i] == t->calls) {
			t->epoch++;
			if (t->next_words)
				t->words = t->next_words;
		}
	}
	*reply = malloc(t->maxlen);
	if (!*reply)
		return -ENOMEM;
	dt_test_encode_page(t->words, t->clusters, first, t->epoch, *reply, t->maxlen);
	return 0;
}

/* A fake target answering with canned replies, one per call. */
struct canned_target {
	const char *const *replies;
	unsigned int calls;
};

static int canned_fetch(void *ctx, uint64_t first, char **reply)
{
	struct canned_target *t = ctx;

	(void)first;
	*reply = strdup(t->replies[t->calls++]);
	return *reply ? 0 : -ENOMEM;
}

/* Metadata images in memory. */
struct mem_image {
	unsigned char *data;
	uint64_t len;			/* bytes that exist */
};

static int mem_read(void *ctx, void *buf, size_t len, uint64_t off)
{
	const struct mem_image *m = ctx;

	if (off > m->len || len > m->len - off)
		return -ENODATA;
	memcpy(buf, m->data + off, len);
	return 0;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t cap = 0, len = 0, n;

	if (!f)
		return NULL;
	do {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			buf = realloc(buf, cap);
			if (!buf)
				abort();
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
	} while (n);
	fclose(f);
	buf[len] = '\0';
	return buf;
}

static int write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	int ok;

	if (fd < 0)
		return -1;
	ok = write(fd, data, len) == (ssize_t)len;
	close(fd);
	return ok ? 0 : -1;
}

static int command_exists(const char *name)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", name);
	return system(cmd) == 0;
}

/* Is @text valid JSON?  1 yes, 0 no, -1 cannot tell (no python3). */
static int json_valid(const char *text)
{
	static int have_python = -1;
	char path[128], cmd[256];

	if (have_python < 0)
		have_python = command_exists("python3");
	if (!have_python)
		return -1;
	snprintf(path, sizeof(path), "%s/json", tmpdir);
	if (write_file(path, text, strlen(text)))
		return 0;
	snprintf(cmd, sizeof(cmd),
		 "python3 -c 'import json,sys; json.load(open(sys.argv[1]))' %s 2>/dev/null",
		 path);
	return system(cmd) == 0;
}

/* Files in tmpdir whose name starts with @prefix. */
static unsigned int count_files(const char *prefix)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	unsigned int n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, prefix, strlen(prefix)))
			n++;
	closedir(d);
	return n;
}

/* ------------------------------------------------------------------ */
/* Status line                                                         */
/* ------------------------------------------------------------------ */

#define UUID1 "1b4e28ba-2fa1-11d2-883f-0016d3cca427"

static void test_status_good(void)
{
	struct dt_status st;

	begin();
	CHECK(dt_parse_status("128 1638400 12345 - default ok " UUID1 " 7", &st) == 0);
	CHECK_U64(st.cluster_sectors, 128);
	CHECK_U64(st.clusters, 1638400);
	CHECK_U64(st.dirty_clusters, 12345);
	CHECK(!st.has_frozen);
	CHECK_STR(st.mode, "default");
	CHECK_STR(st.health, "ok");
	CHECK_STR(st.uuid, UUID1);
	CHECK_U64(st.sequence, 7);
	end("a well-formed status line is parsed field by field");
}

static void test_status_frozen(void)
{
	struct dt_status st;

	begin();
	CHECK(dt_parse_status("8 100 3 42 crash_safe unclean_shutdown " UUID1
			      " 18446744073709551615", &st) == 0);
	CHECK(st.has_frozen);
	CHECK_U64(st.frozen_clusters, 42);
	CHECK_STR(st.mode, "crash_safe");
	CHECK_STR(st.health, "unclean_shutdown");
	CHECK_U64(st.sequence, UINT64_MAX);
	end("a frozen count in the status line is reported, '-' means nothing is frozen");
}

static void test_status_short(void)
{
	struct dt_status st;

	begin();
	CHECK(dt_parse_status("128 1638400 12345 - default ok " UUID1, &st) == -EINVAL);
	CHECK(dt_parse_status("", &st) == -EINVAL);
	CHECK(dt_parse_status("   ", &st) == -EINVAL);
	CHECK(dt_parse_status(NULL, &st) == -EINVAL);
	end("a status line with fewer than eight fields is rejected");
}

/* Checks that dt_parse_status() rejects each of @n lines, naming any it took. */
static void check_status_rejected(const char *const *bad, size_t n)
{
	struct dt_status st;
	size_t i;

	for (i = 0; i < n; i++)
		if (!CHECK(dt_parse_status(bad[i], &st) == -EINVAL))
			tprintf("#     accepted: %s\n", bad[i]);
}

static void test_status_garbage(void)
{
	static const char *const bad[] = {
		"12a 100 0 - default ok " UUID1 " 7",
		"128 -100 0 - default ok " UUID1 " 7",
		"128 100 0x1 - default ok " UUID1 " 7",
		"128 100 0 -- default ok " UUID1 " 7",
		"128 100 0 - default ok " UUID1 " 18446744073709551616",
		"128 99999999999999999999999 0 - default ok " UUID1 " 7",
		"128 100 0 - Default ok " UUID1 " 7",
		"128 100 0 - default ok not-a-uuid! 7",
		"128 100 0 - default ok " UUID1 " +7",
		"128 0 0 - default ok " UUID1 " 7",
	};

	begin();
	check_status_rejected(bad, sizeof(bad) / sizeof(bad[0]));
	end("garbage in any status field is rejected");
}

static void test_status_counts(void)
{
	struct dt_status st;

	begin();
	CHECK(dt_parse_status("128 100 101 - default ok " UUID1 " 7", &st) == -EINVAL);
	CHECK(dt_parse_status("128 100 0 101 default ok " UUID1 " 7", &st) == -EINVAL);
	CHECK(dt_parse_status("128 100 100 100 default ok " UUID1 " 7", &st) == 0);
	end("a dirty or frozen count above the cluster count is rejected");
}

static void test_status_cluster_size(void)
{
	struct dt_status st;

	begin();
	CHECK(dt_parse_status("100 100 0 - default ok " UUID1 " 7", &st) == -EINVAL);
	CHECK(dt_parse_status("4 100 0 - default ok " UUID1 " 7", &st) == -EINVAL);
	CHECK(dt_parse_status("4194304 100 0 - default ok " UUID1 " 7", &st) == -EINVAL);
	CHECK(dt_parse_status("2097152 100 0 - default ok " UUID1 " 7", &st) == 0);
	end("a cluster size that is not a power of two from 8 to 2^21 is rejected");
}

static void test_status_extra_fields(void)
{
	struct dt_status st;

	begin();
	CHECK(dt_parse_status("128 100 0 - default ok " UUID1 " 7 - - - - newfield 9", &st) == 0);
	CHECK_U64(st.sequence, 7);
	end("fields a newer target appends after the twelfth are ignored");
}

#define ID1 "0123456789abcdef"

static void test_status_frozen_id(void)
{
	struct dt_status st;

	begin();
	CHECK(dt_parse_status("8 100 3 2 default ok " UUID1 " 7 " ID1, &st) == 0);
	CHECK(st.reports_frozen_id);
	CHECK_STR(st.frozen_id, ID1);
	CHECK(!st.reports_snapshot);
	CHECK(dt_parse_status("8 100 3 - default ok " UUID1 " 7 -", &st) == 0);
	CHECK(st.reports_frozen_id);
	CHECK_STR(st.frozen_id, "");
	CHECK(dt_parse_status("8 100 3 2 default ok " UUID1 " 7", &st) == 0);
	CHECK(!st.reports_frozen_id);
	CHECK_STR(st.frozen_id, "");
	end("the ninth status field is the frozen set's id, '-' when none, absent from old targets");
}

static void test_status_frozen_id_bad(void)
{
	static const char *const bad[] = {
		"8 100 3 2 default ok " UUID1 " 7 -",			/* frozen, no id */
		"8 100 3 - default ok " UUID1 " 7 " ID1,		/* id, nothing frozen */
		"8 100 3 2 default ok " UUID1 " 7 0123456789ABCDEF",	/* uppercase */
		"8 100 3 2 default ok " UUID1 " 7 0123456789abcde",	/* 15 digits */
		"8 100 3 2 default ok " UUID1 " 7 0123456789abcdef0",	/* 17 digits */
		"8 100 3 2 default ok " UUID1 " 7 0123456789abcdeg",
	};

	begin();
	check_status_rejected(bad, sizeof(bad) / sizeof(bad[0]));
	end("a frozen id that is not 16 lowercase hex digits or disagrees with the frozen count is rejected");
}

static void test_status_snapshot(void)
{
	static const char *const bad[] = {
		"8 100 3 - default ok " UUID1 " 7 - active",
		"8 100 3 - default ok " UUID1 " 7 - active 5",
		"8 100 3 - default ok " UUID1 " 7 - active - -",
		"8 100 3 - default ok " UUID1 " 7 - - 5 10",
		"8 100 3 - default ok " UUID1 " 7 - active 11 10",
		"8 100 3 - default ok " UUID1 " 7 - Active 1 10",
	};
	struct dt_status st;

	begin();
	CHECK(dt_parse_status("8 100 3 2 default ok " UUID1 " 7 " ID1 " active 640 2048",
			      &st) == 0);
	CHECK(st.reports_snapshot && st.has_store);
	CHECK_STR(st.snapshot, "active");
	CHECK_U64(st.store_used_sectors, 640);
	CHECK_U64(st.store_sectors, 2048);
	CHECK(dt_parse_status("8 100 3 - default ok " UUID1 " 7 - - - -", &st) == 0);
	CHECK(st.reports_snapshot && !st.has_store);
	CHECK_STR(st.snapshot, "-");
	check_status_rejected(bad, sizeof(bad) / sizeof(bad[0]));
	end("fields 10 to 12 are the snapshot state and its store, '-' without a store, all or none");
}

static void test_frozen_id_text(void)
{
	char id[DT_FROZEN_ID_LEN + 1];

	begin();
	CHECK(dt_parse_checkpoint_reply(ID1, id) == 0);
	CHECK_STR(id, ID1);
	CHECK(dt_parse_checkpoint_reply(ID1 "\n", id) == 0);
	CHECK(dt_parse_checkpoint_reply("", id) == 1);
	CHECK(dt_parse_checkpoint_reply("\n", id) == -EBADMSG);
	CHECK(dt_parse_checkpoint_reply("0123456789ABCDEF", id) == -EBADMSG);
	CHECK(dt_parse_checkpoint_reply(ID1 " ", id) == -EBADMSG);
	CHECK(dt_parse_checkpoint_reply("ok", id) == -EBADMSG);
	CHECK(dt_parse_frozen_id("0123456789ABCDEF", 16, 0, id) == 0);
	CHECK_STR(id, ID1);
	CHECK(dt_parse_frozen_id("0x23456789abcdef", 16, 0, id) == -EINVAL);
	CHECK(dt_parse_frozen_id("123", 3, 0, id) == -EINVAL);
	end("checkpoint's reply is one id or nothing; a user's id may be uppercase and is lowered");
}

static void test_geometry(void)
{
	struct dt_geometry g = {
		.start = 0, .length = 1001, .dev_sectors = 1001,
		.cluster_sectors = 8, .clusters = 126,
	};

	begin();
	CHECK(dt_geometry_check(&g) == 0);
	g.clusters = 125;
	CHECK(dt_geometry_check(&g) == -EINVAL);
	g.clusters = 126;
	g.start = 1;
	CHECK(dt_geometry_check(&g) == -EINVAL);	/* beyond the device */
	g.dev_sectors = 1002;
	CHECK(dt_geometry_check(&g) == 0);
	end("a status whose cluster count disagrees with the table is rejected");
}

/* ------------------------------------------------------------------ */
/* Bitmap replies                                                      */
/* ------------------------------------------------------------------ */

static void test_reply_groups(void)
{
	uint64_t words[2] = { 0 };
	struct dt_reply r;

	begin();
	CHECK(dt_decode_reply("9 0 2 0100000000000080ff00000000000000", 0, 128,
			      words, &r) == 0);
	CHECK_U64(r.epoch, 9);
	CHECK_U64(r.first_group, 0);
	CHECK_U64(r.nr_groups, 2);
	CHECK_U64(words[0], 0x8000000000000001ULL);	/* clusters 0 and 63 */
	CHECK_U64(words[1], 0xff);			/* clusters 64..71 */
	end("hex groups decode byte by byte, least significant bit first");
}

static void test_reply_sparse(void)
{
	uint64_t words[3] = { 0 };
	char enc[256];
	struct dt_reply r;

	begin();
	/* GA: bit 0; H-_: bits 62 and 63; N + 8 digits: bits 0..7. */
	CHECK(dt_decode_reply("4 0 3 GAH-_NABCDEFGH", 0, 192, words, &r) == 0);
	CHECK_U64(words[0], 1);				/* cluster 0 */
	CHECK_U64(words[1], 3ULL << 62);		/* clusters 126, 127 */
	CHECK_U64(words[2], 0xff);			/* clusters 128..135 */
	/* The test encoder (the kernel's rule): <= 8 bits as positions. */
	words[0] = 0x8000000000000001ULL;
	words[1] = 0x1ff;
	words[2] = 0;
	dt_test_encode_page(words, 192, 0, 7, enc, sizeof(enc));
	CHECK(strcmp(enc, "7 0 3 HA_ff01000000000000z1.") == 0);
	end("sparse groups decode their base64url bit positions");
}

static void test_reply_zero_run(void)
{
	uint64_t *words = new_bitmap(64 * 300);
	struct dt_reply r;
	unsigned int i;
	int nonzero = 0;

	begin();
	memset(words, 0xa5, 300 * sizeof(*words));
	CHECK(dt_decode_reply("3 0 300 z12c.", 0, 64 * 300, words, &r) == 0);
	for (i = 0; i < 300; i++)
		nonzero |= words[i] != 0;
	CHECK(!nonzero);
	CHECK_U64(r.nr_groups, 300);
	free(words);
	end("a zero run decodes to that many empty groups");
}

static void test_reply_mixed(void)
{
	uint64_t words[5];
	struct dt_reply r;

	begin();
	memset(words, 0xff, sizeof(words));
	CHECK(dt_decode_reply("1 1 4 z1.00000000000000ffz1.8000000000000000\n", 1,
			      5 * 64, words, &r) == 0);
	CHECK_U64(words[0], UINT64_MAX);		/* not part of the page */
	CHECK_U64(words[1], 0);
	CHECK_U64(words[2], 0xffULL << 56);
	CHECK_U64(words[3], 0);
	CHECK_U64(words[4], 0x80);
	end("a reply mixing groups and zero runs decodes in order from first_group");
}

static void test_reply_end(void)
{
	uint64_t words[2] = { 0 };
	struct dt_reply r;

	begin();
	CHECK(dt_decode_reply("5 2 0 ", 2, 128, words, &r) == 0);
	CHECK_U64(r.nr_groups, 0);
	CHECK(dt_decode_reply("5 2 0", 2, 128, words, &r) == 0);
	CHECK(dt_decode_reply("18446744073709551615 0 1 z1.", 0, 64, words, &r) == 0);
	CHECK_U64(r.epoch, UINT64_MAX);
	end("an empty reply at the end of the bitmap is accepted and the epoch returned");
}

static void test_reply_malformed(void)
{
	static const struct {
		const char *reply;
		uint64_t first;
		uint64_t clusters;
		const char *what;
	} bad[] = {
		{ "1 0 1 00000000000000FF", 0, 64, "uppercase hex" },
		{ "1 0 1 00ff", 0, 64, "a short group" },
		{ "1 0 1 00000000000000fg", 0, 64, "a non-hex digit" },
		{ "1 0 1 00000000000000ffz1.", 0, 128, "more groups than nr_groups" },
		{ "1 0 2 00000000000000ff", 0, 128, "fewer groups than nr_groups" },
		{ "1 0 1 z1", 0, 64, "an unterminated zero run" },
		{ "1 0 1 z0.", 0, 64, "a zero run of length zero" },
		{ "1 0 1 z.", 0, 64, "a zero run without a length" },
		{ "1 0 1 zA.", 0, 64, "a zero run in uppercase hex" },
		{ "1 0 1 z2.", 0, 128, "a zero run longer than nr_groups" },
		{ "1 0 1 z00000000000000001.", 0, 64, "a zero run of 17 digits" },
		{ "1 0 1 zffffffffffffffff.", 0, 64, "a huge zero run" },
		{ "1 1 1 z1.", 0, 128, "a first_group other than asked" },
		{ "1 0 2 z2.", 0, 64, "groups beyond the bitmap" },
		{ "1 2 1 z1.", 2, 128, "groups past the last group" },
		{ "1 0 1 00000000000000f0", 0, 60, "a bit beyond the last cluster" },
		{ "1 0 1 z1. x", 0, 64, "trailing garbage" },
		{ "1 0 1z1.", 0, 64, "no space before the payload" },
		{ "1  0 1 z1.", 0, 64, "a double space" },
		{ "-1 0 1 z1.", 0, 64, "a negative epoch" },
		{ "", 0, 64, "nothing at all" },
		{ "1 0", 0, 64, "a short header" },
		{ "99999999999999999999999 0 1 z1.", 0, 64, "an overflowing epoch" },
		{ "1 0 18446744073709551616 z1.", 0, 64, "an overflowing nr_groups" },
		{ "1 0 1 0000000000000\n001", 0, 64, "a newline inside a group" },
		{ "1 0 1 HBA", 0, 64, "sparse positions not ascending" },
		{ "1 0 1 HAA", 0, 64, "a sparse position twice" },
		{ "1 0 1 HA", 0, 64, "a sparse group cut short" },
		{ "1 0 1 G=", 0, 64, "a sparse position that is no base64url digit" },
		{ "1 0 1 O", 0, 64, "a sparse mark past DT_SPARSE_MAX" },
		{ "1 0 1 G8", 0, 60, "a sparse bit beyond the last cluster" },
		{ "1 0 1 GAz1.", 0, 64, "a sparse group and more groups than nr_groups" },
	};
	uint64_t words[4];
	struct dt_reply r;
	unsigned int i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		begin();
		CHECK(dt_decode_reply(bad[i].reply, bad[i].first, bad[i].clusters,
				      words, &r) == -EBADMSG);
		end("a reply with %s is rejected", bad[i].what);
	}
	begin();
	CHECK(dt_decode_reply(NULL, 0, 64, words, &r) == -EBADMSG);
	end("a missing reply is rejected");
}

static void test_read_pages(void)
{
	uint64_t clusters = 64 * 1000 + 17;
	uint64_t *want = new_bitmap(clusters), *got = new_bitmap(clusters);
	struct fake_target t = {
		.words = want, .clusters = clusters, .epoch = 4, .maxlen = 200,
	};
	uint64_t g;

	begin();
	random_bitmap(want, clusters, 2);
	for (g = 0; g < 1000; g += 7)
		want[g] = 0;		/* runs of zero groups too */
	CHECK(dt_read_bitmap(fake_fetch, &t, clusters, got) == 0);
	CHECK(!memcmp(want, got, dt_groups(clusters) * sizeof(*got)));
	CHECK(t.calls > 10);
	free(want);
	free(got);
	end("a bitmap spread over many small pages is read back exactly");
}

static void test_read_restart(void)
{
	uint64_t clusters = 64 * 500;
	uint64_t *a = new_bitmap(clusters), *b = new_bitmap(clusters);
	uint64_t *got = new_bitmap(clusters);
	struct fake_target t = {
		.words = a, .next_words = b, .clusters = clusters, .maxlen = 300,
		.change_at = { 3, 0 },
	};

	begin();
	random_bitmap(a, clusters, 30);
	random_bitmap(b, clusters, 30);
	CHECK(dt_read_bitmap(fake_fetch, &t, clusters, got) == 0);
	CHECK(!memcmp(b, got, dt_groups(clusters) * sizeof(*got)));
	free(a);
	free(b);
	free(got);
	end("an epoch change between pages restarts the read and yields the new bitmap");
}

static void test_read_changed_twice(void)
{
	uint64_t clusters = 64 * 500;
	uint64_t *a = new_bitmap(clusters), *got = new_bitmap(clusters);
	struct fake_target t = {
		.words = a, .clusters = clusters, .maxlen = 300,
		.change_at = { 3, 6 },
	};

	begin();
	random_bitmap(a, clusters, 30);
	CHECK(dt_read_bitmap(fake_fetch, &t, clusters, got) == -EAGAIN);
	CHECK_STR(dt_message_error(DT_MSG_BITMAP, EAGAIN),
		  "bitmap changed during dump, try again");
	free(a);
	free(got);
	end("a second epoch change fails with 'bitmap changed during dump, try again'");
}

static void test_read_ends_early(void)
{
	static const char *const replies[] = { "1 0 1 z1.", "1 1 0 " };
	struct canned_target t = { .replies = replies };
	uint64_t words[2];

	begin();
	CHECK(dt_read_bitmap(canned_fetch, &t, 128, words) == -EBADMSG);
	CHECK_U64(t.calls, 2);
	end("a bitmap that ends before its last group is a malformed reply");
}

static void test_read_errors(void)
{
	static const char *const replies[] = { "1 0 1 z1.", "1 1 1 zz" };
	struct canned_target c = { .replies = replies };
	struct fake_target t = { .fail = -ENOENT, .clusters = 64, .maxlen = 100 };
	uint64_t words[2];

	begin();
	CHECK(dt_read_bitmap(fake_fetch, &t, 64, words) == -ENOENT);
	CHECK(dt_read_bitmap(canned_fetch, &c, 128, words) == -EBADMSG);
	end("errors of the target and malformed pages end the read");
}

static void test_encoder_matches_kernel_shape(void)
{
	uint64_t words[4] = { 0, 0x1ff, 0xff, 0 };
	char reply[200];

	begin();
	dt_test_encode_page(words, 256, 0, 12, reply, sizeof(reply));
	CHECK_STR(reply, "12 0 4 z1.ff01000000000000NABCDEFGHz1.");
	dt_test_encode_page(words, 256, 4, 12, reply, sizeof(reply));
	CHECK_STR(reply, "12 4 0 ");
	end("the test encoder writes replies the way the kernel target does");
}

/* ------------------------------------------------------------------ */
/* Extents                                                             */
/* ------------------------------------------------------------------ */

static void test_extents_clean(void)
{
	uint64_t *w = new_bitmap(1000);
	struct extent_list l = { .n = 0 };
	struct dt_geometry g = {
		.start = 0, .length = 8000, .dev_sectors = 8000,
		.cluster_sectors = 8, .clusters = 1000,
	};
	char *s;

	begin();
	CHECK(dt_walk_extents(w, 1000, collect_extent, &l) == 0);
	CHECK_U64(l.n, 0);
	s = dump_string(w, &g, DT_FORMAT_RANGES, "d", NULL);
	CHECK_STR(s, "");
	free(s);
	free(w);
	end("an all-clean bitmap yields no extents");
}

static void test_extents_all_dirty(void)
{
	uint64_t *w = new_bitmap(1000);
	struct extent_list l = { .n = 0 };
	struct dt_geometry g = {
		.start = 0, .length = 7999, .dev_sectors = 7999,
		.cluster_sectors = 8, .clusters = 1000,
	};
	char *s;

	begin();
	memset(w, 0xff, dt_groups(1000) * sizeof(*w));
	w[dt_groups(1000) - 1] &= (1ULL << (1000 % 64)) - 1;
	CHECK(dt_walk_extents(w, 1000, collect_extent, &l) == 0);
	CHECK_U64(l.n, 1);
	CHECK_U64(l.first[0], 0);
	CHECK_U64(l.nr[0], 1000);
	s = dump_string(w, &g, DT_FORMAT_RANGES, "d", NULL);
	CHECK_STR(s, "0 7999\n");
	free(s);
	free(w);
	end("an all-dirty bitmap yields one extent covering the whole target");
}

static void test_extents_coalesce(void)
{
	uint64_t *w = new_bitmap(256);
	struct extent_list l = { .n = 0 };
	uint64_t c;

	begin();
	for (c = 60; c < 71; c++)
		set_bit(w, c);
	set_bit(w, 127);
	set_bit(w, 128);
	for (c = 130; c < 256; c++)
		set_bit(w, c);
	CHECK(dt_walk_extents(w, 256, collect_extent, &l) == 0);
	CHECK_U64(l.n, 3);
	CHECK_U64(l.first[0], 60);
	CHECK_U64(l.nr[0], 11);
	CHECK_U64(l.first[1], 127);
	CHECK_U64(l.nr[1], 2);
	CHECK_U64(l.first[2], 130);
	CHECK_U64(l.nr[2], 126);
	free(w);
	end("adjacent dirty clusters coalesce across group boundaries");
}

static void test_extents_clip(void)
{
	uint64_t *w = new_bitmap(126);
	struct dt_geometry g = {
		.start = 0, .length = 1001, .dev_sectors = 1001,
		.cluster_sectors = 8, .clusters = 126,
	};
	char *s;

	begin();
	set_bit(w, 124);
	set_bit(w, 125);
	s = dump_string(w, &g, DT_FORMAT_RANGES, "d", NULL);
	CHECK_STR(s, "992 9\n");
	free(s);
	free(w);
	end("the partial last cluster is clipped to the end of the target");
}

static void test_extents_start(void)
{
	uint64_t *w = new_bitmap(16);
	struct dt_geometry g = {
		.start = 1000000, .length = 2048, .dev_sectors = 1002048,
		.cluster_sectors = 128, .clusters = 16,
	};
	char *s;

	begin();
	set_bit(w, 0);
	set_bit(w, 5);
	set_bit(w, 6);
	set_bit(w, 15);
	s = dump_string(w, &g, DT_FORMAT_RANGES, "d", NULL);
	CHECK_STR(s, "1000000 128\n1000640 256\n1001920 128\n");
	free(s);
	free(w);
	end("extents are in device sectors: a non-zero target start shifts them all");
}

static void test_extents_random(void)
{
	static const uint64_t sizes[] = { 1, 63, 64, 65, 128, 1000, 4096, 10007 };
	static const unsigned int densities[] = { 1, 10, 50, 90, 99 };
	unsigned int i, k;

	begin();
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		for (k = 0; k < sizeof(densities) / sizeof(densities[0]); k++) {
			uint64_t n = sizes[i], c, *w = new_bitmap(n), *back = new_bitmap(n);
			struct dt_geometry g = {
				.length = n * 8, .dev_sectors = n * 8,
				.cluster_sectors = 8, .clusters = n,
			};
			char *s = NULL, *line, *save = NULL;
			uint64_t prev_end = 0;
			int ordered = 1;

			random_bitmap(w, n, densities[k]);
			s = dump_string(w, &g, DT_FORMAT_RANGES, "d", NULL);
			for (line = strtok_r(s, "\n", &save); line;
			     line = strtok_r(NULL, "\n", &save)) {
				unsigned long long start, nr;

				if (sscanf(line, "%llu %llu", &start, &nr) != 2 || !nr ||
				    start % 8 || nr % 8) {
					ordered = 0;
					break;
				}
				/* Coalesced: never adjacent to the previous one. */
				if (start <= prev_end && prev_end)
					ordered = 0;
				for (c = start / 8; c < (start + nr) / 8; c++)
					set_bit(back, c);
				prev_end = start + nr;
			}
			CHECK(ordered);
			CHECK(!memcmp(w, back, dt_groups(n) * sizeof(*w)));
			free(s);
			free(w);
			free(back);
		}
	}
	end("ranges of random bitmaps are ascending, coalesced and cover exactly the dirty clusters");
}

static void test_count_bits(void)
{
	uint64_t n = 1000, *w = new_bitmap(n);
	unsigned int i;
	int all_equal = 1;

	begin();
	random_bitmap(w, n, 40);
	for (i = 0; i < 500; i++) {
		uint64_t a = rng() % (n + 1), b = rng() % (n + 1), c, want = 0;

		if (a > b) {
			c = a;
			a = b;
			b = c;
		}
		for (c = a; c < b; c++)
			want += (uint64_t)test_bit(w, c);
		all_equal &= dt_count_bits(w, a, b) == want;
	}
	CHECK(all_equal);
	free(w);
	end("counting the dirty clusters of a range matches a bit-by-bit count");
}

static void test_dirty_map(void)
{
	uint64_t *w = new_bitmap(400), c;
	char map[8];

	begin();
	for (c = 100; c < 110; c++)
		set_bit(w, c);
	for (c = 200; c < 250; c++)
		set_bit(w, c);
	for (c = 300; c < 400; c++)
		set_bit(w, c);
	dt_dirty_map(w, 400, 4, map);
	CHECK_STR(map, " .:#");
	free(w);
	end("the status map shows clean, few, some and mostly dirty buckets");
}

/* ------------------------------------------------------------------ */
/* dump formats                                                        */
/* ------------------------------------------------------------------ */

/*
 * The fixed example: a dirtytrack target at sector 2048 of a 3149-sector
 * device, 1001 sectors long in 8-sector clusters (126, the last one a
 * single sector); clusters 0-2, 63-64 and 125 dirty.
 */
static const struct dt_geometry example_geo = {
	.start = 2048, .length = 1001, .dev_sectors = 3149,
	.cluster_sectors = 8, .clusters = 126,
};

static uint64_t *example_bitmap(void)
{
	uint64_t *w = new_bitmap(126);

	set_bit(w, 0);
	set_bit(w, 1);
	set_bit(w, 2);
	set_bit(w, 63);
	set_bit(w, 64);
	set_bit(w, 125);
	return w;
}

#define EXAMPLE_DDRESCUE \
	"# Mapfile. Created by dirtyctl from dm-dirtytrack device vm-disk\n" \
	"# live set, test\n" \
	"# current_pos  current_status  current_pass\n" \
	"0x00000000     +               1\n" \
	"#      pos        size  status\n" \
	"0x00000000  0x00100000  ?\n" \
	"0x00100000  0x00003000  +\n" \
	"0x00103000  0x0003C000  ?\n" \
	"0x0013F000  0x00002000  +\n" \
	"0x00141000  0x0003C000  ?\n" \
	"0x0017D000  0x00000200  +\n" \
	"0x0017D200  0x0000C800  ?\n"

static void test_format(enum dt_format fmt, const char *want, const char *name)
{
	uint64_t *w = example_bitmap();
	char *s = dump_string(w, &example_geo, fmt, "vm-disk", "live set, test");

	begin();
	CHECK_STR(s, want);
	if (fmt == DT_FORMAT_JSON && json_valid(s) == 0)
		CHECK(!"valid JSON");
	free(s);
	free(w);
	end("dump --format %s writes exactly the expected lines", name);
}

static void test_formats(void)
{
	test_format(DT_FORMAT_RANGES, "2048 24\n2552 16\n3048 1\n", "ranges");
	test_format(DT_FORMAT_BYTES,
		    "1048576 12288\n1306624 8192\n1560576 512\n", "bytes");
	test_format(DT_FORMAT_JSON,
		    "{\"device\": \"vm-disk\", \"cluster_sectors\": 8, \"extents\": [\n"
		    "  {\"offset\": 1048576, \"length\": 12288},\n"
		    "  {\"offset\": 1306624, \"length\": 8192},\n"
		    "  {\"offset\": 1560576, \"length\": 512}\n"
		    "]}\n", "json");
	test_format(DT_FORMAT_DDRESCUE, EXAMPLE_DDRESCUE, "ddrescue");
}

static void test_json_empty(void)
{
	uint64_t *w = new_bitmap(126);
	char *s = dump_string(w, &example_geo, DT_FORMAT_JSON, "a\"b", NULL);

	begin();
	CHECK_STR(s, "{\"device\": \"a\\\"b\", \"cluster_sectors\": 8, \"extents\": []}\n");
	if (json_valid(s) == 0)
		CHECK(!"valid JSON");
	free(s);
	free(w);
	end("dump --format json of a clean device has an empty extent list and escapes the name");
}

static void test_ddrescue_clean(void)
{
	uint64_t *w = new_bitmap(126);
	char *s = dump_string(w, &example_geo, DT_FORMAT_DDRESCUE, "d\nx", NULL);

	begin();
	CHECK_STR(s,
		  "# Mapfile. Created by dirtyctl from dm-dirtytrack device d?x\n"
		  "# current_pos  current_status  current_pass\n"
		  "0x00000000     +               1\n"
		  "#      pos        size  status\n"
		  "0x00000000  0x00189A00  ?\n");
	free(s);
	free(w);
	end("a ddrescue mapfile of a clean device is one '?' block covering the device");
}

static void test_ddrescue_edges(void)
{
	uint64_t *w = new_bitmap(126);
	struct dt_geometry g = {
		.start = 0, .length = 1008, .dev_sectors = 1008,
		.cluster_sectors = 8, .clusters = 126,
	};
	char *s;

	begin();
	set_bit(w, 0);
	set_bit(w, 125);
	s = dump_string(w, &g, DT_FORMAT_DDRESCUE, "d", NULL);
	CHECK(strstr(s, "#      pos        size  status\n"
		     "0x00000000  0x00001000  +\n"
		     "0x00001000  0x0007C000  ?\n"
		     "0x0007D000  0x00001000  +\n") != NULL);
	CHECK(s[strlen(s) - 2] == '+');		/* nothing after the device end */
	free(s);
	free(w);
	end("a ddrescue mapfile starts at 0 and ends at the device size with no empty blocks");
}

static void test_ddrescuelog(void)
{
	char path[128], cmd[512];
	uint64_t *w;
	char *s, *listed;

	if (!command_exists("ddrescuelog")) {
		skip("ddrescuelog not installed",
		     "GNU ddrescuelog reads the mapfile and lists exactly the changed sectors");
		return;
	}
	begin();
	w = example_bitmap();
	s = dump_string(w, &example_geo, DT_FORMAT_DDRESCUE, "vm-disk", "live set, test");
	snprintf(path, sizeof(path), "%s/map", tmpdir);
	CHECK(write_file(path, s, strlen(s)) == 0);
	snprintf(cmd, sizeof(cmd),
		 "ddrescuelog -b512 -l+ %s > %s/listed 2>&1 && "
		 "ddrescuelog -b512 -l? %s | wc -l >> %s/listed", path, tmpdir, path, tmpdir);
	CHECK(system(cmd) == 0);
	snprintf(path, sizeof(path), "%s/listed", tmpdir);
	listed = slurp(path);
	if (CHECK(listed)) {
		char want[2048], *p = want;
		unsigned int i;

		for (i = 2048; i < 2072; i++)
			p += sprintf(p, "%u\n", i);
		for (i = 2552; i < 2568; i++)
			p += sprintf(p, "%u\n", i);
		p += sprintf(p, "3048\n%u\n", 3149 - 41);
		CHECK_STR(listed, want);
	}
	free(listed);
	free(s);
	free(w);
	end("GNU ddrescuelog reads the mapfile and lists exactly the changed sectors");
}

static void test_format_names(void)
{
	enum dt_format f;

	begin();
	CHECK(dt_format_from_name("ranges", &f) == 0 && f == DT_FORMAT_RANGES);
	CHECK(dt_format_from_name("bytes", &f) == 0 && f == DT_FORMAT_BYTES);
	CHECK(dt_format_from_name("json", &f) == 0 && f == DT_FORMAT_JSON);
	CHECK(dt_format_from_name("ddrescue", &f) == 0 && f == DT_FORMAT_DDRESCUE);
	CHECK(dt_format_from_name("xml", &f) == -EINVAL);
	CHECK(dt_format_from_name("Ranges", &f) == -EINVAL);
	end("the four dump formats are known by name and others are refused");
}

static void test_writer_fd(void)
{
	char path[128];
	struct dt_writer w;
	unsigned int i;
	char *back;
	int fd, ok = 1;

	begin();
	snprintf(path, sizeof(path), "%s/writer", tmpdir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	CHECK(dt_writer_init(&w, fd) == 0);
	for (i = 0; i < 300000; i++)
		dt_writer_puts(&w, "0123456789\n");
	CHECK(dt_writer_flush(&w) == 0);
	dt_writer_free(&w);
	close(fd);
	back = slurp(path);
	CHECK(back && strlen(back) == 300000 * 11);
	for (i = 0; back && i < 300000; i++)
		ok &= !memcmp(back + 11 * i, "0123456789\n", 11);
	CHECK(ok);
	free(back);

	fd = open("/dev/full", O_WRONLY);
	if (fd >= 0) {
		CHECK(dt_writer_init(&w, fd) == 0);
		for (i = 0; i < 300000; i++)
			dt_writer_puts(&w, "0123456789\n");
		CHECK(dt_writer_flush(&w) == -ENOSPC);
		dt_writer_free(&w);
		close(fd);
	}
	end("the buffered writer writes everything in order and keeps the first write error");
}

/* ------------------------------------------------------------------ */
/* -o FILE                                                             */
/* ------------------------------------------------------------------ */

static void test_output_atomic(void)
{
	char path[128];
	struct dt_output o;
	struct dt_writer w;
	struct dt_dump d;
	uint64_t *bm = example_bitmap();
	struct stat st;
	mode_t old = umask(022);
	char *back;

	begin();
	snprintf(path, sizeof(path), "%s/out-ok", tmpdir);
	CHECK(write_file(path, "old\n", 4) == 0);
	CHECK(dt_output_open(&o, path) == 0);
	d = (struct dt_dump) { .w = &w, .format = DT_FORMAT_RANGES, .geo = &example_geo,
			       .device = "d" };
	CHECK(dt_writer_init(&w, o.fd) == 0);
	CHECK(dt_dump_bitmap(&d, bm) == 0);
	dt_writer_free(&w);
	back = slurp(path);
	CHECK_STR(back, "old\n");		/* untouched until closed */
	free(back);
	CHECK(dt_output_close(&o, 1) == 0);
	back = slurp(path);
	CHECK_STR(back, "2048 24\n2552 16\n3048 1\n");
	free(back);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0644);
	CHECK_U64(count_files("out-ok."), 0);
	umask(old);
	free(bm);
	end("dump -o FILE replaces FILE only when complete, mode 0666 less umask, no temporary left");
}

static void test_output_failure(void)
{
	uint64_t n = 1 << 20, c, *bm = new_bitmap(n);
	struct dt_geometry g = {
		.length = n * 8, .dev_sectors = n * 8, .cluster_sectors = 8, .clusters = n,
	};
	char path[128];
	int status = 0;
	pid_t pid;
	char *back;

	begin();
	for (c = 0; c < n; c += 2)
		set_bit(bm, c);
	snprintf(path, sizeof(path), "%s/out-fail", tmpdir);
	CHECK(write_file(path, "old\n", 4) == 0);
	fflush(tap);
	pid = fork();
	if (pid == 0) {
		/* A file size limit makes write() fail with EFBIG mid-dump. */
		struct rlimit rl = { .rlim_cur = 65536, .rlim_max = 65536 };
		struct dt_output o;
		struct dt_writer w;
		struct dt_dump d = { .w = &w, .format = DT_FORMAT_RANGES, .geo = &g, .device = "d" };
		int ret;

		signal(SIGXFSZ, SIG_IGN);
		setrlimit(RLIMIT_FSIZE, &rl);
		if (dt_output_open(&o, path) || dt_writer_init(&w, o.fd))
			_exit(10);
		ret = dt_dump_bitmap(&d, bm);
		dt_writer_free(&w);
		free(bm);		/* valgrind checks the child for leaks too */
		dt_output_close(&o, 0);
		_exit(ret == -EFBIG ? 0 : 11);
	}
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	back = slurp(path);
	CHECK_STR(back, "old\n");
	free(back);
	CHECK_U64(count_files("out-fail."), 0);
	free(bm);
	end("a write error mid-dump leaves FILE as it was and no temporary file");
}

static void test_output_fifo(void)
{
	char path[128], buf[64] = "";
	struct dt_output o;
	int rfd;

	begin();
	snprintf(path, sizeof(path), "%s/fifo", tmpdir);
	CHECK(mkfifo(path, 0600) == 0);
	rfd = open(path, O_RDONLY | O_NONBLOCK);
	CHECK(rfd >= 0);
	CHECK(dt_output_open(&o, path) == 0);
	CHECK(o.path == NULL);
	CHECK(write(o.fd, "2048 24\n", 8) == 8);
	CHECK(dt_output_close(&o, 1) == 0);
	CHECK(read(rfd, buf, sizeof(buf) - 1) == 8);
	CHECK_STR(buf, "2048 24\n");
	CHECK_U64(count_files("fifo."), 0);
	close(rfd);
	end("dump -o to a FIFO or device writes to it directly, without a temporary file");
}

static void test_output_signal(void)
{
	char path[128];
	int status = 0;
	pid_t pid;

	begin();
	snprintf(path, sizeof(path), "%s/out-signal", tmpdir);
	fflush(tap);
	pid = fork();
	if (pid == 0) {
		struct dt_output o;

		if (dt_output_open(&o, path) || write(o.fd, "partial", 7) != 7)
			_exit(10);
		raise(SIGTERM);
		_exit(11);
	}
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
	CHECK(access(path, F_OK) != 0);
	CHECK_U64(count_files("out-signal"), 0);
	end("a fatal signal mid-dump removes the temporary file and still kills the process");
}

/* ------------------------------------------------------------------ */
/* status output                                                       */
/* ------------------------------------------------------------------ */

static const struct dt_status example_status = {
	.cluster_sectors = 128, .clusters = 1638400, .dirty_clusters = 12345,
	.mode = "default", .health = "ok", .uuid = UUID1, .sequence = 7,
};

static const struct dt_geometry example_status_geo = {
	.start = 0, .length = 209715200, .dev_sectors = 209715200,
	.cluster_sectors = 128, .clusters = 1638400,
};

/* dt_print_status_*() of @r into a string. */
static char *status_string(const struct dt_status_report *r, int json, int exact)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		abort();
	if (json)
		dt_print_status_json(f, r);
	else
		dt_print_status_human(f, r, exact);
	fclose(f);
	return text;
}

static void test_status_human(void)
{
	char map[DT_MAP_WIDTH + 1];
	struct dt_status_report r = {
		.name = "vm-disk", .st = &example_status, .geo = &example_status_geo,
		.map = map,
	};
	char *s;

	begin();
	memset(map, ' ', DT_MAP_WIDTH);
	map[DT_MAP_WIDTH] = '\0';
	map[0] = '#';
	map[1] = '.';
	map[127] = ':';
	s = status_string(&r, 0, 0);
	CHECK_STR(s,
		  "vm-disk: 771.6 MiB of 100 GiB changed (12345 of 1638400 clusters of 64 KiB), "
		  "frozen: none, mode default, health ok, sequence 7\n"
		  "uuid: " UUID1 "\n"
		  "map: 128 cells of 12800 clusters; " DT_MAP_LEGEND "\n"
		  "  |#.                                                              |\n"
		  "  |                                                               :|\n");
	free(s);
	end("status prints an at-a-glance line, the uuid and a two-line map with its legend");
}

static void test_status_human_bytes(void)
{
	struct dt_status st = example_status;
	struct dt_status_report r = {
		.name = "vm-disk", .st = &st, .geo = &example_status_geo, .suspended = 1,
		.map_error = "device is suspended; resume it first",
	};
	char *s;

	begin();
	st.has_frozen = 1;
	st.frozen_clusters = 42;
	strcpy(st.health, DT_HEALTH_UNCLEAN);
	s = status_string(&r, 0, 1);
	CHECK_STR(s,
		  "vm-disk: 809041920 bytes of 107374182400 bytes changed (12345 of 1638400 "
		  "clusters of 65536 bytes), frozen: 2752512 bytes (42 clusters), mode default, "
		  "health unclean_shutdown, sequence 7, suspended\n"
		  "uuid: " UUID1 "\n"
		  "note: the device was not shut down cleanly: every cluster counts as changed "
		  "until the next clear or commit\n"
		  "map: unavailable (device is suspended; resume it first)\n");
	free(s);
	end("status -b prints exact bytes, the frozen set, suspension and why health is not ok");
}

static void test_status_json(void)
{
	struct dt_status_report r = {
		.name = "vm\"disk", .st = &example_status, .geo = &example_status_geo,
	};
	char *s;

	begin();
	s = status_string(&r, 1, 0);
	CHECK_STR(s,
		  "{\n"
		  "  \"device\": \"vm\\\"disk\",\n"
		  "  \"uuid\": \"" UUID1 "\",\n"
		  "  \"sequence\": 7,\n"
		  "  \"cluster_sectors\": 128,\n"
		  "  \"clusters\": 1638400,\n"
		  "  \"dirty_clusters\": 12345,\n"
		  "  \"frozen_clusters\": null,\n"
		  "  \"mode\": \"default\",\n"
		  "  \"health\": \"ok\",\n"
		  "  \"suspended\": false,\n"
		  "  \"start_sector\": 0,\n"
		  "  \"length_sectors\": 209715200,\n"
		  "  \"size_bytes\": 107374182400,\n"
		  "  \"frozen_id\": null\n"
		  "}\n");
	if (s && json_valid(s) == 0)
		CHECK(!"valid JSON");
	free(s);
	end("status --json has every documented key, frozen_clusters and frozen_id null when nothing is frozen");
}

static const struct dt_status example_frozen_status = {
	.cluster_sectors = 128, .clusters = 1638400, .dirty_clusters = 12345,
	.has_frozen = 1, .frozen_clusters = 2,
	.mode = "default", .health = "ok", .uuid = UUID1, .sequence = 7,
	.reports_frozen_id = 1, .frozen_id = ID1,
	.reports_snapshot = 1, .snapshot = "active", .has_store = 1,
	.store_used_sectors = 2048, .store_sectors = 2097152,
};

static void test_status_json_frozen(void)
{
	struct dt_status_report r = {
		.name = "vm-disk", .st = &example_frozen_status, .geo = &example_status_geo,
	};
	struct dt_status st = example_frozen_status;
	char *s;

	begin();
	s = status_string(&r, 1, 0);
	CHECK(s && strstr(s, "  \"frozen_clusters\": 2,\n"));
	CHECK(s && strstr(s, "  \"frozen_id\": \"" ID1 "\",\n"
			  "  \"snapshot\": \"active\",\n"
			  "  \"store_used_sectors\": 2048,\n"
			  "  \"store_sectors\": 2097152\n}\n"));
	if (s && json_valid(s) == 0)
		CHECK(!"valid JSON");
	free(s);
	st.has_store = 0;
	strcpy(st.snapshot, "-");
	r.st = &st;
	s = status_string(&r, 1, 0);
	CHECK(s && strstr(s, "  \"snapshot\": null,\n"
			  "  \"store_used_sectors\": null,\n"
			  "  \"store_sectors\": null\n}\n"));
	free(s);
	st.reports_snapshot = 0;
	s = status_string(&r, 1, 0);
	CHECK(s && !strstr(s, "snapshot"));
	free(s);
	end("status --json has the frozen id, and the snapshot keys only when the target reports them");
}

static char *export_string(const struct dt_status_report *r)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		abort();
	dt_print_status_export(f, r);
	fclose(f);
	return text;
}

static void test_status_export(void)
{
	struct dt_status_report r = {
		.name = "vm-disk", .st = &example_status, .geo = &example_status_geo,
	};
	char *s;

	begin();
	s = export_string(&r);
	CHECK_STR(s, "DEVICE=vm-disk\nUUID=" UUID1 "\nSEQUENCE=7\nCLUSTER_SECTORS=128\n"
		  "CLUSTERS=1638400\nDIRTY_CLUSTERS=12345\nFROZEN_CLUSTERS=\nFROZEN_ID=\n"
		  "MODE=default\nHEALTH=ok\n");
	free(s);
	r.st = &example_frozen_status;
	s = export_string(&r);
	CHECK(s && strstr(s, "\nFROZEN_CLUSTERS=2\nFROZEN_ID=" ID1 "\n"));
	CHECK(s && strstr(s, "\nHEALTH=ok\nSNAPSHOT=active\nSTORE_USED_SECTORS=2048\n"
			  "STORE_SECTORS=2097152\n"));
	free(s);
	end("status --export prints every documented KEY=value, empty when there is no value");
}

static void test_status_human_frozen(void)
{
	struct dt_status_report r = {
		.name = "vm-disk", .st = &example_frozen_status, .geo = &example_status_geo,
		.map_error = "x",
	};
	char *s;

	begin();
	s = status_string(&r, 0, 0);
	CHECK(s && strstr(s, "\nfrozen id: " ID1 "\n"));
	CHECK(s && strstr(s, "\nsnapshot: active, store 1 MiB of 1 GiB used\n"));
	free(s);
	end("status shows the frozen id and how much of the snapshot store is used");
}

static void test_status_small_map(void)
{
	struct dt_status st = example_status;
	struct dt_geometry g = {
		.length = 80, .dev_sectors = 80, .cluster_sectors = 8, .clusters = 10,
	};
	struct dt_status_report r = { .name = "d", .st = &st, .geo = &g, .map = "#  #      " };
	char *s;

	begin();
	st.cluster_sectors = 8;
	st.clusters = 10;
	st.dirty_clusters = 2;
	s = status_string(&r, 0, 0);
	CHECK(s && strstr(s, "\nmap: 10 cells of 1 cluster; " DT_MAP_LEGEND "\n"
			  "  |#  #      |\n"));
	free(s);
	end("a device with fewer clusters than map cells gets one cell per cluster");
}

/* ------------------------------------------------------------------ */
/* Numbers and text                                                    */
/* ------------------------------------------------------------------ */

static void test_parse_sectors_plain(void)
{
	uint64_t v = 1;

	begin();
	CHECK(dt_parse_sectors("0", &v) == NULL && v == 0);
	CHECK(dt_parse_sectors("123", &v) == NULL && v == 123);
	CHECK(dt_parse_sectors("18446744073709551615", &v) == NULL && v == UINT64_MAX);
	CHECK(dt_parse_sectors("8s", &v) == NULL && v == 8);
	CHECK(dt_parse_sectors("8S", &v) == NULL && v == 8);
	CHECK(dt_parse_u64("42", &v) == NULL && v == 42);
	end("plain numbers and the 's' suffix are sectors");
}

static void test_parse_sectors_suffix(void)
{
	uint64_t v = 0;

	begin();
	CHECK(dt_parse_sectors("4K", &v) == NULL && v == 8);
	CHECK(dt_parse_sectors("4KiB", &v) == NULL && v == 8);
	CHECK(dt_parse_sectors("4kib", &v) == NULL && v == 8);
	CHECK(dt_parse_sectors("1M", &v) == NULL && v == 2048);
	CHECK(dt_parse_sectors("1g", &v) == NULL && v == 2097152);
	CHECK(dt_parse_sectors("2TiB", &v) == NULL && v == 4294967296ULL);
	CHECK(dt_parse_sectors("512KB", &v) == NULL && v == 1000);
	CHECK(dt_parse_sectors("1E", &v) == NULL && v == (1ULL << 51));
	end("size suffixes K, M, G, T, P, E (KiB or KB) are bytes converted to sectors");
}

static void test_parse_sectors_bad(void)
{
	static const struct {
		const char *s;
		const char *why;
	} bad[] = {
		{ "", "is empty" },
		{ "abc", "is not a number" },
		{ " 5", "is not a number" },
		{ "-5", "must not be negative" },
		{ "18446744073709551616", "is too large" },
		{ "99999999999999999999999", "is too large" },
		{ "20E", "is too large" },
		{ "12x", "has an unknown suffix (use s, K, M, G, T, P, E, KiB, KB, ...)" },
		{ "1.5G", "has an unknown suffix (use s, K, M, G, T, P, E, KiB, KB, ...)" },
		{ "1kb", "is not a multiple of 512 bytes" },
		{ "100", NULL },
	};
	uint64_t v;
	unsigned int i;

	begin();
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *why = dt_parse_sectors(bad[i].s, &v);

		if (bad[i].why)
			CHECK_STR(why, bad[i].why);
		else
			CHECK(why == NULL);
	}
	CHECK_STR(dt_parse_u64("12s", &v), "is not a number");
	CHECK_STR(dt_parse_u64("-1", &v), "must not be negative");
	end("non-numeric, negative, overflowing and unaligned numbers are refused with a reason");
}

static void test_u64_to_dec(void)
{
	static const uint64_t values[] = {
		0, 1, 9, 10, 99, 100, 101, 999, 1000, 65536, 4294967295ULL,
		10000000000000000000ULL, UINT64_MAX,
	};
	char got[24], want[24];
	unsigned int i;

	uint64_t p = 1;
	int d;

	begin();
	for (i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		got[dt_u64_to_dec(got, values[i])] = '\0';
		snprintf(want, sizeof(want), "%" PRIu64, values[i]);
		CHECK_STR(got, want);
	}
	for (i = 0; i < 20; i++, p *= 10) {	/* every change in the digit count */
		for (d = -1; d <= 1; d++) {
			uint64_t v = p + (uint64_t)(int64_t)d;

			got[dt_u64_to_dec(got, v)] = '\0';
			snprintf(want, sizeof(want), "%" PRIu64, v);
			CHECK_STR(got, want);
		}
	}
	end("fast decimal formatting matches printf at every power of ten");
}

static void test_human(void)
{
	static const struct {
		uint64_t bytes;
		const char *want;
	} cases[] = {
		{ 0, "0 B" }, { 512, "512 B" }, { 1023, "1023 B" }, { 1024, "1 KiB" },
		{ 1075, "1 KiB" }, { 1126, "1.1 KiB" }, { 1536, "1.5 KiB" },
		{ 65536, "64 KiB" }, { 1048575, "1 MiB" }, { 1288490188, "1.2 GiB" },
		{ 107374182400ULL, "100 GiB" }, { 1ULL << 60, "1 EiB" },
		{ UINT64_MAX, "16 EiB" },
	};
	char buf[DT_HUMAN_MAX];
	unsigned int i;

	begin();
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		CHECK_STR(dt_size_to_human(cases[i].bytes, buf), cases[i].want);
	end("human sizes use binary units with one rounded decimal");
}

static void test_uuid_json(void)
{
	unsigned char uuid[16];
	char out[DT_UUID_STR_LEN];
	char *q;
	unsigned int i;

	begin();
	for (i = 0; i < 16; i++)
		uuid[i] = (unsigned char)(0x10 * i + i);
	dt_format_uuid(uuid, out);
	CHECK_STR(out, "00112233-4455-6677-8899-aabbccddeeff");
	q = dt_json_quote("a\"b\\c\n\x01z");
	CHECK_STR(q, "\"a\\\"b\\\\c\\n\\u0001z\"");
	free(q);
	end("uuids print as 8-4-4-4-12 lowercase hex and JSON strings are escaped");
}

static void test_json_utf8(void)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "disk-\xc3\xa9\xe2\x82\xac\xf0\x9f\x92\xbe", "\"disk-\xc3\xa9\xe2\x82\xac\xf0\x9f\x92\xbe\"" },
		{ "a\xff" "b", "\"a\\ufffdb\"" },			/* never UTF-8 */
		{ "\xc3", "\"\\ufffd\"" },				/* cut short */
		{ "\xc0\xaf", "\"\\ufffd\\ufffd\"" },			/* overlong '/' */
		{ "\xe0\x80\xaf", "\"\\ufffd\\ufffd\\ufffd\"" },	/* overlong */
		{ "\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"" },	/* surrogate */
		{ "\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"" }, /* > U+10FFFF */
		{ "\x1b[31m\x7f", "\"\\u001b[31m\\u007f\"" },
		{ "\x80\"", "\"\\ufffd\\\"\"" },
	};
	unsigned int i;
	char *q;

	begin();
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		q = dt_json_quote(cases[i].in);
		if (!CHECK(q && !strcmp(q, cases[i].want)))
			tprintf("#     case %u gave %s\n", i, q ? q : "NULL");
		if (q && json_valid(q) == 0)
			CHECK(!"valid JSON");
		free(q);
	}
	q = dt_utf8_sanitize("a\xff\xc3\xa9");
	CHECK_STR(q, "a" DT_UTF8_REPLACEMENT "\xc3\xa9");
	free(q);
	end("JSON strings stay valid: bytes that are not UTF-8 become \\ufffd, controls \\u00XX");
}

/* @q with each "\\ufffd" written as the character itself, in place. */
static void unescape_replacement(char *q)
{
	char *r, *w = q;

	for (r = q; *r; ) {
		if (!strncmp(r, "\\ufffd", 6)) {
			memcpy(w, DT_UTF8_REPLACEMENT, 3);
			w += 3;
			r += 6;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
}

/* dt_utf8_sanitize() and dt_json_quote() agree on what is UTF-8. */
static void test_utf8_sanitize(void)
{
	unsigned int i, k;
	char in[24], *a, *b, *q;
	const unsigned char *u;

	begin();
	a = dt_utf8_sanitize("a\xff\x01\"\\\xe2\x82\xac\xe2\x82");
	CHECK_STR(a, "a" DT_UTF8_REPLACEMENT "\x01\"\\\xe2\x82\xac"
		  DT_UTF8_REPLACEMENT DT_UTF8_REPLACEMENT);
	free(a);
	for (i = 0; i < 20000; i++) {
		for (k = 0; k < sizeof(in) - 1; k++) {
			unsigned int r = rng();

			/* mostly bytes that start or continue UTF-8 sequences */
			in[k] = (char)(r % 4 ? 0x80 + (r >> 8) % 0x78 : 1 + (r >> 8) % 0x7f);
			if (in[k] == '\\')	/* then each \\ in @q starts an escape */
				in[k] = '/';
		}
		in[1 + rng() % (sizeof(in) - 1)] = '\0';
		a = dt_utf8_sanitize(in);
		b = a ? dt_utf8_sanitize(a) : NULL;
		q = dt_json_quote(in);
		if (!CHECK(a && b && q))
			break;
		for (u = (const unsigned char *)a; *u && dt_utf8_len(u); u += dt_utf8_len(u))
			;
		CHECK(!*u);			/* all of it UTF-8 */
		CHECK(!strcmp(a, b));		/* UTF-8 stays as it is */
		free(b);
		b = dt_json_quote(a);
		unescape_replacement(q);
		CHECK(b && !strcmp(b, q));	/* quoting replaces the same bytes */
		free(a);
		free(b);
		free(q);
		if (case_failed) {
			tprintf("#     input %u\n", i);
			break;
		}
	}
	end("utf8 sanitizing gives UTF-8, keeps UTF-8, and replaces the bytes JSON quoting does");
}

/* Runs /bin/sh: eval of @export, then prints variable @var. */
static char *shell_value(const char *export, const char *var)
{
	char path[128], cmd[512];

	snprintf(path, sizeof(path), "%s/export", tmpdir);
	if (write_file(path, export, strlen(export)))
		return NULL;
	snprintf(cmd, sizeof(cmd), "sh -c 'eval \"$(cat %s)\"; printf %%s \"$%s\"' "
		 "> %s/value 2>/dev/null", path, var, tmpdir);
	if (system(cmd) != 0)
		return NULL;
	snprintf(path, sizeof(path), "%s/value", tmpdir);
	return slurp(path);
}

static void test_shell_quote(void)
{
	const char *nasty = "a b'c\"d$(touch x)$HOME`e`;f|g&h<i>j\\k*?[l]~m#n!{o}\xc3\xa9";
	char *text = NULL, *v;
	size_t len = 0;
	FILE *f;

	begin();
	f = open_memstream(&text, &len);
	if (!f)
		abort();
	fputs("V=", f);
	dt_shell_quote_put(f, nasty);
	fputs("\nW=", f);
	dt_shell_quote_put(f, "x\ny\tz");
	fputc('\n', f);
	fclose(f);
	CHECK(text && !strchr(strchr(text, '\n') + 1, '\n')[1]);	/* two lines */
	CHECK(text && strstr(text, "\nW=x\\\\x0ay\\\\x09z\n"));
	v = shell_value(text, "V");
	CHECK_STR(v, nasty);
	free(v);
	v = shell_value(text, "W");
	CHECK_STR(v, "x\\x0ay\\x09z");
	free(v);
	free(text);
	end("export values give the exact name back to sh's eval; a control character stays on its line as \\xNN");
}

static void test_message_errors(void)
{
	begin();
	CHECK_STR(dt_message_error(DT_MSG_CHECKPOINT, EEXIST),
		  "a checkpoint is already frozen; commit or roll it back first");
	CHECK_STR(dt_message_error(DT_MSG_COMMIT, ENOENT), "nothing is frozen");
	CHECK_STR(dt_message_error(DT_MSG_ROLLBACK, ENOENT), "nothing is frozen");
	CHECK_STR(dt_message_error(DT_MSG_BITMAP, ENOENT), "nothing is frozen");
	CHECK_STR(dt_message_error(DT_MSG_CLEAR, EBUSY), "device is suspended; resume it first");
	CHECK_STR(dt_message_error(DT_MSG_MARK, ERANGE), "extent beyond the end of the device");
	CHECK_STR(dt_message_error("", ENXIO), "no such device");
	CHECK_STR(dt_message_error(DT_MSG_BITMAP, EBADMSG), "malformed reply from target");
	CHECK(dt_message_error(DT_MSG_CLEAR, EIO) == NULL);
	end("errors of the target become the documented one-line causes");
}

static void test_crc32c(void)
{
	begin();
	CHECK_U64(dt_crc32c("123456789", 9), 0xE3069283U);
	CHECK_U64(dt_crc32c("", 0), 0);
	end("crc32c of \"123456789\" is 0xE3069283");
}

/* ------------------------------------------------------------------ */
/* Superblock and inspect                                              */
/* ------------------------------------------------------------------ */

#define EX_DATA_SECTORS 1000000ULL	/* 7813 clusters of 128, last partial */
#define EX_CLUSTERS 7813ULL

/* A sound metadata image: live clusters 0-9 and 7812, frozen 5, 6, 7. */
static struct mem_image make_image(uint32_t flags)
{
	struct mem_image m;
	unsigned char *live, *frozen;
	struct dt_disk_superblock *sb;
	unsigned int c;

	m.data = calloc(1, 3 * DT_BLOCK_SIZE);
	if (!m.data)
		abort();
	dt_test_make_superblock(m.data, EX_DATA_SECTORS, 128, flags);
	m.len = dt_test_metadata_bytes(m.data);
	live = m.data + DT_BLOCK_SIZE;
	frozen = m.data + 2 * DT_BLOCK_SIZE;
	for (c = 0; c < 10; c++)
		live[c / 8] |= (unsigned char)(1 << (c % 8));
	live[7812 / 8] |= 1 << (7812 % 8);
	for (c = 5; c < 8; c++)
		frozen[c / 8] |= (unsigned char)(1 << (c % 8));
	sb = (struct dt_disk_superblock *)m.data;
	sb->dirty_clusters = htole64(11);
	sb->frozen_clusters = htole64(3);
	dt_test_seal_superblock(m.data);
	return m;
}

static int inspect_image(struct mem_image *m, struct dt_md_info *info)
{
	struct dt_md_source src = { .read = mem_read, .ctx = m, .size = m->len };

	return dt_md_inspect(&src, info);
}

static void test_inspect_sound(void)
{
	struct mem_image m = make_image(DT_SB_FLAG_VALID | DT_SB_FLAG_FROZEN);
	struct dt_md_info info;

	begin();
	CHECK_U64(m.len, 3 * DT_BLOCK_SIZE);
	CHECK(inspect_image(&m, &info) == 0);
	CHECK(info.state == DT_MD_SOUND);
	CHECK(info.problem == NULL);
	CHECK_U64(info.clusters, EX_CLUSTERS);
	CHECK_U64(info.data_sectors, EX_DATA_SECTORS);
	CHECK_U64(info.cluster_sectors, 128);
	CHECK_U64(info.sequence, 7);
	CHECK_U64(info.generation, 42);
	CHECK_U64(info.dirty_clusters, 11);
	CHECK_U64(info.frozen_clusters, 3);
	CHECK_U64(info.frozen_sequence, 6);
	CHECK_U64(info.stray_bits, 0);
	CHECK_U64(info.flags, DT_SB_FLAG_VALID | DT_SB_FLAG_FROZEN);
	free(m.data);
	end("a sound metadata image is validated and both bitmaps are counted");
}

static void test_inspect_unformatted(void)
{
	struct mem_image m = { calloc(1, 3 * DT_BLOCK_SIZE), 3 * DT_BLOCK_SIZE };
	struct dt_md_info info;

	begin();
	CHECK(inspect_image(&m, &info) == 0);
	CHECK(info.state == DT_MD_UNFORMATTED);
	m.data[DT_BLOCK_SIZE - 1] = 1;		/* not all zero: not a superblock */
	CHECK(inspect_image(&m, &info) == 0);
	CHECK(info.state == DT_MD_CORRUPT);
	CHECK_STR(info.problem, "bad magic: not a dirtytrack superblock");
	free(m.data);
	end("an all-zero first block is unformatted, anything else unknown is bad magic");
}

struct corruption {
	const char *what;
	const char *sentence;
	void (*mutate)(struct dt_disk_superblock *sb, struct mem_image *m);
	int reseal;
};

static void mut_magic(struct dt_disk_superblock *sb, struct mem_image *m)
{ (void)m; sb->magic = htole32(0x12345678); }
static void mut_csum(struct dt_disk_superblock *sb, struct mem_image *m)
{ (void)m; sb->uuid[3] ^= 1; }
static void mut_version(struct dt_disk_superblock *sb, struct mem_image *m)
{ (void)m; sb->version = htole32(2); }
static void mut_flags(struct dt_disk_superblock *sb, struct mem_image *m)
{ (void)m; sb->flags = htole32(1U << 7); }
static void mut_block_size(struct dt_disk_superblock *sb, struct mem_image *m)
{ (void)m; sb->block_size = htole32(512); }
static void mut_cluster_size(struct dt_disk_superblock *sb, struct mem_image *m)
{ (void)m; sb->cluster_sectors = htole32(100); }
static void mut_data_size(struct dt_disk_superblock *sb, struct mem_image *m)
{ (void)m; sb->data_sectors = 0; }
static void mut_data_huge(struct dt_disk_superblock *sb, struct mem_image *m)
{ (void)m; sb->data_sectors = htole64((1ULL << 56) + 1); }
static void mut_clusters(struct dt_disk_superblock *sb, struct mem_image *m)
{ (void)m; sb->nr_clusters = htole64(EX_CLUSTERS + 1); }
static void mut_bitmap_blocks(struct dt_disk_superblock *sb, struct mem_image *m)
{ (void)m; sb->bitmap_blocks = htole64(2); }
static void mut_location(struct dt_disk_superblock *sb, struct mem_image *m)
{ (void)m; sb->frozen_block = htole64(3); }
static void mut_small(struct dt_disk_superblock *sb, struct mem_image *m)
{ (void)sb; m->len -= 512; }
static void mut_dirty(struct dt_disk_superblock *sb, struct mem_image *m)
{ (void)m; sb->dirty_clusters = htole64(EX_CLUSTERS + 1); }
static void mut_frozen(struct dt_disk_superblock *sb, struct mem_image *m)
{ (void)m; sb->frozen_clusters = htole64(UINT64_MAX); }
static void mut_reserved(struct dt_disk_superblock *sb, struct mem_image *m)
{ (void)m; sb->reserved[100] = 1; }
static void mut_stray_id(struct dt_disk_superblock *sb, struct mem_image *m)
{ (void)m; sb->frozen_id = htole64(42); }

static void test_inspect_frozen_without_id(void)
{
	struct mem_image m = make_image(DT_SB_FLAG_VALID | DT_SB_FLAG_FROZEN);
	struct dt_md_info info;

	begin();
	((struct dt_disk_superblock *)m.data)->frozen_id = 0;
	dt_test_seal_superblock(m.data);
	CHECK(inspect_image(&m, &info) == 0);
	CHECK(info.state != DT_MD_CORRUPT);
	free(m.data);
	end("a frozen set stored before frozen sets had ids (frozen_id 0) is accepted");
}

static void test_inspect_corruptions(void)
{
	static const struct corruption cases[] = {
		{ "a wrong magic", "bad magic: not a dirtytrack superblock", mut_magic, 1 },
		{ "a stale checksum", "bad checksum", mut_csum, 0 },
		{ "format version 2", "unknown format version", mut_version, 1 },
		{ "an unknown flag", "unknown flags", mut_flags, 1 },
		{ "a 512-byte block size", "bad block size", mut_block_size, 1 },
		{ "a cluster size of 100", "bad cluster size", mut_cluster_size, 1 },
		{ "a zero data size", "bad data size", mut_data_size, 1 },
		{ "a data size above 2^56", "bad data size", mut_data_huge, 1 },
		{ "one cluster too many", "cluster count does not match the data size",
		  mut_clusters, 1 },
		{ "a bitmap block too many", "bitmap size does not match the cluster count",
		  mut_bitmap_blocks, 1 },
		{ "the frozen bitmap in the wrong place", "bad bitmap location",
		  mut_location, 1 },
		{ "a device too small for its bitmaps",
		  "metadata device smaller than its bitmaps", mut_small, 1 },
		{ "a dirty count above the cluster count", "bad dirty cluster count",
		  mut_dirty, 1 },
		{ "a huge frozen count", "bad dirty cluster count", mut_frozen, 1 },
		{ "a non-zero reserved byte", "reserved bytes not zero", mut_reserved, 1 },
		{ "a frozen set id but no frozen set",
		  "frozen set identity without a frozen set", mut_stray_id, 1 },
	};
	unsigned int i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mem_image m = make_image(DT_SB_FLAG_VALID);
		struct dt_disk_superblock sb;
		struct dt_md_info info;

		begin();
		memcpy(&sb, m.data, sizeof(sb));
		cases[i].mutate(&sb, &m);
		memcpy(m.data, &sb, sizeof(sb));
		if (cases[i].reseal)
			dt_test_seal_superblock(m.data);
		CHECK(inspect_image(&m, &info) == 0);
		CHECK(info.state == DT_MD_CORRUPT);
		CHECK_STR(info.problem, cases[i].sentence);
		free(m.data);
		end("a superblock with %s is refused: %s", cases[i].what, cases[i].sentence);
	}
}

static void test_inspect_stray(void)
{
	struct mem_image m = make_image(DT_SB_FLAG_VALID);
	struct dt_md_info info;

	begin();
	m.data[DT_BLOCK_SIZE + EX_CLUSTERS / 8] |= 1 << (EX_CLUSTERS % 8);
	m.data[3 * DT_BLOCK_SIZE - 1] |= 0x80;	/* last bit of the frozen bitmap */
	CHECK(inspect_image(&m, &info) == 0);
	CHECK(info.state == DT_MD_SOUND);
	CHECK_U64(info.dirty_clusters, 11);
	CHECK_U64(info.stray_bits, 2);
	free(m.data);
	end("bits beyond the last cluster are not counted as dirty but reported as stray");
}

static void test_inspect_short(void)
{
	struct mem_image m = make_image(DT_SB_FLAG_VALID);
	struct dt_md_source src = { .read = mem_read, .ctx = &m, .size = m.len };
	struct dt_md_info info;

	begin();
	m.len = DT_BLOCK_SIZE + 100;		/* the device shrank after sizing */
	CHECK(dt_md_inspect(&src, &info) == -ENODATA);
	m.len = 100;
	src.size = 100;
	CHECK(dt_md_inspect(&src, &info) == 0);
	CHECK(info.state == DT_MD_CORRUPT);
	CHECK_STR(info.problem, "too small to hold a superblock");
	m.len = 600;
	src.size = 600;
	CHECK(dt_md_inspect(&src, &info) == 0);
	CHECK_STR(info.problem, "metadata device smaller than its bitmaps");
	free(m.data);
	end("short reads and devices too small for a superblock are reported, not read past");
}

/* ------------------------------------------------------------------ */
/* The dirtyctl command line                                           */
/* ------------------------------------------------------------------ */

static const char *dirtyctl;		/* $DIRTYCTL */
static const char *dirtyctl_fake;	/* $DIRTYCTL_FAKE */
static const char *cli;			/* what run_dirtyctl() runs */

struct run {
	int status;
	char *out;
	char *err;
};

static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
}

/* Runs dirtyctl with @args (NULL-terminated); exit status, stdout, stderr. */
static struct run run_dirtyctl(const char *first, ...)
{
	const char *argv[16];
	char out[128], err[128];
	struct run r = { .status = -1 };
	va_list ap;
	int n = 0, status;
	pid_t pid;

	argv[n++] = cli;
	va_start(ap, first);
	for (argv[n] = first; argv[n] && n < 15; argv[++n] = va_arg(ap, const char *))
		;
	va_end(ap);
	argv[n] = NULL;
	snprintf(out, sizeof(out), "%s/stdout", tmpdir);
	snprintf(err, sizeof(err), "%s/stderr", tmpdir);
	fflush(tap);
	pid = fork();
	if (pid == 0) {
		int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
			_exit(127);
		execv(cli, (char *const *)argv);
		_exit(127);
	}
	if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status))
		r.status = WEXITSTATUS(status);
	r.out = slurp(out);
	r.err = slurp(err);
	return r;
}

#define TRY_HELP "Try 'dirtyctl --help' for more information.\n"

static void test_cli_version(void)
{
	struct run r = run_dirtyctl("-V", NULL);

	begin();
	CHECK_U64(r.status, 0);
	CHECK(r.out && !strncmp(r.out, "dirtyctl ", 9) && strchr(r.out, '.'));
	run_free(&r);
	r = run_dirtyctl("--help", NULL);
	CHECK_U64(r.status, 0);
	CHECK(r.out && strstr(r.out, "checkpoint DEV") && strstr(r.out, "--format"));
	run_free(&r);
	end("dirtyctl -V prints its version and --help lists commands and options");
}

static void test_cli_usage(void)
{
	static const struct {
		const char *args[6];
		const char *err;
	} cases[] = {
		{ { NULL }, "dirtyctl: no command specified\n" TRY_HELP },
		{ { "frobnicate", "x", NULL }, "dirtyctl: unknown command 'frobnicate'\n" TRY_HELP },
		{ { "status", NULL }, "dirtyctl: status: missing argument: status DEV\n" TRY_HELP },
		{ { "status", "a", "b", NULL },
		  "dirtyctl: status: too many arguments: status DEV\n" TRY_HELP },
		{ { "status", "a", "--frozen", NULL },
		  "dirtyctl: option --frozen is not valid with status\n" TRY_HELP },
		{ { "dump", "a", "--format", "xml", NULL },
		  "dirtyctl: unknown format 'xml' (ranges, bytes, json, ddrescue)\n" TRY_HELP },
		{ { "dump", "a", "--json", "--format=ranges", NULL },
		  "dirtyctl: --json conflicts with --format ranges\n" TRY_HELP },
		{ { "dump", "a", "-o", NULL },
		  "dirtyctl: option '-o' requires an argument\n" TRY_HELP },
		{ { "status", "a", "--bogus", NULL },
		  "dirtyctl: unrecognized option '--bogus'\n" TRY_HELP },
		{ { "mark", "a", "abc", "8", NULL },
		  "dirtyctl: invalid START_SECTOR 'abc': is not a number\n" TRY_HELP },
		{ { "mark", "a", "8", "99999999999999999999", NULL },
		  "dirtyctl: invalid NR_SECTORS '99999999999999999999': is too large\n" TRY_HELP },
		{ { "mark", "a", "--", "8", "-5", NULL },
		  "dirtyctl: invalid NR_SECTORS '-5': must not be negative\n" TRY_HELP },
		{ { "mark", "a", "8", "0", NULL },
		  "dirtyctl: invalid NR_SECTORS '0': must be greater than 0\n" TRY_HELP },
		{ { "clear", "", NULL }, "dirtyctl: clear: empty argument\n" TRY_HELP },
	};
	unsigned int i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *const *a = cases[i].args;
		struct run r = run_dirtyctl(a[0], a[0] ? a[1] : NULL,
					    a[0] && a[1] ? a[2] : NULL,
					    a[0] && a[1] && a[2] ? a[3] : NULL,
					    a[0] && a[1] && a[2] && a[3] ? a[4] : NULL, NULL);
		char line[160];

		begin();
		CHECK_U64(r.status, 2);
		CHECK_STR(r.err, cases[i].err);
		CHECK_STR(r.out, "");
		run_free(&r);
		snprintf(line, sizeof(line), "%s", cases[i].err + strlen("dirtyctl: "));
		line[strcspn(line, "\n")] = '\0';
		end("usage error exits 2: %s", line);
	}
}

static void test_cli_no_device(void)
{
	struct run r = run_dirtyctl("status", "dirtyctl-test-no-such-device", NULL);

	begin();
	/* No device-mapper on a build host, or no such device: either way one line. */
	CHECK_U64(r.status, 1);
	CHECK(r.err && !strncmp(r.err, "dirtyctl: ", 10) &&
	      strchr(r.err, '\n') == r.err + strlen(r.err) - 1);
	CHECK_STR(r.out, "");
	run_free(&r);
	end("status of a device that does not exist fails with one line on stderr, exit 1");
}

static void write_image(const char *name, const struct mem_image *m, char *path)
{
	snprintf(path, 128, "%s/%s", tmpdir, name);
	if (write_file(path, m->data, (size_t)m->len))
		abort();
}

static void test_cli_inspect(void)
{
	struct mem_image m = make_image(DT_SB_FLAG_VALID);
	char path[128], want[256];
	struct run r;

	begin();
	write_image("md-good", &m, path);
	r = run_dirtyctl("inspect", path, NULL);
	CHECK_U64(r.status, 0);
	snprintf(want, sizeof(want), "%s: dirtytrack metadata, format version 1\n"
		 "valid:           yes\n"
		 "uuid:            00112233-4455-6677-8899-aabbccddeeff\n", path);
	CHECK(r.out && !strncmp(r.out, want, strlen(want)));
	CHECK(r.out && strstr(r.out, "\ndirty clusters:  11\n"));
	CHECK(r.out && strstr(r.out, "\nfrozen clusters: none\n"));
	CHECK(r.out && strstr(r.out, "\ndata size:       488.3 MiB (1000000 sectors)\n"));
	CHECK_STR(r.err, "");
	run_free(&r);
	r = run_dirtyctl("inspect", "-b", path, NULL);
	CHECK(r.out && strstr(r.out, "\ndata size:       512000000 bytes (1000000 sectors)\n"));
	run_free(&r);
	free(m.data);
	end("inspect prints the superblock and the counted bitmaps of a sound image");
}

static void test_cli_inspect_json(void)
{
	struct mem_image m = make_image(DT_SB_FLAG_VALID);
	static const char *const keys[] = {
		"\"valid\": true", "\"uuid\": \"00112233-4455-6677-8899-aabbccddeeff\"",
		"\"sequence\": 7", "\"data_sectors\": 1000000", "\"cluster_sectors\": 128",
		"\"clusters\": 7813", "\"dirty_clusters\": 11", "\"frozen_clusters\": null",
		"\"flags\": [\"valid\"]", "\"frozen_id\": null",
	};
	char path[128];
	unsigned int i;
	struct run r;

	begin();
	write_image("md-json", &m, path);
	r = run_dirtyctl("inspect", "--json", path, NULL);
	CHECK_U64(r.status, 0);
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!CHECK(r.out && strstr(r.out, keys[i])))
			tprintf("#     missing %s\n", keys[i]);
	if (r.out && json_valid(r.out) == 0)
		CHECK(!"valid JSON");
	run_free(&r);
	free(m.data);

	m = make_image(DT_SB_FLAG_FROZEN);
	((struct dt_disk_superblock *)m.data)->frozen_id = htole64(0x0123456789abcdefULL);
	dt_test_seal_superblock(m.data);
	write_image("md-json2", &m, path);
	r = run_dirtyctl("inspect", "-J", path, NULL);
	CHECK(r.out && strstr(r.out, "\"valid\": false"));
	CHECK(r.out && strstr(r.out, "\"frozen_clusters\": 3"));
	CHECK(r.out && strstr(r.out, "\"frozen_sequence\": 6"));
	CHECK(r.out && strstr(r.out, "\"frozen_id\": \"" ID1 "\""));
	CHECK(r.out && strstr(r.out, "\"flags\": [\"frozen\"]"));
	run_free(&r);
	r = run_dirtyctl("inspect", path, NULL);
	CHECK(r.out && strstr(r.out, "\nfrozen id:       " ID1 "\n"));
	run_free(&r);
	free(m.data);
	end("inspect has valid, uuid, sequence, geometry, counts, the frozen id; frozen null unless frozen");
}

static void test_cli_inspect_errors(void)
{
	struct mem_image m = make_image(DT_SB_FLAG_VALID);
	struct mem_image zero = { calloc(1, 8192), 8192 };
	char path[128], want[256];
	struct run r;

	begin();
	write_image("md-zero", &zero, path);
	r = run_dirtyctl("inspect", path, NULL);
	CHECK_U64(r.status, 1);
	snprintf(want, sizeof(want), "dirtyctl: %s: unformatted (all zero)\n", path);
	CHECK_STR(r.err, want);
	CHECK_STR(r.out, "");
	run_free(&r);

	m.data[40] ^= 0xff;			/* generation, checksum not updated */
	write_image("md-csum", &m, path);
	r = run_dirtyctl("inspect", "--json", path, NULL);
	CHECK_U64(r.status, 1);
	snprintf(want, sizeof(want), "dirtyctl: %s: bad checksum\n", path);
	CHECK_STR(r.err, want);
	CHECK_STR(r.out, "");
	run_free(&r);

	r = run_dirtyctl("inspect", "/nonexistent/md", NULL);
	CHECK_U64(r.status, 1);
	CHECK_STR(r.err, "dirtyctl: /nonexistent/md: No such file or directory\n");
	run_free(&r);

	r = run_dirtyctl("inspect", "/dev/null", NULL);
	CHECK_U64(r.status, 1);
	CHECK_STR(r.err, "dirtyctl: /dev/null: not a block device or regular file\n");
	run_free(&r);
	free(m.data);
	free(zero.data);
	end("inspect names the device and what is wrong in one line and exits 1");
}

/* ------------------------------------------------------------------ */
/* Every command against a simulated target (tests/fake-dm.c)          */
/* ------------------------------------------------------------------ */

static char fake_state[128], fake_log[128];

/*
 * The example device: dirtytrack at sector 2048 of vm-disk, 1001 sectors
 * in 8-sector clusters, live clusters 0-2, 63-64, 125; then @extra lines.
 */
static void fake_device(const char *extra)
{
	char text[1024];

	snprintf(text, sizeof(text),
		 "name=vm-disk\nstart=2048\nlength=1001\ndev_sectors=3149\n"
		 "status=8 126 6 - default ok " UUID1 " 7\n"
		 "live=0-2,63-64,125\nreply_max=102\n%s", extra);
	snprintf(fake_state, sizeof(fake_state), "%s/fake-state", tmpdir);
	snprintf(fake_log, sizeof(fake_log), "%s/fake-log", tmpdir);
	if (write_file(fake_state, text, strlen(text)) || write_file(fake_log, "", 0))
		abort();
	setenv("DIRTYCTL_FAKE_STATE", fake_state, 1);
	setenv("DIRTYCTL_FAKE_LOG", fake_log, 1);
	cli = dirtyctl_fake;
}

/* The messages the fake target received, one "<sector> <msg>" a line. */
static char *fake_messages(void)
{
	return slurp(fake_log);
}

/* Runs one command line against the fake; checks status, stdout, stderr, log. */
static void fake_case(const char *extra, const char *const args[], int status,
		      const char *out, const char *err, const char *log, const char *name)
{
	struct run r;
	char *messages;

	begin();
	fake_device(extra);
	r = run_dirtyctl(args[0], args[1], args[1] ? args[2] : NULL,
			 args[1] && args[2] ? args[3] : NULL,
			 args[1] && args[2] && args[3] ? args[4] : NULL,
			 args[1] && args[2] && args[3] && args[4] ? args[5] : NULL, NULL);
	CHECK_U64(r.status, status);
	if (out)
		CHECK_STR(r.out, out);
	CHECK_STR(r.err, err);
	messages = fake_messages();
	if (log)
		CHECK_STR(messages, log);
	run_free(&r);
	free(messages);
	cli = dirtyctl;
	end("%s", name);
}

#define ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL, NULL, NULL, NULL, NULL })

static void test_fake_state_changes(void)
{
	fake_case("", ARGS("checkpoint", "vm-disk"), 0, "c0ffee0123456789\n", "",
		  "2048 checkpoint\n",
		  "checkpoint sends 'checkpoint' to the target's start sector and prints the frozen set's id");
	fake_case("checkpoint_reply=none\n", ARGS("checkpoint", "vm-disk"), 0, "", "",
		  "2048 checkpoint\n",
		  "checkpoint on a target from before frozen set ids prints nothing and succeeds");
	fake_case("checkpoint_reply=ok\n", ARGS("checkpoint", "vm-disk"), 1, "",
		  "dirtyctl: vm-disk: checkpoint taken, but the target's reply is not a frozen set id\n",
		  "2048 checkpoint\n",
		  "checkpoint with a reply that is not an id fails, saying the checkpoint was taken");
	fake_case("", ARGS("commit", "/dev/mapper/vm-disk"), 0, "", "", "2048 commit\n",
		  "commit accepts /dev/mapper/NAME and sends 'commit'");
	fake_case("", ARGS("rollback", "vm-disk"), 0, "", "", "2048 rollback\n",
		  "rollback sends 'rollback'");
	fake_case("", ARGS("clear", "vm-disk"), 0, "", "", "2048 clear\n",
		  "clear sends 'clear'");
	fake_case("fail=checkpoint:17\n", ARGS("checkpoint", "vm-disk"), 1, "",
		  "dirtyctl: vm-disk: a checkpoint is already frozen; commit or roll it back first\n",
		  "2048 checkpoint\n",
		  "a second checkpoint (EEXIST) says a checkpoint is already frozen");
	fake_case("fail=commit:2\n", ARGS("commit", "vm-disk"), 1, "",
		  "dirtyctl: vm-disk: nothing is frozen\n", "2048 commit\n",
		  "commit without a checkpoint (ENOENT) says nothing is frozen");
	fake_case("fail=rollback:2\n", ARGS("rollback", "vm-disk"), 1, "",
		  "dirtyctl: vm-disk: nothing is frozen\n", "2048 rollback\n",
		  "rollback without a checkpoint (ENOENT) says nothing is frozen");
	fake_case("suspended=1\n", ARGS("clear", "vm-disk"), 1, "",
		  "dirtyctl: vm-disk: device is suspended; resume it first\n", "",
		  "a state change on a suspended device is refused before anything is sent");
	fake_case("fail=clear:16\n", ARGS("clear", "vm-disk"), 1, "",
		  "dirtyctl: vm-disk: device is suspended; resume it first\n", "2048 clear\n",
		  "EBUSY from the target means the device is suspended");
	fake_case("fail=clear:5\n", ARGS("clear", "vm-disk"), 1, "",
		  "dirtyctl: vm-disk: Input/output error\n", "2048 clear\n",
		  "any other error of the target is named by strerror");
}

static void test_fake_frozen_id(void)
{
	fake_case("frozen=5\nfrozen_id=" ID1 "\n", ARGS("commit", "vm-disk", "--id", ID1), 0, "",
		  "", "2048 commit " ID1 "\n",
		  "commit --id ID sends 'commit ID' and succeeds when that set is frozen");
	fake_case("frozen=5\nfrozen_id=" ID1 "\n",
		  ARGS("rollback", "--id", "0123456789ABCDEF", "vm-disk"), 0, "",
		  "", "2048 rollback " ID1 "\n",
		  "rollback --id sends the id in lowercase, however the user wrote it");
	fake_case("frozen=5\nfrozen_id=fedcba9876543210\n",
		  ARGS("commit", "vm-disk", "--id", ID1), 1, "",
		  "dirtyctl: vm-disk: the frozen set is not " ID1
		  " (another checkpoint took its place); nothing committed\n",
		  "2048 commit " ID1 "\n",
		  "commit --id of a set another checkpoint replaced (ESTALE) commits nothing and says why");
	fake_case("frozen=5\nfrozen_id=fedcba9876543210\n",
		  ARGS("rollback", "vm-disk", "--id", ID1), 1, "",
		  "dirtyctl: vm-disk: the frozen set is not " ID1
		  " (another checkpoint took its place); nothing rolled back\n",
		  "2048 rollback " ID1 "\n",
		  "rollback --id of a set another checkpoint replaced (ESTALE) rolls nothing back");
	fake_case("", ARGS("commit", "vm-disk", "--id", ID1), 1, "",
		  "dirtyctl: vm-disk: nothing is frozen\n", "2048 commit " ID1 "\n",
		  "commit --id when nothing is frozen (ENOENT) says nothing is frozen");
	fake_case("", ARGS("commit", "vm-disk", "--id", "0123"), 2, "",
		  "dirtyctl: invalid frozen set id '0123': must be 16 hex digits, as checkpoint "
		  "prints it\n" TRY_HELP, "",
		  "commit --id with something that is not an id is a usage error and sends nothing");
	fake_case("", ARGS("checkpoint", "vm-disk", "--id", ID1), 2, "",
		  "dirtyctl: option --id is not valid with checkpoint\n" TRY_HELP, "",
		  "--id is refused with commands other than commit and rollback");
}

static void test_fake_export(void)
{
	fake_case("status=8 126 6 2 default ok " UUID1 " 7 " ID1 " idle 0 4096\nfrozen=5-6\n",
		  ARGS("status", "vm-disk", "--export"), 0,
		  "DEVICE=vm-disk\nUUID=" UUID1 "\nSEQUENCE=7\nCLUSTER_SECTORS=8\nCLUSTERS=126\n"
		  "DIRTY_CLUSTERS=6\nFROZEN_CLUSTERS=2\nFROZEN_ID=" ID1 "\nMODE=default\n"
		  "HEALTH=ok\nSNAPSHOT=idle\nSTORE_USED_SECTORS=0\nSTORE_SECTORS=4096\n",
		  "", "", "status --export reads the nine to twelve fields of a newer target and sends nothing");
	fake_case("", ARGS("status", "vm-disk", "--export"), 0,
		  "DEVICE=vm-disk\nUUID=" UUID1 "\nSEQUENCE=7\nCLUSTER_SECTORS=8\nCLUSTERS=126\n"
		  "DIRTY_CLUSTERS=6\nFROZEN_CLUSTERS=\nFROZEN_ID=\nMODE=default\nHEALTH=ok\n",
		  "", "", "status --export of an eight-field target has empty FROZEN_ID and no snapshot keys");
	fake_case("", ARGS("status", "vm-disk", "--export", "--json"), 2, "",
		  "dirtyctl: --json conflicts with --export\n" TRY_HELP, "",
		  "status --export with --json is a usage error");
	fake_case("", ARGS("dump", "vm-disk", "--export"), 2, "",
		  "dirtyctl: option --export is not valid with dump\n" TRY_HELP, "",
		  "--export is refused with commands other than status");
}

/* The name of the fake device has bytes no JSON string can hold. */
static void test_fake_json_names(void)
{
	struct run r;

	begin();
	fake_device("name=bad\xff\x01name\"\n");
	r = run_dirtyctl("status", "bad\xff\x01name\"", "--json", NULL);
	CHECK_U64(r.status, 0);
	CHECK(r.out && strstr(r.out, "\"device\": \"bad\\ufffd\\u0001name\\\"\""));
	if (!r.out || json_valid(r.out) == 0)
		CHECK(!"valid JSON");
	run_free(&r);
	r = run_dirtyctl("list", "--json", NULL);
	CHECK_U64(r.status, 0);
	if (!r.out || json_valid(r.out) == 0)
		CHECK(!"valid JSON");
	CHECK(r.out && strstr(r.out, "\"name\": \"bad\xef\xbf\xbd\\u0001name\\\"\""));
	run_free(&r);
	r = run_dirtyctl("dump", "bad\xff\x01name\"", "--json", NULL);
	if (!r.out || json_valid(r.out) == 0)
		CHECK(!"valid JSON");
	run_free(&r);
	cli = dirtyctl;
	end("status, list and dump --json stay valid JSON for a name with invalid UTF-8 and controls");
}

static void test_fake_list(void)
{
	fake_case("others=lin0,lin1\nstatus=8 126 6 2 crash_safe ok " UUID1 " 7 " ID1 "\n"
		  "frozen=5-6\n",
		  ARGS("list"), 0,
		  "NAME     SIZE CLUSTER DIRTY FROZEN FROZEN-ID        MODE       HEALTH\n"
		  "vm-disk  1.5M      4K   24K     8K " ID1 " crash_safe ok\n",
		  "", "",
		  "list shows each dirtytrack device, not the others, with human sizes and the frozen id");
	fake_case("others=lin0\n", ARGS("list", "-n", "-r", "-b"), 0,
		  "vm-disk 1612288 4096 24576   default ok\n", "", "",
		  "list -n -r -b: no headings, raw, bytes; empty cells for nothing frozen");
	fake_case("", ARGS("list", "-o", "name,sequence,uuid,clusters"), 0,
		  "NAME    SEQUENCE UUID                                 CLUSTERS\n"
		  "vm-disk        7 " UUID1 "      126\n", "", "",
		  "list -o chooses the columns, in its order, case-insensitively");
	fake_case("", ARGS("list", "-o", "+UUID", "-n", "-r"), 0,
		  "vm-disk 1.5M 4K 24K   default ok " UUID1 "\n", "", "",
		  "list -o +COL adds to the default columns");
	fake_case("", ARGS("list", "-J", "-b", "-o", "NAME,SIZE,FROZEN,FROZEN-ID,SEQUENCE"), 0,
		  "{\n   \"dirtytrack\": [\n"
		  "      {\n         \"name\": \"vm-disk\",\n         \"size\": 1612288,\n"
		  "         \"frozen\": null,\n         \"frozen-id\": null,\n"
		  "         \"sequence\": 7\n      }\n   ]\n}\n", "", "",
		  "list -J -b gives numbers as JSON numbers and null for nothing frozen");
	fake_case("", ARGS("list", "-o", "NAME,BOGUS"), 2, "",
		  "dirtyctl: unknown column: BOGUS\n" TRY_HELP, "",
		  "list -o with an unknown column is a usage error");
	fake_case("name=\nothers=lin0\n", ARGS("list", "-n"), 0, "", "", "",
		  "list without dirtytrack devices prints nothing and succeeds");
	fake_case("lookup_errno=13\n", ARGS("list"), 1, "",
		  "dirtyctl: needs root (cannot open /dev/mapper/control)\n", "",
		  "list without privilege says it needs root");
	fake_case("status=8 126 6 - default ok\n", ARGS("list", "-n"), 1, "",
		  "dirtyctl: vm-disk: malformed status from target\n", "",
		  "list names a device whose status it cannot read and exits 1");
}

static void test_fake_lookup(void)
{
	fake_case("", ARGS("status", "nope"), 1, "", "dirtyctl: nope: no such device\n", "",
		  "a device that does not exist is named with 'no such device'");
	fake_case("type=linear\n", ARGS("checkpoint", "vm-disk"), 1, "",
		  "dirtyctl: vm-disk: not a dirtytrack device (target type linear)\n", "",
		  "a device of another target type is refused, naming the type");
	fake_case("lookup_errno=13\n", ARGS("status", "vm-disk"), 1, "",
		  "dirtyctl: needs root (cannot open /dev/mapper/control)\n", "",
		  "EACCES from device-mapper says dirtyctl needs root");
	fake_case("lookup_errno=19\n", ARGS("status", "vm-disk"), 1, "",
		  "dirtyctl: device-mapper is not available (cannot open /dev/mapper/control)\n", "",
		  "a kernel without device-mapper is named as such");
	fake_case("status=8 126 6 - default ok\n", ARGS("status", "vm-disk"), 1, "",
		  "dirtyctl: vm-disk: malformed status from target\n", "",
		  "a short status line from the target is a malformed status");
	fake_case("status=8 125 6 - default ok " UUID1 " 7\n", ARGS("dump", "vm-disk"), 1, "",
		  "dirtyctl: vm-disk: status of the target does not match its table\n", "",
		  "a cluster count that does not fit the table length is refused");
}

#define PIT_STATUS(snap) "status=8 126 6 3 default ok " UUID1 " 7 c0ffee0123456789 " snap "\n"

static void test_fake_view(void)
{
	fake_case(PIT_STATUS("active 16 512"), ARGS("view", "vm-disk"), 0,
		  "/dev/mapper/vm-disk-view\n", "",
		  "create vm-disk-view 0 1001 dirtytrack-view /dev/mapper/vm-disk ro\n",
		  "view creates vm-disk-view read-only over the whole target and prints its path");
	fake_case("", ARGS("view", "vm-disk"), 1, "",
		  "dirtyctl: vm-disk: no snapshot store in the table (feature snapshot_store)\n",
		  "", "view without a snapshot store says so and creates nothing");
	fake_case(PIT_STATUS("idle 0 512"), ARGS("view", "vm-disk"), 1, "",
		  "dirtyctl: vm-disk: no active snapshot (snapshot is idle); take a checkpoint first\n",
		  "", "view without an active snapshot says so and creates nothing");
	fake_case(PIT_STATUS("invalid 512 512"), ARGS("view", "vm-disk"), 1, "",
		  "dirtyctl: vm-disk: no active snapshot (snapshot is invalid); take a checkpoint first\n",
		  "", "view of an invalid snapshot is refused");
	fake_case(PIT_STATUS("active 16 512") "others=vm-disk-view\n", ARGS("view", "vm-disk"), 1,
		  "", "dirtyctl: vm-disk: view vm-disk-view exists; remove it first "
		  "(dirtyctl view vm-disk --remove)\n", "",
		  "view refuses to replace an existing view");
	fake_case(PIT_STATUS("active 16 512") "others=vm-disk-view\n",
		  ARGS("view", "vm-disk", "--remove"), 0, "", "", "remove vm-disk-view\n",
		  "view --remove removes the view");
	fake_case(PIT_STATUS("active 16 512"), ARGS("view", "vm-disk", "--remove"), 1, "",
		  "dirtyctl: vm-disk: no view device vm-disk-view\n", "",
		  "view --remove without a view says so");
	fake_case(PIT_STATUS("active 16 512") "others=vm-disk-view\ncreate_errno=16\n",
		  ARGS("view", "vm-disk", "--remove"), 1, "",
		  "dirtyctl: vm-disk: view vm-disk-view is in use; close it first\n",
		  "remove vm-disk-view\n", "view --remove of a busy view says it is in use");
	fake_case("", ARGS("view", "nope"), 1, "", "dirtyctl: nope: no such device\n", "",
		  "view of a missing device names it");
	fake_case("", ARGS("view", "vm-disk", "extra"), 2, "",
		  "dirtyctl: view: too many arguments: view DEV\nTry 'dirtyctl --help' for more information.\n", "",
		  "view takes one device");
	fake_case("", ARGS("mark", "vm-disk", "--remove", "1", "2"), 2, "",
		  "dirtyctl: option --remove is not valid with mark\n"
		  "Try 'dirtyctl --help' for more information.\n", "",
		  "--remove is only for view");
}

static void test_fake_release(void)
{
	fake_case(PIT_STATUS("active 16 512"), ARGS("release", "vm-disk", "2056", "16"), 0, "",
		  "", "2048 release 8 16\n",
		  "release converts device sectors to target-relative sectors");
	fake_case("", ARGS("release", "vm-disk", "3048", "2"), 1, "",
		  "dirtyctl: vm-disk: extent 3048+2 lies outside the dirtytrack target "
		  "(sectors 2048 to 3048)\n", "",
		  "release past the end is refused before anything is sent");
	fake_case("fail=release:2\n", ARGS("release", "vm-disk", "2048", "8"), 1, "",
		  "dirtyctl: vm-disk: no active snapshot (no checkpoint, or no snapshot store)\n",
		  "2048 release 0 8\n", "release without an active snapshot (ENOENT) says so");
	fake_case("", ARGS("release", "vm-disk", "2048", "0"), 2, "",
		  "dirtyctl: invalid NR_SECTORS '0': must be greater than 0\nTry 'dirtyctl --help' for more information.\n", "",
		  "release of 0 sectors is a usage error");
	fake_case("", ARGS("release", "vm-disk", "x", "8"), 2, "",
		  "dirtyctl: invalid START_SECTOR 'x': is not a number\nTry 'dirtyctl --help' for more information.\n", "",
		  "release with a bad START is a usage error");
}

static void test_fake_freeze(void)
{
	fake_case("", ARGS("checkpoint", "vm-disk", "--freeze"), 0, "c0ffee0123456789\n", "",
		  "2048 checkpoint\n",
		  "checkpoint --freeze without a mounted file system is a plain checkpoint");
	fake_case("fail=checkpoint:17\n", ARGS("checkpoint", "vm-disk", "--freeze"), 1, "",
		  "dirtyctl: vm-disk: a checkpoint is already frozen; commit or roll it back first\n",
		  "2048 checkpoint\n", "checkpoint --freeze reports a failed checkpoint");
	fake_case("", ARGS("commit", "vm-disk", "--freeze"), 2, "",
		  "dirtyctl: option --freeze is not valid with commit\n"
		  "Try 'dirtyctl --help' for more information.\n", "",
		  "--freeze is only for checkpoint");
}

static void test_fake_mark(void)
{
	fake_case("", ARGS("mark", "vm-disk", "2056", "16"), 0, "", "", "2048 mark 8 16\n",
		  "mark converts device sectors to target-relative sectors");
	fake_case("", ARGS("mark", "vm-disk", "1M", "4K"), 0, "", "", "2048 mark 0 8\n",
		  "mark takes byte suffixes: 1M 4K is sector 2048, 8 sectors");
	fake_case("", ARGS("mark", "vm-disk", "3048", "1"), 0, "", "", "2048 mark 1000 1\n",
		  "mark accepts the very last sector of the target");
	fake_case("", ARGS("mark", "vm-disk", "100", "8"), 1, "",
		  "dirtyctl: vm-disk: extent 100+8 lies outside the dirtytrack target "
		  "(sectors 2048 to 3048)\n", "",
		  "mark before the target is refused before anything is sent");
	fake_case("", ARGS("mark", "vm-disk", "3048", "2"), 1, "",
		  "dirtyctl: vm-disk: extent 3048+2 lies outside the dirtytrack target "
		  "(sectors 2048 to 3048)\n", "",
		  "mark past the end of the target is refused before anything is sent");
	fake_case("", ARGS("mark", "vm-disk", "18446744073709551615", "2"), 1, "",
		  "dirtyctl: vm-disk: extent 18446744073709551615+2 lies outside the dirtytrack "
		  "target (sectors 2048 to 3048)\n", "",
		  "mark with a start near 2^64 does not overflow past the check");
	fake_case("fail=mark:34\n", ARGS("mark", "vm-disk", "2048", "8"), 1, "",
		  "dirtyctl: vm-disk: extent beyond the end of the device\n", "2048 mark 0 8\n",
		  "ERANGE from the target on mark says the extent is beyond the end");
}

static void test_fake_dump(void)
{
	fake_case("", ARGS("dump", "vm-disk"), 0, "2048 24\n2552 16\n3048 1\n", "", NULL,
		  "dump reads the live set page by page and prints device-sector ranges");
	fake_case("", ARGS("dump", "vm-disk", "--format", "bytes"), 0,
		  "1048576 12288\n1306624 8192\n1560576 512\n", "", NULL,
		  "dump --format bytes prints byte extents");
	fake_case("frozen=5-7\nstatus=8 126 6 3 default ok " UUID1 " 7\n",
		  ARGS("dump", "vm-disk", "--frozen", "-J"), 0,
		  "{\"device\": \"vm-disk\", \"cluster_sectors\": 8, \"extents\": [\n"
		  "  {\"offset\": 1069056, \"length\": 12288}\n]}\n", "",
		  "2048 bitmap frozen 0\n2048 bitmap frozen 1\n",
		  "dump --frozen -J reads the frozen set and prints JSON");
	fake_case("", ARGS("dump", "vm-disk", "--frozen"), 1, "",
		  "dirtyctl: vm-disk: nothing is frozen\n", "",
		  "dump --frozen with nothing frozen fails without reading");
	fake_case("epoch_bump_at=2\n", ARGS("dump", "vm-disk"), 0,
		  "2048 24\n2552 16\n3048 1\n", "",
		  "2048 bitmap live 0\n2048 bitmap live 1\n2048 bitmap live 0\n2048 bitmap live 1\n",
		  "dump restarts once when the epoch changes between pages");
	fake_case("epoch_bump_at=2,4\n", ARGS("dump", "vm-disk"), 1, "",
		  "dirtyctl: vm-disk: bitmap changed during dump, try again\n", NULL,
		  "dump fails when the epoch changes a second time");
	fake_case("fail=bitmap:22\n", ARGS("dump", "vm-disk"), 1, "",
		  "dirtyctl: vm-disk: the target rejected the message (invalid argument)\n",
		  "2048 bitmap live 0\n",
		  "a target that does not know the bitmap message is reported as such");
}

static void test_fake_dump_pages(void)
{
	char *messages;
	struct run r;

	begin();
	fake_device("");
	r = run_dirtyctl("dump", "vm-disk", NULL);
	messages = fake_messages();
	CHECK_U64(r.status, 0);
	/* 110-byte replies hold one group: two pages for two groups. */
	CHECK_STR(messages, "2048 bitmap live 0\n2048 bitmap live 1\n");
	run_free(&r);
	free(messages);
	cli = dirtyctl;
	end("dump continues each page at first_group + nr_groups");
}

static void test_fake_dump_output(void)
{
	char path[128], *text;
	struct run r;

	begin();
	fake_device("frozen=0-125\nstatus=8 126 6 126 default ok " UUID1 " 7\n");
	snprintf(path, sizeof(path), "%s/changed.map", tmpdir);
	r = run_dirtyctl("dump", "vm-disk", "--frozen", "--format", "ddrescue", "-o", path, NULL);
	CHECK_U64(r.status, 0);
	CHECK_STR(r.out, "");
	text = slurp(path);
	CHECK_STR(text,
		  "# Mapfile. Created by dirtyctl from dm-dirtytrack device vm-disk\n"
		  "# frozen set, uuid " UUID1 ", sequence 7, cluster_sectors 8\n"
		  "# current_pos  current_status  current_pass\n"
		  "0x00000000     +               1\n"
		  "#      pos        size  status\n"
		  "0x00000000  0x00100000  ?\n"
		  "0x00100000  0x0007D200  +\n"
		  "0x0017D200  0x0000C800  ?\n");
	free(text);
	run_free(&r);

	fake_device("fail=bitmap:5\n");
	snprintf(path, sizeof(path), "%s/never.map", tmpdir);
	r = run_dirtyctl("dump", "vm-disk", "-o", path, NULL);
	CHECK_U64(r.status, 1);
	CHECK_STR(r.err, "dirtyctl: vm-disk: Input/output error\n");
	CHECK(access(path, F_OK) != 0);
	CHECK_U64(count_files("never.map"), 0);
	run_free(&r);

	snprintf(path, sizeof(path), "%s/no-such-dir/x", tmpdir);
	fake_device("");
	r = run_dirtyctl("dump", "vm-disk", "-o", path, NULL);
	CHECK_U64(r.status, 1);
	CHECK(r.err && strstr(r.err, "no-such-dir/x: No such file or directory\n"));
	run_free(&r);
	cli = dirtyctl;
	end("dump -o writes a ddrescue mapfile of the frozen set, and nothing when it fails");
}

#define SPACES10 "          "
#define SPACES60 SPACES10 SPACES10 SPACES10 SPACES10 SPACES10 SPACES10

/*
 * An output directory the user may not write to gives EACCES, which must
 * be named as the file's error, not as "needs root" for device-mapper.
 */
static void test_fake_dump_output_eacces(void)
{
	const char *name = "dump -o into a directory without write permission names the file";
	char dir[128], path[160], err[128], want[256], *text;
	int status = -1;
	pid_t pid;

	if (geteuid() != 0) {
		skip("needs root to switch to an unprivileged user", "%s", name);
		return;
	}
	begin();
	fake_device("");
	snprintf(dir, sizeof(dir), "%s/locked", tmpdir);
	snprintf(path, sizeof(path), "%s/x", dir);
	snprintf(err, sizeof(err), "%s/stderr", tmpdir);
	CHECK(mkdir(dir, 0755) == 0);
	CHECK(chmod(tmpdir, 0755) == 0);
	CHECK(chmod(fake_state, 0644) == 0);
	CHECK(chmod(fake_log, 0666) == 0);
	fflush(tap);
	pid = fork();
	if (pid == 0) {
		int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (e < 0 || dup2(e, 2) < 0 || setgid(65534) || setuid(65534))
			_exit(127);
		execl(dirtyctl_fake, dirtyctl_fake, "dump", "vm-disk", "-o", path, (char *)NULL);
		_exit(127);
	}
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1);
	text = slurp(err);
	snprintf(want, sizeof(want), "dirtyctl: %s: Permission denied\n", path);
	CHECK_STR(text, want);
	free(text);
	chmod(tmpdir, 0700);
	cli = dirtyctl;
	end("%s", name);
}

static void test_fake_status(void)
{
	char *messages;
	struct run r;

	begin();
	fake_device("");
	r = run_dirtyctl("status", "vm-disk", NULL);
	CHECK_U64(r.status, 0);
	CHECK(r.out && !strncmp(r.out,
		"vm-disk: 24 KiB of 500.5 KiB changed (6 of 126 clusters of 4 KiB), frozen: none, "
		"mode default, health ok, sequence 7\nuuid: " UUID1 "\n"
		"map: 126 cells of 1 cluster; ", 130));
	/* 126 cells: a line of 64, then one of 62 that ends where the device does. */
	CHECK(r.out && strstr(r.out, "\n  |###" SPACES60 "#|\n"
			      "  |#" SPACES60 "#|\n"));
	messages = fake_messages();
	CHECK(messages && !strncmp(messages, "2048 bitmap live 0\n", 19));
	free(messages);
	CHECK_STR(r.err, "");
	run_free(&r);

	fake_device("suspended=1\nfail=bitmap:16\n");
	r = run_dirtyctl("status", "vm-disk", NULL);
	CHECK_U64(r.status, 0);
	CHECK(r.out && strstr(r.out, ", sequence 7, suspended\n"));
	CHECK(r.out && strstr(r.out, "\nmap: unavailable (device is suspended; resume it first)\n"));
	run_free(&r);

	fake_device("");
	r = run_dirtyctl("status", "vm-disk", "--json", NULL);
	CHECK_U64(r.status, 0);
	CHECK(r.out && strstr(r.out, "\"start_sector\": 2048,\n"));
	CHECK(r.out && strstr(r.out, "\"size_bytes\": 512512,\n"));
	messages = fake_messages();
	CHECK_STR(messages, "");			/* JSON needs no bitmap */
	free(messages);
	run_free(&r);
	cli = dirtyctl;
	end("status shows the line, uuid and map from the live set, also when suspended");
}

/* ------------------------------------------------------------------ */
/* The EXAMPLES of dirtyctl(8), run as printed (tests/man-recipes.sh)  */
/* ------------------------------------------------------------------ */

/* Runs the shell test @cmd: 0 passes, 77 skips, anything else fails. */
static void shell_test(const char *cmd, const char *name)
{
	char line[512];
	int status;

	snprintf(line, sizeof(line), "%s 2>%s/shell-test.err", cmd, tmpdir);
	fflush(tap);
	status = system(line);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
		skip("a tool it needs is missing", "%s", name);
		return;
	}
	begin();
	if (!CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
		char path[128], *err;

		snprintf(path, sizeof(path), "%s/shell-test.err", tmpdir);
		err = slurp(path);
		tprintf("#     %s", err ? err : "(no message)\n");
		free(err);
	}
	end("%s", name);
}

static void man_recipe(const char *recipe, const char *scenario, const char *name)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "sh tests/man-recipes.sh dirtyctl.8 %s %s", recipe, scenario);
	shell_test(cmd, name);
}

static void test_bash_completion(void)
{
	if (!command_exists("bash")) {
		skip("bash not found", "bash completion");
		return;
	}
	shell_test("bash tests/completion.sh dirtyctl.bash-completion",
		   "bash completion offers commands, each command's options, list columns "
		   "and dirtytrack devices");
}

static void test_man_recipes(void)
{
	man_recipe("dd", "copies", "the man page's dd recipe copies the frozen extents and "
		   "commits the id checkpoint printed");
	man_recipe("dd", "copy-fails", "the man page's dd recipe rolls back and fails when "
		   "one dd fails");
	man_recipe("dd", "dump-fails", "the man page's dd recipe copies nothing and rolls back "
		   "when dump fails, whatever an old extents file says");
	man_recipe("dd", "two-runs", "the man page's dd recipe copies each run's extents");
	man_recipe("ddrescue", "copies", "the man page's ddrescue recipe copies the frozen "
		   "extents and commits the id");
	man_recipe("ddrescue", "copy-fails", "the man page's ddrescue recipe rolls back when "
		   "ddrescue could not read an extent, though ddrescue exits 0");
	man_recipe("ddrescue", "dump-fails", "the man page's ddrescue recipe rolls back when "
		   "dump fails");
	man_recipe("ddrescue", "two-runs", "the man page's ddrescue recipe copies on the "
		   "second night what the first night copied too (a new rescue mapfile each run)");
}

/* ------------------------------------------------------------------ */
/* dt-copy-extents: the extent list                                     */
/* ------------------------------------------------------------------ */

#define L(s) s, sizeof(s) - 1		/* a line and its length, NULs kept */

static const struct extent_case {
	const char *line;
	size_t len;
	int ret;
	uint64_t offset, length;
	const char *why;
} extent_cases[] = {
	{ L("0 4096"), 1, 0, 4096, NULL },
	{ L("1048576 65536"), 1, 1048576, 65536, NULL },
	{ L("0 1"), 1, 0, 1, NULL },
	{ L("007 0512"), 1, 7, 512, NULL },
	/* Ends exactly at the largest file offset. */
	{ L("9223372036854771711 4096"), 1, 9223372036854771711ULL, 4096, NULL },
	{ L("0 9223372036854775807"), 1, 0, 9223372036854775807ULL, NULL },
	{ L("00000000000000000000000000000000000000000000000000000000000000000001 2"),
	  1, 1, 2, NULL },
	{ L(""), 0, 0, 0, NULL },
	{ L("#"), 0, 0, 0, NULL },
	{ L("# offset length"), 0, 0, 0, NULL },
	{ L("0"), -1, 0, 0, "expected \"<offset> <length>\"" },
	{ L("garbage"), -1, 0, 0, "expected \"<offset> <length>\"" },
	{ L("0\t4096"), -1, 0, 0, "expected \"<offset> <length>\"" },
	{ L(" "), -1, 0, 0, "missing offset" },
	{ L(" 0 4096"), -1, 0, 0, "expected \"<offset> <length>\": more than one space" },
	{ L(" 4096"), -1, 0, 0, "missing offset" },
	{ L("0 "), -1, 0, 0, "missing length" },
	{ L("0  4096"), -1, 0, 0, "expected \"<offset> <length>\": more than one space" },
	{ L("0 4096 "), -1, 0, 0, "expected \"<offset> <length>\": more than one space" },
	{ L("0 4096 8192"), -1, 0, 0, "expected \"<offset> <length>\": more than one space" },
	{ L("0 4096x"), -1, 0, 0, "length is not a decimal number" },
	{ L("0 4096\t"), -1, 0, 0, "length is not a decimal number" },
	{ L("0 4k"), -1, 0, 0, "length is not a decimal number" },
	{ L("0 -4096"), -1, 0, 0, "length is not a decimal number" },
	{ L("x 4096"), -1, 0, 0, "offset is not a decimal number" },
	{ L("-1 4096"), -1, 0, 0, "offset is not a decimal number" },
	{ L("+0 4096"), -1, 0, 0, "offset is not a decimal number" },
	{ L("0x10 4096"), -1, 0, 0, "offset is not a decimal number" },
	{ L("0 0"), -1, 0, 0, "zero length" },
	{ L("4096 000"), -1, 0, 0, "zero length" },
	{ L("18446744073709551616 1"), -1, 0, 0, "offset too large" },
	{ L("0 18446744073709551616"), -1, 0, 0, "length too large" },
	{ L("0 99999999999999999999999999999999999999"), -1, 0, 0, "length too large" },
	{ L("18446744073709551615 1"), -1, 0, 0, "extent ends beyond the largest file offset" },
	{ L("9223372036854771712 4096"), -1, 0, 0,
	  "extent ends beyond the largest file offset" },
	{ L("0 9223372036854775808"), -1, 0, 0, "extent ends beyond the largest file offset" },
	{ L("0 4096\r"), -1, 0, 0, "carriage return at the end of the line (DOS line ending?)" },
	{ L("\r"), -1, 0, 0, "carriage return at the end of the line (DOS line ending?)" },
	{ L("0 40\0" "96"), -1, 0, 0, "NUL byte in the line" },
	{ L("0 4096\0"), -1, 0, 0, "NUL byte in the line" },
	{ L("\0"), -1, 0, 0, "NUL byte in the line" },
};

static void test_extent_lines(void)
{
	unsigned int i;

	begin();
	for (i = 0; i < sizeof(extent_cases) / sizeof(extent_cases[0]); i++) {
		const struct extent_case *t = &extent_cases[i];
		uint64_t off = 12345, len = 6789;
		const char *why = NULL;
		int r = dt_extent_parse_line(t->line, t->len, &off, &len, &why);

		if (!CHECK(r == t->ret)) {
			tprintf("#     line %u '%s': got %d, want %d\n", i, t->line, r, t->ret);
			continue;
		}
		if (r > 0) {
			CHECK_U64(off, t->offset);
			CHECK_U64(len, t->length);
		} else if (r < 0) {
			CHECK_STR(why, t->why);
		}
	}
	end("extent lists: valid lines, comments, and each malformed line with its reason");
}

static void test_extent_unsorted(void)
{
	static const char *const lines[] = { "8192 4096", "0 8192", "4096 8192", "0 8192" };
	static const uint64_t want[][2] = { { 8192, 4096 }, { 0, 8192 }, { 4096, 8192 },
					    { 0, 8192 } };
	uint64_t off, len;
	const char *why = NULL;
	unsigned int i;

	begin();
	for (i = 0; i < 4; i++) {
		CHECK(dt_extent_parse_line(lines[i], strlen(lines[i]), &off, &len, &why) == 1);
		CHECK_U64(off, want[i][0]);
		CHECK_U64(len, want[i][1]);
	}
	end("unsorted, overlapping and repeated extents are each accepted as listed");
}

/*
 * The byte extents of @words, computed here from the bits: runs of dirty
 * clusters, in device bytes, the tail cluster clipped to the target.
 */
static size_t bitmap_byte_extents(const uint64_t *w, const struct dt_geometry *g,
				  uint64_t (*out)[2], size_t max)
{
	uint64_t c = 0, first, end;
	size_t n = 0;

	while (c < g->clusters) {
		if (!test_bit(w, c)) {
			c++;
			continue;
		}
		first = c;
		while (c < g->clusters && test_bit(w, c))
			c++;
		end = c * g->cluster_sectors;
		if (end > g->length)
			end = g->length;
		if (n == max)
			abort();
		out[n][0] = (g->start + first * g->cluster_sectors) * 512;
		out[n][1] = (end - first * g->cluster_sectors) * 512;
		n++;
	}
	return n;
}

/* Parses dump's bytes output @s; 0 when it lists exactly @want[0..@n). */
static int bytes_dump_matches(char *s, uint64_t (*want)[2], size_t n)
{
	char *line = s, *nl;
	size_t i = 0;
	uint64_t off, len;
	const char *why;

	for (; *line; line = nl + 1) {
		nl = strchr(line, '\n');
		if (!nl || i == n ||
		    dt_extent_parse_line(line, (size_t)(nl - line), &off, &len, &why) != 1 ||
		    off != want[i][0] || len != want[i][1]) {
			tprintf("#     extent %zu differs: '%.*s'\n", i,
				nl ? (int)(nl - line) : 40, line);
			return -1;
		}
		i++;
	}
	return i == n ? 0 : -1;
}

static void test_extent_roundtrip(void)
{
	static const struct { uint64_t start, length, extra; uint32_t cs; } geos[] = {
		{ 0, 8 * 1000, 0, 8 },
		{ 0, 8 * 1000 - 3, 0, 8 },		/* a partial tail cluster */
		{ 2048, 128 * 77 - 1, 512, 128 },	/* not at sector 0, a device tail */
		{ 63, 1, 0, 8 },			/* one sector */
		{ 0, 65536 * 3 + 7, 9, 65536 },
	};
	static const unsigned int densities[] = { 0, 1, 30, 70, 100 };
	unsigned int i, k, round;
	int ok = 1;

	begin();
	for (i = 0; i < sizeof(geos) / sizeof(geos[0]); i++) {
		struct dt_geometry g = {
			.start = geos[i].start, .length = geos[i].length,
			.dev_sectors = geos[i].start + geos[i].length + geos[i].extra,
			.cluster_sectors = geos[i].cs,
			.clusters = (geos[i].length + geos[i].cs - 1) / geos[i].cs,
		};
		uint64_t *w = new_bitmap(g.clusters);
		uint64_t (*want)[2] = calloc(g.clusters, sizeof(*want));

		if (!want)
			abort();
		CHECK(!dt_geometry_check(&g));
		for (k = 0; k < sizeof(densities) / sizeof(densities[0]); k++) {
			for (round = 0; round < 4; round++) {
				size_t n;
				char *s;

				random_bitmap(w, g.clusters, densities[k]);
				if (round == 0)		/* the tail cluster always */
					set_bit(w, g.clusters - 1);
				n = bitmap_byte_extents(w, &g, want, g.clusters);
				s = dump_string(w, &g, DT_FORMAT_BYTES, "d", NULL);
				if (bytes_dump_matches(s, want, n)) {
					tprintf("#     geometry %u, density %u%%\n", i,
						densities[k]);
					ok = 0;
				}
				if (round == 0)
					CHECK_U64(want[n - 1][0] + want[n - 1][1],
						  (g.start + g.length) * 512);
				free(s);
			}
		}
		free(want);
		free(w);
	}
	CHECK(ok);
	end("random bitmaps through dump's bytes format parse back to the same byte "
	    "extents, the tail cluster clipped to the target's end");
}

static const char *copier;		/* $DT_COPY_EXTENTS */

/* Runs dt-copy-extents SRC DST with @input on its standard input. */
static struct run run_copier(const char *input, size_t len, const char *src, const char *dst)
{
	char in[128], out[128], err[128];
	struct run r = { .status = -1 };
	int status;
	pid_t pid;

	snprintf(in, sizeof(in), "%s/extents", tmpdir);
	snprintf(out, sizeof(out), "%s/stdout", tmpdir);
	snprintf(err, sizeof(err), "%s/stderr", tmpdir);
	if (write_file(in, input, len))
		abort();
	fflush(tap);
	pid = fork();
	if (pid == 0) {
		int i = open(in, O_RDONLY);
		int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (i < 0 || o < 0 || e < 0 || dup2(i, 0) < 0 || dup2(o, 1) < 0 ||
		    dup2(e, 2) < 0)
			_exit(127);
		execl(copier, copier, src, dst, (char *)NULL);
		_exit(127);
	}
	if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status))
		r.status = WEXITSTATUS(status);
	r.out = slurp(out);
	r.err = slurp(err);
	return r;
}

/* A 64 KiB source of random bytes in tmpdir; its path in @src. */
static unsigned char *make_source(char *src, size_t size)
{
	static unsigned char data[65536];
	size_t i;

	snprintf(src, size, "%s/copy-src", tmpdir);
	for (i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)rng();
	if (write_file(src, data, sizeof(data)))
		abort();
	return data;
}

static void test_copy_errors(void)
{
	static const struct {
		const char *input;
		size_t len;
		const char *err;
	} cases[] = {
		{ L("garbage\n"), "line 1: expected \"<offset> <length>\"" },
		{ L("0 4096\n4096 4096 junk\n"),
		  "line 2: expected \"<offset> <length>\": more than one space" },
		{ L("0 4096\r\n"),
		  "line 1: carriage return at the end of the line (DOS line ending?)" },
		{ L("# x\n\n0 0\n"), "line 3: zero length" },
		{ L("0 99999999999999999999"), "line 1: length too large" },
		{ L("4096 4096\n18446744073709551615 1\n"),
		  "line 2: extent ends beyond the largest file offset" },
		{ L("-4096 4096\n"), "line 1: offset is not a decimal number" },
		{ L("0 4096\0garbage\n"), "line 1: NUL byte in the line" },
		{ L(" \n"), "line 1: missing offset" },
	};
	char src[128], dst[128], want[256];
	unsigned int i;

	begin();
	make_source(src, sizeof(src));
	snprintf(dst, sizeof(dst), "%s/copy-dst", tmpdir);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct run r = run_copier(cases[i].input, cases[i].len, src, dst);

		snprintf(want, sizeof(want), "dt-copy-extents: standard input, %s\n",
			 cases[i].err);
		CHECK_U64(r.status, 1);
		CHECK_STR(r.err, want);
		CHECK_STR(r.out, "");
		run_free(&r);
	}
	end("dt-copy-extents fails with one line naming the input line and the cause for "
	    "each malformed extent list");
}

static void test_copy_lists(void)
{
	char src[128], dst[128];
	unsigned char *data = make_source(src, sizeof(src));
	struct run r;
	char *got;

	begin();
	snprintf(dst, sizeof(dst), "%s/copy-dst", tmpdir);
	unlink(dst);
	r = run_copier(L(""), src, dst);
	CHECK_U64(r.status, 0);
	CHECK_STR(r.out, "0 0\n");
	CHECK_STR(r.err, "");
	run_free(&r);
	/* Unsorted, overlapping, repeated, a comment, no newline at the end. */
	r = run_copier(L("8192 4096\n# the first 16 KiB\n0 8192\n\n4096 8192\n0 8192"),
		       src, dst);
	CHECK_U64(r.status, 0);
	CHECK_STR(r.out, "4 28672\n");
	CHECK_STR(r.err, "");
	run_free(&r);
	got = slurp(dst);
	CHECK(got && !memcmp(got, data, 12288));
	free(got);
	end("dt-copy-extents copies an empty list, and unsorted, overlapping and repeated "
	    "extents as listed");
}

#undef L

/* ------------------------------------------------------------------ */

static const struct {
	void (*fn)(void);
	const char *tag;		/* for the filter argument */
} tests[] = {
	{ test_status_good, "status" },
	{ test_status_frozen, "status" },
	{ test_status_short, "status" },
	{ test_status_garbage, "status" },
	{ test_status_counts, "status" },
	{ test_status_cluster_size, "status" },
	{ test_status_extra_fields, "status" },
	{ test_status_frozen_id, "status" },
	{ test_status_frozen_id_bad, "status" },
	{ test_status_snapshot, "status" },
	{ test_frozen_id_text, "status" },
	{ test_geometry, "status" },
	{ test_reply_groups, "reply" },
	{ test_reply_sparse, "reply" },
	{ test_reply_zero_run, "reply" },
	{ test_reply_mixed, "reply" },
	{ test_reply_end, "reply" },
	{ test_reply_malformed, "reply" },
	{ test_read_pages, "read" },
	{ test_read_restart, "read" },
	{ test_read_changed_twice, "read" },
	{ test_read_ends_early, "read" },
	{ test_read_errors, "read" },
	{ test_encoder_matches_kernel_shape, "reply" },
	{ test_extents_clean, "extent" },
	{ test_extents_all_dirty, "extent" },
	{ test_extents_coalesce, "extent" },
	{ test_extents_clip, "extent" },
	{ test_extents_start, "extent" },
	{ test_extents_random, "extent" },
	{ test_extent_lines, "copy" },
	{ test_extent_unsorted, "copy" },
	{ test_extent_roundtrip, "copy" },
	{ test_copy_errors, "copier" },
	{ test_copy_lists, "copier" },
	{ test_count_bits, "map" },
	{ test_dirty_map, "map" },
	{ test_formats, "format" },
	{ test_json_empty, "format" },
	{ test_ddrescue_clean, "format" },
	{ test_ddrescue_edges, "format" },
	{ test_ddrescuelog, "format" },
	{ test_format_names, "format" },
	{ test_writer_fd, "output" },
	{ test_output_atomic, "output" },
	{ test_output_failure, "output" },
	{ test_output_signal, "output" },
	{ test_output_fifo, "output" },
	{ test_status_human, "status" },
	{ test_status_human_bytes, "status" },
	{ test_status_json, "status" },
	{ test_status_json_frozen, "status" },
	{ test_status_export, "status" },
	{ test_status_human_frozen, "status" },
	{ test_status_small_map, "status" },
	{ test_parse_sectors_plain, "number" },
	{ test_parse_sectors_suffix, "number" },
	{ test_parse_sectors_bad, "number" },
	{ test_u64_to_dec, "number" },
	{ test_human, "number" },
	{ test_uuid_json, "text" },
	{ test_json_utf8, "text" },
	{ test_utf8_sanitize, "text" },
	{ test_shell_quote, "text" },
	{ test_message_errors, "text" },
	{ test_crc32c, "inspect" },
	{ test_inspect_sound, "inspect" },
	{ test_inspect_unformatted, "inspect" },
	{ test_inspect_corruptions, "inspect" },
	{ test_inspect_frozen_without_id, "inspect" },
	{ test_inspect_stray, "inspect" },
	{ test_inspect_short, "inspect" },
	{ test_cli_version, "cli" },
	{ test_cli_usage, "cli" },
	{ test_cli_no_device, "cli" },
	{ test_cli_inspect, "cli" },
	{ test_cli_inspect_json, "cli" },
	{ test_cli_inspect_errors, "cli" },
	{ test_fake_state_changes, "fake" },
	{ test_fake_lookup, "fake" },
	{ test_fake_frozen_id, "fake" },
	{ test_fake_export, "fake" },
	{ test_fake_json_names, "fake" },
	{ test_fake_list, "fake" },
	{ test_fake_mark, "fake" },
	{ test_fake_view, "fake" },
	{ test_fake_release, "fake" },
	{ test_fake_freeze, "fake" },
	{ test_fake_dump, "fake" },
	{ test_fake_dump_pages, "fake" },
	{ test_fake_dump_output, "fake" },
	{ test_fake_dump_output_eacces, "fake" },
	{ test_fake_status, "fake" },
	{ test_man_recipes, "recipe" },
	{ test_bash_completion, "recipe" },
};

static void remove_tmpdir(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
}

int main(int argc, char **argv)
{
	unsigned int i;

	char *tap_text = NULL;
	size_t tap_len = 0;

	tap = open_memstream(&tap_text, &tap_len);
	if (!tap)
		return 1;
	filter = argc > 1 ? argv[1] : NULL;
	dirtyctl = getenv("DIRTYCTL");
	dirtyctl_fake = getenv("DIRTYCTL_FAKE");
	copier = getenv("DT_COPY_EXTENTS");
	cli = dirtyctl;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/dirtyctl-tests.XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	for (i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		if (filter && strcmp(tests[i].tag, filter))
			continue;
		if (!strcmp(tests[i].tag, "cli") && !dirtyctl) {
			skip("DIRTYCTL is not set", "command line test %u", i);
			continue;
		}
		if (!strcmp(tests[i].tag, "copier") && !copier) {
			skip("DT_COPY_EXTENTS is not set", "dt-copy-extents test %u", i);
			continue;
		}
		if (!strcmp(tests[i].tag, "fake") && !dirtyctl_fake) {
			skip("DIRTYCTL_FAKE is not set", "simulated target test %u", i);
			continue;
		}
		tests[i].fn();
	}
	remove_tmpdir();
	fclose(tap);
	printf("1..%u\n%s", tests_run, tap_text);
	free(tap_text);
	if (tests_failed)
		printf("# %u of %u tests failed\n", tests_failed, tests_run);
	return tests_failed ? 1 : 0;
}
