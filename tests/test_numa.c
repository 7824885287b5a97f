/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for include/ringmpsc/numa.h: rmpsc_numa_available(), the
 * topology (node_count, node_of_cpu, current_node, distance, node_cpus),
 * thread pinning (pin_cpu, pin_node), the placement of ring and channel
 * memory on the numa_node of their configurations (observed with
 * get_mempolicy(2) on the slot pages), the numa_node checks of every
 * config, and the promise that nothing here writes to stderr.
 *
 * The tests hold on any machine: on one without NUMA placement (a build
 * without libnuma, a forbidding seccomp profile) the header promises one
 * node, node 0, holding every CPU, and placement a silent no-op; the
 * observation of placement is then left out, not the test.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_util.h"
#include "test_core.h"

#include "ringmpsc/channel.h"
#include "ringmpsc/pool.h"
#include "ringmpsc/common.h"
#include "ringmpsc/numa.h"
#include "ringmpsc/ring.h"

/* get_mempolicy(2) through the raw system call: <numaif.h> is not there
 * in every build (RMPSC_WITH_NUMA=OFF needs no libnuma headers). */
#ifndef MPOL_F_NODE
#define MPOL_F_NODE 1
#endif
#ifndef MPOL_F_ADDR
#define MPOL_F_ADDR 2
#endif
enum { TN_MPOL_DEFAULT = 0, TN_MPOL_PREFERRED = 1 };
#define TN_MAXNODE 1024ul
#define TN_ULBITS (8 * sizeof(unsigned long))

/* ---- helpers ---------------------------------------------------------------- */

/* CPUs the kernel was configured with. */
static int ncpu_conf(void)
{
	long n = sysconf(_SC_NPROCESSORS_CONF);

	assert_true(n >= 1);
	return n > CPU_SETSIZE ? CPU_SETSIZE : (int)n;
}

/* The CPUs this process may use (the calling thread's mask; the tests
 * change only the masks of threads of their own, or restore it). */
static cpu_set_t process_mask(void)
{
	cpu_set_t s;

	CPU_ZERO(&s);
	assert_ret(sched_getaffinity(0, sizeof s, &s), 0);
	return s;
}

/* The CPUs of @node as a set, through rmpsc_numa_node_cpus(). */
static cpu_set_t node_set(int node)
{
	const int n = rmpsc_numa_node_cpus(node, NULL, 0);
	int *cpus;
	cpu_set_t s;

	assert_true(n >= 0);
	cpus = calloc((size_t)n + 1, sizeof *cpus);
	assert_non_null(cpus);
	assert_ret(rmpsc_numa_node_cpus(node, cpus, (uint32_t)n), n);
	CPU_ZERO(&s);
	for (int i = 0; i < n; i++)
		CPU_SET((size_t)cpus[i], &s);
	free(cpus);
	return s;
}

/* A thread's checks: cmocka asserts only on the main thread, so a thread
 * records its first failure and the main thread fails with it. */
struct tres {
	cpu_set_t allowed; /* the process's CPUs, read by the main thread */
	int ncpu;
	int excluded;      /* restricted-mask cases: a CPU outside the mask */
	int failed;
	char msg[256];
};

#define TFAIL(t, ...)                                                          \
	do {                                                                   \
		if (!(t)->failed) {                                            \
			(t)->failed = 1;                                       \
			snprintf((t)->msg, sizeof (t)->msg, __VA_ARGS__);      \
		}                                                              \
		return NULL;                                                   \
	} while (0)

static void run_thread(void *(*fn)(void *), struct tres *t)
{
	pthread_t th;

	assert_ret(pthread_create(&th, NULL, fn, t), 0);
	assert_ret(pthread_join(th, NULL), 0);
	if (t->failed)
		fail_msg("%s", t->msg);
}

static struct tres tres_make(void)
{
	struct tres t;

	memset(&t, 0, sizeof t);
	t.allowed = process_mask();
	t.ncpu = ncpu_conf();
	t.excluded = -1;
	return t;
}

/* get_mempolicy(2) of the page at @addr: its node (MPOL_F_NODE |
 * MPOL_F_ADDR), or its VMA's policy (MPOL_F_ADDR): 0 or -errno. */
static long page_node(const void *addr, int *node)
{
	*node = -1;
	if (syscall(SYS_get_mempolicy, node, NULL, 0ul, addr,
		    (unsigned long)(MPOL_F_NODE | MPOL_F_ADDR)) != 0)
		return -errno;
	return 0;
}

static long page_policy(const void *addr, int *mode, unsigned long *mask)
{
	*mode = -1;
	if (syscall(SYS_get_mempolicy, mode, mask, TN_MAXNODE, addr, (unsigned long)MPOL_F_ADDR) !=
	    0)
		return -errno;
	return 0;
}

/* Whether the page holding @addr is resident (mincore(2)). */
static bool page_resident(const void *addr)
{
	const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	unsigned char vec = 0;

	assert_ret(mincore((void *)((uintptr_t)addr & ~(page - 1)), 1, &vec), 0);
	return vec & 1;
}

/* Whether placement can be observed here: NUMA available and
 * get_mempolicy(2) permitted (EPERM under seccomp, ENOSYS without NUMA). */
static bool placement_observable(const void *addr)
{
	int node;
	long rc;

	if (!rmpsc_numa_available()) {
		print_message("placement not observed: NUMA not available here\n");
		return false;
	}
	rc = page_node(addr, &node);
	if (rc == -EPERM || rc == -ENOSYS) {
		print_message("placement not observed: get_mempolicy: %s\n", strerror((int)-rc));
		return false;
	}
	return true;
}

/* The page at @addr lies in a mapping placed on @node (preferred) and,
 * once faulted, on that node. */
static void assert_page_placed(const void *addr, int node)
{
	unsigned long mask[TN_MAXNODE / TN_ULBITS + 1];
	int mode, got;

	memset(mask, 0, sizeof mask);
	assert_ret(page_policy(addr, &mode, mask), 0);
	assert_ret(mode, TN_MPOL_PREFERRED);
	assert_true(mask[(size_t)node / TN_ULBITS] & (1ul << ((size_t)node % TN_ULBITS)));
	assert_ret(page_node(addr, &got), 0);
	assert_ret(got, node);
}

/* The slot pages of a core: first and last slot. */
static void assert_core_placed(tc_core *c, int node, bool prefaulted)
{
	const unsigned char *first = rc_slot(c, 0);
	const unsigned char *last = rc_slot(c, rc_slots(c) - 1);

	if (prefaulted) {
		/* PREFAULT: every page is in before the first push */
		assert_true(page_resident(first));
		assert_true(page_resident(last));
	}
	if (!placement_observable(first))
		return;
	assert_page_placed(first, node);
	assert_page_placed(last, node);
}

/* ---- stderr -------------------------------------------------------------------- */

/* Every call of the header, and creation with a numa_node, in the order a
 * fresh process makes them (the probe included). */
static void exercise_everything(void)
{
	const int ncpu = (int)sysconf(_SC_NPROCESSORS_CONF);
	const int nodes = rmpsc_numa_node_count();
	rmpsc_ring_config rc;
	rmpsc_mpsc_config mc;
	rmpsc_ring *r = NULL;
	rmpsc_mpsc *ch = NULL;
	int cpus[8];

	(void)rmpsc_numa_available();
	(void)rmpsc_features();
	for (int cpu = -1; cpu <= ncpu; cpu++)
		(void)rmpsc_numa_node_of_cpu(cpu);
	(void)rmpsc_numa_node_of_cpu(INT_MAX);
	(void)rmpsc_numa_current_node();
	for (int a = -1; a <= nodes; a++)
		for (int b = -1; b <= nodes; b++)
			(void)rmpsc_numa_distance(a, b);
	for (int n = -1; n <= nodes; n++) {
		(void)rmpsc_numa_node_cpus(n, NULL, 0);
		(void)rmpsc_numa_node_cpus(n, cpus, 8);
		(void)rmpsc_numa_node_cpus(n, NULL, 1);
		(void)rmpsc_numa_pin_node(n);
	}
	(void)rmpsc_numa_pin_node(INT_MAX);
	for (int cpu = -1; cpu <= ncpu; cpu++)
		(void)rmpsc_numa_pin_cpu(cpu);
	(void)rmpsc_numa_pin_cpu(INT_MAX);
	for (int n = -1; n <= nodes + 1; n++) {
		rmpsc_ring_config_init(&rc, sizeof rc);
		rc.numa_node = n;
		rc.flags = RMPSC_RING_F_PREFAULT;
		if (rmpsc_ring_create(&rc, &r) == 0) {
			uint64_t v = 1;

			(void)rmpsc_ring_push(r, &v);
			rmpsc_ring_destroy(r);
		}
		rmpsc_mpsc_config_init(&mc, sizeof mc);
		mc.numa_node = n;
		if (rmpsc_mpsc_create(&mc, &ch) == 0)
			rmpsc_mpsc_destroy(ch);
	}
}

/*
 * "Nothing here ever writes to stderr" (numa.h), including the first
 * call's probe (Debian 12's libnuma prints errors under a forbidding
 * seccomp profile): a fresh child process makes every call with fd 2 on
 * a temporary file, which must stay empty.
 */
static void test_numa_calls_when_made_first_write_nothing_to_stderr(void **state)
{
	FILE *f = tmpfile();
	struct stat st;
	pid_t pid;
	int status = 0;

	(void)state;
	assert_non_null(f);
	fflush(stderr);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (dup2(fileno(f), 2) < 0)
			_exit(3);
		exercise_everything();
		_exit(0);
	}
	assert_ret(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_ret(WEXITSTATUS(status), 0);
	assert_ret(fstat(fileno(f), &st), 0);
	if (st.st_size != 0) {
		char buf[512] = "";

		rewind(f);
		(void)!fread(buf, 1, sizeof buf - 1, f);
		fail_msg("%lld bytes on stderr: %s", (long long)st.st_size, buf);
	}
	fclose(f);
}

/*
 * The same in this process (the probe already made), around each call
 * with fd 2 redirected by dup/dup2.
 */
static void test_numa_calls_when_repeated_write_nothing_to_stderr(void **state)
{
	FILE *f = tmpfile();
	struct stat st;
	int saved;

	(void)state;
	assert_non_null(f);
	fflush(stderr);
	saved = dup(2);
	assert_true(saved >= 0);
	assert_true(dup2(fileno(f), 2) >= 0);
	{
		/* pinning changes this thread's mask: keep and restore it */
		cpu_set_t m;

		CPU_ZERO(&m);
		(void)sched_getaffinity(0, sizeof m, &m);
		exercise_everything();
		(void)sched_setaffinity(0, sizeof m, &m);
	}
	fflush(stderr);
	assert_true(dup2(saved, 2) >= 0);
	close(saved);
	assert_ret(fstat(fileno(f), &st), 0);
	assert_ret(st.st_size, 0);
	fclose(f);
}

/* ---- available, node_count, node_of_cpu, current_node ------------------------ */

/*
 * rmpsc_numa_available(): "1 (placement works), 0 (placement is a
 * no-op)", the same answer every time; common.h: without the
 * RMPSC_FEATURE_NUMA bit (no libnuma) it is 0.
 */
static void test_numa_available_when_called_is_0_or_1_and_stable(void **state)
{
	const int a = rmpsc_numa_available();

	(void)state;
	assert_true(a == 0 || a == 1);
	for (int i = 0; i < 100; i++)
		assert_ret(rmpsc_numa_available(), a);
	if (!(rmpsc_features() & RMPSC_FEATURE_NUMA))
		assert_ret(a, 0);
	if (!a)
		assert_ret(rmpsc_numa_node_count(), 1);
}

/*
 * node_count ">= 1"; node_of_cpu: every configured CPU has a node below
 * the count (node 0 where NUMA is not available).
 */
static void test_numa_node_of_cpu_when_cpu_configured_is_below_node_count(void **state)
{
	const int nodes = rmpsc_numa_node_count();
	const int ncpu = ncpu_conf();

	(void)state;
	assert_true(nodes >= 1);
	assert_ret(rmpsc_numa_node_count(), nodes);
	for (int cpu = 0; cpu < ncpu; cpu++) {
		const int n = rmpsc_numa_node_of_cpu(cpu);

		assert_true(n >= 0 && n < nodes);
		if (!rmpsc_numa_available())
			assert_ret(n, 0);
	}
}

/* node_of_cpu: "-EINVAL: cpu is negative or not a configured CPU". */
static void test_numa_node_of_cpu_when_not_configured_returns_einval(void **state)
{
	const int ncpu = ncpu_conf();

	(void)state;
	assert_ret(rmpsc_numa_node_of_cpu(-1), -EINVAL);
	assert_ret(rmpsc_numa_node_of_cpu(INT_MIN), -EINVAL);
	assert_ret(rmpsc_numa_node_of_cpu(ncpu), -EINVAL);
	assert_ret(rmpsc_numa_node_of_cpu(INT_MAX), -EINVAL);
}

/*
 * current_node: "the node, >= 0" (below the count), and the node of the
 * CPU the thread runs on: pinned to each CPU in turn, it equals
 * node_of_cpu(sched_getcpu()) and node_of_cpu(cpu).
 */
static void *current_node_thread(void *arg)
{
	struct tres *t = arg;

	for (int cpu = 0; cpu < t->ncpu; cpu++) {
		int rc, now, cur;

		if (!CPU_ISSET((size_t)cpu, &t->allowed))
			continue;
		rc = rmpsc_numa_pin_cpu(cpu);
		if (rc != 0)
			TFAIL(t, "pin_cpu(%d) = %d", cpu, rc);
		sched_yield();
		now = sched_getcpu();
		cur = rmpsc_numa_current_node();
		if (now != cpu)
			TFAIL(t, "pinned to %d, sched_getcpu() = %d", cpu, now);
		if (cur != rmpsc_numa_node_of_cpu(now) || cur != rmpsc_numa_node_of_cpu(cpu))
			TFAIL(t, "cpu %d: current_node %d, node_of_cpu %d", cpu, cur,
			      rmpsc_numa_node_of_cpu(cpu));
	}
	return NULL;
}

static void test_numa_current_node_when_pinned_is_node_of_that_cpu(void **state)
{
	struct tres t = tres_make();
	const int cur = rmpsc_numa_current_node();

	(void)state;
	assert_true(cur >= 0 && cur < rmpsc_numa_node_count());
	run_thread(current_node_thread, &t);
}

/* ---- distance ---------------------------------------------------------------- */

/*
 * distance: "10 for a node to itself; larger is farther" (so every other
 * pair is above 10), and symmetric on the machines this runs on.
 */
static void test_numa_distance_when_nodes_valid_is_10_to_itself_and_symmetric(void **state)
{
	const int nodes = rmpsc_numa_node_count();

	(void)state;
	for (int a = 0; a < nodes; a++) {
		assert_ret(rmpsc_numa_distance(a, a), 10);
		for (int b = 0; b < nodes; b++) {
			const int d = rmpsc_numa_distance(a, b);

			assert_ret(rmpsc_numa_distance(b, a), d);
			if (a != b)
				assert_true(d > 10);
		}
	}
}

/* distance: "-EINVAL: a node out of range", in either argument. */
static void test_numa_distance_when_node_out_of_range_returns_einval(void **state)
{
	const int nodes = rmpsc_numa_node_count();
	const int bad[] = { -1, INT_MIN, nodes, nodes + 1, INT_MAX };

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_ret(rmpsc_numa_distance(bad[i], 0), -EINVAL);
		assert_ret(rmpsc_numa_distance(0, bad[i]), -EINVAL);
		assert_ret(rmpsc_numa_distance(bad[i], bad[i]), -EINVAL);
	}
}

/* ---- node_cpus ------------------------------------------------------------------ */

/*
 * node_cpus: "the CPUs of a node, in increasing order": the lists of all
 * nodes partition the configured CPUs (each in exactly one list, the one
 * node_of_cpu names), and the count-only call (NULL, 0) gives the length.
 */
static void test_numa_node_cpus_when_all_nodes_listed_partition_configured_cpus(void **state)
{
	const int nodes = rmpsc_numa_node_count();
	const int ncpu = ncpu_conf();
	int *seen = calloc((size_t)ncpu, sizeof *seen);
	int *cpus = calloc((size_t)ncpu + 1, sizeof *cpus);
	int total = 0;

	(void)state;
	assert_non_null(seen);
	assert_non_null(cpus);
	for (int node = 0; node < nodes; node++) {
		const int n = rmpsc_numa_node_cpus(node, NULL, 0);

		assert_true(n >= 0 && n <= ncpu);
		assert_ret(rmpsc_numa_node_cpus(node, cpus, (uint32_t)ncpu + 1), n);
		for (int i = 0; i < n; i++) {
			assert_true(cpus[i] >= 0 && cpus[i] < ncpu);
			if (i > 0)
				assert_true(cpus[i] > cpus[i - 1]);
			assert_ret(seen[cpus[i]], 0);
			seen[cpus[i]] = 1;
			assert_ret(rmpsc_numa_node_of_cpu(cpus[i]), node);
		}
		total += n;
	}
	assert_ret(total, ncpu);
	for (int cpu = 0; cpu < ncpu; cpu++)
		assert_ret(seen[cpu], 1);
	free(seen);
	free(cpus);
}

/*
 * node_cpus: "the number of CPUs of the node (which may exceed max; only
 * max are written)": a short buffer gets exactly max entries, the rest of
 * it untouched, and the full count comes back.
 */
static void test_numa_node_cpus_when_max_below_count_writes_max_returns_count(void **state)
{
	const int n = rmpsc_numa_node_cpus(0, NULL, 0);
	int full[CPU_SETSIZE];
	int buf[CPU_SETSIZE + 1];

	(void)state;
	assert_true(n >= 1);
	assert_ret(rmpsc_numa_node_cpus(0, full, CPU_SETSIZE), n);
	for (int max = 0; max <= n; max++) {
		for (int i = 0; i <= n; i++)
			buf[i] = -7;
		assert_ret(rmpsc_numa_node_cpus(0, buf, (uint32_t)max), n);
		for (int i = 0; i < max; i++)
			assert_ret(buf[i], full[i]);
		for (int i = max; i <= n; i++)
			assert_ret(buf[i], -7);
	}
	/* a non-NULL buffer with max 0 is a count-only call too */
	buf[0] = -7;
	assert_ret(rmpsc_numa_node_cpus(0, buf, 0), n);
	assert_ret(buf[0], -7);
}

/* node_cpus: "-EINVAL: node out of range, or cpus NULL with max not 0". */
static void test_numa_node_cpus_when_bad_arguments_returns_einval(void **state)
{
	const int nodes = rmpsc_numa_node_count();
	const int bad[] = { -1, INT_MIN, nodes, INT_MAX };
	int buf[4] = { -7, -7, -7, -7 };

	(void)state;
	assert_ret(rmpsc_numa_node_cpus(0, NULL, 1), -EINVAL);
	assert_ret(rmpsc_numa_node_cpus(0, NULL, UINT32_MAX), -EINVAL);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_ret(rmpsc_numa_node_cpus(bad[i], NULL, 0), -EINVAL);
		assert_ret(rmpsc_numa_node_cpus(bad[i], buf, 4), -EINVAL);
	}
	for (size_t i = 0; i < 4; i++)
		assert_ret(buf[i], -7);
}

/* ---- pin_cpu ---------------------------------------------------------------------- */

/*
 * pin_cpu: "Pin the calling thread to one CPU": for each CPU the process
 * may use, 0, the thread's mask is exactly that CPU, and after a yield
 * the thread runs there.
 */
static void *pin_each_thread(void *arg)
{
	struct tres *t = arg;

	for (int cpu = 0; cpu < t->ncpu; cpu++) {
		cpu_set_t m;
		int rc;

		if (!CPU_ISSET((size_t)cpu, &t->allowed))
			continue;
		rc = rmpsc_numa_pin_cpu(cpu);
		if (rc != 0)
			TFAIL(t, "pin_cpu(%d) = %d", cpu, rc);
		CPU_ZERO(&m);
		if (sched_getaffinity(0, sizeof m, &m) != 0)
			TFAIL(t, "sched_getaffinity: %s", strerror(errno));
		if (CPU_COUNT(&m) != 1 || !CPU_ISSET((size_t)cpu, &m))
			TFAIL(t, "pin_cpu(%d): mask of %d CPUs", cpu, CPU_COUNT(&m));
		sched_yield();
		if (sched_getcpu() != cpu)
			TFAIL(t, "pin_cpu(%d): runs on %d", cpu, sched_getcpu());
	}
	return NULL;
}

static void test_numa_pin_cpu_when_cpu_allowed_runs_only_there(void **state)
{
	struct tres t = tres_make();
	cpu_set_t after;

	(void)state;
	run_thread(pin_each_thread, &t);
	/* the pins were the thread's own: this thread's mask is unchanged */
	after = process_mask();
	assert_true(CPU_EQUAL(&after, &t.allowed));
}

/* pin_cpu: "-EINVAL: cpu is not a configured CPU"; the mask stays. */
static void *pin_bad_thread(void *arg)
{
	struct tres *t = arg;
	const int bad[] = { -1, INT_MIN, t->ncpu, CPU_SETSIZE, INT_MAX };
	cpu_set_t m;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		const int rc = rmpsc_numa_pin_cpu(bad[i]);

		if (rc != -EINVAL)
			TFAIL(t, "pin_cpu(%d) = %d, expected -EINVAL", bad[i], rc);
	}
	CPU_ZERO(&m);
	(void)sched_getaffinity(0, sizeof m, &m);
	if (!CPU_EQUAL(&m, &t->allowed))
		TFAIL(t, "a refused pin changed the mask");
	return NULL;
}

static void test_numa_pin_cpu_when_cpu_not_configured_returns_einval(void **state)
{
	struct tres t = tres_make();

	(void)state;
	run_thread(pin_bad_thread, &t);
}

/*
 * A process restricted to some of its CPUs (as by taskset): the main
 * thread's mask loses one CPU, a thread started then inherits it, runs
 * @fn and the main thread's mask is restored. Skipped with one CPU.
 */
/*
 * The CPUs a process may use are the affinity it was started with (read by
 * the library when it is loaded): so the restricted cases run in a child
 * started with one CPU fewer, as taskset would start it. The child is this
 * program again (exec), running @fn in a thread with the restricted mask
 * as its "allowed" set and the dropped CPU as "excluded".
 */
static const char *self_path;

enum { CHILD_PIN_OUTSIDE = 1, CHILD_PIN_NODE = 2 };

static void *pin_outside_thread(void *arg);
static void *pin_node_thread(void *arg);

static int child_main(int which, int excluded)
{
	struct tres t = tres_make();
	pthread_t th;

	t.excluded = excluded;
	if (pthread_create(&th, NULL, which == CHILD_PIN_OUTSIDE ? pin_outside_thread
								  : pin_node_thread,
			   &t) != 0)
		return 2;
	pthread_join(th, NULL);
	if (t.failed) {
		fprintf(stderr, "%s\n", t.msg);
		return 1;
	}
	return 0;
}

static void run_restricted(int which, struct tres *t)
{
	const cpu_set_t full = t->allowed;
	cpu_set_t restricted = full;
	char w[16], x[16];
	int status = 0;
	pid_t pid;

	if (CPU_COUNT(&full) < 2) {
		print_message("one usable CPU: no mask to restrict\n");
		skip();
	}
	for (int cpu = t->ncpu - 1; cpu >= 0; cpu--)
		if (CPU_ISSET((size_t)cpu, &full)) {
			t->excluded = cpu;
			break;
		}
	CPU_CLR((size_t)t->excluded, &restricted);
	snprintf(w, sizeof w, "%d", which);
	snprintf(x, sizeof x, "%d", t->excluded);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (sched_setaffinity(0, sizeof restricted, &restricted) != 0)
			_exit(3);
		execl(self_path, self_path, "--restricted-child", w, x, (char *)NULL);
		_exit(4);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/*
 * pin_cpu: "-EINVAL: cpu is ... not one this process may use (its
 * affinity mask or cpuset)": a CPU outside the process's mask is refused
 * and the thread stays inside the mask.
 */
static void *pin_outside_thread(void *arg)
{
	struct tres *t = arg;
	const int rc = rmpsc_numa_pin_cpu(t->excluded);
	cpu_set_t m;

	CPU_ZERO(&m);
	(void)sched_getaffinity(0, sizeof m, &m);
	if (rc != -EINVAL)
		TFAIL(t,
		      "pin_cpu(%d) outside the process's affinity mask = %d, expected -EINVAL "
		      "(thread mask now has %d CPUs, CPU %d %s)",
		      t->excluded, rc, CPU_COUNT(&m), t->excluded,
		      CPU_ISSET((size_t)t->excluded, &m) ? "included" : "excluded");
	if (!CPU_EQUAL(&m, &t->allowed))
		TFAIL(t, "a refused pin changed the mask");
	return NULL;
}

static void test_numa_pin_cpu_when_outside_process_mask_returns_einval(void **state)
{
	struct tres t = tres_make();

	(void)state;
	run_restricted(CHILD_PIN_OUTSIDE, &t);
}

/* ---- pin_node ------------------------------------------------------------------- */

/*
 * pin_node: "Pin the calling thread to the CPUs of one node (all of them
 * that this process may use)": the mask becomes node_cpus(node) within
 * the process's CPUs, for every node that has one of them.
 */
static void *pin_node_thread(void *arg)
{
	struct tres *t = arg;
	const int nodes = rmpsc_numa_node_count();

	for (int node = 0; node < nodes; node++) {
		cpu_set_t want, m, ns = node_set(node);
		int rc;

		CPU_AND(&want, &ns, &t->allowed);
		rc = rmpsc_numa_pin_node(node);
		if (CPU_COUNT(&want) == 0) {
			if (rc != -EINVAL)
				TFAIL(t, "pin_node(%d) without usable CPUs = %d", node, rc);
			continue;
		}
		if (rc != 0)
			TFAIL(t, "pin_node(%d) = %d", node, rc);
		CPU_ZERO(&m);
		(void)sched_getaffinity(0, sizeof m, &m);
		if (!CPU_EQUAL(&m, &want))
			TFAIL(t,
			      "pin_node(%d): mask of %d CPUs, expected node_cpus within the "
			      "process's mask: %d CPUs%s",
			      node, CPU_COUNT(&m), CPU_COUNT(&want),
			      t->excluded >= 0 && CPU_ISSET((size_t)t->excluded, &m)
				      ? " (includes the CPU outside the process's mask)"
				      : "");
		sched_yield();
		if (!CPU_ISSET((size_t)sched_getcpu(), &want))
			TFAIL(t, "pin_node(%d): runs on CPU %d", node, sched_getcpu());
		if (rmpsc_numa_current_node() != node)
			TFAIL(t, "pin_node(%d): current_node %d", node, rmpsc_numa_current_node());
	}
	return NULL;
}

static void test_numa_pin_node_when_node_valid_pins_to_its_cpus(void **state)
{
	struct tres t = tres_make();
	cpu_set_t n0 = node_set(0), want;

	(void)state;
	/* node 0 holds every CPU where NUMA is not available */
	if (!rmpsc_numa_available())
		assert_ret(CPU_COUNT(&n0), ncpu_conf());
	CPU_AND(&want, &n0, &t.allowed);
	assert_true(CPU_COUNT(&want) >= 1 || rmpsc_numa_node_count() > 1);
	run_thread(pin_node_thread, &t);
}

/* The same in a process restricted to part of its CPUs: only the usable
 * ones of the node. */
static void test_numa_pin_node_when_process_mask_restricted_pins_only_usable(void **state)
{
	struct tres t = tres_make();

	(void)state;
	run_restricted(CHILD_PIN_NODE, &t);
}

/* pin_node: "-EINVAL: node out of range"; the mask stays. */
static void *pin_node_bad_thread(void *arg)
{
	struct tres *t = arg;
	const int nodes = rmpsc_numa_node_count();
	const int bad[] = { -1, INT_MIN, nodes, nodes + 1, INT_MAX };
	cpu_set_t m;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		const int rc = rmpsc_numa_pin_node(bad[i]);

		if (rc != -EINVAL)
			TFAIL(t, "pin_node(%d) = %d, expected -EINVAL", bad[i], rc);
	}
	CPU_ZERO(&m);
	(void)sched_getaffinity(0, sizeof m, &m);
	if (!CPU_EQUAL(&m, &t->allowed))
		TFAIL(t, "a refused pin changed the mask");
	return NULL;
}

static void test_numa_pin_node_when_node_out_of_range_returns_einval(void **state)
{
	struct tres t = tres_make();

	(void)state;
	run_thread(pin_node_bad_thread, &t);
}

/* ---- placement of memory ------------------------------------------------------- */

enum { TN_CAP = 4096 }; /* 32 KiB of 8-byte slots: several pages */

static rmpsc_ring *ring_on(int32_t node, uint32_t flags)
{
	rmpsc_ring_config cfg;
	rmpsc_ring *r = SENTINEL_OF(rmpsc_ring);

	assert_ret(rmpsc_ring_config_init(&cfg, sizeof cfg), 0);
	cfg.capacity = TN_CAP;
	cfg.numa_node = node;
	cfg.flags = flags;
	assert_ret(rmpsc_ring_create(&cfg, &r), 0);
	return assert_handle(r, SENTINEL_OF(rmpsc_ring));
}

/*
 * ring.h numa_node: "the ring's memory is placed there (preferred) where
 * NUMA is available"; with RMPSC_RING_F_PREFAULT every page is faulted in
 * at creation, after the placement, so it is already on the node.
 */
static void test_numa_ring_when_node_given_with_prefault_slots_are_on_node(void **state)
{
	rmpsc_ring *r = ring_on(0, RMPSC_RING_F_PREFAULT);

	(void)state;
	assert_core_placed(tc_ring_core(r), 0, true);
	ring_push_seq(r, 1, TN_CAP);
	ring_pop_seq(r, 1, TN_CAP);
	rmpsc_ring_destroy(r);
}

/* The same without prefault: the pages the pushes fault in land on the
 * node. */
static void test_numa_ring_when_node_given_without_prefault_pushed_slots_are_on_node(
	void **state)
{
	rmpsc_ring *r = ring_on(0, 0);

	(void)state;
	ring_push_seq(r, 1, TN_CAP);
	assert_core_placed(tc_ring_core(r), 0, true);
	ring_pop_seq(r, 1, TN_CAP);
	rmpsc_ring_destroy(r);
}

/* RMPSC_NODE_ANY: no placement, the default policy (and prefault still
 * faults every page in). */
static void test_numa_ring_when_node_any_slots_keep_default_policy(void **state)
{
	rmpsc_ring *r = ring_on(RMPSC_NODE_ANY, RMPSC_RING_F_PREFAULT);
	const unsigned char *last = rc_slot(tc_ring_core(r), TN_CAP - 1);
	unsigned long mask[TN_MAXNODE / TN_ULBITS + 1];
	int mode;

	(void)state;
	assert_true(page_resident(last));
	if (placement_observable(last)) {
		assert_ret(page_policy(last, &mode, mask), 0);
		assert_ret(mode, TN_MPOL_DEFAULT);
	}
	rmpsc_ring_destroy(r);
}

/*
 * pool.h numa_node: a tier's region is placed on the node (or, with
 * RMPSC_NODE_LOCAL, the creating thread's), before any page is touched:
 * prefaulted, every slab page is already there; without prefault, the
 * pages a slab's owner writes land there. tier_info reports the node.
 */
static void check_pool_on(int32_t node, uint32_t flags)
{
	rmpsc_pool_config cfg;
	rmpsc_pool *p = NULL;
	rmpsc_pool_region rg;
	uint32_t h[2];
	const int want = node == RMPSC_NODE_LOCAL ? rmpsc_numa_current_node() : node;

	assert_ret(rmpsc_pool_config_init(&cfg, sizeof cfg), 0);
	cfg.slab_size = 4096;
	cfg.slab_count = 16;
	cfg.numa_node = node;
	cfg.flags = flags;
	assert_ret(rmpsc_pool_create(&cfg, &p), 0);
	assert_ret(rmpsc_pool_tier_info(p, 0, &rg), 0);
	assert_int_equal(rg.node, rmpsc_numa_available() ? want : RMPSC_NODE_ANY);
	assert_ret(rmpsc_pool_alloc_n(p, 1, h, 2), 2);
	for (int k = 0; k < 2; k++) {
		struct iovec v;

		assert_ret(rmpsc_pool_slab(p, h[k], &v), 0);
		if (!(flags & RMPSC_POOL_F_PREFAULT))
			memset(v.iov_base, 0x5a, v.iov_len);
		assert_true(page_resident(v.iov_base));
		if (placement_observable(v.iov_base))
			assert_page_placed(v.iov_base, want);
	}
	/* the last slab's page too (prefaulted: before anyone wrote it) */
	if ((flags & RMPSC_POOL_F_PREFAULT) && placement_observable(rg.base)) {
		const unsigned char *last = (const unsigned char *)rg.base + rg.stride * 15;

		assert_true(page_resident(last));
		assert_page_placed(last, want);
	}
	assert_ret(rmpsc_pool_free_n(p, h, 2), 2);
	assert_ret(rmpsc_pool_destroy(p, 0, NULL), 0);
}

static void test_numa_pool_when_node_given_slabs_are_on_node(void **state)
{
	(void)state;
	check_pool_on(0, RMPSC_POOL_F_PREFAULT);
	check_pool_on(0, 0);
}

static void test_numa_pool_when_node_local_slabs_are_on_the_creating_threads_node(void **state)
{
	(void)state;
	check_pool_on(RMPSC_NODE_LOCAL, RMPSC_POOL_F_PREFAULT);
	check_pool_on(RMPSC_NODE_LOCAL, 0);
}

/*
 * channel.h numa_node: "every producer ring is placed there, as for
 * rings": an MPSC channel's producer rings (prefaulted and not).
 */
static void check_mpsc_on(uint32_t flags)
{
	rmpsc_mpsc_config cfg;
	rmpsc_mpsc *ch = SENTINEL_OF(rmpsc_mpsc);
	rmpsc_producer *p;

	assert_ret(rmpsc_mpsc_config_init(&cfg, sizeof cfg), 0);
	cfg.ring_capacity = TN_CAP;
	cfg.producers = 1;
	cfg.numa_node = 0;
	cfg.flags = flags;
	assert_ret(rmpsc_mpsc_create(&cfg, &ch), 0);
	assert_handle(ch, SENTINEL_OF(rmpsc_mpsc));
	p = producer_new(ch, false, 0);
	if (!(flags & RMPSC_MPSC_F_PREFAULT))
		seq_put(producer_put1, p, 1, TN_CAP);
	assert_core_placed(tc_producer_core(p), 0, true);
	rmpsc_mpsc_destroy(ch);
}

static void test_numa_mpsc_when_node_given_rings_are_on_node(void **state)
{
	(void)state;
	check_mpsc_on(RMPSC_MPSC_F_PREFAULT);
	check_mpsc_on(0);
}

/* rmpsc_mc_config numa_node: "every ring is placed there, as for rings":
 * an MPMC channel's producer ring. */
static void test_numa_mpmc_when_node_given_rings_are_on_node(void **state)
{
	rmpsc_mc_config cfg;
	rmpsc_mpmc *ch = SENTINEL_OF(rmpsc_mpmc);
	rmpsc_producer *p;

	(void)state;
	assert_ret(rmpsc_mc_config_init(&cfg, sizeof cfg, 0), 0);
	cfg.ring_capacity = TN_CAP;
	cfg.producers = 1;
	cfg.numa_node = 0;
	cfg.flags = RMPSC_MPSC_F_PREFAULT;
	assert_ret(rmpsc_mpmc_create(&cfg, &ch), 0);
	assert_handle(ch, SENTINEL_OF(rmpsc_mpmc));
	p = producer_new(ch, true, 0);
	assert_core_placed(tc_producer_core(p), 0, true);
	rmpsc_mpmc_destroy(ch);
}

/*
 * channel.h numa_node: "RMPSC_NODE_ANY: each producer's ring goes to the
 * node of the thread that registers it": registration from a thread pinned
 * to each usable CPU in turn, rings made up front (moved) and new ones.
 */
struct reg_on {
	rmpsc_mpsc *ch;
	int cpu;
	int node;
	rmpsc_producer *p[2];
};

static void *register_pinned(void *arg)
{
	struct reg_on *r = arg;

	if (rmpsc_numa_pin_cpu(r->cpu) == 0) {
		r->node = rmpsc_numa_current_node();
		(void)rmpsc_mpsc_register(r->ch, &r->p[0]); /* made up front */
		(void)rmpsc_mpsc_register(r->ch, &r->p[1]); /* new */
	}
	return NULL;
}

static void test_numa_mpsc_when_node_any_rings_go_to_registering_thread(void **state)
{
	const cpu_set_t usable = process_mask();

	(void)state;
	for (int cpu = 0; cpu < ncpu_conf(); cpu++) {
		rmpsc_mpsc_config cfg;
		struct reg_on r = { .cpu = cpu, .node = -1 };
		pthread_t th;

		if (!CPU_ISSET((size_t)cpu, &usable))
			continue;
		assert_ret(rmpsc_mpsc_config_init(&cfg, sizeof cfg), 0);
		cfg.ring_capacity = TN_CAP;
		cfg.producers = 1;
		cfg.max_producers = 2;
		assert_ret(rmpsc_mpsc_create(&cfg, &r.ch), 0);
		assert_ret(pthread_create(&th, NULL, register_pinned, &r), 0);
		assert_ret(pthread_join(th, NULL), 0);
		assert_non_null(r.p[0]);
		assert_non_null(r.p[1]);
		assert_ret(r.node, rmpsc_numa_node_of_cpu(cpu));
		for (int i = 0; i < 2; i++) {
			for (uint64_t v = 0; v < TN_CAP; v++)
				assert_ret(rmpsc_producer_push(r.p[i], &v), 0);
			if (rmpsc_numa_available())
				assert_core_placed(tc_producer_core(r.p[i]), r.node, false);
		}
		rmpsc_mpsc_destroy(r.ch);
	}
}

/* ---- numa_node checks of the configs ------------------------------------------- */

/* What a config with numa_node @node must get: -EINVAL below -1, and, where
 * NUMA is available, at or above the node count; accepted elsewhere. */
static int want_for_node(int32_t node)
{
	if (node < RMPSC_NODE_ANY)
		return -EINVAL;
	if (node >= rmpsc_numa_node_count() && rmpsc_numa_available())
		return -EINVAL;
	return 0;
}

/* A create's return for numa_node @node, the node named on failure. */
static void node_ret(const char *what, int32_t node, int got, int want)
{
	if (got != want)
		fail_msg("%s create, numa_node %d: %d (%s), expected %d (%s)", what, (int)node, got,
			 errname(got), want, errname(want));
}

static const int32_t node_cases[] = { INT32_MIN, -2, -1, 0, 1, 2, 63, 64, 1023, 1024, INT32_MAX };
#define N_NODE_CASES (sizeof node_cases / sizeof node_cases[0])

/*
 * ring.h rmpsc_ring_create: "-EINVAL: ... numa_node below -1 (or, where
 * NUMA is available, not below rmpsc_numa_node_count())"; a node only
 * recorded elsewhere is accepted.
 */
static void test_numa_ring_config_when_node_beyond_count_einval_only_if_available(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_NODE_CASES; i++) {
		rmpsc_ring_config cfg;
		rmpsc_ring *r = SENTINEL_OF(rmpsc_ring);
		const int want = want_for_node(node_cases[i]);

		assert_ret(rmpsc_ring_config_init(&cfg, sizeof cfg), 0);
		cfg.capacity = 64;
		cfg.numa_node = node_cases[i];
		cfg.flags = RMPSC_RING_F_PREFAULT;
		node_ret("ring", node_cases[i], rmpsc_ring_create(&cfg, &r), want);
		if (want == 0) {
			uint64_t v = 5, got = 0;

			assert_handle(r, SENTINEL_OF(rmpsc_ring));
			assert_ret(rmpsc_ring_push(r, &v), 0);
			assert_ret(rmpsc_ring_pop(r, &got), 0);
			assert_int_equal(got, 5);
			rmpsc_ring_destroy(r);
		} else {
			assert_null(r);
		}
	}
	/* this machine's case: one node */
	if (rmpsc_numa_node_count() == 1)
		assert_ret(want_for_node(1), rmpsc_numa_available() ? -EINVAL : 0);
}

/* rmpsc_mpsc_create: "-EINVAL: ... numa_node below -1 (or, where NUMA is
 * available, not below rmpsc_numa_node_count())". */
static void test_numa_mpsc_config_when_node_beyond_count_einval_only_if_available(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_NODE_CASES; i++) {
		rmpsc_mpsc_config cfg;
		rmpsc_mpsc *ch = SENTINEL_OF(rmpsc_mpsc);
		const int want = want_for_node(node_cases[i]);

		assert_ret(rmpsc_mpsc_config_init(&cfg, sizeof cfg), 0);
		cfg.ring_capacity = 64;
		cfg.producers = 1;
		cfg.numa_node = node_cases[i];
		node_ret("mpsc", node_cases[i], rmpsc_mpsc_create(&cfg, &ch), want);
		if (want == 0) {
			assert_handle(ch, SENTINEL_OF(rmpsc_mpsc));
			rmpsc_mpsc_destroy(ch);
		} else {
			assert_null(ch);
		}
	}
}

/* The same numa_node rule for rmpsc_mc_config, SPMC and MPMC ("bad
 * config", the numa_node of rmpsc_mc_config as for rings). */
static void test_numa_mc_config_when_node_beyond_count_einval_only_if_available(void **state)
{
	(void)state;
	for (int spmc = 0; spmc <= 1; spmc++)
		for (size_t i = 0; i < N_NODE_CASES; i++) {
			rmpsc_mc_config cfg;
			const int want = want_for_node(node_cases[i]);
			int rc;

			assert_ret(rmpsc_mc_config_init(&cfg, sizeof cfg, spmc), 0);
			cfg.ring_capacity = 64;
			cfg.numa_node = node_cases[i];
			if (spmc) {
				rmpsc_spmc *ch = SENTINEL_OF(rmpsc_spmc);

				rc = rmpsc_spmc_create(&cfg, &ch);
				node_ret("spmc", node_cases[i], rc, want);
				if (rc == 0)
					rmpsc_spmc_destroy(assert_handle(ch,
									 SENTINEL_OF(rmpsc_spmc)));
				else
					assert_null(ch);
			} else {
				rmpsc_mpmc *ch = SENTINEL_OF(rmpsc_mpmc);

				cfg.producers = 1;
				rc = rmpsc_mpmc_create(&cfg, &ch);
				node_ret("mpmc", node_cases[i], rc, want);
				if (rc == 0)
					rmpsc_mpmc_destroy(assert_handle(ch,
									 SENTINEL_OF(rmpsc_mpmc)));
				else
					assert_null(ch);
			}
		}
}

int main(int argc, char **argv)
{
	self_path = argv[0];
	if (argc == 4 && strcmp(argv[1], "--restricted-child") == 0)
		return child_main(atoi(argv[2]), atoi(argv[3]));
	const struct CMUnitTest tests[] = {
		/* first: the fork happens before any thread of these tests */
		cmocka_unit_test(test_numa_calls_when_made_first_write_nothing_to_stderr),
		cmocka_unit_test(test_numa_calls_when_repeated_write_nothing_to_stderr),
		cmocka_unit_test(test_numa_available_when_called_is_0_or_1_and_stable),
		cmocka_unit_test(test_numa_node_of_cpu_when_cpu_configured_is_below_node_count),
		cmocka_unit_test(test_numa_node_of_cpu_when_not_configured_returns_einval),
		cmocka_unit_test(test_numa_current_node_when_pinned_is_node_of_that_cpu),
		cmocka_unit_test(test_numa_distance_when_nodes_valid_is_10_to_itself_and_symmetric),
		cmocka_unit_test(test_numa_distance_when_node_out_of_range_returns_einval),
		cmocka_unit_test(
			test_numa_node_cpus_when_all_nodes_listed_partition_configured_cpus),
		cmocka_unit_test(test_numa_node_cpus_when_max_below_count_writes_max_returns_count),
		cmocka_unit_test(test_numa_node_cpus_when_bad_arguments_returns_einval),
		cmocka_unit_test(test_numa_pin_cpu_when_cpu_allowed_runs_only_there),
		cmocka_unit_test(test_numa_pin_cpu_when_cpu_not_configured_returns_einval),
		cmocka_unit_test(test_numa_pin_cpu_when_outside_process_mask_returns_einval),
		cmocka_unit_test(test_numa_pin_node_when_node_valid_pins_to_its_cpus),
		cmocka_unit_test(test_numa_pin_node_when_process_mask_restricted_pins_only_usable),
		cmocka_unit_test(test_numa_pin_node_when_node_out_of_range_returns_einval),
		cmocka_unit_test(test_numa_ring_when_node_given_with_prefault_slots_are_on_node),
		cmocka_unit_test(
			test_numa_ring_when_node_given_without_prefault_pushed_slots_are_on_node),
		cmocka_unit_test(test_numa_ring_when_node_any_slots_keep_default_policy),
		cmocka_unit_test(test_numa_pool_when_node_given_slabs_are_on_node),
		cmocka_unit_test(test_numa_pool_when_node_local_slabs_are_on_the_creating_threads_node),
		cmocka_unit_test(test_numa_mpsc_when_node_given_rings_are_on_node),
		cmocka_unit_test(test_numa_mpmc_when_node_given_rings_are_on_node),
		cmocka_unit_test(test_numa_mpsc_when_node_any_rings_go_to_registering_thread),
		cmocka_unit_test(
			test_numa_ring_config_when_node_beyond_count_einval_only_if_available),
		cmocka_unit_test(
			test_numa_mpsc_config_when_node_beyond_count_einval_only_if_available),
		cmocka_unit_test(
			test_numa_mc_config_when_node_beyond_count_einval_only_if_available),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
