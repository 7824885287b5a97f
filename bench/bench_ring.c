/* SPDX-License-Identifier: MIT */
/*
 * bench_ring: libringmpsc's SPSC ring and channels next to their peers, in
 * one process, on a noisy machine. See bench/README.md for the workloads and
 * the method; the short version:
 *
 *   W1  single-item SPSC throughput                       Mmsg/s
 *   W2  batch SPSC throughput, copying and zero-copy        GB/s, Mmsg/s
 *   W3  MPSC, 2 producers + 1 consumer, pinned/unpinned     Mmsg/s
 *   W4  ping-pong round trip through two queues             ns p50/p99/min
 *   W5  wake-up latency of an idle consumer (spin, futex, epoll) ns p50/p99
 *   W6  MPSC channel scaling: 1, 2, 4, 8 producers, single-item and batch Mmsg/s
 *   W7  MPSC consumer with 32 registered producers, 1 active, adaptive skip
 *       on and off                                      Mmsg/s, polls/msg
 *   W8  SPMC (1 x 4, and 1 x 8 oversubscribing the CPUs) and MPMC (4 x 4)
 *       single-item throughput; 1 x 4 and 4 x 4 with bursts of 32 both ways
 *       (the implementations' own multi-item calls)           Mmsg/s
 *   W9  BufferPool alloc+free pairs against malloc, jemalloc, mimalloc, DPDK
 *       rte_mempool and a lock-free stack (same-thread, cross-thread,
 *       oversubscribed), and the message size from which a pool handle
 *       beats copying through a ring (W9 tables after the report)  Mpair/s, GB/s
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
 *
 * This file: the registration tables (implementations, workloads), the
 * durations of the two modes, the command line and main. bench.h lists the
 * other files.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <strings.h>

#include <ringmpsc/common.h>

#include "bench.h"
#include "pool_peer.h"

/* The adapters, in table order (the first is "ours"). */
const struct bench_impl *const bench_impls[] = {
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
	/* W9's allocators (pool_peer.h): W9 only. ringmpsc's plain pool calls
	 * run under the ringmpsc adapter. */
	&bench_pool_ringmpsc_cache.im,
	&bench_pool_glibc.im,
	&bench_pool_jemalloc.im,
	&bench_pool_mimalloc.im,
#ifdef BENCH_HAVE_DPDK_MEMPOOL
	&bench_pool_dpdk.im,
	&bench_pool_dpdk_cache.im,
#endif
#ifdef BENCH_HAVE_BOOST_STACK
	&bench_pool_boost.im,
#endif
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
#define N_IMPLS BENCH_NELEM(bench_impls)
const unsigned bench_nimpls = N_IMPLS;

/*
 * The workloads, in report order: X(name) is the `const struct
 * bench_workload bench_wl_<name>` that a wl_<family>.c file defines
 * (bench/CMakeLists.txt compiles every wl_*.c). A new workload is its file
 * and its line here (README.md, "Adding a workload").
 */
#define BENCH_WORKLOADS(X) \
	X(lim)             \
	X(w1)              \
	X(w2)              \
	X(w3)              \
	X(w4)              \
	X(w5)              \
	X(w6)              \
	X(w7)              \
	X(w8)              \
	X(w9)

#define BENCH_WL_DECLARE(name) extern const struct bench_workload bench_wl_##name;
#define BENCH_WL_ENTRY(name)   &bench_wl_##name,
BENCH_WORKLOADS(BENCH_WL_DECLARE)
const struct bench_workload *const bench_workloads[] = { BENCH_WORKLOADS(BENCH_WL_ENTRY) };
#define N_WORKLOADS BENCH_NELEM(bench_workloads)
const unsigned bench_nworkloads = N_WORKLOADS;

/* The durations of --quick (@quick) and of a full run, side by side. */
static struct bench_mode mode_of(int quick)
{
	return (struct bench_mode){
		.name = quick ? "quick" : "full",
		.tput_ns = (quick ? 200 : 800) * MS,
		.lat_ns = (quick ? 60 : 250) * MS,
		/* Shorter in --quick: seven diagnostic rows more, and the run
		 * stays under a minute (README.md, "Call depth"). */
		.call_tput_ns = (quick ? 50 : 800) * MS,
		.call_lat_ns = (quick ? 20 : 250) * MS,
		/* W6-W9 run in --quick only when --only names them. */
		.chan_tput_ns = (quick ? 100 : 400) * MS,
		.lat_max = quick ? 200000 : 500000,
		.wake_ns = (quick ? 400 : 2000) * MS,
		.wake_max = quick ? 1000 : 4000,
		.memset_ns = (quick ? 30 : 100) * MS,
		.rt_ns = (quick ? 40 : 200) * MS,
		.rt_max = quick ? 200000 : 500000,
		.probe_ns = 3 * MS,
		.probe_wait_ns = (quick ? 20 : 100) * MS,
		.probe_waits = quick ? 5 : 10,
		.calib_ns = (quick ? 30 : 90) * MS,
		/* --quick: first attempts ~48 s with the -call rows (~45 s
		 * without); a run can overshoot the budget by several seconds
		 * on this guest (reps in a slow episode take longer than the
		 * projection), so this stays well under the minute. */
		.budget_s = quick ? 52.0 : 900.0,
		.reps = quick ? 5 : 7,
	};
}

/* ------------------------------------------------------------------------ */
/* Options                                                                  */
/* ------------------------------------------------------------------------ */

/* The workload ids for --help and its errors: the implementations' ones,
 * then the machine's. */
static void print_wl_ids(FILE *f, const char *sep)
{
	unsigned i, n = 0;

	for (i = 0; i < bench_nworkloads; i++)
		if (!(bench_workloads[i]->flags & BENCH_WL_MACHINE))
			fprintf(f, "%s%s", n++ ? sep : "", bench_workloads[i]->id);
	for (i = 0; i < bench_nworkloads; i++)
		if (bench_workloads[i]->flags & BENCH_WL_MACHINE)
			fprintf(f, "%s%s", n++ ? sep : "", bench_workloads[i]->id);
}

static void usage(FILE *f)
{
	unsigned i;

	fprintf(f,
		"usage: bench_ring [--quick] [--reps N] [--only LIST] [--impl LIST]\n"
		"                  [--json FILE] [--verbose] [--help]\n"
		"  --quick        short repetitions, %u reps: the whole run in under a minute\n"
		"                 (the longer workloads W6-W9 only when --only names them)\n"
		"  --reps N       repetitions per (workload, path, impl), %d..%d\n"
		"                 (default %u, %u with --quick)\n"
		"  --only LIST    workloads, comma-separated: ",
		mode_of(1).reps, REPS_MIN, REPS_MAX, mode_of(0).reps, mode_of(1).reps);
	print_wl_ids(f, ",");
	fprintf(f, "\n"
		   "                 (LIM, the machine limits the ratios use, always runs)\n"
		   "  --impl LIST    implementations, comma-separated:");
	for (i = 0; i < bench_nimpls; i++)
		fprintf(f, "%s%s", i ? "," : " ", bench_impls[i]->name);
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
static void for_each_item(const char *list, void (*fn)(const char *item, int *sel),
			  int *sel)
{
	char *copy = strdup(list), *save = NULL, *tok;

	if (!copy)
		bench_die(1, "out of memory");
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		fn(tok, sel);
	free(copy);
}

static void select_wl(const char *item, int *sel)
{
	const struct bench_workload *first = NULL, *last = NULL, *machine = NULL;
	unsigned i;

	for (i = 0; i < bench_nworkloads; i++) {
		const struct bench_workload *wl = bench_workloads[i];

		if (!strcasecmp(item, wl->id)) {
			sel[i] = 1;
			return;
		}
		if (wl->flags & BENCH_WL_MACHINE) {
			machine = machine ? machine : wl;
		} else {
			first = first ? first : wl;
			last = wl;
		}
	}
	bad_usage("unknown workload '%s' (%s ... %s, %s)", item, first->id, last->id,
		  machine->id);
}

static void select_impl(const char *item, int *sel)
{
	unsigned i;

	for (i = 0; i < bench_nimpls; i++) {
		if (!strcmp(item, bench_impls[i]->name)) {
			sel[i] = 1;
			return;
		}
	}
	bad_usage("unknown implementation '%s'", item);
}

/* The workloads to run, in table order: those --only names, else all but
 * the BENCH_WL_NOT_QUICK ones in --quick; the machine's always. */
static unsigned select_workloads(const char *only, int quick,
				 const struct bench_workload **out)
{
	int sel[N_WORKLOADS] = { 0 };
	unsigned i, n = 0, k = 0;

	if (only) {
		for_each_item(only, select_wl, sel);
		for (i = 0; i < N_WORKLOADS && !sel[i]; i++)
			;
		if (i == N_WORKLOADS)
			bad_usage("--only '%s' names no workload", only);
	} else {
		for (i = 0; i < N_WORKLOADS; i++)
			sel[i] = !(quick && (bench_workloads[i]->flags & BENCH_WL_NOT_QUICK));
		if (quick) {
			fprintf(stderr, "bench_ring: --quick: the longer workloads (");
			for (i = 0; i < N_WORKLOADS; i++)
				if (bench_workloads[i]->flags & BENCH_WL_NOT_QUICK)
					fprintf(stderr, "%s%s", k++ ? ", " : "",
						bench_workloads[i]->id);
			fprintf(stderr, ") run only when --only names them\n");
		}
	}
	for (i = 0; i < N_WORKLOADS; i++)
		if (sel[i] || (bench_workloads[i]->flags & BENCH_WL_MACHINE))
			out[n++] = bench_workloads[i];
	return n;
}

/* The implementations to run, in table order, each set up by its init (one
 * that cannot run is left out with a note). */
static unsigned select_impls(const char *impls, const struct bench_impl **out)
{
	int sel[N_IMPLS] = { 0 };
	unsigned i, n = 0, k;

	if (impls)
		for_each_item(impls, select_impl, sel);
	else
		for (i = 0; i < bench_nimpls; i++)
			sel[i] = 1;
	for (i = 0; i < bench_nimpls; i++)
		if (sel[i])
			out[n++] = bench_impls[i];
	if (!n)
		bad_usage("%s", "no implementation selected");
	for (i = k = 0; i < n; i++) {
		char why[512] = "";

		if (out[i]->init && out[i]->init(why, sizeof why)) {
			fprintf(stderr, "bench_ring: skipping %s: %s\n", out[i]->name,
				why[0] ? why : "not available");
			continue;
		}
		out[k++] = out[i];
	}
	if (!k)
		bench_die(1, "%s", "no selected implementation can run");
	return k;
}

/*
 * W9 dlopens jemalloc, whose initial-exec TLS does not fit the static TLS
 * surplus glibc leaves by default ("cannot allocate memory in static TLS
 * block"); the surplus is a start-up tunable. Unless the caller set
 * GLIBC_TUNABLES, start once more with it (BENCH_REEXEC marks the second
 * start); if that fails, W9 skips jemalloc with the hint, as before.
 */
static void reexec_for_static_tls(char **argv)
{
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
	if (getenv("GLIBC_TUNABLES") || getenv("BENCH_REEXEC"))
		return;
	if (setenv("GLIBC_TUNABLES", "glibc.rtld.optional_static_tls=16384", 1) ||
	    setenv("BENCH_REEXEC", "1", 1))
		return;
	execv("/proc/self/exe", argv);
	unsetenv("GLIBC_TUNABLES"); /* exec failed: go on without it */
#else
	(void)argv;
#endif
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
	const struct bench_workload *wls[N_WORKLOADS];
	const struct bench_impl *sel[N_IMPLS];
	const char *json_path = NULL, *only = NULL, *impls = NULL;
	const char *no_ex = getenv("RMPSC_BENCH_NO_EX");
	unsigned long reps = 0;
	unsigned nwl, nsel, ncases;
	int quick = 0, c;
	FILE *jf = NULL;

	bench_no_ex = no_ex && strcmp(no_ex, "0");
	reexec_for_static_tls(argv);
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
			bench_verbose = 1;
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
	bench_mode = mode_of(quick);
	if (reps)
		bench_mode.reps = (unsigned)reps;
	nwl = select_workloads(only, quick, wls);
	nsel = select_impls(impls, sel);
	if (json_path) {
		jf = fopen(json_path, "w");
		if (!jf) {
			fprintf(stderr, "bench_ring: cannot write %s: %s\n", json_path,
				strerror(errno));
			return 2;
		}
	}

	bench_start_ns = bench_now_ns();
	bench_choose_cpus();
	bench_machine_info();
	bench_calibrate();
	bench_alloc_buffers();
	ncases = bench_plan(wls, nwl, sel, nsel);
	fprintf(stderr,
		"bench_ring: libringmpsc %s, %s mode, %u reps, %u cases, "
		"CPUs %d/%d%s, L2 %zu KiB (%s), timer %s (%.2f GHz, %.1f ns), %s ISA\n",
		rmpsc_version_string(), bench_mode.name, bench_mode.reps, ncases,
		bench_host.cpu_a, bench_host.cpu_b, bench_host.pin_ok ? "" : " (unpinned)",
		bench_host.l2_size >> 10, bench_host.l2_source,
		bench_use_tsc ? "lfence+rdtsc" : "clock_gettime",
		bench_use_tsc ? bench_tsc_per_ns : 0.0, bench_host.timer_ns,
		BENCH_HARNESS_ISA);

	bench_run_rounds();

	bench_finish_series();
	bench_print_report();
	bench_pool_report(); /* W9's own tables, when it ran */
	if (jf) {
		bench_write_json(jf, (double)(bench_now_ns() - bench_start_ns) / 1e9);
		if (fclose(jf))
			bench_die(1, "writing %s failed", json_path);
	}
	printf("elapsed %.1f s\n", (double)(bench_now_ns() - bench_start_ns) / 1e9);
	return 0;
}
