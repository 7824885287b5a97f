/* SPDX-License-Identifier: MIT */
/*
 * bench adapter: libringmpsc's rmpsc_ring, called only through the exported
 * functions of the shared library (no inline fast path, no internal header),
 * exactly as an application linking -lringmpsc would.
 *
 * W3 (multi-producer): one rmpsc_ring per producer, each of capacity / nprod
 * slots, and a consumer that polls the rings round-robin, one pop per visit.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <ringmpsc/ring.h>

#include "bench_impl.h"

static void *rm_create(uint32_t capacity)
{
	rmpsc_ring_config cfg;
	rmpsc_ring *r;

	if (rmpsc_ring_config_init(&cfg, sizeof cfg))
		return NULL;
	cfg.capacity = capacity;
	cfg.elem_size = sizeof(uint64_t);
	/* Fault the pages in at creation, outside the timed region; the mutex
	 * ring touches its buffer at creation too. */
	cfg.flags = RMPSC_RING_F_PREFAULT;
	if (rmpsc_ring_create(&cfg, &r))
		return NULL;
	return r;
}

static void rm_destroy(void *q)
{
	rmpsc_ring_destroy(q);
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
	return rm_one(rmpsc_ring_push(q, &v));
}

static int rm_pop1(void *q, uint64_t *v)
{
	return rm_one(rmpsc_ring_pop(q, v));
}

static int rm_push_n(void *q, const uint64_t *v, uint32_t n)
{
	return rm_count(rmpsc_ring_push_n(q, v, n));
}

static int rm_pop_n(void *q, uint64_t *v, uint32_t n)
{
	return rm_count(rmpsc_ring_pop_n(q, v, n));
}

static int rm_zc_produce(void *q, uint32_t n, uint64_t first)
{
	rmpsc_span s;
	int k = rmpsc_ring_reserve(q, n, &s);

	if (k <= 0)
		return rm_count(k);
	/* Up to two segments when the reservation wraps the buffer end. */
	bench_fill(s.iov[0].iov_base, s.count[0], first);
	if (s.nseg > 1)
		bench_fill(s.iov[1].iov_base, s.count[1], first + s.count[0]);
	if (rmpsc_ring_commit(q, (uint32_t)k))
		return BENCH_ERR_IMPL;
	return k;
}

static int rm_zc_consume(void *q, uint32_t n, uint64_t *expected_next, uint64_t *sum)
{
	rmpsc_span s;
	int k = rmpsc_ring_readable(q, n, &s);
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
	if (rmpsc_ring_advance(q, (uint32_t)k))
		return BENCH_ERR_IMPL;
	return k;
}

/* ---- W3: one ring per producer ------------------------------------------ */

struct rm_mp {
	/* Read-only after creation, read by every thread. */
	rmpsc_ring *ring[BENCH_MAX_PROD];
	unsigned nprod;
	/* Consumer-private, on its own lines so the producers' reads of
	 * ring[] never miss because the consumer moved its cursor. */
	_Alignas(128) unsigned next;
};

static void rm_mp_destroy(void *q)
{
	struct rm_mp *m = q;
	unsigned i;

	if (!m)
		return;
	for (i = 0; i < m->nprod; i++)
		rmpsc_ring_destroy(m->ring[i]);
	free(m);
}

static void *rm_mp_create(uint32_t capacity, unsigned nprod)
{
	struct rm_mp *m;
	uint32_t each = 1;
	unsigned i;

	if (nprod == 0 || nprod > BENCH_MAX_PROD)
		return NULL;
	/* Same total slots as a shared queue: capacity / nprod, rounded down
	 * to a power of two. */
	while ((uint64_t)each * 2 * nprod <= capacity)
		each *= 2;
	m = aligned_alloc(128, sizeof *m);
	if (!m)
		return NULL;
	memset(m, 0, sizeof *m);
	for (i = 0; i < nprod; i++) {
		m->ring[i] = rm_create(each);
		if (!m->ring[i]) {
			m->nprod = i;
			rm_mp_destroy(m);
			return NULL;
		}
	}
	m->nprod = nprod;
	return m;
}

static int rm_mp_push1(void *q, unsigned producer, uint64_t v)
{
	const struct rm_mp *m = q;

	return rm_one(rmpsc_ring_push(m->ring[producer], &v));
}

static int rm_mp_pop1(void *q, uint64_t *v)
{
	struct rm_mp *m = q;
	unsigned i, idx = m->next;

	/* Visit each ring at most once, starting after the last one served. */
	for (i = 0; i < m->nprod; i++) {
		int err = rmpsc_ring_pop(m->ring[idx], v);

		if (++idx == m->nprod)
			idx = 0;
		if (err == 0) {
			m->next = idx;
			return 1;
		}
		if (err != -EAGAIN)
			return BENCH_ERR_IMPL;
	}
	return 0;
}

const struct bench_impl bench_impl_ringmpsc = {
	.name = "ringmpsc",
	.api_note = "lock-free SPSC ring through exported calls (one PLT call and a "
		    "handle check per operation); zero-copy via reserve/commit and "
		    "readable/advance spans; W3 as one ring per producer polled "
		    "round-robin",
	.create = rm_create,
	.destroy = rm_destroy,
	.push1 = rm_push1,
	.pop1 = rm_pop1,
	.push_n = rm_push_n,
	.pop_n = rm_pop_n,
	.zc_produce = rm_zc_produce,
	.zc_consume = rm_zc_consume,
	.mp_create = rm_mp_create,
	.mp_destroy = rm_mp_destroy,
	.mp_push1 = rm_mp_push1,
	.mp_pop1 = rm_mp_pop1,
};
