/* SPDX-License-Identifier: MIT */
/*
 * bench_loop.h: the per-item loops more than one workload file runs, and the
 * helpers they call per item.
 *
 * Static inline, and always_inline where a compile-time argument selects the
 * path (the take kind, the exported-call table): each workload's worker
 * function is then one loop with the adapter's calls in it, as when all of
 * bench_ring was one file. Anything called per item belongs here, never in
 * another translation unit.
 */
#ifndef RMPSC_BENCH_LOOP_H
#define RMPSC_BENCH_LOOP_H

#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <string.h>

#include "bench.h"

static inline void bench_cpu_relax(void)
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
static inline uint64_t bench_ticks(void)
{
#if defined(__x86_64__) || defined(__i386__)
	if (bench_use_tsc) {
		uint64_t t;

		__builtin_ia32_lfence();
		t = __builtin_ia32_rdtsc();
		__builtin_ia32_lfence();
		return t;
	}
#endif
	return bench_now_ns();
}

/*
 * The one waiting policy of every worker, for every implementation: pause,
 * and after SPIN_YIELD consecutive failed tries look at the abort flag and
 * yield the CPU (which lets two producers pinned to one CPU take turns).
 * Returns 1 when the run is aborted.
 */
static inline int bench_spin(struct bench_run *run, unsigned *fails)
{
	if (++*fails % SPIN_YIELD) {
		bench_cpu_relax();
		return 0;
	}
	if (atomic_load_explicit(&run->abort, memory_order_relaxed))
		return 1;
	sched_yield();
	return 0;
}

/* The exported single-item calls W1/W4 make on @im's queues, or NULL
 * (RMPSC_BENCH_NO_EX=1: through push1/pop1, the adapter shell, for an A/B
 * of the call structure across runs). */
static inline const struct bench_ex *bench_ex_of(const struct bench_impl *im)
{
	return bench_no_ex || !im->ex || !im->ex->push1 ? NULL : im->ex;
}

/* The multi-producer half, for W3/W6 single/W7 (never W8's mc queues). */
static inline const struct bench_ex *bench_exmp_of(const struct bench_run *run)
{
	const struct bench_ex *ex = run->impl->ex;

	return bench_no_ex || run->mc || !ex || !ex->mp_push1 ? NULL : ex;
}

/* A bench_ex call's result in push1/pop1's convention. */
static inline int bench_ex_result(int err)
{
	if (err == 0)
		return 1;
	return err == -EAGAIN ? 0 : err < 0 ? err : BENCH_ERR_IMPL;
}

/* Producers look at the stop flag every 256 items, never before the first
 * 256 (so even a starved thread produces something). */
static inline int bench_stopped(struct bench_run *run, uint64_t i)
{
	return i && !(i & 255) && atomic_load_explicit(&run->stop, memory_order_relaxed);
}

/*
 * A producer of values tagged with its index (W3, W6 single, W8): through
 * the exported call itself when @ex is set (a compile-time constant in each
 * expansion), else mp_push1, or mc_push1 on W8's queues.
 */
static inline __attribute__((always_inline)) void
bench_tagged_produce(struct bench_worker *w, const struct bench_ex *ex)
{
	struct bench_run *run = w->run;
	const struct bench_impl *im = run->impl;
	void *q = run->q[0];
	struct rmpsc_producer *ph = ex ? ex->mp_producer(q, w->idx) : NULL;
	const uint64_t tag = (uint64_t)w->idx << BENCH_PROD_SHIFT;
	uint64_t seq = 0, v;
	unsigned fails = 0;
	int rc;

	w->t0 = bench_now_ns();
	/* Every item checks the stop flag: with two producers on one CPU a
	 * multi-producer peer can convoy (one item per scheduler slice), and
	 * 256 more items would then take minutes. */
	while (!(seq && atomic_load_explicit(&run->stop, memory_order_relaxed))) {
		v = tag | seq;
		while ((rc = ex	     ? bench_ex_result(ex->mp_push1(ph, &v))
			     : run->mc ? im->mc_push1(q, w->idx, v)
				       : im->mp_push1(q, w->idx, v)) == 0)
			if (bench_spin(run, &fails))
				return;
		if (rc < 0) {
			bench_worker_fail(w, "%s %s failed (%d)", im->name,
					  run->mc ? "mc_push1" : "mp_push1", rc);
			return;
		}
		fails = 0;
		seq++;
	}
	bench_producer_done(w, seq);
}

/* How a producer puts a batch (bench_put_all). */
enum bench_put {
	PUT_COPY, /* push_n from v (W2 copy) */
	PUT_ZC,	  /* zc_produce, writing first, first + 1, ... in place (W2 zero-copy) */
	PUT_MP_N, /* mp_push_n from v as producer w->idx (W6 batch) */
	PUT_MC_N, /* mc_push_n from v as producer w->idx (W8 bursts) */
};

/*
 * Puts all @n items of a batch into @q (@im's), one call after another as
 * far as each gets: 0 when they are in, -1 when the worker failed (message
 * written) or the run was aborted. *fails is the caller's spin count.
 */
static inline __attribute__((always_inline)) int
bench_put_all(struct bench_worker *w, const struct bench_impl *im, void *q,
	      enum bench_put kind, const uint64_t *v, uint32_t n, uint64_t first,
	      unsigned *fails)
{
	uint32_t off = 0;

	while (off < n) {
		int rc = kind == PUT_ZC	    ? im->zc_produce(q, n - off, first + off)
			 : kind == PUT_COPY ? im->push_n(q, v + off, n - off)
			 : kind == PUT_MP_N ? im->mp_push_n(q, w->idx, v + off, n - off)
					    : im->mc_push_n(q, w->idx, v + off, n - off);

		if (rc > 0) {
			off += (uint32_t)rc;
			*fails = 0;
		} else if (rc < 0) {
			bench_worker_fail(w, "%s %s failed (%d)", im->name,
					  kind == PUT_ZC     ? "zc_produce"
					  : kind == PUT_COPY ? "push_n"
					  : kind == PUT_MP_N ? "mp_push_n"
							     : "mc_push_n",
					  rc);
			return -1;
		} else if (bench_spin(w->run, fails)) {
			return -1;
		}
	}
	return 0;
}

/* How a consumer takes (bench_take). */
enum bench_take {
	TAKE_ONE,  /* pop1 (W1) */
	TAKE_EX,   /* the exported pop1 (W1) */
	TAKE_COPY, /* pop_n (W2 copy) */
	TAKE_ZC,   /* zc_consume (W2 zero-copy) */
	TAKE_MP,   /* mp_pop1 (W3, W6 single) */
	TAKE_EXMP, /* the exported mp_pop1 */
	TAKE_MP_N, /* mp_pop_n (W6 batch, W7) */
};

struct bench_cstate {
	uint64_t expect; /* items taken so far == next value (SPSC) */
	uint64_t sum;
	uint64_t per[BENCH_MAX_PROD]; /* W3: next sequence per producer */
	int (*ex_pop1)(struct rmpsc_ring *r, void *item); /* TAKE_EX */
	int (*ex_mp_pop1)(struct rmpsc_mpsc *ch, void *item, uint32_t *id); /* TAKE_EXMP */
	struct rmpsc_mpsc *ch;                                               /* TAKE_EXMP */
};

/* W3/W6/W7: @v must be the next value of its producer. */
static inline __attribute__((always_inline)) int
bench_mp_check(struct bench_worker *w, struct bench_cstate *cs, uint64_t v)
{
	uint64_t p = v >> BENCH_PROD_SHIFT;
	uint64_t seq = v & ((1ull << BENCH_PROD_SHIFT) - 1);

	if (p >= w->run->nprod || seq != cs->per[p]) {
		bench_worker_fail(w,
				  "%s: producer %" PRIu64 " sent %" PRIu64
				  ", expected %" PRIu64 " (FIFO broken)",
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
bench_take(struct bench_worker *w, enum bench_take kind, struct bench_cstate *cs)
{
	const struct bench_impl *im = w->run->impl;
	void *q = w->run->q[0];
	uint64_t v;
	int rc;

	switch (kind) {
	case TAKE_ONE:
	case TAKE_EX:
		rc = kind == TAKE_EX ? bench_ex_result(cs->ex_pop1(q, &v)) : im->pop1(q, &v);
		if (rc > 0) {
			if (v != cs->expect) {
				bench_worker_fail(w, "%s: got %" PRIu64 ", expected %" PRIu64,
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
				bench_worker_fail(
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
			bench_worker_fail(w, "%s: wrong value in place after %" PRIu64,
					  im->name, cs->expect);
			return -1;
		}
		break;
	case TAKE_MP:
	case TAKE_EXMP:
		rc = kind == TAKE_EXMP ? bench_ex_result(cs->ex_mp_pop1(cs->ch, &v, NULL))
				       : im->mp_pop1(q, &v);
		if (rc > 0) {
			if (bench_mp_check(w, cs, v))
				return -1;
			cs->expect++;
		}
		break;
	case TAKE_MP_N:
	default:
		rc = im->mp_pop_n(q, w->buf, W6_CONS_MAX);
		if (rc > W6_CONS_MAX) {
			bench_worker_fail(w, "%s: mp_pop_n returned %d of %d", im->name, rc,
					  W6_CONS_MAX);
			return -1;
		}
		for (int i = 0; i < rc; i++)
			if (bench_mp_check(w, cs, w->buf[i]))
				return -1;
		if (rc > 0)
			cs->expect += (uint64_t)rc;
		break;
	}
	if (rc < 0 && !w->failed)
		bench_worker_fail(w, "%s: consumer call failed (%d)", im->name, rc);
	return rc;
}

/* The consumer of W1-W3, W6 and W7: takes until every producer has finished
 * and their total is in. */
static inline __attribute__((always_inline)) void bench_consume(struct bench_worker *w,
								enum bench_take kind)
{
	struct bench_run *run = w->run;
	struct bench_cstate cs;
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
	w->t0 = bench_now_ns();
	for (;;) {
		rc = bench_take(w, kind, &cs);
		if (rc > 0) {
			fails = 0;
			continue;
		}
		if (rc < 0)
			return;
		/* Once every producer has finished, take until their total: a
		 * call that found nothing does not prove the queue empty (a
		 * round-based consumer may skip a ring that has data), and one
		 * lost item keeps the consumer here until bench_run_threads()
		 * gives up on the run. */
		if (!total && atomic_load_explicit(&run->prod_done, memory_order_acquire) ==
				      run->nprod)
			for (unsigned i = 0; i < run->nprod; i++)
				total += run->w[i].count;
		if (total && cs.expect >= total)
			break;
		if (bench_spin(run, &fails))
			return;
	}
	w->t1 = bench_now_ns();
	w->count = cs.expect;
	w->sum = cs.sum;
	memcpy(w->per, cs.per, sizeof w->per);
}

#endif /* RMPSC_BENCH_LOOP_H */
