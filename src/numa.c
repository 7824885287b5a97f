/* SPDX-License-Identifier: MIT */
/*
 * NUMA topology, thread pinning and memory placement (ringmpsc/numa.h).
 *
 * libnuma does the work when the build has it and the system lets it: the
 * memory-policy system calls are probed once, directly, before libnuma is
 * asked anything, because under a seccomp profile that forbids them
 * Debian 12's libnuma (2.0.16) still reports NUMA as available and then
 * prints an error to stderr on every call. Without libnuma, or when the
 * probe fails, the machine is one node holding every CPU and placement is
 * a no-op. Nothing here writes to stderr: the libnuma calls used either
 * return errors (mbind) or cannot fail once the probe passed (topology).
 *
 * Synchronization: the probe's result is one atomic word, written once
 * (racing first callers compute the same answer); the usable CPUs are
 * read at load time, before any call.
 */
#include <sched.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"
#include "ringmpsc/numa.h"

#ifdef RMPSC_HAVE_NUMA
#include <numa.h>
#include <numaif.h>
#endif

enum { PROBE_UNKNOWN = 0, PROBE_OK = 1, PROBE_NO = 2 };

#ifdef RMPSC_HAVE_NUMA
/* The calls placement needs, each tried on a page of our own: the policy
 * query libnuma starts with, and binding (MPOL_DEFAULT, which changes
 * nothing). */
static int probe_syscalls(void)
{
	long page = sysconf(_SC_PAGESIZE);
	int mode = 0;
	void *p;
	long r;

	if (syscall(SYS_get_mempolicy, &mode, NULL, 0ul, NULL, 0ul) != 0)
		return PROBE_NO;
	p = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return PROBE_NO;
	r = syscall(SYS_mbind, p, (unsigned long)page, MPOL_DEFAULT, NULL, 0ul, 0u);
	munmap(p, (size_t)page);
	if (r != 0)
		return PROBE_NO;
	/* Only now is libnuma asked; < 0 is its "no" (not != 0). */
	return numa_available() < 0 ? PROBE_NO : PROBE_OK;
}
#endif

bool rmpsc__numa_ok(void)
{
	static _Atomic int state;
	int s = atomic_load_explicit(&state, memory_order_acquire);

	if (s == PROBE_UNKNOWN) {
#ifdef RMPSC_HAVE_NUMA
		s = probe_syscalls();
#else
		s = PROBE_NO;
#endif
		atomic_store_explicit(&state, s, memory_order_release);
	}
	return s == PROBE_OK;
}

int rmpsc_numa_available(void)
{
	return rmpsc__numa_ok() ? 1 : 0;
}

int rmpsc_numa_node_count(void)
{
#ifdef RMPSC_HAVE_NUMA
	if (rmpsc__numa_ok())
		return numa_max_node() + 1;
#endif
	return 1;
}

/* CPUs the kernel was configured with: valid CPU numbers are below it. */
static int cpus_configured(void)
{
	long n = sysconf(_SC_NPROCESSORS_CONF);

	return n < 1 ? 1 : n > CPU_SETSIZE ? CPU_SETSIZE : (int)n;
}

int rmpsc_numa_node_of_cpu(int cpu)
{
	RMPSC__CHECK(cpu < 0 || cpu >= cpus_configured(), -EINVAL);
#ifdef RMPSC_HAVE_NUMA
	if (rmpsc__numa_ok()) {
		int node = numa_node_of_cpu(cpu);

		return node < 0 ? -EINVAL : node;
	}
#endif
	return 0;
}

int rmpsc_numa_current_node(void)
{
	int cpu = sched_getcpu();
	int node = cpu < 0 ? 0 : rmpsc_numa_node_of_cpu(cpu);

	return node < 0 ? 0 : node;
}

int rmpsc_numa_distance(int node_a, int node_b)
{
	int n = rmpsc_numa_node_count();

	RMPSC__CHECK(node_a < 0 || node_a >= n || node_b < 0 || node_b >= n, -EINVAL);
#ifdef RMPSC_HAVE_NUMA
	if (rmpsc__numa_ok()) {
		int d = numa_distance(node_a, node_b);

		/* 0: the firmware gave no table; say local or remote. */
		if (d > 0)
			return d;
	}
#endif
	return node_a == node_b ? 10 : 20;
}

int rmpsc_numa_node_cpus(int node, int *cpus, uint32_t max)
{
	const int ncpu = cpus_configured();
	int count = 0;

	RMPSC__CHECK(node < 0 || node >= rmpsc_numa_node_count(), -EINVAL);
	RMPSC__CHECK(!cpus && max, -EINVAL);
	for (int cpu = 0; cpu < ncpu; cpu++) {
		if (rmpsc_numa_node_of_cpu(cpu) != node)
			continue;
		if ((uint32_t)count < max)
			cpus[count] = cpu;
		count++;
	}
	return count;
}

/* The CPUs this process may use: the affinity it was started with (as
 * taskset or a cpuset gives it), taken when the library is loaded, before
 * any thread of the application pins itself. */
static cpu_set_t usable;
static bool usable_known;

__attribute__((constructor)) static void usable_init(void)
{
	usable_known = sched_getaffinity(0, sizeof usable, &usable) == 0;
}

static bool cpu_usable(int cpu)
{
	return !usable_known || CPU_ISSET((size_t)cpu, &usable);
}

static int pin_set(const cpu_set_t *set)
{
	if (sched_setaffinity(0, sizeof *set, set) != 0)
		return -errno;
	return 0;
}

int rmpsc_numa_pin_cpu(int cpu)
{
	cpu_set_t set;

	RMPSC__CHECK(cpu < 0 || cpu >= cpus_configured() || !cpu_usable(cpu), -EINVAL);
	CPU_ZERO(&set);
	CPU_SET((size_t)cpu, &set);
	return pin_set(&set);
}

int rmpsc_numa_pin_node(int node)
{
	const int ncpu = cpus_configured();
	cpu_set_t set;

	RMPSC__CHECK(node < 0 || node >= rmpsc_numa_node_count(), -EINVAL);
	CPU_ZERO(&set);
	for (int cpu = 0; cpu < ncpu; cpu++)
		if (rmpsc_numa_node_of_cpu(cpu) == node && cpu_usable(cpu))
			CPU_SET((size_t)cpu, &set);
	RMPSC__CHECK(CPU_COUNT(&set) == 0, -EINVAL);
	return pin_set(&set);
}

static int mem_bind(void *addr, size_t len, int32_t node, unsigned flags);

int rmpsc__numa_place(void *addr, size_t len, int32_t node)
{
	return mem_bind(addr, len, node, 0);
}

int rmpsc__numa_move(void *addr, size_t len, int32_t node)
{
#ifdef RMPSC_HAVE_NUMA
	return mem_bind(addr, len, node, MPOL_MF_MOVE);
#else
	return mem_bind(addr, len, node, 0);
#endif
}

static int mem_bind(void *addr, size_t len, int32_t node, unsigned flags)
{
	if (node < 0 || !rmpsc__numa_ok())
		return 0; /* anywhere, or placement is a no-op here */
	RMPSC__CHECK(node >= rmpsc_numa_node_count(), -EINVAL);
#ifdef RMPSC_HAVE_NUMA
	{
		unsigned long mask[(CPU_SETSIZE + 8 * sizeof(unsigned long) - 1) /
				   (8 * sizeof(unsigned long))] = { 0 };

		mask[(size_t)node / (8 * sizeof mask[0])] |= 1ul << ((size_t)node % (8 * sizeof mask[0]));
		/* Preferred, not bound: a full node falls back to another one
		 * instead of failing a page fault later. */
		if (mbind(addr, len, MPOL_PREFERRED, mask, 8 * sizeof mask, flags) != 0)
			return -errno;
	}
#else
	(void)addr;
	(void)len;
	(void)flags;
#endif
	return 0;
}
