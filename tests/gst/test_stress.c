/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Stress tests of the styletransfer element (issue 16, "Soak" and "Churn"):
 *
 *   test_soak            one pipeline, ST_SOAK_FRAMES frames (default SOAK_FRAMES_DEFAULT); every
 *                        100 frames the style, strength and steps and the frame size change;
 *                        every frame must come out, every style change must be applied, nothing
 *                        may be posted as WARNING or ERROR, and the resident memory may not grow
 *                        by more than SOAK_MAX_SLOPE_MB MB per 1000 frames (least squares over
 *                        samples every 100 frames, the first 300 frames excluded as warm-up:
 *                        the first frame of each size and style plans and compiles).
 *   test_churn_cycles    ST_CHURN_CYCLES (default CHURN_CYCLES_DEFAULT) NULL -> PLAYING -> EOS ->
 *                        NULL cycles of one pipeline (videotestsrc num-buffers=2): both frames of
 *                        every cycle out, resident memory growth under CHURN_MAX_RSS_SLOPE MB per
 *                        100 cycles after the warm-up; the element's Vulkan device, kept idle in
 *                        the device pool while stopped, reused by every cycle after the first
 *                        (its debug log says so) and closed when the pipeline is freed.
 *   test_churn_threads   4 threads set properties (strength, steps, style, temporal,
 *                        temporal-smoothing, preserve-colors, motion-compensation) in a loop for
 *                        ST_THREADS_SECONDS (default 5) seconds while frames stream; then EOS
 *                        within THREADS_EOS_TIMEOUT_S (a watchdog thread aborts the test on a
 *                        deadlock), no WARNING or ERROR, every frame out.
 *
 * Device memory: the element's `device-memory` property (the bytes its buffers hold on the
 * device), sampled with the resident set in test_soak, must not grow after the warm-up
 * (SOAK_MAX_DEVICE_SLOPE) and is 0 once the element stopped. On lavapipe (the tests' device) device
 * memory is host memory and counts in the resident set as well.
 *
 * Environment (set by meson test): GST_PLUGIN_PATH (build tree), ST_MODEL_PATH (a small random
 * model), ST_TEST_DATA (tests/data), ST_VALIDATION=1 and ST_VALIDATION_FATAL=1.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/check/gstcheck.h>
#include <gst/video/video.h>

#include "fatal_validation.h"

/* CI defaults (README "Reliability": the by-hand long runs set the variables) */
#define SOAK_FRAMES_DEFAULT 1000
#define CHURN_CYCLES_DEFAULT 1000
#define THREADS_SECONDS_DEFAULT 5

/* every SOAK_PERIOD frames: style, strength/steps and size change; RSS sampled */
#define SOAK_PERIOD 100
#define SOAK_WARMUP_FRAMES 300
/* bounds on the memory growth (least-squares slopes, MB): the resident set moves by a few MB
 * from one sample to the next (glibc's arenas), the heap in use by a few KB; an engine, a style
 * or the frames' buffers kept per cycle or per change would be MBs each time */
#define SOAK_MAX_RSS_SLOPE 2.0    /* per 1000 frames */
#define SOAK_MAX_HEAP_SLOPE 1.0   /* per 1000 frames */
#define SOAK_MAX_DEVICE_SLOPE 0.1 /* per 1000 frames: buffers are reused, never regrown */
#define CHURN_MAX_RSS_SLOPE 5.0   /* per 100 cycles: 50 KB a cycle */
#define CHURN_MAX_HEAP_SLOPE 1.0  /* per 100 cycles: 10 KB a cycle */

/* how long one frame, one style change or one cycle may take */
#define FRAME_TIMEOUT (120 * GST_SECOND)
#define APPLIED_TIMEOUT (120 * GST_SECOND)
#define CYCLE_TIMEOUT (300 * GST_SECOND)
/* after the threads stop: EOS within this, else the watchdog aborts the test */
#define THREADS_EOS_TIMEOUT_S 120

static const gchar *styles[2] = {"style-spokes.png", "style-pinwheel.jpg"};

static gchar *data_path(const gchar *name) {
  const gchar *dir = g_getenv("ST_TEST_DATA");
  fail_unless(dir != NULL, "ST_TEST_DATA is not set (run the tests with meson test)");
  return g_build_filename(dir, name, NULL);
}

static void check_model_path(void) {
  const gchar *m = g_getenv("ST_MODEL_PATH");
  fail_unless(m != NULL && g_file_test(m, G_FILE_TEST_IS_REGULAR),
              "ST_MODEL_PATH does not name a model file");
}

static gint env_int(const gchar *name, gint def) {
  const gchar *v = g_getenv(name);
  if (v == NULL || v[0] == '\0')
    return def;
  gchar *end = NULL;
  gint64 n = g_ascii_strtoll(v, &end, 10);
  fail_unless(end != NULL && *end == '\0' && n > 0 && n <= G_MAXINT, "%s=%s: not a count", name, v);
  return (gint)n;
}

/* Memory of this process in MB: `rss`, the resident set (/proc/self/statm) after malloc_trim(0)
 * (free heap pages that glibc keeps would otherwise count); `heap`, what malloc has handed out
 * and not got back (mallinfo2: arena blocks in use plus mmapped blocks; 0 under ASan, whose
 * allocator glibc does not see). */
typedef struct {
  gdouble rss, heap;
} MemSample;

/* glibc gives threads arenas of their own, up to 8 per core: each pipeline start brings new
 * threads (streaming, loader, the driver's), and the resident set would grow by a few MB per new
 * arena for the first dozens of cycles. Two arenas: the growth that remains is this process's. */
static void limit_arenas(void) {
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
  fail_unless(mallopt(M_ARENA_MAX, 2) == 1); /* the sanitizers' allocators have no arenas */
#endif
}

static MemSample mem_sample(void) {
  malloc_trim(0);
  gchar *text = NULL;
  fail_unless(g_file_get_contents("/proc/self/statm", &text, NULL, NULL));
  unsigned long size = 0, resident = 0;
  fail_unless(sscanf(text, "%lu %lu", &size, &resident) == 2, "statm: %s", text);
  g_free(text);
  struct mallinfo2 mi = mallinfo2();
  MemSample m;
  m.rss = (gdouble)resident * (gdouble)sysconf(_SC_PAGESIZE) / (1024.0 * 1024.0);
  m.heap = (gdouble)(mi.uordblks + mi.hblkhd) / (1024.0 * 1024.0);
  return m;
}

/* The element's device-memory property in MB. */
static gdouble device_memory_mb(GstElement *st) {
  guint64 bytes = 0;
  g_object_get(st, "device-memory", &bytes, NULL);
  return (gdouble)bytes / (1024.0 * 1024.0);
}

/* Least-squares slope of y over x (n >= 2 points, x not all equal). */
static gdouble slope(const gdouble *x, const gdouble *y, guint n) {
  gdouble mx = 0, my = 0;
  for (guint i = 0; i < n; i++) {
    mx += x[i];
    my += y[i];
  }
  mx /= n;
  my /= n;
  gdouble sxy = 0, sxx = 0;
  for (guint i = 0; i < n; i++) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
  }
  return sxx > 0 ? sxy / sxx : 0;
}

/* Memory samples against a count (thousands of frames, hundreds of cycles). */
typedef struct {
  GArray *x, *rss, *heap;
} MemTrack;

static MemTrack *mem_track_new(void) {
  MemTrack *t = g_new0(MemTrack, 1);
  t->x = g_array_new(FALSE, FALSE, sizeof(gdouble));
  t->rss = g_array_new(FALSE, FALSE, sizeof(gdouble));
  t->heap = g_array_new(FALSE, FALSE, sizeof(gdouble));
  return t;
}

static void mem_track_add(MemTrack *t, gdouble x, MemSample m) {
  g_array_append_val(t->x, x);
  g_array_append_val(t->rss, m.rss);
  g_array_append_val(t->heap, m.heap);
}

/* Prints the least-squares slopes of the resident set and of the heap in use (MB per `unit`) and
 * fails the test when one is its bound or more. Needs 3 samples. Under AddressSanitizer only
 * prints them: its allocator keeps freed blocks (a quarantine of up to 256 MB) and glibc does not
 * see it; LeakSanitizer looks for leaks at exit instead. */
static void mem_track_check(MemTrack *t, const gchar *what, const gchar *unit, gdouble rss_bound,
                            gdouble heap_bound) {
  if (t->x->len < 3) {
    g_print("%s: too few samples after the warm-up for a memory slope\n", what);
    return;
  }
  const gdouble *x = (const gdouble *)t->x->data;
  gdouble srss = slope(x, (const gdouble *)t->rss->data, t->x->len);
  gdouble sheap = slope(x, (const gdouble *)t->heap->data, t->x->len);
  g_print("%s: RSS slope %.3f MB per %s, heap in use %.3f MB per %s (least squares over %u "
          "samples; RSS %.1f -> %.1f MB, heap %.1f -> %.1f MB; bounds %.1f and %.1f MB per %s)\n",
          what, srss, unit, sheap, unit, t->x->len, g_array_index(t->rss, gdouble, 0),
          g_array_index(t->rss, gdouble, t->x->len - 1), g_array_index(t->heap, gdouble, 0),
          g_array_index(t->heap, gdouble, t->x->len - 1), rss_bound, heap_bound, unit);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  /* the sanitizers' own memory (ASan's quarantine, TSan's history) grows the resident set */
  g_print("%s: sanitizer build: the slopes are not checked\n", what);
#else
  fail_unless(srss < rss_bound, "%s: the resident set grows by %.3f MB per %s", what, srss, unit);
  fail_unless(sheap < heap_bound, "%s: the heap in use grows by %.3f MB per %s", what, sheap, unit);
#endif
}

static void mem_track_free(MemTrack *t) {
  g_array_free(t->x, TRUE);
  g_array_free(t->rss, TRUE);
  g_array_free(t->heap, TRUE);
  g_free(t);
}

/* `n` frames of videotestsrc's moving ball at width x height (I420), without DISCONT. */
static GstSample **make_frames(gint width, gint height, guint n) {
  gchar *desc = g_strdup_printf("videotestsrc num-buffers=%u pattern=ball ! "
                                "video/x-raw,format=I420,width=%d,height=%d,framerate=30/1 ! "
                                "appsink name=sink sync=false",
                                n, width, height);
  GstElement *pipeline = gst_parse_launch(desc, NULL);
  fail_unless(pipeline != NULL, "could not build %s", desc);
  GstElement *sink = gst_bin_get_by_name(GST_BIN(pipeline), "sink");
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  GstSample **out = g_new0(GstSample *, n);
  for (guint i = 0; i < n; i++) {
    GstSample *s = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), 30 * GST_SECOND);
    fail_unless(s != NULL, "no frame %u from %s", i, desc);
    GstBuffer *buf = gst_buffer_copy(gst_sample_get_buffer(s));
    GST_BUFFER_FLAG_UNSET(buf, GST_BUFFER_FLAG_DISCONT);
    out[i] = gst_sample_new(buf, gst_sample_get_caps(s), NULL, NULL);
    gst_buffer_unref(buf);
    gst_sample_unref(s);
  }
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(sink);
  gst_object_unref(pipeline);
  g_free(desc);
  return out;
}

static void free_frames(GstSample **frames, guint n) {
  for (guint i = 0; i < n; i++)
    gst_sample_unref(frames[i]);
  g_free(frames);
}

/* A copy of `frame` (the memory shared) with the timestamp of frame number `i`. */
static GstSample *timed_frame(GstSample *frame, guint64 i) {
  GstBuffer *buf = gst_buffer_copy(gst_sample_get_buffer(frame));
  GST_BUFFER_PTS(buf) = gst_util_uint64_scale(i, GST_SECOND, 30);
  GST_BUFFER_DURATION(buf) = gst_util_uint64_scale(1, GST_SECOND, 30);
  GstSample *s = gst_sample_new(buf, gst_sample_get_caps(frame), NULL, NULL);
  gst_buffer_unref(buf);
  return s;
}

/* ---- the bus ------------------------------------------------------------------------------- */

typedef struct {
  guint styles_applied; /* "styletransfer-style-applied" messages */
  guint last_serial;
  gchar *last_path;
  guint engines_applied; /* "styletransfer-engine-applied" messages */
  gdouble load_ms;       /* of the last one */
  gboolean eos;
} BusState;

/* Handles one message: counts the "applied" messages, fails the test on a WARNING or an ERROR
 * (with its text). */
static void handle_message(BusState *st, GstMessage *m) {
  switch (GST_MESSAGE_TYPE(m)) {
  case GST_MESSAGE_ERROR:
  case GST_MESSAGE_WARNING: {
    GError *err = NULL;
    gchar *dbg = NULL;
    if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR)
      gst_message_parse_error(m, &err, &dbg);
    else
      gst_message_parse_warning(m, &err, &dbg);
    fail("%s from %s: %s (%s)", GST_MESSAGE_TYPE_NAME(m), GST_OBJECT_NAME(GST_MESSAGE_SRC(m)),
         err->message, dbg != NULL ? dbg : "");
    break;
  }
  case GST_MESSAGE_EOS:
    st->eos = TRUE;
    break;
  case GST_MESSAGE_ELEMENT:
    if (gst_message_has_name(m, "styletransfer-style-applied")) {
      const GstStructure *s = gst_message_get_structure(m);
      guint serial = 0;
      fail_unless(gst_structure_get_uint(s, "serial", &serial));
      fail_unless(serial == st->last_serial + 1, "style serial %u after %u", serial,
                  st->last_serial);
      st->last_serial = serial;
      g_free(st->last_path);
      st->last_path = g_strdup(gst_structure_get_string(s, "path"));
      st->styles_applied++;
    } else if (gst_message_has_name(m, "styletransfer-engine-applied")) {
      fail_unless(gst_structure_get_double(gst_message_get_structure(m), "load-ms", &st->load_ms));
      st->engines_applied++;
    }
    break;
  default:
    break;
  }
}

/* Handles every message already on the bus. */
static void drain_bus(GstBus *bus, BusState *st) {
  GstMessage *m;
  while ((m = gst_bus_pop(bus)) != NULL) {
    handle_message(st, m);
    gst_message_unref(m);
  }
}

/* Handles messages until `serial` styles have been applied. */
static void wait_style_serial(GstBus *bus, BusState *st, guint serial) {
  while (st->last_serial < serial) {
    GstMessage *m = gst_bus_timed_pop(bus, APPLIED_TIMEOUT);
    fail_unless(m != NULL, "style %u was not applied in time", serial);
    handle_message(st, m);
    gst_message_unref(m);
  }
}

/* Handles messages until EOS. */
static void wait_eos(GstBus *bus, BusState *st, GstClockTime timeout, const gchar *what) {
  while (!st->eos) {
    GstMessage *m = gst_bus_timed_pop(bus, timeout);
    fail_unless(m != NULL, "%s: no EOS in time", what);
    handle_message(st, m);
    gst_message_unref(m);
  }
}

static void bus_state_clear(BusState *st) {
  g_free(st->last_path);
  memset(st, 0, sizeof(*st));
}

/* ---- soak ---------------------------------------------------------------------------------- */

#define SOAK_FRAMES_PER_SIZE 8 /* distinct frames of the moving ball per size, cycled */

GST_START_TEST(test_soak) {
  limit_arenas();
  check_model_path();
  const gint n_frames = env_int("ST_SOAK_FRAMES", SOAK_FRAMES_DEFAULT);
  const gint sizes[2][2] = {{32, 24}, {48, 36}};
  GstSample **frames[2];
  for (guint i = 0; i < 2; i++)
    frames[i] = make_frames(sizes[i][0], sizes[i][1], SOAK_FRAMES_PER_SIZE);
  gchar *style_paths[2] = {data_path(styles[0]), data_path(styles[1])};

  GstElement *pipeline = gst_parse_launch("appsrc name=src format=time ! styletransfer name=st ! "
                                          "appsink name=sink sync=false",
                                          NULL);
  fail_unless(pipeline != NULL);
  GstElement *src = gst_bin_get_by_name(GST_BIN(pipeline), "src");
  GstElement *st = gst_bin_get_by_name(GST_BIN(pipeline), "st");
  GstElement *sink = gst_bin_get_by_name(GST_BIN(pipeline), "sink");
  g_object_set(st, "style", style_paths[0], NULL);
  GstBus *bus = gst_element_get_bus(pipeline);
  BusState bs = {0};

  gint64 t0 = g_get_monotonic_time();
  fail_unless(gst_element_set_state(pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
  MemTrack *mem = mem_track_new();
  GArray *dev_mb = g_array_new(FALSE, FALSE, sizeof(gdouble)); /* at mem's samples */
  guint changes = 0;
  gint out = 0;
  MemSample m0 = mem_sample();
  gdouble rss0 = m0.rss;
  g_print("soak: %d frames, sizes %dx%d / %dx%d, a change every %d frames; RSS at start %.1f MB\n",
          n_frames, sizes[0][0], sizes[0][1], sizes[1][0], sizes[1][1], SOAK_PERIOD, rss0);
  for (gint i = 0; i < n_frames; i++) {
    if (i > 0 && i % SOAK_PERIOD == 0) {
      MemSample m = mem_sample();
      gdouble dev = device_memory_mb(st);
      if (i >= SOAK_WARMUP_FRAMES) {
        mem_track_add(mem, i / 1000.0, m);
        g_array_append_val(dev_mb, dev);
      }
      if (i <= SOAK_WARMUP_FRAMES || i % 1000 == 0)
        g_print(
            "soak: %d frames, %.1f s, RSS %.1f MB, heap in use %.1f MB, device memory %.2f MB\n", i,
            (g_get_monotonic_time() - t0) / 1e6, m.rss, m.heap, dev);
      /* the previous style change has taken effect (one per period: serial changes + 1) */
      wait_style_serial(bus, &bs, changes + 1);
      fail_unless_equals_string(bs.last_path, style_paths[changes % 2]);
      changes++;
      g_object_set(st, "style", style_paths[changes % 2], "strength", changes % 2 ? 0.5 : 1.0,
                   "steps", changes % 2 ? 1 : 2, NULL);
    }
    guint size = (i / SOAK_PERIOD) % 2;
    GstSample *in = timed_frame(frames[size][i % SOAK_FRAMES_PER_SIZE], i);
    /* a sample with other caps than the previous one sets them on appsrc: renegotiation */
    fail_unless_equals_int(gst_app_src_push_sample(GST_APP_SRC(src), in), GST_FLOW_OK);
    gst_sample_unref(in);
    GstSample *o = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), FRAME_TIMEOUT);
    if (o == NULL)
      drain_bus(bus, &bs); /* an ERROR fails the test with its text */
    fail_unless(o != NULL, "frame %d did not come out", i);
    GstVideoInfo info;
    fail_unless(gst_video_info_from_caps(&info, gst_sample_get_caps(o)));
    fail_unless(info.width == sizes[size][0] && info.height == sizes[size][1],
                "frame %d is %dx%d, not %dx%d", i, info.width, info.height, sizes[size][0],
                sizes[size][1]);
    gst_sample_unref(o);
    out++;
    drain_bus(bus, &bs);
  }
  wait_style_serial(bus, &bs, changes + 1);
  fail_unless_equals_int(gst_app_src_end_of_stream(GST_APP_SRC(src)), GST_FLOW_OK);
  wait_eos(bus, &bs, FRAME_TIMEOUT, "soak");
  gdouble secs = (g_get_monotonic_time() - t0) / 1e6;
  MemSample m_end = mem_sample();
  gdouble rss_end = m_end.rss, dev_end = device_memory_mb(st);
  if (n_frames >= SOAK_WARMUP_FRAMES && n_frames % SOAK_PERIOD == 0) {
    mem_track_add(mem, n_frames / 1000.0, m_end);
    g_array_append_val(dev_mb, dev_end);
  }
  fail_unless_equals_int(out, n_frames);
  /* the style of start, then one per change */
  fail_unless_equals_int(bs.styles_applied, changes + 1);
  g_print("soak: %d frames out in %.1f s (%.1f ms per frame), %u style/property/size changes, "
          "%u styles applied, RSS %.1f -> %.1f MB\n",
          out, secs, secs * 1000 / out, changes, bs.styles_applied, rss0, rss_end);
  /* samples every SOAK_PERIOD frames from frame SOAK_WARMUP_FRAMES */
  mem_track_check(mem, "soak", "1000 frames", SOAK_MAX_RSS_SLOPE, SOAK_MAX_HEAP_SLOPE);
  if (dev_mb->len >= 3) {
    gdouble sdev = slope((const gdouble *)mem->x->data, (const gdouble *)dev_mb->data, dev_mb->len);
    g_print("soak: device memory slope %.3f MB per 1000 frames (%.2f -> %.2f MB; bound %.1f)\n",
            sdev, g_array_index(dev_mb, gdouble, 0), dev_end, SOAK_MAX_DEVICE_SLOPE);
    fail_unless(sdev < SOAK_MAX_DEVICE_SLOPE, "device memory grows by %.3f MB per 1000 frames",
                sdev);
  }
  fail_unless(dev_end > 0, "device-memory reads 0 while the element runs");

  gst_element_set_state(pipeline, GST_STATE_NULL);
  fail_unless(device_memory_mb(st) == 0, "device-memory is %.2f MB after the element stopped",
              device_memory_mb(st));
  g_array_free(dev_mb, TRUE);
  mem_track_free(mem);
  bus_state_clear(&bs);
  gst_object_unref(bus);
  gst_object_unref(src);
  gst_object_unref(st);
  gst_object_unref(sink);
  gst_object_unref(pipeline);
  for (guint i = 0; i < 2; i++) {
    free_frames(frames[i], SOAK_FRAMES_PER_SIZE);
    g_free(style_paths[i]);
  }
}
GST_END_TEST;

/* ---- churn: state cycles ------------------------------------------------------------------- */

static void count_handoff(GstElement *sink, GstBuffer *buf, GstPad *pad, gpointer user_data) {
  (void)sink;
  (void)buf;
  (void)pad;
  g_atomic_int_inc((gint *)user_data);
}

/* Counts the device pool's debug messages (gst/devicepool.c) of the element's category. */
typedef struct {
  gint kept, reused, closed; /* atomic */
} PoolLog;

static void pool_log_func(GstDebugCategory *category, GstDebugLevel level, const gchar *file,
                          const gchar *function, gint line, GObject *object,
                          GstDebugMessage *message, gpointer user_data) {
  (void)level;
  (void)file;
  (void)function;
  (void)line;
  (void)object;
  PoolLog *log = user_data;
  if (strcmp(gst_debug_category_get_name(category), "styletransfer") != 0)
    return;
  const gchar *text = gst_debug_message_get(message);
  if (g_str_has_prefix(text, "keeping device "))
    g_atomic_int_inc(&log->kept);
  else if (g_str_has_prefix(text, "reusing idle device "))
    g_atomic_int_inc(&log->reused);
  else if (g_str_has_prefix(text, "closing idle device "))
    g_atomic_int_inc(&log->closed);
}

GST_START_TEST(test_churn_cycles) {
  limit_arenas();
  check_model_path();
  const gint cycles = env_int("ST_CHURN_CYCLES", CHURN_CYCLES_DEFAULT);
  gchar *style = data_path(styles[0]);
  gchar *desc = g_strdup_printf("videotestsrc num-buffers=2 pattern=ball ! "
                                "video/x-raw,format=I420,width=32,height=24 ! "
                                "styletransfer style=%s ! fakesink name=sink signal-handoffs=true",
                                style);
  GstElement *pipeline = gst_parse_launch(desc, NULL);
  fail_unless(pipeline != NULL);
  GstElement *sink = gst_bin_get_by_name(GST_BIN(pipeline), "sink");
  gint count = 0;
  g_signal_connect(sink, "handoff", G_CALLBACK(count_handoff), &count);
  GstBus *bus = gst_element_get_bus(pipeline);
  PoolLog pool = {0};
  /* the element's debug messages to pool_log_func only (not printed) */
  gst_debug_remove_log_function(gst_debug_log_default);
  gst_debug_add_log_function(pool_log_func, &pool, NULL);
  gst_debug_set_threshold_for_name("styletransfer", GST_LEVEL_DEBUG);

  /* warm-up: a tenth of the cycles, at least 2 */
  const gint warmup = MAX(2, cycles / 10);
  MemTrack *mem = mem_track_new();
  gdouble rss0 = mem_sample().rss, load_sum = 0, load_max = 0, cycle_max = 0;
  gint64 t0 = g_get_monotonic_time();
  g_print("churn: %d NULL -> PLAYING -> EOS -> NULL cycles; RSS at start %.1f MB\n", cycles, rss0);
  for (gint c = 0; c < cycles; c++) {
    gint64 tc = g_get_monotonic_time();
    BusState bs = {0};
    fail_unless(gst_element_set_state(pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE,
                "cycle %d: PLAYING failed", c);
    wait_eos(bus, &bs, CYCLE_TIMEOUT, "churn cycle");
    fail_unless_equals_int(gst_element_set_state(pipeline, GST_STATE_NULL),
                           GST_STATE_CHANGE_SUCCESS);
    drain_bus(bus, &bs);
    fail_unless_equals_int(bs.engines_applied, 1);
    fail_unless_equals_int(bs.styles_applied, 1);
    fail_unless_equals_int(g_atomic_int_get(&count), 2 * (c + 1));
    gdouble cycle_s = (g_get_monotonic_time() - tc) / 1e6;
    load_sum += bs.load_ms;
    load_max = MAX(load_max, bs.load_ms);
    cycle_max = MAX(cycle_max, cycle_s);
    gdouble load_ms = bs.load_ms;
    bus_state_clear(&bs);
    MemSample m = mem_sample();
    if (c + 1 > warmup)
      mem_track_add(mem, (c + 1) / 100.0, m);
    if (c < 10 || (c + 1) % 10 == 0)
      g_print("churn: cycle %d in %.2f s (engine load %.0f ms), RSS %.1f MB, heap in use %.1f MB\n",
              c + 1, cycle_s, load_ms, m.rss, m.heap);
  }
  gdouble secs = (g_get_monotonic_time() - t0) / 1e6;
  g_print("churn: %d cycles, %d frames out in %.1f s (%.2f s per cycle, longest %.2f s; engine "
          "load %.0f ms mean, %.0f ms longest), RSS %.1f -> %.1f MB\n",
          cycles, g_atomic_int_get(&count), secs, secs / cycles, cycle_max, load_sum / cycles,
          load_max, rss0, mem_sample().rss);
  g_print("churn: memory sampled after each cycle from cycle %d\n", warmup + 1);
  mem_track_check(mem, "churn", "100 cycles", CHURN_MAX_RSS_SLOPE, CHURN_MAX_HEAP_SLOPE);

  mem_track_free(mem);
  gst_object_unref(bus);
  gst_object_unref(sink);
  /* one device for all the cycles, kept idle between them, closed with the element */
  fail_unless_equals_int(g_atomic_int_get(&pool.kept), cycles);
  fail_unless_equals_int(g_atomic_int_get(&pool.reused), cycles - 1);
  fail_unless_equals_int(g_atomic_int_get(&pool.closed), 0);
  gst_object_unref(pipeline);
  fail_unless_equals_int(g_atomic_int_get(&pool.closed), 1);
  g_print("churn: one Vulkan device for the %d cycles (kept idle %d times, reused %d times), "
          "closed with the pipeline\n",
          cycles, pool.kept, pool.reused);
  gst_debug_remove_log_function(pool_log_func);
  gst_debug_unset_threshold_for_name("styletransfer");
  gst_debug_add_log_function(gst_debug_log_default, NULL, NULL);
  g_free(desc);
  g_free(style);
}
GST_END_TEST;

/* ---- churn: property changes from 4 threads while streaming -------------------------------- */

typedef struct {
  GstElement *st;
  gchar *style_paths[2];
  gint stop;     /* atomic */
  guint sets[4]; /* property sets per thread */
  GMutex lock;   /* watchdog */
  GCond cond;
  gboolean done;
} ThreadsCtx;

typedef struct {
  ThreadsCtx *ctx;
  guint index;
} Setter;

static gpointer setter_main(gpointer data) {
  Setter *setter = data;
  ThreadsCtx *ctx = setter->ctx;
  GRand *rng = g_rand_new_with_seed(1234 + setter->index);
  guint n = 0;
  while (!g_atomic_int_get(&ctx->stop)) {
    switch (setter->index) {
    case 0:
      g_object_set(ctx->st, "strength", g_rand_double(rng), "steps", g_rand_int_range(rng, 0, 4),
                   NULL);
      g_usleep(g_rand_int_range(rng, 0, 2000));
      break;
    case 1: /* each change is a decode and the style features on the device: less often */
      g_object_set(ctx->st, "style", ctx->style_paths[n % 2], NULL);
      g_usleep(g_rand_int_range(rng, 5000, 50000));
      break;
    case 2:
      g_object_set(ctx->st, "temporal", (gboolean)g_rand_boolean(rng), "temporal-smoothing",
                   g_rand_double_range(rng, 0.0, 0.95), NULL);
      g_usleep(g_rand_int_range(rng, 0, 2000));
      break;
    default:
      g_object_set(ctx->st, "preserve-colors", (gboolean)g_rand_boolean(rng), "motion-compensation",
                   (gboolean)g_rand_boolean(rng), NULL);
      g_usleep(g_rand_int_range(rng, 0, 2000));
      break;
    }
    n++;
  }
  ctx->sets[setter->index] = n;
  g_rand_free(rng);
  return NULL;
}

/* Aborts the test if `done` is not set within THREADS_EOS_TIMEOUT_S plus the streaming time: a
 * deadlocked pipeline would otherwise hang until check's own timeout. */
static gpointer watchdog_main(gpointer data) {
  ThreadsCtx *ctx = data;
  gint64 deadline =
      g_get_monotonic_time() +
      (gint64)(env_int("ST_THREADS_SECONDS", THREADS_SECONDS_DEFAULT) + THREADS_EOS_TIMEOUT_S) *
          G_TIME_SPAN_SECOND;
  g_mutex_lock(&ctx->lock);
  while (!ctx->done) {
    if (!g_cond_wait_until(&ctx->cond, &ctx->lock, deadline) && !ctx->done) {
      g_printerr("watchdog: the pipeline did not reach EOS in time (deadlock?)\n");
      abort();
    }
  }
  g_mutex_unlock(&ctx->lock);
  return NULL;
}

GST_START_TEST(test_churn_threads) {
  limit_arenas();
  check_model_path();
  const gint seconds = env_int("ST_THREADS_SECONDS", THREADS_SECONDS_DEFAULT);
  GstSample **frames = make_frames(32, 24, SOAK_FRAMES_PER_SIZE);
  ThreadsCtx ctx = {0};
  g_mutex_init(&ctx.lock);
  g_cond_init(&ctx.cond);
  for (guint i = 0; i < 2; i++)
    ctx.style_paths[i] = data_path(styles[i]);
  GThread *watchdog = g_thread_new("st-watchdog", watchdog_main, &ctx);

  /* a short queue in appsrc: frames are pushed as they are processed */
  GstElement *pipeline =
      gst_parse_launch("appsrc name=src format=time block=true max-buffers=2 ! "
                       "styletransfer name=st ! fakesink name=sink signal-handoffs=true",
                       NULL);
  fail_unless(pipeline != NULL);
  GstElement *src = gst_bin_get_by_name(GST_BIN(pipeline), "src");
  GstElement *sink = gst_bin_get_by_name(GST_BIN(pipeline), "sink");
  ctx.st = gst_bin_get_by_name(GST_BIN(pipeline), "st");
  g_object_set(ctx.st, "style", ctx.style_paths[0], NULL);
  gint count = 0;
  g_signal_connect(sink, "handoff", G_CALLBACK(count_handoff), &count);
  GstBus *bus = gst_element_get_bus(pipeline);
  BusState bs = {0};
  fail_unless(gst_element_set_state(pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);

  /* the first frame plans the engine for its size (compiling the pipelines: seconds on
   * lavapipe): before the threads start */
  gint pushed = 0;
  GstSample *warm = timed_frame(frames[0], pushed++);
  fail_unless_equals_int(gst_app_src_push_sample(GST_APP_SRC(src), warm), GST_FLOW_OK);
  gst_sample_unref(warm);
  while (g_atomic_int_get(&count) < 1) {
    drain_bus(bus, &bs);
    g_usleep(10000);
  }
  MemSample m0 = mem_sample();

  Setter setters[4];
  GThread *threads[4];
  for (guint i = 0; i < 4; i++) {
    setters[i].ctx = &ctx;
    setters[i].index = i;
    threads[i] = g_thread_new("st-setter", setter_main, &setters[i]);
  }
  gint64 t0 = g_get_monotonic_time();
  while (g_get_monotonic_time() - t0 < (gint64)seconds * G_TIME_SPAN_SECOND) {
    GstSample *in = timed_frame(frames[pushed % SOAK_FRAMES_PER_SIZE], pushed);
    fail_unless_equals_int(gst_app_src_push_sample(GST_APP_SRC(src), in), GST_FLOW_OK);
    gst_sample_unref(in);
    pushed++;
    drain_bus(bus, &bs);
  }
  g_atomic_int_set(&ctx.stop, 1);
  for (guint i = 0; i < 4; i++)
    g_thread_join(threads[i]);
  fail_unless_equals_int(gst_app_src_end_of_stream(GST_APP_SRC(src)), GST_FLOW_OK);
  wait_eos(bus, &bs, THREADS_EOS_TIMEOUT_S * GST_SECOND, "threads");
  gdouble secs = (g_get_monotonic_time() - t0) / 1e6;
  g_mutex_lock(&ctx.lock);
  ctx.done = TRUE;
  g_cond_signal(&ctx.cond);
  g_mutex_unlock(&ctx.lock);
  g_thread_join(watchdog);

  fail_unless_equals_int(g_atomic_int_get(&count), pushed);
  fail_unless(bs.styles_applied >= 1);
  MemSample m1 = mem_sample();
  g_print(
      "threads: %d frames pushed and out in %.1f s while 4 threads set properties (%u "
      "strength+steps, %u style, %u temporal+smoothing, %u preserve-colors+motion sets); "
      "%u styles applied; EOS, no warning or error; RSS %.1f -> %.1f MB, heap in use %.1f -> %.1f "
      "MB\n",
      pushed, secs, ctx.sets[0], ctx.sets[1], ctx.sets[2], ctx.sets[3], bs.styles_applied, m0.rss,
      m1.rss, m0.heap, m1.heap);

  gst_element_set_state(pipeline, GST_STATE_NULL);
  drain_bus(bus, &bs);
  bus_state_clear(&bs);
  gst_object_unref(bus);
  gst_object_unref(src);
  gst_object_unref(sink);
  gst_object_unref(ctx.st);
  gst_object_unref(pipeline);
  for (guint i = 0; i < 2; i++)
    g_free(ctx.style_paths[i]);
  g_mutex_clear(&ctx.lock);
  g_cond_clear(&ctx.cond);
  free_frames(frames, SOAK_FRAMES_PER_SIZE);
}
GST_END_TEST;

static Suite *stress_suite(void) {
  Suite *s = suite_create("styletransfer-stress");
  TCase *tc = tcase_create("stress");
  tcase_set_timeout(tc, 3600);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_soak);
  tcase_add_test(tc, test_churn_cycles);
  tcase_add_test(tc, test_churn_threads);
  return s;
}

ST_CHECK_MAIN(stress);
