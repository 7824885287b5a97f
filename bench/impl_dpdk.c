/* SPDX-License-Identifier: MIT */
/*
 * bench adapter: DPDK's rte_ring (22.11), the ring library alone, without
 * EAL initialisation.
 *
 * rte_ring_create() needs EAL (it reserves a memzone and registers the ring
 * in a shared tailq), but rte_ring_init() is pure: it validates the flags,
 * memsets the header, copies the name and sets size/mask/capacity and the
 * sync types, and logs only on bad arguments (logging works without EAL). So
 * the ring lives in our own cache-aligned memory, sized with
 * rte_ring_get_memsize_elem(), and is released with free(); rte_ring_free()
 * is never called (it would refuse a ring without a memzone anyway). All
 * enqueue/dequeue calls are header inlines.
 *
 * Capacity: RING_F_EXACT_SZ makes the usable capacity exactly the requested
 * count (65536). DPDK then rounds the slot array up to the next power of two
 * above count + 1, i.e. 131072 slots (1 MiB of u64 for 512 KiB of usable
 * capacity); rte_ring_create_elem() does the same rounding before
 * rte_ring_get_memsize_elem(), and so must we, or the memory is too small.
 *
 * Elements: the _elem API with esize 8 stores the u64 directly. The pointer
 * API (rte_ring_sp_enqueue_burst etc.) is literally the _elem API with
 * esize = sizeof(void *) = 8, so both inline to the same
 * __rte_ring_enqueue_elems_64 copy loop; _elem avoids the u64 <-> pointer
 * casts. Zero-copy: the peek_zc API (..._zc_burst_elem_start/_finish), which
 * DPDK supports for single-producer/single-consumer (and HTS) rings only.
 *
 * W3: one ring of 65536 slots in total, relaxed-tail-sync (RTS)
 * multi-producer enqueue (see dp_mp_create) and single-consumer dequeue.
 *
 * W6 (batches): the same MP/SC ring, rte_ring_mp_rts_enqueue_burst_elem per
 * producer (the RTS burst call, matching the ring's producer sync type) and
 * rte_ring_sc_dequeue_burst_elem on the consumer, best effort both.
 *
 * W8 (several consumers): one ring of exactly 65536 usable slots, RTS on
 * both sides (RING_F_MP_RTS_ENQ | RING_F_MC_RTS_DEQ), single-producer
 * enqueue when there is one producer (RING_F_SP_ENQ, no CAS). RTS for the
 * consumers for the same reason as for the producers: W8 runs up to eight
 * threads on two CPUs, and in the default MC mode a consumer preempted
 * between moving cons.head and cons.tail makes every later consumer spin
 * until it runs again; RTS lets whoever finishes last move the tail.
 * W8's burst rows: the same ring, enqueue bursts (SP, or RTS for several
 * producers) and rte_ring_mc_rts_dequeue_burst_elem, best effort both.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <rte_ring.h>
#include <rte_ring_elem.h>

#include "bench_impl.h"

#define DP_ESIZE ((unsigned int)sizeof(uint64_t))

static struct rte_ring *dp_ring_new(uint32_t capacity, unsigned int flags)
{
	struct rte_ring *r;
	ssize_t sz;

	if (capacity == 0 || capacity > RTE_RING_SZ_MASK - 1)
		return NULL;
	flags |= RING_F_EXACT_SZ;
	/* The slot count rte_ring_init() will use with RING_F_EXACT_SZ. */
	sz = rte_ring_get_memsize_elem(DP_ESIZE, rte_align32pow2(capacity + 1));
	if (sz <= 0)
		return NULL;
	sz = (sz + 127) / 128 * 128;
	r = aligned_alloc(128, (size_t)sz);
	if (!r)
		return NULL;
	/* Fault every page in now (outside the timed region), as rmpsc's
	 * RMPSC_RING_F_PREFAULT does. */
	memset(r, 0, (size_t)sz);
	if (rte_ring_init(r, "bench", capacity, flags) ||
	    rte_ring_get_capacity(r) != capacity) {
		free(r);
		return NULL;
	}
	return r;
}

static void *dp_create(uint32_t capacity)
{
	return dp_ring_new(capacity, RING_F_SP_ENQ | RING_F_SC_DEQ);
}

static void dp_destroy(void *q)
{
	free(q);
}

/* rte_ring_*_elem single calls: 0, -ENOBUFS (full) or -ENOENT (empty). */
static inline int dp_one(int err)
{
	if (err == 0)
		return 1;
	return (err == -ENOBUFS || err == -ENOENT) ? 0 : BENCH_ERR_IMPL;
}

/* The single-item queue operations: inlined into push1/pop1, or behind one
 * non-inlined call in dpdk-call (BENCH_CALL, bench_impl.h). */
BENCH_QOP int dp_op_push(void *q, uint64_t v)
{
	return rte_ring_sp_enqueue_elem(q, &v, DP_ESIZE);
}

BENCH_QOP int dp_op_pop(void *q, uint64_t *v)
{
	return rte_ring_sc_dequeue_elem(q, v, DP_ESIZE);
}

BENCH_QOP_SHELLS(dp, dp_one)

static int dp_push_n(void *q, const uint64_t *v, uint32_t n)
{
	return (int)rte_ring_sp_enqueue_burst_elem(q, v, DP_ESIZE, n, NULL);
}

static int dp_pop_n(void *q, uint64_t *v, uint32_t n)
{
	return (int)rte_ring_sc_dequeue_burst_elem(q, v, DP_ESIZE, n, NULL);
}

static int dp_zc_produce(void *q, uint32_t n, uint64_t first)
{
	struct rte_ring_zc_data zcd;
	unsigned int k = rte_ring_enqueue_zc_burst_elem_start(q, DP_ESIZE, n, &zcd, NULL);

	if (k == 0)
		return 0;
	/* ptr1 holds n1 slots; the rest (k - n1) are at ptr2 after the wrap. */
	bench_fill(zcd.ptr1, zcd.n1, first);
	if (k > zcd.n1)
		bench_fill(zcd.ptr2, k - zcd.n1, first + zcd.n1);
	rte_ring_enqueue_zc_elem_finish(q, k);
	return (int)k;
}

static int dp_zc_consume(void *q, uint32_t n, uint64_t *expected_next, uint64_t *sum)
{
	struct rte_ring_zc_data zcd;
	unsigned int k = rte_ring_dequeue_zc_burst_elem_start(q, DP_ESIZE, n, &zcd, NULL);
	int bad;

	if (k == 0)
		return 0;
	bad = bench_check(zcd.ptr1, zcd.n1, *expected_next, sum);
	if (k > zcd.n1)
		bad |= bench_check(zcd.ptr2, k - zcd.n1, *expected_next + zcd.n1, sum);
	if (bad)
		return BENCH_ERR_MISMATCH;
	*expected_next += k;
	rte_ring_dequeue_zc_elem_finish(q, k);
	return (int)k;
}

/* ---- W3: one MP/SC ring ------------------------------------------------- */

static void *dp_mp_create(uint32_t capacity, unsigned nprod)
{
	if (!bench_counts_ok(nprod, 1))
		return NULL;
	/* Relaxed tail sync (RTS) producers: DPDK's documentation recommends
	 * RTS/HTS over the default MP mode "for overcommitted scenarios
	 * (multiple threads share same set of cores)", which W3 pinned is; in
	 * the default mode a preempted producer stalls the other (measured
	 * here: 0.4 vs 4.7 Mmsg/s pinned, 2.3 vs 9.1 unpinned). */
	return dp_ring_new(capacity, RING_F_MP_RTS_ENQ | RING_F_SC_DEQ);
}

static int dp_mp_push1(void *q, unsigned producer, uint64_t v)
{
	(void)producer;
	/* The generic call dispatches on the ring's sync type (RTS here). */
	return dp_one(rte_ring_enqueue_elem(q, &v, DP_ESIZE));
}

/* W6: the ring from dp_mp_create has RTS producers, so the RTS burst call
 * itself (no dispatch on the sync type); the consumer is dp_pop_n (SC). */
static int dp_mp_push_n(void *q, unsigned producer, const uint64_t *v, uint32_t n)
{
	(void)producer;
	return (int)rte_ring_mp_rts_enqueue_burst_elem(q, v, DP_ESIZE, n, NULL);
}

/* ---- W8: one ring, RTS consumers ----------------------------------------- */

static void *dp_mc_create(uint32_t capacity, unsigned nprod, unsigned ncons)
{
	/* One producer: DPDK's single-producer enqueue; several: RTS, as in
	 * W3. Consumers RTS (file comment: threads share the cores). */
	unsigned int enq = nprod == 1 ? RING_F_SP_ENQ : RING_F_MP_RTS_ENQ;

	if (!bench_counts_ok(nprod, ncons))
		return NULL;
	return dp_ring_new(capacity, enq | RING_F_MC_RTS_DEQ);
}

static int dp_mc_pop1(void *q, unsigned consumer, uint64_t *v)
{
	(void)consumer;
	/* The generic call dispatches on the ring's sync type (RTS here). */
	return dp_one(rte_ring_dequeue_elem(q, v, DP_ESIZE));
}

/* W8 bursts, best effort both: the generic enqueue burst dispatches on the
 * producer sync type (rte_ring_sp_enqueue_burst_elem for one producer,
 * rte_ring_mp_rts_enqueue_burst_elem for several); the consumers are
 * always RTS, so their burst call is the RTS multi-consumer one itself
 * (the plain rte_ring_mc_dequeue_burst_elem must not be used on an RTS
 * ring: the two modes keep head and tail differently). */
static int dp_mc_push_n(void *q, unsigned producer, const uint64_t *v, uint32_t n)
{
	(void)producer;
	return (int)rte_ring_enqueue_burst_elem(q, v, DP_ESIZE, n, NULL);
}

static int dp_mc_pop_n(void *q, unsigned consumer, uint64_t *v, uint32_t n)
{
	(void)consumer;
	return (int)rte_ring_mc_rts_dequeue_burst_elem(q, v, DP_ESIZE, n, NULL);
}

const struct bench_impl BENCH_IMPL_OF(dpdk) = {
	.name = BENCH_NAME_OF(dpdk),
	.api_note = BENCH_NOTE_OF(
		dpdk, "rte_ring without EAL (rte_ring_init on our memory), u64 via the "
		      "_elem API (esize 8), header inlines; RING_F_EXACT_SZ gives "
		      "exactly 65536 usable slots but a 131072-slot (1 MiB) array; burst "
		      "calls copy, zero-copy via peek_zc start/finish (SP/SC only); W3 "
		      "one ring with RTS multi-producer enqueue (DPDK's choice when "
		      "threads share cores; the default MP mode convoys there); W6 "
		      "RTS enqueue burst + SC dequeue burst; W8 one ring, RTS "
		      "consumers (SP enqueue for one producer, else RTS), bursts "
		      "through the SP/RTS enqueue and RTS dequeue burst calls"),
	BENCH_SPSC_OPS(dp),
	.zc_produce = dp_zc_produce,
	.zc_consume = dp_zc_consume,
	.mp_create = dp_mp_create,
	.mp_destroy = dp_destroy,
	.mp_push1 = dp_mp_push1,
	.mp_pop1 = dp_pop1,
	BENCH_CALL_MEMBERS(dpdk),
	.mp_push_n = dp_mp_push_n,
	.mp_pop_n = dp_pop_n,
	.mc_create = dp_mc_create,
	.mc_destroy = dp_destroy,
	.mc_push1 = dp_mp_push1,
	.mc_pop1 = dp_mc_pop1,
	.mc_push_n = dp_mc_push_n,
	.mc_pop_n = dp_mc_pop_n,
};
