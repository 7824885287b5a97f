/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for a ring's borrowed reads (include/ringmpsc/ring.h,
 * "Borrowed reads with out-of-order commit"): rmpsc_ring_borrow(),
 * rmpsc_ring_borrow_commit(), rmpsc_ring_borrow_commit_all() and
 * rmpsc_ring_borrow_fn(). Runs borrowed in turn and committed in any
 * order are released only as a completed prefix; a token names its ring
 * and its reset; a borrow never wraps; while a borrow is out the other
 * consumer calls refuse, and from a borrow_fn handler every consumer call
 * is -EBUSY. (The refused arguments and handles are rows of the ring
 * table in test_ring.c; the channel's borrows are test_mpsc's.)
 *
 * Single-threaded, no timing. Links the static library for the test hook
 * that sets a ring's position (test_core.h).
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_util.h"

#include "ringmpsc/ring.h"
#include "test_core.h"

/* ---- fixture: a ring of 8 slots of 8 bytes ------------------------------- */

enum { FIX_CAP = 8, FIX_ESZ = 8 };

static int setup_borrow(void **state)
{
	return ring_fixture(state, FIX_CAP); /* of FIX_ESZ bytes */
}

/* ---- borrowed reads ------------------------------------------------------ */

static void test_ring_borrow_when_empty_returns_eagain_and_zero_n_returns_zero(void **state)
{
	rmpsc_ring *r = *state;
	rmpsc_borrow b;

	assert_ret(rmpsc_ring_borrow(r, 4, &b), -EAGAIN);
	memset(&b, 0xa5, sizeof b);
	assert_ret(rmpsc_ring_borrow(r, 0, &b), 0);
	assert_int_equal(b.count, 0);
	assert_null(b.data);
}

static void test_ring_borrow_commit_out_of_order_releases_only_completed_prefix(void **state)
{
	rmpsc_ring *r = *state;
	rmpsc_borrow a, b, c;
	uint64_t v;

	ring_push_seq(r, 100, 6);
	assert_ret(rmpsc_ring_borrow(r, 2, &a), 2);
	assert_ret(rmpsc_ring_borrow(r, 3, &b), 3);
	assert_ret(rmpsc_ring_borrow(r, 8, &c), 1);
	vals_expect(a.data, 100, 2);
	vals_expect(b.data, 102, 3);
	vals_expect(c.data, 105, 1);
	assert_int_equal(a._pad0, 0);
	/* commit B, then C: A still holds the head */
	assert_ret(rmpsc_ring_borrow_commit(r, b.token), 0);
	assert_ret(rmpsc_ring_len(r), 6);
	assert_ret(rmpsc_ring_borrow_commit(r, c.token), 0);
	assert_ret(rmpsc_ring_len(r), 6);
	/* the producer sees only the two slots never filled */
	ring_push_seq(r, 106, 2);
	v = 999;
	assert_ret(rmpsc_ring_push(r, &v), -EAGAIN);
	/* commit A: all three runs are released at once */
	assert_ret(rmpsc_ring_borrow_commit(r, a.token), 0);
	assert_ret(rmpsc_ring_len(r), 2);
	ring_pop_seq(r, 106, 2);
	assert_ret(rmpsc_ring_is_empty(r), 1);
}

static void test_ring_borrow_commit_with_stale_or_forged_token_returns_einval(void **state)
{
	rmpsc_ring *r = *state;
	rmpsc_borrow a, b;

	assert_ret(rmpsc_ring_borrow_commit(r, 0), -EINVAL); /* nothing borrowed */
	ring_push_seq(r, 1, 5);
	assert_ret(rmpsc_ring_borrow(r, 3, &a), 3);
	assert_ret(rmpsc_ring_borrow(r, 2, &b), 2);
	assert_ret(rmpsc_ring_borrow_commit(r, a.token + 1), -EINVAL); /* mid-run */
	assert_ret(rmpsc_ring_borrow_commit(r, b.token + 2), -EINVAL); /* past the last */
	assert_ret(rmpsc_ring_borrow_commit(r, a.token - 1), -EINVAL); /* below head */
	assert_ret(rmpsc_ring_borrow_commit(r, ~a.token), -EINVAL);
	assert_ret(rmpsc_ring_borrow_commit(r, b.token), 0);
	assert_ret(rmpsc_ring_borrow_commit(r, b.token), -EINVAL); /* twice */
	assert_ret(rmpsc_ring_borrow_commit(r, a.token), 0);
	assert_ret(rmpsc_ring_borrow_commit(r, a.token), -EINVAL); /* released */
	assert_ret(rmpsc_ring_len(r), 0);
}

/*
 * A token names its ring: two rings with borrows at the same positions
 * (push 4 into each, borrow 2 from each), B's token committed on A is
 * refused and changes nothing; before tokens carried their ring, A took
 * it, gave its own run back to the producer while it was still being
 * read, and then refused A's own token. A reset makes the ring's earlier
 * tokens foreign too.
 */
static void test_ring_borrow_commit_with_token_of_another_ring_returns_einval(void **state)
{
	rmpsc_ring *a = ring_make(8, 8, 0, 0), *b = ring_make(8, 8, 0, 0);
	rmpsc_borrow ba, bb, old;

	(void)state;
	ring_push_seq(a, 100, 4);
	ring_push_seq(b, 200, 4);
	assert_ret(rmpsc_ring_borrow(a, 2, &ba), 2);
	assert_ret(rmpsc_ring_borrow(b, 2, &bb), 2);
	assert_int_not_equal(ba.token, bb.token);
	assert_ret(rmpsc_ring_borrow_commit(a, bb.token), -EINVAL);
	assert_ret(rmpsc_ring_len(a), 4); /* a's run is still borrowed */
	assert_ret(rmpsc_ring_borrow_commit(b, ba.token), -EINVAL);
	assert_ret(rmpsc_ring_borrow_commit(a, ba.token), 0);
	assert_ret(rmpsc_ring_borrow_commit(b, bb.token), 0);
	ring_pop_seq(a, 102, 2);
	ring_pop_seq(b, 202, 2);

	/* the same positions after a reset: the old token is refused */
	assert_ret(rmpsc_ring_reset(a), 0);
	ring_push_seq(a, 300, 4);
	assert_ret(rmpsc_ring_borrow(a, 2, &old), 2);
	assert_ret(rmpsc_ring_reset(a), 0);
	ring_push_seq(a, 400, 4);
	assert_ret(rmpsc_ring_borrow(a, 2, &ba), 2);
	assert_ret(rmpsc_ring_borrow_commit(a, old.token), -EINVAL);
	assert_ret(rmpsc_ring_borrow_commit(a, ba.token), 0);
	ring_pop_seq(a, 402, 2);
	rmpsc_ring_destroy(a);
	rmpsc_ring_destroy(b);
}

static void test_ring_borrow_outstanding_makes_other_consumer_calls_einval(void **state)
{
	rmpsc_ring *r = *state;
	rmpsc_borrow b;
	rmpsc_span s;
	uint64_t v[4];

	ring_push_seq(r, 7, 4);
	assert_ret(rmpsc_ring_borrow(r, 1, &b), 1);
	assert_ret(rmpsc_ring_pop(r, v), -EINVAL); /* the 8-byte fast path too */
	assert_ret(rmpsc_ring_pop_n(r, v, 2), -EINVAL);
	assert_ret(rmpsc_ring_pop_n_exact(r, v, 1), -EINVAL);
	assert_ret(rmpsc_ring_peek(r, v), -EINVAL);
	assert_ret(rmpsc_ring_peek_n(r, v, 2), -EINVAL);
	assert_ret(rmpsc_ring_readable(r, 2, &s), -EINVAL);
	assert_ret(rmpsc_ring_advance(r, 1), -EINVAL);
	assert_ret(rmpsc_ring_skip(r, 1), -EINVAL);
	assert_ret(rmpsc_ring_drain(r, v, 4), -EINVAL);
	assert_ret(rmpsc_ring_pop_timed(r, v, 0, NULL), -EINVAL);
	assert_ret(rmpsc_ring_len(r), 4);
	assert_ret(rmpsc_ring_borrow_commit_all(r), 1);
	assert_ret(rmpsc_ring_borrow_commit_all(r), 0);
	ring_pop_seq(r, 8, 3);
}

static void test_ring_borrow_at_buffer_end_stops_at_the_wrap(void **state)
{
	rmpsc_ring *r = *state;
	rmpsc_borrow a, b;

	assert_ret(tc_set_position(r, UINT64_MAX - 2), 0); /* 3 before 2^64 */
	ring_push_seq(r, 50, 6);
	assert_ret(rmpsc_ring_borrow(r, 6, &a), 3); /* slots 5..7 of 8 */
	vals_expect(a.data, 50, 3);
	assert_ret(rmpsc_ring_borrow(r, 6, &b), 3); /* slots 0..2, past 2^64 */
	assert_int_not_equal(a.token, b.token);
	assert_ptr_equal((const unsigned char *)a.data - 5 * 8, b.data);
	vals_expect(b.data, 53, 3);
	assert_ret(rmpsc_ring_borrow(r, 6, &b), -EAGAIN);
	assert_ret(rmpsc_ring_borrow_commit(r, b.token), 0);
	assert_ret(rmpsc_ring_borrow_commit(r, a.token), 0);
	assert_ret(rmpsc_ring_is_empty(r), 1);
}

/*
 * Re-entry from a borrow_fn handler: every consumer call on the ring gets
 * -EBUSY (it used to be -EINVAL, "a borrow is out", for most of them, and a
 * commit_all from the handler released the run being read) and the run is
 * committed once the handler returns.
 */
static struct {
	rmpsc_ring *r;
	int worst, which;
	uint64_t first;
} bre;

static void borrow_reenter(void *ctx, const void *items, uint32_t count)
{
	rmpsc_ring *r = bre.r;
	uint64_t buf[4];
	rmpsc_span s;
	rmpsc_borrow b;
	const int rets[] = {
		rmpsc_ring_pop(r, buf),
		rmpsc_ring_pop_n(r, buf, 4),
		rmpsc_ring_peek(r, buf),
		rmpsc_ring_readable(r, 4, &s),
		rmpsc_ring_advance(r, 1),
		rmpsc_ring_skip(r, 1),
		rmpsc_ring_drain(r, buf, 4),
		rmpsc_ring_borrow(r, 1, &b),
		rmpsc_ring_borrow_commit(r, 0),
		rmpsc_ring_borrow_commit_all(r),
		rmpsc_ring_borrow_fn(r, 1, borrow_reenter, NULL),
		rmpsc_ring_pop_timed(r, buf, -1, NULL),
		rmpsc_ring_reset(r),
	};

	(void)ctx;
	assert_int_equal(count, 2);
	memcpy(&bre.first, items, 8);
	for (int i = 0; i < (int)(sizeof rets / sizeof rets[0]); i++) {
		if (rets[i] != -EBUSY && !bre.worst) {
			bre.worst = rets[i] ? rets[i] : INT_MIN;
			bre.which = i;
		}
	}
}

static void test_ring_borrow_fn_handler_calling_consumer_calls_gets_ebusy(void **state)
{
	rmpsc_ring *r = *state;

	memset(&bre, 0, sizeof bre);
	bre.r = r;
	ring_push_seq(r, 10, 5);
	assert_ret(rmpsc_ring_borrow_fn(r, 2, borrow_reenter, NULL), 2);
	if (bre.worst)
		print_error("call %d from the handler returned %d (%s)\n", bre.which, bre.worst,
			    errname(bre.worst));
	assert_int_equal(bre.worst, 0);
	assert_int_equal(bre.first, 10);
	assert_ret(rmpsc_ring_len(r), 3);
	ring_pop_seq(r, 12, 3);
}

static uint64_t borrow_fn_sum;

static void borrow_sum(void *ctx, const void *items, uint32_t count)
{
	const uint64_t *v = items;

	assert_ptr_equal(ctx, &borrow_fn_sum);
	for (uint32_t i = 0; i < count; i++)
		borrow_fn_sum += v[i];
}

static void test_ring_borrow_fn_commits_when_callback_returns(void **state)
{
	rmpsc_ring *r = *state;

	ring_push_seq(r, 10, 4); /* 10+11+12+13 */
	borrow_fn_sum = 0;
	assert_ret(rmpsc_ring_borrow_fn(r, 3, borrow_sum, &borrow_fn_sum), 3);
	assert_int_equal(borrow_fn_sum, 33);
	assert_ret(rmpsc_ring_len(r), 1);
	assert_ret(rmpsc_ring_borrow_fn(r, 3, borrow_sum, &borrow_fn_sum), 1);
	assert_int_equal(borrow_fn_sum, 46);
	assert_ret(rmpsc_ring_borrow_fn(r, 3, borrow_sum, &borrow_fn_sum), -EAGAIN);
	ring_pop_seq(r, 0, 0);
	ring_push_seq(r, 14, 1);
	ring_pop_seq(r, 14, 1); /* ordinary reads work again once nothing is borrowed */
}

static void test_ring_borrow_after_close_returns_epipe_once_committed(void **state)
{
	rmpsc_ring *r = *state;
	rmpsc_borrow a, b;

	ring_push_seq(r, 1, 2);
	assert_ret(rmpsc_ring_close(r), 0);
	assert_ret(rmpsc_ring_borrow(r, 1, &a), 1);
	assert_ret(rmpsc_ring_borrow(r, 1, &b), 1);
	assert_ret(rmpsc_ring_borrow(r, 1, &b), -EAGAIN); /* outstanding borrows */
	assert_ret(rmpsc_ring_borrow_commit_all(r), 2);
	assert_ret(rmpsc_ring_borrow(r, 1, &b), -EPIPE);
	assert_ret(rmpsc_ring_reset(r), 0);
	ring_push_seq(r, 3, 1);
	assert_ret(rmpsc_ring_borrow(r, 4, &a), 1); /* the table survives reset */
	vals_expect(a.data, 3, 1);
	assert_ret(rmpsc_ring_borrow_commit(r, a.token), 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup_borrow, ring_fixture_free)
#define U(f) cmocka_unit_test(f)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_ring_borrow_when_empty_returns_eagain_and_zero_n_returns_zero),
		T(test_ring_borrow_commit_out_of_order_releases_only_completed_prefix),
		T(test_ring_borrow_commit_with_stale_or_forged_token_returns_einval),
		U(test_ring_borrow_commit_with_token_of_another_ring_returns_einval),
		T(test_ring_borrow_outstanding_makes_other_consumer_calls_einval),
		T(test_ring_borrow_at_buffer_end_stops_at_the_wrap),
		T(test_ring_borrow_fn_handler_calling_consumer_calls_gets_ebusy),
		T(test_ring_borrow_fn_commits_when_callback_returns),
		T(test_ring_borrow_after_close_returns_epipe_once_committed),
	};

	return cmocka_run_group_tests_name("test_borrow", tests, NULL, NULL);
}
