/* SPDX-License-Identifier: MIT */
/*
 * W8: several consumers. 1 producer x 4 consumers (SPMC) and 4 x 4 (MPMC),
 * single items through mc_push1 / mc_pop1, every thread unpinned (more
 * threads than CPUs: the scheduler shares them out). Mmsg/s over the span
 * from the first consumer's start to the last one's end.
 *
 * Every consumer checks that each producer's sequence numbers increase in
 * what it takes; at the end the consumers' counts, sums and sums of squares
 * per producer must be those of 0..n-1 for the n the producer sent.
 */
#include <inttypes.h>

#include "bench.h"
#include "bench_loop.h"

/* The W3 producer's loop on mc_push1 (run->mc). */
static void mc_producer(struct bench_worker *w)
{
	bench_tagged_produce(w, NULL);
}

/*
 * Consumer @idx of several. Per producer, the sequence numbers it takes
 * must increase (a consumer's view of one producer's FIFO); counts, sums and
 * sums of squares go to mc_measure, which checks them against what was sent.
 * It leaves once every producer is done and the consumers together have
 * taken everything: each adds what it took to run->acked whenever it finds
 * the queue empty.
 */
static void mc_consumer(struct bench_worker *w)
{
	struct bench_run *run = w->run;
	const struct bench_impl *im = run->impl;
	void *q = run->q[0];
	uint64_t last[BENCH_MAX_PROD], total = 0, unflushed = 0, n = 0, v;
	unsigned fails = 0, i;
	int rc;

	for (i = 0; i < BENCH_MAX_PROD; i++)
		last[i] = UINT64_MAX;
	w->t0 = bench_now_ns();
	for (;;) {
		rc = im->mc_pop1(q, w->idx, &v);
		if (rc > 0) {
			uint64_t p = v >> BENCH_PROD_SHIFT;
			uint64_t seq = v & ((1ull << BENCH_PROD_SHIFT) - 1);

			if (p >= run->nprod || (last[p] != UINT64_MAX && seq <= last[p])) {
				bench_worker_fail(w,
						  "%s: consumer %u got %" PRIu64
						  " of producer %" PRIu64 " after %" PRIu64,
						  im->name, w->idx, seq, p,
						  p < run->nprod ? last[p] : 0);
				return;
			}
			last[p] = seq;
			w->per[p]++;
			w->psum[p] += seq;
			w->psq[p] += seq * seq;
			unflushed++;
			n++;
			fails = 0;
			continue;
		}
		if (rc < 0) {
			bench_worker_fail(w, "%s: mc_pop1 failed (%d)", im->name, rc);
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

#define W8_CASE(path, np, nc)                                                        \
	{ .label = path, .m = { { path, "Mmsg/s" } }, .measure = mc_measure,          \
	  .supported = has_mc, .producer = mc_producer, .consumer = mc_consumer,      \
	  .nprod = np, .ncons = nc }

static const struct bench_case w8_cases[] = {
	W8_CASE("spmc-1x4", 1, 4),
	W8_CASE("mpmc-4x4", 4, 4),
};

const struct bench_workload bench_wl_w8 = {
	.id = "W8", .what = "SPMC / MPMC",
	.impl_bit = BENCH_WL_W8, .flags = BENCH_WL_NOT_QUICK, BENCH_CASES(w8_cases),
};
