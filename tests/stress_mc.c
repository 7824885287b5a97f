/* SPDX-License-Identifier: MIT */
/*
 * Stress for the SPMC and MPMC channels (ctest label "stress"). Every value
 * is (producer id << 40 | sequence); consumers mark each one in an atomic
 * bitmap (a second mark is a duplicate) and check that, per consumer, each
 * producer's sequence only grows (per-producer FIFO as one consumer sees
 * it); at the end the bitmap must hold exactly what the producers were told
 * they published: no loss, no duplicate, nothing invented.
 *
 * (1) MPMC, 4 producers x 4 consumers, rings of 64: producers mix push,
 *     push_n, reserve + (partial) commit and the _timed calls (no limit,
 *     try once, short limits; several wait kinds); consumers mix steal,
 *     steal_one, consume (in place, producer id checked) and the _timed
 *     twins. Close at the end: every consumer gets -EPIPE, and again.
 * (2) SPMC, 1 producer x 4 consumers, the same checks.
 * (3) MPMC with registration churn: producer threads register, push a
 *     random count, deregister, until 4 x max_producers registrations were
 *     made (drained rings and their ids are reused, each id's sequence
 *     numbers going on where they stopped); consumer threads register and deregister
 *     mid-run (max_consumers below their number, so -ENOSPC happens) next
 *     to one consumer that stays. Exact accounting per producer id.
 * (4) Close from a third thread (the main one) while producers push and
 *     consumers wait in _timed calls (MPMC rounds wait until a consumer is
 *     seen asleep first, in half of them), SPMC and MPMC rounds: every push
 *     that succeeded is delivered exactly once, each consumer's -EPIPE is
 *     final.
 * (5) Register, push and close racing a polling consumer: the consumer
 *     must get what was pushed before its -EPIPE (rounds with 0 to 256
 *     rings already used).
 *
 * A watchdog (the main thread) fails a case after 20 s without progress of
 * any thread, printing where each one is, and closes the channel so the
 * threads leave. -EAGAIN is answered with sched_yield() or a blocking call;
 * no timing is asserted, times are printed. RMPSC_STRESS_SEED varies the
 * seed.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "ringmpsc/channel.h"
#include "ringmpsc/wait.h"

#include "test_core.h" /* an MPMC producer's ring core: the consumers' sleeper count */

#define STRESS_SEED 0x6a09e667f3bcc909ull
#include "test_util.h" /* stress_seed(), xs_next(), STRESS_SCALE, ... */
#define WATCHDOG_SEC 20
#define US 1000ll
#define MS 1000000ll
#define ID_SHIFT 40
#define SEQ_MASK ((1ull << ID_SHIFT) - 1)
/* An op already reported its failure. */
#define BROKEN INT_MIN
/* consume's handler has no id to compare with */
#define NO_ID UINT32_MAX

enum { MAX_THREADS = 16, BATCH_MAX = 16 };

/* ---- common -------------------------------------------------------------- */

static inline uint64_t val(uint32_t id, uint64_t seq)
{
	return ((uint64_t)id << ID_SHIFT) | seq;
}

/* Where a thread is, for the watchdog's message. */
enum where {
	W_IDLE, W_PUSH, W_PUSH_N, W_RESERVE, W_PUSH_TIMED, W_PUSH_N_TIMED, W_RESERVE_TIMED,
	W_STEAL, W_STEAL_ONE, W_CONSUME, W_STEAL_TIMED, W_CONSUME_TIMED, W_REGISTER,
	W_DEREGISTER, W_YIELD, W_DONE,
};

static const char *const where_names[] = {
	"between calls", "push", "push_n", "reserve/commit", "push_timed", "push_n_timed",
	"reserve_timed/commit", "steal", "steal_one", "consume", "steal_timed",
	"consume_timed", "register", "deregister", "sched_yield", "done",
};

/* One thread's progress, on a line of its own. */
struct slot {
	alignas(64) _Atomic uint64_t ops;
	_Atomic int where;
	atomic_int done;
	const char *role;
};

/* What the threads of a case (or a round) share. */
struct hub {
	const char *name;
	rmpsc_spmc *s; /* one of the two */
	rmpsc_mpmc *m;
	uint32_t nids;  /* producer ids */
	uint64_t per;   /* sequence numbers per id */
	_Atomic uint64_t *bits;  /* nids * per marks */
	_Atomic uint64_t *sent;  /* per id: what its producer was told it published */
	bool expect_close;       /* producers may get -EPIPE */
	bool timed_only;         /* consumers use only the _timed calls */
	uint32_t nthreads;
	atomic_int failed;
	atomic_bool stop;
	atomic_int closed;
	char msg[1024];
	rmpsc_wait forever[4];   /* strategies for calls without a limit */
	rmpsc_wait finite[6];    /* and for calls with one */
	struct slot slot[MAX_THREADS];
};

/* After a failure: every thread leaves. */
static void hub_stop(void *arg, int first)
{
	struct hub *h = arg;

	(void)first;
	atomic_store_explicit(&h->stop, true, memory_order_release);
}

#define hub_fail(h, ...) FAIL_RECORD(h, hub_stop, __VA_ARGS__)

static bool stopped(const struct hub *h)
{
	/* Relaxed: a hint to leave; results are read after the joins. */
	return atomic_load_explicit(&h->stop, memory_order_relaxed);
}

static inline void set_where(struct hub *h, uint32_t t, int w)
{
	atomic_store_explicit(&h->slot[t].where, w, memory_order_relaxed);
}

static inline void bump(struct hub *h, uint32_t t, uint64_t n)
{
	/* Relaxed: read by the watchdog only. */
	atomic_fetch_add_explicit(&h->slot[t].ops, n, memory_order_relaxed);
}

static uint64_t ld(_Atomic uint64_t *a)
{
	return atomic_load_explicit(a, memory_order_relaxed);
}

static struct hub *hub_new(const char *name, uint32_t nids, uint64_t per)
{
	const size_t words = (size_t)((nids * per + 63) / 64);
	struct hub *h = aligned_alloc(64, (sizeof *h + 63) / 64 * 64);

	assert_non_null(h);
	memset(h, 0, sizeof *h);
	h->name = name;
	h->nids = nids;
	h->per = per;
	h->bits = calloc(words ? words : 1, sizeof *h->bits);
	h->sent = calloc(nids ? nids : 1, sizeof *h->sent);
	assert_non_null(h->bits);
	assert_non_null(h->sent);
	atomic_init(&h->failed, 0);
	atomic_init(&h->stop, false);
	atomic_init(&h->closed, 0);
	for (uint32_t i = 0; i < MAX_THREADS; i++) {
		atomic_init(&h->slot[i].ops, 0);
		atomic_init(&h->slot[i].where, W_IDLE);
		atomic_init(&h->slot[i].done, 0);
		h->slot[i].role = "?";
	}
	h->forever[0] = wait_make(RMPSC_WAIT_BLOCK, 0, 0, 0,
				  -1);  /* straight to the futex */
	h->forever[1] = wait_make(RMPSC_WAIT_BLOCK, 64, 2, 0, -1);
	h->forever[2] = wait_make(RMPSC_WAIT_BACKOFF, 16, 2, 0, -1);
	h->forever[3] = wait_make(RMPSC_WAIT_YIELD, 8, 0, 0, -1);
	h->finite[0] = h->forever[0];
	h->finite[1] = h->forever[2];
	h->finite[2] = wait_make(RMPSC_WAIT_SPIN, 0, 0, 0, -1);
	h->finite[3] = wait_make(RMPSC_WAIT_SLEEP, 4, 1, 5 * US, -1);
	h->finite[4] = wait_make(RMPSC_WAIT_DEADLINE, 8, 1, 0, 30 * US);
	h->finite[5] = wait_make(RMPSC_WAIT_YIELD, 4, 0, 0, -1);
	return h;
}

static void hub_free(struct hub *h)
{
	if (h->s)
		rmpsc_spmc_destroy(h->s);
	if (h->m)
		rmpsc_mpmc_destroy(h->m);
	free(h->bits);
	free(h->sent);
	free(h);
}

static void hub_close(struct hub *h)
{
	atomic_store_explicit(&h->closed, 1, memory_order_relaxed);
	if (h->s)
		assert_int_equal(rmpsc_spmc_close(h->s), 0);
	else
		assert_int_equal(rmpsc_mpmc_close(h->m), 0);
}

static int64_t hub_len(const struct hub *h)
{
	return h->s ? rmpsc_spmc_len(h->s) : rmpsc_mpmc_len(h->m);
}

static int hub_drained(const struct hub *h)
{
	return h->s ? rmpsc_spmc_is_drained(h->s) : rmpsc_mpmc_is_drained(h->m);
}

static uint64_t hub_ops(struct hub *h)
{
	uint64_t sum = 0;

	for (uint32_t i = 0; i < h->nthreads; i++)
		sum += ld(&h->slot[i].ops);
	return sum;
}

static bool slots_done(struct hub *h, uint32_t lo, uint32_t hi)
{
	for (uint32_t i = lo; i < hi; i++)
		if (!atomic_load_explicit(&h->slot[i].done, memory_order_acquire))
			return false;
	return true;
}

/*
 * Wait until threads [lo, hi) are done. No progress of any thread for
 * WATCHDOG_SEC: record the failure with every thread's whereabouts and
 * close the channel, which wakes every sleeper; still stuck after as long
 * again: false (the caller leaves the threads). A failure reported by a
 * thread closes the channel at once so that the others leave.
 */
/* What watch() watches: threads [lo, hi) of @h. */
struct hub_watch {
	struct hub *h;
	uint32_t lo, hi;
};

static bool hub_watch_done(void *arg)
{
	const struct hub_watch *hw = arg;
	struct hub *h = hw->h;

	if (atomic_load_explicit(&h->failed, memory_order_acquire) &&
	    !atomic_load_explicit(&h->closed, memory_order_relaxed))
		hub_close(h);
	return slots_done(h, hw->lo, hw->hi);
}

static uint64_t hub_watch_ops(void *arg)
{
	return hub_ops(((const struct hub_watch *)arg)->h);
}

static void hub_watch_stall(void *arg, bool first)
{
	struct hub *h = ((const struct hub_watch *)arg)->h;
	char buf[sizeof h->msg];
	size_t o = 0;

	o += (size_t)snprintf(buf + o, sizeof buf - o,
			      "no progress for %d s: len %" PRId64 ", closed %d;",
			      WATCHDOG_SEC, hub_len(h),
			      atomic_load_explicit(&h->closed, memory_order_relaxed));
	for (uint32_t i = 0; i < h->nthreads && o < sizeof buf; i++)
		o += (size_t)snprintf(buf + o, sizeof buf - o,
				      " %s%u in %s (%" PRIu64 " ops%s);",
				      h->slot[i].role, i,
				      where_names[atomic_load_explicit(
					      &h->slot[i].where,
					      memory_order_relaxed)],
				      ld(&h->slot[i].ops),
				      atomic_load_explicit(&h->slot[i].done,
							   memory_order_relaxed)
					      ? ", done"
					      : "");
	fprintf(stderr, "%s: %s\n", h->name, buf);
	if (first) {
		hub_fail(h, "%s", buf);
		hub_close(h);
	}
}

static bool watch(struct hub *h, uint32_t lo, uint32_t hi)
{
	struct hub_watch hw = { h, lo, hi };
	const struct watchdog w = { hub_watch_done, hub_watch_ops, hub_watch_stall, &hw,
				    WATCHDOG_SEC, 10 * MS };

	return watchdog_run(&w);
}

/* Exactly [0, sent[id]) marked for every id. */
static bool ledger_check(struct hub *h, uint64_t *total)
{
	*total = 0;
	for (uint32_t id = 0; id < h->nids; id++) {
		const uint64_t sent = ld(&h->sent[id]);

		for (uint64_t seq = 0; seq < h->per; seq++) {
			const uint64_t bit = (uint64_t)id * h->per + seq;
			const bool set = (ld(&h->bits[bit / 64]) >> (bit % 64)) & 1;

			if (set != (seq < sent)) {
				hub_fail(h, "producer %u: item %" PRIu64 " %s (it sent %" PRIu64 ")",
					 id, seq, set ? "delivered but never sent" : "lost", sent);
				return false;
			}
		}
		*total += sent;
	}
	return true;
}

/* ---- producers ------------------------------------------------------------ */

struct pstats {
	uint64_t push, push_n, resv, partial, push_t, push_n_t, resv_t, full, timeouts;
};

struct prod {
	struct hub *h;
	uint32_t t;         /* slot */
	rmpsc_producer *p;  /* MPMC; NULL: the SPMC channel's producer */
	uint32_t id;
	uint64_t next;      /* sequence of the next item */
	uint64_t limit;     /* stop after this many */
	uint64_t rng;
	int end;            /* 0: budget sent; -EPIPE: closed */
	struct pstats st;
};

static void prod_published(struct prod *pr, uint64_t k)
{
	pr->next += k;
	/* Relaxed: read after the joins (or, in (3), after the producer's
	 * deregister, by the same thread's successors only through joins). */
	atomic_store_explicit(&pr->h->sent[pr->id], pr->next, memory_order_relaxed);
	bump(pr->h, pr->t, k);
}

/* A timeout and a strategy for a _timed call. */
static int64_t pick_timeout(struct hub *h, uint64_t x, const rmpsc_wait **w)
{
	int64_t tmo;

	switch ((x >> 24) & 7) {
	case 0: tmo = 0; break;
	case 1: tmo = 20 * US; break;
	case 2: tmo = 200 * US; break;
	default: tmo = -1; break;
	}
	if (tmo < 0)
		*w = ((x >> 28) & 7) == 7 ? NULL : &h->forever[(x >> 28) & 3];
	else
		*w = ((x >> 28) & 7) == 7 ? NULL : &h->finite[((x >> 28) & 7) % 6];
	return tmo;
}

static void fill_span(const rmpsc_span *sp, uint32_t k, uint32_t id, uint64_t first)
{
	for (uint32_t i = 0; i < k; i++)
		span_put_u64(sp, i, val(id, first + i));
}

/* Commit a filled reservation of @k, in one or two steps. */
static int prod_commit(struct prod *pr, uint32_t k, uint64_t x)
{
	struct hub *h = pr->h;
	uint32_t first = k;
	int r;

	if (k >= 2 && (x & (1ull << 40))) {
		first = 1 + (uint32_t)((x >> 41) % (k - 1));
		pr->st.partial++;
	}
	r = pr->p ? rmpsc_producer_commit(pr->p, first) : rmpsc_spmc_commit(h->s, first);
	if (r)
		return r;
	prod_published(pr, first);
	if (first < k) {
		r = pr->p ? rmpsc_producer_commit(pr->p, k - first)
			  : rmpsc_spmc_commit(h->s, k - first);
		if (r)
			return r;
		prod_published(pr, k - first);
	}
	return (int)k;
}

/*
 * One producer call: the count published (> 0), 0 (full, or the time ran
 * out), -EPIPE, or BROKEN.
 */
static int prod_step(struct prod *pr)
{
	struct hub *h = pr->h;
	const uint64_t x = xs_next(&pr->rng);
	const uint64_t left = pr->limit - pr->next;
	uint32_t n = pick_n(&pr->rng, 4, BATCH_MAX);
	uint64_t buf[BATCH_MAX];
	const rmpsc_wait *w = NULL;
	int64_t tmo = pick_timeout(h, x, &w);
	rmpsc_span sp;
	int r, op = (int)(x % 8);

	if (n > left)
		n = (uint32_t)left;
	for (uint32_t i = 0; i < n; i++)
		buf[i] = val(pr->id, pr->next + i);
	if (op == 6 && !pr->p)
		op = 4; /* SPMC has no reserve_timed */
	switch (op) {
	case 0:
	case 1:
		set_where(h, pr->t, W_PUSH);
		r = pr->p ? rmpsc_producer_push(pr->p, buf) : rmpsc_spmc_push(h->s, buf);
		pr->st.push++;
		if (r == 0)
			r = 1;
		break;
	case 2:
	case 7:
		set_where(h, pr->t, W_PUSH_N);
		r = pr->p ? rmpsc_producer_push_n(pr->p, buf, n) : rmpsc_spmc_push_n(h->s, buf, n);
		pr->st.push_n++;
		if (r > (int)n || r == 0)
			goto bad;
		break;
	case 3:
		set_where(h, pr->t, W_RESERVE);
		r = pr->p ? rmpsc_producer_reserve(pr->p, n, &sp) : rmpsc_spmc_reserve(h->s, n, &sp);
		pr->st.resv++;
		if (r > 0) {
			if (r > (int)n || sp.count[0] + sp.count[1] != (uint32_t)r)
				goto bad;
			fill_span(&sp, (uint32_t)r, pr->id, pr->next);
			goto commit;
		}
		break;
	case 4:
		set_where(h, pr->t, W_PUSH_TIMED);
		r = pr->p ? rmpsc_producer_push_timed(pr->p, buf, tmo, w)
			  : rmpsc_spmc_push_timed(h->s, buf, tmo, w);
		pr->st.push_t++;
		if (r == 0)
			r = 1;
		break;
	case 5:
		set_where(h, pr->t, W_PUSH_N_TIMED);
		r = pr->p ? rmpsc_producer_push_n_timed(pr->p, buf, n, tmo, w)
			  : rmpsc_spmc_push_n_timed(h->s, buf, n, tmo, w);
		pr->st.push_n_t++;
		if (r > (int)n || r == 0 || (r > 0 && r < (int)n && tmo < 0 && !h->expect_close))
			goto bad;
		break;
	default: /* 6 */
		set_where(h, pr->t, W_RESERVE_TIMED);
		r = rmpsc_producer_reserve_timed(pr->p, n, &sp, tmo, w);
		pr->st.resv_t++;
		if (r > 0) {
			if (r > (int)n)
				goto bad;
			fill_span(&sp, (uint32_t)r, pr->id, pr->next);
			goto commit;
		}
		break;
	}
	set_where(h, pr->t, W_IDLE);
	if (r > 0) {
		prod_published(pr, (uint64_t)r);
		return r;
	}
	goto judge;
commit:
	/* published by prod_commit() itself, in one or two steps */
	r = prod_commit(pr, (uint32_t)r, x);
	set_where(h, pr->t, W_IDLE);
	if (r > 0)
		return r;
judge:
	if (r == -EAGAIN && op != 4 && op != 5 && op != 6) {
		pr->st.full++;
		return 0;
	}
	if (r == -ETIMEDOUT && (tmo >= 0 || (w && w->kind == RMPSC_WAIT_DEADLINE))) {
		pr->st.timeouts++;
		return 0;
	}
	if (r == -EPIPE && h->expect_close)
		return r;
bad:
	hub_fail(h, "%s: producer %u op %d (n %u, timeout %" PRId64 ") returned %s (%d)",
		 h->name, pr->id, op, n, tmo, errname(r), r);
	return BROKEN;
}

/* Send until the budget is spent or the channel closes. */
static void prod_run(struct prod *pr)
{
	while (pr->next < pr->limit && !stopped(pr->h)) {
		const int r = prod_step(pr);

		if (r == -EPIPE) {
			pr->end = -EPIPE;
			return;
		}
		if (r == BROKEN)
			return;
		if (r == 0) {
			set_where(pr->h, pr->t, W_YIELD);
			sched_yield();
			set_where(pr->h, pr->t, W_IDLE);
		}
	}
}

static void *prod_main(void *arg)
{
	struct prod *pr = arg;

	prod_run(pr);
	set_where(pr->h, pr->t, W_DONE);
	atomic_store_explicit(&pr->h->slot[pr->t].done, 1, memory_order_release);
	return NULL;
}

/* ---- consumers ------------------------------------------------------------ */

struct cstats {
	uint64_t steal, steal_one, consume, steal_t, consume_t, segs, empty, timeouts;
	uint64_t sessions, nospc;
	uint64_t ahead; /* take calls made before a deregister, for elements taken ahead */
};

struct cons {
	struct hub *h;
	uint32_t t;
	rmpsc_consumer *c;
	uint64_t rng;
	int64_t *last;      /* [nids]: the last sequence seen from each producer */
	uint64_t got;
	uint32_t handled;   /* items the current consume call handed over */
	bool epipe;         /* the final -EPIPE was seen */
	int after;          /* what the call after it returned */
	bool churn;         /* (3): register and deregister in sessions */
	struct cstats st;
};

static bool take(struct cons *cn, uint64_t v, uint32_t handler_id)
{
	struct hub *h = cn->h;
	const uint32_t id = (uint32_t)(v >> ID_SHIFT);
	const uint64_t seq = v & SEQ_MASK;
	uint64_t bit, old;

	if (id >= h->nids || seq >= h->per) {
		hub_fail(h, "%s: consumer %u got value %#" PRIx64 " nobody sent", h->name, cn->t, v);
		return false;
	}
	if (handler_id != NO_ID && handler_id != id) {
		hub_fail(h, "%s: consume handed producer id %u for an item of producer %u",
			 h->name, handler_id, id);
		return false;
	}
	if ((int64_t)seq <= cn->last[id]) {
		hub_fail(h, "%s: consumer %u got item %" PRIu64 " of producer %u after item %"
			 PRId64 " (per-producer FIFO broken)", h->name, cn->t, seq, id,
			 cn->last[id]);
		return false;
	}
	cn->last[id] = (int64_t)seq;
	bit = (uint64_t)id * h->per + seq;
	old = atomic_fetch_or_explicit(&h->bits[bit / 64], 1ull << (bit % 64),
				       memory_order_relaxed);
	if (old & (1ull << (bit % 64))) {
		hub_fail(h, "%s: item %" PRIu64 " of producer %u delivered twice", h->name, seq,
			 id);
		return false;
	}
	cn->got++;
	return true;
}

static void cons_fn(void *ctx, uint32_t producer_id, const void *items, uint32_t count)
{
	struct cons *cn = ctx;
	const uint32_t want_id = cn->h->s ? 0 : producer_id;

	cn->st.segs++;
	if (cn->h->s && producer_id != 0)
		hub_fail(cn->h, "%s: SPMC consume handed producer id %u", cn->h->name,
			 producer_id);
	for (uint32_t i = 0; i < count; i++) {
		uint64_t v;

		memcpy(&v, (const unsigned char *)items + (size_t)i * 8, 8);
		if (!take(cn, v, want_id))
			return;
	}
	cn->handled += count;
}

/*
 * One consumer call: the count received (> 0), 0 (nothing there, or the
 * time ran out), -EPIPE, or BROKEN.
 */
static int cons_step(struct cons *cn)
{
	struct hub *h = cn->h;
	const uint64_t x = xs_next(&cn->rng);
	const uint32_t n = pick_n(&cn->rng, 4, BATCH_MAX);
	const rmpsc_wait *w = NULL;
	int64_t tmo = pick_timeout(h, x, &w);
	uint64_t buf[BATCH_MAX];
	int r, op = (int)(x % 8);

	if (h->timed_only)
		op = (x & 8) ? 3 : 4;
	cn->handled = 0;
	switch (op) {
	case 0:
	case 5:
		set_where(h, cn->t, W_STEAL);
		r = rmpsc_consumer_steal(cn->c, buf, n);
		cn->st.steal++;
		break;
	case 1:
	case 6:
		set_where(h, cn->t, W_STEAL_ONE);
		r = rmpsc_consumer_steal_one(cn->c, buf);
		cn->st.steal_one++;
		if (r == 0)
			r = 1;
		break;
	case 2:
		set_where(h, cn->t, W_CONSUME);
		r = rmpsc_consumer_consume(cn->c, n, cons_fn, cn);
		cn->st.consume++;
		break;
	case 3:
	case 7:
		set_where(h, cn->t, W_STEAL_TIMED);
		r = rmpsc_consumer_steal_timed(cn->c, buf, n, tmo, w);
		cn->st.steal_t++;
		break;
	default: /* 4 */
		set_where(h, cn->t, W_CONSUME_TIMED);
		r = rmpsc_consumer_consume_timed(cn->c, n, cons_fn, cn, tmo, w);
		cn->st.consume_t++;
		break;
	}
	set_where(h, cn->t, W_IDLE);
	if (stopped(h) && atomic_load_explicit(&h->failed, memory_order_relaxed))
		return BROKEN;
	if (r > 0) {
		const bool copied = op != 2 && op != 4;

		if ((uint32_t)r > n)
			goto bad;
		if (copied) {
			for (int i = 0; i < r; i++)
				if (!take(cn, buf[i], NO_ID))
					return BROKEN;
		} else if (cn->handled != (uint32_t)r) {
			hub_fail(h, "%s: consume returned %d but handed %u items", h->name, r,
				 cn->handled);
			return BROKEN;
		}
		bump(h, cn->t, (uint64_t)r);
		return r;
	}
	if (r == -EAGAIN && (op == 0 || op == 1 || op == 2 || op == 5 || op == 6)) {
		cn->st.empty++;
		return 0;
	}
	if (r == -ETIMEDOUT && (tmo >= 0 || (w && w->kind == RMPSC_WAIT_DEADLINE))) {
		cn->st.timeouts++;
		return 0;
	}
	if (r == -EPIPE) {
		if (!atomic_load_explicit(&h->closed, memory_order_relaxed)) {
			hub_fail(h, "%s: consumer %u got -EPIPE before the close", h->name, cn->t);
			return BROKEN;
		}
		return r;
	}
bad:
	hub_fail(h, "%s: consumer %u op %d (n %u, timeout %" PRId64 ") returned %s (%d)", h->name,
		 cn->t, op, n, tmo, errname(r), r);
	return BROKEN;
}

/* The final -EPIPE: the next calls say the same and hand nothing out. */
static void cons_final(struct cons *cn)
{
	uint64_t v = 0;

	cn->epipe = true;
	cn->after = rmpsc_consumer_steal_one(cn->c, &v);
	if (cn->after == -EPIPE)
		cn->after = rmpsc_consumer_steal_timed(cn->c, &v, 1, -1, NULL);
	if (cn->after == -EPIPE)
		cn->after = rmpsc_consumer_consume_timed(cn->c, 4, cons_fn, cn, 0, NULL);
	if (cn->after != -EPIPE)
		hub_fail(cn->h, "%s: consumer %u: after its -EPIPE a call returned %s",
			 cn->h->name, cn->t, errname(cn->after));
}

/* Consume until the final -EPIPE (or a failure elsewhere). */
static void *cons_main(void *arg)
{
	struct cons *cn = arg;

	for (;;) {
		const int r = cons_step(cn);

		if (r == -EPIPE) {
			cons_final(cn);
			break;
		}
		if (r == BROKEN)
			break;
		if (r == 0 && !cn->h->timed_only) {
			set_where(cn->h, cn->t, W_YIELD);
			sched_yield();
			set_where(cn->h, cn->t, W_IDLE);
		}
	}
	set_where(cn->h, cn->t, W_DONE);
	atomic_store_explicit(&cn->h->slot[cn->t].done, 1, memory_order_release);
	return NULL;
}

static void cons_init(struct cons *cn, struct hub *h, uint32_t t, rmpsc_consumer *c)
{
	memset(cn, 0, sizeof *cn);
	cn->h = h;
	cn->t = t;
	cn->c = c;
	cn->rng = stress_seed() ^ (0x636f6e73ull + t * 0x9e3779b97f4a7c15ull);
	cn->last = malloc(h->nids * sizeof *cn->last);
	assert_non_null(cn->last);
	for (uint32_t i = 0; i < h->nids; i++)
		cn->last[i] = -1;
	h->slot[t].role = "consumer";
}

static void prod_init(struct prod *pr, struct hub *h, uint32_t t, rmpsc_producer *p,
		      uint32_t id, uint64_t limit)
{
	memset(pr, 0, sizeof *pr);
	pr->h = h;
	pr->t = t;
	pr->p = p;
	pr->id = id;
	pr->limit = limit;
	pr->rng = stress_seed() ^ (0x70726f64ull + t * 0xbf58476d1ce4e5b9ull);
	h->slot[t].role = "producer";
}

/* ---- (1) and (2): fixed producers and consumers ----------------------------- */

static void print_pstats(const char *who, const struct pstats *s)
{
	print_message("  %s: push %" PRIu64 ", push_n %" PRIu64 ", reserve %" PRIu64
		      " (partial commits %" PRIu64 "), push_timed %" PRIu64 ", push_n_timed %"
		      PRIu64 ", reserve_timed %" PRIu64 ", full %" PRIu64 ", timed out %" PRIu64
		      "\n", who, s->push, s->push_n, s->resv, s->partial, s->push_t, s->push_n_t,
		      s->resv_t, s->full, s->timeouts);
}

static void print_cstats(const char *who, const struct cstats *s, uint64_t got)
{
	print_message("  %s: %" PRIu64 " items; steal %" PRIu64 ", steal_one %" PRIu64
		      ", consume %" PRIu64 " (%" PRIu64 " segments), steal_timed %" PRIu64
		      ", consume_timed %" PRIu64 ", empty %" PRIu64 ", timed out %" PRIu64
		      ", sessions %" PRIu64 ", -ENOSPC %" PRIu64 ", takes of pending %" PRIu64
		      "\n", who, got, s->steal, s->steal_one, s->consume, s->segs, s->steal_t,
		      s->consume_t, s->empty, s->timeouts, s->sessions, s->nospc, s->ahead);
}

static void add_pstats(struct pstats *a, const struct pstats *b)
{
	a->push += b->push;
	a->push_n += b->push_n;
	a->resv += b->resv;
	a->partial += b->partial;
	a->push_t += b->push_t;
	a->push_n_t += b->push_n_t;
	a->resv_t += b->resv_t;
	a->full += b->full;
	a->timeouts += b->timeouts;
}

static void add_cstats(struct cstats *a, const struct cstats *b)
{
	a->steal += b->steal;
	a->steal_one += b->steal_one;
	a->consume += b->consume;
	a->steal_t += b->steal_t;
	a->consume_t += b->consume_t;
	a->segs += b->segs;
	a->empty += b->empty;
	a->timeouts += b->timeouts;
	a->sessions += b->sessions;
	a->nospc += b->nospc;
	a->ahead += b->ahead;
}

/* Fail the case with the hub's message, freeing what can be freed. */
#define hub_check_failed(h, cons, ncons)                                        \
	do {                                                                   \
		if (atomic_load_explicit(&(h)->failed, memory_order_acquire)) {  \
			char m_[sizeof (h)->msg + 64];                         \
			snprintf(m_, sizeof m_, "%s: %s", (h)->name, (h)->msg);  \
			for (uint32_t i_ = 0; i_ < (ncons); i_++)              \
				free((cons)[i_].last);                         \
			hub_free(h);                                           \
			fail_msg("%s", m_);                                    \
		}                                                              \
	} while (0)

/*
 * Make @h's channel (SPMC, or MPMC with @made of its @np rings up front),
 * register @np producers of @per items each and @nc consumers (each rng
 * mixed with @pmix and @cmix), and start them all: consumers first.
 */
static void hub_start(struct hub *h, bool spmc, uint32_t np, uint32_t nc, uint32_t cap,
		      uint32_t made, uint64_t per, struct prod *pr, struct cons *cn,
		      pthread_t *th, uint64_t pmix, uint64_t cmix)
{
	rmpsc_mc_config cfg;

	assert_true(np + nc <= MAX_THREADS);
	assert_int_equal(rmpsc_mc_config_init(&cfg, sizeof cfg, spmc), 0);
	cfg.ring_capacity = cap;
	cfg.max_consumers = nc;
	if (spmc) {
		assert_int_equal(rmpsc_spmc_create(&cfg, &h->s), 0);
	} else {
		cfg.producers = made;
		cfg.max_producers = np;
		assert_int_equal(rmpsc_mpmc_create(&cfg, &h->m), 0);
	}
	h->nthreads = np + nc;
	for (uint32_t i = 0; i < np; i++) {
		rmpsc_producer *p = NULL;

		if (!spmc)
			assert_int_equal(rmpsc_mpmc_register_producer(h->m, &p), (int)i);
		prod_init(&pr[i], h, i, p, i, per);
		pr[i].rng ^= pmix;
	}
	for (uint32_t i = 0; i < nc; i++) {
		rmpsc_consumer *c;

		if (spmc)
			assert_int_equal(rmpsc_spmc_register_consumer(h->s, &c), (int)i);
		else
			assert_int_equal(rmpsc_mpmc_register_consumer(h->m, &c), (int)i);
		cons_init(&cn[i], h, np + i, c);
		cn[i].rng ^= cmix;
	}
	for (uint32_t i = 0; i < nc; i++)
		assert_int_equal(pthread_create(&th[np + i], NULL, cons_main, &cn[i]), 0);
	for (uint32_t i = 0; i < np; i++)
		assert_int_equal(pthread_create(&th[i], NULL, prod_main, &pr[i]), 0);
}

static void run_flow(const char *name, bool spmc, uint32_t np, uint32_t nc, uint32_t cap,
		     uint64_t per)
{
	struct hub *h = hub_new(name, spmc ? 1 : np, per);
	struct prod pr[MAX_THREADS];
	struct cons cn[MAX_THREADS];
	pthread_t th[MAX_THREADS];
	struct pstats ps = { 0 };
	struct cstats cs = { 0 };
	uint64_t total;
	const int64_t t0 = now_ns();
	double dt;

	hub_start(h, spmc, np, nc, cap, np / 2, per, pr, cn, th, 0, 0);
	if (!watch(h, 0, np) || (hub_close(h), !watch(h, np, np + nc)))
		fail_msg("%s: threads still stuck after a close; leaving them", name);
	for (uint32_t i = 0; i < np + nc; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	dt = (double)(now_ns() - t0) * 1e-9;
	for (uint32_t i = 0; i < np; i++)
		add_pstats(&ps, &pr[i].st);
	for (uint32_t i = 0; i < nc; i++)
		add_cstats(&cs, &cn[i].st);
	print_message("%s [%s]: %s, %u producers x %u consumers, capacity %u: %" PRIu64
		      " items in %.2f s (%.2f M/s)\n", name, STRESS_BUILD, spmc ? "SPMC" : "MPMC",
		      np, nc, cap, per * np, dt, dt > 0 ? (double)(per * np) / dt / 1e6 : 0.0);
	print_pstats("producers", &ps);
	for (uint32_t i = 0; i < nc; i++) {
		char who[32];

		snprintf(who, sizeof who, "consumer %u", i);
		print_cstats(who, &cn[i].st, cn[i].got);
	}
	hub_check_failed(h, cn, nc);
	for (uint32_t i = 0; i < np; i++) {
		assert_int_equal(pr[i].next, per);
		assert_int_equal(pr[i].end, 0);
	}
	assert_true(ledger_check(h, &total));
	hub_check_failed(h, cn, nc);
	assert_int_equal(total, per * np);
	for (uint32_t i = 0; i < nc; i++) {
		uint64_t v;

		assert_true(cn[i].epipe);
		assert_int_equal(cn[i].after, -EPIPE);
		assert_int_equal(rmpsc_consumer_steal_one(cn[i].c, &v), -EPIPE);
		total -= cn[i].got;
		free(cn[i].last);
	}
	assert_int_equal(total, 0);
	assert_int_equal(hub_len(h), 0);
	assert_int_equal(hub_drained(h), 1);
	/* every call was made */
	assert_true(ps.push && ps.push_n && ps.resv && ps.partial && ps.push_t && ps.push_n_t);
	assert_true(spmc || ps.resv_t);
	assert_true(cs.steal && cs.steal_one && cs.consume && cs.steal_t && cs.consume_t);
	hub_free(h);
}

static void test_mc_stress_mpmc_4x4_delivers_each_item_once_in_order(void **state)
{
	(void)state;
	run_flow(__func__, false, 4, 4, 64, STRESS_SCALE(1000000ull, 200000ull, 100000ull));
}

static void test_mc_stress_spmc_1x4_delivers_each_item_once_in_order(void **state)
{
	(void)state;
	run_flow(__func__, true, 1, 4, 64, STRESS_SCALE(2000000ull, 400000ull, 200000ull));
}

static void test_mc_stress_mpmc_tiny_rings_deliver_each_item_once_in_order(void **state)
{
	(void)state;
	run_flow(__func__, false, 3, 3, 2, STRESS_SCALE(200000ull, 50000ull, 30000ull));
}

/* ---- (3) registration churn ------------------------------------------------- */

struct churn {
	struct hub *h;
	uint32_t t;
	uint64_t rng;
	uint64_t max_items;
	uint32_t registrations;
	uint32_t nospc;               /* registrations refused (rings draining) */
	_Atomic uint32_t *budget;     /* registrations left, shared */
	struct pstats st;
};

/*
 * Register, push a random count, deregister; until the shared budget of
 * registrations is spent. A drained ring goes to a later registration with
 * its id: that producer goes on with the id's sequence numbers where the
 * last one left them (it saw them through the registration's lock), so
 * every consumer still sees each id's numbers increase, and the ledger
 * holds every id's items once. -ENOSPC (every ring registered or still
 * draining) is retried.
 */
static void *churn_prod_main(void *arg)
{
	struct churn *ch = arg;
	struct hub *h = ch->h;

	for (;;) {
		struct prod pr;
		rmpsc_producer *p = NULL;
		int id;

		uint32_t left = atomic_load_explicit(ch->budget, memory_order_relaxed);
		uint64_t from;

		if (stopped(h))
			break;
		if (!left)
			break;
		if (!atomic_compare_exchange_weak_explicit(ch->budget, &left, left - 1,
							   memory_order_relaxed,
							   memory_order_relaxed))
			continue;
		set_where(h, ch->t, W_REGISTER);
		while ((id = rmpsc_mpmc_register_producer(h->m, &p)) == -ENOSPC && !stopped(h)) {
			ch->nospc++;
			bump(h, ch->t, 1);
			sched_yield();
		}
		set_where(h, ch->t, W_IDLE);
		if (id == -ENOSPC)
			break;
		if (id < 0 || (uint32_t)id >= h->nids || !p) {
			hub_fail(h, "%s: register_producer returned %s (%d)", h->name, errname(id),
				 id);
			break;
		}
		ch->registrations++;
		bump(h, ch->t, 1);
		from = ld(&h->sent[id]);
		prod_init(&pr, h, ch->t, p, (uint32_t)id,
			  from + (xs_next(&ch->rng) % (ch->max_items + 1 - from)));
		pr.next = from;
		pr.rng ^= xs_next(&ch->rng);
		prod_run(&pr);
		add_pstats(&ch->st, &pr.st);
		if (pr.next != pr.limit) {
			if (!stopped(h))
				hub_fail(h, "%s: producer %d stopped at %" PRIu64 " of %" PRIu64,
					 h->name, id, pr.next, pr.limit);
			break;
		}
		set_where(h, ch->t, W_DEREGISTER);
		if (rmpsc_mpsc_deregister(p) != 0) {
			hub_fail(h, "%s: deregister of producer %d failed", h->name, id);
			break;
		}
		set_where(h, ch->t, W_IDLE);
	}
	set_where(h, ch->t, W_DONE);
	atomic_store_explicit(&h->slot[ch->t].done, 1, memory_order_release);
	return NULL;
}

/* A consumer thread that registers for a while, deregisters, and again. */
static void *churn_cons_main(void *arg)
{
	struct cons *cn = arg;
	struct hub *h = cn->h;
	bool end = false;

	while (!end && !stopped(h)) {
		uint64_t ops = 1 + xs_next(&cn->rng) % 3000;
		int r;

		set_where(h, cn->t, W_REGISTER);
		r = rmpsc_mpmc_register_consumer(h->m, &cn->c);
		set_where(h, cn->t, W_IDLE);
		if (r == -ENOSPC) {
			cn->st.nospc++;
			sched_yield();
			continue;
		}
		if (r == -EPIPE)
			break; /* closed: the consumer that stays drains */
		if (r < 0) {
			hub_fail(h, "%s: register_consumer returned %s", h->name, errname(r));
			break;
		}
		cn->st.sessions++;
		while (ops-- && !stopped(h)) {
			r = cons_step(cn);
			if (r == -EPIPE) {
				cons_final(cn);
				end = true;
				break;
			}
			if (r == BROKEN) {
				end = true;
				break;
			}
			if (r == 0)
				sched_yield();
		}
		/* Elements it took ahead are its own to deliver: take them
		 * (any take call hands them out first), then leave. */
		while (!end && !stopped(h) && rmpsc_consumer_pending(cn->c) > 0) {
			cn->st.ahead++;
			r = cons_step(cn);
			if (r == -EPIPE || r == BROKEN) {
				hub_fail(h, "%s: %d elements taken ahead, then %s", h->name,
					 rmpsc_consumer_pending(cn->c), errname(r));
				end = true;
			}
		}
		set_where(h, cn->t, W_DEREGISTER);
		if (rmpsc_consumer_deregister(cn->c) != 0)
			hub_fail(h, "%s: consumer deregister failed", h->name);
		cn->c = NULL;
		set_where(h, cn->t, W_IDLE);
	}
	set_where(h, cn->t, W_DONE);
	atomic_store_explicit(&h->slot[cn->t].done, 1, memory_order_release);
	return NULL;
}

static void test_mc_stress_mpmc_register_deregister_during_traffic_accounts_exactly(
	void **state)
{
	enum { NPT = 3, NCT = 3 };
	const uint32_t max_producers = STRESS_SCALE(60u, 30u, 24u);
	const uint64_t max_items = STRESS_SCALE(40000ull, 8000ull, 5000ull);
	/* Each id is registered 4 times on average: most rings are reused. */
	const uint32_t budget = 4 * max_producers;
	_Atomic uint32_t left = budget;
	uint32_t nospc = 0;
	struct hub *h = hub_new(__func__, max_producers, max_items);
	struct churn pt[NPT];
	struct cons cn[NCT + 1];
	pthread_t th[NPT + NCT + 1];
	rmpsc_mc_config cfg;
	struct pstats ps = { 0 };
	struct cstats cs = { 0 };
	uint32_t regs = 0;
	uint64_t total, got = 0;
	const int64_t t0 = now_ns();
	rmpsc_consumer *anchor;

	(void)state;
	assert_int_equal(rmpsc_mc_config_init(&cfg, sizeof cfg, 0), 0);
	cfg.ring_capacity = 32;
	cfg.producers = 2;
	cfg.max_producers = max_producers;
	cfg.max_consumers = 3; /* four consumer threads: -ENOSPC happens */
	assert_int_equal(rmpsc_mpmc_create(&cfg, &h->m), 0);
	h->nthreads = NPT + NCT + 1;
	for (uint32_t i = 0; i < NPT; i++) {
		memset(&pt[i], 0, sizeof pt[i]);
		pt[i].h = h;
		pt[i].t = i;
		pt[i].rng = stress_seed() ^ (0x6368726eull * (i + 1));
		pt[i].max_items = max_items;
		pt[i].budget = &left;
		h->slot[i].role = "producer";
	}
	/* slot NPT: the consumer that stays; then the churning ones */
	assert_int_equal(rmpsc_mpmc_register_consumer(h->m, &anchor), 0);
	cons_init(&cn[0], h, NPT, anchor);
	for (uint32_t i = 1; i <= NCT; i++) {
		cons_init(&cn[i], h, NPT + i, NULL);
		cn[i].churn = true;
	}
	for (uint32_t i = 0; i <= NCT; i++)
		assert_int_equal(pthread_create(&th[NPT + i], NULL,
						i ? churn_cons_main : cons_main, &cn[i]),
				 0);
	for (uint32_t i = 0; i < NPT; i++)
		assert_int_equal(pthread_create(&th[i], NULL, churn_prod_main, &pt[i]), 0);
	if (!watch(h, 0, NPT) || (hub_close(h), !watch(h, NPT, NPT + NCT + 1)))
		fail_msg("%s: threads still stuck after a close; leaving them", __func__);
	for (uint32_t i = 0; i < NPT + NCT + 1; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	for (uint32_t i = 0; i < NPT; i++) {
		add_pstats(&ps, &pt[i].st);
		regs += pt[i].registrations;
		nospc += pt[i].nospc;
	}
	for (uint32_t i = 0; i <= NCT; i++) {
		add_cstats(&cs, &cn[i].st);
		got += cn[i].got;
	}
	print_message("%s [%s]: %u producer registrations of %u ids (drained rings reused; "
		      "%u refused while draining), %u threads; %" PRIu64 " items in %.2f s\n",
		      __func__, STRESS_BUILD, regs, max_producers, nospc, NPT, got,
		      (double)(now_ns() - t0) * 1e-9);
	print_pstats("producers", &ps);
	for (uint32_t i = 0; i <= NCT; i++) {
		char who[32];

		snprintf(who, sizeof who, i ? "churning consumer %u" : "staying consumer %u", i);
		print_cstats(who, &cn[i].st, cn[i].got);
	}
	hub_check_failed(h, cn, NCT + 1);
	assert_int_equal(regs, budget);
	assert_true(ledger_check(h, &total));
	hub_check_failed(h, cn, NCT + 1);
	assert_int_equal(total, got);
	assert_true(cn[0].epipe);
	assert_int_equal(cn[0].after, -EPIPE);
	assert_true(cs.sessions > NCT);
	assert_int_equal(hub_len(h), 0);
	assert_int_equal(hub_drained(h), 1);
	{
		rmpsc_producer *p = NULL;
		rmpsc_consumer *c = NULL;

		assert_int_equal(rmpsc_mpmc_register_producer(h->m, &p), -EPIPE);
		assert_int_equal(rmpsc_mpmc_register_consumer(h->m, &c), -EPIPE);
	}
	for (uint32_t i = 0; i <= NCT; i++)
		free(cn[i].last);
	hub_free(h);
}

/* ---- (4) close while producers push and consumers wait ---------------------- */

struct close_totals {
	uint64_t rounds[2];      /* SPMC, MPMC */
	uint64_t items;
	uint64_t prod_epipe;     /* producers that saw the close */
	uint64_t asleep_at_close; /* MPMC rounds with a consumer seen asleep */
	uint64_t budget_done;    /* rounds whose producers had sent everything */
};

/* Items received so far by the consumers in slots [lo, hi). */
static uint64_t slots_ops(struct hub *h, uint32_t lo, uint32_t hi)
{
	uint64_t sum = 0;

	for (uint32_t i = lo; i < hi; i++)
		sum += ld(&h->slot[i].ops);
	return sum;
}

static bool close_round(unsigned round, uint64_t *rng, struct close_totals *tot)
{
	static const uint32_t caps[] = { 1, 4, 16, 64 };
	const bool spmc = round & 1;
	const uint32_t np = spmc ? 1 : 3, nc = 3;
	const uint64_t x = xs_next(rng);
	const uint64_t budget = (x & 3) == 0 ? 1 + (x >> 8) % 300 : 4000;
	const uint64_t threshold = (x >> 20) % (budget * np + 1) / 2;
	const bool await_asleep = !spmc && ((x >> 40) & 1);
	char name[96];
	struct hub *h;
	struct prod pr[4];
	struct cons cn[4];
	pthread_t th[8];
	uint64_t total, got = 0;
	bool asleep = false;

	snprintf(name, sizeof name, "close round %u (%s)", round, spmc ? "SPMC" : "MPMC");
	h = hub_new(name, np, budget);
	h->expect_close = true;
	h->timed_only = true;
	hub_start(h, spmc, np, nc, caps[(x >> 4) & 3], np, budget, pr, cn, th, x + round,
		  x * (round + 1));

	/* the closer: once enough arrived (or nothing more will), and in half
	 * the MPMC rounds once a consumer is asleep in a _timed call */
	{
		uint64_t last = 0;
		int64_t since = now_ns();

		for (uint64_t spins = 0;; spins++) {
			const uint64_t now_got = slots_ops(h, np, np + nc);

			if (now_got >= threshold || slots_done(h, 0, np) || stopped(h))
				break;
			if (now_got != last) {
				last = now_got;
				since = now_ns();
			} else if ((spins & 1023) == 0 &&
				   now_ns() - since > (int64_t)WATCHDOG_SEC * 1000000000ll) {
				hub_fail(h, "no progress for %d s before the close", WATCHDOG_SEC);
				break;
			}
			sched_yield();
		}
		if (await_asleep) {
			_Atomic uint32_t *cwait = tc_consumer_sleepers(tc_producer_core(pr[0].p));

			for (int i = 0; i < 20000 && !asleep; i++) {
				asleep = atomic_load_explicit(cwait, memory_order_acquire) > 0;
				if (!asleep)
					sched_yield();
			}
		}
		hub_close(h);
	}
	if (!watch(h, 0, np + nc)) {
		fail_msg("%s: threads still stuck after a close; leaving them", name);
		return false;
	}
	for (uint32_t i = 0; i < np + nc; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	hub_check_failed(h, cn, nc);
	assert_true(ledger_check(h, &total));
	hub_check_failed(h, cn, nc);
	for (uint32_t i = 0; i < nc; i++) {
		uint64_t v;

		assert_true(cn[i].epipe);
		assert_int_equal(cn[i].after, -EPIPE);
		assert_int_equal(rmpsc_consumer_steal_one(cn[i].c, &v), -EPIPE);
		got += cn[i].got;
		free(cn[i].last);
	}
	assert_int_equal(got, total);
	assert_int_equal(hub_len(h), 0);
	assert_int_equal(hub_drained(h), 1);
	for (uint32_t i = 0; i < np; i++) {
		assert_true(pr[i].end == -EPIPE || pr[i].next == budget);
		tot->prod_epipe += pr[i].end == -EPIPE;
	}
	tot->rounds[spmc ? 0 : 1]++;
	tot->items += total;
	tot->asleep_at_close += asleep;
	tot->budget_done += slots_done(h, 0, np) && total == budget * np;
	hub_free(h);
	return true;
}

static void test_mc_stress_close_while_pushing_and_waiting_delivers_every_push_once(
	void **state)
{
	const unsigned rounds = STRESS_SCALE(500u, 200u, 120u);
	uint64_t rng = stress_seed() ^ 0x636c6f7365ull;
	struct close_totals tot;
	const int64_t t0 = now_ns();

	(void)state;
	memset(&tot, 0, sizeof tot);
	for (unsigned i = 0; i < rounds; i++)
		if (!close_round(i, &rng, &tot))
			return;
	print_message("%s [%s]: %u rounds (%" PRIu64 " SPMC, %" PRIu64 " MPMC), %" PRIu64
		      " items, %" PRIu64 " producers ended by -EPIPE, %" PRIu64
		      " MPMC closes with a consumer asleep, %" PRIu64
		      " rounds with every item sent: %.2f s\n", __func__, STRESS_BUILD, rounds,
		      tot.rounds[0], tot.rounds[1], tot.items, tot.prod_epipe,
		      tot.asleep_at_close, tot.budget_done, (double)(now_ns() - t0) * 1e-9);
	assert_true(tot.prod_epipe > 0);
}

/* ---- (5) register + push + close against a polling consumer ----------------- */

struct poller {
	struct hub *h;
	rmpsc_consumer *c;
	uint64_t rng;
	uint32_t got;
	uint64_t vals[8];
	int end;
};

static void *poller_main(void *arg)
{
	struct poller *po = arg;
	struct hub *h = po->h;

	for (;;) {
		const uint64_t x = xs_next(&po->rng);
		uint64_t buf[4];
		int r;

		if (x & 1) {
			r = rmpsc_consumer_steal_one(po->c, buf);
			r = r == 0 ? 1 : r;
		} else if (x & 2) {
			r = rmpsc_consumer_steal(po->c, buf, 4);
		} else {
			r = rmpsc_consumer_steal_timed(po->c, buf, 4, 0, NULL);
			r = r == -ETIMEDOUT ? -EAGAIN : r;
		}
		if (r > 0) {
			for (int i = 0; i < r && po->got < 8; i++)
				po->vals[po->got++] = buf[i];
			bump(h, 0, (uint64_t)r);
			continue;
		}
		if (r != -EAGAIN) {
			po->end = r;
			break;
		}
		bump(h, 0, 1);
		if (stopped(h))
			break;
	}
	atomic_store_explicit(&h->slot[0].done, 1, memory_order_release);
	return NULL;
}

static void test_mc_stress_mpmc_register_push_close_race_loses_nothing(void **state)
{
	static const uint32_t used_rings[] = { 0, 4, 64, 256 };
	const unsigned rounds = STRESS_SCALE(2000u, 1500u, 800u);
	uint64_t rng = stress_seed() ^ 0x72616365ull;
	unsigned lost_rounds = 0, first_lost = 0, lost_items = 0;
	uint32_t first_k = 0;
	int first_end = 0;
	int64_t first_len = 0;
	const int64_t t0 = now_ns();

	(void)state;
	for (unsigned round = 0; round < rounds; round++) {
		const uint64_t x = xs_next(&rng);
		const uint32_t k = used_rings[x & 3];
		const uint32_t npush = 1 + (uint32_t)((x >> 8) % 3);
		struct hub *h = hub_new("register/push/close race", 1, 1);
		struct poller po;
		rmpsc_mc_config cfg;
		rmpsc_producer *p = NULL, *prods[256];
		pthread_t t;
		int pushed = 0;

		assert_int_equal(rmpsc_mc_config_init(&cfg, sizeof cfg, 0), 0);
		cfg.ring_capacity = 4;
		cfg.producers = 0;
		cfg.max_producers = k + 1;
		cfg.max_consumers = 1;
		assert_int_equal(rmpsc_mpmc_create(&cfg, &h->m), 0);
		/* rings used and left before: open and drained, or closed (each
		 * left one drained, so the registration below reuses ring 1 when
		 * there is one, else gets a new ring) */
		for (uint32_t i = 0; i < k; i++)
			assert_int_equal(rmpsc_mpmc_register_producer(h->m, &prods[i]), (int)i);
		for (uint32_t i = 1; i < k; i += 2)
			assert_int_equal(rmpsc_mpsc_deregister(prods[i]), 0);
		h->nthreads = 1;
		h->slot[0].role = "consumer";
		memset(&po, 0, sizeof po);
		po.h = h;
		po.rng = x | 1;
		assert_int_equal(rmpsc_mpmc_register_consumer(h->m, &po.c), 0);
		assert_int_equal(pthread_create(&t, NULL, poller_main, &po), 0);
		/* give the consumer a moment to be inside its polling loop */
		for (uint64_t i = 0; i < ((x >> 16) & 7); i++)
			sched_yield();
		assert_int_equal(rmpsc_mpmc_register_producer(h->m, &p), k ? 1 : 0);
		for (uint32_t i = 0; i < npush; i++)
			if (rmpsc_producer_push(p, &(uint64_t){ 100 + i }) == 0)
				pushed++;
		assert_int_equal(pushed, (int)npush);
		atomic_store_explicit(&h->closed, 1, memory_order_relaxed);
		assert_int_equal(rmpsc_mpmc_close(h->m), 0);
		if (!watch(h, 0, 1))
			fail_msg("race round %u: consumer stuck after the close", round);
		assert_int_equal(pthread_join(t, NULL), 0);
		assert_int_equal(po.end, -EPIPE);
		for (uint32_t i = 0; i < po.got; i++)
			assert_int_equal(po.vals[i], 100 + i);
		if (po.got != (uint32_t)pushed) {
			if (!lost_rounds++) {
				first_lost = round;
				first_k = k;
				first_end = po.end;
				first_len = rmpsc_mpmc_len(h->m);
			}
			lost_items += (unsigned)pushed - po.got;
		}
		hub_free(h);
	}
	print_message("%s [%s]: %u rounds, %u with items lost: %.2f s\n", __func__, STRESS_BUILD,
		      rounds, lost_rounds, (double)(now_ns() - t0) * 1e-9);
	if (lost_rounds)
		fail_msg("%u of %u rounds lost %u items in all: a producer registered, "
			 "pushed (0 returned) and the channel was closed, but the consumer "
			 "got -EPIPE without those items (first: round %u, %u rings used "
			 "before, consumer ended with %s, rmpsc_mpmc_len() then %" PRId64 ")",
			 lost_rounds, rounds, lost_items, first_lost, first_k,
			 errname(first_end), first_len);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mc_stress_mpmc_4x4_delivers_each_item_once_in_order),
		cmocka_unit_test(test_mc_stress_spmc_1x4_delivers_each_item_once_in_order),
		cmocka_unit_test(test_mc_stress_mpmc_tiny_rings_deliver_each_item_once_in_order),
		cmocka_unit_test(
			test_mc_stress_mpmc_register_deregister_during_traffic_accounts_exactly),
		cmocka_unit_test(
			test_mc_stress_close_while_pushing_and_waiting_delivers_every_push_once),
		cmocka_unit_test(test_mc_stress_mpmc_register_push_close_race_loses_nothing),
	};

	return cmocka_run_group_tests_name("stress_mc", tests, NULL, NULL);
}
