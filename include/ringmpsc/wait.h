/* SPDX-License-Identifier: MIT */
/**
 * @file ringmpsc/wait.h
 * How a blocking call waits (wait strategies) and a reusable spin/yield
 * backoff helper.
 *
 * Every blocking call of the library (rmpsc_ring_push_timed() and friends)
 * takes an `int64_t timeout_ns` (negative: wait forever; 0: try once; else
 * the longest time to wait, on CLOCK_MONOTONIC) and a `const rmpsc_wait *`
 * that says how to wait; NULL means the handle's strategy (set with
 * rmpsc_ring_set_wait(); RMPSC_WAIT_BLOCK unless changed).
 *
 * A wait goes through phases until the call can proceed, the timeout
 * expires (-ETIMEDOUT) or the object is closed (-EPIPE):
 *  1. spin: `spin_count` polls, each after one CPU-relax hint (`pause`);
 *     RMPSC_WAIT_BACKOFF doubles the hints per poll, 1, 2, 4 ... up to 64;
 *  2. yield: `yield_count` polls, each after sched_yield();
 *  3. idle: what the kind says (spin on, yield on, sleep sleep_ns between
 *     polls, or a futex sleep that costs no CPU until the other side wakes
 *     it).
 * A close of the object wakes every waiter at once, whatever its kind and
 * phase: the SLEEP kind's sleep is a futex wait with sleep_ns as timeout,
 * which the other side's publications leave alone but a close ends.
 * Signals never surface as EINTR: an interrupted sleep resumes with the
 * time that is left.
 *
 * The futex kinds cost the other side nothing while nobody sleeps: a
 * commit or release looks at a waiter count on a line it already has and
 * makes a system call only when a thread is asleep on that ring.
 */
#ifndef RINGMPSC_WAIT_H
#define RINGMPSC_WAIT_H

#include <stdint.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Wait strategies (rmpsc_wait.kind). Values are pinned. */
enum rmpsc_wait_kind {
	/** Busy spin with the CPU-relax hint: lowest latency, one core busy. */
	RMPSC_WAIT_SPIN = 0,
	/** Spin, then sched_yield() between polls. */
	RMPSC_WAIT_YIELD = 1,
	/** Spin, yield, then sleep sleep_ns between polls (a close ends the
	 *  sleep at once; publications do not, and cost the other side
	 *  nothing). */
	RMPSC_WAIT_SLEEP = 2,
	/** Spin, yield, then sleep on a futex until woken: no CPU while idle. */
	RMPSC_WAIT_BLOCK = 3,
	/** RMPSC_WAIT_BLOCK whose every wait also ends after the strategy's
	 *  own `timeout_ns` (the smaller of it and the call's timeout wins). */
	RMPSC_WAIT_DEADLINE = 4,
	/** Phased backoff: exponential spin (spin_count polls, 1..64 hints
	 *  each), yield_count yields, then a futex sleep. */
	RMPSC_WAIT_BACKOFF = 5,
	RMPSC_WAIT_KIND_MAX = 5,
};

/** Defaults written by rmpsc_wait_init(). */
enum {
	RMPSC_WAIT_DEFAULT_SPIN = 256,  /**< spin_count */
	RMPSC_WAIT_DEFAULT_YIELD = 8,   /**< yield_count */
	RMPSC_WAIT_CONFIG_SIZE_V1 = 32, /**< sizeof(rmpsc_wait) in 1.0 */
};

/**
 * A wait strategy. Size-prefixed and append-only like the config structs:
 * fill it with rmpsc_wait_init(&w, sizeof w, kind), then change fields.
 */
typedef struct rmpsc_wait {
	uint32_t size;        /**< caller's sizeof, written by rmpsc_wait_init */
	uint32_t kind;        /**< enum rmpsc_wait_kind */
	uint32_t spin_count;  /**< polls in the spin phase (0: none) */
	uint32_t yield_count; /**< polls in the yield phase (0: none) */
	int64_t sleep_ns;     /**< RMPSC_WAIT_SLEEP: sleep per poll, 1 ns..1 s (default 50 us) */
	int64_t timeout_ns;   /**< RMPSC_WAIT_DEADLINE: upper bound of every wait, >= 0 (default 1 ms) */
} rmpsc_wait;

/**
 * Write the defaults for @p kind into at most @p size bytes of @p w:
 * spin_count RMPSC_WAIT_DEFAULT_SPIN (0 for RMPSC_WAIT_SPIN, which never
 * leaves the spin phase), yield_count RMPSC_WAIT_DEFAULT_YIELD, sleep_ns
 * 50000, timeout_ns 1000000.
 *
 * @return 0; -EINVAL: @p w is NULL, @p size is below
 *  RMPSC_WAIT_CONFIG_SIZE_V1 or not a multiple of 8, or @p kind is unknown;
 *  -E2BIG: @p size above 4096 (rmpsc_wait_validate() would refuse it too).
 *  Nothing is written on error.
 * Concurrency: any thread. Progress: wait-free. Ordering: none.
 */
RMPSC_API int rmpsc_wait_init(rmpsc_wait *w, uint32_t size, uint32_t kind);

/**
 * Check a strategy the way the blocking calls do.
 *
 * @return 0; -EINVAL: @p w is NULL, its size is too small or not a
 *  multiple of 8, its kind is unknown, sleep_ns is out of range for
 *  RMPSC_WAIT_SLEEP or timeout_ns is negative for RMPSC_WAIT_DEADLINE;
 *  -E2BIG: size is larger than this library knows and the extra bytes are
 *  not zero, or size is above 4096 (no such struct grows past a page).
 * Concurrency: any thread. Progress: wait-free. Ordering: none.
 */
RMPSC_API int rmpsc_wait_validate(const rmpsc_wait *w);

/* ------------------------------------------------------------------------ */
/* Backoff helper                                                           */
/* ------------------------------------------------------------------------ */

/**
 * Spin/yield backoff state for the caller's own retry loops (crossbeam's
 * Backoff): rmpsc_backoff_spin() executes 2^step CPU-relax hints (at most
 * 2^spin_limit); rmpsc_backoff_snooze() does the same while step <=
 * spin_limit and yields after that; once step passes yield_limit the backoff
 * is "completed" and the caller should block instead. Caller-owned plain
 * integers: no create/destroy.
 */
typedef struct rmpsc_backoff {
	uint32_t step;        /**< current step, 0 after init/reset */
	uint32_t spin_limit;  /**< largest spin exponent, 0..16 (default 6: 64 hints) */
	uint32_t yield_limit; /**< step after which the backoff is completed, spin_limit..64 (default 10) */
	uint32_t _pad0;       /**< must be zero */
} rmpsc_backoff;

/**
 * Start a backoff. Limits of 0 take the defaults (6 and 10; a default
 * yield limit below the spin limit is raised to it). _pad0 is written 0,
 * and the other calls refuse a backoff whose _pad0 is not 0.
 *
 * @return 0; -EINVAL: @p b is NULL, @p spin_limit > 16, @p yield_limit > 64
 *  or (non-zero and) below the effective spin limit.
 * Concurrency: the owning thread. Progress: wait-free. Ordering: none.
 */
RMPSC_API int rmpsc_backoff_init(rmpsc_backoff *b, uint32_t spin_limit,
				 uint32_t yield_limit);

/**
 * Spin 2^min(step, spin_limit) CPU-relax hints, then advance the step
 * (never past spin_limit + 1). For lock-free retry loops that must not
 * yield.
 *
 * @return 0; -EINVAL: @p b is NULL or its fields are out of range (_pad0
 *  not 0 included).
 * Concurrency: the owning thread. Progress: wait-free. Ordering: none.
 */
RMPSC_API int rmpsc_backoff_spin(rmpsc_backoff *b);

/**
 * Spin like rmpsc_backoff_spin() while step <= spin_limit, else
 * sched_yield(); then advance the step (never past yield_limit + 1).
 *
 * @return 0; -EINVAL: @p b is NULL or its fields are out of range (_pad0
 *  not 0 included).
 * Concurrency: the owning thread. Progress: blocking (may yield the CPU).
 * Ordering: none.
 */
RMPSC_API int rmpsc_backoff_snooze(rmpsc_backoff *b);

/**
 * @return 1 once step > yield_limit (time to block), else 0; -EINVAL: @p b
 *  is NULL. Concurrency: the owning thread. Progress: wait-free.
 *  Ordering: none.
 */
RMPSC_API int rmpsc_backoff_is_completed(const rmpsc_backoff *b);

/**
 * Back to step 0 (after the awaited condition came true).
 *
 * @return 0; -EINVAL: @p b is NULL.
 * Concurrency: the owning thread. Progress: wait-free. Ordering: none.
 */
RMPSC_API int rmpsc_backoff_reset(rmpsc_backoff *b);

#ifdef __cplusplus
}
#endif

#endif /* RINGMPSC_WAIT_H */
