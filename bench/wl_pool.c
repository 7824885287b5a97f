/* SPDX-License-Identifier: MIT */
/*
 * W9: the BufferPool (ringmpsc/pool.h) against other allocators, and the
 * message size from which a pool slab sent as a handle beats copying the
 * message through a ring.
 *
 * Alloc+free pairs (Mpair/s), objects of POOL_OBJ_SIZE bytes from pools of
 * POOL_NOBJ, one row per pattern, every allocator (pool_peer.h) on each:
 *
 *   same-thread   one thread on CPU A holds KEEP objects at a time (DPDK
 *                 test_mempool_perf's "keep"): KEEP allocations, then KEEP
 *                 frees, again and again
 *   cross-thread  the pointer-ring pattern, malloc's hard case: a producer
 *                 on CPU A allocates and sends the object (a pointer, or
 *                 ringmpsc's handle) through a libringmpsc SPSC ring of
 *                 XRING u64 slots to a consumer on CPU B, which frees it
 *   oversub-4x2   OVER_PAIRS (4) such producer/consumer pairs at once, one
 *                 ring each, all 8 threads unpinned on the 2 CPUs, one pool:
 *                 threads are preempted inside the allocator's calls, and
 *                 frees arrive from threads that did not allocate
 *
 * Every allocated object gets a stamp in its first 8 bytes (the same-thread
 * sequence, or the producer's sequence number), checked before the free: an
 * object handed out twice while held shows up as a wrong stamp (exit 1).
 * The consumers check that they got the exact count sent; the pools must
 * have every object back at the end of each repetition.
 *
 * The allocators are called as the harness calls every library: ringmpsc's
 * exported rmpsc_pool_alloc/free (`ringmpsc`) and rmpsc_pool_cache_alloc/
 * free (`ringmpsc-cache`, one cache of POOL_CACHE per thread) straight from
 * the loops, the slab's address computed from the handle as pool.h
 * documents (tier base + index * stride, the index in the handle's low
 * rmpsc_pool_region.index_bits); malloc/free through one pointer each
 * (glibc, jemalloc, mimalloc); the header-only pools (DPDK rte_mempool, the
 * Boost stack) through one indirect call into their adapter. The pools are
 * big enough never to run dry: at most XRING objects per ring plus what
 * the caches hold are out at once.
 *
 * Crossover rows (ringmpsc only; GB/s of payload, fraction of LIM memset,
 * and Mmsg/s), for message sizes 64 B .. 64 KiB in powers of 4, a producer
 * on CPU A and a consumer on CPU B:
 *
 *   xo-<size>-copy    rmpsc_ring of elem_size = the message size: the
 *                     producer stamps its message buffer and pushes it (the
 *                     ring copies it in), the consumer pops it into its
 *                     buffer (the ring copies it out)
 *   xo-<size>-handle  a one-tier pool of slabs of the message size and an
 *                     MPSC channel (ringmpsc/channel.h) of 4-byte handles:
 *                     the producer allocates (its pool cache), memcpy's its
 *                     stamped message buffer into the slab (rmpsc_pool_slab),
 *                     sets the length, pushes the handle; the consumer pops
 *                     it, reads the payload in place (rmpsc_pool_payload)
 *                     and frees it (its cache)
 *
 * Both consumers read the whole message the same way: the sum of all its
 * 8-byte words, checked against the stamp and the known content (a torn or
 * stale copy is exit 1). Both paths hold at most K messages in flight, K =
 * XO_BYTES / size within [XO_K_MIN, XO_K_MAX] (the ring's capacity, and the
 * channel ring's); the caches hold up to K / 4 slabs (2..64) each.
 *
 * bench_case.arg: ROW_* for the pair rows; the message size | XO_HANDLE
 * for the crossover rows.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include <ringmpsc/channel.h>
#include <ringmpsc/pool.h>
#include <ringmpsc/ring.h>

#include "bench.h"
#include "bench_loop.h"
#include "pool_peer.h"

enum {
	KEEP = 32,	/* same-thread: objects held at a time */
	XRING = 1024,	/* cross-thread: slots of each pointer ring */
	OVER_PAIRS = 4, /* oversub: producer/consumer pairs */
	XO_BYTES = 1 << 20, /* crossover: bytes in flight at most (K x size)... */
	XO_K_MIN = 16,	    /* ...but at least this many messages */
	XO_K_MAX = 1024,    /* ...and at most */
	XO_CACHE_MAX = 64,  /* crossover: cache capacity at most */
};

/* bench_case.arg of the pair rows */
enum { ROW_SAME = 0, ROW_CROSS = 1, ROW_OVER = 2 };
/* bench_case.arg of the crossover rows: the size, and this for the handle path */
#define XO_HANDLE (1u << 31)

/* How the loops call an allocator (a compile-time constant in each loop). */
enum { K_RMPSC, K_RMPSC_CACHE, K_MALLOC, K_OPS };

/* ------------------------------------------------------------------------ */
/* The peers                                                                */
/* ------------------------------------------------------------------------ */

/* libringmpsc's pool can be created here (it runs under the ringmpsc
 * adapter, so an error would otherwise be a hard failure of the run). */
static int rm_setup(char *why, unsigned len)
{
	rmpsc_pool_config cfg;
	rmpsc_pool *p = NULL;
	int rc = rmpsc_pool_config_init(&cfg, sizeof cfg);

	if (!rc) {
		cfg.slab_size = POOL_OBJ_SIZE;
		cfg.slab_count = 64;
		rc = rmpsc_pool_create(&cfg, &p);
	}
	if (rc) {
		snprintf(why, len, "rmpsc_pool_create: %s", strerror(-rc));
		return -1;
	}
	rc = rmpsc_pool_destroy(p, 0, NULL);
	if (rc) {
		snprintf(why, len, "rmpsc_pool_destroy of a new pool: %s", strerror(-rc));
		return -1;
	}
	return 0;
}

/* Ours, plain calls: the rows of the `ringmpsc` adapter itself. */
static const struct pool_peer rm_plain = {
	.im = { .name = BENCH_OURS },
	.setup = rm_setup,
};

struct pool_peer bench_pool_ringmpsc_cache = {
	.im = { .name = BENCH_OURS "-cache",
		.api_note = "W9 only: libringmpsc's BufferPool through a per-thread "
			    "rmpsc_pool_cache of 256 (rmpsc_pool_cache_alloc/free); the "
			    "plain calls are the ringmpsc rows",
		.workloads = BENCH_WL_W9,
		.variant_of = BENCH_OURS },
	.setup = rm_setup,
};

/* The peer that W9 runs for @im, or NULL. */
static const struct pool_peer *peer_of(const struct bench_impl *im)
{
	if (im == &bench_impl_ringmpsc)
		return &rm_plain;
	if (im->workloads == BENCH_WL_W9)
		return (const struct pool_peer *)(const void *)im; /* im is its first member */
	return NULL;
}

static unsigned kind_of(const struct pool_peer *pp)
{
	if (pp == &rm_plain)
		return K_RMPSC;
	if (pp == &bench_pool_ringmpsc_cache)
		return K_RMPSC_CACHE;
	return pp->malloc_fn ? K_MALLOC : K_OPS;
}

/* Whether @pp can run: its setup, once (at planning, on the main thread),
 * with a note on stderr when it cannot. */
static int peer_ready(const struct pool_peer *pp)
{
	static struct {
		const struct pool_peer *pp;
		int ok;
	} seen[32];
	static unsigned nseen;
	char why[512] = "";
	unsigned i;
	int ok;

	for (i = 0; i < nseen; i++)
		if (seen[i].pp == pp)
			return seen[i].ok;
	ok = !pp->setup || !pp->setup(why, sizeof why);
	if (!ok)
		fprintf(stderr, "bench_ring: W9: skipping %s: %s\n", pp->im.name,
			why[0] ? why : "not available");
	if (nseen < BENCH_NELEM(seen)) {
		seen[nseen].pp = pp;
		seen[nseen++].ok = ok;
	}
	return ok;
}

static int pair_supported(const struct bench_impl *im)
{
	const struct pool_peer *pp = peer_of(im);

	return pp && peer_ready(pp);
}

static int xo_supported(const struct bench_impl *im)
{
	return im == &bench_impl_ringmpsc && peer_ready(&rm_plain);
}

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

static rmpsc_pool *rm_pool_new(uint64_t slab_size, uint32_t count, const char *what)
{
	rmpsc_pool_config cfg;
	rmpsc_pool *p = NULL;
	int rc = rmpsc_pool_config_init(&cfg, sizeof cfg);

	if (!rc) {
		cfg.slab_size = slab_size;
		cfg.slab_count = count;
		cfg.flags = RMPSC_POOL_F_PREFAULT;
		rc = rmpsc_pool_create(&cfg, &p);
	}
	if (rc)
		bench_die(1, "%s: rmpsc_pool_create(%" PRIu64 " x %u): %s", what, slab_size,
			  count, strerror(-rc));
	return p;
}

/* Every slab back (the caches are gone), then destroy. */
static void rm_pool_end(rmpsc_pool *p, const char *what)
{
	const int64_t avail = rmpsc_pool_available(p), cap = rmpsc_pool_capacity(p);
	uint64_t out = 0;
	int rc;

	if (avail != cap)
		bench_die(1, "%s: %" PRId64 " of %" PRId64 " slabs back in the pool at the end",
			  what, avail, cap);
	rc = rmpsc_pool_destroy(p, 0, &out);
	if (rc)
		bench_die(1, "%s: rmpsc_pool_destroy: %s (%" PRIu64 " slabs out)", what,
			  strerror(-rc), out);
}

static rmpsc_ring *ring_new(uint32_t capacity, uint32_t elem_size, const char *what)
{
	rmpsc_ring_config cfg;
	rmpsc_ring *r = NULL;
	int rc = rmpsc_ring_config_init(&cfg, sizeof cfg);

	if (!rc) {
		cfg.capacity = capacity;
		cfg.elem_size = elem_size;
		cfg.flags = RMPSC_RING_F_PREFAULT;
		rc = rmpsc_ring_create(&cfg, &r);
	}
	if (rc)
		bench_die(1, "%s: rmpsc_ring_create(%u x %u): %s", what, capacity, elem_size,
			  strerror(-rc));
	return r;
}

/* ------------------------------------------------------------------------ */
/* Alloc+free pairs                                                         */
/* ------------------------------------------------------------------------ */

/* One repetition's pool and rings, shared by its threads. */
struct pctx {
	const struct pool_peer *pp;
	unsigned kind;
	void *pool; /* rmpsc_pool *, or the peer's; NULL for malloc */
	/* ringmpsc: slab i at base + i * stride, i = handle & imask */
	unsigned char *base;
	uint64_t stride;
	uint32_t imask;
	rmpsc_ring *ring[OVER_PAIRS];
	/* Producer i's count + 1 once it stopped (its consumer's target). */
	_Alignas(64) _Atomic uint64_t sent[OVER_PAIRS];
};

/* What the loops call, copied to the worker's stack. */
struct pl {
	void *pool;
	unsigned char *base;
	uint64_t stride;
	uint32_t imask;
	void *(*malloc_fn)(size_t);
	void (*free_fn)(void *);
	int (*alloc)(void *pool, void *t, void **obj);
	int (*free)(void *pool, void *t, void *obj);
};

static void pl_init(struct pl *l, const struct pctx *x)
{
	l->pool = x->pool;
	l->base = x->base;
	l->stride = x->stride;
	l->imask = x->imask;
	l->malloc_fn = x->pp->malloc_fn;
	l->free_fn = x->pp->free_fn;
	l->alloc = x->pp->alloc;
	l->free = x->pp->free;
}

static inline __attribute__((always_inline)) uint64_t *obj_of(const struct pl *l,
							       const unsigned kind,
							       uint64_t tok)
{
	if (kind == K_RMPSC || kind == K_RMPSC_CACHE)
		return (uint64_t *)(void *)(l->base +
					    (uint64_t)((uint32_t)tok & l->imask) * l->stride);
	return (uint64_t *)(uintptr_t)tok;
}

/* 1 and *tok (what goes through the ring), *obj; 0 none free; < 0 failed. */
static inline __attribute__((always_inline)) int
p_alloc(const struct pl *l, void *t, const unsigned kind, uint64_t *tok, uint64_t **obj)
{
	void *p;
	int rc;

	if (kind == K_RMPSC || kind == K_RMPSC_CACHE) {
		uint32_t h;

		rc = kind == K_RMPSC ? rmpsc_pool_alloc(l->pool, POOL_OBJ_SIZE, &h)
				     : rmpsc_pool_cache_alloc(t, POOL_OBJ_SIZE, &h);
		if (rc)
			return rc == -ENOBUFS ? 0 : rc;
		*tok = h;
		*obj = obj_of(l, kind, h);
		return 1;
	}
	if (kind == K_MALLOC) {
		p = l->malloc_fn(POOL_OBJ_SIZE);
		if (!p)
			return -ENOMEM;
	} else {
		rc = l->alloc(l->pool, t, &p);
		if (rc != 1)
			return rc;
	}
	*tok = (uintptr_t)p;
	*obj = p;
	return 1;
}

/* 0 freed; < 0 failed. */
static inline __attribute__((always_inline)) int p_free(const struct pl *l, void *t,
							const unsigned kind, uint64_t tok,
							uint64_t *obj)
{
	if (kind == K_RMPSC)
		return rmpsc_pool_free(l->pool, (uint32_t)tok);
	if (kind == K_RMPSC_CACHE)
		return rmpsc_pool_cache_free(t, (uint32_t)tok);
	if (kind == K_MALLOC) {
		l->free_fn(obj);
		return 0;
	}
	return l->free(l->pool, t, obj);
}

/* The thread's cache, if its allocator has them: 0, or -1 (failed, said). */
static int tctx_init(struct bench_worker *w, const struct pctx *x, void **t)
{
	*t = NULL;
	if (x->kind == K_RMPSC_CACHE) {
		rmpsc_pool_cache *c = NULL;
		const int rc = rmpsc_pool_cache_create(x->pool, POOL_CACHE, &c);

		if (rc) {
			bench_worker_fail(w, "rmpsc_pool_cache_create: %s", strerror(-rc));
			return -1;
		}
		*t = c;
	} else if (x->kind == K_OPS && x->pp->thread_init) {
		*t = x->pp->thread_init(x->pool);
		if (!*t) {
			bench_worker_fail(w, "%s: the thread's cache could not be made",
					  x->pp->im.name);
			return -1;
		}
	}
	return 0;
}

static void tctx_fini(struct bench_worker *w, const struct pctx *x, void *t)
{
	int rc;

	if (!t)
		return;
	if (x->kind == K_RMPSC_CACHE) {
		rc = rmpsc_pool_cache_destroy(t);
		if (rc)
			bench_worker_fail(w, "rmpsc_pool_cache_destroy: %s", strerror(-rc));
	} else if (x->pp->thread_fini) {
		x->pp->thread_fini(x->pool, t);
	}
}

/* same-thread: KEEP allocations, each stamped, then KEEP frees, each
 * checked, until the stop flag; w->count pairs. */
static inline __attribute__((always_inline)) void same_loop(struct bench_worker *w,
							    const unsigned kind)
{
	struct bench_run *run = w->run;
	const struct pctx *x = run->q[0];
	uint64_t tok[KEEP], *obj[KEEP], pairs = 0;
	unsigned fails = 0, i;
	struct pl l;
	void *t;
	int rc;

	pl_init(&l, x);
	if (tctx_init(w, x, &t))
		return;
	w->t0 = bench_now_ns();
	do {
		for (i = 0; i < KEEP; i++) {
			while ((rc = p_alloc(&l, t, kind, &tok[i], &obj[i])) == 0)
				if (bench_spin(run, &fails))
					goto out;
			if (rc < 0) {
				bench_worker_fail(w, "alloc failed (%d)", rc);
				goto out;
			}
			fails = 0;
			*obj[i] = pairs + i;
		}
		for (i = 0; i < KEEP; i++) {
			if (*obj[i] != pairs + i) {
				bench_worker_fail(w,
						  "object %u of %" PRIu64 " changed while held "
						  "(%" PRIu64 "): handed out twice",
						  i, pairs, *obj[i]);
				goto out;
			}
			rc = p_free(&l, t, kind, tok[i], obj[i]);
			if (rc < 0) {
				bench_worker_fail(w, "free failed (%d)", rc);
				goto out;
			}
		}
		pairs += KEEP;
	} while (!atomic_load_explicit(&run->stop, memory_order_relaxed));
	w->t1 = bench_now_ns();
	w->count = pairs;
out:
	tctx_fini(w, x, t);
}

/* Producer w->idx: allocate, stamp with the sequence number, push the token
 * through ring idx; until the stop flag. */
static inline __attribute__((always_inline)) void prod_loop(struct bench_worker *w,
							    const unsigned kind)
{
	struct bench_run *run = w->run;
	struct pctx *x = run->q[0];
	rmpsc_ring *r = x->ring[w->idx];
	uint64_t seq = 0, tok = 0, *obj = NULL;
	unsigned fails = 0;
	struct pl l;
	void *t;
	int rc;

	pl_init(&l, x);
	if (tctx_init(w, x, &t))
		return;
	w->t0 = bench_now_ns();
	while (!bench_stopped(run, seq)) {
		while ((rc = p_alloc(&l, t, kind, &tok, &obj)) == 0)
			if (bench_spin(run, &fails))
				goto out;
		if (rc < 0) {
			bench_worker_fail(w, "alloc failed (%d)", rc);
			goto out;
		}
		fails = 0;
		*obj = seq;
		while ((rc = rmpsc_ring_push(r, &tok)) == -EAGAIN)
			if (bench_spin(run, &fails))
				goto out;
		if (rc) {
			bench_worker_fail(w, "rmpsc_ring_push failed (%d)", rc);
			goto out;
		}
		fails = 0;
		seq++;
	}
	atomic_store_explicit(&x->sent[w->idx], seq + 1, memory_order_release);
	bench_producer_done(w, seq);
out:
	tctx_fini(w, x, t);
}

/* Consumer w->idx: pop from ring idx, check the stamp, free; until it has
 * every object its producer sent. */
static inline __attribute__((always_inline)) void cons_loop(struct bench_worker *w,
							    const unsigned kind)
{
	struct bench_run *run = w->run;
	struct pctx *x = run->q[0];
	rmpsc_ring *r = x->ring[w->idx];
	uint64_t n = 0, total = UINT64_MAX, tok, *obj;
	unsigned fails = 0;
	struct pl l;
	void *t;
	int rc;

	pl_init(&l, x);
	if (tctx_init(w, x, &t))
		return;
	w->t0 = bench_now_ns();
	for (;;) {
		rc = rmpsc_ring_pop(r, &tok);
		if (rc == 0) {
			obj = obj_of(&l, kind, tok);
			if (*obj != n) {
				bench_worker_fail(w,
						  "object %" PRIu64 " carries stamp %" PRIu64
						  ": reused while in flight",
						  n, *obj);
				goto out;
			}
			rc = p_free(&l, t, kind, tok, obj);
			if (rc < 0) {
				bench_worker_fail(w, "free failed (%d)", rc);
				goto out;
			}
			n++;
			fails = 0;
			continue;
		}
		if (rc != -EAGAIN) {
			bench_worker_fail(w, "rmpsc_ring_pop failed (%d)", rc);
			goto out;
		}
		if (total == UINT64_MAX) {
			const uint64_t s =
				atomic_load_explicit(&x->sent[w->idx], memory_order_acquire);

			if (s)
				total = s - 1;
		}
		if (n == total)
			break;
		if (bench_spin(run, &fails))
			goto out;
	}
	w->t1 = bench_now_ns();
	w->count = n;
out:
	tctx_fini(w, x, t);
}

/* Each worker function expands its loop once per kind of call. */
#define POOL_DISPATCH(loop, w)                                          \
	do {                                                            \
		switch (((const struct pctx *)(w)->run->q[0])->kind) { \
		case K_RMPSC:                                           \
			loop(w, K_RMPSC);                               \
			break;                                          \
		case K_RMPSC_CACHE:                                     \
			loop(w, K_RMPSC_CACHE);                         \
			break;                                          \
		case K_MALLOC:                                          \
			loop(w, K_MALLOC);                              \
			break;                                          \
		default:                                                \
			loop(w, K_OPS);                                 \
			break;                                          \
		}                                                       \
	} while (0)

static void same_worker(struct bench_worker *w)
{
	POOL_DISPATCH(same_loop, w);
}

static void prod_worker(struct bench_worker *w)
{
	POOL_DISPATCH(prod_loop, w);
}

static void cons_worker(struct bench_worker *w)
{
	POOL_DISPATCH(cons_loop, w);
}

/* The pool of a repetition; for ringmpsc also the handle geometry, checked
 * against rmpsc_pool_slab() once. */
static void pair_pool_new(struct pctx *x, unsigned row, const char *what)
{
	if (x->kind == K_RMPSC || x->kind == K_RMPSC_CACHE) {
		rmpsc_pool_region reg;
		struct iovec iov;
		uint32_t h;
		int rc;

		x->pool = rm_pool_new(POOL_OBJ_SIZE, POOL_NOBJ, what);
		rc = rmpsc_pool_tier_info(x->pool, 0, &reg);
		if (rc)
			bench_die(1, "%s: rmpsc_pool_tier_info: %s", what, strerror(-rc));
		x->base = reg.base;
		x->stride = reg.stride;
		x->imask = reg.index_bits >= 32 ? UINT32_MAX : (1u << reg.index_bits) - 1;
		rc = rmpsc_pool_alloc(x->pool, POOL_OBJ_SIZE, &h);
		if (rc || rmpsc_pool_slab(x->pool, h, &iov) ||
		    iov.iov_base != (void *)(x->base + (uint64_t)(h & x->imask) * x->stride) ||
		    iov.iov_len < POOL_OBJ_SIZE || rmpsc_pool_free(x->pool, h))
			bench_die(1,
				  "%s: a slab's address is not tier base + (handle & "
				  "index mask) * stride, as pool.h says",
				  what);
	} else if (x->kind == K_OPS) {
		x->pool = x->pp->create(POOL_NOBJ, POOL_OBJ_SIZE,
					row == ROW_OVER ? POOL_C_OVERSUB : 0);
		if (!x->pool)
			bench_die(1, "%s: cannot create a pool of %u x %u", what,
				  (unsigned)POOL_NOBJ, (unsigned)POOL_OBJ_SIZE);
	}
}

static void pair_pool_end(struct pctx *x, const char *what)
{
	int64_t missing;

	if (x->kind == K_RMPSC || x->kind == K_RMPSC_CACHE) {
		rm_pool_end(x->pool, what);
	} else if (x->kind == K_OPS) {
		missing = x->pp->destroy(x->pool);
		if (missing)
			bench_die(1, "%s: %" PRId64 " objects did not come back to the pool",
				  what, missing);
	}
}

/* Mpair/s: same-thread, the thread's pairs over its time; otherwise the
 * objects the consumers freed over the span from the first consumer's start
 * to the last one's end. */
static void pair_measure(struct bench_run *run, const struct bench_case *c, double *m)
{
	const char *what = run->what;
	const unsigned np = c->nprod, nc = c->ncons;
	struct pctx *x = bench_xalloc(128, sizeof *x);
	uint64_t total = 0, t0 = UINT64_MAX, t1 = 0;
	unsigned i;

	x->pp = peer_of(run->impl);
	if (!x->pp)
		bench_die(1, "%s: not an allocator", what);
	x->kind = kind_of(x->pp);
	for (i = 0; i < OVER_PAIRS; i++)
		atomic_init(&x->sent[i], 0);
	pair_pool_new(x, c->arg, what);
	for (i = 0; i < nc; i++)
		x->ring[i] = ring_new(XRING, sizeof(uint64_t), what);
	run->q[0] = x;
	bench_run_case_threads(run, c, np, nc, c->arg != ROW_OVER, bench_mode.chan_tput_ns);
	if (!nc) {
		total = run->w[0].count;
		t0 = run->w[0].t0;
		t1 = run->w[0].t1;
	}
	for (i = 0; i < nc; i++) {
		const struct bench_worker *cw = &run->w[np + i];

		if (cw->count != run->w[i].count)
			bench_die(1, "%s: producer %u sent %" PRIu64 ", its consumer freed %" PRIu64,
				  what, i, run->w[i].count, cw->count);
		total += cw->count;
		t0 = cw->t0 < t0 ? cw->t0 : t0;
		t1 = cw->t1 > t1 ? cw->t1 : t1;
	}
	for (i = 0; i < nc; i++)
		rmpsc_ring_destroy(x->ring[i]);
	pair_pool_end(x, what);
	free(x);
	m[0] = bench_rate_mmsg(total, t0, t1);
}

/* ------------------------------------------------------------------------ */
/* Crossover: copy through a ring, or a pool slab's handle through a channel */
/* ------------------------------------------------------------------------ */

struct xctx {
	uint32_t size, k, cache;
	rmpsc_ring *ring;		  /* copy */
	rmpsc_mpsc *ch;			  /* handle */
	rmpsc_pool *pool;		  /* handle */
	uint64_t *src;			  /* the producer's message */
	uint64_t *sink;			  /* copy: where the consumer pops to */
	uint64_t base_sum;		  /* the sum of words 1.. of the message */
	_Alignas(64) _Atomic uint64_t sent; /* the producer's count + 1 once done */
};

/* Messages in flight at most, both paths. */
static uint32_t xo_k(uint32_t size)
{
	uint32_t k = XO_BYTES / size;

	return k < XO_K_MIN ? XO_K_MIN : k > XO_K_MAX ? XO_K_MAX : k;
}

static uint32_t xo_cache(uint32_t k)
{
	uint32_t c = k / 4;

	return c < 2 ? 2 : c > XO_CACHE_MAX ? XO_CACHE_MAX : c;
}

/* The consumer's read of a whole message: 0 when word 0 is @seq and the
 * words add up to @base_sum + @seq. */
static inline __attribute__((always_inline)) int xo_read(const uint64_t *p, uint32_t nw,
							 uint64_t seq, uint64_t base_sum)
{
	uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
	uint32_t i;

	for (i = 0; i + 4 <= nw; i += 4) {
		s0 += p[i];
		s1 += p[i + 1];
		s2 += p[i + 2];
		s3 += p[i + 3];
	}
	for (; i < nw; i++)
		s0 += p[i];
	return p[0] != seq || s0 + s1 + s2 + s3 != base_sum + seq;
}

/* The end of a consumer's loop on an empty queue: 1 when it has all. */
static inline int xo_all(struct xctx *x, uint64_t n, uint64_t *total)
{
	if (*total == UINT64_MAX) {
		const uint64_t s = atomic_load_explicit(&x->sent, memory_order_acquire);

		if (s)
			*total = s - 1;
	}
	return n == *total;
}

static void xo_copy_producer(struct bench_worker *w)
{
	struct bench_run *run = w->run;
	struct xctx *x = run->q[0];
	uint64_t *src = x->src, seq = 0;
	unsigned fails = 0;
	int rc;

	w->t0 = bench_now_ns();
	while (!bench_stopped(run, seq)) {
		src[0] = seq;
		while ((rc = rmpsc_ring_push(x->ring, src)) == -EAGAIN)
			if (bench_spin(run, &fails))
				return;
		if (rc) {
			bench_worker_fail(w, "rmpsc_ring_push failed (%d)", rc);
			return;
		}
		fails = 0;
		seq++;
	}
	atomic_store_explicit(&x->sent, seq + 1, memory_order_release);
	bench_producer_done(w, seq);
}

static void xo_copy_consumer(struct bench_worker *w)
{
	struct bench_run *run = w->run;
	struct xctx *x = run->q[0];
	const uint32_t nw = x->size / 8;
	uint64_t *sink = x->sink, n = 0, total = UINT64_MAX;
	unsigned fails = 0;
	int rc;

	w->t0 = bench_now_ns();
	for (;;) {
		rc = rmpsc_ring_pop(x->ring, sink);
		if (rc == 0) {
			if (xo_read(sink, nw, n, x->base_sum)) {
				bench_worker_fail(w, "message %" PRIu64 " arrived wrong", n);
				return;
			}
			n++;
			fails = 0;
			continue;
		}
		if (rc != -EAGAIN) {
			bench_worker_fail(w, "rmpsc_ring_pop failed (%d)", rc);
			return;
		}
		if (xo_all(x, n, &total))
			break;
		if (bench_spin(run, &fails))
			return;
	}
	w->t1 = bench_now_ns();
	w->count = n;
}

static void xo_handle_producer(struct bench_worker *w)
{
	struct bench_run *run = w->run;
	struct xctx *x = run->q[0];
	rmpsc_pool *pool = x->pool;
	const uint32_t size = x->size;
	uint64_t *src = x->src, seq = 0;
	rmpsc_pool_cache *c = NULL;
	rmpsc_producer *p = NULL;
	unsigned fails = 0;
	struct iovec iov;
	uint32_t h;
	int rc;

	rc = rmpsc_mpsc_register(x->ch, &p);
	if (rc < 0) {
		bench_worker_fail(w, "rmpsc_mpsc_register failed (%d)", rc);
		return;
	}
	rc = rmpsc_pool_cache_create(pool, x->cache, &c);
	if (rc) {
		bench_worker_fail(w, "rmpsc_pool_cache_create failed (%d)", rc);
		return;
	}
	w->t0 = bench_now_ns();
	while (!bench_stopped(run, seq)) {
		while ((rc = rmpsc_pool_cache_alloc(c, size, &h)) == -ENOBUFS)
			if (bench_spin(run, &fails))
				goto out;
		if (rc) {
			bench_worker_fail(w, "rmpsc_pool_cache_alloc failed (%d)", rc);
			goto out;
		}
		rc = rmpsc_pool_slab(pool, h, &iov);
		if (rc || iov.iov_len < size) {
			bench_worker_fail(w, "rmpsc_pool_slab failed (%d, %zu bytes)", rc,
					  iov.iov_len);
			goto out;
		}
		src[0] = seq;
		memcpy(iov.iov_base, src, size);
		rc = rmpsc_pool_set_len(pool, h, size);
		if (rc) {
			bench_worker_fail(w, "rmpsc_pool_set_len failed (%d)", rc);
			goto out;
		}
		fails = 0;
		while ((rc = rmpsc_producer_push(p, &h)) == -EAGAIN)
			if (bench_spin(run, &fails))
				goto out;
		if (rc) {
			bench_worker_fail(w, "rmpsc_producer_push failed (%d)", rc);
			goto out;
		}
		fails = 0;
		seq++;
	}
	atomic_store_explicit(&x->sent, seq + 1, memory_order_release);
	bench_producer_done(w, seq);
out:
	rc = rmpsc_pool_cache_destroy(c);
	if (rc)
		bench_worker_fail(w, "rmpsc_pool_cache_destroy failed (%d)", rc);
}

static void xo_handle_consumer(struct bench_worker *w)
{
	struct bench_run *run = w->run;
	struct xctx *x = run->q[0];
	rmpsc_pool *pool = x->pool;
	const uint32_t nw = x->size / 8;
	uint64_t n = 0, total = UINT64_MAX;
	rmpsc_pool_cache *c = NULL;
	unsigned fails = 0;
	struct iovec v;
	uint32_t h;
	int rc;

	rc = rmpsc_pool_cache_create(pool, x->cache, &c);
	if (rc) {
		bench_worker_fail(w, "rmpsc_pool_cache_create failed (%d)", rc);
		return;
	}
	w->t0 = bench_now_ns();
	for (;;) {
		rc = rmpsc_mpsc_pop(x->ch, &h, NULL);
		if (rc == 0) {
			rc = rmpsc_pool_payload(pool, h, &v);
			if (rc || v.iov_len != x->size) {
				bench_worker_fail(w,
						  "rmpsc_pool_payload of message %" PRIu64
						  " failed (%d, %zu bytes)",
						  n, rc, v.iov_len);
				goto out;
			}
			if (xo_read(v.iov_base, nw, n, x->base_sum)) {
				bench_worker_fail(w, "message %" PRIu64 " arrived wrong", n);
				goto out;
			}
			rc = rmpsc_pool_cache_free(c, h);
			if (rc) {
				bench_worker_fail(w, "rmpsc_pool_cache_free failed (%d)", rc);
				goto out;
			}
			n++;
			fails = 0;
			continue;
		}
		if (rc != -EAGAIN) {
			bench_worker_fail(w, "rmpsc_mpsc_pop failed (%d)", rc);
			goto out;
		}
		if (xo_all(x, n, &total))
			break;
		if (bench_spin(run, &fails))
			goto out;
	}
	w->t1 = bench_now_ns();
	w->count = n;
out:
	rc = rmpsc_pool_cache_destroy(c);
	if (rc)
		bench_worker_fail(w, "rmpsc_pool_cache_destroy failed (%d)", rc);
}

/* m[0] GB/s of payload, m[1] Mmsg/s: the consumer's messages over its time. */
static void xo_measure(struct bench_run *run, const struct bench_case *c, double *m)
{
	const char *what = run->what;
	const int handle = (c->arg & XO_HANDLE) != 0;
	struct xctx *x = bench_xalloc(128, sizeof *x);
	const struct bench_worker *pw = &run->w[0], *cw = &run->w[1];
	uint32_t i;
	int rc;

	x->size = c->arg & ~XO_HANDLE;
	x->k = xo_k(x->size);
	x->cache = xo_cache(x->k);
	atomic_init(&x->sent, 0);
	x->src = bench_xalloc(64, x->size);
	for (i = 1; i < x->size / 8; i++) {
		x->src[i] = (i + 1) * 0x9e3779b97f4a7c15ull;
		x->base_sum += x->src[i];
	}
	if (handle) {
		rmpsc_mpsc_config cfg;

		x->pool = rm_pool_new(x->size, x->k + 4 * x->cache + 16, what);
		rc = rmpsc_mpsc_config_init(&cfg, sizeof cfg);
		if (!rc) {
			cfg.elem_size = sizeof(uint32_t);
			cfg.ring_capacity = x->k;
			cfg.producers = 1;
			cfg.max_producers = 1;
			cfg.flags = RMPSC_MPSC_F_PREFAULT;
			rc = rmpsc_mpsc_create(&cfg, &x->ch);
		}
		if (rc)
			bench_die(1, "%s: rmpsc_mpsc_create: %s", what, strerror(-rc));
	} else {
		x->ring = ring_new(x->k, x->size, what);
		x->sink = bench_xalloc(64, x->size);
	}
	run->q[0] = x;
	bench_run_case_threads(run, c, 1, 1, 1, bench_mode.chan_tput_ns);
	if (cw->count != pw->count)
		bench_die(1, "%s: sent %" PRIu64 ", received %" PRIu64, what, pw->count,
			  cw->count);
	if (handle) {
		rmpsc_mpsc_destroy(x->ch);
		rm_pool_end(x->pool, what);
	} else {
		rmpsc_ring_destroy(x->ring);
		free(x->sink);
	}
	m[1] = bench_rate_mmsg(cw->count, cw->t0, cw->t1);
	m[0] = m[1] * x->size / 1e3;
	free(x->src);
	free(x);
}

/* ------------------------------------------------------------------------ */
/* The workload                                                             */
/* ------------------------------------------------------------------------ */

#define PAIR_CASE(path, row, np, nc, prod, cons)                                       \
	{ .label = path, .m = { { path, "Mpair/s" } }, .measure = pair_measure,         \
	  .supported = pair_supported, .producer = prod, .consumer = cons, .nprod = np, \
	  .ncons = nc, .arg = row }
#define XO_CASE(path, arg_, prod, cons)                                                 \
	{ .label = path,                                                                \
	  .m = { { path, "GB/s", BENCH_M_MEMSET | BENCH_M_NO_GLANCE },                  \
		 { path, "Mmsg/s", BENCH_M_TWIN, "mmsg_s" } },                          \
	  .measure = xo_measure, .supported = xo_supported, .producer = prod,            \
	  .consumer = cons, .nprod = 1, .ncons = 1, .arg = arg_ }
#define XO_SIZE(name, bytes)                                                           \
	XO_CASE("xo-" name "-copy", bytes, xo_copy_producer, xo_copy_consumer),        \
		XO_CASE("xo-" name "-handle", (bytes) | XO_HANDLE, xo_handle_producer, \
			xo_handle_consumer)

static const struct bench_case w9_cases[] = {
	PAIR_CASE("same-thread", ROW_SAME, 1, 0, same_worker, NULL),
	PAIR_CASE("cross-thread", ROW_CROSS, 1, 1, prod_worker, cons_worker),
	PAIR_CASE("oversub-4x2", ROW_OVER, OVER_PAIRS, OVER_PAIRS, prod_worker, cons_worker),
	XO_SIZE("64B", 64),
	XO_SIZE("256B", 256),
	XO_SIZE("1K", 1024),
	XO_SIZE("4K", 4096),
	XO_SIZE("16K", 16384),
	XO_SIZE("64K", 65536),
};

const struct bench_workload bench_wl_w9 = {
	.id = "W9", .what = "BufferPool alloc+free pairs, plain calls (W9 tables at the end)",
	.impl_bit = BENCH_WL_W9, .flags = BENCH_WL_NOT_QUICK, BENCH_CASES(w9_cases),
};

/* ------------------------------------------------------------------------ */
/* W9's tables                                                              */
/* ------------------------------------------------------------------------ */

/* @impl's series of W9 row @path in @unit, if it ran. */
static const struct bench_series *w9_series(const char *path, const char *unit,
					    const char *impl)
{
	const struct bench_series *s = bench_find_series(&bench_wl_w9, path, unit, impl);

	return s && s->n && s->med > 0 ? s : NULL;
}

/* A group of series: the best median, and which. */
static const struct bench_series *grp_best(const struct bench_series *const *g, unsigned n)
{
	const struct bench_series *b = NULL;
	unsigned i;

	for (i = 0; i < n; i++)
		if (g[i] && (!b || g[i]->med > b->med))
			b = g[i];
	return b;
}

/* Paired: in each round, the best value of @a over the best value of @b;
 * the median over the rounds (0 when no round has both). */
static double grp_paired(const struct bench_series *const *a, unsigned na,
			 const struct bench_series *const *b, unsigned nb)
{
	double r[REPS_MAX];
	unsigned j, i, n = 0;

	for (j = 0; j < REPS_MAX; j++) {
		double va = 0, vb = 0;
		int any = 0;

		for (i = 0; i < na; i++)
			if (a[i] && a[i]->n > j) {
				va = a[i]->v[j] > va ? a[i]->v[j] : va;
				any = 1;
			}
		for (i = 0; i < nb; i++)
			if (b[i] && b[i]->n > j) {
				vb = b[i]->v[j] > vb ? b[i]->v[j] : vb;
				any = 1;
			}
		if (!any)
			break;
		if (va > 0 && vb > 0)
			r[n++] = va / vb;
	}
	return bench_median_of(r, n);
}

/* "met", "MISSED" or "unclear" (medians and paired disagree) for @target. */
static const char *target_verdict(double med, double paired, double target)
{
	const int a = med >= target, b = paired > 0 ? paired >= target : a;

	return a && b ? "met" : !a && !b ? "MISSED" : "unclear";
}

/* One comparison line: @a's best against @b's best. */
static void cmp_line(const char *label, const struct bench_series *const *a, unsigned na,
		     const struct bench_series *const *b, unsigned nb)
{
	const struct bench_series *ba = grp_best(a, na), *bb = grp_best(b, nb);

	if (!ba || !bb)
		return;
	printf("    %-23s %-14s %8.2f / %-18s %8.2f = %5.2f, paired %5.2f\n", label, ba->impl,
	       ba->med, bb->impl, bb->med, ba->med / bb->med, grp_paired(a, na, b, nb));
}

static const char *const w9_rows[] = { "same-thread", "cross-thread", "oversub-4x2" };
static const char *const xo_names[] = { "64B", "256B", "1K", "4K", "16K", "64K" };
static const uint32_t xo_bytes[] = { 64, 256, 1024, 4096, 16384, 65536 };

static void print_pairs(void)
{
	unsigned r, i, head = 0;

	for (r = 0; r < BENCH_NELEM(w9_rows); r++) {
		const char *p = w9_rows[r];
		const struct bench_series *plain = w9_series(p, "Mpair/s", BENCH_OURS);
		const struct bench_series *cache = w9_series(p, "Mpair/s", BENCH_OURS "-cache");
		const struct bench_series *dp = w9_series(p, "Mpair/s", "dpdk-mempool");
		const struct bench_series *dpc = w9_series(p, "Mpair/s", "dpdk-mempool-cache");
		const struct bench_series *bs = w9_series(p, "Mpair/s", "boost-stack");
		const struct bench_series *gl = w9_series(p, "Mpair/s", "glibc");
		const struct bench_series *je = w9_series(p, "Mpair/s", "jemalloc");
		const struct bench_series *mi = w9_series(p, "Mpair/s", "mimalloc");
		const struct bench_series *ours[] = { plain, cache };
		const struct bench_series *lf[] = { dp, dpc, bs };
		const struct bench_series *any[] = { dp, dpc, bs, gl, je, mi };
		const struct bench_series *best, *blf;
		double med, pr;

		if (!plain && !cache)
			continue;
		if (!head++)
			printf("\nW9 pool (Mpair/s, medians of kept repetitions; a / b = ratio of "
			       "the medians, paired = median over rounds of each round's "
			       "ratio; > 1: a is faster)\n");
		printf("  %s:", p);
		for (i = 0; i < BENCH_NELEM(any) + 2; i++) {
			const struct bench_series *s = i < 2 ? ours[i] : any[i - 2];

			if (s)
				printf(" %s %.2f%s", s->impl, s->med,
				       i + 1 < BENCH_NELEM(any) + 2 ? "," : "");
		}
		printf("\n");
		/* Like with like. */
		cmp_line("plain vs plain", &plain, 1, &dp, 1);
		cmp_line("plain vs plain", &plain, 1, &bs, 1);
		cmp_line("cache vs cache", &cache, 1, &dpc, 1);
		cmp_line("ours' best vs glibc", ours, 2, &gl, 1);
		cmp_line("ours' best vs jemalloc", ours, 2, &je, 1);
		cmp_line("ours' best vs mimalloc", ours, 2, &mi, 1);
		cmp_line("best vs best peer", ours, 2, any, BENCH_NELEM(any));
		/* The targets. */
		best = grp_best(ours, 2);
		blf = grp_best(lf, BENCH_NELEM(lf));
		if (best && blf) {
			med = best->med / blf->med;
			pr = grp_paired(ours, 2, lf, BENCH_NELEM(lf));
			printf("    target: ours' best >= 1.0x the best lock-free pool (%s): "
			       "%.2f, paired %.2f: %s\n",
			       blf->impl, med, pr, target_verdict(med, pr, 1.0));
		}
		if (best && gl && !strcmp(p, "cross-thread")) {
			med = best->med / gl->med;
			pr = grp_paired(ours, 2, &gl, 1);
			printf("    target: ours' best >= 1.5x glibc malloc: %.2f, paired %.2f: "
			       "%s\n",
			       med, pr, target_verdict(med, pr, 1.5));
		}
	}
}

static double memset_limit(void)
{
	unsigned i;

	for (i = 0; i < bench_nseries; i++) {
		const struct bench_series *s = &bench_series[i];

		if (!s->im && s->n && !strcmp(s->path, "memset") && !strcmp(s->unit, "GB/s"))
			return s->med;
	}
	return 0.0;
}

static void print_crossover(void)
{
	const double mem = memset_limit();
	double ratio[BENCH_NELEM(xo_names)];
	int have[BENCH_NELEM(xo_names)];
	unsigned i, n = 0, from = BENCH_NELEM(xo_names);
	char path[32];

	for (i = 0; i < BENCH_NELEM(xo_names); i++) {
		const struct bench_series *cg, *cm, *hg, *hm;

		snprintf(path, sizeof path, "xo-%s-copy", xo_names[i]);
		cg = w9_series(path, "GB/s", BENCH_OURS);
		cm = w9_series(path, "Mmsg/s", BENCH_OURS);
		snprintf(path, sizeof path, "xo-%s-handle", xo_names[i]);
		hg = w9_series(path, "GB/s", BENCH_OURS);
		hm = w9_series(path, "Mmsg/s", BENCH_OURS);
		have[i] = cg && cm && hg && hm;
		if (!have[i])
			continue;
		if (!n++)
			printf("\nW9 crossover (ringmpsc; copy = the message through an SPSC ring "
			       "of its size, handle = a pool slab's 4-byte handle through an "
			       "MPSC channel; K in flight; medians, paired = per-round ratio)\n"
			       "  %6s %5s %10s %8s %10s %8s %12s %7s %14s\n",
			       "size", "K", "copy GB/s", "Mmsg/s", "hndl GB/s", "Mmsg/s",
			       "handle/copy", "paired", "handle/memset");
		{
			const struct bench_series *a[] = { hg }, *b[] = { cg };
			const double pr = grp_paired(a, 1, b, 1);

			ratio[i] = pr > 0 ? pr : hg->med / cg->med;
			printf("  %6s %5u %10.2f %8.2f %10.2f %8.2f %12.2f %7.2f", xo_names[i],
			       xo_k(xo_bytes[i]), cg->med, cm->med, hg->med, hm->med,
			       hg->med / cg->med, pr);
			if (mem > 0)
				printf(" %14.3f", hg->med / mem);
			printf("\n");
		}
	}
	if (!n)
		return;
	/* The crossover: the smallest size from which the handle path wins
	 * at every larger size (paired ratios). */
	for (i = BENCH_NELEM(xo_names); i-- > 0;) {
		if (!have[i])
			continue;
		if (ratio[i] <= 1.0)
			break;
		from = i;
	}
	if (from == BENCH_NELEM(xo_names))
		printf("  crossover: none, copying wins at every size measured\n");
	else if (from == 0)
		printf("  crossover: the handle path wins at every size measured, from %s\n",
		       xo_names[0]);
	else
		printf("  crossover: the handle path wins from %s up (copy wins at %s)\n",
		       xo_names[from], xo_names[from - 1]);
	if (mem > 0)
		printf("  memset limit (LIM): %.2f GB/s\n", mem);
}

void bench_pool_report(void)
{
	print_pairs();
	print_crossover();
}
