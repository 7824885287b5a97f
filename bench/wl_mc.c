/* SPDX-License-Identifier: MIT */
/*
 * W8: several consumers, every thread unpinned (more threads than CPUs: the
 * scheduler shares them out). Mmsg/s over the span from the first
 * consumer's start to the last one's end.
 *
 *   spmc-1x4        1 producer x 4 consumers, single items (mc_push1 / mc_pop1)
 *   spmc-1x8        1 x 8, single items: the consumers oversubscribe the CPUs
 *   mpmc-4x4        4 x 4, single items
 *   spmc-1x4-burst  1 x 4, W8_BURST items per producer call and at most
 *                   W8_BURST per consumer call (mc_push_n / mc_pop_n)
 *   mpmc-4x4-bulk   4 x 4, the same bursts both ways
 *
 * Every consumer checks that each producer's sequence numbers increase in
 * what it takes; at the end the consumers' counts, sums and sums of squares
 * per producer must be those of 0..n-1 for the n the producer sent. The
 * burst rows run the same checks on every item of every burst.
 *
 * bench_case.arg: unused.
 */
#include <inttypes.h>

#include "bench.h"
#include "bench_loop.h"

/* The W3 producer's loop on mc_push1 (run->mc). */
static void mc_producer(struct bench_worker *w)
{
	bench_tagged_produce(w, NULL);
}

/* The burst rows: W8_BURST tagged values per burst through mc_push_n, each
 * burst put in whole before the next (W6 batch's producer on mc_push_n). */
static void mc_burst_producer(struct bench_worker *w)
{
	struct bench_run *run = w->run;
	const struct bench_impl *im = run->impl;
	void *q = run->q[0];
	const uint64_t tag = (uint64_t)w->idx << BENCH_PROD_SHIFT;
	uint64_t seq = 0, v[W8_BURST];
	unsigned fails = 0, i;

	w->t0 = bench_now_ns();
	do {
		for (i = 0; i < W8_BURST; i++)
			v[i] = tag | (seq + i);
		if (bench_put_all(w, im, q, PUT_MC_N, v, W8_BURST, seq, &fails))
			return;
		seq += W8_BURST;
	} while (!atomic_load_explicit(&run->stop, memory_order_relaxed));
	bench_producer_done(w, seq);
}

/*
 * Consumer @idx of several, one item per call (mc_pop1) or up to W8_BURST
 * (@burst: mc_pop_n). Per producer, the sequence numbers it takes must
 * increase (a consumer's view of one producer's FIFO); counts, sums and sums
 * of squares go to mc_measure, which checks them against what was sent.
 * It leaves once every producer is done and the consumers together have
 * taken everything: each adds what it took to run->acked whenever it finds
 * the queue empty.
 */
static inline __attribute__((always_inline)) void mc_consume(struct bench_worker *w,
							     int burst)
{
	struct bench_run *run = w->run;
	const struct bench_impl *im = run->impl;
	void *q = run->q[0];
	const int max = burst ? W8_BURST : 1;
	uint64_t last[BENCH_MAX_PROD], total = 0, unflushed = 0, n = 0, v[W8_BURST];
	unsigned fails = 0, i;
	int rc;

	for (i = 0; i < BENCH_MAX_PROD; i++)
		last[i] = UINT64_MAX;
	w->t0 = bench_now_ns();
	for (;;) {
		rc = burst ? im->mc_pop_n(q, w->idx, v, W8_BURST) : im->mc_pop1(q, w->idx, v);
		if (rc > 0) {
			/* One item, or as many as mc_pop_n said (at most max). */
			const int got = burst ? rc : 1;

			if (rc > max) {
				bench_worker_fail(w, "%s: mc_pop_n returned %d of %d",
						  im->name, rc, max);
				return;
			}
			for (int k = 0; k < got; k++) {
				uint64_t p = v[k] >> BENCH_PROD_SHIFT;
				uint64_t seq = v[k] & ((1ull << BENCH_PROD_SHIFT) - 1);

				if (p >= run->nprod ||
				    (last[p] != UINT64_MAX && seq <= last[p])) {
					bench_worker_fail(w,
							  "%s: consumer %u got %" PRIu64
							  " of producer %" PRIu64
							  " after %" PRIu64,
							  im->name, w->idx, seq, p,
							  p < run->nprod ? last[p] : 0);
					return;
				}
				last[p] = seq;
				w->per[p]++;
				w->psum[p] += seq;
				w->psq[p] += seq * seq;
			}
			unflushed += (uint64_t)got;
			n += (uint64_t)got;
			fails = 0;
			continue;
		}
		if (rc < 0) {
			bench_worker_fail(w, "%s: %s failed (%d)", im->name,
					  burst ? "mc_pop_n" : "mc_pop1", rc);
			return;
		}
		if (unflushed) {
			atomic_fetch_add_explicit(&run->acked, unflushed, memory_order_relaxed);
			unflushed = 0;
		}
		if (!total && atomic_load_explicit(&run->prod_done, memory_order_acquire) ==
				      run->nprod)
			for (i = 0; i < run->nprod; i++)
				total += run->w[i].count;
		if (total &&
		    atomic_load_explicit(&run->acked, memory_order_relaxed) == total)
			break;
		if (bench_spin(run, &fails))
			return;
	}
	w->t1 = bench_now_ns();
	w->count = n;
}

static void mc_consumer(struct bench_worker *w)
{
	mc_consume(w, 0);
}

static void mc_burst_consumer(struct bench_worker *w)
{
	mc_consume(w, 1);
}

/* sum and sum of squares of 0..n-1, modulo 2^64. */
static void seq_sums(uint64_t n, uint64_t *sum, uint64_t *sq)
{
	unsigned __int128 m = n;

	*sum = (uint64_t)(m * (m - (n ? 1 : 0)) / 2);
	*sq = n ? (uint64_t)((m - 1) * m * (2 * m - 1) / 6) : 0;
}

static void mc_measure(struct bench_run *run, const struct bench_case *c, double *m)
{
	const struct bench_impl *im = run->impl;
	const char *what = run->what;
	uint64_t per[BENCH_MAX_PROD] = { 0 }, total, t0 = UINT64_MAX, t1 = 0, got = 0;
	const unsigned np = c->nprod, nc = c->ncons;
	unsigned i, j;

	run->q[0] = im->mc_create(CAPACITY, np, nc);
	if (!run->q[0])
		bench_die(1, "%s: cannot create a queue of %u slots", what,
			  (unsigned)CAPACITY);
	run->mc = 1;
	bench_run_case_threads(run, c, np, nc, 0, bench_mode.chan_tput_ns);
	for (j = 0; j < nc; j++) {
		const struct bench_worker *cw = &run->w[np + j];

		for (i = 0; i < np; i++)
			per[i] += cw->per[i];
		got += cw->count;
		t0 = cw->t0 < t0 ? cw->t0 : t0;
		t1 = cw->t1 > t1 ? cw->t1 : t1;
	}
	total = bench_check_per_producer(run, per, what);
	if (got != total)
		bench_die(1, "%s: consumed %" PRIu64 " of %" PRIu64, what, got, total);
	for (i = 0; i < np; i++) {
		uint64_t sum = 0, sq = 0, want_sum, want_sq;

		for (j = 0; j < nc; j++) {
			sum += run->w[np + j].psum[i];
			sq += run->w[np + j].psq[i];
		}
		seq_sums(run->w[i].count, &want_sum, &want_sq);
		if (sum != want_sum || sq != want_sq)
			bench_die(1,
				  "%s: producer %u: the sequence numbers taken are not "
				  "0..%" PRIu64 " once each (lost or duplicated items)",
				  what, i, run->w[i].count - 1);
	}
	im->mc_destroy(run->q[0]);
	m[0] = bench_rate_mmsg(total, t0, t1);
}

static int has_mc(const struct bench_impl *im)
{
	return im->mc_create && im->mc_destroy && im->mc_push1 && im->mc_pop1;
}

/* The burst rows need both multi-item calls: no emulation of either. */
static int has_mc_n(const struct bench_impl *im)
{
	return im->mc_create && im->mc_destroy && im->mc_push_n && im->mc_pop_n;
}

/* The calls and threads of a single-item and of a burst case. */
#define MC_SINGLE .supported = has_mc, .producer = mc_producer, .consumer = mc_consumer
#define MC_BURSTS                                                                     \
	.supported = has_mc_n, .producer = mc_burst_producer, .consumer = mc_burst_consumer
/* A case of @np producers and @nc consumers whose one row is @path in Mmsg/s. */
#define W8_CASE(path, calls, np, nc)                                                  \
	{ .label = path, .m = { { path, "Mmsg/s" } }, .measure = mc_measure, calls,   \
	  .nprod = np, .ncons = nc }

static const struct bench_case w8_cases[] = {
	W8_CASE("spmc-1x4", MC_SINGLE, 1, 4),
	W8_CASE("spmc-1x8", MC_SINGLE, 1, 8),
	W8_CASE("mpmc-4x4", MC_SINGLE, 4, 4),
	W8_CASE("spmc-1x4-burst", MC_BURSTS, 1, 4),
	W8_CASE("mpmc-4x4-bulk", MC_BURSTS, 4, 4),
};

const struct bench_workload bench_wl_w8 = {
	.id = "W8", .what = "SPMC / MPMC",
	.impl_bit = BENCH_WL_W8, .flags = BENCH_WL_NOT_QUICK, BENCH_CASES(w8_cases),
};
