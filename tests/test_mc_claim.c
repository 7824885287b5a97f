/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the zero-copy claims of the SPMC and MPMC channels
 * (ringmpsc/channel.h, "Zero-copy claims"): rmpsc_consumer_claim,
 * rmpsc_consumer_claim_timed and rmpsc_consumer_complete, the
 * RMPSC_CONSUMER_CLAIMS_MAX bound, rmpsc_consumer_deregister refusing a
 * consumer that holds claims, claims across close, and the MPMC ring
 * reuse that waits for the claims on a left producer's ring.
 *
 * Each case reads one promise of the header as a stranger would and tries
 * to break it: the run and its token, the producer id, the two segments of
 * a run across the end of the buffer, completion in any order (a run goes
 * back to the producer only once every run before it is complete), tokens
 * good once and only on their own consumer, the elements of a held claim
 * never overwritten, and the return codes with out zeroed on failure.
 *
 * Public API only. The last case runs 4 producer and 4 consumer threads on
 * small rings, each consumer holding up to 8 claims and completing them in
 * a pseudo-random order; it checks per-producer order, that a claim's
 * elements still hold their values when it is completed, and that every
 * element arrives exactly once. No timing is asserted anywhere.
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

#define STRESS_SEED 0x5eedc1a1f00d0001ull /* RMPSC_STRESS_SEED overrides it */
#include "test_util.h"

#include "ringmpsc/channel.h"
#include "ringmpsc/ring.h"
#include "ringmpsc/wait.h"

#include "test_mc_util.h"

_Static_assert(sizeof(rmpsc_claim) == sizeof(rmpsc_span) + 16, "claim: span, token, id, pad");

/* ---- helpers ------------------------------------------------------------ */


/* Push until the ring refuses: the count pushed (values first, first+1...). */
static uint32_t spmc_fill(rmpsc_spmc *s, uint64_t first, uint32_t most)
{
	uint32_t n = 0;
	int rc;

	while (n < most && (rc = rmpsc_spmc_push(s, &(uint64_t){ first + n })) == 0)
		n++;
	if (n < most)
		assert_ret(rc, -EAGAIN);
	return n;
}

/* Every byte of @cl is zero. */
static void claim_expect_zeroed(const rmpsc_claim *cl)
{
	static const rmpsc_claim zero;

	assert_memory_equal(cl, &zero, sizeof zero);
}

/* A claim pre-filled with garbage, so that "zeroed" and "written" show. */
static void claim_garbage(rmpsc_claim *cl)
{
	memset(cl, 0xa5, sizeof *cl);
}

/*
 * A successful claim of @k elements of @esz bytes: one or two segments
 * that add up to k, byte lengths that match, nothing in a second segment
 * when there is none, the pad fields zero.
 */
static void claim_check_shape(const rmpsc_claim *cl, int k, uint32_t esz)
{
	const rmpsc_span *s = &cl->span;

	assert_true(k > 0);
	assert_true(s->nseg == 1 || s->nseg == 2);
	assert_true(s->count[0] > 0);
	assert_int_equal(s->count[0] + s->count[1], (uint32_t)k);
	assert_non_null(s->iov[0].iov_base);
	assert_int_equal(s->iov[0].iov_len, (size_t)s->count[0] * esz);
	if (s->nseg == 1) {
		assert_int_equal(s->count[1], 0);
		assert_int_equal(s->iov[1].iov_len, 0);
	} else {
		assert_true(s->count[1] > 0);
		assert_non_null(s->iov[1].iov_base);
		assert_int_equal(s->iov[1].iov_len, (size_t)s->count[1] * esz);
	}
	assert_int_equal(s->_pad0, 0);
	assert_int_equal(cl->_pad0, 0);
}

/* Claim on @c: exactly @want elements, 8 bytes each, values first... */
static rmpsc_claim claim_expect(rmpsc_consumer *c, uint32_t n, int want, uint64_t first)
{
	rmpsc_claim cl;

	claim_garbage(&cl);
	assert_ret(rmpsc_consumer_claim(c, n, &cl), want);
	claim_check_shape(&cl, want, 8);
	for (int i = 0; i < want; i++)
		assert_int_equal(span_get_u64(&cl.span, (uint32_t)i), first + (uint64_t)i);
	return cl;
}

/* A failing claim on @c: code @want and out zeroed. */
static void claim_fails(rmpsc_consumer *c, uint32_t n, int want)
{
	rmpsc_claim cl;

	claim_garbage(&cl);
	assert_ret(rmpsc_consumer_claim(c, n, &cl), want);
	claim_expect_zeroed(&cl);
}

/* The values of a held claim are still first, first + 1, ... */
static void claim_values_expect(const rmpsc_claim *cl, uint64_t first)
{
	const uint32_t k = cl->span.count[0] + cl->span.count[1];

	for (uint32_t i = 0; i < k; i++)
		assert_int_equal(span_get_u64(&cl->span, i), first + i);
}

/* ---- argument checks ---------------------------------------------------- */

/* claim/claim_timed: out NULL is -EINVAL and claims nothing (the element
 * stays for the next claim); a NULL consumer is -EBADF with out zeroed. */
static void test_mc_claim_with_null_out_or_consumer_returns_einval_or_ebadf(void **state)
{
	rmpsc_spmc *s = spmc_new(8, 4);
	rmpsc_consumer *c = cons_new(s, false);
	const rmpsc_wait w = block_now();
	rmpsc_claim cl;

	(void)state;
	seq_put(spmc_put1, s, 1, 2);
	assert_ret(rmpsc_consumer_claim(c, 1, NULL), -EINVAL);
	assert_ret(rmpsc_consumer_claim(c, UINT32_MAX, NULL), -EINVAL);
	assert_ret(rmpsc_consumer_claim_timed(c, 1, NULL, 0, NULL), -EINVAL);
	assert_ret(rmpsc_consumer_claim_timed(c, 1, NULL, -1, &w), -EINVAL);
	assert_ret(rmpsc_spmc_len(s), 2);

	claim_garbage(&cl);
	assert_ret(rmpsc_consumer_claim(NULL, 1, &cl), -EBADF);
	claim_expect_zeroed(&cl);
	claim_garbage(&cl);
	assert_ret(rmpsc_consumer_claim_timed(NULL, 1, &cl, 0, NULL), -EBADF);
	claim_expect_zeroed(&cl);
	claim_garbage(&cl);
	assert_ret(rmpsc_consumer_claim_timed(NULL, 1, &cl, -1, &w), -EBADF);
	claim_expect_zeroed(&cl);
	assert_ret(rmpsc_consumer_complete(NULL, 0), -EBADF);
	assert_ret(rmpsc_consumer_complete(NULL, ~0ull), -EBADF);
	assert_ret(rmpsc_spmc_len(s), 2);

	/* nothing was claimed: the first claim gets element 1, and the
	 * consumer holds nothing once it is completed */
	cl = claim_expect(c, 8, 2, 1);
	assert_ret(rmpsc_consumer_complete(c, cl.token), 0);
	assert_ret(rmpsc_consumer_deregister(c), 0);
	rmpsc_spmc_destroy(s);
}

/* n == 0 returns 0 and claims nothing: no element leaves the ring, no
 * token is handed out (completing whatever out holds is refused), and any
 * number of them leave the consumer holding no claim. */
static void test_mc_claim_with_zero_n_returns_zero_and_claims_nothing(void **state)
{
	rmpsc_spmc *s = spmc_new(8, 4);
	rmpsc_consumer *c = cons_new(s, false);
	rmpsc_claim cl;

	(void)state;
	seq_put(spmc_put1, s, 1, 3);
	for (int i = 0; i < 2 * RMPSC_CONSUMER_CLAIMS_MAX; i++) {
		claim_garbage(&cl);
		assert_ret(rmpsc_consumer_claim(c, 0, &cl), 0);
		assert_int_equal(cl.span.nseg, 0);
		assert_int_equal(cl.span.count[0] + cl.span.count[1], 0);
		assert_ret(rmpsc_consumer_complete(c, cl.token), -EINVAL);
		claim_garbage(&cl);
		assert_ret(rmpsc_consumer_claim_timed(c, 0, &cl, 0, NULL), 0);
		assert_int_equal(cl.span.nseg, 0);
		assert_ret(rmpsc_consumer_complete(c, cl.token), -EINVAL);
	}
	assert_ret(rmpsc_spmc_len(s), 3);
	/* no claim outstanding: deregister is allowed */
	assert_ret(rmpsc_consumer_deregister(c), 0);
	c = cons_new(s, false);
	cl = claim_expect(c, 8, 3, 1);
	assert_ret(rmpsc_consumer_complete(c, cl.token), 0);
	rmpsc_spmc_destroy(s);
}

/* Nothing published: -EAGAIN with out zeroed, on an SPMC channel and on
 * MPMC channels with no ring, free rings, or empty producers. */
static void test_mc_claim_when_empty_returns_eagain_and_zeroes_out(void **state)
{
	rmpsc_spmc *s = spmc_new(8, 4);
	rmpsc_mpmc *m0 = mpmc_new(8, 0, 4, 4);
	rmpsc_mpmc *m4 = mpmc_new(8, 4, 8, 4);
	rmpsc_mpmc *mp = mpmc_new(8, 0, 4, 4);
	rmpsc_consumer *all[4];

	(void)state;
	all[0] = cons_new(s, false);
	all[1] = cons_new(m0, true);
	all[2] = cons_new(m4, true);
	all[3] = cons_new(mp, true);
	(void)producer_new(mp, true, 0);
	(void)producer_new(mp, true, 1);
	for (int i = 0; i < 4; i++) {
		rmpsc_claim cl;

		claim_fails(all[i], 1, -EAGAIN);
		claim_fails(all[i], UINT32_MAX, -EAGAIN);
		claim_garbage(&cl);
		assert_ret(rmpsc_consumer_claim_timed(all[i], 1, &cl, 0, NULL), -ETIMEDOUT);
		claim_expect_zeroed(&cl);
		/* a failed claim holds nothing */
		assert_ret(rmpsc_consumer_deregister(all[i]), 0);
	}
	rmpsc_spmc_destroy(s);
	rmpsc_mpmc_destroy(m0);
	rmpsc_mpmc_destroy(m4);
	rmpsc_mpmc_destroy(mp);
}

/* ---- SPMC: the run in place ---------------------------------------------- */

/* A claim hands out the published elements in place, in order, producer
 * id 0, span.pos the ring position of the first, up to n of them; the
 * next claim starts where the last one ended; a claimed element is no
 * longer counted by rmpsc_spmc_len. */
static void test_mc_claim_in_spmc_returns_elements_in_place_with_pos_and_id_zero(void **state)
{
	rmpsc_spmc *s = spmc_new(16, 4);
	rmpsc_consumer *c = cons_new(s, false), *d = cons_new(s, false);
	rmpsc_claim a, b, e;

	(void)state;
	seq_put(spmc_put1, s, 100, 10);
	a = claim_expect(c, 3, 3, 100);
	assert_int_equal(a.producer, 0);
	assert_int_equal(a.span.pos, 0);
	assert_int_equal(a.span.nseg, 1);
	assert_ret(rmpsc_spmc_len(s), 7);
	/* another consumer gets the next run, not the same one */
	b = claim_expect(d, 2, 2, 103);
	assert_int_equal(b.producer, 0);
	assert_int_equal(b.span.pos, 3);
	/* in place: b's run is the slots right after a's */
	assert_ptr_equal((const unsigned char *)a.span.iov[0].iov_base + 3 * 8,
			 b.span.iov[0].iov_base);
	assert_ret(rmpsc_spmc_len(s), 5);
	/* n larger than what is there: all of it */
	e = claim_expect(c, UINT32_MAX, 5, 105);
	assert_int_equal(e.span.pos, 5);
	assert_int_equal(e.producer, 0);
	assert_ret(rmpsc_spmc_len(s), 0);
	claim_fails(c, 1, -EAGAIN);
	claim_fails(d, 1, -EAGAIN);
	/* the tokens differ: each names its own run */
	assert_true(a.token != b.token && a.token != e.token && b.token != e.token);
	assert_ret(rmpsc_consumer_complete(c, e.token), 0);
	assert_ret(rmpsc_consumer_complete(d, b.token), 0);
	assert_ret(rmpsc_consumer_complete(c, a.token), 0);
	/* all 16 slots are back */
	assert_int_equal(spmc_fill(s, 0, 17), 16);
	rmpsc_spmc_destroy(s);
}

/* A run that crosses the end of the buffer comes as two segments: the
 * slots up to the end, then the slots from the start, with the right
 * counts, lengths and contents; completing it gives every slot back. */
static void test_mc_claim_across_the_buffer_end_returns_two_segments(void **state)
{
	rmpsc_spmc *s = spmc_new(8, 4);
	rmpsc_consumer *c = cons_new(s, false);
	uint64_t got[8];
	rmpsc_claim cl;

	(void)state;
	seq_put(spmc_put1, s, 0, 6);
	assert_ret(rmpsc_consumer_steal(c, got, 6), 6);
	seq_put(spmc_put1, s, 6, 6); /* positions 6..11: slots 6, 7, then 0..3 */
	cl = claim_expect(c, 8, 6, 6);
	assert_int_equal(cl.span.pos, 6);
	assert_int_equal(cl.span.nseg, 2);
	assert_int_equal(cl.span.count[0], 2);
	assert_int_equal(cl.span.count[1], 4);
	assert_int_equal(cl.span.iov[0].iov_len, 16);
	assert_int_equal(cl.span.iov[1].iov_len, 32);
	/* the second segment is slot 0, 6 slots before the first (slot 6) */
	assert_ptr_equal((const unsigned char *)cl.span.iov[1].iov_base + 6 * 8,
			 (const unsigned char *)cl.span.iov[0].iov_base);
	assert_int_equal(((const uint64_t *)cl.span.iov[0].iov_base)[0], 6);
	assert_int_equal(((const uint64_t *)cl.span.iov[0].iov_base)[1], 7);
	for (uint32_t i = 0; i < 4; i++)
		assert_int_equal(((const uint64_t *)cl.span.iov[1].iov_base)[i], 8 + i);
	/* held: only the 2 slots after it are free */
	assert_int_equal(spmc_fill(s, 12, 8), 2);
	assert_ret(rmpsc_consumer_complete(c, cl.token), 0);
	assert_int_equal(spmc_fill(s, 14, 8), 6);
	/* and the next claim wraps too: positions 12..19 */
	cl = claim_expect(c, 8, 8, 12);
	assert_int_equal(cl.span.pos, 12);
	assert_int_equal(cl.span.nseg, 2);
	assert_int_equal(cl.span.count[0], 4);
	assert_int_equal(cl.span.count[1], 4);
	assert_ret(rmpsc_consumer_complete(c, cl.token), 0);
	rmpsc_spmc_destroy(s);
}

/* Elements of an odd size: segment lengths are count * elem_size, and
 * the bytes read in place across the wrap are the bytes pushed. */
static void test_mc_claim_with_odd_elem_size_reads_bytes_in_place_across_wrap(void **state)
{
	enum { ESZ = 24 };
	rmpsc_spmc *s = spmc_new_esz(4, ESZ, 4);
	rmpsc_consumer *c = cons_new(s, false);
	unsigned char in[6][ESZ], out[4 * ESZ];
	rmpsc_claim cl;

	(void)state;
	for (int i = 0; i < 6; i++)
		for (int j = 0; j < ESZ; j++)
			in[i][j] = (unsigned char)(i * 31 + j * 7 + 1);
	assert_ret(rmpsc_spmc_push_n(s, in[0], 3), 3);
	assert_ret(rmpsc_consumer_steal(c, out, 3), 3);
	assert_memory_equal(out, in[0], 3 * ESZ);
	assert_ret(rmpsc_spmc_push_n(s, in[3], 3), 3); /* positions 3..5: slot 3, 0, 1 */
	claim_garbage(&cl);
	assert_ret(rmpsc_consumer_claim(c, 4, &cl), 3);
	claim_check_shape(&cl, 3, ESZ);
	assert_int_equal(cl.span.pos, 3);
	assert_int_equal(cl.span.nseg, 2);
	assert_int_equal(cl.span.count[0], 1);
	assert_int_equal(cl.span.count[1], 2);
	assert_memory_equal(cl.span.iov[0].iov_base, in[3], ESZ);
	assert_memory_equal(cl.span.iov[1].iov_base, in[4], 2 * ESZ);
	assert_ret(rmpsc_consumer_complete(c, cl.token), 0);
	rmpsc_spmc_destroy(s);
}

/* Claims and the copying calls share one stream: a steal or consume of
 * another consumer gets the elements after those claimed, never the
 * claimed ones, and its completion does not give back the held run's
 * slots. */
static void test_mc_claim_and_steal_on_spmc_split_the_stream_without_overlap(void **state)
{
	rmpsc_spmc *s = spmc_new(8, 4);
	rmpsc_consumer *a = cons_new(s, false), *b = cons_new(s, false);
	rmpsc_claim cl;
	uint64_t got[8];

	(void)state;
	seq_put(spmc_put1, s, 1, 8);
	cl = claim_expect(a, 2, 2, 1);
	assert_ret(rmpsc_consumer_steal(b, got, 3), 3);
	vals_expect(got, 3, 3);
	/* b's steal completed, but a's run before it is out: still full */
	assert_ret(rmpsc_spmc_push(s, &(uint64_t){ 99 }), -EAGAIN);
	claim_values_expect(&cl, 1);
	{
		/* b claims the rest (6, 7, 8) and completes it: still full */
		const rmpsc_claim rest = claim_expect(b, 8, 3, 6);

		assert_int_equal(rest.span.pos, 5);
		assert_ret(rmpsc_consumer_complete(b, rest.token), 0);
	}
	assert_ret(rmpsc_spmc_push(s, &(uint64_t){ 99 }), -EAGAIN);
	claim_fails(b, 8, -EAGAIN);
	/* a's completion gives back all 8 */
	assert_ret(rmpsc_consumer_complete(a, cl.token), 0);
	assert_int_equal(spmc_fill(s, 9, 9), 8);
	seq_take(steal1, a, 9, 8);
	rmpsc_spmc_destroy(s);
}

/* ---- complete: tokens ------------------------------------------------------ */

/* A token is good once: the first complete returns 0 and gives the slot
 * back, the same token again is -EINVAL and gives back nothing more (the
 * next run, still held, keeps its slot). */
static void test_mc_complete_of_the_same_token_twice_returns_einval(void **state)
{
	rmpsc_spmc *s = spmc_new(4, 4);
	rmpsc_consumer *c = cons_new(s, false);
	rmpsc_claim a, b;

	(void)state;
	seq_put(spmc_put1, s, 1, 4);
	a = claim_expect(c, 1, 1, 1);
	b = claim_expect(c, 1, 1, 2);
	assert_ret(rmpsc_consumer_complete(c, a.token), 0);
	assert_ret(rmpsc_consumer_complete(c, a.token), -EINVAL);
	/* a's slot came back, b's did not */
	assert_int_equal(spmc_fill(s, 5, 4), 1);
	assert_ret(rmpsc_consumer_complete(c, a.token), -EINVAL);
	assert_ret(rmpsc_spmc_push(s, &(uint64_t){ 99 }), -EAGAIN);
	claim_values_expect(&b, 2);
	assert_ret(rmpsc_consumer_complete(c, b.token), 0);
	assert_ret(rmpsc_consumer_complete(c, b.token), -EINVAL);
	assert_int_equal(spmc_fill(s, 6, 4), 1);
	seq_take(steal1, c, 3, 4);
	/* nothing outstanding any more */
	assert_ret(rmpsc_consumer_deregister(c), 0);
	rmpsc_spmc_destroy(s);
}

/* A token is good only on the consumer that claimed it: another consumer
 * of the same channel, or of another channel, gets -EINVAL, nothing is
 * released, and the token still completes on its owner afterwards. */
static void test_mc_complete_with_another_consumers_token_returns_einval_and_keeps_it(
	void **state)
{
	rmpsc_spmc *s = spmc_new(4, 4), *s2 = spmc_new(4, 4);
	rmpsc_mpmc *m = mpmc_new(4, 1, 2, 4);
	rmpsc_producer *p = producer_new(m, true, 0);
	rmpsc_consumer *a = cons_new(s, false), *b = cons_new(s, false);
	rmpsc_consumer *x = cons_new(s2, false), *y = cons_new(m, true);
	rmpsc_claim ca, cb, cx, cy;

	(void)state;
	seq_put(spmc_put1, s, 1, 4);
	seq_put(spmc_put1, s2, 1, 4);
	seq_put(producer_put1, p, 1, 4);
	ca = claim_expect(a, 1, 1, 1);
	cb = claim_expect(b, 1, 1, 2);
	cx = claim_expect(x, 1, 1, 1); /* position 0 of another SPMC channel */
	cy = claim_expect(y, 1, 1, 1); /* position 0 of an MPMC ring */
	assert_int_equal(cx.span.pos, ca.span.pos);
	assert_int_equal(cy.span.pos, ca.span.pos);
	for (int round = 0; round < 2; round++) {
		assert_ret(rmpsc_consumer_complete(b, ca.token), -EINVAL);
		assert_ret(rmpsc_consumer_complete(a, cb.token), -EINVAL);
		assert_ret(rmpsc_consumer_complete(x, ca.token), -EINVAL);
		assert_ret(rmpsc_consumer_complete(y, ca.token), -EINVAL);
		assert_ret(rmpsc_consumer_complete(a, cx.token), -EINVAL);
		assert_ret(rmpsc_consumer_complete(a, cy.token), -EINVAL);
		assert_ret(rmpsc_consumer_complete(x, cy.token), -EINVAL);
		assert_ret(rmpsc_consumer_complete(y, cx.token), -EINVAL);
	}
	/* nothing was released anywhere */
	assert_ret(rmpsc_spmc_push(s, &(uint64_t){ 99 }), -EAGAIN);
	assert_ret(rmpsc_spmc_push(s2, &(uint64_t){ 99 }), -EAGAIN);
	assert_ret(rmpsc_producer_push(p, &(uint64_t){ 99 }), -EAGAIN);
	assert_ret(rmpsc_consumer_deregister(a), -EBUSY);
	assert_ret(rmpsc_consumer_deregister(x), -EBUSY);
	/* each token still completes on its owner, once */
	assert_ret(rmpsc_consumer_complete(b, cb.token), 0);
	assert_ret(rmpsc_spmc_push(s, &(uint64_t){ 99 }), -EAGAIN); /* ca still out */
	assert_ret(rmpsc_consumer_complete(a, ca.token), 0);
	assert_int_equal(spmc_fill(s, 5, 4), 2);
	assert_ret(rmpsc_consumer_complete(x, cx.token), 0);
	assert_int_equal(spmc_fill(s2, 5, 4), 1);
	assert_ret(rmpsc_consumer_complete(y, cy.token), 0);
	assert_ret(rmpsc_producer_push(p, &(uint64_t){ 5 }), 0);
	assert_ret(rmpsc_consumer_complete(a, ca.token), -EINVAL);
	assert_ret(rmpsc_consumer_complete(y, cy.token), -EINVAL);
	seq_take(steal1, a, 3, 4);
	seq_take(steal1, x, 2, 4);
	seq_take(steal1, y, 2, 4);
	rmpsc_spmc_destroy(s);
	rmpsc_spmc_destroy(s2);
	rmpsc_mpmc_destroy(m);
}

/* Try every forged value near the held tokens: each is -EINVAL, and the
 * channel is as it was (@check). Values equal to a held token are left out. */
static void forge_all(rmpsc_consumer *c, const uint64_t *held, int nheld,
		      void (*check)(void *ctx), void *ctx)
{
	for (int h = 0; h < nheld; h++) {
		const uint64_t t = held[h];
		uint64_t forged[4 + 64 + 2];
		int nf = 0;

		forged[nf++] = 0;
		forged[nf++] = ~0ull;
		forged[nf++] = t ^ 1;
		forged[nf++] = t + (1ull << 40);
		for (int bit = 0; bit < 64; bit++)
			forged[nf++] = t ^ (1ull << bit);
		forged[nf++] = t + 1;
		forged[nf++] = t - 1;
		for (int i = 0; i < nf; i++) {
			bool is_held = false;

			for (int j = 0; j < nheld; j++)
				is_held = is_held || forged[i] == held[j];
			if (is_held)
				continue;
			if (rmpsc_consumer_complete(c, forged[i]) != -EINVAL)
				fail_msg("complete(token %#llx, forged from %#llx) accepted",
					 (unsigned long long)forged[i], (unsigned long long)t);
			check(ctx);
		}
	}
}

struct forge_spmc {
	rmpsc_spmc *s;
	rmpsc_consumer *c;
	rmpsc_claim held;
};

static void forge_spmc_check(void *ctx)
{
	struct forge_spmc *f = ctx;

	assert_ret(rmpsc_spmc_len(f->s), 3);
	assert_ret(rmpsc_spmc_push(f->s, &(uint64_t){ 99 }), -EAGAIN);
	claim_values_expect(&f->held, 1);
}

/* Forged tokens (0, ~0, token ^ 1, token + 2^40, every one-bit change,
 * token +- 1) are -EINVAL while one real claim is outstanding, and change
 * nothing: the ring stays full, the unclaimed elements stay, the consumer
 * still holds its claim, and the real token then completes. */
static void test_mc_complete_with_forged_token_returns_einval_and_changes_nothing(
	void **state)
{
	struct forge_spmc f;

	(void)state;
	f.s = spmc_new(4, 4);
	f.c = cons_new(f.s, false);
	seq_put(spmc_put1, f.s, 1, 4);
	f.held = claim_expect(f.c, 1, 1, 1);
	forge_all(f.c, &f.held.token, 1, forge_spmc_check, &f);
	assert_ret(rmpsc_consumer_deregister(f.c), -EBUSY);
	assert_ret(rmpsc_consumer_complete(f.c, f.held.token), 0);
	assert_int_equal(spmc_fill(f.s, 5, 4), 1);
	seq_take(steal1, f.c, 2, 3);
	seq_take(steal1, f.c, 5, 1);
	assert_ret(rmpsc_consumer_deregister(f.c), 0);
	rmpsc_spmc_destroy(f.s);
}

struct forge_mpmc {
	rmpsc_mpmc *m;
	rmpsc_producer *p[2];
	rmpsc_claim held[8];
	int nheld;
};

static void forge_mpmc_check(void *ctx)
{
	struct forge_mpmc *f = ctx;

	assert_ret(rmpsc_mpmc_len(f->m), 8 - f->nheld);
	for (int i = 0; i < 2; i++)
		assert_ret(rmpsc_producer_push(f->p[i], &(uint64_t){ 99 }), -EAGAIN);
	for (int i = 0; i < f->nheld; i++)
		claim_values_expect(&f->held[i],
				    (f->held[i].producer == 0 ? 10 : 20) + f->held[i].span.pos);
}

/* The same on an MPMC channel with claims held on both of its rings (claims
 * of 1 until each ring has one): no forged value near any held token,
 * another held token changed in any bit included, completes anything;
 * then each token completes once and its ring gets a slot back. */
static void test_mc_complete_with_forged_token_in_mpmc_returns_einval(void **state)
{
	struct forge_mpmc f;
	rmpsc_consumer *c;
	uint64_t tok[8];
	bool seen[2] = { false, false };

	(void)state;
	f.m = mpmc_new(4, 0, 2, 4);
	f.nheld = 0;
	c = cons_new(f.m, true);
	f.p[0] = producer_new(f.m, true, 0);
	f.p[1] = producer_new(f.m, true, 1);
	seq_put(producer_put1, f.p[0], 10, 4);
	seq_put(producer_put1, f.p[1], 20, 4);
	while (!seen[0] || !seen[1]) {
		rmpsc_claim cl;

		assert_true(f.nheld < 8);
		claim_garbage(&cl);
		assert_ret(rmpsc_consumer_claim(c, 1, &cl), 1);
		claim_check_shape(&cl, 1, 8);
		assert_true(cl.producer < 2);
		seen[cl.producer] = true;
		assert_int_equal(span_get_u64(&cl.span, 0),
				 (cl.producer == 0 ? 10 : 20) + cl.span.pos);
		for (int i = 0; i < f.nheld; i++)
			assert_true(tok[i] != cl.token);
		f.held[f.nheld] = cl;
		tok[f.nheld++] = cl.token;
	}
	forge_all(c, tok, f.nheld, forge_mpmc_check, &f);
	/* each completes once, in claim order: its ring gets a slot back */
	for (int i = 0; i < f.nheld; i++) {
		assert_ret(rmpsc_consumer_complete(c, tok[i]), 0);
		assert_ret(rmpsc_consumer_complete(c, tok[i]), -EINVAL);
		assert_ret(rmpsc_producer_push(f.p[f.held[i].producer], &(uint64_t){ 99 }), 0);
	}
	assert_ret(rmpsc_consumer_deregister(c), 0);
	rmpsc_mpmc_destroy(f.m);
}

/* A token completed long ago stays refused: not after the consumer made
 * new claims (whatever bookkeeping it reuses), not after the ring went
 * round and the same slot was claimed again. */
static void test_mc_complete_with_stale_token_returns_einval(void **state)
{
	rmpsc_spmc *s = spmc_new(4, 4);
	rmpsc_consumer *c = cons_new(s, false);
	uint64_t old[12];
	int nold = 0;

	(void)state;
	for (uint64_t v = 0; v < 12; v++) {
		rmpsc_claim cl;

		assert_ret(rmpsc_spmc_push(s, &v), 0);
		cl = claim_expect(c, 4, 1, v);
		assert_int_equal(cl.span.pos, v);
		/* every token completed so far is refused, the live one not */
		for (int i = 0; i < nold; i++) {
			assert_true(old[i] != cl.token);
			assert_ret(rmpsc_consumer_complete(c, old[i]), -EINVAL);
		}
		claim_values_expect(&cl, v);
		assert_ret(rmpsc_consumer_complete(c, cl.token), 0);
		old[nold++] = cl.token;
	}
	for (int i = 0; i < nold; i++)
		assert_ret(rmpsc_consumer_complete(c, old[i]), -EINVAL);
	assert_int_equal(spmc_fill(s, 0, 5), 4);
	rmpsc_spmc_destroy(s);
}

/* A consumer registered after another left (possibly in the same memory
 * and slot, its claims' bookkeeping starting afresh) does not take the old
 * one's tokens: the first claim of each, in the same place of the same
 * ring, has a token of its own. */
static void test_mc_complete_with_token_of_a_deregistered_consumer_returns_einval(
	void **state)
{
	rmpsc_spmc *s = spmc_new(4, 4);
	rmpsc_consumer *c = cons_new(s, false);
	rmpsc_claim old, cur;

	(void)state;
	seq_put(spmc_put1, s, 1, 4);
	old = claim_expect(c, 1, 1, 1);
	assert_ret(rmpsc_consumer_complete(c, old.token), 0);
	assert_ret(rmpsc_consumer_deregister(c), 0);
	c = cons_new(s, false);
	cur = claim_expect(c, 1, 1, 2);
	assert_true(cur.token != old.token);
	assert_ret(rmpsc_consumer_complete(c, old.token), -EINVAL);
	/* still held: its slot and the next ones stay out of reach */
	assert_int_equal(spmc_fill(s, 5, 4), 1);
	claim_values_expect(&cur, 2);
	assert_ret(rmpsc_consumer_deregister(c), -EBUSY);
	assert_ret(rmpsc_consumer_complete(c, cur.token), 0);
	assert_ret(rmpsc_consumer_deregister(c), 0);
	rmpsc_spmc_destroy(s);
}

/* A consume handler may call its own consumer's calls: a claim made from
 * the handler gets the run after the one being handled (never the same
 * elements), and it stays held after the handler returned, while the
 * handled run is completed by consume. */
struct in_handler {
	rmpsc_consumer *c;
	uint64_t handled;
	int ret;
	rmpsc_claim cl;
};

static void claim_in_handler_fn(void *ctx, uint32_t producer_id, const void *items,
				uint32_t count)
{
	struct in_handler *h = ctx;

	(void)producer_id;
	assert_int_equal(count, 1);
	memcpy(&h->handled, items, 8);
	claim_garbage(&h->cl);
	h->ret = rmpsc_consumer_claim(h->c, 2, &h->cl);
}

static void test_mc_claim_from_a_consume_handler_takes_the_next_run(void **state)
{
	rmpsc_spmc *s = spmc_new(4, 4);
	struct in_handler h = { .c = cons_new(s, false), .ret = 1234 };

	(void)state;
	seq_put(spmc_put1, s, 1, 4);
	assert_ret(rmpsc_consumer_consume(h.c, 1, claim_in_handler_fn, &h), 1);
	assert_int_equal(h.handled, 1);
	assert_ret(h.ret, 2);
	claim_check_shape(&h.cl, 2, 8);
	claim_values_expect(&h.cl, 2);
	assert_int_equal(h.cl.span.pos, 1);
	/* consume gave its run back; the claim keeps 2 and 3 */
	assert_int_equal(spmc_fill(s, 5, 4), 1);
	assert_ret(rmpsc_consumer_deregister(h.c), -EBUSY);
	seq_take(steal1, h.c, 4, 2);
	assert_ret(rmpsc_consumer_complete(h.c, h.cl.token), 0);
	assert_int_equal(spmc_fill(s, 6, 4), 4);
	seq_take(steal1, h.c, 6, 4);
	assert_ret(rmpsc_consumer_deregister(h.c), 0);
	rmpsc_spmc_destroy(s);
}

/* ---- completion order ------------------------------------------------------ */

/* Runs go back in ring order: A, B, C claimed (one element each, by two
 * consumers) on a full ring of 4; completing C, then B, leaves the ring
 * full for the producer; completing A gives back all three at once. */
static void test_mc_complete_out_of_order_releases_only_when_the_earliest_completes(
	void **state)
{
	rmpsc_spmc *s = spmc_new(4, 4);
	rmpsc_consumer *c = cons_new(s, false), *d = cons_new(s, false);
	rmpsc_claim a, b, cc;
	rmpsc_span sp;

	(void)state;
	seq_put(spmc_put1, s, 1, 4);
	a = claim_expect(c, 1, 1, 1);
	b = claim_expect(d, 1, 1, 2);
	cc = claim_expect(c, 1, 1, 3);
	assert_ret(rmpsc_spmc_push(s, &(uint64_t){ 99 }), -EAGAIN);
	assert_ret(rmpsc_consumer_complete(c, cc.token), 0);
	assert_ret(rmpsc_spmc_push(s, &(uint64_t){ 99 }), -EAGAIN);
	assert_ret(rmpsc_consumer_complete(d, b.token), 0);
	assert_ret(rmpsc_spmc_push(s, &(uint64_t){ 99 }), -EAGAIN);
	assert_ret(rmpsc_spmc_push_timed(s, &(uint64_t){ 99 }, 0, NULL), -ETIMEDOUT);
	assert_ret(rmpsc_spmc_reserve(s, 1, &sp), -EAGAIN);
	claim_values_expect(&a, 1);
	assert_ret(rmpsc_spmc_len(s), 1);
	/* A completes: A, B and C go back together */
	assert_ret(rmpsc_consumer_complete(c, a.token), 0);
	assert_int_equal(spmc_fill(s, 5, 4), 3);
	assert_ret(rmpsc_spmc_len(s), 4);
	seq_take(steal1, d, 4, 4);
	rmpsc_spmc_destroy(s);
}

/* The same rule per ring of an MPMC channel: a held run of ring 0 stops
 * ring 0's producer only; ring 1's producer goes on. */
static void test_mc_complete_out_of_order_in_mpmc_holds_only_its_own_ring(void **state)
{
	rmpsc_mpmc *m = mpmc_new(4, 0, 2, 4);
	rmpsc_producer *p0 = producer_new(m, true, 0), *p1 = producer_new(m, true, 1);
	rmpsc_consumer *c = cons_new(m, true);
	rmpsc_claim cl[8];
	int n0 = 0, first0 = -1;

	(void)state;
	seq_put(producer_put1, p0, 0, 4);
	seq_put(producer_put1, p1, 100, 4);
	/* claim every element one at a time */
	for (int i = 0; i < 8; i++) {
		claim_garbage(&cl[i]);
		assert_ret(rmpsc_consumer_claim(c, 1, &cl[i]), 1);
		claim_check_shape(&cl[i], 1, 8);
		assert_int_equal(span_get_u64(&cl[i].span, 0) / 100, cl[i].producer);
		if (cl[i].producer == 0 && n0++ == 0)
			first0 = i;
	}
	assert_int_equal(n0, 4);
	claim_fails(c, 1, -EAGAIN);
	/* complete everything but ring 0's first run */
	for (int i = 0; i < 8; i++)
		if (i != first0)
			assert_ret(rmpsc_consumer_complete(c, cl[i].token), 0);
	assert_ret(rmpsc_producer_push(p0, &(uint64_t){ 4 }), -EAGAIN);
	seq_put(producer_put1, p1, 104, 4);
	assert_ret(rmpsc_producer_push(p1, &(uint64_t){ 108 }), -EAGAIN);
	assert_int_equal(span_get_u64(&cl[first0].span, 0), 0);
	assert_ret(rmpsc_consumer_complete(c, cl[first0].token), 0);
	seq_put(producer_put1, p0, 4, 4);
	assert_ret(rmpsc_mpmc_len(m), 8);
	rmpsc_mpmc_destroy(m);
}

/* A held claim's elements are never overwritten: with the claims around
 * it completed, the producer pushes all it can (exactly the slots before
 * the held run), a consumer takes those, the producer tries again, and
 * the held elements keep their values and their place throughout. */
static void test_mc_claim_held_keeps_its_elements_while_the_producer_pushes(void **state)
{
	rmpsc_spmc *s = spmc_new(8, 4);
	rmpsc_consumer *c = cons_new(s, false), *d = cons_new(s, false);
	rmpsc_claim held, cl;
	const void *where;
	uint64_t next = 8;

	(void)state;
	seq_put(spmc_put1, s, 0, 8);
	cl = claim_expect(d, 1, 1, 0);         /* position 0 */
	held = claim_expect(c, 2, 2, 1);       /* positions 1, 2: held */
	where = held.span.iov[0].iov_base;
	assert_ret(rmpsc_consumer_complete(d, cl.token), 0);
	cl = claim_expect(d, 8, 5, 3);         /* positions 3..7 */
	assert_ret(rmpsc_consumer_complete(d, cl.token), 0);
	for (int round = 0; round < 8; round++) {
		/* only position 0's slot is free, once */
		const uint32_t pushed = spmc_fill(s, next, 8);

		assert_int_equal(pushed, round == 0 ? 1 : 0);
		next += pushed;
		claim_values_expect(&held, 1);
		assert_ptr_equal(held.span.iov[0].iov_base, where);
		/* a consumer takes what was pushed and completes it */
		if (pushed) {
			cl = claim_expect(d, 8, 1, 8);
			assert_ret(rmpsc_consumer_complete(d, cl.token), 0);
		}
		claim_fails(d, 8, -EAGAIN);
		claim_values_expect(&held, 1);
	}
	assert_ret(rmpsc_consumer_complete(c, held.token), 0);
	/* now the producer gets every slot back */
	assert_int_equal(spmc_fill(s, next, 8), 8);
	rmpsc_spmc_destroy(s);
}

/* ---- RMPSC_CONSUMER_CLAIMS_MAX ------------------------------------------- */

/* A consumer holds at most RMPSC_CONSUMER_CLAIMS_MAX claims: that many
 * succeed, one more is -ENOBUFS (out zeroed, nothing claimed: len and the
 * next element unchanged), another consumer is not limited by it, and
 * completing any one (here a middle one) lets the next claim succeed. */
static void test_mc_claim_beyond_claims_max_returns_enobufs_until_one_completes(
	void **state)
{
	enum { MAX = RMPSC_CONSUMER_CLAIMS_MAX };
	rmpsc_spmc *s = spmc_new(256, 4);
	rmpsc_consumer *c = cons_new(s, false), *d = cons_new(s, false);
	static rmpsc_claim cl[MAX];
	rmpsc_claim x;

	(void)state;
	seq_put(spmc_put1, s, 0, MAX + 8);
	for (int i = 0; i < MAX; i++)
		cl[i] = claim_expect(c, 1, 1, (uint64_t)i);
	assert_ret(rmpsc_spmc_len(s), 8);
	for (int i = 0; i < 3; i++) {
		claim_fails(c, 1, -ENOBUFS);
		claim_fails(c, UINT32_MAX, -ENOBUFS);
		claim_garbage(&x);
		assert_ret(rmpsc_consumer_claim_timed(c, 1, &x, 0, NULL), -ENOBUFS);
		claim_expect_zeroed(&x);
		/* a time limit does not make it wait for itself */
		claim_garbage(&x);
		assert_ret(rmpsc_consumer_claim_timed(c, 1, &x, 50 * 1000 * 1000, NULL),
			   -ENOBUFS);
		claim_expect_zeroed(&x);
		assert_ret(rmpsc_spmc_len(s), 8);
	}
	/* the limit is per consumer */
	x = claim_expect(d, 1, 1, MAX);
	assert_ret(rmpsc_consumer_complete(d, x.token), 0);
	/* complete a middle one: one more claim fits, then the limit again */
	assert_ret(rmpsc_consumer_complete(c, cl[MAX / 2].token), 0);
	cl[MAX / 2] = claim_expect(c, 1, 1, MAX + 1);
	claim_fails(c, 1, -ENOBUFS);
	assert_ret(rmpsc_spmc_len(s), 6);
	/* the held claims' elements are intact */
	for (int i = 0; i < MAX; i++)
		claim_values_expect(&cl[i], i == MAX / 2 ? MAX + 1 : (uint64_t)i);
	for (int i = MAX - 1; i >= 0; i--)
		assert_ret(rmpsc_consumer_complete(c, cl[i].token), 0);
	/* all released: the claims and the steal above took MAX + 2 slots */
	assert_int_equal(spmc_fill(s, 1000, 256), 256 - 6);
	assert_ret(rmpsc_consumer_deregister(c), 0);
	rmpsc_spmc_destroy(s);
}

/* ---- deregister ---------------------------------------------------------- */

/* Deregister is refused (-EBUSY) while a claim is outstanding and nothing
 * changes: the consumer keeps working (claims, completes, steals) and its
 * held elements stay claimed; once every claim is completed it returns 0.
 * On an SPMC and on an MPMC channel. */
static void test_mc_deregister_with_claims_outstanding_returns_ebusy(void **state)
{
	(void)state;
	for (int mpmc = 0; mpmc < 2; mpmc++) {
		rmpsc_spmc *s = mpmc ? NULL : spmc_new(8, 4);
		rmpsc_mpmc *m = mpmc ? mpmc_new(8, 1, 1, 4) : NULL;
		void *ch = mpmc ? (void *)m : (void *)s;
		rmpsc_producer *p = mpmc ? producer_new(m, true, 0) : NULL;
		rmpsc_consumer *c = cons_new(ch, mpmc), *d = cons_new(ch, mpmc);
		rmpsc_claim a, b;
		uint64_t v;

		for (uint64_t i = 0; i < 6; i++)
			assert_ret(mpmc ? rmpsc_producer_push(p, &i) : rmpsc_spmc_push(s, &i), 0);
		a = claim_expect(c, 2, 2, 0);
		for (int i = 0; i < 3; i++)
			assert_ret(rmpsc_consumer_deregister(c), -EBUSY);
		/* still a consumer: it claims, steals and completes */
		b = claim_expect(c, 1, 1, 2);
		assert_ret(rmpsc_consumer_steal_one(c, &v), 0);
		assert_int_equal(v, 3);
		assert_ret(rmpsc_consumer_deregister(c), -EBUSY);
		assert_ret(rmpsc_consumer_complete(c, a.token), 0);
		assert_ret(rmpsc_consumer_deregister(c), -EBUSY); /* b is out */
		claim_values_expect(&b, 2);
		/* nobody else got the held element */
		seq_take(steal1, d, 4, 2);
		assert_ret(rmpsc_consumer_steal_one(d, &v), -EAGAIN);
		assert_ret(rmpsc_consumer_complete(c, b.token), 0);
		assert_ret(rmpsc_consumer_deregister(c), 0);
		/* and the ring is whole again */
		if (mpmc) {
			seq_put(producer_put1, p, 10, 8);
			assert_ret(rmpsc_producer_push(p, &v), -EAGAIN);
			rmpsc_mpmc_destroy(m);
		} else {
			assert_int_equal(spmc_fill(s, 10, 9), 8);
			rmpsc_spmc_destroy(s);
		}
	}
}

/* ---- close ---------------------------------------------------------------- */

/* After close: everything published before is still claimed, claims held
 * across the close complete with 0, claim returns -EPIPE once everything
 * is claimed (claims still outstanding or not; out zeroed), and keeps
 * returning it; claim_timed returns -EPIPE at once, with no time limit
 * too. */
static void test_mc_claim_after_close_delivers_the_rest_then_epipe(void **state)
{
	rmpsc_spmc *s = spmc_new(8, 4);
	rmpsc_consumer *c = cons_new(s, false), *d = cons_new(s, false);
	rmpsc_claim a, b, e;

	(void)state;
	seq_put(spmc_put1, s, 1, 5);
	a = claim_expect(c, 2, 2, 1); /* held across the close */
	assert_ret(rmpsc_spmc_close(s), 0);
	assert_ret(rmpsc_spmc_push(s, &(uint64_t){ 9 }), -EPIPE);
	assert_ret(rmpsc_spmc_is_drained(s), 0);
	b = claim_expect(d, 1, 1, 3);
	e = claim_expect(c, 8, 2, 4);
	/* all claimed, a, b and e still out: the end */
	assert_ret(rmpsc_spmc_is_drained(s), 1);
	for (int i = 0; i < 2; i++) {
		rmpsc_claim x;

		claim_fails(c, 1, -EPIPE);
		claim_fails(d, 8, -EPIPE);
		claim_garbage(&x);
		assert_ret(rmpsc_consumer_claim_timed(c, 1, &x, -1, NULL), -EPIPE);
		claim_expect_zeroed(&x);
		claim_garbage(&x);
		assert_ret(rmpsc_consumer_claim_timed(d, 1, &x, 0, NULL), -EPIPE);
		claim_expect_zeroed(&x);
	}
	claim_values_expect(&a, 1);
	claim_values_expect(&b, 3);
	claim_values_expect(&e, 4);
	assert_ret(rmpsc_consumer_complete(c, e.token), 0);
	assert_ret(rmpsc_consumer_complete(d, b.token), 0);
	assert_ret(rmpsc_consumer_complete(c, a.token), 0);
	assert_ret(rmpsc_consumer_complete(c, a.token), -EINVAL);
	claim_fails(c, 1, -EPIPE);
	assert_ret(rmpsc_consumer_deregister(c), 0);
	assert_ret(rmpsc_consumer_deregister(d), 0);
	rmpsc_spmc_destroy(s);
}

/* MPMC close: every ring's elements published before the close are
 * delivered to claims, with their producer ids, then -EPIPE. */
static void test_mc_claim_after_mpmc_close_delivers_every_ring_then_epipe(void **state)
{
	rmpsc_mpmc *m = mpmc_new(8, 0, 4, 4);
	rmpsc_consumer *c = cons_new(m, true);
	rmpsc_producer *p[3];
	uint64_t next[3] = { 0, 0, 0 };
	rmpsc_claim held[16];
	int nheld = 0, k;

	(void)state;
	for (int i = 0; i < 3; i++) {
		p[i] = producer_new(m, true, i);
		for (uint64_t j = 0; j < (uint64_t)(i + 2); j++)
			assert_ret(rmpsc_producer_push(p[i], &(uint64_t){ ((uint64_t)i << 32) | j }),
				   0);
	}
	assert_ret(rmpsc_producer_deregister(p[1]), 0); /* a left producer's rest too */
	assert_ret(rmpsc_mpmc_close(m), 0);
	for (;;) {
		rmpsc_claim cl;

		claim_garbage(&cl);
		k = rmpsc_consumer_claim(c, 2, &cl);
		if (k < 0)
			break;
		claim_check_shape(&cl, k, 8);
		assert_true(cl.producer < 3);
		for (int j = 0; j < k; j++) {
			const uint64_t v = span_get_u64(&cl.span, (uint32_t)j);

			assert_int_equal(v >> 32, cl.producer);
			assert_int_equal(v & 0xffffffffu, next[cl.producer]++);
		}
		assert_true(nheld < 16);
		held[nheld++] = cl;
	}
	assert_ret(k, -EPIPE);
	for (int i = 0; i < 3; i++)
		assert_int_equal(next[i], (uint64_t)(i + 2));
	assert_ret(rmpsc_mpmc_is_drained(m), 1);
	for (int i = 0; i < nheld; i++)
		assert_ret(rmpsc_consumer_complete(c, held[i].token), 0);
	claim_fails(c, 1, -EPIPE);
	assert_ret(rmpsc_consumer_deregister(c), 0);
	rmpsc_mpmc_destroy(m);
}

/* ---- claim_timed ------------------------------------------------------------ */

/* Nothing comes: -ETIMEDOUT after a 1 ms limit (and at once with 0), out
 * zeroed, nothing held; with data there it returns at once. */
static void test_mc_claim_timed_when_empty_returns_etimedout(void **state)
{
	rmpsc_spmc *s = spmc_new(8, 4);
	rmpsc_mpmc *m = mpmc_new(8, 1, 2, 4);
	rmpsc_consumer *cs = cons_new(s, false), *cm = cons_new(m, true);
	rmpsc_consumer *const all[2] = { cs, cm };
	const rmpsc_wait w = block_now();
	rmpsc_wait spin;
	rmpsc_claim cl;

	(void)state;
	assert_ret(rmpsc_wait_init(&spin, sizeof spin, RMPSC_WAIT_SPIN), 0);
	for (int i = 0; i < 2; i++) {
		claim_garbage(&cl);
		assert_ret(rmpsc_consumer_claim_timed(all[i], 1, &cl, 1000000, NULL), -ETIMEDOUT);
		claim_expect_zeroed(&cl);
		claim_garbage(&cl);
		assert_ret(rmpsc_consumer_claim_timed(all[i], 4, &cl, 1000000, &w), -ETIMEDOUT);
		claim_expect_zeroed(&cl);
		claim_garbage(&cl);
		assert_ret(rmpsc_consumer_claim_timed(all[i], 4, &cl, 1000000, &spin),
			   -ETIMEDOUT);
		claim_expect_zeroed(&cl);
		claim_garbage(&cl);
		assert_ret(rmpsc_consumer_claim_timed(all[i], 4, &cl, 0, &w), -ETIMEDOUT);
		claim_expect_zeroed(&cl);
	}
	seq_put(spmc_put1, s, 7, 3);
	claim_garbage(&cl);
	assert_ret(rmpsc_consumer_claim_timed(cs, 2, &cl, 0, NULL), 2);
	claim_check_shape(&cl, 2, 8);
	claim_values_expect(&cl, 7);
	assert_ret(rmpsc_consumer_complete(cs, cl.token), 0);
	claim_garbage(&cl);
	assert_ret(rmpsc_consumer_claim_timed(cs, 8, &cl, -1, &w), 1);
	claim_values_expect(&cl, 9);
	assert_ret(rmpsc_consumer_complete(cs, cl.token), 0);
	assert_ret(rmpsc_consumer_deregister(cs), 0);
	assert_ret(rmpsc_consumer_deregister(cm), 0);
	rmpsc_spmc_destroy(s);
	rmpsc_mpmc_destroy(m);
}

/* A bad strategy is refused with -EINVAL (unknown kind, size too small or
 * not a multiple of 8, SLEEP with sleep_ns 0, DEADLINE with a negative
 * timeout) or -E2BIG (larger than known, non-zero extra bytes), even with
 * elements there: out zeroed, nothing claimed. */
static void test_mc_claim_timed_with_bad_wait_returns_einval_or_e2big(void **state)
{
	rmpsc_spmc *s = spmc_new(8, 4);
	rmpsc_consumer *c = cons_new(s, false);
	rmpsc_wait bad[6];
	union {
		rmpsc_wait w;
		uint64_t q[8];
	} big;
	rmpsc_claim cl;

	(void)state;
	seq_put(spmc_put1, s, 1, 3);
	for (int i = 0; i < 6; i++)
		assert_ret(rmpsc_wait_init(&bad[i], sizeof bad[i], RMPSC_WAIT_BLOCK), 0);
	bad[0].kind = RMPSC_WAIT_KIND_MAX + 1;
	bad[1].kind = UINT32_MAX;
	bad[2].size = 16;
	bad[3].size = sizeof(rmpsc_wait) + 4;
	assert_ret(rmpsc_wait_init(&bad[4], sizeof bad[4], RMPSC_WAIT_SLEEP), 0);
	bad[4].sleep_ns = 0;
	assert_ret(rmpsc_wait_init(&bad[5], sizeof bad[5], RMPSC_WAIT_DEADLINE), 0);
	bad[5].timeout_ns = -1;
	for (int i = 0; i < 6; i++) {
		for (int t = 0; t < 3; t++) {
			const int64_t timeout = t == 0 ? 0 : t == 1 ? 1000000 : -1;

			claim_garbage(&cl);
			assert_ret(rmpsc_consumer_claim_timed(c, 1, &cl, timeout, &bad[i]), -EINVAL);
			claim_expect_zeroed(&cl);
		}
	}
	memset(&big, 0, sizeof big);
	assert_ret(rmpsc_wait_init(&big.w, sizeof big, RMPSC_WAIT_BLOCK), 0);
	big.q[6] = 1;
	claim_garbage(&cl);
	assert_ret(rmpsc_consumer_claim_timed(c, 1, &cl, 0, &big.w), -E2BIG);
	claim_expect_zeroed(&cl);
	/* larger, zeros past ours: fine */
	big.q[6] = 0;
	cl = (rmpsc_claim){ 0 };
	assert_ret(rmpsc_consumer_claim_timed(c, 1, &cl, 0, &big.w), 1);
	claim_values_expect(&cl, 1);
	assert_ret(rmpsc_consumer_complete(c, cl.token), 0);
	assert_ret(rmpsc_spmc_len(s), 2);
	assert_ret(rmpsc_consumer_deregister(c), 0);
	rmpsc_spmc_destroy(s);
}

/* The other side of a blocked claim_timed: after a delay, push one value
 * (SPMC or MPMC), or close the channel. */
struct late {
	rmpsc_spmc *s;
	rmpsc_mpmc *m;
	rmpsc_producer *p;
	bool close;
	int64_t delay_ns;
	atomic_int started;
	int ret;
};

static void *late_main(void *arg)
{
	struct late *l = arg;
	const uint64_t v = 42;

	raise_flag(&l->started);
	sleep_ns(l->delay_ns);
	if (l->close)
		l->ret = l->s ? rmpsc_spmc_close(l->s) : rmpsc_mpmc_close(l->m);
	else
		l->ret = l->s ? rmpsc_spmc_push(l->s, &v) : rmpsc_producer_push(l->p, &v);
	return NULL;
}

/* claim_timed waits: a producer thread pushes after 20 ms and the claim
 * returns that element (SPMC and MPMC, the default strategy and an
 * explicit futex one); a close after 20 ms ends the wait with -EPIPE.
 * The limit (10 s) only keeps a broken build from hanging. */
static void test_mc_claim_timed_is_woken_by_a_late_push_or_close(void **state)
{
	const rmpsc_wait w = block_now();

	(void)state;
	for (int mode = 0; mode < 8; mode++) {
		const bool mpmc = mode & 1, explicit_w = mode & 2, close = mode & 4;
		rmpsc_spmc *s = mpmc ? NULL : spmc_new(8, 4);
		rmpsc_mpmc *m = mpmc ? mpmc_new(8, 1, 2, 4) : NULL;
		struct late l = { .s = s, .m = m, .close = close, .delay_ns = 20000000,
				  .ret = 1 };
		rmpsc_consumer *c;
		rmpsc_claim cl;
		pthread_t t;
		int rc;

		if (mpmc)
			l.p = producer_new(m, true, 0);
		c = cons_new(mpmc ? (void *)m : (void *)s, mpmc);
		atomic_init(&l.started, 0);
		assert_int_equal(pthread_create(&t, NULL, late_main, &l), 0);
		await_flag(&l.started);
		claim_garbage(&cl);
		rc = rmpsc_consumer_claim_timed(c, 4, &cl, 10000000000ll,
						explicit_w ? &w : NULL);
		assert_int_equal(pthread_join(t, NULL), 0);
		assert_ret(l.ret, 0);
		if (close) {
			assert_ret(rc, -EPIPE);
			claim_expect_zeroed(&cl);
		} else {
			assert_ret(rc, 1);
			claim_check_shape(&cl, 1, 8);
			assert_int_equal(span_get_u64(&cl.span, 0), 42);
			assert_int_equal(cl.producer, 0);
			assert_int_equal(cl.span.pos, 0);
			assert_ret(rmpsc_consumer_complete(c, cl.token), 0);
		}
		assert_ret(rmpsc_consumer_deregister(c), 0);
		rmpsc_spmc_destroy(s);
		rmpsc_mpmc_destroy(m);
	}
}

/* ---- MPMC ------------------------------------------------------------------ */

/* A claim is a run of one ring and carries that ring's producer id, the id
 * its registration returned: with producers registered and one left in
 * between, every claim's elements were pushed by claim.producer, in that
 * producer's order, and no claim mixes rings even when n covers all. */
static void test_mc_claim_in_mpmc_carries_the_registered_producer_id(void **state)
{
	enum { NP = 4, PER = 5 };
	rmpsc_mpmc *m = mpmc_new(8, 0, 8, 4);
	rmpsc_consumer *c = cons_new(m, true);
	rmpsc_producer *p[NP];
	int id[NP];
	uint64_t next[8] = { 0 };
	int total = 0, k;

	(void)state;
	for (int i = 0; i < NP; i++) {
		p[i] = SENTINEL_OF(rmpsc_producer);
		id[i] = rmpsc_mpmc_register_producer(m, &p[i]);
		assert_true(id[i] >= 0 && id[i] < 8);
		assert_ret(rmpsc_producer_id(p[i]), id[i]);
	}
	for (int i = 0; i < NP; i++)
		for (uint64_t j = 0; j < PER; j++)
			assert_ret(rmpsc_producer_push(p[i],
						       &(uint64_t){ ((uint64_t)id[i] << 32) | j }),
				   0);
	for (;;) {
		rmpsc_claim cl;

		claim_garbage(&cl);
		k = rmpsc_consumer_claim(c, UINT32_MAX, &cl);
		if (k < 0)
			break;
		claim_check_shape(&cl, k, 8);
		assert_true(cl.producer < 8);
		for (int j = 0; j < k; j++) {
			const uint64_t v = span_get_u64(&cl.span, (uint32_t)j);

			assert_int_equal(v >> 32, cl.producer);
			assert_int_equal(v & 0xffffffffu, next[cl.producer]++);
		}
		assert_ret(rmpsc_consumer_complete(c, cl.token), 0);
		total += k;
	}
	assert_ret(k, -EAGAIN);
	assert_int_equal(total, NP * PER);
	for (int i = 0; i < NP; i++)
		assert_int_equal(next[id[i]], PER);
	rmpsc_mpmc_destroy(m);
}

/* A left producer's ring (and id) goes to a later registration only once
 * everything published on it is claimed and every claim on it completed:
 * until then registration is -ENOSPC (max_producers 1); the reused ring
 * starts empty; the old ring's tokens stay refused. */
static void test_mc_mpmc_ring_reuse_waits_for_the_claims_on_it(void **state)
{
	rmpsc_mpmc *m = mpmc_new(4, 0, 1, 4);
	rmpsc_consumer *c = cons_new(m, true);
	rmpsc_producer *p = producer_new(m, true, 0), *x = SENTINEL_OF(rmpsc_producer);
	rmpsc_claim a, b;

	(void)state;
	seq_put(producer_put1, p, 1, 3);
	a = claim_expect(c, 1, 1, 1);
	assert_ret(rmpsc_producer_deregister(p), 0);
	/* one element unclaimed, one claim out */
	assert_ret(rmpsc_mpmc_register_producer(m, &x), -ENOSPC);
	assert_null(x);
	b = claim_expect(c, 8, 2, 2);
	assert_int_equal(b.producer, 0);
	x = SENTINEL_OF(rmpsc_producer);
	assert_ret(rmpsc_mpmc_register_producer(m, &x), -ENOSPC); /* a, b out */
	assert_null(x);
	assert_ret(rmpsc_consumer_complete(c, b.token), 0);
	x = SENTINEL_OF(rmpsc_producer);
	assert_ret(rmpsc_mpmc_register_producer(m, &x), -ENOSPC); /* a out */
	assert_null(x);
	claim_values_expect(&a, 1);
	assert_ret(rmpsc_consumer_complete(c, a.token), 0);
	/* drained and completed: the ring and its id come back, empty */
	p = producer_new(m, true, 0);
	claim_fails(c, 1, -EAGAIN);
	assert_ret(rmpsc_producer_len(p), 0);
	assert_ret(rmpsc_mpmc_len(m), 0);
	seq_put(producer_put1, p, 10, 4);
	assert_ret(rmpsc_producer_push(p, &(uint64_t){ 14 }), -EAGAIN);
	assert_ret(rmpsc_consumer_complete(c, a.token), -EINVAL);
	assert_ret(rmpsc_consumer_complete(c, b.token), -EINVAL);
	a = claim_expect(c, 8, 4, 10);
	assert_int_equal(a.producer, 0);
	assert_ret(rmpsc_consumer_complete(c, b.token), -EINVAL);
	assert_ret(rmpsc_consumer_complete(c, a.token), 0);
	assert_ret(rmpsc_consumer_deregister(c), 0);
	rmpsc_mpmc_destroy(m);
}

/*
 * Claims mixed with steal, steal_one and consume, by two consumers on three
 * MPMC rings, one thread, a pseudo-random schedule: every element is
 * delivered exactly once, each consumer sees each producer's elements in
 * order, and the held claims keep their values until completed.
 */
struct mix_cons {
	rmpsc_consumer *c;
	rmpsc_claim held[6];
	uint64_t first[6]; /* the first value of each held claim, when claimed */
	int nheld;
	int64_t last[3];
};

struct mix {
	uint8_t seen[3][4096];
	uint64_t delivered;
};

static void mix_take(struct mix *mx, struct mix_cons *mc, uint32_t pid, uint64_t v)
{
	const uint64_t seq = v & 0xffffffffu;

	assert_int_equal(v >> 32, pid);
	assert_true(pid < 3 && seq < 4096);
	if ((int64_t)seq <= mc->last[pid])
		fail_msg("producer %u: seq %llu after %lld", pid, (unsigned long long)seq,
			 (long long)mc->last[pid]);
	mc->last[pid] = (int64_t)seq;
	assert_int_equal(mx->seen[pid][seq], 0);
	mx->seen[pid][seq] = 1;
	mx->delivered++;
}

struct mix_ctx {
	struct mix *mx;
	struct mix_cons *mc;
};

static void mix_fn(void *ctx, uint32_t producer_id, const void *items, uint32_t count)
{
	struct mix_ctx *x = ctx;

	for (uint32_t i = 0; i < count; i++) {
		uint64_t v;

		memcpy(&v, (const unsigned char *)items + (size_t)i * 8, 8);
		mix_take(x->mx, x->mc, producer_id, v);
	}
}

static void mix_complete(struct mix_cons *mc, int i)
{
	const rmpsc_claim *cl = &mc->held[i];

	/* still the values claimed: consecutive from the first */
	claim_values_expect(cl, mc->first[i]);
	assert_ret(rmpsc_consumer_complete(mc->c, cl->token), 0);
	mc->nheld--;
	mc->held[i] = mc->held[mc->nheld];
	mc->first[i] = mc->first[mc->nheld];
}

/* Claims, steals and consumes on one MPMC channel deliver every element
 * exactly once (see the comment above struct mix_cons). */
static void test_mc_claim_mixed_with_steal_and_consume_delivers_each_once(void **state)
{
	enum { NP = 3, PER = 4000 };
	rmpsc_mpmc *m = mpmc_new(16, 0, 4, 4);
	rmpsc_producer *p[NP];
	struct mix_cons mc[2];
	static struct mix mx;
	uint64_t sent[NP] = { 0 }, rng = 0x9e3779b97f4a7c15ull;

	(void)state;
	memset(&mx, 0, sizeof mx);
	for (int i = 0; i < NP; i++)
		p[i] = producer_new(m, true, i);
	for (int j = 0; j < 2; j++) {
		memset(&mc[j], 0, sizeof mc[j]);
		mc[j].c = cons_new(m, true);
		for (int i = 0; i < NP; i++)
			mc[j].last[i] = -1;
	}
	while (mx.delivered < (uint64_t)NP * PER) {
		const uint64_t r = xs_next(&rng);
		struct mix_cons *me = &mc[r & 1];
		const uint32_t n = 1 + (uint32_t)((r >> 8) % 7);

		/* push a few */
		for (int k = 0; k < 3; k++) {
			const uint32_t i = (uint32_t)((r >> (16 + 4 * k)) % NP);

			if (sent[i] < PER) {
				const uint64_t v = ((uint64_t)i << 32) | sent[i];
				const int rc = rmpsc_producer_push(p[i], &v);

				assert_true(rc == 0 || rc == -EAGAIN);
				sent[i] += rc == 0;
			}
		}
		switch ((r >> 40) % 5) {
		case 0:
		case 1: {
			rmpsc_claim cl;
			int k;

			if (me->nheld == 6) {
				mix_complete(me, (int)((r >> 48) % 6));
				break;
			}
			claim_garbage(&cl);
			k = rmpsc_consumer_claim(me->c, n, &cl);
			if (k == -EAGAIN) {
				claim_expect_zeroed(&cl);
				break;
			}
			assert_true(k >= 1 && (uint32_t)k <= n);
			claim_check_shape(&cl, k, 8);
			for (int j = 0; j < k; j++)
				mix_take(&mx, me, cl.producer, span_get_u64(&cl.span, (uint32_t)j));
			claim_values_expect(&cl, span_get_u64(&cl.span, 0));
			me->first[me->nheld] = span_get_u64(&cl.span, 0);
			me->held[me->nheld++] = cl;
			break;
		}
		case 2: {
			uint64_t got[8];
			int k;

			if (n == 1) {
				k = rmpsc_consumer_steal_one(me->c, got);
				k = k == 0 ? 1 : k;
			} else {
				k = rmpsc_consumer_steal(me->c, got, n);
			}
			if (k == -EAGAIN)
				break;
			assert_true(k >= 1 && (uint32_t)k <= n);
			for (int j = 0; j < k; j++)
				mix_take(&mx, me, (uint32_t)(got[j] >> 32), got[j]);
			break;
		}
		case 3: {
			struct mix_ctx x = { &mx, me };
			const int k = rmpsc_consumer_consume(me->c, n, mix_fn, &x);

			assert_true(k == -EAGAIN || (k >= 1 && (uint32_t)k <= n));
			break;
		}
		default:
			if (me->nheld)
				mix_complete(me, (int)((r >> 48) % (uint64_t)me->nheld));
			break;
		}
	}
	for (int j = 0; j < 2; j++) {
		while (mc[j].nheld)
			mix_complete(&mc[j], 0);
		claim_fails(mc[j].c, 8, -EAGAIN);
		assert_ret(rmpsc_consumer_deregister(mc[j].c), 0);
	}
	for (int i = 0; i < NP; i++) {
		assert_int_equal(sent[i], PER);
		for (int s = 0; s < PER; s++)
			assert_int_equal(mx.seen[i][s], 1);
	}
	assert_ret(rmpsc_mpmc_len(m), 0);
	rmpsc_mpmc_destroy(m);
}

/* ---- threads: claims held and completed out of order under contention ---- */

/*
 * 4 producer threads and 4 consumer threads (more threads than the CPUs of
 * a small VM) on an MPMC channel of rings of 64. Elements are 8 bytes,
 * (producer id << 32) | sequence, 200,000 per producer (100,000 under the
 * sanitizers: RMPSC_TEST_SANITIZED, STRESS_SCALE). Each consumer claims
 * runs of 1..16, holds up to 8 claims and completes them in a
 * pseudo-random order: when it holds 8, now and then after a claim, and
 * when nothing is there (then one time in four, else it yields, so that
 * claims stay held long enough for the producers to wrap around to them:
 * completing at every empty poll hid a producer that reused a held slot).
 * It checks, per producer, that the sequences it gets increase (and are
 * consecutive within a claim: a claim is a run of one ring), that
 * claim.producer names the producer, and, just before completing a claim,
 * that its elements still hold the values they had when claimed (the
 * producer must not have written over them). Producers push runs of 1..16
 * and retry on -EAGAIN after sched_yield(), then deregister. The
 * last producer to finish closes the channel; each consumer stops at
 * -EPIPE. At the end the count, sum and sum of squares of the sequences
 * per producer must be those of 0..N-1: no element lost or delivered
 * twice. The threads never use cmocka (not thread-safe): the first failure
 * is recorded (fail_record), stops every thread and is reported by main.
 * A watchdog reports a run that stops making progress (a slot never given
 * back) instead of hanging.
 */
enum { ST_NP = 4, ST_NC = 4, ST_CAP = 64, ST_HOLD = 8, ST_RUN = 16 };

#define ST_PER ((uint32_t)STRESS_SCALE(200000, 100000, 100000))

struct st_cons;

struct st {
	rmpsc_mpmc *m;
	rmpsc_producer *p[ST_NP];
	uint32_t per;
	uint64_t seed;
	atomic_int stop;
	atomic_int producers_left;
	atomic_int threads_left;
	_Atomic uint64_t pushed[ST_NP];
	_Atomic uint64_t claimed;
	atomic_int failed;
	char msg[1024];
	struct st_cons *cons[ST_NC];
};

struct st_held {
	rmpsc_claim cl;
	uint64_t first; /* the value of the first element when claimed */
	uint32_t count;
};

struct st_cons {
	struct st *st;
	rmpsc_consumer *c;
	int idx;
	uint64_t rng;
	struct st_held held[ST_HOLD];
	int nheld;
	atomic_int nheld_seen; /* nheld, for the watchdog's report */
	int64_t last[ST_NP];
	uint64_t count[ST_NP], sum[ST_NP], sumsq[ST_NP];
};

struct st_prod {
	struct st *st;
	int idx;
};

static void st_stop(void *arg, int first)
{
	struct st *st = arg;

	(void)first;
	atomic_store_explicit(&st->stop, 1, memory_order_release);
	(void)rmpsc_mpmc_close(st->m);
}

static bool st_stopped(struct st *st)
{
	return atomic_load_explicit(&st->stop, memory_order_acquire) != 0;
}

static void *st_prod_main(void *arg)
{
	struct st_prod *pa = arg;
	struct st *st = pa->st;
	rmpsc_producer *p = st->p[pa->idx];
	const uint64_t tag = (uint64_t)pa->idx << 32;
	uint64_t rng = st->seed ^ (0x1000u + (uint64_t)pa->idx * 0x9e3779b97f4a7c15ull);
	uint64_t seq = 0;

	if (!rng)
		rng = 1;
	while (seq < st->per && !st_stopped(st)) {
		uint64_t buf[ST_RUN];
		uint32_t n = pick_n(&rng, 4, ST_RUN);
		int rc;

		if (n > st->per - seq)
			n = (uint32_t)(st->per - seq);
		for (uint32_t j = 0; j < n; j++)
			buf[j] = tag | (seq + j);
		if (n == 1) {
			rc = rmpsc_producer_push(p, buf);
			if (rc == 0)
				rc = 1;
		} else {
			rc = rmpsc_producer_push_n(p, buf, n);
		}
		if (rc == -EAGAIN) {
			sched_yield();
			continue;
		}
		if (rc < 1 || (uint32_t)rc > n) {
			if (!st_stopped(st))
				FAIL_RECORD(st, st_stop, "producer %d at seq %llu: push of %u = %d (%s)",
					    pa->idx, (unsigned long long)seq, n, rc, errname(rc));
			break;
		}
		seq += (uint32_t)rc;
		atomic_store_explicit(&st->pushed[pa->idx], seq, memory_order_relaxed);
	}
	if (seq == st->per) {
		const int rc = rmpsc_producer_deregister(p);

		if (rc != 0)
			FAIL_RECORD(st, st_stop, "producer %d: deregister = %d (%s)", pa->idx, rc,
				    errname(rc));
		if (atomic_fetch_sub_explicit(&st->producers_left, 1, memory_order_acq_rel) == 1)
			(void)rmpsc_mpmc_close(st->m);
	}
	atomic_fetch_sub_explicit(&st->threads_left, 1, memory_order_acq_rel);
	return NULL;
}

/* A claim just made: its shape, producer and sequences; NULL or what is
 * wrong (written into @buf). */
static const char *st_check_claim(struct st_cons *cs, const rmpsc_claim *cl, int k, uint32_t n,
				  char *buf, size_t len)
{
	const rmpsc_span *s = &cl->span;
	uint64_t prev = 0;

	if (k < 1 || (uint32_t)k > n)
		return snprintf(buf, len, "claim of %u returned %d", n, k), buf;
	if ((s->nseg != 1 && s->nseg != 2) || s->count[0] == 0 ||
	    s->count[0] + s->count[1] != (uint32_t)k || (s->nseg == 1 && s->count[1] != 0) ||
	    (s->nseg == 2 && s->count[1] == 0) || s->iov[0].iov_len != (size_t)s->count[0] * 8 ||
	    s->iov[1].iov_len != (size_t)s->count[1] * 8 || s->_pad0 || cl->_pad0)
		return snprintf(buf, len, "claim of %d: bad span (nseg %u, counts %u+%u, "
				"lens %zu+%zu)", k, s->nseg, s->count[0], s->count[1],
				s->iov[0].iov_len, s->iov[1].iov_len), buf;
	if (cl->producer >= ST_NP)
		return snprintf(buf, len, "claim: producer id %u", cl->producer), buf;
	for (int j = 0; j < k; j++) {
		const uint64_t v = span_get_u64(s, (uint32_t)j);
		const uint64_t seq = v & 0xffffffffu;

		if (v >> 32 != cl->producer)
			return snprintf(buf, len, "claim of producer %u holds %#llx", cl->producer,
					(unsigned long long)v), buf;
		if (seq >= cs->st->per)
			return snprintf(buf, len, "producer %u: seq %llu out of range",
					cl->producer, (unsigned long long)seq), buf;
		if (j == 0 && (int64_t)seq <= cs->last[cl->producer])
			return snprintf(buf, len, "producer %u: seq %llu after %lld (pos %llu)",
					cl->producer, (unsigned long long)seq,
					(long long)cs->last[cl->producer],
					(unsigned long long)s->pos), buf;
		if (j > 0 && seq != prev + 1)
			return snprintf(buf, len, "producer %u: seq %llu after %llu in one claim",
					cl->producer, (unsigned long long)seq,
					(unsigned long long)prev), buf;
		prev = seq;
	}
	return NULL;
}

/* Re-read a held claim, complete it, forget it. */
static bool st_complete(struct st_cons *cs, int i)
{
	struct st *st = cs->st;
	struct st_held *h = &cs->held[i];
	int rc;

	for (uint32_t j = 0; j < h->count; j++) {
		const uint64_t v = span_get_u64(&h->cl.span, j);

		if (v != h->first + j) {
			FAIL_RECORD(st, st_stop, "consumer %d: held claim (producer %u, pos %llu, "
				    "%u elements) element %u is %#llx, was %#llx when claimed",
				    cs->idx, h->cl.producer, (unsigned long long)h->cl.span.pos,
				    h->count, j, (unsigned long long)v,
				    (unsigned long long)(h->first + j));
			return false;
		}
	}
	rc = rmpsc_consumer_complete(cs->c, h->cl.token);
	if (rc != 0) {
		FAIL_RECORD(st, st_stop, "consumer %d: complete = %d (%s)", cs->idx, rc, errname(rc));
		return false;
	}
	cs->held[i] = cs->held[--cs->nheld];
	atomic_store_explicit(&cs->nheld_seen, cs->nheld, memory_order_relaxed);
	return true;
}

static bool st_complete_random(struct st_cons *cs)
{
	return st_complete(cs, (int)(xs_next(&cs->rng) % (uint64_t)cs->nheld));
}

static void *st_cons_main(void *arg)
{
	struct st_cons *cs = arg;
	struct st *st = cs->st;
	char why[256];

	while (!st_stopped(st)) {
		rmpsc_claim cl;
		uint32_t n;
		int k;

		if (cs->nheld == ST_HOLD) {
			if (!st_complete_random(cs))
				break;
			continue;
		}
		n = pick_n(&cs->rng, 4, ST_RUN);
		k = rmpsc_consumer_claim(cs->c, n, &cl);
		if (k == -EAGAIN) {
			/* nothing there: complete one, but not at once every
			 * time, so that claims stay held while the producers
			 * wrap around to them */
			if (cs->nheld && (xs_next(&cs->rng) & 3) == 0) {
				if (!st_complete_random(cs))
					break;
			} else {
				sched_yield();
			}
			continue;
		}
		if (k == -EPIPE) {
			while (cs->nheld)
				if (!st_complete(cs, cs->nheld - 1))
					break;
			break;
		}
		{
			const char *bad = st_check_claim(cs, &cl, k, n, why, sizeof why);

			if (bad) {
				FAIL_RECORD(st, st_stop, "consumer %d: %s (%s)", cs->idx, bad,
					    k < 0 ? errname(k) : "");
				break;
			}
		}
		{
			struct st_held *h = &cs->held[cs->nheld++];
			const uint32_t pid = cl.producer;

			h->cl = cl;
			h->count = (uint32_t)k;
			h->first = span_get_u64(&cl.span, 0);
			atomic_store_explicit(&cs->nheld_seen, cs->nheld, memory_order_relaxed);
			for (int j = 0; j < k; j++) {
				const uint64_t seq = (h->first & 0xffffffffu) + (uint64_t)j;

				cs->count[pid]++;
				cs->sum[pid] += seq;
				cs->sumsq[pid] += seq * seq;
			}
			cs->last[pid] = (int64_t)((h->first & 0xffffffffu) + (uint64_t)k - 1);
		}
		atomic_fetch_add_explicit(&st->claimed, (uint64_t)k, memory_order_relaxed);
		/* now and then complete one early, at random */
		if ((xs_next(&cs->rng) & 15) == 0 && !st_complete_random(cs))
			break;
	}
	atomic_fetch_sub_explicit(&st->threads_left, 1, memory_order_acq_rel);
	return NULL;
}

static bool st_done(void *arg)
{
	struct st *st = arg;

	return atomic_load_explicit(&st->threads_left, memory_order_acquire) == 0;
}

static uint64_t st_progress(void *arg)
{
	struct st *st = arg;
	uint64_t p = atomic_load_explicit(&st->claimed, memory_order_relaxed);

	for (int i = 0; i < ST_NP; i++)
		p += atomic_load_explicit(&st->pushed[i], memory_order_relaxed);
	return p;
}

static void st_stall(void *arg, bool first)
{
	struct st *st = arg;
	char where[512];
	int off = 0;

	if (!first)
		return;
	for (int i = 0; i < ST_NP; i++)
		off += snprintf(where + off, sizeof where - (size_t)off, "%s%llu",
				i ? "," : " pushed ",
				(unsigned long long)atomic_load_explicit(&st->pushed[i],
									 memory_order_relaxed));
	for (int i = 0; i < ST_NC; i++)
		off += snprintf(where + off, sizeof where - (size_t)off, "%s%d",
				i ? "," : ", held ",
				atomic_load_explicit(&st->cons[i]->nheld_seen,
						     memory_order_relaxed));
	FAIL_RECORD(st, st_stop, "no progress for 10 s:%s, claimed %llu of %llu, len %lld",
		    where, (unsigned long long)atomic_load_explicit(&st->claimed,
								    memory_order_relaxed),
		    (unsigned long long)st->per * ST_NP, (long long)rmpsc_mpmc_len(st->m));
}

static void test_mc_claim_threads_hold_and_complete_out_of_order_lose_nothing(void **state)
{
	static struct st st;
	static struct st_cons cons[ST_NC];
	struct st_prod prods[ST_NP];
	pthread_t pt[ST_NP], ct[ST_NC];
	const struct watchdog wd = { .done = st_done, .progress = st_progress,
				     .stall = st_stall, .arg = &st, .sec = 10,
				     .nap_max = 10000000 };
	const uint64_t n = ST_PER;

	(void)state;
	memset(&st, 0, sizeof st);
	memset(cons, 0, sizeof cons);
	st.m = mpmc_new(ST_CAP, 0, ST_NP, ST_NC);
	st.per = ST_PER;
	st.seed = stress_seed();
	atomic_init(&st.stop, 0);
	atomic_init(&st.failed, 0);
	atomic_init(&st.claimed, 0);
	atomic_init(&st.producers_left, ST_NP);
	atomic_init(&st.threads_left, ST_NP + ST_NC);
	for (int i = 0; i < ST_NP; i++) {
		st.p[i] = producer_new(st.m, true, i);
		atomic_init(&st.pushed[i], 0);
	}
	for (int i = 0; i < ST_NC; i++) {
		cons[i].st = &st;
		cons[i].idx = i;
		cons[i].c = cons_new(st.m, true);
		cons[i].rng = st.seed ^ (0x2000u + (uint64_t)i * 0xbf58476d1ce4e5b9ull);
		if (!cons[i].rng)
			cons[i].rng = 1;
		atomic_init(&cons[i].nheld_seen, 0);
		for (int j = 0; j < ST_NP; j++)
			cons[i].last[j] = -1;
		st.cons[i] = &cons[i];
	}
	for (int i = 0; i < ST_NC; i++)
		assert_int_equal(pthread_create(&ct[i], NULL, st_cons_main, &cons[i]), 0);
	for (int i = 0; i < ST_NP; i++) {
		prods[i] = (struct st_prod){ .st = &st, .idx = i };
		assert_int_equal(pthread_create(&pt[i], NULL, st_prod_main, &prods[i]), 0);
	}
	if (!watchdog_run(&wd))
		fail_msg("seed %#llx: threads stuck after the stop: %s",
			 (unsigned long long)st.seed, st.msg); /* threads left running */
	for (int i = 0; i < ST_NP; i++)
		assert_int_equal(pthread_join(pt[i], NULL), 0);
	for (int i = 0; i < ST_NC; i++)
		assert_int_equal(pthread_join(ct[i], NULL), 0);
	if (atomic_load(&st.failed))
		fail_msg("seed %#llx, %u per producer: %s", (unsigned long long)st.seed, st.per,
			 st.msg);
	for (int pid = 0; pid < ST_NP; pid++) {
		uint64_t count = 0, sum = 0, sumsq = 0;

		for (int i = 0; i < ST_NC; i++) {
			count += cons[i].count[pid];
			sum += cons[i].sum[pid];
			sumsq += cons[i].sumsq[pid];
		}
		if (count != n || sum != n * (n - 1) / 2 ||
		    sumsq != (n - 1) * n * (2 * n - 1) / 6)
			fail_msg("seed %#llx, producer %d: count %llu sum %llu sumsq %llu, "
				 "expected %llu %llu %llu", (unsigned long long)st.seed, pid,
				 (unsigned long long)count, (unsigned long long)sum,
				 (unsigned long long)sumsq, (unsigned long long)n,
				 (unsigned long long)(n * (n - 1) / 2),
				 (unsigned long long)((n - 1) * n * (2 * n - 1) / 6));
	}
	assert_ret(rmpsc_mpmc_len(st.m), 0);
	assert_ret(rmpsc_mpmc_is_drained(st.m), 1);
	for (int i = 0; i < ST_NC; i++) {
		assert_int_equal(cons[i].nheld, 0);
		assert_ret(rmpsc_consumer_deregister(cons[i].c), 0);
	}
	rmpsc_mpmc_destroy(st.m);
}

/* ---- main ----------------------------------------------------------------- */

int main(void)
{
#define T(f) cmocka_unit_test(f)
	const struct CMUnitTest tests[] = {
		/* arguments */
		T(test_mc_claim_with_null_out_or_consumer_returns_einval_or_ebadf),
		T(test_mc_claim_with_zero_n_returns_zero_and_claims_nothing),
		T(test_mc_claim_when_empty_returns_eagain_and_zeroes_out),
		/* the run in place */
		T(test_mc_claim_in_spmc_returns_elements_in_place_with_pos_and_id_zero),
		T(test_mc_claim_across_the_buffer_end_returns_two_segments),
		T(test_mc_claim_with_odd_elem_size_reads_bytes_in_place_across_wrap),
		T(test_mc_claim_and_steal_on_spmc_split_the_stream_without_overlap),
		T(test_mc_claim_from_a_consume_handler_takes_the_next_run),
		/* tokens */
		T(test_mc_complete_of_the_same_token_twice_returns_einval),
		T(test_mc_complete_with_another_consumers_token_returns_einval_and_keeps_it),
		T(test_mc_complete_with_forged_token_returns_einval_and_changes_nothing),
		T(test_mc_complete_with_forged_token_in_mpmc_returns_einval),
		T(test_mc_complete_with_stale_token_returns_einval),
		T(test_mc_complete_with_token_of_a_deregistered_consumer_returns_einval),
		/* completion order, held runs */
		T(test_mc_complete_out_of_order_releases_only_when_the_earliest_completes),
		T(test_mc_complete_out_of_order_in_mpmc_holds_only_its_own_ring),
		T(test_mc_claim_held_keeps_its_elements_while_the_producer_pushes),
		/* limits, deregister, close */
		T(test_mc_claim_beyond_claims_max_returns_enobufs_until_one_completes),
		T(test_mc_deregister_with_claims_outstanding_returns_ebusy),
		T(test_mc_claim_after_close_delivers_the_rest_then_epipe),
		T(test_mc_claim_after_mpmc_close_delivers_every_ring_then_epipe),
		/* _timed */
		T(test_mc_claim_timed_when_empty_returns_etimedout),
		T(test_mc_claim_timed_with_bad_wait_returns_einval_or_e2big),
		T(test_mc_claim_timed_is_woken_by_a_late_push_or_close),
		/* MPMC */
		T(test_mc_claim_in_mpmc_carries_the_registered_producer_id),
		T(test_mc_mpmc_ring_reuse_waits_for_the_claims_on_it),
		T(test_mc_claim_mixed_with_steal_and_consume_delivers_each_once),
		/* threads */
		T(test_mc_claim_threads_hold_and_complete_out_of_order_lose_nothing),
	};
#undef T

	return cmocka_run_group_tests_name("test_mc_claim", tests, NULL, NULL);
}
