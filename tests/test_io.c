/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the io_uring engine of include/ringmpsc/uring.h (the
 * rmpsc_io_* calls), every promise of the header read as a stranger reads
 * it, each case trying to break one. The calls for liburing users
 * (rmpsc_uring_*) are test_uring.c's.
 *
 *  - rmpsc_io_config_init(): the defaults, the size rules; rmpsc_io_create()
 *    with one thing wrong at a time (every -EINVAL, -EBADF, -E2BIG and
 *    -ENOBUFS it can be made to return), *out NULL after each, the pool's
 *    reference not kept by a refused create;
 *  - reads of a generated file into pool slabs (registered and plain
 *    buffers): every byte, every tag exactly once, short reads at the end,
 *    0 past it, the current position (offset UINT64_MAX), a bad fd's
 *    -EBADF as a result with the handle usable again;
 *  - ownership: in flight, the handle's pool calls and a second submission
 *    return -EBUSY until its completion; a refused submission (-EMSGSIZE,
 *    -EAGAIN at max_ops) does not keep the slab; stale handles;
 *    RMPSC_IO_SUBMIT_MORE waits for rmpsc_io_submit();
 *  - writes, read back with pread();
 *  - completions into an SPSC ring by rmpsc_io_run() (zeroed padding of
 *    larger elements, a full ring keeps the completion for the next run,
 *    a closed ring's -EPIPE), and by the engine's thread into an MPSC
 *    channel read by another thread while several threads submit, with
 *    the notifier's fd readable after completions;
 *  - sockets: accept, send, recv on loopback TCP; SEND_ZC (one completion
 *    after the notification, RMPSC_IO_CQE_F_ZC, F_COPIED where reported,
 *    the slab held until then) and its -EOPNOTSUPP on AF_UNIX; multishot
 *    receives into the engine's provided buffers, run dry on purpose and
 *    re-armed with no byte lost; cancel;
 *  - destroy with operations pending (with and without the thread, with a
 *    drain timeout of 0), and a pool destroyed under an engine;
 *  - RMPSC_IO_F_EVENTFD, rmpsc_io_get_info(), rmpsc_io_fd(), and -EBADF
 *    for NULL and for handles of other types, table-driven.
 *
 * Built without liburing (RMPSC_TEST_HAVE_URING unset), the file checks
 * that every rmpsc_io_* call returns -EOPNOTSUPP.
 *
 * No upper bound on any time is asserted; waits are bounded only to turn
 * a hang into a failure (HANG_NS).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
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
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_util.h"
#include "test_table.h"

#include "ringmpsc/channel.h"
#include "ringmpsc/notify.h"
#include "ringmpsc/pool.h"
#include "ringmpsc/ring.h"
#include "ringmpsc/uring.h"

/* ---- frozen layouts, pinned values ------------------------------------------ */

_Static_assert(sizeof(rmpsc_io_config) == RMPSC_IO_CONFIG_SIZE_V1, "config 1.0 size");
_Static_assert(offsetof(rmpsc_io_config, pool) == 16 && offsetof(rmpsc_io_config, ring) == 24 &&
		       offsetof(rmpsc_io_config, mpsc) == 32 &&
		       offsetof(rmpsc_io_config, notifier) == 40 &&
		       offsetof(rmpsc_io_config, drain_timeout_ns) == 48 &&
		       offsetof(rmpsc_io_config, recv_tier) == 56 &&
		       offsetof(rmpsc_io_config, recv_buffers) == 60,
	       "config layout");
_Static_assert(sizeof(rmpsc_io_cqe) == 24 && offsetof(rmpsc_io_cqe, handle) == 8 &&
		       offsetof(rmpsc_io_cqe, result) == 12 && offsetof(rmpsc_io_cqe, flags) == 16 &&
		       offsetof(rmpsc_io_cqe, op) == 20,
	       "cqe frozen");
_Static_assert(sizeof(rmpsc_io_info) == RMPSC_IO_INFO_SIZE_V1 &&
		       offsetof(rmpsc_io_info, inflight) == 16 &&
		       offsetof(rmpsc_io_info, recv_posted) == 40 &&
		       offsetof(rmpsc_io_info, _pad0) == 44,
	       "info layout");
_Static_assert(RMPSC_IO_OP_READ == 1 && RMPSC_IO_OP_WRITE == 2 && RMPSC_IO_OP_RECV == 3 &&
		       RMPSC_IO_OP_SEND == 4 && RMPSC_IO_OP_ACCEPT == 5 &&
		       RMPSC_IO_OP_RECV_MULTISHOT == 6,
	       "ops pinned");
_Static_assert(RMPSC_IO_CQE_F_MORE == 1 && RMPSC_IO_CQE_F_COPIED == 2 && RMPSC_IO_CQE_F_ZC == 4,
	       "cqe flags pinned");
_Static_assert(RMPSC_IO_F_ALL == 31 && RMPSC_IO_SUBMIT_F_ALL == 3, "flag masks");

#define KIB ((uint64_t)1 << 10)
#define MIB ((uint64_t)1 << 20)
#define MS 1000000ll
#define SEC 1000000000ll
/* A hang becomes a failure after this long (sanitizer builds are slow). */
#define HANG_NS (30 * SEC)
#define HANG_MS ((int)(HANG_NS / MS))

#if RMPSC_TEST_HAVE_URING

/* ---- helpers ------------------------------------------------------------------ */

static rmpsc_pool *pool_make(uint64_t slab, uint32_t count)
{
	rmpsc_pool_config c;
	rmpsc_pool *p = SENTINEL_OF(rmpsc_pool);

	assert_ret(rmpsc_pool_config_init(&c, sizeof c), 0);
	c.slab_size = slab;
	c.slab_count = count;
	assert_ret(rmpsc_pool_create(&c, &p), 0);
	return assert_handle(p, SENTINEL_OF(rmpsc_pool));
}

/* Every slab back, then destroy with nothing out. */
static void pool_done(rmpsc_pool *p)
{
	uint64_t out = 77;

	assert_ret(rmpsc_pool_available(p), rmpsc_pool_capacity(p));
	assert_ret(rmpsc_pool_destroy(p, 0, &out), 0);
	assert_int_equal(out, 0);
}

static uint32_t palloc(rmpsc_pool *p, uint64_t len)
{
	uint32_t h = 0xdeadbeefu;

	assert_ret(rmpsc_pool_alloc(p, len, &h), 0);
	assert_true(h != RMPSC_POOL_HANDLE_NONE);
	return h;
}

static rmpsc_io_config io_cfg(rmpsc_pool *p, uint32_t flags)
{
	rmpsc_io_config c;

	memset(&c, 0x5a, sizeof c);
	assert_ret(rmpsc_io_config_init(&c, sizeof c), 0);
	c.pool = p;
	c.flags = flags;
	return c;
}

static rmpsc_io *io_new(const rmpsc_io_config *c)
{
	rmpsc_io *io = SENTINEL_OF(rmpsc_io);

	assert_ret(rmpsc_io_create(c, &io), 0);
	return assert_handle(io, SENTINEL_OF(rmpsc_io));
}

/* An engine on @p with @flags and nothing else. */
static rmpsc_io *io_plain(rmpsc_pool *p, uint32_t flags)
{
	const rmpsc_io_config c = io_cfg(p, flags);

	return io_new(&c);
}

/* Destroy: 0 and nothing leaked. */
static void io_done(rmpsc_io *io)
{
	uint64_t leaked = 77;

	assert_ret(rmpsc_io_destroy(io, &leaked), 0);
	assert_int_equal(leaked, 0);
}

/* One completion, within HANG_NS. */
static rmpsc_io_cqe reap1(rmpsc_io *io)
{
	rmpsc_io_cqe c;

	memset(&c, 0xa5, sizeof c);
	assert_ret(rmpsc_io_reap(io, &c, 1, HANG_NS), 1);
	return c;
}

/* No completion: -EAGAIN at once (@timeout 0), else -ETIMEDOUT, not
 * before the timeout. */
static void reap_nothing(rmpsc_io *io, int64_t timeout)
{
	rmpsc_io_cqe c[4];
	const int64_t t0 = now_ns();

	memset(c, 0xa5, sizeof c);
	assert_ret(rmpsc_io_reap(io, c, 4, timeout), timeout ? -ETIMEDOUT : -EAGAIN);
	if (timeout > 0)
		assert_true(now_ns() - t0 >= timeout);
}

static void cqe_expect(const rmpsc_io_cqe *c, uint64_t tag, uint32_t op, uint32_t h,
		       int32_t result, uint32_t flags)
{
	if (c->tag != tag || c->op != op || c->handle != h || c->result != result ||
	    c->flags != flags)
		fail_msg("completion {tag %#" PRIx64 ", op %u, handle %#x, result %d (%s), flags "
			 "%#x}, expected {tag %#" PRIx64 ", op %u, handle %#x, result %d (%s), "
			 "flags %#x}",
			 c->tag, c->op, c->handle, c->result, errname(c->result), c->flags, tag, op,
			 h, result, errname(result), flags);
}

/* The payload of @h is @len bytes equal to @want. */
static void payload_is(rmpsc_pool *p, uint32_t h, const void *want, size_t len)
{
	struct iovec v = { NULL, 0 };

	assert_ret(rmpsc_pool_get_len(p, h), (int64_t)len);
	assert_ret(rmpsc_pool_payload(p, h, &v), 0);
	assert_int_equal(v.iov_len, len);
	if (len && memcmp(v.iov_base, want, len) != 0)
		fail_msg("the payload of handle %#x differs from what was expected", h);
}

/* Write @len bytes of @src into the slab of @h and make them its payload. */
static void payload_fill(rmpsc_pool *p, uint32_t h, const void *src, size_t len)
{
	struct iovec v = { NULL, 0 };

	assert_ret(rmpsc_pool_slab(p, h, &v), 0);
	assert_true(v.iov_len >= len);
	memcpy(v.iov_base, src, len);
	assert_ret(rmpsc_pool_set_len(p, h, len), 0);
}

/* Every pool call on @h returns -EBUSY: the kernel holds its slab. */
static void expect_held(rmpsc_pool *p, uint32_t h)
{
	struct iovec v;
	uint32_t t, i;

	assert_ret(rmpsc_pool_free(p, h), -EBUSY);
	assert_ret(rmpsc_pool_payload(p, h, &v), -EBUSY);
	assert_ret(rmpsc_pool_slab(p, h, &v), -EBUSY);
	assert_ret(rmpsc_pool_get_len(p, h), -EBUSY);
	assert_ret(rmpsc_pool_set_len(p, h, 1), -EBUSY);
	assert_ret(rmpsc_pool_locate(p, h, &t, &i), -EBUSY);
	assert_ret(rmpsc_pool_iovecs(p, &h, 1, &v, 0), -EBUSY);
}

/* Readable within @ms (poll): true, else false. */
static bool fd_readable(int fd, int ms)
{
	struct pollfd pf = { .fd = fd, .events = POLLIN };
	int rc;

	while ((rc = poll(&pf, 1, ms)) < 0 && errno == EINTR)
		;
	assert_true(rc >= 0);
	return rc > 0 && (pf.revents & POLLIN);
}

/* ---- a generated file ------------------------------------------------------- */

struct tfile {
	int fd;
	size_t size;
	unsigned char *data;
};

/* @size pseudo-random bytes in an unlinked file of TMPDIR (or /tmp). */
static void tfile_make(struct tfile *f, size_t size, uint64_t seed)
{
	const char *dir = getenv("TMPDIR");
	char path[512];
	uint64_t s = seed | 1;
	size_t off = 0;

	if (!dir || !*dir)
		dir = "/tmp";
	snprintf(path, sizeof path, "%s/rmpsc_test_io_XXXXXX", dir);
	f->fd = mkostemp(path, O_CLOEXEC);
	if (f->fd < 0)
		fail_msg("mkostemp(%s): %s", path, strerror(errno));
	assert_ret(unlink(path), 0);
	f->size = size;
	f->data = malloc(size);
	assert_non_null(f->data);
	for (size_t i = 0; i < size; i += 8) {
		const uint64_t x = xs_next(&s);

		memcpy(f->data + i, &x, size - i < 8 ? size - i : 8);
	}
	while (off < size) {
		const ssize_t n = pwrite(f->fd, f->data + off, size - off, (off_t)off);

		assert_true(n > 0);
		off += (size_t)n;
	}
}

static void tfile_done(struct tfile *f)
{
	close(f->fd);
	free(f->data);
}

/* ---- sockets ------------------------------------------------------------------ */

static void unix_pair(int sv[2])
{
	assert_ret(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

static int tcp_listen(uint16_t *port)
{
	struct sockaddr_in a;
	socklen_t al = sizeof a;
	const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_ret(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	assert_ret(listen(fd, 8), 0);
	assert_ret(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

static int tcp_connect(uint16_t port)
{
	struct sockaddr_in a;
	const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons(port);
	assert_ret(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
	return fd;
}

/* Read exactly @len bytes from @fd (within HANG_NS). */
static void read_full(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n;

		if (!fd_readable(fd, HANG_MS))
			fail_msg("read_full: %zu of %zu bytes arrived", got, len);
		n = read(fd, (char *)buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		assert_true(n > 0);
		got += (size_t)n;
	}
}

static void write_full(int fd, const void *buf, size_t len)
{
	size_t put = 0;

	while (put < len) {
		const ssize_t n = write(fd, (const char *)buf + put, len - put);

		if (n < 0 && errno == EINTR)
			continue;
		assert_true(n > 0);
		put += (size_t)n;
	}
}

/* ---- config_init ------------------------------------------------------------ */

/*
 * "Fill cfg with defaults (at most size bytes) and record size": entries
 * 256, drain_timeout_ns 1 s, max_ops "(2 * entries)" (0 standing for
 * that default is taken too), nothing else set; the bytes past a smaller
 * size are left; a larger caller struct is accepted by create.
 */
static void test_io_config_init_when_valid_writes_the_defaults(void **state)
{
	struct {
		rmpsc_io_config c;
		unsigned char tail[64];
	} b;
	rmpsc_pool *p = pool_make(4096, 4);
	rmpsc_io *io;

	(void)state;
	memset(&b, 0xa5, sizeof b);
	assert_ret(rmpsc_io_config_init(&b.c, sizeof b.c), 0);
	assert_int_equal(b.c.size, sizeof b.c);
	assert_int_equal(b.c.flags, 0);
	assert_int_equal(b.c.entries, 256);
	if (b.c.max_ops != 0 && b.c.max_ops != 2 * 256)
		fail_msg("default max_ops %u, expected 2 * entries (or 0 for it)", b.c.max_ops);
	assert_null(b.c.pool);
	assert_null(b.c.ring);
	assert_null(b.c.mpsc);
	assert_null(b.c.notifier);
	assert_int_equal(b.c.drain_timeout_ns, SEC);
	assert_int_equal(b.c.recv_tier, 0);
	assert_int_equal(b.c.recv_buffers, 0);
	for (size_t i = 0; i < sizeof b.tail; i++)
		if (b.tail[i] != 0xa5)
			fail_msg("config_init wrote past the size it was given (byte %zu)", i);

	/* A caller struct 64 bytes larger: size recorded, create accepts it. */
	memset(&b, 0xa5, sizeof b);
	assert_ret(rmpsc_io_config_init(&b.c, sizeof b), 0);
	assert_int_equal(b.c.size, sizeof b);
	assert_int_equal(b.c.entries, 256);
	b.c.pool = p;
	io = SENTINEL_OF(rmpsc_io);
	assert_ret(rmpsc_io_create(&b.c, &io), 0);
	io_done(assert_handle(io, SENTINEL_OF(rmpsc_io)));
	pool_done(p);
}

static void test_io_config_init_when_size_bad_returns_einval_or_e2big_writes_nothing(
	void **state)
{
	static const uint32_t einval[] = { 0, 4, 8, 32, 56, 60, 63, 65, 68, 100 };
	static const uint32_t e2big[] = { 4104, 8192 };
	unsigned char *buf = tt_struct(TT_STRUCT_CANARY);

	(void)state;
	assert_ret(rmpsc_io_config_init(NULL, sizeof(rmpsc_io_config)), -EINVAL);
	for (size_t i = 0; i < TT_N(einval) + TT_N(e2big); i++) {
		const bool small = i < TT_N(einval);
		const uint32_t size = small ? einval[i] : e2big[i - TT_N(einval)];

		memset(buf, TT_CANARY, TT_STRUCT_BYTES);
		assert_ret(rmpsc_io_config_init((rmpsc_io_config *)(void *)buf, size),
			   small ? -EINVAL : -E2BIG);
		for (size_t k = 0; k < TT_STRUCT_BYTES; k++)
			if (buf[k] != TT_CANARY)
				fail_msg("config_init(size %u) refused but wrote byte %zu", size, k);
	}
}

/* ---- create --------------------------------------------------------------------- */

/* rmpsc_io_create(@c) must return @want; on error *out NULL, on success
 * a handle, destroyed again. */
static void create_expect(const rmpsc_io_config *c, int want, const char *what)
{
	rmpsc_io *io = SENTINEL_OF(rmpsc_io);
	const int rc = rmpsc_io_create(c, &io);

	if (rc != want)
		fail_msg("%s: rmpsc_io_create = %d (%s), expected %d (%s)", what, rc, errname(rc),
			 want, errname(want));
	if (want != 0) {
		if (io != NULL)
			fail_msg("%s: *out not set to NULL on error", what);
		return;
	}
	io_done(assert_handle(io, SENTINEL_OF(rmpsc_io)));
}

static void test_io_create_when_config_bad_returns_the_documented_code_and_out_null(
	void **state)
{
	rmpsc_pool *p = pool_make(4096, 4);
	rmpsc_ring *r16 = ring_make(8, 16, 0, 0), *r23 = ring_make(8, 23, 0, 0);
	rmpsc_ring *r24 = ring_make(8, 24, 0, 0);
	rmpsc_mpsc *m8, *m24;
	rmpsc_mpsc_config mc;
	rmpsc_notifier *n = SENTINEL_OF(rmpsc_notifier);
	rmpsc_io_config c;
	rmpsc_io *io;
	struct {
		rmpsc_io_config c;
		uint64_t extra;
	} big;
	uint32_t hs[4];
	int rc;

	(void)state;
	assert_ret(rmpsc_notifier_create(0, &n), 0);
	assert_ret(rmpsc_mpsc_config_init(&mc, sizeof mc), 0);
	assert_ret(rmpsc_mpsc_create(&mc, &m8), 0); /* elem_size 8, the default */
	mc.elem_size = 24;
	assert_ret(rmpsc_mpsc_create(&mc, &m24), 0);

	io = SENTINEL_OF(rmpsc_io);
	assert_ret(rmpsc_io_create(NULL, &io), -EINVAL);
	assert_null(io);
	c = io_cfg(p, 0);
	assert_ret(rmpsc_io_create(&c, NULL), -EINVAL);

#define BAD(field, value, want)                                                \
	do {                                                                   \
		c = io_cfg(p, 0);                                              \
		c.field = (value);                                             \
		create_expect(&c, (want), #field " = " #value);                \
	} while (0)
	BAD(size, 0, -EINVAL);
	BAD(size, 56, -EINVAL);
	BAD(size, 60, -EINVAL);
	BAD(size, 63, -EINVAL);
	BAD(size, 4104, -E2BIG);
	BAD(flags, 1u << 4, -EINVAL);
	BAD(flags, 1u << 31, -EINVAL);
	BAD(entries, 0, -EINVAL);
	BAD(entries, 3, -EINVAL);
	BAD(entries, 6, -EINVAL);
	BAD(entries, 8192, -EINVAL);
	BAD(entries, 4097, -EINVAL);
	BAD(max_ops, 70000, -EINVAL);
	BAD(max_ops, 65537, -EINVAL);
	BAD(recv_buffers, 3, -EINVAL);
	BAD(recv_buffers, 6, -EINVAL);
	BAD(recv_buffers, 65536, -EINVAL);
	BAD(ring, r16, -EINVAL);
	BAD(ring, r23, -EINVAL);
	BAD(mpsc, m8, -EINVAL);
	/* "-EBADF: pool, ring, mpsc or notifier not one" */
	BAD(pool, FOREIGN(rmpsc_pool), -EBADF);
	BAD(pool, (rmpsc_pool *)tt_make_dead(), -EBADF);
	BAD(pool, (rmpsc_pool *)(void *)r24, -EBADF);
	BAD(ring, (rmpsc_ring *)(void *)p, -EBADF);
	BAD(ring, FOREIGN(rmpsc_ring), -EBADF);
	BAD(mpsc, (rmpsc_mpsc *)(void *)r24, -EBADF);
	BAD(notifier, (rmpsc_notifier *)(void *)r24, -EBADF);
	/* The limits are accepted. */
	BAD(entries, 1, 0);
	BAD(entries, 4096, 0);
	BAD(max_ops, 1, 0);
	BAD(max_ops, 65536, 0);
	BAD(ring, r24, 0);
	BAD(mpsc, m24, 0);
	BAD(notifier, n, 0);
	BAD(recv_buffers, 1, 0);
	BAD(recv_buffers, RMPSC_URING_BUFRING_MAX, 0);
#undef BAD

	/* NULL pool: "-EINVAL: NULL pointers" or "-EBADF: pool not one". */
	c = io_cfg(NULL, 0);
	io = SENTINEL_OF(rmpsc_io);
	rc = rmpsc_io_create(&c, &io);
	if (rc != -EINVAL && rc != -EBADF)
		fail_msg("pool NULL: rmpsc_io_create = %d (%s)", rc, errname(rc));
	assert_null(io);

	c = io_cfg(p, 0);
	c.ring = r24;
	c.mpsc = m24;
	create_expect(&c, -EINVAL, "ring and mpsc both");
	create_expect(&(rmpsc_io_config){ 0 }, -EINVAL, "size 0, all zero");
	c = io_cfg(p, RMPSC_IO_F_THREAD);
	create_expect(&c, -EINVAL, "THREAD with neither ring nor mpsc");
	c = io_cfg(p, RMPSC_IO_F_EVENTFD);
	create_expect(&c, -EINVAL, "EVENTFD without a notifier");
	c = io_cfg(p, RMPSC_IO_F_THREAD);
	c.ring = r16;
	create_expect(&c, -EINVAL, "THREAD, ring elements of 16 bytes");
	c = io_cfg(p, RMPSC_IO_F_THREAD);
	c.mpsc = m8;
	create_expect(&c, -EINVAL, "THREAD, mpsc elements of 8 bytes");
	c = io_cfg(p, 0);
	c.recv_buffers = 4;
	c.recv_tier = 1;
	create_expect(&c, -EINVAL, "recv_tier 1 of a one-tier pool");
	c.recv_tier = UINT32_MAX;
	create_expect(&c, -EINVAL, "recv_tier UINT32_MAX");

	/* Config sizes: a larger struct with zeros past ours is taken, a
	 * non-zero byte there is -E2BIG. */
	memset(&big, 0, sizeof big);
	big.c = io_cfg(p, 0);
	big.c.size = sizeof big;
	create_expect(&big.c, 0, "size 72, zeros past the v1 struct");
	big.extra = 1;
	create_expect(&big.c, -E2BIG, "size 72, a non-zero byte past the v1 struct");

	/* recv_buffers with no slab left in the pool: -ENOBUFS. */
	assert_ret(rmpsc_pool_alloc_n(p, 1, hs, 4), 4);
	c = io_cfg(p, 0);
	c.recv_buffers = 4;
	create_expect(&c, -ENOBUFS, "recv_buffers, the pool exhausted");
	assert_ret(rmpsc_pool_free_n(p, hs, 4), 4);

	/* No refused create kept a reference on the pool (or a slab). */
	rmpsc_mpsc_destroy(m8);
	rmpsc_mpsc_destroy(m24);
	rmpsc_ring_destroy(r16);
	rmpsc_ring_destroy(r23);
	rmpsc_ring_destroy(r24);
	rmpsc_notifier_destroy(n);
	pool_done(p);
}

/* ---- reads of a file ---------------------------------------------------------- */

#define FILE_TAG(i) (((uint64_t)0xfeedu << 48) | (uint64_t)(i))

/*
 * An 8 MiB file read in 64 KiB slabs, eight in flight, reaped with
 * rmpsc_io_reap(): each completion's result, payload length and bytes;
 * every 64-bit tag once; the handle of a completion submitted again.
 * Registered buffers (param 0) and plain ones (RMPSC_IO_F_NO_FIXED). Half
 * the reads ask for len 0 ("the whole slab").
 */
static void test_io_read_when_file_read_in_slabs_every_byte_and_tag_arrive_once(void **state)
{
	const uint32_t flags = (uint32_t)test_param(state);
	const size_t size = STRESS_SCALE(8, 8, 4) * MIB;
	const uint32_t slab = 64 * KIB, depth = 8, blocks = (uint32_t)(size / slab);
	rmpsc_pool *p = pool_make(slab, depth);
	rmpsc_io *io = io_plain(p, flags);
	unsigned char *seen = calloc(blocks, 1);
	rmpsc_io_cqe cq[8];
	rmpsc_io_info info;
	struct tfile f;
	uint32_t hs[8], next = 0, done = 0;

	assert_non_null(seen);
	tfile_make(&f, size, 0x9e3779b97f4a7c15ull);
	info.size = sizeof info;
	assert_ret(rmpsc_io_get_info(io, &info, sizeof info), 0);
	assert_int_equal(info.fixed, flags & RMPSC_IO_F_NO_FIXED ? 0 : 1);
	for (uint32_t k = 0; k < depth; k++, next++) {
		hs[k] = palloc(p, slab);
		assert_ret(rmpsc_io_read(io, f.fd, (uint64_t)next * slab, hs[k], next & 1 ? slab : 0,
					 FILE_TAG(next), 0),
			   0);
	}
	assert_ret(rmpsc_io_inflight(io), depth);
	while (done < blocks) {
		const int n = rmpsc_io_reap(io, cq, 8, HANG_NS);

		if (n < 1 || n > 8)
			fail_msg("reap = %d (%s) after %u of %u completions", n, errname(n), done,
				 blocks);
		for (int k = 0; k < n; k++) {
			const uint64_t b = cq[k].tag & 0xffffffffffffull;
			bool ours = false;

			if ((cq[k].tag >> 48) != 0xfeedu || b >= blocks || seen[b])
				fail_msg("tag %#" PRIx64 ": unknown or seen twice", cq[k].tag);
			seen[b] = 1;
			for (uint32_t j = 0; j < depth; j++)
				ours |= cq[k].handle == hs[j];
			assert_true(ours);
			cqe_expect(&cq[k], cq[k].tag, RMPSC_IO_OP_READ, cq[k].handle, (int32_t)slab,
				   0);
			payload_is(p, cq[k].handle, f.data + b * slab, slab);
			done++;
			if (next < blocks) {
				assert_ret(rmpsc_io_read(io, f.fd, (uint64_t)next * slab,
							 cq[k].handle, next & 1 ? slab : 0,
							 FILE_TAG(next), 0),
					   0);
				next++;
			}
		}
	}
	assert_ret(rmpsc_io_inflight(io), 0);
	reap_nothing(io, 0);
	for (uint32_t j = 0; j < depth; j++)
		assert_ret(rmpsc_pool_free(p, hs[j]), 0);
	io_done(io);
	pool_done(p);
	tfile_done(&f);
	free(seen);
}

/*
 * "A short read is not an error": 1000 bytes before the end, a whole-slab
 * read returns 1000 and a payload of 1000; past the end, 0. Offset
 * UINT64_MAX reads at the file's current position (and moves it).
 */
static void test_io_read_when_at_the_end_or_current_position_returns_what_is_there(
	void **state)
{
	const size_t size = 256 * KIB;
	rmpsc_pool *p = pool_make(4096, 4);
	rmpsc_io *io = io_plain(p, (uint32_t)test_param(state));
	const uint32_t h = palloc(p, 4096);
	struct tfile f;
	rmpsc_io_cqe c;

	tfile_make(&f, size, 77);
	assert_ret(rmpsc_io_read(io, f.fd, size - 1000, h, 0, 1, 0), 0);
	c = reap1(io);
	cqe_expect(&c, 1, RMPSC_IO_OP_READ, h, 1000, 0);
	payload_is(p, h, f.data + size - 1000, 1000);

	assert_ret(rmpsc_io_read(io, f.fd, size, h, 4096, 2, 0), 0);
	c = reap1(io);
	cqe_expect(&c, 2, RMPSC_IO_OP_READ, h, 0, 0);
	payload_is(p, h, NULL, 0);
	assert_ret(rmpsc_io_read(io, f.fd, size + 12345, h, 100, 3, 0), 0);
	c = reap1(io);
	cqe_expect(&c, 3, RMPSC_IO_OP_READ, h, 0, 0);

	/* The current position, twice: the second read follows the first. */
	assert_ret(lseek(f.fd, 12345, SEEK_SET), 12345);
	assert_ret(rmpsc_io_read(io, f.fd, UINT64_MAX, h, 100, 4, 0), 0);
	c = reap1(io);
	cqe_expect(&c, 4, RMPSC_IO_OP_READ, h, 100, 0);
	payload_is(p, h, f.data + 12345, 100);
	assert_ret(rmpsc_io_read(io, f.fd, UINT64_MAX, h, 100, 5, 0), 0);
	c = reap1(io);
	cqe_expect(&c, 5, RMPSC_IO_OP_READ, h, 100, 0);
	payload_is(p, h, f.data + 12445, 100);
	assert_ret(lseek(f.fd, 0, SEEK_CUR), 12545);

	assert_ret(rmpsc_pool_free(p, h), 0);
	io_done(io);
	pool_done(p);
	tfile_done(&f);
}

/* A read of a closed fd is queued; its completion says -EBADF, and the
 * handle is the caller's again: read into once more, then freed. */
static void test_io_read_when_fd_closed_completes_with_ebadf_and_handle_usable(void **state)
{
	rmpsc_pool *p = pool_make(4096, 4);
	rmpsc_io *io = io_plain(p, (uint32_t)test_param(state));
	const uint32_t h = palloc(p, 4096);
	struct tfile f;
	rmpsc_io_cqe c;
	int bad;

	tfile_make(&f, 8192, 5); /* first: it must not get the closed number */
	bad = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_true(bad >= 0);
	close(bad);
	assert_ret(rmpsc_io_read(io, bad, 0, h, 0, 9, 0), 0);
	c = reap1(io);
	cqe_expect(&c, 9, RMPSC_IO_OP_READ, h, -EBADF, 0);
	assert_ret(rmpsc_io_inflight(io), 0);
	assert_ret(rmpsc_io_read(io, f.fd, 4096, h, 0, 10, 0), 0);
	c = reap1(io);
	cqe_expect(&c, 10, RMPSC_IO_OP_READ, h, 4096, 0);
	payload_is(p, h, f.data + 4096, 4096);
	assert_ret(rmpsc_pool_free(p, h), 0);
	io_done(io);
	pool_done(p);
	tfile_done(&f);
}

/* ---- ownership ---------------------------------------------------------------- */

/*
 * A receive on an idle socket holds its slab: rmpsc_pool_free(),
 * payload, slab, lengths, locate, iovecs and a second submission of the
 * handle (read, write, recv, send) return -EBUSY until the completion;
 * then the handle is the caller's, with the bytes.
 */
static void test_io_handle_when_in_flight_is_busy_until_its_completion(void **state)
{
	rmpsc_pool *p = pool_make(4096, 4);
	rmpsc_io *io = io_plain(p, 0);
	const uint32_t h = palloc(p, 4096);
	struct tfile f;
	rmpsc_io_cqe c;
	int sv[2];

	(void)state;
	unix_pair(sv);
	tfile_make(&f, 8192, 3);
	assert_ret(rmpsc_io_recv(io, sv[0], h, 0x42, 0), 0);
	expect_held(p, h);
	assert_ret(rmpsc_io_read(io, f.fd, 0, h, 0, 0x43, 0), -EBUSY);
	assert_ret(rmpsc_io_write(io, f.fd, 0, h, 0x43, 0), -EBUSY);
	assert_ret(rmpsc_io_recv(io, sv[0], h, 0x43, 0), -EBUSY);
	assert_ret(rmpsc_io_send(io, sv[0], h, 0x43, 0), -EBUSY);
	assert_ret(rmpsc_io_inflight(io), 1);
	reap_nothing(io, 10 * MS);
	expect_held(p, h);

	write_full(sv[1], "hello", 5);
	c = reap1(io);
	cqe_expect(&c, 0x42, RMPSC_IO_OP_RECV, h, 5, 0);
	payload_is(p, h, "hello", 5);
	assert_ret(rmpsc_io_inflight(io), 0);
	assert_ret(rmpsc_pool_free(p, h), 0);
	close(sv[0]);
	close(sv[1]);
	io_done(io);
	pool_done(p);
	tfile_done(&f);
}

/* A read longer than the slab: -EMSGSIZE, and the slab is not held. */
static void test_io_read_when_len_above_the_slab_returns_emsgsize_and_keeps_nothing(
	void **state)
{
	rmpsc_pool *p = pool_make(4096, 4);
	rmpsc_io *io = io_plain(p, 0);
	const uint32_t h = palloc(p, 4096);
	struct tfile f;

	(void)state;
	tfile_make(&f, 16384, 4);
	assert_ret(rmpsc_io_read(io, f.fd, 0, h, 4097, 1, 0), -EMSGSIZE);
	assert_ret(rmpsc_io_read(io, f.fd, 0, h, UINT32_MAX, 1, 0), -EMSGSIZE);
	assert_ret(rmpsc_io_read(io, f.fd, 0, h, 4097, 1, RMPSC_IO_SUBMIT_MORE), -EMSGSIZE);
	assert_ret(rmpsc_io_inflight(io), 0);
	payload_is(p, h, NULL, 0);
	reap_nothing(io, 0);
	assert_ret(rmpsc_pool_free(p, h), 0);
	io_done(io);
	pool_done(p);
	tfile_done(&f);
}

/* A handle freed (or reallocated) since: -ESTALE from every submission. */
static void test_io_submit_when_handle_stale_returns_estale(void **state)
{
	rmpsc_pool *p = pool_make(4096, 4);
	rmpsc_io *io = io_plain(p, 0);
	const uint32_t h = palloc(p, 4096);
	int sv[2];

	(void)state;
	unix_pair(sv);
	assert_ret(rmpsc_pool_free(p, h), 0);
	assert_ret(rmpsc_io_read(io, sv[0], 0, h, 0, 1, 0), -ESTALE);
	assert_ret(rmpsc_io_write(io, sv[0], 0, h, 1, 0), -ESTALE);
	assert_ret(rmpsc_io_recv(io, sv[0], h, 1, 0), -ESTALE);
	assert_ret(rmpsc_io_send(io, sv[0], h, 1, 0), -ESTALE);
	assert_ret(rmpsc_io_send(io, sv[0], h, 1, RMPSC_IO_SEND_ZC), -ESTALE);
	assert_ret(rmpsc_io_inflight(io), 0);
	reap_nothing(io, 0);
	close(sv[0]);
	close(sv[1]);
	io_done(io);
	pool_done(p);
}

/*
 * max_ops 2: two receives in flight, the third submission (and an
 * accept) -EAGAIN, its slab not held; rmpsc_io_cancel() of the tag the
 * two share asks for both (2), both complete -ECANCELED, and a new
 * submission is taken again.
 */
static void test_io_submit_when_max_ops_in_flight_returns_eagain(void **state)
{
	rmpsc_pool *p = pool_make(4096, 4);
	rmpsc_io_config c = io_cfg(p, 0);
	rmpsc_io *io;
	uint32_t h[3];
	rmpsc_io_cqe cq[2];
	uint16_t port;
	const int lfd = tcp_listen(&port);
	int sv[2], n = 0;

	(void)state;
	c.max_ops = 2;
	io = io_new(&c);
	unix_pair(sv);
	for (int i = 0; i < 3; i++)
		h[i] = palloc(p, 4096);
	assert_ret(rmpsc_io_recv(io, sv[0], h[0], 7, 0), 0);
	assert_ret(rmpsc_io_recv(io, sv[0], h[1], 7, 0), 0);
	assert_ret(rmpsc_io_recv(io, sv[0], h[2], 8, 0), -EAGAIN);
	assert_ret(rmpsc_io_read(io, sv[0], 0, h[2], 0, 8, RMPSC_IO_SUBMIT_MORE), -EAGAIN);
	assert_ret(rmpsc_io_accept(io, lfd, 8, 0), -EAGAIN);
	assert_ret(rmpsc_io_inflight(io), 2);
	payload_is(p, h[2], NULL, 0); /* not held */

	assert_ret(rmpsc_io_cancel(io, 7), 2);
	while (n < 2) {
		const int k = rmpsc_io_reap(io, cq + n, (uint32_t)(2 - n), HANG_NS);

		assert_true(k >= 1);
		n += k;
	}
	assert_true((cq[0].handle == h[0] && cq[1].handle == h[1]) ||
		    (cq[0].handle == h[1] && cq[1].handle == h[0]));
	for (int i = 0; i < 2; i++)
		cqe_expect(&cq[i], 7, RMPSC_IO_OP_RECV, cq[i].handle, -ECANCELED, 0);
	assert_ret(rmpsc_io_inflight(io), 0);
	assert_ret(rmpsc_io_recv(io, sv[0], h[2], 9, 0), 0);
	write_full(sv[1], "x", 1);
	cq[0] = reap1(io);
	cqe_expect(&cq[0], 9, RMPSC_IO_OP_RECV, h[2], 1, 0);
	assert_ret(rmpsc_pool_free_n(p, h, 3), 3);
	close(lfd);
	close(sv[0]);
	close(sv[1]);
	io_done(io);
	pool_done(p);
}

/*
 * RMPSC_IO_SUBMIT_MORE queues without entering the kernel: the request
 * counts in flight and holds its slab, but no completion comes (not even
 * after a wait) until rmpsc_io_submit() (which says it took 1), or until
 * a submission without the flag takes it along.
 */
static void test_io_submit_more_when_queued_completes_only_after_a_submit(void **state)
{
	rmpsc_pool *p = pool_make(4096, 4);
	rmpsc_io *io = io_plain(p, 0);
	const uint32_t h1 = palloc(p, 4096), h2 = palloc(p, 4096);
	rmpsc_io_cqe cq[2];
	struct tfile f;
	int n = 0;

	(void)state;
	tfile_make(&f, 16384, 6);
	assert_ret(rmpsc_io_submit(io), 0);
	assert_ret(rmpsc_io_read(io, f.fd, 4096, h1, 0, 21, RMPSC_IO_SUBMIT_MORE), 0);
	assert_ret(rmpsc_io_inflight(io), 1);
	assert_ret(rmpsc_pool_free(p, h1), -EBUSY);
	reap_nothing(io, 0);
	reap_nothing(io, 20 * MS);
	assert_ret(rmpsc_io_submit(io), 1);
	cq[0] = reap1(io);
	cqe_expect(&cq[0], 21, RMPSC_IO_OP_READ, h1, 4096, 0);
	payload_is(p, h1, f.data + 4096, 4096);

	/* Queued with MORE, then a submission without it: both go. */
	assert_ret(rmpsc_io_read(io, f.fd, 0, h1, 0, 22, RMPSC_IO_SUBMIT_MORE), 0);
	reap_nothing(io, 10 * MS);
	assert_ret(rmpsc_io_read(io, f.fd, 8192, h2, 0, 23, 0), 0);
	while (n < 2) {
		const int k = rmpsc_io_reap(io, cq + n, (uint32_t)(2 - n), HANG_NS);

		assert_true(k >= 1);
		n += k;
	}
	for (int i = 0; i < 2; i++) {
		const bool first = cq[i].tag == 22;

		cqe_expect(&cq[i], first ? 22 : 23, RMPSC_IO_OP_READ, first ? h1 : h2, 4096, 0);
		payload_is(p, cq[i].handle, f.data + (first ? 0 : 8192), 4096);
	}
	assert_true(cq[0].tag != cq[1].tag);
	assert_ret(rmpsc_io_submit(io), 0);
	assert_ret(rmpsc_pool_free(p, h1), 0);
	assert_ret(rmpsc_pool_free(p, h2), 0);
	io_done(io);
	pool_done(p);
	tfile_done(&f);
}

/* ---- write ------------------------------------------------------------------------ */

/* A payload written at an offset: the completion says its length, the
 * file has the bytes (pread), the payload length stays. */
static void test_io_write_when_payload_set_lands_in_the_file(void **state)
{
	rmpsc_pool *p = pool_make(8192, 2);
	rmpsc_io *io = io_plain(p, (uint32_t)test_param(state));
	const uint32_t h = palloc(p, 8192);
	unsigned char src[5000], back[5000];
	uint64_t s = 99;
	struct tfile f;
	rmpsc_io_cqe c;

	for (size_t i = 0; i < sizeof src; i++)
		src[i] = (unsigned char)xs_next(&s);
	tfile_make(&f, 4096, 1);
	payload_fill(p, h, src, sizeof src);
	assert_ret(rmpsc_io_write(io, f.fd, 3000, h, 31, 0), 0);
	expect_held(p, h);
	c = reap1(io);
	cqe_expect(&c, 31, RMPSC_IO_OP_WRITE, h, (int32_t)sizeof src, 0);
	payload_is(p, h, src, sizeof src);
	assert_ret(pread(f.fd, back, sizeof back, 3000), (ssize_t)sizeof back);
	assert_memory_equal(back, src, sizeof src);
	assert_ret(pread(f.fd, back, 3000, 0), 3000);
	assert_memory_equal(back, f.data, 3000); /* what was before, kept */
	assert_ret(rmpsc_pool_free(p, h), 0);
	io_done(io);
	pool_done(p);
	tfile_done(&f);
}

/* ---- completions into a ring ---------------------------------------------------- */

/*
 * An SPSC ring of 32-byte elements, no thread: rmpsc_io_run() delivers
 * the completions, the 8 bytes past the rmpsc_io_cqe zeroed (the slots
 * were dirtied first), then signals the notifier. rmpsc_io_reap() is
 * refused on such an engine; run without completions: -EAGAIN / -ETIMEDOUT.
 */
static void test_io_run_when_ring_of_32_byte_elements_delivers_zeroed_padding(void **state)
{
	rmpsc_pool *p = pool_make(4096, 4);
	rmpsc_ring *r = ring_make(8, 32, 0, 0);
	rmpsc_notifier *n = NULL;
	rmpsc_io_config c = io_cfg(p, 0);
	unsigned char item[32];
	uint32_t hs[3];
	rmpsc_io *io;
	struct tfile f;
	rmpsc_io_cqe cq;
	int nfd, got = 0;
	uint32_t seen = 0;

	(void)state;
	assert_ret(rmpsc_notifier_create(0, &n), 0);
	nfd = rmpsc_notifier_fd(n);
	memset(item, 0xee, sizeof item);
	for (int i = 0; i < 8; i++)
		assert_ret(rmpsc_ring_push(r, item), 0);
	for (int i = 0; i < 8; i++)
		assert_ret(rmpsc_ring_pop(r, item), 0);
	c.ring = r;
	c.notifier = n;
	io = io_new(&c);
	tfile_make(&f, 65536, 11);

	assert_ret(rmpsc_io_reap(io, &cq, 1, 0), -EINVAL);
	assert_ret(rmpsc_io_run(io, 8, 0), -EAGAIN);
	assert_ret(rmpsc_io_run(io, 8, 10 * MS), -ETIMEDOUT);
	assert_false(fd_readable(nfd, 0));
	for (uint32_t i = 0; i < 3; i++) {
		hs[i] = palloc(p, 4096);
		assert_ret(rmpsc_io_read(io, f.fd, (uint64_t)i * 4096, hs[i], 0, 100 + i, 0), 0);
	}
	while (got < 3) {
		const int k = rmpsc_io_run(io, 8, HANG_NS);

		if (k < 1)
			fail_msg("run = %d (%s) after %d completions", k, errname(k), got);
		assert_true(fd_readable(nfd, 0));
		assert_ret(rmpsc_notifier_consume(n), 1);
		for (int j = 0; j < k; j++) {
			uint64_t b;

			memset(item, 0x11, sizeof item);
			assert_ret(rmpsc_ring_pop(r, item), 0);
			memcpy(&cq, item, sizeof cq);
			for (size_t z = sizeof cq; z < sizeof item; z++)
				if (item[z] != 0)
					fail_msg("ring element byte %zu past the completion is %#x",
						 z, item[z]);
			b = cq.tag - 100;
			assert_true(b < 3 && !(seen & (1u << b)));
			seen |= 1u << b;
			cqe_expect(&cq, 100 + b, RMPSC_IO_OP_READ, hs[b], 4096, 0);
			payload_is(p, hs[b], f.data + b * 4096, 4096);
		}
		got += k;
	}
	assert_ret(rmpsc_ring_pop(r, item), -EAGAIN);
	assert_ret(rmpsc_io_inflight(io), 0);
	assert_ret(rmpsc_pool_free_n(p, hs, 3), 3);
	io_done(io);
	rmpsc_ring_destroy(r);
	rmpsc_notifier_destroy(n);
	pool_done(p);
	tfile_done(&f);
}

/*
 * A ring of capacity 2 and five completions: run delivers 2; with the
 * ring full, run returns 0 (completions reaped, no room) and loses none;
 * after each drain the next run delivers the rest; each tag once.
 */
static void test_io_run_when_ring_full_keeps_the_completion_for_the_next_run(void **state)
{
	rmpsc_pool *p = pool_make(4096, 8);
	rmpsc_ring *r = ring_make(2, sizeof(rmpsc_io_cqe), 0, 0);
	rmpsc_io_config c = io_cfg(p, 0);
	uint32_t hs[5], seen = 0, got = 0, rounds = 0;
	rmpsc_io *io;
	struct tfile f;

	(void)state;
	c.ring = r;
	io = io_new(&c);
	tfile_make(&f, 65536, 12);
	for (uint32_t i = 0; i < 5; i++) {
		hs[i] = palloc(p, 4096);
		assert_ret(rmpsc_io_read(io, f.fd, (uint64_t)i * 4096, hs[i], 0, 200 + i, 0), 0);
	}
	sleep_ns(50 * MS); /* page-cache reads: all five complete meanwhile */
	assert_ret(rmpsc_io_run(io, 16, HANG_NS), 2);
	assert_ret(rmpsc_ring_len(r), 2);
	assert_ret(rmpsc_io_run(io, 16, 0), 0);
	assert_ret(rmpsc_io_run(io, 16, 10 * MS), 0);
	while (got < 5) {
		rmpsc_io_cqe cq;
		int k;

		while (rmpsc_ring_pop(r, &cq) == 0) {
			const uint32_t b = (uint32_t)(cq.tag - 200);

			assert_true(b < 5 && !(seen & (1u << b)));
			seen |= 1u << b;
			cqe_expect(&cq, 200 + b, RMPSC_IO_OP_READ, hs[b], 4096, 0);
			payload_is(p, hs[b], f.data + (uint64_t)b * 4096, 4096);
			got++;
		}
		if (got == 5)
			break;
		k = rmpsc_io_run(io, 16, HANG_NS);
		if (k < 1 || k > 2)
			fail_msg("run = %d (%s) with an empty ring of 2 and %u completions left",
				 k, errname(k), 5 - got);
		assert_true(++rounds < 10);
	}
	assert_int_equal(seen, 31);
	assert_ret(rmpsc_io_run(io, 16, 0), -EAGAIN);
	assert_ret(rmpsc_io_inflight(io), 0);
	assert_ret(rmpsc_pool_free_n(p, hs, 5), 5);
	io_done(io);
	rmpsc_ring_destroy(r);
	pool_done(p);
	tfile_done(&f);
}

/*
 * A closed ring: run returns -EPIPE; destroy then gives the slab of the
 * completion never delivered back to the pool ("not delivered: their
 * slabs go back to the pool").
 */
static void test_io_run_when_ring_closed_returns_epipe_and_destroy_frees_the_slab(void **state)
{
	rmpsc_pool *p = pool_make(4096, 4);
	rmpsc_ring *r = ring_make(4, sizeof(rmpsc_io_cqe), 0, 0);
	rmpsc_io_config c = io_cfg(p, 0);
	const uint32_t h = palloc(p, 4096);
	rmpsc_io *io;
	struct tfile f;

	(void)state;
	c.ring = r;
	io = io_new(&c);
	tfile_make(&f, 8192, 13);
	assert_ret(rmpsc_ring_close(r), 0);
	assert_ret(rmpsc_io_read(io, f.fd, 0, h, 0, 1, 0), 0);
	assert_ret(rmpsc_io_run(io, 4, HANG_NS), -EPIPE);
	io_done(io);
	assert_ret(rmpsc_pool_free(p, h), -ESTALE);
	rmpsc_ring_destroy(r);
	pool_done(p);
	tfile_done(&f);
}

/* After the ring said -EPIPE, new requests are refused with -EPIPE instead
 * of piling up where nothing reaps them. */
static void test_io_submit_when_output_closed_returns_epipe(void **state)
{
	rmpsc_pool *p = pool_make(4096, 4);
	rmpsc_ring *r = ring_make(4, sizeof(rmpsc_io_cqe), 0, 0);
	rmpsc_io_config c = io_cfg(p, 0);
	const uint32_t h = palloc(p, 4096), h2 = palloc(p, 4096);
	rmpsc_io *io;
	struct tfile f;

	(void)state;
	c.ring = r;
	io = io_new(&c);
	tfile_make(&f, 8192, 14);
	assert_ret(rmpsc_ring_close(r), 0);
	assert_ret(rmpsc_io_read(io, f.fd, 0, h, 0, 1, 0), 0);
	assert_ret(rmpsc_io_run(io, 4, HANG_NS), -EPIPE);
	assert_ret(rmpsc_io_read(io, f.fd, 0, h2, 0, 2, 0), -EPIPE);
	assert_ret(rmpsc_pool_free(p, h2), 0); /* not held */
	io_done(io);
	rmpsc_ring_destroy(r);
	pool_done(p);
	tfile_done(&f);
}

/* A timeout of INT64_MAX is "very long", not an overflow: a completion
 * already there comes back at once (UBSan watches the arithmetic). */
static void test_io_reap_when_timeout_int64_max_returns_the_completion(void **state)
{
	rmpsc_pool *p = pool_make(4096, 2);
	rmpsc_io *io = io_plain(p, 0);
	const uint32_t h = palloc(p, 4096);
	rmpsc_io_cqe cq;
	struct tfile f;

	(void)state;
	tfile_make(&f, 4096, 15);
	assert_ret(rmpsc_io_read(io, f.fd, 0, h, 0, 3, 0), 0);
	assert_ret(rmpsc_io_reap(io, &cq, 1, INT64_MAX), 1);
	assert_int_equal(cq.result, 4096);
	assert_ret(rmpsc_pool_free(p, h), 0);
	io_done(io);
	pool_done(p);
	tfile_done(&f);
}

/* ---- the completion thread, an MPSC channel, submitters at once ---------------- */

enum { MT_SUBMITTERS = 3, MT_BLOCK = 4096 };

struct mt {
	rmpsc_io *io;
	rmpsc_pool *pool;
	rmpsc_mpsc *ch;
	rmpsc_notifier *n;
	const struct tfile *f;
	uint32_t reads, blocks;
	atomic_uint next;
	atomic_int stop;
	atomic_int failed;
	char msg[256];
	unsigned char *seen;
	uint32_t got, woken;
};

static uint64_t mt_block(const struct mt *m, uint64_t tag)
{
	return (tag * 7919u) % m->blocks;
}

static void mt_after(void *arg, int first)
{
	struct mt *m = arg;

	(void)first;
	atomic_store_explicit(&m->stop, 1, memory_order_release);
	(void)rmpsc_pool_close(m->pool); /* wake the allocations */
}

static void *mt_submitter(void *arg)
{
	struct mt *m = arg;

	for (;;) {
		const uint32_t i = atomic_fetch_add_explicit(&m->next, 1, memory_order_relaxed);
		uint32_t h = RMPSC_POOL_HANDLE_NONE;
		int rc;

		if (i >= m->reads || atomic_load_explicit(&m->stop, memory_order_acquire))
			break;
		rc = rmpsc_pool_alloc_timed(m->pool, MT_BLOCK, &h, HANG_NS, NULL);
		if (rc) {
			FAIL_RECORD(m, mt_after, "read %u: alloc_timed = %d (%s)", i, rc,
				    errname(rc));
			break;
		}
		while ((rc = rmpsc_io_read(m->io, m->f->fd, mt_block(m, i) * MT_BLOCK, h, MT_BLOCK,
					   i, 0)) == -EAGAIN)
			sched_yield();
		if (rc) {
			FAIL_RECORD(m, mt_after, "read %u: rmpsc_io_read = %d (%s)", i, rc,
				    errname(rc));
			break;
		}
	}
	return NULL;
}

static void *mt_consumer(void *arg)
{
	struct mt *m = arg;
	const int nfd = rmpsc_notifier_fd(m->n);
	const int64_t t0 = now_ns();
	unsigned char item[32];

	while (m->got < m->reads && !atomic_load_explicit(&m->stop, memory_order_acquire)) {
		int rc = rmpsc_mpsc_pop(m->ch, item, NULL);
		struct iovec v;
		rmpsc_io_cqe c;

		if (rc == -EAGAIN) {
			if (now_ns() - t0 > HANG_NS) {
				FAIL_RECORD(m, mt_after, "stalled after %u of %u completions",
					    m->got, m->reads);
				break;
			}
			if (fd_readable(nfd, 100)) {
				m->woken++;
				(void)rmpsc_notifier_consume(m->n);
			}
			continue;
		}
		if (rc) {
			FAIL_RECORD(m, mt_after, "mpsc_pop = %d (%s)", rc, errname(rc));
			break;
		}
		memcpy(&c, item, sizeof c);
		for (size_t z = sizeof c; z < sizeof item; z++)
			if (item[z]) {
				FAIL_RECORD(m, mt_after, "element byte %zu past the cqe is %#x", z,
					    item[z]);
				return NULL;
			}
		if (c.tag >= m->reads || m->seen[c.tag]) {
			FAIL_RECORD(m, mt_after, "tag %" PRIu64 " unknown or seen twice", c.tag);
			break;
		}
		m->seen[c.tag] = 1;
		m->got++;
		if (c.op != RMPSC_IO_OP_READ || c.result != MT_BLOCK || c.flags != 0 ||
		    c.handle == RMPSC_POOL_HANDLE_NONE) {
			FAIL_RECORD(m, mt_after, "tag %" PRIu64 ": op %u result %d flags %#x "
				    "handle %#x", c.tag, c.op, c.result, c.flags, c.handle);
			break;
		}
		rc = rmpsc_pool_payload(m->pool, c.handle, &v);
		if (rc || v.iov_len != MT_BLOCK ||
		    memcmp(v.iov_base, m->f->data + mt_block(m, c.tag) * MT_BLOCK, MT_BLOCK)) {
			FAIL_RECORD(m, mt_after, "tag %" PRIu64 ": payload %d (%s), %zu bytes, "
				    "or its bytes differ from the file", c.tag, rc, errname(rc),
				    v.iov_len);
			break;
		}
		rc = rmpsc_pool_free(m->pool, c.handle);
		if (rc) {
			FAIL_RECORD(m, mt_after, "free = %d (%s)", rc, errname(rc));
			break;
		}
	}
	return NULL;
}

static void join_bounded(pthread_t th, const char *what)
{
	struct timespec ts;
	int rc;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += HANG_NS / SEC + 10;
	rc = pthread_timedjoin_np(th, NULL, &ts);
	if (rc != 0)
		fail_msg("%s did not finish (join: %s)", what, strerror(rc));
}

static rmpsc_mpsc *mpsc_of(uint32_t elem_size, uint32_t cap)
{
	rmpsc_mpsc_config mc;
	rmpsc_mpsc *ch = SENTINEL_OF(rmpsc_mpsc);

	assert_ret(rmpsc_mpsc_config_init(&mc, sizeof mc), 0);
	mc.elem_size = elem_size;
	mc.ring_capacity = cap;
	assert_ret(rmpsc_mpsc_create(&mc, &ch), 0);
	return assert_handle(ch, SENTINEL_OF(rmpsc_mpsc));
}

/* THREAD: a request outlives the thread that submitted it (the engine's
 * thread enters the kernel with it; io_uring cancels a request whose
 * submitting thread exits). */
struct exiting {
	rmpsc_io *io;
	int fd;
	uint32_t h;
	int rc;
};

static void *exiting_submitter(void *arg)
{
	struct exiting *e = arg;

	e->rc = rmpsc_io_recv(e->io, e->fd, e->h, 42, 0);
	return NULL;
}

static void test_io_thread_when_submitter_exits_its_request_still_completes(void **state)
{
	rmpsc_pool *p = pool_make(4096, 2);
	rmpsc_mpsc *ch = mpsc_of(sizeof(rmpsc_io_cqe), 16);
	rmpsc_io_config c = io_cfg(p, RMPSC_IO_F_THREAD);
	struct exiting e = {.rc = 1};
	rmpsc_io_cqe cq;
	pthread_t th;
	int sv[2];

	(void)state;
	c.mpsc = ch;
	e.io = io_new(&c);
	unix_pair(sv);
	e.fd = sv[0];
	e.h = palloc(p, 4096);
	assert_int_equal(pthread_create(&th, NULL, exiting_submitter, &e), 0);
	join_bounded(th, "submitter");
	assert_ret(e.rc, 0);
	usleep(20000); /* the submitter is gone, the request waits for data */
	write_full(sv[1], "still here", 10);
	assert_ret(rmpsc_mpsc_pop_n_timed(ch, &cq, 1, HANG_NS, NULL), 1);
	assert_int_equal(cq.tag, 42);
	assert_int_equal(cq.result, 10);
	payload_is(p, e.h, "still here", 10);
	assert_ret(rmpsc_pool_free(p, e.h), 0);
	io_done(e.io);
	close(sv[0]);
	close(sv[1]);
	rmpsc_mpsc_destroy(ch);
	pool_done(p);
}

/* THREAD with EVENTFD is refused: the kernel would signal before the
 * thread delivers. */
static void test_io_create_when_thread_and_eventfd_returns_einval(void **state)
{
	rmpsc_pool *p = pool_make(4096, 2);
	rmpsc_mpsc *ch = mpsc_of(sizeof(rmpsc_io_cqe), 16);
	rmpsc_notifier *n = NULL;
	rmpsc_io_config c = io_cfg(p, RMPSC_IO_F_THREAD | RMPSC_IO_F_EVENTFD);
	rmpsc_io *io = SENTINEL_OF(rmpsc_io);

	(void)state;
	assert_ret(rmpsc_notifier_create(0, &n), 0);
	c.mpsc = ch;
	c.notifier = n;
	assert_ret(rmpsc_io_create(&c, &io), -EINVAL);
	assert_null(io);
	rmpsc_notifier_destroy(n);
	rmpsc_mpsc_destroy(ch);
	pool_done(p);
}

/* An engine destroyed while another thread destroys its pool with FORCE:
 * whichever goes first, nothing touches freed memory (ASan) and nothing
 * hangs, over many rounds with a receive pending. */
struct race_pd {
	rmpsc_pool *p;
	atomic_int go;
	int rc;
};

static void *race_pool_destroy(void *arg)
{
	struct race_pd *r = arg;

	while (!atomic_load(&r->go))
		;
	r->rc = rmpsc_pool_destroy(r->p, RMPSC_POOL_DESTROY_FORCE, NULL);
	return NULL;
}

static void test_io_destroy_when_racing_a_forced_pool_destroy_is_safe(void **state)
{
	const int rounds = STRESS_SCALE(300, 60, 30);

	(void)state;
	for (int i = 0; i < rounds; i++) {
		struct race_pd r = {.p = pool_make(4096, 4)};
		rmpsc_io_config c = io_cfg(r.p, (i & 1) ? RMPSC_IO_F_THREAD : 0);
		rmpsc_mpsc *ch = (i & 1) ? mpsc_of(sizeof(rmpsc_io_cqe), 16) : NULL;
		const uint32_t h = palloc(r.p, 4096);
		uint64_t leaked = 77;
		rmpsc_io *io;
		pthread_t th;
		int sv[2];

		c.mpsc = ch;
		io = io_new(&c);
		unix_pair(sv);
		assert_ret(rmpsc_io_recv(io, sv[0], h, 1, 0), 0);
		assert_int_equal(pthread_create(&th, NULL, race_pool_destroy, &r), 0);
		atomic_store(&r.go, 1);
		assert_ret(rmpsc_io_destroy(io, &leaked), 0);
		assert_int_equal(leaked, 0);
		join_bounded(th, "pool destroy");
		assert_ret(r.rc, 0);
		close(sv[0]);
		close(sv[1]);
		rmpsc_mpsc_destroy(ch);
	}
}

/*
 * THREAD with an MPSC channel of 32-byte elements and a notifier: three
 * threads submit reads of 4 KiB blocks at once (rmpsc_io_read from any
 * thread), another pops the completions, checks the bytes and frees the
 * slabs the submitters allocate again: every tag exactly once.
 */
static void test_io_thread_when_submitters_read_at_once_every_tag_arrives_once(void **state)
{
	static struct mt m;
	static struct tfile f;
	pthread_t th[MT_SUBMITTERS + 1];
	rmpsc_io_config c;

	(void)state;
	memset(&m, 0, sizeof m);
	atomic_init(&m.next, 0);
	atomic_init(&m.stop, 0);
	atomic_init(&m.failed, 0);
	tfile_make(&f, MIB, 21);
	m.f = &f;
	m.blocks = (uint32_t)(f.size / MT_BLOCK);
	m.reads = STRESS_SCALE(2000, 2000, 600);
	m.seen = calloc(m.reads, 1);
	assert_non_null(m.seen);
	m.pool = pool_make(MT_BLOCK, 32);
	m.ch = mpsc_of(32, 64);
	assert_ret(rmpsc_notifier_create(0, &m.n), 0);
	c = io_cfg(m.pool, RMPSC_IO_F_THREAD);
	c.mpsc = m.ch;
	c.notifier = m.n;
	m.io = io_new(&c);
	assert_ret(rmpsc_io_reap(m.io, &(rmpsc_io_cqe){ 0 }, 1, 0), -EINVAL);
	assert_ret(rmpsc_io_run(m.io, 1, 0), -EINVAL);

	assert_ret(pthread_create(&th[MT_SUBMITTERS], NULL, mt_consumer, &m), 0);
	for (int i = 0; i < MT_SUBMITTERS; i++)
		assert_ret(pthread_create(&th[i], NULL, mt_submitter, &m), 0);
	for (int i = 0; i < MT_SUBMITTERS; i++)
		join_bounded(th[i], "a submitter");
	join_bounded(th[MT_SUBMITTERS], "the consumer");
	if (atomic_load_explicit(&m.failed, memory_order_acquire))
		fail_msg("%s", m.msg);
	assert_int_equal(m.got, m.reads);
	print_message("  %u reads from %d threads, the consumer woken %u times by the notifier\n",
		      m.reads, MT_SUBMITTERS, m.woken);
	assert_ret(rmpsc_io_inflight(m.io), 0);
	io_done(m.io);
	pool_done(m.pool);
	rmpsc_mpsc_destroy(m.ch);
	rmpsc_notifier_destroy(m.n);
	free(m.seen);
	tfile_done(&f);
}

/*
 * THREAD with a notifier, completions into an MPSC channel (param 0) or an
 * SPSC ring (param 1): after a read completes, the notifier's fd polls
 * readable, and the completion is in the output by then ("signalled
 * after completions are delivered").
 */
static void test_io_thread_when_notifier_given_its_fd_is_readable_after_a_completion(
	void **state)
{
	const bool ring = test_param(state) != 0;
	rmpsc_pool *p = pool_make(4096, 4);
	rmpsc_mpsc *ch = ring ? NULL : mpsc_of(sizeof(rmpsc_io_cqe), 16);
	rmpsc_ring *r = ring ? ring_make(4, sizeof(rmpsc_io_cqe), 0, 0) : NULL;
	rmpsc_notifier *n = NULL;
	rmpsc_io_config c = io_cfg(p, RMPSC_IO_F_THREAD);
	uint32_t h[2];
	rmpsc_io_cqe cq;
	struct tfile f;
	rmpsc_io *io;
	int nfd;

	assert_ret(rmpsc_notifier_create(0, &n), 0);
	nfd = rmpsc_notifier_fd(n);
	c.mpsc = ch;
	c.ring = r;
	c.notifier = n;
	io = io_new(&c);
	tfile_make(&f, 16384, 22);
	for (int i = 0; i < 2; i++) {
		h[i] = palloc(p, 4096);
		assert_false(fd_readable(nfd, 20));
		assert_ret(rmpsc_io_read(io, f.fd, (uint64_t)i * 4096, h[i], 0, 300 + i, 0), 0);
		if (!fd_readable(nfd, HANG_MS))
			fail_msg("the notifier's fd was not readable after read %d completed", i);
		assert_true(rmpsc_notifier_consume(n) >= 1);
		memset(&cq, 0xa5, sizeof cq);
		assert_ret(ring ? rmpsc_ring_pop(r, &cq) : rmpsc_mpsc_pop(ch, &cq, NULL), 0);
		cqe_expect(&cq, 300 + (uint64_t)i, RMPSC_IO_OP_READ, h[i], 4096, 0);
		payload_is(p, h[i], f.data + (uint64_t)i * 4096, 4096);
		assert_ret(ring ? rmpsc_ring_pop(r, &cq) : rmpsc_mpsc_pop(ch, &cq, NULL), -EAGAIN);
	}
	assert_ret(rmpsc_pool_free_n(p, h, 2), 2);
	io_done(io);
	rmpsc_mpsc_destroy(ch);
	rmpsc_ring_destroy(r);
	rmpsc_notifier_destroy(n);
	pool_done(p);
	tfile_done(&f);
}

/*
 * THREAD, an output ring of one slot that nobody pops, three reads: one
 * completion lands in the ring, the thread waits with the next. Destroy
 * still returns (0, nothing leaked); the two completions never delivered
 * give their slabs back to the pool (their handles dead), the one in the
 * ring is the caller's.
 */
static void test_io_destroy_thread_when_output_ring_full_returns_the_undelivered_slabs(
	void **state)
{
	rmpsc_pool *p = pool_make(4096, 4);
	rmpsc_ring *r = ring_make(1, sizeof(rmpsc_io_cqe), 0, 0);
	rmpsc_io_config c = io_cfg(p, RMPSC_IO_F_THREAD);
	const int64_t t0 = now_ns();
	uint32_t h[3], k;
	rmpsc_io_cqe cq;
	struct tfile f;
	rmpsc_io *io;

	(void)state;
	c.ring = r;
	io = io_new(&c);
	tfile_make(&f, 16384, 23);
	for (uint32_t i = 0; i < 3; i++) {
		h[i] = palloc(p, 4096);
		assert_ret(rmpsc_io_read(io, f.fd, (uint64_t)i * 4096, h[i], 0, 700 + i, 0), 0);
	}
	while (rmpsc_ring_len(r) < 1) {
		if (now_ns() - t0 > HANG_NS)
			fail_msg("no completion reached the ring");
		sleep_ns(MS);
	}
	sleep_ns(30 * MS); /* the other two complete, the thread waits for room */
	io_done(io);
	assert_ret(rmpsc_pool_available(p), 3);
	assert_ret(rmpsc_ring_pop(r, &cq), 0);
	k = (uint32_t)(cq.tag - 700);
	assert_true(k < 3);
	cqe_expect(&cq, 700 + k, RMPSC_IO_OP_READ, h[k], 4096, 0);
	payload_is(p, h[k], f.data + (uint64_t)k * 4096, 4096);
	for (uint32_t i = 0; i < 3; i++)
		assert_ret(rmpsc_pool_free(p, h[i]), i == k ? 0 : -ESTALE);
	assert_ret(rmpsc_ring_pop(r, &cq), -EAGAIN);
	rmpsc_ring_destroy(r);
	pool_done(p);
	tfile_done(&f);
}

/*
 * THREAD and a channel closed under it: the thread cannot deliver
 * (-EPIPE); destroy still returns 0 with nothing leaked and every slab
 * back in the pool.
 */
static void test_io_thread_when_channel_closed_destroy_returns_every_slab(void **state)
{
	rmpsc_pool *p = pool_make(4096, 4);
	rmpsc_mpsc *ch = mpsc_of(sizeof(rmpsc_io_cqe), 16);
	rmpsc_io_config c = io_cfg(p, RMPSC_IO_F_THREAD);
	rmpsc_io_cqe cq;
	uint32_t h[2];
	struct tfile f;
	rmpsc_io *io;
	int second;

	(void)state;
	c.mpsc = ch;
	io = io_new(&c);
	tfile_make(&f, 16384, 24);
	assert_ret(rmpsc_mpsc_close(ch), 0);
	h[0] = palloc(p, 4096);
	h[1] = palloc(p, 4096);
	assert_ret(rmpsc_io_read(io, f.fd, 0, h[0], 0, 800, 0), 0);
	/* Once the thread has met the closed channel, requests are refused
	 * (-EPIPE) and the slab stays the caller's. */
	second = rmpsc_io_read(io, f.fd, 4096, h[1], 0, 801, 0);
	assert_true(second == 0 || second == -EPIPE);
	sleep_ns(30 * MS);
	assert_ret(rmpsc_io_read(io, f.fd, 4096, h[1], 0, 802, 0), -EPIPE);
	io_done(io);
	assert_ret(rmpsc_mpsc_pop(ch, &cq, NULL), -EPIPE);
	assert_ret(rmpsc_pool_free(p, h[0]), -ESTALE);
	assert_ret(rmpsc_pool_free(p, h[1]), second ? 0 : -ESTALE);
	rmpsc_mpsc_destroy(ch);
	pool_done(p);
	tfile_done(&f);
}

/* ---- accept, send, recv ------------------------------------------------------------ */

/*
 * Loopback TCP: an accept's completion carries the new socket (handle
 * NONE, close-on-exec, connected to the client); a send of a payload
 * (result its length, the length kept) arrives at the client, and a
 * receive into a slab gets what the client writes.
 */
static void test_io_accept_send_recv_when_tcp_loopback_move_the_bytes(void **state)
{
	rmpsc_pool *p = pool_make(16384, 4);
	rmpsc_io *io = io_plain(p, 0);
	const uint32_t hs = palloc(p, 16384), hr = palloc(p, 16384);
	unsigned char src[3000], back[3000];
	struct sockaddr_in a, b;
	socklen_t al = sizeof a, bl = sizeof b;
	uint64_t s = 7;
	uint16_t port;
	const int lfd = tcp_listen(&port);
	int cfd, afd;
	rmpsc_io_cqe c;

	(void)state;
	for (size_t i = 0; i < sizeof src; i++)
		src[i] = (unsigned char)xs_next(&s);
	assert_ret(rmpsc_io_accept(io, lfd, 41, 0), 0);
	assert_ret(rmpsc_io_inflight(io), 1);
	cfd = tcp_connect(port);
	c = reap1(io);
	if (c.result < 0)
		fail_msg("accept completed with %d (%s)", c.result, errname(c.result));
	afd = c.result;
	cqe_expect(&c, 41, RMPSC_IO_OP_ACCEPT, RMPSC_POOL_HANDLE_NONE, afd, 0);
	assert_true(fcntl(afd, F_GETFD) & FD_CLOEXEC);
	assert_ret(getpeername(afd, (struct sockaddr *)&a, &al), 0);
	assert_ret(getsockname(cfd, (struct sockaddr *)&b, &bl), 0);
	assert_int_equal(a.sin_port, b.sin_port);

	payload_fill(p, hs, src, sizeof src);
	assert_ret(rmpsc_io_send(io, afd, hs, 42, 0), 0);
	c = reap1(io);
	cqe_expect(&c, 42, RMPSC_IO_OP_SEND, hs, (int32_t)sizeof src, 0);
	payload_is(p, hs, src, sizeof src);
	read_full(cfd, back, sizeof back);
	assert_memory_equal(back, src, sizeof src);

	assert_ret(rmpsc_io_recv(io, afd, hr, 43, 0), 0);
	write_full(cfd, "ping", 4);
	c = reap1(io);
	cqe_expect(&c, 43, RMPSC_IO_OP_RECV, hr, 4, 0);
	payload_is(p, hr, "ping", 4);

	/* The peer closes: a receive completes with 0. */
	close(cfd);
	assert_ret(rmpsc_io_recv(io, afd, hr, 44, 0), 0);
	c = reap1(io);
	cqe_expect(&c, 44, RMPSC_IO_OP_RECV, hr, 0, 0);
	assert_ret(rmpsc_pool_free(p, hs), 0);
	assert_ret(rmpsc_pool_free(p, hr), 0);
	close(afd);
	close(lfd);
	io_done(io);
	pool_done(p);
}

/*
 * SEND_ZC on loopback TCP: the slab is held until the one completion,
 * which carries RMPSC_IO_CQE_F_ZC, the bytes sent and (loopback copies)
 * RMPSC_IO_CQE_F_COPIED where the kernel reports usage; no second
 * completion follows; the client gets the bytes.
 */
static void test_io_send_zc_when_tcp_loopback_completes_once_with_zc_and_copied(void **state)
{
	rmpsc_pool *p = pool_make(16384, 2);
	rmpsc_io *io = io_plain(p, (uint32_t)test_param(state));
	const uint32_t h = palloc(p, 16384);
	const int64_t feat = rmpsc_uring_features();
	static unsigned char src[10000], back[10000];
	uint64_t s = 8;
	uint16_t port;
	const int lfd = tcp_listen(&port);
	const int cfd = tcp_connect(port);
	const int afd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	rmpsc_io_cqe c;
	uint32_t want;

	assert_true(afd >= 0);
	assert_true(feat > 0 && (feat & RMPSC_URING_HAS_SEND_ZC));
	want = RMPSC_IO_CQE_F_ZC | (feat & RMPSC_URING_HAS_ZC_REPORT_USAGE ? RMPSC_IO_CQE_F_COPIED
									   : 0);
	for (size_t i = 0; i < sizeof src; i++)
		src[i] = (unsigned char)xs_next(&s);
	payload_fill(p, h, src, sizeof src);
	assert_ret(rmpsc_io_send(io, afd, h, 51, RMPSC_IO_SEND_ZC), 0);
	expect_held(p, h);
	assert_ret(rmpsc_io_send(io, afd, h, 52, RMPSC_IO_SEND_ZC), -EBUSY);
	c = reap1(io);
	cqe_expect(&c, 51, RMPSC_IO_OP_SEND, h, (int32_t)sizeof src, want);
	reap_nothing(io, 50 * MS);
	assert_ret(rmpsc_io_inflight(io), 0);
	read_full(cfd, back, sizeof back);
	assert_memory_equal(back, src, sizeof src);
	payload_is(p, h, src, sizeof src);
	assert_ret(rmpsc_pool_free(p, h), 0);
	close(afd);
	close(cfd);
	close(lfd);
	io_done(io);
	pool_done(p);
}

/* SEND_ZC on an AF_UNIX socketpair: one completion, -EOPNOTSUPP, with
 * RMPSC_IO_CQE_F_ZC (the notification still came), the handle freeable. */
static void test_io_send_zc_when_af_unix_completes_once_with_eopnotsupp(void **state)
{
	rmpsc_pool *p = pool_make(4096, 2);
	rmpsc_io *io = io_plain(p, 0);
	const uint32_t h = palloc(p, 4096);
	rmpsc_io_cqe c;
	int sv[2];

	(void)state;
	unix_pair(sv);
	payload_fill(p, h, "zero-copy?", 10);
	assert_ret(rmpsc_io_send(io, sv[0], h, 61, RMPSC_IO_SEND_ZC), 0);
	c = reap1(io);
	if (c.result != -EOPNOTSUPP)
		fail_msg("SEND_ZC on AF_UNIX completed with %d (%s), expected -EOPNOTSUPP",
			 c.result, errname(c.result));
	assert_true(c.flags & RMPSC_IO_CQE_F_ZC);
	assert_false(c.flags & RMPSC_IO_CQE_F_MORE);
	cqe_expect(&c, 61, RMPSC_IO_OP_SEND, h, -EOPNOTSUPP, c.flags);
	reap_nothing(io, 50 * MS);
	assert_ret(rmpsc_io_inflight(io), 0);
	assert_ret(rmpsc_pool_free(p, h), 0);
	close(sv[0]);
	close(sv[1]);
	io_done(io);
	pool_done(p);
}

/* A send whose peer has gone: the completion says -EPIPE, and no SIGPIPE
 * kills the process (MSG_NOSIGNAL); the payload stays. */
static void test_io_send_when_peer_closed_completes_with_epipe_without_sigpipe(void **state)
{
	rmpsc_pool *p = pool_make(4096, 2);
	rmpsc_io *io = io_plain(p, 0);
	const uint32_t h = palloc(p, 4096);
	rmpsc_io_cqe c;
	int sv[2];

	(void)state;
	unix_pair(sv);
	close(sv[1]);
	payload_fill(p, h, "nobody", 6);
	assert_ret(rmpsc_io_send(io, sv[0], h, 65, 0), 0);
	c = reap1(io);
	cqe_expect(&c, 65, RMPSC_IO_OP_SEND, h, -EPIPE, 0);
	payload_is(p, h, "nobody", 6);
	assert_ret(rmpsc_pool_free(p, h), 0);
	close(sv[0]);
	io_done(io);
	pool_done(p);
}

/* ---- multishot receive ---------------------------------------------------------- */

static unsigned char ms_byte(uint64_t pos)
{
	return (unsigned char)(pos * 131u ^ pos >> 9 ^ pos >> 17);
}

struct ms_writer {
	int fd;
	uint64_t total;
	int err;
};

/* Write @total bytes of the pattern, then close: the end of the stream. */
static void *ms_write(void *arg)
{
	struct ms_writer *w = arg;
	static unsigned char buf[64 * 1024];
	uint64_t pos = 0;

	while (pos < w->total) {
		const size_t n = w->total - pos < sizeof buf ? (size_t)(w->total - pos) : sizeof buf;
		size_t put = 0;

		for (size_t i = 0; i < n; i++)
			buf[i] = ms_byte(pos + i);
		while (put < n) {
			const ssize_t k = write(w->fd, buf + put, n - put);

			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0) {
				w->err = errno;
				close(w->fd);
				return NULL;
			}
			put += (size_t)k;
		}
		pos += n;
	}
	close(w->fd);
	return NULL;
}

static rmpsc_io *io_recv_buffers(rmpsc_pool *p, uint32_t n)
{
	rmpsc_io_config c = io_cfg(p, 0);

	c.recv_buffers = n;
	return io_new(&c);
}

enum { MS_SLABS = 8, MS_BUFFERS = 4, MS_PAUSES = 4 };

/* Up to 16 completions within @timeout: reaped, or popped from @ch (the
 * engine's thread delivers there); -EAGAIN / -ETIMEDOUT when none. */
static int ms_next(rmpsc_io *io, rmpsc_mpsc *ch, rmpsc_io_cqe *cq, int64_t timeout)
{
	if (!ch)
		return rmpsc_io_reap(io, cq, 16, timeout);
	if (!timeout)
		return rmpsc_mpsc_pop_n(ch, cq, 16);
	return rmpsc_mpsc_pop_n_timed(ch, cq, 16, timeout, NULL);
}

/*
 * Multishot receive into four provided 4 KiB buffers of an 8-slab pool: a
 * writer thread sends a known pattern, the consumer reassembles it in
 * order from the completions (F_MORE, a handle each, payload length =
 * result). Four times it keeps every slab of the pool: the buffers run
 * dry (recv_posted 0), the kernel ends the request with -ENOBUFS, and no
 * completion comes for that; once the slabs are freed the engine arms the
 * request again and the stream goes on, no byte lost. Closing the writer
 * gives the last completion: handle NONE, result 0, no F_MORE.
 * Param 0: no thread, rmpsc_io_reap(); param 1: THREAD, completions popped
 * from an MPSC channel (the engine's thread must notice the freed slabs
 * by itself).
 */
static void test_io_recv_multishot_when_buffers_run_dry_rearms_and_loses_nothing(void **state)
{
	static struct ms_writer w;
	const bool thread = test_param(state) != 0;
	rmpsc_pool *p = pool_make(4096, MS_SLABS);
	rmpsc_mpsc *ch = thread ? mpsc_of(sizeof(rmpsc_io_cqe), 64) : NULL;
	rmpsc_io_config cfg = io_cfg(p, thread ? RMPSC_IO_F_THREAD : 0);
	rmpsc_io *io;
	uint32_t held[MS_SLABS], nheld = 0, pauses = 0, completions = 0;
	uint64_t pos = 0, next_dry;
	rmpsc_io_cqe cq[16];
	rmpsc_io_info info;
	bool hold = false, ended = false;
	pthread_t th;
	int sv[2];

	cfg.recv_buffers = MS_BUFFERS;
	cfg.mpsc = ch;
	io = io_new(&cfg);
	unix_pair(sv);
	w.fd = sv[1];
	w.total = STRESS_SCALE(4, 4, 1) * MIB;
	w.err = 0;
	next_dry = w.total / (MS_PAUSES + 1);
	assert_ret(rmpsc_io_get_info(io, &info, sizeof info), 0);
	assert_int_equal(info.recv_posted, MS_BUFFERS);
	assert_ret(rmpsc_io_recv_multishot(io, sv[0], 0x5157, 0), 0);
	assert_ret(rmpsc_io_inflight(io), 1);
	assert_ret(pthread_create(&th, NULL, ms_write, &w), 0);
	while (!ended) {
		const int n = ms_next(io, ch, cq, HANG_NS);

		if (n < 1)
			fail_msg("reap = %d (%s) at byte %" PRIu64 " of %" PRIu64, n, errname(n),
				 pos, w.total);
		for (int k = 0; k < n; k++) {
			const rmpsc_io_cqe *c = &cq[k];
			struct iovec v;

			if (ended)
				fail_msg("a completion after the last one");
			assert_int_equal(c->tag, 0x5157);
			assert_int_equal(c->op, RMPSC_IO_OP_RECV_MULTISHOT);
			completions++;
			if (!(c->flags & RMPSC_IO_CQE_F_MORE)) {
				cqe_expect(c, 0x5157, RMPSC_IO_OP_RECV_MULTISHOT,
					   RMPSC_POOL_HANDLE_NONE, 0, 0);
				ended = true;
				continue;
			}
			assert_int_equal(c->flags, RMPSC_IO_CQE_F_MORE);
			if (c->handle == RMPSC_POOL_HANDLE_NONE || c->result <= 0)
				fail_msg("a completion with F_MORE: handle %#x result %d (%s)",
					 c->handle, c->result, errname(c->result));
			assert_ret(rmpsc_pool_get_len(p, c->handle), c->result);
			assert_ret(rmpsc_pool_payload(p, c->handle, &v), 0);
			for (int32_t i = 0; i < c->result; i++)
				if (((unsigned char *)v.iov_base)[i] != ms_byte(pos + (uint64_t)i))
					fail_msg("byte %" PRIu64 " of the stream differs",
						 pos + (uint64_t)i);
			pos += (uint64_t)c->result;
			assert_true(pos <= w.total);
			assert_true(nheld < MS_SLABS);
			held[nheld++] = c->handle;
			if (!hold && pauses < MS_PAUSES && pos >= next_dry)
				hold = true;
			if (hold && nheld == MS_SLABS) {
				/* Every slab is ours: the buffers are dry. */
				assert_true(pos < w.total);
				assert_ret(rmpsc_pool_available(p), 0);
				assert_ret(rmpsc_io_get_info(io, &info, sizeof info), 0);
				assert_int_equal(info.recv_posted, 0);
				assert_ret(ms_next(io, ch, cq, 30 * MS), -ETIMEDOUT);
				assert_ret(rmpsc_io_inflight(io), 1);
				pauses++;
				hold = false;
				next_dry += w.total / (MS_PAUSES + 1);
			}
			if (!hold && (nheld >= 2 || pos == w.total)) {
				assert_ret(rmpsc_pool_free_n(p, held, nheld), (int)nheld);
				nheld = 0;
			}
		}
	}
	join_bounded(th, "the writer");
	assert_int_equal(w.err, 0);
	assert_int_equal(pos, w.total);
	assert_int_equal(pauses, MS_PAUSES);
	assert_ret(rmpsc_pool_free_n(p, held, nheld), (int)nheld);
	print_message("  %" PRIu64 " bytes in %u completions, %u dry pauses\n", pos, completions,
		      pauses);
	assert_ret(ms_next(io, ch, cq, 0), -EAGAIN);
	assert_ret(rmpsc_io_inflight(io), 0);
	close(sv[0]);
	io_done(io);
	rmpsc_mpsc_destroy(ch);
	pool_done(p);
}

/* Without recv_buffers in the config: -EOPNOTSUPP, nothing in flight. */
static void test_io_recv_multishot_when_no_recv_buffers_returns_eopnotsupp(void **state)
{
	rmpsc_pool *p = pool_make(4096, 4);
	rmpsc_io *io = io_plain(p, 0);
	rmpsc_io *io2 = io_recv_buffers(p, 2);
	int sv[2];

	(void)state;
	unix_pair(sv);
	assert_ret(rmpsc_io_recv_multishot(io, sv[0], 1, 0), -EOPNOTSUPP);
	assert_ret(rmpsc_io_inflight(io), 0);
	assert_ret(rmpsc_io_recv_multishot(io2, -1, 1, 0), -EINVAL);
	assert_ret(rmpsc_io_recv_multishot(io2, sv[0], 1, 1u << 2), -EINVAL);
	assert_ret(rmpsc_io_inflight(io2), 0);
	close(sv[0]);
	close(sv[1]);
	io_done(io);
	io_done(io2);
	pool_done(p);
}

/* ---- cancel ------------------------------------------------------------------------ */

/* A receive on an idle socket: cancel returns 1, the completion is
 * -ECANCELED with the handle, freeable; an unknown tag: 0. */
static void test_io_cancel_when_recv_idle_completes_with_ecanceled(void **state)
{
	rmpsc_pool *p = pool_make(4096, 4);
	rmpsc_io *io = io_plain(p, 0);
	const uint32_t h = palloc(p, 4096);
	const uint64_t tag = 0x8000000000000001ull;
	rmpsc_io_cqe c;
	int sv[2];

	(void)state;
	unix_pair(sv);
	assert_ret(rmpsc_io_cancel(io, 999), 0);
	assert_ret(rmpsc_io_recv(io, sv[0], h, tag, 0), 0);
	assert_ret(rmpsc_io_cancel(io, tag - 1), 0);
	assert_ret(rmpsc_io_cancel(io, tag), 1);
	c = reap1(io);
	cqe_expect(&c, tag, RMPSC_IO_OP_RECV, h, -ECANCELED, 0);
	assert_ret(rmpsc_io_inflight(io), 0);
	assert_ret(rmpsc_io_cancel(io, tag), 0);
	reap_nothing(io, 10 * MS);
	assert_ret(rmpsc_pool_free(p, h), 0);
	close(sv[0]);
	close(sv[1]);
	io_done(io);
	pool_done(p);
}

/*
 * A multishot receive cancelled, with data flowing (param 0) or while its
 * buffers are dry and it waits to be armed again (param 1: every slab is
 * held, no request in the kernel): cancel asks for it (1), data
 * completions may still come with F_MORE, then the last one (handle
 * NONE, no F_MORE, -ECANCELED or 0).
 */
static void test_io_cancel_when_multishot_recv_ends_it(void **state)
{
	const bool dry = test_param(state) != 0;
	static unsigned char blob[64 * 1024];
	rmpsc_pool *p = pool_make(4096, 8);
	rmpsc_io *io = io_recv_buffers(p, 4);
	uint32_t held[8], nheld = 0;
	rmpsc_io_cqe c;
	bool ended = false;
	int sv[2], data = 0;

	unix_pair(sv);
	assert_ret(rmpsc_io_recv_multishot(io, sv[0], 71, 0), 0);
	write_full(sv[1], "abc", 3);
	c = reap1(io);
	cqe_expect(&c, 71, RMPSC_IO_OP_RECV_MULTISHOT, c.handle, 3, RMPSC_IO_CQE_F_MORE);
	payload_is(p, c.handle, "abc", 3);
	assert_ret(rmpsc_pool_free(p, c.handle), 0);
	if (dry) {
		write_full(sv[1], blob, sizeof blob);
		while (nheld < 8) {
			c = reap1(io);
			cqe_expect(&c, 71, RMPSC_IO_OP_RECV_MULTISHOT, c.handle, c.result,
				   RMPSC_IO_CQE_F_MORE);
			held[nheld++] = c.handle;
		}
		reap_nothing(io, 30 * MS); /* dry: the -ENOBUFS end seen, no completion */
		assert_ret(rmpsc_io_inflight(io), 1);
	}
	assert_ret(rmpsc_io_cancel(io, 71), 1);
	while (!ended) {
		c = reap1(io);
		assert_int_equal(c.tag, 71);
		if (c.flags & RMPSC_IO_CQE_F_MORE) {
			assert_false(dry);
			assert_true(++data < 4);
			assert_ret(rmpsc_pool_free(p, c.handle), 0);
			continue;
		}
		if (c.result != -ECANCELED && c.result != 0)
			fail_msg("the last completion of a cancelled multishot: %d (%s)",
				 c.result, errname(c.result));
		cqe_expect(&c, 71, RMPSC_IO_OP_RECV_MULTISHOT, RMPSC_POOL_HANDLE_NONE, c.result,
			   0);
		ended = true;
	}
	assert_ret(rmpsc_io_inflight(io), 0);
	assert_ret(rmpsc_pool_free_n(p, held, nheld), (int)nheld);
	reap_nothing(io, 10 * MS);
	assert_ret(rmpsc_io_cancel(io, 71), 0);
	close(sv[0]);
	close(sv[1]);
	io_done(io);
	pool_done(p);
}

/* ---- destroy ------------------------------------------------------------------------ */

enum { PENDING = 4 };

/* An engine with @PENDING receives on idle sockets (THREAD and an MPSC
 * channel when @thread). */
struct pend {
	rmpsc_pool *p;
	rmpsc_mpsc *ch;
	rmpsc_io *io;
	uint32_t h[PENDING];
	int sv[PENDING][2];
};

static void pend_start(struct pend *x, bool thread, int64_t drain)
{
	rmpsc_io_config c;

	x->p = pool_make(4096, 8);
	x->ch = thread ? mpsc_of(sizeof(rmpsc_io_cqe), 16) : NULL;
	c = io_cfg(x->p, thread ? RMPSC_IO_F_THREAD : 0);
	c.mpsc = x->ch;
	c.drain_timeout_ns = drain;
	x->io = io_new(&c);
	for (int i = 0; i < PENDING; i++) {
		unix_pair(x->sv[i]);
		x->h[i] = palloc(x->p, 4096);
		assert_ret(rmpsc_io_recv(x->io, x->sv[i][0], x->h[i], 500 + (uint64_t)i, 0), 0);
	}
	assert_ret(rmpsc_io_inflight(x->io), PENDING);
	for (int i = 0; i < PENDING; i++)
		assert_ret(rmpsc_pool_free(x->p, x->h[i]), -EBUSY);
}

static void pend_close(struct pend *x)
{
	for (int i = 0; i < PENDING; i++) {
		close(x->sv[i][0]);
		close(x->sv[i][1]);
	}
	rmpsc_mpsc_destroy(x->ch);
}

/*
 * Destroy with receives pending (no thread, THREAD): 0, nothing leaked,
 * every slab back in the pool (the handles dead: -ESTALE).
 */
static void test_io_destroy_when_recvs_pending_returns_0_and_every_slab_back(void **state)
{
	struct pend x;
	uint64_t leaked = 77;

	pend_start(&x, test_param(state) != 0, SEC);
	assert_ret(rmpsc_io_destroy(x.io, &leaked), 0);
	assert_int_equal(leaked, 0);
	assert_ret(rmpsc_pool_available(x.p), rmpsc_pool_capacity(x.p));
	for (int i = 0; i < PENDING; i++)
		assert_ret(rmpsc_pool_free(x.p, x.h[i]), -ESTALE);
	pend_close(&x);
	pool_done(x.p);
}

/*
 * drain_timeout_ns 0: destroy returns 0 (then as above) or -ETIMEDOUT
 * with leaked > 0, exactly that many slabs still held (-EBUSY from
 * rmpsc_pool_free) and the rest back; the pool then needs FORCE.
 */
static void test_io_destroy_when_drain_timeout_0_returns_0_or_etimedout_consistently(
	void **state)
{
	struct pend x;
	uint64_t leaked = 77, out = 77, busy = 0;
	int rc;

	pend_start(&x, test_param(state) != 0, 0);
	rc = rmpsc_io_destroy(x.io, &leaked);
	print_message("  destroy with drain_timeout 0: %d (%s), leaked %" PRIu64 "\n", rc,
		      errname(rc), leaked);
	if (rc == 0) {
		assert_int_equal(leaked, 0);
		assert_ret(rmpsc_pool_available(x.p), rmpsc_pool_capacity(x.p));
		pend_close(&x);
		pool_done(x.p);
		return;
	}
	assert_ret(rc, -ETIMEDOUT);
	assert_true(leaked > 0 && leaked <= PENDING);
	for (int i = 0; i < PENDING; i++) {
		const int f = rmpsc_pool_free(x.p, x.h[i]);

		if (f == -EBUSY)
			busy++;
		else
			assert_ret(f, -ESTALE);
	}
	assert_int_equal(busy, leaked);
	assert_ret(rmpsc_pool_available(x.p), rmpsc_pool_capacity(x.p) - (int64_t)leaked);
	assert_ret(rmpsc_pool_destroy(x.p, 0, &out), -EBUSY);
	assert_ret(rmpsc_pool_destroy(x.p, RMPSC_POOL_DESTROY_FORCE, &out), 0);
	assert_int_equal(out, leaked);
	pend_close(&x);
}

/*
 * The leak path, forced: an O_DIRECT read of 8 MiB goes to the disk and
 * no cancel can stop it, so destroy with drain_timeout_ns 0 finds it still
 * in flight: -ETIMEDOUT, leaked 1, the slab still the kernel's (-EBUSY)
 * after the engine is gone, and the pool destroyed with FORCE keeps that
 * tier mapped (msync on it succeeds) for the kernel to finish writing.
 * Where the read is done before the drain looks (a very fast disk, or a
 * file system without O_DIRECT) it tries again, and skips after 20 tries.
 */
static void test_io_destroy_when_direct_read_in_flight_leaks_the_slab_and_keeps_the_tier(
	void **state)
{
	const size_t len = 8 * MIB;
	char path[] = "/var/tmp/rmpsc_io_direct_XXXXXX";
	const int wfd = mkstemp(path);
	void *buf = NULL;
	int fd;

	(void)state;
	assert_true(wfd >= 0);
	assert_int_equal(posix_memalign(&buf, 4096, len), 0);
	memset(buf, 0xa5, len);
	assert_int_equal(write(wfd, buf, len), (ssize_t)len);
	assert_int_equal(fsync(wfd), 0);
	close(wfd);
	free(buf);
	fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
	unlink(path);
	if (fd < 0) {
		print_message("  no O_DIRECT here (%s): skipped\n", strerror(errno));
		skip();
	}
	for (int attempt = 0; attempt < 20; attempt++) {
		rmpsc_pool *p = pool_make(len, 1);
		rmpsc_pool_region ri;
		rmpsc_io_config c = io_cfg(p, 0);
		rmpsc_io *io;
		const uint32_t h = palloc(p, len);
		uint64_t leaked = 77, out = 77;
		int rc;

		assert_ret(rmpsc_pool_tier_info(p, 0, &ri), 0);
		c.drain_timeout_ns = 0;
		io = io_new(&c);
		/* Page cache out of the way: each attempt reads the disk. */
		(void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		assert_ret(rmpsc_io_read(io, fd, 0, h, 0, 1, 0), 0);
		rc = rmpsc_io_destroy(io, &leaked);
		if (rc == 0) { /* the read was done first */
			assert_int_equal(leaked, 0);
			assert_ret(rmpsc_pool_free(p, h), -ESTALE);
			pool_done(p);
			continue;
		}
		assert_ret(rc, -ETIMEDOUT);
		print_message("  leaked on attempt %d\n", attempt + 1);
		assert_int_equal(leaked, 1);
		assert_ret(rmpsc_pool_free(p, h), -EBUSY);
		assert_ret(rmpsc_pool_destroy(p, 0, &out), -EBUSY);
		assert_ret(rmpsc_pool_destroy(p, RMPSC_POOL_DESTROY_FORCE, &out), 0);
		assert_int_equal(out, 1);
		/* Still mapped: the kernel's writes land in memory nobody reuses. */
		assert_int_equal(msync(ri.base, 4096, MS_ASYNC), 0);
		close(fd);
		return;
	}
	close(fd);
	print_message("  every direct read finished before the drain looked: skipped\n");
	skip();
}

/*
 * rmpsc_pool_destroy() while an engine is on the pool: -EBUSY (nothing
 * out, then with two receives pending); with FORCE 0, the pool handle
 * dead (-EBADF), new requests refused (-EPIPE), the receives in flight
 * cancelled at once: their completions come, -ECANCELED (param 1), or
 * the engine is destroyed with them (param 0): 0, nothing leaked, and the
 * memory goes with the engine (ASan).
 */
static void test_io_pool_destroy_when_engine_exists_returns_ebusy_and_force_keeps_it_working(
	void **state)
{
	const bool reap_first = test_param(state) != 0;
	rmpsc_pool *p = pool_make(4096, 4);
	rmpsc_io *io = io_plain(p, 0);
	uint64_t out = 77;
	uint32_t h[2];
	int sv[2][2];

	assert_ret(rmpsc_pool_destroy(p, 0, &out), -EBUSY);
	assert_int_equal(out, 0);
	for (int i = 0; i < 2; i++) {
		unix_pair(sv[i]);
		h[i] = palloc(p, 4096);
		assert_ret(rmpsc_io_recv(io, sv[i][0], h[i], 600 + (uint64_t)i, 0), 0);
	}
	assert_ret(rmpsc_pool_destroy(p, 0, &out), -EBUSY);
	assert_int_equal(out, 2);
	assert_ret(rmpsc_pool_destroy(p, RMPSC_POOL_DESTROY_FORCE, &out), 0);
	assert_int_equal(out, 2);
	assert_ret(rmpsc_pool_available(p), -EBADF);
	assert_ret(rmpsc_pool_capacity(p), -EBADF);
	/* "an engine cancels its I/O at once and refuses new requests with
	 * -EPIPE" */
	assert_ret(rmpsc_io_accept(io, sv[0][0], 602, 0), -EPIPE);
	assert_ret(rmpsc_io_recv(io, sv[0][0], h[0], 602, 0), -EPIPE);
	if (reap_first) {
		uint32_t seen = 0;

		for (int i = 0; i < 2; i++) {
			const rmpsc_io_cqe c = reap1(io);
			const uint32_t k = (uint32_t)(c.tag - 600);

			assert_true(k < 2 && !(seen & (1u << k)));
			seen |= 1u << k;
			cqe_expect(&c, 600 + k, RMPSC_IO_OP_RECV, h[k], -ECANCELED, 0);
		}
		assert_ret(rmpsc_io_inflight(io), 0);
	}
	io_done(io);
	for (int i = 0; i < 2; i++) {
		close(sv[i][0]);
		close(sv[i][1]);
	}
}

/*
 * The same with THREAD, completions into an MPSC channel, and a multishot
 * receive on the engine's provided buffers next to a plain receive:
 * FORCE cancels both at once; the thread delivers the receive's
 * -ECANCELED and the multishot's last completion (handle NONE, no F_MORE,
 * -ECANCELED or 0); destroy then returns 0 with nothing leaked.
 */
static void test_io_pool_destroy_thread_when_force_cancels_recv_and_multishot(void **state)
{
	rmpsc_pool *p = pool_make(4096, 8);
	rmpsc_mpsc *ch = mpsc_of(sizeof(rmpsc_io_cqe), 16);
	rmpsc_io_config c = io_cfg(p, RMPSC_IO_F_THREAD);
	const uint32_t h = palloc(p, 4096);
	bool recv_done = false, ms_done = false;
	rmpsc_io_cqe cq;
	uint64_t out = 77;
	rmpsc_io *io;
	int a[2], b[2];

	(void)state;
	c.mpsc = ch;
	c.recv_buffers = 4;
	io = io_new(&c);
	unix_pair(a);
	unix_pair(b);
	assert_ret(rmpsc_io_recv_multishot(io, a[0], 900, 0), 0);
	assert_ret(rmpsc_io_recv(io, b[0], h, 901, 0), 0);
	write_full(a[1], "abc", 3);
	assert_ret(rmpsc_mpsc_pop_n_timed(ch, &cq, 1, HANG_NS, NULL), 1);
	cqe_expect(&cq, 900, RMPSC_IO_OP_RECV_MULTISHOT, cq.handle, 3, RMPSC_IO_CQE_F_MORE);
	payload_is(p, cq.handle, "abc", 3);
	assert_ret(rmpsc_pool_free(p, cq.handle), 0);
	assert_ret(rmpsc_pool_destroy(p, 0, &out), -EBUSY);
	assert_ret(rmpsc_pool_destroy(p, RMPSC_POOL_DESTROY_FORCE, &out), 0);
	while (!recv_done || !ms_done) {
		assert_ret(rmpsc_mpsc_pop_n_timed(ch, &cq, 1, HANG_NS, NULL), 1);
		if (cq.tag == 901) {
			assert_false(recv_done);
			cqe_expect(&cq, 901, RMPSC_IO_OP_RECV, h, -ECANCELED, 0);
			recv_done = true;
			continue;
		}
		assert_int_equal(cq.tag, 900);
		assert_false(ms_done);
		if (cq.flags & RMPSC_IO_CQE_F_MORE)
			fail_msg("a multishot completion with data after the forced destroy");
		if (cq.result != -ECANCELED && cq.result != 0)
			fail_msg("the multishot's last completion: %d (%s)", cq.result,
				 errname(cq.result));
		cqe_expect(&cq, 900, RMPSC_IO_OP_RECV_MULTISHOT, RMPSC_POOL_HANDLE_NONE, cq.result,
			   0);
		ms_done = true;
	}
	assert_ret(rmpsc_io_inflight(io), 0);
	io_done(io);
	assert_ret(rmpsc_mpsc_pop(ch, &cq, NULL), -EAGAIN);
	rmpsc_mpsc_destroy(ch);
	for (int i = 0; i < 2; i++) {
		close(a[i]);
		close(b[i]);
	}
}

/* ---- EVENTFD ---------------------------------------------------------------------- */

/*
 * RMPSC_IO_F_EVENTFD, no thread, no output: after a read completes the
 * notifier's fd (signalled by the kernel) and the engine's fd poll
 * readable; rmpsc_io_reap() then gets the completion, and the engine's
 * fd is quiet again.
 */
static void test_io_eventfd_when_a_read_completes_the_notifier_fd_is_readable(void **state)
{
	rmpsc_pool *p = pool_make(4096, 2);
	rmpsc_notifier *n = NULL;
	rmpsc_io_config c = io_cfg(p, RMPSC_IO_F_EVENTFD);
	const uint32_t h = palloc(p, 4096);
	struct tfile f;
	rmpsc_io_cqe cq;
	rmpsc_io *io;
	int nfd, iofd;

	(void)state;
	assert_ret(rmpsc_notifier_create(0, &n), 0);
	nfd = rmpsc_notifier_fd(n);
	c.notifier = n;
	io = io_new(&c);
	iofd = rmpsc_io_fd(io);
	assert_true(iofd >= 0);
	tfile_make(&f, 8192, 81);
	assert_false(fd_readable(nfd, 0));
	assert_false(fd_readable(iofd, 0));
	assert_ret(rmpsc_io_read(io, f.fd, 4096, h, 0, 81, 0), 0);
	if (!fd_readable(nfd, HANG_MS))
		fail_msg("the notifier's fd was not readable after a completion (EVENTFD)");
	assert_true(fd_readable(iofd, 0));
	cq = reap1(io);
	cqe_expect(&cq, 81, RMPSC_IO_OP_READ, h, 4096, 0);
	payload_is(p, h, f.data + 4096, 4096);
	assert_false(fd_readable(iofd, 0));
	assert_true(rmpsc_notifier_consume(n) >= 1);
	assert_ret(rmpsc_pool_free(p, h), 0);
	io_done(io);
	rmpsc_notifier_destroy(n);
	pool_done(p);
	tfile_done(&f);
}

/* ---- info, fd ---------------------------------------------------------------------- */

static uint64_t memlock_soft(void)
{
	struct rlimit rl;

	assert_ret(getrlimit(RLIMIT_MEMLOCK, &rl), 0);
	return rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
}

/*
 * rmpsc_io_get_info(): a small pool registers (fixed 1, fixed_error 0,
 * the memlock numbers), features as rmpsc_uring_features(), inflight as
 * rmpsc_io_inflight(), recv_posted, zero padding; a larger caller struct
 * gets zeros past ours. NO_FIXED: fixed 0, fixed_error 0 (not tried), and
 * reads still work. rmpsc_io_fd() is an io_uring.
 */
static void test_io_get_info_when_asked_reports_fixed_features_and_inflight(void **state)
{
	rmpsc_pool *p = pool_make(4096, 4);
	rmpsc_io *io = io_plain(p, 0), *plain = io_plain(p, RMPSC_IO_F_NO_FIXED);
	rmpsc_io *rb = io_recv_buffers(p, 2);
	struct {
		rmpsc_io_info i;
		unsigned char tail[8];
	} big;
	const uint32_t h = palloc(p, 4096);
	rmpsc_io_info info;
	char path[64], link[128];
	struct tfile f;
	rmpsc_io_cqe c;
	ssize_t ln;
	int sv[2], fd;

	(void)state;
	unix_pair(sv);
	tfile_make(&f, 8192, 91);
	memset(&info, 0xff, sizeof info);
	assert_ret(rmpsc_io_get_info(io, &info, sizeof info), 0);
	assert_int_equal(info.size, sizeof info);
	assert_int_equal(info.fixed, 1);
	assert_int_equal(info.fixed_error, 0);
	assert_int_equal(info.features, (uint32_t)rmpsc_uring_features());
	assert_int_equal(info.inflight, 0);
	assert_true(info.memlock_bytes >= 4 * 4096);
	assert_int_equal(info.memlock_limit, memlock_soft());
	assert_int_equal(info.recv_posted, 0);
	assert_int_equal(info._pad0, 0);

	assert_ret(rmpsc_io_recv(io, sv[0], h, 1, 0), 0);
	assert_ret(rmpsc_io_get_info(io, &info, sizeof info), 0);
	assert_int_equal(info.inflight, 1);
	assert_ret(rmpsc_io_inflight(io), 1);
	assert_ret(rmpsc_io_cancel(io, 1), 1);
	c = reap1(io);
	cqe_expect(&c, 1, RMPSC_IO_OP_RECV, h, -ECANCELED, 0);
	assert_ret(rmpsc_io_get_info(io, &info, sizeof info), 0);
	assert_int_equal(info.inflight, 0);

	memset(&big, 0xff, sizeof big);
	assert_ret(rmpsc_io_get_info(io, &big.i, sizeof big), 0);
	assert_int_equal(big.i.fixed, 1);
	for (size_t i = 0; i < sizeof big.tail; i++)
		assert_int_equal(big.tail[i], 0);

	memset(&info, 0xff, sizeof info);
	assert_ret(rmpsc_io_get_info(plain, &info, sizeof info), 0);
	assert_int_equal(info.fixed, 0);
	assert_int_equal(info.fixed_error, 0);
	assert_int_equal(info.features, (uint32_t)rmpsc_uring_features());
	assert_ret(rmpsc_io_read(plain, f.fd, 0, h, 0, 2, 0), 0);
	c = reap1(plain);
	cqe_expect(&c, 2, RMPSC_IO_OP_READ, h, 4096, 0);
	payload_is(p, h, f.data, 4096);

	assert_ret(rmpsc_io_get_info(rb, &info, sizeof info), 0);
	assert_int_equal(info.recv_posted, 2);
	assert_int_equal(info.fixed, 1);

	/* REQUIRE_FIXED where registering works: created, registered. */
	{
		rmpsc_io *req = io_plain(p, RMPSC_IO_F_REQUIRE_FIXED);

		assert_ret(rmpsc_io_get_info(req, &info, sizeof info), 0);
		assert_int_equal(info.fixed, 1);
		assert_int_equal(info.fixed_error, 0);
		io_done(req);
	}

	fd = rmpsc_io_fd(io);
	assert_true(fd >= 0);
	assert_true(rmpsc_io_fd(plain) >= 0 && rmpsc_io_fd(plain) != fd);
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	ln = readlink(path, link, sizeof link - 1);
	assert_true(ln > 0);
	link[ln] = '\0';
	if (!strstr(link, "io_uring"))
		fail_msg("rmpsc_io_fd() is %s, not an io_uring", link);

	assert_ret(rmpsc_pool_free(p, h), 0);
	close(sv[0]);
	close(sv[1]);
	io_done(io);
	io_done(plain);
	io_done(rb);
	pool_done(p);
	tfile_done(&f);
}

/* ---- argument and handle checks ---------------------------------------------- */

/*
 * A live engine, arguments wrong one at a time: -EINVAL (fd, handle NONE,
 * flags, SEND_ZC on other calls, reap's out and n, run without an output,
 * get_info's info and size), and a refused call holds nothing.
 */
static void test_io_calls_when_arguments_bad_return_einval_and_hold_nothing(void **state)
{
	static const uint32_t bad_flags[] = { 1u << 2, 1u << 31, UINT32_MAX };
	static const uint32_t bad_sizes[] = { 0, 8, 40, 44, 47, 52 };
	rmpsc_pool *p = pool_make(4096, 4);
	rmpsc_io *io = io_plain(p, 0);
	const uint32_t h = palloc(p, 4096);
	rmpsc_io_info info;
	rmpsc_io_cqe c;
	int sv[2];

	(void)state;
	unix_pair(sv);
	payload_fill(p, h, "abc", 3);
	assert_ret(rmpsc_io_read(io, -1, 0, h, 0, 1, 0), -EINVAL);
	assert_ret(rmpsc_io_write(io, -1, 0, h, 1, 0), -EINVAL);
	assert_ret(rmpsc_io_recv(io, -1, h, 1, 0), -EINVAL);
	assert_ret(rmpsc_io_send(io, -1, h, 1, 0), -EINVAL);
	assert_ret(rmpsc_io_send(io, -1, h, 1, RMPSC_IO_SEND_ZC), -EINVAL);
	assert_ret(rmpsc_io_accept(io, -1, 1, 0), -EINVAL);
	assert_ret(rmpsc_io_read(io, sv[0], 0, RMPSC_POOL_HANDLE_NONE, 0, 1, 0), -EINVAL);
	assert_ret(rmpsc_io_write(io, sv[0], 0, RMPSC_POOL_HANDLE_NONE, 1, 0), -EINVAL);
	assert_ret(rmpsc_io_recv(io, sv[0], RMPSC_POOL_HANDLE_NONE, 1, 0), -EINVAL);
	assert_ret(rmpsc_io_send(io, sv[0], RMPSC_POOL_HANDLE_NONE, 1, 0), -EINVAL);
	for (size_t i = 0; i < TT_N(bad_flags); i++) {
		const uint32_t fl = bad_flags[i];

		assert_ret(rmpsc_io_read(io, sv[0], 0, h, 0, 1, fl), -EINVAL);
		assert_ret(rmpsc_io_write(io, sv[0], 0, h, 1, fl), -EINVAL);
		assert_ret(rmpsc_io_recv(io, sv[0], h, 1, fl), -EINVAL);
		assert_ret(rmpsc_io_send(io, sv[0], h, 1, fl), -EINVAL);
		assert_ret(rmpsc_io_accept(io, sv[0], 1, fl), -EINVAL);
	}
	/* "flags: RMPSC_IO_SUBMIT_MORE or 0": SEND_ZC is rmpsc_io_send()'s. */
	assert_ret(rmpsc_io_read(io, sv[0], 0, h, 0, 1, RMPSC_IO_SEND_ZC), -EINVAL);
	assert_ret(rmpsc_io_write(io, sv[0], 0, h, 1, RMPSC_IO_SEND_ZC), -EINVAL);
	assert_ret(rmpsc_io_recv(io, sv[0], h, 1, RMPSC_IO_SEND_ZC), -EINVAL);
	assert_ret(rmpsc_io_accept(io, sv[0], 1, RMPSC_IO_SEND_ZC), -EINVAL);

	assert_ret(rmpsc_io_reap(io, NULL, 1, 0), -EINVAL);
	assert_ret(rmpsc_io_reap(io, &c, 0, 0), -EINVAL);
	assert_ret(rmpsc_io_run(io, 1, 0), -EINVAL);
	assert_ret(rmpsc_io_get_info(io, NULL, sizeof info), -EINVAL);
	for (size_t i = 0; i < TT_N(bad_sizes); i++) {
		memset(&info, 0x77, sizeof info);
		assert_ret(rmpsc_io_get_info(io, &info, bad_sizes[i]), -EINVAL);
	}

	assert_ret(rmpsc_io_inflight(io), 0);
	payload_is(p, h, "abc", 3);
	reap_nothing(io, 0);
	assert_ret(rmpsc_pool_free(p, h), 0);
	close(sv[0]);
	close(sv[1]);
	io_done(io);
	pool_done(p);
}

/* A size above a page is -E2BIG, as for every size-prefixed struct of
 * the library (STYLE.md section 4). */
static void test_io_get_info_when_size_above_a_page_returns_e2big(void **state)
{
	static rmpsc_io_info buf[8192 / sizeof(rmpsc_io_info) + 1];
	rmpsc_pool *p = pool_make(4096, 2);
	rmpsc_io *io = io_plain(p, 0);

	int rc[2];

	(void)state;
	rc[0] = rmpsc_io_get_info(io, buf, 4104);
	rc[1] = rmpsc_io_get_info(io, buf, 8192);
	io_done(io); /* first: a failure below leaks nothing */
	pool_done(p);
	assert_ret(rc[0], -E2BIG);
	assert_ret(rc[1], -E2BIG);
}

/* What a table row passes where the engine's calls write. */
static rmpsc_io_cqe *cqe_buf(void)
{
	static rmpsc_io_cqe b[4];

	return b;
}

static rmpsc_io_info *info_buf(void)
{
	static rmpsc_io_info b;

	b.size = sizeof b;
	return &b;
}

TT_CALL(b_destroy, h ? rmpsc_io_destroy(h, NULL) : TT_SKIP)
TT_CALL(b_destroy_leaked, h ? rmpsc_io_destroy(h, &(uint64_t){ 0 }) : TT_SKIP)
TT_CALL(b_read, rmpsc_io_read(h, 0, 0, 1, 0, 1, 0))
TT_CALL(b_write, rmpsc_io_write(h, 1, 0, 1, 1, 0))
TT_CALL(b_recv, rmpsc_io_recv(h, 0, 1, 1, 0))
TT_CALL(b_send, rmpsc_io_send(h, 1, 1, 1, (uint32_t)v))
TT_CALL(b_accept, rmpsc_io_accept(h, 0, 1, 0))
TT_CALL(b_recv_multishot, rmpsc_io_recv_multishot(h, 0, 1, 0))
TT_CALL(b_cancel, rmpsc_io_cancel(h, v))
TT_CALL(b_submit, rmpsc_io_submit(h))
TT_CALL(b_reap, rmpsc_io_reap(h, cqe_buf(), 4, (int64_t)v))
TT_CALL(b_run, rmpsc_io_run(h, 4, (int64_t)v))
TT_CALL(b_inflight, rmpsc_io_inflight(h))
TT_CALL(b_get_info, rmpsc_io_get_info(h, info_buf(), sizeof(rmpsc_io_info)))
TT_CALL(b_fd, rmpsc_io_fd(h))

static const struct tt_row io_bad_rows[] = {
	TT_ROW("destroy (not NULL)", b_destroy, -EBADF, TT_BAD),
	TT_ROW("destroy with leaked (not NULL)", b_destroy_leaked, -EBADF, TT_BAD),
	TT_ROW("read", b_read, -EBADF, TT_BAD),
	TT_ROW("write", b_write, -EBADF, TT_BAD),
	TT_ROW("recv", b_recv, -EBADF, TT_BAD),
	TT_ROW("send", b_send, -EBADF, TT_BAD, TT_VALS(0, RMPSC_IO_SEND_ZC)),
	TT_ROW("accept", b_accept, -EBADF, TT_BAD),
	TT_ROW("recv_multishot", b_recv_multishot, -EBADF, TT_BAD),
	TT_ROW("cancel", b_cancel, -EBADF, TT_BAD, TT_VALS(0, 1, UINT64_MAX)),
	TT_ROW("submit", b_submit, -EBADF, TT_BAD),
	TT_ROW("reap", b_reap, -EBADF, TT_BAD, TT_VALS(0, MS)),
	TT_ROW("run", b_run, -EBADF, TT_BAD, TT_VALS(0, MS)),
	TT_ROW("inflight", b_inflight, -EBADF, TT_BAD),
	TT_ROW("get_info", b_get_info, -EBADF, TT_BAD),
	TT_ROW("fd", b_fd, -EBADF, TT_BAD),
};

static void *make_live_pool(void)
{
	return pool_make(4096, 2);
}

static void drop_live_pool(void *h)
{
	pool_done(h);
}

static void *make_live_ring(void)
{
	return ring_make(8, 32, 0, 0);
}

static void drop_live_ring(void *h)
{
	rmpsc_ring_destroy(h);
}

static void *make_live_notifier(void)
{
	rmpsc_notifier *n = NULL;

	assert_ret(rmpsc_notifier_create(0, &n), 0);
	return n;
}

static void drop_live_notifier(void *h)
{
	rmpsc_notifier_destroy(h);
}

static const struct tt_handle not_an_io[] = {
	TT_HANDLES_NOT_A_HANDLE,
	{ "a live pool", make_live_pool, NULL, drop_live_pool },
	{ "a live ring", make_live_ring, NULL, drop_live_ring },
	{ "a live notifier", make_live_notifier, NULL, drop_live_notifier },
};

TT_TEST(test_io_calls_when_handle_bad_return_ebadf, .name = "io", TT_ROWS(io_bad_rows),
	TT_BADS(not_an_io))

/* rmpsc_io_destroy(NULL): 0, *leaked 0. */
static void test_io_destroy_when_null_returns_0(void **state)
{
	uint64_t leaked = 77;

	(void)state;
	assert_ret(rmpsc_io_destroy(NULL, &leaked), 0);
	assert_int_equal(leaked, 0);
	assert_ret(rmpsc_io_destroy(NULL, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_io_config_init_when_valid_writes_the_defaults),
		cmocka_unit_test(
			test_io_config_init_when_size_bad_returns_einval_or_e2big_writes_nothing),
		cmocka_unit_test(
			test_io_create_when_config_bad_returns_the_documented_code_and_out_null),
		TEST_PARAM(test_io_read_when_file_read_in_fixed_slabs_every_byte_and_tag_arrive_once,
			   test_io_read_when_file_read_in_slabs_every_byte_and_tag_arrive_once, 0),
		TEST_PARAM(test_io_read_when_file_read_in_plain_slabs_every_byte_and_tag_arrive_once,
			   test_io_read_when_file_read_in_slabs_every_byte_and_tag_arrive_once,
			   RMPSC_IO_F_NO_FIXED),
		TEST_PARAM(test_io_read_when_at_the_end_or_current_position_returns_what_is_there,
			   test_io_read_when_at_the_end_or_current_position_returns_what_is_there, 0),
		TEST_PARAM(
			test_io_read_plain_when_at_the_end_or_current_position_returns_what_is_there,
			test_io_read_when_at_the_end_or_current_position_returns_what_is_there,
			RMPSC_IO_F_NO_FIXED),
		TEST_PARAM(test_io_read_when_fd_closed_completes_with_ebadf_and_handle_usable,
			   test_io_read_when_fd_closed_completes_with_ebadf_and_handle_usable, 0),
		TEST_PARAM(test_io_read_plain_when_fd_closed_completes_with_ebadf_and_handle_usable,
			   test_io_read_when_fd_closed_completes_with_ebadf_and_handle_usable,
			   RMPSC_IO_F_NO_FIXED),
		cmocka_unit_test(test_io_handle_when_in_flight_is_busy_until_its_completion),
		cmocka_unit_test(
			test_io_read_when_len_above_the_slab_returns_emsgsize_and_keeps_nothing),
		cmocka_unit_test(test_io_submit_when_handle_stale_returns_estale),
		cmocka_unit_test(test_io_submit_when_max_ops_in_flight_returns_eagain),
		cmocka_unit_test(test_io_submit_more_when_queued_completes_only_after_a_submit),
		TEST_PARAM(test_io_write_when_payload_set_lands_in_the_file,
			   test_io_write_when_payload_set_lands_in_the_file, 0),
		TEST_PARAM(test_io_write_plain_when_payload_set_lands_in_the_file,
			   test_io_write_when_payload_set_lands_in_the_file, RMPSC_IO_F_NO_FIXED),
		cmocka_unit_test(test_io_run_when_ring_of_32_byte_elements_delivers_zeroed_padding),
		cmocka_unit_test(test_io_run_when_ring_full_keeps_the_completion_for_the_next_run),
		cmocka_unit_test(
			test_io_run_when_ring_closed_returns_epipe_and_destroy_frees_the_slab),
		cmocka_unit_test(
			test_io_thread_when_submitters_read_at_once_every_tag_arrives_once),
		TEST_PARAM(test_io_thread_when_notifier_given_its_fd_is_readable_after_a_completion,
			   test_io_thread_when_notifier_given_its_fd_is_readable_after_a_completion,
			   0),
		TEST_PARAM(
			test_io_thread_ring_when_notifier_given_its_fd_is_readable_after_a_completion,
			test_io_thread_when_notifier_given_its_fd_is_readable_after_a_completion, 1),
		cmocka_unit_test(
			test_io_destroy_thread_when_output_ring_full_returns_the_undelivered_slabs),
		cmocka_unit_test(test_io_thread_when_channel_closed_destroy_returns_every_slab),
		cmocka_unit_test(test_io_accept_send_recv_when_tcp_loopback_move_the_bytes),
		TEST_PARAM(test_io_send_zc_when_tcp_loopback_completes_once_with_zc_and_copied,
			   test_io_send_zc_when_tcp_loopback_completes_once_with_zc_and_copied, 0),
		TEST_PARAM(test_io_send_zc_plain_when_tcp_loopback_completes_once_with_zc_and_copied,
			   test_io_send_zc_when_tcp_loopback_completes_once_with_zc_and_copied,
			   RMPSC_IO_F_NO_FIXED),
		cmocka_unit_test(test_io_send_zc_when_af_unix_completes_once_with_eopnotsupp),
		cmocka_unit_test(test_io_send_when_peer_closed_completes_with_epipe_without_sigpipe),
		TEST_PARAM(test_io_recv_multishot_when_buffers_run_dry_rearms_and_loses_nothing,
			   test_io_recv_multishot_when_buffers_run_dry_rearms_and_loses_nothing, 0),
		TEST_PARAM(
			test_io_recv_multishot_thread_when_buffers_run_dry_rearms_and_loses_nothing,
			test_io_recv_multishot_when_buffers_run_dry_rearms_and_loses_nothing, 1),
		cmocka_unit_test(test_io_recv_multishot_when_no_recv_buffers_returns_eopnotsupp),
		cmocka_unit_test(test_io_cancel_when_recv_idle_completes_with_ecanceled),
		TEST_PARAM(test_io_cancel_when_multishot_recv_ends_it,
			   test_io_cancel_when_multishot_recv_ends_it, 0),
		TEST_PARAM(test_io_cancel_when_multishot_recv_dry_ends_it,
			   test_io_cancel_when_multishot_recv_ends_it, 1),
		TEST_PARAM(test_io_destroy_when_recvs_pending_returns_0_and_every_slab_back,
			   test_io_destroy_when_recvs_pending_returns_0_and_every_slab_back, 0),
		TEST_PARAM(test_io_destroy_thread_when_recvs_pending_returns_0_and_every_slab_back,
			   test_io_destroy_when_recvs_pending_returns_0_and_every_slab_back, 1),
		TEST_PARAM(test_io_destroy_when_drain_timeout_0_returns_0_or_etimedout_consistently,
			   test_io_destroy_when_drain_timeout_0_returns_0_or_etimedout_consistently,
			   0),
		TEST_PARAM(
			test_io_destroy_thread_when_drain_timeout_0_returns_0_or_etimedout_consistently,
			test_io_destroy_when_drain_timeout_0_returns_0_or_etimedout_consistently, 1),
		TEST_PARAM(
			test_io_pool_destroy_when_engine_exists_returns_ebusy_and_force_keeps_it_working,
			test_io_pool_destroy_when_engine_exists_returns_ebusy_and_force_keeps_it_working,
			1),
		TEST_PARAM(
			test_io_pool_destroy_when_force_with_io_pending_engine_destroys_cleanly,
			test_io_pool_destroy_when_engine_exists_returns_ebusy_and_force_keeps_it_working,
			0),
		cmocka_unit_test(test_io_pool_destroy_thread_when_force_cancels_recv_and_multishot),
		cmocka_unit_test(
			test_io_destroy_when_direct_read_in_flight_leaks_the_slab_and_keeps_the_tier),
		cmocka_unit_test(test_io_eventfd_when_a_read_completes_the_notifier_fd_is_readable),
		cmocka_unit_test(test_io_get_info_when_asked_reports_fixed_features_and_inflight),
		cmocka_unit_test(test_io_calls_when_arguments_bad_return_einval_and_hold_nothing),
		cmocka_unit_test(test_io_get_info_when_size_above_a_page_returns_e2big),
		cmocka_unit_test(test_io_submit_when_output_closed_returns_epipe),
		cmocka_unit_test(test_io_reap_when_timeout_int64_max_returns_the_completion),
		cmocka_unit_test(test_io_thread_when_submitter_exits_its_request_still_completes),
		cmocka_unit_test(test_io_create_when_thread_and_eventfd_returns_einval),
		cmocka_unit_test(test_io_destroy_when_racing_a_forced_pool_destroy_is_safe),
		cmocka_unit_test(test_io_calls_when_handle_bad_return_ebadf),
		cmocka_unit_test(test_io_destroy_when_null_returns_0),
	};
	const int64_t f = rmpsc_uring_features();

	if (f == -ENOSYS || f == -EOPNOTSUPP) {
		printf("test_io: io_uring not available here (%lld, %s): skipped\n", (long long)f,
		       errname(f));
		return 77;
	}
	return cmocka_run_group_tests_name("test_io", tests, NULL, NULL);
}

#else /* !RMPSC_TEST_HAVE_URING: the stubs */

/*
 * "Built without liburing, every function here returns -EOPNOTSUPP":
 * with NULL and with a non-NULL pointer, create setting *out to NULL;
 * rmpsc_io_destroy(NULL) returns 0 (and *leaked 0).
 */
static void test_io_calls_without_liburing_return_eopnotsupp(void **state)
{
	rmpsc_io *const ios[2] = { NULL, FOREIGN(rmpsc_io) };
	rmpsc_pool_config pc;
	rmpsc_pool *p = NULL;
	rmpsc_io_config c;
	rmpsc_io *io = SENTINEL_OF(rmpsc_io);
	rmpsc_io_cqe cq[2];
	rmpsc_io_info info;
	uint64_t leaked = 77;

	(void)state;
	assert_ret(rmpsc_pool_config_init(&pc, sizeof pc), 0);
	assert_ret(rmpsc_pool_create(&pc, &p), 0);
	memset(&c, 0, sizeof c);
	assert_ret(rmpsc_io_config_init(&c, sizeof c), -EOPNOTSUPP);
	assert_ret(rmpsc_io_config_init(NULL, sizeof c), -EOPNOTSUPP);
	c.size = sizeof c;
	c.entries = 256;
	c.pool = p;
	assert_ret(rmpsc_io_create(&c, &io), -EOPNOTSUPP);
	assert_null(io);
	io = SENTINEL_OF(rmpsc_io);
	assert_ret(rmpsc_io_create(NULL, &io), -EOPNOTSUPP);
	assert_null(io);
	assert_ret(rmpsc_io_create(&c, NULL), -EOPNOTSUPP);
	assert_ret(rmpsc_io_destroy(NULL, &leaked), 0);
	assert_int_equal(leaked, 0);
	assert_ret(rmpsc_io_destroy(NULL, NULL), 0);
	assert_ret(rmpsc_io_destroy(ios[1], &leaked), -EOPNOTSUPP);
	for (int i = 0; i < 2; i++) {
		rmpsc_io *x = ios[i];

		assert_ret(rmpsc_io_read(x, 0, 0, 1, 0, 1, 0), -EOPNOTSUPP);
		assert_ret(rmpsc_io_write(x, 1, 0, 1, 1, 0), -EOPNOTSUPP);
		assert_ret(rmpsc_io_recv(x, 0, 1, 1, 0), -EOPNOTSUPP);
		assert_ret(rmpsc_io_send(x, 1, 1, 1, 0), -EOPNOTSUPP);
		assert_ret(rmpsc_io_send(x, 1, 1, 1, RMPSC_IO_SEND_ZC), -EOPNOTSUPP);
		assert_ret(rmpsc_io_accept(x, 0, 1, 0), -EOPNOTSUPP);
		assert_ret(rmpsc_io_recv_multishot(x, 0, 1, 0), -EOPNOTSUPP);
		assert_ret(rmpsc_io_cancel(x, 1), -EOPNOTSUPP);
		assert_ret(rmpsc_io_submit(x), -EOPNOTSUPP);
		assert_ret(rmpsc_io_reap(x, cq, 2, 0), -EOPNOTSUPP);
		assert_ret(rmpsc_io_reap(x, cq, 2, MS), -EOPNOTSUPP);
		assert_ret(rmpsc_io_run(x, 2, 0), -EOPNOTSUPP);
		assert_ret(rmpsc_io_inflight(x), -EOPNOTSUPP);
		assert_ret(rmpsc_io_get_info(x, &info, sizeof info), -EOPNOTSUPP);
		assert_ret(rmpsc_io_fd(x), -EOPNOTSUPP);
	}
	assert_ret(rmpsc_pool_destroy(p, 0, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_io_calls_without_liburing_return_eopnotsupp),
	};

	return cmocka_run_group_tests_name("test_io", tests, NULL, NULL);
}

#endif /* RMPSC_TEST_HAVE_URING */
