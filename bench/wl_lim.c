/* SPDX-License-Identifier: MIT */
/*
 * LIM: the machine's own limits, which the report holds the queues against:
 * single-core memset bandwidth into an L2-sized buffer (W2 as a fraction of
 * it) and the raw cross-core cache-line round trip (W4 as a multiple of it;
 * the probes measure the same round trip, bench_run.c).
 */
#include <string.h>

#include "bench.h"

/* Overwrite the buffer until the stop flag. */
static void lim_memset(struct bench_worker *w)
{
	struct bench_run *run = w->run;
	unsigned char *b = run->mbuf;
	const size_t len = run->mlen;
	uint64_t iters = 0, acc = 0;

	memset(b, 1, len); /* warm, untimed */
	w->t0 = bench_now_ns();
	do {
		memset(b, (int)(iters & 0x7f), len);
		/* Compiler barrier: every memset really happens. */
		atomic_signal_fence(memory_order_seq_cst);
		acc += b[(iters * 4093) % len];
		iters++;
	} while (!atomic_load_explicit(&run->stop, memory_order_relaxed));
	w->t1 = bench_now_ns();
	w->count = iters;
	w->sum = acc;
}

/* GB/s. */
static void memset_measure(struct bench_run *run, const struct bench_case *c, double *m)
{
	const struct bench_worker *w = &run->w[0];

	run->mbuf = bench_buf.mbuf;
	run->mlen = bench_host.l2_size;
	bench_run_case_threads(run, c, 1, 0, 1, bench_mode.memset_ns);
	m[0] = (double)w->count * (double)bench_host.l2_size /
	       (double)(w->t1 - w->t0 ? w->t1 - w->t0 : 1);
}

/* ns, p50. */
static void rt_measure(struct bench_run *run, const struct bench_case *c, double *m)
{
	(void)c;
	m[0] = bench_measure_rt(bench_mode.rt_ns, bench_mode.rt_max, run->what);
}

static const struct bench_case lim_cases[] = {
	{ .label = "memset", .m = { { "memset", "GB/s" } }, .measure = memset_measure,
	  .producer = lim_memset },
	{ .label = "cacheline-rt", .m = { { "cacheline-rt", "ns", BENCH_M_LOWER } },
	  .measure = rt_measure },
};

const struct bench_workload bench_wl_lim = {
	.id = "LIM", .what = "the machine's limits",
	.flags = BENCH_WL_MACHINE, BENCH_CASES(lim_cases),
};
