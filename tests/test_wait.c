/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for wait.h (rmpsc_wait strategies, the rmpsc_backoff helper)
 * and the ring's blocking calls (rmpsc_ring_*_timed, set_wait/get_wait).
 *
 * Written against the headers: every documented return code is provoked,
 * every wait kind has to succeed when a second thread brings data or room
 * after a delay, and a close from another thread has to wake blocked
 * producers and consumers.
 *
 * Timing: a timed-out call must have taken at least its timeout (measured
 * on CLOCK_MONOTONIC around the call); nothing is ever checked against an
 * upper bound. A call that should return but stays blocked is caught by a
 * guard thread: after GUARD_SEC it reports a lost wake-up and closes the
 * ring to free the caller, so the case fails instead of hanging.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_util.h"

#include "ringmpsc/ring.h"
#include "ringmpsc/wait.h"
#include "test_core.h" /* where a ring's sleepers sleep, for the SLEEP case */
#include "test_table.h"

#include <sys/syscall.h>

/* ---- helpers ------------------------------------------------------------ */

#define MS 1000000ll
#define US 1000ll

/* A guarded call that should return promptly gets this long. */
#define GUARD_SEC 30

static const uint32_t all_kinds[] = {
	RMPSC_WAIT_SPIN, RMPSC_WAIT_YIELD,    RMPSC_WAIT_SLEEP,
	RMPSC_WAIT_BLOCK, RMPSC_WAIT_DEADLINE, RMPSC_WAIT_BACKOFF,
};
#define N_KINDS (sizeof all_kinds / sizeof all_kinds[0])

/*
 * A valid strategy of @kind for the threaded cases: DEADLINE gets a bound
 * far above any delay of the test (so only the call's timeout matters),
 * SLEEP a short sleep.
 */
static rmpsc_wait strategy(uint32_t kind)
{
	rmpsc_wait w;

	assert_ret(rmpsc_wait_init(&w, sizeof w, kind), 0);
	if (kind == RMPSC_WAIT_DEADLINE)
		w.timeout_ns = 600 * 1000 * MS;
	if (kind == RMPSC_WAIT_SLEEP)
		w.sleep_ns = 20 * US;
	assert_ret(rmpsc_wait_validate(&w), 0);
	return w;
}

/* BLOCK that goes to the futex at once. */
static rmpsc_wait block_now(void)
{
	rmpsc_wait w = strategy(RMPSC_WAIT_BLOCK);

	w.spin_count = 0;
	w.yield_count = 0;
	return w;
}

/* Fill a ring of 8-byte elements from empty: values first.. */
static void fill(rmpsc_ring *r, uint64_t first)
{
	const int64_t cap = rmpsc_ring_capacity(r);

	assert_true(cap > 0);
	ring_push_seq(r, first, (uint32_t)cap);
	assert_ret(rmpsc_ring_is_full(r), 1);
}

#define assert_elapsed_at_least(t0, want_ns, what)                             \
	do {                                                                   \
		const int64_t dt_ = now_ns() - (t0);                           \
		if (dt_ < (int64_t)(want_ns)) {                                \
			print_error("%s: returned after %" PRId64 " ns, "      \
				    "before its timeout of %" PRId64 " ns\n",  \
				    (what), dt_, (int64_t)(want_ns));          \
			fail();                                                \
		}                                                              \
	} while (0)

/* ---- the six timed calls behind one switch ------------------------------ */

enum call { C_RESERVE, C_PUSH, C_PUSH_N, C_READABLE, C_POP, C_POP_N, C_COUNT };

static const char *const call_names[C_COUNT] = {
	"reserve_timed", "push_timed", "push_n_timed",
	"readable_timed", "pop_timed", "pop_n_timed",
};

static bool call_produces(int c)
{
	return c <= C_PUSH_N;
}

/*
 * One element through call @c: a producer call pushes *val (reserve_timed:
 * writes it into the span and commits), a consumer call stores the element
 * it takes in *val (readable_timed: copies from the span and advances).
 * Returns 0 on success, the call's error code, or 1000 + a count it should
 * never return.
 */
static int call_timed(rmpsc_ring *r, int c, int64_t timeout, const rmpsc_wait *w,
		      uint64_t *val)
{
	rmpsc_span s;
	int rc;

	switch (c) {
	case C_RESERVE:
		rc = rmpsc_ring_reserve_timed(r, 1, &s, timeout, w);
		if (rc != 1)
			return rc < 0 ? rc : 1000 + rc;
		memcpy(s.iov[0].iov_base, val, sizeof *val);
		return rmpsc_ring_commit(r, 1);
	case C_PUSH:
		return rmpsc_ring_push_timed(r, val, timeout, w);
	case C_PUSH_N:
		rc = rmpsc_ring_push_n_timed(r, val, 1, timeout, w);
		return rc == 1 ? 0 : (rc < 0 ? rc : 1000 + rc);
	case C_READABLE:
		rc = rmpsc_ring_readable_timed(r, 1, &s, timeout, w);
		if (rc != 1)
			return rc < 0 ? rc : 1000 + rc;
		memcpy(val, s.iov[0].iov_base, sizeof *val);
		return rmpsc_ring_advance(r, 1);
	case C_POP:
		return rmpsc_ring_pop_timed(r, val, timeout, w);
	case C_POP_N:
		rc = rmpsc_ring_pop_n_timed(r, val, 1, timeout, w);
		return rc == 1 ? 0 : (rc < 0 ? rc : 1000 + rc);
	default:
		return -ENOTRECOVERABLE;
	}
}

/* Call @c on @r, which is full (producer calls) or empty (consumer calls),
 * with a finite @timeout: -ETIMEDOUT, after at least the timeout. */
static void expect_timeout(rmpsc_ring *r, int c, int64_t timeout, const rmpsc_wait *w,
			   const char *what)
{
	uint64_t v = 0x7777;
	const int64_t len = rmpsc_ring_len(r);
	const int64_t t0 = now_ns();
	const int rc = call_timed(r, c, timeout, w, &v);

	if (rc != -ETIMEDOUT) {
		print_error("%s %s (timeout %" PRId64 " ns) returned %d (%s), "
			    "expected -ETIMEDOUT\n", what, call_names[c], timeout, rc,
			    errname(rc));
		fail();
	}
	assert_elapsed_at_least(t0, timeout, call_names[c]);
	assert_ret(rmpsc_ring_len(r), len);
}

/* ---- guard: a blocked call that should return ---------------------------- */

struct guard {
	pthread_t t;
	pthread_mutex_t m;
	pthread_cond_t c;
	bool done;
	bool fired;
	rmpsc_ring *rings[2];
	const char *what;
};

static bool guard_wait_locked(struct guard *g, struct timespec *dl)
{
	while (!g->done) {
		if (pthread_cond_timedwait(&g->c, &g->m, dl) == ETIMEDOUT)
			break;
	}
	return g->done;
}

static void *guard_main(void *arg)
{
	struct guard *g = arg;
	struct timespec dl;

	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += GUARD_SEC;
	pthread_mutex_lock(&g->m);
	if (!guard_wait_locked(g, &dl)) {
		g->fired = true;
		pthread_mutex_unlock(&g->m);
		fprintf(stderr, "%s: still blocked after %d s: a wake-up was lost; "
			"closing the ring to free the caller\n", g->what, GUARD_SEC);
		for (int i = 0; i < 2; i++)
			if (g->rings[i])
				rmpsc_ring_close(g->rings[i]);
		pthread_mutex_lock(&g->m);
		dl.tv_sec += GUARD_SEC;
		if (!guard_wait_locked(g, &dl)) {
			fprintf(stderr, "%s: rmpsc_ring_close() did not wake the blocked "
				"call either\n", g->what);
			abort();
		}
	}
	pthread_mutex_unlock(&g->m);
	return NULL;
}

static void guard_start(struct guard *g, const char *what, rmpsc_ring *r0,
			rmpsc_ring *r1)
{
	pthread_condattr_t ca;

	memset(g, 0, sizeof *g);
	g->what = what;
	g->rings[0] = r0;
	g->rings[1] = r1;
	assert_int_equal(pthread_mutex_init(&g->m, NULL), 0);
	assert_int_equal(pthread_condattr_init(&ca), 0);
	assert_int_equal(pthread_condattr_setclock(&ca, CLOCK_MONOTONIC), 0);
	assert_int_equal(pthread_cond_init(&g->c, &ca), 0);
	pthread_condattr_destroy(&ca);
	assert_int_equal(pthread_create(&g->t, NULL, guard_main, g), 0);
}

/* Returns true when the guard had to fire (the case must fail). */
static bool guard_stop(struct guard *g)
{
	pthread_mutex_lock(&g->m);
	g->done = true;
	pthread_cond_signal(&g->c);
	pthread_mutex_unlock(&g->m);
	assert_int_equal(pthread_join(g->t, NULL), 0);
	pthread_cond_destroy(&g->c);
	pthread_mutex_destroy(&g->m);
	return g->fired;
}

#define guard_check(g)                                                         \
	do {                                                                   \
		if (guard_stop(g))                                             \
			fail_msg("%s: the call stayed blocked %d s (lost wake-up)", \
				 (g)->what, GUARD_SEC);                        \
	} while (0)

/* ---- helper thread: acts on the ring after a delay ----------------------- */

enum hop {
	H_PUSH, H_PUSH_N, H_PUSH_N_EXACT, H_RESERVE_COMMIT,
	H_POP, H_POP_N, H_POP_N_EXACT, H_READ_ADVANCE, H_SKIP, H_DRAIN, H_DRAIN_NULL,
	H_CLOSE,
};

static const char *const hop_names[] = {
	"push", "push_n", "push_n_exact", "reserve+commit",
	"pop", "pop_n", "pop_n_exact", "readable+advance", "skip", "drain",
	"drain(NULL)", "close",
};

#define HELPER_OPS 4

struct helper {
	pthread_t t;
	rmpsc_ring *r;
	int nops;
	enum hop ops[HELPER_OPS];
	int64_t delay_ns; /* before each op */
	uint64_t val;     /* next value a push op stores */
	int rc[HELPER_OPS];
	uint64_t got[HELPER_OPS];
};

/* One element moved by @op: 0 on success (an op's own count normalized). */
static int helper_op(struct helper *h, enum hop op, uint64_t *got)
{
	uint64_t v = h->val;
	rmpsc_span s;
	int rc;

	switch (op) {
	case H_PUSH:
		rc = rmpsc_ring_push(h->r, &v);
		break;
	case H_PUSH_N:
		rc = rmpsc_ring_push_n(h->r, &v, 1) == 1 ? 0 : -ENOTRECOVERABLE;
		break;
	case H_PUSH_N_EXACT:
		rc = rmpsc_ring_push_n_exact(h->r, &v, 1) == 1 ? 0 : -ENOTRECOVERABLE;
		break;
	case H_RESERVE_COMMIT:
		rc = rmpsc_ring_reserve(h->r, 1, &s);
		if (rc == 1) {
			memcpy(s.iov[0].iov_base, &v, sizeof v);
			rc = rmpsc_ring_commit(h->r, 1);
		} else {
			rc = -ENOTRECOVERABLE;
		}
		break;
	case H_POP:
		return rmpsc_ring_pop(h->r, got);
	case H_POP_N:
		return rmpsc_ring_pop_n(h->r, got, 1) == 1 ? 0 : -ENOTRECOVERABLE;
	case H_POP_N_EXACT:
		return rmpsc_ring_pop_n_exact(h->r, got, 1) == 1 ? 0 : -ENOTRECOVERABLE;
	case H_READ_ADVANCE:
		if (rmpsc_ring_readable(h->r, 1, &s) != 1)
			return -ENOTRECOVERABLE;
		memcpy(got, s.iov[0].iov_base, sizeof *got);
		return rmpsc_ring_advance(h->r, 1);
	case H_SKIP:
		return rmpsc_ring_skip(h->r, 1) == 1 ? 0 : -ENOTRECOVERABLE;
	case H_DRAIN:
		return rmpsc_ring_drain(h->r, got, 1) == 1 ? 0 : -ENOTRECOVERABLE;
	case H_DRAIN_NULL:
		return rmpsc_ring_drain(h->r, NULL, 1) == 1 ? 0 : -ENOTRECOVERABLE;
	case H_CLOSE:
		return rmpsc_ring_close(h->r);
	default:
		return -ENOTRECOVERABLE;
	}
	if (rc == 0)
		h->val++;
	return rc;
}

static void *helper_main(void *arg)
{
	struct helper *h = arg;

	for (int i = 0; i < h->nops; i++) {
		sleep_ns(h->delay_ns);
		h->got[i] = ~0ull;
		h->rc[i] = helper_op(h, h->ops[i], &h->got[i]);
	}
	return NULL;
}

static void helper_start(struct helper *h, rmpsc_ring *r, int64_t delay_ns,
			 uint64_t val, int nops, const enum hop *ops)
{
	memset(h, 0, sizeof *h);
	assert_true(nops > 0 && nops <= HELPER_OPS);
	h->r = r;
	h->delay_ns = delay_ns;
	h->val = val;
	h->nops = nops;
	memcpy(h->ops, ops, sizeof *ops * (size_t)nops);
	assert_int_equal(pthread_create(&h->t, NULL, helper_main, h), 0);
}

static void helper_join(struct helper *h)
{
	assert_int_equal(pthread_join(h->t, NULL), 0);
	for (int i = 0; i < h->nops; i++) {
		if (h->rc[i] != 0)
			fail_msg("helper op %d (%s) returned %d (%s)", i,
				 hop_names[h->ops[i]], h->rc[i], errname(h->rc[i]));
	}
}

/* ---- fixture ------------------------------------------------------------- */

enum { FIX_CAP = 4 };

static int setup_ring(void **state)
{
	return ring_fixture(state, FIX_CAP);
}

/* ======================================================================== */
/* rmpsc_wait_init                                                          */
/* ======================================================================== */

union waitbuf {
	rmpsc_wait w;
	unsigned char b[128];
	uint64_t align;
};

#define CANARY 0xa5

static void test_wait_init_with_each_kind_writes_documented_defaults(void **state)
{
	(void)state;
	for (uint32_t k = 0; k <= RMPSC_WAIT_KIND_MAX; k++) {
		rmpsc_wait w;

		memset(&w, CANARY, sizeof w);
		assert_ret(rmpsc_wait_init(&w, sizeof w, k), 0);
		assert_int_equal(w.size, sizeof w);
		assert_int_equal(w.kind, k);
		assert_int_equal(w.spin_count,
				 k == RMPSC_WAIT_SPIN ? 0 : RMPSC_WAIT_DEFAULT_SPIN);
		assert_int_equal(w.yield_count, RMPSC_WAIT_DEFAULT_YIELD);
		assert_ret(w.sleep_ns, 50000);
		assert_ret(w.timeout_ns, 1000000);
		assert_ret(rmpsc_wait_validate(&w), 0);
	}
}

static void test_wait_init_with_v1_size_writes_nothing_past_size(void **state)
{
	union waitbuf u;

	(void)state;
	for (uint32_t size = RMPSC_WAIT_CONFIG_SIZE_V1; size <= 64; size += 8) {
		memset(u.b, CANARY, sizeof u.b);
		assert_ret(rmpsc_wait_init(&u.w, size, RMPSC_WAIT_SLEEP), 0);
		assert_int_equal(u.w.size, size);
		for (size_t i = size; i < sizeof u.b; i++) {
			if (u.b[i] != CANARY)
				fail_msg("init(size %u) wrote byte %zu", size, i);
		}
	}
}

static void test_wait_init_with_larger_size_and_zero_tail_validates(void **state)
{
	union waitbuf u;

	(void)state;
	memset(u.b, 0, sizeof u.b);
	assert_ret(rmpsc_wait_init(&u.w, sizeof u.b, RMPSC_WAIT_DEADLINE), 0);
	assert_int_equal(u.w.size, sizeof u.b);
	assert_int_equal(u.w.kind, RMPSC_WAIT_DEADLINE);
	assert_ret(u.w.timeout_ns, 1000000);
	for (size_t i = sizeof u.w; i < sizeof u.b; i++)
		assert_int_equal(u.b[i], 0);
	assert_ret(rmpsc_wait_validate(&u.w), 0);
}

/* ======================================================================== */
/* argument checks: rmpsc_wait and rmpsc_backoff                            */
/* ======================================================================== */

/*
 * One table each (test_table.h): every argument that init, validate and
 * the backoff calls refuse, with the code the header promises, and the
 * values next to them that they accept. A refused init writes nothing; a
 * refused backoff call leaves the struct as it was.
 */

enum {
	W_CANARY = TT_STRUCT_CANARY, /* CANARY bytes, more than any size tried */
	W_BLOCK, /* zeros, with a BLOCK strategy of sizeof(rmpsc_wait) at the start */
};

static void *wait_fx(uint32_t state)
{
	rmpsc_wait *w = tt_struct(state);

	if (state == W_BLOCK)
		assert_ret(rmpsc_wait_init(w, sizeof *w, RMPSC_WAIT_BLOCK), 0);
	return w;
}

/* The strategy at @h with one field changed, then validated. */
static rmpsc_wait *wset(void *h, uint32_t kind)
{
	assert_ret(rmpsc_wait_init(h, sizeof(rmpsc_wait), kind), 0);
	return h;
}

TT_CALL(wi_null, rmpsc_wait_init(NULL, (uint32_t)v, RMPSC_WAIT_BLOCK))
TT_CALL(wi_size, rmpsc_wait_init(h, (uint32_t)v, RMPSC_WAIT_BLOCK))
TT_CALL(wi_size_not_8, v % 8 ? rmpsc_wait_init(h, (uint32_t)v, RMPSC_WAIT_BLOCK) : TT_SKIP)
TT_CALL(wi_kind, rmpsc_wait_init(h, sizeof(rmpsc_wait), (uint32_t)v))
TT_CALL(wv_null, rmpsc_wait_validate(NULL))
TT_CALL(wv_size, (((rmpsc_wait *)h)->size = (uint32_t)v, rmpsc_wait_validate(h)))
TT_CALL(wv_size_not_8, v % 8 ? wv_size(h, v) : TT_SKIP)
TT_CALL(wv_kind, (((rmpsc_wait *)h)->kind = (uint32_t)v, rmpsc_wait_validate(h)))
TT_CALL(wv_sleep, (wset(h, RMPSC_WAIT_SLEEP)->sleep_ns = (int64_t)v, rmpsc_wait_validate(h)))
/* v = kind << 1 | which: a kind other than SLEEP with sleep_ns 0 or -1 */
TT_CALL(wv_other_sleep, (v >> 1) == RMPSC_WAIT_SLEEP ? TT_SKIP :
	(wset(h, (uint32_t)(v >> 1))->sleep_ns = -(int64_t)(v & 1), rmpsc_wait_validate(h)))
TT_CALL(wv_other_timeout, v == RMPSC_WAIT_DEADLINE ? TT_SKIP :
	(wset(h, (uint32_t)v)->timeout_ns = -1, rmpsc_wait_validate(h)))
TT_CALL(wv_no_polls, (wset(h, (uint32_t)v)->spin_count = 0,
		      ((rmpsc_wait *)h)->yield_count = 0,
		      rmpsc_wait_validate(h)))
TT_CALL(wv_deadline,
	(wset(h, RMPSC_WAIT_DEADLINE)->timeout_ns = (int64_t)v, rmpsc_wait_validate(h)))

/* A struct of 128 bytes, zeros past ours but for byte v >> 1, which is 1
 * or 0x80 (v = 0: none). */
static int64_t wv_tail(void *h, uint64_t v)
{
	assert_ret(rmpsc_wait_init(h, 128, RMPSC_WAIT_BLOCK), 0);
	if (v)
		((unsigned char *)h)[v >> 1] = (v & 1) ? 0x80 : 1;
	return rmpsc_wait_validate(h);
}

/* Bytes past a smaller claimed size (v) are not looked at; those within
 * are. */
static int64_t wv_ff_past(void *h, uint64_t v)
{
	memset((unsigned char *)h + sizeof(rmpsc_wait), 0xff, 128 - sizeof(rmpsc_wait));
	return wv_size(h, v);
}

#define W_I64(x) ((uint64_t)(int64_t)(x))

static const struct tt_row wait_rows[] = {
	TT_ROW("init: w NULL", wi_null, -EINVAL, W_CANARY, TT_VALS(sizeof(rmpsc_wait), 0)),
	TT_ROW("init: size below 1.0", wi_size, -EINVAL, W_CANARY,
	       TT_RANGE(0, RMPSC_WAIT_CONFIG_SIZE_V1)),
	TT_ROW("init: size not a multiple of 8", wi_size_not_8, -EINVAL, W_CANARY,
	       TT_RANGE(RMPSC_WAIT_CONFIG_SIZE_V1, 128)),
	TT_ROW("init: size above a page", wi_size, -E2BIG, W_CANARY, TT_VALS(4096 + 8)),
	TT_ROW("init: unknown kind", wi_kind, -EINVAL, W_CANARY,
	       TT_VALS(RMPSC_WAIT_KIND_MAX + 1, 7, 99, 1000, 0x80000000u, UINT32_MAX)),
	TT_ROW("validate: w NULL", wv_null, -EINVAL, W_BLOCK),
	TT_ROW("validate: size below 1.0", wv_size, -EINVAL, W_BLOCK,
	       TT_RANGE(0, RMPSC_WAIT_CONFIG_SIZE_V1)),
	TT_ROW("validate: size not a multiple of 8", wv_size_not_8, -EINVAL, W_BLOCK,
	       TT_RANGE(RMPSC_WAIT_CONFIG_SIZE_V1, 128)),
	TT_ROW("validate: size above a page", wv_size, -E2BIG, W_BLOCK,
	       TT_VALS(4104, 8192, 65536, 0x80000000u, UINT32_MAX & ~7u)),
	TT_ROW("validate: a page, zeros past the struct", wv_size, 0, W_BLOCK,
	       TT_VALS(4096)),
	TT_ROW("validate: unknown kind", wv_kind, -EINVAL, W_BLOCK,
	       TT_VALS(RMPSC_WAIT_KIND_MAX + 1, 7, 1000, UINT32_MAX)),
	TT_ROW("validate: every kind", wv_kind, 0, W_BLOCK, TT_RANGE(0,
	       RMPSC_WAIT_KIND_MAX + 1)),
	TT_ROW("validate: SLEEP, sleep_ns outside 1 ns..1 s", wv_sleep, -EINVAL, W_BLOCK,
	       TT_VALS(0, W_I64(-1), W_I64(-50000), W_I64(INT64_MIN), 1000000001ull, INT64_MAX)),
	TT_ROW("validate: SLEEP, sleep_ns within 1 ns..1 s", wv_sleep, 0, W_BLOCK,
	       TT_VALS(1, 2, 50000, 999999999ull, 1000000000ull)),
	TT_ROW("validate: another kind than SLEEP ignores sleep_ns (0, -1)",
	       wv_other_sleep, 0,
	       W_BLOCK, TT_RANGE(0, 2 * (RMPSC_WAIT_KIND_MAX + 1))),
	TT_ROW("validate: another kind than DEADLINE ignores timeout_ns -1",
	       wv_other_timeout, 0,
	       W_BLOCK, TT_RANGE(0, RMPSC_WAIT_KIND_MAX + 1)),
	TT_ROW("validate: every kind with spin_count and yield_count 0", wv_no_polls, 0,
	       W_BLOCK,
	       TT_RANGE(0, RMPSC_WAIT_KIND_MAX + 1)),
	TT_ROW("validate: DEADLINE, timeout_ns negative", wv_deadline, -EINVAL, W_BLOCK,
	       TT_VALS(W_I64(-1), W_I64(INT64_MIN))),
	TT_ROW("validate: DEADLINE, timeout_ns 0 or more", wv_deadline, 0, W_BLOCK,
	       TT_VALS(0, INT64_MAX)),
	TT_ROW("validate: a non-zero byte past the known struct", wv_tail, -E2BIG, W_BLOCK,
	       TT_RANGE(2 * sizeof(rmpsc_wait), 2 * 128)),
	TT_ROW("validate: a larger struct, zeros past ours", wv_tail, 0, W_BLOCK,
	       TT_VALS(0)),
	TT_ROW("validate: bytes past the size not looked at", wv_ff_past, 0, W_BLOCK,
	       TT_VALS(sizeof(rmpsc_wait))),
	TT_ROW("validate: non-zero bytes within a larger size", wv_ff_past, -E2BIG, W_BLOCK,
	       TT_VALS(40)),
};

TT_TEST(test_wait_calls_with_bad_argument_return_documented_code,
	.name = "wait", TT_ROWS(wait_rows), .setup = wait_fx, .check = tt_struct_check)

/* ---- rmpsc_backoff ---------------------------------------------------------- */

static rmpsc_backoff bo, bo_before;

enum { B_KEPT, B_INIT }; /* B_KEPT: a refused call leaves the struct alone */

static void *backoff_fx(uint32_t state)
{
	(void)state;
	assert_ret(rmpsc_backoff_init(&bo, 0, 0), 0);
	bo_before = bo;
	return &bo;
}

static const char *backoff_fx_check(void *h, const struct tt_row *row, int64_t got)
{
	(void)h;
	if (row->state == B_KEPT && got < 0 && memcmp(&bo, &bo_before, sizeof bo))
		return "a refused call changed the backoff";
	return NULL;
}

/* v = spin_limit << 32 | yield_limit, step 0, _pad0 as given */
static rmpsc_backoff *bo_set(uint64_t v, uint32_t pad)
{
	bo.step = 0;
	bo.spin_limit = (uint32_t)(v >> 32);
	bo.yield_limit = (uint32_t)v;
	bo._pad0 = pad;
	bo_before = bo;
	return &bo;
}

#define SY(spin, yield) (((uint64_t)(spin) << 32) | (yield))
TT_CALL(bi_null, rmpsc_backoff_init(NULL, v ? 6 : 0, v ? 10 : 0))
TT_CALL(bi_limits, rmpsc_backoff_init(h, (uint32_t)(v >> 32), (uint32_t)v))
TT_CALL(bs_null, rmpsc_backoff_spin(NULL))
TT_CALL(bz_null, rmpsc_backoff_snooze(NULL))
TT_CALL(bc_null, rmpsc_backoff_is_completed(NULL))
TT_CALL(br_null, rmpsc_backoff_reset(NULL))
TT_CALL(bs_fields, rmpsc_backoff_spin(bo_set(v, 0)))
TT_CALL(bz_fields, rmpsc_backoff_snooze(bo_set(v, 0)))
TT_CALL(bs_pad, rmpsc_backoff_spin(bo_set(SY(6, 10), (uint32_t)v)))
TT_CALL(bz_pad, rmpsc_backoff_snooze(bo_set(SY(6, 10), (uint32_t)v)))
#define BAD_FIELDS TT_VALS(SY(17, 64), SY(UINT32_MAX, 64), SY(6, 65), SY(6, UINT32_MAX), \
			   SY(6, 5), SY(16, 0))

static const struct tt_row backoff_rows[] = {
	TT_ROW("init: b NULL (limits 0/0 or 6/10)", bi_null, -EINVAL, B_KEPT, TT_VALS(0,
	       1)),
	TT_ROW("init: a limit out of range, or yield below spin", bi_limits, -EINVAL,
	       B_INIT,
	       TT_VALS(SY(17, 0), SY(17, 64), SY(UINT32_MAX, 0), SY(0, 65), SY(6, 65),
		       SY(0, UINT32_MAX), SY(6, 5), SY(0, 5), SY(0, 1), SY(8, 7), SY(16, 15),
		       SY(2, 1))),
	TT_ROW("spin: b NULL", bs_null, -EINVAL, B_KEPT),
	TT_ROW("snooze: b NULL", bz_null, -EINVAL, B_KEPT),
	TT_ROW("is_completed: b NULL", bc_null, -EINVAL, B_KEPT),
	TT_ROW("reset: b NULL", br_null, -EINVAL, B_KEPT),
	TT_ROW("spin: limits no init would write", bs_fields, -EINVAL, B_KEPT, BAD_FIELDS),
	TT_ROW("snooze: limits no init would write", bz_fields, -EINVAL, B_KEPT,
	       BAD_FIELDS),
	TT_ROW("spin: _pad0 not zero", bs_pad, -EINVAL, B_KEPT, TT_VALS(1, 0x80000000u)),
	TT_ROW("snooze: _pad0 not zero", bz_pad, -EINVAL, B_KEPT, TT_VALS(1, 0x80000000u)),
	TT_ROW("spin: _pad0 zero", bs_pad, 0, B_KEPT, TT_VALS(0)),
};

TT_TEST(test_backoff_calls_with_bad_argument_return_einval,
	.name = "backoff", TT_ROWS(backoff_rows), .setup = backoff_fx,
	.check = backoff_fx_check)

/* ======================================================================== */
/* rmpsc_backoff                                                            */
/* ======================================================================== */

static void test_backoff_init_with_zero_limits_takes_defaults(void **state)
{
	rmpsc_backoff b;

	(void)state;
	memset(&b, CANARY, sizeof b);
	assert_ret(rmpsc_backoff_init(&b, 0, 0), 0);
	assert_int_equal(b.step, 0);
	assert_int_equal(b.spin_limit, 6);
	assert_int_equal(b.yield_limit, 10);
	assert_int_equal(b._pad0, 0);
	assert_ret(rmpsc_backoff_is_completed(&b), 0);
}

static void test_backoff_init_with_valid_limits_records_them(void **state)
{
	static const struct {
		uint32_t spin, yield, want_spin, want_yield;
	} t[] = {
		{ 1, 1, 1, 1 },     { 1, 64, 1, 64 }, { 16, 16, 16, 16 },
		{ 16, 64, 16, 64 }, { 6, 6, 6, 6 },   { 0, 6, 6, 6 },
		{ 0, 64, 6, 64 },   { 3, 0, 3, 10 },  { 10, 0, 10, 10 },
		{ 2, 5, 2, 5 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		rmpsc_backoff b;

		memset(&b, CANARY, sizeof b);
		assert_ret(rmpsc_backoff_init(&b, t[i].spin, t[i].yield), 0);
		assert_int_equal(b.step, 0);
		assert_int_equal(b.spin_limit, t[i].want_spin);
		assert_int_equal(b.yield_limit, t[i].want_yield);
		assert_int_equal(b._pad0, 0);
	}
}

/* spin: the step goes 0, 1, ... and stops at spin_limit + 1; a spin-only
 * loop never completes while yield_limit > spin_limit. */
static void test_backoff_spin_advances_step_up_to_spin_limit_plus_one(void **state)
{
	rmpsc_backoff b;

	(void)state;
	assert_ret(rmpsc_backoff_init(&b, 0, 0), 0);
	for (uint32_t i = 1; i <= 20; i++) {
		assert_ret(rmpsc_backoff_spin(&b), 0);
		assert_int_equal(b.step, i < 7 ? i : 7);
		assert_int_equal(b.spin_limit, 6);
		assert_int_equal(b.yield_limit, 10);
		assert_ret(rmpsc_backoff_is_completed(&b), 0);
	}

	assert_ret(rmpsc_backoff_init(&b, 2, 5), 0);
	for (uint32_t i = 1; i <= 8; i++) {
		assert_ret(rmpsc_backoff_spin(&b), 0);
		assert_int_equal(b.step, i < 3 ? i : 3);
	}
	assert_ret(rmpsc_backoff_is_completed(&b), 0);
}

/* spin_limit == yield_limit: spin_limit + 1 is past yield_limit. */
static void test_backoff_spin_with_equal_limits_completes(void **state)
{
	rmpsc_backoff b;

	(void)state;
	assert_ret(rmpsc_backoff_init(&b, 3, 3), 0);
	for (uint32_t i = 1; i <= 3; i++) {
		assert_ret(rmpsc_backoff_spin(&b), 0);
		assert_ret(rmpsc_backoff_is_completed(&b), 0);
	}
	assert_ret(rmpsc_backoff_spin(&b), 0);
	assert_int_equal(b.step, 4);
	assert_ret(rmpsc_backoff_is_completed(&b), 1);
	assert_ret(rmpsc_backoff_spin(&b), 0);
	assert_int_equal(b.step, 4);
}

/* snooze: the step goes on to yield_limit + 1, where the backoff is
 * completed; it stays there. */
static void test_backoff_snooze_advances_step_and_completes_after_yield_limit(
	void **state)
{
	rmpsc_backoff b;

	(void)state;
	assert_ret(rmpsc_backoff_init(&b, 0, 0), 0);
	for (uint32_t i = 1; i <= 10; i++) {
		assert_ret(rmpsc_backoff_snooze(&b), 0);
		assert_int_equal(b.step, i);
		assert_ret(rmpsc_backoff_is_completed(&b), 0);
	}
	assert_ret(rmpsc_backoff_snooze(&b), 0);
	assert_int_equal(b.step, 11);
	assert_ret(rmpsc_backoff_is_completed(&b), 1);
	for (int i = 0; i < 5; i++) {
		assert_ret(rmpsc_backoff_snooze(&b), 0);
		assert_int_equal(b.step, 11);
		assert_ret(rmpsc_backoff_is_completed(&b), 1);
	}
	assert_int_equal(b.spin_limit, 6);
	assert_int_equal(b.yield_limit, 10);

	/* Custom limits: completed after yield_limit + 1 snoozes. */
	assert_ret(rmpsc_backoff_init(&b, 2, 4), 0);
	for (uint32_t i = 1; i <= 4; i++) {
		assert_ret(rmpsc_backoff_snooze(&b), 0);
		assert_ret(rmpsc_backoff_is_completed(&b), 0);
	}
	assert_ret(rmpsc_backoff_snooze(&b), 0);
	assert_int_equal(b.step, 5);
	assert_ret(rmpsc_backoff_is_completed(&b), 1);
}

/* The largest limits: 17 snoozes of up to 2^16 hints, then yields. */
static void test_backoff_snooze_with_max_limits_completes(void **state)
{
	rmpsc_backoff b;
	uint32_t n = 0;

	(void)state;
	assert_ret(rmpsc_backoff_init(&b, 16, 64), 0);
	while (rmpsc_backoff_is_completed(&b) == 0) {
		assert_ret(rmpsc_backoff_snooze(&b), 0);
		assert_true(++n <= 65);
	}
	assert_int_equal(n, 65);
	assert_int_equal(b.step, 65);
}

static void test_backoff_reset_returns_to_step_zero(void **state)
{
	rmpsc_backoff b;

	(void)state;
	assert_ret(rmpsc_backoff_init(&b, 2, 4), 0);
	for (int i = 0; i < 6; i++)
		assert_ret(rmpsc_backoff_snooze(&b), 0);
	assert_ret(rmpsc_backoff_is_completed(&b), 1);
	assert_ret(rmpsc_backoff_reset(&b), 0);
	assert_int_equal(b.step, 0);
	assert_int_equal(b.spin_limit, 2);
	assert_int_equal(b.yield_limit, 4);
	assert_ret(rmpsc_backoff_is_completed(&b), 0);
	/* and it runs the same course again */
	for (uint32_t i = 1; i <= 5; i++)
		assert_ret(rmpsc_backoff_snooze(&b), 0);
	assert_ret(rmpsc_backoff_is_completed(&b), 1);
	assert_ret(rmpsc_backoff_reset(&b), 0);
	assert_ret(rmpsc_backoff_spin(&b), 0);
	assert_int_equal(b.step, 1);
}

/* A default yield limit below a larger spin limit is raised to it. */
static void test_backoff_init_with_default_yield_limit_raises_it_to_spin_limit(void **state)
{
	rmpsc_backoff b;

	(void)state;
	assert_ret(rmpsc_backoff_init(&b, 12, 0), 0);
	assert_int_equal(b.yield_limit, 12);
	assert_ret(rmpsc_backoff_init(&b, 4, 0), 0);
	assert_int_equal(b.yield_limit, 10);
}

/* ======================================================================== */
/* ring: timeout 0, short timeouts                                          */
/* ======================================================================== */

/* Every timed call of one side (@first..@last), with every kind and with
 * the ring's strategy, where it would have to wait: -ETIMEDOUT after @t. */
static void side_times_out(rmpsc_ring *r, int first, int last, int64_t t)
{
	for (size_t k = 0; k < N_KINDS; k++) {
		rmpsc_wait w = strategy(all_kinds[k]);

		for (int c = first; c <= last; c++)
			expect_timeout(r, c, t, &w, wait_kind_name(all_kinds[k]));
	}
	for (int c = first; c <= last; c++)
		expect_timeout(r, c, t, NULL, "ring strategy");
}

static void test_wait_producer_calls_when_full_with_zero_timeout_return_etimedout(
	void **state)
{
	rmpsc_ring *r = *state;

	fill(r, 0);
	side_times_out(r, C_RESERVE, C_PUSH_N, 0);
	ring_pop_seq(r, 0, FIX_CAP);
}

static void test_wait_consumer_calls_when_empty_with_zero_timeout_return_etimedout(
	void **state)
{
	side_times_out(*state, C_READABLE, C_POP_N, 0);
}

/* Timeout 0 is a try: it succeeds whenever the try call would. */
static void test_wait_calls_with_zero_timeout_succeed_when_possible(void **state)
{
	rmpsc_ring *r = *state;
	uint64_t v;

	for (int c = C_RESERVE; c <= C_PUSH_N; c++) {
		v = 100 + (uint64_t)c;
		assert_ret(call_timed(r, c, 0, NULL, &v), 0);
	}
	for (int c = C_READABLE; c <= C_POP_N; c++) {
		v = 0;
		assert_ret(call_timed(r, c, 0, NULL, &v), 0);
		assert_int_equal(v, 100 + (uint64_t)(c - C_READABLE));
	}
	assert_ret(rmpsc_ring_is_empty(r), 1);
}

static void test_wait_producer_calls_when_full_with_short_timeout_return_etimedout(
	void **state)
{
	rmpsc_ring *r = *state;

	fill(r, 0);
	side_times_out(r, C_RESERVE, C_PUSH_N, 2 * MS);
	expect_timeout(r, C_PUSH, 1, NULL, "1 ns");
	ring_pop_seq(r, 0, FIX_CAP);
}

static void test_wait_consumer_calls_when_empty_with_short_timeout_return_etimedout(
	void **state)
{
	side_times_out(*state, C_READABLE, C_POP_N, 2 * MS);
	expect_timeout(*state, C_POP, 1, NULL, "1 ns");
}

/* A spin/yield-only strategy and one that idles at once still honour the
 * timeout (the idle phase is reached or not). */
static void test_wait_timeout_with_zero_counts_returns_etimedout(void **state)
{
	rmpsc_ring *r = *state;

	for (size_t k = 0; k < N_KINDS; k++) {
		rmpsc_wait w = strategy(all_kinds[k]);

		w.spin_count = 0;
		w.yield_count = 0;
		expect_timeout(r, C_POP, 3 * MS, &w, wait_kind_name(all_kinds[k]));
		w.spin_count = 100000;
		w.yield_count = 0;
		expect_timeout(r, C_POP, 3 * MS, &w, wait_kind_name(all_kinds[k]));
	}
}

/* DEADLINE: the strategy's own timeout_ns bounds a wait the caller made
 * unlimited (the smaller of the two wins). */
static void test_wait_deadline_strategy_bounds_unlimited_wait(void **state)
{
	rmpsc_ring *r = *state;
	rmpsc_wait w = strategy(RMPSC_WAIT_DEADLINE);
	struct guard g;
	uint64_t v = 1;
	int64_t t0;
	int rc;

	w.timeout_ns = 2 * MS;
	guard_start(&g, "DEADLINE 2 ms, pop_timed(-1)", r, NULL);
	t0 = now_ns();
	rc = rmpsc_ring_pop_timed(r, &v, -1, &w);
	guard_check(&g);
	assert_ret(rc, -ETIMEDOUT);
	assert_elapsed_at_least(t0, 2 * MS, "DEADLINE pop_timed(-1)");

	fill(r, 0);
	guard_start(&g, "DEADLINE 2 ms, push_timed(-1)", r, NULL);
	t0 = now_ns();
	rc = rmpsc_ring_push_timed(r, &v, -1, &w);
	guard_check(&g);
	assert_ret(rc, -ETIMEDOUT);
	assert_elapsed_at_least(t0, 2 * MS, "DEADLINE push_timed(-1)");
	ring_pop_seq(r, 0, FIX_CAP);

	/* The call's timeout is the smaller: it wins. */
	w.timeout_ns = 600 * 1000 * MS;
	expect_timeout(r, C_POP, 2 * MS, &w, "DEADLINE 600 s");
	/* timeout_ns 0: every wait ends at once. */
	w.timeout_ns = 0;
	guard_start(&g, "DEADLINE 0, pop_timed(-1)", r, NULL);
	rc = rmpsc_ring_pop_timed(r, &v, -1, &w);
	guard_check(&g);
	assert_ret(rc, -ETIMEDOUT);
}

/* ======================================================================== */
/* ring: -EPIPE                                                             */
/* ======================================================================== */

static void test_wait_producer_calls_on_closed_ring_return_epipe(void **state)
{
	rmpsc_ring *r = *state;
	static const int64_t timeouts[] = { 0, 2 * MS, -1 };
	struct guard g;

	assert_ret(rmpsc_ring_close(r), 0);
	guard_start(&g, "producer calls on a closed ring", r, NULL);
	for (size_t t = 0; t < 3; t++) {
		for (int c = C_RESERVE; c <= C_PUSH_N; c++) {
			uint64_t v = 5;

			assert_ret(call_timed(r, c, timeouts[t], NULL, &v), -EPIPE);
		}
	}
	guard_check(&g);
	assert_ret(rmpsc_ring_len(r), 0);

	/* Closed and full: -EPIPE at once rather than waiting for room. */
	assert_ret(rmpsc_ring_reset(r), 0);
	fill(r, 0);
	assert_ret(rmpsc_ring_close(r), 0);
	guard_start(&g, "producer calls on a closed full ring", r, NULL);
	for (size_t t = 0; t < 3; t++) {
		for (int c = C_RESERVE; c <= C_PUSH_N; c++) {
			uint64_t v = 5;

			assert_ret(call_timed(r, c, timeouts[t], NULL, &v), -EPIPE);
		}
	}
	guard_check(&g);
}

/* The consumer keeps receiving what was committed; -EPIPE only after. */
static void test_wait_pop_timed_on_closed_ring_returns_items_then_epipe(void **state)
{
	rmpsc_ring *r = *state;
	struct guard g;
	uint64_t v;

	ring_push_seq(r, 10, 3);
	assert_ret(rmpsc_ring_close(r), 0);
	guard_start(&g, "pop_timed on a closed ring", r, NULL);
	for (uint64_t i = 0; i < 3; i++) {
		v = 0;
		assert_ret(rmpsc_ring_pop_timed(r, &v, -1, NULL), 0);
		assert_int_equal(v, 10 + i);
	}
	assert_ret(rmpsc_ring_pop_timed(r, &v, -1, NULL), -EPIPE);
	assert_ret(rmpsc_ring_pop_timed(r, &v, 0, NULL), -EPIPE);
	assert_ret(rmpsc_ring_pop_timed(r, &v, 2 * MS, NULL), -EPIPE);
	assert_ret(rmpsc_ring_pop_timed(r, &v, -1, NULL), -EPIPE);
	guard_check(&g);
}

static void test_wait_pop_n_and_readable_timed_on_closed_ring_return_items_then_epipe(
	void **state)
{
	rmpsc_ring *r = *state;
	uint64_t buf[8];
	struct guard g;
	rmpsc_span s;

	ring_push_seq(r, 20, 3);
	assert_ret(rmpsc_ring_close(r), 0);
	guard_start(&g, "pop_n_timed/readable_timed on a closed ring", r, NULL);
	assert_ret(rmpsc_ring_pop_n_timed(r, buf, 2, -1, NULL), 2);
	assert_int_equal(buf[0], 20);
	assert_int_equal(buf[1], 21);
	assert_ret(rmpsc_ring_readable_timed(r, 8, &s, -1, NULL), 1);
	assert_int_equal(*(uint64_t *)s.iov[0].iov_base, 22);
	assert_ret(rmpsc_ring_advance(r, 1), 0);
	assert_ret(rmpsc_ring_pop_n_timed(r, buf, 8, -1, NULL), -EPIPE);
	assert_ret(rmpsc_ring_readable_timed(r, 8, &s, -1, NULL), -EPIPE);
	assert_ret(rmpsc_ring_pop_n_timed(r, buf, 8, 0, NULL), -EPIPE);
	assert_ret(rmpsc_ring_readable_timed(r, 8, &s, 2 * MS, NULL), -EPIPE);
	guard_check(&g);

	/* readable_timed on a closed ring with items, several at once */
	assert_ret(rmpsc_ring_reset(r), 0);
	ring_push_seq(r, 30, 4);
	assert_ret(rmpsc_ring_close(r), 0);
	assert_ret(rmpsc_ring_readable_timed(r, 8, &s, -1, NULL), 4);
	assert_ret(rmpsc_ring_advance(r, 4), 0);
	assert_ret(rmpsc_ring_readable_timed(r, 8, &s, 0, NULL), -EPIPE);
}

/* Close is final: a reservation made before the close is dropped, its
 * commit returns -EPIPE and the consumer sees nothing of it. */
static void test_wait_reserve_timed_then_close_commit_returns_epipe(void **state)
{
	rmpsc_ring *r = *state;
	rmpsc_span s, s2;
	uint64_t v;

	ring_push_seq(r, 40, 1);
	assert_ret(rmpsc_ring_reserve_timed(r, 2, &s, -1, NULL), 2);
	((uint64_t *)s.iov[0].iov_base)[0] = 41;
	((uint64_t *)s.iov[0].iov_base)[1] = 42;
	assert_ret(rmpsc_ring_close(r), 0);
	assert_ret(rmpsc_ring_reserve_timed(r, 1, &s2, -1, NULL), -EPIPE);
	assert_ret(rmpsc_ring_commit(r, 3), -EINVAL); /* over-commit stays -EINVAL */
	assert_ret(rmpsc_ring_commit(r, 2), -EPIPE);
	assert_ret(rmpsc_ring_pop_timed(r, &v, -1, NULL), 0);
	assert_int_equal(v, 40);
	assert_ret(rmpsc_ring_pop_timed(r, &v, -1, NULL), -EPIPE);
	assert_ret(rmpsc_ring_len(r), 0);
}

/* ======================================================================== */
/* ring: timed calls, arguments                                             */
/* ======================================================================== */

/* A larger strategy struct with a zero tail works (a non-zero tail is
 * -E2BIG: the ring table of test_ring). */
static void test_wait_timed_calls_with_larger_zero_tail_strategy_succeed(void **state)
{
	rmpsc_ring *r = *state;
	union waitbuf u;

	memset(u.b, 0, sizeof u.b);
	assert_ret(rmpsc_wait_init(&u.w, 48, RMPSC_WAIT_BLOCK), 0);
	for (int c = C_RESERVE; c < C_COUNT; c++) {
		uint64_t v = 7;

		assert_ret(call_timed(r, c, 2 * MS, &u.w, &v), 0);
		if (!call_produces(c))
			assert_int_equal(v, 7);
	}
}

/* n == 0 returns 0 at once, even where a wait for n >= 1 would block. */
static void test_wait_timed_calls_with_zero_n_return_zero_at_once(void **state)
{
	rmpsc_ring *r = *state;
	uint64_t buf[FIX_CAP];
	struct guard g;
	rmpsc_span s;

	guard_start(&g, "n == 0 on an empty ring", r, NULL);
	memset(&s, CANARY, sizeof s);
	assert_ret(rmpsc_ring_readable_timed(r, 0, &s, -1, NULL), 0);
	assert_int_equal(s.nseg, 0);
	assert_int_equal(s.count[0], 0);
	assert_int_equal(s.count[1], 0);
	assert_int_equal(s.iov[0].iov_len, 0);
	assert_int_equal(s.iov[1].iov_len, 0);
	assert_ret(rmpsc_ring_pop_n_timed(r, buf, 0, -1, NULL), 0);
	assert_ret(rmpsc_ring_pop_n_timed(r, NULL, 0, -1, NULL), 0);
	assert_ret(rmpsc_ring_pop_n_timed(r, buf, 0, 2 * MS, NULL), 0);
	guard_check(&g);

	fill(r, 0);
	guard_start(&g, "n == 0 on a full ring", r, NULL);
	memset(&s, CANARY, sizeof s);
	assert_ret(rmpsc_ring_reserve_timed(r, 0, &s, -1, NULL), 0);
	assert_int_equal(s.nseg, 0);
	assert_int_equal(s.count[0], 0);
	assert_int_equal(s.count[1], 0);
	assert_ret(rmpsc_ring_push_n_timed(r, buf, 0, -1, NULL), 0);
	assert_ret(rmpsc_ring_push_n_timed(r, NULL, 0, -1, NULL), 0);
	assert_ret(rmpsc_ring_push_n_timed(r, buf, 0, 2 * MS, NULL), 0);
	guard_check(&g);
	assert_ret(rmpsc_ring_len(r), FIX_CAP);
	ring_pop_seq(r, 0, FIX_CAP);
}

/* Best effort like the try calls: what is there (or fits) comes at once. */
static void test_wait_batch_timed_calls_take_what_is_ready(void **state)
{
	rmpsc_ring *r = *state;
	uint64_t in[8] = { 0, 1, 2, 3, 4, 5, 6, 7 }, out[8];
	rmpsc_span s;

	assert_ret(rmpsc_ring_push_n_timed(r, in, 2, 0, NULL), 2);
	assert_ret(rmpsc_ring_pop_n_timed(r, out, 8, 2 * MS, NULL), 2);
	assert_int_equal(out[0], 0);
	assert_int_equal(out[1], 1);
	/* positions at 2: a span of 4 wraps, 2 + 2 */
	assert_ret(rmpsc_ring_reserve_timed(r, 8, &s, 2 * MS, NULL), FIX_CAP);
	assert_int_equal(s.nseg, 2);
	assert_int_equal(s.count[0], 2);
	assert_int_equal(s.count[1], 2);
	assert_int_equal(s.pos, 2);
	for (uint32_t i = 0; i < 2; i++) {
		((uint64_t *)s.iov[0].iov_base)[i] = 100 + i;
		((uint64_t *)s.iov[1].iov_base)[i] = 102 + i;
	}
	assert_ret(rmpsc_ring_commit(r, FIX_CAP), 0);
	assert_ret(rmpsc_ring_readable_timed(r, 8, &s, 2 * MS, NULL), FIX_CAP);
	assert_int_equal(s.nseg, 2);
	assert_int_equal(s.count[0], 2);
	assert_int_equal(s.count[1], 2);
	assert_int_equal(s.pos, 2);
	assert_int_equal(((uint64_t *)s.iov[0].iov_base)[0], 100);
	assert_int_equal(((uint64_t *)s.iov[1].iov_base)[1], 103);
	assert_ret(rmpsc_ring_advance(r, FIX_CAP), 0);
	/* push_n_timed of what fits at once returns n */
	assert_ret(rmpsc_ring_push_n_timed(r, in, FIX_CAP, 0, NULL), FIX_CAP);
	assert_ret(rmpsc_ring_pop_n_timed(r, out, FIX_CAP, 0, NULL), FIX_CAP);
	for (uint32_t i = 0; i < FIX_CAP; i++)
		assert_int_equal(out[i], i);
}

/* ======================================================================== */
/* ring: push_n_timed partial counts                                        */
/* ======================================================================== */

struct pusher {
	pthread_t t;
	rmpsc_ring *r;
	uint64_t items[10];
	uint32_t n;
	int64_t timeout;
	int64_t elapsed;
	int rc;
};

static void *pusher_main(void *arg)
{
	struct pusher *p = arg;
	const int64_t t0 = now_ns();

	p->rc = rmpsc_ring_push_n_timed(p->r, p->items, p->n, p->timeout, NULL);
	p->elapsed = now_ns() - t0;
	return NULL;
}

static void wait_len(rmpsc_ring *r, int64_t want)
{
	while (rmpsc_ring_len(r) != want)
		sleep_ns(50 * US);
}

/*
 * push_n_timed(10) into a ring of 4 with a 250 ms timeout while this thread
 * takes 3: the call pushes 4 + what the consumer made room for, then the
 * time runs out and it returns that count (a partial push is not an error).
 */
static void test_wait_push_n_timed_when_time_runs_out_returns_partial_count(
	void **state)
{
	rmpsc_ring *r = *state;
	struct pusher p = { .r = r, .n = 10, .timeout = 250 * MS };
	uint64_t v;
	int64_t len;

	for (uint32_t i = 0; i < 10; i++)
		p.items[i] = 500 + i;
	assert_int_equal(pthread_create(&p.t, NULL, pusher_main, &p), 0);
	wait_len(r, FIX_CAP);
	ring_pop_seq(r, 500, 3);
	assert_int_equal(pthread_join(p.t, NULL), 0);

	len = rmpsc_ring_len(r);
	print_message("  push_n_timed(10, 250 ms) with 3 taken: %d pushed, %" PRId64
		      " left in the ring\n", p.rc, len);
	assert_true(p.rc >= FIX_CAP && p.rc <= FIX_CAP + 3);
	assert_ret(len, p.rc - 3);
	assert_true(p.elapsed >= p.timeout);
	for (int64_t i = 0; i < len; i++) {
		assert_ret(rmpsc_ring_pop(r, &v), 0);
		assert_int_equal(v, 503 + (uint64_t)i);
	}
	assert_ret(rmpsc_ring_pop(r, &v), -EAGAIN);
}

/* Interrupted by a close after a partial push: that count, exactly. */
static void test_wait_push_n_timed_when_closed_returns_partial_count(void **state)
{
	rmpsc_ring *r = *state;
	struct pusher p = { .r = r, .n = 10, .timeout = -1 };
	struct guard g;
	uint64_t v;

	for (uint32_t i = 0; i < 10; i++)
		p.items[i] = 700 + i;
	guard_start(&g, "push_n_timed(10, -1) with a close", r, NULL);
	assert_int_equal(pthread_create(&p.t, NULL, pusher_main, &p), 0);
	wait_len(r, FIX_CAP);
	ring_pop_seq(r, 700, 2);
	wait_len(r, FIX_CAP); /* 6 pushed, waiting for room for the 7th */
	sleep_ns(2 * MS);
	assert_ret(rmpsc_ring_close(r), 0);
	assert_int_equal(pthread_join(p.t, NULL), 0);
	guard_check(&g);
	assert_ret(p.rc, 6);
	for (uint64_t i = 2; i < 6; i++) {
		assert_ret(rmpsc_ring_pop_timed(r, &v, -1, NULL), 0);
		assert_int_equal(v, 700 + i);
	}
	assert_ret(rmpsc_ring_pop_timed(r, &v, -1, NULL), -EPIPE);
}

/* Nothing pushed when the time runs out: -ETIMEDOUT, not 0. */
static void test_wait_push_n_timed_when_nothing_fits_returns_etimedout(void **state)
{
	rmpsc_ring *r = *state;
	uint64_t items[3] = { 1, 2, 3 };
	int64_t t0;

	fill(r, 0);
	t0 = now_ns();
	assert_ret(rmpsc_ring_push_n_timed(r, items, 3, 2 * MS, NULL), -ETIMEDOUT);
	assert_elapsed_at_least(t0, 2 * MS, "push_n_timed(3)");
	assert_ret(rmpsc_ring_push_n_timed(r, items, 3, 0, NULL), -ETIMEDOUT);
	assert_ret(rmpsc_ring_len(r), FIX_CAP);
}

/*
 * ring.h's Close rule covers the blocking producer calls too: on a closed
 * ring -EPIPE comes before everything but the handle and pointer checks,
 * n == 0 and n above INT32_MAX included (push_n_timed returned 0 and
 * -EINVAL for those).
 */
static void test_wait_producer_timed_calls_on_closed_ring_return_epipe_first(void **state)
{
	rmpsc_ring *r = *state;
	uint64_t items[FIX_CAP] = { 1, 2, 3, 4 };
	rmpsc_span s;

	assert_ret(rmpsc_ring_close(r), 0);
	assert_ret(rmpsc_ring_push_n_timed(r, items, 0, -1, NULL), -EPIPE);
	assert_ret(rmpsc_ring_push_n_timed(r, items, UINT32_MAX, 0, NULL), -EPIPE);
	assert_ret(rmpsc_ring_push_n_timed(r, NULL, 1, 0, NULL), -EINVAL);
	assert_ret(rmpsc_ring_reserve_timed(r, 0, &s, 0, NULL), -EPIPE);
	assert_ret(rmpsc_ring_push_n(r, items, 0), -EPIPE);
}

/* ======================================================================== */
/* ring: every kind waits and succeeds                                      */
/* ======================================================================== */

/*
 * For every wait kind and every timed call: the ring is empty (consumer
 * calls) or full (producer calls), the call waits without limit and a
 * second thread brings an element or takes one after 3 ms.
 */
static void test_wait_every_kind_succeeds_when_other_side_acts_later(void **state)
{
	rmpsc_ring *r = *state;
	char what[96];

	for (size_t k = 0; k < N_KINDS; k++) {
		rmpsc_wait w = strategy(all_kinds[k]);

		for (int c = C_RESERVE; c < C_COUNT; c++) {
			const bool prod = call_produces(c);
			const enum hop op = prod ? H_POP : H_PUSH;
			struct helper h;
			struct guard g;
			uint64_t v = 9000 + (uint64_t)c;
			int rc;

			assert_ret(rmpsc_ring_reset(r), 0);
			if (prod)
				fill(r, 0);
			snprintf(what, sizeof what, "%s %s(-1)",
				 wait_kind_name(all_kinds[k]),
				 call_names[c]);
			guard_start(&g, what, r, NULL);
			helper_start(&h, r, 3 * MS, 4242, 1, &op);
			rc = call_timed(r, c, -1, &w, &v);
			helper_join(&h);
			guard_check(&g);
			if (rc != 0)
				fail_msg("%s returned %d (%s)", what, rc, errname(rc));
			if (prod) {
				assert_int_equal(h.got[0], 0);
				ring_pop_seq(r, 1, FIX_CAP - 1);
				ring_pop_seq(r, 9000 + (uint64_t)c, 1);
			} else {
				assert_int_equal(v, 4242);
			}
			assert_ret(rmpsc_ring_is_empty(r), 1);
		}
	}
}

/* The same with a finite timeout far above the delay. */
static void test_wait_every_kind_with_long_timeout_succeeds(void **state)
{
	rmpsc_ring *r = *state;

	for (size_t k = 0; k < N_KINDS; k++) {
		rmpsc_wait w = strategy(all_kinds[k]);
		const enum hop push = H_PUSH, pop = H_POP;
		struct helper h;
		uint64_t v = 0;

		assert_ret(rmpsc_ring_reset(r), 0);
		helper_start(&h, r, 3 * MS, 77, 1, &push);
		assert_ret(rmpsc_ring_pop_timed(r, &v, 60000 * MS, &w), 0);
		helper_join(&h);
		assert_int_equal(v, 77);

		fill(r, 0);
		helper_start(&h, r, 3 * MS, 0, 1, &pop);
		v = 78;
		assert_ret(rmpsc_ring_push_timed(r, &v, 60000 * MS, &w), 0);
		helper_join(&h);
		ring_pop_seq(r, 1, FIX_CAP - 1);
		ring_pop_seq(r, 78, 1);
	}
}

/* Timeouts that overflow a naive now + timeout: INT64_MAX, and negative
 * values other than -1 (no limit). */
static void test_wait_extreme_timeouts_wait_for_the_other_side(void **state)
{
	static const int64_t timeouts[] = { INT64_MAX, INT64_MAX - 1, INT64_MIN, -2 };
	rmpsc_ring *r = *state;
	rmpsc_wait dl = strategy(RMPSC_WAIT_DEADLINE);

	dl.timeout_ns = INT64_MAX;
	for (size_t t = 0; t < sizeof timeouts / sizeof timeouts[0]; t++) {
		for (int i = 0; i < 2; i++) {
			const rmpsc_wait *wp = i ? &dl : NULL;
			const enum hop push = H_PUSH, pop = H_POP;
			struct helper h;
			struct guard g;
			uint64_t v = 0;

			assert_ret(rmpsc_ring_reset(r), 0);
			guard_start(&g, "extreme timeout", r, NULL);
			helper_start(&h, r, 3 * MS, 55, 1, &push);
			assert_ret(rmpsc_ring_pop_timed(r, &v, timeouts[t], wp), 0);
			helper_join(&h);
			assert_int_equal(v, 55);

			fill(r, 0);
			helper_start(&h, r, 3 * MS, 0, 1, &pop);
			v = 56;
			assert_ret(rmpsc_ring_push_timed(r, &v, timeouts[t], wp), 0);
			helper_join(&h);
			guard_check(&g);
			ring_pop_seq(r, 1, FIX_CAP - 1);
			ring_pop_seq(r, 56, 1);
		}
	}
}

/* Every publishing try call wakes a consumer asleep on the futex. */
static void test_wait_block_consumer_woken_by_every_publishing_call(void **state)
{
	static const enum hop wakers[] = { H_PUSH, H_PUSH_N, H_PUSH_N_EXACT,
					   H_RESERVE_COMMIT };
	rmpsc_ring *r = *state;
	rmpsc_wait w = block_now();
	char what[96];

	for (size_t i = 0; i < sizeof wakers / sizeof wakers[0]; i++) {
		for (int c = C_READABLE; c < C_COUNT; c++) {
			struct helper h;
			struct guard g;
			uint64_t v = 0;
			int rc;

			snprintf(what, sizeof what, "BLOCK %s woken by %s", call_names[c],
				 hop_names[wakers[i]]);
			guard_start(&g, what, r, NULL);
			helper_start(&h, r, 3 * MS, 1000 + i, 1, &wakers[i]);
			rc = call_timed(r, c, -1, &w, &v);
			helper_join(&h);
			guard_check(&g);
			if (rc != 0)
				fail_msg("%s: %d (%s)", what, rc, errname(rc));
			assert_int_equal(v, 1000 + i);
		}
	}
}

/* Every releasing try call wakes a producer asleep on the futex. */
static void test_wait_block_producer_woken_by_every_releasing_call(void **state)
{
	static const enum hop wakers[] = { H_POP, H_POP_N, H_POP_N_EXACT, H_READ_ADVANCE,
					   H_SKIP, H_DRAIN, H_DRAIN_NULL };
	rmpsc_ring *r = *state;
	rmpsc_wait w = block_now();
	char what[96];

	for (size_t i = 0; i < sizeof wakers / sizeof wakers[0]; i++) {
		for (int c = C_RESERVE; c <= C_PUSH_N; c++) {
			struct helper h;
			struct guard g;
			uint64_t v = 3000 + i;
			int rc;

			assert_ret(rmpsc_ring_reset(r), 0);
			fill(r, 0);
			snprintf(what, sizeof what, "BLOCK %s woken by %s", call_names[c],
				 hop_names[wakers[i]]);
			guard_start(&g, what, r, NULL);
			helper_start(&h, r, 3 * MS, 0, 1, &wakers[i]);
			rc = call_timed(r, c, -1, &w, &v);
			helper_join(&h);
			guard_check(&g);
			if (rc != 0)
				fail_msg("%s: %d (%s)", what, rc, errname(rc));
			ring_pop_seq(r, 1, FIX_CAP - 1);
			ring_pop_seq(r, 3000 + i, 1);
		}
	}
}

/* push_n_timed waits as often as needed; pop_n_timed returns what came. */
static void test_wait_push_n_timed_waits_repeatedly_until_all_pushed(void **state)
{
	static const enum hop pops[3] = { H_POP, H_SKIP, H_POP };
	rmpsc_ring *r = *state;
	uint64_t items[3] = { 10, 11, 12 };
	struct helper h;
	struct guard g;

	fill(r, 0);
	guard_start(&g, "push_n_timed(3, -1) with three slow releases", r, NULL);
	helper_start(&h, r, 3 * MS, 0, 3, pops);
	assert_ret(rmpsc_ring_push_n_timed(r, items, 3, -1, NULL), 3);
	helper_join(&h);
	guard_check(&g);
	assert_int_equal(h.got[0], 0);
	assert_int_equal(h.got[2], 2);
	ring_pop_seq(r, 3, 1);
	ring_pop_seq(r, 10, 3);
}

/* ======================================================================== */
/* ring: close wakes waiters                                                */
/* ======================================================================== */

struct blocked {
	pthread_t t;
	rmpsc_ring *r;
	int call;
	const rmpsc_wait *w;
	atomic_int entered;
	int rc;
};

static void *blocked_main(void *arg)
{
	struct blocked *b = arg;
	uint64_t v = 1;

	atomic_store_explicit(&b->entered, 1, memory_order_release);
	b->rc = call_timed(b->r, b->call, -1, b->w, &v);
	return NULL;
}

static void blocked_start(struct blocked *b, rmpsc_ring *r, int call, const rmpsc_wait *w)
{
	b->r = r;
	b->call = call;
	b->w = w;
	b->rc = INT_MIN;
	atomic_init(&b->entered, 0);
	assert_int_equal(pthread_create(&b->t, NULL, blocked_main, b), 0);
	while (!atomic_load_explicit(&b->entered, memory_order_acquire))
		sched_yield();
}

/*
 * A close wakes a RMPSC_WAIT_SLEEP waiter at once, as it does every other
 * kind's: the header promises it for every strategy. SLEEP used to sleep in
 * clock_nanosleep(2), which no close can interrupt, and returned up to
 * sleep_ns (here 1 s, the most) after the close. It now sleeps on the
 * side's futex word, which every close bumps and wakes. Checked without
 * a clock: the waiter (no spin or yield phase) is found blocked in the
 * kernel (/proc/self/task/TID/syscall) in FUTEX_WAIT on exactly that word,
 * then the close from this thread returns it -EPIPE; the guard catches a
 * waiter that stays blocked. A consumer on an empty ring and a producer on
 * a full one. The time from the close to the return is printed.
 */
struct sleeper {
	pthread_t t;
	rmpsc_ring *r;
	int call;
	rmpsc_wait w;
	_Atomic long tid;
	int rc;
	int64_t returned;
};

static void *sleeper_main(void *arg)
{
	struct sleeper *s = arg;
	uint64_t v = 1;

	atomic_store_explicit(&s->tid, (long)syscall(SYS_gettid), memory_order_release);
	s->rc = call_timed(s->r, s->call, -1, &s->w, &v);
	s->returned = now_ns();
	return NULL;
}

/* The system call @tid is blocked in, and its first argument; false while
 * it runs (or is between calls). */
static bool blocked_in(long tid, long *nr, unsigned long *arg0)
{
	char path[64], buf[256];
	FILE *f;
	bool ok;

	snprintf(path, sizeof path, "/proc/self/task/%ld/syscall", tid);
	f = fopen(path, "re");
	if (!f)
		return false;
	ok = fgets(buf, sizeof buf, f) && sscanf(buf, "%ld %lx", nr, arg0) == 2;
	fclose(f);
	return ok && *nr >= 0;
}

static void test_wait_sleep_kind_when_blocked_close_wakes_it_at_once(void **state)
{
	(void)state;
	for (int side = 0; side < 2; side++) {
		rmpsc_ring *r = ring_make(2, 8, 0, 0);
		const void *word = side ? tc_producer_sleep_word(tc_ring_core(r))
					: tc_consumer_sleep_word(tc_ring_core(r));
		struct sleeper s = { .r = r, .call = side ? C_PUSH : C_POP };
		struct guard g;
		long tid, nr = -1;
		unsigned long arg0 = 0;
		int64_t closed;

		if (side)
			fill(r, 0);
		s.w = strategy(RMPSC_WAIT_SLEEP);
		s.w.spin_count = 0;
		s.w.yield_count = 0;
		s.w.sleep_ns = 1000000000; /* 1 s, the most */
		atomic_init(&s.tid, 0);
		guard_start(&g, side ? "SLEEP producer, then close" : "SLEEP consumer, then close",
			    r, NULL);
		assert_int_equal(pthread_create(&s.t, NULL, sleeper_main, &s), 0);
		while ((tid = atomic_load_explicit(&s.tid, memory_order_acquire)) == 0)
			sched_yield();
		/* until it sleeps: in FUTEX_WAIT now (clock_nanosleep before) */
		while (!blocked_in(tid, &nr, &arg0) ||
		       (nr != SYS_futex && nr != SYS_clock_nanosleep && nr != SYS_nanosleep))
			sleep_ns(100 * 1000);
		if (nr != SYS_futex || arg0 != (unsigned long)(uintptr_t)word)
			print_error("the SLEEP waiter sleeps in system call %ld on %#lx; a close"
				    " wakes FUTEX_WAIT (%d) on %p\n", nr, arg0, SYS_futex,
				    (const void *)word);
		assert_int_equal(nr, SYS_futex);
		assert_int_equal(arg0, (unsigned long)(uintptr_t)word);
		closed = now_ns();
		assert_ret(rmpsc_ring_close(r), 0);
		assert_int_equal(pthread_join(s.t, NULL), 0);
		guard_check(&g);
		assert_ret(s.rc, -EPIPE);
		print_message("  SLEEP %s: returned %.3f ms after the close (sleep_ns 1 s)\n",
			      side ? "producer" : "consumer", (double)(s.returned - closed) / 1e6);
		rmpsc_ring_destroy(r);
	}
}

/*
 * A producer blocked on a full ring and a consumer blocked on an empty one
 * (one ring cannot be both), every kind and every call; this thread closes
 * both rings; both calls return -EPIPE.
 */
static void test_wait_close_from_third_thread_wakes_blocked_producer_and_consumer(
	void **state)
{
	rmpsc_ring *full = ring_make(2, 8, 0, 0), *empty = ring_make(2, 8, 0, 0);
	char what[96];

	(void)state;
	for (size_t k = 0; k <= N_KINDS; k++) {
		/* k == N_KINDS: NULL, the rings' strategy */
		rmpsc_wait w = strategy(k < N_KINDS ? all_kinds[k] : RMPSC_WAIT_BLOCK);
		const rmpsc_wait *wp = k < N_KINDS ? &w : NULL;

		for (int c = 0; c < 3; c++) {
			struct blocked p, q;
			struct guard g;

			assert_ret(rmpsc_ring_reset(full), 0);
			assert_ret(rmpsc_ring_reset(empty), 0);
			fill(full, 0);
			snprintf(what, sizeof what, "close of %s %s / %s",
				 k < N_KINDS ? wait_kind_name(all_kinds[k]) : "NULL",
				 call_names[C_RESERVE + c], call_names[C_READABLE + c]);
			guard_start(&g, what, NULL, NULL);
			blocked_start(&p, full, C_RESERVE + c, wp);
			blocked_start(&q, empty, C_READABLE + c, wp);
			sleep_ns(5 * MS); /* let both reach their idle phase */
			assert_ret(rmpsc_ring_close(full), 0);
			assert_ret(rmpsc_ring_close(empty), 0);
			assert_int_equal(pthread_join(p.t, NULL), 0);
			assert_int_equal(pthread_join(q.t, NULL), 0);
			guard_check(&g);
			if (p.rc != -EPIPE || q.rc != -EPIPE)
				fail_msg("%s: producer %d (%s), consumer %d (%s)", what,
					 p.rc, errname(p.rc), q.rc, errname(q.rc));
			/* the full ring still hands out what it holds */
			ring_pop_seq(full, 0, 2);
			assert_ret(rmpsc_ring_pop(full, &(uint64_t){ 0 }), -EPIPE);
		}
	}
	rmpsc_ring_destroy(full);
	rmpsc_ring_destroy(empty);
}

/* A close wakes a consumer that waits with data arriving first: it gets
 * the element, and -EPIPE on the next call. */
static void test_wait_close_after_push_delivers_item_then_epipe(void **state)
{
	static const enum hop ops[2] = { H_PUSH, H_CLOSE };
	rmpsc_ring *r = *state;
	struct helper h;
	struct guard g;
	uint64_t v = 0;

	guard_start(&g, "pop_timed with push then close", r, NULL);
	helper_start(&h, r, 3 * MS, 31, 2, ops);
	assert_ret(rmpsc_ring_pop_timed(r, &v, -1, NULL), 0);
	assert_int_equal(v, 31);
	assert_ret(rmpsc_ring_pop_timed(r, &v, -1, NULL), -EPIPE);
	helper_join(&h);
	guard_check(&g);
}

/* ======================================================================== */
/* ring: signals                                                            */
/* ======================================================================== */

static atomic_int signals_seen;

static void on_sigusr1(int sig)
{
	(void)sig;
	atomic_fetch_add_explicit(&signals_seen, 1, memory_order_relaxed);
}

struct sigwaiter {
	pthread_t t;
	rmpsc_ring *r;
	rmpsc_wait w;
	int64_t timeout;
	int64_t elapsed;
	uint64_t v;
	atomic_int done;
	int rc;
};

static void *sigwaiter_main(void *arg)
{
	struct sigwaiter *s = arg;
	const int64_t t0 = now_ns();

	s->rc = rmpsc_ring_pop_timed(s->r, &s->v, s->timeout, &s->w);
	s->elapsed = now_ns() - t0;
	atomic_store_explicit(&s->done, 1, memory_order_release);
	return NULL;
}

/* Signals (a handler without SA_RESTART) during a wait: no -EINTR, the
 * timeout still runs to its end, and an unlimited wait still ends with the
 * element. */
static void test_wait_signals_during_wait_neither_interrupt_nor_shorten_it(void **state)
{
	rmpsc_ring *r = *state;
	struct sigaction sa, old;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigusr1;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: interrupted system calls fail */
	assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);

	for (size_t k = 0; k < N_KINDS; k++) {
		struct sigwaiter s = { .r = r, .timeout = 20 * MS };
		struct guard g;
		uint64_t v = 1234;
		int sent = 0;

		s.w = strategy(all_kinds[k]);
		s.w.spin_count = s.w.spin_count ? 16 : 0;
		s.w.yield_count = 1;
		atomic_init(&s.done, 0);
		atomic_store_explicit(&signals_seen, 0, memory_order_relaxed);
		assert_int_equal(pthread_create(&s.t, NULL, sigwaiter_main, &s), 0);
		while (!atomic_load_explicit(&s.done, memory_order_acquire)) {
			pthread_kill(s.t, SIGUSR1);
			sent++;
			sleep_ns(500 * US);
		}
		assert_int_equal(pthread_join(s.t, NULL), 0);
		if (s.rc != -ETIMEDOUT)
			fail_msg("%s pop_timed(20 ms) with %d signals returned %d (%s)",
				 wait_kind_name(all_kinds[k]), sent, s.rc, errname(s.rc));
		if (s.elapsed < s.timeout)
			fail_msg("%s pop_timed(20 ms) with signals returned after "
				 "%" PRId64 " ns", wait_kind_name(all_kinds[k]), s.elapsed);

		/* Unlimited: signals, then the element. */
		s.timeout = -1;
		s.v = 0;
		atomic_store_explicit(&s.done, 0, memory_order_relaxed);
		guard_start(&g, "pop_timed(-1) with signals", r, NULL);
		assert_int_equal(pthread_create(&s.t, NULL, sigwaiter_main, &s), 0);
		for (int i = 0; i < 20; i++) {
			pthread_kill(s.t, SIGUSR1);
			sleep_ns(500 * US);
		}
		assert_ret(rmpsc_ring_push(r, &v), 0);
		assert_int_equal(pthread_join(s.t, NULL), 0);
		guard_check(&g);
		if (s.rc != 0)
			fail_msg("%s pop_timed(-1) with signals returned %d (%s)",
				 wait_kind_name(all_kinds[k]), s.rc, errname(s.rc));
		assert_int_equal(s.v, 1234);
	}
	assert_int_equal(sigaction(SIGUSR1, &old, NULL), 0);
}

/* ======================================================================== */
/* ring: set_wait / get_wait                                                */
/* ======================================================================== */

static void expect_block_defaults(const rmpsc_wait *w)
{
	assert_int_equal(w->kind, RMPSC_WAIT_BLOCK);
	assert_int_equal(w->spin_count, RMPSC_WAIT_DEFAULT_SPIN);
	assert_int_equal(w->yield_count, RMPSC_WAIT_DEFAULT_YIELD);
	assert_ret(w->sleep_ns, 50000);
	assert_ret(w->timeout_ns, 1000000);
}

static void test_wait_get_wait_on_new_ring_returns_block_defaults(void **state)
{
	rmpsc_ring *r = *state;
	rmpsc_wait w;

	assert_ret(rmpsc_wait_init(&w, sizeof w, RMPSC_WAIT_SPIN), 0);
	w.spin_count = 99;
	assert_ret(rmpsc_ring_get_wait(r, &w), 0);
	assert_int_equal(w.size, sizeof w);
	expect_block_defaults(&w);
}

static void test_wait_set_wait_then_get_wait_round_trips(void **state)
{
	rmpsc_ring *r = *state;
	rmpsc_wait w, got;

	for (uint32_t k = 0; k <= RMPSC_WAIT_KIND_MAX; k++) {
		assert_ret(rmpsc_wait_init(&w, sizeof w, k), 0);
		w.spin_count = 3 + k;
		w.yield_count = 2 + k;
		w.sleep_ns = 12345 + k;
		w.timeout_ns = 777 + k;
		assert_ret(rmpsc_ring_set_wait(r, &w), 0);
		/* copied: the caller's struct may change afterwards */
		w.spin_count = 1000;
		assert_ret(rmpsc_wait_init(&got, sizeof got, RMPSC_WAIT_SPIN), 0);
		assert_ret(rmpsc_ring_get_wait(r, &got), 0);
		assert_int_equal(got.size, sizeof got);
		assert_int_equal(got.kind, k);
		assert_int_equal(got.spin_count, 3 + k);
		assert_int_equal(got.yield_count, 2 + k);
		assert_ret(got.sleep_ns, 12345 + k);
		assert_ret(got.timeout_ns, 777 + k);
	}
}

static void test_wait_set_wait_with_null_restores_block_default(void **state)
{
	rmpsc_ring *r = *state;
	rmpsc_wait w;

	assert_ret(rmpsc_wait_init(&w, sizeof w, RMPSC_WAIT_SLEEP), 0);
	w.sleep_ns = 1000;
	assert_ret(rmpsc_ring_set_wait(r, &w), 0);
	assert_ret(rmpsc_ring_set_wait(r, NULL), 0);
	assert_ret(rmpsc_wait_init(&w, sizeof w, RMPSC_WAIT_SPIN), 0);
	assert_ret(rmpsc_ring_get_wait(r, &w), 0);
	expect_block_defaults(&w);
}

/* A newer caller's larger strategy with zeros past ours is taken, and
 * get_wait reads it back (what set_wait refuses: the ring table). */
static void test_wait_set_wait_with_larger_zero_tail_strategy_round_trips(void **state)
{
	rmpsc_ring *r = *state;
	union waitbuf u;

	memset(u.b, 0, sizeof u.b);
	assert_ret(rmpsc_wait_init(&u.w, 64, RMPSC_WAIT_YIELD), 0);
	u.w.yield_count = 5;
	assert_ret(rmpsc_ring_set_wait(r, &u.w), 0);
	memset(u.b, 0, sizeof u.b);
	assert_ret(rmpsc_wait_init(&u.w, 48, RMPSC_WAIT_SPIN), 0);
	assert_ret(rmpsc_ring_get_wait(r, &u.w), 0);
	assert_int_equal(u.w.kind, RMPSC_WAIT_YIELD);
	assert_int_equal(u.w.yield_count, 5);
}

/* NULL in a timed call means the ring's strategy: a DEADLINE of 2 ms set
 * on the ring bounds an unlimited pop_timed(NULL). */
static void test_wait_timed_call_with_null_uses_ring_strategy(void **state)
{
	rmpsc_ring *r = *state;
	rmpsc_wait w = strategy(RMPSC_WAIT_DEADLINE);
	struct guard g;
	uint64_t v;
	int64_t t0;
	int rc;

	w.timeout_ns = 2 * MS;
	assert_ret(rmpsc_ring_set_wait(r, &w), 0);
	guard_start(&g, "pop_timed(-1, NULL) with the ring's DEADLINE 2 ms", r, NULL);
	t0 = now_ns();
	rc = rmpsc_ring_pop_timed(r, &v, -1, NULL);
	guard_check(&g);
	assert_ret(rc, -ETIMEDOUT);
	assert_elapsed_at_least(t0, 2 * MS, "pop_timed(-1, NULL)");
	/* an explicit strategy overrides the ring's */
	{
		const enum hop push = H_PUSH;
		rmpsc_wait b = strategy(RMPSC_WAIT_BLOCK);
		struct helper h;

		guard_start(&g, "pop_timed(-1, BLOCK) past the ring's DEADLINE", r, NULL);
		helper_start(&h, r, 10 * MS, 66, 1, &push);
		assert_ret(rmpsc_ring_pop_timed(r, &v, -1, &b), 0);
		helper_join(&h);
		guard_check(&g);
		assert_int_equal(v, 66);
	}
	assert_ret(rmpsc_ring_set_wait(r, NULL), 0);
	expect_timeout(r, C_POP, 3 * MS, NULL, "default strategy");
}

/* ------------------------------------------------------------------------ */

#define RING_CASE(f) cmocka_unit_test_setup_teardown(f, setup_ring, ring_fixture_free)

int main(void)
{
	const struct CMUnitTest tests[] = {
		/* rmpsc_wait_init */
		cmocka_unit_test(test_wait_init_with_each_kind_writes_documented_defaults),
		cmocka_unit_test(test_wait_init_with_v1_size_writes_nothing_past_size),
		cmocka_unit_test(test_wait_init_with_larger_size_and_zero_tail_validates),
		/* rmpsc_wait_validate */
		cmocka_unit_test(test_wait_calls_with_bad_argument_return_documented_code),
		/* rmpsc_backoff */
		cmocka_unit_test(test_backoff_init_with_zero_limits_takes_defaults),
		cmocka_unit_test(test_backoff_init_with_valid_limits_records_them),
		cmocka_unit_test(test_backoff_spin_advances_step_up_to_spin_limit_plus_one),
		cmocka_unit_test(test_backoff_spin_with_equal_limits_completes),
		cmocka_unit_test(test_backoff_snooze_advances_step_and_completes_after_yield_limit),
		cmocka_unit_test(test_backoff_snooze_with_max_limits_completes),
		cmocka_unit_test(test_backoff_reset_returns_to_step_zero),
		cmocka_unit_test(test_backoff_init_with_default_yield_limit_raises_it_to_spin_limit),
		cmocka_unit_test(test_backoff_calls_with_bad_argument_return_einval),
		/* timed calls: timeouts */
		RING_CASE(test_wait_producer_calls_when_full_with_zero_timeout_return_etimedout),
		RING_CASE(test_wait_consumer_calls_when_empty_with_zero_timeout_return_etimedout),
		RING_CASE(test_wait_calls_with_zero_timeout_succeed_when_possible),
		RING_CASE(test_wait_producer_calls_when_full_with_short_timeout_return_etimedout),
		RING_CASE(test_wait_consumer_calls_when_empty_with_short_timeout_return_etimedout),
		RING_CASE(test_wait_timeout_with_zero_counts_returns_etimedout),
		RING_CASE(test_wait_deadline_strategy_bounds_unlimited_wait),
		/* timed calls: close */
		RING_CASE(test_wait_producer_calls_on_closed_ring_return_epipe),
		RING_CASE(test_wait_pop_timed_on_closed_ring_returns_items_then_epipe),
		RING_CASE(test_wait_pop_n_and_readable_timed_on_closed_ring_return_items_then_epipe),
		RING_CASE(test_wait_reserve_timed_then_close_commit_returns_epipe),
		/* timed calls: arguments */
		RING_CASE(test_wait_timed_calls_with_larger_zero_tail_strategy_succeed),
		RING_CASE(test_wait_timed_calls_with_zero_n_return_zero_at_once),
		RING_CASE(test_wait_batch_timed_calls_take_what_is_ready),
		/* push_n_timed partial counts */
		RING_CASE(test_wait_push_n_timed_when_time_runs_out_returns_partial_count),
		RING_CASE(test_wait_push_n_timed_when_closed_returns_partial_count),
		RING_CASE(test_wait_push_n_timed_when_nothing_fits_returns_etimedout),
		RING_CASE(test_wait_producer_timed_calls_on_closed_ring_return_epipe_first),
		/* waits that succeed */
		RING_CASE(test_wait_every_kind_succeeds_when_other_side_acts_later),
		RING_CASE(test_wait_every_kind_with_long_timeout_succeeds),
		RING_CASE(test_wait_extreme_timeouts_wait_for_the_other_side),
		RING_CASE(test_wait_block_consumer_woken_by_every_publishing_call),
		RING_CASE(test_wait_block_producer_woken_by_every_releasing_call),
		RING_CASE(test_wait_push_n_timed_waits_repeatedly_until_all_pushed),
		/* close wakes */
		cmocka_unit_test(test_wait_close_from_third_thread_wakes_blocked_producer_and_consumer),
		cmocka_unit_test(test_wait_sleep_kind_when_blocked_close_wakes_it_at_once),
		RING_CASE(test_wait_close_after_push_delivers_item_then_epipe),
		/* signals */
		RING_CASE(test_wait_signals_during_wait_neither_interrupt_nor_shorten_it),
		/* set_wait / get_wait */
		RING_CASE(test_wait_get_wait_on_new_ring_returns_block_defaults),
		RING_CASE(test_wait_set_wait_then_get_wait_round_trips),
		RING_CASE(test_wait_set_wait_with_null_restores_block_default),
		RING_CASE(test_wait_set_wait_with_larger_zero_tail_strategy_round_trips),
		RING_CASE(test_wait_timed_call_with_null_uses_ring_strategy),
	};

	return cmocka_run_group_tests_name("test_wait", tests, NULL, NULL);
}
