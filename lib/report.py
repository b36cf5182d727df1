"""The Watcher-Report: one page on whether the measures work.

Model (overview 'What else?'): four sections, read top to bottom by an
administrator who has a minute.

1. Warnings, first: every module that is not running, and every running
   module whose FIFO has brought no line for longer than FIFO_SILENCE_WARN
   seconds (a silent FIFO usually means the system logger's snippet is
   missing or the logger was not restarted); a missing INPUT jump to the
   WATCHER chain; a dynloader whose last load failed.  Silence is read from
   the counters a running module writes once a second to
   $RUN_DIR/WatchXX.stats ({"pid", "started", "lines", "last_line", ...}):
   the time of the last line read, or the module's start while it has read
   none.
2. The firewall: each of Watcher's sets with its number of entries, and the
   packet and byte counters of every rule of the WATCHER chain
   (`iptables -L WATCHER -v -x -n`, and ip6tables).
3. Dynloader provisioning, read from a JSON state file that the dynloaders
   write (lib.liststore.state_path: `lists/lists.state.json` in the master's
   DATA_DIR); absent: the dynloaders have not run.  Its format, one object
   per list (set) name:

       {"NAME": {"loaded": EPOCH, "entries": N, "ok": BOOL, "message": "TEXT"}}

   `loaded`: when the set was last loaded successfully; `ok`: whether the
   last attempt succeeded; `message`: why not (or a note).
4. Each module database (MB's rows are in MX's): addresses per class, in
   tarpit, in custody, the top 10 rules and the top 10 attackers of the
   last 24 hours, from the events table.

Time and the liveness check are passed in, so tests control them.
"""
import json
import os
import time
from typing import Callable, Dict, List, Optional

from lib import liststore
from lib.config import MASTER_PATH
from lib.db import Database
from lib.errors import WatcherError
from lib.expire import CLASSES

STATE_FILE = "lists.state.json"
DAY = 86400


def age(seconds: float) -> str:
    s = max(0, int(seconds))
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{s // 60} min"
    if s < 2 * DAY:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s // DAY} d {s % DAY // 3600:02d} h"


def when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def read_stats(path: str) -> Optional[dict]:
    try:
        with open(path) as f:
            st = json.load(f)
        return st if isinstance(st, dict) else None
    except (OSError, ValueError):
        return None


def silent_since(stats: Optional[dict]) -> Optional[float]:
    """When the FIFO last brought a line (or the module started, having read none)."""
    if not stats:
        return None
    last = stats.get("last_line")
    if isinstance(last, (int, float)):
        return float(last)
    if stats.get("lines") == 0 and isinstance(stats.get("started"), (int, float)):
        return float(stats["started"])
    return None


def state_file(master, master_path: str) -> Optional[str]:
    path = liststore.state_path(master.DATA_DIR)
    return path if os.path.isfile(path) else None


class Report:
    """Collects the sections; `text()` is the report."""

    def __init__(self, master, mods: Dict[str, object], fw, now: float, host: str = "",
                 alive: Optional[Callable[[object], Optional[int]]] = None, master_path: str = MASTER_PATH):
        self.master, self.mods, self.fw, self.now, self.host = master, mods, fw, now, host
        self.alive = alive or _running_pid
        self.master_path = master_path
        self.warnings: List[str] = []

    def text(self) -> str:
        body = (self.modules_section() + [""] + self.firewall_section() + [""] + self.dynloader_section())
        from lib.supervise import supervisor_pid
        pid = supervisor_pid(self.master.RUN_DIR)
        head = [f"Watcher-Report{' of ' + self.host if self.host else ''}, {when(self.now)}",
                f"Watcher: {'running, supervisor pid %d' % pid if pid else 'NOT RUNNING'} "
                f"(firewall {self.master.FIREWALL})", ""]
        warn = ["Warnings"] + ([f"  ! {w}" for w in self.warnings] or ["  none"]) + [""]
        return "\n".join(head + warn + body) + "\n"

    # -- modules --------------------------------------------------------
    def modules_section(self) -> List[str]:
        lines = ["Modules"]
        if not self.mods:
            lines.append("  none installed")
        shared: Dict[str, List[str]] = {}
        for token, s in self.mods.items():
            shared.setdefault(s.database, []).append(token)
        for token, s in self.mods.items():
            lines.append(f"  Watch{token}: " + self._liveness(token, s))
            owners = shared[s.database]
            if owners[0] != token:
                lines.append(f"    database shared with Watch{owners[0]} (counted there)")
                continue
            lines += ["    " + l for l in self._database(s.database, owners)]
        return lines

    def _liveness(self, token: str, s) -> str:
        pid = self.alive(s)
        stats = read_stats(s.stats_file)
        if not pid:
            self.warnings.append(f"Watch{token} is not running (./watcher.py start)")
            return "NOT RUNNING" + (f" (last run read {stats.get('lines', 0)} lines)" if stats else "")
        text = f"running, pid {pid}"
        if stats and stats.get("pid") == pid:
            since = silent_since(stats)
            text += f", {stats.get('lines', 0)} lines read since {when(stats.get('started', self.now))}"
            if since is not None:
                quiet = self.now - since
                text += f", last line {age(quiet)} ago" if stats.get("lines") else ", no line yet"
                if quiet > s.FIFO_SILENCE_WARN:
                    self.warnings.append(
                        f"Watch{token}: its FIFO {s.fifo()} has been silent for {age(quiet)} "
                        f"(FIFO_SILENCE_WARN={s.FIFO_SILENCE_WARN} s): is the system logger's snippet "
                        f"installed and the logger restarted? (./watcher.py syslog-config rsyslog)")
        else:
            text += ", no counters yet"
        return text

    def _database(self, path: str, owners: List[str]) -> List[str]:
        if not os.path.exists(path):
            return [f"database {path}: missing (./Prep creates it)"]
        try:
            db = Database(path)
        except WatcherError as e:
            return [f"database: cannot read: {e}"]
        try:
            classes = db.class_counts()
            c = db.counts(self.now)
            rules = db.top_rules(10)
            attackers = db.top_attackers(self.now - DAY, 10)
        finally:
            db.close()
        per = ", ".join(f"{k} {classes.get(k, 0)}" for k in list(CLASSES) + sorted(set(classes) - set(CLASSES)))
        who = " and ".join("Watch" + t for t in owners)
        lines = [f"database {path}" + (f" ({who})" if len(owners) > 1 else ""),
                 f"addresses {c['tracked']} ({per}); in tarpit {c['tarpit']}, in custody {c['custody']}",
                 "top rules: " + (", ".join(f"{r} {n}" for r, n in rules) or "none yet")]
        lines.append("top attackers of the last 24 h:" + ("" if attackers else " none"))
        lines += [f"  {ip:<39} {cls:<8} {n} affair{'s' if n != 1 else ''}" for ip, n, cls in attackers]
        return lines

    # -- firewall -------------------------------------------------------
    def firewall_section(self) -> List[str]:
        lines = [f"Firewall ({self.master.FIREWALL})"]
        if self.master.FIREWALL == "dry-run":
            return lines + ["  dry-run: the kernel is not touched, no sets to show"]
        if os.geteuid() != 0:
            return lines + ["  run as root to read the kernel's sets and counters"]
        try:
            sizes = self.fw.sizes()
            counters = self.fw.chain_counters()
            jumps = self.fw.jump_present()
        except WatcherError as e:
            return lines + [f"  cannot read the kernel: {e}"]
        named = {name for rows in counters.values() for *_, name in rows if name}
        extra = sorted(named - set(sizes))
        if extra and hasattr(self.fw, "existing_sets"):
            have = self.fw.existing_sets()
            sizes.update({n: have[n][2] for n in extra if n in have})
        if not sizes:
            lines.append("  no Watcher sets (./watcher.py start creates them)")
        else:
            lines.append(f"  {'set':<16} {'entries':>9}")
            lines += [f"  {name:<16} {n:>9}" for name, n in sizes.items()]
        for tool in ("iptables", "ip6tables"):
            if tool not in counters:
                lines.append(f"  {tool}: no chain WATCHER")
                continue
            lines.append(f"  chain WATCHER ({tool}):  {'packets':>10} {'bytes':>12}  rule")
            lines += [f"  {'':<24}{p:>10} {b:>12}  {target} {name}".rstrip() for p, b, target, name in counters[tool]]
        for tool, ok in jumps.items():
            if not ok:
                self.warnings.append(f"{tool} INPUT has no jump to WATCHER: nothing is dropped "
                                     f"(./watcher.py start puts it back)")
        return lines

    # -- dynloaders -----------------------------------------------------
    def dynloader_section(self) -> List[str]:
        path = state_file(self.master, self.master_path)
        if not path:
            return ["Dynloaders", f"  no state file ({STATE_FILE}): the dynloaders have not run"]
        lines = [f"Dynloaders ({path})"]
        try:
            with open(path) as f:
                state = json.load(f)
            if not isinstance(state, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as e:
            self.warnings.append(f"{path}: cannot read the dynloaders' state ({e})")
            return lines + [f"  unreadable: {e}"]
        for name in sorted(state):
            st = state[name] if isinstance(state[name], dict) else {}
            loaded = st.get("loaded")
            when_text = (f"loaded {when(loaded)} ({age(self.now - loaded)} ago)"
                         if isinstance(loaded, (int, float)) else "never loaded")
            ok = bool(st.get("ok"))
            msg = str(st.get("message") or "")
            lines.append(f"  {name:<16} {when_text}, {st.get('entries', '?')} entries, "
                         + ("ok" if ok else "FAILED") + (f": {msg}" if msg else ""))
            if not ok:
                self.warnings.append(f"dynloader {name}: last load failed" + (f": {msg}" if msg else ""))
        if not state:
            lines.append("  no lists yet")
        return lines


def _running_pid(settings) -> Optional[int]:
    from lib.supervise import alive, read_pid
    pid = read_pid(settings.pid_file)
    return pid if alive(pid, settings.name) else None


def main(mail: bool = False, say: Callable[[str], None] = print, environ=None, now: Optional[float] = None) -> int:
    """`watcher.py report [--mail]`."""
    import socket
    from lib import config, control, firewall as fwmod
    from lib.mail import new_message, send

    environ = os.environ if environ is None else environ
    master = config.load(None, environ)
    mods = control.module_settings(environ)
    now = time.time() if now is None else now
    fw = fwmod.backend(master, say=lambda _: None)
    text = Report(master, mods, fw, now, socket.gethostname()).text()
    if not mail:
        say(text.rstrip("\n"))
        return 0
    msg = new_message(master.REPORTMAIL, f"Watcher-Report {time.strftime('%Y%m%dT%H:%M:%S', time.localtime(now))}",
                      text)
    how = send(msg, master.MAILHOST, environ=environ)
    say(f"Watcher-Report mailed to {master.REPORTMAIL} {how}")
    return 0
