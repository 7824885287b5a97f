/* SPDX-License-Identifier: MIT */
/*
 * bench_machine.c: the round-trip timer, the two CPUs the threads are
 * pinned to, and what the report says of the machine (CPU model, kernel,
 * L2 size for LIM memset).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "bench_loop.h"

struct bench_host bench_host = {
	.cpu_model = "unknown",
	.kernel = "unknown",
	.date = "unknown",
	.cpu_a = 0,
	.cpu_b = 1,
	.pin_ok = 1,
};

int bench_use_tsc;
double bench_tsc_per_ns = 1.0;

double bench_ticks_to_ns(uint64_t t)
{
	return (double)t / bench_tsc_per_ns;
}

/* Smallest back-to-back bench_ticks() difference: the cost the round-trip
 * timer adds to every sample (reported, not subtracted). */
static double timer_overhead_ns(void)
{
	uint64_t best = UINT64_MAX;
	unsigned i;

	for (i = 0; i < 2000; i++) {
		uint64_t a = bench_ticks(), b = bench_ticks();

		if (b - a < best)
			best = b - a;
	}
	return bench_ticks_to_ns(best);
}

/* The TSC's rate against CLOCK_MONOTONIC, and the timer's own cost. */
void bench_calibrate(void)
{
	double r[3];
	unsigned i;

#if defined(__x86_64__) || defined(__i386__)
	bench_use_tsc = 1;
#endif
	if (bench_use_tsc) {
		for (i = 0; i < 3; i++) {
			uint64_t n0 = bench_now_ns(), c0 = bench_ticks(), n1, c1;

			do
				n1 = bench_now_ns();
			while (n1 - n0 < bench_mode.calib_ns / 3);
			c1 = bench_ticks();
			r[i] = (double)(c1 - c0) / (double)(n1 - n0);
		}
		bench_tsc_per_ns = bench_median_of(r, 3);
		if (!(bench_tsc_per_ns > 0.05 && bench_tsc_per_ns < 50.0)) {
			fprintf(stderr,
				"bench_ring: TSC calibration gave %.3f ticks/ns; "
				"timing round trips with CLOCK_MONOTONIC\n",
				bench_tsc_per_ns);
			bench_use_tsc = 0;
			bench_tsc_per_ns = 1.0;
		}
	}
	bench_host.timer_ns = timer_overhead_ns();
}

void bench_choose_cpus(void)
{
	struct bench_host *h = &bench_host;
	int i, found = 0;

	if (sched_getaffinity(0, sizeof h->allowed_cpus, &h->allowed_cpus)) {
		h->pin_ok = 0;
		CPU_ZERO(&h->allowed_cpus);
		return;
	}
	if (CPU_ISSET(0, &h->allowed_cpus) && CPU_ISSET(1, &h->allowed_cpus))
		return;
	/* Not 0 and 1: the first two CPUs we may use. */
	for (i = 0; i < CPU_SETSIZE && found < 2; i++) {
		if (!CPU_ISSET(i, &h->allowed_cpus))
			continue;
		if (found++ == 0)
			h->cpu_a = i;
		else
			h->cpu_b = i;
	}
	if (found < 2) {
		h->pin_ok = 0;
		fprintf(stderr,
			"bench_ring: fewer than 2 usable CPUs; running unpinned\n");
	} else {
		fprintf(stderr,
			"bench_ring: CPUs 0/1 not both usable; pinning to %d/%d\n",
			h->cpu_a, h->cpu_b);
	}
}

static size_t parse_size(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);

	while (*end == ' ')
		end++;
	if (*end == 'K' || *end == 'k')
		v <<= 10;
	else if (*end == 'M' || *end == 'm')
		v <<= 20;
	return (size_t)v;
}

static int read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	int ok;

	if (!f)
		return 0;
	ok = fgets(buf, (int)len, f) != NULL;
	fclose(f);
	if (ok)
		buf[strcspn(buf, "\n")] = 0;
	return ok;
}

static void l2_size(void)
{
	char path[128], buf[64];
	unsigned i;
	long sc;

	for (i = 0; i < 16; i++) {
		snprintf(path, sizeof path,
			 "/sys/devices/system/cpu/cpu0/cache/index%u/level", i);
		if (!read_line(path, buf, sizeof buf))
			continue;
		if (strcmp(buf, "2"))
			continue;
		snprintf(path, sizeof path,
			 "/sys/devices/system/cpu/cpu0/cache/index%u/type", i);
		if (read_line(path, buf, sizeof buf) && !strcmp(buf, "Instruction"))
			continue;
		snprintf(path, sizeof path,
			 "/sys/devices/system/cpu/cpu0/cache/index%u/size", i);
		if (read_line(path, buf, sizeof buf) && parse_size(buf) >= 4096) {
			bench_host.l2_size = parse_size(buf);
			bench_host.l2_source = "sysfs";
			return;
		}
	}
	/* No cache directory (some VMs): glibc's CPUID view, then 1 MiB. */
	sc = sysconf(_SC_LEVEL2_CACHE_SIZE);
	if (sc >= 4096 && sc <= (1l << 30)) {
		bench_host.l2_size = (size_t)sc;
		bench_host.l2_source = "sysconf";
		return;
	}
	bench_host.l2_size = 1u << 20;
	bench_host.l2_source = "default";
}

void bench_machine_info(void)
{
	struct bench_host *h = &bench_host;
	struct utsname u;
	char line[512];
	FILE *f;
	time_t t = time(NULL);
	struct tm tm;

	f = fopen("/proc/cpuinfo", "r");
	if (f) {
		while (fgets(line, sizeof line, f)) {
			char *colon = strchr(line, ':');

			if (strncmp(line, "model name", 10) || !colon)
				continue;
			colon++;
			while (*colon == ' ' || *colon == '\t')
				colon++;
			colon[strcspn(colon, "\n")] = 0;
			snprintf(h->cpu_model, sizeof h->cpu_model, "%s", colon);
			break;
		}
		fclose(f);
	}
	if (!uname(&u))
		snprintf(h->kernel, sizeof h->kernel, "%s %s %s", u.sysname, u.release,
			 u.machine);
	if (gmtime_r(&t, &tm))
		strftime(h->date, sizeof h->date, "%Y-%m-%dT%H:%M:%SZ", &tm);
	h->nproc = sysconf(_SC_NPROCESSORS_ONLN);
	l2_size();
}
