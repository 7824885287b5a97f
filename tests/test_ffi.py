#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""FFI self-test: libringmpsc is usable from Python's ctypes with no glue.

    python3 tests/test_ffi.py path/to/libringmpsc.so

Standard library only. Checks the version against include/ringmpsc/common.h,
mirrors rmpsc_ring_config, rmpsc_span and rmpsc_wait as ctypes Structures
(sizes pinned as in test_abi.c), moves u64 items by copy (push_n/pop_n) and
zero-copy (reserve/commit and readable/advance through both span segments),
checks the documented error codes, the blocking _timed calls (ctypes drops
the GIL around each call, so a Python thread can wake a blocked one), a
notifier round trip, the channels, and a BufferPool (rmpsc_pool_config and
rmpsc_pool_region mirrored, a slab written through its address and read
back as the payload, a blocked allocation woken by a Python thread's
free), and the io_uring engine (rmpsc_io_config and rmpsc_io_cqe
mirrored, a file read into slabs and reaped into a ctypes array). Prints
"N passed, M failed" and exits non-zero on any failure.
"""

import ctypes
import errno
import os
import re
import select
import sys
import threading
import time
import traceback

from ctypes import (POINTER, Structure, byref, c_char_p, c_int, c_int32,
                    c_int64, c_size_t, c_uint32, c_uint64, c_void_p)

HERE = os.path.dirname(os.path.abspath(__file__))
COMMON_H = os.path.join(HERE, "..", "include", "ringmpsc", "common.h")

LP64 = ctypes.sizeof(c_void_p) == 8


class IoVec(Structure):
    _fields_ = [("iov_base", c_void_p), ("iov_len", c_size_t)]


class Span(Structure):
    """rmpsc_span: iov is laid out as struct iovec[2]."""
    _fields_ = [
        ("iov", IoVec * 2),
        ("count", c_uint32 * 2),
        ("nseg", c_uint32),
        ("_pad0", c_uint32),
        ("pos", c_uint64),
    ]


def u32(*names):
    """ctypes fields of type uint32_t, in order."""
    return [(n, c_uint32) for n in names]


# The channel configs begin alike: size, flags, then the geometry.
CHANNEL_CONFIG_HEAD = u32("size", "flags", "elem_size", "ring_capacity", "producers",
                          "max_producers")


class RingConfig(Structure):
    """rmpsc_ring_config: 32 bytes (the 1.0 fields end at
    RMPSC_RING_CONFIG_SIZE_V1 == 24, then slots and _pad1)."""
    _fields_ = (u32("size", "flags", "capacity", "elem_size") + [("numa_node", c_int32)] +
                u32("_pad0", "slots", "_pad1"))


class Wait(Structure):
    """rmpsc_wait (RMPSC_WAIT_CONFIG_SIZE_V1 == 32)."""
    _fields_ = (u32("size", "kind", "spin_count", "yield_count") +
                [("sleep_ns", c_int64), ("timeout_ns", c_int64)])


class Borrow(Structure):
    """rmpsc_borrow: a borrowed view and its token (24 bytes on LP64)."""
    _fields_ = [("data", c_void_p)] + u32("count", "_pad0") + [("token", c_uint64)]


class MpscConfig(Structure):
    """rmpsc_mpsc_config (RMPSC_MPSC_CONFIG_SIZE_V1 == 32)."""
    _fields_ = CHANNEL_CONFIG_HEAD + [("numa_node", c_int32)] + u32("_pad0")


class McConfig(Structure):
    """rmpsc_mc_config (RMPSC_MC_CONFIG_SIZE_V1 == 32)."""
    _fields_ = CHANNEL_CONFIG_HEAD + u32("max_consumers") + [("numa_node", c_int32)]


class Ring(Structure):
    """Opaque rmpsc_ring."""


class Notifier(Structure):
    """Opaque rmpsc_notifier."""


class PoolConfig(Structure):
    """rmpsc_pool_config (RMPSC_POOL_CONFIG_SIZE_V1 == 48 on LP64)."""
    _fields_ = [("size", c_uint32), ("flags", c_uint32), ("slab_size", c_uint64),
                ("slab_count", c_uint32), ("ntiers", c_uint32), ("tiers", c_void_p),
                ("page", c_uint32), ("numa_node", c_int32), ("_reserved", c_uint64)]


class PoolRegion(Structure):
    """rmpsc_pool_region (48 bytes on LP64)."""
    _fields_ = [("base", c_void_p), ("len", c_uint64), ("slab_size", c_uint64),
                ("stride", c_uint64), ("count", c_uint32), ("page", c_uint32),
                ("node", c_int32), ("tier_bits", ctypes.c_uint8),
                ("gen_bits", ctypes.c_uint8), ("index_bits", ctypes.c_uint8),
                ("_pad0", ctypes.c_uint8)]


class IoConfig(Structure):
    """rmpsc_io_config (RMPSC_IO_CONFIG_SIZE_V1 == 64 on LP64)."""
    _fields_ = [("size", c_uint32), ("flags", c_uint32), ("entries", c_uint32),
                ("max_ops", c_uint32), ("pool", c_void_p), ("ring", c_void_p),
                ("mpsc", c_void_p), ("notifier", c_void_p), ("drain_timeout_ns", c_int64),
                ("recv_tier", c_uint32), ("recv_buffers", c_uint32)]


class IoCqe(Structure):
    """rmpsc_io_cqe (24 bytes, frozen)."""
    _fields_ = [("tag", c_uint64), ("handle", c_uint32), ("result", c_int32),
                ("flags", c_uint32), ("op", c_uint32)]


RingP = POINTER(Ring)
ChanP = c_void_p  # opaque channel, producer and consumer handles
NotifierP = POINTER(Notifier)
WaitP = POINTER(Wait)
PoolP = c_void_p  # opaque rmpsc_pool and rmpsc_pool_cache
U64P = POINTER(c_uint64)

# Pinned constants (mirrors of the C enums; test_abi.c pins the C side).
RMPSC_NODE_ANY = -1
RMPSC_FEATURE_NUMA = 1
RMPSC_FEATURE_URING = 2
RMPSC_RING_CONFIG_SIZE_V1 = 24
RMPSC_WAIT_SPIN = 0
RMPSC_WAIT_YIELD = 1
RMPSC_WAIT_SLEEP = 2
RMPSC_WAIT_BLOCK = 3
RMPSC_WAIT_DEADLINE = 4
RMPSC_WAIT_BACKOFF = 5
RMPSC_WAIT_KIND_MAX = 5
RMPSC_WAIT_DEFAULT_SPIN = 256
RMPSC_WAIT_DEFAULT_YIELD = 8
RMPSC_WAIT_CONFIG_SIZE_V1 = 32


class CheckFailed(Exception):
    pass


def check(cond, what):
    if not cond:
        raise CheckFailed(what)


def check_eq(got, want, what):
    if got != want:
        raise CheckFailed("%s: got %r, want %r" % (what, got, want))


def load(path):
    lib = ctypes.CDLL(path)
    protos = {
        "rmpsc_version": (c_uint32, []),
        "rmpsc_version_string": (c_char_p, []),
        "rmpsc_strerror": (c_char_p, [c_int]),
        "rmpsc_features": (c_uint32, []),
        "rmpsc_ring_config_init": (c_int, [POINTER(RingConfig), c_uint32]),
        "rmpsc_ring_create": (c_int, [POINTER(RingConfig), POINTER(RingP)]),
        "rmpsc_ring_destroy": (None, [RingP]),
        "rmpsc_ring_reserve": (c_int, [RingP, c_uint32, POINTER(Span)]),
        "rmpsc_ring_reserve_exact": (c_int, [RingP, c_uint32, POINTER(Span)]),
        "rmpsc_ring_commit": (c_int, [RingP, c_uint32]),
        "rmpsc_ring_push": (c_int, [RingP, c_void_p]),
        "rmpsc_ring_push_n": (c_int, [RingP, c_void_p, c_uint32]),
        "rmpsc_ring_push_n_exact": (c_int, [RingP, c_void_p, c_uint32]),
        "rmpsc_ring_readable": (c_int, [RingP, c_uint32, POINTER(Span)]),
        "rmpsc_ring_advance": (c_int, [RingP, c_uint32]),
        "rmpsc_ring_pop": (c_int, [RingP, c_void_p]),
        "rmpsc_ring_pop_n": (c_int, [RingP, c_void_p, c_uint32]),
        "rmpsc_ring_drain": (c_int, [RingP, c_void_p, c_uint32]),
        "rmpsc_ring_close": (c_int, [RingP]),
        "rmpsc_ring_is_closed": (c_int, [RingP]),
        "rmpsc_ring_len": (c_int64, [RingP]),
        "rmpsc_ring_is_empty": (c_int, [RingP]),
        "rmpsc_ring_capacity": (c_int64, [RingP]),
        "rmpsc_ring_elem_size": (c_int64, [RingP]),
        "rmpsc_ring_push_timed": (c_int, [RingP, c_void_p, c_int64, WaitP]),
        "rmpsc_ring_pop_timed": (c_int, [RingP, c_void_p, c_int64, WaitP]),
        "rmpsc_ring_push_n_timed": (c_int, [RingP, c_void_p, c_uint32, c_int64, WaitP]),
        "rmpsc_ring_pop_n_timed": (c_int, [RingP, c_void_p, c_uint32, c_int64, WaitP]),
        "rmpsc_ring_set_wait": (c_int, [RingP, WaitP]),
        "rmpsc_ring_get_wait": (c_int, [RingP, WaitP]),
        "rmpsc_ring_set_notifier": (c_int, [RingP, NotifierP]),
        "rmpsc_wait_init": (c_int, [WaitP, c_uint32, c_uint32]),
        "rmpsc_wait_validate": (c_int, [WaitP]),
        "rmpsc_notifier_create": (c_int, [c_uint32, POINTER(NotifierP)]),
        "rmpsc_notifier_destroy": (None, [NotifierP]),
        "rmpsc_notifier_fd": (c_int, [NotifierP]),
        "rmpsc_notifier_signal": (c_int, [NotifierP]),
        "rmpsc_notifier_consume": (c_int64, [NotifierP]),
        "rmpsc_ring_borrow": (c_int, [RingP, c_uint32, POINTER(Borrow)]),
        "rmpsc_ring_borrow_commit": (c_int, [RingP, c_uint64]),
        "rmpsc_ring_borrow_commit_all": (c_int, [RingP]),
        "rmpsc_mpsc_config_init": (c_int, [POINTER(MpscConfig), c_uint32]),
        "rmpsc_mpsc_create": (c_int, [POINTER(MpscConfig), POINTER(ChanP)]),
        "rmpsc_mpsc_destroy": (None, [ChanP]),
        "rmpsc_mpsc_register": (c_int, [ChanP, POINTER(ChanP)]),
        "rmpsc_mpsc_deregister": (c_int, [ChanP]),
        "rmpsc_producer_push_n": (c_int, [ChanP, c_void_p, c_uint32]),
        "rmpsc_mpsc_pop_n": (c_int, [ChanP, c_void_p, c_uint32]),
        "rmpsc_mpsc_pop_n_timed": (c_int, [ChanP, c_void_p, c_uint32, c_int64, WaitP]),
        "rmpsc_mpsc_close": (c_int, [ChanP]),
        "rmpsc_mpsc_len": (c_int64, [ChanP]),
        "rmpsc_mc_config_init": (c_int, [POINTER(McConfig), c_uint32, c_int]),
        "rmpsc_mpmc_create": (c_int, [POINTER(McConfig), POINTER(ChanP)]),
        "rmpsc_mpmc_destroy": (None, [ChanP]),
        "rmpsc_mpmc_register_producer": (c_int, [ChanP, POINTER(ChanP)]),
        "rmpsc_mpmc_register_consumer": (c_int, [ChanP, POINTER(ChanP)]),
        "rmpsc_consumer_steal": (c_int, [ChanP, c_void_p, c_uint32]),
        "rmpsc_consumer_deregister": (c_int, [ChanP]),
        "rmpsc_mpmc_close": (c_int, [ChanP]),
        "rmpsc_pool_config_init": (c_int, [POINTER(PoolConfig), c_uint32]),
        "rmpsc_pool_create": (c_int, [POINTER(PoolConfig), POINTER(PoolP)]),
        "rmpsc_pool_destroy": (c_int, [PoolP, c_uint32, POINTER(c_uint64)]),
        "rmpsc_pool_alloc": (c_int, [PoolP, c_uint64, POINTER(c_uint32)]),
        "rmpsc_pool_alloc_timed": (c_int, [PoolP, c_uint64, POINTER(c_uint32), c_int64,
                                           WaitP]),
        "rmpsc_pool_free": (c_int, [PoolP, c_uint32]),
        "rmpsc_pool_slab": (c_int, [PoolP, c_uint32, POINTER(IoVec)]),
        "rmpsc_pool_payload": (c_int, [PoolP, c_uint32, POINTER(IoVec)]),
        "rmpsc_pool_set_len": (c_int, [PoolP, c_uint32, c_uint64]),
        "rmpsc_pool_available": (c_int64, [PoolP]),
        "rmpsc_pool_tier_info": (c_int, [PoolP, c_uint32, POINTER(PoolRegion)]),
        "rmpsc_pool_cache_create": (c_int, [PoolP, c_uint32, POINTER(PoolP)]),
        "rmpsc_pool_cache_destroy": (c_int, [PoolP]),
        "rmpsc_pool_cache_alloc": (c_int, [PoolP, c_uint64, POINTER(c_uint32)]),
        "rmpsc_pool_cache_free": (c_int, [PoolP, c_uint32]),
        "rmpsc_uring_features": (c_int64, []),
        "rmpsc_io_config_init": (c_int, [POINTER(IoConfig), c_uint32]),
        "rmpsc_io_create": (c_int, [POINTER(IoConfig), POINTER(c_void_p)]),
        "rmpsc_io_destroy": (c_int, [c_void_p, POINTER(c_uint64)]),
        "rmpsc_io_read": (c_int, [c_void_p, c_int, c_uint64, c_uint32, c_uint32, c_uint64,
                                  c_uint32]),
        "rmpsc_io_reap": (c_int, [c_void_p, POINTER(IoCqe), c_uint32, c_int64]),
        "rmpsc_io_inflight": (c_int64, [c_void_p]),
    }
    for name, (restype, argtypes) in protos.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    return lib


def header_version():
    with open(COMMON_H, encoding="utf-8") as f:
        text = f.read()
    parts = {}
    for m in re.finditer(r"^#define RMPSC_VERSION_(MAJOR|MINOR|PATCH) (\d+)$", text,
                         re.MULTILINE):
        parts[m.group(1)] = int(m.group(2))
    check_eq(sorted(parts), ["MAJOR", "MINOR", "PATCH"], "version macros in common.h")
    return parts["MAJOR"], parts["MINOR"], parts["PATCH"]


def make_ring(lib, capacity, elem_size=8):
    cfg = RingConfig()
    check_eq(lib.rmpsc_ring_config_init(byref(cfg), ctypes.sizeof(cfg)), 0,
             "config_init")
    cfg.capacity = capacity
    cfg.elem_size = elem_size
    r = RingP()
    check_eq(lib.rmpsc_ring_create(byref(cfg), byref(r)), 0, "create")
    check(bool(r), "create returned a handle")
    return r


def created_capacity(lib, cfg, what):
    """The capacity of a ring created (it must be) from cfg, then destroyed."""
    r = RingP()
    check_eq(lib.rmpsc_ring_create(byref(cfg), byref(r)), 0, what)
    try:
        return lib.rmpsc_ring_capacity(r)
    finally:
        lib.rmpsc_ring_destroy(r)


def span_slots(span, seg):
    """The u64 slots of one segment, zero-copy."""
    check(span.iov[seg].iov_base is not None, "segment %d has a base" % seg)
    return ctypes.cast(span.iov[seg].iov_base, U64P)


# ---- cases ------------------------------------------------------------------


def test_ffi_version_matches_header(lib):
    major, minor, patch = header_version()
    check_eq(lib.rmpsc_version(), major * 10000 + minor * 100 + patch, "rmpsc_version")
    check_eq(lib.rmpsc_version_string(), ("%d.%d.%d" % (major, minor, patch)).encode(),
             "rmpsc_version_string")
    check_eq(lib.rmpsc_features() & ~(RMPSC_FEATURE_NUMA | RMPSC_FEATURE_URING), 0,
             "rmpsc_features known bits")


def test_ffi_struct_layout_matches_abi(lib):
    check_eq(ctypes.sizeof(RingConfig), 32, "sizeof config")
    check_eq(RingConfig._pad0.offset + 4, RMPSC_RING_CONFIG_SIZE_V1,
             "the 1.0 fields end at RMPSC_RING_CONFIG_SIZE_V1")
    for name, off in (("size", 0), ("flags", 4), ("capacity", 8), ("elem_size", 12),
                      ("numa_node", 16), ("_pad0", 20), ("slots", 24), ("_pad1", 28)):
        check_eq(getattr(RingConfig, name).offset, off, "config.%s offset" % name)
    check_eq(ctypes.sizeof(Wait), RMPSC_WAIT_CONFIG_SIZE_V1, "sizeof wait")
    for name, off in (("size", 0), ("kind", 4), ("spin_count", 8), ("yield_count", 12),
                      ("sleep_ns", 16), ("timeout_ns", 24)):
        check_eq(getattr(Wait, name).offset, off, "wait.%s offset" % name)
    iov = ctypes.sizeof(IoVec)
    check_eq(Span.iov.offset, 0, "span.iov offset")
    check_eq(Span.count.offset, 2 * iov, "span.count offset")
    check_eq(Span.nseg.offset, 2 * iov + 8, "span.nseg offset")
    check_eq(Span._pad0.offset, 2 * iov + 12, "span._pad0 offset")
    check_eq(Span.pos.offset, 2 * iov + 16, "span.pos offset")
    if LP64:
        check_eq(iov, 16, "sizeof iovec")
        check_eq(ctypes.sizeof(Span), 56, "sizeof span")
        check_eq(Span.pos.offset, 48, "span.pos offset")


def test_ffi_config_init_writes_defaults(lib):
    cfg = RingConfig()
    cfg._pad0 = 0xFFFFFFFF
    check_eq(lib.rmpsc_ring_config_init(byref(cfg), ctypes.sizeof(cfg)), 0, "config_init")
    check_eq((cfg.size, cfg.flags, cfg.capacity, cfg.elem_size, cfg.numa_node, cfg._pad0,
              cfg.slots, cfg._pad1),
             (32, 0, 1024, 8, RMPSC_NODE_ANY, 0, 0, 0), "defaults")
    check_eq(lib.rmpsc_ring_config_init(byref(cfg), 16), -errno.EINVAL, "size 16")
    check_eq(lib.rmpsc_ring_config_init(None, 24), -errno.EINVAL, "NULL config")


def test_ffi_config_v1_size_leaves_new_fields_alone(lib):
    # An older caller's 24-byte struct: init writes at most 24 bytes and
    # create accepts it (slots takes its default).
    cfg = RingConfig()
    cfg.slots = 0xAAAAAAAA
    cfg._pad1 = 0x55555555
    check_eq(lib.rmpsc_ring_config_init(byref(cfg), RMPSC_RING_CONFIG_SIZE_V1), 0,
             "config_init 24")
    check_eq(cfg.size, 24, "size recorded")
    check_eq((cfg.slots, cfg._pad1), (0xAAAAAAAA, 0x55555555), "bytes past 24 untouched")
    cfg.capacity = 16
    check_eq(created_capacity(lib, cfg, "create from 24 bytes"), 16, "capacity")
    # The full struct: slots must be 0 or a power of two >= capacity.
    check_eq(lib.rmpsc_ring_config_init(byref(cfg), ctypes.sizeof(cfg)), 0, "config_init")
    cfg.capacity = 16
    cfg.slots = 64
    check_eq(created_capacity(lib, cfg, "create with slots 64"), 16,
             "capacity with a larger buffer")
    r = RingP()
    cfg.slots = 8
    check_eq(lib.rmpsc_ring_create(byref(cfg), byref(r)), -errno.EINVAL, "slots < capacity")
    cfg.slots = 0
    cfg._pad1 = 1
    check_eq(lib.rmpsc_ring_create(byref(cfg), byref(r)), -errno.EINVAL, "_pad1 not zero")


def test_ffi_push_n_pop_n_batches_across_wraps(lib):
    r = make_ring(lib, 64)
    try:
        check_eq(lib.rmpsc_ring_capacity(r), 64, "capacity")
        check_eq(lib.rmpsc_ring_elem_size(r), 8, "elem_size")
        nxt = 0
        want = 0
        batch_in = (c_uint64 * 64)()
        batch_out = (c_uint64 * 64)()
        # Batch sizes that do not divide 64, so batches straddle the end.
        for n in [37, 64, 5, 50, 29, 64, 1, 63, 40, 33] * 20:
            for i in range(n):
                batch_in[i] = nxt + i
            pushed = lib.rmpsc_ring_push_n(r, batch_in, n)
            check(1 <= pushed <= n, "push_n(%d) returned %d" % (n, pushed))
            nxt += pushed
            check_eq(lib.rmpsc_ring_len(r), nxt - want, "len after push_n")
            got = lib.rmpsc_ring_pop_n(r, batch_out, 64)
            check_eq(got, nxt - want, "pop_n returns everything queued")
            check_eq(list(batch_out[:got]), list(range(want, want + got)), "values")
            want += got
        check(nxt > 64 * 10, "the positions went round the ring many times")
        check_eq(lib.rmpsc_ring_is_empty(r), 1, "empty at the end")
    finally:
        lib.rmpsc_ring_destroy(r)


def test_ffi_reserve_commit_readable_advance_zero_copy(lib):
    r = make_ring(lib, 64)
    try:
        tmp = (c_uint64 * 64)()
        # Move both positions to 50: the next 30 slots wrap (14 + 16).
        check_eq(lib.rmpsc_ring_push_n(r, tmp, 50), 50, "push_n 50")
        check_eq(lib.rmpsc_ring_pop_n(r, tmp, 50), 50, "pop_n 50")

        span = Span()
        check_eq(lib.rmpsc_ring_reserve(r, 30, byref(span)), 30, "reserve 30")
        check_eq((span.nseg, span.count[0], span.count[1], span.pos), (2, 14, 16, 50),
                 "reserved span shape")
        check_eq((span.iov[0].iov_len, span.iov[1].iov_len), (14 * 8, 16 * 8),
                 "iov lengths in bytes")
        k = 0
        for seg in (0, 1):
            slots = span_slots(span, seg)
            for i in range(span.count[seg]):
                slots[i] = 0xABC000 + k
                k += 1
        check_eq(lib.rmpsc_ring_len(r), 0, "nothing visible before commit")
        check_eq(lib.rmpsc_ring_commit(r, 10), 0, "partial commit 10")
        check_eq(lib.rmpsc_ring_commit(r, 20), 0, "commit the other 20")

        rd = Span()
        check_eq(lib.rmpsc_ring_readable(r, 64, byref(rd)), 30, "readable")
        check_eq((rd.nseg, rd.count[0], rd.count[1], rd.pos), (2, 14, 16, 50),
                 "readable span shape")
        check_eq(rd.iov[0].iov_base, span.iov[0].iov_base, "same slots, segment 0")
        check_eq(rd.iov[1].iov_base, span.iov[1].iov_base, "same slots, segment 1")
        seen = []
        for seg in (0, 1):
            slots = span_slots(rd, seg)
            seen.extend(slots[i] for i in range(rd.count[seg]))
        check_eq(seen, [0xABC000 + i for i in range(30)], "values read in place")
        check_eq(lib.rmpsc_ring_advance(r, 20), 0, "partial advance 20")
        check_eq(lib.rmpsc_ring_len(r), 10, "10 left")
        check_eq(lib.rmpsc_ring_readable(r, 64, byref(rd)), 10, "readable rest")
        check_eq((rd.nseg, rd.pos), (1, 70), "rest is one segment at 70")
        slots = span_slots(rd, 0)
        check_eq([slots[i] for i in range(10)], [0xABC000 + 20 + i for i in range(10)],
                 "rest values")
        check_eq(lib.rmpsc_ring_advance(r, 10), 0, "advance rest")
        check_eq(lib.rmpsc_ring_is_empty(r), 1, "empty")
    finally:
        lib.rmpsc_ring_destroy(r)


def test_ffi_error_codes_match_errno(lib):
    cfg = RingConfig()
    check_eq(lib.rmpsc_ring_config_init(byref(cfg), ctypes.sizeof(cfg)), 0, "config_init")
    cfg.capacity = 3
    out = ctypes.cast(c_void_p(0x1000), RingP)  # must be overwritten with NULL
    check_eq(lib.rmpsc_ring_create(byref(cfg), byref(out)), -errno.EINVAL,
             "capacity 3")
    check(not bool(out), "create sets *out to NULL on error")

    r = make_ring(lib, 64)
    try:
        item = c_uint64(0)
        span = Span()
        check_eq(lib.rmpsc_ring_pop(r, byref(item)), -errno.EAGAIN, "pop on empty")
        check_eq(lib.rmpsc_ring_reserve(r, 4, byref(span)), 4, "reserve 4")
        check_eq(lib.rmpsc_ring_commit(r, 5), -errno.EINVAL, "commit 5 of 4")
        check_eq(lib.rmpsc_ring_commit(r, 4), 0, "commit 4")
        check_eq(lib.rmpsc_ring_push(None, byref(item)), -errno.EBADF, "NULL handle push")
        check_eq(lib.rmpsc_ring_len(None), -errno.EBADF, "NULL handle len")
        check_eq(lib.rmpsc_ring_close(None), -errno.EBADF, "NULL handle close")
        check_eq(lib.rmpsc_ring_push(r, None), -errno.EINVAL, "NULL item")

        check_eq(lib.rmpsc_ring_close(r), 0, "close")
        check_eq(lib.rmpsc_ring_is_closed(r), 1, "is_closed")
        check_eq(lib.rmpsc_ring_push(r, byref(item)), -errno.EPIPE, "push after close")
        check_eq(lib.rmpsc_ring_reserve(r, 1, byref(span)), -errno.EPIPE,
                 "reserve after close")
        # The 4 committed items still arrive, then -EPIPE.
        check_eq(lib.rmpsc_ring_drain(r, None, 100), 4, "drain the committed 4")
        check_eq(lib.rmpsc_ring_pop(r, byref(item)), -errno.EPIPE, "pop closed+empty")
    finally:
        lib.rmpsc_ring_destroy(r)
    lib.rmpsc_ring_destroy(None)  # accepted


def test_ffi_strerror_returns_bytes(lib):
    for code in (0, -errno.EINVAL, -errno.EAGAIN, -errno.EPIPE, -errno.EBADF,
                 errno.EPIPE, -99999):
        s = lib.rmpsc_strerror(code)
        check(isinstance(s, bytes) and len(s) > 0, "strerror(%d) -> %r" % (code, s))
    check_eq(lib.rmpsc_strerror(-errno.EPIPE), lib.rmpsc_strerror(errno.EPIPE),
             "negative and positive codes")


def test_ffi_wait_init_writes_defaults(lib):
    for kind in range(RMPSC_WAIT_KIND_MAX + 1):
        w = Wait()
        w.sleep_ns = -5
        check_eq(lib.rmpsc_wait_init(byref(w), ctypes.sizeof(w), kind), 0,
                 "wait_init kind %d" % kind)
        spin = 0 if kind == RMPSC_WAIT_SPIN else RMPSC_WAIT_DEFAULT_SPIN
        check_eq((w.size, w.kind, w.spin_count, w.yield_count, w.sleep_ns, w.timeout_ns),
                 (32, kind, spin, RMPSC_WAIT_DEFAULT_YIELD, 50000, 1000000),
                 "defaults of kind %d" % kind)
        check_eq(lib.rmpsc_wait_validate(byref(w)), 0, "validate kind %d" % kind)
    w = Wait()
    check_eq(lib.rmpsc_wait_init(byref(w), 32, RMPSC_WAIT_KIND_MAX + 1), -errno.EINVAL,
             "unknown kind")
    check_eq(lib.rmpsc_wait_init(byref(w), 24, RMPSC_WAIT_BLOCK), -errno.EINVAL,
             "size 24")
    check_eq(lib.rmpsc_wait_init(byref(w), 36, RMPSC_WAIT_BLOCK), -errno.EINVAL,
             "size 36")
    check_eq(lib.rmpsc_wait_init(None, 32, RMPSC_WAIT_BLOCK), -errno.EINVAL, "NULL wait")
    check_eq(lib.rmpsc_wait_validate(None), -errno.EINVAL, "validate NULL")


def test_ffi_timed_calls_time_out_and_return_items(lib):
    r = make_ring(lib, 4)
    try:
        item = c_uint64(0)
        spin = Wait()
        check_eq(lib.rmpsc_wait_init(byref(spin), ctypes.sizeof(spin), RMPSC_WAIT_SPIN), 0,
                 "wait_init spin")
        # Empty: timeout 0 is a single try; a short timeout runs out.
        check_eq(lib.rmpsc_ring_pop_timed(r, byref(item), 0, None), -errno.ETIMEDOUT,
                 "pop_timed(0) on empty")
        check_eq(lib.rmpsc_ring_pop_timed(r, byref(item), 0, byref(spin)),
                 -errno.ETIMEDOUT, "pop_timed(0, spin) on empty")
        check_eq(lib.rmpsc_ring_pop_timed(r, byref(item), 1000000, None),
                 -errno.ETIMEDOUT, "pop_timed(1 ms) on empty")
        # A push, then a pop with a timeout returns the item.
        item.value = 0xC0FFEE
        check_eq(lib.rmpsc_ring_push_timed(r, byref(item), 0, None), 0, "push_timed(0)")
        item.value = 0
        check_eq(lib.rmpsc_ring_pop_timed(r, byref(item), 1000000000, None), 0,
                 "pop_timed(1 s) after a push")
        check_eq(item.value, 0xC0FFEE, "the item")
        # Full: push_timed(0) times out, pop_n_timed takes all.
        four = (c_uint64 * 4)(1, 2, 3, 4)
        check_eq(lib.rmpsc_ring_push_n_timed(r, four, 4, -1, None), 4, "push_n_timed 4")
        check_eq(lib.rmpsc_ring_push_timed(r, byref(item), 0, None), -errno.ETIMEDOUT,
                 "push_timed(0) on full")
        out = (c_uint64 * 4)()
        check_eq(lib.rmpsc_ring_pop_n_timed(r, out, 4, 0, None), 4, "pop_n_timed")
        check_eq(list(out), [1, 2, 3, 4], "pop_n_timed values")
        # Errors.
        bad = Wait()
        check_eq(lib.rmpsc_wait_init(byref(bad), ctypes.sizeof(bad), RMPSC_WAIT_BLOCK), 0,
                 "wait_init")
        bad.kind = 99
        check_eq(lib.rmpsc_ring_pop_timed(r, byref(item), 0, byref(bad)), -errno.EINVAL,
                 "pop_timed with an invalid strategy")
        check_eq(lib.rmpsc_ring_set_wait(r, byref(bad)), -errno.EINVAL, "set_wait invalid")
        check_eq(lib.rmpsc_ring_pop_timed(None, byref(item), 0, None), -errno.EBADF,
                 "pop_timed NULL ring")
        check_eq(lib.rmpsc_ring_pop_timed(r, None, 0, None), -errno.EINVAL,
                 "pop_timed NULL item")
        # The ring's strategy round-trips.
        check_eq(lib.rmpsc_ring_set_wait(r, byref(spin)), 0, "set_wait spin")
        got = Wait()
        check_eq(lib.rmpsc_wait_init(byref(got), ctypes.sizeof(got), RMPSC_WAIT_BLOCK), 0,
                 "wait_init")
        check_eq(lib.rmpsc_ring_get_wait(r, byref(got)), 0, "get_wait")
        check_eq(got.kind, RMPSC_WAIT_SPIN, "get_wait kind")
        check_eq(lib.rmpsc_ring_set_wait(r, None), 0, "set_wait NULL: the default")
        check_eq(lib.rmpsc_ring_get_wait(r, byref(got)), 0, "get_wait")
        check_eq(got.kind, RMPSC_WAIT_BLOCK, "default kind")
    finally:
        lib.rmpsc_ring_destroy(r)


def test_ffi_timed_pop_blocks_without_the_gil(lib):
    # The main thread blocks in pop_timed(-1); a Python thread can run only
    # if ctypes released the GIL, and its push (then its close) wakes it.
    r = make_ring(lib, 8)
    try:
        def later(fn):
            def run():
                time.sleep(0.05)
                fn()
            t = threading.Thread(target=run)
            t.start()
            return t

        item = c_uint64(0)
        sent = c_uint64(0xBEEF)
        t = later(lambda: lib.rmpsc_ring_push_timed(r, byref(sent), -1, None))
        rc = lib.rmpsc_ring_pop_timed(r, byref(item), -1, None)
        t.join()
        check_eq(rc, 0, "pop_timed(-1) woken by a push")
        check_eq(item.value, 0xBEEF, "the pushed item")
        t = later(lambda: lib.rmpsc_ring_close(r))
        rc = lib.rmpsc_ring_pop_timed(r, byref(item), -1, None)
        t.join()
        check_eq(rc, -errno.EPIPE, "pop_timed(-1) woken by a close")
    finally:
        lib.rmpsc_ring_destroy(r)


def test_ffi_notifier_round_trip(lib):
    n = NotifierP()
    check_eq(lib.rmpsc_notifier_create(1, byref(n)), -errno.EINVAL, "flags 1")
    check(not bool(n), "create sets *out to NULL on error")
    check_eq(lib.rmpsc_notifier_create(0, byref(n)), 0, "notifier_create")
    check(bool(n), "a handle")
    r = make_ring(lib, 16)
    try:
        fd = lib.rmpsc_notifier_fd(n)
        check(fd >= 0, "notifier fd %d" % fd)
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        check_eq(poller.poll(0), [], "nothing pending")
        check_eq(lib.rmpsc_ring_set_notifier(r, n), 0, "set_notifier")
        item = c_uint64(7)
        check_eq(lib.rmpsc_ring_push(r, byref(item)), 0, "push")
        check_eq(lib.rmpsc_ring_push(r, byref(item)), 0, "push")
        check_eq(len(poller.poll(0)), 1, "the fd is readable after a push")
        got = lib.rmpsc_notifier_consume(n)
        check(got >= 1, "consume after a push: %d" % got)
        check_eq(lib.rmpsc_notifier_consume(n), 0, "consume again")
        check_eq(lib.rmpsc_ring_drain(r, None, 100), 2, "drain")
        check_eq(lib.rmpsc_notifier_signal(n), 1, "signal")
        check_eq(lib.rmpsc_notifier_signal(n), 0, "signal coalesced")
        check(lib.rmpsc_notifier_consume(n) >= 1, "consume the signal")
        check_eq(lib.rmpsc_ring_set_notifier(r, None), 0, "detach")
        check_eq(lib.rmpsc_ring_push(r, byref(item)), 0, "push detached")
        check_eq(lib.rmpsc_notifier_consume(n), 0, "no signal after detach")
        check_eq(lib.rmpsc_notifier_fd(None), -errno.EBADF, "fd of NULL")
        check_eq(lib.rmpsc_notifier_consume(None), -errno.EBADF, "consume NULL")
        check_eq(lib.rmpsc_ring_set_notifier(None, n), -errno.EBADF, "set_notifier NULL ring")
    finally:
        lib.rmpsc_ring_set_notifier(r, None)
        lib.rmpsc_ring_destroy(r)
        lib.rmpsc_notifier_destroy(n)
    lib.rmpsc_notifier_destroy(None)  # accepted


def test_ffi_borrow_tokens_commit_out_of_order(lib):
    r = make_ring(lib, 8)
    vals = (c_uint64 * 6)(*range(10, 16))
    check_eq(lib.rmpsc_ring_push_n(r, vals, 6), 6, "push_n")
    a, b = Borrow(), Borrow()
    check_eq(lib.rmpsc_ring_borrow(r, 2, byref(a)), 2, "borrow a")
    check_eq(lib.rmpsc_ring_borrow(r, 4, byref(b)), 4, "borrow b")
    got = ctypes.cast(b.data, POINTER(c_uint64))
    check_eq([got[i] for i in range(4)], [12, 13, 14, 15], "b in place")
    check_eq(lib.rmpsc_ring_borrow_commit(r, b.token), 0, "commit b")
    check_eq(lib.rmpsc_ring_len(r), 6, "a still holds head")
    check_eq(lib.rmpsc_ring_borrow_commit(r, b.token), -errno.EINVAL, "stale")
    check_eq(lib.rmpsc_ring_borrow_commit(r, a.token), 0, "commit a")
    check_eq(lib.rmpsc_ring_len(r), 0, "all released")
    check_eq(lib.rmpsc_ring_borrow_commit_all(r), 0, "nothing left")
    lib.rmpsc_ring_destroy(r)


def test_ffi_mpsc_pull_api_without_callbacks(lib):
    cfg = MpscConfig()
    check_eq(lib.rmpsc_mpsc_config_init(byref(cfg), ctypes.sizeof(cfg)), 0, "init")
    cfg.ring_capacity = 16
    ch = ChanP()
    check_eq(lib.rmpsc_mpsc_create(byref(cfg), byref(ch)), 0, "create")
    prods = []
    for want in range(3):
        p = ChanP()
        check_eq(lib.rmpsc_mpsc_register(ch, byref(p)), want, "register id")
        vals = (c_uint64 * 5)(*[want * 100 + i for i in range(5)])
        check_eq(lib.rmpsc_producer_push_n(p, vals, 5), 5, "push_n")
        prods.append(p)
    check_eq(lib.rmpsc_mpsc_len(ch), 15, "len")
    out = (c_uint64 * 32)()
    seen = []
    while True:
        k = lib.rmpsc_mpsc_pop_n(ch, out, 32)
        if k == -errno.EAGAIN:
            break
        check(k > 0, "pop_n count")
        seen += list(out[:k])
    check_eq(sorted(seen), sorted(p * 100 + i for p in range(3) for i in range(5)), "all")
    for p in range(3):
        mine = [v for v in seen if v // 100 == p]
        check_eq(mine, sorted(mine), "per-producer FIFO")
    for p in prods:
        check_eq(lib.rmpsc_mpsc_deregister(p), 0, "deregister")
    check_eq(lib.rmpsc_mpsc_close(ch), 0, "close")
    check_eq(lib.rmpsc_mpsc_pop_n_timed(ch, out, 1, 0, None), -errno.EPIPE, "drained")
    lib.rmpsc_mpsc_destroy(ch)


def test_ffi_mpmc_consumers_steal(lib):
    cfg = McConfig()
    check_eq(lib.rmpsc_mc_config_init(byref(cfg), ctypes.sizeof(cfg), 0), 0, "init")
    cfg.ring_capacity = 8
    ch = ChanP()
    check_eq(lib.rmpsc_mpmc_create(byref(cfg), byref(ch)), 0, "create")
    p, c1, c2 = ChanP(), ChanP(), ChanP()
    check_eq(lib.rmpsc_mpmc_register_producer(ch, byref(p)), 0, "producer")
    check_eq(lib.rmpsc_mpmc_register_consumer(ch, byref(c1)), 0, "consumer 1")
    check_eq(lib.rmpsc_mpmc_register_consumer(ch, byref(c2)), 1, "consumer 2")
    vals = (c_uint64 * 8)(*range(8))
    check_eq(lib.rmpsc_producer_push_n(p, vals, 8), 8, "push_n")
    out = (c_uint64 * 3)()
    got = []
    for c in (c1, c2, c1, c2):
        k = lib.rmpsc_consumer_steal(c, out, 3)
        if k > 0:
            got += list(out[:k])
    check_eq(got, list(range(8)), "each element once, in claim order")
    check_eq(lib.rmpsc_consumer_steal(c1, out, 3), -errno.EAGAIN, "empty")
    check_eq(lib.rmpsc_mpmc_close(ch), 0, "close")
    check_eq(lib.rmpsc_consumer_steal(c2, out, 3), -errno.EPIPE, "drained")
    check_eq(lib.rmpsc_consumer_deregister(c1), 0, "deregister")
    lib.rmpsc_mpmc_destroy(ch)


def test_ffi_pool_handles_bytes_and_blocking(lib):
    # A pool used from Python with no glue: the config mirrors the header
    # (48 bytes), a slab is written through its address and read back as
    # the payload, a stale handle is refused, a blocked allocation is woken
    # by a free from a Python thread (the GIL is dropped), destroy reports
    # the slabs still out.
    check_eq(ctypes.sizeof(PoolConfig), 48, "sizeof(rmpsc_pool_config)")
    check_eq(ctypes.sizeof(PoolRegion), 48, "sizeof(rmpsc_pool_region)")
    cfg = PoolConfig()
    check_eq(lib.rmpsc_pool_config_init(byref(cfg), ctypes.sizeof(cfg)), 0, "config_init")
    check_eq((cfg.slab_size, cfg.slab_count, cfg.numa_node), (2048, 1024, RMPSC_NODE_ANY),
             "pool defaults")
    cfg.slab_size = 256
    cfg.slab_count = 2
    pool = PoolP()
    check_eq(lib.rmpsc_pool_create(byref(cfg), byref(pool)), 0, "pool_create")
    try:
        rg = PoolRegion()
        check_eq(lib.rmpsc_pool_tier_info(pool, 0, byref(rg)), 0, "tier_info")
        check_eq((rg.count, rg.slab_size, rg.stride), (2, 256, 256), "region")
        check_eq(rg.tier_bits + rg.gen_bits + rg.index_bits, 32, "handle bits")
        h = [c_uint32(0), c_uint32(0)]
        for k in range(2):
            check_eq(lib.rmpsc_pool_alloc(pool, 100, byref(h[k])), 0, "alloc")
            check(h[k].value != 0, "a handle is never 0")
        slab = IoVec()
        check_eq(lib.rmpsc_pool_slab(pool, h[0], byref(slab)), 0, "slab")
        check_eq(slab.iov_len, 256, "slab length")
        msg = b"hello from python"
        ctypes.memmove(slab.iov_base, msg, len(msg))
        check_eq(lib.rmpsc_pool_set_len(pool, h[0], len(msg)), 0, "set_len")
        view = IoVec()
        check_eq(lib.rmpsc_pool_payload(pool, h[0], byref(view)), 0, "payload")
        check_eq(ctypes.string_at(view.iov_base, view.iov_len), msg, "payload bytes")
        check_eq(lib.rmpsc_pool_set_len(pool, h[0], 257), -errno.EMSGSIZE, "set_len too big")
        out = c_uint64(0)
        check_eq(lib.rmpsc_pool_destroy(pool, 0, byref(out)), -errno.EBUSY, "destroy, out")
        check_eq(out.value, 2, "outstanding")
        x = c_uint32(0)
        check_eq(lib.rmpsc_pool_alloc(pool, 1, byref(x)), -errno.ENOBUFS, "exhausted")
        old = h[0].value

        def free_later():
            time.sleep(0.05)
            lib.rmpsc_pool_free(pool, old)
        t = threading.Thread(target=free_later)
        t.start()
        rc = lib.rmpsc_pool_alloc_timed(pool, 1, byref(x), -1, None)
        t.join()
        check_eq(rc, 0, "alloc_timed(-1) woken by a free")
        check_eq(lib.rmpsc_pool_free(pool, old), -errno.ESTALE, "stale handle")
        check_eq(lib.rmpsc_pool_payload(pool, x, byref(view)), 0, "the new owner's")
        check_eq(view.iov_len, 0, "a new owner's payload length")
        check_eq(lib.rmpsc_pool_free(pool, x), 0, "free")
        check_eq(lib.rmpsc_pool_free(pool, h[1]), 0, "free")
        c = PoolP()
        check_eq(lib.rmpsc_pool_cache_create(pool, 4, byref(c)), 0, "cache_create")
        check_eq(lib.rmpsc_pool_cache_alloc(c, 1, byref(x)), 0, "cache_alloc")
        check_eq(lib.rmpsc_pool_cache_free(c, x), 0, "cache_free")
        check_eq(lib.rmpsc_pool_available(pool), 2, "available, with the cache's")
        check_eq(lib.rmpsc_pool_cache_destroy(c), 0, "cache_destroy")
    finally:
        check_eq(lib.rmpsc_pool_destroy(pool, 0, None), 0, "destroy")


def test_ffi_io_engine_reads_a_file_into_slabs(lib):
    # The io_uring engine from Python, no liburing on this side: a file
    # read into pool slabs, completions reaped into a ctypes array, the
    # bytes read in place; the slab is the kernel's until its completion.
    check_eq(ctypes.sizeof(IoConfig), 64, "sizeof(rmpsc_io_config)")
    check_eq(ctypes.sizeof(IoCqe), 24, "sizeof(rmpsc_io_cqe)")
    feats = lib.rmpsc_uring_features()
    if not lib.rmpsc_features() & RMPSC_FEATURE_URING:
        check_eq(feats, -errno.EOPNOTSUPP, "features without liburing")
        return
    if feats < 0:  # the kernel refuses io_uring here: said as documented
        check(feats in (-errno.ENOSYS, -errno.EOPNOTSUPP), "features error")
        return
    pcfg = PoolConfig()
    check_eq(lib.rmpsc_pool_config_init(byref(pcfg), ctypes.sizeof(pcfg)), 0, "pool init")
    pcfg.slab_size = 4096
    pcfg.slab_count = 4
    pool = PoolP()
    check_eq(lib.rmpsc_pool_create(byref(pcfg), byref(pool)), 0, "pool_create")
    data = bytes((i * 131 + 7) & 0xFF for i in range(3 * 4096 + 100))
    fd = os.memfd_create("ffi-io")
    io = c_void_p()
    try:
        os.write(fd, data)
        cfg = IoConfig()
        check_eq(lib.rmpsc_io_config_init(byref(cfg), ctypes.sizeof(cfg)), 0, "io init")
        check_eq((cfg.entries, cfg.drain_timeout_ns), (256, 10**9), "io defaults")
        cfg.pool = pool
        cfg.entries = 8
        check_eq(lib.rmpsc_io_create(byref(cfg), byref(io)), 0, "io_create")
        hs = [c_uint32(0) for _ in range(4)]
        for k in range(4):
            check_eq(lib.rmpsc_pool_alloc(pool, 4096, byref(hs[k])), 0, "alloc")
            check_eq(lib.rmpsc_io_read(io, fd, k * 4096, hs[k], 0, k, 0), 0, "read")
        check_eq(lib.rmpsc_pool_free(pool, hs[0]), -errno.EBUSY, "free while in flight")
        got = {}
        cqes = (IoCqe * 4)()
        while len(got) < 4:
            n = lib.rmpsc_io_reap(io, cqes, 4, 5 * 10**9)
            check(n > 0, "reap: %d" % n)
            for c in cqes[:n]:
                view = IoVec()
                check_eq(lib.rmpsc_pool_payload(pool, c.handle, byref(view)), 0, "payload")
                check_eq(view.iov_len, c.result, "payload length is the result")
                got[c.tag] = ctypes.string_at(view.iov_base, view.iov_len)
                check_eq(lib.rmpsc_pool_free(pool, c.handle), 0, "free after completion")
        check_eq(b"".join(got[k] for k in range(4)), data, "file bytes, short read included")
        check_eq(lib.rmpsc_io_inflight(io), 0, "nothing in flight")
    finally:
        leaked = c_uint64(0)
        check_eq(lib.rmpsc_io_destroy(io, byref(leaked)), 0, "io_destroy")
        os.close(fd)
        check_eq(lib.rmpsc_pool_destroy(pool, 0, None), 0, "pool_destroy")


CASES = [
    test_ffi_version_matches_header,
    test_ffi_struct_layout_matches_abi,
    test_ffi_config_init_writes_defaults,
    test_ffi_config_v1_size_leaves_new_fields_alone,
    test_ffi_push_n_pop_n_batches_across_wraps,
    test_ffi_reserve_commit_readable_advance_zero_copy,
    test_ffi_error_codes_match_errno,
    test_ffi_strerror_returns_bytes,
    test_ffi_wait_init_writes_defaults,
    test_ffi_timed_calls_time_out_and_return_items,
    test_ffi_timed_pop_blocks_without_the_gil,
    test_ffi_notifier_round_trip,
    test_ffi_borrow_tokens_commit_out_of_order,
    test_ffi_mpsc_pull_api_without_callbacks,
    test_ffi_mpmc_consumers_steal,
    test_ffi_pool_handles_bytes_and_blocking,
    test_ffi_io_engine_reads_a_file_into_slabs,
]


def preload_and_reexec(argv):
    """Honour RMPSC_FFI_PRELOAD (a sanitizer runtime) by re-executing this
    interpreter with it in LD_PRELOAD. Passing it this way instead of as
    LD_PRELOAD keeps it out of launcher scripts (a pyenv shim is a bash
    script, and bash crashes at start-up with libtsan preloaded)."""
    rt = os.environ.get("RMPSC_FFI_PRELOAD")
    if not rt or rt in os.environ.get("LD_PRELOAD", "").split(":"):
        return
    env = dict(os.environ)
    env["LD_PRELOAD"] = ":".join(p for p in (rt, env.get("LD_PRELOAD")) if p)
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable] + argv, env)


def main(argv):
    preload_and_reexec(argv)
    if len(argv) != 2:
        print("usage: %s path/to/libringmpsc.so" % argv[0], file=sys.stderr)
        return 2
    try:
        lib = load(argv[1])
    except (OSError, AttributeError) as e:
        print("cannot load %s: %s" % (argv[1], e), file=sys.stderr)
        print("0 passed, 1 failed")
        return 1
    passed = failed = 0
    for case in CASES:
        try:
            case(lib)
        except Exception:  # a failed check or a ctypes error: report, go on
            failed += 1
            print("[  FAILED  ] %s" % case.__name__)
            traceback.print_exc(file=sys.stdout)
        else:
            passed += 1
            print("[       OK ] %s" % case.__name__)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
