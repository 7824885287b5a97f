/* SPDX-License-Identifier: MIT */
/*
 * rmpsc_ring: the public SPSC ring. Handle and argument checks around the
 * ring core (ring_core.h, ring_core.c, ring_close.c); see ring_core.h's
 * Synchronization block for the edges.
 *
 * Memory: one mapping (rmpsc__rc_map()) holds the core's private view and
 * shared part (1024 bytes) and then the slots, so the data area is page
 * aligned plus 1024, i.e. cache-line aligned.
 */
#include <stdlib.h>

#include "ringmpsc/numa.h"
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
	rmpsc__rcore *rc;
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
	RMPSC__CHECK(cfg.numa_node >= 0 && rmpsc__numa_ok() &&
			     cfg.numa_node >= rmpsc_numa_node_count(),
		     -EINVAL);
	RMPSC__CHECK(cfg._pad0 != 0 || cfg._pad1 != 0, -EINVAL);
	if (cfg.slots == 0)
		cfg.slots = cfg.capacity;
	RMPSC__CHECK(!rmpsc__is_pow2(cfg.slots) || cfg.slots < cfg.capacity ||
			     cfg.slots > RMPSC_RING_CAPACITY_MAX,
		     -EINVAL);

	/* capacity <= 2^30 and elem_size <= 2^24: the product fits in 64 bits,
	 * not always in a 32-bit size_t; the mapping itself may still be
	 * refused (-ENOMEM). The same holds for slots. */
	RMPSC__CHECK(cfg.slots > (SIZE_MAX - RC_MAP_SIZE) / cfg.elem_size, -ENOMEM);
	rc = rmpsc__rc_map(RMPSC__MAGIC_RING, cfg.capacity, cfg.slots, cfg.elem_size,
			   RING_MEM_FLAGS(cfg.flags), cfg.numa_node);
	RMPSC__CHECK(!rc, -ENOMEM);
	rc->flags = cfg.flags;
	rc->numa_node = cfg.numa_node;
	*out = (rmpsc_ring *)(void *)rc; /* the core is the handle's only member */
	return 0;
}

RMPSC__COLD void rmpsc_ring_destroy(rmpsc_ring *r)
{
	if (!ring_ok(r))
		return;
	rmpsc__rc_unmap(&r->core);
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

int rmpsc_ring_set_notifier(rmpsc_ring *r, rmpsc_notifier *n)
{
	RING_CHECK(r);
	RMPSC__CHECK(n && !rmpsc__notifier_ok(n), -EBADF);
	rmpsc__rc_set_notifier(&r->core, n);
	return 0;
}

int rmpsc_ring_get_wait(const rmpsc_ring *r, rmpsc_wait *w)
{
	RING_CHECK(r);
	RMPSC__CHECK(!w, -EINVAL);
	return rmpsc__size_out(w, w->size, &r->core.wait, sizeof r->core.wait,
			       RMPSC_WAIT_CONFIG_SIZE_V1);
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
	rmpsc__rcore *rc;
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
