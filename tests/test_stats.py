"""StatLG: the per-day CSV, mailed to a real SMTP server on loopback with its chart.

The database is fed directly (lib.db) with injected times over several days;
the mailed CSV must add up to exactly what was fed, per day, per class and
per rule, and the chart must draw the same numbers."""
import csv
import email
import email.policy
import io
import os
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest

from conftest import ROOT, free_port
from lib import db as dbmod
from lib import stats
from lib.db import Database, Host

MODULE_DIR = os.path.join(ROOT, "modules", "WatchLG")
CLASSES = ("NXDOMAIN", "FAKEHOST", "TRUEHOST", "UNKNOWN")


def noon(days_ago: int) -> float:
    """Local noon `days_ago` days back: far from midnight, so DST cannot move it to another day."""
    t = time.localtime(time.time() - days_ago * 86400)
    return time.mktime((t.tm_year, t.tm_mon, t.tm_mday, 12, 0, 0, 0, 0, -1))


def day(t: float) -> str:
    return time.strftime("%Y-%m-%d", time.localtime(t))


# (address, class, introduced days ago, dropped days ago or None, [(days ago, rule), ...])
FEED = [
    ("203.0.113.1", "NXDOMAIN", 6, 6, [(6, "root-login"), (6, "root-login")]),
    ("203.0.113.2", "FAKEHOST", 6, 5, [(6, "invalid-user"), (5, "invalid-user")]),
    ("203.0.113.3", "TRUEHOST", 5, None, [(5, "root-login")]),
    ("203.0.113.4", "UNKNOWN", 3, 2, [(3, "invalid-user")] * 3 + [(2, "root-login")] * 2),
    ("2001:db8::5", "NXDOMAIN", 3, 3, [(3, "root-login"), (3, "root-login")]),
    ("203.0.113.6", "TRUEHOST", 0, None, [(0, "invalid-user")]),
    ("203.0.113.7", "UNKNOWN", 0, 0, [(0, "root-login")] * 5),
]


def feed(path, rows=FEED):
    db = Database(path)
    try:
        with db.transaction():
            for ip, cls, intro, dropped, events in rows:
                last = max(noon(d) for d, _ in events)
                db.put(Host(ip, cls, None, events[-1][1], "LG", noon(intro) - 60, last,
                            len(events), noon(dropped) if dropped is not None else None, None))
                for k, (d, rule) in enumerate(events):
                    db.add_event(noon(d) + k, ip, rule, "LG")
    finally:
        db.close()


def expected(rows=FEED):
    """day -> column -> count, computed from the feed the way the CSV must read it."""
    out = {}

    def bump(t, col, n=1):
        cols = out.setdefault(day(t), {})
        cols[col] = cols.get(col, 0) + n
    for ip, cls, intro, dropped, events in rows:
        bump(noon(intro) - 60, "introduced")
        bump(noon(intro) - 60, cls)
        if dropped is not None:
            bump(noon(dropped), "dropped")
        for d, rule in events:
            bump(noon(d), f"rule:{rule}")
    return out


@pytest.fixture
def lg(instance, smtp_sink):
    w = instance(MAILHOST=smtp_sink.mailhost, REPORTMAIL="admin@example.test")
    r = w.run("Prep")
    assert r.returncode == 0, r.stdout + r.stderr
    return w


def stat_lg(w, *args, env=None):
    """`cd modules/WatchLG && ./StatLG ...` as in the crontab; `python3` is the test's Python."""
    e = dict(env or w.env)
    e["PATH"] = os.path.dirname(sys.executable) + os.pathsep + e.get("PATH", os.defpath)
    return subprocess.run(["./StatLG", *args], cwd=MODULE_DIR, env=e, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)


def parts(msg):
    csvs = [p for p in msg.walk() if (p.get_filename() or "").endswith(".csv")]
    svgs = [p for p in msg.walk() if p.get_content_type() == "image/svg+xml"]
    htmls = [p for p in msg.walk() if p.get_content_type() == "text/html"]
    return csvs, svgs, htmls


def read_csv(text):
    rows = list(csv.DictReader(io.StringIO(text)))
    return rows


def test_mail_carries_csv_whose_sums_match_the_feed_and_a_chart(lg, smtp_sink):
    feed(lg.path("data", "WatchLG.db"))
    r = stat_lg(lg)
    assert r.returncode == 0, r.stderr
    assert "mailed to admin@example.test" in r.stdout
    assert len(smtp_sink.messages) == 1
    msg = smtp_sink.messages[0]
    assert smtp_sink.envelopes[0][1] == ["admin@example.test"]
    assert msg["To"] == "admin@example.test"
    assert msg["Subject"].startswith("Statistics-LG ")
    csvs, svgs, htmls = parts(msg)
    assert len(csvs) == 1 and len(svgs) == 1 and len(htmls) == 1
    att = csvs[0]
    assert att.get_content_type() == "text/csv" and att.get_content_disposition() == "attachment"
    assert att.get_filename() == f"StatLG-{time.strftime('%Y%m%d')}.csv"
    rows = read_csv(att.get_content())
    header = list(rows[0].keys())
    assert header[:7] == ["date", "introduced", "dropped", *CLASSES]
    assert header[7:] == ["rule:invalid-user", "rule:root-login"]
    want = expected()
    # one row per day, from the first to the last, with no gaps
    assert [r["date"] for r in rows] == [day(noon(d)) for d in range(6, -1, -1)]
    for row in rows:
        for col in header[1:]:
            assert int(row[col]) == want.get(row["date"], {}).get(col, 0), (row["date"], col)
    assert sum(int(r["introduced"]) for r in rows) == len(FEED)
    assert sum(int(r["dropped"]) for r in rows) == sum(1 for f in FEED if f[3] is not None)
    assert sum(int(r["rule:root-login"]) + int(r["rule:invalid-user"]) for r in rows) == \
        sum(len(f[4]) for f in FEED)
    # the chart: an inline SVG that draws the same numbers, with axes, day labels and a legend
    svg = svgs[0]
    assert svg.get_content_disposition() == "inline" and svg.get_filename().endswith(".svg")
    root = ET.fromstring(svg.get_content())
    ns = "{http://www.w3.org/2000/svg}"
    texts = [t.text for t in root.iter(ns + "text")]
    assert all(r["date"] in texts for r in rows)
    assert "introduced (first seen)" in texts and "dropped (custody)" in texts
    bars = {b.find(ns + "title").text for b in root.iter(ns + "rect") if b.find(ns + "title") is not None}
    for row in rows:
        for what in ("introduced", "dropped"):
            n = int(row[what])
            assert (f"{row['date']} {what} {n}" in bars) == (n > 0)
    assert len(root.findall(ns + "line")) >= 2                    # the axes
    assert "<svg" in htmls[0].get_content()                        # shown by the HTML part
    # the plain-text part tells the same story
    plain = next(p for p in msg.walk() if p.get_content_type() == "text/plain")
    assert f"{len(FEED)} addresses introduced" in plain.get_content()


def test_empty_database_still_mails_the_header_row(lg, smtp_sink):
    r = stat_lg(lg)
    assert r.returncode == 0, r.stderr
    csvs, svgs, htmls = parts(smtp_sink.messages[0])
    text = csvs[0].get_content()
    assert text == "date,introduced,dropped,NXDOMAIN,FAKEHOST,TRUEHOST,UNKNOWN\n"
    assert b"no addresses in the database" in svgs[0].get_content()


def test_unreachable_mailhost_says_why_and_keeps_the_csv(instance):
    port = free_port(socket.SOCK_STREAM)          # nothing listens there
    w = instance(MAILHOST=f"127.0.0.1:{port}")
    assert w.run("Prep").returncode == 0
    feed(w.path("data", "WatchLG.db"))
    r = stat_lg(w)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    kept = w.path("data", f"StatLG-{time.strftime('%Y%m%d')}.csv")
    assert f"127.0.0.1:{port}" in lines[0] and kept in lines[0]
    with open(kept) as f:
        rows = read_csv(f.read())
    assert sum(int(r["introduced"]) for r in rows) == len(FEED)
    assert "statistics not mailed" in w.log()       # a cron job's >/dev/null hides stderr: the log has it


def test_sendmail_mode_pipes_the_message_to_sendmail_t_i(instance, tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "sendmail"
    fake.write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path}/args\ncat > {tmp_path}/message\n")
    fake.chmod(0o755)
    w = instance(MAILHOST="sendmail", REPORTMAIL="stats@example.test")
    assert w.run("Prep").returncode == 0
    feed(w.path("data", "WatchLG.db"))
    env = dict(w.env, PATH=f"{bindir}{os.pathsep}{w.env.get('PATH', '')}")
    r = stat_lg(w, env=env)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "args").read_text().split() == ["-t", "-i"]
    msg = email.message_from_bytes((tmp_path / "message").read_bytes(), policy=email.policy.default)
    assert msg["To"] == "stats@example.test" and msg["Subject"].startswith("Statistics-LG ")
    csvs, svgs, _ = parts(msg)
    assert sum(int(r["dropped"]) for r in read_csv(csvs[0].get_content())) == 5 and svgs
    # a sendmail that fails: one line with its status, the CSV kept
    fake.write_text("#!/bin/sh\necho 'sendmail: cannot connect to mail hub' >&2\nexit 75\n")
    r = stat_lg(w, env=env)
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1
    assert "status 75" in r.stderr and "cannot connect to mail hub" in r.stderr
    assert os.path.exists(w.path("data", f"StatLG-{time.strftime('%Y%m%d')}.csv"))


def test_stdout_and_out_write_the_csv_instead_of_mailing(instance, tmp_path):
    w = instance(MAILHOST="127.0.0.1:1")
    assert w.run("Prep").returncode == 0
    feed(w.path("data", "WatchLG.db"))
    r = stat_lg(w, "--stdout")
    assert r.returncode == 0, r.stderr
    rows = read_csv(r.stdout)
    assert sum(int(x["introduced"]) for x in rows) == len(FEED)
    out = tmp_path / "weekly.csv"
    r = stat_lg(w, "--out", str(out))
    assert r.returncode == 0 and out.read_text() == stats_csv(w)
    for bad in (["--bogus"], ["--stdout", "--out", str(out)], ["extra"]):
        r = stat_lg(w, *bad)
        assert r.returncode == 64 and "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def stats_csv(w):
    db = Database(w.path("data", "WatchLG.db"))
    try:
        return stats.table(db).to_csv()
    finally:
        db.close()


def test_table_fills_days_without_attacks_and_keeps_unknown_classes(tmp_path):
    path = str(tmp_path / "WatchLG.db")
    dbmod.create(path, os.path.join(MODULE_DIR, "WatchLG.schema"))
    feed(path, [("198.51.100.1", "NXDOMAIN", 9, None, [(9, "a,b")]),
                ("198.51.100.2", "TRUEHOST", 1, 1, [(1, "x")])])
    db = Database(path)
    try:
        t = stats.table(db)
    finally:
        db.close()
    assert len(t.rows) == 9 and [r[0] for r in t.rows] == [day(noon(d)) for d in range(9, 0, -1)]
    assert t.column("introduced") == [1] + [0] * 7 + [1]
    assert t.column("rule:a,b")[0] == 1
    text = t.to_csv()
    assert '"rule:a,b"' in text.splitlines()[0]          # a rule name with a comma stays one column
    assert list(csv.reader(io.StringIO(text)))[0][-2:] == ["rule:a,b", "rule:x"]
