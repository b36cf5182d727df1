"""ExpireLG: old addresses leave the database and, at once, the kernel's sets.

Time is injected (rows written with old times, or `now=` at the lib level);
no test waits for a day to pass."""
import os
import subprocess
import sys
import time

import pytest

from conftest import ROOT
from lib import db as dbmod
from lib import expire
from lib.db import Database, Host
from lib.errors import UsageError
from lib.firewall import Recording

MODULE_DIR = os.path.join(ROOT, "modules", "WatchLG")
SCHEMA = os.path.join(MODULE_DIR, "WatchLG.schema")
DAY = 86400
NOW = 1_900_000_000.0


def new_db(path):
    dbmod.create(str(path), SCHEMA)
    return Database(str(path))


def put(db, ip, cls, last_seen, dropped=None, tarpit_until=None, module="LG", events=1):
    with db.transaction():
        db.put(Host(ip, cls, None, "root-login", module, last_seen - 60, last_seen, 5 if dropped else 1,
                    dropped, tarpit_until))
        for k in range(events):
            db.add_event(last_seen - k, ip, "root-login", module)


def expire_lg(w, *args, prefix=()):
    """`cd modules/WatchLG && ./ExpireLG ...` as in the crontab; `python3` is the test's Python."""
    env = dict(w.env, PATH=os.path.dirname(sys.executable) + os.pathsep + w.env.get("PATH", os.defpath))
    return subprocess.run([*prefix, "./ExpireLG", *args], cwd=MODULE_DIR, env=env, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)


# ---------------------------------------------------------------- the model, at the lib level
def test_expire_removes_old_rows_and_events_and_releases_them_unless_held_elsewhere(tmp_path):
    own, other = new_db(tmp_path / "WatchLG.db"), new_db(tmp_path / "WatchMX.db")
    try:
        put(own, "203.0.113.1", "NXDOMAIN", NOW - 40 * DAY, dropped=NOW - 40 * DAY, events=3)
        put(own, "203.0.113.2", "TRUEHOST", NOW - 31 * DAY, tarpit_until=NOW + 600)   # old, odd live tarpit
        put(own, "203.0.113.3", "FAKEHOST", NOW - 35 * DAY, dropped=NOW - 35 * DAY)   # held by MX too
        put(own, "2001:db8::4", "UNKNOWN", NOW - 90 * DAY)
        put(own, "203.0.113.5", "NXDOMAIN", NOW - 29 * DAY, dropped=NOW - 29 * DAY)   # fresh: stays
        put(other, "203.0.113.3", "FAKEHOST", NOW - 1 * DAY, dropped=NOW - 1 * DAY, module="MX")
        put(other, "2001:db8::4", "UNKNOWN", NOW - 1 * DAY, module="MX")           # known there, not held
        fw = Recording()
        for ip in ("203.0.113.1", "203.0.113.3", "203.0.113.5"):
            fw.custody(ip, False)
        fw.tarpit("203.0.113.2", 600, False)
        r = expire.expire(own, fw, 30, NOW, {"WatchMX": other})
        assert r.per_class == {"NXDOMAIN": 1, "FAKEHOST": 1, "TRUEHOST": 1, "UNKNOWN": 1}
        assert r.total == 4 and r.was_custody == 2 and r.was_tarpit == 1
        assert r.kept == {"203.0.113.3": "WatchMX"}
        assert sorted(r.released) == ["2001:db8::4", "203.0.113.1", "203.0.113.2"]
        assert set(fw.sets["custody"]) == {"203.0.113.3", "203.0.113.5"}
        assert fw.sets["tarpit"] == {}
        left = [row[0] for row in own.conn.execute("SELECT ip FROM hosts")]
        assert left == ["203.0.113.5"]
        assert {row[0] for row in own.conn.execute("SELECT ip FROM events")} == {"203.0.113.5"}
        assert other.get("203.0.113.3") is not None          # the other database is only read
        text = r.summary("WatchLG")
        assert "removed 4 addresses not seen for 30 days" in text
        assert "NXDOMAIN 1, FAKEHOST 1, TRUEHOST 1, UNKNOWN 1" in text and "held by WatchMX" in text
        # 0 days: everything seen before now
        r = expire.expire(own, fw, 0, NOW, {"WatchMX": other})
        assert r.total == 1 and own.counts(NOW)["tracked"] == 0 and fw.sets["custody"] == {"203.0.113.3": None}
    finally:
        own.close()
        other.close()


@pytest.mark.parametrize("argv,ok", [([], 30), (["0"], 0), (["7"], 7), (["abc"], None), (["-1"], None),
                                     (["1.5"], None), (["7", "8"], None), (["\u0663"], None)])
def test_days_argument(argv, ok):
    if ok is None:
        with pytest.raises(UsageError) as e:
            expire.parse_days(argv, 30, "ExpireLG")
        assert e.value.status == 64 and "ExpireLG" in str(e.value)
    else:
        assert expire.parse_days(argv, 30) == ok


# ---------------------------------------------------------------- the command
def test_bad_arguments_exit_64_with_one_line(instance):
    w = instance()
    assert w.run("Prep").returncode == 0
    for args, words in ((["abc"], "'abc'"), (["3", "4"], "too many"), (["-5"], "'-5'")):
        r = expire_lg(w, *args)
        assert r.returncode == 64, r.stderr
        assert "Traceback" not in r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("ExpireLG: ") and words in lines[0], r.stderr
    r = expire_lg(w, "--help")
    assert r.returncode == 0 and "ExpireLG [days]" in r.stdout


def test_expire_0_empties_the_database_and_logs_what_it_removed(instance):
    w = instance()          # dry-run: no root, the kernel untouched
    assert w.run("Prep").returncode == 0
    db = w.db()
    now = time.time()
    try:
        put(db, "203.0.113.1", "NXDOMAIN", now - 5, dropped=now - 5)
        put(db, "203.0.113.2", "TRUEHOST", now - 3 * DAY, tarpit_until=now + 60)
        put(db, "203.0.113.3", "TRUEHOST", now - 2)
    finally:
        db.close()
    r = expire_lg(w, "1")
    assert r.returncode == 0, r.stderr
    assert "removed 1 address not seen for 1 day" in r.stdout and "TRUEHOST 1" in r.stdout
    r = expire_lg(w, "0")
    assert r.returncode == 0, r.stderr
    assert "removed 2 addresses not seen for 0 days" in r.stdout
    assert "NXDOMAIN 1, FAKEHOST 0, TRUEHOST 1, UNKNOWN 0" in r.stdout
    db = w.db()
    try:
        assert db.counts(time.time())["tracked"] == 0
        assert db.conn.execute("SELECT count(*) FROM events").fetchone()[0] == 0
    finally:
        db.close()
    log = w.log()
    assert "ExpireLG[" in log and "removed 2 addresses not seen for 0 days" in log
    assert "dry-run: ipset del tarpit/custody" in log


def test_without_root_it_says_so(instance):
    if os.geteuid() == 0:
        pytest.skip("runs as root: the root check cannot be seen")
    w = instance(FIREWALL="ipset")
    w.run("Prep")
    r = expire_lg(w, "30")
    assert r.returncode != 0 and "needs root" in r.stderr and "Traceback" not in r.stderr


# ---------------------------------------------------------------- the kernel
def test_expired_custody_and_tarpit_leave_the_kernel_at_once(netns_pair, instance):
    net = netns_pair
    w = instance(prefix=["ip", "netns", "exec", net.srv], FIREWALL="ipset", DNS_CLASSIFY="off")
    assert w.run("Prep").returncode == 0
    r = w.run("start")
    assert r.returncode == 0, r.stderr
    old, fresh, old_tarpit = net.atk_ips[0], net.atk_ips[1], net.atk_ips[2]
    old6 = net.atk_ip6
    try:
        for ip in (old, fresh, old6):
            r = w.run("ban", ip)
            assert r.returncode == 0, r.stderr
        now = time.time()
        db = w.db()
        try:
            put(db, old_tarpit, "TRUEHOST", now - 45 * DAY, tarpit_until=now + 3600)
            with db.transaction():           # time injected: these two were last seen 45 days ago
                for ip in (old, old6):
                    db.conn.execute("UPDATE hosts SET last_seen = ? WHERE ip = ?", (now - 45 * DAY, ip))
        finally:
            db.close()
        net.sh("ipset", "add", "tarpit", old_tarpit, "timeout", "3600", ns=net.srv)
        assert not net.connect(old) and not net.connect(fresh) and not net.connect(old_tarpit)
        r = expire_lg(w, "30", prefix=["ip", "netns", "exec", net.srv])
        assert r.returncode == 0, r.stderr
        assert "removed 3 addresses" in r.stdout and "3 taken out of the kernel's sets" in r.stdout
        # at once: no restart, no wait
        assert not net.in_set("custody", old) and not net.in_set("custody6", old6)
        assert not net.in_set("tarpit", old_tarpit)
        assert net.in_set("custody", fresh)
        assert net.connect(old) and net.connect(old_tarpit) and net.connect(old6)
        assert not net.connect(fresh)
        assert "WatchLG: running" in w.run("status").stdout    # the module was never restarted
    finally:
        w.run("stop", "--flush")
