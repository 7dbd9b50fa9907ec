// SPDX-License-Identifier: GPL-2.0-only OR MIT
/*
 * A stand-in for dm.c: the dm.h interface answered by a simulated
 * dirtytrack target, so that dirtyctl.c can be tested end to end on a
 * host without device-mapper.  Linked into tests/dirtyctl-fake only.
 *
 * $DIRTYCTL_FAKE_STATE names a file of key=value lines describing the one
 * device that exists:
 *
 *   name=vm-disk          dm name (also found as /dev/mapper/NAME)
 *   type=dirtytrack       target type of the table
 *   start= length=        the target, sectors
 *   dev_sectors=          the whole device
 *   suspended=0|1
 *   status=...            the status params the target prints
 *   live=0-2,63,125       dirty clusters of the live set
 *   frozen=5-7            frozen set; absent: none
 *   reply_max=200         reply buffer, bytes (small: many pages)
 *   epoch_bump_at=3,5     change the epoch at the 3rd and 5th bitmap message
 *   fail=checkpoint:17    fail a message verb with an errno
 *   lookup_errno=13       fail every lookup with an errno
 *   frozen_id=ID          id of the frozen set: commit/rollback ID fail
 *                         with ESTALE for another ID, ENOENT without frozen=
 *   checkpoint_reply=ID   what checkpoint replies (default
 *                         c0ffee0123456789; "none": nothing, as old targets)
 *   others=a,b            more dm devices, of target type linear, that
 *                         DM_DEVICE_LIST lists before the fake one
 *   create_errno=16       fail dt_create_readonly/dt_remove_device
 *   devt=7:3              the device's dev_t (default 252:250, which nothing
 *                         is mounted from): checkpoint --freeze freezes a
 *                         file system mounted from this one
 *
 * With $DIRTYCTL_FAKE_FREEZE_PROBE naming a mount point, each checkpoint
 * message logs "probe: frozen" when that file system is frozen (FIFREEZE
 * fails with EBUSY), else "probe: not frozen" (and thaws it again).  A device
 * created with dt_create_readonly exists as one of the others= until
 * removed; creates and removes are logged as "create NAME 0 LEN TYPE
 * PARAMS ro" and "remove NAME".
 *
 * Every message is appended to $DIRTYCTL_FAKE_LOG as "<sector> <msg>".
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/fs.h>

#include "../dm.h"
#include "../parse.h"
#include "encode.h"

struct fake {
	char name[DT_DM_NAME_MAX];
	char type[DT_DM_TYPE_MAX];
	uint64_t start, length, dev_sectors;
	int suspended;
	char status[256];
	char live[4096], frozen[4096];
	int has_frozen;
	size_t reply_max;
	unsigned int epoch_bump_at[4];
	char fail_verb[32];
	int fail_errno;
	int lookup_errno;
	char frozen_id[32];
	char checkpoint_reply[64];
	char others[256];
	int create_errno;
	unsigned int major, minor;
};

static struct fake fake;
static int loaded;
static unsigned int bitmap_calls;

static void load(void)
{
	const char *path = getenv("DIRTYCTL_FAKE_STATE");
	char line[4200];
	FILE *f;

	if (loaded)
		return;
	loaded = 1;
	fake.reply_max = DT_TEST_REPLY_MAX;
	fake.major = 252;
	fake.minor = 250;
	snprintf(fake.type, sizeof(fake.type), "dirtytrack");
	snprintf(fake.checkpoint_reply, sizeof(fake.checkpoint_reply), "c0ffee0123456789");
	f = path ? fopen(path, "r") : NULL;
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *v = strchr(line, '=');

		if (!v)
			continue;
		*v++ = '\0';
		v[strcspn(v, "\n")] = '\0';
		if (!strcmp(line, "name"))
			snprintf(fake.name, sizeof(fake.name), "%s", v);
		else if (!strcmp(line, "type"))
			snprintf(fake.type, sizeof(fake.type), "%s", v);
		else if (!strcmp(line, "start"))
			fake.start = strtoull(v, NULL, 10);
		else if (!strcmp(line, "length"))
			fake.length = strtoull(v, NULL, 10);
		else if (!strcmp(line, "dev_sectors"))
			fake.dev_sectors = strtoull(v, NULL, 10);
		else if (!strcmp(line, "suspended"))
			fake.suspended = atoi(v);
		else if (!strcmp(line, "status"))
			snprintf(fake.status, sizeof(fake.status), "%s", v);
		else if (!strcmp(line, "live"))
			snprintf(fake.live, sizeof(fake.live), "%s", v);
		else if (!strcmp(line, "frozen")) {
			snprintf(fake.frozen, sizeof(fake.frozen), "%s", v);
			fake.has_frozen = 1;
		} else if (!strcmp(line, "reply_max"))
			fake.reply_max = strtoul(v, NULL, 10);
		else if (!strcmp(line, "epoch_bump_at"))
			sscanf(v, "%u,%u,%u,%u", &fake.epoch_bump_at[0], &fake.epoch_bump_at[1],
			       &fake.epoch_bump_at[2], &fake.epoch_bump_at[3]);
		else if (!strcmp(line, "fail")) {
			char *colon = strchr(v, ':');

			if (colon) {
				*colon = '\0';
				snprintf(fake.fail_verb, sizeof(fake.fail_verb), "%s", v);
				fake.fail_errno = atoi(colon + 1);
			}
		} else if (!strcmp(line, "lookup_errno"))
			fake.lookup_errno = atoi(v);
		else if (!strcmp(line, "frozen_id"))
			snprintf(fake.frozen_id, sizeof(fake.frozen_id), "%s", v);
		else if (!strcmp(line, "checkpoint_reply"))
			snprintf(fake.checkpoint_reply, sizeof(fake.checkpoint_reply), "%s", v);
		else if (!strcmp(line, "devt"))
			sscanf(v, "%u:%u", &fake.major, &fake.minor);
		else if (!strcmp(line, "create_errno"))
			fake.create_errno = atoi(v);
		else if (!strcmp(line, "others"))
			snprintf(fake.others, sizeof(fake.others), "%s", v);
	}
	fclose(f);
}

/* Is @dev one of the others= devices? */
static int is_other(const char *dev)
{
	size_t len = strlen(dev);
	const char *p = fake.others;

	while (len && *p) {
		size_t n = strcspn(p, ",");

		if (n == len && !strncmp(p, dev, n))
			return 1;
		p += n + (p[n] == ',');
	}
	return 0;
}

/* Does @dev name the fake device? */
static int is_fake(const char *dev)
{
	const char *prefix = "/dev/mapper/";

	if (!strncmp(dev, prefix, strlen(prefix)))
		dev += strlen(prefix);
	return fake.name[0] && !strcmp(dev, fake.name);
}

void dt_dm_init(void)
{
}

int dt_lookup_device(const char *dev, struct dt_device *d)
{
	load();
	memset(d, 0, sizeof(*d));
	if (fake.lookup_errno)
		return -fake.lookup_errno;
	if (is_other(dev)) {
		snprintf(d->name, sizeof(d->name), "%s", dev);
		snprintf(d->first_type, sizeof(d->first_type), "linear");
		d->dev_sectors = 8;
		return 0;
	}
	if (!is_fake(dev))
		return -ENXIO;
	snprintf(d->name, sizeof(d->name), "%s", fake.name);
	snprintf(d->first_type, sizeof(d->first_type), "%s", fake.type);
	d->suspended = fake.suspended;
	d->dev_sectors = fake.dev_sectors;
	d->major = fake.major;
	d->minor = fake.minor;
	if (!strcmp(fake.type, DT_TARGET_TYPE)) {
		d->found = 1;
		d->start = fake.start;
		d->length = fake.length;
		d->status = strdup(fake.status);
		if (!d->status)
			return -ENOMEM;
	}
	return 0;
}

void dt_device_free(struct dt_device *d)
{
	free(d->status);
	d->status = NULL;
}

/* Sets the clusters of a list like "0-2,63,125" in @words. */
static void fill_set(uint64_t *words, uint64_t clusters, const char *list)
{
	const char *p = list;

	while (*p) {
		char *end;
		uint64_t a = strtoull(p, &end, 10), b = a, c;

		if (end == p)
			break;
		if (*end == '-')
			b = strtoull(end + 1, &end, 10);
		for (c = a; c <= b && c < clusters; c++)
			words[c / 64] |= 1ULL << (c % 64);
		if (*end != ',')
			break;
		p = end + 1;
	}
}

/* The epoch: 1, plus one for each bump point the bitmap reads passed. */
static uint64_t epoch(void)
{
	uint64_t e = 1;
	unsigned int i;

	for (i = 0; i < 4; i++)
		if (fake.epoch_bump_at[i] && bitmap_calls >= fake.epoch_bump_at[i])
			e++;
	return e;
}

static int bitmap_reply(const char *set, uint64_t first, char **reply)
{
	struct dt_status st;
	uint64_t *words;
	char *buf;

	if (dt_parse_status(fake.status, &st))
		return -EINVAL;
	if (!strcmp(set, DT_SET_FROZEN) && !fake.has_frozen)
		return -ENOENT;
	bitmap_calls++;
	words = calloc(dt_groups(st.clusters), sizeof(*words));
	buf = malloc(fake.reply_max);
	if (!words || !buf) {
		free(words);
		free(buf);
		return -ENOMEM;
	}
	fill_set(words, st.clusters, strcmp(set, DT_SET_FROZEN) ? fake.live : fake.frozen);
	dt_test_encode_page(words, st.clusters, first, epoch(), buf, fake.reply_max);
	free(words);
	*reply = buf;
	return 0;
}

int dt_send_message(const char *dev, uint64_t sector, const char *msg,
		    char **reply)
{
	const char *log = getenv("DIRTYCTL_FAKE_LOG");
	char verb[32] = "", set[16] = "";
	unsigned long long first = 0;
	FILE *f;

	load();
	if (reply)
		*reply = NULL;
	if (!is_fake(dev))
		return -ENXIO;
	f = log ? fopen(log, "a") : NULL;
	if (f) {
		fprintf(f, "%llu %s\n", (unsigned long long)sector, msg);
		fclose(f);
	}
	sscanf(msg, "%31s", verb);
	if (!strcmp(verb, DT_MSG_CHECKPOINT) && getenv("DIRTYCTL_FAKE_FREEZE_PROBE")) {
		int fd = open(getenv("DIRTYCTL_FAKE_FREEZE_PROBE"), O_RDONLY | O_DIRECTORY);
		const char *what = "probe: cannot open";

		if (fd >= 0) {
			if (ioctl(fd, FIFREEZE, 0) == 0) {
				ioctl(fd, FITHAW, 0);
				what = "probe: not frozen";
			} else {
				what = errno == EBUSY ? "probe: frozen" : "probe: FIFREEZE failed";
			}
			close(fd);
		}
		f = log ? fopen(log, "a") : NULL;
		if (f) {
			fprintf(f, "%s\n", what);
			fclose(f);
		}
	}
	if (fake.fail_errno && !strcmp(verb, fake.fail_verb))
		return -fake.fail_errno;
	if (!strcmp(verb, DT_MSG_BITMAP)) {
		if (sscanf(msg, "%*s %15s %llu", set, &first) != 2 || !reply)
			return -EINVAL;
		return bitmap_reply(set, first, reply);
	}
	if (!strcmp(verb, DT_MSG_COMMIT) || !strcmp(verb, DT_MSG_ROLLBACK)) {
		const char *id = msg + strlen(verb);

		if (*id && !fake.has_frozen)
			return -ENOENT;
		if (*id && strcmp(id + 1, fake.frozen_id))
			return -ESTALE;
	}
	if (!strcmp(verb, DT_MSG_CHECKPOINT) && reply &&
	    strcmp(fake.checkpoint_reply, "none")) {
		*reply = strdup(fake.checkpoint_reply);
		return *reply ? 0 : -ENOMEM;
	}
	if (reply) {
		*reply = strdup("");
		if (!*reply)
			return -ENOMEM;
	}
	return 0;
}

int dt_list_devices(char ***names)
{
	char list[400], *save = NULL, *name;
	size_t n = 0;

	load();
	*names = NULL;
	if (fake.lookup_errno)
		return -fake.lookup_errno;
	snprintf(list, sizeof(list), "%s%s%s", fake.others, fake.others[0] ? "," : "",
		 fake.name);
	*names = calloc(16, sizeof(**names));
	if (!*names)
		return -ENOMEM;
	for (name = strtok_r(list, ",", &save); name && n < 15;
	     name = strtok_r(NULL, ",", &save))
		(*names)[n++] = strdup(name);
	return 0;
}

static void log_line(const char *line)
{
	const char *log = getenv("DIRTYCTL_FAKE_LOG");
	FILE *f = log ? fopen(log, "a") : NULL;

	if (f) {
		fprintf(f, "%s\n", line);
		fclose(f);
	}
}

int dt_create_readonly(const char *name, uint64_t length, const char *type,
		       const char *params)
{
	char line[512];
	size_t n;

	load();
	if (is_fake(name) || is_other(name))
		return -EBUSY;
	snprintf(line, sizeof(line), "create %s 0 %llu %s %s ro", name,
		 (unsigned long long)length, type, params);
	log_line(line);
	if (fake.create_errno)
		return -fake.create_errno;
	n = strlen(fake.others);
	snprintf(fake.others + n, sizeof(fake.others) - n, "%s%s", n ? "," : "", name);
	return 0;
}

int dt_remove_device(const char *name)
{
	char line[256];

	load();
	snprintf(line, sizeof(line), "remove %s", name);
	log_line(line);
	if (fake.create_errno)
		return -fake.create_errno;
	return is_other(name) ? 0 : -ENXIO;
}
