/* SPDX-License-Identifier: MIT */
/*
 * Stress for rmpsc_ring (ctest label "stress"): a producer thread and a
 * consumer thread move numbered items through a small ring. Each side picks
 * its next call pseudo-randomly (xorshift, fixed seed) from every API it may
 * use:
 *   producer  push, push_n, push_n_exact, reserve/reserve_exact + commit
 *             (partial commits, over-commits, abandoned reservations, spans
 *             that wrap and are written through both segments);
 *   consumer  pop, pop_n, pop_n_exact, readable + advance (partial), peek,
 *             peek_n, skip, drain (with and without a buffer).
 * The consumer checks the exact sequence (no loss, duplicate or reorder),
 * every span's shape, and that -EPIPE comes only after the last item. Other
 * cases: 24- and 5-byte elements, tiny capacities, positions that cross
 * 2^64, a close from a third thread while the producer is pushing, and a
 * status observer thread. -EAGAIN is answered with sched_yield(), so the test
 * is fine on an oversubscribed machine. Times are printed, never asserted.
 *
 * Set RMPSC_STRESS_SEED to vary the seed.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "ringmpsc/ring.h"

#include "test_core.h" /* tc_set_position(): a ring from any position */

#define STRESS_SEED 0x2545f4914f6cdd1dull
#include "test_util.h" /* stress_seed(), xs_next(), STRESS_SCALE, ... */
#define STRESS_K 0x9e3779b97f4a7c15ull
#define STRESS_ELEM_MAX 32
/* An op already reported its failure. */
#define STRESS_BROKEN INT_MIN

struct prod_stats {
	uint64_t push1, push_n, push_n_exact, reserves, reserve_wraps;
	uint64_t partial_commits, over_commits, abandoned, eagain;
};

struct cons_stats {
	uint64_t pop1, pop_n, pop_n_exact, readables, readable_wraps;
	uint64_t partial_advances, peeks, skipped, drained, eagain;
};

struct stress {
	/* Set before the threads start. */
	rmpsc_ring *r;
	uint32_t cap;
	uint32_t esz;
	uint64_t start;       /* ring position of item 0 */
	uint64_t total;       /* items to send; UINT64_MAX: until closed */
	uint64_t seed;
	uint64_t close_after; /* closer thread: close once this many were sent */
	bool expect_close;    /* a third thread closes: -EPIPE ends the producer */

	/* Read-mostly flags. */
	char _pad0[64];
	atomic_int failed;
	atomic_bool stop; /* a failure or the end: every loop leaves */
	atomic_bool prod_done;
	char _pad1[64];
	_Atomic uint64_t progress; /* items committed (close mode only) */
	char _pad2[64];

	/* Results, read after the joins. */
	char msg[512];
	uint64_t sent;
	uint64_t received;
	uint64_t late; /* received after the consumer's first -EPIPE */
	uint64_t samples;
	unsigned char *prod_base;
	unsigned char *cons_base;
	struct prod_stats ps;
	struct cons_stats cs;
};

struct prod_state {
	uint64_t rng;
	uint64_t next; /* sequence number of the next item to publish */
	unsigned char *buf;
	unsigned char *base; /* slot 0 as derived from the spans */
	struct prod_stats s;
};

struct cons_state {
	uint64_t rng;
	uint64_t expect; /* sequence number of the next item to receive */
	unsigned char *buf;
	unsigned char *base;
	struct cons_stats s;
};

/* After a failure: every thread leaves. */
static void stress_stop(void *arg, int first)
{
	struct stress *st = arg;

	(void)first;
	atomic_store_explicit(&st->stop, true, memory_order_release);
}

#define stress_fail(st, ...) FAIL_RECORD(st, stress_stop, __VA_ARGS__)

static bool stress_stopped(struct stress *st)
{
	/* Relaxed: a hint to leave; results are read after pthread_join. */
	return atomic_load_explicit(&st->stop, memory_order_relaxed);
}

static double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- items --------------------------------------------------------------- */

/* Item @seq: 8 bytes hold seq itself, 24 bytes (seq, seq ^ K, ~seq), other
 * sizes the bytes of seq mixed with their offset. */
static inline void elem_put(unsigned char *p, uint32_t esz, uint64_t seq)
{
	if (esz == 8) {
		memcpy(p, &seq, 8);
	} else if (esz == 24) {
		const uint64_t w[3] = { seq, seq ^ STRESS_K, ~seq };

		memcpy(p, w, sizeof w);
	} else {
		for (uint32_t j = 0; j < esz; j++)
			p[j] = (unsigned char)((seq >> (8 * (j % 8))) ^ (j * 0x3bu));
	}
}

static inline bool elem_ok(const unsigned char *p, uint32_t esz, uint64_t seq)
{
	unsigned char want[STRESS_ELEM_MAX];
	uint64_t v;

	if (esz == 8) {
		memcpy(&v, p, 8);
		return v == seq;
	}
	elem_put(want, esz, seq);
	return memcmp(p, want, esz) == 0;
}

/* The first (up to) 8 bytes, for messages. */
static uint64_t elem_word(const unsigned char *p, uint32_t esz)
{
	uint64_t v = 0;

	memcpy(&v, p, esz < 8 ? esz : 8);
	return v;
}

static void fill_items(const struct stress *st, unsigned char *buf, uint64_t seq,
		       uint32_t n)
{
	for (uint32_t k = 0; k < n; k++)
		elem_put(buf + (size_t)k * st->esz, st->esz, seq + k);
}

/* Items a producer or consumer buffer holds. */
static inline uint32_t buf_items(const struct stress *st)
{
	return 2 * st->cap + 1;
}

/* Room for @n items that ends where the buffer ends: ASan reports a copy
 * that goes one byte further than asked. */
static inline unsigned char *buf_tail(const struct stress *st, unsigned char *buf,
				      uint32_t n)
{
	return buf + (size_t)(buf_items(st) - n) * st->esz;
}

/* ---- spans --------------------------------------------------------------- */

/* A span of @n elements from ring position @pos must split at the end of the
 * buffer, and every span must describe the same slot array (*base). */
static bool span_check(struct stress *st, const rmpsc_span *s, uint32_t n, uint64_t pos,
		       unsigned char **base, const char *who)
{
	uint64_t idx = pos & (st->cap - 1);
	uint64_t room = st->cap - idx;
	uint32_t c0 = n < room ? n : (uint32_t)room;
	uint32_t c1 = n - c0;
	unsigned char *b;

	if (s->pos != pos || s->count[0] != c0 || s->count[1] != c1 ||
	    s->nseg != (c1 ? 2u : 1u) || s->_pad0 != 0 ||
	    s->iov[0].iov_len != (size_t)c0 * st->esz ||
	    s->iov[1].iov_len != (size_t)c1 * st->esz) {
		stress_fail(st,
			    "%s: span of %u at pos %" PRIu64 " is pos %" PRIu64
			    " count %u+%u nseg %u pad %u len %zu+%zu (want %u+%u)",
			    who, n, pos, s->pos, s->count[0], s->count[1], s->nseg,
			    s->_pad0, s->iov[0].iov_len, s->iov[1].iov_len, c0, c1);
		return false;
	}
	b = (unsigned char *)s->iov[0].iov_base - (size_t)idx * st->esz;
	if (!*base)
		*base = b;
	if (b != *base || (c1 && s->iov[1].iov_base != (void *)*base)) {
		stress_fail(st, "%s: span at pos %" PRIu64 " points at %p/%p, slots at %p",
			    who, pos, s->iov[0].iov_base, s->iov[1].iov_base,
			    (void *)*base);
		return false;
	}
	return true;
}

/* ---- producer ------------------------------------------------------------ */

static int prod_push1(struct stress *st, struct prod_state *p)
{
	unsigned char *b = buf_tail(st, p->buf, 1);
	int rc;

	elem_put(b, st->esz, p->next);
	rc = rmpsc_ring_push(st->r, b);
	if (rc == 0) {
		p->s.push1++;
		return 1;
	}
	return rc;
}

static int prod_push_n(struct stress *st, struct prod_state *p, uint32_t n, bool exact)
{
	unsigned char *b;
	int rc;

	if (exact && n > st->cap)
		n = 1 + n % st->cap;
	b = buf_tail(st, p->buf, n);
	fill_items(st, b, p->next, n);
	if (exact)
		rc = rmpsc_ring_push_n_exact(st->r, b, n);
	else
		rc = rmpsc_ring_push_n(st->r, b, n);
	if (rc == 0 || rc > (int)n || (exact && rc > 0 && rc != (int)n)) {
		stress_fail(st, "producer: push_n%s(%u) returned %d", exact ? "_exact" : "",
			    n, rc);
		return STRESS_BROKEN;
	}
	if (rc > 0 && exact)
		p->s.push_n_exact++;
	else if (rc > 0)
		p->s.push_n++;
	return rc;
}

/* Reserve, write in place through both segments, then commit in random
 * pieces, try over-commits, or abandon the rest. Returns items committed. */
static int prod_reserve(struct stress *st, struct prod_state *p, uint32_t n)
{
	bool exact = (xs_next(&p->rng) >> 63) && n <= st->cap;
	uint32_t left, done = 0;
	rmpsc_span s;
	int rc;

	memset(&s, 0xa5, sizeof s);
	if (exact)
		rc = rmpsc_ring_reserve_exact(st->r, n, &s);
	else
		rc = rmpsc_ring_reserve(st->r, n, &s);
	if (rc < 0)
		return rc;
	if (rc == 0 || rc > (int)n || (exact && rc != (int)n)) {
		stress_fail(st, "producer: reserve%s(%u) returned %d", exact ? "_exact" : "",
			    n, rc);
		return STRESS_BROKEN;
	}
	if (!span_check(st, &s, (uint32_t)rc, st->start + p->next, &p->base, "producer"))
		return STRESS_BROKEN;
	p->s.reserves++;
	if (s.nseg == 2)
		p->s.reserve_wraps++;
	for (uint32_t k = 0; k < (uint32_t)rc; k++)
		elem_put(span_at(&s, st->esz, k), st->esz, p->next + k);

	left = (uint32_t)rc;
	while (left) {
		uint32_t mode = (uint32_t)(xs_next(&p->rng) >> 61);
		uint32_t c;

		if (mode == 0) {
			/* More than is reserved: refused, nothing changes. */
			c = left + 1 + (uint32_t)(xs_next(&p->rng) >> 62);
			rc = rmpsc_ring_commit(st->r, c);
			if (rc != -EINVAL) {
				stress_fail(st, "producer: commit(%u) with %u reserved "
					    "returned %d", c, left, rc);
				return STRESS_BROKEN;
			}
			p->s.over_commits++;
			continue;
		}
		if (mode == 1) {
			/* The next reserve or push replaces the rest. */
			p->s.abandoned++;
			break;
		}
		c = mode < 5 ? left : 1 + (uint32_t)((xs_next(&p->rng) >> 33) % left);
		if (st->expect_close && mode == 7)
			/* Widen the window for a close between reserve and
			 * commit: the commit then publishes nothing and says
			 * so. */
			sched_yield();
		rc = rmpsc_ring_commit(st->r, c);
		if (rc == -EPIPE && st->expect_close)
			return done ? (int)done : -EPIPE; /* the rest is dropped */
		if (rc != 0) {
			stress_fail(st, "producer: commit(%u) with %u reserved returned %d", c,
				    left, rc);
			return STRESS_BROKEN;
		}
		if (c < left)
			p->s.partial_commits++;
		left -= c;
		done += c;
	}
	return (int)done;
}

/* Calls that move nothing: 0 or -EPIPE (closed) only. */
static int prod_misc(struct stress *st, struct prod_state *p)
{
	rmpsc_span s;
	int rc;

	switch (xs_next(&p->rng) >> 62) {
	case 0:
		memset(&s, 0xa5, sizeof s);
		rc = rmpsc_ring_reserve(st->r, 0, &s);
		if (rc == 0 &&
		    (s.nseg || s.count[0] || s.count[1] || s.iov[0].iov_len ||
		     s.iov[1].iov_len || s.pos != st->start + p->next)) {
			stress_fail(st, "producer: reserve(0) span nseg %u count %u+%u pos %"
				    PRIu64, s.nseg, s.count[0], s.count[1], s.pos);
			return STRESS_BROKEN;
		}
		break;
	case 1:
		rc = rmpsc_ring_push_n(st->r, p->buf, 0);
		break;
	case 2:
		rc = rmpsc_ring_push_n_exact(st->r, buf_tail(st, p->buf, st->cap + 1),
					     st->cap + 1);
		if (rc == -EINVAL)
			rc = 0;
		break;
	default:
		rc = rmpsc_ring_commit(st->r, 0);
		if (rc == 0) {
			rc = rmpsc_ring_commit(st->r, st->cap + 1);
			rc = rc == -EINVAL ? 0 : (rc ? rc : -ENOTRECOVERABLE);
		}
		break;
	}
	if (rc == 0 || rc == -EPIPE)
		return rc;
	stress_fail(st, "producer: a call that moves nothing returned %d (%s)", rc,
		    rmpsc_strerror(rc));
	return STRESS_BROKEN;
}

static void prod_after_close(struct stress *st, struct prod_state *p)
{
	unsigned char *b = buf_tail(st, p->buf, 1);
	rmpsc_span s;
	int rc[4];

	rc[0] = rmpsc_ring_push(st->r, b);
	rc[1] = rmpsc_ring_push_n(st->r, b, 1);
	rc[2] = rmpsc_ring_push_n_exact(st->r, b, 1);
	rc[3] = rmpsc_ring_reserve(st->r, 1, &s);
	for (int i = 0; i < 4; i++) {
		if (rc[i] != -EPIPE) {
			stress_fail(st, "producer: call %d after close returned %d", i, rc[i]);
			return;
		}
	}
}

static void *producer_main(void *arg)
{
	struct stress *st = arg;
	struct prod_state p = { .rng = st->seed ^ 0x70726f64ull };

	p.buf = malloc((size_t)buf_items(st) * st->esz);
	if (!p.buf) {
		stress_fail(st, "producer: out of memory");
		goto out;
	}
	while (p.next < st->total && !stress_stopped(st)) {
		uint64_t left = st->total - p.next;
		uint32_t op = (uint32_t)(xs_next(&p.rng) >> 60);
		uint32_t n = pick_n(&p.rng, 8, 2 * st->cap);
		int rc;

		if (n > left)
			n = (uint32_t)left;
		if (op < 4)
			rc = prod_push1(st, &p);
		else if (op < 7)
			rc = prod_push_n(st, &p, n, false);
		else if (op < 9)
			rc = prod_push_n(st, &p, n, true);
		else if (op < 15)
			rc = prod_reserve(st, &p, n);
		else
			rc = prod_misc(st, &p);

		if (rc >= 0) {
			p.next += (uint64_t)rc;
			if (st->expect_close && rc)
				/* Relaxed: the closer only paces itself on it. */
				atomic_store_explicit(&st->progress, p.next,
						      memory_order_relaxed);
			continue;
		}
		if (rc == -EAGAIN) {
			p.s.eagain++;
			sched_yield();
			continue;
		}
		if (rc == -EPIPE && st->expect_close)
			break;
		if (rc != STRESS_BROKEN)
			stress_fail(st, "producer: op %u (n %u) at item %" PRIu64
				    " returned %d (%s)", op, n, p.next, rc, rmpsc_strerror(rc));
		break;
	}
	if (!st->expect_close && !stress_stopped(st)) {
		int rc = rmpsc_ring_close(st->r);

		if (rc)
			stress_fail(st, "producer: close returned %d", rc);
		else
			prod_after_close(st, &p);
	}
out:
	st->sent = p.next;
	st->ps = p.s;
	st->prod_base = p.base;
	free(p.buf);
	/* Release: every commit above happens-before the consumer's last
	 * drain, which starts after it sees this flag. */
	atomic_store_explicit(&st->prod_done, true, memory_order_release);
	return NULL;
}

/* ---- consumer ------------------------------------------------------------ */

static bool cons_check(struct stress *st, struct cons_state *c, const unsigned char *buf,
		       uint32_t n, const char *what)
{
	for (uint32_t k = 0; k < n; k++) {
		const unsigned char *e = buf + (size_t)k * st->esz;

		if (!elem_ok(e, st->esz, c->expect + k)) {
			stress_fail(st, "consumer: %s: item %" PRIu64 " holds %#" PRIx64
				    " (elem_size %u)", what, c->expect + k,
				    elem_word(e, st->esz), st->esz);
			return false;
		}
	}
	return true;
}

static int cons_pop1(struct stress *st, struct cons_state *c, bool consume)
{
	unsigned char *b = buf_tail(st, c->buf, 1);
	int rc = consume ? rmpsc_ring_pop(st->r, b) : rmpsc_ring_peek(st->r, b);

	if (rc)
		return rc > 0 ? -ENOTRECOVERABLE : rc;
	if (!cons_check(st, c, b, 1, consume ? "pop" : "peek"))
		return STRESS_BROKEN;
	if (!consume) {
		c->s.peeks++;
		return 0;
	}
	c->s.pop1++;
	return 1;
}

/* pop_n, pop_n_exact and peek_n. */
static int cons_pop_n(struct stress *st, struct cons_state *c, uint32_t n, bool exact,
		      bool consume)
{
	unsigned char *b;
	int rc;

	if (exact && n > st->cap)
		n = 1 + n % st->cap;
	b = buf_tail(st, c->buf, n);
	if (!consume)
		rc = rmpsc_ring_peek_n(st->r, b, n);
	else if (exact)
		rc = rmpsc_ring_pop_n_exact(st->r, b, n);
	else
		rc = rmpsc_ring_pop_n(st->r, b, n);
	if (rc < 0)
		return rc;
	if (rc == 0 || rc > (int)n || (exact && rc != (int)n)) {
		stress_fail(st, "consumer: %s(%u) returned %d",
			    !consume ? "peek_n" : exact ? "pop_n_exact" : "pop_n", n, rc);
		return STRESS_BROKEN;
	}
	if (!cons_check(st, c, b, (uint32_t)rc, consume ? "pop_n" : "peek_n"))
		return STRESS_BROKEN;
	if (!consume) {
		c->s.peeks++;
		return 0;
	}
	if (exact)
		c->s.pop_n_exact++;
	else
		c->s.pop_n++;
	return rc;
}

/* Read in place through both segments, then release some or all of it. */
static int cons_readable(struct stress *st, struct cons_state *c, uint32_t n)
{
	uint32_t a, mode;
	rmpsc_span s;
	int rc;

	memset(&s, 0xa5, sizeof s);
	rc = rmpsc_ring_readable(st->r, n, &s);
	if (rc < 0)
		return rc;
	if (rc == 0 || rc > (int)n) {
		stress_fail(st, "consumer: readable(%u) returned %d", n, rc);
		return STRESS_BROKEN;
	}
	if (!span_check(st, &s, (uint32_t)rc, st->start + c->expect, &c->base,
			"consumer"))
		return STRESS_BROKEN;
	for (uint32_t k = 0; k < (uint32_t)rc; k++) {
		const unsigned char *e = span_at(&s, st->esz, k);

		if (!elem_ok(e, st->esz, c->expect + k)) {
			stress_fail(st, "consumer: readable: item %" PRIu64 " (segment %d) holds %#"
				    PRIx64, c->expect + k, k < s.count[0] ? 0 : 1,
				    elem_word(e, st->esz));
			return STRESS_BROKEN;
		}
	}
	c->s.readables++;
	if (s.nseg == 2)
		c->s.readable_wraps++;

	mode = (uint32_t)(xs_next(&c->rng) >> 62);
	if (mode < 2)
		a = (uint32_t)rc;
	else if (mode == 2)
		a = (uint32_t)((xs_next(&c->rng) >> 33) % ((uint32_t)rc + 1));
	else
		a = 1 + (uint32_t)((xs_next(&c->rng) >> 33) % (rc > 1 ? (uint32_t)rc - 1 : 1));
	rc = rmpsc_ring_advance(st->r, a);
	if (rc) {
		stress_fail(st, "consumer: advance(%u) after readable returned %d", a, rc);
		return STRESS_BROKEN;
	}
	if (a < s.count[0] + s.count[1])
		c->s.partial_advances++;
	return (int)a;
}

/* skip, or drain with no buffer: discards; the later items prove the count. */
static int cons_skip(struct stress *st, struct cons_state *c)
{
	uint64_t x = xs_next(&c->rng);
	uint32_t n = 1 + (uint32_t)((x >> 40) % 4);
	int rc;

	if (x >> 63) {
		rc = rmpsc_ring_skip(st->r, n);
		if (rc == 0)
			rc = -ENOTRECOVERABLE;
	} else {
		rc = rmpsc_ring_drain(st->r, NULL, n);
	}
	if (rc > (int)n) {
		stress_fail(st, "consumer: skip/drain(NULL, %u) returned %d", n, rc);
		return STRESS_BROKEN;
	}
	if (rc > 0)
		c->s.skipped += (uint64_t)rc;
	return rc;
}

static int cons_drain(struct stress *st, struct cons_state *c, uint32_t n)
{
	unsigned char *b = buf_tail(st, c->buf, n);
	int rc = rmpsc_ring_drain(st->r, b, n);

	if (rc < 0 || rc > (int)n) {
		stress_fail(st, "consumer: drain(%u) returned %d", n, rc);
		return STRESS_BROKEN;
	}
	if (!cons_check(st, c, b, (uint32_t)rc, "drain"))
		return STRESS_BROKEN;
	c->s.drained += (uint64_t)rc;
	return rc;
}

/* Calls that move nothing: 0 or -EPIPE (closed and drained) only. */
static int cons_misc(struct stress *st, struct cons_state *c)
{
	rmpsc_span s;
	int rc;

	switch (xs_next(&c->rng) >> 62) {
	case 0:
		rc = rmpsc_ring_pop_n(st->r, c->buf, 0);
		if (rc)
			break;
		memset(&s, 0xa5, sizeof s);
		rc = rmpsc_ring_readable(st->r, 0, &s);
		if (rc == 0 &&
		    (s.nseg || s.count[0] || s.count[1] || s.iov[0].iov_len ||
		     s.iov[1].iov_len || s.pos != st->start + c->expect)) {
			stress_fail(st, "consumer: readable(0) span nseg %u count %u+%u pos %"
				    PRIu64, s.nseg, s.count[0], s.count[1], s.pos);
			return STRESS_BROKEN;
		}
		break;
	case 1:
		rc = rmpsc_ring_pop_n_exact(st->r, buf_tail(st, c->buf, st->cap + 1),
					    st->cap + 1);
		if (rc == -EINVAL)
			rc = 0;
		break;
	case 2:
		rc = rmpsc_ring_advance(st->r, 0);
		if (rc == 0) {
			/* Never that many committed: refused, nothing changes. */
			rc = rmpsc_ring_advance(st->r, st->cap + 1);
			rc = rc == -EINVAL ? 0 : (rc ? rc : -ENOTRECOVERABLE);
		}
		break;
	default:
		rc = rmpsc_ring_skip(st->r, 0);
		if (rc == 0)
			rc = rmpsc_ring_peek_n(st->r, c->buf, 0);
		break;
	}
	if (rc == 0 || rc == -EPIPE)
		return rc;
	stress_fail(st, "consumer: a call that moves nothing returned %d (%s)", rc,
		    rmpsc_strerror(rc));
	return STRESS_BROKEN;
}

/* Receive until -EPIPE: 0 then, -1 on a failure (reported) or a stop. */
static int consume_until_epipe(struct stress *st, struct cons_state *c)
{
	while (!stress_stopped(st)) {
		uint32_t op = (uint32_t)(xs_next(&c->rng) >> 59);
		uint32_t n = pick_n(&c->rng, 8, 2 * st->cap);
		int rc;

		if (op < 6)
			rc = cons_pop1(st, c, true);
		else if (op < 12)
			rc = cons_pop_n(st, c, n, false, true);
		else if (op < 15)
			rc = cons_pop_n(st, c, n, true, true);
		else if (op < 25)
			rc = cons_readable(st, c, n);
		else if (op < 27)
			rc = cons_pop1(st, c, false);
		else if (op < 29)
			rc = cons_pop_n(st, c, n, false, false);
		else if (op == 29)
			rc = cons_skip(st, c);
		else if (op == 30)
			rc = cons_drain(st, c, n);
		else
			rc = cons_misc(st, c);

		if (rc >= 0) {
			c->expect += (uint64_t)rc;
			continue;
		}
		if (rc == -EAGAIN) {
			c->s.eagain++;
			sched_yield();
			continue;
		}
		if (rc == -EPIPE)
			return 0;
		if (rc != STRESS_BROKEN)
			stress_fail(st, "consumer: op %u (n %u) at item %" PRIu64
				    " returned %d (%s)", op, n, c->expect, rc,
				    rmpsc_strerror(rc));
		return -1;
	}
	return -1;
}

/* Closed, drained and no producer left: every call says so, every time. */
static void cons_check_finished(struct stress *st, struct cons_state *c)
{
	unsigned char *b = buf_tail(st, c->buf, 1);
	rmpsc_span s;
	int rc[7];

	rc[0] = rmpsc_ring_pop(st->r, b);
	rc[1] = rmpsc_ring_pop_n(st->r, b, 1);
	rc[2] = rmpsc_ring_pop_n_exact(st->r, b, 1);
	rc[3] = rmpsc_ring_readable(st->r, 1, &s);
	rc[4] = rmpsc_ring_peek(st->r, b);
	rc[5] = rmpsc_ring_peek_n(st->r, b, 1);
	rc[6] = rmpsc_ring_skip(st->r, 1);
	for (int i = 0; i < 7; i++) {
		if (rc[i] != -EPIPE) {
			stress_fail(st, "consumer: call %d on a closed, drained ring returned %d",
				    i, rc[i]);
			return;
		}
	}
	if (rmpsc_ring_drain(st->r, b, 1) != 0 || rmpsc_ring_is_empty(st->r) != 1 ||
	    rmpsc_ring_len(st->r) != 0 || rmpsc_ring_is_closed(st->r) != 1)
		stress_fail(st, "consumer: closed, drained ring: drain, is_empty, len or "
			    "is_closed wrong");
}

static void *consumer_main(void *arg)
{
	struct stress *st = arg;
	struct cons_state c = { .rng = st->seed ^ 0x636f6e73ull };

	c.buf = malloc((size_t)buf_items(st) * st->esz);
	if (!c.buf) {
		stress_fail(st, "consumer: out of memory");
		goto out;
	}
	if (consume_until_epipe(st, &c))
		goto out;
	if (!st->expect_close) {
		/* The producer closes after its last commit. */
		if (c.expect != st->total) {
			stress_fail(st, "consumer: -EPIPE after %" PRIu64 " of %" PRIu64 " items",
				    c.expect, st->total);
			goto out;
		}
	} else {
		/* -EPIPE is final: a publication racing with the close either
		 * completes before the consumer's last look or reports -EPIPE
		 * to the producer. Once the producer is gone, look again: not a
		 * single item may have arrived after the first -EPIPE. */
		uint64_t first = c.expect;

		/* Acquire: pairs with the producer's release of prod_done. */
		while (!atomic_load_explicit(&st->prod_done, memory_order_acquire)) {
			if (stress_stopped(st))
				goto out;
			sched_yield();
		}
		if (consume_until_epipe(st, &c))
			goto out;
		st->late = c.expect - first;
		if (st->late) {
			stress_fail(st, "consumer: %" PRIu64 " items arrived after -EPIPE",
				    st->late);
			goto out;
		}
	}
	cons_check_finished(st, &c);
out:
	st->received = c.expect;
	st->cs = c.s;
	st->cons_base = c.base;
	free(c.buf);
	return NULL;
}

/* ---- observer and closer ------------------------------------------------- */

static void *observer_main(void *arg)
{
	struct stress *st = arg;
	uint64_t samples = 0;
	bool closed_seen = false;

	/* Acquire: a stop set by the main thread after the joins. */
	while (!atomic_load_explicit(&st->stop, memory_order_acquire)) {
		for (int i = 0; i < 32; i++) {
			int64_t len = rmpsc_ring_len(st->r);
			int e = rmpsc_ring_is_empty(st->r);
			int f = rmpsc_ring_is_full(st->r);
			int cl = rmpsc_ring_is_closed(st->r);

			if (len < 0 || len > (int64_t)st->cap || (e != 0 && e != 1) ||
			    (f != 0 && f != 1) || (cl != 0 && cl != 1) ||
			    (closed_seen && cl != 1)) {
				stress_fail(st, "observer: len %" PRId64 " is_empty %d is_full %d"
					    " is_closed %d (closed seen %d, capacity %u)",
					    len, e, f, cl, closed_seen, st->cap);
				goto out;
			}
			closed_seen = cl == 1;
			samples++;
		}
		if (rmpsc_ring_capacity(st->r) != st->cap ||
		    rmpsc_ring_elem_size(st->r) != st->esz) {
			stress_fail(st, "observer: capacity/elem_size changed");
			break;
		}
		sched_yield();
	}
out:
	st->samples = samples;
	return NULL;
}

static void *closer_main(void *arg)
{
	struct stress *st = arg;
	int rc;

	/* Relaxed: pacing only; the close itself is the synchronization. */
	while (atomic_load_explicit(&st->progress, memory_order_relaxed) <
		       st->close_after &&
	       !atomic_load_explicit(&st->prod_done, memory_order_relaxed))
		sched_yield();
	rc = rmpsc_ring_close(st->r);
	if (rc == 0)
		rc = rmpsc_ring_close(st->r); /* idempotent */
	if (rc)
		stress_fail(st, "closer: close returned %d", rc);
	return NULL;
}

/* ---- drivers ------------------------------------------------------------- */

static struct stress *stress_new(uint32_t cap, uint32_t esz, uint64_t total,
				 uint64_t start, uint64_t seed)
{
	struct stress *st = calloc(1, sizeof *st);
	rmpsc_ring_config cfg;

	assert_non_null(st);
	atomic_init(&st->failed, 0);
	atomic_init(&st->stop, false);
	atomic_init(&st->prod_done, false);
	atomic_init(&st->progress, 0);
	st->cap = cap;
	st->esz = esz;
	st->total = total;
	st->start = start;
	st->seed = seed;
	assert_int_equal(rmpsc_ring_config_init(&cfg, sizeof cfg), 0);
	cfg.capacity = cap;
	cfg.elem_size = esz;
	assert_int_equal(rmpsc_ring_create(&cfg, &st->r), 0);
	assert_non_null(st->r);
	if (start)
		assert_int_equal(tc_set_position(st->r, start), 0);
	return st;
}

static void stress_free(struct stress *st)
{
	rmpsc_ring_destroy(st->r);
	free(st);
}

/* Ends the test with the first failure a thread recorded; false then. */
static bool stress_ok(struct stress *st, const char *name)
{
	char msg[sizeof st->msg];

	if (!atomic_load_explicit(&st->failed, memory_order_acquire))
		return true;
	memcpy(msg, st->msg, sizeof msg);
	stress_free(st);
	fail_msg("%s: %s", name, msg);
	return false;
}

static void print_stats(const struct stress *st)
{
	const struct prod_stats *p = &st->ps;
	const struct cons_stats *c = &st->cs;

	print_message("  producer: push %" PRIu64 ", push_n %" PRIu64 ", push_n_exact %" PRIu64
		      ", reserve %" PRIu64 " (%" PRIu64 " wrapped, %" PRIu64
		      " partial commits, %" PRIu64 " over-commits refused, %" PRIu64
		      " abandoned), -EAGAIN %" PRIu64 "\n",
		      p->push1, p->push_n, p->push_n_exact, p->reserves, p->reserve_wraps,
		      p->partial_commits, p->over_commits, p->abandoned, p->eagain);
	print_message("  consumer: pop %" PRIu64 ", pop_n %" PRIu64 ", pop_n_exact %" PRIu64
		      ", readable %" PRIu64 " (%" PRIu64 " wrapped, %" PRIu64
		      " partial advances), peeks %" PRIu64 ", skipped %" PRIu64
		      ", drained %" PRIu64 ", -EAGAIN %" PRIu64 "\n",
		      c->pop1, c->pop_n, c->pop_n_exact, c->readables, c->readable_wraps,
		      c->partial_advances, c->peeks, c->skipped, c->drained, c->eagain);
}

static void start_thread(pthread_t *t, void *(*fn)(void *), struct stress *st)
{
	assert_int_equal(pthread_create(t, NULL, fn, st), 0);
}

static void join_thread(pthread_t t)
{
	assert_int_equal(pthread_join(t, NULL), 0);
}

/*
 * One producer and one consumer move @total items of @esz bytes through a
 * ring of @cap slots whose positions start at @start. With @observe a third
 * thread polls the status calls; with @coverage every path (wrapping spans,
 * partial commits and advances, ...) must have been taken.
 */
static void run_mixed(const char *name, uint32_t cap, uint32_t esz, uint64_t total,
		      uint64_t start, bool observe, bool coverage)
{
	struct stress *st = stress_new(cap, esz, total, start, stress_seed());
	pthread_t prod, cons, obs;
	double t0, dt;

	t0 = now_sec();
	if (observe)
		start_thread(&obs, observer_main, st);
	start_thread(&cons, consumer_main, st);
	start_thread(&prod, producer_main, st);
	join_thread(prod);
	join_thread(cons);
	atomic_store_explicit(&st->stop, true, memory_order_release);
	if (observe)
		join_thread(obs);
	dt = now_sec() - t0;

	print_message("%s [%s]: %" PRIu64 " sent, %" PRIu64 " received, capacity %u, "
		      "elem_size %u, start %#" PRIx64 ", seed %#" PRIx64 ": %.2f s"
		      " (%.1f M items/s), %" PRIu64 " status samples\n",
		      name, STRESS_BUILD, st->sent, st->received, cap, esz, start, st->seed,
		      dt, dt > 0 ? (double)st->received / dt / 1e6 : 0.0, st->samples);
	print_stats(st);
	if (!stress_ok(st, name))
		return;

	assert_int_equal(st->sent, total);
	assert_int_equal(st->received, total);
	assert_ptr_equal(st->prod_base, st->cons_base);
	if (observe)
		assert_true(st->samples > 0);
	if (coverage) {
		const struct prod_stats *p = &st->ps;
		const struct cons_stats *c = &st->cs;

		assert_true(p->push1 && p->push_n && p->push_n_exact && p->reserves);
		assert_true(p->reserve_wraps && p->partial_commits && p->over_commits &&
			    p->abandoned);
		assert_true(c->pop1 && c->pop_n && c->pop_n_exact && c->readables);
		assert_true(c->readable_wraps && c->partial_advances && c->peeks &&
			    c->skipped && c->drained);
	}
	stress_free(st);
}

static void test_ring_stress_mixed_api_u64_small_ring_preserves_sequence(void **state)
{
	(void)state;
	run_mixed(__func__, 64, 8, STRESS_SCALE(50000000ull, 10000000ull, 4000000ull), 0,
		  true, true);
}

static void test_ring_stress_elem24_payload_arrives_intact(void **state)
{
	(void)state;
	run_mixed(__func__, 128, 24, STRESS_SCALE(4000000ull, 2000000ull, 1000000ull), 0,
		  true, true);
}

static void test_ring_stress_elem5_unaligned_slots_arrive_intact(void **state)
{
	(void)state;
	run_mixed(__func__, 256, 5, STRESS_SCALE(2000000ull, 1000000ull, 500000ull), 0,
		  false, true);
}

static void test_ring_stress_positions_across_u64_wrap_preserve_sequence(void **state)
{
	(void)state;
	run_mixed(__func__, 64, 8, STRESS_SCALE(2000000ull, 1000000ull, 500000ull),
		  UINT64_MAX - 1000, false, true);
}

static void test_ring_stress_tiny_capacities_preserve_sequence(void **state)
{
	static const uint32_t caps[] = { 1, 2, 4 };

	(void)state;
	for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++)
		run_mixed(__func__, caps[i], 8,
			  STRESS_SCALE(300000ull, 100000ull, 100000ull), 0, false, false);
}

/*
 * A third thread closes the ring while the producer is pushing. Everything
 * the producer published (its success count) reaches the consumer, in order,
 * once: -EPIPE may come before a commit racing with the close lands, so the
 * consumer drains again after the producer is gone.
 */
static void test_ring_stress_close_during_push_delivers_every_success(void **state)
{
	const unsigned rounds = STRESS_SCALE(300u, 150u, 150u);
	uint64_t rng = stress_seed() ^ 0x636c6f73ull;
	uint64_t sent = 0, late = 0, late_rounds = 0, empty_rounds = 0;
	double t0 = now_sec(), dt;

	(void)state;
	for (unsigned i = 0; i < rounds; i++) {
		struct stress *st = stress_new(64, 8, UINT64_MAX, 0, stress_seed() + i);
		pthread_t prod, cons, closer;
		char name[96];

		st->expect_close = true;
		/* Round 0 is closed before the threads start: nothing may be
		 * sent. Then the closer waits for 0..7 items, then random counts. */
		if (i == 0)
			st->close_after = 0;
		else if (i < 9)
			st->close_after = i - 1;
		else
			st->close_after = (xs_next(&rng) >> 40) % 20000;
		if (i == 0)
			assert_int_equal(rmpsc_ring_close(st->r), 0);
		start_thread(&cons, consumer_main, st);
		start_thread(&prod, producer_main, st);
		if (i > 0)
			start_thread(&closer, closer_main, st);
		join_thread(prod);
		if (i > 0)
			join_thread(closer);
		join_thread(cons);
		snprintf(name, sizeof name, "%s round %u (close after %" PRIu64 ")", __func__,
			 i, st->close_after);
		if (!stress_ok(st, name))
		return;
		assert_int_equal(st->received, st->sent);
		if (i == 0)
			assert_int_equal(st->sent, 0);
		assert_int_equal(rmpsc_ring_is_closed(st->r), 1);
		assert_int_equal(rmpsc_ring_len(st->r), 0);
		sent += st->sent;
		late += st->late;
		late_rounds += st->late != 0;
		empty_rounds += st->sent == 0;
		stress_free(st);
	}
	dt = now_sec() - t0;
	print_message("%s [%s]: %u rounds, %" PRIu64 " items sent and received, %" PRIu64
		      " rounds closed before any item, %" PRIu64 " items in %" PRIu64
		      " rounds arrived after the first -EPIPE: %.2f s\n",
		      __func__, STRESS_BUILD, rounds, sent, empty_rounds, late, late_rounds, dt);
}

/*
 * Borrowed reads against a running producer: the consumer keeps up to 8
 * borrows outstanding and commits them in random order; it checks every
 * borrowed run continues the sequence, and the producer (pushing with
 * sched_yield on a full ring) can only ever reuse slots whose borrows, and
 * all earlier ones, were committed: a slot reused early would overwrite a
 * run the consumer still holds, which the consumer re-checks just before
 * committing it.
 */
struct borrow_stress {
	rmpsc_ring *r;
	uint64_t total;
	_Atomic int failed;
};

static void *borrow_producer(void *arg)
{
	struct borrow_stress *bs = arg;

	for (uint64_t i = 0; i < bs->total; i++) {
		int rc;

		while ((rc = rmpsc_ring_push(bs->r, &i)) == -EAGAIN)
			sched_yield();
		if (rc) {
			atomic_store_explicit(&bs->failed, 1, memory_order_relaxed);
			break;
		}
	}
	rmpsc_ring_close(bs->r);
	return NULL;
}

static bool run_ok(const rmpsc_borrow *b, uint64_t first)
{
	const uint64_t *v = b->data;

	for (uint32_t i = 0; i < b->count; i++)
		if (v[i] != first + i)
			return false;
	return true;
}

static void test_ring_stress_borrow_out_of_order_commits_preserve_sequence(void **state)
{
	enum { HOLD = 8 };
	struct borrow_stress bs = { .total = STRESS_SCALE(3000000ull, 1000000ull, 300000ull) };
	rmpsc_borrow held[HOLD];
	uint64_t first[HOLD], next = 0, rng = stress_seed() ^ 0x626f72ull, commits = 0;
	unsigned nheld = 0;
	rmpsc_ring_config cfg;
	double t0 = now_sec();
	pthread_t prod;
	int rc;

	(void)state;
	assert_int_equal(rmpsc_ring_config_init(&cfg, sizeof cfg), 0);
	cfg.capacity = 32;
	assert_int_equal(rmpsc_ring_create(&cfg, &bs.r), 0);
	assert_int_equal(pthread_create(&prod, NULL, borrow_producer, &bs), 0);
	for (;;) {
		rmpsc_borrow b;

		rc = nheld < HOLD ? rmpsc_ring_borrow(bs.r, 1 + (uint32_t)(xs_next(&rng) >> 61), &b)
				  : -EAGAIN;
		if (rc > 0) {
			if (!run_ok(&b, next)) {
				fail_msg("borrowed run at %" PRIu64 " out of sequence", next);
				break;
			}
			first[nheld] = next;
			held[nheld++] = b;
			next += (uint64_t)rc;
			continue;
		}
		if (rc == -EPIPE)
			break;
		if (rc != -EAGAIN) {
			fail_msg("borrow returned %d", rc);
			break;
		}
		if (nheld) {
			/* Commit a random one; its elements must still be ours. */
			unsigned k = (unsigned)((xs_next(&rng) >> 32) % nheld);

			if (!run_ok(&held[k], first[k])) {
				fail_msg("slots of a held borrow were overwritten");
				break;
			}
			assert_int_equal(rmpsc_ring_borrow_commit(bs.r, held[k].token), 0);
			assert_int_equal(rmpsc_ring_borrow_commit(bs.r, held[k].token), -EINVAL);
			held[k] = held[nheld - 1];
			first[k] = first[nheld - 1];
			nheld--;
			commits++;
		} else {
			sched_yield();
		}
	}
	pthread_join(prod, NULL);
	assert_int_equal(atomic_load_explicit(&bs.failed, memory_order_relaxed), 0);
	assert_int_equal(next, bs.total);
	assert_int_equal(nheld, 0);
	assert_int_equal(rmpsc_ring_len(bs.r), 0);
	printf("%s [%s]: %" PRIu64 " items in %" PRIu64 " out-of-order commits: %.2f s\n",
	       __func__, STRESS_BUILD, next, commits, now_sec() - t0);
	rmpsc_ring_destroy(bs.r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ring_stress_mixed_api_u64_small_ring_preserves_sequence),
		cmocka_unit_test(test_ring_stress_borrow_out_of_order_commits_preserve_sequence),
		cmocka_unit_test(test_ring_stress_elem24_payload_arrives_intact),
		cmocka_unit_test(test_ring_stress_elem5_unaligned_slots_arrive_intact),
		cmocka_unit_test(test_ring_stress_positions_across_u64_wrap_preserve_sequence),
		cmocka_unit_test(test_ring_stress_tiny_capacities_preserve_sequence),
		cmocka_unit_test(test_ring_stress_close_during_push_delivers_every_success),
	};

	return cmocka_run_group_tests_name("stress_ring", tests, NULL, NULL);
}
