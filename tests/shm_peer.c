/* SPDX-License-Identifier: MIT */
/*
 * shm_peer: the other process of test_shm_proc. It connects to the test's
 * SOCK_SEQPACKET socket (rmpsc_fd_connect), receives the shared ring's
 * memfd (rmpsc_fd_recv), attaches (rmpsc_shm_attach), acknowledges with
 * one byte "A", and then:
 *
 *   shm_peer produce <sock> <count> [seed] [u64|var]
 *       pushes the sequence 0..count-1 with a seeded mixture of push,
 *       push_n batches and reserve/commit spans (the try call first, its
 *       timed twin when the ring is full), then closes and detaches.
 *   shm_peer consume <sock> <count> [seed] [u64|var]
 *       pops with a mixture of pop, pop_n and readable/advance and checks
 *       the strict sequence (no loss, no duplicate), then that the ring
 *       ends with -EPIPE (the producer closed before it detached: a
 *       clean end, never -ECONNRESET).
 *   u64: 8-byte counters. var: 256-byte records {seq, len, crc32 of the
 *       payload, payload of len bytes}, len varying, checked by the
 *       consumer (what the shared pool's handles with a CRC will be).
 *   shm_peer hostile <sock> <ms> [seed] [producer|consumer]
 *       attaches in the role given (producer by default), maps the memfd
 *       itself and, for <ms> milliseconds, scribbles random values into
 *       every header field, index, wake word and slot, between calls of
 *       its own handle (whose results it ignores).
 *   shm_peer probe <sock>
 *       for each message: the descriptor it carries is attached as a
 *       consumer (then detached), and the result goes back as an int32:
 *       rmpsc_fd_recv()'s code when it fails, else rmpsc_shm_attach()'s;
 *       1000 + n when n descriptors more than before stay open. Ends with
 *       exit 0 when the test closes the socket.
 *
 * Exit status: 0 success, else one of enum peer_exit (a code per kind of
 * failure), with a line on stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ringmpsc/shm.h"
#include "test_base.h"

enum peer_exit {
	EX_OK = 0,
	EX_USAGE = 2,
	EX_CONNECT = 3,   /* rmpsc_fd_connect failed */
	EX_RECV = 4,      /* rmpsc_fd_recv failed */
	EX_ATTACH = 5,    /* rmpsc_shm_attach failed */
	EX_PUSH = 6,      /* a producer call returned an unexpected code */
	EX_POP = 7,       /* a consumer call returned an unexpected code */
	EX_SEQ = 8,       /* an element out of sequence (loss, duplicate) */
	EX_CRC = 9,       /* a record whose CRC or length is wrong */
	EX_END = 10,      /* the ring did not end as it should */
	EX_CLOSE = 11,    /* rmpsc_shm_close failed */
	EX_MAP = 12,      /* the hostile's own mapping failed */
	EX_ACK = 13,      /* the acknowledgement could not be sent */
	EX_SPAN = 14,     /* a span whose shape is wrong */
};

#define NS_PER_MS 1000000ll
#define VAR_ESZ 256u
#define VAR_PAYLOAD (VAR_ESZ - 16u)
#define BATCH_MAX 64u

/* A variable-size record in a 256-byte slot. */
struct var_rec {
	uint64_t seq;
	uint32_t len; /* payload bytes, 0..VAR_PAYLOAD */
	uint32_t crc; /* crc32 of payload[0..len) */
	uint8_t payload[VAR_PAYLOAD];
};
_Static_assert(sizeof(struct var_rec) == VAR_ESZ, "a record fills its slot");

static const char *g_what = "shm_peer";

__attribute__((format(printf, 2, 3), noreturn)) static void die(int code, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", g_what);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

/* Record @seq: its length and payload follow from @seq alone. */
static void var_fill(struct var_rec *r, uint64_t seq)
{
	uint64_t g = seq * 0x9e3779b97f4a7c15ull + 0x1234567ull;

	g |= 1;
	memset(r, 0, sizeof *r);
	r->seq = seq;
	r->len = (uint32_t)(xs_next(&g) % (VAR_PAYLOAD + 1));
	for (uint32_t i = 0; i < r->len; i++)
		r->payload[i] = (uint8_t)(xs_next(&g) >> 24);
	r->crc = shm_crc32(0, r->payload, r->len);
}

/* 0, or the exit code for a record that is not whole record @seq. */
static int var_check(const struct var_rec *r, uint64_t seq)
{
	if (r->seq != seq)
		return EX_SEQ;
	if (r->len > VAR_PAYLOAD || shm_crc32(0, r->payload, r->len) != r->crc)
		return EX_CRC;
	return 0;
}

static uint64_t arg_u64(const char *s)
{
	char *end;
	const unsigned long long v = strtoull(s, &end, 0);

	if (!*s || *end)
		die(EX_USAGE, "not a number: %s", s);
	return v;
}

static unsigned char *span_elem(const rmpsc_span *sp, uint32_t esz, uint32_t i)
{
	if (i < sp->count[0])
		return (unsigned char *)sp->iov[0].iov_base + (size_t)i * esz;
	return (unsigned char *)sp->iov[1].iov_base + (size_t)(i - sp->count[0]) * esz;
}

/* A span of @n elements must be laid out as the header says. */
static void span_check(const rmpsc_span *sp, uint32_t esz, int n)
{
	if (n <= 0 || sp->count[0] + sp->count[1] != (uint32_t)n ||
	    sp->iov[0].iov_len != (size_t)sp->count[0] * esz ||
	    sp->iov[1].iov_len != (size_t)sp->count[1] * esz || sp->count[0] == 0 ||
	    sp->nseg != (sp->count[1] ? 2u : 1u))
		die(EX_SPAN, "span of %d: counts %u+%u nseg %u", n, sp->count[0], sp->count[1],
		    sp->nseg);
}

/* Connect, receive the memfd, attach as @role, acknowledge. */
static rmpsc_shm *peer_attach(const char *path, uint32_t role, int *sock_out)
{
	rmpsc_shm_config cfg;
	rmpsc_shm *s = NULL;
	int sock, fd = -1, r;

	sock = rmpsc_fd_connect(path, 30000 * NS_PER_MS);
	if (sock < 0)
		die(EX_CONNECT, "connect %s: %d", path, sock);
	r = rmpsc_fd_recv(sock, &fd, 1, NULL, 0, NULL, 60000 * NS_PER_MS);
	if (r != 1)
		die(EX_RECV, "recv: %d", r);
	rmpsc_shm_config_init(&cfg, sizeof cfg);
	cfg.role = role;
	cfg.capacity = 0;
	cfg.elem_size = 0;
	r = rmpsc_shm_attach(fd, &cfg, &s);
	close(fd);
	if (r != 0)
		die(EX_ATTACH, "attach: %d", r);
	if (send(sock, "A", 1, MSG_NOSIGNAL) != 1)
		die(EX_ACK, "ack: errno %d", errno);
	*sock_out = sock;
	return s;
}

/* ---- producer ---------------------------------------------------------------- */

/* Element @seq of the stream into @dst. */
static void put_elem(unsigned char *dst, uint32_t esz, uint64_t seq)
{
	if (esz == VAR_ESZ) {
		struct var_rec rec;

		var_fill(&rec, seq);
		memcpy(dst, &rec, sizeof rec);
	} else {
		memcpy(dst, &seq, sizeof seq);
	}
}

static int produce(rmpsc_shm *s, uint64_t count, uint64_t rng)
{
	const uint32_t esz = (uint32_t)rmpsc_shm_elem_size(s);
	unsigned char *buf = malloc((size_t)BATCH_MAX * esz);
	uint64_t next = 0;

	if (!buf)
		die(EX_PUSH, "malloc");
	while (next < count) {
		const uint64_t x = xs_next(&rng);
		const uint64_t left = count - next;
		uint32_t n = 1 + (uint32_t)((x >> 8) % ((x & 0x300) ? 8 : BATCH_MAX));
		rmpsc_span sp;
		int r;

		if (n > left)
			n = (uint32_t)left;
		switch (x % 3) {
		case 0: /* push */
			put_elem(buf, esz, next);
			r = rmpsc_shm_push(s, buf);
			if (r == -EAGAIN)
				r = rmpsc_shm_push_timed(s, buf, -1, NULL);
			if (r != 0)
				die(EX_PUSH, "push at %" PRIu64 ": %d", next, r);
			next++;
			break;
		case 1: /* push_n */
			for (uint32_t i = 0; i < n; i++)
				put_elem(buf + (size_t)i * esz, esz, next + i);
			r = rmpsc_shm_push_n(s, buf, n);
			if (r == -EAGAIN)
				r = rmpsc_shm_push_n_timed(s, buf, n, -1, NULL);
			if (r <= 0 || (uint32_t)r > n)
				die(EX_PUSH, "push_n(%u) at %" PRIu64 ": %d", n, next, r);
			next += (uint32_t)r;
			break;
		default: /* reserve, fill, commit in one or two parts */
			r = rmpsc_shm_reserve(s, n, &sp);
			if (r == -EAGAIN)
				r = rmpsc_shm_reserve_timed(s, n, &sp, -1, NULL);
			if (r <= 0 || (uint32_t)r > n)
				die(EX_PUSH, "reserve(%u) at %" PRIu64 ": %d", n, next, r);
			span_check(&sp, esz, r);
			for (uint32_t i = 0; i < (uint32_t)r; i++)
				put_elem(span_elem(&sp, esz, i), esz, next + i);
			{
				const uint32_t a = (x >> 40) & 1 ? (uint32_t)r / 2 : (uint32_t)r;
				int c = rmpsc_shm_commit(s, a);

				if (c == 0 && a < (uint32_t)r)
					c = rmpsc_shm_commit(s, (uint32_t)r - a);
				if (c != 0)
					die(EX_PUSH, "commit at %" PRIu64 ": %d", next, c);
			}
			next += (uint32_t)r;
			break;
		}
	}
	free(buf);
	{
		const int c = rmpsc_shm_close(s);

		if (c != 0)
			die(EX_CLOSE, "close: %d", c);
	}
	return EX_OK;
}

/* ---- consumer ---------------------------------------------------------------- */

/* 0 or the exit code for element @seq at @src. */
static int check_elem(const unsigned char *src, uint32_t esz, uint64_t seq)
{
	if (esz == VAR_ESZ) {
		struct var_rec rec;

		memcpy(&rec, src, sizeof rec);
		return var_check(&rec, seq);
	} else {
		uint64_t v;

		memcpy(&v, src, sizeof v);
		return v == seq ? 0 : EX_SEQ;
	}
}

static void expect_elems(const unsigned char *buf, uint32_t esz, uint64_t first, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		const int e = check_elem(buf + (size_t)i * esz, esz, first + i);

		if (e) {
			uint64_t got;

			memcpy(&got, buf + (size_t)i * esz, sizeof got);
			die(e, "element %" PRIu64 ": got seq %" PRIu64, first + i, got);
		}
	}
}

static int consume(rmpsc_shm *s, uint64_t count, uint64_t rng)
{
	const uint32_t esz = (uint32_t)rmpsc_shm_elem_size(s);
	unsigned char *buf = malloc((size_t)BATCH_MAX * esz);
	uint64_t next = 0;
	int r;

	if (!buf)
		die(EX_POP, "malloc");
	while (next < count) {
		const uint64_t x = xs_next(&rng);
		const uint64_t left = count - next;
		uint32_t n = 1 + (uint32_t)((x >> 8) % ((x & 0x300) ? 8 : BATCH_MAX));
		rmpsc_span sp;

		if (n > left)
			n = (uint32_t)left;
		switch (x % 3) {
		case 0:
			r = rmpsc_shm_pop(s, buf);
			if (r == -EAGAIN)
				r = rmpsc_shm_pop_timed(s, buf, -1, NULL);
			if (r != 0)
				die(EX_POP, "pop at %" PRIu64 ": %d", next, r);
			expect_elems(buf, esz, next, 1);
			next++;
			break;
		case 1:
			r = rmpsc_shm_pop_n(s, buf, n);
			if (r == -EAGAIN)
				r = rmpsc_shm_pop_n_timed(s, buf, n, -1, NULL);
			if (r <= 0 || (uint32_t)r > n)
				die(EX_POP, "pop_n(%u) at %" PRIu64 ": %d", n, next, r);
			expect_elems(buf, esz, next, (uint32_t)r);
			next += (uint32_t)r;
			break;
		default:
			r = rmpsc_shm_readable(s, n, &sp);
			if (r == -EAGAIN)
				r = rmpsc_shm_readable_timed(s, n, &sp, -1, NULL);
			if (r <= 0 || (uint32_t)r > n)
				die(EX_POP, "readable(%u) at %" PRIu64 ": %d", n, next, r);
			span_check(&sp, esz, r);
			for (uint32_t i = 0; i < (uint32_t)r; i++) {
				memcpy(buf, span_elem(&sp, esz, i), esz);
				expect_elems(buf, esz, next + i, 1);
			}
			{
				const uint32_t a = (x >> 40) & 1 ? (uint32_t)r / 2 : (uint32_t)r;
				int c = rmpsc_shm_advance(s, a);

				if (c == 0 && a < (uint32_t)r)
					c = rmpsc_shm_advance(s, (uint32_t)r - a);
				if (c != 0)
					die(EX_POP, "advance at %" PRIu64 ": %d", next, c);
			}
			next += (uint32_t)r;
			break;
		}
	}
	/* The producer closed after its last element: nothing more, then the
	 * clean end (its detach after the close is not a death). */
	r = rmpsc_shm_pop_timed(s, buf, -1, NULL);
	if (r == 0) {
		uint64_t got;

		memcpy(&got, buf, sizeof got);
		die(EX_SEQ, "an element past the end: seq %" PRIu64, got);
	}
	if (r != -EPIPE)
		die(EX_END, "end: %d", r);
	free(buf);
	return EX_OK;
}

/* ---- hostile ------------------------------------------------------------------ */

struct field {
	size_t off, size;
};

#define F(m) { offsetof(rmpsc_shm_header, m), sizeof(((rmpsc_shm_header *)0)->m) }
/* The first NQUIET fields are ones a peer may scribble without ending or
 * breaking the ring (identity, heartbeats, counters, wake words, unused
 * words): the first phase of the hostile writes only those, so that the
 * other side keeps running; the rest break it, close it or make the
 * peer look gone. */
static const struct field fields[] = {
	F(magic), F(version), F(header_size), F(elem_size), F(capacity), F(map_size),
	F(barrier), F(creator_pid), F(generation), F(_pad0),
	F(producer.heartbeat_ns), F(producer.attaches),
	F(consumer.heartbeat_ns), F(consumer.attaches),
	F(ring_magic), F(ring_version), F(ring_elem_size), F(ring_capacity), F(ring_slots),
	F(prod_waiters), F(cons_waiters), F(_state), F(_mc_head), F(_claim),
	F(cons_seq), F(prod_seq), F(_metrics[0]), F(_metrics[2]),
#define NQUIET 28u
	F(producer.state), F(producer.pid), F(consumer.state), F(consumer.pid),
	F(closed), F(tail), F(head), F(final_tail),
};
#undef F
#define NFIELDS (sizeof fields / sizeof fields[0])
_Static_assert(NQUIET < NFIELDS, "quiet fields first");

/* A value worth writing into a field now holding @cur, in a ring of @cap. */
static uint64_t hostile_value(uint64_t *rng, uint64_t cur, uint64_t cap)
{
	const uint64_t x = xs_next(rng);
	const uint64_t d = (x >> 8) % 8;

	switch (x % 8) {
	case 0: return d;                          /* small: states, closed */
	case 1: return cur + d - 4;                /* near what is there */
	case 2: return cur + cap + d - 4;          /* a ring's length away */
	case 3: return cur - cap - d;
	case 4: return ~(uint64_t)0 - d;           /* huge, negative */
	case 5: return (uint64_t)1 << (x >> 32) % 64;
	default: return xs_next(rng);              /* anything */
	}
}

static int hostile(rmpsc_shm *s, int fd, int64_t ms, uint64_t rng)
{
	struct stat st;
	unsigned char *m;
	size_t len;
	const int64_t end = now_ns() + ms * NS_PER_MS;
	const uint64_t cap = (uint64_t)rmpsc_shm_capacity(s);
	const uint32_t esz = (uint32_t)rmpsc_shm_elem_size(s);
	const bool prod = rmpsc_shm_role(s) == RMPSC_SHM_PRODUCER;
	unsigned char item[64] = {0};
	uint64_t seq = 0;

	if (fstat(fd, &st) != 0 || st.st_size < (off_t)RMPSC_SHM_HEADER_SIZE)
		die(EX_MAP, "fstat");
	len = (size_t)st.st_size;
	m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		die(EX_MAP, "mmap: errno %d", errno);
	const int64_t loud = now_ns() + ms * NS_PER_MS / 2;

	while (now_ns() < end) {
		const uint64_t x = xs_next(&rng);
		const bool quiet = now_ns() < loud;

		switch (x % 10) {
		case 0: case 1: case 2: case 3: { /* a field of the header */
			const struct field *f =
				&fields[(x >> 8) % (quiet ? NQUIET : (uint32_t)NFIELDS)];
			uint64_t cur = 0, v;

			memcpy(&cur, m + f->off, f->size);
			v = hostile_value(&rng, cur, cap);
			if (f->size == 8)
				__atomic_store_n((uint64_t *)(void *)(m + f->off), v, __ATOMIC_RELAXED);
			else
				__atomic_store_n((uint32_t *)(void *)(m + f->off), (uint32_t)v,
						 __ATOMIC_RELAXED);
			break;
		}
		case 4: { /* any bytes of the header */
			if (quiet)
				break;
			const size_t off = (x >> 8) % (RMPSC_SHM_HEADER_SIZE - 8);
			const uint64_t v = xs_next(&rng);

			memcpy(m + off, &v, 1 + (x >> 40) % 8);
			break;
		}
		case 5: /* the slots */
			if (len > RMPSC_SHM_HEADER_SIZE + 8) {
				const size_t off = RMPSC_SHM_HEADER_SIZE +
						   (x >> 8) % (len - RMPSC_SHM_HEADER_SIZE - 8);
				const uint64_t v = xs_next(&rng);

				memcpy(m + off, &v, sizeof v);
			}
			break;
		case 6: /* the two indices, plausible again (drives the peer on) */
			if (quiet)
				break;
			__atomic_store_n((uint64_t *)(void *)(m + offsetof(rmpsc_shm_header, head)),
					 seq, __ATOMIC_RELEASE);
			__atomic_store_n((uint64_t *)(void *)(m + offsetof(rmpsc_shm_header, tail)),
					 seq + (x >> 8) % (cap + 1), __ATOMIC_RELEASE);
			break;
		case 7: /* a pause */
			usleep((useconds_t)((x >> 8) % 300));
			break;
		default: /* our own calls, results ignored */
			seq++;
			memcpy(item, &seq, sizeof seq);
			if (prod) {
				if (esz <= sizeof item)
					for (int i = 0; i < 8; i++)
						(void)rmpsc_shm_push(s, item);
				(void)rmpsc_shm_push_timed(s, item, (int64_t)((x >> 8) % 3) * NS_PER_MS,
							   NULL);
			} else {
				unsigned char out[64];

				if (esz <= sizeof out) {
					(void)rmpsc_shm_pop(s, out);
					(void)rmpsc_shm_pop_timed(s, out,
								  (int64_t)((x >> 8) % 3) * NS_PER_MS,
								  NULL);
				}
			}
			(void)rmpsc_shm_len(s);
			break;
		}
	}
	munmap(m, len);
	return EX_OK;
}

/* ---- probe -------------------------------------------------------------------- */

static int probe(const char *path)
{
	const int sock = rmpsc_fd_connect(path, 30000 * NS_PER_MS);

	if (sock < 0)
		die(EX_CONNECT, "connect %s: %d", path, sock);
	for (;;) {
		const int before = open_fds();
		int fds[4] = {-1, -1, -1, -1};
		char data[16];
		int32_t res;
		int r = rmpsc_fd_recv(sock, fds, 4, data, sizeof data, NULL, 60000 * NS_PER_MS);

		if (r == -EPIPE)
			break;
		if (r < 0) {
			res = r;
		} else {
			rmpsc_shm_config cfg;
			rmpsc_shm *s = NULL;

			rmpsc_shm_config_init(&cfg, sizeof cfg);
			cfg.role = RMPSC_SHM_CONSUMER;
			cfg.capacity = 0;
			cfg.elem_size = 0;
			res = rmpsc_shm_attach(fds[0], &cfg, &s);
			if (res == 0 && s == NULL)
				res = 999;
			if (res != 0 && s != NULL)
				res = 998;
			rmpsc_shm_destroy(s);
			for (int i = 0; i < r; i++)
				close(fds[i]);
		}
		if (open_fds() != before)
			res = 1000 + open_fds() - before;
		if (send(sock, &res, sizeof res, MSG_NOSIGNAL) != (ssize_t)sizeof res)
			die(EX_ACK, "reply: errno %d", errno);
	}
	close(sock);
	return EX_OK;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	uint64_t seed, rng;
	rmpsc_shm *s;
	int sock, rc;

	/* A hang fails instead of blocking the test: SIGALRM ends us. */
	alarm(900);
	g_what = mode;
	if (strcmp(mode, "probe") == 0 && argc == 3)
		return probe(argv[2]);
	if (argc < 4 || argc > 6)
		die(EX_USAGE, "usage: shm_peer produce|consume|hostile <sock> <count|ms> [seed] "
			      "[u64|var|producer|consumer]");
	seed = argc > 4 ? arg_u64(argv[4]) : 1;
	rng = seed * 0x9e3779b97f4a7c15ull | 1;
	if (strcmp(mode, "hostile") == 0) {
		const uint32_t role = argc > 5 && strcmp(argv[5], "consumer") == 0
					      ? RMPSC_SHM_CONSUMER
					      : RMPSC_SHM_PRODUCER;

		s = peer_attach(argv[2], role, &sock);
		rc = hostile(s, rmpsc_shm_fd(s), (int64_t)arg_u64(argv[3]), rng);
		/* Half the time the hostile just goes away, attached. */
		if (seed & 1)
			rmpsc_shm_destroy(s);
		close(sock);
		return rc;
	}
	if (strcmp(mode, "produce") == 0 || strcmp(mode, "consume") == 0) {
		const bool prod = mode[0] == 'p';
		const bool var = argc > 5 && strcmp(argv[5], "var") == 0;

		if (argc > 5 && !var && strcmp(argv[5], "u64") != 0)
			die(EX_USAGE, "mode %s", argv[5]);
		s = peer_attach(argv[2], prod ? RMPSC_SHM_PRODUCER : RMPSC_SHM_CONSUMER, &sock);
		if (rmpsc_shm_elem_size(s) != (var ? VAR_ESZ : 8))
			die(EX_ATTACH, "elem_size %lld", (long long)rmpsc_shm_elem_size(s));
		/* The test's socket hanging up (the test died) ends the ring
		 * here instead of leaving us waiting. */
		rc = rmpsc_shm_watch(s, sock);
		if (rc != 0)
			die(EX_ATTACH, "watch: %d", rc);
		rc = prod ? produce(s, arg_u64(argv[3]), rng) : consume(s, arg_u64(argv[3]), rng);
		rmpsc_shm_destroy(s);
		close(sock);
		return rc;
	}
	die(EX_USAGE, "unknown mode %s", mode);
}
