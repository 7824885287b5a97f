/* SPDX-License-Identifier: MIT */
/*
 * shm_ring: two processes share an SPSC ring in a sealed memfd. The
 * consumer creates the ring and listens on a Unix socket; the producer
 * connects, receives the ring's descriptor (SCM_RIGHTS), attaches, and
 * writes 1,000,000 u64 in place (reserve/commit); the consumer reads them
 * in place (readable/advance), checks the sequence, and learns of the
 * producer's end from the ring's close, or of its death from the socket.
 *
 *   shm_ring                    both sides (forks the producer), the default
 *   shm_ring consume @name      one side each, in two terminals ('@': an
 *   shm_ring produce @name      abstract socket name; or a file path)
 *
 *   cc shm_ring.c $(pkg-config --cflags --libs ringmpsc)
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ringmpsc.h>

#define COUNT 1000000u
#define SECOND 1000000000ll

static void die(const char *what, int err)
{
	fprintf(stderr, "shm_ring: %s: %s\n", what, rmpsc_strerror(err));
	exit(1);
}

static int produce(const char *path)
{
	rmpsc_shm_config cfg;
	rmpsc_shm *s;
	uint64_t next = 0;
	int sock, fd, err;

	sock = rmpsc_fd_connect(path, 10 * SECOND); /* waits for the consumer */
	if (sock < 0)
		die("connect", sock);
	err = rmpsc_fd_recv(sock, &fd, 1, NULL, 0, NULL, 10 * SECOND);
	if (err < 0)
		die("receive the ring", err);
	rmpsc_shm_config_init(&cfg, sizeof cfg);
	cfg.role = RMPSC_SHM_PRODUCER;
	cfg.elem_size = sizeof(uint64_t); /* what we expect; -EPROTO otherwise */
	err = rmpsc_shm_attach(fd, &cfg, &s);
	close(fd); /* the handle keeps its own descriptor */
	if (err)
		die("attach", err);
	rmpsc_shm_watch(s, sock); /* the consumer's end, if it dies */
	while (next < COUNT) {
		rmpsc_span sp;
		int n = rmpsc_shm_reserve_timed(s, 256, &sp, 10 * SECOND, NULL);

		if (n < 0)
			die("reserve", n); /* -ECONNRESET: the consumer is gone */
		if (next + (uint64_t)n > COUNT)
			n = (int)(COUNT - next);
		for (uint32_t seg = 0; seg < sp.nseg; seg++) {
			uint64_t *v = sp.iov[seg].iov_base;

			for (uint32_t i = 0; i < sp.count[seg] && next < COUNT; i++)
				v[i] = next++;
		}
		err = rmpsc_shm_commit(s, (uint32_t)n);
		if (err)
			die("commit", err);
	}
	rmpsc_shm_destroy(s); /* closes: the consumer drains, then -EPIPE */
	close(sock);
	return 0;
}

static int consume(const char *path, pid_t child)
{
	rmpsc_shm_config cfg;
	rmpsc_shm *s;
	uint64_t want = 0;
	int lfd, sock, fd, n, err;

	rmpsc_shm_config_init(&cfg, sizeof cfg);
	cfg.role = RMPSC_SHM_CONSUMER;
	cfg.elem_size = sizeof(uint64_t);
	cfg.capacity = 4096;
	err = rmpsc_shm_create(&cfg, &s);
	if (err)
		die("create", err);
	lfd = rmpsc_fd_listen(path, 1);
	if (lfd < 0)
		die("listen", lfd);
	sock = rmpsc_fd_accept(lfd, child ? 10 * SECOND : -1);
	if (sock < 0)
		die("accept", sock);
	fd = rmpsc_shm_fd(s);
	err = rmpsc_fd_send(sock, &fd, 1, NULL, 0, 10 * SECOND);
	if (err < 0)
		die("send the ring", err);
	rmpsc_shm_watch(s, sock); /* the producer's end, if it dies */
	for (;;) {
		rmpsc_span sp;

		n = rmpsc_shm_readable_timed(s, UINT32_MAX, &sp, 10 * SECOND, NULL);
		if (n < 0)
			break;
		for (uint32_t seg = 0; seg < sp.nseg; seg++) {
			const uint64_t *v = sp.iov[seg].iov_base;

			for (uint32_t i = 0; i < sp.count[seg]; i++, want++)
				if (v[i] != want) {
					fprintf(stderr, "shm_ring: got %" PRIu64 ", want %" PRIu64 "\n",
						v[i], want);
					exit(1);
				}
		}
		rmpsc_shm_advance(s, (uint32_t)n);
	}
	/* -EPIPE: the producer closed; -ECONNRESET: it died (all it committed
	 * arrived first). */
	printf("consumer: %" PRIu64 " values in sequence, then %s\n", want, rmpsc_strerror(n));
	rmpsc_shm_destroy(s);
	close(sock);
	rmpsc_fd_unlisten(lfd, path);
	if (child) {
		int st;

		waitpid(child, &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			return 1;
	}
	return n == -EPIPE && want == COUNT ? 0 : 1;
}

int main(int argc, char **argv)
{
	char name[64];
	pid_t pid;

	if (argc == 3 && strcmp(argv[1], "produce") == 0)
		return produce(argv[2]);
	if (argc == 3 && strcmp(argv[1], "consume") == 0)
		return consume(argv[2], 0);
	if (argc != 1) {
		fprintf(stderr, "usage: shm_ring [produce|consume SOCKET]\n");
		return 2;
	}
	snprintf(name, sizeof name, "@ringmpsc-shm-example-%d", (int)getpid());
	pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0)
		_exit(produce(name));
	return consume(name, pid);
}
