/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * switch-style: embeds the styletransfer element in an application and switches the `style`
 * property every few seconds among the styles given on the command line, while the video plays.
 *
 * Usage: switch-style [OPTION...] STYLE [STYLE...]
 *
 *   -s, --source=DESC        source, a gst-launch description (default: autovideosrc, a webcam or
 *                            a test pattern when there is none)
 *   -i, --input=FILE         play a video file instead of --source
 *   -o, --sink=DESC          sink, a gst-launch description (default: autovideosink)
 *   -t, --interval=SECONDS   seconds of video between style switches (default: 3); counted on
 *                            the frames' timestamps, so that on a slow device each style still
 *                            gets the same stretch of video
 *   -n, --num-buffers=N      stop (EOS) after N frames (default: -1, run until the end or Ctrl-C)
 *   -p, --property=NAME=VAL  set another styletransfer property (repeatable),
 *                            e.g. -p processing-size=256 -p steps=1
 *
 * Example (headless, a few frames):
 *   switch-style -s "videotestsrc is-live=true ! video/x-raw,width=96,height=64" -o fakesink \
 *       -n 30 -t 0.3 -p processing-size=64 a.jpg b.png
 *
 * Every switch is printed on stdout ("style: PATH at H:MM:SS.mmm"), and so is the moment the
 * new style takes effect ("applied: PATH, decoded in N ms"). A style that fails while playing
 * (for example one that does not exist) is a warning, printed on stderr, and the previous style
 * stays. An error from any element (for example a first style that does not exist) is printed
 * with its debug string on stderr and the program exits with status 1; bad arguments exit with
 * status 2. Ctrl-C sends EOS so that a
 * file written by the sink is finished properly.
 */
#include <gst/gst.h>
#include <stdlib.h>
#include <string.h>
#ifdef G_OS_UNIX
#include <glib-unix.h>
#endif

typedef struct {
  GMainLoop *loop;
  GstElement *pipeline;
  GstElement *filter;
  gchar **styles;
  guint n_styles;
  guint current;
  int exit_status;
  gboolean eos_sent;
  gint num_buffers;
  gint buffers;
  GstClockTime interval;
  GstClockTime first_pts;
  GstClockTime next_switch;
} App;

static void print_position(App *app, const gchar *what, const gchar *style) {
  gint64 pos = 0;
  if (!gst_element_query_position(app->pipeline, GST_FORMAT_TIME, &pos) || pos < 0)
    pos = 0;
  g_print("%s: %s at %" GST_TIME_FORMAT "\n", what, style, GST_TIME_ARGS(pos));
}

/* Runs in the main loop, scheduled by on_frame: setting the property returns at once, the element
 * decodes the new style on its own thread (the stream keeps running), swaps it in and posts a
 * "styletransfer-style-applied" message; a failure is posted as a WARNING and the previous style
 * stays. */
static gboolean switch_style(gpointer user_data) {
  App *app = user_data;
  app->current = (app->current + 1) % app->n_styles;
  const gchar *style = app->styles[app->current];
  print_position(app, "style", style);
  g_object_set(app->filter, "style", style, NULL);
  return G_SOURCE_REMOVE;
}

static gboolean on_bus_message(GstBus *bus, GstMessage *msg, gpointer user_data) {
  App *app = user_data;
  (void)bus;
  switch (GST_MESSAGE_TYPE(msg)) {
  case GST_MESSAGE_ERROR: {
    GError *err = NULL;
    gchar *debug = NULL;
    gst_message_parse_error(msg, &err, &debug);
    g_printerr("ERROR from %s: %s\n", GST_OBJECT_NAME(GST_MESSAGE_SRC(msg)), err->message);
    g_printerr("Debugging information: %s\n", debug != NULL ? debug : "none");
    g_clear_error(&err);
    g_free(debug);
    app->exit_status = 1;
    g_main_loop_quit(app->loop);
    break;
  }
  case GST_MESSAGE_WARNING: {
    GError *err = NULL;
    gchar *debug = NULL;
    gst_message_parse_warning(msg, &err, &debug);
    g_printerr("WARNING from %s: %s\n", GST_OBJECT_NAME(GST_MESSAGE_SRC(msg)), err->message);
    if (debug != NULL)
      g_printerr("Debugging information: %s\n", debug);
    g_clear_error(&err);
    g_free(debug);
    break;
  }
  case GST_MESSAGE_ELEMENT:
    if (gst_message_has_name(msg, "styletransfer-style-applied")) {
      const GstStructure *s = gst_message_get_structure(msg);
      gdouble ms = 0;
      gst_structure_get_double(s, "decode-ms", &ms);
      g_print("applied: %s, decoded in %.0f ms\n", gst_structure_get_string(s, "path"), ms);
    }
    break;
  case GST_MESSAGE_EOS:
    g_print("End of stream\n");
    g_main_loop_quit(app->loop);
    break;
  default:
    break;
  }
  return G_SOURCE_CONTINUE;
}

#ifdef G_OS_UNIX
static gboolean on_interrupt(gpointer user_data) {
  App *app = user_data;
  if (app->eos_sent) {
    g_printerr("Interrupted again: stopping now\n");
    app->exit_status = 130;
    g_main_loop_quit(app->loop);
    return G_SOURCE_REMOVE;
  }
  g_printerr("Interrupt: sending EOS (press Ctrl-C again to stop at once)\n");
  app->eos_sent = TRUE;
  gst_element_send_event(app->pipeline, gst_event_new_eos());
  return G_SOURCE_CONTINUE;
}
#endif

/* Sees every frame before the filter (streaming thread).
 * Switching: once every `interval` of the frames' timestamps, schedules switch_style in the main
 * loop (the style is never set from the streaming thread, which would stall the stream).
 * --num-buffers: lets N frames into the filter, then sends EOS through it (the sink posts EOS on
 * the bus) and drops whatever still comes (a decoder drains its queue, a webcam keeps going); the
 * EOS also makes upstream stop, its next push returns EOS. */
static GstPadProbeReturn on_frame(GstPad *pad, GstPadProbeInfo *info, gpointer user_data) {
  App *app = user_data;
  if (app->num_buffers >= 0 && ++app->buffers > app->num_buffers) {
    if (app->buffers == app->num_buffers + 1)
      gst_pad_send_event(pad, gst_event_new_eos());
    return GST_PAD_PROBE_DROP;
  }
  GstClockTime pts = GST_BUFFER_PTS(GST_PAD_PROBE_INFO_BUFFER(info));
  if (app->n_styles > 1 && GST_CLOCK_TIME_IS_VALID(pts)) {
    if (!GST_CLOCK_TIME_IS_VALID(app->first_pts)) {
      app->first_pts = pts;
      app->next_switch = app->interval;
    }
    if (pts >= app->first_pts && pts - app->first_pts >= app->next_switch) {
      while (pts - app->first_pts >= app->next_switch)
        app->next_switch += app->interval;
      g_idle_add(switch_style, app);
    }
  }
  return GST_PAD_PROBE_OK;
}

/* Quotes a value for a gst-launch description. */
static gchar *quote(const gchar *value) {
  GString *q = g_string_new("\"");
  for (const gchar *c = value; *c != '\0'; c++) {
    if (*c == '"' || *c == '\\')
      g_string_append_c(q, '\\');
    g_string_append_c(q, *c);
  }
  g_string_append_c(q, '"');
  return g_string_free(q, FALSE);
}

/* Builds: SOURCE ! videoconvert ! styletransfer ! videoconvert ! SINK with gst_parse_launch, then
 * sets the element's properties. */
static gboolean build_pipeline(App *app, const gchar *source_desc, const gchar *input,
                               const gchar *sink_desc, gint num_buffers, gchar **props) {
  GstElementFactory *factory = gst_element_factory_find("styletransfer");
  if (factory == NULL) {
    g_printerr("The styletransfer element is not available: install the plugin or add its "
               "directory to GST_PLUGIN_PATH\n");
    return FALSE;
  }
  gst_object_unref(factory);

  gchar *source = NULL;
  if (input != NULL) {
    gchar *uri = gst_uri_is_valid(input) ? g_strdup(input) : gst_filename_to_uri(input, NULL);
    if (uri == NULL) {
      g_printerr("Invalid input \"%s\"\n", input);
      return FALSE;
    }
    gchar *quoted = quote(uri);
    source = g_strdup_printf("uridecodebin uri=%s", quoted);
    g_free(quoted);
    g_free(uri);
  } else {
    source = g_strdup(source_desc);
  }
  gchar *desc =
      g_strdup_printf("%s ! videoconvert ! styletransfer name=styletransfer ! videoconvert ! %s",
                      source, sink_desc);
  g_free(source);

  GError *err = NULL;
  app->pipeline = gst_parse_launch_full(desc, NULL, GST_PARSE_FLAG_FATAL_ERRORS, &err);
  if (app->pipeline == NULL || err != NULL) {
    g_printerr("Could not build the pipeline \"%s\": %s\n", desc,
               err != NULL ? err->message : "unknown error");
    g_clear_error(&err);
    g_free(desc);
    return FALSE;
  }
  g_free(desc);
  app->filter = gst_bin_get_by_name(GST_BIN(app->pipeline), "styletransfer");
  g_assert(app->filter != NULL);

  for (gchar **p = props; p != NULL && *p != NULL; p++) {
    gchar **kv = g_strsplit(*p, "=", 2);
    gboolean ok = kv[0] != NULL && kv[1] != NULL && strcmp(kv[0], "style") != 0 &&
                  g_object_class_find_property(G_OBJECT_GET_CLASS(app->filter), kv[0]) != NULL;
    if (ok)
      gst_util_set_object_arg(G_OBJECT(app->filter), kv[0], kv[1]);
    else
      g_printerr("Invalid --property \"%s\": expected NAME=VALUE with NAME a property of "
                 "styletransfer other than style (see gst-inspect-1.0 styletransfer)\n",
                 *p);
    g_strfreev(kv);
    if (!ok)
      return FALSE;
  }
  g_object_set(app->filter, "style", app->styles[0], NULL);

  app->num_buffers = num_buffers;
  GstPad *pad = gst_element_get_static_pad(app->filter, "sink");
  gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, on_frame, app, NULL);
  gst_object_unref(pad);
  return TRUE;
}

int main(int argc, char **argv) {
  gchar *source_desc = NULL, *input = NULL, *sink_desc = NULL;
  gchar **props = NULL, **styles = NULL;
  gdouble interval = 3.0;
  gint num_buffers = -1;
  GError *err = NULL;
  App app = {0};

  GOptionEntry entries[] = {
      {"source", 's', 0, G_OPTION_ARG_STRING, &source_desc,
       "Source, a gst-launch description (default: autovideosrc)", "DESC"},
      {"input", 'i', 0, G_OPTION_ARG_FILENAME, &input, "Play a video file (or URI) instead",
       "FILE"},
      {"sink", 'o', 0, G_OPTION_ARG_STRING, &sink_desc,
       "Sink, a gst-launch description (default: autovideosink)", "DESC"},
      {"interval", 't', 0, G_OPTION_ARG_DOUBLE, &interval,
       "Seconds of video between style switches (default: 3)", "SECONDS"},
      {"num-buffers", 'n', 0, G_OPTION_ARG_INT, &num_buffers,
       "Stop after N frames (default: -1, no limit)", "N"},
      {"property", 'p', 0, G_OPTION_ARG_STRING_ARRAY, &props,
       "Set a styletransfer property, e.g. processing-size=256 (repeatable)", "NAME=VALUE"},
      {G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &styles, NULL, NULL},
      {NULL, 0, 0, 0, NULL, NULL, NULL}};

  GOptionContext *ctx = g_option_context_new("STYLE [STYLE...]");
  g_option_context_set_summary(ctx, "Stylizes video with the styletransfer element and switches "
                                    "among the given style images every few seconds.");
  g_option_context_add_main_entries(ctx, entries, NULL);
  g_option_context_add_group(ctx, gst_init_get_option_group());
  if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
    g_printerr("%s\nRun '%s --help' for the options.\n", err->message, argv[0]);
    g_clear_error(&err);
    g_option_context_free(ctx);
    return 2;
  }
  if (styles == NULL || styles[0] == NULL) {
    gchar *help = g_option_context_get_help(ctx, TRUE, NULL);
    g_printerr("No style given: pass one or more style images.\n\n%s", help);
    g_free(help);
    g_option_context_free(ctx);
    return 2;
  }
  g_option_context_free(ctx);
  if (!(interval > 0.0 && interval <= 86400.0)) {
    g_printerr("Invalid --interval %g: expected seconds in (0, 86400]\n", interval);
    return 2;
  }

  app.styles = styles;
  app.n_styles = g_strv_length(styles);
  app.exit_status = 0;
  app.interval = (GstClockTime)(interval * GST_SECOND);
  app.first_pts = GST_CLOCK_TIME_NONE;
  if (!build_pipeline(&app, source_desc != NULL ? source_desc : "autovideosrc", input,
                      sink_desc != NULL ? sink_desc : "autovideosink", num_buffers, props)) {
    if (app.filter != NULL)
      gst_object_unref(app.filter);
    if (app.pipeline != NULL)
      gst_object_unref(app.pipeline);
    g_strfreev(styles);
    g_strfreev(props);
    return 1;
  }

  app.loop = g_main_loop_new(NULL, FALSE);
  GstBus *bus = gst_element_get_bus(app.pipeline);
  guint bus_watch = gst_bus_add_watch(bus, on_bus_message, &app);
  gst_object_unref(bus);
#ifdef G_OS_UNIX
  guint sigint = g_unix_signal_add(SIGINT, on_interrupt, &app);
#endif

  print_position(&app, "style", app.styles[0]);
  if (gst_element_set_state(app.pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    /* The element that failed posted an ERROR: the bus watch prints it. Without one, say so. */
    GstMessage *msg = gst_bus_pop_filtered(GST_ELEMENT_BUS(app.pipeline), GST_MESSAGE_ERROR);
    if (msg != NULL) {
      on_bus_message(NULL, msg, &app);
      gst_message_unref(msg);
    } else {
      g_printerr("The pipeline could not be started\n");
    }
    app.exit_status = 1;
  } else {
    g_main_loop_run(app.loop);
  }

  gst_element_set_state(app.pipeline, GST_STATE_NULL);
#ifdef G_OS_UNIX
  g_source_remove(sigint);
#endif
  g_source_remove(bus_watch);
  gst_object_unref(app.filter);
  gst_object_unref(app.pipeline);
  g_main_loop_unref(app.loop);
  g_strfreev(styles);
  g_strfreev(props);
  g_free(source_desc);
  g_free(input);
  g_free(sink_desc);
  return app.exit_status;
}
