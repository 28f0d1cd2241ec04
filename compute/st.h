/* SPDX-License-Identifier: LGPL-2.1-or-later
 * styletransfer compute engine: public C API (no GStreamer dependency).
 *
 * Objects:
 *   StDevice  a Vulkan instance + logical device + compute queue (+ pipeline cache).
 *   StNet     a loaded model (weights on the device, parsed graph) plus its running
 *             state: the cached style state and the temporal state of one stream.
 *
 * Errors: every function that can fail takes a `StError *` (may be NULL) and returns
 * NULL/false on failure with a human-readable message in err->message.
 *
 * Thread-safety: an StDevice and the StNets made on it must be used from one thread
 * at a time (the element serialises calls with its own lock).
 */
#ifndef ST_H
#define ST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  ST_OK = 0,
  ST_ERROR_NO_DEVICE, /* no Vulkan loader / no device / index out of range */
  ST_ERROR_VULKAN,    /* a Vulkan call failed */
  ST_ERROR_MODEL,     /* model file missing, unreadable or invalid */
  ST_ERROR_ARGUMENT,  /* bad argument (size, format, values) */
  ST_ERROR_NO_STYLE,  /* process called before a style was set */
  ST_ERROR_MEMORY,    /* host or device allocation failed */
} StStatus;

typedef struct {
  StStatus code;
  char message[1024];
} StError;

typedef struct StDevice StDevice;
typedef struct StNet StNet;

/* ---- diagnostics ------------------------------------------------------ */

typedef enum { ST_LOG_ERROR = 0, ST_LOG_WARNING, ST_LOG_INFO } StLogLevel;
/* Receives what the engine reports outside a call's StError: Vulkan validation messages, a
 * validation layer that is missing, resources leaked after a device hang. Process-wide; the
 * default (NULL) drops them: the engine never writes to stdout or stderr. Set it before devices
 * are created; it is called from the threads that use the engine. */
typedef void (*StLogFunc)(StLogLevel level, const char *message, void *user_data);
void st_set_log_func(StLogFunc func, void *user_data);

/* ---- devices ---------------------------------------------------------- */

typedef struct {
  int index;                       /* -1: automatic (discrete > integrated > virtual > cpu) */
  bool enable_validation;          /* enable VK_LAYER_KHRONOS_validation when present */
  bool require_validation_clean;   /* st_device_validation_messages() counts messages */
  const char *pipeline_cache_path; /* NULL: $XDG_CACHE_HOME/styletransfer/pipelines-<uuid>.bin */
  /* NULL or "": select by `index`. Otherwise the device with this id, whatever its index (indices
   * differ between processes and ignore CUDA_VISIBLE_DEVICES): its UUID, 32 hex digits with or
   * without dashes, case-insensitive, nvidia-smi's "GPU-" prefix allowed; or its PCI bus id
   * "[pci:][DOMAIN:]BB:DD.F" (hex, as lspci or nvidia-smi print it), known on devices with
   * VK_EXT_pci_bus_info. A malformed id fails with ST_ERROR_ARGUMENT, an unknown one with
   * ST_ERROR_NO_DEVICE and a message listing every device's ids. */
  const char *id;
} StDeviceOptions;

/* Fills `opts` with defaults (index -1, validation from env ST_VALIDATION=1). With
 * ST_VALIDATION_FATAL=1 in the environment, the first validation message also makes every later
 * command submission on the device fail with an error that quotes it. */
void st_device_options_init(StDeviceOptions *opts);
StDevice *st_device_new(const StDeviceOptions *opts, StError *err);
void st_device_free(StDevice *dev);
const char *st_device_name(const StDevice *dev);
bool st_device_is_cpu(const StDevice *dev); /* lavapipe / llvmpipe / other CPU device */
bool st_device_has_fp16_storage(const StDevice *dev);
/* Number of validation-layer messages (warnings and errors) seen so far. */
unsigned st_device_validation_messages(const StDevice *dev);
/* Lists devices: returns count, writes up to `max` names into names[i] (static strings owned by
 * the loader call; copy them). May be called without a device. */
int st_list_devices(char names[][256], int max, StError *err);

/* A device's ids as text, "" when the device does not report them: the UUID (VkPhysicalDeviceID-
 * Properties::deviceUUID; on NVIDIA the UUID nvidia-smi prints after "GPU-") and the PCI bus id
 * (VK_EXT_pci_bus_info). */
#define ST_DEVICE_UUID_LEN 37 /* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" and the NUL */
#define ST_DEVICE_PCI_LEN 20  /* "dddd:bb:dd.f" (domain up to 8 digits) and the NUL */
typedef struct {
  char name[256];
  char uuid[ST_DEVICE_UUID_LEN];
  char pci_bus_id[ST_DEVICE_PCI_LEN];
} StDeviceInfo;
const char *st_device_uuid(const StDevice *dev);
const char *st_device_pci_bus_id(const StDevice *dev);
/* Bytes of device memory the engine's buffers on `dev` hold now (weights, feature maps, frames,
 * style and temporal state), from any thread. $ST_DEVICE_MEMORY_LIMIT_MB, read when the device is
 * opened, caps it: an allocation past the cap fails with ST_ERROR_MEMORY, as on an exhausted
 * device. */
uint64_t st_device_memory_in_use(const StDevice *dev);
/* Whether `dev` can be handed to new work as it is, with the pipelines compiled on it: it was
 * never lost and no fence wait on it ever timed out, it holds no buffers, it has seen no
 * validation message under ST_VALIDATION_FATAL, and the environment variables it read when it
 * was opened (ST_VALIDATION, ST_VALIDATION_FATAL, ST_GPU_TIMEOUT_MS, ST_DEVICE_MEMORY_LIMIT_MB,
 * ST_FORCE_DEVICE_COPIES, ST_DISABLE_FP16, XDG_CACHE_HOME, ST_CONV_KERNEL, ST_CONV_GENERIC,
 * ST_GRAM_KERNEL, ST_LINEAR_KERNEL) still have the same values. For a pool of idle devices; a
 * device is still used by one thread at a time. */
bool st_device_reusable(const StDevice *dev);
/* Like st_list_devices, with the ids: returns the count (-1 on error), fills up to `max`. */
int st_list_device_info(StDeviceInfo *out, int max, StError *err);

/* ---- pixel formats ---------------------------------------------------- */

/* The layout of every format (plane, byte offset, sample step, subsampling, bit depth of each
 * component) is described once, in compute/format.c; the shaders read it from push constants.
 * Chroma of 4:2:0 and 4:2:2 formats covers 2x2 or 2x1 pixel blocks (ceil(w/2) samples a row for
 * odd widths); packed 4:2:2 rows hold ceil(w/2) pixel pairs, and the second luma sample of the
 * last pair of an odd width repeats the last pixel on output. */
typedef enum {
  ST_FORMAT_RGBA = 0,
  ST_FORMAT_BGRA,
  ST_FORMAT_RGBX,
  ST_FORMAT_BGRX,
  ST_FORMAT_I420,
  ST_FORMAT_NV12,
  ST_FORMAT_RGB,     /* packed 24-bit R, G, B (rows not 4-byte aligned) */
  ST_FORMAT_BGR,     /* packed 24-bit B, G, R */
  ST_FORMAT_YUY2,    /* packed 4:2:2: Y0 U Y1 V */
  ST_FORMAT_UYVY,    /* packed 4:2:2: U Y0 V Y1 */
  ST_FORMAT_YVYU,    /* packed 4:2:2: Y0 V Y1 U */
  ST_FORMAT_P010,    /* P010_10LE: Y plane, interleaved UV plane (4:2:0), 16-bit little-endian
                        words with the value in the high 10 bits */
  ST_FORMAT_I420_10, /* I420_10LE: Y, U, V planes (4:2:0), 16-bit little-endian words with the
                        value in the low 10 bits */
  ST_FORMAT_COUNT
} StPixelFormat;

/* YCbCr matrix of YUV formats (RGB formats need none). DEFAULT is BT.601. */
typedef enum {
  ST_MATRIX_DEFAULT = 0,
  ST_MATRIX_BT601,
  ST_MATRIX_BT709,
  ST_MATRIX_BT2020,
} StColorMatrix;

/* Range of the code values. DEFAULT: limited for YUV formats, full for RGB formats. Limited:
 * Y (and R, G, B) 16..235, Cb/Cr 16..240 for 8 bits (x4 for 10 bits: 64..940, 64..960); full:
 * 0..255 (0..1023), chroma centred on 128 (512). As GStreamer's GstVideoColorRange. */
typedef enum {
  ST_RANGE_DEFAULT = 0,
  ST_RANGE_LIMITED,
  ST_RANGE_FULL,
} StColorRange;

/* A frame in host memory. planes/strides as in GstVideoFrame (st_format_planes gives the planes
 * of a format). Width/height may be odd. matrix/range: the frame's colorimetry (zero: defaults). */
typedef struct {
  StPixelFormat format;
  int width, height;
  uint8_t *planes[3];
  int strides[3];
  StColorMatrix matrix;
  StColorRange range;
} StImage;

/* Name of a format as GStreamer spells it ("YUY2", "P010_10LE", ...); NULL if unknown. */
const char *st_format_name(StPixelFormat format);
/* Number of planes of a width x height frame (0 for an unknown format or a size below 1), with
 * the bytes of pixel data in a row (the smallest stride) and the rows of each plane. */
int st_format_planes(StPixelFormat format, int width, int height, int rowbytes[3], int rows[3]);

/* ---- networks --------------------------------------------------------- */

typedef struct {
  bool fp16; /* fp16 storage of feature maps/weights when the device supports it */
} StNetOptions;

StNet *st_net_load(StDevice *dev, const char *model_path, const StNetOptions *opts, StError *err);
void st_net_free(StNet *net);
/* The number of refine subgraphs (steps beyond repeat the last). */
int st_net_max_steps(const StNet *net);
/* Whether the model can put two styles in one frame split by a mask (its masked subgraphs,
 * weights/FORMAT.md): StFrameParams.mask with a second style set is refused otherwise. */
bool st_net_has_masked_styles(const StNet *net);

/* Sets the style image (any size >= 1x1; RGBA-like or YUV formats). Runs the style subgraph
 * once; the result is cached until the next call. */
bool st_net_set_style(StNet *net, const StImage *style, StError *err);
bool st_net_has_style(const StNet *net);
/* The longer side, in pixels, that style images are resized to (the model's style_size): a
 * larger image carries nothing more. */
int st_net_style_size(const StNet *net);

/* Several styles. A network holds a main style (st_net_set_style) and optionally a second one;
 * each frame uses their style statistics interpolated by StFrameParams.style_mix (0: the main
 * style, 1: the second; every output of the style subgraph, e.g. means, standard deviations and
 * square-root Gram or colouring matrices, is interpolated linearly). A main style set with
 * ST_STYLE_CROSSFADE keeps the one it replaces, and StFrameParams.style_fade moves the frames from
 * it (0) to the new one (1; a frame with 1 ends the crossfade and frees the old style); the
 * temporal state is kept. Without the flag a new main style applies at once and the temporal
 * state starts afresh. The interpolated statistics are computed only when the weights or a style
 * change, in a submission of their own (a few small dispatches). */
typedef enum { ST_STYLE_MAIN = 0, ST_STYLE_SECOND = 1 } StStyleSlot;
#define ST_STYLE_CROSSFADE 1u /* ST_STYLE_MAIN only */
bool st_net_set_style_slot(StNet *net, StStyleSlot slot, const StImage *style, unsigned flags,
                           StError *err);
/* Forgets the second style (ST_STYLE_SECOND; the main style cannot be cleared). */
void st_net_clear_style_slot(StNet *net, StStyleSlot slot);
bool st_net_has_style_slot(const StNet *net, StStyleSlot slot);
/* Whether a crossfade started by ST_STYLE_CROSSFADE still holds the old style. */
bool st_net_crossfading(const StNet *net);

/* A soft mask of any size (scaled bilinearly to the processing size and to the frame): one byte
 * per pixel, 255 = the style's region, 0 = the input frame's, values between blend. The
 * bytes may be interleaved with others (pixel_stride), e.g. the alpha of an RGBA frame in place:
 * data = the frame's bytes + 3, pixel_stride 4. */
typedef struct StMask {
  const uint8_t *data;
  int width, height; /* >= 1 */
  int stride;        /* bytes from one row to the next, >= width * pixel_stride */
  int pixel_stride;  /* bytes from one mask value to the next; 0 means 1 */
} StMask;

/* How the previous frame's residual is moved before it is reused (temporal on). */
typedef enum {
  ST_MOTION_NONE = 0, /* reused where it is */
  ST_MOTION_ESTIMATE, /* moved by the global motion estimated from the two input frames (CPU) */
  ST_MOTION_GIVEN     /* moved by motion_dx, motion_dy */
} StMotionMode;

typedef struct {
  int steps;            /* refinement steps, >= 0 */
  float strength;       /* 0..1 */
  bool preserve_colors; /* keep the input's chroma */
  bool temporal;        /* reuse the previous frame's residual */
  int processing_width; /* network size; 0 = frame size */
  int processing_height;
  StMotionMode motion;
  /* ST_MOTION_GIVEN: this frame's pixel (x, y) shows the previous frame's (x + dx, y + dy), in
   * processing-size pixels */
  int motion_dx, motion_dy;
  /* Temporal smoothing of the output (needs `temporal`), 0..ST_MAX_SMOOTHING: where the input
   * did not change beyond noise after motion compensation (local block motion around the global
   * motion; uniform for ST_MOTION_GIVEN/NONE), this fraction of the previous output, moved with
   * the scene, is kept (an exponential average along the motion); elsewhere the new output is
   * used. 0 = off. Reset when style, steps, strength or preserve_colors change. */
  float smoothing;
  /* Style interpolation (see st_net_set_style_slot), 0..1: style_mix 0 is the main style alone
   * (also whenever no second style is set), style_fade 1 the new main style alone (also whenever
   * no crossfade runs). */
  float style_mix;
  float style_fade;
  /* Spatial control: NULL = the whole frame in one style (style_mix applies). With a mask and
   * no second style, the style applies where it is 255 and the input frame itself shows where it
   * is 0 (bytes of the output blended with the input's by the mask: st_net_process needs the
   * same input and output format then). With a mask and a second style, the main style applies
   * where it is 255 and the second where it is 0, inside the network (each region with its own
   * statistics; style_mix does not apply): this needs a model with masked subgraphs
   * (st_net_has_masked_styles), and is the only use of a mask on float frames
   * (st_net_run_float). */
  const struct StMask *mask;
} StFrameParams;
#define ST_MAX_SMOOTHING 0.95f
/* mean absolute RGB difference (0..1 units, 3x3 neighbourhood) at which nothing is kept */
#define ST_SMOOTHING_THRESHOLD 0.06f

/* steps 2, strength 1, temporal on, size 0, motion ST_MOTION_ESTIMATE, smoothing 0, style_mix 0,
 * style_fade 1 */
void st_frame_params_init(StFrameParams *p);
/* The motion (processing-size pixels) applied to the temporal state in the last frame. */
void st_net_last_motion(const StNet *net, int *dx, int *dy);

/* Stylizes `in` into `out` (same width/height; formats may differ). One GPU submission. */
bool st_net_process(StNet *net, const StImage *in, StImage *out, const StFrameParams *params,
                    StError *err);
/* Forget the temporal state (next frame starts fresh). */
void st_net_reset_temporal(StNet *net);

/* Low-level access for tests: run the graph on planar float RGB input (3*h*w, [0,1]) and read back
 * the final x (3 * out_h * out_w floats, malloc'ed, caller frees). */
bool st_net_run_float(StNet *net, const float *content, int w, int h, const StFrameParams *params,
                      float **out, int *out_w, int *out_h, StError *err);

/* ---- timing ----------------------------------------------------------- */

typedef struct {
  char name[64]; /* "upload", "initial", "refine_0", ..., "download", or an op label */
  double ms;     /* GPU time from timestamp queries */
} StTiming;

/* Timings of the last st_net_process/run_float call; per_op selects per-operation entries
 * instead of per-stage. Returns the number of entries written. */
int st_net_last_timings(const StNet *net, StTiming *out, int max, bool per_op);
void st_net_set_profiling(StNet *net, bool per_op);

/* Host time of the last st_net_process/run_float call, in ms. */
typedef struct {
  double record_ms; /* recording the frame's command buffer (0 when an earlier one was re-used) */
  double submit_ms; /* in vkQueueSubmit */
  double wait_ms;   /* waiting for the GPU (the fence) */
  double total_ms;  /* the whole call, frame copies, motion estimation and waiting included */
  bool reused;      /* the command buffer of an earlier frame was submitted again */
} StHostTiming;
void st_net_last_host_timing(const StNet *net, StHostTiming *out);

#ifdef __cplusplus
}
#endif
#endif /* ST_H */
