/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
#ifndef DIRTYCTL_CRC32C_H
#define DIRTYCTL_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/*
 * dt_crc32c - CRC-32C (Castagnoli) of @len bytes at @buf.
 *
 * The standard parameters: initial value ~0, reflected polynomial
 * 0x82F63B78, final xor ~0.  dt_crc32c("123456789", 9) == 0xE3069283.
 * This is the checksum the superblock's csum field carries (over bytes
 * 4..511 of block 0).
 */
uint32_t dt_crc32c(const void *buf, size_t len);

/*
 * dt_crc32c_extend - the CRC-32C of A || @buf from @crc, the CRC-32C of A
 * (0 for nothing): a checksum computed piece by piece as data is written.
 */
uint32_t dt_crc32c_extend(uint32_t crc, const void *buf, size_t len);

#endif
