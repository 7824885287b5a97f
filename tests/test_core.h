/* SPDX-License-Identifier: MIT */
/*
 * test_core.h: the one place where tests reach into the library's private
 * structures (src/internal.h, src/ring_core.h, src/ringset.h). Every
 * white-box access of tests/ goes through a named static inline function
 * here, and no test names a field of the ring core, so that a change of
 * the internal layout (fields moved between a shared part and a private
 * view, renamed) has to be followed in this header only.
 *
 * A test gets a ring's or a producer's core with tc_ring_core() or
 * tc_producer_core() and hands it only to the functions below. The one
 * exception is the core's own unit test, test_ring_core.c, which pins the
 * shared part's layout field by field. These links
 * need the static library (the test hooks are hidden in the shared one).
 */
#ifndef RMPSC_TESTS_TEST_CORE_H
#define RMPSC_TESTS_TEST_CORE_H

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "ringmpsc/channel.h"
#include "ringmpsc/ring.h"

#include "internal.h"
#include "ring_core.h"
#include "ringset.h"

/* A ring core, as the tests see it: only through the functions below. */
typedef rmpsc__rcore tc_core;

/* struct rmpsc_ring begins with its core. */
static inline tc_core *tc_ring_core(rmpsc_ring *r)
{
	return (rmpsc__rcore *)(void *)r;
}

/* A producer handle (MPSC or MPMC) is its ring's core. */
static inline tc_core *tc_producer_core(const rmpsc_producer *p)
{
	return (rmpsc__rcore *)(void *)&((struct rmpsc_producer *)(uintptr_t)p)->core;
}

/* The magic word destroy leaves in a handle. */
static inline uint32_t tc_magic_dead(void)
{
	return RMPSC__MAGIC_DEAD;
}

/* ---- positions ---------------------------------------------------------- */

/* Move an idle, empty ring to the free-running position @pos (the test
 * hook): 0, or -EBADF. */
static inline int tc_set_position(rmpsc_ring *r, uint64_t pos)
{
	return rmpsc__ring_set_position(r, pos);
}

/* The same on any core (an MPMC producer's, before a consumer touches it). */
static inline void tc_core_set_position(tc_core *c, uint64_t pos)
{
	rc_set_position(c, pos);
}

/* The release position (a claiming ring's collected head), the
 * consumers' claim and the producer's. */
static inline void tc_positions(const tc_core *c, uint64_t *head, uint64_t *claim,
				uint64_t *tail)
{
	*head = atomic_load_explicit((c->flags & RC_F_MC) ? &c->sh->mc_head : &c->sh->head,
				     memory_order_acquire);
	*claim = atomic_load_explicit(&c->sh->claim, memory_order_acquire);
	*tail = atomic_load_explicit(&c->sh->tail, memory_order_acquire);
}

/* ---- the close protocol, one step at a time ------------------------------ */

/* The states of a close (E7 in src/ring_core.h). */
enum {
	TC_OPEN = RC_OPEN,
	TC_CLOSING = RC_CLOSING,   /* a closer is in its barrier */
	TC_DECIDING = RC_DECIDING, /* someone between the two stores of the end */
	TC_CLOSED = RC_CLOSED,     /* the end (final tail) is decided */
};

static inline void tc_set_close_state(tc_core *c, uint32_t state)
{
	atomic_store_explicit(&c->sh->closed, state, memory_order_seq_cst);
}

static inline uint32_t tc_close_state(const tc_core *c)
{
	return atomic_load_explicit(&c->sh->closed, memory_order_seq_cst);
}

static inline void tc_set_final_tail(tc_core *c, uint64_t tail)
{
	atomic_store_explicit(&c->sh->final_tail, tail, memory_order_seq_cst);
}

static inline uint64_t tc_final_tail(const tc_core *c)
{
	return atomic_load_explicit(&c->sh->final_tail, memory_order_seq_cst);
}

/* Publish up to @tail as a producer's store does (release), nothing else. */
static inline void tc_set_tail(tc_core *c, uint64_t tail)
{
	atomic_store_explicit(&c->sh->tail, tail, memory_order_release);
}

/* What a push of the 8-byte @v does up to its look at closed: the slot,
 * then the tail. */
static inline void tc_publish_by_hand(tc_core *c, uint64_t v)
{
	const uint64_t t = atomic_load_explicit(&c->sh->tail, memory_order_relaxed);

	memcpy(rc_slot(c, t), &v, sizeof v);
	tc_set_tail(c, t + 1);
}

/* What a publication that found the ring closing calls: 0 if it ended the
 * stream at @new_tail itself, -EPIPE if the end was decided below it. */
static inline int tc_publish_closed(tc_core *c, uint64_t new_tail)
{
	return rmpsc__rc_publish_closed(c, new_tail);
}

/* ---- multi-consumer claims on a core -------------------------------------- */

static inline int tc_mc_init(tc_core *c)
{
	return rmpsc__rc_mc_init(c);
}

static inline int tc_mc_claim(tc_core *c, uint32_t n, uint64_t *pos)
{
	return rc_mc_claim(c, n, pos);
}

static inline void tc_mc_complete(tc_core *c, uint64_t pos, uint32_t n)
{
	rc_mc_complete(c, pos, n);
}

/* ---- sleepers and the words they sleep on --------------------------------- */

/* Consumers registered to sleep for data on this ring (its channel's count
 * for a channel ring). */
static inline _Atomic uint32_t *tc_consumer_sleepers(tc_core *c)
{
	return c->cwait;
}

/* Producers registered to sleep for room. */
static inline _Atomic uint32_t *tc_prod_waiters(tc_core *c)
{
	return &c->sh->prod_waiters;
}

/* The futex words a consumer and a producer sleep on. */
static inline const void *tc_consumer_sleep_word(const tc_core *c)
{
	return c->cseq;
}

static inline const void *tc_producer_sleep_word(const tc_core *c)
{
	return &c->sh->prod_seq;
}

/* ---- consumer lock-outs ----------------------------------------------------- */

/* Lock the consumer out as an outstanding borrow does (its calls return
 * -EINVAL) without borrowing anything; unlock gives that back. */
static inline void tc_lock_consumer(tc_core *c)
{
	c->nborrow++;
}

static inline void tc_unlock_consumer(tc_core *c)
{
	c->nborrow--;
}

/* ---- test points -------------------------------------------------------------- */

enum {
	TC_TP_MPSC_ROUND = RMPSC__TP_MPSC_ROUND, /* a consumer round, between closed and nrings */
	TC_TP_RING_REUSE = RMPSC__TP_RING_REUSE, /* register, a reused ring half reset */
};

/* Run @fn at every test point (NULL: none); set while no other thread is
 * inside the library. */
static inline void tc_set_test_hook(void (*fn)(int point, void *obj))
{
	rmpsc__test_hook = fn;
}

#endif /* RMPSC_TESTS_TEST_CORE_H */
