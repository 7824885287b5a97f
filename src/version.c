/* SPDX-License-Identifier: MIT */
#include "internal.h"

void (*rmpsc__test_hook)(int point, void *obj);

#define STR_(x) #x
#define STR(x) STR_(x)

uint32_t rmpsc_version(void)
{
	return RMPSC_VERSION_NUMBER;
}

const char *rmpsc_version_string(void)
{
	return STR(RMPSC_VERSION_MAJOR) "." STR(RMPSC_VERSION_MINOR) "." STR(
		RMPSC_VERSION_PATCH);
}

uint32_t rmpsc_features(void)
{
	/* A bit says the feature works in this build: its code is built and
	 * its dependency linked, not merely found. */
	uint32_t f = 0;

#ifdef RMPSC_HAVE_NUMA
	f |= RMPSC_FEATURE_NUMA;
#endif
#ifdef RMPSC_HAVE_URING
	f |= RMPSC_FEATURE_URING;
#endif
	return f;
}
