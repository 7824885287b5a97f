/* SPDX-License-Identifier: MIT */
/*
 * test_core.h: the one place where tests reach into the library's private
 * structures (src/). Every white-box access of tests/ goes through a named
 * static inline function here, so that a change of the internal layout
 * has to be followed in this header only.
 */
#ifndef RMPSC_TESTS_TEST_CORE_H
#define RMPSC_TESTS_TEST_CORE_H

#include <stdint.h>

#include "internal.h"

/* The magic word destroy leaves in a handle. */
static inline uint32_t tc_magic_dead(void)
{
	return RMPSC__MAGIC_DEAD;
}

#endif /* RMPSC_TESTS_TEST_CORE_H */
