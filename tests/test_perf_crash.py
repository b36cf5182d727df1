"""Batched writes lose nothing: a module killed with SIGKILL in the middle of a write storm
leaves a database that passes `PRAGMA integrity_check`, and every line the reader took out
of the FIFO has its affair in the database (lines still in the pipe wait for the next
process).  Also: the batch reads the database each time, so another writer's unban
between two batches is not undone.  FIREWALL=dry-run: no root needed."""
import os
import signal
import sqlite3
import subprocess
import sys
import time

from conftest import ROOT, wait_for
from lib import db as dbmod
from lib.addresses import Protected
from lib.affairs import Tracker
from lib.db import Database, Host
from lib.firewall import Recording
from lib.log import NullLog

LINE = "Nov 22 10:00:00 web1 sshd[{n}]: Failed password for root from {ip} port {port} ssh2\n"


def address(i):
    return f"100.{64 + i // 65536}.{i // 256 % 256}.{i % 256}"


def test_sigkill_in_a_write_storm_loses_no_line_the_reader_took(instance):
    w = instance(MAX_AFFAIRS=3, TRACE="off")
    assert w.run("Prep").returncode == 0
    fifo = w.fifo()
    logger = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)      # holds the pipe as rsyslog does
    module = subprocess.Popen([sys.executable, os.path.join(ROOT, "modules", "WatchLG", "WatchLG.py")],
                              env=w.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: os.path.exists(w.path("run", "WatchLG.pid")), 10)
        total = 40000
        data = "".join(LINE.format(n=i, ip=address(i), port=1024 + i % 60000) for i in range(total)).encode()
        view, killed_at = memoryview(data), None
        end = time.monotonic() + 60
        while view and time.monotonic() < end:
            try:
                view = view[os.write(logger, view[:8192]):]
            except BlockingIOError:
                time.sleep(0.001)
            if killed_at is None and len(view) < len(data) // 2:
                module.send_signal(signal.SIGKILL)          # mid-storm: some batches committed, one may be open
                module.wait()
                killed_at = len(data) - len(view)
                break
        assert killed_at is not None
        # what the reader left in the pipe is the tail of what was written
        left = b""
        while True:
            try:
                chunk = os.read(logger, 1 << 20)
            except BlockingIOError:
                break
            if not chunk:
                break
            left += chunk
        written = data[:killed_at]
        assert written.endswith(left)
        taken = written[:len(written) - len(left)]
        assert taken.count(b"\n") > 0 and taken.endswith(b"\n")       # whole lines only
        taken_ips = [line.split(b" from ")[1].split(b" ")[0].decode() for line in taken.splitlines()]
    finally:
        if module.poll() is None:
            module.kill()
            module.wait()
        os.close(logger)
    conn = sqlite3.connect(w.path("data", "WatchLG.db"))
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        known = {r[0] for r in conn.execute("SELECT ip FROM hosts WHERE affairs >= 1")}
        events = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    finally:
        conn.close()
    missing = [ip for ip in taken_ips if ip not in known]
    assert not missing, f"{len(missing)} of {len(taken_ips)} lines taken out of the FIFO have no affair"
    assert events >= len(taken_ips)


def test_a_batch_reads_what_another_writer_committed_between_batches(tmp_path):
    import ipaddress
    path = str(tmp_path / "WatchLG.db")
    dbmod.create(path, os.path.join(ROOT, "lib", "schema.sql"))
    d, other = Database(path), Database(path)
    try:
        t = Tracker("LG", d, Recording(), Protected([], []), max_affairs=5, tarpit_timeout=60, log=NullLog())
        ip = ipaddress.ip_address("198.51.100.9")
        with d.transaction():                       # a module's batch: five affairs, custody
            for i in range(5):
                t.inject(ip, "root-password", port=4000 + i, now=1000.0 + 20 * i)
        assert d.get("198.51.100.9").dropped is not None
        with other.transaction():                   # `watcher.py unban` in between
            assert other.clear("198.51.100.9")
        with d.transaction():                       # the next batch starts from what unban left
            t.inject(ip, "root-password", port=5000, now=1200.0)
        h = d.get("198.51.100.9")
        assert (h.affairs, h.dropped) == (1, None)
    finally:
        d.close()
        other.close()


def test_a_step_that_fails_inside_a_batch_undoes_only_itself(tmp_path):
    path = str(tmp_path / "WatchLG.db")
    dbmod.create(path, os.path.join(ROOT, "lib", "schema.sql"))
    d = Database(path)
    try:
        with d.transaction():
            d.add_event(1.0, "198.51.100.1", "r", "LG")
            try:
                with d.transaction():
                    d.add_event(2.0, "198.51.100.2", "r", "LG")
                    raise RuntimeError("a step fails")
            except RuntimeError:
                pass
            d.add_event(3.0, "198.51.100.3", "r", "LG")
        rows = [r[0] for r in d.conn.execute("SELECT ip FROM events ORDER BY time")]
        assert rows == ["198.51.100.1", "198.51.100.3"]
    finally:
        d.close()


def commit_stream(d, n, start=0):
    """n commits of one new host and its event each, as a module's batches of one line make them
    (with a moment between them, where it tells the kernel); the longest commit, in seconds."""
    longest = 0.0
    for i in range(start, start + n):
        t = time.perf_counter()
        with d.transaction():
            d.put(Host(address(i), "UNKNOWN", None, "r", "LG", float(i), float(i), 1, None, None))
            d.add_event(float(i), address(i), "r", "LG")
        longest = max(longest, time.perf_counter() - t)
        time.sleep(0.0001)
    return longest


def test_the_write_ahead_log_stays_small_while_commits_never_stop(tmp_path):
    """A checkpoint beside endless commits never finds the log still: without the restart
    the log grows by every page every commit writes (here about 25 MB)."""
    path = str(tmp_path / "WatchLG.db")
    dbmod.create(path, os.path.join(ROOT, "lib", "schema.sql"))
    d = Database(path)
    try:
        d.checkpoint_aside(interval=0.005, restart_frames=256)        # a 1 MB log
        biggest = 0
        for k in range(40):
            commit_stream(d, 250, start=250 * k)
            biggest = max(biggest, os.path.getsize(path + "-wal"))
        assert biggest < 6 << 20, f"the write-ahead log grew to {biggest >> 20} MB"
        assert d.conn.execute("SELECT count(*) FROM hosts").fetchone()[0] == 10000
    finally:
        d.close()
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_long_reader_does_not_hold_the_module_s_commits(tmp_path):
    """StatXX reading for a long time: the restart gives up after 10 ms instead of holding
    every commit until the reader ends."""
    path = str(tmp_path / "WatchLG.db")
    dbmod.create(path, os.path.join(ROOT, "lib", "schema.sql"))
    d = Database(path)
    reader = sqlite3.connect(path, isolation_level=None)
    try:
        d.checkpoint_aside(interval=0.005, restart_frames=64)
        commit_stream(d, 200)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM events").fetchone()     # a read transaction that stays
        longest = commit_stream(d, 3000, start=200)
        assert longest < 0.5, f"a commit waited {longest:.2f} s for the checkpoint"
    finally:
        reader.close()
        d.close()
