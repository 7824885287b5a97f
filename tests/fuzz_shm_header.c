/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: rmpsc_shm_attach() on a memfd whose header, size and seals
 * come from the input, then calls of the handle (and of a second handle of
 * the other role on the same memfd) interleaved with overwrites of header
 * fields through a mapping of our own, as a hostile peer would make them.
 *
 * Input:
 *   [0]      bit 3: the image replaces the template (else it is XORed onto
 *            it); bit 4: attach as the consumer (else the producer); bit
 *            5: attach the other role too; bit 6: RMPSC_SHM_F_PREFAULT;
 *            bit 7: RMPSC_SHM_F_FENCE (ignored by attach)
 *   [1]      seals: bits 0-2 leave out F_SEAL_SHRINK, F_SEAL_GROW,
 *            F_SEAL_SEAL; bit 3 adds F_SEAL_WRITE, bit 4 F_SEAL_FUTURE_WRITE
 *   [2]      the file's size: %4 = 0 what the image's geometry needs, 1
 *            that plus the signed byte [3] times 8, 2 the image's map_size,
 *            3 the u32 at [3..6]; never above FILE_MAX
 *   [7], [8] cfg.elem_size, cfg.capacity: %4 = 0 any (0), 1 the image's,
 *            2 the image's doubled, 3 a raw byte ([11], [12])
 *   [9]      %16: 15 a bad role, 14 an unknown flag, 13 _pad0 not zero
 *   [10]     the template (a header image from a real rmpsc_shm_create)
 *   [16..1040)  the header image (short: the rest is the template's)
 *   [1040..)    up to 64 operations of 4 bytes: [op, a, b, c]
 *
 * Checks: attach returns a documented code, *out NULL on error; it
 * succeeds only on an image that passes every check the header documents;
 * every call returns a count within its bounds or a documented code; once
 * a handle returned -EPROTO its calls return -EPROTO; a span is laid out
 * as it says and every byte of it can be read and written. Nothing is
 * left open. A failed check prints the input's number and aborts.
 *
 * Built with FUZZ_REPLAY_MAIN=1 it has a main() of its own that runs the
 * target over a deterministic generated set of inputs (mutations of the
 * templates, and random ones); with --corpus DIR [N] it writes the first N
 * of them as files (a seed corpus for the libFuzzer build).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ringmpsc/shm.h"
#include "test_base.h"

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HDR RMPSC_SHM_HEADER_SIZE
#define PREFIX 16u
#define OPS_AT (PREFIX + HDR)
#define OPS_MAX 64u
#define FILE_MAX (16u << 20)
#define PREFAULT_MAX (1u << 20)
#define BUF_MAX (1u << 20)

static long g_input = -1; /* the replay's input number, for messages */
/* What the inputs reached, for the replay's summary. */
static uint64_t g_attached, g_partnered, g_ops, g_counts, g_broken, g_attach_err[5];

#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "fuzz_shm_header: input %ld: ", g_input); \
			fprintf(stderr, __VA_ARGS__);                          \
			fputc('\n', stderr);                                   \
			abort();                                               \
		}                                                              \
	} while (0)

/* ---- templates: header images of real rings ----------------------------------- */

enum { T_PROD_LIVE, T_CONS_LIVE, T_NONE, T_DESTROYED, T_STATES };
#define NGEOM 3u
#define NTEMPL (NGEOM * T_STATES)
static const uint32_t geom_esz[NGEOM] = {8, 24, 3329};
static const uint32_t geom_cap[NGEOM] = {64, 16, 2};
static unsigned char templ[NTEMPL][HDR];

static void read_image(int fd, unsigned char *img)
{
	CHECK(pread(fd, img, HDR, 0) == (ssize_t)HDR, "pread of a template");
}

static void templates_init(void)
{
	static bool done;

	if (done)
		return;
	done = true;
	for (uint32_t g = 0; g < NGEOM; g++) {
		for (uint32_t role = RMPSC_SHM_PRODUCER; role <= RMPSC_SHM_CONSUMER; role++) {
			rmpsc_shm_config cfg;
			rmpsc_shm *s = NULL;
			unsigned char *img = templ[g * T_STATES + (role == RMPSC_SHM_PRODUCER
									    ? T_PROD_LIVE
									    : T_CONS_LIVE)];
			int fd;

			rmpsc_shm_config_init(&cfg, sizeof cfg);
			cfg.role = role;
			cfg.elem_size = geom_esz[g];
			cfg.capacity = geom_cap[g];
			CHECK(rmpsc_shm_create(&cfg, &s) == 0, "create of a template");
			read_image(rmpsc_shm_fd(s), img);
			if (role == RMPSC_SHM_PRODUCER) {
				rmpsc_shm_header *h = (rmpsc_shm_header *)(void *)
					templ[g * T_STATES + T_NONE];

				memcpy(h, img, HDR);
				memset(&h->producer, 0, sizeof h->producer);
				fd = fcntl(rmpsc_shm_fd(s), F_DUPFD_CLOEXEC, 0);
				CHECK(fd >= 0, "dup");
				rmpsc_shm_destroy(s);
				read_image(fd, templ[g * T_STATES + T_DESTROYED]);
				close(fd);
			} else {
				rmpsc_shm_destroy(s);
			}
		}
	}
}

/* ---- the header's fields ------------------------------------------------------- */

struct field {
	size_t off, size;
};

#define F(m) { offsetof(rmpsc_shm_header, m), sizeof(((rmpsc_shm_header *)0)->m) }
static const struct field fields[] = {
	F(magic), F(version), F(header_size), F(elem_size), F(capacity), F(map_size),
	F(barrier), F(creator_pid), F(generation), F(_pad0),
	F(producer.state), F(producer.pid), F(producer.heartbeat_ns), F(producer.attaches),
	F(consumer.state), F(consumer.pid), F(consumer.heartbeat_ns), F(consumer.attaches),
	F(ring_magic), F(ring_version), F(ring_elem_size), F(ring_capacity), F(ring_slots),
	F(closed), F(prod_waiters), F(cons_waiters), F(_state),
	F(tail), F(_mc_head), F(head), F(_claim),
	F(cons_seq), F(prod_seq), F(final_tail),
};
#undef F
#define NFIELDS ((uint32_t)(sizeof fields / sizeof fields[0]))
#define FIELD_CLOSED 23u
_Static_assert(offsetof(rmpsc_shm_header, closed) == 544, "closed at 544");

static uint64_t field_get(const unsigned char *img, const struct field *f)
{
	uint64_t v = 0;

	memcpy(&v, img + f->off, f->size);
	return v;
}

static void field_set(unsigned char *img, const struct field *f, uint64_t v)
{
	memcpy(img + f->off, &v, f->size); /* little-endian */
}

/* ---- what attach must have checked ----------------------------------------------- */

static uint64_t map_size_for(uint32_t esz, uint32_t cap)
{
	const uint64_t pg = (uint64_t)sysconf(_SC_PAGESIZE);

	return (HDR + (uint64_t)cap * esz + pg - 1) / pg * pg;
}

/* Whether @h, in a file of @fsize bytes with @seals, passes every check
 * the header documents for attach with @cfg; @why says which failed. */
static bool image_ok(const rmpsc_shm_header *h, uint64_t fsize, int seals,
		     const rmpsc_shm_config *cfg, const char **why)
{
	const int need = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;

#define REQ(c, w)                                                              \
	do {                                                                   \
		if (!(c)) {                                                    \
			*why = (w);                                            \
			return false;                                          \
		}                                                              \
	} while (0)
	REQ((seals & need) == need, "seals");
	REQ(fsize >= HDR, "file shorter than a header");
	REQ(h->magic == RMPSC_SHM_MAGIC, "magic");
	REQ(h->version == RMPSC_SHM_VERSION, "version");
	REQ(h->header_size == HDR, "header_size");
	REQ(h->capacity && h->capacity <= RMPSC_SHM_CAPACITY_MAX &&
		    !(h->capacity & (h->capacity - 1)),
	    "capacity");
	REQ(h->elem_size && h->elem_size <= RMPSC_SHM_ELEM_SIZE_MAX, "elem_size");
	REQ(h->barrier == RMPSC_SHM_BARRIER_GLOBAL || h->barrier == RMPSC_SHM_BARRIER_FENCE,
	    "barrier");
	REQ(h->map_size == map_size_for(h->elem_size, h->capacity), "map_size vs geometry");
	REQ(h->map_size == fsize, "map_size vs the file");
	REQ(h->ring_elem_size == h->elem_size && h->ring_capacity == h->capacity &&
		    h->ring_slots == h->capacity,
	    "ring words vs identity");
	REQ(h->closed <= 3, "close state");
	REQ(h->tail - h->head <= h->capacity, "head more than capacity behind tail");
	REQ(!cfg->elem_size || cfg->elem_size == h->elem_size, "cfg elem_size");
	REQ(!cfg->capacity || cfg->capacity == h->capacity, "cfg capacity");
#undef REQ
	*why = "";
	return true;
}

/* ---- calls and their codes ----------------------------------------------------- */

struct side {
	rmpsc_shm *s;
	bool prod;
	bool broken; /* returned -EPROTO once */
	const char *name;
};

static bool is_code(long long r, const int *codes)
{
	for (; *codes; codes++)
		if (r == -*codes)
			return true;
	return false;
}

static const int C_TRY[] = {EAGAIN, EPIPE, EPROTO, ECONNRESET, 0};
static const int C_TIMED[] = {ETIMEDOUT, EPIPE, EPROTO, ECONNRESET, 0};
static const int C_COMMIT[] = {EINVAL, EPIPE, EPROTO, ECONNRESET, 0};
static const int C_ADVANCE[] = {EINVAL, EPROTO, 0};
static const int C_PROTO[] = {EPROTO, 0};

/* @r of @call: a count in [lo, hi] or a code of @codes; -EBADF for a call
 * of the other role; only -EPROTO once the handle returned it. */
static void check_ret(struct side *d, const char *call, bool prod_call, long long r, long long lo,
		      long long hi, const int *codes)
{
	if (prod_call != d->prod) {
		CHECK(r == -EBADF, "%s on the %s: %lld, not -EBADF", call, d->name, r);
		return;
	}
	if (d->broken) {
		CHECK(r == -EPROTO, "%s on the %s after -EPROTO: %lld", call, d->name, r);
		return;
	}
	if (r >= 0)
		CHECK(r >= lo && r <= hi, "%s on the %s: %lld, not in [%lld, %lld]", call, d->name,
		      r, lo, hi);
	else
		CHECK(is_code(r, codes), "%s on the %s: undocumented %lld", call, d->name, r);
	if (r == -EPROTO)
		d->broken = true;
	g_counts += r > 0;
}

/* A span of @r elements of @esz bytes: its shape; every byte readable,
 * and (@write) writable. */
static void span_use(const rmpsc_span *sp, int r, uint32_t esz, bool write)
{
	CHECK(sp->count[0] + sp->count[1] == (uint32_t)r && sp->count[0] > 0 &&
		      sp->nseg == (sp->count[1] ? 2u : 1u) &&
		      sp->iov[0].iov_len == (size_t)sp->count[0] * esz &&
		      sp->iov[1].iov_len == (size_t)sp->count[1] * esz,
	      "span of %d: %u+%u elements, %zu+%zu bytes, nseg %u", r, sp->count[0], sp->count[1],
	      sp->iov[0].iov_len, sp->iov[1].iov_len, sp->nseg);
	for (int k = 0; k < 2; k++) {
		unsigned char *p = sp->iov[k].iov_base;
		const size_t len = sp->iov[k].iov_len;
		unsigned sum = 0;

		for (size_t i = 0; i < len; i += 61)
			sum += p[i];
		if (len) {
			sum += p[len - 1];
			if (write) {
				p[0] = (unsigned char)sum;
				p[len - 1] = (unsigned char)(sum >> 8);
			}
		}
	}
}

struct run {
	struct side side[2];
	uint32_t nside;
	uint32_t esz, cap, nmax;
	unsigned char *buf;
	unsigned char *hdr; /* our own writable mapping of the header, or NULL */
};

/* A value to write over @cur, in a ring of @cap, from @b and @c. */
static uint64_t overwrite_value(uint64_t cur, uint64_t cap, uint8_t b, uint8_t c)
{
	switch (b % 6) {
	case 0: return c;
	case 1: return cur + (uint64_t)(int64_t)(int8_t)c;
	case 2: return cur + cap * (uint64_t)(int64_t)((c % 3) - 1) + (c >> 4);
	case 3: return ~(uint64_t)0 - c;
	case 4: return (uint64_t)1 << (c % 64);
	default: return (uint64_t)c * 0x0101010101010101ull;
	}
}

static void op(struct run *ru, const uint8_t *o)
{
	struct side *d = &ru->side[(o[0] & 0x80) && ru->nside > 1 ? 1 : 0];
	rmpsc_shm *s = d->s;
	const uint32_t n = o[1] % (OPS_MAX + 6);
	const uint32_t nb = n < ru->nmax ? n : ru->nmax;
	const int64_t t = (o[2] & 15) == 0 ? 1000000 : 0;
	const long long cap = ru->cap;
	rmpsc_span sp;
	long long r;

	switch ((o[0] & 0x7f) % 22) {
	case 0:
		check_ret(d, "push", true, rmpsc_shm_push(s, ru->buf), 0, 0, C_TRY);
		break;
	case 1:
		check_ret(d, "push_n", true, rmpsc_shm_push_n(s, ru->buf, nb), nb ? 1 : 0, nb, C_TRY);
		break;
	case 2:
		r = rmpsc_shm_reserve(s, n, &sp);
		check_ret(d, "reserve", true, r, n ? 1 : 0, n < cap ? n : cap, C_TRY);
		if (r > 0)
			span_use(&sp, (int)r, ru->esz, true);
		break;
	case 3:
		check_ret(d, "commit", true, rmpsc_shm_commit(s, o[3] % 8 ? n % 9 : n), 0, 0,
			  C_COMMIT);
		break;
	case 4:
		check_ret(d, "push_timed", true, rmpsc_shm_push_timed(s, ru->buf, t, NULL), 0, 0,
			  C_TIMED);
		break;
	case 5:
		check_ret(d, "push_n_timed", true, rmpsc_shm_push_n_timed(s, ru->buf, nb, t, NULL),
			  nb ? 1 : 0, nb, C_TIMED);
		break;
	case 6:
		r = rmpsc_shm_reserve_timed(s, n, &sp, t, NULL);
		check_ret(d, "reserve_timed", true, r, n ? 1 : 0, n < cap ? n : cap, C_TIMED);
		if (r > 0)
			span_use(&sp, (int)r, ru->esz, true);
		break;
	case 7:
		check_ret(d, "pop", false, rmpsc_shm_pop(s, ru->buf), 0, 0, C_TRY);
		break;
	case 8:
		check_ret(d, "pop_n", false, rmpsc_shm_pop_n(s, ru->buf, nb), nb ? 1 : 0, nb, C_TRY);
		break;
	case 9:
		r = rmpsc_shm_readable(s, n, &sp);
		check_ret(d, "readable", false, r, n ? 1 : 0, n < cap ? n : cap, C_TRY);
		if (r > 0)
			span_use(&sp, (int)r, ru->esz, false);
		break;
	case 10:
		check_ret(d, "advance", false, rmpsc_shm_advance(s, o[3] % 8 ? n % 9 : n), 0, 0,
			  C_ADVANCE);
		break;
	case 11:
		check_ret(d, "pop_timed", false, rmpsc_shm_pop_timed(s, ru->buf, t, NULL), 0, 0,
			  C_TIMED);
		break;
	case 12:
		check_ret(d, "pop_n_timed", false, rmpsc_shm_pop_n_timed(s, ru->buf, nb, t, NULL),
			  nb ? 1 : 0, nb, C_TIMED);
		break;
	case 13:
		r = rmpsc_shm_readable_timed(s, n, &sp, t, NULL);
		check_ret(d, "readable_timed", false, r, n ? 1 : 0, n < cap ? n : cap, C_TIMED);
		if (r > 0)
			span_use(&sp, (int)r, ru->esz, false);
		break;
	case 14:
		check_ret(d, "len", d->prod, rmpsc_shm_len(s), 0, cap, C_PROTO);
		break;
	case 15:
		check_ret(d, "is_closed", d->prod, rmpsc_shm_is_closed(s), 0, 1, C_PROTO);
		break;
	case 16:
		if (o[3] % 4 == 0)
			check_ret(d, "close", d->prod, rmpsc_shm_close(s), 0, 0, C_PROTO);
		break;
	case 17:
		r = rmpsc_shm_peer(s, o[3] & 1 ? -1 : (int64_t)o[3] * 1000000);
		CHECK(r >= RMPSC_SHM_PEER_NONE && r <= RMPSC_SHM_PEER_GONE, "peer: %lld", r);
		CHECK(rmpsc_shm_heartbeat(s) == 0, "heartbeat");
		CHECK(rmpsc_shm_capacity(s) == cap && rmpsc_shm_elem_size(s) == ru->esz &&
			      rmpsc_shm_role(s) == (d->prod ? RMPSC_SHM_PRODUCER
							    : RMPSC_SHM_CONSUMER) &&
			      rmpsc_shm_fd(s) >= 0,
		      "the handle's geometry changed");
		break;
	default: /* a hostile peer's write */
		if (ru->hdr) {
			const struct field *f = &fields[o[1] % NFIELDS];

			field_set(ru->hdr, f,
				  overwrite_value(field_get(ru->hdr, f), (uint64_t)cap, o[2], o[3]));
		}
		break;
	}
}

/* ---- the target ------------------------------------------------------------------ */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t ctl[PREFIX] = {0};
	unsigned char img[HDR];
	rmpsc_shm_header h;
	rmpsc_shm_config cfg;
	rmpsc_shm *s = (rmpsc_shm *)(uintptr_t)1;
	struct run ru;
	const char *why;
	uint64_t fsize;
	int fd, seals = 0, r;
	bool cfg_bad, cfg_big;
	uint32_t role;

	templates_init();
	CHECK(fields[FIELD_CLOSED].off == offsetof(rmpsc_shm_header, closed), "FIELD_CLOSED");
	memcpy(ctl, data, size < PREFIX ? size : PREFIX);
	memcpy(img, templ[ctl[10] % NTEMPL], HDR);
	for (size_t i = PREFIX; i < size && i < OPS_AT; i++) {
		if (ctl[0] & 8)
			img[i - PREFIX] = data[i];
		else
			img[i - PREFIX] ^= data[i];
	}
	memcpy(&h, img, sizeof h);

	/* The file: its size, the image, the seals. */
	switch (ctl[2] % 4) {
	case 0:
		fsize = map_size_for(h.elem_size, h.capacity);
		break;
	case 1:
		fsize = map_size_for(h.elem_size, h.capacity) +
			(uint64_t)((int64_t)(int8_t)ctl[3] * 8);
		break;
	case 2:
		fsize = h.map_size;
		break;
	default: {
		uint32_t v;

		memcpy(&v, ctl + 3, sizeof v);
		fsize = v;
		break;
	}
	}
	if (fsize > FILE_MAX)
		fsize = (uint64_t)ctl[4] * 64;
	fd = memfd_create("fuzz_shm_header", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	CHECK(fd >= 0, "memfd_create: %d", errno);
	CHECK(ftruncate(fd, (off_t)fsize) == 0, "ftruncate");
	if (fsize)
		CHECK(pwrite(fd, img, fsize < HDR ? (size_t)fsize : HDR, 0) > 0, "pwrite");
	if (!(ctl[1] & 1))
		seals |= F_SEAL_SHRINK;
	if (!(ctl[1] & 2))
		seals |= F_SEAL_GROW;
	if (ctl[1] & 8)
		seals |= F_SEAL_WRITE;
	if (ctl[1] & 16)
		seals |= F_SEAL_FUTURE_WRITE;
	if (!(ctl[1] & 4))
		seals |= F_SEAL_SEAL; /* last: it forbids the others after it */
	if (seals)
		CHECK(fcntl(fd, F_ADD_SEALS, seals) == 0, "seals %#x: %d", seals, errno);

	/* The configuration. */
	rmpsc_shm_config_init(&cfg, sizeof cfg);
	role = ctl[0] & 16 ? RMPSC_SHM_CONSUMER : RMPSC_SHM_PRODUCER;
	cfg.role = role;
	cfg.flags = (ctl[0] & 64 && fsize <= PREFAULT_MAX ? RMPSC_SHM_F_PREFAULT : 0u) |
		    (ctl[0] & 128 ? RMPSC_SHM_F_FENCE : 0u);
	switch (ctl[7] % 4) {
	case 0: cfg.elem_size = 0; break;
	case 1: cfg.elem_size = h.elem_size; break;
	case 2: cfg.elem_size = h.elem_size * 2; break;
	default: cfg.elem_size = ctl[11]; break;
	}
	switch (ctl[8] % 4) {
	case 0: cfg.capacity = 0; break;
	case 1: cfg.capacity = h.capacity; break;
	case 2: cfg.capacity = h.capacity * 2; break;
	default: cfg.capacity = ctl[12]; break;
	}
	switch (ctl[9] % 16) {
	case 15: cfg.role = 3; break;
	case 14: cfg.flags |= 1u << 7; break;
	case 13: cfg._pad0 = 1; break;
	default: break;
	}
	/* -EINVAL as documented; a geometry above the maximum: -EINVAL, or
	 * -EPROTO (not the ring's). */
	cfg_bad = cfg.role != role || (cfg.flags & ~(uint32_t)RMPSC_SHM_F_ALL) || cfg._pad0 ||
		  (cfg.capacity & (cfg.capacity - 1));
	cfg_big = cfg.capacity > RMPSC_SHM_CAPACITY_MAX || cfg.elem_size > RMPSC_SHM_ELEM_SIZE_MAX;

	r = rmpsc_shm_attach(fd, &cfg, &s);
	g_attach_err[r == 0 ? 0 : r == -EPROTO ? 1 : r == -EBUSY ? 2 : r == -EINVAL ? 3 : 4]++;
	if (r != 0) {
		CHECK(s == NULL, "attach failed (%d) and left *out set", r);
		if (cfg_bad)
			CHECK(r == -EINVAL, "attach with a bad config: %d, not -EINVAL", r);
		else if (cfg_big)
			CHECK(r == -EINVAL || r == -EPROTO, "attach, geometry too large: %d", r);
		else
			CHECK(r == -EPROTO || r == -EBUSY || r == -ENOMEM, "attach: undocumented %d",
			      r);
		close(fd);
		return 0;
	}
	CHECK(s != NULL && !cfg_bad && !cfg_big, "attach succeeded with a bad config or no handle");
	/* Success only for what passes every documented check. */
	CHECK(image_ok(&h, fsize, fcntl(fd, F_GET_SEALS), &cfg, &why),
	      "attach accepted a header that fails: %s", why);

	memset(&ru, 0, sizeof ru);
	ru.esz = h.elem_size;
	ru.cap = h.capacity;
	ru.nmax = BUF_MAX / ru.esz;
	if (ru.nmax > OPS_MAX + 6)
		ru.nmax = OPS_MAX + 6;
	ru.buf = calloc(ru.nmax ? ru.nmax : 1, ru.esz);
	CHECK(ru.buf, "calloc");
	ru.side[0] = (struct side){s, role == RMPSC_SHM_PRODUCER, false, "handle"};
	ru.nside = 1;
	if (ctl[0] & 32) {
		rmpsc_shm *p = NULL;

		cfg.role = role == RMPSC_SHM_PRODUCER ? RMPSC_SHM_CONSUMER : RMPSC_SHM_PRODUCER;
		r = rmpsc_shm_attach(fd, &cfg, &p);
		CHECK(r == 0 || r == -EBUSY || r == -EPROTO, "the other role's attach: %d", r);
		CHECK((r == 0) == (p != NULL), "the other role's attach: %d and *out", r);
		if (r == 0) {
			ru.side[1] = (struct side){p, cfg.role == RMPSC_SHM_PRODUCER, false, "peer"};
			ru.nside = 2;
		}
	}
	if (!(seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE))) {
		void *m = mmap(NULL, HDR, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

		CHECK(m != MAP_FAILED, "mmap of the header: %d", errno);
		ru.hdr = m;
	}
	close(fd); /* the handles keep their own */
	for (size_t i = OPS_AT, k = 0; i + 4 <= size && k < OPS_MAX; i += 4, k++) {
		op(&ru, data + i);
		g_ops++;
	}
	g_attached++;
	g_partnered += ru.nside > 1;
	for (uint32_t i = 0; i < ru.nside; i++) {
		g_broken += ru.side[i].broken;
		rmpsc_shm_destroy(ru.side[i].s);
	}
	if (ru.hdr)
		munmap(ru.hdr, HDR);
	free(ru.buf);
	return 0;
}

/* ---- the replay ------------------------------------------------------------------- */

#if defined(FUZZ_REPLAY_MAIN) && FUZZ_REPLAY_MAIN

#if defined(__SANITIZE_THREAD__)
#define REPLAY_N 20000u
#elif defined(__SANITIZE_ADDRESS__)
#define REPLAY_N 20000u
#else
#define REPLAY_N 50000u
#endif

/* A value worth putting in a field now @cur, of a ring of @cap. */
static uint64_t interesting(uint64_t *rng, uint64_t cur, uint64_t cap)
{
	const uint64_t x = xs_next(rng);
	const uint64_t d = (x >> 8) % 5;

	switch (x % 9) {
	case 0: return d;
	case 1: return cur + 1;
	case 2: return cur - 1;
	case 3: return cur + cap + d - 2;
	case 4: return cur * 2;
	case 5: return ~(uint64_t)0 - d;
	case 6: return (uint64_t)1 << ((x >> 16) % 64);
	case 7: return ((uint64_t)1 << ((x >> 16) % 64)) - 1;
	default: return xs_next(rng);
	}
}

/* Input @i of the replay into @in (at least OPS_AT + 4 * OPS_MAX bytes):
 * its size. A close state of 2 (deciding) is left out but for a few
 * inputs: each costs a second (the documented wait for a stuck decider). */
static size_t gen(uint64_t i, uint8_t *in)
{
	uint64_t rng = (i + 1) * 0x9e3779b97f4a7c15ull | 1;
	const uint64_t kind = xs_next(&rng) % 12;
	const bool allow_deciding = i % 5000 == 17;
	size_t size = OPS_AT + 4 * (xs_next(&rng) % (OPS_MAX + 1));
	const struct field *fc = &fields[FIELD_CLOSED];

	memset(in, 0, OPS_AT + 4 * OPS_MAX);
	/* The control bytes: mostly what attaches. */
	in[0] = (uint8_t)(xs_next(&rng) & 0xf0);
	in[1] = xs_next(&rng) % 6 ? 0 : (uint8_t)(1u << (xs_next(&rng) % 5));
	in[2] = xs_next(&rng) % 6 ? 0 : (uint8_t)xs_next(&rng);
	for (int k = 3; k < (int)PREFIX; k++)
		in[k] = (uint8_t)xs_next(&rng);
	if (xs_next(&rng) % 4) {
		in[7] = (uint8_t)(xs_next(&rng) % 2);
		in[8] = (uint8_t)(xs_next(&rng) % 2);
	}
	if (xs_next(&rng) % 8)
		in[9] = 0;
	in[0] &= (uint8_t)~8u;
	if (kind < 9) {
		/* A template, a few fields changed (XOR of the difference). */
		const unsigned char *t = templ[in[10] % NTEMPL];
		const uint64_t cap = geom_cap[(in[10] % NTEMPL) / T_STATES];
		const uint64_t nmut = kind < 3 ? 0 : 1 + xs_next(&rng) % 4;

		for (uint64_t k = 0; k < nmut; k++) {
			const uint64_t x = xs_next(&rng);

			if (x % 8 == 0) { /* any byte */
				in[PREFIX + (x >> 8) % HDR] ^= (uint8_t)(x >> 32);
			} else {
				const struct field *f = &fields[(x >> 8) % NFIELDS];
				const uint64_t cur = field_get(t, f);
				uint64_t v = interesting(&rng, cur, cap), dlt = v ^ cur;

				if (f == fc && (uint32_t)v == 2 && !allow_deciding)
					dlt = 3 ^ cur;
				memcpy(in + PREFIX + f->off, &dlt, f->size);
			}
		}
	} else if (kind < 11) {
		/* Random bytes for the image, replacing the template. */
		in[0] |= 8;
		for (size_t k = PREFIX; k < OPS_AT; k++)
			in[k] = (uint8_t)xs_next(&rng);
		if (kind == 10) /* ... with the right magic and version */
			for (size_t k = 0; k < 16; k++)
				in[PREFIX + k] = templ[0][k];
	} else {
		for (size_t k = 0; k < size; k++)
			in[k] = (uint8_t)xs_next(&rng);
	}
	/* The operations: overwrites one in eight; never a deciding close. */
	for (size_t k = OPS_AT; k + 4 <= size; k += 4) {
		const uint64_t x = xs_next(&rng);

		in[k] = (uint8_t)x;
		in[k + 1] = (uint8_t)(x >> 8);
		in[k + 2] = (uint8_t)(x >> 16);
		in[k + 3] = (uint8_t)(x >> 24);
		if ((x >> 32) % 8 == 0) {
			in[k] = (uint8_t)((in[k] & 0x80) | 18);
			if (in[k + 1] % NFIELDS == FIELD_CLOSED && !allow_deciding) {
				in[k + 2] = 0;
				if (in[k + 3] == 2)
					in[k + 3] = 3;
			}
		} else if ((in[k] & 0x7f) % 22 >= 18) {
			in[k] = (uint8_t)((in[k] & 0x80) | (x >> 40) % 18);
		}
	}
	return size;
}

static int write_corpus(const char *dir, uint64_t n)
{
	uint8_t in[OPS_AT + 4 * OPS_MAX];

	for (uint64_t i = 0; i < n; i++) {
		char path[4096];
		const size_t len = gen(i, in);
		FILE *f;

		snprintf(path, sizeof path, "%s/seed-%05" PRIu64, dir, i);
		f = fopen(path, "wb");
		if (!f || fwrite(in, 1, len, f) != len) {
			perror(path);
			return 1;
		}
		fclose(f);
	}
	return 0;
}

int main(int argc, char **argv)
{
	uint8_t in[OPS_AT + 4 * OPS_MAX];
	struct timespec t0, t1;
	int before;

	templates_init();
	if (argc >= 3 && strcmp(argv[1], "--corpus") == 0)
		return write_corpus(argv[2], argc > 3 ? strtoull(argv[3], NULL, 0) : 500);
	before = open_fds();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (uint64_t i = 0; i < REPLAY_N; i++) {
		const size_t len = gen(i, in);

		g_input = (long)i;
		LLVMFuzzerTestOneInput(in, len);
		if (i % 1024 == 0)
			CHECK(open_fds() == before, "descriptors left open");
	}
	g_input = -1;
	CHECK(open_fds() == before, "descriptors left open");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("fuzz_shm_header: %u inputs, %.1f s: attach 0 %" PRIu64 ", -EPROTO %" PRIu64
	       ", -EBUSY %" PRIu64 ", -EINVAL %" PRIu64 ", other %" PRIu64 "; %" PRIu64 " with both roles, %" PRIu64
	       " calls, %" PRIu64 " counts, %" PRIu64 " handles broken\n",
	       REPLAY_N, (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
	       g_attach_err[0], g_attach_err[1], g_attach_err[2], g_attach_err[3], g_attach_err[4],
	       g_partnered,
	       g_ops, g_counts, g_broken);
	return 0;
}
#endif
