/* SPDX-License-Identifier: MIT */
/*
 * W4: the ping-pong round trip. One item bounces through two queues from
 * create: thread A pushes i into the first and waits for i + 1 on the
 * second, thread B echoes. Every round trip is timed on its own with
 * bench_ticks(); p50 (grouped median), p99, min and the middle sample, in ns,
 * also as multiples of LIM's cache-line round trip.
 */
#include <inttypes.h>

#include "bench.h"
#include "bench_loop.h"

#define PING_STOP UINT64_MAX

/*
 * W4's wait for the item: inside the implementation when it has pop1_wait,
 * else the common pop1 + spin loop. pop1's result, or 0 when the run was
 * aborted.
 */
static inline int w4_pop(struct bench_run *run, const struct bench_impl *im, void *q,
			 uint64_t *v, unsigned *fails)
{
	const struct bench_ex *ex = bench_ex_of(im);
	int rc;

	if (im->pop1_wait)
		return im->pop1_wait(q, v);
	while ((rc = ex ? bench_ex_result(ex->pop1(q, v)) : im->pop1(q, v)) == 0)
		if (bench_spin(run, fails))
			return 0;
	*fails = 0;
	return rc;
}

/* W4's push: the exported call when the implementation has one. */
static inline int w4_push(const struct bench_impl *im, void *q, uint64_t v)
{
	const struct bench_ex *ex = bench_ex_of(im);

	return ex ? bench_ex_result(ex->push1(q, &v)) : im->push1(q, v);
}

/* Neither queue ever holds more than one item, so a push never waits. */
static void w4_ping(struct bench_worker *w)
{
	struct bench_run *run = w->run;
	const struct bench_impl *im = run->impl;
	void *there = run->q[0], *back = run->q[1];
	unsigned fails = 0;
	uint64_t i, v = 0;
	int rc;

	w->t0 = bench_now_ns();
	for (i = 0; i < run->max_samples && !bench_stopped(run, i); i++) {
		uint64_t t0 = bench_ticks(), t1;

		while ((rc = w4_push(im, there, i)) == 0)
			if (bench_spin(run, &fails))
				return;
		fails = 0;
		if (rc > 0 && (rc = w4_pop(run, im, back, &v, &fails)) == 0)
			return;
		t1 = bench_ticks();
		if (rc < 0) {
			bench_worker_fail(w, "%s push1/pop1 failed (%d)", im->name, rc);
			return;
		}
		if (v != i + 1) {
			bench_worker_fail(w, "%s: reply %" PRIu64 " to %" PRIu64, im->name,
					  v, i);
			return;
		}
		run->samples[i] = t1 - t0;
	}
	w->t1 = bench_now_ns();
	w->count = i;
	while ((rc = w4_push(im, there, PING_STOP)) == 0)
		if (bench_spin(run, &fails))
			return;
}

static void w4_pong(struct bench_worker *w)
{
	struct bench_run *run = w->run;
	const struct bench_impl *im = run->impl;
	void *there = run->q[0], *back = run->q[1];
	unsigned fails = 0;
	uint64_t expect = 0, v;
	int rc;

	for (;;) {
		if ((rc = w4_pop(run, im, there, &v, &fails)) == 0)
			return;
		if (rc < 0) {
			bench_worker_fail(w, "%s pop1 failed (%d)", im->name, rc);
			return;
		}
		if (v == PING_STOP)
			break;
		if (v != expect) {
			bench_worker_fail(w, "%s: ping %" PRIu64 ", expected %" PRIu64,
					  im->name, v, expect);
			return;
		}
		expect++;
		while ((rc = w4_push(im, back, v + 1)) == 0)
			if (bench_spin(run, &fails))
				return;
		fails = 0;
		if (rc < 0) {
			bench_worker_fail(w, "%s push1 failed (%d)", im->name, rc);
			return;
		}
	}
	w->count = expect;
}

static void w4_measure(struct bench_run *run, const struct bench_case *c, double *m)
{
	const struct bench_impl *im = run->impl;

	run->q[0] = bench_create_or_die(im);
	run->q[1] = bench_create_or_die(im);
	run->samples = bench_buf.samples;
	run->max_samples = bench_mode.lat_max;
	bench_run_case_threads(run, c, 1, 1, 1,
			       im->flags & BENCH_F_CALL ? bench_mode.call_lat_ns
							: bench_mode.lat_ns);
	if (run->w[1].count != run->w[0].count)
		bench_die(1, "%s: %" PRIu64 " pings, %" PRIu64 " pongs", run->what,
			  run->w[0].count, run->w[1].count);
	bench_rt_stats(run->w[0].count, m);
	im->destroy(run->q[0]);
	im->destroy(run->q[1]);
}

static const struct bench_case w4_cases[] = {
	{ .label = "pingpong",
	  .m = { { "p50", "ns", BENCH_M_LOWER | BENCH_M_RT | BENCH_M_RT_SUMMARY | BENCH_M_CALL },
		 { "p99", "ns", BENCH_M_LOWER | BENCH_M_RT },
		 { "min", "ns", BENCH_M_LOWER | BENCH_M_RT | BENCH_M_RT_SUMMARY },
		 /* The middle sample itself: p50's former estimator. */
		 { "p50-step", "ns",
		   BENCH_M_LOWER | BENCH_M_RT | BENCH_M_RT_SUMMARY | BENCH_M_NO_GLANCE } },
	  .measure = w4_measure, .producer = w4_ping, .consumer = w4_pong },
};

const struct bench_workload bench_wl_w4 = {
	.id = "W4", .what = "ping-pong round trip",
	.impl_bit = BENCH_WL_W4, BENCH_CASES(w4_cases),
};
