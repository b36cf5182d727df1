"""A real rsyslog, configured with the snippet Watcher prints, feeds a running module."""
import shutil
import subprocess

import pytest

from conftest import rsyslog_feeding, wait_for

pytestmark = pytest.mark.skipif(not shutil.which("rsyslogd") or not shutil.which("logger"),
                                reason="rsyslog missing: apt-get install rsyslog (tests/run does)")


@pytest.fixture
def rsyslog(instance, tmp_path):
    w = instance()
    rs = rsyslog_feeding(w, tmp_path / "rs", annotate=False)
    yield w, rs.sock
    rs.stop()


def test_a_line_sent_to_rsyslog_reaches_the_module(rsyslog):
    w, sock = rsyslog
    assert w.run("start").returncode == 0
    for i, fac in enumerate(("auth", "authpriv")):      # Debian's sshd logs to auth, RHEL's to authpriv
        subprocess.run(["logger", "--socket", sock, "-p", f"{fac}.info", "-t", "sshd", f"--id={4242 + i}",
                        f"Failed password for root from 198.51.100.7 port {4000 + i} ssh2"], check=True)
    subprocess.run(["logger", "--socket", sock, "-p", "user.info", "-t", "sshd",
                    "Failed password for root from 198.51.100.8 port 4002 ssh2"], check=True)

    assert wait_for(lambda: w.affairs("198.51.100.7") == 2, 5)
    assert w.affairs("198.51.100.8") == 0            # the user facility is not routed to WatchLG
    assert "sshd[4242]: Failed password" not in w.log()
    assert "[" in w.log() and "198.51.100.7 UNKNOWN affairs 2/5" in w.log()
