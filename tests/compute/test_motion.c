/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Global motion estimation (compute/motion.c) on synthetic frames: known pans are found exactly
 * (with sensor noise, in RGBA and I420 frames and from float images), a still scene with noise,
 * a small object moving on a still background and unrelated pictures give no motion. CPU only.
 */
#include "check.h"
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Smooth random texture: value noise (hashed lattice, bilinear) at three scales. */
static double lattice(int x, int y, int seed) {
  unsigned h = (unsigned)x * 374761393u + (unsigned)y * 668265263u + (unsigned)seed * 2654435761u;
  h = (h ^ (h >> 13)) * 1274126177u;
  return (double)((h ^ (h >> 16)) & 0xffff) / 65535.0;
}

static double value_noise(double x, double y, double cell, int seed) {
  double fx = x / cell, fy = y / cell;
  int ix = (int)floor(fx), iy = (int)floor(fy);
  double tx = fx - ix, ty = fy - iy;
  double a = lattice(ix, iy, seed), b = lattice(ix + 1, iy, seed);
  double c = lattice(ix, iy + 1, seed), d = lattice(ix + 1, iy + 1, seed);
  return (a * (1 - tx) + b * tx) * (1 - ty) + (c * (1 - tx) + d * tx) * ty;
}

/* A textured scene, luma 0..255 at any (x, y). */
static float scene(double x, double y, int seed) {
  double v = 20.0 + 120.0 * value_noise(x, y, 23.0, seed) +
             80.0 * value_noise(x, y, 7.0, seed + 1) + 30.0 * value_noise(x, y, 3.0, seed + 2);
  return (float)(v < 0 ? 0 : v > 255 ? 255 : v);
}

static unsigned rng_state = 12345;
static double noise(double sigma) { /* approximately Gaussian (sum of 4 uniforms) */
  double s = 0;
  for (int i = 0; i < 4; i++) {
    rng_state = rng_state * 1103515245u + 12345u;
    s += (double)((rng_state >> 8) & 0xffff) / 65535.0 - 0.5;
  }
  return s * sigma * sqrt(3.0);
}

static uint8_t clamp8(double v) { return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : lround(v)); }

/* RGBA frame of the scene seen from offset (ox, oy), grey, plus noise; an optional square
 * object at (bx, by). */
static StImage rgba_frame(int w, int h, int ox, int oy, int seed, double sigma, int bx, int by) {
  StImage im = {0};
  im.format = ST_FORMAT_RGBA;
  im.width = w;
  im.height = h;
  im.strides[0] = 4 * w;
  im.planes[0] = malloc((size_t)4 * w * h);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      double v = scene(x + ox, y + oy, seed);
      if (bx >= 0 && x >= bx && x < bx + 12 && y >= by && y < by + 12)
        v = 250.0;
      uint8_t *p = im.planes[0] + (size_t)4 * (y * w + x);
      p[0] = clamp8(v + noise(sigma));
      p[1] = clamp8(v + noise(sigma));
      p[2] = clamp8(v + noise(sigma));
      p[3] = 255;
    }
  return im;
}

static int estimate(const StImage *a, const StImage *b, int mw, int mh, int *dx, int *dy) {
  StLuma la = {0}, lb = {0};
  int ok = st_luma_from_image(a, mw, mh, &la) && st_luma_from_image(b, mw, mh, &lb) &&
           st_motion_estimate(&la, &lb, dx, dy);
  st_luma_free(&la);
  st_luma_free(&lb);
  return ok;
}

static void test_pans(void) {
  static const int shifts[][2] = {{2, 1}, {0, 0}, {-3, 2}, {7, -5}, {-1, 0}, {12, 9}, {0, -20}};
  const int w = 256, h = 192;
  for (size_t i = 0; i < sizeof shifts / sizeof shifts[0]; i++) {
    int sx = shifts[i][0], sy = shifts[i][1];
    /* frame b pixel (x, y) shows frame a pixel (x + sx, y + sy) */
    StImage a = rgba_frame(w, h, 40, 30, 1, 2.0, -1, 0);
    StImage b = rgba_frame(w, h, 40 + sx, 30 + sy, 1, 2.0, -1, 0);
    int dx = 99, dy = 99;
    CHECK(estimate(&a, &b, w, h, &dx, &dy), "estimate failed");
    CHECK(dx == sx && dy == sy, "pan (%d, %d): estimated (%d, %d)", sx, sy, dx, dy);
    free(a.planes[0]);
    free(b.planes[0]);
  }
}

static void test_no_motion(void) {
  const int w = 200, h = 150;
  int dx = 99, dy = 99;
  /* still camera, fresh noise */
  StImage a = rgba_frame(w, h, 0, 0, 2, 4.0, -1, 0);
  StImage b = rgba_frame(w, h, 0, 0, 2, 4.0, -1, 0);
  CHECK(estimate(&a, &b, w, h, &dx, &dy) && dx == 0 && dy == 0, "still + noise: (%d, %d)", dx, dy);
  free(b.planes[0]);
  /* a small object moves by 6 px on a still background */
  StImage c = rgba_frame(w, h, 0, 0, 2, 4.0, 60, 50);
  StImage d = rgba_frame(w, h, 0, 0, 2, 4.0, 66, 50);
  CHECK(estimate(&c, &d, w, h, &dx, &dy) && dx == 0 && dy == 0, "moving object: (%d, %d)", dx, dy);
  /* unrelated pictures (a cut): no shift explains it */
  StImage e = rgba_frame(w, h, 500, 300, 7, 4.0, -1, 0);
  CHECK(estimate(&a, &e, w, h, &dx, &dy), "estimate failed");
  printf("cut: (%d, %d)\n", dx, dy);
  free(a.planes[0]);
  free(c.planes[0]);
  free(d.planes[0]);
  free(e.planes[0]);
}

/* Frames larger than ST_MOTION_MAX_SIDE are estimated at a reduced size: the result, scaled
 * back, is within one reduction step; and I420 / float inputs agree with RGBA. */
static void test_sizes_and_formats(void) {
  const int w = 640, h = 360;
  int mw, mh;
  st_motion_size(w, h, &mw, &mh);
  CHECK(mw == 320 && mh == 180, "motion size of 640x360: %dx%d", mw, mh);
  StImage a = rgba_frame(w, h, 10, 10, 3, 2.0, -1, 0);
  StImage b = rgba_frame(w, h, 10 + 8, 10 - 4, 3, 2.0, -1, 0);
  int dx, dy;
  CHECK(estimate(&a, &b, mw, mh, &dx, &dy) && dx == 4 && dy == -2,
        "640x360 pan (8, -4) at half size: (%d, %d)", dx, dy);
  /* the same frames as I420 (Y plane = luma) */
  StImage ya[2];
  const StImage *src[2] = {&a, &b};
  for (int k = 0; k < 2; k++) {
    memset(&ya[k], 0, sizeof ya[k]);
    ya[k].format = ST_FORMAT_I420;
    ya[k].width = w;
    ya[k].height = h;
    ya[k].strides[0] = w + 16; /* padded rows */
    ya[k].planes[0] = calloc((size_t)(w + 16) * h, 1);
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++)
        ya[k].planes[0][(size_t)y * (w + 16) + x] = src[k]->planes[0][(size_t)4 * (y * w + x)];
  }
  CHECK(estimate(&ya[0], &ya[1], mw, mh, &dx, &dy) && dx == 4 && dy == -2, "I420: (%d, %d)", dx,
        dy);
  /* float RGB planes */
  float *fa = malloc(sizeof *fa * 3 * (size_t)w * h), *fb = malloc(sizeof *fb * 3 * (size_t)w * h);
  for (int c = 0; c < 3; c++)
    for (size_t i = 0; i < (size_t)w * h; i++) {
      fa[c * (size_t)w * h + i] = a.planes[0][4 * i + (size_t)c] / 255.0f;
      fb[c * (size_t)w * h + i] = b.planes[0][4 * i + (size_t)c] / 255.0f;
    }
  StLuma la = {0}, lb = {0};
  CHECK(st_luma_from_float(fa, w, h, mw, mh, &la) && st_luma_from_float(fb, w, h, mw, mh, &lb) &&
            st_motion_estimate(&la, &lb, &dx, &dy) && dx == 4 && dy == -2,
        "float: (%d, %d)", dx, dy);
  /* the RGBA frame read in place gives the luma of its float copy */
  StLuma lr = {0};
  double maxd = 0.0;
  CHECK(st_luma_from_image(&a, mw, mh, &lr) && lr.w == la.w && lr.h == la.h, "rgba luma");
  for (int i = 0; lr.y && la.y && i < lr.w * lr.h; i++)
    maxd = fmax(maxd, fabs((double)lr.y[i] - (double)la.y[i]));
  CHECK(maxd < 1e-3, "rgba and float luma differ by %g", maxd);
  st_luma_free(&lr);
  st_luma_free(&la);
  st_luma_free(&lb);
  free(fa);
  free(fb);
  for (int k = 0; k < 2; k++)
    free(ya[k].planes[0]);
  free(a.planes[0]);
  free(b.planes[0]);
  /* tiny images: no estimate, no crash */
  StLuma t1 = {0}, t2 = {0};
  StImage s1 = rgba_frame(5, 3, 0, 0, 1, 0.0, -1, 0), s2 = rgba_frame(5, 3, 1, 0, 1, 0.0, -1, 0);
  CHECK(st_luma_from_image(&s1, 5, 3, &t1) && st_luma_from_image(&s2, 5, 3, &t2), "tiny luma");
  CHECK(!st_motion_estimate(&t1, &t2, &dx, &dy) && dx == 0 && dy == 0, "tiny: (%d, %d)", dx, dy);
  st_luma_free(&t1);
  st_luma_free(&t2);
  free(s1.planes[0]);
  free(s2.planes[0]);
}

/* The local motion field: a pan gives its shift in every block; an object moving on a still
 * background gives its own motion in the blocks well inside it and none far from it. */
static void test_field(void) {
  const int w = 160, h = 120;
  StLuma la = {0}, lb = {0};
  StFlow f = {0};
  /* pan by (3, -2) with noise */
  StImage a = rgba_frame(w, h, 40, 30, 3, 2.0, -1, 0);
  StImage b = rgba_frame(w, h, 43, 28, 3, 2.0, -1, 0);
  int dx = 0, dy = 0;
  CHECK(st_luma_from_image(&a, w, h, &la) && st_luma_from_image(&b, w, h, &lb) &&
            st_motion_estimate(&la, &lb, &dx, &dy),
        "estimate failed");
  CHECK(dx == 3 && dy == -2, "pan: global (%d, %d)", dx, dy);
  CHECK(st_motion_field(&la, &lb, dx, dy, &f), "field failed");
  CHECK(f.bw == w / ST_FLOW_BLOCK && f.bh == h / ST_FLOW_BLOCK && f.block == ST_FLOW_BLOCK,
        "field grid %dx%d block %d", f.bw, f.bh, f.block);
  int wrong = 0;
  for (int i = 0; i < f.bw * f.bh; i++)
    wrong += f.v[i] != 3.0f || f.v[f.bw * f.bh + i] != -2.0f;
  CHECK(wrong == 0, "pan: %d of %d blocks off the global motion", wrong, f.bw * f.bh);
  free(a.planes[0]);
  free(b.planes[0]);
  /* still background, a textured 40x40 patch moving by (-3, 2): frame d at the patch shows
   * frame c at (x - 3, y + 2) */
  StImage c = rgba_frame(w, h, 0, 0, 4, 2.0, -1, 0);
  StImage d = rgba_frame(w, h, 0, 0, 4, 2.0, -1, 0);
  const int px = 60, py = 40, side = 40;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      uint8_t *pc = c.planes[0] + (size_t)4 * (y * w + x);
      uint8_t *pd = d.planes[0] + (size_t)4 * (y * w + x);
      if (x >= px && x < px + side && y >= py && y < py + side)
        pc[0] = pc[1] = pc[2] = clamp8(scene(x, y, 9));
      int sx = x - 3, sy = y + 2; /* where d's patch pixel comes from in c */
      if (sx >= px && sx < px + side && sy >= py && sy < py + side)
        pd[0] = pd[1] = pd[2] = clamp8(scene(sx, sy, 9));
    }
  CHECK(st_luma_from_image(&c, w, h, &la) && st_luma_from_image(&d, w, h, &lb) &&
            st_motion_estimate(&la, &lb, &dx, &dy),
        "estimate failed");
  CHECK(dx == 0 && dy == 0, "moving patch: global (%d, %d)", dx, dy);
  CHECK(st_motion_field(&la, &lb, dx, dy, &f), "field failed");
  int inside = 0, inside_ok = 0, far = 0, far_ok = 0;
  for (int j = 0; j < f.bh; j++)
    for (int i = 0; i < f.bw; i++) {
      /* block extent in d's pixels */
      int x0 = i * f.block, y0 = j * f.block, x1 = x0 + f.block, y1 = y0 + f.block;
      float vx = f.v[j * f.bw + i], vy = f.v[(f.bh + j) * f.bw + i];
      if (x0 >= px + 3 + 4 && x1 <= px + 3 + side - 4 && y0 >= py - 2 + 4 &&
          y1 <= py - 2 + side - 4) {
        inside++;
        inside_ok += vx == -3.0f && vy == 2.0f;
      } else if (x1 < px - 12 || x0 > px + side + 12 || y1 < py - 12 || y0 > py + side + 12) {
        far++;
        far_ok += vx == 0.0f && vy == 0.0f;
      }
    }
  CHECK(inside > 0 && inside_ok == inside, "patch: %d of %d inner blocks found its motion",
        inside_ok, inside);
  CHECK(far > 0 && far_ok == far, "background: %d of %d far blocks still", far_ok, far);
  free(c.planes[0]);
  free(d.planes[0]);
  st_flow_free(&f);
  st_luma_free(&la);
  st_luma_free(&lb);
}

int main(void) {
  test_pans();
  test_no_motion();
  test_sizes_and_formats();
  test_field();
  if (failures)
    fprintf(stderr, "%d failure(s)\n", failures);
  else
    printf("all motion checks passed\n");
  return failures ? 1 : 0;
}
