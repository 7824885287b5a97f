/* SPDX-License-Identifier: MIT */
/*
 * The receiving side of a shared pool (ringmpsc/shm.h, rmpsc_shm_pool):
 * the owner's directory (struct rmpsc__pool_share, internal.h) and tier
 * memfds mapped read-only, each followed by a guard page. The directory's
 * header is read once with pread and validated before anything is mapped;
 * the geometry used afterwards is that private copy. The lengths are read
 * from the mapping, once per call, and checked against the slab size.
 *
 * Synchronization: none of its own. A handle reaches this process through
 * a ring whose acquire (E1) orders the owner's length store and payload
 * writes before our reads; the mappings are never written here.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "ringmpsc/pool.h"
#include "ringmpsc/shm.h"

struct sp_tier {
	const unsigned char *base;
	uint64_t slab_size, stride;
	uint32_t count, ibits, imask;
	const _Atomic uint64_t *len; /* this tier's lengths in the directory */
	struct rmpsc__region map;
};

struct rmpsc_shm_pool {
	uint32_t magic;
	uint32_t ntiers;
	uint32_t tbits;
	struct rmpsc__region dir;
	struct sp_tier tier[RMPSC_POOL_TIERS_MAX];
	size_t self_len;
};

#define SP_CHECK(sp) RMPSC__CHECK(!RMPSC__HANDLE_IS(sp, RMPSC__MAGIC_SHM_POOL), -EBADF)

/* A memfd of exactly @size bytes sealed against resizing (and, @ino not
 * 0, that inode: the tier the directory says is there): 0, -EBADF,
 * -EPROTO. */
static int sealed_of_size(int fd, uint64_t size, uint64_t ino)
{
	const int need = F_SEAL_SHRINK | F_SEAL_GROW;
	struct stat st;
	int seals;

	if (fstat(fd, &st) != 0)
		return -errno;
	RMPSC__CHECK(!S_ISREG(st.st_mode) || (uint64_t)st.st_size != size, -EPROTO);
	RMPSC__CHECK(ino && (uint64_t)st.st_ino != ino, -EPROTO);
	seals = fcntl(fd, F_GET_SEALS);
	RMPSC__CHECK(seals < 0 || (seals & need) != need, -EPROTO);
	return 0;
}

/* The directory's header, validated against the descriptors: 0 or -EPROTO. */
static int sp_validate(const int *fds, uint32_t nfds, struct rmpsc__pool_share *d)
{
	const uint64_t pg = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t off = 0;
	struct stat st;
	int err;

	if (fstat(fds[0], &st) != 0)
		return -errno;
	RMPSC__CHECK(!S_ISREG(st.st_mode) || st.st_size < (off_t)RMPSC__POOL_SHARE_LENS, -EPROTO);
	RMPSC__CHECK(pread(fds[0], d, sizeof *d, 0) != (ssize_t)sizeof *d, -EPROTO);
	RMPSC__CHECK(d->magic != RMPSC__POOL_SHARE_MAGIC || d->version != RMPSC__POOL_SHARE_VERSION,
		     -EPROTO);
	RMPSC__CHECK(d->ntiers == 0 || d->ntiers > RMPSC_POOL_TIERS_MAX || d->ntiers != nfds - 1 ||
			     d->tbits != rmpsc__bits_for(d->ntiers),
		     -EPROTO);
	RMPSC__CHECK(d->nslabs == 0 || d->nslabs > (1ull << 32) ||
			     d->size != (RMPSC__POOL_SHARE_LENS + d->nslabs * 8 + pg - 1) / pg * pg,
		     -EPROTO);
	err = sealed_of_size(fds[0], d->size, 0);
	if (err)
		return err;
	for (uint32_t t = 0; t < d->ntiers; t++) {
		const struct rmpsc__pool_share_tier *tr = &d->tier[t];

		RMPSC__CHECK(tr->slab_size == 0 || tr->slab_size > RMPSC_POOL_SLAB_SIZE_MAX ||
				     tr->stride != (tr->slab_size + 63) / 64 * 64 || tr->count == 0 ||
				     tr->ibits != rmpsc__bits_for(tr->count) ||
				     d->tbits + tr->ibits >= 32 || tr->len_off != off ||
				     tr->count > d->nslabs - off,
			     -EPROTO);
		/* At least the slabs, at most one huge page (1 GiB) more: the
		 * owner's region rounds up to its page kind. */
		RMPSC__CHECK(tr->map_size < tr->stride * tr->count ||
				     tr->map_size - tr->stride * tr->count >= (1ull << 30) ||
				     tr->map_size > SIZE_MAX / 4,
			     -EPROTO);
		/* Each tier's own memfd, in its place (two tiers of one size
		 * would otherwise pass for each other). */
		RMPSC__CHECK(tr->ino == 0, -EPROTO);
		err = sealed_of_size(fds[1 + t], tr->map_size, tr->ino);
		if (err)
			return err;
		off += tr->count;
	}
	RMPSC__CHECK(off != d->nslabs, -EPROTO);
	return 0;
}

void rmpsc_shm_pool_destroy(rmpsc_shm_pool *sp)
{
	if (!RMPSC__HANDLE_IS(sp, RMPSC__MAGIC_SHM_POOL))
		return;
	for (uint32_t t = 0; t < sp->ntiers; t++)
		rmpsc__region_unmap(&sp->tier[t].map);
	rmpsc__region_unmap(&sp->dir);
	sp->magic = RMPSC__MAGIC_DEAD;
	rmpsc__mem_unmap(sp, sp->self_len);
}

int rmpsc_shm_pool_attach(const int *fds, uint32_t nfds, rmpsc_shm_pool **out)
{
	struct rmpsc__pool_share d;
	rmpsc_shm_pool *sp;
	size_t len;
	int err;

	RMPSC__CHECK(!out, -EINVAL);
	*out = NULL;
	RMPSC__CHECK(!fds || nfds < 2 || nfds > 1 + RMPSC_POOL_TIERS_MAX, -EINVAL);
	for (uint32_t k = 0; k < nfds; k++)
		RMPSC__CHECK(fds[k] < 0, -EBADF);
	err = sp_validate(fds, nfds, &d);
	if (err)
		return err;
	sp = rmpsc__mem_map(sizeof *sp, 0, RMPSC_NODE_ANY, &len);
	if (!sp)
		return -ENOMEM;
	sp->self_len = len;
	sp->ntiers = d.ntiers;
	sp->tbits = d.tbits;
	sp->dir.fd = -1;
	for (uint32_t t = 0; t < RMPSC_POOL_TIERS_MAX; t++)
		sp->tier[t].map.fd = -1;
	err = rmpsc__region_map_fd(fds[0], (size_t)d.size, false, true, &sp->dir);
	for (uint32_t t = 0; !err && t < d.ntiers; t++) {
		struct sp_tier *tr = &sp->tier[t];

		err = rmpsc__region_map_fd(fds[1 + t], (size_t)d.tier[t].map_size, false, true,
					   &tr->map);
		if (err)
			break;
		tr->base = tr->map.base;
		tr->slab_size = d.tier[t].slab_size;
		tr->stride = d.tier[t].stride;
		tr->count = d.tier[t].count;
		tr->ibits = d.tier[t].ibits;
		tr->imask = tr->ibits ? (uint32_t)((1ull << tr->ibits) - 1) : 0;
		tr->len = (const _Atomic uint64_t *)(const void *)((const unsigned char *)sp->dir.base +
								   RMPSC__POOL_SHARE_LENS) +
			  d.tier[t].len_off;
	}
	if (err) {
		sp->magic = RMPSC__MAGIC_SHM_POOL;
		rmpsc_shm_pool_destroy(sp);
		return err == -EBADF || err == -EMFILE || err == -ENFILE ? err : -ENOMEM;
	}
	sp->magic = RMPSC__MAGIC_SHM_POOL;
	*out = sp;
	return 0;
}

int rmpsc_shm_pool_payload(const rmpsc_shm_pool *sp, uint32_t h, struct iovec *view)
{
	const struct sp_tier *tr;
	uint32_t t, i;
	uint64_t len;

	SP_CHECK(sp);
	RMPSC__CHECK(!view || h == RMPSC_POOL_HANDLE_NONE, -EINVAL);
	t = sp->tbits ? h >> (32 - sp->tbits) : 0;
	RMPSC__CHECK(t >= sp->ntiers, -EINVAL);
	tr = &sp->tier[t];
	i = h & tr->imask;
	RMPSC__CHECK(i >= tr->count, -EINVAL);
	/* Once: the value checked is the value used. */
	len = atomic_load_explicit(&tr->len[i], memory_order_relaxed);
	RMPSC__CHECK(len > tr->slab_size, -EPROTO);
	view->iov_base = (void *)(uintptr_t)(tr->base + (size_t)i * tr->stride);
	view->iov_len = (size_t)len;
	return 0;
}
