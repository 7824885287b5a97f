/* SPDX-License-Identifier: MIT */
/*
 * Stress for rmpsc_mpsc (ctest label "stress"). Every element carries the
 * registration it was sent under and its sequence number in it,
 * (tag << 40) | seq, so the consumer checks per-producer FIFO, no loss, no
 * duplicate and the producer id it is handed, element by element.
 *
 * (1) Eight producer threads (each registers itself while the consumer
 *     already runs) push 1 M elements each (fewer under sanitizers) into
 *     64-slot rings, choosing each call pseudo-randomly: push, push_n,
 *     reserve + commit (partial commits, abandoned reservations, spans that
 *     wrap) and the _timed variants with no limit, a try or a few us. The
 *     consumer mixes consume_all, consume_up_to, pop, pop_n,
 *     readable/advance (repeated spans, partial advances) and the _timed
 *     calls. Metrics on: at the end sent == received == the total.
 * (2) Registration churn: producer threads register, push a random number
 *     of elements, deregister (sometimes with a reservation left open) and
 *     register again, so rings are handed out, drained and reused while the
 *     consumer runs; an observer thread polls the status calls. Each
 *     registration has its own tag; the consumer also checks that a reused
 *     ring delivers a later registration only after the earlier one was
 *     complete. At the end the channel is closed: every registration's
 *     successful pushes arrived, and -EPIPE came only then.
 * (3) Close from a third thread (the main one) while producers push (fast,
 *     or paced so that the consumer sleeps) and the consumer waits in
 *     consume_all_timed: every push reported as successful arrives before
 *     the consumer's -EPIPE, nothing after it. Hundreds of rounds.
 *
 * (4) A late producer registers, pushes one element and closes the channel
 *     while the consumer polls with pop_n (and the other pull calls): the
 *     element arrives before the consumer's -EPIPE, in every round.
 *
 * (5) Status calls during registration churn where every registration
 *     pushes one element: no ring ever holds more than one, so an observer
 *     polling len, ring_len, hottest and stats checks exact bounds (a ring
 *     reset for its next producer must never show the old head with the
 *     new tail, or any other phantom).
 *
 * A watchdog (the main thread) fails a case after 20 s without progress,
 * closes the channel to free every thread and reports where each one was.
 * -EAGAIN is answered with sched_yield(); no duration is asserted, times are
 * printed. Set RMPSC_STRESS_SEED to vary the seed.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
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

#define STRESS_SEED 0x5851f42d4c957f2dull
#include "test_util.h" /* stress_seed(), xs_next(), STRESS_SCALE, ... */
#define WATCHDOG_SEC 20
#define US 1000ll
#define MS 1000000ll
#define TAG_SHIFT 40
#define SEQ_MASK ((1ull << TAG_SHIFT) - 1)
/* An op already reported its failure. */
#define STRESS_BROKEN INT_MIN
#define MAX_THREADS 16
#define BUF_MAX 256

/* ---- common -------------------------------------------------------------- */

static inline uint32_t xs_below(uint64_t *s, uint32_t n)
{
	return (uint32_t)((xs_next(s) >> 20) % n);
}

/* Where a thread is, for the watchdog's message. */
enum where {
	W_IDLE, W_REGISTER, W_PUSH, W_PUSH_N, W_RESERVE, W_PUSH_TIMED, W_PUSH_N_TIMED,
	W_RESERVE_TIMED, W_DEREGISTER, W_CONSUME, W_CONSUME_UP_TO, W_POP, W_POP_N,
	W_READABLE, W_CONSUME_TIMED, W_POP_N_TIMED, W_READABLE_TIMED, W_BORROW, W_PAUSE,
	W_FINISH, W_DONE,
};

static const char *const where_names[] = {
	"between calls", "register", "push", "push_n", "reserve/commit", "push_timed",
	"push_n_timed", "reserve_timed/commit", "deregister", "consume_all",
	"consume_up_to", "pop", "pop_n", "readable/advance", "consume_all_timed",
	"pop_n_timed", "readable_timed/advance", "borrow/commit", "a pause",
	"the final checks", "done",
};

/* One registration: written by its producer, checked by the consumer. */
struct tagrec {
	_Atomic int32_t id;     /* ring id; -1 until registered */
	_Atomic uint64_t sent;  /* elements reported as published */
	_Atomic uint64_t recv;  /* elements received (consumer-written) */
	_Atomic int done;       /* the producer is finished with it */
};

/* Per-thread state the watchdog reads: its own cache line. */
struct slot {
	_Atomic uint64_t progress;
	_Atomic int where;
	_Atomic int done;
	char _pad[48];
};

struct prod_stats {
	uint64_t push1, push_n, reserves, wraps, partial_commits, abandoned;
	uint64_t timed, eagain, timeouts, registrations, enospc;
};

struct cons_stats {
	uint64_t consume_all, up_to, pop1, pop_n, readables, repeats, partial_adv;
	uint64_t wraps, timed, empty, handler_segs;
	uint64_t borrows, borrowed, borrow_fns, ooo_commits, commit_alls;
};

struct stress {
	/* Set before the threads start. */
	rmpsc_mpsc *ch;
	uint32_t cap;
	uint32_t max_producers;
	uint32_t nprod;          /* producer threads */
	uint64_t per_prod;       /* case 1: elements per producer */
	uint32_t regs_per_prod;  /* case 2: registrations per producer thread */
	uint32_t max_tags;
	struct tagrec *tags;     /* [max_tags], tag 0 unused */
	uint64_t seed;
	bool churn_check;        /* case 2: per-ring registration order */
	bool timed_only;         /* case 3: the consumer only waits */
	uint32_t paced;          /* case 3: producers pause: 0 never, 1 a few us,
				  * 2 hundreds of us (the consumer sleeps) */
	bool until_close;        /* case 3: the churn thread runs until closed */
	bool use_borrow;         /* the consumer also borrows */

	char _pad0[64];
	atomic_int failed;
	atomic_bool stop;        /* a failure: every loop leaves */
	atomic_bool closing;     /* set before the intended close */
	_Atomic uint64_t next_tag;
	char _pad1[64];
	struct slot cons;
	struct slot prod[MAX_THREADS];
	struct slot obs;

	/* Consumer-private. */
	uint64_t *ring_tag;      /* [max_producers]: last tag seen per ring */
	uint64_t *buf;           /* pop_n */
	uint64_t rng_c;
	uint32_t open_id;        /* readable: ring of a partly advanced span */
	uint32_t open_left;      /* its elements not yet advanced */
	uint64_t open_pos;
	uint64_t bor_token[4];   /* outstanding borrows */
	uint32_t bor_count[4];
	uint32_t nbor;
	bool epipe;
	uint64_t received;

	char msg[768];
	struct prod_stats ps[MAX_THREADS];
	struct cons_stats cs;
	uint64_t observer_samples;
};

/* After a failure: say it at once, and every thread leaves; the close
 * frees every blocked thread, and the case then ends with the failure. */
static void stress_stop(void *arg, int first)
{
	struct stress *st = arg;

	if (first)
		fprintf(stderr, "stress_mpsc: %s\n", st->msg);
	atomic_store_explicit(&st->stop, true, memory_order_release);
	rmpsc_mpsc_close(st->ch);
}

#define stress_fail(st, ...) FAIL_RECORD(st, stress_stop, __VA_ARGS__)

/* The most a batch call takes: two rings' worth, at most BUF_MAX. */
static uint32_t batch_max(const struct stress *st)
{
	return 2 * st->cap < BUF_MAX ? 2 * st->cap : BUF_MAX;
}

static bool stopped(struct stress *st)
{
	/* Relaxed: a hint to leave; results are read after the joins. */
	return atomic_load_explicit(&st->stop, memory_order_relaxed);
}

static bool closing(struct stress *st)
{
	return atomic_load_explicit(&st->closing, memory_order_acquire);
}

static void set_where(struct slot *s, int w)
{
	atomic_store_explicit(&s->where, w, memory_order_relaxed);
}

static void add_progress(struct slot *s, uint64_t n)
{
	/* Single writer; relaxed: read by the watchdog only. */
	atomic_store_explicit(&s->progress,
			      atomic_load_explicit(&s->progress, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

static uint64_t ld64(_Atomic uint64_t *a)
{
	return atomic_load_explicit(a, memory_order_relaxed);
}

/* ---- producer ------------------------------------------------------------ */

/* A timeout for a producer's _timed call: mostly none, else a try or a few
 * us; and a strategy: mostly the ring's, sometimes one that sleeps at once
 * or one that only yields. */
static int64_t pick_timeout(uint64_t *rng)
{
	uint32_t x = xs_below(rng, 16);

	return x < 12 ? -1 : (x < 14 ? 0 : (int64_t)(1 + xs_below(rng, 20)) * US);
}

static const rmpsc_wait *pick_wait(uint64_t *rng, const rmpsc_wait w[2])
{
	uint32_t x = xs_below(rng, 8);

	return x < 6 ? NULL : &w[x - 6];
}

struct prod_ctx {
	struct stress *st;
	struct slot *slot;
	struct prod_stats *ps;
	uint64_t rng;
	rmpsc_wait w[2];
	uint64_t vals[BUF_MAX];
};

/*
 * One call on @p publishing up to @want elements of @tag from *seq on.
 * Returns the elements published (0 if none: full, timed out, or a
 * reservation left open), -EPIPE when the channel closed (*seq advanced by
 * what was published before), or STRESS_BROKEN after reporting.
 */
static int prod_step(struct prod_ctx *c, rmpsc_producer *p, uint64_t tag, uint64_t *seq,
		     uint64_t want)
{
	struct stress *st = c->st;
	const uint32_t maxn = batch_max(st);
	uint32_t n = pick_n(&c->rng, 8, maxn), op = xs_below(&c->rng, 12);
	const uint64_t base = (tag << TAG_SHIFT) | *seq;
	rmpsc_span s;
	int rc, k;

	if (n > want)
		n = (uint32_t)want;
	for (uint32_t i = 0; i < n; i++)
		c->vals[i] = base + i;
	switch (op) {
	case 0:
	case 1:
		set_where(c->slot, W_PUSH);
		c->ps->push1++;
		rc = rmpsc_producer_push(p, c->vals);
		k = rc == 0 ? 1 : rc;
		break;
	case 2:
	case 3:
		set_where(c->slot, W_PUSH_N);
		c->ps->push_n++;
		k = rmpsc_producer_push_n(p, c->vals, n);
		break;
	case 4:
	case 5:
	case 6:
	case 7: {
		const bool timed = op == 7;
		uint32_t c1;

		set_where(c->slot, timed ? W_RESERVE_TIMED : W_RESERVE);
		c->ps->reserves++;
		if (timed) {
			c->ps->timed++;
			k = rmpsc_producer_reserve_timed(p, n, &s, pick_timeout(&c->rng),
							 pick_wait(&c->rng, c->w));
		} else {
			k = rmpsc_producer_reserve(p, n, &s);
		}
		if (k <= 0)
			break;
		if ((uint32_t)k > n || s.count[0] + s.count[1] != (uint32_t)k ||
		    s.nseg != (s.count[1] ? 2u : 1u)) {
			stress_fail(st, "producer tag %" PRIu64 ": reserve(%u) = %d, span "
				    "%u+%u in %u segments", tag, n, k, s.count[0], s.count[1],
				    s.nseg);
			return STRESS_BROKEN;
		}
		if (s.nseg == 2)
			c->ps->wraps++;
		for (uint32_t i = 0; i < (uint32_t)k; i++)
			span_put_u64(&s, i, base + i);
		if (xs_below(&c->rng, 64) == 0) {
			/* left open: the next call replaces it; nothing published */
			c->ps->abandoned++;
			return 0;
		}
		c1 = (uint32_t)k;
		if (k > 1 && xs_below(&c->rng, 4) == 0) {
			c1 = 1 + xs_below(&c->rng, (uint32_t)k - 1);
			c->ps->partial_commits++;
		}
		rc = rmpsc_producer_commit(p, c1);
		if (rc == 0 && c1 < (uint32_t)k) {
			*seq += c1;
			rc = rmpsc_producer_commit(p, (uint32_t)k - c1);
			if (rc == 0) {
				*seq += (uint32_t)k - c1;
				return k;
			}
			if (rc == -EPIPE)
				return -EPIPE;
			stress_fail(st, "producer tag %" PRIu64 ": second commit(%u) = %d",
				    tag, (uint32_t)k - c1, rc);
			return STRESS_BROKEN;
		}
		k = rc == 0 ? k : rc;
		break;
	}
	case 8:
	case 9:
		set_where(c->slot, W_PUSH_TIMED);
		c->ps->timed++;
		rc = rmpsc_producer_push_timed(p, c->vals, pick_timeout(&c->rng),
					       pick_wait(&c->rng, c->w));
		k = rc == 0 ? 1 : rc;
		break;
	default:
		set_where(c->slot, W_PUSH_N_TIMED);
		c->ps->timed++;
		k = rmpsc_producer_push_n_timed(p, c->vals, n, pick_timeout(&c->rng),
						pick_wait(&c->rng, c->w));
		break;
	}
	set_where(c->slot, W_IDLE);
	if (k > 0) {
		if ((uint32_t)k > n) {
			stress_fail(st, "producer tag %" PRIu64 ": op %u published %d of %u",
				    tag, op, k, n);
			return STRESS_BROKEN;
		}
		*seq += (uint32_t)k;
		return k;
	}
	if (k == -EAGAIN) {
		c->ps->eagain++;
		return 0;
	}
	if (k == -ETIMEDOUT) {
		c->ps->timeouts++;
		return 0;
	}
	if (k == -EPIPE)
		return -EPIPE;
	stress_fail(st, "producer tag %" PRIu64 ": op %u (n %u) at seq %" PRIu64
		    " returned %d (%s)", tag, op, n, *seq, k, errname(k));
	return STRESS_BROKEN;
}

static void prod_ctx_init(struct prod_ctx *c, struct stress *st, uint32_t idx)
{
	memset(c, 0, sizeof *c);
	c->st = st;
	c->slot = &st->prod[idx];
	c->ps = &st->ps[idx];
	c->rng = st->seed ^ (0x70726f64ull + 0x9e3779b97f4a7c15ull * (idx + 1));
	rmpsc_wait_init(&c->w[0], sizeof c->w[0], RMPSC_WAIT_BLOCK);
	c->w[0].spin_count = 0;
	c->w[0].yield_count = 0;
	rmpsc_wait_init(&c->w[1], sizeof c->w[1], RMPSC_WAIT_YIELD);
}

/* Push @count elements of @tag (fewer if the channel closes and @may_close);
 * returns false on a failure or a stop. Updates tags[tag].sent. */
static bool prod_run(struct prod_ctx *c, rmpsc_producer *p, uint64_t tag, uint64_t count,
		     bool may_close, bool *closed)
{
	struct stress *st = c->st;
	struct tagrec *t = &st->tags[tag];
	uint64_t seq = 0;

	*closed = false;
	while (seq < count && !stopped(st)) {
		const uint64_t before = seq;
		int k = prod_step(c, p, tag, &seq, count - seq);

		if (seq != before) {
			/* Relaxed: the ring's release orders it for the consumer. */
			atomic_store_explicit(&t->sent, seq, memory_order_relaxed);
			add_progress(c->slot, seq - before);
		}
		if (k == STRESS_BROKEN)
			return false;
		if (k == -EPIPE) {
			if (!may_close || !closing(st)) {
				stress_fail(st, "producer tag %" PRIu64 ": -EPIPE at seq %" PRIu64
					    " before the channel was closed", tag, seq);
				return false;
			}
			*closed = true;
			return true;
		}
		if (k == 0)
			sched_yield();
		if (st->paced && xs_below(&c->rng, 4) == 0) {
			set_where(c->slot, W_PAUSE);
			sleep_ns(st->paced == 1 ? (int64_t)(2 + xs_below(&c->rng, 30)) * US
						: (int64_t)(100 + xs_below(&c->rng, 500)) * US);
			set_where(c->slot, W_IDLE);
		}
	}
	return seq == count || may_close;
}

/* Register with retries on -ENOSPC (the consumer frees drained rings). */
static int prod_register(struct prod_ctx *c, rmpsc_producer **p, bool may_close)
{
	struct stress *st = c->st;
	int id;

	set_where(c->slot, W_REGISTER);
	for (;;) {
		id = rmpsc_mpsc_register(st->ch, p);
		if (id != -ENOSPC || stopped(st))
			break;
		c->ps->enospc++;
		sched_yield();
	}
	set_where(c->slot, W_IDLE);
	if (id >= 0) {
		if (rmpsc_producer_id(*p) != id || id >= (int)st->max_producers) {
			stress_fail(st, "register returned %d, producer_id %d", id,
				    rmpsc_producer_id(*p));
			return STRESS_BROKEN;
		}
		c->ps->registrations++;
		return id;
	}
	if (id == -EPIPE && may_close && closing(st))
		return id;
	if (!stopped(st))
		stress_fail(st, "register returned %d (%s)", id, errname(id));
	return STRESS_BROKEN;
}

static uint64_t new_tag(struct stress *st)
{
	uint64_t tag = atomic_fetch_add_explicit(&st->next_tag, 1, memory_order_relaxed);

	if (tag >= st->max_tags) {
		stress_fail(st, "more than %u registrations", st->max_tags - 1);
		return 0;
	}
	return tag;
}

static void tag_finish(struct stress *st, uint64_t tag)
{
	/* Release: before the deregister; the consumer acquires it through the
	 * ring (and checks it when the ring is reused). */
	atomic_store_explicit(&st->tags[tag].done, 1, memory_order_release);
}

struct prod_arg {
	struct stress *st;
	uint32_t idx;
	rmpsc_producer *p; /* case 3: registered by the main thread */
	uint64_t tag;
};

/* Case 1: one registration, per_prod elements. */
static void *prod_fixed_main(void *arg)
{
	struct prod_arg *a = arg;
	struct stress *st = a->st;
	struct prod_ctx *c = malloc(sizeof *c);
	rmpsc_producer *p = NULL;
	uint64_t tag = a->idx + 1;
	bool closed;
	int id;

	if (!c) {
		stress_fail(st, "producer: out of memory");
		goto out;
	}
	prod_ctx_init(c, st, a->idx);
	id = prod_register(c, &p, false);
	if (id < 0)
		goto out;
	atomic_store_explicit(&st->tags[tag].id, id, memory_order_relaxed);
	if (prod_run(c, p, tag, st->per_prod, false, &closed) &&
	    ld64(&st->tags[tag].sent) != st->per_prod)
		stress_fail(st, "producer tag %" PRIu64 ": sent %" PRIu64 " of %" PRIu64, tag,
			    ld64(&st->tags[tag].sent), st->per_prod);
	tag_finish(st, tag);
	/* The channel stays open: the main thread closes it. */
out:
	free(c);
	set_where(&st->prod[a->idx], W_DONE);
	atomic_store_explicit(&st->prod[a->idx].done, 1, memory_order_release);
	return NULL;
}

/* Case 2 (and the churn thread of case 3): register, push, deregister. */
static void *prod_churn_main(void *arg)
{
	struct prod_arg *a = arg;
	struct stress *st = a->st;
	struct prod_ctx *c = malloc(sizeof *c);
	const bool may_close = st->until_close;

	if (!c) {
		stress_fail(st, "producer: out of memory");
		goto out;
	}
	prod_ctx_init(c, st, a->idx);
	for (uint32_t r = 0; (may_close || r < st->regs_per_prod) && !stopped(st); r++) {
		rmpsc_producer *p = NULL;
		uint64_t tag, count;
		bool closed = false;
		rmpsc_span s;
		int id, rc;

		if (may_close && ld64(&st->next_tag) + 1 >= st->max_tags) {
			/* out of tags: wait for the close */
			while (!closing(st) && !stopped(st))
				sleep_ns(100 * US);
			break;
		}
		if (may_close && xs_below(&c->rng, 4) == 0) {
			set_where(c->slot, W_PAUSE);
			sleep_ns((int64_t)(1 + xs_below(&c->rng, 20)) * US);
			set_where(c->slot, W_IDLE);
		}
		id = prod_register(c, &p, may_close);
		if (id == -EPIPE)
			break;
		if (id < 0)
			goto out;
		tag = new_tag(st);
		if (!tag)
			goto out;
		atomic_store_explicit(&st->tags[tag].id, id, memory_order_relaxed);
		/* 0 .. 3 rings' worth, mostly small */
		count = xs_below(&c->rng, 4) ? xs_below(&c->rng, st->cap + 1)
					     : xs_below(&c->rng, 3 * st->cap + 1);
		if (!prod_run(c, p, tag, count, may_close, &closed)) {
			tag_finish(st, tag);
			goto out;
		}
		/* sometimes leave with a reservation open: it is dropped */
		if (!closed && xs_below(&c->rng, 8) == 0 &&
		    rmpsc_producer_reserve(p, 1 + xs_below(&c->rng, 4), &s) > 0)
			c->ps->abandoned++;
		tag_finish(st, tag);
		set_where(c->slot, W_DEREGISTER);
		rc = rmpsc_mpsc_deregister(p);
		set_where(c->slot, W_IDLE);
		if (rc) {
			stress_fail(st, "deregister (tag %" PRIu64 ", ring %d) returned %d", tag,
				    id, rc);
			goto out;
		}
		if (closed)
			break;
	}
out:
	free(c);
	set_where(&st->prod[a->idx], W_DONE);
	atomic_store_explicit(&st->prod[a->idx].done, 1, memory_order_release);
	return NULL;
}

/* Case 3: a producer registered by the main thread pushes until closed. */
static void *prod_until_close_main(void *arg)
{
	struct prod_arg *a = arg;
	struct stress *st = a->st;
	struct prod_ctx *c = malloc(sizeof *c);
	bool closed = false;

	if (!c) {
		stress_fail(st, "producer: out of memory");
		goto out;
	}
	prod_ctx_init(c, st, a->idx);
	if (prod_run(c, a->p, a->tag, SEQ_MASK, true, &closed) && !closed && !stopped(st))
		stress_fail(st, "producer tag %" PRIu64 ": ended without -EPIPE", a->tag);
	tag_finish(st, a->tag);
out:
	free(c);
	set_where(&st->prod[a->idx], W_DONE);
	atomic_store_explicit(&st->prod[a->idx].done, 1, memory_order_release);
	return NULL;
}

/* ---- consumer ------------------------------------------------------------ */

/* One element, from ring @pid (UINT32_MAX: not known to this call). */
static bool cons_check(struct stress *st, uint64_t v, uint32_t pid)
{
	const uint64_t tag = v >> TAG_SHIFT, seq = v & SEQ_MASK;
	struct tagrec *t;
	uint64_t want;
	int32_t id;

	if (tag == 0 || tag >= st->max_tags) {
		stress_fail(st, "consumer: element %#" PRIx64 " has no valid tag", v);
		return false;
	}
	t = &st->tags[tag];
	/* Relaxed: written before the producer's first publication. */
	id = atomic_load_explicit(&t->id, memory_order_relaxed);
	want = ld64(&t->recv);
	if (seq != want) {
		stress_fail(st, "consumer: tag %" PRIu64 " (ring %d): seq %" PRIu64
			    ", expected %" PRIu64 " (%s)", tag, id, seq, want,
			    seq < want ? "duplicate or reordered" : "lost elements");
		return false;
	}
	if (pid != UINT32_MAX) {
		if ((int32_t)pid != id) {
			stress_fail(st, "consumer: tag %" PRIu64 " seq %" PRIu64 " handed out "
				    "as producer %u, registered as %d", tag, seq, pid, id);
			return false;
		}
		if (st->churn_check && st->ring_tag[pid] != tag) {
			const uint64_t prev = st->ring_tag[pid];

			if (prev > tag) {
				stress_fail(st, "consumer: ring %u delivers tag %" PRIu64
					    " after the later tag %" PRIu64, pid, tag, prev);
				return false;
			}
			if (prev) {
				struct tagrec *pt = &st->tags[prev];

				/* Acquire: the earlier producer's done and sent. */
				if (!atomic_load_explicit(&pt->done, memory_order_acquire) ||
				    ld64(&pt->recv) != ld64(&pt->sent)) {
					stress_fail(st, "consumer: ring %u reused by tag %" PRIu64
						    " while tag %" PRIu64 " had %" PRIu64 " of %"
						    PRIu64 " delivered (done %d)", pid, tag, prev,
						    ld64(&pt->recv), ld64(&pt->sent),
						    atomic_load_explicit(&pt->done,
									 memory_order_relaxed));
					return false;
				}
			}
			st->ring_tag[pid] = tag;
		}
	}
	atomic_store_explicit(&t->recv, want + 1, memory_order_relaxed);
	st->received++;
	return true;
}

static void cons_fn(void *ctx, uint32_t id, const void *items, uint32_t count)
{
	struct stress *st = ctx;
	const unsigned char *p = items;

	st->cs.handler_segs++;
	if (st->epipe) {
		stress_fail(st, "consumer: handler called after -EPIPE");
		return;
	}
	for (uint32_t i = 0; i < count && !stopped(st); i++) {
		uint64_t v;

		memcpy(&v, p + (size_t)i * 8, 8);
		if (!cons_check(st, v, id))
			return;
	}
}

static int64_t cons_timeout(struct stress *st)
{
	uint32_t x = xs_below(&st->rng_c, 8);

	return x < 5 ? -1 : (x < 7 ? 0 : (int64_t)(1 + xs_below(&st->rng_c, 50)) * US);
}

/* readable(_timed) + advance; with a partly advanced span outstanding, it
 * must come back (same ring, position moved by what was advanced). */
static int64_t cons_readable(struct stress *st, bool timed)
{
	const uint32_t n = pick_n(&st->rng_c, 8, batch_max(st));
	uint32_t id = UINT32_MAX, a;
	rmpsc_span s;
	int k, rc;

	set_where(&st->cons, timed ? W_READABLE_TIMED : W_READABLE);
	st->cs.readables++;
	if (timed) {
		st->cs.timed++;
		k = rmpsc_mpsc_readable_timed(st->ch, n, &s, &id, cons_timeout(st), NULL);
	} else {
		k = rmpsc_mpsc_readable(st->ch, n, &s, &id);
	}
	if (k <= 0) {
		if (st->open_left) {
			stress_fail(st, "consumer: readable with %u elements of ring %u "
				    "outstanding returned %d", st->open_left, st->open_id, k);
			return STRESS_BROKEN;
		}
		return k;
	}
	if ((uint32_t)k > n || s.count[0] + s.count[1] != (uint32_t)k ||
	    s.nseg != (s.count[1] ? 2u : 1u) || id >= st->max_producers) {
		stress_fail(st, "consumer: readable(%u) = %d, span %u+%u in %u segments, "
			    "id %u", n, k, s.count[0], s.count[1], s.nseg, id);
		return STRESS_BROKEN;
	}
	if (st->open_left && (id != st->open_id || s.pos != st->open_pos ||
			      (uint32_t)k < (n < st->open_left ? n : st->open_left))) {
		stress_fail(st, "consumer: after a partial advance readable gave ring %u pos "
			    "%" PRIu64 " (%d), expected ring %u pos %" PRIu64 " (%u left)", id,
			    s.pos, k, st->open_id, st->open_pos, st->open_left);
		return STRESS_BROKEN;
	}
	if (s.nseg == 2)
		st->cs.wraps++;
	if (xs_below(&st->rng_c, 8) == 0) {
		/* not advanced: the same span again */
		rmpsc_span t;
		uint32_t id2 = UINT32_MAX;
		int k2 = rmpsc_mpsc_readable(st->ch, n, &t, &id2);

		st->cs.repeats++;
		if (k2 < k || id2 != id || t.pos != s.pos ||
		    t.iov[0].iov_base != s.iov[0].iov_base) {
			stress_fail(st, "consumer: readable again gave %d from ring %u pos %"
				    PRIu64 ", first %d from ring %u pos %" PRIu64, k2, id2,
				    t.pos, k, id, s.pos);
			return STRESS_BROKEN;
		}
		/* the span outstanding now is the one this call returned */
		s = t;
		k = k2;
	}
	a = (uint32_t)k;
	if (k > 1 && xs_below(&st->rng_c, 4) == 0) {
		a = 1 + xs_below(&st->rng_c, (uint32_t)k - 1);
		st->cs.partial_adv++;
	}
	for (uint32_t i = 0; i < a; i++)
		if (!cons_check(st, span_get_u64(&s, i), id))
			return STRESS_BROKEN;
	rc = rmpsc_mpsc_advance(st->ch, a);
	if (rc) {
		stress_fail(st, "consumer: advance(%u) of a %d-element span returned %d", a, k,
			    rc);
		return STRESS_BROKEN;
	}
	if (a < (uint32_t)k) {
		st->open_id = id;
		st->open_pos = s.pos + a;
		st->open_left = (uint32_t)k - a;
	} else {
		st->open_left = 0;
	}
	return a;
}

/* Give back every outstanding borrow (before waiting, or when stuck). */
static bool cons_commit_all(struct stress *st)
{
	uint64_t held = 0;
	int64_t k;

	if (!st->nbor)
		return true;
	for (uint32_t i = 0; i < st->nbor; i++)
		held += st->bor_count[i];
	set_where(&st->cons, W_BORROW);
	k = rmpsc_mpsc_borrow_commit_all(st->ch);
	st->cs.commit_alls++;
	/* at least what is held; more if earlier commits waited for these */
	if (k < (int64_t)held) {
		stress_fail(st, "consumer: borrow_commit_all with %u borrows of %" PRIu64
			    " elements out returned %" PRId64, st->nbor, held, k);
		return false;
	}
	st->nbor = 0;
	return true;
}

/* Commit one outstanding borrow, chosen at random (out of order). */
static bool cons_commit_one(struct stress *st)
{
	uint32_t i = xs_below(&st->rng_c, st->nbor);
	int rc = rmpsc_mpsc_borrow_commit(st->ch, st->bor_token[i]);

	if (rc) {
		stress_fail(st, "consumer: borrow_commit(%#" PRIx64 ") returned %d (%s)",
			    st->bor_token[i], rc, errname(rc));
		return false;
	}
	if (i != 0)
		st->cs.ooo_commits++;
	/* a second commit of the same token is refused */
	if (xs_below(&st->rng_c, 16) == 0 &&
	    (rc = rmpsc_mpsc_borrow_commit(st->ch, st->bor_token[i])) != -EINVAL) {
		stress_fail(st, "consumer: a token committed twice gave %d", rc);
		return false;
	}
	st->nbor--;
	st->bor_token[i] = st->bor_token[st->nbor];
	st->bor_count[i] = st->bor_count[st->nbor];
	return true;
}

/* borrow (up to four outstanding, committed in any order) or borrow_fn */
static int64_t cons_borrow(struct stress *st)
{
	const uint32_t n = pick_n(&st->rng_c, 8, batch_max(st));
	uint32_t id = UINT32_MAX;
	rmpsc_borrow b;
	int k;

	set_where(&st->cons, W_BORROW);
	if (st->nbor == 4 && !cons_commit_one(st))
		return STRESS_BROKEN;
	if (xs_below(&st->rng_c, 6) == 0) {
		st->cs.borrow_fns++;
		k = rmpsc_mpsc_borrow_fn(st->ch, n, cons_fn, st);
		if (k > (int)n) {
			stress_fail(st, "consumer: borrow_fn(%u) = %d", n, k);
			return STRESS_BROKEN;
		}
	} else {
		st->cs.borrows++;
		k = rmpsc_mpsc_borrow(st->ch, n, &b, &id);
		if (k > 0) {
			if (b.count != (uint32_t)k || (uint32_t)k > n || id >= st->max_producers ||
			    !b.data) {
				stress_fail(st, "consumer: borrow(%u) = %d, count %u, id %u", n, k,
					    b.count, id);
				return STRESS_BROKEN;
			}
			for (uint32_t i = 0; i < (uint32_t)k; i++) {
				uint64_t v;

				memcpy(&v, (const unsigned char *)b.data + (size_t)i * 8, 8);
				if (!cons_check(st, v, id))
					return STRESS_BROKEN;
			}
			st->cs.borrowed += (uint64_t)k;
			st->bor_token[st->nbor] = b.token;
			st->bor_count[st->nbor] = (uint32_t)k;
			st->nbor++;
		}
	}
	if (k <= 0 && k != -EAGAIN && k != -EPIPE) {
		stress_fail(st, "consumer: borrow returned %d (%s)", k, errname(k));
		return STRESS_BROKEN;
	}
	if (k == -EPIPE && st->nbor) {
		stress_fail(st, "consumer: borrow returned -EPIPE with %u borrows out", st->nbor);
		return STRESS_BROKEN;
	}
	if (st->nbor && xs_below(&st->rng_c, 2) == 0 && !cons_commit_one(st))
		return STRESS_BROKEN;
	if (xs_below(&st->rng_c, 8) == 0 && !cons_commit_all(st))
		return STRESS_BROKEN;
	return k;
}

/* One consumer call, chosen pseudo-randomly; the elements it took, 0 /
 * -EAGAIN / -ETIMEDOUT for none, -EPIPE, or STRESS_BROKEN. */
static int64_t cons_step(struct stress *st)
{
	uint32_t op = xs_below(&st->rng_c, 20), n = pick_n(&st->rng_c, 8, batch_max(st)), id;
	int64_t k;

	if (st->open_left)
		return cons_readable(st, op & 1);
	if (st->timed_only)
		op = op < 14 ? 16 : (op < 17 ? 17 : 19);
	if (st->use_borrow && xs_below(&st->rng_c, 5) == 0)
		return cons_borrow(st);
	/* nothing borrowed while waiting: the rings held would be left alone */
	if (op >= 14 && !cons_commit_all(st))
		return STRESS_BROKEN;
	switch (op) {
	case 0:
	case 1:
	case 2:
		set_where(&st->cons, W_CONSUME);
		st->cs.consume_all++;
		k = rmpsc_mpsc_consume_all(st->ch, cons_fn, st);
		break;
	case 3:
	case 4:
		set_where(&st->cons, W_CONSUME_UP_TO);
		st->cs.up_to++;
		k = rmpsc_mpsc_consume_up_to(st->ch, n, cons_fn, st);
		if (k > (int64_t)n) {
			stress_fail(st, "consumer: consume_up_to(%u) = %" PRId64, n, k);
			return STRESS_BROKEN;
		}
		break;
	case 5:
	case 6:
		set_where(&st->cons, W_POP);
		st->cs.pop1++;
		id = UINT32_MAX;
		k = rmpsc_mpsc_pop(st->ch, st->buf, &id);
		if (k == 0) {
			if (!cons_check(st, st->buf[0], id))
				return STRESS_BROKEN;
			k = 1;
		}
		break;
	case 7:
	case 8:
	case 9:
		set_where(&st->cons, W_POP_N);
		st->cs.pop_n++;
		k = rmpsc_mpsc_pop_n(st->ch, st->buf, n);
		goto popped;
	case 10:
	case 11:
	case 12:
	case 13:
		return cons_readable(st, false);
	case 14:
	case 15:
	case 16:
		set_where(&st->cons, W_CONSUME_TIMED);
		st->cs.timed++;
		k = rmpsc_mpsc_consume_all_timed(st->ch, cons_fn, st, cons_timeout(st), NULL);
		if (k == 0) {
			stress_fail(st, "consumer: consume_all_timed returned 0");
			return STRESS_BROKEN;
		}
		break;
	case 17:
	case 18:
		set_where(&st->cons, W_POP_N_TIMED);
		st->cs.timed++;
		k = rmpsc_mpsc_pop_n_timed(st->ch, st->buf, n, cons_timeout(st), NULL);
popped:
		if (k > (int64_t)n || k == 0) {
			stress_fail(st, "consumer: pop_n(%u) = %" PRId64, n, k);
			return STRESS_BROKEN;
		}
		for (int64_t i = 0; i < k; i++)
			if (!cons_check(st, st->buf[i], UINT32_MAX))
				return STRESS_BROKEN;
		break;
	default:
		return cons_readable(st, true);
	}
	return k;
}

/* Closed, drained: every call says so, every time, and nothing arrives. */
static void cons_check_finished(struct stress *st)
{
	uint32_t id;
	rmpsc_span s;
	int64_t rc[12];

	set_where(&st->cons, W_FINISH);
	rc[0] = rmpsc_mpsc_consume_all(st->ch, cons_fn, st);
	rc[1] = rmpsc_mpsc_consume_up_to(st->ch, 4, cons_fn, st);
	rc[2] = rmpsc_mpsc_consume_count(st->ch, 4);
	rc[3] = rmpsc_mpsc_consume_all_timed(st->ch, cons_fn, st, -1, NULL);
	rc[4] = rmpsc_mpsc_consume_all_timed(st->ch, cons_fn, st, 0, NULL);
	rc[5] = rmpsc_mpsc_pop(st->ch, st->buf, &id);
	rc[6] = rmpsc_mpsc_pop_n(st->ch, st->buf, 4);
	rc[7] = rmpsc_mpsc_pop_n_timed(st->ch, st->buf, 4, -1, NULL);
	rc[8] = rmpsc_mpsc_readable(st->ch, 4, &s, &id);
	rc[9] = rmpsc_mpsc_readable_timed(st->ch, 4, &s, &id, -1, NULL);
	rc[10] = rmpsc_mpsc_drain_all(st->ch, cons_fn, st) == 0 ? -EPIPE : -1;
	rc[11] = rmpsc_mpsc_is_drained(st->ch) == 1 && rmpsc_mpsc_len(st->ch) == 0 &&
			 rmpsc_mpsc_is_closed(st->ch) == 1
		 ? -EPIPE
		 : -1;
	for (int i = 0; i < 12; i++) {
		if (rc[i] != -EPIPE) {
			stress_fail(st, "consumer: check %d on a closed, drained channel gave "
				    "%" PRId64 " (%s)", i, rc[i], errname((int)rc[i]));
			return;
		}
	}
}

static void *cons_main(void *arg)
{
	struct stress *st = arg;

	while (!stopped(st)) {
		int64_t k = cons_step(st);

		if (k > 0) {
			add_progress(&st->cons, (uint64_t)k);
			continue;
		}
		if (k == 0 || k == -EAGAIN || k == -ETIMEDOUT) {
			st->cs.empty++;
			/* what is left may be behind our own borrows */
			if (!cons_commit_all(st))
				break;
			set_where(&st->cons, W_IDLE);
			sched_yield();
			continue;
		}
		if (k == -EPIPE) {
			if (st->nbor) {
				stress_fail(st, "consumer: -EPIPE with %u borrows out", st->nbor);
				break;
			}
			if (!closing(st)) {
				stress_fail(st, "consumer: -EPIPE from %s before the channel was "
					    "closed (is_closed %d, len %" PRId64 ")",
					    where_names[atomic_load_explicit(&st->cons.where,
									     memory_order_relaxed)],
					    rmpsc_mpsc_is_closed(st->ch), rmpsc_mpsc_len(st->ch));
				break;
			}
			st->epipe = true;
			cons_check_finished(st);
			break;
		}
		if (k != STRESS_BROKEN)
			stress_fail(st, "consumer: a call returned %" PRId64 " (%s)", k,
				    errname((int)k));
		break;
	}
	set_where(&st->cons, W_DONE);
	atomic_store_explicit(&st->cons.done, 1, memory_order_release);
	return NULL;
}

/* ---- observer (case 2) --------------------------------------------------- */

static void *obs_main(void *arg)
{
	struct stress *st = arg;
	const uint64_t cap = st->cap;
	uint64_t rng = st->seed ^ 0x6f6273ull, samples = 0;

	while (!stopped(st) && !atomic_load_explicit(&st->obs.done, memory_order_acquire)) {
		rmpsc_mpsc_snapshot ss;
		int64_t len = rmpsc_mpsc_len(st->ch), rl;
		int hot = rmpsc_mpsc_hottest(st->ch), cl = rmpsc_mpsc_is_closed(st->ch);
		int dr = rmpsc_mpsc_is_drained(st->ch);
		uint32_t id;

		if (rmpsc_mpsc_stats(st->ch, &ss, sizeof ss) != 0 || ss.rings > st->max_producers ||
		    ss.producers > ss.rings || ss.pending > (uint64_t)ss.rings * cap ||
		    ss.pending_max > cap || ss.pending_max > ss.pending || len < 0 ||
		    len > (int64_t)st->max_producers * (int64_t)cap ||
		    (hot != -EAGAIN && (hot < 0 || hot >= (int)st->max_producers)) ||
		    (cl != 0 && cl != 1) || (dr != 0 && dr != 1)) {
			stress_fail(st, "observer: len %" PRId64 " hottest %d closed %d drained %d;"
				    " stats rings %u producers %u pending %" PRIu64 " max %" PRIu64,
				    len, hot, cl, dr, ss.rings, ss.producers, ss.pending,
				    ss.pending_max);
			break;
		}
		id = xs_below(&rng, st->max_producers + 2);
		rl = rmpsc_mpsc_ring_len(st->ch, id);
		if (rl != -ENOENT && (rl < 0 || rl > (int64_t)cap || id >= st->max_producers)) {
			stress_fail(st, "observer: ring_len(%u) = %" PRId64, id, rl);
			break;
		}
		samples++;
		add_progress(&st->obs, 1);
		if ((samples & 15) == 0)
			sched_yield();
	}
	st->observer_samples = samples;
	return NULL;
}

/* ---- setup, watchdog, results -------------------------------------------- */

static struct stress *stress_new(uint32_t cap, uint32_t producers, uint32_t max,
				 uint32_t flags, uint32_t max_tags, uint64_t seed)
{
	struct stress *st = calloc(1, sizeof *st);
	rmpsc_mpsc_config cfg;

	assert_non_null(st);
	atomic_init(&st->failed, 0);
	atomic_init(&st->stop, false);
	atomic_init(&st->closing, false);
	atomic_init(&st->next_tag, 1);
	st->cap = cap;
	st->max_producers = max;
	st->max_tags = max_tags;
	st->seed = seed;
	st->rng_c = seed ^ 0x636f6e73ull;
	st->tags = calloc(max_tags, sizeof *st->tags);
	st->ring_tag = calloc(max, sizeof *st->ring_tag);
	st->buf = calloc(BUF_MAX, sizeof *st->buf);
	assert_non_null(st->tags);
	assert_non_null(st->ring_tag);
	assert_non_null(st->buf);
	for (uint32_t i = 0; i < max_tags; i++) {
		atomic_init(&st->tags[i].id, -1);
		atomic_init(&st->tags[i].sent, 0);
		atomic_init(&st->tags[i].recv, 0);
		atomic_init(&st->tags[i].done, 0);
	}
	assert_int_equal(rmpsc_mpsc_config_init(&cfg, sizeof cfg), 0);
	cfg.ring_capacity = cap;
	cfg.producers = producers;
	cfg.max_producers = max;
	cfg.flags = flags;
	assert_int_equal(rmpsc_mpsc_create(&cfg, &st->ch), 0);
	return st;
}

static void stress_free(struct stress *st)
{
	rmpsc_mpsc_destroy(st->ch);
	free(st->tags);
	free(st->ring_tag);
	free(st->buf);
	free(st);
}

static uint64_t progress_sum(struct stress *st)
{
	/* Not the observer's: it runs whether the others move or not. */
	uint64_t sum = ld64(&st->cons.progress);

	for (uint32_t i = 0; i < st->nprod; i++)
		sum += ld64(&st->prod[i].progress);
	return sum;
}

static void describe(struct stress *st, char *buf, size_t len)
{
	size_t o = 0;

	o += (size_t)snprintf(buf + o, len - o, "consumer %" PRIu64 " items (in %s)",
			      ld64(&st->cons.progress),
			      where_names[atomic_load_explicit(&st->cons.where,
							       memory_order_relaxed)]);
	for (uint32_t i = 0; i < st->nprod && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "; producer %u %" PRIu64 " (in %s)", i,
				      ld64(&st->prod[i].progress),
				      where_names[atomic_load_explicit(&st->prod[i].where,
								       memory_order_relaxed)]);
	if (o < len)
		snprintf(buf + o, len - o, "; channel len %" PRId64 ", closed %d",
			 rmpsc_mpsc_len(st->ch), rmpsc_mpsc_is_closed(st->ch));
}

/*
 * Wait until every slot in @slots is done, watching progress. No progress
 * for WATCHDOG_SEC: record the failure and close the channel (which frees
 * every waiter); still none after as long again: false, and the threads
 * are left running (their memory is leaked, since they may still touch it).
 */
/* What watch() watches. */
struct stress_watch {
	struct stress *st;
	struct slot *const *slots;
	uint32_t nslots;
	const char *name;
};

static bool slots_all_done(void *arg)
{
	const struct stress_watch *sw = arg;
	uint32_t done = 0;

	for (uint32_t i = 0; i < sw->nslots; i++)
		done += atomic_load_explicit(&sw->slots[i]->done,
					     memory_order_acquire) != 0;
	return done == sw->nslots;
}

static uint64_t watch_progress(void *arg)
{
	return progress_sum(((const struct stress_watch *)arg)->st);
}

static void watch_stall(void *arg, bool first)
{
	const struct stress_watch *sw = arg;
	char msg[600];

	describe(sw->st, msg, sizeof msg);
	fprintf(stderr, "%s: no progress for %d s: %s\n", sw->name,
		first ? WATCHDOG_SEC : 2 * WATCHDOG_SEC, msg);
	if (first)
		stress_fail(sw->st, "no progress for %d s (lost wake-up or deadlock): %s",
			    WATCHDOG_SEC, msg);
}

static bool watch(struct stress *st, struct slot *const *slots, uint32_t nslots,
		  const char *name)
{
	struct stress_watch sw = { st, slots, nslots, name };
	const struct watchdog w = { slots_all_done, watch_progress, watch_stall, &sw,
				    WATCHDOG_SEC, 10 * MS };

	return watchdog_run(&w);
}

static void join(pthread_t t)
{
	assert_int_equal(pthread_join(t, NULL), 0);
}

/* Ends the test with the first failure a thread recorded. */
static void stress_check(struct stress *st, const char *name)
{
	char msg[sizeof st->msg];

	if (!atomic_load_explicit(&st->failed, memory_order_acquire))
		return;
	memcpy(msg, st->msg, sizeof msg);
	stress_free(st);
	fail_msg("%s: %s", name, msg);
}

/* Every registration's reported sends arrived, no more. */
static void check_tags(struct stress *st, uint64_t ntags, uint64_t *total)
{
	*total = 0;
	for (uint64_t tag = 1; tag < ntags && !st->failed; tag++) {
		struct tagrec *t = &st->tags[tag];

		if (ld64(&t->recv) != ld64(&t->sent))
			stress_fail(st, "tag %" PRIu64 " (ring %d): %" PRIu64 " sent, %" PRIu64
				    " received", tag, atomic_load_explicit(&t->id,
									   memory_order_relaxed),
				    ld64(&t->sent), ld64(&t->recv));
		*total += ld64(&t->sent);
	}
}

static void print_stats(struct stress *st, double dt)
{
	struct prod_stats p = { 0 };
	const struct cons_stats *c = &st->cs;

	for (uint32_t i = 0; i < st->nprod; i++) {
		p.push1 += st->ps[i].push1;
		p.push_n += st->ps[i].push_n;
		p.reserves += st->ps[i].reserves;
		p.wraps += st->ps[i].wraps;
		p.partial_commits += st->ps[i].partial_commits;
		p.abandoned += st->ps[i].abandoned;
		p.timed += st->ps[i].timed;
		p.eagain += st->ps[i].eagain;
		p.timeouts += st->ps[i].timeouts;
		p.registrations += st->ps[i].registrations;
		p.enospc += st->ps[i].enospc;
	}
	print_message("  %.2f s [%s], %" PRIu64 " elements received\n", dt, STRESS_BUILD,
		      st->received);
	print_message("  producers: push %" PRIu64 ", push_n %" PRIu64 ", reserve %" PRIu64
		      " (%" PRIu64 " wrapped, %" PRIu64 " partial commits, %" PRIu64
		      " abandoned), timed %" PRIu64 ", -EAGAIN %" PRIu64 ", -ETIMEDOUT %"
		      PRIu64 ", registrations %" PRIu64 " (-ENOSPC %" PRIu64 ")\n",
		      p.push1, p.push_n, p.reserves, p.wraps, p.partial_commits, p.abandoned,
		      p.timed, p.eagain, p.timeouts, p.registrations, p.enospc);
	print_message("  consumer: consume_all %" PRIu64 ", up_to %" PRIu64 ", pop %" PRIu64
		      ", pop_n %" PRIu64 ", readable %" PRIu64 " (%" PRIu64 " wrapped, %"
		      PRIu64 " repeated, %" PRIu64 " partial advances), timed %" PRIu64
		      ", empty %" PRIu64 ", handler segments %" PRIu64 ", borrows %" PRIu64
		      " (%" PRIu64 " elements, %" PRIu64 " borrow_fn, %" PRIu64
		      " out-of-order commits, %" PRIu64 " commit_all)\n",
		      c->consume_all, c->up_to, c->pop1, c->pop_n, c->readables, c->wraps,
		      c->repeats, c->partial_adv, c->timed, c->empty, c->handler_segs,
		      c->borrows, c->borrowed, c->borrow_fns, c->ooo_commits, c->commit_alls);
}

/* ---- (1) eight producers, mixed calls ------------------------------------ */

static void run_mixed_producers(const char *name, uint32_t cap, uint32_t nprod, uint64_t per)
{
	struct stress *st = stress_new(cap, nprod, nprod, RMPSC_MPSC_F_METRICS, nprod + 1,
				       stress_seed());
	struct prod_arg args[8];
	struct slot *slots[8];
	pthread_t cons, prod[8];
	rmpsc_mpsc_snapshot ss;
	uint64_t total;
	int64_t t0 = now_ns();

	st->nprod = nprod;
	st->per_prod = per;
	assert_int_equal(pthread_create(&cons, NULL, cons_main, st), 0);
	for (uint32_t i = 0; i < nprod; i++) {
		args[i] = (struct prod_arg){ .st = st, .idx = i };
		slots[i] = &st->prod[i];
		assert_int_equal(pthread_create(&prod[i], NULL, prod_fixed_main, &args[i]), 0);
	}
	if (!watch(st, slots, nprod, name))
		fail_msg("%s: threads stuck, not joined", name);
	/* every producer is done: close; the consumer takes the rest, then -EPIPE */
	atomic_store_explicit(&st->closing, true, memory_order_release);
	assert_int_equal(rmpsc_mpsc_close(st->ch), 0);
	slots[0] = &st->cons;
	if (!watch(st, slots, 1, name))
		fail_msg("%s: consumer stuck, not joined", name);
	for (uint32_t i = 0; i < nprod; i++)
		join(prod[i]);
	join(cons);
	check_tags(st, nprod + 1, &total);
	if (!st->failed && (total != per * nprod || st->received != total))
		stress_fail(st, "sent %" PRIu64 ", received %" PRIu64 ", expected %" PRIu64,
			    total, st->received, per * nprod);
	assert_int_equal(rmpsc_mpsc_stats(st->ch, &ss, sizeof ss), 0);
	if (!st->failed && (ss.sent != total || ss.received != total || ss.pending != 0 ||
			    ss.producers != nprod || ss.rings != nprod || ss.closed != 1))
		stress_fail(st, "stats: sent %" PRIu64 " received %" PRIu64 " pending %" PRIu64
			    " producers %u rings %u closed %u (expected %" PRIu64 ")",
			    ss.sent, ss.received, ss.pending, ss.producers, ss.rings, ss.closed,
			    total);
	print_stats(st, (double)(now_ns() - t0) * 1e-9);
	stress_check(st, name);
	stress_free(st);
}

static void test_mpsc_stress_eight_producers_mixed_calls_preserve_fifo(void **state)
{
	(void)state;
	run_mixed_producers(__func__, 64, 8, STRESS_SCALE(1000000ull, 500000ull, 250000ull));
}

/* Rings large enough for rmpsc_mpsc_pop's batched release (channel.h). */
static void test_mpsc_stress_batched_release_rings_preserve_fifo(void **state)
{
	(void)state;
	run_mixed_producers(__func__, 1024, 4, STRESS_SCALE(1000000ull, 400000ull, 200000ull));
}

/* ---- (2) registration churn ---------------------------------------------- */

static void test_mpsc_stress_register_deregister_during_traffic_loses_nothing(void **state)
{
	const uint32_t nprod = 6;
	const uint32_t regs = STRESS_SCALE(20000u, 8000u, 5000u);
	struct stress *st = stress_new(64, 2, 8, RMPSC_MPSC_F_METRICS, nprod * regs + 1,
				       stress_seed() ^ 0x636875726eull);
	struct prod_arg args[6];
	struct slot *slots[6];
	pthread_t cons, obs, prod[6];
	rmpsc_mpsc_snapshot ss;
	uint64_t total, ntags;
	int64_t t0 = now_ns();

	(void)state;
	st->nprod = nprod;
	st->regs_per_prod = regs;
	st->churn_check = true;
	st->use_borrow = true;
	assert_int_equal(pthread_create(&cons, NULL, cons_main, st), 0);
	assert_int_equal(pthread_create(&obs, NULL, obs_main, st), 0);
	for (uint32_t i = 0; i < nprod; i++) {
		args[i] = (struct prod_arg){ .st = st, .idx = i };
		slots[i] = &st->prod[i];
		assert_int_equal(pthread_create(&prod[i], NULL, prod_churn_main, &args[i]), 0);
	}
	if (!watch(st, slots, nprod, __func__))
		fail_msg("%s: threads stuck, not joined", __func__);
	atomic_store_explicit(&st->closing, true, memory_order_release);
	assert_int_equal(rmpsc_mpsc_close(st->ch), 0);
	slots[0] = &st->cons;
	if (!watch(st, slots, 1, __func__))
		fail_msg("%s: consumer stuck, not joined", __func__);
	atomic_store_explicit(&st->obs.done, 1, memory_order_release);
	for (uint32_t i = 0; i < nprod; i++)
		join(prod[i]);
	join(cons);
	join(obs);
	ntags = ld64(&st->next_tag);
	if (!st->failed && ntags != (uint64_t)nprod * regs + 1)
		stress_fail(st, "%" PRIu64 " registrations, expected %u", ntags - 1,
			    nprod * regs);
	check_tags(st, ntags, &total);
	if (!st->failed && st->received != total)
		stress_fail(st, "sent %" PRIu64 ", received %" PRIu64, total, st->received);
	assert_int_equal(rmpsc_mpsc_stats(st->ch, &ss, sizeof ss), 0);
	/* received is not compared: borrowed elements are consumed too, and the
	 * unit test pins how metrics count them */
	if (!st->failed && (ss.sent != total || ss.received > total || ss.producers != 0 ||
			    ss.rings > 8 || ss.pending != 0))
		stress_fail(st, "stats: sent %" PRIu64 " received %" PRIu64 " producers %u rings"
			    " %u pending %" PRIu64 " (expected %" PRIu64 ")", ss.sent,
			    ss.received, ss.producers, ss.rings, ss.pending, total);
	print_stats(st, (double)(now_ns() - t0) * 1e-9);
	print_message("  %" PRIu64 " registrations over %u rings, observer %" PRIu64
		      " samples\n", ntags - 1, ss.rings, st->observer_samples);
	stress_check(st, __func__);
	stress_free(st);
}

/* ---- (3) close from a third thread --------------------------------------- */

static void test_mpsc_stress_close_during_traffic_delivers_every_success(void **state)
{
	const uint32_t rounds = STRESS_SCALE(1500u, 600u, 400u);
	const uint32_t nfixed = 3;
	uint64_t rng = stress_seed() ^ 0x636c6f7365ull;
	uint64_t received = 0, epipe_rounds = 0, closed_asleep = 0;
	int64_t t0 = now_ns();
	struct prod_stats ps_sum = { 0 };
	struct cons_stats cs_sum = { 0 };

	(void)state;
	for (uint32_t round = 0; round < rounds; round++) {
		/* fixed producers (tags 1..3), then the churn thread's tags */
		struct stress *st = stress_new(16, 4, 8, 0, 1u << 16, xs_next(&rng));
		struct prod_arg args[4];
		struct slot *slots[5];
		pthread_t cons, prod[4];
		const uint64_t close_after = xs_below(&rng, 400);
		uint64_t total, ntags;
		int64_t t;

		st->nprod = nfixed + 1;
		st->timed_only = (round / 3) % 3 != 2; /* else the mixed consumer */
		st->paced = round % 3;
		st->until_close = true;
		st->churn_check = true;
		st->use_borrow = round % 5 != 0;
		atomic_store_explicit(&st->next_tag, nfixed + 1, memory_order_relaxed);
		for (uint32_t i = 0; i < nfixed; i++) {
			rmpsc_producer *p = NULL;
			int id = rmpsc_mpsc_register(st->ch, &p);

			assert_true(id >= 0);
			atomic_store_explicit(&st->tags[i + 1].id, id, memory_order_relaxed);
			args[i] = (struct prod_arg){ .st = st, .idx = i, .p = p, .tag = i + 1 };
		}
		args[nfixed] = (struct prod_arg){ .st = st, .idx = nfixed };
		assert_int_equal(pthread_create(&cons, NULL, cons_main, st), 0);
		for (uint32_t i = 0; i < nfixed; i++)
			assert_int_equal(pthread_create(&prod[i], NULL, prod_until_close_main,
							&args[i]), 0);
		assert_int_equal(pthread_create(&prod[nfixed], NULL, prod_churn_main,
						&args[nfixed]), 0);
		/* close once the consumer took close_after elements (or 20 ms) */
		t = now_ns();
		while (ld64(&st->cons.progress) < close_after && now_ns() - t < 20 * MS &&
		       !stopped(st))
			sched_yield();
		if (xs_below(&rng, 2))
			sleep_ns((int64_t)xs_below(&rng, 200) * US);
		atomic_store_explicit(&st->closing, true, memory_order_release);
		/* a hint only: the consumer was in a blocking call just now */
		closed_asleep += atomic_load_explicit(&st->cons.where, memory_order_relaxed) ==
				 W_CONSUME_TIMED;
		assert_int_equal(rmpsc_mpsc_close(st->ch), 0);
		assert_int_equal(rmpsc_mpsc_close(st->ch), 0);
		for (uint32_t i = 0; i <= nfixed; i++)
			slots[i] = &st->prod[i];
		slots[nfixed + 1] = &st->cons;
		if (!watch(st, slots, nfixed + 2, __func__))
			fail_msg("%s: round %u: threads stuck, not joined", __func__, round);
		for (uint32_t i = 0; i <= nfixed; i++)
			join(prod[i]);
		join(cons);
		/* the consumer's -EPIPE came after every success, and is final:
		 * nothing arrives now that every producer is gone */
		if (!st->failed && !st->epipe)
			stress_fail(st, "round %u: the consumer ended without -EPIPE", round);
		if (!st->failed) {
			uint64_t before = st->received;

			cons_check_finished(st);
			if (!st->failed && st->received != before)
				stress_fail(st, "round %u: %" PRIu64 " elements after -EPIPE", round,
					    st->received - before);
		}
		ntags = ld64(&st->next_tag);
		check_tags(st, ntags < st->max_tags ? ntags : st->max_tags, &total);
		if (!st->failed && st->received != total)
			stress_fail(st, "round %u: sent %" PRIu64 ", received %" PRIu64, round,
				    total, st->received);
		received += st->received;
		epipe_rounds += st->epipe;
		for (uint32_t i = 0; i <= nfixed; i++) {
			ps_sum.push1 += st->ps[i].push1;
			ps_sum.timed += st->ps[i].timed;
			ps_sum.registrations += st->ps[i].registrations;
		}
		cs_sum.timed += st->cs.timed;
		cs_sum.empty += st->cs.empty;
		if (st->failed) {
			char name[128];

			snprintf(name, sizeof name, "%s (round %u)", __func__, round);
			stress_check(st, name);
		}
		stress_free(st);
	}
	print_message("  %.2f s [%s], %u rounds, %" PRIu64 " elements, %" PRIu64
		      " timed consumer calls, %" PRIu64 " empty, %" PRIu64
		      " churn registrations, %" PRIu64 " closes while the consumer was in"
		      " consume_all_timed\n", (double)(now_ns() - t0) * 1e-9, STRESS_BUILD,
		      rounds, received, cs_sum.timed, cs_sum.empty, ps_sum.registrations,
		      closed_asleep);
	assert_int_equal(epipe_rounds, rounds);
}

/* A channel with no ring made up front: every ring comes from a register. */
static rmpsc_mpsc *chan_new_empty(uint32_t cap, uint32_t max)
{
	rmpsc_mpsc_config cfg;
	rmpsc_mpsc *ch = NULL;

	assert_int_equal(rmpsc_mpsc_config_init(&cfg, sizeof cfg), 0);
	cfg.ring_capacity = cap;
	cfg.producers = 0;
	cfg.max_producers = max;
	assert_int_equal(rmpsc_mpsc_create(&cfg, &ch), 0);
	return ch;
}

/* (4): a producer that registers, pushes and closes while the consumer polls. */
struct late_arg {
	rmpsc_mpsc *ch;
	uint64_t value;
	int reg_ret;
	int push_ret;
};

static void *late_producer_main(void *arg)
{
	struct late_arg *a = arg;
	rmpsc_producer *p = NULL;

	a->reg_ret = rmpsc_mpsc_register(a->ch, &p);
	a->push_ret = a->reg_ret < 0 ? a->reg_ret : rmpsc_producer_push(p, &a->value);
	assert_int_equal(rmpsc_mpsc_close(a->ch), 0);
	return NULL;
}

static void test_mpsc_stress_late_register_push_close_arrives_before_epipe(void **state)
{
	const uint32_t rounds = STRESS_SCALE(10000u, 3000u, 1000u);
	uint64_t rng = stress_seed() ^ 0x6c617465ull, polls = 0;
	int64_t t0 = now_ns();

	(void)state;
	for (uint32_t round = 0; round < rounds; round++) {
		rmpsc_mpsc *ch = chan_new_empty(16, 4);
		rmpsc_producer *p0 = NULL;
		struct late_arg a;
		pthread_t t;
		uint64_t got[4];
		uint32_t taken = 0, kind = xs_below(&rng, 3), id;
		int k;

		assert_true(rmpsc_mpsc_register(ch, &p0) == 0);
		if (xs_below(&rng, 4) == 0)
			assert_int_equal(rmpsc_mpsc_deregister(p0), 0);
		a = (struct late_arg){ .ch = ch, .value = 0x1a7e000000ull + round };
		assert_int_equal(pthread_create(&t, NULL, late_producer_main, &a), 0);
		for (;;) {
			rmpsc_span s;

			polls++;
			if (kind == 0) {
				k = rmpsc_mpsc_pop_n(ch, got, 4);
			} else if (kind == 1) {
				k = rmpsc_mpsc_pop(ch, got, &id);
				k = k == 0 ? 1 : k;
			} else {
				k = rmpsc_mpsc_readable(ch, 4, &s, &id);
				if (k > 0) {
					memcpy(got, s.iov[0].iov_base, 8);
					assert_int_equal(rmpsc_mpsc_advance(ch, (uint32_t)k), 0);
				}
			}
			if (k == -EPIPE)
				break;
			if (k == -EAGAIN)
				continue;
			assert_int_equal(k, 1);
			assert_int_equal(got[0], a.value);
			taken++;
		}
		join(t);
		/* ring 1, or ring 0 again once its deregistered producer's ring
		 * was retired */
		assert_true(a.reg_ret == 0 || a.reg_ret == 1);
		assert_int_equal(a.push_ret, 0);
		if (taken != 1)
			fail_msg("round %u (call %u): %u elements before -EPIPE, expected the one"
				 " pushed", round, kind, taken);
		assert_int_equal(rmpsc_mpsc_pop_n(ch, got, 4), -EPIPE);
		rmpsc_mpsc_destroy(ch);
	}
	print_message("  %.2f s [%s], %u rounds, %" PRIu64 " consumer polls\n",
		      (double)(now_ns() - t0) * 1e-9, STRESS_BUILD, rounds, polls);
}

/* (5): status bounds while rings are handed from producer to producer. */
enum { ST_RINGS = 8, ST_PRODUCERS = 4 };

struct status_run {
	rmpsc_mpsc *ch;
	uint32_t regs;           /* registrations per producer thread */
	_Atomic uint64_t pushed;
	_Atomic uint32_t done;   /* producers finished (observer stops after) */
	_Atomic int64_t worst;   /* the largest figure a status call gave */
	_Atomic uint64_t samples;
};

static void *status_prod_main(void *arg)
{
	struct status_run *sr = arg;

	for (uint32_t i = 0; i < sr->regs; i++) {
		rmpsc_producer *p = NULL;
		uint64_t v = i;
		int id;

		while ((id = rmpsc_mpsc_register(sr->ch, &p)) == -ENOSPC)
			sched_yield(); /* every ring still holds its element */
		assert_true(id >= 0 && id < ST_RINGS);
		assert_int_equal(rmpsc_producer_push(p, &v), 0);
		atomic_fetch_add_explicit(&sr->pushed, 1, memory_order_relaxed);
		assert_int_equal(rmpsc_mpsc_deregister(p), 0);
	}
	atomic_fetch_add_explicit(&sr->done, 1, memory_order_release);
	return NULL;
}

static void status_note(struct status_run *sr, int64_t v)
{
	int64_t w = atomic_load_explicit(&sr->worst, memory_order_relaxed);

	while (v > w && !atomic_compare_exchange_weak_explicit(&sr->worst, &w, v,
							       memory_order_relaxed,
							       memory_order_relaxed))
		;
}

static void *status_obs_main(void *arg)
{
	struct status_run *sr = arg;
	uint64_t rng = stress_seed() ^ 0x737461747573ull;

	while (atomic_load_explicit(&sr->done, memory_order_acquire) < ST_PRODUCERS) {
		rmpsc_mpsc_snapshot ss;
		int64_t len = rmpsc_mpsc_len(sr->ch);
		int64_t rl = rmpsc_mpsc_ring_len(sr->ch, xs_below(&rng, ST_RINGS));

		/* each ring holds at most one element: len is at most the ring
		 * count, a ring's figure at most 1 */
		status_note(sr, len > ST_RINGS ? len : 0);
		status_note(sr, rl > 1 ? rl : 0);
		assert_int_equal(rmpsc_mpsc_stats(sr->ch, &ss, sizeof ss), 0);
		status_note(sr, ss.pending > ST_RINGS ? (int64_t)ss.pending : 0);
		status_note(sr, ss.pending_max > 1 ? (int64_t)ss.pending_max : 0);
		atomic_fetch_add_explicit(&sr->samples, 1, memory_order_relaxed);
	}
	return NULL;
}

static void test_mpsc_stress_status_during_ring_reuse_never_exceeds_contents(void **state)
{
	const uint32_t regs = STRESS_SCALE(20000u, 5000u, 2000u);
	struct status_run sr = { .regs = regs, .ch = chan_new_empty(1024, ST_RINGS) };
	pthread_t prod[ST_PRODUCERS], obs;
	uint64_t got = 0, v;
	int64_t t0 = now_ns();
	int k;

	(void)state;
	atomic_init(&sr.worst, 0);
	for (uint32_t i = 0; i < ST_PRODUCERS; i++)
		assert_int_equal(pthread_create(&prod[i], NULL, status_prod_main, &sr), 0);
	assert_int_equal(pthread_create(&obs, NULL, status_obs_main, &sr), 0);
	/* the consumer: this thread, until every registration's element came */
	while (got < (uint64_t)ST_PRODUCERS * regs) {
		k = rmpsc_mpsc_pop(sr.ch, &v, NULL);
		if (k == 0)
			got++;
		else if (k == -EAGAIN)
			sched_yield();
		else
			fail_msg("pop returned %d after %" PRIu64 " elements", k, got);
	}
	for (uint32_t i = 0; i < ST_PRODUCERS; i++)
		join(prod[i]);
	join(obs);
	assert_int_equal(rmpsc_mpsc_close(sr.ch), 0);
	assert_int_equal(rmpsc_mpsc_pop(sr.ch, &v, NULL), -EPIPE);
	assert_int_equal(rmpsc_mpsc_is_drained(sr.ch), 1);
	print_message("  %.2f s [%s], %" PRIu64 " registrations, %" PRIu64
		      " status samples\n", (double)(now_ns() - t0) * 1e-9, STRESS_BUILD,
		      atomic_load_explicit(&sr.pushed, memory_order_relaxed),
		      atomic_load_explicit(&sr.samples, memory_order_relaxed));
	if (atomic_load_explicit(&sr.worst, memory_order_relaxed) != 0)
		fail_msg("a status call reported %" PRId64 " elements where at most %d"
			 " (a ring: 1) were ever in the channel",
			 atomic_load_explicit(&sr.worst, memory_order_relaxed), ST_RINGS);
	rmpsc_mpsc_destroy(sr.ch);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mpsc_stress_eight_producers_mixed_calls_preserve_fifo),
		cmocka_unit_test(test_mpsc_stress_batched_release_rings_preserve_fifo),
		cmocka_unit_test(test_mpsc_stress_register_deregister_during_traffic_loses_nothing),
		cmocka_unit_test(test_mpsc_stress_close_during_traffic_delivers_every_success),
		cmocka_unit_test(test_mpsc_stress_late_register_push_close_arrives_before_epipe),
		cmocka_unit_test(test_mpsc_stress_status_during_ring_reuse_never_exceeds_contents),
	};

	print_message("stress_mpsc [%s], seed %#" PRIx64 "\n", STRESS_BUILD, stress_seed());
	return cmocka_run_group_tests(tests, NULL, NULL);
}
