/* SPDX-License-Identifier: MIT */
/*
 * Between processes (ringmpsc/shm.h), in three parts:
 *
 * Descriptor passing over AF_UNIX sockets (SCM_RIGHTS) and the
 * listen/accept/connect helper. A received message is judged whole before
 * anything is handed over: its control data must be SCM_RIGHTS only, not
 * truncated (MSG_CTRUNC: the kernel dropped descriptors it had no room
 * for, and closed them), and its data must fit (MSG_TRUNC); otherwise
 * every descriptor it did carry is closed here and the call fails, so a
 * hostile peer cannot make us leak descriptors or take a half message.
 *
 * The shared ring (rmpsc_shm): the ring core over a sealed memfd, a
 * private view per process, attach validation, roles and peer liveness
 * (its own Synchronization block below).
 *
 * The mux (rmpsc_shm_mux): one consumer over many shared rings, with
 * adaptive skip and one sleep for all of them (its block below).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <signal.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ring_core.h"
#include "ringmpsc/shm.h"
#include "wait_core.h"

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

/* ==== shared ring ========================================================== */

/*
 * A shared ring is a memfd laid out as rmpsc_shm_header (identity, the two
 * sides' sections, then the ring core's shared part, struct rmpsc__rshared,
 * at SHM_RING_OFF) followed by the slots and a guard page. Each handle is
 * a private view (rmpsc__rcore, ring_core.h) over that shared part, in
 * memory of its own: the view's geometry is the validated copy, never read
 * from the shared pages again; the producer's tail and the consumer's
 * head are the view's own (ptail, chead), the shared copies only written;
 * each index read from the peer passes rc_index_ok() once per refresh or
 * latches the view broken (rmpsc__rc_index_bad()). The core's protocol
 * (E1-E7) is unchanged; what differs is the barrier mode
 * (RMPSC__BARRIER_SHARED_*: shared futexes, global membarrier or fences)
 * and, for a close the peer left half decided, a bounded wait
 * (ring_close.c, rc_final_tail()).
 *
 * Synchronization beyond the core's: the sides' sections (pid, state,
 * heartbeat, attaches) are hints, read and written with relaxed atomics;
 * the view's "gone" flag is this process's and latched by whichever call
 * finds the peer gone; s->gone is only read by the thread using the
 * handle (one per role, as for any ring side) and by nobody else.
 */

#define SHM_RING_OFF 512u
/* How often a blocking call looks at the peer while it waits. */
#define SHM_SLICE_NS 10000000

_Static_assert(sizeof(rmpsc_shm_side) == 128, "a side's section is 128 bytes");
_Static_assert(sizeof(rmpsc_shm_header) == RMPSC_SHM_HEADER_SIZE, "the header is 1024 bytes");
_Static_assert(offsetof(rmpsc_shm_header, producer) == 128, "producer section at 128");
_Static_assert(offsetof(rmpsc_shm_header, consumer) == 256, "consumer section at 256");
_Static_assert(offsetof(rmpsc_shm_header, ring_magic) == SHM_RING_OFF, "ring words at 512");
#define SHM_AT(field, rfield)                                                  \
	_Static_assert(offsetof(rmpsc_shm_header, field) ==                    \
			       SHM_RING_OFF + offsetof(rmpsc__rshared, rfield), \
		       #field " is the core's " #rfield)
SHM_AT(ring_magic, magic);
SHM_AT(ring_version, version);
SHM_AT(ring_elem_size, esz);
SHM_AT(ring_capacity, cap);
SHM_AT(ring_slots, slots);
SHM_AT(closed, closed);
SHM_AT(prod_waiters, prod_waiters);
SHM_AT(cons_waiters, cons_waiters);
SHM_AT(_state, state);
SHM_AT(tail, tail);
SHM_AT(_mc_head, mc_head);
SHM_AT(head, head);
SHM_AT(_claim, claim);
SHM_AT(cons_seq, cons_seq);
SHM_AT(prod_seq, prod_seq);
SHM_AT(final_tail, final_tail);
SHM_AT(_metrics, m_sent);
_Static_assert(sizeof(rmpsc__rshared) == RMPSC_SHM_HEADER_SIZE - SHM_RING_OFF,
	       "the core's shared part fills the header's second half");
_Static_assert(sizeof(rmpsc_shm_config) == 24, "rmpsc_shm_config layout");

struct rmpsc_shm {
	rmpsc__rcore core; /* first: the handle's magic is the view's */
	struct rmpsc__region map; /* the memfd's mapping, guard page, fd */
	rmpsc_shm_header *hdr;
	rmpsc_shm_side *mine, *peer;
	uint32_t role;
	uint32_t gone;     /* the peer was found gone: the ring was ended here */
	uint64_t closing_since; /* when a timed call first saw a close undecided (0: not) */
	int pidfd;         /* of peer_pid, or -1 */
	int32_t peer_pid;  /* the pid pidfd is of (0: none opened) */
	int watch[RMPSC_SHM_WATCH_MAX];
	bool watch_sock[RMPSC_SHM_WATCH_MAX];
	uint32_t nwatch;
};

/* The sections' words: plain fields of a public struct, used atomically. */
#define SIDE_LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define SIDE_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)

static inline bool shm_is(const rmpsc_shm *s, uint32_t magic)
{
	return RMPSC__LIKELY(RMPSC__HANDLE_IS(s, magic));
}

static inline bool shm_any(const rmpsc_shm *s)
{
	return shm_is(s, RMPSC__MAGIC_SHM_PROD) || shm_is(s, RMPSC__MAGIC_SHM_CONS);
}

#define SHM_CHECK(s) RMPSC__CHECK(!shm_any(s), -EBADF)
#define SHM_PROD(s) RMPSC__CHECK(!shm_is((s), RMPSC__MAGIC_SHM_PROD), -EBADF)
#define SHM_CONS(s) RMPSC__CHECK(!shm_is((s), RMPSC__MAGIC_SHM_CONS), -EBADF)

int rmpsc_shm_config_init(rmpsc_shm_config *cfg, uint32_t size)
{
	/* No geometry by default: create needs it said, attach takes any. */
	const rmpsc_shm_config d = {
		.size = size,
		.role = RMPSC_SHM_PRODUCER,
	};

	return rmpsc__size_out(cfg, size, &d, sizeof d, sizeof d);
}

static size_t page_size(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

/* The memfd's size for a geometry (64-bit: 2^30 slots of 2^24 bytes fit). */
static uint64_t shm_map_size(uint32_t esz, uint32_t cap)
{
	const uint64_t pg = page_size();

	return (RMPSC_SHM_HEADER_SIZE + (uint64_t)cap * esz + pg - 1) / pg * pg;
}

static int shm_read_config(const rmpsc_shm_config *ucfg, rmpsc_shm_config *cfg)
{
	int err;

	rmpsc_shm_config_init(cfg, sizeof *cfg);
	err = rmpsc__config_copy(cfg, sizeof *cfg, ucfg, sizeof *cfg);
	if (err)
		return err;
	RMPSC__CHECK(cfg->role != RMPSC_SHM_PRODUCER && cfg->role != RMPSC_SHM_CONSUMER, -EINVAL);
	RMPSC__CHECK(cfg->flags & ~(uint32_t)RMPSC_SHM_F_ALL, -EINVAL);
	RMPSC__CHECK(cfg->_pad0 != 0, -EINVAL);
	RMPSC__CHECK(cfg->capacity > RMPSC_SHM_CAPACITY_MAX || cfg->elem_size > RMPSC_SHM_ELEM_SIZE_MAX,
		     -EINVAL);
	RMPSC__CHECK(cfg->capacity && !rmpsc__is_pow2(cfg->capacity), -EINVAL);
	return 0;
}

static bool pid_alive(int32_t pid)
{
	return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

/* Take this role's section: refused while a live process holds it. The
 * pid is claimed by CAS, so of two processes attaching the same role at
 * once one gets -EBUSY. */
static int shm_claim(rmpsc_shm *s)
{
	int32_t old = SIDE_LOAD(&s->mine->pid);
	const int32_t me = (int32_t)getpid();

	if (SIDE_LOAD(&s->mine->state) == RMPSC_SHM_SIDE_ATTACHED && pid_alive(old))
		return -EBUSY;
	if (!__atomic_compare_exchange_n(&s->mine->pid, &old, me, false, __ATOMIC_SEQ_CST,
					 __ATOMIC_RELAXED))
		return -EBUSY;
	SIDE_STORE(&s->mine->heartbeat_ns, rmpsc__now_ns());
	__atomic_fetch_add(&s->mine->attaches, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&s->mine->state, (uint32_t)RMPSC_SHM_SIDE_ATTACHED, __ATOMIC_SEQ_CST);
	return 0;
}

/* The handle around a mapped, validated ring: the view over its shared
 * part, this role's flags and barrier, and its section. */
static int shm_handle(struct rmpsc__region *map, uint32_t role, uint32_t esz, uint32_t cap,
		      uint32_t barrier, rmpsc_shm **out)
{
	size_t len;
	rmpsc_shm *s = rmpsc__mem_map(sizeof *s, 0, RMPSC_NODE_ANY, &len);
	unsigned char *base = map->base;
	const bool prod = role == RMPSC_SHM_PRODUCER;
	int err;

	if (!s)
		return -ENOMEM;
	rc_init_view(&s->core, (rmpsc__rshared *)(void *)(base + SHM_RING_OFF),
		     prod ? RMPSC__MAGIC_SHM_PROD : RMPSC__MAGIC_SHM_CONS, cap, cap, esz,
		     base + RMPSC_SHM_HEADER_SIZE);
	s->core.map_len = len;
	s->core.flags = RC_F_SHM | (prod ? RC_F_SHM_PRODUCER : 0u);
	s->core.barrier = barrier == RMPSC_SHM_BARRIER_GLOBAL ? RMPSC__BARRIER_SHARED_GLOBAL
							     : RMPSC__BARRIER_SHARED_FENCE;
	s->map = *map;
	s->hdr = (rmpsc_shm_header *)(void *)base;
	s->mine = prod ? &s->hdr->producer : &s->hdr->consumer;
	s->peer = prod ? &s->hdr->consumer : &s->hdr->producer;
	s->role = role;
	s->pidfd = -1;
	err = shm_claim(s);
	if (err) {
		rmpsc__mem_unmap(s, len);
		return err;
	}
	*out = s;
	return 0;
}

/* Both processes of a GLOBAL ring register (internal.h). */
static int shm_barrier_ready(uint32_t barrier)
{
	return barrier == RMPSC_SHM_BARRIER_GLOBAL ? rmpsc__barrier_global_register() : 0;
}

RMPSC__COLD int rmpsc_shm_create(const rmpsc_shm_config *ucfg, rmpsc_shm **out)
{
	rmpsc_shm_config cfg;
	struct rmpsc__region map;
	rmpsc_shm_header *h;
	rmpsc__rcore tmp;
	uint32_t barrier;
	uint64_t size;
	int err;

	RMPSC__CHECK(!out, -EINVAL);
	*out = NULL;
	err = shm_read_config(ucfg, &cfg);
	if (err)
		return err;
	RMPSC__CHECK(cfg.capacity == 0 || cfg.elem_size == 0, -EINVAL);
	size = shm_map_size(cfg.elem_size, cfg.capacity);
	RMPSC__CHECK(size > RMPSC_SHM_MAP_MAX || size > SIZE_MAX / 2, -ENOMEM);
	barrier = cfg.flags & RMPSC_SHM_F_FENCE ? RMPSC_SHM_BARRIER_FENCE : RMPSC_SHM_BARRIER_GLOBAL;
	err = shm_barrier_ready(barrier);
	if (err)
		return err;
	{
		const struct rmpsc__region_req q = {
			.size = (size_t)size,
			.page = RMPSC__PAGE_NORMAL,
			.memfd = true,
			.seal = true,
			.guard = true,
			.prefault = (cfg.flags & RMPSC_SHM_F_PREFAULT) != 0,
			.node = RMPSC_NODE_ANY,
		};

		err = rmpsc__region_map(&q, &map);
		if (err)
			return err == -EINVAL ? -ENOMEM : err;
	}
	/* Nobody else has the memfd yet: plain stores. The core writes its
	 * shared part (rc_init()); the identity around it is ours. */
	h = map.base;
	h->magic = RMPSC_SHM_MAGIC;
	h->version = RMPSC_SHM_VERSION;
	h->header_size = RMPSC_SHM_HEADER_SIZE;
	h->elem_size = cfg.elem_size;
	h->capacity = cfg.capacity;
	h->map_size = size;
	h->barrier = barrier;
	h->creator_pid = (int32_t)getpid();
	if (getrandom(&h->generation, sizeof h->generation, 0) != sizeof h->generation)
		h->generation = (uint32_t)rmpsc__now_ns();
	rc_init(&tmp, (rmpsc__rshared *)(void *)((unsigned char *)h + SHM_RING_OFF), 0,
		cfg.capacity, cfg.capacity, cfg.elem_size, (unsigned char *)h + RMPSC_SHM_HEADER_SIZE);
	err = shm_handle(&map, cfg.role, cfg.elem_size, cfg.capacity, barrier, out);
	if (err)
		rmpsc__region_unmap(&map);
	return err;
}

/*
 * Everything attach checks before it maps a byte, on a private copy of the
 * header read once (no value is fetched twice): 0 with the geometry in
 * @h, or -EPROTO (-EBADF for a descriptor that is not open).
 */
static int shm_validate(int fd, const rmpsc_shm_config *cfg, rmpsc_shm_header *h)
{
	const uint32_t need = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
	struct stat st;
	int seals;

	if (fstat(fd, &st) != 0)
		return -errno;
	RMPSC__CHECK(!S_ISREG(st.st_mode), -EPROTO);
	seals = fcntl(fd, F_GET_SEALS);
	/* Resizing sealed off, writing not: both sides write the ring. */
	RMPSC__CHECK(seals < 0 || ((uint32_t)seals & need) != need ||
			     (seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)),
		     -EPROTO);
	RMPSC__CHECK(st.st_size < (off_t)RMPSC_SHM_HEADER_SIZE ||
			     (uint64_t)st.st_size > RMPSC_SHM_MAP_MAX,
		     -EPROTO);
	RMPSC__CHECK(pread(fd, h, sizeof *h, 0) != (ssize_t)sizeof *h, -EPROTO);
	RMPSC__CHECK(h->magic != RMPSC_SHM_MAGIC || h->version != RMPSC_SHM_VERSION ||
			     h->header_size != RMPSC_SHM_HEADER_SIZE,
		     -EPROTO);
	RMPSC__CHECK(h->elem_size == 0 || h->elem_size > RMPSC_SHM_ELEM_SIZE_MAX ||
			     h->capacity == 0 || h->capacity > RMPSC_SHM_CAPACITY_MAX ||
			     !rmpsc__is_pow2(h->capacity),
		     -EPROTO);
	RMPSC__CHECK(h->barrier != RMPSC_SHM_BARRIER_GLOBAL && h->barrier != RMPSC_SHM_BARRIER_FENCE,
		     -EPROTO);
	RMPSC__CHECK(h->map_size != shm_map_size(h->elem_size, h->capacity) ||
			     h->map_size != (uint64_t)st.st_size || h->map_size > SIZE_MAX / 2,
		     -EPROTO);
	RMPSC__CHECK(h->ring_magic != RC_SHARED_MAGIC || h->ring_version != RC_SHARED_VERSION ||
			     h->ring_elem_size != h->elem_size || h->ring_capacity != h->capacity ||
			     h->ring_slots != h->capacity,
		     -EPROTO);
	RMPSC__CHECK(h->closed > RC_CLOSED || h->tail - h->head > h->capacity, -EPROTO);
	RMPSC__CHECK(h->closed == RC_CLOSED && h->final_tail - h->head > h->capacity, -EPROTO);
	RMPSC__CHECK(cfg->elem_size && cfg->elem_size != h->elem_size, -EPROTO);
	RMPSC__CHECK(cfg->capacity && cfg->capacity != h->capacity, -EPROTO);
	return 0;
}

RMPSC__COLD int rmpsc_shm_attach(int fd, const rmpsc_shm_config *ucfg, rmpsc_shm **out)
{
	rmpsc_shm_config cfg;
	rmpsc_shm_header h;
	struct rmpsc__region map;
	rmpsc__rcore *rc;
	int err;

	RMPSC__CHECK(!out, -EINVAL);
	*out = NULL;
	err = shm_read_config(ucfg, &cfg);
	if (err)
		return err;
	RMPSC__CHECK(fd < 0, -EBADF);
	err = shm_validate(fd, &cfg, &h);
	if (err)
		return err;
	err = shm_barrier_ready(h.barrier);
	if (err)
		return err;
	err = rmpsc__region_map_fd(fd, (size_t)h.map_size, (cfg.flags & RMPSC_SHM_F_PREFAULT) != 0,
				   false, &map);
	if (err)
		return err == -EBADF ? -EBADF : err == -EMFILE || err == -ENFILE ? err : -ENOMEM;
	err = shm_handle(&map, cfg.role, h.elem_size, h.capacity, h.barrier, out);
	if (err) {
		rmpsc__region_unmap(&map);
		return err;
	}
	/* The positions from the validated copy: this side's own index is
	 * its alone from now on (no other process of this role is attached),
	 * the peer's is read again, and checked, at the first refresh. */
	rc = &(*out)->core;
	if (cfg.role == RMPSC_SHM_PRODUCER) {
		rc->ptail = h.tail;
		rc->resv_pos = h.tail;
		rc->cached_head = h.head;
	} else {
		rc->chead = rc->phead = h.head;
		rc->cached_tail = rc->otail = rc->brd = h.head;
	}
	return 0;
}

int rmpsc_shm_fd(const rmpsc_shm *s)
{
	SHM_CHECK(s);
	return s->map.fd;
}

int rmpsc_shm_role(const rmpsc_shm *s)
{
	SHM_CHECK(s);
	return (int)s->role;
}

int64_t rmpsc_shm_capacity(const rmpsc_shm *s)
{
	SHM_CHECK(s);
	return (int64_t)rc_cap(&s->core);
}

int64_t rmpsc_shm_elem_size(const rmpsc_shm *s)
{
	SHM_CHECK(s);
	return s->core.esz;
}

int rmpsc_shm_heartbeat(rmpsc_shm *s)
{
	SHM_CHECK(s);
	SIDE_STORE(&s->mine->heartbeat_ns, rmpsc__now_ns());
	return 0;
}

int rmpsc_shm_watch(rmpsc_shm *s, int fd)
{
	int type, d;
	socklen_t tl = sizeof type;

	SHM_CHECK(s);
	RMPSC__CHECK(fd < 0, -EBADF);
	RMPSC__CHECK(s->nwatch >= RMPSC_SHM_WATCH_MAX, -ENOSPC);
	d = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (d < 0)
		return -errno;
	s->watch_sock[s->nwatch] = getsockopt(d, SOL_SOCKET, SO_TYPE, &type, &tl) == 0;
	s->watch[s->nwatch++] = d;
	return 0;
}

/* Ready for reading or hung up, now. */
static short poll_now(int fd, short events)
{
	struct pollfd p = {.fd = fd, .events = events};

	return poll(&p, 1, 0) == 1 ? p.revents : 0;
}

/*
 * Is the peer gone: a watched descriptor hung up (a socket: hang-up or
 * the peer's shutdown; a pidfd: readable, the process exited), its
 * section says detached, or the pid in its section no longer exists (a
 * pidfd of it, opened the first time that pid is seen). Never on the
 * data path.
 */
static bool shm_peer_gone(rmpsc_shm *s)
{
	uint32_t state;
	int32_t pid;

	if (s->gone)
		return true;
	for (uint32_t i = 0; i < s->nwatch; i++) {
		short ev = poll_now(s->watch[i], s->watch_sock[i] ? POLLRDHUP : POLLIN);

		if (ev & (POLLHUP | POLLERR | POLLRDHUP | POLLNVAL | (s->watch_sock[i] ? 0 : POLLIN)))
			return true;
	}
	state = SIDE_LOAD(&s->peer->state);
	if (state == RMPSC_SHM_SIDE_DETACHED)
		return true;
	if (state != RMPSC_SHM_SIDE_ATTACHED)
		return false;
	pid = SIDE_LOAD(&s->peer->pid);
	if (pid <= 0)
		return false;
	if (pid != s->peer_pid) {
		if (s->pidfd >= 0)
			close(s->pidfd);
		s->peer_pid = pid;
		s->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
		if (s->pidfd < 0)
			return errno == ESRCH || (errno != EMFILE && errno != ENFILE && !pid_alive(pid));
	}
	if (s->pidfd < 0)
		return !pid_alive(pid);
	return (poll_now(s->pidfd, POLLIN) & POLLIN) != 0;
}

/* The peer is gone: end the ring on this side (everything committed stays
 * deliverable) and remember why, for -ECONNRESET. */
static bool shm_check_peer(rmpsc_shm *s)
{
	if (s->gone)
		return true;
	if (!shm_peer_gone(s))
		return false;
	/* A peer that closed the ring and then went ended it cleanly: the
	 * consumer's end stays -EPIPE. Gone in the middle of a close (the
	 * end not decided) is a death like any other. */
	if (atomic_load_explicit(&s->core.sh->closed, memory_order_acquire) == RC_CLOSED)
		return false;
	s->gone = 1;
	rmpsc__rc_close(&s->core);
	return true;
}

int rmpsc_shm_peer(rmpsc_shm *s, int64_t within_ns)
{
	uint64_t hb, now;

	SHM_CHECK(s);
	/* Gone after a clean close too (shm_check_peer() then leaves the
	 * ring's end as it is). */
	if (shm_check_peer(s) || shm_peer_gone(s))
		return RMPSC_SHM_PEER_GONE;
	if (SIDE_LOAD(&s->peer->state) != RMPSC_SHM_SIDE_ATTACHED)
		return RMPSC_SHM_PEER_NONE;
	if (within_ns < 0)
		return RMPSC_SHM_PEER_ALIVE;
	hb = SIDE_LOAD(&s->peer->heartbeat_ns);
	now = rmpsc__now_ns();
	return hb <= now && now - hb <= (uint64_t)within_ns ? RMPSC_SHM_PEER_ALIVE
							   : RMPSC_SHM_PEER_STALE;
}

/*
 * What a call's failure becomes: -EPROTO once the view is broken (and
 * every call after: the entry check); -ECONNRESET for the -EPIPE of a
 * ring ended because the peer went; a close word the protocol never
 * writes, seen by any call that fails (empty, full, closed), breaks the
 * view.
 */
static RMPSC__COLD int shm_err(rmpsc_shm *s, int r)
{
	if (atomic_load_explicit(&s->core.sh->closed, memory_order_relaxed) > RC_CLOSED)
		rmpsc__rc_index_bad(&s->core);
	if (rc_broken(&s->core))
		return -EPROTO;
	if (r == -EPIPE && s->gone)
		return -ECONNRESET;
	return r;
}

static RMPSC__ALWAYS_INLINE int shm_ret(rmpsc_shm *s, int r)
{
	return RMPSC__LIKELY(r >= 0) ? r : shm_err(s, r);
}

#define SHM_LIVE(s) RMPSC__CHECK(rc_broken(&(s)->core), -EPROTO)

int64_t rmpsc_shm_len(const rmpsc_shm *s)
{
	SHM_CHECK(s);
	SHM_LIVE(s);
	return (int64_t)rc_len(&s->core);
}

int rmpsc_shm_is_closed(const rmpsc_shm *s)
{
	SHM_CHECK(s);
	SHM_LIVE(s);
	return rc_is_closed(&s->core);
}

int rmpsc_shm_close(rmpsc_shm *s)
{
	SHM_CHECK(s);
	SHM_LIVE(s);
	rmpsc__rc_close(&s->core);
	return rc_broken(&s->core) ? -EPROTO : 0;
}

RMPSC__COLD void rmpsc_shm_destroy(rmpsc_shm *s)
{
	if (!shm_any(s))
		return;
	if (!rc_broken(&s->core))
		rmpsc__rc_close(&s->core);
	__atomic_store_n(&s->mine->state, (uint32_t)RMPSC_SHM_SIDE_DETACHED, __ATOMIC_SEQ_CST);
	for (uint32_t i = 0; i < s->nwatch; i++)
		close(s->watch[i]);
	if (s->pidfd >= 0)
		close(s->pidfd);
	rmpsc__region_unmap(&s->map);
	s->core.magic = RMPSC__MAGIC_DEAD;
	rmpsc__mem_unmap(s, s->core.map_len);
}

/* ---- producer -------------------------------------------------------------- */

int rmpsc_shm_reserve(rmpsc_shm *s, uint32_t n, rmpsc_span *out)
{
	SHM_PROD(s);
	SHM_LIVE(s);
	RMPSC__CHECK(!out, -EINVAL);
	return shm_ret(s, rc_reserve(&s->core, rmpsc__int_count(n), false, out));
}

int rmpsc_shm_commit(rmpsc_shm *s, uint32_t n)
{
	SHM_PROD(s);
	SHM_LIVE(s);
	return shm_ret(s, rc_commit(&s->core, n));
}

/*
 * The single-element push and pop keep the in-process ring's shape
 * (ring_core.h, before rc_push1_fast_via()): a leaf with no stack frame,
 * every other case a tail call. The general paths map the core's codes
 * (shm_ret()); the fast paths return only 0, or -EAGAIN for an empty ring
 * seen open, which need no mapping. A close met after a publication
 * (rmpsc__rc_publish_closed()) reports the core's code: this handle's own
 * detection of a gone peer closed the ring before, which sends the call to
 * the general path.
 */
static RMPSC__COLD int shm_push_general(rmpsc__rcore *rc, const void *item)
{
	return shm_ret((rmpsc_shm *)(void *)rc, rmpsc__rc_push1(rc, item));
}

static RMPSC__COLD int shm_pop_general(rmpsc__rcore *rc, void *item)
{
	return shm_ret((rmpsc_shm *)(void *)rc, rmpsc__rc_pop1(rc, item));
}

/* A push or pop's bad handle, broken view or NULL item, in that order. */
static RMPSC__COLD int shm_item_error(const rmpsc_shm *s, uint32_t magic, const void *item)
{
	RMPSC__CHECK(!shm_is(s, magic), -EBADF);
	SHM_LIVE(s);
	RMPSC__CHECK(!item, -EINVAL);
	return 0;
}

int rmpsc_shm_push(rmpsc_shm *s, const void *item)
{
	if (RMPSC__UNLIKELY(!shm_is(s, RMPSC__MAGIC_SHM_PROD) || rc_broken(&s->core) || !item))
		return shm_item_error(s, RMPSC__MAGIC_SHM_PROD, item);
	return rc_push1_fast_via(&s->core, item, shm_push_general);
}

int rmpsc_shm_push_n(rmpsc_shm *s, const void *items, uint32_t n)
{
	SHM_PROD(s);
	SHM_LIVE(s);
	RMPSC__CHECK(!items && n, -EINVAL);
	return shm_ret(s, rc_push_n(&s->core, items, rmpsc__int_count(n), false));
}

/* ---- consumer -------------------------------------------------------------- */

int rmpsc_shm_readable(rmpsc_shm *s, uint32_t n, rmpsc_span *out)
{
	SHM_CONS(s);
	SHM_LIVE(s);
	RMPSC__CHECK(!out, -EINVAL);
	return shm_ret(s, rc_readable(&s->core, rmpsc__int_count(n), out));
}

int rmpsc_shm_advance(rmpsc_shm *s, uint32_t n)
{
	SHM_CONS(s);
	SHM_LIVE(s);
	return shm_ret(s, rc_advance(&s->core, n));
}

int rmpsc_shm_pop(rmpsc_shm *s, void *item)
{
	if (RMPSC__UNLIKELY(!shm_is(s, RMPSC__MAGIC_SHM_CONS) || rc_broken(&s->core) || !item))
		return shm_item_error(s, RMPSC__MAGIC_SHM_CONS, item);
	return rc_pop1_fast_via(&s->core, item, true, shm_pop_general);
}

int rmpsc_shm_pop_n(rmpsc_shm *s, void *items, uint32_t n)
{
	SHM_CONS(s);
	SHM_LIVE(s);
	RMPSC__CHECK(!items && n, -EINVAL);
	return shm_ret(s, rc_pop_n(&s->core, items, rmpsc__int_count(n), false, true));
}

/* ---- blocking calls -------------------------------------------------------- */

/*
 * What a waiting call does between its slices (shm_timed(), and the mux
 * for each of its rings): record a heartbeat; decide a close the peer
 * began and has left undecided for RC_SHM_DECIDE_NS (a stopped or hostile
 * peer: a live one decides in a few instructions), as any closer may, so
 * that the consumer gets what was committed and its end; and look at the
 * peer (shm_check_peer()). True when the peer is gone.
 */
static bool shm_look(rmpsc_shm *s)
{
	const uint64_t now = rmpsc__now_ns();
	const uint32_t cl = atomic_load_explicit(&s->core.sh->closed, memory_order_relaxed);

	SIDE_STORE(&s->mine->heartbeat_ns, now);
	if (cl != RC_CLOSING && cl != RC_DECIDING)
		s->closing_since = 0;
	else if (!s->closing_since)
		s->closing_since = now;
	else if (now - s->closing_since >= RC_SHM_DECIDE_NS)
		rmpsc__rc_close(&s->core);
	return shm_check_peer(s);
}

/*
 * The core's blocking call, in slices of at most SHM_SLICE_NS: between
 * slices this side records a heartbeat and looks at the peer; a peer gone
 * ends the ring here (shm_check_peer()) and the call takes one last look,
 * which drains what is left or reports the end. The caller's strategy is
 * resolved first, so that RMPSC_WAIT_DEADLINE caps the whole call, not
 * each slice.
 */
enum shm_op { OP_RESERVE, OP_PUSH, OP_PUSH_N, OP_READABLE, OP_POP, OP_POP_N };

struct shm_call {
	enum shm_op op;
	uint32_t n;
	void *buf;
	rmpsc_span *span;
};

static int shm_slice(rmpsc_shm *s, const struct shm_call *c, int64_t t, const rmpsc_wait *w)
{
	rmpsc__rcore *rc = &s->core;

	switch (c->op) {
	case OP_RESERVE:
		return rmpsc__rc_reserve_timed(rc, c->n, c->span, t, w);
	case OP_PUSH:
		return rmpsc__rc_push_timed(rc, c->buf, t, w);
	case OP_PUSH_N:
		return rmpsc__rc_push_n_timed(rc, c->buf, c->n, t, w);
	case OP_READABLE:
		return rmpsc__rc_readable_timed(rc, c->n, c->span, t, w);
	case OP_POP:
		return rmpsc__rc_pop_timed(rc, c->buf, t, w);
	default:
		return rmpsc__rc_pop_n_timed(rc, c->buf, c->n, t, w);
	}
}

static int shm_timed(rmpsc_shm *s, const struct shm_call *c, int64_t timeout_ns,
		     const rmpsc_wait *uw)
{
	rmpsc_wait w;
	uint64_t deadline;
	int err = rmpsc__wait_resolve(uw, &s->core.wait, &w);

	if (err)
		return err;
	timeout_ns = rmpsc__wait_timeout(&w, timeout_ns);
	deadline = rmpsc__deadline(timeout_ns);
	for (;;) {
		int64_t slice = SHM_SLICE_NS;
		int r;

		if (deadline != UINT64_MAX) {
			uint64_t now = rmpsc__now_ns();
			uint64_t left = now >= deadline ? 0 : deadline - now;

			if (left < (uint64_t)slice)
				slice = (int64_t)left;
		}
		r = shm_slice(s, c, slice, &w);
		if (r != -ETIMEDOUT)
			return shm_ret(s, r);
		if (rc_broken(&s->core))
			return -EPROTO;
		if (deadline != UINT64_MAX && rmpsc__now_ns() >= deadline)
			return shm_err(s, -ETIMEDOUT);
		if (shm_look(s)) {
			r = shm_slice(s, c, 0, &w);
			/* Nothing to wait for: the producer's -EPIPE, the
			 * consumer's empty end. */
			return shm_ret(s, r == -ETIMEDOUT || r == -EAGAIN ? -EPIPE : r);
		}
	}
}

#define SHM_TIMED(s, ...)                                                      \
	do {                                                                   \
		const struct shm_call c_ = {__VA_ARGS__};                      \
		return shm_timed((s), &c_, timeout_ns, w);                     \
	} while (0)

int rmpsc_shm_reserve_timed(rmpsc_shm *s, uint32_t n, rmpsc_span *out, int64_t timeout_ns,
			    const rmpsc_wait *w)
{
	SHM_PROD(s);
	SHM_LIVE(s);
	RMPSC__CHECK(!out, -EINVAL);
	SHM_TIMED(s, .op = OP_RESERVE, .n = rmpsc__int_count(n), .span = out);
}

int rmpsc_shm_push_timed(rmpsc_shm *s, const void *item, int64_t timeout_ns, const rmpsc_wait *w)
{
	SHM_PROD(s);
	SHM_LIVE(s);
	RMPSC__CHECK(!item, -EINVAL);
	SHM_TIMED(s, .op = OP_PUSH, .buf = (void *)(uintptr_t)item);
}

int rmpsc_shm_push_n_timed(rmpsc_shm *s, const void *items, uint32_t n, int64_t timeout_ns,
			   const rmpsc_wait *w)
{
	SHM_PROD(s);
	SHM_LIVE(s);
	RMPSC__CHECK(!items && n, -EINVAL);
	SHM_TIMED(s, .op = OP_PUSH_N, .n = n, .buf = (void *)(uintptr_t)items);
}

int rmpsc_shm_readable_timed(rmpsc_shm *s, uint32_t n, rmpsc_span *out, int64_t timeout_ns,
			     const rmpsc_wait *w)
{
	SHM_CONS(s);
	SHM_LIVE(s);
	RMPSC__CHECK(!out, -EINVAL);
	SHM_TIMED(s, .op = OP_READABLE, .n = rmpsc__int_count(n), .span = out);
}

int rmpsc_shm_pop_timed(rmpsc_shm *s, void *item, int64_t timeout_ns, const rmpsc_wait *w)
{
	SHM_CONS(s);
	SHM_LIVE(s);
	RMPSC__CHECK(!item, -EINVAL);
	SHM_TIMED(s, .op = OP_POP, .buf = item);
}

int rmpsc_shm_pop_n_timed(rmpsc_shm *s, void *items, uint32_t n, int64_t timeout_ns,
			  const rmpsc_wait *w)
{
	SHM_CONS(s);
	SHM_LIVE(s);
	RMPSC__CHECK(!items && n, -EINVAL);
	SHM_TIMED(s, .op = OP_POP_N, .n = n, .buf = items);
}

/* ==== one consumer, many producer processes ================================ */

/*
 * A mux is the consumer side of several shared rings: their consumer
 * handles, each with its adaptive-skip state (as the MPSC channel's
 * consumer: a ring found empty is skipped for 1, 2, 4 ... 64 rounds), and
 * one sleep for all: the consumer registers in every ring's wake word,
 * issues one heavy barrier (a fence, and the global membarrier when any
 * ring uses it: the E4 handshake of each ring, against that ring's
 * producer), looks at every ring once more and sleeps in futex_waitv(2)
 * on every ring's futex word (E5). Everything here is the consumer
 * thread's alone.
 */
enum { MUX_SKIP_MAX_LEVEL = 6 };

struct mux_ring {
	rmpsc_shm *s;  /* NULL: a free entry */
	uint8_t level; /* consecutive empty looks, capped */
	uint8_t left;  /* rounds still to skip */
};

struct rmpsc_shm_mux {
	uint32_t magic;
	uint32_t max;
	uint32_t count;
	uint32_t cursor; /* where the next round starts */
	uint32_t esz;    /* the rings' element size (0: no ring yet) */
	size_t map_len;
	struct mux_ring ring[]; /* [max] */
};

#define MUX_CHECK(m) RMPSC__CHECK(!RMPSC__HANDLE_IS(m, RMPSC__MAGIC_SHM_MUX), -EBADF)

int rmpsc_shm_mux_create(uint32_t max_rings, rmpsc_shm_mux **out)
{
	rmpsc_shm_mux *m;
	size_t len;

	RMPSC__CHECK(!out, -EINVAL);
	*out = NULL;
	RMPSC__CHECK(max_rings == 0 || max_rings > RMPSC_SHM_MUX_MAX, -EINVAL);
	m = rmpsc__mem_map(sizeof *m + max_rings * sizeof m->ring[0], 0, RMPSC_NODE_ANY, &len);
	if (!m)
		return -ENOMEM;
	m->max = max_rings;
	m->map_len = len;
	m->magic = RMPSC__MAGIC_SHM_MUX;
	*out = m;
	return 0;
}

void rmpsc_shm_mux_destroy(rmpsc_shm_mux *m)
{
	if (!RMPSC__HANDLE_IS(m, RMPSC__MAGIC_SHM_MUX))
		return;
	m->magic = RMPSC__MAGIC_DEAD;
	rmpsc__mem_unmap(m, m->map_len);
}

int rmpsc_shm_mux_add(rmpsc_shm_mux *m, rmpsc_shm *s)
{
	uint32_t free_at = UINT32_MAX;

	MUX_CHECK(m);
	RMPSC__CHECK(!shm_is(s, RMPSC__MAGIC_SHM_CONS), -EBADF);
	RMPSC__CHECK(m->count && s->core.esz != m->esz, -EINVAL);
	for (uint32_t i = 0; i < m->max; i++) {
		RMPSC__CHECK(m->ring[i].s == s, -EINVAL);
		if (!m->ring[i].s && free_at == UINT32_MAX)
			free_at = i;
	}
	RMPSC__CHECK(free_at == UINT32_MAX, -ENOSPC);
	m->ring[free_at] = (struct mux_ring){.s = s};
	m->esz = s->core.esz;
	m->count++;
	return (int)free_at;
}

int rmpsc_shm_mux_remove(rmpsc_shm_mux *m, uint32_t index)
{
	MUX_CHECK(m);
	RMPSC__CHECK(index >= m->max || !m->ring[index].s, -ENOENT);
	m->ring[index].s = NULL;
	m->count--;
	return 0;
}

int rmpsc_shm_mux_count(const rmpsc_shm_mux *m)
{
	MUX_CHECK(m);
	return (int)m->count;
}

/* One ring's take, as rmpsc_shm_pop_n() after its checks. */
static int mux_take_one(rmpsc_shm *s, void *items, uint32_t n)
{
	if (RMPSC__UNLIKELY(rc_broken(&s->core)))
		return -EPROTO;
	return shm_ret(s, rc_pop_n(&s->core, items, n, false, true));
}

/*
 * One round from the cursor: the first ring with data gives up to @n
 * elements; a ring that ended is reported and leaves the mux. @all:
 * look at skipped rings too (before sleeping, and when a round with skips
 * found nothing). -EAGAIN when no ring had anything.
 */
static int mux_round(rmpsc_shm_mux *m, void *items, uint32_t n, uint32_t *index, bool all)
{
	bool skipped = false;

	for (uint32_t k = 0; k < m->max; k++) {
		uint32_t i = (m->cursor + k) % m->max;
		struct mux_ring *r = &m->ring[i];
		int got;

		if (!r->s)
			continue;
		if (r->left && !all) {
			r->left--;
			skipped = true;
			continue;
		}
		got = mux_take_one(r->s, items, n);
		if (got > 0) {
			r->level = 0;
			r->left = 0;
			m->cursor = (i + 1) % m->max;
			*index = i;
			return got;
		}
		if (got == -EAGAIN) {
			if (r->level < MUX_SKIP_MAX_LEVEL)
				r->level++;
			r->left = (uint8_t)((1u << r->level) - 1);
			continue;
		}
		/* The ring's end: reported once, and it leaves the mux. */
		*index = i;
		r->s = NULL;
		m->count--;
		return got;
	}
	return skipped ? mux_round(m, items, n, index, true) : -EAGAIN;
}

static int mux_take(rmpsc_shm_mux *m, void *items, uint32_t n, uint32_t *index, bool all)
{
	if (!m->count)
		return -ENOENT;
	if (!n)
		return 0;
	return mux_round(m, items, rmpsc__int_count(n), index, all);
}

int rmpsc_shm_mux_pop_n(rmpsc_shm_mux *m, void *items, uint32_t n, uint32_t *index)
{
	MUX_CHECK(m);
	RMPSC__CHECK(!items || !index, -EINVAL);
	return mux_take(m, items, n, index, false);
}

/* Between slices, every ring as a shared ring's timed call does
 * (shm_look()): a gone peer's ring, or a close left undecided, is ended
 * here and then reported by the next take. */
static void mux_check_peers(rmpsc_shm_mux *m)
{
	for (uint32_t i = 0; i < m->max; i++)
		if (m->ring[i].s)
			(void)shm_look(m->ring[i].s);
}

/*
 * One sleep for every ring, until @until: register in each ring's wake
 * word, one heavy barrier, look again (E4), then futex_waitv on each
 * ring's futex word at the value read before registering (E5). Without
 * futex_waitv, a 1 ms nap. @reg: register as a sleeper (the RMPSC_WAIT_SLEEP
 * kind does not: it polls, woken only by closes, as wait.c's).
 */
static int mux_sleep(rmpsc_shm_mux *m, void *items, uint32_t n, uint32_t *index, uint64_t until,
		     bool reg)
{
	struct futex_waitv fw[RMPSC_SHM_MUX_MAX];
	_Atomic uint32_t *reg_at[RMPSC_SHM_MUX_MAX];
	uint32_t nw = 0;
	bool global = false;
	int r;

	for (uint32_t i = 0; i < m->max; i++) {
		rmpsc_shm *s = m->ring[i].s;

		if (!s)
			continue;
		fw[nw] = (struct futex_waitv){
			/* E5 acquire: a wake before this load is seen by the look below. */
			.val = atomic_load_explicit(s->core.cseq, memory_order_acquire),
			.uaddr = (uint64_t)(uintptr_t)s->core.cseq,
			.flags = FUTEX_32,
		};
		/* The words registered in, kept: the look below may take a
		 * ring that ended out of the mux. */
		reg_at[nw] = s->core.cwait;
		nw++;
		if (reg)
			atomic_fetch_add_explicit(s->core.cwait, 1, memory_order_seq_cst); /* E4 */
		global |= s->core.barrier == RMPSC__BARRIER_SHARED_GLOBAL;
	}
	if (reg)
		rmpsc__heavy_barrier(global ? RMPSC__BARRIER_SHARED_GLOBAL
					    : RMPSC__BARRIER_SHARED_FENCE); /* E4 */
	r = mux_take(m, items, n, index, true);
	if (r == -EAGAIN) {
		struct timespec ts = rmpsc__ns_to_ts(until);

		if (syscall(SYS_futex_waitv, fw, nw, 0, &ts, CLOCK_MONOTONIC) < 0 && errno == ENOSYS) {
			struct timespec nap = {.tv_nsec = 1000000};

			nanosleep(&nap, NULL);
		}
	}
	if (reg)
		for (uint32_t k = 0; k < nw; k++)
			atomic_fetch_sub_explicit(reg_at[k], 1, memory_order_relaxed);
	return r;
}

int rmpsc_shm_mux_pop_n_timed(rmpsc_shm_mux *m, void *items, uint32_t n, uint32_t *index,
			      int64_t timeout_ns, const rmpsc_wait *uw)
{
	rmpsc_wait w, d;
	uint64_t deadline, next_look;
	uint32_t polls = 0, yields = 0;
	int r;

	MUX_CHECK(m);
	RMPSC__CHECK(!items || !index, -EINVAL);
	rmpsc__wait_default(&d);
	r = rmpsc__wait_resolve(uw, &d, &w);
	if (r)
		return r;
	r = mux_take(m, items, n, index, false);
	if (r != -EAGAIN)
		return r;
	timeout_ns = rmpsc__wait_timeout(&w, timeout_ns);
	if (timeout_ns == 0)
		return -ETIMEDOUT;
	deadline = rmpsc__deadline(timeout_ns);
	next_look = rmpsc__now_ns() + SHM_SLICE_NS;
	for (;;) {
		bool spin = w.kind == RMPSC_WAIT_SPIN || polls < w.spin_count;
		uint64_t now;

		if (spin) {
			rmpsc__cpu_relax();
			polls++;
			r = mux_take(m, items, n, index, false);
		} else if (w.kind == RMPSC_WAIT_YIELD || yields < w.yield_count) {
			sched_yield();
			yields++;
			r = mux_take(m, items, n, index, true);
		} else {
			uint64_t until = next_look < deadline ? next_look : deadline;

			if (w.kind == RMPSC_WAIT_SLEEP) {
				now = rmpsc__now_ns();
				if (now + (uint64_t)w.sleep_ns < until)
					until = now + (uint64_t)w.sleep_ns;
			}
			r = mux_sleep(m, items, n, index, until, w.kind != RMPSC_WAIT_SLEEP);
			if (r == -EAGAIN)
				r = mux_take(m, items, n, index, true);
		}
		if (r != -EAGAIN)
			return r;
		/* The clock costs more than a poll: in the spin phase, every 64. */
		if (spin && (polls & 63))
			continue;
		now = rmpsc__now_ns();
		if (now >= deadline)
			return -ETIMEDOUT;
		if (now >= next_look) {
			mux_check_peers(m);
			next_look = now + SHM_SLICE_NS;
		}
	}
}
