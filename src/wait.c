/* SPDX-License-Identifier: MIT */
/*
 * Waiting, and nothing else: strategies, the idle phases of the blocking
 * calls, the backoff helper, futex sleep/wake and the barrier modes.
 *
 * Synchronization
 * ---------------
 * rmpsc__barrier_mode  written once by the load-time constructor, before
 *         any other thread of the library can run; read (plain) when a
 *         ring or notifier is created, which keeps its own copy.
 * A ring's waiter counts and futex words: see ring_core.h (E4, E5). Here:
 *   the sleeper's side of E4 is rmpsc__wait_idle()'s "waiters++; heavy
 *   barrier; try"; the waker's side is rc_publish()/rc_after_release()
 *   in ring_core.h and the FUTEX_WAKE in rmpsc__futex_wake_all();
 *   E5 release is the fetch_add in rmpsc__futex_wake_all(), E5 acquire the
 *   load of the word before the sleeper registers.
 */
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "wait_core.h"

uint32_t rmpsc__barrier_mode = RMPSC__BARRIER_FENCE;

/* Register for expedited private membarrier once, at load time: later the
 * command cannot fail, so the hot paths may rely on it. */
__attribute__((constructor)) static void wait_setup(void)
{
	long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);

	if (cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
	    (cmds & MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) &&
	    syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0)
		rmpsc__barrier_mode = RMPSC__BARRIER_ASYM;
}

void rmpsc__heavy_barrier(uint32_t mode)
{
	atomic_thread_fence(memory_order_seq_cst);
	if (mode == RMPSC__BARRIER_ASYM)
		(void)syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
	else if (mode == RMPSC__BARRIER_SHARED_GLOBAL)
		(void)syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0);
}

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int global_err;

static void global_register(void)
{
	long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);

	if (cmds < 0 || !(cmds & MEMBARRIER_CMD_GLOBAL_EXPEDITED) ||
	    !(cmds & MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) ||
	    syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0, 0) != 0)
		global_err = -EOPNOTSUPP;
}

int rmpsc__barrier_global_register(void)
{
	pthread_once(&global_once, global_register);
	return global_err;
}

uint64_t rmpsc__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int rmpsc__futex_wait_as(_Atomic uint32_t *word, uint32_t expect, uint64_t deadline,
			 uint32_t mode)
{
	int op = mode & RMPSC__BARRIER_SHARED ? FUTEX_WAIT_BITSET : FUTEX_WAIT_BITSET_PRIVATE;
	struct timespec ts;
	long rc;

	if (deadline != UINT64_MAX)
		ts = rmpsc__ns_to_ts(deadline);
	/* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time, so a wait
	 * resumed after a signal keeps the original deadline. */
	rc = syscall(SYS_futex, (uint32_t *)word, op, expect,
		     deadline == UINT64_MAX ? NULL : &ts, NULL, FUTEX_BITSET_MATCH_ANY);
	if (rc < 0 && errno == ETIMEDOUT)
		return -ETIMEDOUT;
	return 0; /* woken, value changed (EAGAIN) or interrupted (EINTR) */
}

void rmpsc__futex_wake_all_as(_Atomic uint32_t *word, uint32_t mode)
{
	int op = mode & RMPSC__BARRIER_SHARED ? FUTEX_WAKE : FUTEX_WAKE_PRIVATE;

	/* E5 release: the waker's state change before the new value. */
	atomic_fetch_add_explicit(word, 1, memory_order_release);
	(void)syscall(SYS_futex, (uint32_t *)word, op, INT_MAX, NULL, NULL, 0);
}

int rmpsc__futex_wait(_Atomic uint32_t *word, uint32_t expect, uint64_t deadline)
{
	return rmpsc__futex_wait_as(word, expect, deadline, RMPSC__BARRIER_FENCE);
}

void rmpsc__futex_wake_all(_Atomic uint32_t *word)
{
	rmpsc__futex_wake_all_as(word, RMPSC__BARRIER_FENCE);
}

/* ---- strategies ---------------------------------------------------------- */

enum {
	WAIT_SLEEP_MAX = 1000000000, /* 1 s */
	WAIT_DEFAULT_SLEEP = 50000,
	WAIT_DEFAULT_TIMEOUT = 1000000,
};

static void wait_defaults(rmpsc_wait *w, uint32_t kind)
{
	w->size = sizeof *w;
	w->kind = kind;
	w->spin_count = kind == RMPSC_WAIT_SPIN ? 0 : RMPSC_WAIT_DEFAULT_SPIN;
	w->yield_count = RMPSC_WAIT_DEFAULT_YIELD;
	w->sleep_ns = WAIT_DEFAULT_SLEEP;
	w->timeout_ns = WAIT_DEFAULT_TIMEOUT;
}

void rmpsc__wait_default(rmpsc_wait *w)
{
	wait_defaults(w, RMPSC_WAIT_BLOCK);
}

int rmpsc_wait_init(rmpsc_wait *w, uint32_t size, uint32_t kind)
{
	rmpsc_wait d;

	RMPSC__CHECK(kind > RMPSC_WAIT_KIND_MAX, -EINVAL);
	wait_defaults(&d, kind);
	return rmpsc__size_out(w, size, &d, sizeof d, RMPSC_WAIT_CONFIG_SIZE_V1);
}

static int wait_check_fields(const rmpsc_wait *w)
{
	RMPSC__CHECK(w->kind > RMPSC_WAIT_KIND_MAX, -EINVAL);
	RMPSC__CHECK(w->kind == RMPSC_WAIT_SLEEP &&
			     (w->sleep_ns < 1 || w->sleep_ns > WAIT_SLEEP_MAX),
		     -EINVAL);
	RMPSC__CHECK(w->kind == RMPSC_WAIT_DEADLINE && w->timeout_ns < 0, -EINVAL);
	return 0;
}

int rmpsc__wait_resolve(const rmpsc_wait *w, const rmpsc_wait *dflt, rmpsc_wait *out)
{
	int err;

	if (!w) {
		*out = *dflt;
		return 0;
	}
	/* The common case, a struct of this library's size, without the
	 * byte-wise size rules. */
	if (RMPSC__LIKELY(w->size == sizeof *w)) {
		*out = *w;
	} else {
		wait_defaults(out, RMPSC_WAIT_BLOCK);
		err = rmpsc__config_copy(out, sizeof *out, w, RMPSC_WAIT_CONFIG_SIZE_V1);
		if (err)
			return err;
		out->size = sizeof *out;
	}
	return wait_check_fields(out);
}

int rmpsc_wait_validate(const rmpsc_wait *w)
{
	rmpsc_wait d, tmp;

	RMPSC__CHECK(!w, -EINVAL);
	wait_defaults(&d, RMPSC_WAIT_BLOCK);
	return rmpsc__wait_resolve(w, &d, &tmp);
}

/* ---- the idle phases ----------------------------------------------------- */

static bool past(uint64_t deadline)
{
	return deadline != UINT64_MAX && rmpsc__now_ns() >= deadline;
}

/* One last look when the time is up: a result that arrived just now wins. */
static int timed_out(rmpsc__try_fn fn, void *arg)
{
	int r = fn(arg);

	return r == -EAGAIN ? -ETIMEDOUT : r;
}

/*
 * RMPSC_WAIT_SLEEP: poll every sleep_ns. The sleep is a futex wait on the
 * side's word with sleep_ns as its timeout, without registering as a
 * waiter: the other side's publications do not wake it (that is what
 * polling means, and what keeps them free of system calls), but a close,
 * which always bumps both words (E5), ends it at once.
 */
static int idle_sleep(const rmpsc_wait *w, uint64_t deadline, const struct rmpsc__waitsite *sl,
		      rmpsc__try_fn fn, void *arg)
{
	for (;;) {
		/* E5 acquire, before the try: a close that bumped the word
		 * earlier is seen by the try, a later one by FUTEX_WAIT. */
		uint32_t seq = atomic_load_explicit(sl->seq, memory_order_acquire);
		uint64_t now, until;
		int r = fn(arg);

		if (r != -EAGAIN)
			return r;
		now = rmpsc__now_ns();
		if (now >= deadline)
			return -ETIMEDOUT;
		until = deadline - now > (uint64_t)w->sleep_ns ? now + (uint64_t)w->sleep_ns
							      : deadline;
		/* Woken, timed out, changed or interrupted: look again. */
		(void)rmpsc__futex_wait_as(sl->seq, seq, until, sl->barrier);
	}
}

static int idle_futex(uint64_t deadline, const struct rmpsc__waitsite *sl, rmpsc__try_fn fn,
		      void *arg)
{
	for (;;) {
		/* E5 acquire: a wake that bumped the word before this load is
		 * seen, with its state change, by the try below. */
		uint32_t seq = atomic_load_explicit(sl->seq, memory_order_acquire);
		int r, t = 0;

		/* E4: register, then the heavy barrier, then look again. */
		atomic_fetch_add_explicit(sl->waiters, 1, memory_order_seq_cst);
		rmpsc__heavy_barrier(sl->barrier);
		r = fn(arg);
		if (r == -EAGAIN)
			t = rmpsc__futex_wait_as(sl->seq, seq, deadline, sl->barrier);
		atomic_fetch_sub_explicit(sl->waiters, 1, memory_order_relaxed);
		if (r != -EAGAIN)
			return r;
		if (t == -ETIMEDOUT)
			return timed_out(fn, arg);
		r = fn(arg);
		if (r != -EAGAIN)
			return r;
		if (past(deadline))
			return -ETIMEDOUT;
	}
}

int rmpsc__wait_idle(const rmpsc_wait *w, uint64_t deadline, const struct rmpsc__waitsite *sl,
		     rmpsc__try_fn fn, void *arg)
{
	uint32_t i;
	int r;

	/* Each poll from here on gives up the CPU first: it looks everywhere. */
	if (sl->sleep_fn)
		fn = sl->sleep_fn;
	for (i = 0; w->kind == RMPSC_WAIT_YIELD || i < w->yield_count; i++) {
		sched_yield();
		r = fn(arg);
		if (r != -EAGAIN)
			return r;
		if (past(deadline))
			return -ETIMEDOUT;
	}
	switch (w->kind) {
	case RMPSC_WAIT_SLEEP:
		return idle_sleep(w, deadline, sl, fn, arg);
	case RMPSC_WAIT_BLOCK:
	case RMPSC_WAIT_DEADLINE:
	case RMPSC_WAIT_BACKOFF:
		return idle_futex(deadline, sl, fn, arg);
	default:
		/* SPIN never leaves the spin phase, YIELD the loop above. */
		return -ETIMEDOUT;
	}
}

/* ---- backoff helper ------------------------------------------------------ */

enum {
	BACKOFF_SPIN_DEFAULT = 6,
	BACKOFF_YIELD_DEFAULT = 10,
	BACKOFF_SPIN_MAX = 16,
	BACKOFF_YIELD_MAX = 64,
};

static bool backoff_ok(const rmpsc_backoff *b)
{
	return b && b->spin_limit <= BACKOFF_SPIN_MAX && b->yield_limit <= BACKOFF_YIELD_MAX &&
	       b->yield_limit >= b->spin_limit && b->step <= b->yield_limit + 1 && !b->_pad0;
}

int rmpsc_backoff_init(rmpsc_backoff *b, uint32_t spin_limit, uint32_t yield_limit)
{
	RMPSC__CHECK(!b, -EINVAL);
	if (!spin_limit)
		spin_limit = BACKOFF_SPIN_DEFAULT;
	if (!yield_limit)
		yield_limit = spin_limit > BACKOFF_YIELD_DEFAULT ? spin_limit
								 : BACKOFF_YIELD_DEFAULT;
	RMPSC__CHECK(spin_limit > BACKOFF_SPIN_MAX || yield_limit > BACKOFF_YIELD_MAX ||
			     yield_limit < spin_limit,
		     -EINVAL);
	b->step = 0;
	b->spin_limit = spin_limit;
	b->yield_limit = yield_limit;
	b->_pad0 = 0;
	return 0;
}

static void backoff_pause(const rmpsc_backoff *b)
{
	uint32_t e = b->step < b->spin_limit ? b->step : b->spin_limit;

	for (uint32_t k = 1u << e; k; k--)
		rmpsc__cpu_relax();
}

int rmpsc_backoff_spin(rmpsc_backoff *b)
{
	RMPSC__CHECK(!backoff_ok(b), -EINVAL);
	backoff_pause(b);
	if (b->step <= b->spin_limit)
		b->step++;
	return 0;
}

int rmpsc_backoff_snooze(rmpsc_backoff *b)
{
	RMPSC__CHECK(!backoff_ok(b), -EINVAL);
	if (b->step <= b->spin_limit)
		backoff_pause(b);
	else
		sched_yield();
	if (b->step <= b->yield_limit)
		b->step++;
	return 0;
}

int rmpsc_backoff_is_completed(const rmpsc_backoff *b)
{
	RMPSC__CHECK(!b, -EINVAL);
	return b->step > b->yield_limit;
}

int rmpsc_backoff_reset(rmpsc_backoff *b)
{
	RMPSC__CHECK(!b, -EINVAL);
	b->step = 0;
	return 0;
}
