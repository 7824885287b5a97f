// SPDX-License-Identifier: MIT
/*
 * bench adapter: Boost.Lockfree (header-only; Debian libboost-dev, 1.74).
 *
 * SPSC: boost::lockfree::spsc_queue<uint64_t, capacity<65536>>, the
 * compile-time-sized form (its fastest: the buffer lives inside the queue
 * object, the size is a constant). It holds exactly N items: it keeps
 * N + 1 = 65537 slots internally (one stays free to tell full from empty),
 * so the index wrap is a compare and subtract, not a mask. Any other
 * capacity falls back to the run-time-sized spsc_queue<uint64_t>(capacity),
 * which also holds exactly capacity items (the harness only asks 65536;
 * the choice is one predictable branch per call on a read-only pointer).
 * push1/pop1 are push(v)/pop(v); push_n/pop_n are the bulk
 * push(const T *, size) / pop(T *, size), best effort, one copy each.
 *
 * No zero-copy produce path: the producer can only copy in. The consumer
 * could read in place (front(), consume_one()/consume_all() with a
 * functor), but with no in-place produce there is no zero-copy pair, so
 * zc_* stay NULL.
 *
 * W3: boost::lockfree::queue<uint64_t> (Michael-Scott MPMC, lock-free
 * freelist), node-based, constructed with 65536 preallocated nodes (plus
 * its dummy node) and fed with bounded_push(), which never allocates: it
 * fails when the freelist is empty, so it holds exactly 65536 items. The
 * fixed_sized<true>/capacity<N> form addresses nodes by 16-bit indices and
 * is limited to 65535 nodes, one of them the dummy, i.e. at most 65534
 * items; Boost documents it for platforms without a usable wide CAS,
 * which x86-64 is not (its tagged pointers keep the tag in the unused top
 * 16 bits). The node-based form is therefore both the exact capacity and
 * the form meant for this platform. (Measured side by side on the 2-vCPU
 * reference guest, capacity<65534> ran W3 within about 10% of this form,
 * sometimes ahead when pinned: the exact capacity costs nothing material.)
 *
 * W6 (batches): lockfree::queue has no bulk push and no bulk pop
 * (consume_one/consume_all run a functor over single pops), so
 * mp_push_n/mp_pop_n stay NULL and boost has no W6 row.
 *
 * W8 (several consumers): the same MPMC queue<uint64_t> as W3, 65536
 * preallocated nodes and bounded_push, so exactly 65536 items; pop() from
 * every consumer. It has no single-producer mode, so one producer is the
 * same queue. No bulk push or pop either, so mc_push_n/mc_pop_n stay NULL
 * and boost has no W8 burst rows.
 *
 * Memory is touched at creation (outside the timed region), as ringmpsc's
 * RMPSC_RING_F_PREFAULT does: the compile-time queue is constructed in
 * zeroed memory; the run-time-sized one gets one full push/pop pass; the
 * MPMC queue's freelist writes every node when it is built.
 */
#include <boost/lockfree/queue.hpp>
#include <boost/lockfree/spsc_queue.hpp>

#include <cstring>
#include <new>
#include <vector>

#include "bench_impl.h"

namespace {

constexpr uint32_t CT_CAP = 65536;

using ct_queue = boost::lockfree::spsc_queue<uint64_t, boost::lockfree::capacity<CT_CAP>>;
using rt_queue = boost::lockfree::spsc_queue<uint64_t>;
using mp_queue = boost::lockfree::queue<uint64_t>;

/* Common head: rt is NULL for the compile-time form. Read-only after
 * creation, so the line it shares with nothing written stays shared. */
struct bq {
	rt_queue *rt;
};

/* The queue's write index starts a line of its own. */
struct bq_ct : bq {
	alignas(128) ct_queue q;
};

void bq_destroy(void *p)
{
	bq *h = static_cast<bq *>(p);

	if (!h)
		return;
	if (h->rt) {
		delete h->rt;
		delete h;
		return;
	}
	bq_ct *c = static_cast<bq_ct *>(h);
	c->~bq_ct();
	::operator delete(c, std::align_val_t(alignof(bq_ct)));
}

void *bq_create(uint32_t capacity)
{
	if (capacity == 0)
		return nullptr;
	try {
		if (capacity == CT_CAP) {
			/* 512 KiB of slots inside the object: zero (fault in)
			 * the memory, then construct the queue in it. */
			void *mem = ::operator new(sizeof(bq_ct), std::align_val_t(alignof(bq_ct)));
			std::memset(mem, 0, sizeof(bq_ct));
			bq_ct *c = new (mem) bq_ct;
			c->rt = nullptr;
			if (c->q.write_available() != CT_CAP) {
				bq_destroy(c);
				return nullptr;
			}
			return static_cast<bq *>(c);
		}
		bq *h = new bq;
		h->rt = new rt_queue(capacity);
		/* Fault the buffer in through the queue itself. */
		std::vector<uint64_t> warm(capacity);
		if (h->rt->push(warm.data(), capacity) != capacity ||
		    h->rt->pop(warm.data(), capacity) != capacity) {
			bq_destroy(h);
			return nullptr;
		}
		return h;
	} catch (...) {
		return nullptr;
	}
}

inline ct_queue &ctq(void *p)
{
	return static_cast<bq_ct *>(static_cast<bq *>(p))->q;
}

/* The single-item queue operations: inlined into push1/pop1, or behind one
 * non-inlined call in boost-call (BENCH_CALL, bench_impl.h). */
BENCH_QOP bool bq_op_push(void *p, uint64_t v)
{
	rt_queue *rt = static_cast<bq *>(p)->rt;

	if (__builtin_expect(rt == nullptr, 1))
		return ctq(p).push(v);
	return rt->push(v);
}

BENCH_QOP bool bq_op_pop(void *p, uint64_t *v)
{
	rt_queue *rt = static_cast<bq *>(p)->rt;

	if (__builtin_expect(rt == nullptr, 1))
		return ctq(p).pop(*v);
	return rt->pop(*v);
}

BENCH_QOP_SHELLS(bq, )

int bq_push_n(void *p, const uint64_t *v, uint32_t n)
{
	rt_queue *rt = static_cast<bq *>(p)->rt;

	if (__builtin_expect(rt == nullptr, 1))
		return static_cast<int>(ctq(p).push(v, n));
	return static_cast<int>(rt->push(v, n));
}

int bq_pop_n(void *p, uint64_t *v, uint32_t n)
{
	rt_queue *rt = static_cast<bq *>(p)->rt;

	if (__builtin_expect(rt == nullptr, 1))
		return static_cast<int>(ctq(p).pop(v, n));
	return static_cast<int>(rt->pop(v, n));
}

/* ---- W3: one shared MPMC queue ------------------------------------------ */

void *bq_mp_create(uint32_t capacity, unsigned nprod)
{
	if (!bench_counts_ok(nprod, 1) || capacity == 0)
		return nullptr;
	try {
		/* capacity nodes in the freelist, plus the dummy node. */
		return new mp_queue(capacity);
	} catch (...) {
		return nullptr;
	}
}

void bq_mp_destroy(void *p)
{
	delete static_cast<mp_queue *>(p);
}

int bq_mp_push1(void *p, unsigned producer, uint64_t v)
{
	(void)producer;
	return static_cast<mp_queue *>(p)->bounded_push(v) ? 1 : 0;
}

int bq_mp_pop1(void *p, uint64_t *v)
{
	return static_cast<mp_queue *>(p)->pop(*v) ? 1 : 0;
}

/* ---- W8: the same MPMC queue, several consumers ------------------------- */

void *bq_mc_create(uint32_t capacity, unsigned nprod, unsigned ncons)
{
	if (!bench_counts_ok(1, ncons))
		return nullptr;
	return bq_mp_create(capacity, nprod);
}

int bq_mc_pop1(void *p, unsigned consumer, uint64_t *v)
{
	(void)consumer;
	return bq_mp_pop1(p, v);
}

} // namespace

const struct bench_impl BENCH_IMPL_OF(boost) = {
	.name = BENCH_NAME_OF(boost),
	.api_note = BENCH_NOTE_OF(
		boost, "spsc_queue<u64, capacity<65536>> (holds exactly 65536; 65537 "
		       "slots inside, wrap by compare, not mask); bulk push/pop copy in "
		       "and out; consumer-only in-place read (front/consume_all), no "
		       "in-place produce, so no zero-copy; W3 one shared MPMC queue<u64>, "
		       "65536 preallocated nodes + bounded_push (exactly 65536; its "
		       "fixed_sized form tops out at 65534), a CAS per push and per pop; "
		       "no W6 (no bulk push or pop in queue<>); W8 the same MPMC queue"),
	BENCH_SPSC_OPS(bq),
	.mp_create = bq_mp_create,
	.mp_destroy = bq_mp_destroy,
	.mp_push1 = bq_mp_push1,
	.mp_pop1 = bq_mp_pop1,
	BENCH_CALL_MEMBERS(boost),
	/* No mp_push_n/mp_pop_n: queue<> has no bulk push or pop. */
	.mc_create = bq_mc_create,
	.mc_destroy = bq_mp_destroy,
	.mc_push1 = bq_mp_push1,
	.mc_pop1 = bq_mc_pop1,
};
