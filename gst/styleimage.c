/* SPDX-License-Identifier: LGPL-2.1-or-later
 * styletransfer: reading style images (and the model file) safely. See styleimage.h.
 */
#define _POSIX_C_SOURCE 200809L /* pread(), O_CLOEXEC with -std=c11 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "styleimage.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <gst/app/gstappsink.h>
#include <gst/video/video.h>

GST_DEBUG_CATEGORY_STATIC(style_image_debug);
#define GST_CAT_DEFAULT style_image_debug

static void ensure_debug_category(void) {
  static gsize done = 0;
  if (g_once_init_enter(&done)) {
    /* the element's category: one name for everything the element logs */
    GST_DEBUG_CATEGORY_INIT(style_image_debug, "styletransfer", 0,
                            "neural style transfer on Vulkan");
    g_once_init_leave(&done, 1);
  }
}

/* ---- the file itself -------------------------------------------------------------------------
 */

/* What a file that is not a regular file is, for the message. */
static const gchar *file_kind(mode_t mode) {
  if (S_ISDIR(mode))
    return "is a directory, not a file";
  if (S_ISFIFO(mode))
    return "is a named pipe (FIFO), not a regular file";
  if (S_ISCHR(mode))
    return "is a character device (like /dev/zero), not a regular file";
  if (S_ISBLK(mode))
    return "is a block device, not a regular file";
  if (S_ISSOCK(mode))
    return "is a socket, not a regular file";
  return S_ISREG(mode) ? NULL : "is not a regular file";
}

static void set_errno_error(GError **error, int e, const gchar *what, const gchar *path) {
  if (e == ENOENT || e == ENOTDIR)
    g_set_error(error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND, "%s \"%s\" does not exist",
                what, path);
  else
    g_set_error(error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_OPEN_READ,
                "%s \"%s\" cannot be read: %s", what, path, g_strerror(e));
}

/* Opens `path` for reading if it is a regular file. The type is checked before opening (so that
 * opening a FIFO cannot wait for a writer) and again on the open descriptor (O_NONBLOCK: a file
 * replaced by a FIFO in between does not block either). Returns the descriptor or -1. */
static gint open_regular_file(const gchar *path, const gchar *what, guint64 *size, GError **error) {
  GStatBuf st;
  const gchar *kind;
  if (g_stat(path, &st) != 0) {
    set_errno_error(error, errno, what, path);
    return -1;
  }
  if ((kind = file_kind(st.st_mode)) != NULL) {
    g_set_error(error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_OPEN_READ, "%s \"%s\" %s", what, path,
                kind);
    return -1;
  }
  gint fd = g_open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC, 0);
  if (fd < 0) {
    set_errno_error(error, errno, what, path);
    return -1;
  }
  struct stat fst;
  if (fstat(fd, &fst) != 0 || (kind = file_kind(fst.st_mode)) != NULL) {
    g_set_error(error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_OPEN_READ, "%s \"%s\" %s", what, path,
                kind != NULL ? kind : "cannot be examined");
    g_close(fd, NULL);
    return -1;
  }
  if (size != NULL)
    *size = (guint64)fst.st_size;
  return fd;
}

gboolean style_image_check_file(const gchar *path, const gchar *what, GError **error) {
  ensure_debug_category();
  gint fd = open_regular_file(path, what, NULL, error);
  if (fd < 0)
    return FALSE;
  g_close(fd, NULL);
  return TRUE;
}

/* ---- the structure of PNG and JPEG files ---------------------------------------------------
 * Walked before decoding (chunk lengths and marker segments; no pixel data is decoded), so that
 * a truncated file is refused with a precise message (the decoders either decode nothing
 * without saying why, or fill the missing part with grey) and the declared size is known before
 * any decoder allocates a frame for it. */

typedef struct {
  gint fd;
  guint64 size;
  guint64 pos; /* offset of the next byte */
  guint64 buf_off;
  gsize buf_len;
  guint8 buf[64 * 1024];
} Reader;

/* The byte at r->pos (advancing), or -1 at the end of the file. */
static gint read_byte(Reader *r) {
  if (r->pos < r->buf_off || r->pos >= r->buf_off + r->buf_len) {
    if (r->pos >= r->size)
      return -1;
    gssize n;
    do
      n = pread(r->fd, r->buf, sizeof r->buf, (off_t)r->pos);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
      return -1;
    r->buf_off = r->pos;
    r->buf_len = (gsize)n;
  }
  return r->buf[r->pos++ - r->buf_off];
}

/* Advances past the next 0xFF byte; FALSE at the end of the file. */
static gboolean skip_past_ff(Reader *r) {
  for (;;) {
    if (read_byte(r) < 0) /* (re)fills the buffer */
      return FALSE;
    r->pos--;
    const guint8 *start = r->buf + (r->pos - r->buf_off);
    gsize avail = r->buf_len - (gsize)(r->pos - r->buf_off);
    const guint8 *ff = memchr(start, 0xFF, avail);
    r->pos += ff != NULL ? (guint64)(ff - start) + 1 : avail;
    if (ff != NULL)
      return TRUE;
  }
}

/* A big-endian integer of `n` bytes, or -1 at the end of the file. */
static gint64 read_be(Reader *r, gint n) {
  gint64 v = 0;
  for (gint i = 0; i < n; i++) {
    gint b = read_byte(r);
    if (b < 0)
      return -1;
    v = (v << 8) | b;
  }
  return v;
}

static gboolean size_allowed(gint width, gint height) {
  return (guint64)MAX(width, 0) * (guint64)MAX(height, 0) <= STYLE_IMAGE_MAX_PIXELS;
}

typedef enum { IMAGE_OTHER, IMAGE_PNG, IMAGE_JPEG, IMAGE_TIFF } ImageType;

/* Walks the PNG chunks up to IEND. Returns NULL or the problem (caller frees). */
static gchar *walk_png(Reader *r, gint *width, gint *height) {
  r->pos = 8;
  gboolean first = TRUE;
  for (;;) {
    guint64 start = r->pos;
    gint64 len = read_be(r, 4), type = read_be(r, 4);
    if (type < 0)
      return g_strdup_printf("the file is truncated: it ends at byte %" G_GUINT64_FORMAT
                             " without the PNG end chunk (IEND)",
                             r->size);
    if (first) {
      gint64 w = read_be(r, 4), h = read_be(r, 4);
      if (type != 0x49484452 /* IHDR */ || len != 13 || h < 0)
        return g_strdup("the PNG header (IHDR chunk) is missing or damaged");
      *width = (gint)MIN(w, G_MAXINT);
      *height = (gint)MIN(h, G_MAXINT);
      if (!size_allowed(*width, *height))
        return NULL; /* refused for its size: no need to read further */
      first = FALSE;
    }
    if (type == 0x49454E44 /* IEND */)
      return NULL;
    r->pos = start + 12 + (guint64)len; /* length, type, data, CRC */
    if (r->pos > r->size)
      return g_strdup_printf("the file is truncated: it ends at byte %" G_GUINT64_FORMAT
                             ", inside a PNG chunk of %" G_GINT64_FORMAT " bytes that starts at "
                             "byte %" G_GUINT64_FORMAT,
                             r->size, len, start);
  }
}

static gchar *jpeg_truncated(const Reader *r) {
  return g_strdup_printf("the file is truncated: it ends at byte %" G_GUINT64_FORMAT
                         ", before the JPEG end-of-image marker",
                         r->size);
}

/* Walks the JPEG marker segments (and the entropy-coded data after each start of scan) up to the
 * end-of-image marker; data after it is ignored. Returns NULL or the problem (caller frees). */
static gchar *walk_jpeg(Reader *r, gint *width, gint *height) {
  r->pos = 2; /* after SOI */
  for (;;) {
    guint64 at = r->pos;
    gint c = read_byte(r);
    if (c < 0)
      return jpeg_truncated(r);
    if (c != 0xFF)
      return g_strdup_printf("the JPEG data is damaged: no marker at byte %" G_GUINT64_FORMAT, at);
    gint m;
    do
      m = read_byte(r);
    while (m == 0xFF);
    if (m < 0)
      return jpeg_truncated(r);
    if (m == 0xD9) /* EOI */
      return NULL;
    if (m == 0x01 || (m >= 0xD0 && m <= 0xD8)) /* TEM, RSTn, SOI: no length */
      continue;
    gint64 len = read_be(r, 2);
    if (len < 0)
      return jpeg_truncated(r);
    if (len < 2)
      return g_strdup_printf("the JPEG data is damaged: a segment at byte %" G_GUINT64_FORMAT
                             " has length %" G_GINT64_FORMAT,
                             at, len);
    guint64 next = r->pos + (guint64)len - 2;
    gboolean sof = m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
    if (sof && *width == 0) {
      (void)read_byte(r); /* sample precision */
      gint64 h = read_be(r, 2), w = read_be(r, 2);
      if (w < 0)
        return jpeg_truncated(r);
      *width = (gint)w;
      *height = (gint)h;
      if (!size_allowed(*width, *height))
        return NULL; /* refused for its size: no need to read further */
    }
    r->pos = next;
    if (r->pos > r->size)
      return jpeg_truncated(r);
    if (m != 0xDA) /* not a start of scan */
      continue;
    /* entropy-coded data: up to the next marker that is not a stuffed 0xFF00 or a restart */
    for (;;) {
      if (!skip_past_ff(r))
        return jpeg_truncated(r);
      gint n;
      do
        n = read_byte(r);
      while (n == 0xFF);
      if (n < 0)
        return jpeg_truncated(r);
      if (n != 0x00 && !(n >= 0xD0 && n <= 0xD7)) {
        r->pos -= 2; /* back to the 0xFF before the marker */
        break;
      }
    }
  }
}

/* A TIFF integer of `n` bytes in the file's byte order, or -1 at the end of the file. */
static gint64 read_tiff_int(Reader *r, gint n, gboolean little) {
  if (!little)
    return read_be(r, n);
  gint64 v = 0;
  for (gint i = 0; i < n; i++) {
    gint b = read_byte(r);
    if (b < 0)
      return -1;
    v |= (gint64)b << (8 * i);
  }
  return v;
}

/* Reads the size of the first image of a TIFF file (ImageWidth and ImageLength in its first
 * directory); the image data, anywhere in the file, is not checked. */
static gchar *read_tiff_size(Reader *r, gboolean little, gint *width, gint *height) {
  r->pos = 4;
  gint64 ifd = read_tiff_int(r, 4, little);
  if (ifd < 8 || (guint64)ifd + 2 > r->size)
    return g_strdup("the TIFF header is damaged (no image directory)");
  r->pos = (guint64)ifd;
  gint64 entries = read_tiff_int(r, 2, little);
  for (gint64 i = 0; i < entries; i++) {
    gint64 tag = read_tiff_int(r, 2, little), type = read_tiff_int(r, 2, little);
    gint64 count = read_tiff_int(r, 4, little);
    /* a SHORT (3) is in the first two bytes of the value field, a LONG (4) fills it */
    gint64 value = type == 3 ? read_tiff_int(r, 2, little) : read_tiff_int(r, 4, little);
    if (type == 3)
      r->pos += 2;
    if (value < 0 || count < 0)
      return g_strdup("the file is truncated: it ends inside the TIFF image directory");
    if (tag == 256 /* ImageWidth */ && count == 1 && (type == 3 || type == 4))
      *width = (gint)MIN(value, G_MAXINT);
    else if (tag == 257 /* ImageLength */ && count == 1 && (type == 3 || type == 4))
      *height = (gint)MIN(value, G_MAXINT);
  }
  return NULL;
}

/* Checks the file's structure when it is a PNG or a JPEG and reads its declared size (0x0 when
 * unknown; for TIFF files, the size only). Returns FALSE with `error` set when the file is
 * truncated or damaged. */
static gboolean check_structure(gint fd, guint64 size, const gchar *what, const gchar *path,
                                gint *width, gint *height, GError **error) {
  static const guint8 png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  Reader *r = g_new0(Reader, 1);
  r->fd = fd;
  r->size = size;
  guint8 head[8];
  gsize n = 0;
  for (gint c; n < sizeof head && (c = read_byte(r)) >= 0;)
    head[n++] = (guint8)c;
  ImageType type = IMAGE_OTHER;
  if (n == 8 && memcmp(head, png_sig, 8) == 0)
    type = IMAGE_PNG;
  else if (n >= 3 && head[0] == 0xFF && head[1] == 0xD8 && head[2] == 0xFF)
    type = IMAGE_JPEG;
  else if (n >= 4 && (memcmp(head, "II*\0", 4) == 0 || memcmp(head, "MM\0*", 4) == 0))
    type = IMAGE_TIFF;
  *width = *height = 0;
  gchar *problem = type == IMAGE_PNG    ? walk_png(r, width, height)
                   : type == IMAGE_JPEG ? walk_jpeg(r, width, height)
                   : type == IMAGE_TIFF ? read_tiff_size(r, head[0] == 'I', width, height)
                                        : NULL;
  /* The decoders keep the whole image's data in memory (twice, as they assemble it) before they
   * decode it: refuse more than the declared pixels can need, at most 8 bytes per pixel (plus
   * room for metadata such as colour profiles and thumbnails), so that memory follows the
   * size limit. Data after the image's end is not read. */
  guint64 need = 8 * (guint64)*width * (guint64)*height + (guint64)*height + STYLE_IMAGE_METADATA;
  if (problem == NULL && (type == IMAGE_PNG || type == IMAGE_JPEG) &&
      size_allowed(*width, *height) && r->pos > need)
    problem = g_strdup_printf("its image data takes %" G_GUINT64_FORMAT " bytes, more than a "
                              "%dx%d image can need (%" G_GUINT64_FORMAT " bytes)",
                              r->pos, *width, *height, need);
  g_free(r);
  if (problem != NULL) {
    g_set_error(error, GST_STREAM_ERROR, GST_STREAM_ERROR_DECODE, "Could not decode %s \"%s\": %s",
                what, path, problem);
    g_free(problem);
    return FALSE;
  }
  return TRUE;
}

/* ---- the declared size -------------------------------------------------------------------------
 */

static void set_too_large_error(GError **error, const gchar *what, const gchar *path, gint width,
                                gint height, gint max_side) {
  g_set_error(error, GST_STREAM_ERROR, GST_STREAM_ERROR_DECODE,
              "%c%s \"%s\" is too large: %dx%d pixels (%.1f megapixels), more than the %d "
              "megapixels the element decodes. The image is used at %d pixels on the longer side, "
              "so a smaller copy of it gives the same result",
              g_ascii_toupper(what[0]), what + 1, path, width, height,
              (gdouble)width * height / 1e6, STYLE_IMAGE_MAX_PIXELS / 1000000, max_side);
}

/* An allocator that refuses every allocation. Offered to a decoder whose output caps exceed the
 * limit (answering its ALLOCATION query), so that it fails before allocating the frame: the
 * decoders carry on when their caps are refused, and allocate anyway. */
typedef struct {
  GstAllocator parent;
} RefusingAllocator;
typedef struct {
  GstAllocatorClass parent_class;
} RefusingAllocatorClass;

GType refusing_allocator_get_type(void);
G_DEFINE_TYPE(RefusingAllocator, refusing_allocator, GST_TYPE_ALLOCATOR)

static GstMemory *refusing_alloc(GstAllocator *allocator, gsize size, GstAllocationParams *params) {
  (void)params;
  GST_DEBUG_OBJECT(allocator,
                   "refusing to allocate %" G_GSIZE_FORMAT " bytes for a style image "
                   "above the size limit",
                   size);
  return NULL;
}

static void refusing_free(GstAllocator *allocator, GstMemory *memory) {
  (void)allocator;
  (void)memory; /* never allocated */
}

static void refusing_allocator_class_init(RefusingAllocatorClass *klass) {
  GST_ALLOCATOR_CLASS(klass)->alloc = refusing_alloc;
  GST_ALLOCATOR_CLASS(klass)->free = refusing_free;
}

static void refusing_allocator_init(RefusingAllocator *self) {
  GST_ALLOCATOR(self)->mem_type = "StyleTransferRefused";
  GST_OBJECT_FLAG_SET(self, GST_ALLOCATOR_FLAG_CUSTOM_ALLOC);
}

/* What the private pipeline's streaming threads found. They post an application message on
 * the pipeline's bus ("styletransfer-refused", "styletransfer-no-video") to end the wait at once
 * instead of at the timeout. */
typedef struct {
  GMutex lock;
  GstBus *bus;
  gint width, height;            /* the decoded frame's size (first raw video caps) */
  gint too_large_w, too_large_h; /* the first size above the limit, if any */
  gboolean linked;               /* a decoded video stream reached videoscale */
  GString *others;               /* the other streams decodebin found (their caps names) */
} DecodeWatch;

static void post_app_message(GstBus *bus, const gchar *name) {
  gst_bus_post(bus, gst_message_new_application(NULL, gst_structure_new_empty(name)));
}

/* Records the size announced by `caps` (if any); FALSE when it is above the limit. */
static gboolean watch_caps(DecodeWatch *w, GstCaps *caps) {
  const GstStructure *s =
      caps != NULL && gst_caps_get_size(caps) > 0 ? gst_caps_get_structure(caps, 0) : NULL;
  gint width = 0, height = 0;
  if (s == NULL || !gst_structure_get_int(s, "width", &width) ||
      !gst_structure_get_int(s, "height", &height))
    return TRUE;
  gboolean ok = size_allowed(width, height), first_refusal = FALSE;
  g_mutex_lock(&w->lock);
  if (!ok && w->too_large_w == 0) {
    w->too_large_w = width;
    w->too_large_h = height;
    first_refusal = TRUE;
  }
  if (ok && w->width == 0 && gst_structure_has_name(s, "video/x-raw")) {
    w->width = width;
    w->height = height;
  }
  g_mutex_unlock(&w->lock);
  if (first_refusal)
    post_app_message(w->bus, "styletransfer-refused");
  return ok;
}

/* decodebin: do not plug a decoder for a stream whose caps (from typefinding, a demuxer or a
 * parser) declare a size above the limit. */
static gboolean on_autoplug_continue(GstElement *bin, GstPad *pad, GstCaps *caps,
                                     gpointer user_data) {
  (void)bin;
  (void)pad;
  return watch_caps(user_data, caps);
}

/* At the decoder's output: notes the frame size; answers the ALLOCATION query for a frame above
 * the limit with the refusing allocator. */
static GstPadProbeReturn on_decoded_probe(GstPad *pad, GstPadProbeInfo *info, gpointer user_data) {
  (void)pad;
  GstCaps *caps = NULL;
  if (info->type & GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM) {
    GstEvent *event = GST_PAD_PROBE_INFO_EVENT(info);
    if (GST_EVENT_TYPE(event) == GST_EVENT_CAPS) {
      gst_event_parse_caps(event, &caps);
      watch_caps(user_data, caps);
    }
    return GST_PAD_PROBE_OK;
  }
  GstQuery *query = GST_PAD_PROBE_INFO_QUERY(info);
  if (GST_QUERY_TYPE(query) != GST_QUERY_ALLOCATION || !(info->type & GST_PAD_PROBE_TYPE_PUSH))
    return GST_PAD_PROBE_OK;
  gst_query_parse_allocation(query, &caps, NULL);
  if (watch_caps(user_data, caps))
    return GST_PAD_PROBE_OK;
  GstAllocator *refuse = gst_object_ref_sink(g_object_new(refusing_allocator_get_type(), NULL));
  gst_query_add_allocation_param(query, refuse, NULL);
  gst_object_unref(refuse);
  return GST_PAD_PROBE_HANDLED;
}

/* ---- decoding --------------------------------------------------------------------------------
 */

typedef struct {
  DecodeWatch *watch;
  GstPad *sinkpad; /* videoscale's */
} PadContext;

/* Links the first decoded video stream to videoscale; notes the others. */
static void on_decodebin_pad_added(GstElement *decodebin, GstPad *pad, gpointer user_data) {
  PadContext *ctx = user_data;
  GstCaps *caps = gst_pad_get_current_caps(pad);
  if (caps == NULL)
    caps = gst_pad_query_caps(pad, NULL);
  const GstStructure *s = gst_caps_get_size(caps) > 0 ? gst_caps_get_structure(caps, 0) : NULL;
  gboolean linked = FALSE;
  if (s != NULL && gst_structure_has_name(s, "video/x-raw") && !gst_pad_is_linked(ctx->sinkpad)) {
    GstPadLinkReturn ret = gst_pad_link(pad, ctx->sinkpad);
    linked = !GST_PAD_LINK_FAILED(ret);
    if (!linked)
      GST_WARNING_OBJECT(decodebin, "could not link the decoded video: %s",
                         gst_pad_link_get_name(ret));
  }
  g_mutex_lock(&ctx->watch->lock);
  ctx->watch->linked |= linked;
  if (!linked && s != NULL)
    g_string_append_printf(ctx->watch->others, "%s%s", ctx->watch->others->len ? ", " : "",
                           gst_structure_get_name(s));
  g_mutex_unlock(&ctx->watch->lock);
  gst_caps_unref(caps);
}

static void on_no_more_pads(GstElement *decodebin, gpointer user_data) {
  (void)decodebin;
  DecodeWatch *w = user_data;
  g_mutex_lock(&w->lock);
  gboolean linked = w->linked;
  g_mutex_unlock(&w->lock);
  if (!linked)
    post_app_message(w->bus, "styletransfer-no-video");
}

static void on_cancelled(GCancellable *cancel, gpointer user_data) {
  (void)cancel;
  post_app_message(GST_BUS(user_data), "styletransfer-cancel");
}

/* STYLE_IMAGE_DECODE_TIMEOUT, or $ST_STYLE_DECODE_TIMEOUT (seconds) when set (for tests). */
static GstClockTime decode_timeout(void) {
  const gchar *env = g_getenv("ST_STYLE_DECODE_TIMEOUT");
  gdouble s = env != NULL ? g_ascii_strtod(env, NULL) : 0;
  return s > 0 ? (GstClockTime)(s * GST_SECOND) : STYLE_IMAGE_DECODE_TIMEOUT;
}

/* Runs the private pipeline to its first frame: TRUE when it is there. Otherwise `problem` is
 * the reason (caller frees), or NULL when the watch has it or the decode was cancelled. */
static gboolean preroll(GstElement *pipeline, GCancellable *cancel, gboolean *cancelled,
                        gchar **problem) {
  GstBus *bus = gst_element_get_bus(pipeline);
  gulong handler = cancel != NULL ? g_cancellable_connect(cancel, G_CALLBACK(on_cancelled),
                                                          gst_object_ref(bus), gst_object_unref)
                                  : 0;
  gboolean ok = FALSE;
  GstStateChangeReturn sret = gst_element_set_state(pipeline, GST_STATE_PAUSED);
  if (sret == GST_STATE_CHANGE_SUCCESS || sret == GST_STATE_CHANGE_NO_PREROLL) {
    ok = TRUE;
  } else {
    /* the first frame (ASYNC_DONE), the first error, a message of the watch or the
     * cancellation, or the timeout */
    GstClockTime timeout = decode_timeout();
    GstMessage *msg = gst_bus_timed_pop_filtered(
        bus, timeout, GST_MESSAGE_ASYNC_DONE | GST_MESSAGE_ERROR | GST_MESSAGE_APPLICATION);
    if (msg == NULL) {
      *problem = g_strdup_printf("decoding did not finish within %g seconds",
                                 (gdouble)timeout / GST_SECOND);
    } else if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_APPLICATION) {
      *cancelled = gst_message_has_name(msg, "styletransfer-cancel");
    } else if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
      GError *derr = NULL;
      gchar *dbg = NULL;
      gst_message_parse_error(msg, &derr, &dbg);
      *problem = g_strdup(derr->message);
      GST_DEBUG("style decoder error: %s (%s)", derr->message, GST_STR_NULL(dbg));
      g_clear_error(&derr);
      g_free(dbg);
    } else {
      ok = TRUE;
    }
    if (msg != NULL)
      gst_message_unref(msg);
  }
  if (handler != 0)
    g_cancellable_disconnect(cancel, handler);
  gst_object_unref(bus);
  return ok;
}

GstSample *style_image_decode(const gchar *path, const gchar *what, gint max_side,
                              GCancellable *cancel, StyleImageInfo *info, GError **error) {
  ensure_debug_category();
  gint64 t0 = g_get_monotonic_time();
  guint64 size = 0;
  gchar *what_cap = g_strdup_printf("%c%s", g_ascii_toupper(what[0]), what + 1);
  gint fd = open_regular_file(path, what_cap, &size, error);
  g_free(what_cap);
  if (fd < 0)
    return NULL;
  gint declared_w = 0, declared_h = 0;
  gboolean ok = check_structure(fd, size, what, path, &declared_w, &declared_h, error);
  g_close(fd, NULL);
  if (!ok)
    return NULL;
  if (!size_allowed(declared_w, declared_h)) {
    set_too_large_error(error, what, path, declared_w, declared_h, max_side);
    return NULL;
  }

  GstElement *pipeline = gst_pipeline_new("styletransfer-style-decoder");
  GstElement *src = gst_element_factory_make("filesrc", NULL);
  GstElement *queue = gst_element_factory_make("queue", NULL);
  GstElement *decode = gst_element_factory_make("decodebin", NULL);
  GstElement *scale = gst_element_factory_make("videoscale", NULL);
  GstElement *convert = gst_element_factory_make("videoconvert", NULL);
  GstElement *sink = gst_element_factory_make("appsink", NULL);
  if (src == NULL || queue == NULL || decode == NULL || scale == NULL || convert == NULL ||
      sink == NULL) {
    g_set_error(error, GST_CORE_ERROR, GST_CORE_ERROR_MISSING_PLUGIN,
                "Cannot decode the %s: one of the elements filesrc, queue, decodebin, "
                "videoscale, videoconvert, appsink is missing (install "
                "gstreamer1.0-plugins-base)",
                what);
    gst_clear_object(&src);
    gst_clear_object(&queue);
    gst_clear_object(&decode);
    gst_clear_object(&scale);
    gst_clear_object(&convert);
    gst_clear_object(&sink);
    gst_object_unref(pipeline);
    return NULL;
  }

  /* only a small RGBA image leaves the pipeline: videoscale fits it into max_side x max_side
   * (aspect ratio kept, square pixels) */
  GstCaps *rgba =
      gst_caps_new_simple("video/x-raw", "format", G_TYPE_STRING, "RGBA", "width",
                          GST_TYPE_INT_RANGE, 1, max_side, "height", GST_TYPE_INT_RANGE, 1,
                          max_side, "pixel-aspect-ratio", GST_TYPE_FRACTION, 1, 1, NULL);
  /* decoders in push mode, fed 1 MiB blocks: pngdec and jpegdec parse all the data received so
   * far on every new buffer, which with typefind's 4 KiB blocks (pull mode) took 53 s of CPU for
   * a 96-megapixel PNG instead of 1.5 s */
  g_object_set(src, "location", path, "blocksize", 1 << 20, NULL);
  g_object_set(queue, "max-size-buffers", 2, "max-size-bytes", 0, "max-size-time", (guint64)0,
               NULL);
  g_object_set(sink, "caps", rgba, "sync", FALSE, "max-buffers", 1, "enable-last-sample", FALSE,
               NULL);
  gst_caps_unref(rgba);
  gst_bin_add_many(GST_BIN(pipeline), src, queue, decode, scale, convert, sink, NULL);
  if (!gst_element_link_many(src, queue, decode, NULL) ||
      !gst_element_link_many(scale, convert, sink, NULL)) {
    g_set_error(error, GST_CORE_ERROR, GST_CORE_ERROR_NEGOTIATION,
                "Cannot decode the %s: internal linking failed", what);
    gst_object_unref(pipeline);
    return NULL;
  }
  DecodeWatch watch = {.bus = gst_element_get_bus(pipeline), .others = g_string_new(NULL)};
  g_mutex_init(&watch.lock);
  PadContext ctx = {&watch, gst_element_get_static_pad(scale, "sink")};
  g_signal_connect(decode, "pad-added", G_CALLBACK(on_decodebin_pad_added), &ctx);
  g_signal_connect(decode, "no-more-pads", G_CALLBACK(on_no_more_pads), &watch);
  g_signal_connect(decode, "autoplug-continue", G_CALLBACK(on_autoplug_continue), &watch);
  gst_pad_add_probe(ctx.sinkpad,
                    GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM | GST_PAD_PROBE_TYPE_QUERY_DOWNSTREAM,
                    on_decoded_probe, &watch, NULL);

  gboolean cancelled = FALSE;
  gchar *problem = NULL;
  GstSample *result = NULL;
  if (preroll(pipeline, cancel, &cancelled, &problem)) {
    GstSample *sample = gst_app_sink_try_pull_preroll(GST_APP_SINK(sink), 0);
    GstVideoInfo vinfo;
    if (sample != NULL && gst_sample_get_buffer(sample) != NULL &&
        gst_video_info_from_caps(&vinfo, gst_sample_get_caps(sample))) {
      /* copy the pixels so that nothing of the private pipeline stays referenced */
      GstBuffer *copy = gst_buffer_copy_deep(gst_sample_get_buffer(sample));
      result = gst_sample_new(copy, gst_sample_get_caps(sample), NULL, NULL);
      gst_buffer_unref(copy);
      if (info != NULL) {
        info->style_width = GST_VIDEO_INFO_WIDTH(&vinfo);
        info->style_height = GST_VIDEO_INFO_HEIGHT(&vinfo);
      }
    }
    if (sample != NULL)
      gst_sample_unref(sample);
  }
  /* the streaming threads are stopped here: `watch` can be read without its lock */
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);

  if (cancelled) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED, "Decoding %s \"%s\" was cancelled", what,
                path);
  } else if (watch.too_large_w != 0) {
    set_too_large_error(error, what, path, watch.too_large_w, watch.too_large_h, max_side);
    g_clear_pointer(&result, gst_sample_unref);
  } else if (result == NULL) {
    if (problem == NULL && watch.others->len > 0)
      problem = g_strdup_printf("the file contains no image or video stream (only %s)",
                                watch.others->str);
    g_set_error(error, GST_STREAM_ERROR, GST_STREAM_ERROR_DECODE, "Could not decode %s \"%s\": %s",
                what, path, problem ? problem : "the file contains no image or video frame");
  } else if (info != NULL) {
    info->width = watch.width > 0 ? watch.width : info->style_width;
    info->height = watch.width > 0 ? watch.height : info->style_height;
    info->decode_ms = (g_get_monotonic_time() - t0) / 1000.0;
  }
  g_free(problem);
  g_string_free(watch.others, TRUE);
  gst_object_unref(ctx.sinkpad);
  gst_object_unref(watch.bus);
  g_mutex_clear(&watch.lock);
  return result;
}
