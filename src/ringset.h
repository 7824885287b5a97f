/* SPDX-License-Identifier: MIT */
/*
 * A set of producer rings, one per registered producer: what the MPSC and
 * MPMC channels have in common (ringset.c), producer registration and
 * deregistration included. A producer handle is its ring: struct
 * rmpsc_producer is the ring core's view, then its shared part and the
 * slots, in one mapping (rmpsc__rc_map()), and core.owner points back at
 * the set.
 *
 * Synchronization
 * ---------------
 * dir[], nrings  dir[i] is written once, under lock, before nrings is
 *         raised past i with a store-release (C2); readers load nrings with
 *         acquire (C2) and then read dir[i] for i below it. Rings never
 *         move and are unmapped only when the set is destroyed.
 * core.sh->state  RING_FREE (no producer: made up front, or drained after its
 *         producer left; MPSC) or RING_ACTIVE. MPMC rings are never made
 *         FREE once used: register takes a left producer's ACTIVE ring
 *         back itself once drained (ringset.c, mc_ring_drained()), while
 *         consumers may still look at it. Register turns FREE into ACTIVE
 *         under lock after resetting the ring (store-release C1); the
 *         consumer side turns a closed, drained ACTIVE ring into FREE with
 *         a store-release (C1) as the last thing it does with that ring;
 *         each side reads it with acquire (C1) before touching the ring's
 *         fields. So a reset never races with a consumer (which leaves FREE
 *         rings alone) and the consumer sees the reset state.
 * closed  written under lock by close (store-release C3) before the rings
 *         are closed; read under lock by register, and with acquire (C3)
 *         by consumers, which report -EPIPE once every ring is FREE.
 */
#ifndef RMPSC_RINGSET_H
#define RMPSC_RINGSET_H

#include <pthread.h>

#include "ring_core.h"
#include "wait_core.h"

struct rmpsc_producer {
	struct rmpsc__rcore core;
};

enum { RING_ACTIVE = 0, RING_FREE = 1 };

struct rmpsc__ringset {
	uint32_t esz;
	uint32_t ring_cap;
	uint32_t flags;   /* RMPSC_MPSC_F_* */
	uint32_t max;     /* rings at most */
	int32_t numa_node;
	uint32_t mc;      /* multi-consumer rings (claim index, done table) */
	_Atomic uint32_t *cwait, *cseq; /* the consumers' sleep words (E4/E5) */
	uint32_t barrier;               /* every ring's RMPSC__BARRIER_* (E4, E7) */
	struct rmpsc_producer **dir;    /* [max] (C2) */
	pthread_mutex_t lock;           /* register, deregister, close */
	alignas(RMPSC__GROUP) _Atomic uint32_t nrings; /* C2 */
	_Atomic uint32_t closed;                       /* C3 */
	_Atomic uint32_t nactive;                      /* registered producers */
};

#define PROD_CHECK(p)                                                          \
	RMPSC__CHECK(!RMPSC__HANDLE_IS(p, RMPSC__MAGIC_PRODUCER), -EBADF)

/* Validate the common config fields; 0 or -EINVAL / -ENOMEM. */
RMPSC__INTERNAL int rmpsc__ringset_check(uint32_t flags, uint32_t flags_all, uint32_t esz,
					 uint32_t cap, uint32_t producers, uint32_t max,
					 int32_t numa_node);
/* Set up and make @producers FREE rings; 0 or -ENOMEM (then nothing to
 * free). */
RMPSC__INTERNAL int rmpsc__ringset_init(struct rmpsc__ringset *rs, uint32_t esz, uint32_t cap,
					uint32_t flags, uint32_t producers, uint32_t max,
					int32_t numa_node, bool mc, _Atomic uint32_t *cwait,
					_Atomic uint32_t *cseq);
RMPSC__INTERNAL void rmpsc__ringset_fini(struct rmpsc__ringset *rs);
/* Returns the id, or -EPIPE / -ENOSPC / -ENOMEM. */
RMPSC__INTERNAL int rmpsc__ringset_register(struct rmpsc__ringset *rs, struct rmpsc_producer **out);
RMPSC__INTERNAL void rmpsc__ringset_close(struct rmpsc__ringset *rs);
/* Closed, and every ring's end decided and consumed (claimed, for mc
 * rings): true at a moment during the call. */
RMPSC__INTERNAL bool rmpsc__ringset_is_drained(const struct rmpsc__ringset *rs);
/* Committed elements not yet consumed (or, for mc rings, not yet claimed). */
RMPSC__INTERNAL int64_t rmpsc__ringset_len(const struct rmpsc__ringset *rs);

static inline uint32_t rmpsc__ringset_count(const struct rmpsc__ringset *rs)
{
	return atomic_load_explicit(&rs->nrings, memory_order_acquire); /* C2 */
}

static inline rmpsc__rcore *rmpsc__ringset_ring(const struct rmpsc__ringset *rs, uint32_t i)
{
	return &rs->dir[i]->core;
}

/* Where the set's consumers wait (E4/E5): the channel's sleeper count and
 * futex word, which every ring's producer wakes; no index to watch (the
 * try looks at every ring), the set's closed flag. */
static inline struct rmpsc__waitsite rmpsc__ringset_waitsite(const struct rmpsc__ringset *rs)
{
	struct rmpsc__waitsite ws = {
		.watch = NULL,
		.closed = &rs->closed,
		.waiters = rs->cwait,
		.seq = rs->cseq,
		.barrier = rs->barrier,
		.sleep_fn = NULL,
	};

	return ws;
}

static inline bool rmpsc__ring_free(const rmpsc__rcore *rc)
{
	/* C1 acquire: a ring handed to a new producer is seen reset. */
	return atomic_load_explicit(&rc->sh->state, memory_order_acquire) == RING_FREE;
}

/* Closed and drained: hand it back for a later producer. C1 release, the
 * consumer's last touch of this ring. */
static inline void rmpsc__ring_retire(rmpsc__rcore *rc)
{
	atomic_store_explicit(&rc->sh->state, RING_FREE, memory_order_release);
}

#endif /* RMPSC_RINGSET_H */
