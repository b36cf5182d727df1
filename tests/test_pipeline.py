"""The real syslog pipeline: rsyslog with Watcher's own snippet, bursts, crashes,
forged lines and bad input.  Watcher runs in a network namespace of its own (real
ipset); rsyslog and a real OpenSSH server log through a private socket."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

from conftest import Rsyslog, wait_for

pytestmark = pytest.mark.skipif(not shutil.which("rsyslogd"),
                                reason="rsyslog missing: apt-get install rsyslog (tests/run does)")
BURST = 20000


@pytest.fixture
def pipeline(instance, netns_pair):
    base = tempfile.mkdtemp(prefix="watcher-rs-")
    os.chmod(base, 0o755)                     # the user nobody logs through it too

    def make(**settings):
        w = instance(prefix=["ip", "netns", "exec", netns_pair.srv], FIREWALL="ipset", **settings)
        r = w.run("Prep")
        assert r.returncode == 0, r.stdout + r.stderr
        rs = Rsyslog(base, w.run("syslog-config", "rsyslog").stdout)
        rs.start()
        made.append(rs)
        assert w.run("start").returncode == 0
        return w, rs
    made = []
    try:
        yield make
    finally:
        for rs in made:
            rs.stop()
        for s in ("custody", "tarpit"):
            netns_pair.sh("ipset", "flush", s, ns=netns_pair.srv, check=False)
        shutil.rmtree(base, ignore_errors=True)


def custody_size(net):
    out = net.sh("ipset", "list", "custody", "-t", ns=net.srv, check=False).stdout
    for line in out.splitlines():
        if line.startswith("Number of entries:"):
            return int(line.split(":")[1])
    return -1


def send(rs, lines):
    """Like syslog(3): datagrams to the local socket; waits while rsyslog restarts."""
    s = None
    for text in lines:
        data = ("<38>" + text).encode()
        while True:
            try:
                if s is None:
                    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                    s.connect(rs.sock)
                s.send(data)
                break
            except OSError:
                if s:
                    s.close()
                s = None
                time.sleep(0.01)
    if s:
        s.close()


def attack_lines(start, n):
    for k in range(start, start + n):
        ip = f"10.200.{k // 250}.{k % 250 + 1}"
        yield f"Nov 22 10:00:00 sshd[4242]: Failed password for root from {ip} port {1024 + k % 60000} ssh2"


@pytest.mark.parametrize("trouble", ["none", "module killed", "rsyslog restarted"])
def test_burst_of_distinct_attackers_all_end_in_custody(pipeline, netns_pair, trouble):
    w, rs = pipeline(MAX_AFFAIRS=1, SENDER_PROGRAMS="")     # the test itself sends as root
    t0 = time.monotonic()
    send(rs, attack_lines(0, BURST // 2))
    recovery = ""
    if trouble == "module killed":
        assert wait_for(lambda: custody_size(netns_pair) > 100, 30)
        pidfile = w.path("run", "WatchLG.pid")
        old = int(open(pidfile).read())
        os.kill(old, signal.SIGKILL)
        killed = time.monotonic()
        assert wait_for(lambda: os.path.exists(pidfile) and int(open(pidfile).read() or 0) != old, 5, 0.01)
        recovery = f", module back {time.monotonic() - killed:.2f}s after SIGKILL"
    elif trouble == "rsyslog restarted":
        # what rsyslog has taken off its socket it has seen; what still sits in the kernel's
        # socket buffer when it closes, no logger ever saw (the same for syslog(3) callers)
        assert wait_for(lambda: rs.backlog() == 0, 30)
        rs.stop()                              # its queue is saved to disk ...
        rs.start()                             # ... and delivered after the restart
    send(rs, attack_lines(BURST // 2, BURST - BURST // 2))
    assert wait_for(lambda: custody_size(netns_pair) == BURST, 300, 0.5), custody_size(netns_pair)
    elapsed = time.monotonic() - t0
    d = w.db()
    try:
        assert d.counts(time.time())["custody"] == BURST
        assert d.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        d.close()
    print(f"\n{trouble}: {BURST} lines sent, {BURST} addresses in custody after {elapsed:.1f}s{recovery}")


def test_bad_input_never_stops_the_module(instance):
    w = instance(MAX_AFFAIRS=50)
    assert w.run("Prep").returncode == 0 and w.run("start").returncode == 0
    attack = "Nov 22 10:00:{:02d} web1 sshd[1]: Failed password for root from 198.51.100.{} port 22 ssh2\n"
    bad = [b"\x00\x01\x02\xff\xfe binary \x00\n", b"caf\xc3 invalid utf-8 \xff\n", b"A" * (1 << 20) + b"\n",
           b"".join(b"Nov 22 10:00:00 web1 kernel: noise %d\n" % i for i in range(5000)),
           b"a line without its end"]
    fd = os.open(w.fifo(), os.O_RDWR | os.O_NONBLOCK)
    try:
        for n, chunk in enumerate(bad):
            for i in range(0, len(chunk), 32768):
                while True:
                    try:
                        os.write(fd, chunk[i:i + 32768])
                        break
                    except BlockingIOError:
                        time.sleep(0.01)
            if n == len(bad) - 1:
                os.write(fd, b"\n")          # the end of the unfinished line comes late
            os.write(fd, attack.format(n, n + 1).encode())
    finally:
        os.close(fd)
    d = lambda ip: (w.db().get(ip) or type("H", (), {"affairs": 0})).affairs   # noqa: E731
    assert wait_for(lambda: all(d(f"198.51.100.{n + 1}") == 1 for n in range(len(bad))), 20)
    log = w.log()
    assert "[INPUT] overlong line cut" in log and "[INPUT] NUL bytes dropped" in log
    assert log.count("[INPUT] invalid UTF-8 replaced") == 1           # once per kind, not per line
    assert "WatchLG: running" in w.run("status").stdout


# ---------------------------------------------------------------- real OpenSSH, forged lines
SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


@pytest.fixture
def sshd(netns_pair, pipeline, tmp_path):
    if not os.path.exists(SSHD) or not shutil.which("sshpass") or not shutil.which("ssh"):
        pytest.skip("OpenSSH server/client or sshpass missing: apt-get install openssh-server sshpass "
                    "(tests/run does)")
    w, rs = pipeline(MAX_AFFAIRS=3, TARPIT_TIMEOUT=1)     # short tarpits: the attacker may come back
    d = tempfile.mkdtemp(prefix="watcher-sshd-")
    os.chmod(d, 0o755)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{d}/hostkey"], check=True)
    with open(f"{d}/sshd_config", "w") as f:
        f.write(f"Port 2222\nListenAddress {netns_pair.srv_ip}\nHostKey {d}/hostkey\nPidFile {d}/sshd.pid\n"
                "UsePAM no\nPasswordAuthentication yes\nKbdInteractiveAuthentication no\nPermitRootLogin no\n"
                "SyslogFacility AUTH\nLogLevel INFO\n")
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)      # sshd's privilege separation directory
    # syslog(3) writes to /dev/log: in a mount namespace of its own, /dev/log is the test rsyslog's socket
    script = (f"mkdir -p {d}/olddev && mount --bind /dev {d}/olddev && mount -t tmpfs tmpfs /dev && "
              f"for n in null zero urandom random tty; do touch /dev/$n; mount --bind {d}/olddev/$n /dev/$n; done; "
              f"ln -s {rs.sock} /dev/log; exec {SSHD} -D -f {d}/sshd_config")
    proc = subprocess.Popen(["ip", "netns", "exec", netns_pair.srv, "unshare", "-m", "sh", "-c", script],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_for(lambda: _port_open(netns_pair), 10, 0.2), "sshd did not come up"
    yield w, rs
    proc.terminate()
    proc.wait(timeout=10)
    shutil.rmtree(d, ignore_errors=True)


def _port_open(net):
    code = (f"import socket; socket.create_connection(('{net.srv_ip}', 2222), timeout=0.3).close()")
    return net.sh(sys.executable, "-c", code, ns=net.atk, check=False).returncode == 0


def ssh_attempt(net, src):
    """One failed password login; None when the kernel dropped it on the way."""
    try:
        return _ssh(net, src)
    except subprocess.TimeoutExpired:
        return None


def _ssh(net, src):
    return net.sh("sshpass", "-p", "wrong-password", "ssh", "-b", src, "-o", "StrictHostKeyChecking=no",
                  "-o", "UserKnownHostsFile=/dev/null", "-o", "PubkeyAuthentication=no",
                  "-o", "PreferredAuthentications=password", "-o", "NumberOfPasswordPrompts=1",
                  "-o", "ConnectTimeout=2", "-p", "2222", f"admin@{net.srv_ip}", "true", ns=net.atk, check=False,
                  timeout=20)


def test_real_sshd_brute_force_is_dropped_and_forged_lines_ban_nobody(sshd, netns_pair):
    w, rs = sshd
    net = netns_pair
    victim = net.atk_ips[3]            # the address a local user tries to get banned
    # a local user forges sshd's lines naming another address: refused by its credentials
    for _ in range(5):
        subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "logger", "--socket",
                        rs.sock, "-p", "auth.info", "-t", "sshd", "--id=4242",
                        f"Failed password for root from {victim} port 4242 ssh2"], check=True)
    attacker = net.atk_ips[0]
    denied = 0
    for _ in range(6):              # each failed login tarpits the attacker a little longer
        r = ssh_attempt(net, attacker)
        denied += bool(r and "Permission denied" in r.stderr)
        if wait_for(lambda: net.in_set("custody", attacker), 1):
            break
        assert wait_for(lambda: not net.in_set("tarpit", attacker), 10)
    assert net.in_set("custody", attacker) and denied >= 2
    assert ssh_attempt(net, attacker) is None or "timed out" in _ssh(net, attacker).stderr
    assert not net.connect(attacker) and net.connect(net.atk_ips[1])
    assert not net.in_set("custody", victim) and not net.in_set("tarpit", victim)
    d = w.db()
    try:
        assert d.get(victim) is None
        assert d.get(attacker).affairs == 3          # one affair per failed login, not per line
    finally:
        d.close()
    assert "line refused: sent by uid 65534" in w.log()
    assert "refused (forged sender) 5" in w.run("status").stdout or wait_for(
        lambda: "refused (forged sender) 5" in w.run("status").stdout, 3)
