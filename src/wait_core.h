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

/* Where a blocking call waits: the words that change when it may proceed,
 * and the ones it sleeps on. */
struct rmpsc__waitsite {
	const _Atomic uint64_t *watch; /* the other side's index; NULL: none
					* (a channel), try on every poll */
	const _Atomic uint32_t *closed;
	_Atomic uint32_t *waiters;     /* count the sleeper registers in (E4) */
	_Atomic uint32_t *seq;         /* futex word the waker bumps (E5) */
	uint32_t barrier;              /* the wakers' RMPSC__BARRIER_* (E4) */
	/* The try of the idle phases (yield, sleep, futex), when it must look
	 * further than @fn (a channel's consumer: every ring, adaptive skip or
	 * not, before it gives up the CPU); NULL: fn. */
	rmpsc__try_fn sleep_fn;
};

/* Yield, sleep or futex phases (wait.c); returns as rmpsc__wait_run(). */
RMPSC__INTERNAL int rmpsc__wait_idle(const rmpsc_wait *w, uint64_t deadline,
				     const struct rmpsc__waitsite *ws, rmpsc__try_fn fn,
				     void *arg);

/* The effective relative timeout: RMPSC_WAIT_DEADLINE caps it. */
static inline int64_t rmpsc__wait_timeout(const rmpsc_wait *w, int64_t timeout_ns)
{
	if (w->kind == RMPSC_WAIT_DEADLINE && (timeout_ns < 0 || timeout_ns > w->timeout_ns))
		return w->timeout_ns;
	return timeout_ns;
}

/*
 * Try @fn until it returns something other than -EAGAIN (returned), waiting
 * between tries as @w says, or until @timeout_ns passes (-ETIMEDOUT; a
 * timeout of 0 tries once). Inline, so that for a constant @fn the spin
 * phase is a loop over two loads and a pause: it watches the other side's
 * index and the closed flag, both read before the try, and tries again only
 * when one of them has changed. Reading them first is what makes that safe:
 * a change after the try fails is a change from the values read.
 */
static RMPSC__ALWAYS_INLINE int rmpsc__wait_run(const rmpsc_wait *w, int64_t timeout_ns,
						const struct rmpsc__waitsite *ws,
						rmpsc__try_fn fn, void *arg)
{
	uint64_t deadline = UINT64_MAX;
	uint32_t polls = 0;
	int r;

	for (;;) {
		/* Relaxed: only a hint of change; the try does the acquire. */
		uint64_t seen = ws->watch ? atomic_load_explicit(ws->watch, memory_order_relaxed) : 0;
		uint32_t cl = atomic_load_explicit(ws->closed, memory_order_relaxed);

		r = fn(arg);
		if (r != -EAGAIN)
			return r;
		if (deadline == UINT64_MAX) {
			timeout_ns = rmpsc__wait_timeout(w, timeout_ns);
			if (timeout_ns == 0)
				return -ETIMEDOUT;
			deadline = rmpsc__deadline(timeout_ns);
		}
		do {
			if (w->kind != RMPSC_WAIT_SPIN && polls >= w->spin_count)
				return rmpsc__wait_idle(w, deadline, ws, fn, arg);
			if (w->kind == RMPSC_WAIT_BACKOFF) {
				uint32_t k = 1u << (polls < 6 ? polls : 6);

				while (k--)
					rmpsc__cpu_relax();
			} else {
				rmpsc__cpu_relax();
			}
			/* The clock costs more than a poll: look at it every 64. */
			if ((++polls & 63) == 0 && deadline != UINT64_MAX &&
			    rmpsc__now_ns() >= deadline)
				return -ETIMEDOUT;
		} while (ws->watch &&
			 atomic_load_explicit(ws->watch, memory_order_relaxed) == seen &&
			 atomic_load_explicit(ws->closed, memory_order_relaxed) == cl);
	}
}

#endif /* RMPSC_WAIT_CORE_H */
