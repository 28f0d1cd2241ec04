/* SPDX-License-Identifier: LGPL-2.1-or-later
 * styletransfer: the process's idle Vulkan devices, kept with their compiled pipelines so that
 * restarting an element (NULL -> PLAYING again) does not open a device and compile every shader
 * again.
 */
#ifndef ST_DEVICE_POOL_H
#define ST_DEVICE_POOL_H

#include <glib.h>

#include "st.h"

G_BEGIN_DECLS

/* At most this many idle devices are kept; the longest idle one is closed to make room. */
#define DEVICE_POOL_MAX_IDLE 4

/* An idle device opened for the same selection (`device_id` when set, else `device_index`) and
 * still reusable (st_device_reusable) if there is one, taken out of the pool: the caller has it
 * to itself; else a newly opened one (NULL with `err` set when that fails). */
StDevice *device_pool_acquire(gint device_index, const gchar *device_id, StError *err);
/* Gives back a device from device_pool_acquire, once nothing of the caller's uses it any more
 * (its network freed): kept idle when reusable, closed otherwise. NULL: nothing. */
void device_pool_release(StDevice *dev, gint device_index, const gchar *device_id);
/* The pool lives while one of its users does: each element holds it from init to finalize, and
 * the last drop closes every idle device. */
void device_pool_hold(void);
void device_pool_drop(void);

G_END_DECLS

#endif /* ST_DEVICE_POOL_H */
