"""The affair ladder: tarpit timeouts grow, custody at MAX_AFFAIRS, the DNS preset,
successful logins, the whitelist and companion lines.  Real sqlite, recording firewall;
with a real DNS server where classification matters."""
import ipaddress
import os

import pytest

from lib import db as dbmod
from lib.addresses import Protected
from lib.affairs import Tracker
from lib.db import Database
from lib.dnsclass import Classification, Classifier, make_resolver
from lib.firewall import Recording
from lib.log import NullLog
from conftest import ROOT, free_port

A = ipaddress.ip_address


@pytest.fixture
def database(tmp_path):
    path = str(tmp_path / "WatchLG.db")
    dbmod.create(path, os.path.join(ROOT, "lib", "schema.sql"))
    d = Database(path)
    yield d
    d.close()


def tracker(database, fw, classify=None, whitelist=(), own=()):
    t = Tracker("LG", database, fw, Protected([ipaddress.ip_network(n) for n in whitelist], [A(o) for o in own]),
                max_affairs=5, tarpit_timeout=60, log=NullLog())
    if classify:      # synchronous DNS: answer at once, as the background would a moment later
        t.classify = lambda ip: t.classified(ip, classify(ip), now=t._now)
    return t


def feed(t, ip, n, start=1000.0, rule="failed-password"):
    out = []
    for i in range(n):
        t._now = start + i
        out.append(t.inject(A(ip), rule, port=40000 + i, now=start + i))
    return out


def test_truehost_climbs_the_tarpit_then_custody_at_five(database):
    fw = Recording()
    t = tracker(database, fw, classify=lambda ip: Classification("TRUEHOST", "good.example.test"))
    d = feed(t, "198.51.100.10", 5)
    assert [x.outcome for x in d] == ["TARPIT"] * 4 + ["DROP"]
    assert [x.seconds for x in d[:4]] == [60, 120, 180, 240]
    assert fw.sets["custody"] == {"198.51.100.10": None}
    host = database.get("198.51.100.10")
    assert (host.cls, host.affairs, host.dropped) == ("TRUEHOST", 5, 1004.0)


@pytest.mark.parametrize("cls", ["NXDOMAIN", "FAKEHOST"])
def test_suspects_go_to_custody_on_the_second_affair(database, cls):
    fw = Recording()
    t = tracker(database, fw, classify=lambda ip: Classification(cls))
    d = feed(t, "198.51.100.30", 2)
    assert d[0].outcome == "TARPIT"
    assert database.get("198.51.100.30").affairs == 5
    assert "198.51.100.30" in fw.sets["custody"]


def test_late_dns_answer_redecides_with_affairs_seen_since(database):
    fw = Recording()
    t = tracker(database, fw)          # no answer yet: counts from 1 as UNKNOWN
    asked = []
    t.classify = asked.append
    feed(t, "198.51.100.30", 2)
    assert asked == ["198.51.100.30"]
    assert database.get("198.51.100.30").affairs == 2
    assert "198.51.100.30" not in fw.sets.get("custody", {})
    d = t.classified("198.51.100.30", Classification("NXDOMAIN"), now=1002)
    assert d.outcome == "DROP" and d.affairs == 5          # MAX-1 plus the one seen since the first
    assert "198.51.100.30" in fw.sets["custody"]


def test_unknown_counts_from_one_with_a_real_silent_dns(database):
    fw = Recording()
    silent = Classifier(make_resolver(("127.0.0.1", free_port()), 1))
    t = tracker(database, fw, classify=silent.classify)
    d = feed(t, "198.51.100.30", 2)
    assert [x.affairs for x in d] == [1, 2]
    assert database.get("198.51.100.30").cls == "UNKNOWN"


def test_real_dns_ladder(database, dnsmasq):
    c = Classifier(make_resolver(dnsmasq.server, 1))
    fw = Recording()
    t = tracker(database, fw, classify=c.classify)
    assert [x.outcome for x in feed(t, "198.51.100.10", 5)] == ["TARPIT"] * 4 + ["DROP"]   # TRUEHOST
    assert [x.outcome for x in feed(t, "198.51.100.30", 2)] == ["TARPIT", "DROP"]          # NXDOMAIN
    assert [x.outcome for x in feed(t, "198.51.100.20", 2)] == ["TARPIT", "DROP"]          # FAKEHOST
    assert [x.outcome for x in feed(t, "2001:db8::30", 2)] == ["TARPIT", "DROP"]
    assert set(fw.sets["custody"]) == {"198.51.100.10", "198.51.100.30", "198.51.100.20"}
    assert set(fw.sets["custody6"]) == {"2001:db8::30"}
    assert database.get("198.51.100.20").cls == "FAKEHOST"


def test_whitelist_and_own_addresses_are_never_counted(database):
    fw = Recording()
    t = tracker(database, fw, whitelist=["203.0.113.0/24"], own=["192.0.2.2"])
    for ip in ("203.0.113.77", "192.0.2.2"):
        assert {x.outcome for x in feed(t, ip, 6)} == {"PROTECTED"}
        assert database.get(ip) is None
    assert fw.calls == []


def test_successful_login_clears_affairs_and_tarpit_not_custody(database):
    fw = Recording()
    t = tracker(database, fw)
    feed(t, "198.51.100.50", 3)
    assert t.success(A("198.51.100.50"), "accepted", now=1010).outcome == "CLEARED"
    assert database.get("198.51.100.50").affairs == 0
    assert "198.51.100.50" not in fw.sets["tarpit"]
    feed(t, "198.51.100.60", 5)
    t.success(A("198.51.100.60"), "accepted", now=1010)
    assert database.get("198.51.100.60").dropped is not None
    assert "198.51.100.60" in fw.sets["custody"]


def test_lines_of_one_attempt_count_once_repeats_count_each(database):
    fw = Recording()
    t = tracker(database, fw)
    ip = A("198.51.100.70")
    t.inject(ip, "invalid-user", port=5555, now=100)
    assert t.inject(ip, "failed-password-invalid", port=5555, now=100.2).outcome == "COMPANION"
    t.inject(ip, "failed-password-invalid", port=5555, now=102)    # second password on the same connection
    assert database.get("198.51.100.70").affairs == 2
    t.inject(ip, "failed-password-invalid", port=5555, now=200)    # port reused much later: a new attempt
    assert database.get("198.51.100.70").affairs == 3


def test_portless_companions_pair_with_the_attempt_they_belong_to(database):
    fw = Recording()
    t = tracker(database, fw)
    ip = A("198.51.100.71")
    # keyboard-interactive through PAM: sshd writes the PAM error, then its own line with the port
    for n, at in enumerate((100, 101, 102)):
        t.inject(ip, "pam-failure", port=None, now=at)
        t.inject(ip, "failed-keyboard-interactive", port=6000, now=at + 0.1)
    assert database.get("198.51.100.71").affairs == 3
    # 'User X from A not allowed because ...' (no port), then the failed password of that connection
    ip2 = A("198.51.100.72")
    for n, port in enumerate((7001, 7002)):
        t.inject(ip2, "user-not-allowed", port=None, now=200 + n)
        t.inject(ip2, "invalid-user-password", port=port, now=200.5 + n)
    assert database.get("198.51.100.72").affairs == 2
    # port-less lines alone still count one each
    ip3 = A("198.51.100.73")
    for n in range(3):
        t.inject(ip3, "pam-failure", port=None, now=300 + n)
    assert database.get("198.51.100.73").affairs == 3
