/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Tests of the styletransfer element: properties, formats, sizes, run-time changes, errors.
 *
 * Environment (set by meson test): GST_PLUGIN_PATH (build tree), ST_MODEL_PATH (a small random
 * model), ST_TEST_DATA (tests/data), ST_VALIDATION=1 and ST_VALIDATION_FATAL=1.
 */
#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/controller/gstdirectcontrolbinding.h>
#include <gst/controller/gstinterpolationcontrolsource.h>
#include <gst/video/video.h>

#include "fatal_validation.h"

/* how long a pipeline may take to reach EOS or ERROR */
#define PIPELINE_TIMEOUT (300 * GST_SECOND)

static const gchar *formats[] = {"RGBA", "BGRA", "RGBx", "BGRx", "I420",      "NV12",     "YUY2",
                                 "UYVY", "YVYU", "RGB",  "BGR",  "P010_10LE", "I420_10LE"};

static gchar *data_path(const gchar *name) {
  const gchar *dir = g_getenv("ST_TEST_DATA");
  fail_unless(dir != NULL, "ST_TEST_DATA is not set (run the tests with meson test)");
  return g_build_filename(dir, name, NULL);
}

static const gchar *model_path(void) {
  const gchar *m = g_getenv("ST_MODEL_PATH");
  fail_unless(m != NULL && g_file_test(m, G_FILE_TEST_IS_REGULAR),
              "ST_MODEL_PATH does not name a model file");
  return m;
}

/* ---- frames ------------------------------------------------------------------------------ */

/* One frame from videotestsrc, with its caps. */
static GstSample *make_frame(const gchar *format, gint width, gint height, const gchar *pattern) {
  gchar *desc = g_strdup_printf("videotestsrc num-buffers=1 pattern=%s ! "
                                "video/x-raw,format=%s,width=%d,height=%d,framerate=30/1 ! "
                                "appsink name=sink sync=false",
                                pattern, format, width, height);
  GError *err = NULL;
  GstElement *pipeline = gst_parse_launch(desc, &err);
  fail_unless(pipeline != NULL, "could not build %s: %s", desc, err ? err->message : "");
  GstElement *sink = gst_bin_get_by_name(GST_BIN(pipeline), "sink");
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  GstSample *first = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), 30 * GST_SECOND);
  fail_unless(first != NULL, "no frame from %s", desc);
  /* the first buffer of a source is flagged DISCONT, which resets the temporal state: the tests
   * push this frame repeatedly, as a continuous stream */
  GstBuffer *buf = gst_buffer_copy(gst_sample_get_buffer(first));
  GST_BUFFER_FLAG_UNSET(buf, GST_BUFFER_FLAG_DISCONT);
  GstSample *sample = gst_sample_new(buf, gst_sample_get_caps(first), NULL, NULL);
  gst_buffer_unref(buf);
  gst_sample_unref(first);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(sink);
  gst_object_unref(pipeline);
  g_free(desc);
  return sample;
}

typedef struct {
  gdouble mad;    /* mean absolute difference to the reference (colour components) */
  gdouble stddev; /* largest standard deviation of a colour component of the tested frame */
} FrameStats;

/* Value of a component sample in 8-bit units (10-bit samples are 16-bit words). */
static gdouble sample_value(const guint8 *p, gint depth, gint shift) {
  if (depth <= 8)
    return p[0];
  return (gdouble)((p[0] | p[1] << 8) >> shift) / (gdouble)(1 << (depth - 8));
}

/* Compares the first `ncomp` colour components (not alpha, not padding) of two frames of the same
 * caps. */
static FrameStats compare_components(GstCaps *caps, GstBuffer *ref, GstBuffer *test, guint ncomp) {
  GstVideoInfo info;
  GstVideoFrame fr, ft;
  fail_unless(gst_video_info_from_caps(&info, caps));
  fail_unless(gst_video_frame_map(&fr, &info, ref, GST_MAP_READ));
  fail_unless(gst_video_frame_map(&ft, &info, test, GST_MAP_READ));
  gdouble sum_diff = 0, n_diff = 0, max_sd = 0;
  for (guint c = 0; c < ncomp; c++) {
    gdouble sum = 0, sum2 = 0, n = 0;
    const guint8 *dr = GST_VIDEO_FRAME_COMP_DATA(&fr, c);
    const guint8 *dt = GST_VIDEO_FRAME_COMP_DATA(&ft, c);
    gint sr = GST_VIDEO_FRAME_COMP_STRIDE(&fr, c), st = GST_VIDEO_FRAME_COMP_STRIDE(&ft, c);
    gint ps = GST_VIDEO_FRAME_COMP_PSTRIDE(&fr, c);
    gint w = GST_VIDEO_FRAME_COMP_WIDTH(&fr, c), h = GST_VIDEO_FRAME_COMP_HEIGHT(&fr, c);
    gint depth = GST_VIDEO_FRAME_COMP_DEPTH(&fr, c);
    gint shift = GST_VIDEO_FORMAT_INFO_SHIFT(fr.info.finfo, c);
    for (gint y = 0; y < h; y++) {
      for (gint x = 0; x < w; x++) {
        gdouble a = sample_value(dr + y * sr + x * ps, depth, shift);
        gdouble b = sample_value(dt + y * st + x * ps, depth, shift);
        sum_diff += fabs(a - b);
        n_diff++;
        sum += b;
        sum2 += b * b;
        n++;
      }
    }
    gdouble mean = sum / n;
    max_sd = MAX(max_sd, sqrt(MAX(0.0, sum2 / n - mean * mean)));
  }
  gst_video_frame_unmap(&fr);
  gst_video_frame_unmap(&ft);
  FrameStats s;
  s.mad = sum_diff / n_diff;
  s.stddev = max_sd;
  return s;
}

static FrameStats compare_frames(GstCaps *caps, GstBuffer *ref, GstBuffer *test) {
  return compare_components(caps, ref, test, 3);
}

static GstElement *new_element(const gchar *style) {
  GstElement *e = gst_element_factory_make("styletransfer", NULL);
  fail_unless(e != NULL, "styletransfer element not found (GST_PLUGIN_PATH?)");
  gchar *s = data_path(style);
  g_object_set(e, "style", s, "model", model_path(), NULL);
  g_free(s);
  return e;
}

/* A harness around `element`, which gets a bus so that process() can report its errors. */
static GstHarness *new_harness(GstElement *element, GstCaps *caps) {
  GstBus *bus = gst_bus_new();
  gst_element_set_bus(element, bus);
  gst_object_unref(bus);
  GstHarness *h = gst_harness_new_with_element(element, "sink", "src");
  gst_harness_set_src_caps(h, gst_caps_copy(caps));
  return h;
}

/* Tears a harness down together with the bus new_harness gave its element: the messages queued
 * there hold references to the element, which holds the bus, so the element would never be
 * freed (and the device pool would keep its idle device open until the process ends). */
static void teardown_harness(GstHarness *h) {
  gst_element_set_bus(h->element, NULL);
  gst_harness_teardown(h);
}

/* Pushes `in` through the harness and returns the output buffer. */
static GstBuffer *process(GstHarness *h, GstBuffer *in) {
  GstFlowReturn ret = gst_harness_push(h, gst_buffer_ref(in));
  if (ret != GST_FLOW_OK) {
    GstBus *bus = gst_element_get_bus(h->element);
    GstMessage *msg = bus != NULL ? gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR) : NULL;
    GError *err = NULL;
    if (msg != NULL)
      gst_message_parse_error(msg, &err, NULL);
    fail("pushing a frame returned %s: %s", gst_flow_get_name(ret),
         err != NULL ? err->message : "(no error message)");
  }
  GstBuffer *out = gst_harness_pull(h);
  fail_unless(out != NULL);
  return out;
}

/* ---- properties ------------------------------------------------------------------------------ */

/* Sets an environment variable for part of a case and puts back what the test's environment had
 * (every case runs in one process: see main). Returns the old value for env_restore. */
static gchar *env_push(const gchar *name, const gchar *value) {
  gchar *old = g_strdup(g_getenv(name));
  g_setenv(name, value, TRUE);
  return old;
}

static void env_restore(const gchar *name, gchar *old) {
  if (old != NULL)
    g_setenv(name, old, TRUE);
  else
    g_unsetenv(name);
  g_free(old);
}

GST_START_TEST(test_properties) {
  GstElement *e = gst_element_factory_make("styletransfer", NULL);
  fail_unless(e != NULL);
  GstElementFactory *f = gst_element_get_factory(e);
  fail_unless_equals_string(gst_element_factory_get_metadata(f, GST_ELEMENT_METADATA_KLASS),
                            "Filter/Effect/Video");

  gchar *style = NULL, *model = NULL, *device_name = NULL, *device_id = NULL, *uuid = NULL,
        *pci = NULL;
  gint steps, device, size;
  gdouble strength, smoothing;
  gboolean preserve, temporal, motion, fp16;
  g_object_get(e, "style", &style, "model", &model, "steps", &steps, "strength", &strength,
               "preserve-colors", &preserve, "temporal", &temporal, "motion-compensation", &motion,
               "temporal-smoothing", &smoothing, "device", &device, "processing-size", &size,
               "fp16", &fp16, "device-name", &device_name, "device-id", &device_id, "device-uuid",
               &uuid, "device-pci-bus-id", &pci, NULL);
  fail_unless(style == NULL);
  /* the default model comes from ST_MODEL_PATH when set */
  fail_unless_equals_string(model, g_getenv("ST_MODEL_PATH"));
  fail_unless_equals_int(steps, 2);
  fail_unless_equals_float(strength, 1.0);
  fail_unless(!preserve);
  fail_unless(temporal);
  fail_unless(motion);
  fail_unless_equals_float(smoothing, 0.8);
  fail_unless_equals_int(device, -1);
  fail_unless_equals_int(size, 0);
  fail_unless(fp16);
  fail_unless(device_name == NULL);
  fail_unless(device_id == NULL && uuid == NULL && pci == NULL);
  g_free(style);
  g_free(model);

  struct {
    const gchar *name;
    gint min, max;
  } ranges[] = {{"steps", 0, 8}, {"device", -1, 63}, {"processing-size", 0, 8192}};
  for (guint i = 0; i < G_N_ELEMENTS(ranges); i++) {
    GParamSpec *p = g_object_class_find_property(G_OBJECT_GET_CLASS(e), ranges[i].name);
    fail_unless(p != NULL && G_IS_PARAM_SPEC_INT(p), "%s", ranges[i].name);
    fail_unless_equals_int(G_PARAM_SPEC_INT(p)->minimum, ranges[i].min);
    fail_unless_equals_int(G_PARAM_SPEC_INT(p)->maximum, ranges[i].max);
  }
  const gchar *mutable[] = {"style",
                            "model",
                            "steps",
                            "strength",
                            "preserve-colors",
                            "temporal",
                            "motion-compensation",
                            "temporal-smoothing",
                            "device",
                            "device-id",
                            "processing-size",
                            "fp16"};
  for (guint i = 0; i < G_N_ELEMENTS(mutable); i++) {
    GParamSpec *p = g_object_class_find_property(G_OBJECT_GET_CLASS(e), mutable[i]);
    fail_unless(p != NULL, "%s", mutable[i]);
    fail_unless(p->flags & GST_PARAM_MUTABLE_PLAYING, "%s not mutable in PLAYING", mutable[i]);
    fail_unless(p->flags & G_PARAM_WRITABLE);
  }
  GParamSpec *p = g_object_class_find_property(G_OBJECT_GET_CLASS(e), "strength");
  fail_unless(p->flags & GST_PARAM_CONTROLLABLE);
  fail_unless_equals_float(G_PARAM_SPEC_DOUBLE(p)->minimum, 0.0);
  fail_unless_equals_float(G_PARAM_SPEC_DOUBLE(p)->maximum, 1.0);
  p = g_object_class_find_property(G_OBJECT_GET_CLASS(e), "temporal-smoothing");
  fail_unless(p->flags & GST_PARAM_CONTROLLABLE);
  fail_unless_equals_float(G_PARAM_SPEC_DOUBLE(p)->minimum, 0.0);
  fail_unless_equals_float(G_PARAM_SPEC_DOUBLE(p)->maximum, 0.95);
  const gchar *read_only[] = {"device-name", "device-uuid", "device-pci-bus-id"};
  for (guint i = 0; i < G_N_ELEMENTS(read_only); i++) {
    p = g_object_class_find_property(G_OBJECT_GET_CLASS(e), read_only[i]);
    fail_unless(p != NULL && G_IS_PARAM_SPEC_STRING(p), "%s", read_only[i]);
    fail_unless(!(p->flags & G_PARAM_WRITABLE), "%s is writable", read_only[i]);
  }

  /* pad templates: the thirteen formats, same caps on both sides */
  GstCaps *expected = gst_caps_from_string(
      "video/x-raw,format={RGBA,BGRA,RGBx,BGRx,I420,NV12,YUY2,UYVY,YVYU,RGB,BGR,P010_10LE,"
      "I420_10LE},width=[1,2147483647],height=[1,2147483647],framerate=[0/1,2147483647/1]");
  GstPad *sink = gst_element_get_static_pad(e, "sink");
  GstPad *src = gst_element_get_static_pad(e, "src");
  GstCaps *sc = gst_pad_get_pad_template_caps(sink);
  GstCaps *dc = gst_pad_get_pad_template_caps(src);
  fail_unless(gst_caps_is_equal(sc, expected));
  fail_unless(gst_caps_is_equal(dc, expected));
  gst_caps_unref(sc);
  gst_caps_unref(dc);
  gst_caps_unref(expected);
  gst_object_unref(sink);
  gst_object_unref(src);
  gst_object_unref(e);
}
GST_END_TEST;

GST_START_TEST(test_out_of_range) {
  GstElement *e = gst_element_factory_make("styletransfer", NULL);
  fail_unless(e != NULL);
  g_object_set(e, "steps", 3, "strength", 0.5, "device", 0, "processing-size", 128, NULL);
  ASSERT_WARNING(g_object_set(e, "steps", 9, NULL));
  ASSERT_WARNING(g_object_set(e, "steps", -1, NULL));
  ASSERT_WARNING(g_object_set(e, "strength", 1.5, NULL));
  ASSERT_WARNING(g_object_set(e, "strength", -0.1, NULL));
  ASSERT_WARNING(g_object_set(e, "temporal-smoothing", 0.99, NULL));
  ASSERT_WARNING(g_object_set(e, "temporal-smoothing", -0.5, NULL));
  ASSERT_WARNING(g_object_set(e, "device", 64, NULL));
  ASSERT_WARNING(g_object_set(e, "device", -2, NULL));
  ASSERT_WARNING(g_object_set(e, "processing-size", 8193, NULL));
  ASSERT_WARNING(g_object_set(e, "processing-size", -5, NULL));
  ASSERT_WARNING(g_object_set(e, "device-name", "x", NULL));
  gint steps, device, size;
  gdouble strength;
  gchar *name;
  g_object_get(e, "steps", &steps, "strength", &strength, "device", &device, "processing-size",
               &size, "device-name", &name, NULL);
  fail_unless_equals_int(steps, 3);
  fail_unless_equals_float(strength, 0.5);
  fail_unless_equals_int(device, 0);
  fail_unless_equals_int(size, 128);
  fail_unless(name == NULL);
  gst_object_unref(e);
}
GST_END_TEST;

/* ---- processing ------------------------------------------------------------------------------ */

/* The launch line of the brief, to fakesink, counting buffers. */
static void count_handoff(GstElement *sink, GstBuffer *buf, GstPad *pad, gpointer user_data) {
  (void)sink;
  (void)buf;
  (void)pad;
  g_atomic_int_inc((gint *)user_data);
}

/* Runs `desc` to EOS or ERROR; returns the message (caller unrefs). */
static GstMessage *run_pipeline(GstElement *pipeline) {
  GstBus *bus = gst_element_get_bus(pipeline);
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  GstMessage *msg =
      gst_bus_timed_pop_filtered(bus, PIPELINE_TIMEOUT, GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  fail_unless(msg != NULL, "pipeline neither finished nor failed in time");
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(bus);
  return msg;
}

/* Fails the test unless `msg` is EOS, with the error's own text when it is an ERROR. */
static void expect_eos(GstMessage *msg, const gchar *what) {
  fail_unless(msg != NULL, "%s: neither EOS nor an error in time", what);
  if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
    GError *err = NULL;
    gchar *dbg = NULL;
    gst_message_parse_error(msg, &err, &dbg);
    fail("%s failed: %s (%s)", what, err->message, dbg != NULL ? dbg : "");
  }
  fail_unless_equals_int(GST_MESSAGE_TYPE(msg), GST_MESSAGE_EOS);
}

GST_START_TEST(test_launch_line) {
  gchar *style = data_path("style-spokes.png");
  gchar *desc = g_strdup_printf("videotestsrc num-buffers=4 ! video/x-raw,width=320,height=240 ! "
                                "styletransfer name=st style=%s ! fakesink name=sink "
                                "signal-handoffs=true",
                                style);
  GstElement *pipeline = gst_parse_launch(desc, NULL);
  fail_unless(pipeline != NULL);
  GstElement *sink = gst_bin_get_by_name(GST_BIN(pipeline), "sink");
  gint count = 0;
  g_signal_connect(sink, "handoff", G_CALLBACK(count_handoff), &count);
  GstMessage *msg = run_pipeline(pipeline);
  expect_eos(msg, "the pipeline");
  fail_unless_equals_int(count, 4);
  gst_message_unref(msg);
  gst_object_unref(sink);
  gst_object_unref(pipeline);
  g_free(desc);
  g_free(style);
}
GST_END_TEST;

/* Frames of each of the nf formats at each of the n sizes through one element (renegotiated
 * between them): the output is stylized (neither the input nor flat) and has the input's caps. */
static void check_formats_sizes(const gchar *const *formats_, guint nf, const gint (*sizes)[2],
                                guint n) {
  GstElement *e = new_element("style-spokes.png");
  GstHarness *h = NULL;
  for (guint f = 0; f < nf; f++) {
    const gchar *format = formats_[f];
    for (guint k = 0; k < n; k++) {
      gint width = sizes[k][0], height = sizes[k][1];
      GstSample *in = make_frame(format, width, height, "smpte");
      if (h == NULL) {
        h = new_harness(e, gst_sample_get_caps(in));
        gchar *name = NULL;
        g_object_get(e, "device-name", &name, NULL);
        fail_unless(name != NULL && name[0] != '\0', "device-name not set while playing");
        g_free(name);
      } else {
        gst_harness_set_src_caps(h, gst_caps_copy(gst_sample_get_caps(in)));
      }
      for (int i = 0; i < 2; i++) {
        GstBuffer *out = process(h, gst_sample_get_buffer(in));
        GstVideoInfo info;
        fail_unless(gst_video_info_from_caps(&info, gst_sample_get_caps(in)));
        fail_unless(gst_buffer_get_size(out) >= info.size);
        FrameStats s = compare_frames(gst_sample_get_caps(in), gst_sample_get_buffer(in), out);
        GST_INFO("%s %dx%d frame %d: mad %.2f stddev %.2f", format, width, height, i, s.mad,
                 s.stddev);
        fail_unless(s.mad > 2.0, "%s %dx%d: output equals the input (mad %.3f)", format, width,
                    height, s.mad);
        fail_unless(s.stddev > 2.0, "%s %dx%d: output is constant (stddev %.3f)", format, width,
                    height, s.stddev);
        gst_buffer_unref(out);
      }
      GstCaps *outcaps = gst_pad_get_current_caps(h->sinkpad);
      fail_unless(gst_caps_is_equal(outcaps, gst_sample_get_caps(in)), "%s %dx%d: caps changed",
                  format, width, height);
      gst_caps_unref(outcaps);
      gst_sample_unref(in);
    }
  }
  teardown_harness(h);
  gst_object_unref(e);
}

static void check_format(const gchar *format, gint width, gint height) {
  const gint size[1][2] = {{width, height}};
  check_formats_sizes(&format, 1, size, 1);
}

/* Every format at one size; one element for all of them (an element per format spent most of
 * the time starting: 13 model loads and style decodes). */
static void check_all_formats(gint width, gint height) {
  const gint size[1][2] = {{width, height}};
  check_formats_sizes(formats, G_N_ELEMENTS(formats), size, 1);
}

GST_START_TEST(test_formats) { check_all_formats(320, 240); }
GST_END_TEST;

GST_START_TEST(test_odd_size) {
  check_all_formats(257, 129);
  check_format("I420", 33, 65);
}
GST_END_TEST;

/* Small odd sizes: odd widths of packed 4:2:2 pairs, partial 4:2:0 chroma blocks. */
GST_START_TEST(test_small_odd_sizes) {
  static const gint sizes[][2] = {{19, 37}, {37, 19}};
  check_formats_sizes(formats, G_N_ELEMENTS(formats), sizes, G_N_ELEMENTS(sizes));
}
GST_END_TEST;

/* ---- files made at run time ------------------------------------------------------------------ */

static gchar *make_tmp_dir(void) {
  GError *err = NULL;
  gchar *dir = g_dir_make_tmp("st-test-XXXXXX", &err);
  fail_unless(dir != NULL, "%s", err ? err->message : "");
  return dir;
}

/* Removes `dir` with the files (and FIFOs) in it, and frees the name. */
static void remove_tmp_dir(gchar *dir) {
  GDir *d = g_dir_open(dir, 0, NULL);
  fail_unless(d != NULL);
  for (const gchar *name; (name = g_dir_read_name(d)) != NULL;) {
    gchar *p = g_build_filename(dir, name, NULL);
    if (g_file_test(p, G_FILE_TEST_IS_DIR))
      g_rmdir(p);
    else
      g_unlink(p);
    g_free(p);
  }
  g_dir_close(d);
  fail_unless(g_rmdir(dir) == 0, "could not remove %s", dir);
  g_free(dir);
}

/* Runs a pipeline description to EOS; fails the test on an error. */
static void run_to_eos(const gchar *desc) {
  GError *err = NULL;
  GstElement *pipeline = gst_parse_launch(desc, &err);
  fail_unless(pipeline != NULL, "could not build %s: %s", desc, err ? err->message : "");
  GstMessage *msg = run_pipeline(pipeline);
  expect_eos(msg, desc);
  gst_message_unref(msg);
  gst_object_unref(pipeline);
}

/* Encodes one videotestsrc frame of `width` x `height` with `encoder` (e.g. "jpegenc") into
 * dir/name; returns the path. */
static gchar *encode_image(const gchar *dir, const gchar *name, const gchar *encoder, gint width,
                           gint height) {
  gchar *path = g_build_filename(dir, name, NULL);
  gchar *desc = g_strdup_printf("videotestsrc num-buffers=1 pattern=smpte ! "
                                "video/x-raw,format=I420,width=%d,height=%d ! videoconvert ! %s ! "
                                "filesink location=%s",
                                width, height, encoder, path);
  run_to_eos(desc);
  g_free(desc);
  return path;
}

/* Writes the first `size` bytes of `src` to dir/name; returns the path. */
static gchar *truncated_copy(const gchar *src, const gchar *dir, const gchar *name, gsize size) {
  gchar *data = NULL;
  gsize len = 0;
  fail_unless(g_file_get_contents(src, &data, &len, NULL));
  fail_unless(size < len);
  gchar *path = g_build_filename(dir, name, NULL);
  fail_unless(g_file_set_contents(path, data, (gssize)size, NULL));
  g_free(data);
  return path;
}

static guint32 crc32_png(const guint8 *data, gsize len, guint32 crc) {
  for (gsize i = 0; i < len; i++) {
    crc ^= data[i];
    for (int k = 0; k < 8; k++)
      crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1)));
  }
  return crc;
}

static void put_be32(GByteArray *out, guint32 v) {
  guint8 b[4] = {(guint8)(v >> 24), (guint8)(v >> 16), (guint8)(v >> 8), (guint8)v};
  g_byte_array_append(out, b, 4);
}

static void png_chunk(GByteArray *out, const gchar *type, const guint8 *data, gsize len) {
  put_be32(out, (guint32)len);
  guint start = out->len;
  g_byte_array_append(out, (const guint8 *)type, 4);
  if (len > 0)
    g_byte_array_append(out, data, (guint)len);
  put_be32(out, ~crc32_png(out->data + start, len + 4, 0xFFFFFFFFu));
}

/* Writes dir/name: a PNG of `width` x `height`, 1-bit grey, all black. The image data is the
 * whole zlib stream of the rows, or only its first `cut` bytes with no end chunk (cut > 0).
 * `pad` bytes of text metadata (a tEXt chunk) come before the image data. Returns the path. */
static gchar *write_png(const gchar *dir, const gchar *name, guint32 width, guint32 height,
                        gsize cut, gsize pad) {
  GByteArray *png = g_byte_array_new();
  static const guint8 sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  g_byte_array_append(png, sig, 8);
  guint8 ihdr[13] = {0};
  for (int i = 0; i < 4; i++) {
    ihdr[i] = (guint8)(width >> (24 - 8 * i));
    ihdr[4 + i] = (guint8)(height >> (24 - 8 * i));
  }
  ihdr[8] = 1; /* bit depth 1, colour type 0 (grey), deflate, adaptive filter, no interlace */
  png_chunk(png, "IHDR", ihdr, sizeof ihdr);
  if (pad > 0) {
    guint8 *text = g_malloc0(pad);
    memcpy(text, "Comment", 7); /* keyword, NUL, then the text (NULs here) */
    png_chunk(png, "tEXt", text, pad);
    g_free(text);
  }
  /* zlib stream of `height` rows of (filter byte 0, then zeros) */
  GZlibCompressor *z = g_zlib_compressor_new(G_ZLIB_COMPRESSOR_FORMAT_ZLIB, 9);
  gsize row = 1 + (width + 7) / 8;
  guint8 *zeros = g_malloc0(row * 64);
  GByteArray *idat = g_byte_array_new();
  guint8 out[1 << 16];
  for (guint32 y = 0;;) {
    guint32 rows = MIN(64, height - y);
    gboolean last = y + rows >= height;
    const guint8 *in = zeros;
    gsize in_left = row * rows;
    GConverterResult r;
    do {
      gsize read = 0, written = 0;
      GError *err = NULL;
      r = g_converter_convert(G_CONVERTER(z), in, in_left, out, sizeof out,
                              last ? G_CONVERTER_INPUT_AT_END : G_CONVERTER_NO_FLAGS, &read,
                              &written, &err);
      fail_unless(r != G_CONVERTER_ERROR, "zlib: %s", err ? err->message : "");
      g_byte_array_append(idat, out, (guint)written);
      in += read;
      in_left -= read;
    } while (in_left > 0 || (last && r != G_CONVERTER_FINISHED));
    y += rows;
    if (last || (cut > 0 && idat->len >= cut))
      break;
  }
  g_object_unref(z);
  g_free(zeros);
  png_chunk(png, "IDAT", idat->data, cut > 0 ? MIN(cut, idat->len) : idat->len);
  if (cut == 0)
    png_chunk(png, "IEND", NULL, 0);
  gchar *path = g_build_filename(dir, name, NULL);
  fail_unless(g_file_set_contents(path, (const gchar *)png->data, png->len, NULL));
  GST_INFO("%s: %ux%u, %u bytes", path, width, height, png->len);
  g_byte_array_unref(idat);
  g_byte_array_unref(png);
  return path;
}

/* Runs tests' st-style-decode (the element's decoder, alone) on `path` with the shipped model's
 * style size and returns its report (key=value lines); *ms and *peak_mb are its time and the
 * growth of its peak resident memory during the decode. */
static gchar *decode_cost(const gchar *path, gdouble *ms, gdouble *peak_mb) {
  const gchar *tool = g_getenv("ST_STYLE_DECODE");
  fail_unless(tool != NULL, "ST_STYLE_DECODE is not set (run the tests with meson test)");
  gchar *argv[] = {(gchar *)tool, (gchar *)path, (gchar *)"256", NULL};
  gchar *out = NULL, *err = NULL;
  gint status = 0;
  GError *error = NULL;
  fail_unless(
      g_spawn_sync(NULL, argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status, &error),
      "spawn %s: %s", tool, error ? error->message : "");
  fail_unless(g_spawn_check_wait_status(status, NULL), "%s %s failed:\n%s\n%s", tool, path, out,
              err);
  const gchar *m = strstr(out, "ms=");
  const gchar *p = strstr(out, "peak-kb=");
  fail_unless(m != NULL && p != NULL, "st-style-decode said:\n%s\n%s", out, err);
  *ms = g_ascii_strtod(m + 3, NULL);
  *peak_mb = g_ascii_strtod(p + 8, NULL) / 1024.0;
  g_free(err);
  return out;
}

/* ---- run-time changes ------------------------------------------------------------------------ */

/* how long a style or engine change set while playing may take to take effect */
#define CHANGE_TIMEOUT (300 * GST_SECOND)
/* set_property while playing only queues the change: it must return at once */
#define SET_PROPERTY_MAX_US (100 * 1000)

/* g_object_set(e, ..., NULL), checking that it returned within SET_PROPERTY_MAX_US */
#define set_at_once(e, ...)                                                                        \
  do {                                                                                             \
    gint64 t0_ = g_get_monotonic_time();                                                           \
    g_object_set((e), __VA_ARGS__, NULL);                                                          \
    gint64 us_ = g_get_monotonic_time() - t0_;                                                     \
    fail_unless(us_ < SET_PROPERTY_MAX_US, "set_property while playing took %.1f ms",              \
                us_ / 1000.0);                                                                     \
  } while (0)

static GstBus *watch_bus(GstElement *e) {
  GstBus *bus = gst_bus_new();
  gst_element_set_bus(e, bus);
  return bus;
}

static void unwatch_bus(GstElement *e, GstBus *bus) {
  gst_element_set_bus(e, NULL);
  gst_object_unref(bus);
}

/* Waits for the element message `name` ("styletransfer-style-applied", ...) and returns a copy
 * of its structure; a WARNING or ERROR before it fails the test with its text. */
static GstStructure *wait_applied(GstBus *bus, const gchar *name) {
  for (;;) {
    GstMessage *m = gst_bus_timed_pop_filtered(
        bus, CHANGE_TIMEOUT, GST_MESSAGE_ELEMENT | GST_MESSAGE_WARNING | GST_MESSAGE_ERROR);
    fail_unless(m != NULL, "no %s message in time", name);
    if (GST_MESSAGE_TYPE(m) != GST_MESSAGE_ELEMENT) {
      GError *err = NULL;
      if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_WARNING)
        gst_message_parse_warning(m, &err, NULL);
      else
        gst_message_parse_error(m, &err, NULL);
      fail("%s instead of %s: %s", GST_MESSAGE_TYPE_NAME(m), name, err->message);
    }
    if (gst_message_has_name(m, name)) {
      GstStructure *s = gst_structure_copy(gst_message_get_structure(m));
      gst_message_unref(m);
      return s;
    }
    gst_message_unref(m);
  }
}

/* Waits for a WARNING and returns it; an ERROR or an "-applied" message fails the test. */
static GError *wait_warning(GstBus *bus) {
  GstMessage *m = gst_bus_timed_pop_filtered(
      bus, CHANGE_TIMEOUT, GST_MESSAGE_ELEMENT | GST_MESSAGE_WARNING | GST_MESSAGE_ERROR);
  fail_unless(m != NULL, "no warning in time");
  fail_unless(GST_MESSAGE_TYPE(m) == GST_MESSAGE_WARNING, "%s instead of a warning",
              GST_MESSAGE_TYPE(m) == GST_MESSAGE_ELEMENT
                  ? gst_structure_get_name(gst_message_get_structure(m))
                  : GST_MESSAGE_TYPE_NAME(m));
  GError *err = NULL;
  gchar *dbg = NULL;
  gst_message_parse_warning(m, &err, &dbg);
  GST_INFO("warning: %s (%s)", err->message, GST_STR_NULL(dbg));
  g_free(dbg);
  gst_message_unref(m);
  return err;
}

static void check_warning(GstBus *bus, GQuark domain, gint code, const gchar *text,
                          const gchar *kept) {
  GError *w = wait_warning(bus);
  fail_unless(w->domain == domain && w->code == code, "warning %s %d: %s",
              g_quark_to_string(w->domain), w->code, w->message);
  fail_unless(strstr(w->message, text) != NULL, "warning \"%s\" lacks \"%s\"", w->message, text);
  fail_unless(strstr(w->message, kept) != NULL, "warning \"%s\" lacks \"%s\"", w->message, kept);
  g_error_free(w);
}

static void check_engine_applied(GstBus *bus, const gchar *model, gboolean fp16) {
  GstStructure *s = wait_applied(bus, "styletransfer-engine-applied");
  gboolean got_fp16 = !fp16;
  gdouble load_ms = -1;
  fail_unless_equals_string(gst_structure_get_string(s, "model"), model);
  fail_unless(gst_structure_get_string(s, "device-name") != NULL);
  fail_unless(gst_structure_get(s, "fp16", G_TYPE_BOOLEAN, &got_fp16, "load-ms", G_TYPE_DOUBLE,
                                &load_ms, NULL),
              "fields missing: %" GST_PTR_FORMAT, s);
  fail_unless_equals_int(got_fp16, fp16);
  fail_unless(load_ms >= 0);
  g_print("engine applied: %s on %s in %.0f ms\n", model,
          gst_structure_get_string(s, "device-name"), load_ms);
  gst_structure_free(s);
}

static void check_style_applied(GstBus *bus, const gchar *path, guint serial, gint width,
                                gint height) {
  GstStructure *s = wait_applied(bus, "styletransfer-style-applied");
  guint got_serial = 0;
  gint w = 0, h = 0, sw = 0, sh = 0;
  gdouble decode_ms = -1, features_ms = -1;
  fail_unless_equals_string(gst_structure_get_string(s, "path"), path);
  fail_unless(gst_structure_get(s, "serial", G_TYPE_UINT, &got_serial, "width", G_TYPE_INT, &w,
                                "height", G_TYPE_INT, &h, "style-width", G_TYPE_INT, &sw,
                                "style-height", G_TYPE_INT, &sh, "decode-ms", G_TYPE_DOUBLE,
                                &decode_ms, "features-ms", G_TYPE_DOUBLE, &features_ms, NULL),
              "fields missing: %" GST_PTR_FORMAT, s);
  fail_unless_equals_int(got_serial, serial);
  fail_unless_equals_int(w, width);
  fail_unless_equals_int(h, height);
  /* scaled to fit the model's style size, aspect ratio kept */
  fail_unless(sw > 0 && sh > 0 && sw <= w && sh <= h, "style size %dx%d", sw, sh);
  fail_unless(ABS((gdouble)sw / sh - (gdouble)w / h) < 0.05, "aspect %dx%d vs %dx%d", sw, sh, w, h);
  fail_unless(decode_ms >= 0 && features_ms >= 0);
  g_print("style %u applied: %s %dx%d -> %dx%d, decoded in %.0f ms, features %.0f ms\n", serial,
          path, w, h, sw, sh, decode_ms, features_ms);
  gst_structure_free(s);
}

GST_START_TEST(test_style_change_playing) {
  GstSample *in = make_frame("RGBA", 160, 120, "smpte");
  GstElement *e = new_element("style-spokes.png");
  g_object_set(e, "temporal", FALSE, NULL);
  GstHarness *h = new_harness(e, gst_sample_get_caps(in));
  GstBus *bus = watch_bus(e);
  GstCaps *caps = gst_sample_get_caps(in);
  GstBuffer *a1 = process(h, gst_sample_get_buffer(in));

  gchar *other = data_path("style-pinwheel.jpg");
  set_at_once(e, "style", other);
  check_style_applied(bus, other, 2, 80, 80);
  GstBuffer *b = process(h, gst_sample_get_buffer(in));
  FrameStats s = compare_frames(caps, a1, b);
  fail_unless(s.mad > 1.0, "a new style did not change the output (mad %.3f)", s.mad);

  gchar *first = data_path("style-spokes.png");
  set_at_once(e, "style", first);
  check_style_applied(bus, first, 3, 96, 64);
  GstBuffer *a2 = process(h, gst_sample_get_buffer(in));
  s = compare_frames(caps, a1, a2);
  fail_unless(s.mad < 0.5, "the first style did not come back (mad %.3f)", s.mad);

  /* an undecodable style while playing: a warning, the current style stays in use */
  gchar *bad = data_path("not-an-image.txt");
  set_at_once(e, "style", bad);
  check_warning(bus, GST_STREAM_ERROR, GST_STREAM_ERROR_DECODE, "Could not decode style image",
                "the previous style stays in use");
  GstBuffer *a3 = process(h, gst_sample_get_buffer(in));
  s = compare_frames(caps, a1, a3);
  fail_unless(s.mad < 0.5, "the style changed after a failed update (mad %.3f)", s.mad);
  /* the style cleared: a warning, the current style stays in use */
  set_at_once(e, "style", NULL);
  check_warning(bus, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS, "The style was cleared",
                "stays in use");
  GstBuffer *a4 = process(h, gst_sample_get_buffer(in));
  fail_unless(compare_frames(caps, a1, a4).mad < 0.5);

  unwatch_bus(e, bus);
  gst_buffer_unref(a1);
  gst_buffer_unref(a2);
  gst_buffer_unref(a3);
  gst_buffer_unref(a4);
  gst_buffer_unref(b);
  g_free(other);
  g_free(first);
  g_free(bad);
  teardown_harness(h);
  gst_object_unref(e);
  gst_sample_unref(in);
}
GST_END_TEST;

/* Setting the style while playing never waits for the decode: with a 100-megapixel image
 * (about a second to decode) set_property returns at once, frames keep coming with the old
 * style, and the new one takes effect with the "applied" message. A FIFO is refused with a
 * warning; stopping the element during a decode does not wait for it. */
GST_START_TEST(test_style_change_nonblocking) {
  gchar *dir = make_tmp_dir();
  gchar *slow = encode_image(dir, "slow.jpg", "jpegenc", 10000, 10000);
  gchar *fifo = g_build_filename(dir, "fifo.png", NULL);
  fail_unless(mkfifo(fifo, 0600) == 0, "mkfifo: %s", g_strerror(errno));
  GstSample *in = make_frame("RGBA", 160, 120, "smpte");
  GstCaps *caps = gst_sample_get_caps(in);
  GstBuffer *inbuf = gst_sample_get_buffer(in);
  GstElement *e = new_element("style-spokes.png");
  g_object_set(e, "temporal", FALSE, NULL);
  GstHarness *h = new_harness(e, caps);
  GstBus *bus = watch_bus(e);
  GstBuffer *old = process(h, inbuf);

  gint64 t0 = g_get_monotonic_time();
  set_at_once(e, "style", slow);
  g_print("set_property(style) while playing returned in %.2f ms\n",
          (g_get_monotonic_time() - t0) / 1000.0);
  t0 = g_get_monotonic_time();
  GstBuffer *during = process(h, inbuf);
  gdouble frame_ms = (g_get_monotonic_time() - t0) / 1000.0;
  /* the image is still decoding (nothing on the bus yet): this frame had the old style */
  GstMessage *early = gst_bus_pop(bus);
  fail_unless(early == NULL, "%s before the first frame after the change (%.0f ms)",
              early ? GST_MESSAGE_TYPE_NAME(early) : "", frame_ms);
  fail_unless(compare_frames(caps, old, during).mad < 0.5, "a frame during the decode did not "
                                                           "have the old style");
  g_print("a frame while the new style decodes: %.0f ms, old style\n", frame_ms);
  check_style_applied(bus, slow, 2, 10000, 10000);
  GstBuffer *after = process(h, inbuf);
  fail_unless(compare_frames(caps, old, after).mad > 1.0, "the new style changed nothing");

  set_at_once(e, "style", fifo);
  check_warning(bus, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_OPEN_READ, "is a named pipe (FIFO)",
                "the previous style stays in use");
  GstBuffer *kept = process(h, inbuf);
  fail_unless(compare_frames(caps, after, kept).mad < 0.5, "the style changed after a refusal");

  /* stop while the slow image decodes: the decode is cancelled */
  gchar *first = data_path("style-spokes.png");
  set_at_once(e, "style", first);
  set_at_once(e, "style", slow);
  t0 = g_get_monotonic_time();
  teardown_harness(h);
  gdouble stop_s = (g_get_monotonic_time() - t0) / 1e6;
  g_print("stopped during a decode in %.2f s\n", stop_s);
  fail_unless(stop_s < 10, "stopping waited %.1f s for the decode", stop_s);

  unwatch_bus(e, bus);
  gst_buffer_unref(old);
  gst_buffer_unref(during);
  gst_buffer_unref(after);
  gst_buffer_unref(kept);
  gst_object_unref(e);
  gst_sample_unref(in);
  g_free(first);
  g_free(fifo);
  g_free(slow);
  remove_tmp_dir(dir);
}
GST_END_TEST;

GST_START_TEST(test_property_change_playing) {
  GstSample *in = make_frame("RGBA", 160, 120, "smpte");
  GstCaps *caps = gst_sample_get_caps(in);
  GstBuffer *inbuf = gst_sample_get_buffer(in);
  GstElement *e = new_element("style-spokes.png");
  g_object_set(e, "temporal", FALSE, NULL);
  GstHarness *h = new_harness(e, caps);
  GstBuffer *base = process(h, inbuf);
  FrameStats sb = compare_frames(caps, inbuf, base);
  fail_unless(sb.mad > 2.0 && sb.stddev > 2.0);

  /* each change alters the next frame; restoring the old value restores the output (temporal
   * reuse is off, so frames are deterministic) */
  struct {
    const gchar *name;
    GValue value;
  } changes[] = {
      {"strength", G_VALUE_INIT},        {"strength", G_VALUE_INIT},        {"steps", G_VALUE_INIT},
      {"preserve-colors", G_VALUE_INIT}, {"processing-size", G_VALUE_INIT},
  };
  g_value_init(&changes[0].value, G_TYPE_DOUBLE);
  g_value_set_double(&changes[0].value, 0.0);
  g_value_init(&changes[1].value, G_TYPE_DOUBLE);
  g_value_set_double(&changes[1].value, 0.5);
  g_value_init(&changes[2].value, G_TYPE_INT);
  g_value_set_int(&changes[2].value, 0);
  g_value_init(&changes[3].value, G_TYPE_BOOLEAN);
  g_value_set_boolean(&changes[3].value, TRUE);
  g_value_init(&changes[4].value, G_TYPE_INT);
  g_value_set_int(&changes[4].value, 64);
  GstBuffer *out;
  for (guint i = 0; i < G_N_ELEMENTS(changes); i++) {
    GValue old = G_VALUE_INIT;
    g_value_init(&old, G_VALUE_TYPE(&changes[i].value));
    g_object_get_property(G_OBJECT(e), changes[i].name, &old);
    g_object_set_property(G_OBJECT(e), changes[i].name, &changes[i].value);
    out = process(h, inbuf);
    FrameStats s = compare_frames(caps, base, out);
    fail_unless(s.mad > 0.5, "changing %s while playing changed nothing (mad %.3f)",
                changes[i].name, s.mad);
    gst_buffer_unref(out);
    g_object_set_property(G_OBJECT(e), changes[i].name, &old);
    out = process(h, inbuf);
    s = compare_frames(caps, base, out);
    fail_unless(s.mad < 0.5, "restoring %s did not restore the output (mad %.3f)", changes[i].name,
                s.mad);
    gst_buffer_unref(out);
    g_value_unset(&old);
    g_value_unset(&changes[i].value);
  }

  /* temporal on: frames keep being produced; a changed model/fp16/device builds an engine beside
   * the running one (set_property returns at once) and swaps it in */
  GstBus *bus = watch_bus(e);
  g_object_set(e, "temporal", TRUE, NULL);
  for (int i = 0; i < 2; i++)
    gst_buffer_unref(process(h, inbuf));
  g_object_set(e, "temporal", FALSE, NULL);
  set_at_once(e, "fp16", FALSE);
  check_engine_applied(bus, model_path(), FALSE);
  out = process(h, inbuf);
  FrameStats sf = compare_frames(caps, base, out);
  fail_unless(sf.mad < 3.0, "fp16 off: output far from fp16 on (mad %.3f)", sf.mad);
  gst_buffer_unref(out);
  set_at_once(e, "device", 0);
  check_engine_applied(bus, model_path(), FALSE);
  out = process(h, inbuf);
  FrameStats sd = compare_frames(caps, inbuf, out);
  fail_unless(sd.mad > 2.0 && sd.stddev > 2.0);

  /* a model that does not load: a warning, the running engine stays in use */
  gchar *bad = data_path("not-an-image.txt");
  set_at_once(e, "model", bad);
  check_warning(bus, GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_INIT, "Invalid model file",
                "the previous model and device stay in use");
  set_at_once(e, "model", "/nonexistent/model.safetensors");
  check_warning(bus, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND, "does not exist",
                "the previous model and device stay in use");
  GstBuffer *kept = process(h, inbuf);
  fail_unless(compare_frames(caps, out, kept).mad < 0.5, "the output changed after a failed "
                                                         "model change");
  gst_buffer_unref(kept);
  gst_buffer_unref(out);
  g_free(bad);
  unwatch_bus(e, bus);

  gst_buffer_unref(base);
  teardown_harness(h);
  gst_object_unref(e);
  gst_sample_unref(in);
}
GST_END_TEST;

/* device-id: the UUID the element reports (device-uuid) selects that device, over `device`, in
 * the spellings nvidia-smi prints (GPU- prefix, upper case, no dashes), and so does the PCI bus id
 * where the device reports one; an unknown id set while playing posts a warning and the running
 * engine stays. */
static void process_on_device(const gchar *id, const gchar *uuid, const gchar *name) {
  GstSample *in = make_frame("RGBA", 64, 48, "smpte");
  GstElement *e = new_element("style-spokes.png");
  g_object_set(e, "device", 63, "device-id", id, NULL);
  GstHarness *h = new_harness(e, gst_sample_get_caps(in));
  GstBuffer *out = process(h, gst_sample_get_buffer(in));
  FrameStats s = compare_frames(gst_sample_get_caps(in), gst_sample_get_buffer(in), out);
  fail_unless(s.mad > 2.0 && s.stddev > 2.0, "device-id %s: output not stylized", id);
  gchar *got_uuid = NULL, *got_name = NULL;
  g_object_get(e, "device-uuid", &got_uuid, "device-name", &got_name, NULL);
  fail_unless_equals_string(got_uuid, uuid);
  fail_unless_equals_string(got_name, name);
  GST_INFO("device-id %s: %s", id, got_name);
  g_free(got_uuid);
  g_free(got_name);
  gst_buffer_unref(out);
  teardown_harness(h);
  gst_object_unref(e);
  gst_sample_unref(in);
}

GST_START_TEST(test_device_id) {
  GstSample *in = make_frame("RGBA", 64, 48, "smpte");
  GstElement *e = new_element("style-spokes.png");
  GstHarness *h = new_harness(e, gst_sample_get_caps(in));
  gst_buffer_unref(process(h, gst_sample_get_buffer(in)));
  gchar *uuid = NULL, *pci = NULL, *name = NULL;
  g_object_get(e, "device-uuid", &uuid, "device-pci-bus-id", &pci, "device-name", &name, NULL);
  GST_INFO("automatic choice: %s, uuid \"%s\", pci \"%s\"", name, uuid, pci);
  fail_unless(uuid != NULL && strlen(uuid) == 36 && uuid[8] == '-', "device-uuid \"%s\"", uuid);
  fail_unless(pci != NULL, "device-pci-bus-id is NULL while playing");

  /* while playing: an unknown id is a WARNING naming it and the devices (a failed run-time
   * change, like a bad model); frames keep coming from the device in use */
  GstBus *bus = gst_bus_new();
  gst_element_set_bus(e, bus);
  const gchar *unknown = "00112233-4455-6677-8899-aabbccddeeff";
  g_object_set(e, "device-id", unknown, NULL);
  GError *err = wait_warning(bus);
  fail_unless(g_error_matches(err, GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_INIT), "%s", err->message);
  fail_unless(strstr(err->message, unknown) != NULL && strstr(err->message, uuid) != NULL,
              "message \"%s\" lacks the id or the device's uuid", err->message);
  fail_unless(strstr(err->message, "the previous model and device stay in use") != NULL, "%s",
              err->message);
  g_clear_error(&err);
  gchar *still = NULL;
  g_object_get(e, "device-uuid", &still, NULL);
  fail_unless_equals_string(still, uuid);
  g_free(still);
  gst_buffer_unref(process(h, gst_sample_get_buffer(in)));
  gst_element_set_bus(e, NULL);
  gst_object_unref(bus);
  teardown_harness(h);
  gst_object_unref(e);
  gst_sample_unref(in);

  gchar *gpu = g_strconcat("GPU-", uuid, NULL);
  gchar *upper = g_ascii_strup(uuid, -1);
  gchar **parts = g_strsplit(upper, "-", -1);
  gchar *compact = g_strjoinv("", parts);
  const gchar *ids[] = {uuid, gpu, compact};
  for (guint i = 0; i < G_N_ELEMENTS(ids); i++)
    process_on_device(ids[i], uuid, name);
  if (pci[0] != '\0') {
    gchar *prefixed = g_strconcat("pci:", pci, NULL);
    process_on_device(prefixed, uuid, name);
    g_free(prefixed);
  }
  g_free(gpu);
  g_free(upper);
  g_strfreev(parts);
  g_free(compact);
  g_free(uuid);
  g_free(pci);
  g_free(name);
}
GST_END_TEST;

/* temporal on: the second frame continues the first one's refinement; a discontinuity, a flush
 * or temporal=false start over */
GST_START_TEST(test_temporal) {
  GstSample *in = make_frame("RGBA", 96, 64, "smpte");
  GstCaps *caps = gst_sample_get_caps(in);
  GstBuffer *inbuf = gst_sample_get_buffer(in);
  GstElement *e = new_element("style-spokes.png");
  GstHarness *h = new_harness(e, caps);
  GstBuffer *first = process(h, inbuf);
  GstBuffer *second = process(h, inbuf);
  fail_unless(compare_frames(caps, first, second).mad > 0.05,
              "temporal reuse did not change the second frame");

  GstBuffer *disc = gst_buffer_copy(inbuf);
  GST_BUFFER_FLAG_SET(disc, GST_BUFFER_FLAG_DISCONT);
  GstBuffer *out = process(h, disc);
  fail_unless(compare_frames(caps, first, out).mad < 0.01, "DISCONT did not reset");
  gst_buffer_unref(out);

  gst_buffer_unref(process(h, inbuf));
  fail_unless(gst_harness_push_event(h, gst_event_new_flush_start()));
  fail_unless(gst_harness_push_event(h, gst_event_new_flush_stop(TRUE)));
  GstSegment segment;
  gst_segment_init(&segment, GST_FORMAT_TIME);
  fail_unless(gst_harness_push_event(h, gst_event_new_segment(&segment)));
  out = process(h, inbuf);
  fail_unless(compare_frames(caps, first, out).mad < 0.01, "a flush did not reset");
  gst_buffer_unref(out);

  g_object_set(e, "temporal", FALSE, NULL);
  for (int i = 0; i < 2; i++) {
    out = process(h, inbuf);
    fail_unless(compare_frames(caps, first, out).mad < 0.01, "temporal=false reused a frame");
    gst_buffer_unref(out);
  }
  gst_buffer_unref(disc);
  gst_buffer_unref(first);
  gst_buffer_unref(second);
  teardown_harness(h);
  gst_object_unref(e);
  gst_sample_unref(in);
}
GST_END_TEST;

/* A copy of `in` with uniform noise of +-amp on every colour byte (alpha kept). */
static GstBuffer *noisy_copy(GstBuffer *in, gint amp, GRand *rng) {
  GstBuffer *b = gst_buffer_copy_deep(in);
  GstMapInfo m;
  fail_unless(gst_buffer_map(b, &m, GST_MAP_READWRITE));
  for (gsize i = 0; i < m.size; i++)
    if (i % 4 != 3) {
      gint v = m.data[i] + g_rand_int_range(rng, -amp, amp + 1);
      m.data[i] = (guint8)CLAMP(v, 0, 255);
    }
  gst_buffer_unmap(b, &m);
  return b;
}

/* temporal-smoothing: on a still scene with sensor noise the output changes much less from frame
 * to frame than without it; after a cut the new picture is shown as the network paints it, not
 * blended with the old one. */
GST_START_TEST(test_temporal_smoothing) {
  GstSample *in = make_frame("RGBA", 96, 64, "smpte");
  GstSample *cut = make_frame("RGBA", 96, 64, "pinwheel");
  GstCaps *caps = gst_sample_get_caps(in);
  enum { N = 6 };
  GstBuffer *frames[N + 1];
  GRand *rng = g_rand_new_with_seed(7);
  for (int i = 0; i < N; i++)
    frames[i] = noisy_copy(gst_sample_get_buffer(in), 6, rng);
  frames[N] = noisy_copy(gst_sample_get_buffer(cut), 4, rng);
  g_rand_free(rng);
  GstBuffer *outs[2][N + 1];
  for (int run = 0; run < 2; run++) {
    GstElement *e = new_element("style-spokes.png");
    /* steps 0: no refinement, so no carried network state: the random test model's state keeps
     * changing its output on a still scene, which is not what this test is about */
    g_object_set(e, "temporal-smoothing", run ? 0.8 : 0.0, "steps", 0, NULL);
    GstHarness *h = new_harness(e, caps);
    for (int i = 0; i <= N; i++)
      outs[run][i] = process(h, frames[i]);
    teardown_harness(h);
    gst_object_unref(e);
  }
  gdouble change[2] = {0, 0};
  for (int run = 0; run < 2; run++)
    for (int i = 2; i < N; i++)
      change[run] += compare_frames(caps, outs[run][i - 1], outs[run][i]).mad / (N - 2);
  FrameStats cut_diff = compare_frames(caps, outs[0][N], outs[1][N]);
  FrameStats cut_change = compare_frames(caps, outs[0][N - 1], outs[0][N]);
  g_print("frame-to-frame change %.3f without, %.3f with smoothing; after the cut %.3f from "
          "the unsmoothed output (the cut itself changes it by %.3f)\n",
          change[0], change[1], cut_diff.mad, cut_change.mad);
  fail_unless(change[0] > 0.05, "noise does not change the output (%.3f)", change[0]);
  fail_unless(change[1] < 0.5 * change[0], "smoothing: change %.3f vs %.3f without", change[1],
              change[0]);
  fail_unless(cut_diff.mad < 0.1 * cut_change.mad,
              "the cut frame was blended with the old picture (%.3f from the unsmoothed output, "
              "cut change %.3f)",
              cut_diff.mad, cut_change.mad);
  for (int i = 0; i <= N; i++) {
    gst_buffer_unref(frames[i]);
    gst_buffer_unref(outs[0][i]);
    gst_buffer_unref(outs[1][i]);
  }
  gst_sample_unref(in);
  gst_sample_unref(cut);
}
GST_END_TEST;

/* QoS is on by default: after downstream reports that frames arrive late, frames that would be
 * late anyway are dropped before any GPU work instead of queuing up. */
GST_START_TEST(test_qos_drops_late_frames) {
  GstSample *in = make_frame("RGBA", 64, 48, "smpte");
  GstCaps *caps = gst_sample_get_caps(in);
  GstElement *e = new_element("style-spokes.png");
  gboolean qos = FALSE;
  g_object_get(e, "qos", &qos, NULL);
  fail_unless(qos, "qos is not enabled by default");
  GstHarness *h = new_harness(e, caps);
  GstBus *bus = gst_bus_new();
  gst_element_set_bus(e, bus);
  const GstClockTime dur = GST_SECOND / 30;
  GstClockTime pts[] = {0, dur, 3 * GST_SECOND};
  GstBuffer *bufs[3];
  for (int i = 0; i < 3; i++) {
    bufs[i] = gst_buffer_copy(gst_sample_get_buffer(in));
    GST_BUFFER_PTS(bufs[i]) = pts[i];
    GST_BUFFER_DURATION(bufs[i]) = dur;
  }
  gst_buffer_unref(process(h, bufs[0]));
  /* the sink saw the frame at 0 one second late */
  fail_unless(gst_harness_push_upstream_event(
      h, gst_event_new_qos(GST_QOS_TYPE_UNDERFLOW, 2.0, GST_SECOND, 0)));
  fail_unless_equals_int(gst_harness_push(h, gst_buffer_ref(bufs[1])), GST_FLOW_OK);
  fail_unless_equals_int(gst_harness_buffers_in_queue(h), 0);
  /* the drop is reported with a QoS message */
  GstMessage *m = gst_bus_pop_filtered(bus, GST_MESSAGE_QOS);
  fail_unless(m != NULL, "no QoS message for the dropped frame");
  GstFormat fmt;
  guint64 processed = 0, dropped = 0;
  gst_message_parse_qos_stats(m, &fmt, &processed, &dropped);
  fail_unless_equals_uint64(processed, 1);
  fail_unless_equals_uint64(dropped, 1);
  gst_message_unref(m);
  /* a frame after the late region is processed again */
  gst_buffer_unref(process(h, bufs[2]));
  fail_unless_equals_int(gst_harness_buffers_received(h), 2);
  gst_element_set_bus(e, NULL);
  gst_object_unref(bus);
  for (int i = 0; i < 3; i++)
    gst_buffer_unref(bufs[i]);
  teardown_harness(h);
  gst_object_unref(e);
  gst_sample_unref(in);
}
GST_END_TEST;

GST_START_TEST(test_controller) {
  GstSample *in = make_frame("RGBA", 96, 64, "smpte");
  GstCaps *caps = gst_sample_get_caps(in);
  GstElement *e = new_element("style-spokes.png");
  g_object_set(e, "temporal", FALSE, NULL);
  GstControlSource *cs = gst_interpolation_control_source_new();
  g_object_set(cs, "mode", GST_INTERPOLATION_MODE_NONE, NULL);
  gst_timed_value_control_source_set(GST_TIMED_VALUE_CONTROL_SOURCE(cs), 0, 0.0);
  gst_timed_value_control_source_set(GST_TIMED_VALUE_CONTROL_SOURCE(cs), GST_SECOND, 1.0);
  gst_object_add_control_binding(
      GST_OBJECT(e), gst_direct_control_binding_new_absolute(GST_OBJECT(e), "strength", cs));
  GstHarness *h = new_harness(e, caps);
  GstBuffer *b0 = gst_buffer_copy(gst_sample_get_buffer(in));
  GST_BUFFER_PTS(b0) = 0;
  GstBuffer *o0 = process(h, b0);
  gdouble strength;
  g_object_get(e, "strength", &strength, NULL);
  fail_unless_equals_float(strength, 0.0);
  GstBuffer *b1 = gst_buffer_copy(gst_sample_get_buffer(in));
  GST_BUFFER_PTS(b1) = GST_SECOND;
  GstBuffer *o1 = process(h, b1);
  g_object_get(e, "strength", &strength, NULL);
  fail_unless_equals_float(strength, 1.0);
  FrameStats s01 = compare_frames(caps, o0, o1);
  fail_unless(s01.mad > 0.5, "controlled strength 0 and 1 give the same output");

  /* the controlled frames equal frames made with the property set directly */
  gst_object_set_control_binding_disabled(GST_OBJECT(e), "strength", TRUE);
  g_object_set(e, "strength", 0.0, NULL);
  GstBuffer *d0 = process(h, b0);
  g_object_set(e, "strength", 1.0, NULL);
  GstBuffer *d1 = process(h, b1);
  fail_unless(compare_frames(caps, o0, d0).mad < 0.5);
  fail_unless(compare_frames(caps, o1, d1).mad < 0.5);
  gst_buffer_unref(d0);
  gst_buffer_unref(d1);
  gst_buffer_unref(b0);
  gst_buffer_unref(b1);
  gst_buffer_unref(o0);
  gst_buffer_unref(o1);
  gst_object_unref(cs);
  teardown_harness(h);
  gst_object_unref(e);
  gst_sample_unref(in);
}
GST_END_TEST;

/* A frame of `in` with presentation time `pts`. */
static GstBuffer *process_at(GstHarness *h, GstSample *in, GstClockTime pts) {
  GstBuffer *b = gst_buffer_copy(gst_sample_get_buffer(in));
  GST_BUFFER_PTS(b) = pts;
  GstBuffer *out = process(h, b);
  gst_buffer_unref(b);
  return out;
}

/* The first frame of an element with `style` (and `style-2`, `style-mix`) alone, temporal off. */
static GstBuffer *one_frame(GstSample *in, const gchar *style, const gchar *style2, gdouble mix) {
  GstElement *e = new_element(style);
  gchar *s2 = style2 ? data_path(style2) : NULL;
  g_object_set(e, "temporal", FALSE, "style-2", s2, "style-mix", mix, NULL);
  g_free(s2);
  GstHarness *h = new_harness(e, gst_sample_get_caps(in));
  GstBuffer *out = process_at(h, in, 0);
  teardown_harness(h);
  gst_object_unref(e);
  return out;
}

static void check_style2_applied(GstBus *bus, const gchar *path) {
  GstStructure *s = wait_applied(bus, "styletransfer-style-applied");
  fail_unless_equals_string(gst_structure_get_string(s, "property"), "style-2");
  fail_unless_equals_string(gst_structure_get_string(s, "path"), path);
  gst_structure_free(s);
}

/* style-2 and style-mix: mix 0 is `style` alone and mix 1 `style-2` alone (the same bytes as an
 * element with that style only), mix 0.5 is neither; style-mix follows a GstController binding
 * (linear from 0 at 0 s to 1 at 1 s); style-2 set, changed and removed while playing; without
 * style-2 the mix is ignored. */
GST_START_TEST(test_style2_mix) {
  GstSample *in = make_frame("RGBA", 128, 96, "smpte");
  GstCaps *caps = gst_sample_get_caps(in);
  GstBuffer *a = one_frame(in, "style-spokes.png", NULL, 0.0);
  GstBuffer *b = one_frame(in, "style-pinwheel.jpg", NULL, 0.0);
  GstBuffer *m0 = one_frame(in, "style-spokes.png", "style-pinwheel.jpg", 0.0);
  GstBuffer *m1 = one_frame(in, "style-spokes.png", "style-pinwheel.jpg", 1.0);
  GstBuffer *mh = one_frame(in, "style-spokes.png", "style-pinwheel.jpg", 0.5);
  GstBuffer *alone = one_frame(in, "style-spokes.png", NULL, 1.0);
  fail_unless(compare_frames(caps, a, b).mad > 1.0, "the two styles give the same output");
  fail_unless(compare_frames(caps, a, m0).mad < 0.01, "mix 0 is not style alone (mad %.3f)",
              compare_frames(caps, a, m0).mad);
  fail_unless(compare_frames(caps, b, m1).mad < 0.01, "mix 1 is not style-2 alone (mad %.3f)",
              compare_frames(caps, b, m1).mad);
  fail_unless(compare_frames(caps, a, alone).mad < 0.01,
              "mix 1 without style-2 changed the output");
  FrameStats sa = compare_frames(caps, a, mh), sb = compare_frames(caps, b, mh);
  fail_unless(sa.mad > 0.5 && sb.mad > 0.5, "mix 0.5 is one of the styles (mad %.2f / %.2f)",
              sa.mad, sb.mad);
  g_print("style-mix 0.5: mad %.2f from style, %.2f from style-2 (%.2f between them)\n", sa.mad,
          sb.mad, compare_frames(caps, a, b).mad);

  /* controlled: 0 at 0 s, 1 at 1 s, linear */
  GstElement *e = new_element("style-spokes.png");
  gchar *pin = data_path("style-pinwheel.jpg");
  g_object_set(e, "temporal", FALSE, "style-2", pin, NULL);
  GstControlSource *cs = gst_interpolation_control_source_new();
  g_object_set(cs, "mode", GST_INTERPOLATION_MODE_LINEAR, NULL);
  gst_timed_value_control_source_set(GST_TIMED_VALUE_CONTROL_SOURCE(cs), 0, 0.0);
  gst_timed_value_control_source_set(GST_TIMED_VALUE_CONTROL_SOURCE(cs), GST_SECOND, 1.0);
  gst_object_add_control_binding(
      GST_OBJECT(e), gst_direct_control_binding_new_absolute(GST_OBJECT(e), "style-mix", cs));
  GstHarness *h = new_harness(e, caps);
  GstBus *bus = watch_bus(e);
  GstBuffer *c0 = process_at(h, in, 0);
  GstBuffer *ch = process_at(h, in, GST_SECOND / 2);
  gdouble mix = -1;
  g_object_get(e, "style-mix", &mix, NULL);
  fail_unless(fabs(mix - 0.5) < 1e-6, "controlled style-mix %f at 0.5 s", mix);
  GstBuffer *c1 = process_at(h, in, GST_SECOND);
  fail_unless(compare_frames(caps, a, c0).mad < 0.01, "controlled mix at 0 s is not style alone");
  fail_unless(compare_frames(caps, mh, ch).mad < 0.01, "controlled mix at 0.5 s is not mix 0.5");
  fail_unless(compare_frames(caps, b, c1).mad < 0.01, "controlled mix at 1 s is not style-2");
  gst_object_set_control_binding_disabled(GST_OBJECT(e), "style-mix", TRUE);

  /* while playing: style-2 changed (to the first style: mix 1 is then style alone), removed */
  gchar *spokes = data_path("style-spokes.png");
  g_object_set(e, "style-mix", 1.0, NULL);
  g_object_set(e, "style-2", spokes, NULL);
  check_style2_applied(bus, spokes);
  GstBuffer *d1 = process_at(h, in, 2 * GST_SECOND);
  fail_unless(compare_frames(caps, a, d1).mad < 0.01, "the new style-2 is not in use");
  g_object_set(e, "style-2", pin, NULL);
  check_style2_applied(bus, pin);
  GstBuffer *d2 = process_at(h, in, 3 * GST_SECOND);
  fail_unless(compare_frames(caps, b, d2).mad < 0.01, "style-2 set again is not in use");
  g_object_set(e, "style-2", NULL, NULL);
  gst_structure_free(wait_applied(bus, "styletransfer-style-removed"));
  GstBuffer *d3 = process_at(h, in, 4 * GST_SECOND);
  fail_unless(compare_frames(caps, a, d3).mad < 0.01, "style-2 removed: not style alone");
  /* an undecodable style-2 while playing: a warning, nothing changes */
  gchar *bad = data_path("not-an-image.txt");
  g_object_set(e, "style-2", bad, NULL);
  check_warning(bus, GST_STREAM_ERROR, GST_STREAM_ERROR_DECODE, "Could not decode style image",
                "the previous style-2 stays in use");
  GstBuffer *d4 = process_at(h, in, 5 * GST_SECOND);
  fail_unless(compare_frames(caps, a, d4).mad < 0.01, "a failed style-2 changed the output");

  GstBuffer *bufs[] = {a, b, m0, m1, mh, alone, c0, ch, c1, d1, d2, d3, d4};
  for (guint i = 0; i < G_N_ELEMENTS(bufs); i++)
    gst_buffer_unref(bufs[i]);
  unwatch_bus(e, bus);
  teardown_harness(h);
  gst_object_unref(e);
  gst_object_unref(cs);
  g_free(pin);
  g_free(spokes);
  g_free(bad);
  gst_sample_unref(in);
}
GST_END_TEST;

/* A missing style-2 at start: the state change fails with an error naming the property. */
GST_START_TEST(test_style2_missing) {
  GstElement *e = new_element("style-spokes.png");
  g_object_set(e, "style-2", "/nonexistent/second.png", NULL);
  GstBus *bus = watch_bus(e);
  fail_unless(gst_element_set_state(e, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE);
  GstMessage *msg = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
  fail_unless(msg != NULL, "no error for a missing style-2");
  GError *err = NULL;
  gst_message_parse_error(msg, &err, NULL);
  fail_unless(strstr(err->message, "style-2") != NULL && strstr(err->message, "second.png"),
              "error: %s", err->message);
  g_print("missing style-2: %s\n", err->message);
  g_error_free(err);
  gst_message_unref(msg);
  gst_element_set_state(e, GST_STATE_NULL);
  unwatch_bus(e, bus);
  gst_object_unref(e);
}
GST_END_TEST;

/* style-transition: a new style set while playing crossfades over the running time: the first
 * frame that sees it is the old style, one half-way is neither, one at the end the new style;
 * with style-transition 0 the next style is in use at once. */
GST_START_TEST(test_style_transition) {
  GstSample *in = make_frame("RGBA", 128, 96, "smpte");
  GstCaps *caps = gst_sample_get_caps(in);
  GstBuffer *a = one_frame(in, "style-spokes.png", NULL, 0.0);
  GstBuffer *b = one_frame(in, "style-pinwheel.jpg", NULL, 0.0);
  GstElement *e = new_element("style-spokes.png");
  g_object_set(e, "temporal", FALSE, "style-transition", 1000, NULL);
  GstHarness *h = new_harness(e, caps);
  GstBus *bus = watch_bus(e);
  GstBuffer *o0 = process_at(h, in, 0);
  gchar *pin = data_path("style-pinwheel.jpg");
  set_at_once(e, "style", pin);
  gst_structure_free(wait_applied(bus, "styletransfer-style-applied"));
  GstBuffer *o1 = process_at(h, in, GST_SECOND);                  /* fade 0 */
  GstBuffer *o2 = process_at(h, in, GST_SECOND + GST_SECOND / 2); /* fade 0.5 */
  GstBuffer *o3 = process_at(h, in, 2 * GST_SECOND);              /* fade 1: done */
  GstBuffer *o4 = process_at(h, in, 3 * GST_SECOND);
  fail_unless(compare_frames(caps, a, o0).mad < 0.01);
  fail_unless(compare_frames(caps, a, o1).mad < 0.01,
              "the crossfade does not start at the old "
              "style (mad %.3f)",
              compare_frames(caps, a, o1).mad);
  FrameStats sa = compare_frames(caps, a, o2), sb = compare_frames(caps, b, o2);
  fail_unless(sa.mad > 0.5 && sb.mad > 0.5, "half-way is one of the styles (%.2f / %.2f)", sa.mad,
              sb.mad);
  fail_unless(compare_frames(caps, b, o3).mad < 0.01,
              "the crossfade does not end at the new style");
  fail_unless(compare_frames(caps, b, o4).mad < 0.01);
  g_print("style-transition half-way: mad %.2f from the old style, %.2f from the new\n", sa.mad,
          sb.mad);
  /* transition 0: at once */
  g_object_set(e, "style-transition", 0, NULL);
  gchar *spokes = data_path("style-spokes.png");
  set_at_once(e, "style", spokes);
  gst_structure_free(wait_applied(bus, "styletransfer-style-applied"));
  GstBuffer *o5 = process_at(h, in, 3 * GST_SECOND + GST_SECOND / 10);
  fail_unless(compare_frames(caps, a, o5).mad < 0.01, "style-transition 0 did not switch at once");
  GstBuffer *bufs[] = {a, b, o0, o1, o2, o3, o4, o5};
  for (guint i = 0; i < G_N_ELEMENTS(bufs); i++)
    gst_buffer_unref(bufs[i]);
  unwatch_bus(e, bus);
  teardown_harness(h);
  gst_object_unref(e);
  g_free(pin);
  g_free(spokes);
  gst_sample_unref(in);
}
GST_END_TEST;

GST_START_TEST(test_renegotiate) {
  GstElement *e = new_element("style-spokes.png");
  GstSample *a = make_frame("I420", 320, 240, "smpte");
  GstSample *b = make_frame("I420", 176, 144, "ball");
  GstSample *c = make_frame("BGRx", 200, 300, "snow");
  GstHarness *h = new_harness(e, gst_sample_get_caps(a));
  GstSample *seq[] = {a, a, b, b, c, a};
  for (guint i = 0; i < G_N_ELEMENTS(seq); i++) {
    if (i > 0 && seq[i] != seq[i - 1])
      gst_harness_set_src_caps(h, gst_caps_copy(gst_sample_get_caps(seq[i])));
    GstBuffer *out = process(h, gst_sample_get_buffer(seq[i]));
    GstVideoInfo info;
    fail_unless(gst_video_info_from_caps(&info, gst_sample_get_caps(seq[i])));
    fail_unless(gst_buffer_get_size(out) >= info.size);
    FrameStats s = compare_frames(gst_sample_get_caps(seq[i]), gst_sample_get_buffer(seq[i]), out);
    fail_unless(s.mad > 2.0 && s.stddev > 2.0, "frame %u after renegotiation: mad %.2f sd %.2f", i,
                s.mad, s.stddev);
    gst_buffer_unref(out);
  }
  GstCaps *outcaps = gst_pad_get_current_caps(h->sinkpad);
  fail_unless(gst_caps_is_equal(outcaps, gst_sample_get_caps(a)));
  gst_caps_unref(outcaps);
  teardown_harness(h);
  gst_object_unref(e);
  gst_sample_unref(a);
  gst_sample_unref(b);
  gst_sample_unref(c);
}
GST_END_TEST;

/* ---- cameras, decoders, colorimetry ---------------------------------------------------------- */

/* The mission's line with a typical webcam's caps (v4l2src: YUY2 640x480 at 30/1), no
 * videoconvert: it links and every frame comes out in the camera's format. */
GST_START_TEST(test_webcam_caps) {
  gchar *style = data_path("style-spokes.png");
  gchar *desc =
      g_strdup_printf("videotestsrc num-buffers=3 pattern=ball ! "
                      "video/x-raw,format=YUY2,width=640,height=480,framerate=30/1 ! "
                      "styletransfer name=st style=%s ! fakesink name=sink signal-handoffs=true",
                      style);
  GError *perr = NULL;
  GstElement *pipeline = gst_parse_launch(desc, &perr);
  fail_unless(pipeline != NULL && perr == NULL, "%s: %s", desc, perr ? perr->message : "");
  GstElement *sink = gst_bin_get_by_name(GST_BIN(pipeline), "sink");
  gint count = 0;
  g_signal_connect(sink, "handoff", G_CALLBACK(count_handoff), &count);
  GstMessage *msg = run_pipeline(pipeline);
  if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
    GError *err = NULL;
    gst_message_parse_error(msg, &err, NULL);
    fail("webcam caps: %s", err->message);
  }
  fail_unless_equals_int(count, 3);
  gst_message_unref(msg);
  gst_object_unref(sink);
  gst_object_unref(pipeline);
  g_free(desc);
  g_free(style);
  /* and the element's output for such a frame is stylized */
  check_format("YUY2", 640, 480);
}
GST_END_TEST;

/* A smooth RGBA picture of saturated colours: red across, green down, blue against red. */
static GstSample *make_picture(gint w, gint h) {
  GstBuffer *buf = gst_buffer_new_allocate(NULL, (gsize)w * h * 4, NULL);
  GstMapInfo m;
  fail_unless(gst_buffer_map(buf, &m, GST_MAP_WRITE));
  for (gint y = 0; y < h; y++)
    for (gint x = 0; x < w; x++) {
      guint8 *p = m.data + ((gsize)y * w + x) * 4;
      p[0] = (guint8)(255 * x / (w - 1));
      p[1] = (guint8)(255 * y / (h - 1));
      p[2] = (guint8)(255 - 255 * x / (w - 1));
      p[3] = 255;
    }
  gst_buffer_unmap(buf, &m);
  GstCaps *caps =
      gst_caps_new_simple("video/x-raw", "format", G_TYPE_STRING, "RGBA", "width", G_TYPE_INT, w,
                          "height", G_TYPE_INT, h, "framerate", GST_TYPE_FRACTION, 30, 1, NULL);
  GstSample *s = gst_sample_new(buf, caps, NULL, NULL);
  gst_caps_unref(caps);
  gst_buffer_unref(buf);
  return s;
}

/* `buf` with `caps`, converted by GStreamer's videoconvert (no dithering) to `to` (caps that
 * complete the input's, e.g. "video/x-raw,format=I420,colorimetry=bt709"). */
static GstSample *convert(GstBuffer *buf, GstCaps *caps, const gchar *to) {
  gchar *desc = g_strdup_printf(
      "appsrc name=src format=time ! videoconvert dither=none chroma-mode=none ! %s ! appsink "
      "name=sink",
      to);
  GstElement *pipeline = gst_parse_launch(desc, NULL);
  fail_unless(pipeline != NULL, "could not build %s", desc);
  GstElement *src = gst_bin_get_by_name(GST_BIN(pipeline), "src");
  GstElement *sink = gst_bin_get_by_name(GST_BIN(pipeline), "sink");
  g_object_set(src, "caps", caps, NULL);
  g_object_set(sink, "sync", FALSE, NULL);
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  GstBuffer *in = gst_buffer_copy(buf);
  GST_BUFFER_PTS(in) = 0;
  fail_unless_equals_int(gst_app_src_push_buffer(GST_APP_SRC(src), in), GST_FLOW_OK);
  gst_app_src_end_of_stream(GST_APP_SRC(src));
  GstSample *out = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), 30 * GST_SECOND);
  fail_unless(out != NULL, "videoconvert to %s gave nothing", to);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(src);
  gst_object_unref(sink);
  gst_object_unref(pipeline);
  g_free(desc);
  return out;
}

/* The element's output for one frame of `caps` (the harness's element has temporal reuse off). */
static GstBuffer *stylize(GstHarness *h, GstBuffer *buf, GstCaps *caps) {
  gst_harness_set_src_caps(h, gst_caps_copy(caps));
  return process(h, buf);
}

static GstHarness *new_stateless_harness(GstElement **e, GstCaps *caps) {
  *e = new_element("style-spokes.png");
  g_object_set(*e, "temporal", FALSE, NULL);
  return new_harness(*e, caps);
}

/* `caps` with another colorimetry. */
static GstCaps *with_colorimetry(GstCaps *caps, const gchar *colorimetry) {
  GstCaps *c = gst_caps_copy(caps);
  gst_caps_set_simple(c, "colorimetry", G_TYPE_STRING, colorimetry, NULL);
  return c;
}

/* The element reads and writes `format` frames of `colorimetry` as GStreamer does: its output
 * for such a frame is close to its output for videoconvert's RGBA of the frame, converted back
 * by videoconvert, and much closer than its output for the same bytes labelled `wrong`
 * (converted to `colorimetry` by videoconvert). YUV frames are compared on luma, which chroma
 * subsampling (done differently by videoconvert) leaves alone. */
static void check_colorimetry(GstHarness *h, const gchar *format, const gchar *colorimetry,
                              const gchar *wrong) {
  GstSample *pic = make_picture(64, 48);
  gchar *to = g_strdup_printf("video/x-raw,format=%s,colorimetry=%s", format, colorimetry);
  GstSample *frame = convert(gst_sample_get_buffer(pic), gst_sample_get_caps(pic), to);
  GstBuffer *fbuf = gst_sample_get_buffer(frame);
  GstCaps *fcaps = gst_sample_get_caps(frame);
  /* the reference: the network on GStreamer's RGBA of the frame, back to the frame's format */
  GstSample *rgba = convert(fbuf, fcaps, "video/x-raw,format=RGBA");
  GstBuffer *out = stylize(h, gst_sample_get_buffer(rgba), gst_sample_get_caps(rgba));
  GstSample *ref = convert(out, gst_sample_get_caps(rgba), to);
  gst_buffer_unref(out);
  /* the frame itself, and the same bytes labelled wrong */
  GstCaps *wcaps = with_colorimetry(fcaps, wrong);
  GstCaps *caps[2] = {fcaps, wcaps};
  guint ncomp =
      GST_VIDEO_FORMAT_INFO_IS_YUV(gst_video_format_get_info(gst_video_format_from_string(format)))
          ? 1
          : 3;
  gdouble mad[2];
  for (int i = 0; i < 2; i++) {
    out = stylize(h, fbuf, caps[i]);
    GstSample *back = convert(out, caps[i], to);
    mad[i] =
        compare_components(fcaps, gst_sample_get_buffer(ref), gst_sample_get_buffer(back), ncomp)
            .mad;
    gst_sample_unref(back);
    gst_buffer_unref(out);
  }
  GST_INFO("%s %s: mad %.3f against GStreamer's conversion, %.3f labelled %s", format, colorimetry,
           mad[0], mad[1], wrong);
  fail_unless(mad[0] < 1.5 && mad[0] < 0.3 * mad[1],
              "%s %s: output differs from GStreamer's conversion by %.3f (labelled %s: %.3f)",
              format, colorimetry, mad[0], wrong, mad[1]);
  gst_caps_unref(wcaps);
  gst_sample_unref(ref);
  gst_sample_unref(rgba);
  gst_sample_unref(frame);
  gst_sample_unref(pic);
  g_free(to);
}

GST_START_TEST(test_colorimetry_from_caps) {
  GstSample *pic = make_picture(64, 48);
  GstElement *e;
  GstHarness *h = new_stateless_harness(&e, gst_sample_get_caps(pic));
  /* 8-bit: each matrix against BT.601, the range */
  check_colorimetry(h, "I420", "bt709", "bt601");
  check_colorimetry(h, "YUY2", "bt2020", "bt601");
  check_colorimetry(h, "UYVY", "bt709", "bt601");
  check_colorimetry(h, "NV12", "1:4:0:0", "bt601"); /* JPEG: BT.601 full range */
  /* 10-bit (videoconvert's precise path): BT.709 against BT.2020, which are close */
  check_colorimetry(h, "P010_10LE", "bt2020", "bt709");
  check_colorimetry(h, "I420_10LE", "bt709", "bt2020");
  check_colorimetry(h, "I420_10LE", "1:3:0:0", "bt709"); /* full-range BT.709 */
  check_colorimetry(h, "RGBA", "2:1:0:0", "1:1:0:0");    /* limited-range RGB */
  teardown_harness(h);
  gst_object_unref(e);
  gst_sample_unref(pic);
}
GST_END_TEST;

/* Caps without colorimetry get GStreamer's defaults: BT.709 above 576 lines, BT.601 below. */
GST_START_TEST(test_colorimetry_defaults) {
  const struct {
    gint w, h;
    const gchar *same, *other;
  } cases[] = {{1280, 720, "bt709", "bt601"}, {640, 480, "bt601", "bt709"}};
  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    GstSample *in = make_frame("I420", cases[i].w, cases[i].h, "smpte");
    GstCaps *caps = gst_sample_get_caps(in);
    GstBuffer *buf = gst_sample_get_buffer(in);
    GstCaps *bare = gst_caps_copy(caps);
    gst_structure_remove_field(gst_caps_get_structure(bare, 0), "colorimetry");
    GstCaps *same = with_colorimetry(bare, cases[i].same);
    GstCaps *other = with_colorimetry(bare, cases[i].other);
    GstElement *e;
    GstHarness *h = new_stateless_harness(&e, bare);
    GstBuffer *a = stylize(h, buf, bare), *b = stylize(h, buf, same), *c = stylize(h, buf, other);
    teardown_harness(h);
    gst_object_unref(e);
    FrameStats sb = compare_frames(bare, a, b), sc = compare_frames(bare, a, c);
    GST_INFO("%dx%d without colorimetry: mad %.3f to %s, %.3f to %s", cases[i].w, cases[i].h,
             sb.mad, cases[i].same, sc.mad, cases[i].other);
    fail_unless(sb.mad == 0.0, "%dx%d without colorimetry differs from %s (mad %.3f)", cases[i].w,
                cases[i].h, cases[i].same, sb.mad);
    fail_unless(sc.mad > 0.3, "%dx%d: %s and %s give the same output (mad %.3f)", cases[i].w,
                cases[i].h, cases[i].same, cases[i].other, sc.mad);
    gst_buffer_unref(a);
    gst_buffer_unref(b);
    gst_buffer_unref(c);
    gst_caps_unref(bare);
    gst_caps_unref(same);
    gst_caps_unref(other);
    gst_sample_unref(in);
  }
}
GST_END_TEST;

/* ---- errors ---------------------------------------------------------------------------------- */

/* Runs videotestsrc ! <caps> ! styletransfer <props> ! fakesink and expects an ERROR from the
 * element. */
/* Runs `pipeline` (left in NULL) and expects an ERROR from its element "st" with `domain`, `code`
 * and a message containing `text`; returns the message (caller frees). */
static gchar *expect_pipeline_error(GstElement *pipeline, const gchar *what, GQuark domain,
                                    gint code, const gchar *text) {
  GstMessage *msg = run_pipeline(pipeline);
  fail_unless(GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR, "%s: no ERROR", what);
  GError *err = NULL;
  gchar *dbg = NULL;
  gst_message_parse_error(msg, &err, &dbg);
  GST_INFO("%s -> %s (%s)", what, err->message, GST_STR_NULL(dbg));
  fail_unless_equals_string(GST_OBJECT_NAME(GST_MESSAGE_SRC(msg)), "st");
  fail_unless(err->domain == domain && err->code == code, "%s: got %s %d: %s", what,
              g_quark_to_string(err->domain), err->code, err->message);
  fail_unless(strstr(err->message, text) != NULL, "%s: message \"%s\" lacks \"%s\"", what,
              err->message, text);
  gchar *message = g_strdup(err->message);
  g_clear_error(&err);
  g_free(dbg);
  gst_message_unref(msg);
  return message;
}

/* Parses `desc` (with an element named "st"); the caller unrefs. */
static GstElement *parse_pipeline(const gchar *desc) {
  GError *perr = NULL;
  GstElement *pipeline = gst_parse_launch(desc, &perr);
  fail_unless(pipeline != NULL, "%s: %s", desc, perr ? perr->message : "");
  return pipeline;
}

static void expect_error_caps(const gchar *caps, const gchar *props, GQuark domain, gint code,
                              const gchar *text) {
  gchar *desc = g_strdup_printf("videotestsrc num-buffers=2 ! %s ! styletransfer name=st %s ! "
                                "fakesink",
                                caps, props);
  GstElement *pipeline = parse_pipeline(desc);
  g_free(expect_pipeline_error(pipeline, props, domain, code, text));
  gst_object_unref(pipeline);
  g_free(desc);
}

static void expect_error(const gchar *props, GQuark domain, gint code, const gchar *text) {
  expect_error_caps("video/x-raw,width=64,height=48", props, domain, code, text);
}

/* Colorimetries the element has no conversion for are refused, naming them. */
GST_START_TEST(test_error_colorimetry) {
  gchar *style = data_path("style-spokes.png");
  gchar *props = g_strdup_printf("style=%s", style);
  const struct {
    const gchar *caps, *text;
  } cases[] = {
      {"video/x-raw,format=I420,width=64,height=48,colorimetry=smpte240m",
       "Unsupported colorimetry \"smpte240m\" of the I420 input: the SMPTE 240M matrix"},
      {"video/x-raw,format=YUY2,width=64,height=48,colorimetry=2:2:0:0",
       "Unsupported colorimetry \"2:2:0:0\" of the YUY2 input: the FCC matrix"},
  };
  for (guint i = 0; i < G_N_ELEMENTS(cases); i++)
    expect_error_caps(cases[i].caps, props, GST_CORE_ERROR, GST_CORE_ERROR_NEGOTIATION,
                      cases[i].text);
  g_free(props);
  g_free(style);
}
GST_END_TEST;

/* A GPU that does not answer in time ($ST_GPU_TIMEOUT_MS, read when the device is opened: 1 ms
 * here): a clean ERROR naming the timeout, not a hang or a crash (before: lavapipe crashed in its
 * queue thread on buffers freed under the running work); then NULL and PLAYING again, with the
 * default timeout, runs the stream. */
GST_START_TEST(test_gpu_timeout) {
  gchar *style = data_path("style-spokes.png");
  gchar *desc = g_strdup_printf("videotestsrc num-buffers=2 ! video/x-raw,width=320,height=240 ! "
                                "styletransfer name=st style=%s steps=8 processing-size=0 ! "
                                "fakesink",
                                style);
  GstElement *pipeline = gst_parse_launch(desc, NULL);
  fail_unless(pipeline != NULL);
  gchar *old = env_push("ST_GPU_TIMEOUT_MS", "1");
  GstMessage *msg = run_pipeline(pipeline);
  env_restore("ST_GPU_TIMEOUT_MS", old);
  fail_unless_equals_int(GST_MESSAGE_TYPE(msg), GST_MESSAGE_ERROR);
  GError *err = NULL;
  gst_message_parse_error(msg, &err, NULL);
  fail_unless_equals_string(GST_OBJECT_NAME(GST_MESSAGE_SRC(msg)), "st");
  fail_unless(strstr(err->message, "the GPU did not finish the work within 0.001 s") != NULL, "%s",
              err->message);
  g_print("GPU timeout: %s\n", err->message);
  g_clear_error(&err);
  gst_message_unref(msg);
  msg = run_pipeline(pipeline); /* run_pipeline left it in NULL */
  expect_eos(msg, "the stream after a GPU timeout");
  gst_message_unref(msg);
  gst_object_unref(pipeline);
  g_free(desc);
  g_free(style);
}
GST_END_TEST;

/* Pushes `in` and expects the push to fail with an ERROR of `domain`/`code` whose message holds
 * `text`; returns the message (caller frees). */
static gchar *push_expecting_error(GstHarness *h, GstBuffer *in, GQuark domain, gint code,
                                   const gchar *text) {
  GstFlowReturn ret = gst_harness_push(h, gst_buffer_ref(in));
  fail_unless_equals_int(ret, GST_FLOW_ERROR);
  GstBus *bus = gst_element_get_bus(h->element);
  GstMessage *msg = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
  fail_unless(msg != NULL, "a failed push without an ERROR message");
  GError *err = NULL;
  gst_message_parse_error(msg, &err, NULL);
  fail_unless(err->domain == domain && err->code == code, "got %s %d: %s",
              g_quark_to_string(err->domain), err->code, err->message);
  fail_unless(strstr(err->message, text) != NULL, "message \"%s\" lacks \"%s\"", err->message,
              text);
  gchar *message = g_strdup(err->message);
  g_clear_error(&err);
  gst_message_unref(msg);
  gst_object_unref(bus);
  return message;
}

/* Pushes a frame of `sample` (its caps set first) and checks that a frame of its size comes out. */
static void push_frame_of(GstHarness *h, GstSample *sample, const gchar *what) {
  gst_harness_set_src_caps(h, gst_caps_copy(gst_sample_get_caps(sample)));
  GstVideoInfo info;
  fail_unless(gst_video_info_from_caps(&info, gst_sample_get_caps(sample)));
  GST_INFO("%s: %dx%d", what, info.width, info.height);
  GstBuffer *out = process(h, gst_sample_get_buffer(sample));
  fail_unless(gst_buffer_get_size(out) >= info.size, "%s: output of %zu bytes", what,
              gst_buffer_get_size(out));
  gst_buffer_unref(out);
}

/* Absurd frame sizes and settings through one element (renegotiated between them): each works or
 * fails with an ERROR naming the limit, and the stream goes on once the setting or the size is
 * changed back. */
GST_START_TEST(test_absurd_sizes) {
  const gint sizes[][2] = {{1, 1}, {4096, 2}, {2, 4096}, {3, 3}, {33, 17}};
  GstSample *frames[G_N_ELEMENTS(sizes)];
  for (guint i = 0; i < G_N_ELEMENTS(sizes); i++)
    frames[i] = make_frame("RGBA", sizes[i][0], sizes[i][1], "smpte");
  GstElement *e = new_element("style-spokes.png");
  GstHarness *h = new_harness(e, gst_sample_get_caps(frames[0]));
  /* the default (256 on lavapipe), the frame size with 3 steps, and processing sizes larger than
   * the frame, which are the frame size (before: a 1x1 frame planned 4096x4096 and failed) */
  const struct { gint size, steps; } settings[] = {{-1, 2}, {0, 3}, {4096, 2}, {8192, 8}};
  for (guint k = 0; k < G_N_ELEMENTS(settings); k++) {
    if (settings[k].size >= 0)
      g_object_set(e, "processing-size", settings[k].size, NULL);
    g_object_set(e, "steps", settings[k].steps, NULL);
    for (guint i = 0; i < G_N_ELEMENTS(sizes); i++)
      push_frame_of(h, frames[i], "absurd size");
  }

  /* 16384x16384 caps (the largest the element accepts): the frame is more than one storage buffer
   * can bind on lavapipe (128 MiB); the error says so and what to do; a smaller frame goes on */
  GstSample *huge = make_frame("I420", 16384, 16384, "black");
  gst_harness_set_src_caps(h, gst_caps_copy(gst_sample_get_caps(huge)));
  gchar *text = push_expecting_error(h, gst_sample_get_buffer(huge), GST_LIBRARY_ERROR,
                                     GST_LIBRARY_ERROR_FAILED,
                                     "a 16384x16384 I420 frame takes 384.0 MiB, more than the");
  fail_unless(strstr(text, "storage buffer") != NULL && strstr(text, "videoscale") != NULL, "%s",
              text);
  g_print("16384x16384 I420: %s\n", text);
  g_free(text);
  gst_sample_unref(huge);
  push_frame_of(h, frames[4], "after the 16384x16384 frame");

  /* steps=8 at 4K on the frame's own size: a feature map needs more than one binding can hold;
   * with processing-size set back to 256, the stream goes on */
  GstSample *uhd = make_frame("RGBA", 3840, 2160, "smpte");
  g_object_set(e, "processing-size", 0, "steps", 8, NULL);
  gst_harness_set_src_caps(h, gst_caps_copy(gst_sample_get_caps(uhd)));
  text =
      push_expecting_error(h, gst_sample_get_buffer(uhd), GST_LIBRARY_ERROR,
                           GST_LIBRARY_ERROR_FAILED, "processing size 3840x2160 is too large for");
  fail_unless(strstr(text, "storage-buffer limit (use a smaller processing size)") != NULL, "%s",
              text);
  g_print("3840x2160 steps=8 processing-size=0: %s\n", text);
  g_free(text);
  g_object_set(e, "processing-size", 256, NULL);
  push_frame_of(h, uhd, "4K steps=8 at processing-size=256");
  gst_sample_unref(uhd);

  teardown_harness(h);
  gst_object_unref(e);
  for (guint i = 0; i < G_N_ELEMENTS(sizes); i++)
    gst_sample_unref(frames[i]);
}
GST_END_TEST;

/* Device memory exhausted, made real with a cap on what the engine may allocate
 * ($ST_DEVICE_MEMORY_LIMIT_MB, read when the device is opened): a RESOURCE/NO_SPACE_LEFT ERROR
 * naming the size needed and the limit; a smaller processing size then runs under the same cap. */
GST_START_TEST(test_device_memory_exhausted) {
  GstSample *frame = make_frame("RGBA", 640, 480, "smpte");
  GstElement *e = new_element("style-spokes.png");
  g_object_set(e, "processing-size", 0, NULL);
  gchar *old = env_push("ST_DEVICE_MEMORY_LIMIT_MB", "30");
  GstHarness *h = new_harness(e, gst_sample_get_caps(frame)); /* opens the device */
  env_restore("ST_DEVICE_MEMORY_LIMIT_MB", old);
  gchar *text =
      push_expecting_error(h, gst_sample_get_buffer(frame), GST_RESOURCE_ERROR,
                           GST_RESOURCE_ERROR_NO_SPACE_LEFT, "processing size 640x480 needs ");
  fail_unless(strstr(text, "of the 30.0 MiB device memory limit") != NULL, "%s", text);
  g_print("device memory exhausted: %s\n", text);
  g_free(text);
  g_object_set(e, "processing-size", 128, NULL);
  push_frame_of(h, frame, "processing-size=128 under a 30 MiB cap");
  teardown_harness(h);
  gst_object_unref(e);
  gst_sample_unref(frame);
}
GST_END_TEST;

GST_START_TEST(test_error_no_style) {
  expect_error("", GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND, "No style set");
}
GST_END_TEST;

GST_START_TEST(test_error_missing_style) {
  expect_error("style=/nonexistent/dir/art.png", GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND,
               "does not exist");
}
GST_END_TEST;

GST_START_TEST(test_error_undecodable_style) {
  gchar *txt = data_path("not-an-image.txt");
  gchar *props = g_strdup_printf("style=%s", txt);
  expect_error(props, GST_STREAM_ERROR, GST_STREAM_ERROR_DECODE, "Could not decode style image");
  g_free(props);
  g_free(txt);
}
GST_END_TEST;

GST_START_TEST(test_error_missing_model) {
  gchar *style = data_path("style-spokes.png");
  gchar *props = g_strdup_printf("style=%s model=/nonexistent/model.safetensors", style);
  expect_error(props, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND, "does not exist");
  g_free(props);
  g_free(style);
}
GST_END_TEST;

static void expect_bad_model(const guint8 *bytes, gsize size) {
  gchar *path = NULL;
  gint fd = g_file_open_tmp("st-bad-model-XXXXXX.safetensors", &path, NULL);
  fail_unless(fd >= 0);
  g_close(fd, NULL);
  fail_unless(g_file_set_contents(path, (const gchar *)bytes, size, NULL));
  gchar *style = data_path("style-spokes.png");
  gchar *props = g_strdup_printf("style=%s model=%s", style, path);
  expect_error(props, GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_INIT, "Invalid model file");
  g_unlink(path);
  g_free(props);
  g_free(style);
  g_free(path);
}

GST_START_TEST(test_error_bad_model) {
  guint8 garbage[4096];
  GRand *r = g_rand_new_with_seed(1234);
  for (gsize i = 0; i < sizeof(garbage); i++)
    garbage[i] = (guint8)g_rand_int(r);
  g_rand_free(r);
  expect_bad_model(garbage, sizeof(garbage));
  expect_bad_model(garbage, 3); /* shorter than the header length field */

  gchar *model = NULL;
  gsize size = 0;
  fail_unless(g_file_get_contents(model_path(), &model, &size, NULL));
  /* truncated copies: inside the JSON header, and inside the tensor data */
  guint64 header = 0;
  for (int i = 7; i >= 0; i--)
    header = (header << 8) | (guint8)model[i];
  fail_unless(8 + header < size);
  expect_bad_model((const guint8 *)model, 8 + header / 2);
  expect_bad_model((const guint8 *)model, 8 + header + (size - 8 - header) / 2);
  /* a valid header that does not describe a styletransfer graph */
  const gchar *json = "{\"__metadata__\":{\"format\":\"other\"},"
                      "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
  gsize jlen = strlen(json);
  guint8 *other = g_malloc0(8 + jlen + 4);
  for (int i = 0; i < 8; i++)
    other[i] = (guint8)((guint64)jlen >> (8 * i));
  memcpy(other + 8, json, jlen);
  expect_bad_model(other, 8 + jlen + 4);
  g_free(other);
  g_free(model);
}
GST_END_TEST;

GST_START_TEST(test_error_device_index) {
  gchar *style = data_path("style-spokes.png");
  gchar *props = g_strdup_printf("style=%s device=63", style);
  expect_error(props, GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_INIT, "Vulkan device 63");
  g_free(props);
  g_free(style);
}
GST_END_TEST;

/* An unknown device-id names the id and lists the devices' ids (the UUID of the device the
 * element chooses by itself among them); a malformed one says what an id looks like. */
GST_START_TEST(test_error_device_id) {
  gchar *style = data_path("style-spokes.png");
  GstElement *e = new_element("style-spokes.png");
  GstSample *in = make_frame("RGBA", 64, 48, "smpte");
  GstHarness *h = new_harness(e, gst_sample_get_caps(in));
  gst_buffer_unref(process(h, gst_sample_get_buffer(in)));
  gchar *uuid = NULL;
  g_object_get(e, "device-uuid", &uuid, NULL);
  teardown_harness(h);
  gst_object_unref(e);
  gst_sample_unref(in);

  const gchar *unknown = "GPU-00112233-4455-6677-8899-aabbccddeeff";
  gchar *props = g_strdup_printf("style=%s device-id=%s", style, unknown);
  gchar *listed = g_strdup_printf("uuid %s", uuid);
  expect_error(props, GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_INIT, unknown);
  expect_error(props, GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_INIT, listed);
  g_free(props);
  props = g_strdup_printf("style=%s device-id=pci:0000:ff:1f.7", style);
  expect_error(props, GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_INIT,
               "Could not open Vulkan device \"pci:0000:ff:1f.7\": no Vulkan device has the "
               "PCI bus id 0000:ff:1f.7");
  g_free(props);
  props = g_strdup_printf("style=%s device-id=card0", style);
  expect_error(props, GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_SETTINGS,
               "Invalid device-id: \"card0\" is neither a device UUID");
  g_free(props);
  g_free(listed);
  g_free(uuid);
  g_free(style);
}
GST_END_TEST;

/* No Vulkan driver at all: run this test again in a child process whose Vulkan loader is pointed
 * at an ICD manifest that does not exist. */
GST_START_TEST(test_error_no_vulkan_driver) {
  if (g_getenv("ST_TEST_NO_ICD_CHILD") != NULL) {
    gchar *style = data_path("style-spokes.png");
    gchar *props = g_strdup_printf("style=%s", style);
    expect_error(props, GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_INIT, "Vulkan");
    g_free(props);
    g_free(style);
    return;
  }
  gchar **env = g_get_environ();
  env = g_environ_setenv(env, "ST_TEST_NO_ICD_CHILD", "1", TRUE);
  env = g_environ_setenv(env, "GST_CHECKS", "test_error_no_vulkan_driver", TRUE);
  env = g_environ_setenv(env, "VK_ICD_FILENAMES", "/nonexistent/st-test-icd.json", TRUE);
  env = g_environ_setenv(env, "VK_DRIVER_FILES", "/nonexistent/st-test-icd.json", TRUE);
  /* the loader reports the missing manifest through the debug messenger; without a driver there
   * is nothing to validate */
  env = g_environ_setenv(env, "ST_VALIDATION", "0", TRUE);
  env = g_environ_setenv(env, "ST_VALIDATION_FATAL", "0", TRUE);
  gchar *argv[] = {(gchar *)"/proc/self/exe", NULL};
  gchar *out = NULL, *err = NULL;
  gint status = 0;
  GError *error = NULL;
  fail_unless(
      g_spawn_sync(NULL, argv, env, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status, &error),
      "spawn: %s", error ? error->message : "");
  GST_INFO("child stdout:\n%s\nchild stderr:\n%s", out, err);
  fail_unless(g_spawn_check_wait_status(status, NULL), "child failed:\n%s\n%s", out, err);
  fail_unless(strstr(out, "Checks: 1, Failures: 0, Errors: 0") != NULL,
              "child did not run the test:\n%s\n%s", out, err);
  g_free(out);
  g_free(err);
  g_strfreev(env);
}
GST_END_TEST;

/* ---- hostile style images ---------------------------------------------------------------------
 * Each is refused at start with a clear ERROR naming the cause, quickly and without allocating
 * what the file declares (the peak memory of the decoder alone is measured with st-style-decode),
 * or decoded within bounds. */

/* how long refusing a hostile style may take, and how much memory decoding it may take */
#define REFUSE_MAX_S 10.0
#define REFUSE_MAX_MB 32.0

/* expect_error() for style=`path`, which must fail within REFUSE_MAX_S; returns the seconds. */
static gdouble expect_style_error(const gchar *path, GQuark domain, gint code, const gchar *text) {
  gchar *props = g_strdup_printf("style=\"%s\"", path);
  gint64 t0 = g_get_monotonic_time();
  expect_error(props, domain, code, text);
  gdouble s = (g_get_monotonic_time() - t0) / 1e6;
  fail_unless(s < REFUSE_MAX_S, "%s: refused after %.1f s", path, s);
  g_free(props);
  return s;
}

/* The decoder alone refuses `path` in bounded time and memory; prints the figures. */
static void check_refused_cheaply(const gchar *what, const gchar *path, const gchar *text) {
  gdouble ms, mb;
  gchar *report = decode_cost(path, &ms, &mb);
  fail_unless(strstr(report, "result=error") != NULL && strstr(report, text) != NULL,
              "%s: st-style-decode said:\n%s", what, report);
  g_print("%s: refused in %.1f ms, peak memory +%.1f MB\n", what, ms, mb);
  fail_unless(ms < REFUSE_MAX_S * 1000 && mb < REFUSE_MAX_MB, "%s: %.0f ms, +%.1f MB", what, ms,
              mb);
  g_free(report);
}

/* Decompression bombs: PNGs that declare 60000x60000 (3.6 gigapixels; pngdec would allocate 3.6
 * GB of grey and spend a minute inflating), with a few bytes of image data, and with all of it
 * (437 KB of zlib data). Refused from the header. */
GST_START_TEST(test_hostile_png_bomb) {
  gchar *dir = make_tmp_dir();
  gchar *cut = write_png(dir, "bomb-cut.png", 60000, 60000, 64, 0);
  gchar *full = write_png(dir, "bomb.png", 60000, 60000, 0, 0);
  const gchar *paths[] = {cut, full};
  for (guint i = 0; i < G_N_ELEMENTS(paths); i++) {
    expect_style_error(paths[i], GST_STREAM_ERROR, GST_STREAM_ERROR_DECODE,
                       "is too large: 60000x60000 pixels (3600.0 megapixels), more than the 100");
    check_refused_cheaply(i == 0 ? "60000x60000 PNG, image data cut" : "60000x60000 PNG bomb",
                          paths[i], "is too large");
  }
  g_free(cut);
  g_free(full);
  remove_tmp_dir(dir);
}
GST_END_TEST;

/* Real 16000x12000 images (192 megapixels; a JPEG from jpegenc, a complete PNG) are refused
 * before decoding; an image at the limit (10000x10000, 100 megapixels) is decoded, its peak
 * memory bounded; one row more is refused. */
GST_START_TEST(test_hostile_huge_image) {
  gchar *dir = make_tmp_dir();
  gchar *jpeg = encode_image(dir, "huge.jpg", "jpegenc", 16000, 12000);
  gchar *png = write_png(dir, "huge.png", 16000, 12000, 0, 0);
  const gchar *paths[] = {jpeg, png};
  for (guint i = 0; i < G_N_ELEMENTS(paths); i++) {
    expect_style_error(paths[i], GST_STREAM_ERROR, GST_STREAM_ERROR_DECODE,
                       "is too large: 16000x12000 pixels (192.0 megapixels)");
    check_refused_cheaply(i == 0 ? "16000x12000 JPEG" : "16000x12000 PNG", paths[i],
                          "is too large");
  }
  gchar *over = write_png(dir, "over.png", 10000, 10001, 0, 0);
  expect_style_error(over, GST_STREAM_ERROR, GST_STREAM_ERROR_DECODE, "10000x10001 pixels");

  gchar *limit = encode_image(dir, "limit.jpg", "jpegenc", 10000, 10000);
  gdouble ms, mb;
  gchar *report = decode_cost(limit, &ms, &mb);
  fail_unless(strstr(report, "result=ok\nsize=10000x10000\nstyle-size=256x256") != NULL,
              "st-style-decode said:\n%s", report);
  g_print("10000x10000 JPEG (100 megapixels, the limit): decoded in %.0f ms, peak memory "
          "+%.1f MB\n",
          ms, mb);
  /* the I420 frame is 150 MB; the JPEG data, kept twice, a few MB */
  fail_unless(mb < 400, "decoding the 100-megapixel JPEG took +%.1f MB", mb);
  g_free(report);
  g_free(limit);
  g_free(over);
  g_free(jpeg);
  g_free(png);
  remove_tmp_dir(dir);
}
GST_END_TEST;

/* Truncated files: JPEGs cut inside the image data and inside the headers, a PNG cut inside its
 * image data (jpegdec would fill the missing part with grey, pngdec decode nothing). */
GST_START_TEST(test_hostile_truncated) {
  gchar *dir = make_tmp_dir();
  gchar *jpeg = encode_image(dir, "ok.jpg", "jpegenc", 640, 480);
  gchar *png = encode_image(dir, "ok.png", "pngenc", 640, 480);
  GStatBuf st;
  fail_unless(g_stat(jpeg, &st) == 0);
  gsize jpeg_size = (gsize)st.st_size;
  fail_unless(g_stat(png, &st) == 0);
  gsize png_size = (gsize)st.st_size;
  struct {
    const gchar *src;
    gsize size;
    const gchar *text;
  } cases[] = {
      {jpeg, jpeg_size * 6 / 10, "before the JPEG end-of-image marker"},
      {jpeg, 300, "before the JPEG end-of-image marker"},
      {png, png_size / 2, "inside a PNG chunk"},
  };
  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    gchar *name =
        g_strdup_printf("cut%u%s", i, g_str_has_suffix(cases[i].src, ".png") ? ".png" : ".jpg");
    gchar *cut = truncated_copy(cases[i].src, dir, name, cases[i].size);
    gchar *text = g_strdup_printf("the file is truncated: it ends at byte %" G_GSIZE_FORMAT ", ",
                                  cases[i].size);
    expect_style_error(cut, GST_STREAM_ERROR, GST_STREAM_ERROR_DECODE, text);
    expect_style_error(cut, GST_STREAM_ERROR, GST_STREAM_ERROR_DECODE, cases[i].text);
    g_free(text);
    g_free(cut);
    g_free(name);
  }
  /* the untruncated files work */
  gdouble ms, mb;
  for (int i = 0; i < 2; i++) {
    gchar *report = decode_cost(i ? png : jpeg, &ms, &mb);
    fail_unless(strstr(report, "result=ok") != NULL, "%s", report);
    g_free(report);
  }
  g_free(jpeg);
  g_free(png);
  remove_tmp_dir(dir);
}
GST_END_TEST;

/* A tiny image with 80 MB of metadata: the decoder would keep all of it in memory (twice). */
GST_START_TEST(test_hostile_padded_png) {
  gchar *dir = make_tmp_dir();
  gchar *padded = write_png(dir, "padded.png", 8, 8, 0, 80 << 20);
  expect_style_error(padded, GST_STREAM_ERROR, GST_STREAM_ERROR_DECODE,
                     "more than a 8x8 image can need");
  check_refused_cheaply("8x8 PNG with 80 MB of metadata", padded, "can need");
  g_free(padded);
  remove_tmp_dir(dir);
}
GST_END_TEST;

/* A FIFO with no writer (opening it for reading would wait for one forever). */
GST_START_TEST(test_hostile_fifo) {
  gchar *dir = make_tmp_dir();
  gchar *fifo = g_build_filename(dir, "fifo.png", NULL);
  fail_unless(mkfifo(fifo, 0600) == 0, "mkfifo: %s", g_strerror(errno));
  gdouble s = expect_style_error(fifo, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_OPEN_READ,
                                 "is a named pipe (FIFO), not a regular file");
  g_print("FIFO refused in %.2f s\n", s);
  g_free(fifo);
  remove_tmp_dir(dir);
}
GST_END_TEST;

/* /dev/zero: endless zeros (a device file) */
GST_START_TEST(test_hostile_dev_zero) {
  expect_style_error("/dev/zero", GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_OPEN_READ,
                     "is a character device (like /dev/zero), not a regular file");
}
GST_END_TEST;

GST_START_TEST(test_hostile_directory) {
  gchar *dir = make_tmp_dir();
  expect_style_error(dir, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_OPEN_READ,
                     "is a directory, not a file");
  remove_tmp_dir(dir);
}
GST_END_TEST;

/* A video file as the style: its first frame is used (WebM/VP8 here); a file with no video
 * stream (Ogg/Vorbis) is refused. */
GST_START_TEST(test_hostile_video_file) {
  gchar *dir = make_tmp_dir();
  gchar *video = g_build_filename(dir, "clip.webm", NULL);
  gchar *desc = g_strdup_printf("videotestsrc num-buffers=30 pattern=ball ! "
                                "video/x-raw,width=176,height=144,framerate=30/1 ! vp8enc ! "
                                "webmmux ! filesink location=%s",
                                video);
  run_to_eos(desc);
  g_free(desc);
  gchar *audio = g_build_filename(dir, "sound.ogg", NULL);
  desc = g_strdup_printf("audiotestsrc num-buffers=20 ! vorbisenc ! oggmux ! filesink "
                         "location=%s",
                         audio);
  run_to_eos(desc);
  g_free(desc);

  gchar *launch = g_strdup_printf("videotestsrc num-buffers=2 ! video/x-raw,width=64,height=48 ! "
                                  "styletransfer name=st style=%s ! fakesink",
                                  video);
  GstElement *pipeline = gst_parse_launch(launch, NULL);
  fail_unless(pipeline != NULL);
  GstBus *bus = gst_element_get_bus(pipeline);
  gint64 t0 = g_get_monotonic_time();
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  check_style_applied(bus, video, 1, 176, 144);
  GstMessage *msg =
      gst_bus_timed_pop_filtered(bus, PIPELINE_TIMEOUT, GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  expect_eos(msg, "a video file as the style");
  g_print("video as the style: EOS after %.1f s\n", (g_get_monotonic_time() - t0) / 1e6);
  gst_message_unref(msg);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(bus);
  gst_object_unref(pipeline);
  g_free(launch);

  expect_style_error(audio, GST_STREAM_ERROR, GST_STREAM_ERROR_DECODE,
                     "the file contains no image or video stream (only audio/x-raw)");
  g_free(video);
  g_free(audio);
  remove_tmp_dir(dir);
}
GST_END_TEST;

/* Decoding stops after the timeout ($ST_STYLE_DECODE_TIMEOUT here, 30 s by default). */
GST_START_TEST(test_style_decode_timeout) {
  gchar *dir = make_tmp_dir();
  gchar *jpeg = encode_image(dir, "big.jpg", "jpegenc", 6000, 4000);
  gchar *old = env_push("ST_STYLE_DECODE_TIMEOUT", "0.001");
  expect_style_error(jpeg, GST_STREAM_ERROR, GST_STREAM_ERROR_DECODE,
                     "decoding did not finish within 0.001 seconds");
  env_restore("ST_STYLE_DECODE_TIMEOUT", old);
  g_free(jpeg);
  remove_tmp_dir(dir);
}
GST_END_TEST;

/* ---- masks (mask-source) --------------------------------------------------------------------- */

/* Mean absolute difference of the RGB bytes of two RGBA frames of `width` columns (stride
 * 4 * width) in the rectangle [x0, x1) x [y0, y1). */
static gdouble rgba_mad_rect(GstBuffer *a, GstBuffer *b, gint width, gint x0, gint y0, gint x1,
                             gint y1) {
  GstMapInfo ma, mb;
  fail_unless(gst_buffer_map(a, &ma, GST_MAP_READ) && gst_buffer_map(b, &mb, GST_MAP_READ));
  gdouble sum = 0;
  for (gint y = y0; y < y1; y++)
    for (gint x = x0; x < x1; x++)
      for (gint c = 0; c < 3; c++) {
        gsize i = ((gsize)y * width + x) * 4 + c;
        sum += ABS((gint)ma.data[i] - (gint)mb.data[i]);
      }
  gst_buffer_unmap(a, &ma);
  gst_buffer_unmap(b, &mb);
  return sum / (3.0 * (x1 - x0) * (y1 - y0));
}

/* Whether two RGBA buffers have the same alpha bytes. */
static gboolean same_alpha(GstBuffer *a, GstBuffer *b) {
  GstMapInfo ma, mb;
  fail_unless(gst_buffer_map(a, &ma, GST_MAP_READ) && gst_buffer_map(b, &mb, GST_MAP_READ));
  gboolean same = ma.size == mb.size;
  for (gsize i = 3; same && i < ma.size; i += 4)
    same = ma.data[i] == mb.data[i];
  gst_buffer_unmap(a, &ma);
  gst_buffer_unmap(b, &mb);
  return same;
}

/* `in` (RGBA) with alpha 255 in the columns [0, split) and 0 from there on. */
static GstSample *with_alpha_split(GstSample *in, gint width, gint split) {
  GstBuffer *buf = gst_buffer_copy_deep(gst_sample_get_buffer(in));
  GstMapInfo m;
  fail_unless(gst_buffer_map(buf, &m, GST_MAP_WRITE));
  for (gsize i = 0; i < m.size / 4; i++)
    m.data[4 * i + 3] = (gint)(i % (gsize)width) < split ? 255 : 0;
  gst_buffer_unmap(buf, &m);
  GstSample *s = gst_sample_new(buf, gst_sample_get_caps(in), NULL, NULL);
  gst_buffer_unref(buf);
  return s;
}

/* `in` with a GstVideoRegionOfInterestMeta of `type` at (x, y), w x h. */
static GstSample *with_roi(GstSample *in, const gchar *type, guint x, guint y, guint w, guint h) {
  GstBuffer *buf = gst_buffer_copy(gst_sample_get_buffer(in));
  gst_buffer_add_video_region_of_interest_meta(buf, type, x, y, w, h);
  GstSample *s = gst_sample_new(buf, gst_sample_get_caps(in), NULL, NULL);
  gst_buffer_unref(buf);
  return s;
}

/* Writes dir/name: a PNG (pngenc) of `width` x `height` grey pixels, white in the columns
 * [0, white) and black from there on. Returns the path. */
static gchar *write_mask_png(const gchar *dir, const gchar *name, gint width, gint height,
                             gint white) {
  gchar *path = g_build_filename(dir, name, NULL);
  gchar *desc = g_strdup_printf("appsrc name=src ! pngenc ! filesink location=%s", path);
  GstElement *pipeline = parse_pipeline(desc);
  GstElement *src = gst_bin_get_by_name(GST_BIN(pipeline), "src");
  GstCaps *caps = gst_caps_new_simple("video/x-raw", "format", G_TYPE_STRING, "GRAY8", "width",
                                      G_TYPE_INT, width, "height", G_TYPE_INT, height, "framerate",
                                      GST_TYPE_FRACTION, 0, 1, NULL);
  g_object_set(src, "caps", caps, "format", GST_FORMAT_TIME, NULL);
  gst_caps_unref(caps);
  GstVideoInfo info;
  gst_video_info_set_format(&info, GST_VIDEO_FORMAT_GRAY8, width, height);
  GstBuffer *buf = gst_buffer_new_allocate(NULL, info.size, NULL);
  GstMapInfo m;
  fail_unless(gst_buffer_map(buf, &m, GST_MAP_WRITE));
  for (gint y = 0; y < height; y++)
    for (gint x = 0; x < width; x++)
      m.data[(gsize)y * info.stride[0] + x] = x < white ? 255 : 0;
  gst_buffer_unmap(buf, &m);
  GST_BUFFER_PTS(buf) = 0;
  fail_unless_equals_int(gst_app_src_push_buffer(GST_APP_SRC(src), buf), GST_FLOW_OK);
  gst_app_src_end_of_stream(GST_APP_SRC(src));
  GstMessage *msg = run_pipeline(pipeline);
  expect_eos(msg, desc);
  gst_message_unref(msg);
  gst_object_unref(src);
  gst_object_unref(pipeline);
  g_free(desc);
  return path;
}

/* A harness around `e` whose messages from start on go to *bus. */
/* Two styles split at x = w / 2 (the style on the left, style-2 on the right): away from the
 * seam (8 px), each half of `two` is nearer the one-style output of its own style (`styled`,
 * `styled2`) than the other's. */
static void check_two_halves(GstBuffer *styled, GstBuffer *styled2, GstBuffer *two, gint w,
                             gint hgt, const gchar *what) {
  gdouble l1 = rgba_mad_rect(styled, two, w, 0, 0, w / 2 - 8, hgt);
  gdouble l2 = rgba_mad_rect(styled2, two, w, 0, 0, w / 2 - 8, hgt);
  gdouble r1 = rgba_mad_rect(styled, two, w, w / 2 + 8, 0, w, hgt);
  gdouble r2 = rgba_mad_rect(styled2, two, w, w / 2 + 8, 0, w, hgt);
  fail_unless(l1 < l2, "%s: the style's half is not nearer the style (%.2f) than style-2 (%.2f)",
              what, l1, l2);
  fail_unless(r2 < r1, "%s: style-2's half is not nearer style-2 (%.2f) than the style (%.2f)",
              what, r2, r1);
}

static GstHarness *new_watched_harness(GstElement *e, GstCaps *caps, GstBus **bus) {
  *bus = watch_bus(e);
  GstHarness *h = gst_harness_new_with_element(e, "sink", "src");
  gst_harness_set_src_caps(h, gst_caps_copy(caps));
  return h;
}

/* mask-source=alpha: the style where the input's alpha is 255, the input itself where it is 0,
 * the alpha passed through (also without a mask); a second style set while playing goes where
 * the alpha is 0 (each half nearer its own style's one-style output than the other's), and once
 * it is removed the frames are as before. */
GST_START_TEST(test_mask_alpha) {
  const gint w = 128, hgt = 96;
  GstSample *plain = make_frame("RGBA", w, hgt, "smpte");
  GstSample *in = with_alpha_split(plain, w, w / 2);
  GstBuffer *inbuf = gst_sample_get_buffer(in);
  GstBuffer *styled = one_frame(in, "style-spokes.png", NULL, 0.0);
  fail_unless(same_alpha(inbuf, styled), "the alpha did not pass through (mask-source=none)");
  fail_unless(rgba_mad_rect(inbuf, styled, w, 0, 0, w, hgt) > 5.0, "the style changed nothing");

  GstElement *e = new_element("style-spokes.png");
  g_object_set(e, "temporal", FALSE, NULL);
  gst_util_set_object_arg(G_OBJECT(e), "mask-source", "alpha");
  GstHarness *h = new_harness(e, gst_sample_get_caps(in));
  GstBus *bus = watch_bus(e);
  GstBuffer *out = process_at(h, in, 0);
  gdouble in_style = rgba_mad_rect(styled, out, w, 0, 0, w / 2, hgt);
  gdouble out_style = rgba_mad_rect(inbuf, out, w, w / 2, 0, w, hgt);
  fail_unless(in_style < 0.01, "alpha 255 is not the style (mad %.3f)", in_style);
  fail_unless(out_style < 0.01, "alpha 0 is not the input (mad %.3f)", out_style);
  fail_unless(same_alpha(inbuf, out), "the alpha did not pass through (mask-source=alpha)");

  gchar *pin = data_path("style-pinwheel.jpg");
  GstBuffer *styled2 = one_frame(in, "style-pinwheel.jpg", NULL, 0.0);
  g_object_set(e, "style-2", pin, NULL);
  check_style2_applied(bus, pin);
  GstBuffer *two = process_at(h, in, GST_SECOND / 2);
  fail_unless(same_alpha(inbuf, two), "the alpha did not pass through (two styles)");
  check_two_halves(styled, styled2, two, w, hgt, "alpha");
  fail_unless(rgba_mad_rect(inbuf, two, w, w / 2 + 8, 0, w, hgt) > 5.0,
              "alpha 0 with style-2 is the input");
  g_object_set(e, "style-2", NULL, NULL);
  gst_structure_free(wait_applied(bus, "styletransfer-style-removed"));
  GstBuffer *again = process_at(h, in, GST_SECOND);
  fail_unless(rgba_mad_rect(out, again, w, 0, 0, w, hgt) < 0.01, "style-2 removed: not as before");

  gst_buffer_unref(styled);
  gst_buffer_unref(styled2);
  gst_buffer_unref(two);
  gst_buffer_unref(out);
  gst_buffer_unref(again);
  unwatch_bus(e, bus);
  teardown_harness(h);
  gst_object_unref(e);
  g_free(pin);
  gst_sample_unref(in);
  gst_sample_unref(plain);
}
GST_END_TEST;

/* mask-source=alpha with a format without alpha, and a mask with style-2 at start on a model
 * without two-style subgraphs (the WCT test model): errors that say what to do. */
GST_START_TEST(test_mask_errors) {
  gchar *style = data_path("style-spokes.png");
  gchar *pin = data_path("style-pinwheel.jpg");
  gchar *txt = data_path("not-an-image.txt");
  gchar *props = g_strdup_printf("style=%s mask-source=alpha", style);
  expect_error_caps("video/x-raw,format=I420,width=64,height=48", props, GST_CORE_ERROR,
                    GST_CORE_ERROR_NEGOTIATION,
                    "mask-source=alpha needs input with an alpha channel (RGBA or BGRA), not I420");
  g_free(props);
  gchar *wct = data_path("model_wct_random.safetensors");
  props = g_strdup_printf("style=%s style-2=%s mask-source=roi model=%s", style, pin, wct);
  expect_error(props, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS,
               "mask-source=roi with style-2 needs a model that can put two styles in one frame");
  g_free(props);
  g_free(wct);
  props = g_strdup_printf("style=%s mask-source=image", style);
  expect_error(props, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND, "No mask image set");
  g_free(props);
  props = g_strdup_printf("style=%s mask-source=image mask=/nonexistent/mask.png", style);
  expect_error(props, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND,
               "Mask image \"/nonexistent/mask.png\" does not exist");
  g_free(props);
  props = g_strdup_printf("style=%s mask-source=image mask=%s", style, txt);
  expect_error(props, GST_STREAM_ERROR, GST_STREAM_ERROR_DECODE, "Could not decode mask image");
  g_free(props);
  /* a mask file is only read with mask-source=image */
  gchar *desc = g_strdup_printf("videotestsrc num-buffers=1 ! video/x-raw,width=64,height=48 ! "
                                "styletransfer style=%s mask=/nonexistent/mask.png ! fakesink",
                                style);
  run_to_eos(desc);
  g_free(desc);
  g_free(style);
  g_free(pin);
  g_free(txt);
}
GST_END_TEST;

/* mask-source=roi: the style inside the ROI rectangles (filtered by roi-types), the input
 * outside; a frame without a matching ROI is the input itself; feather softens the edges. */
GST_START_TEST(test_mask_roi) {
  const gint w = 128, hgt = 96;
  const gint rx = 16, ry = 16, rw = 48, rh = 40;
  GstSample *in = make_frame("RGBA", w, hgt, "smpte");
  GstBuffer *inbuf = gst_sample_get_buffer(in);
  GstSample *face = with_roi(in, "face", rx, ry, rw, rh);
  GstBuffer *styled = one_frame(in, "style-spokes.png", NULL, 0.0);

  GstElement *e = new_element("style-spokes.png");
  g_object_set(e, "temporal", FALSE, "feather", 0, NULL);
  gst_util_set_object_arg(G_OBJECT(e), "mask-source", "roi");
  GstHarness *h = new_harness(e, gst_sample_get_caps(in));
  GstBuffer *out = process_at(h, face, 0);
  gdouble inside = rgba_mad_rect(styled, out, w, rx, ry, rx + rw, ry + rh);
  gdouble right = rgba_mad_rect(inbuf, out, w, rx + rw, 0, w, hgt);
  gdouble below = rgba_mad_rect(inbuf, out, w, 0, ry + rh, w, hgt);
  fail_unless(inside < 0.01, "inside the ROI: not the style (mad %.3f)", inside);
  fail_unless(right < 0.01 && below < 0.01, "outside the ROI: not the input (%.3f, %.3f)", right,
              below);
  GstBuffer *none = process_at(h, in, GST_SECOND);
  fail_unless(rgba_mad_rect(inbuf, none, w, 0, 0, w, hgt) == 0.0, "no ROI: not the input");

  /* roi-types: only the listed types */
  g_object_set(e, "roi-types", "car, person", NULL);
  GstBuffer *other = process_at(h, face, 2 * GST_SECOND);
  fail_unless(rgba_mad_rect(inbuf, other, w, 0, 0, w, hgt) == 0.0,
              "a face ROI was styled with roi-types=car,person");
  g_object_set(e, "roi-types", " person , face", NULL);
  GstBuffer *listed = process_at(h, face, 3 * GST_SECOND);
  fail_unless(rgba_mad_rect(styled, listed, w, rx, ry, rx + rw, ry + rh) < 0.01,
              "a face ROI was not styled with roi-types=person,face");

  /* feather 8: a soft band of 8 px outside the rectangle, the input beyond it */
  g_object_set(e, "feather", 8, NULL);
  GstBuffer *soft = process_at(h, face, 4 * GST_SECOND);
  gdouble band_in = rgba_mad_rect(inbuf, soft, w, rx + rw, ry, rx + rw + 8, ry + rh);
  gdouble band_style = rgba_mad_rect(styled, soft, w, rx + rw, ry, rx + rw + 8, ry + rh);
  gdouble beyond = rgba_mad_rect(inbuf, soft, w, rx + rw + 8, 0, w, hgt);
  gdouble core = rgba_mad_rect(styled, soft, w, rx, ry, rx + rw, ry + rh);
  fail_unless(band_in > 0.5 && band_style > 0.5,
              "feather: the band is not between the input and the style (%.2f, %.2f)", band_in,
              band_style);
  fail_unless(beyond < 0.01 && core < 0.01, "feather: beyond %.3f, inside %.3f", beyond, core);
  g_print("roi feather 8: band mad %.2f from the input, %.2f from the style\n", band_in,
          band_style);

  GstBuffer *bufs[] = {styled, out, none, other, listed, soft};
  for (guint i = 0; i < G_N_ELEMENTS(bufs); i++)
    gst_buffer_unref(bufs[i]);
  teardown_harness(h);
  gst_object_unref(e);
  gst_sample_unref(face);
  gst_sample_unref(in);
}
GST_END_TEST;

static void check_mask_applied(GstBus *bus, const gchar *path, gint width, gint height) {
  GstStructure *s = wait_applied(bus, "styletransfer-mask-applied");
  gint mw = 0, mh = 0;
  gdouble ms = -1;
  fail_unless_equals_string(gst_structure_get_string(s, "path"), path);
  fail_unless(gst_structure_get(s, "mask-width", G_TYPE_INT, &mw, "mask-height", G_TYPE_INT, &mh,
                                "decode-ms", G_TYPE_DOUBLE, &ms, NULL),
              "fields missing: %" GST_PTR_FORMAT, s);
  fail_unless(mw == width && mh == height && ms >= 0, "mask %dx%d (%.0f ms)", mw, mh, ms);
  gst_structure_free(s);
}

/* mask-source=image: a mask image of another size than the frame, scaled to it; changed while
 * playing (styletransfer-mask-applied); an undecodable one while playing: a warning, the
 * previous mask stays. */
GST_START_TEST(test_mask_image) {
  const gint w = 128, hgt = 96;
  gchar *dir = make_tmp_dir();
  gchar *half = write_mask_png(dir, "half.png", 64, 48, 32);
  gchar *all = write_mask_png(dir, "all.png", 40, 30, 40);
  GstSample *in = make_frame("RGBA", w, hgt, "smpte");
  GstBuffer *inbuf = gst_sample_get_buffer(in);
  GstBuffer *styled = one_frame(in, "style-spokes.png", NULL, 0.0);

  GstElement *e = new_element("style-spokes.png");
  g_object_set(e, "temporal", FALSE, "mask", half, NULL);
  gst_util_set_object_arg(G_OBJECT(e), "mask-source", "image");
  GstBus *bus;
  GstHarness *h = new_watched_harness(e, gst_sample_get_caps(in), &bus);
  check_mask_applied(bus, half, 64, 48);
  GstBuffer *out = process_at(h, in, 0);
  /* the mask's edge at x = 32 of 64 is x = 64 of 128; bilinear scaling blurs it by a pixel */
  gdouble left = rgba_mad_rect(styled, out, w, 0, 0, w / 2 - 2, hgt);
  gdouble right = rgba_mad_rect(inbuf, out, w, w / 2 + 2, 0, w, hgt);
  fail_unless(left < 0.01 && right < 0.01, "half mask: style %.3f, input %.3f", left, right);

  g_object_set(e, "mask", all, NULL);
  check_mask_applied(bus, all, 40, 30);
  GstBuffer *full = process_at(h, in, GST_SECOND);
  fail_unless(rgba_mad_rect(styled, full, w, 0, 0, w, hgt) < 0.01, "white mask: not the style");

  gchar *txt = data_path("not-an-image.txt");
  g_object_set(e, "mask", txt, NULL);
  check_warning(bus, GST_STREAM_ERROR, GST_STREAM_ERROR_DECODE, "Could not decode mask image",
                "the previous mask stays in use");
  GstBuffer *kept = process_at(h, in, 2 * GST_SECOND);
  fail_unless(rgba_mad_rect(styled, kept, w, 0, 0, w, hgt) < 0.01, "a failed mask changed it");
  /* back to the whole frame, then the half mask again */
  gst_util_set_object_arg(G_OBJECT(e), "mask-source", "none");
  g_object_set(e, "mask", half, NULL);
  gst_util_set_object_arg(G_OBJECT(e), "mask-source", "image");
  check_mask_applied(bus, half, 64, 48);
  GstBuffer *back = process_at(h, in, 3 * GST_SECOND);
  fail_unless(rgba_mad_rect(out, back, w, 0, 0, w, hgt) < 0.01, "the half mask did not come back");

  GstBuffer *bufs[] = {styled, out, full, kept, back};
  for (guint i = 0; i < G_N_ELEMENTS(bufs); i++)
    gst_buffer_unref(bufs[i]);
  unwatch_bus(e, bus);
  teardown_harness(h);
  gst_object_unref(e);
  gst_sample_unref(in);
  g_free(txt);
  g_free(half);
  g_free(all);
  remove_tmp_dir(dir);
}
GST_END_TEST;

/* Two styles split by a mask (mask-source=image with style-2, the model's masked subgraphs):
 * where the mask is white each pixel is nearer the style's one-style output than style-2's, where
 * it is black the other way round, and both halves are stylized; a mask of ROIs with style-2
 * and no ROI on the frame is style-2 everywhere (as an element with style-2 alone). */
GST_START_TEST(test_mask_two_styles) {
  const gint w = 128, hgt = 96;
  gchar *dir = make_tmp_dir();
  gchar *half = write_mask_png(dir, "half.png", 64, 48, 32);
  gchar *pin = data_path("style-pinwheel.jpg");
  GstSample *in = make_frame("RGBA", w, hgt, "smpte");
  GstBuffer *inbuf = gst_sample_get_buffer(in);
  GstBuffer *styled = one_frame(in, "style-spokes.png", NULL, 0.0);
  GstBuffer *styled2 = one_frame(in, "style-pinwheel.jpg", NULL, 0.0);

  GstElement *e = new_element("style-spokes.png");
  g_object_set(e, "temporal", FALSE, "mask", half, "style-2", pin, NULL);
  gst_util_set_object_arg(G_OBJECT(e), "mask-source", "image");
  GstBus *bus;
  GstHarness *h = new_watched_harness(e, gst_sample_get_caps(in), &bus);
  check_mask_applied(bus, half, 64, 48);
  GstBuffer *out = process_at(h, in, 0);
  check_two_halves(styled, styled2, out, w, hgt, "mask image");
  fail_unless(rgba_mad_rect(inbuf, out, w, 0, 0, w / 2 - 8, hgt) > 5.0 &&
                  rgba_mad_rect(inbuf, out, w, w / 2 + 8, 0, w, hgt) > 5.0,
              "a half of the two-style frame is the input");
  unwatch_bus(e, bus);
  teardown_harness(h);
  gst_object_unref(e);

  e = new_element("style-spokes.png");
  g_object_set(e, "temporal", FALSE, "style-2", pin, "roi-types", "face", NULL);
  gst_util_set_object_arg(G_OBJECT(e), "mask-source", "roi");
  h = new_harness(e, gst_sample_get_caps(in));
  GstBuffer *none = process_at(h, in, 0);
  gdouble d2 = rgba_mad_rect(styled2, none, w, 0, 0, w, hgt);
  fail_unless(d2 < 0.5, "no ROI with style-2: %.3f from style-2 alone", d2);
  teardown_harness(h);
  gst_object_unref(e);

  GstBuffer *bufs[] = {styled, styled2, out, none};
  for (guint i = 0; i < G_N_ELEMENTS(bufs); i++)
    gst_buffer_unref(bufs[i]);
  gst_sample_unref(in);
  g_free(pin);
  g_free(half);
  remove_tmp_dir(dir);
}
GST_END_TEST;

static Suite *styletransfer_suite(void) {
  Suite *s = suite_create("styletransfer");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 600);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_properties);
  tcase_add_test(tc, test_out_of_range);
  tcase_add_test(tc, test_launch_line);
  tcase_add_test(tc, test_formats);
  tcase_add_test(tc, test_odd_size);
  tcase_add_test(tc, test_small_odd_sizes);
  tcase_add_test(tc, test_style_change_playing);
  tcase_add_test(tc, test_style_change_nonblocking);
  tcase_add_test(tc, test_property_change_playing);
  tcase_add_test(tc, test_gpu_timeout);
  tcase_add_test(tc, test_absurd_sizes);
  tcase_add_test(tc, test_device_memory_exhausted);
  tcase_add_test(tc, test_device_id);
  tcase_add_test(tc, test_temporal);
  tcase_add_test(tc, test_temporal_smoothing);
  tcase_add_test(tc, test_qos_drops_late_frames);
  tcase_add_test(tc, test_controller);
  tcase_add_test(tc, test_style2_mix);
  tcase_add_test(tc, test_style2_missing);
  tcase_add_test(tc, test_style_transition);
  tcase_add_test(tc, test_mask_alpha);
  tcase_add_test(tc, test_mask_errors);
  tcase_add_test(tc, test_mask_roi);
  tcase_add_test(tc, test_mask_image);
  tcase_add_test(tc, test_mask_two_styles);
  tcase_add_test(tc, test_renegotiate);
  tcase_add_test(tc, test_webcam_caps);
  tcase_add_test(tc, test_colorimetry_from_caps);
  tcase_add_test(tc, test_colorimetry_defaults);
  tcase_add_test(tc, test_error_no_style);
  tcase_add_test(tc, test_error_missing_style);
  tcase_add_test(tc, test_error_undecodable_style);
  tcase_add_test(tc, test_error_missing_model);
  tcase_add_test(tc, test_error_bad_model);
  tcase_add_test(tc, test_error_device_index);
  tcase_add_test(tc, test_error_device_id);
  tcase_add_test(tc, test_error_no_vulkan_driver);
  tcase_add_test(tc, test_error_colorimetry);
  tcase_add_test(tc, test_hostile_png_bomb);
  tcase_add_test(tc, test_hostile_huge_image);
  tcase_add_test(tc, test_hostile_truncated);
  tcase_add_test(tc, test_hostile_padded_png);
  tcase_add_test(tc, test_hostile_fifo);
  tcase_add_test(tc, test_hostile_dev_zero);
  tcase_add_test(tc, test_hostile_directory);
  tcase_add_test(tc, test_hostile_video_file);
  tcase_add_test(tc, test_style_decode_timeout);
  return s;
}

/* every case in one process, the device and its compiled pipelines kept (fatal_validation.h) */
int main(int argc, char **argv) {
  gst_check_init(&argc, &argv);
  fatal_validation_init();
  return st_check_run_in_one_process(styletransfer_suite(), "styletransfer", __FILE__);
}
