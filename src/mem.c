/* SPDX-License-Identifier: MIT */
/*
 * Memory regions: anonymous mappings, page or huge-page aligned and zeroed,
 * so rings start cache-line (indeed page) aligned and can later be bound to
 * a NUMA node as a whole.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

/* MAP_HUGETLB uses the default huge page size: Hugepagesize in meminfo. */
static size_t huge_page_size(void)
{
	static _Atomic size_t cached; /* 0 until read; racing readers agree */
	size_t sz = atomic_load_explicit(&cached, memory_order_relaxed);
	char line[128];
	FILE *f;

	if (sz)
		return sz;
	sz = (size_t)2 << 20;
	f = fopen("/proc/meminfo", "re");
	if (f) {
		unsigned long kb;

		while (fgets(line, sizeof line, f))
			if (sscanf(line, "Hugepagesize: %lu kB", &kb) == 1 && kb) {
				sz = (size_t)kb << 10;
				break;
			}
		fclose(f);
	}
	atomic_store_explicit(&cached, sz, memory_order_relaxed);
	return sz;
}

static size_t round_up(size_t v, size_t to)
{
	return (v + to - 1) / to * to;
}

void *rmpsc__mem_map(size_t size, uint32_t mem_flags, int32_t node, size_t *mapped_len)
{
	int mflags = MAP_PRIVATE | MAP_ANONYMOUS;
	size_t unit = (size_t)sysconf(_SC_PAGESIZE);
	/* Placed pages must not be faulted before the placement: then the
	 * prefault is ours, after it. */
	bool placed = node >= 0 && rmpsc__numa_ok();
	void *p;

	if (mem_flags & RMPSC__MEM_HUGE) {
		mflags |= MAP_HUGETLB;
		unit = huge_page_size();
	}
	if ((mem_flags & RMPSC__MEM_PREFAULT) && !placed)
		mflags |= MAP_POPULATE;
	if (size == 0 || size > SIZE_MAX / 2)
		return NULL;
	size = round_up(size, unit);
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, mflags, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	if (placed) {
		if (rmpsc__numa_place(p, size, node) != 0) {
			munmap(p, size);
			return NULL;
		}
		/* Fault every page in, where the placement says (5.14's
		 * MADV_POPULATE_WRITE; writing the zeroes does the same
		 * elsewhere). */
		if ((mem_flags & RMPSC__MEM_PREFAULT) && madvise(p, size, MADV_POPULATE_WRITE) != 0)
			memset(p, 0, size);
	}
	*mapped_len = size;
	return p;
}

void rmpsc__mem_unmap(void *p, size_t mapped_len)
{
	if (p)
		munmap(p, mapped_len);
}
