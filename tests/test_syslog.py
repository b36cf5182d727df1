"""A real rsyslog, configured with the snippet Watcher prints, feeds a running module."""
import shutil
import subprocess

import pytest

from conftest import wait_for

pytestmark = pytest.mark.skipif(not shutil.which("rsyslogd") or not shutil.which("logger"),
                                reason="rsyslog missing: apt-get install rsyslog (tests/run does)")


@pytest.fixture
def rsyslog(instance, tmp_path):
    w = instance()
    assert w.run("Prep").returncode == 0
    snippet = w.run("syslog-config", "rsyslog")
    assert snippet.returncode == 0
    work = tmp_path / "rs"
    (work / "spool").mkdir(parents=True)
    sock = work / "log.sock"
    conf = work / "rsyslog.conf"
    conf.write_text(f'global(workDirectory="{work}/spool" processInternalMessages="on")\n'
                    'module(load="imuxsock" SysSock.Use="off")\n'
                    f'input(type="imuxsock" Socket="{sock}" CreatePath="on")\n'
                    f'syslog.* action(type="omfile" file="{work}/rsyslogd.log")\n' + snippet.stdout)
    check = subprocess.run(["rsyslogd", "-N1", "-f", str(conf)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen(["rsyslogd", "-n", "-f", str(conf), "-i", str(work / "rs.pid")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_for(lambda: sock.exists(), 5)
    yield w, str(sock)
    proc.terminate()
    proc.wait(timeout=10)


def test_a_line_sent_to_rsyslog_reaches_the_module(rsyslog):
    w, sock = rsyslog
    assert w.run("start").returncode == 0
    for i, fac in enumerate(("auth", "authpriv")):      # Debian's sshd logs to auth, RHEL's to authpriv
        subprocess.run(["logger", "--socket", sock, "-p", f"{fac}.info", "-t", "sshd", f"--id={4242 + i}",
                        f"Failed password for root from 198.51.100.7 port {4000 + i} ssh2"], check=True)
    subprocess.run(["logger", "--socket", sock, "-p", "user.info", "-t", "sshd",
                    "Failed password for root from 198.51.100.8 port 4002 ssh2"], check=True)

    def affairs(ip):
        d = w.db()
        try:
            h = d.get(ip)
            return h.affairs if h else 0
        finally:
            d.close()
    assert wait_for(lambda: affairs("198.51.100.7") == 2, 5)
    assert affairs("198.51.100.8") == 0            # the user facility is not routed to WatchLG
    assert "sshd[4242]: Failed password" not in w.log()
    assert "[" in w.log() and "198.51.100.7 UNKNOWN affairs 2/5" in w.log()
