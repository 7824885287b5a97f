/* SPDX-License-Identifier: MIT */
/*
 * bench_stats.h: the statistics of bench_ring that are worth a test of
 * their own (tests/test_bench_stats.c). Header-only, no timing.
 */
#ifndef BENCH_STATS_H
#define BENCH_STATS_H

#include <stdint.h>

/*
 * The median of sorted samples s[0..n) (n >= 1), interpolated within the
 * timer's step.
 *
 * A timer that advances in steps of q ticks (AMD's TSC, read with rdtsc,
 * moves by about 24.5 ticks, 10 ns, at a time on this guest) reports an
 * interval of true length x as the multiple of q below or above it, the
 * one above with probability frac(x / q) since the start falls anywhere
 * within a step. The samples are then grouped data, and the middle sample
 * s[n / 2] moves in whole steps: 4% of a 250 ns round trip, the size of the
 * differences W4 has to tell apart.
 *
 * The grouped-data median: the group of samples within BENCH_GROUP ticks of
 * v = s[n / 2] (24 or 25 ticks are one step) stands for the interval
 * [v - q/2, v + q/2), q the mean distance to the groups beside it, and the
 * median is interpolated linearly within it: v - q/2 + q * (n/2 - below) /
 * in_group. Where there is no such grouping - a timer finer than the spread
 * (the neighbours within 4 * BENCH_GROUP), neighbours at very different
 * distances (a sparse tail), or the middle group at an end - it is s[n / 2]
 * itself.
 */
enum { BENCH_GROUP = 3 };

static inline double bench_median_grouped(const uint64_t *s, uint64_t n)
{
	uint64_t v = s[n / 2], lo = n / 2, hi = n / 2, below, above;
	double q;

	while (lo > 0 && s[lo - 1] + BENCH_GROUP >= v)
		lo--;
	while (hi + 1 < n && s[hi + 1] <= v + BENCH_GROUP)
		hi++;
	if (lo == 0 || hi + 1 == n)
		return (double)v;
	below = v - s[lo - 1];
	above = s[hi + 1] - v;
	if (below < 4 * BENCH_GROUP || above < 4 * BENCH_GROUP || below > 2 * above ||
	    above > 2 * below)
		return (double)v;
	q = (double)(below + above) / 2.0;
	return (double)v - q / 2.0 +
	       q * ((double)n / 2.0 - (double)lo) / (double)(hi - lo + 1);
}

#endif /* BENCH_STATS_H */
