/* SPDX-License-Identifier: MIT */
/*
 * W3, W6 and W7: several producers, one consumer. Values carry the
 * producer index (index << BENCH_PROD_SHIFT | sequence); the consumer checks
 * each producer's FIFO order and, at the end, each producer's count.
 *
 *   W3  2 producers, single items, pinned (both on CPU A, the consumer on
 *       CPU B) and unpinned (the scheduler places all three)      Mmsg/s
 *   W6  the MPSC channel with 1, 2, 4, 8 producers on CPU A, single items
 *       and batches of W6_BATCH (mp_push_n / mp_pop_n)           Mmsg/s
 *   W7  1 active producer and W7_IDLE registered ones that never send,
 *       adaptive skip on and off; the consumer's polls per message
 *
 * bench_case.arg: MP_* bits.
 */
#include <inttypes.h>
#include <stdio.h>

#include "bench.h"
#include "bench_loop.h"

enum {
	MP_UNPINNED = 1u << 0, /* every thread on any CPU (W3 unpinned) */
	MP_NOSKIP = 1u << 1,   /* W7: BENCH_MP_NOSKIP */
};

static void tagged_producer(struct bench_worker *w)
{
	const struct bench_ex *ex = bench_exmp_of(w->run);

	if (ex)
		bench_tagged_produce(w, ex);
	else
		bench_tagged_produce(w, NULL);
}

/* W6 batch: W6_BATCH tagged values per batch through mp_push_n. */
static void batch_producer(struct bench_worker *w)
{
	struct bench_run *run = w->run;
	const struct bench_impl *im = run->impl;
	void *q = run->q[0];
	const uint64_t tag = (uint64_t)w->idx << BENCH_PROD_SHIFT;
	uint64_t seq = 0, v[W6_BATCH];
	unsigned fails = 0, i;

	w->t0 = bench_now_ns();
	do {
		for (i = 0; i < W6_BATCH; i++)
			v[i] = tag | (seq + i);
		if (bench_put_all(w, im, q, PUT_MP_N, v, W6_BATCH, seq, &fails))
			return;
		seq += W6_BATCH;
	} while (!atomic_load_explicit(&run->stop, memory_order_relaxed));
	bench_producer_done(w, seq);
}

static void single_consumer(struct bench_worker *w)
{
	if (bench_exmp_of(w->run))
		bench_consume(w, TAKE_EXMP);
	else
		bench_consume(w, TAKE_MP);
}

static void batch_consumer(struct bench_worker *w)
{
	bench_consume(w, TAKE_MP_N);
}

/*
 * c->nprod producers pinned to one CPU, the consumer on the other (however
 * many producers, the consumer's CPU is its own), unless MP_UNPINNED lets
 * the scheduler place them all; for @duration_ns. With @idle, that many
 * more registered producers that never send (mp_create_idle), and m[1] the
 * consumer's polls per message. m[0]: Mmsg/s.
 */
static void mp_measure(struct bench_run *run, const struct bench_case *c, double *m,
		       uint64_t duration_ns, unsigned idle)
{
	const struct bench_impl *im = run->impl;
	const struct bench_worker *cw = &run->w[c->nprod];
	const char *what = run->what;
	uint64_t total;

	if (idle)
		run->q[0] = im->mp_create_idle(CAPACITY, c->nprod, idle,
					       c->arg & MP_NOSKIP ? BENCH_MP_NOSKIP : 0u);
	else
		run->q[0] = im->mp_create(CAPACITY, c->nprod);
	if (!run->q[0])
		bench_die(1, "%s: cannot create a queue of %u slots for %u producers", what,
			  (unsigned)CAPACITY, c->nprod);
	bench_run_case_threads(run, c, c->nprod, 1, !(c->arg & MP_UNPINNED), duration_ns);
	total = bench_check_per_producer(run, cw->per, what);
	if (cw->count != total)
		bench_die(1, "%s: consumed %" PRIu64 " of %" PRIu64, what, cw->count, total);
	m[0] = bench_rate_mmsg(cw->count, cw->t0, cw->t1);
	if (idle) {
		int64_t n = im->mp_polls(run->q[0]);

		if (n < 0)
			bench_die(1, "%s: no poll count", what);
		m[1] = (double)n / (double)(total ? total : 1);
	}
	im->mp_destroy(run->q[0]);
}

static void w3_measure(struct bench_run *run, const struct bench_case *c, double *m)
{
	mp_measure(run, c, m, bench_mode.tput_ns, 0);
}

static void w6_measure(struct bench_run *run, const struct bench_case *c, double *m)
{
	mp_measure(run, c, m, bench_mode.chan_tput_ns, 0);
}

static void w7_measure(struct bench_run *run, const struct bench_case *c, double *m)
{
	mp_measure(run, c, m, bench_mode.chan_tput_ns, W7_IDLE);
}

static int has_mp(const struct bench_impl *im)
{
	return im->mp_create && im->mp_destroy && im->mp_push1 && im->mp_pop1;
}

static int has_mp_n(const struct bench_impl *im)
{
	return im->mp_create && im->mp_destroy && im->mp_push_n && im->mp_pop_n;
}

static int has_mp_idle(const struct bench_impl *im)
{
	return im->mp_create_idle && im->mp_polls && im->mp_destroy && im->mp_push1 &&
	       im->mp_pop_n;
}

/* The calls and threads of a single-item and of a batch case. */
#define MP_SINGLE .supported = has_mp, .producer = tagged_producer, .consumer = single_consumer
#define MP_BATCH  .supported = has_mp_n, .producer = batch_producer, .consumer = batch_consumer
/* A case of @np producers whose one row is @path in Mmsg/s. */
#define MP_CASE(path, measure_fn, calls, np, flags)                                    \
	{ .label = path, .m = { { path, "Mmsg/s" } }, .measure = measure_fn, calls,     \
	  .nprod = np, .ncons = 1, .arg = flags }

static const struct bench_case w3_cases[] = {
	MP_CASE("pinned", w3_measure, MP_SINGLE, 2, 0),
	MP_CASE("unpinned", w3_measure, MP_SINGLE, 2, MP_UNPINNED),
};

const struct bench_workload bench_wl_w3 = {
	.id = "W3", .what = "MPSC channel, 2 producers",
	.impl_bit = BENCH_WL_W3, BENCH_CASES(w3_cases),
};

static const struct bench_case w6_cases[] = {
	MP_CASE("1p-single", w6_measure, MP_SINGLE, 1, 0),
	MP_CASE("2p-single", w6_measure, MP_SINGLE, 2, 0),
	MP_CASE("4p-single", w6_measure, MP_SINGLE, 4, 0),
	MP_CASE("8p-single", w6_measure, MP_SINGLE, 8, 0),
	MP_CASE("1p-batch", w6_measure, MP_BATCH, 1, 0),
	MP_CASE("2p-batch", w6_measure, MP_BATCH, 2, 0),
	MP_CASE("4p-batch", w6_measure, MP_BATCH, 4, 0),
	MP_CASE("8p-batch", w6_measure, MP_BATCH, 8, 0),
};

const struct bench_workload bench_wl_w6 = {
	.id = "W6", .what = "MPSC channel, 1-8 producers",
	.impl_bit = BENCH_WL_W6, .flags = BENCH_WL_NOT_QUICK, BENCH_CASES(w6_cases),
};

/* W6 1p-batch's consumer and W3's producer, with W7_IDLE more producers
 * registered; the consumer's polls per message beside the rate. */
#define W7_CASE(path, flags)                                                          \
	{ .label = path,                                                              \
	  .m = { { path, "Mmsg/s" },                                                  \
		 { path "-polls", "polls/msg", BENCH_M_LOWER | BENCH_M_AUX, "polls_per_msg", \
		   "W7 consumer polls (ring looks) per message", "; %.2f polls/msg" } },   \
	  .measure = w7_measure, .supported = has_mp_idle, .producer = tagged_producer, \
	  .consumer = batch_consumer, .nprod = 1, .ncons = 1, .arg = flags }

static const struct bench_case w7_cases[] = {
	W7_CASE("skip", 0),
	W7_CASE("noskip", MP_NOSKIP),
};

static const struct bench_pair w7_pair = {
	.json = "adaptive_skip",
	.label = "adaptive skip",
	.a = "skip",
	.b = "noskip",
	.b_label = "without",
};

const struct bench_workload bench_wl_w7 = {
	.id = "W7", .what = "MPSC channel, 32 producers, 1 sending",
	.impl_bit = BENCH_WL_W7, .flags = BENCH_WL_NOT_QUICK, BENCH_CASES(w7_cases),
	.pair = &w7_pair,
};
