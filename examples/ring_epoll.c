/* SPDX-License-Identifier: MIT */
/*
 * ring_epoll: one consumer thread sleeps in epoll_wait() on two sources at
 * once, an SPSC ring (through an rmpsc_notifier attached to it) and a
 * periodic timerfd, and uses no CPU between events. A producer thread sends
 * a few bursts of messages with pauses in between, then closes the ring.
 * The consumer prints what each wake-up brought and the timer ticks, drains
 * the ring until -EPIPE (closed and empty) and exits 0.
 *
 *   cc ring_epoll.c $(pkg-config --cflags --libs ringmpsc) -pthread
 */
#define _GNU_SOURCE /* epoll, timerfd, nanosleep, getrusage under -std=c11 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <ringmpsc.h>

#define TAG_RING 1
#define TAG_TIMER 2

static const unsigned bursts[] = { 3, 40, 1, 200, 12 }; /* messages per burst */
#define NBURSTS (sizeof bursts / sizeof bursts[0])
#define PAUSE_MS 40 /* between bursts */
#define TICK_MS 25  /* timer period */

/* A message: which burst it belongs to and its global sequence number. */
struct msg {
	uint32_t burst;
	uint32_t seq;
};

struct shared {
	rmpsc_ring *ring;
	rmpsc_notifier *notifier;
	uint32_t sent;
};

static void die(const char *what, int err)
{
	fprintf(stderr, "%s: %s\n", what, rmpsc_strerror(err));
	exit(1);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static void *producer(void *arg)
{
	struct shared *sh = arg;
	uint32_t seq = 0;

	for (uint32_t b = 0; b < NBURSTS; b++) {
		for (uint32_t i = 0; i < bursts[b]; i++) {
			const struct msg m = { b, seq };
			/* Every push that publishes signals the attached notifier;
			 * signals coalesce, so a burst costs about one write(2).
			 * push_timed waits (futex) if the ring is ever full. */
			int err = rmpsc_ring_push_timed(sh->ring, &m, -1, NULL);

			if (err)
				die("push", err);
			seq++;
		}
		sleep_ms(PAUSE_MS);
	}
	sh->sent = seq;
	/* A close publishes nothing, so it does not signal: wake the consumer
	 * once more so that it sees the end of the stream. */
	rmpsc_ring_close(sh->ring);
	rmpsc_notifier_signal(sh->notifier);
	return NULL;
}

/* Read everything committed and return the count; *closed becomes true
 * once the ring is closed and empty (-EPIPE: the end of the stream). */
static int drain(rmpsc_ring *r, uint32_t *expect, bool *closed)
{
	int total = 0;

	for (;;) {
		rmpsc_span s;
		int n = rmpsc_ring_readable(r, UINT32_MAX, &s);

		if (n == -EAGAIN)
			return total; /* empty for now: back to epoll_wait */
		if (n == -EPIPE) {
			*closed = true;
			return total;
		}
		if (n < 0)
			die("readable", n);
		/* Two segments when the run wraps the buffer end. */
		for (uint32_t seg = 0; seg < s.nseg; seg++) {
			const struct msg *m = s.iov[seg].iov_base;

			for (uint32_t i = 0; i < s.count[seg]; i++) {
				if (m[i].seq != *expect) {
					fprintf(stderr, "got #%u, expected #%u\n", m[i].seq,
						*expect);
					exit(1);
				}
				(*expect)++;
			}
		}
		if (total == 0) {
			const struct msg *first = s.iov[0].iov_base;

			printf(" burst %u from #%u", first->burst, first->seq);
		}
		rmpsc_ring_advance(r, (uint32_t)n);
		total += n;
	}
}

int main(void)
{
	rmpsc_ring_config cfg;
	struct shared sh = { 0 };
	struct itimerspec its = { { 0, TICK_MS * 1000000L }, { 0, TICK_MS * 1000000L } };
	struct timespec t0, t1;
	struct rusage ru;
	pthread_t tid;
	uint32_t expect = 0, wakeups = 0, ticks = 0;
	int epfd, tfd, err;
	bool open = true;

	rmpsc_ring_config_init(&cfg, sizeof cfg);
	cfg.capacity = 64; /* smaller than the big burst: the producer waits */
	cfg.elem_size = sizeof(struct msg);
	err = rmpsc_ring_create(&cfg, &sh.ring);
	if (err)
		die("ring create", err);
	err = rmpsc_notifier_create(0, &sh.notifier);
	if (err)
		die("notifier create", err);
	/* From now on every publishing push signals the notifier's eventfd. */
	err = rmpsc_ring_set_notifier(sh.ring, sh.notifier);
	if (err)
		die("set_notifier", err);

	/* One epoll set: the notifier (edge-triggered) and a periodic timer. */
	epfd = epoll_create1(EPOLL_CLOEXEC);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (epfd < 0 || tfd < 0 || timerfd_settime(tfd, 0, &its, NULL)) {
		perror("epoll/timerfd");
		return 1;
	}
	err = rmpsc_notifier_epoll_add(sh.notifier, epfd, TAG_RING);
	if (err)
		die("epoll_add", err);
	{
		struct epoll_event ev = { .events = EPOLLIN, .data.u64 = TAG_TIMER };

		if (epoll_ctl(epfd, EPOLL_CTL_ADD, tfd, &ev)) {
			perror("epoll_ctl");
			return 1;
		}
	}

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (pthread_create(&tid, NULL, producer, &sh)) {
		fprintf(stderr, "pthread_create failed\n");
		return 1;
	}

	while (open) {
		struct epoll_event ev[4];
		int k = epoll_wait(epfd, ev, 4, -1); /* sleeps: no CPU */

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			perror("epoll_wait");
			return 1;
		}
		for (int i = 0; i < k; i++) {
			if (ev[i].data.u64 == TAG_TIMER) {
				uint64_t expirations;

				if (read(tfd, &expirations, sizeof expirations) > 0) {
					ticks += (uint32_t)expirations;
					printf("tick %u\n", ticks);
				}
				continue;
			}
			/* The ring: consume the signal first, then drain. A push
			 * that lands after the consume signals again; one that
			 * landed before it is seen by this drain. */
			rmpsc_notifier_consume(sh.notifier);
			wakeups++;
			printf("wake-up %u:", wakeups);
			bool closed = false;
			int n = drain(sh.ring, &expect, &closed);

			printf("%s %d message%s%s\n", n ? "," : "", n, n == 1 ? "" : "s",
			       closed ? "; ring closed and drained" : "");
			open = !closed;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	pthread_join(tid, NULL);

	/* Detach before destroying the notifier (the producer has stopped). */
	rmpsc_ring_set_notifier(sh.ring, NULL);
	rmpsc_notifier_epoll_del(sh.notifier, epfd);
	getrusage(RUSAGE_SELF, &ru);
	printf("ringmpsc %s: %u of %u messages in order, %u wake-ups, %u ticks; "
	       "%.0f ms wall, %.1f ms CPU\n",
	       rmpsc_version_string(), expect, sh.sent, wakeups, ticks,
	       (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6,
	       (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
		       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3);

	close(tfd);
	close(epfd);
	rmpsc_notifier_destroy(sh.notifier);
	rmpsc_ring_destroy(sh.ring);
	return expect == sh.sent ? 0 : 1;
}
