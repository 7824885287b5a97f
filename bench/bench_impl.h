/* SPDX-License-Identifier: MIT */
/*
 * bench_impl.h: the adapter interface of bench_ring.
 *
 * Every queue implementation the benchmark compares is one `struct
 * bench_impl`, defined in its own bench/impl_<name>.c (or .cc: a C++ peer
 * includes this header, which gives the declarations C linkage, and defines
 * its struct with designated initializers). bench_ring.c lists the adapters
 * in its impl table; adding a peer is one file, one table line and one
 * bench_peer() line in bench/CMakeLists.txt.
 *
 * Messages are uint64_t. Queues are opaque `void *` to the harness.
 *
 * Return conventions (all calls but pop1_wait and wake_pop1 are non-blocking
 * "try" calls; the harness owns every spin/yield policy so that all adapters
 * wait the same way):
 *  - push1/pop1/mp_push1/mp_pop1/mc_push1/mc_pop1/wake_push1: 1 done, 0
 *    full (push) or empty (pop), BENCH_ERR_IMPL when the implementation
 *    reported an unexpected error.
 *  - push_n/pop_n/zc_produce/zc_consume and the multi-item channel calls
 *    (mp_push_n/mp_pop_n, mc_push_n/mc_pop_n): the number of items moved
 *    (best effort, 0..n, 0 meaning full or empty), or a BENCH_ERR_* code.
 *    n never exceeds INT32_MAX.
 *  - pop1_wait/wake_pop1: wait inside the implementation until an item is
 *    there; 1 done, or BENCH_ERR_IMPL. They never return 0, so a run whose
 *    peer died is caught only by the harness's stall timer.
 *
 * Threading: one producer thread and one consumer thread per SPSC queue.
 * The mp_* part has @nprod producer threads (producer index 0..nprod-1, each
 * index used by one thread) and one consumer thread; the mc_* part (W8)
 * @nprod producer threads and @ncons consumer threads, each index used by
 * one thread.
 *
 * Optional members are NULL when the implementation has no such API; the
 * harness then skips that path for it (no emulation, so a row always shows
 * what the implementation's own API can do).
 */
#ifndef RMPSC_BENCH_IMPL_H
#define RMPSC_BENCH_IMPL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* <ringmpsc/ring.h>, <ringmpsc/channel.h>, for bench_ex */
struct rmpsc_ring;
struct rmpsc_mpsc;
struct rmpsc_producer;

/*
 * A library's own exported single-item calls, when they already have the
 * shape the harness needs (errno convention: 0 done, -EAGAIN full or empty,
 * any other negative value an error; the element through a pointer). With
 * bench_impl.ex set, W1 and W4 call these directly instead of push1/pop1:
 * the harness reaches the library's code through one indirect call, as it
 * reaches every header-only peer's inlined code through one indirect call
 * into its adapter, instead of through an adapter shell that only
 * translates the return code and then makes the real call. A table behind
 * a pointer, so that a dlopen'ed variant can fill it at init. Either half
 * may be NULL.
 */
struct bench_ex {
	/* W1, W4: queues from create. */
	int (*push1)(struct rmpsc_ring *r, const void *item);
	int (*pop1)(struct rmpsc_ring *r, void *item);
	/* W3, W6 single, W7: queues from mp_create/mp_create_idle; the
	 * producer handle of producer @idx and the consumer's channel handle
	 * come from the adapter, once per thread. */
	int (*mp_push1)(struct rmpsc_producer *p, const void *item);
	int (*mp_pop1)(struct rmpsc_mpsc *ch, void *item, uint32_t *producer_id);
	struct rmpsc_producer *(*mp_producer)(void *q, unsigned idx);
	struct rmpsc_mpsc *(*mp_channel)(void *q);
};

enum {
	BENCH_ERR_MISMATCH = -1, /* zc_consume: a value broke the sequence */
	BENCH_ERR_IMPL = -2,	 /* the implementation failed unexpectedly */
	BENCH_MAX_PROD = 8,	 /* mp_create accepts 1..BENCH_MAX_PROD */
	BENCH_PROD_SHIFT = 56,	 /* W3 values: producer index << 56 | sequence */
};

/* bench_impl.workloads bits (0 there: every workload the API allows). */
enum {
	BENCH_WL_W1 = 1u << 0,
	BENCH_WL_W2 = 1u << 1,
	BENCH_WL_W3 = 1u << 2,
	BENCH_WL_W4 = 1u << 3,
	BENCH_WL_W5 = 1u << 4,
	BENCH_WL_W6 = 1u << 5,
	BENCH_WL_W7 = 1u << 6,
	BENCH_WL_W8 = 1u << 7,
};

/* How wake_pop1 waits (W5). */
enum bench_wake {
	BENCH_WAKE_SPIN = 0,  /* busy polling inside the implementation */
	BENCH_WAKE_FUTEX = 1, /* asleep in the kernel until the producer wakes it */
	BENCH_WAKE_EPOLL = 2, /* asleep in epoll_wait on an fd the producer signals */
	BENCH_WAKE_N = 3,
};

struct bench_impl {
	const char *name;     /* short, unique, no spaces: "ringmpsc" */
	const char *api_note; /* one line: what the API forces on the caller */

	/* SPSC queue of @capacity u64 slots (a power of two; as close as the
	 * implementation allows, its api_note says how close);
	 * NULL on failure. The harness creates a new queue for every
	 * repetition, outside the timed region. */
	void *(*create)(uint32_t capacity);
	void (*destroy)(void *q);

	/* Single item (required). */
	int (*push1)(void *q, uint64_t v);
	int (*pop1)(void *q, uint64_t *v);

	/* Copying batch, best effort (required). */
	int (*push_n)(void *q, const uint64_t *v, uint32_t n);
	int (*pop_n)(void *q, uint64_t *v, uint32_t n);

	/* Zero-copy (optional). zc_produce claims up to @n slots in place,
	 * writes first, first + 1, ... into them (bench_fill) and publishes
	 * them. zc_consume looks at up to @n published items in place, checks
	 * and sums them (bench_check: each must equal *expected_next, which
	 * advances), then releases them. */
	int (*zc_produce)(void *q, uint32_t n, uint64_t first);
	int (*zc_consume)(void *q, uint32_t n, uint64_t *expected_next, uint64_t *sum);

	/* Multi-producer single-consumer (optional, W3). @capacity is the
	 * total number of slots, however the implementation splits it. */
	void *(*mp_create)(uint32_t capacity, unsigned nprod);
	void (*mp_destroy)(void *q);
	int (*mp_push1)(void *q, unsigned producer, uint64_t v);
	int (*mp_pop1)(void *q, uint64_t *v);

	/* Everything below is optional and was appended later; the C++
	 * adapters' designated initializers must keep declaration order. */

	/* Called once at start-up, before anything else, when the adapter is
	 * selected: 0 ready; otherwise the adapter is skipped and @why (a
	 * buffer of @len bytes) says why. */
	int (*init)(char *why, unsigned len);

	/* W4: a pop that waits inside the implementation (its own poll loop
	 * instead of the harness's pop1 + pause loop). */
	int (*pop1_wait)(void *q, uint64_t *v);

	/* W5 (wake-up latency): a queue whose consumer waits as @how says
	 * (enum bench_wake); NULL from wake_create when it cannot. */
	void *(*wake_create)(uint32_t capacity, unsigned how);
	void (*wake_destroy)(void *w);
	int (*wake_push1)(void *w, uint64_t v);
	int (*wake_pop1)(void *w, uint64_t *v);

	/* Workloads to run, BENCH_WL_* bits; 0: all that the API allows. */
	uint32_t workloads;
	/* Another build of the implementation named here (an A/B variant): it
	 * is never "the best other implementation" of any row, and its own
	 * rows are compared with peers only, not with that implementation. */
	const char *variant_of;
	/* BENCH_F_* bits. */
	uint32_t flags;

	/* The channel workloads (W6-W8), appended; all optional. Values
	 * carry the producer index as in W3 (index << BENCH_PROD_SHIFT |
	 * sequence). */

	/* W6 batch: producer @producer (one thread each) publishes up to @n
	 * of @v with the implementation's own multi-item call, best effort
	 * as push_n; the consumer takes up to @n from any producers into @v,
	 * as pop_n. Queues from mp_create. NULL: no such call in the API. */
	int (*mp_push_n)(void *q, unsigned producer, const uint64_t *v, uint32_t n);
	int (*mp_pop_n)(void *q, uint64_t *v, uint32_t n);

	/* W8: @nprod producers and @ncons consumers (1..BENCH_MAX_PROD
	 * each; nprod 1 is SPMC and may get a single-producer queue),
	 * @capacity slots in total; producer index @producer and consumer
	 * index @consumer are each used by one thread. mc_pop1 returns as
	 * pop1. */
	void *(*mc_create)(uint32_t capacity, unsigned nprod, unsigned ncons);
	void (*mc_destroy)(void *q);
	int (*mc_push1)(void *q, unsigned producer, uint64_t v);
	int (*mc_pop1)(void *q, unsigned consumer, uint64_t *v);

	/* W7 (per-producer structures only): a multi-producer queue (used
	 * with mp_push1/mp_pop_n/mp_destroy) with @nprod active producers
	 * (indices 0..nprod-1) and @nidle more registered that never send;
	 * @opts BENCH_MP_* bits. mp_polls: the consumer's queue looks so far
	 * (per-producer queue polls), or -1 when it does not count them. */
	void *(*mp_create_idle)(uint32_t capacity, unsigned nprod, unsigned nidle,
				unsigned opts);
	int64_t (*mp_polls)(void *q);

	/* Optional: the exported single-item calls W1 and W4 use instead of
	 * push1/pop1 (struct bench_ex above; queues from create). */
	const struct bench_ex *ex;

	/* W8 bursts (spmc-1x4-burst, mpmc-4x4-bulk), queues from mc_create:
	 * producer @producer publishes up to @n of @v with the
	 * implementation's own multi-item call, best effort as push_n (an
	 * all-or-nothing call returns n or 0); consumer @consumer takes up to
	 * @n into @v with its own multi-item call, as pop_n. NULL: no such
	 * call in the API (no emulation: both or neither, or no burst rows). */
	int (*mc_push_n)(void *q, unsigned producer, const uint64_t *v, uint32_t n);
	int (*mc_pop_n)(void *q, unsigned consumer, uint64_t *v, uint32_t n);
};

/* mp_create_idle opts. */
enum {
	BENCH_MP_NOSKIP = 1u << 0, /* the consumer looks at every producer's queue each round */
};

/* bench_impl.flags bits. */
enum {
	/* A "<peer>-call" diagnostic variant (BENCH_CALL below): the peer
	 * one call deeper; its W1/W4 rows are compared with ringmpsc's and
	 * with the peer's own; it needs variant_of set too. */
	BENCH_F_CALL = 1u << 0,
};

/*
 * The "-call" diagnostic variants. A header-only peer's queue code is
 * inlined into its adapter; ringmpsc's W1/W4 rows call its exported
 * functions (bench_ex), the same depth. To measure what one more call per
 * operation costs each peer (the depth ringmpsc had when its W1/W4 rows
 * went through its adapter shell), each peer adapter is compiled a second time with
 * BENCH_CALL defined (impl_<peer>_call.c/.cc: the define and an #include of
 * the adapter, as impl_ringmpsc_poll.c does). Each adapter keeps its
 * single-item queue operations in BENCH_QOP functions that push1/pop1 call
 * (push1/pop1 translate their result, as ringmpsc's adapter translates the
 * library's return code):
 *  - normal build: always inlined, so push1/pop1 are the same code as with
 *    the operation written in place;
 *  - BENCH_CALL: noinline and, where the compiler has it (GCC), noipa (no
 *    inlining, cloning, or knowledge of the callee's registers, memory
 *    effects or return value at the call site: what the compiler knows of
 *    a call into another object), and
 *    aligned to 64 bytes as the library's entry points are
 *    (-falign-functions=64). CMake also compiles these files with
 *    -fno-optimize-sibling-calls, so push1/pop1 call the operation and
 *    return, and never jump into it (see README.md, "Call depth").
 * BENCH_QOP_SHELLS() writes those push1/pop1; BENCH_IMPL_OF, BENCH_NAME_OF and
 * BENCH_NOTE_OF give the impl table entry its variable, name and note, and
 * BENCH_CALL_MEMBERS its workloads (W1 and W4 only), variant_of and flags.
 */
#if defined(__has_attribute)
#if __has_attribute(noipa)
#define BENCH_NOIPA noipa,
#endif
#endif
#ifndef BENCH_NOIPA
#define BENCH_NOIPA
#endif
#ifdef BENCH_CALL
#define BENCH_QOP		   static __attribute__((BENCH_NOIPA noinline, aligned(64)))
#define BENCH_IMPL_OF(peer)	   bench_impl_##peer##_call
#define BENCH_NAME_OF(peer)	   #peer "-call"
#define BENCH_NOTE_OF(peer, note) \
	"diagnostic: the " #peer " adapter with push1/pop1 reaching the queue "  \
	"through one non-inlined call per operation (one call deeper than the " \
	"inlined peers and ringmpsc's exported calls); " \
	"W1 and W4 only"
#define BENCH_CALL_MEMBERS(peer) \
	.workloads = BENCH_WL_W1 | BENCH_WL_W4, .variant_of = #peer, .flags = BENCH_F_CALL
#else
#define BENCH_QOP		   static inline __attribute__((always_inline))
#define BENCH_IMPL_OF(peer)	   bench_impl_##peer
#define BENCH_NAME_OF(peer)	   #peer
#define BENCH_NOTE_OF(peer, note) note
#define BENCH_CALL_MEMBERS(peer) \
	.workloads = 0, .variant_of = (const char *)0, .flags = 0u
#endif

/*
 * push1/pop1 of an adapter whose single-item operations are the BENCH_QOP
 * functions <pfx>_op_push(q, v) and <pfx>_op_pop(q, v): each calls its
 * operation and returns @result(its value), @result translating the queue's
 * own convention into 1 done / 0 full or empty (empty when the operation
 * already returns that, or a bool).
 */
#define BENCH_QOP_SHELLS(pfx, result)                            \
	static int pfx##_push1(void *q, uint64_t v)              \
	{                                                        \
		return result(pfx##_op_push(q, v));              \
	}                                                        \
	static int pfx##_pop1(void *q, uint64_t *v)              \
	{                                                        \
		return result(pfx##_op_pop(q, v));               \
	}

/*
 * push_n (pop_n) of a queue that has no multi-item call: one <pfx>_op_push
 * (<pfx>_op_pop) per item until the first refusal, the count moved. The
 * harness never emulates a batch API, so this is the queue's own best.
 * (In a BENCH_CALL build each item is a call; those run W1 and W4 only.)
 */
#define BENCH_PUSH_N_EACH(pfx)                                            \
	static int pfx##_push_n(void *q, const uint64_t *v, uint32_t n)   \
	{                                                                 \
		uint32_t i;                                               \
									  \
		for (i = 0; i < n; i++)                                   \
			if (!pfx##_op_push(q, v[i]))                      \
				break;                                    \
		return (int)i;                                            \
	}
#define BENCH_POP_N_EACH(pfx)                                             \
	static int pfx##_pop_n(void *q, uint64_t *v, uint32_t n)          \
	{                                                                 \
		uint32_t i;                                               \
									  \
		for (i = 0; i < n; i++)                                   \
			if (!pfx##_op_pop(q, &v[i]))                      \
				break;                                    \
		return (int)i;                                            \
	}

/* The required members of a table entry, for an adapter whose functions
 * are named <pfx>_create, <pfx>_destroy, <pfx>_push1, ..., <pfx>_pop_n. */
#define BENCH_SPSC_OPS(pfx)                                                        \
	.create = pfx##_create, .destroy = pfx##_destroy, .push1 = pfx##_push1,    \
	.pop1 = pfx##_pop1, .push_n = pfx##_push_n, .pop_n = pfx##_pop_n

/* Producer and consumer counts an mp_create/mc_create accepts. */
static inline int bench_counts_ok(unsigned nprod, unsigned ncons)
{
	return nprod >= 1 && nprod <= BENCH_MAX_PROD && ncons >= 1 && ncons <= BENCH_MAX_PROD;
}

/* The adapters (bench/impl_<name>.c). */
extern const struct bench_impl bench_impl_ringmpsc;
/* The same adapter on libringmpsc_poll.so (RMPSC_NO_WAKE), loaded with
 * dlopen (impl_ringmpsc_poll.c). */
extern const struct bench_impl bench_impl_ringmpsc_poll;
/* The MPSC channel with metrics on (impl_ringmpsc.c), and on the library
 * built with RMPSC_NO_METRICS (impl_ringmpsc_nometrics.c); W3/W6 only. */
extern const struct bench_impl bench_impl_ringmpsc_metrics;
extern const struct bench_impl bench_impl_ringmpsc_nometrics;
extern const struct bench_impl bench_impl_mutex;
/* Peers, compiled in when their Debian package is present. */
extern const struct bench_impl bench_impl_boost; /* impl_boost.cc */
extern const struct bench_impl bench_impl_dpdk;  /* impl_dpdk.c */
extern const struct bench_impl bench_impl_ck;    /* impl_ck.c */
extern const struct bench_impl bench_impl_urcu;  /* impl_urcu.c */
extern const struct bench_impl bench_impl_rwq;   /* impl_rwq.cc */
extern const struct bench_impl bench_impl_mccq;  /* impl_mccq.cc */
/* The same adapters with BENCH_CALL (impl_<peer>_call.c/.cc), "<peer>-call". */
extern const struct bench_impl bench_impl_mutex_call;
extern const struct bench_impl bench_impl_boost_call;
extern const struct bench_impl bench_impl_dpdk_call;
extern const struct bench_impl bench_impl_ck_call;
extern const struct bench_impl bench_impl_urcu_call;
extern const struct bench_impl bench_impl_rwq_call;
extern const struct bench_impl bench_impl_mccq_call;

/*
 * The fill and check every zero-copy adapter runs over its in-place spans,
 * and the harness over its copy buffers, so every path pays the same
 * per-item work. Written for the baseline ISA (the harness is not built
 * with -march): a 64-bit index and four items per step keep two independent
 * vector chains busy; with a 32-bit index GCC widened every index and both
 * loops ran at about half this speed (fill ~15 GB/s on one core of the
 * reference machine), which capped W2 below what the queues can do.
 * The check ORs all differences together instead of leaving the loop at the
 * first one, so it vectorizes too.
 */
static inline void bench_fill(uint64_t *p, uint32_t n, uint64_t first)
{
	const uint64_t n4 = n & ~(uint32_t)3;
	uint64_t i;

	for (i = 0; i < n4; i += 4) {
		p[i] = first + i;
		p[i + 1] = first + i + 1;
		p[i + 2] = first + i + 2;
		p[i + 3] = first + i + 3;
	}
	for (; i < n; i++)
		p[i] = first + i;
}

/* 0 if p[i] == first + i for every i (and adds them to *sum), else 1. */
static inline int bench_check(const uint64_t *p, uint32_t n, uint64_t first,
			      uint64_t *sum)
{
	const uint64_t n4 = n & ~(uint32_t)3;
	uint64_t b0 = 0, b1 = 0, s0 = 0, s1 = 0, i;

	for (i = 0; i < n4; i += 4) {
		b0 |= p[i] ^ (first + i);
		b1 |= p[i + 1] ^ (first + i + 1);
		b0 |= p[i + 2] ^ (first + i + 2);
		b1 |= p[i + 3] ^ (first + i + 3);
		s0 += p[i] + p[i + 2];
		s1 += p[i + 1] + p[i + 3];
	}
	for (; i < n; i++) {
		b0 |= p[i] ^ (first + i);
		s0 += p[i];
	}
	*sum += s0 + s1;
	return (b0 | b1) != 0;
}

#ifdef __cplusplus
}
#endif

#endif /* RMPSC_BENCH_IMPL_H */
