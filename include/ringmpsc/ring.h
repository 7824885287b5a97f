/* SPDX-License-Identifier: MIT */
/**
 * @file ringmpsc/ring.h
 * rmpsc_ring: a single-producer single-consumer ring of fixed-size slots.
 *
 * The element size is chosen at creation (1 byte to RMPSC_RING_ELEM_SIZE_MAX)
 * and the capacity is a power of two. Positions are free-running 64-bit
 * counters; a slot is `pos & (capacity - 1)`.
 *
 * Roles. Exactly one thread at a time acts as the producer (reserve, commit,
 * push*) and exactly one as the consumer (readable, advance, pop*, peek*,
 * skip, drain). The two may run at the same time without locks. The status
 * calls (len, is_empty, is_full, is_closed, capacity, elem_size, footprint)
 * and close may be called from any thread. Calling producer functions from
 * two threads at once (or consumer functions from two threads at once) is a
 * data race the library does not detect.
 *
 * Ordering. Everything the producer wrote into slots before the call that
 * publishes them (commit, push*) happens-before the consumer call that makes
 * them visible (readable, pop*, peek*). Everything the consumer did with slots
 * before releasing them (advance, pop*, skip, drain) happens-before the
 * producer call that hands those slots out again (reserve, push*).
 *
 * Close. rmpsc_ring_close() marks the ring closed. From then on reserve,
 * commit and push* return -EPIPE (checked after the handle and pointer
 * arguments and before everything else, n == 0 and n > capacity included,
 * except that an over-commit is still -EINVAL): slots reserved before the
 * close and not yet committed are dropped, and the producer is told so. The
 * consumer keeps receiving every element published before the close and
 * gets -EPIPE once the ring is closed and empty. That -EPIPE is final: the
 * close ends the stream at the tail it sees, and a push or commit that
 * raced with it finds out afterwards which side of that end it landed on,
 * so it either returned success and its elements reach the consumer before
 * -EPIPE, or returned -EPIPE itself and none of its elements is ever
 * delivered. Nothing that was reported as sent is lost. A producer call
 * racing a close may end the stream itself, at its own publication; it
 * waits only when another thread (a closer, or for a close that found the
 * end being decided, the producer) is between the two stores that record
 * the end: the producer calls below are wait-free except in that window.
 *
 * Release batching. On rings of capacity 1024 or more, rmpsc_ring_pop() of
 * 8-byte elements (other sizes release at once) hands the slots it empties
 * back to the producer in batches: every 32
 * elements, at once when it finds a producer asleep waiting for room (one
 * that goes to sleep just after a pop is woken by the consumer's next pop
 * or release), and before it reports the ring empty (-EAGAIN, -EPIPE).
 * So a consumer that try-pops from one ring and then blocks on another
 * may leave this ring's producer waiting for up to 31 slots; the blocking
 * pops (rmpsc_ring_pop_timed() and the rest) release at once.
 * Every other consumer call releases everything taken before it returns.
 * In between, up to 31 popped elements still take room for the producer
 * and count in len, is_empty and is_full. This keeps the consumer's index
 * line in its own cache while a producer polls a full ring
 * (bench/README.md, tuning log).
 *
 * Consumer lock-outs. Two states make the consumer calls refuse, so that
 * no element is ever read twice or given back while it is being read:
 *  - borrows outstanding (see "Borrowed reads" below): pop*, peek*,
 *    readable, advance, skip, drain and their _timed twins return -EINVAL
 *    (the borrow calls go on working);
 *  - re-entry: while a handler that the library calls on this ring's
 *    elements is running (a managed loop's handler, loop.h, or the @p fn
 *    of rmpsc_ring_borrow_fn()), every consumer call on the ring, the
 *    borrow calls, rmpsc_ring_reset() and rmpsc_loop_start_ring() return
 *    -EBUSY, the _timed ones at once. The producer calls, close and the
 *    status calls work as usual from a handler.
 */
#ifndef RINGMPSC_RING_H
#define RINGMPSC_RING_H

#include <stdint.h>
#include <stddef.h>

#include "common.h"
#include "notify.h"
#include "wait.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Opaque SPSC ring handle. */
typedef struct rmpsc_ring rmpsc_ring;

/** Limits. */
enum {
	RMPSC_RING_CAPACITY_MAX = 1 << 30,  /**< largest capacity (slots) */
	RMPSC_RING_ELEM_SIZE_MAX = 1 << 24, /**< largest element size (bytes) */
	RMPSC_RING_CONFIG_SIZE_V1 = 24,     /**< smallest rmpsc_ring_config accepted (up to _pad0) */
};

/** Creation flags (rmpsc_ring_config.flags). */
enum {
	/** Back the ring with explicit huge pages (MAP_HUGETLB); -ENOMEM if the
	 *  system has none free. */
	RMPSC_RING_F_HUGEPAGE = 1u << 0,
	/** Fault every page in at creation (MAP_POPULATE), so the first pass
	 *  through the ring takes no page faults. */
	RMPSC_RING_F_PREFAULT = 1u << 1,
	RMPSC_RING_F_ALL = RMPSC_RING_F_HUGEPAGE | RMPSC_RING_F_PREFAULT,
};

/**
 * Ring configuration. Size-prefixed and append-only: fill it with
 * rmpsc_ring_config_init(&cfg, sizeof cfg), then change fields.
 */
typedef struct rmpsc_ring_config {
	uint32_t size;      /**< caller's sizeof, written by rmpsc_ring_config_init */
	uint32_t flags;     /**< RMPSC_RING_F_* bits; unknown bits are rejected */
	uint32_t capacity;  /**< slots, a power of two, 1..RMPSC_RING_CAPACITY_MAX */
	uint32_t elem_size; /**< bytes per slot, 1..RMPSC_RING_ELEM_SIZE_MAX */
	int32_t numa_node;  /**< RMPSC_NODE_ANY (the kernel's default: pages go to the node of the thread that first touches them) or a node >= 0: the ring's memory is placed there (preferred: a full node falls back) where NUMA is available (ringmpsc/numa.h), recorded only elsewhere */
	uint32_t _pad0;     /**< must be zero */
	/** Slots in the buffer: 0 (the default) for exactly @c capacity, or a
	 *  power of two from @c capacity to RMPSC_RING_CAPACITY_MAX. The ring
	 *  still holds at most @c capacity elements; a larger buffer spreads
	 *  the producer's writes over more memory, so that in streaming use it
	 *  rarely writes a cache line the consumer has just read (which then
	 *  has to be taken back from the consumer's cache). DPDK's
	 *  RING_F_EXACT_SZ rings do the same with a buffer of twice the
	 *  capacity. Not part of a struct whose size is
	 *  RMPSC_RING_CONFIG_SIZE_V1 (it then takes the default). */
	uint32_t slots;
	uint32_t _pad1;     /**< must be zero */
} rmpsc_ring_config;

/**
 * Write the defaults (capacity 1024, elem_size 8, numa_node RMPSC_NODE_ANY,
 * flags 0) into at most @p size bytes of @p cfg and record @p size.
 *
 * @param cfg  the struct to fill.
 * @param size the caller's sizeof(rmpsc_ring_config).
 * @return 0; -EINVAL if @p cfg is NULL or @p size is smaller than
 *         RMPSC_RING_CONFIG_SIZE_V1 or not a multiple of 8; -E2BIG: @p size
 *         above 4096 (no config grows past a page; rmpsc_ring_create()
 *         would refuse it too). Nothing is written on error.
 * Concurrency: any thread. Progress: wait-free. Ordering: none.
 */
RMPSC_API int rmpsc_ring_config_init(rmpsc_ring_config *cfg, uint32_t size);

/**
 * Create a ring. The slots and indices live in one mapping whose data area is
 * cache-line aligned; producer-written and consumer-written indices sit in
 * separate 128-byte regions.
 *
 * @param cfg a config filled by rmpsc_ring_config_init and then edited.
 * @param out receives the handle; set to NULL on any error.
 * @return 0;
 *  -EINVAL: @p cfg or @p out NULL, cfg->size too small or not a multiple of 8,
 *           capacity not a power of two or above the maximum, elem_size 0 or
 *           above the maximum, unknown flag bits, numa_node below -1 (or, where
 *           NUMA is available, not below rmpsc_numa_node_count()), slots
 *           not 0 and not a power of two between capacity and the maximum,
 *           _pad0 or _pad1 not zero;
 *  -E2BIG: cfg->size larger than this library knows and the extra bytes are
 *          not zero, or cfg->size above 4096 (no config grows past a page);
 *  -ENOMEM: the memory could not be mapped (or no huge pages were free with
 *           RMPSC_RING_F_HUGEPAGE).
 * Concurrency: any thread. Progress: blocking (allocates). Ordering: none.
 */
RMPSC_API int rmpsc_ring_create(const rmpsc_ring_config *cfg, rmpsc_ring **out);

/**
 * Release a ring and its memory. Accepts NULL. The ring's memory is
 * unmapped: any later call with @p r, a second destroy included, is
 * undefined behaviour and typically dies with SIGSEGV (common.h).
 *
 * Concurrency: no other call on @p r may run or follow. Progress: blocking
 *   (unmaps memory). Ordering: none.
 */
RMPSC_API void rmpsc_ring_destroy(rmpsc_ring *r);

/* ------------------------------------------------------------------------ */
/* Producer                                                                 */
/* ------------------------------------------------------------------------ */

/**
 * Reserve up to @p n free slots for writing in place. @p out describes them
 * (two segments when they wrap). Nothing is visible to the consumer until
 * rmpsc_ring_commit(). A successful reserve (n == 0 included), or a push that
 * stores anything, replaces an earlier reservation that was not committed; a
 * reserve or push that fails leaves it in place.
 *
 * @param r   the ring.
 * @param n   slots wanted; 0 returns 0 and leaves @p out empty.
 * @param out receives the span (written on success).
 * @return slots reserved, 1..min(n, free);
 *  -EAGAIN: the ring is full;
 *  -EPIPE: the ring is closed;
 *  -EINVAL: @p out is NULL;
 *  -EBADF: @p r is not a ring.
 * Concurrency: the producer thread. Progress: wait-free (see the file
 *  comment for a call racing a close).
 * Ordering: the slots' previous contents were fully consumed (acquire of the
 *   consumer's advance).
 */
RMPSC_API int rmpsc_ring_reserve(rmpsc_ring *r, uint32_t n, rmpsc_span *out);

/**
 * Reserve exactly @p n free slots, or none.
 *
 * @return @p n (0 when @p n is 0);
 *  -EAGAIN: fewer than @p n slots are free;
 *  -EPIPE: the ring is closed;
 *  -EINVAL: @p out is NULL or @p n exceeds the capacity (it could never
 *           succeed);
 *  -EBADF: @p r is not a ring.
 * Concurrency: the producer thread. Progress: wait-free (see the file
 *  comment for a call racing a close).
 * Ordering: as rmpsc_ring_reserve().
 */
RMPSC_API int rmpsc_ring_reserve_exact(rmpsc_ring *r, uint32_t n, rmpsc_span *out);

/**
 * Publish the first @p n slots of the current reservation. A partial commit
 * leaves the rest reserved (at the new write position) for a later commit.
 *
 * @param n slots to publish; 0 publishes nothing.
 * @return 0;
 *  -EINVAL: @p n is more than is reserved and uncommitted (nothing changes);
 *  -EPIPE: the ring is closed (for n > 0: it was closed after the reserve;
 *          nothing is delivered and the reservation is gone);
 *  -EBADF: @p r is not a ring.
 * Concurrency: the producer thread. Progress: wait-free (see the file
 *  comment for a call racing a close).
 * Ordering: release; the writes into the slots happen-before the consumer
 *   call that sees them.
 */
RMPSC_API int rmpsc_ring_commit(rmpsc_ring *r, uint32_t n);

/**
 * Copy one element in (try push).
 *
 * @param item elem_size bytes to copy.
 * @return 0;
 *  -EAGAIN: the ring is full;
 *  -EPIPE: the ring is closed;
 *  -EINVAL: @p item is NULL;
 *  -EBADF: @p r is not a ring.
 * Concurrency: the producer thread. Progress: wait-free (see the file
 *  comment for a call racing a close).
 * Ordering: release, as rmpsc_ring_commit().
 */
RMPSC_API int rmpsc_ring_push(rmpsc_ring *r, const void *item);

/**
 * Copy up to @p n elements in (best effort, one index publication).
 *
 * @param items n * elem_size bytes.
 * @return elements pushed, 1..n (0 when @p n is 0);
 *  -EAGAIN: the ring is full;
 *  -EPIPE: the ring is closed;
 *  -EINVAL: @p items is NULL and @p n is not 0;
 *  -EBADF: @p r is not a ring.
 * Concurrency: the producer thread. Progress: wait-free (see the file
 *  comment for a call racing a close).
 * Ordering: release, as rmpsc_ring_commit().
 */
RMPSC_API int rmpsc_ring_push_n(rmpsc_ring *r, const void *items, uint32_t n);

/**
 * Copy exactly @p n elements in, or none.
 *
 * @return @p n;
 *  -EAGAIN: fewer than @p n slots are free;
 *  -EPIPE: the ring is closed;
 *  -EINVAL: @p items is NULL and @p n is not 0, or @p n exceeds the capacity;
 *  -EBADF: @p r is not a ring.
 * Concurrency: the producer thread. Progress: wait-free (see the file
 *  comment for a call racing a close).
 * Ordering: release, as rmpsc_ring_commit().
 */
RMPSC_API int rmpsc_ring_push_n_exact(rmpsc_ring *r, const void *items, uint32_t n);

/* ------------------------------------------------------------------------ */
/* Consumer                                                                 */
/* ------------------------------------------------------------------------ */

/**
 * Describe up to @p n committed elements for reading in place (two segments
 * when they wrap). They stay in the ring until rmpsc_ring_advance().
 *
 * @param n   elements wanted at most; 0 returns 0 and leaves @p out empty.
 * @param out receives the span (written on success, untouched on error).
 * @return elements readable, 1..n;
 *  -EAGAIN: the ring is empty;
 *  -EPIPE: the ring is empty and closed;
 *  -EINVAL: @p out is NULL;
 *  -EINVAL / -EBUSY: consumer locked out (file comment); -EBADF: @p r is not a ring.
 * Concurrency: the consumer thread. Progress: wait-free.
 * Ordering: acquire; pairs with the producer's commit/push.
 */
RMPSC_API int rmpsc_ring_readable(rmpsc_ring *r, uint32_t n, rmpsc_span *out);

/**
 * Release the first @p n committed elements back to the producer.
 *
 * @param n elements to release; 0 is a no-op.
 * @return 0;
 *  -EINVAL: @p n is more than is committed and unread (nothing changes);
 *  -EINVAL / -EBUSY: consumer locked out (file comment); -EBADF: @p r is not a ring.
 * Concurrency: the consumer thread. Progress: wait-free.
 * Ordering: release; the consumer's reads of those slots happen-before the
 *   producer reuses them.
 */
RMPSC_API int rmpsc_ring_advance(rmpsc_ring *r, uint32_t n);

/**
 * Copy one element out and release its slot (try pop; on rings of
 * capacity 1024 or more the release is batched, see "Release batching").
 *
 * @param item receives elem_size bytes.
 * @return 0;
 *  -EAGAIN: the ring is empty;
 *  -EPIPE: the ring is empty and closed;
 *  -EINVAL: @p item is NULL;
 *  -EINVAL / -EBUSY: consumer locked out (file comment); -EBADF: @p r is not a ring.
 * Concurrency: the consumer thread. Progress: wait-free.
 * Ordering: acquire then release, as readable + advance.
 */
RMPSC_API int rmpsc_ring_pop(rmpsc_ring *r, void *item);

/**
 * Copy up to @p n elements out and release their slots (best effort).
 *
 * @param items receives up to n * elem_size bytes.
 * @return elements popped, 1..n (0 when @p n is 0);
 *  -EAGAIN: the ring is empty;
 *  -EPIPE: the ring is empty and closed;
 *  -EINVAL: @p items is NULL and @p n is not 0;
 *  -EINVAL / -EBUSY: consumer locked out (file comment); -EBADF: @p r is not a ring.
 * Concurrency: the consumer thread. Progress: wait-free.
 * Ordering: acquire then release, as readable + advance.
 */
RMPSC_API int rmpsc_ring_pop_n(rmpsc_ring *r, void *items, uint32_t n);

/**
 * Copy exactly @p n elements out, or none. After close, a tail of fewer than
 * @p n elements still returns -EAGAIN (-EPIPE means "closed and drained"):
 * read it with rmpsc_ring_pop_n().
 *
 * @return @p n;
 *  -EAGAIN: fewer than @p n elements are committed;
 *  -EPIPE: the ring is empty and closed;
 *  -EINVAL: @p items is NULL and @p n is not 0, or @p n exceeds the capacity;
 *  -EINVAL / -EBUSY: consumer locked out (file comment); -EBADF: @p r is not a ring.
 * Concurrency: the consumer thread. Progress: wait-free.
 * Ordering: acquire then release, as readable + advance.
 */
RMPSC_API int rmpsc_ring_pop_n_exact(rmpsc_ring *r, void *items, uint32_t n);

/**
 * Copy the next element out without consuming it.
 *
 * @return 0; -EAGAIN: empty; -EPIPE: empty and closed; -EINVAL: @p item is
 *  NULL; -EINVAL / -EBUSY: consumer locked out (file comment); -EBADF: @p r is not a
 *  ring.
 * Concurrency: the consumer thread. Progress: wait-free. Ordering: acquire.
 */
RMPSC_API int rmpsc_ring_peek(rmpsc_ring *r, void *item);

/**
 * Copy up to @p n of the next elements out without consuming them.
 *
 * @return elements copied, 1..n (0 when @p n is 0); -EAGAIN: empty;
 *  -EPIPE: empty and closed; -EINVAL: @p items is NULL and @p n is not 0;
 *  -EINVAL / -EBUSY: consumer locked out (file comment); -EBADF: @p r is not a ring.
 * Concurrency: the consumer thread. Progress: wait-free. Ordering: acquire.
 */
RMPSC_API int rmpsc_ring_peek_n(rmpsc_ring *r, void *items, uint32_t n);

/**
 * Discard up to @p n elements without copying them.
 *
 * @return elements discarded, 1..n (0 when @p n is 0); -EAGAIN: empty;
 *  -EPIPE: empty and closed; -EINVAL / -EBUSY: consumer locked out (file comment);
 *  -EBADF: @p r is not a ring.
 * Concurrency: the consumer thread. Progress: wait-free.
 * Ordering: acquire then release.
 */
RMPSC_API int rmpsc_ring_skip(rmpsc_ring *r, uint32_t n);

/**
 * Copy out everything committed, re-reading the producer's position until
 * the ring is seen empty or @p max elements were taken. With @p items NULL
 * the elements are discarded (count-only drain). Unlike pop_n, an empty ring
 * is not an error: the call returns 0, which makes it the call for shutdown.
 *
 * @param items receives up to max * elem_size bytes, or NULL to discard.
 * @param max   elements at most (values above INT32_MAX count as INT32_MAX,
 *              the largest count an int return can carry).
 * @return elements drained, 0..max; -EINVAL / -EBUSY: consumer locked out (file
 *  comment); -EBADF: @p r is not a ring.
 * Concurrency: the consumer thread. Progress: wait-free (bounded by @p max).
 * Ordering: acquire then release.
 */
RMPSC_API int rmpsc_ring_drain(rmpsc_ring *r, void *items, uint32_t max);

/* ------------------------------------------------------------------------ */
/* Borrowed reads with out-of-order commit                                  */
/* ------------------------------------------------------------------------ */

/*
 * A borrow is a zero-copy read that hands out a token instead of being
 * released in order: the consumer may borrow several runs, work on them
 * (on other threads, for as long as it likes) and commit their tokens in
 * any order; the ring only releases a run to the producer once it and every
 * run borrowed before it are committed (borrow A, B, C; commit B, then C:
 * nothing is released; commit A: all three are). While any borrow is
 * outstanding, the other consumer calls (pop*, peek*, readable, advance,
 * skip, drain and their _timed twins) return -EINVAL: an element is either
 * borrowed or read the ordinary way, never both. The borrow calls are the
 * consumer's: one thread at a time, like every consumer call (the elements
 * themselves may be read by any thread until their token is committed).
 */

/**
 * Borrow up to @p n committed elements after those already borrowed, as
 * one contiguous run (it stops at the end of the buffer).
 *
 * @param out receives the view and its token (written on success).
 * @return elements borrowed, 1..n (0 when @p n is 0);
 *  -EAGAIN: nothing beyond what is borrowed (commit tokens, or wait);
 *  -EPIPE: closed, drained and no borrow outstanding;
 *  -ENOMEM: the first borrow on this ring could not allocate its table
 *           (4 bytes per slot);
 *  -EINVAL: @p out is NULL; -EBUSY: called from a handler on this ring (file comment);
 *  -EBADF: @p r is not a ring.
 * Concurrency: the consumer thread. Progress: wait-free (the first call
 *   allocates). Ordering: acquire; pairs with the producer's publication.
 */
RMPSC_API int rmpsc_ring_borrow(rmpsc_ring *r, uint32_t n, rmpsc_borrow *out);

/**
 * Give a borrow back. Releases to the producer every run up to the first
 * one still outstanding.
 *
 * @return 0; -EINVAL: @p token was committed already, was never handed
 *  out by a borrow on this ring (stale or forged), or belongs to another
 *  ring or channel, or to this ring before a reset (rmpsc_borrow); nothing
 *  changes; -EBUSY: called from a handler on this ring (file comment); -EBADF.
 * Concurrency: the consumer thread. Progress: wait-free (proportional to
 *   the runs released). Ordering: release; the reads of the borrowed
 *   elements happen-before the producer reuses their slots.
 */
RMPSC_API int rmpsc_ring_borrow_commit(rmpsc_ring *r, uint64_t token);

/**
 * Give back every outstanding borrow.
 *
 * @return elements released (0 when nothing was borrowed); -EBUSY: called from a
 *  handler on this ring (file comment); -EBADF.
 * Concurrency: the consumer thread. Progress: wait-free. Ordering: release.
 */
RMPSC_API int rmpsc_ring_borrow_commit_all(rmpsc_ring *r);

/**
 * Borrow up to @p n elements, call @p fn on them and commit the borrow when
 * it returns.
 *
 * @return elements handed to @p fn, 1..n (0 when @p n is 0); -EAGAIN;
 *  -EPIPE; -ENOMEM; -EINVAL: @p fn is NULL; -EBUSY: called from a handler on this ring
 *  (file comment); -EBADF.
 * Concurrency: the consumer thread. Progress: as @p fn. Ordering: acquire,
 *   then release after @p fn returns.
 */
RMPSC_API int rmpsc_ring_borrow_fn(rmpsc_ring *r, uint32_t n, rmpsc_borrow_fn fn, void *ctx);

/* ------------------------------------------------------------------------ */
/* Blocking calls, wait strategy, notifier                                  */
/* ------------------------------------------------------------------------ */

/*
 * The _timed calls wait as the strategy @p w says (NULL: the ring's, see
 * rmpsc_ring_set_wait()) for at most @p timeout_ns nanoseconds (negative:
 * no limit; 0: try once, then -ETIMEDOUT). A close from any thread wakes
 * every waiter at once. Each returns, besides its own codes:
 *  -ETIMEDOUT: the time ran out (or, for timeout 0, the try failed);
 *  -EPIPE: closed (for the consumer: closed and everything committed read);
 *  -EINVAL: @p w is not a valid strategy (see rmpsc_wait_validate());
 *  -E2BIG: @p w is larger than this library knows, extra bytes not zero
 *          (or its size is above 4096);
 *  -EINVAL / -EBUSY (the consumer's calls): consumer locked out (file
 *          comment), at once, without waiting;
 *  -EBADF: @p r is not a ring.
 * Signals never end a wait early (no -EINTR). Concurrency: as the try call
 * of the same side. Progress: blocking.
 */

/**
 * Wait until at least one slot is free, then reserve up to @p n, as
 * rmpsc_ring_reserve().
 *
 * @return slots reserved, 1..n (0 at once when @p n is 0 on an open ring;
 *  a closed ring is -EPIPE, as for every producer call); -EINVAL: @p out
 *  is NULL; and the codes of the blocking calls above.
 * Ordering: as rmpsc_ring_reserve().
 */
RMPSC_API int rmpsc_ring_reserve_timed(rmpsc_ring *r, uint32_t n, rmpsc_span *out,
				       int64_t timeout_ns, const rmpsc_wait *w);

/**
 * Wait for a free slot, then push one element.
 *
 * @return 0; -EINVAL: @p item is NULL; and the codes of the blocking calls.
 * Ordering: release, as rmpsc_ring_commit().
 */
RMPSC_API int rmpsc_ring_push_timed(rmpsc_ring *r, const void *item,
				    int64_t timeout_ns, const rmpsc_wait *w);

/**
 * Push all @p n elements, waiting for room as often as needed (like a
 * blocking write(2)). When the time runs out or the ring closes after some
 * were pushed, returns that count; the rest were not pushed.
 *
 * @return elements pushed: @p n, or 1..n-1 when interrupted by timeout or
 *  close after a partial push, 0 when @p n is 0 (on an open ring: a closed
 *  one is -EPIPE first, as for every producer call); -EINVAL: @p items is NULL
 *  and @p n is not 0, or @p n is above INT32_MAX (a count the int return
 *  could not carry; nothing is pushed); -ETIMEDOUT / -EPIPE when nothing
 *  was pushed; and the other codes of the blocking calls.
 * Ordering: release, as rmpsc_ring_commit(), for every batch published.
 */
RMPSC_API int rmpsc_ring_push_n_timed(rmpsc_ring *r, const void *items, uint32_t n,
				      int64_t timeout_ns, const rmpsc_wait *w);

/**
 * Wait until at least one element is committed, then describe up to @p n,
 * as rmpsc_ring_readable().
 *
 * @return elements readable, 1..n (0 at once when @p n is 0); -EINVAL:
 *  @p out is NULL; and the codes of the blocking calls.
 * Ordering: acquire, as rmpsc_ring_readable().
 */
RMPSC_API int rmpsc_ring_readable_timed(rmpsc_ring *r, uint32_t n, rmpsc_span *out,
					int64_t timeout_ns, const rmpsc_wait *w);

/**
 * Wait for an element, then pop it. It releases the slot at once, and
 * publishes first whatever earlier rmpsc_ring_pop() calls held back (see
 * "Release batching").
 *
 * @return 0; -EINVAL: @p item is NULL; and the codes of the blocking calls.
 * Ordering: acquire then release, as rmpsc_ring_pop().
 */
RMPSC_API int rmpsc_ring_pop_timed(rmpsc_ring *r, void *item, int64_t timeout_ns,
				   const rmpsc_wait *w);

/**
 * Wait until at least one element is committed, then pop up to @p n (like a
 * blocking read(2)).
 *
 * @return elements popped, 1..n (0 at once when @p n is 0); -EINVAL:
 *  @p items is NULL and @p n is not 0; and the codes of the blocking calls.
 * Ordering: acquire then release, as rmpsc_ring_pop_n().
 */
RMPSC_API int rmpsc_ring_pop_n_timed(rmpsc_ring *r, void *items, uint32_t n,
				     int64_t timeout_ns, const rmpsc_wait *w);

/**
 * Set the strategy the _timed calls use when they are passed NULL (and that
 * rmpsc_loop_start_ring() copies). NULL restores the default,
 * RMPSC_WAIT_BLOCK with rmpsc_wait_init()'s values. The strategy is copied.
 *
 * @return 0; -EINVAL: @p w is not a valid strategy; -E2BIG: @p w is larger
 *  than this library knows, extra bytes not zero; -EBADF: @p r is not a ring.
 * Concurrency: while no _timed call that uses the ring's strategy runs on
 *  @p r (a data race otherwise). Progress: wait-free. Ordering: none.
 */
RMPSC_API int rmpsc_ring_set_wait(rmpsc_ring *r, const rmpsc_wait *w);

/**
 * Copy the ring's strategy into @p w (up to its size, which the caller sets
 * first, e.g. with rmpsc_wait_init()).
 *
 * @return 0; -EINVAL: @p w is NULL or its size is below
 *  RMPSC_WAIT_CONFIG_SIZE_V1 or not a multiple of 8; -E2BIG: its size is
 *  above 4096; -EBADF.
 * Concurrency: as rmpsc_ring_set_wait(). Progress: wait-free. Ordering: none.
 */
RMPSC_API int rmpsc_ring_get_wait(const rmpsc_ring *r, rmpsc_wait *w);

/**
 * Attach a notifier: from now on every commit and push that publishes
 * elements signals it (coalesced, see notify.h); NULL detaches. A ring has
 * at most one notifier; attaching replaces the previous one.
 *
 * @return 0; -EBADF: @p r is not a ring, or @p n is neither NULL nor a
 *  notifier.
 * Concurrency: any thread. The notifier must stay alive until it is
 *  detached and the producer has made a call after the detach (or has
 *  stopped). Progress: wait-free. Ordering: release; a commit that sees the
 *  new notifier signals it.
 */
RMPSC_API int rmpsc_ring_set_notifier(rmpsc_ring *r, rmpsc_notifier *n);

/* ------------------------------------------------------------------------ */
/* Lifecycle and status                                                     */
/* ------------------------------------------------------------------------ */

/**
 * Close the ring (idempotent), wake every thread blocked in a _timed call
 * on it and signal the attached notifier, if any, so an event loop learns
 * of the close like of data. See the file comment for what it means to each
 * side.
 *
 * @return 0; -EBADF: @p r is not a ring.
 * Concurrency: any thread. Progress: one membarrier(2) system call, then
 *   it waits only for a concurrent close or producer call that is between
 *   the two stores recording the stream's end; then two futex wakes and
 *   the notifier's signal, if one is attached. Not async-signal-safe.
 * Ordering: release; a consumer that sees the ring closed also sees every
 *   commit that happened-before the close.
 */
RMPSC_API int rmpsc_ring_close(rmpsc_ring *r);

/**
 * @return 1 if closed, 0 if open; -EBADF: @p r is not a ring.
 * Concurrency: any thread. Progress: wait-free. Ordering: acquire.
 */
RMPSC_API int rmpsc_ring_is_closed(const rmpsc_ring *r);

/**
 * Committed elements not yet released by the consumer. Exact when called by
 * either side with the other idle and no pop release pending (see "Release
 * batching"); otherwise a snapshot that may be stale but is never more than
 * the ring held at the moment the call read the producer's position.
 *
 * @return 0..capacity; -EBADF: @p r is not a ring.
 * Concurrency: any thread. Progress: wait-free. Ordering: acquire.
 */
RMPSC_API int64_t rmpsc_ring_len(const rmpsc_ring *r);

/**
 * @return 1 if no committed element is pending, else 0; -EBADF. With
 *  both sides running, 1 means the ring was empty at a moment during the
 *  call (a caller waiting for "empty" never stops early); 0 may be stale.
 * Concurrency: any thread. Progress: wait-free. Ordering: acquire.
 */
RMPSC_API int rmpsc_ring_is_empty(const rmpsc_ring *r);

/**
 * @return 1 if every slot holds a committed, unreleased element, else 0;
 *  -EBADF. With both sides running, 1 means the ring was full at a moment
 *  during the call; 0 may be stale.
 * Concurrency: any thread. Progress: wait-free. Ordering: acquire.
 */
RMPSC_API int rmpsc_ring_is_full(const rmpsc_ring *r);

/**
 * @return the capacity (the most elements the ring holds); -EBADF.
 * Concurrency: any thread. Progress: wait-free. Ordering: none.
 */
RMPSC_API int64_t rmpsc_ring_capacity(const rmpsc_ring *r);

/**
 * @return the element size in bytes; -EBADF.
 * Concurrency: any thread. Progress: wait-free. Ordering: none.
 */
RMPSC_API int64_t rmpsc_ring_elem_size(const rmpsc_ring *r);

/**
 * Bytes of memory the ring occupies (control block and slots, rounded to
 * the page or huge page that backs it).
 *
 * @return bytes; -EBADF: @p r is not a ring.
 * Concurrency: any thread. Progress: wait-free. Ordering: none (fixed at
 *   creation).
 */
RMPSC_API int64_t rmpsc_ring_footprint(const rmpsc_ring *r);

/**
 * Empty the ring and reopen it: positions go back to 0, any reservation is
 * dropped, the closed mark is cleared. Not thread-safe: neither side may be
 * inside a call on @p r.
 *
 * @return 0; -EBUSY: a loop consumes the ring, or called from a handler on it; -EBADF:
 *  @p r is not a ring.
 * Concurrency: exclusive. Progress: wait-free.
 * Ordering: none; publish the reset ring to other threads with your own
 *   synchronization (as after creation).
 */
RMPSC_API int rmpsc_ring_reset(rmpsc_ring *r);

#ifdef __cplusplus
}
#endif

#endif /* RINGMPSC_RING_H */
