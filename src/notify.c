/* SPDX-License-Identifier: MIT */
/*
 * rmpsc_notifier: an eventfd plus two flags that keep signalling cheap.
 *
 * Synchronization
 * ---------------
 * pending  1 while an eventfd write is unconsumed. Set by signal with an
 *          acq_rel exchange (N1), cleared by consume with an acq_rel
 *          exchange (N1) after it has read the eventfd. Exchanges on one
 *          word are totally ordered, so either a signal's exchange comes
 *          after the consume's and writes the eventfd again (after the
 *          consume's read, which therefore cannot swallow it), or the
 *          consume's exchange reads the signal's 1 and, through N1, sees
 *          everything the signaller published before it (the ring's tail):
 *          the drain that follows finds it. A signaller whose eventfd write
 *          fails stores 0 back (release), so that the next signal writes
 *          again instead of coalescing into a signal that never happened.
 * armed    set by arm (relaxed store, then rmpsc__heavy_barrier(): N2),
 *          cleared by consume; read relaxed by signal_if_waiting behind
 *          rmpsc__light_barrier() (N2): the Dekker handshake of internal.h.
 *          Either the producer sees armed and signals, or the consumer's
 *          re-check after arming sees the producer's data.
 */
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "ringmpsc/notify.h"

#include "internal.h"

struct rmpsc_notifier {
	uint32_t magic;
	int fd;
	uint32_t barrier; /* RMPSC__BARRIER_* of N2's handshake */
	/* Written by every signaller while the consumer is away: own line. */
	alignas(RMPSC__CACHELINE) _Atomic uint32_t pending;
	alignas(RMPSC__CACHELINE) _Atomic uint32_t armed;
};

bool rmpsc__notifier_ok(const struct rmpsc_notifier *n)
{
	return RMPSC__HANDLE_IS(n, RMPSC__MAGIC_NOTIFIER);
}

#define NOTIFIER_CHECK(n) RMPSC__CHECK(!rmpsc__notifier_ok(n), -EBADF)

RMPSC__COLD int rmpsc_notifier_create(uint32_t flags, rmpsc_notifier **out)
{
	rmpsc_notifier *n;
	int fd;

	RMPSC__CHECK(!out, -EINVAL);
	*out = NULL;
	RMPSC__CHECK(flags != 0, -EINVAL);
	n = aligned_alloc(RMPSC__CACHELINE, sizeof *n);
	RMPSC__CHECK(!n, -ENOMEM);
	fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (fd < 0) {
		int err = -errno;

		free(n);
		return err;
	}
	memset(n, 0, sizeof *n);
	n->fd = fd;
	atomic_init(&n->pending, 0);
	atomic_init(&n->armed, 0);
	n->barrier = rmpsc__barrier_mode;
	n->magic = RMPSC__MAGIC_NOTIFIER;
	*out = n;
	return 0;
}

RMPSC__COLD void rmpsc_notifier_destroy(rmpsc_notifier *n)
{
	if (!rmpsc__notifier_ok(n))
		return;
	n->magic = RMPSC__MAGIC_DEAD;
	close(n->fd);
	free(n);
}

int rmpsc_notifier_fd(const rmpsc_notifier *n)
{
	NOTIFIER_CHECK(n);
	return n->fd;
}

static int notifier_write(rmpsc_notifier *n)
{
	uint64_t one = 1;

	/* EAGAIN only if the counter would overflow: it is then readable
	 * anyway, which is all a signal has to achieve. */
	if (write(n->fd, &one, sizeof one) == (ssize_t)sizeof one || errno == EAGAIN)
		return 1;
	return -EIO;
}

static int notifier_signal(rmpsc_notifier *n)
{
	int r;

	/* N1 */
	if (atomic_exchange_explicit(&n->pending, 1, memory_order_acq_rel))
		return 0;
	r = notifier_write(n);
	/* Nothing was signalled: later signals must not coalesce into it.
	 * Each one tries again (and reports -EIO while the descriptor stays
	 * broken). A signal that coalesced meanwhile is lost with this one,
	 * which the -EIO reports; a consume that cleared pending meanwhile
	 * only makes the next signal write once more than needed. */
	if (RMPSC__UNLIKELY(r < 0))
		atomic_store_explicit(&n->pending, 0, memory_order_release);
	return r;
}

void rmpsc__notifier_kick(rmpsc_notifier *n)
{
	(void)notifier_signal(n);
}

int rmpsc_notifier_signal(rmpsc_notifier *n)
{
	NOTIFIER_CHECK(n);
	return notifier_signal(n);
}

int rmpsc_notifier_signal_if_waiting(rmpsc_notifier *n)
{
	NOTIFIER_CHECK(n);
	rmpsc__light_barrier(n->barrier); /* N2 */
	if (!atomic_load_explicit(&n->armed, memory_order_relaxed))
		return 0;
	return notifier_signal(n);
}

int rmpsc_notifier_arm(rmpsc_notifier *n)
{
	NOTIFIER_CHECK(n);
	atomic_store_explicit(&n->armed, 1, memory_order_relaxed);
	rmpsc__heavy_barrier(n->barrier); /* N2 */
	return 0;
}

int64_t rmpsc_notifier_consume(rmpsc_notifier *n)
{
	uint64_t v;
	ssize_t got;

	NOTIFIER_CHECK(n);
	/* Relaxed: a stale armed only costs one extra signal. */
	atomic_store_explicit(&n->armed, 0, memory_order_relaxed);
	/* Read, then re-enable signalling (N1), then the caller drains. In the
	 * other order a signal between the two would set pending and write the
	 * eventfd, the read would swallow that write, and pending would stay
	 * set on an empty eventfd: every later signal would coalesce into a
	 * wake-up that never comes. */
	got = read(n->fd, &v, sizeof v);
	(void)atomic_exchange_explicit(&n->pending, 0, memory_order_acq_rel);
	if (got == (ssize_t)sizeof v)
		return (int64_t)(v > INT64_MAX ? INT64_MAX : v);
	/* Nothing pending, or a signaller between its exchange and its write:
	 * that write makes the fd readable again and wakes the loop once more. */
	if (got < 0 && errno == EAGAIN)
		return 0;
	return -EIO;
}

int rmpsc_notifier_epoll_add(rmpsc_notifier *n, int epfd, uint64_t data)
{
	struct epoll_event ev;

	NOTIFIER_CHECK(n);
	memset(&ev, 0, sizeof ev);
	ev.events = EPOLLIN | EPOLLET;
	ev.data.u64 = data;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, n->fd, &ev) < 0)
		return -errno;
	return 0;
}

int rmpsc_notifier_epoll_del(rmpsc_notifier *n, int epfd)
{
	struct epoll_event ev;

	NOTIFIER_CHECK(n);
	memset(&ev, 0, sizeof ev);
	if (epoll_ctl(epfd, EPOLL_CTL_DEL, n->fd, &ev) < 0)
		return -errno;
	return 0;
}
