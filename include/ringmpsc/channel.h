/* SPDX-License-Identifier: MIT */
/**
 * @file ringmpsc/channel.h
 * rmpsc_mpsc: a multi-producer single-consumer channel made of one SPSC
 * ring per producer, so producers never contend with each other: each one
 * pushes into its own ring with the ring's wait-free calls, and the one
 * consumer visits the rings in turn.
 *
 * Producers. rmpsc_mpsc_register() hands out a producer handle
 * (rmpsc_producer) that owns one ring. The handle is used by one thread at
 * a time, with the producer calls below, which behave exactly like the
 * ring's own (reserve/commit, push, push_n, the _timed variants, the same
 * codes). Registration is thread-safe and may happen while traffic flows;
 * the channel grows up to max_producers rings without moving existing ones
 * and without a lock on any producer or consumer fast path (a lock is taken
 * by register/deregister only). rmpsc_producer_deregister() closes the
 * producer's ring: what it committed is still delivered, and once the
 * consumer has drained it the ring is reused by a later registration.
 *
 * Consumer. One thread at a time. Callback calls (consume_all,
 * consume_up_to) hand each run of elements to a handler in place and
 * release them with one head update per ring per batch; count-only consume
 * discards; the callback-free pull calls (pop_n, readable/advance) serve
 * FFI users. Adaptive skip (the round-based calls consume_all,
 * consume_up_to, consume_count): a ring found empty is looked at again after
 * 1, then 2, 4, ... up to 64 rounds, and after the first round with data at
 * once; rmpsc_mpsc_reset_skip() forgets the history. Skipped rings cost
 * nothing, so a consumer with 32 registered producers of which one is busy
 * polls about one ring per message; the price is that a round may return 0
 * while a skipped ring has data (the next rounds find it).
 * RMPSC_MPSC_F_NOSKIP turns it off. The pull calls
 * (pop_n, readable) use the same history to choose where to look first but
 * return -EAGAIN only when every ring is empty, and drain_all ignores it.
 * The blocking consumer calls wait on the whole channel: any producer's
 * commit wakes them, and before sleeping they look at every ring.
 *
 * Re-entry. While a handler the channel calls is running (the @p fn of
 * consume_all, consume_up_to, consume_all_timed, drain_all, borrow_fn),
 * every consumer call on the channel returns -EBUSY (the _timed ones at
 * once): a call from the handler would read or give back the elements
 * being handed to it. Producer calls, registration, close and the status
 * calls work as usual from a handler.
 *
 * Close. rmpsc_mpsc_close() closes every ring and refuses new
 * registrations. Producers get -EPIPE; the consumer gets everything
 * committed before, then -EPIPE (final, as for a ring).
 *
 * Ordering: per producer FIFO; what a producer wrote before a successful
 * commit/push happens-before the consumer call that returns those elements.
 * No order between producers.
 */
#ifndef RINGMPSC_CHANNEL_H
#define RINGMPSC_CHANNEL_H

#include <stdint.h>

#include "common.h"
#include "wait.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Opaque MPSC channel handle. */
typedef struct rmpsc_mpsc rmpsc_mpsc;
/** Opaque producer handle of an MPSC channel. */
typedef struct rmpsc_producer rmpsc_producer;

/** Limits and sizes. */
enum {
	RMPSC_MPSC_PRODUCERS_MAX = 4096,  /**< largest max_producers */
	RMPSC_MPSC_CONFIG_SIZE_V1 = 32,   /**< sizeof(rmpsc_mpsc_config) in 1.0 */
	RMPSC_MPSC_STATS_SIZE_V1 = 112,   /**< sizeof(rmpsc_mpsc_snapshot) in 1.0 */
};

/** Creation flags (rmpsc_mpsc_config.flags). */
enum {
	/** Count messages, batches, reserve failures, wait time and per-batch
	 *  latency (see rmpsc_mpsc_stats()); off, the counters cost nothing. */
	RMPSC_MPSC_F_METRICS = 1u << 0,
	/** Back every ring with explicit huge pages (as RMPSC_RING_F_HUGEPAGE). */
	RMPSC_MPSC_F_HUGEPAGE = 1u << 1,
	/** Fault every ring's pages in when it is created. */
	RMPSC_MPSC_F_PREFAULT = 1u << 2,
	/** No adaptive skip: every round looks at every ring (a round never
	 *  returns 0 while a ring has data, at the price of one poll per
	 *  registered ring per round). */
	RMPSC_MPSC_F_NOSKIP = 1u << 3,
	RMPSC_MPSC_F_ALL = RMPSC_MPSC_F_METRICS | RMPSC_MPSC_F_HUGEPAGE |
			   RMPSC_MPSC_F_PREFAULT | RMPSC_MPSC_F_NOSKIP,
};

/**
 * Channel configuration; size-prefixed and append-only: fill it with
 * rmpsc_mpsc_config_init(&cfg, sizeof cfg), then change fields.
 */
typedef struct rmpsc_mpsc_config {
	uint32_t size;          /**< caller's sizeof, written by rmpsc_mpsc_config_init */
	uint32_t flags;         /**< RMPSC_MPSC_F_* bits; unknown bits are rejected */
	uint32_t elem_size;     /**< bytes per element, 1..RMPSC_RING_ELEM_SIZE_MAX (default 8) */
	uint32_t ring_capacity; /**< elements per producer ring, a power of two (default 1024) */
	uint32_t producers;     /**< rings created up front, 0..max_producers (default 4) */
	uint32_t max_producers; /**< rings at most, 1..RMPSC_MPSC_PRODUCERS_MAX (default 256) */
	int32_t numa_node;      /**< a node >= 0: every producer ring is placed there, as for rings; RMPSC_NODE_ANY: each producer's ring goes to the node of the thread that registers it (its pages move there when the ring existed), where NUMA is available */
	uint32_t _pad0;         /**< must be zero */
} rmpsc_mpsc_config;

/**
 * Channel statistics, a snapshot. Size-prefixed output struct: pass
 * sizeof st to rmpsc_mpsc_stats(), which fills at most that much.
 * The counters marked "metrics" are 0 unless the channel was created with
 * RMPSC_MPSC_F_METRICS.
 */
typedef struct rmpsc_mpsc_snapshot {
	uint32_t size;             /**< caller's sizeof */
	uint32_t producers;        /**< producers registered now */
	uint32_t rings;            /**< rings allocated (registered, closed or reusable) */
	uint32_t closed;           /**< 1 after rmpsc_mpsc_close() */
	uint64_t pending;          /**< elements committed and not consumed, all rings (as _len) */
	uint64_t pending_max;      /**< the fullest ring's pending count (as _ring_len) */
	uint64_t sent;             /**< metrics: elements published by producers */
	uint64_t received;         /**< metrics: elements consumed */
	uint64_t batches_sent;     /**< metrics: publications (commits, pushes) */
	uint64_t batches_received; /**< metrics: per-ring batches consumed */
	uint64_t reserve_failures; /**< metrics: producer calls that found no room */
	uint64_t wait_ns;          /**< metrics: time consumer blocking calls spent waiting */
	uint64_t batch_ns_min;     /**< metrics: shortest consumer batch (handler included), ns */
	uint64_t batch_ns_max;     /**< metrics: longest, ns */
	uint64_t batch_ns_total;   /**< metrics: all batches, ns (average: / batches_received) */
	uint64_t polls;            /**< metrics: ring looks by the consumer (skipped rings not counted) */
} rmpsc_mpsc_snapshot;

/**
 * Consumer handler: @p count consecutive elements from producer
 * @p producer_id start at @p items (ring memory, valid during the call).
 */
typedef void (*rmpsc_mpsc_fn)(void *ctx, uint32_t producer_id, const void *items,
			      uint32_t count);

/**
 * Write the defaults (flags 0, elem_size 8, ring_capacity 1024, producers
 * 4, max_producers 256, numa_node RMPSC_NODE_ANY) into at most @p size
 * bytes of @p cfg and record @p size.
 *
 * @return 0; -EINVAL: @p cfg is NULL or @p size is below
 *  RMPSC_MPSC_CONFIG_SIZE_V1 or not a multiple of 8; -E2BIG: @p size above
 *  4096 (as rmpsc_mpsc_create() refuses it). Nothing is written on error.
 * Concurrency: any thread. Progress: wait-free. Ordering: none.
 */
RMPSC_API int rmpsc_mpsc_config_init(rmpsc_mpsc_config *cfg, uint32_t size);

/**
 * Create a channel and its first @c producers rings.
 *
 * @return 0;
 *  -EINVAL: @p cfg or @p out NULL, bad size, unknown flags, elem_size or
 *           ring_capacity out of range or not a power of two, max_producers
 *           0 or above the maximum, producers above max_producers,
 *           numa_node below -1 (or, where NUMA is available, not below
 *           rmpsc_numa_node_count()), _pad0 not zero;
 *  -E2BIG: cfg->size larger than known with non-zero extra bytes;
 *  -ENOMEM: memory could not be allocated or mapped.
 * Concurrency: any thread. Progress: blocking (allocates). Ordering: none.
 */
RMPSC_API int rmpsc_mpsc_create(const rmpsc_mpsc_config *cfg, rmpsc_mpsc **out);

/**
 * Free the channel and every ring. Accepts NULL. No other call on the
 * channel or any of its producer handles may run or follow: the rings (the
 * producer handles) are unmapped and the channel freed, so such a call is
 * undefined behaviour (common.h).
 *
 * Concurrency: exclusive. Progress: blocking. Ordering: none.
 */
RMPSC_API void rmpsc_mpsc_destroy(rmpsc_mpsc *ch);

/**
 * Register a producer: reuse a drained ring of a deregistered producer,
 * take a free ring made up front, or create one (up to max_producers).
 *
 * @param out receives the handle; set to NULL on error.
 * @return the producer id (>= 0, the ring's index, stable for the handle's
 *  life);
 *  -EINVAL: @p out is NULL; -EBADF: @p ch is not a channel;
 *  -EPIPE: the channel is closed; -ENOSPC: max_producers rings are in use
 *  (a deregistered producer's ring stays in use until the consumer's next
 *  look at it finds it drained);
 *  -ENOMEM: a new ring could not be mapped.
 * Concurrency: any thread, also while others produce and consume.
 * Progress: blocking (a mutex; may allocate). Ordering: the ring is empty
 *   and open when the handle is returned.
 */
RMPSC_API int rmpsc_mpsc_register(rmpsc_mpsc *ch, rmpsc_producer **out);

/**
 * Deregister a producer of an MPSC or MPMC channel: close its ring.
 * Elements it committed are still delivered; afterwards the handle must not
 * be used (a later registration may reuse the ring: MPSC once the
 * consumer drained it, MPMC as rmpsc_mpmc_register_producer() says).
 *
 * @return 0; -EBADF: @p p is not a registered producer.
 * Concurrency: the producer's thread, or any thread once it stopped.
 * Progress: blocking (as rmpsc_ring_close()). Ordering: as rmpsc_ring_close().
 */
RMPSC_API int rmpsc_producer_deregister(rmpsc_producer *p);

/**
 * rmpsc_producer_deregister() under its first name, kept so that code
 * written against it builds and links unchanged: the same call, for MPSC
 * and MPMC producers alike.
 */
RMPSC_API int rmpsc_mpsc_deregister(rmpsc_producer *p);

/**
 * @return the producer's id (>= 0); -EBADF: @p p is not a producer.
 * Concurrency: any thread. Progress: wait-free. Ordering: none.
 */
RMPSC_API int rmpsc_producer_id(const rmpsc_producer *p);

/* ---- producer calls: as the rmpsc_ring_ calls of the same name ---------- */
/* (Wait-free as those are: except for a call racing a close of its ring,
 * see the file comment of ring.h.) */

/** As rmpsc_ring_reserve(); -EBADF: @p p is not a producer. Concurrency:
 *  the producer's thread. Progress: wait-free. Ordering: as the ring's. */
RMPSC_API int rmpsc_producer_reserve(rmpsc_producer *p, uint32_t n, rmpsc_span *out);
/** As rmpsc_ring_commit(); -EBADF. Concurrency: the producer's thread.
 *  Progress: wait-free. Ordering: release, as the ring's. */
RMPSC_API int rmpsc_producer_commit(rmpsc_producer *p, uint32_t n);
/** As rmpsc_ring_push(); -EBADF. Concurrency: the producer's thread.
 *  Progress: wait-free. Ordering: release. */
RMPSC_API int rmpsc_producer_push(rmpsc_producer *p, const void *item);
/** As rmpsc_ring_push_n(); -EBADF. Concurrency: the producer's thread.
 *  Progress: wait-free. Ordering: release. */
RMPSC_API int rmpsc_producer_push_n(rmpsc_producer *p, const void *items, uint32_t n);
/** As rmpsc_ring_reserve_timed(); -EBADF. Concurrency: the producer's
 *  thread. Progress: blocking. Ordering: as the ring's. */
RMPSC_API int rmpsc_producer_reserve_timed(rmpsc_producer *p, uint32_t n, rmpsc_span *out,
					   int64_t timeout_ns, const rmpsc_wait *w);
/** As rmpsc_ring_push_timed(); -EBADF. Concurrency: the producer's thread.
 *  Progress: blocking. Ordering: release. */
RMPSC_API int rmpsc_producer_push_timed(rmpsc_producer *p, const void *item,
					int64_t timeout_ns, const rmpsc_wait *w);
/** As rmpsc_ring_push_n_timed(); -EBADF. Concurrency: the producer's
 *  thread. Progress: blocking. Ordering: release. */
RMPSC_API int rmpsc_producer_push_n_timed(rmpsc_producer *p, const void *items, uint32_t n,
					  int64_t timeout_ns, const rmpsc_wait *w);
/**
 * Elements committed by this producer and not yet consumed.
 *
 * @return 0..ring_capacity; -EBADF. Concurrency: any thread.
 * Progress: wait-free. Ordering: acquire.
 */
RMPSC_API int64_t rmpsc_producer_len(const rmpsc_producer *p);

/* ---- consumer ------------------------------------------------------------ */

/**
 * One round over the rings (adaptive skip applies): hand every ring's
 * committed elements to @p fn, in place, up to two segments per ring, then
 * release them with one head update per ring.
 *
 * @return elements consumed (0: nothing in the rings looked at this round);
 *  -EPIPE: closed and everything consumed; -EINVAL: @p fn is NULL; -EBUSY: called from
 *  a handler of this channel (file comment); -EBADF.
 * Concurrency: the consumer thread. Progress: wait-free (one round).
 * Ordering: acquire per ring, then release.
 */
RMPSC_API int64_t rmpsc_mpsc_consume_all(rmpsc_mpsc *ch, rmpsc_mpsc_fn fn, void *ctx);

/**
 * As rmpsc_mpsc_consume_all(), stopping after @p max elements (later rings
 * are served first next time).
 *
 * @return elements consumed, 0..max; -EPIPE; -EINVAL: @p fn NULL; -EBUSY: called from a
 *  handler of this channel (file comment); -EBADF.
 * Concurrency: the consumer thread. Progress: wait-free.
 * Ordering: as consume_all.
 */
RMPSC_API int64_t rmpsc_mpsc_consume_up_to(rmpsc_mpsc *ch, uint64_t max, rmpsc_mpsc_fn fn,
					   void *ctx);

/**
 * Count-only consume: discard up to @p max committed elements (one round,
 * adaptive skip applies) without calling anything.
 *
 * @return elements discarded; -EPIPE; -EBUSY: called from a handler of this channel
 *  (file comment); -EBADF.
 * Concurrency: the consumer thread. Progress: wait-free.
 * Ordering: acquire then release.
 */
RMPSC_API int64_t rmpsc_mpsc_consume_count(rmpsc_mpsc *ch, uint64_t max);

/**
 * Block until at least one element is there, then consume as
 * rmpsc_mpsc_consume_all(). See ring.h for @p timeout_ns and @p w (NULL:
 * the channel's strategy, RMPSC_WAIT_BLOCK).
 *
 * @return elements consumed (>= 1); -ETIMEDOUT; -EPIPE; -EINVAL: @p fn NULL
 *  or @p w invalid; -E2BIG: @p w too large with non-zero extra bytes; -EBUSY: called
 *  from a handler of this channel (file comment); -EBADF.
 * Concurrency: the consumer thread. Progress: blocking.
 * Ordering: as consume_all.
 */
RMPSC_API int64_t rmpsc_mpsc_consume_all_timed(rmpsc_mpsc *ch, rmpsc_mpsc_fn fn, void *ctx,
					       int64_t timeout_ns, const rmpsc_wait *w);

/**
 * Forget the adaptive-skip history: every ring is looked at next round.
 *
 * @return 0; -EBUSY: called from a handler of this channel (file comment); -EBADF.
 *  Concurrency: the consumer thread. Progress: wait-free.
 * Ordering: none.
 */
RMPSC_API int rmpsc_mpsc_reset_skip(rmpsc_mpsc *ch);

/**
 * Copy one element out and release its slot: from the ring the consumer
 * took from last while it has data (at most 64 in a row, then the next
 * ring's turn), else from the next ring that has one. Callback-free. The
 * release is batched as rmpsc_ring_pop()'s on rings of capacity 1024 or
 * more (ring.h, "Release batching"); the consumer's next look at a ring
 * that it finds empty, and every other consumer call on it, publishes it.
 *
 * @param item   receives elem_size bytes.
 * @param producer_id receives the producer id (may be NULL).
 * @return 0; -EAGAIN: every ring is empty; -EPIPE: closed and drained;
 *  -EINVAL: @p item NULL; -EBUSY: called from a handler of this channel (file comment);
 *  -EBADF. Concurrency: the consumer thread.
 * Progress: wait-free. Ordering: acquire then release.
 */
RMPSC_API int rmpsc_mpsc_pop(rmpsc_mpsc *ch, void *item, uint32_t *producer_id);

/**
 * Copy up to @p n elements out, taking from the rings in turn (one round),
 * and release them. Callback-free. At most INT32_MAX elements are taken
 * (an @p n above it counts as INT32_MAX: the count is returned as int).
 *
 * @return elements copied, 1..min(n, INT32_MAX) (0 when @p n is 0);
 *  -EAGAIN: nothing there; -EPIPE: closed and drained; -EINVAL: @p items
 *  NULL and n not 0; -EBUSY: called from a handler of this channel (file comment);
 *  -EBADF. Concurrency: the consumer thread. Progress: wait-free.
 * Ordering: acquire then release, per ring.
 */
RMPSC_API int rmpsc_mpsc_pop_n(rmpsc_mpsc *ch, void *items, uint32_t n);

/**
 * Blocking rmpsc_mpsc_pop_n(): waits for at least one element.
 *
 * @return as rmpsc_mpsc_pop_n(), with -ETIMEDOUT instead of -EAGAIN, and
 *  -EINVAL / -E2BIG for a bad @p w. Concurrency: the consumer thread.
 * Progress: blocking. Ordering: as pop_n.
 */
RMPSC_API int rmpsc_mpsc_pop_n_timed(rmpsc_mpsc *ch, void *items, uint32_t n,
				     int64_t timeout_ns, const rmpsc_wait *w);

/**
 * Zero-copy pull: describe up to @p n committed elements of the next ring
 * that has some (rings in turn) and say whose they are. Release them with
 * rmpsc_mpsc_advance(); until then the same ring's span is returned again.
 *
 * @param producer_id receives the producer id (may be NULL).
 * @return elements readable, 1..n (0 when @p n is 0); -EAGAIN; -EPIPE;
 *  -EINVAL: @p out NULL; -EBUSY: called from a handler of this channel (file comment);
 *  -EBADF. Concurrency: the consumer thread.
 * Progress: wait-free. Ordering: acquire.
 */
RMPSC_API int rmpsc_mpsc_readable(rmpsc_mpsc *ch, uint32_t n, rmpsc_span *out,
				  uint32_t *producer_id);

/**
 * Blocking rmpsc_mpsc_readable().
 *
 * @return as rmpsc_mpsc_readable(), with -ETIMEDOUT instead of -EAGAIN, and
 *  -EINVAL / -E2BIG for a bad @p w. Concurrency: the consumer thread.
 * Progress: blocking. Ordering: acquire.
 */
RMPSC_API int rmpsc_mpsc_readable_timed(rmpsc_mpsc *ch, uint32_t n, rmpsc_span *out,
					uint32_t *producer_id, int64_t timeout_ns,
					const rmpsc_wait *w);

/**
 * Release the first @p n elements of the span the last readable call
 * returned. Any other consumer call in between that takes or borrows
 * elements, and drain_all, drops that span (its elements stay in the ring
 * and are delivered again), and advance then returns -EINVAL.
 *
 * @return 0; -EINVAL: no readable span is outstanding, or @p n is more than
 *  it holds; -EBUSY: called from a handler of this channel (file comment); -EBADF.
 *  Concurrency: the consumer thread. Progress: wait-free.
 * Ordering: release.
 */
RMPSC_API int rmpsc_mpsc_advance(rmpsc_mpsc *ch, uint32_t n);

/**
 * Borrow up to @p n committed elements of the next ring that has elements
 * beyond those already borrowed, as rmpsc_ring_borrow() does for a ring:
 * tokens may be committed in any order, and each ring releases a run once
 * it and the earlier runs of that ring are committed. While a ring has
 * borrows outstanding, the other consumer calls leave that ring alone (they
 * take from the others).
 *
 * @param producer_id receives the producer id (may be NULL).
 * @return elements borrowed, 1..n (0 when @p n is 0); -EAGAIN; -EPIPE:
 *  closed, drained, nothing borrowed; -ENOMEM: a ring's first borrow could
 *  not allocate its table; -EINVAL: @p out NULL; -EBUSY: called from a handler of this
 *  channel (file comment); -EBADF.
 * Concurrency: the consumer thread. Progress: wait-free.
 * Ordering: acquire.
 */
RMPSC_API int rmpsc_mpsc_borrow(rmpsc_mpsc *ch, uint32_t n, rmpsc_borrow *out,
				uint32_t *producer_id);

/**
 * Give a borrow back (see rmpsc_mpsc_borrow()). The token names its ring.
 *
 * @return 0; -EINVAL: stale, forged or already committed token, or one of
 *  another channel or ring, or of this ring before a new producer reused
 *  it (rmpsc_borrow); nothing changes; -EBUSY: called from a handler of this channel
 *  (file comment); -EBADF.
 * Concurrency: the consumer thread. Progress: wait-free. Ordering: release.
 */
RMPSC_API int rmpsc_mpsc_borrow_commit(rmpsc_mpsc *ch, uint64_t token);

/**
 * Give back every outstanding borrow of every ring.
 *
 * @return elements released; -EBUSY: called from a handler of this channel (file
 *  comment); -EBADF. Concurrency: the consumer thread.
 * Progress: wait-free. Ordering: release.
 */
RMPSC_API int64_t rmpsc_mpsc_borrow_commit_all(rmpsc_mpsc *ch);

/**
 * Borrow (as rmpsc_mpsc_borrow()), call @p fn, commit when it returns.
 *
 * @return elements handed to @p fn; -EAGAIN; -EPIPE; -ENOMEM; -EINVAL:
 *  @p fn NULL; -EBUSY: called from a handler of this channel (file comment); -EBADF.
 *  Concurrency: the consumer thread. Progress: as @p fn.
 * Ordering: acquire, then release.
 */
RMPSC_API int rmpsc_mpsc_borrow_fn(rmpsc_mpsc *ch, uint32_t n, rmpsc_mpsc_fn fn, void *ctx);

/**
 * Close the channel: close every producer ring and refuse registrations.
 * Idempotent.
 *
 * @return 0; -EBADF. Concurrency: any thread. Progress: blocking (as
 *  rmpsc_ring_close(), once per ring). Ordering: as rmpsc_ring_close().
 */
RMPSC_API int rmpsc_mpsc_close(rmpsc_mpsc *ch);

/**
 * Consume everything committed, ignoring adaptive skip, until every ring is
 * empty; with @p fn NULL the elements are discarded. The call for shutdown.
 * A span from rmpsc_mpsc_readable() that was not advanced is dropped: its
 * elements are still in their ring and go to @p fn like the rest.
 *
 * @return elements consumed (0 when there were none); -EBUSY: called from a
 *  handler of this channel (file comment); -EBADF.
 * Concurrency: the consumer thread. Progress: lock-free, not wait-free: it
 *  returns at the first round that finds every ring empty, so producers
 *  that keep publishing (a handler that pushes into the channel included)
 *  keep it going. Ordering: as consume_all.
 */
RMPSC_API int64_t rmpsc_mpsc_drain_all(rmpsc_mpsc *ch, rmpsc_mpsc_fn fn, void *ctx);

/**
 * @return 1 if the channel is closed and every ring's stream has ended and
 *  was consumed (true at a moment during the call: after a 1, every
 *  consumer call that takes elements reports -EPIPE and drain_all finds
 *  nothing), else 0; -EBADF. Elements
 *  rmpsc_mpsc_pop() took and has not released yet (its release batching)
 *  still count, here, in the len calls, in the stats' pending figures and
 *  for rmpsc_mpsc_hottest(), until the consumer's next call that looks at
 *  their ring; a consumer that stops right after taking the last element
 *  leaves them counted.
 * Concurrency: any thread. Progress: wait-free. Ordering: acquire.
 */
RMPSC_API int rmpsc_mpsc_is_drained(const rmpsc_mpsc *ch);

/**
 * @return 1 after rmpsc_mpsc_close(), else 0; -EBADF.
 * Concurrency: any thread. Progress: wait-free. Ordering: acquire.
 */
RMPSC_API int rmpsc_mpsc_is_closed(const rmpsc_mpsc *ch);

/**
 * Elements committed and not consumed, over all rings. A snapshot: it may
 * be stale, and it never counts more than a ring held at the moment it was
 * read (each ring is read in turn, as rmpsc_ring_len() reads a ring), even
 * while rings are handed from one producer to the next.
 *
 * @return the count; -EBADF. Concurrency: any thread. Progress: wait-free.
 * Ordering: acquire.
 */
RMPSC_API int64_t rmpsc_mpsc_len(const rmpsc_mpsc *ch);

/**
 * The channel's element size in bytes (its config's elem_size).
 * @return the size (> 0); -EBADF. Concurrency: any thread.
 * Progress: wait-free. Ordering: none.
 */
RMPSC_API int64_t rmpsc_mpsc_elem_size(const rmpsc_mpsc *ch);

/**
 * Pending elements of the ring of producer @p id (registered or not), a
 * snapshot as rmpsc_mpsc_len()'s.
 *
 * @return 0..ring_capacity; -ENOENT: no ring has that id; -EBADF.
 * Concurrency: any thread. Progress: wait-free. Ordering: acquire.
 */
RMPSC_API int64_t rmpsc_mpsc_ring_len(const rmpsc_mpsc *ch, uint32_t id);

/**
 * The id of the ring with the most pending elements.
 *
 * @return an id (>= 0); -EAGAIN: every ring is empty; -EBADF.
 * Concurrency: any thread. Progress: wait-free (one pass over the rings).
 * Ordering: acquire.
 */
RMPSC_API int rmpsc_mpsc_hottest(const rmpsc_mpsc *ch);

/**
 * Snapshot the statistics into @p st: at most @p size bytes (the caller's
 * sizeof), zeros past what this library knows, and st->size set to @p size.
 *
 * @return 0; -EINVAL: @p st NULL, @p size below RMPSC_MPSC_STATS_SIZE_V1 or
 *  not a multiple of 8; -E2BIG: @p size above 4096; -EBADF. Concurrency: any thread (the producer and
 *  consumer counters are each written by one thread and read relaxed: a
 *  snapshot). Progress: wait-free. Ordering: acquire for pending counts.
 */
RMPSC_API int rmpsc_mpsc_stats(const rmpsc_mpsc *ch, rmpsc_mpsc_snapshot *st, uint32_t size);

/**
 * Set the strategy the consumer's _timed calls use when passed NULL.
 *
 * @return 0; -EINVAL / -E2BIG: @p w invalid; -EBADF.
 * Concurrency: while no consumer _timed call runs. Progress: wait-free.
 * Ordering: none.
 */
RMPSC_API int rmpsc_mpsc_set_wait(rmpsc_mpsc *ch, const rmpsc_wait *w);

/* ======================================================================== */
/* SPMC and MPMC: consumers that claim                                      */
/* ======================================================================== */

/*
 * rmpsc_spmc: one ring, one producer, any number of consumers.
 * rmpsc_mpmc: one ring per producer (as MPSC), any number of consumers.
 *
 * Consumers are registered (rmpsc_spmc_register_consumer(),
 * rmpsc_mpmc_register_consumer()) and then call the rmpsc_consumer_ calls
 * from their own thread, each handle from one thread at a time. A consumer
 * claims a run of elements with a compare-and-swap on the ring's claim
 * index, reads them (copies them out, or hands them to a handler in place)
 * and marks the run done, in any order: the producer reuses slots in order,
 * collecting the runs marked done when it needs room, and nobody waits for
 * anyone. So a preempted consumer delays the reuse of the slots it holds,
 * never the other consumers' progress. Each element goes to exactly one
 * consumer; per producer, the elements a consumer gets are in order, but
 * two consumers' elements interleave in no defined order.
 *
 * MPMC consumers steal in three phases: first the rings of their own shard
 * (ring id modulo the number of consumers registered when they registered),
 * then the ring with the most pending elements, then rings in a
 * pseudo-random order, so every ring is served even when its shard's
 * consumer is gone.
 *
 * Producer side: the SPMC channel's producer calls take the channel handle
 * (rmpsc_spmc_push and friends, one producer thread at a time); MPMC
 * producers register like MPSC producers and use the rmpsc_producer_ calls.
 *
 * Close: producers get -EPIPE; consumers get every element published
 * before, then -EPIPE (final).
 */

/** Opaque SPMC and MPMC channel handles, and their consumer handle. */
typedef struct rmpsc_spmc rmpsc_spmc;
typedef struct rmpsc_mpmc rmpsc_mpmc;
typedef struct rmpsc_consumer rmpsc_consumer;

enum {
	RMPSC_CONSUMERS_MAX = 1024,      /**< largest max_consumers */
	RMPSC_MC_CONFIG_SIZE_V1 = 32,    /**< sizeof(rmpsc_mc_config) in 1.0 */
};

/**
 * SPMC / MPMC configuration (size-prefixed, append-only; fill with
 * rmpsc_mc_config_init()). For SPMC, @c ring_capacity is the ring's and
 * @c producers / @c max_producers must be 1.
 */
typedef struct rmpsc_mc_config {
	uint32_t size;          /**< caller's sizeof */
	uint32_t flags;         /**< RMPSC_MPSC_F_HUGEPAGE / _PREFAULT; others rejected */
	uint32_t elem_size;     /**< 1..RMPSC_RING_ELEM_SIZE_MAX (default 8) */
	uint32_t ring_capacity; /**< a power of two (default 1024) */
	uint32_t producers;     /**< MPMC: rings made up front (default 4; SPMC: 1) */
	uint32_t max_producers; /**< MPMC: 1..RMPSC_MPSC_PRODUCERS_MAX (default 256; SPMC: 1) */
	uint32_t max_consumers; /**< 1..RMPSC_CONSUMERS_MAX (default 64) */
	int32_t numa_node;      /**< as rmpsc_mpsc_config's: a node for every ring, or (RMPSC_NODE_ANY) the registering thread's */
} rmpsc_mc_config;

/**
 * Write the defaults into at most @p size bytes of @p cfg; @p spmc selects
 * the SPMC defaults (producers = max_producers = 1).
 *
 * @return 0; -EINVAL: @p cfg NULL, @p size below RMPSC_MC_CONFIG_SIZE_V1 or
 *  not a multiple of 8; -E2BIG: @p size above 4096 (as create refuses it).
 * Concurrency: any thread. Progress: wait-free.
 * Ordering: none.
 */
RMPSC_API int rmpsc_mc_config_init(rmpsc_mc_config *cfg, uint32_t size, int spmc);

/**
 * Create an SPMC channel.
 *
 * @return 0; -EINVAL: bad config (also producers or max_producers not 1);
 *  -E2BIG; -ENOMEM. Concurrency: any thread. Progress: blocking.
 * Ordering: none.
 */
RMPSC_API int rmpsc_spmc_create(const rmpsc_mc_config *cfg, rmpsc_spmc **out);

/** Free the channel, its ring and its consumers. Accepts NULL. Exclusive:
 *  no call on the channel or its consumer handles may run or follow
 *  (undefined behaviour, common.h). */
RMPSC_API void rmpsc_spmc_destroy(rmpsc_spmc *ch);

/**
 * Create an MPMC channel.
 *
 * @return 0; -EINVAL: bad config; -E2BIG; -ENOMEM.
 * Concurrency: any thread. Progress: blocking. Ordering: none.
 */
RMPSC_API int rmpsc_mpmc_create(const rmpsc_mc_config *cfg, rmpsc_mpmc **out);

/** Free the channel, its rings and its consumers. Accepts NULL. Exclusive:
 *  no call on the channel, its producer or its consumer handles may run or
 *  follow (undefined behaviour, common.h). */
RMPSC_API void rmpsc_mpmc_destroy(rmpsc_mpmc *ch);

/**
 * Register a consumer.
 *
 * @return the consumer's index (>= 0); -EINVAL: @p out NULL; -EBADF;
 *  -EPIPE: closed and drained (after a close a consumer can still
 *  register to take what is left); -ENOSPC: max_consumers registered;
 *  -ENOMEM.
 * Concurrency: any thread. Progress: blocking (a mutex). Ordering: none.
 */
RMPSC_API int rmpsc_spmc_register_consumer(rmpsc_spmc *ch, rmpsc_consumer **out);
/** As rmpsc_spmc_register_consumer(), for an MPMC channel. */
RMPSC_API int rmpsc_mpmc_register_consumer(rmpsc_mpmc *ch, rmpsc_consumer **out);

/**
 * Deregister a consumer; the handle is freed. Refused while it holds
 * claims (rmpsc_consumer_claim()) not yet completed, whose elements would
 * stay claimed for good, or elements it took ahead and has not handed out
 * yet (rmpsc_consumer_pending()), which would be lost.
 *
 * @return 0; -EBUSY: claims outstanding or elements pending (complete the
 *  claims, take the pending elements with any take call, then call again;
 *  nothing changes), or called from a handler that is reading elements the
 *  consumer took ahead; -EBADF: @p c is not a consumer.
 * Concurrency: the consumer's thread, or any once it stopped.
 * Progress: blocking. Ordering: none.
 */
RMPSC_API int rmpsc_consumer_deregister(rmpsc_consumer *c);

/**
 * Register an MPMC producer: as rmpsc_mpsc_register(); the handle is used
 * with the rmpsc_producer_ calls and deregistered with
 * rmpsc_producer_deregister(). A deregistered producer's ring (and its id)
 * goes to a later registration once the consumers have claimed everything
 * published on it, completed every claim on it and handed out every
 * element they took ahead from it; until then it counts
 * against max_producers. So max_producers bounds the producers registered
 * at once plus the rings still being drained, not the registrations over
 * the channel's life.
 *
 * @return the producer id; -EINVAL; -EBADF; -EPIPE; -ENOSPC: max_producers
 *  rings registered or still being drained; -ENOMEM.
 * Concurrency: any thread. Progress: blocking. Ordering: as MPSC.
 */
RMPSC_API int rmpsc_mpmc_register_producer(rmpsc_mpmc *ch, rmpsc_producer **out);

/* ---- SPMC producer: the ring calls on the channel handle ---------------- */

/** As rmpsc_ring_reserve(); -EBADF. The producer thread. Wait-free. */
RMPSC_API int rmpsc_spmc_reserve(rmpsc_spmc *ch, uint32_t n, rmpsc_span *out);
/** As rmpsc_ring_commit(); -EBADF. The producer thread. Wait-free. Release. */
RMPSC_API int rmpsc_spmc_commit(rmpsc_spmc *ch, uint32_t n);
/** As rmpsc_ring_push(); -EBADF. The producer thread. Wait-free. Release. */
RMPSC_API int rmpsc_spmc_push(rmpsc_spmc *ch, const void *item);
/** As rmpsc_ring_push_n(); -EBADF. The producer thread. Wait-free. Release. */
RMPSC_API int rmpsc_spmc_push_n(rmpsc_spmc *ch, const void *items, uint32_t n);
/** As rmpsc_ring_push_timed(); -EBADF. The producer thread. Blocking. */
RMPSC_API int rmpsc_spmc_push_timed(rmpsc_spmc *ch, const void *item, int64_t timeout_ns,
				    const rmpsc_wait *w);
/** As rmpsc_ring_push_n_timed(); -EBADF. The producer thread. Blocking. */
RMPSC_API int rmpsc_spmc_push_n_timed(rmpsc_spmc *ch, const void *items, uint32_t n,
				      int64_t timeout_ns, const rmpsc_wait *w);

/* ---- consumers ----------------------------------------------------------- */

/**
 * Steal up to @p n elements: claim, copy out, complete.
 *
 * Taking ahead: a single-element steal (@p n 1, rmpsc_consumer_steal_one(),
 * and their _timed twin) that finds at least 2K unclaimed elements on a
 * ring claims K of them with its one compare-and-swap (K = 16 for elements
 * of up to 16 bytes, 256 bytes' worth for larger ones, none above 128
 * bytes), copies them out, completes them at once and keeps all but the
 * first in the consumer handle, aligned as ring slots are: one claim per K
 * elements under load instead of one per element. Every take call of the
 * consumer (steal, consume, claim and their _timed twins) hands those out
 * first, so its elements stay in order (a steal of n goes on into the
 * rings after them; consume and claim hand out only those in that call).
 * Other consumers never see them; rmpsc_spmc_len() counts them as claimed,
 * rmpsc_spmc_is_drained() waits until they are handed out, and the ring
 * they came from is not reused before. A consumer that stops taking must
 * take them (rmpsc_consumer_pending() says how many) before it
 * deregisters.
 *
 * @return elements copied, 1..n (0 when @p n is 0); -EAGAIN: nothing there;
 *  -EPIPE: closed and drained; -EINVAL: @p items NULL and n not 0; -EBADF.
 * Concurrency: the consumer's thread; any number of consumers at once.
 * Progress: lock-free (a failed claim means another consumer progressed).
 * Ordering: acquire (the producer's publication), release (the slots).
 */
RMPSC_API int rmpsc_consumer_steal(rmpsc_consumer *c, void *items, uint32_t n);

/** Steal one element: 0, or the codes of rmpsc_consumer_steal(). */
RMPSC_API int rmpsc_consumer_steal_one(rmpsc_consumer *c, void *item);

/**
 * Elements this consumer took ahead and has not handed out yet (see
 * "Taking ahead" at rmpsc_consumer_steal()); its next take calls return
 * them first.
 *
 * @return 0..15; -EBADF. Concurrency: the consumer's thread.
 * Progress: wait-free. Ordering: none.
 */
RMPSC_API int rmpsc_consumer_pending(const rmpsc_consumer *c);

/**
 * Batch consume in place: claim up to @p max elements of one ring, hand
 * them to @p fn (up to two segments, with the producer id: 0 for SPMC),
 * then complete the run. @p fn may call this consumer's calls itself: each
 * claims a run of its own (as another consumer would), so nothing is read
 * twice; the run being handled stays claimed until @p fn returns
 * (elements the consumer took ahead are handed out first, from its
 * handle, and were completed when taken).
 *
 * @return elements handled (0 when @p max is 0); -EAGAIN; -EPIPE; -EINVAL:
 *  @p fn NULL; -EBADF. Concurrency: as steal. Progress: as @p fn.
 * Ordering: as steal.
 */
RMPSC_API int rmpsc_consumer_consume(rmpsc_consumer *c, uint32_t max, rmpsc_mpsc_fn fn,
				     void *ctx);

/*
 * Zero-copy claims: read a run in place, for as long as the consumer likes,
 * and complete it later, in any order. A claim is a run of one ring (up to
 * two segments when it wraps) and a token; rmpsc_consumer_complete() with
 * that token, on the consumer that claimed it, gives the run back. Until
 * then the run's slots stay out of the producer's reach (it reuses slots in
 * order, so an old claim eventually stops that ring's producer: -EAGAIN on
 * a full ring). Each consumer holds at most RMPSC_CONSUMER_CLAIMS_MAX claims
 * at once. Tokens follow the borrow rules (rmpsc_borrow): a token is good
 * once, on its own consumer (a completed token is recognised as stale for
 * the next 2^32 claims of its consumer). Elements the consumer took ahead
 * (rmpsc_consumer_steal()) come first, as a claim over its own copy of
 * them (one segment, in the consumer handle, aligned as ring slots are,
 * valid until completed; their slots went back to the producer when they
 * were taken).
 */

/** A claimed run: the elements in place and the token that completes it. */
typedef struct rmpsc_claim {
	rmpsc_span span;   /**< the run: one or two segments in ring memory, or
			    *   one in the consumer handle (taken ahead) */
	uint64_t token;    /**< give it to rmpsc_consumer_complete() */
	uint32_t producer; /**< the ring's producer id (0 for SPMC) */
	uint32_t _pad0;    /**< always written as zero */
} rmpsc_claim;

enum {
	RMPSC_CONSUMER_CLAIMS_MAX = 64, /**< claims one consumer holds at once */
};

/**
 * Claim up to @p n published elements of one ring and read them in place.
 *
 * @param out receives the run and its token (written on success; zeroed
 *  otherwise, when not NULL).
 * @return elements claimed, 1..n (0 when @p n is 0, nothing claimed);
 *  -EAGAIN: nothing there; -EPIPE: closed and everything claimed;
 *  -ENOBUFS: RMPSC_CONSUMER_CLAIMS_MAX claims outstanding (complete one);
 *  -EINVAL: @p out NULL; -EBADF.
 * Concurrency: the consumer's thread; any number of consumers at once (the
 *  elements may be read by any thread until completed).
 * Progress: lock-free. Ordering: acquire (the producer's publication).
 */
RMPSC_API int rmpsc_consumer_claim(rmpsc_consumer *c, uint32_t n, rmpsc_claim *out);

/**
 * Blocking rmpsc_consumer_claim(): waits for at least one element (see
 * ring.h for @p timeout_ns and @p w; NULL: RMPSC_WAIT_BLOCK).
 *
 * @return as claim, with -ETIMEDOUT instead of -EAGAIN, and -EINVAL /
 *  -E2BIG for a bad @p w. Concurrency: as claim. Progress: blocking.
 */
RMPSC_API int rmpsc_consumer_claim_timed(rmpsc_consumer *c, uint32_t n, rmpsc_claim *out,
					 int64_t timeout_ns, const rmpsc_wait *w);

/**
 * Complete a claim: its run goes back to the producer once every run
 * claimed before it on that ring is complete too (claims of any consumers,
 * completed in any order).
 *
 * @return 0; -EINVAL: @p token completed already, never handed out by this
 *  consumer (another consumer's, stale or forged); nothing changes; -EBADF.
 * Concurrency: the consumer's thread. Progress: wait-free.
 * Ordering: release; the reads of the run happen-before the producer
 *  writes its slots again.
 */
RMPSC_API int rmpsc_consumer_complete(rmpsc_consumer *c, uint64_t token);

/**
 * Blocking rmpsc_consumer_steal(): waits for at least one element (see
 * ring.h for @p timeout_ns and @p w; NULL: RMPSC_WAIT_BLOCK).
 *
 * @return as steal, with -ETIMEDOUT instead of -EAGAIN, and -EINVAL /
 *  -E2BIG for a bad @p w. Concurrency: as steal. Progress: blocking.
 */
RMPSC_API int rmpsc_consumer_steal_timed(rmpsc_consumer *c, void *items, uint32_t n,
					 int64_t timeout_ns, const rmpsc_wait *w);

/** Blocking rmpsc_consumer_consume(); codes as rmpsc_consumer_steal_timed(). */
RMPSC_API int rmpsc_consumer_consume_timed(rmpsc_consumer *c, uint32_t max, rmpsc_mpsc_fn fn,
					   void *ctx, int64_t timeout_ns, const rmpsc_wait *w);

/* ---- lifecycle, status --------------------------------------------------- */

/** Close: producers get -EPIPE, registrations fail. Idempotent. 0; -EBADF.
 *  Any thread. Blocking (as rmpsc_ring_close()). */
RMPSC_API int rmpsc_spmc_close(rmpsc_spmc *ch);
/** As rmpsc_spmc_close(), every ring of an MPMC channel. */
RMPSC_API int rmpsc_mpmc_close(rmpsc_mpmc *ch);
/** Elements published and not yet claimed; -EBADF. A snapshot, never more
 *  than the ring held unclaimed when it was read (as rmpsc_mpsc_len()).
 *  Any thread. Wait-free. Acquire. */
RMPSC_API int64_t rmpsc_spmc_len(const rmpsc_spmc *ch);
/** As rmpsc_spmc_len(), over every ring. */
RMPSC_API int64_t rmpsc_mpmc_len(const rmpsc_mpmc *ch);
/** 1 once closed, the end of every ring's stream decided, everything up
 *  to it claimed and every element a consumer took ahead handed out (true
 *  at a moment during the call), else 0; -EBADF. Any thread. Wait-free.
 *  Acquire. */
RMPSC_API int rmpsc_spmc_is_drained(const rmpsc_spmc *ch);
/** As rmpsc_spmc_is_drained(), over every ring. */
RMPSC_API int rmpsc_mpmc_is_drained(const rmpsc_mpmc *ch);

#ifdef __cplusplus
}
#endif

#endif /* RINGMPSC_CHANNEL_H */
