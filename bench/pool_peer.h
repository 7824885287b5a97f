/* SPDX-License-Identifier: MIT */
/*
 * pool_peer.h: W9's allocator peers (wl_pool.c, README.md "W9").
 *
 * W9 measures alloc+free pairs of libringmpsc's BufferPool (ringmpsc/pool.h)
 * next to other allocators. Each allocator is one `struct pool_peer`, whose
 * first member is the `struct bench_impl` that bench_ring.c's impl table
 * points at: the runner, the report and the JSON see an ordinary
 * implementation (its name in the impl column, its rows ratioed against the
 * best other), which runs W9 only (workloads BENCH_WL_W9). libringmpsc's
 * plain pool calls run under the `ringmpsc` adapter itself (ours); its
 * per-thread caches are `ringmpsc-cache`, a variant of ours.
 *
 *   pool_peer_malloc.c  glibc malloc/free; jemalloc and mimalloc through
 *                       dlopen(RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND), so they
 *                       never replace the process's malloc
 *   pool_peer_dpdk.c    DPDK rte_mempool, without and with user-owned caches
 *   pool_peer_boost.cc  a fixed-capacity Boost.Lockfree stack of slab indices
 *
 * A peer gives either malloc_fn/free_fn (called directly by the workload's
 * loops, one indirect call per operation, as the harness reaches every
 * library) or create/destroy/alloc/free (one indirect call into the adapter,
 * the peer's header code inlined there).
 */
#ifndef RMPSC_BENCH_POOL_PEER_H
#define RMPSC_BENCH_POOL_PEER_H

#include <stddef.h>
#include <stdint.h>

#include "bench_impl.h"

#ifdef __cplusplus
extern "C" {
#endif

/* W9's bit in bench_impl.workloads (bench_impl.h names W1..W8). */
#define BENCH_WL_W9 (1u << 8)

enum {
	POOL_OBJ_SIZE = 256, /* bytes per object in the pair rows */
	POOL_NOBJ = 16384,   /* objects per pool (never exhausted: see wl_pool.c) */
	POOL_CACHE = 256,    /* per-thread cache capacity, ringmpsc and DPDK alike */
};

/* pool_peer.create() flags */
enum {
	/* The oversubscribed row: threads are preempted inside the peer's
	 * calls (DPDK takes its RTS ring ops then, see pool_peer_dpdk.c). */
	POOL_C_OVERSUB = 1u << 0,
};

struct pool_peer {
	struct bench_impl im; /* first: bench_impls[] holds &peer.im */
	/* Once, the first time W9 asks whether the peer can run (at planning,
	 * so only when W9 is selected): 0 ready; otherwise @why (@len bytes)
	 * says why, and the peer is left out of W9. NULL: always ready. */
	int (*setup)(char *why, unsigned len);
	/* malloc family: called directly (NULL for a pool peer). */
	void *(*malloc_fn)(size_t size);
	void (*free_fn)(void *p);
	/* Pool peers: a pool of @n objects of @size bytes, new for every
	 * repetition (NULL on failure); destroy returns the objects that did
	 * not come back (0), after every thread's context is gone. */
	void *(*create)(uint32_t n, uint32_t size, unsigned flags);
	int64_t (*destroy)(void *pool);
	/* A thread's context for alloc/free (its cache), made and flushed by
	 * the thread itself outside its timed part; NULL members: none. */
	void *(*thread_init)(void *pool);
	void (*thread_fini)(void *pool, void *t);
	/* 1 and *obj: allocated; 0: none free; < 0: failed. */
	int (*alloc)(void *pool, void *t, void **obj);
	/* 0: freed; < 0: failed. */
	int (*free)(void *pool, void *t, void *obj);
};

/* The peers (wl_pool.c, pool_peer_*.c/.cc); not const: setup fills in what
 * dlopen finds. */
extern struct pool_peer bench_pool_ringmpsc_cache;
extern struct pool_peer bench_pool_glibc;
extern struct pool_peer bench_pool_jemalloc;
extern struct pool_peer bench_pool_mimalloc;
extern struct pool_peer bench_pool_dpdk;	 /* BENCH_HAVE_DPDK_MEMPOOL */
extern struct pool_peer bench_pool_dpdk_cache; /* BENCH_HAVE_DPDK_MEMPOOL */
extern struct pool_peer bench_pool_boost;	 /* BENCH_HAVE_BOOST_STACK */

/* W9's own tables (like with like, the targets, the crossover), printed
 * after the report when W9 ran (wl_pool.c). */
void bench_pool_report(void);

#ifdef __cplusplus
}
#endif

#endif /* RMPSC_BENCH_POOL_PEER_H */
