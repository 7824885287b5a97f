/* SPDX-License-Identifier: MIT */
/*
 * W9 peers: DPDK 22.11 rte_mempool (pool_peer.h), without a cache
 * (`dpdk-mempool`) and with a user-owned cache per thread
 * (`dpdk-mempool-cache`).
 *
 * Unlike rte_ring (impl_dpdk.c runs it on our own memory, without EAL), a
 * mempool cannot live without EAL: rte_mempool_create_empty() reserves a
 * memzone for its header and registers the pool in a tailq of EAL's shared
 * memory configuration, and its objects come from EAL's heap. So the first
 * time W9 asks for DPDK, EAL is initialised once, as small as it goes:
 *   --no-huge --no-pci --no-shconf -l 0 --no-telemetry -m 128
 *   --log-level=error
 * (anonymous memory instead of hugepages, no devices, no shared config
 * files, one lcore and no worker threads; --in-memory is refused next to
 * --no-huge, which implies legacy memory, so --no-shconf it is). EAL pins
 * the calling thread to its lcore's CPU; the harness's main thread gets its
 * CPU mask back right after. The mempool ops (ring_mp_mc, ring_mt_rts) come
 * from the driver librte_mempool_ring.so, which EAL loads from its plugin
 * directory (RTE_EAL_PMD_PATH) on a shared build such as Debian's.
 *
 * The harness's threads are not EAL threads (rte_lcore_id() is
 * LCORE_ID_ANY there, so they have no per-lcore cache): every call is
 * rte_mempool_generic_get/put with an explicit cache, NULL for
 * `dpdk-mempool` (each get and put goes to the pool's ring), or one made
 * by rte_mempool_cache_create(POOL_CACHE) in the thread for
 * `dpdk-mempool-cache` (what DPDK offers threads it did not create; flushed
 * and freed by the thread when it is done).
 *
 * A new pool per repetition (rte_mempool_create_empty, set_ops_byname,
 * populate_default), cache size 0 (no per-lcore caches). Ops: ring_mp_mc,
 * the default, in the same-thread and cross-thread rows; ring_mt_rts (the
 * relaxed tail sync ring DPDK recommends where threads share cores, as
 * impl_dpdk.c's W3/W6/W8 rings) in the oversubscribed row, where a thread
 * preempted between an MP/MC ring's head and tail update stalls the others.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_mempool.h>

#include "pool_peer.h"

static int dm_state; /* 0 not tried, 1 ready, -1 failed */
static char dm_why[256];

static int dm_setup(char *why, unsigned len)
{
	static const char *const args[] = {
		"bench_ring", "--no-huge",	"--no-pci", "--no-shconf", "-l",
		"0",	      "--no-telemetry", "-m",	    "128",	   "--log-level=error",
	};
	char *argv[sizeof args / sizeof args[0] + 1];
	struct rte_mempool *mp;
	cpu_set_t set;
	unsigned i;
	int have_set, rc;

	if (dm_state) {
		snprintf(why, len, "%s", dm_why);
		return dm_state > 0 ? 0 : -1;
	}
	dm_state = -1;
	/* rte_eal_init may permute its argv: a copy of the pointers. */
	for (i = 0; i < sizeof args / sizeof args[0]; i++)
		argv[i] = (char *)(uintptr_t)args[i];
	argv[i] = NULL;
	have_set = !sched_getaffinity(0, sizeof set, &set);
	rc = rte_eal_init((int)i, argv);
	if (have_set)
		sched_setaffinity(0, sizeof set, &set);
	if (rc < 0) {
		snprintf(dm_why, sizeof dm_why, "rte_eal_init failed: %s",
			 rte_strerror(rte_errno));
		snprintf(why, len, "%s", dm_why);
		return -1;
	}
	/* The ring ops must be there (the mempool_ring driver). */
	mp = rte_mempool_create_empty("bench_w9_probe", 63, 64, 0, 0, SOCKET_ID_ANY, 0);
	if (!mp || rte_mempool_set_ops_byname(mp, "ring_mt_rts", NULL) ||
	    rte_mempool_populate_default(mp) < 0) {
		snprintf(dm_why, sizeof dm_why,
			 "no mempool with ring ops (librte_mempool_ring.so not loaded?): %s",
			 rte_strerror(rte_errno));
		snprintf(why, len, "%s", dm_why);
		rte_mempool_free(mp);
		return -1;
	}
	rte_mempool_free(mp);
	dm_state = 1;
	return 0;
}

static void *dm_create(uint32_t n, uint32_t size, unsigned flags)
{
	static unsigned serial;
	char name[RTE_MEMPOOL_NAMESIZE];
	struct rte_mempool *mp;

	snprintf(name, sizeof name, "bench_w9_%u", serial++);
	mp = rte_mempool_create_empty(name, n, size, 0, 0, SOCKET_ID_ANY, 0);
	if (!mp)
		return NULL;
	if (rte_mempool_set_ops_byname(
		    mp, (flags & POOL_C_OVERSUB) ? "ring_mt_rts" : "ring_mp_mc", NULL) ||
	    rte_mempool_populate_default(mp) < 0 || rte_mempool_avail_count(mp) != n) {
		rte_mempool_free(mp);
		return NULL;
	}
	return mp;
}

static int64_t dm_destroy(void *pool)
{
	struct rte_mempool *mp = pool;
	const int64_t missing = (int64_t)mp->size - (int64_t)rte_mempool_avail_count(mp);

	rte_mempool_free(mp);
	return missing;
}

static void *dm_cache_init(void *pool)
{
	(void)pool;
	return rte_mempool_cache_create(POOL_CACHE, SOCKET_ID_ANY);
}

static void dm_cache_fini(void *pool, void *t)
{
	if (!t)
		return;
	rte_mempool_cache_flush(t, pool);
	rte_mempool_cache_free(t);
}

static int dm_alloc(void *pool, void *t, void **obj)
{
	return rte_mempool_generic_get(pool, obj, 1, t) ? 0 : 1;
}

static int dm_free(void *pool, void *t, void *obj)
{
	rte_mempool_generic_put(pool, &obj, 1, t);
	return 0;
}

#define DM_MEMBERS                                                               \
	.setup = dm_setup, .create = dm_create, .destroy = dm_destroy,          \
	.alloc = dm_alloc, .free = dm_free

struct pool_peer bench_pool_dpdk = {
	.im = { .name = "dpdk-mempool",
		.api_note = "W9 only: DPDK rte_mempool (minimal EAL, --no-huge), "
			    "rte_mempool_generic_get/put of 1 object with no cache: every "
			    "call is a ring_mp_mc (oversubscribed: ring_mt_rts) ring op",
		.workloads = BENCH_WL_W9 },
	DM_MEMBERS,
};

struct pool_peer bench_pool_dpdk_cache = {
	.im = { .name = "dpdk-mempool-cache",
		.api_note = "W9 only: DPDK rte_mempool with a user-owned "
			    "rte_mempool_cache_create(256) per thread (the harness's "
			    "threads are not lcores)",
		.workloads = BENCH_WL_W9 },
	DM_MEMBERS,
	.thread_init = dm_cache_init,
	.thread_fini = dm_cache_fini,
};
