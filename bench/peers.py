"""The peers, each in a network namespace of its own with a private configuration.

fail2ban: a copy of Debian's /etc/fail2ban with its own socket, pid file,
database and log, one `sshd` jail (maxretry 1, polling backend, the
`iptables-ipset` action) on a log file of ours.  sshguard: its own pipeline,
`sshg-logtail FILE | sshg-parser | sshg-blocker -a 10 -b 10:BLACKLIST |
sshg-fw-ipset`, as the `sshguard` script runs it, without /etc/sshguard.

Each is fed the same flood (N new attackers, one sshd line each) appended to
its log file: bans/s until its set holds N.  Restore: stop it, empty its set
(fail2ban destroys it itself), start it again: seconds until the set holds N
again (fail2ban from its database, sshguard from its blacklist).  Memory:
resident size of fail2ban-server; of sshg-blocker plus sshg-parser.
"""
import os
import shutil
import subprocess
import tempfile
import time
from typing import Dict, List

from common import addresses, namespace, rss_mb, set_size, sh, spawn, sshd_lines, stop, wait_for

F2B = "/etc/fail2ban"
SSHG = "/usr/libexec/sshguard"


def fail2ban_problem():
    if not shutil.which("fail2ban-server") or not os.path.isdir(F2B):
        return "fail2ban not installed (apt-get install fail2ban)"
    return None


def sshguard_problem():
    if not os.path.exists(os.path.join(SSHG, "sshg-blocker")):
        return "sshguard not installed (apt-get install sshguard)"
    return None


def _append(path: str, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)


def _read(path: str) -> str:
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def _sets(ns: str, names: List[str]) -> int:
    return sum(max(0, set_size(ns, n)) for n in names)


def fail2ban(n: int) -> Dict[str, float]:
    ns = namespace("f2b")
    d = tempfile.mkdtemp(prefix="wbench-f2b-")
    conf = os.path.join(d, "conf")
    shutil.copytree(F2B, conf)
    shutil.rmtree(os.path.join(conf, "jail.d"))          # Debian's defaults (systemd backend) are not ours
    os.makedirs(os.path.join(conf, "jail.d"))
    log = os.path.join(d, "auth.log")
    open(log, "w").close()
    with open(os.path.join(conf, "fail2ban.local"), "w") as f:
        f.write(f"[Definition]\nlogtarget = {d}/fail2ban.log\nsocket = {d}/fail2ban.sock\n"
                f"pidfile = {d}/fail2ban.pid\ndbfile = {d}/fail2ban.sqlite3\ndbpurgeage = 1d\n")
    with open(os.path.join(conf, "jail.local"), "w") as f:
        f.write("[DEFAULT]\nbantime = 1d\nfindtime = 1d\nmaxretry = 1\nbackend = polling\nusedns = no\n"
                "banaction = iptables-ipset\nbanaction_allports = iptables-ipset\n"
                f"[sshd]\nenabled = true\nlogpath = {log}\nmode = aggressive\n")
    argv = ["fail2ban-server", "-c", conf, "-f", "-x", "--logtarget", f"{d}/fail2ban.log"]
    sets = ["f2b-sshd", "f2b-sshd6"]
    try:
        p = spawn(argv, ns=ns)
        if not wait_for(lambda: "Jail 'sshd' started" in _read(f"{d}/fail2ban.log"), 60, 0.1):
            raise RuntimeError("fail2ban's jail did not start within 60 s: " + _read(f"{d}/fail2ban.log")[-300:])
        time.sleep(1.5)                          # the polling backend has read the (empty) file
        data = sshd_lines(addresses(n, "100.80.0.0"))
        t0 = time.perf_counter()
        _append(log, data)
        ok = wait_for(lambda: _sets(ns, sets) >= n, max(120, n / 20), 0.2)
        ban = time.perf_counter() - t0
        mem = rss_mb(p.pid) if p.poll() is None else float("nan")
        stop(p, 120)                             # its actionstop destroys the set
        p = spawn(argv, ns=ns)
        t0 = time.perf_counter()
        ok2 = wait_for(lambda: _sets(ns, sets) >= n, max(120, n / 20), 0.2)
        restore = time.perf_counter() - t0
        stop(p, 120)
        return {"bans_per_s": n / ban if ok else 0.0, "restore_s": restore if ok2 else float("nan"),
                "restore_per_s": n / restore if ok2 else 0.0, "rss_mb": mem, "n": n}
    finally:
        shutil.rmtree(d, ignore_errors=True)


def sshguard(n: int) -> Dict[str, float]:
    ns = namespace("sshg")
    d = tempfile.mkdtemp(prefix="wbench-sshg-")
    log, blacklist = os.path.join(d, "auth.log"), os.path.join(d, "blacklist")
    open(log, "w").close()
    pipeline = (f"{SSHG}/sshg-logtail {log} | {SSHG}/sshg-parser | "
                f"{SSHG}/sshg-blocker -a 10 -p 86400 -s 86400 -b 10:{blacklist} | {SSHG}/sshg-fw-ipset")
    sets = ["sshguard4", "sshguard6"]

    def start():
        return spawn(["sh", "-c", pipeline], ns=ns, start_new_session=True)

    def halt(p):
        try:
            os.killpg(p.pid, 15)
        except OSError:
            pass
        p.wait(timeout=10)

    try:
        p = start()
        if not wait_for(lambda: set_size(ns, "sshguard4") >= 0, 20, 0.05):
            raise RuntimeError("sshguard did not create its set")
        time.sleep(0.5)                          # tail -F is watching the file
        t0 = time.perf_counter()
        _append(log, sshd_lines(addresses(n, "100.88.0.0")))
        ok = wait_for(lambda: _sets(ns, sets) >= n, max(60, n / 50), 0.05)
        ban = time.perf_counter() - t0
        pids = sh(["pgrep", "-s", str(p.pid), "-f", "sshg-(blocker|parser)"]).stdout.split()
        mem = sum(rss_mb(int(x)) for x in pids) if pids else float("nan")
        halt(p)
        for s in sets:
            sh(["ipset", "flush", s], ns=ns)
        t0 = time.perf_counter()
        p = start()
        ok2 = wait_for(lambda: _sets(ns, sets) >= n, max(60, n / 50), 0.05)
        restore = time.perf_counter() - t0
        halt(p)
        return {"bans_per_s": n / ban if ok else 0.0, "restore_s": restore if ok2 else float("nan"),
                "restore_per_s": n / restore if ok2 else 0.0, "rss_mb": mem, "n": n}
    finally:
        shutil.rmtree(d, ignore_errors=True)


def versions() -> Dict[str, str]:
    out = {}
    for pkg in ("fail2ban", "sshguard", "ipset", "iptables", "sqlite3", "rsyslog"):
        r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True)
        if r.returncode == 0 and r.stdout:
            out[pkg] = r.stdout
    return out
