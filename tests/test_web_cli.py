"""WatchWB from the command line: the web servers' and loggers' configuration, settings,
Prep, a running module fed through its FIFO and through a real rsyslog, status.

Without root or a kernel: FIREWALL=dry-run (tests/test_web_kernel.py does the kernel)."""
import os
import shutil
import sqlite3
import subprocess

import pytest

from conftest import ROOT, rsyslog_feeding, wait_for

ACCESS = ('Nov 22 10:00:{i:02d} web1 apache_access: {ip} {vhost} [22/Nov/2026:10:00:{i:02d} +0100] '
          '"GET /.env HTTP/1.1" 404 196 "-" "Mozilla/5.0" "-" {ip}')
NGINX_AUTH = ('Nov 22 10:00:{i:02d} web1 nginx: 2026/11/22 10:00:{i:02d} [error] 4242#4242: *{i} user "bob": '
              'password mismatch, client: {ip}, server: {vhost}, request: "GET / HTTP/1.1", host: "{vhost}"')


def events(w):
    conn = sqlite3.connect(w.path("data", "WatchWB.db"))
    try:
        return conn.execute("SELECT ip, rule, vhost FROM events ORDER BY rowid").fetchall()
    finally:
        conn.close()


# ---- configuration printed for the web servers and the loggers ----------------------
def test_syslog_config_apache_is_apache_configuration_alone(instance):
    r = instance().run("syslog-config", "apache")
    assert r.returncode == 0 and r.stdout.endswith("\n"), r.stderr
    directives = [l.split()[0] for l in r.stdout.splitlines() if l.strip() and not l.startswith("#")]
    assert directives == ["ErrorLog", "ErrorLogFormat", "LogFormat", "CustomLog"]
    assert "ErrorLog syslog:local7\n" in r.stdout
    assert "[vhost\\ %v]" in r.stdout and "[client\\ %a]" in r.stdout
    fmt = next(l for l in r.stdout.splitlines() if l.startswith("LogFormat"))
    assert fmt.startswith('LogFormat "%a %v %t ') and fmt.endswith('%a" watcher')
    assert 'CustomLog "||/usr/bin/logger -t apache_access -p local7.info -S 8192" watcher' in r.stdout
    assert "ompipe" not in r.stdout and "rsyslog" not in r.stdout


def test_syslog_config_nginx_is_nginx_configuration_alone(instance):
    r = instance().run("syslog-config", "nginx")
    assert r.returncode == 0 and r.stdout.endswith("\n"), r.stderr
    body = [l for l in r.stdout.splitlines() if l.strip() and not l.startswith("#")]
    assert body[0].startswith("log_format watcher '$remote_addr $server_name [$time_local] ")
    assert body[1].rstrip().endswith("$remote_addr';")
    assert "access_log syslog:server=unix:/dev/log,facility=local7,tag=nginx_access,severity=info watcher;" in body
    assert "error_log syslog:server=unix:/dev/log,facility=local7,tag=nginx error;" in body
    assert all(l.rstrip().endswith((";", "'")) for l in body)


def test_the_loggers_route_the_web_facility_to_watchwb(instance):
    w = instance()
    r = w.run("syslog-config", "rsyslog")
    assert r.returncode == 0
    block = r.stdout[r.stdout.index('prifilt("local7.*")'):]
    assert f'pipe="{w.fifo("WB")}"' in block.split("}")[0]
    assert "daemon" not in r.stdout
    r = w.run("syslog-config", "syslog-ng")
    assert "filter f_watcher_wb { facility(local7); };" in r.stdout and w.fifo("WB") in r.stdout
    r = w.run("syslog-config", "lighttpd")
    assert r.returncode == 64 and "apache" in r.stderr and "Traceback" not in r.stderr


# ---- settings ------------------------------------------------------------------------
@pytest.mark.parametrize("line,words", [
    ("TRUSTED_PROXIES=10.0.0.1,10.0.0.300", "'10.0.0.300' is not an address or network"),
    ("FLOOD_REQUESTS=0", "FLOOD_REQUESTS='0' must be a whole number of at least 1"),
    ("FLOOD_WINDOW=1m", "FLOOD_WINDOW='1m' must be a whole number"),
    ("VHOST_OWNERS=shop.example.test", "is not VHOST:ADDRESS"),
    ("VHOST_OWNERS=shop.example.test:alice", "'alice' is not one e-mail address"),
    ("VHOST_OWNERS=a.test:x@example.test,A.test:y@example.test", "'A.test' is given twice"),
])
def test_a_bad_web_setting_names_file_and_line(instance, line, words):
    w = instance()
    with open(w.conf, "a") as f:
        f.write(line + "\n")
    lineno = sum(1 for _ in open(w.conf))
    r = w.run("test", "WB", os.devnull)
    assert r.returncode == 1 and r.stderr.startswith(f"watcher.py: {w.conf}:{lineno}: "), r.stderr
    assert words in r.stderr and "Traceback" not in r.stderr and len(r.stderr.splitlines()) == 1


def test_good_web_settings_are_read(instance):
    from lib import config
    w = instance(TRUSTED_PROXIES="10.0.0.5, fd00::/64", FLOOD_REQUESTS=50, FLOOD_WINDOW=5,
                 VHOST_OWNERS="Shop.Example.Test:alice@example.test,blog.example.test:bob@example.test")
    s = config.load("WB", environ=w.env)
    assert [str(n) for n in s.TRUSTED_PROXIES] == ["10.0.0.5/32", "fd00::/64"]
    assert (s.FLOOD_REQUESTS, s.FLOOD_WINDOW) == (50, 5)
    assert s.VHOST_OWNERS == {"shop.example.test": "alice@example.test", "blog.example.test": "bob@example.test"}
    d = config.load("WB", environ={})
    assert (d.TRUSTED_PROXIES, d.VHOST_OWNERS, d.FLOOD_REQUESTS, d.FLOOD_WINDOW) == ((), {}, 600, 60)


# ---- the module, running ---------------------------------------------------------------
def test_prep_start_a_brute_force_through_the_fifo_and_status(instance):
    w = instance(MAX_AFFAIRS=3)
    r = w.run("Prep")
    assert r.returncode == 0, r.stdout + r.stderr
    db = sqlite3.connect(w.path("data", "WatchWB.db"))
    assert db.execute("PRAGMA user_version").fetchone()[0] == 2
    db.close()
    r = w.run("start")
    assert r.returncode == 0, r.stderr
    assert "WatchWB (pid" in r.stdout
    w.write([NGINX_AUTH.format(i=i, ip="203.0.113.5", vhost="shop.example.test") for i in range(3)], "WB")
    w.write([ACCESS.format(i=i, ip="2001:db8::6", vhost="blog.example.test") for i in range(2)], "WB")
    assert wait_for(lambda: "203.0.113.5 UNKNOWN affairs 3/3 -> DROP" in w.log("WB"))
    assert wait_for(lambda: len(events(w)) == 5)
    assert events(w) == [("203.0.113.5", "nginx-auth", "shop.example.test")] * 3 + \
        [("2001:db8::6", "attack-path", "blog.example.test")] * 2
    r = w.run("status")
    assert r.returncode == 0
    assert "WatchWB: running" in r.stdout
    assert "top virtual hosts by affairs: shop.example.test 3, blog.example.test 2" in r.stdout
    assert "matched per rule: nginx-auth 3, attack-path 2" in r.stdout or \
        wait_for(lambda: "matched per rule: nginx-auth 3, attack-path 2" in w.run("status").stdout)
    assert w.run("stop").returncode == 0


def test_expirewb_runs_from_its_folder_as_in_the_crontab(instance):
    w = instance()
    assert w.run("Prep").returncode == 0
    r = subprocess.run(["./ExpireWB", "0"], cwd=os.path.join(ROOT, "modules", "WatchWB"), capture_output=True,
                       text=True, env=w.env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ExpireWB: removed 0 addresses") and "WatchWB's database" in r.stdout


# ---- a real rsyslog with Watcher's snippet -----------------------------------------------
@pytest.fixture
def rsyslog(instance, tmp_path):
    if not shutil.which("rsyslogd") or not shutil.which("logger"):
        pytest.skip("rsyslog missing: apt-get install rsyslog (tests/run does)")
    w = instance()
    rs = rsyslog_feeding(w, tmp_path / "rs")
    yield w, rs.sock
    rs.stop()


def test_local7_lines_through_rsyslog_reach_watchwb_with_their_host(rsyslog):
    w, sock = rsyslog
    assert w.run("start").returncode == 0
    line = ACCESS.format(i=1, ip="203.0.113.7", vhost="shop.example.test").split(" apache_access: ", 1)[1]
    subprocess.run(["logger", "--socket", sock, "-p", "local7.info", "-t", "apache_access", line], check=True)
    subprocess.run(["logger", "--socket", sock, "-p", "local7.err", "-t", "apache2", "--id=4242",
                    "[auth_basic:error] [pid 4242:tid 1] [vhost blog.example.test] [client 2001:db8::8:40000] "
                    "AH01617: user bob: authentication failure for \"/\": Password Mismatch"], check=True)
    subprocess.run(["logger", "--socket", sock, "-p", "daemon.info", "-t", "apache_access",
                    line.replace("203.0.113.7", "203.0.113.9")], check=True)        # not the web facility
    assert wait_for(lambda: len(events(w)) == 2, 5)
    assert sorted(events(w)) == [("2001:db8::8", "apache-auth", "blog.example.test"),
                                 ("203.0.113.7", "attack-path", "shop.example.test")]
