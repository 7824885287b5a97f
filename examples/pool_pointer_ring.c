/* SPDX-License-Identifier: MIT */
/*
 * pool_pointer_ring: large messages without copying them through a ring.
 * Three producer threads each fill pool slabs with messages of 1..8000
 * bytes, set the payload length and push only the 4-byte handle through an
 * MPSC channel; the consumer reads each message in place, checks it and
 * frees the handle, which makes the slab available to the producers again.
 * Each thread allocates and frees through its own cache handle, and the
 * producers wait for a slab when all 64 are in flight. Prints what it
 * checked.
 *
 *   cc pool_pointer_ring.c $(pkg-config --cflags --libs ringmpsc) -pthread
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ringmpsc.h>

#define PRODUCERS 3
#define PER_PRODUCER 100000u
#define SLABS 64
#define SLAB_SIZE 8192

struct msg_head {
	uint32_t producer;
	uint32_t seq;
};

static rmpsc_pool *pool;
static rmpsc_mpsc *chan;

static void die(const char *what, int err)
{
	fprintf(stderr, "%s: %s\n", what, rmpsc_strerror(err));
	exit(1);
}

/* The message's bytes after its header, a function of where it came from. */
static unsigned char fill_byte(uint32_t producer, uint32_t seq, size_t k)
{
	return (unsigned char)(producer * 131u + seq * 7u + k);
}

static size_t msg_len(uint32_t seq)
{
	return sizeof(struct msg_head) + (seq * 2654435761u) % (SLAB_SIZE - 200);
}

static void *producer(void *arg)
{
	const uint32_t id = (uint32_t)(uintptr_t)arg;
	rmpsc_pool_cache *cache;
	rmpsc_producer *prod;
	int err;

	if ((err = rmpsc_pool_cache_create(pool, 16, &cache)) != 0)
		die("cache_create", err);
	if ((err = rmpsc_mpsc_register(chan, &prod)) < 0)
		die("register", err);
	for (uint32_t seq = 0; seq < PER_PRODUCER; seq++) {
		const size_t len = msg_len(seq);
		struct msg_head head = { id, seq };
		struct iovec slab;
		uint32_t h;

		/* Wait (futex sleep) while every slab is in flight. */
		if ((err = rmpsc_pool_cache_alloc_timed(cache, len, &h, -1, NULL)) != 0)
			die("alloc", err);
		if ((err = rmpsc_pool_slab(pool, h, &slab)) != 0)
			die("slab", err);
		unsigned char *p = slab.iov_base;
		memcpy(p, &head, sizeof head);
		for (size_t k = sizeof head; k < len; k++)
			p[k] = fill_byte(id, seq, k);
		/* Release: whoever reads the length sees the bytes. */
		if ((err = rmpsc_pool_set_len(pool, h, len)) != 0)
			die("set_len", err);
		if ((err = rmpsc_producer_push_timed(prod, &h, -1, NULL)) != 0)
			die("push", err);
	}
	rmpsc_mpsc_deregister(prod);
	rmpsc_pool_cache_destroy(cache);
	return NULL;
}

int main(void)
{
	rmpsc_pool_config pc;
	rmpsc_mpsc_config mc;
	rmpsc_pool_cache *cache;
	pthread_t th[PRODUCERS];
	uint32_t next[PRODUCERS] = { 0 };
	uint64_t bytes = 0, msgs = 0, outstanding;
	int err;

	rmpsc_pool_config_init(&pc, sizeof pc);
	pc.slab_size = SLAB_SIZE;
	pc.slab_count = SLABS;
	if ((err = rmpsc_pool_create(&pc, &pool)) != 0)
		die("pool_create", err);
	rmpsc_mpsc_config_init(&mc, sizeof mc);
	mc.elem_size = sizeof(uint32_t); /* a handle */
	mc.ring_capacity = 64;
	mc.producers = 0;
	mc.max_producers = PRODUCERS;
	if ((err = rmpsc_mpsc_create(&mc, &chan)) != 0)
		die("mpsc_create", err);
	if ((err = rmpsc_pool_cache_create(pool, 16, &cache)) != 0)
		die("cache_create", err);
	for (uintptr_t i = 0; i < PRODUCERS; i++)
		pthread_create(&th[i], NULL, producer, (void *)i);

	while (msgs < (uint64_t)PRODUCERS * PER_PRODUCER) {
		uint32_t hs[32];
		int n = rmpsc_mpsc_pop_n_timed(chan, hs, 32, -1, NULL);

		if (n < 0)
			die("pop", n);
		for (int i = 0; i < n; i++) {
			struct iovec v;
			struct msg_head head;

			/* Acquire: the producer's bytes are visible. */
			if ((err = rmpsc_pool_payload(pool, hs[i], &v)) != 0)
				die("payload", err);
			memcpy(&head, v.iov_base, sizeof head);
			if (head.producer >= PRODUCERS || head.seq != next[head.producer] ||
			    v.iov_len != msg_len(head.seq)) {
				fprintf(stderr, "out of order or wrong length\n");
				return 1;
			}
			for (size_t k = sizeof head; k < v.iov_len; k++)
				if (((unsigned char *)v.iov_base)[k] !=
				    fill_byte(head.producer, head.seq, k)) {
					fprintf(stderr, "corrupt message\n");
					return 1;
				}
			next[head.producer]++;
			bytes += v.iov_len;
			msgs++;
			if ((err = rmpsc_pool_cache_free(cache, hs[i])) != 0)
				die("free", err);
		}
	}
	for (int i = 0; i < PRODUCERS; i++)
		pthread_join(th[i], NULL);
	rmpsc_pool_cache_destroy(cache);
	rmpsc_mpsc_destroy(chan);
	/* Every slab came back: destroy without force succeeds. */
	if ((err = rmpsc_pool_destroy(pool, 0, &outstanding)) != 0) {
		fprintf(stderr, "destroy: %s, %" PRIu64 " slabs out\n", rmpsc_strerror(err),
			outstanding);
		return 1;
	}
	printf("pool_pointer_ring: %" PRIu64 " messages, %" PRIu64
	       " bytes read in place through %d slabs, in order per producer\n",
	       msgs, bytes, SLABS);
	return 0;
}
