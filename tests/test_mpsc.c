/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for rmpsc_mpsc (include/ringmpsc/channel.h): every exported
 * function and every documented return code. Config and stats size rules,
 * creation limits and the rings made up front; registration (ids, growth,
 * -ENOSPC, -EPIPE, reuse of a drained ring and no reuse while it still has
 * elements); deregistration; every producer call and its _timed twin; every
 * consumer call (callback, count-only, pull, zero-copy, blocking), per
 * producer FIFO, spans that wrap, the adaptive-skip schedule and its reset;
 * close, drain and the status calls; metrics exact where they can be.
 *
 * Values are (producer id << 32) | sequence, so a misrouted, duplicated or
 * reordered element shows. The few helper threads (a producer pushing or a
 * closer closing while the consumer blocks) only make the blocking calls
 * wake up; no duration is asserted anywhere.
 *
 * RMPSC_TEST_SKIP=<glob> skips the cases whose names match (cmocka's skip
 * filter), e.g. to run the rest past a case a sanitizer aborts in.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <cmocka.h>

#include "test_util.h"

#include "ringmpsc/channel.h"
#include "ringmpsc/notify.h"
#include "ringmpsc/ring.h"
#include "ringmpsc/wait.h"

#include "test_core.h" /* test points; a producer's ring core, for a white-box case */
#include "test_table.h"

/* ---- helpers ------------------------------------------------------------ */

#define SENTINEL_CH SENTINEL_OF(rmpsc_mpsc)
#define SENTINEL_P SENTINEL_OF(rmpsc_producer)

#define MS 1000000ll

static uint64_t val(uint32_t id, uint32_t seq)
{
	return ((uint64_t)id << 32) | seq;
}

static uint32_t val_id(uint64_t v)
{
	return (uint32_t)(v >> 32);
}

static uint32_t val_seq(uint64_t v)
{
	return (uint32_t)v;
}

static rmpsc_mpsc_config cfg_of(uint32_t cap, uint32_t producers, uint32_t max,
				 uint32_t flags)
{
	rmpsc_mpsc_config cfg;

	assert_ret(rmpsc_mpsc_config_init(&cfg, sizeof cfg), 0);
	cfg.ring_capacity = cap;
	cfg.producers = producers;
	cfg.max_producers = max;
	cfg.flags = flags;
	return cfg;
}

static rmpsc_mpsc *mpsc_new(uint32_t cap, uint32_t producers, uint32_t max, uint32_t flags)
{
	rmpsc_mpsc_config cfg = cfg_of(cap, producers, max, flags);
	rmpsc_mpsc *ch = SENTINEL_CH;

	assert_ret(rmpsc_mpsc_create(&cfg, &ch), 0);
	return assert_handle(ch, SENTINEL_CH);
}

static rmpsc_producer *reg(rmpsc_mpsc *ch, int want_id)
{
	return producer_new(ch, false, want_id);
}

/* Push values (id, first..first+n-1) one at a time. */
static void push_vals(rmpsc_producer *p, uint32_t first, uint32_t n)
{
	const uint32_t id = (uint32_t)rmpsc_producer_id(p);

	for (uint32_t i = 0; i < n; i++) {
		uint64_t v = val(id, first + i);

		assert_ret(rmpsc_producer_push(p, &v), 0);
	}
}

static void fill_vals(uint64_t *v, uint32_t id, uint32_t first, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		v[i] = val(id, first + i);
}

/* A well-formed span of @n 8-byte elements. */
static void span_check(const rmpsc_span *s, uint32_t n)
{
	assert_int_equal(s->count[0] + s->count[1], n);
	assert_int_equal(s->nseg, s->count[1] ? 2 : (s->count[0] ? 1 : 0));
	assert_int_equal(s->iov[0].iov_len, (size_t)s->count[0] * 8);
	assert_int_equal(s->iov[1].iov_len, (size_t)s->count[1] * 8);
	assert_int_equal(s->_pad0, 0);
	if (s->count[0])
		assert_non_null(s->iov[0].iov_base);
	if (s->count[1])
		assert_non_null(s->iov[1].iov_base);
}

/* ---- what the handler saw ------------------------------------------------ */

enum { REC_MAX = 4096, REC_CALLS = 512 };

struct rec {
	uint32_t calls;
	uint32_t n;
	uint32_t call_id[REC_CALLS];
	uint32_t call_count[REC_CALLS];
	uint32_t id[REC_MAX];
	uint64_t v[REC_MAX];
};

static struct rec *rec_new(void)
{
	struct rec *r = calloc(1, sizeof *r);

	assert_non_null(r);
	return r;
}

static void rec_fn(void *ctx, uint32_t id, const void *items, uint32_t count)
{
	struct rec *r = ctx;
	const unsigned char *p = items;

	assert_non_null(items);
	assert_true(count > 0);
	assert_true(r->calls < REC_CALLS);
	assert_true(r->n + count <= REC_MAX);
	r->call_id[r->calls] = id;
	r->call_count[r->calls] = count;
	r->calls++;
	for (uint32_t i = 0; i < count; i++) {
		memcpy(&r->v[r->n], p + (size_t)i * 8, 8);
		r->id[r->n] = id;
		r->n++;
	}
}

/* A handler that must not be called. */
static void never_fn(void *ctx, uint32_t id, const void *items, uint32_t count)
{
	(void)ctx;
	(void)items;
	print_error("handler called: producer %u, %u elements\n", id, count);
	fail();
}

/*
 * The elements of producer @id the handler saw, in order, are exactly
 * first..first+n-1, every one reported with the id its value carries.
 */
static void rec_expect(const struct rec *r, uint32_t id, uint32_t first, uint32_t n)
{
	uint32_t seen = 0;

	for (uint32_t i = 0; i < r->n; i++) {
		assert_int_equal(val_id(r->v[i]), r->id[i]);
		if (r->id[i] != id)
			continue;
		if (seen >= n || val_seq(r->v[i]) != first + seen) {
			print_error("producer %u: element %u is seq %u, expected %u (of %u)\n",
				    id, seen, val_seq(r->v[i]), first + seen, n);
			fail();
		}
		seen++;
	}
	if (seen != n) {
		print_error("producer %u: %u elements, expected %u\n", id, seen, n);
		fail();
	}
}

/* Per-producer FIFO over a popped buffer: values of @id are first..+n-1. */
static void buf_expect(const uint64_t *v, uint32_t len, uint32_t id, uint32_t first,
		       uint32_t n)
{
	uint32_t seen = 0;

	for (uint32_t i = 0; i < len; i++) {
		if (val_id(v[i]) != id)
			continue;
		assert_true(seen < n);
		assert_int_equal(val_seq(v[i]), first + seen);
		seen++;
	}
	assert_int_equal(seen, n);
}

/* ---- fixture: cap 8, two registered producers (ids 0 and 1) ------------- */

enum { FIX_CAP = 8 };

struct fx {
	rmpsc_mpsc *ch;
	rmpsc_producer *p[2];
	struct rec *rec;
};

static int fx_setup_cap(void **state, uint32_t cap, uint32_t flags)
{
	struct fx *f = calloc(1, sizeof *f);

	assert_non_null(f);
	f->ch = mpsc_new(cap, 2, 4, flags);
	f->p[0] = reg(f->ch, 0);
	f->p[1] = reg(f->ch, 1);
	f->rec = rec_new();
	*state = f;
	return 0;
}

static int setup_mpsc(void **state)
{
	return fx_setup_cap(state, FIX_CAP, 0);
}

static int setup_mpsc_metrics(void **state)
{
	return fx_setup_cap(state, FIX_CAP, RMPSC_MPSC_F_METRICS);
}

/* Rings of 256: room for more than 64 elements per producer. */
static int setup_mpsc_wide(void **state)
{
	return fx_setup_cap(state, 256, 0);
}

static int teardown_mpsc(void **state)
{
	struct fx *f = *state;

	rmpsc_mpsc_destroy(f->ch);
	free(f->rec);
	free(f);
	return 0;
}

/* Register producers 0..n-1 of @ch into @p. */
static void reg_all(rmpsc_mpsc *ch, rmpsc_producer **p, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = reg(ch, i);
}

/* @n consume rounds that find nothing (adaptive skip backs off). */
static void idle_rounds(rmpsc_mpsc *ch, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		assert_ret(rmpsc_mpsc_consume_all(ch, never_fn, NULL), 0);
}

/* Consume rounds until one returns 0 (or -EPIPE), recording everything. */
static int64_t consume_until_zero(rmpsc_mpsc *ch, struct rec *r)
{
	int64_t k, total = 0;

	while ((k = rmpsc_mpsc_consume_all(ch, rec_fn, r)) > 0)
		total += k;
	assert_true(k == 0 || k == -EPIPE);
	return total;
}

/* Consume rounds until @want elements came (adaptive skip may make a
 * round miss a ring with data: at most 65 rounds, channel.h). */
static int64_t consume_rounds(rmpsc_mpsc *ch, struct rec *r, int64_t want)
{
	int64_t total = 0;

	for (int i = 0; i < 65 && total < want; i++) {
		int64_t k = rmpsc_mpsc_consume_all(ch, rec_fn, r);

		assert_true(k >= 0);
		total += k;
	}
	return total;
}

/* ---- helper threads: act while the test thread blocks ---------------------- */

enum act { ACT_PUSH, ACT_CLOSE };

struct helper {
	pthread_t t;
	enum act act;
	rmpsc_mpsc *ch;
	rmpsc_producer *p;
	uint64_t v;
	int rc;
};

static void *helper_main(void *arg)
{
	struct helper *h = arg;

	/* Give the test thread time to go to sleep; it wakes either way. */
	sleep_ns(20 * MS);
	if (h->act == ACT_PUSH)
		h->rc = rmpsc_producer_push(h->p, &h->v);
	else
		h->rc = rmpsc_mpsc_close(h->ch);
	return NULL;
}

static void helper_start(struct helper *h, enum act act, rmpsc_mpsc *ch, rmpsc_producer *p,
			 uint64_t v)
{
	memset(h, 0, sizeof *h);
	h->act = act;
	h->ch = ch;
	h->p = p;
	h->v = v;
	h->rc = -1;
	assert_int_equal(pthread_create(&h->t, NULL, helper_main, h), 0);
}

static void helper_join(struct helper *h)
{
	assert_int_equal(pthread_join(h->t, NULL), 0);
	assert_ret(h->rc, 0);
}

/* Generous bound for a blocking call that a helper ends: a watchdog, not a
 * timing requirement. */
#define WAKE_TIMEOUT (30000 * MS)

/* ---- config_init --------------------------------------------------------- */

static void test_mpsc_config_init_when_called_writes_defaults(void **state)
{
	const rmpsc_mpsc_config want = {
		.size = sizeof want, .flags = 0, .elem_size = 8, .ring_capacity = 1024,
		.producers = 4, .max_producers = 256, .numa_node = RMPSC_NODE_ANY, ._pad0 = 0,
	};
	rmpsc_mpsc_config cfg;

	(void)state;
	assert_int_equal(sizeof cfg, RMPSC_MPSC_CONFIG_SIZE_V1);
	memset(&cfg, 0xa5, sizeof cfg);
	assert_ret(rmpsc_mpsc_config_init(&cfg, sizeof cfg), 0);
	assert_memory_equal(&cfg, &want, sizeof cfg); /* every field, every byte */
}

static void test_mpsc_config_init_with_larger_size_writes_exactly_size_bytes(void **state)
{
	union {
		rmpsc_mpsc_config cfg;
		unsigned char b[64];
	} u;

	(void)state;
	/* size == sizeof: nothing past it is touched */
	memset(u.b, 0xa5, sizeof u.b);
	assert_ret(rmpsc_mpsc_config_init(&u.cfg, sizeof u.cfg), 0);
	for (size_t i = sizeof u.cfg; i < sizeof u.b; i++)
		assert_int_equal(u.b[i], 0xa5);
	/* a newer caller's larger struct: the unknown tail is zeroed, no more */
	memset(u.b, 0xa5, sizeof u.b);
	assert_ret(rmpsc_mpsc_config_init(&u.cfg, 48), 0);
	assert_int_equal(u.cfg.size, 48);
	assert_int_equal(u.cfg.ring_capacity, 1024);
	for (size_t i = sizeof u.cfg; i < 48; i++)
		assert_int_equal(u.b[i], 0);
	for (size_t i = 48; i < sizeof u.b; i++)
		assert_int_equal(u.b[i], 0xa5);
}

/* ---- create / destroy ---------------------------------------------------- */

static int mpsc_open(rmpsc_mpsc *ch)
{
	return rmpsc_mpsc_is_closed(ch) == 0;
}

TT_CONSTRUCTOR(create_from, rmpsc_mpsc, rmpsc_mpsc_create, mpsc_open, rmpsc_mpsc_destroy)

/* Create from @cfg expecting @want: *out NULL on error, an open channel
 * on success (destroyed). */
#define create_expect(cfg, want) TT_EXPECT(create_from((void *)(cfg), 0), (want))

static void test_mpsc_create_with_defaults_makes_default_rings(void **state)
{
	rmpsc_mpsc_config cfg;
	rmpsc_mpsc_snapshot st;
	rmpsc_mpsc *ch = NULL;
	rmpsc_producer *p;
	rmpsc_span s;

	(void)state;
	assert_ret(rmpsc_mpsc_config_init(&cfg, sizeof cfg), 0);
	assert_ret(rmpsc_mpsc_create(&cfg, &ch), 0);
	assert_ret(rmpsc_mpsc_stats(ch, &st, sizeof st), 0);
	assert_int_equal(st.rings, 4);
	assert_int_equal(st.producers, 0);
	assert_int_equal(st.closed, 0);
	assert_int_equal(st.pending, 0);
	assert_ret(rmpsc_mpsc_ring_len(ch, 3), 0);
	assert_ret(rmpsc_mpsc_ring_len(ch, 4), -ENOENT);
	/* the default ring holds 1024 elements, no more */
	p = reg(ch, 0);
	assert_ret(rmpsc_producer_reserve(p, 2000, &s), 1024);
	assert_ret(rmpsc_producer_commit(p, 1024), 0);
	assert_ret(rmpsc_producer_len(p), 1024);
	assert_ret(rmpsc_producer_reserve(p, 1, &s), -EAGAIN);
	rmpsc_mpsc_destroy(ch);
}

static void test_mpsc_create_with_limit_values_succeeds(void **state)
{
	rmpsc_mpsc_config base = cfg_of(8, 0, 4, 0), cfg;

	(void)state;
	cfg = base; cfg.elem_size = 1; cfg.producers = 1; create_expect(&cfg, 0);
	/* no ring up front: the largest sizes cost nothing yet */
	cfg = base; cfg.elem_size = RMPSC_RING_ELEM_SIZE_MAX; create_expect(&cfg, 0);
	cfg = base; cfg.ring_capacity = RMPSC_RING_CAPACITY_MAX; create_expect(&cfg, 0);
	cfg = base; cfg.ring_capacity = 1; cfg.producers = 4; create_expect(&cfg, 0);
	cfg = base; cfg.max_producers = 1; cfg.producers = 1; create_expect(&cfg, 0);
	cfg = base; cfg.max_producers = RMPSC_MPSC_PRODUCERS_MAX; create_expect(&cfg, 0);
	cfg = base; cfg.producers = 4; create_expect(&cfg, 0);
	cfg = base; cfg.numa_node = 0; create_expect(&cfg, 0);
	cfg = base; cfg.flags = RMPSC_MPSC_F_METRICS | RMPSC_MPSC_F_PREFAULT;
	cfg.producers = 2; create_expect(&cfg, 0);
}

static void test_mpsc_create_with_hugepage_flag_succeeds_or_returns_enomem(void **state)
{
	rmpsc_mpsc_config cfg = cfg_of(8, 1, 4, RMPSC_MPSC_F_HUGEPAGE);
	rmpsc_mpsc *ch = SENTINEL_CH;
	int rc;

	(void)state;
	rc = rmpsc_mpsc_create(&cfg, &ch);
	if (rc == -ENOMEM) {
		assert_null(ch);
		skip(); /* no huge pages free on this system */
	}
	assert_ret(rc, 0);
	push_vals(reg(ch, 0), 0, 3);
	assert_ret(rmpsc_mpsc_len(ch), 3);
	rmpsc_mpsc_destroy(ch);
}

static void test_mpsc_create_when_ring_cannot_be_mapped_returns_enomem(void **state)
{
	/* 2^30 slots of 2^24 bytes: 2^54 bytes, more than any address space */
	rmpsc_mpsc_config cfg = cfg_of(RMPSC_RING_CAPACITY_MAX, 1, 4, 0);

	(void)state;
	cfg.elem_size = RMPSC_RING_ELEM_SIZE_MAX;
	create_expect(&cfg, -ENOMEM);
}

static void test_mpsc_create_with_producers_makes_rings_up_front(void **state)
{
	rmpsc_mpsc *ch = mpsc_new(8, 3, 5, 0);
	rmpsc_mpsc_snapshot st;

	(void)state;
	assert_ret(rmpsc_mpsc_stats(ch, &st, sizeof st), 0);
	assert_int_equal(st.rings, 3);
	assert_int_equal(st.producers, 0);
	for (uint32_t i = 0; i < 3; i++)
		assert_ret(rmpsc_mpsc_ring_len(ch, i), 0);
	assert_ret(rmpsc_mpsc_ring_len(ch, 3), -ENOENT);
	/* the first registrations take them: no ring is added */
	reg(ch, 0);
	reg(ch, 1);
	reg(ch, 2);
	assert_ret(rmpsc_mpsc_stats(ch, &st, sizeof st), 0);
	assert_int_equal(st.rings, 3);
	assert_int_equal(st.producers, 3);
	rmpsc_mpsc_destroy(ch);
}

static void test_mpsc_create_with_zero_producers_makes_no_ring(void **state)
{
	rmpsc_mpsc *ch = mpsc_new(8, 0, 2, 0);
	rmpsc_mpsc_snapshot st;

	(void)state;
	assert_ret(rmpsc_mpsc_stats(ch, &st, sizeof st), 0);
	assert_int_equal(st.rings, 0);
	assert_ret(rmpsc_mpsc_ring_len(ch, 0), -ENOENT);
	assert_ret(rmpsc_mpsc_len(ch), 0);
	assert_ret(rmpsc_mpsc_hottest(ch), -EAGAIN);
	assert_ret(rmpsc_mpsc_consume_all(ch, never_fn, NULL), 0);
	reg(ch, 0);
	assert_ret(rmpsc_mpsc_stats(ch, &st, sizeof st), 0);
	assert_int_equal(st.rings, 1);
	rmpsc_mpsc_destroy(ch);
}

static void test_mpsc_destroy_with_null_does_nothing(void **state)
{
	(void)state;
	rmpsc_mpsc_destroy(NULL);
}

static void test_mpsc_destroy_with_producers_and_pending_frees_everything(void **state)
{
	rmpsc_mpsc *ch = mpsc_new(8, 1, 4, RMPSC_MPSC_F_METRICS);
	rmpsc_producer *p0 = reg(ch, 0), *p1 = reg(ch, 1);
	rmpsc_span s;

	(void)state;
	push_vals(p0, 0, 5);
	push_vals(p1, 0, 8);
	assert_ret(rmpsc_producer_reserve(p0, 2, &s), 2); /* never committed */
	assert_ret(rmpsc_mpsc_deregister(p1), 0);
	rmpsc_mpsc_destroy(ch); /* ASan: no leak, no use after free */
}

/* ---- register / deregister ------------------------------------------------ */

static void test_mpsc_register_when_called_returns_ids_and_handles(void **state)
{
	rmpsc_mpsc *ch = mpsc_new(8, 2, 8, 0);
	rmpsc_producer *p[4];
	rmpsc_mpsc_snapshot st;

	(void)state;
	for (int i = 0; i < 4; i++) {
		p[i] = reg(ch, i);
		for (int j = 0; j < i; j++)
			assert_ptr_not_equal(p[i], p[j]);
		assert_ret(rmpsc_producer_len(p[i]), 0);
		assert_ret(rmpsc_mpsc_stats(ch, &st, sizeof st), 0);
		assert_int_equal(st.producers, (uint32_t)i + 1);
	}
	rmpsc_mpsc_destroy(ch);
}

static void test_mpsc_register_after_close_returns_epipe(void **state)
{
	struct fx *f = *state;
	rmpsc_producer *p = SENTINEL_P;

	assert_ret(rmpsc_mpsc_close(f->ch), 0);
	/* even though free rings remain */
	assert_ret(rmpsc_mpsc_register(f->ch, &p), -EPIPE);
	assert_null(p);
}

static void test_mpsc_register_at_max_producers_returns_enospc(void **state)
{
	rmpsc_mpsc *ch = mpsc_new(8, 1, 3, 0);
	rmpsc_producer *p = SENTINEL_P;
	rmpsc_mpsc_snapshot st;

	(void)state;
	reg(ch, 0);
	reg(ch, 1);
	reg(ch, 2);
	assert_ret(rmpsc_mpsc_register(ch, &p), -ENOSPC);
	assert_null(p);
	p = SENTINEL_P;
	assert_ret(rmpsc_mpsc_register(ch, &p), -ENOSPC);
	assert_null(p);
	assert_ret(rmpsc_mpsc_stats(ch, &st, sizeof st), 0);
	assert_int_equal(st.rings, 3);
	assert_int_equal(st.producers, 3);
	rmpsc_mpsc_destroy(ch);
}

static void test_mpsc_register_past_initial_rings_grows_channel(void **state)
{
	rmpsc_mpsc *ch = mpsc_new(8, 1, 6, 0);
	rmpsc_producer *p[6];
	rmpsc_mpsc_snapshot st;
	struct rec *r = rec_new();

	(void)state;
	for (int i = 0; i < 6; i++) {
		p[i] = reg(ch, i);
		assert_ret(rmpsc_mpsc_stats(ch, &st, sizeof st), 0);
		assert_int_equal(st.rings, (uint32_t)i + 1);
		assert_ret(rmpsc_mpsc_ring_len(ch, (uint32_t)i), 0);
		assert_ret(rmpsc_mpsc_ring_len(ch, (uint32_t)i + 1), -ENOENT);
	}
	/* every ring works, old and new, and the old ones did not move */
	for (int i = 0; i < 6; i++)
		push_vals(p[i], 0, (uint32_t)i + 1);
	assert_ret(rmpsc_mpsc_len(ch), 21);
	assert_ret(consume_until_zero(ch, r), 21);
	for (uint32_t i = 0; i < 6; i++)
		rec_expect(r, i, 0, i + 1);
	free(r);
	rmpsc_mpsc_destroy(ch);
}

static void test_mpsc_register_when_ring_cannot_be_mapped_returns_enomem(void **state)
{
	rmpsc_mpsc_config cfg = cfg_of(RMPSC_RING_CAPACITY_MAX, 0, 4, 0);
	rmpsc_mpsc *ch = NULL;
	rmpsc_producer *p = SENTINEL_P;
	rmpsc_mpsc_snapshot st;

	(void)state;
	cfg.elem_size = RMPSC_RING_ELEM_SIZE_MAX;
	assert_ret(rmpsc_mpsc_create(&cfg, &ch), 0);
	assert_ret(rmpsc_mpsc_register(ch, &p), -ENOMEM);
	assert_null(p);
	assert_ret(rmpsc_mpsc_stats(ch, &st, sizeof st), 0);
	assert_int_equal(st.rings, 0);
	assert_int_equal(st.producers, 0);
	rmpsc_mpsc_destroy(ch);
}

static void test_mpsc_register_after_drained_deregister_reuses_ring(void **state)
{
	rmpsc_mpsc *ch = mpsc_new(8, 1, 4, 0);
	rmpsc_producer *p = reg(ch, 0), *q;
	struct rec *r = rec_new();
	rmpsc_mpsc_snapshot st;
	rmpsc_span s;

	(void)state;
	push_vals(p, 0, 5);
	assert_ret(rmpsc_producer_reserve(p, 2, &s), 2); /* dropped by the close */
	assert_ret(rmpsc_producer_deregister(p), 0);
	assert_ret(consume_until_zero(ch, r), 5);
	rec_expect(r, 0, 0, 5);
	/* drained: the ring is handed out again, empty and open */
	q = reg(ch, 0);
	assert_ret(rmpsc_mpsc_stats(ch, &st, sizeof st), 0);
	assert_int_equal(st.rings, 1);
	assert_int_equal(st.producers, 1);
	assert_ret(rmpsc_producer_len(q), 0);
	assert_ret(rmpsc_mpsc_ring_len(ch, 0), 0);
	/* and holds a full ring's worth again */
	push_vals(q, 100, FIX_CAP);
	assert_ret(rmpsc_producer_reserve(q, 1, &s), -EAGAIN);
	memset(r, 0, sizeof *r);
	assert_ret(consume_until_zero(ch, r), FIX_CAP);
	rec_expect(r, 0, 100, FIX_CAP);
	free(r);
	rmpsc_mpsc_destroy(ch);
}

static void test_mpsc_register_while_deregistered_ring_pending_does_not_reuse_it(
	void **state)
{
	rmpsc_mpsc *ch = mpsc_new(8, 1, 2, 0);
	rmpsc_producer *p = reg(ch, 0), *q, *x = SENTINEL_P;
	struct rec *r = rec_new();

	(void)state;
	push_vals(p, 0, 3);
	assert_ret(rmpsc_mpsc_deregister(p), 0);
	/* ring 0 still holds 3 elements: a new ring is made instead */
	q = reg(ch, 1);
	push_vals(q, 0, 2);
	/* and with max_producers 2 nothing is left */
	assert_ret(rmpsc_mpsc_register(ch, &x), -ENOSPC);
	assert_null(x);
	assert_ret(rmpsc_mpsc_deregister(q), 0);
	assert_ret(rmpsc_mpsc_ring_len(ch, 0), 3);
	x = SENTINEL_P;
	assert_ret(rmpsc_mpsc_register(ch, &x), -ENOSPC);
	assert_null(x);
	/* the old elements are intact and in order */
	assert_ret(consume_until_zero(ch, r), 5);
	rec_expect(r, 0, 0, 3);
	rec_expect(r, 1, 0, 2);
	/* both drained now: both are reusable */
	x = reg(ch, 0);
	q = reg(ch, 1);
	assert_ptr_equal(x, p);
	push_vals(x, 7, 1);
	push_vals(q, 9, 1);
	memset(r, 0, sizeof *r);
	assert_ret(consume_until_zero(ch, r), 2);
	rec_expect(r, 0, 7, 1);
	rec_expect(r, 1, 9, 1);
	free(r);
	rmpsc_mpsc_destroy(ch);
}

static void test_mpsc_deregister_with_pending_elements_still_delivers_them(void **state)
{
	struct fx *f = *state;
	rmpsc_span s;

	push_vals(f->p[0], 0, 6);
	push_vals(f->p[1], 0, 2);
	assert_ret(rmpsc_producer_reserve(f->p[0], 2, &s), 2);
	assert_ret(rmpsc_mpsc_deregister(f->p[0]), 0);
	assert_ret(rmpsc_mpsc_ring_len(f->ch, 0), 6);
	assert_ret(rmpsc_mpsc_len(f->ch), 8);
	assert_ret(rmpsc_mpsc_consume_all(f->ch, rec_fn, f->rec), 8);
	rec_expect(f->rec, 0, 0, 6);
	rec_expect(f->rec, 1, 0, 2);
	assert_ret(rmpsc_mpsc_consume_all(f->ch, never_fn, NULL), 0);
	/* the channel stays open for the other producer */
	assert_ret(rmpsc_mpsc_is_closed(f->ch), 0);
	push_vals(f->p[1], 2, 1);
	assert_ret(rmpsc_mpsc_len(f->ch), 1);
}

/* ---- producer_id / producer_len ------------------------------------------ */

static void test_mpsc_producer_len_when_filling_and_consuming_tracks_pending(void **state)
{
	struct fx *f = *state;
	rmpsc_span s;

	for (uint32_t i = 0; i < FIX_CAP; i++) {
		assert_ret(rmpsc_producer_len(f->p[0]), i);
		push_vals(f->p[0], i, 1);
	}
	assert_ret(rmpsc_producer_len(f->p[0]), FIX_CAP);
	assert_ret(rmpsc_producer_len(f->p[1]), 0);
	/* reserved but not committed does not count */
	assert_ret(rmpsc_producer_reserve(f->p[1], 3, &s), 3);
	assert_ret(rmpsc_producer_len(f->p[1]), 0);
	assert_ret(rmpsc_producer_commit(f->p[1], 2), 0);
	assert_ret(rmpsc_producer_len(f->p[1]), 2);
	assert_ret(rmpsc_mpsc_consume_count(f->ch, 100), FIX_CAP + 2);
	assert_ret(rmpsc_producer_len(f->p[0]), 0);
	assert_ret(rmpsc_producer_len(f->p[1]), 0);
}

/* ---- producer calls ------------------------------------------------------ */

static void test_mpsc_producer_reserve_and_commit_publish_in_place(void **state)
{
	struct fx *f = *state;
	rmpsc_span s;

	assert_ret(rmpsc_producer_reserve(f->p[1], 5, &s), 5);
	span_check(&s, 5);
	for (uint32_t i = 0; i < 5; i++)
		span_put_u64(&s, i, val(1, i));
	/* nothing is visible before the commit */
	assert_ret(rmpsc_mpsc_len(f->ch), 0);
	assert_ret(rmpsc_mpsc_consume_all(f->ch, never_fn, NULL), 0);
	/* partial commits publish in order */
	assert_ret(rmpsc_producer_commit(f->p[1], 2), 0);
	assert_ret(rmpsc_producer_len(f->p[1]), 2);
	assert_ret(rmpsc_producer_commit(f->p[1], 4), -EINVAL); /* only 3 left */
	assert_ret(rmpsc_producer_commit(f->p[1], 3), 0);
	assert_ret(rmpsc_producer_commit(f->p[1], 1), -EINVAL);
	assert_ret(rmpsc_mpsc_consume_all(f->ch, rec_fn, f->rec), 5);
	rec_expect(f->rec, 1, 0, 5);
}

static void test_mpsc_producer_reserve_when_ring_wraps_returns_two_segments(void **state)
{
	struct fx *f = *state;
	rmpsc_span s;

	push_vals(f->p[0], 0, 6);
	assert_ret(rmpsc_mpsc_consume_count(f->ch, 6), 6);
	assert_ret(rmpsc_producer_reserve(f->p[0], 5, &s), 5);
	span_check(&s, 5);
	assert_int_equal(s.nseg, 2);
	assert_int_equal(s.count[0], 2);
	assert_int_equal(s.count[1], 3);
	assert_int_equal(s.pos, 6);
	for (uint32_t i = 0; i < 5; i++)
		span_put_u64(&s, i, val(0, 6 + i));
	assert_ret(rmpsc_producer_commit(f->p[0], 5), 0);
	assert_ret(rmpsc_mpsc_consume_all(f->ch, rec_fn, f->rec), 5);
	rec_expect(f->rec, 0, 6, 5);
}

static void test_mpsc_producer_calls_when_ring_full_return_eagain(void **state)
{
	struct fx *f = *state;
	uint64_t v[FIX_CAP];
	rmpsc_span s;

	push_vals(f->p[0], 0, FIX_CAP);
	fill_vals(v, 0, 100, FIX_CAP);
	assert_ret(rmpsc_producer_push(f->p[0], v), -EAGAIN);
	assert_ret(rmpsc_producer_push_n(f->p[0], v, 1), -EAGAIN);
	assert_ret(rmpsc_producer_push_n(f->p[0], v, FIX_CAP), -EAGAIN);
	assert_ret(rmpsc_producer_reserve(f->p[0], 1, &s), -EAGAIN);
	assert_ret(rmpsc_producer_len(f->p[0]), FIX_CAP);
	/* room for 3: push_n pushes what fits, reserve gives what there is */
	assert_ret(rmpsc_mpsc_consume_up_to(f->ch, 3, rec_fn, f->rec), 3);
	rec_expect(f->rec, 0, 0, 3);
	/* the other producer's ring is unaffected */
	push_vals(f->p[1], 0, 1);
	assert_ret(rmpsc_producer_push_n(f->p[0], v, 2), 2);
	assert_ret(rmpsc_producer_reserve(f->p[0], 5, &s), 1);
	span_put_u64(&s, 0, val(0, 102));
	assert_ret(rmpsc_producer_commit(f->p[0], 1), 0);
	assert_ret(rmpsc_producer_push(f->p[0], v), -EAGAIN);
	memset(f->rec, 0, sizeof *f->rec);
	assert_ret(consume_until_zero(f->ch, f->rec), FIX_CAP + 1);
	/* 3..7 then 100, 101, 102 */
	assert_int_equal(f->rec->n, FIX_CAP + 1);
	for (uint32_t i = 0, j = 0; i < f->rec->n; i++) {
		if (f->rec->id[i] != 0)
			continue;
		assert_int_equal(val_seq(f->rec->v[i]), j < 5 ? 3 + j : 100 + j - 5);
		j++;
	}
}

static void test_mpsc_producer_timed_calls_when_ring_full_time_out(void **state)
{
	struct fx *f = *state;
	uint64_t v[2] = { val(0, 90), val(0, 91) };
	rmpsc_wait w;
	rmpsc_span s;

	push_vals(f->p[0], 0, FIX_CAP);
	/* timeout 0: one try */
	assert_ret(rmpsc_producer_push_timed(f->p[0], v, 0, NULL), -ETIMEDOUT);
	assert_ret(rmpsc_producer_push_n_timed(f->p[0], v, 2, 0, NULL), -ETIMEDOUT);
	assert_ret(rmpsc_producer_reserve_timed(f->p[0], 1, &s, 0, NULL), -ETIMEDOUT);
	/* a short wait, with the default and with an explicit strategy */
	assert_ret(rmpsc_producer_push_timed(f->p[0], v, 1 * MS, NULL), -ETIMEDOUT);
	assert_ret(rmpsc_producer_push_n_timed(f->p[0], v, 2, 1 * MS, NULL), -ETIMEDOUT);
	assert_ret(rmpsc_producer_reserve_timed(f->p[0], 1, &s, 1 * MS, NULL), -ETIMEDOUT);
	for (uint32_t kind = 0; kind <= RMPSC_WAIT_KIND_MAX; kind++) {
		assert_ret(rmpsc_wait_init(&w, sizeof w, kind), 0);
		assert_ret(rmpsc_producer_push_timed(f->p[0], v, 1 * MS, &w), -ETIMEDOUT);
	}
	assert_ret(rmpsc_producer_len(f->p[0]), FIX_CAP);
	/* room for one: push_n_timed pushes it, then times out on the rest */
	assert_ret(rmpsc_mpsc_consume_up_to(f->ch, 1, rec_fn, f->rec), 1);
	assert_ret(rmpsc_producer_push_n_timed(f->p[0], v, 2, 1 * MS, NULL), 1);
	assert_ret(rmpsc_producer_len(f->p[0]), FIX_CAP);
	memset(f->rec, 0, sizeof *f->rec);
	assert_ret(rmpsc_mpsc_drain_all(f->ch, rec_fn, f->rec), FIX_CAP);
	assert_int_equal(f->rec->v[FIX_CAP - 1], val(0, 90));
}

static void test_mpsc_producer_timed_calls_with_room_succeed(void **state)
{
	struct fx *f = *state;
	uint64_t v[4];
	rmpsc_span s;

	v[0] = val(0, 0);
	assert_ret(rmpsc_producer_push_timed(f->p[0], v, -1, NULL), 0);
	fill_vals(v, 0, 1, 3);
	assert_ret(rmpsc_producer_push_n_timed(f->p[0], v, 3, 0, NULL), 3);
	assert_ret(rmpsc_producer_reserve_timed(f->p[0], 2, &s, -1, NULL), 2);
	span_put_u64(&s, 0, val(0, 4));
	span_put_u64(&s, 1, val(0, 5));
	assert_ret(rmpsc_producer_commit(f->p[0], 2), 0);
	/* n == 0 returns at once */
	assert_ret(rmpsc_producer_push_n_timed(f->p[0], v, 0, -1, NULL), 0);
	assert_ret(rmpsc_producer_reserve_timed(f->p[0], 0, &s, -1, NULL), 0);
	assert_int_equal(s.nseg, 0);
	assert_ret(rmpsc_mpsc_consume_all(f->ch, rec_fn, f->rec), 6);
	rec_expect(f->rec, 0, 0, 6);
}

static void test_mpsc_producer_calls_with_zero_count_return_zero(void **state)
{
	struct fx *f = *state;
	uint64_t v = 1;
	rmpsc_span s;

	memset(&s, 0xa5, sizeof s);
	assert_ret(rmpsc_producer_reserve(f->p[0], 0, &s), 0);
	assert_int_equal(s.nseg, 0);
	assert_int_equal(s.count[0] + s.count[1], 0);
	assert_ret(rmpsc_producer_commit(f->p[0], 0), 0);
	assert_ret(rmpsc_producer_push_n(f->p[0], &v, 0), 0);
	assert_ret(rmpsc_producer_push_n(f->p[0], NULL, 0), 0);
	assert_ret(rmpsc_producer_push_n_timed(f->p[0], NULL, 0, 0, NULL), 0);
	assert_ret(rmpsc_mpsc_len(f->ch), 0);
}

/* A newer caller's larger strategy with zeros past ours is taken, by a
 * producer and by the consumer (what the timed calls refuse: the tables). */
static void test_mpsc_timed_calls_with_larger_zero_tail_strategy_succeed(void **state)
{
	struct fx *f = *state;
	struct {
		rmpsc_wait w;
		uint64_t extra;
	} big;
	uint64_t v = val(0, 0);

	memset(&big, 0, sizeof big);
	assert_ret(rmpsc_wait_init(&big.w, sizeof big, RMPSC_WAIT_BLOCK), 0);
	assert_ret(rmpsc_producer_push_timed(f->p[0], &v, 0, &big.w), 0);
	assert_ret(rmpsc_mpsc_len(f->ch), 1);
	assert_ret(rmpsc_mpsc_consume_all_timed(f->ch, rec_fn, f->rec, 0, &big.w), 1);
	rec_expect(f->rec, 0, 0, 1);
}

static void test_mpsc_producer_calls_after_close_return_epipe(void **state)
{
	struct fx *f = *state;
	rmpsc_producer *p = f->p[0];
	uint64_t v[2] = { val(0, 50), val(0, 51) };
	rmpsc_span s;

	push_vals(p, 0, 2);
	assert_ret(rmpsc_producer_reserve(p, 3, &s), 3);
	assert_ret(rmpsc_mpsc_close(f->ch), 0);
	/* reserved before the close, committed after: refused */
	assert_ret(rmpsc_producer_commit(p, 2), -EPIPE);
	/* an over-commit is still misuse */
	assert_ret(rmpsc_producer_commit(p, 4), -EINVAL);
	assert_ret(rmpsc_producer_reserve(p, 1, &s), -EPIPE);
	assert_ret(rmpsc_producer_reserve(p, 0, &s), -EPIPE);
	assert_ret(rmpsc_producer_push(p, v), -EPIPE);
	assert_ret(rmpsc_producer_push_n(p, v, 2), -EPIPE);
	assert_ret(rmpsc_producer_push_n(p, v, 0), -EPIPE);
	assert_ret(rmpsc_producer_reserve_timed(p, 1, &s, 0, NULL), -EPIPE);
	assert_ret(rmpsc_producer_reserve_timed(p, 1, &s, -1, NULL), -EPIPE);
	assert_ret(rmpsc_producer_push_timed(p, v, 0, NULL), -EPIPE);
	assert_ret(rmpsc_producer_push_timed(p, v, -1, NULL), -EPIPE);
	assert_ret(rmpsc_producer_push_n_timed(p, v, 2, 0, NULL), -EPIPE);
	assert_ret(rmpsc_producer_push_n_timed(p, v, 2, -1, NULL), -EPIPE);
	assert_ret(rmpsc_producer_push(f->p[1], v), -EPIPE);
	/* the handle stays valid; what was committed before is delivered */
	assert_ret(rmpsc_producer_id(p), 0);
	assert_ret(rmpsc_producer_len(p), 2);
	assert_ret(rmpsc_mpsc_consume_all(f->ch, rec_fn, f->rec), 2);
	rec_expect(f->rec, 0, 0, 2);
	assert_ret(rmpsc_mpsc_consume_all(f->ch, never_fn, NULL), -EPIPE);
}

/*
 * ring.h: after close "reserve, commit and push* return -EPIPE (checked ...
 * before everything else, n == 0 and n > capacity included, except that an
 * over-commit is still -EINVAL)". commit(0) is not an over-commit.
 */
static void test_mpsc_producer_commit_zero_after_close_returns_epipe(void **state)
{
	struct fx *f = *state;

	assert_ret(rmpsc_mpsc_close(f->ch), 0);
	assert_ret(rmpsc_producer_commit(f->p[0], 0), -EPIPE);
}

static void test_mpsc_producer_calls_with_odd_elem_size_roundtrip_byte_exact(void **state)
{
	rmpsc_mpsc_config cfg = cfg_of(4, 2, 2, 0);
	rmpsc_mpsc *ch = NULL;
	rmpsc_producer *p;
	unsigned char in[4][5], out[8][5];
	rmpsc_span s;

	(void)state;
	cfg.elem_size = 5;
	assert_ret(rmpsc_mpsc_create(&cfg, &ch), 0);
	p = reg(ch, 0);
	for (int i = 0; i < 4; i++)
		for (int j = 0; j < 5; j++)
			in[i][j] = (unsigned char)(0x11 * (i + 1) + j);
	for (int round = 0; round < 3; round++) {
		assert_ret(rmpsc_producer_push(p, in[0]), 0);
		assert_ret(rmpsc_producer_push_n(p, in[1], 2), 2);
		assert_ret(rmpsc_producer_reserve(p, 1, &s), 1);
		assert_int_equal(s.iov[0].iov_len + s.iov[1].iov_len, 5);
		memcpy(s.count[0] ? s.iov[0].iov_base : s.iov[1].iov_base, in[3], 5);
		assert_ret(rmpsc_producer_commit(p, 1), 0);
		memset(out, 0, sizeof out);
		assert_ret(rmpsc_mpsc_pop_n(ch, out, 8), 4);
		assert_memory_equal(out, in, sizeof in);
		assert_ret(rmpsc_producer_push_n(p, in[0], 3), 3);
		assert_ret(rmpsc_mpsc_readable(ch, 8, &s, NULL), 3);
		assert_int_equal(s.iov[0].iov_len + s.iov[1].iov_len, 15);
		memcpy(out, s.iov[0].iov_base, s.iov[0].iov_len);
		if (s.nseg > 1)
			memcpy((unsigned char *)out + s.iov[0].iov_len, s.iov[1].iov_base,
			       s.iov[1].iov_len);
		assert_memory_equal(out, in, 15);
		assert_ret(rmpsc_mpsc_advance(ch, 3), 0);
	}
	rmpsc_mpsc_destroy(ch);
}

/* ---- consume_all --------------------------------------------------------- */

static void test_mpsc_consume_all_with_two_producers_delivers_ids_in_fifo(void **state)
{
	struct fx *f = *state;
	uint64_t v[5];

	push_vals(f->p[0], 0, 3);
	fill_vals(v, 1, 0, 5);
	assert_ret(rmpsc_producer_push_n(f->p[1], v, 5), 5);
	push_vals(f->p[0], 3, 2);
	assert_ret(rmpsc_mpsc_consume_all(f->ch, rec_fn, f->rec), 10);
	rec_expect(f->rec, 0, 0, 5);
	rec_expect(f->rec, 1, 0, 5);
	/* one batch per ring: a call per ring, with the ring's id */
	assert_int_equal(f->rec->calls, 2);
	assert_int_not_equal(f->rec->call_id[0], f->rec->call_id[1]);
	assert_ret(rmpsc_mpsc_len(f->ch), 0);
	assert_ret(rmpsc_mpsc_consume_all(f->ch, never_fn, NULL), 0);
}

static void test_mpsc_consume_all_when_ring_wraps_hands_two_segments(void **state)
{
	struct fx *f = *state;

	push_vals(f->p[1], 0, 6);
	assert_ret(rmpsc_mpsc_consume_all(f->ch, rec_fn, f->rec), 6);
	memset(f->rec, 0, sizeof *f->rec);
	push_vals(f->p[1], 6, 5); /* slots 6, 7, then 0, 1, 2 */
	assert_ret(rmpsc_mpsc_consume_all(f->ch, rec_fn, f->rec), 5);
	assert_int_equal(f->rec->calls, 2);
	assert_int_equal(f->rec->call_id[0], 1);
	assert_int_equal(f->rec->call_id[1], 1);
	assert_int_equal(f->rec->call_count[0], 2);
	assert_int_equal(f->rec->call_count[1], 3);
	rec_expect(f->rec, 1, 6, 5);
}

static void test_mpsc_consume_all_when_empty_returns_zero(void **state)
{
	struct fx *f = *state;

	for (int i = 0; i < 200; i++)
		assert_ret(rmpsc_mpsc_consume_all(f->ch, never_fn, NULL), 0);
}

static void test_mpsc_consume_all_after_close_delivers_rest_then_epipe(void **state)
{
	struct fx *f = *state;

	push_vals(f->p[0], 0, 4);
	push_vals(f->p[1], 0, 3);
	assert_ret(rmpsc_mpsc_close(f->ch), 0);
	assert_ret(rmpsc_mpsc_consume_all(f->ch, rec_fn, f->rec), 7);
	rec_expect(f->rec, 0, 0, 4);
	rec_expect(f->rec, 1, 0, 3);
	/* -EPIPE is final, for every consumer call */
	for (int i = 0; i < 3; i++) {
		uint64_t v;
		rmpsc_span s;

		assert_ret(rmpsc_mpsc_consume_all(f->ch, never_fn, NULL), -EPIPE);
		assert_ret(rmpsc_mpsc_consume_up_to(f->ch, 5, never_fn, NULL), -EPIPE);
		assert_ret(rmpsc_mpsc_consume_count(f->ch, 5), -EPIPE);
		assert_ret(rmpsc_mpsc_consume_all_timed(f->ch, never_fn, NULL, -1, NULL),
			   -EPIPE);
		assert_ret(rmpsc_mpsc_pop_n(f->ch, &v, 1), -EPIPE);
		assert_ret(rmpsc_mpsc_pop_n_timed(f->ch, &v, 1, -1, NULL), -EPIPE);
		assert_ret(rmpsc_mpsc_readable(f->ch, 1, &s, NULL), -EPIPE);
		assert_ret(rmpsc_mpsc_readable_timed(f->ch, 1, &s, NULL, -1, NULL), -EPIPE);
		assert_ret(rmpsc_mpsc_drain_all(f->ch, never_fn, NULL), 0);
	}
	assert_ret(rmpsc_mpsc_is_drained(f->ch), 1);
}

static void test_mpsc_consume_all_after_close_with_idle_rings_delivers_at_once(
	void **state)
{
	struct fx *f = *state;

	/* make both rings idle for a long time, then close with data */
	for (int i = 0; i < 300; i++)
		assert_ret(rmpsc_mpsc_consume_all(f->ch, never_fn, NULL), 0);
	push_vals(f->p[0], 0, 1);
	push_vals(f->p[1], 0, 1);
	assert_ret(rmpsc_mpsc_close(f->ch), 0);
	/* -EPIPE is never reported while a ring still has data */
	assert_ret(consume_until_zero(f->ch, f->rec), 2);
	assert_ret(rmpsc_mpsc_consume_all(f->ch, never_fn, NULL), -EPIPE);
}

/* ---- consume_up_to ------------------------------------------------------- */

static void test_mpsc_consume_up_to_with_bound_stops_at_max(void **state)
{
	rmpsc_mpsc *ch = mpsc_new(8, 3, 3, 0);
	rmpsc_producer *p[3] = { reg(ch, 0), reg(ch, 1), reg(ch, 2) };
	struct rec *r = rec_new();
	uint64_t total = 0;
	int64_t k;

	(void)state;
	for (int i = 0; i < 3; i++)
		push_vals(p[i], 0, 5);
	while ((k = rmpsc_mpsc_consume_up_to(ch, 4, rec_fn, r)) > 0) {
		assert_true(k <= 4);
		total += (uint64_t)k;
		assert_int_equal(r->n, total);
	}
	assert_ret(k, 0);
	assert_int_equal(total, 15);
	for (uint32_t i = 0; i < 3; i++)
		rec_expect(r, i, 0, 5);
	/* a bound of 1 takes one element */
	push_vals(p[1], 5, 2);
	assert_ret(rmpsc_mpsc_reset_skip(ch), 0);
	memset(r, 0, sizeof *r);
	assert_ret(rmpsc_mpsc_consume_up_to(ch, 1, rec_fn, r), 1);
	assert_int_equal(r->n, 1);
	/* a large bound is not a limit */
	assert_ret(rmpsc_mpsc_consume_up_to(ch, UINT64_MAX, rec_fn, r), 1);
	rec_expect(r, 1, 5, 2);
	free(r);
	rmpsc_mpsc_destroy(ch);
}

static void test_mpsc_consume_up_to_with_zero_max_returns_zero(void **state)
{
	struct fx *f = *state;

	push_vals(f->p[0], 0, 2);
	assert_ret(rmpsc_mpsc_consume_up_to(f->ch, 0, never_fn, NULL), 0);
	assert_ret(rmpsc_mpsc_len(f->ch), 2);
}

static void test_mpsc_consume_up_to_after_stopping_at_ring_end_serves_next_ring(
	void **state)
{
	struct fx *f = *state;

	push_vals(f->p[0], 0, 4);
	push_vals(f->p[1], 0, 4);
	assert_ret(rmpsc_mpsc_consume_up_to(f->ch, 4, rec_fn, f->rec), 4);
	assert_int_equal(f->rec->calls, 1);
	memset(f->rec, 0, sizeof *f->rec);
	assert_ret(rmpsc_mpsc_consume_up_to(f->ch, 4, rec_fn, f->rec), 4);
	assert_int_equal(f->rec->calls, 1);
	assert_ret(rmpsc_mpsc_len(f->ch), 0);
}

/*
 * "stopping after max elements (later rings are served first next time)":
 * a call that stopped inside ring A leaves the rings after A for the next
 * call to serve first, so a producer that keeps its ring full cannot starve
 * the others.
 */
static void test_mpsc_consume_up_to_after_stopping_mid_ring_serves_later_rings_first(
	void **state)
{
	struct fx *f = *state;
	uint32_t first;

	push_vals(f->p[0], 0, FIX_CAP);
	push_vals(f->p[1], 0, FIX_CAP);
	assert_ret(rmpsc_mpsc_consume_up_to(f->ch, 3, rec_fn, f->rec), 3);
	assert_int_equal(f->rec->calls, 1);
	first = f->rec->call_id[0];
	memset(f->rec, 0, sizeof *f->rec);
	assert_ret(rmpsc_mpsc_consume_up_to(f->ch, 3, rec_fn, f->rec), 3);
	assert_true(f->rec->calls >= 1);
	if (f->rec->call_id[0] == first) {
		print_error("consume_up_to stopped inside ring %u; the next call began "
			    "with ring %u again instead of a later ring\n",
			    first, f->rec->call_id[0]);
		fail();
	}
}

static void test_mpsc_consume_up_to_with_busy_first_ring_still_serves_others(void **state)
{
	struct fx *f = *state;
	uint32_t top = 0;

	push_vals(f->p[1], 0, 1);
	for (int call = 0; call < 20; call++) {
		/* producer 0 keeps its ring full */
		while (rmpsc_producer_len(f->p[0]) < FIX_CAP)
			push_vals(f->p[0], top++, 1);
		assert_ret(rmpsc_mpsc_consume_up_to(f->ch, 4, rec_fn, f->rec), 4);
	}
	if (rmpsc_mpsc_ring_len(f->ch, 1) != 0) {
		print_error("20 calls of consume_up_to(4) never served producer 1 while "
			    "producer 0 kept its ring full\n");
		fail();
	}
	rec_expect(f->rec, 1, 0, 1);
}

/* ---- consume_count ------------------------------------------------------- */

static void test_mpsc_consume_count_discards_up_to_max(void **state)
{
	struct fx *f = *state;
	int64_t k, total = 0;

	push_vals(f->p[0], 0, 5);
	push_vals(f->p[1], 0, 5);
	assert_ret(rmpsc_mpsc_consume_count(f->ch, 0), 0);
	assert_ret(rmpsc_mpsc_consume_count(f->ch, 3), 3);
	assert_ret(rmpsc_mpsc_len(f->ch), 7);
	while ((k = rmpsc_mpsc_consume_count(f->ch, 4)) > 0) {
		assert_true(k <= 4);
		total += k;
	}
	assert_ret(k, 0);
	assert_int_equal(total, 7);
	assert_ret(rmpsc_mpsc_len(f->ch), 0);
	/* what follows the discarded elements arrives in order */
	push_vals(f->p[0], 5, 2);
	push_vals(f->p[1], 5, 1);
	assert_ret(rmpsc_mpsc_reset_skip(f->ch), 0);
	assert_ret(rmpsc_mpsc_consume_count(f->ch, UINT64_MAX), 3);
	push_vals(f->p[0], 7, 1);
	assert_ret(rmpsc_mpsc_consume_all(f->ch, rec_fn, f->rec), 1);
	rec_expect(f->rec, 0, 7, 1);
	assert_ret(rmpsc_mpsc_close(f->ch), 0);
	assert_ret(rmpsc_mpsc_consume_count(f->ch, 10), -EPIPE);
	assert_ret(rmpsc_mpsc_consume_count(f->ch, 0), 0);
}

/* ---- consume_all_timed --------------------------------------------------- */

static void test_mpsc_consume_all_timed_when_empty_times_out(void **state)
{
	struct fx *f = *state;
	rmpsc_wait w;

	assert_ret(rmpsc_mpsc_consume_all_timed(f->ch, never_fn, NULL, 0, NULL), -ETIMEDOUT);
	assert_ret(rmpsc_mpsc_consume_all_timed(f->ch, never_fn, NULL, 1 * MS, NULL),
		   -ETIMEDOUT);
	for (uint32_t kind = 0; kind <= RMPSC_WAIT_KIND_MAX; kind++) {
		assert_ret(rmpsc_wait_init(&w, sizeof w, kind), 0);
		assert_ret(rmpsc_mpsc_consume_all_timed(f->ch, never_fn, NULL, 1 * MS, &w),
			   -ETIMEDOUT);
	}
}

static void test_mpsc_consume_all_timed_with_data_returns_it_at_once(void **state)
{
	struct fx *f = *state;

	push_vals(f->p[0], 0, 2);
	push_vals(f->p[1], 0, 3);
	assert_ret(rmpsc_mpsc_consume_all_timed(f->ch, rec_fn, f->rec, -1, NULL), 5);
	rec_expect(f->rec, 0, 0, 2);
	rec_expect(f->rec, 1, 0, 3);
	push_vals(f->p[1], 3, 1);
	assert_ret(rmpsc_mpsc_consume_all_timed(f->ch, rec_fn, f->rec, 0, NULL), 1);
}

static void test_mpsc_consume_all_timed_when_producer_pushes_wakes(void **state)
{
	struct fx *f = *state;
	struct helper h;
	rmpsc_wait w;

	helper_start(&h, ACT_PUSH, f->ch, f->p[1], val(1, 0));
	assert_ret(rmpsc_mpsc_consume_all_timed(f->ch, rec_fn, f->rec, WAKE_TIMEOUT, NULL),
		   1);
	helper_join(&h);
	rec_expect(f->rec, 1, 0, 1);
	/* with a strategy that goes to the futex at once, no time limit */
	assert_ret(rmpsc_wait_init(&w, sizeof w, RMPSC_WAIT_BLOCK), 0);
	w.spin_count = 0;
	w.yield_count = 0;
	helper_start(&h, ACT_PUSH, f->ch, f->p[0], val(0, 0));
	assert_ret(rmpsc_mpsc_consume_all_timed(f->ch, rec_fn, f->rec, -1, &w), 1);
	helper_join(&h);
	rec_expect(f->rec, 0, 0, 1);
}

static void test_mpsc_consume_all_timed_with_idle_rings_wakes_for_late_ring(void **state)
{
	rmpsc_mpsc *ch = mpsc_new(8, 8, 8, 0);
	rmpsc_producer *p[8];
	struct rec *r = rec_new();
	struct helper h;

	(void)state;
	reg_all(ch, p, 8);
	idle_rounds(ch, 300);
	/* the blocking call looks at every ring before it sleeps */
	helper_start(&h, ACT_PUSH, ch, p[6], val(6, 0));
	assert_ret(rmpsc_mpsc_consume_all_timed(ch, rec_fn, r, WAKE_TIMEOUT, NULL), 1);
	helper_join(&h);
	rec_expect(r, 6, 0, 1);
	free(r);
	rmpsc_mpsc_destroy(ch);
}

static void test_mpsc_consume_all_timed_after_close_and_drain_returns_epipe(void **state)
{
	struct fx *f = *state;

	push_vals(f->p[0], 0, 2);
	assert_ret(rmpsc_mpsc_close(f->ch), 0);
	assert_ret(rmpsc_mpsc_consume_all_timed(f->ch, rec_fn, f->rec, -1, NULL), 2);
	assert_ret(rmpsc_mpsc_consume_all_timed(f->ch, never_fn, NULL, -1, NULL), -EPIPE);
	assert_ret(rmpsc_mpsc_consume_all_timed(f->ch, never_fn, NULL, 0, NULL), -EPIPE);
	rec_expect(f->rec, 0, 0, 2);
}

static void test_mpsc_consume_all_timed_when_blocked_close_wakes_with_epipe(void **state)
{
	struct fx *f = *state;
	struct helper h;

	helper_start(&h, ACT_CLOSE, f->ch, NULL, 0);
	assert_ret(rmpsc_mpsc_consume_all_timed(f->ch, never_fn, NULL, WAKE_TIMEOUT, NULL),
		   -EPIPE);
	helper_join(&h);
	assert_ret(rmpsc_mpsc_is_closed(f->ch), 1);
}

/*
 * "Before sleeping they look at every ring": consume_all_timed must not
 * report -ETIMEDOUT while a ring that adaptive skip passes over holds an
 * element. With SLEEP (or YIELD) every poll used the skipping round, so an
 * element in a ring found empty for 200 rounds waited up to 63 sleeps, past
 * the call's time; a timeout of 0 had the same one-round look. Each wait
 * kind here starts with the element already in the skipped ring.
 */
static void test_mpsc_consume_all_timed_with_data_in_skipped_ring_returns_it(void **state)
{
	struct fx *f = *state;
	static const uint32_t kinds[] = { RMPSC_WAIT_SLEEP, RMPSC_WAIT_YIELD, RMPSC_WAIT_BLOCK };

	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
		for (int zero = 0; zero < 2; zero++) {
			rmpsc_wait w;
			uint64_t v = val(1, (uint32_t)(2 * i + (size_t)zero));

			/* ring 1 found empty again and again: skipped for 63 rounds */
			for (int k = 0; k < 200; k++)
				assert_ret(rmpsc_mpsc_consume_all(f->ch, never_fn, NULL), 0);
			assert_ret(rmpsc_producer_push(f->p[1], &v), 0);
			assert_ret(rmpsc_wait_init(&w, sizeof w, kinds[i]), 0);
			w.spin_count = 0;
			w.yield_count = 0;
			w.sleep_ns = 100 * MS;
			f->rec->n = 0;
			f->rec->calls = 0;
			assert_ret(rmpsc_mpsc_consume_all_timed(f->ch, rec_fn, f->rec,
								zero ? 0 : 1000 * MS, &w), 1);
			assert_int_equal(f->rec->v[0], v);
		}
	}
}

/* A channel created with no rings: pop says empty (it used to look at
 * ring 0, which does not exist). */
static void test_mpsc_pop_with_no_rings_returns_eagain(void **state)
{
	rmpsc_mpsc *ch = mpsc_new(8, 0, 4, 0);
	uint64_t v;

	(void)state;
	assert_ret(rmpsc_mpsc_pop(ch, &v, NULL), -EAGAIN);
	assert_ret(rmpsc_mpsc_pop(ch, &v, NULL), -EAGAIN);
	rmpsc_mpsc_destroy(ch);
}

/* ---- adaptive skip ------------------------------------------------------- */

/* Rounds until the element just pushed shows up (a bounded search). */
static int rounds_to_delivery(rmpsc_mpsc *ch, uint32_t limit)
{
	for (uint32_t r = 1; r <= limit; r++) {
		int64_t k = rmpsc_mpsc_consume_count(ch, UINT64_MAX);

		if (k < 0)
			return (int)k;
		if (k > 0) {
			assert_ret(k, 1);
			return (int)r;
		}
	}
	return -1;
}

static void test_mpsc_skip_with_idle_ring_delivers_within_65_rounds(void **state)
{
	rmpsc_mpsc *ch = mpsc_new(8, 32, 32, 0);
	rmpsc_producer *p[32];
	int worst = 0;

	(void)state;
	reg_all(ch, p, 32);
	for (uint32_t idle = 0; idle < 300; idle++) {
		uint32_t who = (idle * 7) % 32;
		int got;

		idle_rounds(ch, idle);
		push_vals(p[who], idle, 1);
		got = rounds_to_delivery(ch, 200);
		if (got < 1 || got > 65) {
			print_error("after %u idle rounds an element of producer %u took %d "
				    "rounds (at most 65 expected)\n", idle, who, got);
			fail();
		}
		worst = got > worst ? got : worst;
	}
	/* the skipping is real: an idle ring is not looked at every round */
	assert_true(worst > 1);
	rmpsc_mpsc_destroy(ch);
}

/*
 * The documented schedule: a ring found empty is looked at again after 1,
 * then 2, 4, ... up to 64 rounds. From a fresh channel the looks at one
 * idle ring are in rounds 1, 2, 4, 8, 16, 32, 64, 128, 192, 256, ... An
 * element pushed after round r is taken in the first look after r.
 */
static void test_mpsc_skip_with_idle_ring_follows_documented_schedule(void **state)
{
	(void)state;
	for (uint32_t r = 0; r < 330; r++) {
		rmpsc_mpsc *ch = mpsc_new(8, 1, 1, 0);
		rmpsc_producer *p = reg(ch, 0);
		uint32_t look = 1, gap = 1, want;
		int got;

		while (look <= r) {
			look += gap;
			if (gap < 64)
				gap *= 2;
		}
		want = look - r;
		idle_rounds(ch, r);
		push_vals(p, 0, 1);
		got = rounds_to_delivery(ch, 200);
		if (got != (int)want) {
			print_error("pushed after %u empty rounds: taken in round %d after, "
				    "expected %u (next look in round %u)\n", r, got, want, look);
			fail();
		}
		rmpsc_mpsc_destroy(ch);
	}
}

/*
 * RMPSC_MPSC_F_NOSKIP: after any number of empty rounds, an element pushed
 * to any ring is taken by the very next round, and (metrics) every round
 * looks at every registered ring; the same channel without the flag skips
 * (fewer looks over the same rounds).
 */
static void test_mpsc_noskip_with_idle_rings_delivers_next_round(void **state)
{
	uint64_t polls[2];

	(void)state;
	for (int noskip = 0; noskip < 2; noskip++) {
		uint32_t flags = RMPSC_MPSC_F_METRICS | (noskip ? RMPSC_MPSC_F_NOSKIP : 0u);
		rmpsc_mpsc *ch = mpsc_new(8, 32, 32, flags);
		rmpsc_producer *p[32];
		rmpsc_mpsc_snapshot st;
		uint64_t rounds = 0;

		reg_all(ch, p, 32);
		for (uint32_t rep = 0; rep < 100; rep++) {
			uint32_t who = (rep * 13 + 3) % 32;

			for (uint32_t i = 0; i < 70 + rep % 7; i++, rounds++)
				assert_ret(rmpsc_mpsc_consume_all(ch, never_fn, NULL), 0);
			push_vals(p[who], rep, 1);
			if (noskip) {
				assert_ret(rmpsc_mpsc_consume_count(ch, UINT64_MAX), 1);
				rounds++;
			} else {
				int got = rounds_to_delivery(ch, 200);

				assert_true(got >= 1 && got <= 65);
				rounds += (uint64_t)got;
			}
		}
		assert_ret(rmpsc_mpsc_stats(ch, &st, sizeof st), 0);
		if (noskip)
			assert_int_equal(st.polls, rounds * 32);
		else
			assert_true(st.polls < rounds * 32 / 4);
		polls[noskip] = st.polls;
		rmpsc_mpsc_destroy(ch);
	}
	assert_true(polls[0] < polls[1]);
}

static void test_mpsc_skip_with_busy_ring_serves_it_every_round(void **state)
{
	rmpsc_mpsc *ch = mpsc_new(8, 32, 32, 0);
	rmpsc_producer *p[32];
	struct rec *r = rec_new();

	(void)state;
	reg_all(ch, p, 32);
	idle_rounds(ch, 300);
	/* a ring that had data is looked at again in the very next round */
	push_vals(p[9], 0, 1);
	assert_true(rounds_to_delivery(ch, 100) > 0);
	for (uint32_t i = 1; i < 200; i++) {
		push_vals(p[9], i, 1);
		assert_ret(rmpsc_mpsc_consume_all(ch, rec_fn, r), 1);
	}
	rec_expect(r, 9, 1, 199);
	/* and after one empty round still in the next */
	assert_ret(rmpsc_mpsc_consume_all(ch, never_fn, NULL), 0);
	push_vals(p[9], 200, 1);
	assert_ret(rmpsc_mpsc_consume_all(ch, rec_fn, r), 1);
	free(r);
	rmpsc_mpsc_destroy(ch);
}

static void test_mpsc_reset_skip_after_idle_rounds_delivers_next_round(void **state)
{
	rmpsc_mpsc *ch = mpsc_new(8, 32, 32, 0);
	rmpsc_producer *p[32];
	struct rec *r = rec_new();

	(void)state;
	reg_all(ch, p, 32);
	for (int rep = 0; rep < 3; rep++) {
		idle_rounds(ch, 300 + rep);
		for (uint32_t i = 0; i < 32; i++)
			push_vals(p[i], (uint32_t)rep, 1);
		assert_ret(rmpsc_mpsc_reset_skip(ch), 0);
		memset(r, 0, sizeof *r);
		assert_ret(rmpsc_mpsc_consume_all(ch, rec_fn, r), 32);
		for (uint32_t i = 0; i < 32; i++)
			rec_expect(r, i, (uint32_t)rep, 1);
	}
	assert_ret(rmpsc_mpsc_reset_skip(NULL), -EBADF);
	free(r);
	rmpsc_mpsc_destroy(ch);
}

/* The pull calls say -EAGAIN only when every ring is empty (channel.h):
 * a skipped ring with data is still found. */
static void test_mpsc_pull_calls_with_idle_skipped_ring_find_its_data(void **state)
{
	rmpsc_mpsc *ch = mpsc_new(8, 32, 32, 0);
	rmpsc_producer *p[32];
	uint64_t v[4];
	rmpsc_span s;
	uint32_t id;

	(void)state;
	reg_all(ch, p, 32);
	for (uint32_t rep = 0; rep < 40; rep++) {
		uint32_t who = (rep * 11 + 5) % 32;

		idle_rounds(ch, 200);
		push_vals(p[who], rep, 1);
		switch (rep % 5) {
		case 4:
			id = UINT32_MAX;
			assert_ret(rmpsc_mpsc_pop(ch, v, &id), 0);
			assert_int_equal(id, who);
			assert_int_equal(v[0], val(who, rep));
			break;
		case 0:
			assert_ret(rmpsc_mpsc_pop_n(ch, v, 4), 1);
			assert_int_equal(v[0], val(who, rep));
			break;
		case 1:
			assert_ret(rmpsc_mpsc_pop_n_timed(ch, v, 4, 0, NULL), 1);
			assert_int_equal(v[0], val(who, rep));
			break;
		case 2:
			id = UINT32_MAX;
			assert_ret(rmpsc_mpsc_readable(ch, 4, &s, &id), 1);
			assert_int_equal(id, who);
			assert_int_equal(span_get_u64(&s, 0), val(who, rep));
			assert_ret(rmpsc_mpsc_advance(ch, 1), 0);
			break;
		default:
			id = UINT32_MAX;
			assert_ret(rmpsc_mpsc_readable_timed(ch, 4, &s, &id, 0, NULL), 1);
			assert_int_equal(id, who);
			assert_ret(rmpsc_mpsc_advance(ch, 1), 0);
			break;
		}
		assert_ret(rmpsc_mpsc_len(ch), 0);
	}
	rmpsc_mpsc_destroy(ch);
}

/* ---- pop ------------------------------------------------------------------ */

static void test_mpsc_pop_when_empty_returns_eagain(void **state)
{
	struct fx *f = *state;
	uint64_t v = 7;
	uint32_t id = 99;

	assert_ret(rmpsc_mpsc_pop(f->ch, &v, &id), -EAGAIN);
	assert_int_equal(v, 7);
	assert_ret(rmpsc_producer_reserve(f->p[1], 2, &(rmpsc_span){ 0 }), 2);
	assert_ret(rmpsc_mpsc_pop(f->ch, &v, NULL), -EAGAIN);
}

static void test_mpsc_pop_with_data_returns_element_and_producer_id(void **state)
{
	struct fx *f = *state;
	uint64_t got[8];
	uint32_t id, n = 0;
	int rc;

	push_vals(f->p[0], 0, 3);
	push_vals(f->p[1], 0, 2);
	while ((rc = rmpsc_mpsc_pop(f->ch, &got[n], &id)) == 0) {
		assert_true(n < 5);
		assert_int_equal(id, val_id(got[n]));
		n++;
	}
	assert_ret(rc, -EAGAIN);
	assert_int_equal(n, 5);
	buf_expect(got, n, 0, 0, 3);
	buf_expect(got, n, 1, 0, 2);
	/* the id pointer may be NULL */
	push_vals(f->p[1], 2, 1);
	assert_ret(rmpsc_mpsc_pop(f->ch, &got[0], NULL), 0);
	assert_int_equal(got[0], val(1, 2));
}

static void test_mpsc_pop_after_close_delivers_rest_then_epipe(void **state)
{
	struct fx *f = *state;
	uint64_t v[3];
	uint32_t id;

	push_vals(f->p[0], 0, 2);
	push_vals(f->p[1], 0, 1);
	assert_ret(rmpsc_mpsc_close(f->ch), 0);
	for (int i = 0; i < 3; i++)
		assert_ret(rmpsc_mpsc_pop(f->ch, &v[i], &id), 0);
	buf_expect(v, 3, 0, 0, 2);
	buf_expect(v, 3, 1, 0, 1);
	assert_ret(rmpsc_mpsc_pop(f->ch, v, &id), -EPIPE);
	assert_ret(rmpsc_mpsc_pop(f->ch, v, &id), -EPIPE);
}

/* "from the ring the consumer took from last while it has data (at most 64
 * in a row, then the next ring's turn), else from the next ring" */
static void test_mpsc_pop_stays_on_ring_then_yields_after_64(void **state)
{
	struct fx *f = *state;
	rmpsc_mpsc *ch = f->ch;
	rmpsc_producer **p = f->p;
	uint32_t id, first, run = 0;
	uint64_t v;

	push_vals(p[0], 0, 200);
	push_vals(p[1], 0, 200);
	assert_ret(rmpsc_mpsc_pop(ch, &v, &first), 0);
	run = 1;
	for (;;) {
		assert_ret(rmpsc_mpsc_pop(ch, &v, &id), 0);
		assert_int_equal(val_id(v), id);
		if (id != first)
			break;
		run++;
		if (run > 64) {
			print_error("pop took %u elements in a row from ring %u while ring "
				    "%u had data (at most 64 expected)\n", run, first, 1 - first);
			fail();
		}
	}
	/* it stayed while the ring had data */
	assert_int_equal(run, 64);
}

static void test_mpsc_pop_when_ring_empties_moves_to_next_ring(void **state)
{
	struct fx *f = *state;
	uint64_t v;
	uint32_t id, first;

	push_vals(f->p[0], 0, 3);
	push_vals(f->p[1], 0, 3);
	assert_ret(rmpsc_mpsc_pop(f->ch, &v, &first), 0);
	assert_ret(rmpsc_mpsc_pop(f->ch, &v, &id), 0);
	assert_int_equal(id, first);
	assert_ret(rmpsc_mpsc_pop(f->ch, &v, &id), 0);
	assert_int_equal(id, first);
	assert_int_equal(v, val(first, 2));
	for (uint32_t i = 0; i < 3; i++) {
		assert_ret(rmpsc_mpsc_pop(f->ch, &v, &id), 0);
		assert_int_equal(id, 1 - first);
		assert_int_equal(v, val(1 - first, i));
	}
	assert_ret(rmpsc_mpsc_pop(f->ch, &v, &id), -EAGAIN);
}

/* A pop whose run has used up what the consumer saw loads the ring's tail
 * itself and batches its release like the fast pop (channel.h): on a ring
 * of capacity 1024 the elements it took still count until the 32nd or the
 * next empty answer. */
static void test_mpsc_pop_run_refresh_batches_release(void **state)
{
	rmpsc_mpsc *ch = mpsc_new(1024, 1, 1, 0);
	rmpsc_producer *p = reg(ch, 0);
	uint32_t id;
	uint64_t v;

	(void)state;
	push_vals(p, 0, 1);
	assert_ret(rmpsc_mpsc_pop(ch, &v, &id), 0); /* a round: released */
	assert_int_equal(v, val(0, 0));
	assert_ret(rmpsc_mpsc_ring_len(ch, 0), 0);
	push_vals(p, 1, 3);
	/* the run's ring, past its cached tail: refreshed, held back */
	assert_ret(rmpsc_mpsc_pop(ch, &v, &id), 0);
	assert_int_equal(v, val(0, 1));
	assert_ret(rmpsc_mpsc_ring_len(ch, 0), 3);
	assert_ret(rmpsc_mpsc_pop(ch, &v, &id), 0);
	assert_ret(rmpsc_mpsc_pop(ch, &v, &id), 0);
	assert_int_equal(v, val(0, 3));
	assert_ret(rmpsc_mpsc_ring_len(ch, 0), 3);
	assert_ret(rmpsc_producer_len(p), 3);
	/* the empty answer publishes them */
	assert_ret(rmpsc_mpsc_pop(ch, &v, &id), -EAGAIN);
	assert_ret(rmpsc_mpsc_ring_len(ch, 0), 0);
	assert_ret(rmpsc_producer_len(p), 0);
	rmpsc_mpsc_destroy(ch);
}

static void test_mpsc_pop_with_metrics_counts_each_element(void **state)
{
	struct fx *f = *state;
	rmpsc_mpsc_snapshot st;
	uint64_t v;

	push_vals(f->p[0], 0, 4);
	push_vals(f->p[1], 0, 3);
	for (int i = 0; i < 7; i++)
		assert_ret(rmpsc_mpsc_pop(f->ch, &v, NULL), 0);
	assert_ret(rmpsc_mpsc_stats(f->ch, &st, sizeof st), 0);
	assert_int_equal(st.sent, 7);
	assert_int_equal(st.received, 7);
	assert_int_equal(st.pending, 0);
}

/* ---- pop_n / pop_n_timed ------------------------------------------------- */

static void test_mpsc_pop_n_when_empty_returns_eagain(void **state)
{
	struct fx *f = *state;
	uint64_t v[4];

	assert_ret(rmpsc_mpsc_pop_n(f->ch, v, 4), -EAGAIN);
	assert_ret(rmpsc_mpsc_pop_n(f->ch, v, 1), -EAGAIN);
	/* reserved, not committed: still empty */
	assert_ret(rmpsc_producer_reserve(f->p[0], 2, &(rmpsc_span){ 0 }), 2);
	assert_ret(rmpsc_mpsc_pop_n(f->ch, v, 4), -EAGAIN);
}

static void test_mpsc_pop_n_with_several_rings_fills_from_each(void **state)
{
	rmpsc_mpsc *ch = mpsc_new(8, 3, 3, 0);
	rmpsc_producer *p[3] = { reg(ch, 0), reg(ch, 1), reg(ch, 2) };
	uint64_t v[16], all[16];
	uint32_t n = 0;
	int k;

	(void)state;
	push_vals(p[0], 0, 3);
	push_vals(p[1], 0, 4);
	push_vals(p[2], 0, 2);
	memset(v, 0, sizeof v);
	assert_ret(rmpsc_mpsc_pop_n(ch, v, 8), 8);
	/* from at least two rings, per-producer FIFO */
	assert_true(val_id(v[0]) != val_id(v[7]));
	memcpy(all, v, 8 * sizeof *v);
	n = 8;
	assert_ret(rmpsc_mpsc_pop_n(ch, v, 8), 1);
	all[n++] = v[0];
	buf_expect(all, n, 0, 0, 3);
	buf_expect(all, n, 1, 0, 4);
	buf_expect(all, n, 2, 0, 2);
	/* a bound of 1 takes 1, the rest come next */
	push_vals(p[1], 4, 3);
	n = 0;
	while ((k = rmpsc_mpsc_pop_n(ch, v, 1)) == 1)
		all[n++] = v[0];
	assert_ret(k, -EAGAIN);
	assert_int_equal(n, 3);
	buf_expect(all, n, 1, 4, 3);
	rmpsc_mpsc_destroy(ch);
}

/* Transparent huge pages where the kernel offers them: a gigabyte then
 * costs hundreds of page faults instead of hundreds of thousands (reads of
 * untouched memory map the huge zero page). A hint; failure changes
 * nothing but the time. */
static void huge_hint(void *p, size_t len)
{
	const uintptr_t huge = (uintptr_t)2 << 20;
	uintptr_t a = ((uintptr_t)p + huge - 1) & ~(huge - 1);
	uintptr_t e = ((uintptr_t)p + len) & ~(huge - 1);

	if (e > a)
		(void)madvise((void *)a, e - a, MADV_HUGEPAGE);
}

/* Publish @n elements of @p's ring without writing them (their pages stay
 * untouched). */
static void publish_unwritten(rmpsc_producer *p, uint32_t n)
{
	rmpsc_span s;

	assert_ret(rmpsc_producer_reserve(p, n, &s), n);
	huge_hint(s.iov[0].iov_base, s.iov[0].iov_len);
	assert_ret(rmpsc_producer_commit(p, n), 0);
}

/*
 * A count returned as int: pop_n over rings that hold more than INT32_MAX
 * elements in all takes INT32_MAX of them (it used to take them all and
 * return INT_MIN), and so does pop_n_timed. Two rings of 2^30 one-byte
 * elements, published without being written, so only the 2 GiB
 * destination is touched. Not under the sanitizers, whose shadow of 2 GiB
 * copies costs more than the case is worth there: the arithmetic is the
 * same in every build.
 */
static void test_mpsc_pop_n_over_rings_past_int32_max_takes_int32_max(void **state)
{
	const uint32_t cap = 1u << 30;
	const size_t len = (size_t)1 << 31;
	rmpsc_mpsc_config cfg = cfg_of(cap, 2, 2, 0);
	rmpsc_mpsc *ch = NULL;
	rmpsc_producer *p0, *p1;
	void *buf;

	(void)state;
#ifdef RMPSC_TEST_SANITIZED
	skip();
#endif
	cfg.elem_size = 1;
	assert_ret(rmpsc_mpsc_create(&cfg, &ch), 0);
	buf = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		   -1, 0);
	if (buf == MAP_FAILED) {
		rmpsc_mpsc_destroy(ch);
		skip();
	}
	huge_hint(buf, len);
	p0 = reg(ch, 0);
	p1 = reg(ch, 1);
	publish_unwritten(p0, cap);
	publish_unwritten(p1, cap);
	assert_ret(rmpsc_mpsc_len(ch), (int64_t)2 * cap);
	assert_ret(rmpsc_mpsc_pop_n(ch, buf, UINT32_MAX), INT32_MAX);
	assert_ret(rmpsc_mpsc_len(ch), 1);
	assert_ret(rmpsc_mpsc_pop_n(ch, buf, UINT32_MAX), 1);
	publish_unwritten(p0, cap);
	publish_unwritten(p1, cap);
	assert_ret(rmpsc_mpsc_pop_n_timed(ch, buf, UINT32_MAX, 0, NULL), INT32_MAX);
	assert_ret(rmpsc_mpsc_pop_n_timed(ch, buf, UINT32_MAX, -1, NULL), 1);
	assert_ret(rmpsc_mpsc_len(ch), 0);
	munmap(buf, len);
	rmpsc_mpsc_destroy(ch);
}

static void test_mpsc_pop_n_after_close_delivers_rest_then_epipe(void **state)
{
	struct fx *f = *state;
	uint64_t v[8];

	push_vals(f->p[0], 0, 2);
	push_vals(f->p[1], 0, 1);
	assert_ret(rmpsc_mpsc_close(f->ch), 0);
	assert_ret(rmpsc_mpsc_pop_n(f->ch, v, 8), 3);
	buf_expect(v, 3, 0, 0, 2);
	buf_expect(v, 3, 1, 0, 1);
	assert_ret(rmpsc_mpsc_pop_n(f->ch, v, 8), -EPIPE);
	assert_ret(rmpsc_mpsc_pop_n(f->ch, v, 8), -EPIPE);
	assert_ret(rmpsc_mpsc_pop_n(f->ch, v, 0), 0);
}

static void test_mpsc_pop_n_timed_when_empty_times_out(void **state)
{
	struct fx *f = *state;
	uint64_t v[2];
	rmpsc_wait w;

	assert_ret(rmpsc_mpsc_pop_n_timed(f->ch, v, 2, 0, NULL), -ETIMEDOUT);
	assert_ret(rmpsc_mpsc_pop_n_timed(f->ch, v, 2, 1 * MS, NULL), -ETIMEDOUT);
	assert_ret(rmpsc_wait_init(&w, sizeof w, RMPSC_WAIT_SLEEP), 0);
	assert_ret(rmpsc_mpsc_pop_n_timed(f->ch, v, 2, 1 * MS, &w), -ETIMEDOUT);
}

static void test_mpsc_pop_n_timed_with_data_returns_it(void **state)
{
	struct fx *f = *state;
	uint64_t v[8];

	push_vals(f->p[1], 0, 3);
	assert_ret(rmpsc_mpsc_pop_n_timed(f->ch, v, 8, -1, NULL), 3);
	buf_expect(v, 3, 1, 0, 3);
}

static void test_mpsc_pop_n_timed_when_producer_pushes_wakes(void **state)
{
	struct fx *f = *state;
	struct helper h;
	uint64_t v[4] = { 0 };

	helper_start(&h, ACT_PUSH, f->ch, f->p[0], val(0, 42));
	assert_ret(rmpsc_mpsc_pop_n_timed(f->ch, v, 4, WAKE_TIMEOUT, NULL), 1);
	helper_join(&h);
	assert_int_equal(v[0], val(0, 42));
}

static void test_mpsc_pop_n_timed_when_blocked_close_wakes_with_epipe(void **state)
{
	struct fx *f = *state;
	struct helper h;
	uint64_t v[4];

	helper_start(&h, ACT_CLOSE, f->ch, NULL, 0);
	assert_ret(rmpsc_mpsc_pop_n_timed(f->ch, v, 4, WAKE_TIMEOUT, NULL), -EPIPE);
	helper_join(&h);
}

/* ---- readable / advance / readable_timed ---------------------------------- */

static void test_mpsc_readable_with_data_returns_span_and_producer_id(void **state)
{
	struct fx *f = *state;
	rmpsc_span s;
	uint32_t id = UINT32_MAX;

	push_vals(f->p[1], 0, 3);
	assert_ret(rmpsc_mpsc_readable(f->ch, 8, &s, &id), 3);
	assert_int_equal(id, 1);
	span_check(&s, 3);
	assert_int_equal(s.pos, 0);
	for (uint32_t i = 0; i < 3; i++)
		assert_int_equal(span_get_u64(&s, i), val(1, i));
	/* not released yet */
	assert_ret(rmpsc_mpsc_len(f->ch), 3);
	assert_ret(rmpsc_mpsc_advance(f->ch, 3), 0);
	assert_ret(rmpsc_mpsc_len(f->ch), 0);
	/* the id pointer may be NULL */
	push_vals(f->p[0], 0, 1);
	assert_ret(rmpsc_mpsc_readable(f->ch, 8, &s, NULL), 1);
	assert_int_equal(span_get_u64(&s, 0), val(0, 0));
	assert_ret(rmpsc_mpsc_advance(f->ch, 1), 0);
}

static void test_mpsc_readable_until_advanced_returns_same_span(void **state)
{
	struct fx *f = *state;
	rmpsc_span s, t;
	uint32_t id, id2;
	int k;

	push_vals(f->p[0], 0, 4);
	push_vals(f->p[1], 0, 4);
	k = rmpsc_mpsc_readable(f->ch, 8, &s, &id);
	assert_ret(k, 4);
	for (int i = 0; i < 3; i++) {
		id2 = UINT32_MAX;
		memset(&t, 0, sizeof t);
		assert_ret(rmpsc_mpsc_readable(f->ch, 8, &t, &id2), 4);
		assert_int_equal(id2, id);
		assert_int_equal(t.pos, s.pos);
		assert_ptr_equal(t.iov[0].iov_base, s.iov[0].iov_base);
		assert_int_equal(t.count[0], s.count[0]);
	}
	/* more data on the same ring shows in the repeated span */
	push_vals(f->p[id], 4, 2);
	assert_ret(rmpsc_mpsc_readable(f->ch, 8, &t, &id2), 6);
	assert_int_equal(id2, id);
	assert_int_equal(t.pos, s.pos);
	/* a smaller n gives a prefix of it */
	assert_ret(rmpsc_mpsc_readable(f->ch, 2, &t, &id2), 2);
	assert_int_equal(id2, id);
	assert_int_equal(t.pos, s.pos);
	/* releasing all of that (shorter) span ends it */
	assert_ret(rmpsc_mpsc_advance(f->ch, 2), 0);
	assert_ret(rmpsc_mpsc_advance(f->ch, 1), -EINVAL);
	/* the rest: ring id from 2 on, the other ring from 0, each in order */
	{
		uint32_t next[2] = { 0, 0 };

		next[id] = 2;
		while ((k = rmpsc_mpsc_readable(f->ch, 8, &t, &id2)) > 0) {
			assert_true(id2 < 2);
			for (uint32_t i = 0; i < (uint32_t)k; i++)
				assert_int_equal(span_get_u64(&t, i), val(id2,
					next[id2] + i));
			next[id2] += (uint32_t)k;
			assert_ret(rmpsc_mpsc_advance(f->ch, (uint32_t)k), 0);
		}
		assert_ret(k, -EAGAIN);
		assert_int_equal(next[id], 6);
		assert_int_equal(next[1 - id], 4);
	}
}

static void test_mpsc_advance_partial_then_readable_returns_rest(void **state)
{
	struct fx *f = *state;
	rmpsc_span s;
	uint32_t id;

	push_vals(f->p[1], 0, 5);
	assert_ret(rmpsc_mpsc_readable(f->ch, 8, &s, &id), 5);
	assert_ret(rmpsc_mpsc_advance(f->ch, 2), 0);
	assert_ret(rmpsc_mpsc_ring_len(f->ch, 1), 3);
	assert_ret(rmpsc_mpsc_readable(f->ch, 8, &s, &id), 3);
	assert_int_equal(id, 1);
	assert_int_equal(s.pos, 2);
	for (uint32_t i = 0; i < 3; i++)
		assert_int_equal(span_get_u64(&s, i), val(1, 2 + i));
	/* the rest of the span after a partial advance: at most what is left */
	assert_ret(rmpsc_mpsc_advance(f->ch, 1), 0);
	assert_ret(rmpsc_mpsc_advance(f->ch, 3), -EINVAL);
	assert_ret(rmpsc_mpsc_advance(f->ch, 2), 0);
	assert_ret(rmpsc_mpsc_len(f->ch), 0);
	assert_ret(rmpsc_mpsc_advance(f->ch, 1), -EINVAL);
}

static void test_mpsc_advance_without_span_returns_einval(void **state)
{
	struct fx *f = *state;
	rmpsc_span s;

	assert_ret(rmpsc_mpsc_advance(f->ch, 1), -EINVAL);
	/* data there, but no span was handed out */
	push_vals(f->p[0], 0, 3);
	assert_ret(rmpsc_mpsc_advance(f->ch, 1), -EINVAL);
	assert_ret(rmpsc_mpsc_len(f->ch), 3);
	/* after a span is fully released, none is outstanding */
	assert_ret(rmpsc_mpsc_readable(f->ch, 8, &s, NULL), 3);
	assert_ret(rmpsc_mpsc_advance(f->ch, 3), 0);
	assert_ret(rmpsc_mpsc_advance(f->ch, 1), -EINVAL);
	/* a failed readable hands out nothing either */
	assert_ret(rmpsc_mpsc_readable(f->ch, 8, &s, NULL), -EAGAIN);
	assert_ret(rmpsc_mpsc_advance(f->ch, 1), -EINVAL);
}

static void test_mpsc_advance_more_than_span_returns_einval(void **state)
{
	struct fx *f = *state;
	rmpsc_span s;
	uint32_t id;

	push_vals(f->p[0], 0, 6);
	assert_ret(rmpsc_mpsc_readable(f->ch, 3, &s, &id), 3);
	/* the ring holds 6, the span 3 */
	assert_ret(rmpsc_mpsc_advance(f->ch, 4), -EINVAL);
	assert_ret(rmpsc_mpsc_advance(f->ch, UINT32_MAX), -EINVAL);
	assert_ret(rmpsc_mpsc_ring_len(f->ch, 0), 6);
	/* nothing changed: the span is still there */
	assert_ret(rmpsc_mpsc_readable(f->ch, 3, &s, &id), 3);
	assert_int_equal(span_get_u64(&s, 0), val(0, 0));
	assert_ret(rmpsc_mpsc_advance(f->ch, 3), 0);
	assert_ret(rmpsc_mpsc_ring_len(f->ch, 0), 3);
}

static void test_mpsc_advance_zero_with_span_changes_nothing(void **state)
{
	struct fx *f = *state;
	rmpsc_span s;

	push_vals(f->p[0], 0, 2);
	assert_ret(rmpsc_mpsc_readable(f->ch, 8, &s, NULL), 2);
	assert_ret(rmpsc_mpsc_advance(f->ch, 0), 0);
	assert_ret(rmpsc_mpsc_len(f->ch), 2);
	assert_ret(rmpsc_mpsc_readable(f->ch, 8, &s, NULL), 2);
	assert_ret(rmpsc_mpsc_advance(f->ch, 2), 0);
}

static void test_mpsc_readable_when_empty_returns_eagain_then_epipe_after_close(
	void **state)
{
	struct fx *f = *state;
	rmpsc_span s;
	uint32_t id;

	assert_ret(rmpsc_mpsc_readable(f->ch, 4, &s, &id), -EAGAIN);
	push_vals(f->p[1], 0, 1);
	assert_ret(rmpsc_mpsc_close(f->ch), 0);
	assert_ret(rmpsc_mpsc_readable(f->ch, 4, &s, &id), 1);
	assert_int_equal(id, 1);
	/* not advanced: the same span again, no -EPIPE */
	assert_ret(rmpsc_mpsc_readable(f->ch, 4, &s, &id), 1);
	assert_ret(rmpsc_mpsc_advance(f->ch, 1), 0);
	assert_ret(rmpsc_mpsc_readable(f->ch, 4, &s, &id), -EPIPE);
	assert_ret(rmpsc_mpsc_readable(f->ch, 4, &s, &id), -EPIPE);
}

static void test_mpsc_readable_when_ring_wraps_returns_two_segments(void **state)
{
	struct fx *f = *state;
	rmpsc_span s;
	uint32_t id;

	push_vals(f->p[0], 0, 7);
	assert_ret(rmpsc_mpsc_consume_count(f->ch, 7), 7);
	push_vals(f->p[0], 7, 4); /* slot 7, then 0, 1, 2 */
	assert_ret(rmpsc_mpsc_readable(f->ch, 8, &s, &id), 4);
	span_check(&s, 4);
	assert_int_equal(s.nseg, 2);
	assert_int_equal(s.count[0], 1);
	assert_int_equal(s.count[1], 3);
	assert_int_equal(s.pos, 7);
	for (uint32_t i = 0; i < 4; i++)
		assert_int_equal(span_get_u64(&s, i), val(0, 7 + i));
	assert_ret(rmpsc_mpsc_advance(f->ch, 4), 0);
}

static void test_mpsc_readable_after_full_advance_serves_rings_in_turn(void **state)
{
	rmpsc_mpsc *ch = mpsc_new(8, 3, 3, 0);
	rmpsc_producer *p[3] = { reg(ch, 0), reg(ch, 1), reg(ch, 2) };
	bool seen[3] = { false, false, false };
	rmpsc_span s;
	uint32_t id;

	(void)state;
	for (uint32_t i = 0; i < 3; i++)
		push_vals(p[i], 0, 2);
	for (int i = 0; i < 3; i++) {
		assert_ret(rmpsc_mpsc_readable(ch, 8, &s, &id), 2);
		assert_true(id < 3);
		assert_false(seen[id]);
		seen[id] = true;
		assert_int_equal(span_get_u64(&s, 1), val(id, 1));
		assert_ret(rmpsc_mpsc_advance(ch, 2), 0);
	}
	assert_ret(rmpsc_mpsc_readable(ch, 8, &s, &id), -EAGAIN);
	rmpsc_mpsc_destroy(ch);
}

static void test_mpsc_readable_timed_when_empty_times_out(void **state)
{
	struct fx *f = *state;
	rmpsc_span s;
	rmpsc_wait w;

	assert_ret(rmpsc_mpsc_readable_timed(f->ch, 4, &s, NULL, 0, NULL), -ETIMEDOUT);
	assert_ret(rmpsc_mpsc_readable_timed(f->ch, 4, &s, NULL, 1 * MS, NULL), -ETIMEDOUT);
	assert_ret(rmpsc_wait_init(&w, sizeof w, RMPSC_WAIT_YIELD), 0);
	assert_ret(rmpsc_mpsc_readable_timed(f->ch, 4, &s, NULL, 1 * MS, &w), -ETIMEDOUT);
	assert_ret(rmpsc_mpsc_advance(f->ch, 1), -EINVAL);
}

static void test_mpsc_readable_timed_when_producer_pushes_wakes(void **state)
{
	struct fx *f = *state;
	struct helper h;
	rmpsc_span s;
	uint32_t id = UINT32_MAX;

	helper_start(&h, ACT_PUSH, f->ch, f->p[1], val(1, 5));
	assert_ret(rmpsc_mpsc_readable_timed(f->ch, 4, &s, &id, WAKE_TIMEOUT, NULL), 1);
	helper_join(&h);
	assert_int_equal(id, 1);
	assert_int_equal(span_get_u64(&s, 0), val(1, 5));
	/* outstanding: the timed call returns it again */
	assert_ret(rmpsc_mpsc_readable_timed(f->ch, 4, &s, &id, 0, NULL), 1);
	assert_ret(rmpsc_mpsc_advance(f->ch, 1), 0);
}

static void test_mpsc_readable_timed_when_blocked_close_wakes_with_epipe(void **state)
{
	struct fx *f = *state;
	struct helper h;
	rmpsc_span s;

	helper_start(&h, ACT_CLOSE, f->ch, NULL, 0);
	assert_ret(rmpsc_mpsc_readable_timed(f->ch, 4, &s, NULL, WAKE_TIMEOUT, NULL), -EPIPE);
	helper_join(&h);
}

/* ---- close / drain_all / is_drained / is_closed --------------------------- */

static void test_mpsc_close_when_called_twice_returns_zero(void **state)
{
	struct fx *f = *state;
	rmpsc_mpsc_snapshot st;

	assert_ret(rmpsc_mpsc_is_closed(f->ch), 0);
	assert_ret(rmpsc_mpsc_close(f->ch), 0);
	assert_ret(rmpsc_mpsc_is_closed(f->ch), 1);
	assert_ret(rmpsc_mpsc_close(f->ch), 0);
	assert_ret(rmpsc_mpsc_is_closed(f->ch), 1);
	assert_ret(rmpsc_mpsc_stats(f->ch, &st, sizeof st), 0);
	assert_int_equal(st.closed, 1);
}

static void test_mpsc_close_with_deregistered_and_free_rings_ends_stream(void **state)
{
	rmpsc_mpsc *ch = mpsc_new(8, 4, 4, 0);
	rmpsc_producer *p0 = reg(ch, 0), *p1 = reg(ch, 1);
	struct rec *r = rec_new();

	(void)state;
	/* ring 0: deregistered with data; ring 1: live; rings 2, 3: never used */
	push_vals(p0, 0, 3);
	push_vals(p1, 0, 2);
	assert_ret(rmpsc_mpsc_deregister(p0), 0);
	assert_ret(rmpsc_mpsc_close(ch), 0);
	assert_ret(rmpsc_mpsc_is_drained(ch), 0);
	assert_ret(consume_until_zero(ch, r), 5);
	rec_expect(r, 0, 0, 3);
	rec_expect(r, 1, 0, 2);
	assert_ret(rmpsc_mpsc_consume_all(ch, never_fn, NULL), -EPIPE);
	assert_ret(rmpsc_mpsc_is_drained(ch), 1);
	free(r);
	rmpsc_mpsc_destroy(ch);
}

static void test_mpsc_drain_all_with_fn_delivers_everything_ignoring_skip(void **state)
{
	rmpsc_mpsc *ch = mpsc_new(8, 16, 16, 0);
	rmpsc_producer *p[16];
	struct rec *r = rec_new();

	(void)state;
	reg_all(ch, p, 16);
	idle_rounds(ch, 300);
	for (uint32_t i = 0; i < 16; i++)
		push_vals(p[i], 0, i % 8 + 1);
	assert_ret(rmpsc_mpsc_drain_all(ch, rec_fn, r), 72);
	for (uint32_t i = 0; i < 16; i++)
		rec_expect(r, i, 0, i % 8 + 1);
	assert_ret(rmpsc_mpsc_len(ch), 0);
	assert_ret(rmpsc_mpsc_drain_all(ch, never_fn, NULL), 0);
	/* not closed: drained is not "drained and closed" */
	assert_ret(rmpsc_mpsc_is_drained(ch), 0);
	free(r);
	rmpsc_mpsc_destroy(ch);
}

static void test_mpsc_drain_all_with_null_fn_discards(void **state)
{
	struct fx *f = *state;

	push_vals(f->p[0], 0, 8);
	push_vals(f->p[1], 0, 3);
	assert_ret(rmpsc_mpsc_drain_all(f->ch, NULL, NULL), 11);
	assert_ret(rmpsc_mpsc_len(f->ch), 0);
	assert_ret(rmpsc_mpsc_drain_all(f->ch, NULL, NULL), 0);
	/* the rings are usable afterwards, in order */
	push_vals(f->p[0], 8, 2);
	assert_ret(consume_rounds(f->ch, f->rec, 2), 2);
	rec_expect(f->rec, 0, 8, 2);
}

static void test_mpsc_drain_all_with_outstanding_span_delivers_it(void **state)
{
	struct fx *f = *state;
	rmpsc_span s;
	uint32_t id;

	push_vals(f->p[0], 0, 3);
	push_vals(f->p[1], 0, 2);
	assert_ret(rmpsc_mpsc_readable(f->ch, 2, &s, &id), 2);
	assert_ret(rmpsc_mpsc_drain_all(f->ch, rec_fn, f->rec), 5);
	rec_expect(f->rec, 0, 0, 3);
	rec_expect(f->rec, 1, 0, 2);
	/* the span was dropped */
	assert_ret(rmpsc_mpsc_advance(f->ch, 1), -EINVAL);
	assert_ret(rmpsc_mpsc_readable(f->ch, 2, &s, &id), -EAGAIN);
}

static void test_mpsc_drain_all_after_close_returns_rest_then_zero(void **state)
{
	struct fx *f = *state;

	push_vals(f->p[0], 0, 2);
	push_vals(f->p[1], 0, 5);
	assert_ret(rmpsc_mpsc_close(f->ch), 0);
	assert_ret(rmpsc_mpsc_is_drained(f->ch), 0);
	assert_ret(rmpsc_mpsc_drain_all(f->ch, rec_fn, f->rec), 7);
	rec_expect(f->rec, 0, 0, 2);
	rec_expect(f->rec, 1, 0, 5);
	assert_ret(rmpsc_mpsc_is_drained(f->ch), 1);
	assert_ret(rmpsc_mpsc_drain_all(f->ch, never_fn, NULL), 0);
	assert_ret(rmpsc_mpsc_drain_all(f->ch, NULL, NULL), 0);
	assert_ret(rmpsc_mpsc_consume_all(f->ch, never_fn, NULL), -EPIPE);
}

static void test_mpsc_is_drained_when_open_or_pending_returns_zero(void **state)
{
	struct fx *f = *state;

	assert_ret(rmpsc_mpsc_is_drained(f->ch), 0); /* open and empty */
	push_vals(f->p[0], 0, 1);
	assert_ret(rmpsc_mpsc_is_drained(f->ch), 0);
	assert_ret(rmpsc_mpsc_close(f->ch), 0);
	assert_ret(rmpsc_mpsc_is_drained(f->ch), 0); /* closed, pending */
	assert_ret(rmpsc_mpsc_consume_count(f->ch, 1), 1);
	assert_ret(rmpsc_mpsc_is_drained(f->ch), 1);
}

/* ---- len / ring_len / hottest -------------------------------------------- */

static void test_mpsc_len_and_ring_len_count_pending_per_ring(void **state)
{
	rmpsc_mpsc *ch = mpsc_new(8, 2, 4, 0);
	rmpsc_producer *p[3] = { reg(ch, 0), reg(ch, 1), reg(ch, 2) };
	rmpsc_span s;

	(void)state;
	push_vals(p[0], 0, 1);
	push_vals(p[1], 0, 4);
	push_vals(p[2], 0, 8);
	assert_ret(rmpsc_producer_reserve(p[0], 3, &s), 3); /* not pending */
	assert_ret(rmpsc_mpsc_len(ch), 13);
	assert_ret(rmpsc_mpsc_ring_len(ch, 0), 1);
	assert_ret(rmpsc_mpsc_ring_len(ch, 1), 4);
	assert_ret(rmpsc_mpsc_ring_len(ch, 2), 8);
	assert_ret(rmpsc_mpsc_ring_len(ch, 3), -ENOENT);
	assert_ret(rmpsc_mpsc_ring_len(ch, 4), -ENOENT);
	assert_ret(rmpsc_mpsc_ring_len(ch, UINT32_MAX), -ENOENT);
	/* a deregistered producer's ring still counts */
	assert_ret(rmpsc_mpsc_deregister(p[1]), 0);
	assert_ret(rmpsc_mpsc_ring_len(ch, 1), 4);
	assert_ret(rmpsc_mpsc_len(ch), 13);
	assert_ret(rmpsc_mpsc_consume_count(ch, 5), 5);
	assert_ret(rmpsc_mpsc_len(ch), 8);
	rmpsc_mpsc_destroy(ch);
}

static void test_mpsc_hottest_when_all_empty_returns_eagain(void **state)
{
	struct fx *f = *state;
	rmpsc_span s;

	assert_ret(rmpsc_mpsc_hottest(f->ch), -EAGAIN);
	assert_ret(rmpsc_producer_reserve(f->p[0], 4, &s), 4);
	assert_ret(rmpsc_mpsc_hottest(f->ch), -EAGAIN);
	assert_ret(rmpsc_producer_commit(f->p[0], 1), 0);
	assert_ret(rmpsc_mpsc_hottest(f->ch), 0);
	assert_ret(rmpsc_mpsc_consume_count(f->ch, 10), 1);
	assert_ret(rmpsc_mpsc_hottest(f->ch), -EAGAIN);
}

static void test_mpsc_hottest_with_data_returns_fullest_ring(void **state)
{
	rmpsc_mpsc *ch = mpsc_new(8, 4, 4, 0);
	rmpsc_producer *p[4] = { reg(ch, 0), reg(ch, 1), reg(ch, 2), reg(ch, 3) };

	(void)state;
	push_vals(p[0], 0, 2);
	assert_ret(rmpsc_mpsc_hottest(ch), 0);
	push_vals(p[2], 0, 5);
	assert_ret(rmpsc_mpsc_hottest(ch), 2);
	push_vals(p[3], 0, 3);
	assert_ret(rmpsc_mpsc_hottest(ch), 2);
	push_vals(p[1], 0, 8);
	assert_ret(rmpsc_mpsc_hottest(ch), 1);
	assert_ret(rmpsc_mpsc_drain_all(ch, NULL, NULL), 18);
	push_vals(p[3], 3, 1);
	assert_ret(rmpsc_mpsc_hottest(ch), 3);
	rmpsc_mpsc_destroy(ch);
}

/* ---- stats --------------------------------------------------------------- */

static void test_mpsc_stats_with_larger_size_zero_fills_tail(void **state)
{
	struct fx *f = *state;
	union {
		rmpsc_mpsc_snapshot st;
		unsigned char b[256];
	} u;

	memset(u.b, 0xa5, sizeof u.b);
	assert_ret(rmpsc_mpsc_stats(f->ch, &u.st, sizeof u.st), 0);
	assert_int_equal(u.st.size, sizeof u.st);
	for (size_t i = sizeof u.st; i < sizeof u.b; i++)
		assert_int_equal(u.b[i], 0xa5);
	memset(u.b, 0xa5, sizeof u.b);
	assert_ret(rmpsc_mpsc_stats(f->ch, &u.st, 160), 0);
	assert_int_equal(u.st.size, 160); /* the caller's size */
	assert_int_equal(u.st.rings, 2);
	for (size_t i = sizeof u.st; i < 160; i++)
		assert_int_equal(u.b[i], 0);
	for (size_t i = 160; i < sizeof u.b; i++)
		assert_int_equal(u.b[i], 0xa5);
}

static void test_mpsc_stats_reports_producers_rings_and_pending(void **state)
{
	rmpsc_mpsc *ch = mpsc_new(8, 1, 4, 0);
	rmpsc_producer *p0 = reg(ch, 0), *p1 = reg(ch, 1), *p2 = reg(ch, 2);
	rmpsc_mpsc_snapshot st;

	(void)state;
	push_vals(p0, 0, 3);
	push_vals(p1, 0, 7);
	assert_ret(rmpsc_mpsc_stats(ch, &st, sizeof st), 0);
	assert_int_equal(st.size, sizeof st);
	assert_int_equal(st.producers, 3);
	assert_int_equal(st.rings, 3);
	assert_int_equal(st.closed, 0);
	assert_int_equal(st.pending, 10);
	assert_int_equal(st.pending_max, 7);
	assert_ret(rmpsc_mpsc_deregister(p2), 0);
	assert_ret(rmpsc_mpsc_deregister(p1), 0);
	assert_ret(rmpsc_mpsc_stats(ch, &st, sizeof st), 0);
	assert_int_equal(st.producers, 1);
	assert_int_equal(st.rings, 3);
	assert_int_equal(st.pending, 10);
	assert_int_equal(st.pending_max, 7);
	assert_ret(rmpsc_mpsc_close(ch), 0);
	assert_ret(rmpsc_mpsc_drain_all(ch, NULL, NULL), 10);
	assert_ret(rmpsc_mpsc_stats(ch, &st, sizeof st), 0);
	assert_int_equal(st.closed, 1);
	assert_int_equal(st.pending, 0);
	assert_int_equal(st.pending_max, 0);
	assert_int_equal(st.rings, 3);
	rmpsc_mpsc_destroy(ch);
}

/*
 * One scripted workload; with @metrics the counters must come out exactly
 * as listed, without them they must stay 0.
 */
static void stats_workload(struct fx *f, bool metrics)
{
	rmpsc_mpsc_snapshot st;
	uint64_t v[16];
	rmpsc_span s;
	uint32_t id;

	fill_vals(v, 0, 3, 4);
	push_vals(f->p[0], 0, 3);                                /* 3 batches, 3 */
	assert_ret(rmpsc_producer_push_n(f->p[0], v, 4), 4);     /* 1 batch, 7 */
	assert_ret(rmpsc_producer_reserve(f->p[0], 2, &s), 1);   /* 1 free */
	span_put_u64(&s, 0, val(0, 7));
	assert_ret(rmpsc_producer_commit(f->p[0], 1), 0);        /* 1 batch, 8 */
	/* six calls that find no room */
	assert_ret(rmpsc_producer_push(f->p[0], v), -EAGAIN);
	assert_ret(rmpsc_producer_push_n(f->p[0], v, 2), -EAGAIN);
	assert_ret(rmpsc_producer_reserve(f->p[0], 1, &s), -EAGAIN);
	assert_ret(rmpsc_producer_push_timed(f->p[0], v, 0, NULL), -ETIMEDOUT);
	assert_ret(rmpsc_producer_push_n_timed(f->p[0], v, 2, 0, NULL), -ETIMEDOUT);
	assert_ret(rmpsc_producer_reserve_timed(f->p[0], 1, &s, 0, NULL), -ETIMEDOUT);
	fill_vals(v, 1, 0, 2);
	assert_ret(rmpsc_producer_push_n_timed(f->p[1], v, 2, -1, NULL), 2); /* 1, 10 */
	assert_ret(rmpsc_mpsc_stats(f->ch, &st, sizeof st), 0);
	assert_int_equal(st.pending, 10);
	assert_int_equal(st.pending_max, 8);
	assert_int_equal(st.sent, metrics ? 10 : 0);
	assert_int_equal(st.batches_sent, metrics ? 6 : 0);
	assert_int_equal(st.reserve_failures, metrics ? 6 : 0);
	assert_int_equal(st.received, 0);
	assert_int_equal(st.batches_received, 0);
	assert_int_equal(st.batch_ns_min, 0);
	assert_int_equal(st.batch_ns_max, 0);
	assert_int_equal(st.batch_ns_total, 0);

	/* consume_all: two rings, two batches */
	assert_ret(rmpsc_mpsc_consume_all(f->ch, rec_fn, f->rec), 10);
	assert_ret(rmpsc_mpsc_stats(f->ch, &st, sizeof st), 0);
	assert_int_equal(st.received, metrics ? 10 : 0);
	assert_int_equal(st.batches_received, metrics ? 2 : 0);
	assert_true(st.batch_ns_min <= st.batch_ns_max);
	assert_true(st.batch_ns_max <= st.batch_ns_total);
	if (!metrics)
		assert_int_equal(st.batch_ns_total, 0);

	/* pop_n over two rings: 5 elements, 2 batches */
	push_vals(f->p[0], 8, 3);
	push_vals(f->p[1], 2, 2);
	assert_ret(rmpsc_mpsc_pop_n(f->ch, v, 16), 5);
	/* readable + two advances: 4 elements, 2 batches */
	push_vals(f->p[1], 4, 4);
	assert_ret(rmpsc_mpsc_readable(f->ch, 8, &s, &id), 4);
	assert_ret(rmpsc_mpsc_advance(f->ch, 1), 0);
	assert_ret(rmpsc_mpsc_advance(f->ch, 3), 0);
	/* count-only, consume_up_to, drain_all with and without fn */
	push_vals(f->p[0], 11, 2);
	assert_ret(rmpsc_mpsc_consume_count(f->ch, 10), 2);    /* 1 batch */
	push_vals(f->p[1], 8, 3);
	assert_ret(rmpsc_mpsc_consume_up_to(f->ch, 10, rec_fn, f->rec), 3); /* 1 */
	push_vals(f->p[0], 13, 1);
	push_vals(f->p[1], 11, 1);
	assert_ret(rmpsc_mpsc_drain_all(f->ch, NULL, NULL), 2); /* 2 batches */
	push_vals(f->p[0], 14, 2);
	assert_ret(rmpsc_mpsc_drain_all(f->ch, rec_fn, f->rec), 2); /* 1 batch */
	/* and a blocking call that times out, then one that finds data */
	assert_ret(rmpsc_mpsc_consume_all_timed(f->ch, never_fn, NULL, 1 * MS, NULL),
		   -ETIMEDOUT);
	push_vals(f->p[1], 12, 1);
	assert_ret(rmpsc_mpsc_consume_all_timed(f->ch, rec_fn, f->rec, -1, NULL), 1);
	assert_ret(rmpsc_mpsc_stats(f->ch, &st, sizeof st), 0);
	assert_int_equal(st.pending, 0);
	assert_int_equal(st.sent, metrics ? 29 : 0);
	assert_int_equal(st.received, metrics ? 29 : 0);
	assert_int_equal(st.batches_sent, metrics ? 6 + 19 : 0);
	assert_int_equal(st.batches_received, metrics ? 2 + 2 + 2 + 1 + 1 + 2 + 1 + 1 : 0);
	assert_int_equal(st.reserve_failures, metrics ? 6 : 0);
	assert_true(st.batch_ns_min <= st.batch_ns_max);
	assert_true(st.batch_ns_max <= st.batch_ns_total);
	if (metrics) {
		/* the timed-out call waited: its time is counted */
		assert_true(st.wait_ns > 0);
	} else {
		assert_int_equal(st.wait_ns, 0);
		assert_int_equal(st.batch_ns_min, 0);
		assert_int_equal(st.batch_ns_max, 0);
		assert_int_equal(st.batch_ns_total, 0);
	}
}

static void test_mpsc_stats_with_metrics_counts_exactly(void **state)
{
	stats_workload(*state, true);
}

static void test_mpsc_stats_without_metrics_keeps_counters_zero(void **state)
{
	stats_workload(*state, false);
}

/*
 * The status calls while a drained ring is reset for a new producer (the
 * test point runs them between the stores of the reset): a figure may be
 * stale but never more than the channel ever held, here 5 elements at
 * most and none at all while the ring is handed over. They used to see the
 * old head with the new tail and report 1024, the capacity clamp. In the
 * second variant the last producer's final push lost the race against the
 * close (its tail is one past the stream's end, the push returned -EPIPE):
 * that element was never in the channel and must never be counted.
 */
static struct {
	rmpsc_mpsc *ch;
	int calls;
	int64_t worst;
	int hot;
} reuse_obs;

static void reuse_observe(int point, void *obj)
{
	rmpsc_mpsc_snapshot st;
	int64_t v;

	(void)obj;
	if (point != TC_TP_RING_REUSE)
		return;
	reuse_obs.calls++;
	v = rmpsc_mpsc_len(reuse_obs.ch);
	if (v > reuse_obs.worst)
		reuse_obs.worst = v;
	v = rmpsc_mpsc_ring_len(reuse_obs.ch, 0);
	if (v > reuse_obs.worst)
		reuse_obs.worst = v;
	if (rmpsc_mpsc_stats(reuse_obs.ch, &st, sizeof st) == 0) {
		if ((int64_t)st.pending > reuse_obs.worst)
			reuse_obs.worst = (int64_t)st.pending;
		if ((int64_t)st.pending_max > reuse_obs.worst)
			reuse_obs.worst = (int64_t)st.pending_max;
	}
	if (rmpsc_mpsc_hottest(reuse_obs.ch) != -EAGAIN)
		reuse_obs.hot++;
}

static void test_mpsc_status_calls_during_ring_reuse_never_count_phantoms(void **state)
{
	(void)state;
	for (int dropped = 0; dropped < 2; dropped++) {
		rmpsc_mpsc *ch = mpsc_new(1024, 1, 1, 0);
		rmpsc_producer *p = reg(ch, 0);
		tc_core *rc = tc_producer_core(p);
		uint64_t v[8];

		push_vals(p, 0, 5);
		assert_ret(rmpsc_mpsc_pop_n(ch, v, 8), 5);
		assert_ret(rmpsc_mpsc_deregister(p), 0);
		if (dropped) {
			/* what a push that found the end decided below it leaves */
			tc_set_tail(rc, 6);
			assert_ret(tc_publish_closed(rc, 6), -EPIPE);
		}
		assert_ret(rmpsc_mpsc_len(ch), 0);
		assert_ret(rmpsc_mpsc_pop_n(ch, v, 8), -EAGAIN); /* retires the ring */
		memset(&reuse_obs, 0, sizeof reuse_obs);
		reuse_obs.ch = ch;
		tc_set_test_hook(reuse_observe);
		p = reg(ch, 0);
		tc_set_test_hook(NULL);
		assert_true(reuse_obs.calls >= 2);
		if (reuse_obs.worst != 0 || reuse_obs.hot != 0) {
			print_error("variant %d: a status call counted %lld elements (hottest found"
				    " one %d times) in an empty channel\n", dropped,
				    (long long)reuse_obs.worst, reuse_obs.hot);
			fail();
		}
		assert_ret(rmpsc_mpsc_len(ch), 0);
		push_vals(p, 0, 1);
		assert_ret(rmpsc_mpsc_len(ch), 1);
		assert_ret(rmpsc_mpsc_pop_n(ch, v, 8), 1);
		buf_expect(v, 1, 0, 0, 1);
		rmpsc_mpsc_destroy(ch);
	}
}

static void test_mpsc_stats_with_metrics_survive_ring_reuse(void **state)
{
	rmpsc_mpsc *ch = mpsc_new(8, 1, 1, RMPSC_MPSC_F_METRICS);
	rmpsc_mpsc_snapshot st;
	struct rec *r = rec_new();

	(void)state;
	for (uint32_t i = 0; i < 5; i++) {
		rmpsc_producer *p = reg(ch, 0);

		push_vals(p, 0, 3);
		assert_ret(rmpsc_mpsc_deregister(p), 0);
		assert_ret(consume_until_zero(ch, r), 3);
		memset(r, 0, sizeof *r);
	}
	assert_ret(rmpsc_mpsc_stats(ch, &st, sizeof st), 0);
	assert_int_equal(st.sent, 15);
	assert_int_equal(st.received, 15);
	assert_int_equal(st.batches_sent, 15);
	assert_int_equal(st.producers, 0);
	assert_int_equal(st.rings, 1);
	free(r);
	rmpsc_mpsc_destroy(ch);
}

/* ---- set_wait ------------------------------------------------------------ */

static void test_mpsc_set_wait_with_deadline_bounds_default_waits(void **state)
{
	struct fx *f = *state;
	rmpsc_wait w;
	uint64_t v;
	rmpsc_span s;
	struct helper h;

	assert_ret(rmpsc_wait_init(&w, sizeof w, RMPSC_WAIT_DEADLINE), 0);
	w.timeout_ns = 1 * MS;
	assert_ret(rmpsc_mpsc_set_wait(f->ch, &w), 0);
	/* no time limit, but the channel's strategy ends every wait */
	assert_ret(rmpsc_mpsc_consume_all_timed(f->ch, never_fn, NULL, -1, NULL),
		   -ETIMEDOUT);
	assert_ret(rmpsc_mpsc_pop_n_timed(f->ch, &v, 1, -1, NULL), -ETIMEDOUT);
	assert_ret(rmpsc_mpsc_readable_timed(f->ch, 1, &s, NULL, -1, NULL), -ETIMEDOUT);
	/* a strategy passed to the call wins over the channel's */
	assert_ret(rmpsc_wait_init(&w, sizeof w, RMPSC_WAIT_BLOCK), 0);
	helper_start(&h, ACT_PUSH, f->ch, f->p[0], val(0, 3));
	assert_ret(rmpsc_mpsc_pop_n_timed(f->ch, &v, 1, WAKE_TIMEOUT, &w), 1);
	helper_join(&h);
	assert_int_equal(v, val(0, 3));
	/* the copy was taken: changing the caller's struct changes nothing */
	assert_ret(rmpsc_wait_init(&w, sizeof w, RMPSC_WAIT_DEADLINE), 0);
	w.timeout_ns = 1 * MS;
	assert_ret(rmpsc_mpsc_set_wait(f->ch, &w), 0);
	w.timeout_ns = INT64_MAX;
	assert_ret(rmpsc_mpsc_pop_n_timed(f->ch, &v, 1, -1, NULL), -ETIMEDOUT);
	/* NULL restores the default: blocking without a bound */
	assert_ret(rmpsc_mpsc_set_wait(f->ch, NULL), 0);
	helper_start(&h, ACT_CLOSE, f->ch, NULL, 0);
	assert_ret(rmpsc_mpsc_pop_n_timed(f->ch, &v, 1, -1, NULL), -EPIPE);
	helper_join(&h);
}

/* ---- borrowed reads ----------------------------------------------------- */

static void test_mpsc_borrow_with_data_returns_view_token_and_producer_id(void **state)
{
	struct fx *f = *state;
	rmpsc_borrow b;
	uint32_t id = UINT32_MAX;

	push_vals(f->p[1], 0, 3);
	memset(&b, 0xa5, sizeof b);
	assert_ret(rmpsc_mpsc_borrow(f->ch, 8, &b, &id), 3);
	assert_int_equal(id, 1);
	assert_int_equal(b.count, 3);
	assert_int_equal(b._pad0, 0);
	assert_non_null(b.data);
	for (uint32_t i = 0; i < 3; i++) {
		uint64_t v;

		memcpy(&v, (const unsigned char *)b.data + i * 8, 8);
		assert_int_equal(v, val(1, i));
	}
	/* borrowed is still pending until committed */
	assert_ret(rmpsc_mpsc_len(f->ch), 3);
	assert_ret(rmpsc_producer_len(f->p[1]), 3);
	assert_ret(rmpsc_mpsc_borrow_commit(f->ch, b.token), 0);
	assert_ret(rmpsc_mpsc_len(f->ch), 0);
	/* the id pointer may be NULL */
	push_vals(f->p[0], 0, 1);
	assert_ret(rmpsc_mpsc_borrow(f->ch, 8, &b, NULL), 1);
	assert_ret(rmpsc_mpsc_borrow_commit(f->ch, b.token), 0);
}

static void test_mpsc_borrow_when_empty_returns_eagain(void **state)
{
	struct fx *f = *state;
	rmpsc_borrow b;

	assert_ret(rmpsc_mpsc_borrow(f->ch, 4, &b, NULL), -EAGAIN);
	/* everything there is borrowed already */
	push_vals(f->p[0], 0, 2);
	assert_ret(rmpsc_mpsc_borrow(f->ch, 4, &b, NULL), 2);
	assert_ret(rmpsc_mpsc_borrow(f->ch, 4, &(rmpsc_borrow){ 0 }, NULL), -EAGAIN);
	assert_ret(rmpsc_mpsc_borrow_commit(f->ch, b.token), 0);
	assert_ret(rmpsc_mpsc_borrow(f->ch, 4, &b, NULL), -EAGAIN);
}

static void test_mpsc_borrow_across_rings_takes_next_ring(void **state)
{
	struct fx *f = *state;
	rmpsc_borrow a, b;
	uint32_t ida, idb;

	push_vals(f->p[0], 0, 3);
	push_vals(f->p[1], 0, 2);
	assert_ret(rmpsc_mpsc_borrow(f->ch, 8, &a, &ida), ida == 0 ? 3 : 2);
	assert_ret(rmpsc_mpsc_borrow(f->ch, 8, &b, &idb), idb == 0 ? 3 : 2);
	assert_int_not_equal(ida, idb);
	assert_int_not_equal(a.token, b.token);
	assert_ret(rmpsc_mpsc_borrow(f->ch, 8, &(rmpsc_borrow){ 0 }, NULL), -EAGAIN);
	assert_ret(rmpsc_mpsc_borrow_commit(f->ch, b.token), 0);
	assert_ret(rmpsc_mpsc_ring_len(f->ch, idb), 0);
	assert_ret(rmpsc_mpsc_ring_len(f->ch, ida), ida == 0 ? 3 : 2);
	assert_ret(rmpsc_mpsc_borrow_commit(f->ch, a.token), 0);
	assert_ret(rmpsc_mpsc_len(f->ch), 0);
}

static void test_mpsc_borrow_commit_out_of_order_releases_in_order(void **state)
{
	struct fx *f = *state;
	rmpsc_borrow b[3];
	uint64_t v;

	push_vals(f->p[0], 0, 6);
	for (uint32_t i = 0; i < 3; i++) {
		uint32_t id;

		assert_ret(rmpsc_mpsc_borrow(f->ch, 2, &b[i], &id), 2);
		assert_int_equal(id, 0);
		memcpy(&v, b[i].data, 8);
		assert_int_equal(v, val(0, 2 * i));
	}
	/* B and C committed: nothing released while A is out */
	assert_ret(rmpsc_mpsc_borrow_commit(f->ch, b[1].token), 0);
	assert_ret(rmpsc_mpsc_borrow_commit(f->ch, b[2].token), 0);
	assert_ret(rmpsc_mpsc_ring_len(f->ch, 0), 6);
	assert_ret(rmpsc_producer_len(f->p[0]), 6);
	/* A: all three */
	assert_ret(rmpsc_mpsc_borrow_commit(f->ch, b[0].token), 0);
	assert_ret(rmpsc_mpsc_ring_len(f->ch, 0), 0);
	/* and the producer has the room again */
	push_vals(f->p[0], 6, FIX_CAP);
}

static void test_mpsc_borrow_commit_with_stale_or_forged_token_returns_einval(void **state)
{
	struct fx *f = *state;
	rmpsc_borrow b, c;

	push_vals(f->p[0], 0, 4);
	assert_ret(rmpsc_mpsc_borrow(f->ch, 2, &b, NULL), 2);
	assert_ret(rmpsc_mpsc_borrow(f->ch, 2, &c, NULL), 2);
	assert_ret(rmpsc_mpsc_borrow_commit(f->ch, c.token), 0);
	assert_ret(rmpsc_mpsc_borrow_commit(f->ch, c.token), -EINVAL); /* twice */
	assert_ret(rmpsc_mpsc_borrow_commit(f->ch, b.token + 1), -EINVAL);
	assert_ret(rmpsc_mpsc_borrow_commit(f->ch, b.token ^ (1ull << 60)), -EINVAL);
	assert_ret(rmpsc_mpsc_borrow_commit(f->ch, UINT64_MAX), -EINVAL);
	assert_ret(rmpsc_mpsc_borrow_commit(f->ch, 12345), -EINVAL);
	/* nothing of that changed anything */
	assert_ret(rmpsc_mpsc_ring_len(f->ch, 0), 4);
	assert_ret(rmpsc_mpsc_borrow_commit(f->ch, b.token), 0);
	assert_ret(rmpsc_mpsc_borrow_commit(f->ch, b.token), -EINVAL);
	assert_ret(rmpsc_mpsc_ring_len(f->ch, 0), 0);
}

/*
 * A token names its channel and ring: two channels with borrows at the same
 * positions of ring 0 refuse each other's tokens (the first used to take
 * the second's and release its own run while it was being read), a ring's
 * own token is refused by a channel, and a token of a ring from before its
 * reuse by a new producer is refused.
 */
static void test_mpsc_borrow_commit_with_token_of_another_channel_returns_einval(void **state)
{
	rmpsc_mpsc *a = mpsc_new(8, 1, 2, 0), *b = mpsc_new(8, 1, 2, 0);
	rmpsc_producer *pa = reg(a, 0), *pb = reg(b, 0);
	rmpsc_ring *r = NULL;
	rmpsc_ring_config rcfg;
	rmpsc_borrow ba, bb, br, old;
	uint64_t v[4];

	(void)state;
	push_vals(pa, 0, 4);
	push_vals(pb, 0, 4);
	assert_ret(rmpsc_mpsc_borrow(a, 2, &ba, NULL), 2);
	assert_ret(rmpsc_mpsc_borrow(b, 2, &bb, NULL), 2);
	assert_ret(rmpsc_mpsc_borrow_commit(a, bb.token), -EINVAL);
	assert_ret(rmpsc_mpsc_ring_len(a, 0), 4);
	assert_ret(rmpsc_mpsc_borrow_commit(b, ba.token), -EINVAL);

	/* a ring's token */
	assert_ret(rmpsc_ring_config_init(&rcfg, sizeof rcfg), 0);
	assert_ret(rmpsc_ring_create(&rcfg, &r), 0);
	assert_ret(rmpsc_ring_push_n(r, v, 4), 4);
	assert_ret(rmpsc_ring_borrow(r, 2, &br), 2);
	assert_ret(rmpsc_mpsc_borrow_commit(a, br.token), -EINVAL);
	assert_ret(rmpsc_ring_borrow_commit(r, ba.token), -EINVAL);
	assert_ret(rmpsc_ring_borrow_commit(r, br.token), 0);
	rmpsc_ring_destroy(r);

	assert_ret(rmpsc_mpsc_borrow_commit(a, ba.token), 0);
	assert_ret(rmpsc_mpsc_borrow_commit(b, bb.token), 0);
	assert_ret(rmpsc_mpsc_pop_n(a, v, 4), 2);
	buf_expect(v, 2, 0, 2, 2);

	/* ring 0 of b reused by a new producer: its old tokens are foreign */
	assert_ret(rmpsc_mpsc_borrow(b, 2, &old, NULL), 2);
	assert_ret(rmpsc_mpsc_borrow_commit_all(b), 2);
	assert_ret(rmpsc_mpsc_deregister(pb), 0);
	assert_ret(rmpsc_mpsc_pop_n(b, v, 4), -EAGAIN); /* retires ring 0 */
	pb = reg(b, 0);
	push_vals(pb, 0, 4);
	assert_ret(rmpsc_mpsc_borrow(b, 2, &bb, NULL), 2);
	assert_ret(rmpsc_mpsc_borrow_commit(b, old.token), -EINVAL);
	assert_ret(rmpsc_mpsc_borrow_commit(b, bb.token), 0);
	rmpsc_mpsc_destroy(a);
	rmpsc_mpsc_destroy(b);
}

static void test_mpsc_borrow_outstanding_other_calls_leave_that_ring_alone(void **state)
{
	struct fx *f = *state;
	rmpsc_borrow b;
	uint64_t v[8];
	rmpsc_span s;
	uint32_t id;

	push_vals(f->p[0], 0, 4);
	assert_ret(rmpsc_mpsc_borrow(f->ch, 2, &b, &id), 2);
	assert_int_equal(id, 0);
	/* ring 0 has two more, not borrowed: the other calls take ring 1 only */
	push_vals(f->p[1], 0, 2);
	assert_ret(consume_rounds(f->ch, f->rec, 2), 2);
	rec_expect(f->rec, 1, 0, 2);
	rec_expect(f->rec, 0, 0, 0);
	assert_ret(rmpsc_mpsc_pop_n(f->ch, v, 8), -EAGAIN);
	assert_ret(rmpsc_mpsc_pop(f->ch, v, &id), -EAGAIN);
	assert_ret(rmpsc_mpsc_readable(f->ch, 8, &s, &id), -EAGAIN);
	assert_ret(rmpsc_mpsc_consume_count(f->ch, 8), 0);
	assert_ret(rmpsc_mpsc_ring_len(f->ch, 0), 4);
	/* more borrows take the rest of ring 0, in order */
	assert_ret(rmpsc_mpsc_borrow(f->ch, 8, &b, &id), 2);
	assert_int_equal(id, 0);
	memcpy(v, b.data, 8);
	assert_int_equal(v[0], val(0, 2));
	/* once every borrow is back, the ring is served as usual */
	assert_ret(rmpsc_mpsc_borrow_commit_all(f->ch), 4);
	push_vals(f->p[0], 4, 1);
	assert_ret(rmpsc_mpsc_pop_n(f->ch, v, 8), 1);
	assert_int_equal(v[0], val(0, 4));
}

static void test_mpsc_borrow_commit_all_releases_every_ring(void **state)
{
	struct fx *f = *state;
	int k, total = 0, borrows = 0;
	rmpsc_borrow b;

	assert_ret(rmpsc_mpsc_borrow_commit_all(f->ch), 0);
	push_vals(f->p[0], 0, 5);
	push_vals(f->p[1], 0, 3);

	assert_ret(rmpsc_mpsc_borrow(f->ch, 2, &b, NULL), 2);
	while ((k = rmpsc_mpsc_borrow(f->ch, 8, &b, NULL)) > 0) {
		assert_int_equal(b.count, (uint32_t)k);
		total += k;
		borrows++;
	}
	assert_ret(k, -EAGAIN);
	assert_int_equal(total, 6);
	assert_true(borrows >= 2); /* both rings */
	assert_ret(rmpsc_mpsc_len(f->ch), 8);
	assert_ret(rmpsc_mpsc_borrow_commit_all(f->ch), 8);
	assert_ret(rmpsc_mpsc_len(f->ch), 0);
	assert_ret(rmpsc_mpsc_borrow_commit_all(f->ch), 0);
	/* tokens committed by commit_all are stale */
	assert_ret(rmpsc_mpsc_borrow_commit(f->ch, b.token), -EINVAL);
}

static void test_mpsc_borrow_when_ring_wraps_stops_at_buffer_end(void **state)
{
	struct fx *f = *state;
	rmpsc_borrow b;
	uint64_t v;

	push_vals(f->p[0], 0, 6);
	assert_ret(rmpsc_mpsc_consume_count(f->ch, 6), 6);
	push_vals(f->p[0], 6, 5); /* slots 6, 7, then 0, 1, 2 */
	assert_ret(rmpsc_mpsc_borrow(f->ch, 8, &b, NULL), 2);
	memcpy(&v, b.data, 8);
	assert_int_equal(v, val(0, 6));
	assert_ret(rmpsc_mpsc_borrow(f->ch, 8, &b, NULL), 3);
	memcpy(&v, b.data, 8);
	assert_int_equal(v, val(0, 8));
	assert_ret(rmpsc_mpsc_borrow_commit_all(f->ch), 5);
}

static void test_mpsc_borrow_fn_hands_elements_then_commits(void **state)
{
	struct fx *f = *state;

	assert_ret(rmpsc_mpsc_borrow_fn(f->ch, 8, rec_fn, f->rec), -EAGAIN);
	push_vals(f->p[1], 0, 3);
	assert_ret(rmpsc_mpsc_borrow_fn(f->ch, 2, rec_fn, f->rec), 2);
	assert_int_equal(f->rec->calls, 1);
	assert_int_equal(f->rec->call_id[0], 1);
	assert_ret(rmpsc_mpsc_ring_len(f->ch, 1), 1);
	assert_ret(rmpsc_mpsc_borrow_fn(f->ch, 8, rec_fn, f->rec), 1);
	rec_expect(f->rec, 1, 0, 3);
	assert_ret(rmpsc_mpsc_len(f->ch), 0);
	assert_ret(rmpsc_mpsc_close(f->ch), 0);
	assert_ret(rmpsc_mpsc_borrow_fn(f->ch, 8, never_fn, NULL), -EPIPE);
}

static void test_mpsc_borrow_after_close_returns_rest_then_epipe(void **state)
{
	struct fx *f = *state;
	rmpsc_borrow b;

	push_vals(f->p[0], 0, 2);
	assert_ret(rmpsc_mpsc_borrow(f->ch, 1, &b, NULL), 1);
	assert_ret(rmpsc_mpsc_close(f->ch), 0);
	assert_ret(rmpsc_mpsc_borrow(f->ch, 8, &(rmpsc_borrow){ 0 }, NULL), 1);
	/* drained, but a borrow is out: not the end yet */
	assert_ret(rmpsc_mpsc_borrow(f->ch, 8, &(rmpsc_borrow){ 0 }, NULL), -EAGAIN);
	assert_ret(rmpsc_mpsc_consume_all(f->ch, never_fn, NULL), 0);
	assert_ret(rmpsc_mpsc_is_drained(f->ch), 0);
	assert_ret(rmpsc_mpsc_borrow_commit_all(f->ch), 2);
	assert_ret(rmpsc_mpsc_borrow(f->ch, 8, &b, NULL), -EPIPE);
	assert_ret(rmpsc_mpsc_consume_all(f->ch, never_fn, NULL), -EPIPE);
	assert_ret(rmpsc_mpsc_is_drained(f->ch), 1);
}

static void test_mpsc_borrow_with_metrics_counts_received(void **state)
{
	struct fx *f = *state;
	rmpsc_mpsc_snapshot st;
	rmpsc_borrow b;
	int k;

	push_vals(f->p[0], 0, 3);
	push_vals(f->p[1], 0, 2);

	k = rmpsc_mpsc_borrow(f->ch, 8, &b, NULL);
	assert_true(k == 2 || k == 3);
	assert_ret(rmpsc_mpsc_borrow_commit(f->ch, b.token), 0);
	assert_ret(rmpsc_mpsc_borrow_fn(f->ch, 8, rec_fn, f->rec), 5 - k);
	assert_ret(rmpsc_mpsc_stats(f->ch, &st, sizeof st), 0);
	assert_int_equal(st.pending, 0);
	assert_int_equal(st.sent, 5);
	/* received: "elements consumed"; borrowed and committed is consumed */
	assert_int_equal(st.received, 5);
}

/* ---- argument and handle checks, one table per struct or handle ----------- */

/*
 * test_table.h drives them: every call refused for one argument or for its
 * handle, with the code channel.h promises. The live fixture is a channel
 * of rings of 8 with producers 0 and 1 registered, producer 0 having
 * pushed row->state elements; afterwards the channel holds exactly those,
 * in order, nothing is borrowed, no readable span is out, it is open and
 * it still works.
 */

static rmpsc_mpsc *tch;        /* the fixture's channel */
static rmpsc_producer *tp;     /* its producer 0 */
static rmpsc_notifier *tnotif; /* a live handle of another type */
static uint64_t tvals[4];
static uint32_t tid;
static rmpsc_span tspan;
static rmpsc_borrow tborrow;
static rmpsc_mpsc_snapshot tstats;
static rmpsc_wait block_wait;

static void *chan_fx(uint32_t state)
{
	tch = mpsc_new(FIX_CAP, 2, 4, 0);
	tp = reg(tch, 0);
	(void)reg(tch, 1);
	push_vals(tp, 0, state);
	return tch;
}

/* The fixture's channel holds @fill elements of producer 0, untouched. */
static const char *chan_intact(uint32_t fill)
{
	uint64_t v = 0;
	uint32_t id = 9;

	if (rmpsc_mpsc_len(tch) != fill || rmpsc_producer_len(tp) != fill)
		return "the channel's length changed";
	if (rmpsc_mpsc_is_closed(tch) != 0)
		return "the channel was closed";
	if (rmpsc_producer_commit(tp, 1) != -EINVAL)
		return "a reservation was left";
	if (rmpsc_mpsc_advance(tch, 1) != -EINVAL)
		return "a readable span was left";
	if (rmpsc_mpsc_borrow_commit_all(tch) != 0)
		return "a borrow was left";
	for (uint32_t i = 0; i < fill; i++)
		if (rmpsc_mpsc_pop(tch, &v, &id) || v != val(0, i) || id != 0)
			return "the queued elements changed";
	v = val(0, 99);
	if (rmpsc_producer_push(tp, &v) || rmpsc_mpsc_pop(tch, &v, &id) || v != val(0, 99))
		return "the channel no longer works";
	return NULL;
}

static const char *chan_fx_check(void *h, const struct tt_row *row, int64_t got)
{
	(void)h;
	(void)got;
	return chan_intact(row->state);
}

static void chan_fx_free(void *h)
{
	rmpsc_mpsc_destroy(h);
}

/* The producer table's fixture: the same, its handle producer 0. */
static void *prod_fx(uint32_t state)
{
	chan_fx(state);
	return tp;
}

static void prod_fx_free(void *h)
{
	(void)h;
	rmpsc_mpsc_destroy(tch);
}

/* Live handles of another type, each made with its own channel. */
static void *make_producer(void)
{
	chan_fx(0);
	return tp;
}

static void *make_channel(void)
{
	return chan_fx(0);
}

static const char *other_intact(void *h)
{
	(void)h;
	if (rmpsc_producer_id(tp) != 0)
		return "the producer changed";
	return chan_intact(0);
}

static void drop_channel(void *h)
{
	(void)h;
	rmpsc_mpsc_destroy(tch);
}

static void *make_notifier(void)
{
	assert_ret(rmpsc_notifier_create(0, &tnotif), 0);
	return tnotif;
}

static const char *notifier_intact(void *h)
{
	return rmpsc_notifier_fd(h) >= 0 && rmpsc_notifier_consume(h) == 0
		       ? NULL
		       : "the notifier changed";
}

static void drop_notifier(void *h)
{
	rmpsc_notifier_destroy(h);
}

/* A producer after its deregistration (a reservation was out). */
static void *make_gone_producer(void)
{
	chan_fx(0);
	assert_ret(rmpsc_producer_reserve(tp, 1, &tspan), 1);
	assert_ret(rmpsc_mpsc_deregister(tp), 0);
	return tp;
}

static const char *gone_intact(void *h)
{
	(void)h;
	if (rmpsc_mpsc_stats(tch, &tstats, sizeof tstats) || tstats.producers != 1)
		return "the producer count changed";
	return rmpsc_mpsc_len(tch) == 0 ? NULL : "the channel's length changed";
}

static const struct tt_handle not_a_channel[] = {
	TT_HANDLES_NOT_A_HANDLE,
	{ "a producer", make_producer, other_intact, drop_channel },
	{ "a notifier", make_notifier, notifier_intact, drop_notifier },
};

static const struct tt_handle not_a_producer[] = {
	TT_HANDLES_NOT_A_HANDLE,
	{ "a channel", make_channel, other_intact, drop_channel },
	{ "a deregistered producer", make_gone_producer, gone_intact, drop_channel },
	{ "a notifier", make_notifier, notifier_intact, drop_notifier },
};

/* v: a count, or for the _timed calls the strategy index (tt_bad_wait()). */
TT_CALL(m_consume_all, rmpsc_mpsc_consume_all(h, never_fn, NULL))
TT_CALL(m_consume_up_to, rmpsc_mpsc_consume_up_to(h, v, never_fn, NULL))
TT_CALL(m_consume_count, rmpsc_mpsc_consume_count(h, v))
TT_CALL(m_consume_all_timed, rmpsc_mpsc_consume_all_timed(h, never_fn, NULL, 0, NULL))
TT_CALL(m_reset_skip, rmpsc_mpsc_reset_skip(h))
TT_CALL(m_pop, rmpsc_mpsc_pop(h, tvals, &tid))
TT_CALL(m_pop_n, rmpsc_mpsc_pop_n(h, tvals, (uint32_t)v))
TT_CALL(m_pop_n_timed, rmpsc_mpsc_pop_n_timed(h, tvals, (uint32_t)v, 0, NULL))
TT_CALL(m_readable, rmpsc_mpsc_readable(h, (uint32_t)v, &tspan, &tid))
TT_CALL(m_readable_timed, rmpsc_mpsc_readable_timed(h, (uint32_t)v, &tspan, &tid, 0, NULL))
TT_CALL(m_advance, rmpsc_mpsc_advance(h, (uint32_t)v))
TT_CALL(m_close, rmpsc_mpsc_close(h))
TT_CALL(m_drain_all, rmpsc_mpsc_drain_all(h, NULL, NULL))
TT_CALL(m_is_drained, rmpsc_mpsc_is_drained(h))
TT_CALL(m_is_closed, rmpsc_mpsc_is_closed(h))
TT_CALL(m_len, rmpsc_mpsc_len(h))
TT_CALL(m_ring_len, rmpsc_mpsc_ring_len(h, (uint32_t)v))
TT_CALL(m_hottest, rmpsc_mpsc_hottest(h))
TT_CALL(m_stats, rmpsc_mpsc_stats(h, &tstats, sizeof tstats))
TT_CALL(m_set_wait, rmpsc_mpsc_set_wait(h, v ? &block_wait : NULL))
TT_CALL(m_borrow, rmpsc_mpsc_borrow(h, (uint32_t)v, &tborrow, &tid))
TT_CALL(m_borrow_commit, rmpsc_mpsc_borrow_commit(h, v))
TT_CALL(m_borrow_commit_all, rmpsc_mpsc_borrow_commit_all(h))
TT_CALL(m_borrow_fn, rmpsc_mpsc_borrow_fn(h, (uint32_t)v, never_fn, NULL))

TT_CONSTRUCTOR(m_register, rmpsc_producer, rmpsc_mpsc_register, tt_any,
	       rmpsc_mpsc_deregister)

/* NULL where a pointer is required (the refused call takes nothing) */
TT_CALL(mn_register, rmpsc_mpsc_register(v ? h : NULL, NULL))
TT_CALL(mn_consume_all, rmpsc_mpsc_consume_all(h, NULL, NULL))
TT_CALL(mn_consume_up_to, rmpsc_mpsc_consume_up_to(h, v, NULL, NULL))
TT_CALL(mn_consume_all_timed, rmpsc_mpsc_consume_all_timed(h, NULL, NULL, 0, NULL))
TT_CALL(mn_pop, rmpsc_mpsc_pop(h, NULL, v ? &tid : NULL))
TT_CALL(mn_pop_n, rmpsc_mpsc_pop_n(h, NULL, (uint32_t)v))
TT_CALL(mn_pop_n_timed, rmpsc_mpsc_pop_n_timed(h, NULL, (uint32_t)v, 0, NULL))
TT_CALL(mn_readable, rmpsc_mpsc_readable(h, 1, NULL, NULL))
TT_CALL(mn_readable_timed, rmpsc_mpsc_readable_timed(h, 1, NULL, NULL, 0, NULL))
TT_CALL(mn_stats, rmpsc_mpsc_stats(h, NULL, sizeof tstats))
TT_CALL(mn_borrow, rmpsc_mpsc_borrow(h, 1, NULL, NULL))
TT_CALL(mn_borrow_fn, rmpsc_mpsc_borrow_fn(h, 1, NULL, NULL))
TT_CALL(mn_set_wait, rmpsc_mpsc_set_wait(h, NULL))

/* n = 0 on a non-empty channel: 0, nothing taken, no span or borrow out */
TT_CALL(mz_pop_n, rmpsc_mpsc_pop_n(h, v ? tvals : NULL, 0))
TT_CALL(mz_pop_n_timed, rmpsc_mpsc_pop_n_timed(h, v ? tvals : NULL, 0, v ? -1 : 0, NULL))

static int64_t mz_readable(void *h, uint64_t v)
{
	int rc;

	memset(&tspan, 0xa5, sizeof tspan);
	rc = v ? rmpsc_mpsc_readable_timed(h, 0, &tspan, NULL, -1, NULL)
	       : rmpsc_mpsc_readable(h, 0, &tspan, NULL);
	if (rc == 0 && (tspan.nseg != 0 || tspan.count[0] + tspan.count[1] != 0 ||
			tspan.iov[0].iov_len + tspan.iov[1].iov_len != 0))
		*tt_note() = "the span of 0 elements is not empty";
	return rc;
}

static int64_t mz_borrow(void *h, uint64_t v)
{
	int rc;

	(void)v;
	memset(&tborrow, 0xa5, sizeof tborrow);
	rc = rmpsc_mpsc_borrow(h, 0, &tborrow, NULL);
	if (rc == 0 && tborrow.count != 0)
		*tt_note() = "a borrow of 0 elements counts some";
	return rc;
}

TT_CALL(mz_borrow_fn, rmpsc_mpsc_borrow_fn(h, 0, never_fn, NULL))

TT_CALL(mw_consume_all_timed, rmpsc_mpsc_consume_all_timed(h, never_fn, NULL, 0,
							   tt_bad_wait(v)))
TT_CALL(mw_pop_n_timed, rmpsc_mpsc_pop_n_timed(h, tvals, 1, 0, tt_bad_wait(v)))
TT_CALL(mw_pop_n_timed_0, rmpsc_mpsc_pop_n_timed(h, tvals, 0, 0, tt_bad_wait(v)))
TT_CALL(mw_readable_timed, rmpsc_mpsc_readable_timed(h, 1, &tspan, NULL, 0, tt_bad_wait(v)))
TT_CALL(mw_readable_timed_0, rmpsc_mpsc_readable_timed(h, 0, &tspan, NULL, 0,
						       tt_bad_wait(v)))
TT_CALL(mw_set_wait, rmpsc_mpsc_set_wait(h, tt_bad_wait(v)))
/* a larger strategy with a zero tail is taken */
static int64_t m_set_wait_zero_tail(void *h, uint64_t v)
{
	union {
		rmpsc_wait w;
		unsigned char b[48];
	} u;

	(void)v;
	memset(&u, 0, sizeof u);
	assert_ret(rmpsc_wait_init(&u.w, sizeof u, RMPSC_WAIT_BLOCK), 0);
	return rmpsc_mpsc_set_wait(h, &u.w);
}

/* stats into a struct whose size is refused (v), nothing written */
static int64_t m_stats_size(void *h, uint64_t v)
{
	static union {
		rmpsc_mpsc_snapshot st;
		unsigned char b[4096 + 16];
	} u;
	int rc;

	memset(u.b, 0xa5, sizeof u.b);
	rc = rmpsc_mpsc_stats(h, &u.st, (uint32_t)v);
	for (size_t i = 0; i < sizeof u.b; i++)
		if (u.b[i] != 0xa5)
			*tt_note() = "stats wrote into a struct it refused";
	return rc;
}

static const struct tt_row chan_rows[] = {
	/* the handle */
	TT_ROW("consume_all", m_consume_all, -EBADF, TT_BAD),
	TT_ROW("consume_up_to", m_consume_up_to, -EBADF, TT_BAD, TT_VALS(4, 0)),
	TT_ROW("consume_count", m_consume_count, -EBADF, TT_BAD, TT_VALS(4, 0)),
	TT_ROW("consume_all_timed", m_consume_all_timed, -EBADF, TT_BAD),
	TT_ROW("reset_skip", m_reset_skip, -EBADF, TT_BAD),
	TT_ROW("pop", m_pop, -EBADF, TT_BAD),
	TT_ROW("pop_n", m_pop_n, -EBADF, TT_BAD, TT_VALS(2, 0)),
	TT_ROW("pop_n_timed", m_pop_n_timed, -EBADF, TT_BAD, TT_VALS(2, 0)),
	TT_ROW("readable", m_readable, -EBADF, TT_BAD, TT_VALS(2, 0)),
	TT_ROW("readable_timed", m_readable_timed, -EBADF, TT_BAD, TT_VALS(2)),
	TT_ROW("advance", m_advance, -EBADF, TT_BAD, TT_VALS(1, 0)),
	TT_ROW("close", m_close, -EBADF, TT_BAD),
	TT_ROW("drain_all", m_drain_all, -EBADF, TT_BAD),
	TT_ROW("is_drained", m_is_drained, -EBADF, TT_BAD),
	TT_ROW("is_closed", m_is_closed, -EBADF, TT_BAD),
	TT_ROW("len", m_len, -EBADF, TT_BAD),
	TT_ROW("ring_len", m_ring_len, -EBADF, TT_BAD),
	TT_ROW("hottest", m_hottest, -EBADF, TT_BAD),
	TT_ROW("stats", m_stats, -EBADF, TT_BAD),
	TT_ROW("set_wait (w NULL or not)", m_set_wait, -EBADF, TT_BAD, TT_VALS(1, 0)),
	TT_ROW("borrow", m_borrow, -EBADF, TT_BAD, TT_VALS(2, 0)),
	TT_ROW("borrow_commit", m_borrow_commit, -EBADF, TT_BAD),
	TT_ROW("borrow_commit_all", m_borrow_commit_all, -EBADF, TT_BAD),
	TT_ROW("borrow_fn", m_borrow_fn, -EBADF, TT_BAD, TT_VALS(2)),
	TT_ROW("register", m_register, -EBADF, TT_BAD),
	/* NULL pointers (with data there, 1 element) */
	TT_ROW("register: out NULL (channel NULL or not)", mn_register, -EINVAL, 1,
	       TT_VALS(1, 0)),
	TT_ROW("consume_all: fn NULL", mn_consume_all, -EINVAL, 1),
	TT_ROW("consume_up_to: fn NULL", mn_consume_up_to, -EINVAL, 1, TT_VALS(1, 0)),
	TT_ROW("consume_all_timed: fn NULL", mn_consume_all_timed, -EINVAL, 1),
	TT_ROW("pop: item NULL (producer_id NULL or not)", mn_pop, -EINVAL, 1, TT_VALS(1,
	       0)),
	TT_ROW("pop_n: items NULL", mn_pop_n, -EINVAL, 1, TT_VALS(1)),
	TT_ROW("pop_n_timed: items NULL", mn_pop_n_timed, -EINVAL, 1, TT_VALS(1)),
	TT_ROW("readable: out NULL", mn_readable, -EINVAL, 1),
	TT_ROW("readable_timed: out NULL", mn_readable_timed, -EINVAL, 1),
	TT_ROW("stats: st NULL", mn_stats, -EINVAL, 1),
	TT_ROW("borrow: out NULL", mn_borrow, -EINVAL, 1),
	TT_ROW("borrow_fn: fn NULL", mn_borrow_fn, -EINVAL, 1),
	/* n = 0: 0, with or without a buffer, nothing taken */
	TT_ROW("pop_n: n 0 (items NULL or not)", mz_pop_n, 0, 1, TT_VALS(1, 0)),
	TT_ROW("pop_n_timed: n 0 (items NULL or not)", mz_pop_n_timed, 0, 1, TT_VALS(1, 0)),
	TT_ROW("readable, readable_timed: n 0, an empty span", mz_readable, 0, 1,
	       TT_VALS(0, 1)),
	TT_ROW("borrow: n 0, an empty borrow", mz_borrow, 0, 1),
	TT_ROW("borrow_fn: n 0, fn not called", mz_borrow_fn, 0, 1),
	/* sizes and ids */
	TT_ROW("stats: size below 1.0 or not a multiple of 8", m_stats_size, -EINVAL, 0,
	       TT_VALS(0, RMPSC_MPSC_STATS_SIZE_V1 - 8, RMPSC_MPSC_STATS_SIZE_V1 - 1,
		       RMPSC_MPSC_STATS_SIZE_V1 + 4)),
	TT_ROW("stats: size above a page", m_stats_size, -E2BIG, 0, TT_VALS(4096 + 8)),
	TT_ROW("ring_len: no ring has the id", m_ring_len, -ENOENT, 0, TT_VALS(4, 5,
	       UINT32_MAX)),
	/* strategies */
	TT_ROW("consume_all_timed: w invalid", mw_consume_all_timed, -EINVAL, 1,
	       TT_WAIT_EINVAL_ALL),
	TT_ROW("consume_all_timed: w too large", mw_consume_all_timed, -E2BIG, 1,
	       TT_WAIT_E2BIG_ALL),
	TT_ROW("pop_n_timed: w invalid", mw_pop_n_timed, -EINVAL, 1, TT_WAIT_EINVAL_ALL),
	TT_ROW("pop_n_timed: w invalid, n 0", mw_pop_n_timed_0, -EINVAL, 1,
	       TT_WAIT_EINVAL_ALL),
	TT_ROW("pop_n_timed: w too large", mw_pop_n_timed, -E2BIG, 1, TT_WAIT_E2BIG_ALL),
	TT_ROW("readable_timed: w invalid", mw_readable_timed, -EINVAL, 1,
	       TT_WAIT_EINVAL_ALL),
	TT_ROW("readable_timed: w invalid, n 0", mw_readable_timed_0, -EINVAL, 1,
	       TT_WAIT_EINVAL_ALL),
	TT_ROW("readable_timed: w too large", mw_readable_timed, -E2BIG, 1,
	       TT_WAIT_E2BIG_ALL),
	TT_ROW("set_wait: w invalid", mw_set_wait, -EINVAL, 0, TT_WAIT_EINVAL_ALL),
	TT_ROW("set_wait: w too large", mw_set_wait, -E2BIG, 0, TT_WAIT_E2BIG_ALL),
	TT_ROW("set_wait: w larger, zeros past ours", m_set_wait_zero_tail, 0, 0),
	TT_ROW("set_wait: w NULL", mn_set_wait, 0, 0),
};

static void mpsc_table_begin(void)
{
	assert_ret(rmpsc_wait_init(&block_wait, sizeof block_wait, RMPSC_WAIT_BLOCK), 0);
}

TT_TEST(test_mpsc_calls_with_bad_handle_or_argument_return_documented_code,
	.name = "mpsc", TT_ROWS(chan_rows), .setup = chan_fx, .check = chan_fx_check,
	.teardown = chan_fx_free, TT_BADS(not_a_channel), .begin = mpsc_table_begin)

/* ---- the producer handle ----------------------------------------------------- */

TT_CALL(p_id, rmpsc_producer_id(h))
TT_CALL(p_len, rmpsc_producer_len(h))
TT_CALL(p_deregister, rmpsc_mpsc_deregister(h))
TT_CALL(p_producer_deregister, rmpsc_producer_deregister(h))
TT_PRODUCER_CALLS(producer)
TT_RESERVE_TIMED_CALLS(producer)

static const struct tt_row prod_rows[] = {
	TT_ROW("id", p_id, -EBADF, TT_BAD),
	TT_ROW("len", p_len, -EBADF, TT_BAD),
	TT_ROW("mpsc_deregister", p_deregister, -EBADF, TT_BAD),
	TT_ROW("producer_deregister", p_producer_deregister, -EBADF, TT_BAD),
	TT_PRODUCER_ROWS(producer),
	TT_RESERVE_TIMED_ROWS(producer),
};

TT_TEST(test_mpsc_producer_calls_with_bad_handle_or_argument_return_documented_code,
	.name = "producer", TT_ROWS(prod_rows), .setup = prod_fx, .check = chan_fx_check,
	.teardown = prod_fx_free, TT_BADS(not_a_producer))

/* ---- channel configs: rmpsc_mpsc_config_init and rmpsc_mpsc_create ---------- */

enum {
	MC_CANARY = TT_STRUCT_CANARY, /* init: CANARY bytes, more than any size tried */
	MC_BASE, /* create: rings of 8, 2 up front, 4 at most, zeros after */
};

static void *mcfg_fx(uint32_t state)
{
	rmpsc_mpsc_config *cfg = tt_struct(state);

	if (state == MC_BASE)
		*cfg = cfg_of(8, 2, 4, 0);
	return cfg;
}

#define OFF(f) offsetof(rmpsc_mpsc_config, f)
TT_CALL(ci_null, rmpsc_mpsc_config_init(NULL, sizeof(rmpsc_mpsc_config)))
TT_CALL(ci_size, rmpsc_mpsc_config_init(h, (uint32_t)v))
TT_CALL(cc_null_out, rmpsc_mpsc_create(h, NULL))
TT_CALL(cc_null_cfg, create_from(NULL, 0))
TT_CALL(cc_base, create_from(h, 0))
TT_CALL(cc_size, (tt_put(h, OFF(size), v), create_from(h, 0)))
TT_CALL(cc_flags, (tt_put(h, OFF(flags), v), create_from(h, 0)))
TT_CALL(cc_elem_size, (tt_put(h, OFF(elem_size), v), create_from(h, 0)))
TT_CALL(cc_capacity, (tt_put(h, OFF(ring_capacity), v), create_from(h, 0)))
TT_CALL(cc_no_producers, (tt_put(h, OFF(max_producers), 0), tt_put(h, OFF(producers), 0),
			  create_from(h, 0)))
TT_CALL(cc_max_producers, (tt_put(h, OFF(max_producers), v), create_from(h, 0)))
TT_CALL(cc_producers, (tt_put(h, OFF(producers), v), create_from(h, 0)))
TT_CALL(cc_numa, (tt_put(h, OFF(numa_node), v), create_from(h, 0)))
TT_CALL(cc_pad0, (tt_put(h, OFF(_pad0), v), create_from(h, 0)))

/* A 48-byte struct, zeros past ours but for v (the byte at v >> 8 set to
 * v & 0xff; v = 0: none). */
static int64_t cc_tail(void *h, uint64_t v)
{
	tt_put(h, OFF(size), 48);
	if (v)
		((unsigned char *)h)[v >> 8] = (unsigned char)v;
	return create_from(h, 0);
}

static const struct tt_row mpsc_config_rows[] = {
	TT_ROW("config_init: cfg NULL", ci_null, -EINVAL, MC_CANARY),
	TT_ROW("config_init: size below 1.0 or not a multiple of 8", ci_size, -EINVAL,
	       MC_CANARY,
	       TT_VALS(0, 8, RMPSC_MPSC_CONFIG_SIZE_V1 - 8, RMPSC_MPSC_CONFIG_SIZE_V1 - 1,
		       RMPSC_MPSC_CONFIG_SIZE_V1 + 4)),
	TT_ROW("config_init: size above a page", ci_size, -E2BIG, MC_CANARY,
	       TT_VALS(4096 + 8)),
	TT_ROW("create: out NULL", cc_null_out, -EINVAL, MC_BASE),
	TT_ROW("create: cfg NULL", cc_null_cfg, -EINVAL, MC_BASE),
	TT_ROW("create: the base config", cc_base, 0, MC_BASE),
	TT_ROW("create: size below 1.0 or not a multiple of 8", cc_size, -EINVAL, MC_BASE,
	       TT_VALS(0, RMPSC_MPSC_CONFIG_SIZE_V1 - 8, RMPSC_MPSC_CONFIG_SIZE_V1 - 4,
		       RMPSC_MPSC_CONFIG_SIZE_V1 + 4)),
	TT_ROW("create: unknown flags", cc_flags, -EINVAL, MC_BASE,
	       TT_VALS(1u << 4, 1u << 31, ~(uint32_t)RMPSC_MPSC_F_ALL)),
	TT_ROW("create: elem_size 0 or too large", cc_elem_size, -EINVAL, MC_BASE,
	       TT_VALS(0, RMPSC_RING_ELEM_SIZE_MAX + 1)),
	TT_ROW("create: ring_capacity not a power of two or too large", cc_capacity,
	       -EINVAL,
	       MC_BASE, TT_VALS(0, 3, 1000, (uint32_t)RMPSC_RING_CAPACITY_MAX * 2u, UINT32_MAX)),
	TT_ROW("create: max_producers 0", cc_no_producers, -EINVAL, MC_BASE),
	TT_ROW("create: max_producers too large", cc_max_producers, -EINVAL, MC_BASE,
	       TT_VALS(RMPSC_MPSC_PRODUCERS_MAX + 1, UINT32_MAX)),
	TT_ROW("create: producers above max_producers", cc_producers, -EINVAL, MC_BASE,
	       TT_VALS(5, UINT32_MAX)),
	TT_ROW("create: numa_node below RMPSC_NODE_ANY", cc_numa, -EINVAL, MC_BASE,
	       TT_VALS((uint32_t)-2, (uint32_t)INT32_MIN)),
	TT_ROW("create: _pad0 not zero", cc_pad0, -EINVAL, MC_BASE, TT_VALS(1)),
	TT_ROW("create: a byte past the known struct not zero", cc_tail, -E2BIG, MC_BASE,
	       TT_VALS(40 << 8 | 1, 39 << 8 | 0x80)),
	TT_ROW("create: a larger struct, zeros past ours", cc_tail, 0, MC_BASE, TT_VALS(0)),
};

TT_TEST(test_mpsc_config_calls_with_bad_argument_return_documented_code,
	.name = "mpsc config", TT_ROWS(mpsc_config_rows), .setup = mcfg_fx,
	.check = tt_struct_check)

/* ---- a round racing a registration, a push and a close ------------------- */

/*
 * The consumer's round reads the channel's closed flag and its ring count.
 * If it read the count first, a producer that registered after that load,
 * pushed (returning 0) and closed the channel before the load of closed
 * would have its element missed by a round that then reports the final
 * -EPIPE. The test point between the two loads runs exactly that sequence
 * inside the first round; every consumer call must deliver the element
 * before its -EPIPE.
 */
enum race_call {
	RACE_POP_N, RACE_POP_N_TIMED, RACE_POP, RACE_CONSUME_ALL, RACE_CONSUME_UP_TO,
	RACE_CONSUME_COUNT, RACE_CONSUME_ALL_TIMED, RACE_READABLE, RACE_BORROW,
	RACE_DRAIN_ALL, RACE_NCALLS,
};

static struct {
	rmpsc_mpsc *ch;
	int fired, reg_ret, push_ret, close_ret;
	rmpsc_producer *p1;
} race;

static void race_register_push_close(int point, void *obj)
{
	uint64_t v = val(1, 0);

	if (point != TC_TP_MPSC_ROUND || obj != race.ch || race.fired)
		return;
	race.fired = 1;
	race.reg_ret = rmpsc_mpsc_register(race.ch, &race.p1);
	race.push_ret = race.reg_ret >= 0 ? rmpsc_producer_push(race.p1, &v) : race.reg_ret;
	race.close_ret = rmpsc_mpsc_close(race.ch);
}

/* One consumer call of kind @c: elements taken (into @got), 0 or an error. */
static int64_t race_take(rmpsc_mpsc *ch, enum race_call c, struct rec *r, uint64_t *got)
{
	rmpsc_span s;
	rmpsc_borrow b;
	uint32_t id;
	int64_t k;

	switch (c) {
	case RACE_POP_N:
		return rmpsc_mpsc_pop_n(ch, got, 1);
	case RACE_POP_N_TIMED:
		k = rmpsc_mpsc_pop_n_timed(ch, got, 1, 0, NULL);
		return k == -ETIMEDOUT ? 0 : k;
	case RACE_POP:
		k = rmpsc_mpsc_pop(ch, got, &id);
		return k == 0 ? 1 : (k == -EAGAIN ? 0 : k);
	case RACE_CONSUME_ALL:
		k = rmpsc_mpsc_consume_all(ch, rec_fn, r);
		break;
	case RACE_CONSUME_UP_TO:
		k = rmpsc_mpsc_consume_up_to(ch, 1, rec_fn, r);
		break;
	case RACE_CONSUME_COUNT:
		k = rmpsc_mpsc_consume_count(ch, 1);
		if (k > 0)
			*got = val(1, 0); /* discarded: only the count is seen */
		return k;
	case RACE_CONSUME_ALL_TIMED:
		k = rmpsc_mpsc_consume_all_timed(ch, rec_fn, r, 0, NULL);
		k = k == -ETIMEDOUT ? 0 : k;
		break;
	case RACE_READABLE:
		k = rmpsc_mpsc_readable(ch, 1, &s, &id);
		if (k > 0) {
			*got = span_get_u64(&s, 0);
			assert_ret(rmpsc_mpsc_advance(ch, (uint32_t)k), 0);
		}
		return k == -EAGAIN ? 0 : k;
	case RACE_BORROW:
		k = rmpsc_mpsc_borrow(ch, 1, &b, &id);
		if (k > 0) {
			memcpy(got, b.data, 8);
			assert_ret(rmpsc_mpsc_borrow_commit(ch, b.token), 0);
		}
		return k == -EAGAIN ? 0 : k;
	case RACE_DRAIN_ALL:
	default:
		/* drain_all never reports -EPIPE: 0 once nothing is left */
		k = rmpsc_mpsc_drain_all(ch, rec_fn, r);
		if (k == 0 && rmpsc_mpsc_is_drained(ch) == 1)
			return -EPIPE;
		break;
	}
	if (k > 0)
		*got = r->v[r->n - 1];
	return k;
}

static void test_mpsc_consumer_calls_when_producer_registers_pushes_and_closes_mid_round_deliver_before_epipe(
	void **state)
{
	(void)state;
	for (int c = 0; c < RACE_NCALLS; c++) {
		rmpsc_mpsc *ch = mpsc_new(16, 0, 4, 0);
		struct rec *r = rec_new();
		uint64_t got = 0;
		int64_t k = 0;
		int taken = 0;

		(void)reg(ch, 0);
		memset(&race, 0, sizeof race);
		race.ch = ch;
		tc_set_test_hook(race_register_push_close);
		for (int i = 0; i < 8 && k != -EPIPE; i++) {
			k = race_take(ch, (enum race_call)c, r, &got);
			if (k > 0) {
				taken += (int)k;
				assert_int_equal(got, val(1, 0));
			} else if (k != -EPIPE) {
				assert_ret(k, 0);
			}
		}
		tc_set_test_hook(NULL);
		assert_int_equal(race.fired, 1);
		assert_ret(race.reg_ret, 1);
		assert_ret(race.push_ret, 0);
		assert_ret(race.close_ret, 0);
		if (taken != 1 || k != -EPIPE) {
			print_error("call kind %d: %d elements before %lld, expected 1 then -EPIPE\n",
				    c, taken, (long long)k);
			fail();
		}
		/* and -EPIPE is final */
		assert_ret(race_take(ch, (enum race_call)c, r, &got), -EPIPE);
		free(r);
		rmpsc_mpsc_destroy(ch);
	}
}

/*
 * Re-entry: a handler the channel runs (consume_all, consume_up_to,
 * consume_all_timed, drain_all, borrow_fn) that makes any consumer call
 * gets -EBUSY and takes nothing, so every element arrives once. An
 * rmpsc_mpsc_pop() from a consume_up_to handler used to take an element of
 * the run being handed out: that one was delivered twice and the one after
 * the run was lost.
 */
static struct {
	rmpsc_mpsc *ch;
	struct rec *rec;
	int worst, which;
} reent;

static void reent_fn(void *ctx, uint32_t id, const void *items, uint32_t count)
{
	rmpsc_mpsc *ch = reent.ch;
	uint64_t buf[4];
	rmpsc_span s;
	rmpsc_borrow b;
	uint32_t pid;
	const int64_t rets[] = {
		rmpsc_mpsc_pop(ch, buf, &pid),
		rmpsc_mpsc_pop_n(ch, buf, 4),
		rmpsc_mpsc_pop_n_timed(ch, buf, 4, 0, NULL),
		rmpsc_mpsc_consume_all(ch, never_fn, NULL),
		rmpsc_mpsc_consume_up_to(ch, 4, never_fn, NULL),
		rmpsc_mpsc_consume_up_to(ch, 0, never_fn, NULL),
		rmpsc_mpsc_consume_count(ch, 4),
		rmpsc_mpsc_consume_count(ch, 0),
		rmpsc_mpsc_consume_all_timed(ch, never_fn, NULL, -1, NULL),
		rmpsc_mpsc_readable(ch, 4, &s, &pid),
		rmpsc_mpsc_readable_timed(ch, 4, &s, &pid, -1, NULL),
		rmpsc_mpsc_advance(ch, 1),
		rmpsc_mpsc_borrow(ch, 1, &b, &pid),
		rmpsc_mpsc_borrow_commit(ch, 0),
		rmpsc_mpsc_borrow_commit_all(ch),
		rmpsc_mpsc_borrow_fn(ch, 1, never_fn, NULL),
		rmpsc_mpsc_drain_all(ch, never_fn, NULL),
		rmpsc_mpsc_reset_skip(ch),
	};

	(void)ctx;
	rec_fn(reent.rec, id, items, count);
	for (int i = 0; i < (int)(sizeof rets / sizeof rets[0]); i++) {
		if (rets[i] != -EBUSY && !reent.worst) {
			reent.worst = rets[i] ? (int)rets[i] : INT32_MIN;
			reent.which = i;
		}
	}
}

static void test_mpsc_handler_calling_consumer_calls_gets_ebusy_and_nothing_repeats(
	void **state)
{
	(void)state;
	for (int drv = 0; drv < 5; drv++) {
		rmpsc_mpsc *ch = mpsc_new(8, 2, 2, 0);
		rmpsc_producer *p0 = reg(ch, 0), *p1 = reg(ch, 1);
		int64_t k, total = 0;

		memset(&reent, 0, sizeof reent);
		reent.ch = ch;
		reent.rec = rec_new();
		push_vals(p0, 0, 6);
		push_vals(p1, 0, 6);
		for (int i = 0; i < 64 && total < 12; i++) {
			switch (drv) {
			case 0: k = rmpsc_mpsc_consume_all(ch, reent_fn, NULL); break;
			case 1: k = rmpsc_mpsc_consume_up_to(ch, 3, reent_fn, NULL); break;
			case 2: k = rmpsc_mpsc_consume_all_timed(ch, reent_fn, NULL, 0, NULL); break;
			case 3: k = rmpsc_mpsc_drain_all(ch, reent_fn, NULL); break;
			default: k = rmpsc_mpsc_borrow_fn(ch, 2, reent_fn, NULL); break;
			}
			assert_true(k >= 0 || k == -EAGAIN || k == -ETIMEDOUT);
			total += k > 0 ? k : 0;
		}
		if (reent.worst)
			print_error("driver %d: call %d from the handler returned %d (%s)\n", drv,
				    reent.which, reent.worst, errname(reent.worst));
		assert_int_equal(reent.worst, 0);
		assert_int_equal(total, 12);
		rec_expect(reent.rec, 0, 0, 6);
		rec_expect(reent.rec, 1, 0, 6);
		assert_ret(rmpsc_mpsc_len(ch), 0);
		/* and the channel works as before afterwards */
		push_vals(p0, 6, 1);
		assert_ret(rmpsc_mpsc_pop(ch, &k, NULL), 0);
		assert_int_equal(k, (int64_t)val(0, 6));
		free(reent.rec);
		rmpsc_mpsc_destroy(ch);
	}
}

/* ---- main ---------------------------------------------------------------- */

#define T(f) cmocka_unit_test_setup_teardown(f, setup_mpsc, teardown_mpsc)
#define M(f) cmocka_unit_test_setup_teardown(f, setup_mpsc_metrics, teardown_mpsc)
#define U(f) cmocka_unit_test(f)

int main(void)
{
	const struct CMUnitTest tests[] = {
		/* config_init / create / destroy */
		U(test_mpsc_config_init_when_called_writes_defaults),
		U(test_mpsc_config_init_with_larger_size_writes_exactly_size_bytes),
		U(test_mpsc_config_calls_with_bad_argument_return_documented_code),
		U(test_mpsc_calls_with_bad_handle_or_argument_return_documented_code),
		U(test_mpsc_producer_calls_with_bad_handle_or_argument_return_documented_code),
		U(test_mpsc_create_with_defaults_makes_default_rings),
		U(test_mpsc_create_with_limit_values_succeeds),
		U(test_mpsc_create_with_hugepage_flag_succeeds_or_returns_enomem),
		U(test_mpsc_create_when_ring_cannot_be_mapped_returns_enomem),
		U(test_mpsc_create_with_producers_makes_rings_up_front),
		U(test_mpsc_create_with_zero_producers_makes_no_ring),
		U(test_mpsc_destroy_with_null_does_nothing),
		U(test_mpsc_destroy_with_producers_and_pending_frees_everything),
		/* register / deregister */
		U(test_mpsc_register_when_called_returns_ids_and_handles),
		T(test_mpsc_register_after_close_returns_epipe),
		U(test_mpsc_register_at_max_producers_returns_enospc),
		U(test_mpsc_register_past_initial_rings_grows_channel),
		U(test_mpsc_register_when_ring_cannot_be_mapped_returns_enomem),
		U(test_mpsc_register_after_drained_deregister_reuses_ring),
		U(test_mpsc_register_while_deregistered_ring_pending_does_not_reuse_it),
		T(test_mpsc_deregister_with_pending_elements_still_delivers_them),
		/* producer_id / len */
		T(test_mpsc_producer_len_when_filling_and_consuming_tracks_pending),
		/* producer calls */
		T(test_mpsc_producer_reserve_and_commit_publish_in_place),
		T(test_mpsc_producer_reserve_when_ring_wraps_returns_two_segments),
		T(test_mpsc_producer_calls_when_ring_full_return_eagain),
		T(test_mpsc_producer_timed_calls_when_ring_full_time_out),
		T(test_mpsc_producer_timed_calls_with_room_succeed),
		T(test_mpsc_producer_calls_with_zero_count_return_zero),
		T(test_mpsc_timed_calls_with_larger_zero_tail_strategy_succeed),
		T(test_mpsc_producer_calls_after_close_return_epipe),
		T(test_mpsc_producer_commit_zero_after_close_returns_epipe),
		U(test_mpsc_producer_calls_with_odd_elem_size_roundtrip_byte_exact),
		/* consume_all / consume_up_to / consume_count */
		T(test_mpsc_consume_all_with_two_producers_delivers_ids_in_fifo),
		T(test_mpsc_consume_all_when_ring_wraps_hands_two_segments),
		T(test_mpsc_consume_all_when_empty_returns_zero),
		T(test_mpsc_consume_all_after_close_delivers_rest_then_epipe),
		T(test_mpsc_consume_all_after_close_with_idle_rings_delivers_at_once),
		U(test_mpsc_consume_up_to_with_bound_stops_at_max),
		T(test_mpsc_consume_up_to_with_zero_max_returns_zero),
		T(test_mpsc_consume_up_to_after_stopping_at_ring_end_serves_next_ring),
		T(test_mpsc_consume_up_to_after_stopping_mid_ring_serves_later_rings_first),
		T(test_mpsc_consume_up_to_with_busy_first_ring_still_serves_others),
		T(test_mpsc_consume_count_discards_up_to_max),
		/* consume_all_timed */
		T(test_mpsc_consume_all_timed_when_empty_times_out),
		T(test_mpsc_consume_all_timed_with_data_returns_it_at_once),
		T(test_mpsc_consume_all_timed_when_producer_pushes_wakes),
		U(test_mpsc_consume_all_timed_with_idle_rings_wakes_for_late_ring),
		T(test_mpsc_consume_all_timed_after_close_and_drain_returns_epipe),
		T(test_mpsc_consume_all_timed_when_blocked_close_wakes_with_epipe),
		T(test_mpsc_consume_all_timed_with_data_in_skipped_ring_returns_it),
		/* adaptive skip */
		U(test_mpsc_skip_with_idle_ring_delivers_within_65_rounds),
		U(test_mpsc_skip_with_idle_ring_follows_documented_schedule),
		U(test_mpsc_noskip_with_idle_rings_delivers_next_round),
		U(test_mpsc_pop_with_no_rings_returns_eagain),
		U(test_mpsc_skip_with_busy_ring_serves_it_every_round),
		U(test_mpsc_reset_skip_after_idle_rounds_delivers_next_round),
		U(test_mpsc_pull_calls_with_idle_skipped_ring_find_its_data),
		/* pop */
		T(test_mpsc_pop_when_empty_returns_eagain),
		T(test_mpsc_pop_with_data_returns_element_and_producer_id),
		T(test_mpsc_pop_after_close_delivers_rest_then_epipe),
		cmocka_unit_test_setup_teardown(test_mpsc_pop_stays_on_ring_then_yields_after_64,
						setup_mpsc_wide, teardown_mpsc),
		T(test_mpsc_pop_when_ring_empties_moves_to_next_ring),
		U(test_mpsc_pop_run_refresh_batches_release),
		M(test_mpsc_pop_with_metrics_counts_each_element),
		/* pop_n / pop_n_timed */
		T(test_mpsc_pop_n_when_empty_returns_eagain),
		U(test_mpsc_pop_n_with_several_rings_fills_from_each),
		U(test_mpsc_pop_n_over_rings_past_int32_max_takes_int32_max),
		T(test_mpsc_pop_n_after_close_delivers_rest_then_epipe),
		T(test_mpsc_pop_n_timed_when_empty_times_out),
		T(test_mpsc_pop_n_timed_with_data_returns_it),
		T(test_mpsc_pop_n_timed_when_producer_pushes_wakes),
		T(test_mpsc_pop_n_timed_when_blocked_close_wakes_with_epipe),
		/* readable / advance / readable_timed */
		T(test_mpsc_readable_with_data_returns_span_and_producer_id),
		T(test_mpsc_readable_until_advanced_returns_same_span),
		T(test_mpsc_advance_partial_then_readable_returns_rest),
		T(test_mpsc_advance_without_span_returns_einval),
		T(test_mpsc_advance_more_than_span_returns_einval),
		T(test_mpsc_advance_zero_with_span_changes_nothing),
		T(test_mpsc_readable_when_empty_returns_eagain_then_epipe_after_close),
		T(test_mpsc_readable_when_ring_wraps_returns_two_segments),
		U(test_mpsc_readable_after_full_advance_serves_rings_in_turn),
		T(test_mpsc_readable_timed_when_empty_times_out),
		T(test_mpsc_readable_timed_when_producer_pushes_wakes),
		T(test_mpsc_readable_timed_when_blocked_close_wakes_with_epipe),
		/* close / drain / status */
		T(test_mpsc_close_when_called_twice_returns_zero),
		U(test_mpsc_close_with_deregistered_and_free_rings_ends_stream),
		U(test_mpsc_drain_all_with_fn_delivers_everything_ignoring_skip),
		T(test_mpsc_drain_all_with_null_fn_discards),
		T(test_mpsc_drain_all_with_outstanding_span_delivers_it),
		T(test_mpsc_drain_all_after_close_returns_rest_then_zero),
		T(test_mpsc_is_drained_when_open_or_pending_returns_zero),
		U(test_mpsc_len_and_ring_len_count_pending_per_ring),
		T(test_mpsc_hottest_when_all_empty_returns_eagain),
		U(test_mpsc_hottest_with_data_returns_fullest_ring),
		/* stats / set_wait / handles */
		T(test_mpsc_stats_with_larger_size_zero_fills_tail),
		U(test_mpsc_stats_reports_producers_rings_and_pending),
		M(test_mpsc_stats_with_metrics_counts_exactly),
		T(test_mpsc_stats_without_metrics_keeps_counters_zero),
		U(test_mpsc_stats_with_metrics_survive_ring_reuse),
		U(test_mpsc_status_calls_during_ring_reuse_never_count_phantoms),
		T(test_mpsc_set_wait_with_deadline_bounds_default_waits),
		/* borrowed reads */
		T(test_mpsc_borrow_with_data_returns_view_token_and_producer_id),
		T(test_mpsc_borrow_when_empty_returns_eagain),
		T(test_mpsc_borrow_across_rings_takes_next_ring),
		T(test_mpsc_borrow_commit_out_of_order_releases_in_order),
		T(test_mpsc_borrow_commit_with_stale_or_forged_token_returns_einval),
		U(test_mpsc_borrow_commit_with_token_of_another_channel_returns_einval),
		T(test_mpsc_borrow_outstanding_other_calls_leave_that_ring_alone),
		T(test_mpsc_borrow_commit_all_releases_every_ring),
		T(test_mpsc_borrow_when_ring_wraps_stops_at_buffer_end),
		T(test_mpsc_borrow_fn_hands_elements_then_commits),
		T(test_mpsc_borrow_after_close_returns_rest_then_epipe),
		M(test_mpsc_borrow_with_metrics_counts_received),
		/* defects found by trying the API as a new user */
		U(test_mpsc_consumer_calls_when_producer_registers_pushes_and_closes_mid_round_deliver_before_epipe),
		U(test_mpsc_handler_calling_consumer_calls_gets_ebusy_and_nothing_repeats),
		/* last: under ASan+UBSan a failure here aborts the process */
	};

	/* e.g. RMPSC_TEST_SKIP='*notifier*' to get past a sanitizer abort */
	const char *skip_pat = getenv("RMPSC_TEST_SKIP");

	if (skip_pat && *skip_pat)
		cmocka_set_skip_filter(skip_pat);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
