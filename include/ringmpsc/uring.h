/* SPDX-License-Identifier: MIT */
/**
 * @file ringmpsc/uring.h
 * io_uring with pool slabs: the kernel reads and writes straight into
 * BufferPool slabs (ringmpsc/pool.h), and the pool handle is the token that
 * says who owns a slab while the kernel holds it.
 *
 * Two layers:
 *  - **For liburing users** (rmpsc_uring_*): register a pool's tiers as
 *    fixed buffers on your own `struct io_uring`, map a handle to its buffer
 *    index and address, prepare READ_FIXED, WRITE_FIXED, recv, send and
 *    SEND_ZC requests on a handle's slab, and feed a provided-buffer ring
 *    from a pool so that multishot receives land in pool slabs.
 *  - **For everyone else** (rmpsc_io_*, from C, Python or Go): an engine
 *    that owns an io_uring, registers a pool, submits read, write, recv,
 *    send and accept on file descriptors with a user tag, and delivers each
 *    completion (handle, result, tag, flags) into a ring or MPSC channel
 *    of this library, or into the caller's array.
 *
 * **Ownership.** Between a prep (or an engine submit) and its completion
 * the kernel holds the slab: rmpsc_pool_free(), the pool's accessors and a
 * second submission of the handle return -EBUSY. A slab is the handle
 * owner's again only when its final CQE has arrived: not when a cancel
 * succeeds, nor when the file descriptor closes; for SEND_ZC, when the
 * notification CQE has arrived (it follows even an errored send). A pool
 * destroyed with RMPSC_POOL_DESTROY_FORCE while a registration, buffer
 * ring or engine still uses it keeps its memory until the last of them is
 * gone (an engine cancels its I/O at once and refuses new requests with
 * -EPIPE), and a tier holding a slab that the kernel may still write is
 * never unmapped (leaked rather than reused).
 *
 * **Availability.** Built without liburing, every function here returns
 * -EOPNOTSUPP. Where the kernel lacks io_uring (-ENOSYS from
 * io_uring_setup, an old kernel or a seccomp filter) creating an engine
 * returns -ENOSYS; where it is disabled (the `kernel.io_uring_disabled`
 * sysctl, or a filter returning EPERM) -EOPNOTSUPP. Newer kernel features
 * (rmpsc_uring_features()) are probed at run time, never inferred from the
 * kernel version.
 *
 * **Limits** (kernel): a registered buffer is at most 1 GiB and a table
 * holds at most 16384 of them, so a tier is registered as chunks of whole
 * slabs of at most 1 GiB each; a provided-buffer ring has at most 32768
 * entries with 16-bit buffer ids; one operation moves at most 2^31 - 1
 * bytes. Registered buffers are charged to RLIMIT_MEMLOCK unless the
 * process has CAP_IPC_LOCK: a shortfall is reported with the numbers
 * (rmpsc_uring_reg_info).
 *
 * This header declares `struct io_uring` and `struct io_uring_sqe` without
 * including liburing: include <liburing.h> yourself to use the rmpsc_uring_*
 * calls; the engine needs nothing of liburing in the caller.
 */
#ifndef RINGMPSC_URING_H
#define RINGMPSC_URING_H

#include <stdint.h>
#include <sys/uio.h>

#include "common.h"
#include "channel.h"
#include "notify.h"
#include "pool.h"
#include "ring.h"

#ifdef __cplusplus
extern "C" {
#endif

struct io_uring;
struct io_uring_sqe;

/* ---- what the kernel offers ------------------------------------------------ */

/** Kernel io_uring features found by rmpsc_uring_features() (pinned bits). */
enum rmpsc_uring_feature {
	RMPSC_URING_HAS_RING = 1u << 0,           /**< io_uring_setup works */
	RMPSC_URING_HAS_FIXED = 1u << 1,          /**< READ_FIXED/WRITE_FIXED */
	RMPSC_URING_HAS_BUF_RING = 1u << 2,       /**< provided-buffer rings */
	RMPSC_URING_HAS_RECV_MULTISHOT = 1u << 3, /**< multishot recv */
	RMPSC_URING_HAS_SEND_ZC = 1u << 4,        /**< IORING_OP_SEND_ZC */
	RMPSC_URING_HAS_ZC_REPORT_USAGE = 1u << 5, /**< SEND_ZC says when it copied */
	RMPSC_URING_HAS_BUF_RING_INC = 1u << 6,   /**< incremental buffer rings */
	RMPSC_URING_HAS_READ_MULTISHOT = 1u << 7, /**< IORING_OP_READ_MULTISHOT */
	RMPSC_URING_HAS_SINGLE_ISSUER = 1u << 8,  /**< IORING_SETUP_SINGLE_ISSUER */
	RMPSC_URING_HAS_DEFER_TASKRUN = 1u << 9,  /**< IORING_SETUP_DEFER_TASKRUN */
};

/**
 * Probe the running kernel (once per process; later calls return the
 * same answer): which io_uring features work here.
 *
 * @return a mask of enum rmpsc_uring_feature (RMPSC_URING_HAS_RING set
 * whenever the rest may be); -ENOSYS: the kernel has no io_uring;
 * -EOPNOTSUPP: io_uring is disabled (sysctl, seccomp) or the library was
 * built without liburing; -ENOMEM: no memory for a probe ring.
 * Concurrency: any thread. Progress: blocking (first call: system calls).
 * Ordering: none.
 */
RMPSC_API int64_t rmpsc_uring_features(void);

/* ---- fixed buffers on the caller's ring ------------------------------------ */

/** A pool registered as fixed buffers on a caller's io_uring. */
typedef struct rmpsc_uring_reg rmpsc_uring_reg;

/** rmpsc_uring_register() flags. */
enum rmpsc_uring_reg_flag {
	/** The ring already has a (sparse) buffer table: fill entries from
	 * @p first_index on with io_uring_register_buffers_update_tag()
	 * instead of registering a table of our own. */
	RMPSC_URING_REG_UPDATE = 1u << 0,
	RMPSC_URING_REG_F_ALL = RMPSC_URING_REG_UPDATE,
};

/** The most entries a registered-buffer table has (kernel limit). */
#define RMPSC_URING_BUFFERS_MAX 16384u
/** The largest registered buffer (kernel limit): chunks are at most this. */
#define RMPSC_URING_BUFFER_BYTES_MAX (1ull << 30)

/**
 * What a registration takes and what it has (size-prefixed output; set
 * `size` to sizeof before the call). Filled on success and on -ENOMEM,
 * so that a memlock shortfall can be reported with its numbers.
 */
typedef struct rmpsc_uring_reg_info {
	uint32_t size;         /**< caller's sizeof, set before the call */
	uint32_t buffers;      /**< table entries the pool takes (chunks) */
	uint32_t first_index;  /**< its first entry */
	uint32_t cap_ipc_lock; /**< 1: CAP_IPC_LOCK in the initial user namespace
				    now: nothing charged to memlock */
	uint64_t bytes;        /**< bytes pinned: what RLIMIT_MEMLOCK is charged
				    (pages whole; THP tiers as 2 MiB pages) */
	uint64_t memlock_limit; /**< RLIMIT_MEMLOCK soft limit; UINT64_MAX: none */
} rmpsc_uring_reg_info;

#define RMPSC_URING_REG_INFO_SIZE_V1 32u

/**
 * Register every tier of @p pool as fixed buffers on @p ring: each tier
 * as chunks of whole slabs of at most RMPSC_URING_BUFFER_BYTES_MAX bytes,
 * entries numbered from @p first_index in tier order. The registration
 * holds a reference on the pool (rmpsc_pool_destroy() without FORCE
 * returns -EBUSY while it exists).
 *
 * @param ring an initialised liburing ring.
 * @param pool the pool.
 * @param first_index 0 without RMPSC_URING_REG_UPDATE; with it, the first
 *   entry of the ring's existing table to fill.
 * @param flags RMPSC_URING_REG_* bits.
 * @param info NULL, or filled as described at rmpsc_uring_reg_info.
 * @param out receives the registration; NULL on error.
 * @return 0; -EINVAL: NULL @p ring or @p out, unknown flag, @p
 *   first_index non-zero without UPDATE, a bad @p info size; -EBADF: @p
 *   pool not a pool; -ENOSPC: the entries would pass
 *   RMPSC_URING_BUFFERS_MAX (or the ring's sparse table); -EBUSY: the ring
 *   has a table already (use UPDATE); -ENOMEM: RLIMIT_MEMLOCK too low for
 *   @p info->bytes without CAP_IPC_LOCK (or no memory); -ENXIO: UPDATE on
 *   a ring without a table; -EOPNOTSUPP: no liburing in this build.
 * Concurrency: the ring's submitter thread (io_uring_register on a ring
 *   another thread submits on is serialised by the kernel, but liburing's
 *   ring state is not thread-safe). Progress: blocking (system calls).
 * Ordering: none.
 */
RMPSC_API int rmpsc_uring_register(struct io_uring *ring, rmpsc_pool *pool,
				   uint32_t first_index, uint32_t flags,
				   rmpsc_uring_reg_info *info, rmpsc_uring_reg **out);

/**
 * Remove the pool's buffers from the ring (the whole table, or with
 * UPDATE the entries it filled, replaced by empty ones) and drop the
 * registration. The ring may already be gone (io_uring_queue_exit() drops
 * its table): then only the registration is dropped; pass NULL as @p ring.
 *
 * @param reg the registration; NULL: nothing to do.
 * @param ring the ring it was made on, or NULL when that ring is gone.
 * @return 0; -EBUSY: a prep on this registration has not been completed
 *   (rmpsc_uring_complete()), nothing changed; -EBADF: @p reg is not a
 *   registration; -EOPNOTSUPP: no liburing in this build.
 * Concurrency: the ring's submitter thread. Progress: blocking.
 * Ordering: none.
 */
RMPSC_API int rmpsc_uring_unregister(rmpsc_uring_reg *reg, struct io_uring *ring);

/**
 * Where a handle's slab is registered: its table entry and its bytes.
 *
 * @param reg the registration.
 * @param h a live handle of its pool.
 * @param buf_index NULL, or receives the entry for READ_FIXED etc.
 * @param slab NULL, or receives the slab's address and size.
 * @return 0; -ESTALE, -EINVAL: as rmpsc_pool_slab(); -EBUSY: the kernel
 *   holds the slab; -EBADF: @p reg is not a registration; -EOPNOTSUPP.
 * Concurrency: any thread. Progress: wait-free. Ordering: none.
 */
RMPSC_API int rmpsc_uring_buffer(const rmpsc_uring_reg *reg, uint32_t h, uint32_t *buf_index,
				 struct iovec *slab);

/**
 * Prepare @p sqe (from io_uring_get_sqe()) as IORING_OP_READ_FIXED of up
 * to @p len bytes at @p offset of @p fd into the slab of @p h, and hand
 * the slab to the kernel (see Ownership). The SQE's user_data is set to
 * @p h; set your own after the call if you need another.
 * When its CQE arrives, call rmpsc_uring_complete(reg, h, cqe->res).
 *
 * @param offset the file offset; UINT64_MAX: the file's current position.
 * @param len bytes; 0: the whole slab.
 * @return 0; -EMSGSIZE: @p len above the slab size (or 2^31 - 1);
 *   -EBUSY: the kernel holds the slab already (a second submission);
 *   -ESTALE, -EINVAL: a bad handle, NULL @p sqe, negative @p fd;
 *   -EBADF: @p reg; -EOPNOTSUPP. On error @p sqe is untouched.
 * Concurrency: any thread for distinct handles. Progress: lock-free.
 * Ordering: the caller's stores to the slab before the call are visible
 *   to the kernel's I/O (it starts after io_uring_submit()).
 */
RMPSC_API int rmpsc_uring_prep_read_fixed(struct io_uring_sqe *sqe, rmpsc_uring_reg *reg,
					  uint32_t h, int fd, uint64_t offset, uint32_t len);

/**
 * As rmpsc_uring_prep_read_fixed(), IORING_OP_WRITE_FIXED of the slab's
 * payload (its rmpsc_pool_set_len() length) at @p offset of @p fd.
 * Complete with rmpsc_uring_complete(reg, h, -1) (the length stays).
 *
 * @return 0; -EMSGSIZE: the payload is above 2^31 - 1 bytes; -EBUSY;
 *   -ESTALE; -EINVAL; -EBADF; -EOPNOTSUPP.
 * Concurrency, Progress, Ordering: as rmpsc_uring_prep_read_fixed().
 */
RMPSC_API int rmpsc_uring_prep_write_fixed(struct io_uring_sqe *sqe, rmpsc_uring_reg *reg,
					   uint32_t h, int fd, uint64_t offset);

/**
 * As rmpsc_uring_prep_read_fixed(), IORING_OP_RECV of up to the whole
 * slab from socket @p fd with recv(2) @p msg_flags. (The kernel has no
 * fixed-buffer recv: the slab is addressed by pointer.)
 * Complete with rmpsc_uring_complete(reg, h, cqe->res).
 *
 * @return 0; -EBUSY; -ESTALE; -EINVAL; -EBADF; -EOPNOTSUPP.
 * Concurrency, Progress, Ordering: as rmpsc_uring_prep_read_fixed().
 */
RMPSC_API int rmpsc_uring_prep_recv(struct io_uring_sqe *sqe, rmpsc_uring_reg *reg, uint32_t h,
				    int fd, int msg_flags);

/**
 * As rmpsc_uring_prep_write_fixed(), IORING_OP_SEND of the payload on
 * socket @p fd with send(2) @p msg_flags (MSG_NOSIGNAL is added).
 * Complete with rmpsc_uring_complete(reg, h, -1).
 *
 * @return 0; -EMSGSIZE; -EBUSY; -ESTALE; -EINVAL; -EBADF; -EOPNOTSUPP.
 * Concurrency, Progress, Ordering: as rmpsc_uring_prep_read_fixed().
 */
RMPSC_API int rmpsc_uring_prep_send(struct io_uring_sqe *sqe, rmpsc_uring_reg *reg, uint32_t h,
				    int fd, int msg_flags);

/**
 * As rmpsc_uring_prep_send(), zero-copy: IORING_OP_SEND_ZC from the
 * registered buffer (IORING_RECVSEND_FIXED_BUF), with
 * IORING_SEND_ZC_REPORT_USAGE where the kernel has it. Two CQEs come back:
 * the result, with IORING_CQE_F_MORE set when a notification follows (set
 * even on an error, as AF_UNIX's -EOPNOTSUPP shows), then the
 * notification (IORING_CQE_F_NOTIF). Call rmpsc_uring_complete(reg, h, -1)
 * only for the CQE that ends the request: the notification, or the result
 * when it came without F_MORE.
 *
 * @return 0; -EOPNOTSUPP: the kernel has no SEND_ZC (or no liburing);
 *   -EMSGSIZE; -EBUSY; -ESTALE; -EINVAL; -EBADF.
 * Concurrency, Progress, Ordering: as rmpsc_uring_prep_read_fixed().
 */
RMPSC_API int rmpsc_uring_prep_send_zc(struct io_uring_sqe *sqe, rmpsc_uring_reg *reg,
				       uint32_t h, int fd, int msg_flags);

/**
 * The CQE of a prepared request arrived: the slab is the handle owner's
 * again. With @p len >= 0 (a read or recv result) the payload length
 * becomes @p len; negative (an error, or a write or send) leaves it.
 * Also the way to take back a slab whose SQE was prepared but never
 * submitted.
 *
 * @param reg the registration the prep was made with.
 * @return 0; -EALREADY: the kernel did not hold this handle's slab;
 *   -EMSGSIZE: @p len above the slab size (the slab is released, length
 *   unchanged); -ESTALE, -EINVAL: a bad handle; -EINVAL: @p reg has no
 *   prep outstanding (another registration of the pool made this one);
 *   -EBADF; -EOPNOTSUPP.
 * Concurrency: the thread that reaped the CQE (one per handle).
 * Progress: wait-free. Ordering: the kernel's writes to the slab, seen by
 *   the reaper through the CQE, happen-before any later access through
 *   the handle (release).
 */
RMPSC_API int rmpsc_uring_complete(rmpsc_uring_reg *reg, uint32_t h, int64_t len);

/* ---- provided-buffer rings fed from a pool ---------------------------------- */

/** A provided-buffer ring whose buffers are slabs of one pool tier. */
typedef struct rmpsc_uring_bufring rmpsc_uring_bufring;

/** The most entries of a provided-buffer ring (kernel limit). */
#define RMPSC_URING_BUFRING_MAX 32768u

/**
 * Create and register a provided-buffer ring of @p entries slabs of tier
 * @p tier of @p pool as buffer group @p group of @p ring, and fill it
 * from the pool. A receive with IOSQE_BUFFER_SELECT and this group (such
 * as rmpsc_uring_prep_recv_multishot()) lands in one of its slabs; the
 * CQE's buffer id names it, and rmpsc_uring_bufring_take() turns it into
 * the handle. Buffer ids are slots of the ring (u16), not handles: pool
 * handles are 32 bits.
 *
 * @param entries a power of two, 1 to RMPSC_URING_BUFRING_MAX.
 * @param flags 0 (reserved).
 * @return 0; -EINVAL: NULL @p ring or @p out, @p entries, @p tier out of
 *   range, flags; -EBADF: @p pool NULL or not a pool; -EEXIST: @p group taken on this ring;
 *   -ENOBUFS: the pool has no slab of the tier to start with; -ENOMEM;
 *   -EOPNOTSUPP: no buffer rings in this kernel or no liburing.
 * Concurrency: the ring's submitter thread. Progress: blocking.
 * Ordering: none.
 */
RMPSC_API int rmpsc_uring_bufring_create(struct io_uring *ring, rmpsc_pool *pool, uint32_t tier,
					 uint16_t group, uint32_t entries, uint32_t flags,
					 rmpsc_uring_bufring **out);

/**
 * Unregister the buffer ring and give its slabs back to the pool. Call it
 * once no request selecting from the group is in flight (their final CQEs
 * have arrived); the ring may be gone already (pass NULL).
 *
 * @return 0; -EBADF: @p br is not a buffer ring; -EOPNOTSUPP.
 * Concurrency: the thread that owns the buffer ring. Progress: blocking.
 * Ordering: none.
 */
RMPSC_API int rmpsc_uring_bufring_destroy(rmpsc_uring_bufring *br, struct io_uring *ring);

/**
 * A CQE of a buffer-selecting request: give its slab to the caller as a
 * handle whose payload length is the result, then put a fresh slab of
 * the pool in the freed slot (when the pool has none, the slot stays
 * empty until rmpsc_uring_bufring_refill()).
 *
 * @param cqe_flags the CQE's flags (IORING_CQE_F_BUFFER and the id).
 * @param res the CQE's result (> 0: bytes in the slab).
 * @param h receives the handle.
 * @return 0; -ENOENT: the CQE carries no buffer (an error, end of stream);
 *   -EPROTO: the id is not one of this ring's posted buffers;
 *   -EINVAL: NULL @p h; -EBADF; -EOPNOTSUPP.
 * Concurrency: one thread at a time per buffer ring (the reaper).
 * Progress: lock-free. Ordering: as rmpsc_uring_complete().
 */
RMPSC_API int rmpsc_uring_bufring_take(rmpsc_uring_bufring *br, uint32_t cqe_flags, int32_t res,
				       uint32_t *h);

/**
 * Fill the buffer ring's empty slots from the pool.
 *
 * @return the buffers now posted to the kernel (>= 0); -EBADF; -EOPNOTSUPP.
 * Concurrency: as rmpsc_uring_bufring_take(). Progress: lock-free.
 * Ordering: none.
 */
RMPSC_API int rmpsc_uring_bufring_refill(rmpsc_uring_bufring *br);

/**
 * Prepare @p sqe as a multishot recv on socket @p fd selecting buffers
 * from @p br's group. Each CQE with IORING_CQE_F_MORE is one receive (take
 * its slab with rmpsc_uring_bufring_take()); a CQE without it ends the
 * request: 0 at end of stream, or an error. -ENOBUFS there means the ring
 * ran dry, not the end of the stream: refill and prepare the request
 * again (the engine does this by itself).
 *
 * @return 0; -EINVAL: NULL @p sqe, negative @p fd; -EBADF; -EOPNOTSUPP: no
 *   multishot recv in this kernel, or no liburing.
 * Concurrency: the ring's submitter thread. Progress: wait-free.
 * Ordering: none.
 */
RMPSC_API int rmpsc_uring_prep_recv_multishot(struct io_uring_sqe *sqe, rmpsc_uring_bufring *br,
					      int fd, int msg_flags);

/* ---- the engine --------------------------------------------------------------- */

/** An io_uring engine over a pool. */
typedef struct rmpsc_io rmpsc_io;

/** rmpsc_io_config flags. */
enum rmpsc_io_flag {
	/** Run a completion thread that reaps and delivers into the ring or
	 * channel of the config (one of them is required); without it the
	 * caller drives completions with rmpsc_io_reap() or rmpsc_io_run(). */
	RMPSC_IO_F_THREAD = 1u << 0,
	/** Do not register the pool as fixed buffers (plain READ/WRITE). */
	RMPSC_IO_F_NO_FIXED = 1u << 1,
	/** Fail creation (-ENOMEM) rather than fall back to plain buffers
	 * when registering the pool fails (RLIMIT_MEMLOCK). */
	RMPSC_IO_F_REQUIRE_FIXED = 1u << 2,
	/** Register the notifier's eventfd with the io_uring: the kernel
	 * signals it at each completion (for an epoll loop that then calls
	 * rmpsc_io_reap() or rmpsc_io_run()). Needs a notifier; not with
	 * THREAD (the kernel would signal before the thread delivers: the
	 * thread signals the notifier itself, after delivering). */
	RMPSC_IO_F_EVENTFD = 1u << 3,
	/** With THREAD: submitting threads enter the kernel with their
	 * requests themselves instead of handing them to the engine's thread.
	 * Faster where requests complete inside the submission (a page-cache
	 * read is copied in the submitter's call, in parallel with the
	 * engine's thread delivering), but io_uring cancels a request
	 * (-ECANCELED) whose submitting thread exits first: every submitting
	 * thread must outlive its requests. */
	RMPSC_IO_F_SUBMIT_DIRECT = 1u << 4,
	RMPSC_IO_F_ALL = (1u << 5) - 1,
};

/**
 * Engine configuration, size-prefixed (rmpsc_io_config_init()).
 * Completions go to @p ring (an SPSC ring whose elements are at least
 * sizeof(rmpsc_io_cqe) bytes; the engine is its one producer), or to @p
 * mpsc (the engine registers one producer), or, with neither, only to
 * rmpsc_io_reap()'s array. The ring, channel and notifier must outlive the
 * engine.
 */
typedef struct rmpsc_io_config {
	uint32_t size;      /**< caller's sizeof, written by init */
	uint32_t flags;     /**< RMPSC_IO_F_* */
	uint32_t entries;   /**< submission queue entries: power of two, 1..4096 (256) */
	uint32_t max_ops;   /**< operations in flight at most, 1..65536; 0: 2 * entries */
	rmpsc_pool *pool;   /**< required (NULL: -EBADF) */
	rmpsc_ring *ring;   /**< completions go here, or */
	rmpsc_mpsc *mpsc;   /**< here, or neither */
	rmpsc_notifier *notifier; /**< signalled after completions are delivered
				       into the ring or channel (not by reap;
				       with EVENTFD, by the kernel instead) */
	int64_t drain_timeout_ns; /**< destroy's wait for cancelled I/O (1 s); < 0: forever */
	uint32_t recv_tier;    /**< pool tier of multishot receive buffers (0) */
	uint32_t recv_buffers; /**< provided buffers for rmpsc_io_recv_multishot():
				    power of two <= 32768; 0: none (default) */
} rmpsc_io_config;

#define RMPSC_IO_CONFIG_SIZE_V1 64u

/** Operation kinds in rmpsc_io_cqe.op (pinned). */
enum rmpsc_io_op {
	RMPSC_IO_OP_READ = 1,
	RMPSC_IO_OP_WRITE = 2,
	RMPSC_IO_OP_RECV = 3,
	RMPSC_IO_OP_SEND = 4,
	RMPSC_IO_OP_ACCEPT = 5,
	RMPSC_IO_OP_RECV_MULTISHOT = 6,
};

/** rmpsc_io_cqe.flags bits (pinned). */
enum rmpsc_io_cqe_flag {
	/** A multishot receive goes on: more completions of this tag come. */
	RMPSC_IO_CQE_F_MORE = 1u << 0,
	/** A zero-copy send that the kernel copied after all (loopback,
	 * AF_UNIX); set only where the kernel reports it. */
	RMPSC_IO_CQE_F_COPIED = 1u << 1,
	/** A zero-copy send: its slab was held until the notification. */
	RMPSC_IO_CQE_F_ZC = 1u << 2,
};

/**
 * One completion. @p handle is the slab the operation used, the caller's
 * again (free it, or submit it again): a read or receive's bytes are in
 * it and its payload length is @p result; RMPSC_POOL_HANDLE_NONE for an
 * accept and for the last completion of a multishot receive (end of
 * stream or error). @p result: bytes moved, the accepted socket, or
 * -errno (-ECANCELED after rmpsc_io_cancel()). A short read is not an
 * error: @p result says how much arrived.
 */
typedef struct rmpsc_io_cqe {
	uint64_t tag;    /**< the submitter's */
	uint32_t handle; /**< pool handle, or RMPSC_POOL_HANDLE_NONE */
	int32_t result;  /**< >= 0: bytes or fd; < 0: -errno */
	uint32_t flags;  /**< RMPSC_IO_CQE_F_* */
	uint32_t op;     /**< enum rmpsc_io_op */
} rmpsc_io_cqe;

/** rmpsc_io submit flags. */
enum rmpsc_io_submit_flag {
	/** Queue the request without entering the kernel: it goes with the
	 * next submission (any submit call without this flag, or
	 * rmpsc_io_submit()). */
	RMPSC_IO_SUBMIT_MORE = 1u << 0,
	/** rmpsc_io_send(): zero-copy (SEND_ZC); the completion comes after
	 * the kernel's notification, with RMPSC_IO_CQE_F_ZC. */
	RMPSC_IO_SEND_ZC = 1u << 1,
	RMPSC_IO_SUBMIT_F_ALL = (1u << 2) - 1,
};

/** What an engine has (size-prefixed output, rmpsc_io_info()). */
typedef struct rmpsc_io_info {
	uint32_t size;      /**< caller's sizeof, set before the call */
	uint32_t fixed;     /**< 1: the pool is registered as fixed buffers */
	int32_t fixed_error; /**< why not, when it was tried: -errno; else 0 */
	uint32_t features;  /**< rmpsc_uring_features() bits */
	uint64_t inflight;  /**< as rmpsc_io_inflight() */
	uint64_t memlock_bytes; /**< what registering the pool takes (0: not tried) */
	uint64_t memlock_limit; /**< RLIMIT_MEMLOCK soft limit; UINT64_MAX: none */
	uint32_t recv_posted;   /**< multishot buffers posted to the kernel */
	uint32_t _pad0;         /**< zero */
} rmpsc_io_info;

#define RMPSC_IO_INFO_SIZE_V1 48u

/**
 * Fill @p cfg with defaults (at most @p size bytes) and record @p size.
 * @return 0; -EINVAL: NULL @p cfg, @p size below v1 or not a multiple of
 *   8; -E2BIG: @p size above 4096.
 * Concurrency: any thread. Progress: wait-free. Ordering: none.
 */
RMPSC_API int rmpsc_io_config_init(rmpsc_io_config *cfg, uint32_t size);

/**
 * Create an engine: an io_uring of @p cfg->entries, the pool registered
 * as fixed buffers unless NO_FIXED (falling back to plain buffers when
 * that fails, unless REQUIRE_FIXED; rmpsc_io_info() says which and why),
 * a provided-buffer ring when @p cfg->recv_buffers, and the completion
 * thread with THREAD. Holds a reference on the pool.
 *
 * @return 0; -EINVAL: NULL @p cfg or @p out, unknown flags, sizes out of
 *   range, ring or channel elements too small, both ring and mpsc, THREAD
 *   without either, EVENTFD without a notifier or with THREAD; -EBADF:
 *   pool NULL or not
 *   a pool, ring, mpsc or notifier not one; -E2BIG: config; -ENOMEM: memory, or REQUIRE_FIXED and the
 *   registration failed (memlock: rmpsc_uring_register()); -ENOBUFS: no
 *   slab for the receive buffers; -ENOSYS: no io_uring in this kernel;
 *   -EOPNOTSUPP: io_uring disabled or refused (the sysctl, a seccomp
 *   filter on its calls), a feature asked for missing (or
 *   IORING_FEAT_EXT_ARG, kernels before 5.11), or no liburing in this
 *   build; -EAGAIN: a thread or its eventfd could not be made.
 * Concurrency: any thread. Progress: blocking. Ordering: none.
 */
RMPSC_API int rmpsc_io_create(const rmpsc_io_config *cfg, rmpsc_io **out);

/**
 * Destroy the engine: stop its thread, cancel every operation, and wait
 * up to the config's drain_timeout_ns for their final CQEs. Completions
 * not yet delivered when destroy starts are not delivered, and the slabs
 * of operations still in flight go back to the pool as their CQEs come
 * (their handles are stale afterwards). If the drain times out, the slabs
 * still held are
 * leaked (never freed: the kernel may still write them), counted in @p
 * leaked, and the pool keeps that memory.
 *
 * @param io the engine; NULL: nothing to do (returns 0).
 * @param leaked NULL, or receives the slabs leaked.
 * @return 0; -ETIMEDOUT: the drain timed out, slabs leaked (the engine is
 *   gone all the same); -EBADF: @p io is not an engine.
 * Concurrency: no other call on the engine at the same time.
 * Progress: blocking. Ordering: none.
 */
RMPSC_API int rmpsc_io_destroy(rmpsc_io *io, uint64_t *leaked);

/**
 * Read up to @p len bytes at @p offset of @p fd into the slab of @p h
 * (READ_FIXED when the pool is registered). The kernel holds the slab
 * until the completion; the completion's result is the bytes read (short
 * reads included) and so is the slab's payload length.
 *
 * @param offset file offset; UINT64_MAX: the file's current position.
 * @param len bytes; 0: the whole slab.
 * @param flags RMPSC_IO_SUBMIT_MORE or 0.
 * @return 0 (queued, and submitted unless MORE: from here the completion
 *   will come, whatever later submissions report); -EBUSY: the slab is in
 *   flight already; -EMSGSIZE: @p len above the slab; -ESTALE, -EINVAL:
 *   bad handle, fd or flags; -EAGAIN: max_ops in flight, or the
 *   submission queue full and the kernel not taking more; -EPIPE: the
 *   engine is being destroyed, its pool was (FORCE), or its ring or
 *   channel is closed; -EBADF: @p io; -EOPNOTSUPP.
 * Concurrency: any threads. io_uring ties a request to the thread that
 *   enters the kernel with it, and cancels it (-ECANCELED) if that thread
 *   exits first: with THREAD the engine's thread does that for every
 *   request, so a submitter may exit at once (not with SUBMIT_DIRECT);
 *   without THREAD it is the
 *   thread whose call submits it (this one; with RMPSC_IO_SUBMIT_MORE a
 *   later submit or rmpsc_io_submit(), or a reap or run that re-arms a
 *   multishot receive), which must outlive the request.
 *   Progress: blocking (a mutex, io_uring_enter).
 * Ordering: the caller's stores to the slab before the call, and the
 *   kernel's writes, happen-before the completion is received.
 */
RMPSC_API int rmpsc_io_read(rmpsc_io *io, int fd, uint64_t offset, uint32_t h, uint32_t len,
			    uint64_t tag, uint32_t flags);

/**
 * Write the payload of @p h (its length) at @p offset of @p fd.
 * @return as rmpsc_io_read() (-EMSGSIZE: payload above 2^31 - 1).
 * Concurrency, Progress, Ordering: as rmpsc_io_read().
 */
RMPSC_API int rmpsc_io_write(rmpsc_io *io, int fd, uint64_t offset, uint32_t h, uint64_t tag,
			     uint32_t flags);

/**
 * Receive once from socket @p fd into the slab of @p h (up to its size).
 * @return as rmpsc_io_read().
 * Concurrency, Progress, Ordering: as rmpsc_io_read().
 */
RMPSC_API int rmpsc_io_recv(rmpsc_io *io, int fd, uint32_t h, uint64_t tag, uint32_t flags);

/**
 * Send the payload of @p h on socket @p fd (MSG_NOSIGNAL). With
 * RMPSC_IO_SEND_ZC, zero-copy: the completion comes when the kernel's
 * notification has arrived, and carries the send's result.
 * @return as rmpsc_io_read(); -EOPNOTSUPP: ZC and the kernel has no SEND_ZC.
 * Concurrency, Progress, Ordering: as rmpsc_io_read().
 */
RMPSC_API int rmpsc_io_send(rmpsc_io *io, int fd, uint32_t h, uint64_t tag, uint32_t flags);

/**
 * Accept a connection on listening socket @p fd (SOCK_CLOEXEC); the
 * completion's result is the new socket, its handle RMPSC_POOL_HANDLE_NONE.
 * @return as rmpsc_io_read() without the handle's codes.
 * Concurrency, Progress, Ordering: as rmpsc_io_read().
 */
RMPSC_API int rmpsc_io_accept(rmpsc_io *io, int fd, uint64_t tag, uint32_t flags);

/**
 * Receive from socket @p fd continuously into the engine's provided
 * buffers (config recv_buffers): one completion per receive, with
 * RMPSC_IO_CQE_F_MORE, each a slab the caller frees. When the buffers run
 * out the kernel ends the request with -ENOBUFS; the engine re-arms it as
 * soon as freed slabs let it refill (at its next reap), and the stream
 * goes on without a completion for the pause. The last completion (no
 * F_MORE, handle NONE) says 0 at end of stream, or the error.
 *
 * @return 0; -EOPNOTSUPP: no recv_buffers in the config, or no multishot
 *   recv in this kernel; -EINVAL, -EAGAIN, -EPIPE, -EBADF: as rmpsc_io_read().
 * Concurrency, Progress: as rmpsc_io_read(). Ordering: as rmpsc_io_read().
 */
RMPSC_API int rmpsc_io_recv_multishot(rmpsc_io *io, int fd, uint64_t tag, uint32_t flags);

/**
 * Cancel every operation submitted with @p tag. Their completions still
 * come (-ECANCELED, or the result if they finished first): only then are
 * their slabs the caller's.
 *
 * @return the operations asked to cancel (>= 0); -EAGAIN: the submission
 *   queue is full (retry); -EBADF; -EOPNOTSUPP.
 * Concurrency, Progress: as rmpsc_io_read(). Ordering: none.
 */
RMPSC_API int rmpsc_io_cancel(rmpsc_io *io, uint64_t tag);

/**
 * Submit requests queued with RMPSC_IO_SUBMIT_MORE.
 * @return how many the kernel took (>= 0; with THREAD, how many were
 *   handed to the engine's thread, which submits them); -EBADF;
 *   -EOPNOTSUPP. Requests the kernel did not take stay queued (their
 *   completions still come once submitted).
 * Concurrency: any threads. Progress: blocking. Ordering: none.
 */
RMPSC_API int rmpsc_io_submit(rmpsc_io *io);

/**
 * Reap up to @p n completions into @p out (an engine without a ring,
 * channel or thread), waiting up to @p timeout_ns for the first.
 *
 * @param timeout_ns < 0: wait forever; 0: do not wait.
 * @return completions written (>= 1); -EAGAIN: none and @p timeout_ns 0;
 *   -ETIMEDOUT; -EINVAL: NULL @p out, @p n 0, or the engine delivers
 *   elsewhere (ring, channel, thread); -EBADF; -EOPNOTSUPP.
 * Concurrency: one thread at a time. Progress: blocking.
 * Ordering: the kernel's writes to each slab happen-before the return.
 */
RMPSC_API int rmpsc_io_reap(rmpsc_io *io, rmpsc_io_cqe *out, uint32_t n, int64_t timeout_ns);

/**
 * Deliver up to @p max completions into the config's ring or channel (an
 * engine without THREAD), waiting up to @p timeout_ns for the first, then
 * signal the notifier (unless EVENTFD: the kernel has). A completion the
 * ring or channel has no room for stays in the engine or the kernel's
 * queue for the next call.
 *
 * @return completions delivered (>= 0 when some were reaped but the ring
 *   was full: 0 is possible); -EAGAIN: none and @p timeout_ns 0;
 *   -ETIMEDOUT; -EINVAL: no ring or channel, or THREAD; -EPIPE: the ring
 *   or channel is closed; -EBADF; -EOPNOTSUPP.
 * Concurrency: one thread at a time (the ring's producer). Progress:
 *   blocking. Ordering: as rmpsc_io_reap(), to the consumer of the ring.
 */
RMPSC_API int rmpsc_io_run(rmpsc_io *io, uint32_t max, int64_t timeout_ns);

/**
 * Operations in flight: submitted, final completion not yet reaped (a
 * multishot receive paused for buffers counts).
 * @return the count (>= 0); -EBADF; -EOPNOTSUPP.
 * Concurrency: any thread. Progress: wait-free. Ordering: none.
 */
RMPSC_API int64_t rmpsc_io_inflight(const rmpsc_io *io);

/**
 * What the engine has (rmpsc_io_info): fixed buffers or not and why, the
 * memlock numbers, kernel features, operations in flight.
 * @return 0; -EINVAL: NULL @p info, @p size below v1 or not a multiple of
 *   8; -E2BIG: @p size above 4096; -EBADF; -EOPNOTSUPP.
 * Concurrency: any thread. Progress: wait-free. Ordering: none.
 */
RMPSC_API int rmpsc_io_get_info(const rmpsc_io *io, rmpsc_io_info *info, uint32_t size);

/**
 * The engine's io_uring file descriptor (for diagnostics, or to poll it:
 * readable when completions wait).
 * @return the fd (>= 0); -EBADF; -EOPNOTSUPP.
 * Concurrency: any thread. Progress: wait-free. Ordering: none.
 */
RMPSC_API int rmpsc_io_fd(const rmpsc_io *io);

#ifdef __cplusplus
}
#endif

#endif /* RINGMPSC_URING_H */
