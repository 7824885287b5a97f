/* SPDX-License-Identifier: MIT */
/*
 * ring_basic: a producer thread and a consumer thread move 1,000,000 u64
 * through an SPSC ring, the producer writing in place (reserve/commit), the
 * consumer reading in place (readable/advance). Prints what it checked.
 *
 *   cc ring_basic.c $(pkg-config --cflags --libs ringmpsc) -pthread
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

#include <ringmpsc.h>

#define COUNT 1000000u

static void *producer(void *arg)
{
	rmpsc_ring *r = arg;
	uint64_t next = 0;

	while (next < COUNT) {
		rmpsc_span s;
		int n = rmpsc_ring_reserve(r, 256, &s);

		if (n == -EAGAIN) {
			sched_yield();
			continue;
		}
		if (n < 0) {
			fprintf(stderr, "reserve: %s\n", rmpsc_strerror(n));
			exit(1);
		}
		if (next + (uint64_t)n > COUNT)
			n = (int)(COUNT - next);
		/* Two segments when the reservation wraps the buffer end. */
		for (uint32_t seg = 0; seg < s.nseg; seg++) {
			uint64_t *slot = s.iov[seg].iov_base;

			for (uint32_t i = 0; i < s.count[seg] && next < COUNT; i++)
				slot[i] = next++;
		}
		rmpsc_ring_commit(r, (uint32_t)n);
	}
	rmpsc_ring_close(r);
	return NULL;
}

int main(void)
{
	rmpsc_ring_config cfg;
	rmpsc_ring *r;
	pthread_t tid;
	uint64_t expect = 0, sum = 0;
	int err;

	rmpsc_ring_config_init(&cfg, sizeof cfg);
	cfg.capacity = 4096;
	cfg.elem_size = sizeof(uint64_t);
	err = rmpsc_ring_create(&cfg, &r);
	if (err) {
		fprintf(stderr, "create: %s\n", rmpsc_strerror(err));
		return 1;
	}
	pthread_create(&tid, NULL, producer, r);
	for (;;) {
		rmpsc_span s;
		int n = rmpsc_ring_readable(r, UINT32_MAX, &s);

		if (n == -EAGAIN) {
			sched_yield();
			continue;
		}
		if (n == -EPIPE)
			break; /* closed and everything read */
		for (uint32_t seg = 0; seg < s.nseg; seg++) {
			const uint64_t *slot = s.iov[seg].iov_base;

			for (uint32_t i = 0; i < s.count[seg]; i++) {
				if (slot[i] != expect) {
					fprintf(stderr, "got %" PRIu64 ", expected %" PRIu64 "\n",
						slot[i], expect);
					return 1;
				}
				sum += slot[i];
				expect++;
			}
		}
		rmpsc_ring_advance(r, (uint32_t)n);
	}
	pthread_join(tid, NULL);
	printf("ringmpsc %s: received %" PRIu64 " items in order, sum %" PRIu64 "\n",
	       rmpsc_version_string(), expect, sum);
	rmpsc_ring_destroy(r);
	return expect == COUNT ? 0 : 1;
}
