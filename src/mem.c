/* SPDX-License-Identifier: MIT */
/*
 * Memory regions: anonymous mappings, page or huge-page aligned and zeroed,
 * so rings start cache-line (indeed page) aligned and can later be bound to
 * a NUMA node as a whole.
 */
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

#define HUGE_PAGE_SIZE ((size_t)2 << 20) /* MAP_HUGETLB's default size */

static size_t round_up(size_t v, size_t to)
{
	return (v + to - 1) / to * to;
}

void *rmpsc__mem_map(size_t size, uint32_t mem_flags, size_t *mapped_len)
{
	int mflags = MAP_PRIVATE | MAP_ANONYMOUS;
	size_t unit = (size_t)sysconf(_SC_PAGESIZE);
	void *p;

	if (mem_flags & RMPSC__MEM_HUGE) {
		mflags |= MAP_HUGETLB;
		unit = HUGE_PAGE_SIZE;
	}
	if (mem_flags & RMPSC__MEM_PREFAULT)
		mflags |= MAP_POPULATE;
	if (size == 0 || size > SIZE_MAX / 2)
		return NULL;
	size = round_up(size, unit);
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, mflags, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	*mapped_len = size;
	return p;
}

void rmpsc__mem_unmap(void *p, size_t mapped_len)
{
	if (p)
		munmap(p, mapped_len);
}
