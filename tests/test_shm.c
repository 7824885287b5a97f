/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for what include/ringmpsc/shm.h declares: passing file
 * descriptors over AF_UNIX sockets (rmpsc_fd_send, rmpsc_fd_recv) and the
 * listen/accept/connect helper. The peer is not trusted: messages with no
 * descriptor, too many, too much data or foreign control data are refused
 * with their own codes, and no descriptor they carried stays open (the
 * process's descriptor count is checked around each). One case moves a
 * memfd to a forked child through the helper's socket and reads back what
 * the child wrote into it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_util.h"

#include "ringmpsc/shm.h"

#define MS 1000000ll

static void pair(int type, int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv), 0);
}

static int memfd_with(const char *text)
{
	const int fd = memfd_create("test_shm", MFD_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	return fd;
}

/* The same open file: what one descriptor wrote, the other reads. */
static void same_file(int a, int b, const char *text)
{
	char buf[64] = {0};

	assert_int_equal(pread(b, buf, sizeof buf - 1, 0), (ssize_t)strlen(text));
	assert_string_equal(buf, text);
	assert_int_equal(pwrite(a, "X", 1, 0), 1);
	assert_int_equal(pread(b, buf, 1, 0), 1);
	assert_int_equal(buf[0], 'X');
}

/* Descriptors and data arrive together, as new descriptors of the same
 * files, close-on-exec; over SOCK_SEQPACKET and SOCK_STREAM. */
static void test_shm_fd_send_recv_when_fds_and_data_sent_arrive_together(void **state)
{
	const int type = (int)test_param(state);
	int sv[2], fds[3], got[RMPSC_FD_MAX];
	char data[32] = {0};
	uint32_t dlen = 99;

	pair(type, sv);
	fds[0] = memfd_with("zero");
	fds[1] = memfd_with("one");
	fds[2] = memfd_with("two");
	assert_int_equal(rmpsc_fd_send(sv[0], fds, 3, "hello", 5, -1), 5);
	assert_int_equal(rmpsc_fd_recv(sv[1], got, RMPSC_FD_MAX, data, sizeof data, &dlen, -1),
			 3);
	assert_int_equal(dlen, 5);
	assert_memory_equal(data, "hello", 5);
	same_file(fds[0], got[0], "zero");
	same_file(fds[1], got[1], "one");
	same_file(fds[2], got[2], "two");
	for (int i = 0; i < 3; i++) {
		assert_true(got[i] != fds[i]);
		assert_true(fcntl(got[i], F_GETFD) & FD_CLOEXEC);
		close(got[i]);
		close(fds[i]);
	}
	/* No data: a zero byte goes, and is not reported as data. */
	fds[0] = memfd_with("z");
	assert_int_equal(rmpsc_fd_send(sv[0], fds, 1, NULL, 0, 0), 1);
	assert_int_equal(rmpsc_fd_recv(sv[1], got, 1, NULL, 0, &dlen, 0), 1);
	assert_int_equal(dlen, 0);
	same_file(fds[0], got[0], "z");
	close(got[0]);
	close(fds[0]);
	close(sv[0]);
	close(sv[1]);
}

/* A message without descriptors: -ENOMSG, and it is consumed. */
static void test_shm_fd_recv_when_no_fd_returns_enomsg(void **state)
{
	int sv[2], got[4], fd;
	const int before = open_fds();

	(void)state;
	pair(SOCK_SEQPACKET, sv);
	assert_int_equal(send(sv[0], "plain", 5, 0), 5);
	assert_int_equal(rmpsc_fd_recv(sv[1], got, 4, NULL, 0, NULL, 0), -ENOMSG);
	assert_int_equal(rmpsc_fd_recv(sv[1], got, 4, NULL, 0, NULL, 0), -EAGAIN);
	fd = memfd_with("after");
	assert_int_equal(rmpsc_fd_send(sv[0], &fd, 1, NULL, 0, 0), 1);
	assert_int_equal(rmpsc_fd_recv(sv[1], got, 4, NULL, 0, NULL, 0), 1);
	close(got[0]);
	close(fd);
	close(sv[0]);
	close(sv[1]);
	assert_int_equal(open_fds(), before);
}

/* More descriptors than the receiver has room for, or more data than its
 * buffer (SOCK_SEQPACKET): -EMSGSIZE, every descriptor closed. */
static void test_shm_fd_recv_when_too_many_or_too_long_returns_emsgsize_and_leaks_nothing(
	void **state)
{
	int sv[2], fds[5], got[RMPSC_FD_MAX];
	char small[4];
	int before;

	(void)state;
	pair(SOCK_SEQPACKET, sv);
	for (int i = 0; i < 5; i++)
		fds[i] = memfd_with("x");
	before = open_fds();
	assert_int_equal(rmpsc_fd_send(sv[0], fds, 5, NULL, 0, 0), 1);
	assert_int_equal(rmpsc_fd_recv(sv[1], got, 2, NULL, 0, NULL, 0), -EMSGSIZE);
	assert_int_equal(open_fds(), before);
	assert_int_equal(rmpsc_fd_send(sv[0], fds, 2, "too long", 8, 0), 8);
	assert_int_equal(rmpsc_fd_recv(sv[1], got, 8, small, sizeof small, NULL, 0), -EMSGSIZE);
	assert_int_equal(open_fds(), before);
	/* The socket goes on. */
	assert_int_equal(rmpsc_fd_send(sv[0], fds, 2, "ok", 2, 0), 2);
	assert_int_equal(rmpsc_fd_recv(sv[1], got, 8, small, sizeof small, NULL, 0), 2);
	close(got[0]);
	close(got[1]);
	for (int i = 0; i < 5; i++)
		close(fds[i]);
	close(sv[0]);
	close(sv[1]);
}

/* Control data other than SCM_RIGHTS (credentials, with SO_PASSCRED on
 * the receiver): -EPROTO, and the descriptors that came with it closed. */
static void test_shm_fd_recv_when_credentials_come_returns_eproto_and_leaks_nothing(
	void **state)
{
	int sv[2], fd, got[4];
	const int one = 1;
	int before;

	(void)state;
	pair(SOCK_SEQPACKET, sv);
	assert_int_equal(setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof one), 0);
	fd = memfd_with("cred");
	before = open_fds();
	assert_int_equal(rmpsc_fd_send(sv[0], &fd, 1, NULL, 0, 0), 1);
	assert_int_equal(rmpsc_fd_recv(sv[1], got, 4, NULL, 0, NULL, 0), -EPROTO);
	assert_int_equal(open_fds(), before);
	close(fd);
	close(sv[0]);
	close(sv[1]);
}

/* Timeouts, end of stream, bad arguments. */
static void test_shm_fd_calls_when_nothing_closed_or_bad_return_documented_codes(void **state)
{
	int sv[2], fd, got[4], p[2];
	char big[8];
	const int neg = -1;

	(void)state;
	pair(SOCK_SEQPACKET, sv);
	fd = memfd_with("x");
	assert_int_equal(rmpsc_fd_recv(sv[1], got, 4, NULL, 0, NULL, 0), -EAGAIN);
	assert_int_equal(rmpsc_fd_recv(sv[1], got, 4, NULL, 0, NULL, 20 * MS), -ETIMEDOUT);
	assert_int_equal(rmpsc_fd_recv(sv[1], NULL, 4, NULL, 0, NULL, 0), -EINVAL);
	assert_int_equal(rmpsc_fd_recv(sv[1], got, 0, NULL, 0, NULL, 0), -EINVAL);
	assert_int_equal(rmpsc_fd_recv(sv[1], got, RMPSC_FD_MAX + 1, NULL, 0, NULL, 0), -EINVAL);
	assert_int_equal(rmpsc_fd_recv(sv[1], got, 4, NULL, 4, NULL, 0), -EINVAL);
	assert_int_equal(rmpsc_fd_recv(-1, got, 4, NULL, 0, NULL, 0), -EBADF);
	assert_int_equal(rmpsc_fd_send(sv[0], NULL, 1, NULL, 0, 0), -EINVAL);
	assert_int_equal(rmpsc_fd_send(sv[0], &fd, 0, NULL, 0, 0), -EINVAL);
	assert_int_equal(rmpsc_fd_send(sv[0], &fd, RMPSC_FD_MAX + 1, NULL, 0, 0), -EINVAL);
	assert_int_equal(rmpsc_fd_send(sv[0], &neg, 1, NULL, 0, 0), -EINVAL);
	assert_int_equal(rmpsc_fd_send(sv[0], &fd, 1, NULL, 3, 0), -EINVAL);
	assert_int_equal(rmpsc_fd_send(sv[0], &fd, 1, big, 65537, 0), -EINVAL);
	assert_int_equal(rmpsc_fd_send(-1, &fd, 1, NULL, 0, 0), -EBADF);
	{
		const int closed = dup(fd);

		close(closed);
		assert_int_equal(rmpsc_fd_send(sv[0], &closed, 1, NULL, 0, 0), -EBADF);
	}
	assert_int_equal(pipe(p), 0);
	assert_int_equal(rmpsc_fd_send(p[1], &fd, 1, NULL, 0, 0), -ENOTSOCK);
	assert_int_equal(rmpsc_fd_recv(p[0], got, 4, NULL, 0, NULL, 0), -ENOTSOCK);
	close(p[0]);
	close(p[1]);
	close(sv[0]);
	assert_int_equal(rmpsc_fd_recv(sv[1], got, 4, NULL, 0, NULL, -1), -EPIPE);
	pair(SOCK_SEQPACKET, sv);
	close(sv[1]);
	assert_int_equal(rmpsc_fd_send(sv[0], &fd, 1, NULL, 0, -1), -EPIPE); /* no SIGPIPE */
	close(sv[0]);
	close(fd);
}

/* A full socket: 0 is -EAGAIN, a timeout -ETIMEDOUT. */
static void test_shm_fd_send_when_socket_full_returns_eagain_or_etimedout(void **state)
{
	int sv[2], fd;
	const int small = 4096;
	int rc, sent = 0;

	(void)state;
	pair(SOCK_SEQPACKET, sv);
	assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
	fd = memfd_with("full");
	while ((rc = rmpsc_fd_send(sv[0], &fd, 1, "0123456789abcdef", 16, 0)) == 16)
		assert_true(++sent < 100000);
	assert_int_equal(rc, -EAGAIN);
	assert_int_equal(rmpsc_fd_send(sv[0], &fd, 1, "x", 1, 20 * MS), -ETIMEDOUT);
	close(sv[1]); /* the queued descriptors go with it */
	close(sv[0]);
	close(fd);
}

/* A temporary path for a socket file. */
static void sock_path(char *buf, size_t n, const char *what)
{
	snprintf(buf, n, "/tmp/rmpsc_test_shm_%d_%s.sock", (int)getpid(), what);
	unlink(buf);
}

struct later {
	const char *path;
	int lfd;
};

static void *listen_later(void *arg)
{
	struct later *l = arg;
	const struct timespec ts = {.tv_nsec = 50 * MS};

	nanosleep(&ts, NULL);
	l->lfd = rmpsc_fd_listen(l->path, 0);
	return NULL;
}

/* listen/accept/connect, by path and by abstract name: a client that
 * starts before its server connects once it listens; descriptors pass
 * over the connection. */
static void test_shm_fd_listen_accept_connect_when_valid_pass_descriptors(void **state)
{
	char path[108];
	const char *name = (const char *)test_param(state);
	struct later l;
	pthread_t th;
	int c, a, fd, got[2];
	struct stat st;

	if (name[0] == '@')
		snprintf(path, sizeof path, "@rmpsc_test_shm_%d", (int)getpid());
	else
		sock_path(path, sizeof path, "lac");
	l.path = path;
	l.lfd = -1;
	assert_int_equal(pthread_create(&th, NULL, listen_later, &l), 0);
	c = rmpsc_fd_connect(path, 5000 * MS);
	assert_true(c >= 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_true(l.lfd >= 0);
	assert_true(fcntl(l.lfd, F_GETFD) & FD_CLOEXEC);
	a = rmpsc_fd_accept(l.lfd, 1000 * MS);
	assert_true(a >= 0);
	assert_true(fcntl(a, F_GETFD) & FD_CLOEXEC);
	assert_false(fcntl(a, F_GETFL) & O_NONBLOCK);
	assert_int_equal(rmpsc_fd_accept(l.lfd, 0), -EAGAIN);
	assert_int_equal(rmpsc_fd_accept(l.lfd, 20 * MS), -ETIMEDOUT);
	fd = memfd_with("over the helper");
	assert_int_equal(rmpsc_fd_send(c, &fd, 1, "m", 1, -1), 1);
	assert_int_equal(rmpsc_fd_recv(a, got, 2, NULL, 0, NULL, 1000 * MS), 1);
	same_file(fd, got[0], "over the helper");
	close(got[0]);
	close(fd);
	close(a);
	close(c);
	if (path[0] != '@')
		assert_int_equal(stat(path, &st), 0);
	assert_int_equal(rmpsc_fd_unlisten(l.lfd, path), 0);
	if (path[0] != '@')
		assert_int_equal(stat(path, &st), -1);
}

/* Helper errors: a live socket or another file at the path, a dead
 * server's socket file (replaced), bad and too-long names, nobody there. */
static void test_shm_fd_listen_connect_when_path_taken_stale_or_bad_return_documented_codes(
	void **state)
{
	char path[108], file[108], longp[200];
	int l1, l2, s;

	(void)state;
	sock_path(path, sizeof path, "busy");
	l1 = rmpsc_fd_listen(path, 4);
	assert_true(l1 >= 0);
	assert_int_equal(rmpsc_fd_listen(path, 4), -EADDRINUSE); /* live */
	close(l1); /* the file stays: a dead server's */
	l2 = rmpsc_fd_listen(path, 4);
	assert_true(l2 >= 0); /* replaced */
	s = rmpsc_fd_connect(path, 0);
	assert_true(s >= 0);
	close(s);
	assert_int_equal(rmpsc_fd_unlisten(l2, path), 0);
	assert_int_equal(rmpsc_fd_unlisten(-1, path), 0); /* already gone */

	sock_path(file, sizeof file, "file");
	close(open(file, O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
	assert_int_equal(rmpsc_fd_listen(file, 4), -EADDRINUSE); /* not a socket: left */
	assert_int_equal(access(file, F_OK), 0);
	unlink(file);

	assert_int_equal(rmpsc_fd_listen(NULL, 4), -EINVAL);
	assert_int_equal(rmpsc_fd_listen("", 4), -EINVAL);
	assert_int_equal(rmpsc_fd_listen("@", 4), -EINVAL);
	memset(longp, 'a', sizeof longp - 1);
	longp[0] = '/';
	longp[sizeof longp - 1] = 0;
	assert_int_equal(rmpsc_fd_listen(longp, 4), -ENAMETOOLONG);
	assert_int_equal(rmpsc_fd_connect(longp, 0), -ENAMETOOLONG);
	assert_int_equal(rmpsc_fd_connect(NULL, 0), -EINVAL);
	assert_int_equal(rmpsc_fd_connect(path, 0), -ENOENT);
	assert_int_equal(rmpsc_fd_connect(path, 30 * MS), -ETIMEDOUT);
	assert_int_equal(rmpsc_fd_accept(-1, 0), -EBADF);
	assert_int_equal(rmpsc_fd_unlisten(-1, NULL), 0);
}

/* Real processes: a forked child connects, receives a memfd, writes into
 * its mapping and exits; the parent reads what it wrote. */
static void test_shm_fd_when_passed_to_another_process_shares_the_memory(void **state)
{
	char path[108];
	int l, a, fd, st = 0;
	pid_t pid;
	char *map;

	(void)state;
	sock_path(path, sizeof path, "proc");
	l = rmpsc_fd_listen(path, 1);
	assert_true(l >= 0);
	fd = memfd_create("test_shm_proc", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 4096), 0);
	fflush(stdout);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int got[1], c = rmpsc_fd_connect(path, 5000 * MS);
		char *m;

		if (c < 0 || rmpsc_fd_recv(c, got, 1, NULL, 0, NULL, 5000 * MS) != 1)
			_exit(2);
		m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, got[0], 0);
		if (m == MAP_FAILED)
			_exit(3);
		strcpy(m, "written by the child");
		_exit(0);
	}
	a = rmpsc_fd_accept(l, 5000 * MS);
	assert_true(a >= 0);
	assert_int_equal(rmpsc_fd_send(a, &fd, 1, NULL, 0, -1), 1);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	map = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	assert_true(map != MAP_FAILED);
	assert_string_equal(map, "written by the child");
	munmap(map, 4096);
	close(a);
	close(fd);
	assert_int_equal(rmpsc_fd_unlisten(l, path), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST_PARAM(test_shm_fd_send_recv_when_seqpacket_fds_and_data_arrive_together,
			   test_shm_fd_send_recv_when_fds_and_data_sent_arrive_together,
			   SOCK_SEQPACKET),
		TEST_PARAM(test_shm_fd_send_recv_when_stream_fds_and_data_arrive_together,
			   test_shm_fd_send_recv_when_fds_and_data_sent_arrive_together,
			   SOCK_STREAM),
		cmocka_unit_test(test_shm_fd_recv_when_no_fd_returns_enomsg),
		cmocka_unit_test(
			test_shm_fd_recv_when_too_many_or_too_long_returns_emsgsize_and_leaks_nothing),
		cmocka_unit_test(
			test_shm_fd_recv_when_credentials_come_returns_eproto_and_leaks_nothing),
		cmocka_unit_test(test_shm_fd_calls_when_nothing_closed_or_bad_return_documented_codes),
		cmocka_unit_test(test_shm_fd_send_when_socket_full_returns_eagain_or_etimedout),
		TEST_PARAM(test_shm_fd_listen_accept_connect_when_path_pass_descriptors,
			   test_shm_fd_listen_accept_connect_when_valid_pass_descriptors,
			   (uintptr_t) "path"),
		TEST_PARAM(test_shm_fd_listen_accept_connect_when_abstract_pass_descriptors,
			   test_shm_fd_listen_accept_connect_when_valid_pass_descriptors,
			   (uintptr_t) "@abstract"),
		cmocka_unit_test(
			test_shm_fd_listen_connect_when_path_taken_stale_or_bad_return_documented_codes),
		cmocka_unit_test(test_shm_fd_when_passed_to_another_process_shares_the_memory),
	};

	return cmocka_run_group_tests_name("test_shm", tests, NULL, NULL);
}
