"""The flood rule: more than FLOOD_REQUESTS requests from one client to one virtual
host within FLOOD_WINDOW seconds, timed by the log lines themselves.

Time is injected through the lines' own timestamps: the same file gives the same
floods however fast it is read, in `watcher.py test WB` (JSON and summary) and in
the running module (lib.watch.Module with its real clock)."""
import io
import json
import os
import time

import pytest

from conftest import ROOT
from lib import config, testmode
from lib.addresses import Protected
from lib.affairs import Tracker
from lib.db import Database, create
from lib.firewall import Recording
from lib.log import NullLog
from lib.rules import Filter
from lib.watch import Module

WB_RULES = os.path.join(ROOT, "modules", "WatchWB", "rules")
T0 = 1795338000.0       # 2026-11-22 06:20:00 UTC


def stamp(t: float) -> str:
    return time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(t))


def request(peer, t, vhost="shop.example.test", target="/", agent="Mozilla/5.0", xff="-", tag="nginx_access"):
    return (f'Nov 22 10:00:00 web1 {tag}: {peer} {vhost} [{stamp(t)}] "GET {target} HTTP/1.1" 200 512 '
            f'"-" "{agent}" "{xff}" {peer}')


@pytest.fixture
def limits(tmp_path, monkeypatch):
    """WatchWB with FLOOD_REQUESTS/FLOOD_WINDOW (and more) set through $WATCHER_CONF, as a user would."""
    def set_(**values):
        conf = tmp_path / "flood.conf"
        conf.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
        monkeypatch.setenv("WATCHER_CONF", str(conf))
        return Filter(WB_RULES, "WB")
    return set_


def verdicts(flt, lines):
    out = io.StringIO()
    testmode.run(flt, {}, io.BytesIO("".join(l + "\n" for l in lines).encode()), out, True)
    return [json.loads(l) for l in out.getvalue().splitlines()]


def floods(objs):
    return [(o["line"], o["ip"]) for o in objs if o["rule"] == "flood"]


def test_one_request_over_the_limit_within_the_window_is_an_affair(limits):
    lines = [request("203.0.113.5", T0 + i) for i in range(6)]
    assert floods(verdicts(limits(FLOOD_REQUESTS=5, FLOOD_WINDOW=10), lines)) == [(6, "203.0.113.5")]
    assert floods(verdicts(limits(FLOOD_REQUESTS=5, FLOOD_WINDOW=10), lines[:5])) == []
    objs = verdicts(limits(FLOOD_REQUESTS=5, FLOOD_WINDOW=10), lines)
    assert all(o["action"] == "ignore" and o["rule"] == "request" for o in objs[:5])


def test_the_same_requests_spread_wider_than_the_window_are_no_flood(limits):
    slow = [request("203.0.113.5", T0 + 2.5 * i) for i in range(40)]
    assert floods(verdicts(limits(FLOOD_REQUESTS=5, FLOOD_WINDOW=10), slow)) == []
    fast = [request("203.0.113.5", T0 + 1.6 * i) for i in range(40)]       # 7 in any 10 s
    assert floods(verdicts(limits(FLOOD_REQUESTS=5, FLOOD_WINDOW=10), fast))


def test_a_legitimate_crawler_at_its_normal_rate_is_left_alone(limits):
    googlebot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
    crawl = [request("2001:db8::66", T0 + 2 * i, target=f"/p/{i}", agent=googlebot) for i in range(1800)]
    objs = verdicts(limits(), crawl)                       # the shipped limits, an hour of crawling
    assert {o["action"] for o in objs} == {"ignore"} and floods(objs) == []
    objs = verdicts(limits(FLOOD_REQUESTS=5, FLOOD_WINDOW=10), crawl)      # even at the edge: 5 in 10 s
    assert floods(objs) == []


def test_floods_are_counted_per_virtual_host_and_per_client(limits):
    mixed = []
    for i in range(5):
        mixed += [request("203.0.113.5", T0 + i, "shop.example.test"), request("203.0.113.5", T0 + i, "blog.example.test"),
                  request("203.0.113.6", T0 + i, "shop.example.test")]
    flt = limits(FLOOD_REQUESTS=5, FLOOD_WINDOW=10)
    assert floods(verdicts(flt, mixed)) == []
    v = flt.filter(request("203.0.113.5", T0 + 5, "blog.example.test"))
    assert (v.action, v.rule, v.ip, v.vhost) == ("inject", "flood", "203.0.113.5", "blog.example.test")


def test_a_flood_that_goes_on_is_one_more_affair_per_limit(limits):
    lines = [request("203.0.113.5", T0 + i / 2) for i in range(13)]
    assert floods(verdicts(limits(FLOOD_REQUESTS=5, FLOOD_WINDOW=10), lines)) == [(6, "203.0.113.5"),
                                                                                  (12, "203.0.113.5")]


def test_the_lines_time_counts_not_the_reading_speed(limits):
    apart = [request("203.0.113.5", T0 + 3 * i) for i in range(6)]          # read at once, 15 s apart
    assert floods(verdicts(limits(FLOOD_REQUESTS=5, FLOOD_WINDOW=10), apart)) == []
    same = [request("203.0.113.5", T0) for _ in range(6)]
    assert floods(verdicts(limits(FLOOD_REQUESTS=5, FLOOD_WINDOW=10), same)) == [(6, "203.0.113.5")]
    shuffled = [request("203.0.113.5", T0 + t) for t in (2, 0, 1, 4, 3, 5)]      # written a little out of order
    assert floods(verdicts(limits(FLOOD_REQUESTS=5, FLOOD_WINDOW=10), shuffled)) == [(6, "203.0.113.5")]


def test_behind_a_trusted_proxy_the_forwarded_client_floods_never_the_proxy(limits):
    flt = limits(FLOOD_REQUESTS=5, FLOOD_WINDOW=10, TRUSTED_PROXIES="10.0.0.5")
    lines = [request("10.0.0.5", T0 + i / 10, xff=f"198.51.100.9, 203.0.113.{7 + i % 2}") for i in range(11)]
    lines += [request("10.0.0.5", T0 + 1 + i / 10) for i in range(20)]            # the proxy's own checks
    lines += [request("203.0.113.9", T0 + 2 + i / 10, xff="198.51.100.9") for i in range(6)]  # untrusted peer
    assert floods(verdicts(flt, lines)) == [(11, "203.0.113.7"), (37, "203.0.113.9")]


def test_summary_and_json_count_the_same_floods(limits):
    lines = []
    for i in range(30):
        lines.append(request("203.0.113.5", T0 + i / 3))
        lines.append(request("2001:db8::5", T0 + i, "blog.example.test"))
        lines.append("Nov 22 10:00:00 web1 nginx: 2026/11/22 10:00:00 [error] 1#1: *9 user \"bob\": password "
                     "mismatch, client: 203.0.113.8, server: shop.example.test, request: \"GET / HTTP/1.1\"")
    data = "".join(l + "\n" for l in lines).encode()
    objs = verdicts(limits(FLOOD_REQUESTS=5, FLOOD_WINDOW=10), lines)
    out = io.StringIO()
    testmode.run(limits(FLOOD_REQUESTS=5, FLOOD_WINDOW=10), {}, io.BytesIO(data), out, False)
    summary = out.getvalue()
    n = len(floods(objs))
    assert n == 10 and f"{n:8d}  flood" in summary              # 5 each: 3/s and 1/s over 6 per 10 s
    assert f"inject: {sum(o['action'] == 'inject' for o in objs)}," in summary


def test_the_running_module_finds_the_floods_watcher_test_finds(limits, tmp_path):
    """lib.watch.Module with its real clock (microseconds between lines) decides as the file's times say."""
    flt = limits(FLOOD_REQUESTS=5, FLOOD_WINDOW=10, FIREWALL="dry-run", DATA_DIR=str(tmp_path), MAX_AFFAIRS=5)
    lines = [request("203.0.113.5", T0 + 3 * i) for i in range(8)]             # no flood: 15 s per 6
    lines += [request("203.0.113.6", T0 + i / 5, "blog.example.test") for i in range(12)]
    lines += [request("2001:db8::7", T0 + i, "shop.example.test") for i in range(6)]
    want = [(o["line"], o["ip"]) for o in verdicts(limits(FLOOD_REQUESTS=5, FLOOD_WINDOW=10), lines)
            if o["action"] == "inject"]
    assert want == [(14, "203.0.113.6"), (20, "203.0.113.6"), (26, "2001:db8::7")]
    settings = config.load("WB")
    path = str(tmp_path / "WatchWB.db")
    create(path, os.path.join(ROOT, "lib", "schema.sql"))
    db = Database(path)
    fw = Recording()
    tracker = Tracker("WB", db, fw, Protected([], []), 5, 60, NullLog())
    module = Module(settings, fw, NullLog(), NullLog(), tracker, flt)
    got = []
    for n, line in enumerate(lines, 1):
        d = module.handle(line)
        if d is not None:
            got.append((n, d.ip))
    assert got == want
    rows = db.conn.execute("SELECT ip, rule, vhost FROM events ORDER BY rowid").fetchall()
    assert rows == [("203.0.113.6", "flood", "blog.example.test")] * 2 + [("2001:db8::7", "flood", "shop.example.test")]
    assert db.get("203.0.113.6").affairs == 2
    db.close()
