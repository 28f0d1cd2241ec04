/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Element tests: with ST_VALIDATION_FATAL=1, a Vulkan validation message that the element logs
 * (the engine's diagnostics go to the "styletransfer" debug category) aborts the test at once.
 * The engine also fails the next submission after one, which the element reports as an error;
 * this catches those that come when nothing is submitted any more (at teardown).
 * ST_CHECK_MAIN(name) is GST_CHECK_MAIN(name) with that log function installed;
 * st_check_run_in_one_process() runs a suite's cases in one process with the devices kept. */
#ifndef ST_FATAL_VALIDATION_H
#define ST_FATAL_VALIDATION_H

#include <stdlib.h>
#include <string.h>

#include <gst/check/gstcheck.h>

static void fatal_validation_log(GstDebugCategory *category, GstDebugLevel level, const gchar *file,
                                 const gchar *function, gint line, GObject *object,
                                 GstDebugMessage *message, gpointer user_data) {
  (void)file;
  (void)function;
  (void)line;
  (void)object;
  (void)user_data;
  const gchar *text = gst_debug_message_get(message);
  if (level <= GST_LEVEL_WARNING && text != NULL && g_str_has_prefix(text, "Vulkan validation") &&
      strcmp(gst_debug_category_get_name(category), "styletransfer") == 0) {
    g_printerr("%s\n", text);
    abort();
  }
}

static inline void fatal_validation_init(void) {
  if (g_strcmp0(g_getenv("ST_VALIDATION_FATAL"), "1") != 0)
    return;
  /* the messages must reach the log functions even without GST_DEBUG */
  if (g_getenv("GST_DEBUG") == NULL)
    gst_debug_set_threshold_for_name("styletransfer", GST_LEVEL_WARNING);
  gst_debug_set_active(TRUE);
  gst_debug_add_log_function(fatal_validation_log, NULL, NULL);
}

/* Runs every case in one process (CK_FORK=no unless the environment says otherwise) with one
 * styletransfer element alive from start to end: lavapipe compiles a device's pipelines anew for
 * every new device (4-5 s of a case's first frame), and a forked case always opens a new one. In
 * one process the element's device pool (gst/devicepool.c, kept while any element exists) hands
 * each case the device the last one left, its pipelines compiled; a device opened under other
 * environment settings (ST_GPU_TIMEOUT_MS, ST_DEVICE_MEMORY_LIMIT_MB, ...) is not reused, and
 * cases put back the environment they change. A hang is still caught, by meson's time limit. */
static inline int st_check_run_in_one_process(Suite *suite, const gchar *name, const gchar *file) {
  g_setenv("CK_FORK", "no", FALSE);
  GstElement *keeper = gst_element_factory_make("styletransfer", NULL);
  g_assert(keeper != NULL);
  gst_object_ref_sink(keeper);
  int rc = gst_check_run_suite(suite, name, file);
  gst_object_unref(keeper);
  return rc;
}

#define ST_CHECK_MAIN(name)                                                                        \
  int main(int argc, char **argv) {                                                                \
    gst_check_init(&argc, &argv);                                                                  \
    fatal_validation_init();                                                                       \
    return gst_check_run_suite(name##_suite(), #name, __FILE__);                                   \
  }

#endif /* ST_FATAL_VALIDATION_H */
