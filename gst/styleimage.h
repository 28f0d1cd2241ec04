/* SPDX-License-Identifier: LGPL-2.1-or-later
 * styletransfer: reading style images (and the model file) safely.
 *
 * A style image is decoded with a private GStreamer pipeline
 * (filesrc ! queue ! decodebin ! videoscale ! videoconvert ! appsink) into RGBA whose longer side
 * is at most the model's style size, so that only a small image leaves the decoder. Hostile files
 * are refused before anything large is allocated:
 *   - only regular files are opened (a FIFO without a writer, /dev/zero, a directory, a socket
 *     are refused by their type, and the file is opened non-blocking);
 *   - PNG and JPEG files are walked chunk by chunk / marker by marker first: a truncated file is
 *     refused with the offset where it ends, and the declared size is read from the header;
 *   - a declared size above STYLE_IMAGE_MAX_PIXELS is refused, from the file header (PNG, JPEG),
 *     from the caps that typefinding, demuxers and parsers announce, and at the decoder's output
 *     (its buffer allocation is refused before the frame is allocated);
 *   - decoding stops after STYLE_IMAGE_DECODE_TIMEOUT, or as soon as the caller cancels it.
 */
#ifndef GST_STYLE_TRANSFER_STYLE_IMAGE_H
#define GST_STYLE_TRANSFER_STYLE_IMAGE_H

#include <gio/gio.h>
#include <gst/gst.h>

G_BEGIN_DECLS

/* Largest style image decoded, in pixels (width x height as the file declares it). The style is
 * analysed at the model's style size (256 pixels on the longer side for the shipped model), so
 * nothing is lost by refusing larger files; decoding one at the limit needs at most about
 * 4 bytes per pixel (8 for 16-bit PNGs) for the decoder's frame. */
#define STYLE_IMAGE_MAX_PIXELS (100 * 1000 * 1000)
/* Metadata (colour profiles, thumbnails, text) accepted in a PNG or JPEG file on top of the image
 * data, which is at most 8 bytes per pixel: a small image with a huge chunk is refused. */
#define STYLE_IMAGE_METADATA (64 << 20)
/* How long decoding a style image may take before it is reported as failed
 * ($ST_STYLE_DECODE_TIMEOUT, in seconds, overrides it: the tests use it). */
#define STYLE_IMAGE_DECODE_TIMEOUT (30 * GST_SECOND)

typedef struct {
  gint width, height; /* the image's size in the file */
  gint style_width;   /* the decoded (scaled) size */
  gint style_height;
  gdouble decode_ms; /* time to check, decode and scale the file */
} StyleImageInfo;

/* Checks, without blocking, that `path` names a readable regular file. `what` names the file in
 * the message ("Style image", "Model file"). RESOURCE/NOT_FOUND or RESOURCE/OPEN_READ errors. */
gboolean style_image_check_file(const gchar *path, const gchar *what, GError **error);

/* Decodes the first video frame of the file at `path` to RGBA, scaled down (aspect ratio kept)
 * so that its longer side is at most `max_side`. `what` names the file in messages, in lower
 * case ("style image", "mask image"). Returns a sample owning its memory, or NULL with `error`
 * set (RESOURCE errors for the file itself, STREAM/DECODE for its contents,
 * G_IO_ERROR_CANCELLED when `cancel` (may be NULL) was cancelled). `info` may be NULL. */
GstSample *style_image_decode(const gchar *path, const gchar *what, gint max_side,
                              GCancellable *cancel, StyleImageInfo *info, GError **error);

G_END_DECLS

#endif /* GST_STYLE_TRANSFER_STYLE_IMAGE_H */
