/* SPDX-License-Identifier: MIT */
/*
 * W9 peers: general-purpose allocators (pool_peer.h).
 *
 *   glibc     the process's own malloc/free
 *   jemalloc  libjemalloc.so.2's malloc/free
 *   mimalloc  libmimalloc.so.2's mi_malloc/mi_free
 *
 * jemalloc and mimalloc are loaded with dlopen(RTLD_NOW | RTLD_LOCAL |
 * RTLD_DEEPBIND) when W9 first needs them and reached through dlsym'd
 * pointers: RTLD_LOCAL keeps their malloc out of the global scope (the
 * process, the harness and libringmpsc keep glibc's), RTLD_DEEPBIND makes
 * each library's own references bind to itself. A library that is not
 * there, or does not load, is skipped with a note on stderr.
 *
 * jemalloc (Debian's 5.3) uses initial-exec TLS (its DT_FLAGS has
 * STATIC_TLS, 2.6 KiB of it), which dlopen can place only in glibc's
 * static TLS surplus, 512 bytes unless the process was started with more:
 *   GLIBC_TUNABLES=glibc.rtld.optional_static_tls=16384 bench_ring ...
 * Without it dlopen fails ("cannot allocate memory in static TLS block")
 * and jemalloc is skipped with that hint.
 *
 * Sanitizer builds (BENCH_POOL_NO_DLOPEN): the sanitizer runtimes refuse
 * RTLD_DEEPBIND, so jemalloc and mimalloc are skipped there.
 *
 * The loops call malloc_fn/free_fn through these non-const pointers, so
 * the compiler cannot pair and drop a malloc with its free, for glibc either.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool_peer.h"

#ifndef BENCH_POOL_NO_DLOPEN
/* dlopen @lib and take @m and @f from it into @pp. */
static int dl_peer(struct pool_peer *pp, const char *lib, const char *m, const char *f,
		   char *why, unsigned len)
{
	void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
	void *pm, *pf;
	const char *err;

	if (!h) {
		err = dlerror();
		snprintf(why, len, "%s%s", err ? err : lib,
			 err && strstr(err, "static TLS")
				 ? " (start bench_ring with GLIBC_TUNABLES="
				   "glibc.rtld.optional_static_tls=16384)"
				 : "");
		return -1;
	}
	pm = dlsym(h, m);
	pf = dlsym(h, f);
	if (!pm || !pf) {
		snprintf(why, len, "%s has no %s/%s", lib, m, f);
		dlclose(h);
		return -1;
	}
	/* POSIX: a dlsym'd function pointer converts through void *. */
	memcpy(&pp->malloc_fn, &pm, sizeof pm);
	memcpy(&pp->free_fn, &pf, sizeof pf);
	return 0;
}

static int je_setup(char *why, unsigned len)
{
	return dl_peer(&bench_pool_jemalloc, "libjemalloc.so.2", "malloc", "free", why, len);
}

static int mi_setup(char *why, unsigned len)
{
	return dl_peer(&bench_pool_mimalloc, "libmimalloc.so.2", "mi_malloc", "mi_free", why,
		       len);
}
#else
static int no_setup(char *why, unsigned len)
{
	snprintf(why, len, "not in sanitizer builds (RTLD_DEEPBIND is refused there)");
	return -1;
}
#define je_setup no_setup
#define mi_setup no_setup
#endif

struct pool_peer bench_pool_glibc = {
	.im = { .name = "glibc",
		.api_note = "W9 only: glibc malloc(256)/free, the process's allocator "
			    "(per-thread tcache, arenas)",
		.workloads = BENCH_WL_W9 },
	.malloc_fn = malloc,
	.free_fn = free,
};

struct pool_peer bench_pool_jemalloc = {
	.im = { .name = "jemalloc",
		.api_note = "W9 only: jemalloc 5 malloc/free from libjemalloc.so.2, "
			    "dlopen'ed RTLD_LOCAL|RTLD_DEEPBIND (thread caches)",
		.workloads = BENCH_WL_W9 },
	.setup = je_setup,
};

struct pool_peer bench_pool_mimalloc = {
	.im = { .name = "mimalloc",
		.api_note = "W9 only: mimalloc 2 mi_malloc/mi_free from libmimalloc.so.2, "
			    "dlopen'ed RTLD_LOCAL|RTLD_DEEPBIND (per-page free lists, "
			    "delayed remote frees)",
		.workloads = BENCH_WL_W9 },
	.setup = mi_setup,
};
