/* SPDX-License-Identifier: MIT */
/*
 * rmpsc_loop: the consumer loop every user writes, as a managed thread.
 * It waits with rmpsc_ring_readable_timed(), hands each segment to the
 * handler in place, advances, and ends when the ring is closed and drained
 * (-EPIPE), which is what stop() arranges: nothing committed is lost.
 *
 * Synchronization
 * ---------------
 * processed  written by the loop thread only (store-release L1 after each
 *            batch's handler calls); read with acquire (L1) by
 *            rmpsc_loop_processed() from any thread.
 * stopped    written by rmpsc_loop_stop() after the join (one stop at a
 *            time by contract); read by later stop/destroy calls, relaxed
 *            (the join already ordered everything).
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
	_Atomic uint32_t stopped;
	int exit_err; /* the loop's last error other than -EPIPE (diagnostics) */
};

static void *loop_main(void *arg)
{
	rmpsc_loop *l = arg;
	int64_t done = 0;

	for (;;) {
		rmpsc_span s;
		int k = rmpsc_ring_readable_timed(l->ring, UINT32_MAX, &s, -1, &l->wait);

		if (k == -ETIMEDOUT) /* RMPSC_WAIT_DEADLINE: wait again */
			continue;
		if (k < 0) {
			if (k != -EPIPE)
				l->exit_err = k;
			break;
		}
		l->fn(l->ctx, s.iov[0].iov_base, s.count[0]);
		if (s.nseg > 1)
			l->fn(l->ctx, s.iov[1].iov_base, s.count[1]);
		(void)rmpsc_ring_advance(l->ring, (uint32_t)k);
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
	if (atomic_load_explicit(&l->stopped, memory_order_relaxed))
		return 0;
	RMPSC__CHECK(pthread_equal(pthread_self(), l->tid), -EDEADLK);
	(void)rmpsc_ring_close(l->ring);
	pthread_join(l->tid, NULL);
	atomic_store_explicit(&l->stopped, 1, memory_order_relaxed);
	return 0;
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
