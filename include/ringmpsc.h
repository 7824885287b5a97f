/* SPDX-License-Identifier: MIT */
/**
 * @file ringmpsc.h
 * libringmpsc: lock-free rings and channels behind a stable C ABI.
 * The one header users include; it pulls in every component header.
 */
#ifndef RINGMPSC_H
#define RINGMPSC_H

#include "ringmpsc/common.h"
#include "ringmpsc/ring.h"
#include "ringmpsc/wait.h"
#include "ringmpsc/notify.h"
#include "ringmpsc/loop.h"
#include "ringmpsc/channel.h"
#include "ringmpsc/numa.h"
#include "ringmpsc/pool.h"
#include "ringmpsc/uring.h"
#include "ringmpsc/shm.h"

#endif /* RINGMPSC_H */
