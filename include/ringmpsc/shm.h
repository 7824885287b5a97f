/* SPDX-License-Identifier: MIT */
/**
 * @file ringmpsc/shm.h
 * Between processes: a ring in shared memory (rmpsc_shm_*), and passing
 * file descriptors (a shared ring's memfd, an eventfd) over Unix domain
 * sockets with SCM_RIGHTS, with a small listen/accept/connect helper to
 * set up such a socket (rmpsc_fd_*).
 *
 * Shared ring
 * -----------
 * An SPSC ring whose indices, wake words and slots live in a sealed memfd
 * that two processes map, each at its own address: one maps it as the
 * producer, the other as the consumer. One side creates it
 * (rmpsc_shm_create()), passes rmpsc_shm_fd() to the other (fork,
 * rmpsc_fd_send()), which attaches (rmpsc_shm_attach()). The data path
 * makes no system call: a push is a copy into the slot and a release
 * store of the tail, as for an rmpsc_ring. Blocking calls sleep on
 * process-shared futexes.
 *
 * The peer is not trusted. Attach validates the whole header against the
 * file before it maps anything (magic, version, sizes in 64-bit
 * arithmetic against fstat, capacity a power of two, the memfd's seals
 * against shrinking, growing and new seals); each side keeps its own
 * index and its caches in private memory and never reads geometry from the
 * shared pages again; every index read from the peer is checked against
 * the reader's own position and the capacity once per refresh. A check
 * that fails latches the handle broken: every call returns -EPROTO from
 * then on, and no slot outside the ring is ever read or written. A guard
 * page with no access follows the slots. Work per call is bounded, and no
 * wait on the peer is unbounded: a close the peer began and did not
 * decide (it died, was stopped, or is hostile) is decided by this side
 * after a second, by a close or a timed call (try calls meanwhile report
 * -EAGAIN, as for any close being decided). A producer killed between
 * reserve and commit leaves nothing visible: elements become visible only
 * with the single store of the tail that commits them.
 *
 * Peer death: each side records its pid in its section of the header.
 * Blocking calls look, every 10 ms while they wait, whether the peer
 * has gone: its pid no longer exists (a pidfd), a descriptor given to
 * rmpsc_shm_watch() (the Unix socket the ring came over, a pidfd) has hung
 * up, or it detached. They then end the ring on this side: the consumer
 * still receives everything that was committed, then -ECONNRESET instead
 * of -EPIPE; a producer's call returns -ECONNRESET. rmpsc_shm_peer()
 * asks the same question at any time, and also whether the peer's
 * heartbeat (rmpsc_shm_heartbeat()) is recent.
 *
 * A handle is one process's: after fork() the child attaches a role of
 * its own from the inherited descriptor and leaves the inherited handle
 * alone (not even destroy: that closes the ring; common.h, fork()).
 *
 * Waking across processes: the in-process rings' asymmetric barrier,
 * membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED), orders only this
 * process's threads. A shared ring uses the global expedited membarrier
 * instead: both processes register for it at create and attach, the
 * sleeping side issues it, and the data path keeps a compiler barrier
 * only. RMPSC_SHM_F_FENCE chooses a full fence on the waker's side
 * (every publication) instead, for a kernel or sandbox without it.
 *
 * Every descriptor received is close-on-exec (MSG_CMSG_CLOEXEC). The
 * helper's sockets are SOCK_SEQPACKET: a message keeps its boundaries,
 * so descriptors and their data arrive together and a message larger than
 * the receiver's buffer is reported, not split. Any connected AF_UNIX
 * socket works with rmpsc_fd_send()/rmpsc_fd_recv() (a SOCK_STREAM peer's
 * descriptors ride on the first byte of their data).
 *
 * A peer is not trusted: a message that carries no descriptor, more than
 * the receiver has room for, or control data that is not SCM_RIGHTS is
 * refused with its own code, and no descriptor it carried is left open.
 */
#ifndef RINGMPSC_SHM_H
#define RINGMPSC_SHM_H

#include <stdint.h>
#include <sys/uio.h>

#include "common.h"
#include "wait.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The most descriptors one message carries here (the kernel's limit is 253). */
#define RMPSC_FD_MAX 64u

/**
 * Send @p nfds descriptors over the connected AF_UNIX socket @p sock, with
 * @p len bytes of @p data (a zero byte when @p len is 0: a message carries
 * at least one). The receiver gets its own descriptors for the same open
 * files; ours stay open.
 *
 * @param timeout_ns how long to wait for room in the socket: < 0 forever,
 *   0 not at all.
 * @return the data bytes sent (@p len, or 1 for the zero byte); -EINVAL:
 *   @p fds NULL, @p nfds 0 or above RMPSC_FD_MAX, a descriptor < 0, @p
 *   data NULL with @p len > 0, @p len above 65536; -EBADF: @p sock or one
 *   of @p fds not open; -ENOTSOCK: @p sock is not a socket; -EPIPE: the
 *   peer is gone (no SIGPIPE is raised); -EAGAIN: no room and @p
 *   timeout_ns 0; -ETIMEDOUT; -EMSGSIZE: the socket refuses a message
 *   this large; -ENOMEM, -ENOBUFS: the kernel's memory; other -errno of
 *   sendmsg(2) (-EOPNOTSUPP: not AF_UNIX).
 * Concurrency: any thread; messages on one socket from several threads
 *   are not interleaved. Progress: blocking. Ordering: none.
 */
RMPSC_API int rmpsc_fd_send(int sock, const int *fds, uint32_t nfds, const void *data,
			    uint32_t len, int64_t timeout_ns);

/**
 * Receive one message with descriptors from the connected AF_UNIX socket
 * @p sock: up to @p max_fds descriptors into @p fds (close-on-exec, the
 * caller's to close) and up to @p len bytes into @p data.
 *
 * @param data_len NULL, or receives the data bytes received.
 * @param timeout_ns how long to wait for a message: < 0 forever, 0 not at
 *   all.
 * @return the descriptors received (>= 1); -ENOMSG: a message without
 *   descriptors (its data is consumed); -EMSGSIZE: more descriptors than
 *   @p max_fds, or (SOCK_SEQPACKET, SOCK_DGRAM) more data than @p len: the
 *   message is consumed and every descriptor it carried closed; -EPROTO:
 *   control data other than SCM_RIGHTS (credentials, junk), everything it
 *   carried closed; -EPIPE: the peer closed the connection; -EAGAIN:
 *   nothing and @p timeout_ns 0; -ETIMEDOUT; -EINVAL: @p fds NULL, @p
 *   max_fds 0 or above RMPSC_FD_MAX, @p data NULL with @p len > 0;
 *   -EBADF: @p sock not open; -ENOTSOCK; other -errno of recvmsg(2).
 * Concurrency: one receiving thread per socket. Progress: blocking.
 * Ordering: none.
 */
RMPSC_API int rmpsc_fd_recv(int sock, int *fds, uint32_t max_fds, void *data, uint32_t len,
			    uint32_t *data_len, int64_t timeout_ns);

/**
 * A listening SOCK_SEQPACKET socket at @p path (close-on-exec,
 * non-blocking: rmpsc_fd_accept() does the waiting). A path
 * starting with '@' is in the abstract namespace (no file; the '@' is not
 * part of the name). A socket file left at @p path by a process that is
 * gone (nobody accepts on it) is replaced; one that is live is not.
 *
 * @param backlog pending connections at most (<= 0: 16).
 * @return the socket (>= 0); -EINVAL: @p path NULL or empty (or just
 *   "@"); -ENAMETOOLONG: more than 107 bytes; -EADDRINUSE: a live socket
 *   (or another file) is there; other -errno of socket(2), bind(2),
 *   listen(2) (-EACCES, -ENOENT for a missing directory).
 * Concurrency: any thread. Progress: blocking. Ordering: none.
 */
RMPSC_API int rmpsc_fd_listen(const char *path, int backlog);

/**
 * Accept one connection on @p lfd (from rmpsc_fd_listen()), close-on-exec.
 *
 * @param timeout_ns < 0: wait forever; 0: do not wait.
 * @return the connected socket (>= 0); -EAGAIN: none pending and @p
 *   timeout_ns 0; -ETIMEDOUT; -EBADF; -EINVAL: @p lfd not listening;
 *   other -errno of accept4(2).
 * Concurrency: any thread. Progress: blocking. Ordering: none.
 */
RMPSC_API int rmpsc_fd_accept(int lfd, int64_t timeout_ns);

/**
 * Connect a SOCK_SEQPACKET socket to @p path ('@' for the abstract
 * namespace, as rmpsc_fd_listen()), close-on-exec. While nobody listens
 * there yet (no such socket, connection refused) it tries again until
 * @p timeout_ns has passed, so a client may start before its server.
 *
 * @param timeout_ns < 0: forever; 0: one try.
 * @return the connected socket (>= 0); -ETIMEDOUT: nobody listened in
 *   time (with 0: -ECONNREFUSED or -ENOENT as the one try found);
 *   -EINVAL; -ENAMETOOLONG; other -errno of socket(2), connect(2)
 *   (-EACCES, -EPROTOTYPE for a socket of another type).
 * Concurrency: any thread. Progress: blocking. Ordering: none.
 */
RMPSC_API int rmpsc_fd_connect(const char *path, int64_t timeout_ns);

/**
 * Close a listening socket from rmpsc_fd_listen() and remove its socket
 * file (nothing to remove for an abstract name).
 *
 * @param lfd the socket (< 0: only the file is removed).
 * @param path the path it was made with, or NULL (the file is left).
 * @return 0; -EBADF: @p lfd not open; -errno of unlink(2) but -ENOENT.
 * Concurrency: any thread. Progress: blocking. Ordering: none.
 */
RMPSC_API int rmpsc_fd_unlisten(int lfd, const char *path);


/* ---- shared ring ----------------------------------------------------------- */

/** "RMPSCSHM" read as a little-endian 64-bit word: the header's magic. */
#define RMPSC_SHM_MAGIC 0x4d48534353504d52ull
/** The layout of rmpsc_shm_header this library writes and accepts. */
#define RMPSC_SHM_VERSION 1u
/** Bytes of the header; the slots start at this offset of the memfd. */
#define RMPSC_SHM_HEADER_SIZE 1024u
/** Largest capacity (slots, a power of two). */
#define RMPSC_SHM_CAPACITY_MAX (1u << 30)
/** Largest element size in bytes. */
#define RMPSC_SHM_ELEM_SIZE_MAX (1u << 24)
/** Largest memfd (header and slots, rounded up to the page size). */
#define RMPSC_SHM_MAP_MAX (1ull << 40)

/** The side a handle plays (rmpsc_shm_config.role). */
enum rmpsc_shm_role {
	RMPSC_SHM_PRODUCER = 1, /**< pushes: reserve/commit, push, push_n */
	RMPSC_SHM_CONSUMER = 2, /**< pops: readable/advance, pop, pop_n */
};

/** rmpsc_shm_config.flags. */
enum rmpsc_shm_flags {
	/** Create only: a full fence after every publication instead of the
	 *  global expedited membarrier on the sleeping side (the header
	 *  records the choice; both sides follow it). For a kernel without
	 *  MEMBARRIER_CMD_GLOBAL_EXPEDITED, or a peer that may not call
	 *  membarrier (seccomp). */
	RMPSC_SHM_F_FENCE = 1u << 0,
	/** Fault every page of this side's mapping in at create or attach. */
	RMPSC_SHM_F_PREFAULT = 1u << 1,
	RMPSC_SHM_F_ALL = RMPSC_SHM_F_FENCE | RMPSC_SHM_F_PREFAULT,
};

/** rmpsc_shm_header.barrier: how wake-ups are ordered across the processes. */
enum rmpsc_shm_barrier {
	RMPSC_SHM_BARRIER_GLOBAL = 1, /**< sleeper: MEMBARRIER_CMD_GLOBAL_EXPEDITED */
	RMPSC_SHM_BARRIER_FENCE = 2,  /**< waker: a full fence per publication */
};

/**
 * Shared ring configuration, size-prefixed and append-only: fill it with
 * rmpsc_shm_config_init(&cfg, sizeof cfg), then change fields. The same
 * struct creates (every field used) and attaches (@c capacity and
 * @c elem_size 0 accept the ring's; otherwise they must match it).
 */
typedef struct rmpsc_shm_config {
	uint32_t size;      /**< caller's sizeof, written by rmpsc_shm_config_init */
	uint32_t flags;     /**< RMPSC_SHM_F_* bits; unknown bits are rejected */
	uint32_t role;      /**< RMPSC_SHM_PRODUCER or RMPSC_SHM_CONSUMER */
	uint32_t elem_size; /**< bytes per slot, 1..RMPSC_SHM_ELEM_SIZE_MAX (attach: 0 any) */
	uint32_t capacity;  /**< slots, a power of two, 1..RMPSC_SHM_CAPACITY_MAX (attach: 0 any) */
	uint32_t _pad0;     /**< must be zero */
} rmpsc_shm_config;

/**
 * One side's section of the header (128 bytes): written by that side,
 * read by the other as a hint only (a hostile peer can write anything).
 */
typedef struct rmpsc_shm_side {
	uint32_t state;        /**< RMPSC_SHM_SIDE_*: never, attached, detached */
	int32_t pid;           /**< its process, in its pid namespace */
	uint64_t heartbeat_ns; /**< CLOCK_MONOTONIC of its last heartbeat */
	uint64_t attaches;     /**< how many handles attached in this role */
	uint8_t _reserved[104]; /**< zero */
} rmpsc_shm_side;

/** rmpsc_shm_side.state. */
enum rmpsc_shm_side_state {
	RMPSC_SHM_SIDE_NONE = 0,     /**< never attached */
	RMPSC_SHM_SIDE_ATTACHED = 1, /**< a handle of this role is attached */
	RMPSC_SHM_SIDE_DETACHED = 2, /**< its handle was destroyed */
};

/**
 * The first RMPSC_SHM_HEADER_SIZE bytes of a shared ring's memfd, as
 * version 1 lays them out; the slots follow (slot i at
 * header_size + i * elem_size). Written by the library only; documented so
 * that tools can read it, and pinned by tests as part of the ABI. The
 * producer and the consumer write separate 128-byte regions. The
 * identity (bytes 0-127) is written once, before the memfd is shared.
 */
typedef struct rmpsc_shm_header {
	/* 0: identity */
	uint64_t magic;        /**< RMPSC_SHM_MAGIC */
	uint32_t version;      /**< RMPSC_SHM_VERSION */
	uint32_t header_size;  /**< RMPSC_SHM_HEADER_SIZE */
	uint32_t elem_size;    /**< bytes per slot */
	uint32_t capacity;     /**< slots, a power of two */
	uint64_t map_size;     /**< the memfd's size: header and slots, page-rounded */
	uint32_t barrier;      /**< RMPSC_SHM_BARRIER_* */
	int32_t creator_pid;   /**< the creating process */
	uint32_t generation;   /**< random at creation: tells rings apart */
	uint32_t _pad0;        /**< zero */
	uint8_t _reserved0[80]; /**< zero */
	/* 128, 256: the two sides' sections */
	rmpsc_shm_side producer; /**< written by the producer */
	rmpsc_shm_side consumer; /**< written by the consumer */
	uint8_t _reserved1[128]; /**< zero */
	/* 512: the ring's own words (the library's ring core) */
	uint32_t ring_magic;   /**< 0x524d5353 ("RMSS") */
	uint32_t ring_version; /**< 1 */
	uint32_t ring_elem_size; /**< = elem_size */
	uint32_t _pad1;        /**< zero */
	uint64_t ring_capacity; /**< = capacity: most elements held */
	uint64_t ring_slots;   /**< = capacity: slots in the buffer */
	uint32_t closed;       /**< 0 open, 1 closing, 2 deciding the end, 3 closed */
	uint32_t prod_waiters; /**< producers asleep for room */
	uint32_t cons_waiters; /**< consumers asleep for data */
	uint32_t _state;       /**< unused here (channel rings), zero */
	uint8_t _reserved2[80];
	/* 640: producer-written */
	uint64_t tail;         /**< free-running position: elements committed */
	uint64_t _mc_head;     /**< unused here, zero */
	uint8_t _reserved3[112];
	/* 768: consumer-written */
	uint64_t head;         /**< free-running position: elements released */
	uint64_t _claim;       /**< unused here, zero */
	uint8_t _reserved4[112];
	/* 896: wake words (futexes, process-shared) and the end */
	uint32_t cons_seq;     /**< futex word the consumer sleeps on */
	uint32_t prod_seq;     /**< futex word the producer sleeps on */
	uint8_t _reserved5[56];
	uint64_t final_tail;   /**< where a close ended the stream (closed == 3) */
	uint64_t _metrics[3];  /**< unused here, zero */
	uint8_t _reserved6[32];
} rmpsc_shm_header;

/** Handle of one side of a shared ring. */
typedef struct rmpsc_shm rmpsc_shm;

/**
 * Write the defaults (producer, flags 0, capacity and elem_size 0: create
 * needs them set, attach then accepts the ring's) into at most @p size
 * bytes of @p cfg and record @p size.
 *
 * @return 0; -EINVAL: @p cfg NULL, @p size below sizeof(rmpsc_shm_config)
 *   of this version or not a multiple of 8; -E2BIG: @p size above 4096.
 *   Nothing is written on error.
 * Concurrency: any thread. Progress: wait-free. Ordering: none.
 */
RMPSC_API int rmpsc_shm_config_init(rmpsc_shm_config *cfg, uint32_t size);

/**
 * Create a shared ring in a new memfd (close-on-exec; sealed against
 * shrinking, growing and further seals) and attach to it as cfg->role.
 * Pass rmpsc_shm_fd() to the process that attaches the other role.
 *
 * @return 0; -EINVAL: @p cfg or @p out NULL, a bad size, role, capacity
 *   (0, not a power of two, above the maximum), elem_size (0, above the
 *   maximum), unknown flags, _pad0 not zero; -E2BIG: as
 *   rmpsc_ring_create(); -ENOMEM: memory, or the mapping's size
 *   above RMPSC_SHM_MAP_MAX; -EOPNOTSUPP: no global expedited membarrier
 *   and no RMPSC_SHM_F_FENCE; -EMFILE, -ENFILE: no descriptor free.
 *   *out is NULL on error.
 * Concurrency: any thread. Progress: blocking. Ordering: none.
 */
RMPSC_API int rmpsc_shm_create(const rmpsc_shm_config *cfg, rmpsc_shm **out);

/**
 * Attach to the shared ring in @p fd as cfg->role. The handle keeps its
 * own duplicate of @p fd (close-on-exec): the caller may close @p fd.
 * Everything is validated before anything is mapped: a regular file whose
 * seals include F_SEAL_SHRINK, F_SEAL_GROW and F_SEAL_SEAL, of the size
 * the header's geometry gives (64-bit arithmetic), with the magic, this
 * version, capacity a power of two, the ring words consistent with the
 * identity, the close state known, and head no further than the capacity
 * behind tail. A role whose section says attached by a live process is
 * refused. The peer's section is not required: either side may attach
 * first.
 *
 * @param cfg role (required), elem_size and capacity (0: any), flags
 *   (RMPSC_SHM_F_PREFAULT; RMPSC_SHM_F_FENCE is ignored: the ring's mode
 *   is the creator's).
 * @return 0; -EINVAL: @p cfg or @p out NULL, a bad size, role or flags,
 *   capacity not 0 and not a power of two; -E2BIG; -EBADF: @p fd not
 *   open; -EPROTO: not a shared ring of this version, damaged, unsealed,
 *   of another size than its header says, or not of the elem_size or
 *   capacity asked for; -EBUSY: a live process is attached in this role;
 *   -EOPNOTSUPP: the ring uses the global membarrier and this process
 *   cannot register for it; -ENOMEM; -EMFILE. *out is NULL on error.
 * Concurrency: any thread. Progress: blocking. Ordering: none.
 */
RMPSC_API int rmpsc_shm_attach(int fd, const rmpsc_shm_config *cfg, rmpsc_shm **out);

/**
 * Close the ring (as rmpsc_shm_close(): everything committed stays
 * deliverable), mark this side detached, and release the handle, its
 * mapping and its descriptors. The memfd itself goes when the last
 * process closes it and unmaps it. Accepts NULL.
 *
 * Concurrency: no other call on @p s may run or follow. Progress:
 *   blocking (bounded: see the close). Ordering: as the close.
 */
RMPSC_API void rmpsc_shm_destroy(rmpsc_shm *s);

/**
 * The handle's descriptor of the memfd, to pass to the other process
 * (rmpsc_fd_send()). Still the handle's: do not close it.
 *
 * @return the descriptor (>= 0); -EBADF: @p s not a shared ring handle.
 * Concurrency: any thread. Progress: wait-free. Ordering: none.
 */
RMPSC_API int rmpsc_shm_fd(const rmpsc_shm *s);

/**
 * The handle's role, RMPSC_SHM_PRODUCER or RMPSC_SHM_CONSUMER.
 * @return the role; -EBADF.
 */
RMPSC_API int rmpsc_shm_role(const rmpsc_shm *s);

/** Capacity in elements; -EBADF. */
RMPSC_API int64_t rmpsc_shm_capacity(const rmpsc_shm *s);
/** Element size in bytes; -EBADF. */
RMPSC_API int64_t rmpsc_shm_elem_size(const rmpsc_shm *s);

/**
 * Committed and not yet released elements, a snapshot (as
 * rmpsc_ring_len()); a peer's index that fails its check counts as 0.
 * @return the count; -EBADF; -EPROTO: the handle is broken.
 * Concurrency: any thread. Progress: wait-free. Ordering: acquire.
 */
RMPSC_API int64_t rmpsc_shm_len(const rmpsc_shm *s);

/**
 * Close the ring from either side, as rmpsc_ring_close(): no publication
 * after it succeeds; everything committed before it is delivered, then the
 * consumer gets -EPIPE; both sides' sleepers wake. A close whose end the
 * peer was deciding and did not finish within a second decides it here.
 *
 * @return 0 (also when already closed); -EBADF; -EPROTO: broken.
 * Concurrency: any thread of this process. Progress: blocking (bounded).
 *   Ordering: seq_cst.
 */
RMPSC_API int rmpsc_shm_close(rmpsc_shm *s);

/** 1 closed or closing, 0 open; -EBADF; -EPROTO: broken. */
RMPSC_API int rmpsc_shm_is_closed(const rmpsc_shm *s);

/*
 * The producer's calls: as rmpsc_ring_reserve(), rmpsc_ring_commit(),
 * rmpsc_ring_push(), rmpsc_ring_push_n() and their timed twins, with the
 * same counts and codes, and in addition: -EBADF for a consumer's handle;
 * -EPROTO once the handle is broken (the consumer wrote an index or a
 * close state the protocol never writes); -ECONNRESET where -EPIPE would
 * be, once the consumer was found gone (its process died, a watched
 * descriptor hung up, or it detached: seen by a timed call while it
 * waits, or by rmpsc_shm_peer()); the ring is then closed. A span's iovecs point into the
 * shared mapping: the consumer can read them as soon as they are
 * committed, not before.
 * Concurrency: one producer thread at a time per ring. Progress: the try
 * calls wait-free, the timed calls blocking. Ordering: commit is a
 * release, as rmpsc_ring_commit().
 */
RMPSC_API int rmpsc_shm_reserve(rmpsc_shm *s, uint32_t n, rmpsc_span *out);
RMPSC_API int rmpsc_shm_commit(rmpsc_shm *s, uint32_t n);
RMPSC_API int rmpsc_shm_push(rmpsc_shm *s, const void *item);
RMPSC_API int rmpsc_shm_push_n(rmpsc_shm *s, const void *items, uint32_t n);
RMPSC_API int rmpsc_shm_reserve_timed(rmpsc_shm *s, uint32_t n, rmpsc_span *out,
				      int64_t timeout_ns, const rmpsc_wait *w);
RMPSC_API int rmpsc_shm_push_timed(rmpsc_shm *s, const void *item, int64_t timeout_ns,
				   const rmpsc_wait *w);
RMPSC_API int rmpsc_shm_push_n_timed(rmpsc_shm *s, const void *items, uint32_t n,
				     int64_t timeout_ns, const rmpsc_wait *w);

/*
 * The consumer's calls: as rmpsc_ring_readable(), rmpsc_ring_advance(),
 * rmpsc_ring_pop(), rmpsc_ring_pop_n() and their timed twins, with the
 * same counts and codes, and in addition: -EBADF for a producer's handle;
 * -EPROTO once the handle is broken (the producer wrote an index or a
 * close state the protocol never writes; elements delivered before that
 * were whole); -ECONNRESET where -EPIPE would be, when the ring ended
 * because the producer was found gone (by a timed call while it waited,
 * or by rmpsc_shm_peer(); everything it committed is delivered first). A span's iovecs point into the shared mapping: copy what you
 * keep, since a hostile producer can change slot contents while you read.
 * Concurrency: one consumer thread at a time per ring. Progress: the try
 * calls wait-free, the timed calls blocking. Ordering: acquire, as
 * rmpsc_ring_readable().
 */
RMPSC_API int rmpsc_shm_readable(rmpsc_shm *s, uint32_t n, rmpsc_span *out);
RMPSC_API int rmpsc_shm_advance(rmpsc_shm *s, uint32_t n);
RMPSC_API int rmpsc_shm_pop(rmpsc_shm *s, void *item);
RMPSC_API int rmpsc_shm_pop_n(rmpsc_shm *s, void *items, uint32_t n);
RMPSC_API int rmpsc_shm_readable_timed(rmpsc_shm *s, uint32_t n, rmpsc_span *out,
				       int64_t timeout_ns, const rmpsc_wait *w);
RMPSC_API int rmpsc_shm_pop_timed(rmpsc_shm *s, void *item, int64_t timeout_ns,
				  const rmpsc_wait *w);
RMPSC_API int rmpsc_shm_pop_n_timed(rmpsc_shm *s, void *items, uint32_t n,
				    int64_t timeout_ns, const rmpsc_wait *w);

/**
 * Record a heartbeat in this side's section (CLOCK_MONOTONIC, which all
 * processes of a machine share). The timed calls also record one each
 * time they look at the peer while waiting.
 *
 * @return 0; -EBADF.
 * Concurrency: any thread. Progress: wait-free. Ordering: relaxed.
 */
RMPSC_API int rmpsc_shm_heartbeat(rmpsc_shm *s);

/** rmpsc_shm_peer() results. */
enum rmpsc_shm_peer_state {
	RMPSC_SHM_PEER_NONE = 0,  /**< the other role never attached */
	RMPSC_SHM_PEER_ALIVE = 1, /**< attached, its process exists (and its
				   *   heartbeat is recent, when asked) */
	RMPSC_SHM_PEER_STALE = 2, /**< attached and its process exists, but no
				   *   heartbeat within the time asked */
	RMPSC_SHM_PEER_GONE = 3,  /**< its process died, a watched descriptor
				   *   hung up, or it detached */
};

/**
 * The other side's state. GONE is final: the ring is then closed on this
 * side (a consumer still receives everything committed, then
 * -ECONNRESET). A heartbeat is only a hint: a busy machine delays it
 * (STALE is not GONE).
 *
 * @param within_ns >= 0: ALIVE only with a heartbeat at most this old
 *   (else STALE); < 0: heartbeats are not looked at.
 * @return an RMPSC_SHM_PEER_* state; -EBADF.
 * Concurrency: the thread that uses the handle. Progress: blocking (a
 *   poll(2) with no timeout, a pidfd_open(2) the first time the peer's
 *   pid is seen). Ordering: none.
 */
RMPSC_API int rmpsc_shm_peer(rmpsc_shm *s, int64_t within_ns);

/**
 * Watch @p fd for the peer's end: a connected socket to the peer (hang-up
 * or EOF), or a pidfd of the peer's process (readable when it exits). The
 * handle keeps a duplicate. At most RMPSC_SHM_WATCH_MAX descriptors.
 *
 * @return 0; -EBADF: @p s, or @p fd not open; -ENOSPC: already watching
 *   RMPSC_SHM_WATCH_MAX; -EMFILE.
 * Concurrency: the thread that uses the handle. Progress: blocking.
 *   Ordering: none.
 */
RMPSC_API int rmpsc_shm_watch(rmpsc_shm *s, int fd);
/** Most descriptors rmpsc_shm_watch() keeps per handle. */
#define RMPSC_SHM_WATCH_MAX 4u


/* ---- one consumer, many producer processes ---------------------------------- */

/**
 * A consumer's set of shared rings (a mux): one ring per producer process,
 * each attached by the consumer as usual, taken from with adaptive skip
 * (a ring found empty is looked at again after 1, 2, 4 ... up to 64
 * rounds, at once when nothing else has data) and waited on all at once:
 * one sleep (futex_waitv(2) on every ring's wake word, where the kernel
 * has it; else 1 ms polls) that any producer's publication or any close
 * wakes, and that looks at every ring's peer every 10 ms. Elements come from one ring per call, in that
 * ring's order; the caller learns which ring (its index in the mux).
 *
 * A ring whose stream ended is reported once, by the call that would take
 * from it: the call returns that ring's end (-EPIPE: closed and drained;
 * -ECONNRESET: its producer is gone, everything it committed delivered;
 * -EPROTO: it broke the protocol) with *index set, and the ring leaves
 * the mux (the caller destroys it). The mux never destroys a ring.
 */
typedef struct rmpsc_shm_mux rmpsc_shm_mux;

/** Most rings in one mux (futex_waitv(2)'s limit). */
#define RMPSC_SHM_MUX_MAX 128u

/**
 * Create an empty mux for up to @p max_rings rings.
 *
 * @return 0; -EINVAL: @p out NULL, @p max_rings 0 or above
 *   RMPSC_SHM_MUX_MAX; -ENOMEM. *out NULL on error.
 * Concurrency: any thread. Progress: blocking. Ordering: none.
 */
RMPSC_API int rmpsc_shm_mux_create(uint32_t max_rings, rmpsc_shm_mux **out);

/**
 * Destroy a mux; its rings are left as they are (still the caller's).
 * Accepts NULL. Concurrency: no other call on @p m may run or follow.
 */
RMPSC_API void rmpsc_shm_mux_destroy(rmpsc_shm_mux *m);

/**
 * Add a consumer handle @p s to the mux. While in the mux, the ring is the
 * mux's to take from: do not call its consumer calls yourself.
 *
 * @return the ring's index in the mux (>= 0, the lowest free one);
 *   -EBADF: @p m, or @p s not a shared ring consumer handle; -EINVAL:
 *   @p s already in this mux, or its element size differs from the
 *   other rings'; -ENOSPC: the mux is full.
 * Concurrency: the consumer's thread. Progress: wait-free.
 */
RMPSC_API int rmpsc_shm_mux_add(rmpsc_shm_mux *m, rmpsc_shm *s);

/**
 * Take ring @p index out of the mux (the handle is the caller's again).
 *
 * @return 0; -EBADF; -ENOENT: no ring at @p index.
 * Concurrency: the consumer's thread. Progress: wait-free.
 */
RMPSC_API int rmpsc_shm_mux_remove(rmpsc_shm_mux *m, uint32_t index);

/** Rings in the mux; -EBADF. */
RMPSC_API int rmpsc_shm_mux_count(const rmpsc_shm_mux *m);

/**
 * Take up to @p n elements from one ring of the mux, the next with data
 * in the adaptive round.
 *
 * @param index receives the ring's index (also for its end).
 * @return the count (>= 1); -EAGAIN: nothing in any ring; -EPIPE,
 *   -ECONNRESET, -EPROTO: ring *@p index ended (it has left the mux);
 *   -ENOENT: no ring in the mux; -EINVAL: @p items or @p index NULL
 *   (@p n 0 returns 0); -EBADF.
 * Concurrency: one consumer thread. Progress: wait-free (bounded: each
 *   ring looked at once). Ordering: acquire, per ring.
 */
RMPSC_API int rmpsc_shm_mux_pop_n(rmpsc_shm_mux *m, void *items, uint32_t n, uint32_t *index);

/**
 * rmpsc_shm_mux_pop_n(), waiting up to @p timeout_ns (< 0: forever, 0: one
 * look) for any ring to have data or end: -ETIMEDOUT when none did.
 * Every 10 ms of waiting it looks at each ring's peer (as the shared
 * ring's timed calls): a ring whose producer is gone is ended here and
 * then drained and reported (-ECONNRESET) like any other end.
 *
 * @param w wait strategy (NULL: RMPSC_WAIT_BLOCK's defaults).
 * @return as rmpsc_shm_mux_pop_n(), -ETIMEDOUT instead of -EAGAIN; -EINVAL
 *   also for an invalid @p w.
 * Concurrency: one consumer thread. Progress: blocking.
 */
RMPSC_API int rmpsc_shm_mux_pop_n_timed(rmpsc_shm_mux *m, void *items, uint32_t n,
					uint32_t *index, int64_t timeout_ns,
					const rmpsc_wait *w);


/* ---- a shared pool's payloads, read-only ------------------------------------ */

/**
 * The receiving side of a pool created with RMPSC_POOL_F_SHARED
 * (ringmpsc/pool.h) in another process: its slabs mapped read-only, so a
 * 4-byte handle received through a shared ring gives the payload in
 * place, whatever its size. The owner lends each slab it sends
 * (rmpsc_pool_lend()); the receiver gives the handle back when done,
 * typically through a shared ring of its own towards the owner, who
 * frees it with rmpsc_pool_reclaim(). The owner's free lists never leave
 * its process: a hostile receiver can at worst keep slabs.
 */
typedef struct rmpsc_shm_pool rmpsc_shm_pool;

/**
 * Attach to a shared pool from the descriptors of rmpsc_pool_share_fds()
 * (received with rmpsc_fd_recv(); the handle keeps its own duplicates,
 * the caller closes @p fds). Everything is validated before it is
 * mapped: the directory's magic, version and geometry (tiers, slab sizes,
 * counts, handle bits) in 64-bit arithmetic against each memfd's size,
 * and each memfd's seals against shrinking and growing.
 *
 * @return 0; -EINVAL: @p fds or @p out NULL, @p nfds below 2 or above
 *   17; -EBADF: a descriptor not open; -EPROTO: not a shared pool's
 *   descriptors, in the wrong order, damaged, or unsealed; -ENOMEM;
 *   -EMFILE. *out NULL on error.
 * Concurrency: any thread. Progress: blocking. Ordering: none.
 */
RMPSC_API int rmpsc_shm_pool_attach(const int *fds, uint32_t nfds, rmpsc_shm_pool **out);

/** Unmap and release. Accepts NULL. No other call on @p sp may follow. */
RMPSC_API void rmpsc_shm_pool_destroy(rmpsc_shm_pool *sp);

/**
 * The payload of handle @p h, read-only, in place: @p view gets its
 * address and the length the owner set (read once from the directory and
 * checked against the slab's size). The receiver cannot tell a stale
 * handle from a live one (the generations are the owner's): trust the
 * handles of the ring they came through as far as you trust its sender.
 *
 * @return 0; -EBADF; -EINVAL: @p view NULL, @p h 0, or a tier or slab
 *   index outside the pool; -EPROTO: the directory holds a length larger
 *   than the slab.
 * Concurrency: any thread. Progress: wait-free. Ordering: none (the ring
 *   the handle came through orders it).
 */
RMPSC_API int rmpsc_shm_pool_payload(const rmpsc_shm_pool *sp, uint32_t h, struct iovec *view);

#ifdef __cplusplus
}
#endif

#endif /* RINGMPSC_SHM_H */
