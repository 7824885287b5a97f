/* SPDX-License-Identifier: MIT */
/**
 * @file ringmpsc/notify.h
 * rmpsc_notifier: an eventfd that tells an epoll or io_uring event loop
 * "there is something to read", so one thread can sleep on rings, sockets
 * and timers at once.
 *
 * The eventfd is non-blocking and close-on-exec. Signals coalesce twice:
 * the kernel adds them up in the eventfd counter, and the notifier itself
 * writes the eventfd only when no earlier signal is still unconsumed, so a
 * burst of commits costs one write(2) per wake-up of the loop, not one per
 * commit.
 *
 * Consumer loop, edge-triggered:
 *
 *     rmpsc_notifier_epoll_add(n, epfd, tag);
 *     for (;;) {
 *             epoll_wait(epfd, ev, 8, -1);
 *             rmpsc_notifier_consume(n);          // first: re-arms the signal
 *             while ((k = rmpsc_ring_readable(r, UINT32_MAX, &s)) > 0)
 *                     ... rmpsc_ring_advance(r, k);  // then drain
 *     }
 *
 * Consuming before draining is what makes it lossless: a commit that lands
 * after the consume signals again, and one that landed before it is seen by
 * the drain.
 */
#ifndef RINGMPSC_NOTIFY_H
#define RINGMPSC_NOTIFY_H

#include <stdint.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Opaque notifier handle. */
typedef struct rmpsc_notifier rmpsc_notifier;

/**
 * Create a notifier (an eventfd with EFD_NONBLOCK | EFD_CLOEXEC).
 *
 * @param flags must be 0 (reserved).
 * @param out   receives the handle; set to NULL on error.
 * @return 0; -EINVAL: @p out is NULL or @p flags is not 0; -EMFILE/-ENFILE:
 *  no file descriptor left; -ENOMEM: out of memory.
 * Concurrency: any thread. Progress: blocking (allocates, system call).
 * Ordering: none.
 */
RMPSC_API int rmpsc_notifier_create(uint32_t flags, rmpsc_notifier **out);

/**
 * Close the eventfd and free the notifier. Accepts NULL. Detach it from
 * every ring first (rmpsc_ring_set_notifier(r, NULL)). A later call with
 * @p n is undefined behaviour (common.h).
 *
 * Concurrency: no other call on @p n may run or follow. Progress: blocking.
 * Ordering: none.
 */
RMPSC_API void rmpsc_notifier_destroy(rmpsc_notifier *n);

/**
 * The eventfd, for epoll, poll, select or an io_uring read/poll request.
 * Do not close it; it is readable (EPOLLIN) while a signal is unconsumed.
 *
 * @return the file descriptor (>= 0); -EBADF: @p n is not a notifier.
 * Concurrency: any thread. Progress: wait-free. Ordering: none.
 */
RMPSC_API int rmpsc_notifier_fd(const rmpsc_notifier *n);

/**
 * Signal the consumer: make the eventfd readable unless an unconsumed
 * signal already does.
 *
 * @return 1 if this call wrote the eventfd (or found its counter at the
 *  maximum, which leaves it readable all the same), 0 if it coalesced into
 *  a pending signal; -EBADF: @p n is not a notifier; -EIO: the eventfd
 *  write failed (its descriptor was closed or replaced behind the
 *  library's back). A failed write leaves no signal pending: every later
 *  signal writes again, and reports -EIO for as long as the descriptor
 *  stays broken (a signal that coalesced into the failed one meanwhile
 *  returned 0 and is lost with it). A ring's attached notifier is
 *  signalled the same way, its failures unreported.
 * Concurrency: any thread. Progress: lock-free (one atomic exchange, a
 *  write(2) at most). Ordering: release; what the caller stored before
 *  signalling is visible to the thread that consumes this signal.
 */
RMPSC_API int rmpsc_notifier_signal(rmpsc_notifier *n);

/**
 * Signal only if a consumer declared, with rmpsc_notifier_arm(), that it is
 * about to sleep: no system call and no atomic read-modify-write while the
 * consumer is busy.
 *
 * @return 1 if the eventfd was written, 0 if not (no consumer armed, or the
 *  signal coalesced); -EBADF; -EIO as rmpsc_notifier_signal().
 * Concurrency: any thread. Progress: lock-free. Ordering: as
 *  rmpsc_notifier_signal() when it signals; a producer that published data
 *  before this call either signals or its data is seen by the consumer's
 *  check after rmpsc_notifier_arm().
 */
RMPSC_API int rmpsc_notifier_signal_if_waiting(rmpsc_notifier *n);

/**
 * Consumer: declare that it is about to sleep on the fd. After this call,
 * check the sources once more (a producer that published before the arm
 * may have skipped its signal), then sleep. rmpsc_notifier_consume()
 * disarms.
 *
 * @return 0; -EBADF: @p n is not a notifier.
 * Concurrency: the consumer thread. Progress: blocking (a process-wide
 *  memory barrier, membarrier(2), or a full fence where it is missing).
 * Ordering: full barrier between the arm and the consumer's next loads.
 */
RMPSC_API int rmpsc_notifier_arm(rmpsc_notifier *n);

/**
 * Consumer: take the pending signals (reset the eventfd counter) and
 * re-enable signalling. Call it after waking and before draining.
 *
 * @return the coalesced count of eventfd writes consumed (0 if none was
 *  pending); -EBADF: @p n is not a notifier; -EIO: the eventfd read failed.
 * Concurrency: the consumer thread. Progress: lock-free (one read(2)).
 * Ordering: acquire; pairs with rmpsc_notifier_signal().
 */
RMPSC_API int64_t rmpsc_notifier_consume(rmpsc_notifier *n);

/**
 * Register the eventfd with an epoll instance, edge-triggered (EPOLLIN |
 * EPOLLET), with @p data as the event's u64.
 *
 * @return 0; -EBADF: @p n is not a notifier or @p epfd is not open;
 *  -EINVAL: @p epfd is not an epoll fd; -EEXIST: already registered there;
 *  -ENOMEM, -ENOSPC: as epoll_ctl(2).
 * Concurrency: any thread. Progress: blocking (system call). Ordering: none.
 */
RMPSC_API int rmpsc_notifier_epoll_add(rmpsc_notifier *n, int epfd, uint64_t data);

/**
 * Remove the eventfd from an epoll instance.
 *
 * @return 0; -EBADF: @p n is not a notifier or @p epfd is not open;
 *  -EINVAL: @p epfd is not an epoll fd; -ENOENT: not registered there.
 * Concurrency: any thread. Progress: blocking (system call). Ordering: none.
 */
RMPSC_API int rmpsc_notifier_epoll_del(rmpsc_notifier *n, int epfd);

#ifdef __cplusplus
}
#endif

#endif /* RINGMPSC_NOTIFY_H */
