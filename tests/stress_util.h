/* SPDX-License-Identifier: MIT */
/*
 * stress_util.h: what every stress driver (tests/stress_*.c) draws its
 * randomness from. The includer defines STRESS_SEED, its own default seed,
 * and includes <stdint.h> and <stdlib.h> first.
 */
#ifndef RMPSC_TESTS_STRESS_UTIL_H
#define RMPSC_TESTS_STRESS_UTIL_H

/* RMPSC_STRESS_SEED (any strtoull base) or the driver's STRESS_SEED, odd. */
static uint64_t stress_seed(void)
{
	const char *e = getenv("RMPSC_STRESS_SEED");

	if (e && *e)
		return strtoull(e, NULL, 0) | 1;
	return STRESS_SEED;
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

#endif /* RMPSC_TESTS_STRESS_UTIL_H */
