/* SPDX-License-Identifier: MIT */
/*
 * bench_shm: the shared-memory SPSC ring (ringmpsc/shm.h, rmpsc_shm_*)
 * next to the in-process ring (rmpsc_ring_*) and next to the kernel's IPC,
 * in one run. Every repetition runs each implementation once, in turn
 * (the order reversed every other repetition, so that a drift of the
 * machine does not always favour the same one); the report gives medians
 * over repetitions and ratios to the in-process ring: the ratio of the
 * medians, and "paired", the median over repetitions of each repetition's
 * own ratio (the steadier of the two on a machine that changes regime for
 * seconds at a time).
 *
 * The consumer, the pinger and the receiver run on CPU 0 (the parent
 * process, its main thread); the producer, the echo and the sender on
 * CPU 1 (a thread, or a forked child). The child attaches to the shared
 * ring through the memfd it inherited (rmpsc_shm_attach() on the parent's
 * rmpsc_shm_fd()); it never destroys the parent's handles, only its own.
 *
 * 1. Throughput, 8-byte items (Mitems/s), in three modes: single (one
 *    push / pop per call, try calls spinning on -EAGAIN), batch64
 *    (push_n / pop_n of up to 64), span64 (reserve / commit and readable
 *    / advance of up to 64, written and checked in place):
 *     - inproc:           rmpsc_ring, two threads;
 *     - shm-xproc:        rmpsc_shm across two processes (fork), the
 *                         default barrier (global expedited membarrier);
 *     - shm-xproc-fence:  the same with RMPSC_SHM_F_FENCE;
 *     - shm-thread:       rmpsc_shm in one process, two threads, two
 *                         handles on one memfd: the shared ring's code
 *                         path without a second process;
 *     - shm-thread-fence: the same with RMPSC_SHM_F_FENCE.
 *    The producer writes 0, 1, 2, ... until the consumer tells it to stop
 *    (a flag in a MAP_SHARED page, looked at every 256 items); the
 *    consumer checks every value, times a fixed window after a warm-up
 *    (50 + 300 ms; --quick 20 + 100 ms) and at the end checks that it
 *    took exactly what the producer pushed. Rings of 65536 slots, as
 *    bench_ring (--capacity): the in-process ring with as many slots as
 *    its capacity, as the shared ring has (no 2x slots).
 * 2. Ping-pong round trip (ns, p50 / p99 / p999 / min of every round trip
 *    timed on its own): one 8-byte message there and back through two
 *    queues, the echo adds 1 and the pinger checks it:
 *     - inproc, shm-xproc, shm-xproc-fence, shm-thread: both sides poll
 *       with the try calls (spin pop);
 *     - pipe (two pipes), socketpair (AF_UNIX SOCK_STREAM), mqueue (two
 *       POSIX message queues, unlinked as soon as both ends hold them):
 *       blocking read / recv / mq_receive, across two processes.
 * 3. Wake-up latency (ns, send -> receive): the receiver blocks in
 *    rmpsc_ring_pop_timed(-1) / rmpsc_shm_pop_timed(-1) with the handle's
 *    default strategy (spin, yield, then a futex sleep); the sender sends
 *    one message (its CLOCK_MONOTONIC send time), waits until the receiver
 *    has taken it, pauses 50-65 us (long enough for the receiver to be
 *    asleep in the futex), then sends the next. Also the sender's push
 *    call (which makes the futex wake): what the barrier and the shared
 *    futex cost the waker; the receiver's CPU time per message (spin,
 *    yield, the barrier before it sleeps: the sleeper pays the global
 *    membarrier); and "woke%", the share of pushes long enough to have
 *    made a futex wake, which says whether the receiver was really asleep
 *    (on a loaded machine it often is not: its sched_yield gives the CPU
 *    away and the pause is over before it sleeps).
 *
 * 4. Payload latency (ns, p50 / p99 of each round trip), payloads of 64 B
 *    to 4 MiB: a lent slab of a RMPSC_POOL_F_SHARED pool whose 4-byte
 *    handle crosses a shared ring and comes back through a return ring
 *    (alloc, lend, reclaim included; the receiver reads the payload in
 *    place), against the same bytes copied through a shared ring of
 *    64-byte elements into the receiver's buffer (see pl_run()).
 *
 * Noise: the machine's other load (/proc/stat's busy time less ours and
 * our children's) is reported per section; above 0.1 CPU the section is
 * marked DISTURBED.
 *
 * Failures are reported, not timed: a wrong value, a failed call, a peer
 * process that exits early or a wait that makes no progress for 20 s end
 * the run with status 1. Child processes die with the parent
 * (PR_SET_PDEATHSIG), are killed and reaped on every error path and on
 * SIGINT / SIGTERM / SIGHUP, and a watchdog (SIGALRM) ends a measurement
 * that hangs in a blocking call; message queue names are unlinked.
 *
 *   cmake --build build --target bench_shm
 *   ./build/bench/bench_shm --quick              # < 20 s
 *   ./build/bench/bench_shm                      # full: 7 reps, < 3 min
 *   ./build/bench/bench_shm --only pingpong --reps 11
 *   ./build/bench/bench_shm --only throughput --impl inproc,shm-xproc
 *   ./build/bench/bench_shm --json > out.jsonl   # JSON lines on stdout,
 *                                                # the report on stderr
 *
 * Exit status: 0 done; 1 a wrong value, a failed call, a stall, a child
 * that failed; 2 bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <mqueue.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/membarrier.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#include <ringmpsc.h>

enum {
	MAX_REPS = 200,
	BATCH = 64,        /* batch64 / span64: elements per call at most */
	NQ = 7,            /* quantities per result row */
};

#define STALL_NS (20ull * 1000000000ull) /* no progress this long: a failure */
#define WATCHDOG_S 90                    /* one measurement at most (SIGALRM) */
#define PP_STOP UINT64_MAX               /* ping-pong: the echo's end */

/* ---- state shared with the signal handler ----------------------------------------- */

static volatile sig_atomic_t g_child;  /* the live child's pid, 0 if none */
static char g_mq_name[2][64];          /* queues not yet unlinked */
static int g_is_child;
static pid_t g_parent;
static char g_cur[96]; /* the measurement running, for the failure messages */

/* ---- run parameters --------------------------------------------------------------- */

static int g_cpu[2] = { 0, 1 }; /* [0] consumer / pinger / receiver, [1] the other side */
static int g_pin = 1;
static uint32_t g_capacity = 65536;
static FILE *g_out;             /* the report: stdout, or stderr with --json */
static int g_json;
static const char *g_impls; /* --impl: the implementations to run, NULL all */

/* @p name is in the comma-separated --impl list (no list: every name is). */
static bool impl_selected(const char *name)
{
	const size_t n = strlen(name);

	if (g_impls == NULL)
		return true;
	for (const char *p = g_impls; *p != '\0'; p += strcspn(p, ","), p += *p == ',')
		if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == '\0'))
			return true;
	return false;
}

/* ---- failures --------------------------------------------------------------------- */

static void cleanup(void)
{
	pid_t c = (pid_t)g_child;

	if (c > 0) {
		kill(c, SIGKILL);
		while (waitpid(c, NULL, 0) < 0 && errno == EINTR)
			;
		g_child = 0;
	}
	for (int i = 0; i < 2; i++)
		if (g_mq_name[i][0] != '\0') {
			mq_unlink(g_mq_name[i]);
			g_mq_name[i][0] = '\0';
		}
}

static void on_signal(int sig)
{
	static const char msg_int[] = "bench_shm: interrupted; child killed, queues unlinked\n";
	static const char msg_alrm[] = "bench_shm: a measurement hung (watchdog); child killed,"
				       " queues unlinked\n";
	ssize_t w;

	cleanup();
	if (sig == SIGALRM)
		w = write(2, msg_alrm, sizeof msg_alrm - 1);
	else
		w = write(2, msg_int, sizeof msg_int - 1);
	(void)w;
	_exit(sig == SIGALRM ? 1 : 128 + sig);
}

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...)
{
	va_list ap;

	fflush(g_out);
	fprintf(stderr, "bench_shm%s: %s%s", g_is_child ? " (child)" : "", g_cur,
		g_cur[0] ? ": " : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (g_is_child)
		_exit(1);
	cleanup();
	exit(1);
}

/* A library call's result: < 0 is a failure. */
static void ck(long r, const char *what)
{
	if (r < 0)
		die("%s: %ld (%s)", what, r, rmpsc_strerror((int)r));
}

/* ---- time ------------------------------------------------------------------------- */

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int g_use_tsc;
static double g_tsc_per_ns = 1.0;
static double g_timer_ns; /* the round-trip timer's own cost (reported, not subtracted) */

/* The round-trip timer: the TSC (both stamps on the pinger's CPU), else
 * CLOCK_MONOTONIC. */
static inline uint64_t ticks(void)
{
#if defined(__x86_64__) || defined(__i386__)
	if (g_use_tsc) {
		uint64_t t;

		__builtin_ia32_lfence();
		t = __builtin_ia32_rdtsc();
		__builtin_ia32_lfence();
		return t;
	}
#endif
	return now_ns();
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

static int cmp_double(const void *a, const void *b)
{
	const double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static int cmp_u64(const void *a, const void *b)
{
	const uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static double median(const double *v, int n)
{
	double t[MAX_REPS];

	if (n <= 0)
		return 0.0;
	memcpy(t, v, (size_t)n * sizeof *t);
	qsort(t, (size_t)n, sizeof *t, cmp_double);
	return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

static void calibrate(void)
{
#if defined(__x86_64__) || defined(__i386__)
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[4096];
	int constant = 0;

	while (f != NULL && fgets(line, sizeof line, f) != NULL)
		if (strncmp(line, "flags", 5) == 0) {
			constant = strstr(line, " constant_tsc") != NULL &&
				   strstr(line, " nonstop_tsc") != NULL;
			break;
		}
	if (f != NULL)
		fclose(f);
	if (constant) {
		double r[3];

		g_use_tsc = 1;
		for (int i = 0; i < 3; i++) {
			uint64_t n0 = now_ns(), c0 = ticks(), n1, c1;

			do
				n1 = now_ns();
			while (n1 - n0 < 20000000);
			c1 = ticks();
			r[i] = (double)(c1 - c0) / (double)(n1 - n0);
		}
		g_tsc_per_ns = median(r, 3);
		if (!(g_tsc_per_ns > 0.05 && g_tsc_per_ns < 50.0)) {
			g_use_tsc = 0;
			g_tsc_per_ns = 1.0;
		}
	}
#endif
	{
		uint64_t best = UINT64_MAX;

		for (int i = 0; i < 2000; i++) {
			uint64_t a = ticks(), b = ticks();

			if (b - a < best)
				best = b - a;
		}
		g_timer_ns = (double)best / g_tsc_per_ns;
	}
}

/* ---- processes and CPUs ----------------------------------------------------------- */

static void pin(int cpu)
{
	cpu_set_t set;

	if (!g_pin)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof set, &set) != 0)
		die("sched_setaffinity(CPU %d): %s", cpu, strerror(errno));
}

/* CPUs 0 and 1, else the first two of the mask; unpinned with fewer. */
static void choose_cpus(void)
{
	cpu_set_t set;
	int found = 0;

	if (sched_getaffinity(0, sizeof set, &set) != 0) {
		g_pin = 0;
		return;
	}
	if (CPU_ISSET(0, &set) && CPU_ISSET(1, &set))
		return;
	for (int i = 0; i < CPU_SETSIZE && found < 2; i++)
		if (CPU_ISSET(i, &set))
			g_cpu[found++] = i;
	if (found < 2)
		g_pin = 0;
}

/* Fork a child that runs @p fn on the other CPU and exits 0 (a failure in
 * it is its exit status 1). It dies with this process. */
static pid_t spawn(void (*fn)(void *), void *arg)
{
	const pid_t parent = getpid();
	pid_t p;

	fflush(NULL);
	p = fork();
	if (p < 0)
		die("fork: %s", strerror(errno));
	if (p == 0) {
		g_is_child = 1;
		g_child = 0;
		g_parent = parent;
		g_mq_name[0][0] = g_mq_name[1][0] = '\0';
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		signal(SIGALRM, SIG_DFL);
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
			_exit(1);
		pin(g_cpu[1]);
		fn(arg);
		_exit(0);
	}
	g_child = p;
	return p;
}

/* The child has exited (not reaped: it stays waitable). */
static bool child_exited(pid_t p)
{
	siginfo_t si;

	memset(&si, 0, sizeof si);
	if (waitid(P_PID, (id_t)p, &si, WEXITED | WNOHANG | WNOWAIT) != 0)
		return true;
	return si.si_pid != 0;
}

/* Reap the child (it should be ending); a child that fails or does not end
 * within 10 s is a failure. */
static void reap(pid_t p, const char *what)
{
	const uint64_t deadline = now_ns() + 10000000000ull;
	int st = 0;

	for (;;) {
		pid_t r = waitpid(p, &st, WNOHANG);

		if (r == p)
			break;
		if (r < 0 && errno != EINTR)
			die("%s: waitpid: %s", what, strerror(errno));
		if (now_ns() > deadline) {
			kill(p, SIGKILL);
			waitpid(p, &st, 0);
			g_child = 0;
			die("%s: the child did not exit; killed", what);
		}
		usleep(100);
	}
	g_child = 0;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		die("%s: the child failed (%s %d)", what,
		    WIFEXITED(st) ? "exit status" : "signal",
		    WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
}

/* A polling loop's patience: every 4096 failed polls, look at the clock
 * (no progress for STALL_NS is a failure) and, at most every 50 ms, at the
 * peer process (gone twice in a row with no progress in between is a
 * failure; the first time may be a race with its last publication). The
 * look at the peer is a system call (waitid, getppid): more often, it
 * would land in the round trips it interrupts and show in their p99. */
struct spin {
	uint32_t fails;
	int dead_seen;
	uint64_t last_prog, dead_prog, t_last, t_peer;
	pid_t peer;
	const char *what;
};

static void spin_init(struct spin *s, pid_t peer, const char *what)
{
	memset(s, 0, sizeof *s);
	s->peer = peer;
	s->what = what;
	s->t_last = s->t_peer = now_ns();
	s->last_prog = UINT64_MAX;
}

__attribute__((noinline)) static void spin_slow(struct spin *s, uint64_t prog)
{
	const uint64_t t = now_ns();

	if (prog != s->last_prog) {
		s->last_prog = prog;
		s->t_last = t;
	} else if (t - s->t_last > STALL_NS) {
		die("%s: no progress for %llu s", s->what, STALL_NS / 1000000000ull);
	}
	if (t - s->t_peer < 50000000ull)
		return;
	s->t_peer = t;
	if (s->peer > 0 && child_exited(s->peer)) {
		if (s->dead_seen && s->dead_prog == prog)
			die("%s: the other process exited early", s->what);
		s->dead_seen = 1;
		s->dead_prog = prog;
	}
	if (g_is_child && getppid() != g_parent)
		_exit(1);
}

static inline void spin_fail(struct spin *s, uint64_t prog)
{
	if (__builtin_expect((++s->fails & 0xfff) != 0, 1)) {
		cpu_relax();
		return;
	}
	spin_slow(s, prog);
}

static void start_thread(pthread_t *t, void *(*fn)(void *), void *arg)
{
	int e = pthread_create(t, NULL, fn, arg);

	if (e != 0)
		die("pthread_create: %s", strerror(e));
}

/* ---- configs ---------------------------------------------------------------------- */

static rmpsc_ring *ring_new(void)
{
	rmpsc_ring_config cfg;
	rmpsc_ring *r;

	ck(rmpsc_ring_config_init(&cfg, sizeof cfg), "rmpsc_ring_config_init");
	cfg.capacity = g_capacity;
	cfg.elem_size = 8;
	cfg.flags = RMPSC_RING_F_PREFAULT;
	ck(rmpsc_ring_create(&cfg, &r), "rmpsc_ring_create");
	return r;
}

/* A shared ring of @cap slots of @esz bytes, prefaulted: created as
 * @role (@fd < 0), or that role attached to the memfd @fd (@esz and @cap
 * then checked against it). */
static rmpsc_shm *shm_ring(int fd, uint32_t role, uint32_t esz, uint32_t cap, bool fence)
{
	rmpsc_shm_config cfg;
	rmpsc_shm *s;

	ck(rmpsc_shm_config_init(&cfg, sizeof cfg), "rmpsc_shm_config_init");
	cfg.role = role;
	cfg.capacity = cap;
	cfg.elem_size = esz;
	cfg.flags = RMPSC_SHM_F_PREFAULT | (fence ? RMPSC_SHM_F_FENCE : 0u);
	if (fd < 0)
		ck(rmpsc_shm_create(&cfg, &s), "rmpsc_shm_create");
	else
		ck(rmpsc_shm_attach(fd, &cfg, &s), "rmpsc_shm_attach");
	return s;
}

static rmpsc_shm *shm_new(uint32_t role, bool fence)
{
	return shm_ring(-1, role, 8, g_capacity, fence);
}

static rmpsc_shm *shm_join(int fd, uint32_t role)
{
	return shm_ring(fd, role, 8, g_capacity, false);
}

/* The global expedited membarrier the default shared ring needs. */
static int membarrier_global_ok(void)
{
	long cmds = syscall(__NR_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);

	return cmds >= 0 && (cmds & MEMBARRIER_CMD_GLOBAL_EXPEDITED) != 0;
}

/* ==== 1. throughput ================================================================= */

enum tp_mode { TP_SINGLE, TP_BATCH, TP_SPAN, TP_NMODES };
static const char *const tp_mode_name[TP_NMODES] = { "single", "batch64", "span64" };

struct tp_job {
	int mode;
	uint64_t warm_ns; /* from the consumer's first item: not timed */
	uint64_t dur_ns;  /* then timed */
};

/* The stop handshake, in a MAP_SHARED page both processes see: the
 * consumer sets stop when the timed part is over; the producer, which
 * looks at it every 256 items, stops and publishes how many it pushed. */
struct tp_ctl {
	_Atomic uint32_t stop;
	uint8_t pad0[60];
	_Atomic uint64_t total;
	_Atomic uint32_t done;
	uint8_t pad1[52];
};

static struct tp_ctl *g_ctl;

static inline bool tp_stopped(void)
{
	return atomic_load_explicit(&g_ctl->stop, memory_order_relaxed) != 0;
}

static void tp_finish(uint64_t total)
{
	atomic_store_explicit(&g_ctl->total, total, memory_order_relaxed);
	atomic_store_explicit(&g_ctl->done, 1, memory_order_release);
}

/* The consumer's clock: warm-up, then the timed part, then stop. */
struct tp_clock {
	uint64_t start, t0, t1, e0, e1;
	int phase; /* 0 warm-up, 1 timed, 2 stopped (draining) */
};

__attribute__((noinline)) static void tp_tick(struct tp_clock *c, const struct tp_job *j,
					      uint64_t e)
{
	const uint64_t t = now_ns();

	if (c->start == 0)
		c->start = t; /* the first look, shortly after the first item */
	if (c->phase == 0 && t - c->start >= j->warm_ns) {
		c->phase = 1;
		c->t0 = t;
		c->e0 = e;
	} else if (c->phase == 1 && t - c->t0 >= j->dur_ns) {
		c->phase = 2;
		c->t1 = t;
		c->e1 = e;
		atomic_store_explicit(&g_ctl->stop, 1, memory_order_relaxed);
	}
}

/* Drained, with the ring found empty: the producer has stopped and
 * everything it pushed was taken. Its last items were published before
 * done, but a consumer may still see the ring empty for a while after
 * that: the shared producer destroys its handle when it stops, and while
 * that close decides where the stream ends (ring_core.h, E7) the consumer
 * only takes what it saw published before the close began (tens of us
 * here). So a shortfall is a loss only once it lasts 2 s (@since: when it
 * was first seen, 0 before). */
static bool tp_drained(uint64_t e, uint64_t *since)
{
	uint64_t total;

	if (!atomic_load_explicit(&g_ctl->done, memory_order_acquire))
		return false;
	total = atomic_load_explicit(&g_ctl->total, memory_order_relaxed);
	if (e == total)
		return true;
	if (*since == 0)
		*since = now_ns();
	if (e > total || now_ns() - *since > 2000000000ull)
		die("throughput consumer: %" PRIu64 " items taken, the producer pushed %" PRIu64,
		    e, total);
	return false;
}

/* The shared producer destroys its handle when it is done, which closes
 * the ring: -EPIPE after the stop is the end of the stream, not an error. */
static inline bool tp_end(int r, const struct tp_clock *c)
{
	return r == -EPIPE && c->phase == 2;
}

static inline void span_fill(const rmpsc_span *s, uint64_t v)
{
	for (uint32_t g = 0; g < s->nseg; g++) {
		uint64_t *p = s->iov[g].iov_base;

		for (uint32_t x = 0; x < s->count[g]; x++)
			p[x] = v++;
	}
}

static inline uint64_t span_check(const rmpsc_span *s, uint64_t v)
{
	uint64_t bad = 0;

	for (uint32_t g = 0; g < s->nseg; g++) {
		const uint64_t *p = s->iov[g].iov_base;

		for (uint32_t x = 0; x < s->count[g]; x++)
			bad |= p[x] ^ v++;
	}
	return bad;
}

/*
 * The producer and the consumer, once per API (P: rmpsc_ring or rmpsc_shm,
 * Q its handle type), calling the library's exported functions as an
 * application does. The producer writes 0, 1, 2, ... until told to stop;
 * the consumer checks every value, looks at the clock every 4096 items
 * (64 calls in the batch modes) and returns Mitems/s over the timed part.
 */
#define TP_FUNCS(P, Q)                                                                     \
	static void P##_produce(Q *q, const struct tp_job *j, pid_t peer)                  \
	{                                                                                  \
		struct spin sp;                                                            \
		uint64_t buf[BATCH];                                                       \
		uint64_t i = 0;                                                            \
		int r;                                                                     \
                                                                                           \
		spin_init(&sp, peer, #P " producer");                                      \
		if (j->mode == TP_SINGLE) {                                                \
			for (;;) {                                                         \
				if (__builtin_expect((i & 255) == 0, 0) && tp_stopped())   \
					break;                                             \
				r = P##_push(q, &i);                                       \
				if (__builtin_expect(r == 0, 1)) {                         \
					i++;                                               \
					continue;                                          \
				}                                                          \
				if (r != -EAGAIN)                                          \
					ck(r, #P "_push");                                 \
				if (tp_stopped())                                          \
					break;                                             \
				spin_fail(&sp, i);                                         \
			}                                                                  \
		} else if (j->mode == TP_BATCH) {                                          \
			while (!tp_stopped()) {                                            \
				uint32_t off = 0;                                          \
                                                                                           \
				for (uint32_t x = 0; x < BATCH; x++)                       \
					buf[x] = i + x;                                    \
				while (off < BATCH) {                                      \
					r = P##_push_n(q, buf + off, BATCH - off);         \
					if (__builtin_expect(r > 0, 1)) {                  \
						off += (uint32_t)r;                        \
						continue;                                  \
					}                                                  \
					if (r != -EAGAIN)                                  \
						ck(r < 0 ? r : -EPROTO, #P "_push_n");     \
					spin_fail(&sp, i + off);                           \
				}                                                          \
				i += BATCH;                                                \
			}                                                                  \
		} else {                                                                   \
			while (!tp_stopped()) {                                            \
				rmpsc_span s;                                              \
                                                                                           \
				r = P##_reserve(q, BATCH, &s);                             \
				if (__builtin_expect(r > 0, 1)) {                          \
					span_fill(&s, i);                                  \
					ck(P##_commit(q, (uint32_t)r), #P "_commit");      \
					i += (uint32_t)r;                                  \
					continue;                                          \
				}                                                          \
				if (r != -EAGAIN)                                          \
					ck(r < 0 ? r : -EPROTO, #P "_reserve");            \
				spin_fail(&sp, i);                                         \
			}                                                                  \
		}                                                                          \
		tp_finish(i);                                                              \
	}                                                                                  \
                                                                                           \
	static double P##_consume(Q *q, const struct tp_job *j, pid_t peer)                \
	{                                                                                  \
		struct spin sp;                                                            \
		struct tp_clock ck_ = { .phase = 0 };                                      \
		uint64_t buf[BATCH];                                                       \
		uint64_t e = 0, bad = 0;                                                   \
		uint32_t calls = 0;                                                        \
		uint64_t since = 0;                                                        \
		int r;                                                                     \
                                                                                           \
		spin_init(&sp, peer, #P " consumer");                                      \
		for (;;) {                                                                 \
			if (j->mode == TP_SINGLE) {                                        \
				uint64_t v;                                                \
                                                                                           \
				r = P##_pop(q, &v);                                        \
				if (__builtin_expect(r == 0, 1)) {                         \
					bad |= v ^ e;                                      \
					if (__builtin_expect((++e & 4095) == 0, 0))        \
						tp_tick(&ck_, j, e);                       \
					continue;                                          \
				}                                                          \
				if (r != -EAGAIN && !tp_end(r, &ck_))                      \
					ck(r, #P "_pop");                                  \
			} else if (j->mode == TP_BATCH) {                                  \
				r = P##_pop_n(q, buf, BATCH);                              \
				if (__builtin_expect(r > 0, 1)) {                          \
					for (int x = 0; x < r; x++)                        \
						bad |= buf[x] ^ (e + (uint64_t)x);         \
					e += (uint32_t)r;                                  \
					if (__builtin_expect((++calls & 63) == 0, 0))      \
						tp_tick(&ck_, j, e);                       \
					continue;                                          \
				}                                                          \
				if (r != -EAGAIN && !tp_end(r, &ck_))                      \
					ck(r < 0 ? r : -EPROTO, #P "_pop_n");              \
			} else {                                                           \
				rmpsc_span s;                                              \
                                                                                           \
				r = P##_readable(q, BATCH, &s);                            \
				if (__builtin_expect(r > 0, 1)) {                          \
					bad |= span_check(&s, e);                          \
					ck(P##_advance(q, (uint32_t)r), #P "_advance");    \
					e += (uint32_t)r;                                  \
					if (__builtin_expect((++calls & 63) == 0, 0))      \
						tp_tick(&ck_, j, e);                       \
					continue;                                          \
				}                                                          \
				if (r != -EAGAIN && !tp_end(r, &ck_))                      \
					ck(r < 0 ? r : -EPROTO, #P "_readable");           \
			}                                                                  \
			/* Empty: after the stop, the end once the producer's count   \
			 * is reached; else the clock now and then. */                 \
			if (ck_.phase == 2 && tp_drained(e, &since))                       \
				break;                                                     \
			if ((sp.fails & 63) == 0 && e > 0)                                 \
				tp_tick(&ck_, j, e);                                       \
			spin_fail(&sp, e);                                                 \
		}                                                                          \
		if (bad != 0)                                                              \
			die(#P " consumer (%s): a received value was wrong",               \
			    tp_mode_name[j->mode]);                                        \
		return ck_.t1 > ck_.t0 ? (double)(ck_.e1 - ck_.e0) * 1e3 /                 \
						 (double)(ck_.t1 - ck_.t0)                 \
				       : 0.0;                                              \
	}

TP_FUNCS(rmpsc_ring, rmpsc_ring)
TP_FUNCS(rmpsc_shm, rmpsc_shm)

enum tp_impl { TPI_INPROC, TPI_XPROC, TPI_XPROC_FENCE, TPI_THREAD, TPI_THREAD_FENCE, TPI_N };
static const char *const tp_impl_name[TPI_N] = {
	"inproc", "shm-xproc", "shm-xproc-fence", "shm-thread", "shm-thread-fence",
};
static const char *const tp_impl_desc[TPI_N] = {
	"rmpsc_ring, two threads",
	"rmpsc_shm, two processes, global membarrier",
	"rmpsc_shm, two processes, RMPSC_SHM_F_FENCE",
	"rmpsc_shm, one process, two threads",
	"rmpsc_shm, one process, two threads, F_FENCE",
};

struct tp_ctx {
	const struct tp_job *job;
	rmpsc_ring *ring;
	int fd; /* the shared ring's memfd (shm) */
};

static void *tp_ring_producer(void *arg)
{
	struct tp_ctx *c = arg;

	pin(g_cpu[1]);
	rmpsc_ring_produce(c->ring, c->job, 0);
	return NULL;
}

/* A thread or a child: attach as the producer, produce, destroy our handle
 * (which closes the ring after the last commit). */
static void tp_shm_producer_body(struct tp_ctx *c, pid_t peer)
{
	rmpsc_shm *p = shm_join(c->fd, RMPSC_SHM_PRODUCER);

	rmpsc_shm_produce(p, c->job, peer);
	rmpsc_shm_destroy(p);
}

static void *tp_shm_producer_thread(void *arg)
{
	pin(g_cpu[1]);
	tp_shm_producer_body(arg, 0);
	return NULL;
}

static void tp_shm_producer_child(void *arg)
{
	tp_shm_producer_body(arg, 0);
}

static double tp_run(int impl, const struct tp_job *j)
{
	struct tp_ctx c = { .job = j, .ring = NULL, .fd = -1 };
	pthread_t t;
	double v;

	atomic_store(&g_ctl->stop, 0);
	atomic_store(&g_ctl->total, 0);
	atomic_store(&g_ctl->done, 0);

	if (impl == TPI_INPROC) {
		c.ring = ring_new();
		start_thread(&t, tp_ring_producer, &c);
		v = rmpsc_ring_consume(c.ring, j, 0);
		pthread_join(t, NULL);
		rmpsc_ring_destroy(c.ring);
		return v;
	}
	{
		const bool fence = impl == TPI_XPROC_FENCE || impl == TPI_THREAD_FENCE;
		rmpsc_shm *cons = shm_new(RMPSC_SHM_CONSUMER, fence);

		c.fd = rmpsc_shm_fd(cons);
		ck(c.fd, "rmpsc_shm_fd");
		if (impl == TPI_THREAD || impl == TPI_THREAD_FENCE) {
			start_thread(&t, tp_shm_producer_thread, &c);
			v = rmpsc_shm_consume(cons, j, 0);
			pthread_join(t, NULL);
		} else {
			pid_t p = spawn(tp_shm_producer_child, &c);

			v = rmpsc_shm_consume(cons, j, p);
			reap(p, "throughput producer");
		}
		rmpsc_shm_destroy(cons);
	}
	return v;
}

/* ==== 2. ping-pong ================================================================== */

struct pp_job {
	uint64_t warm, n;
	uint64_t *samples; /* n round trips, in ticks */
};

/* The pinger (this thread, CPU 0) and the echo (the other side), once per
 * API: spin pops on both sides. */
#define PP_FUNCS(P, Q)                                                                     \
	static void P##_pp_push(Q *q, uint64_t v, struct spin *sp)                         \
	{                                                                                  \
		int r;                                                                     \
                                                                                           \
		while ((r = P##_push(q, &v)) != 0) {                                       \
			if (r != -EAGAIN)                                                  \
				ck(r, #P "_push");                                         \
			spin_fail(sp, 0);                                                  \
		}                                                                          \
	}                                                                                  \
                                                                                           \
	static void P##_echo(Q *in, Q *out)                                                \
	{                                                                                  \
		struct spin sp;                                                            \
		uint64_t v, got = 0;                                                       \
		int r;                                                                     \
                                                                                           \
		spin_init(&sp, 0, #P " echo");                                             \
		for (;;) {                                                                 \
			while ((r = P##_pop(in, &v)) != 0) {                               \
				if (r != -EAGAIN)                                          \
					ck(r, #P "_pop (echo)");                           \
				spin_fail(&sp, got);                                       \
			}                                                                  \
			got++;                                                             \
			if (v == PP_STOP)                                                  \
				return;                                                    \
			P##_pp_push(out, v + 1, &sp);                                      \
		}                                                                          \
	}                                                                                  \
                                                                                           \
	static void P##_ping(Q *there, Q *back, const struct pp_job *j, pid_t peer)        \
	{                                                                                  \
		struct spin sp;                                                            \
		const uint64_t all = j->warm + j->n;                                       \
		int r;                                                                     \
                                                                                           \
		spin_init(&sp, peer, #P " ping");                                          \
		for (uint64_t i = 0; i < all; i++) {                                       \
			const uint64_t t0 = ticks();                                       \
			uint64_t t1, v;                                                    \
                                                                                           \
			P##_pp_push(there, i, &sp);                                        \
			while ((r = P##_pop(back, &v)) != 0) {                             \
				if (r != -EAGAIN)                                          \
					ck(r, #P "_pop (ping)");                           \
				spin_fail(&sp, i);                                         \
			}                                                                  \
			t1 = ticks();                                                      \
			if (v != i + 1)                                                    \
				die(#P " ping: got %" PRIu64 " back for %" PRIu64, v, i);  \
			if (i >= j->warm)                                                  \
				j->samples[i - j->warm] = t1 - t0;                         \
		}                                                                          \
		P##_pp_push(there, PP_STOP, &sp);                                          \
	}

PP_FUNCS(rmpsc_ring, rmpsc_ring)
PP_FUNCS(rmpsc_shm, rmpsc_shm)

enum pp_impl {
	PPI_INPROC, PPI_XPROC, PPI_XPROC_FENCE, PPI_THREAD, PPI_PIPE, PPI_SOCK, PPI_MQ, PPI_N
};
static const char *const pp_impl_name[PPI_N] = {
	"inproc", "shm-xproc", "shm-xproc-fence", "shm-thread", "pipe", "socketpair", "mqueue",
};
static const char *const pp_impl_desc[PPI_N] = {
	"rmpsc_ring pair, two threads, spin pop",
	"rmpsc_shm pair, two processes, spin pop",
	"rmpsc_shm pair, two processes, F_FENCE",
	"rmpsc_shm pair, one process, two threads",
	"two pipes, two processes, blocking read",
	"AF_UNIX SOCK_STREAM, two processes",
	"two POSIX mqueues, two processes",
};

struct pp_ctx {
	rmpsc_ring *r[2];       /* inproc: [0] there, [1] back */
	int fd[2];              /* shm: the memfds of there and back */
	int rfd, wfd;           /* pipe / socket: the echo's ends */
	mqd_t mq_in, mq_out;    /* mqueue: the echo's ends */
};

static void *pp_ring_echo(void *arg)
{
	struct pp_ctx *c = arg;

	pin(g_cpu[1]);
	rmpsc_ring_echo(c->r[0], c->r[1]);
	return NULL;
}

static void pp_shm_echo_body(struct pp_ctx *c)
{
	rmpsc_shm *in = shm_join(c->fd[0], RMPSC_SHM_CONSUMER);
	rmpsc_shm *out = shm_join(c->fd[1], RMPSC_SHM_PRODUCER);

	rmpsc_shm_echo(in, out);
	rmpsc_shm_destroy(out);
	rmpsc_shm_destroy(in);
}

static void *pp_shm_echo_thread(void *arg)
{
	pin(g_cpu[1]);
	pp_shm_echo_body(arg);
	return NULL;
}

static void pp_shm_echo_child(void *arg)
{
	pp_shm_echo_body(arg);
}

/* 8 bytes through a descriptor; 0 at EOF. */
static int read8(int fd, uint64_t *v)
{
	size_t got = 0;

	while (got < 8) {
		ssize_t r = read(fd, (char *)v + got, 8 - got);

		if (r > 0)
			got += (size_t)r;
		else if (r == 0)
			return 0;
		else if (errno != EINTR)
			die("read: %s", strerror(errno));
	}
	return 1;
}

static void write8(int fd, uint64_t v)
{
	size_t done = 0;

	while (done < 8) {
		ssize_t r = write(fd, (const char *)&v + done, 8 - done);

		if (r > 0)
			done += (size_t)r;
		else if (r < 0 && errno != EINTR)
			die("write: %s", strerror(errno));
	}
}

static void pp_fd_echo_child(void *arg)
{
	struct pp_ctx *c = arg;
	uint64_t v;

	while (read8(c->rfd, &v) && v != PP_STOP)
		write8(c->wfd, v + 1);
}

static void pp_fd_ping(int wfd, int rfd, const struct pp_job *j)
{
	const uint64_t all = j->warm + j->n;

	for (uint64_t i = 0; i < all; i++) {
		const uint64_t t0 = ticks();
		uint64_t t1, v;

		write8(wfd, i);
		if (!read8(rfd, &v))
			die("ping: the echo process closed its end early");
		t1 = ticks();
		if (v != i + 1)
			die("ping: got %" PRIu64 " back for %" PRIu64, v, i);
		if (i >= j->warm)
			j->samples[i - j->warm] = t1 - t0;
	}
	write8(wfd, PP_STOP);
}

static void mq_put(mqd_t q, uint64_t v)
{
	while (mq_send(q, (const char *)&v, 8, 0) != 0)
		if (errno != EINTR)
			die("mq_send: %s", strerror(errno));
}

/* @p peer: the echo process, looked at every second while waiting (the
 * pinger's side; the echo's parent is watched by PR_SET_PDEATHSIG). */
static uint64_t mq_get(mqd_t q, pid_t peer)
{
	uint64_t v;
	ssize_t r;

	for (;;) {
		if (peer > 0) {
			struct timespec dl;

			clock_gettime(CLOCK_REALTIME, &dl);
			dl.tv_sec += 1;
			r = mq_timedreceive(q, (char *)&v, 8, NULL, &dl);
		} else {
			r = mq_receive(q, (char *)&v, 8, NULL);
		}
		if (r >= 0)
			break;
		if (errno == ETIMEDOUT && child_exited(peer))
			die("mqueue ping: the echo process exited early");
		if (errno != EINTR && errno != ETIMEDOUT)
			die("mq_receive: %s", strerror(errno));
	}
	if (r != 8)
		die("mq_receive: %zd bytes", r);
	return v;
}

static void pp_mq_echo_child(void *arg)
{
	struct pp_ctx *c = arg;
	uint64_t v;

	while ((v = mq_get(c->mq_in, 0)) != PP_STOP)
		mq_put(c->mq_out, v + 1);
}

static int g_mq_ok = -1; /* -1 not tried, 0 unavailable, 1 works */
static char g_mq_why[128];

/* Two queues of 8-byte messages; their names are unlinked before this
 * returns (both ends keep the queues: the child inherits the
 * descriptors). 0, or -errno when POSIX message queues are unavailable. */
static int mq_pair(mqd_t q[2])
{
	struct mq_attr a;

	memset(&a, 0, sizeof a);
	a.mq_maxmsg = 4;
	a.mq_msgsize = 8;
	for (int i = 0; i < 2; i++) {
		snprintf(g_mq_name[i], sizeof g_mq_name[i], "/rmpsc_bench_shm.%d.%d",
			 (int)getpid(), i);
		q[i] = mq_open(g_mq_name[i], O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &a);
		if (q[i] == (mqd_t)-1) {
			const int e = errno;

			g_mq_name[i][0] = '\0';
			if (i == 1)
				mq_close(q[0]);
			cleanup();
			return -e;
		}
	}
	for (int i = 0; i < 2; i++) {
		if (mq_unlink(g_mq_name[i]) != 0)
			die("mq_unlink(%s): %s", g_mq_name[i], strerror(errno));
		g_mq_name[i][0] = '\0';
	}
	return 0;
}

/* One ping-pong measurement: the samples in j->samples; false: skipped. */
static bool pp_run(int impl, const struct pp_job *j)
{
	struct pp_ctx c;
	pthread_t t;
	pid_t p;

	memset(&c, 0, sizeof c);
	switch (impl) {
	case PPI_INPROC:
		c.r[0] = ring_new();
		c.r[1] = ring_new();
		start_thread(&t, pp_ring_echo, &c);
		rmpsc_ring_ping(c.r[0], c.r[1], j, 0);
		pthread_join(t, NULL);
		rmpsc_ring_destroy(c.r[0]);
		rmpsc_ring_destroy(c.r[1]);
		return true;
	case PPI_XPROC:
	case PPI_XPROC_FENCE:
	case PPI_THREAD: {
		const bool fence = impl == PPI_XPROC_FENCE;
		rmpsc_shm *there = shm_new(RMPSC_SHM_PRODUCER, fence);
		rmpsc_shm *back = shm_new(RMPSC_SHM_CONSUMER, fence);

		c.fd[0] = rmpsc_shm_fd(there);
		c.fd[1] = rmpsc_shm_fd(back);
		if (impl == PPI_THREAD) {
			start_thread(&t, pp_shm_echo_thread, &c);
			rmpsc_shm_ping(there, back, j, 0);
			pthread_join(t, NULL);
		} else {
			p = spawn(pp_shm_echo_child, &c);
			rmpsc_shm_ping(there, back, j, p);
			reap(p, "ping-pong echo");
		}
		rmpsc_shm_destroy(there);
		rmpsc_shm_destroy(back);
		return true;
	}
	case PPI_PIPE: {
		int a[2], b[2];

		if (pipe2(a, O_CLOEXEC) != 0 || pipe2(b, O_CLOEXEC) != 0)
			die("pipe2: %s", strerror(errno));
		c.rfd = a[0];
		c.wfd = b[1];
		p = spawn(pp_fd_echo_child, &c);
		close(a[0]);
		close(b[1]);
		pp_fd_ping(a[1], b[0], j);
		reap(p, "pipe echo");
		close(a[1]);
		close(b[0]);
		return true;
	}
	case PPI_SOCK: {
		int sv[2];

		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
			die("socketpair: %s", strerror(errno));
		c.rfd = c.wfd = sv[1];
		p = spawn(pp_fd_echo_child, &c);
		close(sv[1]);
		pp_fd_ping(sv[0], sv[0], j);
		reap(p, "socketpair echo");
		close(sv[0]);
		return true;
	}
	default: {
		mqd_t q[2];
		int e;

		if (g_mq_ok == 0)
			return false;
		e = mq_pair(q);
		if (e < 0) {
			g_mq_ok = 0;
			snprintf(g_mq_why, sizeof g_mq_why, "mq_open: %s", strerror(-e));
			return false;
		}
		g_mq_ok = 1;
		c.mq_in = q[0];
		c.mq_out = q[1];
		p = spawn(pp_mq_echo_child, &c);
		{
			const uint64_t all = j->warm + j->n;

			for (uint64_t i = 0; i < all; i++) {
				const uint64_t t0 = ticks();
				uint64_t t1, v;

				mq_put(q[0], i);
				v = mq_get(q[1], p);
				t1 = ticks();
				if (v != i + 1)
					die("mqueue ping: got %" PRIu64 " back for %" PRIu64, v, i);
				if (i >= j->warm)
					j->samples[i - j->warm] = t1 - t0;
			}
			mq_put(q[0], PP_STOP);
		}
		reap(p, "mqueue echo");
		mq_close(q[0]);
		mq_close(q[1]);
		return true;
	}
	}
}

/* ==== 3. wake-up latency ============================================================ */

enum wk_impl { WKI_INPROC, WKI_XPROC, WKI_XPROC_FENCE, WKI_THREAD, WKI_N };
static const char *const wk_impl_name[WKI_N] = {
	"inproc", "shm-xproc", "shm-xproc-fence", "shm-thread",
};
static const char *const wk_impl_desc[WKI_N] = {
	"rmpsc_ring_pop_timed(-1), two threads",
	"rmpsc_shm_pop_timed(-1), two processes, global",
	"rmpsc_shm_pop_timed(-1), two processes, F_FENCE",
	"rmpsc_shm_pop_timed(-1), one process, global",
};

/* In a MAP_SHARED page the sender and the receiver both see. */
struct wk_shared {
	_Atomic uint64_t ack; /* messages the receiver has taken */
	uint64_t pad[7];
	uint64_t push_ns[];   /* the sender's push call, per timed message */
};

struct wk_job {
	uint64_t warm, n, pause_ns;
	struct wk_shared *sh;
	uint64_t *lat;        /* n send -> receive latencies, ns */
	double *rcpu_ns;      /* out: the receiver's CPU time per message, ns */
};

/* This thread's CPU time (user + system), ns. */
static uint64_t thread_cpu_ns(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_THREAD, &ru) != 0)
		die("getrusage: %s", strerror(errno));
	return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * 1000000000ull +
	       ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000ull;
}

struct wk_ctx {
	const struct wk_job *job;
	rmpsc_ring *ring;
	int fd;
};

/* The sender: wait until the receiver has taken the last message, pause
 * (the receiver falls asleep), send the time, time the push call. */
#define WK_FUNCS(P, Q)                                                                     \
	static void P##_wk_send(Q *q, const struct wk_job *j)                              \
	{                                                                                  \
		struct spin sp;                                                            \
		const uint64_t all = j->warm + j->n;                                       \
                                                                                           \
		spin_init(&sp, 0, #P " wake sender");                                      \
		for (uint64_t k = 0; k < all; k++) {                                       \
			uint64_t t0, t1, until;                                            \
			int r;                                                             \
                                                                                           \
			while (atomic_load_explicit(&j->sh->ack, memory_order_acquire) != k) \
				spin_fail(&sp, k);                                         \
			/* 50 us and 0..15 us more, so that nothing runs in step */     \
			until = now_ns() + j->pause_ns + (k * 7919u % 16u) * 1000u;       \
			while (now_ns() < until)                                           \
				cpu_relax();                                               \
			t0 = now_ns();                                                     \
			r = P##_push(q, &t0);                                              \
			t1 = now_ns();                                                     \
			ck(r, #P "_push (wake)");                                          \
			if (k >= j->warm)                                                  \
				j->sh->push_ns[k - j->warm] = t1 - t0;                     \
		}                                                                          \
	}                                                                                  \
                                                                                           \
	static void P##_wk_recv(Q *q, const struct wk_job *j)                              \
	{                                                                                  \
		const uint64_t all = j->warm + j->n;                                       \
		uint64_t last = 0, c0 = 0;                                                 \
                                                                                           \
		for (uint64_t k = 0; k < all; k++) {                                       \
			uint64_t v, t;                                                     \
                                                                                           \
			if (k == j->warm)                                                  \
				c0 = thread_cpu_ns();                                      \
			ck(P##_pop_timed(q, &v, -1, NULL), #P "_pop_timed");               \
			t = now_ns();                                                      \
			if (v < last || v > t)                                             \
				die(#P " wake: message %" PRIu64 " carries a wrong time", k); \
			last = v;                                                          \
			if (k >= j->warm)                                                  \
				j->lat[k - j->warm] = t - v;                               \
			atomic_store_explicit(&j->sh->ack, k + 1, memory_order_release);   \
		}                                                                          \
		*j->rcpu_ns = (double)(thread_cpu_ns() - c0) / (double)j->n;               \
	}

WK_FUNCS(rmpsc_ring, rmpsc_ring)
WK_FUNCS(rmpsc_shm, rmpsc_shm)

static void *wk_ring_sender(void *arg)
{
	struct wk_ctx *c = arg;

	pin(g_cpu[1]);
	rmpsc_ring_wk_send(c->ring, c->job);
	return NULL;
}

static void wk_shm_sender_body(struct wk_ctx *c)
{
	rmpsc_shm *p = shm_join(c->fd, RMPSC_SHM_PRODUCER);

	rmpsc_shm_wk_send(p, c->job);
	rmpsc_shm_destroy(p);
}

static void *wk_shm_sender_thread(void *arg)
{
	pin(g_cpu[1]);
	wk_shm_sender_body(arg);
	return NULL;
}

static void wk_shm_sender_child(void *arg)
{
	wk_shm_sender_body(arg);
}

static void wk_run(int impl, const struct wk_job *j)
{
	struct wk_ctx c = { .job = j, .ring = NULL, .fd = -1 };
	pthread_t t;

	atomic_store(&j->sh->ack, 0);
	if (impl == WKI_INPROC) {
		c.ring = ring_new();
		start_thread(&t, wk_ring_sender, &c);
		rmpsc_ring_wk_recv(c.ring, j);
		pthread_join(t, NULL);
		rmpsc_ring_destroy(c.ring);
		return;
	}
	{
		rmpsc_shm *cons = shm_new(RMPSC_SHM_CONSUMER, impl == WKI_XPROC_FENCE);

		c.fd = rmpsc_shm_fd(cons);
		if (impl == WKI_THREAD) {
			start_thread(&t, wk_shm_sender_thread, &c);
			rmpsc_shm_wk_recv(cons, j);
			pthread_join(t, NULL);
		} else {
			pid_t p = spawn(wk_shm_sender_child, &c);

			rmpsc_shm_wk_recv(cons, j);
			reap(p, "wake sender");
		}
		rmpsc_shm_destroy(cons);
	}
}

/* ==== results ======================================================================= */

struct res {
	const char *sec, *mode, *impl, *desc;
	bool skipped;
	int n;                      /* repetitions done */
	uint64_t samples;           /* per repetition (latency sections) */
	double q[NQ][MAX_REPS];     /* the quantities, per repetition */
};

static double qmed(const struct res *r, int k)
{
	return median(r->q[k], r->n);
}

static double qmin(const struct res *r, int k)
{
	double m = r->n ? r->q[k][0] : 0.0;

	for (int i = 1; i < r->n; i++)
		if (r->q[k][i] < m)
			m = r->q[k][i];
	return m;
}

static double qmax(const struct res *r, int k)
{
	double m = r->n ? r->q[k][0] : 0.0;

	for (int i = 1; i < r->n; i++)
		if (r->q[k][i] > m)
			m = r->q[k][i];
	return m;
}

/* Median over repetitions of a's value over b's in the same repetition. */
static double paired(const struct res *a, const struct res *b, int k)
{
	double t[MAX_REPS];
	int n = 0;

	if (a->n == 0 || b->n == 0)
		return NAN; /* printed as nan: a side did not run */
	for (int i = 0; i < a->n && i < b->n; i++)
		if (b->q[k][i] > 0)
			t[n++] = a->q[k][i] / b->q[k][i];
	return median(t, n);
}

static double ratio(const struct res *a, const struct res *b, int k)
{
	const double d = qmed(b, k);

	return a->n > 0 && d > 0 ? qmed(a, k) / d : NAN;
}

static void json_res(const struct res *r, const struct res *base, const char *const *qname,
		     int nq, const char *unit)
{
	if (!g_json || r->skipped || r->n == 0)
		return;
	printf("{\"section\":\"%s\",\"mode\":\"%s\",\"impl\":\"%s\",\"unit\":\"%s\",\"reps\":%d",
	       r->sec, r->mode, r->impl, unit, r->n);
	if (r->samples)
		printf(",\"samples_per_rep\":%" PRIu64, r->samples);
	for (int k = 0; k < nq; k++) {
		printf(",\"%s\":{\"median\":%.4g,\"min\":%.4g,\"max\":%.4g", qname[k], qmed(r, k),
		       qmin(r, k), qmax(r, k));
		if (base != NULL && base != r && base->n > 0)
			printf(",\"ratio\":%.4f,\"paired\":%.4f", ratio(r, base, k),
			       paired(r, base, k));
		printf(",\"reps\":[");
		for (int i = 0; i < r->n; i++)
			printf("%s%.4g", i ? "," : "", r->q[k][i]);
		printf("]}");
	}
	printf("}\n");
}

static const char *verdict(double v, bool ok)
{
	return isnan(v) ? "(not run)" : ok ? "ok" : "BELOW TARGET";
}

/* The noise: other processes' CPU use and steal time over the run. */
struct ticks_stat {
	uint64_t total, busy, steal;
};

static void cpu_stat(struct ticks_stat *t)
{
	FILE *f = fopen("/proc/stat", "r");
	uint64_t v[8] = { 0 };

	memset(t, 0, sizeof *t);
	if (f == NULL)
		return;
	if (fscanf(f, "cpu %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
		   " %" SCNu64 " %" SCNu64, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
		   &v[7]) == 8) {
		for (int i = 0; i < 8; i++)
			t->total += v[i];
		t->busy = v[0] + v[1] + v[2] + v[5] + v[6];
		t->steal = v[7];
	}
	fclose(f);
}

/* What else ran between begin and end: other processes' CPUs on average
 * (the machine's busy time less ours and our reaped children's). */
struct noise {
	struct ticks_stat st;
	double own;  /* our CPU seconds, children included */
	uint64_t wall;
};

static double own_cpu_s(void)
{
	struct rusage a, b;

	if (getrusage(RUSAGE_SELF, &a) != 0 || getrusage(RUSAGE_CHILDREN, &b) != 0)
		return 0.0;
	return (double)(a.ru_utime.tv_sec + a.ru_stime.tv_sec + b.ru_utime.tv_sec +
			b.ru_stime.tv_sec) +
	       (double)(a.ru_utime.tv_usec + a.ru_stime.tv_usec + b.ru_utime.tv_usec +
			b.ru_stime.tv_usec) / 1e6;
}

static void noise_begin(struct noise *n)
{
	cpu_stat(&n->st);
	n->own = own_cpu_s();
	n->wall = now_ns();
}

/* Other processes' CPUs on average since @p n; @p steal: percent stolen. */
static double noise_end(const struct noise *n, double *steal)
{
	struct ticks_stat st;
	const double own = own_cpu_s() - n->own;
	const double wall = (double)(now_ns() - n->wall) / 1e9;
	double others = 0.0;

	cpu_stat(&st);
	*steal = 0.0;
	if (st.total > n->st.total && wall > 0) {
		others = ((double)(st.busy - n->st.busy) / (double)sysconf(_SC_CLK_TCK) - own) /
			 wall;
		*steal = 100.0 * (double)(st.steal - n->st.steal) / (double)(st.total - n->st.total);
	}
	return others > 0 ? others : 0.0;
}

static double g_noise[3] = { -1, -1, -1 }; /* per section: other processes' CPUs */

static void print_noise(int sec)
{
	if (g_noise[sec] < 0)
		return;
	fprintf(g_out, "   (other processes used %.2f CPUs on average during this section%s)\n",
		g_noise[sec], g_noise[sec] > 0.1 ? ": DISTURBED, the figures are not reliable" : "");
}

static void cpu_model(char *buf, size_t len)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[512];

	snprintf(buf, len, "unknown CPU");
	while (f != NULL && fgets(line, sizeof line, f) != NULL)
		if (strncmp(line, "model name", 10) == 0) {
			char *p = strchr(line, ':');

			if (p != NULL) {
				p += 1 + strspn(p + 1, " \t");
				p[strcspn(p, "\n")] = '\0';
				snprintf(buf, len, "%s", p);
			}
			break;
		}
	if (f != NULL)
		fclose(f);
}

static void read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");

	snprintf(buf, len, "unknown");
	if (f != NULL) {
		if (fgets(buf, (int)len, f) != NULL)
			buf[strcspn(buf, "\n")] = '\0';
		fclose(f);
	}
}

/* ==== 4. payload latency: the shared pool against a copy through the ring ============ */

/*
 * One payload of S bytes from this process to a child and an 8-byte
 * answer back, timed round trip by round trip (the TSC on this CPU), for
 * S from 64 B to 4 MiB, two ways:
 *  - pool: the payload is written in place in a slab of a RMPSC_POOL_F_SHARED
 *    pool (its first and last 8 bytes stamped: what a sender writes is not
 *    timed, both ways), lent, and its 4-byte handle pushed through a shared
 *    ring; the child looks at the payload in place (rmpsc_shm_pool_payload,
 *    checks both stamps) and returns the handle through a return ring;
 *    this side reclaims it. Timed: alloc, stamps, lend, push, the child's
 *    pop and view, the handle's way back, reclaim.
 *  - copy: the same S bytes copied into a shared ring of 64-byte elements
 *    (push_n of S/64, pipelined with the child's pop_n into its own
 *    buffer), the child checks both stamps and answers through the return
 *    ring.
 * Both sides poll with the try calls. The pool's figure is meant to be
 * flat in S (iceoryx2's claim for zero-copy); the copy's grows with it.
 */
#define PL_NSIZES 6
static const size_t pl_size[PL_NSIZES] = { 64, 1024, 16384, 262144, 1u << 20, 4u << 20 };
#define PL_CHUNK 64u
#define PL_BYTES_CAP (uint32_t)((4u << 20) / PL_CHUNK) /* the largest payload */
#define PL_STOP UINT32_MAX

struct pl_ctx {
	int fds[1 + PL_NSIZES]; /* the pool's directory and tiers */
	int hand, back, bytes;  /* memfds: handles there, answers back, the copy ring */
	bool pool;
};

static void pl_push(rmpsc_shm *s, const void *v)
{
	int r;

	while ((r = rmpsc_shm_push(s, v)) != 0)
		if (r != -EAGAIN)
			ck(r, "rmpsc_shm_push (payload)");
		else
			cpu_relax();
}

static void pl_pop(rmpsc_shm *s, void *v)
{
	int r;

	while ((r = rmpsc_shm_pop(s, v)) != 0)
		if (r != -EAGAIN)
			ck(r, "rmpsc_shm_pop (payload)");
		else
			cpu_relax();
}

static void pl_child(void *arg)
{
	const struct pl_ctx *c = arg;
	rmpsc_shm *hand = shm_ring(c->hand, RMPSC_SHM_CONSUMER, 4, 64, false);
	rmpsc_shm *back = shm_ring(c->back, RMPSC_SHM_PRODUCER, 4, 64, false);
	rmpsc_shm *bytes = c->pool ? NULL : shm_ring(c->bytes, RMPSC_SHM_CONSUMER, PL_CHUNK,
						     PL_BYTES_CAP, false);
	rmpsc_shm_pool *sp = NULL;
	unsigned char *buf = NULL;

	if (c->pool)
		ck(rmpsc_shm_pool_attach(c->fds, 1 + PL_NSIZES, &sp), "rmpsc_shm_pool_attach");
	else if ((buf = malloc(pl_size[PL_NSIZES - 1])) == NULL)
		die("malloc");
	for (;;) {
		uint32_t m;
		uint64_t a, z;

		pl_pop(hand, &m);
		if (m == PL_STOP)
			break;
		if (c->pool) {
			struct iovec v;

			ck(rmpsc_shm_pool_payload(sp, m, &v), "rmpsc_shm_pool_payload");
			if (v.iov_len < 16)
				die("payload of %zu bytes", v.iov_len);
			memcpy(&a, v.iov_base, 8);
			memcpy(&z, (const unsigned char *)v.iov_base + v.iov_len - 8, 8);
		} else {
			/* m: the payload's 64-byte chunks, copied out as they come. */
			for (uint32_t got = 0; got < m;) {
				int r = rmpsc_shm_pop_n(bytes, buf + (size_t)got * PL_CHUNK, m - got);

				if (r > 0)
					got += (uint32_t)r;
				else if (r != -EAGAIN)
					ck(r, "rmpsc_shm_pop_n (payload)");
				else
					cpu_relax();
			}
			memcpy(&a, buf, 8);
			memcpy(&z, buf + (size_t)m * PL_CHUNK - 8, 8);
		}
		if (a != z)
			die("payload stamps differ: %" PRIu64 " / %" PRIu64, a, z);
		pl_push(back, &m);
	}
	if (sp)
		rmpsc_shm_pool_destroy(sp);
	free(buf);
	if (bytes)
		rmpsc_shm_destroy(bytes);
	rmpsc_shm_destroy(back);
	rmpsc_shm_destroy(hand);
}

/* One way (@pool or copy), every size, @n round trips each (after @n / 10
 * warm-up): the p50 and p99 in ns per size into @p50, @p99. */
static void pl_run(bool pool, uint64_t n, double *p50, double *p99)
{
	static const rmpsc_pool_tier tiers[PL_NSIZES] = {
		{ .slab_size = 64, .count = 8 },      { .slab_size = 1024, .count = 8 },
		{ .slab_size = 16384, .count = 8 },   { .slab_size = 262144, .count = 4 },
		{ .slab_size = 1u << 20, .count = 2 }, { .slab_size = 4u << 20, .count = 2 },
	};
	struct pl_ctx c;
	rmpsc_pool *p = NULL;
	rmpsc_shm *hand, *back, *bytes = NULL;
	unsigned char *src = NULL;
	uint64_t *lat = malloc(n * sizeof *lat);
	pid_t child;

	if (!lat)
		die("malloc");
	memset(&c, 0, sizeof c);
	c.pool = pool;
	hand = shm_ring(-1, RMPSC_SHM_PRODUCER, 4, 64, false);
	back = shm_ring(-1, RMPSC_SHM_CONSUMER, 4, 64, false);
	c.hand = rmpsc_shm_fd(hand);
	c.back = rmpsc_shm_fd(back);
	if (pool) {
		rmpsc_pool_config pc;

		ck(rmpsc_pool_config_init(&pc, sizeof pc), "rmpsc_pool_config_init");
		pc.flags = RMPSC_POOL_F_SHARED | RMPSC_POOL_F_PREFAULT;
		pc.tiers = tiers;
		pc.ntiers = PL_NSIZES;
		ck(rmpsc_pool_create(&pc, &p), "rmpsc_pool_create (shared)");
		ck(rmpsc_pool_share_fds(p, c.fds, 1 + PL_NSIZES), "rmpsc_pool_share_fds");
	} else {
		bytes = shm_ring(-1, RMPSC_SHM_PRODUCER, PL_CHUNK, PL_BYTES_CAP, false);
		c.bytes = rmpsc_shm_fd(bytes);
		if ((src = malloc(pl_size[PL_NSIZES - 1])) == NULL)
			die("malloc");
		memset(src, 0x5a, pl_size[PL_NSIZES - 1]);
	}
	child = spawn(pl_child, &c);
	if (pool)
		for (int k = 0; k < 1 + PL_NSIZES; k++)
			close(c.fds[k]);
	for (int z = 0; z < PL_NSIZES; z++) {
		const size_t size = pl_size[z];
		const uint64_t all = n + n / 10;

		for (uint64_t i = 0; i < all; i++) {
			const uint64_t stamp = i * PL_NSIZES + (uint64_t)z;
			uint64_t t0, t1;
			uint32_t m, got;

			if (pool) {
				struct iovec sl;

				t0 = ticks();
				ck(rmpsc_pool_alloc(p, size, &m), "rmpsc_pool_alloc");
				ck(rmpsc_pool_slab(p, m, &sl), "rmpsc_pool_slab");
				memcpy(sl.iov_base, &stamp, 8);
				memcpy((unsigned char *)sl.iov_base + size - 8, &stamp, 8);
				ck(rmpsc_pool_set_len(p, m, size), "rmpsc_pool_set_len");
				ck(rmpsc_pool_lend(p, m), "rmpsc_pool_lend");
				pl_push(hand, &m);
				pl_pop(back, &got);
				if (got != m)
					die("pool: handle %u back for %u", got, m);
				ck(rmpsc_pool_reclaim(p, m), "rmpsc_pool_reclaim");
				t1 = ticks();
			} else {
				const uint32_t chunks = (uint32_t)(size / PL_CHUNK);

				memcpy(src, &stamp, 8);
				memcpy(src + size - 8, &stamp, 8);
				t0 = ticks();
				m = chunks;
				pl_push(hand, &m);
				for (uint32_t put = 0; put < chunks;) {
					int r = rmpsc_shm_push_n(bytes, src + (size_t)put * PL_CHUNK,
								 chunks - put);

					if (r > 0)
						put += (uint32_t)r;
					else if (r != -EAGAIN)
						ck(r, "rmpsc_shm_push_n (payload)");
					else
						cpu_relax();
				}
				pl_pop(back, &got);
				t1 = ticks();
				if (got != chunks)
					die("copy: answer %u for %u", got, chunks);
			}
			if (i >= n / 10)
				lat[i - n / 10] = t1 - t0;
		}
		qsort(lat, n, sizeof *lat, cmp_u64);
		p50[z] = (double)lat[n / 2] / g_tsc_per_ns;
		p99[z] = (double)lat[(size_t)((double)n * 0.99)] / g_tsc_per_ns;
	}
	{
		const uint32_t stop = PL_STOP;

		pl_push(hand, &stop);
	}
	reap(child, "payload receiver");
	if (p) {
		if (rmpsc_pool_available(p) != rmpsc_pool_capacity(p))
			die("pool: slabs missing at the end");
		ck(rmpsc_pool_destroy(p, 0, NULL), "rmpsc_pool_destroy");
	}
	if (bytes)
		rmpsc_shm_destroy(bytes);
	rmpsc_shm_destroy(back);
	rmpsc_shm_destroy(hand);
	free(src);
	free(lat);
}

/* ==== main ========================================================================== */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench_shm [--quick] [--reps N] [--only WHAT] [--impl LIST] [--json]\n"
		"                 [--capacity N] [--no-pin]\n"
		"  --quick         short runs, 3 reps (the whole run in < 20 s)\n"
		"  --reps N        repetitions, all implementations in turn in each (default 7,\n"
		"                  3 with --quick; 1..%d)\n"
		"  --only WHAT     throughput, pingpong, wake, payload, or a comma-separated list\n"
		"  --json          JSON lines on stdout (one per result row, a header and a\n"
		"                  summary line); the report goes to stderr\n"
		"  --impl LIST     implementations to run (default all): inproc, shm-xproc,\n"
		"                  shm-xproc-fence, shm-thread, shm-thread-fence, pipe,\n"
		"                  socketpair, mqueue (the ratios need inproc)\n"
		"  --capacity N    ring capacity in 8-byte slots, a power of two (default 65536,\n"
		"                  as bench_ring)\n"
		"  --no-pin        do not pin the two sides to CPUs 0 and 1\n",
		MAX_REPS);
}

static long parse_num(const char *s, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "bench_shm: bad number '%s' (%ld..%ld)\n", s, lo, hi);
		usage(stderr);
		exit(2);
	}
	return v;
}

static void progress(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fflush(stderr);
}

/* Implementation @p i of @p n in repetition @p r: the order reversed on odd
 * repetitions. */
static int order(int r, int i, int n)
{
	return r % 2 ? n - 1 - i : i;
}

static struct res g_tp[TP_NMODES][TPI_N];
static struct res g_pp[PPI_N];
static struct res g_wk[WKI_N];

int main(int argc, char **argv)
{
	int quick = 0, reps = -1, run_tp = 1, run_pp = 1, run_wk = 1, run_pl = 1, global_ok;
	static double pl_p50[2][PL_NSIZES][MAX_REPS], pl_p99[2][PL_NSIZES][MAX_REPS];
	struct utsname un;
	char model[256], clocksrc[64];
	struct noise run_noise, sec_noise;
	double steal;
	uint64_t w0, w1;

	g_out = stdout;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--quick") == 0) {
			quick = 1;
		} else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
			reps = (int)parse_num(argv[++i], 1, MAX_REPS);
		} else if (strcmp(argv[i], "--capacity") == 0 && i + 1 < argc) {
			g_capacity = (uint32_t)parse_num(argv[++i], 64, 1 << 24);
			if (g_capacity & (g_capacity - 1)) {
				fprintf(stderr, "bench_shm: --capacity: not a power of two\n");
				return 2;
			}
		} else if (strcmp(argv[i], "--impl") == 0 && i + 1 < argc) {
			g_impls = argv[++i];
		} else if (strcmp(argv[i], "--json") == 0) {
			g_json = 1;
		} else if (strcmp(argv[i], "--no-pin") == 0) {
			g_pin = 0;
		} else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
			char *list = argv[++i], *tok, *save = NULL;

			run_tp = run_pp = run_wk = run_pl = 0;
			for (tok = strtok_r(list, ",", &save); tok != NULL;
			     tok = strtok_r(NULL, ",", &save)) {
				if (strcmp(tok, "throughput") == 0)
					run_tp = 1;
				else if (strcmp(tok, "pingpong") == 0)
					run_pp = 1;
				else if (strcmp(tok, "wake") == 0)
					run_wk = 1;
				else if (strcmp(tok, "payload") == 0)
					run_pl = 1;
				else {
					fprintf(stderr, "bench_shm: --only: unknown '%s'\n", tok);
					usage(stderr);
					return 2;
				}
			}
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "bench_shm: unknown option '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (reps < 0)
		reps = quick ? 3 : 7;
	if (g_json)
		g_out = stderr;

	/* Sizes: full ~0.2-0.4 s per throughput run, 200k ring round trips
	 * and 50k kernel-IPC round trips per rep; quick about a tenth. */
	const uint64_t tp_warm_ns = quick ? 20000000ull : 50000000ull;
	const uint64_t tp_dur_ns = quick ? 100000000ull : 300000000ull;
	const uint64_t pp_ring_n = quick ? 20000 : 200000;
	const uint64_t pp_ipc_n = quick ? 5000 : 50000;
	const uint64_t wk_n = quick ? 1000 : 5000;
	const uint64_t wk_pause = 50000;

	{
		struct sigaction sa;

		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_signal;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGHUP, &sa, NULL);
		sigaction(SIGALRM, &sa, NULL);
		signal(SIGPIPE, SIG_IGN);
	}
	choose_cpus();
	pin(g_cpu[0]);
	calibrate();
	cpu_model(model, sizeof model);
	read_line("/sys/devices/system/clocksource/clocksource0/current_clocksource", clocksrc,
		  sizeof clocksrc);
	if (uname(&un) != 0)
		snprintf(un.release, sizeof un.release, "unknown");
	global_ok = membarrier_global_ok();

	{
		cpu_set_t set;
		int aff = -1;

		if (sched_getaffinity(0, sizeof set, &set) == 0)
			aff = CPU_COUNT(&set);
		fprintf(g_out,
			"bench_shm: the shared-memory ring (rmpsc_shm) next to the in-process ring "
			"(rmpsc_ring) and kernel IPC\n");
		fprintf(g_out, "machine: %ld CPUs online, %s, kernel %s, clocksource %s; "
			"libringmpsc %s\n", sysconf(_SC_NPROCESSORS_ONLN), model, un.release,
			clocksrc, rmpsc_version_string());
		if (g_pin)
			fprintf(g_out, "CPUs: consumer / pinger / receiver on CPU %d (parent), "
				"producer / echo / sender on CPU %d (thread or child)\n",
				g_cpu[0], g_cpu[1]);
		else
			fprintf(g_out, "CPUs: NOT pinned (%s; %d CPUs in the mask)\n",
				aff < 2 ? "fewer than two CPUs" : "--no-pin", aff);
		fprintf(g_out, "run: %s, %d reps, implementations in turn within each rep (order "
			"reversed every other rep); medians over reps; capacity %u x 8 B\n",
			quick ? "quick" : "full", reps, g_capacity);
		fprintf(g_out, "sizes: throughput %.0f ms warm-up + %.0f ms timed per run; ping-pong "
			"%" PRIu64 " round trips per rep (pipe, socketpair, mqueue %" PRIu64 "), 10%% "
			"more as warm-up; wake-up %" PRIu64 " messages per rep\n", tp_warm_ns / 1e6,
			tp_dur_ns / 1e6, pp_ring_n, pp_ipc_n, wk_n);
		fprintf(g_out, "timer: round trips with %s%s (%.1f ns per stamp pair); "
			"wake-ups with CLOCK_MONOTONIC across the CPUs\n",
			g_use_tsc ? "the TSC" : "CLOCK_MONOTONIC",
			g_use_tsc ? "" : " (no constant TSC)", g_timer_ns);
		if (g_use_tsc)
			fprintf(g_out, "       TSC %.4f ticks/ns\n", g_tsc_per_ns);
		fprintf(g_out, "membarrier(GLOBAL_EXPEDITED): %s\n",
			global_ok ? "available (the shared ring's default barrier)" :
				    "UNAVAILABLE: the default-barrier shared-ring rows are skipped");
		if (g_json)
			printf("{\"section\":\"header\",\"cpus\":%ld,\"cpu\":\"%s\",\"kernel\":\"%s\","
			       "\"clocksource\":\"%s\",\"library\":\"%s\",\"quick\":%d,\"reps\":%d,"
			       "\"capacity\":%u,\"pinned\":%d,\"cpu_a\":%d,\"cpu_b\":%d,"
			       "\"timer\":\"%s\",\"tsc_per_ns\":%.4f,\"membarrier_global\":%d,"
			       "\"tp_warm_ns\":%" PRIu64 ",\"tp_timed_ns\":%" PRIu64 ","
			       "\"pp_samples\":[%" PRIu64 ",%" PRIu64 "],\"wake_samples\":%" PRIu64
			       ",\"wake_pause_ns\":%" PRIu64 "}\n",
			       sysconf(_SC_NPROCESSORS_ONLN), model, un.release, clocksrc,
			       rmpsc_version_string(), quick, reps, g_capacity, g_pin, g_cpu[0],
			       g_cpu[1], g_use_tsc ? "tsc" : "monotonic", g_tsc_per_ns, global_ok,
			       tp_warm_ns, tp_dur_ns, pp_ring_n, pp_ipc_n, wk_n,
			       wk_pause);
		fflush(stdout);
		fflush(g_out);
	}

	noise_begin(&run_noise);
	w0 = now_ns();

	/* ---- 1. throughput ---- */
	if (run_tp) {
		const uint64_t t_sec = now_ns();

		noise_begin(&sec_noise);
		g_ctl = mmap(NULL, sizeof *g_ctl, PROT_READ | PROT_WRITE,
			     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (g_ctl == MAP_FAILED)
			die("mmap: %s", strerror(errno));
		for (int m = 0; m < TP_NMODES; m++)
			for (int i = 0; i < TPI_N; i++) {
				struct res *r = &g_tp[m][i];

				r->sec = "throughput";
				r->mode = tp_mode_name[m];
				r->impl = tp_impl_name[i];
				r->desc = tp_impl_desc[i];
				r->skipped = (!global_ok && (i == TPI_XPROC || i == TPI_THREAD)) ||
					     !impl_selected(r->impl);
			}
		for (int rep = 0; rep < reps; rep++) {
			progress("throughput: rep %d/%d\r", rep + 1, reps);
			for (int m = 0; m < TP_NMODES; m++) {
				const struct tp_job j = { .mode = m, .warm_ns = tp_warm_ns,
							  .dur_ns = tp_dur_ns };

				for (int x = 0; x < TPI_N; x++) {
					const int i = order(rep, x, TPI_N);
					struct res *r = &g_tp[m][i];

					if (r->skipped)
						continue;
					snprintf(g_cur, sizeof g_cur, "throughput %s %s rep %d",
						 r->mode, r->impl, rep + 1);
					alarm(WATCHDOG_S);
					r->q[0][r->n++] = tp_run(i, &j);
					alarm(0);
				}
			}
		}
		g_noise[0] = noise_end(&sec_noise, &steal);
		progress("throughput: %d reps in %.1f s\n", reps, (now_ns() - t_sec) / 1e9);
	}

	/* ---- 2. ping-pong ---- */
	if (run_pp) {
		const uint64_t t_sec = now_ns();
		const size_t maxn = pp_ring_n > pp_ipc_n ? pp_ring_n : pp_ipc_n;
		uint64_t *smp = malloc(maxn * sizeof *smp);

		noise_begin(&sec_noise);

		if (smp == NULL)
			die("out of memory");
		for (int i = 0; i < PPI_N; i++) {
			struct res *r = &g_pp[i];

			r->sec = "pingpong";
			r->mode = "";
			r->impl = pp_impl_name[i];
			r->desc = pp_impl_desc[i];
			r->samples = i < PPI_PIPE ? pp_ring_n : pp_ipc_n;
			r->skipped = (!global_ok && (i == PPI_XPROC || i == PPI_THREAD)) ||
				     !impl_selected(r->impl);
		}
		for (int rep = 0; rep < reps; rep++) {
			progress("ping-pong: rep %d/%d\r", rep + 1, reps);
			for (int x = 0; x < PPI_N; x++) {
				const int i = order(rep, x, PPI_N);
				struct res *r = &g_pp[i];
				const struct pp_job j = { .warm = r->samples / 10, .n = r->samples,
							  .samples = smp };

				if (r->skipped)
					continue;
				snprintf(g_cur, sizeof g_cur, "ping-pong %s rep %d", r->impl, rep + 1);
				alarm(WATCHDOG_S);
				if (!pp_run(i, &j)) {
					alarm(0);
					r->skipped = true;
					continue;
				}
				alarm(0);
				qsort(smp, j.n, sizeof *smp, cmp_u64);
				r->q[0][r->n] = (double)smp[j.n / 2] / g_tsc_per_ns;
				r->q[1][r->n] = (double)smp[(size_t)((double)j.n * 0.99)] / g_tsc_per_ns;
				r->q[2][r->n] = (double)smp[(size_t)((double)j.n * 0.999)] / g_tsc_per_ns;
				r->q[3][r->n] = (double)smp[0] / g_tsc_per_ns;
				r->n++;
			}
		}
		free(smp);
		g_noise[1] = noise_end(&sec_noise, &steal);
		progress("ping-pong: %d reps in %.1f s\n", reps, (now_ns() - t_sec) / 1e9);
	}

	/* ---- 3. wake-up latency ---- */
	if (run_wk) {
		const uint64_t t_sec = now_ns();
		const size_t shsz = sizeof(struct wk_shared) + wk_n * sizeof(uint64_t);
		struct wk_shared *sh = mmap(NULL, shsz, PROT_READ | PROT_WRITE,
					    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		uint64_t *lat = malloc(wk_n * sizeof *lat);

		noise_begin(&sec_noise);

		if (sh == MAP_FAILED || lat == NULL)
			die("out of memory");
		for (int i = 0; i < WKI_N; i++) {
			struct res *r = &g_wk[i];

			r->sec = "wake";
			r->mode = "";
			r->impl = wk_impl_name[i];
			r->desc = wk_impl_desc[i];
			r->samples = wk_n;
			r->skipped = (!global_ok && (i == WKI_XPROC || i == WKI_THREAD)) ||
				     !impl_selected(r->impl);
		}
		for (int rep = 0; rep < reps; rep++) {
			progress("wake-up: rep %d/%d\r", rep + 1, reps);
			for (int x = 0; x < WKI_N; x++) {
				const int i = order(rep, x, WKI_N);
				struct res *r = &g_wk[i];
				double rcpu = 0;
				const struct wk_job j = { .warm = wk_n / 10, .n = wk_n,
							  .pause_ns = wk_pause, .sh = sh, .lat = lat,
							  .rcpu_ns = &rcpu };

				if (r->skipped)
					continue;
				snprintf(g_cur, sizeof g_cur, "wake-up %s rep %d", r->impl, rep + 1);
				alarm(WATCHDOG_S);
				wk_run(i, &j);
				alarm(0);
				qsort(lat, wk_n, sizeof *lat, cmp_u64);
				qsort(sh->push_ns, wk_n, sizeof *lat, cmp_u64);
				r->q[0][r->n] = (double)lat[wk_n / 2];
				r->q[1][r->n] = (double)lat[(size_t)((double)wk_n * 0.99)];
				r->q[2][r->n] = (double)lat[(size_t)((double)wk_n * 0.999)];
				r->q[3][r->n] = (double)sh->push_ns[wk_n / 2];
				r->q[4][r->n] = (double)sh->push_ns[(size_t)((double)wk_n * 0.99)];
				r->q[5][r->n] = rcpu;
				{
					/* A push that made a futex wake takes >= 1 us here;
					 * one that found nobody asleep, well under. */
					uint64_t slept = 0;

					for (uint64_t k = 0; k < wk_n; k++)
						slept += sh->push_ns[k] >= 1000;
					r->q[6][r->n] = 100.0 * (double)slept / (double)wk_n;
				}
				r->n++;
			}
		}
		munmap(sh, shsz);
		free(lat);
		g_noise[2] = noise_end(&sec_noise, &steal);
		progress("wake-up: %d reps in %.1f s\n", reps, (now_ns() - t_sec) / 1e9);
	}

	/* ---- 4. payload latency ---- */
	if (run_pl) {
		const uint64_t t_sec = now_ns();
		const uint64_t pl_n = quick ? 300 : 2000;

		for (int rep = 0; rep < reps; rep++) {
			progress("payload: rep %d/%d\r", rep + 1, reps);
			for (int x = 0; x < 2; x++) {
				const int w = order(rep, x, 2);
				double p50[PL_NSIZES], p99[PL_NSIZES];

				snprintf(g_cur, sizeof g_cur, "payload %s rep %d", w ? "copy" : "pool",
					 rep + 1);
				alarm(WATCHDOG_S);
				pl_run(w == 0, pl_n, p50, p99);
				alarm(0);
				for (int z = 0; z < PL_NSIZES; z++) {
					pl_p50[w][z][rep] = p50[z];
					pl_p99[w][z][rep] = p99[z];
				}
			}
		}
		progress("payload: %d reps in %.1f s\n", reps, (now_ns() - t_sec) / 1e9);
	}
	w1 = now_ns();

	/* ---- the report ---- */
	if (run_tp) {
		static const char *const qn[] = { "mitems_per_s" };

		fprintf(g_out, "\n1. Throughput, 8-byte items, %u-slot rings (Mitems/s: median "
			"[min .. max] over %d reps; ratio = row / inproc of the same mode, of the "
			"medians; paired = median over reps of each rep's ratio)\n", g_capacity, reps);
		fprintf(g_out, "   single: push / pop; batch64: push_n / pop_n of up to 64; span64: "
			"reserve+commit / readable+advance of up to 64, in place\n");
		fprintf(g_out, "%-8s %-17s %9s  %-19s %6s %6s   %s\n", "mode", "impl", "Mitems/s",
			"[min .. max]", "ratio", "paired", "what");
		for (int m = 0; m < TP_NMODES; m++) {
			const struct res *base = &g_tp[m][TPI_INPROC];

			for (int i = 0; i < TPI_N; i++) {
				const struct res *r = &g_tp[m][i];

				if (r->skipped || r->n == 0) {
					fprintf(g_out, "%-8s %-17s %9s\n", r->mode, r->impl, "skipped");
					continue;
				}
				fprintf(g_out, "%-8s %-17s %9.2f  [%7.2f .. %7.2f] %6.3f %6.3f   %s\n",
					r->mode, r->impl, qmed(r, 0), qmin(r, 0), qmax(r, 0),
					ratio(r, base, 0), paired(r, base, 0), r->desc);
				json_res(r, base, qn, 1, "Mitems/s");
			}
		}
		fprintf(g_out, "target shm-xproc / inproc >= 0.90 (paired):");
		for (int m = 0; m < TP_NMODES; m++) {
			const struct res *a = &g_tp[m][global_ok ? TPI_XPROC : TPI_XPROC_FENCE];
			const double pr = paired(a, &g_tp[m][TPI_INPROC], 0);

			fprintf(g_out, "  %s %.3f %s;", tp_mode_name[m], pr, verdict(pr, pr >= 0.9));
		}
		fprintf(g_out, "\n");
		print_noise(0);
	}
	if (run_pp) {
		static const char *const qn[] = { "p50_ns", "p99_ns", "p999_ns", "min_ns" };
		const struct res *base = &g_pp[PPI_INPROC];

		fprintf(g_out, "\n2. Ping-pong round trip, one 8-byte message there and back (ns: "
			"median over %d reps of each rep's percentile; ratio = row / inproc, "
			"of the medians; paired = median of per-rep ratios)\n", reps);
		fprintf(g_out, "%-16s %7s %8s %8s %9s %8s   %7s %6s %7s %7s   %s\n", "impl",
			"samples", "p50", "p99", "p999", "min", "p50 x", "paired", "p99 x",
			"p999 x", "what");
		for (int i = 0; i < PPI_N; i++) {
			const struct res *r = &g_pp[i];

			if (r->skipped || r->n == 0) {
				fprintf(g_out, "%-16s %7s%s%s\n", r->impl, "skipped",
					i == PPI_MQ && g_mq_why[0] ? ": " : "",
					i == PPI_MQ ? g_mq_why : "");
				continue;
			}
			fprintf(g_out, "%-16s %7" PRIu64 " %8.0f %8.0f %9.0f %8.0f   %7.2f %6.2f %7.2f "
				"%7.2f   %s\n", r->impl, r->samples, qmed(r, 0), qmed(r, 1), qmed(r, 2),
				qmed(r, 3), ratio(r, base, 0), paired(r, base, 0), ratio(r, base, 1),
				ratio(r, base, 2), r->desc);
			json_res(r, base, qn, 4, "ns");
		}
		{
			const struct res *sh = &g_pp[global_ok ? PPI_XPROC : PPI_XPROC_FENCE];
			const struct res *so = &g_pp[PPI_SOCK];
			const double a = paired(sh, base, 0);

			fprintf(g_out, "target p50: %s / inproc <= 1.10 (paired): %.2f %s", sh->impl,
				a, verdict(a, a <= 1.10));
			if (so->n > 0) {
				const double b = paired(so, sh, 0);

				fprintf(g_out, "; socketpair / %s >= 10 (paired): %.1f %s", sh->impl,
					b, verdict(b, b >= 10));
			}
			fprintf(g_out, "\n");
			print_noise(1);
		}
	}
	if (run_wk) {
		static const char *const qn[] = { "p50_ns", "p99_ns", "p999_ns", "push_p50_ns",
						  "push_p99_ns", "recv_cpu_ns_per_msg",
						  "push_over_1us_pct" };
		const struct res *base = &g_wk[WKI_INPROC];

		fprintf(g_out, "\n3. Wake-up latency, receiver asleep in pop_timed(-1) (default "
			"strategy), one message per %.0f-%.0f us pause: send -> receive, ns (median "
			"over %d reps of each rep's percentile); push = the sender's push call "
			"(the futex wake); rcpu = the receiver's CPU time per message (spin, yield,\n"
			"   barrier, futex sleep and wake: where the global membarrier is paid); woke%% =\n"
			"   share of pushes that took >= 1 us, i.e. made a futex wake (near 100%%: the\n"
			"   receiver was asleep, as intended; low: it was still spinning or yielding)\n",
			wk_pause / 1e3, wk_pause / 1e3 + 15, reps);
		fprintf(g_out, "%-16s %7s %8s %8s %9s %9s %9s %8s %6s   %7s %6s %7s %7s   %s\n",
			"impl", "samples", "p50", "p99", "p999", "push p50", "push p99", "rcpu",
			"woke%", "p50 x", "paired", "p99 x", "rcpu x", "what");
		for (int i = 0; i < WKI_N; i++) {
			const struct res *r = &g_wk[i];

			if (r->skipped || r->n == 0) {
				fprintf(g_out, "%-16s %7s\n", r->impl, "skipped");
				continue;
			}
			fprintf(g_out, "%-16s %7" PRIu64 " %8.0f %8.0f %9.0f %9.0f %9.0f %8.0f %6.1f   "
				"%7.2f %6.2f %7.2f %7.2f   %s\n", r->impl, r->samples, qmed(r, 0),
				qmed(r, 1), qmed(r, 2), qmed(r, 3), qmed(r, 4), qmed(r, 5), qmed(r, 6),
				ratio(r, base, 0),
				paired(r, base, 0), ratio(r, base, 1), ratio(r, base, 5), r->desc);
			json_res(r, base, qn, 7, "ns");
		}
		print_noise(2);
	}
	if (run_pl) {
		double lo = 0, hi = 0;

		fprintf(g_out, "\n4. Payload latency, S bytes there and an answer back (ns, median "
			"over %d reps of each rep's percentile): pool = a lent slab's 4-byte handle "
			"through a shared ring, the payload read in place (alloc, lend, reclaim "
			"included); copy = the S bytes through a shared ring of 64-byte elements "
			"into the receiver's buffer\n", reps);
		fprintf(g_out, "%-9s %9s %9s %9s %9s   %9s %9s\n", "size", "pool p50", "pool p99",
			"copy p50", "copy p99", "pool/64B", "copy/pool");
		for (int z = 0; z < PL_NSIZES; z++) {
			const double a50 = median(pl_p50[0][z], reps), a99 = median(pl_p99[0][z], reps);
			const double b50 = median(pl_p50[1][z], reps), b99 = median(pl_p99[1][z], reps);
			const double base = median(pl_p50[0][0], reps);

			if (z == 0 || a50 < lo)
				lo = a50;
			if (z == 0 || a50 > hi)
				hi = a50;
			fprintf(g_out, "%-9zu %9.0f %9.0f %9.0f %9.0f   %9.2f %9.1f\n", pl_size[z],
				a50, a99, b50, b99, a50 / base, b50 / a50);
			if (g_json)
				printf("{\"section\":\"payload\",\"size\":%zu,\"pool_p50_ns\":%.1f,"
				       "\"pool_p99_ns\":%.1f,\"copy_p50_ns\":%.1f,\"copy_p99_ns\":%.1f}\n",
				       pl_size[z], a50, a99, b50, b99);
		}
		fprintf(g_out, "pool p50 across sizes: %.0f-%.0f ns, largest / smallest %.2f "
			"(flat: the payload's size does not enter)\n", lo, hi, hi / lo);
	}
	{
		const double wall = (double)(w1 - w0) / 1e9;
		const double others = noise_end(&run_noise, &steal);

		fprintf(g_out, "\nrun took %.1f s; other processes used %.2f CPUs on average; "
			"steal %.1f %%%s\n", wall, others, steal,
			others > 0.1 ? ": numbers disturbed, run again on a quiet machine" : "");
		if (g_json)
			printf("{\"section\":\"summary\",\"wall_s\":%.2f,\"other_cpus\":%.3f,"
			       "\"steal_pct\":%.2f}\n", wall, others, steal);
	}
	return 0;
}
