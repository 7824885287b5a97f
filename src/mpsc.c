/* SPDX-License-Identifier: MIT */
/*
 * rmpsc_mpsc: one SPSC ring (ring_core.h) per producer and one consumer
 * that visits them. A producer handle is its ring: struct rmpsc_producer
 * is the ring core followed by the slots, in one mapping, so every
 * producer call is the ring's own code behind a different magic word.
 *
 * Synchronization
 * ---------------
 * The rings, their states (C1), the directory (C2) and closed (C3): see
 *         ringset.h. The consumer stops skipping once it sees closed and
 *         reports -EPIPE once every ring is FREE.
 * cons_waiters, cons_seq  every ring's cwait/cseq point here: the E4/E5
 *         words of ring_core.h, shared, so a sleeping consumer is woken by
 *         any producer's publication or any ring's close.
 * Consumer-private (one consumer thread): cursor, skip[], rd_*.
 * Metrics: producer counters live in each ring (ring_core.h); consumer
 *         counters here, written by the consumer, read relaxed by stats.
 */
#include <pthread.h>
#include <stdlib.h>

#include "ringmpsc/channel.h"
#include "ringmpsc/ring.h"

#include "ring_core.h"
#include "ringset.h"
#include "wait_core.h"

enum {
	MPSC_SKIP_MAX_LEVEL = 6, /* 2^6 = 64 rounds between looks */
	MPSC_DEFAULT_CAP = 1024,
	MPSC_DEFAULT_PRODUCERS = 4,
	MPSC_DEFAULT_MAX = 256,
};

/* Adaptive skip state of one ring (consumer-private). */
struct mpsc_skip {
	uint8_t level; /* consecutive empty looks, capped */
	uint8_t left;  /* rounds still to skip */
};

struct rmpsc_mpsc {
	/* Read-mostly. */
	uint32_t magic;
	struct mpsc_skip *skip;      /* [rs.max], consumer-private */
	rmpsc_wait wait;             /* consumer's default strategy */
	struct rmpsc__ringset rs;    /* the producer rings (ringset.h, C1-C3) */

	/* Consumer-private. */
	alignas(RMPSC__GROUP) uint32_t cursor; /* first ring of the next round */
	int32_t rd_ring;                       /* ring of an outstanding readable span */
	uint32_t rd_count;                     /* its elements */
	uint32_t pop_run;                      /* rmpsc_mpsc_pop: pops left on pop_ring */
	uint32_t pop_ring;                     /* the ring rmpsc_mpsc_pop stays on */
	uint32_t last;                         /* ring of a round's last take */
	uint32_t in_handler;                   /* a handler runs: refuse re-entry */
	_Atomic uint64_t m_received, m_batches, m_wait_ns;
	_Atomic uint64_t m_bmin, m_bmax, m_btotal, m_polls;

	/* Read by every producer after each publication: written only when
	 * the consumer goes to sleep (E4). */
	alignas(RMPSC__GROUP) _Atomic uint32_t cons_waiters;
	/* Bumped by every wake (E5): away from everything hot. */
	alignas(RMPSC__GROUP) _Atomic uint32_t cons_seq;
};

/* Whether a metrics flag is set. RMPSC_NO_METRICS (a benchmark build only,
 * bench/CMakeLists.txt) compiles every metrics test and counter out, the
 * baseline of the "zero cost when off" A/B. */
#ifdef RMPSC_NO_METRICS
#define METRICS_ON(flag_test) ((void)(flag_test), 0)
#else
#define METRICS_ON(flag_test) RMPSC__UNLIKELY(flag_test)
#endif

#define MPSC_CHECK(ch) RMPSC__CHECK(!RMPSC__HANDLE_IS(ch, RMPSC__MAGIC_MPSC), -EBADF)
/* A consumer call: the handle, then no re-entry from a handler the channel
 * is running (handler_enter()). */
#define MPSC_CONS_CHECK(ch)                                                    \
	do {                                                                   \
		MPSC_CHECK(ch);                                                \
		RMPSC__CHECK((ch)->in_handler, -EBUSY);                        \
	} while (0)

static uint64_t relaxed(const _Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

/* Single-writer counter: a load and a store, no read-modify-write. */
static void bump(_Atomic uint64_t *c, uint64_t v)
{
	atomic_store_explicit(c, relaxed(c) + v, memory_order_relaxed);
}

/* ---- create / destroy ---------------------------------------------------- */

int rmpsc_mpsc_config_init(rmpsc_mpsc_config *cfg, uint32_t size)
{
	rmpsc_mpsc_config d = {
		.size = size,
		.flags = 0,
		.elem_size = 8,
		.ring_capacity = MPSC_DEFAULT_CAP,
		.producers = MPSC_DEFAULT_PRODUCERS,
		.max_producers = MPSC_DEFAULT_MAX,
		.numa_node = RMPSC_NODE_ANY,
		._pad0 = 0,
	};

	return rmpsc__size_out(cfg, size, &d, sizeof d, RMPSC_MPSC_CONFIG_SIZE_V1);
}

RMPSC__COLD void rmpsc_mpsc_destroy(rmpsc_mpsc *ch)
{
	if (!RMPSC__HANDLE_IS(ch, RMPSC__MAGIC_MPSC))
		return;
	ch->magic = RMPSC__MAGIC_DEAD;
	rmpsc__ringset_fini(&ch->rs);
	free(ch->skip);
	free(ch);
}

RMPSC__COLD int rmpsc_mpsc_create(const rmpsc_mpsc_config *ucfg, rmpsc_mpsc **out)
{
	rmpsc_mpsc_config cfg;
	rmpsc_mpsc *ch;
	int err;

	RMPSC__CHECK(!out, -EINVAL);
	*out = NULL;
	rmpsc_mpsc_config_init(&cfg, sizeof cfg);
	err = rmpsc__config_copy(&cfg, sizeof cfg, ucfg, RMPSC_MPSC_CONFIG_SIZE_V1);
	if (err)
		return err;
	RMPSC__CHECK(cfg._pad0, -EINVAL);
	err = rmpsc__ringset_check(cfg.flags, RMPSC_MPSC_F_ALL, cfg.elem_size, cfg.ring_capacity,
				   cfg.producers, cfg.max_producers, cfg.numa_node);
	if (err)
		return err;
	ch = aligned_alloc(RMPSC__GROUP, sizeof *ch);
	RMPSC__CHECK(!ch, -ENOMEM);
	memset(ch, 0, sizeof *ch);
	ch->skip = calloc(cfg.max_producers, sizeof *ch->skip);
	atomic_init(&ch->cons_waiters, 0);
	atomic_init(&ch->cons_seq, 0);
	if (!ch->skip ||
	    rmpsc__ringset_init(&ch->rs, cfg.elem_size, cfg.ring_capacity, cfg.flags,
				cfg.producers, cfg.max_producers, cfg.numa_node, false,
				&ch->cons_waiters, &ch->cons_seq)) {
		free(ch->skip);
		free(ch);
		return -ENOMEM;
	}
	rmpsc__wait_default(&ch->wait);
	atomic_init(&ch->m_bmin, UINT64_MAX);
	ch->rd_ring = -1;
	ch->magic = RMPSC__MAGIC_MPSC;
	*out = ch;
	return 0;
}

/* ---- registration -------------------------------------------------------- */

int rmpsc_mpsc_register(rmpsc_mpsc *ch, rmpsc_producer **out)
{
	RMPSC__CHECK(!out, -EINVAL);
	*out = NULL;
	MPSC_CHECK(ch);
	return rmpsc__ringset_register(&ch->rs, out);
}

int rmpsc_producer_id(const rmpsc_producer *p)
{
	PROD_CHECK(p);
	return (int)p->core.id;
}

/* ---- producer calls ------------------------------------------------------ */

/* Metrics after a producer call: published @n elements in one batch, or
 * found no room. One flag test when metrics are off. */
static RMPSC__ALWAYS_INLINE int prod_done(rmpsc__rcore *rc, int ret, uint64_t n)
{
	if (METRICS_ON(rc->flags & RC_F_METRICS)) {
		if (ret == -EAGAIN || ret == -ETIMEDOUT) {
			bump(&rc->sh->m_full, 1);
		} else if (ret >= 0 && n) {
			bump(&rc->sh->m_sent, n);
			bump(&rc->sh->m_batches, 1);
		}
	}
	return ret;
}

int rmpsc_producer_reserve(rmpsc_producer *p, uint32_t n, rmpsc_span *out)
{
	PROD_CHECK(p);
	RMPSC__CHECK(!out, -EINVAL);
	return prod_done(&p->core, rc_reserve(&p->core, n, false, out), 0);
}

/*
 * The metrics-on side of the hot producer calls, out of line: with metrics
 * off, commit, push and push_n are the ring's own calls behind one flag
 * test (a load from the handle's first line), so they keep the ring's fast
 * paths, frame-free for push; counting after the call inline would give
 * every call a stack frame to keep the handle across it.
 */
static __attribute__((noinline)) int commit_metrics(rmpsc__rcore *rc, uint32_t n)
{
	return prod_done(rc, rc_commit(rc, n), n);
}

static __attribute__((noinline)) int push_metrics(rmpsc__rcore *rc, const void *item)
{
	return prod_done(rc, rc_push1_fast(rc, item), 1);
}

static __attribute__((noinline)) int push_n_metrics(rmpsc__rcore *rc, const void *items, uint32_t n)
{
	int k = rc_push_n(rc, items, n, false);

	return prod_done(rc, k, k > 0 ? (uint64_t)k : 0);
}

int rmpsc_producer_commit(rmpsc_producer *p, uint32_t n)
{
	PROD_CHECK(p);
	if (METRICS_ON(p->core.flags & RC_F_METRICS))
		return commit_metrics(&p->core, n);
	return rc_commit(&p->core, n);
}

int rmpsc_producer_push(rmpsc_producer *p, const void *item)
{
	PROD_CHECK(p);
	RMPSC__CHECK(!item, -EINVAL);
	if (METRICS_ON(p->core.flags & RC_F_METRICS))
		return push_metrics(&p->core, item);
	return rc_push1_fast(&p->core, item);
}

int rmpsc_producer_push_n(rmpsc_producer *p, const void *items, uint32_t n)
{
	PROD_CHECK(p);
	RMPSC__CHECK(!items && n, -EINVAL);
	if (METRICS_ON(p->core.flags & RC_F_METRICS))
		return push_n_metrics(&p->core, items, n);
	return rc_push_n(&p->core, items, n, false);
}

int rmpsc_producer_reserve_timed(rmpsc_producer *p, uint32_t n, rmpsc_span *out,
				 int64_t timeout_ns, const rmpsc_wait *w)
{
	PROD_CHECK(p);
	return prod_done(&p->core, rmpsc__rc_reserve_timed(&p->core, n, out, timeout_ns, w), 0);
}

int rmpsc_producer_push_timed(rmpsc_producer *p, const void *item, int64_t timeout_ns,
			      const rmpsc_wait *w)
{
	PROD_CHECK(p);
	return prod_done(&p->core, rmpsc__rc_push_timed(&p->core, item, timeout_ns, w), 1);
}

int rmpsc_producer_push_n_timed(rmpsc_producer *p, const void *items, uint32_t n,
				int64_t timeout_ns, const rmpsc_wait *w)
{
	int k;

	PROD_CHECK(p);
	k = rmpsc__rc_push_n_timed(&p->core, items, n, timeout_ns, w);
	return prod_done(&p->core, k, k > 0 ? (uint64_t)k : 0);
}

int64_t rmpsc_producer_len(const rmpsc_producer *p)
{
	PROD_CHECK(p);
	return (int64_t)rc_len(&p->core);
}

/* ---- consumer ------------------------------------------------------------ */

enum round_mode { R_FN, R_COUNT, R_POP, R_READABLE, R_BORROW };

struct round {
	enum round_mode mode;
	bool skip;         /* apply adaptive skip */
	bool exact;        /* nothing found: look at skipped rings too */
	uint64_t max;      /* elements at most */
	rmpsc_mpsc_fn fn;  /* R_FN */
	void *ctx;
	unsigned char *dst; /* R_POP */
	rmpsc_span *span;  /* R_READABLE */
	rmpsc_borrow *borrow; /* R_BORROW */
	uint32_t *id;      /* R_READABLE, R_BORROW */
};

/*
 * Around a handler's calls (deliver(), borrow_fn): every consumer call
 * refuses re-entry (MPSC_CONS_CHECK; a call from the handler would read or
 * release the elements being handed out), and an empty pop run keeps
 * rmpsc_mpsc_pop()'s fast path out, to pop_slow()'s check. The run is put
 * back after: nothing can have changed it meanwhile.
 */
static uint32_t handler_enter(rmpsc_mpsc *ch)
{
	uint32_t run = ch->pop_run;

	ch->in_handler = 1;
	ch->pop_run = 0;
	return run;
}

static void handler_exit(rmpsc_mpsc *ch, uint32_t run)
{
	ch->pop_run = run;
	ch->in_handler = 0;
}

/* Hand one ring's span to the handler, then release it: the count, or the
 * ring's -EAGAIN / -EPIPE. */
static int deliver(rmpsc_mpsc *ch, rmpsc__rcore *rc, const struct round *rd, uint32_t lim)
{
	uint64_t t0 = 0;
	rmpsc_span s;
	uint32_t run;
	int k = rc_readable(rc, lim, &s);

	if (k <= 0)
		return k;
	if (METRICS_ON(rc->flags & RC_F_METRICS))
		t0 = rmpsc__now_ns();
	run = handler_enter(ch);
	rd->fn(rd->ctx, rc->id, s.iov[0].iov_base, s.count[0]);
	if (s.nseg > 1)
		rd->fn(rd->ctx, rc->id, s.iov[1].iov_base, s.count[1]);
	handler_exit(ch, run);
	/* Holds: the handler could not consume from the channel. */
	(void)rc_advance(rc, (uint32_t)k);
	if (METRICS_ON(rc->flags & RC_F_METRICS)) {
		uint64_t dt = rmpsc__now_ns() - t0;

		if (dt < relaxed(&ch->m_bmin))
			atomic_store_explicit(&ch->m_bmin, dt, memory_order_relaxed);
		if (dt > relaxed(&ch->m_bmax))
			atomic_store_explicit(&ch->m_bmax, dt, memory_order_relaxed);
		bump(&ch->m_btotal, dt);
	}
	return k;
}

/*
 * One round over the rings from the cursor. Returns elements taken, 0 when
 * there was nothing, -EPIPE when the channel is closed and every ring has
 * been drained (and freed).
 */
static int64_t mpsc_round(rmpsc_mpsc *ch, const struct round *rd)
{
	bool closed, use_skip;
	uint32_t n, start, live, batches = 0, skipped, k;
	uint64_t done = 0;

	/* C3 acquire before the ring count (C2): a close seen here was made
	 * under the lock after every registration it refused to follow, so
	 * the count read next includes each ring registered before the close
	 * and the -EPIPE below covers all of them. (The other order could
	 * miss a ring registered, pushed into and closed between the loads.) */
	closed = atomic_load_explicit(&ch->rs.closed, memory_order_acquire);
	RMPSC__TEST_POINT(RMPSC__TP_MPSC_ROUND, ch);
	n = rmpsc__ringset_count(&ch->rs);
	use_skip = rd->skip && !closed && !(ch->rs.flags & RMPSC_MPSC_F_NOSKIP);
	start = ch->cursor < n ? ch->cursor : 0;

	/* Any other consumer call drops an outstanding readable span: its
	 * elements were not released and are delivered again. */
	if (rd->mode != R_READABLE)
		ch->rd_ring = -1;

again:
	live = 0;
	skipped = 0;
	for (k = 0; k < n && done < rd->max; k++) {
		uint32_t i = start + k < n ? start + k : start + k - n;
		struct mpsc_skip *sk = &ch->skip[i];
		rmpsc__rcore *rc = &ch->rs.dir[i]->core;
		uint64_t want = rd->max - done;
		uint32_t lim = want > INT32_MAX ? INT32_MAX : (uint32_t)want;
		int got;

		if (rmpsc__ring_free(rc)) {
			sk->level = sk->left = 0;
			continue;
		}
		live++;
		if (use_skip && sk->left) {
			sk->left--;
			skipped++;
			continue;
		}
		switch (rd->mode) {
		case R_FN:
			got = deliver(ch, rc, rd, lim);
			break;
		case R_COUNT:
			got = rc_pop_n(rc, NULL, lim, false, true);
			break;
		case R_POP:
			got = rc_pop_n(rc, rd->dst + (size_t)done * ch->rs.esz, lim, false, true);
			break;
		case R_BORROW:
			got = rmpsc__rc_borrow(rc, lim, rd->borrow);
			if (got > 0 && rd->id)
				*rd->id = rc->id;
			break;
		case R_READABLE:
		default:
			got = rc_readable(rc, lim, rd->span);
			if (got > 0) {
				ch->rd_ring = (int32_t)i;
				ch->rd_count = (uint32_t)got;
				if (rd->id)
					*rd->id = rc->id;
			}
			break;
		}
		if (got > 0) {
			done += (uint64_t)got;
			batches++;
			ch->last = i;
			sk->level = sk->left = 0;
			if (rd->mode == R_READABLE || rd->mode == R_BORROW) {
				k++;
				break;
			}
		} else if (got == -EAGAIN) {
			sk->left = (uint8_t)((1u << sk->level) - 1);
			if (sk->level < MPSC_SKIP_MAX_LEVEL)
				sk->level++;
		} else if (got == -ENOMEM) {
			return got;
		} else if (got == -EPIPE) {
			/* Closed and drained: free it for a later producer. */
			live--;
			rmpsc__ring_retire(rc);
			/* rmpsc_mpsc_pop's fast path relies on it: a run is
			 * never on a retired ring. */
			if (i == ch->pop_ring)
				ch->pop_run = 0;
		}
	}
	if (METRICS_ON(ch->rs.flags & RMPSC_MPSC_F_METRICS))
		bump(&ch->m_polls, live - skipped);
	/* The pull calls promise that -EAGAIN means empty: when the rings
	 * looked at had nothing, look at the skipped ones as well. */
	if (!done && skipped && rd->exact) {
		use_skip = false;
		goto again;
	}
	/* The next round starts one ring further, or after the ring a bounded
	 * round stopped in: no ring is starved by a busy one before it. */
	if (n)
		ch->cursor = (done >= rd->max && k) ? (start + k) % n : (start + 1) % n;
	if (done) {
		if (METRICS_ON(ch->rs.flags & RMPSC_MPSC_F_METRICS) && rd->mode != R_READABLE) {
			bump(&ch->m_received, done);
			bump(&ch->m_batches, batches);
		}
		return (int64_t)done;
	}
	return closed && live == 0 ? -EPIPE : 0;
}

static int64_t consume(rmpsc_mpsc *ch, struct round *rd)
{
	MPSC_CONS_CHECK(ch);
	RMPSC__CHECK(rd->mode == R_FN && !rd->fn, -EINVAL);
	return mpsc_round(ch, rd);
}

int64_t rmpsc_mpsc_consume_all(rmpsc_mpsc *ch, rmpsc_mpsc_fn fn, void *ctx)
{
	struct round rd = { .mode = R_FN, .skip = true, .max = UINT64_MAX, .fn = fn, .ctx = ctx };

	return consume(ch, &rd);
}

int64_t rmpsc_mpsc_consume_up_to(rmpsc_mpsc *ch, uint64_t max, rmpsc_mpsc_fn fn, void *ctx)
{
	struct round rd = { .mode = R_FN, .skip = true, .max = max, .fn = fn, .ctx = ctx };

	if (max == 0) {
		MPSC_CONS_CHECK(ch);
		RMPSC__CHECK(!fn, -EINVAL);
		return 0;
	}
	return consume(ch, &rd);
}

int64_t rmpsc_mpsc_consume_count(rmpsc_mpsc *ch, uint64_t max)
{
	struct round rd = { .mode = R_COUNT, .skip = true, .max = max };

	if (max == 0) {
		MPSC_CONS_CHECK(ch);
		return 0;
	}
	return consume(ch, &rd);
}

int rmpsc_mpsc_reset_skip(rmpsc_mpsc *ch)
{
	MPSC_CONS_CHECK(ch);
	memset(ch->skip, 0, (size_t)ch->rs.max * sizeof *ch->skip);
	return 0;
}

int rmpsc_mpsc_pop_n(rmpsc_mpsc *ch, void *items, uint32_t n)
{
	struct round rd = {
		.mode = R_POP, .skip = true, .exact = true, .max = rmpsc__int_count(n), .dst = items,
	};
	int64_t k;

	MPSC_CONS_CHECK(ch);
	RMPSC__CHECK(!items && n, -EINVAL);
	if (n == 0)
		return 0;
	k = mpsc_round(ch, &rd);
	return k == 0 ? -EAGAIN : (int)k;
}

enum { MPSC_POP_RUN = 64 }; /* pops from one ring before the next one's turn */

static RMPSC__ALWAYS_INLINE void pop_metrics(rmpsc_mpsc *ch)
{
	bump(&ch->m_received, 1);
	bump(&ch->m_batches, 1);
	bump(&ch->m_polls, 1);
}

/* A pop from the run's ring succeeded. */
static RMPSC__ALWAYS_INLINE int pop_hit(rmpsc_mpsc *ch, const rmpsc__rcore *rc,
					uint32_t *producer_id)
{
	ch->pop_run--;
	ch->rd_ring = -1;
	if (producer_id)
		*producer_id = rc->id;
	if (METRICS_ON(ch->rs.flags & RMPSC_MPSC_F_METRICS))
		pop_metrics(ch);
	return 0;
}

/* rmpsc_mpsc_pop past what the consumer already knows is there: the run's
 * ring through rmpsc_ring_pop's path (it loads tail; batched release), then
 * a round. */
static __attribute__((noinline)) int pop_slow(rmpsc_mpsc *ch, void *item, uint32_t *producer_id)
{
	struct round rd = { .mode = R_POP, .skip = true, .exact = true, .max = 1, .dst = item };
	uint32_t run = ch->pop_run;
	int64_t k;

	/* A handler's re-entry arrives here: handler_enter() empties the run. */
	RMPSC__CHECK(ch->in_handler, -EBUSY);
	if (run) {
		rmpsc__rcore *rc = &ch->rs.dir[ch->pop_ring]->core;

		if (rc_pop1_fast(rc, item) == 0)
			return pop_hit(ch, rc, producer_id);
		ch->pop_run = 0;
	}
	/* The run ended (64 pops, or the ring ran dry): the others' turn. */
	ch->cursor = ch->pop_ring + 1;
	k = mpsc_round(ch, &rd);
	if (k <= 0) {
		/* Every ring was empty: the run goes on where it was (a consumer
		 * on its producer's heels finds the ring dry between most items,
		 * and the ring it stays on is still the likeliest to fill),
		 * unless the round retired that ring. */
		if (run && !rmpsc__ring_free(&ch->rs.dir[ch->pop_ring]->core))
			ch->pop_run = run;
		return k == 0 ? -EAGAIN : (int)k;
	}
	ch->pop_ring = ch->last;
	ch->pop_run = MPSC_POP_RUN - 1;
	if (producer_id)
		*producer_id = ch->rs.dir[ch->pop_ring]->core.id;
	return 0;
}

/*
 * Stay on the ring that had data: its lines are in this core's cache and
 * its producer is likely still running. The fast path takes an 8-byte
 * element the consumer already saw published (head below cached_tail),
 * with no stack frame; everything else is pop_slow. A run is never on a
 * free ring (mpsc_round ends it when it retires that ring; a ring retired
 * and registered again meanwhile is a live ring, reset under C1).
 */
int rmpsc_mpsc_pop(rmpsc_mpsc *ch, void *item, uint32_t *producer_id)
{
	MPSC_CHECK(ch);
	RMPSC__CHECK(!item, -EINVAL);
	if (RMPSC__LIKELY(ch->pop_run)) {
		rmpsc__rcore *rc = &ch->rs.dir[ch->pop_ring]->core;
		uint64_t h = rc_head(rc);

		if (RMPSC__LIKELY(h != rc->cached_tail && rc->esz == 8)) {
			pop_hit(ch, rc, producer_id);
			/* The take last, so that its wake-up call is the only
			 * one left; batched as rmpsc_ring_pop's (ring.h). */
			rc_take8(rc, item, h, true);
			return 0;
		}
	}
	return pop_slow(ch, item, producer_id);
}

/* The span of the outstanding readable ring, again. */
static int readable_again(rmpsc_mpsc *ch, uint32_t n, rmpsc_span *out, uint32_t *id)
{
	rmpsc__rcore *rc = &ch->rs.dir[ch->rd_ring]->core;
	int k = rc_readable(rc, n, out);

	if (k > 0) {
		ch->rd_count = (uint32_t)k;
		if (id)
			*id = rc->id;
	}
	return k;
}

int rmpsc_mpsc_readable(rmpsc_mpsc *ch, uint32_t n, rmpsc_span *out, uint32_t *producer_id)
{
	struct round rd = {
		.mode = R_READABLE, .skip = true, .exact = true, .max = n, .span = out,
		.id = producer_id,
	};
	int64_t k;

	MPSC_CONS_CHECK(ch);
	RMPSC__CHECK(!out, -EINVAL);
	if (n == 0) {
		rc_span_empty(out, 0);
		return 0;
	}
	if (ch->rd_ring >= 0)
		return readable_again(ch, n, out, producer_id);
	k = mpsc_round(ch, &rd);
	return k == 0 ? -EAGAIN : (int)k;
}

int rmpsc_mpsc_advance(rmpsc_mpsc *ch, uint32_t n)
{
	rmpsc__rcore *rc;

	MPSC_CONS_CHECK(ch);
	if (n == 0)
		return 0;
	RMPSC__CHECK(ch->rd_ring < 0 || n > ch->rd_count, -EINVAL);
	rc = &ch->rs.dir[ch->rd_ring]->core;
	(void)rc_advance(rc, n);
	if (METRICS_ON(ch->rs.flags & RMPSC_MPSC_F_METRICS)) {
		bump(&ch->m_received, n);
		bump(&ch->m_batches, 1);
	}
	ch->rd_count -= n;
	if (ch->rd_count == 0) {
		ch->cursor = ((uint32_t)ch->rd_ring + 1) %
			     atomic_load_explicit(&ch->rs.nrings, memory_order_relaxed);
		ch->rd_ring = -1;
	}
	return 0;
}

/* ---- blocking consumer calls --------------------------------------------- */

struct mpsc_try {
	rmpsc_mpsc *ch;
	struct round rd;
	int64_t got;
};

/* Rounds with skip while spinning, then (sleep_fn) without: before it yields,
 * sleeps or times out, the consumer has looked at every ring (after
 * registering as a waiter, for a futex sleep). */
static int try_round(void *arg)
{
	struct mpsc_try *t = arg;

	t->got = mpsc_round(t->ch, &t->rd);
	return t->got == 0 ? -EAGAIN : (t->got < 0 ? (int)t->got : 0);
}

static int try_round_full(void *arg)
{
	struct mpsc_try *t = arg;
	bool skip = t->rd.skip;
	int r;

	t->rd.skip = false;
	r = try_round(t);
	t->rd.skip = skip;
	return r;
}

static int64_t mpsc_wait(rmpsc_mpsc *ch, struct mpsc_try *t, int64_t timeout_ns,
			 const rmpsc_wait *uw)
{
	struct rmpsc__waitsite ws = rmpsc__ringset_waitsite(&ch->rs);
	uint64_t t0 = 0;
	rmpsc_wait w;
	int r;

	ws.sleep_fn = try_round_full;
	r = rmpsc__wait_resolve(uw, &ch->wait, &w);
	if (r)
		return r;
	if (try_round(t) != -EAGAIN)
		return t->got;
	if (METRICS_ON(ch->rs.flags & RMPSC_MPSC_F_METRICS))
		t0 = rmpsc__now_ns();
	r = rmpsc__wait_run(&w, timeout_ns, &ws, try_round, t);
	/* The time ran out in the spin phase (or a timeout of 0 allowed one
	 * try): "nothing there" is said only after a look at every ring. */
	if (r == -ETIMEDOUT && (r = try_round_full(t)) == -EAGAIN)
		r = -ETIMEDOUT;
	if (METRICS_ON(ch->rs.flags & RMPSC_MPSC_F_METRICS))
		bump(&ch->m_wait_ns, rmpsc__now_ns() - t0);
	return r < 0 ? r : t->got;
}

int64_t rmpsc_mpsc_consume_all_timed(rmpsc_mpsc *ch, rmpsc_mpsc_fn fn, void *ctx,
				     int64_t timeout_ns, const rmpsc_wait *w)
{
	struct mpsc_try t = {
		.ch = ch,
		.rd = { .mode = R_FN, .skip = true, .max = UINT64_MAX, .fn = fn, .ctx = ctx },
	};

	MPSC_CONS_CHECK(ch);
	RMPSC__CHECK(!fn, -EINVAL);
	return mpsc_wait(ch, &t, timeout_ns, w);
}

int rmpsc_mpsc_pop_n_timed(rmpsc_mpsc *ch, void *items, uint32_t n, int64_t timeout_ns,
			   const rmpsc_wait *w)
{
	struct mpsc_try t = {
		.ch = ch,
		.rd = { .mode = R_POP, .skip = true, .exact = true, .max = rmpsc__int_count(n),
			.dst = items },
	};

	MPSC_CONS_CHECK(ch);
	RMPSC__CHECK(!items && n, -EINVAL);
	if (n == 0)
		return rmpsc__wait_resolve(w, &ch->wait, &(rmpsc_wait){ 0 });
	return (int)mpsc_wait(ch, &t, timeout_ns, w);
}

int rmpsc_mpsc_readable_timed(rmpsc_mpsc *ch, uint32_t n, rmpsc_span *out,
			      uint32_t *producer_id, int64_t timeout_ns, const rmpsc_wait *w)
{
	struct mpsc_try t = {
		.ch = ch,
		.rd = { .mode = R_READABLE, .skip = true, .exact = true, .max = n,
			.span = out, .id = producer_id },
	};

	MPSC_CONS_CHECK(ch);
	RMPSC__CHECK(!out, -EINVAL);
	if (n == 0 || ch->rd_ring >= 0) {
		int err = rmpsc__wait_resolve(w, &ch->wait, &(rmpsc_wait){ 0 });

		if (err)
			return err;
		return rmpsc_mpsc_readable(ch, n, out, producer_id);
	}
	return (int)mpsc_wait(ch, &t, timeout_ns, w);
}

int rmpsc_mpsc_set_wait(rmpsc_mpsc *ch, const rmpsc_wait *uw)
{
	rmpsc_wait w;
	int err;

	MPSC_CHECK(ch);
	if (!uw) {
		rmpsc__wait_default(&ch->wait);
		return 0;
	}
	err = rmpsc__wait_resolve(uw, &ch->wait, &w);
	if (err)
		return err;
	ch->wait = w;
	return 0;
}

/* ---- borrowed reads ------------------------------------------------------- */

/* A ring's token names the ring's id (ring_core.h, rc_token()): the
 * channel finds the ring by it, and the ring checks the rest. */
int rmpsc_mpsc_borrow(rmpsc_mpsc *ch, uint32_t n, rmpsc_borrow *out, uint32_t *producer_id)
{
	struct round rd = {
		.mode = R_BORROW, .skip = true, .exact = true, .max = n, .borrow = out,
		.id = producer_id,
	};
	int64_t k;

	MPSC_CONS_CHECK(ch);
	RMPSC__CHECK(!out, -EINVAL);
	if (n == 0) {
		memset(out, 0, sizeof *out);
		return 0;
	}
	k = mpsc_round(ch, &rd);
	return k == 0 ? -EAGAIN : (int)k;
}

int rmpsc_mpsc_borrow_commit(rmpsc_mpsc *ch, uint64_t token)
{
	uint32_t id = rc_token_id(token);
	rmpsc__rcore *rc;

	MPSC_CONS_CHECK(ch);
	RMPSC__CHECK(id >= rmpsc__ringset_count(&ch->rs), -EINVAL);
	rc = rmpsc__ringset_ring(&ch->rs, id);
	RMPSC__CHECK(rmpsc__ring_free(rc), -EINVAL);
	return rmpsc__rc_borrow_commit(rc, token);
}

int64_t rmpsc_mpsc_borrow_commit_all(rmpsc_mpsc *ch)
{
	int64_t total = 0;
	uint32_t n;

	MPSC_CONS_CHECK(ch);
	n = atomic_load_explicit(&ch->rs.nrings, memory_order_acquire);
	for (uint32_t i = 0; i < n; i++) {
		rmpsc__rcore *rc = &ch->rs.dir[i]->core;

		if (atomic_load_explicit(&rc->sh->state, memory_order_acquire) == RING_ACTIVE)
			total += rmpsc__rc_borrow_commit_all(rc);
	}
	return total;
}

int rmpsc_mpsc_borrow_fn(rmpsc_mpsc *ch, uint32_t n, rmpsc_mpsc_fn fn, void *ctx)
{
	rmpsc_borrow b;
	uint32_t id;
	int k;

	MPSC_CONS_CHECK(ch);
	RMPSC__CHECK(!fn, -EINVAL);
	k = rmpsc_mpsc_borrow(ch, n, &b, &id);
	if (k > 0) {
		uint32_t run = handler_enter(ch);
		int err;

		fn(ctx, id, b.data, b.count);
		handler_exit(ch, run);
		/* The handler could not touch the borrow: this commit holds. */
		err = rmpsc_mpsc_borrow_commit(ch, b.token);
		if (RMPSC__UNLIKELY(err))
			return err;
	}
	return k;
}

/* ---- close, drain, status ------------------------------------------------ */

int rmpsc_mpsc_close(rmpsc_mpsc *ch)
{
	MPSC_CHECK(ch);
	rmpsc__ringset_close(&ch->rs);
	return 0;
}

int64_t rmpsc_mpsc_drain_all(rmpsc_mpsc *ch, rmpsc_mpsc_fn fn, void *ctx)
{
	struct round rd = {
		.mode = fn ? R_FN : R_COUNT, .skip = false, .max = UINT64_MAX, .fn = fn, .ctx = ctx,
	};
	int64_t total = 0, k;

	MPSC_CONS_CHECK(ch);
	ch->rd_ring = -1; /* an outstanding span is delivered again below */
	while ((k = mpsc_round(ch, &rd)) > 0)
		total += k;
	return total;
}

int rmpsc_mpsc_is_closed(const rmpsc_mpsc *ch)
{
	MPSC_CHECK(ch);
	return atomic_load_explicit(&ch->rs.closed, memory_order_acquire) != 0;
}

int64_t rmpsc_mpsc_len(const rmpsc_mpsc *ch)
{
	MPSC_CHECK(ch);
	return rmpsc__ringset_len(&ch->rs);
}

int64_t rmpsc_mpsc_elem_size(const rmpsc_mpsc *ch)
{
	MPSC_CHECK(ch);
	return ch->rs.esz;
}

int rmpsc_mpsc_is_drained(const rmpsc_mpsc *ch)
{
	MPSC_CHECK(ch);
	return rmpsc__ringset_is_drained(&ch->rs);
}

int64_t rmpsc_mpsc_ring_len(const rmpsc_mpsc *ch, uint32_t id)
{
	MPSC_CHECK(ch);
	RMPSC__CHECK(id >= atomic_load_explicit(&ch->rs.nrings, memory_order_acquire), -ENOENT);
	return (int64_t)rc_len(&ch->rs.dir[id]->core);
}

int rmpsc_mpsc_hottest(const rmpsc_mpsc *ch)
{
	uint64_t best = 0;
	uint32_t n, id = 0;

	MPSC_CHECK(ch);
	n = atomic_load_explicit(&ch->rs.nrings, memory_order_acquire);
	for (uint32_t i = 0; i < n; i++) {
		uint64_t len = rc_len(&ch->rs.dir[i]->core);

		if (len > best) {
			best = len;
			id = i;
		}
	}
	return best ? (int)id : -EAGAIN;
}

int rmpsc_mpsc_stats(const rmpsc_mpsc *ch, rmpsc_mpsc_snapshot *ust, uint32_t size)
{
	rmpsc_mpsc_snapshot st;
	uint32_t n;

	MPSC_CHECK(ch);
	RMPSC__CHECK(!ust, -EINVAL);
	memset(&st, 0, sizeof st);
	n = atomic_load_explicit(&ch->rs.nrings, memory_order_acquire);
	st.producers = atomic_load_explicit(&ch->rs.nactive, memory_order_relaxed);
	st.rings = n;
	st.closed = atomic_load_explicit(&ch->rs.closed, memory_order_acquire) != 0;
	for (uint32_t i = 0; i < n; i++) {
		const rmpsc__rcore *rc = &ch->rs.dir[i]->core;
		uint64_t len = rc_len(rc);

		st.pending += len;
		if (len > st.pending_max)
			st.pending_max = len;
		st.sent += relaxed(&rc->sh->m_sent);
		st.batches_sent += relaxed(&rc->sh->m_batches);
		st.reserve_failures += relaxed(&rc->sh->m_full);
	}
	st.received = relaxed(&ch->m_received);
	st.batches_received = relaxed(&ch->m_batches);
	st.wait_ns = relaxed(&ch->m_wait_ns);
	st.batch_ns_min = relaxed(&ch->m_bmin);
	if (st.batch_ns_min == UINT64_MAX)
		st.batch_ns_min = 0;
	st.batch_ns_max = relaxed(&ch->m_bmax);
	st.batch_ns_total = relaxed(&ch->m_btotal);
	st.polls = relaxed(&ch->m_polls);
	return rmpsc__size_out(ust, size, &st, sizeof st, RMPSC_MPSC_STATS_SIZE_V1);
}
