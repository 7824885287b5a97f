/* SPDX-License-Identifier: MIT */
/*
 * rmpsc_ring: the public SPSC ring. Handle and argument checks around the
 * shared core in ring_core.h; see its Synchronization block for the edges.
 *
 * Memory: one mapping holds the core (control groups, 512 bytes) and then the
 * slots, so the data area is page aligned plus 512, i.e. cache-line aligned.
 */
#include "ringmpsc/ring.h"

#include "ring_core.h"

struct rmpsc_ring {
	struct rmpsc__rcore core;
};

_Static_assert(sizeof(rmpsc_ring_config) == RMPSC_RING_CONFIG_SIZE_V1,
	       "rmpsc_ring_config 1.0 layout");

#define RING_MEM_FLAGS(f)                                                      \
	((((f) & RMPSC_RING_F_HUGEPAGE) ? RMPSC__MEM_HUGE : 0u) |              \
	 (((f) & RMPSC_RING_F_PREFAULT) ? RMPSC__MEM_PREFAULT : 0u))

/* The handle checks of every entry point: the magic sits on the read-mostly
 * line, so this is an L1 hit on the hot path. */
static inline bool ring_ok(const rmpsc_ring *r)
{
	return RMPSC__LIKELY(r != NULL) && RMPSC__LIKELY(r->core.magic == RMPSC__MAGIC_RING);
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
	};

	RMPSC__CHECK(!cfg, -EINVAL);
	RMPSC__CHECK(size < RMPSC_RING_CONFIG_SIZE_V1 || size % 8, -EINVAL);
	/* Never more than the caller's struct holds; a larger caller struct
	 * gets zeros past ours, which create accepts. */
	if (size > sizeof d)
		memset((unsigned char *)cfg + sizeof d, 0, size - sizeof d);
	memcpy(cfg, &d, size < sizeof d ? size : sizeof d);
	return 0;
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
	RMPSC__CHECK(cfg._pad0 != 0, -EINVAL);

	/* capacity <= 2^30 and elem_size <= 2^24: the product fits in 64 bits,
	 * not always in a 32-bit size_t; the mapping itself may still be
	 * refused (-ENOMEM). */
	RMPSC__CHECK(cfg.capacity > (SIZE_MAX - sizeof *r) / cfg.elem_size, -ENOMEM);
	len = sizeof(struct rmpsc_ring) + (size_t)cfg.capacity * cfg.elem_size;
	r = rmpsc__mem_map(len, RING_MEM_FLAGS(cfg.flags), &mapped);
	RMPSC__CHECK(!r, -ENOMEM);
	rc_init(&r->core, RMPSC__MAGIC_RING, cfg.capacity, cfg.elem_size,
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

int rmpsc_ring_push(rmpsc_ring *r, const void *item)
{
	RING_CHECK(r);
	RMPSC__CHECK(!item, -EINVAL);
	return rc_push1(&r->core, item);
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
	RING_CHECK(r);
	RMPSC__CHECK(!item, -EINVAL);
	return rc_pop1(&r->core, item, true);
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
	/* The count is returned as int. */
	return rc_drain(&r->core, items, max > INT32_MAX ? INT32_MAX : max);
}

/* ---- lifecycle and status ------------------------------------------------ */

int rmpsc_ring_close(rmpsc_ring *r)
{
	RING_CHECK(r);
	rc_close(&r->core);
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
	return rc_len(&r->core) == 0;
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
