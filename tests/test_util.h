/* SPDX-License-Identifier: MIT */
/*
 * test_util.h: what every test and stress driver of tests/ shares, written
 * once: error names and the return-code assertion, sentinel and foreign
 * handles, rings of 8-byte values, the sanitizer scale of the item
 * counts, the clock, and the stress drivers' seed and random numbers.
 *
 * Include it after the system headers and <cmocka.h> (which needs
 * <stdarg.h>, <stddef.h> and <setjmp.h> first). Everything here is static
 * inline or a macro, so a file that uses only part of it gets no
 * unused-function warning. A stress driver that wants stress_seed()
 * defines STRESS_SEED, its default seed, before the include.
 */
#ifndef RMPSC_TESTS_TEST_UTIL_H
#define RMPSC_TESTS_TEST_UTIL_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "ringmpsc/ring.h"

/* ---- the build: item counts scaled for the sanitizers ------------------- */

#if defined(__SANITIZE_THREAD__)
#define TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TEST_TSAN 1
#endif
#endif

/* Counts: full size, under ASan+UBSan, under TSan (each case well below a
 * minute on two cores). RMPSC_TEST_SANITIZED comes from tests/CMakeLists.txt. */
#if defined(TEST_TSAN)
#define STRESS_SCALE(normal, asan, tsan) (tsan)
#define STRESS_BUILD "tsan"
#elif defined(RMPSC_TEST_SANITIZED)
#define STRESS_SCALE(normal, asan, tsan) (asan)
#define STRESS_BUILD "asan"
#else
#define STRESS_SCALE(normal, asan, tsan) (normal)
#define STRESS_BUILD "plain"
#endif

/* ---- return codes -------------------------------------------------------- */

/* The name of a code the library returns, for failure messages. */
static inline const char *errname(long long v)
{
	switch (v) {
	case 0: return "0";
	case -EINVAL: return "-EINVAL";
	case -EBADF: return "-EBADF";
	case -EAGAIN: return "-EAGAIN";
	case -EPIPE: return "-EPIPE";
	case -ETIMEDOUT: return "-ETIMEDOUT";
	case -ENOMEM: return "-ENOMEM";
	case -E2BIG: return "-E2BIG";
	case -ENOSPC: return "-ENOSPC";
	case -ENOENT: return "-ENOENT";
	case -EBUSY: return "-EBUSY";
	case -EDEADLK: return "-EDEADLK";
	case -EIO: return "-EIO";
	case -EEXIST: return "-EEXIST";
	case -EMFILE: return "-EMFILE";
	case -ENFILE: return "-ENFILE";
	case -EINTR: return "-EINTR";
	case -EOPNOTSUPP: return "-EOPNOTSUPP";
	case -ENOBUFS: return "-ENOBUFS";
	case -ESTALE: return "-ESTALE";
	case -EMSGSIZE: return "-EMSGSIZE";
	case -EPROTO: return "-EPROTO";
	default: return v < 0 ? "negative" : "positive";
	}
}

/* Compare a return value as a signed number and name error codes. */
#define assert_ret(expr, want)                                                 \
	do {                                                                   \
		const long long got_ = (long long)(expr);                      \
		const long long want_ = (long long)(want);                     \
		if (got_ != want_) {                                           \
			print_error("%s = %lld (%s), expected %lld (%s)\n",   \
				    #expr, got_, errname(got_), want_,         \
				    errname(want_));                           \
			fail();                                                \
		}                                                              \
	} while (0)

/* ---- handles that are not handles --------------------------------------- */

/* A non-NULL pointer that a failing constructor must overwrite with NULL
 * (64 zero bytes: also "not a handle" where one is passed in). */
static inline void *test_sentinel(void)
{
	static unsigned char obj[64];

	return obj;
}
#define SENTINEL_OF(T) ((T *)test_sentinel())

/* Not a handle of any type: aligned for any handle struct (UBSan checks the
 * alignment of the magic-word read), filled with a foreign magic. */
static inline void *test_foreign(void)
{
	static _Alignas(4096) unsigned char obj[4096] = "NOTAHANDLE";

	return obj;
}
#define FOREIGN(T) ((T *)test_foreign())

/* ---- rings of 8-byte values ------------------------------------------------ */

/* A ring of @cap slots of @esz bytes; @flags and @slots as in the config. */
static inline rmpsc_ring *ring_make(uint32_t cap, uint32_t esz, uint32_t flags, uint32_t slots)
{
	rmpsc_ring_config cfg;
	rmpsc_ring *r = SENTINEL_OF(rmpsc_ring);

	assert_ret(rmpsc_ring_config_init(&cfg, sizeof cfg), 0);
	cfg.capacity = cap;
	cfg.elem_size = esz;
	cfg.flags = flags;
	cfg.slots = slots;
	assert_ret(rmpsc_ring_create(&cfg, &r), 0);
	assert_non_null(r);
	assert_ptr_not_equal(r, SENTINEL_OF(rmpsc_ring));
	return r;
}

/* Push the values first, first + 1, ... one at a time. */
static inline void ring_push_seq(rmpsc_ring *r, uint64_t first, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		const uint64_t v = first + i;

		assert_ret(rmpsc_ring_push(r, &v), 0);
	}
}

/* Pop @n values one at a time: they must be first, first + 1, ... */
static inline void ring_pop_seq(rmpsc_ring *r, uint64_t first, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		uint64_t v = ~0ull;

		assert_ret(rmpsc_ring_pop(r, &v), 0);
		assert_int_equal(v, first + i);
	}
}

/* The values @v[0..n) are first, first + 1, ... */
static inline void vals_expect(const uint64_t *v, uint64_t first, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		assert_int_equal(v[i], first + i);
}

/* ---- clock ---------------------------------------------------------------- */

static inline int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

/* Sleep @ns in full: a signal only resumes the sleep with what is left. */
static inline void sleep_ns(int64_t ns)
{
	struct timespec ts = { .tv_sec = ns / 1000000000ll, .tv_nsec = ns % 1000000000ll };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ---- randomness of the stress drivers ------------------------------------- */

#ifdef STRESS_SEED
/* RMPSC_STRESS_SEED (any strtoull base) or the driver's STRESS_SEED, odd. */
static inline uint64_t stress_seed(void)
{
	const char *e = getenv("RMPSC_STRESS_SEED");

	if (e && *e)
		return strtoull(e, NULL, 0) | 1;
	return STRESS_SEED;
}
#endif

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

#endif /* RMPSC_TESTS_TEST_UTIL_H */
