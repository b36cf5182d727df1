"""Supervision: the modules run in the background and come back when they die.

`watcher.py start` spawns one supervisor process (its own session, pid in
$RUN_DIR/watcher.pid) which starts every module as a child and restarts a
child that exits within a second (backing off to 30 s when it keeps dying
at once).  SIGTERM to the supervisor stops the modules and then itself.
Modules write their own pid files ($RUN_DIR/WatchXX.pid).
"""
import os
import signal
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence

from lib.config import MASTER_PATH, MODULES, module_dir
from lib.log import LogFile

SUPERVISOR = "watcher.pid"


def installed_modules() -> List[str]:
    """Module tokens with a WatchXX.py, in the manual's order."""
    return [t for t in MODULES if os.path.isfile(os.path.join(module_dir(t), f"Watch{t}.py"))]


def read_pid(path: str) -> Optional[int]:
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def alive(pid: Optional[int], marker: str) -> bool:
    """Is `pid` a live (not zombie) process whose command line holds `marker`?"""
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                return False
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return marker.encode() in f.read()
    except (OSError, IndexError):
        return False


def supervisor_pid(run_dir: str) -> Optional[int]:
    pid = read_pid(os.path.join(run_dir, SUPERVISOR))
    return pid if alive(pid, "_supervise") else None


def spawn_supervisor(run_dir: str, log_dir: str, env=None) -> int:
    os.makedirs(run_dir, exist_ok=True)
    os.makedirs(log_dir, exist_ok=True)
    log = os.open(os.path.join(log_dir, "watcher.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        p = subprocess.Popen([sys.executable, os.path.join(MASTER_PATH, "watcher.py"), "_supervise"],
                             stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                             env=env, cwd="/")
    finally:
        os.close(log)
    return p.pid


def supervise(tokens: List[str], run_dir: str, log_dir: str, fifos: Sequence[str] = ()) -> int:
    """The supervisor's loop (runs as `watcher.py _supervise`).

    It holds every module FIFO open read-write for its whole life, so lines
    written while a module restarts (by the logger, or forwarded by MX to
    MB) wait in the pipe even when no other process keeps it open.
    """
    log = LogFile(os.path.join(log_dir, "watcher.log"), "Watcher")
    held = [os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC) for path in fifos if os.path.exists(path)]
    pidfile = os.path.join(run_dir, SUPERVISOR)
    with open(pidfile + ".tmp", "w") as f:
        f.write(f"{os.getpid()}\n")
    os.replace(pidfile + ".tmp", pidfile)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(1))
    children: Dict[str, subprocess.Popen] = {}
    started: Dict[str, float] = {}
    delay: Dict[str, float] = {t: 0.0 for t in tokens}
    due: Dict[str, float] = {t: 0.0 for t in tokens}

    def start(token: str) -> None:
        script = os.path.join(module_dir(token), f"Watch{token}.py")
        errlog = os.open(os.path.join(log_dir, f"Watch{token}.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            children[token] = subprocess.Popen([sys.executable, script], stdin=subprocess.DEVNULL,
                                               stdout=errlog, stderr=errlog, cwd=module_dir(token))
        finally:
            os.close(errlog)
        started[token] = time.monotonic()

    log.write(f"supervisor started for {', '.join('Watch' + t for t in tokens)}")
    try:
        while not stopping:
            now = time.monotonic()
            for token in tokens:
                child = children.get(token)
                if child is not None and child.poll() is not None:
                    ran = now - started[token]
                    delay[token] = 0.0 if ran > 10 else min(30.0, max(0.2, delay[token] * 2))
                    due[token] = now + delay[token]
                    log.write(f"Watch{token} exited with status {child.returncode} after {ran:.1f}s; "
                              f"restart in {delay[token]:.1f}s")
                    children.pop(token)
                if token not in children and now >= due[token]:
                    start(token)
            time.sleep(0.1)
    finally:
        for child in children.values():
            child.terminate()
        for token, child in children.items():
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        log.write("supervisor stopped")
        for fd in held:
            os.close(fd)
        try:
            os.unlink(pidfile)
        except OSError:
            pass
    return 0


def stop_pid(pid: int, timeout: float = 15.0) -> bool:
    """SIGTERM and wait until the process is gone."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not alive(pid, ""):
            return True
        time.sleep(0.05)
    return False
