/* SPDX-License-Identifier: MIT */
/*
 * test_shm_mux: one consumer taking from many producer processes through a
 * mux of shared rings (ringmpsc/shm.h, rmpsc_shm_mux_*). Real processes:
 * the test creates each ring as its consumer and forks producers, each of
 * which attaches the producer role of its own ring from the inherited
 * descriptor. Checked: every producer's values arrive in its order with no
 * loss or duplicate, each ring's end is reported once (-EPIPE closed,
 * -ECONNRESET killed, -EPROTO broken) with its index, the one wait wakes
 * for any ring, and the argument errors.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "test_util.h"
#include "ringmpsc.h"

#define SEC 1000000000ll
#define NPROD 4

static rmpsc_shm *ring_as(uint32_t role, uint32_t esz, uint32_t cap, uint32_t flags)
{
	rmpsc_shm_config cfg;
	rmpsc_shm *s = NULL;

	assert_ret(rmpsc_shm_config_init(&cfg, sizeof cfg), 0);
	cfg.role = role;
	cfg.elem_size = esz;
	cfg.capacity = cap;
	cfg.flags = flags;
	assert_ret(rmpsc_shm_create(&cfg, &s), 0);
	return s;
}

/* A forked producer: attach ring @fd as its producer and push @count
 * values (id << 48 | seq) in pushes and batches of random sizes; then
 * destroy (which closes), or stop where it is when @die_at is reached
 * (SIGKILL of itself: no close). Exits 0, or the failing step. */
static void producer_child(int fd, uint64_t id, uint64_t count, uint64_t die_at, unsigned seed)
{
	rmpsc_shm_config cfg;
	rmpsc_shm *p;
	uint64_t seq = 0, batch[64];

	rmpsc_shm_config_init(&cfg, sizeof cfg);
	cfg.role = RMPSC_SHM_PRODUCER;
	if (rmpsc_shm_attach(fd, &cfg, &p) != 0)
		_exit(2);
	while (seq < count) {
		uint32_t k = (uint32_t)(rand_r(&seed) % 64) + 1;
		int r;

		if (seq >= die_at)
			raise(SIGKILL);
		if (k > count - seq)
			k = (uint32_t)(count - seq);
		if (k == 1) {
			uint64_t v = id << 48 | seq;

			r = rmpsc_shm_push_timed(p, &v, 30 * SEC, NULL);
			if (r != 0)
				_exit(3);
			seq++;
			continue;
		}
		for (uint32_t i = 0; i < k; i++)
			batch[i] = id << 48 | (seq + i);
		r = rmpsc_shm_push_n_timed(p, batch, k, 30 * SEC, NULL);
		if (r <= 0)
			_exit(4);
		seq += (uint64_t)r;
	}
	rmpsc_shm_destroy(p);
	_exit(0);
}

struct fleet {
	rmpsc_shm *ring[NPROD];
	pid_t pid[NPROD];
	rmpsc_shm_mux *mux;
};

static void fleet_start(struct fleet *f, uint64_t count, const uint64_t *die_at, uint32_t flags)
{
	assert_ret(rmpsc_shm_mux_create(NPROD, &f->mux), 0);
	for (uint64_t i = 0; i < NPROD; i++) {
		f->ring[i] = ring_as(RMPSC_SHM_CONSUMER, 8, 256, i % 2 ? flags : 0);
		assert_ret(rmpsc_shm_mux_add(f->mux, f->ring[i]), (int)i);
	}
	for (uint64_t i = 0; i < NPROD; i++) {
		f->pid[i] = fork();
		assert_true(f->pid[i] >= 0);
		if (f->pid[i] == 0) {
			alarm(120);
			producer_child(rmpsc_shm_fd(f->ring[i]), i, count,
				       die_at ? die_at[i] : UINT64_MAX, (unsigned)(i + 1) * 7919u);
		}
	}
}

/* Take until every ring has ended: per producer its values in order and
 * no more than @count; each ring's end once. */
static void fleet_drain(struct fleet *f, uint64_t count, uint64_t got[NPROD], int end[NPROD])
{
	uint64_t buf[100];

	for (int i = 0; i < NPROD; i++) {
		got[i] = 0;
		end[i] = 1;
	}
	for (;;) {
		uint32_t idx = UINT32_MAX;
		int r = rmpsc_shm_mux_pop_n_timed(f->mux, buf, 1 + (uint32_t)(got[0] % 100), &idx,
						   60 * SEC, NULL);

		if (r == -ENOENT)
			break;
		assert_true(idx < NPROD);
		if (r < 0) {
			assert_int_equal(end[idx], 1); /* once */
			end[idx] = r;
			continue;
		}
		for (int k = 0; k < r; k++) {
			uint64_t id = buf[k] >> 48, seq = buf[k] & ((1ull << 48) - 1);

			assert_int_equal(id, idx);
			if (seq != got[idx])
				fail_msg("producer %u: got %llu, want %llu", idx,
					 (unsigned long long)seq, (unsigned long long)got[idx]);
			got[idx]++;
		}
		assert_true(got[idx] <= count);
	}
	assert_ret(rmpsc_shm_mux_count(f->mux), 0);
}

static void fleet_end(struct fleet *f, const int *want_status)
{
	for (int i = 0; i < NPROD; i++) {
		int st;

		assert_int_equal(waitpid(f->pid[i], &st, 0), f->pid[i]);
		if (want_status && want_status[i] < 0) {
			assert_true(WIFSIGNALED(st));
			assert_int_equal(WTERMSIG(st), -want_status[i]);
		} else {
			assert_true(WIFEXITED(st));
			assert_int_equal(WEXITSTATUS(st), 0);
		}
		rmpsc_shm_destroy(f->ring[i]);
	}
	rmpsc_shm_mux_destroy(f->mux);
}

/* Four producer processes, every value in each one's order, each ring's
 * -EPIPE once (rings alternate the default and the fenced barrier). */
static void test_shm_mux_when_producers_close_delivers_every_value_in_order(void **state)
{
	const uint64_t count = STRESS_SCALE(2000000, 300000, 100000);
	struct fleet f;
	uint64_t got[NPROD];
	int end[NPROD];

	(void)state;
	fleet_start(&f, count, NULL, RMPSC_SHM_F_FENCE);
	fleet_drain(&f, count, got, end);
	for (int i = 0; i < NPROD; i++) {
		assert_int_equal(got[i], count);
		assert_ret(end[i], -EPIPE);
	}
	fleet_end(&f, NULL);
}

/* Two producers kill themselves part way: their rings give exactly what
 * was committed, then -ECONNRESET; the others finish. */
static void test_shm_mux_when_producers_die_reports_econnreset_after_their_values(void **state)
{
	const uint64_t count = STRESS_SCALE(500000, 100000, 50000);
	const uint64_t die_at[NPROD] = { UINT64_MAX, count / 3, UINT64_MAX, count / 2 };
	const int status[NPROD] = { 0, -SIGKILL, 0, -SIGKILL };
	struct fleet f;
	uint64_t got[NPROD];
	int end[NPROD];

	(void)state;
	fleet_start(&f, count, die_at, 0);
	fleet_drain(&f, count, got, end);
	for (int i = 0; i < NPROD; i++) {
		if (die_at[i] == UINT64_MAX) {
			assert_int_equal(got[i], count);
			assert_ret(end[i], -EPIPE);
		} else {
			/* Every call before the kill (it comes between
			 * calls, at the first one at or past die_at): at
			 * least die_at values, less than one batch more. */
			assert_true(got[i] >= die_at[i] && got[i] < die_at[i] + 64);
			assert_ret(end[i], -ECONNRESET);
		}
	}
	fleet_end(&f, status);
}

/* The one wait: asleep on four empty rings, woken by whichever producer
 * pushes (each child pushes one value after a pause, in turn). */
static void test_shm_mux_when_any_ring_gets_data_wakes_the_one_wait(void **state)
{
	rmpsc_shm *ring[NPROD];
	rmpsc_shm_mux *m;
	pid_t pid;

	(void)state;
	assert_ret(rmpsc_shm_mux_create(NPROD, &m), 0);
	for (int i = 0; i < NPROD; i++) {
		ring[i] = ring_as(RMPSC_SHM_CONSUMER, 8, 16, 0);
		assert_ret(rmpsc_shm_mux_add(m, ring[i]), i);
	}
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		rmpsc_shm *p[NPROD];
		rmpsc_shm_config cfg;

		alarm(60);
		rmpsc_shm_config_init(&cfg, sizeof cfg);
		cfg.role = RMPSC_SHM_PRODUCER;
		for (int i = 0; i < NPROD; i++)
			if (rmpsc_shm_attach(rmpsc_shm_fd(ring[i]), &cfg, &p[i]) != 0)
				_exit(2);
		for (int i = NPROD - 1; i >= 0; i--) {
			uint64_t v = 100 + (uint64_t)i;
			struct timespec pause = {.tv_nsec = 30000000};

			nanosleep(&pause, NULL); /* the consumer is asleep by now, usually */
			if (rmpsc_shm_push(p[i], &v) != 0)
				_exit(3);
		}
		for (int i = 0; i < NPROD; i++)
			rmpsc_shm_destroy(p[i]);
		_exit(0);
	}
	/* Each ring's value, then its end (the child closes every ring once
	 * it has pushed them all: ends may come before other rings' values). */
	{
		int seen[NPROD] = { 0 }, ended[NPROD] = { 0 }, events = 0;

		while (events < 2 * NPROD) {
			uint64_t v = 0;
			uint32_t idx = 99;
			int r = rmpsc_shm_mux_pop_n_timed(m, &v, 1, &idx, 30 * SEC, NULL);

			assert_true(idx < NPROD);
			if (r == 1) {
				assert_int_equal(v, 100 + (uint64_t)idx);
				assert_int_equal(seen[idx]++, 0);
				assert_int_equal(ended[idx], 0);
			} else {
				assert_ret(r, -EPIPE);
				assert_int_equal(seen[idx], 1);
				assert_int_equal(ended[idx]++, 0);
			}
			events++;
		}
		assert_ret(rmpsc_shm_mux_pop_n_timed(m, &(uint64_t){ 0 }, 1, &(uint32_t){ 0 }, -1,
						     NULL),
			   -ENOENT);
	}
	{
		int st;

		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	for (int i = 0; i < NPROD; i++)
		rmpsc_shm_destroy(ring[i]);
	rmpsc_shm_mux_destroy(m);
}

/* A ring whose producer broke the protocol is reported -EPROTO and leaves
 * the mux; the other ring goes on. */
static void test_shm_mux_when_a_ring_breaks_reports_eproto_for_it_only(void **state)
{
	rmpsc_shm *c[2], *p[2];
	rmpsc_shm_config cfg;
	rmpsc_shm_mux *m;
	rmpsc_shm_header *h;
	uint64_t v = 7, out;
	uint32_t idx = 99;

	(void)state;
	assert_ret(rmpsc_shm_mux_create(2, &m), 0);
	rmpsc_shm_config_init(&cfg, sizeof cfg);
	cfg.role = RMPSC_SHM_PRODUCER;
	for (int i = 0; i < 2; i++) {
		c[i] = ring_as(RMPSC_SHM_CONSUMER, 8, 64, 0);
		assert_ret(rmpsc_shm_attach(rmpsc_shm_fd(c[i]), &cfg, &p[i]), 0);
		assert_ret(rmpsc_shm_mux_add(m, c[i]), i);
	}
	h = mmap(NULL, sizeof *h, PROT_READ | PROT_WRITE, MAP_SHARED, rmpsc_shm_fd(c[0]), 0);
	assert_true(h != MAP_FAILED);
	__atomic_store_n(&h->tail, h->head + 1000, __ATOMIC_RELEASE); /* past the capacity */
	assert_ret(rmpsc_shm_push(p[1], &v), 0);
	/* Ring 0 is looked at first and found broken. */
	assert_ret(rmpsc_shm_mux_pop_n(m, &out, 1, &idx), -EPROTO);
	assert_int_equal(idx, 0);
	assert_ret(rmpsc_shm_mux_count(m), 1);
	assert_ret(rmpsc_shm_mux_pop_n(m, &out, 1, &idx), 1);
	assert_int_equal(idx, 1);
	assert_int_equal(out, 7);
	assert_ret(rmpsc_shm_mux_pop_n(m, &out, 1, &idx), -EAGAIN);
	assert_ret(rmpsc_shm_mux_pop_n_timed(m, &out, 1, &idx, 0, NULL), -ETIMEDOUT);
	assert_ret(rmpsc_shm_mux_pop_n_timed(m, &out, 1, &idx, 2000000, NULL), -ETIMEDOUT);
	munmap(h, sizeof *h);
	for (int i = 0; i < 2; i++) {
		rmpsc_shm_destroy(p[i]);
		rmpsc_shm_destroy(c[i]);
	}
	rmpsc_shm_mux_destroy(m);
}

/* A live producer that began a close and never decided it (closed left
 * at 1, as a stopped or hostile one leaves it): the mux's wait decides it
 * after a second, delivers what was committed and reports the end, as the
 * ring's own timed calls do. */
static void test_shm_mux_when_a_close_is_left_undecided_decides_it(void **state)
{
	rmpsc_shm *c = ring_as(RMPSC_SHM_CONSUMER, 8, 16, 0), *p;
	rmpsc_shm_config cfg;
	rmpsc_shm_mux *m;
	rmpsc_shm_header *h;
	uint64_t v[4] = { 5, 6, 7, 0 };
	uint32_t idx = 99;

	(void)state;
	rmpsc_shm_config_init(&cfg, sizeof cfg);
	cfg.role = RMPSC_SHM_PRODUCER;
	assert_ret(rmpsc_shm_attach(rmpsc_shm_fd(c), &cfg, &p), 0);
	assert_ret(rmpsc_shm_push_n(p, v, 3), 3);
	h = mmap(NULL, sizeof *h, PROT_READ | PROT_WRITE, MAP_SHARED, rmpsc_shm_fd(c), 0);
	assert_true(h != MAP_FAILED);
	__atomic_store_n(&h->closed, 1u, __ATOMIC_SEQ_CST); /* CLOSING, never decided */
	assert_ret(rmpsc_shm_mux_create(1, &m), 0);
	assert_ret(rmpsc_shm_mux_add(m, c), 0);
	assert_ret(rmpsc_shm_mux_pop_n_timed(m, v, 4, &idx, 30 * SEC, NULL), 3);
	assert_int_equal(v[0], 5);
	assert_int_equal(v[2], 7);
	assert_ret(rmpsc_shm_mux_pop_n_timed(m, v, 4, &idx, 30 * SEC, NULL), -EPIPE);
	assert_int_equal(idx, 0);
	assert_ret(rmpsc_shm_mux_count(m), 0);
	munmap(h, sizeof *h);
	rmpsc_shm_mux_destroy(m);
	rmpsc_shm_destroy(p);
	rmpsc_shm_destroy(c);
}

/* A ring that ends while the mux sleeps leaves it with no registration of
 * the mux's left in its wake word (the ring is the caller's again). */
static void test_shm_mux_when_a_ring_ends_asleep_leaves_no_waiter_behind(void **state)
{
	rmpsc_shm *c = ring_as(RMPSC_SHM_CONSUMER, 8, 16, 0);
	rmpsc_shm_mux *m;
	rmpsc_shm_header *h;
	uint64_t v[4];
	uint32_t idx = 99;
	pid_t pid;
	int st;

	(void)state;
	assert_ret(rmpsc_shm_mux_create(2, &m), 0);
	assert_ret(rmpsc_shm_mux_add(m, c), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		rmpsc_shm_config cfg;
		rmpsc_shm *p;
		uint64_t x[2] = { 42, 43 };
		struct timespec pause = {.tv_nsec = 50000000};

		rmpsc_shm_config_init(&cfg, sizeof cfg);
		cfg.role = RMPSC_SHM_PRODUCER;
		if (rmpsc_shm_attach(rmpsc_shm_fd(c), &cfg, &p) != 0)
			_exit(2);
		nanosleep(&pause, NULL); /* the mux is asleep by now, usually */
		if (rmpsc_shm_push_n(p, x, 2) != 2)
			_exit(3);
		_exit(0); /* no destroy: gone without a close */
	}
	assert_ret(rmpsc_shm_mux_pop_n_timed(m, v, 4, &idx, 30 * SEC, NULL), 2);
	assert_int_equal(v[0], 42);
	assert_ret(rmpsc_shm_mux_pop_n_timed(m, v, 4, &idx, 30 * SEC, NULL), -ECONNRESET);
	assert_int_equal(idx, 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	h = mmap(NULL, sizeof *h, PROT_READ, MAP_SHARED, rmpsc_shm_fd(c), 0);
	assert_true(h != MAP_FAILED);
	assert_int_equal(__atomic_load_n(&h->cons_waiters, __ATOMIC_SEQ_CST), 0);
	munmap(h, sizeof *h);
	rmpsc_shm_mux_destroy(m);
	rmpsc_shm_destroy(c);
}

static void test_shm_mux_calls_when_misused_return_documented_codes(void **state)
{
	rmpsc_shm_mux *m = SENTINEL_OF(rmpsc_shm_mux);
	rmpsc_shm *c, *c4, *p;
	rmpsc_shm_config cfg;
	uint64_t v;
	uint32_t idx;

	(void)state;
	assert_ret(rmpsc_shm_mux_create(0, &m), -EINVAL);
	assert_null(m);
	assert_ret(rmpsc_shm_mux_create(RMPSC_SHM_MUX_MAX + 1, &m), -EINVAL);
	assert_ret(rmpsc_shm_mux_create(1, NULL), -EINVAL);
	assert_ret(rmpsc_shm_mux_create(RMPSC_SHM_MUX_MAX, &m), 0);
	rmpsc_shm_mux_destroy(m);
	assert_ret(rmpsc_shm_mux_create(1, &m), 0);

	assert_ret(rmpsc_shm_mux_count(NULL), -EBADF);
	assert_ret(rmpsc_shm_mux_count(FOREIGN(rmpsc_shm_mux)), -EBADF);
	assert_ret(rmpsc_shm_mux_add(NULL, NULL), -EBADF);
	assert_ret(rmpsc_shm_mux_pop_n(NULL, &v, 1, &idx), -EBADF);
	assert_ret(rmpsc_shm_mux_pop_n_timed(NULL, &v, 1, &idx, 0, NULL), -EBADF);
	assert_ret(rmpsc_shm_mux_remove(NULL, 0), -EBADF);
	/* Empty. */
	assert_ret(rmpsc_shm_mux_pop_n(m, &v, 1, &idx), -ENOENT);
	assert_ret(rmpsc_shm_mux_pop_n_timed(m, &v, 1, &idx, -1, NULL), -ENOENT);
	assert_ret(rmpsc_shm_mux_pop_n(m, NULL, 1, &idx), -EINVAL);
	assert_ret(rmpsc_shm_mux_pop_n(m, &v, 1, NULL), -EINVAL);

	c = ring_as(RMPSC_SHM_CONSUMER, 8, 16, 0);
	c4 = ring_as(RMPSC_SHM_CONSUMER, 4, 16, 0);
	rmpsc_shm_config_init(&cfg, sizeof cfg);
	cfg.role = RMPSC_SHM_PRODUCER;
	assert_ret(rmpsc_shm_attach(rmpsc_shm_fd(c), &cfg, &p), 0);
	assert_ret(rmpsc_shm_mux_add(m, p), -EBADF); /* a producer's handle */
	assert_ret(rmpsc_shm_mux_add(m, NULL), -EBADF);
	assert_ret(rmpsc_shm_mux_add(m, c), 0);
	assert_ret(rmpsc_shm_mux_add(m, c), -EINVAL); /* twice */
	assert_ret(rmpsc_shm_mux_add(m, c4), -EINVAL); /* another size */
	assert_ret(rmpsc_shm_mux_remove(m, 1), -ENOENT);
	assert_ret(rmpsc_shm_mux_pop_n(m, &v, 0, &idx), 0);
	assert_ret(rmpsc_shm_mux_pop_n(m, &v, 1, &idx), -EAGAIN);
	assert_ret(rmpsc_shm_mux_remove(m, 0), 0);
	assert_ret(rmpsc_shm_mux_remove(m, 0), -ENOENT);
	assert_ret(rmpsc_shm_mux_add(m, c4), 0); /* the size goes with the rings */
	{
		rmpsc_shm *c5 = ring_as(RMPSC_SHM_CONSUMER, 4, 16, 0);

		assert_ret(rmpsc_shm_mux_add(m, c5), -ENOSPC);
		rmpsc_shm_destroy(c5);
	}
	{
		rmpsc_wait bad;

		memset(&bad, 0xff, sizeof bad);
		bad.size = sizeof bad;
		assert_ret(rmpsc_shm_mux_pop_n_timed(m, &v, 1, &idx, 0, &bad), -EINVAL);
	}
	rmpsc_shm_mux_destroy(m);
	rmpsc_shm_mux_destroy(NULL);
	rmpsc_shm_destroy(p);
	rmpsc_shm_destroy(c);
	rmpsc_shm_destroy(c4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shm_mux_when_producers_close_delivers_every_value_in_order),
		cmocka_unit_test(test_shm_mux_when_producers_die_reports_econnreset_after_their_values),
		cmocka_unit_test(test_shm_mux_when_any_ring_gets_data_wakes_the_one_wait),
		cmocka_unit_test(test_shm_mux_when_a_ring_breaks_reports_eproto_for_it_only),
		cmocka_unit_test(test_shm_mux_when_a_close_is_left_undecided_decides_it),
		cmocka_unit_test(test_shm_mux_when_a_ring_ends_asleep_leaves_no_waiter_behind),
		cmocka_unit_test(test_shm_mux_calls_when_misused_return_documented_codes),
	};

	alarm(600);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
