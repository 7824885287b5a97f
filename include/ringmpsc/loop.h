/* SPDX-License-Identifier: MIT */
/**
 * @file ringmpsc/loop.h
 * rmpsc_loop: a managed consumer thread. It waits for data with a wait
 * strategy, hands every committed element to a handler in batches (each
 * batch one contiguous run of slots, read in place), and on stop closes the
 * source, delivers everything that was committed, and joins.
 *
 * The loop is the ring's consumer while it runs: no other thread may make
 * consumer calls on that ring until rmpsc_loop_stop() has returned.
 */
#ifndef RINGMPSC_LOOP_H
#define RINGMPSC_LOOP_H

#include <stdint.h>

#include "common.h"
#include "ring.h"
#include "wait.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Opaque event loop handle. */
typedef struct rmpsc_loop rmpsc_loop;

/**
 * Handler: @p count consecutive elements of the ring's element size start
 * at @p items (ring memory: valid only during the call). The slots are
 * released when the handler returns. The handler must not consume from
 * the ring itself: the ring's consumer calls return -EBUSY from it (ring.h,
 * "Consumer lock-outs"), as does rmpsc_loop_stop() -EDEADLK; it may push
 * into the ring, close it, or use other rings.
 */
typedef void (*rmpsc_loop_fn)(void *ctx, const void *items, uint32_t count);

/**
 * Start a consumer thread on @p r.
 *
 * @param r   the ring; it must outlive the loop.
 * @param fn  the handler, called on the loop thread only.
 * @param ctx passed to @p fn.
 * @param w   how to wait when the ring is empty; NULL: the ring's strategy
 *            at the time of the call (RMPSC_WAIT_BLOCK by default). Copied.
 * @param out receives the handle; set to NULL on error.
 * @return 0;
 *  -EBADF: @p r is not a ring;
 *  -EINVAL: @p fn or @p out is NULL, @p w is not a valid strategy, or a
 *           borrow is outstanding on @p r (commit it first: the loop could
 *           deliver nothing past it);
 *  -EBUSY: another loop consumes @p r (until its rmpsc_loop_stop()), or the
 *          call comes from a handler running on @p r's elements;
 *  -E2BIG: @p w is larger than this library knows with non-zero extra bytes;
 *  -ENOMEM / -EAGAIN: no memory or no thread could be created.
 * Concurrency: any thread; the loop becomes the ring's only consumer.
 * Progress: blocking (creates a thread). Ordering: everything the caller
 *   did before the call happens-before the first handler call.
 */
RMPSC_API int rmpsc_loop_start_ring(rmpsc_ring *r, rmpsc_loop_fn fn, void *ctx,
				    const rmpsc_wait *w, rmpsc_loop **out);

/**
 * Stop: close the ring (producers get -EPIPE from then on), let the loop
 * deliver every element committed before the close, and join the thread.
 * Idempotent: a later call returns the same result at once.
 *
 * The loop only ends early, before the ring is closed and drained, when
 * the ring is used against the loop's contract (another thread borrows
 * from it, consumes from it or resets it while the loop runs): stop then
 * returns the error that ended it, and the elements the loop did not
 * deliver are still in the (now closed) ring, for the caller to drain.
 *
 * @return 0: everything committed before the close was delivered;
 *  the error that ended the loop early (-EINVAL, -EBUSY or -EBADF, as the
 *  ring's consumer calls return them; see above); -EBADF: @p l is not a
 *  loop; -EDEADLK: called from the loop's own thread (from the handler).
 * Concurrency: any thread but the loop's; one stop at a time.
 * Progress: blocking (joins). Ordering: every handler call happens-before
 *   the return.
 */
RMPSC_API int rmpsc_loop_stop(rmpsc_loop *l);

/**
 * Elements handed to the handler so far.
 *
 * @return the count (>= 0); -EBADF: @p l is not a loop.
 * Concurrency: any thread. Progress: wait-free. Ordering: acquire; the
 *   handler calls for the counted elements happen-before the return.
 */
RMPSC_API int64_t rmpsc_loop_processed(const rmpsc_loop *l);

/**
 * Stop the loop if it still runs (as rmpsc_loop_stop()), then free it.
 * Accepts NULL. Must not be called from the handler. It returns nothing:
 * call rmpsc_loop_stop() first to learn whether the loop delivered
 * everything.
 *
 * Concurrency: no other call on @p l may run or follow. Progress: blocking.
 * Ordering: none.
 */
RMPSC_API void rmpsc_loop_destroy(rmpsc_loop *l);

#ifdef __cplusplus
}
#endif

#endif /* RINGMPSC_LOOP_H */
