"""WatchMX and WatchMB share one database (WatchMX.db) and write it at once.

Two processes, one per module, count affairs through lib.affairs.Tracker into
the same file as fast as they can, on the same addresses: every affair must
arrive (no lost update: each transaction reads and writes the row under
BEGIN IMMEDIATE) and neither may fail with 'database is locked' (WAL and a
busy timeout).  Real sqlite files, real processes; the firewall records."""
import os
import subprocess
import sys
import time

from lib import db as dbmod
from lib.db import Database
from conftest import ROOT

SHARED = ["203.0.113.10", "203.0.113.11", "2001:db8::12", "203.0.113.13"]
OWN = {"MX": "203.0.113.20", "MB": "203.0.113.21"}
ROUNDS = 150

WORKER = r"""
import ipaddress, os, sys, time
sys.path.insert(0, {root!r})
from lib.addresses import Protected
from lib.affairs import Tracker
from lib.db import Database
from lib.firewall import Recording
from lib.log import NullLog

token, path, go = sys.argv[1], sys.argv[2], sys.argv[3]
ips = [ipaddress.ip_address(a) for a in sys.argv[4:]]
db = Database(path)
t = Tracker(token, db, Recording(), Protected([], []), max_affairs=10 ** 9, tarpit_timeout=60, log=NullLog())
while not os.path.exists(go):          # both start together
    time.sleep(0.001)
now = time.time()
for r in range({rounds}):
    for ip in ips:
        t.inject(ip, token + "-rule", None, now + r)
db.close()
print("done", token)
"""


def worker(token, path, go, ips):
    code = WORKER.format(root=ROOT, rounds=ROUNDS)
    return subprocess.Popen([sys.executable, "-c", code, token, path, go, *ips],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_mx_and_mb_hammer_the_shared_database_and_nothing_is_lost(tmp_path):
    path = str(tmp_path / "WatchMX.db")
    dbmod.create(path, os.path.join(ROOT, "lib", "schema.sql"))
    go = str(tmp_path / "go")
    procs = {t: worker(t, path, go, SHARED + [OWN[t]]) for t in ("MX", "MB")}
    time.sleep(0.3)                     # both processes up and waiting
    open(go, "w").close()
    for token, p in procs.items():
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, f"Watch{token}: {err}"
        assert "locked" not in err and err == "", err
        assert out.strip() == f"done {token}"
    d = Database(path)
    try:
        for ip in SHARED:
            assert d.get(ip).affairs == 2 * ROUNDS, ip            # no lost update between the two
        for token, ip in OWN.items():
            h = d.get(ip)
            assert (h.affairs, h.module, h.rule) == (ROUNDS, token, f"{token}-rule")
        events = dict(d.conn.execute("SELECT module, count(*) FROM events GROUP BY module").fetchall())
        assert events == {"MX": ROUNDS * (len(SHARED) + 1), "MB": ROUNDS * (len(SHARED) + 1)}
        assert d.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        d.close()


def test_mb_finds_mx_database_with_the_shipped_settings():
    """WatchMB.conf points DATA_DIR at WatchMX's folder: both open the same file."""
    from lib import config
    env = {k: v for k, v in os.environ.items() if k != "WATCHER_CONF"}
    mx, mb = config.load("MX", env), config.load("MB", env)
    assert mb.database == mx.database == os.path.join(ROOT, "modules", "WatchMX", "WatchMX.db")
    assert (mb.MAX_AFFAIRS, mb.TARPIT_TIMEOUT) == (mx.MAX_AFFAIRS, mx.TARPIT_TIMEOUT)
