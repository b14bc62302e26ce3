#!/usr/bin/env python3
"""Writes a year of the city's traffic as CSV for PostgreSQL's COPY into
`events` (issue 16's partitioned year), one month per call.

The city is the generated site (`anju sim site`): its estates, readers,
scanners, cameras, residents and their cards. Per resident and day, by
default: 4 card swipes (gate and building door, in and out), 2 face
sightings at cameras, and per estate door events and QR visitor scans
(0.35 and 0.45 per resident). Reader heartbeats are not in it (see
bench/README.md). Times fall between 06:00 and 23:00 China time. Payloads
are the store's own event JSON, so the analyzer's warm-up reads them.

usage: year.py SITE_DIR YEAR MONTH [--per-person-day 6.8] > month.csv
"""
import argparse
import calendar
import csv
import json
import os
import random
import re
import sys
from datetime import datetime, timedelta, timezone

CST = timezone(timedelta(hours=8))


def load(site_dir):
    text = open(os.path.join(site_dir, "site.toml"), encoding="utf-8").read()
    estates = {}
    cur = None
    for block in re.split(r"\n(?=\[)", text):
        head = block.split("\n", 1)[0].strip()
        ident = re.search(r'^(?:id|code) = "([^"]+)"', block, re.M)
        if head == "[[estate]]":
            cur = ident.group(1)
            estates[cur] = {"readers": [], "scanners": [], "cameras": [], "persons": []}
        elif head == "[[estate.reader]]":
            estates[cur]["readers"].append(ident.group(1))
        elif head == "[[estate.scanner]]":
            estates[cur]["scanners"].append(ident.group(1))
        elif head == "[[estate.camera]]":
            estates[cur]["cameras"].append(ident.group(1))
    cards = {}
    with open(os.path.join(site_dir, "credentials.csv"), encoding="utf-8-sig") as f:
        r = csv.reader(f)
        next(r)
        for row in r:
            if row and row[0] == "card":
                cards.setdefault(row[2], row[1])
    with open(os.path.join(site_dir, "ledger.csv"), encoding="utf-8-sig") as f:
        r = csv.reader(f)
        head = next(r)
        i_est, i_pid = head.index("estate"), head.index("person_id")
        for row in r:
            if row and row[i_est] in estates:
                estates[row[i_est]]["persons"].append((row[i_pid], cards.get(row[i_pid])))
    return estates


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("site")
    ap.add_argument("year", type=int)
    ap.add_argument("month", type=int)
    ap.add_argument("--per-person-day", type=float, default=6.8)
    a = ap.parse_args()
    estates = load(a.site)
    rnd = random.Random(a.year * 100 + a.month)
    out = csv.writer(sys.stdout, lineterminator="\n")
    share = {"access": 4.0, "sighting": 2.0, "door": 0.35, "qr_scan": 0.45}
    scale = a.per_person_day / sum(share.values())
    days = calendar.monthrange(a.year, a.month)[1]
    seq = 0
    for day in range(1, days + 1):
        base = datetime(a.year, a.month, day, 6, tzinfo=CST)
        for code, e in estates.items():
            n_pers = len(e["persons"])
            for kind, per in share.items():
                n = int(n_pers * per * scale)
                for _ in range(n):
                    seq += 1
                    t = base + timedelta(seconds=rnd.random() * 17 * 3600)
                    ms = int(t.timestamp() * 1000)
                    ts = t.isoformat(timespec="milliseconds")
                    eid = f"y{a.year}{a.month:02d}-{seq}"
                    pid, card = e["persons"][rnd.randrange(n_pers)]
                    direction = "in" if rnd.random() < 0.5 else "out"
                    ck = cid = result = person = None
                    if kind == "access":
                        dev = rnd.choice(e["readers"])
                        granted = card is not None and rnd.random() > 0.04
                        ck, cid = "card", card or f"UNKNOWN-{rnd.randrange(50)}"
                        result = "granted" if granted else "denied"
                        p = {"ts": ts, "kind": "access", "estate": code, "device": dev, "event_id": eid,
                             "credential": {"kind": "card", "id": cid}, "result": result, "direction": direction}
                    elif kind == "sighting":
                        if not e["cameras"]:
                            continue
                        dev = rnd.choice(e["cameras"])
                        person = pid
                        p = {"ts": ts, "kind": "sighting", "estate": code, "camera": dev, "event_id": eid,
                             "person": pid, "score": round(0.95 + rnd.random() * 0.04, 3), "direction": direction}
                    elif kind == "door":
                        dev = rnd.choice(e["readers"])
                        result = "opened" if rnd.random() < 0.5 else "closed"
                        p = {"ts": ts, "kind": "door", "estate": code, "device": dev, "event_id": eid,
                             "state": result}
                    else:
                        if not e["scanners"]:
                            continue
                        dev = rnd.choice(e["scanners"])
                        p = {"ts": ts, "kind": "qr_scan", "estate": code, "device": dev, "event_id": eid,
                             "code": "AJ1.year.pass"}
                    out.writerow([code, dev, eid, kind, ms, ck or "", cid or "", result or "", direction
                                  if kind in ("access", "sighting") else "", person or "", "",
                                  json.dumps(p, separators=(",", ":"), ensure_ascii=False), ms + 300])


if __name__ == "__main__":
    main()
