/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the SPMC and MPMC channels (the second half of
 * ringmpsc/channel.h): every function and every documented code of
 * rmpsc_mc_config_init, the create/destroy pairs, consumer registration,
 * MPMC producers (registered like MPSC producers, used through the
 * rmpsc_producer_ calls, not reused after they leave), the SPMC producer
 * calls on the channel handle, the consumer calls (steal, steal_one,
 * consume in place with two segments across the wrap, their _timed twins)
 * and the status calls (len, is_drained, close).
 *
 * A few cases use a second thread: a _timed call woken by the other side,
 * and the out-of-order completion rule with two consumers (a run held by a
 * preempted consumer keeps its slots from the producer, and releasing it
 * releases the completed runs after it). Threads meet through flags, never
 * sleeps; where the wake path itself is the point, the waiting side is seen
 * registered as a sleeper (the waiter counts, test_core.h) before the other
 * side acts. No timing is asserted.
 *
 * Links the static library: test_core.h gives the MPMC producer handle's
 * ring core (waiter counts, and the position hook of the 2^64 wrap case).
 */
#include <errno.h>
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

#include <cmocka.h>

#include "test_util.h"

#include "ringmpsc/channel.h"
#include "ringmpsc/ring.h"
#include "ringmpsc/wait.h"

#include "test_mc_util.h"

#include "test_core.h" /* an MPMC producer's ring core: sleepers, positions */
#include "test_table.h"

_Static_assert(sizeof(rmpsc_mc_config) == RMPSC_MC_CONFIG_SIZE_V1, "mc config is 32 bytes");

/* ---- helpers ------------------------------------------------------------ */

#define SENTINEL_PROD SENTINEL_OF(rmpsc_producer)

/* Until *count is non-zero: the other side is registered as a sleeper. */
static void await_sleeper(_Atomic uint32_t *count)
{
	while (!atomic_load_explicit(count, memory_order_acquire))
		sched_yield();
}

/* What a consume handler saw: every element, every call. */
enum { SINK_MAX = 512, SINK_CALLS = 64 };

struct sink {
	uint64_t v[SINK_MAX];
	uint32_t id[SINK_MAX];
	uint32_t n;
	uint32_t calls;
	uint32_t call_count[SINK_CALLS];
	uint32_t call_id[SINK_CALLS];
	const void *call_ptr[SINK_CALLS];
};

static void sink_fn(void *ctx, uint32_t producer_id, const void *items, uint32_t count)
{
	struct sink *s = ctx;

	assert_non_null(items);
	assert_true(count > 0);
	if (s->calls < SINK_CALLS) {
		s->call_count[s->calls] = count;
		s->call_id[s->calls] = producer_id;
		s->call_ptr[s->calls] = items;
	}
	s->calls++;
	for (uint32_t i = 0; i < count; i++) {
		assert_true(s->n < SINK_MAX);
		memcpy(&s->v[s->n], (const unsigned char *)items + (size_t)i * 8, 8);
		s->id[s->n] = producer_id;
		s->n++;
	}
}

static void never_fn(void *ctx, uint32_t producer_id, const void *items, uint32_t count)
{
	(void)ctx;
	(void)producer_id;
	(void)items;
	(void)count;
	fail_msg("handler called with nothing to hand out");
}

/* ---- rmpsc_mc_config_init ------------------------------------------------ */

/* init writes @want, every byte of it, whatever the struct held before. */
static void mc_defaults_expect(int spmc, const rmpsc_mc_config *want)
{
	rmpsc_mc_config cfg;

	memset(&cfg, 0xa5, sizeof cfg);
	assert_ret(rmpsc_mc_config_init(&cfg, sizeof cfg, spmc), 0);
	assert_memory_equal(&cfg, want, sizeof cfg);
}

static void test_mc_config_init_with_spmc_writes_spmc_defaults(void **state)
{
	const rmpsc_mc_config want = {
		.size = sizeof want, .flags = 0, .elem_size = 8, .ring_capacity = 1024,
		.producers = 1, .max_producers = 1, .max_consumers = 64,
		.numa_node = RMPSC_NODE_ANY,
	};

	(void)state;
	mc_defaults_expect(1, &want);
}

static void test_mc_config_init_with_mpmc_writes_mpmc_defaults(void **state)
{
	const rmpsc_mc_config want = {
		.size = sizeof want, .flags = 0, .elem_size = 8, .ring_capacity = 1024,
		.producers = 4, .max_producers = 256, .max_consumers = 64,
		.numa_node = RMPSC_NODE_ANY,
	};

	(void)state;
	mc_defaults_expect(0, &want);
}

static void test_mc_config_init_with_larger_size_zeroes_tail_and_writes_no_more(void **state)
{
	union {
		rmpsc_mc_config cfg;
		unsigned char b[64];
	} u;

	(void)state;
	/* exactly the known size: nothing past it is touched */
	memset(&u, 0xa5, sizeof u);
	assert_ret(rmpsc_mc_config_init(&u.cfg, 32, 1), 0);
	assert_int_equal(u.cfg.size, 32);
	assert_int_equal(u.cfg.producers, 1);
	for (size_t j = 32; j < sizeof u.b; j++)
		assert_int_equal(u.b[j], 0xa5);
	/* a larger struct: zeros up to its size, nothing after */
	memset(&u, 0xa5, sizeof u);
	assert_ret(rmpsc_mc_config_init(&u.cfg, 48, 0), 0);
	assert_int_equal(u.cfg.size, 48);
	assert_int_equal(u.cfg.max_producers, 256);
	for (size_t j = 32; j < 48; j++)
		assert_int_equal(u.b[j], 0);
	for (size_t j = 48; j < sizeof u.b; j++)
		assert_int_equal(u.b[j], 0xa5);
	/* and such a struct is accepted by create (zero tail) */
	{
		rmpsc_mpmc *ch = SENTINEL_MPMC;

		assert_ret(rmpsc_mpmc_create(&u.cfg, &ch), 0);
		rmpsc_mpmc_destroy(ch);
	}
}

/* ---- create / destroy ---------------------------------------------------- */

union cfgbuf {
	rmpsc_mc_config cfg;
	uint64_t q[8]; /* 64 bytes, 8-aligned */
	unsigned char b[64];
};

static void cfgbuf_init(union cfgbuf *u, bool spmc)
{
	memset(u, 0, sizeof *u);
	assert_ret(rmpsc_mc_config_init(&u->cfg, sizeof u->cfg, spmc), 0);
}

static bool mcf_spmc; /* create_from() makes an SPMC channel, else an MPMC one */

static int spmc_fresh(rmpsc_spmc *ch)
{
	return rmpsc_spmc_len(ch) == 0 && rmpsc_spmc_is_drained(ch) == 0;
}

static int mpmc_fresh(rmpsc_mpmc *ch)
{
	return rmpsc_mpmc_len(ch) == 0 && rmpsc_mpmc_is_drained(ch) == 0;
}

TT_CONSTRUCTOR(spmc_from, rmpsc_spmc, rmpsc_spmc_create, spmc_fresh, rmpsc_spmc_destroy)
TT_CONSTRUCTOR(mpmc_from, rmpsc_mpmc, rmpsc_mpmc_create, mpmc_fresh, rmpsc_mpmc_destroy)

/* Create an SPMC or an MPMC channel, as the fixture says. */
static int64_t create_from(void *cfg, uint64_t v)
{
	return mcf_spmc ? spmc_from(cfg, v) : mpmc_from(cfg, v);
}

/* Create from @cfg, SPMC or MPMC, expecting @want: *out NULL on error, an
 * open, empty channel on success (destroyed). */
#define create_expect(spmc, cfg, want)                                         \
	do {                                                                   \
		mcf_spmc = (spmc);                                             \
		TT_EXPECT(create_from((void *)(cfg), 0), (want));              \
	} while (0)

static void test_mc_create_with_defaults_returns_open_empty_channel(void **state)
{
	union cfgbuf u;

	(void)state;
	cfgbuf_init(&u, true);
	create_expect(true, &u.cfg, 0);
	cfgbuf_init(&u, false);
	create_expect(false, &u.cfg, 0);
}

static void test_mc_create_with_hugepage_flag_returns_zero_or_enomem(void **state)
{
	union cfgbuf u;

	(void)state;
	for (int spmc = 0; spmc < 2; spmc++) {
		cfgbuf_init(&u, spmc);
		u.cfg.flags = RMPSC_MPSC_F_HUGEPAGE;
		u.cfg.ring_capacity = 64;
		u.cfg.producers = 1;
		if (!spmc)
			u.cfg.max_producers = 2;
		if (spmc) {
			rmpsc_spmc *ch = SENTINEL_SPMC;
			const int rc = rmpsc_spmc_create(&u.cfg, &ch);

			assert_true(rc == 0 || rc == -ENOMEM);
			if (rc)
				assert_null(ch);
			else
				rmpsc_spmc_destroy(ch);
		} else {
			rmpsc_mpmc *ch = SENTINEL_MPMC;
			const int rc = rmpsc_mpmc_create(&u.cfg, &ch);

			assert_true(rc == 0 || rc == -ENOMEM);
			if (rc)
				assert_null(ch);
			else
				rmpsc_mpmc_destroy(ch);
		}
	}
}

static void test_mc_create_when_mapping_too_large_returns_enomem(void **state)
{
	union cfgbuf u;

	(void)state;
	/* 2^30 slots of 2^24 bytes: 2^54 bytes, beyond any address space */
	cfgbuf_init(&u, true);
	u.cfg.ring_capacity = RMPSC_RING_CAPACITY_MAX;
	u.cfg.elem_size = RMPSC_RING_ELEM_SIZE_MAX;
	create_expect(true, &u.cfg, -ENOMEM);
	cfgbuf_init(&u, false);
	u.cfg.ring_capacity = RMPSC_RING_CAPACITY_MAX;
	u.cfg.elem_size = RMPSC_RING_ELEM_SIZE_MAX;
	u.cfg.producers = 1;
	create_expect(false, &u.cfg, -ENOMEM);
}

static void test_mc_destroy_with_null_is_a_noop(void **state)
{
	(void)state;
	rmpsc_spmc_destroy(NULL);
	rmpsc_mpmc_destroy(NULL);
}

static void test_mc_destroy_with_registered_consumers_and_producers_frees_all(void **state)
{
	rmpsc_spmc *s = spmc_new(8, 4);
	rmpsc_mpmc *m = mpmc_new(8, 1, 4, 4);

	(void)state;
	/* destroy frees the handles that were never deregistered (ASan checks) */
	(void)cons_new(s, false);
	(void)cons_new(s, false);
	seq_put(spmc_put1, s, 1, 3);
	rmpsc_spmc_destroy(s);
	(void)cons_new(m, true);
	seq_put(producer_put1, producer_new(m, true, 0), 1, 3);
	(void)producer_new(m, true, 1);
	rmpsc_mpmc_destroy(m);
}

/* ---- consumer registration ---------------------------------------------- */

static void test_mc_register_consumer_returns_indices_from_zero(void **state)
{
	rmpsc_spmc *s = spmc_new(8, 8);
	rmpsc_mpmc *m = mpmc_new(8, 1, 4, 8);
	rmpsc_consumer *c[4];

	(void)state;
	for (int i = 0; i < 4; i++)
		assert_ret(rmpsc_spmc_register_consumer(s, &c[i]), i);
	/* a freed index is handed out again */
	assert_ret(rmpsc_consumer_deregister(c[1]), 0);
	assert_ret(rmpsc_spmc_register_consumer(s, &c[1]), 1);
	for (int i = 0; i < 4; i++)
		assert_ret(rmpsc_consumer_deregister(c[i]), 0);
	for (int i = 0; i < 4; i++)
		assert_ret(rmpsc_mpmc_register_consumer(m, &c[i]), i);
	assert_ret(rmpsc_consumer_deregister(c[0]), 0);
	assert_ret(rmpsc_mpmc_register_consumer(m, &c[0]), 0);
	for (int i = 0; i < 4; i++)
		assert_ret(rmpsc_consumer_deregister(c[i]), 0);
	rmpsc_spmc_destroy(s);
	rmpsc_mpmc_destroy(m);
}

static void test_mc_register_consumer_at_max_consumers_returns_enospc(void **state)
{
	rmpsc_spmc *s = spmc_new(8, 2);
	rmpsc_mpmc *m = mpmc_new(8, 1, 4, 3);
	rmpsc_consumer *c[3], *x = SENTINEL_CONS;

	(void)state;
	assert_ret(rmpsc_spmc_register_consumer(s, &c[0]), 0);
	assert_ret(rmpsc_spmc_register_consumer(s, &c[1]), 1);
	assert_ret(rmpsc_spmc_register_consumer(s, &x), -ENOSPC);
	assert_null(x);
	assert_ret(rmpsc_consumer_deregister(c[0]), 0);
	assert_ret(rmpsc_spmc_register_consumer(s, &c[0]), 0);
	x = SENTINEL_CONS;
	assert_ret(rmpsc_spmc_register_consumer(s, &x), -ENOSPC);
	assert_null(x);

	for (int i = 0; i < 3; i++)
		assert_ret(rmpsc_mpmc_register_consumer(m, &c[i]), i);
	x = SENTINEL_CONS;
	assert_ret(rmpsc_mpmc_register_consumer(m, &x), -ENOSPC);
	assert_null(x);
	assert_ret(rmpsc_consumer_deregister(c[2]), 0);
	assert_ret(rmpsc_mpmc_register_consumer(m, &c[2]), 2);
	rmpsc_spmc_destroy(s);
	rmpsc_mpmc_destroy(m);
}

static void test_mc_register_consumer_after_close_returns_epipe(void **state)
{
	rmpsc_spmc *s = spmc_new(8, 4);
	rmpsc_mpmc *m = mpmc_new(8, 1, 4, 4);
	rmpsc_consumer *c = cons_new(s, false), *x = SENTINEL_CONS;

	(void)state;
	assert_ret(rmpsc_spmc_close(s), 0);
	assert_ret(rmpsc_spmc_register_consumer(s, &x), -EPIPE);
	assert_null(x);
	/* an existing consumer still works: it sees the end */
	assert_ret(rmpsc_consumer_steal_one(c, &(uint64_t){ 0 }), -EPIPE);
	assert_ret(rmpsc_mpmc_close(m), 0);
	x = SENTINEL_CONS;
	assert_ret(rmpsc_mpmc_register_consumer(m, &x), -EPIPE);
	assert_null(x);
	rmpsc_spmc_destroy(s);
	rmpsc_mpmc_destroy(m);
}

/* A close loses nothing: with every consumer gone, one registered after the
 * close still takes what is left; once drained, registration is refused. */
static void test_mc_register_consumer_after_close_takes_what_is_left(void **state)
{
	rmpsc_spmc *s = spmc_new(8, 4);
	rmpsc_consumer *c = cons_new(s, false), *x = SENTINEL_CONS;
	uint64_t v = 0;

	(void)state;
	for (uint64_t i = 0; i < 3; i++)
		assert_ret(rmpsc_spmc_push(s, &i), 0);
	assert_ret(rmpsc_consumer_deregister(c), 0);
	assert_ret(rmpsc_spmc_close(s), 0);
	assert_ret(rmpsc_spmc_is_drained(s), 0);
	assert_true(rmpsc_spmc_register_consumer(s, &x) >= 0);
	for (uint64_t i = 0; i < 3; i++) {
		assert_ret(rmpsc_consumer_steal_one(x, &v), 0);
		assert_int_equal(v, i);
	}
	assert_ret(rmpsc_consumer_steal_one(x, &v), -EPIPE);
	assert_ret(rmpsc_spmc_is_drained(s), 1);
	assert_ret(rmpsc_consumer_deregister(x), 0);
	x = SENTINEL_CONS;
	assert_ret(rmpsc_spmc_register_consumer(s, &x), -EPIPE);
	assert_null(x);
	rmpsc_spmc_destroy(s);
}

static void test_mc_consumer_deregister_keeps_elements_for_other_consumers(void **state)
{
	rmpsc_spmc *s = spmc_new(8, 4);
	rmpsc_consumer *a = cons_new(s, false), *b = cons_new(s, false);

	(void)state;
	seq_put(spmc_put1, s, 1, 6);
	seq_take(steal1, a, 1, 2);
	assert_ret(rmpsc_consumer_deregister(a), 0);
	seq_take(steal1, b, 3, 4);
	assert_ret(rmpsc_consumer_steal_one(b, &(uint64_t){ 0 }), -EAGAIN);
	rmpsc_spmc_destroy(s);
}

/* ---- MPMC producers ------------------------------------------------------ */

static void test_mc_mpmc_register_producer_returns_ids_then_enospc_at_max(void **state)
{
	rmpsc_mpmc *m = mpmc_new(8, 2, 3, 4);
	rmpsc_producer *x = SENTINEL_PROD;

	(void)state;
	/* two rings made up front, a third made on demand */
	(void)producer_new(m, true, 0);
	(void)producer_new(m, true, 1);
	(void)producer_new(m, true, 2);
	assert_ret(rmpsc_mpmc_register_producer(m, &x), -ENOSPC);
	assert_null(x);
	rmpsc_mpmc_destroy(m);
}

/* A left producer's ring goes to the next registration once drained and
 * completed, never before: its elements come out first, in order. */
static void test_mc_mpmc_register_producer_after_deregister_reuses_drained_ring(void **state)
{
	rmpsc_mpmc *m = mpmc_new(8, 1, 2, 4);
	rmpsc_consumer *c = cons_new(m, true);
	rmpsc_producer *p, *q, *x = SENTINEL_PROD;

	(void)state;
	p = producer_new(m, true, 0);
	assert_ret(rmpsc_producer_deregister(p), 0);
	/* drained (nothing was pushed): id 0 again */
	p = producer_new(m, true, 0);
	seq_put(producer_put1, p, 10, 2);
	assert_ret(rmpsc_producer_deregister(p), 0);
	q = producer_new(m, true, 1);
	/* ring 0 still holds 2 elements, ring 1 is in use */
	assert_ret(rmpsc_mpmc_register_producer(m, &x), -ENOSPC);
	assert_null(x);
	seq_take(steal1, c, 10, 2);
	assert_ret(rmpsc_consumer_steal_one(c, &(uint64_t){ 0 }), -EAGAIN);
	p = producer_new(m, true, 0);
	seq_put(producer_put1, p, 20, 3);
	seq_take(steal1, c, 20, 3);
	assert_ret(rmpsc_producer_deregister(p), 0);
	assert_ret(rmpsc_producer_deregister(q), 0);
	assert_ret(rmpsc_mpmc_len(m), 0);
	assert_ret(rmpsc_mpmc_close(m), 0);
	assert_ret(rmpsc_consumer_steal_one(c, &(uint64_t){ 0 }), -EPIPE);
	rmpsc_mpmc_destroy(m);
}

static void test_mc_mpmc_register_producer_after_close_returns_epipe(void **state)
{
	rmpsc_mpmc *m = mpmc_new(8, 1, 4, 4);
	rmpsc_producer *x = SENTINEL_PROD;

	(void)state;
	assert_ret(rmpsc_mpmc_close(m), 0);
	assert_ret(rmpsc_mpmc_register_producer(m, &x), -EPIPE);
	assert_null(x);
	rmpsc_mpmc_destroy(m);
}

static void test_mc_mpmc_register_producer_when_mapping_fails_returns_enomem(void **state)
{
	union cfgbuf u;
	rmpsc_mpmc *m = SENTINEL_MPMC;
	rmpsc_producer *x = SENTINEL_PROD;

	(void)state;
	cfgbuf_init(&u, false);
	u.cfg.ring_capacity = RMPSC_RING_CAPACITY_MAX;
	u.cfg.elem_size = RMPSC_RING_ELEM_SIZE_MAX;
	u.cfg.producers = 0;
	u.cfg.max_producers = 2;
	assert_ret(rmpsc_mpmc_create(&u.cfg, &m), 0);
	assert_ret(rmpsc_mpmc_register_producer(m, &x), -ENOMEM);
	assert_null(x);
	assert_ret(rmpsc_mpmc_len(m), 0);
	rmpsc_mpmc_destroy(m);
}

static void test_mc_mpmc_producer_calls_deliver_with_producer_id(void **state)
{
	rmpsc_mpmc *m = mpmc_new(16, 0, 4, 4);
	rmpsc_consumer *c = cons_new(m, true);
	rmpsc_producer *p0 = producer_new(m, true, 0), *p1 = producer_new(m, true, 1);
	const rmpsc_wait w = block_now();
	uint64_t v[4] = { 3, 4, 5, 6 };
	struct sink sk;
	rmpsc_span sp;

	(void)state;
	/* every producer call of p1: 1..12 */
	assert_ret(rmpsc_producer_push(p1, &(uint64_t){ 1 }), 0);
	assert_ret(rmpsc_producer_push_timed(p1, &(uint64_t){ 2 }, 0, NULL), 0);
	assert_ret(rmpsc_producer_push_n(p1, v, 2), 2);
	assert_ret(rmpsc_producer_push_n_timed(p1, v + 2, 2, -1, &w), 2);
	assert_ret(rmpsc_producer_reserve(p1, 3, &sp), 3);
	assert_int_equal(sp.nseg, 1);
	for (uint32_t i = 0; i < 3; i++)
		((uint64_t *)sp.iov[0].iov_base)[i] = 7 + i;
	assert_ret(rmpsc_producer_commit(p1, 3), 0);
	assert_ret(rmpsc_producer_reserve_timed(p1, 3, &sp, 0, NULL), 3);
	for (uint32_t i = 0; i < 3; i++)
		((uint64_t *)sp.iov[0].iov_base)[i] = 10 + i;
	assert_ret(rmpsc_producer_commit(p1, 3), 0);
	assert_ret(rmpsc_producer_len(p1), 12);
	assert_ret(rmpsc_producer_len(p0), 0);
	seq_put(producer_put1, p0, 100, 2);
	assert_ret(rmpsc_mpmc_len(m), 14);

	memset(&sk, 0, sizeof sk);
	while (rmpsc_consumer_consume(c, 5, sink_fn, &sk) > 0)
		;
	assert_ret(rmpsc_consumer_consume(c, 5, sink_fn, &sk), -EAGAIN);
	assert_int_equal(sk.n, 14);
	{
		uint64_t next0 = 100, next1 = 1;

		for (uint32_t i = 0; i < sk.n; i++) {
			if (sk.id[i] == 0) {
				assert_int_equal(sk.v[i], next0++);
			} else {
				assert_int_equal(sk.id[i], 1);
				assert_int_equal(sk.v[i], next1++);
			}
		}
		assert_int_equal(next0, 102);
		assert_int_equal(next1, 13);
	}
	assert_ret(rmpsc_producer_len(p1), 0);
	assert_ret(rmpsc_mpmc_len(m), 0);
	rmpsc_mpmc_destroy(m);
}

static void test_mc_mpmc_producer_when_ring_full_returns_eagain_or_etimedout(void **state)
{
	rmpsc_mpmc *m = mpmc_new(4, 1, 2, 4);
	rmpsc_producer *p = producer_new(m, true, 0);
	rmpsc_consumer *c = cons_new(m, true);
	uint64_t v[4] = { 1, 2, 3, 4 };
	rmpsc_span sp;

	(void)state;
	assert_ret(rmpsc_producer_push_n(p, v, 4), 4);
	assert_ret(rmpsc_producer_push(p, &v[0]), -EAGAIN);
	assert_ret(rmpsc_producer_push_n(p, v, 2), -EAGAIN);
	assert_ret(rmpsc_producer_reserve(p, 1, &sp), -EAGAIN);
	assert_ret(rmpsc_producer_push_timed(p, &v[0], 0, NULL), -ETIMEDOUT);
	assert_ret(rmpsc_producer_push_n_timed(p, v, 2, 0, NULL), -ETIMEDOUT);
	assert_ret(rmpsc_producer_reserve_timed(p, 1, &sp, 0, NULL), -ETIMEDOUT);
	assert_ret(rmpsc_producer_len(p), 4);
	/* a steal gives one slot back */
	seq_take(steal1, c, 1, 1);
	assert_ret(rmpsc_producer_push_n_timed(p, v, 3, 0, NULL), 1);
	assert_ret(rmpsc_producer_len(p), 4);
	seq_take(steal1, c, 2, 3);
	seq_take(steal1, c, 1, 1);
	rmpsc_mpmc_destroy(m);
}

static void test_mc_mpmc_deregister_delivers_committed_then_ring_ends(void **state)
{
	rmpsc_mpmc *m = mpmc_new(8, 0, 4, 4);
	rmpsc_consumer *c = cons_new(m, true);
	rmpsc_producer *p = producer_new(m, true, 0), *q = producer_new(m, true, 1);

	(void)state;
	seq_put(producer_put1, p, 1, 3);
	seq_put(producer_put1, q, 50, 1);
	assert_ret(rmpsc_producer_deregister(p), 0);
	assert_ret(rmpsc_mpmc_len(m), 4);
	{
		uint64_t got[8];
		int k, total = 0;
		uint64_t next = 1;

		while ((k = rmpsc_consumer_steal(c, got, 8)) > 0) {
			for (int i = 0; i < k; i++) {
				if (got[i] == 50)
					continue;
				assert_int_equal(got[i], next++);
			}
			total += k;
		}
		assert_ret(k, -EAGAIN); /* the channel is open: q is still there */
		assert_int_equal(total, 4);
		assert_int_equal(next, 4);
	}
	assert_ret(rmpsc_mpmc_is_drained(m), 0);
	assert_ret(rmpsc_mpsc_deregister(NULL), -EBADF);
	assert_ret(rmpsc_mpmc_close(m), 0);
	assert_ret(rmpsc_mpmc_is_drained(m), 1);
	assert_ret(rmpsc_consumer_steal_one(c, &(uint64_t){ 0 }), -EPIPE);
	rmpsc_mpmc_destroy(m);
}

static void test_mc_mpmc_producer_calls_after_close_return_epipe(void **state)
{
	rmpsc_mpmc *m = mpmc_new(8, 1, 4, 4);
	rmpsc_producer *p = producer_new(m, true, 0);
	rmpsc_consumer *c = cons_new(m, true);
	uint64_t v[2] = { 1, 2 };
	rmpsc_span sp;

	(void)state;
	assert_ret(rmpsc_producer_push(p, &v[0]), 0);
	assert_ret(rmpsc_producer_reserve(p, 2, &sp), 2);
	assert_ret(rmpsc_mpmc_close(m), 0);
	/* the reservation made before the close is dropped */
	assert_ret(rmpsc_producer_commit(p, 2), -EPIPE);
	assert_ret(rmpsc_producer_commit(p, 0), -EPIPE);
	assert_ret(rmpsc_producer_push(p, &v[0]), -EPIPE);
	assert_ret(rmpsc_producer_push_n(p, v, 2), -EPIPE);
	assert_ret(rmpsc_producer_reserve(p, 1, &sp), -EPIPE);
	assert_ret(rmpsc_producer_push_timed(p, &v[0], -1, NULL), -EPIPE);
	assert_ret(rmpsc_producer_push_n_timed(p, v, 2, -1, NULL), -EPIPE);
	assert_ret(rmpsc_producer_reserve_timed(p, 1, &sp, -1, NULL), -EPIPE);
	seq_take(steal1, c, 1, 1);
	assert_ret(rmpsc_consumer_steal_one(c, &v[0]), -EPIPE);
	rmpsc_mpmc_destroy(m);
}

/* ---- SPMC producer ------------------------------------------------------- */

static void test_mc_spmc_push_until_full_returns_eagain(void **state)
{
	rmpsc_spmc *s = spmc_new(4, 4);
	rmpsc_consumer *c = cons_new(s, false);
	uint64_t v = 99;
	rmpsc_span sp;

	(void)state;
	seq_put(spmc_put1, s, 1, 4);
	assert_ret(rmpsc_spmc_push(s, &v), -EAGAIN);
	assert_ret(rmpsc_spmc_push_n(s, &v, 1), -EAGAIN);
	assert_ret(rmpsc_spmc_reserve(s, 1, &sp), -EAGAIN);
	assert_ret(rmpsc_spmc_len(s), 4);
	seq_take(steal1, c, 1, 1);
	assert_ret(rmpsc_spmc_push(s, &v), 0);
	assert_ret(rmpsc_spmc_push(s, &v), -EAGAIN);
	seq_take(steal1, c, 2, 3);
	seq_take(steal1, c, 99, 1);
	rmpsc_spmc_destroy(s);
}

static void test_mc_spmc_push_n_when_nearly_full_pushes_what_fits(void **state)
{
	rmpsc_spmc *s = spmc_new(8, 4);
	rmpsc_consumer *c = cons_new(s, false);
	uint64_t v[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, got[8];

	(void)state;
	assert_ret(rmpsc_spmc_push_n(s, v, 0), 0);
	assert_ret(rmpsc_spmc_push_n(s, NULL, 0), 0);
	assert_ret(rmpsc_spmc_push_n(s, v, 5), 5);
	assert_ret(rmpsc_spmc_push_n(s, v + 5, 8), 3);
	assert_ret(rmpsc_spmc_push_n(s, v, 1), -EAGAIN);
	assert_ret(rmpsc_consumer_steal(c, got, 8), 8);
	vals_expect(got, 1, 8);
	rmpsc_spmc_destroy(s);
}

static void test_mc_spmc_reserve_and_commit_publish_in_place_across_wrap(void **state)
{
	rmpsc_spmc *s = spmc_new(8, 4);
	rmpsc_consumer *c = cons_new(s, false);
	uint64_t got[8];
	rmpsc_span sp;

	(void)state;
	assert_ret(rmpsc_spmc_reserve(s, 0, &sp), 0);
	assert_int_equal(sp.nseg, 0);
	assert_ret(rmpsc_spmc_commit(s, 0), 0);
	seq_put(spmc_put1, s, 0, 6);
	assert_ret(rmpsc_consumer_steal(c, got, 8), 6);
	/* positions 6..11: two segments, 2 + 4 */
	assert_ret(rmpsc_spmc_reserve(s, 6, &sp), 6);
	assert_int_equal(sp.pos, 6);
	assert_int_equal(sp.nseg, 2);
	assert_int_equal(sp.count[0], 2);
	assert_int_equal(sp.count[1], 4);
	assert_int_equal(sp.iov[0].iov_len, 16);
	assert_int_equal(sp.iov[1].iov_len, 32);
	for (uint32_t i = 0; i < 2; i++)
		((uint64_t *)sp.iov[0].iov_base)[i] = 6 + i;
	for (uint32_t i = 0; i < 4; i++)
		((uint64_t *)sp.iov[1].iov_base)[i] = 8 + i;
	/* nothing is visible before the commit; a partial commit publishes
	 * the front and keeps the rest reserved */
	assert_ret(rmpsc_spmc_len(s), 0);
	assert_ret(rmpsc_consumer_steal(c, got, 8), -EAGAIN);
	assert_ret(rmpsc_spmc_commit(s, 3), 0);
	assert_ret(rmpsc_spmc_len(s), 3);
	assert_ret(rmpsc_spmc_commit(s, 4), -EINVAL); /* more than is left */
	assert_ret(rmpsc_spmc_commit(s, 3), 0);
	assert_ret(rmpsc_spmc_commit(s, 1), -EINVAL); /* nothing reserved */
	assert_ret(rmpsc_spmc_len(s), 6);
	assert_ret(rmpsc_consumer_steal(c, got, 8), 6);
	vals_expect(got, 6, 6);
	rmpsc_spmc_destroy(s);
}

static void test_mc_spmc_timed_pushes_with_zero_timeout_when_full_return_etimedout(
	void **state)
{
	rmpsc_spmc *s = spmc_new(4, 4);
	rmpsc_consumer *c = cons_new(s, false);
	const rmpsc_wait w = block_now();
	uint64_t v[4] = { 1, 2, 3, 4 }, got[4];

	(void)state;
	assert_ret(rmpsc_spmc_push_timed(s, &v[0], 0, NULL), 0);
	assert_ret(rmpsc_spmc_push_n_timed(s, v + 1, 0, 0, &w), 0);
	assert_ret(rmpsc_spmc_push_n_timed(s, v + 1, 3, 0, &w), 3);
	assert_ret(rmpsc_spmc_push_timed(s, &v[0], 0, NULL), -ETIMEDOUT);
	assert_ret(rmpsc_spmc_push_timed(s, &v[0], 0, &w), -ETIMEDOUT);
	assert_ret(rmpsc_spmc_push_n_timed(s, v, 2, 0, NULL), -ETIMEDOUT);
	assert_ret(rmpsc_consumer_steal(c, got, 2), 2);
	vals_expect(got, 1, 2);
	/* room for 2 of 4: the count pushed before the time ran out */
	assert_ret(rmpsc_spmc_push_n_timed(s, v, 4, 0, NULL), 2);
	assert_ret(rmpsc_consumer_steal(c, got, 4), 4);
	assert_int_equal(got[0], 3);
	assert_int_equal(got[1], 4);
	assert_int_equal(got[2], 1);
	assert_int_equal(got[3], 2);
	rmpsc_spmc_destroy(s);
}

static void test_mc_spmc_producer_calls_after_close_return_epipe(void **state)
{
	rmpsc_spmc *s = spmc_new(4, 4);
	rmpsc_consumer *c = cons_new(s, false);
	uint64_t v[2] = { 1, 2 };
	rmpsc_span sp;

	(void)state;
	seq_put(spmc_put1, s, 7, 1);
	assert_ret(rmpsc_spmc_reserve(s, 2, &sp), 2);
	assert_ret(rmpsc_spmc_close(s), 0);
	assert_ret(rmpsc_spmc_commit(s, 2), -EPIPE);
	assert_ret(rmpsc_spmc_commit(s, 0), -EPIPE);
	assert_ret(rmpsc_spmc_reserve(s, 1, &sp), -EPIPE);
	assert_ret(rmpsc_spmc_reserve(s, 0, &sp), -EPIPE);
	assert_ret(rmpsc_spmc_push(s, &v[0]), -EPIPE);
	assert_ret(rmpsc_spmc_push_n(s, v, 2), -EPIPE);
	assert_ret(rmpsc_spmc_push_timed(s, &v[0], -1, NULL), -EPIPE);
	assert_ret(rmpsc_spmc_push_timed(s, &v[0], 0, NULL), -EPIPE);
	assert_ret(rmpsc_spmc_push_n_timed(s, v, 2, -1, NULL), -EPIPE);
	assert_ret(rmpsc_spmc_len(s), 1);
	seq_take(steal1, c, 7, 1);
	assert_ret(rmpsc_consumer_steal_one(c, &v[0]), -EPIPE);
	rmpsc_spmc_destroy(s);
}

static void test_mc_spmc_with_odd_elem_sizes_roundtrips_byte_exact(void **state)
{
	static const uint32_t sizes[] = { 1, 3, 24, 100 };

	(void)state;
	for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++) {
		const uint32_t esz = sizes[z];
		rmpsc_spmc *s = spmc_new_esz(8, esz, 2);
		rmpsc_consumer *c = cons_new(s, false);
		unsigned char in[8 * 100], out[8 * 100];
		rmpsc_span sp;

		for (size_t i = 0; i < sizeof in; i++)
			in[i] = (unsigned char)(i * 7 + esz);
		assert_ret(rmpsc_spmc_push(s, in), 0);
		assert_ret(rmpsc_spmc_push_n(s, in + esz, 3), 3);
		assert_ret(rmpsc_spmc_reserve(s, 2, &sp), 2);
		memcpy(sp.iov[0].iov_base, in + 4 * esz, 2 * esz);
		assert_ret(rmpsc_spmc_commit(s, 2), 0);
		assert_ret(rmpsc_spmc_push_timed(s, in + 6 * esz, 0, NULL), 0);
		assert_ret(rmpsc_spmc_push_n_timed(s, in + 7 * esz, 1, 0, NULL), 1);
		memset(out, 0, sizeof out);
		assert_ret(rmpsc_consumer_steal_one(c, out), 0);
		assert_ret(rmpsc_consumer_steal(c, out + esz, 7), 7);
		assert_memory_equal(out, in, 8 * esz);
		rmpsc_spmc_destroy(s);
	}
}

struct spmc_pusher {
	rmpsc_spmc *s;
	atomic_int started;
	int ret;
};

static void *spmc_pusher_main(void *arg)
{
	struct spmc_pusher *a = arg;
	const rmpsc_wait w = block_now();

	raise_flag(&a->started);
	a->ret = rmpsc_spmc_push_timed(a->s, &(uint64_t){ 42 }, -1, &w);
	return NULL;
}

static void test_mc_spmc_push_timed_when_full_is_woken_by_consumer_thread(void **state)
{
	rmpsc_spmc *s = spmc_new(2, 4);
	rmpsc_consumer *c = cons_new(s, false);
	struct spmc_pusher a = { .s = s, .ret = 1 };
	pthread_t t;

	(void)state;
	atomic_init(&a.started, 0);
	seq_put(spmc_put1, s, 1, 2);
	assert_int_equal(pthread_create(&t, NULL, spmc_pusher_main, &a), 0);
	await_flag(&a.started);
	for (int i = 0; i < 16; i++)
		sched_yield(); /* likely asleep by now; correct either way */
	seq_take(steal1, c, 1, 1);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_ret(a.ret, 0);
	seq_take(steal1, c, 2, 1);
	seq_take(steal1, c, 42, 1);
	rmpsc_spmc_destroy(s);
}

/* ---- MPMC producer woken: the sleeper is seen registered first ---------- */

struct prod_waiter {
	rmpsc_producer *p;
	int ret;
};

static void *prod_waiter_main(void *arg)
{
	struct prod_waiter *a = arg;
	const rmpsc_wait w = block_now();

	a->ret = rmpsc_producer_push_timed(a->p, &(uint64_t){ 42 }, -1, &w);
	return NULL;
}

static void test_mc_mpmc_producer_push_timed_is_woken_by_steal(void **state)
{
	rmpsc_mpmc *m = mpmc_new(2, 1, 2, 4);
	rmpsc_producer *p = producer_new(m, true, 0);
	rmpsc_consumer *c = cons_new(m, true);
	struct prod_waiter a = { .p = p, .ret = 1 };
	pthread_t t;

	(void)state;
	seq_put(producer_put1, p, 1, 2);
	assert_int_equal(pthread_create(&t, NULL, prod_waiter_main, &a), 0);
	/* the producer registered to sleep for room */
	await_sleeper(tc_prod_waiters(tc_producer_core(p)));
	seq_take(steal1, c, 1, 1);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_ret(a.ret, 0);
	seq_take(steal1, c, 2, 1);
	seq_take(steal1, c, 42, 1);
	rmpsc_mpmc_destroy(m);
}

/* ---- consumers: steal, steal_one, consume ------------------------------- */

static void test_mc_steal_when_empty_returns_eagain(void **state)
{
	rmpsc_spmc *s = spmc_new(8, 4);
	rmpsc_mpmc *m0 = mpmc_new(8, 0, 4, 4); /* no ring at all */
	rmpsc_mpmc *m4 = mpmc_new(8, 4, 8, 4); /* free rings, no producer */
	rmpsc_mpmc *mp = mpmc_new(8, 0, 4, 4);
	rmpsc_consumer *cs = cons_new(s, false), *c0 = cons_new(m0,
		true), *c4 = cons_new(m4, true),
		       *cp = cons_new(mp, true);
	rmpsc_consumer *const all[] = { cs, c0, c4, cp };
	uint64_t v[4];

	(void)state;
	(void)producer_new(mp, true, 0);
	(void)producer_new(mp, true, 1);
	for (size_t i = 0; i < 4; i++) {
		assert_ret(rmpsc_consumer_steal(all[i], v, 4), -EAGAIN);
		assert_ret(rmpsc_consumer_steal_one(all[i], v), -EAGAIN);
		assert_ret(rmpsc_consumer_consume(all[i], 4, never_fn, NULL), -EAGAIN);
		assert_ret(rmpsc_consumer_steal_timed(all[i], v, 4, 0, NULL), -ETIMEDOUT);
		assert_ret(rmpsc_consumer_consume_timed(all[i], 4, never_fn, NULL, 0, NULL),
			   -ETIMEDOUT);
	}
	rmpsc_spmc_destroy(s);
	rmpsc_mpmc_destroy(m0);
	rmpsc_mpmc_destroy(m4);
	rmpsc_mpmc_destroy(mp);
}

static void test_mc_steal_copies_up_to_n_in_order(void **state)
{
	rmpsc_spmc *s = spmc_new(16, 4);
	rmpsc_consumer *c = cons_new(s, false);
	uint64_t got[16];

	(void)state;
	seq_put(spmc_put1, s, 1, 10);
	memset(got, 0xff, sizeof got);
	assert_ret(rmpsc_consumer_steal(c, got, 3), 3);
	vals_expect(got, 1, 3);
	assert_int_equal(got[3], ~0ull); /* nothing past n written */
	assert_ret(rmpsc_spmc_len(s), 7);
	assert_ret(rmpsc_consumer_steal(c, got, 16), 7);
	vals_expect(got, 4, 7);
	assert_ret(rmpsc_spmc_len(s), 0);
	assert_ret(rmpsc_consumer_steal(c, got, 16), -EAGAIN);
	rmpsc_spmc_destroy(s);
}

static void test_mc_steal_one_returns_zero_and_the_element(void **state)
{
	rmpsc_mpmc *m = mpmc_new(8, 1, 2, 4);
	rmpsc_producer *p = producer_new(m, true, 0);
	rmpsc_consumer *c = cons_new(m, true);
	uint64_t v = 0;

	(void)state;
	seq_put(producer_put1, p, 5, 2);
	assert_ret(rmpsc_consumer_steal_one(c, &v), 0);
	assert_int_equal(v, 5);
	assert_ret(rmpsc_consumer_steal_one(c, &v), 0);
	assert_int_equal(v, 6);
	assert_ret(rmpsc_consumer_steal_one(c, &v), -EAGAIN);
	assert_ret(rmpsc_mpmc_close(m), 0);
	assert_ret(rmpsc_consumer_steal_one(c, &v), -EPIPE);
	rmpsc_mpmc_destroy(m);
}

static void test_mc_consume_hands_two_segments_across_wrap_with_id(void **state)
{
	rmpsc_spmc *s = spmc_new(8, 4);
	rmpsc_consumer *c = cons_new(s, false);
	struct sink sk;
	uint64_t got[8];

	(void)state;
	seq_put(spmc_put1, s, 0, 6);
	assert_ret(rmpsc_consumer_steal(c, got, 6), 6);
	seq_put(spmc_put1, s, 6, 6); /* positions 6..11: slots 6, 7, then 0..3 */
	memset(&sk, 0, sizeof sk);
	assert_ret(rmpsc_consumer_consume(c, 8, sink_fn, &sk), 6);
	assert_int_equal(sk.calls, 2);
	assert_int_equal(sk.call_count[0], 2);
	assert_int_equal(sk.call_count[1], 4);
	assert_int_equal(sk.call_id[0], 0); /* SPMC: producer id 0 */
	assert_int_equal(sk.call_id[1], 0);
	/* in place: the second segment is slot 0, 6 slots before the end of
	 * the first */
	assert_ptr_equal((const unsigned char *)sk.call_ptr[1] + 6 * 8,
			 (const unsigned char *)sk.call_ptr[0]);
	assert_int_equal(sk.n, 6);
	vals_expect(sk.v, 6, 6);
	assert_ret(rmpsc_spmc_len(s), 0);
	rmpsc_spmc_destroy(s);
}

static void test_mc_consume_in_mpmc_hands_the_producer_id_of_each_ring(void **state)
{
	rmpsc_mpmc *m = mpmc_new(4, 0, 8, 4);
	rmpsc_consumer *c = cons_new(m, true);
	rmpsc_producer *p[3];
	struct sink sk;
	uint64_t got[4];

	(void)state;
	for (int i = 0; i < 3; i++)
		p[i] = producer_new(m, true, i);
	/* ring 2 wraps: 3 taken first, then 4 at positions 3..6 */
	seq_put(producer_put1, p[2], 0, 3);
	assert_ret(rmpsc_consumer_steal(c, got, 4), 3);
	seq_put(producer_put1, p[2], ((uint64_t)2 << 40) | 3, 4);
	seq_put(producer_put1, p[1], ((uint64_t)1 << 40) | 0, 2);
	memset(&sk, 0, sizeof sk);
	while (rmpsc_consumer_consume(c, 4, sink_fn, &sk) > 0)
		;
	assert_int_equal(sk.n, 6);
	for (uint32_t i = 0; i < sk.n; i++)
		assert_int_equal(sk.v[i] >> 40, sk.id[i]);
	/* the run of ring 2 came in two segments of one call each */
	{
		uint32_t ring2_calls = 0;

		for (uint32_t i = 0; i < sk.calls && i < SINK_CALLS; i++)
			ring2_calls += sk.call_id[i] == 2;
		assert_int_equal(ring2_calls, 2);
	}
	rmpsc_mpmc_destroy(m);
}

static void test_mc_consume_respects_max_and_leaves_the_rest(void **state)
{
	rmpsc_spmc *s = spmc_new(16, 4);
	rmpsc_consumer *c = cons_new(s, false);
	struct sink sk;

	(void)state;
	seq_put(spmc_put1, s, 1, 10);
	memset(&sk, 0, sizeof sk);
	assert_ret(rmpsc_consumer_consume(c, 4, sink_fn, &sk), 4);
	assert_int_equal(sk.n, 4);
	assert_ret(rmpsc_spmc_len(s), 6);
	assert_ret(rmpsc_consumer_consume(c, 1, sink_fn, &sk), 1);
	assert_ret(rmpsc_consumer_consume(c, UINT32_MAX, sink_fn, &sk), 5);
	assert_int_equal(sk.n, 10);
	vals_expect(sk.v, 1, 10);
	assert_ret(rmpsc_consumer_consume(c, 4, never_fn, NULL), -EAGAIN);
	rmpsc_spmc_destroy(s);
}

/* ---- single-consumer FIFO per producer, shards ---------------------------- */

static void test_mc_one_consumer_sees_each_producers_items_in_order(void **state)
{
	enum { NP = 5, PER = 200 };
	rmpsc_mpmc *m = mpmc_new(16, 2, 8, 4);
	rmpsc_consumer *c = cons_new(m, true);
	rmpsc_producer *p[NP];
	uint64_t sent[NP] = { 0 }, next[NP] = { 0 }, rng = 0x1234567ull;
	uint64_t got[8];
	uint32_t total = 0;

	(void)state;
	for (int i = 0; i < NP; i++)
		p[i] = producer_new(m, true, i);
	while (total < NP * PER) {
		/* push a few to random producers, then take a random batch */
		for (int k = 0; k < 6; k++) {
			uint32_t i;

			i = (uint32_t)(xs_next(&rng) % NP);
			if (sent[i] < PER) {
				const uint64_t v = ((uint64_t)i << 40) | sent[i];

				if (rmpsc_producer_push(p[i], &v) == 0)
					sent[i]++;
			}
		}
		for (int k = 0; k < 2; k++) {
			const uint32_t n = 1 + (uint32_t)((rng >> 20) % 8);
			const int r = rmpsc_consumer_steal(c, got, n);

			if (r == -EAGAIN)
				continue;
			assert_true(r > 0 && (uint32_t)r <= n);
			for (int j = 0; j < r; j++) {
				const uint32_t id = (uint32_t)(got[j] >> 40);

				assert_true(id < NP);
				assert_int_equal(got[j] & ((1ull << 40) - 1), next[id]);
				next[id]++;
			}
			total += (uint32_t)r;
		}
		{
			/* stop pushing once every producer sent its share */
			bool all = true;

			for (int i = 0; i < NP; i++)
				all = all && sent[i] == PER;
			if (all && rmpsc_mpmc_len(m) == 0)
				break;
		}
	}
	for (int i = 0; i < NP; i++)
		assert_int_equal(next[i], PER);
	rmpsc_mpmc_destroy(m);
}

static void test_mc_mpmc_consumer_serves_rings_outside_its_shard(void **state)
{
	rmpsc_mpmc *m = mpmc_new(8, 0, 8, 4);
	rmpsc_consumer *c0 = cons_new(m, true), *c1 = cons_new(m, true);
	rmpsc_producer *p[4];
	uint64_t got[8];
	uint64_t next[4] = { 0 };
	int k, total = 0;

	(void)state;
	for (int i = 0; i < 4; i++)
		p[i] = producer_new(m, true, i);
	/* c1 registered second (shard: odd rings); data only in even rings, and
	 * c0 is gone */
	assert_ret(rmpsc_consumer_deregister(c0), 0);
	for (int i = 0; i < 4; i += 2)
		for (uint64_t j = 0; j < 8; j++)
			assert_ret(rmpsc_producer_push(p[i], &(uint64_t){ ((uint64_t)i << 40) | j }),
				   0);
	while ((k = rmpsc_consumer_steal(c1, got, 3)) > 0) {
		for (int j = 0; j < k; j++) {
			const uint32_t id = (uint32_t)(got[j] >> 40);

			assert_true(id == 0 || id == 2);
			assert_int_equal(got[j] & 0xff, next[id]++);
		}
		total += k;
	}
	assert_ret(k, -EAGAIN);
	assert_int_equal(total, 16);
	rmpsc_mpmc_destroy(m);
}

/* ---- _timed consumer calls ------------------------------------------------ */

static void test_mc_timed_consumer_calls_with_data_return_at_once(void **state)
{
	rmpsc_spmc *s = spmc_new(8, 4);
	rmpsc_consumer *c = cons_new(s, false);
	const rmpsc_wait w = block_now();
	struct sink sk;
	uint64_t got[4];

	(void)state;
	seq_put(spmc_put1, s, 1, 6);
	assert_ret(rmpsc_consumer_steal_timed(c, got, 2, 0, NULL), 2);
	vals_expect(got, 1, 2);
	assert_ret(rmpsc_consumer_steal_timed(c, got, 1, -1, &w), 1);
	assert_int_equal(got[0], 3);
	memset(&sk, 0, sizeof sk);
	assert_ret(rmpsc_consumer_consume_timed(c, 2, sink_fn, &sk, 0, NULL), 2);
	assert_ret(rmpsc_consumer_consume_timed(c, 8, sink_fn, &sk, -1, &w), 1);
	assert_int_equal(sk.n, 3);
	vals_expect(sk.v, 4, 3);
	assert_ret(rmpsc_consumer_steal_timed(c, got, 4, 0, &w), -ETIMEDOUT);
	assert_ret(rmpsc_consumer_consume_timed(c, 4, never_fn, NULL, 0, &w), -ETIMEDOUT);
	rmpsc_spmc_destroy(s);
}

static void test_mc_timed_consumer_calls_after_close_and_drain_return_epipe(void **state)
{
	rmpsc_spmc *s = spmc_new(8, 4);
	rmpsc_mpmc *m = mpmc_new(8, 2, 4, 4);
	rmpsc_consumer *cs = cons_new(s, false), *cm = cons_new(m, true);
	rmpsc_producer *p = producer_new(m, true, 0);
	struct sink sk;
	uint64_t got[4];

	(void)state;
	seq_put(spmc_put1, s, 1, 3);
	seq_put(producer_put1, p, 1, 3);
	assert_ret(rmpsc_spmc_close(s), 0);
	assert_ret(rmpsc_mpmc_close(m), 0);
	memset(&sk, 0, sizeof sk);
	assert_ret(rmpsc_consumer_steal_timed(cs, got, 2, -1, NULL), 2);
	vals_expect(got, 1, 2);
	assert_ret(rmpsc_consumer_consume_timed(cs, 4, sink_fn, &sk, -1, NULL), 1);
	assert_int_equal(sk.v[0], 3);
	/* drained: -EPIPE at once, also with no time limit, and again */
	for (int i = 0; i < 2; i++) {
		assert_ret(rmpsc_consumer_steal_timed(cs, got, 4, -1, NULL), -EPIPE);
		assert_ret(rmpsc_consumer_steal_timed(cs, got, 4, 0, NULL), -EPIPE);
		assert_ret(rmpsc_consumer_consume_timed(cs, 4, never_fn, NULL, -1, NULL),
			   -EPIPE);
	}
	assert_ret(rmpsc_consumer_steal_timed(cm, got, 4, -1, NULL), 3);
	vals_expect(got, 1, 3);
	for (int i = 0; i < 2; i++) {
		assert_ret(rmpsc_consumer_steal_timed(cm, got, 4, -1, NULL), -EPIPE);
		assert_ret(rmpsc_consumer_consume_timed(cm, 4, never_fn, NULL, 0, NULL),
			   -EPIPE);
	}
	rmpsc_spmc_destroy(s);
	rmpsc_mpmc_destroy(m);
}

/* A consumer thread blocked with no time limit. */
struct cons_waiter {
	rmpsc_consumer *c;
	bool consume;
	atomic_int started;
	int ret;
	struct sink sk;
	uint64_t got[4];
};

static void *cons_waiter_main(void *arg)
{
	struct cons_waiter *a = arg;
	const rmpsc_wait w = block_now();

	raise_flag(&a->started);
	if (a->consume)
		a->ret = rmpsc_consumer_consume_timed(a->c, 4, sink_fn, &a->sk, -1, &w);
	else
		a->ret = rmpsc_consumer_steal_timed(a->c, a->got, 4, -1, &w);
	return NULL;
}

static void cons_waiter_start(struct cons_waiter *a, pthread_t *t, rmpsc_consumer *c,
			      bool consume)
{
	memset(a, 0, sizeof *a);
	a->c = c;
	a->consume = consume;
	a->ret = 1;
	atomic_init(&a->started, 0);
	assert_int_equal(pthread_create(t, NULL, cons_waiter_main, a), 0);
	await_flag(&a->started);
}

static void test_mc_timed_consumer_calls_are_woken_by_mpmc_producer(void **state)
{
	(void)state;
	for (int consume = 0; consume < 2; consume++) {
		rmpsc_mpmc *m = mpmc_new(8, 0, 4, 4);
		rmpsc_consumer *c = cons_new(m, true);
		struct cons_waiter a;
		rmpsc_producer *p;
		pthread_t t;

		cons_waiter_start(&a, &t, c, consume);
		/* a ring made after the consumer went to sleep */
		p = producer_new(m, true, 0);
		await_sleeper(tc_consumer_sleepers(tc_producer_core(p)));
		assert_ret(rmpsc_producer_push(p, &(uint64_t){ 77 }), 0);
		assert_int_equal(pthread_join(t, NULL), 0);
		assert_ret(a.ret, 1);
		assert_int_equal(consume ? a.sk.v[0] : a.got[0], 77);
		if (consume)
			assert_int_equal(a.sk.id[0], 0);
		rmpsc_mpmc_destroy(m);
	}
}

static void test_mc_timed_consumer_calls_are_woken_by_spmc_producer(void **state)
{
	(void)state;
	for (int consume = 0; consume < 2; consume++) {
		rmpsc_spmc *s = spmc_new(8, 4);
		rmpsc_consumer *c = cons_new(s, false);
		struct cons_waiter a;
		pthread_t t;

		cons_waiter_start(&a, &t, c, consume);
		for (int i = 0; i < 16; i++)
			sched_yield(); /* likely asleep by now; correct either way */
		seq_put(spmc_put1, s, 55, 1);
		assert_int_equal(pthread_join(t, NULL), 0);
		assert_ret(a.ret, 1);
		assert_int_equal(consume ? a.sk.v[0] : a.got[0], 55);
		rmpsc_spmc_destroy(s);
	}
}

static void test_mc_timed_consumer_calls_are_woken_by_close_with_epipe(void **state)
{
	(void)state;
	for (int consume = 0; consume < 2; consume++) {
		rmpsc_mpmc *m = mpmc_new(8, 1, 4, 4);
		rmpsc_producer *p = producer_new(m, true, 0);
		rmpsc_consumer *c = cons_new(m, true);
		rmpsc_spmc *s = spmc_new(8, 4);
		rmpsc_consumer *cs = cons_new(s, false);
		struct cons_waiter a, b;
		pthread_t t, u;

		cons_waiter_start(&a, &t, c, consume);
		await_sleeper(tc_consumer_sleepers(tc_producer_core(p)));
		assert_ret(rmpsc_mpmc_close(m), 0);
		assert_int_equal(pthread_join(t, NULL), 0);
		assert_ret(a.ret, -EPIPE);
		cons_waiter_start(&b, &u, cs, consume);
		for (int i = 0; i < 16; i++)
			sched_yield();
		assert_ret(rmpsc_spmc_close(s), 0);
		assert_int_equal(pthread_join(u, NULL), 0);
		assert_ret(b.ret, -EPIPE);
		rmpsc_mpmc_destroy(m);
		rmpsc_spmc_destroy(s);
	}
}

/* ---- len, is_drained, close ---------------------------------------------- */

static void test_mc_len_counts_published_and_not_yet_claimed(void **state)
{
	rmpsc_spmc *s = spmc_new(8, 4);
	rmpsc_mpmc *m = mpmc_new(8, 1, 4, 4);
	rmpsc_consumer *cs = cons_new(s, false), *cm = cons_new(m, true);
	rmpsc_producer *p0 = producer_new(m, true, 0), *p1 = producer_new(m, true, 1);
	uint64_t got[8];
	rmpsc_span sp;

	(void)state;
	assert_ret(rmpsc_spmc_len(s), 0);
	seq_put(spmc_put1, s, 1, 5);
	assert_ret(rmpsc_spmc_len(s), 5);
	assert_ret(rmpsc_consumer_steal(cs, got, 2), 2);
	assert_ret(rmpsc_spmc_len(s), 3);
	assert_ret(rmpsc_spmc_reserve(s, 2, &sp), 2); /* reserved: not published */
	assert_ret(rmpsc_spmc_len(s), 3);
	assert_ret(rmpsc_spmc_commit(s, 2), 0);
	assert_ret(rmpsc_spmc_len(s), 5);

	assert_ret(rmpsc_mpmc_len(m), 0);
	seq_put(producer_put1, p0, 1, 3);
	seq_put(producer_put1, p1, 1, 4);
	assert_ret(rmpsc_mpmc_len(m), 7);
	assert_ret(rmpsc_consumer_steal(cm, got, 2), 2);
	assert_ret(rmpsc_mpmc_len(m), 5);
	assert_ret(rmpsc_mpsc_deregister(p0), 0); /* a left producer's rest counts */
	assert_ret(rmpsc_mpmc_len(m), 5);
	assert_ret(rmpsc_mpmc_len(NULL), -EBADF);
	assert_ret(rmpsc_mpmc_len((rmpsc_mpmc *)(void *)s), -EBADF);
	assert_ret(rmpsc_spmc_len((rmpsc_spmc *)(void *)m), -EBADF);
	rmpsc_spmc_destroy(s);
	rmpsc_mpmc_destroy(m);
}

static void test_mc_is_drained_only_when_closed_and_nothing_left_to_claim(void **state)
{
	rmpsc_spmc *s = spmc_new(8, 4);
	rmpsc_mpmc *m = mpmc_new(8, 1, 4, 4);
	rmpsc_consumer *cs = cons_new(s, false), *cm = cons_new(m, true);
	rmpsc_producer *p = producer_new(m, true, 0);

	(void)state;
	assert_ret(rmpsc_spmc_is_drained(s), 0); /* open and empty */
	assert_ret(rmpsc_mpmc_is_drained(m), 0);
	seq_put(spmc_put1, s, 1, 2);
	seq_put(producer_put1, p, 1, 2);
	assert_ret(rmpsc_spmc_close(s), 0);
	assert_ret(rmpsc_mpmc_close(m), 0);
	assert_ret(rmpsc_spmc_is_drained(s), 0); /* closed, data left */
	assert_ret(rmpsc_mpmc_is_drained(m), 0);
	seq_take(steal1, cs, 1, 1);
	seq_take(steal1, cm, 1, 1);
	assert_ret(rmpsc_spmc_is_drained(s), 0);
	assert_ret(rmpsc_mpmc_is_drained(m), 0);
	seq_take(steal1, cs, 2, 1);
	seq_take(steal1, cm, 2, 1);
	assert_ret(rmpsc_spmc_is_drained(s), 1);
	assert_ret(rmpsc_mpmc_is_drained(m), 1);
	assert_ret(rmpsc_mpmc_is_drained(NULL), -EBADF);
	assert_ret(rmpsc_mpmc_is_drained((rmpsc_mpmc *)(void *)s), -EBADF);
	rmpsc_spmc_destroy(s);
	rmpsc_mpmc_destroy(m);
}

/* A handler that looks at the channel while its run is claimed. */
struct drained_probe {
	rmpsc_spmc *s;
	int drained_inside;
	int64_t len_inside;
};

static void drained_probe_fn(void *ctx, uint32_t producer_id, const void *items, uint32_t count)
{
	struct drained_probe *d = ctx;

	(void)producer_id;
	(void)items;
	(void)count;
	d->drained_inside = rmpsc_spmc_is_drained(d->s);
	d->len_inside = rmpsc_spmc_len(d->s);
}

static void test_mc_is_drained_counts_a_claimed_run_as_taken(void **state)
{
	rmpsc_spmc *s = spmc_new(8, 4);
	rmpsc_consumer *c = cons_new(s, false);
	struct drained_probe d = { .s = s, .drained_inside = -1, .len_inside = -1 };

	(void)state;
	seq_put(spmc_put1, s, 1, 2);
	assert_ret(rmpsc_spmc_close(s), 0);
	assert_ret(rmpsc_consumer_consume(c, 8, drained_probe_fn, &d), 2);
	assert_int_equal(d.len_inside, 0);
	assert_int_equal(d.drained_inside, 1);
	rmpsc_spmc_destroy(s);
}

static void test_mc_close_is_idempotent_and_ends_every_consumer(void **state)
{
	rmpsc_spmc *s = spmc_new(8, 4);
	rmpsc_mpmc *m = mpmc_new(8, 4, 8, 4);
	rmpsc_consumer *a = cons_new(s, false), *b = cons_new(s, false), *c = cons_new(m,
		true),
		       *d = cons_new(m, true);
	rmpsc_producer *p0 = producer_new(m, true, 0), *p1 = producer_new(m, true, 1);
	uint64_t v;

	(void)state;
	seq_put(spmc_put1, s, 1, 3);
	seq_put(producer_put1, p0, 1, 2);
	seq_put(producer_put1, p1, 10, 1);
	assert_ret(rmpsc_mpsc_deregister(p1), 0);
	for (int i = 0; i < 3; i++) {
		assert_ret(rmpsc_spmc_close(s), 0);
		assert_ret(rmpsc_mpmc_close(m), 0);
	}
	assert_ret(rmpsc_mpmc_close(NULL), -EBADF);
	assert_ret(rmpsc_mpmc_close((rmpsc_mpmc *)(void *)s), -EBADF);
	assert_ret(rmpsc_spmc_push(s, &(uint64_t){ 4 }), -EPIPE);
	assert_ret(rmpsc_producer_push(p0, &(uint64_t){ 4 }), -EPIPE);
	/* everything published before, split among the consumers, then -EPIPE
	 * for each, and it stays */
	seq_take(steal1, a, 1, 1);
	seq_take(steal1, b, 2, 2);
	{
		uint64_t sum = 0;

		for (int i = 0; i < 3; i++) {
			assert_ret(rmpsc_consumer_steal_one(i & 1 ? d : c, &v), 0);
			sum += v;
		}
		assert_int_equal(sum, 1 + 2 + 10);
	}
	for (int i = 0; i < 2; i++) {
		assert_ret(rmpsc_consumer_steal_one(a, &v), -EPIPE);
		assert_ret(rmpsc_consumer_steal_one(b, &v), -EPIPE);
		assert_ret(rmpsc_consumer_steal_one(c, &v), -EPIPE);
		assert_ret(rmpsc_consumer_consume(d, 4, never_fn, NULL), -EPIPE);
	}
	rmpsc_spmc_destroy(s);
	rmpsc_mpmc_destroy(m);
}

static void test_mc_close_with_no_producer_ever_gives_epipe(void **state)
{
	rmpsc_mpmc *m0 = mpmc_new(8, 0, 4, 4), *m4 = mpmc_new(8, 4, 4, 4);
	rmpsc_consumer *c0 = cons_new(m0, true), *c4 = cons_new(m4, true);

	(void)state;
	assert_ret(rmpsc_mpmc_close(m0), 0);
	assert_ret(rmpsc_mpmc_close(m4), 0);
	assert_ret(rmpsc_mpmc_is_drained(m0), 1);
	assert_ret(rmpsc_mpmc_is_drained(m4), 1);
	assert_ret(rmpsc_consumer_steal_one(c0, &(uint64_t){ 0 }), -EPIPE);
	assert_ret(rmpsc_consumer_steal_one(c4, &(uint64_t){ 0 }), -EPIPE);
	assert_ret(rmpsc_consumer_steal_timed(c4, &(uint64_t){ 0 }, 1, -1, NULL), -EPIPE);
	rmpsc_mpmc_destroy(m0);
	rmpsc_mpmc_destroy(m4);
}

/* ---- out-of-order completion ---------------------------------------------- */

/* Consumer A: consume one element with a handler that holds it until told. */
struct holder {
	rmpsc_consumer *c;
	atomic_int entered; /* the handler runs: A holds its run */
	atomic_int go;      /* let the handler return */
	int ret;
	uint64_t value;
	uint32_t id;
	uint32_t count;
};

static void holder_fn(void *ctx, uint32_t producer_id, const void *items, uint32_t count)
{
	struct holder *h = ctx;

	memcpy(&h->value, items, 8);
	h->id = producer_id;
	h->count = count;
	raise_flag(&h->entered);
	await_flag(&h->go);
}

static void *holder_main(void *arg)
{
	struct holder *h = arg;

	h->ret = rmpsc_consumer_consume(h->c, 1, holder_fn, h);
	return NULL;
}

static void holder_start(struct holder *h, pthread_t *t, rmpsc_consumer *c)
{
	memset(h, 0, sizeof *h);
	h->c = c;
	h->ret = 1234;
	atomic_init(&h->entered, 0);
	atomic_init(&h->go, 0);
	assert_int_equal(pthread_create(t, NULL, holder_main, h), 0);
	await_flag(&h->entered);
}

static void test_mc_completion_out_of_order_holds_slots_until_earliest_run_completes(
	void **state)
{
	rmpsc_spmc *s = spmc_new(4, 4);
	rmpsc_consumer *a = cons_new(s, false), *b = cons_new(s, false);
	struct holder h;
	pthread_t t;
	uint64_t v = 0;

	(void)state;
	seq_put(spmc_put1, s, 1, 4);
	assert_ret(rmpsc_spmc_push(s, &(uint64_t){ 5 }), -EAGAIN);
	/* A claims element 1 and holds it on its own thread */
	holder_start(&h, &t, a);
	assert_int_equal(h.value, 1);
	assert_int_equal(h.count, 1);
	assert_int_equal(h.id, 0);
	assert_ret(rmpsc_spmc_len(s), 3);
	/* B takes the next one and completes: its slot is not released, the
	 * run before it is still out */
	assert_ret(rmpsc_consumer_steal_one(b, &v), 0);
	assert_int_equal(v, 2);
	assert_ret(rmpsc_spmc_len(s), 2);
	assert_ret(rmpsc_spmc_push(s, &(uint64_t){ 5 }), -EAGAIN);
	assert_ret(rmpsc_spmc_push_timed(s, &(uint64_t){ 5 }, 0, NULL), -ETIMEDOUT);
	/* B does not wait for A: it takes the rest, which stay held too */
	seq_take(steal1, b, 3, 2);
	assert_ret(rmpsc_spmc_len(s), 0);
	assert_ret(rmpsc_consumer_steal_one(b, &v), -EAGAIN);
	assert_ret(rmpsc_spmc_push(s, &(uint64_t){ 5 }), -EAGAIN);
	{
		rmpsc_span sp;

		assert_ret(rmpsc_spmc_reserve(s, 1, &sp), -EAGAIN);
	}
	/* A returns: its completion releases its run and every completed run
	 * after it, so all four slots are free again */
	raise_flag(&h.go);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_ret(h.ret, 1);
	seq_put(spmc_put1, s, 5, 4);
	assert_ret(rmpsc_spmc_push(s, &(uint64_t){ 9 }), -EAGAIN);
	seq_take(steal1, a, 5, 2);
	seq_take(steal1, b, 7, 2);
	rmpsc_spmc_destroy(s);
}

static void test_mc_completion_of_earliest_run_releases_it_at_once(void **state)
{
	rmpsc_mpmc *m = mpmc_new(4, 1, 1, 4);
	rmpsc_producer *p = producer_new(m, true, 0);
	rmpsc_consumer *a = cons_new(m, true), *b = cons_new(m, true);
	struct holder h;
	pthread_t t;

	(void)state;
	seq_put(producer_put1, p, 1, 4);
	/* B completes the earliest run while A holds the second one: B's
	 * slot comes back at once, A's not */
	seq_take(steal1, b, 1, 1);
	holder_start(&h, &t, a);
	assert_int_equal(h.value, 2);
	assert_ret(rmpsc_producer_len(p), 3);
	assert_ret(rmpsc_producer_push(p, &(uint64_t){ 5 }), 0);
	assert_ret(rmpsc_producer_push(p, &(uint64_t){ 6 }), -EAGAIN);
	seq_take(steal1, b, 3, 3); /* 3, 4, 5 */
	assert_ret(rmpsc_producer_push(p, &(uint64_t){ 6 }), -EAGAIN);
	assert_ret(rmpsc_producer_len(p), 4);
	raise_flag(&h.go);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_ret(h.ret, 1);
	assert_ret(rmpsc_producer_len(p), 0);
	seq_put(producer_put1, p, 6, 4);
	seq_take(steal1, a, 6, 4);
	rmpsc_mpmc_destroy(m);
}

/* ---- positions across 2^64 ------------------------------------------------ */

/*
 * Free-running positions: an MPMC ring started (through its core, before
 * any consumer touches it) a few slots below 2^64 must behave as at 0:
 * every element once, in order, and all slots back after each lap. The
 * claims and completions here have end positions at and just past 2^64
 * (0, 1, ...), one consumer, no concurrency.
 */
static void mc_pos_fail(uint64_t back, int round, const char *what, long long got,
			long long want, const rmpsc_producer *p)
{
	uint64_t head, claim, tail;

	tc_positions(tc_producer_core(p), &head, &claim, &tail);
	print_error("start 2^64 - %llu, lap %d: %s = %lld, expected %lld (head 2^64%+lld, "
		    "claim 2^64%+lld, tail 2^64%+lld)\n", (unsigned long long)back, round, what,
		    got, want, (long long)head, (long long)claim, (long long)tail);
	fail();
}

static void test_mc_positions_across_2_64_preserve_order_and_release(void **state)
{
	(void)state;
	for (uint64_t back = 1; back <= 8; back++) {
		rmpsc_mpmc *m = mpmc_new(4, 1, 1, 4);
		rmpsc_producer *p = producer_new(m, true, 0);
		rmpsc_consumer *a = cons_new(m, true);
		uint64_t next_in = 0, next_out = 0;

		tc_core_set_position(tc_producer_core(p), (uint64_t)0 - back);
		for (int round = 0; round < 6; round++) {
			uint32_t pushed = 0;

			/* fill (at most 5 tries: a capacity of 4), then take in
			 * runs of 1 and 2 */
			while (pushed < 5 && rmpsc_producer_push(p, &next_in) == 0) {
				next_in++;
				pushed++;
			}
			if (pushed != 4)
				mc_pos_fail(back, round, "elements pushed into an empty ring",
					    pushed, 4, p);
			while (next_out < next_in) {
				uint64_t got[2];
				const uint32_t n = (uint32_t)(1 + ((next_out + round) & 1));
				const int k = rmpsc_consumer_steal(a, got, n);

				if (k < 1 || (uint32_t)k > n)
					mc_pos_fail(back, round, "steal", k, n, p);
				for (int j = 0; j < k; j++, next_out++)
					if (got[j] != next_out)
						mc_pos_fail(back, round, "element", (long long)got[j],
							    (long long)next_out, p);
			}
			if (rmpsc_producer_len(p) != 0)
				mc_pos_fail(back, round, "rmpsc_producer_len() after taking all",
					    rmpsc_producer_len(p), 0, p);
		}
		rmpsc_mpmc_destroy(m);
	}
}

/* ---- argument and handle checks, one table per struct or handle ----------- */

/*
 * test_table.h drives them: every call refused for one argument or for its
 * handle, with the code channel.h promises, and afterwards the fixture is
 * as it was (its elements, in order, and it still works).
 */

static rmpsc_spmc *ts;         /* the fixtures' channels */
static rmpsc_mpmc *tm;
static rmpsc_consumer *tc;     /* the consumer of ts */
static rmpsc_producer *tmp;    /* a producer of tm */
static uint64_t tv[4];

/* Elements 1..@fill are there for @c, in order; then one more goes through. */
static const char *spmc_intact(rmpsc_consumer *c, uint32_t fill)
{
	uint64_t v = 0;

	if (rmpsc_spmc_len(ts) != fill)
		return "the channel's length changed";
	if (rmpsc_spmc_commit(ts, 1) != -EINVAL)
		return "a reservation was left";
	for (uint32_t i = 1; i <= fill; i++)
		if (rmpsc_consumer_steal_one(c, &v) || v != i)
			return "the queued elements changed";
	v = 99;
	if (rmpsc_spmc_push(ts, &v) || rmpsc_consumer_steal_one(c, &v) || v != 99)
		return "the channel no longer works";
	return NULL;
}

/* SPMC channel, ring of 4, up to 4 consumers, elements 1..state queued */
static void *spmc_fx(uint32_t state)
{
	ts = spmc_new(4, 4);
	seq_put(spmc_put1, ts, 1, state);
	return ts;
}

static const char *spmc_fx_check(void *h, const struct tt_row *row, int64_t got)
{
	(void)h;
	(void)got;
	return spmc_intact(cons_new(ts, false), row->state);
}

static void spmc_fx_free(void *h)
{
	rmpsc_spmc_destroy(h);
}

/* The consumer table's: an SPMC ring of 8 and one consumer. */
static void *cons_fx(uint32_t state)
{
	ts = spmc_new(8, 4);
	tc = cons_new(ts, false);
	seq_put(spmc_put1, ts, 1, state);
	return tc;
}

static const char *cons_fx_check(void *h, const struct tt_row *row, int64_t got)
{
	(void)got;
	return spmc_intact(h, row->state);
}

static void cons_fx_free(void *h)
{
	(void)h;
	rmpsc_spmc_destroy(ts);
}

/* MPMC channel, rings of 8, one made up front, 4 producers and consumers */
static void *mpmc_fx(uint32_t state)
{
	(void)state;
	tm = mpmc_new(8, 1, 4, 4);
	return tm;
}

static const char *mpmc_intact(void)
{
	rmpsc_producer *p = NULL;
	rmpsc_consumer *c = NULL;
	uint64_t v = 5;

	if (rmpsc_mpmc_len(tm) != 0 || rmpsc_mpmc_is_drained(tm) != 0)
		return "the channel's state changed";
	if (rmpsc_mpmc_register_producer(tm, &p) < 0 ||
	    rmpsc_mpmc_register_consumer(tm, &c) < 0 || rmpsc_producer_push(p, &v) || rmpsc_consumer_steal_one(c, &v) || v != 5)
		return "the channel no longer works";
	return NULL;
}

static const char *mpmc_fx_check(void *h, const struct tt_row *row, int64_t got)
{
	(void)h;
	(void)row;
	(void)got;
	return mpmc_intact();
}

static void mpmc_fx_free(void *h)
{
	rmpsc_mpmc_destroy(h);
}

/* Live handles of another type. */
static void *make_spmc(void)
{
	return spmc_fx(0);
}

static const char *spmc_other_intact(void *h)
{
	(void)h;
	return spmc_intact(cons_new(ts, false), 0);
}

static void drop_spmc(void *h)
{
	(void)h;
	rmpsc_spmc_destroy(ts);
}

static void *make_mpmc(void)
{
	return mpmc_fx(0);
}

static void *make_mpmc_producer(void)
{
	tmp = producer_new(mpmc_fx(0), true, 0);
	return tmp;
}

static const char *mpmc_other_intact(void *h)
{
	(void)h;
	return mpmc_intact();
}

static void drop_mpmc(void *h)
{
	(void)h;
	rmpsc_mpmc_destroy(tm);
}

static const struct tt_handle not_an_spmc[] = {
	TT_HANDLES_NOT_A_HANDLE,
	{ "an MPMC channel", make_mpmc, mpmc_other_intact, drop_mpmc },
};

static const struct tt_handle not_an_mpmc[] = {
	TT_HANDLES_NOT_A_HANDLE,
	{ "an SPMC channel", make_spmc, spmc_other_intact, drop_spmc },
};

static const struct tt_handle not_a_consumer[] = {
	TT_HANDLES_NOT_A_HANDLE,
	{ "an SPMC channel", make_spmc, spmc_other_intact, drop_spmc },
	{ "an MPMC channel", make_mpmc, mpmc_other_intact, drop_mpmc },
	{ "an MPMC producer", make_mpmc_producer, mpmc_other_intact, drop_mpmc },
};

TT_CONSTRUCTOR(s_register_consumer, rmpsc_consumer, rmpsc_spmc_register_consumer, tt_any,
	       rmpsc_consumer_deregister)

TT_CALL(s_close, rmpsc_spmc_close(h))
TT_CALL(s_len, rmpsc_spmc_len(h))
TT_CALL(s_is_drained, rmpsc_spmc_is_drained(h))
TT_CALL(sn_register_consumer, rmpsc_spmc_register_consumer(h, NULL))
TT_PRODUCER_CALLS(spmc)

static const struct tt_row spmc_rows[] = {
	TT_PRODUCER_ROWS(spmc),
	TT_ROW("close", s_close, -EBADF, TT_BAD),
	TT_ROW("len", s_len, -EBADF, TT_BAD),
	TT_ROW("is_drained", s_is_drained, -EBADF, TT_BAD),
	TT_ROW("register_consumer", s_register_consumer, -EBADF, TT_BAD),
	TT_ROW("register_consumer: out NULL", sn_register_consumer, -EINVAL, 0),
};

TT_TEST(test_mc_spmc_calls_with_bad_handle_or_argument_return_documented_code,
	.name = "spmc", TT_ROWS(spmc_rows), .setup = spmc_fx, .check = spmc_fx_check,
	.teardown = spmc_fx_free, TT_BADS(not_an_spmc))

TT_CONSTRUCTOR(m_register_consumer, rmpsc_consumer, rmpsc_mpmc_register_consumer, tt_any,
	       rmpsc_consumer_deregister)

TT_CONSTRUCTOR(m_register_producer, rmpsc_producer, rmpsc_mpmc_register_producer, tt_any,
	       rmpsc_mpsc_deregister)

TT_CALL(m_close, rmpsc_mpmc_close(h))
TT_CALL(m_len, rmpsc_mpmc_len(h))
TT_CALL(m_is_drained, rmpsc_mpmc_is_drained(h))
TT_CALL(mn_register_consumer, rmpsc_mpmc_register_consumer(h, NULL))
TT_CALL(mn_register_producer, rmpsc_mpmc_register_producer(h, NULL))

static const struct tt_row mpmc_rows[] = {
	TT_ROW("register_consumer", m_register_consumer, -EBADF, TT_BAD),
	TT_ROW("register_producer", m_register_producer, -EBADF, TT_BAD),
	TT_ROW("close", m_close, -EBADF, TT_BAD),
	TT_ROW("len", m_len, -EBADF, TT_BAD),
	TT_ROW("is_drained", m_is_drained, -EBADF, TT_BAD),
	TT_ROW("register_consumer: out NULL", mn_register_consumer, -EINVAL, 0),
	TT_ROW("register_producer: out NULL", mn_register_producer, -EINVAL, 0),
};

TT_TEST(test_mc_mpmc_calls_with_bad_handle_or_argument_return_documented_code,
	.name = "mpmc", TT_ROWS(mpmc_rows), .setup = mpmc_fx, .check = mpmc_fx_check,
	.teardown = mpmc_fx_free, TT_BADS(not_an_mpmc))

TT_CALL(c_steal, rmpsc_consumer_steal(h, tv, 1))
TT_CALL(c_steal_one, rmpsc_consumer_steal_one(h, v ? tv : NULL))
TT_CALL(c_consume, rmpsc_consumer_consume(h, 1, never_fn, NULL))
TT_CALL(c_steal_timed, rmpsc_consumer_steal_timed(h, tv, 1, 0, NULL))
TT_CALL(c_consume_timed, rmpsc_consumer_consume_timed(h, 1, never_fn, NULL, 0, NULL))
TT_CALL(c_deregister, rmpsc_consumer_deregister(h))
TT_CALL(cn_steal, rmpsc_consumer_steal(h, NULL, 1))
TT_CALL(cn_steal_one, rmpsc_consumer_steal_one(h, NULL))
TT_CALL(cn_steal_timed, rmpsc_consumer_steal_timed(h, NULL, 1, 0, NULL))
TT_CALL(cn_consume, rmpsc_consumer_consume(h, 1, NULL, NULL))
TT_CALL(cn_consume_timed, rmpsc_consumer_consume_timed(h, 1, NULL, NULL, 0, NULL))
TT_CALL(cz_steal, rmpsc_consumer_steal(h, v ? tv : NULL, 0))
TT_CALL(cz_steal_timed, rmpsc_consumer_steal_timed(h, NULL, 0, 0, NULL))
TT_CALL(cz_consume, rmpsc_consumer_consume(h, 0, never_fn, NULL))
TT_CALL(cz_consume_timed, rmpsc_consumer_consume_timed(h, 0, never_fn, NULL, 0, NULL))
TT_CALL(cw_steal_timed, rmpsc_consumer_steal_timed(h, tv, 1, 0, tt_bad_wait(v)))
TT_CALL(cw_steal_timed_0, rmpsc_consumer_steal_timed(h, tv, 0, 0, tt_bad_wait(v)))
TT_CALL(cw_consume_timed, rmpsc_consumer_consume_timed(h, 1, never_fn, NULL, 0,
						       tt_bad_wait(v)))

/* n = 0 with a larger strategy, zeros past ours: 0 */
static int64_t cz_steal_timed_zero_tail(void *h, uint64_t v)
{
	union {
		rmpsc_wait w;
		uint64_t q[6];
	} big;

	(void)v;
	memset(&big, 0, sizeof big);
	assert_ret(rmpsc_wait_init(&big.w, sizeof big, RMPSC_WAIT_BLOCK), 0);
	return rmpsc_consumer_steal_timed(h, tv, 0, 0, &big.w);
}

static const struct tt_row cons_rows[] = {
	TT_ROW("steal", c_steal, -EBADF, TT_BAD),
	TT_ROW("steal_one (item NULL or not)", c_steal_one, -EBADF, TT_BAD, TT_VALS(1, 0)),
	TT_ROW("consume", c_consume, -EBADF, TT_BAD),
	TT_ROW("steal_timed", c_steal_timed, -EBADF, TT_BAD),
	TT_ROW("consume_timed", c_consume_timed, -EBADF, TT_BAD),
	TT_ROW("deregister", c_deregister, -EBADF, TT_BAD),
	/* an element is there: only the argument is wrong */
	TT_ROW("steal: items NULL", cn_steal, -EINVAL, 1),
	TT_ROW("steal_one: item NULL", cn_steal_one, -EINVAL, 1),
	TT_ROW("steal_timed: items NULL", cn_steal_timed, -EINVAL, 1),
	TT_ROW("consume: fn NULL", cn_consume, -EINVAL, 1),
	TT_ROW("consume_timed: fn NULL", cn_consume_timed, -EINVAL, 1),
	TT_ROW("steal: n 0 (items NULL or not)", cz_steal, 0, 1, TT_VALS(1, 0)),
	TT_ROW("steal_timed: n 0, items NULL", cz_steal_timed, 0, 1),
	TT_ROW("consume: max 0", cz_consume, 0, 1),
	TT_ROW("consume_timed: max 0", cz_consume_timed, 0, 1),
	TT_ROW("steal_timed: w invalid", cw_steal_timed, -EINVAL, 1, TT_WAIT_EINVAL_ALL),
	TT_ROW("steal_timed: w invalid, n 0", cw_steal_timed_0, -EINVAL, 1,
	       TT_WAIT_EINVAL_ALL),
	TT_ROW("consume_timed: w invalid", cw_consume_timed, -EINVAL, 1,
	       TT_WAIT_EINVAL_ALL),
	TT_ROW("steal_timed: w too large", cw_steal_timed, -E2BIG, 1, TT_WAIT_E2BIG_ALL),
	TT_ROW("consume_timed: w too large", cw_consume_timed, -E2BIG, 1,
	       TT_WAIT_E2BIG_ALL),
	TT_ROW("steal_timed: n 0, w larger with zeros past ours",
	       cz_steal_timed_zero_tail, 0, 1),
};

TT_TEST(test_mc_consumer_calls_with_bad_handle_or_argument_return_documented_code,
	.name = "consumer", TT_ROWS(cons_rows), .setup = cons_fx, .check = cons_fx_check,
	.teardown = cons_fx_free, TT_BADS(not_a_consumer))

/* ---- configs: rmpsc_mc_config_init, rmpsc_spmc_create, rmpsc_mpmc_create -- */

enum {
	MCF_CANARY = TT_STRUCT_CANARY, /* init: CANARY bytes, more than any size tried */
	MCF_SPMC, /* create: the SPMC defaults, zeros after */
	MCF_MPMC, /* create: the MPMC defaults, zeros after */
};

static void *mcf_fx(uint32_t state)
{
	rmpsc_mc_config *cfg = tt_struct(state);

	mcf_spmc = state == MCF_SPMC;
	if (state != MCF_CANARY)
		assert_ret(rmpsc_mc_config_init(cfg, sizeof *cfg, mcf_spmc), 0);
	return cfg;
}

#define OFF(f) offsetof(rmpsc_mc_config, f)
#define PM(producers, max) (((uint64_t)(producers) << 32) | (max))
/* v = size << 1 | spmc */
TT_CALL(ki_null, rmpsc_mc_config_init(NULL, sizeof(rmpsc_mc_config), (int)v))
TT_CALL(ki_size, rmpsc_mc_config_init(h, (uint32_t)(v >> 1), (int)(v & 1)))
TT_CALL(kc_null_out, mcf_spmc ? rmpsc_spmc_create(h, NULL) : rmpsc_mpmc_create(h, NULL))
TT_CALL(kc_null_cfg, create_from(NULL, 0))
TT_CALL(kc_size, (tt_put(h, OFF(size), v), create_from(h, 0)))
TT_CALL(kc_flags, (tt_put(h, OFF(flags), v), tt_put(h, OFF(ring_capacity), 64),
		   create_from(h, 0)))
TT_CALL(kc_elem_size, (tt_put(h, OFF(elem_size), v), create_from(h, 0)))
TT_CALL(kc_capacity, (tt_put(h, OFF(ring_capacity), v), create_from(h, 0)))
TT_CALL(kc_numa, (tt_put(h, OFF(numa_node), v), create_from(h, 0)))
TT_CALL(kc_max_consumers, (tt_put(h, OFF(max_consumers), v), create_from(h, 0)))
/* v = producers << 32 | max_producers, rings of 4 */
TT_CALL(kc_producers, (tt_put(h, OFF(producers), v >> 32), tt_put(h, OFF(max_producers), v),
		       tt_put(h, OFF(ring_capacity), 4), create_from(h, 0)))
/* the smallest geometry: rings of 1 slot of 1 byte, NUMA node 0 */
TT_CALL(kc_smallest, (tt_put(h, OFF(ring_capacity), 1), tt_put(h, OFF(elem_size), 1),
		      tt_put(h, OFF(numa_node), 0), create_from(h, 0)))
/* the MPMC defaults where an SPMC config belongs */
static int64_t kc_mpmc_as_spmc(void *h, uint64_t v)
{
	(void)v;
	assert_ret(rmpsc_mc_config_init(h, sizeof(rmpsc_mc_config), 0), 0);
	return create_from(h, 0);
}

/* A 64-byte struct, zeros past ours but for byte v (v = 0: none). */
static int64_t kc_tail(void *h, uint64_t v)
{
	tt_put(h, OFF(size), 64);
	if (v)
		((unsigned char *)h)[v] = 1;
	return create_from(h, 0);
}

#define MCF_BOTH(name, call, want, ...)                                        \
	TT_ROW("spmc " name, call, want, MCF_SPMC, __VA_ARGS__),               \
	TT_ROW("mpmc " name, call, want, MCF_MPMC, __VA_ARGS__)
#define SP(size) (size) << 1, (size) << 1 | 1

static const struct tt_row mc_config_rows[] = {
	TT_ROW("config_init: cfg NULL (spmc or not)", ki_null, -EINVAL, MCF_CANARY,
	       TT_VALS(0, 1)),
	TT_ROW("config_init: size below 1.0 or not a multiple of 8", ki_size, -EINVAL,
	       MCF_CANARY,
	       TT_VALS(SP(0), SP(4), SP(8), SP(24), SP(28), SP(31), SP(33), SP(36), SP(44))),
	TT_ROW("config_init: size above a page", ki_size, -E2BIG, MCF_CANARY,
	       TT_VALS(SP(4104))),
	MCF_BOTH("create: out NULL", kc_null_out, -EINVAL, TT_ONCE),
	MCF_BOTH("create: cfg NULL", kc_null_cfg, -EINVAL, TT_ONCE),
	TT_ROW("spmc create: producers or max_producers not 1", kc_producers, -EINVAL,
	       MCF_SPMC,
	       TT_VALS(PM(0, 1), PM(2, 2), PM(1, 2), PM(0, 0), PM(2, 1), PM(1, 256), PM(4, 256))),
	TT_ROW("spmc create: the MPMC defaults", kc_mpmc_as_spmc, -EINVAL, MCF_SPMC),
	TT_ROW("mpmc create: producer counts", kc_producers, -EINVAL, MCF_MPMC,
	       TT_VALS(PM(0, 0), PM(1, 0), PM(0, RMPSC_MPSC_PRODUCERS_MAX + 1), PM(5, 4), PM(2, 1),
		       PM(257, 256))),
	TT_ROW("mpmc create: producer counts at the edges", kc_producers, 0, MCF_MPMC,
	       TT_VALS(PM(0, 1), PM(1, 1), PM(0, RMPSC_MPSC_PRODUCERS_MAX))),
	MCF_BOTH("create: max_consumers 0 or too large", kc_max_consumers, -EINVAL,
		 TT_VALS(0, RMPSC_CONSUMERS_MAX + 1, 4096, UINT32_MAX)),
	MCF_BOTH("create: max_consumers at the edges", kc_max_consumers, 0,
		 TT_VALS(1, RMPSC_CONSUMERS_MAX)),
	MCF_BOTH("create: METRICS, NOSKIP or an unknown flag", kc_flags, -EINVAL,
		 TT_VALS(RMPSC_MPSC_F_METRICS, RMPSC_MPSC_F_METRICS | RMPSC_MPSC_F_PREFAULT,
			 RMPSC_MPSC_F_ALL, 1u << 3, 1u << 16, 1u << 31)),
	MCF_BOTH("create: PREFAULT", kc_flags, 0, TT_VALS(RMPSC_MPSC_F_PREFAULT)),
	MCF_BOTH("create: elem_size 0 or too large", kc_elem_size, -EINVAL,
		 TT_VALS(0, RMPSC_RING_ELEM_SIZE_MAX + 1, UINT32_MAX)),
	MCF_BOTH("create: ring_capacity not a power of two or too large", kc_capacity, -EINVAL,
		 TT_VALS(0, 3, 1000, 1025, RMPSC_RING_CAPACITY_MAX * 2u, UINT32_MAX)),
	MCF_BOTH("create: numa_node below RMPSC_NODE_ANY", kc_numa, -EINVAL,
		 TT_VALS((uint32_t)-2, (uint32_t)-100, (uint32_t)INT32_MIN)),
	MCF_BOTH("create: rings of one 1-byte slot on node 0", kc_smallest, 0, TT_ONCE),
	MCF_BOTH("create: size below 1.0 or not a multiple of 8", kc_size, -EINVAL,
		 TT_VALS(0, 8, 24, 28, 33, 36, 44)),
	MCF_BOTH("create: a larger struct, zeros past ours", kc_tail, 0, TT_VALS(0)),
	MCF_BOTH("create: a byte past the known struct not zero", kc_tail, -E2BIG,
		 TT_RANGE(sizeof(rmpsc_mc_config), 64)),
	MCF_BOTH("create: size above a page", kc_size, -E2BIG, TT_VALS(4096 + 8)),
};

TT_TEST(test_mc_config_calls_with_bad_argument_return_documented_code,
	.name = "mc config", TT_ROWS(mc_config_rows), .setup = mcf_fx,
	.check = tt_struct_check)

/* ---- main ----------------------------------------------------------------- */

int main(void)
{
#define T(f) cmocka_unit_test(f)
	const struct CMUnitTest tests[] = {
		/* config */
		T(test_mc_config_init_with_spmc_writes_spmc_defaults),
		T(test_mc_config_init_with_mpmc_writes_mpmc_defaults),
		T(test_mc_config_init_with_larger_size_zeroes_tail_and_writes_no_more),
		/* create / destroy */
		T(test_mc_create_with_defaults_returns_open_empty_channel),
		T(test_mc_create_with_hugepage_flag_returns_zero_or_enomem),
		T(test_mc_create_when_mapping_too_large_returns_enomem),
		T(test_mc_destroy_with_registered_consumers_and_producers_frees_all),
		/* bad arguments and handles */
		T(test_mc_config_calls_with_bad_argument_return_documented_code),
		T(test_mc_spmc_calls_with_bad_handle_or_argument_return_documented_code),
		T(test_mc_mpmc_calls_with_bad_handle_or_argument_return_documented_code),
		T(test_mc_consumer_calls_with_bad_handle_or_argument_return_documented_code),
		/* consumer registration */
		T(test_mc_register_consumer_returns_indices_from_zero),
		T(test_mc_register_consumer_at_max_consumers_returns_enospc),
		T(test_mc_register_consumer_after_close_returns_epipe),
		T(test_mc_register_consumer_after_close_takes_what_is_left),
		T(test_mc_consumer_deregister_keeps_elements_for_other_consumers),
		/* MPMC producers */
		T(test_mc_mpmc_register_producer_returns_ids_then_enospc_at_max),
		T(test_mc_mpmc_register_producer_after_deregister_reuses_drained_ring),
		T(test_mc_mpmc_register_producer_after_close_returns_epipe),
		T(test_mc_mpmc_register_producer_when_mapping_fails_returns_enomem),
		T(test_mc_mpmc_producer_calls_deliver_with_producer_id),
		T(test_mc_mpmc_producer_when_ring_full_returns_eagain_or_etimedout),
		T(test_mc_mpmc_deregister_delivers_committed_then_ring_ends),
		T(test_mc_mpmc_producer_calls_after_close_return_epipe),
		T(test_mc_mpmc_producer_push_timed_is_woken_by_steal),
		/* SPMC producer */
		T(test_mc_spmc_push_until_full_returns_eagain),
		T(test_mc_spmc_push_n_when_nearly_full_pushes_what_fits),
		T(test_mc_spmc_reserve_and_commit_publish_in_place_across_wrap),
		T(test_mc_spmc_timed_pushes_with_zero_timeout_when_full_return_etimedout),
		T(test_mc_spmc_producer_calls_after_close_return_epipe),
		T(test_mc_spmc_with_odd_elem_sizes_roundtrips_byte_exact),
		T(test_mc_spmc_push_timed_when_full_is_woken_by_consumer_thread),
		/* consumers */
		T(test_mc_steal_when_empty_returns_eagain),
		T(test_mc_steal_copies_up_to_n_in_order),
		T(test_mc_steal_one_returns_zero_and_the_element),
		T(test_mc_consume_hands_two_segments_across_wrap_with_id),
		T(test_mc_consume_in_mpmc_hands_the_producer_id_of_each_ring),
		T(test_mc_consume_respects_max_and_leaves_the_rest),
		T(test_mc_one_consumer_sees_each_producers_items_in_order),
		T(test_mc_mpmc_consumer_serves_rings_outside_its_shard),
		/* _timed */
		T(test_mc_timed_consumer_calls_with_data_return_at_once),
		T(test_mc_timed_consumer_calls_after_close_and_drain_return_epipe),
		T(test_mc_timed_consumer_calls_are_woken_by_mpmc_producer),
		T(test_mc_timed_consumer_calls_are_woken_by_spmc_producer),
		T(test_mc_timed_consumer_calls_are_woken_by_close_with_epipe),
		/* status, close */
		T(test_mc_len_counts_published_and_not_yet_claimed),
		T(test_mc_is_drained_only_when_closed_and_nothing_left_to_claim),
		T(test_mc_is_drained_counts_a_claimed_run_as_taken),
		T(test_mc_close_is_idempotent_and_ends_every_consumer),
		T(test_mc_close_with_no_producer_ever_gives_epipe),
		/* out-of-order completion */
		T(test_mc_completion_out_of_order_holds_slots_until_earliest_run_completes),
		T(test_mc_completion_of_earliest_run_releases_it_at_once),
		/* positions */
		T(test_mc_positions_across_2_64_preserve_order_and_release),
		/* last: under UBSan a failure here aborts the process */
		T(test_mc_destroy_with_null_is_a_noop),
	};
#undef T

	return cmocka_run_group_tests_name("test_mc", tests, NULL, NULL);
}
