#!/usr/bin/python3
"""Cheap simulated cameras for bench/ingest/run.sh cameras: GStreamer's
gst-rtsp-server serving a pre-encoded H.264 MP4 (no encoding in the
server): every RTSP client gets its own media (not shared), i.e. its own
filesrc ! qtdemux ! h264parse ! rtph264pay pipeline, paced in real time by
the file's timestamps, as an independent camera would be.

usage: camserver.py PORT CLIP.mp4 [MOUNT]
Prints "READY rtsp://127.0.0.1:PORT/MOUNT" once listening; runs until killed.
"""
import os
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

port, clip = sys.argv[1], sys.argv[2]
mount = sys.argv[3] if len(sys.argv) > 3 else "cam"
Gst.init(None)
loc = clip.replace("\\", "\\\\").replace('"', '\\"')
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service(port)
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch(
    f'( filesrc location="{loc}" ! qtdemux ! h264parse config-interval=-1 ! '
    "rtph264pay name=pay0 pt=96 config-interval=-1 )"
)
factory.set_shared(False)
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
loop.run()
