#!/usr/bin/env python3
"""City soak (issue 16): a day of the city's gates in DAY_S seconds.

The city-sized site (`anju sim site`: 13 estates, 5,803 units), a private
Mosquitto, one `anju edge` per estate, `anju serve` on PostgreSQL (REPLICAS
of them: the live stream is read on the last, which runs no analyzer when
there are two), simulated readers and QR scanners per estate (`anju sim
readers`, at the estate's share of a city-day's traffic), and CAMERAS
simulated RTSP cameras (GStreamer) on estates' main gates.

Measured and written to OUT/soak.json and OUT/soak.svg:
  - events in (what the simulators published) = events stored (central
    store), per kind; none lost, none doubled;
  - gate event -> alert on SSE: for every alert event on the live stream,
    arrival time minus the newest evidence's event time (the simulator
    stamps events at publish), p50/p99;
  - central ingest lag over time: stored time minus event time, per 30 s
    window (p50, p99, max) — it must not grow;
  - CPU of anju serve (analyzer + API) and of the edges, % of one core;
  - store growth per city-day (database size before and after), and the
    part of it that is reader heartbeats (published every 30 s in real
    time: a real day has 2,880 per reader, a compressed one far fewer —
    the report extrapolates them separately).

Usage: soak.py --bin target/release/anju --db postgres://…/anju_city --out DIR
"""
import argparse
import http.client
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ACCESS_PER_PERSON_DAY = 4.0  # gate and building door, in and out
# The simulator's mix (anju-edge/src/sim.rs): 10 % QR scans, 90 % readers
# of which 8 % door events and 92 % card swipes.
ACCESS_SHARE = 0.9 * 0.92


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def psql(db, sql):
    out = subprocess.run(["psql", db, "-qAtX", "-c", sql], check=True, capture_output=True, text=True)
    return out.stdout.strip()


def cpu_s(pid):
    """utime + stime of a process, seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, int(round(p / 100.0 * (len(xs) - 1)))))
    return xs[k]


def rewrite_site(src_dir, dst_dir, cameras):
    """The generated site with only `cameras` gate cameras, each on a port
    of its own; returns [(camera id, port, mount)]."""
    with open(os.path.join(src_dir, "site.toml")) as f:
        text = f.read()
    blocks = re.split(r"\n(?=\[)", text)
    kept, cams = [], []
    for b in blocks:
        if b.startswith("[[estate.camera]]"):
            cid = re.search(r'id = "([^"]+)"', b).group(1)
            if cid.endswith("-cam-gate") and len(cams) < cameras:
                port = free_port()
                mount = cid
                b = re.sub(r'url = "[^"]+"', f'url = "rtsp://127.0.0.1:{port}/{mount}"', b)
                cams.append((cid, port, mount))
            else:
                continue
        kept.append(b)
    os.makedirs(dst_dir, exist_ok=True)
    with open(os.path.join(dst_dir, "site.toml"), "w") as f:
        f.write("\n".join(kept))
    for n in ("ledger.csv", "credentials.csv", "watchlist.csv"):
        with open(os.path.join(src_dir, n)) as a, open(os.path.join(dst_dir, n), "w") as b:
            b.write(a.read())
    return cams


def persons_per_estate(site_dir):
    n = {}
    with open(os.path.join(site_dir, "ledger.csv"), encoding="utf-8-sig") as f:
        header = f.readline()
        for line in f:
            e = line.split(",", 1)[0]
            if e:
                n[e] = n.get(e, 0) + 1
    return n, header


class Sse(threading.Thread):
    """Reads GET /api/v1/alerts/stream; records (arrival, alert)."""

    def __init__(self, port, token):
        super().__init__(daemon=True)
        self.port, self.token = port, token
        self.events = []
        self.stop = False

    def run(self):
        while not self.stop:
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                c.request("GET", "/api/v1/alerts/stream",
                          headers={"Authorization": f"Bearer {self.token}", "Accept": "text/event-stream"})
                r = c.getresponse()
                data = None
                while not self.stop:
                    line = r.readline()
                    if not line:
                        break
                    line = line.decode("utf-8", "replace").rstrip("\r\n")
                    if line.startswith("data:"):
                        data = line[5:].strip()
                    elif line == "" and data:
                        try:
                            self.events.append((time.time(), json.loads(data)))
                        except ValueError:
                            pass
                        data = None
            except OSError:
                time.sleep(0.5)


def login(port, user, password, deadline=90):
    t0 = time.time()
    while time.time() - t0 < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("POST", "/api/v1/auth/login", json.dumps({"username": user, "password": password}),
                      {"Content-Type": "application/json"})
            r = c.getresponse()
            body = r.read()
            if r.status == 200:
                return json.loads(body)["token"]
        except OSError:
            pass
        time.sleep(0.5)
    sys.exit("the API never answered a login")


def ts_ms(s):
    # RFC 3339 with or without fractional seconds, Z or an offset.
    from datetime import datetime
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp() * 1000.0


def svg_plot(path, series_left, series_right, title, left_label, right_label):
    """Two panels, one above the other: ingest lag and SSE latency over the
    run (seconds from start on x)."""
    W, H, pad = 760, 520, 60
    ph = (H - 3 * pad) / 2

    def panel(y0, series, label):
        xs = [x for _, pts, _ in series for x, _ in pts] or [0, 1]
        ys = [y for _, pts, _ in series for _, y in pts] or [0, 1]
        x1, y1 = max(xs) or 1, (max(ys) or 1) * 1.1
        out = [f'<rect x="{pad}" y="{y0}" width="{W - 2 * pad}" height="{ph}" fill="none" stroke="#999"/>',
               f'<text x="{pad}" y="{y0 - 8}" font-size="13">{label}</text>']
        for k in range(5):
            v = y1 * k / 4
            y = y0 + ph - ph * k / 4
            out.append(f'<text x="{pad - 6}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{v:.0f}</text>')
        for k in range(6):
            v = x1 * k / 5
            x = pad + (W - 2 * pad) * k / 5
            out.append(f'<text x="{x:.1f}" y="{y0 + ph + 14}" font-size="10" text-anchor="middle">{v:.0f} s</text>')
        for i, (name, pts, color) in enumerate(series):
            if not pts:
                continue
            d = " ".join(f"{pad + (W - 2 * pad) * x / x1:.1f},{y0 + ph - ph * y / y1:.1f}" for x, y in pts)
            out.append(f'<polyline points="{d}" fill="none" stroke="{color}" stroke-width="1.5"/>')
            out.append(f'<text x="{W - pad - 4}" y="{y0 + 14 + 14 * i}" font-size="11" fill="{color}" '
                       f'text-anchor="end">{name}</text>')
        return out

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif">',
             f'<rect width="{W}" height="{H}" fill="white"/>',
             f'<text x="{W / 2}" y="20" font-size="14" text-anchor="middle">{title}</text>']
    parts += panel(pad, series_left, left_label)
    parts += panel(2 * pad + ph, series_right, right_label)
    parts.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(parts))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--db", required=True, help="an empty PostgreSQL database")
    ap.add_argument("--out", required=True)
    ap.add_argument("--day-s", type=float, default=600, help="seconds a city-day is compressed into")
    ap.add_argument("--cameras", type=int, default=3)
    ap.add_argument("--replicas", type=int, default=2)
    ap.add_argument("--photo", default=os.path.join(ROOT, ".cache/test-photos/obama.jpg"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    work = os.path.join(a.out, "work")
    os.makedirs(work, exist_ok=True)
    procs = []

    def spawn(args, name, env=None, stdout=subprocess.DEVNULL, stdin=None):
        e = dict(os.environ)
        e.update(env or {})
        log = open(os.path.join(work, name + ".log"), "w")
        p = subprocess.Popen(args, env=e, stdout=stdout, stderr=log, stdin=stdin)
        procs.append((p, name))
        return p

    def stop_all():
        for p, _ in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p, name in reversed(procs):
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()

    try:
        gen = os.path.join(work, "generated")
        subprocess.run([a.bin, "sim", "site", "--out", gen], check=True, stdout=subprocess.DEVNULL)
        site_dir = os.path.join(work, "site")
        cams = rewrite_site(gen, site_dir, a.cameras)
        site = os.path.join(site_dir, "site.toml")
        # Visitor passes signed, and trusted by the edges (as in production).
        key = os.path.join(work, "qr-key")
        pub = subprocess.run([a.bin, "qr", "keygen", "--out", key], check=True, capture_output=True,
                             text=True).stdout.strip()
        with open(site) as f:
            text = f.read()
        first = text.index("\n[[estate]]")
        with open(site, "w") as f:
            f.write(text[:first] + f'\n[qr]\npublic_keys = ["{pub}"]\n' + text[first:])
        per_estate, _ = persons_per_estate(site_dir)
        persons = sum(per_estate.values())
        subprocess.run([a.bin, "import", "--site", site, "--db", a.db], check=True, stdout=subprocess.DEVNULL)
        env_pw = {"ANJU_PASSWORD": "soak-password"}
        subprocess.run([a.bin, "user", "add", "soak", "--role", "supervisor", "--all-estates", "--db", a.db],
                       check=True, env={**os.environ, **env_pw}, stdout=subprocess.DEVNULL)
        size0 = int(psql(a.db, "SELECT pg_database_size(current_database())"))

        mq_port = free_port()
        spawn(["mosquitto", "-p", str(mq_port)], "mosquitto")
        mqtt = f"mqtt://127.0.0.1:{mq_port}"
        for cid, port, mount in cams:
            spawn(["python3", os.path.join(ROOT, "tests/rtsp/server.py"), str(port), mount, "h264", a.photo,
                   "640", "360"], "camera-" + cid, stdout=subprocess.PIPE)
        ports = [free_port() for _ in range(a.replicas)]
        serves = []
        for i, port in enumerate(ports):
            serves.append(spawn([a.bin, "serve", "--site", site, "--db", a.db, "--listen", f"127.0.0.1:{port}"],
                                f"serve-{i}", env={"ANJU_DATA_DIR": os.path.join(work, f"serve-{i}")}))
            if i == 0:
                login(port, "soak", "soak-password")
        token = login(ports[-1], "soak", "soak-password")
        edges = []
        for e in sorted(per_estate):
            edges.append(spawn([a.bin, "edge", "--site", site, "--estate", e, "--db", a.db, "--mqtt", mqtt,
                                "--engine-threads", "1"],
                               f"edge-{e}", env={"ANJU_DATA_DIR": os.path.join(work, f"edge-{e}"), "ANJU_LOG": "info"}))
        sse = Sse(ports[-1], token)
        sse.start()
        # Edges subscribed (their logs say so) before the day starts.
        t0 = time.time()
        while time.time() - t0 < 90:
            ready = 0
            for e in per_estate:
                with open(os.path.join(work, f"edge-{e}.log"), errors="replace") as f:
                    if "Connected to the MQTT broker" in f.read():
                        ready += 1
            if ready == len(per_estate):
                break
            time.sleep(0.5)
        time.sleep(2)

        # The day: each estate's readers at its share of the city's traffic.
        day_msgs = persons * ACCESS_PER_PERSON_DAY / ACCESS_SHARE
        sims = {}
        start = time.time()
        cpu0 = {p.pid: cpu_s(p.pid) for p in serves + edges}
        for e, n in sorted(per_estate.items()):
            rate = n * ACCESS_PER_PERSON_DAY / ACCESS_SHARE / a.day_s
            sims[e] = spawn([a.bin, "sim", "readers", "--site", site, "--estate", e, "--mqtt", mqtt,
                             "--rate", f"{rate:.3f}", "--qr-key", key], f"sim-{e}")
        samples = []
        while time.time() - start < a.day_s:
            time.sleep(5)
            n = int(psql(a.db, "SELECT COUNT(*) FROM events"))
            samples.append({"t": round(time.time() - start, 1), "stored": n,
                            "serve_cpu_s": [cpu_s(p.pid) for p in serves],
                            "edges_cpu_s": sum(cpu_s(p.pid) or 0 for p in edges)})
        end = time.time()
        cpu1 = {p.pid: cpu_s(p.pid) for p in serves + edges}
        for p in sims.values():
            p.send_signal(signal.SIGINT)
        published = {"access": 0, "door": 0, "status": 0, "scans": 0}
        for e, p in sims.items():
            p.wait(timeout=60)
            with open(os.path.join(work, f"sim-{e}.log"), errors="replace") as f:
                m = re.search(r"SimStats \{ access: (\d+), door: (\d+), status: (\d+), scans: (\d+) \}", f.read())
            if not m:
                sys.exit(f"sim readers of {e} printed no counts")
            for k, v in zip(("access", "door", "status", "scans"), m.groups()):
                published[k] += int(v)
        total_pub = sum(published.values())
        # Drain: wait until every published message is stored.
        # (Cameras' own status events, from the edges, are not the readers'.)
        kinds_sql = ("SELECT kind, COUNT(*) FROM events WHERE kind IN ('access','door','status','qr_scan') "
                     "AND device NOT LIKE '%-cam-%' GROUP BY kind")
        t_drain = time.time()
        stored = {}
        while time.time() - t_drain < 180:
            stored = dict(l.split("|") for l in psql(a.db, kinds_sql).splitlines() if l)
            stored = {k: int(v) for k, v in stored.items()}
            if sum(stored.values()) >= total_pub:
                break
            time.sleep(2)
        drain_s = time.time() - t_drain
        dup = int(psql(a.db, "SELECT COUNT(*) - COUNT(DISTINCT (estate, device, event_id)) FROM events"))
        time.sleep(3)
        sse.stop = True
        # Ingest lag per 30 s window of event time.
        lag_rows = psql(a.db, f"""
            SELECT (ts_ms - {int(start * 1000)}) / 30000 AS w,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY received_ms - ts_ms),
                   percentile_cont(0.99) WITHIN GROUP (ORDER BY received_ms - ts_ms),
                   MAX(received_ms - ts_ms), COUNT(*)
            FROM events WHERE ts_ms >= {int(start * 1000)} AND kind <> 'passage'
            GROUP BY 1 ORDER BY 1""")
        lag = []
        for l in lag_rows.splitlines():
            w, p50, p99, mx, n = l.split("|")
            lag.append({"t": int(w) * 30 + 15, "p50_ms": float(p50), "p99_ms": float(p99),
                        "max_ms": int(mx), "events": int(n)})
        # SSE latency: arrival minus the newest evidence's event time.
        # Rules that wait by design (a door held open past its limit, a
        # device silent past its limit) are reported apart: their latency is
        # the rule's wait, not the system's.
        timed = {"door_held_open", "device_offline"}
        sse_lat = []
        timed_lat = {}
        codes = {}
        for arrived, al in sse.events:
            codes[al.get("code")] = codes.get(al.get("code"), 0) + 1
            ev = [ts_ms(e["ts"]) for e in al.get("evidence", []) if e.get("ts")]
            if not ev:
                continue
            newest = max(ev)
            if newest < start * 1000:
                continue
            if al.get("code") in timed:
                timed_lat.setdefault(al.get("code"), []).append(arrived * 1000 - newest)
                continue
            sse_lat.append((arrived - start, arrived * 1000 - newest))
        size1 = int(psql(a.db, "SELECT pg_database_size(current_database())"))
        status_bytes = psql(a.db, "SELECT COALESCE(AVG(pg_column_size(e.*)), 0) FROM events e WHERE kind = 'status'")
        readers = int(psql(a.db, "SELECT COUNT(*) FROM devices WHERE kind = 'reader'"))
        wall = end - start
        report = {
            "city": {"estates": len(per_estate), "persons": persons, "readers": readers,
                     "cameras": len(cams), "replicas": a.replicas},
            "day_s": a.day_s,
            "run_s": round(wall, 1),
            "published": published,
            "published_total": total_pub,
            "stored": stored,
            "stored_total": sum(stored.values()),
            "lost": total_pub - sum(stored.values()),
            "doubled": dup,
            "drain_s": round(drain_s, 1),
            "sse": {"alerts": len(sse.events), "by_code": codes, "measured": len(sse_lat),
                    "p50_ms": pct([x for _, x in sse_lat], 50), "p99_ms": pct([x for _, x in sse_lat], 99),
                    "max_ms": max([x for _, x in sse_lat], default=None),
                    "timer_rules": {c: {"n": len(x), "p50_ms": pct(x, 50), "max_ms": max(x)}
                                    for c, x in timed_lat.items()}},
            "ingest_lag": lag,
            "cpu_pct_of_one_core": {
                "serve": [round(100 * ((cpu1[p.pid] or 0) - (cpu0[p.pid] or 0)) / wall, 1) for p in serves],
                "edges_total": round(100 * sum((cpu1[p.pid] or 0) - (cpu0[p.pid] or 0) for p in edges) / wall, 1),
            },
            "store_growth_bytes": size1 - size0,
            "status_row_bytes": float(status_bytes),
            "heartbeats_per_real_day": readers * 2880,
            "samples": samples,
        }
        with open(os.path.join(a.out, "soak.json"), "w") as f:
            json.dump(report, f, indent=1)
        svg_plot(os.path.join(a.out, "soak.svg"),
                 [("p50", [(r["t"], r["p50_ms"]) for r in lag], "#1f77b4"),
                  ("p99", [(r["t"], r["p99_ms"]) for r in lag], "#d62728")],
                 [("each alert", sse_lat, "#2ca02c")],
                 f"City soak: {persons} persons, a day in {a.day_s:.0f} s",
                 "central ingest lag (ms), per 30 s of event time",
                 "gate event -> alert on SSE (ms)")
        brief = {k: v for k, v in report.items() if k not in ("samples", "ingest_lag")}
        print(json.dumps(brief, indent=1))
    finally:
        stop_all()


if __name__ == "__main__":
    main()
