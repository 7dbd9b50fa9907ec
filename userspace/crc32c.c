// SPDX-License-Identifier: GPL-2.0-only OR MIT
/*
 * CRC-32C, table driven, one byte at a time: dirtyctl checksums one
 * 508-byte superblock per run, so speed does not matter here.
 */
#include "crc32c.h"

#define CRC32C_POLY_REFLECTED 0x82F63B78U

static uint32_t crc32c_table[256];
static int crc32c_table_ready;

static void crc32c_init_table(void)
{
	uint32_t i, bit, crc;

	for (i = 0; i < 256; i++) {
		crc = i;
		for (bit = 0; bit < 8; bit++)
			crc = (crc >> 1) ^ ((crc & 1) ? CRC32C_POLY_REFLECTED : 0);
		crc32c_table[i] = crc;
	}
	crc32c_table_ready = 1;
}

uint32_t dt_crc32c(const void *buf, size_t len)
{
	return dt_crc32c_extend(0, buf, len);
}

uint32_t dt_crc32c_extend(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	crc = ~crc;

	if (!crc32c_table_ready)
		crc32c_init_table();
	while (len--)
		crc = (crc >> 8) ^ crc32c_table[(crc ^ *p++) & 0xff];
	return ~crc;
}
