/* SPDX-License-Identifier: MIT */
/*
 * W5: wake-up latency of an idle consumer. The producer waits until the
 * consumer has taken the previous message, sleeps a random 20-200 us (so
 * the consumer really goes idle: spinning, asleep on its futex or in
 * epoll_wait), then sends its bench_ticks() as the message. The consumer
 * records its own bench_ticks() minus the stamp as soon as wake_pop1
 * returns. p50 and p99 in ns, and the consumer's CPU time over its wall time.
 *
 * bench_case.arg: how the consumer waits (enum bench_wake).
 */
#include <inttypes.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <time.h>

#include "bench.h"
#include "bench_loop.h"

#define WAKE_STOP UINT64_MAX

static void w5_pause(uint64_t *rng)
{
	struct timespec ts;
	uint64_t ns;

	/* xorshift64: cheap, and no shared state with other threads. */
	*rng ^= *rng << 13;
	*rng ^= *rng >> 7;
	*rng ^= *rng << 17;
	ns = WAKE_PAUSE_MIN_NS + *rng % (WAKE_PAUSE_MAX_NS - WAKE_PAUSE_MIN_NS + 1);
	ts.tv_sec = 0;
	ts.tv_nsec = (long)ns;
	while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR)
		;
}

static void w5_producer(struct bench_worker *w)
{
	struct bench_run *run = w->run;
	const struct bench_impl *im = run->impl;
	void *q = run->q[0];
	uint64_t i, rng = 0x9e3779b97f4a7c15ull ^ bench_now_ns();
	unsigned fails = 0;
	int rc = 1;

	/* Pauses as asked for, not rounded up by the default 50 us slack. */
	prctl(PR_SET_TIMERSLACK, 1ul, 0ul, 0ul, 0ul);
	w->t0 = bench_now_ns();
	for (i = 0; i < run->max_samples &&
		    !(i && atomic_load_explicit(&run->stop, memory_order_relaxed));
	     i++) {
		while (atomic_load_explicit(&run->acked, memory_order_acquire) < i)
			if (bench_spin(run, &fails))
				goto out;
		fails = 0;
		w5_pause(&rng);
		while ((rc = im->wake_push1(q, bench_ticks())) == 0)
			if (bench_spin(run, &fails))
				goto out;
		if (rc < 0) {
			bench_worker_fail(w, "%s wake_push1 failed (%d)", im->name, rc);
			goto out;
		}
		fails = 0;
	}
	w->t1 = bench_now_ns();
	w->count = i;
out:
	/* Also after a failure: the consumer may be asleep in the library. */
	while (rc >= 0 && (rc = im->wake_push1(q, WAKE_STOP)) == 0)
		if (bench_spin(run, &fails))
			return;
}

static double thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void w5_consumer(struct bench_worker *w)
{
	struct bench_run *run = w->run;
	const struct bench_impl *im = run->impl;
	void *q = run->q[0];
	uint64_t i = 0, v, t;
	double c0 = thread_cpu_ns();
	int rc;

	w->t0 = bench_now_ns();
	for (;;) {
		rc = im->wake_pop1(q, &v);
		t = bench_ticks();
		if (rc <= 0) {
			bench_worker_fail(w, "%s wake_pop1 failed (%d)", im->name, rc);
			return;
		}
		if (v == WAKE_STOP)
			break;
		if (i == run->max_samples) {
			bench_worker_fail(w, "%s: more messages than were sent", im->name);
			return;
		}
		/* The two CPUs' TSCs may disagree by a little: count, clamp. */
		if (t < v)
			w->early++;
		run->samples[i++] = t > v ? t - v : 0;
		atomic_store_explicit(&run->acked, i, memory_order_release);
	}
	w->t1 = bench_now_ns();
	w->count = i;
	w->cpu_frac = (thread_cpu_ns() - c0) /
		      (double)(w->t1 > w->t0 ? w->t1 - w->t0 : 1);
}

/* m[0] p50, m[1] p99 (ns), m[2] the consumer's CPU time / wall time. */
static void w5_measure(struct bench_run *run, const struct bench_case *c, double *m)
{
	const struct bench_impl *im = run->impl;
	const char *what = run->what;
	double st[4];

	run->q[0] = im->wake_create(CAPACITY, c->arg);
	if (!run->q[0])
		bench_die(1, "%s: cannot create a queue of %u slots", what,
			  (unsigned)CAPACITY);
	run->samples = bench_buf.samples;
	run->max_samples = bench_mode.wake_max;
	run->may_end_early = 1;
	bench_run_case_threads(run, c, 1, 1, 1, bench_mode.wake_ns);
	if (run->w[1].count != run->w[0].count)
		bench_die(1, "%s: %" PRIu64 " sent, %" PRIu64 " received", what,
			  run->w[0].count, run->w[1].count);
	if (run->w[1].early)
		fprintf(stderr,
			"bench_ring: %s: %" PRIu64 " of %" PRIu64
			" stamps ahead of the consumer's clock (counted as 0)\n",
			what, run->w[1].early, run->w[1].count);
	bench_rt_stats(run->w[1].count, st);
	m[0] = st[0];
	m[1] = st[1];
	m[2] = run->w[1].cpu_frac;
	im->wake_destroy(run->q[0]);
}

static int has_wake(const struct bench_impl *im)
{
	return im->wake_create && im->wake_destroy && im->wake_push1 && im->wake_pop1;
}

/* p50 and p99 rows, and the consumer's CPU fraction beside them. */
#define W5_CASE(how, kind)                                                                \
	{ .label = how,                                                                   \
	  .m = { { how "-p50", "ns", BENCH_M_LOWER }, { how "-p99", "ns", BENCH_M_LOWER }, \
		 { how "-cpu", "cpu/wall", BENCH_M_LOWER | BENCH_M_AUX, "consumer_cpu",    \
		   "W5 consumer CPU time / wall time", "; consumer CPU %.3f of wall" } },  \
	  .measure = w5_measure, .supported = has_wake, .producer = w5_producer,          \
	  .consumer = w5_consumer, .arg = kind }

static const struct bench_case w5_cases[] = {
	W5_CASE("spin", BENCH_WAKE_SPIN),
	W5_CASE("futex", BENCH_WAKE_FUTEX),
	W5_CASE("epoll", BENCH_WAKE_EPOLL),
};

const struct bench_workload bench_wl_w5 = {
	.id = "W5", .what = "wake-up latency of an idle consumer",
	.impl_bit = BENCH_WL_W5, BENCH_CASES(w5_cases),
};
