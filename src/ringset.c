/* SPDX-License-Identifier: MIT */
/*
 * The producer rings of the MPSC and MPMC channels: creation, registration
 * with reuse of drained rings, close. See ringset.h for the
 * Synchronization block (C1-C3).
 */
#include <stdlib.h>

#include "ringmpsc/channel.h"
#include "ringmpsc/numa.h"
#include "ringmpsc/ring.h"

#include "ringset.h"

_Static_assert(RMPSC_MPSC_PRODUCERS_MAX <= 1u << RC_TOKEN_ID_BITS,
	       "every ring id fits the id field of a borrow token");

int rmpsc__ringset_check(uint32_t flags, uint32_t flags_all, uint32_t esz, uint32_t cap,
			 uint32_t producers, uint32_t max, int32_t numa_node)
{
	RMPSC__CHECK(flags & ~flags_all, -EINVAL);
	RMPSC__CHECK(esz == 0 || esz > RMPSC_RING_ELEM_SIZE_MAX, -EINVAL);
	RMPSC__CHECK(!rmpsc__is_pow2(cap) || cap > RMPSC_RING_CAPACITY_MAX, -EINVAL);
	RMPSC__CHECK(max == 0 || max > RMPSC_MPSC_PRODUCERS_MAX, -EINVAL);
	RMPSC__CHECK(producers > max, -EINVAL);
	RMPSC__CHECK(numa_node < RMPSC_NODE_ANY, -EINVAL);
	RMPSC__CHECK(numa_node >= 0 && rmpsc__numa_ok() && numa_node >= rmpsc_numa_node_count(),
		     -EINVAL);
	RMPSC__CHECK(cap > (SIZE_MAX - RC_MAP_SIZE) / esz, -ENOMEM);
	return 0;
}

static RMPSC__COLD struct rmpsc_producer *ring_new(struct rmpsc__ringset *rs, uint32_t id,
						    int32_t node)
{
	uint32_t mf = ((rs->flags & RMPSC_MPSC_F_HUGEPAGE) ? RMPSC__MEM_HUGE : 0u) |
		      ((rs->flags & RMPSC_MPSC_F_PREFAULT) ? RMPSC__MEM_PREFAULT : 0u);
	rmpsc__rcore *rc = rmpsc__rc_map(RMPSC__MAGIC_GONE, rs->ring_cap, rs->ring_cap, rs->esz, mf,
					 node);
	struct rmpsc_producer *p;

	if (!rc)
		return NULL;
	p = (struct rmpsc_producer *)(void *)rc; /* the core is its only member */
	p->core.flags = (rs->flags & RMPSC_MPSC_F_METRICS) ? RC_F_METRICS : 0u;
	if (rs->mc && rmpsc__rc_mc_init(&p->core)) {
		rmpsc__rc_unmap(&p->core);
		return NULL;
	}
	p->core.barrier = rs->barrier;
	p->core.cwait = rs->cwait;
	p->core.cseq = rs->cseq;
	p->core.owner = rs;
	p->core.id = id;
	p->core.numa_node = node;
	atomic_store_explicit(&p->core.sh->state, RING_FREE, memory_order_relaxed);
	return p;
}

void rmpsc__ringset_fini(struct rmpsc__ringset *rs)
{
	uint32_t n = atomic_load_explicit(&rs->nrings, memory_order_acquire);

	for (uint32_t i = 0; i < n; i++)
		rmpsc__rc_unmap(&rs->dir[i]->core);
	pthread_mutex_destroy(&rs->lock);
	free(rs->dir);
	rs->dir = NULL;
}

int rmpsc__ringset_init(struct rmpsc__ringset *rs, uint32_t esz, uint32_t cap, uint32_t flags,
			uint32_t producers, uint32_t max, int32_t numa_node, bool mc,
			_Atomic uint32_t *cwait, _Atomic uint32_t *cseq)
{
	rs->esz = esz;
	rs->ring_cap = cap;
	rs->flags = flags;
	rs->max = max;
	rs->numa_node = numa_node;
	rs->mc = mc;
	rs->cwait = cwait;
	rs->cseq = cseq;
	rs->barrier = rmpsc__barrier_mode;
	atomic_init(&rs->nrings, 0);
	atomic_init(&rs->closed, 0);
	atomic_init(&rs->nactive, 0);
	rs->dir = calloc(max, sizeof *rs->dir);
	if (!rs->dir)
		return -ENOMEM;
	if (pthread_mutex_init(&rs->lock, NULL)) {
		free(rs->dir);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < producers; i++) {
		rs->dir[i] = ring_new(rs, i, rs->numa_node);
		if (!rs->dir[i]) {
			rmpsc__ringset_fini(rs);
			return -ENOMEM;
		}
		atomic_store_explicit(&rs->nrings, i + 1, memory_order_release); /* C2 */
	}
	return 0;
}

/*
 * A multi-consumer ring whose producer left (GONE) can go to a new one once
 * its close decided the end and the consumers claimed up to it and
 * completed every claim on it: the head its producer would collect (M2)
 * reaches the end. Nothing of the old stream can then be read or released
 * any more. A consumer still on its way to a claim of the ring (between its
 * loads and its CAS) cannot take anything old: claim stands at the end,
 * and positions only grow across the reset (rc_set_position()), so its CAS
 * from an older claim fails, and a claim of what the new producer
 * publishes is a claim like any other. Under the set's lock; the collect
 * writes the ring's head as its producer would.
 */
static bool mc_ring_drained(rmpsc__rcore *rc)
{
	if (rc->magic != RMPSC__MAGIC_GONE)
		return false;
	/* E3 acquire: final_tail. */
	if (atomic_load_explicit(&rc->sh->closed, memory_order_acquire) != RC_CLOSED)
		return false;
	if (rmpsc__rc_mc_collect(rc) !=
	    atomic_load_explicit(&rc->sh->final_tail, memory_order_acquire))
		return false;
	/* Elements consumers took ahead from it are handed out first: until
	 * then its id stays the old producer's. */
	return atomic_load_explicit(&rc->mc_ahead, memory_order_acquire) == 0;
}

int rmpsc__ringset_register(struct rmpsc__ringset *rs, struct rmpsc_producer **out)
{
	struct rmpsc_producer *p = NULL;
	uint32_t n, i;
	int32_t node;
	int ret;

	pthread_mutex_lock(&rs->lock);
	if (atomic_load_explicit(&rs->closed, memory_order_relaxed)) {
		ret = -EPIPE;
		goto out;
	}
	n = atomic_load_explicit(&rs->nrings, memory_order_relaxed); /* ours, under lock */
	/* The config's node, or else the registering thread's (where its
	 * producer will run), where NUMA placement works. */
	node = rs->numa_node != RMPSC_NODE_ANY || !rmpsc__numa_ok() ? rs->numa_node
								    : rmpsc_numa_current_node();
	for (i = 0; i < n; i++) {
		rmpsc__rcore *rc = &rs->dir[i]->core;

		/* MPSC consumers hand drained rings back (FREE); MPMC rings
		 * are taken back here, once drained and completed. */
		if (rmpsc__ring_free(rc) || (rs->mc && mc_ring_drained(rc))) {
			p = rs->dir[i];
			break;
		}
	}
	if (!p) {
		if (n == rs->max) {
			ret = -ENOSPC;
			goto out;
		}
		p = ring_new(rs, n, node);
		if (!p) {
			ret = -ENOMEM;
			goto out;
		}
		rs->dir[n] = p;
		atomic_store_explicit(&rs->nrings, n + 1, memory_order_release); /* C2 */
	} else if (node != p->core.numa_node) {
		/* A ring made up front or left by another producer: its pages
		 * move to this producer's node (best effort: placement is a
		 * hint, a failed move leaves them where they are). */
		if (rmpsc__numa_move(&p->core, p->core.map_len, node) == 0)
			p->core.numa_node = node;
	}
	/* No producer or consumer touches a FREE ring (C1), and no consumer
	 * can claim from a drained MPMC ring's old life (mc_ring_drained()):
	 * reset it for its new producer, at its own tail (past any
	 * publication the close dropped), so that status calls and claims
	 * racing the reset see positions that only grow (rc_set_position()). */
	rc_set_position(&p->core, rc_tail(&p->core));
	atomic_store_explicit(&p->core.sh->prod_waiters, 0, memory_order_relaxed);
	rmpsc__wait_default(&p->core.wait);
	p->core.magic = RMPSC__MAGIC_PRODUCER;
	atomic_store_explicit(&p->core.sh->state, RING_ACTIVE, memory_order_release); /* C1 */
	atomic_fetch_add_explicit(&rs->nactive, 1, memory_order_relaxed);
	*out = p;
	ret = (int)p->core.id;
out:
	pthread_mutex_unlock(&rs->lock);
	return ret;
}

/* The producers of every channel with a ring per producer (MPSC, MPMC)
 * alike: the owner is their set. */
int rmpsc_producer_deregister(rmpsc_producer *p)
{
	struct rmpsc__ringset *rs;

	PROD_CHECK(p);
	rs = p->core.owner;
	pthread_mutex_lock(&rs->lock);
	p->core.magic = RMPSC__MAGIC_GONE;
	atomic_fetch_sub_explicit(&rs->nactive, 1, memory_order_relaxed);
	pthread_mutex_unlock(&rs->lock);
	rmpsc__rc_close(&p->core);
	return 0;
}

/* Its 1.0 name, which the MPMC channel shared. */
int rmpsc_mpsc_deregister(rmpsc_producer *p)
{
	return rmpsc_producer_deregister(p);
}

void rmpsc__ringset_close(struct rmpsc__ringset *rs)
{
	uint32_t n;

	pthread_mutex_lock(&rs->lock);
	atomic_store_explicit(&rs->closed, 1, memory_order_release); /* C3 */
	n = atomic_load_explicit(&rs->nrings, memory_order_relaxed);
	pthread_mutex_unlock(&rs->lock);
	/* No ring is added once closed is set under the lock. Closing a FREE
	 * ring is harmless: it is empty and stays FREE. Each close wakes the
	 * consumers through the shared words. */
	for (uint32_t i = 0; i < n; i++)
		rmpsc__rc_close(&rs->dir[i]->core);
	rmpsc__futex_wake_all(rs->cseq);
}

bool rmpsc__ringset_is_drained(const struct rmpsc__ringset *rs)
{
	uint32_t n;

	/* C3 before C2, as the consumers read them: every ring registered
	 * before the close is counted. */
	if (!atomic_load_explicit(&rs->closed, memory_order_acquire))
		return false;
	n = rmpsc__ringset_count(rs);
	for (uint32_t i = 0; i < n; i++) {
		const rmpsc__rcore *rc = &rs->dir[i]->core;

		/* A FREE ring has no producer and, with the set closed, never
		 * gets one (C1, C3): nothing will come from it, whether or not
		 * the close has reached it yet (the consumers skip it too). */
		if (rmpsc__ring_free(rc))
			continue;
		/* Claimed, and no element taken ahead still to hand out. */
		if (!(rs->mc ? rc_mc_is_drained(rc) &&
				       !atomic_load_explicit(&rc->mc_ahead, memory_order_acquire)
			     : rc_is_drained(rc)))
			return false;
	}
	return true;
}

int64_t rmpsc__ringset_len(const struct rmpsc__ringset *rs)
{
	uint32_t n = rmpsc__ringset_count(rs);
	int64_t total = 0;

	for (uint32_t i = 0; i < n; i++)
		total += (int64_t)(rs->mc ? rc_mc_len(&rs->dir[i]->core)
					  : rc_len(&rs->dir[i]->core));
	return total;
}
