// SPDX-License-Identifier: MIT
/*
 * bench adapter: moodycamel::ConcurrentQueue (Debian libconcurrentqueue-dev
 * 1.0.3), a lock-free MPMC queue made of one sub-queue per producer, each a
 * circular list of blocks of BLOCK_SIZE (32) slots taken from a shared pool.
 *
 * Used the way its README describes the fast path: explicit producers
 * (one ProducerToken per producer thread) and a ConsumerToken, bulk
 * try_enqueue_bulk / try_dequeue_bulk for push_n / pop_n, try_enqueue /
 * try_dequeue for single items. The try_ calls never allocate: when the
 * sub-queue would need a block that is neither its own empty one nor in the
 * preallocated pool they fail, which the harness sees as "full".
 *
 * The traits' comment suggests larger blocks for few producers and many
 * elements; BLOCK_SIZE 256 and 1024 measured no faster here (W1-W4, side by
 * side), hold fewer items for sure (a whole partly read block is lost),
 * and trip a GCC 12 -Wstringop-overflow false positive inside the header
 * at -O3, so the default 32 stays.
 *
 * Capacity. ConcurrentQueue(65536) preallocates 65536 / 32 = 2048 blocks.
 * A block is reused only once completely dequeued, so a sub-queue holds
 * 65536 items minus the part of the head block the consumer has already
 * read: 65505..65536 (exactly 65536 when empty; the creation pass below
 * checks that). An explicit producer's block index is sized from the pool
 * (2048 entries), so it never needs to grow either.
 *
 * try_enqueue_bulk is all-or-nothing: push_n returns n or 0 (0 = not room
 * for the whole batch; the harness retries). try_dequeue_bulk is best
 * effort. Both copy. No zero-copy API at all: zc_* NULL.
 *
 * W3: one shared queue, one ProducerToken per producer index, one
 * ConsumerToken. Blocks are not shared between producers and an explicit
 * producer never gives a block back to the pool while it lives, so with a
 * pool of exactly 65536 slots and no per-producer bound, a producer that
 * fills the queue alone (both producers share CPU 0) keeps every block and
 * the other one can never enqueue again. The library's bound for that is
 * the MAX_SUBQUEUE_SIZE trait (per producer, enforced per block): set to
 * 65536 / 2 = 32768, the two sub-queues own at most 1024 blocks each and
 * together exactly the 2048 of the pool -- the same split as ringmpsc's
 * one 32768-slot ring per producer. The trait is compile-time, so W3 is
 * built for capacity / nprod == 32768 (the harness's 65536 and 2);
 * mp_create refuses other splits rather than risk that starvation.
 *
 * Memory: the pool's blocks are constructed (every page written) when the
 * queue is built, outside the timed region; the SPSC queue also gets one
 * fill-and-drain pass, which faults in the producer's block index.
 */
#include <concurrentqueue/concurrentqueue.h>

#include <new>
#include <optional>

#include "bench_impl.h"

namespace {

using traits_spsc = moodycamel::ConcurrentQueueDefaultTraits;

constexpr size_t MP_PER_PRODUCER = 32768;

struct traits_mp : moodycamel::ConcurrentQueueDefaultTraits {
	static const size_t MAX_SUBQUEUE_SIZE = MP_PER_PRODUCER;
};

using cq_spsc = moodycamel::ConcurrentQueue<uint64_t, traits_spsc>;
using cq_mp = moodycamel::ConcurrentQueue<uint64_t, traits_mp>;

static_assert(MP_PER_PRODUCER % traits_mp::BLOCK_SIZE == 0, "per-producer bound not in whole blocks");

/* Each token on lines of its own: the producer only reads its token, the
 * consumer writes its token on every call. Tokens go before the queue is
 * destroyed (members are destroyed in reverse order). */
struct mc_spsc {
	cq_spsc q;
	alignas(128) moodycamel::ProducerToken ptok;
	alignas(128) moodycamel::ConsumerToken ctok;

	explicit mc_spsc(size_t capacity) : q(capacity), ptok(q), ctok(q) {}
};

struct alignas(128) mc_ptok_slot {
	std::optional<moodycamel::ProducerToken> tok;
};

struct mc_mp {
	cq_mp q;
	mc_ptok_slot prod[BENCH_MAX_PROD];
	alignas(128) moodycamel::ConsumerToken ctok;

	explicit mc_mp(size_t capacity) : q(capacity), ctok(q) {}
};

void mc_destroy(void *p)
{
	delete static_cast<mc_spsc *>(p);
}

void *mc_create(uint32_t capacity)
{
	if (capacity == 0)
		return nullptr;
	mc_spsc *m;
	try {
		m = new mc_spsc(capacity);
	} catch (...) {
		return nullptr;
	}
	if (!m->ptok.valid()) {
		delete m;
		return nullptr;
	}
	/* Fill until refused, then drain: checks the capacity (whole blocks
	 * of the pool) and touches everything the first lap would. */
	const size_t blocks = (capacity + traits_spsc::BLOCK_SIZE - 1) / traits_spsc::BLOCK_SIZE;
	size_t n = 0, m_out = 0;
	uint64_t v;
	while (m->q.try_enqueue(m->ptok, uint64_t(n)))
		n++;
	while (m->q.try_dequeue(m->ctok, v)) {
		if (v != m_out)
			break;
		m_out++;
	}
	if (n != blocks * traits_spsc::BLOCK_SIZE || m_out != n) {
		delete m;
		return nullptr;
	}
	return m;
}

/* The single-item queue operations: inlined into push1/pop1, or behind one
 * non-inlined call in mccq-call (BENCH_CALL, bench_impl.h). */
BENCH_QOP bool mc_op_push(void *p, uint64_t v)
{
	mc_spsc *m = static_cast<mc_spsc *>(p);

	return m->q.try_enqueue(m->ptok, v);
}

BENCH_QOP bool mc_op_pop(void *p, uint64_t *v)
{
	mc_spsc *m = static_cast<mc_spsc *>(p);

	return m->q.try_dequeue(m->ctok, *v);
}

int mc_push1(void *p, uint64_t v)
{
	return mc_op_push(p, v) ? 1 : 0;
}

int mc_pop1(void *p, uint64_t *v)
{
	return mc_op_pop(p, v) ? 1 : 0;
}

/* All or nothing. */
int mc_push_n(void *p, const uint64_t *v, uint32_t n)
{
	mc_spsc *m = static_cast<mc_spsc *>(p);

	return m->q.try_enqueue_bulk(m->ptok, v, n) ? static_cast<int>(n) : 0;
}

int mc_pop_n(void *p, uint64_t *v, uint32_t n)
{
	mc_spsc *m = static_cast<mc_spsc *>(p);

	return static_cast<int>(m->q.try_dequeue_bulk(m->ctok, v, n));
}

/* ---- W3: one shared queue, a token per producer -------------------------- */

void mc_mp_destroy(void *p)
{
	delete static_cast<mc_mp *>(p);
}

void *mc_mp_create(uint32_t capacity, unsigned nprod)
{
	if (nprod == 0 || nprod > BENCH_MAX_PROD || capacity / nprod != MP_PER_PRODUCER ||
	    capacity % nprod)
		return nullptr;
	mc_mp *m;
	try {
		m = new mc_mp(capacity);
		for (unsigned i = 0; i < nprod; i++) {
			m->prod[i].tok.emplace(m->q);
			if (!m->prod[i].tok->valid()) {
				delete m;
				return nullptr;
			}
		}
	} catch (...) {
		return nullptr;
	}
	return m;
}

int mc_mp_push1(void *p, unsigned producer, uint64_t v)
{
	mc_mp *m = static_cast<mc_mp *>(p);

	return m->q.try_enqueue(*m->prod[producer].tok, v) ? 1 : 0;
}

int mc_mp_pop1(void *p, uint64_t *v)
{
	mc_mp *m = static_cast<mc_mp *>(p);

	return m->q.try_dequeue(m->ctok, *v) ? 1 : 0;
}

} // namespace

const struct bench_impl BENCH_IMPL_OF(mccq) = {
	.name = BENCH_NAME_OF(mccq),
	.api_note = BENCH_NOTE_OF(
		mccq, "ConcurrentQueue<u64>(65536), explicit ProducerToken + "
		      "ConsumerToken: 2048 pooled blocks of 32, holds 65505..65536 (a "
		      "block is reused only once fully read); try_enqueue_bulk is "
		      "all-or-nothing, bulk calls copy; no zero-copy API; W3 one shared "
		      "queue, a token per producer, MAX_SUBQUEUE_SIZE 32768 so neither "
		      "producer can hoard the pool"),
	.create = mc_create,
	.destroy = mc_destroy,
	.push1 = mc_push1,
	.pop1 = mc_pop1,
	.push_n = mc_push_n,
	.pop_n = mc_pop_n,
	.zc_produce = nullptr,
	.zc_consume = nullptr,
	.mp_create = mc_mp_create,
	.mp_destroy = mc_mp_destroy,
	.mp_push1 = mc_mp_push1,
	.mp_pop1 = mc_mp_pop1,
	.init = nullptr,
	.pop1_wait = nullptr,
	.wake_create = nullptr,
	.wake_destroy = nullptr,
	.wake_push1 = nullptr,
	.wake_pop1 = nullptr,
	.workloads = BENCH_WORKLOADS_OF(0),
	.variant_of = BENCH_VARIANT_OF(mccq),
	.flags = BENCH_FLAGS_OF,
};
