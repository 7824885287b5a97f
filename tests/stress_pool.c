/* SPDX-License-Identifier: MIT */
/*
 * Ownership torture of the BufferPool (include/ringmpsc/pool.h), ctest
 * label "stress". The handle is the ownership token; this driver checks
 * that no slab ever has two owners, under every way of getting and giving
 * back a slab at once.
 *
 * Every owner stamps word 0 of its slab with its id through an
 * atomic_exchange that must find 0 (else: two owners), writes a nonce into
 * word 1 and a random payload length, and before it lets go checks both
 * and exchanges the stamp back to 0 (finding its own id). A handle handed
 * to another thread keeps its stamp; the receiver exchanges it for its own
 * id and must find the sender's. The nonce is written and read with plain
 * accesses: under TSan a slab reaching its next owner without the pool's
 * release/acquire edge is a reported race.
 *
 * 8 threads (RMPSC_STRESS_THREADS, up to 64; far more than the 2 cores
 * here) on a pool of 64 slabs in two tiers (48 x 64 B, 16 x 256 B), so
 * that exhaustion is constant. Each thread owns a cache (capacity 8) and
 * mixes, at random: plain alloc, cache alloc, alloc_n / cache_alloc_n,
 * alloc_timed with short limits (six wait kinds), blocking allocations
 * without a limit (plain and through the cache, after giving back all it
 * holds), and plain free, cache free, free_n / cache_free_n and hand-offs
 * to another thread through a small mutex inbox (the receiver frees or
 * keeps it). After each free the old handle must be -ESTALE (while no
 * generation can have wrapped), now and then freed again (-ESTALE).
 * A thread holds up to 12 slabs (8 x 12 > 64: the pool runs dry all the
 * time). Handles sitting in inboxes are capped at 12 in all, below every
 * tier's count, so that threads asleep without a limit (which hold
 * nothing) always leave a slab of each tier free for one of them.
 *
 * At the end: no double owner, every thread's count done, available ==
 * capacity (caches still holding slabs) and after the caches are gone,
 * and every slab's stamp 0. A second case runs a three-tier SPILL pool.
 *
 * Counts: 10^7 alloc/free pairs in the plain build (what CI's normal
 * configuration runs; well under a minute at -O2 on two vCPUs), 2 * 10^6
 * under ASan, 10^6 under TSan; the SPILL case a fifth of that.
 * Soak mode: RMPSC_SOAK_POOL_OPS=<count> (any strtod form, e.g. 1e9) sets
 * the pairs of the first case (the SPILL case gets a fifth), e.g.
 *   RMPSC_SOAK_POOL_OPS=1e9 build/tests/stress_pool
 * RMPSC_STRESS_SEED varies the seed. A watchdog fails a case after 20 s
 * without progress of any thread (and closes the pool so that sleepers
 * leave). No timing is asserted; times are printed.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#include <cmocka.h>

#include "ringmpsc/pool.h"
#include "ringmpsc/wait.h"

#define STRESS_SEED 0x3c6ef372fe94f82bull
#include "test_util.h" /* stress_seed(), xs_next(), STRESS_SCALE, watchdog */

#define WATCHDOG_SEC 20
#define US 1000ll
#define MS 1000000ll

enum {
	MAX_THREADS = 64,
	DEFAULT_THREADS = 8,
	HELD_MAX = 12,     /* handles a thread holds at most: 8 x 12 > 64 */
	INBOX = 4,         /* hand-offs waiting for one thread */
	INFLIGHT_MAX = 12, /* hand-offs waiting in all inboxes, below every tier's count */
	CACHE_CAP = 8,
	MAX_TIERS = 3,
};

/* Where a thread is, for the watchdog's message. */
enum where {
	W_IDLE, W_ALLOC, W_CACHE_ALLOC, W_ALLOC_N, W_CACHE_ALLOC_N, W_TIMED, W_BLOCK,
	W_CACHE_BLOCK, W_FREE, W_CACHE_FREE, W_FREE_N, W_CACHE_FREE_N, W_HANDOFF, W_INBOX,
	W_DONE,
};

static const char *const where_names[] = {
	"between calls", "alloc", "cache_alloc", "alloc_n", "cache_alloc_n", "alloc_timed (limit)",
	"alloc_timed (no limit)", "cache_alloc_timed (no limit)", "free", "cache_free", "free_n",
	"cache_free_n", "hand-off", "inbox", "done",
};

struct held {
	uint32_t h;
	uint32_t from; /* the stamp it carries (a hand-off's sender) */
	uint64_t nonce;
	uint64_t len;
};

struct inbox {
	pthread_mutex_t mu;
	struct held m[INBOX];
	uint32_t n;
	bool closed;
	atomic_uint hint; /* n, read without the lock */
};

struct hub;

struct worker {
	alignas(64) _Atomic uint64_t ops; /* progress, for the watchdog */
	_Atomic int where;
	atomic_int done;
	struct hub *hub;
	uint32_t id; /* the stamp, 1..nthreads */
	uint64_t rng;
	uint64_t quota;
	rmpsc_pool_cache *c;
	struct held held[HELD_MAX];
	uint32_t nheld;
	struct inbox in;
	/* counts, read after the join */
	uint64_t allocs, n_plain, n_cache, n_batch, n_timed, n_block, n_enobufs, n_etimedout;
	uint64_t n_handoff, n_recv, n_refree;
};

struct hub {
	const char *name;
	rmpsc_pool *p;
	uint32_t nthreads;
	uint32_t ntiers;
	uint64_t tier_size[MAX_TIERS];
	bool spill;
	bool check_stale;
	_Atomic uint32_t inflight;
	_Atomic uint64_t double_owner;
	atomic_int failed;
	atomic_int closed;
	char msg[1024];
	rmpsc_wait forever[3];
	rmpsc_wait finite[6];
	struct worker *w;
};

/* ---- failure, progress ------------------------------------------------------ */

static void hub_after_fail(void *arg, int first)
{
	struct hub *hb = arg;

	(void)first;
	/* every thread leaves: allocations return -EPIPE from now on */
	if (!atomic_exchange_explicit(&hb->closed, 1, memory_order_acq_rel))
		rmpsc_pool_close(hb->p);
}

#define hub_fail(hb, ...) FAIL_RECORD(hb, hub_after_fail, __VA_ARGS__)

static bool hub_stopped(struct hub *hb)
{
	return atomic_load_explicit(&hb->failed, memory_order_relaxed) ||
	       atomic_load_explicit(&hb->closed, memory_order_relaxed);
}

static void set_where(struct worker *w, int where)
{
	atomic_store_explicit(&w->where, where, memory_order_relaxed);
}

static void bump(struct worker *w)
{
	/* Relaxed: read by the watchdog only. */
	atomic_fetch_add_explicit(&w->ops, 1, memory_order_relaxed);
}

/* ---- ownership ------------------------------------------------------------------ */

/* Word 0 of the slab of live handle @h (its owner's stamp). */
static _Atomic uint64_t *stamp_of(struct worker *w, uint32_t h, uint64_t *size)
{
	struct iovec v;
	const int rc = rmpsc_pool_slab(w->hub->p, h, &v);

	if (rc != 0) {
		hub_fail(w->hub, "thread %u: slab(%#x) of a handle it owns: %d (%s)", w->id, h, rc,
			 errname(rc));
		return NULL;
	}
	if (size)
		*size = v.iov_len;
	return (_Atomic uint64_t *)v.iov_base;
}

static uint64_t *nonce_of(_Atomic uint64_t *stamp)
{
	return (uint64_t *)(void *)((unsigned char *)stamp + 8);
}

/*
 * Take ownership of @h, whose stamp must be @expect (0 for a fresh
 * allocation, the sender's id for a hand-off): exchange in our id, check
 * (hand-off) or write (allocation) the nonce and the length. false on a
 * failure (recorded).
 */
static bool own(struct worker *w, struct held *x, uint32_t expect, bool fresh)
{
	struct hub *hb = w->hub;
	uint64_t size = 0;
	_Atomic uint64_t *st = stamp_of(w, x->h, &size);
	uint64_t prev;

	if (!st)
		return false;
	prev = atomic_exchange_explicit(st, w->id, memory_order_acq_rel);
	if (prev != expect) {
		atomic_fetch_add_explicit(&hb->double_owner, 1, memory_order_relaxed);
		hub_fail(hb, "thread %u took handle %#x (%s): stamp %" PRIu64 ", expected %u: two "
			 "owners of one slab",
			 w->id, x->h, fresh ? "allocated" : "handed over", prev, expect);
		return false;
	}
	if (fresh) {
		const int64_t len0 = rmpsc_pool_get_len(hb->p, x->h);
		int rc;

		if (len0 != 0) {
			hub_fail(hb, "thread %u: a new handle %#x has length %" PRId64 ", not 0", w->id,
				 x->h, len0);
			return false;
		}
		x->nonce = xs_next(&w->rng);
		x->len = 16 + (xs_next(&w->rng) >> 8) % (size - 15);
		*nonce_of(st) = x->nonce;
		rc = rmpsc_pool_set_len(hb->p, x->h, x->len);
		if (rc != 0) {
			hub_fail(hb, "thread %u: set_len(%#x, %" PRIu64 ") of a %" PRIu64
				 "-byte slab: %d (%s)",
				 w->id, x->h, x->len, size, rc, errname(rc));
			return false;
		}
	} else if (*nonce_of(st) != x->nonce) {
		hub_fail(hb, "thread %u: handed-over %#x: nonce changed in transit", w->id, x->h);
		return false;
	}
	x->from = w->id;
	return true;
}

/* Before letting go: length and nonce as we left them; with @clear, the
 * stamp exchanged back to 0 (it must be ours). */
static bool let_go(struct worker *w, const struct held *x, bool clear)
{
	struct hub *hb = w->hub;
	_Atomic uint64_t *st = stamp_of(w, x->h, NULL);
	const int64_t len = rmpsc_pool_get_len(hb->p, x->h);

	if (!st)
		return false;
	if (len != (int64_t)x->len || *nonce_of(st) != x->nonce) {
		hub_fail(hb, "thread %u: handle %#x: length %" PRId64 " (set %" PRIu64 ") or nonce "
			 "changed while owned",
			 w->id, x->h, len, x->len);
		return false;
	}
	if (clear) {
		const uint64_t prev = atomic_exchange_explicit(st, 0, memory_order_acq_rel);

		if (prev != w->id) {
			atomic_fetch_add_explicit(&hb->double_owner, 1, memory_order_relaxed);
			hub_fail(hb, "thread %u freeing %#x: stamp %" PRIu64 ": another owner", w->id,
				 x->h, prev);
			return false;
		}
	}
	return true;
}

/* After a free of @h: the handle is dead; now and then freed again. */
static void check_dead(struct worker *w, uint32_t h)
{
	struct hub *hb = w->hub;
	const uint64_t r = xs_next(&w->rng);
	int64_t rc;

	if (!hb->check_stale)
		return;
	rc = rmpsc_pool_get_len(hb->p, h);
	if (rc != -ESTALE) {
		hub_fail(hb, "thread %u: get_len of freed handle %#x: %" PRId64 " (%s), not -ESTALE",
			 w->id, h, rc, errname(rc));
		return;
	}
	if ((r & 63) == 0) {
		w->n_refree++;
		rc = (r & 64) ? rmpsc_pool_cache_free(w->c, h) : rmpsc_pool_free(hb->p, h);
		if (rc != -ESTALE)
			hub_fail(hb, "thread %u: second free of %#x: %" PRId64 " (%s), not -ESTALE",
				 w->id, h, rc, errname(rc));
	}
}

/* ---- getting slabs ------------------------------------------------------------------ */

static uint64_t pick_len(struct worker *w)
{
	const struct hub *hb = w->hub;
	const uint64_t r = xs_next(&w->rng);
	/* three in four the smallest tier, the rest spread over the others */
	const uint32_t k = (r & 3) ? 0 : 1 + (uint32_t)((r >> 2) % (hb->ntiers - 1));
	const uint64_t lo = k ? hb->tier_size[k - 1] + 1 : 0;

	return lo + (r >> 8) % (hb->tier_size[k] - lo + 1);
}

/* An allocation's code that is not a slab: counted, or a failure. */
static bool alloc_refused(struct worker *w, const char *what, int rc)
{
	if (rc == -ENOBUFS) {
		w->n_enobufs++;
		return true;
	}
	if (rc == -ETIMEDOUT) {
		w->n_etimedout++;
		return true;
	}
	if (rc == -EPIPE && hub_stopped(w->hub))
		return false;
	hub_fail(w->hub, "thread %u: %s: %d (%s)", w->id, what, rc, errname(rc));
	return false;
}

static bool take_new(struct worker *w, uint32_t h)
{
	struct held *x = &w->held[w->nheld];

	if (h == RMPSC_POOL_HANDLE_NONE) {
		hub_fail(w->hub, "thread %u: an allocation returned handle 0", w->id);
		return false;
	}
	x->h = h;
	if (!own(w, x, 0, true))
		return false;
	w->nheld++;
	w->allocs++;
	return true;
}

static void release_all(struct worker *w);
static void drain_inbox(struct worker *w, bool keep);

/* One allocation of some kind; false: leave. */
static bool do_alloc(struct worker *w)
{
	struct hub *hb = w->hub;
	const uint64_t r = xs_next(&w->rng);
	const uint64_t len = pick_len(w);
	uint32_t h = RMPSC_POOL_HANDLE_NONE;
	int rc;

	switch (r % 16) {
	case 0: case 1: case 2: case 3: case 4:
		set_where(w, W_ALLOC);
		w->n_plain++;
		rc = rmpsc_pool_alloc(hb->p, len, &h);
		break;
	case 5: case 6: case 7: case 8: case 9:
		set_where(w, W_CACHE_ALLOC);
		w->n_cache++;
		rc = rmpsc_pool_cache_alloc(w->c, len, &h);
		break;
	case 10: case 11: {
		/* a batch of 2.. what there is room for */
		uint32_t hs[HELD_MAX];
		const uint32_t room = HELD_MAX - w->nheld;
		const uint32_t most = room < 4 ? room : 4;
		const uint32_t n = most < 2 ? most : 2 + (uint32_t)((r >> 8) % (most - 1));

		w->n_batch++;
		set_where(w, (r & 1024) ? W_CACHE_ALLOC_N : W_ALLOC_N);
		rc = (r & 1024) ? rmpsc_pool_cache_alloc_n(w->c, len, hs, n)
				: rmpsc_pool_alloc_n(hb->p, len, hs, n);
		set_where(w, W_IDLE);
		if (rc < 0)
			return alloc_refused(w, "alloc_n", rc);
		if (rc != (int)n) {
			hub_fail(hb, "thread %u: alloc_n(%u) = %d", w->id, n, rc);
			return false;
		}
		for (uint32_t i = 0; i < n; i++)
			if (!take_new(w, hs[i]))
				return false;
		return true;
	}
	case 12: case 13: case 14: {
		const rmpsc_wait *wt = &hb->finite[(r >> 8) % 6];
		const int64_t limit = (int64_t)((r >> 16) % 200) * US;

		set_where(w, W_TIMED);
		w->n_timed++;
		rc = (r & 4096) ? rmpsc_pool_cache_alloc_timed(w->c, len, &h, limit, wt)
				: rmpsc_pool_alloc_timed(hb->p, len, &h, limit, wt);
		break;
	}
	default: {
		/* no limit: give back everything first, so that a thread asleep
		 * holds nothing */
		const rmpsc_wait *wt = &hb->forever[(r >> 8) % 3];

		release_all(w);
		drain_inbox(w, false);
		if (hub_stopped(hb))
			return false;
		w->n_block++;
		set_where(w, (r & 4096) ? W_CACHE_BLOCK : W_BLOCK);
		rc = (r & 4096) ? rmpsc_pool_cache_alloc_timed(w->c, len, &h, -1, wt)
				: rmpsc_pool_alloc_timed(hb->p, len, &h, -1, wt);
		break;
	}
	}
	set_where(w, W_IDLE);
	if (rc != 0) {
		if (h != RMPSC_POOL_HANDLE_NONE) {
			hub_fail(hb, "thread %u: a failed allocation left handle %#x", w->id, h);
			return false;
		}
		return alloc_refused(w, "allocation", rc);
	}
	return take_new(w, h);
}

/* ---- giving slabs back ------------------------------------------------------------ */

/* Remove held[i] (order does not matter). */
static struct held drop_held(struct worker *w, uint32_t i)
{
	const struct held x = w->held[i];

	w->held[i] = w->held[--w->nheld];
	return x;
}

static bool free_one(struct worker *w, const struct held *x, bool via_cache)
{
	int rc;

	if (!let_go(w, x, true))
		return false;
	set_where(w, via_cache ? W_CACHE_FREE : W_FREE);
	rc = via_cache ? rmpsc_pool_cache_free(w->c, x->h) : rmpsc_pool_free(w->hub->p, x->h);
	set_where(w, W_IDLE);
	if (rc != 0) {
		hub_fail(w->hub, "thread %u: free of owned %#x: %d (%s)", w->id, x->h, rc, errname(rc));
		return false;
	}
	check_dead(w, x->h);
	return true;
}

/* Hand @x to another thread that takes it; false if none would (the
 * caller frees it). */
static bool hand_off(struct worker *w, const struct held *x)
{
	struct hub *hb = w->hub;
	struct worker *to;
	bool ok = false;

	if (hb->nthreads < 2)
		return false;
	to = &hb->w[(w->id - 1 + 1 + xs_next(&w->rng) % (hb->nthreads - 1)) % hb->nthreads];
	if (atomic_fetch_add_explicit(&hb->inflight, 1, memory_order_relaxed) >= INFLIGHT_MAX) {
		atomic_fetch_sub_explicit(&hb->inflight, 1, memory_order_relaxed);
		return false;
	}
	if (!let_go(w, x, false))
		return true; /* failed: recorded */
	set_where(w, W_HANDOFF);
	pthread_mutex_lock(&to->in.mu);
	if (!to->in.closed && to->in.n < INBOX) {
		to->in.m[to->in.n++] = *x; /* .from is our id: the stamp it carries */
		atomic_store_explicit(&to->in.hint, to->in.n, memory_order_relaxed);
		ok = true;
	}
	pthread_mutex_unlock(&to->in.mu);
	set_where(w, W_IDLE);
	if (ok)
		w->n_handoff++;
	else
		atomic_fetch_sub_explicit(&hb->inflight, 1, memory_order_relaxed);
	return ok;
}

/* Give back held[i] some way; false: leave. */
static bool do_release(struct worker *w, uint32_t i)
{
	const uint64_t r = xs_next(&w->rng);
	struct held x;

	if (r % 8 == 0 && w->nheld > 1) {
		/* all of them in one batch */
		uint32_t hs[HELD_MAX];
		const uint32_t n = w->nheld;
		const bool cache = (r & 64) != 0;
		int rc;

		for (uint32_t k = 0; k < n; k++) {
			if (!let_go(w, &w->held[k], true))
				return false;
			hs[k] = w->held[k].h;
		}
		w->nheld = 0;
		set_where(w, cache ? W_CACHE_FREE_N : W_FREE_N);
		rc = cache ? rmpsc_pool_cache_free_n(w->c, hs, n) : rmpsc_pool_free_n(w->hub->p, hs, n);
		set_where(w, W_IDLE);
		if (rc != (int)n) {
			hub_fail(w->hub, "thread %u: free_n of %u owned handles: %d", w->id, n, rc);
			return false;
		}
		for (uint32_t k = 0; k < n; k++)
			check_dead(w, hs[k]);
		return true;
	}
	x = drop_held(w, i);
	if (r % 8 < 3 && hand_off(w, &x))
		return !hub_stopped(w->hub);
	return free_one(w, &x, (r & 8) != 0);
}

static void release_all(struct worker *w)
{
	while (w->nheld && !hub_stopped(w->hub)) {
		const struct held x = drop_held(w, w->nheld - 1);

		if (!free_one(w, &x, (xs_next(&w->rng) & 1) != 0))
			return;
	}
}

/* Take what was handed to us: own it, then keep it (@keep, if there is
 * room) or free it. */
static void drain_inbox(struct worker *w, bool keep)
{
	struct hub *hb = w->hub;
	struct held got[INBOX];
	uint32_t n;

	if (atomic_load_explicit(&w->in.hint, memory_order_relaxed) == 0)
		return;
	set_where(w, W_INBOX);
	pthread_mutex_lock(&w->in.mu);
	n = w->in.n;
	memcpy(got, w->in.m, n * sizeof got[0]);
	w->in.n = 0;
	atomic_store_explicit(&w->in.hint, 0, memory_order_relaxed);
	pthread_mutex_unlock(&w->in.mu);
	atomic_fetch_sub_explicit(&hb->inflight, n, memory_order_relaxed);
	set_where(w, W_IDLE);
	for (uint32_t i = 0; i < n; i++) {
		struct held x = got[i];

		w->n_recv++;
		if (!own(w, &x, x.from, false))
			return;
		if (keep && w->nheld < HELD_MAX) {
			w->held[w->nheld++] = x;
		} else if (!free_one(w, &x, (xs_next(&w->rng) & 1) != 0)) {
			return;
		}
	}
}

/* ---- the threads -------------------------------------------------------------------- */

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct hub *hb = w->hub;

	while (w->allocs < w->quota && !hub_stopped(hb)) {
		const uint64_t r = xs_next(&w->rng);

		drain_inbox(w, (r & 4) != 0);
		if (w->nheld < HELD_MAX && (w->nheld == 0 || (r >> 8) % 8 < 5)) {
			if (!do_alloc(w))
				break;
		} else if (w->nheld) {
			if (!do_release(w, (uint32_t)((r >> 16) % w->nheld)))
				break;
		}
		bump(w);
	}
	release_all(w);
	/* no more hand-offs to us: close the inbox, free what is in it */
	pthread_mutex_lock(&w->in.mu);
	w->in.closed = true;
	pthread_mutex_unlock(&w->in.mu);
	atomic_store_explicit(&w->in.hint, 1, memory_order_relaxed);
	drain_inbox(w, false);
	set_where(w, W_DONE);
	atomic_store_explicit(&w->done, 1, memory_order_release);
	return NULL;
}

static bool hub_done(void *arg)
{
	const struct hub *hb = arg;

	for (uint32_t i = 0; i < hb->nthreads; i++)
		if (!atomic_load_explicit(&hb->w[i].done, memory_order_acquire))
			return false;
	return true;
}

static uint64_t hub_ops(void *arg)
{
	const struct hub *hb = arg;
	uint64_t sum = 0;

	for (uint32_t i = 0; i < hb->nthreads; i++)
		sum += atomic_load_explicit(&hb->w[i].ops, memory_order_relaxed);
	return sum;
}

static void hub_stall(void *arg, bool first)
{
	struct hub *hb = arg;
	char buf[sizeof hb->msg];
	size_t o = 0;

	o += (size_t)snprintf(buf + o, sizeof buf - o,
			      "no progress for %d s: available %" PRId64 " of %" PRId64 ";",
			      WATCHDOG_SEC, rmpsc_pool_available(hb->p), rmpsc_pool_capacity(hb->p));
	for (uint32_t i = 0; i < hb->nthreads && o < sizeof buf; i++)
		o += (size_t)snprintf(
			buf + o, sizeof buf - o, " t%u in %s (%" PRIu64 " ops);", hb->w[i].id,
			where_names[atomic_load_explicit(&hb->w[i].where, memory_order_relaxed)],
			atomic_load_explicit(&hb->w[i].ops, memory_order_relaxed));
	fprintf(stderr, "%s: %s\n", hb->name, buf);
	if (first)
		hub_fail(hb, "%s", buf);
}

static uint32_t thread_count(void)
{
	const char *e = getenv("RMPSC_STRESS_THREADS");
	long n = e && *e ? strtol(e, NULL, 0) : DEFAULT_THREADS;

	if (n < 2)
		n = 2;
	if (n > MAX_THREADS)
		n = MAX_THREADS;
	return (uint32_t)n;
}

/* The pairs to run: RMPSC_SOAK_POOL_OPS or @dflt, times @scale. */
static uint64_t pair_count(uint64_t dflt, double scale)
{
	const char *e = getenv("RMPSC_SOAK_POOL_OPS");

	if (e && *e) {
		const double v = strtod(e, NULL);

		if (v >= 1)
			return (uint64_t)(v * scale);
	}
	return (uint64_t)((double)dflt * scale);
}

/*
 * Run @pairs allocations (each freed again) over the threads on a pool of
 * @t, then check the end state.
 */
static void run(const char *name, const rmpsc_pool_tier *t, uint32_t ntiers, uint32_t flags,
		uint64_t pairs)
{
	struct hub *hb = aligned_alloc(64, (sizeof *hb + 63) / 64 * 64);
	const uint32_t nth = thread_count();
	const uint64_t seed = stress_seed();
	rmpsc_pool_config cfg;
	pthread_t th[MAX_THREADS];
	uint64_t capacity = 0, allocs = 0, sum[11] = { 0 };
	uint32_t gen_min = 32;
	int64_t t0;

	assert_non_null(hb);
	memset(hb, 0, sizeof *hb);
	hb->name = name;
	hb->nthreads = nth;
	hb->ntiers = ntiers;
	hb->spill = (flags & RMPSC_POOL_F_SPILL) != 0;
	atomic_init(&hb->inflight, 0);
	atomic_init(&hb->double_owner, 0);
	atomic_init(&hb->failed, 0);
	atomic_init(&hb->closed, 0);
	for (uint32_t k = 0; k < ntiers; k++) {
		hb->tier_size[k] = t[k].slab_size;
		capacity += t[k].count;
	}
	assert_ret(rmpsc_pool_config_init(&cfg, sizeof cfg), 0);
	cfg.tiers = t;
	cfg.ntiers = ntiers;
	cfg.flags = flags;
	assert_ret(rmpsc_pool_create(&cfg, &hb->p), 0);
	for (uint32_t k = 0; k < ntiers; k++) {
		rmpsc_pool_region r;

		assert_ret(rmpsc_pool_tier_info(hb->p, k, &r), 0);
		if (r.gen_bits < gen_min)
			gen_min = r.gen_bits;
	}
	/* A stale handle is certain to be refused while no slab can have been
	 * allocated min(2^G, 2^30) times. */
	hb->check_stale = pairs < ((uint64_t)1 << (gen_min < 30 ? gen_min : 30));
	hb->forever[0] = wait_make(RMPSC_WAIT_BLOCK, 0, 0, 0, -1);
	hb->forever[1] = wait_make(RMPSC_WAIT_BLOCK, 64, 2, 0, -1);
	hb->forever[2] = wait_make(RMPSC_WAIT_BACKOFF, 16, 2, 0, -1);
	hb->finite[0] = hb->forever[0];
	hb->finite[1] = hb->forever[2];
	hb->finite[2] = wait_make(RMPSC_WAIT_SPIN, 0, 0, 0, -1);
	hb->finite[3] = wait_make(RMPSC_WAIT_SLEEP, 4, 1, 5 * US, -1);
	hb->finite[4] = wait_make(RMPSC_WAIT_DEADLINE, 8, 1, 0, 30 * US);
	hb->finite[5] = wait_make(RMPSC_WAIT_YIELD, 4, 0, 0, -1);
	hb->w = aligned_alloc(64, (nth * sizeof *hb->w + 63) / 64 * 64);
	assert_non_null(hb->w);
	memset(hb->w, 0, nth * sizeof *hb->w);
	for (uint32_t i = 0; i < nth; i++) {
		struct worker *w = &hb->w[i];

		atomic_init(&w->ops, 0);
		atomic_init(&w->where, W_IDLE);
		atomic_init(&w->done, 0);
		atomic_init(&w->in.hint, 0);
		pthread_mutex_init(&w->in.mu, NULL);
		w->hub = hb;
		w->id = i + 1;
		w->rng = (seed ^ (0x9e3779b97f4a7c15ull * (i + 1))) | 1;
		w->quota = pairs / nth + (i < pairs % nth);
		assert_ret(rmpsc_pool_cache_create(hb->p, CACHE_CAP, &w->c), 0);
	}
	print_message("%s [%s]: %u threads, %" PRIu64 " slabs, %" PRIu64 " pairs, seed %#" PRIx64
		      "%s\n",
		      name, STRESS_BUILD, nth, capacity, pairs, seed,
		      hb->check_stale ? "" : " (too many for the stale-handle checks: off)");
	t0 = now_ns();
	for (uint32_t i = 0; i < nth; i++)
		assert_ret(pthread_create(&th[i], NULL, worker_main, &hb->w[i]), 0);
	{
		const struct watchdog wd = { hub_done, hub_ops, hub_stall, hb, WATCHDOG_SEC, 10 * MS };

		if (!watchdog_run(&wd)) {
			/* the threads may still touch the pool: leave them and it */
			fail_msg("%s", hb->msg);
		}
	}
	for (uint32_t i = 0; i < nth; i++)
		assert_ret(pthread_join(th[i], NULL), 0);
	if (atomic_load_explicit(&hb->failed, memory_order_acquire))
		fail_msg("%s: %s", name, hb->msg);
	for (uint32_t i = 0; i < nth; i++) {
		const struct worker *w = &hb->w[i];
		const uint64_t c[11] = { w->allocs,    w->n_plain,     w->n_cache,   w->n_batch,
					 w->n_timed,   w->n_block,     w->n_enobufs, w->n_etimedout,
					 w->n_handoff, w->n_recv,      w->n_refree };

		if (w->allocs < w->quota)
			fail_msg("thread %u made %" PRIu64 " of its %" PRIu64 " allocations", w->id,
				 w->allocs, w->quota);
		if (w->nheld)
			fail_msg("thread %u still holds %u", w->id, w->nheld);
		for (int k = 0; k < 11; k++)
			sum[k] += c[k];
		allocs += w->allocs;
	}
	print_message("  %.2f s: %" PRIu64 " allocations (plain %" PRIu64 ", cache %" PRIu64
		      ", batches %" PRIu64 ", limited %" PRIu64 ", unlimited %" PRIu64
		      "); -ENOBUFS %" PRIu64 ", -ETIMEDOUT %" PRIu64 "; hand-offs %" PRIu64
		      " (received %" PRIu64 "), second frees %" PRIu64 "\n",
		      (double)(now_ns() - t0) * 1e-9, sum[0], sum[1], sum[2], sum[3], sum[4], sum[5],
		      sum[6], sum[7], sum[8], sum[9], sum[10]);
	assert_int_equal(sum[8], sum[9]);
	assert_true(allocs >= pairs);
	assert_int_equal(atomic_load_explicit(&hb->double_owner, memory_order_relaxed), 0);
	assert_int_equal(atomic_load_explicit(&hb->inflight, memory_order_relaxed), 0);
	/* everything given back: every slab available, those in caches too */
	assert_ret(rmpsc_pool_capacity(hb->p), (int64_t)capacity);
	assert_ret(rmpsc_pool_available(hb->p), (int64_t)capacity);
	for (uint32_t i = 0; i < nth; i++) {
		assert_ret(rmpsc_pool_cache_destroy(hb->w[i].c), 0);
		pthread_mutex_destroy(&hb->w[i].in.mu);
	}
	assert_ret(rmpsc_pool_available(hb->p), (int64_t)capacity);
	/* every stamp cleared */
	for (uint32_t k = 0; k < ntiers; k++) {
		rmpsc_pool_region r;

		assert_ret(rmpsc_pool_tier_info(hb->p, k, &r), 0);
		for (uint32_t i = 0; i < r.count; i++) {
			_Atomic uint64_t *st =
				(_Atomic uint64_t *)(void *)((unsigned char *)r.base + i * r.stride);
			const uint64_t v = atomic_load_explicit(st, memory_order_relaxed);

			if (v != 0)
				fail_msg("tier %u slab %u: stamp %" PRIu64 " left: an owner never let go",
					 k, i, v);
		}
	}
	/* and the pool hands out every slab once more */
	{
		uint32_t *hs = calloc(capacity, sizeof *hs);
		uint64_t n = 0;

		assert_non_null(hs);
		for (uint32_t k = 0; k < ntiers; k++)
			for (uint32_t i = 0; i < t[k].count; i++) {
				uint32_t h = 0;

				assert_ret(rmpsc_pool_alloc(hb->p, t[k].slab_size, &h), 0);
				hs[n++] = h;
			}
		assert_ret(rmpsc_pool_available(hb->p), 0);
		assert_ret(rmpsc_pool_free_n(hb->p, hs, (uint32_t)n), (int)n);
		free(hs);
	}
	{
		uint64_t out = 77;

		assert_ret(rmpsc_pool_destroy(hb->p, 0, &out), 0);
		assert_int_equal(out, 0);
	}
	free(hb->w);
	free(hb);
}

/* Two tiers, 64 slabs, no spill. */
static void test_pool_stress_when_owners_race_never_share_a_slab(void **state)
{
	static const rmpsc_pool_tier t[2] = { { 64, 48, 0 }, { 256, 16, 0 } };

	(void)state;
	run(__func__, t, 2, 0, pair_count(STRESS_SCALE(10000000, 2000000, 1000000), 1.0));
}

/* Three tiers with SPILL: allocations move up when a tier runs dry. */
static void test_pool_stress_when_spilling_owners_race_never_share_a_slab(void **state)
{
	static const rmpsc_pool_tier t[3] = { { 64, 32, 0 }, { 128, 16, 0 }, { 512, 16, 0 } };

	(void)state;
	run(__func__, t, 3, RMPSC_POOL_F_SPILL,
	    pair_count(STRESS_SCALE(10000000, 2000000, 1000000), 0.2));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pool_stress_when_owners_race_never_share_a_slab),
		cmocka_unit_test(test_pool_stress_when_spilling_owners_race_never_share_a_slab),
	};

	return cmocka_run_group_tests_name("stress_pool", tests, NULL, NULL);
}
