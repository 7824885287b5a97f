/* SPDX-License-Identifier: MIT */
/* Built against an installed libringmpsc by tests/test_install.sh. */
#include <errno.h>
#include <stdio.h>

#include <ringmpsc.h>

int main(void)
{
	rmpsc_ring_config cfg;
	rmpsc_ring *r;
	uint32_t in[100], out[100];
	int n;

	if (rmpsc_version() != RMPSC_VERSION_NUMBER) {
		fprintf(stderr, "header %d, library %u\n", RMPSC_VERSION_NUMBER, rmpsc_version());
		return 1;
	}
	rmpsc_ring_config_init(&cfg, sizeof cfg);
	cfg.capacity = 64;
	cfg.elem_size = sizeof(uint32_t);
	if (rmpsc_ring_create(&cfg, &r))
		return 1;
	for (uint32_t i = 0; i < 100; i++)
		in[i] = i * 7;
	n = rmpsc_ring_push_n(r, in, 100);
	if (n != 64 || rmpsc_ring_pop_n(r, out, 100) != 64)
		return 1;
	for (int i = 0; i < 64; i++)
		if (out[i] != in[i])
			return 1;
	if (rmpsc_ring_pop(r, out) != -EAGAIN)
		return 1;
	rmpsc_ring_destroy(r);
	printf("consumer ok: ringmpsc %s\n", rmpsc_version_string());
	return 0;
}
