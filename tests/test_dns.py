"""DNS classification against a real DNS server (dnsmasq on loopback)."""
import time

import pytest

from conftest import free_port
from lib.dnsclass import Background, Classifier, make_resolver


@pytest.fixture(scope="module")
def classifier(dnsmasq):
    return Classifier(make_resolver(dnsmasq.server, 1))


@pytest.mark.parametrize("ip, cls, name", [
    ("198.51.100.10", "TRUEHOST", "good.example.test"),
    ("198.51.100.20", "FAKEHOST", "fake.example.test"),     # PTR to a name whose A is elsewhere
    ("198.51.100.40", "FAKEHOST", "noaddr.example.test"),   # PTR to a name without any address
    ("198.51.100.30", "NXDOMAIN", None),
    ("2001:db8::10", "TRUEHOST", "good6.example.test"),
    ("2001:db8::20", "FAKEHOST", "fake.example.test"),
    ("2001:db8::30", "NXDOMAIN", None),
])
def test_classes(classifier, ip, cls, name):
    assert classifier.classify(ip) == (cls, name)


def test_silent_server_is_unknown():
    c = Classifier(make_resolver(("127.0.0.1", free_port()), 1))
    t = time.monotonic()
    assert c.classify("198.51.100.10").cls == "UNKNOWN"
    assert time.monotonic() - t < 3          # bounded by DNS_TIMEOUT, not hanging


def test_classify_off_is_unknown():
    assert Classifier(None, enabled=False).classify("198.51.100.30").cls == "UNKNOWN"


def test_background_answers_through_a_file_descriptor(classifier):
    import select
    bg = Background(classifier.classify, workers=2)
    try:
        for ip in ("198.51.100.10", "198.51.100.30"):
            bg.submit(ip)
        got = {}
        end = time.monotonic() + 5
        while len(got) < 2 and time.monotonic() < end:
            select.select([bg.fileno()], [], [], 1)
            got.update(dict(bg.answers()))
        assert got["198.51.100.10"].cls == "TRUEHOST"
        assert got["198.51.100.30"].cls == "NXDOMAIN"
        assert bg.pending() == 0
    finally:
        bg.close()
