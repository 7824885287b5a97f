/* SPDX-License-Identifier: MIT */
/**
 * @file ringmpsc/common.h
 * Version, export macro, error strings and small types shared by every part
 * of libringmpsc.
 *
 * Conventions that hold for the whole API:
 *  - Every function that can fail returns a negative errno code (`-EINVAL`,
 *    `-EAGAIN`, ...) and never reports through `errno`: read the return
 *    value. Like any C library call, a call may leave `errno` changed,
 *    success or not (the system calls inside it set it). Counts are
 *    returned as `int` (>= 0 on success), byte quantities as `int64_t`.
 *  - A call that returns an element count as `int` never takes more than
 *    it can report, INT32_MAX: a ring's capacity (at most 2^30) bounds the
 *    calls on one ring; a call that gathers from several rings or several
 *    batches says its bound in its comment (at most INT32_MAX elements for
 *    a best-effort call such as rmpsc_mpsc_pop_n(); -EINVAL for an @c n
 *    above INT32_MAX where the call must take all of it, such as
 *    rmpsc_ring_push_n_timed()). Counts that can exceed it are `int64_t`.
 *  - Handles are opaque pointers created by `rmpsc_<obj>_create` and released
 *    by `rmpsc_<obj>_destroy` (which accepts NULL). Passing NULL or a handle of
 *    another type returns `-EBADF`.
 *  - After destroy a handle is gone: any call with it, a second destroy
 *    included, is undefined behaviour that the library does not detect.
 *    Rings and the rings of channels (whose producer handles they are) are
 *    unmapped, so such a call typically dies with SIGSEGV; the other
 *    handles (channels, consumers, loops, notifiers) are freed heap memory,
 *    so it may crash, return -EBADF or act on memory reused since. Keep
 *    no copy of a destroyed handle (bindings: set the pointer to NULL in
 *    the same step, and refuse calls on it themselves).
 *  - fork(). The child gets a copy of every handle's memory as it was at
 *    the fork, and no other thread. Rings and channels are private copies,
 *    not shared with the parent: what either process pushes afterwards the
 *    other never sees, and a waiter in one is never woken by the other. A
 *    ring or channel in use by another thread at the fork may be copied in
 *    the middle of a call (a reservation, a borrow, a close): use such
 *    copies only to destroy them. A loop's thread does not exist in the
 *    child: stop and destroy of the child's copy join a thread that is not
 *    there, which is undefined; leave that copy alone. A notifier's eventfd is shared with the parent (as
 *    every inherited descriptor) but its pending flag is copied: a signal
 *    or consume in one process is not seen by the other's flag, so a signal
 *    can be lost when both consume; use a notifier in one process only, and
 *    destroy the other's copy (it closes only that process's descriptor).
 *    Sharing rings between processes is the shared-memory API's job
 *    (ringmpsc/shm.h). A shared ring's handle (rmpsc_shm) inherited by the
 *    child maps the same memory, but it still belongs to the parent's
 *    role: the child must not use it, and not destroy it either (destroy
 *    closes the ring for both); it attaches a role of its own from the
 *    inherited descriptor (rmpsc_shm_fd()).
 *  - Config structs start with a `size` field written by the matching
 *    `_config_init` function; they only ever grow at the end.
 */
#ifndef RINGMPSC_COMMON_H
#define RINGMPSC_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The one version source: CMake parses these three lines. */
#define RMPSC_VERSION_MAJOR 1
#define RMPSC_VERSION_MINOR 0
#define RMPSC_VERSION_PATCH 0
#define RMPSC_VERSION_NUMBER \
	(RMPSC_VERSION_MAJOR * 10000 + RMPSC_VERSION_MINOR * 100 + RMPSC_VERSION_PATCH)

/* Marks the exported API; everything else in the library is hidden. */
#define RMPSC_API __attribute__((visibility("default")))

/** NUMA node arguments: no preference, and the node of the calling thread
 *  (where the call accepts it: rmpsc_pool_config.numa_node). */
enum { RMPSC_NODE_ANY = -1, RMPSC_NODE_LOCAL = -2 };

/** Optional features that work in this build (rmpsc_features()). */
enum rmpsc_feature {
	RMPSC_FEATURE_NUMA = 1u << 0,  /**< NUMA placement through libnuma */
	RMPSC_FEATURE_URING = 1u << 1, /**< io_uring helpers through liburing */
};

/**
 * A view of up to two contiguous runs of ring slots: the part up to the end
 * of the ring buffer and, when the run wraps, the part that continues at the
 * start. `iov` is laid out as `struct iovec[2]` so `readv(fd, s.iov, s.nseg)`
 * and `writev` take it as it is; `iov_len` is in bytes.
 *
 * Frozen layout (hot path): never changes; a different shape means a new
 * function.
 */
typedef struct rmpsc_span {
	struct iovec iov[2]; /**< byte views; iov[1].iov_len == 0 when no wrap */
	uint32_t count[2];   /**< elements in iov[0] and iov[1] */
	uint32_t nseg;       /**< segments in use: 0, 1 or 2 */
	uint32_t _pad0;      /**< always written as zero */
	uint64_t pos;        /**< free-running ring position of the first element */
} rmpsc_span;

/**
 * A borrowed view: elements read in place, to be given back with their
 * token (rmpsc_ring_borrow_commit() and its channel twin). A borrow never
 * wraps: @c count contiguous elements start at @c data. Tokens are opaque
 * and belong to the ring or channel whose borrow handed them out: a token
 * that was committed already, that no borrow handed out, that another ring
 * or channel handed out, or that dates from before the ring was reset (or,
 * in a channel, reused by a new producer) is refused with -EINVAL. A token
 * carries 20 bits of a process-wide count of ring creations and resets and,
 * in a channel, the producer id: two rings could only take each other's
 * tokens if those counts were a multiple of 2^20 - 1 apart and the ids
 * and the positions (32 bits) matched.
 *
 * Frozen layout (hot path).
 */
typedef struct rmpsc_borrow {
	const void *data; /**< first element, in ring memory */
	uint32_t count;   /**< elements */
	uint32_t _pad0;   /**< always written as zero */
	uint64_t token;   /**< give it back once done with the elements */
} rmpsc_borrow;

/** Handler of a callback borrow: @p count elements at @p items, valid
 *  during the call. */
typedef void (*rmpsc_borrow_fn)(void *ctx, const void *items, uint32_t count);

/**
 * Library version as MAJOR*10000 + MINOR*100 + PATCH, for comparison with
 * RMPSC_VERSION_NUMBER (bindings check it when they load).
 *
 * @return the version number of the loaded library.
 * Concurrency: any thread. Progress: wait-free. Ordering: none.
 */
RMPSC_API uint32_t rmpsc_version(void);

/**
 * Library version as a static string, e.g. "1.0.0".
 *
 * @return a string with static storage duration; never NULL.
 * Concurrency: any thread. Progress: wait-free. Ordering: none.
 */
RMPSC_API const char *rmpsc_version_string(void);

/**
 * Describe an error code the way this library uses it ("ring full",
 * "ring closed", ...). Accepts the negative codes the API returns and their
 * positive values; unknown codes get a generic text.
 *
 * @param err a code returned by this library, negative or positive.
 * @return a string with static storage duration; never NULL.
 * Concurrency: any thread. Progress: wait-free. Ordering: none.
 */
RMPSC_API const char *rmpsc_strerror(int err);

/**
 * Which optional features work in this build (RMPSC_FEATURE_* bits): a
 * bit is set when the feature's code is built and its dependency linked,
 * not merely found. RMPSC_FEATURE_NUMA: built with libnuma (whether the
 * running system lets placement work is rmpsc_numa_available(),
 * ringmpsc/numa.h). RMPSC_FEATURE_URING: built with liburing (whether
 * the kernel lets io_uring work is rmpsc_uring_features(),
 * ringmpsc/uring.h). The exported symbol set is the same either way:
 * functions of a missing feature return `-EOPNOTSUPP`, or, for NUMA, act
 * as on a one-node machine.
 *
 * @return a bit mask of enum rmpsc_feature values.
 * Concurrency: any thread. Progress: wait-free. Ordering: none.
 */
RMPSC_API uint32_t rmpsc_features(void);

#ifdef __cplusplus
}
#endif

#endif /* RINGMPSC_COMMON_H */
