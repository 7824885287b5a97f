/* SPDX-License-Identifier: MIT */
/*
 * bench adapter "ck-call": impl_ck.c once more with BENCH_CALL, its
 * push1/pop1 reaching the queue through one non-inlined call per operation
 * (W1 and W4 only; see bench_impl.h and README.md, "Call depth").
 */
#define BENCH_CALL 1
#include "impl_ck.c"
