/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the ring core itself (src/ring_core.h, ring_core.c,
 * ring_close.c), below every public handle:
 *
 * - the shared part's layout, pinned field by field: it is what another
 *   process will map (fixed-width fields only, so the offsets are the same
 *   for a 32-bit and a 64-bit user by construction);
 * - the private view over it: validated geometry copies, the ring's own wake
 *   words, the process's barrier mode, slots after the shared part;
 * - the refresh checks: an index the other side wrote that does not fit the
 *   capacity is never adopted, by the producer (head), the single consumer
 *   (tail, final tail) or the claiming consumers (tail), so no slot outside
 *   what a side owns is ever written or read;
 * - the close states in the order a ring passes through them;
 * - a ring in the fence barrier mode (the mode a shared ring will use)
 *   exchanging elements with a sleeping consumer and a sleeping producer;
 * - in debug builds (the sanitizer configurations), the assertion that a
 *   single-consumer helper is never called on a claiming ring.
 *
 * Links the static library for the internal symbols (rmpsc__rc_map and
 * friends); the faulty peer is simulated by writing the shared words by
 * hand while no other thread runs.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_util.h"

#include "ring_core.h"

/* ---- the shared part's layout --------------------------------------------- */

#define PIN(field, off, size)                                                  \
	do {                                                                   \
		assert_int_equal(offsetof(rmpsc__rshared, field), (off));      \
		assert_int_equal(sizeof(((rmpsc__rshared *)0)->field), (size)); \
	} while (0)

static void test_ring_core_shared_part_layout_is_pinned(void **state)
{
	(void)state;
	PIN(magic, 0, 4);
	PIN(version, 4, 4);
	PIN(esz, 8, 4);
	PIN(_pad0, 12, 4);
	PIN(cap, 16, 8);
	PIN(slots, 24, 8);
	PIN(closed, 32, 4);
	PIN(prod_waiters, 36, 4);
	PIN(cons_waiters, 40, 4);
	PIN(state, 44, 4);
	PIN(tail, 128, 8);
	PIN(mc_head, 136, 8);
	PIN(head, 256, 8);
	PIN(claim, 264, 8);
	PIN(cons_seq, 384, 4);
	PIN(prod_seq, 388, 4);
	PIN(final_tail, 448, 8);
	PIN(m_sent, 456, 8);
	PIN(m_batches, 464, 8);
	PIN(m_full, 472, 8);
	assert_int_equal(sizeof(rmpsc__rshared), 512);
	assert_int_equal(_Alignof(rmpsc__rshared), 128);
	assert_int_equal(RC_SHARED_MAGIC, 0x524d5353u);
	assert_int_equal(RC_SHARED_VERSION, 1);
	/* The close states, numbered in the order a ring passes through them. */
	assert_int_equal(RC_OPEN, 0);
	assert_int_equal(RC_CLOSING, 1);
	assert_int_equal(RC_DECIDING, 2);
	assert_int_equal(RC_CLOSED, 3);
}

/* ---- the private view ------------------------------------------------------ */

static rmpsc__rcore *map_ring(uint64_t cap, uint64_t slots, uint32_t esz)
{
	rmpsc__rcore *rc = rmpsc__rc_map(RMPSC__MAGIC_RING, cap, slots, esz, 0, RMPSC_NODE_ANY);

	assert_non_null(rc);
	return rc;
}

static void test_ring_core_map_writes_shared_identity_and_view_over_it(void **state)
{
	rmpsc__rcore *rc = map_ring(16, 32, 24);
	rmpsc__rshared *sh = rc->sh;

	(void)state;
	assert_int_equal(sh->magic, RC_SHARED_MAGIC);
	assert_int_equal(sh->version, RC_SHARED_VERSION);
	assert_int_equal(sh->esz, 24);
	assert_int_equal(sh->cap, 16);
	assert_int_equal(sh->slots, 32);
	assert_int_equal(sh->_pad0, 0);
	/* The view's copies agree with the shared geometry. */
	assert_int_equal(rc->esz, sh->esz);
	assert_int_equal(rc->cap, sh->cap);
	assert_int_equal(rc->mask + 1, sh->slots);
	/* One mapping: view, shared part, slots, each where the layout says. */
	assert_ptr_equal((unsigned char *)sh, (unsigned char *)rc + sizeof(rmpsc__rcore));
	assert_ptr_equal(rc->data, (unsigned char *)sh + sizeof(rmpsc__rshared));
	assert_int_equal((uintptr_t)rc->data % RMPSC__CACHELINE, 0);
	assert_true(rc->map_len >= RC_MAP_SIZE + 32 * 24);
	/* A ring of its own sleeps on its own words, in the process's mode. */
	assert_ptr_equal(rc->cwait, &sh->cons_waiters);
	assert_ptr_equal(rc->cseq, &sh->cons_seq);
	assert_int_equal(rc->barrier, rmpsc__barrier_mode);
	assert_null(rc->mc_end);
	rmpsc__rc_unmap(rc);
}

/* ---- refresh checks: a faulty other side -------------------------------- */

enum { CAP = 8 };

static void fill(rmpsc__rcore *rc, uint64_t first, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		uint64_t v = first + i;

		assert_ret(rc_push1(rc, &v), 0);
	}
}

static void test_ring_core_producer_never_adopts_a_head_that_does_not_fit(void **state)
{
	rmpsc__rcore *rc = map_ring(CAP, CAP, 8);
	rmpsc__rshared *sh = rc->sh;
	uint64_t before[CAP], v = 999;

	(void)state;
	fill(rc, 100, CAP);
	memcpy(before, rc->data, sizeof before);
	/* A head ahead of the tail, and one more than the capacity behind
	 * it: either would let the producer overwrite unread slots. */
	const uint64_t bad[] = { CAP + 1, CAP + 1000, UINT64_MAX, (uint64_t)0 - CAP };

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		atomic_store(&sh->head, bad[i]);
		assert_ret(rc_push1(rc, &v), -EAGAIN);
		assert_ret(rc_push_n(rc, &v, 1, false), -EAGAIN);
		assert_int_equal(rc->cached_head, 0);
		assert_memory_equal(rc->data, before, sizeof before);
	}
	/* A head that fits is adopted: two consumed, two pushed. */
	atomic_store(&sh->head, 2);
	fill(rc, 200, 2);
	assert_int_equal(rc->cached_head, 2);
	assert_ret(rc_push1(rc, &v), -EAGAIN);
	rmpsc__rc_unmap(rc);
}

static void test_ring_core_consumer_never_adopts_a_tail_that_does_not_fit(void **state)
{
	rmpsc__rcore *rc = map_ring(CAP, CAP, 8);
	rmpsc__rshared *sh = rc->sh;
	uint64_t v = 0, out[CAP];
	rmpsc_span sp;

	(void)state;
	fill(rc, 100, 3);
	for (uint64_t i = 0; i < 3; i++) {
		assert_ret(rc_pop1_fast(rc, &v), 0);
		assert_int_equal(v, 100 + i);
	}
	/* The producer's tail, written by a faulty peer: more than the
	 * capacity past what the consumer has taken, or behind it. */
	const uint64_t bad[] = { 3 + CAP + 1, 3 + (1u << 20), 2, 0 };

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		atomic_store(&sh->tail, bad[i]);
		v = 7;
		assert_ret(rc_pop1_fast(rc, &v), -EAGAIN);
		assert_int_equal(v, 7);
		assert_ret(rc_pop1(rc, &v, true), -EAGAIN);
		assert_ret(rc_pop_n(rc, out, CAP, false, true), -EAGAIN);
		assert_ret(rc_readable(rc, CAP, &sp), -EAGAIN);
		assert_ret(rc_drain(rc, out, CAP), 0);
		assert_int_equal(rc_head(rc), 3);
		assert_int_equal(rc->cached_tail, 3);
	}
	/* Put right, the stream goes on from where it was. */
	atomic_store(&sh->tail, 3);
	fill(rc, 103, 2);
	assert_ret(rc_pop_n(rc, out, CAP, false, true), 2);
	assert_int_equal(out[0], 103);
	assert_int_equal(out[1], 104);
	rmpsc__rc_unmap(rc);
}

static void test_ring_core_consumer_never_adopts_a_final_tail_that_does_not_fit(void **state)
{
	rmpsc__rcore *rc = map_ring(CAP, CAP, 8);
	rmpsc__rshared *sh = rc->sh;
	uint64_t v = 0;

	(void)state;
	fill(rc, 100, 2);
	assert_ret(rc_pop1_fast(rc, &v), 0);
	assert_ret(rc_pop1_fast(rc, &v), 0);
	/* Closed by a faulty peer with an end far past the capacity: the
	 * consumer keeps the last tail it could use and reports the end. */
	atomic_store(&sh->final_tail, 2 + CAP + 5);
	atomic_store(&sh->closed, RC_CLOSED);
	assert_ret(rc_pop1_fast(rc, &v), -EPIPE);
	assert_ret(rc_pop1(rc, &v, true), -EPIPE);
	assert_int_equal(rc_head(rc), 2);
	rmpsc__rc_unmap(rc);
}

static void test_ring_core_claim_never_takes_a_tail_that_does_not_fit(void **state)
{
	rmpsc__rcore *rc = map_ring(CAP, CAP, 8);
	rmpsc__rshared *sh = rc->sh;
	uint64_t pos = 0;

	(void)state;
	assert_ret(rmpsc__rc_mc_init(rc), 0);
	fill(rc, 100, 2);
	assert_ret(rc_mc_claim(rc, 1, &pos), 1);
	assert_int_equal(pos, 0);
	atomic_store(&sh->tail, 1 + CAP + 1);
	assert_ret(rc_mc_claim(rc, CAP, &pos), -EAGAIN);
	assert_int_equal(atomic_load(&sh->claim), 1);
	atomic_store(&sh->tail, 2);
	assert_ret(rc_mc_claim(rc, CAP, &pos), 1);
	assert_int_equal(pos, 1);
	rc_mc_complete(rc, 1, 1);
	/* Completed out of order: the producer collects nothing yet. */
	assert_int_equal(rmpsc__rc_mc_collect(rc), 0);
	rc_mc_complete(rc, 0, 1);
	/* Consumers never write a head; the producer's collect moves the
	 * claiming ring's (mc_head), and its plain head stays unused. */
	assert_int_equal(atomic_load(&sh->mc_head), 0);
	assert_int_equal(rmpsc__rc_mc_collect(rc), 2);
	assert_int_equal(atomic_load(&sh->mc_head), 2);
	assert_int_equal(atomic_load(&sh->head), 0);
	rmpsc__rc_unmap(rc);
}

/* The producer's collect (M2) adopts only an end in (head, tail]: a faulty
 * entry past tail, or one of an earlier lap, leaves head where it is. */
static void test_ring_core_collect_never_passes_tail(void **state)
{
	rmpsc__rcore *rc = map_ring(CAP, CAP, 8);
	rmpsc__rshared *sh = rc->sh;
	uint64_t pos = 0;

	(void)state;
	assert_ret(rmpsc__rc_mc_init(rc), 0);
	fill(rc, 100, 4);
	assert_ret(rc_mc_claim(rc, 2, &pos), 2);
	/* An end beyond what was published. */
	rc_mc_complete(rc, 0, 5);
	assert_int_equal(rmpsc__rc_mc_collect(rc), 0);
	/* An end below head (as a lap-old entry would be). */
	rc_mc_complete(rc, 0, 0);
	assert_int_equal(rmpsc__rc_mc_collect(rc), 0);
	rc_mc_complete(rc, 0, 2);
	assert_int_equal(rmpsc__rc_mc_collect(rc), 2);
	assert_int_equal(atomic_load(&sh->mc_head), 2);
	rmpsc__rc_unmap(rc);
}

/* ---- the close states --------------------------------------------------- */

static void test_ring_core_close_passes_open_closing_deciding_closed(void **state)
{
	rmpsc__rcore *rc = map_ring(CAP, CAP, 8);
	rmpsc__rshared *sh = rc->sh;
	uint64_t v = 1;

	(void)state;
	fill(rc, 100, 3);
	assert_int_equal(atomic_load(&sh->closed), RC_OPEN);
	rmpsc__rc_close(rc);
	assert_int_equal(atomic_load(&sh->closed), RC_CLOSED);
	assert_int_equal(atomic_load(&sh->final_tail), 3);
	/* A producer that finds the close undecided decides it at its own
	 * tail (CLOSING -> DECIDING -> CLOSED). */
	rc_set_position(rc, 10);
	atomic_store(&sh->closed, RC_CLOSING);
	assert_ret(rc_push1(rc, &v), -EPIPE); /* refused before publishing */
	atomic_store(&sh->tail, 11);
	assert_ret(rmpsc__rc_publish_closed(rc, 11), 0);
	assert_int_equal(atomic_load(&sh->closed), RC_CLOSED);
	assert_int_equal(atomic_load(&sh->final_tail), 11);
	/* Decided below a later publication: that one is refused. */
	assert_ret(rmpsc__rc_publish_closed(rc, 12), -EPIPE);
	rmpsc__rc_unmap(rc);
}

/* ---- the fence barrier mode ---------------------------------------------- */

#define FENCE_N ((uint64_t)STRESS_SCALE(20000, 20000, 5000))

static void *fence_producer(void *arg)
{
	rmpsc__rcore *rc = arg;
	rmpsc_wait w;

	rmpsc_wait_init(&w, sizeof w, RMPSC_WAIT_BLOCK);
	w.spin_count = 0;
	w.yield_count = 0;
	for (uint64_t i = 0; i < FENCE_N; i++)
		if (rmpsc__rc_push_timed(rc, &i, -1, &w) != 0)
			return (void *)1;
	rmpsc__rc_close(rc);
	return NULL;
}

static void test_ring_core_fence_mode_ring_wakes_both_sides(void **state)
{
	rmpsc__rcore *rc = map_ring(4, 4, 8);
	rmpsc_wait w;
	pthread_t t;
	uint64_t v, want = 0;
	void *res;
	int r;

	(void)state;
	/* The mode a ring shared with another process needs: real fences on
	 * both sides of E4 and E7, no membarrier. */
	rc->barrier = RMPSC__BARRIER_FENCE;
	rmpsc_wait_init(&w, sizeof w, RMPSC_WAIT_BLOCK);
	w.spin_count = 0; /* straight to the futex: every wait registers */
	w.yield_count = 0;
	assert_int_equal(pthread_create(&t, NULL, fence_producer, rc), 0);
	while ((r = rmpsc__rc_pop_timed(rc, &v, -1, &w)) == 0) {
		if (v != want)
			fail_msg("got %llu, want %llu", (unsigned long long)v,
				 (unsigned long long)want);
		want++;
	}
	assert_ret(r, -EPIPE);
	assert_int_equal(want, FENCE_N);
	assert_int_equal(pthread_join(t, &res), 0);
	assert_null(res);
	rmpsc__rc_unmap(rc);
}

/* ---- the two consumer families -------------------------------------------- */

static void test_ring_core_single_consumer_helper_on_claiming_ring_asserts(void **state)
{
	(void)state;
#ifndef RMPSC_DEBUG_ASSERT
	skip(); /* the assertion exists in debug (sanitizer) builds only */
#else
	rmpsc__rcore *rc = map_ring(CAP, CAP, 8);
	int status;
	pid_t pid;

	assert_ret(rmpsc__rc_mc_init(rc), 0);
	fill(rc, 100, 1);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		uint64_t v;

		/* Quiet the report; the exit status is the verdict. */
		if (!freopen("/dev/null", "w", stderr))
			_exit(2);
		(void)rc_pop1(rc, &v, true);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGABRT);
	rmpsc__rc_unmap(rc);
#endif
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ring_core_shared_part_layout_is_pinned),
		cmocka_unit_test(test_ring_core_map_writes_shared_identity_and_view_over_it),
		cmocka_unit_test(test_ring_core_producer_never_adopts_a_head_that_does_not_fit),
		cmocka_unit_test(test_ring_core_consumer_never_adopts_a_tail_that_does_not_fit),
		cmocka_unit_test(test_ring_core_consumer_never_adopts_a_final_tail_that_does_not_fit),
		cmocka_unit_test(test_ring_core_claim_never_takes_a_tail_that_does_not_fit),
		cmocka_unit_test(test_ring_core_collect_never_passes_tail),
		cmocka_unit_test(test_ring_core_close_passes_open_closing_deciding_closed),
		cmocka_unit_test(test_ring_core_fence_mode_ring_wakes_both_sides),
		cmocka_unit_test(test_ring_core_single_consumer_helper_on_claiming_ring_asserts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
