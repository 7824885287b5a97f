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
 * W3, W6 and W8: one shared queue, one ProducerToken per producer index,
 * one ConsumerToken per consumer index (each used by one thread, so its
 * rotation state is private). Blocks are not shared between producers and
 * an explicit producer never gives a block back to the pool while it lives,
 * so with a pool of exactly the capacity a producer that fills the queue
 * alone (producers share CPUs) could keep every block, and another one that
 * had none yet could never enqueue. The library's per-producer bound for
 * that, the MAX_SUBQUEUE_SIZE trait, is compile-time and is not enough
 * either: it bounds the items between the producer's tail and its head
 * index, which advances when a consumer claims a slot, not when the block
 * is empty again, so while a consumer is preempted inside a bulk dequeue
 * (W6) its producer finds its own blocks busy and can take more from the
 * pool, and that surplus is never returned. So each producer gets its share
 * at creation instead: capacity / nprod rounded down to whole blocks of 32
 * (the pool is exactly nprod shares), and creation fills every producer's
 * share in turn, checks that each then refuses one more item (its blocks
 * are full, the pool is empty) and drains the queue (checking every
 * value). After that the pool stays empty and every producer owns exactly
 * its share: none can take another's blocks, whatever the split, the same
 * split as ringmpsc's one ring per producer. Totals: 65536 for 1, 2, 4
 * and 8 producers (each 65536 / nprod minus its partly read head block),
 * 65472 for 3 and 6, 65440 for 5, 65408 for 7.
 *
 * W6 batches: try_enqueue_bulk with the producer's token, all-or-nothing,
 * and try_dequeue_bulk with the consumer's token, best effort. A batch
 * needs the rest of the producer's current block plus whole empty blocks
 * of its own, so a batch of more than (share - 1) blocks could never go in
 * once the tail is inside a block; mp_push_n passes at most that many items
 * (one call, still all-or-nothing for those) and returns the count or 0.
 *
 * W8: the same queue, the producers' tokens and ncons consumer tokens,
 * made once per index at creation: try_enqueue(producer token) /
 * try_dequeue(consumer token) for single items, and for the burst rows
 * try_enqueue_bulk (all or nothing, as W6) / try_dequeue_bulk with the same
 * tokens. No tokenless call anywhere. There is no single-producer mode: a
 * sub-queue always has exactly one producer.
 *
 * Memory: the pool's blocks are constructed (every page written) when the
 * queue is built, outside the timed region; the SPSC queue also gets one
 * fill-and-drain pass, which faults in the producer's block index, and the
 * shared queue gets the claiming pass above.
 */
#include <concurrentqueue/concurrentqueue.h>

#include <new>
#include <optional>

#include "bench_impl.h"

namespace {

using traits_spsc = moodycamel::ConcurrentQueueDefaultTraits;

using cq_spsc = moodycamel::ConcurrentQueue<uint64_t, traits_spsc>;
/* W3/W6/W8: the default traits too; the per-producer shares are claimed at
 * creation (mc_chan_new) rather than bounded by MAX_SUBQUEUE_SIZE. */
using cq_mp = moodycamel::ConcurrentQueue<uint64_t, traits_spsc>;

constexpr size_t MC_BLOCK = traits_spsc::BLOCK_SIZE;

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

struct alignas(128) mc_ctok_slot {
	std::optional<moodycamel::ConsumerToken> tok;
};

/* The W3/W6/W8 queue. The tokens are destroyed before the queue (reverse
 * declaration order). */
struct mc_chan {
	cq_mp q;
	uint32_t max_bulk; /* mp_push_n's largest batch: (share - 1) blocks */
	mc_ptok_slot prod[BENCH_MAX_PROD];
	mc_ctok_slot cons[BENCH_MAX_PROD];

	explicit mc_chan(size_t capacity) : q(capacity), max_bulk(0) {}
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

BENCH_QOP_SHELLS(mc, )

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

/* ---- W3/W6/W8: one shared queue, a token per producer and per consumer -- */

void mc_chan_destroy(void *p)
{
	delete static_cast<mc_chan *>(p);
}

/* Every producer claims its share of the pool (file comment); the first
 * consumer token drains what that put in. true when everything checked. */
bool mc_chan_claim(mc_chan *m, unsigned nprod, size_t each)
{
	uint64_t next[BENCH_MAX_PROD] = {0};
	size_t got = 0;
	uint64_t v;

	for (unsigned i = 0; i < nprod; i++)
		for (size_t s = 0; s < each; s++)
			if (!m->q.try_enqueue(*m->prod[i].tok,
					      (uint64_t(i) << BENCH_PROD_SHIFT) | s))
				return false;
	for (unsigned i = 0; i < nprod; i++)
		if (m->q.try_enqueue(*m->prod[i].tok, uint64_t(0)))
			return false; /* one more fits: the pool was not exactly the shares */
	while (m->q.try_dequeue(*m->cons[0].tok, v)) {
		const unsigned i = unsigned(v >> BENCH_PROD_SHIFT);

		if (i >= nprod || (v & ((uint64_t(1) << BENCH_PROD_SHIFT) - 1)) != next[i])
			return false;
		next[i]++;
		got++;
	}
	return got == size_t(nprod) * each && m->q.size_approx() == 0;
}

mc_chan *mc_chan_new(uint32_t capacity, unsigned nprod, unsigned ncons)
{
	if (!bench_counts_ok(nprod, ncons))
		return nullptr;
	/* Blocks per producer; at least two, so a batch can always go in. */
	const size_t share = capacity / MC_BLOCK / nprod;
	if (share < 2)
		return nullptr;
	mc_chan *m = nullptr;
	try {
		m = new mc_chan(share * nprod * MC_BLOCK);
		for (unsigned i = 0; i < nprod; i++) {
			m->prod[i].tok.emplace(m->q);
			if (!m->prod[i].tok->valid()) {
				delete m;
				return nullptr;
			}
		}
		for (unsigned i = 0; i < ncons; i++)
			m->cons[i].tok.emplace(m->q);
	} catch (...) {
		delete m;
		return nullptr;
	}
	m->max_bulk = uint32_t((share - 1) * MC_BLOCK);
	if (!mc_chan_claim(m, nprod, share * MC_BLOCK)) {
		delete m;
		return nullptr;
	}
	return m;
}

void *mc_mp_create(uint32_t capacity, unsigned nprod)
{
	return mc_chan_new(capacity, nprod, 1);
}

int mc_mp_push1(void *p, unsigned producer, uint64_t v)
{
	mc_chan *m = static_cast<mc_chan *>(p);

	return m->q.try_enqueue(*m->prod[producer].tok, v) ? 1 : 0;
}

int mc_mp_pop1(void *p, uint64_t *v)
{
	mc_chan *m = static_cast<mc_chan *>(p);

	return m->q.try_dequeue(*m->cons[0].tok, *v) ? 1 : 0;
}

/* W6: all or nothing, at most max_bulk items (file comment). */
int mc_mp_push_n(void *p, unsigned producer, const uint64_t *v, uint32_t n)
{
	mc_chan *m = static_cast<mc_chan *>(p);
	const uint32_t k = n < m->max_bulk ? n : m->max_bulk;

	return m->q.try_enqueue_bulk(*m->prod[producer].tok, v, k) ? static_cast<int>(k) : 0;
}

int mc_mp_pop_n(void *p, uint64_t *v, uint32_t n)
{
	mc_chan *m = static_cast<mc_chan *>(p);

	return static_cast<int>(m->q.try_dequeue_bulk(*m->cons[0].tok, v, n));
}

/* W8 */
void *mc_mc_create(uint32_t capacity, unsigned nprod, unsigned ncons)
{
	return mc_chan_new(capacity, nprod, ncons);
}

int mc_mc_pop1(void *p, unsigned consumer, uint64_t *v)
{
	mc_chan *m = static_cast<mc_chan *>(p);

	return m->q.try_dequeue(*m->cons[consumer].tok, *v) ? 1 : 0;
}

/* W8 bursts: the producers' side is mc_mp_push_n (try_enqueue_bulk with the
 * producer's token, all or nothing); the consumer's try_dequeue_bulk with
 * its own token, best effort. */
int mc_mc_pop_n(void *p, unsigned consumer, uint64_t *v, uint32_t n)
{
	mc_chan *m = static_cast<mc_chan *>(p);

	return static_cast<int>(m->q.try_dequeue_bulk(*m->cons[consumer].tok, v, n));
}

} // namespace

const struct bench_impl BENCH_IMPL_OF(mccq) = {
	.name = BENCH_NAME_OF(mccq),
	.api_note = BENCH_NOTE_OF(
		mccq, "ConcurrentQueue<u64>(65536), explicit ProducerToken + "
		      "ConsumerToken: 2048 pooled blocks of 32, holds 65505..65536 (a "
		      "block is reused only once fully read); try_enqueue_bulk is "
		      "all-or-nothing, bulk calls copy; no zero-copy API; W3/W6/W8 one "
		      "shared queue, a token per producer and per consumer, each "
		      "producer's share of the pool (capacity / nprod in whole blocks) "
		      "claimed at creation so none can hoard it; W6 bulk calls (a batch "
		      "capped at its share minus one block); W8 single items and "
		      "bulk calls through the same tokens"),
	BENCH_SPSC_OPS(mc),
	.mp_create = mc_mp_create,
	.mp_destroy = mc_chan_destroy,
	.mp_push1 = mc_mp_push1,
	.mp_pop1 = mc_mp_pop1,
	BENCH_CALL_MEMBERS(mccq),
	.mp_push_n = mc_mp_push_n,
	.mp_pop_n = mc_mp_pop_n,
	.mc_create = mc_mc_create,
	.mc_destroy = mc_chan_destroy,
	.mc_push1 = mc_mp_push1,
	.mc_pop1 = mc_mc_pop1,
	.mc_push_n = mc_mp_push_n,
	.mc_pop_n = mc_mc_pop_n,
};
