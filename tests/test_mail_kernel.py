"""WatchMX and WatchMB against the real kernel: Watcher in one network namespace, the
attacker in another, DNS classes from a real dnsmasq in the server namespace.

Dovecot lines go into WatchMX's FIFO (as the system logger writes the mail
facility), WatchMX forwards them and WatchMB counts them; Postfix lines WatchMX
counts itself.  A TCP connect from the attacker tells whether the kernel drops it."""

from conftest import wait_for

DOVECOT = ("Nov 22 10:00:{i:02d} wsrv dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): "
           "user=<info>, method=PLAIN, rip={ip}, lip=10.88.0.1, TLS, session=<k{i}>")
REJECT = ("Nov 22 10:00:{i:02d} wsrv postfix/smtpd[4244]: NOQUEUE: reject: RCPT from unknown[{ip}]: 554 5.7.1 "
          "<victim@example.org>: Relay access denied; from=<spam@example.net> to=<victim@example.org> proto=ESMTP "
          "helo=<[10.88.0.5]>")
CONNECT = "Nov 22 10:00:{i:02d} wsrv postfix/smtpd[{i}]: connect from unknown[{ip}]"


def feed(w, template, ip, n, start=0):
    w.write([template.format(i=start + k, ip=ip) for k in range(n)], token="MX")


def test_dovecot_brute_force_and_postfix_rejects_end_in_custody_and_stay_there(netns_pair, watcher_in_srv):
    w, net = watcher_in_srv, netns_pair
    true_ip, nx_ip, decoy = "10.88.0.2", "10.88.0.3", "10.88.0.5"
    r = w.run("start")
    assert r.returncode == 0, r.stderr
    assert net.connect(true_ip) and net.connect(nx_ip)
    # a Dovecot brute force from a TRUEHOST: forwarded by WatchMX, counted by WatchMB
    feed(w, DOVECOT, true_ip, 1)
    assert wait_for(lambda: net.in_set("tarpit", true_ip))
    assert not net.connect(true_ip)
    feed(w, DOVECOT, true_ip, 3, start=1)
    assert wait_for(lambda: f"{true_ip} TRUEHOST affairs 4/5" in w.log("MB"))
    assert not net.in_set("custody", true_ip)
    feed(w, DOVECOT, true_ip, 1, start=4)
    assert wait_for(lambda: net.in_set("custody", true_ip))
    assert f"[dovecot-auth-failed] {true_ip} TRUEHOST affairs 5/5 -> DROP" in w.log("MB")
    assert true_ip not in w.log("MX")                       # forwarded, never counted twice
    # Postfix rejects a client it calls unknown[...]: NXDOMAIN by Watcher's own lookup, custody at the 2nd
    feed(w, REJECT, nx_ip, 1)
    assert wait_for(lambda: net.in_set("tarpit", nx_ip))
    assert wait_for(lambda: f"{nx_ip} NXDOMAIN affairs 4/5" in w.log("MX"))
    assert not net.in_set("custody", nx_ip)
    feed(w, REJECT, nx_ip, 1, start=1)
    assert wait_for(lambda: net.in_set("custody", nx_ip))
    assert f"[relay-denied] {nx_ip} NXDOMAIN affairs 5/5 -> DROP" in w.log("MX")
    assert not net.connect(nx_ip)
    # the HELO named another address: it never was counted
    assert net.connect(decoy) and not net.in_set("tarpit", decoy) and decoy not in w.log("MX")
    # stop leaves the firewall; a flushed kernel is restored from the shared database at start
    assert w.run("stop").returncode == 0
    assert net.in_set("custody", true_ip) and net.in_set("custody", nx_ip)
    for s in ("custody", "tarpit"):
        net.sh("ipset", "flush", s, ns=net.srv)
    assert net.connect(true_ip)
    r = w.run("start")
    assert r.returncode == 0, r.stderr
    assert net.in_set("custody", true_ip) and net.in_set("custody", nx_ip)
    assert not net.connect(true_ip) and not net.connect(nx_ip)
    r = w.run("status")
    assert "WatchMX: running" in r.stdout and "WatchMB: running" in r.stdout
    assert "in custody 2 (WatchMX and WatchMB together)" in r.stdout
    assert "WatchMX forwarded " in r.stdout


def test_unknown_ipv6_client_is_dropped_at_its_second_connect(netns_pair, watcher_in_srv):
    w, net = watcher_in_srv, netns_pair
    ip = net.atk_ip6                                   # no PTR in dnsmasq's ip6.arpa zone: NXDOMAIN
    assert w.run("start").returncode == 0
    assert net.connect(ip)
    feed(w, CONNECT, ip, 1, start=11)
    assert wait_for(lambda: net.in_set("tarpit6", ip))
    assert wait_for(lambda: f"{ip} NXDOMAIN affairs 4/5" in w.log("MX"))
    assert not net.in_set("custody6", ip)
    feed(w, CONNECT, ip, 1, start=12)
    assert wait_for(lambda: net.in_set("custody6", ip))
    assert not net.connect(ip)
    assert w.run("unban", ip).returncode == 0
    assert net.connect(ip)
