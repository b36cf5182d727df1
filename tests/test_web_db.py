"""Every affair records its virtual host: schema version 2, the migration of a version 1
database (after a backup copy), and the path from a WatchWB rule to the events table."""
import os
import sqlite3

import pytest

from conftest import ROOT
from lib import db as dbmod
from lib.addresses import Protected, parse_peer
from lib.affairs import Tracker
from lib.db import Database, Host
from lib.firewall import Recording

# The schema of Watcher's first release, as a database of that time holds it.
SCHEMA_V1 = """
CREATE TABLE hosts (ip TEXT PRIMARY KEY, class TEXT NOT NULL DEFAULT 'UNKNOWN', name TEXT, rule TEXT NOT NULL,
    module TEXT NOT NULL, introduced REAL NOT NULL, last_seen REAL NOT NULL, affairs INTEGER NOT NULL DEFAULT 0,
    dropped REAL, tarpit_until REAL);
CREATE INDEX hosts_last_seen ON hosts(last_seen);
CREATE TABLE events (time REAL NOT NULL, ip TEXT NOT NULL, rule TEXT NOT NULL, module TEXT NOT NULL);
CREATE INDEX events_time ON events(time);
PRAGMA user_version = 1;
"""


def v1_database(path):
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA_V1)
    conn.execute("INSERT INTO hosts VALUES ('203.0.113.5','NXDOMAIN',NULL,'root-login','LG',1,2,5,2,NULL)")
    conn.executemany("INSERT INTO events VALUES (?,?,?,?)", [(1, "203.0.113.5", "root-login", "LG"),
                                                             (2, "203.0.113.5", "root-login", "LG")])
    conn.commit()
    conn.close()


def columns(conn, table):
    return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]


def test_a_new_database_has_version_2_and_the_vhost_column(tmp_path):
    path = str(tmp_path / "WatchWB.db")
    assert dbmod.create(path, os.path.join(ROOT, "modules", "WatchWB", "WatchWB.schema"))
    d = Database(path)
    try:
        assert d.conn.execute("PRAGMA user_version").fetchone()[0] == dbmod.SCHEMA_VERSION == 2
        assert columns(d.conn, "events")[-1] == "vhost"
        assert not os.path.exists(path + ".v1.bak")                 # nothing to migrate, nothing copied
    finally:
        d.close()


def test_a_version_1_database_is_copied_aside_then_migrated(tmp_path):
    path = str(tmp_path / "WatchLG.db")
    v1_database(path)
    d = Database(path)
    try:
        assert d.conn.execute("PRAGMA user_version").fetchone()[0] == 2
        assert "vhost" in columns(d.conn, "events")
        assert d.get("203.0.113.5").affairs == 5                    # the rows are kept
        assert d.conn.execute("SELECT count(*) FROM events WHERE vhost IS NULL").fetchone()[0] == 2
        with d.transaction():
            d.add_event(3, "203.0.113.5", "attack-path", "WB", "shop.example.test")
        assert d.vhosts() == ["shop.example.test"] and d.top_vhosts() == [("shop.example.test", 1)]
    finally:
        d.close()
    backup = sqlite3.connect(path + ".v1.bak")                     # the copy is the untouched version 1
    try:
        assert backup.execute("PRAGMA user_version").fetchone()[0] == 1
        assert "vhost" not in columns(backup, "events")
        assert backup.execute("SELECT count(*) FROM events").fetchone()[0] == 2
    finally:
        backup.close()
    again = Database(path)                                          # opening it again migrates nothing
    again.close()
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 2


def test_a_database_newer_than_this_watcher_is_refused(tmp_path):
    path = str(tmp_path / "WatchWB.db")
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA_V1 + "PRAGMA user_version = 3;")
    conn.close()
    with pytest.raises(dbmod.WatcherError) as e:
        Database(path)
    assert "newer than this Watcher" in str(e.value)


class Lines:
    def __init__(self):
        self.lines = []

    def write(self, text):
        self.lines.append(text)


def test_an_affair_records_the_virtual_host(tmp_path):
    path = str(tmp_path / "WatchWB.db")
    dbmod.create(path, os.path.join(ROOT, "lib", "schema.sql"))
    d = Database(path)
    fw = Recording()
    log = Lines()
    t = Tracker("WB", d, fw, Protected([], []), 5, 60, log)
    try:
        t.inject(parse_peer("203.0.113.5"), "attack-path", 1, 100.0, vhost="shop.example.test")
        assert log.lines == ["[attack-path] 203.0.113.5 UNKNOWN affairs 1/5 -> TARPIT 60s on shop.example.test"]
        t.inject(parse_peer("203.0.113.5"), "attack-path", 2, 101.0, vhost="blog.example.test")
        t.inject(parse_peer("2001:db8::6"), "apache-auth", 3, 102.0)                    # no host known
        rows = d.conn.execute("SELECT ip, rule, module, vhost FROM events ORDER BY time").fetchall()
        assert rows == [("203.0.113.5", "attack-path", "WB", "shop.example.test"),
                        ("203.0.113.5", "attack-path", "WB", "blog.example.test"),
                        ("2001:db8::6", "apache-auth", "WB", None)]
        assert d.get("203.0.113.5").affairs == 2 and fw.sets["tarpit"]["203.0.113.5"] == 120
        assert d.top_attackers(0, 10, "blog.example.test") == [("203.0.113.5", 1, "UNKNOWN")]
    finally:
        d.close()


def test_stats_queries_per_virtual_host(tmp_path):
    path = str(tmp_path / "WatchWB.db")
    dbmod.create(path, os.path.join(ROOT, "lib", "schema.sql"))
    d = Database(path)
    noon = 1795348800.0            # 2026-11-22 09:20 UTC: the same local day anywhere from UTC-9 to UTC+14
    try:
        with d.transaction():
            d.put(Host("203.0.113.5", "NXDOMAIN", None, "flood", "WB", noon, noon + 60, 5, noon + 60, None))
            d.put(Host("203.0.113.6", "TRUEHOST", None, "attack-path", "WB", noon, noon, 1, None, noon + 60))
            for k in range(5):
                d.add_event(noon + k, "203.0.113.5", "flood", "WB", "shop.example.test")
            d.add_event(noon, "203.0.113.6", "attack-path", "WB", "blog.example.test")
        day = d.affairs_per_day()[0][0]
        assert d.affairs_per_day("shop.example.test") == [(day, "flood", 5)]
        assert d.affairs_per_day("blog.example.test") == [(day, "attack-path", 1)]
        assert d.introduced_per_day("shop.example.test") == [(day, "NXDOMAIN", 1)]
        assert d.dropped_per_day("shop.example.test") == [(day, 1)] and d.dropped_per_day("blog.example.test") == []
        assert d.dropped_per_day() == [(day, 1)] and sorted(d.introduced_per_day()) == [(day, "NXDOMAIN", 1),
                                                                                         (day, "TRUEHOST", 1)]
        assert d.top_vhosts() == [("shop.example.test", 5), ("blog.example.test", 1)]
        assert d.affairs_per_day("nowhere.example.test") == []
    finally:
        d.close()
