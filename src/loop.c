/* SPDX-License-Identifier: MIT */
/*
 * rmpsc_loop: the consumer loop every user writes, as a managed thread.
 * It waits as rmpsc_ring_readable_timed() does, hands each segment to the
 * handler in place (the ring refuses the handler's own consumer calls,
 * -EBUSY), advances, and ends when the ring is closed and drained (-EPIPE),
 * which is what stop() arranges: nothing committed is lost. Any other end
 * is an error that stop() returns, with what is left still in the ring.
 * The ring is attached to one loop at a time (rmpsc__ring_loop_attach()).
 *
 * Synchronization
 * ---------------
 * processed  written by the loop thread only (store-release L1 after each
 *            batch's handler calls); read with acquire (L1) by
 *            rmpsc_loop_processed() from any thread.
 * exit_err   written by the loop thread before it ends; read after the
 *            join, or after seeing stopped (L2).
 * stopped    written by rmpsc_loop_stop() after the join (store-release
 *            L2; one stop at a time by contract); read by later stop and
 *            destroy calls (acquire L2), which then read exit_err.
 * The thread start and pthread_join order the rest (fn, ctx, wait copy,
 * ring).
 */
#include <pthread.h>
#include <stdlib.h>

#include "ringmpsc/loop.h"

#include "internal.h"

struct rmpsc_loop {
	uint32_t magic;
	rmpsc_ring *ring;
	rmpsc_loop_fn fn;
	void *ctx;
	rmpsc_wait wait;
	pthread_t tid;
	_Atomic int64_t processed; /* L1 */
	_Atomic uint32_t stopped; /* L2 */
	int exit_err; /* the error that ended the loop early, or 0 */
};

static void *loop_main(void *arg)
{
	rmpsc_loop *l = arg;
	int64_t done = 0;

	for (;;) {
		int k = rmpsc__ring_consume_timed(l->ring, l->fn, l->ctx, -1, &l->wait);

		if (k == -ETIMEDOUT) /* RMPSC_WAIT_DEADLINE: wait again */
			continue;
		if (k < 0) {
			/* -EPIPE: closed and drained, the normal end. Anything
			 * else ended the loop early; stop reports it. */
			if (k != -EPIPE)
				l->exit_err = k;
			break;
		}
		done += k;
		/* L1 release: the handler calls for these happen-before a reader
		 * that sees the count. */
		atomic_store_explicit(&l->processed, done, memory_order_release);
	}
	return NULL;
}

static bool loop_ok(const rmpsc_loop *l)
{
	return RMPSC__HANDLE_IS(l, RMPSC__MAGIC_LOOP);
}

RMPSC__COLD int rmpsc_loop_start_ring(rmpsc_ring *r, rmpsc_loop_fn fn, void *ctx,
				      const rmpsc_wait *w, rmpsc_loop **out)
{
	rmpsc_loop *l;
	int err;

	RMPSC__CHECK(!out, -EINVAL);
	*out = NULL;
	RMPSC__CHECK(rmpsc_ring_capacity(r) < 0, -EBADF);
	RMPSC__CHECK(!fn, -EINVAL);
	l = calloc(1, sizeof *l);
	RMPSC__CHECK(!l, -ENOMEM);
	if (w) {
		err = rmpsc_wait_validate(w);
		if (!err) {
			rmpsc_wait_init(&l->wait, sizeof l->wait, RMPSC_WAIT_BLOCK);
			memcpy(&l->wait, w, w->size < sizeof l->wait ? w->size : sizeof l->wait);
			l->wait.size = sizeof l->wait;
		}
	} else {
		rmpsc_wait_init(&l->wait, sizeof l->wait, RMPSC_WAIT_BLOCK);
		err = rmpsc_ring_get_wait(r, &l->wait);
	}
	/* Last of the checks: the ring becomes this loop's (or is refused:
	 * another loop's, borrows out, called from a handler on it). */
	if (!err)
		err = rmpsc__ring_loop_attach(r);
	if (err) {
		free(l);
		return err;
	}
	l->ring = r;
	l->fn = fn;
	l->ctx = ctx;
	atomic_init(&l->processed, 0);
	atomic_init(&l->stopped, 0);
	l->magic = RMPSC__MAGIC_LOOP;
	err = pthread_create(&l->tid, NULL, loop_main, l);
	if (err) {
		rmpsc__ring_loop_detach(r);
		l->magic = RMPSC__MAGIC_DEAD;
		free(l);
		return err == EAGAIN ? -EAGAIN : -ENOMEM;
	}
	*out = l;
	return 0;
}

int rmpsc_loop_stop(rmpsc_loop *l)
{
	RMPSC__CHECK(!loop_ok(l), -EBADF);
	if (atomic_load_explicit(&l->stopped, memory_order_acquire)) /* L2 */
		return l->exit_err;
	RMPSC__CHECK(pthread_equal(pthread_self(), l->tid), -EDEADLK);
	(void)rmpsc_ring_close(l->ring);
	pthread_join(l->tid, NULL);
	rmpsc__ring_loop_detach(l->ring);
	atomic_store_explicit(&l->stopped, 1, memory_order_release); /* L2 */
	return l->exit_err;
}

int64_t rmpsc_loop_processed(const rmpsc_loop *l)
{
	RMPSC__CHECK(!loop_ok(l), -EBADF);
	return atomic_load_explicit(&l->processed, memory_order_acquire); /* L1 */
}

RMPSC__COLD void rmpsc_loop_destroy(rmpsc_loop *l)
{
	if (!loop_ok(l))
		return;
	(void)rmpsc_loop_stop(l);
	l->magic = RMPSC__MAGIC_DEAD;
	free(l);
}
