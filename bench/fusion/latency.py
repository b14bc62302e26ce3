#!/usr/bin/python3
"""Swipe -> credential_misuse latency on the real path (issue 11).

For each passage GStreamer's RTSP server shows an enrolled tenant (OB) at a
building door; 1 s later another unit's card (C-BB) is swiped over
Mosquitto; 2 s later he leaves; the next passage comes a few seconds later.
For every swipe this measures when the alert that carries
that swipe as evidence arrives
  - on the MQTT alerts topic (published by `anju edge` at once), and
  - on the API's SSE feed (`anju serve`, after the outbox forwarded the
    edge's finding and the analyzer attached it),
and prints p50/p99 of both as JSON. The floor is the correlation window
(5 s): a grant is judged once faces could no longer join it.

usage: bench/fusion/latency.py [--passages N] [--gap SECONDS] [--anju PATH]
Needs: scripts/setup.sh (GStreamer RTSP, Mosquitto clients, ONNX Runtime),
models/fetch-test-photos.sh, a running Mosquitto on 127.0.0.1:1883, and a
built anju (default target/release/anju, else target/debug/anju).
"""
import argparse
import datetime
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def gb11643(prefix17):
    w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    s = sum(int(c) * k for c, k in zip(prefix17, w))
    return prefix17 + "10X98765432"[s % 11]


def write_site(d, code, camera_url, photo):
    open(os.path.join(d, "site.toml"), "w").write(f'''timezone = "Asia/Shanghai"
ledger = "ledger.csv"
credentials = "credentials.csv"
photos = "photos"

[[estate]]
code = "{code}"
name = "Latency bench estate"
office = "Bench"

[[estate.building]]
code = "1"
grid = "G1"

[[estate.grid]]
code = "G1"
staff = []

[[estate.entrance]]
code = "door-1"
kind = "building_door"
building = "1"

[[estate.camera]]
id = "cam-1"
url = "{camera_url}"
entrance = "door-1"
faces = "in"

[[estate.reader]]
id = "gr-1"
entrance = "door-1"
''')
    ledger = ["estate,building,unit,area_m2,household,person_id,name,role,id_number,phone,"
              "birth_year,lives_alone,lease_start,lease_end"]
    creds = ["kind,credential_id,person_id,valid_from,valid_to"]
    for i, (unit, person) in enumerate([("101", "OB"), ("102", "BB")]):
        idn = gb11643(f"42060719800101{i + 1:03d}")
        ledger.append(f"{code},1,{unit},50,H{unit},{person},Person {person},tenant,{idn},"
                      f"1380000000{i},1980,0,2020-01-01,")
        creds.append(f"card,C-{person},{person},,")
    open(os.path.join(d, "ledger.csv"), "w").write("\n".join(ledger) + "\n")
    open(os.path.join(d, "credentials.csv"), "w").write("\n".join(creds) + "\n")
    os.makedirs(os.path.join(d, "photos", "OB"))
    with open(photo, "rb") as src, open(os.path.join(d, "photos", "OB", "1.jpg"), "wb") as dst:
        dst.write(src.read())


def api(port, method, path, token=None, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    h = {"Content-Type": "application/json"}
    if token:
        h["Authorization"] = f"Bearer {token}"
    c.request(method, path, body=json.dumps(body) if body is not None else None, headers=h)
    r = c.getresponse()
    data = r.read()
    return r.status, (json.loads(data) if data else None)


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return None
    k = min(len(xs) - 1, max(0, int(round(p / 100 * (len(xs) - 1)))))
    return round(xs[k], 3)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--passages", type=int, default=60)
    ap.add_argument("--gap", type=float, default=4.0, help="seconds between a face leaving and the next")
    ap.add_argument("--anju", default=None)
    a = ap.parse_args()
    anju = a.anju or next(
        p for p in [os.path.join(ROOT, "target/release/anju"), os.path.join(ROOT, "target/debug/anju")]
        if os.path.exists(p))
    photo = os.path.join(ROOT, ".cache/test-photos/obama.jpg")
    if not os.path.exists(photo):
        sys.exit("test photos missing: run bash models/fetch-test-photos.sh")
    estate = "LAT"
    procs = []
    tmp = tempfile.mkdtemp(prefix="anju-latency-")
    env = dict(os.environ, ANJU_LOG="warn")
    try:
        rtsp = free_port()
        scene = subprocess.Popen(
            ["/usr/bin/python3", os.path.join(ROOT, "tests/rtsp/server.py"), str(rtsp), "scene", "scene", photo],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        procs.append(scene)
        url = scene.stdout.readline().split()[1]
        write_site(tmp, estate, url, photo)
        site = os.path.join(tmp, "site.toml")
        db = "sqlite://" + os.path.join(tmp, "centre.db")
        subprocess.run([anju, "import", "--site", site, "--db", db], check=True, env=env,
                       stdout=subprocess.DEVNULL)
        subprocess.run([anju, "user", "add", "op", "--role", "operator", "--all-estates", "--db", db],
                       check=True, env=dict(env, ANJU_PASSWORD="op-password"), stdout=subprocess.DEVNULL)
        port = free_port()
        procs.append(subprocess.Popen([anju, "serve", "--site", site, "--db", db, "--listen", f"127.0.0.1:{port}"],
                                      env=dict(env, ANJU_DATA_DIR=os.path.join(tmp, "centre")),
                                      stdout=subprocess.DEVNULL))
        procs.append(subprocess.Popen([anju, "edge", "--site", site, "--estate", estate, "--db", db,
                                       "--mqtt", "mqtt://127.0.0.1:1883"],
                                      env=dict(env, ANJU_DATA_DIR=os.path.join(tmp, "edge")),
                                      stdout=subprocess.DEVNULL))
        arrivals_mqtt = {}
        arrivals_sse = {}

        def note(store, alert, now):
            for e in alert.get("evidence", []):
                eid = e.get("event_id")
                if e.get("kind") == "access" and eid and eid not in store:
                    store[eid] = now

        sub = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", "1883", "-t",
                                f"anju/v1/{estate}/alerts"], stdout=subprocess.PIPE, text=True)
        procs.append(sub)

        def read_mqtt():
            for line in sub.stdout:
                now = time.time()
                try:
                    note(arrivals_mqtt, json.loads(line), now)
                except ValueError:
                    pass

        threading.Thread(target=read_mqtt, daemon=True).start()
        token = None
        for _ in range(300):
            try:
                st, body = api(port, "POST", "/api/v1/auth/login", body={"username": "op", "password": "op-password"})
                if st == 200:
                    token = body["token"]
                    break
            except OSError:
                pass
            time.sleep(0.2)
        if not token:
            sys.exit("anju serve did not come up")

        def read_sse():
            c = http.client.HTTPConnection("127.0.0.1", port)
            c.request("GET", "/api/v1/alerts/stream", headers={
                "Authorization": f"Bearer {token}", "Accept": "text/event-stream"})
            r = c.getresponse()
            while True:
                line = r.fp.readline()
                if not line:
                    break
                now = time.time()
                line = line.decode("utf-8", "replace").strip()
                if line.startswith("data:"):
                    try:
                        note(arrivals_sse, json.loads(line[5:]), now)
                    except ValueError:
                        pass

        threading.Thread(target=read_sse, daemon=True).start()
        def show(what):
            scene.stdin.write(what + "\n")
            scene.stdin.flush()

        # Warm-up: the camera connects and the face engine starts.
        show("show 1")
        time.sleep(15)
        show("empty")
        time.sleep(a.gap)
        sent = {}
        for i in range(a.passages):
            show("show 1")
            time.sleep(1.0)
            eid = f"lat-{i}"
            now = datetime.datetime.now(datetime.timezone.utc)
            msg = json.dumps({"event_id": eid, "ts": now.isoformat(), "result": "granted", "direction": "in",
                              "credential": {"kind": "card", "id": "C-BB"}})
            sent[eid] = time.time()
            subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", "1883", "-q", "1",
                            "-t", f"anju/v1/{estate}/gate/gr-1/access", "-m", msg], check=True)
            time.sleep(2.0)
            show("empty")
            time.sleep(a.gap)
        time.sleep(20)
        mq = [arrivals_mqtt[k] - t for k, t in sent.items() if k in arrivals_mqtt]
        ss = [arrivals_sse[k] - t for k, t in sent.items() if k in arrivals_sse]
        print(json.dumps({
            "passages": len(sent),
            "anju": os.path.relpath(anju, ROOT),
            "mqtt": {"n": len(mq), "p50_s": pct(mq, 50), "p99_s": pct(mq, 99),
                     "min_s": round(min(mq), 3) if mq else None, "max_s": round(max(mq), 3) if mq else None},
            "sse": {"n": len(ss), "p50_s": pct(ss, 50), "p99_s": pct(ss, 99),
                    "min_s": round(min(ss), 3) if ss else None, "max_s": round(max(ss), 3) if ss else None},
        }, indent=2))
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    main()
