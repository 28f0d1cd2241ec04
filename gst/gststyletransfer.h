/* SPDX-License-Identifier: LGPL-2.1-or-later
 * styletransfer: the `styletransfer` video filter element.
 */
#ifndef GST_STYLE_TRANSFER_H
#define GST_STYLE_TRANSFER_H

#include <gst/gst.h>
#include <gst/video/gstvideofilter.h>
#include <gst/video/video.h>

G_BEGIN_DECLS

#define GST_TYPE_STYLE_TRANSFER (gst_style_transfer_get_type())
G_DECLARE_FINAL_TYPE(GstStyleTransfer, gst_style_transfer, GST, STYLE_TRANSFER, GstVideoFilter)

GST_ELEMENT_REGISTER_DECLARE(styletransfer);

G_END_DECLS

#endif /* GST_STYLE_TRANSFER_H */
