/* SPDX-License-Identifier: MIT */
/*
 * ABI pins: the size and every field offset of the public structs, every
 * public enum value and the version macros. A change to any of them is an
 * ABI break (or, for config structs, an append that must bump the _V<n>
 * size), so each is checked twice, from one list per struct (an X-macro):
 * at compile time (_Static_assert, the build fails) and at run time (cmocka
 * cases, so the executable reports the checks like any other test).
 *
 * The numbers are those of LP64 targets (struct iovec is 16 bytes); other
 * targets get the same checks in terms of sizeof(struct iovec).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cmocka.h>

#include "ringmpsc/ring.h"
#include "ringmpsc/wait.h"
#include "ringmpsc/channel.h"
#include "ringmpsc/pool.h"
#include "ringmpsc/uring.h"
#include "ringmpsc/shm.h"

#define FIELD(type, f) (((type *)0)->f)
#define IS_TYPE(expr, T) _Generic((expr), T: 1, default: 0)

/* A pin: an expression (an offset, a size, an enum value) and its number.
 * Each list below is X(expr, number) entries; it becomes _Static_asserts
 * and a table the run-time case checks. */
struct pin {
	const char *what;
	long long got, want;
};

#define PIN_STATIC(expr, n) _Static_assert((expr) == (n), #expr " == " #n);
#define PIN_ROW(expr, n) { #expr, (long long)(expr), (long long)(n) },
#define PINS(name, list)                                                       \
	list(PIN_STATIC) static const struct pin name[] = { list(PIN_ROW) }

struct pins {
	const struct pin *p;
	size_t n;
};
#define PINS_OF(a) (&(const struct pins){ (a), sizeof(a) / sizeof((a)[0]) })

/* The run-time case of a list: every pin, every mismatch named. */
static void test_abi_pins(void **state)
{
	const struct pins *ps = *state;
	int bad = 0;

	for (size_t i = 0; i < ps->n; i++) {
		if (ps->p[i].got != ps->p[i].want) {
			print_error("%s is %lld, pinned %lld\n", ps->p[i].what,
				    ps->p[i].got,
				    ps->p[i].want);
			bad++;
		}
	}
	assert_int_equal(bad, 0);
}

/* ---- rmpsc_span ---------------------------------------------------------- */

#define SPAN_PINS(X)                                                           \
	X(offsetof(rmpsc_span, iov), 0)                                        \
	X(offsetof(rmpsc_span, count), 2 * sizeof(struct iovec))               \
	X(offsetof(rmpsc_span, nseg), 2 * sizeof(struct iovec) + 8)            \
	X(offsetof(rmpsc_span, _pad0), 2 * sizeof(struct iovec) + 12)          \
	X(offsetof(rmpsc_span, pos), 2 * sizeof(struct iovec) + 16)            \
	X(sizeof(rmpsc_span), 2 * sizeof(struct iovec) + 24)                   \
	X(sizeof(FIELD(rmpsc_span, iov)), sizeof(struct iovec[2]))             \
	X(sizeof(FIELD(rmpsc_span, count)), 8)                                 \
	X(_Alignof(rmpsc_span), 8)
PINS(span_pins, SPAN_PINS);
#if UINTPTR_MAX == UINT64_MAX
_Static_assert(sizeof(struct iovec) == 16, "LP64 struct iovec: count at 32, nseg 40, "
	       "_pad0 44, pos 48, size 56");
#endif

/* iov is exactly struct iovec[2]: readv/writev take s.iov, s.nseg as is. */
_Static_assert(IS_TYPE(&FIELD(rmpsc_span, iov), struct iovec(*)[2]),
	       "span.iov is struct iovec[2]");
_Static_assert(IS_TYPE(&FIELD(rmpsc_span, count), uint32_t(*)[2]),
	       "span.count is uint32_t[2]");
_Static_assert(IS_TYPE(FIELD(rmpsc_span, nseg), uint32_t), "span.nseg is uint32_t");
_Static_assert(IS_TYPE(FIELD(rmpsc_span, _pad0), uint32_t), "span._pad0 is uint32_t");
_Static_assert(IS_TYPE(FIELD(rmpsc_span, pos), uint64_t), "span.pos is uint64_t");

/* ---- rmpsc_ring_config --------------------------------------------------- */

#define RING_CONFIG_PINS(X)                                                    \
	X(offsetof(rmpsc_ring_config, size), 0)                                \
	X(offsetof(rmpsc_ring_config, flags), 4)                               \
	X(offsetof(rmpsc_ring_config, capacity), 8)                            \
	X(offsetof(rmpsc_ring_config, elem_size), 12)                          \
	X(offsetof(rmpsc_ring_config, numa_node), 16)                          \
	X(offsetof(rmpsc_ring_config, _pad0), 20)                              \
	X(offsetof(rmpsc_ring_config, slots), 24)                              \
	X(offsetof(rmpsc_ring_config, _pad1), 28)                              \
	X(sizeof(rmpsc_ring_config), 32)                                       \
	X(RMPSC_RING_CONFIG_SIZE_V1, 24)                                       \
	X(sizeof(FIELD(rmpsc_ring_config, slots)), 4)                          \
	X(sizeof(FIELD(rmpsc_ring_config, _pad1)), 4)                          \
	X(_Alignof(rmpsc_ring_config), 4)
PINS(ring_config_pins, RING_CONFIG_PINS);
/* The 1.0 size stays the smallest accepted: it ends where slots begins. */
_Static_assert(RMPSC_RING_CONFIG_SIZE_V1 == offsetof(rmpsc_ring_config, slots),
	       "RMPSC_RING_CONFIG_SIZE_V1 covers the fields up to _pad0");
_Static_assert(offsetof(rmpsc_ring_config, _pad1) + sizeof(uint32_t) ==
		       sizeof(rmpsc_ring_config),
	       "_pad1 is the last field: a grown config appends after it");
_Static_assert(sizeof(rmpsc_ring_config) % 8 == 0, "config sizes are multiples of 8");
_Static_assert(IS_TYPE(FIELD(rmpsc_ring_config, size), uint32_t), "config.size");
_Static_assert(IS_TYPE(FIELD(rmpsc_ring_config, flags), uint32_t), "config.flags");
_Static_assert(IS_TYPE(FIELD(rmpsc_ring_config, capacity), uint32_t), "config.capacity");
_Static_assert(IS_TYPE(FIELD(rmpsc_ring_config, elem_size), uint32_t),
	       "config.elem_size");
_Static_assert(IS_TYPE(FIELD(rmpsc_ring_config, numa_node), int32_t), "config.numa_node");
_Static_assert(IS_TYPE(FIELD(rmpsc_ring_config, _pad0), uint32_t), "config._pad0");
_Static_assert(IS_TYPE(FIELD(rmpsc_ring_config, slots), uint32_t), "config.slots");
_Static_assert(IS_TYPE(FIELD(rmpsc_ring_config, _pad1), uint32_t), "config._pad1");

/* ---- rmpsc_wait ---------------------------------------------------------- */

#define WAIT_PINS(X)                                                           \
	X(offsetof(rmpsc_wait, size), 0)                                       \
	X(offsetof(rmpsc_wait, kind), 4)                                       \
	X(offsetof(rmpsc_wait, spin_count), 8)                                 \
	X(offsetof(rmpsc_wait, yield_count), 12)                               \
	X(offsetof(rmpsc_wait, sleep_ns), 16)                                  \
	X(offsetof(rmpsc_wait, timeout_ns), 24)                                \
	X(sizeof(rmpsc_wait), 32)                                              \
	X(sizeof(rmpsc_wait), RMPSC_WAIT_CONFIG_SIZE_V1)                       \
	X(sizeof(FIELD(rmpsc_wait, sleep_ns)), 8)                              \
	X(sizeof(FIELD(rmpsc_wait, timeout_ns)), 8)
PINS(wait_pins, WAIT_PINS);
_Static_assert(sizeof(rmpsc_wait) % 8 == 0, "config sizes are multiples of 8");
#if UINTPTR_MAX == UINT64_MAX
_Static_assert(_Alignof(rmpsc_wait) == 8, "wait aligned for its int64_t fields");
#endif
_Static_assert(IS_TYPE(FIELD(rmpsc_wait, size), uint32_t), "wait.size");
_Static_assert(IS_TYPE(FIELD(rmpsc_wait, kind), uint32_t), "wait.kind");
_Static_assert(IS_TYPE(FIELD(rmpsc_wait, spin_count), uint32_t), "wait.spin_count");
_Static_assert(IS_TYPE(FIELD(rmpsc_wait, yield_count), uint32_t), "wait.yield_count");
_Static_assert(IS_TYPE(FIELD(rmpsc_wait, sleep_ns), int64_t), "wait.sleep_ns");
_Static_assert(IS_TYPE(FIELD(rmpsc_wait, timeout_ns), int64_t), "wait.timeout_ns");

/* ---- rmpsc_backoff ------------------------------------------------------- */

#define BACKOFF_PINS(X)                                                        \
	X(offsetof(rmpsc_backoff, step), 0)                                    \
	X(offsetof(rmpsc_backoff, spin_limit), 4)                              \
	X(offsetof(rmpsc_backoff, yield_limit), 8)                             \
	X(offsetof(rmpsc_backoff, _pad0), 12)                                  \
	X(sizeof(rmpsc_backoff), 16)                                           \
	X(_Alignof(rmpsc_backoff), 4)
PINS(backoff_pins, BACKOFF_PINS);
_Static_assert(IS_TYPE(FIELD(rmpsc_backoff, step), uint32_t), "backoff.step");
_Static_assert(IS_TYPE(FIELD(rmpsc_backoff, spin_limit), uint32_t), "backoff.spin_limit");
_Static_assert(IS_TYPE(FIELD(rmpsc_backoff, yield_limit), uint32_t),
	       "backoff.yield_limit");
_Static_assert(IS_TYPE(FIELD(rmpsc_backoff, _pad0), uint32_t), "backoff._pad0");

/* ---- enums and version ---------------------------------------------------- */

#define WAIT_ENUM_PINS(X)                                                      \
	X(RMPSC_WAIT_SPIN, 0)                                                  \
	X(RMPSC_WAIT_YIELD, 1)                                                 \
	X(RMPSC_WAIT_SLEEP, 2)                                                 \
	X(RMPSC_WAIT_BLOCK, 3)                                                 \
	X(RMPSC_WAIT_DEADLINE, 4)                                              \
	X(RMPSC_WAIT_BACKOFF, 5)                                               \
	X(RMPSC_WAIT_KIND_MAX, 5)                                              \
	X(RMPSC_WAIT_DEFAULT_SPIN, 256)                                        \
	X(RMPSC_WAIT_DEFAULT_YIELD, 8)                                         \
	X(RMPSC_WAIT_CONFIG_SIZE_V1, 32)
PINS(wait_enum_pins, WAIT_ENUM_PINS);
_Static_assert(RMPSC_WAIT_KIND_MAX == RMPSC_WAIT_BACKOFF, "KIND_MAX is the last kind");

#define ENUM_PINS(X)                                                           \
	X(RMPSC_NODE_ANY, -1)                                                  \
	X(RMPSC_FEATURE_NUMA, 1)                                               \
	X(RMPSC_FEATURE_URING, 2)                                              \
	X(RMPSC_RING_CAPACITY_MAX, 1073741824)                                 \
	X(RMPSC_RING_ELEM_SIZE_MAX, 16777216)                                  \
	X(RMPSC_RING_CONFIG_SIZE_V1, 24)                                       \
	X(RMPSC_RING_F_HUGEPAGE, 1)                                            \
	X(RMPSC_RING_F_PREFAULT, 2)                                            \
	X(RMPSC_RING_F_ALL, 3)
PINS(enum_pins, ENUM_PINS);
_Static_assert(RMPSC_RING_F_ALL == (RMPSC_RING_F_HUGEPAGE | RMPSC_RING_F_PREFAULT),
	       "RMPSC_RING_F_ALL is every flag");

/* The layouts above are ABI 1 (SONAME libringmpsc.so.1). */
_Static_assert(RMPSC_VERSION_MAJOR == 1, "a new major version needs new pins");
_Static_assert(RMPSC_VERSION_MINOR >= 0 && RMPSC_VERSION_MINOR < 100, "minor in 0..99");
_Static_assert(RMPSC_VERSION_PATCH >= 0 && RMPSC_VERSION_PATCH < 100, "patch in 0..99");
_Static_assert(RMPSC_VERSION_NUMBER == RMPSC_VERSION_MAJOR * 10000 +
					       RMPSC_VERSION_MINOR * 100 +
					       RMPSC_VERSION_PATCH,
	       "RMPSC_VERSION_NUMBER encoding");

/* ---- rmpsc_borrow and the channel structs --------------------------------- */

#if UINTPTR_MAX == UINT64_MAX
_Static_assert(offsetof(rmpsc_borrow, data) == 0, "borrow.data at 0");
_Static_assert(offsetof(rmpsc_borrow, count) == 8, "borrow.count at 8");
_Static_assert(offsetof(rmpsc_borrow, _pad0) == 12, "borrow._pad0 at 12");
_Static_assert(offsetof(rmpsc_borrow, token) == 16, "borrow.token at 16");
_Static_assert(sizeof(rmpsc_borrow) == 24, "sizeof(rmpsc_borrow) == 24");
#endif
#define CHANNEL_PINS(X)                                                        \
	X(offsetof(rmpsc_mpsc_config, flags), 4)                               \
	X(offsetof(rmpsc_mpsc_config, elem_size), 8)                           \
	X(offsetof(rmpsc_mpsc_config, ring_capacity), 12)                      \
	X(offsetof(rmpsc_mpsc_config, producers), 16)                          \
	X(offsetof(rmpsc_mpsc_config, max_producers), 20)                      \
	X(offsetof(rmpsc_mpsc_config, numa_node), 24)                          \
	X(offsetof(rmpsc_mpsc_config, _pad0), 28)                              \
	X(sizeof(rmpsc_mpsc_config), RMPSC_MPSC_CONFIG_SIZE_V1)                \
	X(RMPSC_MPSC_CONFIG_SIZE_V1, 32)                                       \
	X(offsetof(rmpsc_mpsc_snapshot, pending), 16)                          \
	X(offsetof(rmpsc_mpsc_snapshot, sent), 32)                             \
	X(offsetof(rmpsc_mpsc_snapshot, batch_ns_total), 96)                   \
	X(offsetof(rmpsc_mpsc_snapshot, polls), 104)                           \
	X(sizeof(rmpsc_mpsc_snapshot), RMPSC_MPSC_STATS_SIZE_V1)               \
	X(RMPSC_MPSC_STATS_SIZE_V1, 112)                                       \
	X(offsetof(rmpsc_mc_config, max_consumers), 24)                       \
	X(offsetof(rmpsc_mc_config, numa_node), 28)                            \
	X(sizeof(rmpsc_mc_config), RMPSC_MC_CONFIG_SIZE_V1)                    \
	X(RMPSC_MC_CONFIG_SIZE_V1, 32)                                         \
	X(RMPSC_MPSC_F_METRICS, 1)                                             \
	X(RMPSC_MPSC_F_HUGEPAGE, 2)                                            \
	X(RMPSC_MPSC_F_PREFAULT, 4)                                            \
	X(RMPSC_MPSC_F_NOSKIP, 8)                                              \
	X(RMPSC_MPSC_F_ALL, 15)                                                \
	X(RMPSC_MPSC_PRODUCERS_MAX, 4096)                                      \
	X(RMPSC_CONSUMERS_MAX, 1024)
PINS(channel_pins, CHANNEL_PINS);

/* ---- the pool's structs and constants ---------------------------------------- */

#define POOL_PINS(X)                                                           \
	X(offsetof(rmpsc_pool_config, size), 0)                                \
	X(offsetof(rmpsc_pool_config, flags), 4)                               \
	X(offsetof(rmpsc_pool_config, slab_size), 8)                           \
	X(offsetof(rmpsc_pool_config, slab_count), 16)                         \
	X(offsetof(rmpsc_pool_config, ntiers), 20)                             \
	X(offsetof(rmpsc_pool_config, tiers), 24)                              \
	X(offsetof(rmpsc_pool_config, page), 32)                               \
	X(offsetof(rmpsc_pool_config, numa_node), 36)                          \
	X(offsetof(rmpsc_pool_config, _reserved), 40)                          \
	X(sizeof(rmpsc_pool_config), RMPSC_POOL_CONFIG_SIZE_V1)                \
	X(RMPSC_POOL_CONFIG_SIZE_V1, 48)                                       \
	X(offsetof(rmpsc_pool_tier, slab_size), 0)                             \
	X(offsetof(rmpsc_pool_tier, count), 8)                                 \
	X(offsetof(rmpsc_pool_tier, _pad0), 12)                                \
	X(sizeof(rmpsc_pool_tier), 16)                                         \
	X(offsetof(rmpsc_pool_region, base), 0)                                \
	X(offsetof(rmpsc_pool_region, len), 8)                                 \
	X(offsetof(rmpsc_pool_region, slab_size), 16)                          \
	X(offsetof(rmpsc_pool_region, stride), 24)                             \
	X(offsetof(rmpsc_pool_region, count), 32)                              \
	X(offsetof(rmpsc_pool_region, page), 36)                               \
	X(offsetof(rmpsc_pool_region, node), 40)                               \
	X(offsetof(rmpsc_pool_region, tier_bits), 44)                          \
	X(offsetof(rmpsc_pool_region, gen_bits), 45)                           \
	X(offsetof(rmpsc_pool_region, index_bits), 46)                         \
	X(offsetof(rmpsc_pool_region, _pad0), 47)                              \
	X(sizeof(rmpsc_pool_region), 48)                                       \
	X(RMPSC_NODE_LOCAL, -2)                                                \
	X(RMPSC_POOL_TIERS_MAX, 16)                                            \
	X(RMPSC_POOL_DEFAULT_TIERS, 12)                                        \
	X(RMPSC_POOL_GEN_BITS_MIN, 8)                                          \
	X(RMPSC_POOL_CACHE_MAX, 4096)                                          \
	X(RMPSC_POOL_SLAB_SIZE_MAX, 1073741824)                                \
	X(RMPSC_POOL_HANDLE_NONE, 0)                                           \
	X(RMPSC_PAGE_NORMAL, 0)                                                \
	X(RMPSC_PAGE_THP, 1)                                                   \
	X(RMPSC_PAGE_HUGE, 2)                                                  \
	X(RMPSC_PAGE_HUGE_2M, 3)                                               \
	X(RMPSC_PAGE_HUGE_1G, 4)                                               \
	X(RMPSC_POOL_F_PREFAULT, 1)                                            \
	X(RMPSC_POOL_F_EXACT_PAGE, 2)                                          \
	X(RMPSC_POOL_F_SPILL, 4)                                               \
	X(RMPSC_POOL_F_SHARED, 8)                                              \
	X(RMPSC_POOL_F_ALL, 15)                                                \
	X(RMPSC_POOL_DESTROY_FORCE, 1)                                         \
	X(RMPSC_POOL_IOV_SLAB, 1)
#if UINTPTR_MAX == UINT64_MAX
PINS(pool_pins, POOL_PINS);
#endif

/* ---- the io_uring layer's structs and constants ------------------------------ */

#define URING_PINS(X)                                                          \
	X(offsetof(rmpsc_uring_reg_info, size), 0)                             \
	X(offsetof(rmpsc_uring_reg_info, buffers), 4)                          \
	X(offsetof(rmpsc_uring_reg_info, first_index), 8)                      \
	X(offsetof(rmpsc_uring_reg_info, cap_ipc_lock), 12)                    \
	X(offsetof(rmpsc_uring_reg_info, bytes), 16)                           \
	X(offsetof(rmpsc_uring_reg_info, memlock_limit), 24)                   \
	X(sizeof(rmpsc_uring_reg_info), RMPSC_URING_REG_INFO_SIZE_V1)          \
	X(RMPSC_URING_REG_INFO_SIZE_V1, 32)                                    \
	X(offsetof(rmpsc_io_config, size), 0)                                  \
	X(offsetof(rmpsc_io_config, flags), 4)                                 \
	X(offsetof(rmpsc_io_config, entries), 8)                               \
	X(offsetof(rmpsc_io_config, max_ops), 12)                              \
	X(offsetof(rmpsc_io_config, pool), 16)                                 \
	X(offsetof(rmpsc_io_config, ring), 24)                                 \
	X(offsetof(rmpsc_io_config, mpsc), 32)                                 \
	X(offsetof(rmpsc_io_config, notifier), 40)                             \
	X(offsetof(rmpsc_io_config, drain_timeout_ns), 48)                     \
	X(offsetof(rmpsc_io_config, recv_tier), 56)                            \
	X(offsetof(rmpsc_io_config, recv_buffers), 60)                         \
	X(sizeof(rmpsc_io_config), RMPSC_IO_CONFIG_SIZE_V1)                    \
	X(RMPSC_IO_CONFIG_SIZE_V1, 64)                                         \
	X(offsetof(rmpsc_io_cqe, tag), 0)                                      \
	X(offsetof(rmpsc_io_cqe, handle), 8)                                   \
	X(offsetof(rmpsc_io_cqe, result), 12)                                  \
	X(offsetof(rmpsc_io_cqe, flags), 16)                                   \
	X(offsetof(rmpsc_io_cqe, op), 20)                                      \
	X(sizeof(rmpsc_io_cqe), 24)                                            \
	X(offsetof(rmpsc_io_info, size), 0)                                    \
	X(offsetof(rmpsc_io_info, fixed), 4)                                   \
	X(offsetof(rmpsc_io_info, fixed_error), 8)                             \
	X(offsetof(rmpsc_io_info, features), 12)                               \
	X(offsetof(rmpsc_io_info, inflight), 16)                               \
	X(offsetof(rmpsc_io_info, memlock_bytes), 24)                          \
	X(offsetof(rmpsc_io_info, memlock_limit), 32)                          \
	X(offsetof(rmpsc_io_info, recv_posted), 40)                            \
	X(offsetof(rmpsc_io_info, _pad0), 44)                                  \
	X(sizeof(rmpsc_io_info), RMPSC_IO_INFO_SIZE_V1)                        \
	X(RMPSC_IO_INFO_SIZE_V1, 48)                                           \
	X(RMPSC_URING_HAS_RING, 1)                                             \
	X(RMPSC_URING_HAS_FIXED, 2)                                            \
	X(RMPSC_URING_HAS_BUF_RING, 4)                                         \
	X(RMPSC_URING_HAS_RECV_MULTISHOT, 8)                                   \
	X(RMPSC_URING_HAS_SEND_ZC, 16)                                         \
	X(RMPSC_URING_HAS_ZC_REPORT_USAGE, 32)                                 \
	X(RMPSC_URING_HAS_BUF_RING_INC, 64)                                    \
	X(RMPSC_URING_HAS_READ_MULTISHOT, 128)                                 \
	X(RMPSC_URING_HAS_SINGLE_ISSUER, 256)                                  \
	X(RMPSC_URING_HAS_DEFER_TASKRUN, 512)                                  \
	X(RMPSC_URING_REG_UPDATE, 1)                                           \
	X(RMPSC_URING_REG_F_ALL, 1)                                            \
	X(RMPSC_URING_BUFFERS_MAX, 16384)                                      \
	X(RMPSC_URING_BUFFER_BYTES_MAX, 1073741824)                            \
	X(RMPSC_URING_BUFRING_MAX, 32768)                                      \
	X(RMPSC_IO_F_THREAD, 1)                                                \
	X(RMPSC_IO_F_NO_FIXED, 2)                                              \
	X(RMPSC_IO_F_REQUIRE_FIXED, 4)                                         \
	X(RMPSC_IO_F_EVENTFD, 8)                                               \
	X(RMPSC_IO_F_SUBMIT_DIRECT, 16)                                        \
	X(RMPSC_IO_F_ALL, 31)                                                  \
	X(RMPSC_IO_OP_READ, 1)                                                 \
	X(RMPSC_IO_OP_WRITE, 2)                                                \
	X(RMPSC_IO_OP_RECV, 3)                                                 \
	X(RMPSC_IO_OP_SEND, 4)                                                 \
	X(RMPSC_IO_OP_ACCEPT, 5)                                               \
	X(RMPSC_IO_OP_RECV_MULTISHOT, 6)                                       \
	X(RMPSC_IO_CQE_F_MORE, 1)                                              \
	X(RMPSC_IO_CQE_F_COPIED, 2)                                            \
	X(RMPSC_IO_CQE_F_ZC, 4)                                                \
	X(RMPSC_IO_SUBMIT_MORE, 1)                                             \
	X(RMPSC_IO_SEND_ZC, 2)                                                 \
	X(RMPSC_IO_SUBMIT_F_ALL, 3)
#if UINTPTR_MAX == UINT64_MAX
PINS(uring_pins, URING_PINS);
#endif

/* ---- the shared ring: its header is an ABI between two processes ------------ */

/* The memfd layout is the same for 32- and 64-bit users: fixed-width
 * fields only, so these pins hold on every target. */
#define SHM_PINS(X)                                                            \
	X(RMPSC_SHM_MAGIC, 0x4d48534353504d52ll)                               \
	X(RMPSC_SHM_VERSION, 1)                                                \
	X(RMPSC_SHM_HEADER_SIZE, 1024)                                         \
	X(RMPSC_SHM_CAPACITY_MAX, 1 << 30)                                     \
	X(RMPSC_SHM_ELEM_SIZE_MAX, 1 << 24)                                    \
	X(RMPSC_SHM_MAP_MAX, 1ll << 40)                                        \
	X(RMPSC_SHM_WATCH_MAX, 4)                                              \
	X(RMPSC_FD_MAX, 64)                                                    \
	X(RMPSC_SHM_PRODUCER, 1)                                               \
	X(RMPSC_SHM_CONSUMER, 2)                                               \
	X(RMPSC_SHM_F_FENCE, 1)                                                \
	X(RMPSC_SHM_F_PREFAULT, 2)                                             \
	X(RMPSC_SHM_F_ALL, 3)                                                  \
	X(RMPSC_SHM_BARRIER_GLOBAL, 1)                                         \
	X(RMPSC_SHM_BARRIER_FENCE, 2)                                          \
	X(RMPSC_SHM_SIDE_NONE, 0)                                              \
	X(RMPSC_SHM_SIDE_ATTACHED, 1)                                          \
	X(RMPSC_SHM_SIDE_DETACHED, 2)                                          \
	X(RMPSC_SHM_PEER_NONE, 0)                                              \
	X(RMPSC_SHM_PEER_ALIVE, 1)                                             \
	X(RMPSC_SHM_PEER_STALE, 2)                                             \
	X(RMPSC_SHM_PEER_GONE, 3)                                              \
	X(sizeof(rmpsc_shm_config), 24)                                        \
	X(offsetof(rmpsc_shm_config, size), 0)                                 \
	X(offsetof(rmpsc_shm_config, flags), 4)                                \
	X(offsetof(rmpsc_shm_config, role), 8)                                 \
	X(offsetof(rmpsc_shm_config, elem_size), 12)                           \
	X(offsetof(rmpsc_shm_config, capacity), 16)                            \
	X(offsetof(rmpsc_shm_config, _pad0), 20)                               \
	X(sizeof(rmpsc_shm_side), 128)                                         \
	X(offsetof(rmpsc_shm_side, state), 0)                                  \
	X(offsetof(rmpsc_shm_side, pid), 4)                                    \
	X(offsetof(rmpsc_shm_side, heartbeat_ns), 8)                           \
	X(offsetof(rmpsc_shm_side, attaches), 16)                              \
	X(offsetof(rmpsc_shm_side, _reserved), 24)                             \
	X(sizeof(rmpsc_shm_header), 1024)                                      \
	X(offsetof(rmpsc_shm_header, magic), 0)                                \
	X(offsetof(rmpsc_shm_header, version), 8)                              \
	X(offsetof(rmpsc_shm_header, header_size), 12)                         \
	X(offsetof(rmpsc_shm_header, elem_size), 16)                           \
	X(offsetof(rmpsc_shm_header, capacity), 20)                            \
	X(offsetof(rmpsc_shm_header, map_size), 24)                            \
	X(offsetof(rmpsc_shm_header, barrier), 32)                             \
	X(offsetof(rmpsc_shm_header, creator_pid), 36)                         \
	X(offsetof(rmpsc_shm_header, generation), 40)                          \
	X(offsetof(rmpsc_shm_header, _pad0), 44)                               \
	X(offsetof(rmpsc_shm_header, producer), 128)                           \
	X(offsetof(rmpsc_shm_header, consumer), 256)                           \
	X(offsetof(rmpsc_shm_header, ring_magic), 512)                         \
	X(offsetof(rmpsc_shm_header, ring_version), 516)                       \
	X(offsetof(rmpsc_shm_header, ring_elem_size), 520)                     \
	X(offsetof(rmpsc_shm_header, ring_capacity), 528)                      \
	X(offsetof(rmpsc_shm_header, ring_slots), 536)                         \
	X(offsetof(rmpsc_shm_header, closed), 544)                             \
	X(offsetof(rmpsc_shm_header, prod_waiters), 548)                       \
	X(offsetof(rmpsc_shm_header, cons_waiters), 552)                       \
	X(offsetof(rmpsc_shm_header, tail), 640)                               \
	X(offsetof(rmpsc_shm_header, head), 768)                               \
	X(offsetof(rmpsc_shm_header, cons_seq), 896)                           \
	X(offsetof(rmpsc_shm_header, prod_seq), 900)                           \
	X(offsetof(rmpsc_shm_header, final_tail), 960)
PINS(shm_pins, SHM_PINS);

/* ---- run-time cases ------------------------------------------------------ */

/* rmpsc_wait_init and rmpsc_backoff_init write the pinned layouts. */
static void test_abi_wait_and_backoff_init_write_pinned_fields(void **state)
{
	union {
		rmpsc_wait w;
		unsigned char b[48];
	} u;
	rmpsc_backoff b;
	uint32_t u32;
	int64_t i64;

	(void)state;
	memset(u.b, 0xa5, sizeof u.b);
	assert_int_equal(rmpsc_wait_init(&u.w, RMPSC_WAIT_CONFIG_SIZE_V1,
					 RMPSC_WAIT_SLEEP), 0);
	memcpy(&u32, u.b + 0, 4);
	assert_int_equal(u32, 32);
	memcpy(&u32, u.b + 4, 4);
	assert_int_equal(u32, RMPSC_WAIT_SLEEP);
	memcpy(&u32, u.b + 8, 4);
	assert_int_equal(u32, RMPSC_WAIT_DEFAULT_SPIN);
	memcpy(&u32, u.b + 12, 4);
	assert_int_equal(u32, RMPSC_WAIT_DEFAULT_YIELD);
	memcpy(&i64, u.b + 16, 8);
	assert_int_equal(i64, 50000);
	memcpy(&i64, u.b + 24, 8);
	assert_int_equal(i64, 1000000);
	for (size_t i = 32; i < sizeof u.b; i++)
		assert_int_equal(u.b[i], 0xa5);

	memset(&b, 0xa5, sizeof b);
	assert_int_equal(rmpsc_backoff_init(&b, 0, 0), 0);
	memcpy(&u32, (unsigned char *)&b + 0, 4);
	assert_int_equal(u32, 0);
	memcpy(&u32, (unsigned char *)&b + 4, 4);
	assert_int_equal(u32, 6);
	memcpy(&u32, (unsigned char *)&b + 8, 4);
	assert_int_equal(u32, 10);
	memcpy(&u32, (unsigned char *)&b + 12, 4);
	assert_int_equal(u32, 0);
}

static void test_abi_version_matches_macros(void **state)
{
	char want[32];

	(void)state;
	assert_int_equal(rmpsc_version(), RMPSC_VERSION_NUMBER);
	assert_int_equal(rmpsc_version() / 10000, RMPSC_VERSION_MAJOR);
	assert_int_equal(rmpsc_version() / 100 % 100, RMPSC_VERSION_MINOR);
	assert_int_equal(rmpsc_version() % 100, RMPSC_VERSION_PATCH);
	snprintf(want, sizeof want, "%d.%d.%d", RMPSC_VERSION_MAJOR, RMPSC_VERSION_MINOR,
		 RMPSC_VERSION_PATCH);
	assert_non_null(rmpsc_version_string());
	assert_string_equal(rmpsc_version_string(), want);
}

static void test_abi_features_only_known_bits_set(void **state)
{
	const uint32_t known = RMPSC_FEATURE_NUMA | RMPSC_FEATURE_URING;
	uint32_t f = rmpsc_features();

	(void)state;
	assert_int_equal(f & ~known, 0);
	assert_int_equal(rmpsc_features(), f); /* a property of the build */
}

/* The layouts as the library writes them: config_init fills exactly the V1
 * fields, a larger caller struct (a newer header) is zero-filled past them
 * and accepted, non-zero bytes there are refused. */
static void test_abi_config_init_sized_struct_round_trips(void **state)
{
	struct {
		rmpsc_ring_config v1;
		uint64_t newer[2];
	} big;
	rmpsc_ring_config cfg;
	rmpsc_ring *r = NULL;

	(void)state;
	memset(&cfg, 0xa5, sizeof cfg);
	assert_int_equal(rmpsc_ring_config_init(&cfg, sizeof cfg), 0);
	assert_int_equal(cfg.size, 32);
	assert_int_equal(cfg.flags, 0);
	assert_int_equal(cfg.capacity, 1024);
	assert_int_equal(cfg.elem_size, 8);
	assert_int_equal(cfg.numa_node, RMPSC_NODE_ANY);
	assert_int_equal(cfg._pad0, 0);
	assert_int_equal(cfg.slots, 0);
	assert_int_equal(cfg._pad1, 0);
	assert_int_equal(rmpsc_ring_config_init(&cfg, RMPSC_RING_CONFIG_SIZE_V1 - 8),
			 -EINVAL);

	/* A 1.0 caller (24 bytes): nothing written past them, and create
	 * takes the default for slots. */
	memset(&cfg, 0xa5, sizeof cfg);
	assert_int_equal(rmpsc_ring_config_init(&cfg, RMPSC_RING_CONFIG_SIZE_V1), 0);
	assert_int_equal(cfg.size, RMPSC_RING_CONFIG_SIZE_V1);
	assert_int_equal(cfg.slots, 0xa5a5a5a5u);
	assert_int_equal(cfg._pad1, 0xa5a5a5a5u);
	cfg.capacity = 8;
	assert_int_equal(rmpsc_ring_create(&cfg, &r), 0);
	assert_int_equal(rmpsc_ring_capacity(r), 8);
	rmpsc_ring_destroy(r);

	memset(&big, 0xa5, sizeof big);
	assert_int_equal(rmpsc_ring_config_init(&big.v1, sizeof big), 0);
	assert_int_equal(big.v1.size, sizeof big);
	assert_int_equal(big.newer[0], 0);
	assert_int_equal(big.newer[1], 0);
	big.v1.capacity = 16;
	assert_int_equal(rmpsc_ring_create(&big.v1, &r), 0);
	assert_non_null(r);
	assert_int_equal(rmpsc_ring_capacity(r), 16);
	rmpsc_ring_destroy(r);
	big.newer[1] = 1;
	assert_int_equal(rmpsc_ring_create(&big.v1, &r), -E2BIG);
	assert_null(r);
}

/* span.iov goes to readv()/writev() unchanged, wrapped spans included. */
static void test_abi_span_iov_passes_to_readv_writev(void **state)
{
	uint64_t in[12], out[12];
	rmpsc_ring_config cfg;
	rmpsc_ring *r;
	rmpsc_span s;
	int fds[2];

	(void)state;
	for (int i = 0; i < 12; i++)
		in[i] = 0x1000 + (uint64_t)i;
	assert_int_equal(rmpsc_ring_config_init(&cfg, sizeof cfg), 0);
	cfg.capacity = 16;
	assert_int_equal(rmpsc_ring_create(&cfg, &r), 0);
	assert_int_equal(pipe(fds), 0);

	/* Move the positions to 10 so 12 slots wrap: 6 + 6. */
	assert_int_equal(rmpsc_ring_push_n(r, in, 10), 10);
	assert_int_equal(rmpsc_ring_skip(r, 10), 10);

	assert_int_equal(write(fds[1], in, sizeof in), (ssize_t)sizeof in);
	assert_int_equal(rmpsc_ring_reserve(r, 12, &s), 12);
	assert_int_equal(s.nseg, 2);
	assert_int_equal(s.count[0], 6);
	assert_int_equal(s.count[1], 6);
	assert_int_equal(readv(fds[0], s.iov, (int)s.nseg), (ssize_t)sizeof in);
	assert_int_equal(rmpsc_ring_commit(r, 12), 0);

	assert_int_equal(rmpsc_ring_readable(r, 12, &s), 12);
	assert_int_equal(s.nseg, 2);
	assert_int_equal(writev(fds[1], s.iov, (int)s.nseg), (ssize_t)sizeof in);
	assert_int_equal(rmpsc_ring_advance(r, 12), 0);
	assert_int_equal(read(fds[0], out, sizeof out), (ssize_t)sizeof out);
	assert_memory_equal(in, out, sizeof in);

	close(fds[0]);
	close(fds[1]);
	rmpsc_ring_destroy(r);
}

/* The channel pins, and what the channel configs' init writes in them. */
static void test_abi_channel_structs_match_pins(void **state)
{
	rmpsc_mpsc_config m;
	rmpsc_mc_config c;

	test_abi_pins(state);
	assert_int_equal(rmpsc_mpsc_config_init(&m, sizeof m), 0);
	assert_int_equal(m.size, 32);
	assert_int_equal(m.elem_size, 8);
	assert_int_equal(m.ring_capacity, 1024);
	assert_int_equal(m.producers, 4);
	assert_int_equal(m.max_producers, 256);
	assert_int_equal(rmpsc_mc_config_init(&c, sizeof c, 1), 0);
	assert_int_equal(c.producers, 1);
	assert_int_equal(c.max_producers, 1);
	assert_int_equal(c.max_consumers, 64);
	assert_int_equal(rmpsc_mc_config_init(&c, sizeof c, 0), 0);
	assert_int_equal(c.producers, 4);
	assert_int_equal(c.max_producers, 256);
}

#define PINS_CASE(name, list) { #name, test_abi_pins, NULL, NULL, (void *)PINS_OF(list) }

int main(void)
{
	const struct CMUnitTest tests[] = {
		PINS_CASE(test_abi_span_layout_matches_pins, span_pins),
#if UINTPTR_MAX == UINT64_MAX
		PINS_CASE(test_abi_pool_layout_matches_pins, pool_pins),
		PINS_CASE(test_abi_uring_layout_matches_pins, uring_pins),
		PINS_CASE(test_abi_shm_layout_matches_pins, shm_pins),
#endif
		PINS_CASE(test_abi_config_layout_matches_pins, ring_config_pins),
		PINS_CASE(test_abi_wait_layout_matches_pins, wait_pins),
		PINS_CASE(test_abi_backoff_layout_matches_pins, backoff_pins),
		PINS_CASE(test_abi_wait_enum_values_match_pins, wait_enum_pins),
		cmocka_unit_test(test_abi_wait_and_backoff_init_write_pinned_fields),
		PINS_CASE(test_abi_enum_values_match_pins, enum_pins),
		cmocka_unit_test(test_abi_version_matches_macros),
		cmocka_unit_test(test_abi_features_only_known_bits_set),
		cmocka_unit_test(test_abi_config_init_sized_struct_round_trips),
		cmocka_unit_test(test_abi_span_iov_passes_to_readv_writev),
		{ "test_abi_channel_structs_match_pins",
		 test_abi_channel_structs_match_pins, NULL,
		  NULL, (void *)PINS_OF(channel_pins) },
	};

	return cmocka_run_group_tests_name("test_abi", tests, NULL, NULL);
}
