/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Model loader robustness: bad files derived from the valid test model (truncations, corrupt
 * header length, bad JSON, wrong dtype/shape/offsets, overlapping tensors, wrong metadata, graph
 * errors: unknown op, missing subgraph, undefined names, wrong weight shapes ...). Every one must
 * fail cleanly with ST_ERROR_MODEL and a message naming the file and the problem. Also checks the
 * JSON parser directly.
 */
#include "internal.h"
#include "json.h"
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../st_test_log.h"
#include "check.h"

static uint8_t *orig;
static size_t orig_size;
static char tmp_path[1024];
static StDevice *dev;

static bool write_file(const char *path, const uint8_t *d, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f)
    return false;
  bool ok = fwrite(d, 1, n, f) == n;
  return fclose(f) == 0 && ok;
}

/* Loads `d` through the public API; expects failure with `want` in the message. */
static void expect_fail(const char *what, const uint8_t *d, size_t n, const char *want) {
  StError err = {0};
  if (!write_file(tmp_path, d, n)) {
    CHECK(false, "cannot write %s", tmp_path);
    return;
  }
  StNetOptions o = {.fp16 = false};
  StNet *net = st_net_load(dev, tmp_path, &o, &err);
  CHECK(net == NULL, "%s: bad model accepted", what);
  st_net_free(net);
  CHECK(err.code == ST_ERROR_MODEL, "%s: code %d (%s)", what, err.code, err.message);
  CHECK(strstr(err.message, tmp_path) != NULL, "%s: message does not name the file: %s", what,
        err.message);
  if (want)
    CHECK(strstr(err.message, want) != NULL, "%s: message lacks '%s': %s", what, want, err.message);
  if (want)
    printf("%-28s -> %s\n", what, err.message + strlen("model ") + strlen(tmp_path) + 2);
}

/* A copy of the model with the n-th occurrence of `find` in the header replaced (header length
 * field updated). */
static uint8_t *mutate(const char *find, const char *repl, int nth, size_t *out_n) {
  uint64_t hl = 0;
  for (int i = 7; i >= 0; i--)
    hl = (hl << 8) | orig[i];
  const char *h = (const char *)orig + 8;
  const char *pos = NULL;
  size_t fl = strlen(find), rl = strlen(repl);
  for (size_t i = 0, seen = 0; i + fl <= hl; i++) {
    if (memcmp(h + i, find, fl) == 0 && (int)seen++ == nth) {
      pos = h + i;
      break;
    }
  }
  if (!pos) {
    fprintf(stderr, "FAIL: pattern '%s' (#%d) not in the test model header\n", find, nth);
    failures++;
    return NULL;
  }
  size_t n = orig_size - fl + rl;
  uint8_t *d = malloc(n);
  size_t pre = (size_t)(pos - (const char *)orig);
  memcpy(d, orig, pre);
  memcpy(d + pre, repl, rl);
  memcpy(d + pre + rl, pos + fl, orig_size - pre - fl);
  uint64_t nhl = hl - fl + rl;
  for (int i = 0; i < 8; i++)
    d[i] = (uint8_t)(nhl >> (8 * i));
  *out_n = n;
  return d;
}

static void expect_mutation_fails(const char *what, const char *find, const char *repl, int nth,
                                  const char *want) {
  size_t n;
  uint8_t *d = mutate(find, repl, nth, &n);
  if (d)
    expect_fail(what, d, n, want);
  free(d);
}

/* A copy of the model with the mutation must load (fp32 and fp16) and run one frame (style set,
 * 33x17 content) to a finite output. */
static void expect_mutation_runs(const char *what, const char *find, const char *repl, int nth) {
  size_t n;
  uint8_t *d = mutate(find, repl, nth, &n);
  if (!d)
    return;
  CHECK(write_file(tmp_path, d, n), "%s: cannot write %s", what, tmp_path);
  free(d);
  enum { SW = 24, SH = 20, W = 33, H = 17 };
  static uint8_t style[SW * SH * 4];
  static float content[3 * W * H];
  for (int i = 0; i < SW * SH * 4; i++)
    style[i] = (uint8_t)(i * 37 % 251);
  for (int i = 0; i < 3 * W * H; i++)
    content[i] = (float)(i * 53 % 97) / 96.0f;
  for (int fp16 = 0; fp16 < 2; fp16++) {
    StError err = {0};
    StNetOptions o = {.fp16 = fp16 != 0};
    StNet *net = st_net_load(dev, tmp_path, &o, &err);
    CHECK(net != NULL, "%s (%s): refused: %s", what, fp16 ? "fp16" : "fp32", err.message);
    if (!net)
      continue;
    StImage si = {.format = ST_FORMAT_RGBA, .width = SW, .height = SH};
    si.planes[0] = style;
    si.strides[0] = SW * 4;
    StFrameParams p;
    st_frame_params_init(&p);
    float *out = NULL;
    int ow = 0, oh = 0;
    bool ok = st_net_set_style(net, &si, &err) &&
              st_net_run_float(net, content, W, H, &p, &out, &ow, &oh, &err);
    CHECK(ok, "%s (%s): %s", what, fp16 ? "fp16" : "fp32", err.message);
    if (ok) {
      size_t bad = 0;
      for (size_t i = 0; i < (size_t)3 * ow * oh; i++)
        bad += !isfinite(out[i]);
      CHECK(ow == W && oh == H && bad == 0, "%s (%s): %dx%d output, %zu values not finite", what,
            fp16 ? "fp16" : "fp32", ow, oh, bad);
      printf("%-28s -> loads and runs (%s)\n", what, fp16 ? "fp16" : "fp32");
    }
    free(out);
    st_net_free(net);
  }
}

static void json_tests(void) {
  static const char *good[] = {
      "{}",
      "[]",
      "0",
      "-0.5e+3",
      "\"a\\u00e9\\ud83d\\ude00\\n\"",
      "[1,[2,[3]],{\"a\":null}]",
      " {\"a\" : true , \"b\":false} ",
  };
  static const char *bad[] = {
      "",
      "{",
      "[1,]",
      "{\"a\":1,}",
      "{\"a\" 1}",
      "01",
      "1.",
      ".5",
      "+1",
      "\"\\x\"",
      "\"\\ud800\"",
      "\"a\nb\"",
      "{\"a\":1,\"a\":2}",
      "[1] x",
      "nul",
      "\"\\u0000\"",
      "1e999",
      "\"\xff\"",
      "\"\xc0\x80\"",
      "{1:2}",
  };
  char err[256];
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    JsonValue *v = json_parse(good[i], strlen(good[i]), err, sizeof err);
    CHECK(v != NULL, "valid JSON '%s' refused: %s", good[i], err);
    json_free(v);
  }
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    JsonValue *v = json_parse(bad[i], strlen(bad[i]), err, sizeof err);
    CHECK(v == NULL, "invalid JSON '%s' accepted", bad[i]);
    json_free(v);
  }
  /* deep nesting is refused, not a stack overflow */
  char deep[20001];
  memset(deep, '[', 10000);
  memset(deep + 10000, ']', 10000);
  deep[20000] = 0;
  JsonValue *v = json_parse(deep, 20000, err, sizeof err);
  CHECK(v == NULL && strstr(err, "nesting"), "deep nesting: %s", v ? "accepted" : err);
  json_free(v);
  const char *s = "{\"k\":\"caf\\u00e9\",\"n\":[1,2.5]}";
  v = json_parse(s, strlen(s), err, sizeof err);
  CHECK(v && strcmp(json_get(v, "k")->string, "caf\xc3\xa9") == 0 &&
            json_get(v, "n")->items[1].number == 2.5,
        "JSON values");
  json_free(v);
}

int main(void) {
  st_test_log_init();
  json_tests();
  const char *data_dir = getenv("ST_TEST_DATA");
  if (!data_dir)
    data_dir = "tests/data";
  char path[1024];
  snprintf(path, sizeof path, "%s/model_random.safetensors", data_dir);
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "FAIL: cannot open %s\n", path);
    return 1;
  }
  fseek(f, 0, SEEK_END);
  orig_size = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  orig = malloc(orig_size);
  if (fread(orig, 1, orig_size, f) != orig_size) {
    fprintf(stderr, "FAIL: cannot read %s\n", path);
    return 1;
  }
  fclose(f);
  const char *tmpdir = getenv("ST_TEST_TMP");
  snprintf(tmp_path, sizeof tmp_path, "%s/bad-model.safetensors", tmpdir ? tmpdir : ".");

  StError err = {0};
  StDeviceOptions opts;
  st_device_options_init(&opts);
  dev = st_device_new(&opts, &err);
  if (!dev) {
    fprintf(stderr, "FAIL: st_device_new: %s\n", err.message);
    return 1;
  }

  /* The unmodified file (written through the same path) loads. */
  CHECK(write_file(tmp_path, orig, orig_size), "write");
  StNetOptions o = {.fp16 = false};
  StNet *net = st_net_load(dev, tmp_path, &o, &err);
  CHECK(net != NULL, "valid model refused: %s", err.message);
  st_net_free(net);
  /* An identity mutation also loads (the mutation helper itself is sound). */
  size_t n;
  uint8_t *same = mutate("\\\"op\\\": \\\"pool\\\"", "\\\"op\\\":  \\\"pool\\\"", 0, &n);
  if (same) {
    CHECK(write_file(tmp_path, same, n), "write");
    net = st_net_load(dev, tmp_path, &o, &err);
    CHECK(net != NULL, "whitespace-only change refused: %s", err.message);
    st_net_free(net);
    free(same);
  }

  /* Missing and empty files. */
  expect_fail("empty file", orig, 0, "too short");
  {
    StNet *x = st_net_load(dev, "/nonexistent/dir/model.safetensors", &o, &err);
    CHECK(!x && err.code == ST_ERROR_MODEL && strstr(err.message, "cannot open"),
          "missing file: %s", err.message);
  }

  /* Truncations everywhere: every 97th byte of the header region and spread over the data. */
  uint64_t hl = 0;
  for (int i = 7; i >= 0; i--)
    hl = (hl << 8) | orig[i];
  int ntrunc = 0;
  for (size_t cut = 1; cut < orig_size; cut += (cut < 8 + hl + 200 ? 97 : orig_size / 40)) {
    char what[64];
    snprintf(what, sizeof what, "truncated at %zu", cut);
    expect_fail(what, orig, cut, NULL);
    ntrunc++;
  }
  expect_fail("truncated by one byte", orig, orig_size - 1, "outside the data area");
  printf("%d truncations refused\n", ntrunc);

  /* Header length field. */
  uint8_t *d = malloc(orig_size);
  memcpy(d, orig, orig_size);
  memset(d, 0xff, 8);
  expect_fail("huge header length", d, orig_size, "header length");
  memset(d, 0, 8);
  expect_fail("zero header length", d, orig_size, "header length");
  memcpy(d, orig, orig_size);
  d[0] = (uint8_t)(d[0] - 1); /* header one byte shorter: data area shifted */
  {
    /* with a space of padding at the header's end the JSON still parses and the data area is
     * off by one; without padding the closing brace is cut off */
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
      hlen = hlen << 8 | orig[i];
    expect_fail("header length one short", d, orig_size,
                orig[8 + hlen - 1] == ' ' ? "not covered" : "JSON");
  }
  memcpy(d, orig, orig_size);
  d[0] = (uint8_t)(d[0] + 1); /* header one byte longer: binary data in the JSON */
  expect_fail("header length one long", d, orig_size, "JSON");
  memcpy(d, orig, orig_size);
  d[8] = '[';
  expect_fail("header not an object", d, orig_size, "JSON");
  free(d);

  /* Header JSON and tensor entries. */
  expect_mutation_fails("bad JSON", "\"dtype\":\"F32\"", "\"dtype\" \"F32\"", 0, "not valid JSON");
  expect_mutation_fails("wrong dtype", "\"dtype\":\"F32\"", "\"dtype\":\"I32\"", 0,
                        "unsupported dtype 'I32'");
  expect_mutation_fails("dtype F64", "\"dtype\":\"F16\"", "\"dtype\":\"F64\"", 0,
                        "unsupported dtype");
  expect_mutation_fails("shape/size mismatch", "\"shape\":[32],", "\"shape\":[33],", 0,
                        "shape and dtype");
  expect_mutation_fails("dtype/size mismatch", "\"dtype\":\"F16\"", "\"dtype\":\"F32\"", 0,
                        "shape and dtype");
  expect_mutation_fails("negative shape", "\"shape\":[32],", "\"shape\":[-32],", 0, "shape");
  expect_mutation_fails("rank 5", "\"shape\":[32],", "\"shape\":[1,1,1,1,32],", 0, "rank 5");
  expect_mutation_fails("offsets outside", "\"data_offsets\":[0,128]",
                        "\"data_offsets\":[941000,941128]", 0, "outside the data area");
  expect_mutation_fails("reversed offsets", "\"data_offsets\":[0,128]", "\"data_offsets\":[128,0]",
                        0, "outside the data area");
  expect_mutation_fails("hole in the data area", "\"data_offsets\":[0,128]",
                        "\"data_offsets\":[4,132]", 0, NULL);
  expect_mutation_fails("overlap", "\"data_offsets\":[128,36992]", "\"data_offsets\":[64,36928]", 0,
                        "overlap");
  expect_mutation_fails("offsets not integers", "\"data_offsets\":[0,128]",
                        "\"data_offsets\":[0,128.5]", 0, "data_offsets");
  expect_mutation_fails("missing metadata", "\"__metadata__\"", "\"__metadata_x\"", 0,
                        "'__metadata_x'");
  expect_mutation_fails("wrong format", "styletransfer-graph", "styletransfer-grap", 0,
                        "expected 'styletransfer-graph'");
  expect_mutation_fails("format version 2", "\"format_version\":\"1\"", "\"format_version\":\"2\"",
                        0, "format_version '2'");

  /* Graph errors. */
  expect_mutation_fails("graph not JSON", "\"graph\":\"{", "\"graph\":\"{{", 0,
                        "graph is not valid JSON");
  expect_mutation_fails("unknown op", "\\\"op\\\": \\\"pool\\\"", "\\\"op\\\": \\\"pool3d\\\"", 0,
                        "unknown op 'pool3d'");
  expect_mutation_fails("missing subgraph", "\\\"initial\\\": {", "\\\"initial_x\\\": {", 0,
                        "subgraph 'initial' is missing");
  expect_mutation_fails("missing refine subgraph", "[\\\"refine_0\\\", ", "[\\\"refine_9\\\", ", 0,
                        "subgraph 'refine_9' is missing");
  expect_mutation_fails("weight not in file", "\\\"weight\\\": \\\"enc.c2.weight\\\"",
                        "\\\"weight\\\": \\\"enc.c2.weightX\\\"", 0, "enc.c2.weightX");
  expect_mutation_fails("wrong weight shape", "\\\"weight\\\": \\\"enc.c4.weight\\\"",
                        "\\\"weight\\\": \\\"enc.c3.weight\\\"", 0, "input channels");
  expect_mutation_fails("wrong bias shape", "\\\"bias\\\": \\\"enc.c2.bias\\\"",
                        "\\\"bias\\\": \\\"enc.c3.bias\\\"", 0, "bias");
  expect_mutation_fails("undefined input", "\\\"in\\\": [\\\"st1\\\"]",
                        "\\\"in\\\": [\\\"nowhere\\\"]", 0, "'nowhere' is undefined");
  expect_mutation_fails("bad act", "\\\"act\\\": \\\"relu\\\"", "\\\"act\\\": \\\"gelu\\\"", 0,
                        "unknown act 'gelu'");
  expect_mutation_fails("bad pad", "\\\"pad\\\": \\\"reflect\\\"", "\\\"pad\\\": \\\"mirror\\\"", 0,
                        "unknown pad");
  expect_mutation_fails("bad stride", "\\\"stride\\\": 1", "\\\"stride\\\": 3", 0, "stride");
  expect_mutation_fails("bad pool mode", "\\\"mode\\\": \\\"max\\\"", "\\\"mode\\\": \\\"min\\\"",
                        0, "unknown mode");
  expect_mutation_fails("style_size 0", "\\\"style_size\\\": 64", "\\\"style_size\\\": 0", 1,
                        "style_size");
  expect_mutation_fails("missing output", "\\\"outputs\\\": [\\\"s_gram1\\\"",
                        "\\\"outputs\\\": [\\\"s_gramX\\\"", 0, "'s_gramX' is never computed");
  expect_mutation_fails("reshape size", "\\\"shape\\\": [16, 16]}", "\\\"shape\\\": [16, 17]}", 0,
                        "cannot reshape");
  expect_mutation_fails("wrong input count", "\\\"in\\\": [\\\"st1\\\"]",
                        "\\\"in\\\": [\\\"st1\\\", \\\"st1\\\"]", 0, "inputs, expected");
  expect_mutation_fails("SSA violation", "\\\"out\\\": \\\"st2\\\"", "\\\"out\\\": \\\"st1\\\"", 0,
                        "assigned twice");
  /* Masked moments and [1,H,W] broadcasts (FORMAT.md: moments' mask, add/mul/div). */
  expect_mutation_fails("moments: 3 inputs", "\\\"in\\\": [\\\"st7\\\"], \\\"out\\\": [",
                        "\\\"in\\\": [\\\"st7\\\", \\\"st7\\\", \\\"st7\\\"], \\\"out\\\": [", 0,
                        "(moments): 3 inputs, expected 1 to 2");
  expect_mutation_fails("moments: mask of C channels", "\\\"in\\\": [\\\"st7\\\"], \\\"out\\\": [",
                        "\\\"in\\\": [\\\"st7\\\", \\\"st7\\\"], \\\"out\\\": [", 0,
                        "(moments -> s_mean): mask 'st7' is [64,16,16], not [1,16,16]");
  expect_mutation_fails("moments: mask a matrix", "\\\"in\\\": [\\\"st7\\\"], \\\"out\\\": [",
                        "\\\"in\\\": [\\\"st7\\\", \\\"s_gram1\\\"], \\\"out\\\": [", 0,
                        "mask 's_gram1' is [16,16], not [1,16,16]");
  expect_mutation_fails("moments: mask of other H,W",
                        "{\\\"op\\\": \\\"moments\\\", \\\"in\\\": [\\\"st7\\\"]",
                        "{\\\"op\\\": \\\"reshape\\\", \\\"in\\\": [\\\"s_gram2\\\"], \\\"out\\\": "
                        "\\\"mk\\\", \\\"shape\\\": [1, 32, 32]}, {\\\"op\\\": \\\"moments\\\", "
                        "\\\"in\\\": [\\\"st7\\\", \\\"mk\\\"]",
                        0, "mask 'mk' is [1,32,32], not [1,16,16]");
  expect_mutation_fails("add: [1,H,W] of other H,W",
                        "{\\\"op\\\": \\\"add\\\", \\\"in\\\": [\\\"st7\\\", \\\"s_mean\\\"]",
                        "{\\\"op\\\": \\\"reshape\\\", \\\"in\\\": [\\\"s_gram2\\\"], \\\"out\\\": "
                        "\\\"mk\\\", \\\"shape\\\": [1, 32, 32]}, {\\\"op\\\": \\\"add\\\", "
                        "\\\"in\\\": [\\\"st7\\\", \\\"mk\\\"]",
                        0, "'st7' [64,16,16] and 'mk' [1,32,32] do not match");
  /* A mask [1,H,W] made from the frame's features (in9's 64 channel means as an 8x8 image,
   * resized like in9), in9 * mask (broadcast over the channels) and its moments weighted by the
   * mask, in place of in9's moments. */
  expect_mutation_runs("masked moments, [1,H,W] mul",
                       "{\\\"op\\\": \\\"moments\\\", \\\"in\\\": [\\\"in9\\\"]",
                       "{\\\"op\\\": \\\"moments\\\", \\\"in\\\": [\\\"in9\\\"], "
                       "\\\"out\\\": [\\\"mq0\\\", \\\"mq1\\\"]}, "
                       "{\\\"op\\\": \\\"reshape\\\", \\\"in\\\": [\\\"mq0\\\"], "
                       "\\\"out\\\": \\\"mq2\\\", \\\"shape\\\": [1, 8, 8]}, "
                       "{\\\"op\\\": \\\"resize\\\", \\\"in\\\": [\\\"mq2\\\", \\\"in9\\\"], "
                       "\\\"out\\\": \\\"mq3\\\", \\\"mode\\\": \\\"bilinear\\\"}, "
                       "{\\\"op\\\": \\\"mul\\\", \\\"in\\\": [\\\"in9\\\", \\\"mq3\\\"], "
                       "\\\"out\\\": \\\"mq4\\\"}, "
                       "{\\\"op\\\": \\\"moments\\\", \\\"in\\\": [\\\"mq4\\\", \\\"mq3\\\"]",
                       0);
  expect_mutation_fails("scalar name", "\\\"ka\\\": \\\"strength\\\"", "\\\"ka\\\": \\\"strong\\\"",
                        0, "unknown scalar 'strong'");

  CHECK(st_device_validation_messages(dev) == 0, "validation messages");
  st_device_free(dev);
  remove(tmp_path);
  free(orig);
  if (failures) {
    fprintf(stderr, "%d failure(s)\n", failures);
    return 1;
  }
  printf("ok\n");
  return 0;
}
