/* SPDX-License-Identifier: MIT */
/*
 * io_uring with pool slabs (ringmpsc/uring.h), through liburing.
 *
 * Ownership. The pool's slab state has a bit for "the kernel holds it"
 * (pool.c, ST_IO), set by rmpsc__pool_io_begin() with a CAS against the
 * free's CAS, so of a free and a submission of one handle exactly one
 * wins, and cleared by rmpsc__pool_io_end() only when the request's final
 * CQE has been reaped (for SEND_ZC, its notification). Everything here
 * reduces to that: a submission sets the bit before the SQE exists and
 * clears it again only if the SQE was never pushed; once pushed, the
 * request counts as in flight whatever io_uring_submit() returns, since
 * the kernel may have taken it (tokio-rs/tokio#8185). Registrations,
 * buffer rings and engines hold a reference on the pool, so a pool
 * destroyed under them keeps its memory until they go, and a tier with a
 * slab still held is never unmapped.
 *
 * Engine. One mutex serialises the submission side (liburing's SQ state
 * and the op table's free list); the completion side (CQ, the provided
 * buffers, delivery into the ring or channel) belongs to one reaper: the
 * engine's thread, or the caller of reap/run. In THREAD mode only the
 * engine's thread enters the kernel with SQEs (io_uring cancels a request
 * whose submitter exits), woken through kick_fd when it sleeps. Each
 * request has a slot in the op table; its user_data is the slot and the
 * slot's generation, and internal requests (cancels, the kick poll)
 * carry the top bit. `inflight`
 * counts slots the kernel holds: incremented under the mutex when the SQE
 * is pushed, decremented by the reaper at the final CQE.
 *
 * Synchronization (docs/design.md, "io_uring"):
 *  - U1, the slab's in-kernel bit (pool.c's state word): set by CAS in
 *    rmpsc__pool_io_begin() by the submitter, cleared with release by
 *    rmpsc__pool_io_end() in the reaper after the final CQE; pairs with
 *    the acquire loads of the pool's accessors and frees.
 *  - U2, op slots: written by the submitter under the mutex before the
 *    SQE is pushed; read and ended (back on the free list) by the reaper
 *    under the mutex. The kernel's CQ ring orders an SQE before its CQE,
 *    but the mutex is the edge between the two threads' accesses.
 *  - U3, `inflight`: relaxed increment under the mutex when an SQE is
 *    pushed; release decrement by the reaper after a slot's last use;
 *    acquire in destroy's drain and rmpsc_io_inflight().
 *  - `stopping`, `sleeping`, `output_closed`, `pool_gone`: under the
 *    mutex. The engine's thread sets `sleeping` after submitting what is
 *    queued and before it waits; a submitter that queues after that sees
 *    it and writes kick_fd (the poll's CQE wakes the thread), one that
 *    queued before had its SQE submitted. destroy sets `stopping` and
 *    kicks the same way.
 *  - `queued`: release store by a submitter (under the mutex) when it
 *    queues for the engine's thread; acquire load in that thread's look
 *    before sleeping; cleared under the mutex before each submit.
 *  - Reaper-only: the CQ, the provided-buffer ring (its `posted` count is
 *    atomic for rmpsc_io_get_info()), `held`, `rearms`, `kick_seen`.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "ringmpsc/uring.h"

_Static_assert(sizeof(rmpsc_uring_reg_info) == RMPSC_URING_REG_INFO_SIZE_V1, "reg info v1");
_Static_assert(sizeof(rmpsc_io_config) == RMPSC_IO_CONFIG_SIZE_V1, "io config v1");
_Static_assert(sizeof(rmpsc_io_info) == RMPSC_IO_INFO_SIZE_V1, "io info v1");
_Static_assert(sizeof(rmpsc_io_cqe) == 24, "io cqe frozen");

#ifdef RMPSC_HAVE_URING

#include <linux/capability.h>
#include <liburing.h>

/* Kernel interfaces newer than liburing 2.3's headers (used only where
 * rmpsc_uring_features() found them). */
#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3)
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif
#define RMPSC__PBUF_RING_INC 2u        /* IOU_PBUF_RING_INC (6.12) */
#define RMPSC__OP_READ_MULTISHOT 49u   /* IORING_OP_READ_MULTISHOT (6.7) */

/* ---- probing --------------------------------------------------------------- */

static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static int64_t probe_result;

/* io_uring_setup's errors as the library reports them: no io_uring here
 * (-ENOSYS), or one that is switched off (the sysctl, a filter: EPERM). */
static int setup_error(int err)
{
	if (err == -ENOSYS)
		return -ENOSYS;
	if (err == -EPERM || err == -EACCES || err == -EOPNOTSUPP)
		return -EOPNOTSUPP;
	return err == -ENOMEM || err == -EMFILE || err == -ENFILE ? -ENOMEM : err;
}

/* Wait for the CQE of user_data @ud (and, when it has F_MORE, its
 * notification): its result, and whether a notification said "copied". */
static int probe_wait(struct io_uring *r, uint64_t ud, int *res, bool *copied)
{
	bool more = true, first = true;

	while (more) {
		struct io_uring_cqe *cqe;
		int err = io_uring_wait_cqe(r, &cqe);

		if (err)
			return err;
		if (cqe->user_data == ud) {
			if (first) {
				*res = cqe->res;
				first = false;
				more = (cqe->flags & IORING_CQE_F_MORE) != 0;
			} else if (cqe->flags & IORING_CQE_F_NOTIF) {
				*copied = (uint32_t)cqe->res & IORING_NOTIF_USAGE_ZC_COPIED;
				more = false;
			}
		}
		io_uring_cqe_seen(r, cqe);
	}
	return 0;
}

/* SEND_ZC with REPORT_USAGE on an AF_UNIX pair: a kernel that knows the
 * flag fails the send itself (-EOPNOTSUPP: AF_UNIX has no zero copy), one
 * that does not refuses the flag (-EINVAL) before looking at the socket. */
static bool probe_report_usage(struct io_uring *r)
{
	struct io_uring_sqe *sqe;
	int sv[2], res = 0;
	bool copied = false, ok = false;
	char byte = 0;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return false;
	sqe = io_uring_get_sqe(r);
	if (sqe) {
		io_uring_prep_send_zc(sqe, sv[0], &byte, 1, MSG_NOSIGNAL,
				      IORING_SEND_ZC_REPORT_USAGE);
		sqe->user_data = 7;
		if (io_uring_submit(r) == 1 && !probe_wait(r, 7, &res, &copied))
			ok = res != -EINVAL;
	}
	close(sv[0]);
	close(sv[1]);
	return ok;
}

/* Register a one-entry buffer ring with @flags as group 0x7ff0: 0 when
 * the kernel accepts them. */
static int probe_buf_ring(struct io_uring *r, uint16_t flags)
{
	const long pg = sysconf(_SC_PAGESIZE);
	struct io_uring_buf_reg reg;
	void *mem = mmap(NULL, (size_t)pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			 -1, 0);
	int err;

	if (mem == MAP_FAILED)
		return -ENOMEM;
	memset(&reg, 0, sizeof reg);
	reg.ring_addr = (uintptr_t)mem;
	reg.ring_entries = 1;
	reg.bgid = 0x7ff0;
	reg.pad = flags; /* `flags` from liburing 2.8 on */
	err = io_uring_register_buf_ring(r, &reg, 0);
	if (!err)
		io_uring_unregister_buf_ring(r, 0x7ff0);
	munmap(mem, (size_t)pg);
	return err;
}

/* A multishot recv selecting from an (empty) buffer ring, on an idle
 * AF_UNIX socket, then cancelled: -ECANCELED where the kernel has it,
 * -EINVAL where it does not know the flag. */
static bool probe_recv_multishot(struct io_uring *r)
{
	const long pg = sysconf(_SC_PAGESIZE);
	struct io_uring_buf_reg reg;
	struct io_uring_sqe *sqe;
	int sv[2], res = 0;
	bool copied = false, ok = false;
	void *mem = mmap(NULL, (size_t)pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			 -1, 0);

	if (mem == MAP_FAILED)
		return false;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
		munmap(mem, (size_t)pg);
		return false;
	}
	memset(&reg, 0, sizeof reg);
	reg.ring_addr = (uintptr_t)mem;
	reg.ring_entries = 1;
	reg.bgid = 0x7ff1;
	if (!io_uring_register_buf_ring(r, &reg, 0)) {
		sqe = io_uring_get_sqe(r);
		io_uring_prep_recv_multishot(sqe, sv[0], NULL, 0, 0);
		sqe->flags |= IOSQE_BUFFER_SELECT;
		sqe->buf_group = 0x7ff1;
		sqe->user_data = 8;
		sqe = io_uring_get_sqe(r);
		io_uring_prep_cancel64(sqe, 8, 0);
		sqe->user_data = 9;
		if (io_uring_submit(r) == 2 && !probe_wait(r, 8, &res, &copied))
			ok = res != -EINVAL;
		io_uring_unregister_buf_ring(r, 0x7ff1);
	}
	close(sv[0]);
	close(sv[1]);
	munmap(mem, (size_t)pg);
	return ok;
}

static bool probe_setup_flags(uint32_t flags)
{
	struct io_uring r;
	struct io_uring_params prm;

	memset(&prm, 0, sizeof prm);
	prm.flags = flags;
	if (io_uring_queue_init_params(2, &r, &prm))
		return false;
	io_uring_queue_exit(&r);
	return true;
}

static void probe_run(void)
{
	struct io_uring r;
	struct io_uring_probe *pr;
	int64_t f = RMPSC_URING_HAS_RING;
	int err = io_uring_queue_init(4, &r, 0);

	if (err) {
		probe_result = setup_error(err);
		return;
	}
	pr = io_uring_get_probe_ring(&r);
	if (pr) {
		if (io_uring_opcode_supported(pr, IORING_OP_READ_FIXED) &&
		    io_uring_opcode_supported(pr, IORING_OP_WRITE_FIXED))
			f |= RMPSC_URING_HAS_FIXED;
		if (io_uring_opcode_supported(pr, IORING_OP_SEND_ZC))
			f |= RMPSC_URING_HAS_SEND_ZC;
		if (io_uring_opcode_supported(pr, RMPSC__OP_READ_MULTISHOT))
			f |= RMPSC_URING_HAS_READ_MULTISHOT;
		io_uring_free_probe(pr);
	}
	if (!probe_buf_ring(&r, 0)) {
		f |= RMPSC_URING_HAS_BUF_RING;
		if (probe_recv_multishot(&r))
			f |= RMPSC_URING_HAS_RECV_MULTISHOT;
		if (!probe_buf_ring(&r, RMPSC__PBUF_RING_INC))
			f |= RMPSC_URING_HAS_BUF_RING_INC;
	}
	if ((f & RMPSC_URING_HAS_SEND_ZC) && probe_report_usage(&r))
		f |= RMPSC_URING_HAS_ZC_REPORT_USAGE;
	io_uring_queue_exit(&r);
	if (probe_setup_flags(IORING_SETUP_SINGLE_ISSUER))
		f |= RMPSC_URING_HAS_SINGLE_ISSUER;
	if (probe_setup_flags(IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN))
		f |= RMPSC_URING_HAS_DEFER_TASKRUN;
	probe_result = f;
}

int64_t rmpsc_uring_features(void)
{
	pthread_once(&probe_once, probe_run);
	return probe_result;
}

/* ---- fixed-buffer registration ------------------------------------------------ */

struct rmpsc_uring_reg {
	uint32_t magic;
	uint32_t flags;
	rmpsc_pool *pool;
	uint32_t first;  /* first table entry */
	uint32_t nbuf;   /* entries */
	uint32_t ntiers;
	uint32_t tier_first[RMPSC_POOL_TIERS_MAX]; /* first entry of each tier */
	uint32_t per_chunk[RMPSC_POOL_TIERS_MAX];  /* slabs per entry */
	uint64_t tier_slab0[RMPSC_POOL_TIERS_MAX]; /* pool-wide number of slab 0 */
	_Atomic uint64_t held;      /* preps not yet completed */
	_Atomic uint64_t *held_map; /* a bit per slab: prepared through us */
};

/* In the initial user namespace: the kernel checks CAP_IPC_LOCK there
 * (capable()), so a capability held only in a child namespace counts for
 * nothing. */
static bool in_init_user_ns(void)
{
	unsigned long a = 1, b = 1, n = 0;
	FILE *f = fopen("/proc/self/uid_map", "re");
	bool init = false;

	if (f) {
		init = fscanf(f, "%lu %lu %lu", &a, &b, &n) == 3 && a == 0 && b == 0 &&
		       n == 4294967295ul;
		fclose(f);
	}
	return init;
}

/* Registered buffers are charged to RLIMIT_MEMLOCK unless the ring was
 * created with CAP_IPC_LOCK: the process's capability now (a ring made
 * earlier under other credentials may differ). */
static bool has_cap_ipc_lock(void)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2];

	memset(data, 0, sizeof data);
	if (syscall(SYS_capget, &hdr, data))
		return false;
	return (data[CAP_TO_INDEX(CAP_IPC_LOCK)].effective & CAP_TO_MASK(CAP_IPC_LOCK)) &&
	       in_init_user_ns();
}

static uint64_t memlock_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_MEMLOCK, &rl) || rl.rlim_cur == RLIM_INFINITY)
		return UINT64_MAX;
	return (uint64_t)rl.rlim_cur;
}

static uint64_t page_bytes(uint32_t page)
{
	switch (page) {
	case RMPSC_PAGE_HUGE_1G:
		return 1ull << 30;
	case RMPSC_PAGE_HUGE:
	case RMPSC_PAGE_HUGE_2M:
	case RMPSC_PAGE_THP: /* charged whole where a huge page backs it */
		return 2ull << 20;
	default:
		return (uint64_t)sysconf(_SC_PAGESIZE);
	}
}

/* The chunks of @pool's tiers into @iov (NULL: count only), filling @reg's
 * per-tier numbers; the entries and the bytes the kernel pins. */
static int plan_chunks(rmpsc_pool *pool, struct rmpsc_uring_reg *reg, struct iovec *iov,
		       uint64_t *bytes)
{
	const int nt = rmpsc_pool_tier_count(pool);
	uint32_t n = 0;
	uint64_t prev_count = 0;

	if (nt < 0)
		return nt;
	*bytes = 0;
	reg->ntiers = (uint32_t)nt;
	for (uint32_t t = 0; t < (uint32_t)nt; t++) {
		rmpsc_pool_region ri;
		uint64_t per, pg, left;
		unsigned char *at;

		(void)rmpsc_pool_tier_info(pool, t, &ri);
		per = RMPSC_URING_BUFFER_BYTES_MAX / ri.stride;
		RMPSC__CHECK(per == 0, -EMSGSIZE);
		if (per > ri.count)
			per = ri.count;
		reg->tier_first[t] = reg->first + n;
		reg->per_chunk[t] = (uint32_t)per;
		reg->tier_slab0[t] = t ? reg->tier_slab0[t - 1] + prev_count : 0;
		prev_count = ri.count;
		pg = page_bytes(ri.page);
		at = ri.base;
		for (left = ri.count; left; n++) {
			const uint64_t k = left < per ? left : per;

			if (iov && n < RMPSC_URING_BUFFERS_MAX) {
				iov[n].iov_base = at;
				iov[n].iov_len = (size_t)(k * ri.stride);
			}
			/* Pages are charged whole, huge pages included. */
			*bytes += ((uintptr_t)at + k * ri.stride + pg - 1) / pg * pg -
				  (uintptr_t)at / pg * pg;
			at += k * ri.stride;
			left -= k;
		}
	}
	reg->nbuf = n;
	return 0;
}

static const struct rmpsc_uring_reg *reg_ok(const void *r)
{
	return RMPSC__HANDLE_IS(r, RMPSC__MAGIC_UREG) ? r : NULL;
}

/* Register @pool on @r; the registration in *@out. Shared by
 * rmpsc_uring_register() and the engine. */
static int reg_make(struct io_uring *r, rmpsc_pool *pool, uint32_t first, uint32_t flags,
		    rmpsc_uring_reg_info *info, struct rmpsc_uring_reg **out)
{
	struct rmpsc_uring_reg *reg = calloc(1, sizeof *reg);
	struct iovec *iov = NULL;
	uint64_t bytes = 0;
	int err;

	if (!reg)
		return -ENOMEM;
	reg->first = first;
	reg->flags = flags;
	err = plan_chunks(pool, reg, NULL, &bytes);
	if (info) {
		info->buffers = reg->nbuf;
		info->first_index = first;
		info->cap_ipc_lock = has_cap_ipc_lock();
		info->bytes = bytes;
		info->memlock_limit = memlock_limit();
	}
	if (!err && (uint64_t)first + reg->nbuf > RMPSC_URING_BUFFERS_MAX)
		err = -ENOSPC;
	if (!err) {
		const int64_t cap = rmpsc_pool_capacity(pool);

		iov = calloc(reg->nbuf, sizeof *iov);
		reg->held_map = calloc(((uint64_t)cap + 63) / 64, sizeof *reg->held_map);
		err = iov && reg->held_map ? plan_chunks(pool, reg, iov, &bytes) : -ENOMEM;
	}
	if (!err) {
		if (flags & RMPSC_URING_REG_UPDATE) {
			err = io_uring_register_buffers_update_tag(r, first, iov, NULL, reg->nbuf);
			if (err >= 0)
				err = err == (int)reg->nbuf ? 0 : -ENOSPC;
			else if (err == -EINVAL || err == -EOVERFLOW)
				err = -ENOSPC;
		} else {
			err = io_uring_register_buffers(r, iov, reg->nbuf);
		}
	}
	free(iov);
	if (!err)
		err = rmpsc__pool_attach(pool, NULL);
	if (err) {
		free(reg->held_map);
		free(reg);
		return err;
	}
	reg->pool = pool;
	reg->magic = RMPSC__MAGIC_UREG;
	*out = reg;
	return 0;
}

static void reg_drop(struct rmpsc_uring_reg *reg, struct io_uring *r)
{
	if (r) {
		if (reg->flags & RMPSC_URING_REG_UPDATE) {
			struct iovec *iov = calloc(reg->nbuf, sizeof *iov);

			if (iov) { /* empty entries: the slots are sparse again */
				(void)io_uring_register_buffers_update_tag(r, reg->first, iov,
									   NULL, reg->nbuf);
				free(iov);
			}
		} else {
			(void)io_uring_unregister_buffers(r);
		}
	}
	reg->magic = RMPSC__MAGIC_DEAD;
	rmpsc__pool_detach(reg->pool, NULL);
	free(reg->held_map);
	free(reg);
}

int rmpsc_uring_register(struct io_uring *ring, rmpsc_pool *pool, uint32_t first_index,
			 uint32_t flags, rmpsc_uring_reg_info *info, rmpsc_uring_reg **out)
{
	rmpsc_uring_reg_info loc;
	uint32_t isize = 0;
	int err;

	RMPSC__CHECK(!out, -EINVAL);
	*out = NULL;
	RMPSC__CHECK(!ring || (flags & ~(uint32_t)RMPSC_URING_REG_F_ALL), -EINVAL);
	RMPSC__CHECK(first_index && !(flags & RMPSC_URING_REG_UPDATE), -EINVAL);
	if (info) {
		isize = info->size;
		RMPSC__CHECK(isize < RMPSC_URING_REG_INFO_SIZE_V1 || isize % 8 ||
				     isize > RMPSC__CONFIG_SIZE_MAX,
			     -EINVAL);
	}
	err = rmpsc_pool_tier_count(pool);
	if (err < 0)
		return err;
	memset(&loc, 0, sizeof loc);
	loc.size = sizeof loc;
	err = reg_make(ring, pool, first_index, flags, &loc, out);
	if (info)
		(void)rmpsc__size_out(info, isize, &loc, sizeof loc, RMPSC_URING_REG_INFO_SIZE_V1);
	return err;
}

int rmpsc_uring_unregister(rmpsc_uring_reg *reg, struct io_uring *ring)
{
	if (!reg)
		return 0;
	RMPSC__CHECK(!reg_ok(reg), -EBADF);
	RMPSC__CHECK(atomic_load_explicit(&reg->held, memory_order_acquire), -EBUSY);
	reg_drop(reg, ring);
	return 0;
}

/* A handle's table entry, from the tier and index io_begin returned. */
static inline uint32_t reg_index(const struct rmpsc_uring_reg *reg, const struct rmpsc__slab *s)
{
	return reg->tier_first[s->tier] + s->index / reg->per_chunk[s->tier];
}

int rmpsc_uring_buffer(const rmpsc_uring_reg *reg, uint32_t h, uint32_t *buf_index,
		       struct iovec *slab)
{
	struct iovec v;
	uint32_t t, i;
	int err;

	RMPSC__CHECK(!reg_ok(reg), -EBADF);
	err = rmpsc_pool_slab(reg->pool, h, &v);
	if (!err)
		err = rmpsc_pool_locate(reg->pool, h, &t, &i);
	if (err)
		return err;
	if (buf_index)
		*buf_index = reg->tier_first[t] + i / reg->per_chunk[t];
	if (slab)
		*slab = v;
	return 0;
}

/* This registration's mark on a slab it prepared (set or clear); whether
 * it has one. */
static void held_mark(rmpsc_uring_reg *reg, uint32_t t, uint32_t i, bool on)
{
	const uint64_t k = reg->tier_slab0[t] + i, bit = 1ull << (k % 64);

	if (on)
		atomic_fetch_or_explicit(&reg->held_map[k / 64], bit, memory_order_relaxed);
	else
		atomic_fetch_and_explicit(&reg->held_map[k / 64], ~bit, memory_order_relaxed);
}

static bool held_by(const rmpsc_uring_reg *reg, uint32_t t, uint32_t i)
{
	const uint64_t k = reg->tier_slab0[t] + i;

	return atomic_load_explicit(&reg->held_map[k / 64], memory_order_relaxed) >> (k % 64) & 1;
}

/* The common start of a prep: checks, and the slab handed to the kernel. */
static int prep_begin(struct io_uring_sqe *sqe, rmpsc_uring_reg *reg, uint32_t h, int fd,
		      struct rmpsc__slab *s)
{
	int err;

	RMPSC__CHECK(!reg_ok(reg), -EBADF);
	RMPSC__CHECK(!sqe || fd < 0, -EINVAL);
	err = rmpsc__pool_io_begin(reg->pool, h, s);
	if (err)
		return err;
	held_mark(reg, s->tier, s->index, true);
	atomic_fetch_add_explicit(&reg->held, 1, memory_order_relaxed);
	return 0;
}

static int prep_undo(rmpsc_uring_reg *reg, uint32_t h, const struct rmpsc__slab *s, int err)
{
	(void)rmpsc__pool_io_end(reg->pool, h, -1);
	held_mark(reg, s->tier, s->index, false);
	atomic_fetch_sub_explicit(&reg->held, 1, memory_order_release);
	return err;
}

/* The SEND_ZC flags this kernel takes. */
static unsigned zc_flags(void)
{
	return rmpsc_uring_features() & RMPSC_URING_HAS_ZC_REPORT_USAGE
		       ? IORING_SEND_ZC_REPORT_USAGE
		       : 0;
}

/* What an operation of @kind on slab @s may move: a read of @len bytes
 * (0: the whole slab) within the slab, a payload to write or send within
 * one operation's limit; else -EMSGSIZE. */
static int slab_io_check(uint8_t kind, const struct rmpsc__slab *s, uint32_t len)
{
	if (kind == RMPSC_IO_OP_READ)
		return len > s->size || len > INT_MAX ? -EMSGSIZE : 0;
	if (kind == RMPSC_IO_OP_WRITE || kind == RMPSC_IO_OP_SEND)
		return s->len > INT_MAX ? -EMSGSIZE : 0;
	return 0;
}

/* @sqe as operation @kind on slab @s (checked by slab_io_check()): from
 * registered buffer @bi, or by address when @bi < 0. A read takes @len
 * bytes (0: the whole slab), a recv the whole slab, a write or send the
 * payload; sends add MSG_NOSIGNAL, and @zc makes them SEND_ZC. The one
 * place both the liburing helpers and the engine fill an SQE for a slab. */
static void prep_slab(struct io_uring_sqe *sqe, uint8_t kind, const struct rmpsc__slab *s,
		      int fd, uint64_t offset, uint32_t len, int msg_flags, int bi, bool zc)
{
	const size_t whole = s->size > INT_MAX ? INT_MAX : (size_t)s->size;
	const unsigned n = len ? len : (unsigned)whole;

	switch (kind) {
	case RMPSC_IO_OP_READ:
		if (bi >= 0)
			io_uring_prep_read_fixed(sqe, fd, s->base, n, offset, bi);
		else
			io_uring_prep_read(sqe, fd, s->base, n, offset);
		break;
	case RMPSC_IO_OP_WRITE:
		if (bi >= 0)
			io_uring_prep_write_fixed(sqe, fd, s->base, (unsigned)s->len, offset, bi);
		else
			io_uring_prep_write(sqe, fd, s->base, (unsigned)s->len, offset);
		break;
	case RMPSC_IO_OP_RECV:
		io_uring_prep_recv(sqe, fd, s->base, whole, msg_flags);
		break;
	default: /* RMPSC_IO_OP_SEND */
		if (!zc)
			io_uring_prep_send(sqe, fd, s->base, (size_t)s->len, msg_flags | MSG_NOSIGNAL);
		else if (bi >= 0)
			io_uring_prep_send_zc_fixed(sqe, fd, s->base, (size_t)s->len,
						    msg_flags | MSG_NOSIGNAL, zc_flags(),
						    (unsigned)bi);
		else
			io_uring_prep_send_zc(sqe, fd, s->base, (size_t)s->len,
					      msg_flags | MSG_NOSIGNAL, zc_flags());
		break;
	}
}

/* A liburing helper's prep: the slab to the kernel, checked, the SQE
 * filled from its registered buffer, user_data the handle. */
static int prep_helper(struct io_uring_sqe *sqe, rmpsc_uring_reg *reg, uint32_t h, int fd,
		       uint8_t kind, uint64_t offset, uint32_t len, int msg_flags, bool zc)
{
	struct rmpsc__slab s;
	int err = prep_begin(sqe, reg, h, fd, &s);

	if (err)
		return err;
	err = slab_io_check(kind, &s, len);
	if (err)
		return prep_undo(reg, h, &s, err);
	prep_slab(sqe, kind, &s, fd, offset, len, msg_flags, (int)reg_index(reg, &s), zc);
	sqe->user_data = h;
	return 0;
}

int rmpsc_uring_prep_read_fixed(struct io_uring_sqe *sqe, rmpsc_uring_reg *reg, uint32_t h,
				int fd, uint64_t offset, uint32_t len)
{
	return prep_helper(sqe, reg, h, fd, RMPSC_IO_OP_READ, offset, len, 0, false);
}

int rmpsc_uring_prep_write_fixed(struct io_uring_sqe *sqe, rmpsc_uring_reg *reg, uint32_t h,
				 int fd, uint64_t offset)
{
	return prep_helper(sqe, reg, h, fd, RMPSC_IO_OP_WRITE, offset, 0, 0, false);
}

int rmpsc_uring_prep_recv(struct io_uring_sqe *sqe, rmpsc_uring_reg *reg, uint32_t h, int fd,
			  int msg_flags)
{
	return prep_helper(sqe, reg, h, fd, RMPSC_IO_OP_RECV, 0, 0, msg_flags, false);
}

int rmpsc_uring_prep_send(struct io_uring_sqe *sqe, rmpsc_uring_reg *reg, uint32_t h, int fd,
			  int msg_flags)
{
	return prep_helper(sqe, reg, h, fd, RMPSC_IO_OP_SEND, 0, 0, msg_flags, false);
}

int rmpsc_uring_prep_send_zc(struct io_uring_sqe *sqe, rmpsc_uring_reg *reg, uint32_t h,
			     int fd, int msg_flags)
{
	const int64_t f = rmpsc_uring_features();

	RMPSC__CHECK(f < 0 || !(f & RMPSC_URING_HAS_SEND_ZC), -EOPNOTSUPP);
	return prep_helper(sqe, reg, h, fd, RMPSC_IO_OP_SEND, 0, 0, msg_flags, true);
}

int rmpsc_uring_complete(rmpsc_uring_reg *reg, uint32_t h, int64_t len)
{
	uint32_t t, i;
	int err;

	RMPSC__CHECK(!reg_ok(reg), -EBADF);
	err = rmpsc__pool_where(reg->pool, h, &t, &i);
	if (err)
		return err;
	/* Only the registration that prepared the slab completes it (the
	 * pool's other registration would break both counts, and neither
	 * could be unregistered). */
	if (!held_by(reg, t, i)) {
		const int64_t st = rmpsc_pool_get_len(reg->pool, h);

		return st >= 0 ? -EALREADY : st == -EBUSY ? -EINVAL : (int)st;
	}
	err = rmpsc__pool_io_end(reg->pool, h, len);
	if (err == 0 || err == -EMSGSIZE) {
		held_mark(reg, t, i, false);
		atomic_fetch_sub_explicit(&reg->held, 1, memory_order_release);
	}
	return err;
}

/* ---- provided-buffer rings -------------------------------------------------------- */

struct rmpsc_uring_bufring {
	uint32_t magic;
	uint16_t group;
	uint16_t _pad;
	rmpsc_pool *pool;
	uint64_t slab_size;
	uint32_t entries;
	_Atomic uint32_t posted; /* the owner's; read by rmpsc_io_get_info() */
	uint32_t nempty;
	uint32_t _pad1;
	struct io_uring_buf_ring *br;
	size_t br_len;
	uint32_t *bid_h; /* the handle of each posted buffer id, NONE if empty */
	uint32_t *empty; /* stack of empty buffer ids */
};

static rmpsc_uring_bufring *bufring_ok(const void *b)
{
	return RMPSC__HANDLE_IS(b, RMPSC__MAGIC_UBUF) ? (rmpsc_uring_bufring *)b : NULL;
}

static int bufring_fill(rmpsc_uring_bufring *b)
{
	const int mask = io_uring_buf_ring_mask(b->entries);
	int added = 0;

	while (b->nempty) {
		struct rmpsc__slab s;
		const uint32_t bid = b->empty[b->nempty - 1];
		uint32_t h;

		if (rmpsc__pool_alloc(b->pool, b->slab_size, &h))
			break;
		if (rmpsc__pool_io_begin(b->pool, h, &s)) { /* cannot happen: ours */
			(void)rmpsc__pool_free(b->pool, h);
			break;
		}
		io_uring_buf_ring_add(b->br, s.base,
				      (unsigned)(s.size > UINT32_MAX ? UINT32_MAX : s.size),
				      (unsigned short)bid, mask, added);
		b->bid_h[bid] = h;
		b->nempty--;
		added++;
	}
	if (added) /* a release store of the tail: the entries before it */
		io_uring_buf_ring_advance(b->br, added);
	return (int)atomic_fetch_add_explicit(&b->posted, (uint32_t)added, memory_order_relaxed) +
	       added;
}

/* Give a posted slab back to the pool (teardown). */
static void bufring_release_all(rmpsc_uring_bufring *b)
{
	for (uint32_t bid = 0; bid < b->entries; bid++) {
		const uint32_t h = b->bid_h[bid];

		if (h == RMPSC_POOL_HANDLE_NONE)
			continue;
		(void)rmpsc__pool_io_end(b->pool, h, 0);
		(void)rmpsc__pool_free(b->pool, h);
		b->bid_h[bid] = RMPSC_POOL_HANDLE_NONE;
	}
	atomic_store_explicit(&b->posted, 0, memory_order_relaxed);
}

/* The slabs still posted, counted (a leak's size). */
static uint32_t bufring_posted(const rmpsc_uring_bufring *b)
{
	return b ? atomic_load_explicit(&b->posted, memory_order_relaxed) : 0;
}

static void bufring_free(rmpsc_uring_bufring *b, struct io_uring *r, bool leak)
{
	if (r)
		(void)io_uring_unregister_buf_ring(r, b->group);
	if (!leak)
		bufring_release_all(b);
	/* Leaking: the slabs stay held (the pool keeps their memory); the
	 * ring's own pages too, since the kernel may still read them. */
	if (!leak)
		munmap(b->br, b->br_len);
	free(b->bid_h);
	free(b->empty);
	b->magic = RMPSC__MAGIC_DEAD;
	rmpsc__pool_detach(b->pool, NULL);
	free(b);
}

static int bufring_make(struct io_uring *r, rmpsc_pool *pool, uint32_t tier, uint16_t group,
			uint32_t entries, rmpsc_uring_bufring **out)
{
	const size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	struct io_uring_buf_reg breg;
	rmpsc_pool_region ri;
	rmpsc_uring_bufring *b;
	int err;

	RMPSC__CHECK(!entries || entries > RMPSC_URING_BUFRING_MAX || (entries & (entries - 1)),
		     -EINVAL);
	err = rmpsc_pool_tier_info(pool, tier, &ri);
	if (err)
		return err;
	b = calloc(1, sizeof *b);
	if (!b)
		return -ENOMEM;
	b->pool = pool;
	b->group = group;
	b->entries = entries;
	b->slab_size = ri.slab_size;
	b->br_len = (entries * sizeof(struct io_uring_buf) + pg - 1) / pg * pg;
	b->br = mmap(NULL, b->br_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	b->bid_h = malloc(entries * sizeof *b->bid_h);
	b->empty = malloc(entries * sizeof *b->empty);
	if (b->br == MAP_FAILED || !b->bid_h || !b->empty) {
		if (b->br != MAP_FAILED)
			munmap(b->br, b->br_len);
		free(b->bid_h);
		free(b->empty);
		free(b);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < entries; i++) {
		b->bid_h[i] = RMPSC_POOL_HANDLE_NONE;
		b->empty[i] = entries - 1 - i;
	}
	b->nempty = entries;
	io_uring_buf_ring_init(b->br);
	memset(&breg, 0, sizeof breg);
	breg.ring_addr = (uintptr_t)b->br;
	breg.ring_entries = entries;
	breg.bgid = group;
	err = rmpsc__pool_attach(pool, NULL);
	if (!err) {
		err = io_uring_register_buf_ring(r, &breg, 0);
		if (err)
			rmpsc__pool_detach(pool, NULL);
	}
	if (err) {
		munmap(b->br, b->br_len);
		free(b->bid_h);
		free(b->empty);
		free(b);
		return err == -EINVAL && !(rmpsc_uring_features() & RMPSC_URING_HAS_BUF_RING)
			       ? -EOPNOTSUPP
			       : err;
	}
	b->magic = RMPSC__MAGIC_UBUF;
	if (bufring_fill(b) == 0) {
		bufring_free(b, r, false);
		return -ENOBUFS;
	}
	*out = b;
	return 0;
}

int rmpsc_uring_bufring_create(struct io_uring *ring, rmpsc_pool *pool, uint32_t tier,
			       uint16_t group, uint32_t entries, uint32_t flags,
			       rmpsc_uring_bufring **out)
{
	int err;

	RMPSC__CHECK(!out, -EINVAL);
	*out = NULL;
	RMPSC__CHECK(!ring || flags, -EINVAL);
	err = rmpsc_pool_tier_count(pool);
	if (err < 0)
		return err;
	RMPSC__CHECK(tier >= (uint32_t)err, -EINVAL);
	return bufring_make(ring, pool, tier, group, entries, out);
}

int rmpsc_uring_bufring_destroy(rmpsc_uring_bufring *br, struct io_uring *ring)
{
	if (!br)
		return 0;
	RMPSC__CHECK(!bufring_ok(br), -EBADF);
	bufring_free(br, ring, false);
	return 0;
}

/* The slab of a buffer-selecting CQE: 0 and *@h, -ENOENT, -EPROTO. */
static int bufring_take(rmpsc_uring_bufring *b, uint32_t cqe_flags, int32_t res, uint32_t *h)
{
	uint32_t bid;

	if (!(cqe_flags & IORING_CQE_F_BUFFER))
		return -ENOENT;
	bid = cqe_flags >> IORING_CQE_BUFFER_SHIFT;
	RMPSC__CHECK(bid >= b->entries || b->bid_h[bid] == RMPSC_POOL_HANDLE_NONE, -EPROTO);
	*h = b->bid_h[bid];
	b->bid_h[bid] = RMPSC_POOL_HANDLE_NONE;
	b->empty[b->nempty++] = bid;
	atomic_fetch_sub_explicit(&b->posted, 1, memory_order_relaxed);
	(void)rmpsc__pool_io_end(b->pool, *h, res > 0 ? res : 0);
	return 0;
}

int rmpsc_uring_bufring_take(rmpsc_uring_bufring *br, uint32_t cqe_flags, int32_t res,
			     uint32_t *h)
{
	int err;

	RMPSC__CHECK(!bufring_ok(br), -EBADF);
	RMPSC__CHECK(!h, -EINVAL);
	err = bufring_take(br, cqe_flags, res, h);
	if (!err)
		(void)bufring_fill(br);
	return err;
}

int rmpsc_uring_bufring_refill(rmpsc_uring_bufring *br)
{
	RMPSC__CHECK(!bufring_ok(br), -EBADF);
	return bufring_fill(br);
}

static void prep_multishot(struct io_uring_sqe *sqe, uint16_t group, int fd, int msg_flags)
{
	io_uring_prep_recv_multishot(sqe, fd, NULL, 0, msg_flags);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = group;
}

int rmpsc_uring_prep_recv_multishot(struct io_uring_sqe *sqe, rmpsc_uring_bufring *br, int fd,
				    int msg_flags)
{
	const int64_t f = rmpsc_uring_features();

	RMPSC__CHECK(!bufring_ok(br), -EBADF);
	RMPSC__CHECK(!sqe || fd < 0, -EINVAL);
	RMPSC__CHECK(f < 0 || !(f & RMPSC_URING_HAS_RECV_MULTISHOT), -EOPNOTSUPP);
	prep_multishot(sqe, br->group, fd, msg_flags);
	sqe->user_data = 0;
	return 0;
}

/* ---- the engine ------------------------------------------------------------------- */

#define UD_INTERNAL (1ull << 63)
#define UD_CANCEL (UD_INTERNAL | 1)
#define UD_KICK (UD_INTERNAL | 2)
#define NO_SLOT UINT32_MAX
#define ENGINE_GROUP 0x7e00 /* the engine's buffer group */
#define ENGINE_SPIN 4096    /* the engine's look before it sleeps (CPU relax hints) */

struct op {
	uint64_t tag;
	uint32_t h;
	uint32_t gen;     /* bumped at each use of the slot */
	uint32_t next;    /* free list */
	int32_t res;      /* SEND_ZC: the result, until the notification */
	int fd;
	uint8_t kind;     /* RMPSC_IO_OP_*, 0: free */
	uint8_t zc;       /* SEND_ZC */
	uint8_t rearm;    /* multishot: ended by -ENOBUFS, to be armed again */
	uint8_t cancel;   /* rmpsc_io_cancel() asked */
	uint32_t cflags;  /* RMPSC_IO_CQE_F_* gathered so far */
};

struct rmpsc_io {
	uint32_t magic;
	uint32_t flags;
	rmpsc_pool *pool;
	rmpsc_ring *ring;
	rmpsc_producer *prod;
	rmpsc_notifier *notifier;
	struct rmpsc_uring_reg *reg;   /* NULL: plain buffers */
	rmpsc_uring_bufring *recv;     /* multishot buffers, or NULL */
	int64_t drain_timeout_ns;
	int64_t features;
	int32_t fixed_error;
	uint32_t max_ops;
	uint64_t memlock_bytes;
	uint64_t memlock_limit;
	struct io_uring uring;
	pthread_mutex_t mu; /* the submission side */
	struct op *ops;
	uint32_t free_head;
	uint32_t rearms;    /* multishot ops waiting for buffers (reaper's) */
	bool stopping;      /* under mu */
	bool pool_gone;     /* under mu: the pool was destroyed with FORCE */
	bool threaded;      /* THREAD mode: only the engine's thread submits */
	bool has_thread;
	bool kick_armed;    /* under mu: the poll on kick_fd is in the kernel */
	bool output_closed; /* under mu: the ring or channel said -EPIPE */
	bool sleeping;      /* under mu: the engine's thread waits in the kernel */
	size_t esz;         /* the output's element size */
	/* The reaper's own (not in the word above: a load of the mutex's
	 * flags may read all of them at once). */
	bool held_valid;    /* a completion the output had no room for */
	bool kick_seen;     /* kick_fd's poll fired */
	rmpsc_io_cqe held;
	pthread_t thread;
	_Atomic uint64_t inflight;
	struct rmpsc__pool_user user; /* the pool's forced destroy: cancel */
	int kick_fd;                  /* THREAD: eventfd that wakes the thread */
	_Atomic uint32_t queued;      /* THREAD: a submitter queued since the last submit */
};

/* The engine whose thread this is (THREAD mode), or NULL. */
static _Thread_local rmpsc_io *engine_self;

static const rmpsc_io_config io_defaults = {
	.size = sizeof(rmpsc_io_config),
	.entries = 256,
	.drain_timeout_ns = 1000000000,
};

static rmpsc_io *io_ok(const void *io)
{
	return RMPSC__HANDLE_IS(io, RMPSC__MAGIC_IO) ? (rmpsc_io *)io : NULL;
}

int rmpsc_io_config_init(rmpsc_io_config *cfg, uint32_t size)
{
	return rmpsc__size_out(cfg, size, &io_defaults, sizeof io_defaults,
			       RMPSC_IO_CONFIG_SIZE_V1);
}

static inline uint64_t ud_of(const rmpsc_io *io, uint32_t slot)
{
	return (uint64_t)io->ops[slot].gen << 32 | slot;
}

/* A free slot (under mu), or NO_SLOT. */
static uint32_t slot_get(rmpsc_io *io)
{
	const uint32_t s = io->free_head;

	if (s != NO_SLOT) {
		io->free_head = io->ops[s].next;
		io->ops[s].gen = (io->ops[s].gen + 1) & 0x7fffffffu;
	}
	return s;
}

static void slot_put_locked(rmpsc_io *io, uint32_t s)
{
	io->ops[s].kind = 0;
	io->ops[s].next = io->free_head;
	io->free_head = s;
}

/* The reaper ends a slot (under mu): back to the free list, one op fewer
 * in flight. */
static void slot_done(rmpsc_io *io, uint32_t s)
{
	slot_put_locked(io, s);
	/* U3 release: the slot's last use before destroy may free the table. */
	atomic_fetch_sub_explicit(&io->inflight, 1, memory_order_release);
}

/* An SQE under mu: when the queue is full, submit what is queued first. */
/*
 * io_uring ties a request to the task that submitted it and cancels it
 * when that task exits. In THREAD mode, so that any thread may submit and
 * then exit, only the engine's thread enters the kernel with SQEs: others
 * queue them, and wake it only when it sleeps (an eventfd its multishot
 * poll watches): a busy engine thread submits what is queued before it
 * next waits, so a stream of requests costs no system call in the
 * submitters.
 */
static bool foreign(const rmpsc_io *io)
{
	return io->threaded && engine_self != io && !(io->flags & RMPSC_IO_F_SUBMIT_DIRECT);
}

/* Wake the engine's thread if it sleeps (under mu); tell it anyway, for
 * its look before sleeping. */
static void kick(rmpsc_io *io)
{
	atomic_store_explicit(&io->queued, 1, memory_order_release);
	if (io->sleeping) {
		const uint64_t one = 1;

		io->sleeping = false;
		(void)!write(io->kick_fd, &one, sizeof one);
	}
}

/* The engine's thread, before it waits for CQEs: submit what is queued,
 * and sleep unless it is stopping (then false). Under mu, so a submitter
 * either queued before this (submitted here) or sees `sleeping`. */
static bool engine_sleep_begin(rmpsc_io *io)
{
	bool sleep;

	pthread_mutex_lock(&io->mu);
	atomic_store_explicit(&io->queued, 0, memory_order_relaxed);
	if (io_uring_sq_ready(&io->uring))
		(void)io_uring_submit(&io->uring);
	sleep = !io->stopping;
	io->sleeping = sleep;
	pthread_mutex_unlock(&io->mu);
	return sleep;
}

/* The engine's thread, about to sleep: look for a while first (requests
 * queued by submitters, completions), since on a steady stream a sleep
 * and a wake-up each way cost more than the wait. True: something came. */
static bool engine_spin(rmpsc_io *io)
{
	/* With SUBMIT_DIRECT the submitters enter the kernel themselves: the
	 * look would only burn the CPU their copies need. */
	if (io->flags & RMPSC_IO_F_SUBMIT_DIRECT)
		return false;
	for (int i = 0; i < ENGINE_SPIN; i++) {
		if (atomic_load_explicit(&io->queued, memory_order_acquire) ||
		    io_uring_cq_ready(&io->uring))
			return true;
		rmpsc__cpu_relax();
	}
	return false;
}

static void engine_sleep_end(rmpsc_io *io)
{
	pthread_mutex_lock(&io->mu);
	io->sleeping = false;
	pthread_mutex_unlock(&io->mu);
}

/* Hand the queued SQEs to the kernel, or to the thread that will (mu). */
static void push_locked(rmpsc_io *io)
{
	if (foreign(io))
		kick(io);
	else
		(void)io_uring_submit(&io->uring);
}

/* An SQE under mu: when the queue is full, push what is queued first (a
 * foreign thread waits for the engine's to take them). NULL if none. */
static struct io_uring_sqe *sqe_get(rmpsc_io *io)
{
	for (int i = 0; i < 1000; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&io->uring);

		if (sqe)
			return sqe;
		if (!foreign(io)) {
			if (io_uring_submit(&io->uring) <= 0 && i >= 2)
				return NULL;
			continue;
		}
		kick(io); /* it submits what is queued before it waits */
		pthread_mutex_unlock(&io->mu);
		sched_yield();
		pthread_mutex_lock(&io->mu);
	}
	return NULL;
}

struct sub {
	uint8_t kind;
	int fd;
	uint64_t offset;
	uint32_t h;
	uint32_t len;
	uint64_t tag;
	uint32_t flags;
	int msg_flags;
};

/* One request: the slot, the slab to the kernel, the SQE, the submit. */
static int submit_one(rmpsc_io *io, const struct sub *q)
{
	struct io_uring_sqe *sqe;
	struct rmpsc__slab s = {0};
	uint32_t slot;
	int err = 0;

	RMPSC__CHECK(q->fd < 0 || (q->flags & ~(uint32_t)RMPSC_IO_SUBMIT_F_ALL), -EINVAL);
	RMPSC__CHECK((q->flags & RMPSC_IO_SEND_ZC) && q->kind != RMPSC_IO_OP_SEND, -EINVAL);
	if (q->flags & RMPSC_IO_SEND_ZC)
		RMPSC__CHECK(!(io->features & RMPSC_URING_HAS_SEND_ZC), -EOPNOTSUPP);
	pthread_mutex_lock(&io->mu);
	if (io->stopping || io->pool_gone || io->output_closed) {
		err = -EPIPE;
		goto out;
	}
	slot = slot_get(io);
	if (slot == NO_SLOT) {
		err = -EAGAIN;
		goto out;
	}
	if (q->h != RMPSC_POOL_HANDLE_NONE) {
		err = rmpsc__pool_io_begin(io->pool, q->h, &s);
		if (err)
			goto undo_slot;
		err = slab_io_check(q->kind, &s, q->len);
		if (err)
			goto undo_slab;
	}
	sqe = sqe_get(io);
	if (!sqe) {
		err = -EAGAIN;
		goto undo_slab;
	}
	if (q->kind == RMPSC_IO_OP_ACCEPT)
		io_uring_prep_accept(sqe, q->fd, NULL, NULL, SOCK_CLOEXEC);
	else if (q->kind == RMPSC_IO_OP_RECV_MULTISHOT)
		prep_multishot(sqe, io->recv->group, q->fd, 0);
	else
		prep_slab(sqe, q->kind, &s, q->fd, q->offset, q->len, 0,
			  io->reg ? (int)reg_index(io->reg, &s) : -1,
			  (q->flags & RMPSC_IO_SEND_ZC) != 0);
	{
		struct op *o = &io->ops[slot];

		o->tag = q->tag;
		o->h = q->h;
		o->fd = q->fd;
		o->kind = q->kind;
		o->zc = (q->flags & RMPSC_IO_SEND_ZC) != 0;
		o->rearm = 0;
		o->cancel = 0;
		o->res = 0;
		o->cflags = o->zc ? RMPSC_IO_CQE_F_ZC : 0;
		sqe->user_data = ud_of(io, slot);
	}
	/* From here the request is the kernel's, whatever submit says: a
	 * request the kernel did not take now goes with a later submit. */
	atomic_fetch_add_explicit(&io->inflight, 1, memory_order_relaxed);
	if (!(q->flags & RMPSC_IO_SUBMIT_MORE))
		push_locked(io);
	goto out;
undo_slab:
	if (q->h != RMPSC_POOL_HANDLE_NONE)
		(void)rmpsc__pool_io_end(io->pool, q->h, -1);
undo_slot:
	slot_put_locked(io, slot);
out:
	pthread_mutex_unlock(&io->mu);
	return err;
}

/* The checks every submit call shares, then the request. */
static int submit(rmpsc_io *io, const struct sub *q)
{
	const bool slab = q->kind != RMPSC_IO_OP_ACCEPT && q->kind != RMPSC_IO_OP_RECV_MULTISHOT;

	RMPSC__CHECK(!io_ok(io), -EBADF);
	RMPSC__CHECK(slab && q->h == RMPSC_POOL_HANDLE_NONE, -EINVAL);
	return submit_one(io, q);
}

int rmpsc_io_read(rmpsc_io *io, int fd, uint64_t offset, uint32_t h, uint32_t len, uint64_t tag,
		  uint32_t flags)
{
	return submit(io, &(struct sub){.kind = RMPSC_IO_OP_READ, .fd = fd, .offset = offset,
					.h = h, .len = len, .tag = tag, .flags = flags});
}

int rmpsc_io_write(rmpsc_io *io, int fd, uint64_t offset, uint32_t h, uint64_t tag,
		   uint32_t flags)
{
	return submit(io, &(struct sub){.kind = RMPSC_IO_OP_WRITE, .fd = fd, .offset = offset,
					.h = h, .tag = tag, .flags = flags});
}

int rmpsc_io_recv(rmpsc_io *io, int fd, uint32_t h, uint64_t tag, uint32_t flags)
{
	return submit(io, &(struct sub){.kind = RMPSC_IO_OP_RECV, .fd = fd, .h = h, .tag = tag,
					.flags = flags});
}

int rmpsc_io_send(rmpsc_io *io, int fd, uint32_t h, uint64_t tag, uint32_t flags)
{
	return submit(io, &(struct sub){.kind = RMPSC_IO_OP_SEND, .fd = fd, .h = h, .tag = tag,
					.flags = flags});
}

int rmpsc_io_accept(rmpsc_io *io, int fd, uint64_t tag, uint32_t flags)
{
	return submit(io, &(struct sub){.kind = RMPSC_IO_OP_ACCEPT, .fd = fd,
					.h = RMPSC_POOL_HANDLE_NONE, .tag = tag, .flags = flags});
}

int rmpsc_io_recv_multishot(rmpsc_io *io, int fd, uint64_t tag, uint32_t flags)
{
	RMPSC__CHECK(!io_ok(io), -EBADF);
	RMPSC__CHECK(!io->recv || !(io->features & RMPSC_URING_HAS_RECV_MULTISHOT), -EOPNOTSUPP);
	return submit(io, &(struct sub){.kind = RMPSC_IO_OP_RECV_MULTISHOT, .fd = fd,
					.h = RMPSC_POOL_HANDLE_NONE, .tag = tag, .flags = flags});
}

int rmpsc_io_cancel(rmpsc_io *io, uint64_t tag)
{
	int n = 0, err = 0;

	RMPSC__CHECK(!io_ok(io), -EBADF);
	pthread_mutex_lock(&io->mu);
	for (uint32_t s = 0; s < io->max_ops; s++) {
		struct op *o = &io->ops[s];
		struct io_uring_sqe *sqe;

		if (!o->kind || o->tag != tag || o->cancel)
			continue;
		o->cancel = 1;
		n++;
		if (o->rearm) /* no request in the kernel: the reaper ends it */
			continue;
		sqe = sqe_get(io);
		if (!sqe) {
			o->cancel = 0;
			n--;
			err = -EAGAIN;
			break;
		}
		io_uring_prep_cancel64(sqe, ud_of(io, s), 0);
		sqe->user_data = UD_CANCEL;
	}
	push_locked(io);
	pthread_mutex_unlock(&io->mu);
	return err && !n ? err : n;
}

int rmpsc_io_submit(rmpsc_io *io)
{
	int n;

	RMPSC__CHECK(!io_ok(io), -EBADF);
	pthread_mutex_lock(&io->mu);
	if (foreign(io)) {
		n = (int)io_uring_sq_ready(&io->uring);
		kick(io);
	} else {
		n = io_uring_submit(&io->uring);
	}
	pthread_mutex_unlock(&io->mu);
	return n < 0 ? 0 : n;
}

/* Post freed slabs to the receive buffers, and arm again the multishot
 * receives that ran out of them (reaper). */
static void refill(rmpsc_io *io)
{
	if (!io->recv || (io->recv->nempty && !bufring_fill(io->recv)) || !io->rearms ||
	    !bufring_posted(io->recv))
		return;
	pthread_mutex_lock(&io->mu);
	for (uint32_t s = 0; s < io->max_ops && io->rearms; s++) {
		struct op *o = &io->ops[s];
		struct io_uring_sqe *sqe;

		if (!o->kind || !o->rearm || o->cancel)
			continue;
		sqe = sqe_get(io);
		if (!sqe)
			break;
		prep_multishot(sqe, io->recv->group, o->fd, 0);
		sqe->user_data = ud_of(io, s);
		o->rearm = 0;
		io->rearms--;
	}
	push_locked(io);
	pthread_mutex_unlock(&io->mu);
}

/* Turn one CQE into the state changes and, when it ends something the
 * caller sees, a completion in *@c: true then. */
static bool process_locked(rmpsc_io *io, const struct io_uring_cqe *cqe, rmpsc_io_cqe *c)
{
	const uint64_t ud = cqe->user_data;
	const uint32_t slot = (uint32_t)ud;
	struct op *o;

	if (ud == UD_KICK) {
		io->kick_seen = true;
		if (!(cqe->flags & IORING_CQE_F_MORE))
			io->kick_armed = false;
	}
	if (ud & UD_INTERNAL || slot >= io->max_ops)
		return false;
	o = &io->ops[slot];
	if (!o->kind || o->gen != (uint32_t)(ud >> 32))
		return false;
	c->tag = o->tag;
	c->op = o->kind;
	c->flags = 0;
	if (o->kind == RMPSC_IO_OP_RECV_MULTISHOT) {
		uint32_t h;

		if (bufring_take(io->recv, cqe->flags, cqe->res, &h) == 0) {
			c->handle = h;
			c->result = cqe->res;
			if (cqe->flags & IORING_CQE_F_MORE) {
				c->flags = RMPSC_IO_CQE_F_MORE;
				return true;
			}
		} else {
			c->handle = RMPSC_POOL_HANDLE_NONE;
			c->result = cqe->res;
		}
		if (cqe->flags & IORING_CQE_F_MORE)
			return false; /* a CQE with neither buffer nor end */
		if (cqe->res == -ENOBUFS && !o->cancel) {
			/* The ring ran dry, the stream goes on: armed again
			 * once freed slabs refill it. */
			o->rearm = 1;
			io->rearms++;
			return false;
		}
		if (c->handle != RMPSC_POOL_HANDLE_NONE) {
			/* The last receive carried data (the CQ was full): the
			 * data goes with MORE, and the request is armed again
			 * to learn how the stream goes on, or, cancelled, ends
			 * with a completion of its own (end_cancelled_rearm). */
			c->flags = RMPSC_IO_CQE_F_MORE;
			o->rearm = 1;
			io->rearms++;
			return true;
		}
		slot_done(io, slot);
		return true;
	}
	if (o->zc) {
		if (!(cqe->flags & IORING_CQE_F_NOTIF)) {
			o->res = cqe->res;
			if (cqe->flags & IORING_CQE_F_MORE)
				return false; /* the slab is held until the notification */
		} else if ((uint32_t)cqe->res & IORING_NOTIF_USAGE_ZC_COPIED &&
			   (io->features & RMPSC_URING_HAS_ZC_REPORT_USAGE) && o->res >= 0) {
			o->cflags |= RMPSC_IO_CQE_F_COPIED;
		}
		c->result = o->res;
	} else {
		c->result = cqe->res;
	}
	c->flags = o->cflags;
	c->handle = o->h;
	if (o->h != RMPSC_POOL_HANDLE_NONE) {
		const bool in = o->kind == RMPSC_IO_OP_READ || o->kind == RMPSC_IO_OP_RECV;

		(void)rmpsc__pool_io_end(io->pool, o->h, in ? (c->result > 0 ? c->result : 0) : -1);
	}
	slot_done(io, slot);
	return true;
}

/* The slot table is the submitters' too: the reaper reads and ends slots
 * under the mutex (the kernel orders an SQE before its CQE, but the
 * submitter's stores to the slot need a happens-before edge of their own
 * for a reader that did not take the SQE from the same thread). */
static bool process(rmpsc_io *io, const struct io_uring_cqe *cqe, rmpsc_io_cqe *c)
{
	bool r;

	pthread_mutex_lock(&io->mu);
	r = process_locked(io, cqe, c);
	pthread_mutex_unlock(&io->mu);
	/* A taken receive buffer's slot refilled at once, outside the mutex
	 * (the pool's lock, taken by an allocation that steals, comes before
	 * ours: see pool_gone()). */
	if (io->recv && io->recv->nempty)
		(void)bufring_fill(io->recv);
	return r;
}

/* Multishot ops cancelled while waiting for buffers: ended here (reaper). */
static bool end_cancelled_rearm(rmpsc_io *io, rmpsc_io_cqe *c)
{
	bool hit = false;

	if (!io->rearms)
		return false;
	pthread_mutex_lock(&io->mu);
	for (uint32_t s = 0; s < io->max_ops && !hit; s++) {
		struct op *o = &io->ops[s];

		if (!o->kind || !o->rearm || !o->cancel)
			continue;
		c->tag = o->tag;
		c->op = o->kind;
		c->handle = RMPSC_POOL_HANDLE_NONE;
		c->result = -ECANCELED;
		c->flags = 0;
		io->rearms--;
		slot_done(io, s);
		hit = true;
	}
	pthread_mutex_unlock(&io->mu);
	return hit;
}

/* Deliver @c to the ring or channel, whose elements may be larger (the
 * rest is zeroed): 0, -EAGAIN (full), -ETIMEDOUT, -EPIPE. */
static int deliver(rmpsc_io *io, const rmpsc_io_cqe *c, int64_t timeout_ns)
{
	rmpsc_span sp;
	int n;

	if (io->ring)
		n = timeout_ns ? rmpsc_ring_reserve_timed(io->ring, 1, &sp, timeout_ns, NULL)
			       : rmpsc_ring_reserve(io->ring, 1, &sp);
	else
		n = timeout_ns ? rmpsc_producer_reserve_timed(io->prod, 1, &sp, timeout_ns, NULL)
			       : rmpsc_producer_reserve(io->prod, 1, &sp);
	if (n < 0)
		return n;
	if (n == 0)
		return -EAGAIN;
	memcpy(sp.iov[0].iov_base, c, sizeof *c);
	memset((char *)sp.iov[0].iov_base + sizeof *c, 0, io->esz - sizeof *c);
	return io->ring ? rmpsc_ring_commit(io->ring, 1) : rmpsc_producer_commit(io->prod, 1);
}

/* Time left to @deadline (rmpsc__deadline()), capped at INT64_MAX; 0
 * when it has passed. */
static int64_t time_left(uint64_t deadline)
{
	const uint64_t now = rmpsc__now_ns();

	if (now >= deadline)
		return 0;
	return deadline - now > INT64_MAX ? INT64_MAX : (int64_t)(deadline - now);
}

/* Wait up to @timeout_ns (< 0: forever) for a CQE; 0 when one is there.
 * A reaper with receives waiting for buffers looks again every
 * millisecond, for freed slabs to refill with. */
static int wait_cqe(rmpsc_io *io, int64_t timeout_ns)
{
	struct io_uring_cqe *cqe;
	int64_t t = timeout_ns;

	if (io->rearms && (t < 0 || t > 1000000))
		t = 1000000;
	if (t < 0)
		return io_uring_wait_cqe(&io->uring, &cqe);
	{
		struct __kernel_timespec ts = {.tv_sec = t / 1000000000,
					       .tv_nsec = t % 1000000000};

		return io_uring_wait_cqe_timeout(&io->uring, &cqe, &ts);
	}
}

/* The ring or channel said -EPIPE: nothing can be delivered any more, so
 * new requests are refused (-EPIPE) rather than left to pile up. */
static void closed_output(rmpsc_io *io)
{
	pthread_mutex_lock(&io->mu);
	io->output_closed = true;
	pthread_mutex_unlock(&io->mu);
}

/*
 * The reaper's loop: up to @max completions, each into @out (when not
 * NULL) or delivered; waits for the first up to @timeout_ns. CQEs that
 * end nothing the caller sees (cancels, the first half of a SEND_ZC, a
 * multishot re-arm) do not count, and the wait goes on for the rest of
 * the timeout.
 */
static int reap(rmpsc_io *io, rmpsc_io_cqe *out, uint32_t max, int64_t timeout_ns)
{
	const uint64_t deadline = rmpsc__deadline(timeout_ns);
	uint32_t n = 0;
	bool full = false;

	for (;;) {
		struct io_uring_cqe *cqe;
		rmpsc_io_cqe c;

		refill(io);
		if (!out && io->held_valid) {
			const int err = deliver(io, &io->held, 0);

			if (err == -EPIPE)
				closed_output(io);
			if (err)
				return err == -EAGAIN ? 0 : err;
			io->held_valid = false;
			n++;
		}
		while (n < max && !full) {
			bool have = end_cancelled_rearm(io, &c);

			if (!have) {
				if (io_uring_peek_cqe(&io->uring, &cqe))
					break;
				have = process(io, cqe, &c);
				io_uring_cqe_seen(&io->uring, cqe);
			}
			if (!have)
				continue;
			if (out) {
				out[n++] = c;
			} else {
				const int err = deliver(io, &c, 0);

				if (err) {
					io->held = c;
					io->held_valid = true;
					if (err != -EAGAIN) {
						closed_output(io);
						return n ? (int)n : err;
					}
					full = true;
				} else {
					n++;
				}
			}
		}
		if (n || full || !timeout_ns || io->kick_seen)
			break;
		{
			int64_t left = -1;
			int err;

			if (timeout_ns > 0) {
				left = time_left(deadline);
				if (!left)
					return -ETIMEDOUT;
			}
			if (foreign(io) || !io->threaded) {
				err = wait_cqe(io, left);
			} else { /* the engine's thread */
				if (engine_spin(io)) {
					if (atomic_load_explicit(&io->queued, memory_order_relaxed))
						break; /* to the thread's loop, which submits */
					continue;
				}
				if (!engine_sleep_begin(io))
					break;
				err = wait_cqe(io, left);
				engine_sleep_end(io);
			}
			if (err && err != -ETIME && err != -EINTR && err != -EAGAIN)
				return err;
		}
	}
	if (n && !out && io->notifier && !(io->flags & RMPSC_IO_F_EVENTFD))
		(void)rmpsc_notifier_signal(io->notifier); /* EVENTFD: the kernel did */
	if (!n && !full)
		return -EAGAIN;
	return (int)n;
}

int rmpsc_io_reap(rmpsc_io *io, rmpsc_io_cqe *out, uint32_t n, int64_t timeout_ns)
{
	RMPSC__CHECK(!io_ok(io), -EBADF);
	RMPSC__CHECK(!out || !n || io->ring || io->prod || io->has_thread, -EINVAL);
	return reap(io, out, n, timeout_ns);
}

int rmpsc_io_run(rmpsc_io *io, uint32_t max, int64_t timeout_ns)
{
	RMPSC__CHECK(!io_ok(io), -EBADF);
	RMPSC__CHECK((!io->ring && !io->prod) || io->has_thread, -EINVAL);
	if (!max)
		return 0;
	return reap(io, NULL, max, timeout_ns);
}

/* The completion thread: reap, deliver, and wait for room when the output
 * is full (the kernel keeps completions meanwhile: IORING_FEAT_NODROP). */
/* The completion thread (THREAD mode): the one task that enters the
 * kernel with the engine's SQEs; reaps, delivers, and waits for room when
 * the output is full (the kernel keeps completions meanwhile:
 * IORING_FEAT_NODROP). Woken by a CQE, or by a kick (its multishot poll on
 * kick_fd). */
static void *io_thread(void *arg)
{
	rmpsc_io *io = arg;

	engine_self = io;
	for (;;) {
		bool stop;
		int n;

		if (io->kick_seen) {
			uint64_t v;

			(void)!read(io->kick_fd, &v, sizeof v);
		}
		pthread_mutex_lock(&io->mu);
		stop = io->stopping;
		if (!stop && !io->kick_armed) {
			struct io_uring_sqe *sqe = sqe_get(io);

			if (sqe) {
				io_uring_prep_poll_multishot(sqe, io->kick_fd, POLLIN);
				sqe->user_data = UD_KICK;
				io->kick_armed = true;
			}
		}
		if (!stop) {
			atomic_store_explicit(&io->queued, 0, memory_order_relaxed);
			(void)io_uring_submit(&io->uring);
		}
		pthread_mutex_unlock(&io->mu);
		if (stop)
			break;
		if (io->held_valid) {
			const int err = deliver(io, &io->held, 10000000);

			if (err == -EPIPE) {
				closed_output(io);
				break; /* nobody to deliver to: destroy drains */
			}
			if (err)
				continue;
			io->held_valid = false;
			if (io->notifier)
				(void)rmpsc_notifier_signal(io->notifier);
		}
		io->kick_seen = false;
		n = reap(io, NULL, 256, -1);
		if (n == -EPIPE)
			break;
	}
	return NULL;
}

int64_t rmpsc_io_inflight(const rmpsc_io *io)
{
	RMPSC__CHECK(!io_ok(io), -EBADF);
	return (int64_t)atomic_load_explicit(&io->inflight, memory_order_acquire);
}

int rmpsc_io_fd(const rmpsc_io *io)
{
	RMPSC__CHECK(!io_ok(io), -EBADF);
	return io->uring.ring_fd;
}

int rmpsc_io_get_info(const rmpsc_io *io, rmpsc_io_info *info, uint32_t size)
{
	rmpsc_io_info v;

	RMPSC__CHECK(!io_ok(io), -EBADF);
	memset(&v, 0, sizeof v);
	v.size = sizeof v;
	v.fixed = io->reg != NULL;
	v.fixed_error = io->fixed_error;
	v.features = (uint32_t)io->features;
	v.inflight = atomic_load_explicit(&io->inflight, memory_order_acquire);
	v.memlock_bytes = io->memlock_bytes;
	v.memlock_limit = io->memlock_limit;
	v.recv_posted = bufring_posted(io->recv);
	return rmpsc__size_out(info, size, &v, sizeof v, RMPSC_IO_INFO_SIZE_V1);
}

static int io_check(const rmpsc_io_config *c)
{
	RMPSC__CHECK(c->flags & ~(uint32_t)RMPSC_IO_F_ALL, -EINVAL);
	RMPSC__CHECK(!c->entries || c->entries > 4096 || (c->entries & (c->entries - 1)),
		     -EINVAL);
	RMPSC__CHECK(c->max_ops > 65536, -EINVAL);
	RMPSC__CHECK(c->ring && c->mpsc, -EINVAL);
	RMPSC__CHECK((c->flags & RMPSC_IO_F_THREAD) && !c->ring && !c->mpsc, -EINVAL);
	RMPSC__CHECK((c->flags & RMPSC_IO_F_EVENTFD) && !c->notifier, -EINVAL);
	/* The kernel signals the eventfd when it posts a CQE, before the
	 * thread delivers it: a consumer woken by that could find nothing
	 * and sleep through it. The thread signals the notifier itself. */
	RMPSC__CHECK((c->flags & RMPSC_IO_F_EVENTFD) && (c->flags & RMPSC_IO_F_THREAD), -EINVAL);
	RMPSC__CHECK((c->flags & RMPSC_IO_F_SUBMIT_DIRECT) && !(c->flags & RMPSC_IO_F_THREAD),
		     -EINVAL);
	RMPSC__CHECK(c->recv_buffers && (c->recv_buffers > RMPSC_URING_BUFRING_MAX ||
					 (c->recv_buffers & (c->recv_buffers - 1))),
		     -EINVAL);
	if (c->ring) {
		const int64_t es = rmpsc_ring_elem_size(c->ring);

		if (es < 0)
			return (int)es;
		RMPSC__CHECK(es < (int64_t)sizeof(rmpsc_io_cqe), -EINVAL);
	}
	if (c->mpsc) {
		const int64_t es = rmpsc_mpsc_elem_size(c->mpsc);

		if (es < 0)
			return (int)es;
		RMPSC__CHECK(es < (int64_t)sizeof(rmpsc_io_cqe), -EINVAL);
	}
	if (c->notifier) {
		const int fd = rmpsc_notifier_fd(c->notifier);

		if (fd < 0)
			return fd;
	}
	{
		const int nt = rmpsc_pool_tier_count(c->pool);

		if (nt < 0)
			return nt;
		RMPSC__CHECK(c->recv_buffers && c->recv_tier >= (uint32_t)nt, -EINVAL);
	}
	return 0;
}

/* The pool was destroyed with FORCE (called under the pool's mutex, so
 * the lock order is the pool's, then ours): no new submissions, and every
 * request is cancelled. Its memory stays until we detach, and the
 * completions come as usual. */
static void pool_gone(struct rmpsc__pool_user *u)
{
	rmpsc_io *io = (rmpsc_io *)((char *)u - offsetof(rmpsc_io, user));
	struct io_uring_sqe *sqe;

	pthread_mutex_lock(&io->mu);
	io->pool_gone = true;
	for (uint32_t s = 0; s < io->max_ops; s++)
		if (io->ops[s].kind)
			io->ops[s].cancel = 1; /* no re-arm from here */
	sqe = sqe_get(io);
	if (sqe) {
		io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_ALL);
		sqe->user_data = UD_CANCEL;
	}
	push_locked(io);
	pthread_mutex_unlock(&io->mu);
}

/* Tear down what create built (and destroy's last step), the pool's hook
 * already removed (rmpsc__pool_unhook()): a forced pool destroy running now
 * cannot reach a half-freed engine. */
static void io_free(rmpsc_io *io, bool leak)
{
	if (io->recv)
		bufring_free(io->recv, leak ? NULL : &io->uring, leak);
	if (io->reg)
		reg_drop(io->reg, NULL); /* the ring's exit drops its table */
	io_uring_queue_exit(&io->uring);
	if (io->kick_fd >= 0)
		close(io->kick_fd);
	if (io->prod)
		(void)rmpsc_producer_deregister(io->prod);
	pthread_mutex_destroy(&io->mu);
	rmpsc__pool_detach(io->pool, NULL);
	io->magic = RMPSC__MAGIC_DEAD;
	free(io->ops);
	free(io);
}

int rmpsc_io_create(const rmpsc_io_config *ucfg, rmpsc_io **out)
{
	rmpsc_io_config cfg = io_defaults;
	struct io_uring_params prm;
	rmpsc_io *io;
	int err;

	RMPSC__CHECK(!out, -EINVAL);
	*out = NULL;
	err = rmpsc__config_copy(&cfg, sizeof cfg, ucfg, RMPSC_IO_CONFIG_SIZE_V1);
	if (err)
		return err;
	err = io_check(&cfg);
	if (err)
		return err;
	io = calloc(1, sizeof *io);
	if (!io)
		return -ENOMEM;
	io->features = rmpsc_uring_features();
	if (io->features < 0) {
		err = (int)io->features;
		free(io);
		return err;
	}
	io->flags = cfg.flags;
	io->threaded = (cfg.flags & RMPSC_IO_F_THREAD) != 0;
	io->kick_fd = -1;
	io->pool = cfg.pool;
	io->ring = cfg.ring;
	io->notifier = cfg.notifier;
	io->drain_timeout_ns = cfg.drain_timeout_ns;
	io->max_ops = cfg.max_ops ? cfg.max_ops : 2 * cfg.entries;
	io->memlock_limit = memlock_limit();
	io->ops = calloc(io->max_ops, sizeof *io->ops);
	if (!io->ops) {
		free(io);
		return -ENOMEM;
	}
	for (uint32_t s = 0; s < io->max_ops; s++)
		io->ops[s].next = s + 1 < io->max_ops ? s + 1 : NO_SLOT;
	pthread_mutex_init(&io->mu, NULL);
	io->user.gone = pool_gone;
	err = rmpsc__pool_attach(cfg.pool, &io->user);
	if (err) {
		pthread_mutex_destroy(&io->mu);
		free(io->ops);
		free(io);
		return err;
	}
	memset(&prm, 0, sizeof prm);
	/* The CQ holds every op in flight; NODROP keeps any excess. */
	prm.flags = IORING_SETUP_CQSIZE;
	prm.cq_entries = io->max_ops > 2 * cfg.entries ? io->max_ops : 2 * cfg.entries;
	err = io_uring_queue_init_params(cfg.entries, &io->uring, &prm);
	if (err) {
		rmpsc__pool_detach(cfg.pool, &io->user);
		pthread_mutex_destroy(&io->mu);
		free(io->ops);
		free(io);
		return setup_error(err);
	}
	io->magic = RMPSC__MAGIC_IO; /* io_free's checks from here */
	if (!(prm.features & IORING_FEAT_EXT_ARG)) {
		/* Without it liburing's timed wait takes an SQE, which the
		 * reaper may not (5.11 and later have it). */
		err = -EOPNOTSUPP;
		goto fail;
	}
	if (io->threaded) {
		io->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (io->kick_fd < 0) {
			err = -errno == -ENOMEM ? -ENOMEM : -EAGAIN;
			goto fail;
		}
	}
	if (!(cfg.flags & RMPSC_IO_F_NO_FIXED)) {
		rmpsc_uring_reg_info ri = {.size = sizeof ri};

		err = reg_make(&io->uring, cfg.pool, 0, 0, &ri, &io->reg);
		io->memlock_bytes = ri.bytes;
		io->fixed_error = err;
		if (err && (cfg.flags & RMPSC_IO_F_REQUIRE_FIXED))
			goto fail;
		err = 0;
	}
	if (cfg.recv_buffers) {
		if (!(io->features & RMPSC_URING_HAS_BUF_RING)) {
			err = -EOPNOTSUPP;
			goto fail;
		}
		err = bufring_make(&io->uring, cfg.pool, cfg.recv_tier, ENGINE_GROUP,
				   cfg.recv_buffers, &io->recv);
		if (err == -EPERM)
			err = -EOPNOTSUPP; /* a filter on io_uring_register */
		if (err)
			goto fail;
	}
	if (cfg.mpsc) {
		err = rmpsc_mpsc_register(cfg.mpsc, &io->prod);
		if (err)
			goto fail;
		io->esz = (size_t)rmpsc_mpsc_elem_size(cfg.mpsc);
	} else if (cfg.ring) {
		io->esz = (size_t)rmpsc_ring_elem_size(cfg.ring);
	}
	if (cfg.flags & RMPSC_IO_F_EVENTFD) {
		err = io_uring_register_eventfd(&io->uring, rmpsc_notifier_fd(cfg.notifier));
		if (err == -EPERM)
			err = -EOPNOTSUPP;
		if (err)
			goto fail;
	}
	if (cfg.flags & RMPSC_IO_F_THREAD) {
		err = -pthread_create(&io->thread, NULL, io_thread, io);
		if (err) {
			err = -EAGAIN;
			goto fail;
		}
		io->has_thread = true;
	}
	*out = io;
	return 0;
fail:
	rmpsc__pool_unhook(io->pool, &io->user);
	io_free(io, false);
	return err;
}

/* Destroy's drain: reap until nothing is in flight or the deadline, each
 * completion's slab back to the pool. */
static void drain(rmpsc_io *io, int64_t timeout_ns)
{
	const uint64_t deadline = rmpsc__deadline(timeout_ns);

	if (io->held_valid && io->held.handle != RMPSC_POOL_HANDLE_NONE)
		(void)rmpsc__pool_free(io->pool, io->held.handle);
	io->held_valid = false;
	while (atomic_load_explicit(&io->inflight, memory_order_acquire)) {
		struct io_uring_cqe *cqe;
		rmpsc_io_cqe c;
		int64_t left;

		while (end_cancelled_rearm(io, &c))
			;
		while (!io_uring_peek_cqe(&io->uring, &cqe)) {
			if (process(io, cqe, &c) && c.handle != RMPSC_POOL_HANDLE_NONE)
				(void)rmpsc__pool_free(io->pool, c.handle);
			io_uring_cqe_seen(&io->uring, cqe);
		}
		if (!atomic_load_explicit(&io->inflight, memory_order_acquire))
			break;
		left = time_left(deadline);
		if (!left)
			break;
		(void)wait_cqe(io, left < 10000000 ? left : 10000000);
	}
}

int rmpsc_io_destroy(rmpsc_io *io, uint64_t *leaked)
{
	uint64_t left = 0;

	if (leaked)
		*leaked = 0;
	if (!io)
		return 0;
	RMPSC__CHECK(!io_ok(io), -EBADF);
	/* First, so that a forced pool destroy from now on does not reach
	 * into the engine (it waits for this if it is running). */
	rmpsc__pool_unhook(io->pool, &io->user);
	pthread_mutex_lock(&io->mu);
	io->stopping = true;
	pthread_mutex_unlock(&io->mu);
	if (io->has_thread) {
		/* The thread may sit in a full ring's push: closing is not
		 * ours to do, so it looks at `stopping` every 10 ms there.
		 * Its exit cancels what it submitted (the kernel does). */
		pthread_mutex_lock(&io->mu);
		kick(io);
		pthread_mutex_unlock(&io->mu);
		pthread_join(io->thread, NULL);
		io->has_thread = false;
	}
	pthread_mutex_lock(&io->mu);
	io->threaded = false; /* this thread submits from here */
	pthread_mutex_unlock(&io->mu);
	pthread_mutex_lock(&io->mu);
	for (uint32_t s = 0; s < io->max_ops; s++)
		if (io->ops[s].kind)
			io->ops[s].cancel = 1; /* no re-arm from here */
	{
		struct io_uring_sqe *sqe = sqe_get(io);

		if (sqe) {
			io_uring_prep_cancel64(sqe, 0,
					       IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_ALL);
			sqe->user_data = UD_CANCEL;
		}
		push_locked(io);
	}
	pthread_mutex_unlock(&io->mu);
	drain(io, io->drain_timeout_ns);
	left = atomic_load_explicit(&io->inflight, memory_order_acquire);
	if (left) {
		/* The kernel may still write these slabs: they stay held, and
		 * the pool keeps their memory. */
		uint64_t n = bufring_posted(io->recv);

		for (uint32_t s = 0; s < io->max_ops; s++)
			n += io->ops[s].kind && io->ops[s].h != RMPSC_POOL_HANDLE_NONE;
		if (leaked)
			*leaked = n;
	}
	io_free(io, left != 0);
	return left ? -ETIMEDOUT : 0;
}

#else /* !RMPSC_HAVE_URING: the same symbols, -EOPNOTSUPP */

int64_t rmpsc_uring_features(void)
{
	return -EOPNOTSUPP;
}

int rmpsc_uring_register(struct io_uring *ring, rmpsc_pool *pool, uint32_t first_index,
			 uint32_t flags, rmpsc_uring_reg_info *info, rmpsc_uring_reg **out)
{
	(void)ring, (void)pool, (void)first_index, (void)flags, (void)info;
	if (out)
		*out = NULL;
	return -EOPNOTSUPP;
}

int rmpsc_uring_unregister(rmpsc_uring_reg *reg, struct io_uring *ring)
{
	(void)ring;
	return reg ? -EOPNOTSUPP : 0;
}

int rmpsc_uring_buffer(const rmpsc_uring_reg *reg, uint32_t h, uint32_t *buf_index,
		       struct iovec *slab)
{
	(void)reg, (void)h, (void)buf_index, (void)slab;
	return -EOPNOTSUPP;
}

int rmpsc_uring_prep_read_fixed(struct io_uring_sqe *sqe, rmpsc_uring_reg *reg, uint32_t h,
				int fd, uint64_t offset, uint32_t len)
{
	(void)sqe, (void)reg, (void)h, (void)fd, (void)offset, (void)len;
	return -EOPNOTSUPP;
}

int rmpsc_uring_prep_write_fixed(struct io_uring_sqe *sqe, rmpsc_uring_reg *reg, uint32_t h,
				 int fd, uint64_t offset)
{
	(void)sqe, (void)reg, (void)h, (void)fd, (void)offset;
	return -EOPNOTSUPP;
}

int rmpsc_uring_prep_recv(struct io_uring_sqe *sqe, rmpsc_uring_reg *reg, uint32_t h, int fd,
			  int msg_flags)
{
	(void)sqe, (void)reg, (void)h, (void)fd, (void)msg_flags;
	return -EOPNOTSUPP;
}

int rmpsc_uring_prep_send(struct io_uring_sqe *sqe, rmpsc_uring_reg *reg, uint32_t h, int fd,
			  int msg_flags)
{
	(void)sqe, (void)reg, (void)h, (void)fd, (void)msg_flags;
	return -EOPNOTSUPP;
}

int rmpsc_uring_prep_send_zc(struct io_uring_sqe *sqe, rmpsc_uring_reg *reg, uint32_t h,
			     int fd, int msg_flags)
{
	(void)sqe, (void)reg, (void)h, (void)fd, (void)msg_flags;
	return -EOPNOTSUPP;
}

int rmpsc_uring_complete(rmpsc_uring_reg *reg, uint32_t h, int64_t len)
{
	(void)reg, (void)h, (void)len;
	return -EOPNOTSUPP;
}

int rmpsc_uring_bufring_create(struct io_uring *ring, rmpsc_pool *pool, uint32_t tier,
			       uint16_t group, uint32_t entries, uint32_t flags,
			       rmpsc_uring_bufring **out)
{
	(void)ring, (void)pool, (void)tier, (void)group, (void)entries, (void)flags;
	if (out)
		*out = NULL;
	return -EOPNOTSUPP;
}

int rmpsc_uring_bufring_destroy(rmpsc_uring_bufring *br, struct io_uring *ring)
{
	(void)ring;
	return br ? -EOPNOTSUPP : 0;
}

int rmpsc_uring_bufring_take(rmpsc_uring_bufring *br, uint32_t cqe_flags, int32_t res,
			     uint32_t *h)
{
	(void)br, (void)cqe_flags, (void)res, (void)h;
	return -EOPNOTSUPP;
}

int rmpsc_uring_bufring_refill(rmpsc_uring_bufring *br)
{
	(void)br;
	return -EOPNOTSUPP;
}

int rmpsc_uring_prep_recv_multishot(struct io_uring_sqe *sqe, rmpsc_uring_bufring *br, int fd,
				    int msg_flags)
{
	(void)sqe, (void)br, (void)fd, (void)msg_flags;
	return -EOPNOTSUPP;
}

int rmpsc_io_config_init(rmpsc_io_config *cfg, uint32_t size)
{
	(void)cfg, (void)size;
	return -EOPNOTSUPP;
}

int rmpsc_io_create(const rmpsc_io_config *cfg, rmpsc_io **out)
{
	(void)cfg;
	if (out)
		*out = NULL;
	return -EOPNOTSUPP;
}

int rmpsc_io_destroy(rmpsc_io *io, uint64_t *leaked)
{
	if (leaked)
		*leaked = 0;
	return io ? -EOPNOTSUPP : 0;
}

int rmpsc_io_read(rmpsc_io *io, int fd, uint64_t offset, uint32_t h, uint32_t len, uint64_t tag,
		  uint32_t flags)
{
	(void)io, (void)fd, (void)offset, (void)h, (void)len, (void)tag, (void)flags;
	return -EOPNOTSUPP;
}

int rmpsc_io_write(rmpsc_io *io, int fd, uint64_t offset, uint32_t h, uint64_t tag,
		   uint32_t flags)
{
	(void)io, (void)fd, (void)offset, (void)h, (void)tag, (void)flags;
	return -EOPNOTSUPP;
}

int rmpsc_io_recv(rmpsc_io *io, int fd, uint32_t h, uint64_t tag, uint32_t flags)
{
	(void)io, (void)fd, (void)h, (void)tag, (void)flags;
	return -EOPNOTSUPP;
}

int rmpsc_io_send(rmpsc_io *io, int fd, uint32_t h, uint64_t tag, uint32_t flags)
{
	(void)io, (void)fd, (void)h, (void)tag, (void)flags;
	return -EOPNOTSUPP;
}

int rmpsc_io_accept(rmpsc_io *io, int fd, uint64_t tag, uint32_t flags)
{
	(void)io, (void)fd, (void)tag, (void)flags;
	return -EOPNOTSUPP;
}

int rmpsc_io_recv_multishot(rmpsc_io *io, int fd, uint64_t tag, uint32_t flags)
{
	(void)io, (void)fd, (void)tag, (void)flags;
	return -EOPNOTSUPP;
}

int rmpsc_io_cancel(rmpsc_io *io, uint64_t tag)
{
	(void)io, (void)tag;
	return -EOPNOTSUPP;
}

int rmpsc_io_submit(rmpsc_io *io)
{
	(void)io;
	return -EOPNOTSUPP;
}

int rmpsc_io_reap(rmpsc_io *io, rmpsc_io_cqe *out, uint32_t n, int64_t timeout_ns)
{
	(void)io, (void)out, (void)n, (void)timeout_ns;
	return -EOPNOTSUPP;
}

int rmpsc_io_run(rmpsc_io *io, uint32_t max, int64_t timeout_ns)
{
	(void)io, (void)max, (void)timeout_ns;
	return -EOPNOTSUPP;
}

int64_t rmpsc_io_inflight(const rmpsc_io *io)
{
	(void)io;
	return -EOPNOTSUPP;
}

int rmpsc_io_get_info(const rmpsc_io *io, rmpsc_io_info *info, uint32_t size)
{
	(void)io, (void)info, (void)size;
	return -EOPNOTSUPP;
}

int rmpsc_io_fd(const rmpsc_io *io)
{
	(void)io;
	return -EOPNOTSUPP;
}

#endif /* RMPSC_HAVE_URING */
