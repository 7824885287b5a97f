/* SPDX-License-Identifier: MIT */
/**
 * @file ringmpsc/shm.h
 * Between processes. This part: passing file descriptors (a shared ring's
 * or pool's memfd, an eventfd) over Unix domain sockets with SCM_RIGHTS,
 * and a small listen/accept/connect helper to set up such a socket.
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

#include "common.h"

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

#ifdef __cplusplus
}
#endif

#endif /* RINGMPSC_SHM_H */
