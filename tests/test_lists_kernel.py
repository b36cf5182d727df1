"""Block lists against the real kernel: Watcher in one network namespace, the
attacker in another, an HTTP server on the server namespace's loopback that
serves list files written here (both Spamhaus formats, a truncated one, a
404, one cut short, a slow one).  What counts is whether the attacker's TCP
connect still gets through: after a load, after a failed load, with the
whitelist and the blacklist, IPv4 and IPv6, and after a boot without network."""
import subprocess
import sys
import time

import pytest

import listserver
from conftest import one_clear_line, tool, wait_for
from listserver import Folder, drop_json

PORT = 8099
FAIL = "Nov 22 10:00:{i:02d} wsrv sshd[4242]: Failed password for root from {ip} port {port} ssh2"


class Web(Folder):
    def url(self, name):
        return f"http://127.0.0.1:{PORT}/{name}"


@pytest.fixture(scope="module")
def web(netns_pair, tmp_path_factory):
    root = str(tmp_path_factory.mktemp("www"))
    proc = subprocess.Popen(["ip", "netns", "exec", netns_pair.srv, sys.executable, listserver.__file__, root,
                             str(PORT)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    w = Web(root)
    w["ready"] = "yes\n"
    probe = f"import urllib.request; urllib.request.urlopen('{w.url('ready')}', timeout=0.5).read()"
    try:
        if not wait_for(lambda: netns_pair.sh(sys.executable, "-c", probe, ns=netns_pair.srv,
                                              check=False).returncode == 0, 10, 0.1):
            pytest.fail("the list server in the server namespace did not come up")
        yield w
    finally:
        proc.terminate()
        proc.wait(timeout=5)


@pytest.fixture
def lw(instance, netns_pair, web, tmp_path):
    """A Watcher in the server namespace whose lists come from the namespace's web server."""
    feeds = tmp_path / "feeds.conf"
    feeds.write_text("# none yet\n")
    w = instance(prefix=["ip", "netns", "exec", netns_pair.srv], FIREWALL="ipset", FEEDS=str(feeds),
                 SPAMHAUS_DROP_URL=web.url("drop_v4.json"), SPAMHAUS_DROPV6_URL=web.url("drop_v6.json"))
    w.feeds = str(feeds)
    yield w
    w.run("stop", "--flush")


def setting(w, key, value):
    """Later lines win: appending changes a setting for the next command."""
    with open(w.conf, "a") as f:
        f.write(f"{key}={value}\n")


def entries(net, name):
    r = net.sh("ipset", "list", name, "-t", ns=net.srv, check=False)
    for line in r.stdout.splitlines():
        if line.startswith("Number of entries:"):
            return int(line.split(":")[1])
    return None


def test_drop_list_is_dropped_by_the_kernel_and_a_failed_load_changes_nothing(netns_pair, web, lw):
    net = netns_pair
    web["drop_v4.json"] = drop_json(["10.88.0.2/31", "203.0.113.0/24", "198.51.100.0/24"])
    web["drop_v6.json"] = drop_json(["fd00:88::2/127", "2001:db8:100::/48"])
    assert net.connect("10.88.0.2") and net.connect(net.atk_ip6)
    r = tool(lw, "dynloaders/spamhaus")
    assert r.returncode == 0, r.stdout + r.stderr
    assert entries(net, "highjackers") == 3 and entries(net, "highjackers6") == 2
    assert not net.connect("10.88.0.2") and not net.connect("10.88.0.3")
    assert net.connect("10.88.0.4")
    assert not net.connect(net.atk_ip6)
    # within the hour: no download (the file is gone from the server), the cached copy is loaded
    del web["drop_v4.json"]
    r = tool(lw, "dynloaders/spamhaus")
    assert r.returncode == 0 and "cached copy" in r.stdout and "--force" in r.stdout, r.stdout + r.stderr
    # every kind of failed download leaves the sets and the traffic as they were
    web["trunc.json"] = drop_json(["10.88.0.4/31"], metadata=False)
    web["empty.json"] = drop_json([])
    for url, extra, why in ((web.url("drop_v4.json"), [], "HTTP 404"),
                            (web.url("trunc.json"), [], "truncated"),
                            (web.url("cut"), [], "truncated"),
                            (web.url("empty.json"), [], "no entries"),
                            (web.url("slow"), ["--timeout", "1"], "within 1 s")):
        setting(lw, "SPAMHAUS_DROP_URL", url)
        started = time.monotonic()
        one_clear_line(tool(lw, "dynloaders/spamhaus", "--force", *extra), "highjackers", why,
                           "keep what they held")
        assert time.monotonic() - started < 10
        assert entries(net, "highjackers") == 3 and entries(net, "highjackers6") == 2
        assert not net.connect("10.88.0.2") and net.connect("10.88.0.4")
    assert "FAILED: " in lw.run("status").stdout
    # the legacy text format loads alike, and replaces the set by swap
    web["drop.txt"] = "; Spamhaus DROP List 2026/11/22 - (c) test\n; Last-Modified: now\n10.88.0.4/31 ; SBL7\n"
    setting(lw, "SPAMHAUS_DROP_URL", web.url("drop.txt"))
    r = tool(lw, "dynloaders/spamhaus", "--force")
    assert r.returncode == 0, r.stdout + r.stderr
    assert entries(net, "highjackers") == 1
    assert not net.connect("10.88.0.4") and net.connect("10.88.0.2")


def test_the_whitelist_wins_over_a_drop_list_ipv4_and_ipv6(netns_pair, web, lw):
    net = netns_pair
    web["drop_v4.json"] = drop_json(["10.88.0.2/31"])
    web["drop_v6.json"] = drop_json(["fd00:88::2/127"])
    assert tool(lw, "dynloaders/spamhaus", "--force").returncode == 0
    assert not net.connect("10.88.0.2") and not net.connect(net.atk_ip6)
    with open(lw.path("whitelist"), "w") as f:
        f.write("# let these through\n10.88.0.2\nfd00:88::2\nnot-an-address\n")
    r = tool(lw, "Whitelist")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{lw.path('whitelist')}:4: not an address" in r.stdout
    assert net.connect("10.88.0.2") and net.connect(net.atk_ip6)
    assert not net.connect("10.88.0.3")          # the rest of the listed network stays dropped
    # taken off the whitelist: dropped again, without a restart
    with open(lw.path("whitelist"), "w") as f:
        f.write("# nobody\n")
    assert tool(lw, "Whitelist").returncode == 0
    assert not net.connect("10.88.0.2") and not net.connect(net.atk_ip6)


def test_blacklist_drops_ipv4_and_ipv6_and_the_whitelist_still_wins(netns_pair, lw):
    net = netns_pair
    with open(lw.path("blacklist"), "w") as f:
        f.write("10.88.0.5   # a pest\nfd00:88::2/128\n0.0.0.0/0\n10.88.0.0/24\n")
    r = tool(lw, "Blacklist")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{lw.path('blacklist')}:3: 0.0.0.0/0 is wider than /8" in r.stdout
    assert f"{lw.path('blacklist')}:4: 10.88.0.0/24 holds this host's own address 10.88.0.1" in r.stdout
    assert not net.connect("10.88.0.5") and not net.connect(net.atk_ip6)
    assert net.connect("10.88.0.4")
    with open(lw.path("whitelist"), "w") as f:
        f.write("10.88.0.5\n")
    assert tool(lw, "Whitelist").returncode == 0
    assert net.connect("10.88.0.5")
    with open(lw.path("blacklist"), "w") as f:
        f.write("# emptied\n")
    assert tool(lw, "Blacklist").returncode == 0
    assert entries(net, "blacklist6") == 0 and net.connect(net.atk_ip6)


def test_feeds_load_into_their_own_sets_after_highjackers(netns_pair, web, lw):
    import gzip
    net = netns_pair
    web["attackers.txt"] = "# a plain feed\n10.88.0.4\nfd00:88::2 ; v6 too\n"
    web["nixspam-ip.dump.gz"] = gzip.compress(b"1700000000 10.88.0.5\n1700000001 203.0.113.9\n")
    with open(lw.feeds, "w") as f:
        f.write(f"atk_plain {web.url('attackers.txt')}\natk_nix {web.url('nixspam-ip.dump.gz')} nixspam 30m\n")
    r = tool(lw, "dynloaders/feeds")
    assert r.returncode == 0, r.stdout + r.stderr
    assert entries(net, "atk_plain") == 1 and entries(net, "atk_plain6") == 1 and entries(net, "atk_nix") == 2
    rules = [l for l in net.sh("iptables", "-S", "WATCHER", ns=net.srv).stdout.splitlines() if "--match-set" in l]
    order = [l.split("--match-set ")[1].split()[0] for l in rules]
    assert order == ["whitelist", "highjackers", "atk_plain", "atk_nix", "custody", "tarpit", "blacklist"]
    assert not net.connect("10.88.0.4") and not net.connect("10.88.0.5") and not net.connect(net.atk_ip6)
    assert net.connect("10.88.0.2")
    # one feed failing does not stop the other, and leaves its own set as it was
    del web["attackers.txt"]
    r = tool(lw, "dynloaders/feeds", "--force")
    one_clear_line(r, "atk_plain", "HTTP 404")
    assert "atk_nix: loaded 2 IPv4" in r.stdout
    assert entries(net, "atk_plain") == 1 and not net.connect("10.88.0.4")


def test_a_feed_taken_out_of_feeds_conf_stops_dropping_and_its_sets_go(netns_pair, web, lw):
    net = netns_pair
    web["a.txt"] = "10.88.0.4\n"
    web["b.txt"] = "10.88.0.5\n"
    with open(lw.feeds, "w") as f:
        f.write(f"atk_a {web.url('a.txt')}\natk_b {web.url('b.txt')}\n")
    r = tool(lw, "dynloaders/feeds")
    assert r.returncode == 0, r.stdout + r.stderr
    assert not net.connect("10.88.0.4") and not net.connect("10.88.0.5")
    net.sh("ipset", "create", "admins_own", "hash:net", ns=net.srv)    # not Watcher's: never touched
    try:
        with open(lw.feeds, "w") as f:
            f.write(f"atk_a {web.url('a.txt')}\n")
        r = tool(lw, "dynloaders/feeds")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "removed: atk_b, atk_b6" in r.stdout
        assert entries(net, "atk_b") is None and entries(net, "atk_b6") is None and entries(net, "atk_a") == 1
        assert net.connect("10.88.0.5") and not net.connect("10.88.0.4")
        with open(lw.feeds, "w") as f:                  # no feed left: the next run still takes it out
            f.write("# none\n")
        r = tool(lw, "dynloaders/feeds")
        assert r.returncode == 0 and "removed: atk_a, atk_a6" in r.stdout, r.stdout + r.stderr
        assert net.connect("10.88.0.4") and entries(net, "atk_a") is None
        assert entries(net, "admins_own") == 0 and entries(net, "highjackers") is not None
        with open(lw.feeds, "w") as f:                  # stop --flush takes a feed taken out with the rest
            f.write(f"atk_c {web.url('a.txt')}\n")
        assert tool(lw, "dynloaders/feeds").returncode == 0 and entries(net, "atk_c") == 1
        with open(lw.feeds, "w") as f:
            f.write("# none\n")
        r = lw.run("stop", "--flush")
        assert r.returncode == 0 and "atk_c, atk_c6" in r.stdout, r.stdout + r.stderr
        assert entries(net, "atk_c") is None and entries(net, "admins_own") == 0
    finally:
        net.sh("ipset", "destroy", "admins_own", ns=net.srv, check=False)


def test_start_loads_the_last_good_copies_at_boot_without_downloading(netns_pair, web, lw):
    net = netns_pair
    assert lw.run("Prep").returncode == 0
    web["drop_v4.json"] = drop_json(["10.88.0.2/31"])
    web["drop_v6.json"] = drop_json(["fd00:88::2/127"])
    assert tool(lw, "dynloaders/spamhaus", "--force").returncode == 0
    # "reboot": the kernel forgets everything, the network (the list server's files) is gone
    assert lw.run("stop", "--flush").returncode == 0
    assert entries(net, "highjackers") is None
    del web["drop_v4.json"]
    del web["drop_v6.json"]
    r = lw.run("start")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "highjackers: 1 IPv4 and 1 IPv6 networks from the cached copy" in r.stdout
    assert entries(net, "highjackers") == 1 and entries(net, "highjackers6") == 1
    assert not net.connect("10.88.0.2") and not net.connect(net.atk_ip6)
    status = lw.run("status").stdout
    assert "highjackers: 2 entries, last load" in status and "ok: cached copy of" in status
    # a second start (Watcher running, sets full) changes nothing
    assert lw.run("start").returncode == 0 and entries(net, "highjackers") == 1


def test_a_module_never_counts_an_address_whitelisted_while_it_runs(netns_pair, lw):
    net = netns_pair
    assert lw.run("Prep").returncode == 0
    assert lw.run("start").returncode == 0
    with open(lw.path("whitelist"), "w") as f:
        f.write("10.88.0.4\n")
    r = tool(lw, "Whitelist")
    assert r.returncode == 0 and "told WatchLG (pid" in r.stdout, r.stdout + r.stderr
    assert wait_for(lambda: "SIGHUP: whitelist re-read" in lw.log())
    lw.write([FAIL.format(i=k, ip="10.88.0.4", port=41000 + k) for k in range(6)]
             + [FAIL.format(i=10, ip="10.88.0.5", port=42000)])
    assert wait_for(lambda: net.in_set("tarpit", "10.88.0.5"))     # lines are read in order: .4's are done
    assert not net.in_set("tarpit", "10.88.0.4") and not net.in_set("custody", "10.88.0.4")
    db = lw.db()
    try:
        assert db.get("10.88.0.4") is None and db.get("10.88.0.5") is not None
    finally:
        db.close()
    assert net.connect("10.88.0.4") and not net.connect("10.88.0.5")
