// SPDX-License-Identifier: MIT
/*
 * W9 peer: the plain lock-free free list (pool_peer.h), a Boost.Lockfree
 * stack<uint32_t, capacity<POOL_NOBJ>> of free object indices over one
 * 64-byte-aligned array of objects.
 *
 * alloc pops an index (the object is base + index * size), free pushes the
 * object's index back. capacity<> makes the stack fixed-size: its nodes
 * come from a preallocated array addressed by 16-bit indices with a 16-bit
 * ABA tag, so push and pop never allocate and are lock-free (a pop is a CAS
 * on the stack's head plus a CAS returning the node to the node free list,
 * a push the same two in the other order). Header code, inlined here.
 */
#include <boost/lockfree/stack.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#include "pool_peer.h"

namespace {

typedef boost::lockfree::stack<uint32_t, boost::lockfree::capacity<POOL_NOBJ>> free_stack;

struct bs_pool {
	free_stack st;
	unsigned char *mem;
	uint32_t n, size;
};

void *bs_create(uint32_t n, uint32_t size, unsigned flags)
{
	(void)flags;
	if (n > POOL_NOBJ || !size)
		return nullptr;
	bs_pool *p = new (std::nothrow) bs_pool;
	if (!p)
		return nullptr;
	const size_t bytes = ((size_t)n * size + 63) / 64 * 64;
	p->mem = static_cast<unsigned char *>(std::aligned_alloc(64, bytes));
	if (!p->mem) {
		delete p;
		return nullptr;
	}
	std::memset(p->mem, 0, bytes);
	p->n = n;
	p->size = size;
	for (uint32_t i = n; i-- > 0;) {
		if (!p->st.push(i)) {
			std::free(p->mem);
			delete p;
			return nullptr;
		}
	}
	return p;
}

int64_t bs_destroy(void *pool)
{
	bs_pool *p = static_cast<bs_pool *>(pool);
	int64_t back = 0;
	uint32_t i;

	while (p->st.pop(i))
		back++;
	const int64_t missing = (int64_t)p->n - back;
	std::free(p->mem);
	delete p;
	return missing;
}

int bs_alloc(void *pool, void *, void **obj)
{
	bs_pool *p = static_cast<bs_pool *>(pool);
	uint32_t i;

	if (!p->st.pop(i))
		return 0;
	*obj = p->mem + (size_t)i * p->size;
	return 1;
}

int bs_free(void *pool, void *, void *obj)
{
	bs_pool *p = static_cast<bs_pool *>(pool);
	const size_t off = static_cast<size_t>(static_cast<unsigned char *>(obj) - p->mem);

	if (off % p->size || off / p->size >= p->n)
		return BENCH_ERR_IMPL;
	return p->st.push(static_cast<uint32_t>(off / p->size)) ? 0 : BENCH_ERR_IMPL;
}

} // namespace

extern "C" {
struct pool_peer bench_pool_boost = {
	.im = { .name = "boost-stack",
		.api_note = "W9 only: Boost.Lockfree stack<uint32_t, capacity<16384>> of "
			    "free object indices (fixed-size: two CASes per pop or push, "
			    "16-bit tagged node indices)",
		.workloads = BENCH_WL_W9 },
	.setup = nullptr,
	.malloc_fn = nullptr,
	.free_fn = nullptr,
	.create = bs_create,
	.destroy = bs_destroy,
	.thread_init = nullptr,
	.thread_fini = nullptr,
	.alloc = bs_alloc,
	.free = bs_free,
};
}
