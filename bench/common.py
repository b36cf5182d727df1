"""Shared pieces of the benchmark: network namespaces, a private Watcher, timing helpers.

Everything that touches a firewall runs inside a network namespace this
process creates (`ip netns add wbench-<pid>-...`) and deletes at exit, so
the host's ipsets and iptables are never touched.  Nothing sends traffic:
log lines are written into FIFOs and files, and the kernel's sets are read
with `ipset` inside the namespace.
"""
import atexit
import ipaddress
import os
import select
import shutil
import signal
import statistics
import subprocess
import sys
import time
from typing import Callable, List, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = sys.executable     # Watcher runs with the Python that runs the benchmark, never a wrapper's


def sh(argv, ns: Optional[str] = None, check: bool = False, timeout: float = 120, **kw):
    if ns:
        argv = ["ip", "netns", "exec", ns] + list(argv)
    kw.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=timeout, **kw)


def median(values: List[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: List[float], p: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def wait_for(pred: Callable[[], bool], seconds: float, step: float = 0.02) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


# ---- namespaces -------------------------------------------------------------
_made: List[str] = []
_procs: List[subprocess.Popen] = []


def namespace(tag: str) -> str:
    """A fresh network namespace with only loopback, deleted at exit."""
    name = f"wbench-{os.getpid() % 100000}-{tag}"[:30]
    sh(["ip", "netns", "del", name])
    sh(["ip", "netns", "add", name], check=True)
    sh(["ip", "link", "set", "lo", "up"], ns=name, check=True)
    _made.append(name)
    return name


def spawn(argv, ns: Optional[str] = None, **kw) -> subprocess.Popen:
    if ns:
        argv = ["ip", "netns", "exec", ns] + list(argv)
    kw.setdefault("stdin", subprocess.DEVNULL)
    kw.setdefault("stdout", subprocess.DEVNULL)
    kw.setdefault("stderr", subprocess.DEVNULL)
    p = subprocess.Popen(argv, **kw)
    _procs.append(p)
    return p


def stop(p: subprocess.Popen, timeout: float = 10) -> None:
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


@atexit.register
def cleanup() -> None:
    for p in _procs:
        stop(p, 5)
    for ns in _made:
        for pid in sh(["ip", "netns", "pids", ns]).stdout.split():      # what our programs left there
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (OSError, ValueError):
                pass
        sh(["ip", "netns", "del", ns])
    _made.clear()


def netns_problem() -> Optional[str]:
    if os.geteuid() != 0:
        return "needs root (network namespaces, ipset)"
    for tool in ("ip", "ipset", "iptables"):
        if not shutil.which(tool):
            return f"{tool} missing (apt-get install ipset iptables iproute2)"
    return None


# ---- the kernel's sets ------------------------------------------------------------
def set_size(ns: str, name: str) -> int:
    r = sh(["ipset", "list", name, "-t"], ns=ns)
    for line in r.stdout.splitlines():
        if line.startswith("Number of entries:"):
            return int(line.split(":")[1])
    return -1


class SetProbe:
    """`ipset test` through one long-lived `ipset -` in the namespace: tens of microseconds a question."""

    def __init__(self, ns: str):
        self.p = subprocess.Popen(["ip", "netns", "exec", ns, "ipset", "-"], stdin=subprocess.PIPE,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, bufsize=0)
        self.buf = b""

    def has(self, setname: str, ip: str) -> bool:
        self.p.stdin.write(f"test {setname} {ip}\n".encode())
        while b"\n" not in self.buf:
            self.buf += os.read(self.p.stderr.fileno(), 4096)
        line, self.buf = self.buf.split(b"\n", 1)
        return b" is in set " in line

    def close(self) -> None:
        self.p.stdin.close()
        self.p.wait()


# ---- a private Watcher ------------------------------------------------------------
class Watcher:
    """The checkout's Watcher with every path under `base` (WATCHER_CONF), run in namespace `ns`."""

    def __init__(self, base: str, ns: Optional[str], **settings):
        self.base, self.ns = base, ns
        for d in ("pipes", "data", "log", "run"):
            os.makedirs(os.path.join(base, d), exist_ok=True)
        values = {"FIFO_BASE": f"{base}/pipes", "DATA_DIR": f"{base}/data", "LOG_DIR": f"{base}/log",
                  "RUN_DIR": f"{base}/run", "WHITELIST": f"{base}/whitelist", "BLACKLIST": f"{base}/blacklist",
                  "FIREWALL": "ipset", "DNS_CLASSIFY": "off", "TRACE": "off", "MAX_AFFAIRS": "1",
                  "FEEDS": f"{base}/feeds.conf"}
        values.update({k: str(v) for k, v in settings.items()})
        self.conf = os.path.join(base, "bench.conf")
        with open(self.conf, "w") as f:
            f.write("".join(f"{k}={v}\n" for k, v in values.items()))
        open(os.path.join(base, "whitelist"), "a").close()
        self.env = dict(os.environ, WATCHER_CONF=self.conf)
        self.env.pop("SSH_CLIENT", None)
        self.env.pop("SSH_CONNECTION", None)

    def run(self, *args, timeout: float = 300):
        script = os.path.join(ROOT, args[0])        # with the benchmark's Python (see PY)
        return sh([PY, script, *args[1:]], ns=self.ns, env=self.env, cwd=ROOT, timeout=timeout)

    def fifo(self, token: str = "LG") -> str:
        return os.path.join(self.base, "pipes", "Watch" + token)

    def pid(self, token: str = "LG") -> Optional[int]:
        try:
            with open(os.path.join(self.base, "run", f"Watch{token}.pid")) as f:
                return int(f.read())
        except (OSError, ValueError):
            return None

    def database(self, token: str = "LG") -> str:
        return os.path.join(self.base, "data", f"Watch{token}.db")


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def open_fifo_writer(path: str, seconds: float = 10) -> int:
    """The FIFO opened for writing once a reader holds it."""
    end = time.monotonic() + seconds
    while True:
        try:
            return os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.02)


def write_all(fd: int, data: bytes, seconds: float = 300) -> None:
    view = memoryview(data)
    end = time.monotonic() + seconds
    while view and time.monotonic() < end:
        select.select([], [fd], [], 1.0)
        try:
            view = view[os.write(fd, view[:1 << 16]):]
        except BlockingIOError:
            pass
    if view:
        raise RuntimeError(f"the reader stopped taking lines ({len(view)} bytes left)")


def pour(fifo: str, data: bytes) -> float:
    """Write `data` into the FIFO (once a reader holds it); the perf_counter time it began."""
    fd = open_fifo_writer(fifo)
    t0 = time.perf_counter()
    try:
        write_all(fd, data)
    finally:
        os.close(fd)
    return t0


def addresses(n: int, start: str = "100.64.0.0", v6_every: int = 0) -> List[str]:
    """n distinct attacker addresses (IPv6 among them every v6_every-th)."""
    base4, base6 = int(ipaddress.ip_address(start)), int(ipaddress.ip_address("2001:db8:100::"))
    return [str(ipaddress.ip_address(base6 + i)) if v6_every and i % v6_every == v6_every - 1
            else str(ipaddress.ip_address(base4 + i)) for i in range(n)]


SSHD_FAIL = "Nov 22 10:00:00 srv sshd[{pid}]: Failed password for root from {ip} port {port} ssh2\n"


def sshd_lines(ips: List[str]) -> bytes:
    return "".join(SSHD_FAIL.format(pid=1000 + i % 50000, ip=ip, port=1024 + i % 60000)
                   for i, ip in enumerate(ips)).encode()
