/* SPDX-License-Identifier: MIT */
/*
 * bench_report.c: the report of a run, from the series bench_run.c filled.
 * On stdout: the lines at a glance, then Details (the table of every row,
 * the summary: machine limits, ours against the best peer, the A/B lines of
 * our own builds, the pairs within a workload, call depth, probes); the
 * same figures as JSON with --json (README.md, "Output" and "JSON").
 *
 * Which rows go where is read from the workloads' tables (struct
 * bench_metric flags, struct bench_workload flags and pair), never from a
 * workload's id.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ringmpsc/common.h>

#include "bench.h"

/* ------------------------------------------------------------------------ */
/* Ratios                                                                   */
/* ------------------------------------------------------------------------ */

static double paired_ratio(const struct bench_series *s, const struct bench_series *vs);

void bench_finish_series(void)
{
	unsigned i, j;

	for (i = 0; i < bench_nseries; i++) {
		struct bench_series *s = &bench_series[i];

		if (!s->n)
			continue;
		s->med = bench_median_of(s->v, s->n);
		s->paired = paired_ratio(s, NULL);
		s->min = s->max = s->v[0];
		for (j = 1; j < s->n; j++) {
			if (s->v[j] < s->min)
				s->min = s->v[j];
			if (s->v[j] > s->max)
				s->max = s->v[j];
		}
	}
}

static int lower_better(const struct bench_series *s)
{
	return (s->flags & BENCH_M_LOWER) != 0;
}

/* Whether @s is one of ours' rows: neither an aux figure nor a twin. */
static int is_row(const struct bench_series *s)
{
	return !(s->flags & (BENCH_M_AUX | BENCH_M_TWIN));
}

/* The implementation a row belongs to: its own, or the one it is a variant
 * (another build) of. */
static const char *family(const struct bench_series *s)
{
	return s->im && s->im->variant_of ? s->im->variant_of : s->impl;
}

/* Whether @o has the same workload, path and unit as @s (and results). */
static int same_row(const struct bench_series *o, const struct bench_series *s)
{
	return o != s && o->n && o->wl == s->wl && !strcmp(o->path, s->path) &&
	       !strcmp(o->unit, s->unit);
}

/* Whether @o is an "other implementation" for row @s: same workload, path
 * and unit, another family, and not a variant (ringmpsc-poll is ours). */
static int is_other(const struct bench_series *o, const struct bench_series *s)
{
	return same_row(o, s) && strcmp(family(o), family(s)) && !(o->im && o->im->variant_of);
}

static int better(const struct bench_series *s, double a, double b)
{
	return lower_better(s) ? a < b : a > b;
}

/* Whether @o is a "-call" diagnostic row (BENCH_F_CALL) of the same
 * workload, path and unit as @s: what ringmpsc is compared with at equal
 * call depth. */
static int is_call(const struct bench_series *o, const struct bench_series *s)
{
	return same_row(o, s) && o->im && (o->im->flags & BENCH_F_CALL);
}

/* The best median among the rows @pick accepts for @s; NULL when none. */
static const struct bench_series *
best_of(const struct bench_series *s,
	int (*pick)(const struct bench_series *o, const struct bench_series *s))
{
	const struct bench_series *best = NULL;
	unsigned i;

	for (i = 0; i < bench_nseries; i++) {
		const struct bench_series *o = &bench_series[i];

		if (pick(o, s) && (!best || better(s, o->med, best->med)))
			best = o;
	}
	return best;
}

/* The best median among the other implementations of the same workload,
 * path and unit; NULL when there is none. */
static const struct bench_series *best_other(const struct bench_series *s)
{
	return best_of(s, is_other);
}

/*
 * Paired ratio: in every round, @s's value over the best value any other
 * implementation had in that same round (or, with @vs, over @vs's value),
 * then the median over the rounds. Values of one round were measured within
 * seconds of each other, so both sides saw the same machine regime; the
 * ratio of medians can pair a fast-regime median with a slow-regime one.
 * 0 when no round has a comparison.
 */
static double paired_ratio_of(const struct bench_series *s, const struct bench_series *vs,
			      int (*pick)(const struct bench_series *o,
					  const struct bench_series *s))
{
	double r[REPS_MAX];
	unsigned i, j, n = 0;

	for (j = 0; j < s->n; j++) {
		double best = 0;
		int have = 0;

		for (i = 0; i < bench_nseries && !vs; i++) {
			const struct bench_series *o = &bench_series[i];

			if (!pick(o, s) || o->n <= j)
				continue;
			if (!have || better(s, o->v[j], best))
				best = o->v[j];
			have = 1;
		}
		if (vs && vs->n > j) {
			best = vs->v[j];
			have = 1;
		}
		if (have && best > 0)
			r[n++] = s->v[j] / best;
	}
	return bench_median_of(r, n);
}

static double paired_ratio(const struct bench_series *s, const struct bench_series *vs)
{
	return paired_ratio_of(s, vs, is_other);
}

/* A machine limit (LIM's rows) by path and unit; 0 when it did not run. */
static double lim_value(const char *path, const char *unit)
{
	unsigned i;

	for (i = 0; i < bench_nseries; i++) {
		const struct bench_series *s = &bench_series[i];

		if (!s->im && s->n && !strcmp(s->path, path) && !strcmp(s->unit, unit))
			return s->med;
	}
	return 0.0;
}

static double memset_gbs(void)
{
	return lim_value("memset", "GB/s");
}

static double cacheline_rt_ns(void)
{
	return lim_value("cacheline-rt", "ns");
}

/* Whether ours beats the peer, given the unit's direction. */
static const char *verdict(double ours, double peer, int lower)
{
	if (ours == peer)
		return "equal";
	return (lower ? ours < peer : ours > peer) ? "better" : "WORSE";
}

/* ------------------------------------------------------------------------ */
/* Our own builds, pairs within a workload, call depth                      */
/* ------------------------------------------------------------------------ */

/* The A/B groups of ours against a variant of ours: the polling-only
 * RMPSC_NO_WAKE build (the wake-up overhead), the MPSC channel with metrics
 * on (their cost) and on the RMPSC_NO_METRICS build (what metrics cost
 * when off: ringmpsc / ringmpsc-nometrics, 1.0 is "zero cost"). Each
 * compares every row the variant ran with ours. */
static const struct {
	const char *variant;
	const char *json;
	const char *label;
} ab_groups[] = {
	{ BENCH_OURS_POLL, "wake_overhead", "wake overhead" },
	{ BENCH_OURS_NOMETRICS, "metrics_off_cost", "metrics off cost" },
	{ BENCH_OURS_METRICS, "metrics_on_cost", "metrics on cost" },
};

/* Series @i as ours in an A/B against @variant, and the variant's row. */
static int ab_pair(unsigned i, const char *variant, const struct bench_series **a,
		   const struct bench_series **p)
{
	*a = &bench_series[i];
	if (strcmp((*a)->impl, BENCH_OURS) || !(*a)->n || !is_row(*a))
		return 0;
	*p = bench_find_series((*a)->wl, (*a)->path, (*a)->unit, variant);
	return *p && (*p)->n && (*p)->med > 0;
}

/* Ours' row of @wl's case whose first path is @path, with results. */
static const struct bench_series *ours_case_row(const struct bench_workload *wl,
						const char *path)
{
	const struct bench_series *s;
	unsigned k;

	for (k = 0; k < wl->ncases; k++) {
		if (strcmp(wl->cases[k].m[0].path, path))
			continue;
		s = bench_find_series(wl, path, wl->cases[k].m[0].unit, BENCH_OURS);
		return s && s->n ? s : NULL;
	}
	return NULL;
}

/* The two rows of @wl's pair; 0 unless both ran. */
static int wl_pair(const struct bench_workload *wl, const struct bench_series **a,
		   const struct bench_series **b)
{
	*a = ours_case_row(wl, wl->pair->a);
	*b = ours_case_row(wl, wl->pair->b);
	return *a && *b && (*b)->med > 0;
}

/* "mmsg_s" for "Mmsg/s": a unit as part of a JSON key. */
static void unit_key(char *buf, size_t len, const char *unit)
{
	size_t i;

	for (i = 0; i + 1 < len && unit[i]; i++)
		buf[i] = unit[i] == '/' ? '_' : (char)(unit[i] | 0x20);
	buf[i] = 0;
}

/* Ours on a BENCH_M_CALL row and its best -call variant; 0 unless both ran. */
static int call_pair(const struct bench_series *a, const struct bench_series **c)
{
	*c = NULL;
	if (strcmp(a->impl, BENCH_OURS) || !a->n || !(a->flags & BENCH_M_CALL))
		return 0;
	*c = best_of(a, is_call);
	return *c && (*c)->med > 0;
}

/* The inlined build of the -call row @c (its variant_of), or NULL. */
static const struct bench_series *call_inline(const struct bench_series *c)
{
	const struct bench_series *s =
		bench_find_series(c->wl, c->path, c->unit, c->im->variant_of);

	return s && s->n && s->med > 0 ? s : NULL;
}

static void print_call_depth(void)
{
	unsigned i, j, head = 1;

	for (i = 0; i < bench_nseries; i++) {
		const struct bench_series *a = &bench_series[i], *c;
		int first = 1;

		if (!call_pair(a, &c))
			continue;
		if (head)
			printf("  at equal call depth (ratio = %s / best -call variant; "
			       "then each peer's -call / inlined, paired):\n",
			       BENCH_OURS);
		head = 0;
		printf("  %-3s %-10s %9.2f %-6s  vs %-10s %9.2f: ratio %5.2f, paired %5.2f "
		       "(%s)\n",
		       a->wl->id, a->path, a->med, a->unit, c->impl, c->med, a->med / c->med,
		       paired_ratio_of(a, NULL, is_call),
		       verdict(a->med, c->med, lower_better(a)));
		for (j = 0; j < bench_nseries; j++) {
			const struct bench_series *o = &bench_series[j], *inl;

			if (!is_call(o, a) || !(inl = call_inline(o)))
				continue;
			printf("%s %s %.2f", first ? "      " : ",", inl->impl,
			       paired_ratio(o, inl));
			first = 0;
		}
		if (!first)
			printf("\n");
	}
}

/* ------------------------------------------------------------------------ */
/* At a glance                                                              */
/* ------------------------------------------------------------------------ */

/* +1 when @x (a ratio of ours to a peer) says ours is better, -1 worse, 0 equal. */
static int ratio_sign(const struct bench_series *s, double x)
{
	if (x == 1.0)
		return 0;
	return (lower_better(s) ? x < 1.0 : x > 1.0) ? 1 : -1;
}

/*
 * The verdict at a glance: the paired ratio's (the steadier estimate,
 * README.md "Paired ratios"), "unclear" when the ratio of medians says the
 * opposite (the run crossed the machine's regimes).
 */
static const char *glance_verdict(const struct bench_series *s, double ratio)
{
	int m = ratio_sign(s, ratio), p = s->paired > 0 ? ratio_sign(s, s->paired) : m;

	if (m * p < 0)
		return "unclear";
	if (!p)
		p = m;
	return p > 0 ? "better" : p < 0 ? "worse" : "equal";
}

/* A value in few characters: 87475, 33.8, 6.97. */
static void fmt_short(char *buf, size_t len, double v)
{
	if (v >= 100)
		snprintf(buf, len, "%.0f", v);
	else if (v >= 10)
		snprintf(buf, len, "%.1f", v);
	else
		snprintf(buf, len, "%.2f", v);
}

/* Whether row @s of ours is left out of the summary at a glance. */
/* The width of a path column: @min, or the longest path of the rows that
 * ran (@ours_only: ours' rows; @id_too: after the workload id and a space)
 * when that is longer (W8's spmc-1x4-burst), so the columns stay aligned. */
static int path_width(int min, int ours_only, int id_too)
{
	int w = min;

	for (unsigned i = 0; i < bench_nseries; i++) {
		const struct bench_series *s = &bench_series[i];
		int n = (int)strlen(s->path) + (id_too ? (int)strlen(s->wl->id) + 1 : 0);

		if (!s->n || (s->flags & BENCH_M_AUX) ||
		    (ours_only && (strcmp(s->impl, BENCH_OURS) || !is_row(s))))
			continue;
		if (n > w)
			w = n;
	}
	return w;
}

static int glance_skip(const struct bench_series *s)
{
	return strcmp(s->impl, BENCH_OURS) || !s->n || !is_row(s) ||
	       (s->flags & BENCH_M_NO_GLANCE);
}

/* Ours' rows that no peer has, in one line (wrapped at about 100 columns). */
static void print_glance_nopeer(void)
{
	const struct bench_series *prev = NULL;
	unsigned i, col = 0;

	for (i = 0; i < bench_nseries; i++) {
		const struct bench_series *s = &bench_series[i];
		int new_wl = !prev || prev->wl != s->wl;
		char item[96], val[32];

		if (glance_skip(s) || best_other(s))
			continue;
		if (!prev)
			col = (unsigned)printf("  no peer has:");
		else if (new_wl || strcmp(prev->unit, s->unit))
			col += (unsigned)printf(" %s;", prev->unit);
		else
			col += (unsigned)printf(",");
		fmt_short(val, sizeof val, s->med);
		snprintf(item, sizeof item, "%s%s%s %s", new_wl ? s->wl->id : "",
			 new_wl ? " " : "", s->path, val);
		if (col + 1 + strlen(item) > 100)
			col = (unsigned)printf("\n%14s", "") - 1;
		col += (unsigned)printf(" %s", item);
		prev = s;
	}
	if (prev)
		printf(" %s\n", prev->unit);
}

/*
 * The report's first lines: for each row of ours with a peer, the ratio to
 * the best peer, the paired ratio and what they say, then the figures; the
 * rows no peer has in one line. print_table() and print_summary() follow
 * with everything else.
 */
static void print_glance(void)
{
	const char **peers;
	const struct bench_workload *last_wl = NULL;
	unsigned i, j, npeers = 0, nbuilt = 0, nours = 0;
	const int rw = path_width(14, 1, 1);

	printf("At a glance: ratio = %s / best peer, paired = median over rounds of each "
	       "round's ratio; > 1 is better for Mmsg/s and GB/s, < 1 for ns\n",
	       BENCH_OURS);
	for (i = 0; i < bench_nseries; i++) {
		const struct bench_series *s = &bench_series[i];
		const struct bench_series *b;
		char paired[16] = "-", row[64];
		double ratio;

		if (glance_skip(s))
			continue;
		nours++;
		b = best_other(s);
		if (!b || b->med <= 0)
			continue;
		ratio = s->med / b->med;
		if (!last_wl)
			printf("  %6s %6s  %-7s  %-*s %8s %6s   %s\n", "ratio", "paired",
			       "verdict", rw, "row", BENCH_OURS, "", "best peer");
		if (s->paired > 0)
			snprintf(paired, sizeof paired, "%.2f", s->paired);
		snprintf(row, sizeof row, "%s %s", s->wl->id, s->path);
		printf("  %6.2f %6s  %-7s  %-*s %8.2f %-6s   %-6s %9.2f", ratio, paired,
		       glance_verdict(s, ratio), rw, row, s->med, s->unit, b->impl, b->med);
		if (s->wl != last_wl)
			printf("   %s", s->wl->what);
		last_wl = s->wl;
		printf("\n");
	}
	if (!nours) {
		printf("  (%s not selected: see Details)\n", BENCH_OURS);
		return;
	}
	print_glance_nopeer();
	/* The peers that ran, and whether any queue library was built in. */
	peers = bench_xalloc(8, bench_nimpls * sizeof *peers);
	for (i = 0; i < bench_nseries; i++) {
		const struct bench_series *s = &bench_series[i];

		if (!s->n || !s->im || s->im->variant_of || !strcmp(s->impl, BENCH_OURS))
			continue;
		for (j = 0; j < npeers && strcmp(peers[j], s->impl); j++)
			;
		if (j == npeers)
			peers[npeers++] = s->impl;
	}
	for (i = 0; i < bench_nimpls; i++)
		if (!bench_impls[i]->variant_of && strcmp(bench_impls[i]->name, BENCH_OURS))
			nbuilt++;
	printf("  peers:");
	for (j = 0; j < npeers; j++)
		printf("%s %s", j ? "," : "", peers[j]);
	if (!npeers)
		printf(" none selected");
	if (nbuilt == 1)
		printf(" (no peer queue library was found at build time; "
		       "sh .ci/install-deps bench, then rebuild)");
	printf("\n");
	free(peers);
	if (bench_probes.kept_slow)
		printf("  note: %u repetitions were kept from slow episodes of the machine "
		       "(the probes line at the end): read the paired ratios\n",
		       bench_probes.kept_slow);
	if (!bench_host.pin_ok)
		printf("  note: threads were NOT pinned (fewer than 2 usable CPUs)\n");
}

/* ------------------------------------------------------------------------ */
/* Details: the table and the summary                                       */
/* ------------------------------------------------------------------------ */

/* The BENCH_M_AUX figures under the table, one line per kind (note). */
static void print_aux_notes(void)
{
	unsigned i, j, k;

	for (i = 0; i < bench_nseries; i++) {
		const struct bench_series *s = &bench_series[i];
		const char *note = s->metric->note;
		int first = 1;

		if (!s->n || !(s->flags & BENCH_M_AUX))
			continue;
		for (k = 0; k < i; k++)
			if (bench_series[k].n && (bench_series[k].flags & BENCH_M_AUX) &&
			    !strcmp(bench_series[k].metric->note, note))
				break;
		if (k < i)
			continue; /* printed with the first of its kind */
		for (j = i; j < bench_nseries; j++) {
			const struct bench_series *o = &bench_series[j];

			if (!o->n || !(o->flags & BENCH_M_AUX) || strcmp(o->metric->note, note))
				continue;
			if (first)
				printf("%s (median, min-max):", note);
			printf("%s %s %s %.3f (%.3f-%.3f)", first ? "" : ",", o->impl, o->path,
			       o->med, o->min, o->max);
			first = 0;
		}
		printf("\n");
	}
}

static void print_table(void)
{
	unsigned i;

	const int pw = path_width(12, 0, 0);

	printf("\n%-4s %-*s %-13s %-7s %10s %10s %10s %4s %6s %6s\n", "work", pw, "path",
	       "impl", "unit", "median", "min", "max", "reps", "ratio", "paired");
	for (i = 0; i < bench_nseries; i++) {
		const struct bench_series *s = &bench_series[i];
		const struct bench_series *b = best_other(s);
		char ratio[32] = "-", paired[32] = "-";

		if (!s->n || (s->flags & BENCH_M_AUX))
			continue;
		if (b && b->med > 0)
			snprintf(ratio, sizeof ratio, "%.2f", s->med / b->med);
		if (b && s->paired > 0)
			snprintf(paired, sizeof paired, "%.2f", s->paired);
		printf("%-4s %-*s %-13s %-7s %10.2f %10.2f %10.2f %4u %6s %6s\n", s->wl->id,
		       pw, s->path, s->impl, s->unit, s->med, s->min, s->max, s->n, ratio,
		       paired);
	}
	printf("ratio: median / best median of the other implementations on the same "
	       "row kind; paired: median over rounds of the value / the best other "
	       "value of the same round; throughput: > 1 is better, ns: < 1 is better\n");
	print_aux_notes();
}

/* BENCH_WL_BEST_PATH: ours' best path against the best path of any peer. */
static void print_best_path(const struct bench_workload *wl)
{
	const struct bench_series *ours = NULL, *peer = NULL;
	unsigned i;

	for (i = 0; i < bench_nseries; i++) {
		const struct bench_series *s = &bench_series[i];

		if (s->wl != wl || !is_row(s) || !s->n)
			continue;
		if (!strcmp(s->impl, BENCH_OURS)) {
			if (!ours || better(s, s->med, ours->med))
				ours = s;
		} else if (strcmp(family(s), BENCH_OURS) && !(s->im && s->im->variant_of) &&
			   (!peer || better(s, s->med, peer->med))) {
			peer = s;
		}
	}
	if (ours && peer)
		printf("  %-3s best path: %s %s %.2f %s vs %s %s %.2f %s: ratio %.2f (%s)\n",
		       wl->id, BENCH_OURS, ours->path, ours->med, ours->unit, peer->impl,
		       peer->path, peer->med, peer->unit, ours->med / peer->med,
		       verdict(ours->med, peer->med, lower_better(ours)));
}

static void print_pair(const struct bench_workload *wl)
{
	const struct bench_series *a, *b;

	if (!wl_pair(wl, &a, &b))
		return;
	printf("  %-3s %s: %.2f %s", wl->id, wl->pair->label, a->med, a->unit);
	if (a->aux)
		printf(", %.2f %s", a->aux->med, a->aux->unit);
	printf("; %s: %.2f %s", wl->pair->b_label, b->med, b->unit);
	if (b->aux)
		printf(", %.2f %s", b->aux->med, b->aux->unit);
	printf(": ratio %.2f, paired %.2f\n", a->med / b->med, paired_ratio(a, b));
}

static void print_summary(void)
{
	const double mem = memset_gbs(), rt = cacheline_rt_ns();
	const int pw = path_width(10, 1, 0);
	unsigned i, g, nours = 0;

	printf("\nSummary (medians of kept repetitions; ratio = %s / best peer)\n",
	       BENCH_OURS);
	printf("  machine limits: memset %.2f GB/s into %zu KiB, cache-line round trip "
	       "p50 %.1f ns\n",
	       mem, bench_host.l2_size >> 10, rt);
	for (i = 0; i < bench_nseries; i++) {
		const struct bench_series *s = &bench_series[i];
		const struct bench_series *b;

		if (strcmp(s->impl, BENCH_OURS) || !s->n || !is_row(s))
			continue;
		nours++;
		b = best_other(s);
		printf("  %-3s %-*s %9.2f %-6s", s->wl->id, pw, s->path, s->med, s->unit);
		if (b)
			printf("  vs %-8s %9.2f: ratio %5.2f, paired %5.2f (%s)", b->impl,
			       b->med, b->med > 0 ? s->med / b->med : 0.0, s->paired,
			       verdict(s->med, b->med, lower_better(s)));
		else
			printf("  %-55s", "  (no peer has this path)");
		if ((s->flags & BENCH_M_MEMSET) && mem > 0)
			printf("; %.3f of memset", s->med / mem);
		if ((s->flags & BENCH_M_RT_SUMMARY) && rt > 0)
			printf("; %.2fx the cache-line RT", s->med / rt);
		if (s->aux && s->aux->n) {
			if (s->aux->metric->summary)
				printf(s->aux->metric->summary, s->aux->med);
			else
				printf("; %.2f %s", s->aux->med, s->aux->unit);
		}
		printf("\n");
	}
	for (i = 0; i < bench_nworkloads; i++)
		if (bench_workloads[i]->flags & BENCH_WL_BEST_PATH)
			print_best_path(bench_workloads[i]);
	if (!nours)
		printf("  (%s not selected)\n", BENCH_OURS);
	for (g = 0; g < BENCH_NELEM(ab_groups); g++) {
		for (i = 0; i < bench_nseries; i++) {
			const struct bench_series *a, *p;

			if (!ab_pair(i, ab_groups[g].variant, &a, &p))
				continue;
			printf("  %s %-3s %-9s: %s %.2f / %s %.2f %s: ratio %.3f, "
			       "paired %.3f\n",
			       ab_groups[g].label, a->wl->id, a->path, BENCH_OURS, a->med,
			       ab_groups[g].variant, p->med, a->unit, a->med / p->med,
			       paired_ratio(a, p));
		}
	}
	for (i = 0; i < bench_nworkloads; i++)
		if (bench_workloads[i]->pair)
			print_pair(bench_workloads[i]);
	print_call_depth();
	printf("  repetitions repeated after a slow probe: %u; kept slow: %u; "
	       "probes: %u (%u slow, lowest %.1f ns, median %.1f ns)\n",
	       bench_probes.repeated, bench_probes.kept_slow, bench_probes.n,
	       bench_probes.slow, bench_probes.lowest < 1e300 ? bench_probes.lowest : 0.0,
	       bench_median_of(bench_probes.all, bench_probes.n));
	if (!bench_host.pin_ok)
		printf("  note: threads were NOT pinned (fewer than 2 usable CPUs)\n");
}

void bench_print_report(void)
{
	const struct bench_host *h = &bench_host;

	print_glance();
	printf("\nDetails\n");
	printf("bench_ring: libringmpsc %s, %s mode, %u reps per case, capacity %u, "
	       "CPUs %d/%d%s, harness ISA %s\n",
	       rmpsc_version_string(), bench_mode.name, bench_mode.reps, (unsigned)CAPACITY,
	       h->cpu_a, h->cpu_b, h->pin_ok ? "" : " (unpinned)", BENCH_HARNESS_ISA);
	printf("machine: %s, %ld CPUs, %s, L2 %zu KiB (%s), %s\n", h->cpu_model, h->nproc,
	       h->kernel, h->l2_size >> 10, h->l2_source, h->date);
	print_table();
	print_summary();
}

/* ------------------------------------------------------------------------ */
/* JSON                                                                     */
/* ------------------------------------------------------------------------ */

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void json_num(FILE *f, double v)
{
	if (v != v || v > 1e300 || v < -1e300)
		fputs("null", f);
	else
		fprintf(f, "%.6g", v);
}

/* `, "key": value`, or `"key": value` first. */
static void json_member(FILE *f, int first, const char *key, double v)
{
	fprintf(f, "%s\"%s\": ", first ? "" : ", ", key);
	json_num(f, v);
}

static void json_stats(FILE *f, const struct bench_series *s, int probes)
{
	unsigned j;

	json_member(f, 1, "median", s->med);
	json_member(f, 0, "min", s->min);
	json_member(f, 0, "max", s->max);
	fputs(", \"reps\": [", f);
	for (j = 0; j < s->n; j++) {
		if (j)
			fputs(", ", f);
		json_num(f, s->v[j]);
	}
	fputc(']', f);
	if (!probes)
		return;
	fputs(", \"probes_ns\": [", f);
	for (j = 0; j < s->n; j++) {
		fputs(j ? ", [" : "[", f);
		json_num(f, s->probe[2 * j]);
		fputs(", ", f);
		json_num(f, s->probe[2 * j + 1]);
		fputc(']', f);
	}
	fputc(']', f);
}

static void json_head(FILE *f, double elapsed_s)
{
	const struct bench_host *h = &bench_host;
	const struct bench_probes *pr = &bench_probes;

	fprintf(f, "{\n  \"bench\": \"bench_ring\",\n  \"library_version\": ");
	json_str(f, rmpsc_version_string());
	fprintf(f,
		",\n  \"mode\": \"%s\",\n  \"reps_per_case\": %u,\n  \"capacity\": %u,\n"
		"  \"w2_batch\": %u,\n  \"w6_batch\": %u,\n  \"w6_consumer_max\": %u,\n"
		"  \"w7_idle_producers\": %u,\n  \"w8_burst\": %u,\n  \"elapsed_s\": %.2f,\n",
		bench_mode.name, bench_mode.reps, (unsigned)CAPACITY, (unsigned)BATCH,
		(unsigned)W6_BATCH, (unsigned)W6_CONS_MAX, (unsigned)W7_IDLE,
		(unsigned)W8_BURST, elapsed_s);
	fprintf(f, "  \"machine\": {\"cpu_model\": ");
	json_str(f, h->cpu_model);
	fprintf(f, ", \"nproc\": %ld, \"kernel\": ", h->nproc);
	json_str(f, h->kernel);
	fprintf(f, ", \"l2_bytes\": %zu, \"l2_source\": \"%s\"", h->l2_size, h->l2_source);
	json_member(f, 0, "memset_gbs", memset_gbs());
	json_member(f, 0, "cacheline_rt_ns", cacheline_rt_ns());
	fprintf(f,
		", \"date\": \"%s\", \"cpus\": [%d, %d], \"pinned\": %s, "
		"\"timer\": \"%s\"",
		h->date, h->cpu_a, h->cpu_b, h->pin_ok ? "true" : "false",
		bench_use_tsc ? "lfence+rdtsc" : "clock_gettime");
	json_member(f, 0, "tsc_ghz", bench_use_tsc ? bench_tsc_per_ns : 0.0);
	json_member(f, 0, "timer_overhead_ns", h->timer_ns);
	fprintf(f, ", \"harness_isa\": \"%s\", \"compiler\": ", BENCH_HARNESS_ISA);
	json_str(f, __VERSION__);
	fprintf(f,
		"},\n  \"repeated_reps\": %u,\n  \"kept_slow_reps\": %u,\n"
		"  \"probes\": {\"count\": %u, \"slow\": %u",
		pr->repeated, pr->kept_slow, pr->n, pr->slow);
	json_member(f, 0, "lowest_ns", pr->lowest < 1e300 ? pr->lowest : 0.0);
	json_member(f, 0, "median_ns", bench_median_of(pr->all, pr->n));
	fprintf(f,
		"},\n  \"w5\": {\"samples_per_rep\": %" PRIu64
		", \"pause_ns\": [%llu, %llu]},\n",
		bench_mode.wake_max, WAKE_PAUSE_MIN_NS, WAKE_PAUSE_MAX_NS);
}

/* The A/B groups, then each workload's pair (an object even when it did not
 * run, so the keys are always there). */
static void json_ab(FILE *f)
{
	unsigned g, i;

	for (g = 0; g < BENCH_NELEM(ab_groups); g++) {
		const char *variant = ab_groups[g].variant;
		int first = 1;

		fprintf(f, "%s  \"%s\": {", g ? "},\n" : "", ab_groups[g].json);
		for (i = 0; i < bench_nseries; i++) {
			const struct bench_series *a, *p;

			if (!ab_pair(i, variant, &a, &p))
				continue;
			fprintf(f, "%s\"%s_%s\": {\"unit\": \"%s\", \"%s\": ",
				first ? "" : ", ", a->wl->id, a->path, a->unit, BENCH_OURS);
			first = 0;
			json_num(f, a->med);
			json_member(f, 0, variant, p->med);
			json_member(f, 0, "ratio", a->med / p->med);
			json_member(f, 0, "paired_ratio", paired_ratio(a, p));
			fputc('}', f);
		}
	}
	for (i = 0; i < bench_nworkloads; i++) {
		const struct bench_workload *wl = bench_workloads[i];
		const struct bench_series *a, *b;
		char key[96], unit[32];

		if (!wl->pair)
			continue;
		fprintf(f, "},\n  \"%s\": {", wl->pair->json);
		if (!wl_pair(wl, &a, &b))
			continue;
		unit_key(unit, sizeof unit, a->unit);
		snprintf(key, sizeof key, "%s_%s", wl->pair->a, unit);
		json_member(f, 1, key, a->med);
		snprintf(key, sizeof key, "%s_%s", wl->pair->b, unit);
		json_member(f, 0, key, b->med);
		if (a->aux && b->aux) {
			snprintf(key, sizeof key, "%s_%s", wl->pair->a, a->aux->metric->key);
			json_member(f, 0, key, a->aux->med);
			snprintf(key, sizeof key, "%s_%s", wl->pair->b, b->aux->metric->key);
			json_member(f, 0, key, b->aux->med);
		}
		json_member(f, 0, "ratio", a->med / b->med);
		json_member(f, 0, "paired_ratio", paired_ratio(a, b));
	}
}

static void json_call_depth(FILE *f)
{
	unsigned i, j;
	int first = 1;

	fputs("},\n  \"call_depth\": {", f);
	for (i = 0; i < bench_nseries; i++) {
		const struct bench_series *a = &bench_series[i], *c, *b;
		int firstp = 1;

		if (!call_pair(a, &c))
			continue;
		b = best_other(a);
		fprintf(f, "%s\"%s_%s\": {\"unit\": \"%s\", \"%s\": ", first ? "" : ", ",
			a->wl->id, a->path, a->unit, BENCH_OURS);
		first = 0;
		json_num(f, a->med);
		if (b && b->med > 0) {
			fputs(", \"best_peer\": ", f);
			json_str(f, b->impl);
			json_member(f, 0, "best_peer_median", b->med);
			json_member(f, 0, "ratio_vs_best_peer", a->med / b->med);
			json_member(f, 0, "paired_ratio_vs_best_peer", a->paired);
		}
		fputs(", \"best_call\": ", f);
		json_str(f, c->impl);
		json_member(f, 0, "best_call_median", c->med);
		json_member(f, 0, "ratio_vs_best_call", a->med / c->med);
		json_member(f, 0, "paired_ratio_vs_best_call",
			    paired_ratio_of(a, NULL, is_call));
		fputs(", \"call_vs_inline\": {", f);
		for (j = 0; j < bench_nseries; j++) {
			const struct bench_series *o = &bench_series[j], *inl;

			if (!is_call(o, a) || !(inl = call_inline(o)))
				continue;
			fprintf(f, "%s", firstp ? "" : ", ");
			firstp = 0;
			json_str(f, inl->impl);
			fputs(": {", f);
			json_member(f, 1, "inline", inl->med);
			json_member(f, 0, "call", o->med);
			json_member(f, 0, "ratio", o->med / inl->med);
			json_member(f, 0, "paired_ratio", paired_ratio(o, inl));
			fputc('}', f);
		}
		fputs("}}", f);
	}
}

static void json_records(FILE *f)
{
	const double mem = memset_gbs(), rt = cacheline_rt_ns();
	unsigned i, first = 1;

	fputs("},\n  \"records\": [\n", f);
	for (i = 0; i < bench_nseries; i++) {
		const struct bench_series *s = &bench_series[i];
		const struct bench_series *b;

		/* An aux or twin series is an object in its row's record. */
		if (!s->n || !is_row(s))
			continue;
		b = best_other(s);
		fprintf(f, "%s    {\"workload\": \"%s\", \"impl\": ", first ? "" : ",\n",
			s->wl->id);
		first = 0;
		json_str(f, s->impl);
		fprintf(f, ", \"path\": \"%s\", \"unit\": \"%s\", ", s->path, s->unit);
		if (s->im && s->im->variant_of) {
			fputs("\"variant_of\": ", f);
			json_str(f, s->im->variant_of);
			fputs(", ", f);
		}
		if (s->im && (s->im->flags & BENCH_F_CALL))
			fputs("\"call_variant\": true, ", f);
		json_stats(f, s, 1);
		if (b) {
			fputs(", \"best_other\": ", f);
			json_str(f, b->impl);
			json_member(f, 0, "ratio_vs_best_other",
				    b->med > 0 ? s->med / b->med : 0.0);
			json_member(f, 0, "paired_ratio", s->paired);
		}
		if (s->twin && s->twin->n) {
			fprintf(f, ", \"%s\": {", s->twin->metric->key);
			json_stats(f, s->twin, 1);
			fputc('}', f);
		}
		if (s->aux && s->aux->n) {
			fprintf(f, ", \"%s\": {", s->aux->metric->key);
			json_stats(f, s->aux, 0);
			fputc('}', f);
		}
		if ((s->flags & BENCH_M_MEMSET) && mem > 0)
			json_member(f, 0, "fraction_of_memset", s->med / mem);
		if ((s->flags & BENCH_M_RT) && rt > 0)
			json_member(f, 0, "x_cacheline_rt", s->med / rt);
		fputc('}', f);
	}
	fputs("\n  ]\n}\n", f);
}

void bench_write_json(FILE *f, double elapsed_s)
{
	json_head(f, elapsed_s);
	json_ab(f);
	json_call_depth(f);
	json_records(f);
}
