/* SPDX-License-Identifier: MIT */
/*
 * bench adapter: Concurrency Kit's ck_ring (ck 0.7.1), header-only inlines.
 *
 * The pointer interface (ck_ring_enqueue_spsc / ck_ring_dequeue_spsc on a
 * ck_ring_buffer_t array), the u64 stored as the pointer value. The typed
 * CK_RING_PROTOTYPE variants and the _size variants run the same
 * _ck_ring_enqueue_sp / _ck_ring_dequeue_sc with an 8-byte memcpy (the _size
 * ones only add a size computation), so the plain calls are the fastest.
 *
 * Capacity: a ck_ring of size N (a power of two) holds N - 1 entries (one
 * slot tells full from empty), and N must be a power of two, so 65536
 * usable slots is impossible: the closest is N = 65536 holding 65535, which
 * keeps the same 512 KiB slot array (N = 131072 would hold 131071).
 *
 * ck_ring has no batch calls: push_n/pop_n loop one ck_ring_enqueue_spsc /
 * ck_ring_dequeue_spsc per item, each reading the other side's index and
 * publishing its own. Its reserve/commit calls (ck_ring_enqueue_reserve_spsc
 * / _commit_spsc) hand out one slot at a time on the producer side only;
 * there is no consumer-side peek, so there is no zero-copy path (zc_* NULL).
 *
 * W3: one ring, ck_ring_enqueue_mpsc (CAS on p_head, then each producer waits
 * for the earlier ones to move p_tail) and ck_ring_dequeue_mpsc (the
 * single-consumer dequeue of the mpsc namespace).
 *
 * W6 (batches): no multi-item enqueue or dequeue in any namespace (the
 * _size variants only report the occupancy, reserve/commit is one slot), so
 * mp_push_n/mp_pop_n stay NULL and ck has no W6 row.
 *
 * W8 (several consumers): one ring of the same size (65536, holds 65535),
 * ck_ring_enqueue_mpmc (as mpsc: CAS on p_head, then wait for p_tail) or,
 * with one producer, ck_ring_enqueue_spmc (the plain single-producer store);
 * consumers ck_ring_dequeue_mpmc (= _spmc: copy the slot, then CAS c_head,
 * retrying until it wins or the ring is empty). With more producer threads
 * than CPUs the producers' in-library wait for p_tail convoys: a producer
 * preempted between its CAS and its p_tail store makes every later one spin
 * (no yield) until it runs again, and each of them takes its next ticket at
 * once. In a smoke run of 4 producers x 4 consumers on the 2-vCPU guest it
 * fell, now and then, from millions of items/s to about 250/s (one item per
 * scheduler slice) for as long as the producers ran. That is ck's design,
 * not the adapter's; the consumers' CAS dequeue is lock-free.
 *
 * W8 bursts: ck_ring (0.7.1, /usr/include/ck_ring.h) has no multi-item
 * enqueue or dequeue in any namespace (spmc/mpmc included: one slot per
 * call, and reserve/commit is one slot too), so mc_push_n/mc_pop_n stay
 * NULL and ck has no W8 burst rows.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <ck_ring.h>

#include "bench_impl.h"

struct ckb_q {
	ck_ring_t ring; /* c_head and p_tail/p_head on their own lines */
	ck_ring_buffer_t *buf;
	bool sp; /* W8 with one producer: the spmc enqueue (read-only) */
};

static void *ckb_create(uint32_t capacity)
{
	struct ckb_q *q;

	if (capacity < 2 || (capacity & (capacity - 1)))
		return NULL;
	q = aligned_alloc(128, (sizeof *q + 127) / 128 * 128);
	if (!q)
		return NULL;
	q->buf = aligned_alloc(128, (size_t)capacity * sizeof *q->buf);
	if (!q->buf) {
		free(q);
		return NULL;
	}
	/* Fault the pages in at creation, as rmpsc's RMPSC_RING_F_PREFAULT. */
	memset(q->buf, 0, (size_t)capacity * sizeof *q->buf);
	ck_ring_init(&q->ring, capacity); /* holds capacity - 1 */
	q->sp = false;
	return q;
}

static void ckb_destroy(void *p)
{
	struct ckb_q *q = p;

	if (!q)
		return;
	free(q->buf);
	free(q);
}

/* The single-item queue operations: inlined into push1/pop1, or behind one
 * non-inlined call in ck-call (BENCH_CALL, bench_impl.h). */
BENCH_QOP bool ckb_op_push(void *p, uint64_t v)
{
	struct ckb_q *q = p;

	return ck_ring_enqueue_spsc(&q->ring, q->buf, (void *)(uintptr_t)v);
}

BENCH_QOP bool ckb_op_pop(void *p, uint64_t *v)
{
	struct ckb_q *q = p;
	void *e;

	if (!ck_ring_dequeue_spsc(&q->ring, q->buf, &e))
		return false;
	*v = (uint64_t)(uintptr_t)e;
	return true;
}

BENCH_QOP_SHELLS(ckb, )

/* No batch calls in ck_ring: one enqueue/dequeue per item. */
BENCH_PUSH_N_EACH(ckb)
BENCH_POP_N_EACH(ckb)

/* ---- W3: one MPSC ring --------------------------------------------------- */

static void *ckb_mp_create(uint32_t capacity, unsigned nprod)
{
	return bench_counts_ok(nprod, 1) ? ckb_create(capacity) : NULL;
}

static int ckb_mp_push1(void *p, unsigned producer, uint64_t v)
{
	struct ckb_q *q = p;

	(void)producer;
	return ck_ring_enqueue_mpsc(&q->ring, q->buf, (void *)(uintptr_t)v);
}

static int ckb_mp_pop1(void *p, uint64_t *v)
{
	struct ckb_q *q = p;
	void *e;

	if (!ck_ring_dequeue_mpsc(&q->ring, q->buf, &e))
		return 0;
	*v = (uint64_t)(uintptr_t)e;
	return 1;
}

/* ---- W8: one MPMC (or SPMC) ring ---------------------------------------- */

static void *ckb_mc_create(uint32_t capacity, unsigned nprod, unsigned ncons)
{
	struct ckb_q *q;

	if (!bench_counts_ok(nprod, ncons))
		return NULL;
	q = ckb_create(capacity);
	if (q)
		q->sp = nprod == 1;
	return q;
}

static int ckb_mc_push1(void *p, unsigned producer, uint64_t v)
{
	struct ckb_q *q = p;

	(void)producer;
	if (q->sp)
		return ck_ring_enqueue_spmc(&q->ring, q->buf, (void *)(uintptr_t)v);
	return ck_ring_enqueue_mpmc(&q->ring, q->buf, (void *)(uintptr_t)v);
}

static int ckb_mc_pop1(void *p, unsigned consumer, uint64_t *v)
{
	struct ckb_q *q = p;
	void *e;

	(void)consumer;
	if (!ck_ring_dequeue_mpmc(&q->ring, q->buf, &e))
		return 0;
	*v = (uint64_t)(uintptr_t)e;
	return 1;
}

const struct bench_impl BENCH_IMPL_OF(ck) = {
	.name = BENCH_NAME_OF(ck),
	.api_note = BENCH_NOTE_OF(
		ck, "ck_ring pointer API, u64 as the pointer value, header inlines; "
		    "size 65536 holds 65535 (N - 1, N a power of two); no batch calls, "
		    "so push_n/pop_n loop per item (index load + publish each); no "
		    "consumer-side peek, so no zero-copy; W3 one ring, "
		    "enqueue_mpsc producers wait in the library for earlier ones; no "
		    "W6 (no multi-item calls); W8 one ring, enqueue_mpmc (spmc for "
		    "one producer) + dequeue_mpmc (copy, then CAS c_head); more "
		    "producers than CPUs can convoy in the p_tail wait"),
	BENCH_SPSC_OPS(ckb),
	.mp_create = ckb_mp_create,
	.mp_destroy = ckb_destroy,
	.mp_push1 = ckb_mp_push1,
	.mp_pop1 = ckb_mp_pop1,
	BENCH_CALL_MEMBERS(ck),
	/* No mp_push_n/mp_pop_n, mc_push_n/mc_pop_n: no multi-item calls in
	 * ck_ring. */
	.mc_create = ckb_mc_create,
	.mc_destroy = ckb_destroy,
	.mc_push1 = ckb_mc_push1,
	.mc_pop1 = ckb_mc_pop1,
};
