/* SPDX-License-Identifier: MIT */
/*
 * Private to the library: attributes, RMPSC__ macros, cache-line size, magic
 * words and helpers every component uses. Never installed.
 */
#ifndef RMPSC_INTERNAL_H
#define RMPSC_INTERNAL_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "ringmpsc/common.h"

#define RMPSC__CACHELINE 64
/* Producer- and consumer-written groups are this far apart: two lines, so the
 * adjacent-line prefetcher cannot pull one side's line with the other's. */
#define RMPSC__GROUP 128

#define RMPSC__LIKELY(x) __builtin_expect(!!(x), 1)
#define RMPSC__UNLIKELY(x) __builtin_expect(!!(x), 0)
#define RMPSC__COLD __attribute__((cold, noinline))
#define RMPSC__ALWAYS_INLINE inline __attribute__((always_inline))
/* Internal symbols that tests reach through the static library. */
#define RMPSC__INTERNAL __attribute__((visibility("hidden")))

#ifdef RMPSC_DEBUG_LOG
void rmpsc__debug_log(const char *file, int line, const char *cond, int err);
#define RMPSC__LOG(cond, err) rmpsc__debug_log(__FILE__, __LINE__, #cond, (err))
#else
#define RMPSC__LOG(cond, err) ((void)0)
#endif

/* Debug builds (RMPSC_DEBUG_ASSERT: the sanitizer configurations): an
 * internal invariant that no caller can break through the API; a failure
 * prints where and aborts (error.c). Nothing in other builds. */
#ifdef RMPSC_DEBUG_ASSERT
RMPSC__INTERNAL void rmpsc__assert_fail(const char *file, int line, const char *cond)
	__attribute__((noreturn, cold));
#define RMPSC__ASSERT(cond)                                                    \
	do {                                                                   \
		if (RMPSC__UNLIKELY(!(cond)))                                  \
			rmpsc__assert_fail(__FILE__, __LINE__, #cond);         \
	} while (0)
#else
#define RMPSC__ASSERT(cond) ((void)0)
#endif

/* Early return with a negative errno (zstd's RETURN_ERROR_IF). */
#define RMPSC__CHECK(cond, err)                                                \
	do {                                                                   \
		if (RMPSC__UNLIKELY(cond)) {                                   \
			RMPSC__LOG(cond, err);                                 \
			return (err);                                          \
		}                                                              \
	} while (0)

/* Per-type magic words: the first field of every handle. */
#define RMPSC__HANDLE_IS(h, m) ((h) != NULL && rmpsc__magic(h) == (m))
enum {
	RMPSC__MAGIC_RING = 0x52494e47u, /* "RING" */
	RMPSC__MAGIC_NOTIFIER = 0x4e4f5446u, /* "NOTF" */
	RMPSC__MAGIC_LOOP = 0x4c4f4f50u, /* "LOOP" */
	RMPSC__MAGIC_MPSC = 0x4d505343u, /* "MPSC" */
	RMPSC__MAGIC_PRODUCER = 0x50524f44u, /* "PROD" */
	RMPSC__MAGIC_GONE = 0x474f4e45u, /* "GONE": a deregistered producer */
	RMPSC__MAGIC_SPMC = 0x53504d43u, /* "SPMC" */
	RMPSC__MAGIC_MPMC = 0x4d504d43u, /* "MPMC" */
	RMPSC__MAGIC_CONSUMER = 0x434f4e53u, /* "CONS" */
	RMPSC__MAGIC_POOL = 0x504f4f4cu, /* "POOL" */
	RMPSC__MAGIC_PCACHE = 0x50434348u, /* "PCCH" */
	RMPSC__MAGIC_DEAD = 0x44454144u, /* "DEAD": written by destroy */
	RMPSC__MAGIC_DOOMED = 0x444f4f4du, /* "DOOM": a destroyed pool an engine still holds */
	RMPSC__MAGIC_IO = 0x494f454eu,     /* "IOEN" */
	RMPSC__MAGIC_UREG = 0x55524547u,   /* "UREG" */
	RMPSC__MAGIC_UBUF = 0x55425546u,   /* "UBUF" */
	RMPSC__MAGIC_SHM_PROD = 0x53484d50u, /* "SHMP": a shared ring's producer */
	RMPSC__MAGIC_SHM_CONS = 0x53484d43u, /* "SHMC": a shared ring's consumer */
	RMPSC__MAGIC_SHM_MUX = 0x53484d58u,  /* "SHMX": a consumer's set of shared rings */
	RMPSC__MAGIC_SHM_POOL = 0x53484d4cu, /* "SHML": a shared pool's receiving side */
};

/*
 * The magic word of a handle, read as bytes: a pointer to some other object
 * (of another type, less aligned than ours) must get -EBADF, not an access
 * through a pointer to a type whose alignment it does not have.
 */
static inline uint32_t rmpsc__magic(const void *h)
{
	uint32_t m;

	memcpy(&m, h, sizeof m);
	return m;
}

static inline void rmpsc__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

static inline bool rmpsc__is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

/* The most elements a call that returns its count as int may take
 * (common.h): a larger @n counts as INT32_MAX. */
static inline uint32_t rmpsc__int_count(uint32_t n)
{
	return n > INT32_MAX ? INT32_MAX : n;
}

#define RMPSC__CONFIG_SIZE_MAX 4096u

/*
 * Read a caller's size-prefixed config into the library's own struct
 * (openat2/clone3 rules): @p dst is first filled with defaults by the caller;
 * the caller's first min(size, dst_size) bytes overwrite them. A caller struct
 * larger than ours must be zero past our end.
 */
static inline int rmpsc__config_copy(void *dst, size_t dst_size, const void *src,
				     size_t min_size)
{
	uint32_t size;

	RMPSC__CHECK(!src, -EINVAL);
	memcpy(&size, src, sizeof size);
	RMPSC__CHECK(size < min_size || size % 8, -EINVAL);
	/* A config never grows past a page (openat2 and clone3 cap theirs
	 * likewise); a larger size is a wrong size, and scanning it for zeros
	 * would read far past the caller's struct. */
	RMPSC__CHECK(size > RMPSC__CONFIG_SIZE_MAX, -E2BIG);
	if (size > dst_size) {
		const unsigned char *extra = (const unsigned char *)src + dst_size;

		for (size_t i = 0; i < size - dst_size; i++)
			RMPSC__CHECK(extra[i], -E2BIG);
	}
	memcpy(dst, src, size < dst_size ? size : dst_size);
	return 0;
}

/*
 * The other direction: write the library's struct @src (@src_size bytes,
 * led by a uint32_t size) into a caller's size-prefixed struct of @size
 * bytes (config_init, get_wait, stats): at most @size bytes, zeros past
 * ours, and @size recorded in its size field. The size rule is the one
 * rmpsc__config_copy() applies, so whatever an init call accepts, the
 * create or wait call that reads it back accepts too.
 */
static inline int rmpsc__size_out(void *dst, uint32_t size, const void *src, size_t src_size,
				  uint32_t min_size)
{
	RMPSC__CHECK(!dst, -EINVAL);
	RMPSC__CHECK(size < min_size || size % 8, -EINVAL);
	RMPSC__CHECK(size > RMPSC__CONFIG_SIZE_MAX, -E2BIG);
	if (size > src_size)
		memset((unsigned char *)dst + src_size, 0, size - src_size);
	memcpy(dst, src, size < src_size ? size : src_size);
	memcpy(dst, &size, sizeof size);
	return 0;
}

/*
 * Memory regions (mem.c): one mapping each, zeroed, aligned to its page
 * kind, of at least @size bytes.
 *  page      what to map with; with @fallback, each kind that cannot be had
 *            falls to the next smaller one (1 GiB, 2 MiB or the default
 *            hugetlb size, transparent huge pages, normal pages) and
 *            region.page says what was got; without it the kind or an error.
 *  memfd     backed by a memfd (region.fd, close-on-exec) and MAP_SHARED,
 *            for a region another process maps; else anonymous, private.
 *  node      a NUMA node to place the pages on (preferred), before any page
 *            is touched, or RMPSC_NODE_ANY; region.node says whether the
 *            placement was made (no-op where NUMA is not available).
 *  prefault  every page faulted in before the call returns.
 *  seal      (memfd) sealed against shrinking, growing and new seals
 *            (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) once sized.
 *  seal_write (with seal) also against writes through any mapping or
 *            write(2) but the region's own mapping (F_SEAL_FUTURE_WRITE,
 *            added once it is mapped and prefaulted): another process
 *            can map it read-only, never writable.
 *  guard     one page with no access follows the region (region.guard),
 *            so that a run past its end faults instead of reading
 *            whatever the next mapping is.
 * rmpsc__region_map(): 0; -EINVAL (size 0 or absurd, unknown page kind);
 * the mmap/memfd/mbind/fcntl error of the last kind tried.
 * rmpsc__region_map_fd(): another process's memfd @fd, @size bytes of it
 * (page-rounded by the caller), MAP_SHARED with a guard page, owning a
 * close-on-exec duplicate of @fd, read-only with @readonly; 0 or the
 * dup/mmap error.
 */
enum rmpsc__page {
	RMPSC__PAGE_NORMAL = 0,
	RMPSC__PAGE_THP = 1,     /* madvise(MADV_HUGEPAGE) on a 2 MiB-aligned map */
	RMPSC__PAGE_HUGE = 2,    /* hugetlb, the system's default size */
	RMPSC__PAGE_HUGE_2M = 3, /* hugetlb 2 MiB */
	RMPSC__PAGE_HUGE_1G = 4, /* hugetlb 1 GiB */
};
struct rmpsc__region_req {
	size_t size;
	uint32_t page;
	bool fallback;
	bool memfd;
	bool prefault;
	bool seal;
	bool seal_write;
	bool guard;
	int32_t node;
};
struct rmpsc__region {
	void *base;
	size_t len;
	uint32_t page; /* enum rmpsc__page: what was mapped */
	int32_t node;  /* where placed, or RMPSC_NODE_ANY */
	int fd;        /* the memfd, or -1 */
	size_t guard;  /* bytes of guard after len (mapped, no access) */
};
RMPSC__INTERNAL int rmpsc__region_map(const struct rmpsc__region_req *q, struct rmpsc__region *r);
RMPSC__INTERNAL int rmpsc__region_map_fd(int fd, size_t size, bool prefault, bool readonly,
					 struct rmpsc__region *r);
RMPSC__INTERNAL void rmpsc__region_unmap(struct rmpsc__region *r);

/*
 * Pools under io_uring (pool.c for uring.c). attach: one more reference
 * (a registration, buffer ring or engine, with an optional hook called
 * when the pool is destroyed with FORCE), so a destroyed pool's memory
 * stays until detach drops the last. io_begin: a live handle's slab goes to the
 * kernel (free, accessors and a second io_begin get -EBUSY; a CAS, so of
 * a free and an io_begin exactly one wins), and what the I/O needs of it.
 * io_end: back to the handle's owner, with its payload length when
 * @len >= 0 (-EMSGSIZE past the slab: released, length kept; -EALREADY:
 * not held). A pool whose last reference goes while a slab is held keeps
 * (leaks) that tier's memory.
 */
struct rmpsc_pool;
struct rmpsc__slab {
	void *base;
	uint64_t size; /* slab bytes */
	uint64_t len;  /* payload length */
	uint32_t tier, index;
};
/*
 * A shared pool's directory (pool.c writes it, shm_pool.c validates and
 * reads it in the other process): a sealed memfd holding this header and
 * then one little-endian u64 payload length per slab, tier after tier.
 * Written once by the creator except the lengths, which the pool's owner
 * writes (relaxed) before it publishes a handle through a ring.
 */
#define RMPSC__POOL_SHARE_MAGIC 0x48535050435052ull /* "RPCPPSH" */
#define RMPSC__POOL_SHARE_VERSION 1u
struct rmpsc__pool_share_tier {
	uint64_t slab_size; /* payload bytes at most */
	uint64_t stride;    /* bytes between slabs: slab_size rounded to a line */
	uint64_t map_size;  /* the tier memfd's size */
	uint32_t count;     /* slabs */
	uint32_t ibits;     /* handle bits of the slab index */
	uint64_t len_off;   /* the tier's first length, in u64s from the lengths */
	uint64_t ino;       /* the tier memfd's inode: tells the tiers apart */
};
struct rmpsc__pool_share {
	uint64_t magic;
	uint32_t version;
	uint32_t ntiers;
	uint32_t tbits;     /* handle bits of the tier */
	uint32_t _pad0;
	uint64_t size;      /* the directory memfd's size */
	uint64_t nslabs;    /* lengths that follow the header */
	struct rmpsc__pool_share_tier tier[16]; /* RMPSC_POOL_TIERS_MAX */
};
#define RMPSC__POOL_SHARE_LENS 1024u /* the lengths start here */
_Static_assert(sizeof(struct rmpsc__pool_share) <= RMPSC__POOL_SHARE_LENS,
	       "the directory header fits before the lengths");

/* A user of the pool that wants to hear of a forced destroy (an engine:
 * it cancels its I/O). @gone runs under the pool's mutex, so it must not
 * call back into the pool's locking paths. */
struct rmpsc__pool_user {
	void (*gone)(struct rmpsc__pool_user *u);
	struct rmpsc__pool_user *next;
};
RMPSC__INTERNAL int rmpsc__pool_attach(struct rmpsc_pool *p, struct rmpsc__pool_user *u);
RMPSC__INTERNAL void rmpsc__pool_detach(struct rmpsc_pool *p, struct rmpsc__pool_user *u);
/* Remove @u's hook, keep the reference (detach(p, NULL) drops it later). */
RMPSC__INTERNAL void rmpsc__pool_unhook(struct rmpsc_pool *p, struct rmpsc__pool_user *u);
RMPSC__INTERNAL int rmpsc__pool_io_begin(struct rmpsc_pool *p, uint32_t h,
					 struct rmpsc__slab *out);
RMPSC__INTERNAL int rmpsc__pool_io_end(struct rmpsc_pool *p, uint32_t h, int64_t len);
/* Allocation and free for a holder of a reference, which may outlive the
 * handle (a forced destroy): never read the magic word a destroy writes.
 * alloc: -EPIPE once the pool is closed or destroyed. */
RMPSC__INTERNAL int rmpsc__pool_alloc(struct rmpsc_pool *p, uint64_t len, uint32_t *h);
RMPSC__INTERNAL int rmpsc__pool_free(struct rmpsc_pool *p, uint32_t h);
/* A handle's tier and index, its bits checked against the pool's ranges
 * only (0 or -EINVAL). */
RMPSC__INTERNAL int rmpsc__pool_where(const struct rmpsc_pool *p, uint32_t h, uint32_t *tier,
				      uint32_t *index);

/*
 * Rings' mappings (mem.c), through the region layer: anonymous private,
 * page aligned (hugetlb, no fallback, with RMPSC__MEM_HUGE), zeroed, placed
 * on @node (RMPSC_NODE_ANY: wherever the kernel puts them) before any page
 * is touched, prefaulted after that when asked.
 */
enum {
	RMPSC__MEM_HUGE = 1u << 0,     /* MAP_HUGETLB; fail rather than fall back */
	RMPSC__MEM_PREFAULT = 1u << 1, /* every page faulted in before return */
};
void *rmpsc__mem_map(size_t size, uint32_t mem_flags, int32_t node, size_t *mapped_len);
void rmpsc__mem_unmap(void *p, size_t mapped_len);

/*
 * NUMA (numa.c): whether placement works here (libnuma built in and the
 * memory-policy system calls permitted, probed once), and placing a
 * mapping's pages on a node (preferred, so a full node falls back): 0,
 * also when placement is a no-op or @node is RMPSC_NODE_ANY; -EINVAL: no
 * such node; another negative errno from mbind().
 */
RMPSC__INTERNAL bool rmpsc__numa_ok(void);
RMPSC__INTERNAL int rmpsc__numa_place(void *addr, size_t len, int32_t node);
/* The same for a mapping whose pages exist: they move to @node too. */
RMPSC__INTERNAL int rmpsc__numa_move(void *addr, size_t len, int32_t node);

/*
 * Waiting (wait.c). A blocking call polls a try function until it returns
 * something other than -EAGAIN, or the deadline passes.
 *
 * The futex kinds use a Dekker handshake between a sleeper and a waker: the
 * sleeper registers in a waiter count, issues a full barrier, re-checks,
 * sleeps; the waker publishes, issues a barrier, and makes a system call
 * only if it sees a registered waiter. The waker's side is on every hot
 * path, so it is asymmetric where the kernel allows (RMPSC__BARRIER_ASYM):
 * the sleeper's barrier is membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED),
 * which runs a full fence on every CPU that runs a thread of this process,
 * and the waker's is then only a compiler barrier. That orders nothing
 * for a thread of another process, so the mode is a setting of each ring
 * (and notifier), not of the library: RMPSC__BARRIER_FENCE puts seq_cst
 * fences on both sides, correct whoever the other side is, and is what a
 * process without membarrier uses everywhere. rmpsc__barrier_mode is the
 * best mode for this process's own objects (set once, at load time).
 *
 * A ring in memory shared between processes (shm.c) takes one of the two
 * RMPSC__BARRIER_SHARED modes: its futexes are not private (the kernel
 * keys them by the shared page, not by this process's address), and it is
 * either fenced on both sides (SHARED_FENCE) or asymmetric across
 * processes (SHARED_GLOBAL): the sleeper's barrier is then
 * membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED), a fence on every CPU that
 * runs a thread of any process registered for it, and both sides'
 * processes register (rmpsc__barrier_global_register()) before they use
 * the ring. Bit 0 of a mode: the waker's barrier is a compiler barrier;
 * bit 1: the futex words are shared.
 */
enum {
	RMPSC__BARRIER_FENCE = 0,
	RMPSC__BARRIER_ASYM = 1,
	RMPSC__BARRIER_SHARED = 2, /* the bit */
	RMPSC__BARRIER_SHARED_FENCE = 2,
	RMPSC__BARRIER_SHARED_GLOBAL = 3,
};
struct rmpsc_wait;
extern RMPSC__INTERNAL uint32_t rmpsc__barrier_mode;

/* The waker's half: orders the caller's earlier stores before its later
 * loads of a waiter count, as seen by a sleeper that ran
 * rmpsc__heavy_barrier() in the same @mode. */
static inline void rmpsc__light_barrier(uint32_t mode)
{
	if (RMPSC__LIKELY(mode & RMPSC__BARRIER_ASYM))
		atomic_signal_fence(memory_order_seq_cst);
	else
		atomic_thread_fence(memory_order_seq_cst);
}
RMPSC__INTERNAL void rmpsc__heavy_barrier(uint32_t mode);

/* Absolute CLOCK_MONOTONIC deadline in ns for a relative timeout: negative
 * means none (UINT64_MAX). */
RMPSC__INTERNAL uint64_t rmpsc__now_ns(void);
/* An absolute CLOCK_MONOTONIC time in ns as a timespec (futex and
 * futex_waitv deadlines). */
static inline struct timespec rmpsc__ns_to_ts(uint64_t ns)
{
	struct timespec ts = {
		.tv_sec = (time_t)(ns / 1000000000u),
		.tv_nsec = (long)(ns % 1000000000u),
	};
	return ts;
}

/* Bits that tell @n values apart: ceil(log2(n)), 0 for n <= 1 (a pool's
 * handle split, pool.c, checked again by its receiver, shm_pool.c). */
static inline uint32_t rmpsc__bits_for(uint64_t n)
{
	return n <= 1 ? 0 : 64 - (uint32_t)__builtin_clzll(n - 1);
}

static inline uint64_t rmpsc__deadline(int64_t timeout_ns)
{
	uint64_t now;

	if (timeout_ns < 0)
		return UINT64_MAX;
	now = rmpsc__now_ns();
	return (uint64_t)timeout_ns > UINT64_MAX - 1 - now ? UINT64_MAX - 1
							 : now + (uint64_t)timeout_ns;
}

/* Futex word: sleep while *word == expect, until @deadline (absolute ns,
 * UINT64_MAX: none). Returns 0 when woken or the word changed, -ETIMEDOUT.
 * EINTR is absorbed (the caller re-checks and sleeps again). */
RMPSC__INTERNAL int rmpsc__futex_wait(_Atomic uint32_t *word, uint32_t expect,
				      uint64_t deadline);
/* Bump the word and wake every sleeper on it. */
RMPSC__INTERNAL void rmpsc__futex_wake_all(_Atomic uint32_t *word);
/* The same for a word of an object whose barrier mode is @mode: shared
 * futexes for the RMPSC__BARRIER_SHARED modes, private ones otherwise. */
RMPSC__INTERNAL int rmpsc__futex_wait_as(_Atomic uint32_t *word, uint32_t expect,
					 uint64_t deadline, uint32_t mode);
RMPSC__INTERNAL void rmpsc__futex_wake_all_as(_Atomic uint32_t *word, uint32_t mode);
/* Register this process for MEMBARRIER_CMD_GLOBAL_EXPEDITED (once; later
 * calls return the first answer): 0, or -EOPNOTSUPP where the kernel has
 * no such command. */
RMPSC__INTERNAL int rmpsc__barrier_global_register(void);

/* Validate a caller's strategy (NULL: @dflt) into @out. */
RMPSC__INTERNAL int rmpsc__wait_resolve(const struct rmpsc_wait *w,
					const struct rmpsc_wait *dflt,
					struct rmpsc_wait *out);
RMPSC__INTERNAL void rmpsc__wait_default(struct rmpsc_wait *w);

/* Notifier (notify.c): what an attached ring calls after a publication. */
struct rmpsc_notifier;
RMPSC__INTERNAL void rmpsc__notifier_kick(struct rmpsc_notifier *n);
RMPSC__INTERNAL bool rmpsc__notifier_ok(const struct rmpsc_notifier *n);

/* The managed loop's use of a ring (ring.c, for loop.c). One step: wait for
 * elements as rmpsc_ring_readable_timed(), hand each segment to @fn (the
 * ring's consumer calls refuse re-entry from it with -EBUSY), release them;
 * the count or the first error. Attach: 0, -EBUSY (already a loop's, or
 * called from a handler on it), -EINVAL (borrows out), -EBADF. */
struct rmpsc_ring;
RMPSC__INTERNAL int rmpsc__ring_consume_timed(struct rmpsc_ring *r, rmpsc_borrow_fn fn,
					      void *ctx, int64_t timeout_ns,
					      const struct rmpsc_wait *w);
RMPSC__INTERNAL int rmpsc__ring_loop_attach(struct rmpsc_ring *r);
RMPSC__INTERNAL void rmpsc__ring_loop_detach(struct rmpsc_ring *r);

/* Test hooks: hidden in the shared library, reachable through the static one. */
RMPSC__INTERNAL int rmpsc__ring_set_position(struct rmpsc_ring *r, uint64_t pos);

/*
 * Test points: places inside a protocol where a test (through the static
 * library) runs its own code, to put another thread's actions at exactly
 * that point of a race and so make it deterministic. rmpsc__test_hook is
 * NULL outside such tests: a load and a predictable branch, on cold paths
 * only (never the single-element fast paths). Set it while no other thread
 * is inside the library.
 */
enum rmpsc__test_point {
	/* mpsc.c: a consumer round, between its loads of closed and nrings */
	RMPSC__TP_MPSC_ROUND = 1,
	/* ringset.c: register, with a reused ring half way through its reset */
	RMPSC__TP_RING_REUSE = 2,
};
extern RMPSC__INTERNAL void (*rmpsc__test_hook)(int point, void *obj);
#define RMPSC__TEST_POINT(point, obj)                                          \
	do {                                                                   \
		if (RMPSC__UNLIKELY(rmpsc__test_hook != NULL))                 \
			rmpsc__test_hook((point), (obj));                      \
	} while (0)

#endif /* RMPSC_INTERNAL_H */
