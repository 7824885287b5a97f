/* SPDX-License-Identifier: MIT */
/*
 * bench adapter "ringmpsc-poll": impl_ringmpsc.c once more, its library
 * calls routed through pointers into libringmpsc_poll.so (the library built
 * with RMPSC_NO_WAKE), loaded with dlopen at start-up. See impl_ringmpsc.c.
 */
#define BENCH_RM_POLL 1
#include "impl_ringmpsc.c"
