/* SPDX-License-Identifier: MIT */
/*
 * BufferPool (ringmpsc/pool.h): per tier, one region of slabs, a metadata
 * array and a lock-free free list of slab indices.
 *
 * Free list. A Treiber stack threaded through meta[i].next, whose head is
 * one 64-bit word {index:32 (low), tag:32}; every successful CAS bumps the
 * tag, so a pop that read head {A, t} and A's next B cannot succeed after A
 * was popped and pushed back (the tag moved on): the ABA case, with 2^32
 * operations needed between a pop's load and its CAS to fool it. A pop of
 * up to k slabs walks k next links from the head it read and swings the
 * head past them in the same single CAS: every change to those links needs
 * a head change first, so a CAS that succeeds proves the walk read the list
 * as it was. Head changes are all read-modify-writes, so an acquire load
 * of the head synchronizes with every release push before it (the release
 * sequence): the popper sees what the slab's previous owners wrote.
 *
 * Slab state. meta[i].state = frees << 2 | wrapped << 1 | io, written only
 * by whoever frees the slab (io: the kernel holds the slab, set by CAS and
 * cleared by the io_uring layer, U1 in uring.c; frees and accessors are
 * refused while it is set), and acnt[i], the slab's allocations, written only
 * by whoever allocates it: the slab is allocated when acnt is one ahead of
 * frees. A handle's generation is (frees + offset) mod 2^G (offset: a
 * random per-process base plus a golden-ratio step per pool); wrapped
 * says frees has reached 2^G. A free checks the generation and acnt, then
 * CASes frees one on: of two frees of one handle exactly one wins, and a
 * free of a free slab is refused whatever the handle. A handle whose
 * generation is not the current one is stale when that generation was
 * issued (the slab has been freed at least as often as the distance
 * back), foreign otherwise. Caches keep the next handle the free computed,
 * so an allocation from a cache reads no slab metadata and writes only its
 * acnt (docs/design.md, P2).
 *
 * Caches. A cache's arrays belong to its owner, who enters and leaves each
 * call with two stores to `busy` and a load of `thief` (the waker half of
 * the library's asymmetric barrier: a compiler barrier where membarrier
 * works); a thread that takes slabs from a cache (only when a tier ran
 * dry) raises `thief`, runs the heavy barrier and waits for `busy` to
 * clear, so the two never touch the arrays at once (Dekker). An owner that
 * finds `thief` raised goes to the pool directly for that call. An
 * allocation reports exhaustion only after two steals in a row found
 * neither a cache nor the list with a slab.
 *
 * Blocking. Sleepers register in `waiters` (wait.c's futex protocol, E4);
 * every free that puts a slab where a sleeper can see it (the free list,
 * or a cache) then looks at `waiters` after the waker barrier, and wakes
 * only when someone sleeps: a load of a line that is only written when an
 * allocator goes to sleep. A free into a cache with sleepers present
 * flushes the cache first, so the slab is on the free list when they wake.
 */
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "ringmpsc/numa.h"
#include "ringmpsc/pool.h"
#include "wait_core.h"

_Static_assert((int)RMPSC_PAGE_NORMAL == (int)RMPSC__PAGE_NORMAL &&
		       (int)RMPSC_PAGE_THP == (int)RMPSC__PAGE_THP &&
		       (int)RMPSC_PAGE_HUGE == (int)RMPSC__PAGE_HUGE &&
		       (int)RMPSC_PAGE_HUGE_2M == (int)RMPSC__PAGE_HUGE_2M &&
		       (int)RMPSC_PAGE_HUGE_1G == (int)RMPSC__PAGE_HUGE_1G,
	       "public and internal page kinds agree");
_Static_assert(sizeof(rmpsc_pool_config) == RMPSC_POOL_CONFIG_SIZE_V1, "pool config v1");
_Static_assert(sizeof(rmpsc_pool_tier) == 16, "tier frozen");
_Static_assert(sizeof(rmpsc_pool_region) == 48, "region frozen");

#define NIL UINT32_MAX
#define ST_IO 1u /* the kernel holds the slab: I/O in flight (uring.c) */
#define ST_WRAPPED 2u
#define ST_COUNTER(s) ((s) >> 2)
#define COUNTER_MASK ((1u << 30) - 1)
/* A refill or flush moves this many slabs at most in one go (the size of
 * the on-stack index array). */
#define BATCH_MAX (RMPSC_POOL_CACHE_MAX / 2)

/* Written by whoever frees the slab (and by set_len): in the pointer-ring
 * pattern one thread's lines. */
struct slab_meta {
	_Atomic uint32_t state; /* frees << 2 | wrapped << 1 | io */
	_Atomic uint32_t next;  /* free-list link while on the list */
	_Atomic uint64_t len;   /* payload length */
};

/* Read-mostly description of a tier. */
struct ptier {
	unsigned char *base;
	uint64_t slab_size;
	uint64_t stride;
	struct slab_meta *meta;
	_Atomic uint32_t *acnt; /* allocations of each slab: the allocators' lines */
	uint32_t count;
	uint32_t ibits;
	uint32_t gbits;
	uint32_t gmask;
	uint32_t imask;
	uint32_t off; /* generation offset */
	/* RMPSC_POOL_F_SHARED: each slab's payload length as the other
	 * process reads it (the directory's), and which slabs are lent
	 * (rmpsc_pool_lend(): a bit per slab, private). NULL otherwise. */
	_Atomic uint64_t *slen;
	_Atomic uint64_t *lent;
	struct rmpsc__region region;
};

/* What every allocation changes: a line (pair) of its own per tier. */
struct phead {
	_Atomic uint64_t head; /* {index:32, tag:32} */
	char pad[RMPSC__GROUP - 8];
};

struct rmpsc_pool {
	uint32_t magic;
	uint32_t ntiers;
	uint32_t tbits;
	uint32_t flags;
	uint32_t barrier; /* RMPSC__BARRIER_* of this pool's sleepers and wakers */
	/* One for the pool itself (dropped by destroy), one per io_uring
	 * registration or engine on it (uring.c): the memory goes when the
	 * last one goes. */
	_Atomic uint32_t refs;
	uint64_t capacity;
	struct ptier tier[RMPSC_POOL_TIERS_MAX];
	struct rmpsc__region meta_region;
	struct rmpsc__region share_region; /* RMPSC_POOL_F_SHARED: the directory */
	pthread_mutex_t mu;               /* the cache list; thieves; users */
	struct rmpsc_pool_cache *caches;  /* doubly linked under mu */
	struct rmpsc__pool_user *users;   /* io_uring users with a hook, under mu */
	_Atomic uint32_t ncaches;
	/* Read by every allocation and free; written when a thread goes to
	 * sleep, wakes one, or closes. */
	_Alignas(RMPSC__GROUP) _Atomic uint32_t closed;
	_Atomic uint32_t waiters;
	_Atomic uint32_t seq;    /* futex word */
	_Atomic uint32_t inside; /* threads in a blocking allocation's wait */
	_Alignas(RMPSC__GROUP) struct phead heads[RMPSC_POOL_TIERS_MAX];
};

struct rmpsc_pool_cache {
	uint32_t magic;
	uint32_t cap;
	rmpsc_pool *pool;
	uint32_t *slots; /* cap per tier */
	struct rmpsc_pool_cache *prev, *next;
	/* The owner's, and a thief's while it holds `thief` with busy clear. */
	uint32_t barrier; /* the pool's */
	_Alignas(RMPSC__CACHELINE) _Atomic uint32_t busy;
	_Atomic uint32_t thief;
	_Atomic uint32_t n[RMPSC_POOL_TIERS_MAX];
};

static _Atomic uint32_t pool_serial;

/* Where this process's generation offsets start: random, so that two
 * processes' first pools (a shared pool's peers, later) do not hand out
 * the same handles. */
static uint32_t offset_base(void)
{
	static _Atomic uint32_t base; /* 0: not drawn yet */
	uint32_t b = atomic_load_explicit(&base, memory_order_relaxed);

	if (!b) {
		if (getrandom(&b, sizeof b, GRND_NONBLOCK) != (ssize_t)sizeof b)
			b = (uint32_t)rmpsc__now_ns() ^ (uint32_t)getpid() * 0x85ebca6bu;
		b |= 1; /* drawn */
		/* The first to draw wins; the others take its value. */
		uint32_t zero = 0;

		if (!atomic_compare_exchange_strong_explicit(&base, &zero, b, memory_order_relaxed,
							     memory_order_relaxed))
			b = zero;
	}
	return b;
}

/* ---- free list ------------------------------------------------------------ */

static inline uint64_t head_next(uint64_t old, uint32_t idx)
{
	return ((old >> 32) + 1) << 32 | idx;
}

/* Pop up to @k slabs into @out; returns how many (0: empty). */
static inline uint32_t list_pop(struct phead *ph, struct slab_meta *meta, uint32_t k,
				uint32_t *out)
{
	uint64_t old = atomic_load_explicit(&ph->head, memory_order_acquire);

	for (;;) {
		uint32_t j = (uint32_t)old, m = 0;

		if (j == NIL)
			return 0;
		while (m < k && j != NIL) {
			out[m++] = j;
			j = atomic_load_explicit(&meta[j].next, memory_order_relaxed);
		}
		if (atomic_compare_exchange_weak_explicit(&ph->head, &old, head_next(old, j),
							  memory_order_acquire,
							  memory_order_acquire)) {
			return m;
		}
	}
}

static inline uint32_t list_pop1(struct phead *ph, struct slab_meta *meta)
{
	uint32_t i;

	return list_pop(ph, meta, 1, &i) ? i : NIL;
}

/* Push the chain @first .. @last, linked through next (owned by the
 * caller, not on the list). */
static inline void list_push_chain(struct phead *ph, struct slab_meta *meta, uint32_t first,
				   uint32_t last)
{
	uint64_t old = atomic_load_explicit(&ph->head, memory_order_relaxed);

	do
		atomic_store_explicit(&meta[last].next, (uint32_t)old, memory_order_relaxed);
	while (!atomic_compare_exchange_weak_explicit(&ph->head, &old, head_next(old, first),
						      memory_order_release, memory_order_relaxed));
}

/* Push the @m slabs of @idx (owned by the caller, not on the list). */
static inline void list_push(struct phead *ph, struct slab_meta *meta, const uint32_t *idx,
			     uint32_t m)
{
	for (uint32_t k = 0; k + 1 < m; k++)
		atomic_store_explicit(&meta[idx[k]].next, idx[k + 1], memory_order_relaxed);
	list_push_chain(ph, meta, idx[0], idx[m - 1]);
}

/* After a free made slabs visible: wake sleepers, if any (E4 waker half). */
static inline void wake_check(rmpsc_pool *p)
{
	rmpsc__light_barrier(p->barrier);
	if (RMPSC__UNLIKELY(atomic_load_explicit(&p->waiters, memory_order_relaxed)))
		rmpsc__futex_wake_all(&p->seq);
}

/* ---- handles -------------------------------------------------------------- */

static inline uint32_t handle_of(const rmpsc_pool *p, uint32_t t, uint32_t i, uint32_t counter)
{
	const struct ptier *tr = &p->tier[t];
	uint32_t gen = (counter + tr->off) & tr->gmask;
	uint32_t h = gen << tr->ibits | i;

	return p->tbits ? h | t << (32 - p->tbits) : h;
}

/* The handle of slab @i of tier @t at free count *@c, moving *@c one on
 * where that handle would be 0 (RMPSC_POOL_HANDLE_NONE is never a live
 * handle; *@skipped says so, and the caller keeps the allocation count in
 * step). The one place that rule lives: frees and pool creation. */
static inline uint32_t handle_past_zero(const rmpsc_pool *p, uint32_t t, uint32_t i,
					uint32_t *c, bool *skipped)
{
	uint32_t h = handle_of(p, t, i, *c);

	*skipped = h == RMPSC_POOL_HANDLE_NONE;
	if (*skipped) {
		*c = (*c + 1) & COUNTER_MASK;
		h = handle_of(p, t, i, *c);
	}
	return h;
}

/* The live handle of slab @i of tier @t (owned by the caller). */
static inline uint32_t handle_now(const rmpsc_pool *p, uint32_t t, uint32_t i)
{
	return handle_of(p, t, i,
			 ST_COUNTER(atomic_load_explicit(&p->tier[t].meta[i].state,
							 memory_order_relaxed)));
}

/* Count an allocation of slab @i (owned by the caller: the only writer). */
static inline void mark_alloc(const struct ptier *tr, uint32_t i)
{
	_Atomic uint32_t *a = &tr->acnt[i];

	atomic_store_explicit(a, atomic_load_explicit(a, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

/* A slab's payload length, and in a shared pool its directory copy (read
 * by the other process after the handle reaches it through a ring, whose
 * release orders this store). */
static inline void len_store(const struct ptier *tr, struct slab_meta *m, uint32_t i, uint64_t len,
			     memory_order mo)
{
	atomic_store_explicit(&m->len, len, mo);
	if (tr->slen)
		atomic_store_explicit(&tr->slen[i], len, memory_order_relaxed);
}

/* Make slab @i of tier @t, just taken off a list, the caller's. */
static inline uint32_t give(rmpsc_pool *p, uint32_t t, uint32_t i)
{
	mark_alloc(&p->tier[t], i);
	return handle_now(p, t, i);
}

/* A handle taken apart: tier, index, generation; after a free, the
 * slab's next handle. */
struct hpart {
	uint32_t t, i, gen, next;
};

static inline int split(const rmpsc_pool *p, uint32_t h, struct hpart *x)
{
	const struct ptier *tr;

	RMPSC__CHECK(h == RMPSC_POOL_HANDLE_NONE, -EINVAL);
	x->t = p->tbits ? h >> (32 - p->tbits) : 0;
	RMPSC__CHECK(x->t >= p->ntiers, -EINVAL);
	tr = &p->tier[x->t];
	x->i = h & tr->imask;
	RMPSC__CHECK(x->i >= tr->count, -EINVAL);
	x->gen = (h >> tr->ibits) & tr->gmask;
	return 0;
}

/* The verdict on generation @gen of slab @i against its state @s: 0 when
 * it is the slab's live handle, -ESTALE when it was issued before (the
 * slab has been freed since), -EINVAL when this slab never had it. */
static inline int judge(const struct ptier *tr, uint32_t i, uint32_t gen, uint32_t s)
{
	uint32_t c = ST_COUNTER(s), cur = (c + tr->off) & tr->gmask;

	if (RMPSC__LIKELY(gen == cur)) {
		/* The generation a free would retire: live if the slab was
		 * allocated once more than freed. Else it is the one its next
		 * allocation will get, never issued (or, wrapped, issued 2^G
		 * allocations ago): refused, or the slab would be freed twice. */
		if (RMPSC__LIKELY((atomic_load_explicit(&tr->acnt[i], memory_order_relaxed) &
				   COUNTER_MASK) != c))
			return 0;
		return (s & ST_WRAPPED) ? -ESTALE : -EINVAL;
	}
	return (s & ST_WRAPPED) || ((cur - gen) & tr->gmask) <= c ? -ESTALE : -EINVAL;
}

static inline const rmpsc_pool *pool_ok(const void *p)
{
	return RMPSC__HANDLE_IS(p, RMPSC__MAGIC_POOL) ? p : NULL;
}

/* A live handle's slab in a pool known good: 0 and @x, or the error. */
static inline int lookup_in(const rmpsc_pool *p, uint32_t h, struct hpart *x,
			    struct slab_meta **mp)
{
	struct slab_meta *m;
	uint32_t s;
	int err = split(p, h, x);

	if (err)
		return err;
	m = &p->tier[x->t].meta[x->i];
	s = atomic_load_explicit(&m->state, memory_order_acquire);
	err = judge(&p->tier[x->t], x->i, x->gen, s);
	if (err)
		return err;
	/* The kernel may be writing the slab: no view of it escapes. */
	RMPSC__CHECK(s & ST_IO, -EBUSY);
	*mp = m;
	return 0;
}

static inline int lookup(const rmpsc_pool *p, uint32_t h, struct hpart *x,
			 struct slab_meta **mp)
{
	RMPSC__CHECK(!pool_ok(p), -EBADF);
	return lookup_in(p, h, x, mp);
}

/* Take a live handle's ownership away (the first half of a free), in a
 * pool known good: the slab's next generation, by CAS (of two frees of one
 * handle exactly one gets here), then its payload length back to 0. */
static inline int release(rmpsc_pool *p, uint32_t h, struct hpart *x)
{
	struct slab_meta *m;
	const struct ptier *tr;
	int err = split(p, h, x);
	uint32_t s, ns, c, nh;
	bool skip;

	if (err)
		return err;
	tr = &p->tier[x->t];
	m = &tr->meta[x->i];
	s = atomic_load_explicit(&m->state, memory_order_relaxed);
	do {
		err = judge(tr, x->i, x->gen, s);
		if (err)
			return err;
		RMPSC__CHECK(s & ST_IO, -EBUSY);
		c = (ST_COUNTER(s) + 1) & COUNTER_MASK;
		nh = handle_past_zero(p, x->t, x->i, &c, &skip);
		ns = c << 2 | (s & ST_WRAPPED);
		if (c > tr->gmask || c <= ST_COUNTER(s))
			ns |= ST_WRAPPED;
	} while (!atomic_compare_exchange_weak_explicit(&m->state, &s, ns, memory_order_acq_rel,
							memory_order_relaxed));
	if (RMPSC__UNLIKELY(skip))
		mark_alloc(tr, x->i); /* allocations and frees keep step */
	len_store(tr, m, x->i, 0, memory_order_relaxed);
	x->next = nh;
	return 0;
}

/* The smallest tier that holds @len, or -EMSGSIZE. */
static inline int tier_for(const rmpsc_pool *p, uint64_t len)
{
	uint32_t t = 0;

	if (RMPSC__LIKELY(len <= p->tier[0].slab_size))
		return 0;
	while (p->tier[t].slab_size < len)
		if (++t == p->ntiers)
			return -EMSGSIZE;
	return (int)t;
}

/* ---- caches: the owner's side --------------------------------------------- */

static inline bool cache_enter(rmpsc_pool_cache *c)
{
	atomic_store_explicit(&c->busy, 1, memory_order_relaxed);
	rmpsc__light_barrier(c->barrier);
	if (RMPSC__LIKELY(!atomic_load_explicit(&c->thief, memory_order_acquire)))
		return true;
	atomic_store_explicit(&c->busy, 0, memory_order_release);
	return false;
}

static inline void cache_leave(rmpsc_pool_cache *c)
{
	atomic_store_explicit(&c->busy, 0, memory_order_release);
}

/* Move the top @k slabs of tier @t of @c (entered, or stolen) to the pool:
 * its slots hold handles, the list links indices. */
static void cache_spill(rmpsc_pool_cache *c, uint32_t t, uint32_t k)
{
	rmpsc_pool *p = c->pool;
	uint32_t n = atomic_load_explicit(&c->n[t], memory_order_relaxed), *top;

	if (k > n)
		k = n;
	if (!k)
		return;
	top = c->slots + (size_t)t * c->cap + (n - k);
	for (uint32_t j = 0; j < k; j++)
		top[j] &= p->tier[t].imask;
	list_push(&p->heads[t], p->tier[t].meta, top, k);
	atomic_store_explicit(&c->n[t], n - k, memory_order_relaxed);
}

/* Every slab of @c (entered, or ours alone) to the pool: how many. */
static uint32_t cache_spill_all(rmpsc_pool_cache *c)
{
	uint32_t moved = 0;

	for (uint32_t t = 0; t < c->pool->ntiers; t++) {
		moved += atomic_load_explicit(&c->n[t], memory_order_relaxed);
		cache_spill(c, t, UINT32_MAX);
	}
	return moved;
}

/* ---- thieves -------------------------------------------------------------- */

/* Move every slab of tier @t held by caches to the pool's list. Returns
 * whether the list then has any (moved here, or put there by others since
 * the caller looked): false means that, at the end of the scan, no cache
 * and not the list had a slab of the tier, so that an allocation that
 * finds the list empty after it may report exhaustion.
 *
 * The first heavy barrier makes every cache call that has returned visible
 * (its count and its busy flag leave no store behind in a store buffer),
 * so a cache passed over as empty and idle was empty when this began. The
 * second is the thieves' half of the Dekker handshake with the owners of
 * the caches chosen: each then either sees `thief` in its next call, or is
 * seen busy here and waited for. */
static bool steal(rmpsc_pool *p, uint32_t t)
{
	bool got = false, any = false;

	if (!atomic_load_explicit(&p->ncaches, memory_order_relaxed))
		return false;
	pthread_mutex_lock(&p->mu);
	rmpsc__heavy_barrier(p->barrier);
	for (rmpsc_pool_cache *c = p->caches; c; c = c->next)
		if (atomic_load_explicit(&c->n[t], memory_order_relaxed) ||
		    atomic_load_explicit(&c->busy, memory_order_relaxed)) {
			/* (an owner inside may be refilling it) */
			atomic_store_explicit(&c->thief, 1, memory_order_relaxed);
			any = true;
		}
	if (any) {
		rmpsc__heavy_barrier(p->barrier);
		for (rmpsc_pool_cache *c = p->caches; c; c = c->next) {
			if (!atomic_load_explicit(&c->thief, memory_order_relaxed))
				continue;
			while (atomic_load_explicit(&c->busy, memory_order_acquire))
				sched_yield(); /* the owner may be preempted inside */
			got |= atomic_load_explicit(&c->n[t], memory_order_relaxed) != 0;
			cache_spill(c, t, UINT32_MAX);
			atomic_store_explicit(&c->thief, 0, memory_order_release);
		}
	}
	got |= (uint32_t)atomic_load_explicit(&p->heads[t].head, memory_order_relaxed) != NIL;
	pthread_mutex_unlock(&p->mu);
	return got;
}

/* ---- allocation ----------------------------------------------------------- */

struct alloc_try {
	rmpsc_pool *p;
	uint32_t t0;   /* smallest tier that holds the request */
	uint32_t tmax; /* largest tier to try */
	uint32_t h;
};

/* One look at the free lists (and, with @deep, the caches). */
static inline int try_tiers(struct alloc_try *a, bool deep)
{
	rmpsc_pool *p = a->p;

	if (RMPSC__UNLIKELY(atomic_load_explicit(&p->closed, memory_order_acquire)))
		return -EPIPE;
	/* A larger tier only once this one has nothing left, in its list or
	 * (deep) any cache. */
	for (uint32_t t = a->t0; t <= a->tmax; t++) {
		uint32_t i = list_pop1(&p->heads[t], p->tier[t].meta);

		/* Other threads may take what a steal put on the list before
		 * this pop, and free into their caches meanwhile: steal again
		 * until a steal finds neither the caches nor the list with a
		 * slab (or a pop succeeds). */
		for (uint32_t idle = 0; i == NIL && deep && idle < 2;) {
			/* Twice in a row: one scan of the caches is not a
			 * snapshot, a slab freed into a cache already passed
			 * over can have come from the list after its check. */
			idle = steal(p, t) ? 0 : idle + 1;
			i = list_pop1(&p->heads[t], p->tier[t].meta);
		}
		if (i != NIL) {
			a->h = give(p, t, i);
			return 0;
		}
	}
	return -EAGAIN;
}

static int try_shallow(void *arg)
{
	return try_tiers(arg, false);
}

static int try_deep(void *arg)
{
	return try_tiers(arg, true);
}

/* The tiers an allocation of @len may take from, in a pool known good. */
static inline int alloc_tiers(rmpsc_pool *p, uint64_t len, struct alloc_try *a)
{
	int t = tier_for(p, len);

	if (t < 0)
		return t;
	a->p = p;
	a->t0 = (uint32_t)t;
	a->tmax = (p->flags & RMPSC_POOL_F_SPILL) ? p->ntiers - 1 : (uint32_t)t;
	return 0;
}

static int alloc_wait(struct alloc_try *a, uint32_t *h, int64_t timeout_ns, const rmpsc_wait *w)
{
	rmpsc_pool *p = a->p;
	const struct rmpsc__waitsite ws = {
		.closed = &p->closed,
		.waiters = &p->waiters,
		.seq = &p->seq,
		.barrier = p->barrier,
		.sleep_fn = try_deep,
	};
	rmpsc_wait wait, dflt;
	int r;

	rmpsc__wait_default(&dflt);
	r = rmpsc__wait_resolve(w, &dflt, &wait);
	if (r)
		return r;
	r = try_deep(a);
	if (r == -EAGAIN) {
		atomic_fetch_add_explicit(&p->inside, 1, memory_order_relaxed);
		r = rmpsc__wait_run(&wait, timeout_ns, &ws, try_shallow, a);
		atomic_fetch_sub_explicit(&p->inside, 1, memory_order_release);
	}
	if (r == 0)
		*h = a->h;
	return r;
}

/* A non-blocking allocation, the pool known good. */
static int alloc_now(rmpsc_pool *p, uint64_t len, uint32_t *h)
{
	struct alloc_try a;
	int r = alloc_tiers(p, len, &a);

	if (r)
		return r;
	/* Shallow first: a spill never takes a larger slab while a cache
	 * holds one of the tier asked for, so with SPILL go deep at once. */
	r = a.tmax == a.t0 ? try_tiers(&a, false) : -EAGAIN;
	if (r == -EAGAIN)
		r = try_tiers(&a, true);
	if (r == -EAGAIN)
		return -ENOBUFS;
	if (r == 0)
		*h = a.h;
	return r;
}

int rmpsc_pool_alloc(rmpsc_pool *p, uint64_t len, uint32_t *h)
{
	RMPSC__CHECK(!h, -EINVAL);
	*h = RMPSC_POOL_HANDLE_NONE;
	RMPSC__CHECK(!pool_ok(p), -EBADF);
	return alloc_now(p, len, h);
}

int rmpsc_pool_alloc_timed(rmpsc_pool *p, uint64_t len, uint32_t *h, int64_t timeout_ns,
			   const rmpsc_wait *w)
{
	struct alloc_try a;
	int r;

	RMPSC__CHECK(!h, -EINVAL);
	*h = RMPSC_POOL_HANDLE_NONE;
	RMPSC__CHECK(!pool_ok(p), -EBADF);
	/* The strategy first, as the header says (and the cache twin does). */
	if (w && (r = rmpsc_wait_validate(w)) != 0)
		return r;
	r = alloc_tiers(p, len, &a);
	return r ? r : alloc_wait(&a, h, timeout_ns, w);
}

/* A free, the pool known good (or destroyed, its memory kept). */
static int free_now(rmpsc_pool *p, uint32_t h)
{
	struct hpart x;
	int err = release(p, h, &x);

	if (err)
		return err;
	list_push(&p->heads[x.t], p->tier[x.t].meta, &x.i, 1);
	wake_check(p);
	return 0;
}

int rmpsc_pool_free(rmpsc_pool *p, uint32_t h)
{
	RMPSC__CHECK(!pool_ok(p), -EBADF);
	return free_now(p, h);
}

/* ---- caches --------------------------------------------------------------- */

static inline rmpsc_pool_cache *cache_ok(const void *c)
{
	return RMPSC__HANDLE_IS(c, RMPSC__MAGIC_PCACHE) ? (rmpsc_pool_cache *)c : NULL;
}

/* A batch from the pool into the (entered, empty) cache; the first slab
 * for the caller. Out of line: the fast path keeps a small frame. */
static __attribute__((noinline)) int cache_refill(rmpsc_pool_cache *c, uint32_t t, uint32_t *h)
{
	rmpsc_pool *p = c->pool;
	uint32_t batch[BATCH_MAX];
	/* Half the capacity in one pop, inside: a thief waits meanwhile. */
	uint32_t m = list_pop(&p->heads[t], p->tier[t].meta, c->cap / 2, batch);

	if (m > 1) {
		uint32_t *slots = c->slots + (size_t)t * c->cap;

		for (uint32_t j = 1; j < m; j++)
			slots[j - 1] = handle_now(p, t, batch[j]);
		atomic_store_explicit(&c->n[t], m - 1, memory_order_relaxed);
	}
	cache_leave(c);
	if (!m)
		return -EAGAIN;
	*h = give(p, t, batch[0]);
	return 0;
}

/* From the cache, or a batch from the pool into it: 0, -EAGAIN (nothing
 * in the pool's list of tier @t), -EBUSY (a thief holds the cache). */
static inline int cache_take(rmpsc_pool_cache *c, uint32_t t, uint32_t *h)
{
	uint32_t n;

	if (!cache_enter(c))
		return -EBUSY;
	n = atomic_load_explicit(&c->n[t], memory_order_relaxed);
	if (RMPSC__LIKELY(n)) {
		const struct ptier *tr = &c->pool->tier[t];
		uint32_t hh = c->slots[(size_t)t * c->cap + n - 1];

		atomic_store_explicit(&c->n[t], n - 1, memory_order_relaxed);
		cache_leave(c);
		mark_alloc(tr, hh & tr->imask);
		*h = hh;
		return 0;
	}
	return cache_refill(c, t, h);
}

static int cache_alloc(rmpsc_pool_cache *c, uint64_t len, uint32_t *h, bool timed,
		       int64_t timeout_ns, const rmpsc_wait *w)
{
	struct alloc_try a;
	rmpsc_pool *p;
	int r;

	RMPSC__CHECK(!h, -EINVAL);
	*h = RMPSC_POOL_HANDLE_NONE;
	RMPSC__CHECK(!cache_ok(c), -EBADF);
	if (timed && w) {
		r = rmpsc_wait_validate(w);
		if (r)
			return r;
	}
	p = c->pool; /* good while the cache is */
	r = alloc_tiers(p, len, &a);
	if (r)
		return r;
	if (RMPSC__UNLIKELY(atomic_load_explicit(&p->closed, memory_order_acquire)))
		return -EPIPE;
	/* The cache, or a batch of the tier asked for into it; anything else
	 * (a thief holds the cache, the tier's list is empty, a spill) goes
	 * the pool's way, which looks in the caches before a larger tier. */
	r = cache_take(c, a.t0, h);
	if (RMPSC__LIKELY(r == 0))
		return 0;
	if (timed)
		return alloc_wait(&a, h, timeout_ns, w);
	r = try_tiers(&a, true);
	if (r == 0)
		*h = a.h;
	return r == -EAGAIN ? -ENOBUFS : r;
}

int rmpsc_pool_cache_alloc(rmpsc_pool_cache *c, uint64_t len, uint32_t *h)
{
	return cache_alloc(c, len, h, false, 0, NULL);
}

int rmpsc_pool_cache_alloc_timed(rmpsc_pool_cache *c, uint64_t len, uint32_t *h,
				 int64_t timeout_ns, const rmpsc_wait *w)
{
	return cache_alloc(c, len, h, true, timeout_ns, w);
}

int rmpsc_pool_cache_free(rmpsc_pool_cache *c, uint32_t h)
{
	struct hpart x;
	rmpsc_pool *p;
	int err;

	RMPSC__CHECK(!cache_ok(c), -EBADF);
	p = c->pool;
	err = release(p, h, &x);
	if (err)
		return err;
	if (RMPSC__LIKELY(cache_enter(c))) {
		uint32_t n = atomic_load_explicit(&c->n[x.t], memory_order_relaxed);

		if (RMPSC__UNLIKELY(n == c->cap)) {
			cache_spill(c, x.t, c->cap / 2);
			n -= c->cap / 2;
		}
		c->slots[(size_t)x.t * c->cap + n] = x.next;
		atomic_store_explicit(&c->n[x.t], n + 1, memory_order_relaxed);
		/* E4's waker half, with the cache as the place published to:
		 * a sleeper registered after this sees the slab when it steals
		 * (its last look before sleeping is deep); one that registered
		 * before is seen here, and the slab goes to the list for it. */
		rmpsc__light_barrier(p->barrier);
		if (RMPSC__UNLIKELY(atomic_load_explicit(&p->waiters, memory_order_relaxed))) {
			cache_spill(c, x.t, UINT32_MAX);
			cache_leave(c);
			rmpsc__futex_wake_all(&p->seq);
			return 0;
		}
		cache_leave(c);
		return 0;
	}
	list_push(&p->heads[x.t], p->tier[x.t].meta, &x.i, 1);
	wake_check(p);
	return 0;
}

/* ---- bulk ----------------------------------------------------------------- */

/* Up to @n slab indices of tier @t from the cache into @idx: how many. */
static uint32_t cache_take_n(rmpsc_pool_cache *c, uint32_t t, uint32_t *idx, uint32_t n)
{
	uint32_t have;

	if (!cache_enter(c))
		return 0;
	have = atomic_load_explicit(&c->n[t], memory_order_relaxed);
	if (n > have)
		n = have;
	memcpy(idx, c->slots + (size_t)t * c->cap + (have - n), (size_t)n * sizeof *idx);
	atomic_store_explicit(&c->n[t], have - n, memory_order_relaxed);
	cache_leave(c);
	return n;
}

/* @n slabs of tier @t from the pool (lists, then caches) into @idx, as
 * indices: all, or none (0, -EAGAIN). */
static int list_take_n(rmpsc_pool *p, uint32_t t, uint32_t *idx, uint32_t n)
{
	struct phead *ph = &p->heads[t];
	struct slab_meta *meta = p->tier[t].meta;
	uint32_t got = 0;

	/* As try_tiers: the caches twice in a row found empty. */
	for (uint32_t idle = 0; got < n && idle < 2;) {
		uint32_t m = list_pop(ph, meta, n - got, idx + got);

		if (m)
			got += m;
		else
			idle = steal(p, t) ? 0 : idle + 1;
	}
	if (got == n)
		return 0;
	if (got) {
		list_push(ph, meta, idx, got);
		wake_check(p);
	}
	return -EAGAIN;
}

static int alloc_n(rmpsc_pool *p, rmpsc_pool_cache *c, uint64_t len, uint32_t *hs, uint32_t n)
{
	struct alloc_try a;
	int r = alloc_tiers(p, len, &a);

	if (r)
		return r;
	if (RMPSC__UNLIKELY(atomic_load_explicit(&p->closed, memory_order_acquire)))
		return -EPIPE;
	if (!n)
		return 0;
	for (uint32_t t = a.t0; t <= a.tmax; t++) {
		uint32_t k;

		if (n > p->tier[t].count)
			continue;
		/* Handles from the cache, indices from the lists. */
		k = c ? cache_take_n(c, t, hs, n) : 0;
		if (k == n || list_take_n(p, t, hs + k, n - k) == 0) {
			for (uint32_t j = 0; j < k; j++)
				mark_alloc(&p->tier[t], hs[j] & p->tier[t].imask);
			for (uint32_t j = k; j < n; j++)
				hs[j] = give(p, t, hs[j]);
			return (int)n;
		}
		if (k) {
			for (uint32_t j = 0; j < k; j++)
				hs[j] &= p->tier[t].imask;
			list_push(&p->heads[t], p->tier[t].meta, hs, k);
			wake_check(p);
		}
	}
	return -ENOBUFS;
}

/* Release every live handle of @hs; into @c while it has room (entered),
 * the others chained per tier and pushed once per tier. */
static int free_n(rmpsc_pool *p, rmpsc_pool_cache *c, const uint32_t *hs, uint32_t n)
{
	uint32_t first[RMPSC_POOL_TIERS_MAX], last[RMPSC_POOL_TIERS_MAX];
	const bool entered = c && cache_enter(c);
	uint32_t freed = 0;
	bool sleepers;

	for (uint32_t t = 0; t < p->ntiers; t++)
		first[t] = NIL;
	for (uint32_t k = 0; k < n; k++) {
		struct hpart x;

		if (release(p, hs[k], &x))
			continue;
		freed++;
		if (entered) {
			uint32_t have = atomic_load_explicit(&c->n[x.t], memory_order_relaxed);

			if (have < c->cap) {
				c->slots[(size_t)x.t * c->cap + have] = x.next;
				atomic_store_explicit(&c->n[x.t], have + 1, memory_order_relaxed);
				continue;
			}
		}
		if (first[x.t] == NIL)
			first[x.t] = x.i;
		else
			atomic_store_explicit(&p->tier[x.t].meta[last[x.t]].next, x.i,
					      memory_order_relaxed);
		last[x.t] = x.i;
	}
	for (uint32_t t = 0; t < p->ntiers; t++)
		if (first[t] != NIL)
			list_push_chain(&p->heads[t], p->tier[t].meta, first[t], last[t]);
	/* E4's waker half, as rmpsc_pool_cache_free(). */
	rmpsc__light_barrier(p->barrier);
	sleepers = atomic_load_explicit(&p->waiters, memory_order_relaxed) != 0;
	if (entered) {
		if (RMPSC__UNLIKELY(sleepers))
			cache_spill_all(c);
		cache_leave(c);
	}
	if (RMPSC__UNLIKELY(sleepers))
		rmpsc__futex_wake_all(&p->seq);
	return (int)freed;
}

int rmpsc_pool_alloc_n(rmpsc_pool *p, uint64_t len, uint32_t *hs, uint32_t n)
{
	RMPSC__CHECK((n && !hs) || n > INT32_MAX, -EINVAL);
	RMPSC__CHECK(!pool_ok(p), -EBADF);
	return alloc_n(p, NULL, len, hs, n);
}

int rmpsc_pool_free_n(rmpsc_pool *p, const uint32_t *hs, uint32_t n)
{
	RMPSC__CHECK((n && !hs) || n > INT32_MAX, -EINVAL);
	RMPSC__CHECK(!pool_ok(p), -EBADF);
	return free_n(p, NULL, hs, n);
}

int rmpsc_pool_cache_alloc_n(rmpsc_pool_cache *c, uint64_t len, uint32_t *hs, uint32_t n)
{
	RMPSC__CHECK((n && !hs) || n > INT32_MAX, -EINVAL);
	RMPSC__CHECK(!cache_ok(c), -EBADF);
	return alloc_n(c->pool, c, len, hs, n);
}

int rmpsc_pool_cache_free_n(rmpsc_pool_cache *c, const uint32_t *hs, uint32_t n)
{
	RMPSC__CHECK((n && !hs) || n > INT32_MAX, -EINVAL);
	RMPSC__CHECK(!cache_ok(c), -EBADF);
	return free_n(c->pool, c, hs, n);
}

int rmpsc_pool_cache_flush(rmpsc_pool_cache *c)
{
	uint32_t moved;

	RMPSC__CHECK(!cache_ok(c), -EBADF);
	if (!cache_enter(c))
		return 0; /* a thief is emptying it right now */
	moved = cache_spill_all(c);
	cache_leave(c);
	if (moved)
		wake_check(c->pool);
	return (int)moved;
}

int64_t rmpsc_pool_cache_count(const rmpsc_pool_cache *c)
{
	int64_t n = 0;

	RMPSC__CHECK(!cache_ok(c), -EBADF);
	for (uint32_t t = 0; t < c->pool->ntiers; t++)
		n += atomic_load_explicit(&c->n[t], memory_order_relaxed);
	return n;
}

int rmpsc_pool_cache_create(rmpsc_pool *p, uint32_t capacity, rmpsc_pool_cache **out)
{
	rmpsc_pool_cache *c;

	RMPSC__CHECK(!out, -EINVAL);
	*out = NULL;
	RMPSC__CHECK(!pool_ok(p), -EBADF);
	RMPSC__CHECK(capacity < 2 || capacity > RMPSC_POOL_CACHE_MAX, -EINVAL);
	c = aligned_alloc(RMPSC__CACHELINE, sizeof *c);
	if (!c)
		return -ENOMEM;
	memset(c, 0, sizeof *c);
	c->slots = calloc((size_t)capacity * p->ntiers, sizeof *c->slots);
	if (!c->slots) {
		free(c);
		return -ENOMEM;
	}
	c->magic = RMPSC__MAGIC_PCACHE;
	c->cap = capacity;
	c->pool = p;
	c->barrier = p->barrier;
	pthread_mutex_lock(&p->mu);
	c->next = p->caches;
	if (p->caches)
		p->caches->prev = c;
	p->caches = c;
	atomic_fetch_add_explicit(&p->ncaches, 1, memory_order_relaxed);
	pthread_mutex_unlock(&p->mu);
	*out = c;
	return 0;
}

/* Unlinked (under mu) and emptied into the pool. */
static void cache_free(rmpsc_pool_cache *c)
{
	c->magic = RMPSC__MAGIC_DEAD;
	free(c->slots);
	free(c);
}

static void cache_unlink(rmpsc_pool *p, rmpsc_pool_cache *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		p->caches = c->next;
	if (c->next)
		c->next->prev = c->prev;
	atomic_fetch_sub_explicit(&p->ncaches, 1, memory_order_relaxed);
}

int rmpsc_pool_cache_destroy(rmpsc_pool_cache *c)
{
	rmpsc_pool *p;

	if (!c)
		return 0;
	RMPSC__CHECK(!cache_ok(c), -EBADF);
	p = c->pool;
	/* Under the lock no thief is inside it; then it is ours alone. */
	pthread_mutex_lock(&p->mu);
	cache_unlink(p, c);
	cache_spill_all(c);
	pthread_mutex_unlock(&p->mu);
	wake_check(p);
	cache_free(c);
	return 0;
}

/* ---- access --------------------------------------------------------------- */

static inline void *slab_at(const rmpsc_pool *p, const struct hpart *x)
{
	const struct ptier *tr = &p->tier[x->t];

	return tr->base + (size_t)x->i * tr->stride;
}

int rmpsc_pool_slab(const rmpsc_pool *p, uint32_t h, struct iovec *slab)
{
	struct hpart x;
	struct slab_meta *m;
	int err;

	RMPSC__CHECK(!slab, -EINVAL);
	err = lookup(p, h, &x, &m);
	if (err)
		return err;
	slab->iov_base = slab_at(p, &x);
	slab->iov_len = p->tier[x.t].slab_size;
	return 0;
}

int rmpsc_pool_payload(const rmpsc_pool *p, uint32_t h, struct iovec *view)
{
	struct hpart x;
	struct slab_meta *m;
	int err;

	RMPSC__CHECK(!view, -EINVAL);
	err = lookup(p, h, &x, &m);
	if (err)
		return err;
	view->iov_base = slab_at(p, &x);
	view->iov_len = atomic_load_explicit(&m->len, memory_order_acquire);
	return 0;
}

int rmpsc_pool_set_len(rmpsc_pool *p, uint32_t h, uint64_t len)
{
	struct hpart x;
	struct slab_meta *m;
	int err = lookup(p, h, &x, &m);

	if (err)
		return err;
	RMPSC__CHECK(len > p->tier[x.t].slab_size, -EMSGSIZE);
	len_store(&p->tier[x.t], m, x.i, len, memory_order_release);
	return 0;
}

int64_t rmpsc_pool_get_len(const rmpsc_pool *p, uint32_t h)
{
	struct hpart x;
	struct slab_meta *m;
	int err = lookup(p, h, &x, &m);

	if (err)
		return err;
	return (int64_t)atomic_load_explicit(&m->len, memory_order_acquire);
}

int rmpsc_pool_locate(const rmpsc_pool *p, uint32_t h, uint32_t *tier, uint32_t *index)
{
	struct hpart x;
	struct slab_meta *m;
	int err = lookup(p, h, &x, &m);

	if (err)
		return err;
	if (tier)
		*tier = x.t;
	if (index)
		*index = x.i;
	return 0;
}

int rmpsc_pool_iovecs(const rmpsc_pool *p, const uint32_t *hs, uint32_t n, struct iovec *iov,
		      uint32_t flags)
{
	struct hpart x;
	struct slab_meta *m;
	int err;

	RMPSC__CHECK(!pool_ok(p), -EBADF);
	RMPSC__CHECK(n && (!hs || !iov), -EINVAL);
	RMPSC__CHECK(n > INT32_MAX, -EINVAL);
	RMPSC__CHECK(flags & ~(uint32_t)RMPSC_POOL_IOV_SLAB, -EINVAL);
	for (uint32_t k = 0; k < n; k++) {
		err = lookup(p, hs[k], &x, &m);
		if (err)
			return err;
	}
	for (uint32_t k = 0; k < n; k++) {
		err = lookup(p, hs[k], &x, &m);
		if (err) /* freed by its owner since the check: a misuse */
			return err;
		iov[k].iov_base = slab_at(p, &x);
		iov[k].iov_len = (flags & RMPSC_POOL_IOV_SLAB)
					 ? p->tier[x.t].slab_size
					 : atomic_load_explicit(&m->len, memory_order_acquire);
	}
	return (int)n;
}

/* Slabs not held by a caller: those freed as often as allocated, wherever
 * they are (a list, a cache, or between the two). A count kept on the lists
 * would cost every plain allocation and free one more atomic
 * read-modify-write (about a third of a pair's time); the scan costs only
 * this call. */
static int64_t available(const rmpsc_pool *p)
{
	int64_t n = 0;

	for (uint32_t t = 0; t < p->ntiers; t++) {
		const struct ptier *tr = &p->tier[t];

		for (uint32_t i = 0; i < tr->count; i++)
			n += ST_COUNTER(atomic_load_explicit(&tr->meta[i].state,
							     memory_order_relaxed)) ==
			     (atomic_load_explicit(&tr->acnt[i], memory_order_relaxed) &
			      COUNTER_MASK);
	}
	return n;
}

int64_t rmpsc_pool_available(const rmpsc_pool *p)
{
	RMPSC__CHECK(!pool_ok(p), -EBADF);
	return available(p);
}

int64_t rmpsc_pool_capacity(const rmpsc_pool *p)
{
	RMPSC__CHECK(!pool_ok(p), -EBADF);
	return (int64_t)p->capacity;
}

int rmpsc_pool_tier_count(const rmpsc_pool *p)
{
	RMPSC__CHECK(!pool_ok(p), -EBADF);
	return (int)p->ntiers;
}

int rmpsc_pool_tier_info(const rmpsc_pool *p, uint32_t tier, rmpsc_pool_region *out)
{
	const struct ptier *tr;

	RMPSC__CHECK(!pool_ok(p), -EBADF);
	RMPSC__CHECK(!out || tier >= p->ntiers, -EINVAL);
	tr = &p->tier[tier];
	memset(out, 0, sizeof *out);
	out->base = tr->base;
	out->len = tr->region.len;
	out->slab_size = tr->slab_size;
	out->stride = tr->stride;
	out->count = tr->count;
	out->page = tr->region.page;
	out->node = tr->region.node;
	out->tier_bits = (uint8_t)p->tbits;
	out->gen_bits = (uint8_t)tr->gbits;
	out->index_bits = (uint8_t)tr->ibits;
	return 0;
}

/* ---- life cycle ----------------------------------------------------------- */

static const rmpsc_pool_config pool_defaults = {
	.size = sizeof(rmpsc_pool_config),
	.slab_size = 2048,
	.slab_count = 1024,
	.page = RMPSC_PAGE_NORMAL,
	.numa_node = RMPSC_NODE_ANY,
};

int rmpsc_pool_config_init(rmpsc_pool_config *cfg, uint32_t size)
{
	return rmpsc__size_out(cfg, size, &pool_defaults, sizeof pool_defaults,
			       RMPSC_POOL_CONFIG_SIZE_V1);
}

int rmpsc_pool_default_tiers(rmpsc_pool_tier *tiers, uint32_t n, uint64_t bytes_per_tier)
{
	RMPSC__CHECK(!tiers || n < RMPSC_POOL_DEFAULT_TIERS || !bytes_per_tier, -EINVAL);
	for (uint32_t k = 0; k < RMPSC_POOL_DEFAULT_TIERS; k++) {
		uint64_t size = (uint64_t)32 << (2 * k), count = bytes_per_tier / size;

		tiers[k].slab_size = size;
		tiers[k].count = count < 1 ? 1 : count > (1u << 20) ? 1u << 20 : (uint32_t)count;
		tiers[k]._pad0 = 0;
	}
	return RMPSC_POOL_DEFAULT_TIERS;
}

/* Check the config and copy its tiers into @tiers; the tier count. */
static int pool_check(const rmpsc_pool_config *cfg, rmpsc_pool_tier *tiers, int32_t *node)
{
	uint32_t nt;

	RMPSC__CHECK(cfg->flags & ~(uint32_t)RMPSC_POOL_F_ALL, -EINVAL);
	RMPSC__CHECK(cfg->page > RMPSC_PAGE_HUGE_1G || cfg->_reserved, -EINVAL);
	if (cfg->tiers) {
		RMPSC__CHECK(cfg->ntiers < 1 || cfg->ntiers > RMPSC_POOL_TIERS_MAX, -EINVAL);
		nt = cfg->ntiers;
		memcpy(tiers, cfg->tiers, nt * sizeof *tiers);
	} else {
		RMPSC__CHECK(cfg->ntiers, -EINVAL);
		nt = 1;
		tiers[0] = (rmpsc_pool_tier){ .slab_size = cfg->slab_size, .count = cfg->slab_count };
	}
	for (uint32_t t = 0; t < nt; t++) {
		RMPSC__CHECK(!tiers[t].slab_size || tiers[t].slab_size > RMPSC_POOL_SLAB_SIZE_MAX,
			     -EINVAL);
		RMPSC__CHECK(!tiers[t].count || tiers[t]._pad0, -EINVAL);
		RMPSC__CHECK(t && tiers[t].slab_size <= tiers[t - 1].slab_size, -EINVAL);
		RMPSC__CHECK(rmpsc__bits_for(nt) + rmpsc__bits_for(tiers[t].count) +
				     RMPSC_POOL_GEN_BITS_MIN > 32,
			     -EINVAL);
	}
	*node = cfg->numa_node;
	RMPSC__CHECK(*node < RMPSC_NODE_LOCAL, -EINVAL);
	if (*node == RMPSC_NODE_LOCAL)
		*node = rmpsc__numa_ok() ? rmpsc_numa_current_node() : RMPSC_NODE_ANY;
	RMPSC__CHECK(*node >= 0 && rmpsc__numa_ok() && *node >= rmpsc_numa_node_count(), -EINVAL);
	if (*node >= 0 && !rmpsc__numa_ok())
		*node = RMPSC_NODE_ANY; /* nothing to place on */
	return (int)nt;
}

static void pool_unmap(rmpsc_pool *p)
{
	for (uint32_t t = 0; t < p->ntiers; t++)
		rmpsc__region_unmap(&p->tier[t].region);
	rmpsc__region_unmap(&p->meta_region);
	rmpsc__region_unmap(&p->share_region);
}

static int pool_map(rmpsc_pool *p, const rmpsc_pool_config *cfg, const rmpsc_pool_tier *tiers,
		    int32_t node)
{
	const uint32_t salt =
		offset_base() +
		(atomic_fetch_add_explicit(&pool_serial, 1, memory_order_relaxed) + 1) * 0x9e3779b9u;
	uint64_t nmeta = 0;
	struct slab_meta *meta;
	_Atomic uint32_t *acnt;
	int err;

	const bool shared = (cfg->flags & RMPSC_POOL_F_SHARED) != 0;
	uint64_t nlent = 0;
	_Atomic uint64_t *lent, *slen = NULL;

	for (uint32_t t = 0; t < p->ntiers; t++) {
		nmeta += tiers[t].count;
		nlent += shared ? (tiers[t].count + 63) / 64 : 0;
	}
	if (shared) {
		/* The directory: geometry, then a length per slab. */
		const struct rmpsc__region_req q = {
			.size = RMPSC__POOL_SHARE_LENS + nmeta * sizeof(uint64_t),
			.page = RMPSC__PAGE_NORMAL,
			.memfd = true,
			.seal = true,
			.seal_write = true,
			.node = node,
		};

		err = rmpsc__region_map(&q, &p->share_region);
		if (err)
			return err;
		slen = (_Atomic uint64_t *)(void *)((unsigned char *)p->share_region.base +
						    RMPSC__POOL_SHARE_LENS);
	}
	{
		const struct rmpsc__region_req q = {
			/* The freers' metadata, then the allocators' counts
			 * from a line of their own, then the lent bits. */
			.size = nmeta * (sizeof(struct slab_meta) + sizeof(*acnt)) +
				RMPSC__CACHELINE + nlent * sizeof(uint64_t) + 8,
			.page = RMPSC__PAGE_NORMAL,
			.prefault = true,
			.node = node,
		};

		err = rmpsc__region_map(&q, &p->meta_region);
		if (err)
			return err;
	}
	meta = p->meta_region.base;
	acnt = (_Atomic uint32_t *)(((uintptr_t)(meta + nmeta) + RMPSC__CACHELINE - 1) &
				    ~(uintptr_t)(RMPSC__CACHELINE - 1));
	lent = (_Atomic uint64_t *)(((uintptr_t)(acnt + nmeta) + 7) & ~(uintptr_t)7);
	for (uint32_t t = 0; t < p->ntiers; t++) {
		struct ptier *tr = &p->tier[t];
		const uint64_t stride = (tiers[t].slab_size + RMPSC__CACHELINE - 1) /
					RMPSC__CACHELINE * RMPSC__CACHELINE;
		const struct rmpsc__region_req q = {
			.size = stride * tiers[t].count,
			.page = cfg->page,
			.fallback = !(cfg->flags & RMPSC_POOL_F_EXACT_PAGE),
			.prefault = (cfg->flags & RMPSC_POOL_F_PREFAULT) != 0,
			.memfd = shared,
			.seal = shared,
			.seal_write = shared,
			.node = node,
		};

		RMPSC__CHECK(stride * tiers[t].count > SIZE_MAX / 4, -ENOMEM);
		err = rmpsc__region_map(&q, &tr->region);
		if (err)
			return err;
		tr->base = tr->region.base;
		tr->slab_size = tiers[t].slab_size;
		tr->stride = stride;
		tr->count = tiers[t].count;
		tr->meta = meta;
		tr->acnt = acnt;
		tr->ibits = rmpsc__bits_for(tr->count);
		tr->gbits = 32 - p->tbits - tr->ibits;
		tr->gmask = tr->gbits >= 32 ? UINT32_MAX : (1u << tr->gbits) - 1;
		tr->imask = tr->ibits ? (uint32_t)((1ull << tr->ibits) - 1) : 0;
		tr->off = salt >> (32 - tr->gbits);
		/* Slab 0 of tier 0 never has the handle 0: where its first
		 * generation would make it 0, it starts one free on (and one
		 * allocation, so that it counts as free), as a free skips it. */
		{
			uint32_t c0 = 0;
			bool skipped;

			(void)handle_past_zero(p, t, 0, &c0, &skipped);
			if (skipped) {
				atomic_init(&meta[0].state, c0 << 2);
				atomic_init(&acnt[0], c0);
			}
		}
		/* Every slab on the list, in index order from the head. */
		for (uint32_t i = 0; i < tr->count; i++)
			atomic_init(&meta[i].next, i + 1 < tr->count ? i + 1 : NIL);
		atomic_init(&p->heads[t].head, 0);
		if (shared) {
			struct rmpsc__pool_share *d = p->share_region.base;

			tr->slen = slen;
			tr->lent = lent;
			d->tier[t] = (struct rmpsc__pool_share_tier){
				.slab_size = tr->slab_size,
				.stride = stride,
				.map_size = tr->region.len,
				.count = tr->count,
				.ibits = tr->ibits,
				.len_off = (uint64_t)(slen - (_Atomic uint64_t *)(void *)((unsigned char *)d + RMPSC__POOL_SHARE_LENS)),
			};
			{
				struct stat st;

				if (fstat(tr->region.fd, &st) != 0)
					return -errno;
				d->tier[t].ino = (uint64_t)st.st_ino;
			}
			slen += tr->count;
			lent += (tr->count + 63) / 64;
		}
		meta += tr->count;
		acnt += tr->count;
		p->capacity += tr->count;
	}
	if (shared) {
		struct rmpsc__pool_share *d = p->share_region.base;

		d->magic = RMPSC__POOL_SHARE_MAGIC;
		d->version = RMPSC__POOL_SHARE_VERSION;
		d->ntiers = p->ntiers;
		d->tbits = p->tbits;
		d->size = p->share_region.len;
		d->nslabs = nmeta;
	}
	return 0;
}

int rmpsc_pool_create(const rmpsc_pool_config *ucfg, rmpsc_pool **out)
{
	rmpsc_pool_config cfg = pool_defaults;
	rmpsc_pool_tier tiers[RMPSC_POOL_TIERS_MAX];
	rmpsc_pool *p;
	int32_t node;
	int err, nt;

	RMPSC__CHECK(!out, -EINVAL);
	*out = NULL;
	err = rmpsc__config_copy(&cfg, sizeof cfg, ucfg, RMPSC_POOL_CONFIG_SIZE_V1);
	if (err)
		return err;
	nt = pool_check(&cfg, tiers, &node);
	if (nt < 0)
		return nt;
	p = aligned_alloc(RMPSC__GROUP, sizeof *p);
	if (!p)
		return -ENOMEM;
	memset(p, 0, sizeof *p);
	p->ntiers = (uint32_t)nt;
	p->tbits = rmpsc__bits_for((uint64_t)nt);
	p->flags = cfg.flags;
	p->barrier = rmpsc__barrier_mode;
	p->meta_region.fd = -1;
	p->share_region.fd = -1;
	for (uint32_t t = 0; t < RMPSC_POOL_TIERS_MAX; t++)
		p->tier[t].region.fd = -1;
	err = pool_map(p, &cfg, tiers, node);
	if (err) {
		pool_unmap(p);
		free(p);
		return err;
	}
	pthread_mutex_init(&p->mu, NULL);
	atomic_init(&p->refs, 1);
	p->magic = RMPSC__MAGIC_POOL;
	*out = p;
	return 0;
}

int rmpsc_pool_close(rmpsc_pool *p)
{
	RMPSC__CHECK(!pool_ok(p), -EBADF);
	atomic_store_explicit(&p->closed, 1, memory_order_release);
	rmpsc__futex_wake_all(&p->seq);
	return 0;
}

/* The end of the pool, when its last reference goes. A tier holding a
 * slab the kernel may still write (an engine whose drain timed out, a
 * registration user who never completed an operation) keeps its memory:
 * leaked, never handed back to be reused. */
static RMPSC__COLD void pool_free(rmpsc_pool *p)
{
	for (uint32_t t = 0; t < p->ntiers; t++) {
		const struct ptier *tr = &p->tier[t];
		bool held = false;

		/* A lent slab is mapped by the other process on its own: only
		 * the kernel's hold keeps the tier. */
		for (uint32_t i = 0; i < tr->count && !held; i++)
			held = (atomic_load_explicit(&tr->meta[i].state, memory_order_acquire) &
				ST_IO) &&
			       !(tr->lent && (atomic_load_explicit(&tr->lent[i / 64],
								   memory_order_relaxed) >>
					      (i % 64) & 1));
		if (!held)
			rmpsc__region_unmap(&p->tier[t].region);
	}
	rmpsc__region_unmap(&p->meta_region);
	rmpsc__region_unmap(&p->share_region);
	pthread_mutex_destroy(&p->mu);
	p->magic = RMPSC__MAGIC_DEAD;
	free(p);
}

static void pool_put(rmpsc_pool *p)
{
	if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1)
		pool_free(p);
}

int rmpsc_pool_destroy(rmpsc_pool *p, uint32_t flags, uint64_t *outstanding)
{
	int64_t out_n;

	if (outstanding)
		*outstanding = 0;
	if (!p)
		return 0;
	RMPSC__CHECK(!pool_ok(p), -EBADF);
	RMPSC__CHECK(flags & ~(uint32_t)RMPSC_POOL_DESTROY_FORCE, -EINVAL);
	out_n = (int64_t)p->capacity - available(p);
	if (outstanding)
		*outstanding = (uint64_t)out_n;
	if ((out_n || atomic_load_explicit(&p->refs, memory_order_acquire) > 1) &&
	    !(flags & RMPSC_POOL_DESTROY_FORCE))
		return -EBUSY;
	/* Blocked allocators leave with -EPIPE before the memory goes. */
	rmpsc_pool_close(p);
	while (atomic_load_explicit(&p->inside, memory_order_acquire))
		sched_yield();
	pthread_mutex_lock(&p->mu);
	while (p->caches) {
		rmpsc_pool_cache *c = p->caches;

		cache_unlink(p, c);
		cache_free(c);
	}
	/* The handle is dead to its users from here; an engine or
	 * registration still on the pool keeps the memory until it goes,
	 * and an engine is told to cancel its I/O. */
	p->magic = RMPSC__MAGIC_DOOMED;
	for (struct rmpsc__pool_user *u = p->users; u; u = u->next)
		u->gone(u);
	pthread_mutex_unlock(&p->mu);
	pool_put(p);
	return 0;
}

/* ---- for uring.c: slabs the kernel holds ---------------------------------- */

int rmpsc__pool_attach(rmpsc_pool *p, struct rmpsc__pool_user *u)
{
	RMPSC__CHECK(!pool_ok(p), -EBADF);
	atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
	if (u) {
		pthread_mutex_lock(&p->mu);
		u->next = p->users;
		p->users = u;
		pthread_mutex_unlock(&p->mu);
	}
	return 0;
}

void rmpsc__pool_unhook(rmpsc_pool *p, struct rmpsc__pool_user *u)
{
	pthread_mutex_lock(&p->mu);
	for (struct rmpsc__pool_user **at = &p->users; *at; at = &(*at)->next)
		if (*at == u) {
			*at = u->next;
			break;
		}
	pthread_mutex_unlock(&p->mu);
}

void rmpsc__pool_detach(rmpsc_pool *p, struct rmpsc__pool_user *u)
{
	if (u)
		rmpsc__pool_unhook(p, u);
	pool_put(p);
}

int rmpsc__pool_alloc(rmpsc_pool *p, uint64_t len, uint32_t *h)
{
	/* `closed` (atomic), not the magic word: a destroy may be writing
	 * that (it closes first). */
	if (atomic_load_explicit(&p->closed, memory_order_acquire))
		return -EPIPE;
	return alloc_now(p, len, h);
}

int rmpsc__pool_free(rmpsc_pool *p, uint32_t h)
{
	return free_now(p, h);
}

int rmpsc__pool_where(const rmpsc_pool *p, uint32_t h, uint32_t *tier, uint32_t *index)
{
	struct hpart x;
	const int err = split(p, h, &x);

	if (err)
		return err;
	*tier = x.t;
	*index = x.i;
	return 0;
}

/* A handle taken apart, its slab's metadata and state (not yet judged). */
static int io_locate(const rmpsc_pool *p, uint32_t h, struct hpart *x,
		     const struct ptier **tr, struct slab_meta **m, uint32_t *s)
{
	const int err = split(p, h, x);

	if (err)
		return err;
	*tr = &p->tier[x->t];
	*m = &(*tr)->meta[x->i];
	*s = atomic_load_explicit(&(*m)->state, memory_order_relaxed);
	return 0;
}

int rmpsc__pool_io_begin(rmpsc_pool *p, uint32_t h, struct rmpsc__slab *out)
{
	struct hpart x;
	struct slab_meta *m;
	const struct ptier *tr;
	uint32_t s;
	int err = io_locate(p, h, &x, &tr, &m, &s);

	if (err)
		return err;
	do {
		err = judge(tr, x.i, x.gen, s);
		if (err)
			return err;
		RMPSC__CHECK(s & ST_IO, -EBUSY);
		/* U1: a CAS against the free's: of a free and a submit of
		 * one handle, exactly one wins. */
	} while (!atomic_compare_exchange_weak_explicit(&m->state, &s, s | ST_IO,
							memory_order_acq_rel, memory_order_relaxed));
	out->base = slab_at(p, &x);
	out->size = tr->slab_size;
	out->len = atomic_load_explicit(&m->len, memory_order_relaxed);
	out->tier = x.t;
	out->index = x.i;
	return 0;
}

int rmpsc__pool_io_end(rmpsc_pool *p, uint32_t h, int64_t len)
{
	struct hpart x;
	struct slab_meta *m;
	const struct ptier *tr;
	uint32_t s;
	int err = io_locate(p, h, &x, &tr, &m, &s);

	if (err)
		return err;
	err = judge(tr, x.i, x.gen, s);
	if (err)
		return err;
	RMPSC__CHECK(!(s & ST_IO), -EALREADY);
	if (len > (int64_t)tr->slab_size)
		err = -EMSGSIZE;
	else if (len >= 0)
		len_store(tr, m, x.i, (uint64_t)len, memory_order_relaxed);
	/* U1 release: the length (and, through the caller's CQE read, what
	 * the kernel wrote) before the handle is usable again. Only the holder
	 * clears the bit, and nobody else changes the state while it is set
	 * (frees are refused). */
	atomic_fetch_and_explicit(&m->state, ~ST_IO, memory_order_release);
	return err;
}

/* ---- sharing with another process ---------------------------------------- */

/* A read-only descriptor of the memfd @fd (a new open file description:
 * the other process's mmap cannot ask for write access). */
static int reopen_ro(int fd)
{
	char path[64];
	int r;

	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	r = open(path, O_RDONLY | O_CLOEXEC);
	if (r >= 0)
		return r;
	return errno == ENOENT ? -EOPNOTSUPP : -errno;
}

int rmpsc_pool_share_fds(const rmpsc_pool *p, int *fds, uint32_t max)
{
	uint32_t n;

	RMPSC__CHECK(!pool_ok(p), -EBADF);
	RMPSC__CHECK(!fds || !(p->flags & RMPSC_POOL_F_SHARED), -EINVAL);
	n = 1 + p->ntiers;
	RMPSC__CHECK(max < n, -ENOSPC);
	for (uint32_t k = 0; k < n; k++) {
		int r = reopen_ro(k ? p->tier[k - 1].region.fd : p->share_region.fd);

		if (r < 0) {
			while (k--)
				close(fds[k]);
			return r;
		}
		fds[k] = r;
	}
	return (int)n;
}

/* The lent bit of slab @i: its word and mask. */
static inline _Atomic uint64_t *lent_word(const struct ptier *tr, uint32_t i, uint64_t *bit)
{
	*bit = 1ull << (i % 64);
	return &tr->lent[i / 64];
}

int rmpsc_pool_lend(rmpsc_pool *p, uint32_t h)
{
	struct rmpsc__slab sl;
	_Atomic uint64_t *word;
	uint64_t bit;
	int err;

	RMPSC__CHECK(!pool_ok(p), -EBADF);
	RMPSC__CHECK(!(p->flags & RMPSC_POOL_F_SHARED), -EINVAL);
	/* Held as the kernel holds a slab (U1): one CAS against a free's. */
	err = rmpsc__pool_io_begin(p, h, &sl);
	if (err)
		return err;
	/* Release: the payload and its length before anyone who sees the
	 * bit (the reclaim's acquire). */
	word = lent_word(&p->tier[sl.tier], sl.index, &bit);
	atomic_fetch_or_explicit(word, bit, memory_order_release);
	return 0;
}

int rmpsc_pool_reclaim(rmpsc_pool *p, uint32_t h)
{
	struct hpart x;
	struct slab_meta *m;
	const struct ptier *tr;
	_Atomic uint64_t *word;
	uint64_t bit;
	uint32_t s;
	int err;

	RMPSC__CHECK(!pool_ok(p), -EBADF);
	RMPSC__CHECK(!(p->flags & RMPSC_POOL_F_SHARED), -EINVAL);
	err = io_locate(p, h, &x, &tr, &m, &s);
	if (err)
		return err;
	err = judge(tr, x.i, x.gen, s);
	if (err)
		return err;
	/* Of two reclaims of one handle, one clears the bit. A slab held by
	 * the kernel is never lent (its lend found it held). */
	word = lent_word(tr, x.i, &bit);
	if (!(atomic_fetch_and_explicit(word, ~bit, memory_order_acquire) & bit))
		return -EALREADY;
	atomic_fetch_and_explicit(&m->state, ~ST_IO, memory_order_release);
	return free_now(p, h);
}

