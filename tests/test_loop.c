/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for rmpsc_loop (include/ringmpsc/loop.h): argument and handle
 * checks with every documented error code, delivery of every element
 * exactly once and in order with each wait kind (a producer thread pushes
 * while the loop runs), element sizes that are not a multiple of 8,
 * stop semantics (closes the ring, idempotent, -EDEADLK from the handler,
 * wakes an idle loop), destroy without stop, and no loss when stop races a
 * producer that pushes until -EPIPE.
 *
 * Handlers run on the loop thread, so they never call cmocka assertions:
 * they record what they saw and the test checks it after stop (which
 * orders every handler call before its return).
 *
 * No timing assertions: waits for progress yield (and then nap) until the
 * condition holds; a broken loop shows as a ctest timeout.
 */
#include <errno.h>
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
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_util.h"

#include "ringmpsc/loop.h"
#include "ringmpsc/notify.h"
#include "ringmpsc/ring.h"
#include "ringmpsc/wait.h"

#include "test_core.h" /* a consumer locked by hand, for the case of an early end */
#include "test_table.h"

#define LOOP_N STRESS_SCALE(1000000u, 200000u, 50000u)

/* ---- helpers ------------------------------------------------------------ */

/* A non-NULL pointer that start must overwrite with NULL on error. */
#define SENTINEL SENTINEL_OF(rmpsc_loop)

static void wait_init(rmpsc_wait *w, uint32_t kind)
{
	assert_ret(rmpsc_wait_init(w, sizeof *w, kind), 0);
}

/* Yield while @done is false; nap once yielding alone has not helped. */
static void backoff(unsigned *spins)
{
	if (++*spins < 1000) {
		sched_yield();
	} else {
		const struct timespec ts = { 0, 100000 };

		nanosleep(&ts, NULL);
	}
}

/* The payload of element @seq: the u64 itself, then (for elem_size 12) a
 * u32 check word, so a torn or misplaced element shows. */
static uint32_t check_word(uint64_t seq)
{
	return (uint32_t)(seq * 2654435761u) ^ 0xa5a5a5a5u;
}

static void elem_fill(unsigned char *dst, uint32_t esz, uint64_t seq)
{
	memcpy(dst, &seq, sizeof seq);
	if (esz >= 12) {
		const uint32_t c = check_word(seq);

		memcpy(dst + 8, &c, sizeof c);
	}
}

/* ---- the recording handler ------------------------------------------------ */

struct seq_ctx {
	uint32_t esz;
	uint32_t cap;
	pthread_t caller;
	/* loop thread only; read after stop */
	uint64_t next;
	uint64_t calls;
	uint64_t bad;
	uint64_t bad_at, bad_val;
	uint32_t bad_count; /* a count outside 1..capacity */
	bool on_caller_thread;
	/* read while the loop runs */
	atomic_uint_fast64_t seen;
	/* stop from inside the handler */
	bool stop_in_handler;
	_Atomic(rmpsc_loop *) self;
	atomic_int stop_rc;
	atomic_int stop_calls;
	atomic_llong processed_in_handler;
};

static void seq_ctx_init(struct seq_ctx *c, uint32_t esz, uint32_t cap)
{
	memset(c, 0, sizeof *c);
	c->esz = esz;
	c->cap = cap;
	c->caller = pthread_self();
	atomic_init(&c->seen, 0);
	atomic_init(&c->self, NULL);
	atomic_init(&c->stop_rc, INT_MIN);
	atomic_init(&c->stop_calls, 0);
	atomic_init(&c->processed_in_handler, -1);
}

static void seq_handler(void *arg, const void *items, uint32_t count)
{
	struct seq_ctx *c = arg;
	const unsigned char *p = items;

	if ((count == 0 || count > c->cap) && !c->bad_count)
		c->bad_count = count ? count : UINT32_MAX;
	if (pthread_equal(pthread_self(), c->caller))
		c->on_caller_thread = true;
	for (uint32_t i = 0; i < count; i++) {
		const unsigned char *e = p + (size_t)i * c->esz;
		uint64_t v;
		bool ok;

		memcpy(&v, e, sizeof v);
		ok = v == c->next;
		if (ok && c->esz >= 12) {
			uint32_t w;

			memcpy(&w, e + 8, sizeof w);
			ok = w == check_word(v);
		}
		if (!ok && !c->bad++) {
			c->bad_at = c->next;
			c->bad_val = v;
		}
		c->next++;
	}
	c->calls++;
	atomic_store_explicit(&c->seen, c->next, memory_order_release);

	if (c->stop_in_handler) {
		rmpsc_loop *l = atomic_load_explicit(&c->self, memory_order_acquire);

		if (l && atomic_load_explicit(&c->stop_calls, memory_order_relaxed) == 0) {
			atomic_store_explicit(&c->processed_in_handler,
					      (long long)rmpsc_loop_processed(l),
					      memory_order_relaxed);
			atomic_store_explicit(&c->stop_rc, rmpsc_loop_stop(l),
					      memory_order_relaxed);
			atomic_fetch_add_explicit(&c->stop_calls, 1, memory_order_release);
		}
	}
}

static void count_handler(void *arg, const void *items, uint32_t count)
{
	(void)items;
	atomic_fetch_add_explicit((atomic_uint_fast64_t *)arg, count, memory_order_release);
}

/* After stop: every element 0..n-1 exactly once, in order, on the loop
 * thread, in runs of 1..capacity. */
static void seq_ctx_expect(const struct seq_ctx *c, uint64_t n)
{
	if (c->bad)
		print_error("%llu elements wrong, first at %llu: value %llu\n",
			    (unsigned long long)c->bad, (unsigned long long)c->bad_at,
			    (unsigned long long)c->bad_val);
	assert_int_equal(c->bad, 0);
	if (c->bad_count)
		print_error("handler called with count %u (capacity %u)\n", c->bad_count,
			    c->cap);
	assert_int_equal(c->bad_count, 0);
	assert_false(c->on_caller_thread);
	assert_int_equal(c->next, n);
	assert_int_equal(atomic_load_explicit(&c->seen, memory_order_acquire), n);
	if (n)
		assert_true(c->calls >= 1 && c->calls <= n);
}

/* ---- producer thread ------------------------------------------------------- */

struct lprod {
	rmpsc_ring *r;
	uint32_t esz;
	uint64_t count; /* UINT64_MAX: until -EPIPE */
	uint64_t pushed;
	int err;
};

static void *lprod_main(void *arg)
{
	struct lprod *p = arg;
	unsigned char buf[64 * 16];
	uint32_t op = 0;

	while (p->pushed < p->count) {
		uint32_t want = 1 + (op * 13u) % 64u;
		int rc;

		if (want > p->count - p->pushed)
			want = (uint32_t)(p->count - p->pushed);
		for (uint32_t i = 0; i < want; i++)
			elem_fill(buf + (size_t)i * p->esz, p->esz, p->pushed + i);
		if (op++ % 4 == 0) {
			rc = rmpsc_ring_push(p->r, buf);
			if (rc == 0)
				rc = 1;
		} else {
			rc = rmpsc_ring_push_n(p->r, buf, want);
		}
		if (rc == -EAGAIN) {
			sched_yield();
			continue;
		}
		if (rc == -EPIPE) {
			if (p->count != UINT64_MAX)
				p->err = rc;
			break;
		}
		if (rc <= 0) {
			p->err = rc ? rc : INT_MIN;
			break;
		}
		p->pushed += (uint64_t)rc;
	}
	return NULL;
}

static void wait_seen(struct seq_ctx *c, uint64_t n)
{
	unsigned spins = 0;

	while (atomic_load_explicit(&c->seen, memory_order_acquire) < n)
		backoff(&spins);
}

/* ---- start: arguments and handles ---------------------------------------- */

/*
 * The loop's table (test_table.h): every call refused for one argument or
 * for its handle, with the code loop.h promises. The live fixture is a
 * ring of 64 that a refused start leaves open, without a loop, working.
 */

static rmpsc_ring *tr;
static struct seq_ctx tctx;

static void *loop_fx(uint32_t state)
{
	(void)state;
	tr = ring_make(64, 8, 0, 0);
	seq_ctx_init(&tctx, 8, 64);
	return tr;
}

static const char *ring_intact(void *h)
{
	rmpsc_loop *l = NULL;
	uint64_t v = 3;

	if (rmpsc_ring_is_closed(h) != 0)
		return "the ring was closed";
	if (rmpsc_ring_push(h, &v) || rmpsc_ring_pop(h, &v) || v != 3)
		return "the ring no longer works";
	if (rmpsc_loop_start_ring(h, count_handler, &v, NULL, &l) != 0 ||
	    rmpsc_loop_stop(l) != 0)
		return "no loop starts on the ring";
	rmpsc_loop_destroy(l);
	return NULL;
}

static const char *loop_fx_check(void *h, const struct tt_row *row, int64_t got)
{
	(void)row;
	(void)got;
	return ring_intact(h);
}

static void loop_fx_free(void *h)
{
	rmpsc_ring_destroy(h);
}

static void *make_ring(void)
{
	return loop_fx(0);
}

static const struct tt_handle not_a_loop[] = {
	TT_HANDLES_NOT_A_HANDLE,
	{ "a ring", make_ring, ring_intact, loop_fx_free },
};

/* Start on @r with @fn and @w: *out NULL on error; a loop that ran is
 * stopped and freed. */
static int64_t start(rmpsc_ring *r, rmpsc_loop_fn fn, const rmpsc_wait *w)
{
	rmpsc_loop *l = SENTINEL;
	const int rc = rmpsc_loop_start_ring(r, fn, &tctx, w, &l);

	if (tt_created(rc, l, SENTINEL))
		rmpsc_loop_destroy(l);
	return rc;
}

/* not a ring: v picks NULL or one of test_table.h's fake handles */
static rmpsc_ring *not_ring(uint64_t v)
{
	static void *(*const make[])(void) = { tt_make_null, tt_make_zeroed, tt_make_foreign,
					      tt_make_dead };

	return make[v]();
}

TT_CALL(l_stop, rmpsc_loop_stop(h))
TT_CALL(l_processed, rmpsc_loop_processed(h))
TT_CALL(l_start_fn_null, start(h, NULL, NULL))
TT_CALL(l_start_out_null, rmpsc_loop_start_ring(h, seq_handler, &tctx, NULL, NULL))
TT_CALL(l_start_not_ring, start(not_ring(v), seq_handler, NULL))
TT_CALL(l_start_bad_wait, start(h, seq_handler, tt_bad_wait(v)))

static const struct tt_row loop_rows[] = {
	TT_ROW("stop", l_stop, -EBADF, TT_BAD),
	TT_ROW("processed", l_processed, -EBADF, TT_BAD),
	TT_ROW("start_ring: fn NULL", l_start_fn_null, -EINVAL, 0),
	TT_ROW("start_ring: out NULL", l_start_out_null, -EINVAL, 0),
	TT_ROW("start_ring: r not a ring", l_start_not_ring, -EBADF, 0, TT_RANGE(0, 4)),
	TT_ROW("start_ring: w invalid", l_start_bad_wait, -EINVAL, 0,
	       TT_RANGE(0, TT_WAIT_EINVAL_N)),
	TT_ROW("start_ring: w too large", l_start_bad_wait, -E2BIG, 0,
	       TT_RANGE(100, 100 + TT_WAIT_E2BIG_N)),
};

TT_TEST(test_loop_calls_with_bad_handle_or_argument_return_documented_code,
	.name = "loop", TT_ROWS(loop_rows), .setup = loop_fx, .check = loop_fx_check,
	.teardown = loop_fx_free, TT_BADS(not_a_loop))

/* A newer caller's larger strategy with zeros past ours is taken (one with
 * a non-zero byte there is -E2BIG: the loop's table). */
static void test_loop_start_with_larger_zero_tail_strategy_runs(void **state)
{
	rmpsc_ring *r = ring_make(64, 8, 0, 0);
	struct seq_ctx c;
	struct {
		rmpsc_wait w;
		uint64_t extra;
	} big;
	rmpsc_loop *l = SENTINEL;

	(void)state;
	seq_ctx_init(&c, 8, 64);
	memset(&big, 0, sizeof big);
	assert_ret(rmpsc_wait_init(&big.w, sizeof big, RMPSC_WAIT_BLOCK), 0);
	assert_int_equal(big.w.size, sizeof big);
	assert_ret(rmpsc_loop_start_ring(r, seq_handler, &c, &big.w, &l), 0);
	assert_non_null(l);
	assert_ret(rmpsc_loop_stop(l), 0);
	rmpsc_loop_destroy(l);
	rmpsc_ring_destroy(r);
}

/* As root RLIMIT_NPROC does not apply, so the child drops to "nobody". */
static void test_loop_start_when_no_thread_can_be_created_returns_eagain(void **state)
{
	pid_t pid;
	int st = 0;

	(void)state;
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		const struct rlimit none = { 0, 0 };
		rmpsc_ring_config cfg;
		rmpsc_ring *r = NULL;
		rmpsc_loop *l = SENTINEL;
		uint64_t counter = 0;
		int rc;

		if (getuid() == 0 && (setgid(65534) || setuid(65534)))
			_exit(77);
		if (setrlimit(RLIMIT_NPROC, &none))
			_exit(77);
		if (rmpsc_ring_config_init(&cfg, sizeof cfg) || rmpsc_ring_create(&cfg, &r))
			_exit(3);
		rc = rmpsc_loop_start_ring(r, count_handler, &counter, NULL, &l);
		if (rc == 0) {
			/* Threads were still allowed (a capability): nothing shown. */
			rmpsc_loop_destroy(l);
			_exit(77);
		}
		if (rc != -EAGAIN)
			_exit(10 + (-rc & 0x7f) % 100);
		if (l != NULL)
			_exit(4);
		if (rmpsc_ring_is_closed(r) != 0)
			_exit(5);
		rmpsc_ring_destroy(r);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	if (WEXITSTATUS(st) == 77)
		skip();
	if (WEXITSTATUS(st) >= 10)
		print_error("start returned -%d, expected -EAGAIN\n", WEXITSTATUS(st) - 10);
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_loop_destroy_with_null_is_noop(void **state)
{
	(void)state;
	rmpsc_loop_destroy(NULL);
}

/* ---- delivery with each wait kind ---------------------------------------------- */

/*
 * A producer thread pushes @n elements while the loop runs with strategy
 * @w (NULL: the ring's); then stop. Everything arrives once and in order,
 * the ring is closed, stop is idempotent.
 */
static void run_delivery(const rmpsc_wait *w, uint64_t n, uint32_t cap, uint32_t esz)
{
	rmpsc_ring *r = ring_make(cap, esz, 0, 0);
	struct seq_ctx c;
	struct lprod p = { .r = r, .esz = esz, .count = n };
	rmpsc_loop *l = SENTINEL;
	pthread_t tid;
	unsigned char buf[16];

	seq_ctx_init(&c, esz, cap);
	assert_ret(rmpsc_loop_start_ring(r, seq_handler, &c, w, &l), 0);
	assert_non_null(l);
	assert_ptr_not_equal(l, SENTINEL);
	assert_int_equal(pthread_create(&tid, NULL, lprod_main, &p), 0);
	assert_int_equal(pthread_join(tid, NULL), 0);
	assert_ret(p.err, 0);
	assert_int_equal(p.pushed, n);

	assert_ret(rmpsc_loop_stop(l), 0);
	assert_ret(rmpsc_loop_processed(l), (long long)n);
	seq_ctx_expect(&c, n);
	/* stop closed the ring and left it drained. */
	assert_ret(rmpsc_ring_is_closed(r), 1);
	elem_fill(buf, esz, 0);
	assert_ret(rmpsc_ring_push(r, buf), -EPIPE);
	assert_ret(rmpsc_ring_pop(r, buf), -EPIPE);
	/* Idempotent. */
	assert_ret(rmpsc_loop_stop(l), 0);
	assert_ret(rmpsc_loop_stop(l), 0);
	assert_ret(rmpsc_loop_processed(l), (long long)n);
	rmpsc_loop_destroy(l);
	rmpsc_ring_destroy(r);
}

/* Delivery with the wait kind of the case (TEST_PARAM). */
static void test_loop_with_kind_delivers_all_in_order(void **state)
{
	rmpsc_wait w;

	wait_init(&w, (uint32_t)test_param(state));
	run_delivery(&w, LOOP_N, 1024, 8);
}

static void test_loop_with_block_wait_and_no_spin_delivers_all_in_order(void **state)
{
	rmpsc_wait w;

	(void)state;
	/* Straight to the futex: every empty ring is a sleep and a wake. */
	wait_init(&w, RMPSC_WAIT_BLOCK);
	w.spin_count = 0;
	w.yield_count = 0;
	run_delivery(&w, LOOP_N / 4, 64, 8);
}

static void test_loop_with_null_wait_uses_ring_strategy_and_delivers_all(void **state)
{
	(void)state;
	run_delivery(NULL, LOOP_N / 4, 1024, 8); /* the default, BLOCK */
	{
		rmpsc_ring *r = ring_make(256, 8, 0, 0);
		rmpsc_wait w;
		struct seq_ctx c;
		struct lprod p = { .r = r, .esz = 8, .count = LOOP_N / 4 };
		rmpsc_loop *l = NULL;
		pthread_t tid;

		/* A strategy set on the ring is the one the loop copies. */
		wait_init(&w, RMPSC_WAIT_YIELD);
		assert_ret(rmpsc_ring_set_wait(r, &w), 0);
		seq_ctx_init(&c, 8, 256);
		assert_ret(rmpsc_loop_start_ring(r, seq_handler, &c, NULL, &l), 0);
		assert_int_equal(pthread_create(&tid, NULL, lprod_main, &p), 0);
		assert_int_equal(pthread_join(tid, NULL), 0);
		assert_ret(p.err, 0);
		assert_ret(rmpsc_loop_stop(l), 0);
		assert_ret(rmpsc_loop_processed(l), (long long)p.pushed);
		seq_ctx_expect(&c, p.pushed);
		rmpsc_loop_destroy(l);
		rmpsc_ring_destroy(r);
	}
}

static void test_loop_with_elem_size_12_delivers_contiguous_runs_intact(void **state)
{
	rmpsc_wait w;

	(void)state;
	/* Capacity 64 and batches up to 64: runs stop at the buffer end, so
	 * the handler must get one contiguous run per call. */
	wait_init(&w, RMPSC_WAIT_BLOCK);
	run_delivery(&w, LOOP_N / 4, 64, 12);
	wait_init(&w, RMPSC_WAIT_SPIN);
	run_delivery(&w, LOOP_N / 8, 64, 12);
}

static void test_loop_with_capacity_1_delivers_all_in_order(void **state)
{
	rmpsc_wait w;

	(void)state;
	wait_init(&w, RMPSC_WAIT_BACKOFF);
	run_delivery(&w, LOOP_N / 20, 1, 8);
}

/* ---- start / stop ---------------------------------------------------------------- */

static void test_loop_start_with_items_already_queued_delivers_them(void **state)
{
	rmpsc_ring *r = ring_make(128, 8, 0, 0);
	struct seq_ctx c;
	rmpsc_loop *l = NULL;
	uint64_t v;

	(void)state;
	for (v = 0; v < 100; v++)
		assert_ret(rmpsc_ring_push(r, &v), 0);
	seq_ctx_init(&c, 8, 128);
	assert_ret(rmpsc_loop_start_ring(r, seq_handler, &c, NULL, &l), 0);
	wait_seen(&c, 100);
	/* The count follows the handler call (after the advance): wait for
	 * it too, it must reach exactly 100. */
	{
		unsigned spins = 0;

		while (rmpsc_loop_processed(l) < 100)
			backoff(&spins);
	}
	assert_ret(rmpsc_loop_processed(l), 100);
	assert_ret(rmpsc_loop_stop(l), 0);
	assert_ret(rmpsc_loop_processed(l), 100);
	seq_ctx_expect(&c, 100);
	rmpsc_loop_destroy(l);
	rmpsc_ring_destroy(r);
}

static void test_loop_start_on_closed_ring_delivers_rest_then_stops(void **state)
{
	rmpsc_ring *r = ring_make(64, 8, 0, 0);
	struct seq_ctx c;
	rmpsc_loop *l = NULL;
	uint64_t v;

	(void)state;
	for (v = 0; v < 10; v++)
		assert_ret(rmpsc_ring_push(r, &v), 0);
	assert_ret(rmpsc_ring_close(r), 0);
	seq_ctx_init(&c, 8, 64);
	assert_ret(rmpsc_loop_start_ring(r, seq_handler, &c, NULL, &l), 0);
	wait_seen(&c, 10);
	assert_ret(rmpsc_loop_stop(l), 0);
	assert_ret(rmpsc_loop_processed(l), 10);
	seq_ctx_expect(&c, 10);
	assert_ret(rmpsc_loop_stop(l), 0);
	rmpsc_loop_destroy(l);
	rmpsc_ring_destroy(r);
}

static void test_loop_stop_when_producer_closed_first_delivers_all(void **state)
{
	rmpsc_ring *r = ring_make(256, 8, 0, 0);
	struct seq_ctx c;
	struct lprod p = { .r = r, .esz = 8, .count = LOOP_N / 10 };
	rmpsc_loop *l = NULL;
	pthread_t tid;

	(void)state;
	seq_ctx_init(&c, 8, 256);
	assert_ret(rmpsc_loop_start_ring(r, seq_handler, &c, NULL, &l), 0);
	assert_int_equal(pthread_create(&tid, NULL, lprod_main, &p), 0);
	assert_int_equal(pthread_join(tid, NULL), 0);
	assert_ret(p.err, 0);
	/* The producer's own close; the loop sees -EPIPE once drained. */
	assert_ret(rmpsc_ring_close(r), 0);
	wait_seen(&c, p.pushed);
	assert_ret(rmpsc_loop_stop(l), 0);
	assert_ret(rmpsc_loop_processed(l), (long long)p.pushed);
	seq_ctx_expect(&c, p.pushed);
	rmpsc_loop_destroy(l);
	rmpsc_ring_destroy(r);
}

static void test_loop_stop_when_idle_wakes_loop_with_each_kind(void **state)
{
	static const uint32_t kinds[] = {
		RMPSC_WAIT_SPIN, RMPSC_WAIT_YIELD, RMPSC_WAIT_SLEEP,
		RMPSC_WAIT_BLOCK, RMPSC_WAIT_DEADLINE, RMPSC_WAIT_BACKOFF,
	};
	const int rounds = STRESS_SCALE(50, 20, 5);

	(void)state;
	for (int i = 0; i < rounds * 6; i++) {
		rmpsc_ring *r = ring_make(64, 8, 0, 0);
		atomic_uint_fast64_t counter;
		rmpsc_wait w;
		rmpsc_loop *l = NULL;

		atomic_init(&counter, 0);
		wait_init(&w, kinds[i % 6]);
		if (i % 12 >= 6) {
			/* no spin, no yield: idle at once */
			w.spin_count = 0;
			w.yield_count = 0;
		}
		if (w.kind == RMPSC_WAIT_DEADLINE)
			w.timeout_ns = 1000000000; /* the deadline must not be what ends it */
		assert_ret(rmpsc_loop_start_ring(r, count_handler, &counter, &w, &l), 0);
		if (i & 1)
			sched_yield(); /* sometimes let it reach its sleep first */
		assert_ret(rmpsc_loop_stop(l), 0);
		assert_ret(rmpsc_loop_processed(l), 0);
		assert_int_equal(atomic_load_explicit(&counter, memory_order_acquire), 0);
		assert_ret(rmpsc_ring_is_closed(r), 1);
		rmpsc_loop_destroy(l);
		rmpsc_ring_destroy(r);
	}
}

static void test_loop_stop_from_handler_returns_edeadlk(void **state)
{
	rmpsc_ring *r = ring_make(64, 8, 0, 0);
	struct seq_ctx c;
	rmpsc_loop *l = NULL;
	uint64_t v = 0;

	(void)state;
	seq_ctx_init(&c, 8, 64);
	c.stop_in_handler = true;
	assert_ret(rmpsc_loop_start_ring(r, seq_handler, &c, NULL, &l), 0);
	/* Publish the handle before the element that makes the handler use it. */
	atomic_store_explicit(&c.self, l, memory_order_release);
	assert_ret(rmpsc_ring_push(r, &v), 0);
	{
		unsigned spins = 0;

		while (atomic_load_explicit(&c.stop_calls, memory_order_acquire) == 0)
			backoff(&spins);
	}
	assert_ret(atomic_load_explicit(&c.stop_rc, memory_order_relaxed), -EDEADLK);
	assert_ret(atomic_load_explicit(&c.processed_in_handler, memory_order_relaxed) >= 0,
		   1);
	/* The refused stop changed nothing: the loop still runs. */
	assert_ret(rmpsc_ring_is_closed(r), 0);
	v = 1;
	assert_ret(rmpsc_ring_push(r, &v), 0);
	wait_seen(&c, 2);
	assert_ret(rmpsc_loop_stop(l), 0);
	assert_ret(rmpsc_loop_processed(l), 2);
	seq_ctx_expect(&c, 2);
	rmpsc_loop_destroy(l);
	rmpsc_ring_destroy(r);
}

static void test_loop_destroy_without_stop_stops_delivers_and_frees(void **state)
{
	const uint32_t kinds[] = { RMPSC_WAIT_BLOCK, RMPSC_WAIT_SPIN, RMPSC_WAIT_SLEEP };

	(void)state;
	for (int i = 0; i < 3; i++) {
		rmpsc_ring *r = ring_make(1024, 8, 0, 0);
		atomic_uint_fast64_t counter;
		rmpsc_wait w;
		rmpsc_loop *l = NULL;
		uint64_t buf[64];
		uint64_t pushed = 0;

		atomic_init(&counter, 0);
		wait_init(&w, kinds[i]);
		assert_ret(rmpsc_loop_start_ring(r, count_handler, &counter, &w, &l), 0);
		/* The test thread is the producer; the last pushes are still
		 * queued when destroy runs. */
		while (pushed < 5000) {
			int rc;

			for (int k = 0; k < 64; k++)
				buf[k] = pushed + (uint64_t)k;
			rc = rmpsc_ring_push_n(r, buf, 64);
			if (rc == -EAGAIN) {
				sched_yield();
				continue;
			}
			assert_true(rc > 0);
			pushed += (uint64_t)rc;
		}
		rmpsc_loop_destroy(l); /* ASan's leak check sees a missing free */
		assert_int_equal(atomic_load_explicit(&counter, memory_order_acquire), pushed);
		assert_ret(rmpsc_ring_is_closed(r), 1);
		assert_ret(rmpsc_ring_len(r), 0);
		rmpsc_ring_destroy(r);
	}
}

static void test_loop_processed_while_running_never_decreases(void **state)
{
	rmpsc_ring *r = ring_make(256, 8, 0, 0);
	struct seq_ctx c;
	rmpsc_loop *l = NULL;
	const uint64_t n = LOOP_N / 20;
	int64_t last = 0;
	uint64_t pushed = 0;

	(void)state;
	seq_ctx_init(&c, 8, 256);
	assert_ret(rmpsc_loop_start_ring(r, seq_handler, &c, NULL, &l), 0);
	while (pushed < n) {
		int64_t now;

		if (rmpsc_ring_push(r, &pushed) == 0)
			pushed++;
		else
			sched_yield();
		now = rmpsc_loop_processed(l);
		assert_true(now >= last);
		assert_true((uint64_t)now <= pushed);
		last = now;
	}
	assert_ret(rmpsc_loop_stop(l), 0);
	assert_ret(rmpsc_loop_processed(l), (long long)n);
	seq_ctx_expect(&c, n);
	rmpsc_loop_destroy(l);
	rmpsc_ring_destroy(r);
}

static void test_loop_start_after_stop_and_reset_runs_again(void **state)
{
	rmpsc_ring *r = ring_make(64, 8, 0, 0);

	(void)state;
	for (int round = 0; round < 3; round++) {
		struct seq_ctx c;
		rmpsc_loop *l = NULL;

		seq_ctx_init(&c, 8, 64);
		assert_ret(rmpsc_loop_start_ring(r, seq_handler, &c, NULL, &l), 0);
		for (uint64_t v = 0; v < 1000;) {
			if (rmpsc_ring_push(r, &v) == 0)
				v++;
			else
				sched_yield();
		}
		assert_ret(rmpsc_loop_stop(l), 0);
		assert_ret(rmpsc_loop_processed(l), 1000);
		seq_ctx_expect(&c, 1000);
		rmpsc_loop_destroy(l);
		assert_ret(rmpsc_ring_is_closed(r), 1);
		assert_ret(rmpsc_ring_reset(r), 0);
	}
	rmpsc_ring_destroy(r);
}

/* ---- stop racing a producer ------------------------------------------------------- */

static void test_loop_stop_while_producer_pushes_loses_nothing(void **state)
{
	static const uint32_t kinds[] = {
		RMPSC_WAIT_BLOCK, RMPSC_WAIT_SPIN, RMPSC_WAIT_YIELD,
		RMPSC_WAIT_SLEEP, RMPSC_WAIT_BACKOFF, RMPSC_WAIT_DEADLINE,
	};
	const int rounds = STRESS_SCALE(60, 24, 12);

	(void)state;
	for (int round = 0; round < rounds; round++) {
		const uint32_t cap = round % 3 == 0 ? 4 : round % 3 == 1 ? 64 : 1024;
		const uint32_t esz = round % 4 == 3 ? 12 : 8;
		rmpsc_ring *r = ring_make(cap, esz, 0, 0);
		struct seq_ctx c;
		struct lprod p = { .r = r, .esz = esz, .count = UINT64_MAX };
		rmpsc_wait w;
		rmpsc_loop *l = NULL;
		pthread_t tid;
		const uint64_t threshold = 1 + (uint64_t)(round * 7919) % STRESS_SCALE(20000, 5000, 1000);
		unsigned spins = 0;
		int64_t processed;
		int leftover;

		seq_ctx_init(&c, esz, cap);
		wait_init(&w, kinds[round % 6]);
		assert_ret(rmpsc_loop_start_ring(r, seq_handler, &c, &w, &l), 0);
		assert_int_equal(pthread_create(&tid, NULL, lprod_main, &p), 0);
		/* Stop in the middle of the stream. */
		while (rmpsc_loop_processed(l) < (int64_t)threshold)
			backoff(&spins);
		assert_ret(rmpsc_loop_stop(l), 0);
		assert_int_equal(pthread_join(tid, NULL), 0);

		processed = rmpsc_loop_processed(l);
		/* Whatever stop left behind (nothing, if nothing is lost). */
		leftover = rmpsc_ring_drain(r, NULL, UINT32_MAX);
		if (p.err || processed != (int64_t)p.pushed || leftover != 0)
			print_error("round %d (kind %u, capacity %u, elem %u): producer pushed "
				    "%llu (err %d), loop processed %lld, %d left in the ring\n",
				    round, w.kind, cap, esz, (unsigned long long)p.pushed, p.err,
				    (long long)processed, leftover);
		assert_ret(p.err, 0);
		assert_ret(leftover, 0);
		assert_ret(processed, (long long)p.pushed);
		seq_ctx_expect(&c, p.pushed);
		assert_true(p.pushed >= threshold);
		rmpsc_loop_destroy(l);
		rmpsc_ring_destroy(r);
	}
}

/* ---- elements left behind, re-entry ---------------------------------------- */

/* Values 0..n-1 pushed from @first on, one at a time. */
static void push_range(rmpsc_ring *r, uint64_t first, uint64_t n)
{
	for (uint64_t v = first; v < first + n; v++)
		assert_ret(rmpsc_ring_push(r, &v), 0);
}

/*
 * The sequence: push 4, borrow 1, start a loop, push 8, stop. The
 * loop could not read past the borrow, ended at once on its first call's
 * -EINVAL, and stop returned 0 with nothing processed and 12 elements still
 * in the ring. Now the start is refused while a borrow is out; once it is
 * committed, the loop delivers all 12.
 */
static void test_loop_start_with_borrow_outstanding_returns_einval(void **state)
{
	rmpsc_ring *r = ring_make(64, 8, 0, 0);
	struct seq_ctx c;
	rmpsc_borrow b;
	rmpsc_loop *l = SENTINEL;

	(void)state;
	seq_ctx_init(&c, 8, 64);
	push_range(r, 0, 4);
	assert_ret(rmpsc_ring_borrow(r, 1, &b), 1);
	assert_ret(rmpsc_loop_start_ring(r, seq_handler, &c, NULL, &l), -EINVAL);
	assert_null(l);
	assert_ret(rmpsc_ring_borrow_commit(r, b.token), 0);
	assert_ret(rmpsc_loop_start_ring(r, seq_handler, &c, NULL, &l), 0);
	push_range(r, 4, 8);
	assert_ret(rmpsc_loop_stop(l), 0);
	assert_ret(rmpsc_loop_processed(l), 11); /* the borrowed one was released */
	assert_ret(rmpsc_ring_len(r), 0);
	rmpsc_loop_destroy(l);
	rmpsc_ring_destroy(r);
}

/* A ring is one loop's consumer at a time. */
static void test_loop_start_on_ring_with_running_loop_returns_ebusy(void **state)
{
	rmpsc_ring *r = ring_make(64, 8, 0, 0);
	atomic_uint_fast64_t n1, n2;
	rmpsc_loop *l1 = NULL, *l2 = SENTINEL;

	(void)state;
	atomic_init(&n1, 0);
	atomic_init(&n2, 0);
	assert_ret(rmpsc_loop_start_ring(r, count_handler, &n1, NULL, &l1), 0);
	assert_ret(rmpsc_loop_start_ring(r, count_handler, &n2, NULL, &l2), -EBUSY);
	assert_null(l2);
	assert_ret(rmpsc_ring_reset(r), -EBUSY); /* not exclusive while it runs */
	push_range(r, 0, 5);
	assert_ret(rmpsc_loop_stop(l1), 0);
	assert_int_equal(atomic_load(&n1), 5);
	rmpsc_loop_destroy(l1);
	/* after the stop the ring may get a new loop */
	assert_ret(rmpsc_ring_reset(r), 0);
	assert_ret(rmpsc_loop_start_ring(r, count_handler, &n2, NULL, &l2), 0);
	push_range(r, 0, 3);
	assert_ret(rmpsc_loop_stop(l2), 0);
	assert_int_equal(atomic_load(&n2), 3);
	rmpsc_loop_destroy(l2);
	rmpsc_ring_destroy(r);
}

/*
 * A handler that calls the ring's consumer calls gets -EBUSY from each and
 * takes nothing: the loop delivers every element exactly once. (A pop from
 * the handler used to take an element of the run being handed out, and the
 * loop's advance then failed silently: 8 elements delivered twice.)
 */
struct reentry_ctx {
	rmpsc_ring *r;
	uint64_t next, bad, calls;
	int worst; /* a return other than -EBUSY, or 0 */
	int which;
};

static void reentry_handler(void *arg, const void *items, uint32_t count)
{
	struct reentry_ctx *c = arg;
	const uint64_t *v = items;
	uint64_t buf[4];
	rmpsc_span s;
	rmpsc_borrow b;
	rmpsc_loop *l = NULL;
	atomic_uint_fast64_t n;
	const int rets[] = {
		rmpsc_ring_pop(c->r, buf),
		rmpsc_ring_pop_n(c->r, buf, 4),
		rmpsc_ring_pop_n_exact(c->r, buf, 1),
		rmpsc_ring_peek(c->r, buf),
		rmpsc_ring_peek_n(c->r, buf, 4),
		rmpsc_ring_readable(c->r, 4, &s),
		rmpsc_ring_advance(c->r, 1),
		rmpsc_ring_skip(c->r, 1),
		rmpsc_ring_drain(c->r, buf, 4),
		rmpsc_ring_borrow(c->r, 1, &b),
		rmpsc_ring_borrow_commit_all(c->r),
		rmpsc_ring_pop_timed(c->r, buf, 0, NULL),
		rmpsc_ring_pop_n_timed(c->r, buf, 4, 1000000, NULL),
		rmpsc_ring_readable_timed(c->r, 4, &s, -1, NULL),
		rmpsc_ring_reset(c->r),
		rmpsc_loop_start_ring(c->r, count_handler, &n, NULL, &l),
	};

	for (uint32_t i = 0; i < count; i++)
		if (v[i] != c->next++)
			c->bad++;
	c->calls++;
	for (int i = 0; i < (int)(sizeof rets / sizeof rets[0]); i++) {
		if (rets[i] != -EBUSY && !c->worst) {
			c->worst = rets[i] ? rets[i] : INT_MIN;
			c->which = i;
		}
	}
}

static void test_loop_handler_calling_consumer_calls_gets_ebusy_and_nothing_repeats(
	void **state)
{
	rmpsc_ring *r = ring_make(64, 8, 0, 0);
	struct reentry_ctx c = { .r = r };
	rmpsc_loop *l = NULL;

	(void)state;
	assert_ret(rmpsc_loop_start_ring(r, reentry_handler, &c, NULL, &l), 0);
	push_range(r, 0, 8);
	assert_ret(rmpsc_loop_stop(l), 0);
	if (c.worst)
		print_error("call %d from the handler returned %d (%s)\n", c.which, c.worst,
			    errname(c.worst));
	assert_int_equal(c.worst, 0);
	assert_int_equal(c.bad, 0);
	assert_int_equal(c.next, 8);
	assert_ret(rmpsc_loop_processed(l), 8);
	assert_ret(rmpsc_ring_len(r), 0);
	rmpsc_loop_destroy(l);
	rmpsc_ring_destroy(r);
}

/*
 * A loop that ends before the ring is closed and drained reports why from
 * stop (and again from a second stop), and leaves the rest in the ring.
 * The early end is forced white-box: the handler marks a borrow as
 * outstanding on its ring, as a borrow from another thread (a breach of the
 * loop's contract) would, so the loop's release of the run fails.
 */
struct early_ctx {
	rmpsc_ring *r;
	uint64_t seen;
};

static void early_handler(void *arg, const void *items, uint32_t count)
{
	struct early_ctx *c = arg;

	(void)items;
	if (c->seen == 0)
		tc_lock_consumer(tc_ring_core(c->r));
	c->seen += count;
}

static void test_loop_stop_after_early_end_returns_its_error_and_leaves_the_rest(
	void **state)
{
	rmpsc_ring *r = ring_make(64, 8, 0, 0);
	struct early_ctx c = { .r = r };
	rmpsc_loop *l = NULL;
	uint64_t v;

	(void)state;
	push_range(r, 0, 4);
	assert_ret(rmpsc_loop_start_ring(r, early_handler, &c, NULL, &l), 0);
	push_range(r, 4, 8);
	assert_ret(rmpsc_loop_stop(l), -EINVAL);
	assert_ret(rmpsc_loop_stop(l), -EINVAL);
	assert_ret(rmpsc_loop_processed(l), 0);
	assert_ret(rmpsc_ring_len(r), 12); /* nothing was released */
	tc_unlock_consumer(tc_ring_core(r));
	for (uint64_t i = 0; i < 12; i++) {
		assert_ret(rmpsc_ring_pop(r, &v), 0);
		assert_int_equal(v, i);
	}
	assert_ret(rmpsc_ring_pop(r, &v), -EPIPE);
	rmpsc_loop_destroy(l);
	rmpsc_ring_destroy(r);
}

#define U(f) cmocka_unit_test(f)

int main(void)
{
	const struct CMUnitTest tests[] = {
		U(test_loop_start_with_borrow_outstanding_returns_einval),
		U(test_loop_start_on_ring_with_running_loop_returns_ebusy),
		U(test_loop_handler_calling_consumer_calls_gets_ebusy_and_nothing_repeats),
		U(test_loop_stop_after_early_end_returns_its_error_and_leaves_the_rest),
		/* arguments and handles */
		U(test_loop_calls_with_bad_handle_or_argument_return_documented_code),
		U(test_loop_start_with_larger_zero_tail_strategy_runs),
		U(test_loop_start_when_no_thread_can_be_created_returns_eagain),
		U(test_loop_destroy_with_null_is_noop),
		/* delivery per wait kind */
		TEST_PARAM(test_loop_with_spin_wait_delivers_all_in_order,
			   test_loop_with_kind_delivers_all_in_order, RMPSC_WAIT_SPIN),
		TEST_PARAM(test_loop_with_yield_wait_delivers_all_in_order,
			   test_loop_with_kind_delivers_all_in_order, RMPSC_WAIT_YIELD),
		TEST_PARAM(test_loop_with_sleep_wait_delivers_all_in_order,
			   test_loop_with_kind_delivers_all_in_order, RMPSC_WAIT_SLEEP),
		TEST_PARAM(test_loop_with_block_wait_delivers_all_in_order,
			   test_loop_with_kind_delivers_all_in_order, RMPSC_WAIT_BLOCK),
		TEST_PARAM(test_loop_with_deadline_wait_delivers_all_in_order,
			   test_loop_with_kind_delivers_all_in_order, RMPSC_WAIT_DEADLINE),
		TEST_PARAM(test_loop_with_backoff_wait_delivers_all_in_order,
			   test_loop_with_kind_delivers_all_in_order, RMPSC_WAIT_BACKOFF),
		U(test_loop_with_block_wait_and_no_spin_delivers_all_in_order),
		U(test_loop_with_null_wait_uses_ring_strategy_and_delivers_all),
		U(test_loop_with_elem_size_12_delivers_contiguous_runs_intact),
		U(test_loop_with_capacity_1_delivers_all_in_order),
		/* start / stop / destroy */
		U(test_loop_start_with_items_already_queued_delivers_them),
		U(test_loop_start_on_closed_ring_delivers_rest_then_stops),
		U(test_loop_stop_when_producer_closed_first_delivers_all),
		U(test_loop_stop_when_idle_wakes_loop_with_each_kind),
		U(test_loop_stop_from_handler_returns_edeadlk),
		U(test_loop_destroy_without_stop_stops_delivers_and_frees),
		U(test_loop_processed_while_running_never_decreases),
		U(test_loop_start_after_stop_and_reset_runs_again),
		/* stop racing a producer */
		U(test_loop_stop_while_producer_pushes_loses_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
