// SPDX-License-Identifier: MIT
/*
 * bench adapter: moodycamel::ReaderWriterQueue (Debian
 * libreaderwriterqueue-dev 1.0.6), a lock-free SPSC queue made of a
 * circular list of circular buffers ("blocks"), each wasting one slot to
 * tell full from empty.
 *
 * Capacity. ReaderWriterQueue(size) guarantees room for at least @size
 * items; how many more it holds depends on MAX_BLOCK_SIZE (a template
 * parameter, default 512):
 *  - default, size 65536: 130 blocks of 512 (511 usable each), 66430 items
 *    when empty, and while the consumer is inside a block the producer may
 *    not enter it, so 65919..66430 in use (up to +894, +1.4%);
 *  - MAX_BLOCK_SIZE >= 32768, size 65535: one block of 65536 slots, exactly
 *    65535 items (one fewer than ours, the wasted slot).
 * The second is the closest to 65536, so this adapter uses it:
 * ReaderWriterQueue<uint64_t, 65536>(capacity - 1). (For other capacities
 * the same call gives capacity - 1 items in one block up to 131072, then
 * blocks of 65536.) MAX_BLOCK_SIZE only sets the size of blocks the queue
 * would allocate to grow, and try_enqueue never grows it: it returns false
 * when the preallocated blocks are full, which is the harness's "full".
 * (Side by side on the reference guest, the default 512-slot blocks ran
 * W1, W2 and W4 at the same speed, within the noise.)
 *
 * API: one item per call only (try_enqueue / try_dequeue); no bulk calls,
 * so push_n/pop_n loop per item. The consumer can read in place (peek() +
 * pop()), the producer cannot write in place, so there is no zero-copy
 * pair: zc_* are NULL. Single producer only: no mp_* (W3).
 *
 * The block is faulted in at creation (outside the timed region) by one
 * full pass through the queue's own calls, as ringmpsc prefaults its ring;
 * the pass also checks the capacity above.
 */
#include <readerwriterqueue/readerwriterqueue.h>

#include <new>

#include "bench_impl.h"

namespace {

constexpr size_t RWQ_MAX_BLOCK = 65536;

using rwq = moodycamel::ReaderWriterQueue<uint64_t, RWQ_MAX_BLOCK>;

void rwq_destroy(void *p)
{
	delete static_cast<rwq *>(p);
}

void *rwq_create(uint32_t capacity)
{
	if (capacity < 2)
		return nullptr;
	rwq *q;
	try {
		q = new rwq(capacity - 1);
	} catch (...) {
		return nullptr;
	}
	/* Fill until the first refusal, then drain: touches every slot and
	 * checks the item count promised above (capacity - 1 for a power of
	 * two in one block; never fewer). */
	size_t n = 0, m = 0;
	uint64_t v;
	while (q->try_enqueue(uint64_t(n)))
		n++;
	while (q->try_dequeue(v)) {
		if (v != m) {
			delete q;
			return nullptr;
		}
		m++;
	}
	if (n != m || n + 1 < capacity) {
		delete q;
		return nullptr;
	}
	return q;
}

/* The single-item queue operations: inlined into push1/pop1, or behind one
 * non-inlined call in rwq-call (BENCH_CALL, bench_impl.h). */
BENCH_QOP bool rwq_op_push(void *p, uint64_t v)
{
	return static_cast<rwq *>(p)->try_enqueue(v);
}

BENCH_QOP bool rwq_op_pop(void *p, uint64_t *v)
{
	return static_cast<rwq *>(p)->try_dequeue(*v);
}

BENCH_QOP_SHELLS(rwq, )

/* No bulk API: one try_enqueue/try_dequeue per item. */
BENCH_PUSH_N_EACH(rwq)
BENCH_POP_N_EACH(rwq)

} // namespace

const struct bench_impl BENCH_IMPL_OF(rwq) = {
	.name = BENCH_NAME_OF(rwq),
	.api_note = BENCH_NOTE_OF(
		rwq, "ReaderWriterQueue<u64, 65536>(65535): one preallocated block, holds "
		     "exactly 65535 (one slot wasted; default 512-slot blocks would hold "
		     "65919..66430); try_enqueue/try_dequeue only, so push_n/pop_n loop "
		     "per item; consumer-only in-place read (peek+pop), no in-place "
		     "produce, so no zero-copy; single producer, no W3"),
	BENCH_SPSC_OPS(rwq),
	BENCH_CALL_MEMBERS(rwq),
	/* SPSC only: no channel workloads. */
};
