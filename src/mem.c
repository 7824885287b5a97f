/* SPDX-License-Identifier: MIT */
/*
 * Memory regions (internal.h, struct rmpsc__region): one mapping each, of
 * the page size asked for (normal pages, transparent huge pages advised,
 * hugetlb pages of the default, 2 MiB or 1 GiB size), falling back to the
 * next smaller kind when the caller allows it and reporting what it got;
 * anonymous and private, or backed by a memfd and shared (so that another
 * process can map the same pages from the fd); placed on a NUMA node before
 * any page is touched; prefaulted after that when asked. Rings, channel
 * rings and pools allocate through it.
 */
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif
#ifndef MAP_HUGE_SHIFT
#define MAP_HUGE_SHIFT 26
#endif
#ifndef MFD_HUGETLB
#define MFD_HUGETLB 4u
#endif

/* MAP_HUGETLB without a size uses the default huge page size:
 * Hugepagesize in meminfo. */
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

/* The unit a kind of page maps in, and its hugetlb size code (log2 of the
 * size in the MAP_HUGE_ / MFD_HUGE_ field; 0: the default size). */
static size_t page_unit(uint32_t page, unsigned *log2)
{
	*log2 = 0;
	switch (page) {
	case RMPSC__PAGE_HUGE:
		return huge_page_size();
	case RMPSC__PAGE_HUGE_2M:
		*log2 = 21;
		return (size_t)1 << 21;
	case RMPSC__PAGE_HUGE_1G:
		*log2 = 30;
		return (size_t)1 << 30;
	case RMPSC__PAGE_THP:
		return (size_t)2 << 20;
	default:
		return (size_t)sysconf(_SC_PAGESIZE);
	}
}

static bool page_hugetlb(uint32_t page)
{
	return page == RMPSC__PAGE_HUGE || page == RMPSC__PAGE_HUGE_2M ||
	       page == RMPSC__PAGE_HUGE_1G;
}

/* @len bytes of @fd (or anonymous memory) followed by @unit bytes with no
 * access: the whole span reserved first, then the mapping laid over its
 * start. MAP_FAILED with errno on failure. */
static unsigned char *map_guarded(size_t len, size_t unit, int mflags, int fd, int prot)
{
	unsigned char *base = mmap(NULL, len + unit, PROT_NONE,
				   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	void *p;

	if (base == MAP_FAILED)
		return MAP_FAILED;
	p = mmap(base, len, prot, mflags | MAP_FIXED, fd, 0);
	if (p == MAP_FAILED) {
		int err = errno;

		munmap(base, len + unit);
		errno = err;
		return MAP_FAILED;
	}
	return base;
}

/* One attempt at @page: 0 and *r filled, or a negative errno. */
static int region_try(const struct rmpsc__region_req *q, uint32_t page, struct rmpsc__region *r)
{
	unsigned log2;
	const size_t unit = page_unit(page, &log2);
	const size_t len = round_up(q->size, unit);
	/* THP: map one unit more and trim, so that the region starts on a
	 * huge-page boundary the kernel can back with huge pages. */
	const size_t span = page == RMPSC__PAGE_THP && !q->memfd ? len + unit : len;
	int mflags = q->memfd ? MAP_SHARED : MAP_PRIVATE | MAP_ANONYMOUS;
	int fd = -1;
	unsigned char *p;

	if (page_hugetlb(page) && !q->memfd)
		mflags |= MAP_HUGETLB | (int)(log2 << MAP_HUGE_SHIFT);
	if (q->memfd) {
		unsigned mfd = MFD_CLOEXEC | (q->seal ? MFD_ALLOW_SEALING : 0u);

		if (page_hugetlb(page))
			mfd |= MFD_HUGETLB | (log2 << MAP_HUGE_SHIFT);
		fd = memfd_create("ringmpsc", mfd);
		if (fd < 0)
			return -errno;
		if (ftruncate(fd, (off_t)len) != 0 ||
		    (q->seal && fcntl(fd, F_ADD_SEALS,
				      F_SEAL_SHRINK | F_SEAL_GROW |
					      (q->seal_write ? 0 : F_SEAL_SEAL)) != 0)) {
			int err = -errno;

			close(fd);
			return err;
		}
	}
	p = q->guard ? map_guarded(span, unit, mflags, fd, PROT_READ | PROT_WRITE) : mmap(NULL, span, PROT_READ | PROT_WRITE, mflags, fd, 0);
	if (p == MAP_FAILED) {
		int err = -errno;

		if (fd >= 0)
			close(fd);
		return err;
	}
	r->guard = q->guard ? unit : 0;
	if (span != len) {
		unsigned char *a = (unsigned char *)round_up((size_t)p, unit);

		if (a > p)
			munmap(p, (size_t)(a - p));
		if (a + len < p + span)
			munmap(a + len, (size_t)(p + span - (a + len)));
		p = a;
	}
	if (page == RMPSC__PAGE_THP && madvise(p, len, MADV_HUGEPAGE) != 0) {
		int err = -errno;

		munmap(p, len);
		if (fd >= 0)
			close(fd);
		return err;
	}
	r->base = p;
	r->len = len;
	r->page = page;
	r->fd = fd;
	return 0;
}

int rmpsc__region_map(const struct rmpsc__region_req *q, struct rmpsc__region *r)
{
	/* Placed pages must not be faulted before the placement: then the
	 * prefault is ours, after it. */
	const bool placed = q->node >= 0 && rmpsc__numa_ok();
	uint32_t page = q->page;
	int err;

	memset(r, 0, sizeof *r);
	r->fd = -1;
	r->node = RMPSC_NODE_ANY;
	RMPSC__CHECK(q->size == 0 || q->size > SIZE_MAX / 4, -EINVAL);
	RMPSC__CHECK(page > RMPSC__PAGE_HUGE_1G, -EINVAL);
	/* Guards and seals are for a memfd's regions, which are never trimmed. */
	RMPSC__CHECK((q->guard || q->seal) && !q->memfd, -EINVAL);
	RMPSC__CHECK(q->seal_write && !q->seal, -EINVAL);
	for (;;) {
		err = region_try(q, page, r);
		if (err == 0 || !q->fallback || page == RMPSC__PAGE_NORMAL)
			break;
		/* The next smaller kind: 1 GiB, 2 MiB (or the default size),
		 * transparent huge pages, normal pages. */
		page = page == RMPSC__PAGE_HUGE_1G ? RMPSC__PAGE_HUGE_2M
		       : page_hugetlb(page)        ? RMPSC__PAGE_THP
						   : RMPSC__PAGE_NORMAL;
	}
	if (err)
		return err;
	if (placed) {
		err = rmpsc__numa_place(r->base, r->len, q->node);
		if (err) {
			rmpsc__region_unmap(r);
			return err;
		}
		r->node = q->node;
	}
	if (q->prefault) {
		/* Fault every page in, where the placement says (5.14's
		 * MADV_POPULATE_WRITE; writing the zeroes does the same
		 * elsewhere, and also for a hugetlb mapping it refuses). */
		if (madvise(r->base, r->len, MADV_POPULATE_WRITE) != 0)
			memset(r->base, 0, r->len);
	}
	/* Writable from here on only through the mapping just made. */
	if (q->seal && q->seal_write &&
	    fcntl(r->fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE | F_SEAL_SEAL) != 0) {
		err = -errno;
		rmpsc__region_unmap(r);
		return err;
	}
	return 0;
}

int rmpsc__region_map_fd(int fd, size_t size, bool prefault, bool readonly,
			 struct rmpsc__region *r)
{
	const size_t unit = (size_t)sysconf(_SC_PAGESIZE);
	unsigned char *p;

	memset(r, 0, sizeof *r);
	r->node = RMPSC_NODE_ANY;
	r->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (r->fd < 0)
		return -errno;
	p = map_guarded(size, unit, MAP_SHARED | (prefault ? MAP_POPULATE : 0), r->fd,
			readonly ? PROT_READ : PROT_READ | PROT_WRITE);
	if (p == MAP_FAILED) {
		int err = -errno;

		close(r->fd);
		r->fd = -1;
		return err;
	}
	r->base = p;
	r->len = size;
	r->guard = unit;
	r->page = RMPSC__PAGE_NORMAL;
	return 0;
}

void rmpsc__region_unmap(struct rmpsc__region *r)
{
	if (r->base)
		munmap(r->base, r->len + r->guard);
	if (r->fd >= 0)
		close(r->fd);
	r->base = NULL;
	r->len = 0;
	r->guard = 0;
	r->fd = -1;
}

void *rmpsc__mem_map(size_t size, uint32_t mem_flags, int32_t node, size_t *mapped_len)
{
	const struct rmpsc__region_req q = {
		.size = size,
		.page = (mem_flags & RMPSC__MEM_HUGE) ? RMPSC__PAGE_HUGE : RMPSC__PAGE_NORMAL,
		.prefault = (mem_flags & RMPSC__MEM_PREFAULT) != 0,
		.node = node,
	};
	struct rmpsc__region r;

	if (rmpsc__region_map(&q, &r) != 0)
		return NULL;
	*mapped_len = r.len;
	return r.base;
}

void rmpsc__mem_unmap(void *p, size_t mapped_len)
{
	if (p)
		munmap(p, mapped_len);
}
