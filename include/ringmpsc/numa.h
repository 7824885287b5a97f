/* SPDX-License-Identifier: MIT */
/**
 * @file ringmpsc/numa.h
 * NUMA topology and thread placement, through libnuma.
 *
 * These calls work on every machine. Placement of memory (the numa_node of
 * ring, channel and pool configurations) and the topology come from
 * libnuma when the library was built with it and the system lets it work:
 * the library probes the memory-policy system calls itself first, because a
 * container's seccomp profile may forbid them (Debian 12's libnuma would
 * still report NUMA as available there and print errors to stderr). Where
 * NUMA cannot be used (a build without libnuma, a kernel without NUMA, a
 * forbidding seccomp profile) the machine is reported as one node, node 0,
 * holding every CPU, and memory placement is silently a no-op;
 * rmpsc_numa_available() says which case applies. Nothing here ever writes
 * to stderr.
 */
#ifndef RINGMPSC_NUMA_H
#define RINGMPSC_NUMA_H

#include "ringmpsc/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Whether memory placement on NUMA nodes works here: libnuma in this build
 * and the memory-policy system calls permitted (probed once).
 *
 * @return 1 (placement works), 0 (placement is a no-op, one node reported).
 * Concurrency: any thread. Progress: wait-free after the first call.
 * Ordering: none.
 */
RMPSC_API int rmpsc_numa_available(void);

/**
 * Nodes of the machine: the highest node number plus one (1 where NUMA is
 * not available).
 *
 * @return >= 1. Concurrency: any thread. Progress: wait-free.
 * Ordering: none.
 */
RMPSC_API int rmpsc_numa_node_count(void);

/**
 * The node of a CPU.
 *
 * @return the node (0 where NUMA is not available); -EINVAL: @p cpu is
 *  negative or not a configured CPU.
 * Concurrency: any thread. Progress: wait-free. Ordering: none.
 */
RMPSC_API int rmpsc_numa_node_of_cpu(int cpu);

/**
 * The node of the CPU the calling thread runs on now (it may move right
 * after, unless pinned).
 *
 * @return the node, >= 0. Concurrency: any thread. Progress: wait-free.
 * Ordering: none.
 */
RMPSC_API int rmpsc_numa_current_node(void);

/**
 * The distance between two nodes as the firmware reports it (10 for a
 * node to itself; larger is farther).
 *
 * @return the distance; -EINVAL: a node out of range.
 * Concurrency: any thread. Progress: wait-free. Ordering: none.
 */
RMPSC_API int rmpsc_numa_distance(int node_a, int node_b);

/**
 * The CPUs of a node, in increasing order.
 *
 * @param cpus receives up to @p max CPU numbers (may be NULL when @p max
 *  is 0, to ask for the count).
 * @return the number of CPUs of the node (which may exceed @p max; only
 *  @p max are written); -EINVAL: @p node out of range, or @p cpus NULL
 *  with @p max not 0.
 * Concurrency: any thread. Progress: wait-free. Ordering: none.
 */
RMPSC_API int rmpsc_numa_node_cpus(int node, int *cpus, uint32_t max);

/**
 * Pin the calling thread to one CPU.
 *
 * @return 0; -EINVAL: @p cpu is not a configured CPU or not one this
 *  process may use (the affinity it was started with, as taskset sets it,
 *  read when the library was loaded; or its cpuset); other negative errno
 *  values from sched_setaffinity().
 * Concurrency: any thread (it pins itself). Progress: blocking (a system
 *  call). Ordering: none.
 */
RMPSC_API int rmpsc_numa_pin_cpu(int cpu);

/**
 * Pin the calling thread to the CPUs of one node (all of them that this
 * process may use, as for rmpsc_numa_pin_cpu()).
 *
 * @return 0; -EINVAL: @p node out of range, or none of its CPUs usable by
 *  this process; other negative errno values from sched_setaffinity().
 * Concurrency: any thread. Progress: blocking. Ordering: none.
 */
RMPSC_API int rmpsc_numa_pin_node(int node);

#ifdef __cplusplus
}
#endif

#endif /* RINGMPSC_NUMA_H */
