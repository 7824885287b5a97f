/* SPDX-License-Identifier: MIT */
/*
 * The blocking-call driver every component uses: try, spin (inline, so the
 * poll loop is the try call itself and a pause), then the out-of-line idle
 * phases of wait.c (yield, sleep, futex). A try function returns -EAGAIN
 * while the caller must keep waiting; anything else ends the wait and is
 * returned as it is.
 *
 * The waiter count and futex word are those of the side that waits (a
 * ring's cons_waiters/cons_seq for a consumer, prod_* for a producer); the
 * other side's hot paths wake them (ring_core.h, E4/E5).
 */
#ifndef RMPSC_WAIT_CORE_H
#define RMPSC_WAIT_CORE_H

#include "internal.h"
#include "ringmpsc/wait.h"

typedef int (*rmpsc__try_fn)(void *arg);

struct rmpsc__sleep {
	_Atomic uint32_t *waiters; /* count the sleeper registers in (E4) */
	_Atomic uint32_t *seq;     /* futex word the waker bumps (E5) */
};

/* Yield, sleep or futex phases (wait.c); returns as rmpsc__wait_run(). */
RMPSC__INTERNAL int rmpsc__wait_idle(const rmpsc_wait *w, uint64_t deadline,
				     const struct rmpsc__sleep *sl, rmpsc__try_fn fn,
				     void *arg);

/* The effective relative timeout: RMPSC_WAIT_DEADLINE caps it. */
static inline int64_t rmpsc__wait_timeout(const rmpsc_wait *w, int64_t timeout_ns)
{
	if (w->kind == RMPSC_WAIT_DEADLINE && (timeout_ns < 0 || timeout_ns > w->timeout_ns))
		return w->timeout_ns;
	return timeout_ns;
}

/*
 * Wait as @w says until @fn returns something other than -EAGAIN (returned)
 * or @timeout_ns passes (-ETIMEDOUT). @fn has been tried once by the caller
 * and returned -EAGAIN. Inline so that, for a constant @fn, the spin phase
 * polls the ring without an indirect call.
 */
static RMPSC__ALWAYS_INLINE int rmpsc__wait_run(const rmpsc_wait *w, int64_t timeout_ns,
						const struct rmpsc__sleep *sl,
						rmpsc__try_fn fn, void *arg)
{
	uint64_t deadline;
	uint32_t i;
	int r;

	timeout_ns = rmpsc__wait_timeout(w, timeout_ns);
	if (timeout_ns == 0)
		return -ETIMEDOUT;
	deadline = rmpsc__deadline(timeout_ns);
	for (i = 0; w->kind == RMPSC_WAIT_SPIN || i < w->spin_count; i++) {
		if (w->kind == RMPSC_WAIT_BACKOFF) {
			uint32_t k = 1u << (i < 6 ? i : 6);

			while (k--)
				rmpsc__cpu_relax();
		} else {
			rmpsc__cpu_relax();
		}
		r = fn(arg);
		if (r != -EAGAIN)
			return r;
		/* The clock costs more than a poll: look at it every 64. */
		if ((i & 63) == 63 && deadline != UINT64_MAX && rmpsc__now_ns() >= deadline)
			return -ETIMEDOUT;
	}
	return rmpsc__wait_idle(w, deadline, sl, fn, arg);
}

#endif /* RMPSC_WAIT_CORE_H */
