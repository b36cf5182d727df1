"""WatchWB against the real kernel: Watcher in one network namespace, the attacker in another.

Web server lines written into WatchWB's FIFO (Apache's and nginx's password
failures, IPv4 and IPv6, and a request flood with the lines' own timestamps) end
with the source in the kernel's sets, and the attacker's next TCP connect times
out; a crawler at its normal pace keeps its connection.  DNS classes come from a
real dnsmasq inside the server namespace (10.88.0.2 and .5 TRUEHOST, .3 NXDOMAIN)."""
import sqlite3
import time

import pytest

from conftest import wait_for

APACHE = ("Nov 22 10:00:{i:02d} wsrv apache2[4242]: [auth_basic:error] [pid 4242:tid 4243] [vhost shop.example.test] "
          "[client {ip}:{port}] AH01617: user admin: authentication failure for \"/admin\": Password Mismatch")
NGINX = ("Nov 22 10:00:{i:02d} wsrv nginx: 2026/11/22 10:00:{i:02d} [error] 4242#4242: *{port} user \"admin\": "
         "password mismatch, client: {ip}, server: blog.example.test, request: \"GET /admin HTTP/1.1\", "
         "host: \"blog.example.test\"")


def access(ip, t, vhost="shop.example.test", agent="Mozilla/5.0"):
    when = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(t))
    return (f'Nov 22 10:00:00 wsrv nginx_access: {ip} {vhost} [{when}] "GET /p/{int(t * 10)} HTTP/1.1" 200 512 '
            f'"-" "{agent}" "-" {ip}')


@pytest.fixture
def watcher(instance, netns_pair, dns_in_srv):
    def make(**settings):
        values = dict(FIREWALL="ipset", DNS_CLASSIFY="on", DNS_SERVER=f"127.0.0.1:{dns_in_srv.port}", DNS_TIMEOUT=1,
                      MAX_AFFAIRS=5, TARPIT_TIMEOUT=60)
        values.update(settings)
        w = instance(prefix=["ip", "netns", "exec", netns_pair.srv], **values)
        r = w.run("Prep")
        assert r.returncode == 0, r.stdout + r.stderr
        made.append(w)
        return w
    made = []
    yield make
    for w in made:
        w.run("stop", "--flush")


def feed(w, template, ip, n, start=0):
    w.write([template.format(i=start + k, ip=ip, port=40000 + start + k) for k in range(n)], "WB")


def vhosts(w):
    conn = sqlite3.connect(w.path("data", "WatchWB.db"))
    try:
        return dict(conn.execute("SELECT ip, group_concat(DISTINCT vhost) FROM events GROUP BY ip").fetchall())
    finally:
        conn.close()


def test_password_guessing_ends_in_custody_and_the_next_connect_times_out(netns_pair, watcher):
    net, w = netns_pair, watcher()
    true_ip, nx_ip, v6 = "10.88.0.2", "10.88.0.3", net.atk_ip6
    assert w.run("start").returncode == 0
    assert net.connect(true_ip) and net.connect(nx_ip) and net.connect(v6)
    # Apache basic auth, TRUEHOST: tarpit from the first failure, custody at the fifth
    feed(w, APACHE, true_ip, 1)
    assert wait_for(lambda: net.in_set("tarpit", true_ip))
    assert not net.connect(true_ip)
    feed(w, APACHE, true_ip, 3, start=1)
    assert wait_for(lambda: "affairs 4/5" in w.log("WB"))
    assert not net.in_set("custody", true_ip)
    feed(w, APACHE, true_ip, 1, start=4)
    assert wait_for(lambda: net.in_set("custody", true_ip))
    # nginx basic auth, NXDOMAIN: custody at the second failure
    feed(w, NGINX, nx_ip, 1)
    assert wait_for(lambda: net.in_set("tarpit", nx_ip))
    assert wait_for(lambda: f"{nx_ip} NXDOMAIN" in w.log("WB") or f"{nx_ip} UNKNOWN" in w.log("WB"))
    feed(w, NGINX, nx_ip, 1, start=1)
    assert wait_for(lambda: net.in_set("custody", nx_ip))
    assert not net.connect(nx_ip)
    # IPv6 as Apache 2.4 writes it: [client fd00:88::2:PORT]
    feed(w, APACHE, v6, 1)
    assert wait_for(lambda: net.in_set("tarpit6", v6))
    assert not net.connect(v6)
    assert net.connect(net.atk_ips[3])                      # an innocent neighbour still gets through
    assert vhosts(w) == {true_ip: "shop.example.test", nx_ip: "blog.example.test", v6: "shop.example.test"}
    r = w.run("status")
    assert "WatchWB: running" in r.stdout and "top virtual hosts by affairs: shop.example.test 6, blog.example.test 2" \
        in r.stdout, r.stdout


def test_a_flood_ends_in_the_tarpit_and_a_crawler_keeps_its_connection(netns_pair, watcher):
    net, w = netns_pair, watcher(FLOOD_REQUESTS=20, FLOOD_WINDOW=10)
    flooder, crawler = "10.88.0.5", "10.88.0.4"
    assert w.run("start").returncode == 0
    assert net.connect(flooder) and net.connect(crawler)
    t0 = 1795338000.0
    googlebot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
    w.write([access(crawler, t0 + 2 * k, "blog.example.test", googlebot) for k in range(60)], "WB")    # 5 per 10 s
    w.write([access(flooder, t0 + k / 4) for k in range(20)], "WB")                  # 20 in 5 s: the limit
    time.sleep(0.5)
    assert not net.in_set("tarpit", flooder) and net.connect(flooder)
    w.write([access(flooder, t0 + 5)], "WB")                                          # one more: a flood
    assert wait_for(lambda: net.in_set("tarpit", flooder))
    assert not net.connect(flooder)
    line = next(l for l in w.log("WB").splitlines() if "[flood] 10.88.0.5 " in l)
    # UNKNOWN until DNS answers: counted from 1; the line names the virtual host flooded
    assert line.endswith("affairs 1/5 -> TARPIT 60s on shop.example.test")
    assert not net.in_set("tarpit", crawler) and not net.in_set("custody", crawler)
    assert net.connect(crawler)
    assert vhosts(w) == {flooder: "shop.example.test"}
