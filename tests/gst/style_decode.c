/* SPDX-License-Identifier: LGPL-2.1-or-later
 * st-style-decode FILE MAX_SIDE: decodes a style image exactly as the element does
 * (gst/styleimage.c) and prints what it cost, one key=value per line:
 *   result=ok|error, message=..., size=WxH (in the file), style-size=WxH (decoded),
 *   ms=... (wall time), peak-kb=... (growth of the peak resident set size during the decode,
 *   getrusage ru_maxrss after minus before).
 * The element tests run it on hostile files to check that memory stays bounded; the README's
 * figures come from it. Exit status 0 whatever the result (2 on bad arguments).
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <gst/gst.h>

#include "styleimage.h"

static long peak_kb(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

int main(int argc, char **argv) {
  gst_init(&argc, &argv);
  if (argc != 3 || atoi(argv[2]) < 1) {
    g_printerr("usage: %s FILE MAX_SIDE\n", argv[0]);
    return 2;
  }
  /* load the plugins decodebin will use before measuring, so that only the decode counts */
  GError *error = NULL;
  gchar *warm = g_build_filename(g_getenv("ST_TEST_DATA") ? g_getenv("ST_TEST_DATA") : ".",
                                 "style-spokes.png", NULL);
  GstSample *s = style_image_decode(warm, "style image", 16, NULL, NULL, &error);
  g_clear_pointer(&s, gst_sample_unref);
  g_clear_error(&error);
  g_free(warm);

  long before = peak_kb();
  gint64 t0 = g_get_monotonic_time();
  StyleImageInfo info = {0};
  GstSample *sample =
      style_image_decode(argv[1], "style image", atoi(argv[2]), NULL, &info, &error);
  gdouble ms = (g_get_monotonic_time() - t0) / 1000.0;
  long after = peak_kb();
  if (sample != NULL) {
    printf("result=ok\nsize=%dx%d\nstyle-size=%dx%d\n", info.width, info.height, info.style_width,
           info.style_height);
    gst_sample_unref(sample);
  } else {
    printf("result=error\nmessage=%s\n", error->message);
    g_clear_error(&error);
  }
  printf("ms=%.1f\npeak-kb=%ld\n", ms, after - before);
  return 0;
}
