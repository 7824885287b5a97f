/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the liburing-user half of include/ringmpsc/uring.h
 * (rmpsc_uring_*): every promise of the header read as a stranger reads
 * it, each case trying to break one. The engine (rmpsc_io_*) has its own
 * file, test_io.c; it appears here only where the header ties it to the
 * kernel's availability.
 *
 *  - rmpsc_uring_features(): RING set, the same answer on every call and
 *    from racing threads, no unknown bits;
 *  - rmpsc_uring_register() on the test's own ring: the info (entries,
 *    bytes pinned, the memlock numbers, CAP_IPC_LOCK), rmpsc_uring_buffer()
 *    against rmpsc_pool_slab() and rmpsc_pool_locate(), every error code;
 *    UPDATE into a sparse table (reads through it, its entries empty again
 *    after unregister), -ENOSPC past its end, -ENXIO without one, -EBUSY on
 *    a ring that has one;
 *  - READ_FIXED of a generated 8 MiB file into 64 KiB slabs at many
 *    offsets, 16 in flight, matched by user_data, compared byte for byte;
 *    the whole slab (len 0), a short read at end of file, offset
 *    UINT64_MAX (the file position); WRITE_FIXED read back with pread;
 *  - ownership: while the kernel holds a slab (a READ_FIXED on an empty
 *    pipe) free, every accessor, rmpsc_uring_buffer(), a second prep of
 *    any kind and unregister return -EBUSY; complete gives it back, a
 *    second complete -EALREADY; an SQE prepared and never submitted taken
 *    back by complete (for each prep); -EMSGSIZE from complete (slab
 *    released, length kept) and from prep (handle not held, SQE
 *    untouched); bad arguments table-driven, the SQE untouched on error;
 *  - a prep racing a free of the same handle on another thread: one wins;
 *    one pool registered on two rings at once;
 *  - the pool under a registration: destroy -EBUSY, FORCE then unregister
 *    (the memory kept until then; also with a read in flight that lands
 *    after the destroy, and with a live buffer ring that receives after
 *    it), unregister after io_uring_queue_exit();
 *  - memlock: this binary again, without CAP_IPC_LOCK (setpriv) and with
 *    RLIMIT_MEMLOCK at 8 MiB: 16 MiB refused with -ENOMEM and the numbers,
 *    4 MiB registered;
 *  - a 4 MiB stream over an AF_UNIX socketpair from a writer thread:
 *    received with prep_recv into slabs, and with a provided-buffer ring
 *    and multishot recv; a ring of 2 entries that runs dry (-ENOBUFS, no
 *    F_MORE), refilled and armed again with no byte lost; bufring_create
 *    (RMPSC_URING_BUFRING_MAX entries accepted), take, refill, destroy and
 *    prep_recv_multishot error codes;
 *  - SEND (MSG_NOSIGNAL: a closed peer is -EPIPE, not SIGPIPE) and
 *    SEND_ZC: AF_UNIX's -EOPNOTSUPP with F_MORE then the notification, the
 *    slab held until complete after it; 64 KiB over loopback TCP intact,
 *    then the notification;
 *  - no io_uring: this binary again under a seccomp filter that fails
 *    io_uring_setup with ENOSYS (features and rmpsc_io_create() -ENOSYS)
 *    or EPERM (-EOPNOTSUPP).
 * Built without liburing (RMPSC_WITH_URING=OFF), one case checks that every
 * rmpsc_uring_* call is a stub returning -EOPNOTSUPP (0 for NULL handles
 * where the header says so).
 *
 * No time is asserted; waits for completions are bounded only to turn a
 * hang into a failure.
 */
#include <errno.h>
#include <fcntl.h>
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
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_util.h"

#include "ringmpsc/common.h"
#include "ringmpsc/pool.h"
#include "ringmpsc/uring.h"

#ifdef RMPSC_TEST_HAVE_URING
#include <arpa/inet.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include <liburing.h>
#endif

#define KIB ((uint64_t)1 << 10)
#define MIB ((uint64_t)1 << 20)

/* ---- pools ------------------------------------------------------------------ */

/* A pool of the @n tiers @t (slab size, count). */
static rmpsc_pool *pool_make(const rmpsc_pool_tier *t, uint32_t n)
{
	rmpsc_pool_config cfg;
	rmpsc_pool *p = SENTINEL_OF(rmpsc_pool);

	assert_ret(rmpsc_pool_config_init(&cfg, sizeof cfg), 0);
	cfg.tiers = t;
	cfg.ntiers = n;
	assert_ret(rmpsc_pool_create(&cfg, &p), 0);
	return assert_handle(p, SENTINEL_OF(rmpsc_pool));
}

/* A one-tier pool of @count slabs of @size bytes. */
static rmpsc_pool *pool_make1(uint64_t size, uint32_t count)
{
	const rmpsc_pool_tier t = { .slab_size = size, .count = count };

	return pool_make(&t, 1);
}

static uint32_t slab_alloc(rmpsc_pool *p, uint64_t len)
{
	uint32_t h = RMPSC_POOL_HANDLE_NONE;

	assert_ret(rmpsc_pool_alloc(p, len, &h), 0);
	assert_int_not_equal(h, RMPSC_POOL_HANDLE_NONE);
	return h;
}

/* ---- built without liburing: the stubs ------------------------------------------ */

#ifndef RMPSC_TEST_HAVE_URING

/* Every rmpsc_uring_* call of a build without liburing: -EOPNOTSUPP, out
 * pointers NULL, 0 for the NULL handles the header accepts; a stub prep
 * leaves the handle free-able (it did not hand the slab to anyone). */
static void test_uring_calls_when_built_without_liburing_return_eopnotsupp(void **state)
{
	static unsigned char fake_ring[4096], fake_sqe[64];
	struct io_uring *ring = (struct io_uring *)(void *)fake_ring;
	struct io_uring_sqe *sqe = (struct io_uring_sqe *)(void *)fake_sqe;
	rmpsc_pool *pool = pool_make1(4096, 4);
	rmpsc_uring_reg *reg = SENTINEL_OF(rmpsc_uring_reg);
	rmpsc_uring_bufring *br = SENTINEL_OF(rmpsc_uring_bufring);
	rmpsc_uring_reg_info info = { .size = sizeof info };
	const uint32_t h = slab_alloc(pool, 100);
	uint32_t idx = 0, hh = 0;
	struct iovec v;

	(void)state;
	assert_ret(rmpsc_uring_features(), -EOPNOTSUPP);
	assert_ret(rmpsc_uring_features(), -EOPNOTSUPP);
	assert_ret(rmpsc_uring_register(ring, pool, 0, 0, &info, &reg), -EOPNOTSUPP);
	assert_null(reg);
	reg = FOREIGN(rmpsc_uring_reg);
	assert_ret(rmpsc_uring_unregister(NULL, ring), 0);
	assert_ret(rmpsc_uring_unregister(NULL, NULL), 0);
	assert_ret(rmpsc_uring_unregister(reg, ring), -EOPNOTSUPP);
	assert_ret(rmpsc_uring_buffer(reg, h, &idx, &v), -EOPNOTSUPP);
	assert_ret(rmpsc_uring_prep_read_fixed(sqe, reg, h, 0, 0, 0), -EOPNOTSUPP);
	assert_ret(rmpsc_uring_prep_write_fixed(sqe, reg, h, 0, 0), -EOPNOTSUPP);
	assert_ret(rmpsc_uring_prep_recv(sqe, reg, h, 0, 0), -EOPNOTSUPP);
	assert_ret(rmpsc_uring_prep_send(sqe, reg, h, 0, 0), -EOPNOTSUPP);
	assert_ret(rmpsc_uring_prep_send_zc(sqe, reg, h, 0, 0), -EOPNOTSUPP);
	assert_ret(rmpsc_uring_complete(reg, h, 0), -EOPNOTSUPP);
	assert_ret(rmpsc_uring_bufring_create(ring, pool, 0, 1, 4, 0, &br), -EOPNOTSUPP);
	assert_null(br);
	br = FOREIGN(rmpsc_uring_bufring);
	assert_ret(rmpsc_uring_bufring_destroy(NULL, ring), 0);
	assert_ret(rmpsc_uring_bufring_destroy(NULL, NULL), 0);
	assert_ret(rmpsc_uring_bufring_destroy(br, ring), -EOPNOTSUPP);
	assert_ret(rmpsc_uring_bufring_take(br, 1, 10, &hh), -EOPNOTSUPP);
	assert_ret(rmpsc_uring_bufring_refill(br), -EOPNOTSUPP);
	assert_ret(rmpsc_uring_prep_recv_multishot(sqe, br, 0, 0), -EOPNOTSUPP);
	/* Nothing was handed to a kernel: the slab is the caller's. */
	assert_ret(rmpsc_pool_get_len(pool, h), 0);
	assert_ret(rmpsc_pool_free(pool, h), 0);
	assert_ret(rmpsc_pool_destroy(pool, 0, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uring_calls_when_built_without_liburing_return_eopnotsupp),
	};

	return cmocka_run_group_tests_name("test_uring", tests, NULL, NULL);
}

#else /* RMPSC_TEST_HAVE_URING */

/* Kernel interfaces newer than liburing 2.3's headers. */
#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3)
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif

#define URING_FEATURES_KNOWN ((1u << 10) - 1)
/* Slabs of the fixture's two tiers. */
#define SMALL (4 * KIB)
#define BIG (64 * KIB)
#define NSMALL 16u
#define NBIG 64u
/* The generated file. */
#define FILE_BYTES (8 * MIB)
#define FILE_SEED 0x5eed0f11e5ull
/* A wait for a CQE that takes this long is a hang. */
#define CQE_WAIT_SEC 30
/* A file descriptor for preps that must fail before any I/O: never open
 * here, and never submitted. */
#define FD_UNUSED 1000

/* ---- the generated bytes ------------------------------------------------------ */

static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* Byte o of stream @seed is byte o % 8 of mix64(seed + o / 8). */
static void pat_fill(uint64_t seed, uint64_t off, void *buf, size_t len)
{
	unsigned char *b = buf;

	for (size_t i = 0; i < len;) {
		const uint64_t o = off + i, w = mix64(seed + (o >> 3));

		for (unsigned sh = (unsigned)(o & 7); sh < 8 && i < len; sh++, i++)
			b[i] = (unsigned char)(w >> (sh * 8));
	}
}

/* @len bytes at @buf are the stream's from @off: fail naming the first
 * that is not. */
static void pat_expect(uint64_t seed, uint64_t off, const void *buf, size_t len)
{
	const unsigned char *b = buf;

	for (size_t i = 0; i < len;) {
		const uint64_t o = off + i, w = mix64(seed + (o >> 3));

		for (unsigned sh = (unsigned)(o & 7); sh < 8 && i < len; sh++, i++) {
			const unsigned char want = (unsigned char)(w >> (sh * 8));

			if (b[i] != want) {
				print_error("byte at stream offset %" PRIu64
					    " is %#x, expected %#x (read of %zu bytes from %" PRIu64
					    ")\n",
					    o, b[i], want, len, off);
				fail();
			}
		}
	}
}

/* A file of @bytes of stream @seed under TMPDIR (or /tmp), unlinked. */
static int file_make(uint64_t seed, uint64_t bytes)
{
	const char *dir = getenv("TMPDIR");
	char path[PATH_MAX];
	unsigned char *buf = malloc(MIB);
	int fd;

	assert_non_null(buf);
	snprintf(path, sizeof path, "%s/test_uring.XXXXXX", dir && *dir ? dir : "/tmp");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_ret(unlink(path), 0);
	for (uint64_t off = 0; off < bytes; off += MIB) {
		const size_t n = bytes - off < MIB ? (size_t)(bytes - off) : MIB;

		pat_fill(seed, off, buf, n);
		assert_ret(pwrite(fd, buf, n, (off_t)off), (long long)n);
	}
	free(buf);
	return fd;
}

/* ---- the ring --------------------------------------------------------------------- */

struct cq {
	uint64_t ud;
	int32_t res;
	uint32_t flags;
};

static void ring_init(struct io_uring *r, unsigned entries)
{
	assert_ret(io_uring_queue_init(entries, r, 0), 0);
}

static struct io_uring_sqe *sqe_get(struct io_uring *r)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(r);

	assert_non_null(sqe);
	return sqe;
}

/* The next CQE, consumed; a wait of CQE_WAIT_SEC is a hang. */
static struct cq cq_wait(struct io_uring *r)
{
	struct __kernel_timespec ts = { .tv_sec = CQE_WAIT_SEC };
	struct io_uring_cqe *cqe = NULL;
	struct cq c;

	assert_ret(io_uring_wait_cqe_timeout(r, &cqe, &ts), 0);
	c.ud = cqe->user_data;
	c.res = cqe->res;
	c.flags = cqe->flags;
	io_uring_cqe_seen(r, cqe);
	return c;
}

/* No CQE is waiting. */
static void cq_none(struct io_uring *r)
{
	struct io_uring_cqe *cqe = NULL;

	assert_ret(io_uring_peek_cqe(r, &cqe), -EAGAIN);
}

/* Submit and expect @n taken. */
static void submit_n(struct io_uring *r, int n)
{
	assert_ret(io_uring_submit(r), n);
}

/* ---- features ------------------------------------------------------------------- */

/* The features, or skip() when one of @need is absent. */
static int64_t need_features(int64_t need)
{
	const int64_t f = rmpsc_uring_features();

	if (f < 0 || (f & need) != need) {
		print_message("io_uring features %lld (%s) lack %#llx: skipped\n", (long long)f,
			      errname(f), (unsigned long long)need);
		skip();
	}
	return f;
}

static void *features_thread(void *arg)
{
	*(int64_t *)arg = rmpsc_uring_features();
	return NULL;
}

/* RING is set here (the kernel has io_uring: this machine's premise), no
 * unknown bit, and racing threads and later calls get the same answer. */
static void test_uring_features_when_probed_has_ring_and_same_value_every_call(void **state)
{
	pthread_t t[4];
	int64_t got[4];
	const int64_t f = rmpsc_uring_features();

	(void)state;
	for (int i = 0; i < 4; i++)
		assert_ret(pthread_create(&t[i], NULL, features_thread, &got[i]), 0);
	for (int i = 0; i < 4; i++) {
		assert_ret(pthread_join(t[i], NULL), 0);
		assert_ret(got[i], f);
	}
	assert_true(f >= 0);
	print_message("features %#llx\n", (unsigned long long)f);
	assert_true(f & RMPSC_URING_HAS_RING);
	assert_int_equal(f & ~(int64_t)URING_FEATURES_KNOWN, 0);
	for (int i = 0; i < 100; i++)
		assert_ret(rmpsc_uring_features(), f);
}

/* ---- the fixture: a ring with a two-tier pool registered ---------------------- */

struct ufx {
	struct io_uring ring;
	bool ring_live;
	rmpsc_pool *pool;
	rmpsc_uring_reg *reg;
	rmpsc_uring_reg_info info;
};

static const rmpsc_pool_tier fx_tiers[2] = {
	{ .slab_size = SMALL, .count = NSMALL },
	{ .slab_size = BIG, .count = NBIG },
};

static int setup_uring(void **state)
{
	struct ufx *fx = calloc(1, sizeof *fx);
	const int64_t f = rmpsc_uring_features();

	*state = fx;
	if (!fx)
		return -1;
	if (f < 0 || !(f & RMPSC_URING_HAS_FIXED))
		return 0; /* the cases skip */
	if (io_uring_queue_init(64, &fx->ring, 0))
		return -1;
	fx->ring_live = true;
	fx->pool = pool_make(fx_tiers, 2);
	fx->info.size = sizeof fx->info;
	return rmpsc_uring_register(&fx->ring, fx->pool, 0, 0, &fx->info, &fx->reg) ? -1 : 0;
}

/* A case leaves no prep uncompleted and no slab out: unregister and a
 * destroy without FORCE succeed (a failed prep must not count as held). */
static int teardown_uring(void **state)
{
	struct ufx *fx = *state;
	int bad = 0;

	if (fx->reg && rmpsc_uring_unregister(fx->reg, fx->ring_live ? &fx->ring : NULL)) {
		print_error("teardown: unregister refused (a prep left held)\n");
		bad = -1;
	}
	if (fx->ring_live)
		io_uring_queue_exit(&fx->ring);
	if (fx->pool && rmpsc_pool_destroy(fx->pool, 0, NULL)) {
		print_error("teardown: pool destroy refused (slabs out or still registered)\n");
		(void)rmpsc_pool_destroy(fx->pool, RMPSC_POOL_DESTROY_FORCE, NULL);
		bad = -1;
	}
	free(fx);
	return bad;
}

static struct ufx *fx_get(void **state)
{
	struct ufx *fx = *state;

	if (!fx->reg) {
		print_message("no fixed buffers in this kernel: skipped\n");
		skip();
	}
	return fx;
}

/* CAP_IPC_LOCK in this process's effective set, read from /proc. */
static int cap_ipc_lock_now(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	unsigned long long eff = 0;

	assert_non_null(f);
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "CapEff: %llx", &eff) == 1)
			break;
	fclose(f);
	return (eff >> 14) & 1; /* CAP_IPC_LOCK = 14 */
}

static uint64_t memlock_now(void)
{
	struct rlimit rl;

	assert_ret(getrlimit(RLIMIT_MEMLOCK, &rl), 0);
	return rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
}

/* The entry a handle must have: tiers in order from @first, one chunk
 * each (these tiers are far below 1 GiB). */
static uint32_t want_index(rmpsc_pool *p, uint32_t h, uint32_t first)
{
	uint32_t t = 99;

	assert_ret(rmpsc_pool_locate(p, h, &t, NULL), 0);
	return first + t;
}

/* The info describes the pool; every handle of both tiers maps to its
 * tier's entry and to the slab rmpsc_pool_slab() gives. */
static void test_uring_register_when_valid_fills_info_and_buffer_maps_handles(void **state)
{
	struct ufx *fx = fx_get(state);
	uint32_t hs[NSMALL + NBIG];
	uint64_t pool_bytes = 0;
	uint32_t n = 0;

	for (uint32_t t = 0; t < 2; t++) {
		rmpsc_pool_region ri;

		assert_ret(rmpsc_pool_tier_info(fx->pool, t, &ri), 0);
		pool_bytes += ri.stride * ri.count;
	}
	assert_int_equal(fx->info.size, sizeof fx->info);
	assert_int_equal(fx->info.buffers, 2);
	assert_int_equal(fx->info.first_index, 0);
	assert_true(fx->info.bytes >= pool_bytes);
	assert_int_equal(fx->info.bytes % 4096, 0); /* whole pages are charged */
	assert_int_equal(fx->info.memlock_limit, memlock_now());
	assert_int_equal(fx->info.cap_ipc_lock, cap_ipc_lock_now());
	for (uint32_t i = 0; i < NSMALL; i++)
		hs[n++] = slab_alloc(fx->pool, SMALL);
	for (uint32_t i = 0; i < NBIG; i++)
		hs[n++] = slab_alloc(fx->pool, BIG);
	for (uint32_t i = 0; i < n; i++) {
		struct iovec want, got = { 0 };
		uint32_t idx = 12345;

		assert_ret(rmpsc_pool_slab(fx->pool, hs[i], &want), 0);
		assert_ret(rmpsc_uring_buffer(fx->reg, hs[i], &idx, &got), 0);
		assert_int_equal(idx, want_index(fx->pool, hs[i], 0));
		assert_int_equal(idx, i < NSMALL ? 0 : 1);
		assert_ptr_equal(got.iov_base, want.iov_base);
		assert_int_equal(got.iov_len, want.iov_len);
		assert_int_equal(got.iov_len, i < NSMALL ? SMALL : BIG);
		assert_ret(rmpsc_uring_buffer(fx->reg, hs[i], NULL, NULL), 0);
	}
	assert_ret(rmpsc_pool_free_n(fx->pool, hs, n), n);
}

/* An info larger than v1 (a newer caller): v1 filled, size kept, the rest
 * zero; info NULL is accepted. */
static void test_uring_register_when_info_larger_or_null_fills_v1(void **state)
{
	struct {
		rmpsc_uring_reg_info v1;
		uint64_t more[2];
	} big;
	struct io_uring ring;
	rmpsc_pool *pool;
	rmpsc_uring_reg *reg = SENTINEL_OF(rmpsc_uring_reg);

	(void)state;
	need_features(RMPSC_URING_HAS_FIXED);
	pool = pool_make(fx_tiers, 2);
	ring_init(&ring, 4);
	memset(&big, 0xa5, sizeof big);
	big.v1.size = sizeof big;
	assert_ret(rmpsc_uring_register(&ring, pool, 0, 0, &big.v1, &reg), 0);
	assert_handle(reg, SENTINEL_OF(rmpsc_uring_reg));
	assert_int_equal(big.v1.size, sizeof big);
	assert_int_equal(big.v1.buffers, 2);
	assert_int_equal(big.v1.first_index, 0);
	assert_int_equal(big.v1.memlock_limit, memlock_now());
	assert_int_equal(big.more[0], 0);
	assert_int_equal(big.more[1], 0);
	assert_ret(rmpsc_uring_unregister(reg, &ring), 0);
	reg = SENTINEL_OF(rmpsc_uring_reg);
	assert_ret(rmpsc_uring_register(&ring, pool, 0, 0, NULL, &reg), 0);
	assert_handle(reg, SENTINEL_OF(rmpsc_uring_reg));
	assert_ret(rmpsc_uring_unregister(reg, &ring), 0);
	io_uring_queue_exit(&ring);
	assert_ret(rmpsc_pool_destroy(pool, 0, NULL), 0);
}

/* memlock_limit is the soft limit at the call: lowered, it reports the new
 * value; RLIM_INFINITY (where the hard limit lets this process raise it)
 * reports UINT64_MAX. With CAP_IPC_LOCK the registration succeeds either
 * way and says so. */
static void test_uring_register_when_soft_memlock_changes_reports_the_limit_at_the_call(
	void **state)
{
	struct rlimit old, rl;
	struct io_uring ring;
	rmpsc_pool *pool;
	rmpsc_uring_reg *reg;
	rmpsc_uring_reg_info info = { .size = sizeof info };
	int err;

	(void)state;
	need_features(RMPSC_URING_HAS_FIXED);
	assert_ret(getrlimit(RLIMIT_MEMLOCK, &old), 0);
	if (!cap_ipc_lock_now() || (old.rlim_max != RLIM_INFINITY && old.rlim_max < 2 * MIB)) {
		print_message("needs CAP_IPC_LOCK and a hard memlock limit of 2 MiB: skipped\n");
		skip();
	}
	pool = pool_make1(SMALL, 4);
	ring_init(&ring, 4);
	rl = old;
	rl.rlim_cur = 1 * MIB + 4096;
	assert_ret(setrlimit(RLIMIT_MEMLOCK, &rl), 0);
	err = rmpsc_uring_register(&ring, pool, 0, 0, &info, &reg);
	assert_ret(setrlimit(RLIMIT_MEMLOCK, &old), 0);
	assert_ret(err, 0);
	assert_int_equal(info.memlock_limit, 1 * MIB + 4096);
	assert_int_equal(info.cap_ipc_lock, 1);
	assert_ret(rmpsc_uring_unregister(reg, &ring), 0);
	rl.rlim_cur = rl.rlim_max = RLIM_INFINITY;
	if (setrlimit(RLIMIT_MEMLOCK, &rl) == 0) {
		err = rmpsc_uring_register(&ring, pool, 0, 0, &info, &reg);
		assert_ret(setrlimit(RLIMIT_MEMLOCK, &old), 0);
		assert_ret(err, 0);
		assert_int_equal(info.memlock_limit, UINT64_MAX);
		assert_ret(rmpsc_uring_unregister(reg, &ring), 0);
	} else {
		print_message("RLIM_INFINITY not allowed here (no CAP_SYS_RESOURCE): "
			      "UINT64_MAX not checked\n");
	}
	io_uring_queue_exit(&ring);
	assert_ret(rmpsc_pool_destroy(pool, 0, NULL), 0);
}

/* ---- READ_FIXED / WRITE_FIXED ------------------------------------------------- */

struct rd {
	uint32_t h;
	uint64_t off;
	uint32_t len; /* asked; 0: the whole slab */
	uint64_t seq; /* submission order */
};

/* Prepare a READ_FIXED of @r on the ring, checking the SQE the header
 * describes: the slab's address, its entry, user_data = handle. */
static void rd_prep(struct ufx *fx, int fd, const struct rd *r)
{
	struct io_uring_sqe *sqe = sqe_get(&fx->ring);
	struct iovec slab;
	uint32_t idx;

	assert_ret(rmpsc_uring_buffer(fx->reg, r->h, &idx, &slab), 0);
	assert_ret(rmpsc_uring_prep_read_fixed(sqe, fx->reg, r->h, fd, r->off, r->len), 0);
	assert_int_equal(sqe->opcode, IORING_OP_READ_FIXED);
	assert_int_equal(sqe->fd, fd);
	assert_int_equal(sqe->off, r->off);
	assert_int_equal(sqe->addr, (uintptr_t)slab.iov_base);
	assert_int_equal(sqe->len, r->len ? r->len : slab.iov_len);
	assert_int_equal(sqe->buf_index, idx);
	assert_int_equal(sqe->user_data, r->h);
}

/* The completion of a read: complete with its result, then the payload is
 * the file's bytes at the offset and its length the result. */
static void rd_done(struct ufx *fx, const struct rd *r, int32_t res, int32_t want_res)
{
	struct iovec v;

	assert_ret(res, want_res);
	assert_ret(rmpsc_uring_complete(fx->reg, r->h, res), 0);
	assert_ret(rmpsc_pool_get_len(fx->pool, r->h), res);
	assert_ret(rmpsc_pool_payload(fx->pool, r->h, &v), 0);
	assert_int_equal(v.iov_len, (size_t)res);
	pat_expect(FILE_SEED, r->off, v.iov_base, v.iov_len);
}

/* One READ_FIXED of @len bytes at @off into @h through @reg on @ring: the
 * file's bytes, the entry the registration says. */
static void read_through(struct io_uring *ring, rmpsc_uring_reg *reg, rmpsc_pool *pool,
			 uint32_t h, int fd, uint64_t off, uint32_t len, uint32_t want_idx)
{
	struct io_uring_sqe *sqe = sqe_get(ring);
	struct iovec v;
	uint32_t idx = 0;
	struct cq c;

	assert_ret(rmpsc_uring_buffer(reg, h, &idx, NULL), 0);
	assert_int_equal(idx, want_idx);
	assert_ret(rmpsc_uring_prep_read_fixed(sqe, reg, h, fd, off, len), 0);
	assert_int_equal(sqe->buf_index, want_idx);
	submit_n(ring, 1);
	c = cq_wait(ring);
	assert_int_equal(c.ud, h);
	assert_ret(c.res, len);
	assert_ret(rmpsc_uring_complete(reg, h, c.res), 0);
	assert_ret(rmpsc_pool_payload(pool, h, &v), 0);
	assert_int_equal(v.iov_len, len);
	pat_expect(FILE_SEED, off, v.iov_base, len);
}

#define RD_DEPTH 16
#define RD_COUNT 320

/* Reads at many offsets, 16 in flight, each completion matched to its
 * request by user_data (the handle): the bytes are the file's. */
static void test_uring_prep_read_fixed_when_many_offsets_reads_the_file_bytes(void **state)
{
	struct ufx *fx = fx_get(state);
	const int fd = file_make(FILE_SEED, FILE_BYTES);
	struct rd rd[RD_DEPTH];
	uint64_t rng = 0x1234567ull, seq = 0, done = 0, out_of_order = 0, next_done = 0;

	for (int i = 0; i < RD_DEPTH; i++)
		rd[i].h = slab_alloc(fx->pool, BIG);
	for (int i = 0; i < RD_DEPTH; i++) {
		const uint64_t x = xs_next(&rng);

		rd[i].off = (x >> 20) % (FILE_BYTES - BIG);
		if (x & 1)
			rd[i].off &= ~(uint64_t)4095;
		rd[i].len = (x & 6) == 0 ? 0 : 1 + (uint32_t)((x >> 8) % BIG);
		rd[i].seq = seq++;
		rd_prep(fx, fd, &rd[i]);
	}
	submit_n(&fx->ring, RD_DEPTH);
	while (done < RD_COUNT) {
		const struct cq c = cq_wait(&fx->ring);
		int k = -1;

		for (int i = 0; i < RD_DEPTH; i++)
			if (rd[i].h == c.ud)
				k = i;
		if (k < 0) {
			print_error("CQE of user_data %#" PRIx64 " matches no read\n", c.ud);
			fail();
		}
		rd_done(fx, &rd[k], c.res, rd[k].len ? (int32_t)rd[k].len : (int32_t)BIG);
		out_of_order += rd[k].seq != next_done;
		next_done = rd[k].seq + 1;
		done++;
		if (seq < RD_COUNT) {
			const uint64_t x = xs_next(&rng);

			rd[k].off = (x >> 20) % (FILE_BYTES - BIG);
			if (x & 1)
				rd[k].off &= ~(uint64_t)4095;
			rd[k].len = (x & 6) == 0 ? 0 : 1 + (uint32_t)((x >> 8) % BIG);
			rd[k].seq = seq++;
			rd_prep(fx, fd, &rd[k]);
			submit_n(&fx->ring, 1);
		}
	}
	print_message("%" PRIu64 " reads, %" PRIu64 " completed out of submission order\n", done,
		      out_of_order);
	cq_none(&fx->ring);
	for (int i = 0; i < RD_DEPTH; i++)
		assert_ret(rmpsc_pool_free(fx->pool, rd[i].h), 0);
	close(fd);
}

/* The whole slab (len 0) near the end: a short read reports what came;
 * at the end, 0; offset UINT64_MAX reads at the file position (and moves
 * it). */
static void test_uring_prep_read_fixed_when_short_or_positional_reports_its_length(void **state)
{
	struct ufx *fx = fx_get(state);
	const int fd = file_make(FILE_SEED, FILE_BYTES);
	struct rd r = { .h = slab_alloc(fx->pool, BIG) };
	struct cq c;

	/* 1000 bytes left: a short read of 1000. */
	r.off = FILE_BYTES - 1000;
	r.len = 0;
	rd_prep(fx, fd, &r);
	submit_n(&fx->ring, 1);
	c = cq_wait(&fx->ring);
	assert_int_equal(c.ud, r.h);
	rd_done(fx, &r, c.res, 1000);
	/* At the end: 0 bytes, length 0. */
	r.off = FILE_BYTES;
	rd_prep(fx, fd, &r);
	submit_n(&fx->ring, 1);
	c = cq_wait(&fx->ring);
	rd_done(fx, &r, c.res, 0);
	/* The file position. */
	assert_ret(lseek(fd, 12345, SEEK_SET), 12345);
	r.off = UINT64_MAX;
	r.len = 500;
	rd_prep(fx, fd, &r);
	submit_n(&fx->ring, 1);
	c = cq_wait(&fx->ring);
	r.off = 12345;
	rd_done(fx, &r, c.res, 500);
	assert_ret(lseek(fd, 0, SEEK_CUR), 12845);
	assert_ret(rmpsc_pool_free(fx->pool, r.h), 0);
	close(fd);
}

/* WRITE_FIXED of a payload at an offset, read back with pread; the
 * completion keeps the length (complete with -1). */
static void test_uring_prep_write_fixed_when_completed_file_holds_the_payload(void **state)
{
	struct ufx *fx = fx_get(state);
	const int fd = file_make(FILE_SEED, 64 * KIB);
	const uint32_t len = 40000, h = slab_alloc(fx->pool, BIG);
	const uint64_t seed = 0xfeedull, at = 4096 + 7;
	struct io_uring_sqe *sqe;
	struct iovec slab;
	unsigned char *back = malloc(len);
	uint32_t idx;
	struct cq c;

	assert_non_null(back);
	assert_ret(rmpsc_pool_slab(fx->pool, h, &slab), 0);
	pat_fill(seed, at, slab.iov_base, len);
	assert_ret(rmpsc_pool_set_len(fx->pool, h, len), 0);
	assert_ret(rmpsc_uring_buffer(fx->reg, h, &idx, NULL), 0);
	sqe = sqe_get(&fx->ring);
	assert_ret(rmpsc_uring_prep_write_fixed(sqe, fx->reg, h, fd, at), 0);
	assert_int_equal(sqe->opcode, IORING_OP_WRITE_FIXED);
	assert_int_equal(sqe->addr, (uintptr_t)slab.iov_base);
	assert_int_equal(sqe->len, len);
	assert_int_equal(sqe->off, at);
	assert_int_equal(sqe->buf_index, idx);
	assert_int_equal(sqe->user_data, h);
	assert_ret(rmpsc_pool_free(fx->pool, h), -EBUSY);
	submit_n(&fx->ring, 1);
	c = cq_wait(&fx->ring);
	assert_int_equal(c.ud, h);
	assert_ret(c.res, len);
	assert_ret(rmpsc_uring_complete(fx->reg, h, -1), 0);
	assert_ret(rmpsc_pool_get_len(fx->pool, h), len);
	assert_ret(pread(fd, back, len, (off_t)at), len);
	pat_expect(seed, at, back, len);
	/* The bytes around it are the file's still. */
	assert_ret(pread(fd, back, at, 0), at);
	pat_expect(FILE_SEED, 0, back, at);
	assert_ret(rmpsc_pool_free(fx->pool, h), 0);
	free(back);
	close(fd);
}

/* ---- ownership ------------------------------------------------------------------- */

typedef int (*prep_fn)(struct io_uring_sqe *sqe, rmpsc_uring_reg *reg, uint32_t h, int fd);

static int prep_rf(struct io_uring_sqe *sqe, rmpsc_uring_reg *reg, uint32_t h, int fd)
{
	return rmpsc_uring_prep_read_fixed(sqe, reg, h, fd, 0, 0);
}

static int prep_wf(struct io_uring_sqe *sqe, rmpsc_uring_reg *reg, uint32_t h, int fd)
{
	return rmpsc_uring_prep_write_fixed(sqe, reg, h, fd, 0);
}

static int prep_rv(struct io_uring_sqe *sqe, rmpsc_uring_reg *reg, uint32_t h, int fd)
{
	return rmpsc_uring_prep_recv(sqe, reg, h, fd, 0);
}

static int prep_sd(struct io_uring_sqe *sqe, rmpsc_uring_reg *reg, uint32_t h, int fd)
{
	return rmpsc_uring_prep_send(sqe, reg, h, fd, 0);
}

static int prep_zc(struct io_uring_sqe *sqe, rmpsc_uring_reg *reg, uint32_t h, int fd)
{
	return rmpsc_uring_prep_send_zc(sqe, reg, h, fd, 0);
}

static const struct {
	const char *name;
	prep_fn fn;
	uint8_t opcode;
} preps[] = {
	{ "prep_read_fixed", prep_rf, IORING_OP_READ_FIXED },
	{ "prep_write_fixed", prep_wf, IORING_OP_WRITE_FIXED },
	{ "prep_recv", prep_rv, IORING_OP_RECV },
	{ "prep_send", prep_sd, IORING_OP_SEND },
	{ "prep_send_zc", prep_zc, IORING_OP_SEND_ZC },
};
#define NPREPS (sizeof preps / sizeof preps[0])

/* Every pool accessor and rmpsc_uring_buffer() of a slab the kernel
 * holds returns -EBUSY, and so does a second prep of any kind. */
static void expect_held(struct ufx *fx, uint32_t h)
{
	struct io_uring_sqe other;
	struct iovec v;
	uint32_t t, i, idx;

	assert_ret(rmpsc_pool_free(fx->pool, h), -EBUSY);
	assert_ret(rmpsc_pool_free_n(fx->pool, &h, 1), 0);
	assert_ret(rmpsc_pool_payload(fx->pool, h, &v), -EBUSY);
	assert_ret(rmpsc_pool_slab(fx->pool, h, &v), -EBUSY);
	assert_ret(rmpsc_pool_set_len(fx->pool, h, 1), -EBUSY);
	assert_ret(rmpsc_pool_get_len(fx->pool, h), -EBUSY);
	assert_ret(rmpsc_pool_locate(fx->pool, h, &t, &i), -EBUSY);
	assert_ret(rmpsc_pool_iovecs(fx->pool, &h, 1, &v, 0), -EBUSY);
	assert_ret(rmpsc_uring_buffer(fx->reg, h, &idx, &v), -EBUSY);
	for (size_t k = 0; k < NPREPS; k++) {
		const int64_t f = rmpsc_uring_features();

		if (preps[k].fn == prep_zc && !(f & RMPSC_URING_HAS_SEND_ZC))
			continue;
		struct io_uring_sqe ref;

		memset(&ref, 0xa5, sizeof ref);
		other = ref;
		if (preps[k].fn(&other, fx->reg, h, FD_UNUSED) != -EBUSY) {
			print_error("second %s of a held handle did not return -EBUSY\n",
				    preps[k].name);
			fail();
		}
		assert_memory_equal(&other, &ref, sizeof other);
	}
}

/* A READ_FIXED on an empty pipe stays in flight: every call on the handle
 * is refused with -EBUSY, and so is unregister; the data that arrives is
 * the payload after complete; a second complete is -EALREADY, and after
 * the free the handle is stale. */
static void test_uring_prep_when_in_flight_free_second_prep_and_accessors_return_ebusy(
	void **state)
{
	struct ufx *fx = fx_get(state);
	const uint32_t h = slab_alloc(fx->pool, BIG);
	const char msg[] = "through the pipe into a pool slab";
	struct io_uring_sqe *sqe;
	struct iovec v;
	int p[2];
	struct cq c;

	assert_ret(pipe2(p, O_CLOEXEC), 0);
	sqe = sqe_get(&fx->ring);
	assert_ret(rmpsc_uring_prep_read_fixed(sqe, fx->reg, h, p[0], UINT64_MAX, 100), 0);
	submit_n(&fx->ring, 1);
	sleep_ns(1000000); /* not needed for the checks: held from the prep on */
	cq_none(&fx->ring);
	expect_held(fx, h);
	assert_ret(rmpsc_uring_unregister(fx->reg, &fx->ring), -EBUSY);
	assert_ret(write(p[1], msg, sizeof msg), sizeof msg);
	c = cq_wait(&fx->ring);
	assert_int_equal(c.ud, h);
	assert_ret(c.res, sizeof msg);
	/* The CQE alone does not give the slab back: complete does. */
	assert_ret(rmpsc_pool_free(fx->pool, h), -EBUSY);
	assert_ret(rmpsc_uring_complete(fx->reg, h, c.res), 0);
	assert_ret(rmpsc_pool_get_len(fx->pool, h), sizeof msg);
	assert_ret(rmpsc_pool_payload(fx->pool, h, &v), 0);
	assert_int_equal(v.iov_len, sizeof msg);
	assert_memory_equal(v.iov_base, msg, sizeof msg);
	assert_ret(rmpsc_uring_complete(fx->reg, h, c.res), -EALREADY);
	assert_ret(rmpsc_pool_free(fx->pool, h), 0);
	assert_ret(rmpsc_uring_complete(fx->reg, h, 0), -ESTALE);
	close(p[0]);
	close(p[1]);
}

/* An SQE prepared and never submitted: complete takes the slab back, for
 * every prep; the prep fills the SQE as the header says. One of them from
 * the ring itself, turned into a NOP before the ring submits it. */
static void test_uring_complete_when_prepared_never_submitted_takes_the_slab_back(void **state)
{
	struct ufx *fx = fx_get(state);
	const int64_t f = rmpsc_uring_features();
	const uint32_t h = slab_alloc(fx->pool, BIG);
	struct io_uring_sqe *sqe;
	struct iovec slab;
	uint32_t idx;
	struct cq c;

	assert_ret(rmpsc_pool_slab(fx->pool, h, &slab), 0);
	assert_ret(rmpsc_uring_buffer(fx->reg, h, &idx, NULL), 0);
	assert_ret(rmpsc_pool_set_len(fx->pool, h, 777), 0);
	for (size_t k = 0; k < NPREPS; k++) {
		struct io_uring_sqe s;

		if (preps[k].fn == prep_zc && !(f & RMPSC_URING_HAS_SEND_ZC))
			continue;
		memset(&s, 0xa5, sizeof s);
		if (preps[k].fn(&s, fx->reg, h, 5) != 0) {
			print_error("%s failed\n", preps[k].name);
			fail();
		}
		assert_int_equal(s.opcode, preps[k].opcode);
		assert_int_equal(s.fd, 5);
		assert_int_equal(s.addr, (uintptr_t)slab.iov_base);
		assert_int_equal(s.user_data, h);
		switch (s.opcode) {
		case IORING_OP_READ_FIXED:
			assert_int_equal(s.len, BIG);
			assert_int_equal(s.buf_index, idx);
			break;
		case IORING_OP_WRITE_FIXED:
			assert_int_equal(s.len, 777);
			assert_int_equal(s.buf_index, idx);
			break;
		case IORING_OP_RECV:
			assert_int_equal(s.len, BIG);
			break;
		case IORING_OP_SEND:
			assert_int_equal(s.len, 777);
			assert_true(s.msg_flags & MSG_NOSIGNAL);
			break;
		default: /* SEND_ZC: from the registered buffer */
			assert_int_equal(s.len, 777);
			assert_true(s.msg_flags & MSG_NOSIGNAL);
			assert_true(s.ioprio & IORING_RECVSEND_FIXED_BUF);
			assert_int_equal(s.buf_index, idx);
			assert_int_equal(!!(s.ioprio & IORING_SEND_ZC_REPORT_USAGE),
					 !!(f & RMPSC_URING_HAS_ZC_REPORT_USAGE));
			break;
		}
		expect_held(fx, h);
		assert_ret(rmpsc_uring_complete(fx->reg, h, -1), 0);
		assert_ret(rmpsc_pool_get_len(fx->pool, h), 777);
		assert_ret(rmpsc_uring_complete(fx->reg, h, -1), -EALREADY);
	}
	/* From the ring's SQ: taken back, then the SQE made harmless. */
	sqe = sqe_get(&fx->ring);
	assert_ret(rmpsc_uring_prep_read_fixed(sqe, fx->reg, h, 0, 0, 10), 0);
	assert_ret(rmpsc_uring_unregister(fx->reg, &fx->ring), -EBUSY);
	assert_ret(rmpsc_uring_complete(fx->reg, h, -1), 0);
	io_uring_prep_nop(sqe);
	sqe->user_data = 42;
	submit_n(&fx->ring, 1);
	c = cq_wait(&fx->ring);
	assert_int_equal(c.ud, 42);
	assert_ret(rmpsc_pool_get_len(fx->pool, h), 777);
	assert_ret(rmpsc_pool_free(fx->pool, h), 0);
}

/* complete with a length above the slab: -EMSGSIZE, the slab released and
 * its length unchanged. */
static void test_uring_complete_when_len_above_slab_returns_emsgsize_and_releases(void **state)
{
	struct ufx *fx = fx_get(state);
	const uint32_t h = slab_alloc(fx->pool, BIG), hs = slab_alloc(fx->pool, SMALL);
	struct io_uring_sqe s;

	assert_ret(rmpsc_pool_set_len(fx->pool, h, 10), 0);
	assert_ret(rmpsc_uring_prep_recv(&s, fx->reg, h, 3, 0), 0);
	assert_ret(rmpsc_uring_complete(fx->reg, h, BIG + 1), -EMSGSIZE);
	assert_ret(rmpsc_pool_get_len(fx->pool, h), 10);
	assert_ret(rmpsc_uring_complete(fx->reg, h, 0), -EALREADY);
	/* Exactly the slab size is fine, in each tier. */
	assert_ret(rmpsc_uring_prep_recv(&s, fx->reg, h, 3, 0), 0);
	assert_ret(rmpsc_uring_complete(fx->reg, h, BIG), 0);
	assert_ret(rmpsc_pool_get_len(fx->pool, h), BIG);
	assert_ret(rmpsc_uring_prep_recv(&s, fx->reg, hs, 3, 0), 0);
	assert_ret(rmpsc_uring_complete(fx->reg, hs, SMALL + 1), -EMSGSIZE);
	assert_ret(rmpsc_uring_prep_recv(&s, fx->reg, hs, 3, 0), 0);
	assert_ret(rmpsc_uring_complete(fx->reg, hs, INT64_MAX), -EMSGSIZE);
	assert_ret(rmpsc_pool_get_len(fx->pool, hs), 0);
	assert_ret(rmpsc_pool_free(fx->pool, h), 0);
	assert_ret(rmpsc_pool_free(fx->pool, hs), 0);
	/* The teardown's unregister proves the registration holds nothing. */
}

/* A read longer than the slab: -EMSGSIZE, the SQE untouched and the
 * handle not held (free works, unregister works). */
static void test_uring_prep_when_len_above_slab_returns_emsgsize_and_handle_not_held(void **state)
{
	struct ufx *fx = fx_get(state);
	const uint32_t h = slab_alloc(fx->pool, BIG), hs = slab_alloc(fx->pool, SMALL);
	const uint32_t lens[] = { BIG + 1, 0x80000000u, UINT32_MAX };
	struct io_uring_sqe s, ref;

	memset(&ref, 0xa5, sizeof ref);
	for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		s = ref;
		assert_ret(rmpsc_uring_prep_read_fixed(&s, fx->reg, h, 3, 0, lens[i]), -EMSGSIZE);
		assert_memory_equal(&s, &ref, sizeof s);
		assert_ret(rmpsc_pool_get_len(fx->pool, h), 0);
	}
	s = ref;
	assert_ret(rmpsc_uring_prep_read_fixed(&s, fx->reg, hs, 3, 0, SMALL + 1), -EMSGSIZE);
	assert_memory_equal(&s, &ref, sizeof s);
	assert_ret(rmpsc_uring_complete(fx->reg, h, -1), -EALREADY);
	assert_ret(rmpsc_pool_free(fx->pool, h), 0);
	assert_ret(rmpsc_pool_free(fx->pool, hs), 0);
	assert_ret(rmpsc_uring_unregister(fx->reg, &fx->ring), 0);
	fx->reg = NULL;
	assert_ret(rmpsc_pool_destroy(fx->pool, 0, NULL), 0);
	fx->pool = NULL;
}

/* Bad arguments to every prep, to complete and to buffer: the documented
 * code, the SQE untouched, the handle not held. */
static void test_uring_prep_when_arguments_bad_returns_documented_code_sqe_untouched(
	void **state)
{
	struct ufx *fx = fx_get(state);
	const int64_t f = rmpsc_uring_features();
	const uint32_t h = slab_alloc(fx->pool, BIG);
	const uint32_t stale = slab_alloc(fx->pool, BIG);
	rmpsc_uring_reg *const wrong[] = { NULL, FOREIGN(rmpsc_uring_reg),
					   (rmpsc_uring_reg *)(void *)fx->pool };
	struct io_uring_sqe s, ref;
	struct iovec v = { 0 };
	uint32_t idx = 0;
	int bad = 0;

	assert_ret(rmpsc_pool_free(fx->pool, stale), 0);
	memset(&ref, 0x5a, sizeof ref);
	for (size_t k = 0; k < NPREPS; k++) {
		const struct {
			const char *what;
			bool null_sqe;
			rmpsc_uring_reg *reg;
			uint32_t h;
			int fd;
			int want;
		} rows[] = {
			{ "NULL sqe", true, fx->reg, h, 3, -EINVAL },
			{ "fd -1", false, fx->reg, h, -1, -EINVAL },
			{ "fd INT_MIN", false, fx->reg, h, INT_MIN, -EINVAL },
			{ "stale handle", false, fx->reg, stale, 3, -ESTALE },
			{ "handle 0", false, fx->reg, RMPSC_POOL_HANDLE_NONE, 3, -EINVAL },
			{ "reg NULL", false, wrong[0], h, 3, -EBADF },
			{ "reg foreign", false, wrong[1], h, 3, -EBADF },
			{ "reg is a pool", false, wrong[2], h, 3, -EBADF },
		};

		if (preps[k].fn == prep_zc && !(f & RMPSC_URING_HAS_SEND_ZC))
			continue;
		for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
			int got;

			s = ref;
			got = preps[k].fn(rows[r].null_sqe ? NULL : &s, rows[r].reg, rows[r].h,
					  rows[r].fd);
			if (got != rows[r].want) {
				print_error("%s with %s: %d (%s), expected %s\n", preps[k].name,
					    rows[r].what, got, errname(got), errname(rows[r].want));
				bad++;
				if (got == 0)
					(void)rmpsc_uring_complete(fx->reg, rows[r].h, -1);
			}
			if (memcmp(&s, &ref, sizeof s)) {
				print_error("%s with %s: SQE written\n", preps[k].name,
					    rows[r].what);
				bad++;
			}
			if (rmpsc_pool_get_len(fx->pool, h) != 0) {
				print_error("%s with %s: handle left held\n", preps[k].name,
					    rows[r].what);
				bad++;
			}
		}
	}
	assert_int_equal(bad, 0);
	for (size_t w = 0; w < 3; w++) {
		assert_ret(rmpsc_uring_complete(wrong[w], h, 0), -EBADF);
		assert_ret(rmpsc_uring_buffer(wrong[w], h, &idx, &v), -EBADF);
		assert_ret(rmpsc_uring_unregister(wrong[w] ? wrong[w] : FOREIGN(rmpsc_uring_reg),
						  &fx->ring),
			   -EBADF);
	}
	assert_ret(rmpsc_uring_complete(fx->reg, stale, 0), -ESTALE);
	assert_ret(rmpsc_uring_complete(fx->reg, RMPSC_POOL_HANDLE_NONE, 0), -EINVAL);
	assert_ret(rmpsc_uring_complete(fx->reg, h, 0), -EALREADY);
	assert_ret(rmpsc_uring_buffer(fx->reg, stale, &idx, &v), -ESTALE);
	assert_ret(rmpsc_uring_buffer(fx->reg, RMPSC_POOL_HANDLE_NONE, &idx, &v), -EINVAL);
	/* A handle whose index is beyond the tier: -EINVAL, as rmpsc_pool_slab(). */
	assert_ret(rmpsc_uring_buffer(fx->reg, 0x7fffffffu, &idx, &v),
		   rmpsc_pool_slab(fx->pool, 0x7fffffffu, &v));
	assert_ret(rmpsc_pool_free(fx->pool, h), 0);
}

/* A prep and complete loop on one thread, a free of the same handle on
 * another: the free is -EBUSY while the kernel holds the slab, and once
 * it succeeds the next prep is -ESTALE; a prep that succeeded always
 * completes. The prep loop stops after 1000 rounds if the free has not
 * won by then. */
struct race {
	rmpsc_uring_reg *reg;
	rmpsc_pool *pool;
	uint32_t h;
	atomic_int go;
	int prep_err;   /* the prep loop's ending code: -ESTALE */
	int bad;        /* a complete that failed, or a free that returned neither */
	uint64_t preps; /* successful preps */
};

static void *race_prep(void *arg)
{
	struct race *r = arg;
	struct io_uring_sqe s;

	while (!atomic_load_explicit(&r->go, memory_order_acquire))
		;
	for (int i = 0; i < 1000; i++) {
		const int err = rmpsc_uring_prep_recv(&s, r->reg, r->h, 3, 0);

		if (err) {
			r->prep_err = err;
			return NULL;
		}
		r->preps++;
		if (rmpsc_uring_complete(r->reg, r->h, -1) != 0)
			r->bad++;
	}
	return NULL; /* the free had not won yet: it will now */
}

static void test_uring_prep_when_racing_a_free_of_the_handle_exactly_one_wins(void **state)
{
	struct ufx *fx = fx_get(state);
	const int rounds = STRESS_SCALE(300, 100, 30);
	uint64_t busy = 0, won = 0, stale = 0;

	for (int i = 0; i < rounds; i++) {
		struct race r = { .reg = fx->reg, .pool = fx->pool };
		pthread_t t;
		int err;

		r.h = slab_alloc(fx->pool, BIG);
		assert_ret(pthread_create(&t, NULL, race_prep, &r), 0);
		atomic_store_explicit(&r.go, 1, memory_order_release);
		for (int spin = 0; spin < i % 50; spin++)
			sched_yield();
		while ((err = rmpsc_pool_free(fx->pool, r.h)) == -EBUSY)
			busy++;
		assert_ret(err, 0);
		assert_ret(pthread_join(t, NULL), 0);
		if (r.prep_err != 0)
			assert_ret(r.prep_err, -ESTALE);
		stale += r.prep_err != 0;
		assert_int_equal(r.bad, 0);
		won += r.preps;
	}
	print_message("%d rounds: %" PRIu64 " preps, %" PRIu64 " frees refused, %" PRIu64
		      " preps refused as stale\n",
		      rounds, won, busy, stale);
	/* The teardown's unregister: every successful prep was completed. */
}

/* One pool on two rings at once: each registration maps a handle to its
 * own ring's entry, reads go through either, and each unregisters alone. */
static void test_uring_register_when_pool_on_two_rings_both_read_through(void **state)
{
	struct ufx *fx = fx_get(state);
	const int fd = file_make(FILE_SEED, 256 * KIB);
	struct io_uring ring2;
	rmpsc_uring_reg *reg2 = SENTINEL_OF(rmpsc_uring_reg);
	const uint32_t h = slab_alloc(fx->pool, BIG), hs = slab_alloc(fx->pool, SMALL);
	uint64_t out = 9;

	ring_init(&ring2, 4);
	assert_ret(rmpsc_uring_register(&ring2, fx->pool, 0, 0, NULL, &reg2), 0);
	assert_handle(reg2, SENTINEL_OF(rmpsc_uring_reg));
	read_through(&ring2, reg2, fx->pool, h, fd, 5, 60000, 1);
	read_through(&fx->ring, fx->reg, fx->pool, h, fd, 100000, BIG, 1);
	read_through(&ring2, reg2, fx->pool, hs, fd, 17, SMALL, 0);
	assert_ret(rmpsc_uring_unregister(fx->reg, &fx->ring), 0);
	fx->reg = NULL;
	/* The second registration still holds the pool. */
	assert_ret(rmpsc_pool_free(fx->pool, h), 0);
	assert_ret(rmpsc_pool_free(fx->pool, hs), 0);
	assert_ret(rmpsc_pool_destroy(fx->pool, 0, &out), -EBUSY);
	read_through(&ring2, reg2, fx->pool, slab_alloc(fx->pool, BIG), fd, 0, 1000, 1);
	assert_ret(rmpsc_pool_destroy(fx->pool, RMPSC_POOL_DESTROY_FORCE, &out), 0);
	assert_int_equal(out, 1);
	fx->pool = NULL;
	assert_ret(rmpsc_uring_unregister(reg2, &ring2), 0);
	io_uring_queue_exit(&ring2);
	close(fd);
}

/* A prep completed through the pool's other registration: refused
 * (-EINVAL) while that registration has nothing outstanding, so neither
 * count goes wrong; the right one completes it, and both unregister. */
static void test_uring_complete_when_other_registration_returns_einval(void **state)
{
	struct ufx *fx = fx_get(state);
	struct io_uring ring2;
	rmpsc_uring_reg *reg2 = SENTINEL_OF(rmpsc_uring_reg);
	const uint32_t h = slab_alloc(fx->pool, BIG);
	struct io_uring_sqe sqe;

	ring_init(&ring2, 4);
	assert_ret(rmpsc_uring_register(&ring2, fx->pool, 0, 0, NULL, &reg2), 0);
	assert_ret(rmpsc_uring_prep_read_fixed(&sqe, fx->reg, h, 0, 0, 10), 0);
	assert_ret(rmpsc_uring_complete(reg2, h, -1), -EINVAL);
	assert_ret(rmpsc_pool_free(fx->pool, h), -EBUSY); /* still the kernel's */
	/* Both with one outstanding: each completes only its own. */
	{
		const uint32_t h2 = slab_alloc(fx->pool, BIG);

		assert_ret(rmpsc_uring_prep_read_fixed(&sqe, reg2, h2, 0, 0, 10), 0);
		assert_ret(rmpsc_uring_complete(fx->reg, h2, -1), -EINVAL);
		assert_ret(rmpsc_uring_complete(reg2, h, -1), -EINVAL);
		assert_ret(rmpsc_uring_complete(reg2, h2, -1), 0);
		assert_ret(rmpsc_pool_free(fx->pool, h2), 0);
	}
	assert_ret(rmpsc_uring_unregister(reg2, &ring2), 0);
	assert_ret(rmpsc_uring_complete(fx->reg, h, -1), 0);
	assert_ret(rmpsc_uring_unregister(fx->reg, &fx->ring), 0);
	fx->reg = NULL;
	assert_ret(rmpsc_pool_free(fx->pool, h), 0);
	io_uring_queue_exit(&ring2);
}

/* ---- register errors --------------------------------------------------------------- */

static void expect_register(struct io_uring *ring, rmpsc_pool *pool, uint32_t first,
			    uint32_t flags, rmpsc_uring_reg_info *info, int want)
{
	rmpsc_uring_reg *reg = SENTINEL_OF(rmpsc_uring_reg);
	const int got = rmpsc_uring_register(ring, pool, first, flags, info, &reg);

	if (got != want) {
		print_error("register(first %u, flags %#x) = %d (%s), expected %s\n", first, flags,
			    got, errname(got), errname(want));
		if (got == 0)
			(void)rmpsc_uring_unregister(reg, ring);
		fail();
	}
	if (want)
		assert_null(reg);
}

/* Unknown flags, first_index without UPDATE, NULL ring or out, bad info
 * sizes: -EINVAL; not a pool: -EBADF. Afterwards the ring has no table. */
static void test_uring_register_when_arguments_bad_returns_einval_or_ebadf(void **state)
{
	const uint32_t sizes[] = { 0, 8, 24, 31, 36, 33, 8192 };
	rmpsc_uring_reg_info info;
	struct io_uring ring;
	rmpsc_pool *pool;
	rmpsc_uring_reg *reg;

	(void)state;
	need_features(RMPSC_URING_HAS_FIXED);
	pool = pool_make(fx_tiers, 2);
	ring_init(&ring, 4);
	expect_register(&ring, pool, 0, 1u << 1, NULL, -EINVAL);
	expect_register(&ring, pool, 0, 1u << 31, NULL, -EINVAL);
	expect_register(&ring, pool, 0, ~(uint32_t)RMPSC_URING_REG_F_ALL, NULL, -EINVAL);
	expect_register(&ring, pool, 1, 0, NULL, -EINVAL);
	expect_register(&ring, pool, 8, 0, NULL, -EINVAL);
	expect_register(NULL, pool, 0, 0, NULL, -EINVAL);
	assert_ret(rmpsc_uring_register(&ring, pool, 0, 0, NULL, NULL), -EINVAL);
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		memset(&info, 0, sizeof info);
		info.size = sizes[i];
		expect_register(&ring, pool, 0, 0, &info, -EINVAL);
	}
	expect_register(&ring, NULL, 0, 0, NULL, -EBADF);
	expect_register(&ring, FOREIGN(rmpsc_pool), 0, 0, NULL, -EBADF);
	/* Nothing was left registered on the ring, nor held on the pool. */
	assert_ret(rmpsc_uring_register(&ring, pool, 0, 0, NULL, &reg), 0);
	assert_ret(rmpsc_uring_unregister(reg, &ring), 0);
	io_uring_queue_exit(&ring);
	assert_ret(rmpsc_pool_destroy(pool, 0, NULL), 0);
}

/* A ring with a table already (ours, or its own sparse one): -EBUSY; after
 * unregister the ring takes a new registration. */
static void test_uring_register_when_ring_has_a_table_returns_ebusy(void **state)
{
	struct ufx *fx = fx_get(state);
	rmpsc_pool *other = pool_make1(SMALL, 4);
	struct io_uring ring;
	rmpsc_uring_reg *reg;

	expect_register(&fx->ring, other, 0, 0, NULL, -EBUSY);
	expect_register(&fx->ring, fx->pool, 0, 0, NULL, -EBUSY);
	ring_init(&ring, 4);
	assert_ret(io_uring_register_buffers_sparse(&ring, 8), 0);
	expect_register(&ring, other, 0, 0, NULL, -EBUSY);
	io_uring_queue_exit(&ring);
	/* The table goes with unregister. */
	assert_ret(rmpsc_uring_unregister(fx->reg, &fx->ring), 0);
	fx->reg = NULL;
	assert_ret(rmpsc_uring_register(&fx->ring, other, 0, 0, NULL, &reg), 0);
	assert_ret(rmpsc_uring_unregister(reg, &fx->ring), 0);
	assert_ret(rmpsc_pool_destroy(other, 0, NULL), 0);
}

/* UPDATE into a sparse table of 64 at entry 8: the entries are 8 and 9,
 * reads go through them; unregister empties them again (a read through
 * entry 8 fails) and leaves the table (a plain register is still -EBUSY,
 * an UPDATE works again). */
static void test_uring_register_update_when_sparse_table_fills_from_first_index(void **state)
{
	rmpsc_pool *pool;
	struct io_uring ring;
	rmpsc_uring_reg *reg = SENTINEL_OF(rmpsc_uring_reg);
	rmpsc_uring_reg_info info = { .size = sizeof info };
	uint32_t hs, hb;
	int fd;
	struct cq c;
	struct io_uring_sqe *sqe;
	static unsigned char scratch[SMALL];

	(void)state;
	need_features(RMPSC_URING_HAS_FIXED);
	pool = pool_make(fx_tiers, 2);
	fd = file_make(FILE_SEED, 256 * KIB);
	ring_init(&ring, 8);
	assert_ret(io_uring_register_buffers_sparse(&ring, 64), 0);
	assert_ret(rmpsc_uring_register(&ring, pool, 8, RMPSC_URING_REG_UPDATE, &info, &reg), 0);
	assert_handle(reg, SENTINEL_OF(rmpsc_uring_reg));
	assert_int_equal(info.first_index, 8);
	assert_int_equal(info.buffers, 2);
	hs = slab_alloc(pool, SMALL);
	hb = slab_alloc(pool, BIG);
	read_through(&ring, reg, pool, hs, fd, 1000, SMALL, 8);
	read_through(&ring, reg, pool, hb, fd, 70000, BIG, 9);
	assert_ret(rmpsc_pool_free(pool, hs), 0);
	assert_ret(rmpsc_pool_free(pool, hb), 0);
	assert_ret(rmpsc_uring_unregister(reg, &ring), 0);
	/* Entry 8 is empty again. */
	sqe = sqe_get(&ring);
	io_uring_prep_read_fixed(sqe, fd, scratch, 100, 0, 8);
	sqe->user_data = 8;
	submit_n(&ring, 1);
	c = cq_wait(&ring);
	assert_int_equal(c.ud, 8);
	print_message("READ_FIXED through an emptied entry: %d (%s)\n", c.res, errname(c.res));
	assert_true(c.res < 0);
	/* The sparse table is the ring's still. */
	expect_register(&ring, pool, 0, 0, NULL, -EBUSY);
	assert_ret(rmpsc_uring_register(&ring, pool, 62, RMPSC_URING_REG_UPDATE, &info, &reg), 0);
	assert_int_equal(info.first_index, 62);
	hb = slab_alloc(pool, BIG);
	read_through(&ring, reg, pool, hb, fd, 3, 5000, 63);
	assert_ret(rmpsc_pool_free(pool, hb), 0);
	assert_ret(rmpsc_uring_unregister(reg, &ring), 0);
	io_uring_queue_exit(&ring);
	assert_ret(rmpsc_pool_destroy(pool, 0, NULL), 0);
	close(fd);
}

/* UPDATE whose entries pass the sparse table's end, or
 * RMPSC_URING_BUFFERS_MAX: -ENOSPC, nothing held. */
static void test_uring_register_update_when_past_the_table_end_returns_enospc(void **state)
{
	rmpsc_pool *pool;
	struct io_uring ring;
	rmpsc_uring_reg_info info = { .size = sizeof info };

	(void)state;
	need_features(RMPSC_URING_HAS_FIXED);
	pool = pool_make(fx_tiers, 2);
	ring_init(&ring, 4);
	assert_ret(io_uring_register_buffers_sparse(&ring, 64), 0);
	expect_register(&ring, pool, 63, RMPSC_URING_REG_UPDATE, NULL, -ENOSPC);
	expect_register(&ring, pool, 64, RMPSC_URING_REG_UPDATE, NULL, -ENOSPC);
	expect_register(&ring, pool, 1000, RMPSC_URING_REG_UPDATE, NULL, -ENOSPC);
	expect_register(&ring, pool, RMPSC_URING_BUFFERS_MAX - 1, RMPSC_URING_REG_UPDATE, &info,
			-ENOSPC);
	expect_register(&ring, pool, RMPSC_URING_BUFFERS_MAX, RMPSC_URING_REG_UPDATE, NULL,
			-ENOSPC);
	expect_register(&ring, pool, UINT32_MAX, RMPSC_URING_REG_UPDATE, NULL, -ENOSPC);
	io_uring_queue_exit(&ring);
	assert_ret(rmpsc_pool_destroy(pool, 0, NULL), 0);
}

/* UPDATE on a ring without a table: -ENXIO. */
static void test_uring_register_update_when_ring_has_no_table_returns_enxio(void **state)
{
	rmpsc_pool *pool;
	struct io_uring ring;

	(void)state;
	need_features(RMPSC_URING_HAS_FIXED);
	pool = pool_make(fx_tiers, 2);
	ring_init(&ring, 4);
	expect_register(&ring, pool, 0, RMPSC_URING_REG_UPDATE, NULL, -ENXIO);
	expect_register(&ring, pool, 4, RMPSC_URING_REG_UPDATE, NULL, -ENXIO);
	io_uring_queue_exit(&ring);
	assert_ret(rmpsc_pool_destroy(pool, 0, NULL), 0);
}

/* ---- unregister and the pool's lifetime ------------------------------------------ */

/* A prep not completed: unregister -EBUSY and nothing changed (the table
 * is there, reads through it work); after complete it goes. */
static void test_uring_unregister_when_prep_not_completed_returns_ebusy(void **state)
{
	struct ufx *fx = fx_get(state);
	const uint32_t h = slab_alloc(fx->pool, BIG), h2 = slab_alloc(fx->pool, BIG);
	const int fd = file_make(FILE_SEED, 128 * KIB);
	struct io_uring_sqe s;

	assert_ret(rmpsc_uring_prep_send(&s, fx->reg, h, 3, 0), 0);
	assert_ret(rmpsc_uring_unregister(fx->reg, &fx->ring), -EBUSY);
	assert_ret(rmpsc_uring_unregister(fx->reg, NULL), -EBUSY);
	expect_register(&fx->ring, fx->pool, 0, 0, NULL, -EBUSY);
	read_through(&fx->ring, fx->reg, fx->pool, h2, fd, 99, 1234, 1);
	assert_ret(rmpsc_uring_complete(fx->reg, h, -1), 0);
	assert_ret(rmpsc_pool_free(fx->pool, h), 0);
	assert_ret(rmpsc_pool_free(fx->pool, h2), 0);
	assert_ret(rmpsc_uring_unregister(fx->reg, &fx->ring), 0);
	fx->reg = NULL;
	close(fd);
}

/* The registration holds the pool: destroy without FORCE is -EBUSY (no
 * slab out), the pool still works; after unregister, destroy works. */
static void test_uring_pool_destroy_when_registered_returns_ebusy(void **state)
{
	struct ufx *fx = fx_get(state);
	uint64_t out = 99;
	uint32_t h;

	assert_ret(rmpsc_pool_destroy(fx->pool, 0, &out), -EBUSY);
	assert_int_equal(out, 0);
	h = slab_alloc(fx->pool, 1);
	assert_ret(rmpsc_pool_free(fx->pool, h), 0);
	assert_ret(rmpsc_uring_unregister(fx->reg, &fx->ring), 0);
	fx->reg = NULL;
	assert_ret(rmpsc_pool_destroy(fx->pool, 0, &out), 0);
	fx->pool = NULL;
}

/* FORCE under a registration: 0, the handle dead (-EBADF) but its memory
 * kept (the kernel still has it registered) until unregister, which
 * works; ASan sees no use after free and no leak. */
static void test_uring_pool_destroy_force_when_registered_unregister_still_works(void **state)
{
	struct ufx *fx = fx_get(state);
	uint64_t out = 99;
	uint32_t h = 0;
	rmpsc_pool *again;
	rmpsc_uring_reg *reg;

	assert_ret(rmpsc_pool_destroy(fx->pool, RMPSC_POOL_DESTROY_FORCE, &out), 0);
	assert_int_equal(out, 0);
	assert_ret(rmpsc_pool_alloc(fx->pool, 1, &h), -EBADF);
	assert_ret(rmpsc_pool_capacity(fx->pool), -EBADF);
	assert_ret(rmpsc_pool_destroy(fx->pool, 0, NULL), -EBADF);
	fx->pool = NULL;
	assert_ret(rmpsc_uring_unregister(fx->reg, &fx->ring), 0);
	fx->reg = NULL;
	/* The table went with it. */
	again = pool_make1(SMALL, 4);
	assert_ret(rmpsc_uring_register(&fx->ring, again, 0, 0, NULL, &reg), 0);
	assert_ret(rmpsc_uring_unregister(reg, &fx->ring), 0);
	assert_ret(rmpsc_pool_destroy(again, 0, NULL), 0);
}

/* FORCE while a READ_FIXED is in flight (an empty pipe): destroy returns
 * 0, the slab's memory stays mapped; the kernel's write lands in it, the
 * read completes, complete takes the slab back and unregister then
 * works, with nothing leaked (ASan). */
static void test_uring_pool_destroy_force_when_read_in_flight_memory_kept_until_unregister(
	void **state)
{
	struct ufx *fx = fx_get(state);
	const uint32_t h = slab_alloc(fx->pool, BIG);
	const char msg[] = "written after the pool was destroyed";
	struct io_uring_sqe *sqe;
	struct iovec slab;
	uint64_t out = 0;
	int p[2];
	struct cq c;

	assert_ret(rmpsc_pool_slab(fx->pool, h, &slab), 0);
	assert_ret(pipe2(p, O_CLOEXEC), 0);
	sqe = sqe_get(&fx->ring);
	assert_ret(rmpsc_uring_prep_read_fixed(sqe, fx->reg, h, p[0], UINT64_MAX, 100), 0);
	submit_n(&fx->ring, 1);
	assert_ret(rmpsc_pool_destroy(fx->pool, RMPSC_POOL_DESTROY_FORCE, &out), 0);
	assert_int_equal(out, 1);
	fx->pool = NULL;
	assert_ret(rmpsc_uring_unregister(fx->reg, &fx->ring), -EBUSY);
	assert_ret(write(p[1], msg, sizeof msg), sizeof msg);
	c = cq_wait(&fx->ring);
	assert_int_equal(c.ud, h);
	assert_ret(c.res, sizeof msg);
	assert_memory_equal(slab.iov_base, msg, sizeof msg);
	assert_ret(rmpsc_uring_complete(fx->reg, h, c.res), 0);
	assert_ret(rmpsc_uring_unregister(fx->reg, &fx->ring), 0);
	fx->reg = NULL;
	close(p[0]);
	close(p[1]);
}

/* The ring gone first (io_uring_queue_exit): unregister(reg, NULL) drops
 * the registration, and the pool is free to go. */
static void test_uring_unregister_when_ring_gone_with_null_ring_returns_0(void **state)
{
	struct ufx *fx = fx_get(state);

	io_uring_queue_exit(&fx->ring);
	fx->ring_live = false;
	assert_ret(rmpsc_uring_unregister(fx->reg, NULL), 0);
	fx->reg = NULL;
	assert_ret(rmpsc_uring_unregister(NULL, NULL), 0);
	assert_ret(rmpsc_pool_destroy(fx->pool, 0, NULL), 0);
	fx->pool = NULL;
}

/* ---- children: this binary again ----------------------------------------------- */

#define CHILD_MEMLOCK "--child-memlock"
#define CHILD_USERNS "--child-userns"
#define CHILD_ENOSYS "--child-no-uring-enosys"
#define CHILD_EPERM "--child-no-uring-eperm"

/* A verdict of a child: 0, or the exit code after a message. */
#define CHILD_CHECK(cond, code, ...)                                           \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "test_uring child: " __VA_ARGS__);     \
			fputc('\n', stderr);                                   \
			return (code);                                         \
		}                                                              \
	} while (0)

static const char *setpriv_path(void)
{
	static const char *const cands[] = { "/usr/bin/setpriv", "/bin/setpriv",
					     "/usr/sbin/setpriv", "/sbin/setpriv" };

	for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++)
		if (access(cands[i], X_OK) == 0)
			return cands[i];
	return NULL;
}

/*
 * Run this binary again with argv[1] = @mode: under setpriv without
 * CAP_IPC_LOCK (inheritable or bounding) when @drop_ipc_lock, with
 * RLIMIT_MEMLOCK set to @memlock (soft and hard) when non-zero. Its exit
 * status (128 + signal when killed).
 */
static int run_self(const char *mode, uint64_t memlock, bool drop_ipc_lock)
{
	char exe[PATH_MAX];
	const char *sp = setpriv_path();
	const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	int st = 0;
	pid_t pid;

	assert_true(n > 0);
	exe[n] = 0;
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (memlock) {
			const struct rlimit rl = { .rlim_cur = memlock, .rlim_max = memlock };

			if (setrlimit(RLIMIT_MEMLOCK, &rl))
				_exit(120);
		}
		if (drop_ipc_lock) {
			char *const argv[] = { (char *)"setpriv", (char *)"--inh-caps=-ipc_lock",
					       (char *)"--bounding-set=-ipc_lock", exe,
					       (char *)mode, NULL };

			execv(sp, argv);
		} else {
			char *const argv[] = { exe, (char *)mode, NULL };

			execv(exe, argv);
		}
		_exit(121);
	}
	while (waitpid(pid, &st, 0) < 0)
		assert_int_equal(errno, EINTR);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The child's verdict: 0 passes, 77 skips, anything else fails. */
static void expect_child(const char *mode, int st)
{
	if (st == 77) {
		print_message("child %s: skipped\n", mode);
		skip();
	}
	if (st != 0) {
		print_error("child %s exited %d (see its message above)\n", mode, st);
		fail();
	}
}

/* In the child: no CAP_IPC_LOCK, RLIMIT_MEMLOCK 8 MiB. */
static int child_memlock(void)
{
	struct io_uring ring;
	rmpsc_pool_config cfg;
	rmpsc_pool *big = NULL, *small = NULL;
	rmpsc_uring_reg *reg = SENTINEL_OF(rmpsc_uring_reg);
	rmpsc_uring_reg_info info;
	int err;

	CHILD_CHECK(rmpsc_pool_config_init(&cfg, sizeof cfg) == 0, 2, "pool config");
	cfg.slab_size = BIG;
	cfg.slab_count = 256; /* 16 MiB */
	CHILD_CHECK(rmpsc_pool_create(&cfg, &big) == 0, 3, "16 MiB pool");
	cfg.slab_count = 64; /* 4 MiB */
	CHILD_CHECK(rmpsc_pool_create(&cfg, &small) == 0, 4, "4 MiB pool");
	err = io_uring_queue_init(4, &ring, 0);
	CHILD_CHECK(err == 0, 5, "io_uring_queue_init: %d", err);
	memset(&info, 0xa5, sizeof info);
	info.size = sizeof info;
	err = rmpsc_uring_register(&ring, big, 0, 0, &info, &reg);
	CHILD_CHECK(err == -ENOMEM, 10, "16 MiB under 8 MiB memlock: %d (%s), expected -ENOMEM",
		    err, errname(err));
	CHILD_CHECK(reg == NULL, 11, "out not NULL on error");
	CHILD_CHECK(info.size == sizeof info, 12, "info.size %u", info.size);
	CHILD_CHECK(info.bytes >= 16 * MIB, 13, "info.bytes %" PRIu64 " < 16 MiB", info.bytes);
	CHILD_CHECK(info.memlock_limit == 8 * MIB, 14, "info.memlock_limit %" PRIu64,
		    info.memlock_limit);
	CHILD_CHECK(info.cap_ipc_lock == 0, 15, "info.cap_ipc_lock %u", info.cap_ipc_lock);
	CHILD_CHECK(info.buffers == 1 && info.first_index == 0, 16, "info.buffers %u first %u",
		    info.buffers, info.first_index);
	memset(&info, 0xa5, sizeof info);
	info.size = sizeof info;
	err = rmpsc_uring_register(&ring, small, 0, 0, &info, &reg);
	CHILD_CHECK(err == 0, 20, "4 MiB under 8 MiB memlock: %d (%s)", err, errname(err));
	CHILD_CHECK(info.bytes >= 4 * MIB && info.bytes < 8 * MIB, 21, "info.bytes %" PRIu64,
		    info.bytes);
	CHILD_CHECK(info.memlock_limit == 8 * MIB && info.cap_ipc_lock == 0, 22,
		    "info.memlock_limit %" PRIu64 " cap %u", info.memlock_limit,
		    info.cap_ipc_lock);
	CHILD_CHECK(rmpsc_uring_unregister(reg, &ring) == 0, 23, "unregister");
	io_uring_queue_exit(&ring);
	CHILD_CHECK(rmpsc_pool_destroy(big, 0, NULL) == 0, 24, "destroy: the failed register "
		    "left a reference");
	CHILD_CHECK(rmpsc_pool_destroy(small, 0, NULL) == 0, 25, "destroy");
	return 0;
}

/* Without CAP_IPC_LOCK and with RLIMIT_MEMLOCK at 8 MiB: 16 MiB is refused
 * with -ENOMEM and the numbers, 4 MiB registers. Needs root (to drop a
 * capability it has) and setpriv. */
static void test_uring_register_when_memlock_low_without_cap_ipc_lock_returns_enomem(
	void **state)
{
	(void)state;
	need_features(RMPSC_URING_HAS_FIXED);
	if (geteuid() != 0 || !setpriv_path()) {
		print_message("needs root and setpriv: skipped\n");
		skip();
	}
	expect_child(CHILD_MEMLOCK, run_self(CHILD_MEMLOCK, 8 * MIB, true));
}

/* In the child: a new user namespace, where it has every capability, yet
 * the kernel checks CAP_IPC_LOCK in the initial one: info must say
 * cap_ipc_lock 0 and the memlock limit still holds. */
static int child_userns(void)
{
	if (unshare(CLONE_NEWUSER)) {
		fprintf(stderr, "test_uring child: unshare(CLONE_NEWUSER): %s\n", strerror(errno));
		return 77;
	}
	return child_memlock();
}

/* A capability held only in a child user namespace is not reported as
 * exempting the registration from RLIMIT_MEMLOCK (the kernel asks the
 * initial namespace): -ENOMEM with cap_ipc_lock 0. */
static void test_uring_register_when_in_a_user_namespace_reports_no_cap_ipc_lock(void **state)
{
	(void)state;
	need_features(RMPSC_URING_HAS_FIXED);
	expect_child(CHILD_USERNS, run_self(CHILD_USERNS, 8 * MIB, false));
}

/* In the child: io_uring_setup fails with @err (a seccomp filter). */
static int child_no_uring(int err)
{
#if defined(__x86_64__)
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((uint32_t)err & SECCOMP_RET_DATA)),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	const struct sock_fprog prog = { .len = sizeof f / sizeof f[0], .filter = f };
	const int want = err == ENOSYS ? -ENOSYS : -EOPNOTSUPP;
	struct io_uring ring;
	rmpsc_pool *pool = NULL;
	rmpsc_io_config cfg;
	rmpsc_io *io = SENTINEL_OF(rmpsc_io);
	int64_t got;
	int rc;

	CHILD_CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0, 2, "no_new_privs");
	CHILD_CHECK(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0, 3, "seccomp: %s",
		    strerror(errno));
	rc = io_uring_queue_init(4, &ring, 0);
	CHILD_CHECK(rc == -err, 4, "the filter: io_uring_queue_init %d", rc);
	got = rmpsc_uring_features();
	CHILD_CHECK(got == want, 10, "features %lld (%s), expected %s", (long long)got,
		    errname(got), errname(want));
	got = rmpsc_uring_features();
	CHILD_CHECK(got == want, 11, "features, second call: %lld", (long long)got);
	{
		rmpsc_pool_config pc;

		CHILD_CHECK(rmpsc_pool_config_init(&pc, sizeof pc) == 0, 5, "pool config");
		pc.slab_size = SMALL;
		pc.slab_count = 8;
		CHILD_CHECK(rmpsc_pool_create(&pc, &pool) == 0, 6, "pool");
	}
	CHILD_CHECK(rmpsc_io_config_init(&cfg, sizeof cfg) == 0, 12, "io config");
	cfg.pool = pool;
	rc = rmpsc_io_create(&cfg, &io);
	CHILD_CHECK(rc == want, 13, "rmpsc_io_create %d (%s), expected %s", rc, errname(rc),
		    errname(want));
	CHILD_CHECK(io == NULL, 14, "rmpsc_io_create: out not NULL");
	rc = rmpsc_uring_features() == want;
	CHILD_CHECK(rc, 15, "features after create changed");
	CHILD_CHECK(rmpsc_pool_destroy(pool, 0, NULL) == 0, 16,
		    "pool destroy: the failed create left a reference");
	return 0;
#else
	(void)err;
	fprintf(stderr, "test_uring child: the seccomp filter is written for x86_64\n");
	return 77;
#endif
}

/* io_uring_setup refused by a seccomp filter in a fresh process (the probe
 * is once per process): ENOSYS is "no io_uring" (-ENOSYS from the features
 * and from rmpsc_io_create()), EPERM "disabled" (-EOPNOTSUPP). */
static void test_uring_features_when_io_uring_setup_refused_returns_enosys_or_eopnotsupp(
	void **state)
{
	const char *mode = test_param(state) == ENOSYS ? CHILD_ENOSYS : CHILD_EPERM;

	expect_child(mode, run_self(mode, 0, false));
}

/* ---- streams: a writer thread ------------------------------------------------------ */

#define STREAM_BYTES (4 * MIB)
#define STREAM_SEED 0x57ea4ull

struct writer {
	int fd;
	uint64_t seed;
	uint64_t total;
	size_t chunk_max;
	int err; /* 0, or -errno of a failed send */
	pthread_t t;
};

/* Send @total bytes of stream @seed in chunks of 1..chunk_max, then shut
 * the sending side (the reader sees end of stream). */
static void *writer_main(void *arg)
{
	struct writer *w = arg;
	unsigned char *buf = malloc(w->chunk_max);
	uint64_t rng = w->seed | 1, off = 0;

	if (!buf) {
		w->err = -ENOMEM;
		goto out;
	}
	while (off < w->total) {
		size_t n = 1 + (size_t)(xs_next(&rng) % w->chunk_max), done = 0;

		if (n > w->total - off)
			n = (size_t)(w->total - off);
		pat_fill(w->seed, off, buf, n);
		while (done < n) {
			const ssize_t k = send(w->fd, buf + done, n - done, MSG_NOSIGNAL);

			if (k < 0) {
				if (errno == EINTR)
					continue;
				w->err = -errno;
				goto out;
			}
			done += (size_t)k;
		}
		off += n;
	}
out:
	shutdown(w->fd, SHUT_WR);
	free(buf);
	return NULL;
}

/* A socketpair whose sv[1] a writer thread feeds; the reader has sv[0]. */
static void writer_start(struct writer *w, int sv[2], uint64_t total, size_t chunk_max)
{
	const struct timeval tv = { .tv_sec = 30 };

	assert_ret(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	/* A reader that fails leaves the writer stuck no longer than this. */
	assert_ret(setsockopt(sv[1], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv), 0);
	w->fd = sv[1];
	w->seed = STREAM_SEED ^ total;
	w->total = total;
	w->chunk_max = chunk_max;
	w->err = 0;
	assert_ret(pthread_create(&w->t, NULL, writer_main, w), 0);
}

static void writer_join(struct writer *w, int sv[2])
{
	assert_ret(pthread_join(w->t, NULL), 0);
	assert_ret(w->err, 0);
	close(sv[0]);
	close(sv[1]);
}

/* (a) prep_recv into a slab, again and again until end of stream: every
 * byte, in order. */
static void test_uring_prep_recv_when_stream_received_into_slabs_arrives_intact(void **state)
{
	struct ufx *fx = fx_get(state);
	const uint32_t h = slab_alloc(fx->pool, BIG);
	struct writer w;
	uint64_t got = 0, recvs = 0;
	struct iovec slab, v;
	int sv[2];

	assert_ret(rmpsc_pool_slab(fx->pool, h, &slab), 0);
	writer_start(&w, sv, STREAM_BYTES, 20000);
	for (;;) {
		struct io_uring_sqe *sqe = sqe_get(&fx->ring);
		struct cq c;

		assert_ret(rmpsc_uring_prep_recv(sqe, fx->reg, h, sv[0], 0), 0);
		assert_int_equal(sqe->opcode, IORING_OP_RECV);
		assert_int_equal(sqe->addr, (uintptr_t)slab.iov_base);
		assert_int_equal(sqe->len, BIG);
		submit_n(&fx->ring, 1);
		c = cq_wait(&fx->ring);
		assert_int_equal(c.ud, h);
		assert_true(c.res >= 0);
		assert_ret(rmpsc_uring_complete(fx->reg, h, c.res), 0);
		assert_ret(rmpsc_pool_get_len(fx->pool, h), c.res);
		if (c.res == 0)
			break;
		assert_ret(rmpsc_pool_payload(fx->pool, h, &v), 0);
		pat_expect(w.seed, got, v.iov_base, v.iov_len);
		got += v.iov_len;
		recvs++;
	}
	print_message("%" PRIu64 " bytes in %" PRIu64 " receives\n", got, recvs);
	assert_int_equal(got, STREAM_BYTES);
	writer_join(&w, sv);
	assert_ret(rmpsc_pool_free(fx->pool, h), 0);
}

/* A buffer ring of @entries slabs of tier @tier of @pool, group @group:
 * created and checked. */
static rmpsc_uring_bufring *bufring_make_tier(struct io_uring *ring, rmpsc_pool *pool,
					      uint32_t tier, uint16_t group, uint32_t entries)
{
	rmpsc_uring_bufring *br = SENTINEL_OF(rmpsc_uring_bufring);

	assert_ret(rmpsc_uring_bufring_create(ring, pool, tier, group, entries, 0, &br), 0);
	return assert_handle(br, SENTINEL_OF(rmpsc_uring_bufring));
}

static rmpsc_uring_bufring *bufring_make(struct io_uring *ring, rmpsc_pool *pool,
					 uint16_t group, uint32_t entries)
{
	return bufring_make_tier(ring, pool, 0, group, entries);
}

static void arm_multishot(struct io_uring *ring, rmpsc_uring_bufring *br, uint16_t group, int fd)
{
	struct io_uring_sqe *sqe = sqe_get(ring);

	assert_ret(rmpsc_uring_prep_recv_multishot(sqe, br, fd, 0), 0);
	assert_int_equal(sqe->opcode, IORING_OP_RECV);
	assert_true(sqe->ioprio & IORING_RECV_MULTISHOT);
	assert_true(sqe->flags & IOSQE_BUFFER_SELECT);
	assert_int_equal(sqe->buf_group, group);
	assert_int_equal(sqe->fd, fd);
	sqe->user_data = 0x3e3e;
	submit_n(ring, 1);
}

/* The slab of a buffer CQE: taken, its length the result, its bytes the
 * stream's at *@off. With @keep the handle goes into @kept, else freed. */
static void take_and_check(rmpsc_uring_bufring *br, rmpsc_pool *pool, const struct cq *c,
			   uint64_t seed, uint64_t *off, uint32_t *kept, uint32_t *nkept)
{
	uint32_t h = RMPSC_POOL_HANDLE_NONE;
	struct iovec v;

	assert_true(c->res > 0);
	assert_ret(rmpsc_uring_bufring_take(br, c->flags, c->res, &h), 0);
	assert_int_not_equal(h, RMPSC_POOL_HANDLE_NONE);
	assert_ret(rmpsc_pool_get_len(pool, h), c->res);
	assert_ret(rmpsc_pool_payload(pool, h, &v), 0);
	pat_expect(seed, *off, v.iov_base, v.iov_len);
	*off += v.iov_len;
	if (kept)
		kept[(*nkept)++] = h;
	else
		assert_ret(rmpsc_pool_free(pool, h), 0);
}

/* (b) multishot recv from a buffer ring fed by the pool: the slabs taken
 * in CQE order carry the stream in order, byte for byte; the buffer ring's
 * destroy gives every slab back (a plain destroy of the pool works). */
static void test_uring_bufring_recv_multishot_when_stream_arrives_intact_in_order(void **state)
{
	rmpsc_pool *pool;
	struct io_uring ring;
	rmpsc_uring_bufring *br;
	struct writer w;
	uint64_t off = 0, cqes = 0, rearms = 0;
	int sv[2];

	(void)state;
	need_features(RMPSC_URING_HAS_BUF_RING | RMPSC_URING_HAS_RECV_MULTISHOT);
	pool = pool_make1(16 * KIB, 64);
	ring_init(&ring, 8);
	br = bufring_make(&ring, pool, 7, 16);
	assert_ret(rmpsc_pool_available(pool), 64 - 16);
	assert_ret(rmpsc_uring_bufring_refill(br), 16);
	writer_start(&w, sv, STREAM_BYTES, 30000);
	arm_multishot(&ring, br, 7, sv[0]);
	for (;;) {
		const struct cq c = cq_wait(&ring);

		assert_int_equal(c.ud, 0x3e3e);
		cqes++;
		if (c.flags & IORING_CQE_F_BUFFER)
			take_and_check(br, pool, &c, w.seed, &off, NULL, NULL);
		if (c.flags & IORING_CQE_F_MORE)
			continue;
		if (c.res == 0)
			break;
		/* The only other end that is not a failure: ran dry. */
		assert_ret(c.res, -ENOBUFS);
		assert_true(rmpsc_uring_bufring_refill(br) > 0);
		arm_multishot(&ring, br, 7, sv[0]);
		rearms++;
	}
	print_message("%" PRIu64 " bytes in %" PRIu64 " CQEs, %" PRIu64 " re-arms\n", off, cqes,
		      rearms);
	assert_int_equal(off, STREAM_BYTES);
	writer_join(&w, sv);
	assert_ret(rmpsc_uring_bufring_destroy(br, &ring), 0);
	assert_ret(rmpsc_pool_available(pool), 64);
	io_uring_queue_exit(&ring);
	assert_ret(rmpsc_pool_destroy(pool, 0, NULL), 0);
}

/* (c) A ring of 2 entries from a tier of 2 slabs, the reader keeping what
 * it takes: the kernel runs dry and ends the request with -ENOBUFS (no
 * F_MORE); the reader frees, refills (> 0) and arms again, and the stream
 * goes on with no byte lost. */
static void test_uring_bufring_when_ring_runs_dry_ends_with_enobufs_and_rearm_loses_nothing(
	void **state)
{
	rmpsc_pool *pool;
	struct io_uring ring;
	rmpsc_uring_bufring *br;
	struct writer w;
	uint32_t kept[4], nkept = 0;
	uint64_t off = 0, dry = 0;
	int sv[2];

	(void)state;
	need_features(RMPSC_URING_HAS_BUF_RING | RMPSC_URING_HAS_RECV_MULTISHOT);
	pool = pool_make1(4 * KIB, 2);
	ring_init(&ring, 8);
	br = bufring_make(&ring, pool, 3, 2);
	assert_ret(rmpsc_pool_available(pool), 0);
	writer_start(&w, sv, 256 * KIB, 3000);
	arm_multishot(&ring, br, 3, sv[0]);
	for (;;) {
		const struct cq c = cq_wait(&ring);
		uint32_t h = 0;

		if (c.flags & IORING_CQE_F_BUFFER) {
			assert_true(nkept < 2);
			take_and_check(br, pool, &c, w.seed, &off, kept, &nkept);
		}
		if (c.flags & IORING_CQE_F_MORE)
			continue;
		if (c.res == 0)
			break;
		assert_ret(c.res, -ENOBUFS);
		assert_ret(rmpsc_uring_bufring_take(br, c.flags, c.res, &h), -ENOENT);
		dry++;
		/* Nothing to post while the reader keeps both slabs. */
		assert_ret(rmpsc_uring_bufring_refill(br), 0);
		assert_ret(rmpsc_pool_free_n(pool, kept, nkept), nkept);
		nkept = 0;
		assert_true(rmpsc_uring_bufring_refill(br) > 0);
		arm_multishot(&ring, br, 3, sv[0]);
	}
	print_message("%" PRIu64 " bytes, the ring ran dry %" PRIu64 " times\n", off, dry);
	assert_int_equal(off, 256 * KIB);
	assert_true(dry >= 1);
	writer_join(&w, sv);
	assert_ret(rmpsc_pool_free_n(pool, kept, nkept), nkept);
	assert_ret(rmpsc_uring_bufring_destroy(br, &ring), 0);
	io_uring_queue_exit(&ring);
	assert_ret(rmpsc_pool_destroy(pool, 0, NULL), 0);
}

/* FORCE while a buffer ring feeds an armed multishot recv: destroy
 * returns 0 and the pool handle is dead, but the posted slabs stay mapped:
 * a receive after it lands in one (taken, its bytes read through the
 * address the CQE's buffer had), the request ends at end of stream, and
 * the buffer ring's destroy then drops the last reference, with nothing
 * leaked or touched after free (ASan). */
static void test_uring_pool_destroy_force_when_bufring_live_receives_then_destroys(void **state)
{
	const char msg[] = "after the pool's destroy";
	rmpsc_pool *pool;
	rmpsc_pool_region ri;
	struct io_uring ring;
	rmpsc_uring_bufring *br;
	uint64_t out = 9;
	uint32_t h = 0;
	struct iovec v;
	int sv[2];
	struct cq c;

	(void)state;
	need_features(RMPSC_URING_HAS_BUF_RING | RMPSC_URING_HAS_RECV_MULTISHOT);
	pool = pool_make1(4 * KIB, 8);
	assert_ret(rmpsc_pool_tier_info(pool, 0, &ri), 0);
	ring_init(&ring, 8);
	br = bufring_make(&ring, pool, 4, 4);
	assert_ret(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	arm_multishot(&ring, br, 4, sv[0]);
	assert_ret(rmpsc_pool_destroy(pool, 0, &out), -EBUSY);
	assert_ret(rmpsc_pool_destroy(pool, RMPSC_POOL_DESTROY_FORCE, &out), 0);
	assert_int_equal(out, 4); /* the posted slabs count as out */
	assert_ret(rmpsc_pool_capacity(pool), -EBADF);
	assert_ret(send(sv[1], msg, sizeof msg, 0), sizeof msg);
	c = cq_wait(&ring);
	assert_true(c.flags & IORING_CQE_F_BUFFER);
	assert_ret(c.res, sizeof msg);
	assert_ret(rmpsc_uring_bufring_take(br, c.flags, c.res, &h), 0);
	assert_int_not_equal(h, RMPSC_POOL_HANDLE_NONE);
	assert_ret(rmpsc_pool_payload(pool, h, &v), -EBADF);
	{
		/* The slab is the buffer id's in the region still mapped. */
		bool found = false;

		for (uint32_t i = 0; i < ri.count && !found; i++)
			found = memcmp((unsigned char *)ri.base + (size_t)i * ri.stride, msg,
				       sizeof msg) == 0;
		assert_true(found);
	}
	close(sv[1]);
	c = cq_wait(&ring);
	assert_false(c.flags & IORING_CQE_F_MORE);
	assert_ret(c.res, 0);
	assert_ret(rmpsc_uring_bufring_destroy(br, &ring), 0);
	io_uring_queue_exit(&ring);
	close(sv[0]);
}

static void expect_bufring_create(struct io_uring *ring, rmpsc_pool *pool, uint32_t tier,
				  uint16_t group, uint32_t entries, uint32_t flags, int want)
{
	rmpsc_uring_bufring *br = SENTINEL_OF(rmpsc_uring_bufring);
	const int got = rmpsc_uring_bufring_create(ring, pool, tier, group, entries, flags, &br);

	if (got != want) {
		print_error("bufring_create(tier %u, group %u, entries %u, flags %#x) = %d (%s), "
			    "expected %s\n",
			    tier, group, entries, flags, got, errname(got), errname(want));
		if (got == 0)
			(void)rmpsc_uring_bufring_destroy(br, ring);
		fail();
	}
	assert_null(br);
}

/* bufring_create's codes: entries 0, 3, 65536, tier out of range, flags,
 * NULL pointers -EINVAL; not a pool -EBADF; a group taken -EEXIST; no
 * slab of the tier -ENOBUFS (the group free again after each). */
static void test_uring_bufring_create_when_arguments_bad_returns_documented_code(void **state)
{
	rmpsc_pool *pool;
	struct io_uring ring;
	rmpsc_uring_bufring *br, *br2;
	uint32_t hs[4];

	(void)state;
	need_features(RMPSC_URING_HAS_BUF_RING);
	pool = pool_make(fx_tiers, 2);
	ring_init(&ring, 4);
	expect_bufring_create(&ring, pool, 0, 1, 0, 0, -EINVAL);
	expect_bufring_create(&ring, pool, 0, 1, 3, 0, -EINVAL);
	expect_bufring_create(&ring, pool, 0, 1, 65536, 0, -EINVAL);
	expect_bufring_create(&ring, pool, 0, 1, RMPSC_URING_BUFRING_MAX * 2, 0, -EINVAL);
	expect_bufring_create(&ring, pool, 2, 1, 4, 0, -EINVAL);
	expect_bufring_create(&ring, pool, RMPSC_POOL_TIERS_MAX, 1, 4, 0, -EINVAL);
	expect_bufring_create(&ring, pool, 0, 1, 4, 1, -EINVAL);
	expect_bufring_create(NULL, pool, 0, 1, 4, 0, -EINVAL);
	assert_ret(rmpsc_uring_bufring_create(&ring, pool, 0, 1, 4, 0, NULL), -EINVAL);
	expect_bufring_create(&ring, NULL, 0, 1, 4, 0, -EBADF);
	expect_bufring_create(&ring, FOREIGN(rmpsc_pool), 0, 1, 4, 0, -EBADF);
	/* The largest ring: RMPSC_URING_BUFRING_MAX entries (16-bit ids). */
	{
		rmpsc_pool *many = pool_make1(64, RMPSC_URING_BUFRING_MAX);

		br = bufring_make(&ring, many, 30, RMPSC_URING_BUFRING_MAX);
		assert_ret(rmpsc_uring_bufring_refill(br), RMPSC_URING_BUFRING_MAX);
		assert_ret(rmpsc_pool_available(many), 0);
		assert_ret(rmpsc_uring_bufring_destroy(br, &ring), 0);
		assert_ret(rmpsc_pool_available(many), RMPSC_URING_BUFRING_MAX);
		assert_ret(rmpsc_pool_destroy(many, 0, NULL), 0);
	}
	/* The limits accepted: 1 entry, and a group taken twice. */
	br = bufring_make(&ring, pool, 1, 1);
	expect_bufring_create(&ring, pool, 0, 1, 4, 0, -EEXIST);
	expect_bufring_create(&ring, pool, 1, 1, 1, 0, -EEXIST);
	br2 = bufring_make(&ring, pool, 2, 4); /* another group: fine */
	assert_ret(rmpsc_uring_bufring_destroy(br, &ring), 0);
	br = bufring_make(&ring, pool, 1, 2); /* the group is free again */
	assert_ret(rmpsc_uring_bufring_destroy(br, &ring), 0);
	assert_ret(rmpsc_uring_bufring_destroy(br2, &ring), 0);
	/* Tier 0 exhausted by the caller. */
	for (uint32_t i = 0; i < NSMALL; i++) {
		uint32_t h;

		assert_ret(rmpsc_pool_alloc(pool, SMALL, &h), 0);
		if (i < 4)
			hs[i] = h;
		else
			assert_ret(rmpsc_pool_free(pool, h), 0);
	}
	/* Only 4 held: allocate the rest so that the tier is empty. */
	{
		uint32_t rest[NSMALL];
		const int n = rmpsc_pool_alloc_n(pool, SMALL, rest, NSMALL - 4);

		assert_ret(n, NSMALL - 4);
		expect_bufring_create(&ring, pool, 0, 5, 4, 0, -ENOBUFS);
		/* The other tier has slabs. */
		br = bufring_make_tier(&ring, pool, 1, 5, 4);
		assert_ret(rmpsc_pool_available(pool), NBIG - 4);
		assert_ret(rmpsc_uring_bufring_destroy(br, &ring), 0);
		assert_ret(rmpsc_pool_free_n(pool, rest, NSMALL - 4), NSMALL - 4);
	}
	assert_ret(rmpsc_pool_free_n(pool, hs, 4), 4);
	/* The group of the -ENOBUFS failure is free. */
	br = bufring_make(&ring, pool, 5, 4);
	/* Destroy after the ring is gone: NULL ring. */
	io_uring_queue_exit(&ring);
	assert_ret(rmpsc_uring_bufring_destroy(br, NULL), 0);
	assert_ret(rmpsc_uring_bufring_destroy(NULL, NULL), 0);
	assert_ret(rmpsc_pool_destroy(pool, 0, NULL), 0);
}

/* take, refill, destroy, prep_recv_multishot codes: no F_BUFFER -ENOENT;
 * an id never posted (out of range, or taken already and not reposted)
 * -EPROTO; NULL h -EINVAL; not a buffer ring -EBADF. */
static void test_uring_bufring_take_when_no_buffer_or_unknown_id_returns_enoent_or_eproto(
	void **state)
{
	rmpsc_pool *pool;
	struct io_uring ring;
	rmpsc_uring_bufring *br;
	rmpsc_uring_bufring *const wrong[] = { NULL, FOREIGN(rmpsc_uring_bufring) };
	const char msg[] = "one receive";
	struct io_uring_sqe s, ref;
	uint32_t h = 0;
	struct iovec v;
	int sv[2];
	struct cq c;

	(void)state;
	need_features(RMPSC_URING_HAS_BUF_RING | RMPSC_URING_HAS_RECV_MULTISHOT);
	pool = pool_make1(4 * KIB, 2);
	ring_init(&ring, 8);
	br = bufring_make(&ring, pool, 9, 2);
	assert_ret(rmpsc_uring_bufring_take(br, 0, 10, &h), -ENOENT);
	assert_ret(rmpsc_uring_bufring_take(br, IORING_CQE_F_MORE, 10, &h), -ENOENT);
	assert_ret(rmpsc_uring_bufring_take(br, IORING_CQE_F_MORE, -ENOBUFS, &h), -ENOENT);
	assert_ret(rmpsc_uring_bufring_take(br, IORING_CQE_F_BUFFER | 2u << IORING_CQE_BUFFER_SHIFT,
					    10, &h),
		   -EPROTO);
	assert_ret(rmpsc_uring_bufring_take(br,
					    IORING_CQE_F_BUFFER |
						    0xffffu << IORING_CQE_BUFFER_SHIFT,
					    10, &h),
		   -EPROTO);
	assert_ret(rmpsc_uring_bufring_take(br, IORING_CQE_F_BUFFER, 10, NULL), -EINVAL);
	for (size_t i = 0; i < 2; i++) {
		assert_ret(rmpsc_uring_bufring_take(wrong[i], IORING_CQE_F_BUFFER, 10, &h), -EBADF);
		assert_ret(rmpsc_uring_bufring_refill(wrong[i]), -EBADF);
		memset(&ref, 0xa5, sizeof ref);
		s = ref;
		assert_ret(rmpsc_uring_prep_recv_multishot(&s, wrong[i], 3, 0), -EBADF);
		assert_memory_equal(&s, &ref, sizeof s);
	}
	assert_ret(rmpsc_uring_bufring_destroy(FOREIGN(rmpsc_uring_bufring), &ring), -EBADF);
	assert_ret(rmpsc_uring_bufring_destroy(FOREIGN(rmpsc_uring_bufring), NULL), -EBADF);
	s = ref;
	assert_ret(rmpsc_uring_prep_recv_multishot(NULL, br, 3, 0), -EINVAL);
	assert_ret(rmpsc_uring_prep_recv_multishot(&s, br, -1, 0), -EINVAL);
	assert_memory_equal(&s, &ref, sizeof s);
	/* One real receive: its id taken once; the second take of it, with
	 * the pool empty so that nothing was posted there again: -EPROTO. */
	assert_ret(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	arm_multishot(&ring, br, 9, sv[0]);
	assert_ret(send(sv[1], msg, sizeof msg, 0), sizeof msg);
	c = cq_wait(&ring);
	assert_true(c.flags & IORING_CQE_F_BUFFER);
	assert_true(c.flags & IORING_CQE_F_MORE);
	assert_ret(c.res, sizeof msg);
	assert_ret(rmpsc_uring_bufring_take(br, c.flags, c.res, &h), 0);
	assert_ret(rmpsc_pool_payload(pool, h, &v), 0);
	assert_int_equal(v.iov_len, sizeof msg);
	assert_memory_equal(v.iov_base, msg, sizeof msg);
	{
		uint32_t h2 = 0;

		assert_ret(rmpsc_uring_bufring_take(br, c.flags, c.res, &h2), -EPROTO);
	}
	assert_ret(rmpsc_uring_bufring_refill(br), 1);
	/* End the request: the peer closes, the final CQE is 0 without a buffer. */
	close(sv[1]);
	c = cq_wait(&ring);
	assert_false(c.flags & IORING_CQE_F_MORE);
	assert_ret(c.res, 0);
	assert_ret(rmpsc_uring_bufring_take(br, c.flags, c.res, &h), -ENOENT);
	close(sv[0]);
	assert_ret(rmpsc_pool_free(pool, h), 0);
	assert_ret(rmpsc_uring_bufring_refill(br), 2);
	assert_ret(rmpsc_uring_bufring_destroy(br, &ring), 0);
	io_uring_queue_exit(&ring);
	assert_ret(rmpsc_pool_destroy(pool, 0, NULL), 0);
}

/* ---- SEND and SEND_ZC -------------------------------------------------------------- */

/* SEND of a payload: the peer receives it, the length stays; to a closed
 * peer -EPIPE (MSG_NOSIGNAL added: no SIGPIPE kills the test). */
static void test_uring_prep_send_when_completed_peer_receives_the_payload(void **state)
{
	struct ufx *fx = fx_get(state);
	const uint32_t h = slab_alloc(fx->pool, BIG), len = 3000;
	unsigned char *back = malloc(len);
	struct io_uring_sqe *sqe;
	struct iovec slab;
	int sv[2];
	struct cq c;

	assert_non_null(back);
	assert_ret(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_ret(rmpsc_pool_slab(fx->pool, h, &slab), 0);
	pat_fill(77, 0, slab.iov_base, len);
	assert_ret(rmpsc_pool_set_len(fx->pool, h, len), 0);
	sqe = sqe_get(&fx->ring);
	assert_ret(rmpsc_uring_prep_send(sqe, fx->reg, h, sv[0], MSG_DONTWAIT), 0);
	assert_int_equal(sqe->msg_flags, MSG_DONTWAIT | MSG_NOSIGNAL);
	submit_n(&fx->ring, 1);
	c = cq_wait(&fx->ring);
	assert_int_equal(c.ud, h);
	assert_ret(c.res, len);
	assert_ret(rmpsc_uring_complete(fx->reg, h, -1), 0);
	assert_ret(rmpsc_pool_get_len(fx->pool, h), len);
	assert_ret(recv(sv[1], back, len, MSG_WAITALL), len);
	pat_expect(77, 0, back, len);
	close(sv[1]);
	sqe = sqe_get(&fx->ring);
	assert_ret(rmpsc_uring_prep_send(sqe, fx->reg, h, sv[0], 0), 0);
	submit_n(&fx->ring, 1);
	c = cq_wait(&fx->ring);
	assert_ret(c.res, -EPIPE);
	assert_ret(rmpsc_uring_complete(fx->reg, h, -1), 0);
	assert_ret(rmpsc_pool_get_len(fx->pool, h), len);
	assert_ret(rmpsc_pool_free(fx->pool, h), 0);
	close(sv[0]);
	free(back);
}

/* SEND_ZC on AF_UNIX: the result -EOPNOTSUPP with F_MORE, then the
 * notification; the slab is held through both until complete. */
static void test_uring_prep_send_zc_when_af_unix_fails_with_more_and_holds_until_notif(
	void **state)
{
	struct ufx *fx = fx_get(state);
	const uint32_t h = slab_alloc(fx->pool, BIG);
	struct io_uring_sqe *sqe;
	int sv[2];
	struct cq c;

	need_features(RMPSC_URING_HAS_SEND_ZC);
	assert_ret(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_ret(rmpsc_pool_set_len(fx->pool, h, 1000), 0);
	sqe = sqe_get(&fx->ring);
	assert_ret(rmpsc_uring_prep_send_zc(sqe, fx->reg, h, sv[0], 0), 0);
	assert_int_equal(sqe->opcode, IORING_OP_SEND_ZC);
	submit_n(&fx->ring, 1);
	c = cq_wait(&fx->ring);
	assert_int_equal(c.ud, h);
	assert_ret(c.res, -EOPNOTSUPP);
	assert_true(c.flags & IORING_CQE_F_MORE);
	assert_false(c.flags & IORING_CQE_F_NOTIF);
	expect_held(fx, h);
	c = cq_wait(&fx->ring);
	assert_int_equal(c.ud, h);
	assert_true(c.flags & IORING_CQE_F_NOTIF);
	assert_false(c.flags & IORING_CQE_F_MORE);
	/* The notification alone does not free it: complete does. */
	assert_ret(rmpsc_pool_free(fx->pool, h), -EBUSY);
	assert_ret(rmpsc_uring_complete(fx->reg, h, -1), 0);
	assert_ret(rmpsc_pool_get_len(fx->pool, h), 1000);
	assert_ret(rmpsc_pool_free(fx->pool, h), 0);
	cq_none(&fx->ring);
	close(sv[0]);
	close(sv[1]);
}

/* SEND_ZC of 64 KiB over loopback TCP: all of it (MSG_WAITALL), intact at
 * the peer, then the notification (with the kernel's usage report where
 * it has one), the slab held until complete after it. */
static void test_uring_prep_send_zc_when_tcp_loopback_sends_intact_then_notifies(void **state)
{
	struct ufx *fx = fx_get(state);
	const int64_t f = need_features(RMPSC_URING_HAS_SEND_ZC);
	const uint32_t h = slab_alloc(fx->pool, BIG);
	const struct timeval tv = { .tv_sec = 30 };
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof a;
	unsigned char *back = malloc(BIG);
	struct io_uring_sqe *sqe;
	struct iovec slab;
	int lfd, cfd, afd;
	struct cq c;

	assert_non_null(back);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(lfd >= 0);
	assert_ret(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
	assert_ret(listen(lfd, 1), 0);
	assert_ret(getsockname(lfd, (struct sockaddr *)&a, &alen), 0);
	cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(cfd >= 0);
	assert_ret(connect(cfd, (struct sockaddr *)&a, sizeof a), 0);
	afd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(afd >= 0);
	assert_ret(setsockopt(afd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
	assert_ret(rmpsc_pool_slab(fx->pool, h, &slab), 0);
	pat_fill(0x2c, 0, slab.iov_base, BIG);
	assert_ret(rmpsc_pool_set_len(fx->pool, h, BIG), 0);
	sqe = sqe_get(&fx->ring);
	assert_ret(rmpsc_uring_prep_send_zc(sqe, fx->reg, h, cfd, MSG_WAITALL), 0);
	submit_n(&fx->ring, 1);
	assert_ret(recv(afd, back, BIG, MSG_WAITALL), BIG);
	pat_expect(0x2c, 0, back, BIG);
	c = cq_wait(&fx->ring);
	assert_int_equal(c.ud, h);
	assert_ret(c.res, BIG);
	assert_true(c.flags & IORING_CQE_F_MORE);
	assert_false(c.flags & IORING_CQE_F_NOTIF);
	assert_ret(rmpsc_pool_free(fx->pool, h), -EBUSY);
	c = cq_wait(&fx->ring);
	assert_int_equal(c.ud, h);
	assert_true(c.flags & IORING_CQE_F_NOTIF);
	/* Loopback copies what it sends: with the usage report asked for (the
	 * header: where the kernel has it), the notification says so. */
	if (f & RMPSC_URING_HAS_ZC_REPORT_USAGE)
		assert_true((uint32_t)c.res & IORING_NOTIF_USAGE_ZC_COPIED);
	assert_ret(rmpsc_pool_free(fx->pool, h), -EBUSY);
	assert_ret(rmpsc_uring_complete(fx->reg, h, -1), 0);
	assert_ret(rmpsc_pool_get_len(fx->pool, h), BIG);
	assert_ret(rmpsc_pool_free(fx->pool, h), 0);
	close(afd);
	close(cfd);
	close(lfd);
	free(back);
}

/* ---- main ---------------------------------------------------------------------------- */

#define FX_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup_uring, teardown_uring)

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			test_uring_features_when_probed_has_ring_and_same_value_every_call),
		FX_TEST(test_uring_register_when_valid_fills_info_and_buffer_maps_handles),
		cmocka_unit_test(test_uring_register_when_info_larger_or_null_fills_v1),
		cmocka_unit_test(
			test_uring_register_when_soft_memlock_changes_reports_the_limit_at_the_call),
		FX_TEST(test_uring_prep_read_fixed_when_many_offsets_reads_the_file_bytes),
		FX_TEST(test_uring_prep_read_fixed_when_short_or_positional_reports_its_length),
		FX_TEST(test_uring_prep_write_fixed_when_completed_file_holds_the_payload),
		FX_TEST(test_uring_prep_when_in_flight_free_second_prep_and_accessors_return_ebusy),
		FX_TEST(test_uring_complete_when_prepared_never_submitted_takes_the_slab_back),
		FX_TEST(test_uring_complete_when_len_above_slab_returns_emsgsize_and_releases),
		FX_TEST(test_uring_prep_when_len_above_slab_returns_emsgsize_and_handle_not_held),
		FX_TEST(test_uring_prep_when_arguments_bad_returns_documented_code_sqe_untouched),
		FX_TEST(test_uring_prep_when_racing_a_free_of_the_handle_exactly_one_wins),
		FX_TEST(test_uring_register_when_pool_on_two_rings_both_read_through),
		FX_TEST(test_uring_complete_when_other_registration_returns_einval),
		cmocka_unit_test(test_uring_register_when_arguments_bad_returns_einval_or_ebadf),
		FX_TEST(test_uring_register_when_ring_has_a_table_returns_ebusy),
		cmocka_unit_test(
			test_uring_register_update_when_sparse_table_fills_from_first_index),
		cmocka_unit_test(test_uring_register_update_when_past_the_table_end_returns_enospc),
		cmocka_unit_test(test_uring_register_update_when_ring_has_no_table_returns_enxio),
		FX_TEST(test_uring_unregister_when_prep_not_completed_returns_ebusy),
		FX_TEST(test_uring_pool_destroy_when_registered_returns_ebusy),
		FX_TEST(test_uring_pool_destroy_force_when_registered_unregister_still_works),
		FX_TEST(
			test_uring_pool_destroy_force_when_read_in_flight_memory_kept_until_unregister),
		FX_TEST(test_uring_unregister_when_ring_gone_with_null_ring_returns_0),
		cmocka_unit_test(
			test_uring_register_when_memlock_low_without_cap_ipc_lock_returns_enomem),
		cmocka_unit_test(test_uring_register_when_in_a_user_namespace_reports_no_cap_ipc_lock),
		FX_TEST(test_uring_prep_recv_when_stream_received_into_slabs_arrives_intact),
		cmocka_unit_test(
			test_uring_bufring_recv_multishot_when_stream_arrives_intact_in_order),
		cmocka_unit_test(
			test_uring_bufring_when_ring_runs_dry_ends_with_enobufs_and_rearm_loses_nothing),
		cmocka_unit_test(
			test_uring_pool_destroy_force_when_bufring_live_receives_then_destroys),
		cmocka_unit_test(
			test_uring_bufring_create_when_arguments_bad_returns_documented_code),
		cmocka_unit_test(
			test_uring_bufring_take_when_no_buffer_or_unknown_id_returns_enoent_or_eproto),
		FX_TEST(test_uring_prep_send_when_completed_peer_receives_the_payload),
		FX_TEST(test_uring_prep_send_zc_when_af_unix_fails_with_more_and_holds_until_notif),
		FX_TEST(test_uring_prep_send_zc_when_tcp_loopback_sends_intact_then_notifies),
		TEST_PARAM(test_uring_features_when_io_uring_setup_enosys_returns_enosys,
			   test_uring_features_when_io_uring_setup_refused_returns_enosys_or_eopnotsupp,
			   ENOSYS),
		TEST_PARAM(test_uring_features_when_io_uring_setup_eperm_returns_eopnotsupp,
			   test_uring_features_when_io_uring_setup_refused_returns_enosys_or_eopnotsupp,
			   EPERM),
	};

	/* The children: nothing of the library has run in them yet. */
	if (argc > 1 && strcmp(argv[1], CHILD_MEMLOCK) == 0)
		return child_memlock();
	if (argc > 1 && strcmp(argv[1], CHILD_USERNS) == 0)
		return child_userns();
	if (argc > 1 && strcmp(argv[1], CHILD_ENOSYS) == 0)
		return child_no_uring(ENOSYS);
	if (argc > 1 && strcmp(argv[1], CHILD_EPERM) == 0)
		return child_no_uring(EPERM);
	return cmocka_run_group_tests_name("test_uring", tests, NULL, NULL);
}

#endif /* RMPSC_TEST_HAVE_URING */
