/* SPDX-License-Identifier: MIT */
#include <stdio.h>

#include "internal.h"

const char *rmpsc_strerror(int err)
{
	/* Unsigned magnitude: -INT_MIN does not fit in an int. */
	unsigned int code = err < 0 ? 0u - (unsigned int)err : (unsigned int)err;

	/* Each text fits every call that returns the code (the headers list
	 * them), not only the most common one. */
	switch (code) {
	case 0: return "success";
	case EINVAL: return "invalid argument or misuse";
	case EBADF: return "not a valid handle of this type, or not an open file descriptor";
	case EAGAIN:
		return "try again: ring full (producer), nothing to take (consumer), no "
		       "thread could be created now, or too many io_uring requests in flight";
	case ETIMEDOUT: return "timed out";
	case EPIPE:
		return "closed (consumer: closed and drained; registration: channel closed; "
		       "io_uring engine: stopping, its pool destroyed or its output closed; "
		       "socket: the peer is gone)";
	case ENOBUFS: return "buffer pool exhausted";
	case ESTALE: return "stale buffer handle";
	case EMSGSIZE:
		return "item larger than the slot or size tier, or a message with more descriptors "
		       "or data than the receiver has room for";
	case ENOMEM: return "out of memory: allocation, mapping or thread creation failed";
	case EPROTO:
		return "shared memory header corrupt or incompatible, a shared ring whose peer "
		       "broke the protocol, or a peer's message with control data other than "
		       "descriptors";
	case E2BIG:
		return "size-prefixed struct too large: above 4096 bytes, or larger than this "
		       "library knows with non-zero extra bytes";
	case EOPNOTSUPP: return "not supported by this build or kernel, or io_uring disabled";
	case EDEADLK: return "would deadlock: called from the thread it would wait for";
	case EBUSY:
		return "busy: called from a handler running on this consumer, a loop already "
		       "consumes the ring, the kernel holds the slab (I/O in flight), or the "
		       "pool or io_uring still in use (slabs out, a registration, a buffer table), or "
		       "a live process holds that shared ring role";
	case EIO: return "eventfd read or write failed";
	case EMFILE: return "too many open files in this process";
	case ENFILE: return "too many open files in the system";
	case EEXIST:
		return "already registered with that epoll instance, or buffer group taken on that "
		       "io_uring";
	case ENOENT:
		return "no such producer ring id, not registered with that epoll instance, or "
		       "the io_uring completion carries no buffer";
	case ENOSPC:
		return "no room left: every producer or consumer slot of the channel in use, "
		       "the epoll watch limit reached, the io_uring buffer table too small, or the "
		       "shared ring's descriptor watches all taken";
	case ENOSYS: return "no io_uring in this kernel (or a filter says so)";
	case ENOMSG: return "the peer's message carried no file descriptor";
	case ENOTSOCK: return "not a socket";
	case EADDRINUSE: return "a live socket or another file is at that path";
	case ENAMETOOLONG: return "socket path longer than 107 bytes";
	case ECONNRESET:
		return "the shared ring's peer is gone: its process died, a watched descriptor "
		       "hung up, or it detached";
	case ECONNREFUSED: return "nobody listens at that socket path";
	case ENXIO: return "the io_uring has no registered-buffer table to update";
	case EALREADY:
		return "the kernel did not hold that slab (completed already, or never prepared), "
		       "or that slab is not lent (never was, or reclaimed already)";
	default: return "unknown error";
	}
}

#ifdef RMPSC_DEBUG_LOG
void rmpsc__debug_log(const char *file, int line, const char *cond, int err)
{
	fprintf(stderr, "ringmpsc: %s:%d: %s -> %s\n", file, line, cond, rmpsc_strerror(err));
}
#endif

#ifdef RMPSC_DEBUG_ASSERT
#include <stdlib.h>

void rmpsc__assert_fail(const char *file, int line, const char *cond)
{
	fprintf(stderr, "ringmpsc: %s:%d: internal assertion failed: %s\n", file, line, cond);
	abort();
}
#endif
