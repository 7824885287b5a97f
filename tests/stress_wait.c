/* SPDX-License-Identifier: MIT */
/*
 * Stress for the blocking calls (ctest label "stress").
 *
 * (1) Lost wake-ups: a producer and a consumer move numbered items through
 *     a tiny ring (capacity 1, 2, 4, 8) using only the _timed calls with
 *     RMPSC_WAIT_BLOCK and spin/yield counts so small that they reach the
 *     futex all the time: push_timed, push_n_timed and reserve_timed +
 *     commit on one side, pop_timed, pop_n_timed and readable_timed +
 *     advance on the other, almost always with no time limit. Pauses
 *     (xorshift: mostly nothing, sometimes a nanosleep of a few us, in
 *     phases where one side is much slower than the other) make both sides
 *     sleep. The consumer checks the exact sequence. A wake-up that is lost
 *     leaves both threads asleep: the main thread watches the positions and
 *     fails the case (printing both) after 20 s without progress. 10 M
 *     items in all (the split favours the larger rings: with capacity 1
 *     every item costs a sleep and a wake-up on each side).
 * (2) Close while blocked: a third thread (the main one) closes while the
 *     producer sleeps for room and the consumer sleeps for data (on two
 *     rings, as one ring cannot be full and empty at once), or while both
 *     run freely; thousands of rounds, every wait kind. Both sides must
 *     return -EPIPE (watchdog again), the consumer must receive exactly
 *     what the producer was told it pushed, and its -EPIPE is final.
 * (3) The other kinds (SPIN, YIELD, SLEEP, BACKOFF, DEADLINE) and a buffer
 *     of four times the capacity under the same sequence check.
 *
 * No timing is asserted; times are printed. Set RMPSC_STRESS_SEED to vary
 * the seed.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include <cmocka.h>

#include "ringmpsc/ring.h"
#include "ringmpsc/wait.h"

#define STRESS_SEED 0x9e3779b97f4a7c15ull
#include "test_util.h" /* stress_seed(), xs_next(), STRESS_SCALE, ... */
/* Elements per batch call of the sequence runs at most (their buffers). */
#define RUN_BUF 64u
/* No progress for this long: a wake-up was lost. */
#define WATCHDOG_SEC 20
#define MS 1000000ll
#define US 1000ll

/* ---- common -------------------------------------------------------------- */

/* Where a thread is, for the watchdog's message. */
enum where {
	W_IDLE, W_PUSH, W_PUSH_N, W_RESERVE, W_POP, W_POP_N, W_READABLE, W_PAUSE,
	W_OTHER_RING, W_DRAIN, W_DONE,
};

static const char *const where_names[] = {
	"between calls", "push_timed", "push_n_timed", "reserve_timed",
	"pop_timed", "pop_n_timed", "readable_timed", "a pause",
	"the wait on the other ring", "the final drain", "done",
};

/* Relaxed loads for the watchdog and for results read after a join. */
static inline uint64_t ld(_Atomic uint64_t *a)
{
	return atomic_load_explicit(a, memory_order_relaxed);
}

static inline int ldi(_Atomic int *a)
{
	return atomic_load_explicit(a, memory_order_relaxed);
}

/* Release: the close rounds poll it with acquire (ready_*()). */
static inline void set_where(_Atomic int *w, int v)
{
	atomic_store_explicit(w, v, memory_order_release);
}

/* ---- (1) and (3): sequence runs ------------------------------------------ */

struct side_stats {
	uint64_t one, batch, span, partial, timeouts, pauses, calls;
};

struct run {
	/* Set before the threads start. */
	rmpsc_ring *r;
	uint32_t cap;
	uint32_t slots;
	uint64_t total;
	uint64_t seed;
	rmpsc_wait wp, wc;     /* the explicit strategies of each side */
	bool may_time_out;     /* DEADLINE: -ETIMEDOUT on an unlimited call */
	bool finite_timeouts;  /* sometimes pass 0 or a few us */

	char _pad0[64];
	atomic_int failed;
	atomic_bool prod_done;
	atomic_bool cons_done;
	char _pad1[64];
	_Atomic uint64_t prod_pos; /* items published */
	_Atomic int prod_where;
	char _pad2[64];
	_Atomic uint64_t cons_pos; /* items received */
	_Atomic int cons_where;
	char _pad3[64];

	char msg[600];
	struct side_stats ps, cs;
};

/* After a failure: the close frees the other side if it sleeps, and every
 * loop then ends. */
static void run_close(void *arg, int first)
{
	(void)first;
	rmpsc_ring_close(((struct run *)arg)->r);
}

#define run_fail(st, ...) FAIL_RECORD(st, run_close, __VA_ARGS__)

static bool run_failed(struct run *st)
{
	return ldi(&st->failed) != 0;
}

/* Seven times in eight no limit; else a try, a few us, or a long one. */
static int64_t pick_timeout(uint64_t *rng, bool finite)
{
	uint64_t x = xs_next(rng) >> 40;

	if (!finite || (x & 7))
		return (x & 0x700) ? -1 : INT64_MIN;
	switch ((x >> 3) & 3) {
	case 0: return 0;
	case 1: return 1 + (int64_t)((x >> 5) % (10 * US));
	case 2: return (int64_t)((x >> 5) % (200 * US));
	default: return INT64_MAX;
	}
}

/*
 * Pauses in phases of 16 Ki items: both sides rarely pause, the producer
 * pauses often (the consumer sleeps for data), the consumer pauses often
 * (the producer sleeps for room), or neither pauses.
 */
static void maybe_pause(uint64_t *rng, uint64_t pos, bool producer, _Atomic int *where,
			struct side_stats *s)
{
	const uint32_t phase = (uint32_t)(pos >> 14) & 3;
	const uint64_t x = xs_next(rng) >> 20;
	uint32_t shift;

	if (phase == 3)
		return;
	if (phase == 0)
		shift = 7;
	else
		shift = (phase == 1) == producer ? 2 : 9;
	if (x & ((1u << shift) - 1))
		return;
	s->pauses++;
	atomic_store_explicit(where, W_PAUSE, memory_order_relaxed);
	if ((x >> 12) & 1)
		sched_yield();
	else
		sleep_ns(1 * US + (int64_t)((x >> 13) % (6 * US)));
}

static bool span_ok(struct run *st, const rmpsc_span *s, uint32_t n, uint64_t pos,
		    const char *who)
{
	const uint64_t idx = pos & (st->slots - 1);
	const uint64_t room = st->slots - idx;
	const uint32_t c0 = n < room ? n : (uint32_t)room;
	const uint32_t c1 = n - c0;

	if (s->pos != pos || s->count[0] != c0 || s->count[1] != c1 ||
	    s->nseg != (c1 ? 2u : 1u) || s->iov[0].iov_len != (size_t)c0 * 8 ||
	    s->iov[1].iov_len != (size_t)c1 * 8) {
		run_fail(st, "%s: span of %u at pos %" PRIu64 " is pos %" PRIu64
			 " count %u+%u nseg %u (want %u+%u, %u slots)", who, n, pos,
			 s->pos, s->count[0], s->count[1], s->nseg, c0, c1, st->slots);
		return false;
	}
	return true;
}

static const rmpsc_wait *pick_wait(uint64_t *rng, const rmpsc_wait *w)
{
	return (xs_next(rng) >> 63) ? w : NULL;
}

/* A wait that ended without the item: allowed for a limited call (and
 * every call of a DEADLINE strategy), else a failure. */
static bool timeout_ok(struct run *st, int64_t timeout, const char *who, const char *call)
{
	if (timeout >= 0 || st->may_time_out)
		return true;
	run_fail(st, "%s: %s with no time limit returned -ETIMEDOUT", who, call);
	return false;
}

/* An op already reported its failure. */
#define BROKEN INT_MIN

/* Every op returns the items it moved (>= 1), a negative code of the call,
 * or BROKEN. */
static bool cons_check(struct run *st, uint64_t expect, const uint64_t *vals, uint32_t n,
		       const char *what);

/* A single-element call returned @rc: its code, BROKEN if the element
 * taken (@v, the consumer's) is not @expect, else 1. */
static int one_moved(struct run *st, int rc, const uint64_t *v, uint64_t expect,
		     const char *what, struct side_stats *s)
{
	if (rc != 0)
		return rc;
	if (v && !cons_check(st, expect, v, 1, what))
		return BROKEN;
	s->one++;
	return 1;
}

static int prod_push1(struct run *st, uint64_t next, int64_t timeout, const rmpsc_wait *w,
		      struct side_stats *s)
{
	set_where(&st->prod_where, W_PUSH);
	return one_moved(st, rmpsc_ring_push_timed(st->r, &next, timeout, w), NULL, 0,
			 NULL, s);
}

static int prod_push_n(struct run *st, uint64_t next, uint32_t n, int64_t timeout,
		       const rmpsc_wait *w, struct side_stats *s)
{
	uint64_t buf[RUN_BUF];
	bool partial_ok = timeout >= 0 || st->may_time_out;
	int rc;

	for (uint32_t k = 0; k < n; k++)
		buf[k] = next + k;
	set_where(&st->prod_where, W_PUSH_N);
	rc = rmpsc_ring_push_n_timed(st->r, buf, n, timeout, w);
	if (rc == 0 || rc > (int)n || (rc > 0 && rc < (int)n && !partial_ok)) {
		run_fail(st, "producer: push_n_timed(%u, %" PRId64 ") returned %d", n,
			 timeout, rc);
		return BROKEN;
	}
	if (rc > 0) {
		s->batch++;
		s->partial += rc != (int)n;
	}
	return rc;
}

/*
 * The zero-copy step of either side: reserve, write in place and commit
 * (producer), or readable, check in place and advance (consumer), all or
 * (one time in four) a part; the rest is abandoned to the next reserve or
 * push, or read again by the next call.
 */
static int span_step(struct run *st, bool producer, uint64_t *rng, uint64_t pos, uint32_t n,
		     int64_t timeout, const rmpsc_wait *w, struct side_stats *s)
{
	const char *who = producer ? "producer" : "consumer";
	rmpsc_span sp;
	uint32_t c;
	int rc;

	set_where(producer ? &st->prod_where : &st->cons_where,
		  producer ? W_RESERVE : W_READABLE);
	rc = producer ? rmpsc_ring_reserve_timed(st->r, n, &sp, timeout, w)
		      : rmpsc_ring_readable_timed(st->r, n, &sp, timeout, w);
	if (rc < 0)
		return rc;
	if (rc == 0 || rc > (int)n) {
		run_fail(st, "%s: %s_timed(%u) returned %d", who,
			 producer ? "reserve" : "readable", n, rc);
		return BROKEN;
	}
	if (!span_ok(st, &sp, (uint32_t)rc, pos, who))
		return BROKEN;
	for (uint32_t k = 0; k < (uint32_t)rc; k++) {
		if (producer) {
			span_put_u64(&sp, k, pos + k);
		} else if (span_get_u64(&sp, k) != pos + k) {
			run_fail(st,
				 "consumer: readable_timed: item %" PRIu64 " is %" PRIu64,
				 pos + k, span_get_u64(&sp, k));
			return BROKEN;
		}
	}
	c = (uint32_t)rc;
	if (!(xs_next(rng) & 3)) {
		c = 1 + (uint32_t)((xs_next(rng) >> 33) % c);
		s->partial += c != (uint32_t)rc;
	}
	rc = producer ? rmpsc_ring_commit(st->r, c) : rmpsc_ring_advance(st->r, c);
	if (rc != 0) {
		run_fail(st, "%s: %s(%u) returned %d", who,
			 producer ? "commit" : "advance", c,
			 rc);
		return BROKEN;
	}
	s->span++;
	return (int)c;
}

/*
 * What one side's step returned (@rc: items moved, or a code): the items
 * advance @pos, -ETIMEDOUT is counted (and must be allowed), the
 * consumer's -EPIPE must come after every item. 1 to go on, 0 to stop
 * (the end, or a failure recorded).
 */
static int side_after(struct run *st, bool producer, uint32_t op, uint32_t n,
		      int64_t timeout,
		      int rc, uint64_t *pos, struct side_stats *s)
{
	const char *who = producer ? "producer" : "consumer";

	set_where(producer ? &st->prod_where : &st->cons_where, W_IDLE);
	if (rc > 0) {
		*pos += (uint64_t)rc;
		/* Relaxed: read by the watchdog only. */
		atomic_store_explicit(producer ? &st->prod_pos : &st->cons_pos, *pos,
				      memory_order_relaxed);
		return 1;
	}
	if (rc == -EPIPE && !producer) {
		if (*pos != st->total)
			run_fail(st,
				 "consumer: -EPIPE after %" PRIu64 " of %" PRIu64 " items",
				 *pos, st->total);
		return 0;
	}
	if (rc == -ETIMEDOUT) {
		s->timeouts++;
		return timeout_ok(st, timeout, who, producer ? "a push" : "a pop");
	}
	if (rc != BROKEN)
		run_fail(st, "%s: op %u (n %u, timeout %" PRId64 ") at item %" PRIu64
			 " returned %d (%s)", who, op, n, timeout, *pos, rc, errname(rc));
	return 0;
}

/* The side is done: its counts for the report, its flag for the watchdog. */
static void side_done(struct run *st, bool producer, const struct side_stats *s)
{
	if (producer)
		st->ps = *s;
	else
		st->cs = *s;
	set_where(producer ? &st->prod_where : &st->cons_where, W_DONE);
	atomic_store_explicit(producer ? &st->prod_done : &st->cons_done, true,
			      memory_order_release);
}

static void *run_producer(void *arg)
{
	struct run *st = arg;
	uint64_t rng = st->seed ^ 0x70726f64ull, next = 0;
	struct side_stats s = { 0 };

	while (next < st->total && !run_failed(st)) {
		const uint64_t left = st->total - next;
		const uint32_t op = (uint32_t)(xs_next(&rng) >> 60);
		const int64_t timeout = pick_timeout(&rng, st->finite_timeouts);
		const rmpsc_wait *w = pick_wait(&rng, &st->wp);
		uint32_t n = pick_n(&rng, 8, 2 * st->cap < RUN_BUF ? 2 * st->cap : RUN_BUF);
		int rc;

		if (n > left)
			n = (uint32_t)left;
		s.calls++;
		if (op < 5)
			rc = prod_push1(st, next, timeout, w, &s);
		else if (op < 10)
			rc = prod_push_n(st, next, n, timeout, w, &s);
		else
			rc = span_step(st, true, &rng, next, n, timeout, w, &s);
		if (!side_after(st, true, op, n, timeout, rc, &next, &s))
			break;
		maybe_pause(&rng, next, true, &st->prod_where, &s);
	}
	if (!run_failed(st)) {
		uint64_t v = 0;
		int rc = rmpsc_ring_close(st->r);

		if (rc)
			run_fail(st, "producer: close returned %d", rc);
		else if ((rc = rmpsc_ring_push_timed(st->r, &v, -1, NULL)) != -EPIPE)
			run_fail(st, "producer: push_timed after close returned %d", rc);
	}
	side_done(st, true, &s);
	return NULL;
}

static bool cons_check(struct run *st, uint64_t expect, const uint64_t *vals, uint32_t n,
		       const char *what)
{
	for (uint32_t k = 0; k < n; k++) {
		if (vals[k] != expect + k) {
			run_fail(st, "consumer: %s: item %" PRIu64 " is %" PRIu64, what,
				 expect + k, vals[k]);
			return false;
		}
	}
	return true;
}

static int cons_pop1(struct run *st, uint64_t expect, int64_t timeout,
		     const rmpsc_wait *w, struct side_stats *s)
{
	uint64_t v = ~0ull;
	int rc;

	set_where(&st->cons_where, W_POP);
	rc = rmpsc_ring_pop_timed(st->r, &v, timeout, w);
	return one_moved(st, rc, &v, expect, "pop_timed", s);
}

/* The try pop (on rings of capacity >= 1024 it releases in batches, see
 * ring.h), polled until it takes one: the producer meanwhile sleeps for
 * room and must be woken by the batched release. */
static int cons_pop_try(struct run *st, uint64_t expect, struct side_stats *s)
{
	uint64_t v = ~0ull;
	unsigned polls = 0;
	int rc;

	set_where(&st->cons_where, W_POP);
	while ((rc = rmpsc_ring_pop(st->r, &v)) == -EAGAIN) {
		if (run_failed(st))
			return BROKEN;
		if (++polls % 64 == 0)
			sched_yield();
	}
	return one_moved(st, rc, &v, expect, "pop", s);
}

static int cons_pop_n(struct run *st, uint64_t expect, uint32_t n, int64_t timeout,
		      const rmpsc_wait *w, struct side_stats *s)
{
	uint64_t buf[RUN_BUF];
	int rc;

	set_where(&st->cons_where, W_POP_N);
	rc = rmpsc_ring_pop_n_timed(st->r, buf, n, timeout, w);
	if (rc < 0)
		return rc;
	if (rc == 0 || rc > (int)n) {
		run_fail(st, "consumer: pop_n_timed(%u) returned %d", n, rc);
		return BROKEN;
	}
	if (!cons_check(st, expect, buf, (uint32_t)rc, "pop_n_timed"))
		return BROKEN;
	s->batch++;
	return rc;
}

static void *run_consumer(void *arg)
{
	struct run *st = arg;
	uint64_t rng = st->seed ^ 0x636f6e73ull, expect = 0;
	struct side_stats s = { 0 };
	int rc;

	while (!run_failed(st)) {
		const uint32_t op = (uint32_t)(xs_next(&rng) >> 60);
		const int64_t timeout = pick_timeout(&rng, st->finite_timeouts);
		const rmpsc_wait *w = pick_wait(&rng, &st->wc);
		const uint32_t n = pick_n(&rng, 8,
					  2 * st->cap < RUN_BUF ? 2 * st->cap : RUN_BUF);

		s.calls++;
		if (op < 4)
			rc = cons_pop1(st, expect, timeout, w, &s);
		else if (op < 5)
			rc = cons_pop_try(st, expect, &s);
		else if (op < 10)
			rc = cons_pop_n(st, expect, n, timeout, w, &s);
		else
			rc = span_step(st, false, &rng, expect, n, timeout, w, &s);
		if (!side_after(st, false, op, n, timeout, rc, &expect, &s))
			break;
		maybe_pause(&rng, expect, false, &st->cons_where, &s);
	}
	if (!run_failed(st)) {
		uint64_t v[4];

		/* Closed after the last commit: -EPIPE from now on. */
		if ((rc = rmpsc_ring_pop_timed(st->r, v, -1, NULL)) != -EPIPE ||
		    (rc = rmpsc_ring_pop_n_timed(st->r, v, 4, 0, NULL)) != -EPIPE)
			run_fail(st, "consumer: a pop after -EPIPE returned %d", rc);
	}
	side_done(st, false, &s);
	return NULL;
}

/*
 * Wait for both threads, watching their positions. Returns false if they
 * are stuck for good (then they are left running and their memory leaked,
 * since they may still touch it).
 */
/* What watch() watches: both sides of a run or a round. */
struct sides_watch {
	const char *name;
	rmpsc_ring *r;
	_Atomic uint64_t *ppos, *cpos;
	_Atomic int *pwhere, *cwhere;
	atomic_bool *pdone, *cdone;
	void (*on_stall)(void *, const char *);
	void *arg;
};

static bool sides_done(void *arg)
{
	const struct sides_watch *sw = arg;

	return atomic_load_explicit(sw->pdone, memory_order_acquire) &&
	       atomic_load_explicit(sw->cdone, memory_order_acquire);
}

static uint64_t sides_progress(void *arg)
{
	const struct sides_watch *sw = arg;

	return atomic_load_explicit(sw->ppos, memory_order_relaxed) +
	       atomic_load_explicit(sw->cpos, memory_order_relaxed);
}

static void sides_stall(void *arg, bool first)
{
	const struct sides_watch *sw = arg;
	char msg[400];

	snprintf(msg, sizeof msg,
		 "%s: no progress for %d s, a wake-up was lost: producer at item %" PRIu64
		 " (in %s), consumer at item %" PRIu64 " (in %s), ring len %" PRId64
		 ", closed %d", sw->name, first ? WATCHDOG_SEC : 2 * WATCHDOG_SEC,
		 ld(sw->ppos), where_names[ldi(sw->pwhere)], ld(sw->cpos),
		 where_names[ldi(sw->cwhere)], rmpsc_ring_len(sw->r),
		 rmpsc_ring_is_closed(sw->r));
	fprintf(stderr, "%s\n", msg);
	if (first) {
		sw->on_stall(sw->arg, msg);
		/* A close wakes every sleeper: the case then ends with the
		 * failure recorded above. */
		rmpsc_ring_close(sw->r);
	}
}

static bool watch(const char *name, rmpsc_ring *r, _Atomic uint64_t *ppos,
		  _Atomic uint64_t *cpos, _Atomic int *pwhere, _Atomic int *cwhere,
		  atomic_bool *pdone, atomic_bool *cdone,
		  void (*on_stall)(void *, const char *), void *arg)
{
	struct sides_watch sw = { name, r, ppos, cpos, pwhere, cwhere, pdone, cdone,
				 on_stall,
				  arg };
	/* Short naps first: a close round ends within microseconds. */
	const struct watchdog w = { sides_done, sides_progress, sides_stall, &sw,
				   WATCHDOG_SEC,
				    20 * MS };

	return watchdog_run(&w);
}

static void run_on_stall(void *arg, const char *msg)
{
	run_fail((struct run *)arg, "%s", msg);
}

static void run_case(const char *name, uint32_t cap, uint32_t slots, uint64_t total,
		     rmpsc_wait wp, rmpsc_wait wc, const rmpsc_wait *ring_wait,
		     bool finite_timeouts)
{
	struct run *st = calloc(1, sizeof *st);
	rmpsc_ring_config cfg;
	pthread_t prod, cons;
	int64_t t0;
	double dt;

	assert_non_null(st);
	atomic_init(&st->failed, 0);
	atomic_init(&st->prod_done, false);
	atomic_init(&st->cons_done, false);
	atomic_init(&st->prod_pos, 0);
	atomic_init(&st->cons_pos, 0);
	atomic_init(&st->prod_where, W_IDLE);
	atomic_init(&st->cons_where, W_IDLE);
	st->cap = cap;
	st->slots = slots ? slots : cap;
	st->total = total;
	st->seed = stress_seed() ^ ((uint64_t)cap << 40) ^ wp.kind;
	st->wp = wp;
	st->wc = wc;
	st->may_time_out = wp.kind == RMPSC_WAIT_DEADLINE ||
			   wc.kind == RMPSC_WAIT_DEADLINE ||
			   (ring_wait && ring_wait->kind == RMPSC_WAIT_DEADLINE);
	st->finite_timeouts = finite_timeouts;
	assert_int_equal(rmpsc_ring_config_init(&cfg, sizeof cfg), 0);
	cfg.capacity = cap;
	cfg.elem_size = 8;
	cfg.slots = slots;
	assert_int_equal(rmpsc_ring_create(&cfg, &st->r), 0);
	if (ring_wait)
		assert_int_equal(rmpsc_ring_set_wait(st->r, ring_wait), 0);

	t0 = now_ns();
	assert_int_equal(pthread_create(&cons, NULL, run_consumer, st), 0);
	assert_int_equal(pthread_create(&prod, NULL, run_producer, st), 0);
	if (!watch(name, st->r, &st->prod_pos, &st->cons_pos, &st->prod_where,
		   &st->cons_where, &st->prod_done, &st->cons_done, run_on_stall, st))
		fail_msg("%s: threads still stuck after a close; leaving them", name);
	assert_int_equal(pthread_join(prod, NULL), 0);
	assert_int_equal(pthread_join(cons, NULL), 0);
	dt = (double)(now_ns() - t0) * 1e-9;

	print_message("%s [%s]: capacity %u, slots %u, producer %s spin %u yield %u, "
		      "consumer %s spin %u yield %u: %" PRIu64 " items in %.2f s "
		      "(%.2f M/s)\n", name, STRESS_BUILD, cap, st->slots,
		      wait_kind_name(wp.kind),
		      wp.spin_count, wp.yield_count, wait_kind_name(wc.kind), wc.spin_count,
		      wc.yield_count, ld(&st->cons_pos), dt,
		      dt > 0 ? (double)ld(&st->cons_pos) / dt / 1e6 : 0.0);
	print_message("  producer: %" PRIu64 " calls, push %" PRIu64 ", push_n %" PRIu64
		      ", reserve %" PRIu64 ", partial %" PRIu64 ", timed out %" PRIu64
		      ", pauses %" PRIu64 "\n", st->ps.calls, st->ps.one, st->ps.batch,
		      st->ps.span, st->ps.partial, st->ps.timeouts, st->ps.pauses);
	print_message("  consumer: %" PRIu64 " calls, pop %" PRIu64 ", pop_n %" PRIu64
		      ", readable %" PRIu64 ", partial %" PRIu64 ", timed out %" PRIu64
		      ", pauses %" PRIu64 "\n", st->cs.calls, st->cs.one, st->cs.batch,
		      st->cs.span, st->cs.partial, st->cs.timeouts, st->cs.pauses);
	if (atomic_load_explicit(&st->failed, memory_order_acquire)) {
		char msg[sizeof st->msg];

		memcpy(msg, st->msg, sizeof msg);
		rmpsc_ring_destroy(st->r);
		free(st);
		fail_msg("%s: %s", name, msg);
	}
	assert_int_equal(ld(&st->prod_pos), total);
	assert_int_equal(ld(&st->cons_pos), total);
	assert_true(st->ps.one && st->ps.batch && st->ps.span);
	assert_true(st->cs.one && st->cs.batch && st->cs.span);
	rmpsc_ring_destroy(st->r);
	free(st);
}

/* Short timer slack, so a nanosleep of a few us is a few us. */
static int setup_slack(void **state)
{
	(void)state;
	prctl(PR_SET_TIMERSLACK, 1000ul, 0, 0, 0);
	return 0;
}

/*
 * The sequence runs that differ only in their parameters: (1) BLOCK on both
 * sides, explicit strategies straight to the futex and the ring's after a
 * few polls (spin, yield), tiny rings, where a lost wake-up hangs both; (3)
 * the other kinds, the same strategy everywhere.
 */
struct seq_case {
	const char *name;
	uint32_t kind, cap, spin, yield;
	int64_t sleep, timeout;
	uint64_t total;
};

static const struct seq_case block_cases[] = {
	{ "test_wait_stress_block_capacity_1_loses_no_wakeup", RMPSC_WAIT_BLOCK, 1, 2, 0,
	 0, -1,
	  STRESS_SCALE(500000ull, 100000ull, 50000ull) },
	{ "test_wait_stress_block_capacity_2_loses_no_wakeup", RMPSC_WAIT_BLOCK, 2, 0, 1,
	 0, -1,
	  STRESS_SCALE(1000000ull, 200000ull, 100000ull) },
	{ "test_wait_stress_block_capacity_4_loses_no_wakeup", RMPSC_WAIT_BLOCK, 4, 4, 1,
	 0, -1,
	  STRESS_SCALE(2500000ull, 500000ull, 250000ull) },
	{ "test_wait_stress_block_capacity_8_loses_no_wakeup", RMPSC_WAIT_BLOCK, 8, 1, 0,
	 0, -1,
	  STRESS_SCALE(6000000ull, 1200000ull, 600000ull) },
	/* Rings large enough for the try pop's batched release (ring.h): a
	 * producer asleep for room while the consumer holds up to 31 popped
	 * elements back must still be woken. */
	{ "test_wait_stress_block_capacity_1024_batched_release_loses_no_wakeup",
	  RMPSC_WAIT_BLOCK, 1024, 4, 1, 0, -1, STRESS_SCALE(8000000ull, 2000000ull,
							    1000000ull) },
};

static const struct seq_case kind_cases[] = {
	{ "test_wait_stress_spin_preserves_sequence", RMPSC_WAIT_SPIN, 8, 0, 0, 0, -1,
	  STRESS_SCALE(200000ull, 50000ull, 30000ull) },
	{ "test_wait_stress_yield_preserves_sequence", RMPSC_WAIT_YIELD, 8, 8, 2, 0, -1,
	  STRESS_SCALE(1000000ull, 200000ull, 100000ull) },
	{ "test_wait_stress_sleep_preserves_sequence", RMPSC_WAIT_SLEEP, 8, 4, 1, 2 * US,
	 -1,
	  STRESS_SCALE(500000ull, 100000ull, 50000ull) },
	{ "test_wait_stress_backoff_preserves_sequence", RMPSC_WAIT_BACKOFF, 4, 6, 1, 0, -1,
	  STRESS_SCALE(500000ull, 150000ull, 80000ull) },
	/* DEADLINE with a bound near the pauses: many waits end in
	 * -ETIMEDOUT and are retried. */
	{ "test_wait_stress_deadline_preserves_sequence", RMPSC_WAIT_DEADLINE, 4, 0, 0, 0,
	 20 * US,
	  STRESS_SCALE(150000ull, 50000ull, 30000ull) },
};

#define SEQ_CASE(fn, c) { (c).name, (fn), NULL, NULL, (void *)(uintptr_t)&(c) }

static void test_wait_stress_block_loses_no_wakeup(void **state)
{
	const struct seq_case *c = *state;
	const rmpsc_wait now = wait_make(RMPSC_WAIT_BLOCK, 0, 0, 0, -1);
	const rmpsc_wait ring = wait_make(c->kind, c->spin, c->yield, c->sleep, c->timeout);

	run_case(c->name, c->cap, 0, c->total, now, now, &ring, false);
}

static void test_wait_stress_kind_preserves_sequence(void **state)
{
	const struct seq_case *c = *state;
	const rmpsc_wait w = wait_make(c->kind, c->spin, c->yield, c->sleep, c->timeout);

	run_case(c->name, c->cap, 0, c->total, w, w, &w, false);
}

/* (1) again with tries and short timeouts mixed in: a wait that times out
 * while the other side wakes it must not lose the next wake-up. */
static void test_wait_stress_block_mixed_timeouts_lose_no_wakeup(void **state)
{
	const uint64_t total = STRESS_SCALE(300000ull, 100000ull, 50000ull);
	const rmpsc_wait now = wait_make(RMPSC_WAIT_BLOCK, 0, 0, 0, -1);
	const rmpsc_wait ring = wait_make(RMPSC_WAIT_BLOCK, 1, 0, 0, -1);

	(void)state;
	run_case(__func__, 2, 0, total, now, now, &ring, true);
}

/* Different kinds on the two sides, with the finite timeouts mixed in. */
static void test_wait_stress_mixed_kinds_preserve_sequence(void **state)
{
	const rmpsc_wait p = wait_make(RMPSC_WAIT_BACKOFF, 3, 0, 0, -1);
	const rmpsc_wait c = wait_make(RMPSC_WAIT_SLEEP, 2, 0, 1 * US, -1);
	const rmpsc_wait ring = wait_make(RMPSC_WAIT_BLOCK, 0, 0, 0, -1);

	(void)state;
	run_case(__func__, 4, 0, STRESS_SCALE(200000ull, 80000ull, 40000ull), p, c, &ring,
		 true);
}

/* A buffer of four times the capacity: spans split at the buffer end. */
static void test_wait_stress_slots_4x_capacity_preserves_sequence(void **state)
{
	const rmpsc_wait now = wait_make(RMPSC_WAIT_BLOCK, 0, 0, 0, -1);
	const rmpsc_wait ring = wait_make(RMPSC_WAIT_BLOCK, 2, 0, 0, -1);

	(void)state;
	run_case(__func__, 4, 16, STRESS_SCALE(300000ull, 100000ull, 50000ull), now, now,
		 &ring, false);
	run_case(__func__, 1, 8, STRESS_SCALE(50000ull, 20000ull, 10000ull), now, now,
		 &ring, false);
}

/* ---- (2) close while blocked --------------------------------------------- */

enum close_mode {
	/* Producer sleeps on the full ring X, consumer on the empty ring Y. */
	CM_PROD_X_CONS_Y,
	/* Consumer sleeps on the empty ring X, producer on the full ring Y. */
	CM_CONS_X_PROD_Y,
	/* Both run freely on X; the close comes at a random moment. */
	CM_FREE,
	CM_COUNT,
};

struct round {
	rmpsc_ring *x, *y;
	enum close_mode mode;
	uint32_t cap;
	uint32_t k;       /* CM_*: items moved before the side goes to Y */
	rmpsc_wait w;
	const rmpsc_wait *wp; /* &w or NULL (the rings' strategy) */
	bool may_time_out;
	uint64_t seed;

	char _pad0[64];
	atomic_int failed;
	atomic_bool prod_done, cons_done;
	char _pad1[64];
	_Atomic uint64_t pushed;
	_Atomic int prod_where;
	char _pad2[64];
	_Atomic uint64_t received;
	_Atomic int cons_where;
	char _pad3[64];

	uint64_t late; /* received after the consumer's first -EPIPE on X */
	char msg[400];
};

/* After a failure: both rings closed, every side returns. */
static void round_close(void *arg, int first)
{
	struct round *rd = arg;

	(void)first;
	rmpsc_ring_close(rd->x);
	rmpsc_ring_close(rd->y);
}

#define round_fail(rd, ...) FAIL_RECORD(rd, round_close, __VA_ARGS__)

/* A batch for a round's call: pick_n(), at most @max and 16. */
static uint32_t round_n(struct round *rd, uint64_t *rng, uint32_t max)
{
	const uint32_t n = pick_n(rng, 8, 2 * rd->cap);

	return n < max ? (n < 16 ? n : 16) : (max < 16 ? max : 16);
}

/*
 * What a round's call of @n returned (after a wait that a DEADLINE ended:
 * 1, try again): 1..n or -EPIPE is fine (0); anything else is reported
 * for item @at (INT_MIN).
 */
static int round_result(struct round *rd, bool producer, uint32_t op, uint32_t n,
			uint64_t at, int rc)
{
	set_where(producer ? &rd->prod_where : &rd->cons_where, W_IDLE);
	if (rc == -ETIMEDOUT && rd->may_time_out)
		return 1;
	if (rc == 0 || rc > (int)n || (rc < 0 && rc != -EPIPE)) {
		round_fail(rd, "%s: op %u (n %u) at item %" PRIu64 " returned %d (%s)",
			   producer ? "producer" : "consumer", op, n, at, rc, errname(rc));
		return INT_MIN;
	}
	return 0;
}

/*
 * One blocking push of item *next into @r with any producer call; returns
 * the items published (>= 1), -EPIPE, or another error (reported).
 */
static int round_push(struct round *rd, rmpsc_ring *r, uint64_t *rng, uint64_t next,
		      uint32_t max)
{
	const uint32_t op = (uint32_t)(xs_next(rng) >> 62);
	uint64_t buf[16];
	rmpsc_span sp;
	const uint32_t n = round_n(rd, rng, max);
	int rc, r2;

	for (;;) {
		if (op == 0) {
			set_where(&rd->prod_where, W_PUSH);
			rc = rmpsc_ring_push_timed(r, &next, -1, rd->wp);
			if (rc == 0)
				rc = 1;
		} else if (op == 1) {
			for (uint32_t i = 0; i < n; i++)
				buf[i] = next + i;
			set_where(&rd->prod_where, W_PUSH_N);
			/* n or, interrupted by the close, 1..n-1 */
			rc = rmpsc_ring_push_n_timed(r, buf, n, -1, rd->wp);
		} else {
			set_where(&rd->prod_where, W_RESERVE);
			rc = rmpsc_ring_reserve_timed(r, n, &sp, -1, rd->wp);
			if (rc > 0) {
				for (uint32_t i = 0; i < (uint32_t)rc; i++)
					span_put_u64(&sp, i, next + i);
				if (op == 3)
					/* a close between reserve and commit */
					sched_yield();
				/* Closed meanwhile: -EPIPE, nothing published. */
				const int c = rmpsc_ring_commit(r, (uint32_t)rc);

				if (c == -EPIPE) {
					rc = c;
				} else if (c != 0) {
					round_fail(rd, "producer: commit(%d) returned %d",
						   rc, c);
					return INT_MIN;
				}
			}
		}
		r2 = round_result(rd, true, op, n, next, rc);
		if (r2 == 1)
			continue;
		return r2 ? r2 : rc;
	}
}

/* One blocking pop from @r into the sequence check; returns the items
 * received (>= 1), -EPIPE, or INT_MIN (reported). */
static int round_pop(struct round *rd, rmpsc_ring *r, uint64_t *rng, uint64_t *expect,
		     uint32_t max)
{
	const uint32_t op = (uint32_t)(xs_next(rng) >> 62) % 3;
	const uint32_t n = round_n(rd, rng, max);
	uint64_t buf[16];
	rmpsc_span sp;
	int rc, r2;

	for (;;) {
		if (op == 0) {
			set_where(&rd->cons_where, W_POP);
			rc = rmpsc_ring_pop_timed(r, buf, -1, rd->wp);
			if (rc == 0)
				rc = 1;
		} else if (op == 1) {
			set_where(&rd->cons_where, W_POP_N);
			rc = rmpsc_ring_pop_n_timed(r, buf, n, -1, rd->wp);
		} else {
			set_where(&rd->cons_where, W_READABLE);
			rc = rmpsc_ring_readable_timed(r, n, &sp, -1, rd->wp);
			if (rc > 0) {
				for (uint32_t i = 0; i < (uint32_t)rc; i++)
					buf[i] = span_get_u64(&sp, i);
				if (rmpsc_ring_advance(r, (uint32_t)rc) != 0) {
					round_fail(rd, "consumer: advance(%d) failed",
						   rc);
					return INT_MIN;
				}
			}
		}
		r2 = round_result(rd, false, op, n, *expect, rc);
		if (r2 == 1)
			continue;
		if (r2)
			return r2;
		if (rc > 0) {
			for (uint32_t i = 0; i < (uint32_t)rc; i++) {
				if (buf[i] != *expect + i) {
					round_fail(rd, "consumer: item %" PRIu64
						   " is %" PRIu64, *expect + i, buf[i]);
					return INT_MIN;
				}
			}
			*expect += (uint64_t)rc;
			atomic_store_explicit(&rd->received, *expect,
					      memory_order_relaxed);
		}
		return rc;
	}
}

/* A blocking call on the other ring that only a close can end. */
static void round_wait_other(struct round *rd, bool producer)
{
	uint64_t v = 0;
	int rc;

	do {
		if (producer) {
			set_where(&rd->prod_where, W_OTHER_RING);
			rc = rmpsc_ring_push_timed(rd->y, &v, -1, rd->wp);
		} else {
			set_where(&rd->cons_where, W_OTHER_RING);
			rc = rmpsc_ring_pop_timed(rd->y, &v, -1, rd->wp);
		}
	} while (rc == -ETIMEDOUT && rd->may_time_out);
	if (rc != -EPIPE)
		round_fail(rd, "%s: the wait on the other ring returned %d (%s), "
			   "expected -EPIPE", producer ? "producer" : "consumer", rc,
			   errname(rc));
}

static void *round_producer(void *arg)
{
	struct round *rd = arg;
	uint64_t rng = rd->seed ^ 0x70726f64ull, next = 0;
	int rc = 0;

	while (!ldi(&rd->failed)) {
		uint32_t max = 16;

		if (rd->mode == CM_CONS_X_PROD_Y && next >= rd->k) {
			round_wait_other(rd, true);
			/* The closer may close Y first: X is closed next. */
			while (rmpsc_ring_is_closed(rd->x) != 1 && !ldi(&rd->failed))
				sleep_ns(10 * US);
			rc = round_push(rd, rd->x, &rng, next, 16);
			if (rc != -EPIPE && rc != INT_MIN)
				round_fail(rd, "producer: push after the close "
					   "returned %d", rc);
			break;
		}
		if (rd->mode == CM_CONS_X_PROD_Y)
			max = (uint32_t)(rd->k - next);
		rc = round_push(rd, rd->x, &rng, next, max);
		if (rc < 0)
			break;
		next += (uint64_t)rc;
		atomic_store_explicit(&rd->pushed, next, memory_order_relaxed);
		if (rd->mode == CM_FREE && !(xs_next(&rng) & 15))
			sleep_ns(1 * US);
	}
	set_where(&rd->prod_where, W_DONE);
	atomic_store_explicit(&rd->prod_done, true, memory_order_release);
	return NULL;
}

static void *round_consumer(void *arg)
{
	struct round *rd = arg;
	uint64_t rng = rd->seed ^ 0x636f6e73ull, expect = 0, first;
	int rc;

	if (rd->mode == CM_PROD_X_CONS_Y) {
		while (expect < rd->k) {
			rc = round_pop(rd, rd->x, &rng, &expect,
				       (uint32_t)(rd->k - expect));
			if (rc < 0) {
				if (rc == -EPIPE)
					round_fail(rd, "consumer: -EPIPE on X before "
						   "the close");
				goto out;
			}
		}
		round_wait_other(rd, false);
		/* The closer may close Y first: once X is closed too, the
		 * producer cannot refill what is drained below. */
		while (rmpsc_ring_is_closed(rd->x) != 1 && !ldi(&rd->failed))
			sleep_ns(10 * US);
	}
	/* Until -EPIPE on X ... */
	do {
		rc = round_pop(rd, rd->x, &rng, &expect, 16);
		if (rd->mode == CM_FREE && rc > 0 && !(xs_next(&rng) & 15))
			sleep_ns(1 * US);
	} while (rc > 0);
	if (rc != -EPIPE)
		goto out;
	/* ... which is final: once the producer is gone, nothing more comes
	 * (a push or commit that raced with the close either was received
	 * above or returned -EPIPE itself). */
	first = expect;
	set_where(&rd->cons_where, W_DRAIN);
	while (!atomic_load_explicit(&rd->prod_done, memory_order_acquire))
		sleep_ns(10 * US);
	do
		rc = round_pop(rd, rd->x, &rng, &expect, 16);
	while (rc > 0);
	rd->late = expect - first;
	if (rd->late)
		round_fail(rd, "consumer: %" PRIu64 " items (from item %" PRIu64
			   ") arrived after -EPIPE, which is final", rd->late, first);
out:
	set_where(&rd->cons_where, W_DONE);
	atomic_store_explicit(&rd->cons_done, true, memory_order_release);
	return NULL;
}

static void round_on_stall(void *arg, const char *msg)
{
	struct round *rd = arg;

	round_fail(rd, "%s", msg);
}

/* Wait until @ready (or a failure); false after WATCHDOG_SEC without it. */
static bool round_wait_until(struct round *rd, bool (*ready)(struct round *))
{
	const int64_t t0 = now_ns();
	uint64_t last = 0;
	int64_t since = t0;

	while (!ready(rd) && !ldi(&rd->failed)) {
		const uint64_t p = ld(&rd->pushed) +
				   ld(&rd->received);
		const int64_t t = now_ns();

		if (p != last) {
			last = p;
			since = t;
		} else if (t - since > WATCHDOG_SEC * 1000 * MS) {
			return false;
		}
		sleep_ns(20 * US);
	}
	return true;
}

/*
 * The consumer's place first: once it waits on Y it has released its k
 * elements of X, so a full X after that means k + cap pushed. In the other
 * order a full X seen while the consumer was still taking its k (head
 * behind) could pair with its wait on Y seen a moment later, when X was
 * no longer full and the producer still pushing.
 */
static bool ready_prod_x_cons_y(struct round *rd)
{
	return atomic_load_explicit(&rd->cons_where, memory_order_acquire) ==
		       W_OTHER_RING &&
	       rmpsc_ring_is_full(rd->x) == 1;
}

static bool ready_cons_x_prod_y(struct round *rd)
{
	return ld(&rd->received) == rd->k &&
	       atomic_load_explicit(&rd->prod_where, memory_order_acquire) ==
		       W_OTHER_RING;
}

struct close_totals {
	uint64_t rounds[CM_COUNT], pushed, late, late_rounds, after_close;
	uint64_t kinds[RMPSC_WAIT_KIND_MAX + 1];
};

/* Returns false when the threads are stuck for good (memory left to them). */
static bool close_round(unsigned i, uint64_t *rng, struct close_totals *tot)
{
	/* 1024: large enough for the try pop's batched release (ring.h); the
	 * consumer's calls here are the blocking ones, which must release at
	 * once, or the producer on X (CM_PROD_X_CONS_Y) never gets its
	 * k + cap pushes in while the consumer sleeps on Y. */
	static const uint32_t caps[] = { 1, 2, 4, 8, 1024 };
	static const uint32_t kinds[] = {
		RMPSC_WAIT_BLOCK,   RMPSC_WAIT_BLOCK,    RMPSC_WAIT_BLOCK,
		RMPSC_WAIT_BLOCK,   RMPSC_WAIT_BACKOFF,  RMPSC_WAIT_DEADLINE,
		RMPSC_WAIT_SLEEP,   RMPSC_WAIT_YIELD,    RMPSC_WAIT_BLOCK,
		RMPSC_WAIT_BLOCK,   RMPSC_WAIT_BLOCK,    RMPSC_WAIT_BLOCK,
		RMPSC_WAIT_BACKOFF, RMPSC_WAIT_DEADLINE, RMPSC_WAIT_SLEEP,
		RMPSC_WAIT_SPIN,
	};
	struct round *rd = calloc(1, sizeof *rd);
	rmpsc_ring_config cfg;
	pthread_t prod, cons;
	const uint64_t x = xs_next(rng);
	uint32_t kind;
	bool ok = true;
	char name[160];

	assert_non_null(rd);
	rd->mode = (enum close_mode)(i % CM_COUNT);
	rd->cap = caps[((x >> 8) & 7) % 5];
	kind = kinds[(x >> 12) & 15];
	rd->w = wait_make(kind, (uint32_t)(x >> 16) & 3, (uint32_t)(x >> 18) & 1, 2 * US,
			  ((x >> 19) & 1) ? 5 * US : 600000 * MS);
	rd->may_time_out = kind == RMPSC_WAIT_DEADLINE;
	rd->wp = ((x >> 20) & 1) ? &rd->w : NULL;
	rd->k = (uint32_t)((x >> 24) % (rd->cap + 1));
	rd->seed = x | 1;
	atomic_init(&rd->failed, 0);
	atomic_init(&rd->prod_done, false);
	atomic_init(&rd->cons_done, false);
	atomic_init(&rd->pushed, 0);
	atomic_init(&rd->received, 0);
	atomic_init(&rd->prod_where, W_IDLE);
	atomic_init(&rd->cons_where, W_IDLE);
	snprintf(name, sizeof name, "close round %u (mode %d, capacity %u, k %u, %s%s)",
		 i, rd->mode, rd->cap, rd->k, wait_kind_name(kind),
		 rd->wp ? "" : " as ring strategy");

	assert_int_equal(rmpsc_ring_config_init(&cfg, sizeof cfg), 0);
	cfg.capacity = rd->cap;
	cfg.elem_size = 8;
	assert_int_equal(rmpsc_ring_create(&cfg, &rd->x), 0);
	cfg.capacity = 1;
	assert_int_equal(rmpsc_ring_create(&cfg, &rd->y), 0);
	assert_int_equal(rmpsc_ring_set_wait(rd->x, &rd->w), 0);
	assert_int_equal(rmpsc_ring_set_wait(rd->y, &rd->w), 0);
	if (rd->mode == CM_CONS_X_PROD_Y)
		assert_int_equal(rmpsc_ring_push(rd->y, &(uint64_t){ 0 }), 0);

	assert_int_equal(pthread_create(&cons, NULL, round_consumer, rd), 0);
	assert_int_equal(pthread_create(&prod, NULL, round_producer, rd), 0);

	if (rd->mode == CM_PROD_X_CONS_Y)
		ok = round_wait_until(rd, ready_prod_x_cons_y);
	else if (rd->mode == CM_CONS_X_PROD_Y)
		ok = round_wait_until(rd, ready_cons_x_prod_y);
	else
		sleep_ns((int64_t)((x >> 40) % (300 * US)));
	if (!ok)
		round_fail(rd, "%s: both sides never reached their waits (lost "
			   "wake-up?): producer at %" PRIu64 " in %s, consumer at "
			   "%" PRIu64 " in %s", name, ld(&rd->pushed),
			   where_names[ldi(&rd->prod_where)], ld(&rd->received),
			   where_names[ldi(&rd->cons_where)]);

	/* Sometimes at once, sometimes once both are surely asleep. */
	switch ((x >> 32) & 7) {
	case 0: break;
	case 1: sched_yield(); break;
	case 2: sleep_ns(1 * MS); break;
	default: sleep_ns(1 * US + (int64_t)((x >> 36) % (20 * US))); break;
	}
	if ((x >> 35) & 1) {
		assert_int_equal(rmpsc_ring_close(rd->x), 0);
		assert_int_equal(rmpsc_ring_close(rd->y), 0);
	} else {
		assert_int_equal(rmpsc_ring_close(rd->y), 0);
		assert_int_equal(rmpsc_ring_close(rd->x), 0);
	}
	if (!watch(name, rd->x, &rd->pushed, &rd->received, &rd->prod_where,
		   &rd->cons_where, &rd->prod_done, &rd->cons_done, round_on_stall, rd)) {
		fail_msg("%s: a close did not wake the blocked threads; leaving them",
			 name);
		return false;
	}
	assert_int_equal(pthread_join(prod, NULL), 0);
	assert_int_equal(pthread_join(cons, NULL), 0);
	if (atomic_load_explicit(&rd->failed, memory_order_acquire)) {
		char msg[sizeof rd->msg];

		memcpy(msg, rd->msg, sizeof msg);
		rmpsc_ring_destroy(rd->x);
		rmpsc_ring_destroy(rd->y);
		free(rd);
		fail_msg("%s: %s", name, msg);
	}
	if (ld(&rd->received) != ld(&rd->pushed))
		fail_msg("%s: producer pushed %" PRIu64 ", consumer received %" PRIu64,
			 name, ld(&rd->pushed), ld(&rd->received));
	if (rd->mode == CM_CONS_X_PROD_Y && ld(&rd->pushed) != rd->k)
		fail_msg("%s: producer pushed %" PRIu64 ", expected %u", name,
			 ld(&rd->pushed), rd->k);
	/*
	 * Producer on X: k + cap were pushed when X was full and closed. A push
	 * that overlaps the close may still land in room the consumer freed
	 * after it saw the close, if the producer saw the ring open first;
	 * allowed (close waits for it, and the consumer receives it before its
	 * -EPIPE), counted.
	 */
	if (rd->mode == CM_PROD_X_CONS_Y) {
		const uint64_t pushed = ld(&rd->pushed);

		if (pushed < rd->k + rd->cap || pushed > rd->k + 2 * rd->cap)
			fail_msg("%s: producer pushed %" PRIu64 ", expected %u (+ up to "
				 "%u)", name, pushed, rd->k + rd->cap, rd->cap);
		if (pushed != rd->k + rd->cap) {
			tot->after_close++;
			print_message("  %s: %" PRIu64 " pushed after the consumer saw "
				      "the close\n", name, pushed - rd->k - rd->cap);
		}
	}
	tot->rounds[rd->mode]++;
	tot->kinds[kind]++;
	tot->pushed += ld(&rd->pushed);
	tot->late += rd->late;
	tot->late_rounds += rd->late != 0;
	rmpsc_ring_destroy(rd->x);
	rmpsc_ring_destroy(rd->y);
	free(rd);
	return true;
}

static void test_wait_stress_close_wakes_blocked_producer_and_consumer(void **state)
{
	const unsigned rounds = STRESS_SCALE(3000u, 1000u, 1000u);
	uint64_t rng = stress_seed() ^ 0x636c6f73ull;
	struct close_totals tot;
	const int64_t t0 = now_ns();

	(void)state;
	memset(&tot, 0, sizeof tot);
	for (unsigned i = 0; i < rounds; i++) {
		if (!close_round(i, &rng, &tot))
			return;
	}
	print_message("%s [%s]: %u rounds (%" PRIu64 " producer on X / consumer on Y, %"
		      PRIu64 " consumer on X / producer on Y, %" PRIu64 " free), %" PRIu64
		      " items, %" PRIu64 " items in %" PRIu64 " rounds after the first "
		      "-EPIPE, %" PRIu64 " rounds with a push that landed after the "
		      "close was seen; kinds SPIN %" PRIu64 " YIELD %" PRIu64 " SLEEP %"
		      PRIu64 " BLOCK %" PRIu64 " DEADLINE %" PRIu64 " BACKOFF %" PRIu64
		      ": %.2f s\n", __func__, STRESS_BUILD, rounds, tot.rounds[0],
		      tot.rounds[1], tot.rounds[2], tot.pushed, tot.late, tot.late_rounds,
		      tot.after_close, tot.kinds[0], tot.kinds[1], tot.kinds[2],
		      tot.kinds[3], tot.kinds[4], tot.kinds[5],
		      (double)(now_ns() - t0) * 1e-9);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		SEQ_CASE(test_wait_stress_block_loses_no_wakeup, block_cases[0]),
		SEQ_CASE(test_wait_stress_block_loses_no_wakeup, block_cases[1]),
		SEQ_CASE(test_wait_stress_block_loses_no_wakeup, block_cases[2]),
		SEQ_CASE(test_wait_stress_block_loses_no_wakeup, block_cases[3]),
		SEQ_CASE(test_wait_stress_block_loses_no_wakeup, block_cases[4]),
		cmocka_unit_test(test_wait_stress_block_mixed_timeouts_lose_no_wakeup),
		cmocka_unit_test(test_wait_stress_close_wakes_blocked_producer_and_consumer),
		SEQ_CASE(test_wait_stress_kind_preserves_sequence, kind_cases[0]),
		SEQ_CASE(test_wait_stress_kind_preserves_sequence, kind_cases[1]),
		SEQ_CASE(test_wait_stress_kind_preserves_sequence, kind_cases[2]),
		SEQ_CASE(test_wait_stress_kind_preserves_sequence, kind_cases[3]),
		SEQ_CASE(test_wait_stress_kind_preserves_sequence, kind_cases[4]),
		cmocka_unit_test(test_wait_stress_mixed_kinds_preserve_sequence),
		cmocka_unit_test(test_wait_stress_slots_4x_capacity_preserves_sequence),
	};

	return cmocka_run_group_tests_name("stress_wait", tests, setup_slack, NULL);
}
