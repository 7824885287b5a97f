/* SPDX-License-Identifier: MIT */
/*
 * Between processes (ringmpsc/shm.h): descriptor passing over AF_UNIX
 * sockets (SCM_RIGHTS) and the listen/accept/connect helper.
 *
 * A received message is judged whole before anything is handed over: its
 * control data must be SCM_RIGHTS only, not truncated (MSG_CTRUNC: the
 * kernel dropped descriptors it had no room for, and closed them), and
 * its data must fit (MSG_TRUNC); otherwise every descriptor it did carry
 * is closed here and the call fails, so a hostile peer cannot make us
 * leak descriptors or take a half message. No shared state: nothing here
 * is lock-free.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "ringmpsc/shm.h"

#define FD_DATA_MAX 65536u

/* Wait until @fd is ready for @events, for @timeout_ns (< 0: forever;
 * 0: not at all): 0 ready, -EAGAIN (0), -ETIMEDOUT; EINTR retried with
 * the time left. */
static int wait_fd(int fd, short events, int64_t timeout_ns)
{
	const uint64_t deadline = rmpsc__deadline(timeout_ns);

	for (;;) {
		struct pollfd p = {.fd = fd, .events = events};
		int ms = -1, r;

		if (timeout_ns == 0) {
			ms = 0;
		} else if (deadline != UINT64_MAX) {
			const uint64_t now = rmpsc__now_ns();
			uint64_t left_ms;

			if (now >= deadline)
				return -ETIMEDOUT;
			left_ms = (deadline - now) / 1000000 + 1;
			ms = left_ms > INT32_MAX ? INT32_MAX : (int)left_ms;
		}
		r = poll(&p, 1, ms);
		if (r > 0)
			return 0; /* ready, or an error the next call reports */
		if (r == 0 && timeout_ns == 0)
			return -EAGAIN;
		if (r < 0 && errno != EINTR)
			return -errno;
		/* a timeout or EINTR: the deadline is checked above */
	}
}

int rmpsc_fd_send(int sock, const int *fds, uint32_t nfds, const void *data, uint32_t len,
		  int64_t timeout_ns)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * RMPSC_FD_MAX)];
	} ctl;
	static const char zero;
	struct iovec iov;
	struct msghdr m;
	struct cmsghdr *c;

	RMPSC__CHECK(!fds || !nfds || nfds > RMPSC_FD_MAX, -EINVAL);
	RMPSC__CHECK((!data && len) || len > FD_DATA_MAX, -EINVAL);
	for (uint32_t i = 0; i < nfds; i++)
		RMPSC__CHECK(fds[i] < 0, -EINVAL);
	RMPSC__CHECK(sock < 0, -EBADF);
	iov.iov_base = len ? (void *)data : (void *)&zero;
	iov.iov_len = len ? len : 1;
	memset(&m, 0, sizeof m);
	memset(&ctl, 0, sizeof ctl);
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	m.msg_control = ctl.buf;
	m.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
	c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
	memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	for (;;) {
		const ssize_t n = sendmsg(sock, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
		int err;

		if (n >= 0)
			return (int)n;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		err = wait_fd(sock, POLLOUT, timeout_ns);
		if (err)
			return err;
		if (timeout_ns == 0)
			return -EAGAIN;
	}
}

/* Close every descriptor an SCM_RIGHTS message of @m carried. */
static void close_carried(struct msghdr *m)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t k = 0; k < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); k++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + k * sizeof(int), sizeof fd);
			close(fd);
		}
	}
}

int rmpsc_fd_recv(int sock, int *fds, uint32_t max_fds, void *data, uint32_t len,
		  uint32_t *data_len, int64_t timeout_ns)
{
	/* Room for more than the caller asked (up to the kernel's 253), so
	 * that "too many" is seen and those descriptors closed, not left to
	 * MSG_CTRUNC (which the kernel handles by closing them too, but then
	 * we could not tell how many there were). */
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * 253) + CMSG_SPACE(64)];
	} ctl;
	char scratch;
	struct iovec iov;
	struct msghdr m;
	ssize_t n;
	uint32_t got = 0;
	bool junk = false;

	if (data_len)
		*data_len = 0;
	RMPSC__CHECK(!fds || !max_fds || max_fds > RMPSC_FD_MAX, -EINVAL);
	RMPSC__CHECK(!data && len, -EINVAL);
	RMPSC__CHECK(sock < 0, -EBADF);
	for (;;) {
		int err;

		iov.iov_base = len ? data : &scratch;
		iov.iov_len = len ? len : 1;
		memset(&m, 0, sizeof m);
		m.msg_iov = &iov;
		m.msg_iovlen = 1;
		m.msg_control = ctl.buf;
		m.msg_controllen = sizeof ctl.buf;
		n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		if (n >= 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		err = wait_fd(sock, POLLIN, timeout_ns);
		if (err)
			return err;
		if (timeout_ns == 0)
			return -EAGAIN;
	}
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			junk = true;
		else
			got += (uint32_t)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
	}
	if (junk || (m.msg_flags & MSG_CTRUNC)) {
		close_carried(&m);
		return junk ? -EPROTO : -EMSGSIZE;
	}
	if (n == 0 && got == 0)
		return -EPIPE; /* end of stream: the peer closed */
	if (got == 0)
		return -ENOMSG;
	if (got > max_fds || (m.msg_flags & MSG_TRUNC)) {
		close_carried(&m);
		return -EMSGSIZE;
	}
	got = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
		const size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

		memcpy(fds + got, CMSG_DATA(c), k * sizeof(int));
		got += (uint32_t)k;
	}
	if (data_len)
		*data_len = len ? (uint32_t)n : 0;
	return (int)got;
}

/* @path as a sockaddr_un: '@' for the abstract namespace. */
static int addr_of(const char *path, struct sockaddr_un *a, socklen_t *alen)
{
	size_t n;

	RMPSC__CHECK(!path || !path[0] || (path[0] == '@' && !path[1]), -EINVAL);
	n = strlen(path);
	RMPSC__CHECK(n >= sizeof a->sun_path, -ENAMETOOLONG);
	memset(a, 0, sizeof *a);
	a->sun_family = AF_UNIX;
	memcpy(a->sun_path, path, n);
	if (path[0] == '@') {
		a->sun_path[0] = 0; /* abstract: the name is the bytes after it */
		*alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	} else {
		*alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	}
	return 0;
}

static int seqpacket(int flags)
{
	const int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | flags, 0);

	return s < 0 ? -errno : s;
}

/* A socket file at @path that nobody accepts on (a dead server's)
 * removed; true if so. A live socket, or any other kind of file, stays. */
static bool remove_stale(const char *path, const struct sockaddr_un *a, socklen_t alen)
{
	struct stat st;
	const int probe = seqpacket(0);
	bool gone = false;

	if (probe < 0)
		return false;
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) &&
	    connect(probe, (const struct sockaddr *)a, alen) && errno == ECONNREFUSED)
		gone = unlink(path) == 0;
	close(probe);
	return gone;
}

int rmpsc_fd_listen(const char *path, int backlog)
{
	struct sockaddr_un a;
	socklen_t alen;
	int s, err = addr_of(path, &a, &alen);

	if (err)
		return err;
	/* Non-blocking: rmpsc_fd_accept() waits in poll(), and an accept
	 * whose connection another thread took must not block. */
	s = seqpacket(SOCK_NONBLOCK);
	if (s < 0)
		return s;
	err = bind(s, (struct sockaddr *)&a, alen) ? -errno : 0;
	if (err == -EADDRINUSE && path[0] != '@' && remove_stale(path, &a, alen))
		err = bind(s, (struct sockaddr *)&a, alen) ? -errno : 0;
	if (!err && listen(s, backlog > 0 ? backlog : 16))
		err = -errno;
	if (err) {
		close(s);
		return err;
	}
	return s;
}

int rmpsc_fd_accept(int lfd, int64_t timeout_ns)
{
	RMPSC__CHECK(lfd < 0, -EBADF);
	for (;;) {
		const int s = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		int err;

		if (s >= 0) {
			/* Blocking again: the timeouts of send and recv are
			 * theirs to give. */
			(void)fcntl(s, F_SETFL, fcntl(s, F_GETFL) & ~O_NONBLOCK);
			return s;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		err = wait_fd(lfd, POLLIN, timeout_ns);
		if (err)
			return err;
		if (timeout_ns == 0)
			return -EAGAIN;
	}
}

int rmpsc_fd_connect(const char *path, int64_t timeout_ns)
{
	const uint64_t deadline = rmpsc__deadline(timeout_ns);
	struct sockaddr_un a;
	socklen_t alen;
	int err = addr_of(path, &a, &alen);

	if (err)
		return err;
	for (;;) {
		const int s = seqpacket(0);

		if (s < 0)
			return s;
		if (connect(s, (struct sockaddr *)&a, alen) == 0)
			return s;
		err = -errno;
		close(s);
		if (err == -EINTR)
			continue;
		/* Nobody listens there yet: a client may start first. */
		if (err != -ENOENT && err != -ECONNREFUSED && err != -EAGAIN)
			return err;
		if (timeout_ns == 0)
			return err;
		if (rmpsc__now_ns() >= deadline)
			return -ETIMEDOUT;
		{
			const struct timespec ts = {.tv_nsec = 2000000};

			nanosleep(&ts, NULL);
		}
	}
}

int rmpsc_fd_unlisten(int lfd, const char *path)
{
	int err = 0;

	if (lfd >= 0 && close(lfd))
		err = -errno;
	if (path && path[0] && path[0] != '@' && unlink(path) && errno != ENOENT && !err)
		err = -errno;
	return err;
}
