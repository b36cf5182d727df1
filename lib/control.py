"""The master's verbs: start, stop, status, ban, unban.

start: check every module's settings and rules first (a mistake is one line
and a non-zero exit before anything changes), create the sets and the
WATCHER chain, load the white and black lists, restore tarpit (remaining
time) and custody from all module databases in one swap per set, then start
the supervisor and wait until every module reads its FIFO.
"""
import os
import time
from datetime import datetime
from typing import Callable, Dict, Optional

from lib import config, firewall as fwmod, lists
from lib.addresses import Protected, parse_peer
from lib.db import Database, Host
from lib.errors import UsageError, WatcherError
from lib.fifo import ensure_fifo
from lib.rules import Filter, rules_dir
from lib.supervise import (alive, installed_modules, read_pid, spawn_supervisor, stop_pid, supervisor_pid)

Say = Callable[[str], None]


def module_settings(environ=os.environ) -> Dict[str, config.Settings]:
    return {t: config.load(t, environ) for t in installed_modules()}


def databases(mods: Dict[str, config.Settings]) -> Dict[str, str]:
    """Distinct database paths -> the module token that owns it (MB shares MX's)."""
    out = {}
    for token, s in mods.items():
        out.setdefault(s.database, token)
    return out


def need_root(settings) -> None:
    if settings.FIREWALL != "dry-run" and os.geteuid() != 0:
        raise WatcherError("needs root to change the firewall (run with sudo, or set FIREWALL=dry-run "
                           "in watcher.conf to try it without touching the kernel)")


def load_lists(fw, master, say: Say) -> None:
    """The white and black lists, then the last good copy of each block list
    into its empty sets (at boot the network may be down: start never downloads)."""
    for base in ("whitelist", "blacklist"):
        lists.load_static(fw, master, base, say, missing_ok=True)
    lists.load_cached(fw, master, say)


def restore(fw, mods: Dict[str, config.Settings], now: float, say: Say) -> Dict[str, int]:
    """Put every module's tarpit and custody back into the kernel, one swap per set."""
    custody, tarpit = set(), {}
    for path in databases(mods):
        if not os.path.exists(path):
            continue
        db = Database(path)
        try:
            custody.update(db.custody())
            for ip, left in db.tarpit(now):
                tarpit[ip] = max(left, tarpit.get(ip, 0))
        finally:
            db.close()
    tarpit = {ip: t for ip, t in tarpit.items() if ip not in custody}
    counts = fw.load("custody", [i for i in custody if ":" not in i], [i for i in custody if ":" in i])
    counts.update(fw.load("tarpit", [i for i in tarpit if ":" not in i], [i for i in tarpit if ":" in i],
                          timeouts=tarpit))
    say(f"restored {len(custody)} addresses into custody and {len(tarpit)} into tarpit")
    return counts


def start(say: Say = print, environ=os.environ, wait: float = 10.0) -> int:
    master = config.load(None, environ)
    need_root(master)
    mods = module_settings(environ)
    if not mods:
        raise WatcherError(f"no modules found under {config.MASTER_PATH}/modules")
    for token, s in mods.items():               # all mistakes before any change
        Filter(rules_dir(s), token)
        if not os.path.exists(s.database):
            raise WatcherError(f"{s.database}: no database for Watch{token}; run ./Prep first")
    running = supervisor_pid(master.RUN_DIR)
    fw = fwmod.backend(master, say=say)
    fwmod.ready(fw, say)
    if not running:       # a second start changes nothing: the running modules hold the truth
        load_lists(fw, master, say)
        restore(fw, mods, time.time(), say)
    for s in mods.values():
        ensure_fifo(s.fifo())
    if running:
        say(f"already running (supervisor pid {running})")
        return 0
    for s in mods.values():   # a stale pid file of a dead module must not fool the wait below
        if not alive(read_pid(s.pid_file), s.name):
            try:
                os.unlink(s.pid_file)
            except OSError:
                pass
    spawn_supervisor(master.RUN_DIR, master.LOG_DIR, env=dict(environ))
    end = time.monotonic() + wait
    waiting = set(mods)
    while waiting and time.monotonic() < end:
        waiting = {t for t in waiting if not alive(read_pid(mods[t].pid_file), mods[t].name)}
        if waiting:
            time.sleep(0.01)
    if waiting:
        names = ", ".join("Watch" + t for t in sorted(waiting))
        raise WatcherError(f"{names} did not come up within {wait:.0f}s; see {master.LOG_DIR}/Watch*.log")
    say("started " + ", ".join(f"Watch{t} (pid {read_pid(s.pid_file)})" for t, s in mods.items()))
    return 0


def stop(flush: bool = False, say: Say = print, environ=os.environ) -> int:
    master = config.load(None, environ)
    mods = module_settings(environ)
    pid = supervisor_pid(master.RUN_DIR)
    if pid:
        if not stop_pid(pid):
            raise WatcherError(f"supervisor pid {pid} did not stop within 15 s")
        say(f"stopped the supervisor (pid {pid})")
    for token, s in mods.items():          # modules left behind by a dead supervisor
        mpid = read_pid(s.pid_file)
        if alive(mpid, s.name):
            stop_pid(mpid)
            say(f"stopped Watch{token} (pid {mpid})")
    if not pid:
        say("Watcher was not running")
    if flush:
        need_root(master)
        removed = fwmod.backend(master, say=say).teardown()
        say("removed: " + (", ".join(removed) if removed else "nothing (no set or chain of Watcher's)"))
    return 0


def _since(path: str) -> str:
    try:
        return datetime.fromtimestamp(os.stat(path).st_mtime).strftime("%Y-%m-%d %H:%M:%S")
    except OSError:
        return "?"


def status(say: Say = print, environ=os.environ) -> int:
    import json
    master = config.load(None, environ)
    mods = module_settings(environ)
    now = time.time()
    pid = supervisor_pid(master.RUN_DIR)
    say(f"Watcher: {'running, supervisor pid %d since %s' % (pid, _since(os.path.join(master.RUN_DIR, 'watcher.pid'))) if pid else 'not running'}"
        f" (firewall {master.FIREWALL})")
    forwarded = {}          # MX's count of lines handed to MB, shown beside MB's own counters
    for token, s in mods.items():
        mpid = read_pid(s.pid_file)
        up = alive(mpid, s.name)
        say(f"Watch{token}: " + (f"running, pid {mpid} since {_since(s.pid_file)}" if up else "not running")
            + (" (companion of WatchMX: reads what it forwards)" if token == "MB" else ""))
        try:
            with open(s.stats_file) as f:
                st = json.load(f)
            say(f"  lines read {st['lines']}, untreated {st['untreated']}, ignored {st['ignored']}, "
                f"no valid address {st.get('invalid', 0)}, refused (forged sender) {st.get('refused', 0)}, "
                f"forwarded {st.get('forwarded', 0)}"
                + ("" if up else " (last run)"))
            forwarded[token] = st.get("forwarded", 0)
            if st["rules"]:
                say("  matched per rule: " + ", ".join(f"{r} {n}" for r, n in
                                                       sorted(st["rules"].items(), key=lambda kv: -kv[1])))
        except (OSError, ValueError, KeyError):
            say("  no counters yet")
        if token == "MB" and "MX" in mods:
            say(f"  WatchMX forwarded {forwarded.get('MX', 0)} lines to it; its affairs are counted in "
                f"WatchMX's database (addresses above)")
        if os.path.exists(s.database) and token != "MB":
            db = Database(s.database)
            try:
                c = db.counts(now)
                hosts = db.top_vhosts()     # WatchWB records the virtual host of each affair
            finally:
                db.close()
            say(f"  addresses tracked {c['tracked']}, in tarpit {c['tarpit']}, in custody {c['custody']}"
                + (" (WatchMX and WatchMB together)" if token == "MX" and "MB" in mods else ""))
            if hosts:
                say("  top virtual hosts by affairs: " + ", ".join(f"{h} {n}" for h, n in hosts))
    for line in lists.status_lines(master):
        say(line)
    fw = fwmod.backend(master, say=lambda _: None)
    if master.FIREWALL == "dry-run":
        say("Sets: dry-run, kernel untouched")
        return 0
    if os.geteuid() != 0:
        say("Sets: run as root to read the kernel's sets")
        return 0
    sizes = fw.sizes()
    say("Sets: " + (", ".join(f"{k} {v}" for k, v in sizes.items()) or "none (watcher.py start creates them)"))
    for tool, ok in fw.jump_present().items():
        if not ok:
            say(f"warning: {tool} INPUT has no jump to WATCHER; watcher.py start puts it back")
    return 0


def _address(text: str):
    addr = parse_peer(text)
    if addr is None:
        raise UsageError(f"{text!r} is not an address Watcher can ban (IPv4 or IPv6, not loopback)")
    return addr


def ban(text: str, token: str = "LG", say: Say = print, environ=os.environ, now: Optional[float] = None) -> int:
    token = token.upper()
    if token not in installed_modules():
        raise UsageError(f"--module {token}: no such module (have: {', '.join(installed_modules())})")
    addr = _address(text)
    s = config.load(token, environ)
    need_root(s)
    why = Protected.load(s.WHITELIST).why(addr)
    if why:
        raise WatcherError(f"{addr} is {why}: Watcher never bans it (edit {s.WHITELIST} first)")
    now = time.time() if now is None else now
    ip = str(addr)
    db = Database(s.database)
    try:
        with db.transaction():
            old = db.get(ip)
            db.put(Host(ip, old.cls if old else "UNKNOWN", old.name if old else None, "manual-ban", token,
                        old.introduced if old else now, now, max(s.MAX_AFFAIRS, old.affairs if old else 0),
                        old.dropped if old and old.dropped else now, None))
            db.add_event(now, ip, "manual-ban", token)
    finally:
        db.close()
    fwmod.backend(s, say=say).custody(ip, addr.version == 6)
    say(f"{ip} is in custody (recorded in Watch{token}'s database)")
    return 0


def unban(text: str, say: Say = print, environ=os.environ) -> int:
    addr = _address(text)
    master = config.load(None, environ)
    need_root(master)
    ip = str(addr)
    cleared = []
    for path, token in databases(module_settings(environ)).items():
        if os.path.exists(path):
            db = Database(path)
            try:
                with db.transaction():
                    if db.clear(ip):
                        cleared.append("Watch" + token)
            finally:
                db.close()
    fwmod.backend(master, say=say).release(ip, addr.version == 6)
    say(f"{ip} released from tarpit and custody" +
        (f"; cleared in {', '.join(cleared)}" if cleared else "; no module database knew it"))
    return 0
