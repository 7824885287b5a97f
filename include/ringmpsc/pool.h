/* SPDX-License-Identifier: MIT */
/**
 * @file ringmpsc/pool.h
 * BufferPool: fixed-size slabs in one mapping per tier, handed out as 4-byte
 * generation-tagged handles, lock-free from any number of threads.
 *
 * Large messages are not copied through a ring: a producer allocates a
 * slab, writes into it, sets the payload length and sends the handle
 * (a uint32_t) through a ring or channel; the consumer reads the same
 * memory in place and frees the handle. The handle is the ownership token:
 * whoever holds it owns the slab, and a handle that no longer owns one is
 * refused.
 *
 * **Tiers.** A pool has 1 to RMPSC_POOL_TIERS_MAX tiers, each a slab size
 * and a slab count in a mapping of its own (rmpsc_pool_region()). An
 * allocation of n bytes takes a slab of the smallest tier whose slabs hold
 * n bytes; with RMPSC_POOL_F_SPILL it takes the next larger tier's when
 * that tier has none left. rmpsc_pool_default_tiers() fills the default
 * series: twelve power-of-4 sizes, 32 B, 128 B, 512 B, 2 KiB ... 128 MiB.
 * Its worst-case waste is just under 75 % of a slab: a 129-byte request
 * takes a 512-byte slab (jemalloc's size classes, four per doubling, waste
 * at most 20 %; give your own sizes where that matters).
 *
 * **Slabs.** A slab's stride is its size rounded up to a cache line (64
 * bytes); every slab is cache-line aligned, and page aligned when the slab
 * size is a multiple of the page size (4 KiB), hugepage aligned when it is
 * a multiple of the huge page the tier got.
 *
 * **Handles.** A handle is never 0. Its bits, from the top: the tier
 * (ceil(log2(tiers)) bits, none in a one-tier pool), a generation (G
 * bits), the slab's index in its tier (I = ceil(log2(slab_count)) bits,
 * none for a one-slab tier), with G = 32 - tier bits - I; creation refuses
 * a tier that would leave G below RMPSC_POOL_GEN_BITS_MIN (8). Example: one
 * tier of 65536 slabs: 16 index bits, 16 generation bits; the default
 * twelve tiers, 4 tier bits, a tier of 131072 slabs: 17 index, 11
 * generation bits. Every allocation of a slab gives it the next generation
 * (plus a per-pool offset: a random base drawn once per process, then a
 * golden-ratio step per pool), and each call checks the handle
 * against the slab's current one:
 *  - a handle whose slab has been freed since (double free included) or
 *    reallocated since (a stale handle) returns -ESTALE; one that is
 *    min(2^G, 2^30) allocations of that slab out of date looks current
 *    and is not detected (the generation has wrapped; for slab 0 of tier
 *    0, whose generation skips the value that would make its handle 0,
 *    after one allocation fewer);
 *  - a handle whose tier or index is out of this pool's range returns
 *    -EINVAL, always;
 *  - a handle of another pool (or a made-up one) in range returns -EINVAL
 *    when its generation is one this slab never had. Each pool starts its
 *    generations at its own offset, a golden-ratio sequence over the pools
 *    a process creates (among N pools any two offsets are at least about
 *    2^G / 3N apart), so another pool's handle is refused with certainty
 *    while the two slabs together have been allocated fewer times than
 *    their pools' offsets are apart, and with probability about
 *    1 - (allocations of this slab) / 2^G after that. Otherwise it is
 *    taken for a stale handle of this pool (-ESTALE) or, with probability
 *    2^-G when the slab is allocated, for its owner's handle, and
 *    accepted;
 *  - a handle of a slab that is free (in the pool or a cache) is always
 *    refused, whatever its bits: the pool's structures are never
 *    corrupted by a bad free.
 * The split of a pool's handles is reported by rmpsc_pool_tier_info().
 *
 * **Caches.** Optional per-thread caches (rmpsc_pool_cache) are explicit
 * handles, not thread-locals, so that a runtime that moves its tasks
 * between threads (Go) can own one per task. A cache keeps up to its
 * capacity of free slabs per tier and trades them with the pool in
 * batches of half its capacity; while it has slabs and room, alloc and
 * free through it touch none of the pool's shared lines (free-list heads,
 * sleepers' words written), only the slab's own state and allocation
 * count. Slabs in a cache still count as available: when the pool has
 * none left, an allocation takes them from other caches before it reports
 * -ENOBUFS (or sleeps), so exhaustion is not reported while a cache holds
 * a slab of the tier asked for (one that moves from cache to cache while
 * the allocation looks, through another thread's allocation and free, can
 * be missed: the look is two scans, not a snapshot).
 *
 * **Blocking.** rmpsc_pool_alloc_timed() waits for a free slab through the
 * wait strategies of ringmpsc/wait.h; a free wakes a sleeping allocator,
 * and costs nothing more than a load of a line it shares read-only while
 * no allocator sleeps. rmpsc_pool_close() ends every wait with -EPIPE.
 *
 * **Memory.** Each tier is one region: normal pages, transparent huge
 * pages, or hugetlb pages (default size, 2 MiB or 1 GiB), falling back to
 * the next smaller kind unless RMPSC_POOL_F_EXACT_PAGE (the region info
 * says what was got); placed on a NUMA node (ringmpsc/numa.h) before any
 * page is touched; prefaulted with RMPSC_POOL_F_PREFAULT. Slab memory is
 * zero when first handed out and keeps whatever the last owner wrote
 * after that.
 *
 * Concurrency: every call on a pool is safe from any thread at once,
 * except destroy. A cache is used by one thread at a time (any thread,
 * switching with a happens-before edge such as a mutex or a channel);
 * other threads' allocations may take slabs from it at any time, safely.
 */
#ifndef RINGMPSC_POOL_H
#define RINGMPSC_POOL_H

#include <stdint.h>
#include <sys/uio.h>

#include "common.h"
#include "wait.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rmpsc_pool rmpsc_pool;
typedef struct rmpsc_pool_cache rmpsc_pool_cache;

enum {
	RMPSC_POOL_TIERS_MAX = 16,       /**< tiers in one pool */
	RMPSC_POOL_DEFAULT_TIERS = 12,   /**< tiers of rmpsc_pool_default_tiers() */
	RMPSC_POOL_GEN_BITS_MIN = 8,     /**< fewest generation bits a tier may have */
	RMPSC_POOL_CACHE_MAX = 4096,     /**< largest cache capacity (slabs per tier) */
	RMPSC_POOL_CONFIG_SIZE_V1 = 48,  /**< sizeof(rmpsc_pool_config) in 1.0 */
};

/** A slab size of at most 1 GiB (io_uring registers no larger buffer). */
#define RMPSC_POOL_SLAB_SIZE_MAX ((uint64_t)1 << 30)
/** The handle no allocation returns. */
#define RMPSC_POOL_HANDLE_NONE ((uint32_t)0)

/** Kinds of page a region is mapped with. Values are pinned. */
enum rmpsc_page {
	RMPSC_PAGE_NORMAL = 0,  /**< the system page (4 KiB) */
	RMPSC_PAGE_THP = 1,     /**< transparent huge pages, madvise(MADV_HUGEPAGE) on a 2 MiB-aligned mapping */
	RMPSC_PAGE_HUGE = 2,    /**< hugetlb pages of the default size (MAP_HUGETLB) */
	RMPSC_PAGE_HUGE_2M = 3, /**< hugetlb 2 MiB pages */
	RMPSC_PAGE_HUGE_1G = 4, /**< hugetlb 1 GiB pages */
};

/** rmpsc_pool_config.flags. */
enum {
	/** Fault every page in at creation (no page fault on first use). */
	RMPSC_POOL_F_PREFAULT = 1u << 0,
	/** Fail creation with the error of the page kind asked for rather
	 *  than fall back to smaller pages (1 GiB, 2 MiB or default hugetlb,
	 *  THP, normal). */
	RMPSC_POOL_F_EXACT_PAGE = 1u << 1,
	/** An allocation whose tier has no slab left takes one of the next
	 *  larger tier that has one, instead of failing (or waiting). */
	RMPSC_POOL_F_SPILL = 1u << 2,
	/** The slabs live in sealed memfds that another process can map
	 *  read-only (rmpsc_pool_share_fds(), rmpsc_shm_pool_attach() in
	 *  ringmpsc/shm.h): a handle sent through a shared ring carries its
	 *  payload without a copy. Payload lengths are published in a sealed
	 *  memfd of their own; the free lists and slab states stay in this
	 *  process's private memory, so the other process can at worst keep
	 *  slabs it was lent (rmpsc_pool_lend(), rmpsc_pool_reclaim()). */
	RMPSC_POOL_F_SHARED = 1u << 3,
	RMPSC_POOL_F_ALL = RMPSC_POOL_F_PREFAULT | RMPSC_POOL_F_EXACT_PAGE | RMPSC_POOL_F_SPILL |
			   RMPSC_POOL_F_SHARED,
};

/** rmpsc_pool_destroy() flags. */
enum {
	/** Destroy even with slabs out: the caller knows no one (no kernel
	 *  I/O either) will touch them again. */
	RMPSC_POOL_DESTROY_FORCE = 1u << 0,
};

/** rmpsc_pool_iovecs() flags. */
enum {
	/** Whole slabs (for reading into them) instead of payloads. */
	RMPSC_POOL_IOV_SLAB = 1u << 0,
};

/** One tier: @c count slabs of @c slab_size bytes. Frozen layout. */
typedef struct rmpsc_pool_tier {
	uint64_t slab_size; /**< bytes, 1..RMPSC_POOL_SLAB_SIZE_MAX */
	uint32_t count;     /**< slabs, >= 1 (see the handle split) */
	uint32_t _pad0;     /**< must be zero */
} rmpsc_pool_tier;

/**
 * Pool parameters. Size-prefixed and append-only: fill with
 * rmpsc_pool_config_init(), then change fields.
 */
typedef struct rmpsc_pool_config {
	uint32_t size;      /**< caller's sizeof, written by rmpsc_pool_config_init */
	uint32_t flags;     /**< RMPSC_POOL_F_* bits; unknown bits are rejected */
	uint64_t slab_size; /**< one-tier pool (tiers NULL): bytes per slab (default 2048); ignored with tiers */
	uint32_t slab_count;/**< one-tier pool (tiers NULL): slabs (default 1024); ignored with tiers */
	uint32_t ntiers;    /**< entries of @c tiers, 1..RMPSC_POOL_TIERS_MAX; 0 when tiers is NULL */
	const rmpsc_pool_tier *tiers; /**< NULL: one tier (slab_size, slab_count); else strictly increasing slab sizes, read during create only */
	uint32_t page;      /**< enum rmpsc_page (default RMPSC_PAGE_NORMAL) */
	int32_t numa_node;  /**< RMPSC_NODE_ANY (default), RMPSC_NODE_LOCAL (the creating thread's node) or a node >= 0; a no-op where NUMA is not available */
	uint64_t _reserved; /**< must be zero */
} rmpsc_pool_config;

/**
 * A tier's memory and handle layout (rmpsc_pool_tier_info()). The region
 * is [base, base + len): slab i of the tier starts at base + i * stride.
 * Frozen layout.
 */
typedef struct rmpsc_pool_region {
	void *base;         /**< first slab, aligned as the header says */
	uint64_t len;       /**< bytes mapped (whole pages of the kind got) */
	uint64_t slab_size; /**< bytes per slab, as configured */
	uint64_t stride;    /**< bytes from one slab to the next */
	uint32_t count;     /**< slabs */
	uint32_t page;      /**< enum rmpsc_page: what was mapped */
	int32_t node;       /**< NUMA node the pages were placed on, or RMPSC_NODE_ANY */
	uint8_t tier_bits;  /**< handle bits naming the tier (top bits) */
	uint8_t gen_bits;   /**< handle bits of generation (middle) */
	uint8_t index_bits; /**< handle bits of slab index (low bits) */
	uint8_t _pad0;      /**< written as zero */
} rmpsc_pool_region;

/**
 * Write the defaults (one tier of 1024 slabs of 2048 bytes, normal pages
 * with fallback, no NUMA preference, flags 0) into at most @p size bytes of
 * @p cfg and record @p size.
 *
 * @return 0; -EINVAL: @p cfg NULL, @p size below RMPSC_POOL_CONFIG_SIZE_V1
 *  or not a multiple of 8; -E2BIG: @p size above 4096. Nothing is written
 *  on error.
 * Concurrency: any thread. Progress: wait-free. Ordering: none.
 */
RMPSC_API int rmpsc_pool_config_init(rmpsc_pool_config *cfg, uint32_t size);

/**
 * Fill @p tiers with the default series: RMPSC_POOL_DEFAULT_TIERS sizes,
 * 32 << 2k bytes for k = 0..11 (32 B .. 128 MiB), each with
 * max(1, bytes_per_tier / size) slabs, capped so that every tier keeps
 * RMPSC_POOL_GEN_BITS_MIN generation bits (2^20 slabs).
 *
 * @param tiers  at least @p n entries.
 * @param n      entries available; at least RMPSC_POOL_DEFAULT_TIERS.
 * @param bytes_per_tier  memory each tier should span, >= 1.
 * @return RMPSC_POOL_DEFAULT_TIERS; -EINVAL: @p tiers NULL, @p n too small
 *  or @p bytes_per_tier 0.
 * Concurrency: any thread. Progress: wait-free. Ordering: none.
 */
RMPSC_API int rmpsc_pool_default_tiers(rmpsc_pool_tier *tiers, uint32_t n,
				       uint64_t bytes_per_tier);

/**
 * Create a pool: map and place every tier's region (every slab zero), and
 * put every slab on its tier's free list.
 *
 * @param cfg from rmpsc_pool_config_init(), then edited.
 * @param out receives the handle; NULL on error.
 * @return 0; -EINVAL: @p cfg or @p out NULL, bad size, unknown flags, a
 *  slab size of 0 or above RMPSC_POOL_SLAB_SIZE_MAX, a count of 0, sizes
 *  not strictly increasing, ntiers not matching tiers, too few generation
 *  bits left, an unknown page kind, a NUMA node that does not exist, a
 *  non-zero pad or reserved field; -E2BIG: size above 4096 or larger than
 *  this library's struct with non-zero extra bytes; -ENOMEM: a tier larger
 *  than the address space allows, or no memory; the mmap or mbind error
 *  of the page kind tried last (-ENOMEM or -EINVAL typically for hugetlb
 *  pages with none reserved and RMPSC_POOL_F_EXACT_PAGE).
 * Concurrency: any thread. Progress: blocking (maps memory). Ordering: none.
 */
RMPSC_API int rmpsc_pool_create(const rmpsc_pool_config *cfg, rmpsc_pool **out);

/**
 * Destroy a pool and its caches (whose handles are gone with it; none may
 * be in use). With slabs still held by callers, or an io_uring
 * registration, buffer ring or engine on the pool (ringmpsc/uring.h), the
 * pool is left as it was and -EBUSY returned, unless @p flags has
 * RMPSC_POOL_DESTROY_FORCE; an allocator blocked in
 * rmpsc_pool_alloc_timed() (which can only be when slabs are out) is
 * woken with -EPIPE and waited for before the memory goes. With FORCE
 * and an io_uring user left, the handle is dead (-EBADF) from here but
 * the memory stays until the last of those users is destroyed (an engine
 * cancels its I/O at once); and a
 * tier with a slab the kernel may still write (an engine whose drain
 * timed out, a prep never completed) is never unmapped: leaked, not
 * reused.
 *
 * @param p  NULL is accepted (returns 0).
 * @param flags 0 or RMPSC_POOL_DESTROY_FORCE.
 * @param outstanding  if not NULL, receives the slabs held by callers at
 *  the call (also on success with FORCE; 0 on other errors).
 * @return 0; -EBUSY: slabs out or io_uring users, and no FORCE; -EINVAL:
 *  unknown flags;
 *  -EBADF: @p p is not a pool.
 * Concurrency: no other call on @p p or its caches may run, except
 *  blocked allocations (woken) and frees that finish before them.
 * Progress: blocking. Ordering: none.
 */
RMPSC_API int rmpsc_pool_destroy(rmpsc_pool *p, uint32_t flags, uint64_t *outstanding);

/**
 * Close the pool for allocation: every allocation, blocked ones included,
 * returns -EPIPE from now on. Frees and accessors keep working, so
 * outstanding slabs can come back before destroy. Idempotent.
 *
 * @return 0; -EBADF.
 * Concurrency: any thread. Progress: wait-free plus one wake system call
 *  when allocators sleep. Ordering: release (an allocator that gets -EPIPE
 *  sees what preceded the close).
 */
RMPSC_API int rmpsc_pool_close(rmpsc_pool *p);

/**
 * Allocate a slab that holds at least @p len bytes (the smallest tier that
 * does). Its payload length is set to 0.
 *
 * @param len bytes wanted, 0..largest slab size.
 * @param h   receives the handle (RMPSC_POOL_HANDLE_NONE on error).
 * @return 0; -ENOBUFS: no slab of the tier left, in the pool or any cache
 *  (nor, with RMPSC_POOL_F_SPILL, in a larger tier); -EMSGSIZE: @p len
 *  above the largest slab size; -EPIPE: closed; -EINVAL: @p h NULL;
 *  -EBADF.
 * Concurrency: any thread. Progress: lock-free while the tier's free list
 *  has a slab; when it has none, slabs held by caches are taken under the
 *  pool's cache lock, waiting for each such cache's owner to leave the
 *  call it is in (blocking: milliseconds if that thread is preempted
 *  there). Ordering: acquire (the slab's previous owner's writes before
 *  its free are visible).
 */
RMPSC_API int rmpsc_pool_alloc(rmpsc_pool *p, uint64_t len, uint32_t *h);

/**
 * rmpsc_pool_alloc() that waits up to @p timeout_ns (negative: forever;
 * 0: try once) for a slab, as @p w says (NULL: RMPSC_WAIT_BLOCK defaults).
 *
 * @return as rmpsc_pool_alloc(), and -ETIMEDOUT when the time passes
 *  (instead of -ENOBUFS); -EPIPE when the pool is closed, before or during
 *  the wait; -EINVAL or -E2BIG for a bad @p w (as rmpsc_wait_validate()
 *  says), checked before anything else is tried.
 * Concurrency: any thread. Progress: blocking. Ordering: acquire.
 */
RMPSC_API int rmpsc_pool_alloc_timed(rmpsc_pool *p, uint64_t len, uint32_t *h,
				     int64_t timeout_ns, const rmpsc_wait *w);

/**
 * Allocate @p n slabs that each hold at least @p len bytes, all from one
 * tier (the smallest that holds @p len; with RMPSC_POOL_F_SPILL the
 * smallest such tier that has @p n free), all or none. The free list
 * gives up to @p n slabs in one atomic step: cheaper than @p n calls.
 *
 * @param hs receives @p n handles (on error no slab is taken and its
 *  contents are unspecified: the call uses it as scratch).
 * @return @p n (0 when @p n is 0 and the other checks pass: -EPIPE and
 *  -EMSGSIZE still apply); -ENOBUFS: not @p n free in any tier
 *  allowed (none taken); -EMSGSIZE; -EPIPE: closed; -EINVAL: @p hs NULL
 *  with @p n > 0, or @p n above INT32_MAX; -EBADF.
 * Concurrency: any thread. Progress: as rmpsc_pool_alloc(). Ordering:
 *  acquire.
 */
RMPSC_API int rmpsc_pool_alloc_n(rmpsc_pool *p, uint64_t len, uint32_t *hs, uint32_t n);

/**
 * Free @p n handles: each live one as rmpsc_pool_free() would, in one
 * atomic step per tier; the others (stale, freed, foreign) are skipped.
 *
 * @return the handles freed, 0..n: fewer than @p n means some were
 *  refused (rmpsc_pool_free() of one tells why); -EINVAL: @p hs NULL with
 *  @p n > 0, or @p n above INT32_MAX; -EBADF.
 * Concurrency: any thread. Progress: lock-free. Ordering: release.
 */
RMPSC_API int rmpsc_pool_free_n(rmpsc_pool *p, const uint32_t *hs, uint32_t n);

/**
 * Give a slab back. The handle is dead from here on: any call with it,
 * another free included, returns -ESTALE.
 *
 * @return 0; -ESTALE: freed already or stale; -EINVAL: not a handle of
 *  this pool (see the header); -EBUSY: the kernel holds the slab (I/O in
 *  flight, ringmpsc/uring.h): the handle stays live; -EBADF.
 * Concurrency: any thread; of two frees of one handle at once exactly one
 *  succeeds. Progress: lock-free. Ordering: release (the next owner sees
 *  the bytes written before the free).
 */
RMPSC_API int rmpsc_pool_free(rmpsc_pool *p, uint32_t h);

/**
 * The whole slab of a live handle, writable: @p slab->iov_base and
 * iov_len (the tier's slab size).
 *
 * @return 0; -ESTALE; -EINVAL (also @p slab NULL); -EBUSY: the kernel
 *  holds the slab (I/O in flight: no view of it is given out); -EBADF.
 * Concurrency: any thread. Progress: wait-free. Ordering: none.
 */
RMPSC_API int rmpsc_pool_slab(const rmpsc_pool *p, uint32_t h, struct iovec *slab);

/**
 * The payload of a live handle, for reading: @p view->iov_base is the
 * slab, iov_len the payload length last set.
 *
 * @return 0; -ESTALE; -EINVAL (also @p view NULL); -EBUSY: I/O in
 *  flight; -EBADF.
 * Concurrency: any thread. Progress: wait-free. Ordering: acquire (pairs
 *  with rmpsc_pool_set_len(): the bytes written before it are visible).
 */
RMPSC_API int rmpsc_pool_payload(const rmpsc_pool *p, uint32_t h, struct iovec *view);

/**
 * Set the payload length of a live handle's slab.
 *
 * @return 0; -EMSGSIZE: @p len above the slab size; -ESTALE; -EINVAL;
 *  -EBUSY: I/O in flight; -EBADF.
 * Concurrency: the slab's owner. Progress: wait-free. Ordering: release
 *  (a thread that reads the length with acquire, or gets the handle
 *  through a ring, sees the bytes written before).
 */
RMPSC_API int rmpsc_pool_set_len(rmpsc_pool *p, uint32_t h, uint64_t len);

/**
 * The payload length of a live handle's slab.
 *
 * @return the length (>= 0); -ESTALE; -EINVAL; -EBUSY: I/O in flight;
 *  -EBADF.
 * Concurrency: any thread. Progress: wait-free. Ordering: acquire.
 */
RMPSC_API int64_t rmpsc_pool_get_len(const rmpsc_pool *p, uint32_t h);

/**
 * Where a live handle's slab is: its tier and its index in the tier
 * (slab index i of tier t starts at region base + i * stride; the
 * registered-buffer index is rmpsc_uring_buffer()'s).
 *
 * @param tier,index receive them; either may be NULL.
 * @return 0; -ESTALE; -EINVAL; -EBUSY: I/O in flight; -EBADF.
 * Concurrency: any thread. Progress: wait-free. Ordering: none.
 */
RMPSC_API int rmpsc_pool_locate(const rmpsc_pool *p, uint32_t h, uint32_t *tier,
				uint32_t *index);

/**
 * An iovec per handle, for readv/writev/io_uring: the payloads (base and
 * payload length, as rmpsc_pool_payload()), or with RMPSC_POOL_IOV_SLAB
 * the whole slabs (as rmpsc_pool_slab()). Every handle is checked before
 * anything is written.
 *
 * @param hs  @p n handles; @p iov room for @p n iovecs.
 * @return @p n; -ESTALE, -EINVAL or -EBUSY (I/O in flight) for the first
 *  bad handle (nothing written); -EINVAL: NULL arrays with @p n > 0, @p n above INT32_MAX,
 *  unknown flags; -EBADF.
 * Concurrency: any thread. Progress: wait-free. Ordering: acquire.
 */
RMPSC_API int rmpsc_pool_iovecs(const rmpsc_pool *p, const uint32_t *hs, uint32_t n,
				struct iovec *iov, uint32_t flags);

/**
 * Free slabs: in the pool and in every cache, all tiers (a snapshot,
 * exact when no call is in progress). It reads every slab's state, so it
 * costs O(slabs) (some 50 us per 100,000 slabs): a monitoring call, not
 * one for every message (the allocations and frees keep no count, which
 * would cost each of them a shared read-modify-write).
 *
 * @return the count (>= 0); -EBADF.
 * Concurrency: any thread. Progress: wait-free. Ordering: none.
 */
RMPSC_API int64_t rmpsc_pool_available(const rmpsc_pool *p);

/* ---- sharing with another process (RMPSC_POOL_F_SHARED) --------------------- */

/**
 * Descriptors for another process to map this pool's slabs read-only
 * (rmpsc_shm_pool_attach()): fds[0] is the pool's directory (geometry and
 * payload lengths), fds[1 + t] tier t's slabs. Each is a new read-only,
 * close-on-exec descriptor of the memfd (opened through /proc/self/fd);
 * the memfds are sealed against any write but through this process's
 * own mapping (F_SEAL_FUTURE_WRITE), so no other process can map the
 * memory writable or write(2) it, whatever descriptor it gets. The
 * caller sends them (rmpsc_fd_send()) and closes them.
 *
 * @return the count, 1 + the tier count; -EBADF; -EINVAL: @p fds NULL,
 *   or not a RMPSC_POOL_F_SHARED pool; -ENOSPC: @p max below the count;
 *   -EOPNOTSUPP: /proc is not mounted; -EMFILE, -ENFILE.
 * Concurrency: any thread. Progress: blocking. Ordering: none.
 */
RMPSC_API int rmpsc_pool_share_fds(const rmpsc_pool *p, int *fds, uint32_t max);

/**
 * Lend the slab of live handle @p h to another process: from now until
 * rmpsc_pool_reclaim() it is held as if by the kernel (free, the
 * accessors and io_uring submission return -EBUSY), and only
 * rmpsc_pool_reclaim() of this handle gives it back. Call it before
 * sending the handle (its payload length set: the other side reads it
 * from the directory).
 *
 * @return 0; -EBADF; -EINVAL: not a shared pool, or not a handle of this
 *   pool; -ESTALE; -EBUSY: held already (lent, or I/O in flight).
 * Concurrency: any thread. Progress: lock-free. Ordering: release.
 */
RMPSC_API int rmpsc_pool_lend(rmpsc_pool *p, uint32_t h);

/**
 * A lent slab came back (typically popped from a return ring, whose
 * other side is not trusted): if @p h is a lent slab's live handle, the
 * slab is freed; anything else is refused and changes nothing, so a
 * receiver returning junk, a handle twice, or a handle it was never lent
 * cannot touch a slab this process uses or its free list.
 *
 * @return 0; -EBADF; -EINVAL: not a shared pool, not a handle of this
 *   pool; -ESTALE: a generation the slab no longer has (this handle was
 *   reclaimed or freed already); -EALREADY: the handle is the slab's live
 *   one, but the slab is not lent (never was, or its lend is still in
 *   progress).
 * Concurrency: any thread. Progress: lock-free. Ordering: acquire.
 */
RMPSC_API int rmpsc_pool_reclaim(rmpsc_pool *p, uint32_t h);

/**
 * Slabs in all tiers.
 *
 * @return the count (>= 1); -EBADF.
 * Concurrency: any thread. Progress: wait-free. Ordering: none.
 */
RMPSC_API int64_t rmpsc_pool_capacity(const rmpsc_pool *p);

/**
 * Tiers of the pool.
 *
 * @return 1..RMPSC_POOL_TIERS_MAX; -EBADF.
 * Concurrency: any thread. Progress: wait-free. Ordering: none.
 */
RMPSC_API int rmpsc_pool_tier_count(const rmpsc_pool *p);

/**
 * A tier's region (base and length, for io_uring registration), slab
 * geometry, page kind and node got, and handle split.
 *
 * @return 0; -EINVAL: @p out NULL or @p tier out of range; -EBADF.
 * Concurrency: any thread. Progress: wait-free. Ordering: none.
 */
RMPSC_API int rmpsc_pool_tier_info(const rmpsc_pool *p, uint32_t tier,
				   rmpsc_pool_region *out);

/**
 * Create a cache of up to @p capacity free slabs per tier for @p p. It
 * starts empty and fills on first use.
 *
 * @param capacity 2..RMPSC_POOL_CACHE_MAX (64 is a good start).
 * @param out receives the handle; NULL on error.
 * @return 0; -EINVAL: @p out NULL or @p capacity out of range; -ENOMEM;
 *  -EBADF.
 * Concurrency: any thread. Progress: blocking (allocates). Ordering: none.
 */
RMPSC_API int rmpsc_pool_cache_create(rmpsc_pool *p, uint32_t capacity,
				      rmpsc_pool_cache **out);

/**
 * Flush the cache's slabs back to the pool, then free the cache.
 *
 * @param c NULL is accepted (returns 0).
 * @return 0; -EBADF.
 * Concurrency: the cache's thread, none using it at once. Progress:
 *  blocking. Ordering: release.
 */
RMPSC_API int rmpsc_pool_cache_destroy(rmpsc_pool_cache *c);

/**
 * Give every slab the cache holds back to the pool (a thread about to
 * idle for long, or a task that moves away).
 *
 * @return slabs given back (>= 0); -EBADF.
 * Concurrency: the cache's thread. Progress: lock-free. Ordering: release.
 */
RMPSC_API int rmpsc_pool_cache_flush(rmpsc_pool_cache *c);

/**
 * Free slabs the cache holds, all tiers.
 *
 * @return the count (>= 0); -EBADF.
 * Concurrency: any thread (a snapshot). Progress: wait-free. Ordering: none.
 */
RMPSC_API int64_t rmpsc_pool_cache_count(const rmpsc_pool_cache *c);

/**
 * rmpsc_pool_alloc() through a cache: from the cache when it has a slab
 * of the tier, else a batch from the pool into it.
 *
 * @return as rmpsc_pool_alloc().
 * Concurrency: the cache's thread. Progress: as rmpsc_pool_alloc().
 * Ordering: acquire.
 */
RMPSC_API int rmpsc_pool_cache_alloc(rmpsc_pool_cache *c, uint64_t len, uint32_t *h);

/**
 * rmpsc_pool_alloc_timed() through a cache.
 *
 * @return as rmpsc_pool_alloc_timed().
 * Concurrency: the cache's thread. Progress: blocking. Ordering: acquire.
 */
RMPSC_API int rmpsc_pool_cache_alloc_timed(rmpsc_pool_cache *c, uint64_t len, uint32_t *h,
					   int64_t timeout_ns, const rmpsc_wait *w);

/**
 * rmpsc_pool_alloc_n() through a cache: what the cache holds of the tier
 * first, the rest from the pool.
 *
 * @return as rmpsc_pool_alloc_n().
 * Concurrency: the cache's thread. Progress: as rmpsc_pool_alloc().
 * Ordering: acquire.
 */
RMPSC_API int rmpsc_pool_cache_alloc_n(rmpsc_pool_cache *c, uint64_t len, uint32_t *hs,
				       uint32_t n);

/**
 * rmpsc_pool_free_n() through a cache: into the cache while it has room,
 * the rest to the pool.
 *
 * @return as rmpsc_pool_free_n().
 * Concurrency: the cache's thread. Progress: lock-free. Ordering: release.
 */
RMPSC_API int rmpsc_pool_cache_free_n(rmpsc_pool_cache *c, const uint32_t *hs, uint32_t n);

/**
 * rmpsc_pool_free() through a cache: into the cache, or when it is full,
 * half of it back to the pool first. A slab of any thread's allocation may
 * be freed through any cache of the same pool.
 *
 * @return as rmpsc_pool_free().
 * Concurrency: the cache's thread. Progress: lock-free. Ordering: release.
 */
RMPSC_API int rmpsc_pool_cache_free(rmpsc_pool_cache *c, uint32_t h);

#ifdef __cplusplus
}
#endif

#endif /* RINGMPSC_POOL_H */
