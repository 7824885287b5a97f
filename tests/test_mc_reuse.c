/* SPDX-License-Identifier: MIT */
/*
 * Reuse of MPMC producer rings (ringmpsc/channel.h,
 * rmpsc_mpmc_register_producer): a deregistered producer's ring and its id
 * go to a later registration once the consumers have claimed everything
 * published on it and completed every claim on it; until then the ring
 * counts against max_producers (-ENOSPC).
 *
 * Single-threaded and deterministic: reuse after the last element is taken
 * by each kind of consumer call (steal, steal_one, consume, claim +
 * complete), with 0, 1 or 2 rings made up front; reuse at once when nothing
 * was left; a held zero-copy claim (rmpsc_consumer_claim) keeps the ring
 * until it is completed, whichever of the last claim and the last
 * completion comes first, and with claims completed out of order; one ring
 * cycled through a thousand registrations. Each checks that the new
 * producer gets an empty, open ring of the full capacity, and that nothing
 * of the old incarnation is lost, delivered again or mixed with the new.
 * With a second thread: a consumer asleep in a _timed call while a ring is
 * deregistered and reused is woken by the new producer (no timing asserted:
 * only a lost wake-up fails it, after 30 s).
 *
 * Churn (the issue's test): 100,000 register/deregister cycles (fewer under
 * the sanitizers) by two producer threads on four rings of four slots, each
 * cycle publishing 1..8 elements tagged with a registration serial, next to
 * three consumer threads mixing steal, steal_one, consume, held zero-copy
 * claims and the _timed calls; and 30,000 cycles on two rings made on
 * demand, so that nearly every registration waits for a ring to drain.
 * Checked: every element exactly once; per consumer and ring id, (serial,
 * sequence) only grows, so no consumer sees an old incarnation's element
 * after a new one's; no consumer takes a later incarnation of a ring while
 * another holds a run of an earlier one; the slots of a held claim do not
 * change before its completion; a registration gets an empty ring no
 * consumer holds a run of. Then every ring is free again (max_producers
 * registrations at once), close ends every consumer with -EPIPE and nothing
 * is left. Under TSan the churn also checks that every element's slot
 * writes happen-before its reads, across incarnations. A watchdog fails
 * the case (and closes the channel so that the threads leave) after 20 s
 * without progress: a ring never reused leaves the producers in -ENOSPC
 * for good. RMPSC_STRESS_SEED varies the seed.
 *
 * Public API only.
 */
#include <errno.h>
#include <inttypes.h>
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

#include <cmocka.h>

#include "ringmpsc/channel.h"
#include "ringmpsc/wait.h"

#define STRESS_SEED 0x3c6ef372fe94f82bull
#include "test_util.h"

#define SENTINEL_MPMC SENTINEL_OF(rmpsc_mpmc)
#define SENTINEL_CONS SENTINEL_OF(rmpsc_consumer)
#define SENTINEL_PROD SENTINEL_OF(rmpsc_producer)
#define MS 1000000ll

/* ---- helpers ------------------------------------------------------------ */

static rmpsc_mpmc *mpmc_new(uint32_t cap, uint32_t producers, uint32_t max_producers,
			    uint32_t max_consumers)
{
	rmpsc_mc_config cfg;
	rmpsc_mpmc *ch = SENTINEL_MPMC;

	assert_ret(rmpsc_mc_config_init(&cfg, sizeof cfg, 0), 0);
	cfg.ring_capacity = cap;
	cfg.producers = producers;
	cfg.max_producers = max_producers;
	cfg.max_consumers = max_consumers;
	assert_ret(rmpsc_mpmc_create(&cfg, &ch), 0);
	return assert_handle(ch, SENTINEL_MPMC);
}

static rmpsc_consumer *cons_new(rmpsc_mpmc *m)
{
	rmpsc_consumer *c = SENTINEL_CONS;

	assert_true(rmpsc_mpmc_register_consumer(m, &c) >= 0);
	return assert_handle(c, SENTINEL_CONS);
}

/* A registration is refused with @want (and *out set to NULL). */
static void register_expect(rmpsc_mpmc *m, int want)
{
	rmpsc_producer *x = SENTINEL_PROD;

	assert_ret(rmpsc_mpmc_register_producer(m, &x), want);
	assert_null(x);
}

static int steal1(void *h, void *item)
{
	return rmpsc_consumer_steal_one(h, item);
}

/* What a consume handler saw. */
enum { SINK_MAX = 64 };

struct sink {
	uint64_t v[SINK_MAX];
	uint32_t id[SINK_MAX];
	uint32_t n;
};

static void sink_fn(void *ctx, uint32_t producer_id, const void *items, uint32_t count)
{
	struct sink *s = ctx;

	assert_non_null(items);
	assert_true(count > 0);
	for (uint32_t i = 0; i < count; i++) {
		assert_true(s->n < SINK_MAX);
		memcpy(&s->v[s->n], (const unsigned char *)items + (size_t)i * 8, 8);
		s->id[s->n] = producer_id;
		s->n++;
	}
}

/* A claim of exactly @n elements of ring @id: first, first + 1, ... */
static rmpsc_claim claim_expect(rmpsc_consumer *c, uint32_t id, uint64_t first, uint32_t n)
{
	rmpsc_claim cl;

	assert_ret(rmpsc_consumer_claim(c, n, &cl), n);
	assert_int_equal(cl.producer, id);
	assert_int_equal(cl.span.count[0] + cl.span.count[1], n);
	for (uint32_t i = 0; i < n; i++)
		assert_int_equal(span_get_u64(&cl.span, i), first + i);
	return cl;
}

/* How a case takes elements. */
enum taker { BY_STEAL, BY_STEAL_ONE, BY_CONSUME, BY_CLAIM, BY_KINDS };

static const char *const taker_names[] = { "steal", "steal_one", "consume", "claim" };

/* Take the next @n elements, all of ring @id, with @by (steal, consume and
 * claim in one call): first, first + 1, ..., with the ring's id where the
 * call says it. */
static void take_expect(rmpsc_consumer *c, enum taker by, uint32_t id, uint64_t first,
			uint32_t n)
{
	uint64_t v[SINK_MAX];
	struct sink sk;
	rmpsc_claim cl;

	assert_true(n <= SINK_MAX);
	switch (by) {
	case BY_STEAL:
		assert_ret(rmpsc_consumer_steal(c, v, n), n);
		vals_expect(v, first, n);
		break;
	case BY_STEAL_ONE:
		seq_take(steal1, c, first, n);
		break;
	case BY_CONSUME:
		memset(&sk, 0, sizeof sk);
		assert_ret(rmpsc_consumer_consume(c, n, sink_fn, &sk), n);
		assert_int_equal(sk.n, n);
		vals_expect(sk.v, first, n);
		for (uint32_t i = 0; i < n; i++)
			assert_int_equal(sk.id[i], id);
		break;
	default:
		cl = claim_expect(c, id, first, n);
		assert_ret(rmpsc_consumer_complete(c, cl.token), 0);
		break;
	}
}

/* Nothing to take: the old incarnation is not delivered again. */
static void take_none(rmpsc_consumer *c)
{
	uint64_t v = ~0ull;
	rmpsc_claim cl;

	assert_ret(rmpsc_consumer_steal_one(c, &v), -EAGAIN);
	assert_ret(rmpsc_consumer_claim(c, 4, &cl), -EAGAIN);
}

/* A fresh incarnation: empty, and open for the whole capacity @cap. */
static void fresh_expect(rmpsc_mpmc *m, rmpsc_producer *p, uint64_t first, uint32_t cap)
{
	assert_ret(rmpsc_producer_len(p), 0);
	assert_ret(rmpsc_mpmc_len(m), 0);
	seq_put(producer_put1, p, first, cap);
	assert_ret(rmpsc_producer_push(p, &(uint64_t){ 0 }), -EAGAIN);
	assert_ret(rmpsc_producer_len(p), cap);
}

/* ---- reuse after the last element is taken -------------------------------- */

struct reuse_case {
	uint32_t made; /* rings made up front */
	enum taker by; /* how every element is taken */
};

static const struct reuse_case rc_steal_0 = { 0, BY_STEAL };
static const struct reuse_case rc_steal_one_0 = { 0, BY_STEAL_ONE };
static const struct reuse_case rc_consume_0 = { 0, BY_CONSUME };
static const struct reuse_case rc_claim_0 = { 0, BY_CLAIM };
static const struct reuse_case rc_steal_2 = { 2, BY_STEAL };
static const struct reuse_case rc_consume_1 = { 1, BY_CONSUME };
static const struct reuse_case rc_claim_2 = { 2, BY_CLAIM };

/*
 * Promise: a deregistered producer's ring counts against max_producers
 * while elements published on it are unclaimed (-ENOSPC), and goes with its
 * id to the next registration once the consumers took them all; the new
 * producer's ring is empty and open (ringmpsc/channel.h,
 * rmpsc_mpmc_register_producer, "Ordering: as MPSC"), the old elements are
 * delivered once, in order, before any new one and never again, and the
 * new ones come under the same id. Whatever call takes the last element,
 * with rings made on demand or up front.
 */
static void test_mc_reuse_register_after_last_take_gets_the_id_and_an_empty_ring(void **state)
{
	const struct reuse_case *k = (const void *)test_param(state);
	rmpsc_mpmc *m = mpmc_new(8, k->made, 2, 4);
	rmpsc_consumer *c = cons_new(m);
	rmpsc_producer *a = producer_new(m, true, 0), *b = producer_new(m, true, 1);
	struct sink sk;
	int64_t r;

	print_message("  taken by %s, %u rings made up front\n", taker_names[k->by], k->made);
	register_expect(m, -ENOSPC);
	seq_put(producer_put1, a, 100, 5);
	assert_ret(rmpsc_producer_deregister(a), 0);
	/* A's five elements unclaimed: its ring still counts */
	register_expect(m, -ENOSPC);
	take_expect(c, k->by, 0, 100, 2);
	register_expect(m, -ENOSPC);
	take_expect(c, k->by, 0, 102, 2);
	register_expect(m, -ENOSPC);
	take_expect(c, k->by, 0, 104, 1);
	/* all claimed and completed: A's ring and id go to the next one */
	a = producer_new(m, true, 0);
	register_expect(m, -ENOSPC);
	take_none(c);
	fresh_expect(m, a, 200, 8);
	seq_put(producer_put1, b, 300, 2);
	/* the new elements under id 0, in order; nothing of the old */
	memset(&sk, 0, sizeof sk);
	while ((r = rmpsc_consumer_consume(c, 3, sink_fn, &sk)) > 0)
		;
	assert_ret(r, -EAGAIN);
	assert_int_equal(sk.n, 10);
	for (uint32_t i = 0, na = 0, nb = 0; i < sk.n; i++) {
		if (sk.id[i] == 0) {
			assert_int_equal(sk.v[i], 200 + na++);
		} else {
			assert_int_equal(sk.id[i], 1);
			assert_int_equal(sk.v[i], 300 + nb++);
		}
	}
	/* the second incarnation leaves with two elements: delivered by close */
	seq_put(producer_put1, a, 208, 2);
	assert_ret(rmpsc_producer_deregister(a), 0);
	register_expect(m, -ENOSPC);
	assert_ret(rmpsc_mpmc_close(m), 0);
	register_expect(m, -EPIPE);
	take_expect(c, k->by, 0, 208, 2);
	assert_ret(rmpsc_consumer_steal_one(c, &(uint64_t){ 0 }), -EPIPE);
	assert_ret(rmpsc_mpmc_is_drained(m), 1);
	rmpsc_mpmc_destroy(m);
}

/*
 * Promise: "once the consumers have claimed everything published on it and
 * completed every claim on it": when nothing is left (nothing published,
 * or everything taken before the deregistration), the ring goes to the
 * very next registration, with no consumer registered at all or without
 * any consumer looking at the ring again.
 */
static void test_mc_reuse_register_after_deregister_of_empty_ring_reuses_at_once(void **state)
{
	rmpsc_mpmc *m = mpmc_new(4, 0, 1, 2);
	rmpsc_producer *p;
	rmpsc_consumer *c;

	(void)state;
	/* no consumer; nothing ever published */
	p = producer_new(m, true, 0);
	register_expect(m, -ENOSPC);
	assert_ret(rmpsc_producer_deregister(p), 0);
	p = producer_new(m, true, 0);
	/* one element and no consumer to take it: the ring stays */
	seq_put(producer_put1, p, 10, 1);
	assert_ret(rmpsc_producer_deregister(p), 0);
	register_expect(m, -ENOSPC);
	register_expect(m, -ENOSPC);
	c = cons_new(m);
	seq_take(steal1, c, 10, 1);
	p = producer_new(m, true, 0);
	/* everything taken before the deregistration */
	seq_put(producer_put1, p, 20, 3);
	take_expect(c, BY_STEAL, 0, 20, 3);
	assert_ret(rmpsc_producer_deregister(p), 0);
	p = producer_new(m, true, 0);
	take_none(c);
	fresh_expect(m, p, 30, 4);
	take_expect(c, BY_CLAIM, 0, 30, 4);
	rmpsc_mpmc_destroy(m);
}

/* ---- held zero-copy claims ---------------------------------------------------- */

/*
 * Promise: a zero-copy claim not yet completed keeps its ring from reuse
 * ("... and completed every claim on it"), whether it is completed before
 * or after the rest is taken; a consumer holding it cannot deregister
 * (-EBUSY, nothing changes); the completion that finishes the ring frees
 * it, and the old token is then stale (-EINVAL) and harms nothing of the
 * new incarnation (rmpsc_consumer_complete, "a token is good once").
 * @state: 1 = complete, then take the rest; 0 = take the rest, then complete.
 */
static void test_mc_reuse_held_claim_blocks_reuse_until_completed(void **state)
{
	const bool complete_first = test_param(state) != 0;
	rmpsc_mpmc *m = mpmc_new(8, 0, 2, 4);
	rmpsc_consumer *c1 = cons_new(m), *c2 = cons_new(m);
	rmpsc_producer *a = producer_new(m, true, 0), *b = producer_new(m, true, 1);
	rmpsc_claim cl;

	(void)b;
	seq_put(producer_put1, a, 100, 5);
	cl = claim_expect(c1, 0, 100, 1);
	assert_ret(rmpsc_producer_deregister(a), 0);
	register_expect(m, -ENOSPC);
	if (complete_first) {
		assert_ret(rmpsc_consumer_complete(c1, cl.token), 0);
		/* every claim complete, four elements unclaimed */
		register_expect(m, -ENOSPC);
		take_expect(c2, BY_STEAL, 0, 101, 4);
	} else {
		take_expect(c2, BY_STEAL, 0, 101, 4);
		take_none(c2);
		/* everything claimed, one claim outstanding */
		register_expect(m, -ENOSPC);
		assert_ret(rmpsc_consumer_deregister(c1), -EBUSY);
		register_expect(m, -ENOSPC);
		/* the held run is still in place */
		assert_int_equal(span_get_u64(&cl.span, 0), 100);
		assert_ret(rmpsc_consumer_complete(c1, cl.token), 0);
	}
	a = producer_new(m, true, 0);
	assert_ret(rmpsc_consumer_complete(c1, cl.token), -EINVAL);
	take_none(c1);
	fresh_expect(m, a, 200, 8);
	/* a stale token of the old incarnation leaves the new one alone */
	assert_ret(rmpsc_consumer_complete(c1, cl.token), -EINVAL);
	take_expect(c1, BY_CLAIM, 0, 200, 3);
	take_expect(c2, BY_STEAL, 0, 203, 5);
	take_none(c1);
	assert_ret(rmpsc_consumer_deregister(c1), 0);
	assert_ret(rmpsc_mpmc_close(m), 0);
	assert_ret(rmpsc_consumer_steal_one(c2, &(uint64_t){ 0 }), -EPIPE);
	rmpsc_mpmc_destroy(m);
}

/*
 * Promise: "completed every claim on it", with claims of two consumers
 * completed out of order (rmpsc_consumer_complete: any order): the ring
 * stays while any one is outstanding (the last run, then the middle one),
 * and the completion of the last outstanding one frees it.
 */
static void test_mc_reuse_claims_completed_out_of_order_free_the_ring_at_the_last(void **state)
{
	rmpsc_mpmc *m = mpmc_new(8, 1, 2, 4);
	rmpsc_consumer *c1 = cons_new(m), *c2 = cons_new(m);
	rmpsc_producer *a = producer_new(m, true, 0), *b = producer_new(m, true, 1);
	rmpsc_claim k1, k2, k3;

	(void)state;
	(void)b;
	seq_put(producer_put1, a, 100, 6);
	k1 = claim_expect(c1, 0, 100, 2);
	k2 = claim_expect(c2, 0, 102, 2);
	assert_ret(rmpsc_producer_deregister(a), 0);
	k3 = claim_expect(c1, 0, 104, 2);
	take_none(c2);
	register_expect(m, -ENOSPC);
	assert_ret(rmpsc_consumer_complete(c1, k3.token), 0);
	register_expect(m, -ENOSPC);
	assert_ret(rmpsc_consumer_complete(c1, k1.token), 0);
	register_expect(m, -ENOSPC);
	/* the middle run still in place */
	assert_int_equal(span_get_u64(&k2.span, 0), 102);
	assert_int_equal(span_get_u64(&k2.span, 1), 103);
	assert_ret(rmpsc_consumer_complete(c2, k2.token), 0);
	a = producer_new(m, true, 0);
	take_none(c1);
	fresh_expect(m, a, 200, 8);
	take_expect(c2, BY_CONSUME, 0, 200, 8);
	rmpsc_mpmc_destroy(m);
}

/* ---- a sleeping consumer ------------------------------------------------------ */

struct sleeper {
	rmpsc_consumer *c;
	atomic_int started;
	int ret;
	uint64_t v;
};

static void *sleeper_main(void *arg)
{
	struct sleeper *s = arg;

	atomic_store_explicit(&s->started, 1, memory_order_release);
	/* Far longer than the test takes: -ETIMEDOUT means a lost wake. */
	s->ret = rmpsc_consumer_steal_timed(s->c, &s->v, 1, 30 * 1000 * MS, NULL);
	return NULL;
}

/*
 * Promise: a blocking consumer call waits for at least one element
 * (rmpsc_consumer_steal_timed), whichever producer publishes it: one
 * waiting while a ring is deregistered and drained (its close wakes the
 * sleepers, who find nothing and wait again) gets the first element of the
 * producer that reuses the ring, under the same id.
 */
static void test_mc_reuse_timed_steal_is_woken_by_the_producer_of_a_reused_ring(void **state)
{
	rmpsc_mpmc *m = mpmc_new(8, 0, 1, 2);
	struct sleeper s = { .c = cons_new(m), .ret = INT32_MIN, .v = 0 };
	rmpsc_producer *p = producer_new(m, true, 0);
	pthread_t t;

	(void)state;
	atomic_init(&s.started, 0);
	seq_put(producer_put1, p, 10, 1);
	seq_take(steal1, s.c, 10, 1);
	assert_int_equal(pthread_create(&t, NULL, sleeper_main, &s), 0);
	while (!atomic_load_explicit(&s.started, memory_order_acquire))
		sched_yield();
	/* give it time to go to sleep (not asserted) */
	sleep_ns(20 * MS);
	assert_ret(rmpsc_producer_deregister(p), 0);
	sleep_ns(20 * MS);
	p = producer_new(m, true, 0);
	sleep_ns(20 * MS);
	seq_put(producer_put1, p, 42, 1);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_ret(s.ret, 1);
	assert_int_equal(s.v, 42);
	take_none(s.c);
	rmpsc_mpmc_destroy(m);
}

/* ---- one ring, many incarnations -------------------------------------------- */

/*
 * Promise: max_producers bounds the producers registered at once plus the
 * rings still being drained, not the registrations over the channel's life:
 * with max_producers 1, a thousand registrations all get id 0, each an
 * empty ring, whether the consumer drains it before or after the
 * deregistration, by any call; each incarnation's elements come in order,
 * once, and none of an earlier one comes again (rings of 4 slots: the
 * positions wrap many times).
 */
static void test_mc_reuse_one_ring_serves_a_thousand_registrations(void **state)
{
	rmpsc_mpmc *m = mpmc_new(4, 0, 1, 2);
	rmpsc_consumer *c = cons_new(m);

	(void)state;
	for (uint32_t i = 0; i < 1000; i++) {
		rmpsc_producer *p = producer_new(m, true, 0);
		const uint64_t first = (uint64_t)i * 16;
		const uint32_t n = 1 + (i / 8) % 4;
		const enum taker by = (enum taker)((i / 2) % BY_KINDS);
		const bool leave_first = i % 2;

		assert_ret(rmpsc_producer_len(p), 0);
		register_expect(m, -ENOSPC);
		seq_put(producer_put1, p, first, n);
		if (leave_first) {
			assert_ret(rmpsc_producer_deregister(p), 0);
			register_expect(m, -ENOSPC);
		}
		if (by == BY_CLAIM && n > 1) {
			/* two claims, completed last-first */
			rmpsc_claim k1 = claim_expect(c, 0, first, 1);
			rmpsc_claim k2 = claim_expect(c, 0, first + 1, n - 1);

			assert_ret(rmpsc_consumer_complete(c, k2.token), 0);
			if (leave_first)
				register_expect(m, -ENOSPC);
			assert_ret(rmpsc_consumer_complete(c, k1.token), 0);
		} else {
			take_expect(c, by, 0, first, n);
		}
		take_none(c);
		if (!leave_first)
			assert_ret(rmpsc_producer_deregister(p), 0);
	}
	assert_ret(rmpsc_mpmc_close(m), 0);
	assert_ret(rmpsc_consumer_steal_one(c, &(uint64_t){ 0 }), -EPIPE);
	rmpsc_mpmc_destroy(m);
}

/* ---- churn -------------------------------------------------------------------- */

enum {
	CH_PRODUCERS = 2,  /* churning producer threads */
	CH_CONSUMERS = 3,  /* consumer threads */
	CH_THREADS = CH_PRODUCERS + CH_CONSUMERS,
	CH_MAXP = 4,       /* max_producers, at most (ids below it) */
	CH_CAP = 4,        /* slots per ring: a registration's 8 elements wrap it */
	CH_BATCH = 8,      /* elements per registration: 1..8 */
	CH_HOLD = 4,       /* zero-copy claims a consumer holds at once, at most */
	CH_WATCHDOG_SEC = 20,
};

/* A churn case: max_producers, how many made up front, registrations. */
struct churn_case {
	uint32_t maxp;
	uint32_t made;
	uint64_t cycles;
};

/* The issue's case: four rings, two of them made up front, 100,000 cycles. */
static const struct churn_case churn_wide = { 4, 2, STRESS_SCALE(100000u, 50000u, 40000u) };
/* As many rings as producers, none made up front: most registrations wait
 * for a ring to drain (-ENOSPC until then). */
static const struct churn_case churn_tight = { 2, 0, STRESS_SCALE(30000u, 15000u, 12000u) };

/* An element: tag | ring id | registration serial | sequence. The key
 * (serial, sequence) orders the elements of a ring over its incarnations. */
#define V_TAG 0xa5u
#define V_KEY(v) ((v) & ((1ull << 48) - 1))
#define NO_ID UINT32_MAX

static inline uint64_t cval(uint32_t id, uint64_t serial, uint32_t seq)
{
	return (uint64_t)V_TAG << 56 | (uint64_t)id << 48 | serial << 8 | seq;
}

/* Where a thread is, for the watchdog's message. */
enum where { W_IDLE, W_REGISTER, W_PUSH, W_DEREGISTER, W_TAKE, W_TIMED, W_YIELD, W_DONE };

static const char *const where_names[] = {
	"between calls", "register (-ENOSPC retries)", "push", "deregister",
	"take", "a _timed call", "sched_yield", "done",
};

struct cslot {
	alignas(64) _Atomic uint64_t ops; /* progress, for the watchdog */
	_Atomic int where;
	atomic_int done;
};

struct churn {
	rmpsc_mpmc *m;
	uint32_t maxp;                  /* max_producers */
	uint64_t nserial;               /* serials there may be */
	_Atomic uint64_t serial;        /* the next registration serial */
	_Atomic uint8_t *count;         /* [nserial]: elements published */
	_Atomic uint8_t *mask;          /* [nserial]: sequences received */
	_Atomic uint32_t held[CH_MAXP]; /* runs in a consumer's hands, per ring id */
	_Atomic uint64_t seen[CH_MAXP]; /* the highest key taken of each ring id */
	_Atomic uint64_t pushed;        /* elements published */
	_Atomic uint64_t done;          /* elements received and completed */
	atomic_int failed;
	atomic_int closed;
	atomic_bool stop;
	char msg[1024];
	struct cslot slot[CH_THREADS];
};

static void churn_stop(void *arg, int first)
{
	struct churn *h = arg;

	(void)first;
	atomic_store_explicit(&h->stop, true, memory_order_release);
}

/* Record the first failure (the threads leave); false. */
__attribute__((format(printf, 2, 3))) static bool churn_fail(struct churn *h,
							     const char *fmt, ...)
{
	char buf[sizeof h->msg];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	FAIL_RECORD(h, churn_stop, "%s", buf);
	return false;
}

static bool stopped(const struct churn *h)
{
	/* Relaxed: a hint to leave; results are read after the joins. */
	return atomic_load_explicit(&h->stop, memory_order_relaxed);
}

static inline void set_where(struct churn *h, uint32_t t, int w)
{
	atomic_store_explicit(&h->slot[t].where, w, memory_order_relaxed);
}

static inline void bump(struct churn *h, uint32_t t, uint64_t n)
{
	/* Relaxed: read by the watchdog only. */
	atomic_fetch_add_explicit(&h->slot[t].ops, n, memory_order_relaxed);
}

static uint64_t ld(_Atomic uint64_t *a)
{
	return atomic_load_explicit(a, memory_order_relaxed);
}

static void churn_close(struct churn *h)
{
	atomic_store_explicit(&h->closed, 1, memory_order_relaxed);
	assert_int_equal(rmpsc_mpmc_close(h->m), 0);
}

/* ---- churn: producers ---- */

struct cprod {
	struct churn *h;
	uint32_t t;
	uint64_t rng;
	uint64_t cycles; /* registrations to make */
	uint64_t regs, elems, nospc, full;
	uint64_t by_id[CH_MAXP];
};

/* Publish @n elements of serial @serial on @p (ring @id), any producer
 * call; a full ring is waited for. false: failed or told to stop. */
static bool cprod_publish(struct cprod *pr, rmpsc_producer *p, uint32_t id, uint64_t serial,
			  uint32_t n)
{
	struct churn *h = pr->h;
	uint64_t buf[CH_BATCH];
	uint32_t sent = 0;

	for (uint32_t i = 0; i < n; i++)
		buf[i] = cval(id, serial, i);
	while (sent < n) {
		const uint64_t x = xs_next(&pr->rng);
		const uint32_t left = n - sent;
		rmpsc_span sp;
		int r, op = (int)(x % 4);

		set_where(h, pr->t, W_PUSH);
		switch (op) {
		case 0:
			r = rmpsc_producer_push(p, &buf[sent]);
			if (r == 0)
				r = 1;
			break;
		case 1:
			r = rmpsc_producer_push_n(p, &buf[sent], left);
			break;
		case 2:
			r = rmpsc_producer_reserve(p, left, &sp);
			if (r > 0) {
				if (r > (int)left || sp.count[0] + sp.count[1] != (uint32_t)r)
					return churn_fail(h, "producer %u: reserve of %u "
							  "returned %d with %u + %u elements",
							  pr->t, left, r, sp.count[0],
							  sp.count[1]);
				for (uint32_t i = 0; i < (uint32_t)r; i++)
					span_put_u64(&sp, i, buf[sent + i]);
				if (rmpsc_producer_commit(p, (uint32_t)r) != 0)
					return churn_fail(h, "producer %u: commit of %d failed",
							  pr->t, r);
			}
			break;
		default:
			r = rmpsc_producer_push_n_timed(p, &buf[sent], left, (x >> 8) & 1 ? MS : 0,
							NULL);
			break;
		}
		set_where(h, pr->t, W_IDLE);
		if (r > 0 && r <= (int)left) {
			sent += (uint32_t)r;
			continue;
		}
		if (r == -EAGAIN || (r == -ETIMEDOUT && op == 3)) {
			pr->full++;
			if (stopped(h))
				return false;
			set_where(h, pr->t, W_YIELD);
			sched_yield();
			continue;
		}
		if (r == -EPIPE && stopped(h))
			return false;
		return churn_fail(h, "producer %u: op %d of %u elements on ring %u (serial %" PRIu64
				  ") returned %s (%d)", pr->t, op, left, id, serial, errname(r), r);
	}
	return true;
}

/* Register (waiting out -ENOSPC), check the ring, publish, deregister.
 * false: failed or told to stop. */
static bool cprod_cycle(struct cprod *pr)
{
	struct churn *h = pr->h;
	rmpsc_producer *p;
	uint64_t serial;
	uint32_t n;
	int id;

	set_where(h, pr->t, W_REGISTER);
	for (;;) {
		p = SENTINEL_PROD;
		id = rmpsc_mpmc_register_producer(h->m, &p);
		if (id >= 0)
			break;
		if (p != NULL)
			return churn_fail(h, "producer %u: register returned %s, handle not NULL",
					  pr->t, errname(id));
		if (id == -ENOSPC) {
			pr->nospc++;
			if (stopped(h))
				return false;
			sched_yield();
			continue;
		}
		if (id == -EPIPE && stopped(h))
			return false;
		return churn_fail(h, "producer %u: register returned %s (%d)", pr->t, errname(id),
				  id);
	}
	set_where(h, pr->t, W_IDLE);
	if ((uint32_t)id >= h->maxp || p == NULL || p == SENTINEL_PROD ||
	    rmpsc_producer_id(p) != id)
		return churn_fail(h, "producer %u: register returned id %d (max_producers %u), "
				  "handle id %d", pr->t, id, h->maxp,
				  p && p != SENTINEL_PROD ? rmpsc_producer_id(p) : -1);
	/* Empty, and no consumer holds a run of it (a run of the old
	 * incarnation: the new one has nothing yet). */
	if (rmpsc_producer_len(p) != 0)
		return churn_fail(h, "producer %u: ring %d handed out with %" PRId64 " elements",
				  pr->t, id, rmpsc_producer_len(p));
	if (atomic_load_explicit(&h->held[id], memory_order_acquire) != 0)
		return churn_fail(h, "producer %u: ring %d handed out while a consumer holds a "
				  "run of its last incarnation", pr->t, id);
	/* After the registration: the serials of one ring grow with its
	 * incarnations. */
	serial = atomic_fetch_add_explicit(&h->serial, 1, memory_order_relaxed);
	if (serial >= h->nserial)
		return churn_fail(h, "producer %u: serial %" PRIu64 " out of range", pr->t, serial);
	pr->regs++;
	pr->by_id[id]++;
	n = 1 + (uint32_t)((xs_next(&pr->rng) >> 20) % CH_BATCH);
	if (!cprod_publish(pr, p, (uint32_t)id, serial, n))
		return false;
	/* Relaxed: read after the joins. */
	atomic_store_explicit(&h->count[serial], (uint8_t)n, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->pushed, n, memory_order_relaxed);
	pr->elems += n;
	set_where(h, pr->t, W_DEREGISTER);
	if (rmpsc_producer_deregister(p) != 0)
		return churn_fail(h, "producer %u: deregister of ring %d failed", pr->t, id);
	set_where(h, pr->t, W_IDLE);
	bump(h, pr->t, 1 + n);
	return true;
}

static void *cprod_main(void *arg)
{
	struct cprod *pr = arg;

	for (uint64_t i = 0; i < pr->cycles && !stopped(pr->h); i++)
		if (!cprod_cycle(pr))
			break;
	set_where(pr->h, pr->t, W_DONE);
	atomic_store_explicit(&pr->h->slot[pr->t].done, 1, memory_order_release);
	return NULL;
}

/* ---- churn: consumers ---- */

struct held_claim {
	rmpsc_claim cl;
	uint32_t n;
	uint64_t v[CH_BATCH]; /* what it held when claimed */
};

struct ccstats {
	uint64_t steal, steal_one, consume, claim, claim_t, steal_t, consume_t;
	uint64_t held, empty, timeouts, busy;
};

struct ccons {
	struct churn *h;
	uint32_t t;
	rmpsc_consumer *c;
	uint64_t rng;
	uint64_t last[CH_MAXP];  /* the last key taken of each ring, + 1 (0: none) */
	struct held_claim hold[CH_HOLD];
	uint32_t nheld;
	uint32_t handled;        /* what the current consume call handed over */
	bool broken;             /* take() failed in a handler */
	uint64_t got;
	struct ccstats st;
};

/*
 * One element received: well-formed and sent; the id the call named; per
 * ring, after every key this consumer took of it; while the run is in hand
 * (@in_hand: a claim or a consume handler), no consumer took a later
 * incarnation of the ring; the first delivery.
 */
static bool ctake(struct ccons *cn, uint64_t v, uint32_t call_id, bool in_hand)
{
	struct churn *h = cn->h;
	const uint32_t id = (uint32_t)(v >> 48) & 0xff, seq = (uint32_t)v & 0xff;
	const uint64_t serial = (v >> 8) & ((1ull << 40) - 1), key = V_KEY(v);
	uint64_t s;
	uint8_t bit, old;

	if ((v >> 56) != V_TAG || id >= h->maxp || seq >= CH_BATCH ||
	    serial >= atomic_load_explicit(&h->serial, memory_order_relaxed))
		return churn_fail(h, "consumer %u got %#" PRIx64 ", which nobody sent", cn->t, v);
	if (call_id != NO_ID && call_id != id)
		return churn_fail(h, "consumer %u: a call named ring %u for an element of ring %u",
				  cn->t, call_id, id);
	if (key < cn->last[id])
		return churn_fail(h, "ring %u: consumer %u got serial %" PRIu64 " item %u after "
				  "serial %" PRIu64 " item %u (order of a ring's incarnations or "
				  "per-producer FIFO broken)", id, cn->t, serial, seq,
				  (cn->last[id] - 1) >> 8, (unsigned)((cn->last[id] - 1) & 0xff));
	cn->last[id] = key + 1;
	s = atomic_load_explicit(&h->seen[id], memory_order_relaxed);
	if (in_hand && (s >> 8) > serial)
		return churn_fail(h, "ring %u: serial %" PRIu64 " was taken while consumer %u "
				  "holds item %u of serial %" PRIu64 " (ring reused before its "
				  "last claim completed)", id, s >> 8, cn->t, seq, serial);
	while (s < key && !atomic_compare_exchange_weak_explicit(&h->seen[id], &s, key,
								 memory_order_relaxed,
								 memory_order_relaxed))
		;
	bit = (uint8_t)(1u << seq);
	old = atomic_fetch_or_explicit(&h->mask[serial], bit, memory_order_relaxed);
	if (old & bit)
		return churn_fail(h, "ring %u: serial %" PRIu64 " item %u delivered twice", id,
				  serial, seq);
	cn->got++;
	return true;
}

static void ccons_fn(void *ctx, uint32_t producer_id, const void *items, uint32_t count)
{
	struct ccons *cn = ctx;
	struct churn *h = cn->h;
	const uint64_t x = xs_next(&cn->rng);

	if (producer_id >= h->maxp) {
		cn->broken = true;
		churn_fail(h, "consumer %u: consume handed ring id %u", cn->t, producer_id);
		return;
	}
	atomic_fetch_add_explicit(&h->held[producer_id], 1, memory_order_relaxed);
	for (uint32_t i = 0; i < count && !cn->broken; i++) {
		uint64_t v;

		memcpy(&v, (const unsigned char *)items + (size_t)i * 8, 8);
		if (!ctake(cn, v, producer_id, true))
			cn->broken = true;
	}
	if ((x & 15) == 0)
		sched_yield(); /* a run in hand for a while */
	atomic_fetch_sub_explicit(&h->held[producer_id], 1, memory_order_relaxed);
	cn->handled += count;
}

/* Complete held claim @i: its slots unchanged, then the completion. */
static bool ccons_complete(struct ccons *cn, uint32_t i)
{
	struct churn *h = cn->h;
	struct held_claim *hc = &cn->hold[i];
	const uint32_t id = hc->cl.producer;
	int r;

	for (uint32_t j = 0; j < hc->n; j++) {
		const uint64_t v = span_get_u64(&hc->cl.span, j);

		if (v != hc->v[j])
			return churn_fail(h, "consumer %u: item %u of a claim of ring %u changed "
					  "from %#" PRIx64 " to %#" PRIx64 " before its completion",
					  cn->t, j, id, hc->v[j], v);
	}
	atomic_fetch_sub_explicit(&h->held[id], 1, memory_order_relaxed);
	r = rmpsc_consumer_complete(cn->c, hc->cl.token);
	if (r != 0)
		return churn_fail(h, "consumer %u: complete returned %s", cn->t, errname(r));
	atomic_fetch_add_explicit(&h->done, hc->n, memory_order_release);
	bump(h, cn->t, hc->n);
	cn->hold[i] = cn->hold[--cn->nheld];
	return true;
}

static bool ccons_complete_all(struct ccons *cn)
{
	while (cn->nheld)
		if (!ccons_complete(cn, cn->nheld - 1))
			return false;
	return true;
}

/* A claim of @r elements just returned: take them, then hold it or
 * complete it. */
static bool ccons_claimed(struct ccons *cn, const rmpsc_claim *cl, int r, uint32_t n,
			  bool hold)
{
	struct churn *h = cn->h;
	struct held_claim *hc = &cn->hold[cn->nheld];

	if (r > (int)n || cl->span.count[0] + cl->span.count[1] != (uint32_t)r ||
	    cl->producer >= h->maxp)
		return churn_fail(h, "consumer %u: claim of %u returned %d: %u + %u elements of "
				  "ring %u", cn->t, n, r, cl->span.count[0], cl->span.count[1],
				  cl->producer);
	atomic_fetch_add_explicit(&h->held[cl->producer], 1, memory_order_relaxed);
	hc->cl = *cl;
	hc->n = (uint32_t)r;
	cn->nheld++;
	for (uint32_t i = 0; i < hc->n; i++) {
		hc->v[i] = span_get_u64(&cl->span, i);
		if (!ctake(cn, hc->v[i], cl->producer, true))
			return false;
	}
	if (hold) {
		cn->st.held++;
		return true;
	}
	return ccons_complete(cn, cn->nheld - 1);
}

enum { STEP_GOT, STEP_NONE, STEP_EPIPE, STEP_BROKEN };

static int ccons_step(struct ccons *cn)
{
	struct churn *h = cn->h;
	const uint64_t x = xs_next(&cn->rng);
	const uint32_t n = 1 + (uint32_t)((x >> 8) % CH_BATCH);
	const int op = (int)(x % 16);
	const int64_t tmo = ((x >> 24) & 3) == 3 ? -1 : ((x >> 24) & 3) == 0 ? 0 : MS;
	const bool timed = op >= 13;
	uint64_t buf[CH_BATCH];
	rmpsc_claim cl;
	int r;

	/* Held claims: complete one now and then, and every one before a
	 * call that may sleep (a held run may be what the producer waits
	 * for) or when full. */
	if (cn->nheld && (((x >> 16) & 1) || cn->nheld == CH_HOLD))
		if (!ccons_complete(cn, (uint32_t)((x >> 32) % cn->nheld)))
			return STEP_BROKEN;
	if (timed && !ccons_complete_all(cn))
		return STEP_BROKEN;
	cn->handled = 0;
	set_where(h, cn->t, timed ? W_TIMED : W_TAKE);
	switch (op) {
	case 0: case 1: case 2: case 3:
		cn->st.steal++;
		r = rmpsc_consumer_steal(cn->c, buf, n);
		break;
	case 4: case 5:
		cn->st.steal_one++;
		r = rmpsc_consumer_steal_one(cn->c, buf);
		if (r == 0)
			r = 1;
		break;
	case 6: case 7: case 8:
		cn->st.consume++;
		r = rmpsc_consumer_consume(cn->c, n, ccons_fn, cn);
		break;
	case 9: case 10: case 11: case 12:
		cn->st.claim++;
		r = rmpsc_consumer_claim(cn->c, n, &cl);
		break;
	case 13:
		cn->st.claim_t++;
		r = rmpsc_consumer_claim_timed(cn->c, n, &cl, tmo, NULL);
		break;
	case 14:
		cn->st.steal_t++;
		r = rmpsc_consumer_steal_timed(cn->c, buf, n, tmo, NULL);
		break;
	default:
		cn->st.consume_t++;
		r = rmpsc_consumer_consume_timed(cn->c, n, ccons_fn, cn, tmo, NULL);
		break;
	}
	set_where(h, cn->t, W_IDLE);
	if (cn->broken)
		return STEP_BROKEN;
	if (r > 0) {
		const bool claimed = op >= 9 && op <= 13;
		const bool consumed = (op >= 6 && op <= 8) || op == 15;

		if (r > (int)n) {
			churn_fail(h, "consumer %u: op %d of %u returned %d", cn->t, op, n, r);
			return STEP_BROKEN;
		}
		if (claimed)
			return ccons_claimed(cn, &cl, r, n, op != 13 && ((x >> 40) & 1))
				       ? STEP_GOT : STEP_BROKEN;
		if (consumed) {
			if (cn->handled != (uint32_t)r) {
				churn_fail(h, "consumer %u: consume returned %d, handed %u", cn->t,
					   r, cn->handled);
				return STEP_BROKEN;
			}
		} else {
			for (int i = 0; i < r; i++)
				if (!ctake(cn, buf[i], NO_ID, false))
					return STEP_BROKEN;
		}
		atomic_fetch_add_explicit(&h->done, (uint64_t)r, memory_order_release);
		bump(h, cn->t, (uint64_t)r);
		return STEP_GOT;
	}
	if (r == -EAGAIN && !timed) {
		cn->st.empty++;
		/* nothing there: give back what is held, the producers may
		 * wait for it */
		return ccons_complete_all(cn) ? STEP_NONE : STEP_BROKEN;
	}
	if (r == -ETIMEDOUT && timed && tmo >= 0) {
		cn->st.timeouts++;
		return STEP_NONE;
	}
	if (r == -EPIPE) {
		if (atomic_load_explicit(&h->closed, memory_order_relaxed))
			return STEP_EPIPE;
		churn_fail(h, "consumer %u: -EPIPE before the close", cn->t);
		return STEP_BROKEN;
	}
	churn_fail(h, "consumer %u: op %d (n %u, timeout %" PRId64 ") returned %s (%d)", cn->t,
		   op, n, tmo, errname(r), r);
	return STEP_BROKEN;
}

/* After the first -EPIPE: claims still held make deregister -EBUSY; once
 * they are complete, every call says -EPIPE again. */
static void ccons_final(struct ccons *cn)
{
	struct churn *h = cn->h;
	uint64_t v;
	rmpsc_claim cl;
	int r;

	if (cn->nheld) {
		cn->st.busy++;
		r = rmpsc_consumer_deregister(cn->c);
		if (r != -EBUSY) {
			churn_fail(h, "consumer %u: deregister with %u claims held returned %s",
				   cn->t, cn->nheld, errname(r));
			return;
		}
	}
	if (!ccons_complete_all(cn))
		return;
	if ((r = rmpsc_consumer_steal_one(cn->c, &v)) != -EPIPE ||
	    (r = rmpsc_consumer_claim(cn->c, 4, &cl)) != -EPIPE ||
	    (r = rmpsc_consumer_consume(cn->c, 4, ccons_fn, cn)) != -EPIPE ||
	    (r = rmpsc_consumer_steal_timed(cn->c, &v, 1, -1, NULL)) != -EPIPE)
		churn_fail(h, "consumer %u: after its -EPIPE a call returned %s", cn->t,
			   errname(r));
}

static void *ccons_main(void *arg)
{
	struct ccons *cn = arg;
	struct churn *h = cn->h;

	for (;;) {
		const int r = ccons_step(cn);

		if (r == STEP_EPIPE) {
			ccons_final(cn);
			break;
		}
		if (r == STEP_BROKEN)
			break;
		if (r == STEP_NONE) {
			set_where(h, cn->t, W_YIELD);
			sched_yield();
			set_where(h, cn->t, W_IDLE);
		}
	}
	set_where(h, cn->t, W_DONE);
	atomic_store_explicit(&h->slot[cn->t].done, 1, memory_order_release);
	return NULL;
}

/* ---- churn: the watchdog ---- */

struct cwatch {
	struct churn *h;
	uint32_t lo, hi;    /* threads to wait for */
	bool all_received;  /* and then every element received and completed */
};

static bool cwatch_done(void *arg)
{
	const struct cwatch *w = arg;
	struct churn *h = w->h;

	if (atomic_load_explicit(&h->failed, memory_order_acquire) &&
	    !atomic_load_explicit(&h->closed, memory_order_relaxed))
		churn_close(h);
	for (uint32_t i = w->lo; i < w->hi; i++)
		if (!atomic_load_explicit(&h->slot[i].done, memory_order_acquire))
			return false;
	if (w->all_received && !stopped(h))
		return atomic_load_explicit(&h->done, memory_order_acquire) ==
		       atomic_load_explicit(&h->pushed, memory_order_acquire);
	return true;
}

static uint64_t cwatch_progress(void *arg)
{
	const struct cwatch *w = arg;
	uint64_t sum = 0;

	for (uint32_t i = 0; i < CH_THREADS; i++)
		sum += ld(&w->h->slot[i].ops);
	return sum;
}

static void cwatch_stall(void *arg, bool first)
{
	const struct cwatch *w = arg;
	struct churn *h = w->h;
	char buf[sizeof h->msg];
	size_t o = 0;

	o += (size_t)snprintf(buf + o, sizeof buf - o,
			      "no progress for %d s: %" PRIu64 " registrations, %" PRIu64
			      " elements published, %" PRIu64 " received, len %" PRId64
			      ", closed %d;", CH_WATCHDOG_SEC, ld(&h->serial), ld(&h->pushed),
			      ld(&h->done), rmpsc_mpmc_len(h->m),
			      atomic_load_explicit(&h->closed, memory_order_relaxed));
	for (uint32_t i = 0; i < CH_THREADS && o < sizeof buf; i++)
		o += (size_t)snprintf(buf + o, sizeof buf - o, " %s %u in %s (%" PRIu64 " ops);",
				      i < CH_PRODUCERS ? "producer" : "consumer", i,
				      where_names[atomic_load_explicit(&h->slot[i].where,
								       memory_order_relaxed)],
				      ld(&h->slot[i].ops));
	fprintf(stderr, "test_mc_reuse: %s\n", buf);
	if (first) {
		churn_fail(h, "%s", buf);
		churn_close(h);
	}
}

static bool cwatch(struct churn *h, uint32_t lo, uint32_t hi, bool all_received)
{
	struct cwatch cw = { h, lo, hi, all_received };
	const struct watchdog w = { cwatch_done, cwatch_progress, cwatch_stall, &cw,
				    CH_WATCHDOG_SEC, 2 * MS };

	return watchdog_run(&w);
}

/* ---- churn: the case ---- */

static struct churn *churn_new(uint64_t nserial)
{
	struct churn *h = aligned_alloc(64, (sizeof *h + 63) / 64 * 64);

	assert_non_null(h);
	memset(h, 0, sizeof *h);
	h->nserial = nserial;
	atomic_init(&h->serial, 0);
	h->count = calloc(nserial, sizeof *h->count);
	h->mask = calloc(nserial, sizeof *h->mask);
	assert_non_null(h->count);
	assert_non_null(h->mask);
	for (uint32_t i = 0; i < CH_MAXP; i++) {
		atomic_init(&h->held[i], 0);
		atomic_init(&h->seen[i], 0);
	}
	atomic_init(&h->pushed, 0);
	atomic_init(&h->done, 0);
	atomic_init(&h->failed, 0);
	atomic_init(&h->closed, 0);
	atomic_init(&h->stop, false);
	for (uint32_t i = 0; i < CH_THREADS; i++) {
		atomic_init(&h->slot[i].ops, 0);
		atomic_init(&h->slot[i].where, W_IDLE);
		atomic_init(&h->slot[i].done, 0);
	}
	return h;
}

static void churn_free(struct churn *h)
{
	rmpsc_mpmc_destroy(h->m);
	free(h->count);
	free(h->mask);
	free(h);
}

/* Every serial handed out received exactly: all its sequences, no other. */
static bool churn_ledger(struct churn *h, uint64_t *elems)
{
	const uint64_t serials = ld(&h->serial);

	*elems = 0;
	for (uint64_t s = 0; s < serials; s++) {
		const uint32_t n = atomic_load_explicit(&h->count[s], memory_order_relaxed);
		const uint32_t got = atomic_load_explicit(&h->mask[s], memory_order_relaxed);

		if (n == 0 || got != (1u << n) - 1)
			return churn_fail(h, "serial %" PRIu64 ": %u published, received the "
					  "sequences %#x", s, n, got);
		*elems += n;
	}
	return true;
}

/*
 * Promise (the issue's churn): with registrations, deregistrations and
 * traffic at once, a ring goes to a later registration only once its last
 * incarnation was claimed and every claim on it completed, and always
 * does (max_producers bounds the rings in use, not the registrations: the
 * producers never stay in -ENOSPC); each element goes to exactly one
 * consumer; per producer (a ring's incarnation) a consumer gets the
 * elements in order; close gives the rest, then -EPIPE. @state: the
 * struct churn_case.
 */
static void test_mc_reuse_churn_with_traffic_delivers_each_element_once(void **state)
{
	const struct churn_case *k = (const void *)test_param(state);
	const uint64_t cycles = k->cycles;
	struct churn *h = churn_new(cycles + k->maxp);
	struct cprod pr[CH_PRODUCERS];
	struct ccons cn[CH_CONSUMERS];
	pthread_t th[CH_THREADS];
	uint64_t nospc = 0, full = 0, regs = 0, elems = 0, by_id[CH_MAXP] = { 0 };
	struct ccstats cs = { 0 };
	const uint64_t seed = stress_seed();
	rmpsc_mc_config cfg;
	const int64_t t0 = now_ns();
	unsigned seen_ids = 0;
	double dt;

	assert_true(k->maxp <= CH_MAXP && k->made <= k->maxp);
	h->maxp = k->maxp;
	assert_ret(rmpsc_mc_config_init(&cfg, sizeof cfg, 0), 0);
	cfg.ring_capacity = CH_CAP;
	cfg.producers = k->made;
	cfg.max_producers = k->maxp;
	cfg.max_consumers = CH_CONSUMERS;
	assert_ret(rmpsc_mpmc_create(&cfg, &h->m), 0);
	for (uint32_t i = 0; i < CH_CONSUMERS; i++) {
		struct ccons *c = &cn[i];

		memset(c, 0, sizeof *c);
		c->h = h;
		c->t = CH_PRODUCERS + i;
		c->rng = seed ^ (0x636f6e73ull + c->t * 0x9e3779b97f4a7c15ull);
		assert_ret(rmpsc_mpmc_register_consumer(h->m, &c->c), i);
	}
	for (uint32_t i = 0; i < CH_PRODUCERS; i++) {
		memset(&pr[i], 0, sizeof pr[i]);
		pr[i].h = h;
		pr[i].t = i;
		pr[i].rng = seed ^ (0x70726f64ull + i * 0xbf58476d1ce4e5b9ull);
		pr[i].cycles = cycles / CH_PRODUCERS + (i < cycles % CH_PRODUCERS);
	}
	for (uint32_t i = 0; i < CH_CONSUMERS; i++)
		assert_int_equal(pthread_create(&th[CH_PRODUCERS + i], NULL, ccons_main, &cn[i]),
				 0);
	for (uint32_t i = 0; i < CH_PRODUCERS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, cprod_main, &pr[i]), 0);
	/* the producers' cycles, then every element received and completed */
	if (!cwatch(h, 0, CH_PRODUCERS, true))
		fail_msg("churn: threads still stuck after a close; leaving them: %s", h->msg);
	if (!stopped(h)) {
		/* every ring free again: max_producers registrations at once,
		 * each id once, each ring empty; one element on each, delivered
		 * by the close */
		for (uint32_t i = 0; i < k->maxp; i++) {
			uint64_t s = atomic_fetch_add_explicit(&h->serial, 1, memory_order_relaxed);
			rmpsc_producer *p = SENTINEL_PROD;
			const int id = rmpsc_mpmc_register_producer(h->m, &p);
			const bool ok = id >= 0 && (uint32_t)id < k->maxp;

			if (!ok || (seen_ids & (1u << id)) || rmpsc_producer_len(p) != 0) {
				churn_fail(h, "after the churn, all drained: registration %u of %u "
					   "returned %s (%d)%s", i + 1, k->maxp, errname(id), id,
					   ok ? " (an id twice, or not empty)" : "");
				break;
			}
			seen_ids |= 1u << id;
			if (rmpsc_producer_push(p, &(uint64_t){ cval((uint32_t)id, s, 0) }) != 0) {
				churn_fail(h, "after the churn: a push on fresh ring %d failed",
					   id);
				break;
			}
			atomic_store_explicit(&h->count[s], 1, memory_order_relaxed);
			atomic_fetch_add_explicit(&h->pushed, 1, memory_order_relaxed);
		}
		if (seen_ids == (1u << k->maxp) - 1) {
			rmpsc_producer *x = SENTINEL_PROD;
			const int r = rmpsc_mpmc_register_producer(h->m, &x);

			if (r != -ENOSPC || x != NULL)
				churn_fail(h, "registration %u of max_producers %u returned %s",
					   k->maxp + 1, k->maxp, errname(r));
		}
	}
	if (!atomic_load_explicit(&h->closed, memory_order_relaxed))
		churn_close(h);
	if (!cwatch(h, CH_PRODUCERS, CH_THREADS, false))
		fail_msg("churn: consumers still stuck after the close; leaving them: %s", h->msg);
	for (uint32_t i = 0; i < CH_THREADS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	dt = (double)(now_ns() - t0) * 1e-9;
	if (!atomic_load_explicit(&h->failed, memory_order_acquire)) {
		uint64_t got = 0;

		if (churn_ledger(h, &elems)) {
			for (uint32_t i = 0; i < CH_CONSUMERS; i++)
				got += cn[i].got;
			if (got != elems || elems != ld(&h->pushed))
				churn_fail(h, "consumers counted %" PRIu64 ", ledger %" PRIu64
					   ", published %" PRIu64, got, elems, ld(&h->pushed));
			else if (rmpsc_mpmc_len(h->m) != 0 || rmpsc_mpmc_is_drained(h->m) != 1)
				churn_fail(h, "after the close and -EPIPE: len %" PRId64
					   ", is_drained %d", rmpsc_mpmc_len(h->m),
					   rmpsc_mpmc_is_drained(h->m));
		}
	}
	if (!elems)
		elems = ld(&h->pushed); /* failed: what was published */
	for (uint32_t i = 0; i < CH_PRODUCERS; i++) {
		nospc += pr[i].nospc;
		full += pr[i].full;
		regs += pr[i].regs;
		for (uint32_t j = 0; j < CH_MAXP; j++)
			by_id[j] += pr[i].by_id[j];
	}
	for (uint32_t i = 0; i < CH_CONSUMERS; i++) {
		cs.steal += cn[i].st.steal;
		cs.steal_one += cn[i].st.steal_one;
		cs.consume += cn[i].st.consume;
		cs.claim += cn[i].st.claim;
		cs.claim_t += cn[i].st.claim_t;
		cs.steal_t += cn[i].st.steal_t;
		cs.consume_t += cn[i].st.consume_t;
		cs.held += cn[i].st.held;
		cs.empty += cn[i].st.empty;
		cs.timeouts += cn[i].st.timeouts;
		cs.busy += cn[i].st.busy;
	}
	print_message("churn [%s] max_producers %u (%u made up front), seed %#" PRIx64 ": %"
		      PRIu64 " register/deregister cycles (by id %" PRIu64 " %" PRIu64 " %" PRIu64
		      " %" PRIu64 "), %" PRIu64 " elements, %" PRIu64 " -ENOSPC retries, %" PRIu64
		      " full-ring retries: %.2f s\n", STRESS_BUILD, k->maxp, k->made, seed, regs,
		      by_id[0], by_id[1], by_id[2], by_id[3], elems, nospc, full, dt);
	print_message("  consumers: steal %" PRIu64 ", steal_one %" PRIu64 ", consume %" PRIu64
		      ", claim %" PRIu64 " (%" PRIu64 " held a while), claim_timed %" PRIu64
		      ", steal_timed %" PRIu64 ", consume_timed %" PRIu64 ", empty %" PRIu64
		      ", timed out %" PRIu64 ", -EBUSY at the end %" PRIu64 "\n", cs.steal,
		      cs.steal_one, cs.consume, cs.claim, cs.held, cs.claim_t, cs.steal_t,
		      cs.consume_t, cs.empty, cs.timeouts, cs.busy);
	if (atomic_load_explicit(&h->failed, memory_order_acquire)) {
		char m[sizeof h->msg + 64];

		snprintf(m, sizeof m, "churn (seed %#" PRIx64 "): %s", seed, h->msg);
		churn_free(h);
		fail_msg("%s", m);
	}
	assert_int_equal(regs, cycles);
	register_expect(h->m, -EPIPE);
	for (uint32_t i = 0; i < CH_CONSUMERS; i++)
		assert_ret(rmpsc_consumer_deregister(cn[i].c), 0);
	churn_free(h);
}

/* ---- main ----------------------------------------------------------------- */

int main(void)
{
#define T(f) cmocka_unit_test(f)
/* The case of the last take by @by, named after it. */
#define R(by, k)                                                               \
	TEST_PARAM(test_mc_reuse_register_after_last_##by##_gets_the_id_and_an_empty_ring, \
		   test_mc_reuse_register_after_last_take_gets_the_id_and_an_empty_ring, &(k))
	const struct CMUnitTest tests[] = {
		/* reuse after the last take */
		R(steal, rc_steal_0),
		R(steal_one, rc_steal_one_0),
		R(consume, rc_consume_0),
		R(claim_complete, rc_claim_0),
		R(steal_of_rings_made_up_front, rc_steal_2),
		R(consume_of_a_ring_made_up_front, rc_consume_1),
		R(claim_complete_of_rings_made_up_front, rc_claim_2),
		T(test_mc_reuse_register_after_deregister_of_empty_ring_reuses_at_once),
		/* held claims */
		TEST_PARAM(test_mc_reuse_held_claim_blocks_reuse_until_completed_after_rest_taken,
			   test_mc_reuse_held_claim_blocks_reuse_until_completed, 0),
		TEST_PARAM(test_mc_reuse_held_claim_blocks_reuse_until_rest_taken_after_completed,
			   test_mc_reuse_held_claim_blocks_reuse_until_completed, 1),
		T(test_mc_reuse_claims_completed_out_of_order_free_the_ring_at_the_last),
		/* a sleeping consumer */
		T(test_mc_reuse_timed_steal_is_woken_by_the_producer_of_a_reused_ring),
		/* many incarnations */
		T(test_mc_reuse_one_ring_serves_a_thousand_registrations),
		TEST_PARAM(test_mc_reuse_churn_with_traffic_delivers_each_element_once,
			   test_mc_reuse_churn_with_traffic_delivers_each_element_once,
			   &churn_wide),
		TEST_PARAM(
			test_mc_reuse_churn_with_one_ring_per_producer_delivers_each_element_once,
			test_mc_reuse_churn_with_traffic_delivers_each_element_once, &churn_tight),
	};
#undef R
#undef T

	return cmocka_run_group_tests_name("test_mc_reuse", tests, NULL, NULL);
}
