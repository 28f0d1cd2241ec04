/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Specialization-constant ids of the compute shaders, one id per meaning across every shader,
 * shared by the C side (compute/ops.c fills `int32_t spec[ST_SPEC_COUNT]` by these names) and the
 * GLSL side (common.glsl includes this file; shaders declare
 * `layout(constant_id = ST_SPEC_ACT) const int ACT = 0;`). Only #define lines: valid C and GLSL.
 * A shader ignores the ids it does not declare.
 */
#ifndef ST_SPEC_IDS_H
#define ST_SPEC_IDS_H

#define ST_SPEC_DT_MASK 0   /* every shader: bit B selects the fp16 view of binding B (_f16) */
#define ST_SPEC_ACT 1       /* activation (ACT_* of common.glsl = StAct) */
#define ST_SPEC_HAS_BIAS 2  /* convolutions, linear: binding 2 holds a bias */
#define ST_SPEC_REFLECT 3   /* 3x3 convolutions: reflect padding instead of zeros */
#define ST_SPEC_K 4         /* conv2d, conv2d_tiled: kernel size 1 or 3 */
#define ST_SPEC_STRIDE 5    /* conv2d, conv2d_tiled: stride 1 or 2 */
#define ST_SPEC_WVEC 6      /* subgroup convolutions: vec4 weight loads (I % 4 == 0) */
#define ST_SPEC_XVEC 7      /* conv3x3_sg: vec4 row loads and stores (W % 4 == 0) */
#define ST_SPEC_MODE 8      /* pool: 0 avg, 1 max; resize: 0 nearest, 1 bilinear, 2 translate */
#define ST_SPEC_ELT_OP 9    /* eltwise: 0 act(a), 1 add, 2 mul, 3 div */
#define ST_SPEC_BCAST 10    /* eltwise: 1 b is [C] (over H*W), 2 b is [1,H,W] (over C) */
#define ST_SPEC_CENTER 11   /* gram_sg, matmul: subtract each row's mean first */
#define ST_SPEC_SQRT 12     /* gram_sg, matmul: sqrt(max(g, 0) + 1e-8) */
#define ST_SPEC_KVEC 13     /* gram_sg: vec4 loads (K % 4 == 0) */
#define ST_SPEC_TA 14       /* matmul: transpose a */
#define ST_SPEC_TB 15       /* matmul: transpose b */
#define ST_SPEC_PACKED32 16 /* frame shaders: one 32-bit word per pixel (RGBA/BGRA/RGBx/BGRx) */
#define ST_SPEC_MASKED 17   /* moments: binding 3 holds a weight mask [1,H,W] */
#define ST_SPEC_VEC4 18     /* copy, eltwise, pool, resize (2x bilinear): vec4 access */
#define ST_SPEC_CHAIN 19    /* eltwise: the stages after the first of a fused chain (eltwise.comp) */
#define ST_SPEC_COUNT 20

#endif /* ST_SPEC_IDS_H */
