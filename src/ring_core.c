/* SPDX-License-Identifier: MIT */
/*
 * The ring core, out-of-line half (the inline half and the Synchronization
 * block are ring_core.h; the close protocol is ring_close.c): mapping a
 * ring, the general single-element paths the fast ones fall back to, the
 * blocking calls of the core that every owner of rings uses, the wake-up
 * slow paths, attaching a notifier, borrowed reads and the multi-consumer
 * release.
 */
#include <stdlib.h>

#include "ring_core.h"
#include "wait_core.h"

/* ---- a ring of this process ---------------------------------------------- */

rmpsc__rcore *rmpsc__rc_map(uint32_t magic, uint64_t cap, uint64_t slots, uint32_t esz,
			    uint32_t mem_flags, int32_t node)
{
	struct rmpsc__rmap *m;
	size_t mapped;

	/* The caller bounds slots * esz (capacity <= 2^30, elem_size
	 * <= 2^24): it fits in 64 bits, and the caller checked size_t. */
	m = rmpsc__mem_map(RC_MAP_SIZE + (size_t)slots * esz, mem_flags, node, &mapped);
	if (!m)
		return NULL;
	rc_init(&m->core, &m->sh, magic, cap, slots, esz, (unsigned char *)(m + 1));
	m->core.map_len = mapped;
	return &m->core;
}

void rmpsc__rc_unmap(rmpsc__rcore *rc)
{
	rc->magic = RMPSC__MAGIC_DEAD;
	free(rc->blen);
	free(rc->mc_end);
	rmpsc__mem_unmap(rc, rc->map_len);
}

/* ---- the general single-element paths ------------------------------------ */

int rmpsc__rc_push1(rmpsc__rcore *rc, const void *item)
{
	return rc_push1(rc, item);
}
int rmpsc__rc_pop1(rmpsc__rcore *rc, void *item)
{
	return rc_pop1(rc, item, true);
}
/* ---- blocking calls ------------------------------------------------------ */

/* What a blocking call tries, with its arguments. */
struct ring_try {
	rmpsc__rcore *rc;
	void *buf;
	rmpsc_span *span;
	uint32_t n;
};

static int try_reserve(void *arg)
{
	struct ring_try *t = arg;

	return rc_reserve(t->rc, t->n, false, t->span);
}

static int try_push1(void *arg)
{
	struct ring_try *t = arg;

	return rc_push1(t->rc, t->buf);
}

/* Room for at least one more, or closed. */
static int try_room(void *arg)
{
	struct ring_try *t = arg;

	if (rc_prod_closed(t->rc))
		return -EPIPE;
	return rc_prod_free(t->rc, 1) ? 0 : -EAGAIN;
}

static int try_readable(void *arg)
{
	struct ring_try *t = arg;

	return rc_readable(t->rc, t->n, t->span);
}

static int try_pop1(void *arg)
{
	struct ring_try *t = arg;

	/* The exported pop's path, publishing at once (rc_pop1_fast_as()). */
	return rc_pop1_fast_as(t->rc, t->buf, false);
}

static int try_pop_n(void *arg)
{
	struct ring_try *t = arg;

	return rc_pop_n(t->rc, t->buf, t->n, false, true);
}

static RMPSC__ALWAYS_INLINE int ring_wait(rmpsc__rcore *rc, bool consumer, const rmpsc_wait *w,
					  int64_t timeout_ns, rmpsc__try_fn fn,
					  struct ring_try *t)
{
	const struct rmpsc__waitsite ws = {
		/* A multi-consumer ring's head moves only when its producer
		 * collects: no index to watch, every poll tries. */
		.watch = consumer ? &rc->sh->tail
				  : (rc->flags & RC_F_MC) ? NULL : &rc->sh->head,
		.closed = &rc->sh->closed,
		.waiters = consumer ? rc->cwait : &rc->sh->prod_waiters,
		.seq = consumer ? rc->cseq : &rc->sh->prod_seq,
		.barrier = rc->barrier,
	};

	return rmpsc__wait_run(w, timeout_ns, &ws, fn, t);
}

/*
 * The blocking calls at the core level, shared with every component that
 * owns rings (mpsc.c): the caller has checked its handle; these check the
 * rest. NULL strategy: the ring's own.
 */
#define RC_WAIT_SETUP(rc, uw, w)                                               \
	rmpsc_wait w;                                                          \
	do {                                                                   \
		int werr_ = rmpsc__wait_resolve((uw), &(rc)->wait, &w);        \
		if (werr_)                                                     \
			return werr_;                                          \
	} while (0)

/* The two span calls, reserve (producer) and readable (consumer). */
static int span_timed(rmpsc__rcore *rc, bool consumer, uint32_t n, rmpsc_span *out,
		      int64_t timeout_ns, const rmpsc_wait *uw)
{
	struct ring_try t = { .rc = rc, .span = out, .n = n };

	RC_WAIT_SETUP(rc, uw, w);
	RMPSC__CHECK(!out, -EINVAL);
	return ring_wait(rc, consumer, &w, timeout_ns, consumer ? try_readable : try_reserve,
			 &t);
}

int rmpsc__rc_reserve_timed(rmpsc__rcore *rc, uint32_t n, rmpsc_span *out, int64_t timeout_ns,
			    const rmpsc_wait *uw)
{
	return span_timed(rc, false, n, out, timeout_ns, uw);
}

int rmpsc__rc_push_timed(rmpsc__rcore *rc, const void *item, int64_t timeout_ns,
			 const rmpsc_wait *uw)
{
	struct ring_try t = { .rc = rc, .buf = (void *)(uintptr_t)item };

	RC_WAIT_SETUP(rc, uw, w);
	RMPSC__CHECK(!item, -EINVAL);
	return ring_wait(rc, false, &w, timeout_ns, try_push1, &t);
}

int rmpsc__rc_push_n_timed(rmpsc__rcore *rc, const void *items, uint32_t n, int64_t timeout_ns,
			   const rmpsc_wait *uw)
{
	struct ring_try t = { .rc = rc };
	const unsigned char *p = items;
	uint64_t deadline;
	uint32_t done = 0;

	RC_WAIT_SETUP(rc, uw, w);
	RMPSC__CHECK(!items && n, -EINVAL);
	/* Closed before everything else, n == 0 included (ring.h, Close). */
	if (RMPSC__UNLIKELY(rc_prod_closed(rc)))
		return -EPIPE;
	/* All of n, returned as an int: a count it could not report is
	 * refused rather than cut short. */
	RMPSC__CHECK(n > INT32_MAX, -EINVAL);
	timeout_ns = rmpsc__wait_timeout(&w, timeout_ns);
	deadline = timeout_ns > 0 ? rmpsc__deadline(timeout_ns) : UINT64_MAX;
	for (;;) {
		int k = rc_push_n(rc, p + (size_t)done * rc->esz, n - done, false);
		int64_t left;

		if (k > 0)
			done += (uint32_t)k;
		if (done == n)
			return (int)n;
		if (k != -EAGAIN && k < 0)
			return done ? (int)done : k;
		/* One deadline for the whole call. */
		left = timeout_ns;
		if (timeout_ns > 0) {
			uint64_t now = rmpsc__now_ns();

			left = now >= deadline ? 0 : (int64_t)(deadline - now);
		}
		k = ring_wait(rc, false, &w, left, try_room, &t);
		if (k < 0)
			return done ? (int)done : k;
	}
}

int rmpsc__rc_readable_timed(rmpsc__rcore *rc, uint32_t n, rmpsc_span *out, int64_t timeout_ns,
			     const rmpsc_wait *uw)
{
	return span_timed(rc, true, n, out, timeout_ns, uw);
}

/*
 * The timed pop of an 8-byte element with RMPSC_WAIT_SPIN and no time
 * limit (W4's wait, a latency-bound consumer's): the exported pop's own
 * path in a loop, so that the path from the producer's publication to the
 * return is the fast pop's and no longer the driver's loop around it (one
 * 10 ns timer step of the ping-pong's p50, bench/README.md). Its first
 * poll publishes what earlier try pops held back (a producer may wait for
 * that room); a close, borrows or a handler get the general path's answer,
 * which for a close being decided is -EAGAIN until the end is known: the
 * driver's spin would do the same.
 */
static int pop1_spin(rmpsc__rcore *rc, void *item)
{
	for (;;) {
		int r = rc_pop1_fast_as(rc, item, false);

		if (r != -EAGAIN)
			return r;
		rmpsc__cpu_relax();
	}
}

int rmpsc__rc_pop_timed(rmpsc__rcore *rc, void *item, int64_t timeout_ns, const rmpsc_wait *uw)
{
	struct ring_try t = { .rc = rc, .buf = item };

	RC_WAIT_SETUP(rc, uw, w);
	RMPSC__CHECK(!item, -EINVAL);
	if (w.kind == RMPSC_WAIT_SPIN && timeout_ns < 0 && rc->esz == 8)
		return pop1_spin(rc, item);
	return ring_wait(rc, true, &w, timeout_ns, try_pop1, &t);
}

int rmpsc__rc_pop_n_timed(rmpsc__rcore *rc, void *items, uint32_t n, int64_t timeout_ns,
			  const rmpsc_wait *uw)
{
	struct ring_try t = { .rc = rc, .buf = items, .n = n };

	RC_WAIT_SETUP(rc, uw, w);
	RMPSC__CHECK(!items && n, -EINVAL);
	return ring_wait(rc, true, &w, timeout_ns, try_pop_n, &t);
}

void rmpsc__rc_index_bad(rmpsc__rcore *rc)
{
	/* A ring of this process only gets here when a test damages its
	 * shared part (test_ring_core): only the shared ring's calls report
	 * the latch. */
	atomic_store_explicit(&rc->broken, 1, memory_order_relaxed);
}

/* ---- wake-up slow paths and the notifier --------------------------------- */

void rmpsc__rc_wake_cons(rmpsc__rcore *rc)
{
	struct rmpsc_notifier *n;

	/* Sleepers registered (E4): the word without the notifier bit. */
	if (atomic_load_explicit(rc->cwait, memory_order_relaxed) & ~RC_WAKE_NOTIFIER)
		rmpsc__futex_wake_all_as(rc->cseq, rc->barrier);
	n = atomic_load_explicit(&rc->notifier, memory_order_acquire); /* E6 */
	if (n)
		rmpsc__notifier_kick(n);
}

void rmpsc__rc_wake_prod(rmpsc__rcore *rc)
{
	rmpsc__futex_wake_all_as(&rc->sh->prod_seq, rc->barrier);
}

void rmpsc__rc_set_notifier(rmpsc__rcore *rc, struct rmpsc_notifier *n)
{
	/* E6 release: the notifier is complete before a producer sees it. */
	atomic_store_explicit(&rc->notifier, n, memory_order_seq_cst);
	/* Make the wake word's bit say whether a notifier is attached. With
	 * setters racing, each one re-reads the pointer after its own update
	 * of the bit and corrects it while the two disagree, so the last one
	 * leaves them agreeing; sleepers' +1/-1 on the same word only make a
	 * CAS retry. */
	for (;;) {
		struct rmpsc_notifier *cur = atomic_load_explicit(&rc->notifier, memory_order_seq_cst);
		uint32_t w = atomic_load_explicit(&rc->sh->cons_waiters, memory_order_seq_cst);
		uint32_t want = cur ? w | RC_WAKE_NOTIFIER : w & ~RC_WAKE_NOTIFIER;

		if (w != want &&
		    !atomic_compare_exchange_weak_explicit(&rc->sh->cons_waiters, &w, want,
							   memory_order_seq_cst,
							   memory_order_seq_cst))
			continue;
		if (atomic_load_explicit(&rc->notifier, memory_order_seq_cst) == cur)
			return;
	}
}

/* ---- borrowed reads ------------------------------------------------------- */

uint32_t rmpsc__rc_serial(void)
{
	/* Relaxed: any distinct value will do; nothing is ordered by it. */
	static _Atomic uint32_t next;

	return atomic_fetch_add_explicit(&next, 1, memory_order_relaxed) % RC_SERIAL_MAX + 1;
}

int rmpsc__rc_borrow(rmpsc__rcore *rc, uint32_t n, rmpsc_borrow *out)
{
	uint64_t h, t, idx, room, k;

	rc_assert_sc(rc);
	if (RMPSC__UNLIKELY(rc_in_handler(rc)))
		return -EBUSY;
	rc_flush(rc);
	h = rc_head(rc);
	RMPSC__CHECK(!out, -EINVAL);
	if (n == 0) {
		memset(out, 0, sizeof *out);
		return 0;
	}
	if (RMPSC__UNLIKELY(!rc->blen)) {
		rc->blen = calloc((size_t)rc_slots(rc), sizeof *rc->blen);
		RMPSC__CHECK(!rc->blen, -ENOMEM);
	}
	if (!rc->nborrow)
		rc->brd = h;
	/* E1, E7: the tail this consumer may use. */
	t = rc_cons_tail(rc);
	if (t == rc->brd) {
		int64_t err;

		if (rc->nborrow)
			return -EAGAIN;
		err = rc_cons_empty(rc); /* -EAGAIN, -EPIPE or a late count */
		if (err < 0)
			return (int)err;
		t = h + (uint64_t)err;
	}
	idx = rc->brd & rc->mask;
	room = rc_slots(rc) - idx;
	k = t - rc->brd;
	if (k > n)
		k = n;
	if (k > room)
		k = room;
	rc->blen[idx] = (uint32_t)k;
	out->data = rc->data + (size_t)idx * rc->esz;
	out->count = (uint32_t)k;
	out->_pad0 = 0;
	out->token = rc_token(rc, rc->brd);
	rc->brd += k;
	rc->nborrow++;
	rc->cached_tail = h; /* keeps the fast pop out (see ring_core.h) */
	return (int)k;
}

/* Release every committed run from head on; returns the elements released. */
static uint64_t borrow_release(rmpsc__rcore *rc)
{
	uint64_t h0 = rc_head(rc), h = h0;

	while (h != rc->brd) {
		uint32_t *e = &rc->blen[h & rc->mask];

		if (!(*e & RC_BORROW_DONE))
			break;
		h += *e & ~(uint32_t)RC_BORROW_DONE;
		*e = 0;
	}
	if (h != h0)
		rc_release(rc, h);
	rc->cached_tail = h;
	return h - h0;
}

int rmpsc__rc_borrow_commit(rmpsc__rcore *rc, uint64_t token)
{
	uint64_t h = rc_head(rc), pos;
	uint32_t *e;

	if (RMPSC__UNLIKELY(rc_in_handler(rc)))
		return -EBUSY;
	/* Another ring's token (or one from before a reset or reuse). */
	RMPSC__CHECK((uint32_t)(token >> 32) != rc_token_tag(rc), -EINVAL);
	/* The position from its low 32 bits: outstanding runs lie less than
	 * the capacity past head. A token below head was released long ago,
	 * one at or past brd was never handed out. */
	pos = h + (uint32_t)((uint32_t)token - (uint32_t)h);
	RMPSC__CHECK(!rc->nborrow || pos - h >= rc->brd - h, -EINVAL);
	e = &rc->blen[pos & rc->mask];
	RMPSC__CHECK(*e == 0 || (*e & RC_BORROW_DONE), -EINVAL);
	*e |= RC_BORROW_DONE;
	rc->nborrow--;
	(void)borrow_release(rc);
	return 0;
}

int rmpsc__rc_borrow_commit_all(rmpsc__rcore *rc)
{
	uint64_t h = rc_head(rc);

	if (RMPSC__UNLIKELY(rc_in_handler(rc)))
		return -EBUSY;
	if (!rc->nborrow)
		return 0;
	while (h != rc->brd) {
		uint32_t *e = &rc->blen[h & rc->mask];

		*e |= RC_BORROW_DONE;
		h += *e & ~(uint32_t)RC_BORROW_DONE;
	}
	rc->nborrow = 0;
	return (int)borrow_release(rc);
}

/* ---- multi-consumer completion -------------------------------------------- */

int rmpsc__rc_mc_init(rmpsc__rcore *rc)
{
	rc->mc_end = calloc((size_t)rc_slots(rc), sizeof *rc->mc_end);
	RMPSC__CHECK(!rc->mc_end, -ENOMEM);
	/* The producer releases by collecting completions (M2). */
	rc->rel_mask = 0;
	rc->flags |= RC_F_MC;
	rc_mc_entries_reset(rc, atomic_load_explicit(&rc->sh->mc_head, memory_order_relaxed));
	return 0;
}

uint64_t rmpsc__rc_mc_collect(rmpsc__rcore *rc)
{
	/* Relaxed: head and tail are written by the producer alone (or by the
	 * holder of a ring without one, under the set's lock). */
	uint64_t h0 = atomic_load_explicit(&rc->sh->mc_head, memory_order_relaxed);
	uint64_t h = rc_mc_scan(rc, h0, atomic_load_explicit(&rc->sh->tail, memory_order_relaxed));

	if (h != h0)
		atomic_store_explicit(&rc->sh->mc_head, h, memory_order_release);
	return h;
}
