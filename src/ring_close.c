/* SPDX-License-Identifier: MIT */
/*
 * The close protocol of the ring core (E7 and E3 in ring_core.h's
 * Synchronization block): a close, from any thread, races the producer's
 * publications, and exactly one of them decides where the stream ends.
 *
 *             rmpsc__rc_close()            CAS by the first decider:
 *   RC_OPEN ------------------> RC_CLOSING ------------------------> RC_DECIDING
 *     ^        (seq_cst CAS)        |      a closer after its heavy        |
 *     |                             |      barrier, with the tail it      | store final_tail,
 *     |                             |      read; or the producer, whose   | then RC_CLOSED
 *     |                             |      publication found the close    | (release, E3)
 *     |                             |      undecided, with its own tail   v
 *     +------------------------------------------------------------- RC_CLOSED
 *        reset / reuse with neither side running (rc_set_position())
 *
 * A thread that needs the end and finds RC_DECIDING waits for the
 * decider's two stores (rc_final_tail()); nobody waits for a heavy
 * barrier. A publication is delivered if and only if final_tail covers it:
 * rmpsc__rc_publish_closed() tells the producer which.
 */
#include <sched.h>

#include "ring_core.h"

/* Decide the stream's end at @final (E7), unless someone already has:
 * CLOSING -> DECIDING, final_tail, CLOSED. Whether this call decided. */
static bool rc_decide(rmpsc__rcore *rc, uint64_t final)
{
	uint32_t c = RC_CLOSING;

	if (!atomic_compare_exchange_strong_explicit(&rc->sh->closed, &c, RC_DECIDING,
						     memory_order_seq_cst, memory_order_relaxed))
		return false;
	/* E3 release, on final_tail itself too: a reader that saw CLOSED of an
	 * earlier life of a reused ring may load this one. */
	atomic_store_explicit(&rc->sh->final_tail, final, memory_order_release);
	/* E3 release: final_tail, and the slots below it, for whoever sees CLOSED
	 * (a closer read them with seq_cst; a deciding producer wrote them). */
	atomic_store_explicit(&rc->sh->closed, RC_CLOSED, memory_order_release);
	return true;
}

/*
 * A shared ring (RC_F_SHM) whose peer was to decide the end and has not
 * within RC_SHM_DECIDE_NS: it died between its two stores, or stopped
 * there. The end is decided here instead, at the producer's own tail when
 * this is the producer, else at the shared tail (which the consumer checks
 * like any refresh). A value the protocol never writes latches the view
 * broken at once. Returns the end, or the shared tail when broken.
 */
static RMPSC__COLD uint64_t rc_end_stuck(rmpsc__rcore *rc, uint32_t seen)
{
	uint64_t final = rc->flags & RC_F_SHM_PRODUCER
				 ? rc_tail(rc)
				 : atomic_load_explicit(&rc->sh->tail, memory_order_seq_cst);

	if (seen > RC_CLOSED) {
		rmpsc__rc_index_bad(rc);
		return final;
	}
	atomic_store_explicit(&rc->sh->final_tail, final, memory_order_release);
	atomic_store_explicit(&rc->sh->closed, RC_CLOSED, memory_order_release); /* E3 */
	return final;
}

/* The decided end: when another thread is between its two stores in
 * rc_decide(), waits for the second one (a few instructions, unless that
 * thread is preempted right there; a shared ring's peer for at most
 * RC_SHM_DECIDE_NS, rc_end_stuck()). Only called once closed is DECIDING
 * or CLOSED. */
static uint64_t rc_final_tail(rmpsc__rcore *rc)
{
	uint64_t deadline = 0;
	uint32_t c;

	/* E3 acquire: final_tail is written before CLOSED. */
	while ((c = atomic_load_explicit(&rc->sh->closed, memory_order_acquire)) != RC_CLOSED) {
		if (RMPSC__UNLIKELY(rc->flags & RC_F_SHM)) {
			uint64_t now = rmpsc__now_ns();

			if (c > RC_CLOSED)
				return rc_end_stuck(rc, c);
			if (!deadline)
				deadline = now + RC_SHM_DECIDE_NS;
			else if (now >= deadline)
				return rc_end_stuck(rc, c);
		}
		sched_yield();
	}
	return atomic_load_explicit(&rc->sh->final_tail, memory_order_acquire);
}

int rmpsc__rc_publish_closed(rmpsc__rcore *rc, uint64_t new_tail)
{
	/* Undecided: this producer's tail is a valid end (E7), and one that
	 * covers this publication. */
	if (atomic_load_explicit(&rc->sh->closed, memory_order_relaxed) == RC_CLOSING &&
	    rc_decide(rc, new_tail))
		return 0;
	/* Decided by a closer: its tail read either saw this publication
	 * (final_tail == new_tail) or came before it. Positions are
	 * free-running, so compare by difference. */
	return (int64_t)(rc_final_tail(rc) - new_tail) >= 0 ? 0 : -EPIPE;
}

void rmpsc__rc_close(rmpsc__rcore *rc)
{
	struct rmpsc_notifier *n;
	uint32_t c = RC_OPEN;

	/* seq_cst: the store of E7's handshake. */
	if (!atomic_compare_exchange_strong_explicit(&rc->sh->closed, &c, RC_CLOSING,
						     memory_order_seq_cst, memory_order_acquire) &&
	    c == RC_CLOSED)
		return; /* an earlier close finished */
	/* This close or a concurrent one set CLOSING: decide the end unless the
	 * producer or the other closer does first. After the heavy barrier,
	 * every publication whose producer saw the ring open is below tail
	 * (E7); seq_cst against the consumers' open-tail reads. */
	rmpsc__heavy_barrier(rc->barrier); /* E7 */
	if (!rc_decide(rc, atomic_load_explicit(&rc->sh->tail, memory_order_seq_cst)))
		(void)rc_final_tail(rc); /* another thread is deciding */
	/* Unconditional: bumping both words after the store refuses any
	 * sleeper that read them before seeing the close (E5). */
	rmpsc__futex_wake_all_as(rc->cseq, rc->barrier);
	rmpsc__futex_wake_all_as(&rc->sh->prod_seq, rc->barrier);
	/* An event loop learns about the close like about data. */
	n = atomic_load_explicit(&rc->notifier, memory_order_acquire); /* E6 */
	if (n)
		rmpsc__notifier_kick(n);
}
