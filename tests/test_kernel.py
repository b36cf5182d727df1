"""The real kernel: Watcher in one network namespace, the attacker in another.

A TCP connect from the attacker gets through before the ban, times out after
it, and gets through again after unban; stop then start restores the sets from
the database; DNS classes come from a real dnsmasq inside the server namespace."""

from conftest import wait_for

FAIL = "Nov 22 10:00:{i:02d} wsrv sshd[4242]: Failed password for root from {ip} port {port} ssh2"
INVALID = "Nov 22 10:00:{i:02d} wsrv sshd-session[4243]: Invalid user admin from {ip} port {port}"


def feed(w, line, ip, n, start=0):
    w.write([line.format(i=start + k, ip=ip, port=40000 + start + k) for k in range(n)])


def test_brute_force_dropped_by_the_kernel_and_restored_after_stop_start(netns_pair, watcher_in_srv):
    w, net = watcher_in_srv, netns_pair
    true_ip, nx_ip, fake_ip = "10.88.0.2", "10.88.0.3", "10.88.0.4"
    r = w.run("start")
    assert r.returncode == 0, r.stderr
    assert net.connect(true_ip) and net.connect(nx_ip)
    # TRUEHOST: tarpit from the first affair, custody at the fifth
    feed(w, FAIL, true_ip, 1)
    assert wait_for(lambda: net.in_set("tarpit", true_ip))
    assert not net.connect(true_ip)
    feed(w, FAIL, true_ip, 3, start=1)
    assert wait_for(lambda: "affairs 4/5" in w.log())
    assert not net.in_set("custody", true_ip)
    feed(w, FAIL, true_ip, 1, start=4)
    assert wait_for(lambda: net.in_set("custody", true_ip))
    # NXDOMAIN and FAKEHOST: custody at the second affair
    for ip in (nx_ip, fake_ip):
        feed(w, INVALID, ip, 1)
        assert wait_for(lambda: net.in_set("tarpit", ip))
        assert wait_for(lambda: f"{ip} " in w.log() and ("NXDOMAIN" in w.log() or "FAKEHOST" in w.log()))
        assert not net.in_set("custody", ip)
        feed(w, INVALID, ip, 1, start=1)
        assert wait_for(lambda: net.in_set("custody", ip))
    for line in (f"{nx_ip} NXDOMAIN affairs 5/5 -> DROP", f"{fake_ip} FAKEHOST affairs 5/5 -> DROP",
                 f"{true_ip} TRUEHOST affairs 5/5 -> DROP"):
        assert wait_for(lambda: line in w.log()), line      # the log line follows the kernel change
    assert not net.connect(nx_ip)
    # stop leaves the firewall; a flushed kernel is restored from the database at start
    assert w.run("stop").returncode == 0
    assert net.in_set("custody", true_ip)
    for s in ("custody", "tarpit"):
        net.sh("ipset", "flush", s, ns=net.srv)
    assert net.connect(true_ip)
    assert w.run("start").returncode == 0
    assert all(net.in_set("custody", ip) for ip in (true_ip, nx_ip, fake_ip))
    assert not net.connect(true_ip)
    r = w.run("status")
    assert "in custody 3" in r.stdout and "custody 3" in r.stdout and "WatchLG: running" in r.stdout
    # unban: the kernel lets it through at once, the database forgets the affairs
    assert w.run("unban", true_ip).returncode == 0
    assert net.connect(true_ip)
    assert not net.in_set("custody", true_ip)


def test_ipv6_ban_unban_and_whitelist_wins(netns_pair, watcher_in_srv):
    w, net = watcher_in_srv, netns_pair
    assert w.run("start").returncode == 0
    assert net.connect(net.atk_ip6)
    r = w.run("ban", net.atk_ip6)
    assert r.returncode == 0, r.stderr
    assert net.in_set("custody6", net.atk_ip6) and not net.connect(net.atk_ip6)
    assert w.run("unban", net.atk_ip6).returncode == 0
    assert net.connect(net.atk_ip6)
    # a whitelisted network gets through even with its address in custody (RETURN comes first)
    ip = net.atk_ips[3]
    net.sh("ipset", "add", "custody", ip, ns=net.srv)
    assert not net.connect(ip)
    net.sh("ipset", "add", "whitelist", "10.88.0.0/29", ns=net.srv)
    try:
        assert net.connect(ip)
    finally:
        net.sh("ipset", "del", "whitelist", "10.88.0.0/29", ns=net.srv)
        net.sh("ipset", "del", "custody", ip, ns=net.srv)


def test_start_is_idempotent_and_puts_back_a_removed_jump(netns_pair, watcher_in_srv):
    w, net = watcher_in_srv, netns_pair
    assert w.run("start").returncode == 0
    rules = net.sh("iptables", "-S", ns=net.srv).stdout
    assert w.run("start").returncode == 0
    assert net.sh("iptables", "-S", ns=net.srv).stdout == rules
    assert rules.index("-A INPUT -j WATCHER") < rules.index("-A WATCHER")
    assert "-A WATCHER -m set --match-set whitelist src -j RETURN" in rules.splitlines()[4:][0] or \
        rules.splitlines().index("-A WATCHER -m set --match-set whitelist src -j RETURN") < \
        rules.splitlines().index("-A WATCHER -m set --match-set custody src -j DROP")
    net.sh("iptables", "-D", "INPUT", "-j", "WATCHER", ns=net.srv)
    assert "warning: iptables INPUT has no jump to WATCHER" in w.run("status").stdout
    assert w.run("start").returncode == 0
    assert "-A INPUT -j WATCHER" in net.sh("iptables", "-S", ns=net.srv).stdout


def test_stop_flush_removes_only_what_watcher_made(netns_pair, watcher_in_srv):
    w, net = watcher_in_srv, netns_pair
    net.sh("ipset", "create", "admins-own", "hash:ip", ns=net.srv)
    try:
        assert w.run("start").returncode == 0
        r = w.run("stop", "--flush")
        assert r.returncode == 0 and "custody" in r.stdout
        names = net.sh("ipset", "list", "-n", ns=net.srv).stdout.split()
        assert names == ["admins-own"]
        assert "WATCHER" not in net.sh("iptables", "-S", ns=net.srv).stdout
    finally:
        net.sh("ipset", "destroy", "admins-own", ns=net.srv, check=False)


def test_a_foreign_set_of_the_wrong_type_is_not_taken_over(netns_pair, watcher_in_srv):
    w, net = watcher_in_srv, netns_pair
    w.run("stop", "--flush")
    net.sh("ipset", "create", "custody", "hash:net", ns=net.srv)
    try:
        r = w.run("start")
        assert r.returncode != 0 and "not Watcher's" in r.stderr and "Traceback" not in r.stderr
    finally:
        net.sh("ipset", "destroy", "custody", ns=net.srv, check=False)


def test_a_restarted_module_puts_back_what_its_database_holds(netns_pair, watcher_in_srv):
    """A module killed between its database commit and the kernel change: the
    supervisor restarts it and the kernel agrees with the database again."""
    import os
    import signal
    w, net = watcher_in_srv, netns_pair
    assert w.run("start").returncode == 0
    ip = net.atk_ips[2]
    assert w.run("ban", ip).returncode == 0
    net.sh("ipset", "del", "custody", ip, ns=net.srv)          # the kernel lost it, the database has it
    assert net.connect(ip)
    pidfile = w.path("run", "WatchLG.pid")
    old = int(open(pidfile).read())
    os.kill(old, signal.SIGKILL)
    assert wait_for(lambda: net.in_set("custody", ip), 10)
    assert not net.connect(ip)
    assert int(open(pidfile).read()) != old
    w.run("unban", ip)
