#!/usr/bin/env bash
# Edge ingest benchmarks (issue 4) against peers on the same machine
# (bench/README.md, "Edge ingest"):
#  1. decode: 640x360 H.264 and H.265 clips through the edge's libavcodec
#     path (bench_decode) vs `ffmpeg -threads 1 -i CLIP -f null -`, rounds
#     interleaved, best of ROUNDS;
#  2. mqtt: QoS-1 event ingest into the edge's durable local store
#     (bench_ingest) vs mosquitto_sub on the same private mosquitto;
#  3. cameras: N simulated 640x360 25 fps H.264 cameras (GStreamer RTSP
#     server serving a pre-encoded clip of a face, tests/rtsp/server.py … mp4)
#     into N edge pipelines with 5 fps face detection (bench_cameras),
#     N increasing until one is not sustained.
# Usage: bench/ingest/run.sh [decode|mqtt|cameras|all]
# Env: N_EVENTS (20000), FRAMES (1500), ROUNDS (3), CAMERAS (1,4,8,12,16,20,24,28,32,36,40),
#      CAM_SECS (30), CAM_WARMUP (8), PHOTO (.cache/test-photos/obama.jpg).
set -euo pipefail
cd "$(dirname "$0")/../.."
WHAT=${1:-all}
N_EVENTS=${N_EVENTS:-20000}
FRAMES=${FRAMES:-1500}
ROUNDS=${ROUNDS:-3}
CAMERAS=${CAMERAS:-1,4,8,12,16,20,24,28,32,36,40}
CAM_SECS=${CAM_SECS:-30}
CAM_WARMUP=${CAM_WARMUP:-8}
PHOTO=${PHOTO:-$PWD/.cache/test-photos/obama.jpg}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
for c in ffmpeg mosquitto mosquitto_sub mosquitto_pub; do
  command -v "$c" >/dev/null || { echo "missing $c (Debian: ffmpeg mosquitto mosquitto-clients)" >&2; exit 2; }
done
cargo build --release -q -p anju-camera --features rtsp --example bench_decode
cargo build --release -q -p anju-edge --features rtsp --example bench_ingest --example bench_cameras
BIN=$CARGO_TARGET_DIR/release/examples
WORK=${BENCH_WORK:-$(mktemp -d)}
MQ_PID=
trap '[ -n "$MQ_PID" ] && kill "$MQ_PID" 2>/dev/null; [ -z "${BENCH_WORK:-}" ] && rm -rf "$WORK"' EXIT
echo "nproc $(nproc); load average $(cut -d' ' -f1-3 /proc/loadavg)"

if [ "$WHAT" = all ] || [ "$WHAT" = decode ]; then
  for codec in h264 h265; do
    enc=libx264; fmt=h264; extra=()
    if [ "$codec" = h265 ]; then enc=libx265; fmt=hevc; extra=(-x265-params log-level=error); fi
    CLIP=$WORK/clip.$codec
    # A camera-like substream: 25 fps, no B-frames, GOP 2 s, 1 Mbit/s.
    ffmpeg -y -v error -f lavfi -i "testsrc2=size=640x360:rate=25" -frames:v "$FRAMES" \
      -c:v "$enc" -preset veryfast -bf 0 -g 50 -b:v 1M "${extra[@]}" -f "$fmt" "$CLIP"
    echo "== decode: 640x360 $codec, $FRAMES frames, best of $ROUNDS"
    "$BIN/bench_decode" "$CLIP" "$ROUNDS"
  done
fi

if [ "$WHAT" = all ] || [ "$WHAT" = mqtt ]; then
  echo "== MQTT ingest: $N_EVENTS events"
  PORT=${BENCH_MQTT_PORT:-18883}
  cat > "$WORK/mosquitto.conf" <<CONF
listener $PORT 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 0
CONF
  mosquitto -c "$WORK/mosquitto.conf" >"$WORK/mosquitto.log" 2>&1 &
  MQ_PID=$!
  sleep 0.5
  "$BIN/bench_ingest" "mqtt://127.0.0.1:$PORT" "$N_EVENTS"
  kill "$MQ_PID"; MQ_PID=
fi

if [ "$WHAT" = all ] || [ "$WHAT" = cameras ]; then
  [ -f "$PHOTO" ] || { echo "no $PHOTO (run scripts/setup.sh)" >&2; exit 2; }
  CLIP=$WORK/cam.mp4
  if [ ! -f "$CLIP" ]; then
    # The photo of a face in a 640x360 frame, with temporal noise like a
    # sensor's so that P-frames are not empty; 25 fps, 1 Mbit/s, 5 minutes.
    ffmpeg -y -v error -loop 1 -framerate 25 -i "$PHOTO" -t 300 \
      -vf "scale=640:360:force_original_aspect_ratio=decrease,pad=640:360:(ow-iw)/2:(oh-ih)/2,noise=alls=6:allf=t,format=yuv420p" \
      -c:v libx264 -preset veryfast -profile:v main -bf 0 -g 50 -b:v 1M -maxrate 1M -bufsize 2M \
      -movflags +faststart "$CLIP"
  fi
  echo "== cameras: N in $CAMERAS, ${CAM_SECS}s each after ${CAM_WARMUP}s warm-up"
  "$BIN/bench_cameras" "$CLIP" "$CAMERAS" "$CAM_SECS" "$CAM_WARMUP" 25
fi
echo "load average $(cut -d' ' -f1-3 /proc/loadavg)"
