"""The daemon path with the real kernel: Watcher's module fed through its FIFO.

- new bans/s: N distinct attackers, one line each (MAX_AFFAIRS=1, DNS off),
  written into WatchLG's FIFO as fast as the pipe takes them; the clock runs
  from the first write until custody holds all N.
- lines/s: a realistic log (70% noise) through the FIFO, until the module's
  counters say it read every line.
- latency: new attackers at a steady rate well below capacity; for samples,
  the time from the line entering the FIFO until `ipset test` finds the
  address in custody (polled through a long-lived `ipset -`), p50 and p99.
- slow DNS: the same flood with DNS classification on and a DNS server on
  loopback that answers after a delay: lines/s must not fall, and the
  classes arrive later.
"""
import json
import os
import shutil
import tempfile
import time
from typing import Dict, List, Optional

from common import (SSHD_FAIL, SetProbe, Watcher, addresses, namespace, open_fifo_writer, percentile, pour,
                    rss_mb, set_size, sshd_lines, wait_for)


def start_watcher(tag: str, **settings) -> Watcher:
    ns = namespace(tag)
    w = Watcher(tempfile.mkdtemp(prefix=f"wbench-{tag}-"), ns, **settings)
    r = w.run("Prep")
    if r.returncode:
        raise RuntimeError("Prep failed: " + (r.stdout + r.stderr)[-400:])
    r = w.run("watcher.py", "start")
    if r.returncode:
        raise RuntimeError("watcher.py start failed: " + (r.stdout + r.stderr)[-400:])
    if not wait_for(lambda: w.pid("LG") is not None, 10):
        raise RuntimeError("WatchLG did not come up")
    return w


def finish(w: Watcher) -> None:
    w.run("watcher.py", "stop")
    shutil.rmtree(w.base, ignore_errors=True)


def counters(w: Watcher) -> dict:
    """WatchLG's counters as it last wrote them (once a second); {} before the first."""
    try:
        with open(os.path.join(w.base, "run", "WatchLG.stats")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def ban_flood(n: int, start: str = "100.64.0.0") -> Dict[str, float]:
    """New bans per second from FIFO to kernel, and the module's memory after them."""
    w = start_watcher("flood")
    try:
        ips = addresses(n, start, v6_every=10)
        v4 = sum(1 for ip in ips if ":" not in ip)
        data = sshd_lines(ips)
        t0 = pour(w.fifo(), data)
        ok = wait_for(lambda: set_size(w.ns, "custody") >= v4 and set_size(w.ns, "custody6") >= n - v4,
                      300, 0.01)
        dt = time.perf_counter() - t0
        pid = w.pid("LG")
        return {"bans_per_s": n / dt if ok else 0.0, "seconds": dt,
                "rss_mb": rss_mb(pid) if pid else float("nan"), "all_in": ok}
    finally:
        finish(w)


def line_rate(log: str, lines: int) -> Dict[str, float]:
    """Lines per second through the FIFO for a realistic log (MAX_AFFAIRS=5, DNS off)."""
    w = start_watcher("lines", MAX_AFFAIRS=5)
    try:
        with open(log, "rb") as f:
            data = f.read()
        t0 = pour(w.fifo(), data)
        # the counters are written once a second: the last write tells the time it was done
        ok = wait_for(lambda: counters(w).get("lines", -1) >= lines, 300, 0.05)
        last = counters(w).get("last_line") or time.time()
        dt = time.perf_counter() - t0 - max(0.0, time.time() - last)
        return {"lines_per_s": lines / dt if ok else 0.0}
    finally:
        finish(w)


def latency(rate: float = 2000, seconds: float = 5.0, every: int = 7) -> Dict[str, float]:
    """FIFO -> custody latency of new attackers arriving at `rate` a second."""
    w = start_watcher("latency")
    probe = SetProbe(w.ns)
    try:
        n = int(rate * seconds)
        ips = addresses(n, "100.96.0.0")
        lines = [SSHD_FAIL.format(pid=1000 + i, ip=ip, port=2000 + i % 60000).encode() for i, ip in enumerate(ips)]
        fd = open_fifo_writer(w.fifo())
        os.set_blocking(fd, True)
        got: List[float] = []
        written: Dict[int, float] = {}
        sample: Optional[int] = None
        t0 = time.perf_counter()
        i = 0
        while i < n or sample is not None:
            now = time.perf_counter()
            due = min(n, int((now - t0) * rate) + 1)
            while i < due:
                os.write(fd, lines[i])
                written[i] = time.perf_counter()
                if sample is None and i % every == 0:
                    sample = i
                i += 1
            if sample is not None:
                if probe.has("custody", ips[sample]):
                    got.append(time.perf_counter() - written[sample])
                    sample = None
                elif time.perf_counter() - written[sample] > 5:
                    raise RuntimeError(f"{ips[sample]} not in custody 5 s after its line")
                else:
                    time.sleep(0.0002)      # leave the CPUs to Watcher (a finer look would cost it)
            else:
                time.sleep(0.0001)
        os.close(fd)
        return {"p50_ms": percentile(got, 50) * 1000, "p99_ms": percentile(got, 99) * 1000,
                "samples": len(got), "rate": rate}
    finally:
        probe.close()
        finish(w)
