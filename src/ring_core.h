/* SPDX-License-Identifier: MIT */
/*
 * The one ring core, inline half: indices, free/available space, spans,
 * copies, the fast paths and the wake-up hooks of the blocking calls. Its
 * out-of-line half is ring_core.c (slow paths, borrows, multi-consumer
 * release, the blocking calls of the core), its close protocol
 * ring_close.c. Every ring-shaped object (rmpsc_ring, and each per-producer
 * ring of the channels) is a private view (struct rmpsc__rcore: pointers,
 * owner data, validated geometry, each side's cached indices) over a
 * shared part (struct rmpsc__rshared: fixed-width, pointer-free: geometry,
 * indices, futex words, close state) and the slots; the public wrappers
 * only validate handles and arguments.
 *
 * Two helper families read a ring: the single consumer's (rc_take(),
 * rc_pop1(), rc_advance(), rc_drain(), borrows; head runs through the
 * private chead) and the claiming consumers' (rc_mc_*: claim, then
 * completion through head itself). A ring is one or the other for life,
 * told by mc_end (NULL: single consumer); debug builds assert that each
 * helper is called on its own kind (rc_assert_sc(), rc_assert_mc()).
 *
 * Synchronization
 * ---------------
 * The shared part (sh->): tail, head, claim, closed, final_tail, the
 * waiter counts, the futex words, state and the metrics. The view: the
 * rest, each side's own fields on lines of their own.
 *
 * tail    written by the producer only (store-release E1); read by the
 *         producer relaxed (own index, single writer), by the consumers
 *         (seq_cst: E1's acquire and E7) when a cached copy shows too
 *         little data, by a closer (seq_cst, E7) and by the status calls.
 * head    written by the consumer only (store-release E2); read by the
 *         producer with acquire (E2) when its cached copy shows too little
 *         room. The consumer's own index is chead (below), never head.
 * closed  RC_OPEN, RC_CLOSING, RC_DECIDING, RC_CLOSED (0..3, in the order a
 *         ring passes through them, ring_close.c). Written by any thread
 *         through rmpsc__rc_close() (OPEN -> CLOSING, seq_cst CAS) and by the
 *         producer through rmpsc__rc_publish_closed(); then whichever
 *         of the closers and the producer decides the stream's end first
 *         (E7) takes it CLOSING -> DECIDING (seq_cst CAS), stores
 *         final_tail and CLOSED (store-release E3); a reset writes OPEN
 *         (release, after head: see rc_set_position()) with neither
 *         side running, except the reuse of an MPMC ring, which consumers
 *         may still be trying to claim from (ringset.c, mc_ring_drained():
 *         positions only grow, so no claim of the old life succeeds).
 *         Read by the producer relaxed before and after each publication
 *         (E7), and by the consumers with each tail read (seq_cst, E7) and
 *         when they find the ring empty (acquire, E3).
 * final_tail  the end of the stream: the tail a closer read after its
 *         heavy barrier, or the tail of the publication of a producer that
 *         found the close undecided (E7). Written once, by the thread that
 *         took closed to DECIDING, before closed = CLOSED; read after an
 *         acquire load of closed that saw CLOSED.
 * *cwait, prod_waiters
 *         incremented/decremented by a thread about to sleep on *cseq
 *         (consumer waiting for data) or prod_seq (producer waiting for
 *         room), seq_cst RMW followed by rmpsc__heavy_barrier() (E4); read
 *         relaxed by the other side after each publication, behind
 *         rmpsc__light_barrier() (E4). For a ring of its own cwait/cseq
 *         point at cons_waiters/cons_seq; the rings of a channel share the
 *         channel's, so one sleeping consumer is woken by any producer.
 *         A ring's own word also carries RC_WAKE_NOTIFIER while a notifier
 *         is attached, so the producer's check is one load either way.
 * *cseq, prod_seq
 *         futex words, bumped (release RMW, E5) by a waker before
 *         FUTEX_WAKE; read with acquire (E5) by the sleeper before it
 *         registers, and compared by the kernel in FUTEX_WAIT.
 * state   channel rings only: see mpsc.c (C1).
 * m_sent, m_batches, m_full  producer-written metrics, relaxed (counters
 *         a snapshot reads; nothing is ordered by them).
 * notifier  written by rmpsc_ring_set_notifier() from any thread
 *         (exchange, release E6), which then sets or clears
 *         RC_WAKE_NOTIFIER in the ring's wake word (seq_cst RMW); read with
 *         acquire (E6) by rmpsc__rc_wake_cons(), which a producer calls
 *         after a publication when it finds the wake word nonzero.
 * cached_head, resv, resv_pos   producer-private, plain (view group 1).
 * chead, cached_tail, otail, brd, nborrow, serial, blen[]   consumer-private,
 *         plain, on a line of their own (view group 2): chead is the
 *         consumer's position,
 *         head its last publication; rc_pop1_fast() (rmpsc_ring_pop) lets
 *         chead run up to rel_mask ahead of head (published every
 *         rel_mask + 1 elements, at once when a producer is seen asleep,
 *         and by rc_flush() at the start of every other consumer call and
 *         before any "empty"); rmpsc_mpsc_pop() batches the same way
 *         (rc_release_lazy()); every other release publishes at once
 *         (rc_release). phead is the last head published, so rc_flush()
 *         never reads head's line. otail is the last tail the consumer may
 *         use (E7; set by rc_cons_tail() and rc_cons_saw()).
 * claim, mc_end[], mc_head   multi-consumer rings only (M1, M2 below);
 *         their head is mc_head, written by the producer alone as it
 *         collects completed runs (rmpsc__rc_mc_collect(), from
 *         rc_prod_free()), on tail's line; cached_head is what it last
 *         collected. sh->head is not used.
 *
 * E1 release: publishes the slot contents of [old tail, new tail); pairs with
 *    the consumers' loads of tail in rc_cons_read_tail() and rc_mc_claim(),
 *    so their reads of those slots see the producer's writes.
 * E2 release: returns slots [old head, new head) to the producer; pairs with
 *    E2 acquire in rc_prod_free(), so the producer's next writes into those
 *    slots cannot be seen by (or overtake) the consumer's earlier reads.
 * E3 release: the decider's store of CLOSED; pairs with E3 acquire
 *    wherever a thread reads CLOSED before final_tail: final_tail and
 *    every slot below it are then visible to it (a deciding closer read
 *    tail with seq_cst after the publications it covers; a deciding
 *    producer wrote those slots itself, before the store). final_tail is
 *    itself stored with release and loaded with acquire: a channel ring
 *    reused by a new producer goes CLOSED, OPEN, CLOSED again, and a
 *    reader that saw the first CLOSED may load the second end.
 * E4 Dekker handshake, sleeper vs waker (see internal.h): the sleeper's
 *    "waiters++; heavy barrier; re-check the ring" against the waker's
 *    "publish; light barrier; load waiters". Either the sleeper's re-check
 *    sees the publication or the waker sees the waiter and wakes it.
 * E5 release: a wake (or close) bumps the futex word after its state change;
 *    a sleeper that read the old value is refused by FUTEX_WAIT, one that
 *    read the new value sees the state change through the acquire.
 * E6 release: the notifier is fully constructed before a producer can see
 *    the pointer.
 * E7 close versus publication, with no store of the producer's beyond the
 *    slot and tail: the producer publishes first and looks at closed after
 *    (store tail; light barrier; load closed), a closer does the mirror
 *    image (closed = CLOSING; heavy barrier; load tail), a Dekker handshake like
 *    E4. If the producer still sees the ring open, a closer's tail read
 *    sees its publication. Whoever decides the end first wins a CAS of
 *    closed from CLOSING to DECIDING, stores final_tail, then CLOSED: a
 *    closer decides the tail it read after its heavy barrier; the producer, when it finds the
 *    close undecided after publishing, decides its own new tail (it is the
 *    only writer of tail, so nothing anyone read exceeds it, and its
 *    publication is then covered). A publication covered by final_tail
 *    succeeded; one that is not (the producer found the end decided, below
 *    its tail) returns -EPIPE and is never delivered. A single consumer
 *    uses a tail it read only if it still sees the ring open after the read
 *    (both loads seq_cst): a later closer's tail read cannot return less
 *    (C11 as strengthened by C++20, P0668: coherence order agrees with the
 *    seq_cst order; on x86-64 and arm64 the hardware gives it), so
 *    everything it delivers is covered. While the end is undecided it keeps
 *    to the last such tail (otail); multi-consumer rings, which share no
 *    such tail, report -EAGAIN; once closed is CLOSED, final_tail is the tail.
 *    So -EPIPE on the consumer side is final, every call that reported
 *    success is delivered before it, and nothing of a call that returned
 *    -EPIPE is ever delivered. Nobody waits for a heavy barrier: a thread
 *    that needs the end and finds it being decided (DECIDING) waits for
 *    the decider's two stores, whether the decider is a closer or the
 *    producer. A producer whose covered publication found the ring closing
 *    skips its wake check: the close wakes every sleeper and signals the
 *    notifier after the end is decided.
 * M1 claim: consumers CAS claim from c to c + k after a load of tail (E1,
 *    E7) that showed at least c + k: each run [c, c + k) goes to one
 *    consumer, which then reads it.
 * M2 completion: after reading its run, the consumer stores the run's end
 *    into the entry of the run's start (rc_mc_entry(), release) and looks
 *    for a sleeping producer (E4). Consumers never write a head. The
 *    producer, when its cached room runs short, collects: from mc_head,
 *    while the entry of mc_head holds an end in (mc_head, tail], it loads
 *    it with acquire (pairing with that release, so the run's reads happen
 *    before the slots are written again) and moves mc_head to it, then
 *    publishes mc_head (release, for the status calls). A run completed out
 *    of order waits in the table until the runs before it are complete.
 *    Ends are free-running positions, unique, and an entry of an earlier
 *    lap ends at or below head, so no entry needs clearing. One plain store
 *    per completion, on a line neighbouring runs do not share, instead of a
 *    CAS on the claim index's line: a consumer's cost is its claim.
 *
 * Positions are free-running uint64_t: tail - head is the fill level and
 * stays correct across the 2^64 wrap because it never exceeds capacity.
 * The buffer has mask + 1 slots, a power of two of at least the capacity
 * (cap), which bounds the fill level.
 */
#ifndef RMPSC_RING_CORE_H
#define RMPSC_RING_CORE_H

#include <stdalign.h>
#include <stdatomic.h>

#include "internal.h"
#include "ringmpsc/wait.h"

/* Lazy head publication of the single-element pop (rel_mask): every
 * RC_LAZY elements, on rings of at least RC_LAZY_MIN_CAP. */
enum { RC_LAZY = 32, RC_LAZY_MIN_CAP = 1024 };

/*
 * The shared part: every word both sides of a ring read or write, and
 * nothing else. Fixed-width fields only (no pointer, size_t or struct of
 * the library's), at offsets pinned by tests/test_layout.c, so that the
 * same bytes mean the same thing to a 32-bit and a 64-bit user, and to a
 * process that maps them at another address (the shared-ring issue puts
 * this part in a memfd). Groups are RMPSC__GROUP apart as before: what the
 * producer writes, what the consumers write and what both only read never
 * share a line.
 */
#define RC_SHARED_MAGIC 0x524d5353u /* "RMSS" */
#define RC_SHARED_VERSION 1u

struct rmpsc__rshared {
	/* Group 0: identity and geometry (written once, at creation), then
	 * the words the other side writes only when it goes to sleep,
	 * attaches a notifier or closes. */
	uint32_t magic;        /* RC_SHARED_MAGIC */
	uint32_t version;      /* RC_SHARED_VERSION: the layout of this struct */
	uint32_t esz;          /* bytes per slot */
	uint32_t _pad0;
	uint64_t cap;          /* most elements the ring holds */
	uint64_t slots;        /* a power of two >= cap */
	_Atomic uint32_t closed;       /* RC_OPEN .. RC_CLOSED (ring_close.c) */
	_Atomic uint32_t prod_waiters; /* producers registered to sleep (E4) */
	_Atomic uint32_t cons_waiters; /* this ring's own consumer wake word (E4) */
	_Atomic uint32_t state;        /* channel rings: in use or free (C1) */

	/* Group 1: producer-written. Multi-consumer rings (SPMC, MPMC) also
	 * publish here how far their producer has collected completed runs
	 * (M2): the head of those rings, whose head below stays unused, so
	 * that the producer never writes the claim index's line. */
	alignas(RMPSC__GROUP) _Atomic uint64_t tail;
	_Atomic uint64_t mc_head;

	/* Group 2: consumer-written, read by producers. Multi-consumer rings
	 * have the claim index here, CAS by every consumer (M1). */
	alignas(RMPSC__GROUP) _Atomic uint64_t head;
	_Atomic uint64_t claim;

	/* Group 3: cold, written by neither hot path. */
	alignas(RMPSC__GROUP) _Atomic uint32_t cons_seq; /* futex: data arrived (E5) */
	_Atomic uint32_t prod_seq; /* futex: room freed (E5) */
	/* Where the close ended the stream (E7), valid once closed is
	 * RC_CLOSED. */
	alignas(RMPSC__CACHELINE) _Atomic uint64_t final_tail;
	/* Metrics (channels with RMPSC_MPSC_F_METRICS), producer-written,
	 * read relaxed by stats: elements, publications, calls without room. */
	_Atomic uint64_t m_sent, m_batches, m_full;
};
typedef struct rmpsc__rshared rmpsc__rshared;

_Static_assert(offsetof(rmpsc__rshared, state) + 4 <= RMPSC__CACHELINE,
	       "the shared read-mostly words share one line");
_Static_assert(offsetof(rmpsc__rshared, tail) == 1 * RMPSC__GROUP, "producer group at 128");
_Static_assert(offsetof(rmpsc__rshared, mc_head) == 1 * RMPSC__GROUP + 8, "beside tail");
_Static_assert(offsetof(rmpsc__rshared, head) == 2 * RMPSC__GROUP, "consumer group at 256");
_Static_assert(sizeof(rmpsc__rshared) == 4 * RMPSC__GROUP, "the shared part is 512 bytes");

/*
 * The private view: what one user of a ring keeps for itself. Pointers
 * into the ring (the shared part, slot 0, the wake words), the owner's
 * handle data, validated copies of the geometry (the hot paths read them
 * here, never from the shared part), and each side's cached indices. A
 * ring of its own (rmpsc_ring) or of a channel is one mapping of view,
 * shared part and slots; a ring mapped from another process will have
 * one view per process over the same shared part.
 */
struct rmpsc__rcore {
	/* Group 0: read-mostly. The first line holds everything a hot path
	 * reads: the owner's magic (handle checks), geometry, and where the
	 * shared words are. */
	uint32_t magic;        /* the handle's (internal.h), first in every handle */
	uint32_t esz;          /* copy of sh->esz */
	uint64_t mask;         /* slots - 1 */
	uint64_t cap;          /* copy of sh->cap */
	unsigned char *data;   /* slot 0, cache-line aligned */
	rmpsc__rshared *sh;
	/* The consumers' wake word (E4): &sh->cons_waiters for a ring of its
	 * own, the channel's sleeper count for a channel's ring. Nonzero
	 * means "call rmpsc__rc_wake_cons() after publishing": the count of
	 * registered sleepers, plus RC_WAKE_NOTIFIER while a notifier is
	 * attached (rings of their own only). */
	_Atomic uint32_t *cwait;
	uint32_t flags;        /* owner's creation flags (read on hot paths) */
	/* The single-element pop publishes head when (head & rel_mask) == 0
	 * (and whenever a producer sleeps, and before saying empty): 0 on
	 * small and multi-consumer rings, every element. */
	uint32_t rel_mask;
	uint32_t barrier;      /* RMPSC__BARRIER_*: the E4/E7 handshakes' mode */
	/* Set (once, never cleared) when an index read from the shared part
	 * failed its check (rc_index_ok()) or a shared word held a value the
	 * protocol never writes: only a shared ring's peer can cause it, and
	 * the shared ring's calls then report -EPROTO (shm.c). On the hot
	 * line, so that their check costs no line of its own. */
	_Atomic uint32_t broken;
	/* Second line: what the slow paths of both sides read. */
	alignas(RMPSC__CACHELINE) _Atomic uint32_t *cseq; /* futex word consumers
							  * sleep on (E5):
							  * &sh->cons_seq or
							  * the channel's */
	struct rmpsc_notifier *_Atomic notifier; /* E6; read by the slow path */
	void *owner;           /* the channel of a channel's ring */
	uint32_t id;           /* channel rings: index in the channel */

	/* Group 1: producer-private. */
	alignas(RMPSC__GROUP) uint64_t cached_head; /* last head seen by the producer */
	uint64_t resv;        /* reserved, not yet committed, from resv_pos on */
	uint64_t resv_pos;    /* tail when the reservation was made: a push or a
			       * commit that moves tail invalidates the rest */
	uint64_t ptail;       /* the producer's own index: what it last stored
			       * in sh->tail, read instead of it (a shared ring's
			       * peer may write anything there) */

	/* Group 2: consumer-private. */
	alignas(RMPSC__GROUP) uint64_t chead; /* the consumer's position: head,
					       * or up to rel_mask ahead of it */
	uint64_t phead;       /* the last head the consumer published */
	uint64_t cached_tail; /* last tail seen by the consumer */
	uint64_t otail;       /* last tail the consumer may use (E7) */
	/* Borrowed reads (single consumer): read position, outstanding
	 * borrows, and per slot the length of the borrow starting there
	 * (RC_BORROW_DONE set once committed; allocated at the first borrow). */
	uint64_t brd;
	uint32_t nborrow;     /* outstanding borrows, | RC_IN_HANDLER */
	uint32_t serial;      /* tags this ring's borrow tokens (rc_token()) */
	uint32_t *blen;
	/* Multi-consumer rings: per slot the end position of the run that
	 * starts there once it is complete (M2); NULL for single-consumer
	 * rings, which is how the two families tell them apart. */
	_Atomic uint64_t *mc_end;

	/* Group 3: cold, written by neither hot path. */
	alignas(RMPSC__GROUP) rmpsc_wait wait; /* the owner's default strategy */
	/* 1 while a managed loop (loop.c) is this ring's consumer: a second
	 * loop is refused. CAS by the starter, cleared by its stop. */
	_Atomic uint32_t looped;
	int32_t numa_node;
	size_t map_len;        /* bytes mapped for this ring */
	/* Multi-consumer rings: elements consumers took ahead from this ring
	 * (mc.c) and have not all handed out yet. Added before the claim
	 * that takes them, subtracted once a consumer's buffer is empty; the
	 * ring is drained, and may be reused, only at 0. A line of its own. */
	alignas(RMPSC__CACHELINE) _Atomic uint64_t mc_ahead;
};
typedef struct rmpsc__rcore rmpsc__rcore;

_Static_assert(offsetof(rmpsc__rcore, broken) + 4 <= RMPSC__CACHELINE,
	       "the hot read-mostly fields share one line");
_Static_assert(offsetof(rmpsc__rcore, mc_end) + sizeof(void *) <=
		       offsetof(rmpsc__rcore, chead) + RMPSC__CACHELINE,
	       "the consumer-private fields share one line");
_Static_assert(sizeof(rmpsc__rcore) == 4 * RMPSC__GROUP,
	       "the shared part that follows a view starts on a 128-byte boundary");

/* A ring in one mapping: the view, the shared part, then the slots (the
 * rings of this process: rmpsc_ring and a channel's producer rings). */
struct rmpsc__rmap {
	rmpsc__rcore core;
	rmpsc__rshared sh;
};
#define RC_MAP_SIZE sizeof(struct rmpsc__rmap)

/* closed, in the order a ring passes through them (ring_close.c): open;
 * closing, the end not decided yet; one thread deciding it (between its two
 * stores, E7); closed, final_tail valid. */
enum { RC_OPEN = 0, RC_CLOSING = 1, RC_DECIDING = 2, RC_CLOSED = 3 };

/* A new borrow-token serial (ring_core.c): 1..RC_SERIAL_MAX, from a
 * process-wide counter. */
RMPSC__INTERNAL uint32_t rmpsc__rc_serial(void);

/* Debug builds (the sanitizer configurations): a helper of one consumer
 * family called on a ring of the other. */
static inline void rc_assert_sc(const rmpsc__rcore *rc)
{
	RMPSC__ASSERT(rc->mc_end == NULL);
	(void)rc;
}

static inline void rc_assert_mc(const rmpsc__rcore *rc)
{
	RMPSC__ASSERT(rc->mc_end != NULL);
	(void)rc;
}

static inline uint64_t rc_cap(const rmpsc__rcore *rc)
{
	return rc->cap;
}

static inline uint64_t rc_slots(const rmpsc__rcore *rc)
{
	return rc->mask + 1;
}

static inline unsigned char *rc_slot(const rmpsc__rcore *rc, uint64_t pos)
{
	return rc->data + (size_t)(pos & rc->mask) * rc->esz;
}

/*
 * A new view, at position 0, over the shared part @sh of a ring of @cap
 * elements over @slots slots at @data, whose geometry the caller has
 * validated: the view's copies of it, the ring's own wake words, the
 * process's barrier mode, and nothing written to @sh.
 */
static inline void rc_init_view(rmpsc__rcore *rc, rmpsc__rshared *sh, uint32_t magic,
				uint64_t cap, uint64_t slots, uint32_t esz, unsigned char *data)
{
	memset(rc, 0, sizeof *rc);
	rc->magic = magic;
	rc->esz = esz;
	rc->mask = slots - 1;
	rc->cap = cap;
	rc->data = data;
	rc->sh = sh;
	rc->cwait = &sh->cons_waiters;
	rc->rel_mask = cap >= RC_LAZY_MIN_CAP ? RC_LAZY - 1 : 0;
	rc->barrier = rmpsc__barrier_mode;
	rc->cseq = &sh->cons_seq;
	rc->numa_node = RMPSC_NODE_ANY;
	rmpsc__wait_default(&rc->wait);
	rc->serial = rmpsc__rc_serial();
}

/*
 * Set up an empty, open ring of @cap elements over @slots slots at @data:
 * the shared part @sh (geometry, indices, words) and the view @rc over it,
 * whose wake words are the ring's own and whose barrier is the process's
 * (rmpsc__barrier_mode); a channel points them elsewhere afterwards.
 */
static inline void rc_init(rmpsc__rcore *rc, rmpsc__rshared *sh, uint32_t magic, uint64_t cap,
			   uint64_t slots, uint32_t esz, unsigned char *data)
{
	/* Zero is every word's first value (open, no waiters, positions 0,
	 * no notifier, no loop, no borrows): only the rest is written. The
	 * words are not shared with anyone yet, so plain stores do. */
	memset(sh, 0, sizeof *sh);
	sh->magic = RC_SHARED_MAGIC;
	sh->version = RC_SHARED_VERSION;
	sh->esz = esz;
	sh->cap = cap;
	sh->slots = slots;
	rc_init_view(rc, sh, magic, cap, slots, esz, data);
}

/* Map a ring of this process (rmpsc__mem_map()): view, shared part and
 * @slots slots of @esz bytes in one mapping, on NUMA node @node
 * (RMPSC_NODE_ANY: anywhere), set up by rc_init(). NULL when the mapping
 * or the placement fails. */
RMPSC__INTERNAL rmpsc__rcore *rmpsc__rc_map(uint32_t magic, uint64_t cap, uint64_t slots,
					    uint32_t esz, uint32_t mem_flags, int32_t node);

/* Free the borrow and completion tables and unmap a ring of rmpsc__rc_map(). */
RMPSC__INTERNAL void rmpsc__rc_unmap(rmpsc__rcore *rc);

/* Every completion entry (M2) to @pos, the head a claiming ring starts
 * from: no entry may look like the end of a run at that head. */
static inline void rc_mc_entries_reset(rmpsc__rcore *rc, uint64_t pos)
{
	for (uint64_t i = 0; i < rc_slots(rc); i++)
		atomic_store_explicit(&rc->mc_end[i], pos, memory_order_relaxed);
}

static inline void rc_set_position(rmpsc__rcore *rc, uint64_t pos)
{
	rc->chead = pos;
	rc->phead = pos;
	rc->cached_head = pos;
	rc->cached_tail = pos;
	rc->otail = pos;
	rc->resv = 0;
	rc->resv_pos = pos;
	rc->ptail = pos;
	rc->brd = pos;
	rc->nborrow = 0;
	rc->serial = rmpsc__rc_serial(); /* tokens from before are another ring's */
	if (rc->blen)
		memset(rc->blen, 0, (size_t)rc_slots(rc) * sizeof *rc->blen);
	atomic_store_explicit(&rc->sh->claim, pos, memory_order_relaxed);
	if (rc->mc_end)
		rc_mc_entries_reset(rc, pos);
	atomic_store_explicit(&rc->sh->tail, pos, memory_order_relaxed);
	RMPSC__TEST_POINT(RMPSC__TP_RING_REUSE, rc);
	atomic_store_explicit(&rc->sh->mc_head, pos, memory_order_relaxed);
	atomic_store_explicit(&rc->sh->head, pos, memory_order_release);
	RMPSC__TEST_POINT(RMPSC__TP_RING_REUSE, rc);
	atomic_store_explicit(&rc->sh->closed, RC_OPEN, memory_order_release);
}

/* rc->flags bits the library sets for itself, above every public flag. */
#define RC_F_METRICS (1u << 31)
/* A multi-consumer ring (SPMC, MPMC): its producer collects completions
 * (M2) instead of reading head. In the hot line, unlike mc_end. */
#define RC_F_MC (1u << 30)
/* A view of a ring in memory shared with another process (shm.c): waits
 * for the peer are bounded (ring_close.c). */
#define RC_F_SHM (1u << 29)
/* That view is the ring's producer. */
#define RC_F_SHM_PRODUCER (1u << 28)
/* How long a shared ring waits for its peer to finish deciding a close
 * (ring_close.c) or to decide one it began (shm.c's timed calls) before
 * deciding it itself. */
#define RC_SHM_DECIDE_NS 1000000000ull

/* In a ring's own wake word (cons_waiters): a notifier is attached. The
 * sleepers' count is the rest (they add and subtract 1). */
#define RC_WAKE_NOTIFIER (1u << 31)


/* Closed or closing, as the status call reports it. */
static inline bool rc_is_closed(const rmpsc__rcore *rc)
{
	return atomic_load_explicit(&rc->sh->closed, memory_order_acquire) != RC_OPEN;
}

/* Close (ring_close.c): refuse further publications, end the stream at the
 * tail seen after the heavy barrier unless the producer ended it first
 * (E7), and wake every sleeper of both sides. A concurrent second close
 * returns once the end is decided. Not async-signal-safe. */
RMPSC__INTERNAL void rmpsc__rc_close(rmpsc__rcore *rc);

/* A publication that found the ring closing or closed afterwards (E7,
 * ring_close.c): decides the end at @new_tail if nobody has; 0 when the end
 * covers @new_tail, else -EPIPE. */
RMPSC__INTERNAL int rmpsc__rc_publish_closed(rmpsc__rcore *rc, uint64_t new_tail);

/* Slow halves of the wake-up hooks (ring_core.c): wake the sleeping
 * consumer and signal the notifier / wake the sleeping producer. */
RMPSC__INTERNAL void rmpsc__rc_wake_cons(rmpsc__rcore *rc);
RMPSC__INTERNAL void rmpsc__rc_wake_prod(rmpsc__rcore *rc);

/* Attach @n (NULL: detach) as the ring's notifier (E6) and make the wake
 * word's RC_WAKE_NOTIFIER bit agree (ring_core.c). */
RMPSC__INTERNAL void rmpsc__rc_set_notifier(rmpsc__rcore *rc, struct rmpsc_notifier *n);

/*
 * After a publication (E1), behind the E4 barrier: wake a sleeping consumer
 * or signal the notifier. One load of the wake word (through the hot line's
 * pointer), and nothing else while nobody sleeps and no notifier is
 * attached. RMPSC_NO_WAKE (the benchmark's polling-only A/B build) compiles
 * the check out.
 */
static RMPSC__ALWAYS_INLINE void rc_wake_check(rmpsc__rcore *rc)
{
#ifndef RMPSC_NO_WAKE
	/* Relaxed: E4 orders it; the slow path re-reads the word and the
	 * notifier pointer with acquire (E6). */
	if (RMPSC__UNLIKELY(atomic_load_explicit(rc->cwait, memory_order_relaxed)))
		rmpsc__rc_wake_cons(rc);
#else
	(void)rc;
#endif
}

/* After a release (E2): wake a producer sleeping for room. */
static RMPSC__ALWAYS_INLINE void rc_after_release(rmpsc__rcore *rc)
{
#ifndef RMPSC_NO_WAKE
	/* The view's fields before the barrier: they never change, and a
	 * compiler barrier would make them be loaded again after it. */
	rmpsc__rshared *sh = rc->sh;

	rmpsc__light_barrier(rc->barrier); /* E4 */
	if (RMPSC__UNLIKELY(atomic_load_explicit(&sh->prod_waiters, memory_order_relaxed)))
		rmpsc__rc_wake_prod(rc);
#else
	(void)rc;
#endif
}

/*
 * The completion entry of the run starting at @pos (M2). Consecutive
 * positions go to different cache lines (the slot index rotated right by
 * 3 bits: 8 entries per line), so that consumers completing neighbouring
 * runs at the same time do not write the same line; the producer's scan
 * walks 8 lines round-robin. W8 measured 1.37x (SPMC) and 1.39x (MPMC)
 * against entries in slot order (bench/README.md tuning log).
 */
static inline _Atomic uint64_t *rc_mc_entry(const rmpsc__rcore *rc, uint64_t pos)
{
	uint64_t i = pos & rc->mask;

	if (rc->mask >= 7) {
		unsigned b = (unsigned)__builtin_ctzll(rc->mask + 1) - 3;

		i = ((i & 7) << b) | (i >> 3);
	}
	return &rc->mc_end[i];
}

/*
 * Multi-consumer rings (M2): from head @h, the position up to which every
 * run is complete, never past tail @t. Only an end in (h, t] belongs to the
 * run starting at h: an entry of an earlier lap ends at or below h, and
 * nothing past tail was ever claimed. Reads only; at most t - h steps.
 */
static inline uint64_t rc_mc_scan(const rmpsc__rcore *rc, uint64_t h, uint64_t t)
{
	for (;;) {
		/* M2 acquire: the completer's reads of the run before any reuse
		 * of its slots. */
		uint64_t end = atomic_load_explicit(rc_mc_entry(rc, h),
						    memory_order_acquire);

		if (end - h - 1 >= t - h)
			return h;
		h = end;
	}
}

/* Move head past every run completed in order from it (ring_core.c, M2)
 * and return it. The producer's, or whoever holds a ring that has no
 * producer. */
RMPSC__INTERNAL uint64_t rmpsc__rc_mc_collect(rmpsc__rcore *rc);

/* The tail for the status calls (E1 acquire): once a close is decided, the
 * stream ends at final_tail (a publication that lost the race may have
 * moved tail past it; final_tail never exceeds tail); while the end is
 * undecided, a snapshot that may count such a publication. */
static inline uint64_t rc_status_tail(const rmpsc__rcore *rc)
{
	uint64_t t = atomic_load_explicit(&rc->sh->tail, memory_order_acquire);

	/* E3 acquire: final_tail. */
	if (RMPSC__UNLIKELY(atomic_load_explicit(&rc->sh->closed, memory_order_acquire) == RC_CLOSED))
		t = atomic_load_explicit(&rc->sh->final_tail, memory_order_acquire);
	return t;
}

/*
 * Committed and unreleased elements, as seen from any thread: a snapshot
 * that is never more than the ring held when tail was read (rc_count_from()
 * counts from @idx, head here, claim for rc_mc_len()). Tail first:
 * head only grows, so the difference cannot exceed that count; a head that
 * passed that tail meanwhile gives a negative difference, reported as 0.
 * (Head first would also count elements pushed and popped between the two
 * loads, up to the capacity, although the ring never held them together.)
 * Exact when neither side moves. E1/E2 acquire.
 */
static inline uint64_t rc_count_from(const rmpsc__rcore *rc, const _Atomic uint64_t *idx)
{
	uint64_t t = rc_status_tail(rc);
	uint64_t n = t - atomic_load_explicit(idx, memory_order_acquire);

	return n > rc_cap(rc) ? 0 : n;
}

static inline uint64_t rc_len(const rmpsc__rcore *rc)
{
	if (RMPSC__UNLIKELY(rc->flags & RC_F_MC)) {
		/* Up to the runs completed in order (M2), as the producer
		 * would collect them: a scan that writes nothing. */
		uint64_t t = rc_status_tail(rc);
		uint64_t h = atomic_load_explicit(&rc->sh->mc_head, memory_order_acquire);

		return t - h > rc_cap(rc) ? 0 : t - rc_mc_scan(rc, h, t);
	}
	return rc_count_from(rc, &rc->sh->head);
}

/*
 * Nothing committed and unreleased: true only if the ring was empty at
 * some moment during the call (head first, then tail: head cannot pass
 * the tail read after it), so a caller waiting for "empty" never stops
 * early; "not empty" may be stale.
 */
static inline bool rc_is_empty(const rmpsc__rcore *rc)
{
	uint64_t h = atomic_load_explicit(&rc->sh->head, memory_order_acquire);

	return rc_status_tail(rc) == h;
}

/*
 * Closed, its end decided, and the index at @idx (head; claim for
 * rc_mc_is_drained()) at that end: the stream is over for good (true at a
 * moment during the call: the index is read first, as in rc_is_empty()).
 * A ring whose close is still deciding its end is not drained: a
 * publication racing the close may still be covered.
 */
static inline bool rc_drained_at(const rmpsc__rcore *rc, const _Atomic uint64_t *idx)
{
	uint64_t i = atomic_load_explicit(idx, memory_order_acquire);

	/* E3 acquire: final_tail. */
	return atomic_load_explicit(&rc->sh->closed, memory_order_acquire) == RC_CLOSED &&
	       atomic_load_explicit(&rc->sh->final_tail, memory_order_acquire) == i;
}

/* Every element up to the decided end released. */
static inline bool rc_is_drained(const rmpsc__rcore *rc)
{
	return rc_drained_at(rc, &rc->sh->head);
}

/* ---- spans and copies ---------------------------------------------------- */

static inline void rc_span_empty(rmpsc_span *s, uint64_t pos)
{
	memset(s, 0, sizeof *s);
	s->pos = pos;
}

/* Describe @n slots from @pos, split at the end of the buffer. */
static inline void rc_span(const rmpsc__rcore *rc, uint64_t pos, uint32_t n, rmpsc_span *s)
{
	uint64_t idx = pos & rc->mask;
	uint64_t room = rc_slots(rc) - idx;
	uint32_t n1 = n < room ? n : (uint32_t)room;
	uint32_t n2 = n - n1;

	s->iov[0].iov_base = rc->data + (size_t)idx * rc->esz;
	s->iov[0].iov_len = (size_t)n1 * rc->esz;
	s->iov[1].iov_base = n2 ? rc->data : NULL;
	s->iov[1].iov_len = (size_t)n2 * rc->esz;
	s->count[0] = n1;
	s->count[1] = n2;
	s->nseg = n2 ? 2 : (n1 ? 1 : 0);
	s->_pad0 = 0;
	s->pos = pos;
}

/* One element of any size: fixed-size copies for the common sizes become
 * plain moves. */
static inline void rc_copy1(void *restrict dst, const void *restrict src, uint32_t esz)
{
	switch (esz) {
	case 1: memcpy(dst, src, 1); break;
	case 2: memcpy(dst, src, 2); break;
	case 4: memcpy(dst, src, 4); break;
	case 8: memcpy(dst, src, 8); break;
	case 16: memcpy(dst, src, 16); break;
	case 32: memcpy(dst, src, 32); break;
	case 64: memcpy(dst, src, 64); break;
	default: memcpy(dst, src, esz); break;
	}
}

static inline void rc_copy_in(rmpsc__rcore *rc, uint64_t pos, const void *src, uint32_t n)
{
	uint64_t idx = pos & rc->mask;
	uint64_t room = rc_slots(rc) - idx;
	size_t n1 = n < room ? n : (size_t)room;

	memcpy(rc->data + idx * rc->esz, src, n1 * rc->esz);
	if (n > n1)
		memcpy(rc->data, (const unsigned char *)src + n1 * rc->esz,
		       (n - n1) * rc->esz);
}

static inline void rc_copy_out(const rmpsc__rcore *rc, uint64_t pos, void *dst, uint32_t n)
{
	uint64_t idx = pos & rc->mask;
	uint64_t room = rc_slots(rc) - idx;
	size_t n1 = n < room ? n : (size_t)room;

	memcpy(dst, rc->data + idx * rc->esz, n1 * rc->esz);
	if (n > n1)
		memcpy((unsigned char *)dst + n1 * rc->esz, rc->data,
		       (n - n1) * rc->esz);
}

/* ---- producer side ------------------------------------------------------- */

/*
 * An index refreshed from the other side, checked once per refresh (never
 * per element): the producer's @t is at most the capacity past the
 * consumer's @h. Both positions only grow and the producer never publishes
 * past the room it saw, so a ring of this process always passes; the
 * check is what keeps a ring whose other side can write anything (another
 * process's, the shared-ring issue) from reading or writing slots it does
 * not own: a refresh that fails it is not adopted.
 */
static RMPSC__ALWAYS_INLINE bool rc_index_ok(const rmpsc__rcore *rc, uint64_t t, uint64_t h)
{
	return t - h <= rc_cap(rc);
}

/* A refresh failed its check (rc_index_ok()) or a shared word held a
 * value the protocol never writes: latch the view broken (ring_core.c). */
RMPSC__INTERNAL RMPSC__COLD void rmpsc__rc_index_bad(rmpsc__rcore *rc);

static inline bool rc_broken(const rmpsc__rcore *rc)
{
	/* Relaxed: a flag of this view, set by the thread that saw the fault. */
	return atomic_load_explicit(&rc->broken, memory_order_relaxed) != 0;
}

/* Free slots, refreshing the cached head only when it shows fewer than
 * @want. */

static inline uint64_t rc_prod_free(rmpsc__rcore *rc, uint64_t want)
{
	/* The producer's own index, from its private copy. */
	uint64_t t = rc->ptail;
	uint64_t fr = rc_cap(rc) - (t - rc->cached_head);

	if (fr < want) {
		/* E2 acquire: pairs with the consumer's release of these slots;
		 * on a multi-consumer ring the completions' (M2). */
		uint64_t h = RMPSC__UNLIKELY(rc->flags & RC_F_MC)
				     ? rmpsc__rc_mc_collect(rc)
				     : atomic_load_explicit(&rc->sh->head, memory_order_acquire);

		/* The refresh's check (rc_index_ok()): a head that does not
		 * fit is not adopted, and the ring stays as full as it was. */
		if (RMPSC__LIKELY(rc_index_ok(rc, t, h)))
			rc->cached_head = h;
		else
			rmpsc__rc_index_bad(rc);
		fr = rc_cap(rc) - (t - rc->cached_head);
	}
	return fr;
}

static inline uint64_t rc_tail(const rmpsc__rcore *rc)
{
	/* The producer's own index (ptail: never read back from the shared
	 * part, which a shared ring's peer can write). */
	return rc->ptail;
}

/*
 * Publish the slots below @new_tail (E1), then look for a close that raced
 * the call (E7) and for sleepers (E4), behind one light barrier. 0, or
 * -EPIPE when a concurrent close ended the stream before this publication
 * (its slots are then never delivered).
 */
static RMPSC__ALWAYS_INLINE int rc_publish_as(rmpsc__rcore *rc, uint64_t new_tail, bool asym_known)
{
	rmpsc__rshared *sh = rc->sh; /* loaded once (rc_after_release()) */

	rc->ptail = new_tail;
	/* E1 release: publishes the slots below new_tail. */
	atomic_store_explicit(&sh->tail, new_tail, memory_order_release);
	/* E7, E4. @asym_known: the caller has seen the ring's barrier mode
	 * is RMPSC__BARRIER_ASYM, so the light barrier is a compiler barrier
	 * without the test. */
	if (asym_known)
		atomic_signal_fence(memory_order_seq_cst);
	else
		rmpsc__light_barrier(rc->barrier);
	if (RMPSC__UNLIKELY(atomic_load_explicit(&sh->closed, memory_order_relaxed) != RC_OPEN))
		return rmpsc__rc_publish_closed(rc, new_tail);
	rc_wake_check(rc);
	return 0;
}

static RMPSC__ALWAYS_INLINE int rc_publish(rmpsc__rcore *rc, uint64_t new_tail)
{
	return rc_publish_as(rc, new_tail, false);
}

static inline bool rc_prod_closed(const rmpsc__rcore *rc)
{
	/* Relaxed: an early answer (nothing is published after a close that
	 * was seen); the look after the publication decides (E7). */
	return atomic_load_explicit(&rc->sh->closed, memory_order_relaxed) != RC_OPEN;
}

/*
 * Claim up to @n (exactly @n with @exact) free slots. Returns the count, or
 * -EPIPE / -EAGAIN / -EINVAL (exact and n > capacity). n == 0 returns 0.
 */
static inline int rc_claim(rmpsc__rcore *rc, uint32_t n, bool exact)
{
	uint64_t fr;

	if (RMPSC__UNLIKELY(rc_prod_closed(rc)))
		return -EPIPE;
	if (RMPSC__UNLIKELY(n == 0))
		return 0;
	fr = rc_prod_free(rc, n);
	if (fr >= n)
		return (int)n;
	if (exact)
		return n > rc_cap(rc) ? -EINVAL : -EAGAIN;
	return fr ? (int)fr : -EAGAIN;
}

/*
 * A successful reserve (n == 0 included) replaces the earlier reservation; a
 * failed one leaves it as it was, still committable. The reservation is
 * tied to the tail it was made at, so a push (which moves tail and may
 * overwrite reserved slots) voids it without the push touching it: resv
 * shares the line the consumer polls, and a store there on every push would
 * move that line twice per push instead of once.
 */
static inline int rc_reserve(rmpsc__rcore *rc, uint32_t n, bool exact, rmpsc_span *s)
{
	int k = rc_claim(rc, n, exact);
	uint64_t t;

	if (k < 0)
		return k;
	t = rc_tail(rc);
	rc->resv = (uint64_t)k;
	rc->resv_pos = t;
	if (k == 0)
		rc_span_empty(s, t);
	else
		rc_span(rc, t, (uint32_t)k, s);
	return k;
}

/* A commit after a close publishes nothing and returns -EPIPE: the
 * consumer may already have ended its stream (E7). */
static inline int rc_commit(rmpsc__rcore *rc, uint32_t n)
{
	uint64_t t;

	if (n == 0)
		return rc_prod_closed(rc) ? -EPIPE : 0;
	t = rc_tail(rc);
	RMPSC__CHECK(n > rc->resv || rc->resv_pos != t, -EINVAL);
	if (RMPSC__UNLIKELY(rc_prod_closed(rc)))
		return -EPIPE;
	rc->resv -= n;
	rc->resv_pos = t + n;
	return rc_publish(rc, t + n);
}

static inline int rc_push_n(rmpsc__rcore *rc, const void *items, uint32_t n, bool exact)
{
	int k = rc_claim(rc, n, exact);

	if (k > 0) {
		uint64_t t = rc_tail(rc);
		int err;

		rc_copy_in(rc, t, items, (uint32_t)k);
		err = rc_publish(rc, t + (uint64_t)k);
		if (RMPSC__UNLIKELY(err))
			return err;
	}
	return k;
}

/* Single-element push for any element size (the exported push takes a
 * shorter path for 8-byte elements). */
static inline int rc_push1(rmpsc__rcore *rc, const void *item)
{
	int k = rc_claim(rc, 1, true);

	if (RMPSC__LIKELY(k > 0)) {
		uint64_t t = rc_tail(rc);

		rc_copy1(rc_slot(rc, t), item, rc->esz);
		return rc_publish(rc, t + 1);
	}
	return k;
}

/* ---- consumer side ------------------------------------------------------- */

static inline uint64_t rc_head(const rmpsc__rcore *rc)
{
	/* The consumer's own position (head or a little ahead, see rel_mask). */
	return rc->chead;
}

static RMPSC__ALWAYS_INLINE void rc_release(rmpsc__rcore *rc, uint64_t new_head)
{
	rc->chead = new_head;
	rc->phead = new_head;
	/* E2 release: hands the slots below new_head back to the producer. */
	atomic_store_explicit(&rc->sh->head, new_head, memory_order_release);
	rc_after_release(rc);
}

/* The single-element pops' release: publish every rel_mask + 1 elements,
 * or at once for a producer asleep; in between the head line stays in this
 * core's cache while a producer that found the ring full polls it. */
static RMPSC__ALWAYS_INLINE void rc_release_lazy(rmpsc__rcore *rc, uint64_t new_head)
{
	if ((new_head & rc->rel_mask) == 0 ||
	    RMPSC__UNLIKELY(atomic_load_explicit(&rc->sh->prod_waiters, memory_order_relaxed)))
		rc_release(rc, new_head);
	else
		rc->chead = new_head;
}

/* Publish what the single-element pops took and have not released yet:
 * first thing in every other consumer call, so that none returns with
 * elements held (the exact calls would otherwise wait for room or data
 * that the consumer itself holds back). */
static RMPSC__ALWAYS_INLINE void rc_flush(rmpsc__rcore *rc)
{
	if (RMPSC__UNLIKELY(rc->chead != rc->phead))
		rc_release(rc, rc->chead);
}

/* A close is running or done: the tail the consumer may use (E7), while
 * closing the last one read while open, then the close's final tail. */
static RMPSC__COLD uint64_t rc_cons_tail_closed(rmpsc__rcore *rc)
{
	/* E3 acquire: final_tail and the slots below it. */
	if (atomic_load_explicit(&rc->sh->closed, memory_order_acquire) == RC_CLOSED) {
		uint64_t f = atomic_load_explicit(&rc->sh->final_tail, memory_order_acquire);

		/* The refresh's check, as for tail. */
		if (RMPSC__LIKELY(rc_index_ok(rc, f, rc_head(rc))))
			rc->otail = f;
		else
			rmpsc__rc_index_bad(rc);
	}
	return rc->otail;
}

/* The single consumer's read of tail (E1 acquire, E7): tail, then closed,
 * both seq_cst (plain loads on x86-64, LDAR on arm64). True when the ring
 * was still open after the read: *@t is then a tail this consumer may use;
 * otherwise the caller takes the close's path. */
static RMPSC__ALWAYS_INLINE bool rc_cons_read_tail(const rmpsc__rcore *rc, uint64_t *t)
{
	const rmpsc__rshared *sh = rc->sh; /* loaded once (rc_after_release()) */

	*t = atomic_load_explicit(&sh->tail, memory_order_seq_cst);
	return RMPSC__LIKELY(atomic_load_explicit(&sh->closed, memory_order_seq_cst) == RC_OPEN);
}

/* The producer's tail as the single consumer may use it (E7): one that it
 * still sees the ring open after reading. */
static inline uint64_t rc_cons_tail(rmpsc__rcore *rc)
{
	uint64_t t;

	if (!rc_cons_read_tail(rc, &t))
		return rc_cons_tail_closed(rc);
	/* The refresh's check: a tail that does not fit is not used. */
	if (RMPSC__UNLIKELY(!rc_index_ok(rc, t, rc_head(rc)))) {
		rmpsc__rc_index_bad(rc);
		return rc->otail;
	}
	rc->otail = t;
	return t;
}

/* Committed unread elements, refreshing the cached tail only when it shows
 * fewer than @want. */
static inline uint64_t rc_cons_avail(rmpsc__rcore *rc, uint64_t want)
{
	uint64_t h = rc_head(rc);
	uint64_t av = rc->cached_tail - h;

	if (av < want) {
		rc->cached_tail = rc_cons_tail(rc);
		av = rc->cached_tail - h;
	}
	return av;
}

/* The ring looked empty: -EAGAIN, or -EPIPE once it is closed (not just
 * closing) and nothing is left below the close's final tail; otherwise the
 * count of elements the final tail covers that this consumer had not seen.
 * Out of line, so a waiting consumer's poll loop stays short and loads the
 * contended tail line once per poll. */
static RMPSC__COLD int64_t rc_cons_empty(rmpsc__rcore *rc)
{
	uint64_t av;

	rc_flush(rc);

	/* E3 acquire: pairs with the decider's store of CLOSED. */
	if (atomic_load_explicit(&rc->sh->closed, memory_order_acquire) != RC_CLOSED)
		return -EAGAIN;
	av = rc_cons_avail(rc, 1);
	return av ? (int64_t)av : -EPIPE;
}

/* Like rc_cons_avail(), with rc_cons_empty()'s answer for an empty ring. */
static inline int64_t rc_cons_avail_or_err(rmpsc__rcore *rc, uint64_t want)
{
	uint64_t av = rc_cons_avail(rc, want);

	return RMPSC__LIKELY(av) ? (int64_t)av : rc_cons_empty(rc);
}

/*
 * The consumer is locked out of its ordinary calls while nborrow is not 0:
 * borrows are outstanding (their elements are not the others' to read
 * again: -EINVAL), or a handler the library runs on the consumer's
 * elements is inside (RC_IN_HANDLER: a call from it would read or release
 * the elements being handed out, -EBUSY). One test covers both on every
 * path, and cached_tail kept at head sends the 8-byte fast pop to it.
 */
#define RC_IN_HANDLER (1u << 31)

/* A handler runs on this consumer's elements: its calls are refused. */
static inline bool rc_in_handler(const rmpsc__rcore *rc)
{
	return rc->nborrow & RC_IN_HANDLER;
}

static RMPSC__COLD int rc_locked(const rmpsc__rcore *rc)
{
	return rc_in_handler(rc) ? -EBUSY : -EINVAL;
}

/* Around a handler's calls (the loop's, borrow_fn's): refuse re-entry and
 * keep the fast pop out; the consumer's cached view is put back after, as
 * no consumer call can have changed it meanwhile. */
static inline uint64_t rc_handler_enter(rmpsc__rcore *rc)
{
	uint64_t saved = rc->cached_tail;

	rc->nborrow |= RC_IN_HANDLER;
	rc->cached_tail = rc_head(rc);
	return saved;
}

static inline void rc_handler_exit(rmpsc__rcore *rc, uint64_t saved)
{
	rc->nborrow &= ~RC_IN_HANDLER;
	rc->cached_tail = saved;
}

/* Take up to @n (exactly @n with @exact) elements: returns the count or
 * -EAGAIN / -EPIPE / -EINVAL (exact and n > capacity; borrows out) /
 * -EBUSY (inside a handler). */
static inline int rc_take(rmpsc__rcore *rc, uint32_t n, bool exact)
{
	int64_t av;

	rc_assert_sc(rc);
	rc_flush(rc);
	if (RMPSC__UNLIKELY(rc->nborrow))
		return rc_locked(rc);
	if (exact && RMPSC__UNLIKELY(n > rc_cap(rc)))
		return -EINVAL;
	if (RMPSC__UNLIKELY(n == 0))
		return 0;
	av = rc_cons_avail_or_err(rc, n);
	if (av < 0)
		return (int)av;
	if ((uint64_t)av >= n)
		return (int)n;
	return exact ? -EAGAIN : (int)av;
}

static inline int rc_readable(rmpsc__rcore *rc, uint32_t n, rmpsc_span *s)
{
	int k = rc_take(rc, n, false);

	if (k > 0)
		rc_span(rc, rc_head(rc), (uint32_t)k, s);
	else if (k == 0)
		rc_span_empty(s, rc_head(rc));
	return k;
}

static inline int rc_advance(rmpsc__rcore *rc, uint32_t n)
{
	rc_assert_sc(rc);
	rc_flush(rc);
	if (RMPSC__UNLIKELY(rc->nborrow))
		return rc_locked(rc);
	RMPSC__CHECK(rc_cons_avail(rc, n) < n, -EINVAL);
	if (n)
		rc_release(rc, rc_head(rc) + n);
	return 0;
}

/* pop_n, peek_n and skip in one: copy out when @dst, release when
 * @consume. */
static inline int rc_pop_n(rmpsc__rcore *rc, void *dst, uint32_t n, bool exact, bool consume)
{
	int k = rc_take(rc, n, exact);

	if (k > 0) {
		uint64_t h = rc_head(rc);

		if (dst)
			rc_copy_out(rc, h, dst, (uint32_t)k);
		if (consume)
			rc_release(rc, h + (uint64_t)k);
	}
	return k;
}

/* Single-element pop/peek for any element size. */
static inline int rc_pop1(rmpsc__rcore *rc, void *dst, bool consume)
{
	uint64_t h;

	rc_assert_sc(rc);
	rc_flush(rc);
	if (RMPSC__UNLIKELY(rc->nborrow))
		return rc_locked(rc);
	if (RMPSC__UNLIKELY(!rc_cons_avail(rc, 1))) {
		int64_t err = rc_cons_empty(rc);

		if (err < 0)
			return (int)err;
	}
	h = rc_head(rc);
	rc_copy1(dst, rc_slot(rc, h), rc->esz);
	if (consume)
		rc_release(rc, h + 1);
	return 0;
}

/* Take everything until the ring is seen empty or @max is reached. */
static inline int rc_drain(rmpsc__rcore *rc, void *dst, uint32_t max)
{
	uint32_t done = 0;

	rc_assert_sc(rc);
	rc_flush(rc);
	if (RMPSC__UNLIKELY(rc->nborrow))
		return rc_locked(rc);
	while (done < max) {
		uint64_t av = rc_cons_avail(rc, UINT64_MAX);
		uint32_t k;
		uint64_t h;

		if (!av)
			break;
		k = av < max - done ? (uint32_t)av : max - done;
		h = rc_head(rc);
		if (dst)
			rc_copy_out(rc, h, (unsigned char *)dst + (size_t)done * rc->esz, k);
		rc_release(rc, h + k);
		done += k;
	}
	return (int)done;
}

/* ---- borrowed reads with out-of-order commit ------------------------------ */

/*
 * A borrow hands out elements from brd on (never across the buffer end) and
 * a token, the free-running position of its first element. Commits may
 * come in any order; head only moves past a borrow once it and every
 * earlier one are committed. While borrows are outstanding, cached_tail is
 * kept equal to head, so the 8-byte fast pop falls through to the general
 * path, which refuses (-EINVAL) like every other consumer call: a borrowed
 * element is never read twice.
 */
#define RC_BORROW_DONE (1u << 31)

/*
 * A borrow token: the ring's tag above the low 32 bits of the run's
 * position. The tag is RC_SERIAL_BITS of the ring's serial (drawn from a
 * process-wide counter at creation and at every reset or reuse, never 0)
 * and, below them, the ring's id in its channel (0 for a ring of its own),
 * so a channel finds the ring a token names and every ring refuses the
 * tokens of the others: two rings alike only if their serials were drawn
 * a multiple of 2^20 - 1 draws apart (and the ids and positions match).
 * Outstanding runs lie less than the capacity (at most 2^30) past head, so
 * 32 bits recover the position.
 */
enum { RC_TOKEN_ID_BITS = 12, RC_SERIAL_BITS = 20, RC_SERIAL_MAX = (1u << RC_SERIAL_BITS) - 1 };

static inline uint32_t rc_token_tag(const rmpsc__rcore *rc)
{
	return (rc->serial << RC_TOKEN_ID_BITS) | rc->id;
}

static inline uint64_t rc_token(const rmpsc__rcore *rc, uint64_t pos)
{
	return ((uint64_t)rc_token_tag(rc) << 32) | (uint32_t)pos;
}

/* The ring id a token names (a channel's lookup; checked by the ring). */
static inline uint32_t rc_token_id(uint64_t token)
{
	return (uint32_t)(token >> 32) & ((1u << RC_TOKEN_ID_BITS) - 1);
}

RMPSC__INTERNAL int rmpsc__rc_borrow(rmpsc__rcore *rc, uint32_t n, rmpsc_borrow *out);
RMPSC__INTERNAL int rmpsc__rc_borrow_commit(rmpsc__rcore *rc, uint64_t token);
RMPSC__INTERNAL int rmpsc__rc_borrow_commit_all(rmpsc__rcore *rc);

/* ---- multi-consumer rings (SPMC, MPMC) ------------------------------------ */

/* Allocate the completion table (ring_core.c); 0 or -ENOMEM. */
RMPSC__INTERNAL int rmpsc__rc_mc_init(rmpsc__rcore *rc);

/* Published and not yet claimed, counted as rc_count_from() does (tail first: never
 * more than was unclaimed when tail was read); while a close's end is
 * undecided, a snapshot that may count a publication the close then
 * drops. */
static inline uint64_t rc_mc_len(const rmpsc__rcore *rc)
{
	return rc_count_from(rc, &rc->sh->claim);
}

/* Everything up to the decided end claimed (claimed runs may still be
 * being read). */
static inline bool rc_mc_is_drained(const rmpsc__rcore *rc)
{
	return rc_drained_at(rc, &rc->sh->claim);
}

/*
 * Claim up to @n published elements (M1): the count, with the first
 * position in *pos, or -EAGAIN (nothing to claim), -EPIPE (closed, nothing
 * left to claim). Lock-free: a failed CAS means another consumer claimed.
 * With @ahead nonzero, a ring holding at least 2 * @ahead unclaimed
 * elements gives @ahead of them whatever @n is (a consumer taking ahead,
 * mc.c); otherwise up to @n as usual.
 */
static inline int rc_mc_claim_ahead(rmpsc__rcore *rc, uint32_t n, uint32_t ahead,
				    uint64_t *pos)
{
	rc_assert_mc(rc);
	/* Acquire (and on CAS failure): claim is then never newer than a
	 * tail read after it, so t - c cannot underflow, except across a
	 * reuse of the ring (a claim of its new life, a tail of the old):
	 * the k > cap check below. */
	uint64_t c = atomic_load_explicit(&rc->sh->claim, memory_order_acquire);

	for (;;) {
		/* E1 acquire: the claimed slots' contents; seq_cst for E7.
		 * claim never passes a tail that was read, so t - c is the
		 * unclaimed count. */
		uint64_t t = atomic_load_explicit(&rc->sh->tail, memory_order_seq_cst);
		uint32_t cl = atomic_load_explicit(&rc->sh->closed, memory_order_seq_cst);
		uint64_t k;

		/* E7: a tail read while open is covered by any later close;
		 * once closed, the close's final tail; while the end is being
		 * decided, nothing (consumers share no "last open tail"). */
		if (RMPSC__UNLIKELY(cl != RC_OPEN)) {
			if (cl != RC_CLOSED)
				return -EAGAIN;
			/* E3: the seq_cst load that saw CLOSED is an acquire;
			 * final_tail's own acquire covers the case where that
			 * CLOSED was a reused ring's earlier life and this end
			 * is the new one's. */
			t = atomic_load_explicit(&rc->sh->final_tail, memory_order_acquire);
		}
		k = t - c;
		if (k == 0)
			return cl == RC_CLOSED ? -EPIPE : -EAGAIN;
		/* The refresh's check (rc_index_ok()): claim is never more than
		 * the capacity behind a tail, but c may be older than claim:
		 * other consumers claimed and released past it, and the
		 * producer refilled, while this one read tail. Only a claim
		 * that has not moved makes the tail the one that does not fit. */
		if (RMPSC__UNLIKELY(k > rc_cap(rc))) {
			uint64_t now = atomic_load_explicit(&rc->sh->claim, memory_order_acquire);

			if (now == c)
				return -EAGAIN;
			c = now;
			continue;
		}
		/* A backlog of at least twice @ahead: take @ahead at once. */
		if (ahead && k >= 2 * (uint64_t)ahead)
			k = ahead;
		else if (k > n)
			k = n;
		/* M1: acq_rel so that claims form one chain; failure reloads c. */
		if (atomic_compare_exchange_weak_explicit(&rc->sh->claim, &c, c + k,
							  memory_order_acq_rel,
							  memory_order_acquire)) {
			*pos = c;
			return (int)k;
		}
	}
}

/* rc_mc_claim_ahead() without taking ahead. */
static inline int rc_mc_claim(rmpsc__rcore *rc, uint32_t n, uint64_t *pos)
{
	return rc_mc_claim_ahead(rc, n, 0, pos);
}

/*
 * The run [pos, pos + k) is read: record it complete for the producer, which
 * releases runs in order as it collects them (M2), then wake a producer
 * sleeping for room (E4).
 */
static inline void rc_mc_complete(rmpsc__rcore *rc, uint64_t pos, uint32_t k)
{
	rc_assert_mc(rc);
	/* M2 release: the reads of the run before the producer's reuse. */
	atomic_store_explicit(rc_mc_entry(rc, pos), pos + k, memory_order_release);
	rc_after_release(rc);
}

/* ---- blocking calls (ring_core.c), for every owner of rings --------------- */

RMPSC__INTERNAL int rmpsc__rc_reserve_timed(rmpsc__rcore *rc, uint32_t n, rmpsc_span *out,
					    int64_t timeout_ns, const rmpsc_wait *w);
RMPSC__INTERNAL int rmpsc__rc_push_timed(rmpsc__rcore *rc, const void *item, int64_t timeout_ns,
					 const rmpsc_wait *w);
RMPSC__INTERNAL int rmpsc__rc_push_n_timed(rmpsc__rcore *rc, const void *items, uint32_t n,
					   int64_t timeout_ns, const rmpsc_wait *w);
RMPSC__INTERNAL int rmpsc__rc_readable_timed(rmpsc__rcore *rc, uint32_t n, rmpsc_span *out,
					     int64_t timeout_ns, const rmpsc_wait *w);
RMPSC__INTERNAL int rmpsc__rc_pop_timed(rmpsc__rcore *rc, void *item, int64_t timeout_ns,
					const rmpsc_wait *w);
RMPSC__INTERNAL int rmpsc__rc_pop_n_timed(rmpsc__rcore *rc, void *items, uint32_t n,
					  int64_t timeout_ns, const rmpsc_wait *w);

/* The single-element calls for any element size, out of line (ring_core.c). */
RMPSC__INTERNAL int rmpsc__rc_push1(rmpsc__rcore *rc, const void *item);
RMPSC__INTERNAL int rmpsc__rc_pop1(rmpsc__rcore *rc, void *item);

/*
 * The exported single-element push and pop take a path of their own for
 * 8-byte elements (u64, pointers, pool handles): inlined into a leaf
 * function with no stack frame whose every other case is a tail call. A
 * store per call matters here: x86 commits stores in order, so while a slot
 * or index store waits for its line to come back from the other core, each
 * stack store of a frame (and each spilled register) queues behind it.
 */
/* The 8-byte push with the asymmetric barrier (the usual case): its one
 * light barrier (E7, E4) is then a compiler barrier, so the mode is tested
 * up front; without membarrier the general path takes the real fence. Two
 * stores (slot, tail), nothing else written. */
typedef int (*rc_push1_fn)(rmpsc__rcore *rc, const void *item);
typedef int (*rc_pop1_fn)(rmpsc__rcore *rc, void *item);

/* @general: the general path every other case takes, as a tail call (a
 * constant: rmpsc__rc_push1, or a wrapper of an owner that maps its
 * codes, shm.c's). */
static RMPSC__ALWAYS_INLINE int rc_push1_fast_via(rmpsc__rcore *rc, const void *item,
						  rc_push1_fn general)
{
	uint64_t t;

	if (RMPSC__UNLIKELY(!(rc->barrier & RMPSC__BARRIER_ASYM)))
		return general(rc, item);
	t = rc_tail(rc);
	/* Closed, full as far as the cached head shows, or another size: the
	 * general path sorts out which (closed first). */
	if (RMPSC__UNLIKELY(rc->esz != 8 || rc_prod_closed(rc) ||
			    t - rc->cached_head >= rc_cap(rc)))
		return general(rc, item);
	memcpy(rc_slot(rc, t), item, 8);
	return rc_publish_as(rc, t + 1, true);
}

static RMPSC__ALWAYS_INLINE int rc_push1_fast(rmpsc__rcore *rc, const void *item)
{
	return rc_push1_fast_via(rc, item, rmpsc__rc_push1);
}

/* The single consumer saw @t open (rc_cons_read_tail()): cache it and keep
 * it as the tail it may use (E7). */
static RMPSC__ALWAYS_INLINE void rc_cons_saw(rmpsc__rcore *rc, uint64_t t)
{
	rc->cached_tail = t;
	rc->otail = t;
}

/* The one 8-byte take, of every single-consumer pop that inlines it
 * (rc_pop1_fast_as(), the MPSC pop's run): the element at @h, which the
 * consumer has seen published (below cached_tail), and the release of its
 * slot, batched (@lazy) or at once. The release comes last, so that a
 * caller whose own work comes first keeps its one call a tail call. */
static RMPSC__ALWAYS_INLINE void rc_take8(rmpsc__rcore *rc, void *item, uint64_t h, bool lazy)
{
	rc_assert_sc(rc);
	/* esz is 8 here: the slot's offset without a multiply. */
	memcpy(item, rc->data + (size_t)(h & rc->mask) * 8, 8);
	if (lazy)
		rc_release_lazy(rc, h + 1);
	else
		rc_release(rc, h + 1);
}

/*
 * The 8-byte pop. When nothing is left of what the consumer last saw, it
 * reads tail itself (rc_cons_read_tail(), E1 and E7) and, for an
 * empty ring with nothing to publish, answers -EAGAIN at once: an empty
 * poll reads three lines (the hot geometry line, the consumer's own, tail's)
 * and stores nothing, the caught-up consumer's refresh writes only its
 * private line, and neither builds a frame. Any other case (another size,
 * borrows out, a close begun, a head to publish before saying empty) is
 * the general path's. @lazy: batch the release (rc_release_lazy(), the try
 * pops), else publish at once (the timed pop: its caller may go on to
 * block elsewhere while a producer sleeps for the room it took).
 */
static RMPSC__ALWAYS_INLINE int rc_pop1_fast_via(rmpsc__rcore *rc, void *item, bool lazy,
						 rc_pop1_fn general)
{
	uint64_t h = rc_head(rc);

	if (RMPSC__UNLIKELY(rc->esz != 8))
		return general(rc, item);
	if (h == rc->cached_tail) {
		uint64_t t;

		/* Borrows and handlers keep cached_tail at head. */
		if (RMPSC__UNLIKELY(rc->nborrow))
			return general(rc, item);
		/* A close begun: the general path (rc_cons_tail_closed()). */
		if (!rc_cons_read_tail(rc, &t))
			return general(rc, item);
		if (t == h)
			return RMPSC__LIKELY(rc->phead == h) ? -EAGAIN : general(rc, item);
		/* The refresh's check: the general path keeps the last good tail. */
		if (RMPSC__UNLIKELY(!rc_index_ok(rc, t, h)))
			return general(rc, item);
		rc_cons_saw(rc, t);
	}
	rc_take8(rc, item, h, lazy);
	return 0;
}

static RMPSC__ALWAYS_INLINE int rc_pop1_fast_as(rmpsc__rcore *rc, void *item, bool lazy)
{
	return rc_pop1_fast_via(rc, item, lazy, rmpsc__rc_pop1);
}

/* rmpsc_ring_pop() and the MPSC pop's run: releases batched. */
static RMPSC__ALWAYS_INLINE int rc_pop1_fast(rmpsc__rcore *rc, void *item)
{
	return rc_pop1_fast_as(rc, item, true);
}

#endif /* RMPSC_RING_CORE_H */
