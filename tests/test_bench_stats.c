/* SPDX-License-Identifier: MIT */
/*
 * bench_ring's grouped median (bench/bench_stats.h). Synthetic samples with
 * a known median, quantized the way a stepping timer quantizes them; no
 * timing here. The estimator must track the true median within a small
 * part of the step where the middle sample alone is off by up to half a
 * step, and must leave fine-grained and ungroupable samples as they are.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bench_stats.h"

enum { N = 60001 };

static uint64_t rng_state;

static double uniform01(void)
{
	/* xorshift64*: deterministic, so every run checks the same samples */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (double)((rng_state * 0x2545f4914f6cdd1dull) >> 11) / 9007199254740992.0;
}

static double normal(void)
{
	double u1 = uniform01(), u2 = uniform01();

	if (u1 < 1e-300)
		u1 = 1e-300;
	return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/*
 * n round trips of true length mu + sigma * normal (ticks), one in ten with
 * a tail of up to 40 steps, read with a timer of step q: after k steps the
 * counter reads round(k * q), so a step of 24.45 ticks reads as 24 or 25
 * depending on where it falls. Each round trip starts at a random step k0
 * and a random phase within it. Returns the true median; s[] sorted.
 */
static double quantized(uint64_t *s, double *t, uint64_t n, double mu, double sigma,
			double q)
{
	uint64_t i;

	for (i = 0; i < n; i++) {
		double x = mu + sigma * normal(), ph = uniform01();
		double k0 = floor(uniform01() * 1e6);
		uint64_t a, b;

		if (uniform01() < 0.1)
			x += 40.0 * q * uniform01();
		if (x < 1.0)
			x = 1.0;
		t[i] = x;
		a = (uint64_t)llround(k0 * q);
		b = (uint64_t)llround((k0 + floor(ph + x / q)) * q);
		s[i] = b - a;
	}
	qsort(s, n, sizeof *s, bench_cmp_u64);
	qsort(t, n, sizeof *t, bench_cmp_double);
	return t[n / 2];
}

/* The TSC of this project's machines: 24.45 ticks a step (10 ns at 2.445
 * GHz). Round trips of 230-270 ns, spread 2-12 ns. */
static void test_grouped_median_tracks_true_median(void **state)
{
	uint64_t *s = malloc(N * sizeof *s);
	double *t = malloc(N * sizeof *t), q = 24.45, sigma;
	double err_grouped = 0, err_step = 0, worst = 0;
	unsigned cases = 0;

	(void)state;
	assert_non_null(s);
	assert_non_null(t);
	rng_state = 0x9e3779b97f4a7c15ull;
	for (sigma = 5.0; sigma <= 30.0; sigma += 12.5) {
		double mu;

		for (mu = 230.0 * 2.445; mu <= 270.0 * 2.445; mu += 1.7) {
			double want = quantized(s, t, N, mu, sigma, q);
			double got = bench_median_grouped(s, N);
			double step = (double)s[N / 2];

			if (fabs(got - want) > worst)
				worst = fabs(got - want);
			err_grouped += fabs(got - want);
			err_step += fabs(step - want);
			cases++;
		}
	}
	/* within a fifth of a step everywhere (the middle sample is off by up
	 * to half a step), and at least three times closer on average (the
	 * middle sample: q/4). Measured: worst 0.15 q, at the narrowest
	 * spread; mean error 0.87 ticks against the middle sample's 5.8 over
	 * the 174 cases (1.6 against 5.9 at the narrowest spread). */
	assert_true(cases > 100);
	if (worst > 0.2 * q)
		fail_msg("grouped median off by %.2f ticks (step %.2f)", worst, q);
	if (err_grouped * 3.0 > err_step)
		fail_msg("grouped median error %.3f, middle sample %.3f (mean, ticks)",
			 err_grouped / cases, err_step / cases);
	free(s);
	free(t);
}

/* A timer finer than the spread: the middle sample itself. */
static void test_fine_timer_is_the_middle_sample(void **state)
{
	uint64_t *s = malloc(N * sizeof *s);
	double *t = malloc(N * sizeof *t);
	unsigned k;

	(void)state;
	assert_non_null(s);
	assert_non_null(t);
	rng_state = 12345;
	for (k = 0; k < 20; k++) {
		quantized(s, t, N, 500.0 + 13.0 * k, 20.0, 1.0);
		assert_true(bench_median_grouped(s, N) == (double)s[N / 2]);
	}
	free(s);
	free(t);
}

/* Samples that cannot be grouped: one sample, all equal, the middle group
 * at either end, gaps to the neighbours of very different sizes either
 * way, neighbours closer than a step. Each returns the middle sample. */
static void test_ungroupable_samples(void **state)
{
	uint64_t one[1] = { 588 };
	uint64_t same[9] = { 611, 611, 611, 611, 611, 611, 611, 611, 611 };
	/* s[3] = 612; its group reaches s[0] */
	uint64_t low_end[7] = { 611, 611, 611, 612, 636, 661, 685 };
	/* s[3] = 636; its group reaches s[6] */
	uint64_t high_end[7] = { 563, 587, 612, 636, 636, 637, 637 };
	/* s[2] = 612: gap 212 below, 24 above (a sparse tail below) */
	uint64_t tail_below[5] = { 399, 400, 612, 612, 636 };
	/* s[3] = 612: gap 24 below, 49 above (a step with no samples) */
	uint64_t gap_above[7] = { 563, 587, 611, 612, 612, 661, 685 };
	/* s[3] = 612: neighbours 4 ticks away */
	uint64_t close_by[7] = { 600, 604, 608, 612, 616, 620, 624 };

	(void)state;
	assert_true(bench_median_grouped(one, 1) == 588.0);
	assert_true(bench_median_grouped(same, 9) == 611.0);
	assert_true(bench_median_grouped(low_end, 7) == 612.0);
	assert_true(bench_median_grouped(high_end, 7) == 636.0);
	assert_true(bench_median_grouped(tail_below, 5) == 612.0);
	assert_true(bench_median_grouped(gap_above, 7) == 612.0);
	assert_true(bench_median_grouped(close_by, 7) == 612.0);
}

/*
 * Worked cases, groups {587}, {611, 612}, {636}.
 * 10 below, 20 in the group (10 at 611, 10 at 612), 10 above: the group's
 * midpoint c = 611.5, the step q = (636 - 587 + (612 - 611)) / 2 = 25, the
 * interval [599, 624), and n / 2 = 20 lies half-way through the group:
 * 599 + 25 * (20 - 10) / 20 = 611.5, whichever of 611 and 612 s[20] is.
 * 15 below, 15 in {611}, 10 above (n = 40): c = 611, q = (636 - 587) / 2 =
 * 24.5, 611 - 12.25 + 24.5 * (20 - 15) / 15.
 */
static void test_worked_case(void **state)
{
	uint64_t v[40];
	unsigned i;

	(void)state;
	for (i = 0; i < 40; i++)
		v[i] = i < 10 ? 587 : i < 30 ? (i % 2 ? 611 : 612) : 636;
	qsort(v, 40, sizeof *v, bench_cmp_u64);
	assert_true(fabs(bench_median_grouped(v, 40) - 611.5) < 1e-9);
	/* one sample moved from 612 to 611 moves the median by 1/20 of the
	 * interval, not by a whole tick */
	v[20] = 611;
	qsort(v, 40, sizeof *v, bench_cmp_u64);
	assert_true(fabs(bench_median_grouped(v, 40) - 611.5) < 1e-9);
	for (i = 0; i < 40; i++)
		v[i] = i < 15 ? 587 : i < 30 ? 611 : 636;
	assert_true(fabs(bench_median_grouped(v, 40) - (611.0 - 12.25 + 24.5 * 5 / 15)) < 1e-9);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_grouped_median_tracks_true_median),
		cmocka_unit_test(test_fine_timer_is_the_middle_sample),
		cmocka_unit_test(test_ungroupable_samples),
		cmocka_unit_test(test_worked_case),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
