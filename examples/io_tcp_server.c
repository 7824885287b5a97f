/* SPDX-License-Identifier: MIT */
/*
 * io_tcp_server: a TCP echo server on the io_uring engine, in one thread.
 *
 * rmpsc_io_accept() takes the connections; rmpsc_io_recv_multishot()
 * receives each one's bytes into pool slabs (the engine keeps slabs posted
 * to the kernel as provided buffers); each received slab is sent back as
 * it is with rmpsc_io_send(), and freed when the send completes. The pool
 * handle says who owns the slab at each step:
 *
 *   pool -> posted buffer (kernel) -> RECV completion (ours, payload =
 *   bytes received) -> rmpsc_io_send (kernel) -> SEND completion (ours)
 *   -> rmpsc_pool_free -> pool
 *
 * Two sends in flight on one socket may go out in either order, so each
 * connection sends one slab at a time and queues the others in the order
 * they were received. A client that does not read its echo holds slabs in
 * that queue; when the pool runs dry the engine pauses the receive and
 * resumes it once sends free slabs again.
 *
 *   io_tcp_server [--self-test]  the default: listen on an ephemeral port,
 *                                echo a client thread's 4 MiB, check the
 *                                echo and exit 0 (it runs as a test)
 *   io_tcp_server PORT           echo on 127.0.0.1:PORT (0: any free port)
 *                                until killed
 *
 * Exit status: 0; 1 an error (or a wrong echo); 77 no io_uring here.
 *
 *   cc io_tcp_server.c $(pkg-config --cflags --libs ringmpsc) -pthread
 */
#define _GNU_SOURCE /* sockets under -std=c11 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <ringmpsc.h>
#include <ringmpsc/uring.h>

#define SLAB (16 * 1024)      /* bytes per receive at most */
#define SLABS 256             /* the pool: posted buffers + queued sends */
#define RECV_BUFFERS 64       /* slabs posted to the kernel for receives */
#define MAX_CONNS 64
#define ACCEPT_TAG UINT64_MAX /* tags: the accept, or a connection's index */
#define TEST_BYTES (4u << 20)

struct conn {
	int fd;            /* -1: a free entry */
	int recv_done;     /* the receive's last completion came */
	int sending;       /* a send is in flight */
	int broken;        /* a send failed: drop the rest */
	uint32_t q[SLABS]; /* received slabs waiting to be sent, in order */
	uint32_t head, tail;
	uint64_t echoed;
};

static rmpsc_pool *pool;
static rmpsc_io *io;
static struct conn conns[MAX_CONNS];

static void die(const char *what, int err)
{
	fprintf(stderr, "io_tcp_server: %s: %s\n", what, rmpsc_strerror(err));
	exit(1);
}

/* A system call's errno, or a completion's -result: the system's words. */
static void die_errno(const char *what, int err)
{
	fprintf(stderr, "io_tcp_server: %s: %s\n", what, strerror(err));
	exit(1);
}

/* Send the next queued slab unless one is in flight. */
static void pump(struct conn *c, uint64_t tag)
{
	int err;

	if (c->sending || c->head == c->tail)
		return;
	const uint32_t h = c->q[c->head % SLABS];

	/* The slab is the kernel's until the SEND completion. */
	if ((err = rmpsc_io_send(io, c->fd, h, tag, 0)) != 0)
		die("rmpsc_io_send", err);
	c->head++;
	c->sending = 1;
}

/* Close a connection once its stream ended and every slab went back. */
static int maybe_close(struct conn *c)
{
	if (!c->recv_done || c->sending || c->head != c->tail)
		return 0;
	if (!c->broken)
		(void)shutdown(c->fd, SHUT_WR); /* the echo's end of stream */
	close(c->fd);
	c->fd = -1;
	return 1;
}

/* A send came back: free the slab, or send the rest of a short send. */
static void on_send(struct conn *c, const rmpsc_io_cqe *e)
{
	int err;

	c->sending = 0;
	if (e->result < 0) {
		/* The peer went away: give back this slab and every queued one. */
		if ((err = rmpsc_pool_free(pool, e->handle)) != 0)
			die("rmpsc_pool_free", err);
		for (; c->head != c->tail; c->head++)
			if ((err = rmpsc_pool_free(pool, c->q[c->head % SLABS])) != 0)
				die("rmpsc_pool_free", err);
		c->broken = 1;
		return;
	}
	c->echoed += (uint64_t)e->result;
	{
		struct iovec v;

		if ((err = rmpsc_pool_payload(pool, e->handle, &v)) != 0)
			die("rmpsc_pool_payload", err);
		if ((size_t)e->result < v.iov_len) {
			/* Short send (rare): move the rest to the slab's start and
			 * send it before anything queued behind it. */
			const size_t rest = v.iov_len - (size_t)e->result;

			memmove(v.iov_base, (char *)v.iov_base + e->result, rest);
			if ((err = rmpsc_pool_set_len(pool, e->handle, rest)) != 0)
				die("rmpsc_pool_set_len", err);
			c->q[--c->head % SLABS] = e->handle;
			return;
		}
	}
	if ((err = rmpsc_pool_free(pool, e->handle)) != 0)
		die("rmpsc_pool_free", err);
}

/* A new connection: a free entry, and its bytes start coming. */
static void on_accept(int fd)
{
	int err;

	for (uint64_t i = 0; i < MAX_CONNS; i++) {
		if (conns[i].fd >= 0)
			continue;
		memset(&conns[i], 0, sizeof conns[i]);
		conns[i].fd = fd;
		/* Each receive on fd will be a completion with a slab, tag i. */
		if ((err = rmpsc_io_recv_multishot(io, fd, i, 0)) != 0)
			die("rmpsc_io_recv_multishot", err);
		return;
	}
	close(fd); /* table full */
}

/* One completion; returns 1 when a connection closed. */
static int handle(const rmpsc_io_cqe *e, int listen_fd, int keep_accepting)
{
	int err;

	if (e->op == RMPSC_IO_OP_ACCEPT) {
		if (e->result >= 0)
			on_accept(e->result);
		else if (!keep_accepting)
			die_errno("accept", -e->result);
		else /* a server goes on (EMFILE and the like pass) */
			fprintf(stderr, "io_tcp_server: accept: %s\n", strerror(-e->result));
		if (keep_accepting && (err = rmpsc_io_accept(io, listen_fd, ACCEPT_TAG, 0)) != 0)
			die("rmpsc_io_accept", err);
		return 0;
	}

	struct conn *c = &conns[e->tag];

	if (e->op == RMPSC_IO_OP_RECV_MULTISHOT) {
		if (e->handle != RMPSC_POOL_HANDLE_NONE) {
			/* A slab of received bytes, ours now: queue it for the echo. */
			if (c->broken) {
				if ((err = rmpsc_pool_free(pool, e->handle)) != 0)
					die("rmpsc_pool_free", err);
			} else {
				c->q[c->tail++ % SLABS] = e->handle;
			}
		}
		if (!(e->flags & RMPSC_IO_CQE_F_MORE)) {
			/* The last completion: 0 at end of stream, or the error. */
			if (e->result < 0 && e->result != -ECONNRESET)
				fprintf(stderr, "io_tcp_server: receive: %s\n",
					strerror(-e->result));
			c->recv_done = 1;
		}
	} else if (e->op == RMPSC_IO_OP_SEND) {
		on_send(c, e);
	} else {
		die("unexpected completion", -EPROTO);
	}
	pump(c, e->tag);
	return maybe_close(c);
}

/* ---- the self-test's client --------------------------------------------- */

static uint16_t test_port;

static unsigned char test_byte(uint64_t i)
{
	return (unsigned char)(i * 2654435761u >> 13);
}

static void *client_writer(void *arg)
{
	const int fd = (int)(intptr_t)arg;
	unsigned char buf[8192];

	for (uint64_t sent = 0; sent < TEST_BYTES;) {
		size_t n = sizeof buf;

		if (TEST_BYTES - sent < n)
			n = TEST_BYTES - sent;
		for (size_t i = 0; i < n; i++)
			buf[i] = test_byte(sent + i);
		for (size_t done = 0; done < n;) {
			const ssize_t k = send(fd, buf + done, n - done, MSG_NOSIGNAL);

			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0)
				die_errno("client send", errno);
			done += (size_t)k;
		}
		sent += n;
	}
	if (shutdown(fd, SHUT_WR) != 0)
		die_errno("client shutdown", errno);
	return NULL;
}

/* Writes TEST_BYTES on one thread while reading the echo on this one. */
static void *client(void *arg)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	unsigned char buf[8192];
	uint64_t got = 0;
	pthread_t w;
	int fd, err;

	(void)arg;
	a.sin_port = htons(test_port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		die_errno("client socket", errno);
	if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
		die_errno("client connect", errno);
	if ((err = pthread_create(&w, NULL, client_writer, (void *)(intptr_t)fd)) != 0)
		die_errno("pthread_create", err);
	for (;;) {
		const ssize_t n = recv(fd, buf, sizeof buf, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die_errno("client recv", errno);
		if (n == 0)
			break;
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] != test_byte(got + (uint64_t)i)) {
				fprintf(stderr, "io_tcp_server: echo differs at byte %" PRIu64 "\n",
					got + (uint64_t)i);
				exit(1);
			}
		got += (uint64_t)n;
	}
	pthread_join(w, NULL);
	close(fd);
	if (got != TEST_BYTES) {
		fprintf(stderr, "io_tcp_server: echo of %" PRIu64 " bytes, sent %u\n", got,
			TEST_BYTES);
		exit(1);
	}
	printf("client: %" PRIu64 " bytes echoed and checked\n", got);
	return NULL;
}

/* ---- main ------------------------------------------------------------------ */

int main(int argc, char **argv)
{
	const int self_test = argc < 2 || strcmp(argv[1], "--self-test") == 0;
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof a;
	rmpsc_pool_config pc;
	rmpsc_io_config ic;
	uint64_t leaked;
	pthread_t cl;
	int lfd, err, one = 1;

	if (argc > 2 || (!self_test && (argv[1][0] < '0' || argv[1][0] > '9'))) {
		fprintf(stderr, "usage: io_tcp_server [--self-test | PORT]\n");
		return 2;
	}
	for (int i = 0; i < MAX_CONNS; i++)
		conns[i].fd = -1;

	/* The listening socket, made the usual way. */
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons(self_test ? 0 : (uint16_t)atoi(argv[1]));
	if ((lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		die_errno("socket", errno);
	if (setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
		die_errno("setsockopt", errno);
	if (bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 64) != 0)
		die_errno("bind/listen", errno);
	if (getsockname(lfd, (struct sockaddr *)&a, &alen) != 0)
		die_errno("getsockname", errno);
	printf("echo server on 127.0.0.1:%u\n", ntohs(a.sin_port));
	fflush(stdout);

	/* The pool the receives land in, and an engine without a thread:
	 * this thread reaps the completions itself (rmpsc_io_reap). */
	if ((err = rmpsc_pool_config_init(&pc, sizeof pc)) != 0)
		die("rmpsc_pool_config_init", err);
	pc.slab_size = SLAB;
	pc.slab_count = SLABS;
	if ((err = rmpsc_pool_create(&pc, &pool)) != 0)
		die("rmpsc_pool_create", err);
	if ((err = rmpsc_io_config_init(&ic, sizeof ic)) != 0)
		die("rmpsc_io_config_init", err);
	ic.entries = 64;
	ic.pool = pool;
	ic.recv_tier = 0;
	ic.recv_buffers = RECV_BUFFERS;
	err = rmpsc_io_create(&ic, &io);
	if (err == -ENOSYS || err == -EOPNOTSUPP) {
		/* No io_uring (or no buffer rings) in this kernel, or disabled. */
		printf("io_uring is not available here (%s): skipped\n", strerror(-err));
		return 77; /* the test's skip code */
	}
	if (err != 0)
		die("rmpsc_io_create", err);
	if ((err = rmpsc_io_accept(io, lfd, ACCEPT_TAG, 0)) != 0)
		die("rmpsc_io_accept", err);

	if (self_test) {
		test_port = ntohs(a.sin_port);
		if ((err = pthread_create(&cl, NULL, client, NULL)) != 0)
			die_errno("pthread_create", err);
	}
	for (int closed = 0; !(self_test && closed);) {
		rmpsc_io_cqe e[32];
		/* The self-test takes 10 s without a completion for a hang. */
		const int n = rmpsc_io_reap(io, e, 32, self_test ? 10000000000ll : -1);

		if (n < 0)
			die("rmpsc_io_reap", n);
		for (int i = 0; i < n; i++)
			closed |= handle(&e[i], lfd, !self_test);
	}

	if (self_test)
		pthread_join(cl, NULL);
	printf("server: %" PRIu64 " bytes echoed\n", conns[0].echoed);
	/* Nothing is in flight but the receive buffers the engine posted:
	 * destroy gives them back, and the pool then has every slab. */
	if ((err = rmpsc_io_destroy(io, &leaked)) != 0)
		die("rmpsc_io_destroy", err);
	if ((err = rmpsc_pool_destroy(pool, 0, NULL)) != 0)
		die("rmpsc_pool_destroy (a slab not given back)", err);
	close(lfd);
	return 0;
}
