/* SPDX-License-Identifier: LGPL-2.1-or-later
 * The graph executor's private definitions, shared by its files (compute/README.md, "Executor"):
 *   net.c          public API: load, weights, style, accessors, timings
 *   net_plan.c     plans: names, shapes (net_infer.c), the activation arena, style and frame plans
 *   net_infer.c    shape inference of one graph op (weights/FORMAT.md rules)
 *   net_record.c   recording a plan's steps; the frame's recordings kept and submitted again
 *   net_frame.c    frame I/O (image and float strategies) and the one frame-run path
 *   net_temporal.c the temporal state's motion and the output smoothing
 *   net_style.c    the style slots and the effective style state (their interpolation)
 */
#ifndef ST_NET_PRIVATE_H
#define ST_NET_PRIVATE_H

#include "internal.h"
#include "model.h"

#define MAX_SIDE 16384
/* Elements of one run-time value at most (as of a file tensor, compute/model.c): far beyond any
 * device's buffers, and small enough that no size computed from it overflows. */
#define MAX_NUMEL ((size_t)1 << 40)
#define MAX_TIMINGS 4096
#define NET_RECORDINGS 2 /* frame recordings kept (the smoothing alternates two buffer sets) */

/* ---- plans (net_plan.c) ------------------------------------------------------------------- */

/* VS_STYLE2: the second style slot's values (two styles by a mask), in its own buffer. */
typedef enum { VS_ARENA = 0, VS_STYLE, VS_STATE, VS_PERSIST, VS_STYLE2 } ValueStore;

typedef struct {
  const char *name;
  int rank;
  int shape[3];
  StDType dtype;
  int root; /* the value owning the memory (itself unless a reshape alias) */
  int def, last;
  ValueStore store;
  VkDeviceSize offset, bytes;
  StTensor t;
} PVal;

typedef struct {
  const StGraphOp *op;
  int *in;
  int nin;
  int out[2];
  int wval; /* run-time conv weight value, or -1 */
  int stage;
  int window;      /* pool: 2, or 4 where the plan fused the pool before it into this one */
  bool fused_away; /* merged into a later step (fuse_pools, fuse_eltwise): not recorded */
  bool alias;      /* its output names its input's memory (reshape, identity act): no work */
  /* the last step of a fused chain of elementwise ops (fuse_eltwise): the chain's steps in order,
   * this one last, recorded here as one dispatch; nchain 0 otherwise */
  int chain[ST_ELT_CHAIN_MAX];
  int nchain;
  char label[64];
} PStep;

typedef struct {
  char *name;
  int rank;
  int shape[3];
  StDType dtype;
  VkDeviceSize offset;
} StyleVal;

typedef struct {
  /* key */
  int pw, ph, steps;
  bool preserve;
  bool masked; /* the model's masked subgraphs (two styles by a mask) */
  unsigned style_gen;
  bool style_plan;
  unsigned gen; /* frame plans: net->plan_gen when made (recordings made from it name it) */
  /* values and steps */
  PVal *vals;
  int nvals, vcap;
  PStep *st;
  int nst, scap;
  int nstages;
  char (*stage_names)[32];
  int input;         /* content (frame plans) or style (style plans) */
  int mask;          /* masked frame plans: the mask input, else -1 */
  int state;         /* VS_STATE value or -1 */
  int x_final;       /* frame plans */
  int state_src;     /* value copied into the temporal state at the end, or -1 */
  int orig;          /* preserve-colors reference at x's size, or -1 (== input when sizes match) */
  int end_step;      /* index used for "at the end of the frame" liveness */
  int *outs;         /* style plans: value of each style output */
  bool state_resize; /* state_src is not at the processing size: resized into the state */
  /* Frame plans: the step whose 4x4 average pool of the content is the first work and the
   * content's only reader (steps 0), or -1. Where a recording's upload does it
   * (st_upload_pool_step), st_record_steps skips it. */
  int upload_pool;
  VkDeviceSize arena_size, persist_size;
  StBuffer arena;
} Plan;

/* ---- recordings (net_record.c) ------------------------------------------------------------ */

/* What a frame's command buffer depends on besides the plan's contents; a recording is submitted
 * again while its key is unchanged. Compared with memcmp: always made with memset first. */
typedef struct {
  unsigned plan_gen, res_gen; /* the plan, and every buffer the frame binds */
  bool image_io;              /* st_net_process (frame layouts) or st_net_run_float */
  StFrameLayout lin, lout;
  bool preserve;
  int state_op; /* STATE_* */
  int dx, dy;   /* STATE_TRANSLATE */
  float strength, state_valid;
  int blend; /* BLEND_* */
  int blend_cur;
  StBlendParams bp;
  int flow_bw, flow_bh;
  bool per_op;
} RecKey;

enum { STATE_NONE = 0, STATE_ZERO, STATE_KEEP, STATE_TRANSLATE };
enum { BLEND_OFF = 0, BLEND_COPY, BLEND_MIX };

typedef struct {
  StCmd *cmd;
  RecKey key;
  bool valid; /* recorded from `key` and submittable */
} Recording;

/* ---- style slots (net_style.c) ------------------------------------------------------------ */

/* The style subgraph's outputs for one style image. */
typedef struct {
  StBuffer buf;
  StyleVal *vals; /* NULL: the slot is empty */
  int nvals;
  VkDeviceSize size;
} StyleSlot;
enum { STYLE_MAIN = 0, STYLE_SECOND, STYLE_FROM, STYLE_SLOTS };

/* ---- the network -------------------------------------------------------------------------- */

struct StNet {
  StDevice *dev;
  StModel *model;
  bool fp16;
  StBuffer weights;
  StTensor *wt; /* per file tensor */
  StTensor *wg; /* per file tensor: its Winograd transform (net.c), .buf NULL where none; or NULL */
  /* style state: the slots, and the effective state that frame plans read (style_vals, in
   * style_buf), updated from the slots with the weights mix_w (main, second, from) */
  bool has_style;
  uint8_t *mask_px; /* the frame's mask at frame size (st_mask_composite) */
  size_t mask_px_size;
  StBuffer mask_up; /* masked frames: the mask at the processing size, floats */
  StyleSlot slots[STYLE_SLOTS];
  StyleVal *style2_vals; /* the second slot's values under their masked names, or NULL */
  int nstyle2;
  unsigned style_gen;   /* the effective state's layout (frame plans are keyed by it) */
  unsigned style_epoch; /* a new style without crossfade (the temporal state starts afresh) */
  StyleVal *style_vals;
  int nstyle;
  StBuffer style_buf;
  float mix_w[STYLE_SLOTS];
  float mix_fade; /* the crossfade's progress last applied */
  bool mix_valid; /* style_buf holds the slots' blend with mix_w */
  /* temporal state */
  StBuffer state_buf;
  StBuffer state_tmp; /* the translated state before it is copied back */
  int state_w, state_h;
  bool state_valid;
  /* global motion: luma of the previous frame at the motion resolution */
  StLuma luma_prev, luma_cur;
  bool luma_prev_valid;
  int motion_dx, motion_dy; /* applied in the last frame (processing px) */
  StFlow field;             /* local motion of the last frame (motion px), for the smoothing */
  bool field_valid;
  /* temporal smoothing of the output: previous output and content at the output's size,
   * double-buffered ([cur] is written by this frame), and the motion field uploaded per frame */
  StBuffer blend_out[2], blend_in[2], flow_buf;
  StTensor blend_t[4]; /* this frame's output, content, previous output, previous content */
  StTensor blend_flow; /* this frame's motion field (in flow_buf) */
  StBlendParams blend_bp;
  int blend_w, blend_h, blend_cur;
  bool blend_valid, blend_pending;
  unsigned blend_style_epoch;
  int blend_steps;
  float blend_strength;
  bool blend_preserve;
  /* current frame plan */
  Plan *plan;
  unsigned plan_gen;
  /* frame I/O */
  StBuffer up, up_dev, down, down_dev;
  /* Incremented whenever a buffer that frame recordings bind is made again (net_buffer). */
  unsigned res_gen;
  Recording rec[NET_RECORDINGS];
  int rec_last; /* the recording submitted last */
  /* timing */
  bool per_op;
  StTiming *timings;
  int ntimings;
  StHostTiming host; /* of the last frame */
};

/* ---- helpers shared by the executor's files ---------------------------------------------- */

/* ST_ERROR_MODEL "model <path>: ..." (returns false). */
bool st_net_perr(StError *err, const StModel *m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void st_net_prefix_error(StError *err, const char *prefix);
void st_net_shape_str(char *s, size_t n, int rank, const int *shape);
size_t st_net_numel(int rank, const int *shape);

/* net_plan.c */
void st_plan_free(StDevice *dev, Plan *p);
Plan *st_plan_style(StNet *net, int sw, int sh, StError *err);
/* style2: NULL, or (a masked plan: the model's masked subgraphs) the second style's values
 * under their masked names (st_style_vals_second), in the second slot's buffer. */
Plan *st_plan_frame(StNet *net, const StyleVal *style, int nstyle, const StyleVal *style2,
                    int nstyle2, int pw, int ph, int steps, bool preserve, StError *err);
/* The values of a style state seen as the second style of masked subgraphs: those named s_*
 * renamed with the model's style2_prefix (same offsets); *n2 of them. */
StyleVal *st_style_vals_second(const StModel *m, const StyleVal *sv, int n, int *n2, StError *err);
/* Points every value's StTensor at its memory (persist: the style plan's output buffer). */
void st_plan_bind(StNet *net, Plan *p, StBuffer *persist);
StyleVal *st_style_vals_of(const StNet *net, const Plan *p, int *n, StError *err);
void st_style_vals_free(StyleVal *sv, int n);
/* The dry-run plans of st_net_load (style at style_size, a small frame with every step). */
bool st_net_check_graph(StNet *net, StError *err);

/* net_infer.c: output ranks and shapes of one op from its inputs' values. */
bool st_net_infer(const StNet *net, const Plan *p, const StSubgraph *sg, int opi,
                  const StGraphOp *op, const int *in, int wval, int *rank, int shape[2][3],
                  StError *err);

/* net_record.c */
typedef struct {
  float strength;    /* the element's strength */
  float state_valid; /* 1 when the temporal state holds the previous frame's value, else 0 */
} Scalars;
/* Records all steps of a plan but `skip` (-1: none) with marks per stage (or per op). */
bool st_record_steps(StNet *net, StCmd *cmd, Plan *p, const Scalars *sc, int skip, StError *err);
/* The plan's upload_pool when the recording for `key` does that pool in its upload (image
 * frames without smoothing, which copies the content), else -1. */
int st_upload_pool_step(const Plan *p, const RecKey *key);
void st_net_save_timings(StNet *net, StCmd *cmd);
/* The recording for `key`: an earlier one (*reused) or one reset for recording (key stored,
 * not yet valid). NULL with err set when no command buffer could be made. */
Recording *st_recording_get(StNet *net, const RecKey *key, bool *reused, StError *err);
void st_recordings_free(StNet *net);

/* net_frame.c */
typedef struct {
  int nplanes;
  size_t rowbytes[3];
  int rows[3];
} PlaneInfo;
/* Checks an image (size, format, colorimetry, planes, strides, the device's binding limit). */
bool st_net_image_info(const StDevice *dev, const StImage *img, const char *what, PlaneInfo *pi,
                       StError *err);
/* Copies an image's planes into the upload buffer (device layout in *lay, *size bytes). */
bool st_net_stage_image(StNet *net, const StImage *img, const PlaneInfo *pi, StFrameLayout *lay,
                        VkDeviceSize *size, StError *err);
/* Records the staged image's copy to device memory where frames go through it; returns the
 * buffer the shaders read it from. */
StBuffer *st_net_record_image_upload(StNet *net, StCmd *cmd, VkDeviceSize size);
/* (Re)allocates one of the net's buffers to hold `size` bytes (headroom added);
 * bumps res_gen when it makes a new buffer. */
bool st_net_buffer(StNet *net, StBuffer *b, VkDeviceSize size, StMemKind kind, StError *err);

/* net_mask.c */
bool st_mask_check(const StMask *m, StError *err);
/* The mask scaled bilinearly to w x h, as 0..1 floats and/or bytes (either may be NULL). */
void st_mask_resize(const StMask *m, int w, int h, float *outf, uint8_t *outb);
/* out = in + mask * (out - in), sample by sample (in and out: the same format and size). */
bool st_mask_composite(StNet *net, const StMask *m, const StImage *in, StImage *out, StError *err);

/* net_style.c */
void st_styles_free(StNet *net);
/* Brings the effective style state to this frame's style_mix / style_fade (a submission of its
 * own when they or a slot changed; nothing otherwise). */
bool st_style_prepare(StNet *net, const StFrameParams *params, bool masked, StError *err);

/* net_temporal.c */
bool st_uses_motion(const Plan *p, const StFrameParams *params);
bool st_have_prev_frame(const StNet *net, const StFrameParams *params);
void st_frame_motion(StNet *net, const StFrameParams *params, bool have_prev, int pw,
                     bool have_cur);
/* Host side of the smoothing before recording: its buffers, which ones this frame uses, the
 * motion field written for the GPU; fills the key's blend fields. */
bool st_blend_prepare(StNet *net, Plan *p, const StFrameParams *params, int pw, int ph, RecKey *key,
                      StError *err);
/* Recorded before the network (whose arena reuses the input's memory): this frame's content
 * at the output's size. */
bool st_blend_record_input(StNet *net, StCmd *cmd, Plan *p, const RecKey *key, StError *err);
/* Blends p's final x with the previous output; *out is the image to download. */
bool st_blend_record(StNet *net, StCmd *cmd, Plan *p, const RecKey *key, const StTensor **out,
                     StError *err);
/* The new output and content become the previous ones once the frame's submission succeeded. */
void st_blend_finish(StNet *net, const StFrameParams *params);
/* The temporal state's handling this frame (STATE_*; the translation in key->dx, dy). */
void st_state_prepare(StNet *net, const Plan *p, const StFrameParams *params, RecKey *key);
/* Records the state's translation or zeroing, the steps and the state's update. */
bool st_record_network(StNet *net, StCmd *cmd, Plan *p, const RecKey *key, StError *err);

#endif /* ST_NET_PRIVATE_H */
