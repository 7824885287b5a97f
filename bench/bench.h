/* SPDX-License-Identifier: MIT */
/*
 * bench.h: what the files of bench_ring share.
 *
 *   bench_ring.c     the command line, main, and the two registration tables:
 *                    the implementations (bench_impl.h) and the workloads
 *   bench_run.c      the runner: threads, cases, rounds, probes, repeats, budget
 *   bench_machine.c  the clock, the CPUs, and the machine the report names
 *   bench_report.c   the report: at a glance, the table, the summary, JSON
 *   wl_<family>.c    the workloads, one file per family (README.md, "Adding a
 *                    workload"); their per-item loops come from bench_loop.h
 *
 * A workload is a `struct bench_workload`: its id, its cases, and for each
 * case the rows it measures (path, unit, direction) and the function that
 * runs one repetition. The runner and the report read nothing else about it.
 */
#ifndef RMPSC_BENCH_H
#define RMPSC_BENCH_H

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "bench_impl.h"

#define BENCH_NELEM(a) (sizeof(a) / sizeof((a)[0]))

#define BENCH_OURS	     "ringmpsc"
#define BENCH_OURS_POLL	     "ringmpsc-poll" /* the RMPSC_NO_WAKE build, for the wake A/B */
#define BENCH_OURS_METRICS   "ringmpsc-metrics"	  /* the MPSC channel with metrics on */
#define BENCH_OURS_NOMETRICS "ringmpsc-nometrics" /* ...and with metrics compiled out */

#define MS (1000000ull)

#ifdef BENCH_NATIVE
#define BENCH_HARNESS_ISA "native"
#else
#define BENCH_HARNESS_ISA "baseline"
#endif

/* Parameters every workload and the JSON header share. */
enum {
	CAPACITY = 65536,   /* slots per queue, every workload and impl */
	BATCH = 32768,	    /* W2 batch; the size of the copy buffers */
	W6_BATCH = 32,	    /* W6 producer batch (DPDK's customary burst) */
	W6_CONS_MAX = 256,  /* W6/W7 consumer: items per call at most */
	W7_IDLE = 31,	    /* W7: registered producers that never send */
	W8_BURST = 32,	    /* W8 burst rows: items per producer call, and per consumer call at most */
	MAX_THREADS = 2 * BENCH_MAX_PROD + 1,
	SPIN_YIELD = 1024,  /* consecutive failed tries before a sched_yield */
	REPS_MIN = 5,
	REPS_MAX = 1000,
	BENCH_MAX_METRICS = 4, /* rows one case fills */
};

#define WAKE_PAUSE_MIN_NS 20000ull  /* W5 pause before each message... */
#define WAKE_PAUSE_MAX_NS 200000ull /* ...uniform in [min, max] */

/* Durations per mode. Throughput reps run for a fixed time (the producers
 * stop at a flag, the consumer drains the exact total) so a slow peer cannot
 * stretch the run; latency reps stop at a count or a time. */
struct bench_mode {
	const char *name;
	uint64_t tput_ns;      /* W1-W3 */
	uint64_t lat_ns;       /* W4 */
	uint64_t call_tput_ns; /* W1 of the -call variants (BENCH_F_CALL) */
	uint64_t call_lat_ns;  /* W4 of the -call variants */
	uint64_t chan_tput_ns; /* W6-W8 */
	uint64_t lat_max;      /* W4 round trips at most */
	uint64_t memset_ns;    /* LIM memset */
	uint64_t wake_ns;      /* W5: longest repetition */
	uint64_t wake_max;     /* W5 samples per repetition */
	uint64_t rt_ns;	       /* LIM cache-line round trip */
	uint64_t rt_max;
	uint64_t probe_ns; /* probe around every rep */
	uint64_t probe_wait_ns;
	unsigned probe_waits; /* re-probes while waiting out a slow episode */
	uint64_t calib_ns;
	double budget_s; /* repeat only while the projected run fits; 0: no limit */
	unsigned reps;
};

/* ---- Threads (bench_run.c) ----------------------------------------------- */

struct bench_run;
struct bench_worker;
typedef void (*bench_worker_fn)(struct bench_worker *w);

struct bench_worker {
	_Alignas(128) struct bench_run *run;
	bench_worker_fn fn;
	int cpu;      /* -1: any allowed CPU */
	unsigned idx; /* producer (or W8 consumer) index */
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

struct bench_run {
	/* Read by every worker, written once each: parameters and flags. */
	_Alignas(128) const struct bench_impl *impl;
	const char *what; /* "W3 pinned ringmpsc": for messages */
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
	struct bench_worker w[MAX_THREADS];
};

/* ---- Workloads (wl_<family>.c, registered in bench_ring.c) -------------- */

/* struct bench_metric.flags */
enum {
	BENCH_M_LOWER = 1u << 0, /* lower is better (ns) */
	/* Not a row of its own: a figure the case's rows carry (a note under
	 * the table, `key` in their JSON records; W5's consumer CPU). */
	BENCH_M_AUX = 1u << 1,
	/* The case's first row in another unit: a table row, and `key` in
	 * the first row's JSON record; left out of the lines at a glance and
	 * the summary (W2's Mmsg/s). */
	BENCH_M_TWIN = 1u << 2,
	BENCH_M_NO_GLANCE = 1u << 3, /* left out of the lines at a glance */
	BENCH_M_MEMSET = 1u << 4,    /* also as a fraction of LIM memset */
	BENCH_M_RT = 1u << 5,	     /* also as a multiple of LIM cacheline-rt (JSON) */
	BENCH_M_RT_SUMMARY = 1u << 6, /* ...and in the summary */
	BENCH_M_CALL = 1u << 7,	     /* compared at equal call depth ("Call depth") */
};

/* One row a case measures: (workload, path, unit) names a row of the table
 * and a JSON record per implementation. */
struct bench_metric {
	const char *path; /* "single", "p50"; NULL ends a case's list */
	const char *unit; /* "Mmsg/s", "GB/s", "ns": the JSON record's "unit" */
	unsigned flags;	  /* BENCH_M_* */
	const char *key;  /* BENCH_M_AUX, BENCH_M_TWIN: the JSON member */
	/* BENCH_M_AUX: the heading of its note under the table, and its
	 * part of the summary line (a printf format taking the median). */
	const char *note;
	const char *summary;
};

struct bench_case;

/*
 * One repetition of @c for run->impl (NULL in a machine workload): start
 * the threads (bench_run_case_threads(), or bench_run_threads() for another
 * layout), check what they did (a wrong value or count is bench_die(1,
 * ...)) and write each metric's value to m[i]. run is fresh (zeroed, nprod
 * 1, what named); the runner frees it afterwards.
 */
typedef void (*bench_measure_fn)(struct bench_run *run, const struct bench_case *c,
				 double *m);

/* A path of a workload: what one repetition measures, and how. */
struct bench_case {
	const char *label; /* "pinned": progress lines and messages */
	struct bench_metric m[BENCH_MAX_METRICS];
	bench_measure_fn measure;
	/* Whether @im has the calls the case needs; NULL: every adapter. */
	int (*supported)(const struct bench_impl *im);
	/* The threads measure() starts; their use is the family's. */
	bench_worker_fn producer, consumer;
	unsigned nprod, ncons;
	unsigned arg; /* the family's own parameter (its file says) */
};

/* An A/B of two of ours' cases within a workload (W7 skip / noskip): a line
 * in the summary and a JSON object of its own. */
struct bench_pair {
	const char *json;  /* the object's key: "adaptive_skip" */
	const char *label; /* "adaptive skip" */
	const char *a, *b; /* the two cases' first paths */
	const char *b_label; /* "without" */
};

/* struct bench_workload.flags */
enum {
	/* Measures the machine, not an implementation: its cases run once
	 * per round with run->impl NULL (impl "machine"), and it always runs
	 * (the ratios to the limits need it). */
	BENCH_WL_MACHINE = 1u << 0,
	/* --quick runs it only when --only names it. */
	BENCH_WL_NOT_QUICK = 1u << 1,
	/* The summary compares ours' best path with any peer's best path. */
	BENCH_WL_BEST_PATH = 1u << 2,
};

struct bench_workload {
	const char *id;	  /* "W1": --only, the report's first column, JSON "workload" */
	const char *what; /* what it is, at a glance */
	/* Its bit in bench_impl.workloads (BENCH_WL_W*); 0: only adapters
	 * that take every workload run it. */
	uint32_t impl_bit;
	unsigned flags; /* BENCH_WL_* */
	const struct bench_case *cases;
	unsigned ncases;
	const struct bench_pair *pair; /* optional */
};

/* bench_workload.cases and .ncases from an array of cases. */
#define BENCH_CASES(array) .cases = (array), .ncases = BENCH_NELEM(array)

/* The registration tables (bench_ring.c). */
extern const struct bench_workload *const bench_workloads[];
extern const unsigned bench_nworkloads;
extern const struct bench_impl *const bench_impls[];
extern const unsigned bench_nimpls;

/* ---- Results (bench_run.c builds them, bench_report.c prints them) ------- */

struct bench_series {
	const struct bench_workload *wl;
	const char *path;
	const char *unit;
	const char *impl;
	const struct bench_impl *im; /* NULL: "machine" */
	unsigned flags;		     /* its metric's BENCH_M_* */
	const struct bench_metric *metric;
	struct bench_series *aux;  /* the BENCH_M_AUX series of the same case */
	struct bench_series *twin; /* the BENCH_M_TWIN series of the same case */
	/* v[i] is from round i: every case runs once per round, so the i-th
	 * values of two series were measured close together in time. */
	double *v;
	double *probe; /* [2 * i], [2 * i + 1]: the probes around v[i], ns */
	unsigned n;
	double med, min, max;
	double paired; /* median over rounds of v[i] / best other v[i]; 0: none */
};

extern struct bench_series *bench_series;
extern unsigned bench_nseries;

struct bench_probes {
	double last;   /* p50 of the most recent probe */
	int have_last; /* nothing has run since it */
	double lowest;
	double *all;
	unsigned n, cap;
	unsigned slow;	    /* probes in a slow episode */
	unsigned repeated;  /* repetitions discarded and run again */
	unsigned kept_slow; /* kept despite a slow probe (retries or budget used up) */
	unsigned waits;	    /* re-probes while waiting for an episode to end */
};

extern struct bench_probes bench_probes;

/* ---- The machine (bench_machine.c) --------------------------------------- */

struct bench_host {
	char cpu_model[256];
	char kernel[256];
	char date[64];
	long nproc;
	size_t l2_size;
	const char *l2_source;
	cpu_set_t allowed_cpus;
	int cpu_a, cpu_b; /* producer side / consumer side */
	int pin_ok;
	double timer_ns; /* the round-trip timer's own cost */
};

extern struct bench_host bench_host;
/* The round-trip timer (bench_ticks(), bench_loop.h). */
extern int bench_use_tsc;
extern double bench_tsc_per_ns;

void bench_choose_cpus(void);
void bench_machine_info(void);
void bench_calibrate(void);
double bench_ticks_to_ns(uint64_t t);

/* ---- Shared state and helpers (bench_run.c) ------------------------------ */

extern struct bench_mode bench_mode;
extern int bench_verbose;
extern int bench_no_ex; /* RMPSC_BENCH_NO_EX: ignore bench_impl.ex */
extern uint64_t bench_start_ns;

/* Buffers allocated once (bench_alloc_buffers). */
struct bench_buffers {
	uint64_t *samples;	  /* round-trip samples (ticks) */
	uint64_t *pbuf, *cbuf;	  /* producer and consumer copy buffers, BATCH each */
	_Atomic uint64_t *line;	  /* the cache-line round trip's line */
	unsigned char *mbuf;	  /* LIM memset, L2-sized */
};

extern struct bench_buffers bench_buf;

void __attribute__((noreturn, format(printf, 2, 3))) bench_die(int code, const char *fmt, ...);
void *bench_xalloc(size_t align, size_t size);
uint64_t bench_now_ns(void);
void bench_sleep_ns(uint64_t ns);
double bench_median_of(const double *v, unsigned n);

void __attribute__((format(printf, 2, 3))) bench_worker_fail(struct bench_worker *w,
							     const char *fmt, ...);
void bench_run_threads(struct bench_run *run, unsigned n, uint64_t duration_ns);
void bench_run_case_threads(struct bench_run *run, const struct bench_case *c,
			    unsigned np, unsigned nc, int pin, uint64_t duration_ns);
void bench_producer_done(struct bench_worker *w, uint64_t count);
void *bench_create_or_die(const struct bench_impl *im);
double bench_rate_mmsg(uint64_t items, uint64_t t0, uint64_t t1);
void bench_rt_stats(uint64_t n, double *out);
double bench_measure_rt(uint64_t duration_ns, uint64_t max_rt, const char *what);
uint64_t bench_check_per_producer(const struct bench_run *run, const uint64_t *per,
				  const char *what);

struct bench_series *bench_find_series(const struct bench_workload *wl, const char *path,
				       const char *unit, const char *impl);
void bench_alloc_buffers(void);
unsigned bench_plan(const struct bench_workload *const *wls, unsigned nwl,
		    const struct bench_impl *const *impls, unsigned nimpls);
void bench_run_rounds(void);

/* ---- The report (bench_report.c) ----------------------------------------- */

void bench_finish_series(void);
void bench_print_report(void);
void bench_write_json(FILE *f, double elapsed_s);

#endif /* RMPSC_BENCH_H */
