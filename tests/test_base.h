/* SPDX-License-Identifier: MIT */
/*
 * test_base.h: the part of the tests' helpers that needs no cmocka, for
 * the programs of tests/ that are not cmocka tests (shm_peer.c,
 * fuzz_shm_header.c) as much as for the tests (test_util.h includes it):
 * the xorshift generator seeded runs draw from, the count of this
 * process's open descriptors (leak checks), and a CRC-32 of payloads.
 * Everything is static inline: a file that uses part of it gets no
 * unused-function warning.
 */
#ifndef RMPSC_TESTS_TEST_BASE_H
#define RMPSC_TESTS_TEST_BASE_H

#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Open descriptors among the first 1024 (tests keep below that). */
static inline int open_fds(void)
{
	int n = 0;

	for (int fd = 0; fd < 1024; fd++)
		n += fcntl(fd, F_GETFD) != -1;
	return n;
}

/* CRC-32 (IEEE, reflected) of @n bytes at @buf, continuing from @crc (0
 * to start). The table is built on first use, by the calling thread. */
static inline uint32_t shm_crc32(uint32_t crc, const void *buf, size_t n)
{
	static uint32_t table[256];
	static bool ready;
	const uint8_t *p = buf;
	uint32_t c = ~crc;

	if (!ready) {
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t v = i;

			for (int k = 0; k < 8; k++)
				v = (v & 1) ? 0xedb88320u ^ (v >> 1) : v >> 1;
			table[i] = v;
		}
		ready = true;
	}
	for (size_t i = 0; i < n; i++)
		c = table[(c ^ p[i]) & 0xff] ^ (c >> 8);
	return ~c;
}

/* xorshift64: deterministic per thread, never 0 for a non-zero seed. */
static inline uint64_t xs_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

#endif /* RMPSC_TESTS_TEST_BASE_H */
