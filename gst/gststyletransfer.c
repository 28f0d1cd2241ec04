/* SPDX-License-Identifier: LGPL-2.1-or-later
 * styletransfer: the `styletransfer` video filter element.
 *
 * This library is free software; you can redistribute it and/or modify it under the terms of the
 * GNU Lesser General Public License as published by the Free Software Foundation; either version
 * 2.1 of the License, or (at your option) any later version. See the file COPYING.
 */

/**
 * SECTION:element-styletransfer
 * @title: styletransfer
 *
 * Repaints every video frame in the style of one artwork image with a neural network (EFANet
 * feature alignment followed by ETNet error-transition refinement) run as Vulkan compute shaders.
 * Any Vulkan 1.1 device works; without a GPU the element runs on Mesa's lavapipe (CPU Vulkan).
 *
 * The style image is read through GStreamer itself (`decodebin`), so any image format that the
 * installed plugins decode (PNG, JPEG, TIFF, ... or the first frame of a video) can be used, up to
 * 100 megapixels; it is scaled down while decoding to the model's style size. Only regular files
 * are read (a FIFO, a device file or a directory is refused).
 *
 * The style, the strength and every other property can change while the pipeline is playing.
 * Setting a property never waits: a new style, model, device or fp16 is loaded by the element's
 * own thread while the stream goes on with the old one. When it takes effect the element posts
 * an element message, "styletransfer-style-applied" (fields: path, serial, width, height,
 * style-width, style-height, decode-ms, features-ms) or "styletransfer-engine-applied" (model,
 * device-name, fp16, load-ms); both are also posted at start. When it fails, a WARNING says why,
 * and the previous style or engine stays in use. At start, a missing or broken style or model is
 * an ERROR.
 *
 * The element processes RGBA, BGRA, RGBx, BGRx, RGB, BGR, I420, NV12, YUY2, UYVY, YVYU,
 * P010_10LE and I420_10LE frames of any size, so that cameras (YUY2) and decoders (I420, NV12,
 * 10-bit P010/I420_10LE) link without videoconvert; the output has the same caps as the input
 * (10-bit stays 10-bit). The YUV matrix (BT.601, BT.709, BT.2020) and the range (limited, full)
 * come from the caps' colorimetry, with GStreamer's defaults where the caps leave them unset;
 * other matrices (FCC, SMPTE 240M) are refused with a negotiation error. The alpha channel of
 * RGBA and BGRA passes through unchanged.
 *
 * #GstStyleTransfer:mask-source limits the style to a part of the frame, the input showing
 * elsewhere (soft masks blend): the input's alpha channel (`alpha`, e.g. from a segmentation
 * element), the rectangles of GstVideoRegionOfInterestMeta on the buffers (`roi`, from a face or
 * object detector; #GstStyleTransfer:roi-types, #GstStyleTransfer:feather), or a still mask image
 * (`image`, #GstStyleTransfer:mask, changeable while playing: "styletransfer-mask-applied").
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 v4l2src ! styletransfer style=art.jpg ! videoconvert ! autovideosink
 * ]| Stylizes a camera (YUY2 or any other format above; a camera that only gives MJPEG needs
 * `jpegdec` or `decodebin` after the source).
 * |[
 * gst-launch-1.0 filesrc location=in.mp4 ! decodebin ! videoconvert ! \
 *     styletransfer style=art.jpg steps=3 ! videoconvert ! x264enc ! mp4mux ! filesink
 * location=out.mp4
 * ]| Stylizes a file (the element accepts NV12 and I420 directly, the videoconvert before it is
 * only needed for other formats).
 * |[
 * gst-launch-1.0 videotestsrc ! video/x-raw,width=640,height=480 ! \
 *     styletransfer style=art.png strength=0.6 preserve-colors=true ! videoconvert ! autovideosink
 * ]| A lighter stylization that keeps the input's colours.
 * |[
 * gst-launch-1.0 filesrc location=in.mp4 ! decodebin ! videoconvert ! \
 *     styletransfer style=art.jpg mask-source=image mask=background.png ! videoconvert ! \
 *     autovideosink
 * ]| Paints only where the mask image is white (a grey-scale PNG of any size, scaled to the
 * frame).
 *
 * Since: 0.1.0
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gststyletransfer.h"

#include <gst/video/video.h>
#include <math.h>
#include <string.h>

#include "devicepool.h"
#include "st.h"
#include "styleimage.h"

GST_DEBUG_CATEGORY(gst_style_transfer_debug); /* also devicepool.c's */
#define GST_CAT_DEFAULT gst_style_transfer_debug

#define DEFAULT_STEPS 2
#define MAX_STEPS 8
#define DEFAULT_STRENGTH 1.0
#define DEFAULT_PRESERVE_COLORS FALSE
#define DEFAULT_TEMPORAL TRUE
#define DEFAULT_MOTION_COMPENSATION TRUE
#define DEFAULT_TEMPORAL_SMOOTHING 0.8
#define MAX_TEMPORAL_SMOOTHING 0.95 /* ST_MAX_SMOOTHING */
#define DEFAULT_DEVICE (-1)
#define MAX_DEVICE 63
#define DEFAULT_PROCESSING_SIZE 0
#define MAX_PROCESSING_SIZE 8192
/* processing-size used on CPU Vulkan devices (lavapipe) when the user did not set the property */
#define CPU_PROCESSING_SIZE 256
#define DEFAULT_FP16 TRUE
#define DEFAULT_STYLE_MIX 0.0
#define DEFAULT_STYLE_TRANSITION 0
#define MAX_STYLE_TRANSITION 600000 /* ms: ten minutes */
#define DEFAULT_MASK_SOURCE MASK_SOURCE_NONE
#define DEFAULT_FEATHER 16
#define MAX_FEATHER 4096
/* mask images are decoded at most this large (longer side); they are scaled to the frame */
#define MASK_IMAGE_MAX_SIDE 2048
#define MAX_ROI_TYPES 32
#define NO_MASK_MESSAGE                                                                            \
  "No mask image set: mask-source=image needs the mask property (an image file, white where the "  \
  "style applies)"

/* Where the mask comes from (mask-source). */
typedef enum {
  MASK_SOURCE_NONE,
  MASK_SOURCE_ALPHA,
  MASK_SOURCE_ROI,
  MASK_SOURCE_IMAGE,
} GstStyleTransferMaskSource;

#define GST_TYPE_STYLE_TRANSFER_MASK_SOURCE (gst_style_transfer_mask_source_get_type())
static GType gst_style_transfer_mask_source_get_type(void) {
  static gsize type = 0;
  static const GEnumValue values[] = {
      {MASK_SOURCE_NONE, "No mask: the style applies to the whole frame", "none"},
      {MASK_SOURCE_ALPHA, "The alpha channel of RGBA or BGRA input (passed through unchanged)",
       "alpha"},
      {MASK_SOURCE_ROI, "The rectangles of the buffer's GstVideoRegionOfInterestMeta (roi-types)",
       "roi"},
      {MASK_SOURCE_IMAGE, "A still mask image (the mask property), scaled to the frame", "image"},
      {0, NULL, NULL},
  };
  if (g_once_init_enter(&type))
    g_once_init_leave(&type, g_enum_register_static("GstStyleTransferMaskSource", values));
  return type;
}

enum {
  PROP_0,
  PROP_STYLE,
  PROP_MODEL,
  PROP_STEPS,
  PROP_STRENGTH,
  PROP_PRESERVE_COLORS,
  PROP_TEMPORAL,
  PROP_MOTION_COMPENSATION,
  PROP_TEMPORAL_SMOOTHING,
  PROP_DEVICE,
  PROP_PROCESSING_SIZE,
  PROP_FP16,
  PROP_DEVICE_NAME,
  PROP_DEVICE_ID,
  PROP_DEVICE_UUID,
  PROP_DEVICE_PCI_BUS_ID,
  PROP_DEVICE_MEMORY,
  PROP_STYLE_2,
  PROP_STYLE_MIX,
  PROP_STYLE_TRANSITION,
  PROP_MASK_SOURCE,
  PROP_MASK,
  PROP_ROI_TYPES,
  PROP_FEATHER,
};

/* The two style properties: `style` (the engine's main style) and `style-2` (its second). */
enum { SLOT_STYLE = 0, SLOT_STYLE_2, N_SLOTS };
static const gchar *const slot_property[N_SLOTS] = {"style", "style-2"};
/* the loader's mask-image job (job_slot), beside the two style slots */
#define JOB_MASK N_SLOTS

/* The six formats of the first release first (they stay the preferred ones), then the packed
 * 4:2:2 formats of webcams, packed 24-bit RGB and the 10-bit formats of decoders. */
#define ST_VIDEO_FORMATS                                                                           \
  "{ RGBA, BGRA, RGBx, BGRx, I420, NV12, YUY2, UYVY, YVYU, RGB, BGR, P010_10LE, I420_10LE }"
#define ST_VIDEO_CAPS GST_VIDEO_CAPS_MAKE(ST_VIDEO_FORMATS)

static GstStaticPadTemplate sink_template =
    GST_STATIC_PAD_TEMPLATE("sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS(ST_VIDEO_CAPS));
static GstStaticPadTemplate src_template =
    GST_STATIC_PAD_TEMPLATE("src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS(ST_VIDEO_CAPS));

/* A Vulkan device with the model loaded on it. Used by one thread at a time (engine_lock). The
 * device comes from the device pool and goes back to it with the selection it was asked for. */
typedef struct {
  StDevice *dev;
  gint device_index;
  gchar *device_id;
  StNet *net;
  gchar *model_path;
  gchar *device_name;
  gboolean is_cpu;
  gboolean fp16; /* fp16 storage in use */
  /* crossfades (style-transition): started by the loader (fade_serial++), timed by the streaming
   * thread from the running time of the first frame that sees it */
  guint fade_serial, fade_seen;
  GstClockTime fade_start;
  /* the ROI mask of the current frame (mask-source=roi), frame size; streaming thread only */
  guint8 *roi_mask;
  gsize roi_mask_size;
} Engine;

/* A decoded mask image: one byte per pixel, 255 where `style` applies. */
typedef struct {
  GBytes *bytes;
  gint width, height;
} MaskImage;

struct _GstStyleTransfer {
  GstVideoFilter parent;

  /* `lock` protects the properties, the decoded style and the flags below. It is never held
   * while decoding an image or while the engine runs. Order: engine_lock, then lock. */
  GMutex lock;
  gchar *style_path;
  gchar *style2_path;
  gdouble style_mix;
  guint style_transition; /* ms */
  gchar *model_path;
  gint steps;
  gdouble strength;
  gboolean preserve_colors;
  gboolean temporal;
  gboolean motion_compensation;
  gdouble temporal_smoothing;
  gint mask_source; /* GstStyleTransferMaskSource */
  gchar *mask_path;
  gchar *roi_types;                 /* as set */
  GQuark roi_quarks[MAX_ROI_TYPES]; /* parsed; none: every ROI */
  guint n_roi_quarks;
  guint feather;        /* px */
  MaskImage mask_image; /* the mask image in use (bytes NULL: none) */
  gchar *mask_applied;  /* its path */
  gint device_index;
  gint processing_size;
  gboolean processing_size_set; /* the user set processing-size (else: automatic on CPUs) */
  gboolean fp16;
  gchar *device_name;
  gchar *device_id;                       /* selects the device when set (over device) */
  gchar *device_uuid, *device_pci_bus_id; /* of the device in use, "" when not reported */
  StDevice *active_dev; /* the device of the engine in use (NULL while stopped): device-memory */
  gboolean started;
  GstSample *style_sample;  /* the style in use, RGBA, as decoded for the engine's style size */
  gchar *style_applied;     /* its path */
  guint style_serial;       /* number of styles applied since start */
  GstSample *style2_sample; /* the second style in use (NULL: none), as style_sample */
  gchar *style2_applied;
  gboolean reset_temporal; /* the next frame starts without temporal state */
  /* the last colorimetry refused by set_info (basetransform retries the caps: one error each) */
  gboolean has_refused;
  GstVideoColorimetry refused;

  /* the loader thread (run-time changes of style, model, device, fp16; see "run-time changes"):
   * requests, under `lock` */
  GThread *loader;
  GCond loader_cond;
  gboolean loader_quit;
  gboolean want_style;      /* style_path changed while started */
  gboolean want_style2;     /* style2_path changed while started */
  gboolean want_engine;     /* model_path, device_index or fp16 changed while started */
  gboolean want_mask;       /* mask_path changed (or mask-source became image) while started */
  GCancellable *job_cancel; /* cancels the loader's current job (stop, or a newer style) */
  gint job_slot;            /* the loader's current style (a slot) or mask (JOB_MASK) job, -1 */

  /* held while the engine is used (streaming thread) or swapped (loader thread) */
  GMutex engine_lock;
  Engine *engine;
};

#define gst_style_transfer_parent_class parent_class
G_DEFINE_TYPE(GstStyleTransfer, gst_style_transfer, GST_TYPE_VIDEO_FILTER);
GST_ELEMENT_REGISTER_DEFINE(styletransfer, "styletransfer", GST_RANK_NONE, GST_TYPE_STYLE_TRANSFER);

/* ---- errors ------------------------------------------------------------------------------- */

/* Posts `err` as an ERROR message of the element (domain and code are kept). */
#define post_gerror(self, err)                                                                     \
  gst_element_message_full(GST_ELEMENT(self), GST_MESSAGE_ERROR, (err)->domain, (err)->code,       \
                           g_strdup((err)->message), NULL, __FILE__, GST_FUNCTION, __LINE__)

/* Posts `err` as a WARNING of the element (domain and code are kept), saying what stays in use:
 * a run-time change that failed leaves the element running. */
static void post_kept_warning(GstStyleTransfer *self, const GError *err, const gchar *kept) {
  gst_element_message_full(GST_ELEMENT(self), GST_MESSAGE_WARNING, err->domain, err->code,
                           g_strdup_printf("%s; %s", err->message, kept), NULL, __FILE__,
                           GST_FUNCTION, __LINE__);
}

/* ---- engine --------------------------------------------------------------------------------- */

/* The engine's diagnostics (Vulkan validation messages, ...) go to the element's debug log. */
static void engine_log(StLogLevel level, const char *message, gpointer user_data) {
  (void)user_data;
  GST_CAT_LEVEL_LOG(gst_style_transfer_debug,
                    level == ST_LOG_ERROR     ? GST_LEVEL_ERROR
                    : level == ST_LOG_WARNING ? GST_LEVEL_WARNING
                                              : GST_LEVEL_INFO,
                    NULL, "%s", message);
}

static void engine_free(Engine *engine) {
  if (engine == NULL)
    return;
  if (engine->net != NULL)
    st_net_free(engine->net);
  device_pool_release(engine->dev, engine->device_index, engine->device_id);
  g_free(engine->roi_mask);
  g_free(engine->device_id);
  g_free(engine->model_path);
  g_free(engine->device_name);
  g_free(engine);
}

static const struct {
  GstVideoFormat gst;
  StPixelFormat st;
} video_formats[] = {
    {GST_VIDEO_FORMAT_RGBA, ST_FORMAT_RGBA},         {GST_VIDEO_FORMAT_BGRA, ST_FORMAT_BGRA},
    {GST_VIDEO_FORMAT_RGBx, ST_FORMAT_RGBX},         {GST_VIDEO_FORMAT_BGRx, ST_FORMAT_BGRX},
    {GST_VIDEO_FORMAT_I420, ST_FORMAT_I420},         {GST_VIDEO_FORMAT_NV12, ST_FORMAT_NV12},
    {GST_VIDEO_FORMAT_YUY2, ST_FORMAT_YUY2},         {GST_VIDEO_FORMAT_UYVY, ST_FORMAT_UYVY},
    {GST_VIDEO_FORMAT_YVYU, ST_FORMAT_YVYU},         {GST_VIDEO_FORMAT_RGB, ST_FORMAT_RGB},
    {GST_VIDEO_FORMAT_BGR, ST_FORMAT_BGR},           {GST_VIDEO_FORMAT_P010_10LE, ST_FORMAT_P010},
    {GST_VIDEO_FORMAT_I420_10LE, ST_FORMAT_I420_10},
};

static gboolean st_format_from_video(GstVideoFormat f, StPixelFormat *out) {
  for (guint i = 0; i < G_N_ELEMENTS(video_formats); i++)
    if (video_formats[i].gst == f) {
      *out = video_formats[i].st;
      return TRUE;
    }
  return FALSE;
}

/* The engine's colorimetry of a negotiated format: GStreamer's defaults for the fields the caps
 * leave unknown (as gst_video_info_set_format() picks them: BT.601 up to 576 lines, BT.709 above,
 * limited range for YUV, full for RGB). RGB formats need no matrix. Returns FALSE with *why set
 * for a YUV matrix that the engine does not have (FCC, SMPTE 240M, RGB). */
static gboolean st_colorimetry_from_info(const GstVideoInfo *info, StColorMatrix *matrix,
                                         StColorRange *range, const gchar **why) {
  GstVideoColorimetry c = info->colorimetry;
  if (c.matrix == GST_VIDEO_COLOR_MATRIX_UNKNOWN || c.range == GST_VIDEO_COLOR_RANGE_UNKNOWN) {
    GstVideoInfo def;
    gst_video_info_set_format(&def, GST_VIDEO_INFO_FORMAT(info), GST_VIDEO_INFO_WIDTH(info),
                              GST_VIDEO_INFO_HEIGHT(info));
    if (c.matrix == GST_VIDEO_COLOR_MATRIX_UNKNOWN)
      c.matrix = def.colorimetry.matrix;
    if (c.range == GST_VIDEO_COLOR_RANGE_UNKNOWN)
      c.range = def.colorimetry.range;
  }
  *range = c.range == GST_VIDEO_COLOR_RANGE_0_255 ? ST_RANGE_FULL : ST_RANGE_LIMITED;
  *matrix = ST_MATRIX_DEFAULT;
  if (GST_VIDEO_INFO_IS_RGB(info))
    return TRUE;
  switch (c.matrix) {
  case GST_VIDEO_COLOR_MATRIX_BT601:
    *matrix = ST_MATRIX_BT601;
    return TRUE;
  case GST_VIDEO_COLOR_MATRIX_BT709:
    *matrix = ST_MATRIX_BT709;
    return TRUE;
  case GST_VIDEO_COLOR_MATRIX_BT2020:
    *matrix = ST_MATRIX_BT2020;
    return TRUE;
  case GST_VIDEO_COLOR_MATRIX_FCC:
    *why = "the FCC matrix";
    return FALSE;
  case GST_VIDEO_COLOR_MATRIX_SMPTE240M:
    *why = "the SMPTE 240M matrix";
    return FALSE;
  case GST_VIDEO_COLOR_MATRIX_RGB:
    *why = "an RGB (identity) matrix on YUV";
    return FALSE;
  default:
    *why = "an unknown matrix";
    return FALSE;
  }
}

static gboolean image_from_frame(const GstVideoFrame *frame, StImage *img) {
  memset(img, 0, sizeof(*img));
  const gchar *why = NULL;
  if (!st_format_from_video(GST_VIDEO_FRAME_FORMAT(frame), &img->format) ||
      !st_colorimetry_from_info(&frame->info, &img->matrix, &img->range, &why))
    return FALSE;
  img->width = GST_VIDEO_FRAME_WIDTH(frame);
  img->height = GST_VIDEO_FRAME_HEIGHT(frame);
  for (guint i = 0; i < GST_VIDEO_FRAME_N_PLANES(frame) && i < 3; i++) {
    img->planes[i] = GST_VIDEO_FRAME_PLANE_DATA(frame, i);
    img->strides[i] = GST_VIDEO_FRAME_PLANE_STRIDE(frame, i);
  }
  return TRUE;
}

/* Sets the style `sample` (RGBA) on the engine's network, as its main or second style (`slot`),
 * with st_net_set_style_slot's `flags`. */
static gboolean engine_set_style(Engine *engine, GstSample *sample, gint slot, guint flags,
                                 GError **error) {
  GstVideoInfo info;
  GstVideoFrame frame;
  if (!gst_video_info_from_caps(&info, gst_sample_get_caps(sample)) ||
      !gst_video_frame_map(&frame, &info, gst_sample_get_buffer(sample), GST_MAP_READ)) {
    g_set_error(error, GST_STREAM_ERROR, GST_STREAM_ERROR_DECODE,
                "Could not map the decoded style image");
    return FALSE;
  }
  StImage img;
  StError serr = {0};
  gboolean ok =
      image_from_frame(&frame, &img) &&
      st_net_set_style_slot(engine->net, slot == SLOT_STYLE_2 ? ST_STYLE_SECOND : ST_STYLE_MAIN,
                            &img, flags, &serr);
  gst_video_frame_unmap(&frame);
  if (!ok) {
    g_set_error(error, GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_FAILED,
                "Could not compute the style features: %s", serr.message);
    return FALSE;
  }
  return TRUE;
}

/* Opens the Vulkan device `device_id` (when set) or `device_index` and loads the model at
 * `model_path` on it. */
static Engine *engine_new(const gchar *model_path, gint device_index, const gchar *device_id,
                          gboolean fp16, GError **error) {
  if (model_path == NULL || model_path[0] == '\0') {
    g_set_error(error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND,
                "No model set: set the model property to a styletransfer model file");
    return NULL;
  }
  if (!style_image_check_file(model_path, "Model file", error))
    return NULL;

  StError serr = {0};
  StDevice *dev = device_pool_acquire(device_index, device_id, &serr);
  if (dev == NULL) {
    if (device_id != NULL && device_id[0] != '\0' && serr.code == ST_ERROR_ARGUMENT)
      g_set_error(error, GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_SETTINGS, "Invalid device-id: %s",
                  serr.message);
    else if (device_id != NULL && device_id[0] != '\0')
      g_set_error(error, GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_INIT,
                  "Could not open Vulkan device \"%s\": %s", device_id, serr.message);
    else if (device_index >= 0)
      g_set_error(error, GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_INIT,
                  "Could not open Vulkan device %d: %s", device_index, serr.message);
    else
      g_set_error(error, GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_INIT, "No usable Vulkan device: %s",
                  serr.message);
    return NULL;
  }

  StNetOptions nopts = {.fp16 = fp16};
  StNet *net = st_net_load(dev, model_path, &nopts, &serr);
  if (net == NULL) {
    if (serr.code == ST_ERROR_MODEL && strstr(serr.message, model_path) != NULL)
      g_set_error(error, GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_INIT, "Invalid model file: %s",
                  serr.message);
    else if (serr.code == ST_ERROR_MODEL)
      g_set_error(error, GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_INIT, "Invalid model file \"%s\": %s",
                  model_path, serr.message);
    else
      g_set_error(error, GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_INIT,
                  "Could not load model \"%s\" on %s: %s", model_path, st_device_name(dev),
                  serr.message);
    device_pool_release(dev, device_index, device_id);
    return NULL;
  }

  Engine *engine = g_new0(Engine, 1);
  engine->dev = dev;
  engine->device_index = device_index;
  engine->device_id = g_strdup(device_id);
  engine->net = net;
  engine->model_path = g_strdup(model_path);
  engine->device_name = g_strdup(st_device_name(dev));
  engine->is_cpu = st_device_is_cpu(dev);
  engine->fp16 = fp16 && st_device_has_fp16_storage(dev);
  GST_INFO("loaded %s on %s (%s device, fp16 %s)", model_path, engine->device_name,
           engine->is_cpu ? "CPU" : "GPU", engine->fp16 ? "on" : "off");
  return engine;
}

/* Sets the read-only properties to the device of `engine` (self->lock held); notify them with
 * notify_device_properties() once the lock is released. */
static void set_device_properties(GstStyleTransfer *self, const Engine *engine) {
  g_free(self->device_name);
  self->device_name = g_strdup(engine->device_name);
  g_free(self->device_uuid);
  self->device_uuid = g_strdup(st_device_uuid(engine->dev));
  g_free(self->device_pci_bus_id);
  self->device_pci_bus_id = g_strdup(st_device_pci_bus_id(engine->dev));
  self->active_dev = engine->dev;
}

static void notify_device_properties(GstStyleTransfer *self) {
  g_object_notify(G_OBJECT(self), "device-name");
  g_object_notify(G_OBJECT(self), "device-uuid");
  g_object_notify(G_OBJECT(self), "device-pci-bus-id");
}

/* Decodes the style image at `path` for `engine` (scaled to its style size) and sets it on the
 * engine, under `engine_lock` when the engine is in use (NULL: not yet). Returns the decoded
 * sample, with `info` and `features_ms` (the style subgraph's time) filled. */
static GstSample *load_style(Engine *engine, GMutex *engine_lock, const gchar *path, gint slot,
                             guint flags, GCancellable *cancel, StyleImageInfo *info,
                             gdouble *features_ms, GError **error) {
  GstSample *sample =
      style_image_decode(path, "style image", st_net_style_size(engine->net), cancel, info, error);
  if (sample == NULL)
    return NULL;
  if (engine_lock != NULL)
    g_mutex_lock(engine_lock);
  gint64 t0 = g_get_monotonic_time();
  gboolean ok = engine_set_style(engine, sample, slot, flags, error);
  if (ok && (flags & ST_STYLE_CROSSFADE))
    engine->fade_serial++; /* under engine_lock: the next frame starts timing it */
  *features_ms = (g_get_monotonic_time() - t0) / 1000.0;
  if (engine_lock != NULL)
    g_mutex_unlock(engine_lock);
  if (!ok)
    g_clear_pointer(&sample, gst_sample_unref);
  return sample;
}

/* ---- mask image ------------------------------------------------------------------------------ */

static void mask_image_clear(MaskImage *m) {
  g_clear_pointer(&m->bytes, g_bytes_unref);
  m->width = m->height = 0;
}

/* Decodes the mask image at `path` (any format GStreamer decodes, at most MASK_IMAGE_MAX_SIDE on
 * the longer side) into one byte per pixel: its luminance times its alpha, so that white (and
 * opaque) is where `style` applies and black or transparent where it does not. */
static gboolean load_mask_image(const gchar *path, GCancellable *cancel, MaskImage *out,
                                StyleImageInfo *info, GError **error) {
  GstSample *sample =
      style_image_decode(path, "mask image", MASK_IMAGE_MAX_SIDE, cancel, info, error);
  if (sample == NULL)
    return FALSE;
  GstVideoInfo vinfo;
  GstVideoFrame frame;
  if (!gst_video_info_from_caps(&vinfo, gst_sample_get_caps(sample)) ||
      !gst_video_frame_map(&frame, &vinfo, gst_sample_get_buffer(sample), GST_MAP_READ)) {
    g_set_error(error, GST_STREAM_ERROR, GST_STREAM_ERROR_DECODE,
                "Could not map the decoded mask image \"%s\"", path);
    gst_sample_unref(sample);
    return FALSE;
  }
  gint w = GST_VIDEO_FRAME_WIDTH(&frame), h = GST_VIDEO_FRAME_HEIGHT(&frame);
  gint stride = GST_VIDEO_FRAME_PLANE_STRIDE(&frame, 0);
  const guint8 *rgba = GST_VIDEO_FRAME_PLANE_DATA(&frame, 0);
  guint8 *m = g_malloc((gsize)w * h);
  for (gint y = 0; y < h; y++)
    for (gint x = 0; x < w; x++) {
      const guint8 *p = rgba + (gsize)y * stride + 4 * (gsize)x;
      guint luma = (77u * p[0] + 150u * p[1] + 29u * p[2] + 128u) >> 8;
      m[(gsize)y * w + x] = (guint8)((luma * p[3] + 127u) / 255u);
    }
  gst_video_frame_unmap(&frame);
  gst_sample_unref(sample);
  out->bytes = g_bytes_new_take(m, (gsize)w * h);
  out->width = w;
  out->height = h;
  return TRUE;
}

/* ---- messages -------------------------------------------------------------------------------
 * Posted without any lock held (a bus sync handler may call back into the element). */

/* "styletransfer-style-applied": the style at `path` is in use from the next frame on. */
static void post_style_applied(GstStyleTransfer *self, gint slot, const gchar *path, guint serial,
                               const StyleImageInfo *info, gdouble features_ms) {
  GstStructure *s = gst_structure_new(
      "styletransfer-style-applied", "property", G_TYPE_STRING, slot_property[slot], "path",
      G_TYPE_STRING, path, "serial", G_TYPE_UINT, serial, "width", G_TYPE_INT, info->width,
      "height", G_TYPE_INT, info->height, "style-width", G_TYPE_INT, info->style_width,
      "style-height", G_TYPE_INT, info->style_height, "decode-ms", G_TYPE_DOUBLE, info->decode_ms,
      "features-ms", G_TYPE_DOUBLE, features_ms, NULL);
  gst_element_post_message(GST_ELEMENT(self), gst_message_new_element(GST_OBJECT(self), s));
}

/* "styletransfer-mask-applied": the mask image at `path` is in use from the next frame on. */
static void post_mask_applied(GstStyleTransfer *self, const gchar *path, const StyleImageInfo *info,
                              gint mask_width, gint mask_height) {
  GstStructure *s = gst_structure_new(
      "styletransfer-mask-applied", "path", G_TYPE_STRING, path, "width", G_TYPE_INT, info->width,
      "height", G_TYPE_INT, info->height, "mask-width", G_TYPE_INT, mask_width, "mask-height",
      G_TYPE_INT, mask_height, "decode-ms", G_TYPE_DOUBLE, info->decode_ms, NULL);
  gst_element_post_message(GST_ELEMENT(self), gst_message_new_element(GST_OBJECT(self), s));
}

/* "styletransfer-engine-applied": the model is loaded on the device and in use. */
static void post_engine_applied(GstStyleTransfer *self, const gchar *model,
                                const gchar *device_name, gboolean fp16, gdouble load_ms) {
  GstStructure *s = gst_structure_new(
      "styletransfer-engine-applied", "model", G_TYPE_STRING, model, "device-name", G_TYPE_STRING,
      device_name, "fp16", G_TYPE_BOOLEAN, fp16, "load-ms", G_TYPE_DOUBLE, load_ms, NULL);
  gst_element_post_message(GST_ELEMENT(self), gst_message_new_element(GST_OBJECT(self), s));
}

/* ---- run-time changes: the loader thread ----------------------------------------------------
 * A style, model, device or fp16 set while the element runs is loaded by the element's loader
 * thread (started by start(), joined by stop()), never in the thread that sets the property
 * (often an application's main loop) nor in the streaming thread: set_property records the
 * request and returns. Requests are coalesced (the latest value wins) and a newer style cancels
 * the decoding of an older one. When a change takes effect, the element posts
 * "styletransfer-style-applied" or "styletransfer-engine-applied"; when it fails, a WARNING with
 * the reason, and the previous style or engine stays in use. */

/* A job failed: a WARNING saying why and what stays in use, unless it was cancelled (by a newer
 * request or stop()). Frees `error`. */
static void loader_failed(GstStyleTransfer *self, GError *error, const gchar *kept) {
  if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    GST_DEBUG_OBJECT(self, "%s", error->message);
  else
    post_kept_warning(self, error, kept);
  g_error_free(error);
}

/* The loader's style job: decode the current `style` (slot SLOT_STYLE) or `style-2` and set it on
 * the running engine; an empty `style-2` removes the second style. A new `style` crossfades from
 * the one in use when `style-transition` is set. */
static void loader_set_style(GstStyleTransfer *self, gint slot, GCancellable *cancel) {
  g_mutex_lock(&self->lock);
  gchar *path = g_strdup(slot == SLOT_STYLE ? self->style_path : self->style2_path);
  guint flags = slot == SLOT_STYLE && self->style_transition > 0 ? ST_STYLE_CROSSFADE : 0;
  g_mutex_unlock(&self->lock);
  /* only this thread swaps engines, and stop() joins it before freeing the engine */
  g_mutex_lock(&self->engine_lock);
  Engine *engine = self->engine;
  if (slot == SLOT_STYLE_2 && (path == NULL || path[0] == '\0')) {
    st_net_clear_style_slot(engine->net, ST_STYLE_SECOND);
    g_mutex_lock(&self->lock);
    g_clear_pointer(&self->style2_sample, gst_sample_unref);
    g_clear_pointer(&self->style2_applied, g_free);
    g_mutex_unlock(&self->lock);
    g_mutex_unlock(&self->engine_lock);
    GST_INFO_OBJECT(self, "second style removed");
    gst_element_post_message(
        GST_ELEMENT(self),
        gst_message_new_element(GST_OBJECT(self),
                                gst_structure_new("styletransfer-style-removed", "property",
                                                  G_TYPE_STRING, slot_property[slot], NULL)));
    g_free(path);
    return;
  }
  g_mutex_unlock(&self->engine_lock);

  GError *error = NULL;
  StyleImageInfo info;
  gdouble features_ms = 0;
  GstSample *sample = load_style(engine, &self->engine_lock, path, slot, flags, cancel, &info,
                                 &features_ms, &error);
  if (sample == NULL) {
    loader_failed(self, error,
                  slot == SLOT_STYLE ? "the previous style stays in use"
                                     : "the previous style-2 stays in use");
    g_free(path);
    return;
  }
  g_mutex_lock(&self->lock);
  GstSample **in_use = slot == SLOT_STYLE ? &self->style_sample : &self->style2_sample;
  gchar **applied = slot == SLOT_STYLE ? &self->style_applied : &self->style2_applied;
  if (*in_use != NULL)
    gst_sample_unref(*in_use);
  *in_use = sample;
  g_free(*applied);
  *applied = g_strdup(path);
  guint serial = ++self->style_serial;
  g_mutex_unlock(&self->lock);
  GST_INFO_OBJECT(self, "%s %u: %s (%dx%d) in %.0f + %.0f ms%s", slot_property[slot], serial, path,
                  info.width, info.height, info.decode_ms, features_ms,
                  flags ? ", crossfading" : "");
  post_style_applied(self, slot, path, serial, &info, features_ms);
  g_free(path);
}

/* The loader's mask job: decode the current `mask` and use it from the next frame on. */
static void loader_set_mask(GstStyleTransfer *self, GCancellable *cancel) {
  g_mutex_lock(&self->lock);
  gchar *path = g_strdup(self->mask_path);
  gboolean had_mask = self->mask_image.bytes != NULL;
  g_mutex_unlock(&self->lock);
  GError *error = NULL;
  StyleImageInfo info;
  MaskImage m = {0};
  if (path == NULL || path[0] == '\0') {
    g_set_error_literal(&error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND, NO_MASK_MESSAGE);
  } else if (load_mask_image(path, cancel, &m, &info, &error)) {
    g_mutex_lock(&self->lock);
    mask_image_clear(&self->mask_image);
    self->mask_image = m;
    g_free(self->mask_applied);
    self->mask_applied = g_strdup(path);
    g_mutex_unlock(&self->lock);
    GST_INFO_OBJECT(self, "mask %s (%dx%d) in %.0f ms", path, info.width, info.height,
                    info.decode_ms);
    post_mask_applied(self, path, &info, m.width, m.height);
    g_free(path);
    return;
  }
  loader_failed(self, error,
                had_mask ? "the previous mask stays in use"
                         : "no mask is in use: the style applies to the whole frame");
  g_free(path);
}

/* The loader's engine job: build an engine from the current model, device and fp16, set the
 * style in use on it, and swap it in. The running engine keeps processing frames meanwhile. */
static void loader_swap_engine(GstStyleTransfer *self, GCancellable *cancel) {
  g_mutex_lock(&self->lock);
  gchar *model = g_strdup(self->model_path);
  gint device_index = self->device_index;
  gchar *device_id = g_strdup(self->device_id);
  gboolean fp16 = self->fp16;
  GstSample *style = gst_sample_ref(self->style_sample);
  gchar *style_path = g_strdup(self->style_applied);
  GstSample *style2 = self->style2_sample ? gst_sample_ref(self->style2_sample) : NULL;
  gchar *style2_path = g_strdup(self->style2_applied);
  g_mutex_unlock(&self->lock);
  g_mutex_lock(&self->engine_lock);
  gint old_style_size = st_net_style_size(self->engine->net);
  g_mutex_unlock(&self->engine_lock);

  gint64 t0 = g_get_monotonic_time();
  GError *error = NULL;
  GstSample *redecoded[N_SLOTS] = {NULL, NULL};
  Engine *engine = engine_new(model, device_index, device_id, fp16, &error);
  gboolean ok = engine != NULL;
  GstSample *const samples[N_SLOTS] = {style, style2};
  const gchar *const paths[N_SLOTS] = {style_path, style2_path};
  for (gint slot = 0; ok && slot < N_SLOTS && samples[slot] != NULL; slot++) {
    if (st_net_style_size(engine->net) == old_style_size) {
      ok = engine_set_style(engine, samples[slot], slot, 0, &error);
    } else {
      /* another style size: decode the style again, for the new one */
      StyleImageInfo info;
      gdouble features_ms;
      redecoded[slot] =
          load_style(engine, NULL, paths[slot], slot, 0, cancel, &info, &features_ms, &error);
      ok = redecoded[slot] != NULL;
    }
  }
  gst_sample_unref(style);
  g_free(style_path);
  if (style2 != NULL)
    gst_sample_unref(style2);
  g_free(style2_path);
  g_free(model);
  g_free(device_id);
  if (!ok) {
    loader_failed(self, error, "the previous model and device stay in use");
    goto discard;
  }
  gdouble load_ms = (g_get_monotonic_time() - t0) / 1000.0;

  g_mutex_lock(&self->engine_lock);
  g_mutex_lock(&self->lock);
  if (self->loader_quit) { /* built while the element stopped: not needed any more */
    g_mutex_unlock(&self->lock);
    g_mutex_unlock(&self->engine_lock);
    goto discard;
  }
  Engine *old = self->engine;
  self->engine = engine;
  for (gint slot = 0; slot < N_SLOTS; slot++) {
    GstSample **in_use = slot == SLOT_STYLE ? &self->style_sample : &self->style2_sample;
    if (redecoded[slot] != NULL) {
      if (*in_use != NULL)
        gst_sample_unref(*in_use);
      *in_use = redecoded[slot];
    }
  }
  set_device_properties(self, engine);
  g_mutex_unlock(&self->lock);
  g_mutex_unlock(&self->engine_lock);
  engine_free(old);
  GST_INFO_OBJECT(self, "engine swapped in after %.0f ms", load_ms);
  notify_device_properties(self);
  post_engine_applied(self, engine->model_path, engine->device_name, engine->fp16, load_ms);
  return;

discard:
  engine_free(engine);
  for (gint slot = 0; slot < N_SLOTS; slot++)
    if (redecoded[slot] != NULL)
      gst_sample_unref(redecoded[slot]);
}

static gpointer loader_main(gpointer data) {
  GstStyleTransfer *self = data;
  g_mutex_lock(&self->lock);
  while (!self->loader_quit) {
    if (!self->want_engine && !self->want_style && !self->want_style2 && !self->want_mask) {
      g_cond_wait(&self->loader_cond, &self->lock);
      continue;
    }
    /* one job per round, the engine first (a style then goes to the new engine) */
    gboolean engine_job = self->want_engine;
    gint slot = -1;
    if (engine_job) {
      self->want_engine = FALSE;
    } else if (self->want_style) {
      self->want_style = FALSE;
      slot = SLOT_STYLE;
    } else if (self->want_style2) {
      self->want_style2 = FALSE;
      slot = SLOT_STYLE_2;
    } else {
      self->want_mask = FALSE;
      slot = JOB_MASK;
    }
    GCancellable *cancel = g_cancellable_new();
    self->job_cancel = g_object_ref(cancel);
    self->job_slot = slot;
    g_mutex_unlock(&self->lock);
    if (engine_job)
      loader_swap_engine(self, cancel);
    else if (slot == JOB_MASK)
      loader_set_mask(self, cancel);
    else
      loader_set_style(self, slot, cancel);
    g_mutex_lock(&self->lock);
    g_clear_object(&self->job_cancel);
    self->job_slot = -1;
    g_object_unref(cancel);
  }
  g_mutex_unlock(&self->lock);
  return NULL;
}

/* Whether the mask image should be (re)loaded: mask-source=image and the mask in use (if any) is
 * not the `mask` property's. Called with `lock` held. */
static gboolean mask_image_wanted(GstStyleTransfer *self) {
  return self->mask_source == MASK_SOURCE_IMAGE &&
         g_strcmp0(self->mask_applied, self->mask_path) != 0;
}

static const gchar *mask_source_nick(gint source) {
  GEnumValue *v =
      g_enum_get_value(g_type_class_peek_static(GST_TYPE_STYLE_TRANSFER_MASK_SOURCE), source);
  return v != NULL ? v->value_nick : "?";
}

/* The error of a mask together with style-2 on a model without two-style subgraphs. */
static void set_mask_style2_error(GError **error, gint source, const gchar *model) {
  g_set_error(error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS,
              "mask-source=%s with style-2 needs a model that can put two styles in one frame, "
              "and %s cannot (it has no masked subgraphs; the bundled model has them). Unset "
              "style-2 to show the input frame where the mask is black, or set mask-source=none "
              "to mix the two styles with style-mix",
              mask_source_nick(source), model);
}

/* Queues a style, style-2, mask or engine job while started; called with `lock` held. Returns
 * FALSE when the request is not for the loader (not started, or the style was cleared). */
static gboolean loader_request(GstStyleTransfer *self, gboolean style, gboolean style2,
                               gboolean mask, gboolean engine) {
  if (!self->started || (style && (self->style_path == NULL || self->style_path[0] == '\0')))
    return FALSE;
  if (mask) {
    self->want_mask = TRUE;
    if (self->job_slot == JOB_MASK)
      g_cancellable_cancel(self->job_cancel); /* an older mask: not needed any more */
  }
  if (style || style2) {
    gint slot = style ? SLOT_STYLE : SLOT_STYLE_2;
    if (style)
      self->want_style = TRUE;
    else
      self->want_style2 = TRUE;
    if (self->job_slot == slot)
      g_cancellable_cancel(self->job_cancel); /* an older style: not needed any more */
  }
  self->want_engine |= engine;
  g_cond_signal(&self->loader_cond);
  return TRUE;
}

/* Stops the loader thread: cancels its job, waits for it to end (a decode ends at once, an
 * engine being built is finished and dropped). */
static void loader_stop(GstStyleTransfer *self) {
  g_mutex_lock(&self->lock);
  GThread *thread = self->loader;
  self->loader = NULL;
  self->started = FALSE; /* no new requests */
  self->loader_quit = TRUE;
  if (self->job_cancel != NULL)
    g_cancellable_cancel(self->job_cancel);
  g_cond_signal(&self->loader_cond);
  g_mutex_unlock(&self->lock);
  if (thread != NULL)
    g_thread_join(thread);
  g_mutex_lock(&self->lock);
  self->loader_quit = FALSE;
  self->want_style = FALSE;
  self->want_style2 = FALSE;
  self->want_mask = FALSE;
  self->want_engine = FALSE;
  g_mutex_unlock(&self->lock);
}

/* ---- GstBaseTransform / GstVideoFilter ------------------------------------------------------ */

/* Opens the device, loads the model and the style, and starts the loader thread. Runs in the
 * thread that changes the state, so that a missing or broken style or model fails the state
 * change with an ERROR. */
static gboolean gst_style_transfer_start(GstBaseTransform *trans) {
  GstStyleTransfer *self = GST_STYLE_TRANSFER(trans);
  GError *error = NULL;

  g_mutex_lock(&self->lock);
  gchar *style = g_strdup(self->style_path);
  gchar *style2 = g_strdup(self->style2_path);
  gchar *model = g_strdup(self->model_path);
  gint device_index = self->device_index;
  gchar *device_id = g_strdup(self->device_id);
  gboolean fp16 = self->fp16;
  gint mask_source = self->mask_source;
  gchar *mask = g_strdup(self->mask_path);
  g_mutex_unlock(&self->lock);

  GstSample *sample = NULL, *sample2 = NULL;
  Engine *engine = NULL;
  MaskImage mask_image = {0};
  StyleImageInfo mask_info;
  gboolean has_style2 = style2 != NULL && style2[0] != '\0';
  gboolean has_mask = mask_source == MASK_SOURCE_IMAGE;
  if (style == NULL || style[0] == '\0') {
    g_set_error(&error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND,
                "No style set: set the style property to an image file");
    goto fail;
  }
  /* cheap checks first, so that a wrong path is reported before the device is opened */
  if (model == NULL || model[0] == '\0') {
    g_set_error(&error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND,
                "No model set: set the model property to a styletransfer model file");
    goto fail;
  }
  if (has_mask && (mask == NULL || mask[0] == '\0')) {
    g_set_error_literal(&error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND, NO_MASK_MESSAGE);
    goto fail;
  }
  if (!style_image_check_file(style, "Style image", &error) ||
      (has_style2 && !style_image_check_file(style2, "Second style image (style-2)", &error)) ||
      (has_mask && !style_image_check_file(mask, "Mask image", &error)) ||
      !style_image_check_file(model, "Model file", &error))
    goto fail;
  gint64 t0 = g_get_monotonic_time();
  engine = engine_new(model, device_index, device_id, fp16, &error);
  if (engine == NULL)
    goto fail;
  gdouble load_ms = (g_get_monotonic_time() - t0) / 1000.0;
  if (mask_source != MASK_SOURCE_NONE && has_style2 && !st_net_has_masked_styles(engine->net)) {
    set_mask_style2_error(&error, mask_source, model);
    goto fail;
  }
  StyleImageInfo info, info2;
  gdouble features_ms = 0, features2_ms = 0;
  sample = load_style(engine, NULL, style, SLOT_STYLE, 0, NULL, &info, &features_ms, &error);
  if (sample == NULL)
    goto fail;
  if (has_style2) {
    sample2 =
        load_style(engine, NULL, style2, SLOT_STYLE_2, 0, NULL, &info2, &features2_ms, &error);
    if (sample2 == NULL)
      goto fail;
  }
  if (has_mask && !load_mask_image(mask, NULL, &mask_image, &mask_info, &error))
    goto fail;

  g_mutex_lock(&self->lock);
  self->loader_quit = FALSE;
  g_mutex_unlock(&self->lock);
  GThread *loader = g_thread_try_new("st-loader", loader_main, self, &error);
  if (loader == NULL)
    goto fail;

  g_mutex_lock(&self->engine_lock);
  g_mutex_lock(&self->lock);
  if (self->style_sample != NULL)
    gst_sample_unref(self->style_sample);
  self->style_sample = sample;
  g_free(self->style_applied);
  self->style_applied = g_strdup(style);
  if (self->style2_sample != NULL)
    gst_sample_unref(self->style2_sample);
  self->style2_sample = sample2;
  g_free(self->style2_applied);
  self->style2_applied = has_style2 ? g_strdup(style2) : NULL;
  self->style_serial = has_style2 ? 2 : 1;
  mask_image_clear(&self->mask_image);
  self->mask_image = mask_image;
  mask_image = (MaskImage){0};
  g_free(self->mask_applied);
  self->mask_applied = has_mask ? g_strdup(mask) : NULL;
  self->reset_temporal = TRUE;
  set_device_properties(self, engine);
  self->loader = loader;
  self->started = TRUE;
  g_mutex_unlock(&self->lock);
  self->engine = engine;
  g_mutex_unlock(&self->engine_lock);

  GST_INFO_OBJECT(self, "started on %s (uuid %s, pci %s) with style %s", engine->device_name,
                  st_device_uuid(engine->dev), st_device_pci_bus_id(engine->dev), style);
  notify_device_properties(self);
  post_engine_applied(self, model, engine->device_name, engine->fp16, load_ms);
  post_style_applied(self, SLOT_STYLE, style, 1, &info, features_ms);
  if (has_style2)
    post_style_applied(self, SLOT_STYLE_2, style2, 2, &info2, features2_ms);
  if (has_mask)
    post_mask_applied(self, mask, &mask_info, self->mask_image.width, self->mask_image.height);

  /* properties set while this function ran were not seen by it */
  g_mutex_lock(&self->lock);
  loader_request(self, g_strcmp0(self->style_path, style) != 0,
                 g_strcmp0(self->style2_path, style2) != 0, mask_image_wanted(self),
                 g_strcmp0(self->model_path, model) != 0 || self->device_index != device_index ||
                     g_strcmp0(self->device_id, device_id) != 0 || self->fp16 != fp16);
  g_mutex_unlock(&self->lock);
  g_free(style);
  g_free(style2);
  g_free(model);
  g_free(device_id);
  g_free(mask);
  return TRUE;

fail:
  post_gerror(self, error);
  g_clear_error(&error);
  engine_free(engine);
  if (sample != NULL)
    gst_sample_unref(sample);
  if (sample2 != NULL)
    gst_sample_unref(sample2);
  mask_image_clear(&mask_image);
  g_free(style);
  g_free(style2);
  g_free(model);
  g_free(device_id);
  g_free(mask);
  return FALSE;
}

static gboolean gst_style_transfer_stop(GstBaseTransform *trans) {
  GstStyleTransfer *self = GST_STYLE_TRANSFER(trans);
  loader_stop(self);
  g_mutex_lock(&self->engine_lock);
  Engine *engine = self->engine;
  self->engine = NULL;
  g_mutex_lock(&self->lock);
  self->has_refused = FALSE;
  self->active_dev = NULL; /* before the engine is freed */
  g_clear_pointer(&self->style_sample, gst_sample_unref);
  g_clear_pointer(&self->style_applied, g_free);
  g_clear_pointer(&self->style2_sample, gst_sample_unref);
  g_clear_pointer(&self->style2_applied, g_free);
  self->style_serial = 0;
  mask_image_clear(&self->mask_image);
  g_clear_pointer(&self->mask_applied, g_free);
  g_mutex_unlock(&self->lock);
  g_mutex_unlock(&self->engine_lock);
  engine_free(engine);
  return TRUE;
}

/* The error of mask-source=alpha on a format without alpha. */
static void post_alpha_format_error(GstStyleTransfer *self, const GstVideoInfo *info) {
  GST_ELEMENT_ERROR(self, CORE, NEGOTIATION,
                    ("mask-source=alpha needs input with an alpha channel (RGBA or BGRA), not %s: "
                     "put `videoconvert ! video/x-raw,format=RGBA` before the element, or use "
                     "another mask-source",
                     GST_VIDEO_INFO_NAME(info)),
                    (NULL));
}

static gboolean gst_style_transfer_set_info(GstVideoFilter *filter, GstCaps *incaps,
                                            GstVideoInfo *in_info, GstCaps *outcaps,
                                            GstVideoInfo *out_info) {
  GstStyleTransfer *self = GST_STYLE_TRANSFER(filter);
  (void)incaps;
  (void)outcaps;
  if (GST_VIDEO_INFO_WIDTH(in_info) != GST_VIDEO_INFO_WIDTH(out_info) ||
      GST_VIDEO_INFO_HEIGHT(in_info) != GST_VIDEO_INFO_HEIGHT(out_info)) {
    GST_ERROR_OBJECT(self, "input and output sizes differ");
    return FALSE;
  }
  /* both sides: the output has the input's caps, but check what was negotiated */
  const GstVideoInfo *infos[2] = {in_info, out_info};
  for (guint i = 0; i < 2; i++) {
    StColorMatrix matrix;
    StColorRange range;
    const gchar *why = NULL;
    if (!st_colorimetry_from_info(infos[i], &matrix, &range, &why)) {
      g_mutex_lock(&self->lock);
      gboolean again = self->has_refused &&
                       gst_video_colorimetry_is_equal(&self->refused, &infos[i]->colorimetry);
      self->has_refused = TRUE;
      self->refused = infos[i]->colorimetry;
      g_mutex_unlock(&self->lock);
      gchar *c = gst_video_colorimetry_to_string(&infos[i]->colorimetry);
      if (!again)
        GST_ELEMENT_ERROR(self, CORE, NEGOTIATION,
                          ("Unsupported colorimetry \"%s\" of the %s %s: %s is not handled "
                           "(BT.601, BT.709 and BT.2020 matrices are, in limited or full range)",
                           c ? c : "?", GST_VIDEO_INFO_NAME(infos[i]), i ? "output" : "input", why),
                          (NULL));
      g_free(c);
      return FALSE;
    }
  }
  g_mutex_lock(&self->lock);
  gint mask_source = self->mask_source;
  g_mutex_unlock(&self->lock);
  if (mask_source == MASK_SOURCE_ALPHA && !GST_VIDEO_INFO_HAS_ALPHA(in_info)) {
    post_alpha_format_error(self, in_info);
    return FALSE;
  }
  gchar *c = gst_video_colorimetry_to_string(&in_info->colorimetry);
  GST_DEBUG_OBJECT(self, "format %s %dx%d colorimetry %s", GST_VIDEO_INFO_NAME(in_info),
                   GST_VIDEO_INFO_WIDTH(in_info), GST_VIDEO_INFO_HEIGHT(in_info), c);
  g_free(c);
  /* the engine plans per size; the temporal state of the old size is meaningless */
  g_mutex_lock(&self->lock);
  self->reset_temporal = TRUE;
  g_mutex_unlock(&self->lock);
  return TRUE;
}

static gboolean gst_style_transfer_sink_event(GstBaseTransform *trans, GstEvent *event) {
  GstStyleTransfer *self = GST_STYLE_TRANSFER(trans);
  switch (GST_EVENT_TYPE(event)) {
  case GST_EVENT_FLUSH_STOP:
  case GST_EVENT_STREAM_START:
  case GST_EVENT_SEGMENT:
    g_mutex_lock(&self->lock);
    self->reset_temporal = TRUE;
    g_mutex_unlock(&self->lock);
    break;
  default:
    break;
  }
  return GST_BASE_TRANSFORM_CLASS(parent_class)->sink_event(trans, event);
}

static void gst_style_transfer_before_transform(GstBaseTransform *trans, GstBuffer *buf) {
  GstStyleTransfer *self = GST_STYLE_TRANSFER(trans);
  GstClockTime stream_time =
      gst_segment_to_stream_time(&trans->segment, GST_FORMAT_TIME, GST_BUFFER_TIMESTAMP(buf));
  if (GST_CLOCK_TIME_IS_VALID(stream_time))
    gst_object_sync_values(GST_OBJECT(trans), stream_time);
  if (GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_DISCONT)) {
    g_mutex_lock(&self->lock);
    self->reset_temporal = TRUE;
    g_mutex_unlock(&self->lock);
  }
}

/* The network's input size for a frame: the longer side is `size`, aspect ratio kept; 0x0 (the
 * engine's "frame size") when that is the frame size. */
static void processing_dims(gint size, gint width, gint height, gint *pw, gint *ph) {
  if (size <= 0 || size >= MAX(width, height)) { /* never larger than the frame */
    *pw = 0;
    *ph = 0;
  } else if (width >= height) {
    *pw = size;
    *ph = MAX(1, (gint)lround((double)height * size / width));
  } else {
    *ph = size;
    *pw = MAX(1, (gint)lround((double)width * size / height));
  }
}

/* How far the crossfade to a new style has come at this frame, 0..1 (1: none runs, or it ended):
 * the running time since the first frame that saw it, over `style-transition` (a change of the
 * property applies to a crossfade already running). Buffers without a timestamp count the
 * monotonic clock. Called with engine_lock held. */
static gfloat crossfade_progress(GstStyleTransfer *self, Engine *engine, GstBuffer *buf,
                                 guint transition_ms) {
  GstBaseTransform *trans = GST_BASE_TRANSFORM(self);
  GstClockTime now =
      gst_segment_to_running_time(&trans->segment, GST_FORMAT_TIME, GST_BUFFER_PTS(buf));
  if (!GST_CLOCK_TIME_IS_VALID(now))
    now = (GstClockTime)g_get_monotonic_time() * GST_USECOND;
  if (engine->fade_seen != engine->fade_serial) {
    engine->fade_seen = engine->fade_serial;
    engine->fade_start = now;
  }
  if (!st_net_crossfading(engine->net) || transition_ms == 0)
    return 1.0f;
  if (now <= engine->fade_start)
    return 0.0f;
  gdouble t = (gdouble)(now - engine->fade_start) / ((gdouble)transition_ms * GST_MSECOND);
  return t >= 1.0 ? 1.0f : (gfloat)t;
}

/* ---- masks (mask-source) --------------------------------------------------------------------- */

/* Rasterizes the ROI metas of `buf` (those of the `n_types` types, all when there are none) into
 * engine->roi_mask, one byte per frame pixel: 255 inside a rectangle, falling linearly to 0 at
 * `feather` pixels outside it (the Euclidean distance from the rectangle to the pixel's centre);
 * overlapping ROIs take the larger value. Returns the number of ROIs drawn. engine_lock held. */
static guint rasterize_rois(Engine *engine, GstBuffer *buf, gint width, gint height,
                            const GQuark *types, guint n_types, guint feather) {
  gsize size = (gsize)width * height;
  if (engine->roi_mask_size != size) {
    g_free(engine->roi_mask);
    engine->roi_mask = g_malloc(size);
    engine->roi_mask_size = size;
  }
  memset(engine->roi_mask, 0, size);
  guint drawn = 0;
  gpointer state = NULL;
  GstMeta *meta;
  while ((meta = gst_buffer_iterate_meta_filtered(
              buf, &state, GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE)) != NULL) {
    const GstVideoRegionOfInterestMeta *roi = (const GstVideoRegionOfInterestMeta *)meta;
    gboolean wanted = n_types == 0;
    for (guint i = 0; i < n_types && !wanted; i++)
      wanted = roi->roi_type == types[i];
    if (!wanted || roi->w == 0 || roi->h == 0)
      continue;
    /* the rectangle [x0, x1) x [y0, y1) and its soft edge, clipped to the frame */
    gdouble x0 = roi->x, y0 = roi->y, x1 = x0 + roi->w, y1 = y0 + roi->h;
    gint bx0 = (gint)CLAMP(floor(x0 - feather), 0, width);
    gint bx1 = (gint)CLAMP(ceil(x1 + feather), 0, width);
    gint by0 = (gint)CLAMP(floor(y0 - feather), 0, height);
    gint by1 = (gint)CLAMP(ceil(y1 + feather), 0, height);
    if (bx0 >= bx1 || by0 >= by1)
      continue; /* outside the frame */
    drawn++;
    for (gint y = by0; y < by1; y++) {
      gdouble cy = y + 0.5;
      gdouble dy = cy < y0 ? y0 - cy : cy > y1 ? cy - y1 : 0.0;
      guint8 *row = engine->roi_mask + (gsize)y * width;
      for (gint x = bx0; x < bx1; x++) {
        gdouble cx = x + 0.5;
        gdouble dx = cx < x0 ? x0 - cx : cx > x1 ? cx - x1 : 0.0;
        gdouble d = sqrt(dx * dx + dy * dy);
        if (d > 0.0 && d >= feather)
          continue;
        guint8 v = d == 0.0 ? 255 : (guint8)lround(255.0 * (1.0 - d / feather));
        row[x] = MAX(row[x], v);
      }
    }
  }
  return drawn;
}

/* The alpha channel passes through: the input's alpha into the output (same format). */
static void copy_alpha(const GstVideoFrame *in, GstVideoFrame *out) {
  gint w = GST_VIDEO_FRAME_WIDTH(in), h = GST_VIDEO_FRAME_HEIGHT(in);
  const guint8 *src = GST_VIDEO_FRAME_COMP_DATA(in, GST_VIDEO_COMP_A);
  guint8 *dst = GST_VIDEO_FRAME_COMP_DATA(out, GST_VIDEO_COMP_A);
  gint ps = GST_VIDEO_FRAME_COMP_PSTRIDE(in, GST_VIDEO_COMP_A);
  gint ss = GST_VIDEO_FRAME_COMP_STRIDE(in, GST_VIDEO_COMP_A);
  gint ds = GST_VIDEO_FRAME_COMP_STRIDE(out, GST_VIDEO_COMP_A);
  for (gint y = 0; y < h; y++)
    for (gint x = 0; x < w; x++)
      dst[(gsize)y * ds + (gsize)x * ps] = src[(gsize)y * ss + (gsize)x * ps];
}

static GstFlowReturn gst_style_transfer_transform_frame(GstVideoFilter *filter,
                                                        GstVideoFrame *inframe,
                                                        GstVideoFrame *outframe) {
  GstStyleTransfer *self = GST_STYLE_TRANSFER(filter);
  GstFlowReturn ret = GST_FLOW_OK;
  GError *error = NULL;

  g_mutex_lock(&self->engine_lock);
  Engine *engine = self->engine;
  if (engine == NULL) {
    g_mutex_unlock(&self->engine_lock);
    GST_ELEMENT_ERROR(self, LIBRARY, INIT, ("The style transfer engine is not initialised"),
                      (NULL));
    return GST_FLOW_ERROR;
  }

  StFrameParams params;
  st_frame_params_init(&params);
  g_mutex_lock(&self->lock);
  params.steps = self->steps;
  params.strength = (float)self->strength;
  params.preserve_colors = self->preserve_colors;
  params.temporal = self->temporal;
  params.motion = self->motion_compensation ? ST_MOTION_ESTIMATE : ST_MOTION_NONE;
  params.smoothing = (float)self->temporal_smoothing;
  params.style_mix = (float)self->style_mix;
  guint transition_ms = self->style_transition;
  gint size = self->processing_size;
  gboolean size_set = self->processing_size_set;
  gboolean reset = self->reset_temporal;
  self->reset_temporal = FALSE;
  gint mask_source = self->mask_source;
  guint feather = self->feather;
  GQuark roi_types[MAX_ROI_TYPES];
  guint n_roi_types = self->n_roi_quarks;
  memcpy(roi_types, self->roi_quarks, n_roi_types * sizeof(GQuark));
  MaskImage mask_image = {NULL, self->mask_image.width, self->mask_image.height};
  if (mask_source == MASK_SOURCE_IMAGE && self->mask_image.bytes != NULL)
    mask_image.bytes = g_bytes_ref(self->mask_image.bytes);
  gboolean has_style2 = self->style2_sample != NULL;
  g_mutex_unlock(&self->lock);

  gint width = GST_VIDEO_FRAME_WIDTH(inframe);
  gint height = GST_VIDEO_FRAME_HEIGHT(inframe);
  gboolean has_alpha = GST_VIDEO_INFO_HAS_ALPHA(&inframe->info);
  StMask mask = {0};
  switch (mask_source) {
  case MASK_SOURCE_ALPHA:
    if (!has_alpha) {
      g_mutex_unlock(&self->engine_lock);
      post_alpha_format_error(self, &inframe->info);
      return GST_FLOW_NOT_NEGOTIATED;
    }
    mask = (StMask){GST_VIDEO_FRAME_COMP_DATA(inframe, GST_VIDEO_COMP_A), width, height,
                    GST_VIDEO_FRAME_COMP_STRIDE(inframe, GST_VIDEO_COMP_A),
                    GST_VIDEO_FRAME_COMP_PSTRIDE(inframe, GST_VIDEO_COMP_A)};
    break;
  case MASK_SOURCE_ROI:
    if (rasterize_rois(engine, inframe->buffer, width, height, roi_types, n_roi_types, feather) ==
            0 &&
        !has_style2) {
      /* nothing to style in this frame: the input as it is, and a fresh start after it (with
       * style-2: its zero mask, the second style everywhere) */
      g_mutex_unlock(&self->engine_lock);
      g_mutex_lock(&self->lock);
      self->reset_temporal = TRUE;
      g_mutex_unlock(&self->lock);
      return gst_video_frame_copy(outframe, inframe) ? GST_FLOW_OK : GST_FLOW_ERROR;
    }
    mask = (StMask){engine->roi_mask, width, height, width, 1};
    break;
  case MASK_SOURCE_IMAGE:
    /* no mask image in use yet (or it failed: a WARNING said so): the whole frame */
    if (mask_image.bytes != NULL)
      mask = (StMask){g_bytes_get_data(mask_image.bytes, NULL), mask_image.width, mask_image.height,
                      mask_image.width, 1};
    break;
  default:
    break;
  }
  if (mask.data != NULL) {
    if (has_style2 && !st_net_has_masked_styles(engine->net)) {
      set_mask_style2_error(&error, mask_source, engine->model_path);
      goto fail;
    }
    params.mask = &mask;
  }
  if (!size_set && engine->is_cpu)
    size = MIN(CPU_PROCESSING_SIZE, MAX(width, height));
  processing_dims(size, width, height, &params.processing_width, &params.processing_height);

  if (reset) {
    GST_DEBUG_OBJECT(self, "temporal state reset");
    st_net_reset_temporal(engine->net);
  }
  params.style_fade = crossfade_progress(self, engine, inframe->buffer, transition_ms);

  StImage in, out;
  if (!image_from_frame(inframe, &in) || !image_from_frame(outframe, &out)) {
    g_set_error(&error, GST_CORE_ERROR, GST_CORE_ERROR_NEGOTIATION, "Unsupported video format %s",
                GST_VIDEO_INFO_NAME(&inframe->info));
    goto fail;
  }
  StError serr = {0};
  if (!st_net_process(engine->net, &in, &out, &params, &serr)) {
    /* device memory exhausted: a resource error, as a full disk is; anything else: the engine */
    if (serr.code == ST_ERROR_MEMORY)
      g_set_error(&error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NO_SPACE_LEFT,
                  "Style transfer failed on a %dx%d frame: %s", width, height, serr.message);
    else
      g_set_error(&error, GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_FAILED,
                  "Style transfer failed on a %dx%d frame: %s", width, height, serr.message);
    goto fail;
  }
  g_mutex_unlock(&self->engine_lock);
  if (mask_image.bytes != NULL)
    g_bytes_unref(mask_image.bytes);
  if (has_alpha)
    copy_alpha(inframe, outframe);
  return ret;

fail:
  g_mutex_unlock(&self->engine_lock);
  if (mask_image.bytes != NULL)
    g_bytes_unref(mask_image.bytes);
  post_gerror(self, error);
  g_clear_error(&error);
  return GST_FLOW_ERROR;
}

/* ---- GObject ----------------------------------------------------------------------------------
 */

static const gchar *default_model_path(void) {
  const gchar *env = g_getenv("ST_MODEL_PATH");
  return env != NULL && env[0] != '\0' ? env : ST_DEFAULT_MODEL_PATH;
}

/* roi-types: a comma-separated list of ROI types (GstVideoRegionOfInterestMeta's roi_type, e.g.
 * "face,person"); spaces around the names are ignored; empty: every ROI. Called with `lock`. */
static void parse_roi_types(GstStyleTransfer *self) {
  self->n_roi_quarks = 0;
  if (self->roi_types == NULL)
    return;
  gchar **names = g_strsplit(self->roi_types, ",", -1);
  for (gchar **n = names; *n != NULL; n++) {
    g_strstrip(*n);
    if ((*n)[0] == '\0')
      continue;
    if (self->n_roi_quarks == MAX_ROI_TYPES) {
      GST_WARNING_OBJECT(self, "roi-types: more than %d types, \"%s\" and the rest are ignored",
                         MAX_ROI_TYPES, *n);
      break;
    }
    self->roi_quarks[self->n_roi_quarks++] = g_quark_from_string(*n);
  }
  g_strfreev(names);
}

static void gst_style_transfer_set_property(GObject *object, guint prop_id, const GValue *value,
                                            GParamSpec *pspec) {
  GstStyleTransfer *self = GST_STYLE_TRANSFER(object);
  gboolean reload = FALSE, mask = FALSE;

  g_mutex_lock(&self->lock);
  switch (prop_id) {
  case PROP_MASK_SOURCE:
    self->mask_source = g_value_get_enum(value);
    mask = mask_image_wanted(self);
    self->reset_temporal = TRUE;
    break;
  case PROP_MASK:
    g_free(self->mask_path);
    self->mask_path = g_value_dup_string(value);
    mask = mask_image_wanted(self);
    break;
  case PROP_ROI_TYPES:
    g_free(self->roi_types);
    self->roi_types = g_value_dup_string(value);
    parse_roi_types(self);
    break;
  case PROP_FEATHER:
    self->feather = g_value_get_uint(value);
    break;
  case PROP_STYLE:
    g_free(self->style_path);
    self->style_path = g_value_dup_string(value);
    break;
  case PROP_STYLE_2:
    g_free(self->style2_path);
    self->style2_path = g_value_dup_string(value);
    break;
  case PROP_STYLE_MIX:
    self->style_mix = g_value_get_double(value);
    break;
  case PROP_STYLE_TRANSITION:
    self->style_transition = g_value_get_uint(value);
    break;
  case PROP_MODEL:
    if (g_strcmp0(self->model_path, g_value_get_string(value)) != 0) {
      g_free(self->model_path);
      self->model_path = g_value_dup_string(value);
      reload = TRUE;
    }
    break;
  case PROP_STEPS:
    self->steps = g_value_get_int(value);
    break;
  case PROP_STRENGTH:
    self->strength = g_value_get_double(value);
    break;
  case PROP_PRESERVE_COLORS:
    self->preserve_colors = g_value_get_boolean(value);
    break;
  case PROP_TEMPORAL:
    self->temporal = g_value_get_boolean(value);
    break;
  case PROP_MOTION_COMPENSATION:
    self->motion_compensation = g_value_get_boolean(value);
    break;
  case PROP_TEMPORAL_SMOOTHING:
    self->temporal_smoothing = g_value_get_double(value);
    break;
  case PROP_DEVICE:
    reload = self->device_index != g_value_get_int(value);
    self->device_index = g_value_get_int(value);
    break;
  case PROP_DEVICE_ID:
    if (g_strcmp0(self->device_id, g_value_get_string(value)) != 0) {
      g_free(self->device_id);
      self->device_id = g_value_dup_string(value);
      reload = TRUE;
    }
    break;
  case PROP_PROCESSING_SIZE:
    self->processing_size = g_value_get_int(value);
    self->processing_size_set = TRUE;
    break;
  case PROP_FP16:
    reload = self->fp16 != g_value_get_boolean(value);
    self->fp16 = g_value_get_boolean(value);
    break;
  default:
    G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
    break;
  }
  /* while started, a new style or engine is loaded by the loader thread: never wait here */
  gboolean cleared = FALSE;
  if (self->started && (prop_id == PROP_STYLE || prop_id == PROP_STYLE_2 || mask || reload))
    cleared = !loader_request(self, prop_id == PROP_STYLE, prop_id == PROP_STYLE_2, mask, reload);
  g_mutex_unlock(&self->lock);
  if (cleared)
    GST_ELEMENT_WARNING(self, RESOURCE, SETTINGS,
                        ("The style was cleared; the current style stays in use until the "
                         "element is restarted"),
                        (NULL));
}

static void gst_style_transfer_get_property(GObject *object, guint prop_id, GValue *value,
                                            GParamSpec *pspec) {
  GstStyleTransfer *self = GST_STYLE_TRANSFER(object);
  g_mutex_lock(&self->lock);
  switch (prop_id) {
  case PROP_STYLE:
    g_value_set_string(value, self->style_path);
    break;
  case PROP_MASK_SOURCE:
    g_value_set_enum(value, self->mask_source);
    break;
  case PROP_MASK:
    g_value_set_string(value, self->mask_path);
    break;
  case PROP_ROI_TYPES:
    g_value_set_string(value, self->roi_types);
    break;
  case PROP_FEATHER:
    g_value_set_uint(value, self->feather);
    break;
  case PROP_STYLE_2:
    g_value_set_string(value, self->style2_path);
    break;
  case PROP_STYLE_MIX:
    g_value_set_double(value, self->style_mix);
    break;
  case PROP_STYLE_TRANSITION:
    g_value_set_uint(value, self->style_transition);
    break;
  case PROP_MODEL:
    g_value_set_string(value, self->model_path);
    break;
  case PROP_STEPS:
    g_value_set_int(value, self->steps);
    break;
  case PROP_STRENGTH:
    g_value_set_double(value, self->strength);
    break;
  case PROP_PRESERVE_COLORS:
    g_value_set_boolean(value, self->preserve_colors);
    break;
  case PROP_TEMPORAL:
    g_value_set_boolean(value, self->temporal);
    break;
  case PROP_MOTION_COMPENSATION:
    g_value_set_boolean(value, self->motion_compensation);
    break;
  case PROP_TEMPORAL_SMOOTHING:
    g_value_set_double(value, self->temporal_smoothing);
    break;
  case PROP_DEVICE:
    g_value_set_int(value, self->device_index);
    break;
  case PROP_PROCESSING_SIZE:
    g_value_set_int(value, self->processing_size);
    break;
  case PROP_FP16:
    g_value_set_boolean(value, self->fp16);
    break;
  case PROP_DEVICE_NAME:
    g_value_set_string(value, self->device_name);
    break;
  case PROP_DEVICE_ID:
    g_value_set_string(value, self->device_id);
    break;
  case PROP_DEVICE_UUID:
    g_value_set_string(value, self->device_uuid);
    break;
  case PROP_DEVICE_PCI_BUS_ID:
    g_value_set_string(value, self->device_pci_bus_id);
    break;
  case PROP_DEVICE_MEMORY:
    g_value_set_uint64(value, self->active_dev ? st_device_memory_in_use(self->active_dev) : 0);
    break;
  default:
    G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
    break;
  }
  g_mutex_unlock(&self->lock);
}

static void gst_style_transfer_finalize(GObject *object) {
  GstStyleTransfer *self = GST_STYLE_TRANSFER(object);
  if (self->loader != NULL) /* not stopped (disposed while running) */
    loader_stop(self);
  engine_free(self->engine);
  if (self->style_sample != NULL)
    gst_sample_unref(self->style_sample);
  g_free(self->style_applied);
  g_free(self->style_path);
  if (self->style2_sample != NULL)
    gst_sample_unref(self->style2_sample);
  g_free(self->style2_applied);
  g_free(self->style2_path);
  mask_image_clear(&self->mask_image);
  g_free(self->mask_applied);
  g_free(self->mask_path);
  g_free(self->roi_types);
  g_free(self->model_path);
  g_free(self->device_name);
  g_free(self->device_id);
  g_free(self->device_uuid);
  g_free(self->device_pci_bus_id);
  g_mutex_clear(&self->lock);
  g_mutex_clear(&self->engine_lock);
  g_cond_clear(&self->loader_cond);
  device_pool_drop(); /* after engine_free: the last element closes the idle devices */
  G_OBJECT_CLASS(parent_class)->finalize(object);
}

static void gst_style_transfer_class_init(GstStyleTransferClass *klass) {
  GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS(klass);
  GstVideoFilterClass *filter_class = GST_VIDEO_FILTER_CLASS(klass);
  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING;

  GST_DEBUG_CATEGORY_INIT(gst_style_transfer_debug, "styletransfer", 0,
                          "neural style transfer on Vulkan");
  st_set_log_func(engine_log, NULL);

  gobject_class->set_property = gst_style_transfer_set_property;
  gobject_class->get_property = gst_style_transfer_get_property;
  gobject_class->finalize = gst_style_transfer_finalize;

  /**
   * GstStyleTransfer:style:
   *
   * Path of the style image, a regular file. Decoded with GStreamer (any image format the
   * installed plugins decode, up to 100 megapixels). Can be changed while playing: the new image
   * is decoded by the element's loader thread (setting the property returns at once) and used
   * from the "styletransfer-style-applied" message on; if it fails, a WARNING says why and the
   * previous style stays.
   */
  g_object_class_install_property(
      gobject_class, PROP_STYLE,
      g_param_spec_string("style", "Style image",
                          "Path of the image whose style is transferred to the video "
                          "(any format GStreamer can decode)",
                          NULL, rw));
  /**
   * GstStyleTransfer:style-2:
   *
   * Path of a second style image (as `style`). Without a mask, frames use the two styles'
   * statistics interpolated by `style-mix`; with a mask (#GstStyleTransfer:mask-source), `style`
   * applies where the mask is white and `style-2` where it is black, inside the network (each
   * region with its own statistics; the model needs its masked subgraphs, as the bundled one
   * has). Can be set, changed and cleared ("" or NULL) while playing, as `style` (loaded by the
   * loader thread, "styletransfer-style-applied" with property "style-2").
   */
  g_object_class_install_property(
      gobject_class, PROP_STYLE_2,
      g_param_spec_string("style-2", "Second style image",
                          "Path of a second style image: style-mix interpolates between the two "
                          "styles, or with a mask it applies where the mask is black (unset: "
                          "style alone)",
                          NULL, rw));
  /**
   * GstStyleTransfer:style-mix:
   *
   * Interpolation between `style` (0) and `style-2` (1): every style statistic the network uses
   * (means, deviations, colouring and Gram matrices) is interpolated, as AdaIN's style
   * interpolation does, not the output pixels. Controllable (GstController) for animations; a
   * change costs a few small dispatches, not a new recording of the frame. Ignored without
   * `style-2`.
   */
  g_object_class_install_property(
      gobject_class, PROP_STYLE_MIX,
      g_param_spec_double("style-mix", "Style mix",
                          "Interpolation of the style statistics between style (0) and style-2 "
                          "(1)",
                          0.0, 1.0, DEFAULT_STYLE_MIX, rw | GST_PARAM_CONTROLLABLE));
  /**
   * GstStyleTransfer:style-transition:
   *
   * Duration, in milliseconds of running time, of the crossfade when `style` changes while
   * playing: the style statistics move from the old style to the new one over this time instead
   * of jumping, and the temporal state carries on (no reset, no visible pop). 0: the new style
   * applies at once and the temporal state starts afresh.
   */
  g_object_class_install_property(
      gobject_class, PROP_STYLE_TRANSITION,
      g_param_spec_uint("style-transition", "Style transition",
                        "Crossfade time in ms when the style changes while playing (0: switch "
                        "at once)",
                        0, MAX_STYLE_TRANSITION, DEFAULT_STYLE_TRANSITION, rw));
  /**
   * GstStyleTransfer:mask-source:
   *
   * Where the style applies (spatial control). `none`: the whole frame. `alpha`: the alpha
   * channel of RGBA or BGRA input, e.g. from a matting or segmentation element upstream (255: the
   * style, 0: the input frame, values between blend; other formats are a negotiation error).
   * `roi`: the rectangles of the buffers' GstVideoRegionOfInterestMeta (from a face or object
   * detector), filtered by #GstStyleTransfer:roi-types, with soft edges of
   * #GstStyleTransfer:feather pixels; a frame without a matching ROI passes through unchanged
   * (with style-2: is style-2 everywhere). `image`: a still mask image (#GstStyleTransfer:mask),
   * scaled to the frame. With #GstStyleTransfer:style-2 set, style-2 applies where the mask is
   * black instead of the input frame. Can change while playing.
   */
  g_object_class_install_property(
      gobject_class, PROP_MASK_SOURCE,
      g_param_spec_enum("mask-source", "Mask source",
                        "Where the style applies: the whole frame, the input's alpha, the "
                        "buffers' ROI metas or a mask image (elsewhere the input shows, or "
                        "style-2 when set)",
                        GST_TYPE_STYLE_TRANSFER_MASK_SOURCE, DEFAULT_MASK_SOURCE, rw));
  /**
   * GstStyleTransfer:mask:
   *
   * Path of the mask image used with mask-source=image: any image GStreamer decodes (as
   * #GstStyleTransfer:style), of any size (scaled bilinearly to the frame; decoded at most 2048
   * pixels on the longer side). Its luminance times its alpha is the mask: white (opaque) where
   * the style applies, black or transparent where the input frame shows, grey blends. Can be
   * changed while playing: decoded by the loader thread, in use from the
   * "styletransfer-mask-applied" message on (fields: path, width, height, mask-width,
   * mask-height, decode-ms); if it fails, a WARNING says why and the previous mask stays.
   */
  g_object_class_install_property(
      gobject_class, PROP_MASK,
      g_param_spec_string("mask", "Mask image",
                          "Path of the mask image for mask-source=image (white: the style, "
                          "black: the input frame)",
                          NULL, rw));
  /**
   * GstStyleTransfer:roi-types:
   *
   * With mask-source=roi, the ROI types that get the style, comma-separated (the roi_type of
   * GstVideoRegionOfInterestMeta, e.g. "face" or "face,person"). Unset or empty: every ROI.
   */
  g_object_class_install_property(
      gobject_class, PROP_ROI_TYPES,
      g_param_spec_string("roi-types", "ROI types",
                          "Comma-separated ROI types styled with mask-source=roi (empty: all)",
                          NULL, rw));
  /**
   * GstStyleTransfer:feather:
   *
   * With mask-source=roi, the width in pixels of the soft edge outside each ROI rectangle: the
   * style fades out linearly with the distance from the rectangle. 0: hard edges.
   */
  g_object_class_install_property(
      gobject_class, PROP_FEATHER,
      g_param_spec_uint("feather", "Feather",
                        "Soft edge width in pixels outside each ROI rectangle (mask-source=roi)", 0,
                        MAX_FEATHER, DEFAULT_FEATHER, rw));
  gst_type_mark_as_plugin_api(GST_TYPE_STYLE_TRANSFER_MASK_SOURCE, 0);
  /**
   * GstStyleTransfer:model:
   *
   * Path of the model file (safetensors, see weights/FORMAT.md). Defaults to the installed model,
   * or to the environment variable ST_MODEL_PATH when it is set. Changing it (or device, or fp16)
   * while playing loads the new model beside the running one on the loader thread and swaps it in
   * ("styletransfer-engine-applied"); if it fails, a WARNING says why and the running one stays.
   */
  g_object_class_install_property(
      gobject_class, PROP_MODEL,
      g_param_spec_string("model", "Model file",
                          "Path of the styletransfer model (.safetensors); default: the installed "
                          "model, or $ST_MODEL_PATH when set",
                          default_model_path(), rw));
  g_object_class_install_property(
      gobject_class, PROP_STEPS,
      g_param_spec_int("steps", "Refinement steps",
                       "Number of refinement steps per frame (more: closer to the style, slower)",
                       0, MAX_STEPS, DEFAULT_STEPS, rw | GST_PARAM_CONTROLLABLE));
  g_object_class_install_property(
      gobject_class, PROP_STRENGTH,
      g_param_spec_double("strength", "Strength",
                          "How much of the style is applied (0 = none: the content as the network "
                          "reconstructs it, 1 = full style)",
                          0.0, 1.0, DEFAULT_STRENGTH, rw | GST_PARAM_CONTROLLABLE));
  g_object_class_install_property(
      gobject_class, PROP_PRESERVE_COLORS,
      g_param_spec_boolean("preserve-colors", "Preserve colors",
                           "Keep the colours (chroma) of the input and take only the texture and "
                           "luminance of the style",
                           DEFAULT_PRESERVE_COLORS, rw));
  g_object_class_install_property(
      gobject_class, PROP_TEMPORAL,
      g_param_spec_boolean("temporal", "Temporal reuse",
                           "Continue the refinement of the previous frame (less flicker)",
                           DEFAULT_TEMPORAL, rw));
  /**
   * GstStyleTransfer:motion-compensation:
   *
   * With #GstStyleTransfer:temporal, move the previous frame's refinement with the camera before
   * reusing it: the global shift between consecutive input frames is estimated on the CPU from
   * small luma copies of the frames (a few milliseconds); a still scene or an object moving on a
   * still background gives no shift.
   */
  g_object_class_install_property(
      gobject_class, PROP_MOTION_COMPENSATION,
      g_param_spec_boolean("motion-compensation", "Motion compensation",
                           "With temporal reuse, move the previous frame's refinement by the "
                           "camera's global motion (estimated from the input frames)",
                           DEFAULT_MOTION_COMPENSATION, rw));
  /**
   * GstStyleTransfer:temporal-smoothing:
   *
   * With #GstStyleTransfer:temporal, where the input did not change beyond noise once the motion
   * is compensated (local 8x8-block motion around the global motion, estimated on the CPU from
   * small luma copies of the frames; none without #GstStyleTransfer:motion-compensation), keep
   * this fraction of the previous output, moved with the scene: an exponential average along the
   * motion that stops the painting's texture from shimmering. Where the input changed (a moving
   * hand, a cut) the new output is used. 0 turns it off. A change of style, steps, strength or
   * preserve-colors starts afresh.
   */
  g_object_class_install_property(
      gobject_class, PROP_TEMPORAL_SMOOTHING,
      g_param_spec_double("temporal-smoothing", "Temporal smoothing",
                          "With temporal reuse, fraction of the motion-compensated previous "
                          "output kept where the scene did not change (0 = off)",
                          0.0, MAX_TEMPORAL_SMOOTHING, DEFAULT_TEMPORAL_SMOOTHING,
                          rw | GST_PARAM_CONTROLLABLE));
  g_object_class_install_property(
      gobject_class, PROP_DEVICE,
      g_param_spec_int("device", "Vulkan device",
                       "Index of the Vulkan physical device (-1 = automatic: discrete GPU, then "
                       "integrated, virtual, CPU); device-id overrides it",
                       -1, MAX_DEVICE, DEFAULT_DEVICE, rw));
  /**
   * GstStyleTransfer:processing-size:
   *
   * The longer side, in pixels, of the image the network works on (the aspect ratio is kept and
   * the result is scaled back to the frame size). 0 means the frame size, and so does a size
   * larger than the frame's (the network never works on more pixels than the frame has). When the
   * property has never been set and the device is a CPU Vulkan implementation (lavapipe), 256 (or
   * the frame size if smaller) is used so that the pipeline stays usable; set the property
   * explicitly to override that.
   */
  g_object_class_install_property(
      gobject_class, PROP_PROCESSING_SIZE,
      g_param_spec_int("processing-size", "Processing size",
                       "Longer side of the network's input in pixels, aspect ratio kept "
                       "(0 = frame size, never larger than the frame; if never set, CPU Vulkan "
                       "devices use 256)",
                       0, MAX_PROCESSING_SIZE, DEFAULT_PROCESSING_SIZE, rw));
  g_object_class_install_property(
      gobject_class, PROP_FP16,
      g_param_spec_boolean("fp16", "FP16 storage",
                           "Store weights and feature maps as 16-bit floats when the device "
                           "supports it",
                           DEFAULT_FP16, rw));
  g_object_class_install_property(
      gobject_class, PROP_DEVICE_NAME,
      g_param_spec_string("device-name", "Device name",
                          "Name of the Vulkan device in use (NULL while stopped)", NULL,
                          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
  /**
   * GstStyleTransfer:device-id:
   *
   * Selects the Vulkan device by an id that means the same device in every process, unlike the
   * index of #GstStyleTransfer:device (the Vulkan loader ignores CUDA_VISIBLE_DEVICES and Slurm's
   * GPU_DEVICE_ORDINAL): its UUID, 32 hex digits with or without dashes (NVIDIA: the UUID that
   * nvidia-smi prints, "GPU-" prefix allowed), or its PCI bus id "pci:DOMAIN:BUS:DEVICE.FUNCTION"
   * (hex; devices with VK_EXT_pci_bus_info). Overrides #GstStyleTransfer:device when set. An
   * unknown id is an error that lists the ids of the devices present.
   */
  g_object_class_install_property(
      gobject_class, PROP_DEVICE_ID,
      g_param_spec_string("device-id", "Vulkan device id",
                          "UUID (hex, dashes optional) or PCI bus id (pci:DDDD:BB:DD.F) of the "
                          "Vulkan device; overrides device when set",
                          NULL, rw));
  g_object_class_install_property(
      gobject_class, PROP_DEVICE_UUID,
      g_param_spec_string("device-uuid", "Device UUID",
                          "UUID of the Vulkan device in use (\"\" when the device reports none, "
                          "NULL before the element started)",
                          NULL, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
  g_object_class_install_property(
      gobject_class, PROP_DEVICE_PCI_BUS_ID,
      g_param_spec_string("device-pci-bus-id", "Device PCI bus id",
                          "PCI bus id DDDD:BB:DD.F of the Vulkan device in use (\"\" when the "
                          "device reports none, NULL before the element started)",
                          NULL, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
  /**
   * GstStyleTransfer:device-memory:
   *
   * Bytes of device memory the element holds on the device in use (the model's weights, the
   * feature maps of the frame plan, frames, the style statistics and the temporal state); 0 while
   * stopped. Reading it never waits for the frame being processed.
   */
  g_object_class_install_property(
      gobject_class, PROP_DEVICE_MEMORY,
      g_param_spec_uint64("device-memory", "Device memory",
                          "Bytes of device memory held on the device in use (0 while stopped)", 0,
                          G_MAXUINT64, 0, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));

  gst_element_class_set_static_metadata(
      element_class, "Style transfer", "Filter/Effect/Video",
      "Repaints video in the style of an artwork image with a neural network run as Vulkan "
      "compute shaders",
      "The styletransfer authors");
  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_add_static_pad_template(element_class, &src_template);

  trans_class->start = GST_DEBUG_FUNCPTR(gst_style_transfer_start);
  trans_class->stop = GST_DEBUG_FUNCPTR(gst_style_transfer_stop);
  trans_class->sink_event = GST_DEBUG_FUNCPTR(gst_style_transfer_sink_event);
  trans_class->before_transform = GST_DEBUG_FUNCPTR(gst_style_transfer_before_transform);
  filter_class->set_info = GST_DEBUG_FUNCPTR(gst_style_transfer_set_info);
  filter_class->transform_frame = GST_DEBUG_FUNCPTR(gst_style_transfer_transform_frame);
}

static void gst_style_transfer_init(GstStyleTransfer *self) {
  g_mutex_init(&self->lock);
  g_mutex_init(&self->engine_lock);
  g_cond_init(&self->loader_cond);
  self->model_path = g_strdup(default_model_path());
  self->steps = DEFAULT_STEPS;
  self->strength = DEFAULT_STRENGTH;
  self->preserve_colors = DEFAULT_PRESERVE_COLORS;
  self->temporal = DEFAULT_TEMPORAL;
  self->motion_compensation = DEFAULT_MOTION_COMPENSATION;
  self->temporal_smoothing = DEFAULT_TEMPORAL_SMOOTHING;
  self->device_index = DEFAULT_DEVICE;
  self->processing_size = DEFAULT_PROCESSING_SIZE;
  self->fp16 = DEFAULT_FP16;
  self->style_mix = DEFAULT_STYLE_MIX;
  self->style_transition = DEFAULT_STYLE_TRANSITION;
  self->mask_source = DEFAULT_MASK_SOURCE;
  self->feather = DEFAULT_FEATHER;
  self->job_slot = -1;
  /* drop frames that would reach the sink late anyway (GstBaseTransform's QoS handling), rather
   * than queuing them behind a slow device */
  gst_base_transform_set_qos_enabled(GST_BASE_TRANSFORM(self), TRUE);
  device_pool_hold();
}
