/* SPDX-License-Identifier: MIT */
/*
 * The shared ring (ringmpsc/shm.h) between real processes.
 *
 *  - Two exec'd shm_peer programs, a producer and a consumer, move a
 *    sequence through a ring whose memfd the test hands each over its own
 *    listening socket: 8-byte counters, and 256-byte records of varying
 *    length with a CRC. The ring is created by a helper process that goes
 *    away still attached as the producer: the role is free again (its pid
 *    is dead), so the test holds no role and both children attach.
 *  - A producer SIGKILLed at random points (before a push, between a
 *    reserve and its commit, between two partial commits, asleep on a full
 *    ring): the consumer receives whole committed records in sequence, at
 *    least everything the producer saw committed and nothing it did not
 *    try to publish, then -ECONNRESET; the death is found through the pid
 *    in the header, a watched socketpair or a watched pidfd.
 *  - A consumer SIGKILLed: a producer asleep in a timed call on a full ring
 *    returns -ECONNRESET.
 *  - A hostile peer scribbling the whole header and the slots: every call
 *    returns a count or a documented code, -EPROTO once returned stays,
 *    nothing crashes or hangs.
 *  - Descriptor passing: a message without a descriptor, a descriptor that
 *    is not a ring, too many descriptors, too much data: clean errors in the
 *    receiving process, nothing left open there or here, no file left
 *    anywhere.
 *
 * Every case runs under alarm(): a hang fails the test instead of blocking it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_util.h"

#include "ringmpsc/shm.h"

#ifndef SHM_PEER_PATH
#error "SHM_PEER_PATH: the path of the shm_peer program"
#endif

#define MS 1000000ll
#define SEC 1000000000ll

/* errname() and the codes the shared ring adds. */
static const char *code_name(long long v)
{
	switch (v) {
	case -ECONNRESET: return "-ECONNRESET";
	case -ENOMSG: return "-ENOMSG";
	default: return errname(v);
	}
}

/* ---- processes ----------------------------------------------------------------- */

/* Open descriptors of this process. */
/* Entries of /dev/shm (a memfd must leave none). */
static int devshm_entries(void)
{
	DIR *d = opendir("/dev/shm");
	int n = 0;

	if (!d)
		return 0;
	for (struct dirent *e; (e = readdir(d));)
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	return n;
}

/* A name in the abstract namespace, new each call (no file anywhere). */
static void sock_name(char *buf, size_t len)
{
	static int seq;

	snprintf(buf, len, "@rmpsc-test-shm-proc-%d-%d", (int)getpid(), seq++);
}

/* shm_peer with @argv (argv[0] included, NULL-terminated). */
static pid_t spawn_peer(const char *const *argv)
{
	const pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		execv(SHM_PEER_PATH, (char *const *)(uintptr_t)argv);
		_exit(127);
	}
	return pid;
}

/* The wait status of @pid within @sec seconds; -1 when it had to be
 * killed. */
static int reap(pid_t pid, int sec)
{
	const int64_t end = now_ns() + (int64_t)sec * SEC;
	int st;

	for (;;) {
		const pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			return st;
		if (r < 0 && errno != EINTR)
			return -2;
		if (now_ns() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return -1;
		}
		sleep_ns(1 * MS);
	}
}

static void expect_exit0(const char *who, int st)
{
	if (st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return;
	if (st == -1)
		print_error("%s hung: killed\n", who);
	else if (st >= 0 && WIFEXITED(st))
		print_error("%s exited with %d\n", who, WEXITSTATUS(st));
	else if (st >= 0 && WIFSIGNALED(st))
		print_error("%s died of signal %d\n", who, WTERMSIG(st));
	else
		print_error("%s: wait status %d\n", who, st);
	fail();
}

/* Accept the connection of a child on @lfd, hand it @fd, wait for its
 * acknowledgement (it attached): the connected socket. */
static int hand_over(int lfd, int fd)
{
	const int c = rmpsc_fd_accept(lfd, 60 * SEC);
	struct pollfd p = {.events = POLLIN};
	char ack = 0;

	if (c < 0)
		print_error("accept: %s\n", code_name(c));
	assert_true(c >= 0);
	assert_ret(rmpsc_fd_send(c, &fd, 1, NULL, 0, 10 * SEC), 1);
	p.fd = c;
	assert_int_equal(poll(&p, 1, 60000), 1);
	assert_int_equal(recv(c, &ack, 1, 0), 1);
	assert_int_equal(ack, 'A');
	return c;
}

static int pidfd_of(pid_t pid)
{
	const int fd = (int)syscall(SYS_pidfd_open, pid, 0);

	assert_true(fd >= 0);
	return fd;
}

static int64_t ms_since(int64_t t0)
{
	return (now_ns() - t0) / MS;
}

/* ---- 1, 2: a producer and a consumer process ------------------------------------ */

/*
 * A ring of @cap slots of @esz bytes created by a helper process that then
 * exits still attached as the producer: the memfd. The producer's role is
 * free for the next process (the pid in its section is dead); the
 * consumer's was never taken.
 */
static int orphan_ring(uint32_t esz, uint32_t cap)
{
	int sv[2], fd = -1;
	pid_t pid;

	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		rmpsc_shm_config cfg;
		rmpsc_shm *s = NULL;

		close(sv[0]);
		rmpsc_shm_config_init(&cfg, sizeof cfg);
		cfg.role = RMPSC_SHM_PRODUCER;
		cfg.elem_size = esz;
		cfg.capacity = cap;
		if (rmpsc_shm_create(&cfg, &s) != 0)
			_exit(1);
		{
			const int mfd = rmpsc_shm_fd(s);

			if (rmpsc_fd_send(sv[1], &mfd, 1, NULL, 0, 10 * SEC) != 1)
				_exit(2);
		}
		_exit(0); /* attached, not destroyed */
	}
	close(sv[1]);
	assert_ret(rmpsc_fd_recv(sv[0], &fd, 1, NULL, 0, NULL, 30 * SEC), 1);
	close(sv[0]);
	expect_exit0("ring creator", reap(pid, 60));
	return fd;
}

/* shm_peer produce and shm_peer consume move @count elements of @mode
 * ("u64" or "var") through a ring of @cap slots of @esz bytes. */
static void run_pair(const char *mode, uint32_t esz, uint32_t cap, uint64_t count, uint64_t seed)
{
	char pname[64], cname[64], cnt[32], sd[32];
	const int before = open_fds();
	const int64_t t0 = now_ns();
	int fd, lp, lc, cp, cc, stp, stc;
	pid_t pp, pc;

	sock_name(pname, sizeof pname);
	sock_name(cname, sizeof cname);
	snprintf(cnt, sizeof cnt, "%" PRIu64, count);
	snprintf(sd, sizeof sd, "%" PRIu64, seed);
	fd = orphan_ring(esz, cap);
	lp = rmpsc_fd_listen(pname, 4);
	lc = rmpsc_fd_listen(cname, 4);
	assert_true(lp >= 0 && lc >= 0);
	{
		const char *const pa[] = {"shm_peer", "produce", pname, cnt, sd, mode, NULL};
		const char *const ca[] = {"shm_peer", "consume", cname, cnt, sd, mode, NULL};

		pp = spawn_peer(pa);
		pc = spawn_peer(ca);
	}
	/* The producer takes the creator's role first: a consumer that saw
	 * the creator's dead pid there would rightly call its peer gone. */
	cp = hand_over(lp, fd);
	cc = hand_over(lc, fd);
	close(fd);
	stp = reap(pp, 500);
	stc = reap(pc, 500);
	close(cp);
	close(cc);
	assert_ret(rmpsc_fd_unlisten(lp, pname), 0);
	assert_ret(rmpsc_fd_unlisten(lc, cname), 0);
	expect_exit0("producer", stp);
	expect_exit0("consumer", stc);
	assert_int_equal(open_fds(), before);
	print_message("  %s: %" PRIu64 " elements of %u bytes, ring of %u, %" PRId64 " ms\n", mode,
		      count, esz, cap, ms_since(t0));
}

static void test_shm_proc_when_two_processes_move_u64_sequence_arrives_whole(void **state)
{
	(void)state;
	alarm(590);
	run_pair("u64", 8, 4096, STRESS_SCALE(10000000u, 5000000u, 2000000u), 11);
	run_pair("u64", 8, 16, STRESS_SCALE(1000000u, 200000u, 100000u), 12);
	alarm(0);
}

static void test_shm_proc_when_two_processes_move_crc_records_every_crc_holds(void **state)
{
	(void)state;
	alarm(590);
	run_pair("var", 256, 1024, STRESS_SCALE(1000000u, 500000u, 200000u), 21);
	run_pair("var", 256, 4, STRESS_SCALE(200000u, 50000u, 30000u), 22);
	alarm(0);
}

/* ---- 3: the producer SIGKILLed --------------------------------------------------- */

/* A record: its sequence number and a CRC of it; a record written into a
 * reserved slot before it is complete carries the poisoned CRC. */
struct krec {
	uint64_t seq;
	uint32_t crc;
	uint32_t pad;
};
#define POISON 0xdeadbeefu

static uint32_t krec_crc(uint64_t seq)
{
	return shm_crc32(0, &seq, sizeof seq);
}

static struct krec krec_of(uint64_t seq)
{
	const struct krec r = {.seq = seq, .crc = krec_crc(seq), .pad = 0};

	return r;
}

/* What the producer process tells the test, in shared anonymous memory:
 * attached; before each call that can publish, the position it may reach
 * (attempt); after it, the position it did reach (committed). */
struct kshare {
	uint64_t attached;
	uint64_t attempt;
	uint64_t committed;
};

static void ks_set(uint64_t *p, uint64_t v)
{
	__atomic_store_n(p, v, __ATOMIC_SEQ_CST);
}

static uint64_t ks_get(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

static void die_at(uint64_t pos, uint64_t kill_at)
{
	if (pos >= kill_at)
		raise(SIGKILL);
}

/*
 * The forked producer: attaches to @fd and pushes records 0, 1, ... with a
 * random mixture of push, push_n and reserve/commit (timed calls when
 * full) until killed: by the test, or by itself when its position reaches
 * @kill_at at one of several points (before a push, after a reserve, in
 * the middle of filling a span, between two partial commits). Exits with
 * a code of its own on an unexpected result.
 */
static void kill_child(int fd, struct kshare *ks, uint64_t rng, uint64_t kill_at)
{
	rmpsc_shm_config cfg;
	rmpsc_shm *s = NULL;
	struct krec buf[32];
	uint64_t next = 0;

	alarm(60);
	rmpsc_shm_config_init(&cfg, sizeof cfg);
	cfg.role = RMPSC_SHM_PRODUCER;
	cfg.elem_size = sizeof(struct krec);
	cfg.capacity = 0;
	if (rmpsc_shm_attach(fd, &cfg, &s) != 0)
		_exit(10);
	ks_set(&ks->attached, 1);
	for (;;) {
		const uint64_t x = xs_next(&rng);
		const uint32_t n = 1 + (uint32_t)((x >> 8) % 32);
		rmpsc_span sp;
		int r;

		switch (x % 4) {
		case 0: /* push */
			buf[0] = krec_of(next);
			die_at(next, kill_at);
			ks_set(&ks->attempt, next + 1);
			r = (x >> 20) & 1 ? rmpsc_shm_push(s, buf) : -EAGAIN;
			if (r == -EAGAIN)
				r = rmpsc_shm_push_timed(s, buf, -1, NULL);
			if (r != 0)
				_exit(11);
			next++;
			ks_set(&ks->committed, next);
			break;
		case 1: /* push_n */
			for (uint32_t i = 0; i < n; i++)
				buf[i] = krec_of(next + i);
			die_at(next, kill_at);
			ks_set(&ks->attempt, next + n);
			r = (x >> 20) & 1 ? rmpsc_shm_push_n(s, buf, n) : -EAGAIN;
			if (r == -EAGAIN)
				r = rmpsc_shm_push_n_timed(s, buf, n, -1, NULL);
			if (r <= 0 || (uint32_t)r > n)
				_exit(12);
			next += (uint32_t)r;
			ks_set(&ks->committed, next);
			break;
		default: { /* reserve, fill (poisoned first), commit in one or two parts */
			uint32_t a;

			r = (x >> 20) & 1 ? rmpsc_shm_reserve(s, n, &sp) : -EAGAIN;
			if (r == -EAGAIN)
				r = rmpsc_shm_reserve_timed(s, n, &sp, -1, NULL);
			if (r <= 0 || (uint32_t)r > n)
				_exit(13);
			for (uint32_t i = 0; i < (uint32_t)r; i++) {
				struct krec k = krec_of(next + i);

				k.crc ^= POISON;
				memcpy(span_at(&sp, sizeof k, i), &k, sizeof k);
			}
			for (uint32_t i = 0; i < (uint32_t)r; i++) {
				const struct krec k = krec_of(next + i);

				die_at(next + i, kill_at); /* between reserve and commit */
				memcpy(span_at(&sp, sizeof k, i), &k, sizeof k);
			}
			a = (x >> 21) & 1 ? (uint32_t)r / 2 : (uint32_t)r;
			if (a) {
				ks_set(&ks->attempt, next + a);
				if (rmpsc_shm_commit(s, a) != 0)
					_exit(14);
				ks_set(&ks->committed, next + a);
			}
			if (a < (uint32_t)r) {
				die_at(next + a, kill_at); /* between two commits */
				ks_set(&ks->attempt, next + (uint32_t)r);
				if (rmpsc_shm_commit(s, (uint32_t)r - a) != 0)
					_exit(15);
			}
			next += (uint32_t)r;
			ks_set(&ks->committed, next);
			break;
		}
		}
	}
}

/* Records received over all the runs, and runs by how the producer died. */
static uint64_t g_kill_records, g_kill_how[3];

/* One producer killed: 0, or a line in @why. */
static int kill_run(struct kshare *ks, uint64_t rng, char *why, size_t wlen)
{
	rmpsc_shm_config cfg;
	rmpsc_shm *s = NULL;
	const uint32_t cap = 1u << (xs_next(&rng) % 9);
	const uint32_t watch = (uint32_t)(xs_next(&rng) % 3); /* none, socketpair, pidfd */
	const uint32_t how = (uint32_t)(xs_next(&rng) % 3);   /* itself, after K read, after a nap */
	const uint64_t kill_at = xs_next(&rng) % 3000;
	const int64_t nap_us = (int64_t)(xs_next(&rng) % 3000);
	const uint64_t child_rng = xs_next(&rng) | 1;
	const bool reap_first = xs_next(&rng) & 1;
	uint64_t got = 0, committed, attempt;
	bool killed = false;
	int sv[2] = {-1, -1}, st = -1, r = 0, err = 0;
	pid_t pid;

	rmpsc_shm_config_init(&cfg, sizeof cfg);
	cfg.role = RMPSC_SHM_CONSUMER;
	cfg.elem_size = sizeof(struct krec);
	cfg.capacity = cap;
	assert_ret(rmpsc_shm_create(&cfg, &s), 0);
	memset(ks, 0, sizeof *ks);
	if (watch == 1)
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (sv[0] >= 0)
			close(sv[0]);
		kill_child(rmpsc_shm_fd(s), ks, child_rng, how == 0 ? kill_at : UINT64_MAX);
		_exit(99);
	}
	if (watch == 1) {
		close(sv[1]);
		assert_ret(rmpsc_shm_watch(s, sv[0]), 0);
		close(sv[0]);
	} else if (watch == 2) {
		const int pfd = pidfd_of(pid);

		assert_ret(rmpsc_shm_watch(s, pfd), 0);
		close(pfd);
	}
	if (how == 2) {
		/* Unwatched, the ring only learns of a producer that attached:
		 * one killed before it never was (PEER_NONE), not gone. */
		while (watch == 0 && !ks_get(&ks->attached))
			sleep_ns(50000);
		sleep_ns(nap_us * 1000);
		kill(pid, SIGKILL);
		killed = true;
		if (reap_first)
			waitpid(pid, &st, 0);
	}
	for (;;) {
		const uint64_t x = xs_next(&rng);
		const uint32_t n = 1 + (uint32_t)((x >> 8) % 40);
		struct krec buf[40];
		rmpsc_span sp;

		switch (x % 3) {
		case 0:
			r = rmpsc_shm_pop_timed(s, buf, -1, NULL);
			r = r == 0 ? 1 : r;
			break;
		case 1:
			r = rmpsc_shm_pop_n_timed(s, buf, n, -1, NULL);
			break;
		default:
			r = rmpsc_shm_readable_timed(s, n, &sp, -1, NULL);
			for (int i = 0; i < r; i++)
				memcpy(&buf[i], span_at(&sp, sizeof buf[i], (uint32_t)i), sizeof buf[i]);
			if (r > 0 && (err = rmpsc_shm_advance(s, (uint32_t)r)) != 0) {
				snprintf(why, wlen, "advance(%d): %s", r, code_name(err));
				goto out;
			}
			break;
		}
		if (r < 0)
			break;
		for (int i = 0; i < r; i++) {
			if (buf[i].seq != got) {
				snprintf(why, wlen, "seq %" PRIu64 " where %" PRIu64 " was due",
					 buf[i].seq, got);
				err = 1;
			} else if (buf[i].crc == (krec_crc(got) ^ POISON)) {
				snprintf(why, wlen, "record %" PRIu64 " visible before its commit", got);
				err = 1;
			} else if (buf[i].crc != krec_crc(got)) {
				snprintf(why, wlen, "record %" PRIu64 ": bad crc", got);
				err = 1;
			}
			if (err)
				goto out;
			got++;
		}
		if (how == 1 && !killed && got >= kill_at) {
			kill(pid, SIGKILL);
			killed = true;
			if (reap_first)
				waitpid(pid, &st, 0);
		}
	}
	if (r != -ECONNRESET) {
		snprintf(why, wlen, "the end after %" PRIu64 ": %s", got, code_name(r));
		err = 1;
		goto out;
	}
	/* Final: the end again, the peer gone. */
	{
		struct krec k;
		const int again = rmpsc_shm_pop(s, &k);
		const int peer = rmpsc_shm_peer(s, -1);

		if (again != -ECONNRESET || peer != RMPSC_SHM_PEER_GONE) {
			snprintf(why, wlen, "after the end: pop %s, peer %d", code_name(again), peer);
			err = 1;
		}
	}
out:
	if (err)
		kill(pid, SIGKILL);
	if (!(killed && reap_first)) {
		const int w = reap(pid, 30);

		if (w == -1 && !err) {
			snprintf(why, wlen, "the producer did not die");
			err = 1;
		}
		st = w;
	}
	if (!err && !(WIFSIGNALED(st) && (WTERMSIG(st) == SIGKILL))) {
		snprintf(why, wlen, "the producer ended with status %#x (not SIGKILL)", st);
		err = 1;
	}
	committed = ks_get(&ks->committed);
	attempt = ks_get(&ks->attempt);
	if (!err && (got < committed || got > attempt)) {
		snprintf(why, wlen,
			 "received %" PRIu64 ", but the producer committed %" PRIu64
			 " and tried up to %" PRIu64,
			 got, committed, attempt);
		err = 1;
	}
	g_kill_records += got;
	g_kill_how[how]++;
	rmpsc_shm_destroy(s);
	return err;
}

static void test_shm_proc_when_producer_killed_consumer_gets_whole_records_then_econnreset(
	void **state)
{
	const uint32_t runs = STRESS_SCALE(1000u, 400u, 200u);
	struct kshare *ks = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
				 -1, 0);
	uint64_t rng = 0x5eed0003ull;
	const int before = open_fds();
	const int64_t t0 = now_ns();
	uint32_t failures = 0;

	(void)state;
	assert_true(ks != MAP_FAILED);
	for (uint32_t i = 0; i < runs; i++) {
		char why[256] = "";

		alarm(60);
		if (kill_run(ks, xs_next(&rng) | 1, why, sizeof why)) {
			if (failures < 10)
				print_error("run %u: %s\n", i, why);
			failures++;
		}
	}
	alarm(0);
	munmap(ks, 4096);
	print_message("  %u producers killed (%" PRIu64 " by themselves, %" PRIu64
		      " after a count, %" PRIu64 " after a nap), %" PRIu64
		      " records received, %u failures, %" PRId64 " ms\n",
		      runs, g_kill_how[0], g_kill_how[1], g_kill_how[2], g_kill_records, failures,
		      ms_since(t0));
	assert_int_equal(failures, 0);
	assert_int_equal(open_fds(), before);
}

/* ---- 4: the consumer SIGKILLed --------------------------------------------------- */

static void test_shm_proc_when_consumer_killed_blocked_producer_gets_econnreset(void **state)
{
	const uint32_t runs = STRESS_SCALE(40u, 20u, 12u);
	struct kshare *ks = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
				 -1, 0);
	uint64_t rng = 0x5eed0004ull;
	const int before = open_fds();

	(void)state;
	assert_true(ks != MAP_FAILED);
	for (uint32_t run = 0; run < runs; run++) {
		rmpsc_shm_config cfg;
		rmpsc_shm *s = NULL;
		const uint32_t cap = 1u << (xs_next(&rng) % 7);
		const uint32_t watch = run % 3;
		const uint32_t call = (run / 3) % 3; /* push, push_n, reserve */
		const uint64_t pops = xs_next(&rng) % (2 * cap + 1);
		const int64_t nap_us = (int64_t)(xs_next(&rng) % 20000);
		uint64_t v[8] = {0};
		int sv[2] = {-1, -1}, r;
		pid_t pid;

		alarm(60);
		rmpsc_shm_config_init(&cfg, sizeof cfg);
		cfg.role = RMPSC_SHM_PRODUCER;
		cfg.elem_size = 8;
		cfg.capacity = cap;
		assert_ret(rmpsc_shm_create(&cfg, &s), 0);
		memset(ks, 0, sizeof *ks);
		if (watch == 1)
			assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			/* The consumer: takes a few, then is killed in its sleep. */
			rmpsc_shm *c = NULL;
			uint64_t x;

			alarm(60);
			if (sv[0] >= 0)
				close(sv[0]);
			cfg.role = RMPSC_SHM_CONSUMER;
			if (rmpsc_shm_attach(rmpsc_shm_fd(s), &cfg, &c) != 0)
				_exit(10);
			ks_set(&ks->attached, 1);
			for (uint64_t i = 0; i < pops; i++)
				if (rmpsc_shm_pop_timed(c, &x, -1, NULL) != 0)
					_exit(11);
			sleep_ns(nap_us * 1000);
			raise(SIGKILL);
			_exit(12);
		}
		if (watch == 1) {
			close(sv[1]);
			assert_ret(rmpsc_shm_watch(s, sv[0]), 0);
			close(sv[0]);
		} else if (watch == 2) {
			const int pfd = pidfd_of(pid);

			assert_ret(rmpsc_shm_watch(s, pfd), 0);
			close(pfd);
		}
		while (!ks_get(&ks->attached))
			sleep_ns(50000);
		/* Push until the end: the ring fills, the call sleeps, the
		 * consumer dies. */
		for (;;) {
			rmpsc_span sp;

			if (call == 0) {
				r = rmpsc_shm_push_timed(s, v, -1, NULL);
			} else if (call == 1) {
				r = rmpsc_shm_push_n_timed(s, v, 8, -1, NULL);
			} else {
				r = rmpsc_shm_reserve_timed(s, 8, &sp, -1, NULL);
				if (r > 0)
					assert_ret(rmpsc_shm_commit(s, (uint32_t)r), 0);
			}
			if (r < 0)
				break;
		}
		if (r != -ECONNRESET)
			print_error("run %u (call %u, watch %u, cap %u): %s\n", run, call, watch, cap,
				    code_name(r));
		assert_int_equal(r, -ECONNRESET);
		assert_ret(rmpsc_shm_peer(s, -1), RMPSC_SHM_PEER_GONE);
		r = rmpsc_shm_push_timed(s, v, 0, NULL);
		assert_true(r == -ECONNRESET);
		{
			const int st = reap(pid, 30);

			assert_true(st >= 0 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
		}
		rmpsc_shm_destroy(s);
	}
	alarm(0);
	munmap(ks, 4096);
	assert_int_equal(open_fds(), before);
}

/* ---- 5: a hostile peer --------------------------------------------------------- */

struct hstats {
	uint64_t ops, ok, eproto, by_code[8];
	bool broken;
};

/* @r from a call whose success is 0..@max (counts) is a count or one of
 * @ok_codes; once -EPROTO was seen, only -EPROTO. */
static void hcheck(struct hstats *h, const char *call, long long r, long long max,
		   const int *ok_codes, int ncodes)
{
	bool fine = false;

	h->ops++;
	if (h->broken) {
		fine = r == -EPROTO;
	} else if (r >= 0) {
		fine = r <= max;
		h->ok += fine;
	} else {
		for (int i = 0; i < ncodes; i++)
			fine |= r == -ok_codes[i];
	}
	if (r == -EPROTO) {
		h->broken = true;
		h->eproto++;
	}
	if (!fine) {
		print_error("%s returned %lld (%s)%s\n", call, r, code_name(r),
			    h->broken ? " after -EPROTO" : "");
		fail();
	}
}

static const int try_codes[] = {EAGAIN, EPIPE, EPROTO, ECONNRESET};
static const int timed_codes[] = {ETIMEDOUT, EPIPE, EPROTO, ECONNRESET};
static const int commit_codes[] = {EPIPE, EPROTO, ECONNRESET};
static const int proto_only[] = {EPROTO};
#define HC(h, call, r, max, codes) hcheck((h), (call), (r), (max), (codes), \
					  (int)(sizeof(codes) / sizeof((codes)[0])))

/* Touch every byte of a span (ASan and the guard page see a stray one). */
static uint64_t span_sum(const rmpsc_span *sp, int n, uint32_t esz, struct hstats *h)
{
	uint64_t sum = 0;

	if (sp->count[0] + sp->count[1] != (uint32_t)n ||
	    sp->iov[0].iov_len != (size_t)sp->count[0] * esz ||
	    sp->iov[1].iov_len != (size_t)sp->count[1] * esz) {
		print_error("span of %d: %u+%u elements, %zu+%zu bytes\n", n, sp->count[0],
			    sp->count[1], sp->iov[0].iov_len, sp->iov[1].iov_len);
		fail();
	}
	for (int k = 0; k < 2; k++)
		for (size_t i = 0; i < sp->iov[k].iov_len; i++)
			sum += ((const unsigned char *)sp->iov[k].iov_base)[i];
	(void)h;
	return sum;
}

/* One call of ours, chosen by @x, its result checked. */
static void hostile_op(rmpsc_shm *s, bool prod, uint64_t x, struct hstats *h, uint64_t *sink)
{
	const uint32_t n = 1 + (uint32_t)((x >> 8) % 16);
	const int64_t t = (int64_t)((x >> 16) % 3) * MS; /* 0, 1, 2 ms */
	const long long cap = rmpsc_shm_capacity(s);
	uint64_t buf[16] = {0};
	rmpsc_span sp;
	int r;

	switch ((x >> 24) % 10) {
	case 0:
		HC(h, prod ? "push" : "pop", prod ? rmpsc_shm_push(s, buf) : rmpsc_shm_pop(s, buf), 0,
		   try_codes);
		break;
	case 1:
		HC(h, prod ? "push_n" : "pop_n",
		   prod ? rmpsc_shm_push_n(s, buf, n) : rmpsc_shm_pop_n(s, buf, n), n, try_codes);
		break;
	case 2:
		r = prod ? rmpsc_shm_reserve(s, n, &sp) : rmpsc_shm_readable(s, n, &sp);
		HC(h, prod ? "reserve" : "readable", r, n, try_codes);
		if (r > 0) {
			*sink += span_sum(&sp, r, 8, h);
			if (prod)
				HC(h, "commit", rmpsc_shm_commit(s, (uint32_t)r), 0, commit_codes);
			else
				HC(h, "advance", rmpsc_shm_advance(s, (uint32_t)r), 0, proto_only);
		}
		break;
	case 3:
		HC(h, prod ? "push_timed" : "pop_timed",
		   prod ? rmpsc_shm_push_timed(s, buf, t, NULL) : rmpsc_shm_pop_timed(s, buf, t, NULL),
		   0, timed_codes);
		break;
	case 4:
		HC(h, prod ? "push_n_timed" : "pop_n_timed",
		   prod ? rmpsc_shm_push_n_timed(s, buf, n, t, NULL)
			: rmpsc_shm_pop_n_timed(s, buf, n, t, NULL),
		   n, timed_codes);
		break;
	case 5:
		r = prod ? rmpsc_shm_reserve_timed(s, n, &sp, t, NULL)
			 : rmpsc_shm_readable_timed(s, n, &sp, t, NULL);
		HC(h, prod ? "reserve_timed" : "readable_timed", r, n, timed_codes);
		if (r > 0) {
			*sink += span_sum(&sp, r, 8, h);
			if (prod)
				HC(h, "commit", rmpsc_shm_commit(s, (uint32_t)r), 0, commit_codes);
			else
				HC(h, "advance", rmpsc_shm_advance(s, (uint32_t)r), 0, proto_only);
		}
		break;
	case 6:
		HC(h, "len", rmpsc_shm_len(s), cap, proto_only);
		break;
	case 7:
		HC(h, "is_closed", rmpsc_shm_is_closed(s), 1, proto_only);
		break;
	case 8:
		r = rmpsc_shm_peer(s, (x >> 32) & 1 ? -1 : 5 * MS);
		if (r < RMPSC_SHM_PEER_NONE || r > RMPSC_SHM_PEER_GONE) {
			print_error("peer: %d\n", r);
			fail();
		}
		break;
	default:
		if ((x >> 32) % 64 == 0) {
			HC(h, "close", rmpsc_shm_close(s), 0, proto_only);
		} else {
			/* Not a call that reports a broken handle: always 0. */
			r = rmpsc_shm_heartbeat(s);
			if (r != 0) {
				print_error("heartbeat: %d\n", r);
				fail();
			}
		}
		break;
	}
}

static void hostile_run(uint64_t seed, bool we_produce, bool watch)
{
	rmpsc_shm_config cfg;
	rmpsc_shm *s = NULL;
	char name[64], ms[32], sd[32];
	const int before = open_fds();
	const int64_t t0 = now_ns();
	struct hstats h = {0};
	uint64_t rng = seed * 0x9e3779b97f4a7c15ull | 1, sink = 0;
	int lfd, c, st = -1, after = 0;
	pid_t pid;

	alarm(120);
	sock_name(name, sizeof name);
	snprintf(ms, sizeof ms, "%d", STRESS_SCALE(1500, 1000, 700));
	snprintf(sd, sizeof sd, "%" PRIu64, seed);
	rmpsc_shm_config_init(&cfg, sizeof cfg);
	cfg.role = we_produce ? RMPSC_SHM_PRODUCER : RMPSC_SHM_CONSUMER;
	cfg.elem_size = 8;
	cfg.capacity = 64;
	assert_ret(rmpsc_shm_create(&cfg, &s), 0);
	lfd = rmpsc_fd_listen(name, 4);
	assert_true(lfd >= 0);
	{
		const char *const a[] = {"shm_peer", "hostile", name, ms, sd,
					 we_produce ? "consumer" : "producer", NULL};

		pid = spawn_peer(a);
	}
	c = hand_over(lfd, rmpsc_shm_fd(s));
	if (watch)
		assert_ret(rmpsc_shm_watch(s, c), 0);
	/* While it scribbles, and a while after it went. */
	while (after < 300) {
		hostile_op(s, we_produce, xs_next(&rng), &h, &sink);
		if (after)
			after++;
		else if (waitpid(pid, &st, WNOHANG) == pid)
			after = 1;
	}
	expect_exit0("hostile peer", st);
	rmpsc_shm_destroy(s);
	close(c);
	assert_ret(rmpsc_fd_unlisten(lfd, name), 0);
	assert_int_equal(open_fds(), before);
	print_message("  seed %" PRIu64 " (we %s%s): %" PRIu64 " calls, %" PRIu64
		      " counts, %" PRIu64 " -EPROTO, %" PRId64 " ms\n",
		      seed, we_produce ? "produce" : "consume", watch ? ", watching" : "", h.ops,
		      h.ok, h.eproto, ms_since(t0));
	(void)sink;
	alarm(0);
}

static void test_shm_proc_when_peer_scribbles_header_calls_return_documented_codes(void **state)
{
	(void)state;
	for (uint64_t seed = 1; seed <= 6; seed++)
		hostile_run(seed, false, seed % 3 == 0);
	for (uint64_t seed = 7; seed <= 9; seed++)
		hostile_run(seed, true, seed % 3 == 0);
}

/* ---- 6: descriptor passing, and nothing left -------------------------------------- */

/* Send @nfds descriptors (or none: a plain message) with @len bytes to
 * shm_peer probe over @c; its answer. */
static int probe_ask(int c, const int *fds, uint32_t nfds, uint32_t len)
{
	char data[64] = "probe";
	struct pollfd p = {.fd = c, .events = POLLIN};
	int32_t res = 12345;

	if (nfds)
		assert_true(rmpsc_fd_send(c, fds, nfds, data, len, 10 * SEC) >= 1);
	else
		assert_int_equal(send(c, data, len, MSG_NOSIGNAL), (ssize_t)len);
	assert_int_equal(poll(&p, 1, 60000), 1);
	assert_int_equal(recv(c, &res, sizeof res, 0), (ssize_t)sizeof res);
	return res;
}

/* A memfd of @size bytes holding the first @size bytes of @src's file,
 * with @seals. */
static int memfd_copy(int src, size_t size, unsigned seals)
{
	const int fd = memfd_create("test_shm_proc", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	char *buf = calloc(1, size);

	assert_true(fd >= 0 && buf);
	assert_true(pread(src, buf, size, 0) > 0);
	assert_int_equal(write(fd, buf, size), (ssize_t)size);
	free(buf);
	if (seals)
		assert_int_equal(fcntl(fd, F_ADD_SEALS, seals), 0);
	return fd;
}

static void test_shm_proc_when_fd_passed_is_wrong_attach_fails_and_nothing_is_left(void **state)
{
	const int before = open_fds(), shm_before = devshm_entries();
	const unsigned seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
	char dir[] = "/tmp/rmpsc-shm-proc-XXXXXX", path[128];
	rmpsc_shm_config cfg;
	rmpsc_shm *s = NULL;
	int lfd, c, st, fds[5], pp[2], sp[2], devnull, mfd;
	struct stat sb;
	pid_t pid;

	(void)state;
	alarm(120);
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/sock", dir);
	lfd = rmpsc_fd_listen(path, 4);
	assert_true(lfd >= 0);
	{
		const char *const a[] = {"shm_peer", "probe", path, NULL};

		pid = spawn_peer(a);
	}
	c = rmpsc_fd_accept(lfd, 60 * SEC);
	assert_true(c >= 0);
	rmpsc_shm_config_init(&cfg, sizeof cfg);
	cfg.role = RMPSC_SHM_PRODUCER;
	cfg.elem_size = 8;
	cfg.capacity = 1024;
	assert_ret(rmpsc_shm_create(&cfg, &s), 0);
	mfd = rmpsc_shm_fd(s);
	assert_int_equal(fstat(mfd, &sb), 0);
	assert_int_equal(pipe2(pp, O_CLOEXEC), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	assert_true(devnull >= 0);

	/* No descriptor at all. */
	assert_ret(probe_ask(c, NULL, 0, 5), -ENOMSG);
	/* Descriptors that are not a shared ring. */
	assert_ret(probe_ask(c, &devnull, 1, 1), -EPROTO);
	assert_ret(probe_ask(c, &pp[0], 1, 1), -EPROTO);
	assert_ret(probe_ask(c, &pp[1], 1, 1), -EPROTO);
	assert_ret(probe_ask(c, &sp[0], 1, 1), -EPROTO);
	/* A ring's bytes, unsealed; sealed but one page longer. */
	fds[0] = memfd_copy(mfd, (size_t)sb.st_size, 0);
	assert_ret(probe_ask(c, fds, 1, 1), -EPROTO);
	close(fds[0]);
	fds[0] = memfd_copy(mfd, (size_t)sb.st_size + 4096, seals);
	assert_ret(probe_ask(c, fds, 1, 1), -EPROTO);
	close(fds[0]);
	/* A ring's bytes, sealed as attach wants: a ring (its producer, this
	 * process, is alive). */
	fds[0] = memfd_copy(mfd, (size_t)sb.st_size, seals);
	assert_ret(probe_ask(c, fds, 1, 1), 0);
	close(fds[0]);
	/* Too many descriptors for the receiver (4), too much data (16). */
	fds[0] = mfd;
	fds[1] = pp[0];
	fds[2] = pp[1];
	fds[3] = sp[0];
	fds[4] = devnull;
	assert_ret(probe_ask(c, fds, 5, 1), -EMSGSIZE);
	assert_ret(probe_ask(c, fds, 1, 40), -EMSGSIZE);
	/* The ring itself, with company (only the first is attached, all
	 * closed): the consumer attaches and destroys its handle, which
	 * closes the ring and detaches; this side sees it gone, and the
	 * ring's end is the clean close's -EPIPE. */
	assert_ret(probe_ask(c, fds, 4, 1), 0);
	assert_ret(rmpsc_shm_peer(s, -1), RMPSC_SHM_PEER_GONE);
	assert_ret(rmpsc_shm_push(s, fds), -EPIPE);
	/* The probe ends when we hang up. */
	close(c);
	st = reap(pid, 60);
	expect_exit0("probe", st);
	rmpsc_shm_destroy(s);
	close(pp[0]);
	close(pp[1]);
	close(sp[0]);
	close(sp[1]);
	close(devnull);
	/* Attach here to what is not a ring: clean errors, nothing opened. */
	cfg.role = RMPSC_SHM_CONSUMER;
	s = SENTINEL_OF(rmpsc_shm);
	assert_ret(rmpsc_shm_attach(-1, &cfg, &s), -EBADF);
	assert_null(s);
	s = SENTINEL_OF(rmpsc_shm);
	assert_ret(rmpsc_shm_attach(1000, &cfg, &s), -EBADF);
	assert_null(s);
	/* The socket file goes with unlisten; the directory is empty. */
	assert_int_equal(access(path, F_OK), 0);
	assert_ret(rmpsc_fd_unlisten(lfd, path), 0);
	assert_int_equal(rmdir(dir), 0);
	assert_int_equal(open_fds(), before);
	assert_int_equal(devshm_entries(), shm_before);
	alarm(0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shm_proc_when_two_processes_move_u64_sequence_arrives_whole),
		cmocka_unit_test(test_shm_proc_when_two_processes_move_crc_records_every_crc_holds),
		cmocka_unit_test(
			test_shm_proc_when_producer_killed_consumer_gets_whole_records_then_econnreset),
		cmocka_unit_test(test_shm_proc_when_consumer_killed_blocked_producer_gets_econnreset),
		cmocka_unit_test(test_shm_proc_when_peer_scribbles_header_calls_return_documented_codes),
		cmocka_unit_test(test_shm_proc_when_fd_passed_is_wrong_attach_fails_and_nothing_is_left),
	};

	/* A peer that went away must not take us with it. */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
