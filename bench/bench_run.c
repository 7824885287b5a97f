/* SPDX-License-Identifier: MIT */
/*
 * bench_run.c: the runner. It turns the selected workloads and
 * implementations into cases (one path of one workload for one
 * implementation) and the series they fill, runs the cases in interleaved
 * rounds with a cache-line round-trip probe around every repetition,
 * repeats a repetition that a probe shows in a slow episode while the time
 * budget allows, and starts and watches every repetition's threads.
 *
 * What a repetition does is the workload's (bench_case.measure, in
 * wl_<family>.c); the runner knows workloads only through their table.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "bench_loop.h"
#include "bench_stats.h"

enum {
	MAX_RETRY = 3,	      /* repeats of one repetition after a slow probe */
	RT_WARM = 64,	      /* round trips dropped at the start of a run */
	PROBE_MAX_RT = 20000, /* a probe stops at this many round trips... */
};

#define PROBE_SLOW_FACTOR 2.0	/* ...and is slow above 2x the lowest... */
#define PROBE_SLOW_NS	  250.0 /* ...and above this */
#define STALL_NS	  (60ull * 1000000000ull)
#define RT_STOP		  UINT64_MAX

struct bench_mode bench_mode;
int bench_verbose;
int bench_no_ex;
uint64_t bench_start_ns;
struct bench_buffers bench_buf;
struct bench_series *bench_series;
unsigned bench_nseries;
struct bench_probes bench_probes = { .lowest = 1e300 };

/* ------------------------------------------------------------------------ */
/* Small utilities                                                          */
/* ------------------------------------------------------------------------ */

void bench_die(int code, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "bench_ring: %s: ", code == 1 ? "FAILED" : "error");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

void *bench_xalloc(size_t align, size_t size)
{
	void *p;

	size = (size + align - 1) / align * align;
	p = aligned_alloc(align, size);
	if (!p)
		bench_die(1, "out of memory (%zu bytes)", size);
	memset(p, 0, size);
	return p;
}

uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void bench_sleep_ns(uint64_t ns)
{
	struct timespec ts = {
		.tv_sec = (time_t)(ns / 1000000000ull),
		.tv_nsec = (long)(ns % 1000000000ull),
	};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

double bench_median_of(const double *v, unsigned n)
{
	double *s;
	double m;

	if (!n)
		return 0.0;
	s = bench_xalloc(8, n * sizeof *s);
	memcpy(s, v, n * sizeof *s);
	qsort(s, n, sizeof *s, bench_cmp_double);
	m = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2.0;
	free(s);
	return m;
}

/* ------------------------------------------------------------------------ */
/* Threads                                                                  */
/* ------------------------------------------------------------------------ */

static struct bench_run *run_new(void)
{
	struct bench_run *run = bench_xalloc(128, sizeof *run);

	atomic_init(&run->go, 0);
	atomic_init(&run->stop, 0);
	atomic_init(&run->abort, 0);
	atomic_init(&run->prod_done, 0);
	atomic_init(&run->acked, 0);
	atomic_init(&run->ready, 0);
	atomic_init(&run->finished, 0);
	return run;
}

void bench_worker_fail(struct bench_worker *w, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(w->msg, sizeof w->msg, fmt, ap);
	va_end(ap);
	w->failed = 1;
	/* Release: bench_run_threads() reads msg after seeing the flag. */
	atomic_store_explicit(&w->run->abort, 1, memory_order_release);
}

void bench_producer_done(struct bench_worker *w, uint64_t count)
{
	w->count = count;
	w->t1 = bench_now_ns();
	/* Publishes the count and, through the queue's own ordering, every
	 * item pushed before it. */
	atomic_fetch_add_explicit(&w->run->prod_done, 1, memory_order_release);
}

static void *worker_main(void *arg)
{
	struct bench_worker *w = arg;
	struct bench_run *run = w->run;
	unsigned fails = 0;

	atomic_fetch_add_explicit(&run->ready, 1, memory_order_relaxed);
	while (!atomic_load_explicit(&run->go, memory_order_acquire))
		if (bench_spin(run, &fails))
			goto out;
	w->fn(w);
out:
	atomic_fetch_add_explicit(&run->finished, 1, memory_order_release);
	return NULL;
}

static void spawn(struct bench_worker *w)
{
	pthread_attr_t attr;
	cpu_set_t set;
	int err;

	if (pthread_attr_init(&attr))
		bench_die(1, "pthread_attr_init failed");
	if (bench_host.pin_ok && w->cpu >= 0) {
		CPU_ZERO(&set);
		CPU_SET(w->cpu, &set);
	} else {
		set = bench_host.allowed_cpus;
	}
	if (CPU_COUNT(&set))
		pthread_attr_setaffinity_np(&attr, sizeof set, &set);
	err = pthread_create(&w->tid, &attr, worker_main, w);
	if (err == EINVAL && bench_host.pin_ok && w->cpu >= 0) {
		/* The CPU went away (hotplug, cgroup change): go on unpinned. */
		fprintf(stderr, "bench_ring: cannot pin to CPU %d; running unpinned\n",
			w->cpu);
		bench_host.pin_ok = 0;
		pthread_attr_destroy(&attr);
		pthread_attr_init(&attr);
		err = pthread_create(&w->tid, &attr, worker_main, w);
	}
	pthread_attr_destroy(&attr);
	if (err)
		bench_die(1, "pthread_create: %s", strerror(err));
}

/* The message of the first worker that failed, or NULL. */
static const char *failure(const struct bench_run *run, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++)
		if (run->w[i].failed)
			return run->w[i].msg;
	return NULL;
}

/*
 * Start @n workers together, let them run for @duration_ns (less when
 * run->may_end_early and they are done before), raise the stop flag and wait
 * for them to finish. A run that does not finish within STALL_NS of the stop
 * (a lost message keeps a consumer waiting forever) or a worker that found a
 * wrong value is a hard failure. A worker that fails while its peer waits
 * inside a blocking call (which never looks at the abort flag) is reported
 * after a second, not after STALL_NS.
 */
void bench_run_threads(struct bench_run *run, unsigned n, uint64_t duration_ns)
{
	const char *what = run->what;
	uint64_t deadline, fail_at = 0;
	unsigned i;

	for (i = 0; i < n; i++) {
		run->w[i].run = run;
		spawn(&run->w[i]);
	}
	deadline = bench_now_ns() + STALL_NS;
	while (atomic_load_explicit(&run->ready, memory_order_relaxed) < n) {
		if (bench_now_ns() > deadline)
			bench_die(1, "%s: threads did not start within 60 s", what);
		bench_sleep_ns(50000);
	}
	atomic_store_explicit(&run->go, 1, memory_order_release);
	if (run->may_end_early) {
		/* Wake-ups of this thread are rare against what the workload
		 * itself sleeps (W5); a throughput run sleeps in one piece. */
		uint64_t end = bench_now_ns() + duration_ns;

		while (atomic_load_explicit(&run->finished, memory_order_acquire) < n &&
		       bench_now_ns() < end)
			bench_sleep_ns(5 * MS);
	} else {
		bench_sleep_ns(duration_ns);
	}
	atomic_store_explicit(&run->stop, 1, memory_order_relaxed);
	deadline = bench_now_ns() + STALL_NS;
	while (atomic_load_explicit(&run->finished, memory_order_acquire) < n) {
		if (!fail_at && atomic_load_explicit(&run->abort, memory_order_acquire))
			fail_at = bench_now_ns() + 1000 * MS;
		if (fail_at && bench_now_ns() > fail_at && failure(run, n))
			bench_die(1, "%s: %s", what, failure(run, n));
		if (bench_now_ns() > deadline) {
			atomic_store_explicit(&run->abort, 1, memory_order_relaxed);
			bench_sleep_ns(5000 * MS);
			bench_die(1,
				  "%s: not finished 60 s after the stop: messages lost or "
				  "a queue deadlocked",
				  what);
		}
		bench_sleep_ns(MS);
	}
	for (i = 0; i < n; i++)
		pthread_join(run->w[i].tid, NULL);
	if (failure(run, n))
		bench_die(1, "%s: %s", what, failure(run, n));
	if (atomic_load_explicit(&run->abort, memory_order_relaxed))
		bench_die(1, "%s: aborted", what);
}

/*
 * The usual layout: @np producers (c->producer, indices 0..np-1) on CPU A
 * and @nc consumers (c->consumer, indices 0..nc-1) on CPU B, or all on any
 * CPU when @pin is 0; producers get the producer copy buffer, consumers the
 * consumer one. Runs them as bench_run_threads() does.
 */
void bench_run_case_threads(struct bench_run *run, const struct bench_case *c,
			    unsigned np, unsigned nc, int pin, uint64_t duration_ns)
{
	unsigned i;

	run->nprod = np;
	run->ncons = nc;
	for (i = 0; i < np + nc; i++) {
		struct bench_worker *w = &run->w[i];
		const int prod = i < np;

		w->fn = prod ? c->producer : c->consumer;
		w->idx = prod ? i : i - np;
		w->cpu = !pin ? -1 : prod ? bench_host.cpu_a : bench_host.cpu_b;
		w->buf = prod ? bench_buf.pbuf : bench_buf.cbuf;
	}
	bench_run_threads(run, np + nc, duration_ns);
}

/* ------------------------------------------------------------------------ */
/* What the measure functions share                                         */
/* ------------------------------------------------------------------------ */

void *bench_create_or_die(const struct bench_impl *im)
{
	void *q = im->create(CAPACITY);

	if (!q)
		bench_die(1, "%s: cannot create a queue of %u slots", im->name,
			  (unsigned)CAPACITY);
	return q;
}

double bench_rate_mmsg(uint64_t items, uint64_t t0, uint64_t t1)
{
	uint64_t dt = t1 > t0 ? t1 - t0 : 1;

	return (double)items * 1e3 / (double)dt;
}

/*
 * Percentiles of samples[RT_WARM..n) in ns: out[0] p50, interpolated within
 * the timer's step (bench_median_grouped(), bench_stats.h); out[1] p99;
 * out[2] min; out[3] the middle sample itself (p50 in whole timer steps).
 */
void bench_rt_stats(uint64_t n, double *out)
{
	uint64_t *s = bench_buf.samples, m;

	if (n > RT_WARM * 4) {
		s += RT_WARM;
		n -= RT_WARM;
	}
	if (!n)
		bench_die(1, "no round trips measured");
	qsort(s, n, sizeof *s, bench_cmp_u64);
	m = n * 99 / 100;
	out[0] = bench_median_grouped(s, n) / bench_tsc_per_ns;
	out[1] = bench_ticks_to_ns(s[m < n ? m : n - 1]);
	out[2] = bench_ticks_to_ns(s[0]);
	out[3] = bench_ticks_to_ns(s[n / 2]);
}

/* Producer i sent w[i].count items: the consumer (*per) took as many. */
uint64_t bench_check_per_producer(const struct bench_run *run, const uint64_t *per,
				  const char *what)
{
	uint64_t total = 0;
	unsigned i;

	for (i = 0; i < run->nprod; i++) {
		if (per[i] != run->w[i].count)
			bench_die(1,
				  "%s: producer %u sent %" PRIu64 ", consumers got %" PRIu64,
				  what, i, run->w[i].count, per[i]);
		total += run->w[i].count;
	}
	return total;
}

/* ------------------------------------------------------------------------ */
/* The cache-line round trip: LIM cacheline-rt and the probes               */
/* ------------------------------------------------------------------------ */

/* One u64 in one line: odd values go there, even values come back. Same
 * timer and spin policy as W4. */
static void rt_ping(struct bench_worker *w)
{
	struct bench_run *run = w->run;
	_Atomic uint64_t *x = run->line;
	unsigned fails = 0;
	uint64_t i;

	for (i = 0; i < run->max_samples && !bench_stopped(run, i); i++) {
		uint64_t t0 = bench_ticks(), t1;

		atomic_store_explicit(x, 2 * i + 1, memory_order_release);
		while (atomic_load_explicit(x, memory_order_acquire) != 2 * i + 2)
			if (bench_spin(run, &fails))
				return;
		t1 = bench_ticks();
		fails = 0;
		run->samples[i] = t1 - t0;
	}
	w->count = i;
	atomic_store_explicit(x, RT_STOP, memory_order_release);
}

static void rt_pong(struct bench_worker *w)
{
	struct bench_run *run = w->run;
	_Atomic uint64_t *x = run->line;
	unsigned fails = 0;

	for (;;) {
		uint64_t v = atomic_load_explicit(x, memory_order_acquire);

		if (v == RT_STOP)
			break;
		if (v & 1) {
			atomic_store_explicit(x, v + 1, memory_order_release);
			fails = 0;
		} else if (bench_spin(run, &fails)) {
			return;
		}
	}
}

/* Raw round trip: p50 in ns. */
double bench_measure_rt(uint64_t duration_ns, uint64_t max_rt, const char *what)
{
	struct bench_run *run = run_new();
	double st[4];

	atomic_store_explicit(bench_buf.line, 0, memory_order_relaxed);
	run->line = bench_buf.line;
	run->samples = bench_buf.samples;
	run->max_samples = max_rt;
	run->w[0].fn = rt_ping;
	run->w[0].cpu = bench_host.cpu_a;
	run->w[1].fn = rt_pong;
	run->w[1].cpu = bench_host.cpu_b;
	run->what = what;
	bench_run_threads(run, 2, duration_ns);
	bench_rt_stats(run->w[0].count, st);
	free(run);
	return st[0];
}

/* ------------------------------------------------------------------------ */
/* Cases                                                                    */
/* ------------------------------------------------------------------------ */

/* One case: one path of one workload for one implementation. */
struct bcase {
	const struct bench_workload *wl;
	const struct bench_case *c;
	const struct bench_impl *im; /* NULL: a machine workload */
	struct bench_series *s[BENCH_MAX_METRICS];
	unsigned done;	  /* repetitions kept so far */
	uint64_t last_ns; /* the last attempt, with its "after" probe */
};

static struct bcase *cases;
static unsigned ncases;
/* The selection, in table order. */
static const struct bench_workload *const *sel_wl;
static unsigned nsel_wl;
static const struct bench_impl *const *sel_im;
static unsigned nsel_im;

void bench_alloc_buffers(void)
{
	const struct bench_mode *m = &bench_mode;
	const uint64_t nsamples = m->lat_max > m->rt_max ? m->lat_max : m->rt_max;

	bench_buf.samples = bench_xalloc(64, nsamples * sizeof *bench_buf.samples);
	bench_buf.pbuf = bench_xalloc(64, BATCH * sizeof *bench_buf.pbuf);
	bench_buf.cbuf = bench_xalloc(64, BATCH * sizeof *bench_buf.cbuf);
	bench_buf.line = bench_xalloc(128, 128);
	bench_buf.mbuf = bench_xalloc(64, bench_host.l2_size);
}

static unsigned case_nm(const struct bench_case *c)
{
	unsigned n = 0;

	while (n < BENCH_MAX_METRICS && c->m[n].path)
		n++;
	return n;
}

/* Whether case @c of @wl runs for @im (NULL: the machine). */
static int case_runs(const struct bench_workload *wl, const struct bench_case *c,
		     const struct bench_impl *im)
{
	if (wl->flags & BENCH_WL_MACHINE)
		return im == NULL;
	if (!im || (im->workloads && !(im->workloads & wl->impl_bit)))
		return 0;
	return !c->supported || c->supported(im);
}

struct bench_series *bench_find_series(const struct bench_workload *wl, const char *path,
				       const char *unit, const char *impl)
{
	unsigned i;

	for (i = 0; i < bench_nseries; i++) {
		struct bench_series *s = &bench_series[i];

		if (s->wl == wl && !strcmp(s->path, path) && !strcmp(s->unit, unit) &&
		    !strcmp(s->impl, impl))
			return s;
	}
	return NULL;
}

/* The implementations a workload's cases run for: the selected ones, or the
 * machine alone. */
static unsigned impl_count(const struct bench_workload *wl)
{
	return wl->flags & BENCH_WL_MACHINE ? 1 : nsel_im;
}

static const struct bench_impl *impl_at(const struct bench_workload *wl, unsigned i)
{
	return wl->flags & BENCH_WL_MACHINE ? NULL : sel_im[i];
}

/*
 * The series, in print order (workload, case, metric, implementation), and
 * the cases that fill them. Returns the number of cases.
 */
unsigned bench_plan(const struct bench_workload *const *wls, unsigned nwl,
		    const struct bench_impl *const *impls, unsigned nimpls)
{
	unsigned w, k, m, i, max = 0;

	sel_wl = wls;
	nsel_wl = nwl;
	sel_im = impls;
	nsel_im = nimpls;
	for (w = 0; w < nwl; w++)
		max += wls[w]->ncases * (nimpls + 1);
	bench_series = bench_xalloc(8, max * BENCH_MAX_METRICS * sizeof *bench_series);
	for (w = 0; w < nwl; w++) {
		const struct bench_workload *wl = wls[w];

		for (k = 0; k < wl->ncases; k++) {
			const struct bench_case *c = &wl->cases[k];

			for (m = 0; m < case_nm(c); m++) {
				for (i = 0; i < impl_count(wl); i++) {
					const struct bench_impl *im = impl_at(wl, i);
					struct bench_series *s = &bench_series[bench_nseries];

					if (!case_runs(wl, c, im))
						continue;
					s->wl = wl;
					s->metric = &c->m[m];
					s->path = c->m[m].path;
					s->unit = c->m[m].unit;
					s->flags = c->m[m].flags;
					s->impl = im ? im->name : "machine";
					s->im = im;
					s->v = bench_xalloc(8, bench_mode.reps * sizeof *s->v);
					s->probe = bench_xalloc(8, 2 * bench_mode.reps *
									   sizeof *s->probe);
					bench_nseries++;
				}
			}
		}
	}
	cases = bench_xalloc(8, max * sizeof *cases);
	for (w = 0; w < nwl; w++) {
		const struct bench_workload *wl = wls[w];

		for (k = 0; k < wl->ncases; k++) {
			const struct bench_case *c = &wl->cases[k];
			const unsigned nm = case_nm(c);

			for (i = 0; i < impl_count(wl); i++) {
				const struct bench_impl *im = impl_at(wl, i);
				struct bcase *bc = &cases[ncases];
				unsigned o;

				if (!case_runs(wl, c, im))
					continue;
				bc->wl = wl;
				bc->c = c;
				bc->im = im;
				for (m = 0; m < nm; m++)
					bc->s[m] = bench_find_series(wl, c->m[m].path,
								     c->m[m].unit,
								     im ? im->name : "machine");
				/* The rows carry their case's aux and twin series. */
				for (m = 0; m < nm; m++) {
					if (c->m[m].flags & BENCH_M_TWIN)
						bc->s[0]->twin = bc->s[m];
					if (!(c->m[m].flags & BENCH_M_AUX))
						continue;
					for (o = 0; o < nm; o++)
						if (!(c->m[o].flags & BENCH_M_AUX))
							bc->s[o]->aux = bc->s[m];
				}
				ncases++;
			}
		}
	}
	return ncases;
}

/* One repetition of @bc: m[i] for each of its metrics. */
static void run_case(const struct bcase *bc, double *m)
{
	struct bench_run *run = run_new();
	char what[96];

	if (bc->im)
		snprintf(what, sizeof what, "%s %s %s", bc->wl->id, bc->c->label,
			 bc->im->name);
	else
		snprintf(what, sizeof what, "%s %s", bc->wl->id, bc->c->label);
	run->impl = bc->im;
	run->what = what;
	run->nprod = 1;
	bc->c->measure(run, bc->c, m);
	free(run);
}

/* ------------------------------------------------------------------------ */
/* Probes and repetitions                                                   */
/* ------------------------------------------------------------------------ */

static int probe_is_slow(double p)
{
	return p > PROBE_SLOW_FACTOR * bench_probes.lowest && p > PROBE_SLOW_NS;
}

static double probe(void)
{
	struct bench_probes *pr = &bench_probes;
	double p = bench_measure_rt(bench_mode.probe_ns, PROBE_MAX_RT, "probe");

	if (p < pr->lowest)
		pr->lowest = p;
	if (pr->n == pr->cap) {
		pr->cap = pr->cap ? pr->cap * 2 : 256;
		pr->all = realloc(pr->all, pr->cap * sizeof *pr->all);
		if (!pr->all)
			bench_die(1, "out of memory");
	}
	pr->all[pr->n++] = p;
	if (probe_is_slow(p))
		pr->slow++;
	pr->last = p;
	pr->have_last = 1;
	return p;
}

/*
 * Whether the run can afford @extra_ns more (a repeated repetition, a wait
 * for a slow episode to end) and still finish within mode.budget_s: the
 * time used, plus @extra_ns, plus the repetitions still to run, each as long
 * as its case's last one (a case not run yet: the mean of those that were).
 */
static int budget_allows(uint64_t extra_ns)
{
	double left = (double)extra_ns, known = 0;
	unsigned i, nknown = 0, unknown = 0;

	if (bench_mode.budget_s <= 0)
		return 1;
	for (i = 0; i < ncases; i++) {
		const struct bcase *c = &cases[i];
		unsigned todo = bench_mode.reps - c->done;

		if (c->last_ns) {
			left += (double)c->last_ns * todo;
			known += (double)c->last_ns;
			nknown++;
		} else {
			unknown += todo;
		}
	}
	if (nknown)
		left += known / nknown * unknown;
	return (double)(bench_now_ns() - bench_start_ns) + left <= bench_mode.budget_s * 1e9;
}

static void run_rep(struct bcase *c)
{
	struct bench_probes *pr = &bench_probes;
	const unsigned nm = case_nm(c->c);
	double m[BENCH_MAX_METRICS] = { 0 }, pre, post = 0;
	unsigned attempt, i, w;
	int slow, again;

	for (attempt = 0;; attempt++) {
		uint64_t t0;

		pre = pr->have_last ? pr->last : probe();
		/* In a slow episode: wait a little for it to pass. */
		for (w = 0; probe_is_slow(pre) && w < bench_mode.probe_waits &&
			    budget_allows(bench_mode.probe_wait_ns + bench_mode.probe_ns);
		     w++) {
			bench_sleep_ns(bench_mode.probe_wait_ns);
			pre = probe();
			pr->waits++;
		}
		pr->have_last = 0;
		t0 = bench_now_ns();
		run_case(c, m);
		post = probe();
		c->last_ns = bench_now_ns() - t0;
		if (!attempt)
			c->done++; /* from here on a repeat is extra time */
		slow = probe_is_slow(pre) || probe_is_slow(post);
		again = slow && attempt < MAX_RETRY && budget_allows(c->last_ns);
		if (bench_verbose)
			fprintf(stderr,
				"  %-3s %-12s %-13s %10.2f %-8s probes %.0f/%.0f ns, %.0f ms%s\n",
				c->wl->id, c->c->label, c->im ? c->im->name : "machine", m[0],
				c->c->m[0].unit, pre, post, (double)c->last_ns / 1e6,
				slow ? (again ? "  slow: repeat" : "  slow: kept") : "");
		if (!slow)
			break;
		if (!again) {
			pr->kept_slow++;
			break;
		}
		pr->repeated++;
	}
	for (i = 0; i < nm; i++) {
		struct bench_series *s = c->s[i];

		s->probe[2 * s->n] = pre;
		s->probe[2 * s->n + 1] = post;
		s->v[s->n++] = m[i];
	}
}

/*
 * Rounds: every case once per round. Within a round, workload after
 * workload; within a workload the implementations take turns, the first one
 * rotating from round to round.
 */
void bench_run_rounds(void)
{
	unsigned r, w, i, j;

	for (r = 0; r < bench_mode.reps; r++) {
		unsigned before = bench_probes.repeated;

		for (w = 0; w < nsel_wl; w++) {
			const struct bench_workload *wl = sel_wl[w];

			if (wl->flags & BENCH_WL_MACHINE) {
				for (i = 0; i < ncases; i++)
					if (cases[i].wl == wl)
						run_rep(&cases[i]);
				continue;
			}
			for (j = 0; j < nsel_im; j++) {
				const struct bench_impl *im = sel_im[(r + j) % nsel_im];

				for (i = 0; i < ncases; i++)
					if (cases[i].wl == wl && cases[i].im == im)
						run_rep(&cases[i]);
			}
		}
		fprintf(stderr, "bench_ring: round %u/%u done, %.1f s, %u repeated\n", r + 1,
			bench_mode.reps, (double)(bench_now_ns() - bench_start_ns) / 1e9,
			bench_probes.repeated - before);
	}
}
