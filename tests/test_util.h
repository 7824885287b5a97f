/* SPDX-License-Identifier: MIT */
/*
 * test_util.h: what every test and stress driver of tests/ shares, written
 * once: error names and the return-code assertion, cases that differ only
 * in their parameters, sentinel and foreign handles, rings of 8-byte values
 * and their fixture, producers of either channel, spans, wait strategies,
 * the sanitizer scale of the item counts, the clock, and the stress
 * drivers' seed, random numbers, batch sizes, first-failure record and
 * watchdog.
 *
 * Include it after the system headers and <cmocka.h> (which needs
 * <stdarg.h>, <stddef.h> and <setjmp.h> first). Everything here is static
 * inline or a macro, so a file that uses only part of it gets no
 * unused-function warning. A stress driver that wants stress_seed()
 * defines STRESS_SEED, its default seed, before the include.
 */
#ifndef RMPSC_TESTS_TEST_UTIL_H
#define RMPSC_TESTS_TEST_UTIL_H

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "test_base.h"
#include "ringmpsc/channel.h"
#include "ringmpsc/ring.h"
#include "ringmpsc/wait.h"

/* ---- the build: item counts scaled for the sanitizers ------------------- */

#if defined(__SANITIZE_THREAD__)
#define TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TEST_TSAN 1
#endif
#endif

/* Counts: full size, under ASan+UBSan, under TSan (each case well below a
 * minute on two cores). RMPSC_TEST_SANITIZED comes from tests/CMakeLists.txt. */
#if defined(TEST_TSAN)
#define STRESS_SCALE(normal, asan, tsan) (tsan)
#define STRESS_BUILD "tsan"
#elif defined(RMPSC_TEST_SANITIZED)
#define STRESS_SCALE(normal, asan, tsan) (asan)
#define STRESS_BUILD "asan"
#else
#define STRESS_SCALE(normal, asan, tsan) (normal)
#define STRESS_BUILD "plain"
#endif

/* ---- return codes -------------------------------------------------------- */

/* The name of a code the library returns, for failure messages. */
static inline const char *errname(long long v)
{
	switch (v) {
	case 0: return "0";
	case -EINVAL: return "-EINVAL";
	case -EBADF: return "-EBADF";
	case -EAGAIN: return "-EAGAIN";
	case -EPIPE: return "-EPIPE";
	case -ETIMEDOUT: return "-ETIMEDOUT";
	case -ENOMEM: return "-ENOMEM";
	case -E2BIG: return "-E2BIG";
	case -ENOSPC: return "-ENOSPC";
	case -ENOENT: return "-ENOENT";
	case -EBUSY: return "-EBUSY";
	case -EDEADLK: return "-EDEADLK";
	case -EIO: return "-EIO";
	case -EEXIST: return "-EEXIST";
	case -EMFILE: return "-EMFILE";
	case -ENFILE: return "-ENFILE";
	case -EINTR: return "-EINTR";
	case -EOPNOTSUPP: return "-EOPNOTSUPP";
	case -ENOBUFS: return "-ENOBUFS";
	case -ESTALE: return "-ESTALE";
	case -EMSGSIZE: return "-EMSGSIZE";
	case -EPROTO: return "-EPROTO";
	default: return v < 0 ? "negative" : "positive";
	}
}

/* Compare a return value as a signed number and name error codes. */
#define assert_ret(expr, want)                                                 \
	do {                                                                   \
		const long long got_ = (long long)(expr);                      \
		const long long want_ = (long long)(want);                     \
		if (got_ != want_) {                                           \
			print_error("%s = %lld (%s), expected %lld (%s)\n",   \
				    #expr, got_, errname(got_), want_,         \
				    errname(want_));                           \
			fail();                                                \
		}                                                              \
	} while (0)

/* ---- cases that differ only in their parameters ------------------------------- */

/*
 * A cmocka case run by @fn with *state set to @param (an integer or a
 * pointer to a case's parameters): a family of cases keeps one function,
 * and every case its own name.
 */
#define TEST_PARAM(name, fn, param) { #name, (fn), NULL, NULL, (void *)(uintptr_t)(param) }

/* The integer a TEST_PARAM case was given. */
static inline uintptr_t test_param(void **state)
{
	return (uintptr_t)*state;
}

/* ---- handles that are not handles --------------------------------------- */

/* A non-NULL pointer that a failing constructor must overwrite with NULL
 * (64 zero bytes: also "not a handle" where one is passed in). */
static inline void *test_sentinel(void)
{
	static unsigned char obj[64];

	return obj;
}
#define SENTINEL_OF(T) ((T *)test_sentinel())

/* Not a handle of any type: aligned for any handle struct (UBSan checks the
 * alignment of the magic-word read), filled with a foreign magic. */
static inline void *test_foreign(void)
{
	static _Alignas(4096) unsigned char obj[4096] = "NOTAHANDLE";

	return obj;
}
#define FOREIGN(T) ((T *)test_foreign())

/* A handle a constructor just wrote over @sentinel: live, returned. */
static inline void *assert_handle(void *h, const void *sentinel)
{
	assert_non_null(h);
	assert_ptr_not_equal(h, sentinel);
	return h;
}

/* ---- rings of 8-byte values ------------------------------------------------ */

/* A ring of @cap slots of @esz bytes; @flags and @slots as in the config. */
static inline rmpsc_ring *ring_make(uint32_t cap, uint32_t esz, uint32_t flags, uint32_t slots)
{
	rmpsc_ring_config cfg;
	rmpsc_ring *r = SENTINEL_OF(rmpsc_ring);

	assert_ret(rmpsc_ring_config_init(&cfg, sizeof cfg), 0);
	cfg.capacity = cap;
	cfg.elem_size = esz;
	cfg.flags = flags;
	cfg.slots = slots;
	assert_ret(rmpsc_ring_create(&cfg, &r), 0);
	return assert_handle(r, SENTINEL_OF(rmpsc_ring));
}

/* A cmocka fixture: a ring of @cap slots of 8 bytes in *state. */
static inline int ring_fixture(void **state, uint32_t cap)
{
	*state = ring_make(cap, 8, 0, 0);
	return 0;
}

static inline int ring_fixture_free(void **state)
{
	rmpsc_ring_destroy(*state);
	return 0;
}

/* One element onto or off a handle of any kind: a one-line adapter of a
 * push or pop call, so that one loop serves every kind. */
typedef int (*put1_fn)(void *h, const void *item);
typedef int (*take1_fn)(void *h, void *item);

/* Put the 8-byte values first, first + 1, ... one at a time. */
static inline void seq_put(put1_fn put, void *h, uint64_t first, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		const uint64_t v = first + i;

		assert_ret(put(h, &v), 0);
	}
}

/* Take @n values one at a time: they must be first, first + 1, ... */
static inline void seq_take(take1_fn take, void *h, uint64_t first, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		uint64_t v = ~0ull;

		assert_ret(take(h, &v), 0);
		assert_int_equal(v, first + i);
	}
}

static inline int ring_put1(void *h, const void *item)
{
	return rmpsc_ring_push(h, item);
}

static inline int ring_take1(void *h, void *item)
{
	return rmpsc_ring_pop(h, item);
}

static inline void ring_push_seq(rmpsc_ring *r, uint64_t first, uint32_t n)
{
	seq_put(ring_put1, r, first, n);
}

static inline void ring_pop_seq(rmpsc_ring *r, uint64_t first, uint32_t n)
{
	seq_take(ring_take1, r, first, n);
}

/* ---- channels --------------------------------------------------------------- */

/* Register a producer with an MPSC channel, or with an MPMC one (@mpmc):
 * it must get the id @want_id, and its handle report it. */
static inline rmpsc_producer *producer_new(void *ch, bool mpmc, int want_id)
{
	rmpsc_producer *p = SENTINEL_OF(rmpsc_producer);
	const int rc = mpmc ? rmpsc_mpmc_register_producer(ch,
							   &p) : rmpsc_mpsc_register(ch,
								&p);

	assert_ret(rc, want_id);
	assert_handle(p, SENTINEL_OF(rmpsc_producer));
	assert_ret(rmpsc_producer_id(p), want_id);
	return p;
}

static inline int producer_put1(void *h, const void *item)
{
	return rmpsc_producer_push(h, item);
}

/* ---- spans ------------------------------------------------------------------ */

/* Element @i of the span @s, elements of @esz bytes (two segments). */
static inline unsigned char *span_at(const rmpsc_span *s, uint32_t esz, uint32_t i)
{
	if (i < s->count[0])
		return (unsigned char *)s->iov[0].iov_base + (size_t)i * esz;
	return (unsigned char *)s->iov[1].iov_base + (size_t)(i - s->count[0]) * esz;
}

/* The 8-byte element @i of @s, read and written by copy (no alignment
 * assumed). */
static inline uint64_t span_get_u64(const rmpsc_span *s, uint32_t i)
{
	uint64_t v;

	memcpy(&v, span_at(s, 8, i), sizeof v);
	return v;
}

static inline void span_put_u64(const rmpsc_span *s, uint32_t i, uint64_t v)
{
	memcpy(span_at(s, 8, i), &v, sizeof v);
}

/* The values @v[0..n) are first, first + 1, ... */
static inline void vals_expect(const uint64_t *v, uint64_t first, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		assert_int_equal(v[i], first + i);
}

/* ---- wait strategies ------------------------------------------------------- */

static inline const char *wait_kind_name(uint32_t k)
{
	static const char *const names[] = { "SPIN",  "YIELD",    "SLEEP",
					     "BLOCK", "DEADLINE", "BACKOFF" };

	return k < sizeof names / sizeof names[0] ? names[k] : "?";
}

/* A valid strategy of @kind: @spin polls (not for SPIN, which spins all
 * along), @yield yields, and the given sleep_ns (> 0) and timeout_ns
 * (>= 0), else the defaults. */
static inline rmpsc_wait wait_make(uint32_t kind, uint32_t spin, uint32_t yield,
				   int64_t sleep,
				   int64_t timeout)
{
	rmpsc_wait w;

	assert_int_equal(rmpsc_wait_init(&w, sizeof w, kind), 0);
	if (kind != RMPSC_WAIT_SPIN)
		w.spin_count = spin;
	w.yield_count = yield;
	if (sleep > 0)
		w.sleep_ns = sleep;
	if (timeout >= 0)
		w.timeout_ns = timeout;
	assert_int_equal(rmpsc_wait_validate(&w), 0);
	return w;
}

/* ---- clock ---------------------------------------------------------------- */

static inline int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

/* Sleep @ns in full: a signal only resumes the sleep with what is left. */
static inline void sleep_ns(int64_t ns)
{
	struct timespec ts = { .tv_sec = ns / 1000000000ll, .tv_nsec = ns % 1000000000ll };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ---- randomness of the stress drivers ------------------------------------- */

#ifdef STRESS_SEED
/* RMPSC_STRESS_SEED (any strtoull base) or the driver's STRESS_SEED, odd. */
static inline uint64_t stress_seed(void)
{
	const char *e = getenv("RMPSC_STRESS_SEED");

	if (e && *e)
		return strtoull(e, NULL, 0) | 1;
	return STRESS_SEED;
}
#endif

/* 1..max: three times in four a batch of at most @small, else up to max. */
static inline uint32_t pick_n(uint64_t *rng, uint32_t small, uint32_t max)
{
	const uint64_t x = xs_next(rng) >> 16;
	const uint32_t lim = (x & 3) ? (max < small ? max : small) : max;

	return 1 + (uint32_t)((x >> 2) % lim);
}

/*
 * The first failure of a multi-threaded run: the caller whose exchange
 * takes *failed from 0 to 1 formats its message into @msg; later ones are
 * dropped (they are consequences). Then @after(@arg, first) runs for every
 * caller (stop the threads, close what they may sleep on); first is 1 for
 * the one that recorded the message.
 */
__attribute__((format(printf, 6, 7))) static inline void
fail_record(atomic_int *failed, char *msg, size_t len, void (*after)(void *arg, int first),
	    void *arg, const char *fmt, ...)
{
	int zero = 0;
	const int first = atomic_compare_exchange_strong_explicit(
		failed, &zero, 1, memory_order_acq_rel, memory_order_relaxed);

	if (first) {
		va_list ap;

		va_start(ap, fmt);
		vsnprintf(msg, len, fmt, ap);
		va_end(ap);
	}
	after(arg, first);
}

/*
 * The stress drivers' watchdog: poll until @done(@arg), in naps from 20 us
 * doubling up to @nap_max, while the sum @progress(@arg) moves. When it
 * has not moved for @sec seconds, @stall(@arg, first) runs (first: say
 * where every thread is, record the failure, free the sleepers) and the
 * clock starts again; a second stall returns false (the caller leaves the
 * threads running: they may still touch their memory).
 */
struct watchdog {
	bool (*done)(void *arg);
	uint64_t (*progress)(void *arg);
	void (*stall)(void *arg, bool first);
	void *arg;
	int sec;
	int64_t nap_max;
};

static inline bool watchdog_run(const struct watchdog *w)
{
	uint64_t last = UINT64_MAX;
	int64_t since = now_ns(), nap = 20000;
	bool stalled = false;

	while (!w->done(w->arg)) {
		const uint64_t p = w->progress(w->arg);
		const int64_t t = now_ns();

		if (p != last) {
			last = p;
			since = t;
		} else if (t - since > (int64_t)w->sec * 1000000000ll) {
			w->stall(w->arg, !stalled);
			if (stalled)
				return false;
			stalled = true;
			since = t;
		}
		sleep_ns(nap);
		if (nap < w->nap_max)
			nap *= 2;
	}
	return true;
}

/* fail_record() for a run's state @s with members failed and msg. */
#define FAIL_RECORD(s, after, ...)                                             \
	fail_record(&(s)->failed, (s)->msg, sizeof (s)->msg, (after), (s), __VA_ARGS__)

#endif /* RMPSC_TESTS_TEST_UTIL_H */
