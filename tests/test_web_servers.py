"""Real Apache 2.4 and nginx, configured with what `watcher.py syslog-config apache|nginx`
prints, log through a real rsyslog (Watcher's snippet) into a running WatchWB.

Debian's apache2-bin and nginx are unpacked into a folder of their own (apt-get
download + dpkg -x, as tests/test_syslog_ng.py does for syslog-ng) and run in the
server namespace of a veth pair, in a mount namespace whose /dev/log is the test
rsyslog's socket.  An attacker in the other namespace guesses passwords on both
servers and asks for /.env: the affairs arrive with the right address and virtual
host, through the sender check, and the kernel drops its next connect."""
import glob
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap

import pytest

from conftest import unpack_debs, wait_for

PACKAGES = ["apache2-bin", "libapr1", "libaprutil1", "nginx", "nginx-common"]
APACHE_MODULES = ("mpm_event", "authz_core", "authn_core", "authn_file", "auth_basic", "authz_user")


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory):
    if os.geteuid() != 0 or not all(shutil.which(t) for t in ("apt-get", "dpkg", "unshare", "rsyslogd")):
        pytest.skip("needs root with apt-get, dpkg, unshare and rsyslogd")
    root = str(tmp_path_factory.mktemp("web-root"))
    unpack_debs(root, PACKAGES)
    libs = ":".join(glob.glob(os.path.join(root, "usr", "lib", "*-linux-gnu")))
    apache, nginx = os.path.join(root, "usr", "sbin", "apache2"), os.path.join(root, "usr", "sbin", "nginx")
    for binary in (apache, nginx):
        ldd = subprocess.run(["ldd", binary], capture_output=True, text=True, env=dict(os.environ, LD_LIBRARY_PATH=libs))
        if "not found" in ldd.stdout:
            pytest.skip(f"{binary}: libraries missing here: {ldd.stdout.strip()[:200]}")
    return {"apache": apache, "nginx": nginx, "libs": libs,
            "modules": os.path.join(root, "usr", "lib", "apache2", "modules")}


@pytest.fixture
def site():
    """Document root and password file readable by the servers' user (www-data)."""
    d = tempfile.mkdtemp(prefix="watcher-web-")
    os.chmod(d, 0o755)
    os.makedirs(os.path.join(d, "docroot", "private"))
    for rel in ("docroot/index.html", "docroot/private/index.html"):
        with open(os.path.join(d, rel), "w") as f:
            f.write("hello\n")
    with open(os.path.join(d, "htpasswd"), "w") as f:         # bob:secret, SHA1 scheme both servers read
        f.write("bob:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=\n")
    subprocess.run(["chmod", "-R", "a+rX", d], check=True)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def rsyslog_conf(work, sock, snippet):
    return (f'global(workDirectory="{work}" processInternalMessages="on")\n'
            'module(load="imuxsock" SysSock.Use="off")\n'
            f'input(type="imuxsock" Socket="{sock}" CreatePath="on" Annotate="on" ParseTrusted="on")\n'
            f'syslog.* action(type="omfile" file="{work}/rsyslogd.log")\n'
            f'local7.* action(type="omfile" file="{work}/web.log")\n' + snippet)


def servers_script(d, unpacked, sock, srv_ip):
    apache_conf = os.path.join(d, "httpd.conf")
    with open(apache_conf, "w") as f:
        f.write("".join(f"LoadModule {m}_module {unpacked['modules']}/mod_{m}.so\n" for m in APACHE_MODULES))
        f.write(textwrap.dedent(f"""\
            ServerRoot {d}
            User www-data
            Group www-data
            Listen {srv_ip}:18080
            PidFile {d}/httpd.pid
            ServerName main.example.test
            Include {d}/watcher-apache.conf
            <VirtualHost *:18080>
              ServerName shop.example.test
              DocumentRoot {d}/docroot
              <Directory {d}/docroot>
                Require all granted
              </Directory>
              <Location /private>
                AuthType Basic
                AuthName private
                AuthUserFile {d}/htpasswd
                Require valid-user
              </Location>
            </VirtualHost>
            """))
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        temps = " ".join(f"{k}_temp_path {d}/t-{k};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        f.write(textwrap.dedent(f"""\
            user www-data;
            pid {d}/nginx.pid;
            error_log {d}/nginx-core.log;
            events {{}}
            http {{
              {temps}
              include {d}/watcher-nginx.conf;
              server {{
                listen {srv_ip}:18081;
                server_name blog.example.test;
                root {d}/docroot;
                location /private/ {{ auth_basic "private"; auth_basic_user_file {d}/htpasswd; }}
              }}
            }}
            """))
    script = os.path.join(d, "run.sh")
    with open(script, "w") as f:      # a private /dev whose log socket is the test rsyslog's
        f.write(textwrap.dedent(f"""\
            #!/bin/sh
            set -e
            mkdir -p {d}/olddev
            mount --rbind /dev {d}/olddev
            mount -t tmpfs tmpfs /dev
            for n in null zero random urandom; do touch /dev/$n; mount --bind {d}/olddev/$n /dev/$n; done
            ln -s {sock} /dev/log
            export LD_LIBRARY_PATH={unpacked['libs']}
            {unpacked['apache']} -f {apache_conf} -DFOREGROUND &
            {unpacked['nginx']} -c {d}/nginx.conf -p {d}/ -g 'daemon off;' &
            wait
            """))
    os.chmod(script, 0o755)
    return script


REQUEST = """
import base64, http.client, sys
src, host, port, path, user = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
c = http.client.HTTPConnection(host, port, timeout=3, source_address=(src, 0))
headers = {"Host": sys.argv[6], "User-Agent": "Mozilla/5.0 198.51.100.9", "X-Forwarded-For": "198.51.100.9"}
if user:
    headers["Authorization"] = "Basic " + base64.b64encode(user.encode()).decode()
c.request("GET", path, headers=headers)
print(c.getresponse().status)
"""


def test_apache_and_nginx_feed_watchwb_through_rsyslog(unpacked, site, netns_pair, instance):
    net = netns_pair
    w = instance(prefix=["ip", "netns", "exec", net.srv], FIREWALL="ipset", DNS_CLASSIFY="off", MAX_AFFAIRS=3,
                 SENDER_CHECK="strict")
    assert w.run("Prep").returncode == 0
    for name in ("apache", "nginx"):
        r = w.run("syslog-config", name)
        assert r.returncode == 0
        with open(os.path.join(site, f"watcher-{name}.conf"), "w") as f:
            f.write(r.stdout)
    work = os.path.join(site, "rs")
    os.makedirs(work)
    sock = os.path.join(site, "log.sock")
    with open(os.path.join(work, "rsyslog.conf"), "w") as f:
        f.write(rsyslog_conf(work, sock, w.run("syslog-config", "rsyslog").stdout))
    procs = [subprocess.Popen(["rsyslogd", "-n", "-f", os.path.join(work, "rsyslog.conf"), "-i",
                               os.path.join(work, "rs.pid")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        assert wait_for(lambda: os.path.exists(sock), 5)
        script = servers_script(site, unpacked, sock, net.srv_ip)
        out = open(os.path.join(site, "servers.out"), "w")
        procs.append(subprocess.Popen(["ip", "netns", "exec", net.srv, "unshare", "-m", "--propagation", "private",
                                       script], stdout=out, stderr=subprocess.STDOUT))
        out.close()

        def said():
            return open(os.path.join(site, "servers.out")).read()[-600:]
        assert w.run("start").returncode == 0
        one, two = net.atk_ips[1], net.atk_ips[2]       # one attacker per server: the first ban is at once

        def get(src, port, path, user="", host="shop.example.test"):
            r = net.sh(sys.executable, "-c", REQUEST, src, net.srv_ip, str(port), path, user, host,
                       ns=net.atk, check=False)
            return r.stdout.strip() or r.stderr.strip()[-80:]
        assert wait_for(lambda: get(one, 18080, "/index.html") == "200", 10), said()
        assert wait_for(lambda: get(two, 18081, "/", host="blog.example.test") == "200", 10), said()
        assert get(one, 18080, "/private/?x=[client%20198.51.100.9:1]", "bob:wrong") == "401"
        assert get(two, 18081, "/private/", "eve:wrong", "blog.example.test") == "401"

        def events():
            conn = sqlite3.connect(w.path("data", "WatchWB.db"))
            try:
                return conn.execute("SELECT ip, rule, vhost FROM events ORDER BY rowid").fetchall()
            finally:
                conn.close()
        assert wait_for(lambda: len(events()) == 2, 10), open(os.path.join(work, "web.log")).read()
        assert events() == [(one, "apache-auth", "shop.example.test"), (two, "nginx-auth", "blog.example.test")]
        for ip in (one, two):
            assert net.in_set("tarpit", ip) and not net.connect(ip)
        log = open(os.path.join(work, "web.log")).read()
        assert f"apache_access: {one} shop.example.test [" in log and f"nginx_access: {two} blog." in log
        assert get(two, 18081, "/.env", host="blog.example.test") != "200"      # dropped: it never reaches nginx
        assert wait_for(lambda: "lines read" in w.run("status").stdout)
        r = w.run("status")
        assert "refused (forged sender) 0" in r.stdout, r.stdout       # strict: every line carried credentials
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        w.run("stop", "--flush")
        for pidfile in ("httpd.pid", "nginx.pid"):
            try:
                os.kill(int(open(os.path.join(site, pidfile)).read()), 15)
            except (OSError, ValueError):
                pass
