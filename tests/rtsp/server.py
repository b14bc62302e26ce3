#!/usr/bin/python3
"""A real third-party RTSP server for camera tests: GStreamer's
gst-rtsp-server serving H.264 (or H.265) from videotestsrc, or a still
image (JPEG/PNG) frozen into a live 10 fps stream (a face for a camera).
With `mp4`, a pre-encoded H.264 MP4 is served as it is (no encoding: cheap
simulated cameras for bench/ingest/run.sh), each client getting its own
media paced by the file's timestamps, as an independent camera would be.

With `scene`, a scene the caller changes while it streams: an empty
(black) view, or one of the given photos, switched by lines on stdin —
`show N` (the N-th photo, from 1) or `empty` — each answered with
`SHOWN N` / `SHOWN 0` once the switch is made (a face appears, stays,
leaves, as at a real gate).

usage: server.py PORT [MOUNT] [h264|h265] [IMAGE [WIDTH HEIGHT]]
       server.py PORT MOUNT mp4 CLIP.mp4
       server.py PORT MOUNT scene IMAGE [IMAGE ...]
Prints "READY rtsp://127.0.0.1:PORT/MOUNT" once listening; runs until killed.
Debian: gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0 python3-gi
gstreamer1.0-plugins-ugly gstreamer1.0-plugins-bad gstreamer1.0-plugins-good
"""
import os
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

port = sys.argv[1] if len(sys.argv) > 1 else "8554"
mount = sys.argv[2] if len(sys.argv) > 2 else "cam"
codec = sys.argv[3] if len(sys.argv) > 3 else "h264"
image = sys.argv[4] if len(sys.argv) > 4 else None
width = sys.argv[5] if len(sys.argv) > 5 else "640"
height = sys.argv[6] if len(sys.argv) > 6 else "480"

if codec == "mp4" and not image:
    print("usage: server.py PORT MOUNT mp4 CLIP.mp4", file=sys.stderr)
    sys.exit(2)

Gst.init(None)


def _quote(path):
    return path.replace("\\", "\\\\").replace('"', '\\"')


loc = _quote(image) if image else ""
scene = codec == "scene"
if scene:
    photos = sys.argv[4:]
    if not photos:
        print("usage: server.py PORT MOUNT scene IMAGE [IMAGE ...]", file=sys.stderr)
        sys.exit(2)
    raw = "video/x-raw,format=I420,width=640,height=480,framerate=10/1,pixel-aspect-ratio=1/1"
    branches = [f"videotestsrc is-live=true pattern=black ! videoconvert ! {raw} ! sel. "]
    for ph in photos:
        branches.append(
            f'filesrc location="{_quote(ph)}" ! decodebin ! videoconvert ! '
            "videoscale add-borders=true ! video/x-raw,width=640,height=480,pixel-aspect-ratio=1/1 ! "
            f"imagefreeze is-live=true ! videorate ! videoconvert ! {raw} ! sel. "
        )
    codec = "h264"
if scene:
    src = "input-selector name=sel sync-mode=1 ! videoconvert ! video/x-raw,format=I420 ! "
elif codec == "mp4":
    src = f'filesrc location="{loc}" ! qtdemux ! h264parse config-interval=-1 ! '
elif image:
    # The image, scaled into WIDTHxHEIGHT keeping its aspect (borders), repeated live.
    src = (
        f'filesrc location="{loc}" ! decodebin ! videoconvert ! videoscale add-borders=true ! '
        f"video/x-raw,width={width},height={height},pixel-aspect-ratio=1/1 ! "
        "imagefreeze is-live=true ! video/x-raw,framerate=10/1 ! videoconvert ! "
        "video/x-raw,format=I420 ! "
    )
else:
    src = (
        "videotestsrc is-live=true pattern=ball ! "
        "video/x-raw,width=640,height=360,framerate=10/1 ! "
    )
if codec == "mp4":
    enc = "rtph264pay name=pay0 pt=96 config-interval=-1"
elif codec == "h265":
    enc = "x265enc tune=zerolatency speed-preset=ultrafast key-int-max=10 ! rtph265pay name=pay0 pt=96"
else:
    enc = (
        "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10 threads=1 ! "
        "rtph264pay name=pay0 pt=96 config-interval=1"
    )
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service(port)
factory = GstRtspServer.RTSPMediaFactory()
launch = src + enc
if scene:
    launch = " ".join(branches) + " " + launch
factory.set_launch("( " + launch + " )")
selectors = []


def _configured(_factory, media):
    selectors.append(media.get_element().get_by_name("sel"))
    _apply()


if scene:
    factory.connect("media-configure", _configured)
# One media for all clients, except for the independent mp4 cameras.
factory.set_shared(codec != "mp4")
server.get_mount_points().add_factory("/" + mount, factory)
if server.attach(None) == 0:
    print("FAILED to bind", flush=True)
    sys.exit(1)
print(f"READY rtsp://127.0.0.1:{port}/{mount}", flush=True)
loop = GLib.MainLoop()
# Exit with the process that started us, even when it was killed outright
# (SIGKILL runs no clean-up in the parent): an orphaned server would keep
# the port and stream to nobody.
parent = os.getppid()


def _parent_gone():
    if os.getppid() != parent:
        loop.quit()
        return False
    return True


GLib.timeout_add(200, _parent_gone)

wanted = [0]


def _apply():
    for sel in selectors:
        pad = sel.get_static_pad(f"sink_{wanted[0]}")
        if pad is not None and sel.get_property("active-pad") != pad:
            sel.set_property("active-pad", pad)
    return True


def _command(_fd, _cond):
    line = sys.stdin.readline()
    if not line:
        return False
    words = line.split()
    if words[:1] == ["show"] and len(words) == 2 and words[1].isdigit():
        wanted[0] = int(words[1])
    elif words[:1] == ["empty"]:
        wanted[0] = 0
    else:
        print(f"UNKNOWN {line.strip()}", flush=True)
        return True
    _apply()
    print(f"SHOWN {wanted[0]}", flush=True)
    return True


if scene:
    # The media is built when the first client connects: keep its selector
    # on the wanted view.
    GLib.timeout_add(50, _apply)
    GLib.io_add_watch(sys.stdin, GLib.IO_IN | GLib.IO_HUP, _command)
loop.run()
