/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for what include/ringmpsc/common.h declares or promises for
 * the whole API: rmpsc_version(), rmpsc_version_string(), rmpsc_features(),
 * rmpsc_strerror() (a distinct library text for every code, one that fits
 * every call returning it, a generic one for the rest), and the size rule
 * every size-prefixed struct shares.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_util.h"

#include "ringmpsc/channel.h"
#include "ringmpsc/common.h"
#include "ringmpsc/uring.h"
#include "ringmpsc/numa.h"
#include "ringmpsc/ring.h"
#include "ringmpsc/wait.h"

/* ---- version, features, strerror ----------------------------------------- */

static void test_ring_version_when_called_returns_version_number(void **state)
{
	(void)state;
	assert_int_equal(rmpsc_version(), RMPSC_VERSION_NUMBER);
	assert_int_equal(rmpsc_version(), RMPSC_VERSION_MAJOR * 10000 +
						  RMPSC_VERSION_MINOR * 100 +
						  RMPSC_VERSION_PATCH);
}

static void test_ring_version_string_when_called_matches_version_macros(void **state)
{
	char want[64];
	const char *s = rmpsc_version_string();

	(void)state;
	assert_non_null(s);
	snprintf(want, sizeof want, "%d.%d.%d", RMPSC_VERSION_MAJOR, RMPSC_VERSION_MINOR,
		 RMPSC_VERSION_PATCH);
	assert_string_equal(s, want);
	assert_string_equal(rmpsc_version_string(), want);
}

static void test_ring_features_when_called_returns_only_known_bits(void **state)
{
	const uint32_t f = rmpsc_features();

	(void)state;
	assert_int_equal(f & ~(uint32_t)(RMPSC_FEATURE_NUMA | RMPSC_FEATURE_URING), 0);
	assert_int_equal(rmpsc_features(), f);
	/* Only what works is reported: placement needs libnuma in the build
	 * (the NUMA bit), and the system's consent on top; io_uring needs
	 * liburing in the build (the URING bit): without it every io_uring
	 * call is a -EOPNOTSUPP stub. */
	if (!(f & RMPSC_FEATURE_NUMA))
		assert_int_equal(rmpsc_numa_available(), 0);
	if (!(f & RMPSC_FEATURE_URING))
		assert_int_equal(rmpsc_uring_features(), -EOPNOTSUPP);
	else if (rmpsc_uring_features() >= 0)
		assert_true(rmpsc_uring_features() & RMPSC_URING_HAS_RING);
	else /* the kernel's refusal, said as documented */
		assert_true(rmpsc_uring_features() == -ENOSYS ||
			    rmpsc_uring_features() == -EOPNOTSUPP);
}

/* STYLE.md section 3: every code the library uses. */
static const int lib_codes[] = {
	EINVAL, EBADF, EAGAIN, ETIMEDOUT, EPIPE, ENOBUFS, ESTALE,
	EMSGSIZE, ENOMEM, EPROTO, E2BIG, EOPNOTSUPP, EDEADLK, EIO,
	EMFILE, ENFILE, EEXIST, ENOENT, ENOSPC, EBUSY, ENOSYS, ENXIO, EALREADY,
	ENOMSG, ENOTSOCK, EADDRINUSE, ENAMETOOLONG, ECONNREFUSED, ECONNRESET,
};
#define N_LIB_CODES (sizeof lib_codes / sizeof lib_codes[0])

static void test_ring_strerror_with_documented_codes_returns_distinct_library_text(
	void **state)
{
	const char *text[N_LIB_CODES];
	const char *unknown = rmpsc_strerror(4095);

	(void)state;
	assert_non_null(unknown);
	for (size_t i = 0; i < N_LIB_CODES; i++) {
		const char *neg = rmpsc_strerror(-lib_codes[i]);
		const char *pos = rmpsc_strerror(lib_codes[i]);

		assert_non_null(neg);
		assert_non_null(pos);
		assert_true(neg[0] != '\0');
		assert_string_equal(neg, pos);
		/* the library's meaning, not the generic or libc text */
		assert_string_not_equal(neg, unknown);
		assert_string_not_equal(neg, strerror(lib_codes[i]));
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(neg, text[j]);
		text[i] = neg;
	}
}

/*
 * Each code's text fits every call that returns it (the headers' lists):
 * -ENOSPC said "epoll watch limit reached" to a registration that found
 * every producer slot in use. A word for each use.
 */
static void test_ring_strerror_text_fits_every_call_returning_the_code(void **state)
{
	static const struct {
		int code;
		const char *word; /* the use it must name */
	} uses[] = {
		{ ENOSPC, "producer" },     /* rmpsc_mpsc_register */
		{ ENOSPC, "consumer" },     /* rmpsc_*_register_consumer */
		{ ENOSPC, "epoll" },        /* rmpsc_notifier_epoll_add */
		{ EAGAIN, "full" },         /* producer try calls */
		{ EAGAIN, "take" },         /* consumer try calls, rmpsc_mpsc_hottest */
		{ EAGAIN, "thread" },       /* rmpsc_loop_start_ring */
		{ ENOMEM, "thread" },       /* rmpsc_loop_start_ring */
		{ EPIPE, "registration" },  /* register after close */
		{ EPIPE, "drained" },       /* consumer calls */
		{ ENOENT, "id" },           /* rmpsc_mpsc_ring_len */
		{ ENOENT, "epoll" },        /* rmpsc_notifier_epoll_del */
		{ EEXIST, "epoll" },        /* rmpsc_notifier_epoll_add */
		{ EBADF, "descriptor" },    /* epoll_add/del with a bad epfd */
		{ EBUSY, "handler" },       /* re-entry */
		{ EBUSY, "loop" },          /* rmpsc_loop_start_ring */
		{ E2BIG, "4096" },          /* init and output calls, size above a page */
		{ E2BIG, "extra bytes" },   /* create, wait calls */
		{ EBUSY, "slab" },          /* rmpsc_pool_free of a slab in flight */
		{ EBUSY, "registration" },  /* rmpsc_pool_destroy under io_uring users */
		{ EBUSY, "buffer table" },  /* rmpsc_uring_register on a ring with one */
		{ EAGAIN, "io_uring" },     /* rmpsc_io_read etc. at max_ops */
		{ EPIPE, "engine" },        /* rmpsc_io_read etc. after close */
		{ ENOSPC, "buffer table" }, /* rmpsc_uring_register */
		{ EEXIST, "buffer group" }, /* rmpsc_uring_bufring_create */
		{ ENOENT, "buffer" },       /* rmpsc_uring_bufring_take */
		{ EOPNOTSUPP, "disabled" }, /* rmpsc_uring_features, rmpsc_io_create */
		{ ENOSYS, "io_uring" },     /* the same, no io_uring */
		{ EMSGSIZE, "descriptors" }, /* rmpsc_fd_recv, too many */
		{ EPROTO, "control data" }, /* rmpsc_fd_recv, junk */
		{ EPROTO, "peer" },         /* rmpsc_shm_* on a broken ring */
		{ EPROTO, "header" },       /* rmpsc_shm_attach */
		{ EBUSY, "shared ring" },   /* rmpsc_shm_attach, role taken */
		{ ENOSPC, "watches" },      /* rmpsc_shm_watch */
		{ ECONNRESET, "peer" },     /* rmpsc_shm_* timed calls */
		{ EALREADY, "lent" },       /* rmpsc_pool_reclaim */
	};

	(void)state;
	for (size_t i = 0; i < sizeof uses / sizeof uses[0]; i++) {
		const char *t = rmpsc_strerror(-uses[i].code);

		if (!strstr(t, uses[i].word))
			fail_msg("rmpsc_strerror(-%d) = \"%s\" does not mention \"%s\"",
				 uses[i].code, t, uses[i].word);
	}
}

static void test_ring_strerror_with_unknown_codes_returns_generic_text(void **state)
{
	static const int unknown[] = { 4095, -4095, 99999, -99999, INT_MAX, -INT_MAX };

	(void)state;
	assert_non_null(rmpsc_strerror(0));
	for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
		const char *t = rmpsc_strerror(unknown[i]);

		assert_non_null(t);
		assert_true(t[0] != '\0');
		for (size_t j = 0; j < N_LIB_CODES; j++)
			assert_string_not_equal(t, rmpsc_strerror(lib_codes[j]));
	}
}

/* INT_MIN has no positive counterpart: still just an unknown code. */
static void test_ring_strerror_with_int_min_returns_generic_text(void **state)
{
	const char *t = rmpsc_strerror(INT_MIN);

	(void)state;
	assert_non_null(t);
	assert_string_equal(t, rmpsc_strerror(99999));
}

/* ---- the size rule of size-prefixed structs ----------------------------- */

/*
 * One size rule for a size-prefixed struct, whichever way it goes: exactly
 * a page (4096) is a valid size for every init and output call, as for
 * create and the wait calls (a size above it is -E2BIG, with nothing
 * written: a row of each struct's table).
 */
static void test_size_prefixed_calls_with_size_of_a_page_return_zero(void **state)
{
	enum { PAGE = 4096 };
	unsigned char *buf = malloc(PAGE);
	rmpsc_mpsc *ch = NULL;
	rmpsc_mpsc_config mcfg;
	rmpsc_ring *r = NULL;
	rmpsc_ring_config rcfg;
	rmpsc_wait w;

	(void)state;
	assert_non_null(buf);
	assert_ret(rmpsc_ring_config_init(&rcfg, sizeof rcfg), 0);
	assert_ret(rmpsc_ring_create(&rcfg, &r), 0);
	assert_ret(rmpsc_mpsc_config_init(&mcfg, sizeof mcfg), 0);
	assert_ret(rmpsc_mpsc_create(&mcfg, &ch), 0);
	memset(buf, 0, PAGE);
	assert_ret(rmpsc_ring_config_init((void *)buf, PAGE), 0);
	assert_ret(rmpsc_mpsc_config_init((void *)buf, PAGE), 0);
	assert_ret(rmpsc_mc_config_init((void *)buf, PAGE, 0), 0);
	assert_ret(rmpsc_wait_init((void *)buf, PAGE, RMPSC_WAIT_BLOCK), 0);
	assert_ret(rmpsc_wait_init(&w, sizeof w, RMPSC_WAIT_BLOCK), 0);
	memcpy(buf, &w, sizeof w);
	((rmpsc_wait *)(void *)buf)->size = PAGE;
	assert_ret(rmpsc_ring_get_wait(r, (void *)buf), 0);
	assert_ret(rmpsc_mpsc_stats(ch, (void *)buf, PAGE), 0);
	rmpsc_ring_destroy(r);
	rmpsc_mpsc_destroy(ch);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ring_version_when_called_returns_version_number),
		cmocka_unit_test(test_ring_version_string_when_called_matches_version_macros),
		cmocka_unit_test(test_ring_features_when_called_returns_only_known_bits),
		cmocka_unit_test(test_ring_strerror_with_documented_codes_returns_distinct_library_text),
		cmocka_unit_test(test_ring_strerror_with_unknown_codes_returns_generic_text),
		cmocka_unit_test(test_ring_strerror_text_fits_every_call_returning_the_code),
		cmocka_unit_test(test_size_prefixed_calls_with_size_of_a_page_return_zero),
		/* last: under UBSan a failure here aborts the process */
		cmocka_unit_test(test_ring_strerror_with_int_min_returns_generic_text),
	};

	return cmocka_run_group_tests_name("test_common", tests, NULL, NULL);
}
