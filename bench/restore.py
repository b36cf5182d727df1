"""Start-up restore: seconds until `watcher.py start` returns with every custody entry in the kernel.

The module database is filled with N addresses in custody (one transaction,
straight into sqlite, as a long-running Watcher would have left it); then,
in a fresh namespace, `watcher.py start` runs and the clock stops when it
returns; custody (and custody6) must then hold all N.  Later runs stop
Watcher, flush the sets (as a reboot would leave them) and start again.
"""
import shutil
import sqlite3
import tempfile
import time
from typing import Dict, List

from common import Watcher, addresses, namespace, set_size, sh


def fill(path: str, ips: List[str], now: float) -> None:
    conn = sqlite3.connect(path)
    with conn:
        conn.executemany(
            "INSERT OR REPLACE INTO hosts (ip, class, name, rule, module, introduced, last_seen, affairs, dropped, "
            "tarpit_until) VALUES (?, 'UNKNOWN', NULL, 'root-password', 'LG', ?, ?, 5, ?, NULL)",
            ((ip, now - 3600, now - 60, now - 60) for ip in ips))
    conn.close()


def watcher_restore(n: int = 100000, runs: int = 3) -> Dict[str, object]:
    ns = namespace("restore")
    w = Watcher(tempfile.mkdtemp(prefix="wbench-restore-"), ns, MAX_AFFAIRS=5)
    try:
        r = w.run("Prep")
        if r.returncode:
            raise RuntimeError("Prep failed: " + (r.stdout + r.stderr)[-400:])
        ips = addresses(n, "100.72.0.0", v6_every=10)
        fill(w.database("LG"), ips, time.time())
        v6 = sum(1 for ip in ips if ":" in ip)
        times, held = [], []
        for k in range(runs):
            if k:
                w.run("watcher.py", "stop")
                for s in ("custody", "custody6", "tarpit", "tarpit6"):
                    sh(["ipset", "flush", s], ns=ns)
            t0 = time.perf_counter()
            r = w.run("watcher.py", "start")
            dt = time.perf_counter() - t0
            if r.returncode:
                raise RuntimeError("watcher.py start failed: " + (r.stdout + r.stderr)[-400:])
            times.append(dt)
            held.append(set_size(ns, "custody") + set_size(ns, "custody6") == n and set_size(ns, "custody6") == v6)
        return {"seconds": times, "all_in": all(held), "entries": n}
    finally:
        w.run("watcher.py", "stop")
        shutil.rmtree(w.base, ignore_errors=True)
