/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the shared ring of include/ringmpsc/shm.h (rmpsc_shm_*),
 * written against the header alone: the config and the argument checks of
 * create and attach, both sides in one process (create + attach, either
 * side first) with element sizes 1 to 4096 through every call and across
 * the wrap, role misuse, a second attach of a live role, attach
 * validation (files that are not sealed memfds, sizes, a table of named
 * header corruptions, and seeded random damage of the header), the
 * broken latch (indices and close state written into the live header),
 * the seals, the close, the timed calls and wait strategies, the peer
 * (heartbeat, watched descriptors, death of a forked producer) and the
 * process's descriptor count around all of it.
 *
 * No timing thresholds: sleeps only give a thread the chance to block
 * first, and results do not depend on whether it did.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#define STRESS_SEED 0x5eed5a11dull
#include "test_util.h"

#include "ringmpsc.h"

#define MS 1000000ll
#define SHM_SENTINEL SENTINEL_OF(rmpsc_shm)

/* ---- helpers ------------------------------------------------------------ */

/* Entries of /proc/self/fd (the directory's own descriptor counts in
 * every reading alike). */
static int fd_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static rmpsc_shm_config shm_cfg(uint32_t role, uint32_t cap, uint32_t esz, uint32_t flags)
{
	rmpsc_shm_config c;

	assert_ret(rmpsc_shm_config_init(&c, sizeof c), 0);
	c.role = role;
	c.capacity = cap;
	c.elem_size = esz;
	c.flags = flags;
	return c;
}

static rmpsc_shm *shm_new(uint32_t role, uint32_t cap, uint32_t esz, uint32_t flags)
{
	const rmpsc_shm_config c = shm_cfg(role, cap, esz, flags);
	rmpsc_shm *s = SHM_SENTINEL;

	assert_ret(rmpsc_shm_create(&c, &s), 0);
	return assert_handle(s, SHM_SENTINEL);
}

/* Attach to @fd as @role (geometry 0: any); must succeed. */
static rmpsc_shm *shm_att(int fd, uint32_t role)
{
	const rmpsc_shm_config c = shm_cfg(role, 0, 0, 0);
	rmpsc_shm *s = SHM_SENTINEL;

	assert_ret(rmpsc_shm_attach(fd, &c, &s), 0);
	return assert_handle(s, SHM_SENTINEL);
}

/* Attach that must fail with @want, leaving *out NULL. */
static void shm_att_fails(int fd, const rmpsc_shm_config *c, int want)
{
	rmpsc_shm *s = SHM_SENTINEL;

	assert_ret(rmpsc_shm_attach(fd, c, &s), want);
	assert_null(s);
}

static void shm_att_role_fails(int fd, uint32_t role, int want)
{
	const rmpsc_shm_config c = shm_cfg(role, 0, 0, 0);

	shm_att_fails(fd, &c, want);
}

/* A pair: the @creator side creates, the other attaches through
 * rmpsc_shm_fd(). */
static void shm_pair(uint32_t creator, uint32_t cap, uint32_t esz, uint32_t flags,
		     rmpsc_shm **prod, rmpsc_shm **cons)
{
	const uint32_t other = creator == RMPSC_SHM_PRODUCER ? RMPSC_SHM_CONSUMER
							     : RMPSC_SHM_PRODUCER;
	rmpsc_shm *a = shm_new(creator, cap, esz, flags);
	rmpsc_shm *b;

	assert_true(rmpsc_shm_fd(a) >= 0);
	b = shm_att(rmpsc_shm_fd(a), other);
	*prod = creator == RMPSC_SHM_PRODUCER ? a : b;
	*cons = creator == RMPSC_SHM_PRODUCER ? b : a;
}

/* The byte @j of element number @seq. */
static unsigned char pat(uint64_t seq, uint32_t j)
{
	return (unsigned char)((seq * 131u + j * 7u + (seq >> 8)) & 0xff);
}

static void pat_fill(unsigned char *p, uint32_t esz, uint64_t seq)
{
	for (uint32_t j = 0; j < esz; j++)
		p[j] = pat(seq, j);
}

static void pat_check(const unsigned char *p, uint32_t esz, uint64_t seq)
{
	for (uint32_t j = 0; j < esz; j++) {
		if (p[j] != pat(seq, j)) {
			print_error("element %" PRIu64 " byte %u: %u, expected %u\n", seq, j,
				    p[j], pat(seq, j));
			fail();
		}
	}
}

/* Push elements @seq.. one by one (each must succeed). */
static void push_seq(rmpsc_shm *p, uint32_t esz, uint64_t seq, uint32_t n)
{
	unsigned char *b = malloc(esz);

	assert_non_null(b);
	for (uint32_t i = 0; i < n; i++) {
		pat_fill(b, esz, seq + i);
		assert_ret(rmpsc_shm_push(p, b), 0);
	}
	free(b);
}

static void pop_seq(rmpsc_shm *c, uint32_t esz, uint64_t seq, uint32_t n)
{
	unsigned char *b = malloc(esz);

	assert_non_null(b);
	for (uint32_t i = 0; i < n; i++) {
		memset(b, 0xee, esz);
		assert_ret(rmpsc_shm_pop(c, b), 0);
		pat_check(b, esz, seq + i);
	}
	free(b);
}

static void push_u64(rmpsc_shm *p, uint64_t v)
{
	assert_ret(rmpsc_shm_push(p, &v), 0);
}

static void push_seq_u64(rmpsc_shm *p, uint64_t first, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		push_u64(p, first + i);
}

static void pop_u64(rmpsc_shm *c, uint64_t want)
{
	uint64_t v = ~0ull;

	assert_ret(rmpsc_shm_pop(c, &v), 0);
	assert_int_equal(v, want);
}

static void pop_seq_u64_all(rmpsc_shm *c, uint64_t first, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		pop_u64(c, first + i);
}

/* Check the shape of a span of @n elements of @esz bytes at @pos. */
static void span_shape(const rmpsc_span *s, int n, uint32_t esz, uint64_t pos)
{
	assert_true(n >= 0);
	assert_int_equal(s->count[0] + s->count[1], (uint32_t)n);
	assert_int_equal(s->iov[0].iov_len, (size_t)s->count[0] * esz);
	assert_int_equal(s->iov[1].iov_len, (size_t)s->count[1] * esz);
	assert_int_equal(s->nseg, n == 0 ? 0u : s->count[1] ? 2u : 1u);
	assert_int_equal(s->_pad0, 0);
	if (n > 0)
		assert_int_equal(s->pos, pos);
}

/* The memfd of a handle mapped by the test itself, shared and writable:
 * what a hostile peer sees. */
static rmpsc_shm_header *hdr_map(int fd, size_t *len)
{
	struct stat st;
	void *p;

	assert_int_equal(fstat(fd, &st), 0);
	*len = (size_t)st.st_size;
	p = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(p != MAP_FAILED);
	return p;
}

#define HSTORE(p, v) __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)
#define HLOAD(p) __atomic_load_n((p), __ATOMIC_SEQ_CST)

/* ---- 1. config and argument checks -------------------------------------- */

static void test_shm_config_init_when_bad_size_or_null_returns_documented_codes(void **state)
{
	unsigned char buf[8192];
	rmpsc_shm_config *c = (rmpsc_shm_config *)(void *)buf;
	const uint32_t bad_inval[] = { 0, 8, 16, sizeof(rmpsc_shm_config) - 8,
				       sizeof(rmpsc_shm_config) + 4, 25, 31 };

	(void)state;
	assert_int_equal(sizeof(rmpsc_shm_config), 24);
	assert_ret(rmpsc_shm_config_init(NULL, sizeof *c), -EINVAL);
	for (size_t i = 0; i < sizeof bad_inval / sizeof bad_inval[0]; i++) {
		memset(buf, 0xab, sizeof buf);
		assert_ret(rmpsc_shm_config_init(c, bad_inval[i]), -EINVAL);
		for (size_t j = 0; j < sizeof buf; j++)
			assert_int_equal(buf[j], 0xab);
	}
	memset(buf, 0xab, sizeof buf);
	assert_ret(rmpsc_shm_config_init(c, 4104), -E2BIG);
	assert_ret(rmpsc_shm_config_init(c, 8192), -E2BIG);
	for (size_t j = 0; j < sizeof buf; j++)
		assert_int_equal(buf[j], 0xab);

	/* The defaults: producer, flags 0, no geometry. */
	assert_ret(rmpsc_shm_config_init(c, sizeof *c), 0);
	assert_int_equal(c->size, sizeof *c);
	assert_int_equal(c->flags, 0);
	assert_int_equal(c->role, RMPSC_SHM_PRODUCER);
	assert_int_equal(c->elem_size, 0);
	assert_int_equal(c->capacity, 0);
	assert_int_equal(c->_pad0, 0);
	for (size_t j = sizeof *c; j < sizeof buf; j++)
		assert_int_equal(buf[j], 0xab);

	/* A larger (future) struct: its tail is written zero, up to 4096. */
	memset(buf, 0xab, sizeof buf);
	assert_ret(rmpsc_shm_config_init(c, 4096), 0);
	assert_int_equal(c->size, 4096);
	for (size_t j = sizeof *c; j < 4096; j++)
		assert_int_equal(buf[j], 0);
	assert_int_equal(buf[4096], 0xab);
}

/* Create with every refused argument: -EINVAL (or the code named), *out
 * NULL. */
static void test_shm_create_when_bad_arguments_returns_documented_codes(void **state)
{
	struct {
		const char *name;
		uint32_t role, cap, esz, flags, pad;
		int want;
	} rows[] = {
		{ "role 0", 0, 16, 8, 0, 0, -EINVAL },
		{ "role 3", 3, 16, 8, 0, 0, -EINVAL },
		{ "role ~0", ~0u, 16, 8, 0, 0, -EINVAL },
		{ "capacity 0", RMPSC_SHM_PRODUCER, 0, 8, 0, 0, -EINVAL },
		{ "capacity 3", RMPSC_SHM_CONSUMER, 3, 8, 0, 0, -EINVAL },
		{ "capacity 1000", RMPSC_SHM_PRODUCER, 1000, 8, 0, 0, -EINVAL },
		{ "capacity max+1", RMPSC_SHM_PRODUCER, RMPSC_SHM_CAPACITY_MAX + 1, 8, 0, 0,
		  -EINVAL },
		{ "capacity 2^31", RMPSC_SHM_PRODUCER, 1u << 31, 8, 0, 0, -EINVAL },
		{ "capacity ~0", RMPSC_SHM_PRODUCER, ~0u, 8, 0, 0, -EINVAL },
		{ "elem_size 0", RMPSC_SHM_PRODUCER, 16, 0, 0, 0, -EINVAL },
		{ "elem_size max+1", RMPSC_SHM_PRODUCER, 16, RMPSC_SHM_ELEM_SIZE_MAX + 1, 0, 0,
		  -EINVAL },
		{ "elem_size ~0", RMPSC_SHM_CONSUMER, 16, ~0u, 0, 0, -EINVAL },
		{ "flag 1<<2", RMPSC_SHM_PRODUCER, 16, 8, 1u << 2, 0, -EINVAL },
		{ "flag 1<<31", RMPSC_SHM_PRODUCER, 16, 8, 1u << 31, 0, -EINVAL },
		{ "flags all+unknown", RMPSC_SHM_PRODUCER, 16, 8, RMPSC_SHM_F_ALL | 8u, 0, -EINVAL },
		{ "_pad0 1", RMPSC_SHM_PRODUCER, 16, 8, 0, 1, -EINVAL },
		{ "_pad0 ~0", RMPSC_SHM_CONSUMER, 16, 8, 0, ~0u, -EINVAL },
		/* 2^30 slots of 2^24 bytes: 2^54 bytes, above RMPSC_SHM_MAP_MAX. */
		{ "map above max", RMPSC_SHM_PRODUCER, RMPSC_SHM_CAPACITY_MAX,
		  RMPSC_SHM_ELEM_SIZE_MAX, 0, 0, -ENOMEM },
		{ "map above max 2", RMPSC_SHM_PRODUCER, 1u << 20, 1u << 21, 0, 0, -ENOMEM },
	};
	const int before = fd_count();
	rmpsc_shm *s;

	(void)state;
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		rmpsc_shm_config c = shm_cfg(rows[i].role, rows[i].cap, rows[i].esz,
					     rows[i].flags);

		c._pad0 = rows[i].pad;
		s = SHM_SENTINEL;
		if (rmpsc_shm_create(&c, &s) != rows[i].want || s != NULL) {
			print_error("row '%s': create = %d (%s), want %s, out %p\n",
				    rows[i].name, rmpsc_shm_create(&c, &s),
				    errname(rmpsc_shm_create(&c, &s)), errname(rows[i].want),
				    (void *)s);
			fail();
		}
	}
	/* NULLs. */
	{
		const rmpsc_shm_config c = shm_cfg(RMPSC_SHM_PRODUCER, 16, 8, 0);

		s = SHM_SENTINEL;
		assert_ret(rmpsc_shm_create(NULL, &s), -EINVAL);
		assert_null(s);
		assert_ret(rmpsc_shm_create(&c, NULL), -EINVAL);
	}
	/* Bad sizes of the config: too small, not a multiple of 8 -> -EINVAL;
	 * a larger struct with non-zero extra bytes, or above 4096 -> -E2BIG;
	 * a larger one with zero extra bytes is fine. */
	{
		unsigned char buf[8192];
		rmpsc_shm_config *c = (rmpsc_shm_config *)(void *)buf;

		memset(buf, 0, sizeof buf);
		assert_ret(rmpsc_shm_config_init(c, 64), 0);
		c->capacity = 16;
		c->elem_size = 8;
		s = SHM_SENTINEL;
		assert_ret(rmpsc_shm_create(c, &s), 0);
		assert_handle(s, SHM_SENTINEL);
		rmpsc_shm_destroy(s);
		buf[40] = 1;
		s = SHM_SENTINEL;
		assert_ret(rmpsc_shm_create(c, &s), -E2BIG);
		assert_null(s);
		buf[40] = 0;
		c->size = 16;
		s = SHM_SENTINEL;
		assert_ret(rmpsc_shm_create(c, &s), -EINVAL);
		assert_null(s);
		c->size = 28;
		s = SHM_SENTINEL;
		assert_ret(rmpsc_shm_create(c, &s), -EINVAL);
		assert_null(s);
		c->size = 4104;
		s = SHM_SENTINEL;
		assert_ret(rmpsc_shm_create(c, &s), -E2BIG);
		assert_null(s);
	}
	/* The limits themselves are accepted (capacity 1, elem_size 1 and
	 * the largest element). */
	s = shm_new(RMPSC_SHM_PRODUCER, 1, 1, 0);
	assert_ret(rmpsc_shm_capacity(s), 1);
	assert_ret(rmpsc_shm_elem_size(s), 1);
	rmpsc_shm_destroy(s);
	s = shm_new(RMPSC_SHM_CONSUMER, 1, RMPSC_SHM_ELEM_SIZE_MAX, RMPSC_SHM_F_ALL);
	assert_ret(rmpsc_shm_elem_size(s), RMPSC_SHM_ELEM_SIZE_MAX);
	rmpsc_shm_destroy(s);
	assert_int_equal(fd_count(), before);
}

/* Attach's own argument checks, on a valid ring's descriptor. */
static void test_shm_attach_when_bad_arguments_returns_documented_codes(void **state)
{
	rmpsc_shm *p = shm_new(RMPSC_SHM_PRODUCER, 16, 8, 0);
	const int fd = rmpsc_shm_fd(p);
	rmpsc_shm_config c;
	rmpsc_shm *s;

	(void)state;
	c = shm_cfg(RMPSC_SHM_CONSUMER, 0, 0, 0);
	s = SHM_SENTINEL;
	assert_ret(rmpsc_shm_attach(fd, NULL, &s), -EINVAL);
	assert_null(s);
	assert_ret(rmpsc_shm_attach(fd, &c, NULL), -EINVAL);
	c.role = 0;
	shm_att_fails(fd, &c, -EINVAL);
	c.role = 7;
	shm_att_fails(fd, &c, -EINVAL);
	c = shm_cfg(RMPSC_SHM_CONSUMER, 0, 0, 1u << 5);
	shm_att_fails(fd, &c, -EINVAL);
	c = shm_cfg(RMPSC_SHM_CONSUMER, 3, 0, 0);
	shm_att_fails(fd, &c, -EINVAL);
	c = shm_cfg(RMPSC_SHM_CONSUMER, 24, 8, 0);
	shm_att_fails(fd, &c, -EINVAL);
	c = shm_cfg(RMPSC_SHM_CONSUMER, 0, 0, 0);
	c._pad0 = 1;
	shm_att_fails(fd, &c, -EINVAL);
	c = shm_cfg(RMPSC_SHM_CONSUMER, 0, 0, 0);
	c.size = 20;
	shm_att_fails(fd, &c, -EINVAL);
	c.size = 4104;
	shm_att_fails(fd, &c, -E2BIG);
	/* Geometry asked that is not the ring's. */
	c = shm_cfg(RMPSC_SHM_CONSUMER, 32, 0, 0);
	shm_att_fails(fd, &c, -EPROTO);
	c = shm_cfg(RMPSC_SHM_CONSUMER, 8, 0, 0);
	shm_att_fails(fd, &c, -EPROTO);
	c = shm_cfg(RMPSC_SHM_CONSUMER, 0, 4, 0);
	shm_att_fails(fd, &c, -EPROTO);
	c = shm_cfg(RMPSC_SHM_CONSUMER, 16, 16, 0);
	shm_att_fails(fd, &c, -EPROTO);
	c = shm_cfg(RMPSC_SHM_CONSUMER, 0, 1, 0);
	shm_att_fails(fd, &c, -EPROTO);
	/* Descriptors that are not open. */
	c = shm_cfg(RMPSC_SHM_CONSUMER, 0, 0, 0);
	shm_att_fails(-1, &c, -EBADF);
	shm_att_fails(INT_MIN, &c, -EBADF);
	{
		const int d = dup(fd);

		assert_true(d >= 0);
		close(d);
		shm_att_fails(d, &c, -EBADF);
	}
	shm_att_fails(1000000, &c, -EBADF);
	/* The geometry asked exactly, and RMPSC_SHM_F_FENCE (ignored on
	 * attach) with RMPSC_SHM_F_PREFAULT: fine. */
	c = shm_cfg(RMPSC_SHM_CONSUMER, 16, 8, RMPSC_SHM_F_ALL);
	s = SHM_SENTINEL;
	assert_ret(rmpsc_shm_attach(fd, &c, &s), 0);
	assert_handle(s, SHM_SENTINEL);
	assert_ret(rmpsc_shm_role(s), RMPSC_SHM_CONSUMER);
	push_u64(p, 42);
	pop_u64(s, 42);
	rmpsc_shm_destroy(s);
	rmpsc_shm_destroy(p);
}

/* ---- 2. both sides in one process ---------------------------------------- */

struct geo {
	uint32_t creator, cap, esz, flags;
};

/* Every call of both sides, values checked, across the wrap. */
static void test_shm_pair_when_used_moves_elements_through_every_call(void **state)
{
	const struct geo *g = *state;
	const uint32_t cap = g->cap, esz = g->esz;
	rmpsc_shm *p, *c;
	unsigned char *buf = calloc((size_t)cap * 2, esz);
	rmpsc_span sp;
	uint64_t wseq = 0, rseq = 0;
	int n;

	assert_non_null(buf);
	shm_pair(g->creator, cap, esz, g->flags, &p, &c);
	assert_ret(rmpsc_shm_role(p), RMPSC_SHM_PRODUCER);
	assert_ret(rmpsc_shm_role(c), RMPSC_SHM_CONSUMER);
	assert_ret(rmpsc_shm_capacity(p), cap);
	assert_ret(rmpsc_shm_capacity(c), cap);
	assert_ret(rmpsc_shm_elem_size(p), esz);
	assert_ret(rmpsc_shm_elem_size(c), esz);
	assert_ret(rmpsc_shm_len(p), 0);
	assert_ret(rmpsc_shm_len(c), 0);
	assert_ret(rmpsc_shm_is_closed(p), 0);
	assert_ret(rmpsc_shm_is_closed(c), 0);
	assert_true(rmpsc_shm_fd(p) >= 0);
	assert_true(rmpsc_shm_fd(c) >= 0);
	assert_true(rmpsc_shm_fd(p) != rmpsc_shm_fd(c));
	assert_true(fcntl(rmpsc_shm_fd(p), F_GETFD) & FD_CLOEXEC);
	assert_true(fcntl(rmpsc_shm_fd(c), F_GETFD) & FD_CLOEXEC);

	/* Empty: -EAGAIN for every consumer call; n == 0 is 0. */
	assert_ret(rmpsc_shm_pop(c, buf), -EAGAIN);
	assert_ret(rmpsc_shm_pop_n(c, buf, 4), -EAGAIN);
	assert_ret(rmpsc_shm_readable(c, 4, &sp), -EAGAIN);
	assert_ret(rmpsc_shm_pop_n(c, buf, 0), 0);
	assert_ret(rmpsc_shm_readable(c, 0, &sp), 0);
	assert_ret(rmpsc_shm_advance(c, 0), 0);
	assert_ret(rmpsc_shm_advance(c, 1), -EINVAL);
	assert_ret(rmpsc_shm_commit(p, 1), -EINVAL);
	assert_ret(rmpsc_shm_commit(p, 0), 0);
	assert_ret(rmpsc_shm_push_n(p, buf, 0), 0);
	assert_ret(rmpsc_shm_reserve(p, 0, &sp), 0);
	/* NULL pointers: -EINVAL. */
	assert_ret(rmpsc_shm_push(p, NULL), -EINVAL);
	assert_ret(rmpsc_shm_push_n(p, NULL, 1), -EINVAL);
	assert_ret(rmpsc_shm_reserve(p, 1, NULL), -EINVAL);
	assert_ret(rmpsc_shm_pop(c, NULL), -EINVAL);
	assert_ret(rmpsc_shm_pop_n(c, NULL, 1), -EINVAL);
	assert_ret(rmpsc_shm_readable(c, 1, NULL), -EINVAL);

	/* Several laps, with every call, at shifting offsets. */
	for (uint32_t lap = 0; lap < 3 * cap + 5; lap++) {
		const uint32_t k = 1 + lap % cap; /* elements this lap */

		switch (lap % 4) {
		case 0: /* push / pop */
			push_seq(p, esz, wseq, k);
			wseq += k;
			assert_ret(rmpsc_shm_len(c), k);
			assert_ret(rmpsc_shm_len(p), k);
			pop_seq(c, esz, rseq, k);
			rseq += k;
			break;
		case 1: /* push_n / pop_n */
			for (uint32_t i = 0; i < k; i++)
				pat_fill(buf + (size_t)i * esz, esz, wseq + i);
			assert_ret(rmpsc_shm_push_n(p, buf, k), k);
			wseq += k;
			memset(buf, 0, (size_t)k * esz);
			assert_ret(rmpsc_shm_pop_n(c, buf, cap * 2), k);
			for (uint32_t i = 0; i < k; i++)
				pat_check(buf + (size_t)i * esz, esz, rseq + i);
			rseq += k;
			break;
		case 2: /* reserve / commit, readable / advance */
			n = rmpsc_shm_reserve(p, k, &sp);
			assert_ret(n, k);
			span_shape(&sp, n, esz, wseq);
			for (uint32_t i = 0; i < k; i++)
				pat_fill(span_at(&sp, esz, i), esz, wseq + i);
			assert_ret(rmpsc_shm_len(c), 0); /* nothing visible yet */
			assert_ret(rmpsc_shm_commit(p, k), 0);
			wseq += k;
			n = rmpsc_shm_readable(c, cap, &sp);
			assert_ret(n, k);
			span_shape(&sp, n, esz, rseq);
			for (uint32_t i = 0; i < k; i++)
				pat_check(span_at(&sp, esz, i), esz, rseq + i);
			assert_ret(rmpsc_shm_advance(c, k + 1), -EINVAL);
			assert_ret(rmpsc_shm_advance(c, k), 0);
			rseq += k;
			break;
		default: /* mixed: push_n, then reserve and partial commits,
			  * read with pop then readable */
			for (uint32_t i = 0; i < k; i++)
				pat_fill(buf + (size_t)i * esz, esz, wseq + i);
			assert_ret(rmpsc_shm_push_n(p, buf, k), k);
			wseq += k;
			n = rmpsc_shm_reserve(p, cap, &sp);
			assert_ret(n, k == cap ? -EAGAIN : (int)(cap - k));
			if (n > 0) {
				span_shape(&sp, n, esz, wseq);
				for (int i = 0; i < n; i++)
					pat_fill(span_at(&sp, esz, (uint32_t)i), esz,
						 wseq + (uint32_t)i);
				assert_ret(rmpsc_shm_commit(p, (uint32_t)n + 1), -EINVAL);
				assert_ret(rmpsc_shm_commit(p, 1), 0);
				assert_ret(rmpsc_shm_commit(p, (uint32_t)n - 1), 0);
				wseq += (uint32_t)n;
			}
			assert_ret(rmpsc_shm_len(c), cap);
			assert_ret(rmpsc_shm_push(p, buf), -EAGAIN);
			assert_ret(rmpsc_shm_push_n(p, buf, 1), -EAGAIN);
			assert_ret(rmpsc_shm_reserve(p, 1, &sp), -EAGAIN);
			pop_seq(c, esz, rseq, 1);
			rseq++;
			n = rmpsc_shm_readable(c, cap, &sp);
			assert_ret(n, cap == 1 ? -EAGAIN : (int)cap - 1);
			if (n > 0) {
				span_shape(&sp, n, esz, rseq);
				for (int i = 0; i < n; i++)
					pat_check(span_at(&sp, esz, (uint32_t)i), esz,
						  rseq + (uint32_t)i);
				assert_ret(rmpsc_shm_advance(c, (uint32_t)n), 0);
				rseq += (uint32_t)n;
			}
			break;
		}
		assert_int_equal(wseq, rseq);
		assert_ret(rmpsc_shm_len(c), 0);
	}

	/* A two-segment span on both sides: move to offset cap - 1 (cap > 1),
	 * then reserve everything. */
	if (cap > 1) {
		const uint32_t off = (uint32_t)(wseq % cap);
		const uint32_t shift = (cap - 1 + cap - off) % cap;

		push_seq(p, esz, wseq, shift);
		wseq += shift;
		pop_seq(c, esz, rseq, shift);
		rseq += shift;
		n = rmpsc_shm_reserve(p, cap, &sp);
		assert_ret(n, cap);
		span_shape(&sp, n, esz, wseq);
		assert_int_equal(sp.nseg, 2);
		assert_int_equal(sp.count[0], 1);
		assert_int_equal(sp.count[1], cap - 1);
		for (uint32_t i = 0; i < cap; i++)
			pat_fill(span_at(&sp, esz, i), esz, wseq + i);
		assert_ret(rmpsc_shm_commit(p, cap), 0);
		wseq += cap;
		n = rmpsc_shm_readable(c, cap, &sp);
		assert_ret(n, cap);
		span_shape(&sp, n, esz, rseq);
		assert_int_equal(sp.nseg, 2);
		assert_int_equal(sp.count[0], 1);
		/* The second segment is the start of the slots: the element
		 * after the first segment's last. */
		assert_ptr_equal((unsigned char *)sp.iov[0].iov_base - (size_t)(cap - 1) * esz,
				 sp.iov[1].iov_base);
		for (uint32_t i = 0; i < cap; i++)
			pat_check(span_at(&sp, esz, i), esz, rseq + i);
		/* readable of fewer elements, advance in two steps. */
		n = rmpsc_shm_readable(c, 1, &sp);
		assert_ret(n, 1);
		assert_ret(rmpsc_shm_advance(c, 1), 0);
		assert_ret(rmpsc_shm_advance(c, cap - 1), 0);
		rseq += cap;
		/* pop_n across the wrap. */
		for (uint32_t i = 0; i < cap; i++)
			pat_fill(buf + (size_t)i * esz, esz, wseq + i);
		assert_ret(rmpsc_shm_push_n(p, buf, cap * 2), cap);
		wseq += cap;
		memset(buf, 0, (size_t)cap * esz);
		assert_ret(rmpsc_shm_pop_n(c, buf, cap), cap);
		for (uint32_t i = 0; i < cap; i++)
			pat_check(buf + (size_t)i * esz, esz, rseq + i);
		rseq += cap;
	}
	assert_ret(rmpsc_shm_pop(c, buf), -EAGAIN);
	rmpsc_shm_destroy(c);
	rmpsc_shm_destroy(p);
	free(buf);
}

/* The caller may close the descriptor it attached with; the handle keeps
 * its own, a different one, close-on-exec. */
static void test_shm_attach_when_caller_closes_fd_keeps_working(void **state)
{
	rmpsc_shm *c = shm_new(RMPSC_SHM_CONSUMER, 8, 8, 0);
	const int d = dup(rmpsc_shm_fd(c));
	rmpsc_shm *p;

	(void)state;
	assert_true(d >= 0);
	p = shm_att(d, RMPSC_SHM_PRODUCER);
	assert_true(rmpsc_shm_fd(p) != d);
	assert_true(fcntl(rmpsc_shm_fd(p), F_GETFD) & FD_CLOEXEC);
	assert_int_equal(close(d), 0);
	for (uint64_t i = 0; i < 40; i++) {
		push_u64(p, i * 3);
		pop_u64(c, i * 3);
	}
	rmpsc_shm_destroy(p);
	rmpsc_shm_destroy(c);
}

/* What create and attach write into the header, as documented. */
static void test_shm_header_when_created_and_attached_holds_documented_values(void **state)
{
	const uint32_t flags = (uint32_t)test_param(state);
	rmpsc_shm *p = shm_new(RMPSC_SHM_PRODUCER, 32, 24, flags);
	rmpsc_shm *p2 = shm_new(RMPSC_SHM_PRODUCER, 32, 24, flags);
	rmpsc_shm *c;
	rmpsc_shm_header *h, *h2;
	size_t len, len2;
	const long pg = sysconf(_SC_PAGESIZE);
	uint64_t hb;

	h = hdr_map(rmpsc_shm_fd(p), &len);
	h2 = hdr_map(rmpsc_shm_fd(p2), &len2);
	assert_int_equal(h->magic, RMPSC_SHM_MAGIC);
	assert_memory_equal(&h->magic, "RMPSCSHM", 8);
	assert_int_equal(h->version, RMPSC_SHM_VERSION);
	assert_int_equal(h->header_size, RMPSC_SHM_HEADER_SIZE);
	assert_int_equal(h->elem_size, 24);
	assert_int_equal(h->capacity, 32);
	assert_int_equal(h->map_size, len);
	assert_int_equal(h->map_size,
			 (RMPSC_SHM_HEADER_SIZE + 32 * 24 + (uint64_t)pg - 1) / (uint64_t)pg *
				 (uint64_t)pg);
	assert_int_equal(h->barrier, flags & RMPSC_SHM_F_FENCE ? RMPSC_SHM_BARRIER_FENCE
							       : RMPSC_SHM_BARRIER_GLOBAL);
	assert_int_equal(h->creator_pid, getpid());
	assert_true(h->generation != h2->generation); /* random: 2^-32 to collide */
	assert_int_equal(h->_pad0, 0);
	assert_int_equal(h->ring_magic, 0x524d5353);
	assert_int_equal(h->ring_version, 1);
	assert_int_equal(h->ring_elem_size, 24);
	assert_int_equal(h->ring_capacity, 32);
	assert_int_equal(h->ring_slots, 32);
	assert_int_equal(h->closed, 0);
	assert_int_equal(h->tail, 0);
	assert_int_equal(h->head, 0);
	for (size_t i = 0; i < sizeof h->_reserved0; i++)
		assert_int_equal(h->_reserved0[i], 0);
	/* The sections: the producer attached (this process, once), the
	 * consumer never. */
	assert_int_equal(h->producer.state, RMPSC_SHM_SIDE_ATTACHED);
	assert_int_equal(h->producer.pid, getpid());
	assert_int_equal(h->producer.attaches, 1);
	assert_int_equal(h->consumer.state, RMPSC_SHM_SIDE_NONE);
	assert_int_equal(h->consumer.attaches, 0);
	c = shm_att(rmpsc_shm_fd(p), RMPSC_SHM_CONSUMER);
	assert_int_equal(h->consumer.state, RMPSC_SHM_SIDE_ATTACHED);
	assert_int_equal(h->consumer.pid, getpid());
	assert_int_equal(h->consumer.attaches, 1);
	/* A heartbeat moves this side's time forward (CLOCK_MONOTONIC). */
	hb = HLOAD(&h->consumer.heartbeat_ns);
	sleep_ns(MS);
	assert_ret(rmpsc_shm_heartbeat(c), 0);
	assert_true(HLOAD(&h->consumer.heartbeat_ns) > hb);
	assert_true(HLOAD(&h->consumer.heartbeat_ns) <= (uint64_t)now_ns());
	/* Positions. */
	push_seq(p, 24, 0, 5);
	assert_int_equal(HLOAD(&h->tail), 5);
	pop_seq(c, 24, 0, 2);
	assert_int_equal(HLOAD(&h->head), 2);
	/* The slots: slot i at header_size + i * elem_size. */
	for (uint32_t i = 2; i < 5; i++)
		pat_check((unsigned char *)h + RMPSC_SHM_HEADER_SIZE + (size_t)i * 24, 24, i);
	/* A detach marks the section; a second consumer counts. */
	rmpsc_shm_destroy(c);
	assert_int_equal(h->consumer.state, RMPSC_SHM_SIDE_DETACHED);
	assert_int_equal(h->closed, 3);
	assert_int_equal(h->final_tail, 5);
	c = shm_att(rmpsc_shm_fd(p), RMPSC_SHM_CONSUMER);
	assert_int_equal(h->consumer.attaches, 2);
	assert_int_equal(h->consumer.state, RMPSC_SHM_SIDE_ATTACHED);
	pop_seq(c, 24, 2, 3);
	rmpsc_shm_destroy(c);
	rmpsc_shm_destroy(p);
	assert_int_equal(h->producer.state, RMPSC_SHM_SIDE_DETACHED);
	rmpsc_shm_destroy(p2);
	munmap(h, len);
	munmap(h2, len2);
}

/* The permissions ("rw-s", ...) of the mapping of /proc/self/maps that
 * holds @addr into @perm (5 bytes); false if none holds it. */
static bool map_perm(const void *addr, char perm[5])
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	bool found = false;

	assert_non_null(f);
	while (!found && fgets(line, sizeof line, f)) {
		unsigned long lo, hi;

		if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perm) == 3 &&
		    (uintptr_t)addr >= lo && (uintptr_t)addr < hi)
			found = true;
	}
	fclose(f);
	return found;
}

/* "A guard page with no access follows the slots": the page after the
 * last slot of each side's mapping is not readable or writable. */
static void test_shm_mapping_when_slots_end_guard_page_follows(void **state)
{
	/* 1024 + 4 * 768 = 4096: the slots end at a page boundary. */
	const uint32_t cap = 4, esz = 768;
	rmpsc_shm *p, *c;
	rmpsc_span sp;
	char perm[5];

	(void)state;
	if (sysconf(_SC_PAGESIZE) != 4096)
		skip();
	shm_pair(RMPSC_SHM_PRODUCER, cap, esz, 0, &p, &c);
	assert_ret(rmpsc_shm_reserve(p, cap, &sp), (int)cap);
	assert_int_equal(sp.pos, 0);
	assert_true(map_perm((unsigned char *)sp.iov[0].iov_base + (size_t)cap * esz - 1, perm));
	assert_true(perm[0] == 'r' && perm[1] == 'w');
	assert_true(map_perm((unsigned char *)sp.iov[0].iov_base + (size_t)cap * esz, perm));
	assert_true(perm[0] == '-' && perm[1] == '-');
	assert_ret(rmpsc_shm_commit(p, cap), 0);
	assert_ret(rmpsc_shm_readable(c, cap, &sp), (int)cap);
	assert_true(map_perm((unsigned char *)sp.iov[0].iov_base + (size_t)cap * esz, perm));
	assert_true(perm[0] == '-' && perm[1] == '-');
	assert_ret(rmpsc_shm_advance(c, cap), 0);
	rmpsc_shm_destroy(c);
	rmpsc_shm_destroy(p);
}

/* "never reads geometry from the shared pages again": the header's
 * geometry rewritten after attach changes nothing. */
static void test_shm_calls_when_peer_rewrites_geometry_ignore_it(void **state)
{
	const uint32_t cap = 8, esz = 16;
	rmpsc_shm *p, *c;
	rmpsc_shm_header *h;
	size_t len;
	uint64_t seq = 0;

	(void)state;
	shm_pair(RMPSC_SHM_CONSUMER, cap, esz, 0, &p, &c);
	h = hdr_map(rmpsc_shm_fd(p), &len);
	HSTORE(&h->capacity, 1u << 30);
	HSTORE(&h->elem_size, 1u << 24);
	HSTORE(&h->ring_capacity, (uint64_t)1 << 40);
	HSTORE(&h->ring_slots, (uint64_t)1 << 40);
	HSTORE(&h->ring_elem_size, 1u << 24);
	HSTORE(&h->map_size, ~0ull);
	HSTORE(&h->header_size, 0u);
	HSTORE(&h->magic, 0ull);
	assert_ret(rmpsc_shm_capacity(p), cap);
	assert_ret(rmpsc_shm_capacity(c), cap);
	assert_ret(rmpsc_shm_elem_size(p), esz);
	assert_ret(rmpsc_shm_elem_size(c), esz);
	for (int lap = 0; lap < 5; lap++) {
		push_seq(p, esz, seq, cap);
		assert_ret(rmpsc_shm_push(p, h), -EAGAIN);
		assert_ret(rmpsc_shm_len(c), cap);
		pop_seq(c, esz, seq, cap);
		seq += cap;
	}
	rmpsc_shm_destroy(c);
	rmpsc_shm_destroy(p);
	munmap(h, len);
}

/* ---- 3. role misuse, NULL and foreign handles --------------------------- */

static void producer_calls_ebadf(rmpsc_shm *s)
{
	rmpsc_span sp;
	uint64_t v = 1;

	assert_ret(rmpsc_shm_reserve(s, 1, &sp), -EBADF);
	assert_ret(rmpsc_shm_reserve(s, 0, &sp), -EBADF);
	assert_ret(rmpsc_shm_commit(s, 0), -EBADF);
	assert_ret(rmpsc_shm_commit(s, 1), -EBADF);
	assert_ret(rmpsc_shm_push(s, &v), -EBADF);
	assert_ret(rmpsc_shm_push_n(s, &v, 1), -EBADF);
	assert_ret(rmpsc_shm_push_n(s, &v, 0), -EBADF);
	assert_ret(rmpsc_shm_reserve_timed(s, 1, &sp, 0, NULL), -EBADF);
	assert_ret(rmpsc_shm_reserve_timed(s, 1, &sp, -1, NULL), -EBADF);
	assert_ret(rmpsc_shm_push_timed(s, &v, 0, NULL), -EBADF);
	assert_ret(rmpsc_shm_push_timed(s, &v, -1, NULL), -EBADF);
	assert_ret(rmpsc_shm_push_n_timed(s, &v, 1, 0, NULL), -EBADF);
	assert_ret(rmpsc_shm_push_n_timed(s, &v, 1, -1, NULL), -EBADF);
}

static void consumer_calls_ebadf(rmpsc_shm *s)
{
	rmpsc_span sp;
	uint64_t v[4];

	assert_ret(rmpsc_shm_readable(s, 1, &sp), -EBADF);
	assert_ret(rmpsc_shm_readable(s, 0, &sp), -EBADF);
	assert_ret(rmpsc_shm_advance(s, 0), -EBADF);
	assert_ret(rmpsc_shm_advance(s, 1), -EBADF);
	assert_ret(rmpsc_shm_pop(s, v), -EBADF);
	assert_ret(rmpsc_shm_pop_n(s, v, 4), -EBADF);
	assert_ret(rmpsc_shm_pop_n(s, v, 0), -EBADF);
	assert_ret(rmpsc_shm_readable_timed(s, 1, &sp, 0, NULL), -EBADF);
	assert_ret(rmpsc_shm_readable_timed(s, 1, &sp, -1, NULL), -EBADF);
	assert_ret(rmpsc_shm_pop_timed(s, v, 0, NULL), -EBADF);
	assert_ret(rmpsc_shm_pop_timed(s, v, -1, NULL), -EBADF);
	assert_ret(rmpsc_shm_pop_n_timed(s, v, 4, 0, NULL), -EBADF);
	assert_ret(rmpsc_shm_pop_n_timed(s, v, 4, -1, NULL), -EBADF);
}

static void common_calls_ebadf(rmpsc_shm *s)
{
	assert_ret(rmpsc_shm_fd(s), -EBADF);
	assert_ret(rmpsc_shm_role(s), -EBADF);
	assert_ret(rmpsc_shm_capacity(s), -EBADF);
	assert_ret(rmpsc_shm_elem_size(s), -EBADF);
	assert_ret(rmpsc_shm_len(s), -EBADF);
	assert_ret(rmpsc_shm_close(s), -EBADF);
	assert_ret(rmpsc_shm_is_closed(s), -EBADF);
	assert_ret(rmpsc_shm_heartbeat(s), -EBADF);
	assert_ret(rmpsc_shm_peer(s, -1), -EBADF);
	assert_ret(rmpsc_shm_peer(s, 0), -EBADF);
	assert_ret(rmpsc_shm_watch(s, 0), -EBADF);
}

static void test_shm_calls_when_wrong_role_or_not_a_handle_return_ebadf(void **state)
{
	rmpsc_shm *p, *c;
	uint64_t v = 7;

	(void)state;
	shm_pair(RMPSC_SHM_PRODUCER, 8, 8, 0, &p, &c);
	producer_calls_ebadf(c);
	consumer_calls_ebadf(p);
	producer_calls_ebadf(NULL);
	consumer_calls_ebadf(NULL);
	common_calls_ebadf(NULL);
	producer_calls_ebadf(FOREIGN(rmpsc_shm));
	consumer_calls_ebadf(FOREIGN(rmpsc_shm));
	common_calls_ebadf(FOREIGN(rmpsc_shm));
	producer_calls_ebadf(SHM_SENTINEL);
	consumer_calls_ebadf(SHM_SENTINEL);
	common_calls_ebadf(SHM_SENTINEL);
	/* An in-process ring is not a shared ring. */
	{
		rmpsc_ring *r = ring_make(8, 8, 0, 0);

		producer_calls_ebadf((rmpsc_shm *)(void *)r);
		consumer_calls_ebadf((rmpsc_shm *)(void *)r);
		common_calls_ebadf((rmpsc_shm *)(void *)r);
		rmpsc_ring_destroy(r);
	}
	/* Nothing changed: the pair still works, and the misuse left no
	 * element and no close. */
	assert_ret(rmpsc_shm_len(c), 0);
	assert_ret(rmpsc_shm_is_closed(c), 0);
	push_u64(p, 99);
	pop_u64(c, 99);
	assert_ret(rmpsc_shm_push(p, &v), 0);
	rmpsc_shm_destroy(NULL);
	rmpsc_shm_destroy(p);
	rmpsc_shm_destroy(c);
}

/* ---- 4. a second attach of a live role ------------------------------------ */

static void test_shm_attach_when_role_live_returns_ebusy_and_after_destroy_attaches(void **state)
{
	rmpsc_shm *p, *c, *p2;
	int fd;

	(void)state;
	shm_pair(RMPSC_SHM_PRODUCER, 16, 8, 0, &p, &c);
	fd = dup(rmpsc_shm_fd(c));
	assert_true(fd >= 0);
	/* Both roles are held by this (live) process. */
	shm_att_role_fails(fd, RMPSC_SHM_PRODUCER, -EBUSY);
	shm_att_role_fails(fd, RMPSC_SHM_CONSUMER, -EBUSY);
	shm_att_role_fails(rmpsc_shm_fd(p), RMPSC_SHM_PRODUCER, -EBUSY);
	/* The refused attaches disturbed nothing. */
	push_u64(p, 1);
	push_u64(p, 2);
	push_u64(p, 3);
	pop_u64(c, 1);
	assert_ret(rmpsc_shm_is_closed(c), 0);

	/* The first producer goes: destroy closes the ring (what it
	 * committed stays deliverable) and marks the side detached. */
	rmpsc_shm_destroy(p);
	assert_ret(rmpsc_shm_is_closed(c), 1);
	/* The role is free again: a new producer attaches, to a closed ring. */
	p2 = shm_att(fd, RMPSC_SHM_PRODUCER);
	assert_ret(rmpsc_shm_is_closed(p2), 1);
	{
		uint64_t v = 4;
		rmpsc_span sp;

		assert_ret(rmpsc_shm_push(p2, &v), -EPIPE);
		assert_ret(rmpsc_shm_push_n(p2, &v, 1), -EPIPE);
		assert_ret(rmpsc_shm_reserve(p2, 1, &sp), -EPIPE);
		assert_ret(rmpsc_shm_push_timed(p2, &v, -1, NULL), -EPIPE);
	}
	/* And a second one while p2 lives: -EBUSY again. */
	shm_att_role_fails(fd, RMPSC_SHM_PRODUCER, -EBUSY);
	/* The consumer still gets 2 and 3, then the end: -EPIPE (a close)
	 * or -ECONNRESET (the producer detached). */
	pop_u64(c, 2);
	pop_u64(c, 3);
	{
		uint64_t v;
		const int r = rmpsc_shm_pop(c, &v);

		if (r != -EPIPE && r != -ECONNRESET) {
			print_error("pop after the producer's destroy: %d (%s)\n", r, errname(r));
			fail();
		}
		assert_ret(rmpsc_shm_pop(c, &v), r);
	}
	rmpsc_shm_destroy(p2);
	/* The consumer goes too: a new consumer may attach. */
	rmpsc_shm_destroy(c);
	c = shm_att(fd, RMPSC_SHM_CONSUMER);
	{
		uint64_t v;
		const int r = rmpsc_shm_pop(c, &v);

		assert_true(r == -EPIPE || r == -ECONNRESET);
	}
	rmpsc_shm_destroy(c);
	close(fd);
}

/* ---- 5. attach validation ------------------------------------------------ */

/* A valid image: the whole memfd of a ring of 16 slots of 8 bytes whose
 * producer pushed 9 and whose consumer popped 5 (head 5, tail 9), then
 * the producer section made "never attached" so that either role may
 * attach the copy. */
struct image {
	unsigned char *b;
	size_t len;
};

static struct image image_make(uint32_t cap, uint32_t esz)
{
	rmpsc_shm *p, *c;
	struct image im;
	struct stat st;
	rmpsc_shm_header *h;

	shm_pair(RMPSC_SHM_PRODUCER, cap, esz, 0, &p, &c);
	push_seq(p, esz, 0, cap / 2 + 1);
	pop_seq(c, esz, 0, cap / 4 + 1);
	assert_int_equal(fstat(rmpsc_shm_fd(p), &st), 0);
	im.len = (size_t)st.st_size;
	im.b = malloc(im.len);
	assert_non_null(im.b);
	assert_int_equal(pread(rmpsc_shm_fd(p), im.b, im.len, 0), (ssize_t)im.len);
	rmpsc_shm_destroy(c);
	rmpsc_shm_destroy(p);
	h = (rmpsc_shm_header *)(void *)im.b;
	assert_int_equal(h->magic, RMPSC_SHM_MAGIC);
	assert_int_equal(h->version, RMPSC_SHM_VERSION);
	assert_int_equal(h->header_size, RMPSC_SHM_HEADER_SIZE);
	assert_int_equal(h->map_size, im.len);
	assert_int_equal(h->tail, cap / 2 + 1);
	assert_int_equal(h->head, cap / 4 + 1);
	/* The copy was taken after both destroys: open it again, as a
	 * ring both of whose sides are gone would not be useful. */
	h->closed = 0;
	h->final_tail = 0;
	memset(&h->producer, 0, sizeof h->producer);
	memset(&h->consumer, 0, sizeof h->consumer);
	return im;
}

#define SEAL_ALL (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

/* A memfd holding @len bytes of @b, of size @size, with @seals. */
static int memfd_image(const void *b, size_t len, size_t size, int seals)
{
	const int fd = memfd_create("test_shm_ring", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	if (len > size)
		len = size;
	assert_int_equal(pwrite(fd, b, len, 0), (ssize_t)len);
	if (seals)
		assert_int_equal(fcntl(fd, F_ADD_SEALS, seals), 0);
	return fd;
}

/* The image as it is must attach (either role): the baseline of every
 * corruption below. */
static void image_attaches(const struct image *im)
{
	const int fd = memfd_image(im->b, im->len, im->len, SEAL_ALL);
	rmpsc_shm *c = shm_att(fd, RMPSC_SHM_CONSUMER);
	rmpsc_shm *p = shm_att(fd, RMPSC_SHM_PRODUCER);
	const rmpsc_shm_header *h = (const void *)im->b;
	const uint64_t len = h->tail - h->head;

	assert_ret(rmpsc_shm_len(c), len);
	for (uint64_t i = 0; i < len; i++) {
		unsigned char e[64];

		assert_true(h->elem_size <= sizeof e);
		assert_ret(rmpsc_shm_pop(c, e), 0);
		pat_check(e, h->elem_size, h->head + i);
	}
	{
		unsigned char e[64];

		assert_ret(rmpsc_shm_pop(c, e), -EAGAIN);
	}
	rmpsc_shm_destroy(p);
	rmpsc_shm_destroy(c);
	close(fd);
}

static void test_shm_attach_when_not_a_sealed_memfd_of_the_right_size_returns_eproto(void **state)
{
	struct image im = image_make(16, 8);
	const rmpsc_shm_config c = shm_cfg(RMPSC_SHM_CONSUMER, 0, 0, 0);
	const int before = fd_count();
	int fd;

	(void)state;
	image_attaches(&im);
	/* A regular file in /tmp with the right bytes: it cannot be sealed. */
	{
		char path[] = "/tmp/test_shm_ring_XXXXXX";

		fd = mkstemp(path);
		assert_true(fd >= 0);
		unlink(path);
		assert_int_equal(pwrite(fd, im.b, im.len, 0), (ssize_t)im.len);
		shm_att_fails(fd, &c, -EPROTO);
		close(fd);
	}
	/* A pipe, a socket, a directory, /dev/zero. */
	{
		int pp[2], sv[2];

		assert_int_equal(pipe(pp), 0);
		assert_int_equal(write(pp[1], im.b, 512), 512);
		shm_att_fails(pp[0], &c, -EPROTO);
		shm_att_fails(pp[1], &c, -EPROTO);
		close(pp[0]);
		close(pp[1]);
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
		shm_att_fails(sv[0], &c, -EPROTO);
		close(sv[0]);
		close(sv[1]);
		fd = open("/tmp", O_RDONLY | O_DIRECTORY);
		assert_true(fd >= 0);
		shm_att_fails(fd, &c, -EPROTO);
		close(fd);
		fd = open("/dev/zero", O_RDWR);
		assert_true(fd >= 0);
		shm_att_fails(fd, &c, -EPROTO);
		close(fd);
	}
	/* Memfds with the right bytes and some seals missing. */
	{
		const int some[] = { 0,
				     F_SEAL_SHRINK,
				     F_SEAL_GROW,
				     F_SEAL_SHRINK | F_SEAL_GROW,
				     F_SEAL_SHRINK | F_SEAL_SEAL,
				     F_SEAL_GROW | F_SEAL_SEAL,
				     F_SEAL_SEAL };

		for (size_t i = 0; i < sizeof some / sizeof some[0]; i++) {
			fd = memfd_image(im.b, im.len, im.len, some[i]);
			shm_att_fails(fd, &c, -EPROTO);
			close(fd);
		}
		/* A memfd that cannot be sealed at all. */
		fd = memfd_create("test_shm_ring_noseal", MFD_CLOEXEC);
		assert_true(fd >= 0);
		assert_int_equal(pwrite(fd, im.b, im.len, 0), (ssize_t)im.len);
		shm_att_fails(fd, &c, -EPROTO);
		close(fd);
		/* More seals than needed are fine (F_SEAL_FUTURE_WRITE aside). */
		fd = memfd_image(im.b, im.len, im.len, SEAL_ALL);
		{
			rmpsc_shm *s = shm_att(fd, RMPSC_SHM_CONSUMER);

			rmpsc_shm_destroy(s);
		}
		close(fd);
	}
	/* Wrong sizes, sealed. */
	{
		const size_t sizes[] = { 0, 1, 512, RMPSC_SHM_HEADER_SIZE - 1,
					 RMPSC_SHM_HEADER_SIZE, RMPSC_SHM_HEADER_SIZE + 128,
					 im.len - 1, im.len + 1, im.len + 4096, im.len * 2,
					 im.len * 64 };

		for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
			fd = memfd_image(im.b, im.len, sizes[i], SEAL_ALL);
			shm_att_fails(fd, &c, -EPROTO);
			close(fd);
		}
	}
	assert_int_equal(fd_count(), before);
	free(im.b);
}

/* One named damage of one header field. */
struct corrupt {
	const char *name;
	void (*fn)(rmpsc_shm_header *h);
};

#define CORRUPT(nm, body)                                                      \
	static void corrupt_##nm(rmpsc_shm_header *h)                          \
	{                                                                      \
		body;                                                          \
	}
CORRUPT(magic_flip, h->magic ^= 1)
CORRUPT(magic_zero, h->magic = 0)
CORRUPT(magic_swapped, h->magic = __builtin_bswap64(RMPSC_SHM_MAGIC))
CORRUPT(version_0, h->version = 0)
CORRUPT(version_2, h->version = 2)
CORRUPT(version_max, h->version = UINT32_MAX)
CORRUPT(header_size_0, h->header_size = 0)
CORRUPT(header_size_512, h->header_size = 512)
CORRUPT(header_size_4096, h->header_size = 4096)
CORRUPT(elem_size_0, h->elem_size = 0)
CORRUPT(elem_size_huge, h->elem_size = RMPSC_SHM_ELEM_SIZE_MAX + 1)
CORRUPT(elem_size_max, h->elem_size = UINT32_MAX)
CORRUPT(elem_size_16, h->elem_size = 16)  /* same map size, ring word 8 */
CORRUPT(elem_size_4, h->elem_size = 4)
CORRUPT(capacity_0, h->capacity = 0)
CORRUPT(capacity_12, h->capacity = 12)
CORRUPT(capacity_17, h->capacity = 17)
CORRUPT(capacity_huge, h->capacity = 1u << 31)
CORRUPT(capacity_max, h->capacity = UINT32_MAX)
CORRUPT(capacity_32, h->capacity = 32) /* same map size, ring words 16 */
CORRUPT(capacity_8, h->capacity = 8)
CORRUPT(geometry_overflow, (h->capacity = RMPSC_SHM_CAPACITY_MAX,
			    h->elem_size = RMPSC_SHM_ELEM_SIZE_MAX,
			    h->ring_capacity = RMPSC_SHM_CAPACITY_MAX,
			    h->ring_slots = RMPSC_SHM_CAPACITY_MAX,
			    h->ring_elem_size = RMPSC_SHM_ELEM_SIZE_MAX))
CORRUPT(map_size_0, h->map_size = 0)
CORRUPT(map_size_plus_page, h->map_size += 4096)
CORRUPT(map_size_minus_1, h->map_size -= 1)
CORRUPT(map_size_max, h->map_size = UINT64_MAX)
CORRUPT(map_size_2_40, h->map_size = RMPSC_SHM_MAP_MAX)
CORRUPT(barrier_0, h->barrier = 0)
CORRUPT(barrier_3, h->barrier = 3)
CORRUPT(barrier_max, h->barrier = UINT32_MAX)
CORRUPT(ring_magic_flip, h->ring_magic ^= 0x100)
CORRUPT(ring_magic_0, h->ring_magic = 0)
CORRUPT(ring_version_0, h->ring_version = 0)
CORRUPT(ring_version_2, h->ring_version = 2)
CORRUPT(ring_elem_size_4, h->ring_elem_size = 4)
CORRUPT(ring_elem_size_0, h->ring_elem_size = 0)
CORRUPT(ring_elem_size_16, h->ring_elem_size = 16)
CORRUPT(ring_capacity_8, h->ring_capacity = 8)
CORRUPT(ring_capacity_0, h->ring_capacity = 0)
CORRUPT(ring_capacity_2_32, h->ring_capacity += 1ull << 32)
CORRUPT(ring_slots_32, h->ring_slots = 32)
CORRUPT(ring_slots_8, h->ring_slots = 8)
CORRUPT(ring_slots_0, h->ring_slots = 0)
CORRUPT(ring_slots_2_32, h->ring_slots += 1ull << 32)
CORRUPT(closed_4, h->closed = 4)
CORRUPT(closed_7, h->closed = 7)
CORRUPT(closed_max, h->closed = UINT32_MAX)
CORRUPT(tail_beyond_capacity, h->tail = h->head + h->capacity + 1)
CORRUPT(tail_far, h->tail = h->head + (1ull << 40))
CORRUPT(tail_max, h->tail = UINT64_MAX)
CORRUPT(head_beyond_tail, h->head = h->tail + 1)
CORRUPT(head_half_turn, h->head = h->tail + (1ull << 63))
CORRUPT(head_far_behind, h->head = h->tail - h->capacity - 1)
CORRUPT(closed_final_tail_beyond, (h->closed = 3,
				   h->final_tail = h->head + h->capacity + 1))
CORRUPT(closed_final_tail_before_head, (h->closed = 3, h->final_tail = h->head - 1))
CORRUPT(closed_final_tail_max, (h->closed = 3, h->final_tail = UINT64_MAX))
CORRUPT(closed_final_tail_zero, (h->closed = 3, h->final_tail = 0))

#define C(nm) { #nm, corrupt_##nm }
static const struct corrupt corruptions[] = {
	C(magic_flip),
	C(magic_zero),
	C(magic_swapped),
	C(version_0),
	C(version_2),
	C(version_max),
	C(header_size_0),
	C(header_size_512),
	C(header_size_4096),
	C(elem_size_0),
	C(elem_size_huge),
	C(elem_size_max),
	C(elem_size_16),
	C(elem_size_4),
	C(capacity_0),
	C(capacity_12),
	C(capacity_17),
	C(capacity_huge),
	C(capacity_max),
	C(capacity_32),
	C(capacity_8),
	C(geometry_overflow),
	C(map_size_0),
	C(map_size_plus_page),
	C(map_size_minus_1),
	C(map_size_max),
	C(map_size_2_40),
	C(barrier_0),
	C(barrier_3),
	C(barrier_max),
	C(ring_magic_flip),
	C(ring_magic_0),
	C(ring_version_0),
	C(ring_version_2),
	C(ring_elem_size_4),
	C(ring_elem_size_0),
	C(ring_elem_size_16),
	C(ring_capacity_8),
	C(ring_capacity_0),
	C(ring_capacity_2_32),
	C(ring_slots_32),
	C(ring_slots_8),
	C(ring_slots_0),
	C(ring_slots_2_32),
	C(closed_4),
	C(closed_7),
	C(closed_max),
	C(tail_beyond_capacity),
	C(tail_far),
	C(tail_max),
	C(head_beyond_tail),
	C(head_half_turn),
	C(head_far_behind),
	C(closed_final_tail_beyond),
	C(closed_final_tail_before_head),
	C(closed_final_tail_max),
	C(closed_final_tail_zero),
};
#undef C

static void test_shm_attach_when_header_field_damaged_returns_eproto(void **state)
{
	struct image im = image_make(16, 8);
	unsigned char *copy = malloc(im.len);
	const int before = fd_count();
	int bad = 0;

	(void)state;
	assert_non_null(copy);
	assert_true(sizeof corruptions / sizeof corruptions[0] >= 25);
	image_attaches(&im);
	for (size_t i = 0; i < sizeof corruptions / sizeof corruptions[0]; i++) {
		for (uint32_t role = RMPSC_SHM_PRODUCER; role <= RMPSC_SHM_CONSUMER; role++) {
			rmpsc_shm_config c = shm_cfg(role, 0, 0, 0);
			rmpsc_shm *s = SHM_SENTINEL;
			int fd, r;

			memcpy(copy, im.b, im.len);
			corruptions[i].fn((rmpsc_shm_header *)(void *)copy);
			fd = memfd_image(copy, im.len, im.len, SEAL_ALL);
			r = rmpsc_shm_attach(fd, &c, &s);
			if (r != -EPROTO || s != NULL) {
				print_error("corruption %s as %s: attach = %d (%s), out %p\n",
					    corruptions[i].name,
					    role == RMPSC_SHM_PRODUCER ? "producer" : "consumer", r,
					    errname(r), (void *)s);
				bad++;
				if (r == 0)
					rmpsc_shm_destroy(s);
			}
			/* Also with the geometry asked for. */
			c.capacity = 16;
			c.elem_size = 8;
			s = SHM_SENTINEL;
			r = rmpsc_shm_attach(fd, &c, &s);
			if (r != -EPROTO || s != NULL) {
				print_error("corruption %s (geometry asked): attach = %d (%s)\n",
					    corruptions[i].name, r, errname(r));
				bad++;
				if (r == 0)
					rmpsc_shm_destroy(s);
			}
			close(fd);
		}
	}
	assert_int_equal(bad, 0);
	assert_int_equal(fd_count(), before);
	free(copy);
	free(im.b);
}

/* Fields the peer may write without harm: a valid image with them
 * changed still attaches (the baseline is not too strict either). */
static void test_shm_attach_when_hint_fields_vary_still_attaches(void **state)
{
	struct image im = image_make(16, 8);
	rmpsc_shm_header *h = (rmpsc_shm_header *)(void *)im.b;

	(void)state;
	/* Closed, with the end at the tail: attaches, the consumer drains. */
	h->closed = 3;
	h->final_tail = h->tail;
	{
		const int fd = memfd_image(im.b, im.len, im.len, SEAL_ALL);
		rmpsc_shm *c = shm_att(fd, RMPSC_SHM_CONSUMER);
		uint64_t v;

		assert_ret(rmpsc_shm_is_closed(c), 1);
		for (uint64_t i = h->head; i < h->tail; i++) {
			unsigned char e[8];

			assert_ret(rmpsc_shm_pop(c, e), 0);
			pat_check(e, 8, i);
		}
		assert_ret(rmpsc_shm_pop(c, &v), -EPIPE);
		rmpsc_shm_destroy(c);
		close(fd);
	}
	/* The other role's section attached by a process that is gone, or a
	 * foreign pid: either side may attach first, and this role is free. */
	h->closed = 0;
	h->final_tail = 0;
	h->consumer.state = RMPSC_SHM_SIDE_DETACHED;
	h->consumer.pid = (int32_t)getpid();
	h->producer.state = RMPSC_SHM_SIDE_ATTACHED;
	h->producer.pid = INT32_MAX; /* no such process */
	{
		const int fd = memfd_image(im.b, im.len, im.len, SEAL_ALL);
		rmpsc_shm *c = shm_att(fd, RMPSC_SHM_CONSUMER);
		rmpsc_shm *p = shm_att(fd, RMPSC_SHM_PRODUCER);

		rmpsc_shm_destroy(p);
		rmpsc_shm_destroy(c);
		close(fd);
	}
	/* A section that says attached by this very (live) process: -EBUSY. */
	h->consumer.state = RMPSC_SHM_SIDE_ATTACHED;
	h->consumer.pid = (int32_t)getpid();
	{
		const int fd = memfd_image(im.b, im.len, im.len, SEAL_ALL);

		shm_att_role_fails(fd, RMPSC_SHM_CONSUMER, -EBUSY);
		close(fd);
	}
	/* A fence ring attaches too. */
	h->consumer.state = RMPSC_SHM_SIDE_NONE;
	h->barrier = RMPSC_SHM_BARRIER_FENCE;
	{
		const int fd = memfd_image(im.b, im.len, im.len, SEAL_ALL);
		rmpsc_shm *c = shm_att(fd, RMPSC_SHM_CONSUMER);

		assert_ret(rmpsc_shm_len(c), h->tail - h->head);
		rmpsc_shm_destroy(c);
		close(fd);
	}
	free(im.b);
}

/* ---- 6. random damage of the header ----------------------------------- */

/* Header fields a damage may set to a chosen value. */
struct hfield {
	const char *name;
	size_t off, size;
};
#define HF(f) { #f, offsetof(rmpsc_shm_header, f), sizeof(((rmpsc_shm_header *)0)->f) }
static const struct hfield hfields[] = {
	HF(magic),	    HF(version),	HF(header_size),    HF(elem_size),
	HF(capacity),	    HF(map_size),	HF(barrier),	    HF(creator_pid),
	HF(generation),	    HF(_pad0),		HF(producer.state), HF(producer.pid),
	HF(producer.heartbeat_ns), HF(producer.attaches), HF(consumer.state), HF(consumer.pid),
	HF(consumer.heartbeat_ns), HF(ring_magic), HF(ring_version),  HF(ring_elem_size),
	HF(_pad1),	    HF(ring_capacity),	HF(ring_slots),	    HF(closed),
	HF(prod_waiters),   HF(cons_waiters),	HF(_state),	    HF(tail),
	HF(_mc_head),	    HF(head),		HF(_claim),	    HF(cons_seq),
	HF(prod_seq),	    HF(final_tail),
};
#undef HF

static uint64_t hfield_get(const unsigned char *b, const struct hfield *f)
{
	uint64_t v = 0;

	memcpy(&v, b + f->off, f->size); /* little-endian */
	return v;
}

static void hfield_set(unsigned char *b, const struct hfield *f, uint64_t v)
{
	memcpy(b + f->off, &v, f->size);
}

/* A value for a field: interesting numbers, neighbours of the current
 * value and of the other geometry, or random bits. */
static uint64_t fuzz_value(uint64_t *rng, const unsigned char *b, const struct hfield *f)
{
	const rmpsc_shm_header *h = (const void *)b;
	const uint64_t cur = hfield_get(b, f);
	const uint64_t x = xs_next(rng);
	const int64_t d = (int64_t)(x >> 40) % 9 - 4;

	switch ((x >> 8) % 12) {
	case 0: return 0;
	case 1: return 1u + (x >> 20) % 4;
	case 2: return cur + (uint64_t)d;
	case 3: return ~0ull;
	case 4: return 1ull << ((x >> 20) % (f->size * 8));
	case 5: return h->head + (uint64_t)d;
	case 6: return h->tail + (uint64_t)d;
	case 7: return h->head + h->capacity + (uint64_t)d;
	case 8: return (uint64_t)getpid();
	case 9: return h->capacity + (uint64_t)d;
	case 10: return (uint64_t)INT32_MAX;
	default: return xs_next(rng);
	}
}

/* Damage the first 1024 bytes of @b: a few bit flips, random bytes or
 * field values. */
static void fuzz_damage(uint64_t *rng, unsigned char *b)
{
	const uint32_t k = 1 + (uint32_t)(xs_next(rng) % 4);

	for (uint32_t i = 0; i < k; i++) {
		const uint64_t x = xs_next(rng);

		switch (x % 3) {
		case 0:
			b[(x >> 8) % RMPSC_SHM_HEADER_SIZE] ^= (unsigned char)(1u << ((x >> 40) % 8));
			break;
		case 1:
			b[(x >> 8) % RMPSC_SHM_HEADER_SIZE] = (unsigned char)(x >> 40);
			break;
		default: {
			const struct hfield *f =
				&hfields[(x >> 8) % (sizeof hfields / sizeof hfields[0])];

			hfield_set(b, f, fuzz_value(rng, b, f));
			break;
		}
		}
	}
}

struct fuzz_run {
	uint64_t seed, iter;
	int op;
	const char *call;
	bool broken; /* a call returned -EPROTO: every later one must */
	uint32_t cap, esz;
	unsigned char *slot0;  /* the handle's first slot, from its first span */
	unsigned char *live;   /* our own mapping of the attached memfd, or NULL */
	unsigned long attach_rc[8]; /* 0, EPROTO, EBUSY, ENOMEM, EOPNOTSUPP, other */
	unsigned long ops, eproto_ops, live_writes;
};

/* Check a return of a data call: one of @allowed (0 terminated list of
 * negatives) or a count in [lo, hi]; once broken, only -EPROTO. */
static void fuzz_ret(struct fuzz_run *z, const char *call, long long r, long long lo,
		     long long hi, const int *allowed)
{
	bool ok = r >= lo && r <= hi;

	z->call = call;
	for (const int *a = allowed; !ok && *a; a++)
		ok = r == *a;
	if (ok && z->broken && r != -EPROTO) {
		print_error("seed %#" PRIx64 " iteration %" PRIu64 " op %d: %s = %lld (%s) after "
			    "-EPROTO (the latch did not hold)\n",
			    z->seed, z->iter, z->op, call, r, errname(r));
		fail();
	}
	if (!ok) {
		print_error("seed %#" PRIx64 " iteration %" PRIu64 " op %d: %s = %lld (%s), not "
			    "documented\n",
			    z->seed, z->iter, z->op, call, r, errname(r));
		fail();
	}
	if (r == -EPROTO) {
		z->broken = true;
		z->eproto_ops++;
	}
	z->ops++;
}

static const int cons_try_codes[] = { -EAGAIN, -EPIPE, -ECONNRESET, -EPROTO, 0 };
static const int cons_timed_codes[] = { -ETIMEDOUT, -EPIPE, -ECONNRESET, -EPROTO, 0 };
/* -ECONNRESET: every call, once the peer was found gone (checked on its
 * own: test_shm_producer_when_peer_gone_try_calls_return_econnreset). */
static const int prod_try_codes[] = { -EAGAIN, -EPIPE, -ECONNRESET, -EPROTO, 0 };
static const int prod_timed_codes[] = { -ETIMEDOUT, -EPIPE, -ECONNRESET, -EPROTO, 0 };
static const int eproto_only[] = { -EPROTO, 0 };
static const int commit_codes[] = { -EINVAL, -EPIPE, -ECONNRESET, -EPROTO, 0 };
static const int advance_codes[] = { -EINVAL, -EPROTO, 0 };

/* Touch every byte of a span (the guard page, or an unmapped address,
 * would fault): read them for the consumer, write them for the producer. */
static void fuzz_span(struct fuzz_run *z, const rmpsc_span *sp, int n, bool write)
{
	if (n <= 0)
		return;
	unsigned char *const b0 = (unsigned char *)sp->iov[0].iov_base;
	const size_t slots = (size_t)z->cap * z->esz;

	if (sp->count[0] + sp->count[1] != (uint32_t)n ||
	    sp->iov[0].iov_len != (size_t)sp->count[0] * z->esz ||
	    sp->iov[1].iov_len != (size_t)sp->count[1] * z->esz || sp->count[0] == 0 ||
	    (uint32_t)n > z->cap) {
		print_error("seed %#" PRIx64 " iteration %" PRIu64 ": %s span of %d: %u+%u\n",
			    z->seed, z->iter, z->call, n, sp->count[0], sp->count[1]);
		fail();
	}
	/* Inside the slots: the first segment starts at slot pos % capacity
	 * of the same slot array every time, ends within it, and the second
	 * starts at slot 0. */
	if (!z->slot0)
		z->slot0 = b0 - (size_t)(sp->pos & (z->cap - 1)) * z->esz;
	if (b0 != z->slot0 + (size_t)(sp->pos & (z->cap - 1)) * z->esz ||
	    b0 + sp->iov[0].iov_len > z->slot0 + slots ||
	    (sp->count[1] && (unsigned char *)sp->iov[1].iov_base != z->slot0)) {
		print_error("seed %#" PRIx64 " iteration %" PRIu64 ": %s span at pos %" PRIu64
			    " outside the slots\n", z->seed, z->iter, z->call, sp->pos);
		fail();
	}
	for (uint32_t g = 0; g < 2; g++) {
		unsigned char *p = sp->iov[g].iov_base;
		unsigned sum = 0;

		for (size_t i = 0; i < sp->iov[g].iov_len; i++) {
			if (write)
				p[i] = (unsigned char)i;
			else
				sum += p[i];
		}
		(void)sum;
	}
}

static void fuzz_ops(struct fuzz_run *z, rmpsc_shm *s, uint32_t role, uint64_t *rng)
{
	unsigned char *buf = malloc((size_t)z->esz * 20);
	const uint32_t nops = 1 + (uint32_t)(xs_next(rng) % 64);
	rmpsc_span sp;

	assert_non_null(buf);
	assert_ret(rmpsc_shm_role(s), role);
	assert_ret(rmpsc_shm_capacity(s), z->cap);
	assert_ret(rmpsc_shm_elem_size(s), z->esz);
	for (uint32_t i = 0; i < nops; i++) {
		const uint64_t x = xs_next(rng);
		const uint32_t n = (uint32_t)((x >> 16) % 21);
		long long r;

		z->op = (int)i;
		/* A hostile peer: one op in eight, write a field of the live
		 * header (not closed = 1 or 2, a close being decided, which may
		 * hold a call up to a second: its own case). */
		if (z->live && (x >> 56) % 8 == 0) {
			const struct hfield *f =
				&hfields[(x >> 20) % (sizeof hfields / sizeof hfields[0])];
			uint64_t val = fuzz_value(rng, z->live, f);

			if (f->off == offsetof(rmpsc_shm_header, closed) && (val == 1 || val == 2))
				val = 3;
			hfield_set(z->live, f, val);
			z->live_writes++;
		}
		switch ((x >> 8) % 10) {
		case 0:
			r = rmpsc_shm_len(s);
			fuzz_ret(z, "len", r, 0, z->cap, eproto_only);
			continue;
		case 1:
			r = rmpsc_shm_is_closed(s);
			fuzz_ret(z, "is_closed", r, 0, 1, eproto_only);
			continue;
		case 2:
			if ((x >> 40) % 8 == 0) {
				r = rmpsc_shm_close(s);
				fuzz_ret(z, "close", r, 0, 0, eproto_only);
			} else {
				r = rmpsc_shm_peer(s, (x >> 41) % 2 ? -1 : 1000);
				if (r < RMPSC_SHM_PEER_NONE || r > RMPSC_SHM_PEER_GONE) {
					print_error("seed %#" PRIx64 " iteration %" PRIu64
						    ": peer = %lld\n", z->seed, z->iter, r);
					fail();
				}
				assert_ret(rmpsc_shm_heartbeat(s), 0);
			}
			continue;
		default:
			break;
		}
		if (role == RMPSC_SHM_CONSUMER) {
			switch ((x >> 8) % 10) {
			case 3:
				r = rmpsc_shm_pop(s, buf);
				fuzz_ret(z, "pop", r, 0, 0, cons_try_codes);
				break;
			case 4:
				r = rmpsc_shm_pop_n(s, buf, n);
				fuzz_ret(z, "pop_n", r, n ? 1 : 0, n, cons_try_codes);
				break;
			case 5:
			case 6:
				r = rmpsc_shm_readable(s, n, &sp);
				fuzz_ret(z, "readable", r, n ? 1 : 0, n, cons_try_codes);
				fuzz_span(z, &sp, (int)r, false);
				r = rmpsc_shm_advance(s, r > 0 ? (uint32_t)r - (uint32_t)(x >> 60) % 2
							     : (uint32_t)(x >> 60) % 2);
				fuzz_ret(z, "advance", r, 0, 0, advance_codes);
				break;
			case 7:
				r = rmpsc_shm_advance(s, n);
				fuzz_ret(z, "advance", r, 0, 0, advance_codes);
				break;
			case 8:
				r = rmpsc_shm_pop_timed(s, buf, 0, NULL);
				fuzz_ret(z, "pop_timed", r, 0, 0, cons_timed_codes);
				break;
			default:
				r = rmpsc_shm_readable_timed(s, n, &sp, 0, NULL);
				fuzz_ret(z, "readable_timed", r, n ? 1 : 0, n, cons_timed_codes);
				fuzz_span(z, &sp, (int)r, false);
				break;
			}
		} else {
			memset(buf, 0x5a, (size_t)z->esz * 20);
			switch ((x >> 8) % 10) {
			case 3:
				r = rmpsc_shm_push(s, buf);
				fuzz_ret(z, "push", r, 0, 0, prod_try_codes);
				break;
			case 4:
				r = rmpsc_shm_push_n(s, buf, n);
				fuzz_ret(z, "push_n", r, n ? 1 : 0, n, prod_try_codes);
				break;
			case 5:
			case 6:
				r = rmpsc_shm_reserve(s, n, &sp);
				fuzz_ret(z, "reserve", r, n ? 1 : 0, n, prod_try_codes);
				fuzz_span(z, &sp, (int)r, true);
				r = rmpsc_shm_commit(s, r > 0 ? (uint32_t)r - (uint32_t)(x >> 60) % 2
							    : (uint32_t)(x >> 60) % 2);
				fuzz_ret(z, "commit", r, 0, 0, commit_codes);
				break;
			case 7:
				r = rmpsc_shm_commit(s, n);
				fuzz_ret(z, "commit", r, 0, 0, commit_codes);
				break;
			case 8:
				r = rmpsc_shm_push_timed(s, buf, 0, NULL);
				fuzz_ret(z, "push_timed", r, 0, 0, prod_timed_codes);
				break;
			default:
				r = rmpsc_shm_reserve_timed(s, n, &sp, 0, NULL);
				fuzz_ret(z, "reserve_timed", r, n ? 1 : 0, n, prod_timed_codes);
				fuzz_span(z, &sp, (int)r, true);
				break;
			}
		}
	}
	free(buf);
}

/* Seeded (RMPSC_STRESS_SEED overrides), reproducible: iteration i of seed
 * S damages with the generator seeded from S and i alone. */
static void test_shm_attach_when_header_randomly_damaged_returns_documented_codes(void **state)
{
	const uint64_t iters = STRESS_SCALE(12000, 10000, 10000);
	struct image base[3];
	unsigned char *b;
	struct fuzz_run z;
	const int before = fd_count();
	const int64_t t0 = now_ns();

	(void)state;
	memset(&z, 0, sizeof z);
	z.seed = stress_seed();
	base[0] = image_make(16, 8);
	base[1] = image_make(64, 24);
	base[2] = image_make(16, 8);
	{
		rmpsc_shm_header *h = (rmpsc_shm_header *)(void *)base[2].b;

		h->closed = 3;
		h->final_tail = h->tail;
		h->producer.state = RMPSC_SHM_SIDE_DETACHED;
		h->producer.pid = (int32_t)getpid();
	}
	b = malloc(base[1].len > base[0].len ? base[1].len : base[0].len);
	assert_non_null(b);
	for (z.iter = 0; z.iter < iters; z.iter++) {
		uint64_t rng = (z.seed ^ (z.iter * 0x9e3779b97f4a7c15ull)) | 1;
		const struct image *im = &base[xs_next(&rng) % 3];
		const uint32_t role = xs_next(&rng) % 2 ? RMPSC_SHM_PRODUCER : RMPSC_SHM_CONSUMER;
		rmpsc_shm_config c = shm_cfg(role, 0, 0, 0);
		rmpsc_shm *s = SHM_SENTINEL;
		int fd, r;

		memcpy(b, im->b, im->len);
		fuzz_damage(&rng, b);
		fd = memfd_image(b, im->len, im->len, SEAL_ALL);
		r = rmpsc_shm_attach(fd, &c, &s);
		z.broken = false;
		switch (r) {
		case 0:
			z.attach_rc[0]++;
			break;
		case -EPROTO:
			z.attach_rc[1]++;
			break;
		case -EBUSY:
			z.attach_rc[2]++;
			break;
		case -ENOMEM:
			z.attach_rc[3]++;
			break;
		case -EOPNOTSUPP:
			z.attach_rc[4]++;
			break;
		default:
			print_error("seed %#" PRIx64 " iteration %" PRIu64 ": attach = %d (%s)\n",
				    z.seed, z.iter, r, errname(r));
			fail();
		}
		if (r == 0) {
			const rmpsc_shm_header *h = (const void *)b;

			size_t mlen = 0;

			assert_handle(s, SHM_SENTINEL);
			z.cap = h->capacity;
			z.esz = h->elem_size;
			z.slot0 = NULL;
			z.live = xs_next(&rng) % 2 ? (unsigned char *)hdr_map(fd, &mlen) : NULL;
			fuzz_ops(&z, s, role, &rng);
			rmpsc_shm_destroy(s);
			if (z.live)
				munmap(z.live, mlen);
		} else if (s != NULL) {
			print_error("iteration %" PRIu64 ": *out not NULL on error\n", z.iter);
			fail();
		}
		close(fd);
	}
	print_message("fuzz: seed %#" PRIx64 ", %" PRIu64 " damaged headers: %lu attached, "
		      "%lu -EPROTO, %lu -EBUSY, %lu -ENOMEM, %lu -EOPNOTSUPP; %lu ops (%lu "
		      "-EPROTO), %lu live writes, in %.1f s\n",
		      z.seed, iters, z.attach_rc[0], z.attach_rc[1], z.attach_rc[2],
		      z.attach_rc[3], z.attach_rc[4], z.ops, z.eproto_ops, z.live_writes,
		      (double)(now_ns() - t0) / 1e9);
	assert_true(z.attach_rc[0] > 0);
	assert_true(z.attach_rc[1] > 0);
	assert_true(z.eproto_ops > 0);
	assert_int_equal(fd_count(), before);
	free(b);
	for (int i = 0; i < 3; i++)
		free(base[i].b);
}

/* ---- 7. the broken latch ------------------------------------------------- */

static void watchdog_on(void)
{
	alarm(60);
}

static void watchdog_off(void)
{
	alarm(0);
}

/* Every consumer call (data and status) returns -EPROTO, at once. */
static void consumer_all_eproto(rmpsc_shm *c)
{
	uint64_t *item = malloc(sizeof *item); /* exactly one element: ASan */
	uint64_t items[4];
	rmpsc_span sp, keep;

	assert_non_null(item);
	memset(&sp, 0x77, sizeof sp);
	keep = sp;
	assert_ret(rmpsc_shm_pop(c, item), -EPROTO);
	assert_ret(rmpsc_shm_pop_n(c, items, 4), -EPROTO);
	assert_ret(rmpsc_shm_readable(c, 4, &sp), -EPROTO);
	assert_memory_equal(&sp, &keep, sizeof sp);
	assert_ret(rmpsc_shm_advance(c, 1), -EPROTO);
	assert_ret(rmpsc_shm_pop_timed(c, item, 0, NULL), -EPROTO);
	assert_ret(rmpsc_shm_pop_timed(c, item, MS, NULL), -EPROTO);
	assert_ret(rmpsc_shm_pop_timed(c, item, -1, NULL), -EPROTO);
	assert_ret(rmpsc_shm_pop_n_timed(c, items, 4, -1, NULL), -EPROTO);
	assert_ret(rmpsc_shm_readable_timed(c, 4, &sp, -1, NULL), -EPROTO);
	assert_memory_equal(&sp, &keep, sizeof sp);
	assert_ret(rmpsc_shm_len(c), -EPROTO);
	assert_ret(rmpsc_shm_is_closed(c), -EPROTO);
	assert_ret(rmpsc_shm_close(c), -EPROTO);
	/* n == 0 too: every call. */
	assert_ret(rmpsc_shm_pop_n(c, items, 0), -EPROTO);
	assert_ret(rmpsc_shm_readable(c, 0, &sp), -EPROTO);
	assert_ret(rmpsc_shm_advance(c, 0), -EPROTO);
	/* The identity calls still answer. */
	assert_ret(rmpsc_shm_role(c), RMPSC_SHM_CONSUMER);
	assert_ret(rmpsc_shm_heartbeat(c), 0);
	free(item);
}

static void producer_all_eproto(rmpsc_shm *p)
{
	uint64_t items[4] = { 1, 2, 3, 4 };
	rmpsc_span sp, keep;

	memset(&sp, 0x77, sizeof sp);
	keep = sp;
	assert_ret(rmpsc_shm_push(p, items), -EPROTO);
	assert_ret(rmpsc_shm_push_n(p, items, 4), -EPROTO);
	assert_ret(rmpsc_shm_reserve(p, 1, &sp), -EPROTO);
	assert_memory_equal(&sp, &keep, sizeof sp);
	assert_ret(rmpsc_shm_commit(p, 1), -EPROTO);
	assert_ret(rmpsc_shm_push_timed(p, items, 0, NULL), -EPROTO);
	assert_ret(rmpsc_shm_push_timed(p, items, MS, NULL), -EPROTO);
	assert_ret(rmpsc_shm_push_timed(p, items, -1, NULL), -EPROTO);
	assert_ret(rmpsc_shm_push_n_timed(p, items, 4, -1, NULL), -EPROTO);
	assert_ret(rmpsc_shm_reserve_timed(p, 1, &sp, -1, NULL), -EPROTO);
	assert_memory_equal(&sp, &keep, sizeof sp);
	assert_ret(rmpsc_shm_len(p), -EPROTO);
	assert_ret(rmpsc_shm_is_closed(p), -EPROTO);
	assert_ret(rmpsc_shm_close(p), -EPROTO);
	assert_ret(rmpsc_shm_push_n(p, items, 0), -EPROTO);
	assert_ret(rmpsc_shm_reserve(p, 0, &sp), -EPROTO);
	assert_ret(rmpsc_shm_commit(p, 0), -EPROTO);
	assert_ret(rmpsc_shm_role(p), RMPSC_SHM_PRODUCER);
	assert_ret(rmpsc_shm_heartbeat(p), 0);
}

/* Pop until the first -EPROTO; before it only whole elements, in order
 * (those cached before the damage). It must come within cap + 1 calls. */
static void consumer_until_eproto(rmpsc_shm *c, uint32_t cap, uint64_t next)
{
	for (uint32_t i = 0; i <= cap + 1; i++) {
		uint64_t *item = malloc(sizeof *item);
		int r;

		assert_non_null(item);
		r = rmpsc_shm_pop(c, item);
		if (r == 0) {
			assert_int_equal(*item, next);
			next++;
		}
		free(item);
		if (r == -EPROTO)
			return;
		if (r != 0) {
			print_error("pop = %d (%s) before -EPROTO\n", r, errname(r));
			fail();
		}
	}
	print_error("no -EPROTO within %u pops\n", cap + 2);
	fail();
}

static void producer_until_eproto(rmpsc_shm *p, uint32_t cap)
{
	for (uint32_t i = 0; i <= cap + 1; i++) {
		const uint64_t v = 1000 + i;
		const int r = rmpsc_shm_push(p, &v);

		if (r == -EPROTO)
			return;
		if (r != 0) {
			print_error("push = %d (%s) before -EPROTO\n", r, errname(r));
			fail();
		}
	}
	print_error("no -EPROTO within %u pushes\n", cap + 2);
	fail();
}

enum latch_kind {
	LATCH_TAIL_BEYOND,     /* tail = head + capacity + 5 */
	LATCH_TAIL_BEHIND,     /* tail below head */
	LATCH_HEAD_BEYOND,     /* head beyond tail */
	LATCH_HEAD_FAR_BEHIND, /* tail - head > capacity */
	LATCH_CLOSED_9_CONS,   /* closed = 9, seen by the consumer */
	LATCH_CLOSED_9_PROD,   /* closed = 9, seen by the producer */
	LATCH_FINAL_TAIL_BAD,  /* closed = 3 with final_tail out of range */
};

static void test_shm_calls_when_peer_writes_bad_index_or_state_latch_eproto(void **state)
{
	const enum latch_kind k = (enum latch_kind)test_param(state);
	const uint32_t cap = 8;
	rmpsc_shm *p, *c;
	rmpsc_shm_header *h;
	size_t len;
	uint64_t head, tail;

	watchdog_on();
	shm_pair(k % 2 ? RMPSC_SHM_CONSUMER : RMPSC_SHM_PRODUCER, cap, 8, 0, &p, &c);
	h = hdr_map(rmpsc_shm_fd(p), &len);
	/* Positions 11 .. 14 in the ring (head 11, tail 14): across a wrap. */
	for (uint64_t i = 0; i < 11; i++) {
		push_u64(p, i);
		pop_u64(c, i);
	}
	push_u64(p, 11);
	push_u64(p, 12);
	push_u64(p, 13);
	head = HLOAD(&h->head);
	tail = HLOAD(&h->tail);
	assert_int_equal(head, 11);
	assert_int_equal(tail, 14);
	switch (k) {
	case LATCH_TAIL_BEYOND:
		HSTORE(&h->tail, head + cap + 5);
		consumer_until_eproto(c, cap, 11);
		consumer_all_eproto(c);
		HSTORE(&h->tail, tail); /* repaired: still broken */
		consumer_all_eproto(c);
		break;
	case LATCH_TAIL_BEHIND:
		HSTORE(&h->tail, head - 3);
		consumer_until_eproto(c, cap, 11);
		HSTORE(&h->tail, tail);
		consumer_all_eproto(c);
		break;
	case LATCH_HEAD_BEYOND:
		/* Full first, so that the next push must read head. */
		push_seq_u64(p, 14, cap - 3);
		tail = HLOAD(&h->tail);
		HSTORE(&h->head, tail + 1);
		producer_until_eproto(p, cap);
		producer_all_eproto(p);
		HSTORE(&h->head, head);
		producer_all_eproto(p);
		break;
	case LATCH_HEAD_FAR_BEHIND:
		push_seq_u64(p, 14, cap - 3);
		tail = HLOAD(&h->tail);
		HSTORE(&h->head, tail - cap - 3);
		producer_until_eproto(p, cap);
		HSTORE(&h->head, head);
		producer_all_eproto(p);
		break;
	case LATCH_CLOSED_9_CONS:
		HSTORE(&h->closed, 9u);
		consumer_until_eproto(c, cap, 11);
		HSTORE(&h->closed, 0u);
		consumer_all_eproto(c);
		break;
	case LATCH_CLOSED_9_PROD:
		HSTORE(&h->closed, 9u);
		producer_until_eproto(p, cap);
		HSTORE(&h->closed, 0u);
		producer_all_eproto(p);
		break;
	case LATCH_FINAL_TAIL_BAD:
		HSTORE(&h->final_tail, tail + cap + 7);
		HSTORE(&h->closed, 3u);
		consumer_until_eproto(c, cap, 11);
		HSTORE(&h->closed, 0u);
		HSTORE(&h->final_tail, 0ull);
		consumer_all_eproto(c);
		break;
	}
	/* Nothing around the ring was touched: the header's identity is as
	 * created. */
	assert_int_equal(h->magic, RMPSC_SHM_MAGIC);
	assert_int_equal(h->capacity, cap);
	assert_int_equal(h->elem_size, 8);
	rmpsc_shm_destroy(c);
	rmpsc_shm_destroy(p);
	munmap(h, len);
	watchdog_off();
}

/* ---- 8. seals --------------------------------------------------------------- */

static void test_shm_memfd_when_resized_or_resealed_refuses(void **state)
{
	rmpsc_shm *p, *c;

	(void)state;
	shm_pair(RMPSC_SHM_PRODUCER, 64, 24, 0, &p, &c);
	for (int i = 0; i < 2; i++) {
		const int fd = rmpsc_shm_fd(i ? c : p);
		struct stat st;
		const int seals = fcntl(fd, F_GET_SEALS);
		char z = 0;

		assert_true(seals >= 0);
		assert_int_equal(seals & SEAL_ALL, SEAL_ALL);
		assert_int_equal(fstat(fd, &st), 0);
		assert_true(S_ISREG(st.st_mode));
		assert_int_equal(st.st_size % sysconf(_SC_PAGESIZE), 0);
		assert_true(st.st_size >= RMPSC_SHM_HEADER_SIZE + 64 * 24);
		errno = 0;
		assert_int_equal(ftruncate(fd, st.st_size - 1), -1);
		assert_int_equal(errno, EPERM);
		errno = 0;
		assert_int_equal(ftruncate(fd, 0), -1);
		assert_int_equal(errno, EPERM);
		errno = 0;
		assert_int_equal(ftruncate(fd, st.st_size + 4096), -1);
		assert_int_equal(errno, EPERM);
		errno = 0;
		assert_int_equal(pwrite(fd, &z, 1, st.st_size), -1);
		assert_int_equal(errno, EPERM);
		errno = 0;
		assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), -1);
		assert_int_equal(errno, EPERM);
		errno = 0;
		assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK), -1);
		assert_int_equal(errno, EPERM);
		{
			const off_t was = st.st_size;

			assert_int_equal(fstat(fd, &st), 0);
			assert_int_equal(st.st_size, was);
		}
	}
	/* Still a working ring. */
	push_seq(p, 24, 0, 64);
	pop_seq(c, 24, 0, 64);
	rmpsc_shm_destroy(c);
	rmpsc_shm_destroy(p);
}

/* ---- 9. close --------------------------------------------------------------- */

/* A close from either side: no publication after it; the consumer gets
 * everything committed before it, then -EPIPE, for good. */
static void test_shm_close_when_either_side_closes_drains_then_epipe(void **state)
{
	const uint32_t closer = (uint32_t)test_param(state);
	rmpsc_shm *p, *c;
	rmpsc_span sp;
	uint64_t v = 0, items[8];

	shm_pair(RMPSC_SHM_PRODUCER, 8, 8, 0, &p, &c);
	push_seq_u64(p, 100, 5);
	/* A reservation not committed before the close is dropped. */
	assert_ret(rmpsc_shm_reserve(p, 2, &sp), 2);
	span_put_u64(&sp, 0, 666);
	span_put_u64(&sp, 1, 667);
	assert_ret(rmpsc_shm_close(closer == RMPSC_SHM_PRODUCER ? p : c), 0);
	assert_ret(rmpsc_shm_close(p), 0); /* again: 0 */
	assert_ret(rmpsc_shm_close(c), 0);
	assert_ret(rmpsc_shm_is_closed(p), 1);
	assert_ret(rmpsc_shm_is_closed(c), 1);
	assert_ret(rmpsc_shm_commit(p, 2), -EPIPE);
	assert_ret(rmpsc_shm_commit(p, 0), -EPIPE);
	assert_ret(rmpsc_shm_push(p, &v), -EPIPE);
	assert_ret(rmpsc_shm_push_n(p, items, 3), -EPIPE);
	assert_ret(rmpsc_shm_push_n(p, items, 0), -EPIPE);
	assert_ret(rmpsc_shm_reserve(p, 1, &sp), -EPIPE);
	assert_ret(rmpsc_shm_reserve(p, 0, &sp), -EPIPE);
	assert_ret(rmpsc_shm_push_timed(p, &v, -1, NULL), -EPIPE);
	assert_ret(rmpsc_shm_push_n_timed(p, items, 2, -1, NULL), -EPIPE);
	assert_ret(rmpsc_shm_reserve_timed(p, 1, &sp, -1, NULL), -EPIPE);
	assert_ret(rmpsc_shm_len(c), 5);
	assert_ret(rmpsc_shm_len(p), 5);
	/* The consumer drains with every call, then -EPIPE. */
	pop_u64(c, 100);
	assert_ret(rmpsc_shm_pop_n(c, items, 2), 2);
	vals_expect(items, 101, 2);
	assert_ret(rmpsc_shm_readable(c, 1, &sp), 1);
	assert_int_equal(span_get_u64(&sp, 0), 103);
	assert_ret(rmpsc_shm_advance(c, 1), 0);
	assert_ret(rmpsc_shm_pop_timed(c, &v, -1, NULL), 0);
	assert_int_equal(v, 104);
	assert_ret(rmpsc_shm_len(c), 0);
	for (int i = 0; i < 3; i++) {
		assert_ret(rmpsc_shm_pop(c, &v), -EPIPE);
		assert_ret(rmpsc_shm_pop_n(c, items, 4), -EPIPE);
		assert_ret(rmpsc_shm_readable(c, 4, &sp), -EPIPE);
		assert_ret(rmpsc_shm_pop_timed(c, &v, 0, NULL), -EPIPE);
		assert_ret(rmpsc_shm_pop_timed(c, &v, -1, NULL), -EPIPE);
		assert_ret(rmpsc_shm_pop_n_timed(c, items, 4, -1, NULL), -EPIPE);
		assert_ret(rmpsc_shm_readable_timed(c, 4, &sp, -1, NULL), -EPIPE);
	}
	rmpsc_shm_destroy(p);
	rmpsc_shm_destroy(c);
}

/* A thread blocked in a timed call, and the handle that wakes it. */
struct blocked {
	rmpsc_shm *s;
	int kind; /* 0 pop_timed, 1 push_timed, 2 readable_timed, 3 reserve_timed,
		   * 4 pop_n_timed, 5 push_n_timed */
	int64_t timeout;
	const rmpsc_wait *w;
	atomic_int started;
	int rc;
	uint64_t got[64];
	int ngot;
	bool drain; /* pop until an error, recording the values */
};

static void *blocked_main(void *arg)
{
	struct blocked *b = arg;
	uint64_t v[4] = { 7, 7, 7, 7 };
	rmpsc_span sp;

	atomic_store_explicit(&b->started, 1, memory_order_release);
	for (;;) {
		switch (b->kind) {
		case 0:
			b->rc = rmpsc_shm_pop_timed(b->s, v, b->timeout, b->w);
			break;
		case 1:
			b->rc = rmpsc_shm_push_timed(b->s, v, b->timeout, b->w);
			break;
		case 2:
			b->rc = rmpsc_shm_readable_timed(b->s, 4, &sp, b->timeout, b->w);
			if (b->rc > 0) {
				v[0] = span_get_u64(&sp, 0);
				b->rc = rmpsc_shm_advance(b->s, 1);
			}
			break;
		case 3:
			b->rc = rmpsc_shm_reserve_timed(b->s, 4, &sp, b->timeout, b->w);
			break;
		case 4:
			b->rc = rmpsc_shm_pop_n_timed(b->s, v, 1, b->timeout, b->w);
			if (b->rc == 1)
				b->rc = 0;
			break;
		default:
			b->rc = rmpsc_shm_push_n_timed(b->s, v, 4, b->timeout, b->w);
			break;
		}
		if (!b->drain || b->rc != 0 || b->ngot == 64)
			break;
		b->got[b->ngot++] = v[0];
	}
	return NULL;
}

static pthread_t blocked_start(struct blocked *b)
{
	pthread_t t;

	atomic_store_explicit(&b->started, 0, memory_order_relaxed);
	assert_int_equal(pthread_create(&t, NULL, blocked_main, b), 0);
	while (!atomic_load_explicit(&b->started, memory_order_acquire))
		sched_yield();
	sleep_ns(20 * MS); /* likely asleep by now; correct either way */
	return t;
}

/* Timed calls blocked in another thread wake when the ring is closed,
 * whichever side (or the blocked handle itself) closes it. */
static void test_shm_close_when_timed_calls_blocked_wakes_them(void **state)
{
	(void)state;
	watchdog_on();
	for (int kind = 0; kind < 6; kind++) {
		for (int who = 0; who < 2; who++) {
			const bool cons = kind % 2 == 0;
			rmpsc_shm *p, *c;
			struct blocked b = { .kind = kind, .timeout = -1 };
			pthread_t t;

			shm_pair(who ? RMPSC_SHM_CONSUMER : RMPSC_SHM_PRODUCER, 4, 8, 0, &p, &c);
			if (!cons)
				push_seq_u64(p, 0, 4); /* full */
			b.s = cons ? c : p;
			t = blocked_start(&b);
			/* who 0: the other side closes; 1: the same handle. */
			assert_ret(rmpsc_shm_close(who ? b.s : (cons ? p : c)), 0);
			assert_int_equal(pthread_join(t, NULL), 0);
			if (b.rc != -EPIPE) {
				print_error("kind %d closer %d: %d (%s), want -EPIPE\n", kind, who,
					    b.rc, errname(b.rc));
				fail();
			}
			if (!cons)
				pop_seq_u64_all(c, 0, 4);
			rmpsc_shm_destroy(p);
			rmpsc_shm_destroy(c);
		}
	}
	watchdog_off();
}

/* A close the peer left half done (closed 1, closing, or 2, deciding the
 * end, and nobody finishing it): a close here decides it, in bounded
 * time; the consumer still gets everything committed, then -EPIPE. (The
 * peer that dies half way: test_shm_peer_when_forked_producer_killed_*;
 * the consumer that does not close: the case after this one.) */
static void test_shm_close_when_peer_left_close_half_done_decides_it(void **state)
{
	(void)state;
	watchdog_on();
	for (uint32_t st = 1; st <= 2; st++) {
		for (int how = 0; how < 2; how++) {
			rmpsc_shm *p, *c;
			rmpsc_shm_header *h;
			size_t len;
			uint64_t v;
			int64_t t0;
			int r;

			shm_pair(RMPSC_SHM_PRODUCER, 8, 8, 0, &p, &c);
			h = hdr_map(rmpsc_shm_fd(c), &len);
			push_seq_u64(p, 20, 3);
			HSTORE(&h->closed, st);
			t0 = now_ns();
			assert_ret(rmpsc_shm_close(how ? c : p), 0);
			pop_seq_u64_all(c, 20, 3);
			r = rmpsc_shm_pop(c, &v);
			if (r != -EPIPE) {
				print_error("closed %u, %s closed: pop after the drain = %d (%s)\n",
					    st, how ? "consumer" : "producer", r, errname(r));
				fail();
			}
			assert_ret(rmpsc_shm_is_closed(c), 1);
			assert_ret(rmpsc_shm_is_closed(p), 1);
			assert_ret(rmpsc_shm_push(p, &v), -EPIPE);
			assert_ret(rmpsc_shm_pop_timed(c, &v, -1, NULL), -EPIPE);
			print_message("closed %u, case %d: decided in %.3f s\n", st, how,
				      (double)(now_ns() - t0) / 1e9);
			rmpsc_shm_destroy(c);
			rmpsc_shm_destroy(p);
			munmap(h, len);
		}
	}
	watchdog_off();
}

/*
 * The same half-done close, the peer alive but never finishing it (a
 * stopped process, a hostile one), and the consumer only popping: "no
 * wait on the peer is unbounded", and what was committed before the close
 * is delivered. A blocking pop must then deliver the three elements; the
 * header bounds such a wait by a second, the ten seconds allowed here are
 * slack for a loaded machine, not a measure. What ends the stream after
 * them is not pinned (-EPIPE, or -ECONNRESET for a peer judged gone).
 */
static void test_shm_consumer_when_live_peer_left_close_half_done_still_delivers(void **state)
{
	const uint32_t st = (uint32_t)test_param(state);
	rmpsc_shm *p, *c;
	rmpsc_shm_header *h;
	size_t len;
	uint64_t v = ~0ull;
	int r;

	shm_pair(RMPSC_SHM_PRODUCER, 8, 8, 0, &p, &c);
	h = hdr_map(rmpsc_shm_fd(c), &len);
	push_seq_u64(p, 20, 3);
	HSTORE(&h->closed, st);
	for (uint64_t i = 0; i < 3; i++) {
		r = rmpsc_shm_pop_timed(c, &v, 10000 * MS, NULL);
		if (r != 0 || v != 20 + i) {
			print_error("closed %u left by a live peer: element %" PRIu64
				    ": pop_timed = %d (%s), v %" PRIu64 " (len %lld)\n",
				    st, i, r, errname(r), v, (long long)rmpsc_shm_len(c));
			fail();
		}
	}
	r = rmpsc_shm_pop_timed(c, &v, 10000 * MS, NULL);
	assert_true(r == -EPIPE || r == -ECONNRESET);
	rmpsc_shm_destroy(c);
	rmpsc_shm_destroy(p);
	munmap(h, len);
}

/* ---- 10. timed calls ------------------------------------------------------ */

static void test_shm_timed_when_empty_or_full_times_out(void **state)
{
	rmpsc_shm *p, *c;
	rmpsc_span sp;
	uint64_t v = 1, items[16] = { 0 };
	rmpsc_wait w;

	(void)state;
	watchdog_on();
	shm_pair(RMPSC_SHM_CONSUMER, 8, 8, 0, &p, &c);
	/* Empty. */
	assert_ret(rmpsc_shm_pop_timed(c, &v, 0, NULL), -ETIMEDOUT);
	assert_ret(rmpsc_shm_pop_timed(c, &v, MS, NULL), -ETIMEDOUT);
	assert_ret(rmpsc_shm_pop_n_timed(c, items, 4, 0, NULL), -ETIMEDOUT);
	assert_ret(rmpsc_shm_pop_n_timed(c, items, 4, 2 * MS, NULL), -ETIMEDOUT);
	assert_ret(rmpsc_shm_readable_timed(c, 4, &sp, 0, NULL), -ETIMEDOUT);
	assert_ret(rmpsc_shm_readable_timed(c, 4, &sp, MS, NULL), -ETIMEDOUT);
	assert_ret(rmpsc_shm_pop_n_timed(c, items, 0, -1, NULL), 0);
	assert_ret(rmpsc_shm_readable_timed(c, 0, &sp, -1, NULL), 0);
	assert_ret(rmpsc_shm_pop_timed(c, NULL, 0, NULL), -EINVAL);
	assert_ret(rmpsc_shm_pop_n_timed(c, NULL, 1, 0, NULL), -EINVAL);
	assert_ret(rmpsc_shm_readable_timed(c, 1, NULL, 0, NULL), -EINVAL);
	/* Every strategy times out alike. */
	for (uint32_t k = 0; k <= RMPSC_WAIT_KIND_MAX; k++) {
		w = wait_make(k, 16, 2, 20000, 100000);
		assert_ret(rmpsc_shm_pop_timed(c, &v, MS, &w), -ETIMEDOUT);
		assert_ret(rmpsc_shm_pop_timed(c, &v, 0, &w), -ETIMEDOUT);
	}
	/* DEADLINE: its own bound ends even a wait without a limit. */
	w = wait_make(RMPSC_WAIT_DEADLINE, 4, 1, 0, MS);
	assert_ret(rmpsc_shm_pop_timed(c, &v, -1, &w), -ETIMEDOUT);
	assert_ret(rmpsc_shm_readable_timed(c, 2, &sp, -1, &w), -ETIMEDOUT);
	/* A bad strategy: -EINVAL / -E2BIG. */
	assert_int_equal(rmpsc_wait_init(&w, sizeof w, RMPSC_WAIT_BLOCK), 0);
	w.kind = 77;
	assert_ret(rmpsc_shm_pop_timed(c, &v, MS, &w), -EINVAL);
	assert_ret(rmpsc_shm_push_timed(p, &v, MS, &w), -EINVAL);
	{
		unsigned char big[4200] = { 0 };
		rmpsc_wait *bw = (rmpsc_wait *)(void *)big;

		assert_int_equal(rmpsc_wait_init(bw, sizeof *bw, RMPSC_WAIT_BLOCK), 0);
		bw->size = 4104;
		assert_ret(rmpsc_shm_pop_timed(c, &v, MS, bw), -E2BIG);
		bw->size = 64;
		big[48] = 1;
		assert_ret(rmpsc_shm_pop_timed(c, &v, MS, bw), -E2BIG);
	}
	/* Full. */
	push_seq_u64(p, 0, 5);
	assert_ret(rmpsc_shm_push_n_timed(p, items, 8, MS, NULL), 3); /* partial */
	assert_ret(rmpsc_shm_push_timed(p, &v, 0, NULL), -ETIMEDOUT);
	assert_ret(rmpsc_shm_push_timed(p, &v, MS, NULL), -ETIMEDOUT);
	assert_ret(rmpsc_shm_push_n_timed(p, items, 2, 0, NULL), -ETIMEDOUT);
	assert_ret(rmpsc_shm_push_n_timed(p, items, 2, MS, NULL), -ETIMEDOUT);
	assert_ret(rmpsc_shm_reserve_timed(p, 1, &sp, 0, NULL), -ETIMEDOUT);
	assert_ret(rmpsc_shm_reserve_timed(p, 1, &sp, MS, NULL), -ETIMEDOUT);
	assert_ret(rmpsc_shm_reserve_timed(p, 0, &sp, -1, NULL), 0);
	assert_ret(rmpsc_shm_push_n_timed(p, items, 0, -1, NULL), 0);
	assert_ret(rmpsc_shm_push_timed(p, NULL, 0, NULL), -EINVAL);
	assert_ret(rmpsc_shm_push_n_timed(p, NULL, 1, 0, NULL), -EINVAL);
	assert_ret(rmpsc_shm_reserve_timed(p, 1, NULL, 0, NULL), -EINVAL);
	for (uint32_t k = 0; k <= RMPSC_WAIT_KIND_MAX; k++) {
		w = wait_make(k, 16, 2, 20000, 100000);
		assert_ret(rmpsc_shm_push_timed(p, &v, MS, &w), -ETIMEDOUT);
	}
	w = wait_make(RMPSC_WAIT_DEADLINE, 4, 1, 0, MS);
	assert_ret(rmpsc_shm_push_timed(p, &v, -1, &w), -ETIMEDOUT);
	/* What timed out pushed nothing: exactly 0..4 and 3 zeros. */
	pop_seq_u64_all(c, 0, 5);
	for (int i = 0; i < 3; i++)
		pop_u64(c, 0);
	assert_ret(rmpsc_shm_pop(c, &v), -EAGAIN);
	rmpsc_shm_destroy(p);
	rmpsc_shm_destroy(c);
	watchdog_off();
}

/* A consumer blocked with no limit wakes when the producer pushes (two
 * handles, one process), for each call kind. */
static void test_shm_timed_when_consumer_blocked_wakes_on_push(void **state)
{
	(void)state;
	watchdog_on();
	for (int kind = 0; kind < 6; kind += 2) {
		for (uint32_t wk = 0; wk <= RMPSC_WAIT_KIND_MAX + 1; wk++) {
			rmpsc_shm *p, *c;
			rmpsc_wait w;
			struct blocked b = { .kind = kind, .timeout = -1 };
			pthread_t t;

			if (wk <= RMPSC_WAIT_KIND_MAX) {
				/* DEADLINE: its own bound, far off. */
				w = wait_make(wk, 8, 1, 100000, 30000 * MS);
				b.w = &w;
			}
			shm_pair(RMPSC_SHM_PRODUCER, 4, 8, wk % 2 ? RMPSC_SHM_F_FENCE : 0, &p, &c);
			b.s = c;
			t = blocked_start(&b);
			push_u64(p, 4242);
			assert_int_equal(pthread_join(t, NULL), 0);
			assert_ret(b.rc, 0);
			assert_ret(rmpsc_shm_len(c), 0);
			/* ... and a producer blocked on a full ring wakes on a pop. */
			push_seq_u64(p, 0, 4);
			b.s = p;
			b.kind = kind + 1;
			t = blocked_start(&b);
			pop_u64(c, 0);
			assert_int_equal(pthread_join(t, NULL), 0);
			if (b.rc < 0) {
				print_error("producer kind %d wait %u: %d (%s)\n", b.kind, wk, b.rc,
					    errname(b.rc));
				fail();
			}
			rmpsc_shm_destroy(p);
			rmpsc_shm_destroy(c);
		}
	}
	watchdog_off();
}

struct pingpong {
	rmpsc_shm *p, *c;
	const rmpsc_wait *w;
	uint64_t n;
	int prc, crc;
	uint64_t bad_at, bad_val;
};

static void *pp_producer(void *arg)
{
	struct pingpong *pp = arg;
	uint64_t batch[3];

	for (uint64_t i = 0; i < pp->n;) {
		if (i % 5 == 4 && i + 3 <= pp->n) {
			int r;

			for (int j = 0; j < 3; j++)
				batch[j] = i + (uint64_t)j;
			r = rmpsc_shm_push_n_timed(pp->p, batch, 3, -1, pp->w);
			if (r != 3) {
				pp->prc = r < 0 ? r : -1000;
				return NULL;
			}
			i += 3;
		} else {
			const int r = rmpsc_shm_push_timed(pp->p, &i, -1, pp->w);

			if (r != 0) {
				pp->prc = r;
				return NULL;
			}
			i++;
		}
	}
	return NULL;
}

static void *pp_consumer(void *arg)
{
	struct pingpong *pp = arg;
	uint64_t want = 0, v[4];

	while (want < pp->n) {
		int r;

		if (want % 7 == 3) {
			r = rmpsc_shm_pop_n_timed(pp->c, v, 4, -1, pp->w);
			if (r < 1) {
				pp->crc = r;
				return NULL;
			}
		} else {
			r = rmpsc_shm_pop_timed(pp->c, v, -1, pp->w);
			if (r != 0) {
				pp->crc = r;
				return NULL;
			}
			r = 1;
		}
		for (int j = 0; j < r; j++, want++) {
			if (v[j] != want && !pp->bad_at) {
				pp->bad_at = want + 1;
				pp->bad_val = v[j];
			}
		}
	}
	return NULL;
}

/* Two threads, a small ring, every wait strategy and both barrier modes:
 * everything arrives in order, nothing is lost or doubled. */
static void test_shm_timed_when_threads_ping_pong_delivers_in_order(void **state)
{
	const uint32_t flags = (uint32_t)test_param(state);

	watchdog_on();
	for (uint32_t wk = 0; wk <= RMPSC_WAIT_KIND_MAX + 1; wk++) {
		rmpsc_wait w;
		struct pingpong pp = { .n = STRESS_SCALE(20000, 5000, 2000) };
		pthread_t tp, tc;

		if (wk <= RMPSC_WAIT_KIND_MAX) {
			w = wait_make(wk, 32, 2, 20000, 30000 * MS);
			pp.w = &w;
		}
		shm_pair(wk % 2 ? RMPSC_SHM_CONSUMER : RMPSC_SHM_PRODUCER, 4, 8, flags, &pp.p,
			 &pp.c);
		assert_int_equal(pthread_create(&tc, NULL, pp_consumer, &pp), 0);
		assert_int_equal(pthread_create(&tp, NULL, pp_producer, &pp), 0);
		assert_int_equal(pthread_join(tp, NULL), 0);
		assert_int_equal(pthread_join(tc, NULL), 0);
		if (pp.prc || pp.crc || pp.bad_at) {
			print_error("wait %s: producer %d (%s), consumer %d (%s), element %" PRIu64
				    " = %" PRIu64 "\n",
				    wk <= RMPSC_WAIT_KIND_MAX ? wait_kind_name(wk) : "NULL", pp.prc,
				    errname(pp.prc), pp.crc, errname(pp.crc),
				    pp.bad_at ? pp.bad_at - 1 : 0, pp.bad_val);
			fail();
		}
		assert_ret(rmpsc_shm_len(pp.c), 0);
		rmpsc_shm_destroy(pp.p);
		rmpsc_shm_destroy(pp.c);
	}
	watchdog_off();
}

/* ---- 11. the peer ---------------------------------------------------------- */

static void test_shm_peer_when_attached_heartbeat_detached_reports_state(void **state)
{
	rmpsc_shm *p, *c;
	const int before = fd_count();

	(void)state;
	p = shm_new(RMPSC_SHM_PRODUCER, 8, 8, 0);
	assert_ret(rmpsc_shm_peer(p, -1), RMPSC_SHM_PEER_NONE);
	assert_ret(rmpsc_shm_peer(p, 0), RMPSC_SHM_PEER_NONE);
	assert_ret(rmpsc_shm_peer(p, INT64_MAX), RMPSC_SHM_PEER_NONE);
	c = shm_att(rmpsc_shm_fd(p), RMPSC_SHM_CONSUMER);
	assert_ret(rmpsc_shm_peer(p, -1), RMPSC_SHM_PEER_ALIVE);
	assert_ret(rmpsc_shm_peer(c, -1), RMPSC_SHM_PEER_ALIVE);
	/* Heartbeats: 2 ms without one is older than 1 us (STALE); a fresh
	 * one is younger than an hour (ALIVE). */
	sleep_ns(2 * MS);
	assert_ret(rmpsc_shm_peer(p, 1000), RMPSC_SHM_PEER_STALE);
	assert_ret(rmpsc_shm_peer(c, 1000), RMPSC_SHM_PEER_STALE);
	assert_ret(rmpsc_shm_peer(p, -1), RMPSC_SHM_PEER_ALIVE); /* not looked at */
	assert_ret(rmpsc_shm_heartbeat(c), 0);
	assert_ret(rmpsc_shm_peer(p, 3600ll * 1000 * MS), RMPSC_SHM_PEER_ALIVE);
	assert_ret(rmpsc_shm_peer(p, INT64_MAX), RMPSC_SHM_PEER_ALIVE);
	assert_ret(rmpsc_shm_heartbeat(p), 0);
	assert_ret(rmpsc_shm_peer(c, 3600ll * 1000 * MS), RMPSC_SHM_PEER_ALIVE);
	/* STALE is not GONE: the ring works. */
	push_u64(p, 5);
	push_u64(p, 6);
	assert_ret(rmpsc_shm_is_closed(p), 0);
	/* The consumer detaches: GONE, and for good. */
	rmpsc_shm_destroy(c);
	assert_ret(rmpsc_shm_peer(p, -1), RMPSC_SHM_PEER_GONE);
	assert_ret(rmpsc_shm_peer(p, 3600ll * 1000 * MS), RMPSC_SHM_PEER_GONE);
	assert_ret(rmpsc_shm_peer(p, -1), RMPSC_SHM_PEER_GONE);
	assert_ret(rmpsc_shm_is_closed(p), 1);
	{
		/* The destroy both closed the ring and detached: either code
		 * describes it (a consumer gone without a close: the next case,
		 * and test_shm_producer_when_peer_gone_try_calls_return_econnreset). */
		uint64_t v = 1;
		const int r = rmpsc_shm_push_timed(p, &v, -1, NULL);

		assert_true(r == -EPIPE || r == -ECONNRESET);
		assert_ret(rmpsc_shm_push_timed(p, &v, 0, NULL), r);
		assert_ret(rmpsc_shm_push_timed(p, &v, MS, NULL), r);
	}
	rmpsc_shm_destroy(p);
	/* The consumer side first this time: a new consumer creates. */
	c = shm_new(RMPSC_SHM_CONSUMER, 8, 8, 0);
	assert_ret(rmpsc_shm_peer(c, -1), RMPSC_SHM_PEER_NONE);
	p = shm_att(rmpsc_shm_fd(c), RMPSC_SHM_PRODUCER);
	assert_ret(rmpsc_shm_peer(c, -1), RMPSC_SHM_PEER_ALIVE);
	push_seq_u64(p, 10, 3);
	rmpsc_shm_destroy(p);
	assert_ret(rmpsc_shm_peer(c, -1), RMPSC_SHM_PEER_GONE);
	/* Everything committed, then the end: the destroy closed the ring
	 * (-EPIPE, as rmpsc_shm_destroy() says) and detached (-ECONNRESET, as
	 * rmpsc_shm_peer() says for GONE); the header gives both, so either,
	 * but the same from then on. */
	pop_seq_u64_all(c, 10, 3);
	{
		uint64_t v;
		const int r = rmpsc_shm_pop(c, &v);

		assert_true(r == -EPIPE || r == -ECONNRESET);
		assert_ret(rmpsc_shm_pop_timed(c, &v, -1, NULL), r);
		assert_ret(rmpsc_shm_pop(c, &v), r);
	}
	rmpsc_shm_destroy(c);
	assert_int_equal(fd_count(), before);
}

/* The producer's calls after the consumer was found gone: -ECONNRESET
 * where a closed ring's -EPIPE would be, try calls included (the header:
 * "once the consumer was found gone ... by a timed call or by
 * rmpsc_shm_peer()"). */
static void test_shm_producer_when_peer_gone_try_calls_return_econnreset(void **state)
{
	rmpsc_shm *p, *c;
	int sv[2];
	uint64_t v = 1;
	rmpsc_span sp;

	(void)state;
	shm_pair(RMPSC_SHM_PRODUCER, 8, 8, 0, &p, &c);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_ret(rmpsc_shm_watch(p, sv[0]), 0);
	close(sv[1]);
	assert_ret(rmpsc_shm_peer(p, -1), RMPSC_SHM_PEER_GONE);
	assert_ret(rmpsc_shm_is_closed(p), 1);
	assert_ret(rmpsc_shm_push_timed(p, &v, 0, NULL), -ECONNRESET);
	assert_ret(rmpsc_shm_push_timed(p, &v, -1, NULL), -ECONNRESET);
	assert_ret(rmpsc_shm_push_n_timed(p, &v, 1, -1, NULL), -ECONNRESET);
	assert_ret(rmpsc_shm_reserve_timed(p, 1, &sp, -1, NULL), -ECONNRESET);
	assert_ret(rmpsc_shm_push(p, &v), -ECONNRESET);
	assert_ret(rmpsc_shm_push_n(p, &v, 1), -ECONNRESET);
	assert_ret(rmpsc_shm_reserve(p, 1, &sp), -ECONNRESET);
	assert_ret(rmpsc_shm_commit(p, 0), -ECONNRESET);
	close(sv[0]);
	rmpsc_shm_destroy(c);
	rmpsc_shm_destroy(p);
}

static void test_shm_watch_when_socket_hangs_up_peer_gone(void **state)
{
	rmpsc_shm *p, *c;
	int sv[2], extra[RMPSC_SHM_WATCH_MAX + 1][2];
	const int before = fd_count();

	(void)state;
	shm_pair(RMPSC_SHM_PRODUCER, 8, 8, 0, &p, &c);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_ret(rmpsc_shm_watch(c, sv[0]), 0);
	close(sv[0]); /* the handle keeps its own duplicate */
	assert_ret(rmpsc_shm_peer(c, -1), RMPSC_SHM_PEER_ALIVE);
	push_seq_u64(p, 1, 2);
	close(sv[1]);
	assert_ret(rmpsc_shm_peer(c, -1), RMPSC_SHM_PEER_GONE);
	assert_ret(rmpsc_shm_is_closed(c), 1);
	pop_seq_u64_all(c, 1, 2);
	{
		uint64_t v;

		assert_ret(rmpsc_shm_pop(c, &v), -ECONNRESET);
	}
	/* -EBADF: a bad descriptor, a bad handle. */
	assert_ret(rmpsc_shm_watch(p, -1), -EBADF);
	assert_ret(rmpsc_shm_watch(p, sv[1]), -EBADF); /* closed */
	assert_ret(rmpsc_shm_watch(p, 1000000), -EBADF);
	assert_ret(rmpsc_shm_watch(NULL, 0), -EBADF);
	/* RMPSC_SHM_WATCH_MAX, then -ENOSPC. */
	for (uint32_t i = 0; i <= RMPSC_SHM_WATCH_MAX; i++) {
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, extra[i]), 0);
		assert_ret(rmpsc_shm_watch(p, extra[i][0]),
			   i < RMPSC_SHM_WATCH_MAX ? 0 : -ENOSPC);
	}
	assert_ret(rmpsc_shm_watch(p, extra[0][0]), -ENOSPC);
	for (uint32_t i = 0; i <= RMPSC_SHM_WATCH_MAX; i++) {
		close(extra[i][0]);
		close(extra[i][1]);
	}
	rmpsc_shm_destroy(c);
	rmpsc_shm_destroy(p);
	assert_int_equal(fd_count(), before);
}

/* A consumer blocked with no limit returns when the watched socket's
 * other end closes: first what was committed, then -ECONNRESET. */
static void test_shm_watch_when_socket_closes_wakes_blocked_consumer(void **state)
{
	rmpsc_shm *p, *c;
	int sv[2];
	struct blocked b = { .kind = 0, .timeout = -1, .drain = true };
	pthread_t t;

	(void)state;
	watchdog_on();
	shm_pair(RMPSC_SHM_CONSUMER, 8, 8, 0, &p, &c);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	assert_ret(rmpsc_shm_watch(c, sv[0]), 0);
	push_seq_u64(p, 50, 3);
	b.s = c;
	t = blocked_start(&b);
	close(sv[1]);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(b.ngot, 3);
	vals_expect(b.got, 50, 3);
	assert_ret(b.rc, -ECONNRESET);
	assert_ret(rmpsc_shm_peer(c, -1), RMPSC_SHM_PEER_GONE);
	close(sv[0]);
	rmpsc_shm_destroy(c);
	rmpsc_shm_destroy(p);
	watchdog_off();
}

/* A producer blocked on a full ring with no limit returns -ECONNRESET
 * when the watched socket's other end closes. */
static void test_shm_watch_when_socket_closes_wakes_blocked_producer(void **state)
{
	rmpsc_shm *p, *c;
	int sv[2];
	struct blocked b = { .kind = 1, .timeout = -1 };
	pthread_t t;

	(void)state;
	watchdog_on();
	shm_pair(RMPSC_SHM_PRODUCER, 4, 8, 0, &p, &c);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	assert_ret(rmpsc_shm_watch(p, sv[1]), 0);
	close(sv[1]);
	push_seq_u64(p, 0, 4);
	b.s = p;
	t = blocked_start(&b);
	close(sv[0]);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_ret(b.rc, -ECONNRESET);
	assert_ret(rmpsc_shm_peer(p, -1), RMPSC_SHM_PEER_GONE);
	/* What it had committed is still the consumer's. */
	pop_seq_u64_all(c, 0, 4);
	rmpsc_shm_destroy(c);
	rmpsc_shm_destroy(p);
	watchdog_off();
}

/* A pidfd of a process as the watched descriptor: GONE when it exits. */
static void test_shm_watch_when_pidfd_process_exits_peer_gone(void **state)
{
	rmpsc_shm *p, *c;
	int go[2], pidfd;
	pid_t pid;

	(void)state;
	watchdog_on();
	shm_pair(RMPSC_SHM_PRODUCER, 8, 8, 0, &p, &c);
	assert_int_equal(pipe(go), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char x;

		close(go[1]);
		_exit(read(go[0], &x, 1) >= 0 ? 0 : 1);
	}
	close(go[0]);
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0) {
		close(go[1]);
		waitpid(pid, NULL, 0);
		rmpsc_shm_destroy(c);
		rmpsc_shm_destroy(p);
		watchdog_off();
		skip();
	}
	assert_ret(rmpsc_shm_watch(c, pidfd), 0);
	close(pidfd);
	assert_ret(rmpsc_shm_peer(c, -1), RMPSC_SHM_PEER_ALIVE);
	push_u64(p, 9);
	close(go[1]); /* the child exits */
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	assert_ret(rmpsc_shm_peer(c, -1), RMPSC_SHM_PEER_GONE);
	pop_u64(c, 9);
	{
		uint64_t v;

		assert_ret(rmpsc_shm_pop_timed(c, &v, -1, NULL), -ECONNRESET);
	}
	rmpsc_shm_destroy(c);
	rmpsc_shm_destroy(p);
	watchdog_off();
}

/* ---- 12. the peer's death across fork -------------------------------------- */

enum death {
	DEATH_AFTER,	     /* killed, then the consumer drains */
	DEATH_WHILE_BLOCKED, /* killed while the consumer is blocked */
	DEATH_MID_RESERVE,   /* killed with 3 slots reserved, written, uncommitted */
	DEATH_MID_CLOSE_1,   /* killed having stored closed = 1 (closing) */
	DEATH_MID_CLOSE_2,   /* killed having stored closed = 2 (deciding the end) */
};

/* The child: attach as the producer from the inherited descriptor, push
 * @k elements (and reserve more without committing for
 * DEATH_MID_RESERVE), say so, and wait to be killed. */
static void child_producer(int fd, uint32_t k, enum death how, int ready)
{
	const rmpsc_shm_config cfg = shm_cfg(RMPSC_SHM_PRODUCER, 0, 0, 0);
	rmpsc_shm *p = NULL;
	char ok = 'y';

	if (rmpsc_shm_attach(fd, &cfg, &p) != 0)
		ok = 'a';
	for (uint64_t i = 0; ok == 'y' && i < k; i++)
		if (rmpsc_shm_push(p, &i) != 0)
			ok = 'p';
	if (ok == 'y' && how == DEATH_MID_RESERVE) {
		rmpsc_span sp;

		if (rmpsc_shm_reserve(p, 3, &sp) != 3)
			ok = 'r';
		else
			for (uint32_t i = 0; i < 3; i++)
				span_put_u64(&sp, i, 0xdead);
	}
	if (ok == 'y' && (how == DEATH_MID_CLOSE_1 || how == DEATH_MID_CLOSE_2)) {
		/* A close cut short: the first store of the close protocol,
		 * made through a mapping of our own. */
		struct stat st;
		rmpsc_shm_header *h;

		if (fstat(fd, &st) != 0)
			_exit(4);
		h = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (h == MAP_FAILED)
			_exit(5);
		HSTORE(&h->closed, how == DEATH_MID_CLOSE_1 ? 1u : 2u);
	}
	if (write(ready, &ok, 1) != 1)
		_exit(3);
	for (;;)
		pause();
}

static void test_shm_peer_when_forked_producer_killed_consumer_gets_k_then_econnreset(
	void **state)
{
	const enum death how = (enum death)test_param(state);
	const uint32_t k = 40;
	rmpsc_shm *c;
	int ready[2];
	pid_t pid;
	char ok = 0;
	const int before = fd_count();

	watchdog_on();
	c = shm_new(RMPSC_SHM_CONSUMER, 64, 8, 0);
	assert_int_equal(pipe(ready), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(ready[0]);
		child_producer(rmpsc_shm_fd(c), k, how, ready[1]);
	}
	close(ready[1]);
	assert_int_equal(read(ready[0], &ok, 1), 1);
	close(ready[0]);
	if (ok != 'y') {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		print_error("child: %c\n", ok);
		fail();
	}
	assert_ret(rmpsc_shm_peer(c, -1), RMPSC_SHM_PEER_ALIVE);
	if (how == DEATH_WHILE_BLOCKED) {
		/* Take the k elements while it lives, then block; kill it from
		 * another process's point of view: a thread of ours. */
		struct blocked b = { .s = c, .kind = 0, .timeout = -1, .drain = true };
		pthread_t t;

		pop_seq_u64_all(c, 0, k);
		t = blocked_start(&b);
		assert_int_equal(kill(pid, SIGKILL), 0);
		assert_int_equal(pthread_join(t, NULL), 0);
		assert_int_equal(b.ngot, 0);
		assert_ret(b.rc, -ECONNRESET);
		assert_int_equal(waitpid(pid, NULL, 0), pid);
	} else {
		int st;
		uint64_t v;

		assert_int_equal(kill(pid, SIGKILL), 0);
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
		for (uint64_t i = 0; i < k; i++) {
			v = ~0ull;
			assert_ret(rmpsc_shm_pop_timed(c, &v, -1, NULL), 0);
			assert_int_equal(v, i);
		}
		assert_ret(rmpsc_shm_pop_timed(c, &v, -1, NULL), -ECONNRESET);
		assert_ret(rmpsc_shm_pop(c, &v), -ECONNRESET);
	}
	assert_ret(rmpsc_shm_peer(c, -1), RMPSC_SHM_PEER_GONE);
	assert_ret(rmpsc_shm_len(c), 0);
	rmpsc_shm_destroy(c);
	assert_int_equal(fd_count(), before);
	watchdog_off();
}

/* ---- 13. descriptor hygiene ------------------------------------------------- */

static void test_shm_fds_when_cycles_and_failed_attaches_leak_nothing(void **state)
{
	struct image im = image_make(16, 8);
	unsigned char *copy = malloc(im.len);
	int before;

	(void)state;
	assert_non_null(copy);
	before = fd_count();
	for (int round = 0; round < 20; round++) {
		rmpsc_shm *p, *c;
		int sv[2];

		shm_pair(round % 2 ? RMPSC_SHM_CONSUMER : RMPSC_SHM_PRODUCER, 16, 8,
			 round % 3 ? 0 : RMPSC_SHM_F_FENCE, &p, &c);
		/* Failed attaches of every kind. */
		shm_att_role_fails(rmpsc_shm_fd(p), RMPSC_SHM_PRODUCER, -EBUSY);
		shm_att_role_fails(rmpsc_shm_fd(p), RMPSC_SHM_CONSUMER, -EBUSY);
		{
			const rmpsc_shm_config cf = shm_cfg(RMPSC_SHM_CONSUMER, 32, 0, 0);

			shm_att_fails(rmpsc_shm_fd(p), &cf, -EPROTO);
		}
		memcpy(copy, im.b, im.len);
		corruptions[(size_t)round % (sizeof corruptions / sizeof corruptions[0])].fn(
			(rmpsc_shm_header *)(void *)copy);
		{
			const int fd = memfd_image(copy, im.len, im.len, SEAL_ALL);

			shm_att_role_fails(fd, RMPSC_SHM_CONSUMER, -EPROTO);
			close(fd);
		}
		/* Watches and the peer's pidfd are the handle's: gone with it. */
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
		assert_ret(rmpsc_shm_watch(c, sv[0]), 0);
		close(sv[0]);
		close(sv[1]);
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
		assert_ret(rmpsc_shm_watch(p, sv[1]), 0);
		close(sv[0]);
		close(sv[1]);
		assert_ret(rmpsc_shm_peer(p, -1), RMPSC_SHM_PEER_GONE);
		assert_true(rmpsc_shm_peer(c, -1) == RMPSC_SHM_PEER_GONE);
		push_seq_u64(p, 0, 0);
		rmpsc_shm_destroy(c);
		rmpsc_shm_destroy(p);
		/* A pair that lives, peers alive (pidfds opened). */
		shm_pair(RMPSC_SHM_PRODUCER, 4, 8, 0, &p, &c);
		assert_ret(rmpsc_shm_peer(p, -1), RMPSC_SHM_PEER_ALIVE);
		assert_ret(rmpsc_shm_peer(c, -1), RMPSC_SHM_PEER_ALIVE);
		push_u64(p, (uint64_t)round);
		pop_u64(c, (uint64_t)round);
		rmpsc_shm_destroy(p);
		rmpsc_shm_destroy(c);
	}
	assert_int_equal(fd_count(), before);
	free(copy);
	free(im.b);
}

/* ---- main ------------------------------------------------------------------ */

static const struct geo geo_p_1 = { RMPSC_SHM_PRODUCER, 8, 1, 0 };
static const struct geo geo_c_1 = { RMPSC_SHM_CONSUMER, 16, 1, 0 };
static const struct geo geo_p_8 = { RMPSC_SHM_PRODUCER, 16, 8, 0 };
static const struct geo geo_c_8 = { RMPSC_SHM_CONSUMER, 8, 8, RMPSC_SHM_F_FENCE };
static const struct geo geo_p_24 = { RMPSC_SHM_PRODUCER, 8, 24, RMPSC_SHM_F_PREFAULT };
static const struct geo geo_c_24 = { RMPSC_SHM_CONSUMER, 32, 24, 0 };
static const struct geo geo_p_4096 = { RMPSC_SHM_PRODUCER, 8, 4096, RMPSC_SHM_F_ALL };
static const struct geo geo_c_4096 = { RMPSC_SHM_CONSUMER, 4, 4096, 0 };
static const struct geo geo_p_cap1 = { RMPSC_SHM_PRODUCER, 1, 8, 0 };
static const struct geo geo_c_cap2 = { RMPSC_SHM_CONSUMER, 2, 3, 0 };

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shm_config_init_when_bad_size_or_null_returns_documented_codes),
		cmocka_unit_test(test_shm_create_when_bad_arguments_returns_documented_codes),
		cmocka_unit_test(test_shm_attach_when_bad_arguments_returns_documented_codes),
		TEST_PARAM(test_shm_pair_when_producer_creates_esz1_moves_elements,
			   test_shm_pair_when_used_moves_elements_through_every_call, &geo_p_1),
		TEST_PARAM(test_shm_pair_when_consumer_creates_esz1_moves_elements,
			   test_shm_pair_when_used_moves_elements_through_every_call, &geo_c_1),
		TEST_PARAM(test_shm_pair_when_producer_creates_esz8_moves_elements,
			   test_shm_pair_when_used_moves_elements_through_every_call, &geo_p_8),
		TEST_PARAM(test_shm_pair_when_consumer_creates_esz8_fence_moves_elements,
			   test_shm_pair_when_used_moves_elements_through_every_call, &geo_c_8),
		TEST_PARAM(test_shm_pair_when_producer_creates_esz24_moves_elements,
			   test_shm_pair_when_used_moves_elements_through_every_call, &geo_p_24),
		TEST_PARAM(test_shm_pair_when_consumer_creates_esz24_moves_elements,
			   test_shm_pair_when_used_moves_elements_through_every_call, &geo_c_24),
		TEST_PARAM(test_shm_pair_when_producer_creates_esz4096_moves_elements,
			   test_shm_pair_when_used_moves_elements_through_every_call, &geo_p_4096),
		TEST_PARAM(test_shm_pair_when_consumer_creates_esz4096_moves_elements,
			   test_shm_pair_when_used_moves_elements_through_every_call, &geo_c_4096),
		TEST_PARAM(test_shm_pair_when_capacity_1_moves_elements,
			   test_shm_pair_when_used_moves_elements_through_every_call, &geo_p_cap1),
		TEST_PARAM(test_shm_pair_when_capacity_2_esz3_moves_elements,
			   test_shm_pair_when_used_moves_elements_through_every_call, &geo_c_cap2),
		cmocka_unit_test(test_shm_attach_when_caller_closes_fd_keeps_working),
		TEST_PARAM(test_shm_header_when_created_holds_documented_values,
			   test_shm_header_when_created_and_attached_holds_documented_values, 0),
		TEST_PARAM(test_shm_header_when_created_fence_holds_documented_values,
			   test_shm_header_when_created_and_attached_holds_documented_values,
			   RMPSC_SHM_F_FENCE | RMPSC_SHM_F_PREFAULT),
		cmocka_unit_test(test_shm_mapping_when_slots_end_guard_page_follows),
		cmocka_unit_test(test_shm_calls_when_peer_rewrites_geometry_ignore_it),
		cmocka_unit_test(test_shm_calls_when_wrong_role_or_not_a_handle_return_ebadf),
		cmocka_unit_test(
			test_shm_attach_when_role_live_returns_ebusy_and_after_destroy_attaches),
		cmocka_unit_test(
			test_shm_attach_when_not_a_sealed_memfd_of_the_right_size_returns_eproto),
		cmocka_unit_test(test_shm_attach_when_header_field_damaged_returns_eproto),
		cmocka_unit_test(test_shm_attach_when_hint_fields_vary_still_attaches),
		cmocka_unit_test(
			test_shm_attach_when_header_randomly_damaged_returns_documented_codes),
		TEST_PARAM(test_shm_consumer_when_tail_beyond_capacity_latches_eproto,
			   test_shm_calls_when_peer_writes_bad_index_or_state_latch_eproto,
			   LATCH_TAIL_BEYOND),
		TEST_PARAM(test_shm_consumer_when_tail_behind_head_latches_eproto,
			   test_shm_calls_when_peer_writes_bad_index_or_state_latch_eproto,
			   LATCH_TAIL_BEHIND),
		TEST_PARAM(test_shm_producer_when_head_beyond_tail_latches_eproto,
			   test_shm_calls_when_peer_writes_bad_index_or_state_latch_eproto,
			   LATCH_HEAD_BEYOND),
		TEST_PARAM(test_shm_producer_when_head_far_behind_latches_eproto,
			   test_shm_calls_when_peer_writes_bad_index_or_state_latch_eproto,
			   LATCH_HEAD_FAR_BEHIND),
		TEST_PARAM(test_shm_consumer_when_closed_9_latches_eproto,
			   test_shm_calls_when_peer_writes_bad_index_or_state_latch_eproto,
			   LATCH_CLOSED_9_CONS),
		TEST_PARAM(test_shm_producer_when_closed_9_latches_eproto,
			   test_shm_calls_when_peer_writes_bad_index_or_state_latch_eproto,
			   LATCH_CLOSED_9_PROD),
		TEST_PARAM(test_shm_consumer_when_final_tail_out_of_range_latches_eproto,
			   test_shm_calls_when_peer_writes_bad_index_or_state_latch_eproto,
			   LATCH_FINAL_TAIL_BAD),
		cmocka_unit_test(test_shm_memfd_when_resized_or_resealed_refuses),
		TEST_PARAM(test_shm_close_when_producer_closes_drains_then_epipe,
			   test_shm_close_when_either_side_closes_drains_then_epipe,
			   RMPSC_SHM_PRODUCER),
		TEST_PARAM(test_shm_close_when_consumer_closes_drains_then_epipe,
			   test_shm_close_when_either_side_closes_drains_then_epipe,
			   RMPSC_SHM_CONSUMER),
		cmocka_unit_test(test_shm_close_when_timed_calls_blocked_wakes_them),
		cmocka_unit_test(test_shm_close_when_peer_left_close_half_done_decides_it),
		TEST_PARAM(test_shm_consumer_when_live_peer_left_closing_still_delivers,
			   test_shm_consumer_when_live_peer_left_close_half_done_still_delivers, 1),
		TEST_PARAM(test_shm_consumer_when_live_peer_left_deciding_still_delivers,
			   test_shm_consumer_when_live_peer_left_close_half_done_still_delivers, 2),
		cmocka_unit_test(test_shm_timed_when_empty_or_full_times_out),
		cmocka_unit_test(test_shm_timed_when_consumer_blocked_wakes_on_push),
		TEST_PARAM(test_shm_timed_when_threads_ping_pong_global_delivers_in_order,
			   test_shm_timed_when_threads_ping_pong_delivers_in_order, 0),
		TEST_PARAM(test_shm_timed_when_threads_ping_pong_fence_delivers_in_order,
			   test_shm_timed_when_threads_ping_pong_delivers_in_order,
			   RMPSC_SHM_F_FENCE),
		cmocka_unit_test(test_shm_peer_when_attached_heartbeat_detached_reports_state),
		cmocka_unit_test(test_shm_producer_when_peer_gone_try_calls_return_econnreset),
		cmocka_unit_test(test_shm_watch_when_socket_hangs_up_peer_gone),
		cmocka_unit_test(test_shm_watch_when_socket_closes_wakes_blocked_consumer),
		cmocka_unit_test(test_shm_watch_when_socket_closes_wakes_blocked_producer),
		cmocka_unit_test(test_shm_watch_when_pidfd_process_exits_peer_gone),
		TEST_PARAM(test_shm_peer_when_forked_producer_killed_then_drained,
			   test_shm_peer_when_forked_producer_killed_consumer_gets_k_then_econnreset,
			   DEATH_AFTER),
		TEST_PARAM(test_shm_peer_when_forked_producer_killed_while_consumer_blocked,
			   test_shm_peer_when_forked_producer_killed_consumer_gets_k_then_econnreset,
			   DEATH_WHILE_BLOCKED),
		TEST_PARAM(test_shm_peer_when_forked_producer_killed_mid_reserve_hides_it,
			   test_shm_peer_when_forked_producer_killed_consumer_gets_k_then_econnreset,
			   DEATH_MID_RESERVE),
		TEST_PARAM(test_shm_peer_when_forked_producer_killed_closing_still_delivers,
			   test_shm_peer_when_forked_producer_killed_consumer_gets_k_then_econnreset,
			   DEATH_MID_CLOSE_1),
		TEST_PARAM(test_shm_peer_when_forked_producer_killed_deciding_still_delivers,
			   test_shm_peer_when_forked_producer_killed_consumer_gets_k_then_econnreset,
			   DEATH_MID_CLOSE_2),
		cmocka_unit_test(test_shm_fds_when_cycles_and_failed_attaches_leak_nothing),
	};

	return cmocka_run_group_tests_name("test_shm_ring", tests, NULL, NULL);
}
