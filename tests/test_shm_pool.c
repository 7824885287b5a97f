/* SPDX-License-Identifier: MIT */
/*
 * test_shm_pool: a pool whose slabs another process maps read-only
 * (RMPSC_POOL_F_SHARED, rmpsc_pool_share_fds/lend/reclaim in
 * ringmpsc/pool.h; rmpsc_shm_pool_* in ringmpsc/shm.h). Checked: a
 * receiver sees each lent payload in place with its length; the mapping
 * cannot be written; the owner's lend/reclaim refuse every handle that
 * is not a lent slab's live one (junk, duplicates, never lent, stale), so
 * a hostile receiver can keep slabs but never free one the owner uses;
 * across real processes (descriptors passed over a Unix socket) payloads
 * of 64 B to 1 MiB with a CRC go out through one shared ring and come back
 * through a return ring, and every slab is home at the end; attach
 * refuses damaged or misordered descriptors.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "test_util.h"
#include "ringmpsc.h"

#define SEC 1000000000ll
#define NT 4

static const rmpsc_pool_tier tiers[NT] = {
	{ .slab_size = 64, .count = 256 },
	{ .slab_size = 4096, .count = 64 },
	{ .slab_size = 65536, .count = 16 },
	{ .slab_size = 1 << 20, .count = 4 },
};

static rmpsc_pool *shared_pool(uint32_t flags)
{
	rmpsc_pool_config cfg;
	rmpsc_pool *p = NULL;

	assert_ret(rmpsc_pool_config_init(&cfg, sizeof cfg), 0);
	cfg.flags = RMPSC_POOL_F_SHARED | flags;
	cfg.tiers = tiers;
	cfg.ntiers = NT;
	assert_ret(rmpsc_pool_create(&cfg, &p), 0);
	return p;
}

/* What goes into a payload: a byte of @seq everywhere, then up to 256
 * bytes of a pattern at the start, and the CRC of those (and of the
 * length) in the last 4 bytes, so a wrong slab, a wrong length or a torn
 * payload is caught without hashing a megabyte per message. */
static size_t head_of(size_t len)
{
	return len < 260 ? len - 4 : 256;
}

static uint32_t crc_of(const unsigned char *b, size_t len, uint64_t seq)
{
	uint32_t c = shm_crc32((uint32_t)seq, b, head_of(len));

	/* And a byte from the middle of the fill (outside the CRC's bytes). */
	return shm_crc32(c, &len, sizeof len) ^
	       (len > 520 ? b[len / 2] : 0u);
}

static void fill(rmpsc_pool *p, uint32_t h, uint64_t seq, size_t len)
{
	struct iovec s;
	unsigned char *b;

	assert_ret(rmpsc_pool_slab(p, h, &s), 0);
	b = s.iov_base;
	if (len >= 8) {
		uint32_t c;

		memset(b, (int)(seq & 0xff), len);
		for (size_t i = 0; i < head_of(len); i++)
			b[i] = (unsigned char)(seq * 131 + i * 7);
		c = crc_of(b, len, seq);
		memcpy(b + len - 4, &c, 4);
	}
	assert_ret(rmpsc_pool_set_len(p, h, len), 0);
}

static bool check(const struct iovec *v, uint64_t seq)
{
	const unsigned char *b = v->iov_base;
	uint32_t c;

	if (v->iov_len < 8)
		return true;
	memcpy(&c, b + v->iov_len - 4, 4);
	return c == crc_of(b, v->iov_len, seq);
}

static rmpsc_shm_pool *receiver_of(rmpsc_pool *p)
{
	int fds[1 + NT];
	rmpsc_shm_pool *sp = NULL;

	assert_ret(rmpsc_pool_share_fds(p, fds, 1 + NT), 1 + NT);
	assert_ret(rmpsc_shm_pool_attach(fds, 1 + NT, &sp), 0);
	for (int i = 0; i < 1 + NT; i++)
		close(fds[i]);
	return sp;
}

/* In one process: the receiver's view is the owner's bytes and length. */
static void test_shm_pool_when_lent_receiver_sees_payload_in_place(void **state)
{
	rmpsc_pool *p = shared_pool(0);
	rmpsc_shm_pool *sp = receiver_of(p);
	const size_t lens[] = { 1, 64, 100, 4096, 5000, 65536, 1 << 20 };

	(void)state;
	for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
		uint32_t h;
		struct iovec v;

		assert_ret(rmpsc_pool_alloc(p, lens[k], &h), 0);
		fill(p, h, k, lens[k]);
		assert_ret(rmpsc_pool_lend(p, h), 0);
		assert_ret(rmpsc_shm_pool_payload(sp, h, &v), 0);
		assert_int_equal(v.iov_len, lens[k]);
		assert_true(check(&v, k));
		/* Lent: the owner's own calls on it are refused. */
		assert_ret(rmpsc_pool_free(p, h), -EBUSY);
		assert_ret(rmpsc_pool_payload(p, h, &v), -EBUSY);
		assert_ret(rmpsc_pool_lend(p, h), -EBUSY);
		assert_ret(rmpsc_pool_reclaim(p, h), 0);
		assert_ret(rmpsc_pool_reclaim(p, h), -ESTALE); /* freed: older now */
	}
	assert_int_equal(rmpsc_pool_available(p), rmpsc_pool_capacity(p));
	rmpsc_shm_pool_destroy(sp);
	assert_ret(rmpsc_pool_destroy(p, 0, NULL), 0);
}

/* A hostile receiver returns anything: only a lent slab's live handle is
 * taken back, once; the owner's slabs and free list are untouched. */
static void test_shm_pool_reclaim_when_junk_duplicate_or_not_lent_refuses_it(void **state)
{
	rmpsc_pool *p = shared_pool(0);
	uint32_t lent[8], kept[8], stale;
	unsigned seed = 12345;
	int taken = 0;

	(void)state;
	for (int i = 0; i < 8; i++) {
		assert_ret(rmpsc_pool_alloc(p, 64, &lent[i]), 0);
		assert_ret(rmpsc_pool_alloc(p, 64, &kept[i]), 0);
		assert_ret(rmpsc_pool_lend(p, lent[i]), 0);
	}
	assert_ret(rmpsc_pool_alloc(p, 64, &stale), 0);
	assert_ret(rmpsc_pool_free(p, stale), 0);
	/* Never lent, stale, none, another tier's junk. */
	for (int i = 0; i < 8; i++)
		assert_ret(rmpsc_pool_reclaim(p, kept[i]), -EALREADY);
	assert_ret(rmpsc_pool_reclaim(p, stale), -ESTALE);
	assert_ret(rmpsc_pool_reclaim(p, RMPSC_POOL_HANDLE_NONE), -EINVAL);
	for (int k = 0; k < 100000; k++) {
		uint32_t h = (uint32_t)rand_r(&seed) << 1 ^ (uint32_t)rand_r(&seed);
		int r = rmpsc_pool_reclaim(p, h);
		bool was_lent = false;

		for (int i = 0; i < 8; i++)
			if (lent[i] == h) {
				was_lent = true;
				lent[i] = RMPSC_POOL_HANDLE_NONE;
			}
		if (was_lent) {
			assert_ret(r, 0);
			taken++;
		} else {
			assert_true(r == -EINVAL || r == -ESTALE || r == -EALREADY);
		}
	}
	/* Each lent one back exactly once, duplicates refused. */
	for (int i = 0; i < 8; i++) {
		if (lent[i] == RMPSC_POOL_HANDLE_NONE)
			continue;
		assert_ret(rmpsc_pool_reclaim(p, lent[i]), 0);
		assert_ret(rmpsc_pool_reclaim(p, lent[i]), -ESTALE);
		taken++;
	}
	assert_int_equal(taken, 8);
	/* The kept ones are still the owner's. */
	for (int i = 0; i < 8; i++) {
		struct iovec v;

		assert_ret(rmpsc_pool_payload(p, kept[i], &v), 0);
		assert_ret(rmpsc_pool_free(p, kept[i]), 0);
	}
	assert_int_equal(rmpsc_pool_available(p), rmpsc_pool_capacity(p));
	assert_ret(rmpsc_pool_destroy(p, 0, NULL), 0);
}

static void test_shm_pool_calls_when_misused_return_documented_codes(void **state)
{
	rmpsc_pool *plain = shared_pool(0), *priv;
	rmpsc_pool_config cfg;
	rmpsc_shm_pool *sp = SENTINEL_OF(rmpsc_shm_pool);
	int fds[1 + NT];
	uint32_t h;
	struct iovec v;

	(void)state;
	assert_ret(rmpsc_pool_config_init(&cfg, sizeof cfg), 0);
	assert_ret(rmpsc_pool_create(&cfg, &priv), 0);
	assert_ret(rmpsc_pool_alloc(priv, 8, &h), 0);
	assert_ret(rmpsc_pool_share_fds(priv, fds, 2), -EINVAL);
	assert_ret(rmpsc_pool_lend(priv, h), -EINVAL);
	assert_ret(rmpsc_pool_reclaim(priv, h), -EINVAL);
	assert_ret(rmpsc_pool_free(priv, h), 0);
	assert_ret(rmpsc_pool_destroy(priv, 0, NULL), 0);
	assert_ret(rmpsc_pool_share_fds(NULL, fds, 2), -EBADF);
	assert_ret(rmpsc_pool_lend(NULL, 1), -EBADF);
	assert_ret(rmpsc_pool_reclaim(NULL, 1), -EBADF);
	assert_ret(rmpsc_pool_share_fds(plain, NULL, 5), -EINVAL);
	assert_ret(rmpsc_pool_share_fds(plain, fds, NT), -ENOSPC);

	assert_ret(rmpsc_shm_pool_attach(NULL, 2, &sp), -EINVAL);
	assert_null(sp);
	assert_ret(rmpsc_shm_pool_attach(fds, 1 + NT, NULL), -EINVAL);
	{
		/* Two tiers of one size, passed in each other's place. */
		static const rmpsc_pool_tier twins[2] = {
			{ .slab_size = 64, .count = 64 },
			{ .slab_size = 128, .count = 32 },
		};
		rmpsc_pool_config tc;
		rmpsc_pool *tp;
		int tf[3], sw[3];

		assert_ret(rmpsc_pool_config_init(&tc, sizeof tc), 0);
		tc.flags = RMPSC_POOL_F_SHARED;
		tc.tiers = twins;
		tc.ntiers = 2;
		assert_ret(rmpsc_pool_create(&tc, &tp), 0);
		assert_ret(rmpsc_pool_share_fds(tp, tf, 3), 3);
		sw[0] = tf[0];
		sw[1] = tf[2];
		sw[2] = tf[1];
		assert_ret(rmpsc_shm_pool_attach(sw, 3, &sp), -EPROTO);
		assert_ret(rmpsc_shm_pool_attach(tf, 3, &sp), 0);
		rmpsc_shm_pool_destroy(sp);
		for (int i = 0; i < 3; i++)
			close(tf[i]);
		assert_ret(rmpsc_pool_destroy(tp, 0, NULL), 0);
	}
	assert_ret(rmpsc_pool_share_fds(plain, fds, 1 + NT), 1 + NT);
	assert_ret(rmpsc_shm_pool_attach(fds, 1, &sp), -EINVAL);
	assert_ret(rmpsc_shm_pool_attach(fds, 18, &sp), -EINVAL);
	assert_ret(rmpsc_shm_pool_attach(fds, NT, &sp), -EPROTO); /* a tier missing */
	{
		int swapped[1 + NT];

		memcpy(swapped, fds, sizeof swapped);
		swapped[1] = fds[2];
		swapped[2] = fds[1];
		assert_ret(rmpsc_shm_pool_attach(swapped, 1 + NT, &sp), -EPROTO);
		swapped[0] = fds[1]; /* a tier where the directory goes */
		swapped[1] = fds[0];
		assert_ret(rmpsc_shm_pool_attach(swapped, 1 + NT, &sp), -EPROTO);
		swapped[0] = -1;
		assert_ret(rmpsc_shm_pool_attach(swapped, 1 + NT, &sp), -EBADF);
	}
	{
		/* An unsealed copy of the directory. */
		int copy = memfd_create("copy", MFD_CLOEXEC);
		unsigned char buf[4096];
		ssize_t n = pread(fds[0], buf, sizeof buf, 0);
		int saved = fds[0];
		struct stat st;

		assert_true(n > 0 && fstat(saved, &st) == 0);
		assert_int_equal(ftruncate(copy, st.st_size), 0);
		assert_int_equal(pwrite(copy, buf, (size_t)n, 0), n);
		fds[0] = copy;
		assert_ret(rmpsc_shm_pool_attach(fds, 1 + NT, &sp), -EPROTO);
		fds[0] = saved;
		close(copy);
	}
	assert_ret(rmpsc_shm_pool_attach(fds, 1 + NT, &sp), 0);
	/* The other process cannot map it writable: the descriptors are
	 * read-only, and a read-write one opened again from them (through
	 * /proc) is refused a writable mapping and write(2) by the seal. */
	for (int i = 0; i < 1 + NT; i++) {
		void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fds[i], 0);
		char path[64];
		int rw;

		assert_true(m == MAP_FAILED && errno == EACCES);
		snprintf(path, sizeof path, "/proc/self/fd/%d", fds[i]);
		rw = open(path, O_RDWR | O_CLOEXEC);
		assert_true(rw >= 0);
		m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, rw, 0);
		assert_true(m == MAP_FAILED && errno == EPERM);
		assert_int_equal(pwrite(rw, "x", 1, 0), -1);
		assert_int_equal(errno, EPERM);
		close(rw);
		close(fds[i]);
	}
	assert_ret(rmpsc_shm_pool_payload(NULL, 1, &v), -EBADF);
	assert_ret(rmpsc_shm_pool_payload(sp, RMPSC_POOL_HANDLE_NONE, &v), -EINVAL);
	assert_ret(rmpsc_pool_alloc(plain, 64, &h), 0);
	assert_ret(rmpsc_shm_pool_payload(sp, h, NULL), -EINVAL);
	assert_ret(rmpsc_shm_pool_payload(sp, h, &v), 0);
	{
		/* An index past a tier's slabs: a pool of 200 (8 index bits). */
		static const rmpsc_pool_tier odd = { .slab_size = 64, .count = 200 };
		rmpsc_pool_config oc;
		rmpsc_pool *op;
		rmpsc_shm_pool *osp;
		int ofds[2];

		assert_ret(rmpsc_pool_config_init(&oc, sizeof oc), 0);
		oc.flags = RMPSC_POOL_F_SHARED;
		oc.tiers = &odd;
		oc.ntiers = 1;
		assert_ret(rmpsc_pool_create(&oc, &op), 0);
		assert_ret(rmpsc_pool_share_fds(op, ofds, 2), 2);
		assert_ret(rmpsc_shm_pool_attach(ofds, 2, &osp), 0);
		close(ofds[0]);
		close(ofds[1]);
		assert_ret(rmpsc_shm_pool_payload(osp, 0xff, &v), -EINVAL);
		assert_ret(rmpsc_shm_pool_payload(osp, 199, &v), 0);
		assert_int_equal(v.iov_len, 0);
		rmpsc_shm_pool_destroy(osp);
		assert_ret(rmpsc_pool_destroy(op, 0, NULL), 0);
	}
	assert_ret(rmpsc_pool_free(plain, h), 0);
	rmpsc_shm_pool_destroy(sp);
	rmpsc_shm_pool_destroy(NULL);
	assert_ret(rmpsc_pool_destroy(plain, 0, NULL), 0);
}

/* The receiver's mapping faults on a write: a child writes and dies. */
static void test_shm_pool_receiver_when_writing_a_payload_faults(void **state)
{
	rmpsc_pool *p = shared_pool(0);
	rmpsc_shm_pool *sp = receiver_of(p);
	uint32_t h;
	struct iovec v;
	pid_t pid;
	int st;

	(void)state;
	assert_ret(rmpsc_pool_alloc(p, 64, &h), 0);
	fill(p, h, 1, 64);
	assert_ret(rmpsc_pool_lend(p, h), 0);
	assert_ret(rmpsc_shm_pool_payload(sp, h, &v), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		signal(SIGSEGV, SIG_DFL);
		*(unsigned char *)v.iov_base = 1;
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV);
	assert_true(check(&v, 1));
	assert_ret(rmpsc_pool_reclaim(p, h), 0);
	rmpsc_shm_pool_destroy(sp);
	assert_ret(rmpsc_pool_destroy(p, 0, NULL), 0);
}

/*
 * Two processes: the owner lends payloads of 64 B to 1 MiB (CRC at the
 * end) and sends their handles through a shared ring; the receiver, which
 * got the pool's and the rings' descriptors over a Unix socket, checks
 * each in place and returns it through a return ring; the owner reclaims.
 * At the end every slab is home.
 */
static void receiver_child(int sock)
{
	int fds[1 + NT + 2];
	rmpsc_shm_pool *sp;
	rmpsc_shm *in, *back;
	rmpsc_shm_config cfg;
	uint64_t seq = 0;
	int n = rmpsc_fd_recv(sock, fds, 1 + NT + 2, NULL, 0, NULL, 30 * SEC);

	if (n != 1 + NT + 2)
		_exit(2);
	if (rmpsc_shm_pool_attach(fds, 1 + NT, &sp) != 0)
		_exit(3);
	rmpsc_shm_config_init(&cfg, sizeof cfg);
	cfg.role = RMPSC_SHM_CONSUMER;
	if (rmpsc_shm_attach(fds[1 + NT], &cfg, &in) != 0)
		_exit(4);
	cfg.role = RMPSC_SHM_PRODUCER;
	if (rmpsc_shm_attach(fds[2 + NT], &cfg, &back) != 0)
		_exit(5);
	for (int i = 0; i < n; i++)
		close(fds[i]);
	for (;;) {
		uint32_t h;
		struct iovec v;
		int r = rmpsc_shm_pop_timed(in, &h, 30 * SEC, NULL);

		if (r == -EPIPE)
			break;
		if (r != 0) /* 6x: the code, for the failure message */
			_exit(r == -ETIMEDOUT ? 61 : r == -ECONNRESET ? 62 : r == -EPROTO ? 63 : 6);
		if (rmpsc_shm_pool_payload(sp, h, &v) != 0)
			_exit(7);
		if (!check(&v, seq))
			_exit(8);
		seq++;
		if (rmpsc_shm_push_timed(back, &h, 30 * SEC, NULL) != 0)
			_exit(9);
	}
	rmpsc_shm_destroy(back);
	rmpsc_shm_destroy(in);
	rmpsc_shm_pool_destroy(sp);
	_exit(0);
}

/* How the receiver ended (for a failure message). */
static const char *child_status(pid_t pid)
{
	static char buf[64];
	int st;

	if (waitpid(pid, &st, 0) != pid)
		return "not reaped";
	if (WIFEXITED(st))
		snprintf(buf, sizeof buf, "exit %d", WEXITSTATUS(st));
	else
		snprintf(buf, sizeof buf, "signal %d", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	return buf;
}

static void test_shm_pool_between_processes_payloads_go_and_come_back(void **state)
{
	const uint64_t count = STRESS_SCALE(100000, 20000, 10000);
	rmpsc_pool *p = shared_pool(0);
	rmpsc_shm *out, *back;
	rmpsc_shm_config cfg;
	int sv[2], fds[1 + NT + 2], st;
	uint64_t sent = 0, back_n = 0;
	unsigned seed = 99;
	pid_t pid;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		alarm(120);
		close(sv[0]);
		receiver_child(sv[1]);
	}
	close(sv[1]);
	rmpsc_shm_config_init(&cfg, sizeof cfg);
	cfg.role = RMPSC_SHM_PRODUCER;
	cfg.elem_size = 4;
	cfg.capacity = 64;
	assert_ret(rmpsc_shm_create(&cfg, &out), 0);
	cfg.role = RMPSC_SHM_CONSUMER;
	cfg.capacity = 512;
	assert_ret(rmpsc_shm_create(&cfg, &back), 0);
	assert_ret(rmpsc_pool_share_fds(p, fds, 1 + NT), 1 + NT);
	fds[1 + NT] = rmpsc_shm_fd(out);
	fds[2 + NT] = rmpsc_shm_fd(back);
	assert_ret(rmpsc_fd_send(sv[0], fds, 1 + NT + 2, NULL, 0, 10 * SEC), 1);
	for (int i = 0; i < 1 + NT; i++)
		close(fds[i]);
	/* The receiver's end, whenever it comes, ends both rings' waits. */
	assert_ret(rmpsc_shm_watch(out, sv[0]), 0);
	assert_ret(rmpsc_shm_watch(back, sv[0]), 0);
	while (back_n < count) {
		uint32_t h;

		/* Take back what returned, reclaiming each. */
		while (rmpsc_shm_pop(back, &h) == 0) {
			assert_ret(rmpsc_pool_reclaim(p, h), 0);
			back_n++;
		}
		if (back_n == count)
			break;
		if (sent < count) {
			/* 64 B .. 1 MiB, most small. */
			unsigned r = (unsigned)rand_r(&seed);
			size_t len = r % 64 == 0  ? 65537 + r % ((1 << 20) - 65536)
				     : r % 8 == 0 ? 4097 + r % 61440
						  : 8 + r % 4089;
			if (rmpsc_pool_alloc(p, len, &h) == 0) {
				fill(p, h, sent, len);
				assert_ret(rmpsc_pool_lend(p, h), 0);
				if (rmpsc_shm_push_timed(out, &h, 30 * SEC, NULL) != 0)
					fail_msg("receiver gone: %s", child_status(pid));
				sent++;
				continue;
			}
		}
		/* Nothing to send now (the tier is out): wait for one back. */
		if (rmpsc_shm_pop_timed(back, &h, 30 * SEC, NULL) != 0)
			fail_msg("receiver gone: %s", child_status(pid));
		assert_ret(rmpsc_pool_reclaim(p, h), 0);
		back_n++;
	}
	rmpsc_shm_destroy(out); /* closes: the receiver ends */
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_int_equal(rmpsc_pool_available(p), rmpsc_pool_capacity(p));
	rmpsc_shm_destroy(back);
	close(sv[0]);
	assert_ret(rmpsc_pool_destroy(p, 0, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shm_pool_when_lent_receiver_sees_payload_in_place),
		cmocka_unit_test(test_shm_pool_reclaim_when_junk_duplicate_or_not_lent_refuses_it),
		cmocka_unit_test(test_shm_pool_calls_when_misused_return_documented_codes),
		cmocka_unit_test(test_shm_pool_receiver_when_writing_a_payload_faults),
		cmocka_unit_test(test_shm_pool_between_processes_payloads_go_and_come_back),
	};

	alarm(600);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
