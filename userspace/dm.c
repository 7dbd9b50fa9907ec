// SPDX-License-Identifier: GPL-2.0-only OR MIT
/*
 * The one libdevmapper wrapper of dirtyctl, after lvm2's
 * _stats_send_message(): create a task, name the device, run it, hand
 * back 0 or -errno.  libdevmapper's own log lines never reach the user;
 * dirtyctl turns errno into its own one-line messages.  Set
 * DIRTYCTL_DEBUG=1 in the environment to see them anyway.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <libdevmapper.h>

#include "dm.h"

#define MAPPER_PREFIX "/dev/mapper/"

static int dm_debug;

static void __attribute__((format(printf, 5, 6)))
dt_dm_log(int level, const char *file, int line, int dm_errno_or_class,
	  const char *f, ...)
{
	va_list ap;

	(void)level;
	(void)dm_errno_or_class;
	if (!dm_debug)
		return;
	fprintf(stderr, "libdevmapper %s:%d: ", file, line);
	va_start(ap, f);
	vfprintf(stderr, f, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void dt_dm_init(void)
{
	const char *env = getenv("DIRTYCTL_DEBUG");

	dm_debug = env && *env && strcmp(env, "0");
	dm_log_with_errno_init(dt_dm_log);
	/*
	 * Names as the kernel has them: the names DM_DEVICE_LIST returns
	 * must find their devices again, whatever bytes they hold.
	 */
	dm_set_name_mangling_mode(DM_STRING_MANGLING_NONE);
}

/*
 * Why did a task fail before any ioctl ran?  libdevmapper reports that
 * only in a log line, so try the control node ourselves: EACCES or
 * EPERM without privilege, ENODEV for any other reason it is unusable,
 * 0 if it opens.
 */
static int control_errno(void)
{
	char path[256];
	int fd, err;

	snprintf(path, sizeof(path), "%s/control", dm_dir());
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		err = errno;
		return err == EACCES || err == EPERM ? err : ENODEV;
	}
	close(fd);
	return 0;
}


static int run_task(struct dm_task *dmt)
{
	int err;

	if (dm_task_run(dmt))
		return 0;
	err = dm_task_get_errno(dmt);
	if (!err)
		err = control_errno();
	return -(err ? err : EIO);
}

/* Names the device of @dmt after @dev (see dt_lookup_device). */
static int set_device(struct dm_task *dmt, const char *dev)
{
	const char *name = dev;
	struct stat st;

	if (!strncmp(dev, MAPPER_PREFIX, strlen(MAPPER_PREFIX))) {
		name = dev + strlen(MAPPER_PREFIX);
	} else if (strchr(dev, '/')) {
		if (stat(dev, &st) < 0)
			return errno == ENOENT ? -ENXIO : -errno;
		if (!S_ISBLK(st.st_mode) || !dm_is_dm_major(major(st.st_rdev)))
			return -ENOTBLK;
		if (!dm_task_set_major_minor(dmt, (int)major(st.st_rdev),
					     (int)minor(st.st_rdev), 0))
			return -ENOMEM;
		return 0;
	}
	if (!*name || strchr(name, '/') || strlen(name) >= DT_DM_NAME_MAX)
		return -ENXIO;
	return dm_task_set_name(dmt, name) ? 0 : -ENOMEM;
}

/*
 * A task of @type for @dev, or NULL and *ret.  dm_task_create() also
 * fails when the kernel driver cannot be reached.
 */
static struct dm_task *prepare_task(int type, const char *dev, int *ret)
{
	struct dm_task *dmt = dm_task_create(type);

	if (!dmt) {
		*ret = control_errno();
		*ret = -(*ret ? *ret : ENOMEM);
		return NULL;
	}
	*ret = set_device(dmt, dev);
	if (*ret) {
		dm_task_destroy(dmt);
		return NULL;
	}
	return dmt;
}

static void copy_string(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src ? src : "");
}

int dt_lookup_device(const char *dev, struct dt_device *d)
{
	struct dm_task *dmt;
	struct dm_info info;
	uint64_t start, length;
	char *type, *params;
	void *next = NULL;
	int ret;

	memset(d, 0, sizeof(*d));
	dmt = prepare_task(DM_DEVICE_STATUS, dev, &ret);
	if (!dmt)
		return ret;
	ret = run_task(dmt);
	if (ret)
		goto out;
	if (!dm_task_get_info(dmt, &info)) {
		ret = -EIO;
		goto out;
	}
	if (!info.exists) {
		ret = -ENXIO;
		goto out;
	}
	d->suspended = info.suspended;
	d->major = (unsigned int)info.major;
	d->minor = (unsigned int)info.minor;
	copy_string(d->name, sizeof(d->name), dm_task_get_name(dmt));
	do {
		next = dm_get_next_target(dmt, next, &start, &length, &type, &params);
		if (!type)
			break;
		if (!d->first_type[0])
			copy_string(d->first_type, sizeof(d->first_type), type);
		if (start + length > d->dev_sectors)
			d->dev_sectors = start + length;
		if (!d->found && !strcmp(type, DT_TARGET_TYPE)) {
			d->status = strdup(params ? params : "");
			if (!d->status) {
				ret = -ENOMEM;
				goto out;
			}
			d->found = 1;
			d->start = start;
			d->length = length;
		}
	} while (next);
out:
	dm_task_destroy(dmt);
	if (ret)
		dt_device_free(d);
	return ret;
}

void dt_device_free(struct dt_device *d)
{
	free(d->status);
	d->status = NULL;
}

int dt_send_message(const char *dev, uint64_t sector, const char *msg,
		    char **reply)
{
	struct dm_task *dmt;
	const char *response;
	int ret;

	if (reply)
		*reply = NULL;
	dmt = prepare_task(DM_DEVICE_TARGET_MSG, dev, &ret);
	if (!dmt)
		return ret;
	if (!dm_task_set_sector(dmt, sector) || !dm_task_set_message(dmt, msg)) {
		ret = -ENOMEM;
		goto out;
	}
	ret = run_task(dmt);
	if (ret || !reply)
		goto out;
	response = dm_task_get_message_response(dmt);
	*reply = strdup(response ? response : "");
	if (!*reply)
		ret = -ENOMEM;
out:
	dm_task_destroy(dmt);
	return ret;
}

int dt_list_devices(char ***names)
{
	struct dm_task *dmt = dm_task_create(DM_DEVICE_LIST);
	struct dm_names *n;
	size_t count = 0, i = 0;
	unsigned int next = 0;
	int ret;

	*names = NULL;
	if (!dmt) {
		ret = control_errno();
		return -(ret ? ret : ENOMEM);
	}
	ret = run_task(dmt);
	if (ret)
		goto out;
	n = dm_task_get_names(dmt);
	if (!n) {
		ret = -EIO;
		goto out;
	}
	if (n->dev) {
		struct dm_names *c = n;

		do {
			c = (struct dm_names *)((char *)c + next);
			next = c->next;
			count++;
		} while (next);
	}
	*names = calloc(count + 1, sizeof(**names));
	if (!*names) {
		ret = -ENOMEM;
		goto out;
	}
	for (next = 0; i < count; i++) {
		n = (struct dm_names *)((char *)n + next);
		next = n->next;
		(*names)[i] = strdup(n->name);
		if (!(*names)[i]) {
			dt_names_free(*names);
			*names = NULL;
			ret = -ENOMEM;
			goto out;
		}
	}
out:
	dm_task_destroy(dmt);
	return ret;
}

/*
 * Runs @dmt with a udev cookie, as dmsetup does, and waits for udev to
 * have made (or removed) /dev/mapper/NAME before returning.
 */
static int run_synced(struct dm_task *dmt, uint32_t *cookie)
{
	int ret;

	if (!dm_task_set_cookie(dmt, cookie, 0))
		return -ENOMEM;
	ret = run_task(dmt);
	dm_udev_wait(*cookie);
	return ret;
}

/* A task of @type for the dm name @name (no path lookup). */
static struct dm_task *name_task(int type, const char *name, int *ret)
{
	if (!*name || strchr(name, '/') || strlen(name) >= DT_DM_NAME_MAX) {
		*ret = -EINVAL;
		return NULL;
	}
	return prepare_task(type, name, ret);
}

int dt_remove_device(const char *name)
{
	uint32_t cookie = 0;
	struct dm_task *dmt;
	int ret;

	dmt = name_task(DM_DEVICE_REMOVE, name, &ret);
	if (!dmt)
		return ret;
	ret = run_synced(dmt, &cookie);
	dm_task_destroy(dmt);
	return ret;
}

int dt_create_readonly(const char *name, uint64_t length, const char *type,
		       const char *params)
{
	uint32_t cookie = 0;
	struct dm_task *dmt;
	struct dm_info info;
	int ret;

	/* DM_DEVICE_CREATE with a table loads and resumes, as dmsetup create. */
	dmt = name_task(DM_DEVICE_CREATE, name, &ret);
	if (!dmt)
		return ret;
	if (!dm_task_set_ro(dmt) ||
	    !dm_task_add_target(dmt, 0, length, type, params)) {
		ret = -ENOMEM;
		goto out;
	}
	ret = run_synced(dmt, &cookie);
	if (!ret && (!dm_task_get_info(dmt, &info) || !info.exists))
		ret = -EIO;
out:
	dm_task_destroy(dmt);
	return ret;
}
