/* SPDX-License-Identifier: MIT */
/*
 * bench_ring: libringmpsc's SPSC ring next to its peers, in one process, on
 * a noisy machine. See bench/README.md for the workloads and the method;
 * the short version:
 *
 *   W1  single-item SPSC throughput                       Mmsg/s
 *   W2  batch SPSC throughput, copying and zero-copy        GB/s, Mmsg/s
 *   W3  MPSC, 2 producers + 1 consumer, pinned/unpinned     Mmsg/s
 *   W4  ping-pong round trip through two queues             ns p50/p99/min
 *   W5  wake-up latency of an idle consumer (spin, futex, epoll) ns p50/p99
 *   W6  MPSC channel scaling: 1, 2, 4, 8 producers, single-item and batch Mmsg/s
 *   W7  MPSC consumer with 32 registered producers, 1 active, adaptive skip
 *       on and off                                      Mmsg/s, polls/msg
 *   W8  SPMC (1 x 4) and MPMC (4 x 4) single-item throughput  Mmsg/s
 *   LIM the machine's own limits: memset into an L2-sized buffer (GB/s) and
 *       the raw cross-core cache-line round trip (ns p50)
 *
 * Repetitions are interleaved across implementations and workloads, each
 * one is bracketed by a short cache-line round-trip probe and repeated when
 * a probe shows the machine in a slow episode; results are medians of the
 * kept repetitions and ratios against the best other implementation, both
 * of the medians and, paired round by round, of the values measured close
 * together in time.
 * Every received value is checked; a wrong one is exit code 1.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <ringmpsc/common.h>

#include "bench_impl.h"
#include "bench_stats.h"

/* The adapters, in table order (the first is "ours"). */
static const struct bench_impl *const all_impls[] = {
	&bench_impl_ringmpsc,
#ifdef BENCH_HAVE_RINGMPSC_POLL
	&bench_impl_ringmpsc_poll,
#endif
	&bench_impl_ringmpsc_metrics,
#ifdef BENCH_HAVE_RINGMPSC_NOMETRICS
	&bench_impl_ringmpsc_nometrics,
#endif
#ifdef BENCH_HAVE_BOOST
	&bench_impl_boost,
#endif
#ifdef BENCH_HAVE_DPDK
	&bench_impl_dpdk,
#endif
#ifdef BENCH_HAVE_CK
	&bench_impl_ck,
#endif
#ifdef BENCH_HAVE_URCU
	&bench_impl_urcu,
#endif
#ifdef BENCH_HAVE_MOODYCAMEL_RWQ
	&bench_impl_rwq,
#endif
#ifdef BENCH_HAVE_MOODYCAMEL_CQ
	&bench_impl_mccq,
#endif
	&bench_impl_mutex,
	/* The "-call" diagnostics: each peer behind one non-inlined call per
	 * operation, W1 and W4 only (README.md, "Call depth"). */
#ifdef BENCH_HAVE_BOOST
	&bench_impl_boost_call,
#endif
#ifdef BENCH_HAVE_DPDK
	&bench_impl_dpdk_call,
#endif
#ifdef BENCH_HAVE_CK
	&bench_impl_ck_call,
#endif
#ifdef BENCH_HAVE_URCU
	&bench_impl_urcu_call,
#endif
#ifdef BENCH_HAVE_MOODYCAMEL_RWQ
	&bench_impl_rwq_call,
#endif
#ifdef BENCH_HAVE_MOODYCAMEL_CQ
	&bench_impl_mccq_call,
#endif
	&bench_impl_mutex_call,
};
#define N_IMPLS (sizeof all_impls / sizeof all_impls[0])
#define OURS	"ringmpsc"
#define OURS_POLL "ringmpsc-poll" /* the RMPSC_NO_WAKE build, for the wake A/B */
#define OURS_METRICS "ringmpsc-metrics" /* the MPSC channel with metrics on */
#define OURS_NOMETRICS "ringmpsc-nometrics" /* ...and with metrics compiled out */

#ifdef BENCH_NATIVE
#define HARNESS_ISA "native"
#else
#define HARNESS_ISA "baseline"
#endif

enum {
	CAPACITY = 65536, /* slots per queue, every workload and impl */
	BATCH = 32768,	  /* W2 batch */
	W3_NPROD = 2,
	W6_BATCH = 32,	     /* W6 producer batch (DPDK's customary burst) */
	W6_CONS_MAX = 256,   /* W6/W7 consumer: items per call at most */
	W7_IDLE = 31,	     /* W7: registered producers that never send */
	MAX_THREADS = 2 * BENCH_MAX_PROD + 1,
	SPIN_YIELD = 1024,    /* consecutive failed tries before a sched_yield */
	MAX_RETRY = 3,	      /* repeats of one repetition after a slow probe */
	RT_WARM = 64,	      /* round trips dropped at the start of a run */
	PROBE_MAX_RT = 20000, /* a probe stops at this many round trips... */
	REPS_MIN = 5,
	REPS_MAX = 1000,
};

#define PROBE_SLOW_FACTOR 2.0	/* ...and is slow above 2x the lowest... */
#define PROBE_SLOW_NS	  250.0 /* ...and above this */
#define STALL_NS	  (60ull * 1000000000ull)
#define MS		  (1000000ull)
#define PING_STOP	  UINT64_MAX
#define WAKE_STOP	  UINT64_MAX
#define WAKE_PAUSE_MIN_NS 20000ull  /* W5 pause before each message... */
#define WAKE_PAUSE_MAX_NS 200000ull /* ...uniform in [min, max] */
#define RT_STOP		  UINT64_MAX

/* Durations per mode. Throughput reps run for a fixed time (the producers
 * stop at a flag, the consumer drains the exact total) so a slow peer cannot
 * stretch the run; latency reps stop at a count or a time. */
struct mode {
	const char *name;
	uint64_t tput_ns;   /* W1-W3 */
	uint64_t lat_ns;    /* W4 */
	uint64_t call_tput_ns; /* W1 of the -call variants (BENCH_F_CALL) */
	uint64_t call_lat_ns;  /* W4 of the -call variants */
	uint64_t chan_tput_ns; /* W6-W8 */
	uint64_t lat_max;   /* W4 round trips at most */
	uint64_t memset_ns; /* LIM memset */
	uint64_t wake_ns;   /* W5: longest repetition */
	uint64_t wake_max;  /* W5 samples per repetition */
	uint64_t rt_ns;	    /* LIM cache-line round trip */
	uint64_t rt_max;
	uint64_t probe_ns; /* probe around every rep */
	uint64_t probe_wait_ns;
	unsigned probe_waits; /* re-probes while waiting out a slow episode */
	uint64_t calib_ns;
	double budget_s; /* repeat only while the projected run fits; 0: no limit */
	unsigned reps;
};

static const struct mode mode_quick = {
	.name = "quick",
	.tput_ns = 200 * MS,
	.lat_ns = 60 * MS,
	/* Shorter: seven diagnostic rows more, and the run stays under a
	 * minute (README.md, "Call depth"). */
	.call_tput_ns = 50 * MS,
	.call_lat_ns = 20 * MS,
	/* W6-W8 run in --quick only when --only names them. */
	.chan_tput_ns = 100 * MS,
	.lat_max = 200000,
	.wake_ns = 400 * MS,
	.wake_max = 1000,
	.memset_ns = 30 * MS,
	.rt_ns = 40 * MS,
	.rt_max = 200000,
	.probe_ns = 3 * MS,
	.probe_wait_ns = 20 * MS,
	.probe_waits = 5,
	.calib_ns = 30 * MS,
	/* First attempts ~48 s with the -call rows (~45 s without); a run
	 * can overshoot the budget by several seconds on this guest (reps in a
	 * slow episode take longer than the projection), so this stays well
	 * under the minute. */
	.budget_s = 52.0,
	.reps = 5,
};

static const struct mode mode_full = {
	.name = "full",
	.tput_ns = 800 * MS,
	.lat_ns = 250 * MS,
	.call_tput_ns = 800 * MS,
	.call_lat_ns = 250 * MS,
	.chan_tput_ns = 400 * MS,
	.lat_max = 500000,
	.wake_ns = 2000 * MS,
	.wake_max = 4000,
	.memset_ns = 100 * MS,
	.rt_ns = 200 * MS,
	.rt_max = 500000,
	.probe_ns = 3 * MS,
	.probe_wait_ns = 100 * MS,
	.probe_waits = 10,
	.calib_ns = 90 * MS,
	.budget_s = 900.0,
	.reps = 7,
};

static struct mode mode;
static int verbose;

/* ------------------------------------------------------------------------ */
/* Small utilities                                                          */
/* ------------------------------------------------------------------------ */

static void __attribute__((noreturn, format(printf, 2, 3)))
die(int code, const char *fmt, ...)
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

static void *xalloc(size_t align, size_t size)
{
	void *p;

	size = (size + align - 1) / align * align;
	p = aligned_alloc(align, size);
	if (!p)
		die(1, "out of memory (%zu bytes)", size);
	memset(p, 0, size);
	return p;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = {
		.tv_sec = (time_t)(ns / 1000000000ull),
		.tv_nsec = (long)(ns % 1000000000ull),
	};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

/*
 * Round-trip timer. x86: lfence; rdtsc; lfence (this guest has no RDTSCP),
 * calibrated against CLOCK_MONOTONIC at start-up; elsewhere, or when the
 * calibration looks wrong, CLOCK_MONOTONIC itself.
 */
static int use_tsc;
static double tsc_per_ns = 1.0;

static inline uint64_t ticks(void)
{
#if defined(__x86_64__) || defined(__i386__)
	if (use_tsc) {
		uint64_t t;

		__builtin_ia32_lfence();
		t = __builtin_ia32_rdtsc();
		__builtin_ia32_lfence();
		return t;
	}
#endif
	return now_ns();
}

static double ticks_to_ns(uint64_t t)
{
	return (double)t / tsc_per_ns;
}

static double median_of(const double *v, unsigned n)
{
	double *s;
	double m;

	if (!n)
		return 0.0;
	s = xalloc(8, n * sizeof *s);
	memcpy(s, v, n * sizeof *s);
	qsort(s, n, sizeof *s, bench_cmp_double);
	m = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2.0;
	free(s);
	return m;
}

static void calibrate(void)
{
	double r[3];
	unsigned i;

#if defined(__x86_64__) || defined(__i386__)
	use_tsc = 1;
#endif
	if (!use_tsc)
		return;
	for (i = 0; i < 3; i++) {
		uint64_t n0 = now_ns(), c0 = ticks(), n1, c1;

		do
			n1 = now_ns();
		while (n1 - n0 < mode.calib_ns / 3);
		c1 = ticks();
		r[i] = (double)(c1 - c0) / (double)(n1 - n0);
	}
	tsc_per_ns = median_of(r, 3);
	if (!(tsc_per_ns > 0.05 && tsc_per_ns < 50.0)) {
		fprintf(stderr,
			"bench_ring: TSC calibration gave %.3f ticks/ns; "
			"timing round trips with CLOCK_MONOTONIC\n",
			tsc_per_ns);
		use_tsc = 0;
		tsc_per_ns = 1.0;
	}
}

/* Smallest back-to-back ticks() difference: the cost the round-trip timer
 * adds to every sample (reported, not subtracted). */
static double timer_overhead_ns(void)
{
	uint64_t best = UINT64_MAX;
	unsigned i;

	for (i = 0; i < 2000; i++) {
		uint64_t a = ticks(), b = ticks();

		if (b - a < best)
			best = b - a;
	}
	return ticks_to_ns(best);
}

/* ------------------------------------------------------------------------ */
/* CPUs and threads                                                         */
/* ------------------------------------------------------------------------ */

static cpu_set_t allowed_cpus;
static int cpu_a = 0, cpu_b = 1; /* producer side / consumer side */
static int pin_ok = 1;

static void choose_cpus(void)
{
	int i, found = 0;

	if (sched_getaffinity(0, sizeof allowed_cpus, &allowed_cpus)) {
		pin_ok = 0;
		CPU_ZERO(&allowed_cpus);
		return;
	}
	if (CPU_ISSET(0, &allowed_cpus) && CPU_ISSET(1, &allowed_cpus))
		return;
	/* Not 0 and 1: the first two CPUs we may use. */
	for (i = 0; i < CPU_SETSIZE && found < 2; i++) {
		if (!CPU_ISSET(i, &allowed_cpus))
			continue;
		if (found++ == 0)
			cpu_a = i;
		else
			cpu_b = i;
	}
	if (found < 2) {
		pin_ok = 0;
		fprintf(stderr,
			"bench_ring: fewer than 2 usable CPUs; running unpinned\n");
	} else {
		fprintf(stderr,
			"bench_ring: CPUs 0/1 not both usable; pinning to %d/%d\n", cpu_a,
			cpu_b);
	}
}

struct run;
struct worker;
typedef void (*worker_fn)(struct worker *w);

struct worker {
	_Alignas(128) struct run *run;
	worker_fn fn;
	int cpu;      /* -1: any allowed CPU */
	unsigned idx; /* producer index */
	uint64_t *buf;
	pthread_t tid;
	/* Results, written by the worker. */
	uint64_t count;
	uint64_t sum;
	uint64_t t0, t1; /* ns */
	uint64_t per[BENCH_MAX_PROD];
	/* W8 consumer: per producer, the sum and the sum of squares of the
	 * sequence numbers it took (no loss and no duplicate, with per[]). */
	uint64_t psum[BENCH_MAX_PROD], psq[BENCH_MAX_PROD];
	double cpu_frac; /* W5 consumer: thread CPU time / wall time */
	uint64_t early; /* W5 consumer: samples whose stamp was ahead of its clock */
	int failed;
	char msg[200];
};

struct run {
	/* Read by every worker, written once each: parameters and flags. */
	_Alignas(128) const struct bench_impl *impl;
	void *q[2];
	unsigned nprod;
	unsigned ncons; /* W8 */
	int mc;		/* W8: producers use mc_push1 */
	uint64_t *samples;
	uint64_t max_samples;
	_Atomic uint64_t *line;
	unsigned char *mbuf;
	size_t mlen;
	_Atomic int go;
	_Atomic int stop;
	_Atomic int abort;
	int may_end_early; /* the workers can finish before the stop flag */
	/* Written once by each producer, at its end. */
	_Alignas(128) _Atomic unsigned prod_done;
	/* W5: messages the consumer has taken, written by the consumer.
	 * W8: items the consumers have taken, added by each when it finds
	 * the queue empty. */
	_Alignas(128) _Atomic uint64_t acked;
	/* Start and finish bookkeeping. */
	_Alignas(128) _Atomic unsigned ready;
	_Atomic unsigned finished;
	struct worker w[MAX_THREADS];
};

static struct run *run_new(void)
{
	struct run *run = xalloc(128, sizeof *run);

	atomic_init(&run->go, 0);
	atomic_init(&run->stop, 0);
	atomic_init(&run->abort, 0);
	atomic_init(&run->prod_done, 0);
	atomic_init(&run->acked, 0);
	atomic_init(&run->ready, 0);
	atomic_init(&run->finished, 0);
	return run;
}

static void __attribute__((format(printf, 2, 3)))
worker_fail(struct worker *w, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(w->msg, sizeof w->msg, fmt, ap);
	va_end(ap);
	w->failed = 1;
	/* Release: run_threads() reads msg after seeing the flag. */
	atomic_store_explicit(&w->run->abort, 1, memory_order_release);
}

/*
 * The one waiting policy of every worker, for every implementation: pause,
 * and after SPIN_YIELD consecutive failed tries look at the abort flag and
 * yield the CPU (which lets two producers pinned to one CPU take turns).
 * Returns 1 when the run is aborted.
 */
static inline int spin(struct run *run, unsigned *fails)
{
	if (++*fails % SPIN_YIELD) {
		cpu_relax();
		return 0;
	}
	if (atomic_load_explicit(&run->abort, memory_order_relaxed))
		return 1;
	sched_yield();
	return 0;
}

/* RMPSC_BENCH_NO_EX=1: ignore bench_impl.ex (W1/W4 through push1/pop1,
 * the adapter shell), for an A/B of the call structure across runs. */
static int g_no_ex;

static inline const struct bench_ex *ex_of(const struct bench_impl *im)
{
	return g_no_ex || !im->ex || !im->ex->push1 ? NULL : im->ex;
}

/* The multi-producer half, for W3/W6 single/W7 (never W8's mc queues). */
static inline const struct bench_ex *exmp_of(const struct run *run)
{
	const struct bench_ex *ex = run->impl->ex;

	return g_no_ex || run->mc || !ex || !ex->mp_push1 ? NULL : ex;
}

/* A bench_ex call's result in push1/pop1's convention. */
static inline int ex_result(int err)
{
	if (err == 0)
		return 1;
	return err == -EAGAIN ? 0 : err < 0 ? err : BENCH_ERR_IMPL;
}

/* Producers look at the stop flag every 256 items, never before the first
 * 256 (so even a starved thread produces something). */
static inline int stopped(struct run *run, uint64_t i)
{
	return i && !(i & 255) && atomic_load_explicit(&run->stop, memory_order_relaxed);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct run *run = w->run;
	unsigned fails = 0;

	atomic_fetch_add_explicit(&run->ready, 1, memory_order_relaxed);
	while (!atomic_load_explicit(&run->go, memory_order_acquire))
		if (spin(run, &fails))
			goto out;
	w->fn(w);
out:
	atomic_fetch_add_explicit(&run->finished, 1, memory_order_release);
	return NULL;
}

static void spawn(struct worker *w)
{
	pthread_attr_t attr;
	cpu_set_t set;
	int err;

	if (pthread_attr_init(&attr))
		die(1, "pthread_attr_init failed");
	if (pin_ok && w->cpu >= 0) {
		CPU_ZERO(&set);
		CPU_SET(w->cpu, &set);
	} else {
		set = allowed_cpus;
	}
	if (CPU_COUNT(&set))
		pthread_attr_setaffinity_np(&attr, sizeof set, &set);
	err = pthread_create(&w->tid, &attr, worker_main, w);
	if (err == EINVAL && pin_ok && w->cpu >= 0) {
		/* The CPU went away (hotplug, cgroup change): go on unpinned. */
		fprintf(stderr, "bench_ring: cannot pin to CPU %d; running unpinned\n",
			w->cpu);
		pin_ok = 0;
		pthread_attr_destroy(&attr);
		pthread_attr_init(&attr);
		err = pthread_create(&w->tid, &attr, worker_main, w);
	}
	pthread_attr_destroy(&attr);
	if (err)
		die(1, "pthread_create: %s", strerror(err));
}

/* The message of the first worker that failed, or NULL. */
static const char *failure(const struct run *run, unsigned n)
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
static void run_threads(struct run *run, unsigned n, uint64_t duration_ns,
			const char *what)
{
	uint64_t deadline, fail_at = 0;
	unsigned i;

	for (i = 0; i < n; i++) {
		run->w[i].run = run;
		spawn(&run->w[i]);
	}
	deadline = now_ns() + STALL_NS;
	while (atomic_load_explicit(&run->ready, memory_order_relaxed) < n) {
		if (now_ns() > deadline)
			die(1, "%s: threads did not start within 60 s", what);
		sleep_ns(50000);
	}
	atomic_store_explicit(&run->go, 1, memory_order_release);
	if (run->may_end_early) {
		/* Wake-ups of this thread are rare against what the workload
		 * itself sleeps (W5); a throughput run sleeps in one piece. */
		uint64_t end = now_ns() + duration_ns;

		while (atomic_load_explicit(&run->finished, memory_order_acquire) < n &&
		       now_ns() < end)
			sleep_ns(5 * MS);
	} else {
		sleep_ns(duration_ns);
	}
	atomic_store_explicit(&run->stop, 1, memory_order_relaxed);
	deadline = now_ns() + STALL_NS;
	while (atomic_load_explicit(&run->finished, memory_order_acquire) < n) {
		if (!fail_at && atomic_load_explicit(&run->abort, memory_order_acquire))
			fail_at = now_ns() + 1000 * MS;
		if (fail_at && now_ns() > fail_at && failure(run, n))
			die(1, "%s: %s", what, failure(run, n));
		if (now_ns() > deadline) {
			atomic_store_explicit(&run->abort, 1, memory_order_relaxed);
			sleep_ns(5000 * MS);
			die(1,
			    "%s: not finished 60 s after the stop: messages lost or a "
			    "queue deadlocked",
			    what);
		}
		sleep_ns(MS);
	}
	for (i = 0; i < n; i++)
		pthread_join(run->w[i].tid, NULL);
	if (failure(run, n))
		die(1, "%s: %s", what, failure(run, n));
	if (atomic_load_explicit(&run->abort, memory_order_relaxed))
		die(1, "%s: aborted", what);
}

/* ------------------------------------------------------------------------ */
/* Workers                                                                  */
/* ------------------------------------------------------------------------ */

static void producer_done(struct worker *w, uint64_t count)
{
	w->count = count;
	w->t1 = now_ns();
	/* Publishes the count and, through the queue's own ordering, every
	 * item pushed before it. */
	atomic_fetch_add_explicit(&w->run->prod_done, 1, memory_order_release);
}

/* W1: one item per call; through the exported call itself when @ex is set
 * (a compile-time constant in each of w1_producer's two expansions). */
static inline __attribute__((always_inline)) void w1_produce(struct worker *w,
							     const struct bench_ex *ex)
{
	struct run *run = w->run;
	const struct bench_impl *im = run->impl;
	void *q = run->q[0];
	uint64_t seq = 0;
	unsigned fails = 0;
	int rc;

	w->t0 = now_ns();
	while (!stopped(run, seq)) {
		while ((rc = ex ? ex_result(ex->push1(q, &seq)) : im->push1(q, seq)) == 0)
			if (spin(run, &fails))
				return;
		if (rc < 0) {
			worker_fail(w, "%s push1 failed (%d)", im->name, rc);
			return;
		}
		fails = 0;
		seq++;
	}
	producer_done(w, seq);
}

static void w1_producer(struct worker *w)
{
	const struct bench_ex *ex = ex_of(w->run->impl);

	if (ex)
		w1_produce(w, ex);
	else
		w1_produce(w, NULL);
}

/* W3: producer @idx tags its values with its index; through the exported
 * call itself when @ex is set (as w1_produce). */
static inline __attribute__((always_inline)) void w3_produce(struct worker *w,
							     const struct bench_ex *ex)
{
	struct run *run = w->run;
	const struct bench_impl *im = run->impl;
	void *q = run->q[0];
	struct rmpsc_producer *ph = ex ? ex->mp_producer(q, w->idx) : NULL;
	const uint64_t tag = (uint64_t)w->idx << BENCH_PROD_SHIFT;
	uint64_t seq = 0, v;
	unsigned fails = 0;
	int rc;

	w->t0 = now_ns();
	/* Every item checks the stop flag: with two producers on one CPU a
	 * multi-producer peer can convoy (one item per scheduler slice), and
	 * 256 more items would then take minutes. */
	while (!(seq && atomic_load_explicit(&run->stop, memory_order_relaxed))) {
		v = tag | seq;
		while ((rc = ex	     ? ex_result(ex->mp_push1(ph, &v))
			     : run->mc ? im->mc_push1(q, w->idx, v)
				       : im->mp_push1(q, w->idx, v)) == 0)
			if (spin(run, &fails))
				return;
		if (rc < 0) {
			worker_fail(w, "%s %s failed (%d)", im->name,
				    run->mc ? "mc_push1" : "mp_push1", rc);
			return;
		}
		fails = 0;
		seq++;
	}
	producer_done(w, seq);
}

static void w3_producer(struct worker *w)
{
	const struct bench_ex *ex = exmp_of(w->run);

	if (ex)
		w3_produce(w, ex);
	else
		w3_produce(w, NULL);
}

/* W6 batch: W6_BATCH tagged values per batch through mp_push_n. */
static void w6_producer_batch(struct worker *w)
{
	struct run *run = w->run;
	const struct bench_impl *im = run->impl;
	void *q = run->q[0];
	const uint64_t tag = (uint64_t)w->idx << BENCH_PROD_SHIFT;
	uint64_t seq = 0, v[W6_BATCH];
	unsigned fails = 0, i;

	w->t0 = now_ns();
	do {
		uint32_t off = 0;

		for (i = 0; i < W6_BATCH; i++)
			v[i] = tag | (seq + i);
		while (off < W6_BATCH) {
			int rc = im->mp_push_n(q, w->idx, v + off, W6_BATCH - off);

			if (rc > 0) {
				off += (uint32_t)rc;
				fails = 0;
			} else if (rc < 0) {
				worker_fail(w, "%s mp_push_n failed (%d)", im->name, rc);
				return;
			} else if (spin(run, &fails)) {
				return;
			}
		}
		seq += W6_BATCH;
	} while (!atomic_load_explicit(&run->stop, memory_order_relaxed));
	producer_done(w, seq);
}

/* W2: BATCH consecutive values per batch, pushed until all are in. */
static void w2_producer(struct worker *w, int zero_copy)
{
	struct run *run = w->run;
	const struct bench_impl *im = run->impl;
	void *q = run->q[0];
	uint64_t base = 0;
	unsigned fails = 0;

	w->t0 = now_ns();
	do {
		uint32_t off = 0;

		/* The copying producer builds its batch in its own buffer,
		 * then the queue copies it; zero-copy writes in place. */
		if (!zero_copy)
			bench_fill(w->buf, BATCH, base);
		while (off < BATCH) {
			int rc = zero_copy ? im->zc_produce(q, BATCH - off, base + off)
					   : im->push_n(q, w->buf + off, BATCH - off);

			if (rc > 0) {
				off += (uint32_t)rc;
				fails = 0;
			} else if (rc < 0) {
				worker_fail(w, "%s %s failed (%d)", im->name,
					    zero_copy ? "zc_produce" : "push_n", rc);
				return;
			} else if (spin(run, &fails)) {
				return;
			}
		}
		base += BATCH;
	} while (!atomic_load_explicit(&run->stop, memory_order_relaxed));
	producer_done(w, base);
}

static void w2_producer_copy(struct worker *w)
{
	w2_producer(w, 0);
}

static void w2_producer_zc(struct worker *w)
{
	w2_producer(w, 1);
}

enum take_kind { TAKE_ONE, TAKE_EX, TAKE_COPY, TAKE_ZC, TAKE_MP, TAKE_EXMP, TAKE_MP_N };

struct cstate {
	uint64_t expect; /* items taken so far == next value (SPSC) */
	uint64_t sum;
	uint64_t per[BENCH_MAX_PROD]; /* W3: next sequence per producer */
	int (*ex_pop1)(struct rmpsc_ring *r, void *item); /* TAKE_EX */
	int (*ex_mp_pop1)(struct rmpsc_mpsc *ch, void *item, uint32_t *id); /* TAKE_EXMP */
	struct rmpsc_mpsc *ch;                                               /* TAKE_EXMP */
};

/* W3/W6/W7: @v must be the next value of its producer. */
static inline __attribute__((always_inline)) int mp_check(struct worker *w,
							   struct cstate *cs, uint64_t v)
{
	uint64_t p = v >> BENCH_PROD_SHIFT;
	uint64_t seq = v & ((1ull << BENCH_PROD_SHIFT) - 1);

	if (p >= w->run->nprod || seq != cs->per[p]) {
		worker_fail(w,
			    "%s: producer %" PRIu64 " sent %" PRIu64 ", expected %" PRIu64
			    " (FIFO broken)",
			    w->run->impl->name, p, seq,
			    p < w->run->nprod ? cs->per[p] : 0);
		return -1;
	}
	cs->per[p]++;
	return 0;
}

/* One consumer try: > 0 items taken and checked, 0 nothing there, < 0 the
 * worker failed (message written). */
static inline __attribute__((always_inline)) int
take(struct worker *w, enum take_kind kind, struct cstate *cs)
{
	const struct bench_impl *im = w->run->impl;
	void *q = w->run->q[0];
	uint64_t v;
	int rc;

	switch (kind) {
	case TAKE_ONE:
	case TAKE_EX:
		rc = kind == TAKE_EX ? ex_result(cs->ex_pop1(q, &v)) : im->pop1(q, &v);
		if (rc > 0) {
			if (v != cs->expect) {
				worker_fail(w, "%s: got %" PRIu64 ", expected %" PRIu64,
					    im->name, v, cs->expect);
				return -1;
			}
			cs->expect++;
		}
		break;
	case TAKE_COPY:
		rc = im->pop_n(q, w->buf, BATCH);
		if (rc > 0) {
			if (bench_check(w->buf, (uint32_t)rc, cs->expect, &cs->sum)) {
				worker_fail(
					w,
					"%s: wrong value in the %d items from %" PRIu64,
					im->name, rc, cs->expect);
				return -1;
			}
			cs->expect += (uint64_t)rc;
		}
		break;
	case TAKE_ZC:
		rc = im->zc_consume(q, BATCH, &cs->expect, &cs->sum);
		if (rc == BENCH_ERR_MISMATCH) {
			worker_fail(w, "%s: wrong value in place after %" PRIu64,
				    im->name, cs->expect);
			return -1;
		}
		break;
	case TAKE_MP:
	case TAKE_EXMP:
		rc = kind == TAKE_EXMP ? ex_result(cs->ex_mp_pop1(cs->ch, &v, NULL))
				       : im->mp_pop1(q, &v);
		if (rc > 0) {
			if (mp_check(w, cs, v))
				return -1;
			cs->expect++;
		}
		break;
	case TAKE_MP_N:
	default:
		rc = im->mp_pop_n(q, w->buf, W6_CONS_MAX);
		if (rc > W6_CONS_MAX) {
			worker_fail(w, "%s: mp_pop_n returned %d of %d", im->name, rc,
				    W6_CONS_MAX);
			return -1;
		}
		for (int i = 0; i < rc; i++)
			if (mp_check(w, cs, w->buf[i]))
				return -1;
		if (rc > 0)
			cs->expect += (uint64_t)rc;
		break;
	}
	if (rc < 0 && !w->failed)
		worker_fail(w, "%s: consumer call failed (%d)", im->name, rc);
	return rc;
}

static inline __attribute__((always_inline)) void consume(struct worker *w,
							  enum take_kind kind)
{
	struct run *run = w->run;
	struct cstate cs;
	uint64_t total = 0;
	unsigned fails = 0;
	int rc;

	memset(&cs, 0, sizeof cs);
	if (kind == TAKE_EX)
		cs.ex_pop1 = run->impl->ex->pop1;
	if (kind == TAKE_EXMP) {
		cs.ex_mp_pop1 = run->impl->ex->mp_pop1;
		cs.ch = run->impl->ex->mp_channel(run->q[0]);
	}
	w->t0 = now_ns();
	for (;;) {
		rc = take(w, kind, &cs);
		if (rc > 0) {
			fails = 0;
			continue;
		}
		if (rc < 0)
			return;
		/* Once every producer has finished, take until their total: a
		 * call that found nothing does not prove the queue empty (a
		 * round-based consumer may skip a ring that has data), and one
		 * lost item keeps the consumer here until run_threads() gives
		 * up on the run. */
		if (!total && atomic_load_explicit(&run->prod_done, memory_order_acquire) ==
				      run->nprod)
			for (unsigned i = 0; i < run->nprod; i++)
				total += run->w[i].count;
		if (total && cs.expect >= total)
			break;
		if (spin(run, &fails))
			return;
	}
	w->t1 = now_ns();
	w->count = cs.expect;
	w->sum = cs.sum;
	memcpy(w->per, cs.per, sizeof w->per);
}

static void consumer_one(struct worker *w)
{
	if (ex_of(w->run->impl))
		consume(w, TAKE_EX);
	else
		consume(w, TAKE_ONE);
}

static void consumer_copy(struct worker *w)
{
	consume(w, TAKE_COPY);
}

static void consumer_zc(struct worker *w)
{
	consume(w, TAKE_ZC);
}

static void consumer_mp(struct worker *w)
{
	if (exmp_of(w->run))
		consume(w, TAKE_EXMP);
	else
		consume(w, TAKE_MP);
}

static void consumer_mp_n(struct worker *w)
{
	consume(w, TAKE_MP_N);
}

/*
 * W8: consumer @idx of several. Per producer, the sequence numbers it takes
 * must increase (a consumer's view of one producer's FIFO); counts, sums and
 * sums of squares go to run_case, which checks them against what was sent.
 * It leaves once every producer is done and the consumers together have
 * taken everything: each adds what it took to run->acked whenever it finds
 * the queue empty.
 */
static void consumer_mc(struct worker *w)
{
	struct run *run = w->run;
	const struct bench_impl *im = run->impl;
	void *q = run->q[0];
	uint64_t last[BENCH_MAX_PROD], total = 0, unflushed = 0, n = 0, v;
	unsigned fails = 0, i;
	int rc;

	for (i = 0; i < BENCH_MAX_PROD; i++)
		last[i] = UINT64_MAX;
	w->t0 = now_ns();
	for (;;) {
		rc = im->mc_pop1(q, w->idx, &v);
		if (rc > 0) {
			uint64_t p = v >> BENCH_PROD_SHIFT;
			uint64_t seq = v & ((1ull << BENCH_PROD_SHIFT) - 1);

			if (p >= run->nprod || (last[p] != UINT64_MAX && seq <= last[p])) {
				worker_fail(w,
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
			worker_fail(w, "%s: mc_pop1 failed (%d)", im->name, rc);
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
		if (spin(run, &fails))
			return;
	}
	w->t1 = now_ns();
	w->count = n;
}

/*
 * W4's wait for the item: inside the implementation when it has pop1_wait,
 * else the common pop1 + spin loop. pop1's result, or 0 when the run was
 * aborted.
 */
static inline int w4_pop(struct run *run, const struct bench_impl *im, void *q,
			 uint64_t *v, unsigned *fails)
{
	const struct bench_ex *ex = ex_of(im);
	int rc;

	if (im->pop1_wait)
		return im->pop1_wait(q, v);
	while ((rc = ex ? ex_result(ex->pop1(q, v)) : im->pop1(q, v)) == 0)
		if (spin(run, fails))
			return 0;
	*fails = 0;
	return rc;
}

/* W4's push: the exported call when the implementation has one. */
static inline int w4_push(const struct bench_impl *im, void *q, uint64_t v)
{
	const struct bench_ex *ex = ex_of(im);

	return ex ? ex_result(ex->push1(q, &v)) : im->push1(q, v);
}

/* W4: one item bouncing through q[0] (there) and q[1] (back). Neither queue
 * ever holds more than one item, so a push never waits. */
static void w4_ping(struct worker *w)
{
	struct run *run = w->run;
	const struct bench_impl *im = run->impl;
	void *there = run->q[0], *back = run->q[1];
	unsigned fails = 0;
	uint64_t i, v = 0;
	int rc;

	w->t0 = now_ns();
	for (i = 0; i < run->max_samples && !stopped(run, i); i++) {
		uint64_t t0 = ticks(), t1;

		while ((rc = w4_push(im, there, i)) == 0)
			if (spin(run, &fails))
				return;
		fails = 0;
		if (rc > 0 && (rc = w4_pop(run, im, back, &v, &fails)) == 0)
			return;
		t1 = ticks();
		if (rc < 0) {
			worker_fail(w, "%s push1/pop1 failed (%d)", im->name, rc);
			return;
		}
		if (v != i + 1) {
			worker_fail(w, "%s: reply %" PRIu64 " to %" PRIu64, im->name, v,
				    i);
			return;
		}
		run->samples[i] = t1 - t0;
	}
	w->t1 = now_ns();
	w->count = i;
	while ((rc = w4_push(im, there, PING_STOP)) == 0)
		if (spin(run, &fails))
			return;
}

static void w4_pong(struct worker *w)
{
	struct run *run = w->run;
	const struct bench_impl *im = run->impl;
	void *there = run->q[0], *back = run->q[1];
	unsigned fails = 0;
	uint64_t expect = 0, v;
	int rc;

	for (;;) {
		if ((rc = w4_pop(run, im, there, &v, &fails)) == 0)
			return;
		if (rc < 0) {
			worker_fail(w, "%s pop1 failed (%d)", im->name, rc);
			return;
		}
		if (v == PING_STOP)
			break;
		if (v != expect) {
			worker_fail(w, "%s: ping %" PRIu64 ", expected %" PRIu64,
				    im->name, v, expect);
			return;
		}
		expect++;
		while ((rc = w4_push(im, back, v + 1)) == 0)
			if (spin(run, &fails))
				return;
		fails = 0;
		if (rc < 0) {
			worker_fail(w, "%s push1 failed (%d)", im->name, rc);
			return;
		}
	}
	w->count = expect;
}

/*
 * W5: wake-up latency. The producer waits until the consumer has taken the
 * previous message, sleeps a random 20-200 us (so the consumer really goes
 * idle: spinning, asleep on its futex or in epoll_wait), then sends its
 * ticks() as the message. The consumer records its own ticks() minus the
 * stamp as soon as wake_pop1 returns. WAKE_STOP ends the run.
 */
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

static void w5_producer(struct worker *w)
{
	struct run *run = w->run;
	const struct bench_impl *im = run->impl;
	void *q = run->q[0];
	uint64_t i, rng = 0x9e3779b97f4a7c15ull ^ now_ns();
	unsigned fails = 0;
	int rc = 1;

	/* Pauses as asked for, not rounded up by the default 50 us slack. */
	prctl(PR_SET_TIMERSLACK, 1ul, 0ul, 0ul, 0ul);
	w->t0 = now_ns();
	for (i = 0; i < run->max_samples &&
		    !(i && atomic_load_explicit(&run->stop, memory_order_relaxed));
	     i++) {
		while (atomic_load_explicit(&run->acked, memory_order_acquire) < i)
			if (spin(run, &fails))
				goto out;
		fails = 0;
		w5_pause(&rng);
		while ((rc = im->wake_push1(q, ticks())) == 0)
			if (spin(run, &fails))
				goto out;
		if (rc < 0) {
			worker_fail(w, "%s wake_push1 failed (%d)", im->name, rc);
			goto out;
		}
		fails = 0;
	}
	w->t1 = now_ns();
	w->count = i;
out:
	/* Also after a failure: the consumer may be asleep in the library. */
	while (rc >= 0 && (rc = im->wake_push1(q, WAKE_STOP)) == 0)
		if (spin(run, &fails))
			return;
}

static double thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void w5_consumer(struct worker *w)
{
	struct run *run = w->run;
	const struct bench_impl *im = run->impl;
	void *q = run->q[0];
	uint64_t i = 0, v, t;
	double c0 = thread_cpu_ns();
	int rc;

	w->t0 = now_ns();
	for (;;) {
		rc = im->wake_pop1(q, &v);
		t = ticks();
		if (rc <= 0) {
			worker_fail(w, "%s wake_pop1 failed (%d)", im->name, rc);
			return;
		}
		if (v == WAKE_STOP)
			break;
		if (i == run->max_samples) {
			worker_fail(w, "%s: more messages than were sent", im->name);
			return;
		}
		/* The two CPUs' TSCs may disagree by a little: count, clamp. */
		if (t < v)
			w->early++;
		run->samples[i++] = t > v ? t - v : 0;
		atomic_store_explicit(&run->acked, i, memory_order_release);
	}
	w->t1 = now_ns();
	w->count = i;
	w->cpu_frac = (thread_cpu_ns() - c0) /
		      (double)(w->t1 > w->t0 ? w->t1 - w->t0 : 1);
}

/* LIM: the raw cross-core round trip, one u64 in one line: odd values go
 * there, even values come back. Same timer and spin policy as W4. */
static void rt_ping(struct worker *w)
{
	struct run *run = w->run;
	_Atomic uint64_t *x = run->line;
	unsigned fails = 0;
	uint64_t i;

	for (i = 0; i < run->max_samples && !stopped(run, i); i++) {
		uint64_t t0 = ticks(), t1;

		atomic_store_explicit(x, 2 * i + 1, memory_order_release);
		while (atomic_load_explicit(x, memory_order_acquire) != 2 * i + 2)
			if (spin(run, &fails))
				return;
		t1 = ticks();
		fails = 0;
		run->samples[i] = t1 - t0;
	}
	w->count = i;
	atomic_store_explicit(x, RT_STOP, memory_order_release);
}

static void rt_pong(struct worker *w)
{
	struct run *run = w->run;
	_Atomic uint64_t *x = run->line;
	unsigned fails = 0;

	for (;;) {
		uint64_t v = atomic_load_explicit(x, memory_order_acquire);

		if (v == RT_STOP)
			break;
		if (v & 1) {
			atomic_store_explicit(x, v + 1, memory_order_release);
			fails = 0;
		} else if (spin(run, &fails)) {
			return;
		}
	}
}

/* LIM: single-core memset bandwidth into an L2-sized buffer. */
static void lim_memset(struct worker *w)
{
	struct run *run = w->run;
	unsigned char *b = run->mbuf;
	const size_t len = run->mlen;
	uint64_t iters = 0, acc = 0;

	memset(b, 1, len); /* warm, untimed */
	w->t0 = now_ns();
	do {
		memset(b, (int)(iters & 0x7f), len);
		/* Compiler barrier: every memset really happens. */
		atomic_signal_fence(memory_order_seq_cst);
		acc += b[(iters * 4093) % len];
		iters++;
	} while (!atomic_load_explicit(&run->stop, memory_order_relaxed));
	w->t1 = now_ns();
	w->count = iters;
	w->sum = acc;
}

/* ------------------------------------------------------------------------ */
/* Cases: one repetition of one workload path for one implementation        */
/* ------------------------------------------------------------------------ */

static uint64_t *g_samples;	  /* round-trip samples (ticks) */
static uint64_t *g_pbuf, *g_cbuf; /* W2 copy buffers */
static _Atomic uint64_t *g_line;
static unsigned char *g_mbuf;
static size_t g_l2_size;
static const char *g_l2_source;

enum case_kind {
	C_MEMSET,
	C_RT,
	C_W1,
	C_W2_COPY,
	C_W2_ZC,
	C_W3_PIN,
	C_W3_FREE,
	C_W4,
	C_W5_SPIN, /* the three in enum bench_wake order */
	C_W5_FUTEX,
	C_W5_EPOLL,
	C_W6_S1, /* W6 single-item, 1/2/4/8 producers (case_spec.nprod) */
	C_W6_S2,
	C_W6_S4,
	C_W6_S8,
	C_W6_B1, /* W6 batch */
	C_W6_B2,
	C_W6_B4,
	C_W6_B8,
	C_W7_SKIP,
	C_W7_NOSKIP,
	C_W8_SPMC,
	C_W8_MPMC,
	C_N
};

enum wl_id { WL_LIM, WL_W1, WL_W2, WL_W3, WL_W4, WL_W5, WL_W6, WL_W7, WL_W8, WL_N };

static const char *const wl_names[WL_N] = { "LIM", "W1", "W2", "W3", "W4",
					    "W5",  "W6", "W7", "W8" };

/* The channel workloads: in --quick only when --only names them. */
static int wl_is_channel(enum wl_id wl)
{
	return wl == WL_W6 || wl == WL_W7 || wl == WL_W8;
}

struct metric_spec {
	const char *path;
	const char *unit;
	int lower_better;
	/* Not a row of its own: a note on the table, and in the JSON an
	 * object inside the records of the same case (W5's consumer CPU). */
	int aux;
};

static const struct case_spec {
	enum wl_id wl;
	const char *label;
	unsigned nm;
	struct metric_spec m[4];
	unsigned nprod, ncons; /* W3, W6-W8 */
	int batch;	       /* W6: mp_push_n / mp_pop_n */
} case_specs[C_N] = {
	[C_MEMSET] = { WL_LIM, "memset", 1, { { "memset", "GB/s", 0 } } },
	[C_RT] = { WL_LIM, "cacheline-rt", 1, { { "cacheline-rt", "ns", 1 } } },
	[C_W1] = { WL_W1, "single", 1, { { "single", "Mmsg/s", 0 } } },
	[C_W2_COPY] = { WL_W2,
			"copy",
			2,
			{ { "copy", "GB/s", 0 }, { "copy", "Mmsg/s", 0 } } },
	[C_W2_ZC] = { WL_W2,
		      "zero-copy",
		      2,
		      { { "zero-copy", "GB/s", 0 }, { "zero-copy", "Mmsg/s", 0 } } },
	[C_W3_PIN] = { WL_W3, "pinned", 1, { { "pinned", "Mmsg/s", 0 } }, W3_NPROD, 1, 0 },
	[C_W3_FREE] = { WL_W3, "unpinned", 1, { { "unpinned", "Mmsg/s", 0 } }, W3_NPROD, 1, 0 },
	[C_W4] = { WL_W4,
		   "pingpong",
		   4,
		   { { "p50", "ns", 1 },
		     { "p99", "ns", 1 },
		     { "min", "ns", 1 },
		     { "p50-step", "ns", 1 } } },
	[C_W5_SPIN] = { WL_W5,
			"spin",
			3,
			{ { "spin-p50", "ns", 1 },
			  { "spin-p99", "ns", 1 },
			  { "spin-cpu", "cpu/wall", 1, 1 } } },
	[C_W5_FUTEX] = { WL_W5,
			 "futex",
			 3,
			 { { "futex-p50", "ns", 1 },
			   { "futex-p99", "ns", 1 },
			   { "futex-cpu", "cpu/wall", 1, 1 } } },
	[C_W5_EPOLL] = { WL_W5,
			 "epoll",
			 3,
			 { { "epoll-p50", "ns", 1 },
			   { "epoll-p99", "ns", 1 },
			   { "epoll-cpu", "cpu/wall", 1, 1 } } },
#define W6_SPEC(label, np, b) { WL_W6, label, 1, { { label, "Mmsg/s", 0 } }, np, 1, b }
	[C_W6_S1] = W6_SPEC("1p-single", 1, 0),
	[C_W6_S2] = W6_SPEC("2p-single", 2, 0),
	[C_W6_S4] = W6_SPEC("4p-single", 4, 0),
	[C_W6_S8] = W6_SPEC("8p-single", 8, 0),
	[C_W6_B1] = W6_SPEC("1p-batch", 1, 1),
	[C_W6_B2] = W6_SPEC("2p-batch", 2, 1),
	[C_W6_B4] = W6_SPEC("4p-batch", 4, 1),
	[C_W6_B8] = W6_SPEC("8p-batch", 8, 1),
#undef W6_SPEC
	[C_W7_SKIP] = { WL_W7,
			"skip",
			2,
			{ { "skip", "Mmsg/s", 0 }, { "skip-polls", "polls/msg", 1, 1 } },
			1, 1, 1 },
	[C_W7_NOSKIP] = { WL_W7,
			  "noskip",
			  2,
			  { { "noskip", "Mmsg/s", 0 }, { "noskip-polls", "polls/msg", 1, 1 } },
			  1, 1, 1 },
	[C_W8_SPMC] = { WL_W8, "spmc-1x4", 1, { { "spmc-1x4", "Mmsg/s", 0 } }, 1, 4, 0 },
	[C_W8_MPMC] = { WL_W8, "mpmc-4x4", 1, { { "mpmc-4x4", "Mmsg/s", 0 } }, 4, 4, 0 },
};

/* Whether @im runs workload @wl at all (its `workloads` mask). */
static int wl_allowed(enum wl_id wl, const struct bench_impl *im)
{
	return !im->workloads || wl == WL_LIM ||
	       (im->workloads & (1u << (wl - WL_W1)));
}

static int case_supported(enum case_kind k, const struct bench_impl *im)
{
	switch (k) {
	case C_MEMSET:
	case C_RT:
		return im == NULL;
	default:
		break;
	}
	if (!im || !wl_allowed(case_specs[k].wl, im))
		return 0;
	switch (k) {
	case C_W2_ZC:
		return im->zc_produce && im->zc_consume;
	case C_W3_PIN:
	case C_W3_FREE:
		return im->mp_create && im->mp_destroy && im->mp_push1 && im->mp_pop1;
	case C_W5_SPIN:
	case C_W5_FUTEX:
	case C_W5_EPOLL:
		return im->wake_create && im->wake_destroy && im->wake_push1 &&
		       im->wake_pop1;
	case C_W7_SKIP:
	case C_W7_NOSKIP:
		return im->mp_create_idle && im->mp_polls && im->mp_destroy &&
		       im->mp_push1 && im->mp_pop_n;
	case C_W8_SPMC:
	case C_W8_MPMC:
		return im->mc_create && im->mc_destroy && im->mc_push1 && im->mc_pop1;
	default:
		break;
	}
	if (case_specs[k].wl == WL_W6)
		return im->mp_create && im->mp_destroy &&
		       (case_specs[k].batch ? im->mp_push_n && im->mp_pop_n
					    : im->mp_push1 && im->mp_pop1);
	return 1;
}

static double rate_mmsg(uint64_t items, uint64_t t0, uint64_t t1)
{
	uint64_t dt = t1 > t0 ? t1 - t0 : 1;

	return (double)items * 1e3 / (double)dt;
}

/*
 * Percentiles of samples[RT_WARM..n) in ns: out[0] p50, interpolated within
 * the timer's step (bench_median_grouped(), bench_stats.h); out[1] p99;
 * out[2] min; out[3] the middle sample itself (p50 in whole timer steps).
 */
static void rt_stats(uint64_t n, double *out)
{
	uint64_t *s = g_samples, m;

	if (n > RT_WARM * 4) {
		s += RT_WARM;
		n -= RT_WARM;
	}
	if (!n)
		die(1, "no round trips measured");
	qsort(s, n, sizeof *s, bench_cmp_u64);
	m = n * 99 / 100;
	out[0] = bench_median_grouped(s, n) / tsc_per_ns;
	out[1] = ticks_to_ns(s[m < n ? m : n - 1]);
	out[2] = ticks_to_ns(s[0]);
	out[3] = ticks_to_ns(s[n / 2]);
}

static void *create_or_die(const struct bench_impl *im)
{
	void *q = im->create(CAPACITY);

	if (!q)
		die(1, "%s: cannot create a queue of %u slots", im->name,
		    (unsigned)CAPACITY);
	return q;
}

/* Raw round trip: p50 in ns (LIM and the probes). */
static double measure_rt(uint64_t duration_ns, uint64_t max_rt, const char *what)
{
	struct run *run = run_new();
	double st[4];

	atomic_store_explicit(g_line, 0, memory_order_relaxed);
	run->line = g_line;
	run->samples = g_samples;
	run->max_samples = max_rt;
	run->w[0].fn = rt_ping;
	run->w[0].cpu = cpu_a;
	run->w[1].fn = rt_pong;
	run->w[1].cpu = cpu_b;
	run_threads(run, 2, duration_ns, what);
	rt_stats(run->w[0].count, st);
	free(run);
	return st[0];
}

/* Producer i sent w[i].count items: the consumer (*per) took as many. */
static uint64_t check_per_producer(const struct run *run, const uint64_t *per,
				   const char *what)
{
	uint64_t total = 0;
	unsigned i;

	for (i = 0; i < run->nprod; i++) {
		if (per[i] != run->w[i].count)
			die(1, "%s: producer %u sent %" PRIu64 ", consumers got %" PRIu64,
			    what, i, run->w[i].count, per[i]);
		total += run->w[i].count;
	}
	return total;
}

/*
 * W3, W6 and W7: case_spec.nprod producers pinned to one CPU, the consumer
 * on the other (however many producers, the consumer's CPU is its own);
 * W3 unpinned lets the scheduler place them all. W7 adds W7_IDLE
 * registered producers that never send and reports the consumer's polls
 * per message in *polls. Mmsg/s.
 */
static double run_mp(struct run *run, enum case_kind k, double *polls)
{
	const struct case_spec *sp = &case_specs[k];
	const struct bench_impl *im = run->impl;
	const struct worker *c;
	char what[64];
	unsigned i, np = sp->nprod;
	const int pin = k != C_W3_FREE;
	uint64_t total;
	double rate;

	snprintf(what, sizeof what, "%s %s %s", wl_names[sp->wl], sp->label, im->name);
	if (sp->wl == WL_W7)
		run->q[0] = im->mp_create_idle(CAPACITY, np, W7_IDLE,
					       k == C_W7_NOSKIP ? BENCH_MP_NOSKIP : 0u);
	else
		run->q[0] = im->mp_create(CAPACITY, np);
	if (!run->q[0])
		die(1, "%s: cannot create a queue of %u slots for %u producers", what,
		    (unsigned)CAPACITY, np);
	run->nprod = np;
	for (i = 0; i < np; i++) {
		run->w[i].fn = sp->batch && sp->wl == WL_W6 ? w6_producer_batch : w3_producer;
		run->w[i].idx = i;
		run->w[i].cpu = pin ? cpu_a : -1;
	}
	run->w[np].fn = sp->batch ? consumer_mp_n : consumer_mp;
	run->w[np].cpu = pin ? cpu_b : -1;
	run->w[np].buf = g_cbuf;
	run_threads(run, np + 1, sp->wl == WL_W3 ? mode.tput_ns : mode.chan_tput_ns, what);
	c = &run->w[np];
	total = check_per_producer(run, c->per, what);
	if (c->count != total)
		die(1, "%s: consumed %" PRIu64 " of %" PRIu64, what, c->count, total);
	rate = rate_mmsg(c->count, c->t0, c->t1);
	if (sp->wl == WL_W7) {
		int64_t n = im->mp_polls(run->q[0]);

		if (n < 0)
			die(1, "%s: no poll count", what);
		*polls = (double)n / (double)(total ? total : 1);
	}
	im->mp_destroy(run->q[0]);
	return rate;
}

/* sum and sum of squares of 0..n-1, modulo 2^64. */
static void seq_sums(uint64_t n, uint64_t *sum, uint64_t *sq)
{
	unsigned __int128 m = n;

	*sum = (uint64_t)(m * (m - (n ? 1 : 0)) / 2);
	*sq = n ? (uint64_t)((m - 1) * m * (2 * m - 1) / 6) : 0;
}

/* W8: nprod producers and ncons consumers, unpinned (more threads than
 * CPUs: the scheduler shares them out). Mmsg/s over the consumers' span. */
static double run_mc(struct run *run, enum case_kind k)
{
	const struct case_spec *sp = &case_specs[k];
	const struct bench_impl *im = run->impl;
	uint64_t per[BENCH_MAX_PROD] = { 0 }, total, t0 = UINT64_MAX, t1 = 0, got = 0;
	char what[64];
	unsigned i, j, np = sp->nprod, nc = sp->ncons;

	snprintf(what, sizeof what, "%s %s %s", wl_names[sp->wl], sp->label, im->name);
	run->q[0] = im->mc_create(CAPACITY, np, nc);
	if (!run->q[0])
		die(1, "%s: cannot create a queue of %u slots", what, (unsigned)CAPACITY);
	run->nprod = np;
	run->ncons = nc;
	run->mc = 1;
	for (i = 0; i < np; i++) {
		run->w[i].fn = w3_producer;
		run->w[i].idx = i;
		run->w[i].cpu = -1;
	}
	for (j = 0; j < nc; j++) {
		run->w[np + j].fn = consumer_mc;
		run->w[np + j].idx = j;
		run->w[np + j].cpu = -1;
	}
	run_threads(run, np + nc, mode.chan_tput_ns, what);
	for (j = 0; j < nc; j++) {
		const struct worker *c = &run->w[np + j];

		for (i = 0; i < np; i++)
			per[i] += c->per[i];
		got += c->count;
		t0 = c->t0 < t0 ? c->t0 : t0;
		t1 = c->t1 > t1 ? c->t1 : t1;
	}
	total = check_per_producer(run, per, what);
	if (got != total)
		die(1, "%s: consumed %" PRIu64 " of %" PRIu64, what, got, total);
	for (i = 0; i < np; i++) {
		uint64_t sum = 0, sq = 0, want_sum, want_sq;

		for (j = 0; j < nc; j++) {
			sum += run->w[np + j].psum[i];
			sq += run->w[np + j].psq[i];
		}
		seq_sums(run->w[i].count, &want_sum, &want_sq);
		if (sum != want_sum || sq != want_sq)
			die(1,
			    "%s: producer %u: the sequence numbers taken are not 0..%" PRIu64
			    " once each (lost or duplicated items)",
			    what, i, run->w[i].count - 1);
	}
	im->mc_destroy(run->q[0]);
	return rate_mmsg(total, t0, t1);
}

static void run_case(enum case_kind k, const struct bench_impl *im, double *m)
{
	struct run *run;
	const char *what = case_specs[k].label;
	char label[64];

	if (k == C_RT) {
		m[0] = measure_rt(mode.rt_ns, mode.rt_max, "LIM cacheline-rt");
		return;
	}
	run = run_new();
	run->impl = im;
	run->nprod = 1;
	if (im) {
		snprintf(label, sizeof label, "%s %s %s", wl_names[case_specs[k].wl],
			 what, im->name);
		what = label;
	}
	switch (k) {
	case C_MEMSET:
		run->mbuf = g_mbuf;
		run->mlen = g_l2_size;
		run->w[0].fn = lim_memset;
		run->w[0].cpu = cpu_a;
		run_threads(run, 1, mode.memset_ns, "LIM memset");
		m[0] = (double)run->w[0].count * (double)g_l2_size /
		       (double)(run->w[0].t1 - run->w[0].t0 ? run->w[0].t1 - run->w[0].t0
							    : 1);
		break;
	case C_W1:
	case C_W2_COPY:
	case C_W2_ZC:
		run->q[0] = create_or_die(im);
		run->w[0].cpu = cpu_a;
		run->w[1].cpu = cpu_b;
		run->w[0].buf = g_pbuf;
		run->w[1].buf = g_cbuf;
		run->w[0].fn = k == C_W1	? w1_producer
			       : k == C_W2_COPY ? w2_producer_copy
						: w2_producer_zc;
		run->w[1].fn = k == C_W1	? consumer_one
			       : k == C_W2_COPY ? consumer_copy
						: consumer_zc;
		run_threads(run, 2, im->flags & BENCH_F_CALL ? mode.call_tput_ns : mode.tput_ns,
			    what);
		if (run->w[1].count != run->w[0].count)
			die(1, "%s: produced %" PRIu64 ", consumed %" PRIu64, what,
			    run->w[0].count, run->w[1].count);
		if (k != C_W1) {
			uint64_t n = run->w[1].count;
			/* 0 + 1 + ... + (n - 1), modulo 2^64. */
			uint64_t want = n % 2 ? (n - 1) / 2 * n : n / 2 * (n - 1);

			if (run->w[1].sum != want)
				die(1, "%s: checksum %" PRIu64 ", expected %" PRIu64,
				    what, run->w[1].sum, want);
		}
		m[0] = rate_mmsg(run->w[1].count, run->w[1].t0, run->w[1].t1);
		if (k != C_W1) {
			m[1] = m[0];				 /* Mmsg/s */
			m[0] = m[1] * sizeof(uint64_t) / 1000.0; /* GB/s */
		}
		im->destroy(run->q[0]);
		break;
	case C_W4:
		run->q[0] = create_or_die(im);
		run->q[1] = create_or_die(im);
		run->samples = g_samples;
		run->max_samples = mode.lat_max;
		run->w[0].fn = w4_ping;
		run->w[0].cpu = cpu_a;
		run->w[1].fn = w4_pong;
		run->w[1].cpu = cpu_b;
		run_threads(run, 2, im->flags & BENCH_F_CALL ? mode.call_lat_ns : mode.lat_ns,
			    what);
		if (run->w[1].count != run->w[0].count)
			die(1, "%s: %" PRIu64 " pings, %" PRIu64 " pongs", what,
			    run->w[0].count, run->w[1].count);
		rt_stats(run->w[0].count, m);
		im->destroy(run->q[0]);
		im->destroy(run->q[1]);
		break;
	case C_W5_SPIN:
	case C_W5_FUTEX:
	case C_W5_EPOLL:
		run->q[0] = im->wake_create(CAPACITY, (unsigned)(k - C_W5_SPIN));
		if (!run->q[0])
			die(1, "%s: cannot create a queue of %u slots", what,
			    (unsigned)CAPACITY);
		run->samples = g_samples;
		run->max_samples = mode.wake_max;
		run->may_end_early = 1;
		run->w[0].fn = w5_producer;
		run->w[0].cpu = cpu_a;
		run->w[1].fn = w5_consumer;
		run->w[1].cpu = cpu_b;
		run_threads(run, 2, mode.wake_ns, what);
		if (run->w[1].count != run->w[0].count)
			die(1, "%s: %" PRIu64 " sent, %" PRIu64 " received", what,
			    run->w[0].count, run->w[1].count);
		if (run->w[1].early)
			fprintf(stderr,
				"bench_ring: %s: %" PRIu64 " of %" PRIu64
				" stamps ahead of the consumer's clock (counted as 0)\n",
				what, run->w[1].early, run->w[1].count);
		rt_stats(run->w[1].count, m);
		m[2] = run->w[1].cpu_frac;
		im->wake_destroy(run->q[0]);
		break;
	case C_W3_PIN:
	case C_W3_FREE:
	case C_W6_S1:
	case C_W6_S2:
	case C_W6_S4:
	case C_W6_S8:
	case C_W6_B1:
	case C_W6_B2:
	case C_W6_B4:
	case C_W6_B8:
	case C_W7_SKIP:
	case C_W7_NOSKIP:
		m[0] = run_mp(run, k, m + 1);
		break;
	case C_W8_SPMC:
	case C_W8_MPMC:
		m[0] = run_mc(run, k);
		break;
	default:
		die(1, "internal: case %d", (int)k);
	}
	free(run);
}

/* ------------------------------------------------------------------------ */
/* Probes and repetitions                                                   */
/* ------------------------------------------------------------------------ */

static struct {
	double last;   /* p50 of the most recent probe */
	int have_last; /* nothing has run since it */
	double lowest;
	double *all;
	unsigned n, cap;
	unsigned slow;	    /* probes in a slow episode */
	unsigned repeated;  /* repetitions discarded and run again */
	unsigned kept_slow; /* kept despite a slow probe (retries or budget used up) */
	unsigned waits;	    /* re-probes while waiting for an episode to end */
} pr = { .lowest = 1e300 };

static uint64_t g_start_ns;

static int probe_is_slow(double p)
{
	return p > PROBE_SLOW_FACTOR * pr.lowest && p > PROBE_SLOW_NS;
}

static double probe(void)
{
	double p = measure_rt(mode.probe_ns, PROBE_MAX_RT, "probe");

	if (p < pr.lowest)
		pr.lowest = p;
	if (pr.n == pr.cap) {
		pr.cap = pr.cap ? pr.cap * 2 : 256;
		pr.all = realloc(pr.all, pr.cap * sizeof *pr.all);
		if (!pr.all)
			die(1, "out of memory");
	}
	pr.all[pr.n++] = p;
	if (probe_is_slow(p))
		pr.slow++;
	pr.last = p;
	pr.have_last = 1;
	return p;
}

struct series {
	enum wl_id wl;
	const char *path;
	const char *unit;
	const char *impl;
	const struct bench_impl *im; /* NULL: "machine" */
	int lower_better;
	int aux;	    /* see struct metric_spec */
	struct series *cpu; /* W5 (CPU), W7 (polls): the aux series of the same case */
	/* v[i] is from round i: every case runs once per round, so the i-th
	 * values of two series were measured close together in time. */
	double *v;
	double *probe; /* [2 * i], [2 * i + 1]: the probes around v[i], ns */
	unsigned n;
	double med, min, max;
	double paired; /* median over rounds of v[i] / best other v[i]; 0: none */
};

struct bcase {
	enum case_kind kind;
	const struct bench_impl *im; /* NULL: LIM */
	struct series *s[4];
	unsigned done;	   /* repetitions kept so far */
	uint64_t last_ns;  /* the last attempt, with its "after" probe */
};

static struct bcase *g_cases;
static unsigned g_ncases;

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

	if (mode.budget_s <= 0)
		return 1;
	for (i = 0; i < g_ncases; i++) {
		const struct bcase *c = &g_cases[i];
		unsigned todo = mode.reps - c->done;

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
	return (double)(now_ns() - g_start_ns) + left <= mode.budget_s * 1e9;
}

static void run_rep(struct bcase *c)
{
	const struct case_spec *sp = &case_specs[c->kind];
	double m[4] = { 0, 0, 0, 0 }, pre, post = 0;
	unsigned attempt, i, w;
	int slow, again;

	for (attempt = 0;; attempt++) {
		uint64_t t0;

		pre = pr.have_last ? pr.last : probe();
		/* In a slow episode: wait a little for it to pass. */
		for (w = 0; probe_is_slow(pre) && w < mode.probe_waits &&
			    budget_allows(mode.probe_wait_ns + mode.probe_ns);
		     w++) {
			sleep_ns(mode.probe_wait_ns);
			pre = probe();
			pr.waits++;
		}
		pr.have_last = 0;
		t0 = now_ns();
		run_case(c->kind, c->im, m);
		post = probe();
		c->last_ns = now_ns() - t0;
		if (!attempt)
			c->done++; /* from here on a repeat is extra time */
		slow = probe_is_slow(pre) || probe_is_slow(post);
		again = slow && attempt < MAX_RETRY && budget_allows(c->last_ns);
		if (verbose)
			fprintf(stderr,
				"  %-3s %-12s %-13s %10.2f %-8s probes %.0f/%.0f ns, %.0f ms%s\n",
				wl_names[sp->wl], sp->label,
				c->im ? c->im->name : "machine", m[0], sp->m[0].unit, pre,
				post, (double)c->last_ns / 1e6,
				slow ? (again ? "  slow: repeat" : "  slow: kept") : "");
		if (!slow)
			break;
		if (!again) {
			pr.kept_slow++;
			break;
		}
		pr.repeated++;
	}
	for (i = 0; i < sp->nm; i++) {
		struct series *s = c->s[i];

		s->probe[2 * s->n] = pre;
		s->probe[2 * s->n + 1] = post;
		s->v[s->n++] = m[i];
	}
}

/* ------------------------------------------------------------------------ */
/* Machine                                                                  */
/* ------------------------------------------------------------------------ */

static char g_cpu_model[256] = "unknown";
static char g_kernel[256] = "unknown";
static char g_date[64] = "unknown";
static long g_nproc;

static size_t parse_size(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);

	while (*end == ' ')
		end++;
	if (*end == 'K' || *end == 'k')
		v <<= 10;
	else if (*end == 'M' || *end == 'm')
		v <<= 20;
	return (size_t)v;
}

static int read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	int ok;

	if (!f)
		return 0;
	ok = fgets(buf, (int)len, f) != NULL;
	fclose(f);
	if (ok)
		buf[strcspn(buf, "\n")] = 0;
	return ok;
}

static void l2_size(void)
{
	char path[128], buf[64];
	unsigned i;
	long sc;

	for (i = 0; i < 16; i++) {
		snprintf(path, sizeof path,
			 "/sys/devices/system/cpu/cpu0/cache/index%u/level", i);
		if (!read_line(path, buf, sizeof buf))
			continue;
		if (strcmp(buf, "2"))
			continue;
		snprintf(path, sizeof path,
			 "/sys/devices/system/cpu/cpu0/cache/index%u/type", i);
		if (read_line(path, buf, sizeof buf) && !strcmp(buf, "Instruction"))
			continue;
		snprintf(path, sizeof path,
			 "/sys/devices/system/cpu/cpu0/cache/index%u/size", i);
		if (read_line(path, buf, sizeof buf) && parse_size(buf) >= 4096) {
			g_l2_size = parse_size(buf);
			g_l2_source = "sysfs";
			return;
		}
	}
	/* No cache directory (some VMs): glibc's CPUID view, then 1 MiB. */
	sc = sysconf(_SC_LEVEL2_CACHE_SIZE);
	if (sc >= 4096 && sc <= (1l << 30)) {
		g_l2_size = (size_t)sc;
		g_l2_source = "sysconf";
		return;
	}
	g_l2_size = 1u << 20;
	g_l2_source = "default";
}

static void machine_info(void)
{
	struct utsname u;
	char line[512];
	FILE *f;
	time_t t = time(NULL);
	struct tm tm;

	f = fopen("/proc/cpuinfo", "r");
	if (f) {
		while (fgets(line, sizeof line, f)) {
			char *colon = strchr(line, ':');

			if (strncmp(line, "model name", 10) || !colon)
				continue;
			colon++;
			while (*colon == ' ' || *colon == '\t')
				colon++;
			colon[strcspn(colon, "\n")] = 0;
			snprintf(g_cpu_model, sizeof g_cpu_model, "%s", colon);
			break;
		}
		fclose(f);
	}
	if (!uname(&u))
		snprintf(g_kernel, sizeof g_kernel, "%s %s %s", u.sysname, u.release,
			 u.machine);
	if (gmtime_r(&t, &tm))
		strftime(g_date, sizeof g_date, "%Y-%m-%dT%H:%M:%SZ", &tm);
	g_nproc = sysconf(_SC_NPROCESSORS_ONLN);
	l2_size();
}

/* ------------------------------------------------------------------------ */
/* Results                                                                  */
/* ------------------------------------------------------------------------ */

static struct series *g_series;
static unsigned g_nseries;

static double paired_ratio(const struct series *s, const struct series *vs);

static void finish_series(void)
{
	unsigned i, j;

	for (i = 0; i < g_nseries; i++) {
		struct series *s = &g_series[i];

		if (!s->n)
			continue;
		s->med = median_of(s->v, s->n);
		s->paired = paired_ratio(s, NULL);
		s->min = s->max = s->v[0];
		for (j = 1; j < s->n; j++) {
			if (s->v[j] < s->min)
				s->min = s->v[j];
			if (s->v[j] > s->max)
				s->max = s->v[j];
		}
	}
}

static struct series *find_series(enum wl_id wl, const char *path, const char *unit,
				  const char *impl)
{
	unsigned i;

	for (i = 0; i < g_nseries; i++) {
		struct series *s = &g_series[i];

		if (s->wl == wl && !strcmp(s->path, path) && !strcmp(s->unit, unit) &&
		    !strcmp(s->impl, impl))
			return s;
	}
	return NULL;
}

/* The implementation a row belongs to: its own, or the one it is a variant
 * (another build) of. */
static const char *family(const struct series *s)
{
	return s->im && s->im->variant_of ? s->im->variant_of : s->impl;
}

/* Whether @o is an "other implementation" for row @s: same workload, path
 * and unit, another family, and not a variant (ringmpsc-poll is ours). */
static int is_other(const struct series *o, const struct series *s)
{
	return o != s && o->n && o->wl == s->wl && !strcmp(o->path, s->path) &&
	       !strcmp(o->unit, s->unit) && strcmp(family(o), family(s)) &&
	       !(o->im && o->im->variant_of);
}

static int better(const struct series *s, double a, double b)
{
	return s->lower_better ? a < b : a > b;
}

/* Whether @o is a "-call" diagnostic row (BENCH_F_CALL) of the same
 * workload, path and unit as @s: what ringmpsc is compared with at equal
 * call depth. */
static int is_call(const struct series *o, const struct series *s)
{
	return o != s && o->n && o->wl == s->wl && !strcmp(o->path, s->path) &&
	       !strcmp(o->unit, s->unit) && o->im && (o->im->flags & BENCH_F_CALL);
}

/* The best median among the rows @pick accepts for @s; NULL when none. */
static const struct series *best_of(const struct series *s,
				    int (*pick)(const struct series *o,
						const struct series *s))
{
	const struct series *best = NULL;
	unsigned i;

	for (i = 0; i < g_nseries; i++) {
		const struct series *o = &g_series[i];

		if (pick(o, s) && (!best || better(s, o->med, best->med)))
			best = o;
	}
	return best;
}

/* The best median among the other implementations of the same workload,
 * path and unit; NULL when there is none. */
static const struct series *best_other(const struct series *s)
{
	return best_of(s, is_other);
}

/*
 * Paired ratio: in every round, @s's value over the best value any other
 * implementation had in that same round (or, with @vs, over @vs's value),
 * then the median over the rounds. Values of one round were measured within
 * seconds of each other, so both sides saw the same machine regime; the
 * ratio of medians can pair a fast-regime median with a slow-regime one.
 * 0 when no round has a comparison.
 */
static double paired_ratio_of(const struct series *s, const struct series *vs,
			       int (*pick)(const struct series *o, const struct series *s))
{
	double r[REPS_MAX];
	unsigned i, j, n = 0;

	for (j = 0; j < s->n; j++) {
		double best = 0;
		int have = 0;

		for (i = 0; i < g_nseries && !vs; i++) {
			const struct series *o = &g_series[i];

			if (!pick(o, s) || o->n <= j)
				continue;
			if (!have || better(s, o->v[j], best))
				best = o->v[j];
			have = 1;
		}
		if (vs && vs->n > j) {
			best = vs->v[j];
			have = 1;
		}
		if (have && best > 0)
			r[n++] = s->v[j] / best;
	}
	return median_of(r, n);
}

static double paired_ratio(const struct series *s, const struct series *vs)
{
	return paired_ratio_of(s, vs, is_other);
}

static double lim_value(const char *path, const char *unit)
{
	const struct series *s = find_series(WL_LIM, path, unit, "machine");

	return s && s->n ? s->med : 0.0;
}

static void print_table(void)
{
	unsigned i, ncpu = 0, first = 1;

	printf("\n%-4s %-12s %-13s %-7s %10s %10s %10s %4s %6s %6s\n", "work", "path",
	       "impl", "unit", "median", "min", "max", "reps", "ratio", "paired");
	for (i = 0; i < g_nseries; i++) {
		const struct series *s = &g_series[i];
		const struct series *b = best_other(s);
		char ratio[32] = "-", paired[32] = "-";

		if (!s->n)
			continue;
		if (s->aux) {
			ncpu++;
			continue;
		}
		if (b && b->med > 0)
			snprintf(ratio, sizeof ratio, "%.2f", s->med / b->med);
		if (b && s->paired > 0)
			snprintf(paired, sizeof paired, "%.2f", s->paired);
		printf("%-4s %-12s %-13s %-7s %10.2f %10.2f %10.2f %4u %6s %6s\n",
		       wl_names[s->wl], s->path, s->impl, s->unit, s->med, s->min, s->max,
		       s->n, ratio, paired);
	}
	printf("ratio: median / best median of the other implementations on the same "
	       "row kind; paired: median over rounds of the value / the best other "
	       "value of the same round; throughput: > 1 is better, ns: < 1 is better\n");
	if (!ncpu)
		return;
	for (unsigned u = 0; u < 2; u++) {
		const char *unit = u ? "polls/msg" : "cpu/wall";

		first = 1;
		for (i = 0; i < g_nseries; i++) {
			const struct series *s = &g_series[i];

			if (!s->n || !s->aux || strcmp(s->unit, unit))
				continue;
			if (first)
				printf("%s (median, min-max):",
				       u ? "W7 consumer polls (ring looks) per message"
					 : "W5 consumer CPU time / wall time");
			printf("%s %s %s %.3f (%.3f-%.3f)", first ? "" : ",", s->impl,
			       s->path, s->med, s->min, s->max);
			first = 0;
		}
		if (!first)
			printf("\n");
	}
}

/* The A/B rows of ours against a variant of ours: the polling-only
 * RMPSC_NO_WAKE build (the wake-up overhead), the MPSC channel with metrics
 * on (their cost) and on the RMPSC_NO_METRICS build (what metrics cost
 * when off: ringmpsc / ringmpsc-nometrics, 1.0 is "zero cost"). */
static const struct ab_row {
	const char *key; /* JSON */
	enum wl_id wl;
	const char *path;
	const char *unit;
	const char *variant;
} ab_rows[] = {
	{ "W1_single", WL_W1, "single", "Mmsg/s", OURS_POLL },
	{ "W2_copy", WL_W2, "copy", "GB/s", OURS_POLL },
	{ "W2_zero-copy", WL_W2, "zero-copy", "GB/s", OURS_POLL },
#define AB_MPSC(variant)                                                        \
	{ "W3_pinned", WL_W3, "pinned", "Mmsg/s", variant },                    \
	{ "W3_unpinned", WL_W3, "unpinned", "Mmsg/s", variant },                \
	{ "W6_1p-single", WL_W6, "1p-single", "Mmsg/s", variant },              \
	{ "W6_2p-single", WL_W6, "2p-single", "Mmsg/s", variant },              \
	{ "W6_4p-single", WL_W6, "4p-single", "Mmsg/s", variant },              \
	{ "W6_8p-single", WL_W6, "8p-single", "Mmsg/s", variant },              \
	{ "W6_1p-batch", WL_W6, "1p-batch", "Mmsg/s", variant },                \
	{ "W6_2p-batch", WL_W6, "2p-batch", "Mmsg/s", variant },                \
	{ "W6_4p-batch", WL_W6, "4p-batch", "Mmsg/s", variant },                \
	{ "W6_8p-batch", WL_W6, "8p-batch", "Mmsg/s", variant }
	AB_MPSC(OURS_NOMETRICS),
	AB_MPSC(OURS_METRICS),
#undef AB_MPSC
};

/* The A/B groups: the JSON object of each and its summary label. */
static const struct {
	const char *variant;
	const char *json;
	const char *label;
} ab_groups[] = {
	{ OURS_POLL, "wake_overhead", "wake overhead" },
	{ OURS_NOMETRICS, "metrics_off_cost", "metrics off cost" },
	{ OURS_METRICS, "metrics_on_cost", "metrics on cost" },
};
#define N_AB_GROUPS (sizeof ab_groups / sizeof ab_groups[0])
#define N_AB_ROWS (sizeof ab_rows / sizeof ab_rows[0])

static int ab_pair(unsigned i, const struct series **a, const struct series **p)
{
	const struct ab_row *r = &ab_rows[i];

	*a = find_series(r->wl, r->path, r->unit, OURS);
	*p = find_series(r->wl, r->path, r->unit, r->variant);
	return *a && *p && (*a)->n && (*p)->n && (*p)->med > 0;
}

/* W7: ours with adaptive skip and without. */
static int skip_pair(const struct series **a, const struct series **b)
{
	*a = find_series(WL_W7, "skip", "Mmsg/s", OURS);
	*b = find_series(WL_W7, "noskip", "Mmsg/s", OURS);
	return *a && *b && (*a)->n && (*b)->n && (*b)->med > 0;
}

/* Whether ours beats the peer, given the unit's direction. */
static const char *verdict(double ours, double peer, int lower_better)
{
	if (ours == peer)
		return "equal";
	return (lower_better ? ours < peer : ours > peer) ? "better" : "WORSE";
}

/* The rows ringmpsc is also compared on at equal call depth, against the
 * best "-call" variant (README.md, "Call depth"). */
static const struct {
	const char *key; /* JSON */
	enum wl_id wl;
	const char *path;
	const char *unit;
} call_rows[] = {
	{ "W1_single", WL_W1, "single", "Mmsg/s" },
	{ "W4_p50", WL_W4, "p50", "ns" },
};
#define N_CALL_ROWS (sizeof call_rows / sizeof call_rows[0])

/* Ours on call_rows[i] and its best -call variant; 0 unless both ran. */
static int call_pair(unsigned i, const struct series **a, const struct series **c)
{
	*a = find_series(call_rows[i].wl, call_rows[i].path, call_rows[i].unit, OURS);
	*c = *a && (*a)->n ? best_of(*a, is_call) : NULL;
	return *c && (*c)->med > 0;
}

/* The inlined build of the -call row @c (its variant_of), or NULL. */
static const struct series *call_inline(const struct series *c)
{
	const struct series *s = find_series(c->wl, c->path, c->unit, c->im->variant_of);

	return s && s->n && s->med > 0 ? s : NULL;
}

static void print_call_depth(void)
{
	unsigned i, j, head = 1;

	for (i = 0; i < N_CALL_ROWS; i++) {
		const struct series *a, *c;
		int first = 1;

		if (!call_pair(i, &a, &c))
			continue;
		if (head)
			printf("  at equal call depth (ratio = %s / best -call variant; "
			       "then each peer's -call / inlined, paired):\n",
			       OURS);
		head = 0;
		printf("  %-3s %-10s %9.2f %-6s  vs %-10s %9.2f: ratio %5.2f, paired %5.2f "
		       "(%s)\n",
		       wl_names[a->wl], a->path, a->med, a->unit, c->impl, c->med,
		       a->med / c->med, paired_ratio_of(a, NULL, is_call),
		       verdict(a->med, c->med, a->lower_better));
		for (j = 0; j < g_nseries; j++) {
			const struct series *o = &g_series[j], *inl;

			if (!is_call(o, a) || !(inl = call_inline(o)))
				continue;
			printf("%s %s %.2f", first ? "      " : ",", inl->impl,
			       paired_ratio(o, inl));
			first = 0;
		}
		if (!first)
			printf("\n");
	}
}

/* What each workload is, for the summary at a glance (README.md, "Workloads"). */
static const char *const wl_what[WL_N] = {
	"the machine's limits",
	"SPSC ring, one item per call",
	"SPSC ring, batches",
	"MPSC channel, 2 producers",
	"ping-pong round trip",
	"wake-up latency of an idle consumer",
	"MPSC channel, 1-8 producers",
	"MPSC channel, 32 producers, 1 sending",
	"SPMC / MPMC",
};

/* +1 when @x (a ratio of ours to a peer) says ours is better, -1 worse, 0 equal. */
static int ratio_sign(const struct series *s, double x)
{
	if (x == 1.0)
		return 0;
	return (s->lower_better ? x < 1.0 : x > 1.0) ? 1 : -1;
}

/*
 * The verdict at a glance: the paired ratio's (the steadier estimate,
 * README.md "Paired ratios"), "unclear" when the ratio of medians says the
 * opposite (the run crossed the machine's regimes).
 */
static const char *glance_verdict(const struct series *s, double ratio)
{
	int m = ratio_sign(s, ratio), p = s->paired > 0 ? ratio_sign(s, s->paired) : m;

	if (m * p < 0)
		return "unclear";
	if (!p)
		p = m;
	return p > 0 ? "better" : p < 0 ? "worse" : "equal";
}

/* A value in few characters: 87475, 33.8, 6.97. */
static void fmt_short(char *buf, size_t len, double v)
{
	if (v >= 100)
		snprintf(buf, len, "%.0f", v);
	else if (v >= 10)
		snprintf(buf, len, "%.1f", v);
	else
		snprintf(buf, len, "%.2f", v);
}

/* Whether row @s of ours is left out of the summary at a glance. */
static int glance_skip(const struct series *s)
{
	return strcmp(s->impl, OURS) || !s->n || s->aux ||
	       (s->wl == WL_W2 && strcmp(s->unit, "GB/s")) || /* the same / 125 */
	       !strcmp(s->path, "p50-step"); /* p50's former estimator */
}

/* Ours' rows that no peer has, in one line (wrapped at about 100 columns). */
static void print_glance_nopeer(void)
{
	const struct series *prev = NULL;
	unsigned i, col = 0;

	for (i = 0; i < g_nseries; i++) {
		const struct series *s = &g_series[i];
		int new_wl = !prev || prev->wl != s->wl;
		char item[96], val[32];

		if (glance_skip(s) || best_other(s))
			continue;
		if (!prev)
			col = (unsigned)printf("  no peer has:");
		else if (new_wl || strcmp(prev->unit, s->unit))
			col += (unsigned)printf(" %s;", prev->unit);
		else
			col += (unsigned)printf(",");
		fmt_short(val, sizeof val, s->med);
		snprintf(item, sizeof item, "%s%s%s %s", new_wl ? wl_names[s->wl] : "",
			 new_wl ? " " : "", s->path, val);
		if (col + 1 + strlen(item) > 100)
			col = (unsigned)printf("\n%14s", "") - 1;
		col += (unsigned)printf(" %s", item);
		prev = s;
	}
	if (prev)
		printf(" %s\n", prev->unit);
}

/*
 * The report's first lines: for each row of ours with a peer, the ratio to
 * the best peer, the paired ratio and what they say, then the figures; the
 * rows no peer has in one line. print_table() and print_summary() follow
 * with everything else.
 */
static void print_glance(void)
{
	const char *peers[N_IMPLS];
	unsigned i, j, npeers = 0, nbuilt = 0, nours = 0;
	int last_wl = -1;

	printf("At a glance: ratio = %s / best peer, paired = median over rounds of each "
	       "round's ratio; > 1 is better for Mmsg/s and GB/s, < 1 for ns\n",
	       OURS);
	for (i = 0; i < g_nseries; i++) {
		const struct series *s = &g_series[i];
		const struct series *b;
		char paired[16] = "-", row[40];
		double ratio;

		if (glance_skip(s))
			continue;
		nours++;
		b = best_other(s);
		if (!b || b->med <= 0)
			continue;
		ratio = s->med / b->med;
		if (last_wl < 0)
			printf("  %6s %6s  %-7s  %-14s %8s %6s   %s\n", "ratio", "paired",
			       "verdict", "row", OURS, "", "best peer");
		if (s->paired > 0)
			snprintf(paired, sizeof paired, "%.2f", s->paired);
		snprintf(row, sizeof row, "%s %s", wl_names[s->wl], s->path);
		printf("  %6.2f %6s  %-7s  %-14s %8.2f %-6s   %-6s %9.2f", ratio, paired,
		       glance_verdict(s, ratio), row, s->med, s->unit, b->impl, b->med);
		if ((int)s->wl != last_wl)
			printf("   %s", wl_what[s->wl]);
		last_wl = (int)s->wl;
		printf("\n");
	}
	if (!nours) {
		printf("  (%s not selected: see Details)\n", OURS);
		return;
	}
	print_glance_nopeer();
	/* The peers that ran, and whether any queue library was built in. */
	for (i = 0; i < g_nseries; i++) {
		const struct series *s = &g_series[i];

		if (!s->n || !s->im || s->im->variant_of || !strcmp(s->impl, OURS))
			continue;
		for (j = 0; j < npeers && strcmp(peers[j], s->impl); j++)
			;
		if (j == npeers)
			peers[npeers++] = s->impl;
	}
	for (i = 0; i < N_IMPLS; i++)
		if (!all_impls[i]->variant_of && strcmp(all_impls[i]->name, OURS))
			nbuilt++;
	printf("  peers:");
	for (j = 0; j < npeers; j++)
		printf("%s %s", j ? "," : "", peers[j]);
	if (!npeers)
		printf(" none selected");
	if (nbuilt == 1)
		printf(" (no peer queue library was found at build time; "
		       "sh .ci/install-deps bench, then rebuild)");
	printf("\n");
	if (pr.kept_slow)
		printf("  note: %u repetitions were kept from slow episodes of the machine "
		       "(the probes line at the end): read the paired ratios\n",
		       pr.kept_slow);
	if (!pin_ok)
		printf("  note: threads were NOT pinned (fewer than 2 usable CPUs)\n");
}

static void print_summary(void)
{
	const double memset_gbs = lim_value("memset", "GB/s");
	const double rt_ns = lim_value("cacheline-rt", "ns");
	const struct series *ours_best = NULL, *peer_best = NULL;
	unsigned i, nours = 0;

	printf("\nSummary (medians of kept repetitions; ratio = %s / best peer)\n", OURS);
	printf("  machine limits: memset %.2f GB/s into %zu KiB, cache-line round trip "
	       "p50 %.1f ns\n",
	       memset_gbs, g_l2_size >> 10, rt_ns);
	for (i = 0; i < g_nseries; i++) {
		const struct series *s = &g_series[i];
		const struct series *b;

		if (strcmp(s->impl, OURS) || !s->n)
			continue;
		if (s->wl == WL_W2 && strcmp(s->unit, "GB/s"))
			continue; /* Mmsg/s is the same figure / 125 */
		if (s->aux)
			continue; /* with its case's rows */
		nours++;
		b = best_other(s);
		printf("  %-3s %-10s %9.2f %-6s", wl_names[s->wl], s->path, s->med,
		       s->unit);
		if (b)
			printf("  vs %-8s %9.2f: ratio %5.2f, paired %5.2f (%s)", b->impl,
			       b->med, b->med > 0 ? s->med / b->med : 0.0, s->paired,
			       verdict(s->med, b->med, s->lower_better));
		else
			printf("  %-55s", "  (no peer has this path)");
		if (s->wl == WL_W2 && memset_gbs > 0)
			printf("; %.3f of memset", s->med / memset_gbs);
		if (s->wl == WL_W4 && rt_ns > 0 && strcmp(s->path, "p99"))
			printf("; %.2fx the cache-line RT", s->med / rt_ns);
		if (s->cpu && s->cpu->n && !strcmp(s->cpu->unit, "cpu/wall"))
			printf("; consumer CPU %.3f of wall", s->cpu->med);
		else if (s->cpu && s->cpu->n)
			printf("; %.2f %s", s->cpu->med, s->cpu->unit);
		printf("\n");
	}
	/* W2: the best path of ours against the best path of any peer. */
	for (i = 0; i < g_nseries; i++) {
		const struct series *s = &g_series[i];

		if (s->wl != WL_W2 || strcmp(s->unit, "GB/s") || !s->n)
			continue;
		if (!strcmp(s->impl, OURS)) {
			if (!ours_best || s->med > ours_best->med)
				ours_best = s;
		} else if (strcmp(family(s), OURS) && !(s->im && s->im->variant_of) &&
			   (!peer_best || s->med > peer_best->med)) {
			peer_best = s;
		}
	}
	if (ours_best && peer_best)
		printf("  W2  best path: %s %s %.2f GB/s vs %s %s %.2f GB/s: ratio %.2f (%s)\n",
		       OURS, ours_best->path, ours_best->med, peer_best->impl,
		       peer_best->path, peer_best->med, ours_best->med / peer_best->med,
		       verdict(ours_best->med, peer_best->med, 0));
	if (!nours)
		printf("  (%s not selected)\n", OURS);
	for (unsigned g = 0; g < N_AB_GROUPS; g++) {
		for (i = 0; i < N_AB_ROWS; i++) {
			const struct series *a, *p;

			if (strcmp(ab_rows[i].variant, ab_groups[g].variant) ||
			    !ab_pair(i, &a, &p))
				continue;
			printf("  %s %-3s %-9s: %s %.2f / %s %.2f %s: ratio %.3f, "
			       "paired %.3f\n",
			       ab_groups[g].label, wl_names[ab_rows[i].wl], ab_rows[i].path,
			       OURS, a->med, ab_rows[i].variant, p->med, a->unit,
			       a->med / p->med, paired_ratio(a, p));
		}
	}
	{
		const struct series *a, *b;

		if (skip_pair(&a, &b))
			printf("  W7  adaptive skip: %.2f Mmsg/s, %.2f polls/msg; without: "
			       "%.2f Mmsg/s, %.2f polls/msg: ratio %.2f, paired %.2f\n",
			       a->med, a->cpu ? a->cpu->med : 0.0, b->med,
			       b->cpu ? b->cpu->med : 0.0, a->med / b->med,
			       paired_ratio(a, b));
	}
	print_call_depth();
	printf("  repetitions repeated after a slow probe: %u; kept slow: %u; "
	       "probes: %u (%u slow, lowest %.1f ns, median %.1f ns)\n",
	       pr.repeated, pr.kept_slow, pr.n, pr.slow,
	       pr.lowest < 1e300 ? pr.lowest : 0.0, median_of(pr.all, pr.n));
	if (!pin_ok)
		printf("  note: threads were NOT pinned (fewer than 2 usable CPUs)\n");
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void json_num(FILE *f, double v)
{
	if (v != v || v > 1e300 || v < -1e300)
		fputs("null", f);
	else
		fprintf(f, "%.6g", v);
}

static void json_stats(FILE *f, const struct series *s, int probes)
{
	unsigned j;

	fputs("\"median\": ", f);
	json_num(f, s->med);
	fputs(", \"min\": ", f);
	json_num(f, s->min);
	fputs(", \"max\": ", f);
	json_num(f, s->max);
	fputs(", \"reps\": [", f);
	for (j = 0; j < s->n; j++) {
		if (j)
			fputs(", ", f);
		json_num(f, s->v[j]);
	}
	fputc(']', f);
	if (!probes)
		return;
	fputs(", \"probes_ns\": [", f);
	for (j = 0; j < s->n; j++) {
		fputs(j ? ", [" : "[", f);
		json_num(f, s->probe[2 * j]);
		fputs(", ", f);
		json_num(f, s->probe[2 * j + 1]);
		fputc(']', f);
	}
	fputc(']', f);
}

static void write_json(FILE *f, double timer_ns, double elapsed_s)
{
	const double memset_gbs = lim_value("memset", "GB/s");
	const double rt_ns = lim_value("cacheline-rt", "ns");
	unsigned i, first = 1;

	fprintf(f, "{\n  \"bench\": \"bench_ring\",\n  \"library_version\": ");
	json_str(f, rmpsc_version_string());
	fprintf(f,
		",\n  \"mode\": \"%s\",\n  \"reps_per_case\": %u,\n  \"capacity\": %u,\n"
		"  \"w2_batch\": %u,\n  \"w6_batch\": %u,\n  \"w6_consumer_max\": %u,\n"
		"  \"w7_idle_producers\": %u,\n  \"elapsed_s\": %.2f,\n",
		mode.name, mode.reps, (unsigned)CAPACITY, (unsigned)BATCH, (unsigned)W6_BATCH,
		(unsigned)W6_CONS_MAX, (unsigned)W7_IDLE, elapsed_s);
	fprintf(f, "  \"machine\": {\"cpu_model\": ");
	json_str(f, g_cpu_model);
	fprintf(f, ", \"nproc\": %ld, \"kernel\": ", g_nproc);
	json_str(f, g_kernel);
	fprintf(f,
		", \"l2_bytes\": %zu, \"l2_source\": \"%s\", \"memset_gbs\": ", g_l2_size,
		g_l2_source);
	json_num(f, memset_gbs);
	fputs(", \"cacheline_rt_ns\": ", f);
	json_num(f, rt_ns);
	fprintf(f,
		", \"date\": \"%s\", \"cpus\": [%d, %d], \"pinned\": %s, "
		"\"timer\": \"%s\", \"tsc_ghz\": ",
		g_date, cpu_a, cpu_b, pin_ok ? "true" : "false",
		use_tsc ? "lfence+rdtsc" : "clock_gettime");
	json_num(f, use_tsc ? tsc_per_ns : 0.0);
	fputs(", \"timer_overhead_ns\": ", f);
	json_num(f, timer_ns);
	fprintf(f, ", \"harness_isa\": \"%s\", \"compiler\": ", HARNESS_ISA);
	json_str(f, __VERSION__);
	fprintf(f,
		"},\n  \"repeated_reps\": %u,\n  \"kept_slow_reps\": %u,\n"
		"  \"probes\": {\"count\": %u, \"slow\": %u, \"lowest_ns\": ",
		pr.repeated, pr.kept_slow, pr.n, pr.slow);
	json_num(f, pr.lowest < 1e300 ? pr.lowest : 0.0);
	fputs(", \"median_ns\": ", f);
	json_num(f, median_of(pr.all, pr.n));
	fprintf(f,
		"},\n  \"w5\": {\"samples_per_rep\": %" PRIu64
		", \"pause_ns\": [%llu, %llu]},\n",
		mode.wake_max, WAKE_PAUSE_MIN_NS, WAKE_PAUSE_MAX_NS);
	for (unsigned g = 0; g < N_AB_GROUPS; g++) {
		const char *variant = ab_groups[g].variant;

		fprintf(f, "%s  \"%s\": {", g ? "},\n" : "", ab_groups[g].json);
		first = 1;
		for (i = 0; i < N_AB_ROWS; i++) {
			const struct series *a, *p;

			if (strcmp(ab_rows[i].variant, variant) || !ab_pair(i, &a, &p))
				continue;
			fprintf(f, "%s\"%s\": {\"unit\": \"%s\", \"%s\": ",
				first ? "" : ", ", ab_rows[i].key, a->unit, OURS);
			first = 0;
			json_num(f, a->med);
			fprintf(f, ", \"%s\": ", variant);
			json_num(f, p->med);
			fputs(", \"ratio\": ", f);
			json_num(f, a->med / p->med);
			fputs(", \"paired_ratio\": ", f);
			json_num(f, paired_ratio(a, p));
			fputc('}', f);
		}
	}
	{
		const struct series *a, *b;

		fputs("},\n  \"adaptive_skip\": {", f);
		if (skip_pair(&a, &b)) {
			fputs("\"skip_mmsg_s\": ", f);
			json_num(f, a->med);
			fputs(", \"noskip_mmsg_s\": ", f);
			json_num(f, b->med);
			fputs(", \"skip_polls_per_msg\": ", f);
			json_num(f, a->cpu ? a->cpu->med : 0.0);
			fputs(", \"noskip_polls_per_msg\": ", f);
			json_num(f, b->cpu ? b->cpu->med : 0.0);
			fputs(", \"ratio\": ", f);
			json_num(f, a->med / b->med);
			fputs(", \"paired_ratio\": ", f);
			json_num(f, paired_ratio(a, b));
		}
	}
	fputs("},\n  \"call_depth\": {", f);
	first = 1;
	for (i = 0; i < N_CALL_ROWS; i++) {
		const struct series *a, *c, *b;
		unsigned j, firstp = 1;

		if (!call_pair(i, &a, &c))
			continue;
		b = best_other(a);
		fprintf(f, "%s\"%s\": {\"unit\": \"%s\", \"%s\": ", first ? "" : ", ",
			call_rows[i].key, a->unit, OURS);
		first = 0;
		json_num(f, a->med);
		if (b && b->med > 0) {
			fputs(", \"best_peer\": ", f);
			json_str(f, b->impl);
			fputs(", \"best_peer_median\": ", f);
			json_num(f, b->med);
			fputs(", \"ratio_vs_best_peer\": ", f);
			json_num(f, a->med / b->med);
			fputs(", \"paired_ratio_vs_best_peer\": ", f);
			json_num(f, a->paired);
		}
		fputs(", \"best_call\": ", f);
		json_str(f, c->impl);
		fputs(", \"best_call_median\": ", f);
		json_num(f, c->med);
		fputs(", \"ratio_vs_best_call\": ", f);
		json_num(f, a->med / c->med);
		fputs(", \"paired_ratio_vs_best_call\": ", f);
		json_num(f, paired_ratio_of(a, NULL, is_call));
		fputs(", \"call_vs_inline\": {", f);
		for (j = 0; j < g_nseries; j++) {
			const struct series *o = &g_series[j], *inl;

			if (!is_call(o, a) || !(inl = call_inline(o)))
				continue;
			fprintf(f, "%s", firstp ? "" : ", ");
			firstp = 0;
			json_str(f, inl->impl);
			fputs(": {\"inline\": ", f);
			json_num(f, inl->med);
			fputs(", \"call\": ", f);
			json_num(f, o->med);
			fputs(", \"ratio\": ", f);
			json_num(f, o->med / inl->med);
			fputs(", \"paired_ratio\": ", f);
			json_num(f, paired_ratio(o, inl));
			fputc('}', f);
		}
		fputs("}}", f);
	}
	first = 1;
	fputs("},\n  \"records\": [\n", f);
	for (i = 0; i < g_nseries; i++) {
		const struct series *s = &g_series[i];
		const struct series *b, *alt = NULL;

		if (!s->n || s->aux)
			continue;
		/* W2: one record per path, in GB/s, carrying its Mmsg/s. */
		if (s->wl == WL_W2 && !strcmp(s->unit, "Mmsg/s"))
			continue;
		if (s->wl == WL_W2)
			alt = find_series(WL_W2, s->path, "Mmsg/s", s->impl);
		b = best_other(s);
		fprintf(f, "%s    {\"workload\": \"%s\", \"impl\": ", first ? "" : ",\n",
			wl_names[s->wl]);
		first = 0;
		json_str(f, s->impl);
		fprintf(f, ", \"path\": \"%s\", \"unit\": \"%s\", ", s->path, s->unit);
		if (s->im && s->im->variant_of) {
			fputs("\"variant_of\": ", f);
			json_str(f, s->im->variant_of);
			fputs(", ", f);
		}
		if (s->im && (s->im->flags & BENCH_F_CALL))
			fputs("\"call_variant\": true, ", f);
		json_stats(f, s, 1);
		if (b) {
			fputs(", \"best_other\": ", f);
			json_str(f, b->impl);
			fputs(", \"ratio_vs_best_other\": ", f);
			json_num(f, b->med > 0 ? s->med / b->med : 0.0);
			fputs(", \"paired_ratio\": ", f);
			json_num(f, s->paired);
		}
		if (alt && alt->n) {
			fputs(", \"mmsg_s\": {", f);
			json_stats(f, alt, 1);
			fputc('}', f);
		}
		if (s->cpu && s->cpu->n) {
			fputs(strcmp(s->cpu->unit, "cpu/wall") ? ", \"polls_per_msg\": {"
							       : ", \"consumer_cpu\": {",
			      f);
			json_stats(f, s->cpu, 0);
			fputc('}', f);
		}
		if (s->wl == WL_W2 && memset_gbs > 0) {
			fputs(", \"fraction_of_memset\": ", f);
			json_num(f, s->med / memset_gbs);
		}
		if (s->wl == WL_W4 && rt_ns > 0) {
			fputs(", \"x_cacheline_rt\": ", f);
			json_num(f, s->med / rt_ns);
		}
		fputc('}', f);
	}
	fputs("\n  ]\n}\n", f);
}

/* ------------------------------------------------------------------------ */
/* Options and main                                                         */
/* ------------------------------------------------------------------------ */

static void usage(FILE *f)
{
	unsigned i;

	fprintf(f,
		"usage: bench_ring [--quick] [--reps N] [--only LIST] [--impl LIST]\n"
		"                  [--json FILE] [--verbose] [--help]\n"
		"  --quick        short repetitions, %u reps: the whole run in under a minute\n"
		"                 (the channel workloads W6-W8 only when --only names them)\n"
		"  --reps N       repetitions per (workload, path, impl), %d..%d\n"
		"                 (default %u, %u with --quick)\n"
		"  --only LIST    workloads, comma-separated: W1,W2,W3,W4,W5,W6,W7,W8,LIM\n"
		"                 (LIM, the machine limits the ratios use, always runs)\n"
		"  --impl LIST    implementations, comma-separated:",
		mode_quick.reps, REPS_MIN, REPS_MAX, mode_full.reps, mode_quick.reps);
	for (i = 0; i < N_IMPLS; i++)
		fprintf(f, "%s%s", i ? "," : " ", all_impls[i]->name);
	fprintf(f,
		"\n  --json FILE    also write every result as JSON to FILE\n"
		"  --verbose      one line per repetition on stderr\n"
		"Exit: 0 done, 1 a received value was wrong or a run failed, 2 bad usage.\n");
}

static void __attribute__((noreturn, format(printf, 1, 2)))
bad_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "bench_ring: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	usage(stderr);
	exit(2);
}

/* Calls @fn on each comma-separated item of @list. */
static void for_each_item(const char *list, void (*fn)(const char *item, void *ctx),
			  void *ctx)
{
	char *copy = strdup(list), *save = NULL, *tok;

	if (!copy)
		die(1, "out of memory");
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		fn(tok, ctx);
	free(copy);
}

static int wl_selected[WL_N];
static int impl_selected[N_IMPLS];

static void select_wl(const char *item, void *ctx)
{
	unsigned i;

	(void)ctx;
	for (i = 0; i < WL_N; i++) {
		if (!strcasecmp(item, wl_names[i])) {
			wl_selected[i] = 1;
			return;
		}
	}
	bad_usage("unknown workload '%s' (W1 ... W8, LIM)", item);
}

static void select_impl(const char *item, void *ctx)
{
	unsigned i;

	(void)ctx;
	for (i = 0; i < N_IMPLS; i++) {
		if (!strcmp(item, all_impls[i]->name)) {
			impl_selected[i] = 1;
			return;
		}
	}
	bad_usage("unknown implementation '%s'", item);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "quick", no_argument, NULL, 'q' },
		{ "reps", required_argument, NULL, 'r' },
		{ "only", required_argument, NULL, 'o' },
		{ "impl", required_argument, NULL, 'i' },
		{ "json", required_argument, NULL, 'j' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const struct bench_impl *sel[N_IMPLS];
	struct bcase *cases;
	const char *json_path = NULL, *only = NULL, *impls = NULL;
	unsigned long reps = 0;
	unsigned nsel = 0, ncases = 0, i, r, k;
	int quick = 0, c;
	double timer_ns;
	FILE *jf = NULL;

	g_no_ex = getenv("RMPSC_BENCH_NO_EX") && strcmp(getenv("RMPSC_BENCH_NO_EX"), "0");
	while ((c = getopt_long(argc, argv, "qr:o:i:j:vh", opts, NULL)) != -1) {
		switch (c) {
		case 'q':
			quick = 1;
			break;
		case 'r': {
			char *end;

			errno = 0;
			reps = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end ||
			    !isdigit((unsigned char)*optarg) || reps < REPS_MIN ||
			    reps > REPS_MAX)
				bad_usage(
					"--reps wants an integer from 5 to 1000, not '%s'",
					optarg);
			break;
		}
		case 'o':
			only = optarg;
			break;
		case 'i':
			impls = optarg;
			break;
		case 'j':
			json_path = optarg;
			break;
		case 'v':
			verbose = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc)
		bad_usage("unexpected argument '%s'", argv[optind]);
	mode = quick ? mode_quick : mode_full;
	if (reps)
		mode.reps = (unsigned)reps;
	if (only) {
		for_each_item(only, select_wl, NULL);
		for (i = 0; i < WL_N && !wl_selected[i]; i++)
			;
		if (i == WL_N)
			bad_usage("--only '%s' names no workload", only);
	} else {
		for (i = 0; i < WL_N; i++)
			wl_selected[i] = !(quick && wl_is_channel((enum wl_id)i));
		if (quick)
			fprintf(stderr, "bench_ring: --quick: the channel workloads "
					"(W6, W7, W8) run only when --only names them\n");
	}
	wl_selected[WL_LIM] = 1;
	if (impls)
		for_each_item(impls, select_impl, NULL);
	else
		for (i = 0; i < N_IMPLS; i++)
			impl_selected[i] = 1;
	for (i = 0; i < N_IMPLS; i++)
		if (impl_selected[i])
			sel[nsel++] = all_impls[i];
	if (!nsel)
		bad_usage("%s", "no implementation selected");
	/* Adapters that need it set up now; one that cannot run is left out. */
	for (i = k = 0; i < nsel; i++) {
		char why[512] = "";

		if (sel[i]->init && sel[i]->init(why, sizeof why)) {
			fprintf(stderr, "bench_ring: skipping %s: %s\n", sel[i]->name,
				why[0] ? why : "not available");
			continue;
		}
		sel[k++] = sel[i];
	}
	nsel = k;
	if (!nsel)
		die(1, "%s", "no selected implementation can run");
	if (json_path) {
		jf = fopen(json_path, "w");
		if (!jf) {
			fprintf(stderr, "bench_ring: cannot write %s: %s\n", json_path,
				strerror(errno));
			return 2;
		}
	}

	g_start_ns = now_ns();
	choose_cpus();
	machine_info();
	calibrate();
	timer_ns = timer_overhead_ns();
	g_samples = xalloc(64, (mode.lat_max > mode.rt_max ? mode.lat_max : mode.rt_max) *
				       sizeof *g_samples);
	g_pbuf = xalloc(64, BATCH * sizeof *g_pbuf);
	g_cbuf = xalloc(64, BATCH * sizeof *g_cbuf);
	g_line = xalloc(128, 128);
	g_mbuf = xalloc(64, g_l2_size);

	/* Series in print order: workload, path, unit, implementation. */
	g_series = xalloc(8, (C_N * 4 * (N_IMPLS + 1)) * sizeof *g_series);
	for (k = 0; k < C_N; k++) {
		const struct case_spec *sp = &case_specs[k];
		unsigned m;

		if (!wl_selected[sp->wl])
			continue;
		for (m = 0; m < sp->nm; m++) {
			for (i = 0; i < (sp->wl == WL_LIM ? 1 : nsel); i++) {
				const struct bench_impl *im =
					sp->wl == WL_LIM ? NULL : sel[i];
				struct series *s = &g_series[g_nseries];

				if (!case_supported((enum case_kind)k, im))
					continue;
				s->wl = sp->wl;
				s->path = sp->m[m].path;
				s->unit = sp->m[m].unit;
				s->impl = im ? im->name : "machine";
				s->im = im;
				s->lower_better = sp->m[m].lower_better;
				s->aux = sp->m[m].aux;
				s->v = xalloc(8, mode.reps * sizeof *s->v);
				s->probe = xalloc(8, 2 * mode.reps * sizeof *s->probe);
				g_nseries++;
			}
		}
	}
	cases = xalloc(8, C_N * (N_IMPLS + 1) * sizeof *cases);
	g_cases = cases;
	for (k = 0; k < C_N; k++) {
		const struct case_spec *sp = &case_specs[k];

		if (!wl_selected[sp->wl])
			continue;
		for (i = 0; i < (sp->wl == WL_LIM ? 1 : nsel); i++) {
			const struct bench_impl *im = sp->wl == WL_LIM ? NULL : sel[i];
			struct bcase *bc = &cases[ncases];
			unsigned m;

			if (!case_supported((enum case_kind)k, im))
				continue;
			bc->kind = (enum case_kind)k;
			bc->im = im;
			for (m = 0; m < sp->nm; m++)
				bc->s[m] =
					find_series(sp->wl, sp->m[m].path, sp->m[m].unit,
						    im ? im->name : "machine");
			/* W5: the latency rows carry their case's CPU series. */
			for (m = 0; m < sp->nm; m++)
				if (sp->m[m].aux) {
					unsigned o;

					for (o = 0; o < sp->nm; o++)
						if (!sp->m[o].aux)
							bc->s[o]->cpu = bc->s[m];
				}
			ncases++;
		}
	}
	g_ncases = ncases;

	fprintf(stderr,
		"bench_ring: libringmpsc %s, %s mode, %u reps, %u cases, "
		"CPUs %d/%d%s, L2 %zu KiB (%s), timer %s (%.2f GHz, %.1f ns), %s ISA\n",
		rmpsc_version_string(), mode.name, mode.reps, ncases, cpu_a, cpu_b,
		pin_ok ? "" : " (unpinned)", g_l2_size >> 10, g_l2_source,
		use_tsc ? "lfence+rdtsc" : "clock_gettime", use_tsc ? tsc_per_ns : 0.0,
		timer_ns, HARNESS_ISA);

	/*
	 * Rounds: every case once per round. Within a round, workload after
	 * workload; within a workload the implementations take turns, the
	 * first one rotating from round to round.
	 */
	for (r = 0; r < mode.reps; r++) {
		unsigned before = pr.repeated;

		for (k = 0; k < WL_N; k++) {
			unsigned j;

			if (!wl_selected[k])
				continue;
			if (k == WL_LIM) {
				for (i = 0; i < ncases; i++)
					if (case_specs[cases[i].kind].wl == WL_LIM)
						run_rep(&cases[i]);
				continue;
			}
			for (j = 0; j < nsel; j++) {
				const struct bench_impl *im = sel[(r + j) % nsel];

				for (i = 0; i < ncases; i++)
					if (case_specs[cases[i].kind].wl ==
						    (enum wl_id)k &&
					    cases[i].im == im)
						run_rep(&cases[i]);
			}
		}
		fprintf(stderr, "bench_ring: round %u/%u done, %.1f s, %u repeated\n",
			r + 1, mode.reps, (double)(now_ns() - g_start_ns) / 1e9,
			pr.repeated - before);
	}

	finish_series();
	print_glance();
	printf("\nDetails\n");
	printf("bench_ring: libringmpsc %s, %s mode, %u reps per case, capacity %u, "
	       "CPUs %d/%d%s, harness ISA %s\n",
	       rmpsc_version_string(), mode.name, mode.reps, (unsigned)CAPACITY, cpu_a,
	       cpu_b, pin_ok ? "" : " (unpinned)", HARNESS_ISA);
	printf("machine: %s, %ld CPUs, %s, L2 %zu KiB (%s), %s\n", g_cpu_model, g_nproc,
	       g_kernel, g_l2_size >> 10, g_l2_source, g_date);
	print_table();
	print_summary();
	if (jf) {
		write_json(jf, timer_ns, (double)(now_ns() - g_start_ns) / 1e9);
		if (fclose(jf))
			die(1, "writing %s failed", json_path);
	}
	printf("elapsed %.1f s\n", (double)(now_ns() - g_start_ns) / 1e9);
	free(cases);
	return 0;
}
