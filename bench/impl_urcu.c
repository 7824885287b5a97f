/* SPDX-License-Identifier: MIT */
/*
 * bench adapter: liburcu's wfcqueue (urcu/wfcqueue.h, liburcu 0.13), the
 * wait-free-enqueue concurrent queue of intrusive nodes.
 *
 * _LGPL_SOURCE: liburcu's README says to define it "if your code is LGPL or
 * GPL compatible" (MIT is), which turns the calls into the header inlines of
 * urcu/static/wfcqueue.h instead of calls into liburcu-common. It is defined
 * in this file only; note that it makes a bench_ring binary carry inlined
 * LGPL-2.1 code (the library sources are unaffected).
 *
 * The queue is an unbounded linked list of caller-owned nodes. To bound it to
 * the same 65536 messages as the other queues, without a malloc per message:
 *  - 65536 nodes are preallocated (a node is the cds_wfcq_node plus the u64:
 *    16 bytes, so 1 MiB), and message number s of a producer goes into node
 *    s & (each - 1) of that producer's range;
 *  - credits: a producer may only enqueue while sent - credit < each, where
 *    credit is the number of its messages the consumer has dequeued, which
 *    the consumer publishes (release store) every 64 items and whenever it
 *    finds the queue empty (or at the end of a pop_n). A node is therefore
 *    never re-enqueued before the consumer is done with it, and at most
 *    65536 messages are in flight: that is how the capacity is made the same.
 *    The producer re-reads the credit only when its cached copy says full.
 * This bookkeeping is the adapter's, not the library's; it costs the
 * consumer one counter increment per item and a store every 64.
 *
 * One dequeuer, so the __cds_wfcq_* dequeue calls need no lock (the
 * header's synchronisation table: dequeue/splice/iteration need mutual
 * exclusion only among themselves, which a single consumer thread gives),
 * and the lock-free head (struct __cds_wfcq_head, __cds_wfcq_init) is used.
 * The _nonblocking dequeue returns CDS_WFCQ_WOULDBLOCK when an enqueuer has
 * swapped the tail but not yet linked its node; that is reported as "empty"
 * (try again), the harness waits.
 *
 * Batches: wfcqueue has no multi-node enqueue (splice moves a whole queue,
 * and building a private queue to splice costs an xchg per node as well), so
 * push_n loops cds_wfcq_enqueue per item (one xchg each). pop_n loops
 * __cds_wfcq_dequeue_nonblocking per item: taking everything at once with
 * __cds_wfcq_splice_nonblocking into a consumer-private queue and dequeuing
 * from that measured 2-3x slower in W2 copy (the per-node cost, loading
 * the node the producer wrote, stays; each splice empties the shared queue,
 * so the producer's next enqueue links onto the consumer's head line, and
 * splice adds two xchg on the shared head and tail). No zero-copy path: the
 * nodes are intrusive (the value is written once, in the node) but not
 * contiguous, so there are no spans for bench_fill/bench_check.
 *
 * W3: the same queue, nprod producers, each with its own node range of
 * 65536 / nprod nodes and its own credit counter (per-producer FIFO is kept
 * by the queue); the consumer tells the producer of a node by its address.
 *
 * No W6 row (mp_push_n/mp_pop_n NULL): wfcqueue has no multi-node enqueue.
 * Its one multi-node call, __cds_wfcq_splice, moves a whole queue into
 * another: a producer would first build a private queue with one
 * cds_wfcq_enqueue (an xchg) per node, which is the per-item loop again,
 * and the consumer side of it is the splice pop_n above that measured
 * slower than the per-item dequeue.
 *
 * No W8 row (mc_* NULL): dequeue, splice and iteration need mutual exclusion
 * among themselves (the header's synchronisation table), i.e. several
 * consumers must share cds_wfcq_dequeue_lock (a pthread mutex) around every
 * dequeue: the queue has no multi-consumer mode of its own.
 */
#define _LGPL_SOURCE 1

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <urcu/compiler.h>
#include <urcu/wfcqueue.h>

#include "bench_impl.h"

enum { UQ_PUBLISH_EVERY = 64 };

struct uq_node {
	struct cds_wfcq_node node;
	uint64_t v;
};

/* One per producer. */
struct uq_side {
	/* Producer-private. */
	_Alignas(128) uint64_t sent; /* messages enqueued */
	uint64_t seen;		     /* last credit read */
	/* Written by the consumer, read by the producer when it looks full. */
	_Alignas(128) _Atomic uint64_t credit;
};

struct uq {
	/* The queue: head (consumer side) and tail (enqueuers' xchg target)
	 * on separate lines, as the header advises. */
	_Alignas(128) struct __cds_wfcq_head head;
	_Alignas(128) struct cds_wfcq_tail tail;
	/* Read-only after creation. */
	_Alignas(128) struct uq_node *nodes;
	uint64_t each; /* nodes (and credits) per producer, a power of two */
	unsigned shift; /* log2(each) */
	unsigned nprod;
	/* Consumer-private. */
	_Alignas(128) uint64_t received[BENCH_MAX_PROD];
	uint64_t published[BENCH_MAX_PROD];
	struct uq_side side[BENCH_MAX_PROD];
};

static void uq_destroy(void *p)
{
	struct uq *q = p;

	if (!q)
		return;
	free(q->nodes);
	free(q);
}

static struct uq *uq_new(uint32_t capacity, unsigned nprod)
{
	struct uq *q;
	uint64_t each = 1;
	unsigned shift = 0, i;

	if (!bench_counts_ok(nprod, 1) || capacity < nprod)
		return NULL;
	/* capacity / nprod, rounded down to a power of two. */
	while (each * 2 * nprod <= capacity) {
		each *= 2;
		shift++;
	}
	q = aligned_alloc(128, sizeof *q);
	if (!q)
		return NULL;
	memset(q, 0, sizeof *q);
	q->nodes = aligned_alloc(128, (size_t)(each * nprod) * sizeof *q->nodes);
	if (!q->nodes) {
		free(q);
		return NULL;
	}
	/* Touch every node now, outside the timed region. */
	memset(q->nodes, 0, (size_t)(each * nprod) * sizeof *q->nodes);
	q->each = each;
	q->shift = shift;
	q->nprod = nprod;
	for (i = 0; i < nprod; i++)
		atomic_init(&q->side[i].credit, 0);
	__cds_wfcq_init(&q->head, &q->tail);
	return q;
}

static void *uq_create(uint32_t capacity)
{
	return uq_new(capacity, 1);
}

static inline __attribute__((always_inline)) int uq_enqueue(struct uq *q, unsigned p,
							     uint64_t v)
{
	struct uq_side *s = &q->side[p];
	struct uq_node *n;

	if (s->sent - s->seen >= q->each) {
		/* Acquire: the consumer is done with every node it credited. */
		s->seen = atomic_load_explicit(&s->credit, memory_order_acquire);
		if (s->sent - s->seen >= q->each)
			return 0;
	}
	n = &q->nodes[((uint64_t)p << q->shift) | (s->sent & (q->each - 1))];
	n->v = v;
	cds_wfcq_node_init(&n->node);
	cds_wfcq_enqueue(&q->head, &q->tail, &n->node);
	s->sent++;
	return 1;
}

static inline void uq_publish(struct uq *q, unsigned p)
{
	if (q->received[p] != q->published[p]) {
		q->published[p] = q->received[p];
		atomic_store_explicit(&q->side[p].credit, q->received[p],
				      memory_order_release);
	}
}

static inline void uq_publish_all(struct uq *q)
{
	unsigned p;

	for (p = 0; p < q->nprod; p++)
		uq_publish(q, p);
}

/* One dequeue: 1 and *v, or 0 when empty (or an enqueue is half done). */
static inline __attribute__((always_inline)) int uq_dequeue(struct uq *q, uint64_t *v)
{
	struct cds_wfcq_node *node = __cds_wfcq_dequeue_nonblocking(&q->head, &q->tail);
	const struct uq_node *n;
	unsigned p;

	if (node == NULL || node == CDS_WFCQ_WOULDBLOCK)
		return 0;
	n = caa_container_of(node, struct uq_node, node);
	*v = n->v;
	p = (unsigned)((uint64_t)(n - q->nodes) >> q->shift);
	if (!(++q->received[p] % UQ_PUBLISH_EVERY))
		uq_publish(q, p);
	return 1;
}

/* The single-item queue operations (the adapter's credit bookkeeping
 * included): inlined into push1/pop1, or behind one non-inlined call in
 * urcu-call (BENCH_CALL, bench_impl.h). */
BENCH_QOP int uq_op_push(void *q, uint64_t v)
{
	return uq_enqueue(q, 0, v);
}

BENCH_QOP int uq_op_pop(void *p, uint64_t *v)
{
	struct uq *q = p;

	if (uq_dequeue(q, v))
		return 1;
	uq_publish_all(q);
	return 0;
}

BENCH_QOP_SHELLS(uq, )

/* No batch enqueue: one xchg per item. */
BENCH_PUSH_N_EACH(uq)

static int uq_pop_n(void *p, uint64_t *v, uint32_t n)
{
	struct uq *q = p;
	uint32_t i;

	for (i = 0; i < n; i++)
		if (!uq_dequeue(q, &v[i]))
			break;
	uq_publish_all(q);
	return (int)i;
}

/* ---- W3 ------------------------------------------------------------------ */

static void *uq_mp_create(uint32_t capacity, unsigned nprod)
{
	return uq_new(capacity, nprod);
}

static int uq_mp_push1(void *q, unsigned producer, uint64_t v)
{
	return uq_enqueue(q, producer, v);
}

const struct bench_impl BENCH_IMPL_OF(urcu) = {
	.name = BENCH_NAME_OF(urcu),
	.api_note = BENCH_NOTE_OF(
		urcu, "wfcqueue (inlined, _LGPL_SOURCE): unbounded intrusive list, "
		      "bounded here by 65536 preallocated 16-byte nodes (1 MiB) and "
		      "per-producer credits the consumer publishes every 64 items or "
		      "when empty; no batch enqueue, so push_n/pop_n loop per item (an "
		      "xchg per enqueue); no zero-copy spans; W3 one queue, a node range "
		      "and credit counter per producer; no W6 (no multi-node enqueue, "
		      "splice moves whole queues) and no W8 (dequeuers need a mutex)"),
	BENCH_SPSC_OPS(uq),
	.mp_create = uq_mp_create,
	.mp_destroy = uq_destroy,
	.mp_push1 = uq_mp_push1,
	.mp_pop1 = uq_pop1,
	BENCH_CALL_MEMBERS(urcu),
	/* No mp_push_n/mp_pop_n: no multi-node enqueue (file comment). No
	 * mc_*: dequeuers need mutual exclusion (a lock). */
};
