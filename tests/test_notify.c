/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for rmpsc_notifier (include/ringmpsc/notify.h) and its ring
 * attachment (rmpsc_ring_set_notifier): create/destroy, the eventfd's
 * flags, signal coalescing, arm + signal_if_waiting, edge-triggered epoll
 * registration, every documented error code, the signal from every ring
 * producer call, detach and replace, and two threaded no-loss checks (the
 * consume-then-drain loop of notify.h over epoll, and the arm/check/sleep
 * protocol with signal_if_waiting).
 *
 * No timing assertions. Blocking waits use long timeouts only to turn a
 * lost wake-up (data pending, no event for 20 s) into a failure
 * instead of a hang.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_util.h"

#include "ringmpsc/notify.h"
#include "ringmpsc/ring.h"
#include "ringmpsc/wait.h"

#include "test_table.h"

/* A wait that sees no event for this long while data is pending is a lost
 * wake-up (checked twice in a row before failing). Not a latency bound. */
#define LOST_WAKEUP_MS 10000

#ifndef RACER_ROUNDS
#define RACER_ROUNDS 100000
#endif

/* ---- helpers ------------------------------------------------------------ */

/* A non-NULL pointer that create must overwrite with NULL on error. */
#define SENTINEL SENTINEL_OF(rmpsc_notifier)

/* Readable right now (poll with timeout 0): 1, else 0. */
static int fd_readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int rc;

	do
		rc = poll(&p, 1, 0);
	while (rc < 0 && errno == EINTR);
	assert_true(rc >= 0);
	return rc > 0 && (p.revents & POLLIN);
}

/* Events epoll reports right now (timeout 0), at most 4. */
static int epoll_now(int epfd, struct epoll_event *ev)
{
	int rc;

	do
		rc = epoll_wait(epfd, ev, 4, 0);
	while (rc < 0 && errno == EINTR);
	assert_true(rc >= 0);
	return rc;
}

/* A file descriptor number that is certainly not open. */
static int closed_fd(void)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	close(fd);
	return fd;
}

static rmpsc_notifier *notifier_new(void)
{
	rmpsc_notifier *n = SENTINEL;

	assert_ret(rmpsc_notifier_create(0, &n), 0);
	assert_non_null(n);
	assert_ptr_not_equal(n, SENTINEL);
	return n;
}

/* ---- fixture: a notifier, an SPSC ring of u64 and an epoll instance ---- */

#define FIX_CAP 64u

struct fx {
	rmpsc_notifier *n;
	rmpsc_ring *r;
	int epfd;
};

static int setup_notify(void **state)
{
	struct fx *f = calloc(1, sizeof *f);

	if (!f)
		return -1;
	if (rmpsc_notifier_create(0, &f->n))
		goto fail;
	{
		rmpsc_ring_config cfg;

		if (rmpsc_ring_config_init(&cfg, sizeof cfg))
			goto fail;
		cfg.capacity = FIX_CAP;
		cfg.elem_size = sizeof(uint64_t);
		if (rmpsc_ring_create(&cfg, &f->r))
			goto fail;
	}
	f->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (f->epfd < 0)
		goto fail;
	*state = f;
	return 0;
fail:
	rmpsc_ring_destroy(f->r);
	rmpsc_notifier_destroy(f->n);
	free(f);
	return -1;
}

static int teardown_notify(void **state)
{
	struct fx *f = *state;

	/* Detach before the notifier goes (ring.h lifetime rule). */
	rmpsc_ring_set_notifier(f->r, NULL);
	rmpsc_ring_destroy(f->r);
	rmpsc_notifier_destroy(f->n);
	close(f->epfd);
	free(f);
	return 0;
}

/* ---- create / destroy / fd ---------------------------------------------- */

static void test_notify_create_when_no_fd_left_returns_emfile(void **state)
{
	struct rlimit old, low;
	rmpsc_notifier *n = SENTINEL;
	int rc;

	(void)state;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	/* The lowest free descriptor number becomes the limit: no new fd. */
	low = old;
	low.rlim_cur = (rlim_t)closed_fd();
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	rc = rmpsc_notifier_create(0, &n);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	if (rc == 0)
		rmpsc_notifier_destroy(n);
	assert_ret(rc, -EMFILE);
	assert_null(n);
}

static void test_notify_create_when_valid_returns_distinct_handles(void **state)
{
	rmpsc_notifier *a, *b;

	(void)state;
	a = notifier_new();
	b = notifier_new();
	assert_ptr_not_equal(a, b);
	assert_true(rmpsc_notifier_fd(a) >= 0);
	assert_true(rmpsc_notifier_fd(b) >= 0);
	assert_int_not_equal(rmpsc_notifier_fd(a), rmpsc_notifier_fd(b));
	rmpsc_notifier_destroy(a);
	rmpsc_notifier_destroy(b);
}

static void test_notify_fd_when_valid_is_nonblocking_cloexec_eventfd(void **state)
{
	struct fx *f = *state;
	const int fd = rmpsc_notifier_fd(f->n);
	char path[64], link[128];
	uint64_t v;
	ssize_t len;
	int fl;

	assert_true(fd >= 0);
	assert_int_equal(rmpsc_notifier_fd(f->n), fd); /* stable */
	fl = fcntl(fd, F_GETFL);
	assert_true(fl >= 0);
	assert_true(fl & O_NONBLOCK);
	fl = fcntl(fd, F_GETFD);
	assert_true(fl >= 0);
	assert_true(fl & FD_CLOEXEC);

	/* An eventfd: the kernel names it so. */
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	len = readlink(path, link, sizeof link - 1);
	if (len >= 0) {
		link[len] = '\0';
		assert_string_equal(link, "anon_inode:[eventfd]");
	}
	/* Nothing pending: a non-blocking read fails with EAGAIN, not blocks. */
	assert_false(fd_readable(fd));
	errno = 0;
	assert_int_equal(read(fd, &v, sizeof v), -1);
	assert_int_equal(errno, EAGAIN);
}

static void test_notify_destroy_when_valid_closes_fd(void **state)
{
	rmpsc_notifier *n;
	int fd;

	(void)state;
	n = notifier_new();
	fd = rmpsc_notifier_fd(n);
	assert_true(fd >= 0);
	assert_ret(rmpsc_notifier_signal(n), 1);
	rmpsc_notifier_destroy(n);
	errno = 0;
	assert_int_equal(fcntl(fd, F_GETFD), -1);
	assert_int_equal(errno, EBADF);
}

static void test_notify_destroy_with_null_is_noop(void **state)
{
	(void)state;
	rmpsc_notifier_destroy(NULL);
}

/* ---- argument and handle checks ---------------------------------------------- */

/*
 * The notifier's table (test_table.h): every call refused for one argument
 * or for its handle, with the code notify.h promises. The live fixture is
 * setup_notify()'s; afterwards the notifier has no signal pending, is
 * registered with no epoll instance, and still signals.
 */

static struct fx *tfx;
static int any_epfd; /* an epoll instance for the calls whose handle is wrong */

static void *notify_fx(uint32_t state)
{
	void *f = NULL;

	(void)state;
	assert_int_equal(setup_notify(&f), 0);
	tfx = f;
	return tfx->n;
}

static const char *notify_fx_check(void *h, const struct tt_row *row, int64_t got)
{
	struct epoll_event ev[4];

	(void)row;
	(void)got;
	if (fd_readable(rmpsc_notifier_fd(h)) || epoll_now(tfx->epfd, ev) != 0)
		return "a signal is pending";
	if (rmpsc_notifier_epoll_add(h, tfx->epfd, 0) != 0)
		return "the notifier was registered";
	if (rmpsc_notifier_signal(h) != 1 || rmpsc_notifier_consume(h) != 1)
		return "the notifier no longer signals";
	return NULL;
}

static void notify_fx_free(void *h)
{
	void *f = tfx;

	(void)h;
	teardown_notify(&f);
	tfx = NULL;
}

/* A live ring where a notifier is expected: it must stay open and empty. */
static void *make_ring(void)
{
	return notify_fx(0), tfx->r;
}

static const char *ring_intact(void *h)
{
	return rmpsc_ring_len(h) == 0 && rmpsc_ring_is_closed(h) == 0 ? NULL : "the ring changed";
}

static const struct tt_handle not_a_notifier[] = {
	TT_HANDLES_NOT_A_HANDLE,
	{ "a ring", make_ring, ring_intact, notify_fx_free },
};

static int64_t n_create(void *h, uint64_t v)
{
	rmpsc_notifier *n = SENTINEL;
	const int rc = rmpsc_notifier_create((uint32_t)v, &n);

	(void)h;
	if (tt_created(rc, n, SENTINEL))
		rmpsc_notifier_destroy(n);
	return rc;
}

/* an open pipe's end (v: 0 read, 1 write), or the eventfd itself (v: 2) */
static int64_t n_epoll_pipe(void *h, uint64_t v, bool add)
{
	int p[2], fd, rc;

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	fd = v < 2 ? p[v] : rmpsc_notifier_fd(h);
	rc = add ? rmpsc_notifier_epoll_add(h, fd, 0) : rmpsc_notifier_epoll_del(h, fd);
	close(p[0]);
	close(p[1]);
	return rc;
}

/* v: -1, INT_MIN (as uint32_t), or 1 for a descriptor just closed */
static int bad_fd(uint64_t v)
{
	return v == 1 ? closed_fd() : (int)(uint32_t)v;
}

TT_CALL(n_create_null, rmpsc_notifier_create((uint32_t)v, NULL))
TT_CALL(n_fd, rmpsc_notifier_fd(h))
TT_CALL(n_signal, rmpsc_notifier_signal(h))
TT_CALL(n_signal_if_waiting, rmpsc_notifier_signal_if_waiting(h))
TT_CALL(n_arm, rmpsc_notifier_arm(h))
TT_CALL(n_consume, rmpsc_notifier_consume(h))
TT_CALL(n_epoll_add, rmpsc_notifier_epoll_add(h, any_epfd, 0))
TT_CALL(n_epoll_del, rmpsc_notifier_epoll_del(h, any_epfd))
TT_CALL(n_epoll_add_bad_fd, rmpsc_notifier_epoll_add(h, bad_fd(v), 0))
TT_CALL(n_epoll_del_bad_fd, rmpsc_notifier_epoll_del(h, bad_fd(v)))
TT_CALL(n_epoll_add_not_epoll, n_epoll_pipe(h, v, true))
TT_CALL(n_epoll_del_not_epoll, n_epoll_pipe(h, v, false))

static const struct tt_row notify_rows[] = {
	TT_ROW("fd", n_fd, -EBADF, TT_BAD),
	TT_ROW("signal", n_signal, -EBADF, TT_BAD),
	TT_ROW("signal_if_waiting", n_signal_if_waiting, -EBADF, TT_BAD),
	TT_ROW("arm", n_arm, -EBADF, TT_BAD),
	TT_ROW("consume", n_consume, -EBADF, TT_BAD),
	TT_ROW("epoll_add", n_epoll_add, -EBADF, TT_BAD),
	TT_ROW("epoll_del", n_epoll_del, -EBADF, TT_BAD),
	TT_ROW("create: flags not 0", n_create, -EINVAL, 0,
	       TT_VALS(1, 2, 0x80, 0x80000000u, UINT32_MAX)),
	TT_ROW("create: out NULL (flags 0 or not)", n_create_null, -EINVAL, 0, TT_VALS(0,
	       1)),
	TT_ROW("epoll_add: epfd not open", n_epoll_add_bad_fd, -EBADF, 0,
	       TT_VALS((uint32_t)-1, (uint32_t)INT_MIN, 1)),
	TT_ROW("epoll_del: epfd not open", n_epoll_del_bad_fd, -EBADF, 0,
	       TT_VALS((uint32_t)-1, 1)),
	TT_ROW("epoll_add: epfd not an epoll fd (pipe ends, the eventfd)",
	       n_epoll_add_not_epoll,
	       -EINVAL, 0, TT_VALS(2, 0, 1)),
	TT_ROW("epoll_del: epfd not an epoll fd (the eventfd, a pipe)",
	       n_epoll_del_not_epoll,
	       -EINVAL, 0, TT_VALS(2, 0)),
};

static void notify_table_begin(void)
{
	any_epfd = epoll_create1(EPOLL_CLOEXEC);
	assert_true(any_epfd >= 0);
}

static void notify_table_end(void)
{
	close(any_epfd);
}

TT_TEST(test_notify_calls_with_bad_handle_or_argument_return_documented_code,
	.name = "notifier", TT_ROWS(notify_rows), .setup = notify_fx,
	.check = notify_fx_check, .teardown = notify_fx_free, TT_BADS(not_a_notifier),
	.begin = notify_table_begin, .end = notify_table_end)

/* ---- signal / consume ---------------------------------------------------- */

static void test_notify_signal_when_pending_coalesces_returns_zero(void **state)
{
	struct fx *f = *state;
	const int fd = rmpsc_notifier_fd(f->n);

	assert_false(fd_readable(fd));
	assert_ret(rmpsc_notifier_signal(f->n), 1);
	assert_true(fd_readable(fd));
	for (int i = 0; i < 100; i++)
		assert_ret(rmpsc_notifier_signal(f->n), 0);
	assert_true(fd_readable(fd));
	/* One write of the eventfd, so one signal to take. */
	assert_ret(rmpsc_notifier_consume(f->n), 1);
	assert_false(fd_readable(fd));
	/* Consumed: the next signal writes again. */
	assert_ret(rmpsc_notifier_signal(f->n), 1);
	assert_ret(rmpsc_notifier_signal(f->n), 0);
	assert_true(fd_readable(fd));
	assert_true(rmpsc_notifier_consume(f->n) >= 1);
	assert_ret(rmpsc_notifier_consume(f->n), 0);
}

static void test_notify_consume_when_nothing_pending_returns_zero(void **state)
{
	struct fx *f = *state;

	assert_ret(rmpsc_notifier_consume(f->n), 0);
	assert_ret(rmpsc_notifier_consume(f->n), 0);
	assert_ret(rmpsc_notifier_signal(f->n), 1);
	assert_true(rmpsc_notifier_consume(f->n) >= 1);
	assert_ret(rmpsc_notifier_consume(f->n), 0);
	assert_false(fd_readable(rmpsc_notifier_fd(f->n)));
}

static void test_notify_signal_when_counter_is_full_returns_one_fd_readable(void **state)
{
	struct fx *f = *state;
	const int fd = rmpsc_notifier_fd(f->n);
	/* The largest value an eventfd counter holds is 2^64 - 2: the write
	 * would block, but the fd is readable, which is all a signal needs. */
	const uint64_t big = UINT64_MAX - 1;

	assert_int_equal(write(fd, &big, sizeof big), (ssize_t)sizeof big);
	assert_ret(rmpsc_notifier_signal(f->n), 1);
	assert_true(fd_readable(fd));
	assert_true(rmpsc_notifier_consume(f->n) >= 1);
}

static void test_notify_signal_if_waiting_when_counter_is_full_returns_one(void **state)
{
	struct fx *f = *state;
	const int fd = rmpsc_notifier_fd(f->n);
	const uint64_t big = UINT64_MAX - 1;

	assert_ret(rmpsc_notifier_arm(f->n), 0);
	assert_int_equal(write(fd, &big, sizeof big), (ssize_t)sizeof big);
	assert_ret(rmpsc_notifier_signal_if_waiting(f->n), 1);
	assert_true(fd_readable(fd));
}

/* Put a read-only file under the notifier's descriptor number: write(2) on
 * it fails (EBADF). destroy closes it as usual. */
static void break_fd_for_write(int fd)
{
	int rd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	assert_true(rd >= 0);
	assert_int_equal(dup2(rd, fd), fd);
	close(rd);
}

static void test_notify_signal_when_write_fails_returns_eio(void **state)
{
	struct fx *f = *state;

	break_fd_for_write(rmpsc_notifier_fd(f->n));
	assert_ret(rmpsc_notifier_signal(f->n), -EIO);
}

/* A failed write leaves nothing pending: every later signal tries again and
 * reports the failure (it used to return 0, "coalesced", until someone
 * consumed), and a ring's publications keep trying too. */
static void test_notify_signal_after_failed_write_returns_eio_again(void **state)
{
	struct fx *f = *state;
	rmpsc_ring *r = ring_make(8, 8, 0, 0);
	uint64_t v = 1;

	assert_ret(rmpsc_ring_set_notifier(r, f->n), 0);
	break_fd_for_write(rmpsc_notifier_fd(f->n));
	assert_ret(rmpsc_notifier_signal(f->n), -EIO);
	assert_ret(rmpsc_notifier_signal(f->n), -EIO);
	assert_ret(rmpsc_ring_push(r, &v), 0); /* its signal fails too, quietly */
	assert_ret(rmpsc_notifier_signal(f->n), -EIO);
	assert_ret(rmpsc_notifier_arm(f->n), 0);
	assert_ret(rmpsc_notifier_signal_if_waiting(f->n), -EIO);
	assert_ret(rmpsc_notifier_signal_if_waiting(f->n), -EIO);
	assert_ret(rmpsc_ring_set_notifier(r, NULL), 0);
	rmpsc_ring_destroy(r);
}

static void test_notify_signal_if_waiting_when_write_fails_returns_eio(void **state)
{
	struct fx *f = *state;

	assert_ret(rmpsc_notifier_arm(f->n), 0);
	break_fd_for_write(rmpsc_notifier_fd(f->n));
	assert_ret(rmpsc_notifier_signal_if_waiting(f->n), -EIO);
}

static void test_notify_consume_when_read_fails_returns_eio(void **state)
{
	struct fx *f = *state;
	const int fd = rmpsc_notifier_fd(f->n);
	int wr;

	assert_ret(rmpsc_notifier_signal(f->n), 1);
	/* Put a write-only file under the notifier's descriptor number:
	 * read(2) on it fails (EBADF). destroy closes it as usual. */
	wr = open("/dev/null", O_WRONLY | O_CLOEXEC);
	assert_true(wr >= 0);
	assert_int_equal(dup2(wr, fd), fd);
	close(wr);
	assert_ret(rmpsc_notifier_consume(f->n), -EIO);
}

/* ---- arm / signal_if_waiting --------------------------------------------- */

static void test_notify_signal_if_waiting_without_arm_returns_zero(void **state)
{
	struct fx *f = *state;

	for (int i = 0; i < 10; i++)
		assert_ret(rmpsc_notifier_signal_if_waiting(f->n), 0);
	assert_false(fd_readable(rmpsc_notifier_fd(f->n)));
	assert_ret(rmpsc_notifier_consume(f->n), 0);
}

static void test_notify_signal_if_waiting_after_arm_returns_one(void **state)
{
	struct fx *f = *state;
	const int fd = rmpsc_notifier_fd(f->n);

	assert_ret(rmpsc_notifier_arm(f->n), 0);
	assert_false(fd_readable(fd)); /* arming writes nothing */
	assert_ret(rmpsc_notifier_signal_if_waiting(f->n), 1);
	assert_true(fd_readable(fd));
	/* Still armed but the signal is pending: coalesced. */
	assert_ret(rmpsc_notifier_signal_if_waiting(f->n), 0);
	assert_ret(rmpsc_notifier_consume(f->n), 1);
	assert_false(fd_readable(fd));
	/* consume disarmed. */
	assert_ret(rmpsc_notifier_signal_if_waiting(f->n), 0);
	assert_false(fd_readable(fd));
	/* Arm again: signals again. */
	assert_ret(rmpsc_notifier_arm(f->n), 0);
	assert_ret(rmpsc_notifier_arm(f->n), 0); /* twice is fine */
	assert_ret(rmpsc_notifier_signal_if_waiting(f->n), 1);
	assert_true(rmpsc_notifier_consume(f->n) >= 1);
	assert_ret(rmpsc_notifier_consume(f->n), 0);
}

static void test_notify_signal_after_arm_returns_one_then_coalesces(void **state)
{
	struct fx *f = *state;

	assert_ret(rmpsc_notifier_arm(f->n), 0);
	assert_ret(rmpsc_notifier_signal(f->n), 1);
	assert_ret(rmpsc_notifier_signal_if_waiting(f->n), 0);
	assert_ret(rmpsc_notifier_signal(f->n), 0);
	assert_ret(rmpsc_notifier_consume(f->n), 1);
}

/* ---- epoll --------------------------------------------------------------- */

static void test_notify_epoll_add_when_signalled_reports_epollin_once(void **state)
{
	struct fx *f = *state;
	const uint64_t tag = 0x0123456789abcdefull;
	struct epoll_event ev[4];

	assert_ret(rmpsc_notifier_epoll_add(f->n, f->epfd, tag), 0);
	assert_int_equal(epoll_now(f->epfd, ev), 0);

	assert_ret(rmpsc_notifier_signal(f->n), 1);
	assert_int_equal(epoll_now(f->epfd, ev), 1);
	assert_true(ev[0].events & EPOLLIN);
	assert_int_equal(ev[0].data.u64, tag);
	/* Edge-triggered: no new edge, no new event, though still readable. */
	assert_int_equal(epoll_now(f->epfd, ev), 0);
	assert_true(fd_readable(rmpsc_notifier_fd(f->n)));
	/* A coalesced signal writes nothing, so it makes no edge either. */
	assert_ret(rmpsc_notifier_signal(f->n), 0);
	assert_int_equal(epoll_now(f->epfd, ev), 0);

	/* Consume re-arms: the next signal is a new edge. */
	assert_ret(rmpsc_notifier_consume(f->n), 1);
	assert_int_equal(epoll_now(f->epfd, ev), 0);
	assert_ret(rmpsc_notifier_signal(f->n), 1);
	assert_int_equal(epoll_now(f->epfd, ev), 1);
	assert_int_equal(ev[0].data.u64, tag);
	assert_int_equal(epoll_now(f->epfd, ev), 0);
	assert_ret(rmpsc_notifier_consume(f->n), 1);
}

static void test_notify_epoll_add_when_already_registered_returns_eexist(void **state)
{
	struct fx *f = *state;

	assert_ret(rmpsc_notifier_epoll_add(f->n, f->epfd, 1), 0);
	assert_ret(rmpsc_notifier_epoll_add(f->n, f->epfd, 2), -EEXIST);
	assert_ret(rmpsc_notifier_epoll_add(f->n, f->epfd, 1), -EEXIST);
}

static void test_notify_epoll_add_with_two_epoll_sets_reports_in_both(void **state)
{
	struct fx *f = *state;
	struct epoll_event ev[4];
	const int ep2 = epoll_create1(EPOLL_CLOEXEC);

	assert_true(ep2 >= 0);
	assert_ret(rmpsc_notifier_epoll_add(f->n, f->epfd, 7), 0);
	assert_ret(rmpsc_notifier_epoll_add(f->n, ep2, 8), 0);
	assert_ret(rmpsc_notifier_signal(f->n), 1);
	assert_int_equal(epoll_now(f->epfd, ev), 1);
	assert_int_equal(ev[0].data.u64, 7);
	assert_int_equal(epoll_now(ep2, ev), 1);
	assert_int_equal(ev[0].data.u64, 8);
	assert_ret(rmpsc_notifier_epoll_del(f->n, ep2), 0);
	close(ep2);
}

static void test_notify_epoll_del_when_registered_stops_events(void **state)
{
	struct fx *f = *state;
	struct epoll_event ev[4];

	assert_ret(rmpsc_notifier_epoll_add(f->n, f->epfd, 5), 0);
	assert_ret(rmpsc_notifier_epoll_del(f->n, f->epfd), 0);
	assert_ret(rmpsc_notifier_signal(f->n), 1);
	assert_int_equal(epoll_now(f->epfd, ev), 0);
	assert_ret(rmpsc_notifier_consume(f->n), 1);
	/* Registered again after a del. */
	assert_ret(rmpsc_notifier_epoll_add(f->n, f->epfd, 6), 0);
	assert_ret(rmpsc_notifier_signal(f->n), 1);
	assert_int_equal(epoll_now(f->epfd, ev), 1);
	assert_int_equal(ev[0].data.u64, 6);
}

static void test_notify_epoll_del_when_not_registered_returns_enoent(void **state)
{
	struct fx *f = *state;

	assert_ret(rmpsc_notifier_epoll_del(f->n, f->epfd), -ENOENT);
	assert_ret(rmpsc_notifier_epoll_add(f->n, f->epfd, 0), 0);
	assert_ret(rmpsc_notifier_epoll_del(f->n, f->epfd), 0);
	assert_ret(rmpsc_notifier_epoll_del(f->n, f->epfd), -ENOENT);
}

/* ---- ring attachment ------------------------------------------------------- */

static void test_notify_ring_push_when_attached_makes_fd_readable(void **state)
{
	struct fx *f = *state;
	const int fd = rmpsc_notifier_fd(f->n);
	uint64_t v = 42;

	assert_ret(rmpsc_ring_set_notifier(f->r, f->n), 0);
	assert_false(fd_readable(fd)); /* attaching signals nothing */
	assert_ret(rmpsc_ring_push(f->r, &v), 0);
	assert_true(fd_readable(fd));
	/* More pushes coalesce into the pending signal. */
	for (int i = 0; i < 10; i++)
		assert_ret(rmpsc_ring_push(f->r, &v), 0);
	assert_ret(rmpsc_notifier_consume(f->n), 1);
	assert_false(fd_readable(fd));
	assert_ret(rmpsc_ring_drain(f->r, NULL, UINT32_MAX), 11);
	assert_false(fd_readable(fd)); /* consumer calls signal nothing */
}

static void test_notify_ring_every_producer_call_when_attached_signals(void **state)
{
	struct fx *f = *state;
	const int fd = rmpsc_notifier_fd(f->n);
	uint64_t buf[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	rmpsc_span s;
	int step = 0;

	assert_ret(rmpsc_ring_set_notifier(f->r, f->n), 0);
	for (step = 0; step < 8; step++) {
		switch (step) {
		case 0:
			assert_ret(rmpsc_ring_push(f->r, buf), 0);
			break;
		case 1:
			assert_ret(rmpsc_ring_push_n(f->r, buf, 8), 8);
			break;
		case 2:
			assert_ret(rmpsc_ring_push_n_exact(f->r, buf, 5), 5);
			break;
		case 3:
			assert_ret(rmpsc_ring_reserve(f->r, 4, &s), 4);
			assert_false(fd_readable(fd)); /* nothing published yet */
			assert_ret(rmpsc_ring_commit(f->r, 4), 0);
			break;
		case 4:
			assert_ret(rmpsc_ring_reserve_exact(f->r, 3, &s), 3);
			assert_ret(rmpsc_ring_commit(f->r, 1), 0); /* partial */
			assert_true(fd_readable(fd));
			assert_ret(rmpsc_notifier_consume(f->n), 1);
			assert_ret(rmpsc_ring_commit(f->r, 2), 0); /* the rest */
			break;
		case 5:
			assert_ret(rmpsc_ring_push_timed(f->r, buf, 0, NULL), 0);
			break;
		case 6:
			assert_ret(rmpsc_ring_push_n_timed(f->r, buf, 6, -1, NULL), 6);
			break;
		case 7:
			assert_ret(rmpsc_ring_reserve_timed(f->r, 2, &s, 0, NULL), 2);
			assert_ret(rmpsc_ring_commit(f->r, 2), 0);
			break;
		}
		if (!fd_readable(fd)) {
			print_error("producer step %d published without a signal\n", step);
			fail();
		}
		assert_ret(rmpsc_notifier_consume(f->n), 1);
		assert_false(fd_readable(fd));
		assert_true(rmpsc_ring_drain(f->r, NULL, UINT32_MAX) > 0);
	}
}

static void test_notify_ring_push_when_attached_reports_epoll_edge(void **state)
{
	struct fx *f = *state;
	struct epoll_event ev[4];
	uint64_t v = 9;

	assert_ret(rmpsc_notifier_epoll_add(f->n, f->epfd, 77), 0);
	assert_ret(rmpsc_ring_set_notifier(f->r, f->n), 0);
	for (int round = 0; round < 3 * (int)FIX_CAP; round++) {
		assert_ret(rmpsc_ring_push(f->r, &v), 0);
		assert_ret(rmpsc_ring_push(f->r, &v), 0);
		assert_int_equal(epoll_now(f->epfd, ev), 1);
		assert_int_equal(ev[0].data.u64, 77);
		/* consume, then drain (the notify.h loop) */
		assert_ret(rmpsc_notifier_consume(f->n), 1);
		assert_ret(rmpsc_ring_drain(f->r, NULL, UINT32_MAX), 2);
		assert_int_equal(epoll_now(f->epfd, ev), 0);
	}
}

static void test_notify_ring_failed_push_when_attached_keeps_data_visible(void **state)
{
	struct fx *f = *state;
	uint64_t buf[FIX_CAP];

	memset(buf, 0, sizeof buf);
	assert_ret(rmpsc_ring_set_notifier(f->r, f->n), 0);
	assert_ret(rmpsc_ring_push_n(f->r, buf, FIX_CAP), (int)FIX_CAP);
	assert_true(rmpsc_notifier_consume(f->n) >= 1);
	/* Full: the push fails and publishes nothing; whatever it signals,
	 * the drain still finds every committed element. */
	assert_ret(rmpsc_ring_push(f->r, buf), -EAGAIN);
	(void)rmpsc_notifier_consume(f->n);
	assert_ret(rmpsc_ring_drain(f->r, NULL, UINT32_MAX), (int)FIX_CAP);
	assert_ret(rmpsc_ring_close(f->r), 0);
	assert_ret(rmpsc_ring_push(f->r, buf), -EPIPE);
	assert_ret(rmpsc_ring_pop(f->r, buf), -EPIPE);
}

static void test_notify_set_notifier_with_null_detaches(void **state)
{
	struct fx *f = *state;
	const int fd = rmpsc_notifier_fd(f->n);
	uint64_t v = 3;
	rmpsc_span s;

	assert_ret(rmpsc_ring_set_notifier(f->r, f->n), 0);
	assert_ret(rmpsc_ring_push(f->r, &v), 0);
	assert_true(rmpsc_notifier_consume(f->n) >= 1);
	assert_ret(rmpsc_ring_set_notifier(f->r, NULL), 0);
	assert_ret(rmpsc_ring_set_notifier(f->r, NULL), 0); /* twice is fine */
	assert_ret(rmpsc_ring_push(f->r, &v), 0);
	assert_ret(rmpsc_ring_push_n(f->r, &v, 1), 1);
	assert_ret(rmpsc_ring_reserve(f->r, 1, &s), 1);
	assert_ret(rmpsc_ring_commit(f->r, 1), 0);
	assert_ret(rmpsc_ring_push_timed(f->r, &v, 0, NULL), 0);
	assert_false(fd_readable(fd));
	assert_ret(rmpsc_notifier_consume(f->n), 0);
	assert_ret(rmpsc_ring_len(f->r), 5);
	/* Attach again: signals again. */
	assert_ret(rmpsc_ring_set_notifier(f->r, f->n), 0);
	assert_ret(rmpsc_ring_push(f->r, &v), 0);
	assert_true(fd_readable(fd));
}

static void test_notify_set_notifier_when_replacing_signals_only_new(void **state)
{
	struct fx *f = *state;
	rmpsc_notifier *n2 = notifier_new();
	uint64_t v = 4;

	assert_ret(rmpsc_ring_set_notifier(f->r, f->n), 0);
	assert_ret(rmpsc_ring_set_notifier(f->r, n2), 0);
	assert_ret(rmpsc_ring_push(f->r, &v), 0);
	assert_false(fd_readable(rmpsc_notifier_fd(f->n)));
	assert_true(fd_readable(rmpsc_notifier_fd(n2)));
	assert_ret(rmpsc_notifier_consume(n2), 1);
	assert_ret(rmpsc_notifier_consume(f->n), 0);
	/* One notifier on two rings: both signal it. */
	{
		rmpsc_ring *r2 = ring_make(8, 8, 0, 0);

		assert_ret(rmpsc_ring_set_notifier(r2, n2), 0);
		assert_ret(rmpsc_ring_push(r2, &v), 0);
		assert_ret(rmpsc_notifier_consume(n2), 1);
		assert_ret(rmpsc_ring_push(f->r, &v), 0);
		assert_ret(rmpsc_notifier_consume(n2), 1);
		assert_ret(rmpsc_ring_set_notifier(r2, NULL), 0);
		rmpsc_ring_destroy(r2);
	}
	assert_ret(rmpsc_ring_set_notifier(f->r, NULL), 0);
	rmpsc_notifier_destroy(n2);
}

/* ---- threads: setters racing, a sleeper with a notifier attached ----------- */

/* The push checks one wake word, which carries "a notifier is attached"
 * next to the sleepers' count; set_notifier keeps the two in step. */
struct setter {
	rmpsc_ring *r;
	rmpsc_notifier *n;
	atomic_int *round; /* round to run; -1: leave */
	atomic_int *done;  /* rounds finished, both setters together */
	int err;
};

/* Each round, as soon as it starts: attach, detach, attach again, so that
 * both setters' calls overlap and the last call of each attaches. */
static void *setter_main(void *arg)
{
	struct setter *x = arg;
	int seen = 0;

	for (;;) {
		unsigned spins = 0;
		int r;

		/* Spin for a prompt, simultaneous start; yield when it takes
		 * long (more threads than CPUs). */
		while ((r = atomic_load(x->round)) == seen)
			if (++spins > 2000)
				sched_yield();
		if (r < 0)
			return NULL;
		seen = r;
		if (!x->err)
			x->err = rmpsc_ring_set_notifier(x->r, x->n);
		if (!x->err)
			x->err = rmpsc_ring_set_notifier(x->r, NULL);
		if (!x->err)
			x->err = rmpsc_ring_set_notifier(x->r, x->n);
		atomic_fetch_add(x->done, 1);
	}
}

static void test_notify_set_notifier_when_setters_race_last_one_signals(void **state)
{
	enum { ROUNDS = 25000 };
	struct fx *f = *state;
	rmpsc_notifier *n2 = notifier_new();
	atomic_int round = 0, done = 0;
	struct setter a = { f->r, f->n, &round, &done, 0 };
	struct setter b = { f->r, n2, &round, &done, 0 };
	uint64_t v = 7, got;
	pthread_t ta, tb;
	int bad = 0;

	assert_int_equal(pthread_create(&ta, NULL, setter_main, &a), 0);
	assert_int_equal(pthread_create(&tb, NULL, setter_main, &b), 0);
	for (int r = 1; r <= ROUNDS && !bad; r++) {
		int64_t ca, cb;

		atomic_store(&round, r);
		while (atomic_load(&done) < 2 * r)
			sched_yield();
		/* Whichever attached last is attached, and a push signals it:
		 * a wake word left without its notifier bit would signal
		 * neither. */
		assert_ret(rmpsc_ring_push(f->r, &v), 0);
		ca = rmpsc_notifier_consume(f->n);
		cb = rmpsc_notifier_consume(n2);
		if (ca < 0 || cb < 0 || ca + cb != 1)
			bad = r;
		assert_ret(rmpsc_ring_pop(f->r, &got), 0);
		/* Detached: no signal any more. */
		assert_ret(rmpsc_ring_set_notifier(f->r, NULL), 0);
		assert_ret(rmpsc_ring_push(f->r, &v), 0);
		if (rmpsc_notifier_consume(f->n) || rmpsc_notifier_consume(n2))
			bad = r;
		assert_ret(rmpsc_ring_pop(f->r, &got), 0);
	}
	atomic_store(&round, -1);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	assert_int_equal(a.err, 0);
	assert_int_equal(b.err, 0);
	if (bad)
		fail_msg("round %d: the notifier attached last was not signalled exactly once", bad);
	rmpsc_notifier_destroy(n2);
}

struct sleeper {
	rmpsc_ring *r;
	atomic_int started;
	int err;
	uint64_t v;
};

static void *sleeper_main(void *arg)
{
	struct sleeper *x = arg;
	rmpsc_wait w;

	x->err = rmpsc_wait_init(&w, sizeof w, RMPSC_WAIT_BLOCK);
	if (!x->err) {
		w.spin_count = 0;
		w.yield_count = 0;
		atomic_store(&x->started, 1);
		x->err = rmpsc_ring_pop_timed(x->r, &x->v, 10 * 1000000000LL, &w);
	}
	atomic_store(&x->started, 1);
	return NULL;
}

/* A consumer asleep on its futex while a notifier is attached: the push
 * wakes it (the sleepers' part of the word) and signals the notifier. */
static void test_notify_ring_push_when_notifier_and_sleeper_wakes_both(void **state)
{
	struct fx *f = *state;
	struct sleeper x = { .r = f->r };
	struct timespec t0, t1;
	pthread_t tid;
	uint64_t v = 42;

	assert_ret(rmpsc_ring_set_notifier(f->r, f->n), 0);
	assert_int_equal(pthread_create(&tid, NULL, sleeper_main, &x), 0);
	while (!atomic_load(&x.started))
		sched_yield();
	usleep(50000); /* long enough to be asleep in the kernel */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_ret(rmpsc_ring_push(f->r, &v), 0);
	pthread_join(tid, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_int_equal(x.err, 0);
	assert_int_equal(x.v, 42);
	/* Woken by the push, not by the 10 s timeout. */
	assert_true(t1.tv_sec - t0.tv_sec < 5);
	assert_true(rmpsc_notifier_consume(f->n) >= 1);
	/* Detached with the sleeper gone: the word is back to zero, and a
	 * push neither signals nor has anyone to wake. */
	assert_ret(rmpsc_ring_set_notifier(f->r, NULL), 0);
	assert_ret(rmpsc_ring_push(f->r, &v), 0);
	assert_ret(rmpsc_notifier_consume(f->n), 0);
}

/* ---- threads: signal racing consume ----------------------------------------- */

struct racer {
	rmpsc_notifier *n;
	atomic_int go;   /* round the signaller may run */
	atomic_int done; /* round the signaller finished */
	int rounds;
	int err;
};

/* Each round: three signals, racing the consumer's two consumes. */
static void *racer_main(void *arg)
{
	struct racer *x = arg;

	for (int round = 1; round <= x->rounds; round++) {
		while (atomic_load_explicit(&x->go, memory_order_acquire) < round)
			sched_yield();
		for (int i = 0; i < 3; i++) {
			int rc = rmpsc_notifier_signal(x->n);

			if (rc < 0 && !x->err)
				x->err = rc;
		}
		atomic_store_explicit(&x->done, round, memory_order_release);
	}
	return NULL;
}

/*
 * notify.h: signal makes the eventfd readable "unless an unconsumed signal
 * already does". So once signallers are quiet, an fd that is not readable
 * must mean nothing is pending: the next signal writes (returns 1). Every
 * round races three signals against two consumes. A consume that swallows
 * an eventfd write made after it re-enabled signalling breaks this, and an
 * epoll loop would then sleep forever: every later signal coalesces into
 * one that no longer makes the fd readable. (A race: how often a round
 * hits the window depends on the machine; many rounds make a miss rare.)
 */
static void test_notify_signal_racing_consume_never_leaves_stale_pending(void **state)
{
	struct racer x = { .rounds = STRESS_SCALE(RACER_ROUNDS, 20000, 5000) };
	pthread_t tid;
	int stale = 0, first_stale = 0;

	(void)state;
	x.n = notifier_new();
	atomic_init(&x.go, 0);
	atomic_init(&x.done, 0);
	assert_int_equal(pthread_create(&tid, NULL, racer_main, &x), 0);
	for (int round = 1; round <= x.rounds; round++) {
		atomic_store_explicit(&x.go, round, memory_order_release);
		(void)rmpsc_notifier_consume(x.n);
		(void)rmpsc_notifier_consume(x.n);
		while (atomic_load_explicit(&x.done, memory_order_acquire) < round)
			sched_yield();
		/* Quiet now. Not readable and yet coalescing: a stale pending. */
		if (!fd_readable(rmpsc_notifier_fd(x.n)) &&
		    rmpsc_notifier_signal(x.n) == 0 && !stale++)
			first_stale = round;
		(void)rmpsc_notifier_consume(x.n);
		(void)rmpsc_notifier_consume(x.n);
	}
	pthread_join(tid, NULL);
	rmpsc_notifier_destroy(x.n);
	if (stale)
		print_error("%d of %d rounds (first: %d) left the fd unreadable while "
			    "signal() still coalesced (returned 0)\n", stale, x.rounds,
			    first_stale);
	assert_ret(x.err, 0);
	assert_int_equal(stale, 0);
}

/* ---- threads: consume-then-drain over epoll loses nothing ------------------ */

struct tprod {
	rmpsc_ring *r;
	rmpsc_notifier *n; /* signal_if_waiting after every publish, or NULL */
	uint64_t count;
	atomic_int abort; /* the consumer gave up: stop pushing */
	int err;          /* first unexpected return code */
};

/* Push 0..count-1 with a mix of push, push_n and reserve/commit; yield
 * when the ring is full. */
static void *tprod_main(void *arg)
{
	struct tprod *p = arg;
	uint64_t next = 0, buf[32];
	uint32_t op = 0;

	while (next < p->count && !atomic_load_explicit(&p->abort, memory_order_relaxed)) {
		uint32_t want = 1 + (op * 7u) % 31u;
		int rc;

		if (want > p->count - next)
			want = (uint32_t)(p->count - next);
		switch (op++ % 3) {
		case 0:
			rc = rmpsc_ring_push(p->r, &next);
			if (rc == 0)
				rc = 1;
			break;
		case 1:
			for (uint32_t i = 0; i < want; i++)
				buf[i] = next + i;
			rc = rmpsc_ring_push_n(p->r, buf, want);
			break;
		default: {
			rmpsc_span s;

			rc = rmpsc_ring_reserve(p->r, want, &s);
			if (rc > 0) {
				uint64_t v = next;

				for (uint32_t seg = 0; seg < s.nseg; seg++) {
					uint64_t *slot = s.iov[seg].iov_base;

					for (uint32_t i = 0; i < s.count[seg]; i++)
						slot[i] = v++;
				}
				int c = rmpsc_ring_commit(p->r, (uint32_t)rc);

				if (c)
					rc = c;
			}
			break;
		}
		}
		if (rc == -EAGAIN) {
			sched_yield();
			continue;
		}
		if (rc <= 0) {
			p->err = rc ? rc : INT_MIN;
			break;
		}
		next += (uint64_t)rc;
		if (p->n) {
			rc = rmpsc_notifier_signal_if_waiting(p->n);
			if (rc < 0) {
				p->err = rc;
				break;
			}
		}
	}
	rmpsc_ring_close(p->r);
	return NULL;
}

struct tcons {
	uint64_t got;      /* elements received, in order */
	uint64_t bad_at;   /* position of the first out-of-order element */
	uint64_t bad_val;
	bool bad;
	bool lost_wakeup;
	uint64_t wakeups;
	int err;
};

/* Drain everything readable now, checking the sequence. Returns the
 * number of elements or a negative code (-EAGAIN when none). */
static int drain_check(rmpsc_ring *r, struct tcons *c)
{
	int total = 0;

	for (;;) {
		rmpsc_span s;
		int k = rmpsc_ring_readable(r, UINT32_MAX, &s);

		if (k < 0)
			return total ? total : k;
		for (uint32_t seg = 0; seg < s.nseg; seg++) {
			const uint64_t *slot = s.iov[seg].iov_base;

			for (uint32_t i = 0; i < s.count[seg]; i++) {
				if (slot[i] != c->got && !c->bad) {
					c->bad = true;
					c->bad_at = c->got;
					c->bad_val = slot[i];
				}
				c->got++;
			}
		}
		k = rmpsc_ring_advance(r, (uint32_t)k) ? -EIO : k;
		if (k < 0)
			return k;
		total += k;
	}
}

/*
 * Sleep on @fd (an epoll fd or the eventfd, polled for POLLIN) until it is
 * ready. Returns true when ready; false on a lost wake-up: twice in a row
 * no event for LOST_WAKEUP_MS while the ring held data.
 */
static bool sleep_on(int fd, rmpsc_ring *r, bool is_epoll)
{
	int misses = 0;

	for (;;) {
		int rc;

		if (is_epoll) {
			struct epoll_event ev;

			rc = epoll_wait(fd, &ev, 1, LOST_WAKEUP_MS);
		} else {
			struct pollfd p = { .fd = fd, .events = POLLIN };

			rc = poll(&p, 1, LOST_WAKEUP_MS);
		}
		if (rc > 0)
			return true;
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0)
			return false;
		if (rmpsc_ring_len(r) > 0) {
			if (++misses >= 2)
				return false;
		} else {
			misses = 0; /* the producer is just slow */
		}
	}
}

static void run_epoll_consumer(uint64_t count, uint32_t cap)
{
	rmpsc_ring *r = ring_make(cap, 8, 0, 0);
	rmpsc_notifier *n = notifier_new();
	struct tprod p = { .r = r, .n = NULL, .count = count };
	struct tcons c = { 0 };
	const int epfd = epoll_create1(EPOLL_CLOEXEC);
	pthread_t tid;
	int rc = 0;

	assert_true(epfd >= 0);
	atomic_init(&p.abort, 0);
	assert_ret(rmpsc_ring_set_notifier(r, n), 0);
	assert_ret(rmpsc_notifier_epoll_add(n, epfd, 1), 0);
	assert_int_equal(pthread_create(&tid, NULL, tprod_main, &p), 0);

	/* The notify.h loop: wait, consume first, then drain. */
	while (c.got < count) {
		if (!sleep_on(epfd, r, true)) {
			c.lost_wakeup = true;
			break;
		}
		c.wakeups++;
		int64_t k = rmpsc_notifier_consume(n);

		if (k < 0) {
			c.err = (int)k;
			break;
		}
		rc = drain_check(r, &c);
		if (rc < 0 && rc != -EAGAIN && rc != -EPIPE) {
			c.err = rc;
			break;
		}
		if (rc == -EPIPE && c.got < count)
			break; /* the producer failed and closed */
	}
	if (c.got < count || c.err || c.bad) {
		atomic_store_explicit(&p.abort, 1, memory_order_relaxed);
		rmpsc_ring_close(r);
	}
	pthread_join(tid, NULL);

	if (c.lost_wakeup)
		print_error("lost wake-up: %llu of %llu received, ring len %lld, no event\n",
			    (unsigned long long)c.got, (unsigned long long)count,
			    (long long)rmpsc_ring_len(r));
	if (c.bad)
		print_error("element %llu has value %llu\n", (unsigned long long)c.bad_at,
			    (unsigned long long)c.bad_val);
	assert_ret(p.err, 0);
	assert_ret(c.err, 0);
	assert_false(c.lost_wakeup);
	assert_false(c.bad);
	assert_int_equal(c.got, count);
	assert_true(c.wakeups >= 1);
	/* The producer closed after its last push: closed and drained. */
	{
		uint64_t v;

		assert_ret(rmpsc_ring_pop(r, &v), -EPIPE);
	}
	assert_ret(rmpsc_ring_set_notifier(r, NULL), 0);
	assert_ret(rmpsc_notifier_epoll_del(n, epfd), 0);
	close(epfd);
	rmpsc_ring_destroy(r);
	rmpsc_notifier_destroy(n);
}

static void test_notify_ring_consume_then_drain_across_threads_loses_nothing(
	void **state)
{
	(void)state;
	run_epoll_consumer(STRESS_SCALE(500000u, 100000u, 20000u), 64);
}

static void test_notify_ring_consume_then_drain_with_tiny_ring_loses_nothing(
	void **state)
{
	(void)state;
	/* Capacity 2: the producer is full almost always, every element is
	 * its own wake-up race. */
	run_epoll_consumer(STRESS_SCALE(100000u, 20000u, 5000u), 2);
}

/* ---- threads: arm / check / sleep with signal_if_waiting ------------------- */

static void test_notify_arm_with_signal_if_waiting_across_threads_loses_nothing(
	void **state)
{
	const uint64_t count = STRESS_SCALE(200000u, 50000u, 10000u);
	rmpsc_ring *r = ring_make(16, 8, 0, 0);
	rmpsc_notifier *n = notifier_new();
	struct tprod p = { .r = r, .n = n, .count = count };
	struct tcons c = { 0 };
	const int fd = rmpsc_notifier_fd(n);
	pthread_t tid;
	int rc;

	(void)state;
	atomic_init(&p.abort, 0);
	/* Not attached: the producer calls signal_if_waiting itself. */
	assert_int_equal(pthread_create(&tid, NULL, tprod_main, &p), 0);
	while (c.got < count) {
		rc = drain_check(r, &c);
		if (rc > 0)
			continue;
		if (rc != -EAGAIN) {
			if (rc != -EPIPE)
				c.err = rc;
			break;
		}
		/* About to sleep: arm, look once more, then sleep. */
		rc = rmpsc_notifier_arm(n);
		if (rc) {
			c.err = rc;
			break;
		}
		if (rmpsc_ring_len(r) > 0 || rmpsc_ring_is_closed(r) == 1) {
			(void)rmpsc_notifier_consume(n); /* disarm */
			continue;
		}
		if (!sleep_on(fd, r, false)) {
			c.lost_wakeup = true;
			break;
		}
		c.wakeups++;
		if (rmpsc_notifier_consume(n) < 0) {
			c.err = -EIO;
			break;
		}
	}
	if (c.got < count || c.err || c.bad) {
		atomic_store_explicit(&p.abort, 1, memory_order_relaxed);
		rmpsc_ring_close(r);
	}
	pthread_join(tid, NULL);
	if (c.lost_wakeup)
		print_error("lost wake-up: %llu of %llu received, ring len %lld\n",
			    (unsigned long long)c.got, (unsigned long long)count,
			    (long long)rmpsc_ring_len(r));
	assert_ret(p.err, 0);
	assert_ret(c.err, 0);
	assert_false(c.lost_wakeup);
	assert_false(c.bad);
	assert_int_equal(c.got, count);
	rmpsc_ring_destroy(r);
	rmpsc_notifier_destroy(n);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup_notify, teardown_notify)
#define U(f) cmocka_unit_test(f)

int main(void)
{
	const struct CMUnitTest tests[] = {
		/* create / destroy / fd */
		U(test_notify_create_when_no_fd_left_returns_emfile),
		U(test_notify_create_when_valid_returns_distinct_handles),
		T(test_notify_fd_when_valid_is_nonblocking_cloexec_eventfd),
		U(test_notify_destroy_when_valid_closes_fd),
		U(test_notify_destroy_with_null_is_noop),
		/* signal / consume */
		T(test_notify_signal_when_pending_coalesces_returns_zero),
		T(test_notify_consume_when_nothing_pending_returns_zero),
		T(test_notify_signal_when_counter_is_full_returns_one_fd_readable),
		T(test_notify_signal_if_waiting_when_counter_is_full_returns_one),
		T(test_notify_signal_when_write_fails_returns_eio),
		T(test_notify_signal_after_failed_write_returns_eio_again),
		T(test_notify_signal_if_waiting_when_write_fails_returns_eio),
		T(test_notify_consume_when_read_fails_returns_eio),
		/* arm / signal_if_waiting */
		T(test_notify_signal_if_waiting_without_arm_returns_zero),
		T(test_notify_signal_if_waiting_after_arm_returns_one),
		T(test_notify_signal_after_arm_returns_one_then_coalesces),
		/* epoll */
		T(test_notify_epoll_add_when_signalled_reports_epollin_once),
		T(test_notify_epoll_add_when_already_registered_returns_eexist),
		T(test_notify_epoll_add_with_two_epoll_sets_reports_in_both),
		T(test_notify_epoll_del_when_registered_stops_events),
		T(test_notify_epoll_del_when_not_registered_returns_enoent),
		/* bad arguments and handles */
		U(test_notify_calls_with_bad_handle_or_argument_return_documented_code),
		/* ring attachment */
		T(test_notify_ring_push_when_attached_makes_fd_readable),
		T(test_notify_ring_every_producer_call_when_attached_signals),
		T(test_notify_ring_push_when_attached_reports_epoll_edge),
		T(test_notify_ring_failed_push_when_attached_keeps_data_visible),
		T(test_notify_set_notifier_with_null_detaches),
		T(test_notify_set_notifier_when_replacing_signals_only_new),
		T(test_notify_set_notifier_when_setters_race_last_one_signals),
		T(test_notify_ring_push_when_notifier_and_sleeper_wakes_both),
		/* threads */
		U(test_notify_signal_racing_consume_never_leaves_stale_pending),
		U(test_notify_ring_consume_then_drain_across_threads_loses_nothing),
		U(test_notify_ring_consume_then_drain_with_tiny_ring_loses_nothing),
		U(test_notify_arm_with_signal_if_waiting_across_threads_loses_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
