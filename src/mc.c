/* SPDX-License-Identifier: MIT */
/*
 * rmpsc_spmc and rmpsc_mpmc: producer rings (ringset.h) whose consumers
 * claim runs with a CAS on the ring's claim index and complete them out of
 * order (ring_core.h, M1/M2). SPMC is the one-ring case with the producer
 * calls on the channel handle; the consumer code is one for both.
 *
 * Synchronization
 * ---------------
 * Rings, directory, closed: ringset.h (C1-C3). Claims and completions:
 *         ring_core.h (M1, M2). MPMC rings never become FREE: a
 *         deregistered producer's ring goes to a later registration once
 *         its completions reach the end of its stream (ringset.c,
 *         mc_ring_drained()).
 * held, claims[], gen  a consumer's zero-copy claims (rmpsc_consumer_claim):
 *         its own thread's, like every field of the handle.
 * consumers[], nconsumers  written under rs.lock by register/deregister;
 *         nconsumers is read relaxed by a registering consumer only (for
 *         its shard) and by destroy (exclusive).
 * cons_waiters, cons_seq  every ring's cwait/cseq point here (E4/E5): a
 *         consumer sleeping in a _timed call is woken by any publication.
 *         Every sleeping consumer is woken (FUTEX_WAKE of all).
 * A consumer handle's fields are its own thread's.
 */
#include <stdlib.h>

#include "ringmpsc/channel.h"
#include "ringmpsc/ring.h"

#include "ring_core.h"
#include "ringset.h"
#include "wait_core.h"

enum {
	MC_DEFAULT_CAP = 1024,
	MC_DEFAULT_PRODUCERS = 4,
	MC_DEFAULT_MAX = 256,
	MC_DEFAULT_CONSUMERS = 64,
	MC_F_ALL = RMPSC_MPSC_F_HUGEPAGE | RMPSC_MPSC_F_PREFAULT,
};

struct rmpsc__mc {
	struct rmpsc__ringset rs;
	struct rmpsc_consumer **consumers; /* [max_consumers], under rs.lock */
	uint32_t max_consumers;
	_Atomic uint32_t nconsumers;
	rmpsc_wait wait; /* the consumers' default strategy */
	alignas(RMPSC__GROUP) _Atomic uint32_t cons_waiters; /* E4 */
	alignas(RMPSC__GROUP) _Atomic uint32_t cons_seq;     /* E5 */
};

/* Both channel types: SPMC has one ring and holds its producer. */
struct mc_chan {
	uint32_t magic;
	struct rmpsc_producer *prod; /* SPMC: the one ring */
	struct rmpsc__mc mc;
};

struct rmpsc_spmc {
	struct mc_chan ch;
};

struct rmpsc_mpmc {
	struct mc_chan ch;
};

/* A zero-copy claim held by a consumer: the run and its token's generation. */
struct mc_claim {
	rmpsc__rcore *rc;
	uint64_t pos;
	uint32_t k;
	uint32_t gen;
};

/* Claim tokens: serial of the consumer | generation | index in claims[]. */
enum {
	CLAIM_SLOT_BITS = 6,
	CLAIM_GEN_BITS = 32,
	CLAIM_SERIAL_BITS = 64 - CLAIM_GEN_BITS - CLAIM_SLOT_BITS,
};
_Static_assert(RMPSC_CONSUMER_CLAIMS_MAX == 1 << CLAIM_SLOT_BITS,
	       "one bit of held per claim, one token field for its index");

struct rmpsc_consumer {
	uint32_t magic;
	uint32_t index;  /* slot in consumers[] */
	uint32_t nshard; /* consumers registered when this one registered */
	uint32_t cursor; /* next own-shard ring to try */
	uint64_t rng;    /* xorshift state for phase 3 */
	struct rmpsc__mc *mc;
	uint32_t serial; /* tags this consumer's claim tokens, never 0 */
	uint32_t gen;    /* generation of the last claim handed out */
	uint64_t held;   /* bit i: claims[i] outstanding */
	struct mc_claim claims[RMPSC_CONSUMER_CLAIMS_MAX];
	/* Taking ahead: a single-element steal that finds a backlog of at
	 * least 2 * ahead_max claims ahead_max elements with its one CAS,
	 * copies them all out, completes the run at once (the producer gets
	 * the slots back) and keeps the rest here, [ahead_i, ahead_n), ring
	 * position ahead_pos + i, producer ahead_id. Every take call hands
	 * these out first, so a consumer's elements stay in order. ahead_pins
	 * counts readers of the buffer (a handler running on it, a zero-copy
	 * claim of it): no refill while there is one. */
	uint32_t ahead_max; /* 0: never takes ahead (large elements) */
	uint32_t ahead_i, ahead_n;
	uint32_t ahead_id;
	uint32_t ahead_pins;
	uint64_t ahead_pos;
	rmpsc__rcore *ahead_rc; /* their ring (its mc_ahead counts them) */
	/* ahead_max elements, aligned as a ring's slots are */
	alignas(RMPSC__CACHELINE) unsigned char ahead[];
};

enum {
	AHEAD_MAX = 16,     /* elements a take-ahead claims at most */
	AHEAD_BYTES = 256,  /* and bytes: none for elements above 128 bytes */
};

/* 1..2^CLAIM_SERIAL_BITS - 1, process-wide: one consumer's tokens are never
 * another's (until that many consumers were registered). */
static uint32_t consumer_serial(void)
{
	static _Atomic uint64_t next;
	uint64_t s = atomic_fetch_add_explicit(&next, 1, memory_order_relaxed);

	return (uint32_t)(s % ((1u << CLAIM_SERIAL_BITS) - 1)) + 1;
}

#define SPMC_CHECK(c) RMPSC__CHECK(!RMPSC__HANDLE_IS(c, RMPSC__MAGIC_SPMC), -EBADF)
#define MPMC_CHECK(c) RMPSC__CHECK(!RMPSC__HANDLE_IS(c, RMPSC__MAGIC_MPMC), -EBADF)
#define CONS_CHECK(c) RMPSC__CHECK(!RMPSC__HANDLE_IS(c, RMPSC__MAGIC_CONSUMER), -EBADF)

/* ---- create / destroy ---------------------------------------------------- */

int rmpsc_mc_config_init(rmpsc_mc_config *cfg, uint32_t size, int spmc)
{
	rmpsc_mc_config d = {
		.size = size,
		.flags = 0,
		.elem_size = 8,
		.ring_capacity = MC_DEFAULT_CAP,
		.producers = spmc ? 1 : MC_DEFAULT_PRODUCERS,
		.max_producers = spmc ? 1 : MC_DEFAULT_MAX,
		.max_consumers = MC_DEFAULT_CONSUMERS,
		.numa_node = RMPSC_NODE_ANY,
	};

	return rmpsc__size_out(cfg, size, &d, sizeof d, RMPSC_MC_CONFIG_SIZE_V1);
}

static void mc_fini(struct rmpsc__mc *mc)
{
	for (uint32_t i = 0; i < mc->max_consumers; i++) {
		if (mc->consumers[i]) {
			mc->consumers[i]->magic = RMPSC__MAGIC_DEAD;
			free(mc->consumers[i]);
		}
	}
	free(mc->consumers);
	rmpsc__ringset_fini(&mc->rs);
}

static int mc_init(struct rmpsc__mc *mc, const rmpsc_mc_config *ucfg, bool spmc)
{
	rmpsc_mc_config cfg;
	int err;

	rmpsc_mc_config_init(&cfg, sizeof cfg, spmc);
	err = rmpsc__config_copy(&cfg, sizeof cfg, ucfg, RMPSC_MC_CONFIG_SIZE_V1);
	if (err)
		return err;
	RMPSC__CHECK(spmc && (cfg.producers != 1 || cfg.max_producers != 1), -EINVAL);
	RMPSC__CHECK(cfg.max_consumers == 0 || cfg.max_consumers > RMPSC_CONSUMERS_MAX, -EINVAL);
	err = rmpsc__ringset_check(cfg.flags, MC_F_ALL, cfg.elem_size, cfg.ring_capacity,
				   cfg.producers, cfg.max_producers, cfg.numa_node);
	if (err)
		return err;
	atomic_init(&mc->cons_waiters, 0);
	atomic_init(&mc->cons_seq, 0);
	atomic_init(&mc->nconsumers, 0);
	mc->max_consumers = cfg.max_consumers;
	rmpsc__wait_default(&mc->wait);
	mc->consumers = calloc(cfg.max_consumers, sizeof *mc->consumers);
	RMPSC__CHECK(!mc->consumers, -ENOMEM);
	if (rmpsc__ringset_init(&mc->rs, cfg.elem_size, cfg.ring_capacity, cfg.flags,
				cfg.producers, cfg.max_producers, cfg.numa_node, true,
				&mc->cons_waiters, &mc->cons_seq)) {
		free(mc->consumers);
		return -ENOMEM;
	}
	return 0;
}

static RMPSC__COLD int chan_create(const rmpsc_mc_config *cfg, bool spmc, struct mc_chan **out)
{
	struct mc_chan *ch;
	int err;

	RMPSC__CHECK(!out, -EINVAL);
	*out = NULL;
	RMPSC__CHECK(!cfg, -EINVAL);
	ch = aligned_alloc(RMPSC__GROUP, sizeof *ch);
	RMPSC__CHECK(!ch, -ENOMEM);
	memset(ch, 0, sizeof *ch);
	err = mc_init(&ch->mc, cfg, spmc);
	if (!err && spmc) {
		err = rmpsc__ringset_register(&ch->mc.rs, &ch->prod);
		if (err < 0)
			mc_fini(&ch->mc);
		else
			err = 0;
	}
	if (err) {
		free(ch);
		return err;
	}
	ch->magic = spmc ? RMPSC__MAGIC_SPMC : RMPSC__MAGIC_MPMC;
	*out = ch;
	return 0;
}

static RMPSC__COLD void chan_destroy(struct mc_chan *ch, uint32_t magic)
{
	if (!RMPSC__HANDLE_IS(ch, magic))
		return;
	ch->magic = RMPSC__MAGIC_DEAD;
	mc_fini(&ch->mc);
	free(ch);
}

int rmpsc_spmc_create(const rmpsc_mc_config *cfg, rmpsc_spmc **out)
{
	/* The handle is its first member. */
	return chan_create(cfg, true, (struct mc_chan **)(void *)out);
}

void rmpsc_spmc_destroy(rmpsc_spmc *ch)
{
	chan_destroy((struct mc_chan *)(void *)ch, RMPSC__MAGIC_SPMC);
}

int rmpsc_mpmc_create(const rmpsc_mc_config *cfg, rmpsc_mpmc **out)
{
	return chan_create(cfg, false, (struct mc_chan **)(void *)out);
}

void rmpsc_mpmc_destroy(rmpsc_mpmc *ch)
{
	chan_destroy((struct mc_chan *)(void *)ch, RMPSC__MAGIC_MPMC);
}

/* ---- registration -------------------------------------------------------- */

static int mc_register_consumer(struct rmpsc__mc *mc, rmpsc_consumer **out)
{
	rmpsc_consumer *c;
	int ret = -ENOSPC;
	uint32_t ahead = AHEAD_BYTES / mc->rs.esz;

	size_t bytes;

	ahead = ahead > AHEAD_MAX ? AHEAD_MAX : ahead < 2 ? 0 : ahead;
	bytes = sizeof *c + (size_t)ahead * mc->rs.esz;
	bytes = (bytes + RMPSC__CACHELINE - 1) & ~(size_t)(RMPSC__CACHELINE - 1);
	c = aligned_alloc(RMPSC__CACHELINE, bytes);
	RMPSC__CHECK(!c, -ENOMEM);
	memset(c, 0, bytes);
	c->ahead_max = ahead;
	pthread_mutex_lock(&mc->rs.lock);
	/* A closed channel still takes consumers while elements are left: a
	 * close loses nothing, even when every consumer had gone. */
	if (rmpsc__ringset_is_drained(&mc->rs)) {
		ret = -EPIPE;
	} else {
		for (uint32_t i = 0; i < mc->max_consumers; i++) {
			if (mc->consumers[i])
				continue;
			mc->consumers[i] = c;
			c->index = i;
			c->nshard = atomic_fetch_add_explicit(&mc->nconsumers, 1,
							      memory_order_relaxed) + 1;
			c->rng = 0x9e3779b97f4a7c15ull * (i + 1);
			c->mc = mc;
			c->serial = consumer_serial();
			c->magic = RMPSC__MAGIC_CONSUMER;
			ret = (int)i;
			break;
		}
	}
	pthread_mutex_unlock(&mc->rs.lock);
	if (ret < 0) {
		free(c);
		return ret;
	}
	*out = c;
	return ret;
}

int rmpsc_spmc_register_consumer(rmpsc_spmc *ch, rmpsc_consumer **out)
{
	RMPSC__CHECK(!out, -EINVAL);
	*out = NULL;
	SPMC_CHECK(ch);
	return mc_register_consumer(&ch->ch.mc, out);
}

int rmpsc_mpmc_register_consumer(rmpsc_mpmc *ch, rmpsc_consumer **out)
{
	RMPSC__CHECK(!out, -EINVAL);
	*out = NULL;
	MPMC_CHECK(ch);
	return mc_register_consumer(&ch->ch.mc, out);
}

int rmpsc_consumer_deregister(rmpsc_consumer *c)
{
	struct rmpsc__mc *mc;

	CONS_CHECK(c);
	/* Its claims would stay claimed for good, the elements it took ahead
	 * would be lost; a handler of it may be reading its buffer. */
	RMPSC__CHECK(c->held || c->ahead_i != c->ahead_n || c->ahead_pins, -EBUSY);
	mc = c->mc;
	pthread_mutex_lock(&mc->rs.lock);
	mc->consumers[c->index] = NULL;
	atomic_fetch_sub_explicit(&mc->nconsumers, 1, memory_order_relaxed);
	pthread_mutex_unlock(&mc->rs.lock);
	c->magic = RMPSC__MAGIC_DEAD;
	free(c);
	return 0;
}

int rmpsc_mpmc_register_producer(rmpsc_mpmc *ch, rmpsc_producer **out)
{
	RMPSC__CHECK(!out, -EINVAL);
	*out = NULL;
	MPMC_CHECK(ch);
	return rmpsc__ringset_register(&ch->ch.mc.rs, out);
}

/* ---- SPMC producer ------------------------------------------------------- */

int rmpsc_spmc_reserve(rmpsc_spmc *ch, uint32_t n, rmpsc_span *out)
{
	SPMC_CHECK(ch);
	RMPSC__CHECK(!out, -EINVAL);
	return rc_reserve(&ch->ch.prod->core, n, false, out);
}

int rmpsc_spmc_commit(rmpsc_spmc *ch, uint32_t n)
{
	SPMC_CHECK(ch);
	return rc_commit(&ch->ch.prod->core, n);
}

int rmpsc_spmc_push(rmpsc_spmc *ch, const void *item)
{
	SPMC_CHECK(ch);
	RMPSC__CHECK(!item, -EINVAL);
	return rc_push1_fast(&ch->ch.prod->core, item);
}

int rmpsc_spmc_push_n(rmpsc_spmc *ch, const void *items, uint32_t n)
{
	SPMC_CHECK(ch);
	RMPSC__CHECK(!items && n, -EINVAL);
	return rc_push_n(&ch->ch.prod->core, items, n, false);
}

int rmpsc_spmc_push_timed(rmpsc_spmc *ch, const void *item, int64_t timeout_ns,
			  const rmpsc_wait *w)
{
	SPMC_CHECK(ch);
	return rmpsc__rc_push_timed(&ch->ch.prod->core, item, timeout_ns, w);
}

int rmpsc_spmc_push_n_timed(rmpsc_spmc *ch, const void *items, uint32_t n, int64_t timeout_ns,
			    const rmpsc_wait *w)
{
	SPMC_CHECK(ch);
	return rmpsc__rc_push_n_timed(&ch->ch.prod->core, items, n, timeout_ns, w);
}

/* ---- consumers ----------------------------------------------------------- */

struct take {
	unsigned char *dst; /* copy out here, or */
	rmpsc_mpsc_fn fn;   /* hand to this, or */
	bool claim;         /* leave claimed, at rc, pos (rc NULL: the
			     * consumer's ahead buffer, from index pos) */
	void *ctx;
	uint32_t n;
	rmpsc_consumer *c;  /* taking ahead for it (dst, n == 1), or NULL */
	bool rest;          /* the rest of a steal after pending elements */
	rmpsc__rcore *rc;
	uint64_t pos;
};

/* Claim from one ring, read, complete (or leave the run claimed). The
 * count, -EAGAIN or -EPIPE. */
static int take_ring(rmpsc__rcore *rc, struct take *tk)
{
	uint32_t ahead = tk->c && rc_mc_len(rc) >= 2 * (uint64_t)tk->c->ahead_max
				 ? tk->c->ahead_max : 0;
	uint64_t pos;
	int k;

	/* Elements to be taken ahead are counted before the claim that takes
	 * them: whoever sees that claim sees them counted (the claim CAS is a
	 * release; is_drained and a reuse load claim with acquire first). */
	if (ahead)
		atomic_fetch_add_explicit(&rc->mc_ahead, ahead - 1, memory_order_relaxed);
	k = rc_mc_claim_ahead(rc, tk->n, ahead, &pos);
	if (ahead && (uint32_t)k != ahead) /* the backlog went meanwhile */
		atomic_fetch_sub_explicit(&rc->mc_ahead, ahead - 1, memory_order_relaxed);
	if (k <= 0)
		return k;
	if (tk->claim) {
		tk->rc = rc;
		tk->pos = pos;
		return k;
	}
	if (tk->dst && (uint32_t)k > tk->n) {
		/* Taken ahead (tk->n is 1): the first for the caller, the
		 * rest kept by the consumer; the run completes now. */
		rmpsc_consumer *c = tk->c;

		rc_copy_out(rc, pos, tk->dst, tk->n);
		rc_copy_out(rc, pos + tk->n, c->ahead, (uint32_t)k - tk->n);
		c->ahead_i = 0;
		c->ahead_n = (uint32_t)k - tk->n;
		c->ahead_id = rc->id;
		c->ahead_pos = pos + tk->n;
		c->ahead_rc = rc;
		rc_mc_complete(rc, pos, (uint32_t)k);
		return (int)tk->n;
	}
	if (tk->dst) {
		rc_copy_out(rc, pos, tk->dst, (uint32_t)k);
	} else {
		rmpsc_span s;

		rc_span(rc, pos, (uint32_t)k, &s);
		tk->fn(tk->ctx, rc->id, s.iov[0].iov_base, s.count[0]);
		if (s.nseg > 1)
			tk->fn(tk->ctx, rc->id, s.iov[1].iov_base, s.count[1]);
	}
	rc_mc_complete(rc, pos, (uint32_t)k);
	return k;
}

static uint64_t xs(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/*
 * The three phases: own shard, hottest ring, every ring from a random start.
 * -EPIPE only from phase 3, when closed and every used ring said so.
 */
/* Hand out up to tk->n elements taken ahead, as @tk asks. */
static int take_ahead(rmpsc_consumer *c, struct take *tk)
{
	const uint32_t esz = c->mc->rs.esz, left = c->ahead_n - c->ahead_i;
	uint32_t m = tk->n < left ? tk->n : left;
	unsigned char *p = c->ahead + (size_t)c->ahead_i * esz;

	if (tk->claim) {
		c->ahead_pins++; /* until rmpsc_consumer_complete() */
		tk->rc = NULL;
		tk->pos = c->ahead_i;
	}
	c->ahead_i += m;
	if (tk->dst) {
		memcpy(tk->dst, p, (size_t)m * esz);
	} else if (tk->fn) {
		/* The handler may call this consumer: no refill under it. */
		c->ahead_pins++;
		tk->fn(tk->ctx, c->ahead_id, p, m);
		c->ahead_pins--;
	}
	/* All handed out: the ring no longer waits for them (release: after
	 * the copy, the handler, or the claim's hand-out). */
	if (c->ahead_i == c->ahead_n)
		atomic_fetch_sub_explicit(&c->ahead_rc->mc_ahead, c->ahead_n,
					  memory_order_release);
	return (int)m;
}

static int mc_take(rmpsc_consumer *c, struct take *tk)
{
	struct rmpsc__ringset *rs = &c->mc->rs;
	/* C3 acquire before the ring count (C2): every ring registered before
	 * the close is then counted, so -EPIPE below covers all of them. */
	bool closed = atomic_load_explicit(&rs->closed, memory_order_acquire);
	uint32_t n = rmpsc__ringset_count(rs), best = 0, start, drained = 0, used = 0, base, nown;
	uint64_t most = 0;
	int k;

	if (c->ahead_i != c->ahead_n) {
		int m = take_ahead(c, tk);
		struct take more;

		/* A copy goes on past them (handlers and claims get one run). */
		if (!tk->dst || (uint32_t)m == tk->n)
			return m;
		more = *tk;
		more.dst += (size_t)m * c->mc->rs.esz;
		more.n -= (uint32_t)m;
		more.rest = true; /* a steal of n > 1: no taking ahead */
		k = mc_take(c, &more);
		return k > 0 ? m + k : m;
	}
	/* A single-element copy may take ahead (buffer free, not in use). */
	tk->c = tk->dst && tk->n == 1 && !tk->rest && c->ahead_max && !c->ahead_pins ? c : NULL;
	if (!n)
		return closed ? -EPIPE : -EAGAIN;
	if (n == 1) {
		/* SPMC (or one ring): the three phases would try it alone, with
		 * two divisions first. */
		rmpsc__rcore *rc = rmpsc__ringset_ring(rs, 0);

		k = rmpsc__ring_free(rc) ? -EPIPE : take_ring(rc, tk);
		return k != -EPIPE ? k : closed ? -EPIPE : -EAGAIN;
	}
	/* Phase 1: the own shard, rings id % nshard == index % nshard, a few
	 * of them from the cursor on. */
	base = c->index % c->nshard;
	nown = base < n ? (n - 1 - base) / c->nshard + 1 : 0;
	for (uint32_t t = 0; t < nown && t < 4; t++) {
		rmpsc__rcore *rc = rmpsc__ringset_ring(rs, base + ((c->cursor + t) % nown) * c->nshard);

		if (rmpsc__ring_free(rc))
			continue;
		k = take_ring(rc, tk);
		if (k > 0)
			return k;
	}
	c->cursor++;
	/* Phase 2: the ring with the most unclaimed elements. */
	for (uint32_t i = 0; i < n && n > 1; i++) {
		uint64_t len = rc_mc_len(rmpsc__ringset_ring(rs, i));

		if (len > most) {
			most = len;
			best = i;
		}
	}
	if (most) {
		k = take_ring(rmpsc__ringset_ring(rs, best), tk);
		if (k > 0)
			return k;
	}
	/* Phase 3: every ring, from a random one; -EPIPE from each of them,
	 * with closed seen above, is final for the channel. */
	start = (uint32_t)(xs(&c->rng) % n);
	for (uint32_t i = 0; i < n; i++) {
		rmpsc__rcore *rc = rmpsc__ringset_ring(rs, (start + i) % n);

		if (rmpsc__ring_free(rc))
			continue;
		used++;
		k = take_ring(rc, tk);
		if (k > 0)
			return k;
		if (k == -EPIPE)
			drained++;
	}
	return closed && drained == used ? -EPIPE : -EAGAIN;
}

int rmpsc_consumer_steal(rmpsc_consumer *c, void *items, uint32_t n)
{
	struct take tk = { .dst = items, .n = n };

	CONS_CHECK(c);
	RMPSC__CHECK(!items && n, -EINVAL);
	if (n == 0)
		return 0;
	return mc_take(c, &tk);
}

int rmpsc_consumer_steal_one(rmpsc_consumer *c, void *item)
{
	int k;

	RMPSC__CHECK(RMPSC__HANDLE_IS(c, RMPSC__MAGIC_CONSUMER) && !item, -EINVAL);
	k = rmpsc_consumer_steal(c, item, 1);
	return k > 0 ? 0 : k;
}

int rmpsc_consumer_consume(rmpsc_consumer *c, uint32_t max, rmpsc_mpsc_fn fn, void *ctx)
{
	struct take tk = { .fn = fn, .ctx = ctx, .n = max };

	CONS_CHECK(c);
	RMPSC__CHECK(!fn, -EINVAL);
	if (max == 0)
		return 0;
	return mc_take(c, &tk);
}

struct mc_try {
	rmpsc_consumer *c;
	struct take tk;
	int got;
};

static int try_take(void *arg)
{
	struct mc_try *t = arg;

	t->got = mc_take(t->c, &t->tk);
	return t->got > 0 ? 0 : t->got;
}

static int mc_wait(rmpsc_consumer *c, struct mc_try *t, int64_t timeout_ns,
		   const rmpsc_wait *uw)
{
	struct rmpsc__mc *mc = c->mc;
	const struct rmpsc__waitsite ws = rmpsc__ringset_waitsite(&mc->rs);
	rmpsc_wait w;
	int r = rmpsc__wait_resolve(uw, &mc->wait, &w);

	if (r)
		return r;
	r = rmpsc__wait_run(&w, timeout_ns, &ws, try_take, t);
	return r < 0 ? r : t->got;
}

int rmpsc_consumer_steal_timed(rmpsc_consumer *c, void *items, uint32_t n, int64_t timeout_ns,
			       const rmpsc_wait *w)
{
	struct mc_try t = { .c = c, .tk = { .dst = items, .n = n } };

	CONS_CHECK(c);
	RMPSC__CHECK(!items && n, -EINVAL);
	if (n == 0)
		return rmpsc__wait_resolve(w, &c->mc->wait, &(rmpsc_wait){ 0 });
	return mc_wait(c, &t, timeout_ns, w);
}

int rmpsc_consumer_consume_timed(rmpsc_consumer *c, uint32_t max, rmpsc_mpsc_fn fn, void *ctx,
				 int64_t timeout_ns, const rmpsc_wait *w)
{
	struct mc_try t = { .c = c, .tk = { .fn = fn, .ctx = ctx, .n = max } };

	CONS_CHECK(c);
	RMPSC__CHECK(!fn, -EINVAL);
	if (max == 0)
		return rmpsc__wait_resolve(w, &c->mc->wait, &(rmpsc_wait){ 0 });
	return mc_wait(c, &t, timeout_ns, w);
}

/* ---- zero-copy claims ---------------------------------------------------- */

/* Record the run mc_take() left claimed and describe it in @out. */
static int claim_record(rmpsc_consumer *c, const struct take *tk, int k, rmpsc_claim *out)
{
	uint32_t i = (uint32_t)__builtin_ctzll(~c->held); /* a free one: checked */
	struct mc_claim *cl = &c->claims[i];

	c->held |= 1ull << i;
	cl->rc = tk->rc;
	cl->pos = tk->pos;
	cl->k = (uint32_t)k;
	cl->gen = ++c->gen;
	if (tk->rc) {
		rc_span(tk->rc, tk->pos, (uint32_t)k, &out->span);
		out->producer = tk->rc->id;
	} else {
		/* Elements taken ahead: in the consumer's buffer, one segment. */
		size_t esz = c->mc->rs.esz;

		out->span.iov[0].iov_base = c->ahead + tk->pos * esz;
		out->span.iov[0].iov_len = (size_t)k * esz;
		out->span.count[0] = (uint32_t)k;
		out->span.nseg = 1;
		out->span.pos = c->ahead_pos + tk->pos;
		out->producer = c->ahead_id;
	}
	out->token = (uint64_t)c->serial << (CLAIM_GEN_BITS + CLAIM_SLOT_BITS) |
		     (uint64_t)cl->gen << CLAIM_SLOT_BITS | i;
	return k;
}

/* The checks both claim calls make; 1 to go on, else the return value. */
static int claim_check(rmpsc_consumer *c, uint32_t n, rmpsc_claim *out)
{
	if (out)
		memset(out, 0, sizeof *out);
	CONS_CHECK(c);
	RMPSC__CHECK(!out, -EINVAL);
	if (n == 0)
		return 0;
	RMPSC__CHECK(c->held == UINT64_MAX, -ENOBUFS);
	return 1;
}

int rmpsc_consumer_claim(rmpsc_consumer *c, uint32_t n, rmpsc_claim *out)
{
	struct take tk = { .claim = true, .n = n };
	int k = claim_check(c, n, out);

	if (k <= 0)
		return k;
	k = mc_take(c, &tk);
	return k > 0 ? claim_record(c, &tk, k, out) : k;
}

int rmpsc_consumer_claim_timed(rmpsc_consumer *c, uint32_t n, rmpsc_claim *out,
			       int64_t timeout_ns, const rmpsc_wait *w)
{
	struct mc_try t = { .c = c, .tk = { .claim = true, .n = n } };
	int k = claim_check(c, n, out);

	if (k < 0)
		return k;
	if (k == 0)
		return rmpsc__wait_resolve(w, &c->mc->wait, &(rmpsc_wait){ 0 });
	k = mc_wait(c, &t, timeout_ns, w);
	return k > 0 ? claim_record(c, &t.tk, k, out) : k;
}

int rmpsc_consumer_complete(rmpsc_consumer *c, uint64_t token)
{
	uint32_t i = (uint32_t)(token & (RMPSC_CONSUMER_CLAIMS_MAX - 1));
	uint32_t gen = (uint32_t)(token >> CLAIM_SLOT_BITS);
	struct mc_claim *cl;

	CONS_CHECK(c);
	/* Another consumer's (or a forged) token, one completed already, or
	 * one of an earlier claim in the same place. */
	RMPSC__CHECK(token >> (CLAIM_GEN_BITS + CLAIM_SLOT_BITS) != c->serial, -EINVAL);
	cl = &c->claims[i];
	RMPSC__CHECK(!(c->held & (1ull << i)) || cl->gen != gen, -EINVAL);
	c->held &= ~(1ull << i);
	if (cl->rc)
		rc_mc_complete(cl->rc, cl->pos, cl->k);
	else
		c->ahead_pins--; /* the ahead buffer may be refilled */
	return 0;
}

int rmpsc_consumer_pending(const rmpsc_consumer *c)
{
	CONS_CHECK(c);
	return (int)(c->ahead_n - c->ahead_i);
}

/* ---- lifecycle, status --------------------------------------------------- */

/*
 * rmpsc_spmc_close/_len/_is_drained and their rmpsc_mpmc_ twins: the same
 * calls on the channel's set of rings, behind each type's handle check, so
 * one definition expanded for both types.
 */
#define MC_STATUS_CALLS(kind, KIND)                                            \
	int rmpsc_##kind##_close(rmpsc_##kind *ch)                             \
	{                                                                      \
		KIND##_CHECK(ch);                                              \
		rmpsc__ringset_close(&ch->ch.mc.rs);                           \
		return 0;                                                      \
	}                                                                      \
                                                                               \
	int64_t rmpsc_##kind##_len(const rmpsc_##kind *ch)                     \
	{                                                                      \
		KIND##_CHECK(ch);                                              \
		return rmpsc__ringset_len(&ch->ch.mc.rs);                      \
	}                                                                      \
                                                                               \
	int rmpsc_##kind##_is_drained(const rmpsc_##kind *ch)                  \
	{                                                                      \
		KIND##_CHECK(ch);                                              \
		return rmpsc__ringset_is_drained(&ch->ch.mc.rs);               \
	}

MC_STATUS_CALLS(spmc, SPMC)
MC_STATUS_CALLS(mpmc, MPMC)
