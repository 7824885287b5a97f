/* SPDX-License-Identifier: MIT */
/*
 * bench adapter: libringmpsc's rmpsc_ring, called only through the exported
 * functions of the shared library (no inline fast path, no internal header),
 * exactly as an application linking -lringmpsc would.
 *
 * Every ring holds `capacity` elements in a buffer of 2 * capacity slots
 * (cfg.slots): the same memory as DPDK's RING_F_EXACT_SZ ring of that
 * capacity, so W1/W2 compare equal capacity and equal memory. With
 * capacity == slots the W2 zero-copy producer writes lines the consumer has
 * just read and still caches (see README.md).
 *
 * W3 (multi-producer): the MPSC channel (rmpsc_mpsc), one ring of
 * capacity / nprod elements per producer; the consumer takes one element per
 * call with rmpsc_mpsc_pop(): from the ring it took from last while that
 * one has data (64 in a row at most), else from the next ring with data.
 * W6 batch: rmpsc_producer_push_n, and rmpsc_mpsc_consume_up_to with a
 * handler that copies each ring's run out (one head update per ring per
 * round, adaptive skip). W7: 1 active and 31 idle registered producers,
 * with and without RMPSC_MPSC_F_NOSKIP, polls from the metrics. W8:
 * rmpsc_spmc (1 producer) or rmpsc_mpmc, rmpsc_consumer_steal_one per
 * element; the burst rows rmpsc_spmc_push_n / rmpsc_producer_push_n and
 * rmpsc_consumer_steal of up to 32. ringmpsc-metrics: the MPSC rows with
 * RMPSC_MPSC_F_METRICS.
 * W4: pop1_wait is rmpsc_ring_pop_timed with RMPSC_WAIT_SPIN (the
 * poll loop runs inside the library). W5: the consumer waits in
 * rmpsc_ring_pop_timed (spin, or a futex sleep) or in epoll_wait on a
 * notifier attached to the ring.
 *
 * Compiled a second time by impl_ringmpsc_poll.c with BENCH_RM_POLL: the
 * same adapter, every rmpsc_ring_* call going through a table filled with
 * dlsym from libringmpsc_poll.so, the library built with RMPSC_NO_WAKE (no
 * waiter or notifier check on the hot paths). That variant runs W1 and W2
 * only: it is the polling-only side of the wake-up overhead A/B.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ringmpsc/channel.h>
#include <ringmpsc/ring.h>

#include "bench_impl.h"

#ifdef BENCH_RM_POLL
#include <dlfcn.h>

#define RM_IMPL	   bench_impl_ringmpsc_poll
#define RM_NAME	   "ringmpsc-poll"
#define RM_LIB_ENV "RMPSC_BENCH_POLL_LIB"
#ifndef BENCH_POLL_LIB
#define BENCH_POLL_LIB "libringmpsc_poll.so"
#endif

/* Every library call the adapter makes, resolved in libringmpsc_poll.so:
 * rm_fn.f is rmpsc_ring_<f> (rm_init loads the same list). */
#define RM_CALLS(X)                                                            \
	X(config_init) X(create) X(destroy) X(push) X(pop) X(push_n) X(pop_n)   \
	X(reserve) X(commit) X(readable) X(advance)
#define RM_MEMBER(f) __typeof__(rmpsc_ring_##f) *f;
static struct {
	RM_CALLS(RM_MEMBER)
} rm_fn;
#define RM(f) (rm_fn.f)
#else
#include <sys/epoll.h>

#define RM_IMPL bench_impl_ringmpsc
#define RM_NAME "ringmpsc"
#define RM(f)	rmpsc_ring_##f
#endif

#ifdef BENCH_RM_NOMETRICS
#include <dlfcn.h>

#define RM_NM_LIB_ENV "RMPSC_BENCH_NOMETRICS_LIB"
#ifndef BENCH_NOMETRICS_LIB
#define BENCH_NOMETRICS_LIB "libringmpsc_nometrics.so"
#endif

/* The MPSC calls of the W3/W6/W7 section, resolved in
 * libringmpsc_nometrics.so: mp_fn.f is rmpsc_<f> (rm_init loads the same
 * list). */
#define MP_CALLS(X)                                                            \
	X(mpsc_config_init) X(mpsc_create) X(mpsc_destroy) X(mpsc_register)    \
	X(mpsc_stats) X(mpsc_pop) X(mpsc_consume_up_to) X(producer_push)       \
	X(producer_push_n)
#define MP_MEMBER(f) __typeof__(rmpsc_##f) *f;
static struct {
	MP_CALLS(MP_MEMBER)
} mp_fn;
#define MP(f) (mp_fn.f)
#else
#define MP(f) rmpsc_##f
#endif

static void *rm_create(uint32_t capacity)
{
	rmpsc_ring_config cfg;
	rmpsc_ring *r;

	if (RM(config_init)(&cfg, sizeof cfg))
		return NULL;
	cfg.capacity = capacity;
	/* Twice the slots: DPDK's memory for the same capacity (file comment). */
	cfg.slots = capacity <= RMPSC_RING_CAPACITY_MAX / 2 ? 2 * capacity : capacity;
	cfg.elem_size = sizeof(uint64_t);
	/* Fault the pages in at creation, outside the timed region; the mutex
	 * ring touches its buffer at creation too. */
	cfg.flags = RMPSC_RING_F_PREFAULT;
	if (RM(create)(&cfg, &r))
		return NULL;
	return r;
}

static void rm_destroy(void *q)
{
	RM(destroy)(q);
}

/* 0 -> done, -EAGAIN -> "try again", anything else is a harness error. */
static inline int rm_one(int err)
{
	if (err == 0)
		return 1;
	return err == -EAGAIN ? 0 : BENCH_ERR_IMPL;
}

static inline int rm_count(int n)
{
	if (n >= 0)
		return n;
	return n == -EAGAIN ? 0 : BENCH_ERR_IMPL;
}

static int rm_push1(void *q, uint64_t v)
{
	return rm_one(RM(push)(q, &v));
}

static int rm_pop1(void *q, uint64_t *v)
{
	return rm_one(RM(pop)(q, v));
}

static int rm_push_n(void *q, const uint64_t *v, uint32_t n)
{
	return rm_count(RM(push_n)(q, v, n));
}

static int rm_pop_n(void *q, uint64_t *v, uint32_t n)
{
	return rm_count(RM(pop_n)(q, v, n));
}

static int rm_zc_produce(void *q, uint32_t n, uint64_t first)
{
	rmpsc_span s;
	int k = RM(reserve)(q, n, &s);

	if (k <= 0)
		return rm_count(k);
	/* Up to two segments when the reservation wraps the buffer end. */
	bench_fill(s.iov[0].iov_base, s.count[0], first);
	if (s.nseg > 1)
		bench_fill(s.iov[1].iov_base, s.count[1], first + s.count[0]);
	if (RM(commit)(q, (uint32_t)k))
		return BENCH_ERR_IMPL;
	return k;
}

static int rm_zc_consume(void *q, uint32_t n, uint64_t *expected_next, uint64_t *sum)
{
	rmpsc_span s;
	int k = RM(readable)(q, n, &s);
	int bad;

	if (k <= 0)
		return rm_count(k);
	bad = bench_check(s.iov[0].iov_base, s.count[0], *expected_next, sum);
	if (s.nseg > 1)
		bad |= bench_check(s.iov[1].iov_base, s.count[1],
				   *expected_next + s.count[0], sum);
	if (bad)
		return BENCH_ERR_MISMATCH;
	*expected_next += (uint64_t)k;
	if (RM(advance)(q, (uint32_t)k))
		return BENCH_ERR_IMPL;
	return k;
}

#ifndef BENCH_RM_POLL
/* ---- W3, W6, W7: the MPSC channel ---------------------------------------- */

struct rm_mp {
	rmpsc_mpsc *ch;
	/* Read-only after creation; producer i uses prod[i] only. The idle
	 * producers of W7 are registered after them and never send. */
	rmpsc_producer *prod[BENCH_MAX_PROD];
};

static void rm_mp_destroy(void *q)
{
	struct rm_mp *m = q;

	if (!m)
		return;
	MP(mpsc_destroy)(m->ch);
	free(m);
}

/* capacity / nprod, rounded down to a power of two (at least 1): each
 * ring's share of the same total slots as a shared queue. */
static uint32_t rm_share(uint32_t capacity, unsigned nprod)
{
	uint32_t each = 1;

	while ((uint64_t)each * 2 * nprod <= capacity)
		each *= 2;
	return each;
}

/* @nprod rings of (capacity / nprod, a power of two) elements used by the
 * producer threads, @nidle more registered, RMPSC_MPSC_F_* @flags. */
static void *rm_mp_new(uint32_t capacity, unsigned nprod, unsigned nidle, uint32_t flags)
{
	rmpsc_mpsc_config cfg;
	struct rm_mp *m;

	if (!bench_counts_ok(nprod, 1) || nidle > 1024)
		return NULL;
	m = calloc(1, sizeof *m);
	if (!m || MP(mpsc_config_init)(&cfg, sizeof cfg))
		goto fail;
	cfg.elem_size = sizeof(uint64_t);
	cfg.ring_capacity = rm_share(capacity, nprod);
	cfg.producers = nprod + nidle;
	cfg.max_producers = nprod + nidle;
	cfg.flags = RMPSC_MPSC_F_PREFAULT | flags;
	if (MP(mpsc_create)(&cfg, &m->ch))
		goto fail;
	/* Registered here, used by the producer threads (one each). */
	for (unsigned i = 0; i < nprod + nidle; i++) {
		rmpsc_producer *p;

		if (MP(mpsc_register)(m->ch, &p) != (int)i)
			goto fail;
		if (i < nprod)
			m->prod[i] = p;
	}
	return m;
fail:
	rm_mp_destroy(m);
	return NULL;
}

static void *rm_mp_create(uint32_t capacity, unsigned nprod)
{
	return rm_mp_new(capacity, nprod, 0, 0);
}

#ifndef BENCH_RM_NOMETRICS
/* ringmpsc-metrics: the same channel with RMPSC_MPSC_F_METRICS. */
static void *rm_mp_create_metrics(uint32_t capacity, unsigned nprod)
{
	return rm_mp_new(capacity, nprod, 0, RMPSC_MPSC_F_METRICS);
}
#endif

/* W7: metrics on for the poll count in both rows, so they differ only in
 * the skip. */
static void *rm_mp_create_idle(uint32_t capacity, unsigned nprod, unsigned nidle,
			       unsigned opts)
{
	return rm_mp_new(capacity, nprod, nidle,
			 RMPSC_MPSC_F_METRICS |
				 ((opts & BENCH_MP_NOSKIP) ? RMPSC_MPSC_F_NOSKIP : 0u));
}

static int64_t rm_mp_polls(void *q)
{
	const struct rm_mp *m = q;
	rmpsc_mpsc_snapshot st;

	if (MP(mpsc_stats)(m->ch, &st, sizeof st))
		return -1;
	return (int64_t)st.polls;
}

static int rm_mp_push1(void *q, unsigned producer, uint64_t v)
{
	const struct rm_mp *m = q;

	return rm_one(MP(producer_push)(m->prod[producer], &v));
}

static int rm_mp_pop1(void *q, uint64_t *v)
{
	const struct rm_mp *m = q;

	/* From the ring it took from last while that has data, else the next
	 * ring that has some. */
	return rm_one(MP(mpsc_pop)(m->ch, v, NULL));
}

static struct rmpsc_producer *rm_mp_producer(void *q, unsigned idx)
{
	return ((const struct rm_mp *)q)->prod[idx];
}

static struct rmpsc_mpsc *rm_mp_channel(void *q)
{
	return ((const struct rm_mp *)q)->ch;
}

static int rm_mp_push_n(void *q, unsigned producer, const uint64_t *v, uint32_t n)
{
	const struct rm_mp *m = q;

	return rm_count(MP(producer_push_n)(m->prod[producer], v, n));
}

struct rm_copy {
	uint64_t *dst;
};

static void rm_copy_fn(void *ctx, uint32_t id, const void *items, uint32_t count)
{
	struct rm_copy *c = ctx;

	(void)id;
	memcpy(c->dst, items, (size_t)count * sizeof(uint64_t));
	c->dst += count;
}

/* The round-based consumer: every ring's run handed over in place (here
 * copied out, as the peers' bulk dequeues copy), one head update per ring
 * per round, adaptive skip of idle rings. 0 when the round found nothing
 * (possibly while a skipped ring has data: the next rounds find it). */
static int rm_mp_pop_n(void *q, uint64_t *v, uint32_t n)
{
	const struct rm_mp *m = q;
	struct rm_copy c = { v };
	int64_t k = MP(mpsc_consume_up_to)(m->ch, n, rm_copy_fn, &c);

	return k >= 0 ? (int)k : BENCH_ERR_IMPL;
}

#endif /* !BENCH_RM_POLL */

/*
 * The exported calls the harness makes itself (bench_ex): W1/W4 on a ring,
 * W3/W6 single/W7 on the MPSC channel; rm_push1, rm_mp_push1 and the rest
 * serve the other workloads. The dlopen'ed variants fill their tables at
 * init from the pointers they resolved.
 */
#if defined(BENCH_RM_POLL)
static struct bench_ex rm_ex; /* push1, pop1 */
#elif defined(BENCH_RM_NOMETRICS)
static struct bench_ex rm_ex = { .mp_producer = rm_mp_producer, .mp_channel = rm_mp_channel };
#else
static const struct bench_ex rm_ex = {
	.push1 = rmpsc_ring_push,
	.pop1 = rmpsc_ring_pop,
	.mp_push1 = rmpsc_producer_push,
	.mp_pop1 = rmpsc_mpsc_pop,
	.mp_producer = rm_mp_producer,
	.mp_channel = rm_mp_channel,
};
#endif

#if !defined(BENCH_RM_POLL) && !defined(BENCH_RM_NOMETRICS)
/* ---- W8: SPMC (nprod 1) and MPMC channels ------------------------------- */

struct rm_mc {
	rmpsc_spmc *sp; /* nprod == 1 */
	rmpsc_mpmc *mp; /* otherwise */
	rmpsc_producer *prod[BENCH_MAX_PROD];
	rmpsc_consumer *cons[BENCH_MAX_PROD];
};

static void rm_mc_destroy(void *q)
{
	struct rm_mc *m = q;

	if (!m)
		return;
	rmpsc_spmc_destroy(m->sp);
	rmpsc_mpmc_destroy(m->mp);
	free(m);
}

static void *rm_mc_create(uint32_t capacity, unsigned nprod, unsigned ncons)
{
	rmpsc_mc_config cfg;
	struct rm_mc *m;
	unsigned i;

	if (!bench_counts_ok(nprod, ncons))
		return NULL;
	m = calloc(1, sizeof *m);
	if (!m || rmpsc_mc_config_init(&cfg, sizeof cfg, nprod == 1))
		goto fail;
	cfg.elem_size = sizeof(uint64_t);
	cfg.ring_capacity = rm_share(capacity, nprod);
	cfg.max_consumers = ncons;
	cfg.flags = RMPSC_MPSC_F_PREFAULT;
	if (nprod == 1) {
		if (rmpsc_spmc_create(&cfg, &m->sp))
			goto fail;
		for (i = 0; i < ncons; i++)
			if (rmpsc_spmc_register_consumer(m->sp, &m->cons[i]) < 0)
				goto fail;
		return m;
	}
	cfg.producers = nprod;
	cfg.max_producers = nprod;
	if (rmpsc_mpmc_create(&cfg, &m->mp))
		goto fail;
	/* Consumers first: each one's shard is the rings whose id modulo the
	 * consumers registered then is its index. */
	for (i = 0; i < ncons; i++)
		if (rmpsc_mpmc_register_consumer(m->mp, &m->cons[i]) < 0)
			goto fail;
	for (i = 0; i < nprod; i++)
		if (rmpsc_mpmc_register_producer(m->mp, &m->prod[i]) != (int)i)
			goto fail;
	return m;
fail:
	rm_mc_destroy(m);
	return NULL;
}

static int rm_mc_push1(void *q, unsigned producer, uint64_t v)
{
	const struct rm_mc *m = q;

	if (m->sp)
		return rm_one(rmpsc_spmc_push(m->sp, &v));
	return rm_one(rmpsc_producer_push(m->prod[producer], &v));
}

static int rm_mc_pop1(void *q, unsigned consumer, uint64_t *v)
{
	const struct rm_mc *m = q;

	return rm_one(rmpsc_consumer_steal_one(m->cons[consumer], v));
}

/* W8 bursts: the producer's push_n (best effort, one publication), the
 * consumer's steal of up to @n (one claim of one ring's run, copied out,
 * then completed). */
static int rm_mc_push_n(void *q, unsigned producer, const uint64_t *v, uint32_t n)
{
	const struct rm_mc *m = q;

	if (m->sp)
		return rm_count(rmpsc_spmc_push_n(m->sp, v, n));
	return rm_count(rmpsc_producer_push_n(m->prod[producer], v, n));
}

static int rm_mc_pop_n(void *q, unsigned consumer, uint64_t *v, uint32_t n)
{
	const struct rm_mc *m = q;

	return rm_count(rmpsc_consumer_steal(m->cons[consumer], v, n));
}
#endif

#if defined(BENCH_RM_POLL) || defined(BENCH_RM_NOMETRICS)
/*
 * The variant builds' library: *path (from its environment variable, or
 * @dflt when that is unset or empty), loaded next to (not instead of)
 * libringmpsc.so.1, which the harness links: RTLD_DEEPBIND makes the loaded
 * library resolve its own symbols first, so its internal calls never land
 * in the other copy. NULL, with @why, when it cannot be loaded; the handle
 * stays open for the rest of the run.
 */
static void *rm_open(const char **path, const char *dflt, char *why, unsigned len)
{
	void *h;

	if (!*path || !**path)
		*path = dflt;
	h = dlopen(*path, RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
	if (!h)
		snprintf(why, len, "cannot load %s (%s)", *path, dlerror());
	return h;
}

/* In an rm_init(): resolve @sym in h into @var, or fail with @why. */
#define RM_LOAD(var, sym)                                                      \
	do {                                                                   \
		var = (__typeof__(var))dlsym(h, #sym);                         \
		if (!var) {                                                    \
			snprintf(why, len, "%s has no %s", path, #sym);        \
			return -1;                                             \
		}                                                              \
	} while (0)
#endif

#if !defined(BENCH_RM_POLL) && !defined(BENCH_RM_NOMETRICS)
/* ---- W4: waiting inside the library ------------------------------------- */

static rmpsc_wait rm_spin_wait; /* RMPSC_WAIT_SPIN, set by rm_init() */

static int rm_pop1_wait(void *q, uint64_t *v)
{
	return rmpsc_ring_pop_timed(q, v, -1, &rm_spin_wait) ? BENCH_ERR_IMPL : 1;
}

/* ---- W5: a ring whose consumer sleeps ----------------------------------- */

struct rm_wake {
	rmpsc_ring *r;
	rmpsc_notifier *n; /* BENCH_WAKE_EPOLL */
	int epfd;	   /* BENCH_WAKE_EPOLL, else -1 */
	unsigned how;
	rmpsc_wait w; /* BENCH_WAKE_SPIN / _FUTEX */
};

static void rm_wake_destroy(void *p)
{
	struct rm_wake *k = p;

	if (!k)
		return;
	if (k->n)
		rmpsc_ring_set_notifier(k->r, NULL);
	rmpsc_ring_destroy(k->r);
	if (k->epfd >= 0)
		close(k->epfd);
	rmpsc_notifier_destroy(k->n);
	free(k);
}

static void *rm_wake_create(uint32_t capacity, unsigned how)
{
	struct rm_wake *k = calloc(1, sizeof *k);

	if (!k)
		return NULL;
	k->epfd = -1;
	k->how = how;
	k->r = rm_create(capacity);
	if (!k->r)
		goto fail;
	switch (how) {
	case BENCH_WAKE_SPIN:
		if (rmpsc_wait_init(&k->w, sizeof k->w, RMPSC_WAIT_SPIN))
			goto fail;
		break;
	case BENCH_WAKE_FUTEX:
		/* No spin or yield phase: every wait is a futex sleep. */
		if (rmpsc_wait_init(&k->w, sizeof k->w, RMPSC_WAIT_BLOCK))
			goto fail;
		k->w.spin_count = 0;
		k->w.yield_count = 0;
		break;
	case BENCH_WAKE_EPOLL:
		k->epfd = epoll_create1(EPOLL_CLOEXEC);
		if (k->epfd < 0 || rmpsc_notifier_create(0, &k->n) ||
		    rmpsc_notifier_epoll_add(k->n, k->epfd, 0) ||
		    rmpsc_ring_set_notifier(k->r, k->n))
			goto fail;
		break;
	default:
		goto fail;
	}
	return k;
fail:
	rm_wake_destroy(k);
	return NULL;
}

static int rm_wake_push1(void *p, uint64_t v)
{
	const struct rm_wake *k = p;

	return rm_one(rmpsc_ring_push(k->r, &v));
}

static int rm_wake_pop1(void *p, uint64_t *v)
{
	struct rm_wake *k = p;
	struct epoll_event ev;
	int err;

	if (k->how != BENCH_WAKE_EPOLL)
		return rmpsc_ring_pop_timed(k->r, v, -1, &k->w) ? BENCH_ERR_IMPL : 1;
	/* Pop until -EAGAIN; then sleep in epoll_wait and consume the signal
	 * before popping again (notify.h: consume first, then drain). */
	while ((err = rmpsc_ring_pop(k->r, v)) == -EAGAIN) {
		int n;

		do
			n = epoll_wait(k->epfd, &ev, 1, -1);
		while (n < 0 && errno == EINTR);
		if (n < 0 || rmpsc_notifier_consume(k->n) < 0)
			return BENCH_ERR_IMPL;
	}
	return err ? BENCH_ERR_IMPL : 1;
}

static int rm_init(char *why, unsigned len)
{
	int err = rmpsc_wait_init(&rm_spin_wait, sizeof rm_spin_wait, RMPSC_WAIT_SPIN);

	if (err)
		snprintf(why, len, "rmpsc_wait_init failed (%d)", err);
	return err;
}

#elif defined(BENCH_RM_POLL)

/*
 * Load libringmpsc_poll.so (rm_open), then check that it is the
 * RMPSC_NO_WAKE build: with a notifier attached, its push must not signal.
 */
static int rm_init(char *why, unsigned len)
{
	const char *path = getenv(RM_LIB_ENV);
	__typeof__(rmpsc_notifier_create) *n_create;
	__typeof__(rmpsc_notifier_destroy) *n_destroy;
	__typeof__(rmpsc_notifier_consume) *n_consume;
	__typeof__(rmpsc_ring_set_notifier) *set_notifier;
	rmpsc_notifier *n = NULL;
	rmpsc_ring *r;
	uint64_t v = 1;
	int64_t sig;
	void *h;

	h = rm_open(&path, BENCH_POLL_LIB, why, len);
	if (!h)
		return -1;
#define RM_LOAD_CALL(f) RM_LOAD(rm_fn.f, rmpsc_ring_##f);
	RM_CALLS(RM_LOAD_CALL)
	rm_ex.push1 = rm_fn.push;
	rm_ex.pop1 = rm_fn.pop;
	RM_LOAD(n_create, rmpsc_notifier_create);
	RM_LOAD(n_destroy, rmpsc_notifier_destroy);
	RM_LOAD(n_consume, rmpsc_notifier_consume);
	RM_LOAD(set_notifier, rmpsc_ring_set_notifier);
	r = rm_create(64);
	if (!r) {
		snprintf(why, len, "%s: cannot create a ring", path);
		return -1;
	}
	sig = -1;
	if (!n_create(0, &n) && !set_notifier(r, n) && rm_push1(r, v) == 1)
		sig = n_consume(n);
	if (n)
		set_notifier(r, NULL);
	RM(destroy)(r);
	n_destroy(n);
	/* RMPSC_BENCH_AA=1: an A/A control, any build accepted (as for the
	 * no-metrics variant below). */
	if (sig > 0 && !getenv("RMPSC_BENCH_AA")) {
		snprintf(why, len, "%s signals a notifier on push: not RMPSC_NO_WAKE",
			 path);
		return -1;
	}
	if (sig < 0)
		fprintf(stderr,
			"bench_ring: %s: notifier check failed, cannot confirm it is "
			"the RMPSC_NO_WAKE build\n",
			path);
	return 0;
}
#else /* BENCH_RM_NOMETRICS */

/*
 * Load libringmpsc_nometrics.so (rm_open) and check that it is the
 * RMPSC_NO_METRICS build: a channel
 * created with RMPSC_MPSC_F_METRICS must count nothing.
 */
static int rm_init(char *why, unsigned len)
{
	const char *path = getenv(RM_NM_LIB_ENV);
	rmpsc_mpsc_snapshot st;
	struct rm_mp *m;
	uint64_t v = 0;
	void *h;
	int ok;

	h = rm_open(&path, BENCH_NOMETRICS_LIB, why, len);
	if (!h)
		return -1;
#define MP_LOAD_CALL(f) RM_LOAD(mp_fn.f, rmpsc_##f);
	MP_CALLS(MP_LOAD_CALL)
	rm_ex.mp_push1 = mp_fn.producer_push;
	rm_ex.mp_pop1 = mp_fn.mpsc_pop;
	m = rm_mp_new(64, 1, 0, RMPSC_MPSC_F_METRICS);
	if (!m) {
		snprintf(why, len, "%s: cannot create a channel", path);
		return -1;
	}
	ok = rm_mp_push1(m, 0, 1) == 1 && rm_mp_pop1(m, &v) == 1 && v == 1 &&
	     !MP(mpsc_stats)(m->ch, &st, sizeof st);
	rm_mp_destroy(m);
	if (!ok) {
		snprintf(why, len, "%s: a push and pop through it failed", path);
		return -1;
	}
	/* RMPSC_BENCH_AA=1: an A/A control, any build of the library accepted
	 * (RMPSC_BENCH_NOMETRICS_LIB naming the normal one). */
	if ((st.sent || st.received || st.polls) && !getenv("RMPSC_BENCH_AA")) {
		snprintf(why, len, "%s counts metrics: not the RMPSC_NO_METRICS build",
			 path);
		return -1;
	}
	return 0;
}
#endif

#ifndef BENCH_RM_NOMETRICS
const struct bench_impl RM_IMPL = {
	.name = RM_NAME,
#ifndef BENCH_RM_POLL
	.api_note = "lock-free SPSC ring through exported calls (one PLT call and a "
		    "handle check per operation), capacity 65536 in 131072 slots "
		    "(cfg.slots, DPDK's memory); zero-copy via reserve/commit and "
		    "readable/advance spans; W3 through the MPSC channel (a ring per "
		    "producer, rmpsc_mpsc_pop per element); W4 waits in rmpsc_ring_pop_timed (RMPSC_WAIT_SPIN)",
#else
	.api_note = "the ringmpsc adapter on libringmpsc_poll.so (RMPSC_NO_WAKE: no "
		    "waiter or notifier check on the hot paths), through dlsym'd "
		    "pointers; W1/W2 only, the polling-only side of the wake A/B",
#endif
	BENCH_SPSC_OPS(rm),
	.zc_produce = rm_zc_produce,
	.zc_consume = rm_zc_consume,
	.init = rm_init,
	.ex = &rm_ex,
#ifndef BENCH_RM_POLL
	.mp_create = rm_mp_create,
	.mp_destroy = rm_mp_destroy,
	.mp_push1 = rm_mp_push1,
	.mp_pop1 = rm_mp_pop1,
	.pop1_wait = rm_pop1_wait,
	.wake_create = rm_wake_create,
	.wake_destroy = rm_wake_destroy,
	.wake_push1 = rm_wake_push1,
	.wake_pop1 = rm_wake_pop1,
	.mp_push_n = rm_mp_push_n,
	.mp_pop_n = rm_mp_pop_n,
	.mc_create = rm_mc_create,
	.mc_destroy = rm_mc_destroy,
	.mc_push1 = rm_mc_push1,
	.mc_pop1 = rm_mc_pop1,
	.mp_create_idle = rm_mp_create_idle,
	.mp_polls = rm_mp_polls,
	.mc_push_n = rm_mc_push_n,
	.mc_pop_n = rm_mc_pop_n,
#else
	.workloads = BENCH_WL_W1 | BENCH_WL_W2,
	.variant_of = "ringmpsc",
#endif
};

#endif /* !BENCH_RM_NOMETRICS */

#ifndef BENCH_RM_POLL
/* What the two variants of the metrics A/B share: ours, W3 and W6 only. */
#define RM_METRICS_AB_MEMBERS                                                       \
	BENCH_SPSC_OPS(rm), .mp_destroy = rm_mp_destroy, .mp_push1 = rm_mp_push1,    \
	.mp_pop1 = rm_mp_pop1, .mp_push_n = rm_mp_push_n, .mp_pop_n = rm_mp_pop_n,   \
	.init = rm_init, .ex = &rm_ex, .workloads = BENCH_WL_W3 | BENCH_WL_W6,       \
	.variant_of = "ringmpsc"
#endif

#if !defined(BENCH_RM_POLL) && !defined(BENCH_RM_NOMETRICS)
/* The MPSC channel with RMPSC_MPSC_F_METRICS: the metrics on/off A/B. */
const struct bench_impl bench_impl_ringmpsc_metrics = {
	.name = "ringmpsc-metrics",
	.api_note = "the ringmpsc adapter's MPSC channel created with "
		    "RMPSC_MPSC_F_METRICS (counters on every push and pop); W3 and "
		    "W6 only, the metrics-on side of the zero-cost A/B",
	.mp_create = rm_mp_create_metrics,
	RM_METRICS_AB_MEMBERS,
};
#endif

#ifdef BENCH_RM_NOMETRICS
/* The MPSC rows on libringmpsc_nometrics.so: the metrics "zero cost when
 * off" baseline (ringmpsc / ringmpsc-nometrics). */
const struct bench_impl bench_impl_ringmpsc_nometrics = {
	.name = "ringmpsc-nometrics",
	.api_note = "the ringmpsc adapter's MPSC channel on libringmpsc_nometrics.so "
		    "(RMPSC_NO_METRICS: metrics compiled out), through dlsym'd "
		    "pointers; W3 and W6 only, the baseline of the metrics-off A/B",
	.mp_create = rm_mp_create,
	RM_METRICS_AB_MEMBERS,
	/* Outside W3/W6, but this build's only users of these functions. */
	.zc_produce = rm_zc_produce,
	.zc_consume = rm_zc_consume,
	.mp_create_idle = rm_mp_create_idle,
	.mp_polls = rm_mp_polls,
};
#endif
