/* SPDX-License-Identifier: MIT */
/*
 * bench adapter: the baseline everyone writes first, a ring of u64 slots
 * behind one default pthread mutex (no condition variables: the harness does
 * the waiting, the same way for every implementation). The same queue serves
 * W3 as one shared ring for all producers. No zero-copy API: handing out
 * pointers into the buffer would need the lock held across the caller's
 * work, which is not what this baseline is.
 *
 * Channel workloads: W6's batch calls are push_n/pop_n on the shared ring
 * (one lock, copy up to n); W8's multi-consumer queue is the same ring
 * again, every consumer taking the one lock (no single-producer mode: the
 * lock is the whole synchronisation either way), and W8's bursts are
 * push_n/pop_n on it too.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "bench_impl.h"

struct mx_ring {
	pthread_mutex_t lock;
	uint64_t head; /* next slot to read, free-running */
	uint64_t tail; /* next slot to write, free-running */
	uint64_t mask;
	uint64_t *buf;
};

static void *mx_create(uint32_t capacity)
{
	struct mx_ring *r;

	if (capacity == 0 || (capacity & (capacity - 1)))
		return NULL;
	r = aligned_alloc(128, (sizeof *r + 127) / 128 * 128);
	if (!r)
		return NULL;
	memset(r, 0, sizeof *r);
	r->buf = aligned_alloc(64, (size_t)capacity * sizeof(uint64_t));
	if (!r->buf || pthread_mutex_init(&r->lock, NULL)) {
		free(r->buf);
		free(r);
		return NULL;
	}
	/* Touch every page now, as rmpsc's RMPSC_RING_F_PREFAULT does. */
	memset(r->buf, 0, (size_t)capacity * sizeof(uint64_t));
	r->mask = capacity - 1;
	return r;
}

static void mx_destroy(void *q)
{
	struct mx_ring *r = q;

	if (!r)
		return;
	pthread_mutex_destroy(&r->lock);
	free(r->buf);
	free(r);
}

/* The single-item queue operations: inlined into push1/pop1, or behind one
 * non-inlined call in mutex-call (BENCH_CALL, bench_impl.h). */
BENCH_QOP int mx_op_push(void *q, uint64_t v)
{
	struct mx_ring *r = q;
	int ok = 0;

	pthread_mutex_lock(&r->lock);
	if (r->tail - r->head <= r->mask) {
		r->buf[r->tail & r->mask] = v;
		r->tail++;
		ok = 1;
	}
	pthread_mutex_unlock(&r->lock);
	return ok;
}

BENCH_QOP int mx_op_pop(void *q, uint64_t *v)
{
	struct mx_ring *r = q;
	int ok = 0;

	pthread_mutex_lock(&r->lock);
	if (r->tail != r->head) {
		*v = r->buf[r->head & r->mask];
		r->head++;
		ok = 1;
	}
	pthread_mutex_unlock(&r->lock);
	return ok;
}

BENCH_QOP_SHELLS(mx, )

static int mx_push_n(void *q, const uint64_t *v, uint32_t n)
{
	struct mx_ring *r = q;
	uint64_t room, idx, first;
	uint32_t k;

	pthread_mutex_lock(&r->lock);
	room = r->mask + 1 - (r->tail - r->head);
	k = room < n ? (uint32_t)room : n;
	idx = r->tail & r->mask;
	first = r->mask + 1 - idx; /* slots before the buffer end */
	if (first > k)
		first = k;
	memcpy(r->buf + idx, v, first * sizeof *v);
	memcpy(r->buf, v + first, (k - first) * sizeof *v);
	r->tail += k;
	pthread_mutex_unlock(&r->lock);
	return (int)k;
}

static int mx_pop_n(void *q, uint64_t *v, uint32_t n)
{
	struct mx_ring *r = q;
	uint64_t avail, idx, first;
	uint32_t k;

	pthread_mutex_lock(&r->lock);
	avail = r->tail - r->head;
	k = avail < n ? (uint32_t)avail : n;
	idx = r->head & r->mask;
	first = r->mask + 1 - idx;
	if (first > k)
		first = k;
	memcpy(v, r->buf + idx, first * sizeof *v);
	memcpy(v + first, r->buf, (k - first) * sizeof *v);
	r->head += k;
	pthread_mutex_unlock(&r->lock);
	return (int)k;
}

static void *mx_mp_create(uint32_t capacity, unsigned nprod)
{
	return bench_counts_ok(nprod, 1) ? mx_create(capacity) : NULL;
}

static int mx_mp_push1(void *q, unsigned producer, uint64_t v)
{
	(void)producer;
	return mx_push1(q, v);
}

/* W6: one lock, copy up to n (push_n already is that for any producer). */
static int mx_mp_push_n(void *q, unsigned producer, const uint64_t *v, uint32_t n)
{
	(void)producer;
	return mx_push_n(q, v, n);
}

/* ---- W8: the same ring, any number of consumers ------------------------- */

static void *mx_mc_create(uint32_t capacity, unsigned nprod, unsigned ncons)
{
	return bench_counts_ok(nprod, ncons) ? mx_create(capacity) : NULL;
}

static int mx_mc_pop1(void *q, unsigned consumer, uint64_t *v)
{
	(void)consumer;
	return mx_pop1(q, v);
}

/* W8 bursts: one lock per call, copy up to n (as W6 batch). */
static int mx_mc_pop_n(void *q, unsigned consumer, uint64_t *v, uint32_t n)
{
	(void)consumer;
	return mx_pop_n(q, v, n);
}

const struct bench_impl BENCH_IMPL_OF(mutex) = {
	.name = BENCH_NAME_OF(mutex),
	.api_note = BENCH_NOTE_OF(
		mutex, "one pthread mutex around a u64 ring: every call takes the "
		       "lock, so producer and consumer serialize and contend on one "
		       "line; copying only; W3/W6/W8 share the one ring (W6 batches: "
		       "one lock, copy up to n; W8: consumers take the same lock, "
		       "bursts one lock per call)"),
	BENCH_SPSC_OPS(mx),
	.mp_create = mx_mp_create,
	.mp_destroy = mx_destroy,
	.mp_push1 = mx_mp_push1,
	.mp_pop1 = mx_pop1,
	BENCH_CALL_MEMBERS(mutex),
	.mp_push_n = mx_mp_push_n,
	.mp_pop_n = mx_pop_n,
	.mc_create = mx_mc_create,
	.mc_destroy = mx_destroy,
	.mc_push1 = mx_mp_push1,
	.mc_pop1 = mx_mc_pop1,
	.mc_push_n = mx_mp_push_n,
	.mc_pop_n = mx_mc_pop_n,
};
