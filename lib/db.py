"""The module database: what it says is the truth about every address.

One sqlite3 file per module (MX and MB share one), created by Prep from the
module's schema template.  WAL mode, a busy timeout and short IMMEDIATE
transactions let several processes (a module, ExpireXX, `watcher.py unban`)
write at once without 'database is locked'.  Each decision is committed
before the firewall is told, so the kernel never holds a ban the database
does not know and `watcher.py start` can restore everything from here.
The schema carries `PRAGMA user_version`; an older database is copied aside
and migrated when opened.
"""
import contextlib
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from typing import Iterator, List, Optional, Tuple

from lib.errors import WatcherError

SCHEMA_VERSION = 2
MIGRATIONS = {    # version n -> statements that turn an n database into n+1 (run in one transaction)
    1: "ALTER TABLE events ADD COLUMN vhost TEXT; CREATE INDEX IF NOT EXISTS events_vhost ON events(vhost)",
}


@dataclass(frozen=True)
class Host:
    ip: str
    cls: str
    name: Optional[str]
    rule: str
    module: str
    introduced: float
    last_seen: float
    affairs: int
    dropped: Optional[float]
    tarpit_until: Optional[float]


_COLUMNS = "ip, class, name, rule, module, introduced, last_seen, affairs, dropped, tarpit_until"


def create(path: str, schema_path: str) -> bool:
    """Create the database from its schema template; False when it existed."""
    existed = os.path.exists(path)
    try:
        with open(schema_path, encoding="utf-8") as f:
            schema = f.read()
    except OSError as e:
        raise WatcherError(f"{schema_path}: cannot read the schema template: {e.strerror}") from None
    os.makedirs(os.path.dirname(path), exist_ok=True)
    conn = sqlite3.connect(path)
    try:
        if not existed or _version(conn) == 0:
            conn.executescript(schema)
            conn.execute("PRAGMA journal_mode=WAL")     # once, here: two writers switching at once collide
        os.chmod(path, 0o600)
    except sqlite3.DatabaseError as e:
        raise WatcherError(f"{path}: {e} (move the file aside and run ./Prep again)") from None
    finally:
        conn.close()
    return not existed


def _version(conn) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


class Database:
    """Open handle on one module database."""

    def __init__(self, path: str, timeout: float = 30.0):
        if not os.path.exists(path):
            raise WatcherError(f"{path}: no database; run ./Prep to create it")
        try:
            self.conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            version = _version(self.conn)
        except sqlite3.DatabaseError as e:
            raise WatcherError(f"{path}: {e}") from None
        if version < SCHEMA_VERSION:
            self._migrate(path, version)
        elif version > SCHEMA_VERSION:
            raise WatcherError(f"{path}: schema version {version} is newer than this Watcher ({SCHEMA_VERSION})")
        self.path = path
        # checkpoint_aside(): its thread, and the events that wake and stop it (each commit sets _committed)
        self._checkpoints: Optional[threading.Thread] = None
        self._committed: Optional[threading.Event] = None
        self._stop_checkpoints: Optional[threading.Event] = None

    def _migrate(self, path: str, version: int) -> None:
        if version == 0 or version not in MIGRATIONS:
            raise WatcherError(f"{path}: not a Watcher database (user_version {version}); run ./Prep")
        backup = sqlite3.connect(f"{path}.v{version}.bak")
        try:
            self.conn.backup(backup)          # a consistent copy, WAL contents included
        finally:
            backup.close()
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            now = _version(self.conn)         # another process may have migrated meanwhile
            while now < SCHEMA_VERSION:
                for statement in MIGRATIONS[now].split(";"):
                    if statement.strip():
                        self.conn.execute(statement)
                now += 1
                self.conn.execute(f"PRAGMA user_version = {now}")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def checkpoint_aside(self, interval: float = 0.05, restart_frames: int = 8192) -> None:
        """Copy the write-ahead log into the database from a thread of its own, `interval`
        seconds after a commit, instead of inside a commit: a checkpoint syncs the disk,
        and a module must not stall its reading for it.  Small and frequent, because the
        time a checkpoint's sync holds the log (which a commit may have to wait for)
        grows with what the log gathered.

        A passive checkpoint never lets the log start anew while commits keep coming
        (they add to it while it runs): a flood would grow it without end.  So once it
        holds `restart_frames` pages (32 MB), the thread asks for a restart, which holds
        commits back while it copies the few pages left; when a reader keeps it waiting
        more than 10 ms it gives up and tries again a second later."""
        self.conn.execute("PRAGMA wal_autocheckpoint=0")
        self._stop_checkpoints = threading.Event()
        self._committed = threading.Event()

        def work(path=self.path, stop=self._stop_checkpoints, committed=self._committed):
            conn = sqlite3.connect(path, timeout=0.01, isolation_level=None, check_same_thread=False)
            next_restart = 0.0
            try:
                while True:
                    committed.wait()
                    if stop.wait(interval):     # let the commits of a moment gather
                        return
                    committed.clear()
                    try:
                        busy, frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                        if frames >= restart_frames and time.monotonic() >= next_restart:
                            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
                            if busy:
                                next_restart = time.monotonic() + 1.0
                    except sqlite3.Error:
                        busy = True
                    if busy:
                        committed.set()         # the next round copies the rest
            finally:
                conn.close()

        self._checkpoints = threading.Thread(target=work, name="wal-checkpoint", daemon=True)
        self._checkpoints.start()

    def close(self) -> None:
        if self._checkpoints is not None:
            self._stop_checkpoints.set()
            self._committed.set()
            self._checkpoints.join(timeout=5)
            self._checkpoints = None
        self.conn.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One IMMEDIATE transaction; inside another one (a module's batch), a savepoint
        of it, so a failed step undoes only itself and the batch commits at its end."""
        if self.conn.in_transaction:
            self.conn.execute("SAVEPOINT step")
            try:
                yield
            except BaseException:
                self.conn.execute("ROLLBACK TO step")
                self.conn.execute("RELEASE step")
                raise
            self.conn.execute("RELEASE step")
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")
        if self._committed is not None:
            self._committed.set()

    def get(self, ip: str) -> Optional[Host]:
        row = self.conn.execute(f"SELECT {_COLUMNS} FROM hosts WHERE ip = ?", (ip,)).fetchone()
        return Host(*row) if row else None

    def put(self, host: Host) -> None:
        self.conn.execute(f"INSERT OR REPLACE INTO hosts ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
                          (host.ip, host.cls, host.name, host.rule, host.module, host.introduced,
                           host.last_seen, host.affairs, host.dropped, host.tarpit_until))

    def add_event(self, now: float, ip: str, rule: str, module: str, vhost: Optional[str] = None) -> None:
        self.conn.execute("INSERT INTO events (time, ip, rule, module, vhost) VALUES (?,?,?,?,?)",
                          (now, ip, rule, module, vhost))

    def clear(self, ip: str, keep_custody: bool = False) -> bool:
        """Forget an address's affairs and tarpit (and custody unless kept)."""
        if keep_custody:
            cur = self.conn.execute(
                "UPDATE hosts SET affairs = 0, tarpit_until = NULL WHERE ip = ? AND dropped IS NULL", (ip,))
        else:
            cur = self.conn.execute(
                "UPDATE hosts SET affairs = 0, tarpit_until = NULL, dropped = NULL WHERE ip = ?", (ip,))
        return cur.rowcount > 0

    def custody(self) -> List[str]:
        return [r[0] for r in self.conn.execute("SELECT ip FROM hosts WHERE dropped IS NOT NULL")]

    def tarpit(self, now: float) -> List[Tuple[str, int]]:
        """(address, seconds left) of every live tarpit entry not in custody."""
        rows = self.conn.execute(
            "SELECT ip, tarpit_until FROM hosts WHERE dropped IS NULL AND tarpit_until > ?", (now,))
        return [(ip, max(1, int(until - now + 0.5))) for ip, until in rows]

    def counts(self, now: float) -> dict:
        tracked, custody, tarpit = self.conn.execute(
            "SELECT count(*), count(dropped), "
            "sum(CASE WHEN dropped IS NULL AND tarpit_until > ? THEN 1 ELSE 0 END) FROM hosts",
            (now,)).fetchone()
        return {"tracked": tracked, "tarpit": tarpit or 0, "custody": custody}

    # -- housekeeping and statistics (ExpireXX, StatXX, watcher.py report) ----
    def expire(self, cutoff: float) -> List[Host]:
        """Delete every address last seen before `cutoff` and the events before it;
        returns the deleted rows (one transaction, so a module's affair in between
        either keeps its row or is deleted with it)."""
        with self.transaction():
            rows = [Host(*r) for r in self.conn.execute(
                f"SELECT {_COLUMNS} FROM hosts WHERE last_seen < ?", (cutoff,))]
            self.conn.execute("DELETE FROM hosts WHERE last_seen < ?", (cutoff,))
            self.conn.execute("DELETE FROM events WHERE time < ?", (cutoff,))
        return rows

    def held(self, ips: List[str], now: float) -> List[str]:
        """Those of `ips` this database keeps in custody or in a live tarpit."""
        out = []
        for i in range(0, len(ips), 500):           # stay below sqlite's variable limit
            chunk = ips[i:i + 500]
            marks = ",".join("?" * len(chunk))
            out += [r[0] for r in self.conn.execute(
                f"SELECT ip FROM hosts WHERE ip IN ({marks}) AND (dropped IS NOT NULL OR tarpit_until > ?)",
                (*chunk, now))]
        return out

    def introduced_per_day(self, vhost: Optional[str] = None) -> List[Tuple[str, str, int]]:
        """(local day YYYY-MM-DD, class, addresses first seen that day [on that virtual host])."""
        if vhost is not None:
            return self.conn.execute(
                "SELECT date(f.t, 'unixepoch', 'localtime') AS d, coalesce(h.class, 'UNKNOWN') AS c, count(*) "
                "FROM (SELECT ip, min(time) AS t FROM events WHERE vhost = ? GROUP BY ip) f "
                "LEFT JOIN hosts h ON h.ip = f.ip GROUP BY d, c", (vhost,)).fetchall()
        return self.conn.execute(
            "SELECT date(introduced, 'unixepoch', 'localtime') AS d, class, count(*) FROM hosts "
            "GROUP BY d, class").fetchall()

    def dropped_per_day(self, vhost: Optional[str] = None) -> List[Tuple[str, int]]:
        """(local day, addresses put into custody that day [that had affairs on that virtual host])."""
        only = " AND ip IN (SELECT ip FROM events WHERE vhost = ?)" if vhost is not None else ""
        return self.conn.execute(
            "SELECT date(dropped, 'unixepoch', 'localtime') AS d, count(*) FROM hosts "
            f"WHERE dropped IS NOT NULL{only} GROUP BY d", (vhost,) if only else ()).fetchall()

    def affairs_per_day(self, vhost: Optional[str] = None) -> List[Tuple[str, str, int]]:
        """(local day, rule, affairs counted that day [on that virtual host]) from the events table."""
        only = "WHERE vhost = ? " if vhost is not None else ""
        return self.conn.execute(
            "SELECT date(time, 'unixepoch', 'localtime') AS d, rule, count(*) FROM events "
            f"{only}GROUP BY d, rule", (vhost,) if only else ()).fetchall()

    def class_counts(self) -> dict:
        return dict(self.conn.execute("SELECT class, count(*) FROM hosts GROUP BY class").fetchall())

    def top_rules(self, limit: int = 10) -> List[Tuple[str, int]]:
        return self.conn.execute("SELECT rule, count(*) AS n FROM events GROUP BY rule "
                                 "ORDER BY n DESC, rule LIMIT ?", (limit,)).fetchall()

    def top_attackers(self, since: float, limit: int = 10,
                      vhost: Optional[str] = None) -> List[Tuple[str, int, str]]:
        """(address, affairs since `since` [on that virtual host], class) of the busiest addresses."""
        only = "AND e.vhost = ? " if vhost is not None else ""
        return self.conn.execute(
            "SELECT e.ip, count(*) AS n, coalesce(h.class, '?') FROM events e LEFT JOIN hosts h ON h.ip = e.ip "
            f"WHERE e.time >= ? {only}GROUP BY e.ip ORDER BY n DESC, e.ip LIMIT ?",
            (since, vhost, limit) if only else (since, limit)).fetchall()

    def vhosts(self) -> List[str]:
        """The virtual hosts that affairs were counted for (WatchWB), by name."""
        return [r[0] for r in self.conn.execute(
            "SELECT DISTINCT vhost FROM events WHERE vhost IS NOT NULL ORDER BY vhost")]

    def top_vhosts(self, limit: int = 5) -> List[Tuple[str, int]]:
        """(virtual host, affairs) of the most attacked virtual hosts."""
        return self.conn.execute("SELECT vhost, count(*) AS n FROM events WHERE vhost IS NOT NULL GROUP BY vhost "
                                 "ORDER BY n DESC, vhost LIMIT ?", (limit,)).fetchall()
