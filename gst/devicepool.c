/* SPDX-License-Identifier: LGPL-2.1-or-later
 * styletransfer: the process's idle Vulkan devices (see devicepool.h).
 *
 * On lavapipe, opening a device costs little but compiling its compute pipelines costs seconds
 * for every new device (its VkPipelineCache does not keep compiled code), so an element that
 * went to NULL and back recompiled everything: 9.6 s a cycle in test_churn_cycles. A device that an
 * element stops using is parked here instead and handed to the next engine with the same device
 * selection. It is never shared: one engine uses it at a time (a StDevice is not thread-safe).
 */
#include "devicepool.h"

#include <gst/gst.h>

GST_DEBUG_CATEGORY_EXTERN(gst_style_transfer_debug);
#define GST_CAT_DEFAULT gst_style_transfer_debug

typedef struct {
  StDevice *dev;
  gint device_index;
  gchar *device_id; /* NULL when selected by index */
} IdleDevice;

static GMutex pool_lock;
static GQueue pool_idle = G_QUEUE_INIT; /* of IdleDevice, the longest idle first */
static guint pool_users;

static gboolean same_selection(const IdleDevice *d, gint device_index, const gchar *device_id) {
  if (device_id != NULL && device_id[0] != '\0')
    return g_strcmp0(d->device_id, device_id) == 0;
  return d->device_id == NULL && d->device_index == device_index;
}

static void idle_device_free(IdleDevice *d) {
  GST_DEBUG("closing idle device %s", st_device_name(d->dev));
  st_device_free(d->dev);
  g_free(d->device_id);
  g_free(d);
}

StDevice *device_pool_acquire(gint device_index, const gchar *device_id, StError *err) {
  StDevice *found = NULL;
  GList *stale = NULL;
  g_mutex_lock(&pool_lock);
  for (GList *l = pool_idle.head; l != NULL;) {
    GList *next = l->next;
    IdleDevice *d = l->data;
    if (!st_device_reusable(d->dev)) { /* the environment changed since it was opened */
      g_queue_delete_link(&pool_idle, l);
      stale = g_list_prepend(stale, d);
    } else if (found == NULL && same_selection(d, device_index, device_id)) {
      g_queue_delete_link(&pool_idle, l);
      found = d->dev;
      g_free(d->device_id);
      g_free(d);
    }
    l = next;
  }
  g_mutex_unlock(&pool_lock);
  g_list_free_full(stale, (GDestroyNotify)idle_device_free); /* outside the lock: waits idle */
  if (found != NULL) {
    GST_DEBUG("reusing idle device %s", st_device_name(found));
    return found;
  }
  StDeviceOptions opts;
  st_device_options_init(&opts);
  opts.index = device_index;
  opts.id = device_id;
  return st_device_new(&opts, err);
}

void device_pool_release(StDevice *dev, gint device_index, const gchar *device_id) {
  if (dev == NULL)
    return;
  IdleDevice *evicted = NULL;
  g_mutex_lock(&pool_lock);
  gboolean keep = pool_users > 0 && st_device_reusable(dev);
  if (keep) {
    IdleDevice *d = g_new0(IdleDevice, 1);
    d->dev = dev;
    d->device_index = device_index;
    d->device_id = device_id != NULL && device_id[0] != '\0' ? g_strdup(device_id) : NULL;
    g_queue_push_tail(&pool_idle, d);
    if (g_queue_get_length(&pool_idle) > DEVICE_POOL_MAX_IDLE)
      evicted = g_queue_pop_head(&pool_idle);
  }
  g_mutex_unlock(&pool_lock);
  if (keep)
    GST_DEBUG("keeping device %s idle for reuse", st_device_name(dev));
  else
    st_device_free(dev);
  if (evicted != NULL)
    idle_device_free(evicted);
}

void device_pool_hold(void) {
  g_mutex_lock(&pool_lock);
  pool_users++;
  g_mutex_unlock(&pool_lock);
}

void device_pool_drop(void) {
  GQueue idle = G_QUEUE_INIT;
  g_mutex_lock(&pool_lock);
  g_assert(pool_users > 0);
  if (--pool_users == 0) {
    idle = pool_idle;
    g_queue_init(&pool_idle);
  }
  g_mutex_unlock(&pool_lock);
  g_queue_clear_full(&idle, (GDestroyNotify)idle_device_free);
}
