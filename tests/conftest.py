"""Shared fixtures: a private Watcher configuration, network namespaces with the
real kernel firewall, and dnsmasq as a real DNS server on loopback.

Tests that need root, `ip netns`, ipset or dnsmasq skip with the command that
installs what is missing; tests/run installs all of it (CI runs as root)."""
import glob
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
APT = "apt-get install ipset iptables dnsmasq-base iproute2 (or run tests/run as root)"


def free_port(kind=socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, seconds=5.0, step=0.02):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


class Instance:
    """A Watcher pointed at private paths through WATCHER_CONF."""

    def __init__(self, base, prefix=(), **settings):
        self.base = str(base)
        self.prefix = list(prefix)
        values = {"FIFO_BASE": f"{base}/pipes", "DATA_DIR": f"{base}/data", "LOG_DIR": f"{base}/log",
                  "RUN_DIR": f"{base}/run", "WHITELIST": f"{base}/whitelist", "BLACKLIST": f"{base}/blacklist",
                  "FIREWALL": "dry-run", "DNS_CLASSIFY": "off", "TRACE": "on"}
        values.update({k: str(v) for k, v in settings.items()})
        self.conf = os.path.join(self.base, "test.conf")
        os.makedirs(self.base, exist_ok=True)
        with open(self.conf, "w") as f:
            f.write("".join(f"{k}={v}\n" for k, v in values.items()))
        self.env = dict(os.environ, WATCHER_CONF=self.conf)
        self.env.pop("SSH_CLIENT", None)
        self.env.pop("SSH_CONNECTION", None)
        self.settings = values

    def path(self, *parts):
        return os.path.join(self.base, *parts)

    def run(self, *args, timeout=60, input=None):
        script = args[0] if args[0] in ("Prep",) else "watcher.py"
        rest = args[1:] if script == "Prep" else args
        return subprocess.run(self.prefix + [sys.executable, os.path.join(ROOT, script), *rest],
                              env=self.env, capture_output=True, text=True, timeout=timeout, input=input,
                              stdin=None if input is not None else subprocess.DEVNULL)

    def fifo(self, token="LG"):
        return self.path("pipes", "Watch" + token)

    def write(self, lines, token="LG"):
        fd = os.open(self.fifo(token), os.O_WRONLY | os.O_NONBLOCK)
        try:
            for line in lines:
                os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)

    def log(self, token="LG"):
        try:
            with open(self.path("log", f"Watch{token}.log"), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def affairs(self, ip, token="LG"):
        """The affairs the module's database holds for `ip` (0 when it does not know it)."""
        d = self.db(token)
        try:
            h = d.get(ip)
            return h.affairs if h else 0
        finally:
            d.close()

    def db(self, token="LG"):
        from lib.db import Database
        return Database(self.path("data", f"Watch{'MX' if token == 'MB' else token}.db"))


@pytest.fixture
def instance(tmp_path):
    made = []

    def make(prefix=(), **settings):
        inst = Instance(tmp_path / f"w{len(made)}", prefix, **settings)
        made.append(inst)
        return inst
    yield make
    for inst in made:       # never leave a supervisor or module behind
        if os.path.exists(inst.path("run")):
            inst.run("stop", timeout=30)


# ---------------------------------------------------------------- network namespaces
def netns_problem():
    if os.geteuid() != 0:
        return "needs root (network namespaces and the kernel firewall)"
    for tool in ("ip", "ipset", "iptables", "ip6tables"):
        if not shutil.which(tool):
            return f"{tool} missing: {APT}"
    name = f"wprobe-{os.getpid()}"
    try:
        r = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
        if r.returncode:
            return f"ip netns add failed: {r.stderr.strip()}"
        r = subprocess.run(["ip", "netns", "exec", name, "ipset", "list", "-n"], capture_output=True, text=True)
        if r.returncode:
            return f"ipset in a namespace failed: {r.stderr.strip()}"
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return None


class NetnsPair:
    """Two namespaces joined by a veth pair: srv (runs Watcher) and atk (attacks)."""

    def __init__(self):
        tag = os.getpid() % 100000
        self.srv, self.atk = f"wsrv-{tag}", f"watk-{tag}"
        self.srv_ip, self.srv_ip6 = "10.88.0.1", "fd00:88::1"
        self.atk_ips = ["10.88.0.2", "10.88.0.3", "10.88.0.4", "10.88.0.5"]
        self.atk_ip6 = "fd00:88::2"
        self.procs = []

    def sh(self, *argv, ns=None, check=True, **kw):
        cmd = (["ip", "netns", "exec", ns] if ns else []) + list(argv)
        kw.setdefault("timeout", 30)
        return subprocess.run(cmd, capture_output=True, text=True, check=check, **kw)

    def setup(self):
        for ns in (self.srv, self.atk):
            self.sh("ip", "netns", "del", ns, check=False)
            self.sh("ip", "netns", "add", ns)
            self.sh("ip", "link", "set", "lo", "up", ns=ns)
        v0, v1 = f"vs{self.srv[5:]}", f"va{self.atk[5:]}"
        self.sh("ip", "link", "add", v0, "netns", self.srv, "type", "veth", "peer", "name", v1, "netns", self.atk)
        self.sh("ip", "addr", "add", f"{self.srv_ip}/24", "dev", v0, ns=self.srv)
        self.sh("ip", "addr", "add", f"{self.srv_ip6}/64", "dev", v0, "nodad", ns=self.srv)
        for ip in self.atk_ips:
            self.sh("ip", "addr", "add", f"{ip}/24", "dev", v1, ns=self.atk)
        self.sh("ip", "addr", "add", f"{self.atk_ip6}/64", "dev", v1, "nodad", ns=self.atk)
        self.sh("ip", "link", "set", v0, "up", ns=self.srv)
        self.sh("ip", "link", "set", v1, "up", ns=self.atk)
        listener = ("import socket\ns=socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET,"
                    "socket.SO_REUSEADDR,1); s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)\n"
                    "s.bind(('::',8080)); s.listen(128)\nwhile True:\n c,_=s.accept(); c.close()")
        self.procs.append(subprocess.Popen(["ip", "netns", "exec", self.srv, sys.executable, "-c", listener],
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        if not wait_for(lambda: self.connect(self.atk_ips[0], timeout=0.3), 10, 0.1):
            raise RuntimeError("the test listener in the server namespace did not come up")

    def connect(self, src, dst=None, timeout=0.5) -> bool:
        """A TCP connect from `src` (in atk) to the server's port 8080: True when it gets through."""
        dst = dst or (self.srv_ip6 if ":" in src else self.srv_ip)
        fam = "AF_INET6" if ":" in src else "AF_INET"
        code = (f"import socket,sys; s=socket.socket(socket.{fam}); s.settimeout({timeout}); s.bind(('{src}',0));"
                f"s.connect(('{dst}',8080)); print('open')")
        r = self.sh(sys.executable, "-c", code, ns=self.atk, check=False)
        return r.stdout.strip() == "open"

    def in_set(self, name, ip) -> bool:
        return self.sh("ipset", "test", name, ip, ns=self.srv, check=False).returncode == 0

    def teardown(self):
        for ns in (self.srv, self.atk):
            pids = self.sh("ip", "netns", "pids", ns, check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), 9)
                except OSError:
                    pass
        for p in self.procs:
            p.wait(timeout=5)
        for ns in (self.srv, self.atk):
            self.sh("ip", "netns", "del", ns, check=False)


@pytest.fixture(scope="module")
def netns_pair():
    problem = netns_problem()
    if problem:
        pytest.skip(problem)
    pair = NetnsPair()
    try:
        pair.setup()
        yield pair
    finally:
        pair.teardown()


# ---------------------------------------------------------------- DNS
class Dnsmasq:
    """dnsmasq answering only from its own records (NXDOMAIN for the rest)."""

    HOSTS = {"198.51.100.10": "good.example.test", "2001:db8::10": "good6.example.test",
             "10.88.0.2": "atk.example.test", "10.88.0.5": "atk5.example.test"}
    PTR_ONLY = {"198.51.100.20": "fake.example.test", "2001:db8::20": "fake.example.test",
                "198.51.100.40": "noaddr.example.test", "10.88.0.4": "fake.example.test"}

    def __init__(self, tmp, ns=None, port=None):
        import dns.reversename
        self.port = port or free_port()
        hosts = os.path.join(tmp, "dns-hosts")
        with open(hosts, "w") as f:
            f.write("".join(f"{ip} {name}\n" for ip, name in self.HOSTS.items()))
        argv = ["dnsmasq", "--no-daemon", f"--port={self.port}", "--listen-address=127.0.0.1",
                "--bind-interfaces", "--no-resolv", "--no-hosts", f"--addn-hosts={hosts}", "--bogus-priv",
                "--local=/example.test/", "--local=/in-addr.arpa/", "--local=/ip6.arpa/",
                "--host-record=fake.example.test,192.0.2.99,2001:db8::99", f"--pid-file={tmp}/dnsmasq.pid"]
        for ip, name in self.PTR_ONLY.items():
            argv.append(f"--ptr-record={dns.reversename.from_address(ip).to_text().rstrip('.')},{name}")
        if ns:
            argv = ["ip", "netns", "exec", ns] + argv
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.server = ("127.0.0.1", self.port)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=5)


def dns_problem():
    if not shutil.which("dnsmasq"):
        return f"dnsmasq missing: {APT}"
    try:
        import dns.resolver  # noqa: F401
    except ImportError:
        return "dnspython missing: pip install dnspython (tests/run does)"
    return None


@pytest.fixture(scope="module")
def dnsmasq(tmp_path_factory):
    problem = dns_problem()
    if problem:
        pytest.skip(problem)
    d = Dnsmasq(str(tmp_path_factory.mktemp("dns")))
    from lib.dnsclass import Classifier, make_resolver
    c = Classifier(make_resolver(d.server, 1))
    if not wait_for(lambda: c.classify("198.51.100.10").cls == "TRUEHOST", 5, 0.05):
        d.stop()
        pytest.fail("dnsmasq did not answer within 5 s")
    yield d
    d.stop()


# ---------------------------------------------------------------- SMTP
class SmtpSink:
    """aiosmtpd on loopback (REAL-COMPONENTS.md 5): every message it accepted, parsed."""

    def __init__(self):
        import email
        import email.policy
        from aiosmtpd.controller import Controller

        self.messages, self.envelopes = [], []
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                sink.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
                sink.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
                return "250 OK"

        self.port = free_port(socket.SOCK_STREAM)          # Controller(port=0) does not work
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()
        self.mailhost = f"127.0.0.1:{self.port}"


@pytest.fixture
def smtp_sink():
    try:
        import aiosmtpd  # noqa: F401
    except ImportError:
        pytest.skip("aiosmtpd missing: pip install aiosmtpd (tests/run does)")
    sink = SmtpSink()
    try:
        yield sink
    finally:
        sink.controller.stop()


@pytest.fixture(autouse=True)
def _dist_targets_private(tmp_path, monkeypatch):
    """An in-process `prep.prepare(install=True)` writes the logrotate config and the systemd
    unit: in tests they go below tmp_path, never into the machine's /etc."""
    from lib import prep
    monkeypatch.setattr(prep, "DIST_TARGETS", {name: str(tmp_path / "etc" / path.lstrip("/"))
                                               for name, path in prep.DIST_TARGETS.items()})


# ---------------------------------------------------------------- Watcher inside the server namespace
@pytest.fixture(scope="module")
def dns_in_srv(netns_pair, tmp_path_factory):
    """dnsmasq on the server namespace's loopback (10.88.0.2 TRUEHOST, .3 NXDOMAIN, .4 FAKEHOST)."""
    problem = dns_problem()
    if problem:
        pytest.skip(problem)
    d = Dnsmasq(str(tmp_path_factory.mktemp("dns-srv")), ns=netns_pair.srv, port=5353)
    yield d
    d.stop()


@pytest.fixture
def watcher_in_srv(instance, netns_pair, dns_in_srv):
    """A prepared Watcher in the server namespace: real ipset, DNS from dns_in_srv."""
    w = instance(prefix=["ip", "netns", "exec", netns_pair.srv], FIREWALL="ipset", DNS_CLASSIFY="on",
                 DNS_SERVER=f"127.0.0.1:{dns_in_srv.port}", DNS_TIMEOUT=1, MAX_AFFAIRS=5, TARPIT_TIMEOUT=60)
    r = w.run("Prep")
    assert r.returncode == 0, r.stdout + r.stderr
    yield w
    w.run("stop", "--flush")


# ---------------------------------------------------------------- a private rsyslog
class Rsyslog:
    """A private rsyslog: its own local socket (with the senders' trusted properties
    unless annotate=False), Watcher's snippet appended; /dev/log is never touched."""

    def __init__(self, base, snippet, annotate=True):
        self.base = str(base)
        base = self.base
        self.sock = os.path.join(base, "log.sock")
        os.makedirs(os.path.join(base, "spool"), exist_ok=True)
        self.conf = os.path.join(base, "rsyslog.conf")
        with open(self.conf, "w") as f:
            f.write(f'global(workDirectory="{base}/spool" processInternalMessages="on")\n'
                    'module(load="imuxsock" SysSock.Use="off")\n'
                    f'input(type="imuxsock" Socket="{self.sock}" CreatePath="on" RateLimit.Interval="0"'
                    + (' Annotate="on" ParseTrusted="on"' if annotate else "") + ")\n"
                    f'syslog.* action(type="omfile" file="{base}/rsyslogd.log")\n' + snippet)
        check = subprocess.run(["rsyslogd", "-N1", "-f", self.conf], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(["rsyslogd", "-n", "-f", self.conf, "-i", os.path.join(self.base, "rs.pid")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_for(lambda: os.path.exists(self.sock), 5)
        os.chmod(self.sock, 0o666)

    def backlog(self) -> int:
        """Datagrams waiting in the log socket, not yet taken by rsyslog."""
        out = subprocess.run(["ss", "-x", "-a", "-n"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            words = line.split()
            if len(words) >= 5 and words[4] == self.sock:
                return int(words[2])
        return 0

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=30)
            self.proc = None
        if os.path.exists(self.sock):
            os.unlink(self.sock)


def rsyslog_feeding(w, base, annotate=True) -> "Rsyslog":
    """A started private rsyslog configured with the snippet Watcher `w` prints (after Prep)."""
    assert w.run("Prep").returncode == 0
    snippet = w.run("syslog-config", "rsyslog")
    assert snippet.returncode == 0
    rs = Rsyslog(base, snippet.stdout, annotate=annotate)
    rs.start()
    return rs


def unpack_debs(root: str, packages) -> None:
    """Debian's `packages` downloaded into `root` and unpacked there; a skip when apt-get cannot."""
    r = subprocess.run(["apt-get", "download", *packages], cwd=root, capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        pytest.skip(f"apt-get download {' '.join(packages)} failed: {r.stderr.strip()[-200:]}")
    for deb in glob.glob(os.path.join(root, "*.deb")):
        subprocess.run(["dpkg", "-x", deb, root], check=True)


def one_clear_line(r, *words) -> str:
    """The command failed with one line on stderr, no traceback, holding every one of `words`."""
    assert r.returncode != 0, r.stdout
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def tool(inst, name, *args, timeout=60):
    """One of the checkout's scripts (`Blacklist`, `dynloaders/feeds`, ...) run for Instance `inst`."""
    return subprocess.run(inst.prefix + [sys.executable, os.path.join(ROOT, name), *args], env=inst.env,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
