/* SPDX-License-Identifier: MIT */
/*
 * Helpers the SPMC/MPMC test files share (test_mc.c, test_mc_claim.c,
 * test_mc_ahead.c): channels and consumers made with the public API, every
 * call checked, and the few synchronization helpers their threads use.
 * Include after cmocka.h and test_util.h.
 */
#ifndef RMPSC_TEST_MC_UTIL_H
#define RMPSC_TEST_MC_UTIL_H

#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "ringmpsc/channel.h"
#include "ringmpsc/wait.h"

#define SENTINEL_SPMC SENTINEL_OF(rmpsc_spmc)
#define SENTINEL_MPMC SENTINEL_OF(rmpsc_mpmc)
#define SENTINEL_CONS SENTINEL_OF(rmpsc_consumer)

/* Yield until @flag is non-zero (acquire). */
static inline void await_flag(atomic_int *flag)
{
	while (!atomic_load_explicit(flag, memory_order_acquire))
		sched_yield();
}

static inline void raise_flag(atomic_int *flag)
{
	atomic_store_explicit(flag, 1, memory_order_release);
}

/* A strategy that goes to the futex at once. */
static inline rmpsc_wait block_now(void)
{
	rmpsc_wait w;

	assert_ret(rmpsc_wait_init(&w, sizeof w, RMPSC_WAIT_BLOCK), 0);
	w.spin_count = 0;
	w.yield_count = 0;
	assert_ret(rmpsc_wait_validate(&w), 0);
	return w;
}

static inline rmpsc_mc_config mc_cfg(bool spmc, uint32_t cap, uint32_t max_consumers)
{
	rmpsc_mc_config cfg;

	assert_ret(rmpsc_mc_config_init(&cfg, sizeof cfg, spmc), 0);
	cfg.ring_capacity = cap;
	cfg.max_consumers = max_consumers;
	return cfg;
}

static inline rmpsc_spmc *spmc_new_esz(uint32_t cap, uint32_t esz, uint32_t max_consumers)
{
	rmpsc_mc_config cfg = mc_cfg(true, cap, max_consumers);
	rmpsc_spmc *ch = SENTINEL_SPMC;

	cfg.elem_size = esz;
	assert_ret(rmpsc_spmc_create(&cfg, &ch), 0);
	return assert_handle(ch, SENTINEL_SPMC);
}

static inline rmpsc_spmc *spmc_new(uint32_t cap, uint32_t max_consumers)
{
	return spmc_new_esz(cap, 8, max_consumers);
}

static inline rmpsc_mpmc *mpmc_new(uint32_t cap, uint32_t producers, uint32_t max_producers,
				   uint32_t max_consumers)
{
	rmpsc_mc_config cfg = mc_cfg(false, cap, max_consumers);
	rmpsc_mpmc *ch = SENTINEL_MPMC;

	cfg.producers = producers;
	cfg.max_producers = max_producers;
	assert_ret(rmpsc_mpmc_create(&cfg, &ch), 0);
	return assert_handle(ch, SENTINEL_MPMC);
}

/* A consumer of an SPMC channel, or of an MPMC one (@mpmc). */
static inline rmpsc_consumer *cons_new(void *ch, bool mpmc)
{
	rmpsc_consumer *c = SENTINEL_CONS;
	const int rc = mpmc ? rmpsc_mpmc_register_consumer(ch, &c)
			    : rmpsc_spmc_register_consumer(ch, &c);

	assert_true(rc >= 0);
	return assert_handle(c, SENTINEL_CONS);
}

static inline int spmc_put1(void *h, const void *item)
{
	return rmpsc_spmc_push(h, item);
}

static inline int steal1(void *h, void *item)
{
	return rmpsc_consumer_steal_one(h, item);
}

#endif /* RMPSC_TEST_MC_UTIL_H */
