/* SPDX-License-Identifier: MIT */
/*
 * W1 and W2: SPSC throughput on one queue from create, producer on CPU A,
 * consumer on CPU B, for a fixed time (the producer stops at the flag, the
 * consumer drains the exact total; the rate is the consumer's).
 *
 *   W1  single: push1/pop1 (the exported calls when the adapter has them),
 *       every value checked                                    Mmsg/s
 *   W2  copy: push_n/pop_n of BATCH; zero-copy: zc_produce/zc_consume;
 *       every value and the sum checked                   GB/s, Mmsg/s
 *
 * bench_case.arg: 1 for W2 (batches: checksum, and GB/s before Mmsg/s).
 */
#include <inttypes.h>

#include "bench.h"
#include "bench_loop.h"

/* W1: one item per call; through the exported call itself when @ex is set
 * (a compile-time constant in each of w1_producer's two expansions). */
static inline __attribute__((always_inline)) void w1_produce(struct bench_worker *w,
							     const struct bench_ex *ex)
{
	struct bench_run *run = w->run;
	const struct bench_impl *im = run->impl;
	void *q = run->q[0];
	uint64_t seq = 0;
	unsigned fails = 0;
	int rc;

	w->t0 = bench_now_ns();
	while (!bench_stopped(run, seq)) {
		while ((rc = ex ? bench_ex_result(ex->push1(q, &seq)) : im->push1(q, seq)) == 0)
			if (bench_spin(run, &fails))
				return;
		if (rc < 0) {
			bench_worker_fail(w, "%s push1 failed (%d)", im->name, rc);
			return;
		}
		fails = 0;
		seq++;
	}
	bench_producer_done(w, seq);
}

static void w1_producer(struct bench_worker *w)
{
	const struct bench_ex *ex = bench_ex_of(w->run->impl);

	if (ex)
		w1_produce(w, ex);
	else
		w1_produce(w, NULL);
}

static void w1_consumer(struct bench_worker *w)
{
	if (bench_ex_of(w->run->impl))
		bench_consume(w, TAKE_EX);
	else
		bench_consume(w, TAKE_ONE);
}

/* W2: BATCH consecutive values per batch, pushed until all are in. */
static void w2_producer(struct bench_worker *w, int zero_copy)
{
	struct bench_run *run = w->run;
	const struct bench_impl *im = run->impl;
	void *q = run->q[0];
	uint64_t base = 0;
	unsigned fails = 0;

	w->t0 = bench_now_ns();
	do {
		/* The copying producer builds its batch in its own buffer,
		 * then the queue copies it; zero-copy writes in place. */
		if (!zero_copy)
			bench_fill(w->buf, BATCH, base);
		if (bench_put_all(w, im, q, zero_copy ? PUT_ZC : PUT_COPY, w->buf, BATCH, base,
				  &fails))
			return;
		base += BATCH;
	} while (!atomic_load_explicit(&run->stop, memory_order_relaxed));
	bench_producer_done(w, base);
}

static void w2_producer_copy(struct bench_worker *w)
{
	w2_producer(w, 0);
}

static void w2_producer_zc(struct bench_worker *w)
{
	w2_producer(w, 1);
}

static void w2_consumer_copy(struct bench_worker *w)
{
	bench_consume(w, TAKE_COPY);
}

static void w2_consumer_zc(struct bench_worker *w)
{
	bench_consume(w, TAKE_ZC);
}

static void spsc_measure(struct bench_run *run, const struct bench_case *c, double *m)
{
	const struct bench_impl *im = run->impl;
	const char *what = run->what;

	run->q[0] = bench_create_or_die(im);
	bench_run_case_threads(run, c, 1, 1, 1,
			       im->flags & BENCH_F_CALL ? bench_mode.call_tput_ns
							: bench_mode.tput_ns);
	if (run->w[1].count != run->w[0].count)
		bench_die(1, "%s: produced %" PRIu64 ", consumed %" PRIu64, what,
			  run->w[0].count, run->w[1].count);
	m[0] = bench_rate_mmsg(run->w[1].count, run->w[1].t0, run->w[1].t1);
	if (c->arg) {
		uint64_t n = run->w[1].count;
		/* 0 + 1 + ... + (n - 1), modulo 2^64. */
		uint64_t want = n % 2 ? (n - 1) / 2 * n : n / 2 * (n - 1);

		if (run->w[1].sum != want)
			bench_die(1, "%s: checksum %" PRIu64 ", expected %" PRIu64, what,
				  run->w[1].sum, want);
		m[1] = m[0];				 /* Mmsg/s */
		m[0] = m[1] * sizeof(uint64_t) / 1000.0; /* GB/s */
	}
	im->destroy(run->q[0]);
}

static int has_zc(const struct bench_impl *im)
{
	return im->zc_produce && im->zc_consume;
}

static const struct bench_case w1_cases[] = {
	{ .label = "single", .m = { { "single", "Mmsg/s", BENCH_M_CALL } },
	  .measure = spsc_measure, .producer = w1_producer, .consumer = w1_consumer },
};

const struct bench_workload bench_wl_w1 = {
	.id = "W1", .what = "SPSC ring, one item per call",
	.impl_bit = BENCH_WL_W1, BENCH_CASES(w1_cases),
};

/* GB/s, and the same figure in Mmsg/s (the JSON record's "mmsg_s"). */
#define W2_CASE(path, prod, cons, needs)                                                  \
	{ .label = path,                                                                  \
	  .m = { { path, "GB/s", BENCH_M_MEMSET }, { path, "Mmsg/s", BENCH_M_TWIN, "mmsg_s" } }, \
	  .measure = spsc_measure, .supported = needs, .producer = prod, .consumer = cons, \
	  .arg = 1 }

static const struct bench_case w2_cases[] = {
	W2_CASE("copy", w2_producer_copy, w2_consumer_copy, NULL),
	W2_CASE("zero-copy", w2_producer_zc, w2_consumer_zc, has_zc),
};

const struct bench_workload bench_wl_w2 = {
	.id = "W2", .what = "SPSC ring, batches",
	.impl_bit = BENCH_WL_W2, .flags = BENCH_WL_BEST_PATH, BENCH_CASES(w2_cases),
};
