/* SPDX-License-Identifier: MIT */
/*
 * test_table.h: table-driven argument and handle checks, as DPDK's ring
 * tests drive their cases from tables. Each handle type (and each config
 * or caller-owned struct) has one table; a row is a call with one thing
 * wrong (an argument, or the handle itself), a readable name and the code
 * the call must return. tt_run() makes the call on a fresh fixture, asks
 * the table whether the refused call left everything as it was, and names
 * the row, the value, what it got and what it expected for every row that
 * fails; the case fails once all rows ran.
 *
 * A row runs on
 *  - a live fixture: the table's setup(row->state) makes it (a ring with
 *    row->state elements queued, say), its check() looks at it afterwards;
 *  - TT_BAD: every "handle" of the table's list of things that are not a
 *    live handle of its type (NULL, a zeroed page, a foreign magic, a
 *    destroyed magic, another type's live handle), each with a check that
 *    the call wrote nothing into it.
 * A row may list values (TT_VALS) or a range of them (TT_RANGE): the call
 * runs once per value, which it takes as its second argument (a size, a
 * count, an index into a list of bad strategies); a value that does not
 * apply returns TT_SKIP.
 *
 * TT_VERBOSE=1 in the environment lists every row with its count of checks.
 *
 * Include after test_util.h.
 */
#ifndef RMPSC_TESTS_TEST_TABLE_H
#define RMPSC_TESTS_TEST_TABLE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ringmpsc/channel.h"
#include "ringmpsc/ring.h"
#include "ringmpsc/wait.h"

#include "test_core.h" /* the destroyed-handle magic */

/* ---- rows and tables ------------------------------------------------------- */

typedef int64_t (*tt_fn)(void *h, uint64_t v);

struct tt_row {
	const char *name; /* the call and what is wrong with it */
	tt_fn call;
	int64_t want;
	uint32_t state;      /* the table's fixture state, or TT_BAD */
	uint32_t nv;         /* values in v[] */
	const uint64_t *v;   /* NULL: the range [lo, hi), or once with 0 */
	uint64_t lo, hi;
};

/* Run the row on every bad handle of the table. */
#define TT_BAD UINT32_MAX
/* A value the call does not apply to (not counted). */
#define TT_SKIP INT64_MIN

/* A row: name, call, expected code, then the state (or TT_BAD) and, if
 * the call takes them, its values. */
#define TT_ROW(name_, call_, want_, ...)                                       \
	{ .name = (name_), .call = (call_), .want = (want_), .state = __VA_ARGS__ }
#define TT_VALS(...)                                                           \
	.v = (const uint64_t[]){ __VA_ARGS__ },                                \
	.nv = sizeof((const uint64_t[]){ __VA_ARGS__ }) / sizeof(uint64_t)
#define TT_RANGE(from, to) .lo = (from), .hi = (to)
/* Once, with 0 (for a macro that must pass something). */
#define TT_ONCE .nv = 0

/* Something passed where a handle of the table's type belongs. */
struct tt_handle {
	const char *name;
	void *(*make)(void);
	const char *(*check)(void *h); /* after a call: NULL, or what changed */
	void (*drop)(void *h);
};

struct tt_table {
	const char *name;
	const struct tt_row *rows;
	size_t nrows;
	/* live fixture for rows that are not TT_BAD */
	void *(*setup)(uint32_t state);
	const char *(*check)(void *h, const struct tt_row *row, int64_t got);
	void (*teardown)(void *h);
	/* for the TT_BAD rows */
	const struct tt_handle *bad;
	size_t nbad;
	/* around the whole run (NULL: nothing), for what every row shares */
	void (*begin)(void);
	void (*end)(void);
};

/*
 * A case @fn that runs the table given by the designated initializers that
 * follow: .name, TT_ROWS(rows), .setup, .check, .teardown, TT_BADS(list),
 * .begin, .end.
 */
#define TT_TEST(fn, ...)                                                       \
	static void fn(void **state)                                           \
	{                                                                      \
		static const struct tt_table t_ = { __VA_ARGS__ };             \
                                                                               \
		(void)state;                                                   \
		tt_run(&t_);                                                   \
	}
#define TT_ROWS(r) .rows = (r), .nrows = TT_N(r)
#define TT_BADS(b) .bad = (b), .nbad = TT_N(b)

#define TT_N(a) (sizeof(a) / sizeof((a)[0]))

/* A row's call in one expression of the handle @h and the value @v. */
#define TT_CALL(name, expr)                                                    \
	static int64_t name(void *h, uint64_t v)                               \
	{                                                                      \
		(void)h;                                                       \
		(void)v;                                                       \
		return (expr);                                                 \
	}

/* What an adapter found wrong besides the code (e.g. *out not set to NULL);
 * the driver reports it with the row. */
static inline const char **tt_note(void)
{
	static const char *note;

	return &note;
}

/* Outside a table: assert that @call, an adapter, returns @want and noted
 * nothing wrong. */
#define TT_EXPECT(call, want)                                                  \
	do {                                                                   \
		*tt_note() = NULL;                                             \
		assert_ret((call), (want));                                    \
		if (*tt_note())                                                \
			fail_msg("%s: %s", #call, *tt_note());                 \
	} while (0)

/* In an adapter: a constructor's result. On error *out must be NULL; on
 * success a handle (not @sentinel, the value *out had before), which the
 * caller then destroys: 1. */
static inline int tt_created(int rc, const void *out, const void *sentinel)
{
	if (rc != 0 && out != NULL && *tt_note() == NULL)
		*tt_note() = "*out not set to NULL on error";
	if (rc == 0 && (out == NULL || out == sentinel) && *tt_note() == NULL)
		*tt_note() = "success without a handle";
	return rc == 0 && out != NULL && out != sentinel;
}

/*
 * The adapter @fname(h, v) of a constructor row: @make(h, &out) makes a @T
 * from @h (a config, or the channel a handle registers with). On error
 * *out must be NULL; on success it is a new handle, for which @fresh(out)
 * must hold, and @undo(out) frees it again. Returns make's code.
 */
#define TT_CONSTRUCTOR(fname, T, make, fresh, undo)                            \
	static int64_t fname(void *h, uint64_t v)                              \
	{                                                                      \
		T *o_ = (T *)test_sentinel();                                  \
		const int rc_ = make(h, &o_);                                  \
                                                                               \
		(void)v;                                                       \
		if (tt_created(rc_, o_, test_sentinel())) {                    \
			if (!fresh(o_))                                        \
				*tt_note() = "the new handle is not as new";   \
			undo(o_);                                              \
		}                                                              \
		return rc_;                                                    \
	}

/* @fresh for handles with nothing to look at. */
static inline int tt_any(const void *h)
{
	(void)h;
	return 1;
}

/* Write the 32-bit field at byte @off of the struct at @base (a config
 * field a row changes). */
static inline void tt_put(void *base, size_t off, uint64_t v)
{
	const uint32_t x = (uint32_t)v;

	memcpy((unsigned char *)base + off, &x, sizeof x);
}

static inline uint64_t tt_value(const struct tt_row *r, uint64_t i)
{
	return r->v ? r->v[i] : r->lo + i;
}

static inline uint64_t tt_values(const struct tt_row *r)
{
	if (r->v)
		return r->nv;
	return r->hi > r->lo ? r->hi - r->lo : 1;
}

/* One call: compare, collect what the checks say, report. 1 if it failed. */
static inline int tt_one(const struct tt_table *t, const struct tt_row *r, uint64_t v,
			 const char *hname, int64_t got, const char *what)
{
	if (got == r->want && !what)
		return 0;
	print_error("%s: row \"%s\" (value %llu, handle %s): got %lld (%s), expected "
		    "%lld (%s)%s%s\n",
		    t->name, r->name, (unsigned long long)v, hname, (long long)got,
		    errname(got), (long long)r->want, errname(r->want), what ? "; " : "",
		    what ? what : "");
	return 1;
}

/* A row on every handle of the table's list of bad ones. */
static inline void tt_run_bad(const struct tt_table *t, const struct tt_row *r,
			      unsigned long *checks, unsigned long *fails)
{
	assert_true(t->nbad > 0);
	for (size_t k = 0; k < t->nbad; k++) {
		const struct tt_handle *b = &t->bad[k];
		void *h = b->make();

		for (uint64_t j = 0; j < tt_values(r); j++) {
			const uint64_t v = tt_value(r, j);
			const char *what;
			int64_t got;

			*tt_note() = NULL;
			got = r->call(h, v);
			if (got == TT_SKIP)
				continue;
			what = *tt_note();
			if (!what && b->check)
				what = b->check(h);
			++*checks;
			*fails += (unsigned)tt_one(t, r, v, b->name, got, what);
		}
		if (b->drop)
			b->drop(h);
	}
}

/* A row on a fresh live fixture per value. */
static inline void tt_run_live(const struct tt_table *t, const struct tt_row *r,
			       unsigned long *checks, unsigned long *fails)
{
	for (uint64_t j = 0; j < tt_values(r); j++) {
		const uint64_t v = tt_value(r, j);
		void *h = t->setup(r->state);
		const char *what;
		int64_t got;

		*tt_note() = NULL;
		got = r->call(h, v);
		if (got != TT_SKIP) {
			what = *tt_note();
			if (!what && t->check)
				what = t->check(h, r, got);
			++*checks;
			*fails += (unsigned)tt_one(t, r, v, "live", got, what);
		}
		if (t->teardown)
			t->teardown(h);
	}
}

/* Run every row of @t; fail the case if any check failed. */
static inline void tt_run(const struct tt_table *t)
{
	const char *verbose = getenv("TT_VERBOSE");
	unsigned long checks = 0, fails = 0;

	if (t->begin)
		t->begin();
	for (size_t i = 0; i < t->nrows; i++) {
		const struct tt_row *r = &t->rows[i];
		const unsigned long before = checks;

		if (r->state == TT_BAD)
			tt_run_bad(t, r, &checks, &fails);
		else
			tt_run_live(t, r, &checks, &fails);
		if (verbose && *verbose)
			print_message("    %s: %s: %lu checks\n", t->name, r->name, checks - before);
	}
	if (t->end)
		t->end();
	print_message("  %s: %zu rows, %lu checks\n", t->name, t->nrows, checks);
	if (fails)
		fail_msg("%s: %lu of %lu checks failed", t->name, fails, checks);
}

/* ---- handles that are not handles ------------------------------------------ */

/* One page for the fake handles, and what it held before the call. */
static inline unsigned char *tt_page(void)
{
	static _Alignas(4096) unsigned char page[4096];

	return page;
}

static inline unsigned char *tt_page_copy(void)
{
	static unsigned char copy[4096];

	return copy;
}

/* Fill the page from @src (or zeros), keep a copy, return it. */
static inline void *tt_page_with(const void *src, size_t len, int fill)
{
	memset(tt_page(), fill, 4096);
	if (src)
		memcpy(tt_page(), src, len);
	memcpy(tt_page_copy(), tt_page(), 4096);
	return tt_page();
}

static inline const char *tt_page_check(void *h)
{
	(void)h;
	return memcmp(tt_page(), tt_page_copy(), 4096) ? "the call wrote into the fake handle"
						       : NULL;
}

static inline void *tt_make_null(void)
{
	return NULL;
}

static inline void *tt_make_zeroed(void)
{
	return tt_page_with(NULL, 0, 0);
}

/* test_util.h's foreign object ("NOTAHANDLE"), copied into the page. */
static inline void *tt_make_foreign(void)
{
	return tt_page_with(test_foreign(), 4096, 0);
}

/* What destroy leaves: the destroyed magic over other bytes. */
static inline void *tt_make_dead(void)
{
	unsigned char b[4096];
	const uint32_t dead = tc_magic_dead();

	memset(b, 0x5c, sizeof b);
	memcpy(b, &dead, sizeof dead);
	return tt_page_with(b, sizeof b, 0);
}

#define TT_HANDLE_NULL { "NULL", tt_make_null, NULL, NULL }
#define TT_HANDLE_ZEROED { "zeroed page", tt_make_zeroed, tt_page_check, NULL }
#define TT_HANDLE_FOREIGN { "foreign magic", tt_make_foreign, tt_page_check, NULL }
#define TT_HANDLE_DEAD { "destroyed magic", tt_make_dead, tt_page_check, NULL }
/* The four every handle type refuses, whatever else it lists. */
#define TT_HANDLES_NOT_A_HANDLE TT_HANDLE_NULL, TT_HANDLE_ZEROED, TT_HANDLE_FOREIGN, TT_HANDLE_DEAD

/* ---- the struct tables' buffer ------------------------------------------------ */

/*
 * The tables of configs and strategies keep the struct at the start of one
 * buffer, larger than any size a row tries. State 0 (TT_STRUCT_CANARY)
 * fills it with TT_CANARY bytes for the init rows: a refused init must
 * leave every byte (tt_struct_check()). Any other state: zeros, and the
 * table writes its defaults at the start.
 */
enum { TT_STRUCT_CANARY = 0, TT_CANARY = 0xa5, TT_STRUCT_BYTES = 8192 + 64 };

static inline void *tt_struct(uint32_t state)
{
	static _Alignas(64) unsigned char b[TT_STRUCT_BYTES];

	memset(b, state == TT_STRUCT_CANARY ? TT_CANARY : 0, sizeof b);
	return b;
}

static inline const char *tt_struct_check(void *h, const struct tt_row *row, int64_t got)
{
	const unsigned char *b = h;

	(void)got;
	if (row->state != TT_STRUCT_CANARY)
		return NULL;
	for (size_t i = 0; i < TT_STRUCT_BYTES; i++)
		if (b[i] != TT_CANARY)
			return "init wrote into a struct it refused";
	return NULL;
}

/* ---- strategies that are refused ------------------------------------------- */

/*
 * Strategies rmpsc_wait_validate() refuses with -EINVAL, one way of being
 * wrong each: the kind, the size, SLEEP's sleep_ns, DEADLINE's timeout_ns.
 */
enum { TT_WAIT_EINVAL_N = 18 };

static inline const rmpsc_wait *tt_wait_einval(uint64_t i)
{
	static rmpsc_wait w;
	uint32_t kind = RMPSC_WAIT_BLOCK;
	static const uint32_t kinds[] = { RMPSC_WAIT_KIND_MAX + 1, 7, 77, 99, 1000,
					  UINT32_MAX };
	static const uint32_t sizes[] = { 0, 4, 8, 12, 24, 28, 36 };
	static const int64_t sleeps[] = { 0, -1, -5, 1000000001ll, 2000000000ll };

	if (i >= 6 + 7 && i < 6 + 7 + 5)
		kind = RMPSC_WAIT_SLEEP;
	else if (i == 6 + 7 + 5)
		kind = RMPSC_WAIT_DEADLINE;
	assert_int_equal(rmpsc_wait_init(&w, sizeof w, kind), 0);
	if (i < 6)
		w.kind = kinds[i];
	else if (i < 6 + 7)
		w.size = sizes[i - 6];
	else if (i < 6 + 7 + 5)
		w.sleep_ns = sleeps[i - 13];
	else
		w.timeout_ns = -1;
	assert_true(i < TT_WAIT_EINVAL_N);
	return &w;
}

/*
 * A newer caller's larger strategy with a non-zero byte past what this
 * library knows (-E2BIG): the first and the last byte of the tail, at
 * sizes 40, 48 and 64.
 */
enum { TT_WAIT_E2BIG_N = 4 };

static inline const rmpsc_wait *tt_wait_e2big(uint64_t i)
{
	static union {
		rmpsc_wait w;
		unsigned char b[64];
	} u;
	static const struct {
		uint32_t size, at;
		unsigned char byte;
	} t[TT_WAIT_E2BIG_N] = { { 40, 32, 1 }, { 40, 39, 0x80 }, { 48, 40, 1 }, { 64, 63, 1 } };

	assert_true(i < TT_WAIT_E2BIG_N);
	memset(u.b, 0, sizeof u.b);
	assert_int_equal(rmpsc_wait_init(&u.w, t[i].size, RMPSC_WAIT_BLOCK), 0);
	u.b[t[i].at] = t[i].byte;
	return &u.w;
}

/* A refused strategy for the rows that take one: v indexes
 * tt_wait_einval(), from 100 on tt_wait_e2big(). */
static inline const rmpsc_wait *tt_bad_wait(uint64_t v)
{
	return v >= 100 ? tt_wait_e2big(v - 100) : tt_wait_einval(v);
}

#define TT_WAIT_EINVAL_ALL TT_RANGE(0, TT_WAIT_EINVAL_N)
#define TT_WAIT_E2BIG_ALL TT_RANGE(100, 100 + TT_WAIT_E2BIG_N)

/* ---- the producer calls: one set for every producer handle ------------------- */

/*
 * ring.h's producer calls exist under the same names for the MPSC/MPMC
 * producer (rmpsc_producer_*) and the SPMC channel (rmpsc_spmc_*), with
 * the same argument checks. TT_PRODUCER_CALLS(obj) makes their adapters
 * tt_<obj>_* once for either, TT_PRODUCER_ROWS(obj) lists the rows: each
 * call with a bad handle (TT_BAD), and on the table's live fixture in
 * state 0 with a NULL pointer, nothing reserved, a count above INT32_MAX
 * or a refused strategy. The _timed reserve (not an SPMC call) has its own
 * pair, TT_RESERVE_TIMED_CALLS / _ROWS.
 */
static inline uint64_t *tt_items(void)
{
	static uint64_t v[4] = { 1, 2, 3, 4 };

	return v;
}

static inline rmpsc_span *tt_span(void)
{
	static rmpsc_span s;

	return &s;
}

#define TT_PRODUCER_CALLS(obj)                                                 \
	TT_CALL(tt_##obj##_reserve, rmpsc_##obj##_reserve(h, 1, tt_span()))    \
	TT_CALL(tt_##obj##_commit, rmpsc_##obj##_commit(h, (uint32_t)v))       \
	TT_CALL(tt_##obj##_push, rmpsc_##obj##_push(h, tt_items()))            \
	TT_CALL(tt_##obj##_push_n, rmpsc_##obj##_push_n(h, tt_items(), (uint32_t)v)) \
	TT_CALL(tt_##obj##_push_timed, rmpsc_##obj##_push_timed(h, tt_items(), 0, NULL)) \
	TT_CALL(tt_##obj##_push_n_timed,                                       \
		rmpsc_##obj##_push_n_timed(h, tt_items(), (uint32_t)v, 0, NULL)) \
	TT_CALL(tt_##obj##_reserve_null, rmpsc_##obj##_reserve(h, 1, NULL))    \
	TT_CALL(tt_##obj##_push_null, rmpsc_##obj##_push(h, NULL))             \
	TT_CALL(tt_##obj##_push_n_null, rmpsc_##obj##_push_n(h, NULL, 1))      \
	TT_CALL(tt_##obj##_push_timed_null, rmpsc_##obj##_push_timed(h, NULL, 0, NULL)) \
	TT_CALL(tt_##obj##_push_n_timed_null,                                  \
		rmpsc_##obj##_push_n_timed(h, NULL, 1, 0, NULL))               \
	TT_CALL(tt_##obj##_push_timed_w,                                       \
		rmpsc_##obj##_push_timed(h, tt_items(), 0, tt_bad_wait(v)))    \
	TT_CALL(tt_##obj##_push_n_timed_w,                                     \
		rmpsc_##obj##_push_n_timed(h, tt_items(), 1, 0, tt_bad_wait(v)))

#define TT_PRODUCER_ROWS(obj)                                                  \
	TT_ROW("reserve", tt_##obj##_reserve, -EBADF, TT_BAD),                 \
	TT_ROW("commit", tt_##obj##_commit, -EBADF, TT_BAD, TT_VALS(1, 0)),    \
	TT_ROW("push", tt_##obj##_push, -EBADF, TT_BAD),                       \
	TT_ROW("push_n", tt_##obj##_push_n, -EBADF, TT_BAD, TT_VALS(2, 0)),    \
	TT_ROW("push_timed", tt_##obj##_push_timed, -EBADF, TT_BAD),           \
	TT_ROW("push_n_timed", tt_##obj##_push_n_timed, -EBADF, TT_BAD, TT_VALS(2)), \
	TT_ROW("reserve: out NULL", tt_##obj##_reserve_null, -EINVAL, 0),      \
	TT_ROW("push: item NULL", tt_##obj##_push_null, -EINVAL, 0),           \
	TT_ROW("push_n: items NULL", tt_##obj##_push_n_null, -EINVAL, 0),      \
	TT_ROW("commit: nothing reserved", tt_##obj##_commit, -EINVAL, 0, TT_VALS(1)), \
	TT_ROW("push_timed: item NULL", tt_##obj##_push_timed_null, -EINVAL, 0), \
	TT_ROW("push_n_timed: items NULL", tt_##obj##_push_n_timed_null, -EINVAL, 0), \
	TT_ROW("push_n_timed: n above INT32_MAX", tt_##obj##_push_n_timed, -EINVAL, 0, \
	       TT_VALS(UINT32_MAX, (uint64_t)INT32_MAX + 1)),                  \
	TT_ROW("push_timed: w invalid", tt_##obj##_push_timed_w, -EINVAL, 0,   \
	       TT_WAIT_EINVAL_ALL),                                            \
	TT_ROW("push_n_timed: w invalid", tt_##obj##_push_n_timed_w, -EINVAL, 0, \
	       TT_WAIT_EINVAL_ALL),                                            \
	TT_ROW("push_timed: w too large", tt_##obj##_push_timed_w, -E2BIG, 0,  \
	       TT_WAIT_E2BIG_ALL),                                             \
	TT_ROW("push_n_timed: w too large", tt_##obj##_push_n_timed_w, -E2BIG, 0, \
	       TT_WAIT_E2BIG_ALL)

#define TT_RESERVE_TIMED_CALLS(obj)                                            \
	TT_CALL(tt_##obj##_reserve_timed,                                      \
		rmpsc_##obj##_reserve_timed(h, 1, tt_span(), 0, NULL))         \
	TT_CALL(tt_##obj##_reserve_timed_null,                                 \
		rmpsc_##obj##_reserve_timed(h, 1, NULL, 0, NULL))              \
	TT_CALL(tt_##obj##_reserve_timed_w,                                    \
		rmpsc_##obj##_reserve_timed(h, 1, tt_span(), 0, tt_bad_wait(v)))

#define TT_RESERVE_TIMED_ROWS(obj)                                             \
	TT_ROW("reserve_timed", tt_##obj##_reserve_timed, -EBADF, TT_BAD),     \
	TT_ROW("reserve_timed: out NULL", tt_##obj##_reserve_timed_null, -EINVAL, 0), \
	TT_ROW("reserve_timed: w invalid", tt_##obj##_reserve_timed_w, -EINVAL, 0, \
	       TT_WAIT_EINVAL_ALL),                                            \
	TT_ROW("reserve_timed: w too large", tt_##obj##_reserve_timed_w, -E2BIG, 0, \
	       TT_WAIT_E2BIG_ALL)

#endif /* RMPSC_TESTS_TEST_TABLE_H */
