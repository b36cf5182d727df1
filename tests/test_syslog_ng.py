"""The syslog-ng snippet Watcher prints, with a real syslog-ng.

syslog-ng and rsyslog conflict as packages, so the test unpacks Debian's
syslog-ng into a folder of its own (apt-get download + dpkg -x) and runs it
from there, leaving the installed logger alone."""
import glob
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from conftest import unpack_debs, wait_for

PACKAGES = ["syslog-ng-core", "libivykis0", "libnet1", "libpcre3", "libwrap0"]


@pytest.fixture(scope="module")
def syslog_ng(tmp_path_factory):
    if os.geteuid() != 0 or not shutil.which("apt-get") or not shutil.which("dpkg"):
        pytest.skip("needs root with apt-get and dpkg to unpack Debian's syslog-ng")
    root = str(tmp_path_factory.mktemp("sng-root"))
    unpack_debs(root, PACKAGES)
    binary = os.path.join(root, "usr", "sbin", "syslog-ng")
    mods = glob.glob(os.path.join(root, "usr", "lib", "syslog-ng", "3.*"))
    env = dict(os.environ, LD_LIBRARY_PATH=":".join(
        [os.path.join(root, "usr", "lib", "syslog-ng")] + glob.glob(os.path.join(root, "usr", "lib", "*-linux-gnu"))
        + glob.glob(os.path.join(root, "lib", "*-linux-gnu"))))
    version = re.search(r"(\d+\.\d+)", os.path.basename(mods[0])).group(1)
    return [binary, f"--module-path={mods[0]}"], env, version


def config(version, sock, snippet):
    return (f"@version: {version}\noptions {{ stats_freq(0); }};\n"
            f'source s_src {{ unix-dgram("{sock}" perm(0666)); }};\n' + snippet)


def test_snippet_passes_syntax_check_and_feeds_a_module(syslog_ng, instance):
    cmd, env, version = syslog_ng
    w = instance(SENDER_PROGRAMS="")
    assert w.run("Prep").returncode == 0
    snippet = w.run("syslog-config", "syslog-ng")
    assert snippet.returncode == 0
    base = tempfile.mkdtemp(prefix="watcher-sng-")
    os.chmod(base, 0o755)
    sock = os.path.join(base, "log.sock")
    conf = os.path.join(base, "syslog-ng.conf")
    with open(conf, "w") as f:
        f.write(config(version, sock, snippet.stdout))
    r = subprocess.run(cmd + ["--syntax-only", "-f", conf], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    proc = subprocess.Popen(cmd + ["-F", "-f", conf, f"--pidfile={base}/sng.pid", f"--persist-file={base}/sng.persist",
                                   f"--control={base}/sng.ctl"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: os.path.exists(sock), 10)
        assert w.run("start").returncode == 0
        subprocess.run(["logger", "--socket", sock, "-p", "auth.info", "-t", "sshd", "--id=4242",
                        "Failed password for root from 198.51.100.7 port 4242 ssh2"], check=True)
        subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "logger", "--socket", sock,
                        "-p", "auth.info", "-t", "sshd", "Failed password for root from 198.51.100.8 port 1 ssh2"],
                       check=True)
        assert wait_for(lambda: w.affairs("198.51.100.7") == 1, 10)
        assert wait_for(lambda: "sent by uid 65534" in w.log(), 5)
        assert w.affairs("198.51.100.8") == 0
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(base, ignore_errors=True)
