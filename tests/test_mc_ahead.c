/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for taking ahead on the SPMC and MPMC consumers
 * (ringmpsc/channel.h, "Taking ahead" at rmpsc_consumer_steal()): a
 * single-element steal that finds a backlog of at least 2 * K unclaimed
 * elements claims K of them at once (K = 16 for elements up to 16 bytes,
 * 256 / elem_size above, none when that is below 2), hands out the first
 * and keeps the rest in the consumer handle; rmpsc_consumer_pending()
 * counts them, every take call (steal, consume, claim, their _timed twins)
 * hands them out first, and rmpsc_consumer_deregister() refuses a consumer
 * that still holds some.
 *
 * Each case reads one promise as a stranger would and tries to break it:
 * the threshold, the count and order, the slots going back to the producer
 * at once, the element sizes (bytes exact, across the buffer end), steal(n)
 * going on past them, consume and claim handing out only them (with the
 * producer id and ring position), no refill under a running handler or a
 * held claim, deregister, close, MPMC producer ids, steal_timed.
 *
 * Public API only. The last two cases run 1 producer x 4 consumers (SPMC)
 * and 4 x 4 (MPMC) with single-element steals only, consumers deregistering
 * and re-registering at random; they check per-producer order per consumer
 * and exact count, sum and sum of squares per producer. No timing is
 * asserted except a loose bound where a call must not wait at all.
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

#include <cmocka.h>

#define STRESS_SEED 0x5eedaeadf00d0001ull /* RMPSC_STRESS_SEED overrides it */
#include "test_util.h"

#include "ringmpsc/channel.h"
#include "ringmpsc/ring.h"
#include "ringmpsc/wait.h"

#include "test_mc_util.h"

/* ---- helpers ------------------------------------------------------------ */


enum {
	AHEAD_K8 = 16, /* K for 8-byte elements: up to 16, backlog 32 */
	ESZ_MAX = 200,
};

/* Push the 8-byte values first, first + 1, ... (@n of them, all must fit). */
static void spmc_push_seq(rmpsc_spmc *s, uint64_t first, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		assert_ret(rmpsc_spmc_push(s, &(uint64_t){ first + i }), 0);
}

/* Push until the ring refuses: the count pushed (values first, first+1...). */
static uint32_t spmc_fill(rmpsc_spmc *s, uint64_t first, uint32_t most)
{
	uint32_t n = 0;
	int rc = 0;

	while (n < most && (rc = rmpsc_spmc_push(s, &(uint64_t){ first + n })) == 0)
		n++;
	if (n < most)
		assert_ret(rc, -EAGAIN);
	return n;
}

/* steal_one on @c must return @want, leave @pend pending. */
static void steal1_expect(rmpsc_consumer *c, uint64_t want, int pend)
{
	uint64_t v = ~0ull;

	assert_ret(rmpsc_consumer_steal_one(c, &v), 0);
	assert_int_equal(v, want);
	assert_ret(rmpsc_consumer_pending(c), pend);
}

/* The element of @esz bytes that stands for @v: every byte from v. */
static void elem_make(unsigned char *e, uint32_t esz, uint64_t v)
{
	for (uint32_t i = 0; i < esz; i++)
		e[i] = (unsigned char)(v * 131u + i * 7u + (v >> 8) + 1u);
	if (esz >= 8)
		memcpy(e, &v, sizeof v);
}

static void elem_expect(const unsigned char *e, uint32_t esz, uint64_t v)
{
	unsigned char want[ESZ_MAX];

	elem_make(want, esz, v);
	assert_memory_equal(e, want, esz);
}

/* ---- the threshold and the count ---------------------------------------- */

/* "finds at least 32 unclaimed elements": with 31, a steal_one takes one
 * (len drops by 1, nothing pending); at exactly 32 it takes 16. */
static void test_mc_ahead_below_threshold_takes_exactly_one(void **state)
{
	rmpsc_spmc *s = spmc_new(128, 4);
	rmpsc_consumer *c = cons_new(s, false);

	(void)state;
	spmc_push_seq(s, 0, 31);
	steal1_expect(c, 0, 0);
	assert_ret(rmpsc_spmc_len(s), 30);
	/* still below: 30, then 31 */
	steal1_expect(c, 1, 0);
	assert_ret(rmpsc_spmc_len(s), 29);
	spmc_push_seq(s, 31, 2); /* 31 */
	steal1_expect(c, 2, 0);
	assert_ret(rmpsc_spmc_len(s), 30);
	spmc_push_seq(s, 33, 2); /* 32: the threshold */
	steal1_expect(c, 3, AHEAD_K8 - 1);
	assert_ret(rmpsc_spmc_len(s), 32 - AHEAD_K8);
	for (int i = 1; i < AHEAD_K8; i++)
		steal1_expect(c, 3 + (uint64_t)i, AHEAD_K8 - 1 - i);
	assert_ret(rmpsc_consumer_deregister(c), 0);
	rmpsc_spmc_destroy(s);
}

/* With a backlog, steal_one claims 16 at once: len drops by 16, 15
 * pending, the next 15 steal_one return the next elements in order
 * without touching the ring (len unchanged), and the producer has the 16
 * slots back at once ("completes them at once"), before any of the 15 is
 * handed out. */
static void test_mc_ahead_backlog_takes_sixteen_returns_them_in_order(void **state)
{
	rmpsc_spmc *s = spmc_new(128, 4);
	rmpsc_consumer *c = cons_new(s, false);

	(void)state;
	assert_int_equal(spmc_fill(s, 0, 1000), 128);
	steal1_expect(c, 0, 15);
	assert_ret(rmpsc_spmc_len(s), 128 - 16);
	/* the 16 slots are free already */
	assert_int_equal(spmc_fill(s, 128, 1000), 16);
	assert_ret(rmpsc_spmc_len(s), 128);
	for (int i = 1; i < 16; i++) {
		steal1_expect(c, (uint64_t)i, 15 - i);
		assert_ret(rmpsc_spmc_len(s), 128); /* served from the consumer */
	}
	/* pending 0 and a backlog: the next steal_one takes ahead again */
	steal1_expect(c, 16, 15);
	assert_ret(rmpsc_spmc_len(s), 128 - 16);
	for (uint64_t i = 17; i < 144; i++) {
		uint64_t v;

		assert_ret(rmpsc_consumer_steal_one(c, &v), 0);
		assert_int_equal(v, i);
	}
	assert_ret(rmpsc_consumer_pending(c), 0);
	assert_ret(rmpsc_spmc_len(s), 0);
	assert_ret(rmpsc_consumer_steal_one(c, &(uint64_t){ 0 }), -EAGAIN);
	assert_ret(rmpsc_consumer_deregister(c), 0);
	rmpsc_spmc_destroy(s);
}

/* "fewer for elements above 16 bytes; none above 128": K = 16, 10, 2, 0
 * for 16, 24, 100 and 200 bytes. Below 2K nothing is taken ahead, at 2K
 * exactly K; the run read out crosses the end of the buffer and every byte
 * of every element comes out as pushed, in order. */
struct esz_case {
	uint32_t esz, k;
};

static void test_mc_ahead_elem_size_sets_k_and_bytes_are_exact(void **state)
{
	const struct esz_case *p = *state;
	const uint32_t esz = p->esz, k = p->k, cap = 64, skip = 57;
	rmpsc_spmc *s = spmc_new_esz(cap, esz, 4);
	rmpsc_consumer *c = cons_new(s, false);
	unsigned char *buf = malloc((size_t)cap * esz);
	unsigned char e[ESZ_MAX];
	uint64_t next = 0, pushed = 0;
	const uint32_t below = k ? 2 * k - 1 : 40;

	assert_non_null(buf);
	/* Move the ring position near the end of the buffer: steal(n > 1)
	 * never takes ahead when nothing is pending. */
	for (uint32_t i = 0; i < skip; i++) {
		elem_make(e, esz, pushed++);
		assert_ret(rmpsc_spmc_push(s, e), 0);
	}
	assert_ret(rmpsc_consumer_steal(c, buf, skip), (int)skip);
	for (uint32_t i = 0; i < skip; i++)
		elem_expect(buf + (size_t)i * esz, esz, next++);
	assert_ret(rmpsc_consumer_pending(c), 0);

	/* below the backlog: one at a time */
	for (uint32_t i = 0; i < below; i++) {
		elem_make(e, esz, pushed++);
		assert_ret(rmpsc_spmc_push(s, e), 0);
	}
	assert_ret(rmpsc_consumer_steal_one(c, e), 0);
	elem_expect(e, esz, next++);
	assert_ret(rmpsc_consumer_pending(c), 0);
	assert_ret(rmpsc_spmc_len(s), (int64_t)below - 1);
	if (k) {
		/* exactly 2K: K at once, across the buffer end (57 + 1 = 58) */
		for (int i = 0; i < 2; i++) {
			elem_make(e, esz, pushed++);
			assert_ret(rmpsc_spmc_push(s, e), 0);
		}
		assert_ret(rmpsc_spmc_len(s), 2 * (int64_t)k);
		assert_ret(rmpsc_consumer_steal_one(c, e), 0);
		elem_expect(e, esz, next++);
		assert_ret(rmpsc_consumer_pending(c), (int)k - 1);
		assert_ret(rmpsc_spmc_len(s), (int64_t)k);
		for (uint32_t i = 1; i < k; i++) {
			memset(e, 0, esz);
			assert_ret(rmpsc_consumer_steal_one(c, e), 0);
			elem_expect(e, esz, next++);
			assert_ret(rmpsc_consumer_pending(c), (int)(k - 1 - i));
		}
	}
	/* the rest, one at a time; the pending count never above K - 1 */
	while (next < pushed) {
		int pend;

		memset(e, 0, esz);
		assert_ret(rmpsc_consumer_steal_one(c, e), 0);
		elem_expect(e, esz, next++);
		pend = rmpsc_consumer_pending(c);
		assert_true(pend >= 0);
		assert_true((uint32_t)pend <= (k ? k - 1 : 0));
	}
	assert_ret(rmpsc_consumer_steal_one(c, e), -EAGAIN);
	assert_ret(rmpsc_consumer_pending(c), 0);
	/* a full ring read with steal_one: K at a time where it applies */
	for (uint32_t i = 0; i < cap; i++) {
		elem_make(e, esz, pushed++);
		assert_ret(rmpsc_spmc_push(s, e), 0);
	}
	assert_ret(rmpsc_consumer_steal_one(c, e), 0);
	elem_expect(e, esz, next++);
	assert_ret(rmpsc_consumer_pending(c), k ? (int)k - 1 : 0);
	assert_ret(rmpsc_spmc_len(s), (int64_t)cap - (k ? k : 1));
	while (next < pushed) {
		assert_ret(rmpsc_consumer_steal_one(c, e), 0);
		elem_expect(e, esz, next++);
	}
	assert_ret(rmpsc_consumer_pending(c), 0);
	assert_ret(rmpsc_consumer_deregister(c), 0);
	free(buf);
	rmpsc_spmc_destroy(s);
}

static const struct esz_case esz16 = { 16, 16 }, esz24 = { 24, 10 }, esz100 = { 100, 2 },
			     esz200 = { 200, 0 };

/* ---- the other take calls ------------------------------------------------ */

/* "Every take call hands those out first": steal(n) returns the pending
 * ones and goes on into the ring in the same call, in order; the channel
 * len drops only by what the call took from the ring. */
static void test_mc_ahead_steal_n_returns_pending_then_continues_into_ring(void **state)
{
	rmpsc_spmc *s = spmc_new(128, 4);
	rmpsc_consumer *c = cons_new(s, false);
	uint64_t buf[64];

	(void)state;
	spmc_push_seq(s, 0, 100);
	steal1_expect(c, 0, 15);
	assert_ret(rmpsc_spmc_len(s), 84);
	assert_ret(rmpsc_consumer_steal(c, buf, 20), 20);
	vals_expect(buf, 1, 20);
	assert_ret(rmpsc_consumer_pending(c), 0);
	assert_ret(rmpsc_spmc_len(s), 79);
	/* fewer than pending: only pending ones, the rest stays pending */
	steal1_expect(c, 21, 15);
	assert_ret(rmpsc_consumer_steal(c, buf, 4), 4);
	vals_expect(buf, 22, 4);
	assert_ret(rmpsc_consumer_pending(c), 11);
	assert_ret(rmpsc_spmc_len(s), 79 - 16);
	/* exactly pending + 1: its ring part is one element, but the call is
	 * a steal of 12, which never takes ahead */
	assert_ret(rmpsc_consumer_steal(c, buf, 12), 12);
	vals_expect(buf, 26, 12);
	assert_ret(rmpsc_consumer_pending(c), 0);
	assert_ret(rmpsc_spmc_len(s), 79 - 16 - 1);
	/* the rest comes in order */
	for (uint64_t i = 38; i < 100; i++) {
		uint64_t v;

		assert_ret(rmpsc_consumer_steal_one(c, &v), 0);
		assert_int_equal(v, i);
	}
	assert_ret(rmpsc_consumer_steal(c, buf, 8), -EAGAIN);
	assert_ret(rmpsc_consumer_pending(c), 0);
	/* pending and an empty ring: steal(n) returns just the pending ones */
	spmc_push_seq(s, 100, 32);
	steal1_expect(c, 100, 15);
	assert_ret(rmpsc_consumer_steal(c, buf, 64), 15 + 16);
	vals_expect(buf, 101, 31);
	assert_ret(rmpsc_consumer_deregister(c), 0);
	rmpsc_spmc_destroy(s);
}

struct seen {
	uint64_t v[256];
	uint32_t n, calls;
	uint32_t id[8];
	rmpsc_consumer *c;
	uint32_t inner; /* steal_one calls to make from the handler */
	uint64_t inner_v[8];
	int inner_rc[8];
	int inner_pend[8];
	int64_t len_before, len_after;
	rmpsc_spmc *s;
	bool intact; /* the handler's items unchanged after its inner calls */
};

static void seen_fn(void *ctx, uint32_t producer_id, const void *items, uint32_t count)
{
	struct seen *sn = ctx;
	uint64_t copy[256];

	assert_true(count <= 256 - sn->n);
	memcpy(copy, items, (size_t)count * 8);
	memcpy(&sn->v[sn->n], items, (size_t)count * 8);
	if (sn->calls < 8)
		sn->id[sn->calls] = producer_id;
	sn->calls++;
	sn->n += count;
	if (sn->s)
		sn->len_before = rmpsc_spmc_len(sn->s);
	for (uint32_t i = 0; i < sn->inner; i++) {
		sn->inner_rc[i] = rmpsc_consumer_steal_one(sn->c, &sn->inner_v[i]);
		sn->inner_pend[i] = rmpsc_consumer_pending(sn->c);
	}
	if (sn->s)
		sn->len_after = rmpsc_spmc_len(sn->s);
	sn->intact = memcmp(copy, items, (size_t)count * 8) == 0;
}

/* consume with pending elements hands only those to fn, in order, with
 * the producer id of their ring (MPMC: ring 1), and takes nothing from
 * the ring in that call; the next consume goes to the ring. */
static void test_mc_ahead_consume_hands_only_pending_with_producer_id(void **state)
{
	rmpsc_mpmc *m = mpmc_new(128, 2, 2, 4);
	rmpsc_producer *p0 = producer_new(m, true, 0);
	rmpsc_producer *p1 = producer_new(m, true, 1);
	rmpsc_consumer *c = cons_new(m, true);
	struct seen sn = { 0 };
	uint64_t v;

	(void)state;
	for (uint64_t i = 0; i < 100; i++)
		assert_ret(rmpsc_producer_push(p1, &(uint64_t){ 1000 + i }), 0);
	assert_ret(rmpsc_consumer_steal_one(c, &v), 0);
	assert_int_equal(v, 1000);
	assert_ret(rmpsc_consumer_pending(c), 15);
	assert_ret(rmpsc_mpmc_len(m), 84);
	assert_ret(rmpsc_consumer_consume(c, 64, seen_fn, &sn), 15);
	assert_int_equal(sn.calls, 1);
	assert_int_equal(sn.n, 15);
	assert_int_equal(sn.id[0], 1);
	vals_expect(sn.v, 1001, 15);
	assert_ret(rmpsc_consumer_pending(c), 0);
	assert_ret(rmpsc_mpmc_len(m), 84);
	/* the next consume reads the ring */
	memset(&sn, 0, sizeof sn);
	assert_ret(rmpsc_consumer_consume(c, 4, seen_fn, &sn), 4);
	assert_int_equal(sn.id[0], 1);
	vals_expect(sn.v, 1016, 4);
	/* fewer than pending: consume(max) hands max of them */
	assert_ret(rmpsc_consumer_steal_one(c, &v), 0);
	assert_int_equal(v, 1020);
	assert_ret(rmpsc_consumer_pending(c), 15);
	memset(&sn, 0, sizeof sn);
	assert_ret(rmpsc_consumer_consume(c, 5, seen_fn, &sn), 5);
	vals_expect(sn.v, 1021, 5);
	assert_int_equal(sn.id[0], 1);
	assert_ret(rmpsc_consumer_pending(c), 10);
	(void)p0;
	for (uint64_t i = 1026; i < 1100; i++) {
		assert_ret(rmpsc_consumer_steal_one(c, &v), 0);
		assert_int_equal(v, i);
	}
	assert_ret(rmpsc_consumer_deregister(c), 0);
	rmpsc_mpmc_destroy(m);
}

/* A handler that calls steal_one on its own consumer ("fn may call this
 * consumer's calls itself ... nothing is read twice") gets the elements
 * after those it was handed: the next pending ones, then the ring; while it
 * runs on the consumer's buffer, no take-ahead refills it (its items stay
 * intact, len drops by one per inner call). */
static void test_mc_ahead_consume_handler_steal_one_gets_next_in_order(void **state)
{
	rmpsc_spmc *s = spmc_new(128, 4);
	rmpsc_consumer *c = cons_new(s, false);
	struct seen sn = { 0 };

	(void)state;
	spmc_push_seq(s, 0, 100);
	steal1_expect(c, 0, 15);
	/* 5 of the 15 to the handler, which steals 2 more: 6, 7 */
	sn.c = c;
	sn.inner = 2;
	assert_ret(rmpsc_consumer_consume(c, 5, seen_fn, &sn), 5);
	vals_expect(sn.v, 1, 5);
	assert_ret(sn.inner_rc[0], 0);
	assert_ret(sn.inner_rc[1], 0);
	assert_int_equal(sn.inner_v[0], 6);
	assert_int_equal(sn.inner_v[1], 7);
	assert_ret(sn.inner_pend[0], 9);
	assert_ret(sn.inner_pend[1], 8);
	assert_true(sn.intact);
	assert_ret(rmpsc_consumer_pending(c), 8);
	/* all 8 left to the handler, which steals 3: from the ring, one each,
	 * no refill of the buffer it is reading */
	memset(&sn, 0, sizeof sn);
	sn.c = c;
	sn.s = s;
	sn.inner = 3;
	assert_ret(rmpsc_spmc_len(s), 84);
	assert_ret(rmpsc_consumer_consume(c, 64, seen_fn, &sn), 8);
	vals_expect(sn.v, 8, 8);
	for (int i = 0; i < 3; i++) {
		assert_ret(sn.inner_rc[i], 0);
		assert_int_equal(sn.inner_v[i], 16 + (uint64_t)i);
		assert_ret(sn.inner_pend[i], 0);
	}
	assert_ret(sn.len_before, 84);
	assert_ret(sn.len_after, 81);
	assert_true(sn.intact);
	/* after the handler: take-ahead again, in order */
	steal1_expect(c, 19, 15);
	for (uint64_t i = 20; i < 100; i++) {
		uint64_t v;

		assert_ret(rmpsc_consumer_steal_one(c, &v), 0);
		assert_int_equal(v, i);
	}
	assert_ret(rmpsc_consumer_deregister(c), 0);
	rmpsc_spmc_destroy(s);
}

/* A handler reading a ring run (nothing pending) that calls steal_one
 * may take ahead: its elements come after the run, in order. */
static void test_mc_ahead_consume_ring_handler_steal_one_takes_after_run(void **state)
{
	rmpsc_spmc *s = spmc_new(128, 4);
	rmpsc_consumer *c = cons_new(s, false);
	struct seen sn = { 0 };

	(void)state;
	spmc_push_seq(s, 0, 100);
	sn.c = c;
	sn.inner = 2;
	assert_ret(rmpsc_consumer_consume(c, 4, seen_fn, &sn), 4);
	vals_expect(sn.v, 0, 4);
	assert_int_equal(sn.inner_v[0], 4);
	assert_int_equal(sn.inner_v[1], 5);
	assert_true(sn.intact);
	for (uint64_t i = 6; i < 100; i++) {
		uint64_t v;

		assert_ret(rmpsc_consumer_steal_one(c, &v), 0);
		assert_int_equal(v, i);
	}
	assert_ret(rmpsc_consumer_pending(c), 0);
	assert_ret(rmpsc_consumer_deregister(c), 0);
	rmpsc_spmc_destroy(s);
}

/* claim with pending elements returns a span over them: one segment, at
 * most n, span.pos the ring position of the first, producer 0, the values
 * in place. While held, steal_one still returns the remaining pending ones
 * but never takes ahead (pending never grows); the claim's elements stay
 * intact; deregister is refused; after complete, take-ahead works again. */
static void test_mc_ahead_claim_of_pending_blocks_refill_until_complete(void **state)
{
	rmpsc_spmc *s = spmc_new(128, 4);
	rmpsc_consumer *c = cons_new(s, false);
	rmpsc_claim cl, all;
	uint64_t v;

	(void)state;
	spmc_push_seq(s, 0, 100);
	steal1_expect(c, 0, 15);
	memset(&cl, 0xa5, sizeof cl);
	assert_ret(rmpsc_consumer_claim(c, 4, &cl), 4);
	assert_int_equal(cl.span.nseg, 1);
	assert_int_equal(cl.span.count[0], 4);
	assert_int_equal(cl.span.count[1], 0);
	assert_int_equal(cl.span.iov[0].iov_len, 4 * 8);
	assert_int_equal(cl.span.iov[1].iov_len, 0);
	assert_int_equal(cl.span._pad0, 0);
	assert_int_equal(cl._pad0, 0);
	assert_int_equal(cl.span.pos, 1);
	assert_int_equal(cl.producer, 0);
	for (uint32_t i = 0; i < 4; i++)
		assert_int_equal(span_get_u64(&cl.span, i), 1 + i);
	assert_ret(rmpsc_consumer_pending(c), 11);
	/* the rest of the pending ones, in order */
	for (int i = 0; i < 11; i++)
		steal1_expect(c, 5 + (uint64_t)i, 10 - i);
	/* the claim is held: a backlog of 84 but no take-ahead */
	assert_ret(rmpsc_spmc_len(s), 84);
	for (uint64_t i = 16; i < 40; i++) {
		steal1_expect(c, i, 0);
		assert_ret(rmpsc_spmc_len(s), (int64_t)(100 - i - 1));
	}
	for (uint32_t i = 0; i < 4; i++)
		assert_int_equal(span_get_u64(&cl.span, i), 1 + i);
	assert_ret(rmpsc_consumer_deregister(c), -EBUSY);
	assert_ret(rmpsc_consumer_complete(c, cl.token), 0);
	assert_ret(rmpsc_consumer_complete(c, cl.token), -EINVAL);
	/* take-ahead again: 40 and 15 pending */
	steal1_expect(c, 40, 15);
	assert_ret(rmpsc_spmc_len(s), 100 - 56);
	/* claim(n) larger than pending: only the pending ones, pos 41 */
	memset(&all, 0xa5, sizeof all);
	assert_ret(rmpsc_consumer_claim(c, 64, &all), 15);
	assert_int_equal(all.span.nseg, 1);
	assert_int_equal(all.span.pos, 41);
	for (uint32_t i = 0; i < 15; i++)
		assert_int_equal(span_get_u64(&all.span, i), 41 + i);
	assert_ret(rmpsc_consumer_pending(c), 0);
	assert_ret(rmpsc_spmc_len(s), 100 - 56);
	/* held, nothing pending: one at a time from the ring */
	steal1_expect(c, 56, 0);
	assert_ret(rmpsc_spmc_len(s), 100 - 57);
	for (uint32_t i = 0; i < 15; i++)
		assert_int_equal(span_get_u64(&all.span, i), 41 + i);
	assert_ret(rmpsc_consumer_deregister(c), -EBUSY);
	assert_ret(rmpsc_consumer_complete(c, all.token), 0);
	steal1_expect(c, 57, 15);
	for (uint64_t i = 58; i < 100; i++) {
		assert_ret(rmpsc_consumer_steal_one(c, &v), 0);
		assert_int_equal(v, i);
	}
	assert_ret(rmpsc_consumer_deregister(c), 0);
	rmpsc_spmc_destroy(s);
}

/* ---- deregister, pending, close ------------------------------------------ */

/* deregister with pending elements: -EBUSY and nothing changes (the
 * consumer still works and hands them out in order, len unchanged); 0 once
 * pending is 0. rmpsc_consumer_pending() of NULL or a foreign handle is
 * -EBADF. */
static void test_mc_ahead_deregister_with_pending_returns_ebusy_until_taken(void **state)
{
	rmpsc_spmc *s = spmc_new(128, 4);
	rmpsc_consumer *c = cons_new(s, false);

	(void)state;
	assert_ret(rmpsc_consumer_pending(NULL), -EBADF);
	assert_ret(rmpsc_consumer_pending(FOREIGN(rmpsc_consumer)), -EBADF);
	assert_ret(rmpsc_consumer_pending(c), 0);
	spmc_push_seq(s, 0, 40);
	steal1_expect(c, 0, 15);
	for (int i = 1; i < 16; i++) {
		assert_ret(rmpsc_consumer_deregister(c), -EBUSY);
		assert_ret(rmpsc_consumer_pending(c), 16 - i);
		assert_ret(rmpsc_spmc_len(s), 24);
		steal1_expect(c, (uint64_t)i, 15 - i);
	}
	assert_ret(rmpsc_consumer_deregister(c), 0);
	/* a new consumer gets what is left, from 16 on */
	c = cons_new(s, false);
	steal1_expect(c, 16, 0); /* 24 left: below 32 */
	assert_ret(rmpsc_consumer_deregister(c), 0);
	rmpsc_spmc_destroy(s);
}

struct dereg_in_fn {
	rmpsc_consumer *c;
	int ret;
	uint64_t first;
	uint32_t count;
};

static void dereg_in_fn(void *ctx, uint32_t id, const void *items, uint32_t count)
{
	struct dereg_in_fn *d = ctx;

	(void)id;
	d->ret = rmpsc_consumer_deregister(d->c);
	memcpy(&d->first, items, sizeof d->first);
	d->count = count;
}

/* A handler reading elements the consumer took ahead cannot deregister it
 * (-EBUSY: the buffer it reads is the consumer's); after the handler the
 * consumer goes on, and deregisters once nothing is pending. */
static void test_mc_ahead_deregister_from_handler_on_pending_returns_ebusy(void **state)
{
	rmpsc_spmc *s = spmc_new(128, 4);
	struct dereg_in_fn d = { .c = cons_new(s, false), .ret = 1 };

	(void)state;
	spmc_push_seq(s, 0, 100);
	steal1_expect(d.c, 0, 15);
	assert_ret(rmpsc_consumer_consume(d.c, 64, dereg_in_fn, &d), 15);
	assert_int_equal(d.ret, -EBUSY);
	assert_int_equal(d.first, 1);
	assert_int_equal(d.count, 15);
	assert_ret(rmpsc_consumer_pending(d.c), 0);
	steal1_expect(d.c, 16, 15);
	while (rmpsc_consumer_pending(d.c) > 0)
		assert_ret(rmpsc_consumer_steal(d.c, &(uint64_t){ 0 }, 1), 1);
	assert_ret(rmpsc_consumer_deregister(d.c), 0);
	rmpsc_spmc_destroy(s);
}

static void align_fn(void *ctx, uint32_t id, const void *items, uint32_t count)
{
	uintptr_t *addr = ctx;

	(void)id;
	(void)count;
	*addr = (uintptr_t)items;
}

/* Elements taken ahead are aligned as ring slots are: with 64-byte
 * elements, a handler and a claim get them on a 64-byte boundary, as they
 * get ring memory. */
static void test_mc_ahead_pending_are_aligned_as_ring_slots(void **state)
{
	rmpsc_spmc *s = spmc_new_esz(64, 64, 4);
	rmpsc_consumer *c = cons_new(s, false);
	unsigned char e[64] = { 0 };
	uintptr_t addr = 1;
	rmpsc_claim cl;

	(void)state;
	for (uint32_t i = 0; i < 16; i++) {
		e[0] = (unsigned char)i;
		assert_ret(rmpsc_spmc_push(s, e), 0);
	}
	/* K = 256 / 64 = 4, backlog 8: takes 4, hands out 1 */
	assert_ret(rmpsc_consumer_steal_one(c, e), 0);
	assert_int_equal(e[0], 0);
	assert_ret(rmpsc_consumer_pending(c), 3);
	assert_ret(rmpsc_consumer_consume(c, 1, align_fn, &addr), 1);
	assert_int_equal(addr % 64, 0);
	assert_ret(rmpsc_consumer_claim(c, 1, &cl), 1);
	assert_int_equal((uintptr_t)cl.span.iov[0].iov_base % 64, 0);
	assert_int_equal(((unsigned char *)cl.span.iov[0].iov_base)[0], 2);
	assert_ret(rmpsc_consumer_complete(c, cl.token), 0);
	assert_ret(rmpsc_consumer_steal_one(c, e), 0);
	assert_int_equal(e[0], 3);
	assert_ret(rmpsc_consumer_deregister(c), 0);
	rmpsc_spmc_destroy(s);
}

/* A left producer's ring (and id) is not reused while a consumer still
 * holds elements it took ahead from it: they would come out under the id
 * of the new producer. */
static void test_mc_ahead_pending_block_ring_reuse_until_handed_out(void **state)
{
	rmpsc_mpmc *m = mpmc_new(128, 0, 1, 4);
	rmpsc_consumer *c = cons_new(m, true), *d = cons_new(m, true);
	rmpsc_producer *p = NULL, *x = NULL;
	uint64_t v, buf[64];

	(void)state;
	assert_ret(rmpsc_mpmc_register_producer(m, &p), 0);
	for (uint64_t i = 0; i < 40; i++)
		assert_ret(rmpsc_producer_push(p, &i), 0);
	assert_ret(rmpsc_producer_deregister(p), 0);
	steal1_expect(c, 0, 15);
	/* d takes the other 24: everything claimed and completed */
	assert_ret(rmpsc_consumer_steal(d, buf, 64), 24);
	assert_int_equal(buf[0], 16);
	assert_ret(rmpsc_mpmc_len(m), 0);
	/* c still holds 15 from that ring: not reusable */
	assert_ret(rmpsc_mpmc_register_producer(m, &x), -ENOSPC);
	for (uint64_t i = 1; i < 15; i++)
		steal1_expect(c, i, (int)(15 - i));
	assert_ret(rmpsc_mpmc_register_producer(m, &x), -ENOSPC);
	assert_ret(rmpsc_consumer_steal(c, &v, 1), 1);
	assert_int_equal(v, 15);
	/* all handed out: the ring and id 0 go to the next producer */
	assert_ret(rmpsc_mpmc_register_producer(m, &x), 0);
	assert_ret(rmpsc_producer_push(x, &(uint64_t){ 7 }), 0);
	assert_ret(rmpsc_consumer_steal(d, &v, 1), 1);
	assert_int_equal(v, 7);
	assert_ret(rmpsc_producer_deregister(x), 0);
	rmpsc_mpmc_destroy(m);
}

/* Close: a consumer with pending elements gets all of them, then -EPIPE
 * (final). What this asserts of the others: the pending elements count as
 * claimed, so another consumer drains the rest of the ring and then gets
 * -EPIPE while the first still holds pending ones; is_drained stays 0
 * until the first hands its last one out (the header: "every element a
 * consumer took ahead handed out"); until the ring's rest is taken the
 * other gets elements, never -EPIPE. */
static void test_mc_ahead_close_with_pending_delivers_them_then_epipe(void **state)
{
	rmpsc_spmc *s = spmc_new(128, 4);
	rmpsc_consumer *a = cons_new(s, false);
	rmpsc_consumer *b = cons_new(s, false);
	uint64_t v, want = 16;

	(void)state;
	spmc_push_seq(s, 0, 100);
	steal1_expect(a, 0, 15);
	assert_ret(rmpsc_spmc_close(s), 0);
	assert_ret(rmpsc_spmc_push(s, &(uint64_t){ 1 }), -EPIPE);
	assert_ret(rmpsc_spmc_is_drained(s), 0);
	/* b: the other 84, in order, then -EPIPE */
	for (;;) {
		int rc = rmpsc_consumer_steal_one(b, &v);

		if (rc == -EPIPE)
			break;
		assert_ret(rc, 0);
		assert_int_equal(v, want);
		want++;
	}
	assert_int_equal(want, 100);
	assert_ret(rmpsc_consumer_pending(b), 0);
	assert_ret(rmpsc_consumer_steal_one(b, &v), -EPIPE);
	/* not drained while a still holds elements it took ahead */
	assert_ret(rmpsc_spmc_is_drained(s), 0);
	assert_ret(rmpsc_consumer_deregister(b), 0);
	/* a: still its 15 (the _timed twin returns them too), then -EPIPE */
	assert_ret(rmpsc_consumer_pending(a), 15);
	assert_ret(rmpsc_consumer_deregister(a), -EBUSY);
	assert_ret(rmpsc_consumer_steal_timed(a, &v, 1, 0, NULL), 1);
	assert_int_equal(v, 1);
	for (uint64_t i = 2; i < 15; i++)
		steal1_expect(a, i, (int)(15 - i));
	assert_ret(rmpsc_spmc_is_drained(s), 0); /* one still pending */
	steal1_expect(a, 15, 0);
	assert_ret(rmpsc_spmc_is_drained(s), 1);
	assert_ret(rmpsc_consumer_steal_one(a, &v), -EPIPE);
	assert_ret(rmpsc_consumer_steal_timed(a, &v, 1, -1, NULL), -EPIPE);
	assert_ret(rmpsc_consumer_steal_one(a, &v), -EPIPE);
	assert_ret(rmpsc_consumer_deregister(a), 0);
	rmpsc_spmc_destroy(s);
}

/* Close with pending elements, taken with consume and claim: they still
 * come first, then -EPIPE. */
static void test_mc_ahead_close_with_pending_consume_and_claim_then_epipe(void **state)
{
	rmpsc_spmc *s = spmc_new(64, 4);
	rmpsc_consumer *c = cons_new(s, false);
	struct seen sn = { 0 };
	rmpsc_claim cl;
	uint64_t v;

	(void)state;
	spmc_push_seq(s, 0, 32);
	steal1_expect(c, 0, 15);
	assert_ret(rmpsc_spmc_close(s), 0);
	assert_ret(rmpsc_consumer_consume(c, 3, seen_fn, &sn), 3);
	vals_expect(sn.v, 1, 3);
	assert_ret(rmpsc_consumer_claim(c, 5, &cl), 5);
	assert_int_equal(cl.span.pos, 4);
	assert_int_equal(span_get_u64(&cl.span, 0), 4);
	assert_ret(rmpsc_consumer_steal(c, &v, 1), 1);
	assert_int_equal(v, 9);
	/* 6 pending, 16 in the ring: steal(n) takes all 22 */
	{
		uint64_t buf[32];

		assert_ret(rmpsc_consumer_steal(c, buf, 32), 22);
		vals_expect(buf, 10, 22);
	}
	assert_ret(rmpsc_consumer_steal_one(c, &v), -EPIPE);
	{
		rmpsc_claim none;

		assert_ret(rmpsc_consumer_claim(c, 1, &none), -EPIPE);
	}
	assert_ret(rmpsc_consumer_deregister(c), -EBUSY); /* the claim */
	for (uint32_t i = 0; i < 5; i++)
		assert_int_equal(span_get_u64(&cl.span, i), 4 + i);
	assert_ret(rmpsc_consumer_complete(c, cl.token), 0);
	assert_ret(rmpsc_consumer_deregister(c), 0);
	rmpsc_spmc_destroy(s);
}

/* ---- MPMC ---------------------------------------------------------------- */

static uint64_t enc(uint32_t prod, uint64_t seq)
{
	return (uint64_t)prod << 40 | seq;
}

/* MPMC: the pending elements carry their ring's producer id (claim and
 * consume report it), and two consumers stealing one at a time from two
 * producers' rings each see every producer's elements in order; together
 * they get every element exactly once. */
static void test_mc_ahead_mpmc_pending_carry_producer_id_and_order(void **state)
{
	enum { PER = 300 };
	rmpsc_mpmc *m = mpmc_new(512, 2, 2, 4);
	rmpsc_producer *p[2] = { producer_new(m, true, 0), producer_new(m, true, 1) };
	rmpsc_consumer *c[2] = { cons_new(m, true), cons_new(m, true) };
	uint64_t last[2][2], v;
	uint32_t got[2] = { 0, 0 }, rounds = 0;
	bool saw_pending = false;
	uint8_t seen[2][PER] = { { 0 } };

	(void)state;
	for (uint64_t i = 0; i < PER; i++)
		for (uint32_t q = 0; q < 2; q++)
			assert_ret(rmpsc_producer_push(p[q], &(uint64_t){ enc(q, i) }), 0);
	/* the producer id of pending elements: claim and consume */
	assert_ret(rmpsc_consumer_steal_one(c[0], &v), 0);
	assert_int_equal(v & 0xffffffffffull, 0);
	{
		const uint32_t q = (uint32_t)(v >> 40);
		rmpsc_claim cl;
		struct seen sn = { 0 };

		assert_true(q < 2);
		assert_ret(rmpsc_consumer_pending(c[0]), 15);
		seen[q][0] = 1;
		assert_ret(rmpsc_consumer_claim(c[0], 2, &cl), 2);
		assert_int_equal(cl.producer, q);
		assert_int_equal(cl.span.pos, 1);
		assert_int_equal(span_get_u64(&cl.span, 0), enc(q, 1));
		assert_int_equal(span_get_u64(&cl.span, 1), enc(q, 2));
		seen[q][1] = seen[q][2] = 1;
		assert_ret(rmpsc_consumer_complete(c[0], cl.token), 0);
		assert_ret(rmpsc_consumer_consume(c[0], 3, seen_fn, &sn), 3);
		assert_int_equal(sn.id[0], q);
		for (uint32_t i = 0; i < 3; i++) {
			assert_int_equal(sn.v[i], enc(q, 3 + i));
			seen[q][3 + i] = 1;
		}
		for (uint32_t k = 0; k < 2; k++)
			last[k][0] = last[k][1] = UINT64_MAX;
		last[0][q] = 5;
		got[0] = 6;
	}
	/* the rest, alternating consumers, one element per call */
	for (;;) {
		int rc[2];

		for (uint32_t k = 0; k < 2; k++) {
			rc[k] = rmpsc_consumer_steal_one(c[k], &v);
			if (rc[k] == -EAGAIN)
				continue;
			assert_ret(rc[k], 0);
			{
				const uint32_t q = (uint32_t)(v >> 40);
				const uint64_t seq = v & 0xffffffffffull;

				assert_true(q < 2);
				assert_true(seq < PER);
				if (last[k][q] != UINT64_MAX)
					assert_true(seq > last[k][q]);
				last[k][q] = seq;
				assert_int_equal(seen[q][seq], 0);
				seen[q][seq] = 1;
				got[k]++;
			}
			if (rmpsc_consumer_pending(c[k]) > 0)
				saw_pending = true;
		}
		rounds++;
		if (rc[0] == -EAGAIN && rc[1] == -EAGAIN)
			break;
	}
	assert_true(saw_pending);
	assert_int_equal(got[0] + got[1], 2 * PER);
	for (uint32_t q = 0; q < 2; q++)
		for (uint32_t i = 0; i < PER; i++)
			assert_int_equal(seen[q][i], 1);
	assert_ret(rmpsc_mpmc_len(m), 0);
	for (uint32_t k = 0; k < 2; k++)
		assert_ret(rmpsc_consumer_deregister(c[k]), 0);
	for (uint32_t q = 0; q < 2; q++)
		assert_ret(rmpsc_producer_deregister(p[q]), 0);
	rmpsc_mpmc_destroy(m);
}

/* ---- steal_timed ---------------------------------------------------------- */

/* steal_timed with n == 1 is a single-element steal: it takes ahead (len
 * drops by 16, 15 pending), and with pending elements and an empty ring it
 * returns them at once, without waiting out its timeout. */
static void test_mc_ahead_steal_timed_one_takes_ahead_and_returns_pending_at_once(void **state)
{
	rmpsc_spmc *s = spmc_new(128, 4);
	rmpsc_consumer *a = cons_new(s, false);
	rmpsc_consumer *b = cons_new(s, false);
	uint64_t v, buf[16];

	(void)state;
	spmc_push_seq(s, 0, 32);
	assert_ret(rmpsc_consumer_steal_timed(a, &v, 1, 1000000000ll, NULL), 1);
	assert_int_equal(v, 0);
	assert_ret(rmpsc_consumer_pending(a), 15);
	assert_ret(rmpsc_spmc_len(s), 16);
	/* b empties the ring (steal(n) with nothing pending: no take-ahead) */
	assert_ret(rmpsc_consumer_steal(b, buf, 16), 16);
	vals_expect(buf, 16, 16);
	assert_ret(rmpsc_consumer_pending(b), 0);
	assert_ret(rmpsc_spmc_len(s), 0);
	assert_ret(rmpsc_consumer_steal_timed(b, &v, 1, 0, NULL), -ETIMEDOUT);
	/* a: 15 pending, each returned at once even with a 30 s timeout */
	{
		const int64_t t0 = now_ns();

		for (uint64_t i = 1; i < 16; i++) {
			assert_ret(rmpsc_consumer_steal_timed(a, &v, 1, 30000000000ll, NULL), 1);
			assert_int_equal(v, i);
			assert_ret(rmpsc_consumer_pending(a), (int)(15 - i));
		}
		assert_true(now_ns() - t0 < 10000000000ll);
	}
	assert_ret(rmpsc_consumer_steal_timed(a, &v, 1, 0, NULL), -ETIMEDOUT);
	/* timeout 0 with a backlog: one try, which takes ahead */
	spmc_push_seq(s, 32, 40);
	assert_ret(rmpsc_consumer_steal_timed(a, &v, 1, 0, NULL), 1);
	assert_int_equal(v, 32);
	assert_ret(rmpsc_consumer_pending(a), 15);
	assert_ret(rmpsc_consumer_steal_timed(a, &v, 1, 0, NULL), 1);
	assert_int_equal(v, 33);
	for (uint64_t i = 34; i < 72; i++) {
		assert_ret(rmpsc_consumer_steal_one(a, &v), 0);
		assert_int_equal(v, i);
	}
	assert_ret(rmpsc_consumer_deregister(a), 0);
	assert_ret(rmpsc_consumer_deregister(b), 0);
	rmpsc_spmc_destroy(s);
}

/* ---- threads -------------------------------------------------------------- */

enum {
	T_MAX_PROD = 4,
	T_MAX_CONS = 4,
	T_CAP = 256,
};

struct run;

struct cons_arg {
	struct run *r;
	uint32_t idx;
};

struct run {
	bool mpmc;
	uint32_t nprod, ncons;
	uint64_t per; /* elements per producer */
	rmpsc_spmc *s;
	rmpsc_mpmc *m;
	rmpsc_producer *p[T_MAX_PROD];
	atomic_int stop;
	atomic_int failed;
	atomic_uint prod_done;
	atomic_ullong taken;
	atomic_ullong reregs;
	atomic_ullong ahead_seen;
	char msg[256];
	/* merged by each consumer at its end, under lock */
	pthread_mutex_t lock;
	uint64_t count[T_MAX_PROD];
	unsigned __int128 sum[T_MAX_PROD], sumsq[T_MAX_PROD];
	struct cons_arg ca[T_MAX_CONS];
};

static void run_after(void *arg, int first)
{
	struct run *r = arg;

	(void)first;
	atomic_store(&r->stop, 1);
}

static void *prod_thread(void *arg)
{
	struct cons_arg *a = arg;
	struct run *r = a->r;

	for (uint64_t i = 0; i < r->per && !atomic_load_explicit(&r->stop, memory_order_relaxed);) {
		const uint64_t v = enc(a->idx, i);
		const int rc = r->mpmc ? rmpsc_producer_push(r->p[a->idx], &v)
				       : rmpsc_spmc_push(r->s, &v);

		if (rc == 0) {
			i++;
		} else if (rc == -EAGAIN) {
			sched_yield();
		} else {
			FAIL_RECORD(r, run_after, "producer %u: push = %d", a->idx, rc);
			break;
		}
	}
	atomic_fetch_add(&r->prod_done, 1);
	return NULL;
}

static rmpsc_consumer *t_register(struct run *r)
{
	rmpsc_consumer *c = NULL;
	const int rc = r->mpmc ? rmpsc_mpmc_register_consumer(r->m, &c)
			       : rmpsc_spmc_register_consumer(r->s, &c);

	/* -EPIPE: closed and drained, this consumer's end as much as a steal's
	 * -EPIPE would have been (a re-registration can meet it). */
	if (rc < 0 && rc != -EPIPE)
		FAIL_RECORD(r, run_after, "register_consumer = %d", rc);
	return rc < 0 ? NULL : c;
}

struct tally {
	uint64_t last[T_MAX_PROD];
	uint64_t count[T_MAX_PROD];
	unsigned __int128 sum[T_MAX_PROD], sumsq[T_MAX_PROD];
};

/* One element arrived at consumer @k: in order for its producer. */
static bool t_check(struct run *r, uint32_t k, struct tally *t, uint64_t v)
{
	const uint32_t q = (uint32_t)(v >> 40);
	const uint64_t seq = v & 0xffffffffffull;

	if (q >= r->nprod || seq >= r->per) {
		FAIL_RECORD(r, run_after, "consumer %u: bad element %#llx", k,
			    (unsigned long long)v);
		return false;
	}
	if (t->last[q] != UINT64_MAX && seq <= t->last[q]) {
		FAIL_RECORD(r, run_after, "consumer %u: producer %u seq %llu after %llu", k, q,
			    (unsigned long long)seq, (unsigned long long)t->last[q]);
		return false;
	}
	t->last[q] = seq;
	t->count[q]++;
	t->sum[q] += seq;
	t->sumsq[q] += (unsigned __int128)seq * seq;
	atomic_fetch_add_explicit(&r->taken, 1, memory_order_relaxed);
	return true;
}

static void *cons_thread(void *arg)
{
	struct cons_arg *a = arg;
	struct run *r = a->r;
	struct tally t;
	uint64_t rng = (stress_seed() ^ (0x9e3779b97f4a7c15ull * (a->idx + 1))) | 1;
	rmpsc_consumer *c = t_register(r);
	uint64_t ahead = 0;

	memset(&t, 0, sizeof t);
	for (uint32_t q = 0; q < T_MAX_PROD; q++)
		t.last[q] = UINT64_MAX;
	while (c && !atomic_load_explicit(&r->stop, memory_order_relaxed)) {
		const uint64_t x = xs_next(&rng);
		uint64_t v;
		int rc, pend;

		if ((x & 7) == 0) {
			rc = rmpsc_consumer_steal_timed(c, &v, 1, 1000000, NULL);
			if (rc == 1)
				rc = 0;
			else if (rc == -ETIMEDOUT)
				rc = -EAGAIN;
		} else {
			rc = rmpsc_consumer_steal_one(c, &v);
		}
		if (rc == -EPIPE) {
			pend = rmpsc_consumer_pending(c);
			if (pend != 0)
				FAIL_RECORD(r, run_after, "consumer %u: -EPIPE with %d pending",
					    a->idx, pend);
			break;
		}
		if (rc == -EAGAIN) {
			sched_yield();
			continue;
		}
		if (rc != 0) {
			FAIL_RECORD(r, run_after, "consumer %u: steal = %d", a->idx, rc);
			break;
		}
		if (!t_check(r, a->idx, &t, v))
			break;
		pend = rmpsc_consumer_pending(c);
		if (pend < 0 || pend > 15) {
			FAIL_RECORD(r, run_after, "consumer %u: pending = %d", a->idx, pend);
			break;
		}
		if (pend)
			ahead++;
		/* now and then: drain the pending ones, deregister, register */
		if (((x >> 8) & 511) == 0) {
			int drc = rmpsc_consumer_deregister(c);

			if (pend && drc != -EBUSY) {
				FAIL_RECORD(r, run_after, "consumer %u: deregister with %d pending = %d",
					    a->idx, pend, drc);
				break;
			}
			while (drc == -EBUSY && rmpsc_consumer_pending(c) > 0) {
				rc = rmpsc_consumer_steal_one(c, &v);
				if (rc != 0) {
					FAIL_RECORD(r, run_after,
						    "consumer %u: steal_one of pending = %d",
						    a->idx, rc);
					c = NULL;
					break;
				}
				if (!t_check(r, a->idx, &t, v)) {
					c = NULL;
					break;
				}
			}
			if (!c)
				break;
			if (drc == -EBUSY)
				drc = rmpsc_consumer_deregister(c);
			if (drc != 0) {
				FAIL_RECORD(r, run_after, "consumer %u: deregister = %d", a->idx,
					    drc);
				break;
			}
			atomic_fetch_add_explicit(&r->reregs, 1, memory_order_relaxed);
			c = t_register(r);
		}
	}
	if (c && !atomic_load(&r->failed)) {
		const int drc = rmpsc_consumer_deregister(c);

		if (drc != 0)
			FAIL_RECORD(r, run_after, "consumer %u: final deregister = %d", a->idx, drc);
	}
	atomic_fetch_add_explicit(&r->ahead_seen, ahead, memory_order_relaxed);
	pthread_mutex_lock(&r->lock);
	for (uint32_t q = 0; q < T_MAX_PROD; q++) {
		r->count[q] += t.count[q];
		r->sum[q] += t.sum[q];
		r->sumsq[q] += t.sumsq[q];
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

static void run_threads(bool mpmc, uint32_t nprod, uint32_t ncons, uint64_t total)
{
	struct run *r = calloc(1, sizeof *r);
	pthread_t pt[T_MAX_PROD], ct[T_MAX_CONS];
	struct cons_arg pa[T_MAX_PROD];
	const int64_t t0 = now_ns(), limit = 120000000000ll;
	bool timed_out = false;

	assert_non_null(r);
	r->mpmc = mpmc;
	r->nprod = nprod;
	r->ncons = ncons;
	r->per = total / nprod;
	pthread_mutex_init(&r->lock, NULL);
	if (mpmc) {
		r->m = mpmc_new(T_CAP, nprod, nprod, 2 * T_MAX_CONS);
		for (uint32_t q = 0; q < nprod; q++)
			r->p[q] = producer_new(r->m, true, (int)q);
	} else {
		r->s = spmc_new(T_CAP, 2 * T_MAX_CONS);
	}
	for (uint32_t k = 0; k < ncons; k++) {
		r->ca[k] = (struct cons_arg){ r, k };
		assert_int_equal(pthread_create(&ct[k], NULL, cons_thread, &r->ca[k]), 0);
	}
	for (uint32_t q = 0; q < nprod; q++) {
		pa[q] = (struct cons_arg){ r, q };
		assert_int_equal(pthread_create(&pt[q], NULL, prod_thread, &pa[q]), 0);
	}
	/* producers done (or a failure, or the time limit), then close */
	while (atomic_load(&r->prod_done) < nprod) {
		if (now_ns() - t0 > limit && !timed_out) {
			timed_out = true;
			FAIL_RECORD(r, run_after, "time limit: producers not done, %llu taken",
				    (unsigned long long)atomic_load(&r->taken));
		}
		sleep_ns(1000000);
	}
	for (uint32_t q = 0; q < nprod; q++)
		pthread_join(pt[q], NULL);
	if (mpmc)
		assert_ret(rmpsc_mpmc_close(r->m), 0);
	else
		assert_ret(rmpsc_spmc_close(r->s), 0);
	/* consumers end at -EPIPE; a stall sets stop */
	{
		uint64_t last = UINT64_MAX;
		int64_t since = now_ns();

		for (;;) {
			const uint64_t tk = atomic_load(&r->taken);
			bool all = tk == (uint64_t)nprod * r->per;

			if (all || atomic_load(&r->stop))
				break;
			if (tk != last) {
				last = tk;
				since = now_ns();
			} else if (now_ns() - since > 20000000000ll) {
				FAIL_RECORD(r, run_after, "stall: %llu of %llu taken",
					    (unsigned long long)tk,
					    (unsigned long long)((uint64_t)nprod * r->per));
				break;
			}
			sleep_ns(1000000);
		}
	}
	for (uint32_t k = 0; k < ncons; k++)
		pthread_join(ct[k], NULL);
	if (atomic_load(&r->failed)) {
		print_error("%s\n", r->msg);
		fail();
	}
	for (uint32_t q = 0; q < nprod; q++) {
		const uint64_t n = r->per;
		const unsigned __int128 want_sum = (unsigned __int128)n * (n - 1) / 2;
		const unsigned __int128 want_sq =
			(unsigned __int128)(n - 1) * n * (2 * n - 1) / 6;

		assert_int_equal(r->count[q], n);
		assert_true(r->sum[q] == want_sum);
		assert_true(r->sumsq[q] == want_sq);
	}
	if (mpmc) {
		assert_ret(rmpsc_mpmc_is_drained(r->m), 1);
		assert_ret(rmpsc_mpmc_len(r->m), 0);
	} else {
		assert_ret(rmpsc_spmc_is_drained(r->s), 1);
		assert_ret(rmpsc_spmc_len(r->s), 0);
	}
	print_message("  %s %ux%u: %llu elements, %llu re-registrations, %llu steals left "
		      "some pending, %.2f s (" STRESS_BUILD ")\n",
		      mpmc ? "MPMC" : "SPMC", nprod, ncons,
		      (unsigned long long)((uint64_t)nprod * r->per),
		      (unsigned long long)atomic_load(&r->reregs),
		      (unsigned long long)atomic_load(&r->ahead_seen),
		      (double)(now_ns() - t0) / 1e9);
	if (mpmc) {
		for (uint32_t q = 0; q < nprod; q++)
			assert_ret(rmpsc_producer_deregister(r->p[q]), 0);
		rmpsc_mpmc_destroy(r->m);
	} else {
		rmpsc_spmc_destroy(r->s);
	}
	pthread_mutex_destroy(&r->lock);
	free(r);
}

#define THREAD_TOTAL STRESS_SCALE(500000ull, 250000ull, 200000ull)

/* 1 producer x 4 consumers, single-element steals only (steal_one and
 * steal_timed n = 1), random deregister / re-register after draining the
 * pending elements: per consumer the sequence is increasing, and over all
 * consumers every element arrives exactly once (count, sum, sum of
 * squares). */
static void test_mc_ahead_threads_spmc_1x4_lose_nothing_keep_order(void **state)
{
	(void)state;
	run_threads(false, 1, 4, THREAD_TOTAL);
}

/* The same with 4 MPMC producers and 4 consumers: per producer order per
 * consumer, every element exactly once. */
static void test_mc_ahead_threads_mpmc_4x4_lose_nothing_keep_order(void **state)
{
	(void)state;
	run_threads(true, 4, 4, THREAD_TOTAL);
}

int main(void)
{
#define T(f) cmocka_unit_test(f)
	const struct CMUnitTest tests[] = {
		T(test_mc_ahead_below_threshold_takes_exactly_one),
		T(test_mc_ahead_backlog_takes_sixteen_returns_them_in_order),
		TEST_PARAM(test_mc_ahead_elem_size_16_takes_16,
			   test_mc_ahead_elem_size_sets_k_and_bytes_are_exact, &esz16),
		TEST_PARAM(test_mc_ahead_elem_size_24_takes_10,
			   test_mc_ahead_elem_size_sets_k_and_bytes_are_exact, &esz24),
		TEST_PARAM(test_mc_ahead_elem_size_100_takes_2,
			   test_mc_ahead_elem_size_sets_k_and_bytes_are_exact, &esz100),
		TEST_PARAM(test_mc_ahead_elem_size_200_never_takes_ahead,
			   test_mc_ahead_elem_size_sets_k_and_bytes_are_exact, &esz200),
		T(test_mc_ahead_steal_n_returns_pending_then_continues_into_ring),
		T(test_mc_ahead_consume_hands_only_pending_with_producer_id),
		T(test_mc_ahead_consume_handler_steal_one_gets_next_in_order),
		T(test_mc_ahead_consume_ring_handler_steal_one_takes_after_run),
		T(test_mc_ahead_claim_of_pending_blocks_refill_until_complete),
		T(test_mc_ahead_deregister_with_pending_returns_ebusy_until_taken),
		T(test_mc_ahead_deregister_from_handler_on_pending_returns_ebusy),
		T(test_mc_ahead_pending_are_aligned_as_ring_slots),
		T(test_mc_ahead_pending_block_ring_reuse_until_handed_out),
		T(test_mc_ahead_close_with_pending_delivers_them_then_epipe),
		T(test_mc_ahead_close_with_pending_consume_and_claim_then_epipe),
		T(test_mc_ahead_mpmc_pending_carry_producer_id_and_order),
		T(test_mc_ahead_steal_timed_one_takes_ahead_and_returns_pending_at_once),
		T(test_mc_ahead_threads_spmc_1x4_lose_nothing_keep_order),
		T(test_mc_ahead_threads_mpmc_4x4_lose_nothing_keep_order),
	};
#undef T

	return cmocka_run_group_tests_name("test_mc_ahead", tests, NULL, NULL);
}
