/* SPDX-License-Identifier: MIT */
/*
 * rmpsc_ring: the public SPSC ring. Handle and argument checks around the
 * shared core in ring_core.h; see its Synchronization block for the edges.
 *
 * Memory: one mapping holds the core (control groups, 640 bytes) and then the
 * slots, so the data area is page aligned plus 640, i.e. cache-line aligned.
 */
#include <stdlib.h>

#include "ringmpsc/ring.h"

#include "ring_core.h"
#include "wait_core.h"

struct rmpsc_ring {
	struct rmpsc__rcore core;
};

_Static_assert(offsetof(rmpsc_ring_config, _pad0) + 4 == RMPSC_RING_CONFIG_SIZE_V1,
	       "the smallest accepted config ends after _pad0");
_Static_assert(sizeof(rmpsc_ring_config) == 32, "rmpsc_ring_config layout");

#define RING_MEM_FLAGS(f)                                                      \
	((((f) & RMPSC_RING_F_HUGEPAGE) ? RMPSC__MEM_HUGE : 0u) |              \
	 (((f) & RMPSC_RING_F_PREFAULT) ? RMPSC__MEM_PREFAULT : 0u))

/* The handle checks of every entry point: the magic sits on the read-mostly
 * line, so this is an L1 hit on the hot path. */
static inline bool ring_ok(const rmpsc_ring *r)
{
	return RMPSC__LIKELY(RMPSC__HANDLE_IS(r, RMPSC__MAGIC_RING));
}

#define RING_CHECK(r) RMPSC__CHECK(!ring_ok(r), -EBADF)

int rmpsc_ring_config_init(rmpsc_ring_config *cfg, uint32_t size)
{
	rmpsc_ring_config d = {
		.size = size,
		.flags = 0,
		.capacity = 1024,
		.elem_size = 8,
		.numa_node = RMPSC_NODE_ANY,
		._pad0 = 0,
		.slots = 0,
		._pad1 = 0,
	};

	/* Never more than the caller's struct holds; a larger caller struct
	 * gets zeros past ours, which create accepts. */
	return rmpsc__size_out(cfg, size, &d, sizeof d, RMPSC_RING_CONFIG_SIZE_V1);
}

RMPSC__COLD int rmpsc_ring_create(const rmpsc_ring_config *ucfg, rmpsc_ring **out)
{
	rmpsc_ring_config cfg;
	size_t len, mapped;
	rmpsc_ring *r;
	int err;

	RMPSC__CHECK(!out, -EINVAL);
	*out = NULL;
	rmpsc_ring_config_init(&cfg, sizeof cfg);
	err = rmpsc__config_copy(&cfg, sizeof cfg, ucfg, RMPSC_RING_CONFIG_SIZE_V1);
	if (err)
		return err;
	RMPSC__CHECK(!rmpsc__is_pow2(cfg.capacity), -EINVAL);
	RMPSC__CHECK(cfg.capacity > RMPSC_RING_CAPACITY_MAX, -EINVAL);
	RMPSC__CHECK(cfg.elem_size == 0 || cfg.elem_size > RMPSC_RING_ELEM_SIZE_MAX, -EINVAL);
	RMPSC__CHECK(cfg.flags & ~(uint32_t)RMPSC_RING_F_ALL, -EINVAL);
	RMPSC__CHECK(cfg.numa_node < RMPSC_NODE_ANY, -EINVAL);
	RMPSC__CHECK(cfg._pad0 != 0 || cfg._pad1 != 0, -EINVAL);
	if (cfg.slots == 0)
		cfg.slots = cfg.capacity;
	RMPSC__CHECK(!rmpsc__is_pow2(cfg.slots) || cfg.slots < cfg.capacity ||
			     cfg.slots > RMPSC_RING_CAPACITY_MAX,
		     -EINVAL);

	/* capacity <= 2^30 and elem_size <= 2^24: the product fits in 64 bits,
	 * not always in a 32-bit size_t; the mapping itself may still be
	 * refused (-ENOMEM). The same holds for slots. */
	RMPSC__CHECK(cfg.slots > (SIZE_MAX - sizeof *r) / cfg.elem_size, -ENOMEM);
	len = sizeof(struct rmpsc_ring) + (size_t)cfg.slots * cfg.elem_size;
	r = rmpsc__mem_map(len, RING_MEM_FLAGS(cfg.flags), &mapped);
	RMPSC__CHECK(!r, -ENOMEM);
	rc_init(&r->core, RMPSC__MAGIC_RING, cfg.capacity, cfg.slots, cfg.elem_size,
		(unsigned char *)r + sizeof *r);
	r->core.flags = cfg.flags;
	r->core.numa_node = cfg.numa_node;
	r->core.map_len = mapped;
	*out = r;
	return 0;
}

RMPSC__COLD void rmpsc_ring_destroy(rmpsc_ring *r)
{
	if (!ring_ok(r))
		return;
	r->core.magic = RMPSC__MAGIC_DEAD;
	rmpsc__rc_fini(&r->core);
	rmpsc__mem_unmap(r, r->core.map_len);
}

/* ---- producer ------------------------------------------------------------ */

int rmpsc_ring_reserve(rmpsc_ring *r, uint32_t n, rmpsc_span *out)
{
	RING_CHECK(r);
	RMPSC__CHECK(!out, -EINVAL);
	return rc_reserve(&r->core, n, false, out);
}

int rmpsc_ring_reserve_exact(rmpsc_ring *r, uint32_t n, rmpsc_span *out)
{
	RING_CHECK(r);
	RMPSC__CHECK(!out, -EINVAL);
	return rc_reserve(&r->core, n, true, out);
}

int rmpsc_ring_commit(rmpsc_ring *r, uint32_t n)
{
	RING_CHECK(r);
	return rc_commit(&r->core, n);
}

/* A bad handle or a NULL element pointer, for the single-element paths. */
static RMPSC__COLD int ring_arg_error(const rmpsc_ring *r)
{
	return ring_ok(r) ? -EINVAL : -EBADF;
}

int rmpsc__rc_push1(rc_t *rc, const void *item)
{
	return rc_push1(rc, item);
}

int rmpsc_ring_push(rmpsc_ring *r, const void *item)
{
	if (RMPSC__UNLIKELY(!ring_ok(r) || !item))
		return ring_arg_error(r);
	return rc_push1_fast(&r->core, item);
}

int rmpsc_ring_push_n(rmpsc_ring *r, const void *items, uint32_t n)
{
	RING_CHECK(r);
	RMPSC__CHECK(!items && n, -EINVAL);
	return rc_push_n(&r->core, items, n, false);
}

int rmpsc_ring_push_n_exact(rmpsc_ring *r, const void *items, uint32_t n)
{
	RING_CHECK(r);
	RMPSC__CHECK(!items && n, -EINVAL);
	return rc_push_n(&r->core, items, n, true);
}

/* ---- consumer ------------------------------------------------------------ */

int rmpsc_ring_readable(rmpsc_ring *r, uint32_t n, rmpsc_span *out)
{
	RING_CHECK(r);
	RMPSC__CHECK(!out, -EINVAL);
	return rc_readable(&r->core, n, out);
}

int rmpsc_ring_advance(rmpsc_ring *r, uint32_t n)
{
	RING_CHECK(r);
	return rc_advance(&r->core, n);
}

int rmpsc__rc_pop1(rc_t *rc, void *item)
{
	return rc_pop1(rc, item, true);
}

int rmpsc_ring_pop(rmpsc_ring *r, void *item)
{
	if (RMPSC__UNLIKELY(!ring_ok(r) || !item))
		return ring_arg_error(r);
	return rc_pop1_fast(&r->core, item);
}

int rmpsc_ring_pop_n(rmpsc_ring *r, void *items, uint32_t n)
{
	RING_CHECK(r);
	RMPSC__CHECK(!items && n, -EINVAL);
	return rc_pop_n(&r->core, items, n, false, true);
}

int rmpsc_ring_pop_n_exact(rmpsc_ring *r, void *items, uint32_t n)
{
	RING_CHECK(r);
	RMPSC__CHECK(!items && n, -EINVAL);
	return rc_pop_n(&r->core, items, n, true, true);
}

int rmpsc_ring_peek(rmpsc_ring *r, void *item)
{
	RING_CHECK(r);
	RMPSC__CHECK(!item, -EINVAL);
	return rc_pop1(&r->core, item, false);
}

int rmpsc_ring_peek_n(rmpsc_ring *r, void *items, uint32_t n)
{
	RING_CHECK(r);
	RMPSC__CHECK(!items && n, -EINVAL);
	return rc_pop_n(&r->core, items, n, false, false);
}

int rmpsc_ring_skip(rmpsc_ring *r, uint32_t n)
{
	RING_CHECK(r);
	return rc_pop_n(&r->core, NULL, n, false, true);
}

int rmpsc_ring_drain(rmpsc_ring *r, void *items, uint32_t max)
{
	RING_CHECK(r);
	return rc_drain(&r->core, items, rmpsc__int_count(max));
}

/* ---- blocking calls ------------------------------------------------------ */

/* What a blocking call tries, with its arguments. */
struct ring_try {
	rc_t *rc;
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

static RMPSC__ALWAYS_INLINE int ring_wait(rc_t *rc, bool consumer, const rmpsc_wait *w,
					  int64_t timeout_ns, rmpsc__try_fn fn,
					  struct ring_try *t)
{
	const struct rmpsc__waitsite ws = {
		.watch = consumer ? &rc->tail : &rc->head,
		.closed = &rc->closed,
		.waiters = consumer ? rc->cwait : &rc->prod_waiters,
		.seq = consumer ? rc->cseq : &rc->prod_seq,
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

int rmpsc__rc_reserve_timed(rc_t *rc, uint32_t n, rmpsc_span *out, int64_t timeout_ns,
			    const rmpsc_wait *uw)
{
	struct ring_try t = { .rc = rc, .span = out, .n = n };

	RC_WAIT_SETUP(rc, uw, w);
	RMPSC__CHECK(!out, -EINVAL);
	return ring_wait(rc, false, &w, timeout_ns, try_reserve, &t);
}

int rmpsc__rc_push_timed(rc_t *rc, const void *item, int64_t timeout_ns, const rmpsc_wait *uw)
{
	struct ring_try t = { .rc = rc, .buf = (void *)(uintptr_t)item };

	RC_WAIT_SETUP(rc, uw, w);
	RMPSC__CHECK(!item, -EINVAL);
	return ring_wait(rc, false, &w, timeout_ns, try_push1, &t);
}

int rmpsc__rc_push_n_timed(rc_t *rc, const void *items, uint32_t n, int64_t timeout_ns,
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

int rmpsc__rc_readable_timed(rc_t *rc, uint32_t n, rmpsc_span *out, int64_t timeout_ns,
			     const rmpsc_wait *uw)
{
	struct ring_try t = { .rc = rc, .span = out, .n = n };

	RC_WAIT_SETUP(rc, uw, w);
	RMPSC__CHECK(!out, -EINVAL);
	return ring_wait(rc, true, &w, timeout_ns, try_readable, &t);
}

/*
 * The timed pop of an 8-byte element with RMPSC_WAIT_SPIN and no time
 * limit (W4's wait, a latency-bound consumer's). With the cached view used
 * up it publishes what earlier try pops held back, spins on tail and
 * closed (rc_cons_read_tail(), E7) and takes the element with the tail the
 * spin read, so the path from the producer's publication to the return is
 * the fast pop's and no longer the driver's loop around it (one 10 ns
 * timer step of the ping-pong's p50, bench/README.md); an element in the
 * cached view is taken at once (its release publishes the rest). False
 * when the wait belongs to the general driver: borrows out or a handler
 * inside (the driver's try refuses), or a close begun (the driver then
 * waits for its end to be decided).
 */
static bool pop1_spin(rc_t *rc, void *item)
{
	uint64_t h, t;

	if (rc->nborrow)
		return false;
	h = rc_head(rc);
	if (h == rc->cached_tail) {
		/* a producer may wait for the room try pops took */
		rc_flush(rc);
		for (;;) {
			if (!rc_cons_read_tail(rc, &t))
				return false;
			if (t != h)
				break;
			rmpsc__cpu_relax();
		}
		rc_cons_saw(rc, t);
	}
	rc_take8(rc, item, h, false);
	return true;
}

int rmpsc__rc_pop_timed(rc_t *rc, void *item, int64_t timeout_ns, const rmpsc_wait *uw)
{
	struct ring_try t = { .rc = rc, .buf = item };

	RC_WAIT_SETUP(rc, uw, w);
	RMPSC__CHECK(!item, -EINVAL);
	if (w.kind == RMPSC_WAIT_SPIN && timeout_ns < 0 && rc->esz == 8 && pop1_spin(rc, item))
		return 0;
	return ring_wait(rc, true, &w, timeout_ns, try_pop1, &t);
}

int rmpsc__rc_pop_n_timed(rc_t *rc, void *items, uint32_t n, int64_t timeout_ns,
			  const rmpsc_wait *uw)
{
	struct ring_try t = { .rc = rc, .buf = items, .n = n };

	RC_WAIT_SETUP(rc, uw, w);
	RMPSC__CHECK(!items && n, -EINVAL);
	return ring_wait(rc, true, &w, timeout_ns, try_pop_n, &t);
}

int rmpsc_ring_reserve_timed(rmpsc_ring *r, uint32_t n, rmpsc_span *out, int64_t timeout_ns,
			     const rmpsc_wait *uw)
{
	RING_CHECK(r);
	return rmpsc__rc_reserve_timed(&r->core, n, out, timeout_ns, uw);
}

int rmpsc_ring_push_timed(rmpsc_ring *r, const void *item, int64_t timeout_ns,
			  const rmpsc_wait *uw)
{
	RING_CHECK(r);
	return rmpsc__rc_push_timed(&r->core, item, timeout_ns, uw);
}

int rmpsc_ring_push_n_timed(rmpsc_ring *r, const void *items, uint32_t n, int64_t timeout_ns,
			    const rmpsc_wait *uw)
{
	RING_CHECK(r);
	return rmpsc__rc_push_n_timed(&r->core, items, n, timeout_ns, uw);
}

int rmpsc_ring_readable_timed(rmpsc_ring *r, uint32_t n, rmpsc_span *out, int64_t timeout_ns,
			      const rmpsc_wait *uw)
{
	RING_CHECK(r);
	return rmpsc__rc_readable_timed(&r->core, n, out, timeout_ns, uw);
}

int rmpsc_ring_pop_timed(rmpsc_ring *r, void *item, int64_t timeout_ns, const rmpsc_wait *uw)
{
	RING_CHECK(r);
	return rmpsc__rc_pop_timed(&r->core, item, timeout_ns, uw);
}

int rmpsc_ring_pop_n_timed(rmpsc_ring *r, void *items, uint32_t n, int64_t timeout_ns,
			   const rmpsc_wait *uw)
{
	RING_CHECK(r);
	return rmpsc__rc_pop_n_timed(&r->core, items, n, timeout_ns, uw);
}

int rmpsc_ring_set_wait(rmpsc_ring *r, const rmpsc_wait *uw)
{
	rmpsc_wait w;
	int err;

	RING_CHECK(r);
	if (!uw) {
		rmpsc__wait_default(&r->core.wait);
		return 0;
	}
	err = rmpsc__wait_resolve(uw, &r->core.wait, &w);
	if (err)
		return err;
	r->core.wait = w;
	return 0;
}

int rmpsc_ring_get_wait(const rmpsc_ring *r, rmpsc_wait *w)
{
	RING_CHECK(r);
	RMPSC__CHECK(!w, -EINVAL);
	return rmpsc__size_out(w, w->size, &r->core.wait, sizeof r->core.wait,
			       RMPSC_WAIT_CONFIG_SIZE_V1);
}

int rmpsc_ring_set_notifier(rmpsc_ring *r, rmpsc_notifier *n)
{
	rc_t *rc;

	RING_CHECK(r);
	RMPSC__CHECK(n && !rmpsc__notifier_ok(n), -EBADF);
	rc = &r->core;
	/* E6 release: the notifier is complete before a producer sees it. */
	atomic_store_explicit(&rc->notifier, n, memory_order_seq_cst);
	/* Make the wake word's bit say whether a notifier is attached. With
	 * setters racing, each one re-reads the pointer after its own update
	 * of the bit and corrects it while the two disagree, so the last one
	 * leaves them agreeing; sleepers' +1/-1 on the same word only make a
	 * CAS retry. */
	for (;;) {
		struct rmpsc_notifier *cur = atomic_load_explicit(&rc->notifier, memory_order_seq_cst);
		uint32_t w = atomic_load_explicit(&rc->cons_waiters, memory_order_seq_cst);
		uint32_t want = cur ? w | RC_WAKE_NOTIFIER : w & ~RC_WAKE_NOTIFIER;

		if (w != want &&
		    !atomic_compare_exchange_weak_explicit(&rc->cons_waiters, &w, want,
							   memory_order_seq_cst,
							   memory_order_seq_cst))
			continue;
		if (atomic_load_explicit(&rc->notifier, memory_order_seq_cst) == cur)
			return 0;
	}
}

/* ---- borrowed reads ------------------------------------------------------- */

uint32_t rmpsc__rc_serial(void)
{
	/* Relaxed: any distinct value will do; nothing is ordered by it. */
	static _Atomic uint32_t next;

	return atomic_fetch_add_explicit(&next, 1, memory_order_relaxed) % RC_SERIAL_MAX + 1;
}

int rmpsc__rc_borrow(rc_t *rc, uint32_t n, rmpsc_borrow *out)
{
	uint64_t h, t, idx, room, k;

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
static uint64_t borrow_release(rc_t *rc)
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

int rmpsc__rc_borrow_commit(rc_t *rc, uint64_t token)
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

int rmpsc__rc_borrow_commit_all(rc_t *rc)
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

void rmpsc__rc_fini(rc_t *rc)
{
	free(rc->blen);
	rc->blen = NULL;
	free(rc->mc_end);
	rc->mc_end = NULL;
}

/* ---- multi-consumer completion -------------------------------------------- */

int rmpsc__rc_mc_init(rc_t *rc)
{
	rc->mc_end = calloc((size_t)rc_slots(rc), sizeof *rc->mc_end);
	RMPSC__CHECK(!rc->mc_end, -ENOMEM);
	/* Consumers release through head itself (M2): no private position. */
	rc->rel_mask = 0;
	for (uint64_t i = 0; i < rc_slots(rc); i++)
		atomic_init(&rc->mc_end[i], rc_head(rc));
	return 0;
}

void rmpsc__rc_mc_advance(rc_t *rc)
{
	for (;;) {
		/* M2: seq_cst, against the completers' "store end; load head". */
		uint64_t h = atomic_load_explicit(&rc->head, memory_order_seq_cst);
		_Atomic uint64_t *e = &rc->mc_end[h & rc->mask];
		uint64_t end = atomic_load_explicit(e, memory_order_seq_cst);

		/* Only an end 1..cap past head belongs to the run at head; 0, or
		 * a lap-old end, means that run is not complete. */
		if (end - h - 1 >= rc_cap(rc))
			return;
		if (atomic_compare_exchange_strong_explicit(&rc->head, &h, end,
							    memory_order_seq_cst,
							    memory_order_seq_cst)) {
			/* Clear it, to the run's start (0 would be a plausible
			 * end once positions pass 2^64), unless a later lap's
			 * run already stored its own (unique) end there. */
			uint64_t mine = end;

			atomic_compare_exchange_strong_explicit(e, &mine, h, memory_order_relaxed,
								memory_order_relaxed);
			rc_after_release(rc);
		}
	}
}

int rmpsc_ring_borrow(rmpsc_ring *r, uint32_t n, rmpsc_borrow *out)
{
	RING_CHECK(r);
	return rmpsc__rc_borrow(&r->core, n, out);
}

int rmpsc_ring_borrow_commit(rmpsc_ring *r, uint64_t token)
{
	RING_CHECK(r);
	return rmpsc__rc_borrow_commit(&r->core, token);
}

int rmpsc_ring_borrow_commit_all(rmpsc_ring *r)
{
	RING_CHECK(r);
	return rmpsc__rc_borrow_commit_all(&r->core);
}

int rmpsc_ring_borrow_fn(rmpsc_ring *r, uint32_t n, rmpsc_borrow_fn fn, void *ctx)
{
	rmpsc_borrow b;
	uint64_t saved;
	int k, err;

	RING_CHECK(r);
	RMPSC__CHECK(!fn, -EINVAL);
	k = rmpsc__rc_borrow(&r->core, n, &b);
	if (k > 0) {
		saved = rc_handler_enter(&r->core);
		fn(ctx, b.data, b.count);
		rc_handler_exit(&r->core, saved);
		/* The handler could not touch the borrow: this commit holds. */
		err = rmpsc__rc_borrow_commit(&r->core, b.token);
		if (RMPSC__UNLIKELY(err))
			return err;
	}
	return k;
}

/* ---- the managed loop's side (loop.c) ------------------------------------- */

int rmpsc__ring_consume_timed(rmpsc_ring *r, rmpsc_borrow_fn fn, void *ctx, int64_t timeout_ns,
			      const rmpsc_wait *w)
{
	rc_t *rc;
	rmpsc_span s;
	uint64_t saved;
	int k, err;

	RING_CHECK(r);
	rc = &r->core;
	k = rmpsc__rc_readable_timed(rc, UINT32_MAX, &s, timeout_ns, w);
	if (k <= 0)
		return k;
	saved = rc_handler_enter(rc);
	fn(ctx, s.iov[0].iov_base, s.count[0]);
	if (s.nseg > 1)
		fn(ctx, s.iov[1].iov_base, s.count[1]);
	rc_handler_exit(rc, saved);
	err = rc_advance(rc, (uint32_t)k);
	return err ? err : k;
}

int rmpsc__ring_loop_attach(rmpsc_ring *r)
{
	uint32_t none = 0;

	RING_CHECK(r);
	/* Inside a handler on this ring, or already another loop's. */
	RMPSC__CHECK(rc_in_handler(&r->core), -EBUSY);
	RMPSC__CHECK(!atomic_compare_exchange_strong_explicit(&r->core.looped, &none, 1,
							      memory_order_acq_rel,
							      memory_order_relaxed),
		     -EBUSY);
	/* Borrowed elements would stay out of the loop's reach: the loop
	 * could deliver nothing after them. */
	if (r->core.nborrow) {
		atomic_store_explicit(&r->core.looped, 0, memory_order_release);
		return -EINVAL;
	}
	return 0;
}

void rmpsc__ring_loop_detach(rmpsc_ring *r)
{
	atomic_store_explicit(&r->core.looped, 0, memory_order_release);
}

/* ---- lifecycle and status ------------------------------------------------ */

int rmpsc_ring_close(rmpsc_ring *r)
{
	RING_CHECK(r);
	rmpsc__rc_close(&r->core);
	return 0;
}

int rmpsc_ring_is_closed(const rmpsc_ring *r)
{
	RING_CHECK(r);
	return rc_is_closed(&r->core);
}

int64_t rmpsc_ring_len(const rmpsc_ring *r)
{
	RING_CHECK(r);
	return (int64_t)rc_len(&r->core);
}

int rmpsc_ring_is_empty(const rmpsc_ring *r)
{
	RING_CHECK(r);
	return rc_is_empty(&r->core);
}

int rmpsc_ring_is_full(const rmpsc_ring *r)
{
	RING_CHECK(r);
	return rc_len(&r->core) >= rc_cap(&r->core);
}

int64_t rmpsc_ring_capacity(const rmpsc_ring *r)
{
	RING_CHECK(r);
	return (int64_t)rc_cap(&r->core);
}

int64_t rmpsc_ring_elem_size(const rmpsc_ring *r)
{
	RING_CHECK(r);
	return r->core.esz;
}

int64_t rmpsc_ring_footprint(const rmpsc_ring *r)
{
	RING_CHECK(r);
	return (int64_t)r->core.map_len;
}

int rmpsc_ring_reset(rmpsc_ring *r)
{
	RING_CHECK(r);
	/* Detectable breaches of "exclusive": a loop consumes this ring, or
	 * the call comes from a handler running on its elements. */
	RMPSC__CHECK(atomic_load_explicit(&r->core.looped, memory_order_acquire) ||
			     rc_in_handler(&r->core),
		     -EBUSY);
	rc_set_position(&r->core, 0);
	return 0;
}

/* Test hook (static library only, hidden in the shared one): start both
 * positions at @pos to exercise the 2^32 and 2^64 wraps. */
int rmpsc__ring_set_position(rmpsc_ring *r, uint64_t pos)
{
	RING_CHECK(r);
	rc_set_position(&r->core, pos);
	return 0;
}
