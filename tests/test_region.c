/* SPDX-License-Identifier: MIT */
/*
 * The region layer (src/mem.c, struct rmpsc__region in src/internal.h),
 * white-box: page kinds and their fallbacks as reported, alignment and
 * rounding, memfd backing shared with a second mapping, prefault, NUMA
 * placement, argument checks. This machine has no reserved hugetlb pages:
 * the hugetlb kinds must fail without fallback and fall back with it; where
 * pages are reserved, the hugetlb assertions are skipped, not failed.
 *
 * Links the static library for the internal region calls.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_util.h"

#include "internal.h"
#include "ringmpsc/numa.h"

#define MIB ((size_t)1 << 20)

static size_t page_size(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

/* Huge pages reserved on this machine (nr_hugepages), 0 when unknown. */
static long hugepages_reserved(void)
{
	long n = 0;
	FILE *f = fopen("/proc/sys/vm/nr_hugepages", "re");

	if (f) {
		if (fscanf(f, "%ld", &n) != 1)
			n = 0;
		fclose(f);
	}
	return n;
}

static struct rmpsc__region_req req(size_t size, uint32_t page)
{
	struct rmpsc__region_req q = { .size = size, .page = page, .node = RMPSC_NODE_ANY };

	return q;
}

static void assert_zeroed(const struct rmpsc__region *r)
{
	const unsigned char *p = r->base;

	for (size_t i = 0; i < r->len; i += 4096)
		assert_int_equal(p[i], 0);
	assert_int_equal(p[r->len - 1], 0);
}

/* Normal pages: the size rounded up to the page, page aligned, zeroed,
 * private (no fd), not placed, reported as normal. */
static void test_region_normal_rounds_to_page_and_reports_it(void **state)
{
	struct rmpsc__region_req q = req(1, RMPSC__PAGE_NORMAL);
	struct rmpsc__region r;

	(void)state;
	assert_ret(rmpsc__region_map(&q, &r), 0);
	assert_int_equal(r.len, page_size());
	assert_int_equal((uintptr_t)r.base % page_size(), 0);
	assert_int_equal(r.page, RMPSC__PAGE_NORMAL);
	assert_int_equal(r.fd, -1);
	assert_int_equal(r.node, RMPSC_NODE_ANY);
	assert_zeroed(&r);
	memset(r.base, 0xab, r.len);
	rmpsc__region_unmap(&r);
	assert_null(r.base);
	q.size = 3 * page_size() + 1;
	assert_ret(rmpsc__region_map(&q, &r), 0);
	assert_int_equal(r.len, 4 * page_size());
	rmpsc__region_unmap(&r);
}

/* Transparent huge pages: a 2 MiB-aligned region, a multiple of 2 MiB,
 * advised; reported as THP (or, where the kernel has no THP, refused
 * without fallback and normal with it). */
static void test_region_thp_is_2mib_aligned_or_falls_back(void **state)
{
	struct rmpsc__region_req q = req(3 * MIB, RMPSC__PAGE_THP);
	struct rmpsc__region r;
	int rc;

	(void)state;
	rc = rmpsc__region_map(&q, &r);
	if (rc == 0) {
		assert_int_equal(r.page, RMPSC__PAGE_THP);
		assert_int_equal((uintptr_t)r.base % (2 * MIB), 0);
		assert_int_equal(r.len, 4 * MIB);
		assert_zeroed(&r);
		memset(r.base, 1, r.len);
		rmpsc__region_unmap(&r);
	} else {
		assert_true(rc < 0);
	}
	q.fallback = true;
	assert_ret(rmpsc__region_map(&q, &r), 0);
	assert_true(r.page == RMPSC__PAGE_THP || r.page == RMPSC__PAGE_NORMAL);
	if (r.page == RMPSC__PAGE_THP)
		assert_int_equal((uintptr_t)r.base % (2 * MIB), 0);
	rmpsc__region_unmap(&r);
}

/* hugetlb without fallback: the kind or an error, never something else;
 * with fallback: a smaller kind, reported (no reserved pages here). */
static void check_hugetlb(uint32_t page, bool memfd)
{
	struct rmpsc__region_req q = req(MIB, page);
	struct rmpsc__region r;
	int rc;

	q.memfd = memfd;
	rc = rmpsc__region_map(&q, &r);
	if (rc == 0) {
		assert_int_equal(r.page, page);
		rmpsc__region_unmap(&r);
	} else {
		assert_true(rc < 0);
		assert_null(r.base);
		assert_int_equal(r.fd, -1);
	}
	if (hugepages_reserved() == 0)
		assert_true(rc < 0); /* nothing reserved: no hugetlb page to have */
	q.fallback = true;
	assert_ret(rmpsc__region_map(&q, &r), 0);
	assert_true(r.page <= page);
	if (hugepages_reserved() == 0)
		assert_true(r.page == RMPSC__PAGE_THP || r.page == RMPSC__PAGE_NORMAL);
	assert_int_equal(r.fd >= 0, memfd);
	memset(r.base, 7, r.len);
	rmpsc__region_unmap(&r);
}

static void test_region_hugetlb_fails_without_fallback_falls_back_with_it(void **state)
{
	(void)state;
	check_hugetlb(RMPSC__PAGE_HUGE, false);
	check_hugetlb(RMPSC__PAGE_HUGE_2M, false);
	check_hugetlb(RMPSC__PAGE_HUGE_1G, false);
	check_hugetlb(RMPSC__PAGE_HUGE_2M, true);
}

/* memfd backing: the fd maps the same pages a second time (what another
 * process does with it), close-on-exec; unmapping closes it. */
static void test_region_memfd_is_shared_through_its_fd(void **state)
{
	struct rmpsc__region_req q = req(2 * page_size(), RMPSC__PAGE_NORMAL);
	struct rmpsc__region r;
	unsigned char *second;
	int fd;

	(void)state;
	q.memfd = true;
	assert_ret(rmpsc__region_map(&q, &r), 0);
	assert_true(r.fd >= 0);
	assert_true(fcntl(r.fd, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(lseek(r.fd, 0, SEEK_END), (off_t)r.len);
	second = mmap(NULL, r.len, PROT_READ | PROT_WRITE, MAP_SHARED, r.fd, 0);
	assert_true(second != MAP_FAILED);
	((unsigned char *)r.base)[10] = 42;
	assert_int_equal(second[10], 42);
	second[r.len - 1] = 9;
	assert_int_equal(((unsigned char *)r.base)[r.len - 1], 9);
	munmap(second, r.len);
	fd = r.fd;
	rmpsc__region_unmap(&r);
	assert_int_equal(r.fd, -1);
	assert_int_equal(fcntl(fd, F_GETFD), -1);
	assert_int_equal(errno, EBADF);
}

/* prefault: every page resident when the call returns; without it, none
 * of a large anonymous region is. */
static void test_region_prefault_makes_every_page_resident(void **state)
{
	struct rmpsc__region_req q = req(64 * page_size(), RMPSC__PAGE_NORMAL);
	unsigned char vec[64];
	struct rmpsc__region r;

	(void)state;
	q.prefault = true;
	assert_ret(rmpsc__region_map(&q, &r), 0);
	assert_ret(mincore(r.base, r.len, vec), 0);
	for (int i = 0; i < 64; i++)
		assert_int_equal(vec[i] & 1, 1);
	rmpsc__region_unmap(&r);
	q.prefault = false;
	assert_ret(rmpsc__region_map(&q, &r), 0);
	assert_ret(mincore(r.base, r.len, vec), 0);
	for (int i = 0; i < 64; i++)
		assert_int_equal(vec[i] & 1, 0);
	rmpsc__region_unmap(&r);
}

/* node: placed (preferred) where NUMA is available, reported; a no-op,
 * reported as not placed, elsewhere. */
static void test_region_node_is_placed_where_numa_is_available(void **state)
{
	struct rmpsc__region_req q = req(4 * page_size(), RMPSC__PAGE_NORMAL);
	unsigned long mask[16] = { 0 };
	struct rmpsc__region r;
	int mode = -1;

	(void)state;
	q.node = 0;
	q.prefault = true;
	assert_ret(rmpsc__region_map(&q, &r), 0);
	if (!rmpsc_numa_available()) {
		assert_int_equal(r.node, RMPSC_NODE_ANY);
		rmpsc__region_unmap(&r);
		return;
	}
	assert_int_equal(r.node, 0);
	if (syscall(SYS_get_mempolicy, &mode, mask, 8 * sizeof mask, r.base, 2ul /* MPOL_F_ADDR */) ==
	    0) {
		assert_int_equal(mode, 1 /* MPOL_PREFERRED */);
		assert_true(mask[0] & 1);
	}
	rmpsc__region_unmap(&r);
	q.node = rmpsc_numa_node_count(); /* no such node */
	assert_ret(rmpsc__region_map(&q, &r), -EINVAL);
	assert_null(r.base);
}

/* Bad requests: size 0, an absurd size, an unknown kind: -EINVAL, nothing
 * mapped. */
static void test_region_bad_request_returns_einval(void **state)
{
	struct rmpsc__region_req q = req(0, RMPSC__PAGE_NORMAL);
	struct rmpsc__region r;

	(void)state;
	assert_ret(rmpsc__region_map(&q, &r), -EINVAL);
	assert_null(r.base);
	q.size = SIZE_MAX;
	assert_ret(rmpsc__region_map(&q, &r), -EINVAL);
	q.size = 1;
	q.page = RMPSC__PAGE_HUGE_1G + 1;
	assert_ret(rmpsc__region_map(&q, &r), -EINVAL);
	assert_null(r.base);
	assert_int_equal(r.fd, -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_region_normal_rounds_to_page_and_reports_it),
		cmocka_unit_test(test_region_thp_is_2mib_aligned_or_falls_back),
		cmocka_unit_test(test_region_hugetlb_fails_without_fallback_falls_back_with_it),
		cmocka_unit_test(test_region_memfd_is_shared_through_its_fd),
		cmocka_unit_test(test_region_prefault_makes_every_page_resident),
		cmocka_unit_test(test_region_node_is_placed_where_numa_is_available),
		cmocka_unit_test(test_region_bad_request_returns_einval),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
