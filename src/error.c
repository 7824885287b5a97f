/* SPDX-License-Identifier: MIT */
#include <stdio.h>

#include "internal.h"

const char *rmpsc_strerror(int err)
{
	/* Unsigned magnitude: -INT_MIN does not fit in an int. */
	unsigned int code = err < 0 ? 0u - (unsigned int)err : (unsigned int)err;

	switch (code) {
	case 0: return "success";
	case EINVAL: return "invalid argument or misuse";
	case EBADF: return "not a valid handle of this type";
	case EAGAIN: return "would block: ring full (producer) or empty (consumer)";
	case ETIMEDOUT: return "timed out";
	case EPIPE: return "closed (consumer: closed and drained)";
	case ENOBUFS: return "buffer pool exhausted";
	case ESTALE: return "stale buffer handle";
	case EMSGSIZE: return "item larger than the slot or size tier";
	case ENOMEM: return "out of memory, or mapping failed";
	case EPROTO: return "shared memory header corrupt or incompatible";
	case E2BIG: return "config struct larger than this library knows, with non-zero extra bytes";
	case EOPNOTSUPP: return "not supported by this build or kernel";
	case EDEADLK: return "would deadlock: called from the thread it would wait for";
	case EIO: return "eventfd read or write failed";
	case EMFILE: return "too many open files in this process";
	case ENFILE: return "too many open files in the system";
	case EEXIST: return "already registered";
	case ENOENT: return "not registered";
	case ENOSPC: return "epoll watch limit reached";
	default: return "unknown error";
	}
}

#ifdef RMPSC_DEBUG_LOG
void rmpsc__debug_log(const char *file, int line, const char *cond, int err)
{
	fprintf(stderr, "ringmpsc: %s:%d: %s -> %s\n", file, line, cond, rmpsc_strerror(err));
}
#endif
