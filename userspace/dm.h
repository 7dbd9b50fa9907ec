/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/*
 * The one libdevmapper wrapper of dirtyctl.  Nothing else includes
 * libdevmapper.h.  Every function returns 0 or -errno; none prints.
 */
#ifndef DIRTYCTL_DM_H
#define DIRTYCTL_DM_H

#include <stdint.h>
#include <stdlib.h>

#define DT_TARGET_TYPE "dirtytrack"
#define DT_DM_NAME_MAX 128	/* DM_NAME_LEN */
#define DT_DM_TYPE_MAX 16	/* DM_MAX_TYPE_NAME */

/* What one DM_DEVICE_STATUS call tells about a device. */
struct dt_device {
	char name[DT_DM_NAME_MAX];	/* dm name, for messages and output */
	int suspended;
	uint64_t dev_sectors;		/* end of the last target */
	int found;			/* a dirtytrack target was found */
	uint64_t start;			/* its start and length, sectors */
	uint64_t length;
	char *status;			/* its status params, malloc'd */
	char first_type[DT_DM_TYPE_MAX]; /* first target's type, "" for none */
	unsigned int major, minor;	/* its dev_t */
};

/*
 * dt_dm_init - route libdevmapper's own messages away from the user
 * (kept only to recover errno when an ioctl never ran).  Call once.
 */
void dt_dm_init(void);

/*
 * dt_lookup_device - find @dev: a dm name, /dev/mapper/NAME, or any
 * block device node of a dm device (/dev/dm-N).  Fills @d; d->found says
 * whether the table has a dirtytrack target.  Returns 0, -ENXIO when no
 * such dm device exists, -ENOTBLK for a node that is not a dm device,
 * -EACCES/-EPERM without privilege, -ENODEV when device-mapper is not
 * available at all, or another -errno.
 */
int dt_lookup_device(const char *dev, struct dt_device *d);
void dt_device_free(struct dt_device *d);

/*
 * dt_send_message - "dmsetup message @dev @sector @msg".  On success
 * *reply (if @reply is not NULL) is the target's reply, malloc'd, ""
 * when it returned nothing.  Returns 0 or -errno of the ioctl, with the
 * same meaning of -EACCES, -EPERM and -ENODEV as dt_lookup_device().
 */
int dt_send_message(const char *dev, uint64_t sector, const char *msg,
		    char **reply);

/*
 * dt_list_devices - the names of every dm device (DM_DEVICE_LIST), a
 * malloc'd NULL-terminated array for dt_names_free().  Returns 0 or
 * -errno, with the meaning of -EACCES, -EPERM and -ENODEV above.
 */
int dt_list_devices(char ***names);

static inline void dt_names_free(char **names)
{
	char **p;

	for (p = names; p && *p; p++)
		free(*p);
	free(names);
}

/*
 * dt_create_readonly - "dmsetup create --readonly @name --table
 * '0 @length @type @params'": create, load the table, resume.  Returns 0,
 * -EEXIST when @name exists, or -errno (the half-made device is removed).
 */
int dt_create_readonly(const char *name, uint64_t length, const char *type,
		       const char *params);

/* dt_remove_device - "dmsetup remove @name".  Returns 0 or -errno. */
int dt_remove_device(const char *name);

#endif
