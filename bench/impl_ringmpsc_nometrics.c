/* SPDX-License-Identifier: MIT */
/*
 * bench adapter "ringmpsc-nometrics": impl_ringmpsc.c once more, its MPSC
 * channel calls routed through pointers into libringmpsc_nometrics.so (the
 * library built with RMPSC_NO_METRICS), loaded with dlopen at start-up. See
 * impl_ringmpsc.c.
 */
#define BENCH_RM_NOMETRICS 1
#include "impl_ringmpsc.c"
