#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Embeds the styletransfer element in a Python application (PyGObject) and switches the `style`
property every few seconds among the styles given on the command line, while the video plays.
The same program as switch-style.c.

Usage: switch_style.py [-s DESC | -i FILE] [-o DESC] [-t SECONDS] [-n N] [-p NAME=VALUE]...
                       STYLE [STYLE...]

  -s, --source DESC        source, a gst-launch description (default: autovideosrc, a webcam or
                           a test pattern when there is none)
  -i, --input FILE         play a video file (or URI) instead of --source
  -o, --sink DESC          sink, a gst-launch description (default: autovideosink)
  -t, --interval SECONDS   seconds of video between style switches (default: 3); counted on the
                           frames' timestamps, so that on a slow device each style still gets
                           the same stretch of video
  -n, --num-buffers N      stop (EOS) after N frames (default: -1, run until the end or Ctrl-C)
  -p, --property NAME=VAL  set another styletransfer property (repeatable)

Example (headless, a few frames):
  examples/switch_style.py -s "videotestsrc is-live=true ! video/x-raw,width=96,height=64" \\
      -o fakesink -n 30 -t 0.3 -p processing-size=64 a.jpg b.png

Needs python3-gi and the GStreamer introspection data (Debian: python3-gi gir1.2-gstreamer-1.0).
Every switch is printed on stdout, and so is the moment the new style takes effect ("applied:
PATH, decoded in N ms"). A style that fails while playing (for example one that does not exist) is
a warning, printed on stderr, and the previous style stays. An error from any element (for example
a first style that does not exist) is printed with its debug string on stderr and the exit status
is 1; bad arguments
exit with status 2. Ctrl-C sends EOS so that a file written by the sink is finished properly.
"""
import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GLib", "2.0")
from gi.repository import GLib, Gst  # noqa: E402


def quote(value):
    """Quotes a value for a gst-launch description."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_time(ns):
    ms = ns // 1000000
    return f"{ms // 3600000}:{ms // 60000 % 60:02}:{ms // 1000 % 60:02}.{ms % 1000:03}"


class SwitchStyle:
    def __init__(self, args):
        self.styles = args.styles
        self.current = 0
        self.exit_status = 0
        self.eos_sent = False
        self.loop = GLib.MainLoop()

        if Gst.ElementFactory.find("styletransfer") is None:
            raise RuntimeError(
                "The styletransfer element is not available: install the plugin or add its "
                "directory to GST_PLUGIN_PATH"
            )
        if args.input is not None:
            uri = args.input if Gst.uri_is_valid(args.input) else Gst.filename_to_uri(args.input)
            source = "uridecodebin uri=" + quote(uri)
        else:
            source = args.source
        desc = (
            f"{source} ! videoconvert ! styletransfer name=styletransfer ! videoconvert "
            f"! {args.sink}"
        )
        try:
            self.pipeline = Gst.parse_launch_full(desc, None, Gst.ParseFlags.FATAL_ERRORS)
        except GLib.Error as e:
            raise RuntimeError(f'Could not build the pipeline "{desc}": {e.message}') from None
        self.filter = self.pipeline.get_by_name("styletransfer")

        for prop in args.property:
            name, sep, value = prop.partition("=")
            if not sep or name == "style" or self.filter.find_property(name) is None:
                raise ValueError(
                    f'Invalid --property "{prop}": expected NAME=VALUE with NAME a property of '
                    "styletransfer other than style (see gst-inspect-1.0 styletransfer)"
                )
            Gst.util_set_object_arg(self.filter, name, value)
        self.filter.set_property("style", self.styles[0])

        self.num_buffers = args.num_buffers
        self.buffers = 0
        self.interval = int(args.interval * Gst.SECOND)
        self.first_pts = None
        self.next_switch = 0
        self.filter.get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, self.on_frame)

    def on_frame(self, pad, info):
        """Sees every frame before the filter (streaming thread).
        Switching: once every `interval` of the frames' timestamps, schedules switch_style in the
        main loop (the style is never set from the streaming thread, which would stall the stream).
        --num-buffers: lets N frames into the filter, then sends EOS through it (the sink posts EOS
        on the bus) and drops whatever still comes (a decoder drains its queue, a webcam keeps
        going); the EOS also makes upstream stop, its next push returns EOS."""
        if self.num_buffers >= 0:
            self.buffers += 1
            if self.buffers > self.num_buffers:
                if self.buffers == self.num_buffers + 1:
                    pad.send_event(Gst.Event.new_eos())
                return Gst.PadProbeReturn.DROP
        pts = info.get_buffer().pts
        if len(self.styles) > 1 and pts != Gst.CLOCK_TIME_NONE:
            if self.first_pts is None:
                self.first_pts = pts
                self.next_switch = self.interval
            if pts >= self.first_pts and pts - self.first_pts >= self.next_switch:
                while pts - self.first_pts >= self.next_switch:
                    self.next_switch += self.interval
                GLib.idle_add(self.switch_style)
        return Gst.PadProbeReturn.OK

    def print_position(self, style):
        ok, pos = self.pipeline.query_position(Gst.Format.TIME)
        print(f"style: {style} at {format_time(pos if ok and pos >= 0 else 0)}", flush=True)

    def switch_style(self):
        # Runs in the main loop, scheduled by on_frame: setting the property returns at once, the
        # element decodes the new style on its own thread (the stream keeps running), swaps it in
        # and posts a "styletransfer-style-applied" message; a failure is posted as a WARNING and
        # the previous style stays.
        self.current = (self.current + 1) % len(self.styles)
        style = self.styles[self.current]
        self.print_position(style)
        self.filter.set_property("style", style)
        return GLib.SOURCE_REMOVE

    def on_bus_message(self, bus, msg):
        if msg.type == Gst.MessageType.ERROR:
            err, debug = msg.parse_error()
            print(f"ERROR from {msg.src.get_name()}: {err.message}", file=sys.stderr)
            print(f"Debugging information: {debug or 'none'}", file=sys.stderr)
            self.exit_status = 1
            self.loop.quit()
        elif msg.type == Gst.MessageType.WARNING:
            err, debug = msg.parse_warning()
            print(f"WARNING from {msg.src.get_name()}: {err.message}", file=sys.stderr)
            if debug:
                print(f"Debugging information: {debug}", file=sys.stderr)
        elif msg.type == Gst.MessageType.ELEMENT and msg.has_name("styletransfer-style-applied"):
            s = msg.get_structure()
            ms = s.get_double("decode-ms")[1]
            print(f"applied: {s.get_string('path')}, decoded in {ms:.0f} ms", flush=True)
        elif msg.type == Gst.MessageType.EOS:
            print("End of stream", flush=True)
            self.loop.quit()
        return GLib.SOURCE_CONTINUE

    def on_interrupt(self):
        if self.eos_sent:
            print("Interrupted again: stopping now", file=sys.stderr)
            self.exit_status = 130
            self.loop.quit()
            return GLib.SOURCE_REMOVE
        print("Interrupt: sending EOS (press Ctrl-C again to stop at once)", file=sys.stderr)
        self.eos_sent = True
        self.pipeline.send_event(Gst.Event.new_eos())
        return GLib.SOURCE_CONTINUE

    def run(self):
        bus = self.pipeline.get_bus()
        bus.add_signal_watch()
        bus.connect("message", self.on_bus_message)
        sigint = GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, self.on_interrupt)

        self.print_position(self.styles[0])
        if self.pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            # The element that failed posted an ERROR: print it. Without one, say so.
            msg = bus.pop_filtered(Gst.MessageType.ERROR)
            if msg is not None:
                self.on_bus_message(bus, msg)
            else:
                print("The pipeline could not be started", file=sys.stderr)
            self.exit_status = 1
        else:
            self.loop.run()

        self.pipeline.set_state(Gst.State.NULL)
        GLib.source_remove(sigint)
        bus.remove_signal_watch()
        return self.exit_status


def main(argv):
    Gst.init(None)
    parser = argparse.ArgumentParser(
        description="Stylizes video with the styletransfer element and switches among the given "
        "style images every few seconds."
    )
    parser.add_argument("-s", "--source", default="autovideosrc", metavar="DESC",
                        help="source, a gst-launch description (default: autovideosrc)")
    parser.add_argument("-i", "--input", metavar="FILE",
                        help="play a video file (or URI) instead of --source")
    parser.add_argument("-o", "--sink", default="autovideosink", metavar="DESC",
                        help="sink, a gst-launch description (default: autovideosink)")
    parser.add_argument("-t", "--interval", type=float, default=3.0, metavar="SECONDS",
                        help="seconds of video between style switches (default: 3)")
    parser.add_argument("-n", "--num-buffers", type=int, default=-1, metavar="N",
                        help="stop after N frames (default: -1, no limit)")
    parser.add_argument("-p", "--property", action="append", default=[], metavar="NAME=VALUE",
                        help="set a styletransfer property, e.g. processing-size=256 (repeatable)")
    parser.add_argument("styles", nargs="+", metavar="STYLE", help="style images")
    args = parser.parse_args(argv)  # exits with status 2 on bad arguments
    if not 0 < args.interval <= 86400:
        parser.error(f"invalid --interval {args.interval}: expected seconds in (0, 86400]")

    try:
        app = SwitchStyle(args)
    except (RuntimeError, ValueError) as e:
        print(e, file=sys.stderr)
        return 1
    return app.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
