/* SPDX-License-Identifier: MIT */
/*
 * io_file_pipeline: read a file with io_uring straight into pool slabs and
 * consume it on another thread, with no copy in user space.
 *
 *   main thread      takes a free slab (waiting while every slab is busy)
 *                    and submits a read of the next block into it;
 *   engine thread    (RMPSC_IO_F_THREAD) reaps each completion and pushes
 *                    it (handle, bytes read, tag) into an MPSC channel;
 *   consumer thread  pops the completions, checksums each slab where the
 *                    kernel wrote it, and frees the slab.
 *
 * The pool bounds the memory: SLABS blocks are being read or waiting for
 * the consumer at most, and a slow consumer slows the reader down.
 * Blocks complete in any order; the checksum does not depend on it.
 *
 *   io_file_pipeline [FILE]
 *
 * Without FILE it makes a small temporary file (so that it runs as a
 * test). It prints the bytes and the checksum, and checks them against a
 * plain read() of the file: exit 0 when they match, 1 when not or on an
 * error, 77 where io_uring is not available.
 *
 *   cc io_file_pipeline.c $(pkg-config --cflags --libs ringmpsc) -pthread
 */
#define _GNU_SOURCE /* mkstemp, pread, fstat under -std=c11 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ringmpsc.h>
#include <ringmpsc/uring.h>

#define BLOCK (64 * 1024) /* bytes per read, the slab size */
#define SLABS 16          /* reads in flight plus blocks waiting, at most */

static rmpsc_pool *pool;
static rmpsc_mpsc *chan;
static uint64_t file_size;
static uint64_t got_bytes, got_sum; /* the consumer's, read after the join */

static void die(const char *what, int err)
{
	fprintf(stderr, "io_file_pipeline: %s: %s\n", what, rmpsc_strerror(err));
	exit(1);
}

/* A system call's errno, or a completion's -result: the system's words. */
static void die_errno(const char *what, int err)
{
	fprintf(stderr, "io_file_pipeline: %s: %s\n", what, strerror(err));
	exit(1);
}

/* Position-weighted byte sum: independent of the order the blocks come
 * in, not of where each byte is. */
static uint64_t checksum(const unsigned char *p, size_t len, uint64_t off)
{
	uint64_t s = 0;

	for (size_t i = 0; i < len; i++)
		s += (uint64_t)p[i] * (off + i + 1);
	return s;
}

static void *consumer(void *arg)
{
	(void)arg;
	while (got_bytes < file_size) {
		rmpsc_io_cqe c[SLABS];
		/* The engine is the channel's producer; 10 s is a stall. */
		int n = rmpsc_mpsc_pop_n_timed(chan, c, SLABS, 10000000000ll, NULL);

		if (n < 0)
			die("rmpsc_mpsc_pop_n_timed", n);
		for (int i = 0; i < n; i++) {
			const uint64_t off = c[i].tag; /* we tagged each read with its offset */
			const uint64_t want = file_size - off < BLOCK ? file_size - off : BLOCK;
			struct iovec v;
			int err;

			if (c[i].result < 0)
				die_errno("read", -c[i].result);
			if ((uint64_t)c[i].result != want) {
				fprintf(stderr, "io_file_pipeline: short read at %" PRIu64
					" (did the file change?)\n", off);
				exit(1);
			}
			/* The slab is ours again: its payload is the bytes read. */
			if ((err = rmpsc_pool_payload(pool, c[i].handle, &v)) != 0)
				die("rmpsc_pool_payload", err);
			got_sum += checksum(v.iov_base, v.iov_len, off);
			got_bytes += v.iov_len;
			if ((err = rmpsc_pool_free(pool, c[i].handle)) != 0)
				die("rmpsc_pool_free", err);
		}
	}
	return NULL;
}

/* The same checksum through plain read(), to compare with. */
static uint64_t checksum_by_read(int fd, uint64_t *bytes)
{
	static unsigned char buf[BLOCK];
	uint64_t sum = 0, off = 0;

	for (;;) {
		ssize_t n = pread(fd, buf, sizeof buf, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die_errno("pread", errno);
		if (n == 0)
			break;
		sum += checksum(buf, (size_t)n, off);
		off += (uint64_t)n;
	}
	*bytes = off;
	return sum;
}

/* A small file of pseudo-random bytes, not a multiple of BLOCK; its name
 * is unlinked at once (the open descriptor keeps it until exit). */
static int make_temp_file(void)
{
	const char *dir = getenv("TMPDIR");
	char path[4096];
	unsigned char buf[4096];
	uint64_t x = 0x9e3779b97f4a7c15ull;
	int fd;

	snprintf(path, sizeof path, "%s/io_file_pipeline.XXXXXX",
		 dir && *dir ? dir : "/tmp");
	if ((fd = mkstemp(path)) < 0)
		die_errno("mkstemp", errno);
	if (unlink(path) != 0)
		die_errno("unlink", errno);
	for (uint64_t left = 3 * 1024 * 1024 + 12345; left > 0;) {
		const size_t n = left < sizeof buf ? (size_t)left : sizeof buf;

		for (size_t i = 0; i < n; i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
			buf[i] = (unsigned char)x;
		}
		if (write(fd, buf, n) != (ssize_t)n)
			die_errno("write", errno ? errno : EIO);
		left -= n;
	}
	return fd;
}

int main(int argc, char **argv)
{
	rmpsc_pool_config pc;
	rmpsc_mpsc_config mc;
	rmpsc_io_config ic;
	rmpsc_io *io;
	pthread_t th;
	struct stat st;
	uint64_t ref_bytes, ref_sum, leaked;
	int fd, err;

	if (argc > 2) {
		fprintf(stderr, "usage: io_file_pipeline [FILE]\n");
		return 2;
	}
	if (argc == 2) {
		if ((fd = open(argv[1], O_RDONLY | O_CLOEXEC)) < 0)
			die_errno(argv[1], errno);
	} else {
		fd = make_temp_file();
	}
	if (fstat(fd, &st) != 0)
		die_errno("fstat", errno);
	file_size = (uint64_t)st.st_size;

	/* The slabs the kernel reads into: one tier of BLOCK-byte slabs. */
	if ((err = rmpsc_pool_config_init(&pc, sizeof pc)) != 0)
		die("rmpsc_pool_config_init", err);
	pc.slab_size = BLOCK;
	pc.slab_count = SLABS;
	if ((err = rmpsc_pool_create(&pc, &pool)) != 0)
		die("rmpsc_pool_create", err);
	/* Completions travel as rmpsc_io_cqe elements; room for one per slab,
	 * so the engine never waits for the consumer. */
	if ((err = rmpsc_mpsc_config_init(&mc, sizeof mc)) != 0)
		die("rmpsc_mpsc_config_init", err);
	mc.elem_size = sizeof(rmpsc_io_cqe);
	mc.ring_capacity = 2 * SLABS;
	mc.producers = 0; /* the engine registers itself */
	mc.max_producers = 1;
	if ((err = rmpsc_mpsc_create(&mc, &chan)) != 0)
		die("rmpsc_mpsc_create", err);
	/* The engine: the pool registered as fixed buffers where memlock
	 * allows (else plain reads), a thread that delivers into chan. */
	if ((err = rmpsc_io_config_init(&ic, sizeof ic)) != 0)
		die("rmpsc_io_config_init", err);
	ic.flags = RMPSC_IO_F_THREAD;
	ic.entries = 2 * SLABS;
	ic.pool = pool;
	ic.mpsc = chan;
	err = rmpsc_io_create(&ic, &io);
	if (err == -ENOSYS || err == -EOPNOTSUPP) {
		/* No io_uring in this kernel, or disabled (sysctl, seccomp). */
		printf("io_uring is not available here (%s): skipped\n", strerror(-err));
		return 77; /* the test's skip code */
	}
	if (err != 0)
		die("rmpsc_io_create", err);

	if ((err = pthread_create(&th, NULL, consumer, NULL)) != 0)
		die_errno("pthread_create", err);
	for (uint64_t off = 0; off < file_size; off += BLOCK) {
		const uint32_t len = file_size - off < BLOCK ? (uint32_t)(file_size - off) : BLOCK;
		uint32_t h;

		/* Wait (futex sleep) until the consumer frees a slab. */
		if ((err = rmpsc_pool_alloc_timed(pool, BLOCK, &h, -1, NULL)) != 0)
			die("rmpsc_pool_alloc_timed", err);
		/* From here to its completion the slab is the kernel's. */
		if ((err = rmpsc_io_read(io, fd, off, h, len, off, 0)) != 0)
			die("rmpsc_io_read", err);
	}
	pthread_join(th, NULL);

	/* Every slab is back: destroy finds nothing in flight. */
	if ((err = rmpsc_io_destroy(io, &leaked)) != 0)
		die("rmpsc_io_destroy", err);
	rmpsc_mpsc_destroy(chan);
	if ((err = rmpsc_pool_destroy(pool, 0, NULL)) != 0)
		die("rmpsc_pool_destroy", err);

	ref_sum = checksum_by_read(fd, &ref_bytes);
	close(fd);
	printf("io_uring pipeline: %" PRIu64 " bytes, checksum %016" PRIx64 "\n", got_bytes,
	       got_sum);
	printf("plain read():      %" PRIu64 " bytes, checksum %016" PRIx64 "\n", ref_bytes,
	       ref_sum);
	if (got_bytes != ref_bytes || got_sum != ref_sum) {
		printf("MISMATCH\n");
		return 1;
	}
	printf("match\n");
	return 0;
}
