/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for rmpsc_ring: every exported function, every documented
 * return code (the refused arguments and handles as rows of the ring and
 * ring config tables, test_table.h), the size-prefixed config rules and
 * config.slots, the span shape (iovec-compatible), wrap-around at every
 * offset of every power-of-two capacity up to 64 (from 0, across 2^32 and
 * across 2^64) and byte-exact round trips for element sizes 1, 3, 8, 64
 * and 4096 through every producer and consumer call. The common calls are
 * test_common's, borrowed reads test_borrow's, the blocking calls
 * test_wait's.
 *
 * Single-threaded: the concurrent paths are stress_ring's job. No timing.
 * Links the static library for the tc_set_position() test hook.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <signal.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_util.h"

#include "ringmpsc/ring.h"
#include "test_core.h"
#include "test_table.h"

/* The span's iov member is a real struct iovec[2] at offset 0. */
_Static_assert(offsetof(rmpsc_span, iov) == 0, "iov first");
_Static_assert(sizeof(((rmpsc_span *)0)->iov) == 2 * sizeof(struct iovec),
	       "iov is struct iovec[2]");

/* ---- helpers ------------------------------------------------------------ */

#define SENTINEL SENTINEL_OF(rmpsc_ring)
#define MS 1000000ll

static uint32_t min_u32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/*
 * The content of the element at free-running position @pos in round @salt.
 * Every byte depends on both and on its offset, so a misplaced, stale or
 * partially copied element shows.
 */
static void pattern(unsigned char *dst, uint32_t esz, uint64_t pos, uint64_t salt)
{
	const uint64_t h = mix64(pos ^ mix64(salt));
	uint64_t w = h;

	for (uint32_t j = 0; j < esz; j++) {
		if (j && !(j & 7))
			w = mix64(h + (j >> 3));
		dst[j] = (unsigned char)(w >> ((j & 7) * 8));
	}
}

static void patterns(unsigned char *dst, uint32_t esz, uint64_t pos, uint32_t n,
		     uint64_t salt)
{
	for (uint32_t i = 0; i < n; i++)
		pattern(dst + (size_t)i * esz, esz, pos + i, salt);
}

static void elem_expect(const unsigned char *got, uint32_t esz, uint64_t pos,
			uint64_t salt)
{
	unsigned char want[4096];

	assert_true(esz <= sizeof want);
	pattern(want, esz, pos, salt);
	if (memcmp(got, want, esz)) {
		print_error("element at position %llu differs\n",
			    (unsigned long long)pos);
		assert_memory_equal(got, want, esz);
	}
}

static void elems_expect(const unsigned char *got, uint32_t esz, uint64_t pos,
			 uint32_t n, uint64_t salt)
{
	for (uint32_t i = 0; i < n; i++)
		elem_expect(got + (size_t)i * esz, esz, pos + i, salt);
}

static void span_fill(const rmpsc_span *s, uint32_t esz, uint32_t n, uint64_t pos,
		      uint64_t salt)
{
	for (uint32_t i = 0; i < n; i++)
		pattern(span_at(s, esz, i), esz, pos + i, salt);
}

static void span_expect(const rmpsc_span *s, uint32_t esz, uint32_t n, uint64_t pos,
			uint64_t salt)
{
	for (uint32_t i = 0; i < n; i++)
		elem_expect(span_at(s, esz, i), esz, pos + i, salt);
}

/*
 * A span of @n slots from free-running position @pos: split at the end of
 * the buffer, byte lengths count * esz, second segment at slot 0.
 */
static void check_span(const rmpsc_span *s, const unsigned char *slot0, uint64_t cap,
		       uint32_t esz, uint64_t pos, uint32_t n)
{
	const uint64_t idx = pos & (cap - 1);
	const uint32_t c0 = n < cap - idx ? n : (uint32_t)(cap - idx);
	const uint32_t c1 = n - c0;

	assert_int_equal(s->pos, pos);
	assert_int_equal(s->count[0], c0);
	assert_int_equal(s->count[1], c1);
	assert_int_equal(s->nseg, c1 ? 2 : (c0 ? 1 : 0));
	assert_int_equal(s->_pad0, 0);
	assert_int_equal(s->iov[0].iov_len, (size_t)c0 * esz);
	assert_int_equal(s->iov[1].iov_len, (size_t)c1 * esz);
	if (c0)
		assert_ptr_equal(s->iov[0].iov_base, slot0 + idx * esz);
	if (c1)
		assert_ptr_equal(s->iov[1].iov_base, slot0);
}

static void check_empty_span(const rmpsc_span *s, uint64_t pos)
{
	assert_int_equal(s->nseg, 0);
	assert_int_equal(s->count[0], 0);
	assert_int_equal(s->count[1], 0);
	assert_int_equal(s->iov[0].iov_len, 0);
	assert_int_equal(s->iov[1].iov_len, 0);
	assert_int_equal(s->_pad0, 0);
	assert_int_equal(s->pos, pos);
}

static int ring_empty(rmpsc_ring *r)
{
	return rmpsc_ring_is_empty(r) == 1;
}

TT_CONSTRUCTOR(create_from, rmpsc_ring, rmpsc_ring_create, ring_empty, rmpsc_ring_destroy)

/* Create from @cfg expecting @want: *out NULL on error, an empty ring on
 * success (destroyed). */
#define create_expect(cfg, want) TT_EXPECT(create_from((void *)(cfg), 0), (want))

/*
 * Address of slot 0, found by reserving at position 0 of an idle ring; the
 * data area must be cache-line aligned. Leaves the ring empty at position 0.
 */
static unsigned char *ring_slot0(rmpsc_ring *r)
{
	rmpsc_span s;

	assert_ret(tc_set_position(r, 0), 0);
	assert_ret(rmpsc_ring_reserve_exact(r, 1, &s), 1);
	assert_int_equal(s.pos, 0);
	assert_non_null(s.iov[0].iov_base);
	assert_int_equal((uintptr_t)s.iov[0].iov_base % 64, 0);
	assert_ret(tc_set_position(r, 0), 0);
	return s.iov[0].iov_base;
}

static void fill_vals(uint64_t *v, uint64_t first, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		v[i] = first + i;
}

static long page_size(void)
{
	long p = sysconf(_SC_PAGESIZE);

	assert_true(p > 0);
	return p;
}

/* ---- fixture ------------------------------------------------------------- */

enum { FIX_CAP = 8, FIX_ESZ = 8 };

static int setup_ring(void **state)
{
	return ring_fixture(state, FIX_CAP); /* of FIX_ESZ bytes */
}

/* ---- config_init --------------------------------------------------------- */

union cfgbuf {
	rmpsc_ring_config cfg;
	unsigned char b[256];
	uint64_t align;
};

#define CANARY 0xa5

static void canary_expect_from(const union cfgbuf *u, size_t from)
{
	for (size_t i = from; i < sizeof u->b; i++) {
		if (u->b[i] != CANARY) {
			print_error("byte %zu written past size %zu\n", i, from);
			fail();
		}
	}
}

static void test_ring_config_init_with_valid_size_writes_defaults_within_size(
	void **state)
{
	union cfgbuf u;

	(void)state;
	assert_true(sizeof(rmpsc_ring_config) >= RMPSC_RING_CONFIG_SIZE_V1);
	for (uint32_t size = RMPSC_RING_CONFIG_SIZE_V1; size < sizeof u.b; size += 8) {
		rmpsc_ring *r = SENTINEL;

		memset(u.b, CANARY, sizeof u.b);
		assert_ret(rmpsc_ring_config_init(&u.cfg, size), 0);
		assert_int_equal(u.cfg.size, size);
		assert_int_equal(u.cfg.flags, 0);
		assert_int_equal(u.cfg.capacity, 1024);
		assert_int_equal(u.cfg.elem_size, 8);
		assert_int_equal(u.cfg.numa_node, RMPSC_NODE_ANY);
		assert_int_equal(u.cfg._pad0, 0);
		if (size >= offsetof(rmpsc_ring_config, _pad1) + 4) {
			assert_int_equal(u.cfg.slots, 0);
			assert_int_equal(u.cfg._pad1, 0);
		}
		for (size_t i = sizeof(rmpsc_ring_config); i < size; i++)
			assert_int_equal(u.b[i], 0);
		canary_expect_from(&u, size);
		/* what init wrote is what create accepts */
		assert_ret(rmpsc_ring_create(&u.cfg, &r), 0);
		assert_ret(rmpsc_ring_capacity(r), 1024);
		assert_ret(rmpsc_ring_elem_size(r), 8);
		rmpsc_ring_destroy(r);
	}
}

/* ---- create -------------------------------------------------------------- */

static void cfg_default(union cfgbuf *u)
{
	memset(u->b, 0, sizeof u->b);
	assert_ret(rmpsc_ring_config_init(&u->cfg, sizeof u->cfg), 0);
}

static void test_ring_create_with_default_config_returns_empty_open_ring(void **state)
{
	rmpsc_ring_config cfg;
	rmpsc_ring *r = SENTINEL;
	rmpsc_span s;

	(void)state;
	assert_ret(rmpsc_ring_config_init(&cfg, sizeof cfg), 0);
	assert_ret(rmpsc_ring_create(&cfg, &r), 0);
	assert_non_null(r);
	assert_ret(rmpsc_ring_capacity(r), 1024);
	assert_ret(rmpsc_ring_elem_size(r), 8);
	assert_ret(rmpsc_ring_len(r), 0);
	assert_ret(rmpsc_ring_is_empty(r), 1);
	assert_ret(rmpsc_ring_is_full(r), 0);
	assert_ret(rmpsc_ring_is_closed(r), 0);
	memset(&s, 0xff, sizeof s);
	assert_ret(rmpsc_ring_readable(r, 0, &s), 0);
	check_empty_span(&s, 0);
	rmpsc_ring_destroy(r);
}

static void test_ring_create_with_larger_cfg_and_zero_tail_returns_zero(void **state)
{
	union cfgbuf u;
	rmpsc_ring *r = SENTINEL;

	(void)state;
	/* a newer caller's struct, initialised by config_init */
	memset(u.b, CANARY, sizeof u.b);
	assert_ret(rmpsc_ring_config_init(&u.cfg, sizeof u.b), 0);
	u.cfg.capacity = 16;
	u.cfg.elem_size = 24;
	assert_ret(rmpsc_ring_create(&u.cfg, &r), 0);
	assert_ret(rmpsc_ring_capacity(r), 16);
	assert_ret(rmpsc_ring_elem_size(r), 24);
	rmpsc_ring_destroy(r);

	/* size set by hand, zero tail; bytes past size are not looked at */
	cfg_default(&u);
	u.cfg.size = 64;
	u.cfg.capacity = 2;
	u.b[64] = 0xff;
	u.b[200] = 0xff;
	r = SENTINEL;
	assert_ret(rmpsc_ring_create(&u.cfg, &r), 0);
	assert_ret(rmpsc_ring_capacity(r), 2);
	rmpsc_ring_destroy(r);

	/* exactly the 1.0 size */
	cfg_default(&u);
	u.b[sizeof u.cfg] = 0xff;
	create_expect(&u.cfg, 0);
}

static void test_ring_create_with_every_power_of_two_capacity_returns_zero(void **state)
{
	const long page = page_size();

	(void)state;
	for (uint32_t shift = 0; shift <= 30; shift++) {
		const uint32_t cap = 1u << shift;
		rmpsc_ring *r = ring_make(cap, 1, 0, 0);
		unsigned char in[2] = { (unsigned char)(0x11 + shift), 0xee };
		unsigned char out[2] = { 0, 0 };
		const uint32_t n = cap > 1 ? 2 : 1;

		assert_ret(rmpsc_ring_capacity(r), cap);
		assert_ret(rmpsc_ring_elem_size(r), 1);
		assert_true(rmpsc_ring_footprint(r) >= (int64_t)cap);
		assert_int_equal(rmpsc_ring_footprint(r) % page, 0);
		/* the last slot and (wrapping) the first one are usable */
		assert_ret(tc_set_position(r, cap - 1), 0);
		assert_ret(rmpsc_ring_push_n_exact(r, in, n), n);
		assert_ret(rmpsc_ring_is_full(r), cap <= 2);
		assert_ret(rmpsc_ring_pop_n_exact(r, out, n), n);
		assert_memory_equal(in, out, n);
		rmpsc_ring_destroy(r);
	}
}

static void test_ring_create_with_max_elem_size_roundtrips_elements(void **state)
{
	const uint32_t esz = RMPSC_RING_ELEM_SIZE_MAX;
	rmpsc_ring *r = ring_make(2, esz, 0, 0);
	unsigned char *in = malloc(esz), *out = malloc(esz);
	const uint64_t p0 = UINT64_MAX; /* positions UINT64_MAX, 0, 1 */

	(void)state;
	assert_non_null(in);
	assert_non_null(out);
	assert_ret(rmpsc_ring_elem_size(r), esz);
	assert_true(rmpsc_ring_footprint(r) >= 2 * (int64_t)esz);
	assert_ret(tc_set_position(r, p0), 0);
	for (uint64_t i = 0; i < 2; i++) {
		pattern(in, esz, p0 + i, 5);
		assert_ret(rmpsc_ring_push(r, in), 0);
	}
	assert_ret(rmpsc_ring_is_full(r), 1);
	for (uint64_t i = 0; i < 3; i++) {
		memset(out, 0, esz);
		assert_ret(rmpsc_ring_pop(r, out), 0);
		pattern(in, esz, p0 + i, 5);
		assert_true(memcmp(in, out, esz) == 0);
		if (i == 0) {
			pattern(in, esz, p0 + 2, 5);
			assert_ret(rmpsc_ring_push(r, in), 0);
		}
	}
	assert_ret(rmpsc_ring_is_empty(r), 1);
	free(in);
	free(out);
	rmpsc_ring_destroy(r);
}

static void test_ring_create_with_numa_node_any_or_zero_returns_zero(void **state)
{
	union cfgbuf u;

	(void)state;
	cfg_default(&u);
	u.cfg.numa_node = RMPSC_NODE_ANY;
	create_expect(&u.cfg, 0);
	u.cfg.numa_node = 0; /* node 0 always exists */
	create_expect(&u.cfg, 0);
}

static void test_ring_create_when_mapping_too_large_returns_enomem(void **state)
{
	union cfgbuf u;

	(void)state;
	/* 2^30 slots of 2^24 bytes: 2^54 bytes, beyond any address space */
	cfg_default(&u);
	u.cfg.capacity = RMPSC_RING_CAPACITY_MAX;
	u.cfg.elem_size = RMPSC_RING_ELEM_SIZE_MAX;
	create_expect(&u.cfg, -ENOMEM);
}

/* A "Key: value" line of /proc/meminfo, or -1. */
static long meminfo_value(const char *key)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[256];
	long v = -1;
	const size_t klen = strlen(key);

	if (!f)
		return -1;
	while (fgets(line, sizeof line, f)) {
		if (!strncmp(line, key, klen) && line[klen] == ':') {
			v = strtol(line + klen + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return v;
}

static long file_long(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;

	if (!f)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

static void test_ring_create_with_hugepage_flag_matches_free_huge_pages(void **state)
{
	static const uint32_t flag_sets[] = {
		RMPSC_RING_F_HUGEPAGE, RMPSC_RING_F_HUGEPAGE | RMPSC_RING_F_PREFAULT,
	};
	const long free_pages = meminfo_value("HugePages_Free");
	const long rsvd = meminfo_value("HugePages_Rsvd");
	const long hp_kb = meminfo_value("Hugepagesize");
	const long surplus = file_long("/proc/sys/vm/nr_overcommit_hugepages");
	const long avail = free_pages - (rsvd > 0 ? rsvd : 0);

	(void)state;
	if (free_pages < 0)
		skip();
	for (size_t i = 0; i < sizeof flag_sets / sizeof flag_sets[0]; i++) {
		union cfgbuf u;
		rmpsc_ring *r = SENTINEL;
		int rc;

		cfg_default(&u);
		u.cfg.capacity = 64;
		u.cfg.elem_size = 64;
		u.cfg.flags = flag_sets[i];
		rc = rmpsc_ring_create(&u.cfg, &r);
		if (free_pages == 0 && surplus <= 0) {
			assert_ret(rc, -ENOMEM);
		} else if (avail > 0) {
			assert_ret(rc, 0);
		} else {
			/* only surplus pages left: the kernel may or may not grant one */
			assert_true(rc == 0 || rc == -ENOMEM);
		}
		if (rc) {
			assert_null(r);
			continue;
		}
		{
			uint64_t v = 42, w = 0;

			assert_non_null(r);
			assert_true(rmpsc_ring_footprint(r) >= 64 * 64);
			if (hp_kb > 0) {
				const int64_t hp = (int64_t)hp_kb * 1024;

				assert_int_equal(rmpsc_ring_footprint(r) % hp, 0);
			}
			assert_ret(rmpsc_ring_push(r, &v), 0);
			assert_ret(rmpsc_ring_pop(r, &w), 0);
			assert_int_equal(w, 42);
			rmpsc_ring_destroy(r);
		}
	}
}

static void test_ring_create_with_prefault_flag_returns_usable_ring(void **state)
{
	rmpsc_ring *r = ring_make(1024, 64, RMPSC_RING_F_PREFAULT, 0);
	unsigned char in[64], out[64];

	(void)state;
	assert_ret(rmpsc_ring_capacity(r), 1024);
	assert_ret(rmpsc_ring_elem_size(r), 64);
	assert_true(rmpsc_ring_footprint(r) >= 1024 * 64);
	assert_int_equal(rmpsc_ring_footprint(r) % page_size(), 0);
	for (uint64_t i = 0; i < 3000; i++) {
		pattern(in, 64, i, 9);
		assert_ret(rmpsc_ring_push(r, in), 0);
		assert_ret(rmpsc_ring_pop(r, out), 0);
		assert_memory_equal(in, out, 64);
	}
	rmpsc_ring_destroy(r);
}

/* ---- argument and handle checks, one table per struct or handle ----------- */

/*
 * Every call that is refused for one argument, or for its handle, with the
 * code the headers promise; the driver (test_table.h) checks that the ring
 * is as it was: the same elements in the same order, no reservation left,
 * not closed, its strategy unchanged, and still working.
 */

static uint64_t in_vals[2 * FIX_CAP] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
static uint64_t out_vals[2 * FIX_CAP];
static rmpsc_span out_span;
static rmpsc_borrow out_borrow;
static rmpsc_wait a_wait;
static rmpsc_notifier *a_notifier; /* a live notifier, for set_notifier */

#define OUT_CANARY 0xa5a5a5a5a5a5a5a5ull

static void *ring_fx(uint32_t state)
{
	rmpsc_ring_config cfg;
	rmpsc_ring *r = NULL;

	assert_ret(rmpsc_ring_config_init(&cfg, sizeof cfg), 0);
	cfg.capacity = FIX_CAP;
	assert_ret(rmpsc_ring_create(&cfg, &r), 0);
	ring_push_seq(r, 0, state); /* the state: elements queued */
	for (size_t i = 0; i < 2 * FIX_CAP; i++)
		out_vals[i] = OUT_CANARY;
	return r;
}

static const char *ring_fx_check(void *h, const struct tt_row *row, int64_t got)
{
	const uint32_t fill = row->state;
	rmpsc_ring *r = h;
	rmpsc_wait w;
	uint64_t v;

	(void)got;
	if (rmpsc_ring_len(r) != fill)
		return "the ring's length changed";
	if (rmpsc_ring_is_closed(r) != 0)
		return "the ring was closed";
	if (rmpsc_ring_commit(r, 1) != -EINVAL)
		return "a reservation was left";
	if (rmpsc_ring_borrow_commit_all(r) != 0)
		return "a borrow was left";
	if (rmpsc_wait_init(&w, sizeof w, RMPSC_WAIT_SPIN) || rmpsc_ring_get_wait(r, &w) ||
	    w.kind != RMPSC_WAIT_BLOCK || w.spin_count != RMPSC_WAIT_DEFAULT_SPIN)
		return "the ring's strategy changed";
	for (uint32_t i = 0; i < fill; i++)
		if (rmpsc_ring_pop(r, &v) || v != i)
			return "the queued elements changed";
	v = 77;
	if (rmpsc_ring_push(r, &v) || rmpsc_ring_pop(r, &v) || v != 77)
		return "the ring no longer works";
	return NULL;
}

static void ring_fx_free(void *h)
{
	rmpsc_ring_destroy(h);
}

/* The caller's buffers: nothing read into the output, nothing written. */
static const char *bufs_check(void)
{
	for (size_t i = 0; i < 2 * FIX_CAP; i++) {
		if (in_vals[i] != i + 1)
			return "the call wrote into the caller's input";
		if (out_vals[i] != OUT_CANARY) {
			out_vals[i] = OUT_CANARY;
			return "the call wrote into the caller's output";
		}
	}
	return NULL;
}

static const char *fake_ring_check(void *h)
{
	const char *what = h ? tt_page_check(h) : NULL;

	return what ? what : bufs_check();
}

/* A ring config's bytes where a ring is expected. */
static void *make_config_bytes(void)
{
	rmpsc_ring_config cfg;

	assert_ret(rmpsc_ring_config_init(&cfg, sizeof cfg), 0);
	return tt_page_with(&cfg, sizeof cfg, 0);
}

static const struct tt_handle not_a_ring[] = {
	{ "NULL", tt_make_null, fake_ring_check, NULL },
	{ "zeroed page", tt_make_zeroed, fake_ring_check, NULL },
	{ "foreign magic", tt_make_foreign, fake_ring_check, NULL },
	{ "destroyed magic", tt_make_dead, fake_ring_check, NULL },
	{ "a ring config", make_config_bytes, fake_ring_check, NULL },
};

/* v: the count; for the _timed calls, bit 0 a strategy (else NULL) and
 * bit 1 a timeout of 2 ms (else 0). */
static const rmpsc_wait *wait_of(uint64_t v)
{
	assert_ret(rmpsc_wait_init(&a_wait, sizeof a_wait, RMPSC_WAIT_BLOCK), 0);
	return (v & 1) ? &a_wait : NULL;
}

static int64_t timeout_of(uint64_t v)
{
	return (v & 2) ? 2 * MS : 0;
}

TT_CALL(c_reserve, rmpsc_ring_reserve(h, (uint32_t)v, &out_span))
TT_CALL(c_reserve_exact, rmpsc_ring_reserve_exact(h, (uint32_t)v, &out_span))
TT_CALL(c_commit, rmpsc_ring_commit(h, (uint32_t)v))
TT_CALL(c_push, rmpsc_ring_push(h, in_vals))
TT_CALL(c_push_n, rmpsc_ring_push_n(h, v ? in_vals : NULL, (uint32_t)v))
TT_CALL(c_push_n_exact, rmpsc_ring_push_n_exact(h, v ? in_vals : NULL, (uint32_t)v))
TT_CALL(c_readable, rmpsc_ring_readable(h, (uint32_t)v, &out_span))
TT_CALL(c_advance, rmpsc_ring_advance(h, (uint32_t)v))
TT_CALL(c_pop, rmpsc_ring_pop(h, out_vals))
TT_CALL(c_pop_n, rmpsc_ring_pop_n(h, v ? out_vals : NULL, (uint32_t)v))
TT_CALL(c_pop_n_exact, rmpsc_ring_pop_n_exact(h, v ? out_vals : NULL, (uint32_t)v))
TT_CALL(c_peek, rmpsc_ring_peek(h, out_vals))
TT_CALL(c_peek_n, rmpsc_ring_peek_n(h, v ? out_vals : NULL, (uint32_t)v))
TT_CALL(c_skip, rmpsc_ring_skip(h, (uint32_t)v))
TT_CALL(c_drain, rmpsc_ring_drain(h, out_vals, (uint32_t)v))
TT_CALL(c_drain_null, rmpsc_ring_drain(h, NULL, (uint32_t)v))
TT_CALL(c_close, rmpsc_ring_close(h))
TT_CALL(c_is_closed, rmpsc_ring_is_closed(h))
TT_CALL(c_len, rmpsc_ring_len(h))
TT_CALL(c_is_empty, rmpsc_ring_is_empty(h))
TT_CALL(c_is_full, rmpsc_ring_is_full(h))
TT_CALL(c_capacity, rmpsc_ring_capacity(h))
TT_CALL(c_elem_size, rmpsc_ring_elem_size(h))
TT_CALL(c_footprint, rmpsc_ring_footprint(h))
TT_CALL(c_reset, rmpsc_ring_reset(h))
TT_CALL(c_destroy, (rmpsc_ring_destroy(h), 0))
TT_CALL(c_borrow, rmpsc_ring_borrow(h, (uint32_t)v, &out_borrow))
TT_CALL(c_borrow_commit, rmpsc_ring_borrow_commit(h, v))
TT_CALL(c_borrow_commit_all, rmpsc_ring_borrow_commit_all(h))
static void borrow_none(void *ctx, const void *items, uint32_t count)
{
	(void)ctx;
	(void)items;
	(void)count;
	fail_msg("borrow_fn handler called");
}

TT_CALL(c_borrow_fn, rmpsc_ring_borrow_fn(h, 1, v ? borrow_none : NULL, NULL))
TT_CALL(c_set_wait, rmpsc_ring_set_wait(h, wait_of(v)))
TT_CALL(c_get_wait, rmpsc_ring_get_wait(h, (rmpsc_wait *)wait_of(1)))
TT_CALL(c_set_notifier, rmpsc_ring_set_notifier(h, v ? a_notifier : NULL))
TT_CALL(c_reserve_timed, rmpsc_ring_reserve_timed(h, 1, &out_span, timeout_of(v), wait_of(v)))
TT_CALL(c_push_timed, rmpsc_ring_push_timed(h, in_vals, timeout_of(v), wait_of(v)))
TT_CALL(c_push_n_timed, rmpsc_ring_push_n_timed(h, in_vals, 2, timeout_of(v), wait_of(v)))
TT_CALL(c_readable_timed, rmpsc_ring_readable_timed(h, 1, &out_span, timeout_of(v), wait_of(v)))
TT_CALL(c_pop_timed, rmpsc_ring_pop_timed(h, out_vals, timeout_of(v), wait_of(v)))
TT_CALL(c_pop_n_timed, rmpsc_ring_pop_n_timed(h, out_vals, 2, timeout_of(v), wait_of(v)))

/* NULL buffers, v as for wait_of() and timeout_of() (timeout -1 for bit 1:
 * the pointer is refused before any wait). */
static int64_t t_of(uint64_t v)
{
	return (v & 2) ? -1 : 0;
}

TT_CALL(n_reserve, rmpsc_ring_reserve(h, 1, NULL))
TT_CALL(n_reserve_exact, rmpsc_ring_reserve_exact(h, 1, NULL))
TT_CALL(n_push, rmpsc_ring_push(h, NULL))
TT_CALL(n_push_n, rmpsc_ring_push_n(h, NULL, (uint32_t)v))
TT_CALL(n_push_n_exact, rmpsc_ring_push_n_exact(h, NULL, (uint32_t)v))
TT_CALL(n_readable, rmpsc_ring_readable(h, 1, NULL))
TT_CALL(n_pop, rmpsc_ring_pop(h, NULL))
TT_CALL(n_pop_n, rmpsc_ring_pop_n(h, NULL, (uint32_t)v))
TT_CALL(n_pop_n_exact, rmpsc_ring_pop_n_exact(h, NULL, (uint32_t)v))
TT_CALL(n_peek, rmpsc_ring_peek(h, NULL))
TT_CALL(n_peek_n, rmpsc_ring_peek_n(h, NULL, (uint32_t)v))
TT_CALL(n_borrow, rmpsc_ring_borrow(h, 1, NULL))
TT_CALL(n_borrow_fn, rmpsc_ring_borrow_fn(h, (uint32_t)v, NULL, NULL))
TT_CALL(n_reserve_timed, rmpsc_ring_reserve_timed(h, 1, NULL, t_of(v), wait_of(v)))
TT_CALL(n_push_timed, rmpsc_ring_push_timed(h, NULL, t_of(v), wait_of(v)))
TT_CALL(n_push_n_timed, rmpsc_ring_push_n_timed(h, NULL, 1 + (v >> 1), t_of(v), wait_of(v)))
TT_CALL(n_readable_timed, rmpsc_ring_readable_timed(h, 1, NULL, t_of(v), wait_of(v)))
TT_CALL(n_pop_timed, rmpsc_ring_pop_timed(h, NULL, t_of(v), wait_of(v)))
TT_CALL(n_pop_n_timed, rmpsc_ring_pop_n_timed(h, NULL, 1 + (v >> 1), t_of(v), wait_of(v)))
TT_CALL(n_get_wait, rmpsc_ring_get_wait(h, NULL))

/* Counts no call could ever satisfy. */
TT_CALL(p_push_n_timed_big, rmpsc_ring_push_n_timed(h, in_vals, (uint32_t)v, v == UINT32_MAX ? 0 : -1, NULL))
TT_CALL(p_push_n_exact_big, rmpsc_ring_push_n_exact(h, in_vals, (uint32_t)v))
TT_CALL(p_pop_n_exact_big, rmpsc_ring_pop_n_exact(h, out_vals, (uint32_t)v))

#define BLOCKED (2 * MS)
TT_CALL(w_reserve, rmpsc_ring_reserve_timed(h, 1, &out_span, 0, tt_bad_wait(v)))
TT_CALL(w_push, rmpsc_ring_push_timed(h, in_vals, 0, tt_bad_wait(v)))
TT_CALL(w_push_n, rmpsc_ring_push_n_timed(h, in_vals, 2, 0, tt_bad_wait(v)))
TT_CALL(w_readable, rmpsc_ring_readable_timed(h, 1, &out_span, 0, tt_bad_wait(v)))
TT_CALL(w_pop, rmpsc_ring_pop_timed(h, out_vals, 0, tt_bad_wait(v)))
TT_CALL(w_pop_n, rmpsc_ring_pop_n_timed(h, out_vals, 2, 0, tt_bad_wait(v)))
TT_CALL(wb_reserve, rmpsc_ring_reserve_timed(h, 1, &out_span, BLOCKED, tt_bad_wait(v)))
TT_CALL(wb_push, rmpsc_ring_push_timed(h, in_vals, BLOCKED, tt_bad_wait(v)))
TT_CALL(wb_push_n, rmpsc_ring_push_n_timed(h, in_vals, 2, BLOCKED, tt_bad_wait(v)))
TT_CALL(wb_readable, rmpsc_ring_readable_timed(h, 1, &out_span, BLOCKED, tt_bad_wait(v)))
TT_CALL(wb_pop, rmpsc_ring_pop_timed(h, out_vals, BLOCKED, tt_bad_wait(v)))
TT_CALL(wb_pop_n, rmpsc_ring_pop_n_timed(h, out_vals, 2, BLOCKED, tt_bad_wait(v)))
TT_CALL(w_set_wait, rmpsc_ring_set_wait(h, tt_bad_wait(v)))

/* get_wait into a struct whose size is refused: v is the size. */
static int64_t w_get_wait_size(void *h, uint64_t v)
{
	static union {
		rmpsc_wait w;
		unsigned char b[4096 + 16];
	} u;

	if (v >= RMPSC_WAIT_CONFIG_SIZE_V1 && v % 8 == 0 && v <= 4096)
		return TT_SKIP;
	memset(u.b, 0xa5, sizeof u.b);
	u.w.size = (uint32_t)v;
	{
		const int rc = rmpsc_ring_get_wait(h, &u.w);

		for (size_t i = sizeof u.w.size; i < sizeof u.b; i++)
			if (u.b[i] != 0xa5)
				*tt_note() = "get_wait wrote into a struct it refused";
		return rc;
	}
}

/* A ring or foreign memory where a notifier is expected. */
static int64_t x_notifier_other_ring(void *h, uint64_t v)
{
	rmpsc_ring *o = ring_make(8, 8, 0, 0);
	int rc = rmpsc_ring_set_notifier(h, (rmpsc_notifier *)(void *)o);

	(void)v;
	rmpsc_ring_destroy(o);
	return rc;
}

TT_CALL(x_notifier_self, rmpsc_ring_set_notifier(h, (rmpsc_notifier *)h))
TT_CALL(x_notifier_foreign, rmpsc_ring_set_notifier(h, FOREIGN(rmpsc_notifier)))

static const struct tt_row ring_rows[] = {
	/* the handle */
	TT_ROW("reserve", c_reserve, -EBADF, TT_BAD, TT_VALS(1, 0)),
	TT_ROW("reserve_exact", c_reserve_exact, -EBADF, TT_BAD, TT_VALS(1, 0)),
	TT_ROW("commit", c_commit, -EBADF, TT_BAD, TT_VALS(1, 0)),
	TT_ROW("push", c_push, -EBADF, TT_BAD),
	TT_ROW("push_n", c_push_n, -EBADF, TT_BAD, TT_VALS(2, 0)),
	TT_ROW("push_n_exact", c_push_n_exact, -EBADF, TT_BAD, TT_VALS(2, 0)),
	TT_ROW("readable", c_readable, -EBADF, TT_BAD, TT_VALS(1, 0)),
	TT_ROW("advance", c_advance, -EBADF, TT_BAD, TT_VALS(1, 0)),
	TT_ROW("pop", c_pop, -EBADF, TT_BAD),
	TT_ROW("pop_n", c_pop_n, -EBADF, TT_BAD, TT_VALS(2, 0)),
	TT_ROW("pop_n_exact", c_pop_n_exact, -EBADF, TT_BAD, TT_VALS(2, 0)),
	TT_ROW("peek", c_peek, -EBADF, TT_BAD),
	TT_ROW("peek_n", c_peek_n, -EBADF, TT_BAD, TT_VALS(2, 0)),
	TT_ROW("skip", c_skip, -EBADF, TT_BAD, TT_VALS(1, 0)),
	TT_ROW("drain", c_drain, -EBADF, TT_BAD, TT_VALS(2)),
	TT_ROW("drain, items NULL", c_drain_null, -EBADF, TT_BAD, TT_VALS(2, 0)),
	TT_ROW("close", c_close, -EBADF, TT_BAD),
	TT_ROW("is_closed", c_is_closed, -EBADF, TT_BAD),
	TT_ROW("len", c_len, -EBADF, TT_BAD),
	TT_ROW("is_empty", c_is_empty, -EBADF, TT_BAD),
	TT_ROW("is_full", c_is_full, -EBADF, TT_BAD),
	TT_ROW("capacity", c_capacity, -EBADF, TT_BAD),
	TT_ROW("elem_size", c_elem_size, -EBADF, TT_BAD),
	TT_ROW("footprint", c_footprint, -EBADF, TT_BAD),
	TT_ROW("reset", c_reset, -EBADF, TT_BAD),
	TT_ROW("destroy (ignores it)", c_destroy, 0, TT_BAD),
	TT_ROW("borrow", c_borrow, -EBADF, TT_BAD, TT_VALS(1, 0)),
	TT_ROW("borrow_commit", c_borrow_commit, -EBADF, TT_BAD),
	TT_ROW("borrow_commit_all", c_borrow_commit_all, -EBADF, TT_BAD),
	TT_ROW("borrow_fn (fn NULL or not)", c_borrow_fn, -EBADF, TT_BAD, TT_VALS(0, 1)),
	TT_ROW("set_wait (w NULL or not)", c_set_wait, -EBADF, TT_BAD, TT_VALS(0, 1)),
	TT_ROW("get_wait", c_get_wait, -EBADF, TT_BAD),
	TT_ROW("set_notifier (n NULL or not)", c_set_notifier, -EBADF, TT_BAD, TT_VALS(0,
	       1)),
	TT_ROW("reserve_timed", c_reserve_timed, -EBADF, TT_BAD, TT_RANGE(0, 4)),
	TT_ROW("push_timed", c_push_timed, -EBADF, TT_BAD, TT_RANGE(0, 4)),
	TT_ROW("push_n_timed", c_push_n_timed, -EBADF, TT_BAD, TT_RANGE(0, 4)),
	TT_ROW("readable_timed", c_readable_timed, -EBADF, TT_BAD, TT_RANGE(0, 4)),
	TT_ROW("pop_timed", c_pop_timed, -EBADF, TT_BAD, TT_RANGE(0, 4)),
	TT_ROW("pop_n_timed", c_pop_n_timed, -EBADF, TT_BAD, TT_RANGE(0, 4)),
	/* a NULL buffer, with room and with data (2 queued) where it matters */
	TT_ROW("reserve: out NULL", n_reserve, -EINVAL, 0),
	TT_ROW("reserve_exact: out NULL", n_reserve_exact, -EINVAL, 0),
	TT_ROW("push: item NULL", n_push, -EINVAL, 0),
	TT_ROW("push_n: items NULL", n_push_n, -EINVAL, 0, TT_VALS(1, FIX_CAP)),
	TT_ROW("push_n_exact: items NULL", n_push_n_exact, -EINVAL, 0, TT_VALS(1)),
	TT_ROW("readable: out NULL", n_readable, -EINVAL, 2),
	TT_ROW("pop: item NULL", n_pop, -EINVAL, 1),
	TT_ROW("pop_n: items NULL", n_pop_n, -EINVAL, 2, TT_VALS(1)),
	TT_ROW("pop_n_exact: items NULL", n_pop_n_exact, -EINVAL, 2, TT_VALS(1)),
	TT_ROW("peek: item NULL", n_peek, -EINVAL, 1),
	TT_ROW("peek_n: items NULL", n_peek_n, -EINVAL, 1, TT_VALS(1)),
	TT_ROW("borrow: out NULL", n_borrow, -EINVAL, 0),
	TT_ROW("borrow_fn: fn NULL", n_borrow_fn, -EINVAL, 4, TT_VALS(3)),
	TT_ROW("reserve_timed: out NULL", n_reserve_timed, -EINVAL, 2, TT_RANGE(0, 4)),
	TT_ROW("push_timed: item NULL", n_push_timed, -EINVAL, 2, TT_RANGE(0, 4)),
	TT_ROW("push_n_timed: items NULL", n_push_n_timed, -EINVAL, 2, TT_RANGE(0, 4)),
	TT_ROW("readable_timed: out NULL", n_readable_timed, -EINVAL, 2, TT_RANGE(0, 4)),
	TT_ROW("pop_timed: item NULL", n_pop_timed, -EINVAL, 2, TT_RANGE(0, 4)),
	TT_ROW("pop_n_timed: items NULL", n_pop_n_timed, -EINVAL, 2, TT_RANGE(0, 4)),
	TT_ROW("get_wait: w NULL", n_get_wait, -EINVAL, 0),
	/* counts above the capacity, or above what an int can report */
	TT_ROW("reserve_exact: n above capacity", c_reserve_exact, -EINVAL, 0,
	       TT_VALS(FIX_CAP + 1, UINT32_MAX)),
	TT_ROW("reserve_exact: n above capacity, 3 queued", c_reserve_exact, -EINVAL, 3,
	       TT_VALS(FIX_CAP + 1)),
	TT_ROW("reserve_exact: n above capacity, full", c_reserve_exact, -EINVAL, FIX_CAP,
	       TT_VALS(FIX_CAP + 1)),
	TT_ROW("push_n_exact: n above capacity", p_push_n_exact_big, -EINVAL, 0,
	       TT_VALS(FIX_CAP + 1, UINT32_MAX)),
	TT_ROW("push_n_exact: n above capacity, full", p_push_n_exact_big, -EINVAL,
	       FIX_CAP, TT_VALS(FIX_CAP + 1)),
	TT_ROW("pop_n_exact: n above capacity", p_pop_n_exact_big, -EINVAL, 0,
	       TT_VALS(FIX_CAP + 1)),
	TT_ROW("pop_n_exact: n above capacity, full", p_pop_n_exact_big, -EINVAL, FIX_CAP,
	       TT_VALS(FIX_CAP + 1, UINT32_MAX)),
	TT_ROW("push_n_timed: n above INT32_MAX", p_push_n_timed_big, -EINVAL, 0,
	       TT_VALS(UINT32_MAX, (uint64_t)INT32_MAX + 1)),
	/* a strategy that is refused, where the call could proceed at once */
	TT_ROW("reserve_timed: w invalid", w_reserve, -EINVAL, 2, TT_WAIT_EINVAL_ALL),
	TT_ROW("push_timed: w invalid", w_push, -EINVAL, 2, TT_WAIT_EINVAL_ALL),
	TT_ROW("push_n_timed: w invalid", w_push_n, -EINVAL, 2, TT_WAIT_EINVAL_ALL),
	TT_ROW("readable_timed: w invalid", w_readable, -EINVAL, 2, TT_WAIT_EINVAL_ALL),
	TT_ROW("pop_timed: w invalid", w_pop, -EINVAL, 2, TT_WAIT_EINVAL_ALL),
	TT_ROW("pop_n_timed: w invalid", w_pop_n, -EINVAL, 2, TT_WAIT_EINVAL_ALL),
	TT_ROW("reserve_timed: w too large", w_reserve, -E2BIG, 1, TT_WAIT_E2BIG_ALL),
	TT_ROW("push_timed: w too large", w_push, -E2BIG, 1, TT_WAIT_E2BIG_ALL),
	TT_ROW("push_n_timed: w too large", w_push_n, -E2BIG, 1, TT_WAIT_E2BIG_ALL),
	TT_ROW("readable_timed: w too large", w_readable, -E2BIG, 1, TT_WAIT_E2BIG_ALL),
	TT_ROW("pop_timed: w too large", w_pop, -E2BIG, 1, TT_WAIT_E2BIG_ALL),
	TT_ROW("pop_n_timed: w too large", w_pop_n, -E2BIG, 1, TT_WAIT_E2BIG_ALL),
	/* ... and where it would have to wait (full, or empty) */
	TT_ROW("reserve_timed: w invalid, full", wb_reserve, -EINVAL, FIX_CAP,
	       TT_WAIT_EINVAL_ALL),
	TT_ROW("push_timed: w invalid, full", wb_push, -EINVAL, FIX_CAP,
	       TT_WAIT_EINVAL_ALL),
	TT_ROW("push_n_timed: w invalid, full", wb_push_n, -EINVAL, FIX_CAP,
	       TT_WAIT_EINVAL_ALL),
	TT_ROW("readable_timed: w invalid, empty", wb_readable, -EINVAL, 0,
	       TT_WAIT_EINVAL_ALL),
	TT_ROW("pop_timed: w invalid, empty", wb_pop, -EINVAL, 0, TT_WAIT_EINVAL_ALL),
	TT_ROW("pop_n_timed: w invalid, empty", wb_pop_n, -EINVAL, 0, TT_WAIT_EINVAL_ALL),
	TT_ROW("reserve_timed: w too large, full", wb_reserve, -E2BIG, FIX_CAP,
	       TT_WAIT_E2BIG_ALL),
	TT_ROW("push_timed: w too large, full", wb_push, -E2BIG, FIX_CAP,
	       TT_WAIT_E2BIG_ALL),
	TT_ROW("push_n_timed: w too large, full", wb_push_n, -E2BIG, FIX_CAP,
	       TT_WAIT_E2BIG_ALL),
	TT_ROW("readable_timed: w too large, empty", wb_readable, -E2BIG, 0,
	       TT_WAIT_E2BIG_ALL),
	TT_ROW("pop_timed: w too large, empty", wb_pop, -E2BIG, 0, TT_WAIT_E2BIG_ALL),
	TT_ROW("pop_n_timed: w too large, empty", wb_pop_n, -E2BIG, 0, TT_WAIT_E2BIG_ALL),
	TT_ROW("set_wait: w invalid", w_set_wait, -EINVAL, 0, TT_WAIT_EINVAL_ALL),
	TT_ROW("set_wait: w too large", w_set_wait, -E2BIG, 0, TT_WAIT_E2BIG_ALL),
	TT_ROW("get_wait: size below 1.0 or not a multiple of 8", w_get_wait_size,
	       -EINVAL, 0, TT_RANGE(0, 64)),
	TT_ROW("get_wait: size above a page", w_get_wait_size, -E2BIG, 0, TT_VALS(4104)),
	/* not a notifier */
	TT_ROW("set_notifier: n is another ring", x_notifier_other_ring, -EBADF, 0),
	TT_ROW("set_notifier: n is the ring itself", x_notifier_self, -EBADF, 0),
	TT_ROW("set_notifier: n is foreign memory", x_notifier_foreign, -EBADF, 0),
};

static void ring_table_begin(void)
{
	for (size_t i = 0; i < 2 * FIX_CAP; i++)
		out_vals[i] = OUT_CANARY;
	assert_ret(rmpsc_notifier_create(0, &a_notifier), 0);
}

static void ring_table_end(void)
{
	rmpsc_notifier_destroy(a_notifier);
}

TT_TEST(test_ring_calls_with_bad_handle_or_argument_return_documented_code,
	.name = "ring", TT_ROWS(ring_rows), .setup = ring_fx, .check = ring_fx_check,
	.teardown = ring_fx_free, TT_BADS(not_a_ring),
	.begin = ring_table_begin, .end = ring_table_end)

/* ---- ring configs: rmpsc_ring_config_init and rmpsc_ring_create ----------- */

enum {
	CF_CANARY = TT_STRUCT_CANARY, /* init: CANARY bytes, more than any size tried */
	CF_DEFAULT, /* create: defaults, in a zeroed buffer with room past them */
	CF_GUARDED, /* create: defaults at the end of a page, the next one PROT_NONE */
};

static unsigned char *cfg_map;

static void *cfg_fx(uint32_t state)
{
	const long pg = page_size();
	rmpsc_ring_config *cfg;

	if (state != CF_GUARDED) {
		cfg = tt_struct(state);
		if (state == CF_DEFAULT)
			assert_ret(rmpsc_ring_config_init(cfg, sizeof *cfg), 0);
		return cfg;
	}
	cfg_map = mmap(NULL, 2 * (size_t)pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);
	assert_true(cfg_map != MAP_FAILED);
	assert_int_equal(mprotect(cfg_map + pg, (size_t)pg, PROT_NONE), 0);
	cfg = (rmpsc_ring_config *)(cfg_map + pg - sizeof *cfg);
	assert_ret(rmpsc_ring_config_init(cfg, sizeof *cfg), 0);
	return cfg;
}

static void cfg_fx_free(void *h)
{
	(void)h;
	if (cfg_map) {
		munmap(cfg_map, 2 * (size_t)page_size());
		cfg_map = NULL;
	}
}

TT_CALL(i_null, rmpsc_ring_config_init(NULL, (uint32_t)v))
TT_CALL(i_size, rmpsc_ring_config_init(h, (uint32_t)v))
TT_CALL(i_size_not_8, v % 8 ? rmpsc_ring_config_init(h, (uint32_t)v) : TT_SKIP)

TT_CALL(k_null_cfg, create_from(NULL, 0))
TT_CALL(k_null_out, rmpsc_ring_create(v ? NULL : h, NULL))

/* v = size << 8 | i: a config of @size bytes (32, 64, 96, 128) whose byte
 * @i, past the known struct, is not zero. */
static int64_t k_tail(void *h, uint64_t v)
{
	const uint32_t size = (uint32_t)(v >> 8), i = (uint32_t)(v & 0xff);

	if (size % 32 || i < sizeof(rmpsc_ring_config) || i >= size)
		return TT_SKIP;
	assert_ret(rmpsc_ring_config_init(h, size), 0);
	((unsigned char *)h)[i] = (i & 1) ? 0x01 : 0x80;
	return create_from(h, 0);
}

/* At the page's start: a zeroed page-size config is a valid (future) one. */
static int64_t k_whole_page(void *h, uint64_t v)
{
	rmpsc_ring_config *cfg = (rmpsc_ring_config *)(void *)cfg_map;

	(void)h;
	(void)v;
	memset(cfg_map, 0, (size_t)page_size());
	assert_ret(rmpsc_ring_config_init(cfg, (uint32_t)page_size()), 0);
	return create_from(cfg, 0);
}

#define OFF(f) offsetof(rmpsc_ring_config, f)
TT_CALL(k_size, (tt_put(h, OFF(size), v), create_from(h, 0)))
TT_CALL(k_capacity, (tt_put(h, OFF(capacity), v), tt_put(h, OFF(elem_size), 1),
		     create_from(h, 0)))
TT_CALL(k_elem_size, (tt_put(h, OFF(elem_size), v), tt_put(h, OFF(capacity), 1),
		      create_from(h, 0)))
TT_CALL(k_flags, (tt_put(h, OFF(flags), v), create_from(h, 0)))
TT_CALL(k_flag_bit, (1u << v) & RMPSC_RING_F_ALL ? TT_SKIP : k_flags(h, 1u << v))
TT_CALL(k_flag_bit_prefault,
	(1u << v) & RMPSC_RING_F_ALL ? TT_SKIP : k_flags(h, (1u << v) | RMPSC_RING_F_PREFAULT))
TT_CALL(k_numa, (tt_put(h, OFF(numa_node), v), create_from(h, 0)))
TT_CALL(k_pad0, (tt_put(h, OFF(_pad0), v), create_from(h, 0)))
/* v = capacity << 32 | slots, elements of 8 bytes */
TT_CALL(k_slots, (tt_put(h, OFF(capacity), v >> 32), tt_put(h, OFF(slots), v),
		  create_from(h, 0)))
/* v = slots << 32 | _pad1, capacity 4 */
TT_CALL(k_pad1, (tt_put(h, OFF(capacity), 4), tt_put(h, OFF(slots), v >> 32),
		  tt_put(h, OFF(_pad1), v), create_from(h, 0)))
#define CS(cap, slots) (((uint64_t)(cap) << 32) | (slots))

static const struct tt_row ring_config_rows[] = {
	TT_ROW("config_init: cfg NULL", i_null, -EINVAL, CF_CANARY,
	       TT_VALS(sizeof(rmpsc_ring_config), 0)),
	TT_ROW("config_init: size below 1.0", i_size, -EINVAL, CF_CANARY, TT_RANGE(0,
	       RMPSC_RING_CONFIG_SIZE_V1)),
	TT_ROW("config_init: size not a multiple of 8", i_size_not_8, -EINVAL, CF_CANARY,
	       TT_RANGE(RMPSC_RING_CONFIG_SIZE_V1, 256)),
	TT_ROW("config_init: size above a page", i_size, -E2BIG, CF_CANARY,
	       TT_VALS(4096 + 8)),
	TT_ROW("create: cfg NULL", k_null_cfg, -EINVAL, CF_DEFAULT),
	TT_ROW("create: out NULL (cfg NULL or not)", k_null_out, -EINVAL, CF_DEFAULT,
	       TT_VALS(0, 1)),
	TT_ROW("create: size below 1.0", k_size, -EINVAL, CF_DEFAULT, TT_VALS(0, 4, 8, 16,
	       20, 23)),
	TT_ROW("create: size not a multiple of 8", k_size, -EINVAL, CF_DEFAULT,
	       TT_VALS(25, 28, 31, 36, 60, 255)),
	TT_ROW("create: a byte past the known struct not zero", k_tail, -E2BIG,
	       CF_DEFAULT, TT_RANGE(32 << 8, 129 << 8)),
	TT_ROW("create: size above a page (not read past its own bytes)", k_size, -E2BIG,
	       CF_GUARDED, TT_VALS(4096 + 8, 8192, 1u << 20, 0xfffffff8u)),
	TT_ROW("create: a zeroed config of a page", k_whole_page, 0, CF_GUARDED),
	TT_ROW("create: capacity not a power of two or too large", k_capacity, -EINVAL,
	       CF_DEFAULT,
	  TT_VALS(0, 3, 5, 6, 7, 12, 100, 1000, 1023, 1025, RMPSC_RING_CAPACITY_MAX - 1,
		  RMPSC_RING_CAPACITY_MAX + 1, (uint32_t)RMPSC_RING_CAPACITY_MAX << 1, 0x80000001u,
		  UINT32_MAX)),
	TT_ROW("create: elem_size 0 or too large", k_elem_size, -EINVAL, CF_DEFAULT,
	  TT_VALS(0, RMPSC_RING_ELEM_SIZE_MAX + 1, (uint32_t)RMPSC_RING_ELEM_SIZE_MAX << 1, 0x80000000u, UINT32_MAX)),
	TT_ROW("create: an unknown flag bit", k_flag_bit, -EINVAL, CF_DEFAULT, TT_RANGE(0,
	       32)),
	TT_ROW("create: an unknown flag bit with PREFAULT", k_flag_bit_prefault, -EINVAL,
	       CF_DEFAULT, TT_RANGE(0, 32)),
	TT_ROW("create: every unknown flag", k_flags, -EINVAL, CF_DEFAULT,
	       TT_VALS(~(uint32_t)RMPSC_RING_F_ALL, UINT32_MAX)),
	TT_ROW("create: numa_node below RMPSC_NODE_ANY", k_numa, -EINVAL, CF_DEFAULT,
	  TT_VALS((uint32_t)-2, (uint32_t)-3, (uint32_t)-1000, (uint32_t)INT32_MIN)),
	TT_ROW("create: _pad0 not zero", k_pad0, -EINVAL, CF_DEFAULT, TT_VALS(1, 0x80,
	       0x80000000u, UINT32_MAX)),
	TT_ROW("create: slots below capacity", k_slots, -EINVAL, CF_DEFAULT,
	  TT_VALS(CS(2, 1), CS(4, 1), CS(4, 2), CS(1024, 512), CS(1024, 1))),
	TT_ROW("create: slots not a power of two", k_slots, -EINVAL, CF_DEFAULT,
	  TT_VALS(CS(1, 3), CS(4, 5), CS(4, 6), CS(4, 12), CS(4, 1000), CS(8, 24))),
	TT_ROW("create: slots above the largest capacity", k_slots, -EINVAL, CF_DEFAULT,
	  TT_VALS(CS(4, (uint32_t)RMPSC_RING_CAPACITY_MAX * 2u), CS(4, UINT32_MAX),
		  CS(4, (uint32_t)RMPSC_RING_CAPACITY_MAX + 1u))),
	TT_ROW("create: _pad1 not zero (slots 0 or 16)", k_pad1, -EINVAL, CF_DEFAULT,
	  TT_VALS(CS(0, 1), CS(0, 0x80000000u), CS(0, UINT32_MAX), CS(16, 1), CS(16, 0x80000000u),
		  CS(16, UINT32_MAX))),
};

TT_TEST(test_ring_config_calls_with_bad_argument_return_documented_code,
	.name = "ring config", TT_ROWS(ring_config_rows), .setup = cfg_fx,
	.check = tt_struct_check, .teardown = cfg_fx_free)

/* ---- destroy ------------------------------------------------------------ */

/*
 * What ring.h and common.h say of a call after destroy: the memory is gone
 * (unmapped), so the call does not return at all: it dies with SIGSEGV
 * (cmocka's and the sanitizers' handlers are taken out of the child). (The
 * header used to promise that such a call would likely fail with -EBADF;
 * bindings rely on what it says now: they must not make the call.) Each
 * call runs in a child process: a second destroy, a status call, a push.
 */
static void test_ring_call_after_destroy_does_not_return(void **state)
{
	(void)state;
	for (int call = 0; call < 3; call++) {
		pid_t pid = fork();
		int st;

		assert_true(pid >= 0);
		if (pid == 0) {
			rmpsc_ring_config cfg;
			rmpsc_ring *r = NULL;
			uint64_t v = 1;

			signal(SIGSEGV, SIG_DFL);
			if (rmpsc_ring_config_init(&cfg, sizeof cfg) || rmpsc_ring_create(&cfg, &r))
				_exit(2);
			rmpsc_ring_destroy(r);
			if (call == 0)
				rmpsc_ring_destroy(r);
			else if (call == 1)
				(void)rmpsc_ring_len(r);
			else
				(void)rmpsc_ring_push(r, &v);
			_exit(3); /* the call returned */
		}
		assert_int_equal(waitpid(pid, &st, 0), pid);
		if (WIFEXITED(st) && (WEXITSTATUS(st) == 3 || WEXITSTATUS(st) == 0))
			fail_msg("call %d after destroy returned", call);
		assert_false(WIFEXITED(st) && WEXITSTATUS(st) == 2);
		assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV);
	}
}

/* ---- reserve / reserve_exact / commit ------------------------------------ */

static void test_ring_reserve_when_empty_returns_requested_span(void **state)
{
	rmpsc_ring *r = *state;
	unsigned char *slot0 = ring_slot0(r);
	rmpsc_span s;

	assert_ret(rmpsc_ring_reserve(r, 3, &s), 3);
	check_span(&s, slot0, FIX_CAP, FIX_ESZ, 0, 3);
	fill_vals(s.iov[0].iov_base, 100, 3);
	/* reserved slots are not visible yet */
	assert_ret(rmpsc_ring_len(r), 0);
	assert_ret(rmpsc_ring_pop(r, &(uint64_t){ 0 }), -EAGAIN);
	assert_ret(rmpsc_ring_commit(r, 3), 0);
	assert_ret(rmpsc_ring_len(r), 3);
	ring_pop_seq(r, 100, 3);
}

static void test_ring_reserve_with_more_than_free_returns_free_count(void **state)
{
	rmpsc_ring *r = *state;
	unsigned char *slot0 = ring_slot0(r);
	rmpsc_span s;

	ring_push_seq(r, 0, 5);
	assert_ret(rmpsc_ring_reserve(r, 8, &s), 3);
	check_span(&s, slot0, FIX_CAP, FIX_ESZ, 5, 3);
	assert_ret(rmpsc_ring_reserve(r, UINT32_MAX, &s), 3);
	check_span(&s, slot0, FIX_CAP, FIX_ESZ, 5, 3);
	fill_vals(s.iov[0].iov_base, 5, 3);
	assert_ret(rmpsc_ring_commit(r, 3), 0);
	assert_ret(rmpsc_ring_is_full(r), 1);
	ring_pop_seq(r, 0, 8);
}

static void test_ring_reserve_when_full_returns_eagain(void **state)
{
	rmpsc_ring *r = *state;
	rmpsc_span s;

	ring_push_seq(r, 10, FIX_CAP);
	assert_ret(rmpsc_ring_reserve(r, 1, &s), -EAGAIN);
	assert_ret(rmpsc_ring_reserve(r, FIX_CAP, &s), -EAGAIN);
	assert_ret(rmpsc_ring_reserve(r, UINT32_MAX, &s), -EAGAIN);
	assert_ret(rmpsc_ring_commit(r, 1), -EINVAL);
	assert_ret(rmpsc_ring_len(r), FIX_CAP);
	/* one slot freed: reservable again */
	ring_pop_seq(r, 10, 1);
	assert_ret(rmpsc_ring_reserve(r, 4, &s), 1);
	ring_pop_seq(r, 11, FIX_CAP - 1);
}

static void test_ring_reserve_when_closed_returns_epipe(void **state)
{
	rmpsc_ring *r = *state;
	rmpsc_span s;

	ring_push_seq(r, 0, 2);
	assert_ret(rmpsc_ring_close(r), 0);
	assert_ret(rmpsc_ring_reserve(r, 1, &s), -EPIPE);
	assert_ret(rmpsc_ring_reserve(r, 6, &s), -EPIPE);
	assert_ret(rmpsc_ring_commit(r, 1), -EINVAL);
	assert_ret(rmpsc_ring_len(r), 2);
}

static void test_ring_reserve_with_zero_n_returns_empty_span(void **state)
{
	rmpsc_ring *r = *state;
	rmpsc_span s;

	ring_push_seq(r, 0, 3);
	memset(&s, 0xff, sizeof s);
	assert_ret(rmpsc_ring_reserve(r, 0, &s), 0);
	check_empty_span(&s, 3);
	assert_ret(rmpsc_ring_commit(r, 1), -EINVAL);
	assert_ret(rmpsc_ring_len(r), 3);
	/* also on a full ring */
	ring_push_seq(r, 3, FIX_CAP - 3);
	memset(&s, 0xff, sizeof s);
	assert_ret(rmpsc_ring_reserve(r, 0, &s), 0);
	check_empty_span(&s, FIX_CAP);
}

static void test_ring_reserve_twice_replaces_first_reservation(void **state)
{
	rmpsc_ring *r = *state;
	rmpsc_span s1, s2;

	ring_push_seq(r, 0, 1);
	ring_pop_seq(r, 0, 1);
	assert_ret(rmpsc_ring_reserve(r, 4, &s1), 4);
	fill_vals(s1.iov[0].iov_base, 900, 4);
	assert_ret(rmpsc_ring_reserve(r, 2, &s2), 2);
	assert_int_equal(s2.pos, s1.pos);
	assert_ptr_equal(s2.iov[0].iov_base, s1.iov[0].iov_base);
	assert_int_equal(s2.count[0], 2);
	/* only the second reservation counts */
	assert_ret(rmpsc_ring_commit(r, 3), -EINVAL);
	assert_ret(rmpsc_ring_len(r), 0);
	fill_vals(s2.iov[0].iov_base, 200, 2);
	assert_ret(rmpsc_ring_commit(r, 2), 0);
	assert_ret(rmpsc_ring_commit(r, 1), -EINVAL);
	assert_ret(rmpsc_ring_len(r), 2);
	ring_pop_seq(r, 200, 2);

	/* a reserve of 0 is a new reserve too: it leaves nothing reserved */
	assert_ret(rmpsc_ring_reserve(r, 3, &s1), 3);
	assert_ret(rmpsc_ring_reserve(r, 0, &s2), 0);
	assert_ret(rmpsc_ring_commit(r, 1), -EINVAL);
	assert_ret(rmpsc_ring_reserve(r, 3, &s1), 3);
	assert_ret(rmpsc_ring_reserve_exact(r, 0, &s2), 0);
	assert_ret(rmpsc_ring_commit(r, 1), -EINVAL);
	assert_ret(rmpsc_ring_len(r), 0);
}

static void test_ring_reserve_exact_when_enough_free_returns_n(void **state)
{
	rmpsc_ring *r = *state;
	unsigned char *slot0 = ring_slot0(r);
	rmpsc_span s;

	assert_ret(tc_set_position(r, 6), 0);
	assert_ret(rmpsc_ring_reserve_exact(r, FIX_CAP, &s), FIX_CAP);
	check_span(&s, slot0, FIX_CAP, FIX_ESZ, 6, FIX_CAP);
	span_fill(&s, FIX_ESZ, FIX_CAP, 6, 1);
	assert_ret(rmpsc_ring_commit(r, FIX_CAP), 0);
	assert_ret(rmpsc_ring_is_full(r), 1);
	assert_ret(rmpsc_ring_readable(r, FIX_CAP, &s), FIX_CAP);
	span_expect(&s, FIX_ESZ, FIX_CAP, 6, 1);
}

static void test_ring_reserve_exact_with_fewer_free_returns_eagain(void **state)
{
	rmpsc_ring *r = *state;
	rmpsc_span s;

	ring_push_seq(r, 0, 6);
	assert_ret(rmpsc_ring_reserve_exact(r, 3, &s), -EAGAIN);
	assert_ret(rmpsc_ring_commit(r, 1), -EINVAL);
	assert_ret(rmpsc_ring_reserve_exact(r, 2, &s), 2);
	assert_int_equal(s.pos, 6);
	fill_vals(s.iov[0].iov_base, 6, 2);
	assert_ret(rmpsc_ring_commit(r, 2), 0);
	assert_ret(rmpsc_ring_reserve_exact(r, 1, &s), -EAGAIN);
	ring_pop_seq(r, 0, FIX_CAP);
}

static void test_ring_reserve_exact_when_closed_returns_epipe(void **state)
{
	rmpsc_ring *r = *state;
	rmpsc_span s;

	assert_ret(rmpsc_ring_close(r), 0);
	assert_ret(rmpsc_ring_reserve_exact(r, 1, &s), -EPIPE);
	assert_ret(rmpsc_ring_reserve_exact(r, FIX_CAP, &s), -EPIPE);
	assert_ret(rmpsc_ring_len(r), 0);
}

static void test_ring_reserve_exact_with_zero_n_returns_empty_span(void **state)
{
	rmpsc_ring *r = *state;
	rmpsc_span s;

	ring_push_seq(r, 0, 2);
	memset(&s, 0xff, sizeof s);
	assert_ret(rmpsc_ring_reserve_exact(r, 0, &s), 0);
	check_empty_span(&s, 2);
	assert_ret(rmpsc_ring_len(r), 2);
}

static void test_ring_commit_more_than_reserved_returns_einval_and_changes_nothing(
	void **state)
{
	rmpsc_ring *r = *state;
	rmpsc_span s;

	assert_ret(tc_set_position(r, 6), 0);
	assert_ret(rmpsc_ring_reserve_exact(r, 3, &s), 3);
	*(uint64_t *)span_at(&s, FIX_ESZ, 0) = 60;
	*(uint64_t *)span_at(&s, FIX_ESZ, 1) = 61;
	*(uint64_t *)span_at(&s, FIX_ESZ, 2) = 62;
	assert_ret(rmpsc_ring_commit(r, 4), -EINVAL);
	assert_ret(rmpsc_ring_commit(r, UINT32_MAX), -EINVAL);
	assert_ret(rmpsc_ring_len(r), 0);
	assert_ret(rmpsc_ring_is_empty(r), 1);
	/* the reservation is intact */
	assert_ret(rmpsc_ring_commit(r, 3), 0);
	assert_ret(rmpsc_ring_len(r), 3);
	assert_ret(rmpsc_ring_readable(r, 8, &s), 3);
	assert_int_equal(s.pos, 6);
	ring_pop_seq(r, 60, 3);
}

static void test_ring_commit_without_reservation_returns_einval(void **state)
{
	rmpsc_ring *r = *state;
	rmpsc_span s;

	assert_ret(rmpsc_ring_commit(r, 1), -EINVAL);
	assert_ret(rmpsc_ring_len(r), 0);
	assert_ret(rmpsc_ring_reserve(r, 2, &s), 2);
	assert_ret(rmpsc_ring_commit(r, 2), 0);
	assert_ret(rmpsc_ring_commit(r, 1), -EINVAL);
	assert_ret(rmpsc_ring_len(r), 2);
}

static void test_ring_commit_zero_returns_zero_and_changes_nothing(void **state)
{
	rmpsc_ring *r = *state;
	rmpsc_span s;

	assert_ret(rmpsc_ring_commit(r, 0), 0);
	assert_ret(rmpsc_ring_len(r), 0);
	assert_ret(rmpsc_ring_reserve(r, 2, &s), 2);
	fill_vals(s.iov[0].iov_base, 7, 2);
	assert_ret(rmpsc_ring_commit(r, 0), 0);
	assert_ret(rmpsc_ring_len(r), 0);
	assert_ret(rmpsc_ring_commit(r, 2), 0);
	ring_pop_seq(r, 7, 2);
}

static void test_ring_commit_partial_then_rest_publishes_all(void **state)
{
	rmpsc_ring *r = *state;
	unsigned char *slot0 = ring_slot0(r);
	rmpsc_span s;

	assert_ret(tc_set_position(r, 5), 0);
	assert_ret(rmpsc_ring_reserve_exact(r, 5, &s), 5);
	check_span(&s, slot0, FIX_CAP, FIX_ESZ, 5, 5);
	for (uint32_t i = 0; i < 5; i++)
		*(uint64_t *)span_at(&s, FIX_ESZ, i) = 500 + i;
	assert_ret(rmpsc_ring_commit(r, 2), 0);
	assert_ret(rmpsc_ring_len(r), 2);
	assert_ret(rmpsc_ring_commit(r, 4), -EINVAL);
	assert_ret(rmpsc_ring_len(r), 2);
	ring_pop_seq(r, 500, 1);
	assert_ret(rmpsc_ring_commit(r, 3), 0);
	assert_ret(rmpsc_ring_len(r), 4);
	assert_ret(rmpsc_ring_commit(r, 1), -EINVAL);
	ring_pop_seq(r, 501, 4);
	assert_ret(rmpsc_ring_is_empty(r), 1);
}

static void test_ring_commit_after_close_returns_epipe_publishes_nothing(void **state)
{
	rmpsc_ring *r = *state;
	rmpsc_span s;
	uint64_t v;

	/* committed before the close: delivered; reserved but not committed
	 * when the close came: refused, and the caller is told so */
	assert_ret(rmpsc_ring_reserve_exact(r, 3, &s), 3);
	fill_vals(s.iov[0].iov_base, 40, 3);
	assert_ret(rmpsc_ring_commit(r, 1), 0);
	assert_ret(rmpsc_ring_close(r), 0);
	assert_ret(rmpsc_ring_commit(r, 2), -EPIPE);
	assert_ret(rmpsc_ring_len(r), 1);
	ring_pop_seq(r, 40, 1);
	assert_ret(rmpsc_ring_pop(r, &v), -EPIPE);
	/* an over-commit is still misuse, closed or not */
	assert_ret(rmpsc_ring_commit(r, 3), -EINVAL);
}

static void test_ring_push_after_reserve_drops_reservation(void **state)
{
	rmpsc_ring *r = *state;
	rmpsc_span s;
	uint64_t v[2] = { 71, 72 };

	assert_ret(rmpsc_ring_reserve(r, 3, &s), 3);
	assert_ret(rmpsc_ring_push(r, &v[0]), 0);
	assert_ret(rmpsc_ring_commit(r, 1), -EINVAL);
	assert_ret(rmpsc_ring_len(r), 1);

	assert_ret(rmpsc_ring_reserve(r, 2, &s), 2);
	assert_ret(rmpsc_ring_push_n(r, v, 2), 2);
	assert_ret(rmpsc_ring_commit(r, 1), -EINVAL);

	assert_ret(rmpsc_ring_reserve(r, 2, &s), 2);
	assert_ret(rmpsc_ring_push_n_exact(r, v, 1), 1);
	assert_ret(rmpsc_ring_commit(r, 1), -EINVAL);

	assert_ret(rmpsc_ring_len(r), 4);
	ring_pop_seq(r, 71, 1);
	ring_pop_seq(r, 71, 2);
	ring_pop_seq(r, 71, 1);
}

/* ---- push / push_n / push_n_exact ---------------------------------------- */

static void test_ring_push_when_empty_returns_zero(void **state)
{
	rmpsc_ring *r = *state;
	uint64_t v = 0x1122334455667788ull, w = 0;

	assert_ret(rmpsc_ring_push(r, &v), 0);
	assert_ret(rmpsc_ring_len(r), 1);
	assert_ret(rmpsc_ring_pop(r, &w), 0);
	assert_int_equal(w, v);
}

static void test_ring_push_when_full_returns_eagain(void **state)
{
	rmpsc_ring *r = *state;
	uint64_t v = 999;

	ring_push_seq(r, 20, FIX_CAP);
	assert_ret(rmpsc_ring_push(r, &v), -EAGAIN);
	assert_ret(rmpsc_ring_len(r), FIX_CAP);
	/* the failed push overwrote nothing */
	ring_pop_seq(r, 20, 1);
	assert_ret(rmpsc_ring_push(r, &v), 0);
	ring_pop_seq(r, 21, FIX_CAP - 1);
	ring_pop_seq(r, 999, 1);
}

static void test_ring_push_when_closed_returns_epipe(void **state)
{
	rmpsc_ring *r = *state;
	uint64_t v = 1;

	ring_push_seq(r, 0, 1);
	assert_ret(rmpsc_ring_close(r), 0);
	assert_ret(rmpsc_ring_push(r, &v), -EPIPE);
	assert_ret(rmpsc_ring_len(r), 1);
}

static void test_ring_push_n_with_more_than_free_returns_free_count(void **state)
{
	rmpsc_ring *r = *state;
	uint64_t v[FIX_CAP];

	ring_push_seq(r, 0, 5);
	fill_vals(v, 5, FIX_CAP);
	assert_ret(rmpsc_ring_push_n(r, v, FIX_CAP), 3);
	assert_ret(rmpsc_ring_is_full(r), 1);
	ring_pop_seq(r, 0, FIX_CAP);
	fill_vals(v, 100, FIX_CAP);
	assert_ret(rmpsc_ring_push_n(r, v, 4), 4);
	ring_pop_seq(r, 100, 4);
}

static void test_ring_push_n_when_full_returns_eagain(void **state)
{
	rmpsc_ring *r = *state;
	uint64_t v[2] = { 1, 2 };

	ring_push_seq(r, 0, FIX_CAP);
	assert_ret(rmpsc_ring_push_n(r, v, 2), -EAGAIN);
	assert_ret(rmpsc_ring_push_n(r, v, 1), -EAGAIN);
	assert_ret(rmpsc_ring_len(r), FIX_CAP);
	ring_pop_seq(r, 0, FIX_CAP);
}

static void test_ring_push_n_when_closed_returns_epipe(void **state)
{
	rmpsc_ring *r = *state;
	uint64_t v[2] = { 1, 2 };

	assert_ret(rmpsc_ring_close(r), 0);
	assert_ret(rmpsc_ring_push_n(r, v, 2), -EPIPE);
	assert_ret(rmpsc_ring_len(r), 0);
}

static void test_ring_push_n_with_zero_n_returns_zero(void **state)
{
	rmpsc_ring *r = *state;
	uint64_t v = 5;

	assert_ret(rmpsc_ring_push_n(r, &v, 0), 0);
	assert_ret(rmpsc_ring_push_n(r, NULL, 0), 0);
	assert_ret(rmpsc_ring_len(r), 0);
	ring_push_seq(r, 0, FIX_CAP);
	assert_ret(rmpsc_ring_push_n(r, &v, 0), 0);
	assert_ret(rmpsc_ring_len(r), FIX_CAP);
}

static void test_ring_push_n_exact_when_enough_free_returns_n(void **state)
{
	rmpsc_ring *r = *state;
	uint64_t v[FIX_CAP];

	assert_ret(tc_set_position(r, 3), 0);
	fill_vals(v, 30, FIX_CAP);
	assert_ret(rmpsc_ring_push_n_exact(r, v, FIX_CAP), FIX_CAP);
	assert_ret(rmpsc_ring_is_full(r), 1);
	ring_pop_seq(r, 30, FIX_CAP);
}

static void test_ring_push_n_exact_with_fewer_free_returns_eagain(void **state)
{
	rmpsc_ring *r = *state;
	uint64_t v[3] = { 6, 7, 8 };

	ring_push_seq(r, 0, 6);
	assert_ret(rmpsc_ring_push_n_exact(r, v, 3), -EAGAIN);
	assert_ret(rmpsc_ring_len(r), 6);
	assert_ret(rmpsc_ring_push_n_exact(r, v, 2), 2);
	assert_ret(rmpsc_ring_push_n_exact(r, v, 1), -EAGAIN);
	ring_pop_seq(r, 0, FIX_CAP);
}

static void test_ring_push_n_exact_when_closed_returns_epipe(void **state)
{
	rmpsc_ring *r = *state;
	uint64_t v[2] = { 1, 2 };

	assert_ret(rmpsc_ring_close(r), 0);
	assert_ret(rmpsc_ring_push_n_exact(r, v, 2), -EPIPE);
	assert_ret(rmpsc_ring_push_n_exact(r, v, 1), -EPIPE);
	assert_ret(rmpsc_ring_len(r), 0);
}

static void test_ring_push_n_exact_with_zero_n_returns_zero(void **state)
{
	rmpsc_ring *r = *state;
	uint64_t v = 5;

	assert_ret(rmpsc_ring_push_n_exact(r, &v, 0), 0);
	assert_ret(rmpsc_ring_push_n_exact(r, NULL, 0), 0);
	ring_push_seq(r, 0, FIX_CAP);
	assert_ret(rmpsc_ring_push_n_exact(r, &v, 0), 0);
	assert_ret(rmpsc_ring_len(r), FIX_CAP);
}

/* ---- readable / advance --------------------------------------------------- */

static void test_ring_readable_with_more_than_committed_returns_committed(void **state)
{
	rmpsc_ring *r = *state;
	unsigned char *slot0 = ring_slot0(r);
	rmpsc_span s, t;

	assert_ret(tc_set_position(r, 6), 0);
	ring_push_seq(r, 60, 3);
	assert_ret(rmpsc_ring_reserve(r, 2, &t), 2); /* uncommitted: not readable */
	assert_ret(rmpsc_ring_readable(r, FIX_CAP, &s), 3);
	check_span(&s, slot0, FIX_CAP, FIX_ESZ, 6, 3);
	assert_int_equal(*(uint64_t *)span_at(&s, FIX_ESZ, 0), 60);
	assert_int_equal(*(uint64_t *)span_at(&s, FIX_ESZ, 1), 61);
	assert_int_equal(*(uint64_t *)span_at(&s, FIX_ESZ, 2), 62);
	assert_ret(rmpsc_ring_readable(r, UINT32_MAX, &s), 3);
	assert_ret(rmpsc_ring_readable(r, 2, &s), 2);
	check_span(&s, slot0, FIX_CAP, FIX_ESZ, 6, 2);
	/* reading does not consume */
	assert_ret(rmpsc_ring_len(r), 3);
	assert_ret(rmpsc_ring_advance(r, 3), 0);
	assert_ret(rmpsc_ring_is_empty(r), 1);
}

static void test_ring_readable_when_empty_returns_eagain(void **state)
{
	rmpsc_ring *r = *state;
	rmpsc_span s;

	assert_ret(rmpsc_ring_readable(r, 1, &s), -EAGAIN);
	ring_push_seq(r, 0, 1);
	ring_pop_seq(r, 0, 1);
	assert_ret(rmpsc_ring_readable(r, FIX_CAP, &s), -EAGAIN);
}

static void test_ring_readable_when_closed_and_empty_returns_epipe(void **state)
{
	rmpsc_ring *r = *state;
	rmpsc_span s;

	ring_push_seq(r, 0, 2);
	assert_ret(rmpsc_ring_close(r), 0);
	assert_ret(rmpsc_ring_readable(r, 4, &s), 2);
	assert_ret(rmpsc_ring_advance(r, 2), 0);
	assert_ret(rmpsc_ring_readable(r, 4, &s), -EPIPE);
	assert_ret(rmpsc_ring_readable(r, 1, &s), -EPIPE);
}

static void test_ring_readable_with_zero_n_returns_empty_span(void **state)
{
	rmpsc_ring *r = *state;
	rmpsc_span s;

	memset(&s, 0xff, sizeof s);
	assert_ret(rmpsc_ring_readable(r, 0, &s), 0);
	check_empty_span(&s, 0);
	ring_push_seq(r, 0, 3);
	ring_pop_seq(r, 0, 1);
	memset(&s, 0xff, sizeof s);
	assert_ret(rmpsc_ring_readable(r, 0, &s), 0);
	check_empty_span(&s, 1);
	assert_ret(rmpsc_ring_len(r), 2);
}

static void test_ring_advance_partial_releases_front(void **state)
{
	rmpsc_ring *r = *state;
	rmpsc_span s;

	ring_push_seq(r, 0, 4);
	assert_ret(rmpsc_ring_readable(r, 4, &s), 4);
	assert_ret(rmpsc_ring_advance(r, 1), 0);
	assert_ret(rmpsc_ring_len(r), 3);
	assert_ret(rmpsc_ring_readable(r, 4, &s), 3);
	assert_int_equal(s.pos, 1);
	assert_int_equal(*(uint64_t *)span_at(&s, FIX_ESZ, 0), 1);
	/* advance works on committed elements even without a readable call */
	ring_push_seq(r, 4, 2);
	assert_ret(rmpsc_ring_advance(r, 4), 0);
	ring_pop_seq(r, 5, 1);
}

static void test_ring_advance_past_readable_returns_einval_and_changes_nothing(
	void **state)
{
	rmpsc_ring *r = *state;
	rmpsc_span s;

	assert_ret(rmpsc_ring_advance(r, 1), -EINVAL);
	ring_push_seq(r, 10, 3);
	assert_ret(rmpsc_ring_reserve(r, 2, &s), 2); /* uncommitted slots do not count */
	assert_ret(rmpsc_ring_readable(r, 3, &s), 3);
	assert_ret(rmpsc_ring_advance(r, 4), -EINVAL);
	assert_ret(rmpsc_ring_advance(r, UINT32_MAX), -EINVAL);
	assert_ret(rmpsc_ring_len(r), 3);
	assert_ret(rmpsc_ring_readable(r, 3, &s), 3);
	assert_int_equal(s.pos, 0);
	ring_pop_seq(r, 10, 3);
	assert_ret(rmpsc_ring_advance(r, 1), -EINVAL);
}

static void test_ring_advance_zero_returns_zero(void **state)
{
	rmpsc_ring *r = *state;

	assert_ret(rmpsc_ring_advance(r, 0), 0);
	ring_push_seq(r, 0, 2);
	assert_ret(rmpsc_ring_advance(r, 0), 0);
	assert_ret(rmpsc_ring_len(r), 2);
	ring_pop_seq(r, 0, 2);
}

/* ---- pop / pop_n / pop_n_exact -------------------------------------------- */

static void test_ring_pop_when_nonempty_returns_oldest(void **state)
{
	rmpsc_ring *r = *state;

	ring_push_seq(r, 3, 3);
	ring_pop_seq(r, 3, 1);
	assert_ret(rmpsc_ring_len(r), 2);
	ring_pop_seq(r, 4, 2);
}

static void test_ring_pop_when_empty_returns_eagain(void **state)
{
	rmpsc_ring *r = *state;
	uint64_t v;

	assert_ret(rmpsc_ring_pop(r, &v), -EAGAIN);
	ring_push_seq(r, 0, 1);
	ring_pop_seq(r, 0, 1);
	assert_ret(rmpsc_ring_pop(r, &v), -EAGAIN);
}

static void test_ring_pop_when_closed_returns_remaining_then_epipe(void **state)
{
	rmpsc_ring *r = *state;
	uint64_t v;

	ring_push_seq(r, 7, 2);
	assert_ret(rmpsc_ring_close(r), 0);
	ring_pop_seq(r, 7, 2);
	assert_ret(rmpsc_ring_pop(r, &v), -EPIPE);
	assert_ret(rmpsc_ring_pop(r, &v), -EPIPE);
}

static void test_ring_pop_n_with_more_than_committed_returns_committed(void **state)
{
	rmpsc_ring *r = *state;
	uint64_t v[FIX_CAP] = { 0 };

	assert_ret(tc_set_position(r, 7), 0);
	ring_push_seq(r, 70, 3);
	assert_ret(rmpsc_ring_pop_n(r, v, FIX_CAP), 3);
	vals_expect(v, 70, 3);
	ring_push_seq(r, 73, 5);
	assert_ret(rmpsc_ring_pop_n(r, v, 2), 2);
	vals_expect(v, 73, 2);
	assert_ret(rmpsc_ring_pop_n(r, v, UINT32_MAX), 3);
	vals_expect(v, 75, 3);
}

static void test_ring_pop_n_when_empty_returns_eagain(void **state)
{
	rmpsc_ring *r = *state;
	uint64_t v[2];

	assert_ret(rmpsc_ring_pop_n(r, v, 2), -EAGAIN);
	assert_ret(rmpsc_ring_pop_n(r, v, 1), -EAGAIN);
}

static void test_ring_pop_n_when_closed_returns_remaining_then_epipe(void **state)
{
	rmpsc_ring *r = *state;
	uint64_t v[4];

	ring_push_seq(r, 1, 3);
	assert_ret(rmpsc_ring_close(r), 0);
	assert_ret(rmpsc_ring_pop_n(r, v, 4), 3);
	vals_expect(v, 1, 3);
	assert_ret(rmpsc_ring_pop_n(r, v, 4), -EPIPE);
}

static void test_ring_pop_n_with_zero_n_returns_zero(void **state)
{
	rmpsc_ring *r = *state;
	uint64_t v = 0;

	assert_ret(rmpsc_ring_pop_n(r, &v, 0), 0); /* empty ring too */
	ring_push_seq(r, 0, 2);
	assert_ret(rmpsc_ring_pop_n(r, &v, 0), 0);
	assert_ret(rmpsc_ring_pop_n(r, NULL, 0), 0);
	assert_ret(rmpsc_ring_len(r), 2);
}

/* ---- release batching (rings of capacity >= 1024) ------------------------ */

/*
 * rmpsc_ring_pop on a large ring holds up to 31 popped elements back; every
 * other consumer call publishes them first (ring.h, "Release batching"), so
 * an exact call on either side never waits for room or data that the
 * consumer itself holds.
 */
static void test_ring_pop_batched_release_then_exact_calls_see_every_slot(void **state)
{
	rmpsc_ring *r = ring_make(1024, 8, 0, 0);
	uint64_t v, *buf = calloc(1024, sizeof *buf);

	(void)state;
	assert_non_null(buf);
	for (uint64_t i = 0; i < 1024; i++)
		buf[i] = i;
	assert_ret(rmpsc_ring_push_n_exact(r, buf, 1000), 1000);
	for (uint64_t i = 0; i < 10; i++) {
		assert_ret(rmpsc_ring_pop(r, &v), 0);
		assert_int_equal(v, i);
	}
	/* held back, the first pop's too (it loaded tail itself and found
	 * elements), so the producer sees 1000: room for 24 */
	assert_int_equal(rmpsc_ring_len(r), 1000);
	assert_ret(rmpsc_ring_push_n_exact(r, buf, 30), -EAGAIN);
	/* the consumer's exact call publishes the 10 first, then takes 990 */
	assert_ret(rmpsc_ring_pop_n_exact(r, buf, 990), 990);
	assert_int_equal(buf[0], 10);
	assert_int_equal(rmpsc_ring_len(r), 0);
	for (uint64_t i = 0; i < 30; i++)
		buf[i] = 1000 + i;
	assert_ret(rmpsc_ring_push_n_exact(r, buf, 30), 30);
	free(buf);
	rmpsc_ring_destroy(r);
}

/* Every 32nd pop publishes; drain, peek and an empty pop publish too. */
static void test_ring_pop_batched_release_publishes_every_32_and_on_other_calls(void **state)
{
	rmpsc_ring *r = ring_make(1024, 8, 0, 0);
	uint64_t v, buf[64];

	(void)state;
	for (uint64_t i = 0; i < 64; i++)
		buf[i] = i;
	assert_ret(rmpsc_ring_push_n(r, buf, 64), 64);
	for (uint64_t i = 0; i < 31; i++)
		assert_ret(rmpsc_ring_pop(r, &v), 0);
	assert_int_equal(rmpsc_ring_len(r), 64); /* all 31 held */
	assert_ret(rmpsc_ring_pop(r, &v), 0);
	assert_int_equal(v, 31);
	assert_int_equal(rmpsc_ring_len(r), 32); /* the 32nd published all */
	assert_ret(rmpsc_ring_pop(r, &v), 0);
	assert_int_equal(rmpsc_ring_len(r), 32);
	assert_ret(rmpsc_ring_peek(r, &v), 0); /* a peek publishes the one held */
	assert_int_equal(v, 33);
	assert_int_equal(rmpsc_ring_len(r), 31);
	assert_ret(rmpsc_ring_pop(r, &v), 0);
	assert_int_equal(rmpsc_ring_drain(r, buf, 64), 30); /* and so does drain */
	assert_int_equal(buf[0], 34);
	assert_int_equal(rmpsc_ring_len(r), 0);
	assert_int_equal(rmpsc_ring_is_empty(r), 1);
	/* pops down to empty: the empty answer publishes what was held */
	assert_ret(rmpsc_ring_push_n(r, buf, 3), 3);
	for (int i = 0; i < 3; i++)
		assert_ret(rmpsc_ring_pop(r, &v), 0);
	assert_int_equal(rmpsc_ring_len(r), 3);
	assert_ret(rmpsc_ring_pop(r, &v), -EAGAIN);
	assert_int_equal(rmpsc_ring_len(r), 0);
	rmpsc_ring_destroy(r);
}

/* rmpsc_ring_pop_timed takes the 8-byte pop's path but releases at once,
 * what earlier try pops held back included: a consumer that goes on to
 * block elsewhere never leaves its producer waiting for room it took. */
static void test_ring_pop_timed_releases_at_once_and_publishes_what_pop_held(void **state)
{
	rmpsc_ring *r = ring_make(1024, 8, 0, 0);
	uint64_t v, buf[40];

	(void)state;
	for (uint64_t i = 0; i < 40; i++)
		buf[i] = 100 + i;
	assert_ret(rmpsc_ring_push_n(r, buf, 40), 40);
	for (uint64_t i = 0; i < 5; i++) {
		assert_ret(rmpsc_ring_pop_timed(r, &v, 0, NULL), 0);
		assert_int_equal(v, 100 + i);
		assert_int_equal(rmpsc_ring_len(r), 39 - (int64_t)i);
	}
	/* three try pops held back, then one timed pop publishes all four */
	for (uint64_t i = 5; i < 8; i++) {
		assert_ret(rmpsc_ring_pop(r, &v), 0);
		assert_int_equal(v, 100 + i);
	}
	assert_int_equal(rmpsc_ring_len(r), 35);
	assert_ret(rmpsc_ring_pop_timed(r, &v, -1, NULL), 0);
	assert_int_equal(v, 108);
	assert_int_equal(rmpsc_ring_len(r), 31);
	for (uint64_t i = 9; i < 40; i++)
		assert_ret(rmpsc_ring_pop_timed(r, &v, 0, NULL), 0);
	assert_int_equal(v, 139);
	assert_int_equal(rmpsc_ring_len(r), 0);
	assert_ret(rmpsc_ring_pop_timed(r, &v, 0, NULL), -ETIMEDOUT);
	rmpsc_ring_destroy(r);
}

/* The timed pop of an 8-byte element with RMPSC_WAIT_SPIN and no time
 * limit takes a path of its own (pop1_spin() in ring.c). It answers as the
 * general driver does: releases at once, publishes what try pops held
 * first, honours the ring's own strategy and any negative timeout; with
 * borrows out, on a closed ring and for another element size the driver
 * answers (the waits themselves: test_wait's every-kind tests). */
static void test_ring_pop_timed_spin_unlimited_answers_as_the_driver(void **state)
{
	rmpsc_ring *r = ring_make(1024, 8, 0, 0), *r16 = ring_make(4, 16, 0, 0);
	uint64_t v = 0, buf[40], w16[2] = { 5, 6 }, got16[2] = { 0, 0 };
	rmpsc_wait spin;
	rmpsc_borrow b;

	(void)state;
	assert_ret(rmpsc_wait_init(&spin, sizeof spin, RMPSC_WAIT_SPIN), 0);
	for (uint64_t i = 0; i < 40; i++)
		buf[i] = 200 + i;
	assert_ret(rmpsc_ring_push_n(r, buf, 40), 40);
	/* the first reads tail, the second takes from the cached view */
	for (uint64_t i = 0; i < 2; i++) {
		assert_ret(rmpsc_ring_pop_timed(r, &v, -1, &spin), 0);
		assert_int_equal(v, 200 + i);
		assert_int_equal(rmpsc_ring_len(r), 39 - (int64_t)i);
	}
	/* three try pops hold back; the timed pop publishes all four */
	for (uint64_t i = 2; i < 5; i++)
		assert_ret(rmpsc_ring_pop(r, &v), 0);
	assert_int_equal(rmpsc_ring_len(r), 38);
	assert_ret(rmpsc_ring_pop_timed(r, &v, -1, &spin), 0);
	assert_int_equal(v, 205);
	assert_int_equal(rmpsc_ring_len(r), 34);
	/* the ring's own strategy, and negative timeouts other than -1 */
	assert_ret(rmpsc_ring_set_wait(r, &spin), 0);
	assert_ret(rmpsc_ring_pop_timed(r, &v, -1, NULL), 0);
	assert_int_equal(v, 206);
	assert_ret(rmpsc_ring_pop_timed(r, &v, INT64_MIN, &spin), 0);
	assert_int_equal(v, 207);
	assert_int_equal(rmpsc_ring_len(r), 32);
	/* borrows out: -EINVAL, as every pop, and nothing taken */
	assert_ret(rmpsc_ring_borrow(r, 2, &b), 2);
	assert_ret(rmpsc_ring_pop_timed(r, &v, -1, &spin), -EINVAL);
	assert_ret(rmpsc_ring_borrow_commit_all(r), 2);
	assert_int_equal(rmpsc_ring_len(r), 30);
	for (uint64_t i = 210; i < 240; i++) {
		assert_ret(rmpsc_ring_pop_timed(r, &v, -1, &spin), 0);
		assert_int_equal(v, i);
	}
	assert_int_equal(rmpsc_ring_len(r), 0);
	/* closed with one element left: the element, then -EPIPE */
	assert_ret(rmpsc_ring_push(r, &(uint64_t){ 7 }), 0);
	assert_ret(rmpsc_ring_close(r), 0);
	assert_ret(rmpsc_ring_pop_timed(r, &v, -1, &spin), 0);
	assert_int_equal(v, 7);
	assert_ret(rmpsc_ring_pop_timed(r, &v, -1, &spin), -EPIPE);
	/* another element size */
	assert_ret(rmpsc_ring_push(r16, w16), 0);
	assert_ret(rmpsc_ring_pop_timed(r16, got16, -1, &spin), 0);
	assert_memory_equal(got16, w16, sizeof w16);
	assert_int_equal(rmpsc_ring_len(r16), 0);
	assert_ret(rmpsc_ring_pop_timed(r16, got16, 0, &spin), -ETIMEDOUT);
	rmpsc_ring_destroy(r);
	rmpsc_ring_destroy(r16);
}

struct spin_pop {
	rmpsc_ring *r;
	const rmpsc_wait *w;
	uint64_t v;
	int rc;
};

static void *spin_pop_main(void *arg)
{
	struct spin_pop *s = arg;

	s->rc = rmpsc_ring_pop_timed(s->r, &s->v, -1, s->w);
	return NULL;
}

/* Before it spins, that path publishes what try pops held back: a
 * producer that needs the whole ring (reserve_exact of the capacity) gets
 * it while the consumer waits on the empty ring. */
static void test_ring_pop_timed_spin_unlimited_publishes_before_spinning(void **state)
{
	rmpsc_ring *r = ring_make(1024, 8, 0, 0);
	struct spin_pop s = { .r = r, .rc = 1 };
	struct timespec t0, t;
	rmpsc_wait spin;
	rmpsc_span sp;
	pthread_t th;
	uint64_t v;
	int rc, put;

	(void)state;
	assert_ret(rmpsc_wait_init(&spin, sizeof spin, RMPSC_WAIT_SPIN), 0);
	s.w = &spin;
	for (uint64_t i = 0; i < 8; i++)
		assert_ret(rmpsc_ring_push(r, &i), 0);
	for (uint64_t i = 0; i < 8; i++)
		assert_ret(rmpsc_ring_pop(r, &v), 0);
	assert_int_equal(rmpsc_ring_len(r), 8); /* held back */
	assert_int_equal(pthread_create(&th, NULL, spin_pop_main, &s), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		rc = rmpsc_ring_reserve_exact(r, 1024, &sp);
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while (rc == -EAGAIN && t.tv_sec - t0.tv_sec < 10 && sched_yield() == 0);
	/* No assert until the consumer is joined: a failed one would leave it
	 * spinning on a CPU for the rest of the run. */
	if (rc == 1024) {
		memcpy(sp.iov[0].iov_base, &(uint64_t){ 77 }, 8);
		put = rmpsc_ring_commit(r, 1);
	} else {
		/* let the consumer go before failing */
		put = rmpsc_ring_push(r, &(uint64_t){ 77 });
	}
	if (put != 0)
		(void)rmpsc_ring_close(r); /* the consumer then gets -EPIPE */
	assert_int_equal(pthread_join(th, NULL), 0);
	if (rc != 1024)
		fail_msg("reserve_exact(capacity) while the consumer spun: %d", rc);
	assert_ret(put, 0);
	assert_ret(s.rc, 0);
	assert_int_equal(s.v, 77);
	rmpsc_ring_destroy(r);
}

/* Small rings release at every pop, as before. */
static void test_ring_pop_on_small_ring_releases_at_once(void **state)
{
	rmpsc_ring *r = ring_make(512, 8, 0, 0);
	uint64_t v = 7;

	(void)state;
	assert_ret(rmpsc_ring_push(r, &v), 0);
	assert_ret(rmpsc_ring_push(r, &v), 0);
	assert_ret(rmpsc_ring_pop(r, &v), 0);
	assert_int_equal(rmpsc_ring_len(r), 1);
	rmpsc_ring_destroy(r);
}

static void test_ring_pop_n_exact_when_enough_committed_returns_n(void **state)
{
	rmpsc_ring *r = *state;
	uint64_t v[FIX_CAP];

	assert_ret(tc_set_position(r, 5), 0);
	ring_push_seq(r, 50, FIX_CAP);
	assert_ret(rmpsc_ring_pop_n_exact(r, v, FIX_CAP), FIX_CAP);
	vals_expect(v, 50, FIX_CAP);
}

static void test_ring_pop_n_exact_with_fewer_committed_returns_eagain(void **state)
{
	rmpsc_ring *r = *state;
	uint64_t v[4] = { 0 };

	assert_ret(rmpsc_ring_pop_n_exact(r, v, 1), -EAGAIN);
	ring_push_seq(r, 30, 3);
	assert_ret(rmpsc_ring_pop_n_exact(r, v, 4), -EAGAIN);
	assert_ret(rmpsc_ring_len(r), 3);
	assert_ret(rmpsc_ring_pop_n_exact(r, v, 3), 3);
	vals_expect(v, 30, 3);
}

static void test_ring_pop_n_exact_after_close_with_short_tail_returns_eagain(
	void **state)
{
	rmpsc_ring *r = *state;
	uint64_t v[4] = { 0 };

	ring_push_seq(r, 80, 3);
	assert_ret(rmpsc_ring_close(r), 0);
	assert_ret(rmpsc_ring_pop_n_exact(r, v, 4), -EAGAIN);
	assert_ret(rmpsc_ring_len(r), 3);
	/* pop_n still returns the remainder */
	assert_ret(rmpsc_ring_pop_n(r, v, 4), 3);
	vals_expect(v, 80, 3);
	assert_ret(rmpsc_ring_pop_n_exact(r, v, 4), -EPIPE);
	assert_ret(rmpsc_ring_pop_n_exact(r, v, 1), -EPIPE);
}

static void test_ring_pop_n_exact_with_zero_n_returns_zero(void **state)
{
	rmpsc_ring *r = *state;
	uint64_t v = 0;

	assert_ret(rmpsc_ring_pop_n_exact(r, &v, 0), 0);
	ring_push_seq(r, 0, 2);
	assert_ret(rmpsc_ring_pop_n_exact(r, &v, 0), 0);
	assert_ret(rmpsc_ring_pop_n_exact(r, NULL, 0), 0);
	assert_ret(rmpsc_ring_len(r), 2);
}

static void test_ring_pop_n_exact_when_closed_and_empty_returns_epipe(void **state)
{
	rmpsc_ring *r = *state;
	uint64_t v[2];

	assert_ret(rmpsc_ring_close(r), 0);
	assert_ret(rmpsc_ring_pop_n_exact(r, v, 2), -EPIPE);
}

/* ---- peek / peek_n / skip / drain ----------------------------------------- */

static void test_ring_peek_when_nonempty_copies_head_without_consuming(void **state)
{
	rmpsc_ring *r = *state;
	uint64_t v = 0;

	ring_push_seq(r, 44, 2);
	assert_ret(rmpsc_ring_peek(r, &v), 0);
	assert_int_equal(v, 44);
	v = 0;
	assert_ret(rmpsc_ring_peek(r, &v), 0);
	assert_int_equal(v, 44);
	assert_ret(rmpsc_ring_len(r), 2);
	ring_pop_seq(r, 44, 1);
	assert_ret(rmpsc_ring_peek(r, &v), 0);
	assert_int_equal(v, 45);
}

static void test_ring_peek_when_empty_returns_eagain(void **state)
{
	rmpsc_ring *r = *state;
	uint64_t v;

	assert_ret(rmpsc_ring_peek(r, &v), -EAGAIN);
}

static void test_ring_peek_when_closed_and_empty_returns_epipe(void **state)
{
	rmpsc_ring *r = *state;
	uint64_t v = 0;

	ring_push_seq(r, 9, 1);
	assert_ret(rmpsc_ring_close(r), 0);
	assert_ret(rmpsc_ring_peek(r, &v), 0);
	assert_int_equal(v, 9);
	ring_pop_seq(r, 9, 1);
	assert_ret(rmpsc_ring_peek(r, &v), -EPIPE);
}

static void test_ring_peek_n_when_nonempty_copies_without_consuming(void **state)
{
	rmpsc_ring *r = *state;
	uint64_t v[FIX_CAP] = { 0 };

	assert_ret(tc_set_position(r, 6), 0);
	ring_push_seq(r, 60, 5);
	assert_ret(rmpsc_ring_peek_n(r, v, 3), 3);
	vals_expect(v, 60, 3);
	assert_ret(rmpsc_ring_peek_n(r, v, FIX_CAP), 5);
	vals_expect(v, 60, 5);
	assert_ret(rmpsc_ring_len(r), 5);
	ring_pop_seq(r, 60, 5);
}

static void test_ring_peek_n_when_empty_returns_eagain(void **state)
{
	rmpsc_ring *r = *state;
	uint64_t v[2];

	assert_ret(rmpsc_ring_peek_n(r, v, 2), -EAGAIN);
}

static void test_ring_peek_n_when_closed_and_empty_returns_epipe(void **state)
{
	rmpsc_ring *r = *state;
	uint64_t v[2];

	ring_push_seq(r, 0, 1);
	assert_ret(rmpsc_ring_close(r), 0);
	assert_ret(rmpsc_ring_peek_n(r, v, 2), 1);
	ring_pop_seq(r, 0, 1);
	assert_ret(rmpsc_ring_peek_n(r, v, 2), -EPIPE);
}

static void test_ring_peek_n_with_zero_n_returns_zero(void **state)
{
	rmpsc_ring *r = *state;
	uint64_t v;

	assert_ret(rmpsc_ring_peek_n(r, &v, 0), 0);
	ring_push_seq(r, 0, 1);
	assert_ret(rmpsc_ring_peek_n(r, &v, 0), 0);
	assert_ret(rmpsc_ring_peek_n(r, NULL, 0), 0);
	assert_ret(rmpsc_ring_len(r), 1);
}

static void test_ring_skip_when_nonempty_discards_front(void **state)
{
	rmpsc_ring *r = *state;

	assert_ret(tc_set_position(r, 7), 0);
	ring_push_seq(r, 0, 5);
	assert_ret(rmpsc_ring_skip(r, 2), 2);
	assert_ret(rmpsc_ring_len(r), 3);
	ring_pop_seq(r, 2, 1);
	assert_ret(rmpsc_ring_skip(r, FIX_CAP), 2);
	assert_ret(rmpsc_ring_is_empty(r), 1);
	ring_push_seq(r, 5, 1);
	ring_pop_seq(r, 5, 1);
}

static void test_ring_skip_when_empty_returns_eagain(void **state)
{
	rmpsc_ring *r = *state;

	assert_ret(rmpsc_ring_skip(r, 1), -EAGAIN);
}

static void test_ring_skip_when_closed_and_empty_returns_epipe(void **state)
{
	rmpsc_ring *r = *state;

	ring_push_seq(r, 0, 2);
	assert_ret(rmpsc_ring_close(r), 0);
	assert_ret(rmpsc_ring_skip(r, 5), 2);
	assert_ret(rmpsc_ring_skip(r, 1), -EPIPE);
}

static void test_ring_skip_with_zero_n_returns_zero(void **state)
{
	rmpsc_ring *r = *state;

	assert_ret(rmpsc_ring_skip(r, 0), 0);
	ring_push_seq(r, 0, 2);
	assert_ret(rmpsc_ring_skip(r, 0), 0);
	assert_ret(rmpsc_ring_len(r), 2);
}

static void test_ring_drain_when_nonempty_copies_everything(void **state)
{
	rmpsc_ring *r = *state;
	uint64_t v[FIX_CAP + 2] = { 0 };

	assert_ret(tc_set_position(r, 6), 0);
	ring_push_seq(r, 600, 5);
	assert_ret(rmpsc_ring_drain(r, v, FIX_CAP + 2), 5);
	vals_expect(v, 600, 5);
	assert_ret(rmpsc_ring_is_empty(r), 1);
	ring_push_seq(r, 605, FIX_CAP);
	assert_ret(rmpsc_ring_drain(r, v, FIX_CAP), FIX_CAP);
	vals_expect(v, 605, FIX_CAP);
}

static void test_ring_drain_with_null_items_discards(void **state)
{
	rmpsc_ring *r = *state;

	assert_ret(tc_set_position(r, 6), 0);
	ring_push_seq(r, 0, 5);
	assert_ret(rmpsc_ring_drain(r, NULL, 2), 2);
	assert_ret(rmpsc_ring_len(r), 3);
	ring_pop_seq(r, 2, 1);
	assert_ret(rmpsc_ring_drain(r, NULL, UINT32_MAX), 2);
	assert_ret(rmpsc_ring_is_empty(r), 1);
}

static void test_ring_drain_with_max_below_len_takes_max(void **state)
{
	rmpsc_ring *r = *state;
	uint64_t v[FIX_CAP] = { 0 };

	ring_push_seq(r, 10, 5);
	assert_ret(rmpsc_ring_drain(r, v, 3), 3);
	vals_expect(v, 10, 3);
	assert_ret(rmpsc_ring_len(r), 2);
	assert_ret(rmpsc_ring_drain(r, v, 5), 2);
	vals_expect(v, 13, 2);
}

static void test_ring_drain_when_empty_returns_zero(void **state)
{
	rmpsc_ring *r = *state;
	uint64_t v[2];

	assert_ret(rmpsc_ring_drain(r, v, 2), 0);
	assert_ret(rmpsc_ring_drain(r, NULL, 2), 0);
}

static void test_ring_drain_when_closed_returns_remaining_then_zero(void **state)
{
	rmpsc_ring *r = *state;
	uint64_t v[4];

	ring_push_seq(r, 5, 3);
	assert_ret(rmpsc_ring_close(r), 0);
	assert_ret(rmpsc_ring_drain(r, v, 4), 3);
	vals_expect(v, 5, 3);
	assert_ret(rmpsc_ring_drain(r, v, 4), 0);
	assert_ret(rmpsc_ring_drain(r, NULL, 4), 0);
}

static void test_ring_drain_with_zero_max_returns_zero(void **state)
{
	rmpsc_ring *r = *state;
	uint64_t v;

	ring_push_seq(r, 0, 3);
	assert_ret(rmpsc_ring_drain(r, &v, 0), 0);
	assert_ret(rmpsc_ring_drain(r, NULL, 0), 0);
	assert_ret(rmpsc_ring_len(r), 3);
}

/* ---- close, status, reset ------------------------------------------------- */

static void test_ring_is_closed_when_open_returns_zero(void **state)
{
	rmpsc_ring *r = *state;

	assert_ret(rmpsc_ring_is_closed(r), 0);
	ring_push_seq(r, 0, FIX_CAP);
	assert_ret(rmpsc_ring_is_closed(r), 0);
}

static void test_ring_close_when_called_twice_returns_zero(void **state)
{
	rmpsc_ring *r = *state;

	assert_ret(rmpsc_ring_close(r), 0);
	assert_ret(rmpsc_ring_is_closed(r), 1);
	assert_ret(rmpsc_ring_close(r), 0);
	assert_ret(rmpsc_ring_is_closed(r), 1);
}

static void test_ring_close_with_data_keeps_it_for_consumer_then_epipe(void **state)
{
	rmpsc_ring *r = *state;
	uint64_t v[FIX_CAP] = { 0 };
	rmpsc_span s;

	ring_push_seq(r, 0, 5);
	assert_ret(rmpsc_ring_close(r), 0);
	/* producer: closed */
	assert_ret(rmpsc_ring_reserve(r, 1, &s), -EPIPE);
	assert_ret(rmpsc_ring_reserve_exact(r, 1, &s), -EPIPE);
	assert_ret(rmpsc_ring_push(r, v), -EPIPE);
	assert_ret(rmpsc_ring_push_n(r, v, 1), -EPIPE);
	assert_ret(rmpsc_ring_push_n_exact(r, v, 1), -EPIPE);
	/* consumer: everything committed, then closed */
	assert_ret(rmpsc_ring_readable(r, 1, &s), 1);
	assert_ret(rmpsc_ring_advance(r, 1), 0);
	ring_pop_seq(r, 1, 1);
	assert_ret(rmpsc_ring_peek(r, v), 0);
	assert_int_equal(v[0], 2);
	assert_ret(rmpsc_ring_skip(r, 1), 1);
	assert_ret(rmpsc_ring_pop_n_exact(r, v, 1), 1);
	assert_int_equal(v[0], 3);
	assert_ret(rmpsc_ring_pop_n(r, v, 4), 1);
	assert_int_equal(v[0], 4);
	assert_ret(rmpsc_ring_readable(r, 1, &s), -EPIPE);
	assert_ret(rmpsc_ring_pop(r, v), -EPIPE);
	assert_ret(rmpsc_ring_pop_n(r, v, 1), -EPIPE);
	assert_ret(rmpsc_ring_pop_n_exact(r, v, 1), -EPIPE);
	assert_ret(rmpsc_ring_peek(r, v), -EPIPE);
	assert_ret(rmpsc_ring_peek_n(r, v, 1), -EPIPE);
	assert_ret(rmpsc_ring_skip(r, 1), -EPIPE);
	assert_ret(rmpsc_ring_drain(r, v, 1), 0);
	assert_ret(rmpsc_ring_is_empty(r), 1);
	assert_ret(rmpsc_ring_is_closed(r), 1);
}

static void test_ring_epipe_is_final_when_commit_follows_close(void **state)
{
	rmpsc_ring *r = *state;
	rmpsc_span s;
	uint64_t v = 1234;

	assert_ret(rmpsc_ring_reserve_exact(r, 1, &s), 1);
	*(uint64_t *)s.iov[0].iov_base = 1234;
	assert_ret(rmpsc_ring_close(r), 0);
	assert_ret(rmpsc_ring_pop(r, &v), -EPIPE);
	assert_ret(rmpsc_ring_commit(r, 1), -EPIPE);
	assert_ret(rmpsc_ring_push(r, &v), -EPIPE);
	assert_ret(rmpsc_ring_push_n(r, &v, 1), -EPIPE);
	assert_ret(rmpsc_ring_pop(r, &v), -EPIPE);
	assert_ret(rmpsc_ring_len(r), 0);
}

/*
 * The close-versus-publication race (E7 in src/ring_core.h), one path at a
 * time: the states a concurrent close passes through are set by hand on the
 * ring's core (test_core.h), and the producer's publication is the slot and
 * tail stores followed by the call that resolves a publication that found
 * the ring closing.
 */
static void test_ring_publish_racing_undecided_close_ends_stream_at_itself(void **state)
{
	rmpsc_ring *r = *state;
	tc_core *rc = tc_ring_core(r);
	uint64_t v;

	assert_ret(tc_set_position(r, UINT64_MAX - 1), 0); /* across 2^64 */
	ring_push_seq(r, 0, 2);
	/* A closer is in its heavy barrier (closed = 1); the producer
	 * publishes one more and then sees it: it decides the end. */
	tc_set_close_state(rc, TC_CLOSING);
	tc_publish_by_hand(rc, 2);
	assert_ret(tc_publish_closed(rc, UINT64_MAX - 1 + 3), 0);
	assert_int_equal(tc_close_state(rc), TC_CLOSED);
	assert_true(tc_final_tail(rc) == UINT64_MAX - 1 + 3);
	/* The closer's own decision now loses; close returns at once. */
	assert_ret(rmpsc_ring_close(r), 0);
	assert_ret(rmpsc_ring_len(r), 3);
	ring_pop_seq(r, 0, 3);
	assert_ret(rmpsc_ring_pop(r, &v), -EPIPE);
	assert_ret(rmpsc_ring_push(r, &v), -EPIPE);
}

static void test_ring_publish_after_decided_close_returns_epipe_never_delivered(void **state)
{
	rmpsc_ring *r = *state;
	tc_core *rc = tc_ring_core(r);
	uint64_t v, buf[4];
	rmpsc_span s;

	ring_push_seq(r, 0, 2);
	/* A closer read tail == 2 after its barrier and decided; then the
	 * producer's publication lands (it had seen the ring open before). */
	tc_set_final_tail(rc, 2);
	tc_set_close_state(rc, TC_CLOSED);
	tc_publish_by_hand(rc, 99);
	assert_ret(tc_publish_closed(rc, 3), -EPIPE);
	/* Neither status nor any consumer call sees the lost element. */
	assert_ret(rmpsc_ring_len(r), 2);
	assert_ret(rmpsc_ring_readable(r, 4, &s), 2);
	assert_ret(rmpsc_ring_pop_n(r, buf, 4), 2);
	assert_int_equal(buf[0], 0);
	assert_int_equal(buf[1], 1);
	assert_ret(rmpsc_ring_pop(r, &v), -EPIPE);
	assert_ret(rmpsc_ring_peek(r, &v), -EPIPE);
	assert_ret(rmpsc_ring_len(r), 0);
	assert_ret(rmpsc_ring_is_empty(r), 1);
}

static void test_ring_consumer_during_undecided_close_keeps_to_open_tail(void **state)
{
	rmpsc_ring *r = *state;
	tc_core *rc = tc_ring_core(r);
	uint64_t v;

	ring_push_seq(r, 0, 3);
	ring_pop_seq(r, 0, 1); /* the consumer has seen tail == 3 while open */
	/* One more publication, then a close starts before the consumer looks
	 * again: it must not use the new tail (the close may end below it). */
	tc_publish_by_hand(rc, 3);
	tc_set_close_state(rc, TC_CLOSING);
	ring_pop_seq(r, 1, 2);
	assert_ret(rmpsc_ring_pop(r, &v), -EAGAIN);
	assert_ret(rmpsc_ring_peek(r, &v), -EAGAIN);
	/* The end is decided below it: the consumer never gets element 3. */
	tc_set_final_tail(rc, 3);
	tc_set_close_state(rc, TC_CLOSED);
	assert_ret(rmpsc_ring_pop(r, &v), -EPIPE);
	assert_ret(tc_publish_closed(rc, 4), -EPIPE);
}

static void test_ring_consumer_during_undecided_close_gets_covered_tail_once_decided(
	void **state)
{
	rmpsc_ring *r = *state;
	tc_core *rc = tc_ring_core(r);
	uint64_t v;

	ring_push_seq(r, 0, 1);
	ring_pop_seq(r, 0, 1);
	tc_publish_by_hand(rc, 1);
	tc_set_close_state(rc, TC_DECIDING); /* somebody between its two stores */
	assert_ret(rmpsc_ring_pop(r, &v), -EAGAIN);
	tc_set_final_tail(rc, 2);
	tc_set_close_state(rc, TC_CLOSED);
	ring_pop_seq(r, 1, 1);
	assert_ret(rmpsc_ring_pop(r, &v), -EPIPE);
}

static void test_ring_mc_claim_during_undecided_close_returns_eagain_then_final(void **state)
{
	rmpsc_ring *r = *state;
	tc_core *rc = tc_ring_core(r);
	uint64_t pos;

	assert_ret(tc_mc_init(rc), 0);
	ring_push_seq(r, 0, 2);
	tc_publish_by_hand(rc, 2);
	tc_set_close_state(rc, TC_CLOSING);
	assert_ret(tc_mc_claim(rc, 8, &pos), -EAGAIN);
	tc_set_final_tail(rc, 2);
	tc_set_close_state(rc, TC_CLOSED);
	assert_ret(tc_mc_claim(rc, 8, &pos), 2);
	assert_true(pos == 0);
	assert_ret(tc_mc_claim(rc, 8, &pos), -EPIPE);
	tc_mc_complete(rc, 0, 2);
	assert_ret(rmpsc_ring_len(r), 0);
}

static void test_ring_len_when_filling_and_draining_tracks_committed(void **state)
{
	rmpsc_ring *r = *state;
	rmpsc_span s;

	/* a reservation of every slot is neither length nor fullness */
	assert_ret(rmpsc_ring_reserve(r, FIX_CAP, &s), FIX_CAP);
	assert_ret(rmpsc_ring_len(r), 0);
	assert_ret(rmpsc_ring_is_empty(r), 1);
	assert_ret(rmpsc_ring_is_full(r), 0);
	assert_ret(tc_set_position(r, UINT64_MAX - 3), 0);
	for (uint32_t i = 0; i <= FIX_CAP; i++) {
		assert_ret(rmpsc_ring_len(r), i);
		assert_ret(rmpsc_ring_is_empty(r), i == 0);
		assert_ret(rmpsc_ring_is_full(r), i == FIX_CAP);
		if (i < FIX_CAP)
			ring_push_seq(r, i, 1);
	}
	for (uint32_t i = FIX_CAP; i > 0; i--) {
		ring_pop_seq(r, FIX_CAP - i, 1);
		assert_ret(rmpsc_ring_len(r), i - 1);
		assert_ret(rmpsc_ring_is_empty(r), i == 1);
		assert_ret(rmpsc_ring_is_full(r), 0);
	}
}

static void test_ring_capacity_and_elem_size_return_configured_values(void **state)
{
	static const uint32_t shapes[][2] = {
		{ 1, 1 }, { 2, 3 }, { 4, 7 }, { 64, 4096 }, { 1024, 8 }, { 1u << 16, 1 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
		rmpsc_ring *r = ring_make(shapes[i][0], shapes[i][1], 0, 0);

		assert_ret(rmpsc_ring_capacity(r), shapes[i][0]);
		assert_ret(rmpsc_ring_elem_size(r), shapes[i][1]);
		rmpsc_ring_destroy(r);
	}
}

static void test_ring_footprint_when_created_covers_slots_in_whole_pages(void **state)
{
	static const uint32_t shapes[][2] = {
		{ 1, 1 }, { 8, 8 }, { 64, 4096 }, { 1024, 8 }, { 1u << 20, 64 },
	};
	const long page = page_size();

	(void)state;
	for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
		rmpsc_ring *r = ring_make(shapes[i][0], shapes[i][1], 0, 0);
		const int64_t fp = rmpsc_ring_footprint(r);

		assert_true(fp >= (int64_t)shapes[i][0] * shapes[i][1]);
		assert_true(fp > 0);
		assert_int_equal(fp % page, 0);
		rmpsc_ring_destroy(r);
	}
}

static void test_ring_reset_when_used_empties_reopens_and_rewinds(void **state)
{
	rmpsc_ring *r = *state;
	rmpsc_span s;

	assert_ret(rmpsc_ring_reset(r), 0); /* fresh ring */
	assert_ret(tc_set_position(r, 1000), 0);
	ring_push_seq(r, 0, 3);
	assert_ret(rmpsc_ring_reserve(r, 2, &s), 2);
	assert_int_equal(s.pos, 1003);
	assert_ret(rmpsc_ring_close(r), 0);

	assert_ret(rmpsc_ring_reset(r), 0);
	assert_ret(rmpsc_ring_len(r), 0);
	assert_ret(rmpsc_ring_is_empty(r), 1);
	assert_ret(rmpsc_ring_is_full(r), 0);
	assert_ret(rmpsc_ring_is_closed(r), 0);
	assert_ret(rmpsc_ring_commit(r, 1), -EINVAL); /* reservation dropped */
	assert_ret(rmpsc_ring_readable(r, 1, &s), -EAGAIN);
	memset(&s, 0xff, sizeof s);
	assert_ret(rmpsc_ring_readable(r, 0, &s), 0);
	check_empty_span(&s, 0);
	assert_ret(rmpsc_ring_reserve(r, 1, &s), 1);
	assert_int_equal(s.pos, 0);
	*(uint64_t *)s.iov[0].iov_base = 77;
	assert_ret(rmpsc_ring_commit(r, 1), 0);
	assert_ret(rmpsc_ring_readable(r, 1, &s), 1);
	assert_int_equal(s.pos, 0);
	ring_pop_seq(r, 77, 1);
	/* reopened, full capacity available */
	ring_push_seq(r, 0, FIX_CAP);
	assert_ret(rmpsc_ring_is_full(r), 1);
	assert_ret(rmpsc_ring_reset(r), 0);
	assert_ret(rmpsc_ring_is_empty(r), 1);
	ring_push_seq(r, 0, FIX_CAP);
	ring_pop_seq(r, 0, FIX_CAP);
}

/* ---- span shape ------------------------------------------------------------ */

static void test_ring_span_when_wrapping_splits_at_buffer_end(void **state)
{
	rmpsc_ring *r = *state;
	unsigned char *slot0 = ring_slot0(r);
	rmpsc_span s;
	struct iovec *iov = s.iov; /* the type is struct iovec[2] */

	assert_ret(tc_set_position(r, 13), 0); /* slot 5 */
	assert_ret(rmpsc_ring_reserve_exact(r, 6, &s), 6);
	check_span(&s, slot0, FIX_CAP, FIX_ESZ, 13, 6);
	assert_int_equal(s.nseg, 2);
	assert_int_equal(s.count[0], 3);
	assert_int_equal(s.count[1], 3);
	assert_ptr_equal(iov[0].iov_base, slot0 + 5 * FIX_ESZ);
	assert_ptr_equal(iov[1].iov_base, slot0);
	assert_int_equal(iov[0].iov_len, 3 * FIX_ESZ);
	assert_int_equal(iov[1].iov_len, 3 * FIX_ESZ);
	for (uint32_t i = 0; i < 6; i++)
		*(uint64_t *)span_at(&s, FIX_ESZ, i) = 130 + i;
	assert_ret(rmpsc_ring_commit(r, 6), 0);
	/* readable spans split the same way */
	assert_ret(rmpsc_ring_readable(r, 6, &s), 6);
	check_span(&s, slot0, FIX_CAP, FIX_ESZ, 13, 6);
	assert_ret(rmpsc_ring_readable(r, 3, &s), 3);
	check_span(&s, slot0, FIX_CAP, FIX_ESZ, 13, 3);
	assert_int_equal(s.nseg, 1);
	assert_int_equal(s.iov[1].iov_len, 0);
	assert_int_equal(s.count[1], 0);
	ring_pop_seq(r, 130, 6);
}

static void test_ring_span_with_writev_and_readv_moves_bytes_through_pipe(void **state)
{
	enum { CAP = 8, ESZ = 64, N = 6 };
	rmpsc_ring *r = ring_make(CAP, ESZ, 0, 0);
	unsigned char src[N * ESZ], back[N * ESZ], out[N * ESZ];
	int pfd[2];
	rmpsc_span s;

	(void)state;
	assert_int_equal(pipe(pfd), 0);
	assert_ret(tc_set_position(r, 5), 0);
	patterns(src, ESZ, 5, N, 77);

	/* readv straight into a wrapping reservation */
	assert_int_equal(write(pfd[1], src, sizeof src), (ssize_t)sizeof src);
	assert_ret(rmpsc_ring_reserve_exact(r, N, &s), N);
	assert_int_equal(s.nseg, 2);
	assert_int_equal(readv(pfd[0], s.iov, (int)s.nseg), (ssize_t)sizeof src);
	assert_ret(rmpsc_ring_commit(r, N), 0);
	assert_ret(rmpsc_ring_peek_n(r, out, N), N);
	assert_memory_equal(out, src, sizeof src);

	/* writev straight out of a wrapping readable span */
	assert_ret(rmpsc_ring_readable(r, N, &s), N);
	assert_int_equal(s.nseg, 2);
	assert_int_equal(writev(pfd[1], s.iov, (int)s.nseg), (ssize_t)sizeof src);
	assert_int_equal(read(pfd[0], back, sizeof back), (ssize_t)sizeof back);
	assert_memory_equal(back, src, sizeof src);

	/* one segment, then none */
	assert_ret(rmpsc_ring_readable(r, 2, &s), 2);
	assert_int_equal(s.nseg, 1);
	assert_int_equal(writev(pfd[1], s.iov, (int)s.nseg), 2 * ESZ);
	assert_int_equal(read(pfd[0], back, sizeof back), 2 * ESZ);
	assert_memory_equal(back, src, 2 * ESZ);
	assert_ret(rmpsc_ring_readable(r, 0, &s), 0);
	assert_int_equal(writev(pfd[1], s.iov, (int)s.nseg), 0);
	assert_ret(rmpsc_ring_advance(r, N), 0);
	assert_ret(rmpsc_ring_is_empty(r), 1);

	close(pfd[0]);
	close(pfd[1]);
	rmpsc_ring_destroy(r);
}

/* ---- element sizes: byte-exact round trips through every call --------------- */

enum prod_kind { P_PUSH, P_PUSH_N, P_PUSH_N_EXACT, P_RESERVE, P_RESERVE_EXACT, P_KINDS };
enum cons_kind {
	C_POP, C_POP_N, C_POP_N_EXACT, C_READABLE, C_PEEK, C_PEEK_N, C_SKIP, C_DRAIN,
	C_DRAIN_NULL, C_KINDS
};

enum { RT_CAP = 8, RT_EXTRA = 4, RT_STEPS = 40 };

struct rt {
	rmpsc_ring *r;
	const unsigned char *slot0;
	unsigned char *buf; /* cap + RT_EXTRA elements */
	uint32_t cap, esz;
	uint64_t head, tail, salt;
};

static void rt_produce(struct rt *t, enum prod_kind p, uint32_t k)
{
	const uint32_t room = t->cap - (uint32_t)(t->tail - t->head);
	/* "up to" calls are asked for more than fits when k fills the ring */
	const uint32_t ask = k == room ? k + 2 : k;
	rmpsc_span s;
	int rc;

	switch (p) {
	case P_PUSH:
		for (uint32_t i = 0; i < k; i++) {
			pattern(t->buf, t->esz, t->tail + i, t->salt);
			assert_ret(rmpsc_ring_push(t->r, t->buf), 0);
		}
		break;
	case P_PUSH_N:
		patterns(t->buf, t->esz, t->tail, ask, t->salt);
		assert_ret(rmpsc_ring_push_n(t->r, t->buf, ask), k);
		break;
	case P_PUSH_N_EXACT:
		patterns(t->buf, t->esz, t->tail, k, t->salt);
		assert_ret(rmpsc_ring_push_n_exact(t->r, t->buf, k), k);
		break;
	case P_RESERVE:
	case P_RESERVE_EXACT:
		if (p == P_RESERVE)
			rc = rmpsc_ring_reserve(t->r, ask, &s);
		else
			rc = rmpsc_ring_reserve_exact(t->r, k, &s);
		assert_ret(rc, k);
		check_span(&s, t->slot0, t->cap, t->esz, t->tail, k);
		span_fill(&s, t->esz, k, t->tail, t->salt);
		assert_ret(rmpsc_ring_commit(t->r, k), 0);
		break;
	default:
		fail();
	}
	t->tail += k;
	assert_ret(rmpsc_ring_len(t->r), t->tail - t->head);
}

/* After a consume that copies nothing, the next element must be the right one. */
static void rt_expect_next(struct rt *t)
{
	if (t->tail == t->head) {
		assert_ret(rmpsc_ring_peek(t->r, t->buf), -EAGAIN);
		return;
	}
	assert_ret(rmpsc_ring_peek(t->r, t->buf), 0);
	elem_expect(t->buf, t->esz, t->head, t->salt);
}

static void rt_consume(struct rt *t, enum cons_kind c, uint32_t m)
{
	const uint32_t avail = (uint32_t)(t->tail - t->head);
	const uint32_t ask = m == avail ? m + 3 : m;
	const size_t bufsz = (size_t)(t->cap + RT_EXTRA) * t->esz;
	rmpsc_span s;

	memset(t->buf, 0xee, bufsz);
	switch (c) {
	case C_POP:
		for (uint32_t i = 0; i < m; i++) {
			assert_ret(rmpsc_ring_pop(t->r, t->buf), 0);
			elem_expect(t->buf, t->esz, t->head + i, t->salt);
		}
		break;
	case C_POP_N:
		assert_ret(rmpsc_ring_pop_n(t->r, t->buf, ask), m);
		elems_expect(t->buf, t->esz, t->head, m, t->salt);
		break;
	case C_POP_N_EXACT:
		assert_ret(rmpsc_ring_pop_n_exact(t->r, t->buf, m), m);
		elems_expect(t->buf, t->esz, t->head, m, t->salt);
		break;
	case C_READABLE:
		assert_ret(rmpsc_ring_readable(t->r, ask, &s), m);
		check_span(&s, t->slot0, t->cap, t->esz, t->head, m);
		span_expect(&s, t->esz, m, t->head, t->salt);
		assert_ret(rmpsc_ring_advance(t->r, m), 0);
		break;
	case C_PEEK:
		for (uint32_t i = 0; i < m; i++) {
			assert_ret(rmpsc_ring_peek(t->r, t->buf), 0);
			elem_expect(t->buf, t->esz, t->head + i, t->salt);
			assert_ret(rmpsc_ring_len(t->r), avail - i);
			memset(t->buf, 0xee, t->esz);
			assert_ret(rmpsc_ring_pop(t->r, t->buf), 0);
			elem_expect(t->buf, t->esz, t->head + i, t->salt);
		}
		break;
	case C_PEEK_N:
		assert_ret(rmpsc_ring_peek_n(t->r, t->buf, avail + 3), avail);
		elems_expect(t->buf, t->esz, t->head, avail, t->salt);
		assert_ret(rmpsc_ring_len(t->r), avail);
		memset(t->buf, 0xee, bufsz);
		assert_ret(rmpsc_ring_peek_n(t->r, t->buf, m), m);
		elems_expect(t->buf, t->esz, t->head, m, t->salt);
		assert_ret(rmpsc_ring_pop_n(t->r, t->buf, m), m);
		elems_expect(t->buf, t->esz, t->head, m, t->salt);
		break;
	case C_SKIP:
		assert_ret(rmpsc_ring_skip(t->r, ask), m);
		break;
	case C_DRAIN:
		assert_ret(rmpsc_ring_drain(t->r, t->buf, ask), m);
		elems_expect(t->buf, t->esz, t->head, m, t->salt);
		break;
	case C_DRAIN_NULL:
		assert_ret(rmpsc_ring_drain(t->r, NULL, ask), m);
		break;
	default:
		fail();
	}
	t->head += m;
	assert_ret(rmpsc_ring_len(t->r), t->tail - t->head);
	if (c == C_SKIP || c == C_DRAIN_NULL)
		rt_expect_next(t);
}

/* ---- wrap-around at every offset ------------------------------------------- */

enum { WRAP_ESZ = 8, WRAP_CAP_MAX = 64 };

static void expect_full(rmpsc_ring *r, uint32_t cap)
{
	rmpsc_span s;
	uint64_t v = 0;

	assert_ret(rmpsc_ring_len(r), cap);
	assert_ret(rmpsc_ring_is_full(r), 1);
	assert_ret(rmpsc_ring_is_empty(r), 0);
	assert_ret(rmpsc_ring_push(r, &v), -EAGAIN);
	assert_ret(rmpsc_ring_reserve(r, 1, &s), -EAGAIN);
}

static void expect_empty(rmpsc_ring *r)
{
	rmpsc_span s;
	uint64_t v;

	assert_ret(rmpsc_ring_len(r), 0);
	assert_ret(rmpsc_ring_is_empty(r), 1);
	assert_ret(rmpsc_ring_is_full(r), 0);
	assert_ret(rmpsc_ring_readable(r, 1, &s), -EAGAIN);
	assert_ret(rmpsc_ring_pop(r, &v), -EAGAIN);
}

/*
 * From free-running position @start, fill the whole ring in batches of @b
 * and drain it again, four times with a different pair of calls (the round
 * trip's producer and consumer steps), checking every value and every
 * span's segment split and position.
 */
static void wrap_cycle(struct rt *t, uint64_t start, uint32_t b)
{
	static const struct {
		enum prod_kind p;
		enum cons_kind c;
	} rounds[] = {
		{ P_RESERVE_EXACT, C_READABLE },
		{ P_RESERVE, C_PEEK_N },
		{ P_PUSH_N, C_POP_N_EXACT },
		{ P_PUSH_N_EXACT, C_DRAIN },
	};
	rmpsc_span s;

	assert_ret(tc_set_position(t->r, start), 0);
	t->head = t->tail = start;
	for (size_t i = 0; i < sizeof rounds / sizeof rounds[0]; i++, t->salt++) {
		while (t->tail - t->head < t->cap) {
			const uint32_t room = t->cap - (uint32_t)(t->tail - t->head);

			rt_produce(t, rounds[i].p, min_u32(b, room));
		}
		expect_full(t->r, t->cap);
		while (t->tail != t->head)
			rt_consume(t, rounds[i].c, min_u32(b,
							   (uint32_t)(t->tail - t->head)));
		expect_empty(t->r);
	}
	assert_ret(rmpsc_ring_readable(t->r, 0, &s), 0);
	assert_int_equal(s.pos, start + 4ull * t->cap);
}

enum wrap_base { WRAP_FROM_0, WRAP_ACROSS_2_32, WRAP_ACROSS_2_64 };

static void wrap_every_offset(enum wrap_base base)
{
	struct rt t = { .esz = WRAP_ESZ, .salt = (uint64_t)base << 40 };

	t.buf = malloc((size_t)(WRAP_CAP_MAX + RT_EXTRA) * WRAP_ESZ);
	assert_non_null(t.buf);
	for (t.cap = 1; t.cap <= WRAP_CAP_MAX; t.cap *= 2) {
		const uint32_t cap = t.cap;

		t.r = ring_make(cap, WRAP_ESZ, 0, 0);
		t.slot0 = ring_slot0(t.r);
		for (uint32_t off = 0; off < cap; off++) {
			/* the four rounds cover [start, start + 4 * cap) */
			uint64_t start = off;

			if (base == WRAP_ACROSS_2_32) {
				start = (1ull << 32) - 2ull * cap + off;
				assert_true(start < (1ull << 32));
				assert_true(start + 4ull * cap > (1ull << 32));
			} else if (base == WRAP_ACROSS_2_64) {
				start = 0 - 2ull * cap + off;
				assert_true(start + 4ull * cap < start);
			}
			assert_int_equal(start & (cap - 1), off);
			for (uint32_t b = 1; b <= cap; b++)
				wrap_cycle(&t, start, b);
		}
		rmpsc_ring_destroy(t.r);
	}
	free(t.buf);
}
static const uint32_t rt_sizes[] = { 1, 3, 8, 64, 4096 };
/* from 0, and just below the 2^32 and 2^64 wraps */
static const uint64_t rt_starts[] = { 0, (1ull << 32) - 11, UINT64_MAX - 10 };

static void roundtrip_from(enum prod_kind p, enum cons_kind c, uint32_t esz,
			   uint64_t start)
{
	struct rt t;

	t.cap = RT_CAP;
	t.esz = esz;
	t.r = ring_make(RT_CAP, esz, 0, 0);
	t.slot0 = ring_slot0(t.r);
	t.buf = malloc((size_t)(RT_CAP + RT_EXTRA) * esz);
	assert_non_null(t.buf);
	t.salt = ((uint64_t)p << 48) ^ ((uint64_t)c << 40) ^ esz;
	assert_ret(tc_set_position(t.r, start), 0);
	t.head = t.tail = start;
	for (uint32_t step = 0; step < RT_STEPS; step++) {
		const uint32_t room = RT_CAP - (uint32_t)(t.tail - t.head);
		uint32_t len, m;

		rt_produce(&t, p, 1 + (step * 5 + 3) % room);
		len = (uint32_t)(t.tail - t.head);
		/* leave 0, half or all but one behind so both sides move around */
		m = len;
		if (len > 1 && step % 3 == 1)
			m = len / 2;
		else if (len > 1 && step % 3 == 2)
			m = len - 1;
		rt_consume(&t, c, m);
	}
	/* the positions went past the wrap point */
	assert_true(t.tail - start > 11);
	free(t.buf);
	rmpsc_ring_destroy(t.r);
}

static void roundtrip(enum prod_kind p, enum cons_kind c)
{
	for (size_t i = 0; i < sizeof rt_sizes / sizeof rt_sizes[0]; i++)
		for (size_t j = 0; j < sizeof rt_starts / sizeof rt_starts[0]; j++)
			roundtrip_from(p, c, rt_sizes[i], rt_starts[j]);
}

/* The cases of the wrap (TEST_PARAM: the base) and of the round trips
 * (TEST_PARAM: RT(producer kind, consumer kind)). */
static void test_ring_wrap_at_every_offset_preserves_order(void **state)
{
	wrap_every_offset((enum wrap_base)test_param(state));
}

#define RT(p, c) ((uintptr_t)(p) << 8 | (uintptr_t)(c))

static void test_ring_roundtrip_byte_exact(void **state)
{
	const uintptr_t pc = test_param(state);

	roundtrip((enum prod_kind)(pc >> 8), (enum cons_kind)(pc & 0xff));
}

static void test_ring_every_producer_with_every_consumer_roundtrips_byte_exact(
	void **state)
{
	(void)state;
	for (int p = 0; p < P_KINDS; p++)
		for (int c = 0; c < C_KINDS; c++)
			for (size_t i = 0; i < sizeof rt_sizes / sizeof rt_sizes[0]; i++)
				roundtrip_from((enum prod_kind)p, (enum cons_kind)c,
					       rt_sizes[i], UINT64_MAX - 10);
}

static void test_ring_slots_config_init_writes_zero_slots(void **state)
{
	union cfgbuf u;

	(void)state;
	memset(u.b, CANARY, sizeof u.b);
	assert_ret(rmpsc_ring_config_init(&u.cfg, sizeof u.cfg), 0);
	assert_int_equal(u.cfg.size, sizeof u.cfg);
	assert_int_equal(u.cfg.slots, 0);
	assert_int_equal(u.cfg._pad1, 0);
	for (size_t i = sizeof u.cfg; i < sizeof u.b; i++)
		assert_int_equal(u.b[i], CANARY);

	/* a 1.0 caller's struct ends before slots: not written */
	memset(u.b, CANARY, sizeof u.b);
	assert_ret(rmpsc_ring_config_init(&u.cfg, RMPSC_RING_CONFIG_SIZE_V1), 0);
	assert_int_equal(u.cfg.size, RMPSC_RING_CONFIG_SIZE_V1);
	for (size_t i = RMPSC_RING_CONFIG_SIZE_V1; i < sizeof u.b; i++)
		assert_int_equal(u.b[i], CANARY);
}

/* Push until -EAGAIN: exactly @cap fit, whatever the buffer size. */
static void expect_holds_exactly(rmpsc_ring *r, uint32_t cap, uint64_t first)
{
	uint64_t v;
	uint32_t n = 0;
	rmpsc_span s;

	for (;;) {
		int rc;

		v = first + n;
		rc = rmpsc_ring_push(r, &v);
		if (rc == -EAGAIN)
			break;
		assert_ret(rc, 0);
		assert_true(++n <= cap);
	}
	assert_int_equal(n, cap);
	assert_ret(rmpsc_ring_len(r), cap);
	assert_ret(rmpsc_ring_is_full(r), 1);
	assert_ret(rmpsc_ring_reserve(r, 1, &s), -EAGAIN);
	assert_ret(rmpsc_ring_push_n(r, &v, 1), -EAGAIN);
	assert_ret(rmpsc_ring_push_timed(r, &v, 0, NULL), -ETIMEDOUT);
	ring_pop_seq(r, first, cap);
	assert_ret(rmpsc_ring_pop(r, &v), -EAGAIN);
}

static void test_ring_slots_power_of_two_from_capacity_holds_exactly_capacity(
	void **state)
{
	static const struct {
		uint32_t cap, slots;
	} t[] = {
		{ 1, 0 }, { 1, 1 },  { 1, 2 },   { 1, 1024 }, { 2, 2 },  { 2, 8 },
		{ 4, 0 }, { 4, 4 },  { 4, 8 },   { 4, 16 },   { 8, 64 }, { 64, 4096 },
		{ 1024, 2048 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		const uint32_t slots = t[i].slots ? t[i].slots : t[i].cap;
		rmpsc_ring *r = ring_make(t[i].cap, 8, 0, t[i].slots);

		assert_ret(rmpsc_ring_capacity(r), t[i].cap);
		assert_true(rmpsc_ring_footprint(r) >= (int64_t)slots * 8);
		/* several passes so the positions go round the buffer */
		for (uint32_t pass = 0; pass < 2 * slots / t[i].cap + 2; pass++)
			expect_holds_exactly(r, t[i].cap, (uint64_t)pass << 32);
		rmpsc_ring_destroy(r);
	}
}

/* The largest buffer is allowed (it may not be mappable here). */
static void test_ring_slots_at_capacity_max_is_accepted(void **state)
{
	rmpsc_ring_config cfg;
	rmpsc_ring *r = NULL;
	int rc;

	(void)state;
	assert_ret(rmpsc_ring_config_init(&cfg, sizeof cfg), 0);
	cfg.capacity = 4;
	cfg.elem_size = 1;
	cfg.slots = RMPSC_RING_CAPACITY_MAX;
	rc = rmpsc_ring_create(&cfg, &r);
	if (rc == -ENOMEM) {
		assert_null(r);
		skip();
	}
	assert_ret(rc, 0);
	assert_ret(rmpsc_ring_capacity(r), 4);
	assert_ret(rmpsc_ring_push_n(r, "abcdef", 6), 4);
	rmpsc_ring_destroy(r);
}

/* A 1.0-sized config: slots and _pad1 are not part of it, whatever the
 * memory after it holds. */
static void test_ring_slots_with_v1_sized_config_take_default(void **state)
{
	union cfgbuf u;
	rmpsc_ring *r = NULL;

	(void)state;
	memset(u.b, 0xff, sizeof u.b);
	assert_ret(rmpsc_ring_config_init(&u.cfg, RMPSC_RING_CONFIG_SIZE_V1), 0);
	u.cfg.capacity = 4;
	assert_int_equal(u.cfg.slots, UINT32_MAX);
	assert_int_equal(u.cfg._pad1, UINT32_MAX);
	assert_ret(rmpsc_ring_create(&u.cfg, &r), 0);
	assert_non_null(r);
	expect_holds_exactly(r, 4, 0);
	rmpsc_ring_destroy(r);

	/* and a larger struct with zeros past ours carries slots */
	memset(u.b, 0, sizeof u.b);
	assert_ret(rmpsc_ring_config_init(&u.cfg, 48), 0);
	u.cfg.capacity = 4;
	u.cfg.slots = 32;
	assert_ret(rmpsc_ring_create(&u.cfg, &r), 0);
	expect_holds_exactly(r, 4, 0);
	rmpsc_ring_destroy(r);
}

/* The exact calls still measure against the capacity, not the buffer. */
static void test_ring_slots_exact_calls_above_capacity_return_einval(void **state)
{
	uint64_t buf[16] = { 0 };
	rmpsc_ring *r = ring_make(4, 8, 0, 16);
	rmpsc_span s;

	(void)state;
	assert_ret(rmpsc_ring_reserve_exact(r, 5, &s), -EINVAL);
	assert_ret(rmpsc_ring_push_n_exact(r, buf, 5), -EINVAL);
	assert_ret(rmpsc_ring_pop_n_exact(r, buf, 5), -EINVAL);
	assert_ret(rmpsc_ring_reserve(r, 16, &s), 4);
	assert_ret(rmpsc_ring_push_n(r, buf, 16), 4);
	assert_ret(rmpsc_ring_reserve_exact(r, 4, &s), -EAGAIN);
	rmpsc_ring_destroy(r);
}

/*
 * slots = 4 * capacity: reserve and readable spans wrap at the end of the
 * 4x buffer, and random batches of reserve/commit, push_n, readable/advance
 * and pop_n keep every value intact over hundreds of wraps, from 0 and
 * across 2^64.
 */
static void run_slots_wraps(uint32_t cap, uint32_t esz, uint64_t start, uint64_t seed)
{
	const uint32_t slots = 4 * cap;
	rmpsc_ring *r = ring_make(cap, esz, 0, slots);
	unsigned char *slot0, *buf = calloc(cap, esz), *p;
	uint64_t rng = seed, wpos = start, rpos = start, wraps_w = 0, wraps_r = 0;
	rmpsc_span s;

	assert_non_null(buf);
	assert_ret(rmpsc_ring_reserve(r, 1, &s), 1);
	slot0 = s.iov[0].iov_base;
	assert_int_equal((uintptr_t)slot0 % 64, 0);
	if (start)
		assert_ret(tc_set_position(r, start), 0);

	for (int it = 0; it < 20000; it++) {
		const uint32_t n = 1 + (uint32_t)(xs_next(&rng) % (cap + 2));
		const uint64_t room = cap - (wpos - rpos), have = wpos - rpos;
		int rc;

		switch (xs_next(&rng) % 4) {
		case 0: /* reserve + write in place + commit */
			rc = rmpsc_ring_reserve(r, n, &s);
			if (!room) {
				assert_ret(rc, -EAGAIN);
				break;
			}
			assert_ret(rc, n < room ? n : room);
			check_span(&s, slot0, slots, esz, wpos, (uint32_t)rc);
			wraps_w += s.nseg == 2;
			for (uint32_t i = 0; i < (uint32_t)rc; i++)
				for (uint32_t j = 0; j < esz; j++)
					span_at(&s, esz, i)[j] =
						(unsigned char)((wpos + i) * 31 + j);
			assert_ret(rmpsc_ring_commit(r, (uint32_t)rc), 0);
			wpos += (uint64_t)rc;
			break;
		case 1: /* push_n */
		{
			const uint32_t m = n < cap ? n : cap;

			for (uint32_t i = 0; i < m; i++)
				for (uint32_t j = 0; j < esz; j++)
					buf[(size_t)i * esz + j] =
						(unsigned char)((wpos + i) * 31 + j);
			rc = rmpsc_ring_push_n(r, buf, m);
			if (!room) {
				assert_ret(rc, -EAGAIN);
				break;
			}
			assert_ret(rc, m < room ? m : room);
			wpos += (uint64_t)rc;
			break;
		}
		case 2: /* readable + check in place + advance */
			rc = rmpsc_ring_readable(r, n, &s);
			if (!have) {
				assert_ret(rc, -EAGAIN);
				break;
			}
			assert_ret(rc, n < have ? n : have);
			check_span(&s, slot0, slots, esz, rpos, (uint32_t)rc);
			wraps_r += s.nseg == 2;
			for (uint32_t i = 0; i < (uint32_t)rc; i++) {
				p = span_at(&s, esz, i);
				for (uint32_t j = 0; j < esz; j++)
					if (p[j] != (unsigned char)((rpos + i) * 31 + j))
						fail_msg("byte %u of position %" PRIu64
							 " differs", j, rpos + i);
			}
			assert_ret(rmpsc_ring_advance(r, (uint32_t)rc), 0);
			rpos += (uint64_t)rc;
			break;
		default: /* pop_n */
		{
			const uint32_t m = n < cap ? n : cap;

			rc = rmpsc_ring_pop_n(r, buf, m);
			if (!have) {
				assert_ret(rc, -EAGAIN);
				break;
			}
			assert_ret(rc, m < have ? m : have);
			for (uint32_t i = 0; i < (uint32_t)rc; i++)
				for (uint32_t j = 0; j < esz; j++)
					if (buf[(size_t)i * esz + j] !=
					    (unsigned char)((rpos + i) * 31 + j))
						fail_msg("pop_n: byte %u of position %"
							 PRIu64 " differs", j, rpos + i);
			rpos += (uint64_t)rc;
			break;
		}
		}
		assert_ret(rmpsc_ring_len(r), (int64_t)(wpos - rpos));
	}
	print_message("  capacity %u, slots %u, elem %u, from %#" PRIx64 ": %" PRIu64
		      " elements, %" PRIu64 " buffer wraps, %" PRIu64 "/%" PRIu64
		      " split reserve/readable spans\n", cap, slots, esz, start,
		      rpos - start, (rpos - start) / slots, wraps_w, wraps_r);
	assert_true((rpos - start) / slots >= 100);
	if (cap > 1) {
		/* a single element never splits */
		assert_true(wraps_w > 0);
		assert_true(wraps_r > 0);
	}
	free(buf);
	rmpsc_ring_destroy(r);
}

static void test_ring_slots_four_times_capacity_spans_wrap_at_buffer_end(void **state)
{
	(void)state;
	run_slots_wraps(4, 8, 0, 0x1234567ull);
	run_slots_wraps(8, 3, 0, 0x7654321ull);
	run_slots_wraps(1, 8, 0, 0x1111ull);
	run_slots_wraps(4, 8, UINT64_MAX - 1000, 0x2222ull);
	run_slots_wraps(16, 5, (1ull << 32) - 77, 0x3333ull);
}

/* Blocking calls over a 4x buffer: their spans wrap at the buffer end too. */
static void test_ring_slots_timed_spans_wrap_at_buffer_end(void **state)
{
	rmpsc_ring *r = ring_make(4, 8, 0, 16);
	unsigned char *slot0;
	rmpsc_span s;

	(void)state;
	assert_ret(rmpsc_ring_reserve_timed(r, 1, &s, 0, NULL), 1);
	slot0 = s.iov[0].iov_base;
	assert_ret(tc_set_position(r, 14), 0);
	assert_ret(rmpsc_ring_reserve_timed(r, 4, &s, 2 * MS, NULL), 4);
	check_span(&s, slot0, 16, 8, 14, 4);
	for (uint32_t i = 0; i < 4; i++)
		memcpy(span_at(&s, 8, i), &(uint64_t){ 14 + i }, 8);
	assert_ret(rmpsc_ring_commit(r, 4), 0);
	assert_ret(rmpsc_ring_readable_timed(r, 4, &s, 2 * MS, NULL), 4);
	check_span(&s, slot0, 16, 8, 14, 4);
	for (uint32_t i = 0; i < 4; i++)
		assert_int_equal(*(uint64_t *)(void *)span_at(&s, 8, i), 14 + i);
	assert_ret(rmpsc_ring_advance(r, 4), 0);
	/* at position 18, slot 2: no wrap for 4 */
	assert_ret(rmpsc_ring_reserve_timed(r, 4, &s, 2 * MS, NULL), 4);
	check_span(&s, slot0, 16, 8, 18, 4);
	rmpsc_ring_destroy(r);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup_ring, ring_fixture_free)
#define U(f) cmocka_unit_test(f)

int main(void)
{
	const struct CMUnitTest tests[] = {
		/* config_init */
		U(test_ring_config_init_with_valid_size_writes_defaults_within_size),
		/* create / destroy */
		U(test_ring_create_with_default_config_returns_empty_open_ring),
		U(test_ring_create_with_larger_cfg_and_zero_tail_returns_zero),
		U(test_ring_create_with_every_power_of_two_capacity_returns_zero),
		U(test_ring_create_with_max_elem_size_roundtrips_elements),
		U(test_ring_create_with_numa_node_any_or_zero_returns_zero),
		U(test_ring_create_when_mapping_too_large_returns_enomem),
		U(test_ring_create_with_hugepage_flag_matches_free_huge_pages),
		U(test_ring_create_with_prefault_flag_returns_usable_ring),
		U(test_ring_call_after_destroy_does_not_return),
		/* bad arguments and handles */
		U(test_ring_config_calls_with_bad_argument_return_documented_code),
		U(test_ring_calls_with_bad_handle_or_argument_return_documented_code),
		/* reserve / commit */
		T(test_ring_reserve_when_empty_returns_requested_span),
		T(test_ring_reserve_with_more_than_free_returns_free_count),
		T(test_ring_reserve_when_full_returns_eagain),
		T(test_ring_reserve_when_closed_returns_epipe),
		T(test_ring_reserve_with_zero_n_returns_empty_span),
		T(test_ring_reserve_twice_replaces_first_reservation),
		T(test_ring_reserve_exact_when_enough_free_returns_n),
		T(test_ring_reserve_exact_with_fewer_free_returns_eagain),
		T(test_ring_reserve_exact_when_closed_returns_epipe),
		T(test_ring_reserve_exact_with_zero_n_returns_empty_span),
		T(test_ring_commit_more_than_reserved_returns_einval_and_changes_nothing),
		T(test_ring_commit_without_reservation_returns_einval),
		T(test_ring_commit_zero_returns_zero_and_changes_nothing),
		T(test_ring_commit_partial_then_rest_publishes_all),
		T(test_ring_commit_after_close_returns_epipe_publishes_nothing),
		T(test_ring_push_after_reserve_drops_reservation),
		/* push */
		T(test_ring_push_when_empty_returns_zero),
		T(test_ring_push_when_full_returns_eagain),
		T(test_ring_push_when_closed_returns_epipe),
		T(test_ring_push_n_with_more_than_free_returns_free_count),
		T(test_ring_push_n_when_full_returns_eagain),
		T(test_ring_push_n_when_closed_returns_epipe),
		T(test_ring_push_n_with_zero_n_returns_zero),
		T(test_ring_push_n_exact_when_enough_free_returns_n),
		T(test_ring_push_n_exact_with_fewer_free_returns_eagain),
		T(test_ring_push_n_exact_when_closed_returns_epipe),
		T(test_ring_push_n_exact_with_zero_n_returns_zero),
		/* readable / advance */
		T(test_ring_readable_with_more_than_committed_returns_committed),
		T(test_ring_readable_when_empty_returns_eagain),
		T(test_ring_readable_when_closed_and_empty_returns_epipe),
		T(test_ring_readable_with_zero_n_returns_empty_span),
		T(test_ring_advance_partial_releases_front),
		T(test_ring_advance_past_readable_returns_einval_and_changes_nothing),
		T(test_ring_advance_zero_returns_zero),
		/* pop */
		T(test_ring_pop_when_nonempty_returns_oldest),
		T(test_ring_pop_when_empty_returns_eagain),
		T(test_ring_pop_when_closed_returns_remaining_then_epipe),
		T(test_ring_pop_n_with_more_than_committed_returns_committed),
		T(test_ring_pop_n_when_empty_returns_eagain),
		T(test_ring_pop_n_when_closed_returns_remaining_then_epipe),
		T(test_ring_pop_n_with_zero_n_returns_zero),
		U(test_ring_pop_batched_release_then_exact_calls_see_every_slot),
		U(test_ring_pop_batched_release_publishes_every_32_and_on_other_calls),
		U(test_ring_pop_timed_releases_at_once_and_publishes_what_pop_held),
		U(test_ring_pop_timed_spin_unlimited_answers_as_the_driver),
		U(test_ring_pop_timed_spin_unlimited_publishes_before_spinning),
		U(test_ring_pop_on_small_ring_releases_at_once),
		T(test_ring_pop_n_exact_when_enough_committed_returns_n),
		T(test_ring_pop_n_exact_with_fewer_committed_returns_eagain),
		T(test_ring_pop_n_exact_after_close_with_short_tail_returns_eagain),
		T(test_ring_pop_n_exact_with_zero_n_returns_zero),
		T(test_ring_pop_n_exact_when_closed_and_empty_returns_epipe),
		/* peek / skip / drain */
		T(test_ring_peek_when_nonempty_copies_head_without_consuming),
		T(test_ring_peek_when_empty_returns_eagain),
		T(test_ring_peek_when_closed_and_empty_returns_epipe),
		T(test_ring_peek_n_when_nonempty_copies_without_consuming),
		T(test_ring_peek_n_when_empty_returns_eagain),
		T(test_ring_peek_n_when_closed_and_empty_returns_epipe),
		T(test_ring_peek_n_with_zero_n_returns_zero),
		T(test_ring_skip_when_nonempty_discards_front),
		T(test_ring_skip_when_empty_returns_eagain),
		T(test_ring_skip_when_closed_and_empty_returns_epipe),
		T(test_ring_skip_with_zero_n_returns_zero),
		T(test_ring_drain_when_nonempty_copies_everything),
		T(test_ring_drain_with_null_items_discards),
		T(test_ring_drain_with_max_below_len_takes_max),
		T(test_ring_drain_when_empty_returns_zero),
		T(test_ring_drain_when_closed_returns_remaining_then_zero),
		T(test_ring_drain_with_zero_max_returns_zero),
		/* close / status / reset */
		T(test_ring_is_closed_when_open_returns_zero),
		T(test_ring_close_when_called_twice_returns_zero),
		T(test_ring_close_with_data_keeps_it_for_consumer_then_epipe),
		T(test_ring_epipe_is_final_when_commit_follows_close),
		T(test_ring_publish_racing_undecided_close_ends_stream_at_itself),
		T(test_ring_publish_after_decided_close_returns_epipe_never_delivered),
		T(test_ring_consumer_during_undecided_close_keeps_to_open_tail),
		T(test_ring_consumer_during_undecided_close_gets_covered_tail_once_decided),
		T(test_ring_mc_claim_during_undecided_close_returns_eagain_then_final),
		T(test_ring_len_when_filling_and_draining_tracks_committed),
		U(test_ring_capacity_and_elem_size_return_configured_values),
		U(test_ring_footprint_when_created_covers_slots_in_whole_pages),
		T(test_ring_reset_when_used_empties_reopens_and_rewinds),
		/* spans */
		T(test_ring_span_when_wrapping_splits_at_buffer_end),
		U(test_ring_span_with_writev_and_readv_moves_bytes_through_pipe),
		/* wrap-around */
		TEST_PARAM(test_ring_wrap_from_zero_at_every_offset_preserves_order,
			   test_ring_wrap_at_every_offset_preserves_order, WRAP_FROM_0),
		TEST_PARAM(test_ring_wrap_across_2_32_at_every_offset_preserves_order,
			   test_ring_wrap_at_every_offset_preserves_order, WRAP_ACROSS_2_32),
		TEST_PARAM(test_ring_wrap_across_2_64_at_every_offset_preserves_order,
			   test_ring_wrap_at_every_offset_preserves_order, WRAP_ACROSS_2_64),
		/* element sizes */
		TEST_PARAM(test_ring_push_and_pop_with_all_elem_sizes_roundtrip_byte_exact,
			   test_ring_roundtrip_byte_exact, RT(P_PUSH, C_POP)),
		TEST_PARAM(test_ring_push_n_and_pop_n_with_all_elem_sizes_roundtrip_byte_exact,
			   test_ring_roundtrip_byte_exact, RT(P_PUSH_N, C_POP_N)),
		TEST_PARAM(test_ring_push_n_exact_and_pop_n_exact_with_all_elem_sizes_roundtrip,
			   test_ring_roundtrip_byte_exact, RT(P_PUSH_N_EXACT,
				C_POP_N_EXACT)),
		TEST_PARAM(test_ring_reserve_and_commit_with_all_elem_sizes_roundtrip_byte_exact,
			   test_ring_roundtrip_byte_exact, RT(P_RESERVE, C_POP_N)),
		TEST_PARAM(test_ring_reserve_exact_and_readable_with_all_elem_sizes_roundtrip,
			   test_ring_roundtrip_byte_exact, RT(P_RESERVE_EXACT, C_READABLE)),
		TEST_PARAM(test_ring_readable_advance_with_all_elem_sizes_roundtrip_byte_exact,
			   test_ring_roundtrip_byte_exact, RT(P_PUSH_N, C_READABLE)),
		TEST_PARAM(test_ring_peek_with_all_elem_sizes_roundtrips_byte_exact,
			   test_ring_roundtrip_byte_exact, RT(P_PUSH, C_PEEK)),
		TEST_PARAM(test_ring_peek_n_with_all_elem_sizes_roundtrips_byte_exact,
			   test_ring_roundtrip_byte_exact, RT(P_RESERVE, C_PEEK_N)),
		TEST_PARAM(test_ring_skip_with_all_elem_sizes_discards_exactly_n,
			   test_ring_roundtrip_byte_exact, RT(P_PUSH_N, C_SKIP)),
		TEST_PARAM(test_ring_drain_with_all_elem_sizes_roundtrips_byte_exact,
			   test_ring_roundtrip_byte_exact, RT(P_PUSH_N_EXACT, C_DRAIN)),
		TEST_PARAM(test_ring_drain_null_with_all_elem_sizes_discards_exactly_n,
			   test_ring_roundtrip_byte_exact, RT(P_RESERVE_EXACT,
				C_DRAIN_NULL)),
		U(test_ring_every_producer_with_every_consumer_roundtrips_byte_exact),
		/* config.slots */
		U(test_ring_slots_config_init_writes_zero_slots),
		U(test_ring_slots_power_of_two_from_capacity_holds_exactly_capacity),
		U(test_ring_slots_at_capacity_max_is_accepted),
		U(test_ring_slots_with_v1_sized_config_take_default),
		U(test_ring_slots_exact_calls_above_capacity_return_einval),
		U(test_ring_slots_four_times_capacity_spans_wrap_at_buffer_end),
		U(test_ring_slots_timed_spans_wrap_at_buffer_end),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
