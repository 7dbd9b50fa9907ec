/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/*
 * Test support: the target's side of the paged bitmap read and of the
 * superblock, so that unit tests, the fuzz seeds and the benchmark can
 * produce what the kernel would.
 */
#ifndef DIRTYCTL_TEST_ENCODE_H
#define DIRTYCTL_TEST_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "../kernel/dm-dirtytrack-abi.h"

/* libdevmapper's first reply buffer is about this large. */
#define DT_TEST_REPLY_MAX 16384

/*
 * dt_test_encode_page - the reply to "bitmap <set> <first>" for @words
 * (dt_groups(@clusters) groups), encoded the way dm-dirtytrack-target.c
 * does it into @out of @maxlen bytes: "<epoch> <first> <n> " and as many
 * groups and zero runs as fit.  @maxlen must be at least 84, as in the
 * kernel.  Returns the number of groups encoded.
 */
uint64_t dt_test_encode_page(const uint64_t *words, uint64_t clusters,
			     uint64_t first, uint64_t epoch, char *out,
			     size_t maxlen);

/*
 * dt_test_make_superblock - a sound superblock for a data device of
 * @data_sectors with @cluster_sectors clusters, checksum included, in
 * block (DT_BLOCK_SIZE bytes, zeroed first).
 */
void dt_test_make_superblock(unsigned char *block, uint64_t data_sectors,
			     uint32_t cluster_sectors, uint32_t flags);

/* Recomputes the checksum of the superblock at the start of @block. */
void dt_test_seal_superblock(unsigned char *block);

/* Bytes of a whole metadata image for the superblock in @block. */
uint64_t dt_test_metadata_bytes(const unsigned char *block);

/* A fast deterministic xorshift64 generator for test data. */
uint64_t dt_test_rng(void);

#endif
