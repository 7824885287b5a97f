/* SPDX-License-Identifier: MIT */
/*
 * bench_stats.h: the statistics of bench_ring, shared with their test
 * (tests/test_bench_stats.c). Header-only, no timing.
 */
#ifndef BENCH_STATS_H
#define BENCH_STATS_H

#include <stdint.h>

/* qsort() comparators for the samples (ticks) and per-repetition values. */
static inline int bench_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static inline int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

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
 * v = s[n / 2] (a step of 24.5 ticks reads as 24 or 25, so one step's
 * samples take one or two adjacent values) stands for the interval of one
 * step q centred on the group, [c - q/2, c + q/2) with c the midpoint of
 * the group's values, and the median is interpolated linearly within it:
 * c - q/2 + q * (n/2 - below) / in_group. q is half the distance between
 * the groups on either side, counted from the values facing this group and
 * widened by this group's own spread. Where there is no such grouping - a
 * timer finer than the spread (a gap to either neighbour under 4 *
 * BENCH_GROUP ticks), gaps of very different sizes (over 1.5 to 1: a step
 * with no samples, a sparse tail), or the middle group at an end - it is
 * s[n / 2] itself.
 */
enum { BENCH_GROUP = 3 };

static inline double bench_median_grouped(const uint64_t *s, uint64_t n)
{
	uint64_t v = s[n / 2], lo = n / 2, hi = n / 2, below, above;
	double q, c;

	while (lo > 0 && s[lo - 1] + BENCH_GROUP >= v)
		lo--;
	while (hi + 1 < n && s[hi + 1] <= v + BENCH_GROUP)
		hi++;
	if (lo == 0 || hi + 1 == n)
		return (double)v;
	below = s[lo] - s[lo - 1]; /* the gaps to the neighbouring groups */
	above = s[hi + 1] - s[hi];
	if (below < 4 * BENCH_GROUP || above < 4 * BENCH_GROUP || 2 * below > 3 * above ||
	    2 * above > 3 * below)
		return (double)v;
	q = (double)(s[hi + 1] - s[lo - 1] + (s[hi] - s[lo])) / 2.0;
	c = (double)(s[lo] + s[hi]) / 2.0;
	return c - q / 2.0 + q * ((double)n / 2.0 - (double)lo) / (double)(hi - lo + 1);
}

#endif /* BENCH_STATS_H */
