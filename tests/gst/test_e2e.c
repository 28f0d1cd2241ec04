/* SPDX-License-Identifier: LGPL-2.1-or-later
 * End-to-end test of the styletransfer element against the PyTorch model: for every case of
 * tests/data/e2e/index.json (written by weights/make_e2e_data.py with weights/run_graph.py), the
 * element runs on the 8-bit RGBA content frame with the case's style, steps and strength at
 * processing-size=0, and its output must match the expected frame: PSNR over RGB >= 40 dB with
 * fp32 storage and >= 35 dB with fp16 storage, and the alpha must pass through unchanged. The
 * index's "masked_cases" (a model with masked subgraphs) run two styles by a mask:
 * mask-source=alpha, style-2 the index's "style_2", the content's alpha the mask.
 *
 * Usage: test_e2e [INDEX.json]. The index is the first argument, else $ST_E2E_INDEX, else
 * $ST_TEST_DATA/e2e/index.json. The model is the index's "model" path (relative to the index) and
 * must have the index's "model_sha256". meson registers two runs (tests/gst/meson.build):
 *   - tests/data/e2e: the random test model tests/data/model_random.safetensors;
 *   - tests/data/e2e_trained: the shipped, trained model weights/styletransfer.safetensors.
 * When a model file changes, its data set must be rewritten (PyTorch, not needed by CI):
 *   /usr/bin/python3 weights/make_e2e_data.py
 *   /usr/bin/python3 weights/make_e2e_data.py --model weights/styletransfer.safetensors \
 *       --out tests/data/e2e_trained --sizes 64x48,97x61,33x17 \
 *       --style examples/default-style.jpg --style-colors 256
 *
 * Environment (set by meson test): GST_PLUGIN_PATH (build tree), ST_TEST_DATA (tests/data),
 * ST_VALIDATION=1 and ST_VALIDATION_FATAL=1.
 */
#include <math.h>
#include <string.h>

#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/video/video.h>

#include "fatal_validation.h"
#include "json.h"

#define MIN_PSNR_FP32 40.0
#define MIN_PSNR_FP16 35.0

static gchar *index_arg; /* argv[1], if given */
static JsonValue *index_json;
static gchar *index_dir;
static gchar *model_file;

/* ---- data ---------------------------------------------------------------------------------- */

static const JsonValue *member(const JsonValue *obj, const gchar *key, JsonType type) {
  const JsonValue *v = json_get(obj, key);
  fail_unless(v != NULL && v->type == type, "index.json: member \"%s\" missing or not a %s", key,
              json_type_name(type));
  return v;
}

static gchar *data_file(const gchar *name) { return g_build_filename(index_dir, name, NULL); }

/* Loads an RGBA raw file of exactly w*h*4 bytes. */
static guint8 *load_rgba(const gchar *name, gint w, gint h) {
  gchar *path = data_file(name);
  gchar *data = NULL;
  gsize len = 0;
  GError *err = NULL;
  fail_unless(g_file_get_contents(path, &data, &len, &err), "cannot read %s: %s", path,
              err ? err->message : "");
  fail_unless_equals_uint64((guint64)len, (guint64)w * h * 4);
  g_free(path);
  return (guint8 *)data;
}

static void load_index(void) {
  if (index_json != NULL)
    return;
  const gchar *env = g_getenv("ST_E2E_INDEX");
  gchar *path;
  if (index_arg != NULL) {
    path = g_strdup(index_arg);
  } else if (env != NULL && env[0] != '\0') {
    path = g_strdup(env);
  } else {
    const gchar *dir = g_getenv("ST_TEST_DATA");
    fail_unless(dir != NULL, "ST_TEST_DATA is not set (run the tests with meson test)");
    path = g_build_filename(dir, "e2e", "index.json", NULL);
  }
  gchar *text = NULL;
  gsize len = 0;
  GError *err = NULL;
  fail_unless(g_file_get_contents(path, &text, &len, &err), "cannot read %s: %s", path,
              err ? err->message : "");
  char msg[256];
  index_json = json_parse(text, len, msg, sizeof msg);
  fail_unless(index_json != NULL && index_json->type == JSON_OBJECT, "%s: %s", path, msg);
  g_free(text);
  index_dir = g_path_get_dirname(path);
  g_free(path);

  const gchar *model = member(index_json, "model", JSON_STRING)->string;
  model_file = g_path_is_absolute(model) ? g_strdup(model) : data_file(model);
  /* the reference data belongs to one exact model file */
  gchar *bytes = NULL;
  gsize mlen = 0;
  fail_unless(g_file_get_contents(model_file, &bytes, &mlen, &err), "cannot read model %s: %s",
              model_file, err ? err->message : "");
  gchar *sha = g_compute_checksum_for_data(G_CHECKSUM_SHA256, (const guchar *)bytes, mlen);
  const JsonValue *cmd = json_get(index_json, "command");
  fail_unless(strcmp(sha, member(index_json, "model_sha256", JSON_STRING)->string) == 0,
              "%s is not the model that %s was written for: rerun %s", model_file, index_dir,
              cmd != NULL && cmd->type == JSON_STRING ? cmd->string : "weights/make_e2e_data.py");
  g_print("index %s, model %s\n", index_dir, model_file);
  g_free(sha);
  g_free(bytes);
}

/* ---- element --------------------------------------------------------------------------------- */

/* style_2: NULL for one style, else the second style, put where the input's alpha is 0 */
static GstHarness *new_harness(gint w, gint hgt, gint steps, gdouble strength, gboolean fp16,
                               gboolean temporal, const gchar *style_2) {
  GstElement *e = gst_element_factory_make("styletransfer", NULL);
  fail_unless(e != NULL, "styletransfer element not found (GST_PLUGIN_PATH?)");
  gchar *style = data_file(member(index_json, "style", JSON_STRING)->string);
  g_object_set(e, "model", model_file, "style", style, "steps", steps, "strength", strength,
               "processing-size", 0, "fp16", fp16, "temporal", temporal, "preserve-colors", FALSE,
               /* the network itself: the output smoothing has its own tests (test_net, ops) */
               "temporal-smoothing", 0.0, NULL);
  g_free(style);
  if (style_2 != NULL) {
    gchar *s2 = data_file(style_2);
    gst_util_set_object_arg(G_OBJECT(e), "mask-source", "alpha");
    g_object_set(e, "style-2", s2, NULL);
    g_free(s2);
  }
  GstHarness *h = gst_harness_new_with_element(e, "sink", "src");
  gst_object_unref(e);
  GstCaps *caps =
      gst_caps_new_simple("video/x-raw", "format", G_TYPE_STRING, "RGBA", "width", G_TYPE_INT, w,
                          "height", G_TYPE_INT, hgt, "framerate", GST_TYPE_FRACTION, 30, 1, NULL);
  gst_harness_set_src_caps(h, caps);
  return h;
}

/* Pushes the packed RGBA `pixels` as one frame and returns the element's output. */
static GstBuffer *run_frame(GstHarness *h, const guint8 *pixels, gint w, gint hgt, guint index) {
  GstVideoInfo info;
  gst_video_info_set_format(&info, GST_VIDEO_FORMAT_RGBA, w, hgt);
  GstBuffer *in = gst_buffer_new_allocate(NULL, GST_VIDEO_INFO_SIZE(&info), NULL);
  GstVideoFrame f;
  fail_unless(gst_video_frame_map(&f, &info, in, GST_MAP_WRITE));
  for (gint y = 0; y < hgt; y++)
    memcpy((guint8 *)GST_VIDEO_FRAME_PLANE_DATA(&f, 0) + y * GST_VIDEO_FRAME_PLANE_STRIDE(&f, 0),
           pixels + (gsize)y * w * 4, (gsize)w * 4);
  gst_video_frame_unmap(&f);
  GST_BUFFER_PTS(in) = index * GST_SECOND / 30;
  GST_BUFFER_DURATION(in) = GST_SECOND / 30;
  /* a DISCONT buffer resets the temporal state: the frames of a sequence are one stream */
  GST_BUFFER_FLAG_UNSET(in, GST_BUFFER_FLAG_DISCONT);
  fail_unless_equals_int(gst_harness_push(h, in), GST_FLOW_OK);
  GstBuffer *out = gst_harness_pull(h);
  fail_unless(out != NULL, "no output buffer");
  return out;
}

typedef struct {
  gdouble psnr; /* dB over the RGB bytes; INFINITY when identical */
  gint max_abs;
  gint alpha_diff; /* pixels whose alpha differs from the expected frame's */
} Diff;

static Diff compare(GstBuffer *out, const guint8 *expected, gint w, gint h) {
  GstVideoInfo info;
  gst_video_info_set_format(&info, GST_VIDEO_FORMAT_RGBA, w, h);
  GstVideoFrame f;
  fail_unless(gst_video_frame_map(&f, &info, out, GST_MAP_READ));
  gdouble se = 0;
  gint mx = 0, na = 0;
  for (gint y = 0; y < h; y++) {
    const guint8 *row =
        (const guint8 *)GST_VIDEO_FRAME_PLANE_DATA(&f, 0) + y * GST_VIDEO_FRAME_PLANE_STRIDE(&f, 0);
    const guint8 *ref = expected + (gsize)y * w * 4;
    for (gint x = 0; x < w; x++) {
      for (gint c = 0; c < 3; c++) {
        gint d = (gint)row[4 * x + c] - (gint)ref[4 * x + c];
        se += (gdouble)d * d;
        mx = MAX(mx, ABS(d));
      }
      na += row[4 * x + 3] != ref[4 * x + 3];
    }
  }
  gst_video_frame_unmap(&f);
  gdouble mse = se / ((gdouble)w * h * 3);
  Diff r = {mse > 0 ? 10.0 * log10(255.0 * 255.0 / mse) : INFINITY, mx, na};
  return r;
}

/* ---- tests ----------------------------------------------------------------------------------- */

/* The single-frame cases of index.json's `key` ("cases", or "masked_cases": two styles, the
 * content's alpha the mask, with the index's "style_2"). */
static void run_single_cases(gboolean fp16, const gchar *key) {
  load_index();
  const gdouble bar = fp16 ? MIN_PSNR_FP16 : MIN_PSNR_FP32;
  const gboolean masked = strcmp(key, "masked_cases") == 0;
  const gchar *style_2 = NULL;
  if (masked) {
    if (json_get(index_json, key) == NULL) {
      g_print("%s: no masked cases (the model has no masked subgraphs)\n", index_dir);
      return;
    }
    style_2 = member(index_json, "style_2", JSON_STRING)->string;
  }
  const JsonValue *cases = member(index_json, key, JSON_ARRAY);
  fail_unless(cases->len > 0, "index.json has no %s", key);
  gdouble worst = INFINITY;
  GstHarness *hn = NULL;
  gint hw = 0, hh = 0;
  guint frame = 0;
  for (gsize i = 0; i < cases->len; i++) {
    const JsonValue *c = &cases->items[i];
    gint w = (gint)member(c, "width", JSON_NUMBER)->number;
    gint h = (gint)member(c, "height", JSON_NUMBER)->number;
    gint steps = (gint)member(c, "steps", JSON_NUMBER)->number;
    gdouble strength = member(c, "strength", JSON_NUMBER)->number;
    guint8 *content = load_rgba(member(c, "content", JSON_STRING)->string, w, h);
    guint8 *expected = load_rgba(member(c, "expected", JSON_STRING)->string, w, h);

    /* consecutive cases of one size share an element (temporal state off): steps and strength
     * change between frames as they may while playing */
    if (hn != NULL && (w != hw || h != hh)) {
      gst_harness_teardown(hn);
      hn = NULL;
    }
    if (hn == NULL) {
      hn = new_harness(w, h, steps, strength, fp16, FALSE, style_2);
      hw = w;
      hh = h;
      frame = 0;
    } else {
      g_object_set(hn->element, "steps", steps, "strength", strength, NULL);
    }
    GstBuffer *out = run_frame(hn, content, w, h, frame++);
    Diff d = compare(out, expected, w, h);
    g_print("%s %s %3dx%-3d steps %d strength %.1f: PSNR %6.2f dB (max |d| %d)\n",
            fp16 ? "fp16" : "fp32", key, w, h, steps, strength, d.psnr, d.max_abs);
    fail_unless(d.psnr >= bar, "%s %s %zu (%dx%d, steps %d, strength %.1f): PSNR %.2f dB < %.0f",
                fp16 ? "fp16" : "fp32", key, i, w, h, steps, strength, d.psnr, bar);
    fail_unless(d.alpha_diff == 0, "%s %s %zu: the alpha of %d pixels changed",
                fp16 ? "fp16" : "fp32", key, i, d.alpha_diff);
    if (masked) /* the data must tell two styles from one: one style is below the bar */
      fail_unless(member(c, "psnr_vs_one_style", JSON_NUMBER)->number < MIN_PSNR_FP16,
                  "masked case %zu: the one-style output is within the bar", i);
    worst = MIN(worst, d.psnr);
    gst_buffer_unref(out);
    g_free(content);
    g_free(expected);
  }
  if (hn != NULL)
    gst_harness_teardown(hn);
  g_print("%s: worst PSNR over %zu %s: %.2f dB (bar %.0f dB)\n", fp16 ? "fp16" : "fp32", cases->len,
          key, worst, bar);
}

static void run_sequences(gboolean fp16) {
  load_index();
  const gdouble bar = fp16 ? MIN_PSNR_FP16 : MIN_PSNR_FP32;
  const JsonValue *seqs = member(index_json, "sequences", JSON_ARRAY);
  for (gsize si = 0; si < seqs->len; si++) {
    const JsonValue *s = &seqs->items[si];
    gint w = (gint)member(s, "width", JSON_NUMBER)->number;
    gint h = (gint)member(s, "height", JSON_NUMBER)->number;
    gint steps = (gint)member(s, "steps", JSON_NUMBER)->number;
    gdouble strength = member(s, "strength", JSON_NUMBER)->number;
    gboolean temporal = member(s, "temporal", JSON_BOOL)->boolean;
    const JsonValue *frames = member(s, "frames", JSON_ARRAY);
    GstHarness *hn = new_harness(w, h, steps, strength, fp16, temporal, NULL);
    for (gsize fi = 0; fi < frames->len; fi++) {
      const JsonValue *fr = &frames->items[fi];
      guint8 *content = load_rgba(member(fr, "content", JSON_STRING)->string, w, h);
      guint8 *expected = load_rgba(member(fr, "expected", JSON_STRING)->string, w, h);
      GstBuffer *out = run_frame(hn, content, w, h, (guint)fi);
      Diff d = compare(out, expected, w, h);
      g_print("%s sequence %zu frame %zu (%dx%d, steps %d, temporal %d): PSNR %6.2f dB "
              "(max |d| %d)\n",
              fp16 ? "fp16" : "fp32", si, fi, w, h, steps, temporal, d.psnr, d.max_abs);
      fail_unless(d.psnr >= bar, "%s sequence %zu frame %zu: PSNR %.2f dB < %.0f",
                  fp16 ? "fp16" : "fp32", si, fi, d.psnr, bar);
      gst_buffer_unref(out);
      g_free(content);
      g_free(expected);
    }
    gst_harness_teardown(hn);
  }
}

GST_START_TEST(test_e2e_fp32) { run_single_cases(FALSE, "cases"); }
GST_END_TEST;

GST_START_TEST(test_e2e_fp16) { run_single_cases(TRUE, "cases"); }
GST_END_TEST;

GST_START_TEST(test_e2e_masked_fp32) { run_single_cases(FALSE, "masked_cases"); }
GST_END_TEST;

GST_START_TEST(test_e2e_masked_fp16) { run_single_cases(TRUE, "masked_cases"); }
GST_END_TEST;

GST_START_TEST(test_e2e_temporal_fp32) { run_sequences(FALSE); }
GST_END_TEST;

GST_START_TEST(test_e2e_temporal_fp16) { run_sequences(TRUE); }
GST_END_TEST;

static Suite *e2e_suite(void) {
  Suite *s = suite_create("styletransfer-e2e");
  TCase *tc = tcase_create("e2e");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_e2e_fp32);
  tcase_add_test(tc, test_e2e_fp16);
  tcase_add_test(tc, test_e2e_temporal_fp32);
  tcase_add_test(tc, test_e2e_temporal_fp16);
  tcase_add_test(tc, test_e2e_masked_fp32);
  tcase_add_test(tc, test_e2e_masked_fp16);
  suite_add_tcase(s, tc);
  return s;
}

int main(int argc, char **argv) {
  gst_check_init(&argc, &argv);
  fatal_validation_init();
  if (argc > 2) {
    g_printerr("usage: %s [INDEX.json]\n", argv[0]);
    return 2;
  }
  if (argc == 2)
    index_arg = argv[1];
  /* one process, the compiled pipelines kept between the cases (fatal_validation.h) */
  return st_check_run_in_one_process(e2e_suite(), "e2e", __FILE__);
}
