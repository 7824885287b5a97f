/* SPDX-License-Identifier: MIT */
/*
 * bench_uring: the io_uring engine (ringmpsc/uring.h) side by side with
 * what people write without it, in one process, repetitions interleaved
 * across the implementations (A B C D, A B C D, ...), medians reported,
 * and ratios of the engine to each peer.
 *
 * File read (a page-cache-warm file; block sizes 4 KiB, 64 KiB, 1 MiB;
 * queue depth 16):
 *  - engine:          rmpsc_io with RMPSC_IO_F_THREAD over a one-tier pool
 *                     of block-size slabs (registered fixed buffers when the
 *                     engine could), completions into an SPSC rmpsc_ring; the
 *                     consumer thread pops them, reads the bytes in place in
 *                     the slab, and resubmits the next read with the same
 *                     handle (or frees it at the end);
 *  - engine-nothread: the same engine without its thread: one thread reaps
 *                     with rmpsc_io_reap(), reads in place, resubmits;
 *  - engine-pipeline: the engine with its thread, and a third thread that
 *                     submits: it takes a free slab from the pool (sleeping
 *                     while all are busy) and reads into it; the consumer
 *                     frees each slab after reading it (a diagnostic: the
 *                     kernel's copy off the consumer's thread);
 *  - engine-direct:   as engine, with RMPSC_IO_F_SUBMIT_DIRECT: the consumer
 *                     thread enters the kernel with its own reads (a
 *                     page-cache read is copied in its call) while the
 *                     engine's thread reaps and delivers;
 *  - read+copy:       pread() into a heap buffer, memcpy into an SPSC ring
 *                     of block-size elements, a consumer thread reads them
 *                     in place in the ring;
 *  - liburing:        a hand-written liburing loop (IORING_OP_READ into
 *                     malloc'ed buffers, io_uring_submit_and_wait), the
 *                     bytes read in place in the same thread.
 * Loopback TCP receive (a sender thread send()s the stream in 64 KiB
 * calls; the receiver checks it as an in-order byte stream):
 *  - engine-multishot: rmpsc_io_recv_multishot() into the pool's provided
 *                     buffers, completions through an SPSC ring to the
 *                     consumer, which checks the slab in place and frees it;
 *  - recv+copy:       recv() into a heap buffer, memcpy into a ring, a
 *                     consumer thread checks it in place in the ring;
 *  - recv:            recv() into a heap buffer, checked in the same thread.
 *
 * The consumer's work is the same in every path: one 8-byte load per
 * 64-byte line of the payload (every cache line read once), summed (file)
 * or compared with the pattern (TCP). CPU seconds are getrusage(RUSAGE_SELF)
 * user + system over the timed window: every thread of the process, the
 * engine's, the sender's and io_uring's io-wq workers included (the kernel's
 * loopback TCP work is charged to the sending and receiving threads).
 * Copies per byte are the payload bytes the path memcpy'd in user space
 * divided by the bytes delivered, counted where the copy happens.
 *
 * Every implementation keeps its buffers, rings and engine from one
 * repetition to the next (set up before an unreported warm-up round);
 * each repetition reads the file --passes times (or streams as many
 * bytes over TCP). The machine note at the top and the line on other
 * processes' CPU use at the end say how far to trust a run.
 *
 *   cmake --build build --target bench_uring
 *   ./build/bench/bench_uring --quick             # about 10 s
 *   ./build/bench/bench_uring --json out.json     # 256 MiB, 4 passes, 7 reps
 *   ./build/bench/bench_uring --only file --bs 64 --impl engine,liburing
 *
 * Exit status: 0 done (also when io_uring is unavailable: a SKIP line);
 * 1 a data mismatch or a failed call (never a timing); 2 bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/magic.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>

#include <liburing.h>

#include <ringmpsc.h>
#include <ringmpsc/uring.h>

enum {
	QD = 16,                  /* reads in flight in every file path */
	MAX_REPS = 1000,
	CHUNK = 64 * 1024,        /* TCP: send() size and receive buffer size */
	TCP_SLABS = 256,          /* engine-multishot: pool slabs */
	TCP_RECV_BUFFERS = 128,   /* engine-multishot: provided buffers */
	RC_HDR = 64,              /* recv+copy: element header (length), one line */
	RC_SLOTS = 32,            /* recv+copy: ring elements */
	PAT_WORDS = (8 << 20) / 8, /* TCP pattern period: 8 MiB */
};

#define STALL_NS (30ll * 1000000000ll) /* a wait this long is a failure */
#define GB 1e9

/* ---- failures --------------------------------------------------------------------- */

static void die(const char *what, long err)
{
	/* err is a library code or a kernel -errno: both names. */
	if (err < 0)
		fprintf(stderr, "bench_uring: %s: %ld (%s; ringmpsc: %s)\n", what, err,
			strerror((int)-err), rmpsc_strerror((int)err));
	else
		fprintf(stderr, "bench_uring: %s\n", what);
	exit(1);
}

static void ck(const char *what, long ret)
{
	if (ret < 0)
		die(what, ret);
}

/* ---- measurement ------------------------------------------------------------------ */

struct sample {
	double sec;      /* wall time of the timed window */
	double cpu;      /* user + system seconds of the process in it */
	uint64_t bytes;  /* payload delivered to the consumer */
	uint64_t copied; /* payload bytes memcpy'd in user space */
};

struct meas {
	struct timespec t0;
	double cpu0;
};

static double cpu_now(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		die("getrusage failed", 0);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void meas_begin(struct meas *m)
{
	m->cpu0 = cpu_now();
	clock_gettime(CLOCK_MONOTONIC, &m->t0);
}

static void meas_end(const struct meas *m, struct sample *s)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	s->cpu = cpu_now() - m->cpu0;
	s->sec = (double)(t1.tv_sec - m->t0.tv_sec) + (t1.tv_nsec - m->t0.tv_nsec) / 1e9;
}

/* ---- the consumer's work ---------------------------------------------------------- */

static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/*
 * File paths: the 8-byte word at every file offset that is a multiple of
 * 64 within [off, off + len), xor its offset, summed: order-independent
 * (out-of-order completions and split reads give the same total), but a
 * block delivered as another's changes it.
 */
static uint64_t touch(const unsigned char *p, size_t len, uint64_t off)
{
	size_t i = (size_t)((64 - (off & 63)) & 63);
	uint64_t s = 0;

	for (; i + 8 <= len; i += 64) {
		uint64_t w;

		memcpy(&w, p + i, 8);
		s += w ^ (off + i);
	}
	return s;
}

/* TCP: the stream is the native bytes of the words mix64(k mod PAT_WORDS). */
static uint64_t pat_word(uint64_t k)
{
	return mix64(k % PAT_WORDS);
}

/*
 * TCP paths: @p len bytes at stream position @p pos. The word at every
 * stream position that is a multiple of 64 is compared (its bytes up to
 * the chunk's end when the chunk cuts it).
 */
static void stream_check(const unsigned char *b, size_t len, uint64_t pos)
{
	const uint64_t end = pos + len;

	for (uint64_t p = (pos + 63) & ~63ull; p < end; p += 64) {
		const uint64_t want = pat_word(p / 8);
		const unsigned char *wb = (const unsigned char *)&want;

		if (p + 8 <= end) {
			uint64_t got;

			memcpy(&got, b + (p - pos), 8);
			if (got != want)
				goto bad;
		} else {
			for (uint64_t q = p; q < end; q++)
				if (b[q - pos] != wb[q - p])
					goto bad;
		}
		continue;
bad:
		fprintf(stderr, "bench_uring: TCP data mismatch at stream byte %" PRIu64 "\n", p);
		exit(1);
	}
}

/* ---- the file --------------------------------------------------------------------- */

struct file_job {
	int fd;
	uint64_t size;    /* bytes, a multiple of 1 MiB */
	uint32_t passes;  /* reads of the whole file per repetition */
	uint64_t ref_sum; /* touch() over the whole file, once */
};

/* The blocks of a repetition: the file @c passes times, in order. */
struct cursor {
	uint64_t next, total, size;
	uint32_t bs;
	/* the rest of short reads, taken first (at most one per slab) */
	uint64_t redo_off[QD];
	uint32_t redo_len[QD];
	uint32_t nredo;
};

static void cursor_init(struct cursor *c, const struct file_job *job, uint32_t bs)
{
	memset(c, 0, sizeof *c);
	c->total = job->size * job->passes;
	c->size = job->size;
	c->bs = bs;
}

static int cursor_take(struct cursor *c, uint64_t *off, uint32_t *len)
{
	if (c->nredo > 0) {
		c->nredo--;
		*off = c->redo_off[c->nredo];
		*len = c->redo_len[c->nredo];
		return 1;
	}
	if (c->next >= c->total)
		return 0;
	*off = c->next % c->size;
	*len = (uint32_t)(c->size - *off < c->bs ? c->size - *off : c->bs);
	c->next += *len;
	return 1;
}

/* A read of @p len at @p off brought @p res bytes. */
static void cursor_result(struct cursor *c, uint64_t off, uint32_t len, int32_t res)
{
	if (res <= 0)
		die("read failed or hit end of file early", res < 0 ? res : 0);
	if ((uint32_t)res > len)
		die("read returned more than asked", 0);
	if ((uint32_t)res < len) {
		if (c->nredo == QD)
			die("more short reads than slabs", 0);
		c->redo_off[c->nredo] = off + (uint32_t)res;
		c->redo_len[c->nredo] = len - (uint32_t)res;
		c->nredo++;
	}
}

static void check_file_result(const struct file_job *job, const char *impl, uint64_t bytes,
			      uint64_t sum)
{
	if (bytes != job->size * job->passes) {
		fprintf(stderr, "bench_uring: %s delivered %" PRIu64 " bytes, expected %" PRIu64 "\n",
			impl, bytes, job->size * job->passes);
		exit(1);
	}
	if (sum != job->ref_sum * job->passes) {
		fprintf(stderr, "bench_uring: %s: file data mismatch (checksum)\n", impl);
		exit(1);
	}
}

static void pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("pread failed or hit end of file early", n < 0 ? -errno : 0);
		done += (size_t)n;
	}
}

/* Tags of the engine's file reads: offset and length (<= 1 MiB < 2^24). */
static uint64_t tag_make(uint64_t off, uint32_t len)
{
	return off << 24 | len;
}

/* ---- file: the engine ------------------------------------------------------------- */

static int g_fixed = -1;  /* every engine had fixed buffers (1), one had not (0) */
static int g_fixed_error; /* why not, the first time */

static void engine_note(const rmpsc_io *io)
{
	rmpsc_io_info info;

	memset(&info, 0, sizeof info);
	info.size = sizeof info;
	ck("rmpsc_io_get_info", rmpsc_io_get_info(io, &info, sizeof info));
	/* 1 only while every engine so far has fixed buffers. */
	g_fixed = (g_fixed != 0) && info.fixed;
	if (!info.fixed && g_fixed_error == 0)
		g_fixed_error = info.fixed_error;
}

static rmpsc_pool *pool_make(uint64_t slab, uint32_t count)
{
	rmpsc_pool_config pc;
	rmpsc_pool *pool;

	ck("rmpsc_pool_config_init", rmpsc_pool_config_init(&pc, sizeof pc));
	pc.slab_size = slab;
	pc.slab_count = count;
	pc.flags = RMPSC_POOL_F_PREFAULT;
	ck("rmpsc_pool_create", rmpsc_pool_create(&pc, &pool));
	return pool;
}

static rmpsc_ring *ring_make(uint32_t capacity, uint32_t elem_size)
{
	rmpsc_ring_config rc;
	rmpsc_ring *ring;

	ck("rmpsc_ring_config_init", rmpsc_ring_config_init(&rc, sizeof rc));
	rc.capacity = capacity;
	rc.elem_size = elem_size;
	rc.flags = RMPSC_RING_F_PREFAULT;
	ck("rmpsc_ring_create", rmpsc_ring_create(&rc, &ring));
	return ring;
}

static void engine_destroy(rmpsc_io *io, rmpsc_pool *pool)
{
	uint64_t leaked = 0, out = 0;

	ck("rmpsc_io_destroy", rmpsc_io_destroy(io, &leaked));
	if (leaked != 0)
		die("rmpsc_io_destroy leaked slabs", 0);
	/* Without FORCE: -EBUSY would mean a slab never came back. */
	ck("rmpsc_pool_destroy", rmpsc_pool_destroy(pool, 0, &out));
}

/* Queue @p n reads; the last call enters the kernel with all of them. */
static void read_batch(rmpsc_io *io, int fd, const uint32_t *hs, const uint64_t *off,
		       const uint32_t *len, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		ck("rmpsc_io_read", rmpsc_io_read(io, fd, off[i], hs[i], len[i],
						  tag_make(off[i], len[i]),
						  i + 1 < n ? RMPSC_IO_SUBMIT_MORE : 0));
}

/*
 * Every implementation keeps its buffers, rings and engine from one
 * repetition to the next (set up once per block size, before the warm-up
 * round): a program reuses them, and on the 2-vCPU KVM guest this was
 * written on the kernel's first copy into fresh user pages was 20 times
 * slower than later ones (a fault per page under the kernel's copy, even
 * after user space had written them: 0.76 GB/s against 16-20 GB/s for
 * 16 MiB of pread()s into 1 MiB buffers), which per-repetition buffers
 * would charge to every repetition.
 */
struct eng_file {
	const struct file_job *job;
	uint32_t bs;
	int threaded;
	rmpsc_pool *pool;
	rmpsc_ring *ring;
	rmpsc_io *io;
	uint32_t hs[QD]; /* the slabs, ours between repetitions */
};

/*
 * @p threaded: RMPSC_IO_F_THREAD, completions through an SPSC ring that
 * this thread pops; else rmpsc_io_reap() in this thread.
 */
static void *engine_file_setup(const struct file_job *job, uint32_t bs, int threaded)
{
	struct eng_file *e = calloc(1, sizeof *e);
	rmpsc_io_config ic;

	if (e == NULL)
		die("out of memory", 0);
	e->job = job;
	e->bs = bs;
	e->threaded = threaded;
	e->pool = pool_make(bs, QD);
	e->ring = threaded ? ring_make(4 * QD, sizeof(rmpsc_io_cqe)) : NULL;
	ck("rmpsc_io_config_init", rmpsc_io_config_init(&ic, sizeof ic));
	ic.flags = threaded == 2   ? RMPSC_IO_F_THREAD | RMPSC_IO_F_SUBMIT_DIRECT
		   : threaded ? RMPSC_IO_F_THREAD
			      : 0;
	ic.entries = 2 * QD;
	ic.pool = e->pool;
	ic.ring = e->ring;
	ck("rmpsc_io_create", rmpsc_io_create(&ic, &e->io));
	engine_note(e->io);
	if (rmpsc_pool_alloc_n(e->pool, bs, e->hs, QD) != QD)
		die("rmpsc_pool_alloc_n did not give QD slabs", 0);
	return e;
}

static void *engine_thread_setup(const struct file_job *job, uint32_t bs)
{
	return engine_file_setup(job, bs, 1);
}

static void *engine_nothread_setup(const struct file_job *job, uint32_t bs)
{
	return engine_file_setup(job, bs, 0);
}

static void *engine_direct_setup(const struct file_job *job, uint32_t bs)
{
	return engine_file_setup(job, bs, 2);
}

/* This thread pops (or reaps) each completion, reads the slab in place,
 * and reads the next block into the same slab. */
static void engine_file_run(void *state, struct sample *out)
{
	struct eng_file *e = state;
	struct cursor cur;
	struct meas m;
	uint64_t sum = 0, bytes = 0;
	uint32_t outstanding = 0, nheld = 0;

	cursor_init(&cur, e->job, e->bs);
	meas_begin(&m);
	{
		uint64_t off[QD];
		uint32_t len[QD], hs[QD];

		for (uint32_t i = 0; i < QD; i++) {
			if (cursor_take(&cur, &off[outstanding], &len[outstanding]))
				hs[outstanding++] = e->hs[i];
			else
				e->hs[nheld++] = e->hs[i];
		}
		read_batch(e->io, e->job->fd, hs, off, len, outstanding);
	}
	while (outstanding > 0) {
		rmpsc_io_cqe c[QD];
		uint32_t again[QD];
		uint64_t aoff[QD];
		uint32_t alen[QD], nagain = 0;
		int n = e->threaded ? rmpsc_ring_pop_n_timed(e->ring, c, QD, STALL_NS, NULL)
				    : rmpsc_io_reap(e->io, c, QD, STALL_NS);

		ck(e->threaded ? "rmpsc_ring_pop_n_timed" : "rmpsc_io_reap", n);
		for (int i = 0; i < n; i++) {
			const uint64_t off = c[i].tag >> 24;
			const uint32_t len = (uint32_t)(c[i].tag & 0xffffff);
			struct iovec v;

			if (c[i].op != RMPSC_IO_OP_READ || c[i].handle == RMPSC_POOL_HANDLE_NONE)
				die("engine: unexpected completion", c[i].result);
			cursor_result(&cur, off, len, c[i].result);
			/* The payload length is the result (acquire: the bytes are there). */
			ck("rmpsc_pool_payload", rmpsc_pool_payload(e->pool, c[i].handle, &v));
			if (v.iov_len != (size_t)c[i].result)
				die("engine: payload length is not the completion's result", 0);
			sum += touch(v.iov_base, v.iov_len, off);
			bytes += v.iov_len;
			/* The slab is ours again: read the next block into it. */
			if (cursor_take(&cur, &aoff[nagain], &alen[nagain])) {
				again[nagain++] = c[i].handle;
			} else {
				e->hs[nheld++] = c[i].handle;
				outstanding--;
			}
		}
		read_batch(e->io, e->job->fd, again, aoff, alen, nagain);
	}
	meas_end(&m, out);

	if (nheld != QD)
		die("engine: slabs missing after the repetition", 0);
	check_file_result(e->job,
			  e->threaded == 2 ? "engine-direct"
			  : e->threaded    ? "engine"
					   : "engine-nothread",
			  bytes, sum);
	out->bytes = bytes;
	out->copied = 0; /* no memcpy of the payload anywhere on this path */
}

static void engine_file_teardown(void *state)
{
	struct eng_file *e = state;

	if (rmpsc_pool_free_n(e->pool, e->hs, QD) != QD)
		die("rmpsc_pool_free_n did not take every slab back", 0);
	engine_destroy(e->io, e->pool);
	rmpsc_ring_destroy(e->ring);
	free(e);
}

/*
 * engine-pipeline: the same engine and ring, but a third thread submits:
 * it takes a free slab from the pool (sleeping while all QD are busy) and
 * reads the next block into it, so that the kernel's copy (done inline at
 * submission for page-cache reads) runs beside the consumer's work; the
 * consumer pops, reads the slab in place and frees it, which wakes the
 * submitter. Three threads on two vCPUs.
 */
static void *engine_pipeline_setup(const struct file_job *job, uint32_t bs)
{
	struct eng_file *e = engine_file_setup(job, bs, 1);

	/* The slabs live in the pool between repetitions here. */
	if (rmpsc_pool_free_n(e->pool, e->hs, QD) != QD)
		die("rmpsc_pool_free_n did not take every slab back", 0);
	return e;
}

static void *pipeline_submit(void *arg)
{
	struct eng_file *e = arg;
	struct cursor cur;
	uint64_t off;
	uint32_t len;

	cursor_init(&cur, e->job, e->bs);
	while (cursor_take(&cur, &off, &len)) {
		uint32_t h;

		ck("rmpsc_pool_alloc_timed",
		   rmpsc_pool_alloc_timed(e->pool, e->bs, &h, STALL_NS, NULL));
		ck("rmpsc_io_read", rmpsc_io_read(e->io, e->job->fd, off, h, len,
						  tag_make(off, len), 0));
	}
	return NULL;
}

static void engine_pipeline_run(void *state, struct sample *out)
{
	struct eng_file *e = state;
	const uint64_t total = e->job->size * e->job->passes;
	struct meas m;
	pthread_t th;
	uint64_t sum = 0, bytes = 0;

	meas_begin(&m);
	if (pthread_create(&th, NULL, pipeline_submit, e) != 0)
		die("pthread_create failed", 0);
	while (bytes < total) {
		rmpsc_io_cqe c[QD];
		int n = rmpsc_ring_pop_n_timed(e->ring, c, QD, STALL_NS, NULL);

		ck("rmpsc_ring_pop_n_timed", n);
		for (int i = 0; i < n; i++) {
			const uint64_t off = c[i].tag >> 24;
			const uint32_t len = (uint32_t)(c[i].tag & 0xffffff);
			struct iovec v;

			if (c[i].op != RMPSC_IO_OP_READ || c[i].handle == RMPSC_POOL_HANDLE_NONE)
				die("engine-pipeline: unexpected completion", c[i].result);
			if (c[i].result <= 0 || (uint32_t)c[i].result > len)
				die("engine-pipeline: read failed", c[i].result);
			ck("rmpsc_pool_payload", rmpsc_pool_payload(e->pool, c[i].handle, &v));
			sum += touch(v.iov_base, v.iov_len, off);
			bytes += v.iov_len;
			if ((uint32_t)c[i].result < len) {
				/* Short read (not seen on regular files): the rest
				 * into the same slab, from here. */
				const uint32_t rest = len - (uint32_t)c[i].result;

				ck("rmpsc_io_read", rmpsc_io_read(e->io, e->job->fd, off + (uint32_t)
								  c[i].result, c[i].handle, rest,
								  tag_make(off + (uint32_t)c[i].result,
									   rest), 0));
				continue;
			}
			ck("rmpsc_pool_free", rmpsc_pool_free(e->pool, c[i].handle));
		}
	}
	pthread_join(th, NULL);
	meas_end(&m, out);

	check_file_result(e->job, "engine-pipeline", bytes, sum);
	out->bytes = bytes;
	out->copied = 0;
}

static void engine_pipeline_teardown(void *state)
{
	struct eng_file *e = state;

	engine_destroy(e->io, e->pool);
	rmpsc_ring_destroy(e->ring);
	free(e);
}

/* ---- file: read() + memcpy through a ring ----------------------------------------- */

struct rc_file {
	const struct file_job *job;
	uint32_t bs;
	rmpsc_ring *ring;
	unsigned char *buf;
	uint64_t sum, bytes; /* the consumer's */
};

static void *rc_file_consume(void *arg)
{
	struct rc_file *rc = arg;
	struct cursor cur;

	/* Elements arrive in the producer's order, full blocks: the same walk. */
	cursor_init(&cur, rc->job, rc->bs);
	for (;;) {
		rmpsc_span sp;
		int n = rmpsc_ring_readable_timed(rc->ring, QD, &sp, STALL_NS, NULL);

		if (n == -EPIPE)
			break;
		ck("rmpsc_ring_readable_timed", n);
		for (uint32_t seg = 0; seg < sp.nseg; seg++)
			for (uint32_t j = 0; j < sp.count[seg]; j++) {
				uint64_t off;
				uint32_t len;

				if (!cursor_take(&cur, &off, &len))
					die("read+copy: more elements than blocks", 0);
				rc->sum += touch((const unsigned char *)sp.iov[seg].iov_base +
						 (size_t)j * rc->bs, len, off);
				rc->bytes += len;
			}
		ck("rmpsc_ring_advance", rmpsc_ring_advance(rc->ring, (uint32_t)n));
	}
	return NULL;
}

static void *readcopy_setup(const struct file_job *job, uint32_t bs)
{
	struct rc_file *rc = calloc(1, sizeof *rc);

	if (rc == NULL || (rc->buf = aligned_alloc(4096, bs)) == NULL)
		die("out of memory", 0);
	memset(rc->buf, 0x5a, bs); /* not 0: malloc + memset(0) may become calloc */
	rc->job = job;
	rc->bs = bs;
	rc->ring = ring_make(QD, bs);
	return rc;
}

/* This thread pread()s each block into the buffer and copies it into the
 * ring; a consumer thread reads it in place there. */
static void readcopy_run(void *state, struct sample *out)
{
	struct rc_file *rc = state;
	struct cursor cur;
	struct meas m;
	pthread_t th;
	uint64_t off, copied = 0;
	uint32_t len;

	ck("rmpsc_ring_reset", rmpsc_ring_reset(rc->ring)); /* reopen after the last close */
	rc->sum = rc->bytes = 0;
	cursor_init(&cur, rc->job, rc->bs);
	if (pthread_create(&th, NULL, rc_file_consume, rc) != 0)
		die("pthread_create failed", 0);

	meas_begin(&m);
	while (cursor_take(&cur, &off, &len)) {
		rmpsc_span sp;

		pread_full(rc->job->fd, rc->buf, len, off);
		if (rmpsc_ring_reserve_timed(rc->ring, 1, &sp, STALL_NS, NULL) != 1)
			die("rmpsc_ring_reserve_timed", 0);
		memcpy(sp.iov[0].iov_base, rc->buf, len);
		copied += len;
		ck("rmpsc_ring_commit", rmpsc_ring_commit(rc->ring, 1));
	}
	ck("rmpsc_ring_close", rmpsc_ring_close(rc->ring));
	pthread_join(th, NULL);
	meas_end(&m, out);

	check_file_result(rc->job, "read+copy", rc->bytes, rc->sum);
	out->bytes = rc->bytes;
	out->copied = copied;
}

static void readcopy_teardown(void *state)
{
	struct rc_file *rc = state;

	rmpsc_ring_destroy(rc->ring);
	free(rc->buf);
	free(rc);
}

/* ---- file: a hand-written liburing loop ------------------------------------------- */

static int uring_init(struct io_uring *ring, unsigned entries)
{
	return io_uring_queue_init(entries, ring, 0);
}

struct lu_file {
	const struct file_job *job;
	uint32_t bs;
	struct io_uring ring;
	unsigned char *bufs[QD];
};

static void *liburing_setup(const struct file_job *job, uint32_t bs)
{
	struct lu_file *l = calloc(1, sizeof *l);

	if (l == NULL)
		die("out of memory", 0);
	l->job = job;
	l->bs = bs;
	ck("io_uring_queue_init", uring_init(&l->ring, 2 * QD));
	for (int i = 0; i < QD; i++) {
		l->bufs[i] = malloc(bs);
		if (l->bufs[i] == NULL)
			die("out of memory", 0);
		memset(l->bufs[i], 0x5a, bs); /* faulted in; not 0 (calloc) */
	}
	return l;
}

/* What a liburing user writes: QD reads into malloc'ed buffers, submit and
 * wait, read each buffer in place, read the next block into it. */
static void liburing_run(void *state, struct sample *out)
{
	struct lu_file *l = state;
	struct io_uring *ring = &l->ring;
	uint64_t soff[QD];
	uint32_t slen[QD], outstanding = 0;
	struct cursor cur;
	struct meas m;
	uint64_t sum = 0, bytes = 0;

	cursor_init(&cur, l->job, l->bs);
	meas_begin(&m);
	for (int i = 0; i < QD; i++) {
		struct io_uring_sqe *sqe;

		if (!cursor_take(&cur, &soff[i], &slen[i]))
			continue;
		sqe = io_uring_get_sqe(ring);
		if (sqe == NULL)
			die("io_uring_get_sqe: submission queue full", 0);
		io_uring_prep_read(sqe, l->job->fd, l->bufs[i], slen[i], soff[i]);
		io_uring_sqe_set_data64(sqe, (uint64_t)i);
		outstanding++;
	}
	while (outstanding > 0) {
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;
		int ret = io_uring_submit_and_wait(ring, 1);

		if (ret < 0 && ret != -EINTR)
			die("io_uring_submit_and_wait", ret);
		io_uring_for_each_cqe(ring, head, cqe) {
			const uint64_t i = cqe->user_data;

			seen++;
			if (i >= QD)
				die("liburing: bad user_data", 0);
			cursor_result(&cur, soff[i], slen[i], cqe->res);
			sum += touch(l->bufs[i], (size_t)cqe->res, soff[i]);
			bytes += (uint64_t)cqe->res;
			if (cursor_take(&cur, &soff[i], &slen[i])) {
				struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

				if (sqe == NULL)
					die("io_uring_get_sqe: submission queue full", 0);
				io_uring_prep_read(sqe, l->job->fd, l->bufs[i], slen[i], soff[i]);
				io_uring_sqe_set_data64(sqe, i);
			} else {
				outstanding--;
			}
		}
		io_uring_cq_advance(ring, seen);
	}
	meas_end(&m, out);

	check_file_result(l->job, "liburing", bytes, sum);
	out->bytes = bytes;
	out->copied = 0;
}

static void liburing_teardown(void *state)
{
	struct lu_file *l = state;

	io_uring_queue_exit(&l->ring);
	for (int i = 0; i < QD; i++)
		free(l->bufs[i]);
	free(l);
}

/* ---- TCP: connection and sender --------------------------------------------------- */

static unsigned char *g_pat; /* PAT_WORDS words and one chunk more */

struct tcp_pair {
	int cfd; /* the sender's end */
	int sfd; /* the receiver's end */
};

static void tcp_pair_open(struct tcp_pair *tp)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof a;
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (lfd < 0)
		die("socket", -errno);
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 1) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&a, &alen) != 0)
		die("bind/listen on 127.0.0.1", -errno);
	tp->cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (tp->cfd < 0 || connect(tp->cfd, (struct sockaddr *)&a, sizeof a) != 0)
		die("connect to 127.0.0.1", -errno);
	tp->sfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (tp->sfd < 0)
		die("accept", -errno);
	close(lfd);
}

static void tcp_pair_close(struct tcp_pair *tp)
{
	close(tp->cfd);
	close(tp->sfd);
}

struct sender {
	int fd;
	uint64_t total;
	pthread_barrier_t go;
	pthread_t th;
};

static void *send_stream(void *arg)
{
	struct sender *s = arg;
	uint64_t sent = 0;

	pthread_barrier_wait(&s->go);
	while (sent < s->total) {
		const uint64_t at = sent % ((uint64_t)PAT_WORDS * 8);
		const size_t len = s->total - sent < CHUNK ? (size_t)(s->total - sent) : CHUNK;
		ssize_t n = send(s->fd, g_pat + at, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("send", -errno);
		sent += (uint64_t)n;
	}
	if (shutdown(s->fd, SHUT_WR) != 0)
		die("shutdown", -errno);
	return NULL;
}

static void sender_start(struct sender *s, int fd, uint64_t total)
{
	s->fd = fd;
	s->total = total;
	if (pthread_barrier_init(&s->go, NULL, 2) != 0 ||
	    pthread_create(&s->th, NULL, send_stream, s) != 0)
		die("sender thread", 0);
}

/* Starts the stream: called at the start of the timed window. */
static void sender_go(struct sender *s)
{
	pthread_barrier_wait(&s->go);
}

static void sender_join(struct sender *s)
{
	pthread_join(s->th, NULL);
	pthread_barrier_destroy(&s->go);
}

static void check_tcp_result(const char *impl, uint64_t got, uint64_t total)
{
	if (got != total) {
		fprintf(stderr, "bench_uring: %s received %" PRIu64 " bytes, sent %" PRIu64 "\n",
			impl, got, total);
		exit(1);
	}
}

/* ---- TCP: engine multishot receive ------------------------------------------------ */

struct eng_tcp {
	uint64_t total;
	uint64_t tag; /* one per repetition */
	rmpsc_pool *pool;
	rmpsc_ring *ring;
	rmpsc_io *io;
};

static void *engine_tcp_setup(uint64_t total)
{
	struct eng_tcp *e = calloc(1, sizeof *e);
	rmpsc_io_config ic;

	if (e == NULL)
		die("out of memory", 0);
	e->total = total;
	e->pool = pool_make(CHUNK, TCP_SLABS);
	/* Room for a completion per slab: the engine never finds it full. */
	e->ring = ring_make(2 * TCP_SLABS, sizeof(rmpsc_io_cqe));
	ck("rmpsc_io_config_init", rmpsc_io_config_init(&ic, sizeof ic));
	ic.flags = RMPSC_IO_F_THREAD;
	ic.entries = 64;
	ic.pool = e->pool;
	ic.ring = e->ring;
	ic.recv_tier = 0;
	ic.recv_buffers = TCP_RECV_BUFFERS;
	ck("rmpsc_io_create", rmpsc_io_create(&ic, &e->io));
	engine_note(e->io);
	return e;
}

/* The engine's thread delivers each receive (a slab) into the ring; this
 * thread checks the slab in place and frees it. */
static void engine_tcp_run(void *state, struct sample *out)
{
	struct eng_tcp *e = state;
	struct tcp_pair tp;
	struct sender s;
	struct meas m;
	uint64_t pos = 0;
	int done = 0;

	tcp_pair_open(&tp);
	e->tag++;
	ck("rmpsc_io_recv_multishot", rmpsc_io_recv_multishot(e->io, tp.sfd, e->tag, 0));
	sender_start(&s, tp.cfd, e->total);

	meas_begin(&m);
	sender_go(&s);
	while (!done) {
		rmpsc_io_cqe c[64];
		int n = rmpsc_ring_pop_n_timed(e->ring, c, 64, STALL_NS, NULL);

		ck("rmpsc_ring_pop_n_timed", n);
		for (int i = 0; i < n; i++) {
			if (c[i].op != RMPSC_IO_OP_RECV_MULTISHOT || c[i].tag != e->tag)
				die("engine-multishot: unexpected completion", c[i].result);
			if (c[i].handle != RMPSC_POOL_HANDLE_NONE) {
				struct iovec v;

				if (c[i].result <= 0)
					die("engine-multishot: a slab with no bytes", c[i].result);
				ck("rmpsc_pool_payload", rmpsc_pool_payload(e->pool, c[i].handle, &v));
				if (v.iov_len != (size_t)c[i].result)
					die("engine-multishot: payload length is not the result", 0);
				stream_check(v.iov_base, v.iov_len, pos);
				pos += v.iov_len;
				ck("rmpsc_pool_free", rmpsc_pool_free(e->pool, c[i].handle));
			} else if (c[i].flags & RMPSC_IO_CQE_F_MORE) {
				die("engine-multishot: no slab but more to come", c[i].result);
			}
			if (!(c[i].flags & RMPSC_IO_CQE_F_MORE)) {
				/* The request's last completion: 0 is the end of stream. */
				if (c[i].handle != RMPSC_POOL_HANDLE_NONE)
					die("engine-multishot: the last completion carries a slab", 0);
				if (c[i].result != 0)
					die("engine-multishot: receive ended", c[i].result);
				done = 1;
			}
		}
	}
	meas_end(&m, out);

	sender_join(&s);
	check_tcp_result("engine-multishot", pos, e->total);
	out->bytes = pos;
	out->copied = 0;
	tcp_pair_close(&tp);
}

static void engine_tcp_teardown(void *state)
{
	struct eng_tcp *e = state;

	engine_destroy(e->io, e->pool);
	rmpsc_ring_destroy(e->ring);
	free(e);
}

/* ---- TCP: recv() + memcpy through a ring ------------------------------------------ */

struct rc_tcp {
	uint64_t total;
	rmpsc_ring *ring;
	unsigned char *buf;
	uint64_t pos; /* the consumer's */
};

static void *rc_tcp_consume(void *arg)
{
	struct rc_tcp *rc = arg;

	for (;;) {
		rmpsc_span sp;
		int n = rmpsc_ring_readable_timed(rc->ring, RC_SLOTS, &sp, STALL_NS, NULL);

		if (n == -EPIPE)
			break;
		ck("rmpsc_ring_readable_timed", n);
		for (uint32_t seg = 0; seg < sp.nseg; seg++)
			for (uint32_t j = 0; j < sp.count[seg]; j++) {
				const unsigned char *el = (const unsigned char *)sp.iov[seg].iov_base +
							  (size_t)j * (RC_HDR + CHUNK);
				uint32_t len;

				memcpy(&len, el, sizeof len);
				stream_check(el + RC_HDR, len, rc->pos);
				rc->pos += len;
			}
		ck("rmpsc_ring_advance", rmpsc_ring_advance(rc->ring, (uint32_t)n));
	}
	return NULL;
}

static ssize_t recv_some(int fd, void *buf)
{
	for (;;) {
		ssize_t n = recv(fd, buf, CHUNK, 0);

		if (n >= 0)
			return n;
		if (errno != EINTR)
			die("recv", -errno);
	}
}

static void *recvcopy_setup(uint64_t total)
{
	struct rc_tcp *rc = calloc(1, sizeof *rc);

	if (rc == NULL || (rc->buf = aligned_alloc(4096, CHUNK)) == NULL)
		die("out of memory", 0);
	memset(rc->buf, 0x5a, CHUNK);
	rc->total = total;
	rc->ring = ring_make(RC_SLOTS, RC_HDR + CHUNK);
	return rc;
}

/* This thread recv()s into the buffer and copies each receive into the
 * ring (length, then bytes); a consumer thread checks it in place there. */
static void recvcopy_run(void *state, struct sample *out)
{
	struct rc_tcp *rc = state;
	struct tcp_pair tp;
	struct sender s;
	struct meas m;
	pthread_t th;
	uint64_t copied = 0;

	ck("rmpsc_ring_reset", rmpsc_ring_reset(rc->ring));
	rc->pos = 0;
	tcp_pair_open(&tp);
	sender_start(&s, tp.cfd, rc->total);
	if (pthread_create(&th, NULL, rc_tcp_consume, rc) != 0)
		die("pthread_create failed", 0);

	meas_begin(&m);
	sender_go(&s);
	for (;;) {
		rmpsc_span sp;
		ssize_t n = recv_some(tp.sfd, rc->buf);
		uint32_t len = (uint32_t)n;

		if (n == 0)
			break;
		if (rmpsc_ring_reserve_timed(rc->ring, 1, &sp, STALL_NS, NULL) != 1)
			die("rmpsc_ring_reserve_timed", 0);
		memcpy(sp.iov[0].iov_base, &len, sizeof len);
		memcpy((unsigned char *)sp.iov[0].iov_base + RC_HDR, rc->buf, len);
		copied += len;
		ck("rmpsc_ring_commit", rmpsc_ring_commit(rc->ring, 1));
	}
	ck("rmpsc_ring_close", rmpsc_ring_close(rc->ring));
	pthread_join(th, NULL);
	meas_end(&m, out);

	sender_join(&s);
	check_tcp_result("recv+copy", rc->pos, rc->total);
	out->bytes = rc->pos;
	out->copied = copied;
	tcp_pair_close(&tp);
}

static void recvcopy_teardown(void *state)
{
	struct rc_tcp *rc = state;

	rmpsc_ring_destroy(rc->ring);
	free(rc->buf);
	free(rc);
}

/* ---- TCP: recv() alone ------------------------------------------------------------ */

struct rv_tcp {
	uint64_t total;
	unsigned char *buf;
};

static void *recv_setup(uint64_t total)
{
	struct rv_tcp *r = calloc(1, sizeof *r);

	if (r == NULL || (r->buf = aligned_alloc(4096, CHUNK)) == NULL)
		die("out of memory", 0);
	memset(r->buf, 0x5a, CHUNK);
	r->total = total;
	return r;
}

/* recv() into the buffer and check it there, one thread. */
static void recv_run(void *state, struct sample *out)
{
	struct rv_tcp *r = state;
	struct tcp_pair tp;
	struct sender s;
	struct meas m;
	uint64_t pos = 0;

	tcp_pair_open(&tp);
	sender_start(&s, tp.cfd, r->total);

	meas_begin(&m);
	sender_go(&s);
	for (;;) {
		ssize_t n = recv_some(tp.sfd, r->buf);

		if (n == 0)
			break;
		stream_check(r->buf, (size_t)n, pos);
		pos += (uint64_t)n;
	}
	meas_end(&m, out);

	sender_join(&s);
	check_tcp_result("recv", pos, r->total);
	out->bytes = pos;
	out->copied = 0;
	tcp_pair_close(&tp);
}

static void recv_teardown(void *state)
{
	struct rv_tcp *r = state;

	free(r->buf);
	free(r);
}

/* ---- the machine ------------------------------------------------------------------ */

static void cpu_model(char *buf, size_t len)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[256];

	snprintf(buf, len, "unknown CPU");
	if (f == NULL)
		return;
	while (fgets(line, sizeof line, f) != NULL) {
		char *c = strchr(line, ':');

		if (strncmp(line, "model name", 10) == 0 && c != NULL) {
			c += 1 + (c[1] == ' ');
			c[strcspn(c, "\n")] = '\0';
			snprintf(buf, len, "%s", c);
			break;
		}
	}
	fclose(f);
}

/* All CPUs' ticks from /proc/stat: in all, busy (not idle or iowait) and
 * stolen by the hypervisor; zeros when unknown. */
struct ticks {
	uint64_t total, busy, steal;
};

static void cpu_ticks(struct ticks *t)
{
	FILE *f = fopen("/proc/stat", "r");
	uint64_t v[8] = { 0 };

	memset(t, 0, sizeof *t);
	if (f == NULL)
		return;
	/* user nice system idle iowait irq softirq steal */
	if (fscanf(f, "cpu %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
		   " %" SCNu64 " %" SCNu64, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
		   &v[7]) == 8) {
		for (int i = 0; i < 8; i++)
			t->total += v[i];
		t->busy = v[0] + v[1] + v[2] + v[5] + v[6];
		t->steal = v[7];
	}
	fclose(f);
}

/* What else ran on the machine between @p a and @p b: CPU seconds of
 * other processes (the machine's busy time less ours) per second. */
static void print_noise(const struct ticks *a, const struct ticks *b, double own_cpu,
			double wall)
{
	const double hz = (double)sysconf(_SC_CLK_TCK);
	const double others = (double)(b->busy - a->busy) / hz - own_cpu;

	if (b->total <= a->total || wall <= 0)
		return;
	printf("other processes used %.2f CPUs on average during the run (of %ld); steal %.1f %%%s\n",
	       others > 0 ? others / wall : 0.0, sysconf(_SC_NPROCESSORS_ONLN),
	       100.0 * (double)(b->steal - a->steal) / (double)(b->total - a->total),
	       others / wall > 0.1 ? ": numbers disturbed, run again on a quiet machine" : "");
}

static const char *fs_name(long type)
{
	switch (type) {
	case TMPFS_MAGIC: return "tmpfs";
	case EXT4_SUPER_MAGIC: return "ext4";
	case XFS_SUPER_MAGIC: return "xfs";
	case BTRFS_SUPER_MAGIC: return "btrfs";
	case OVERLAYFS_SUPER_MAGIC: return "overlayfs";
	default: return "other";
	}
}

/* ---- results ---------------------------------------------------------------------- */

struct series {
	const char *test; /* "file" or "tcp" */
	uint32_t bs;      /* file block size; tcp: the receive buffer */
	const char *impl;
	struct sample *s;
	int n;
};

static double metric(const struct sample *s, int cpu)
{
	return cpu ? s->cpu / (s->bytes / GB) : (s->bytes / GB) / s->sec;
}

static int cmp_double(const void *a, const void *b)
{
	const double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double series_median(const struct series *se, int cpu)
{
	double v[MAX_REPS];

	for (int i = 0; i < se->n; i++)
		v[i] = metric(&se->s[i], cpu);
	return median(v, se->n);
}

/* Median over rounds of round r's ratio a[r] / b[r]. */
static double paired_ratio(const struct series *a, const struct series *b, int cpu)
{
	double v[MAX_REPS];

	for (int i = 0; i < a->n; i++)
		v[i] = metric(&a->s[i], cpu) / metric(&b->s[i], cpu);
	return median(v, a->n);
}

static double series_copies(const struct series *se)
{
	uint64_t c = 0, b = 0;

	for (int i = 0; i < se->n; i++) {
		c += se->s[i].copied;
		b += se->s[i].bytes;
	}
	return (double)c / (double)b;
}

static void print_series(const struct series *se)
{
	double g[MAX_REPS], c[MAX_REPS];

	if (se->n == 0)
		return;
	for (int i = 0; i < se->n; i++) {
		g[i] = metric(&se->s[i], 0);
		c[i] = metric(&se->s[i], 1);
	}
	const double gm = median(g, se->n), cm = median(c, se->n);

	printf("  %-18s %8.2f  [%6.2f .. %6.2f]  %8.3f  [%6.3f .. %6.3f]  %6.2f\n", se->impl, gm,
	       g[0], g[se->n - 1], cm, c[0], c[se->n - 1], series_copies(se));
}

static const char *size_name(uint32_t bs, char *buf, size_t len)
{
	if (bs >= (1u << 20))
		snprintf(buf, len, "%u MiB", bs >> 20);
	else
		snprintf(buf, len, "%u KiB", bs >> 10);
	return buf;
}

/* "engine / peer" for GB/s and CPU s/GB: ratio of medians and paired. */
static void print_ratio(const struct series *a, const struct series *b, double want_gbps,
			int with_target)
{
	if (a->n == 0 || b->n == 0)
		return;
	const double rg = series_median(a, 0) / series_median(b, 0);
	const double rc = series_median(a, 1) / series_median(b, 1);
	const double pg = paired_ratio(a, b, 0), pc = paired_ratio(a, b, 1);

	printf("  %-16s / %-10s  GB/s %5.2fx (paired %5.2fx)   CPU s/GB %5.2fx (paired %5.2fx)",
	       a->impl, b->impl, rg, pg, rc, pc);
	if (with_target)
		printf("   target GB/s >= %.1fx: %s; fewer CPU s/GB: %s", want_gbps,
		       rg >= want_gbps ? "met" : "NOT met", rc < 1.0 ? "met" : "NOT met");
	printf("\n");
}

static void json_series(FILE *f, const struct series *se, int first)
{
	fprintf(f, "%s    {\"test\": \"%s\", \"block\": %u, \"impl\": \"%s\", ", first ? "" : ",\n",
		se->test, se->bs, se->impl);
	fprintf(f, "\"gbps_median\": %.4f, \"cpu_s_per_gb_median\": %.5f, "
		"\"copies_per_byte\": %.4f,\n",
		series_median(se, 0), series_median(se, 1), series_copies(se));
	fprintf(f, "     \"reps\": [");
	for (int i = 0; i < se->n; i++)
		fprintf(f, "%s{\"sec\": %.6f, \"cpu\": %.6f, \"bytes\": %" PRIu64 ", \"copied\": %" PRIu64
			"}", i ? ", " : "", se->s[i].sec, se->s[i].cpu, se->s[i].bytes,
			se->s[i].copied);
	fprintf(f, "]}");
}

/* ---- main ------------------------------------------------------------------------- */

struct file_impl {
	const char *name;
	void *(*setup)(const struct file_job *job, uint32_t bs);
	void (*run)(void *state, struct sample *out);
	void (*teardown)(void *state);
};

struct tcp_impl {
	const char *name;
	void *(*setup)(uint64_t total);
	void (*run)(void *state, struct sample *out);
	void (*teardown)(void *state);
};

static const struct file_impl file_impls[] = {
	{ "engine", engine_thread_setup, engine_file_run, engine_file_teardown },
	{ "engine-nothread", engine_nothread_setup, engine_file_run, engine_file_teardown },
	{ "engine-pipeline", engine_pipeline_setup, engine_pipeline_run, engine_pipeline_teardown },
	{ "engine-direct", engine_direct_setup, engine_file_run, engine_file_teardown },
	{ "read+copy", readcopy_setup, readcopy_run, readcopy_teardown },
	{ "liburing", liburing_setup, liburing_run, liburing_teardown },
};

static const struct tcp_impl tcp_impls[] = {
	{ "engine-multishot", engine_tcp_setup, engine_tcp_run, engine_tcp_teardown },
	{ "recv+copy", recvcopy_setup, recvcopy_run, recvcopy_teardown },
	{ "recv", recv_setup, recv_run, recv_teardown },
};

enum { NFILE = sizeof file_impls / sizeof file_impls[0],
       NTCP = sizeof tcp_impls / sizeof tcp_impls[0], NBS = 3 };

static uint32_t block_sizes[NBS] = { 4096, 65536, 1u << 20 };
static int nbs = NBS;

/* @p name is in the comma-separated @p list (NULL: every name is). */
static int impl_selected(const char *list, const char *name)
{
	const size_t n = strlen(name);

	if (list == NULL)
		return 1;
	for (const char *p = list; *p != '\0'; p += strcspn(p, ","), p += *p == ',')
		if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == '\0'))
			return 1;
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: bench_uring [--quick] [--reps N] [--size MiB] [--passes N] [--bs LIST]\n"
		   "                   [--only file|tcp] [--impl LIST] [--json FILE]\n"
		   "  --quick      64 MiB file, 3 passes, 5 reps (the whole run in about 10 s)\n"
		   "  --reps N     repetitions per implementation, interleaved (default 7; 3..%d)\n"
		   "  --size MiB   file size and TCP stream per pass (default 256)\n"
		   "  --passes N   reads of the whole file (and TCP streams) per rep (default 4)\n"
		   "  --bs LIST    file block sizes in KiB, e.g. 64 or 4,64,1024 (default; at most 3)\n"
		   "  --only WHAT  file or tcp (default: both)\n"
		   "  --impl LIST  implementations to run (default: all): engine, engine-nothread,\n"
		   "               engine-pipeline, engine-direct, read+copy, liburing,\n"
		   "               engine-multishot, recv+copy, recv\n"
		   "  --json FILE  also write the results as JSON\n"
		   "  file in $TMPDIR, else /var/tmp; unlinked at once, freed at exit\n",
		MAX_REPS);
}

static long parse_num(const char *s, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "bench_uring: bad number '%s' (%ld..%ld)\n", s, lo, hi);
		usage(stderr);
		exit(2);
	}
	return v;
}

/* Make, fill, sync, unlink and warm the file; returns the job. */
static void file_make(struct file_job *job, uint64_t size, char *path, size_t plen,
		      char *fsname, size_t flen)
{
	const char *dir = getenv("TMPDIR");
	const size_t chunk = 1u << 20;
	unsigned char *buf = malloc(chunk);
	struct statfs sfs;
	uint64_t k = 0;

	if (dir == NULL || *dir == '\0')
		dir = "/var/tmp";
	snprintf(path, plen, "%s/bench_uring.XXXXXX", dir);
	job->fd = mkstemp(path);
	if (job->fd < 0 || buf == NULL)
		die("cannot create the temp file (set TMPDIR)", -errno);
	/* From here the file is gone from the directory; its space is freed
	 * when the descriptor closes at exit, whatever way the run ends. */
	if (unlink(path) != 0)
		die("unlink", -errno);
	if (fstatfs(job->fd, &sfs) == 0)
		snprintf(fsname, flen, "%s", fs_name((long)sfs.f_type));
	else
		snprintf(fsname, flen, "unknown");
	for (uint64_t off = 0; off < size; off += chunk) {
		for (size_t i = 0; i < chunk; i += 8, k++) {
			const uint64_t w = mix64(k);

			memcpy(buf + i, &w, 8);
		}
		for (size_t done = 0; done < chunk;) {
			ssize_t n = pwrite(job->fd, buf + done, chunk - done, (off_t)(off + done));

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				die("write to the temp file (disk full? set TMPDIR)", -errno);
			done += (size_t)n;
		}
	}
	/* Written back now, so that no writeback runs during the timings. */
	if (fdatasync(job->fd) != 0)
		die("fdatasync", -errno);
	job->size = size;
	job->ref_sum = 0;
	/* The warming read, which also gives the reference checksum. */
	for (uint64_t off = 0; off < size; off += chunk) {
		pread_full(job->fd, buf, chunk, off);
		job->ref_sum += touch(buf, chunk, off);
	}
	free(buf);
}

int main(int argc, char **argv)
{
	int quick = 0, reps = -1, run_file = 1, run_tcp = 1;
	const char *impl_list = NULL;
	long size_mib = -1, passes = -1;
	const char *json = NULL;
	struct file_job job;
	struct utsname un;
	char model[128], path[4096], fsname[32];
	struct ticks tk0, tk1;
	struct timespec w0, w1;
	double cpu0, cpu1;
	int64_t feat;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--quick") == 0)
			quick = 1;
		else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
			reps = (int)parse_num(argv[++i], 3, MAX_REPS);
		else if (strcmp(argv[i], "--size") == 0 && i + 1 < argc)
			size_mib = parse_num(argv[++i], 1, 1 << 20);
		else if (strcmp(argv[i], "--passes") == 0 && i + 1 < argc)
			passes = parse_num(argv[++i], 1, 1000);
		else if (strcmp(argv[i], "--json") == 0 && i + 1 < argc)
			json = argv[++i];
		else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
			i++;
			run_file = strcmp(argv[i], "file") == 0;
			run_tcp = strcmp(argv[i], "tcp") == 0;
			if (!run_file && !run_tcp) {
				usage(stderr);
				return 2;
			}
		} else if (strcmp(argv[i], "--impl") == 0 && i + 1 < argc) {
			impl_list = argv[++i];
		} else if (strcmp(argv[i], "--bs") == 0 && i + 1 < argc) {
			char *list = argv[++i], *tok, *save = NULL;

			nbs = 0;
			for (tok = strtok_r(list, ",", &save); tok != NULL;
			     tok = strtok_r(NULL, ",", &save)) {
				if (nbs == NBS) {
					usage(stderr);
					return 2;
				}
				block_sizes[nbs++] = (uint32_t)parse_num(tok, 1, 1024) << 10;
			}
			if (nbs == 0) {
				usage(stderr);
				return 2;
			}
		}
		else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "bench_uring: unknown option '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (reps < 0)
		reps = quick ? 5 : 7;
	if (size_mib < 0)
		size_mib = quick ? 64 : 256;
	if (passes < 0)
		passes = quick ? 3 : 4;

	/* The machine note. */
	cpu_model(model, sizeof model);
	if (uname(&un) != 0)
		snprintf(un.release, sizeof un.release, "unknown");
	{
		cpu_set_t set;
		int aff = -1;

		if (sched_getaffinity(0, sizeof set, &set) == 0)
			aff = CPU_COUNT(&set);
		printf("machine: %ld CPUs online (%d in this process's mask), %s, kernel %s\n",
		       sysconf(_SC_NPROCESSORS_ONLN), aff, model, un.release);
	}

	/* io_uring unavailable: a skip, not a failure. */
	feat = rmpsc_uring_features();
	if (feat == -ENOSYS || feat == -EOPNOTSUPP || feat == -EPERM) {
		printf("SKIP: io_uring unavailable: rmpsc_uring_features() = %" PRId64 " (%s)\n",
		       feat, strerror((int)-feat));
		return 0;
	}
	ck("rmpsc_uring_features", feat);
	{
		struct io_uring probe;
		int ret = uring_init(&probe, 8);

		if (ret == -ENOSYS || ret == -EPERM || ret == -EOPNOTSUPP) {
			printf("SKIP: io_uring unavailable to liburing: %s\n", strerror(-ret));
			return 0;
		}
		ck("io_uring_queue_init", ret);
		io_uring_queue_exit(&probe);
	}
	{
		struct rlimit rl;

		if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0)
			printf("io_uring features 0x%" PRIx64 ", RLIMIT_MEMLOCK %s%" PRIu64 " KiB, "
			       "liburing peer linked from the system package\n", (uint64_t)feat,
			       rl.rlim_cur == RLIM_INFINITY ? "unlimited " : "",
			       rl.rlim_cur == RLIM_INFINITY ? 0 : (uint64_t)rl.rlim_cur >> 10);
	}
	cpu_ticks(&tk0);
	cpu0 = cpu_now();
	clock_gettime(CLOCK_MONOTONIC, &w0);

	file_make(&job, (uint64_t)size_mib << 20, path, sizeof path, fsname, sizeof fsname);
	job.passes = (uint32_t)passes;
	printf("file: %ld MiB in %s (%s%s), page-cache warm, unlinked at creation (freed at exit);"
	       " %ld pass%s per rep\n", size_mib, path, fsname,
	       strcmp(fsname, "tmpfs") == 0 ? ": reads copy from shmem pages, no block device" :
					       ", not tmpfs", passes, passes > 1 ? "es" : "");
	printf("QD %d; %d reps per implementation, interleaved (one of each in turn per round, "
	       "after one unreported warm-up round); medians, [min .. max]; threads unpinned\n",
	       QD, reps);
	printf("consumer work, every path: one 8-byte load per 64-byte line (summed / checked)\n"
	       "CPU s/GB: getrusage(RUSAGE_SELF) user+system over the timed window, all threads\n"
	       "(engine thread, io-wq workers, TCP sender included); GB = 1e9 bytes\n");

	/* The TCP pattern: PAT_WORDS words, then one chunk more of the same. */
	g_pat = malloc((size_t)PAT_WORDS * 8 + CHUNK);
	if (g_pat == NULL)
		die("out of memory", 0);
	for (uint64_t k = 0; k < ((uint64_t)PAT_WORDS * 8 + CHUNK) / 8; k++) {
		const uint64_t w = pat_word(k);

		memcpy(g_pat + k * 8, &w, 8);
	}

	struct series all[NBS * NFILE + NTCP];
	int nall = 0;

	for (int b = 0; run_file && b < nbs; b++) {
		const uint32_t bs = block_sizes[b];
		struct series *se = &all[nall];

		for (int i = 0; i < NFILE; i++) {
			se[i].test = "file";
			se[i].bs = bs;
			se[i].impl = file_impls[i].name;
			se[i].n = 0;
			se[i].s = calloc((size_t)reps, sizeof(struct sample));
			if (se[i].s == NULL)
				die("out of memory", 0);
		}
		void *st[NFILE] = { NULL };

		for (int i = 0; i < NFILE; i++)
			if (impl_selected(impl_list, file_impls[i].name))
				st[i] = file_impls[i].setup(&job, bs);
		/* Round -1 warms up and is not reported. */
		for (int r = -1; r < reps; r++)
			for (int i = 0; i < NFILE; i++) {
				struct sample tmp;

				if (st[i] == NULL)
					continue;
				file_impls[i].run(st[i], r < 0 ? &tmp : &se[i].s[r]);
				if (r >= 0)
					se[i].n++;
			}
		for (int i = 0; i < NFILE; i++)
			if (st[i] != NULL)
				file_impls[i].teardown(st[i]);
		nall += NFILE;
	}
	if (run_tcp) {
		const uint64_t total = ((uint64_t)size_mib << 20) * (uint64_t)passes;
		struct series *se = &all[nall];

		for (int i = 0; i < NTCP; i++) {
			se[i].test = "tcp";
			se[i].bs = CHUNK;
			se[i].impl = tcp_impls[i].name;
			se[i].n = 0;
			se[i].s = calloc((size_t)reps, sizeof(struct sample));
			if (se[i].s == NULL)
				die("out of memory", 0);
		}
		void *st[NTCP] = { NULL };

		for (int i = 0; i < NTCP; i++)
			if (impl_selected(impl_list, tcp_impls[i].name))
				st[i] = tcp_impls[i].setup(total);
		for (int r = -1; r < reps; r++)
			for (int i = 0; i < NTCP; i++) {
				struct sample tmp;

				if (st[i] == NULL)
					continue;
				tcp_impls[i].run(st[i], r < 0 ? &tmp : &se[i].s[r]);
				if (r >= 0)
					se[i].n++;
			}
		for (int i = 0; i < NTCP; i++)
			if (st[i] != NULL)
				tcp_impls[i].teardown(st[i]);
		nall += NTCP;
	}
	cpu_ticks(&tk1);
	cpu1 = cpu_now();
	clock_gettime(CLOCK_MONOTONIC, &w1);

	/* The report. */
	if (g_fixed >= 0)
		printf("\nengine: %s\n", g_fixed == 1 ?
		       "the pool registered as fixed buffers (READ_FIXED) in every engine" :
		       "the pool NOT registered as fixed buffers in some engine (plain READ)");
	if (g_fixed == 0)
		printf("  (why: %s; RLIMIT_MEMLOCK?)\n",
		       g_fixed_error ? strerror(-g_fixed_error) : "not tried");
	for (int b = 0; run_file && b < nbs; b++) {
		char nb[32];
		const struct series *se = &all[b * NFILE];

		printf("\nFile read, %s blocks      GB/s   [min .. max]        CPU s/GB  [min .. max]"
		       "        copies/B\n", size_name(block_sizes[b], nb, sizeof nb));
		for (int i = 0; i < NFILE; i++)
			print_series(&se[i]);
		/* se[0] engine, [1] engine-nothread, [2] engine-pipeline,
		 * [3] engine-direct, [4] read+copy, [5] liburing */
		for (int i = 0; i < 4; i++) {
			print_ratio(&se[i], &se[5], 1.0, block_sizes[b] == 65536);
			print_ratio(&se[i], &se[4], 1.3, block_sizes[b] == 65536);
		}
	}
	if (run_tcp) {
		const struct series *se = &all[nall - NTCP];
		char nb[32];

		printf("\nLoopback TCP receive, %s sends   GB/s   [min .. max]        CPU s/GB  "
		       "[min .. max]        copies/B\n", size_name(CHUNK, nb, sizeof nb));
		for (int i = 0; i < NTCP; i++)
			print_series(&se[i]);
		print_ratio(&se[0], &se[1], 1.0, 0);
		print_ratio(&se[0], &se[2], 1.0, 0);
	}
	printf("\ntargets (64 KiB file read): engine >= 1.0x liburing and >= 1.3x read+copy in GB/s, "
	       "fewer CPU s/GB than both (ratio < 1)\n");
	print_noise(&tk0, &tk1, cpu1 - cpu0,
		    (double)(w1.tv_sec - w0.tv_sec) + (w1.tv_nsec - w0.tv_nsec) / 1e9);

	if (json != NULL) {
		FILE *f = fopen(json, "w");

		if (f == NULL) {
			fprintf(stderr, "bench_uring: cannot write %s: %s\n", json, strerror(errno));
			return 2;
		}
		fprintf(f, "{\n  \"machine\": {\"cpus\": %ld, \"cpu\": \"%s\", \"kernel\": \"%s\"},\n",
			sysconf(_SC_NPROCESSORS_ONLN), model, un.release);
		fprintf(f, "  \"config\": {\"qd\": %d, \"reps\": %d, \"size_mib\": %ld, \"passes\": %ld, "
			"\"fs\": \"%s\", \"engine_fixed\": %d, \"uring_features\": %" PRId64 "},\n",
			QD, reps, size_mib, passes, fsname, g_fixed, feat);
		fprintf(f, "  \"series\": [\n");
		for (int i = 0, first = 1; i < nall; i++)
			if (all[i].n > 0) {
				json_series(f, &all[i], first);
				first = 0;
			}
		fprintf(f, "\n  ]\n}\n");
		if (fclose(f) != 0) {
			fprintf(stderr, "bench_uring: cannot write %s\n", json);
			return 2;
		}
	}
	for (int i = 0; i < nall; i++)
		free(all[i].s);
	free(g_pat);
	close(job.fd);
	return 0;
}
