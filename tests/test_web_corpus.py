"""WatchWB's shipped ladder over a corpus of web server lines, each with the verdict it must get.

tests/data/web-corpus.txt holds `EXPECT<TAB>LINE` under `## type` headings (see its
head for the EXPECT words): Apache 2.4 and nginx, error and access logs, IPv4 and
IPv6 clients, and lines captured from the real servers configured with `watcher.py
syslog-config apache|nginx`.  Each line goes through WatchWB's assembled filter as
`watcher.py test WB FILE --json` runs it (lib.testmode); an affair's virtual host is
checked on the filter's verdict.  198.51.100.0/24 appears only as client text: no
line, and no line built here, may count it.
"""
import json
import os
import random
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from corpus import load_corpus  # noqa: E402
from lib.addresses import parse_peer  # noqa: E402
from lib.rules import Filter  # noqa: E402
from lib.sender import split  # noqa: E402

WB_RULES = os.path.join(ROOT, "modules", "WatchWB", "rules")
CORPUS = os.path.join(ROOT, "tests", "data", "web-corpus.txt")
VICTIM = "198.51.100."


CASES, SECTIONS = load_corpus(CORPUS)


@pytest.fixture(scope="module")
def conf(tmp_path_factory):
    """The shipped settings only (no WATCHER_CONF of the caller's), for the test processes too."""
    path = tmp_path_factory.mktemp("wbconf") / "test.conf"
    path.write_text("# defaults\n")
    mp = pytest.MonkeyPatch()
    mp.setenv("WATCHER_CONF", str(path))
    yield str(path)
    mp.undo()


@pytest.fixture(scope="module")
def wb(conf):
    return Filter(WB_RULES, "WB")


def outcome(flt: Filter, line: str) -> str:
    """'ADDR@VHOST', 'ADDR@-', 'ignore', 'untreated' or 'none' (a decision without a valid address)."""
    v = flt.filter(split(line)[1])
    if v is None:
        return "untreated"
    if v.action != "inject":
        return "ignore"
    addr = parse_peer(v.ip)
    return f"{addr}@{v.vhost or '-'}" if addr else "none"


def matches(got: str, expect: str) -> bool:
    if expect == "none":
        return "@" not in got
    return got == expect


def test_every_section_has_three_lines_and_both_servers_are_covered():
    assert len(SECTIONS) >= 15
    for section, count in SECTIONS.items():
        assert count >= 3, f"section {section!r} has {count} lines"
    text = open(CORPUS, encoding="utf-8").read()
    for needle in ("apache2[", "httpd[", " nginx: ", "apache_access: ", "nginx_access: ", "[client 2001:db8::",
                   "client: 2001:db8::", "AH01617: ", "AH01618: ", "AH01790: ", "AH01794: ", "password mismatch",
                   "was not found in"):
        assert needle in text, needle


@pytest.mark.parametrize("n,section,expect,line", CASES, ids=[f"{n}:{s}" for n, s, _, _ in CASES])
def test_corpus_line(wb, n, section, expect, line):
    got = outcome(wb, line)
    assert matches(got, expect), f"{CORPUS}:{n}: expected {expect}, got {got}"


def test_the_victim_is_never_counted(wb):
    for n, _, _, line in CASES:
        assert VICTIM not in outcome(wb, line), f"{CORPUS}:{n}"


def test_watcher_test_json_is_one_object_per_line_as_design_says(conf, tmp_path):
    log = tmp_path / "web.log"
    log.write_text("".join(line + "\n" for _, _, _, line in CASES))
    r = subprocess.run([sys.executable, os.path.join(ROOT, "watcher.py"), "test", "WB", str(log), "--json"],
                       capture_output=True, text=True, timeout=60, env=dict(os.environ, WATCHER_CONF=conf))
    assert r.returncode == 0, r.stderr
    objs = [json.loads(l) for l in r.stdout.splitlines()]
    assert len(objs) == len(CASES)
    for k, (obj, (n, _, expect, _)) in enumerate(zip(objs, CASES), 1):
        assert obj["line"] == k and set(obj) == {"line", "rule", "ip", "action"}, obj
        if "@" in expect:
            assert (obj["action"], obj["ip"]) == ("inject", expect.split("@")[0]), f"{CORPUS}:{n}: {obj}"
        elif expect == "untreated":
            assert obj == {"line": k, "rule": None, "ip": None, "action": "untreated"}, f"{CORPUS}:{n}"
        else:
            assert obj["action"] == "ignore" and obj["ip"] is None, f"{CORPUS}:{n}: {obj}"
    # the summary counts the same lines the same way
    r = subprocess.run([sys.executable, os.path.join(ROOT, "watcher.py"), "test", "WB", str(log)],
                       capture_output=True, text=True, timeout=60, env=dict(os.environ, WATCHER_CONF=conf))
    assert r.returncode == 0, r.stderr
    want = {a: sum(o["action"] == a for o in objs) for a in ("inject", "ignore", "untreated")}
    assert r.stdout.splitlines()[0] == (f"Lines: {len(objs)}, inject: {want['inject']}, ignore: {want['ignore']}, "
                                        f"forward: 0, untreated: {want['untreated']}")


# ---- lines built here: the victim in every place a client writes -------------------
CLIENT_TEXT = ["198.51.100.9", "[client 198.51.100.9:1]", "198.51.100.9 shop.example.test", "client: 198.51.100.9,",
               '\\" 198.51.100.9 \\"', "/.env 198.51.100.9", "for 198.51.100.9", "198.51.100.9\\\\"]


def access_line(rng, peer, tag="apache_access"):
    """An access line of `peer` whose request, referer, agent and X-Forwarded-For carry the victim."""
    target = rng.choice(["/", "/x?", "/.env?", "/a/b?q="]) + rng.choice(CLIENT_TEXT).replace(" ", "+")
    referer = "https://" + rng.choice(CLIENT_TEXT) + "/"
    agent = rng.choice(["Mozilla/5.0 ", "sqlmap ", "", "Googlebot "]) + rng.choice(CLIENT_TEXT)
    forwarded = rng.choice(["198.51.100.9", "198.51.100.9, 198.51.100.10", "-"])
    status = rng.choice(["200", "404", "302", "400"])
    return (f'Nov 22 10:00:00 web1 {tag}: {peer} shop.example.test [22/Nov/2026:10:00:00 +0100] '
            f'"GET {target} HTTP/1.1" {status} 512 "{referer}" "{agent}" "{forwarded}" {peer}')


def error_line(rng, peer):
    text = rng.choice(CLIENT_TEXT)
    if rng.random() < 0.5:
        return (f"Nov 22 10:00:00 web1 apache2[4242]: [auth_basic:error] [pid 4242:tid 1] [vhost shop.example.test] "
                f"[client {peer}:4000] AH01617: user {text.replace(':', '')}: authentication failure for "
                f"\"/x?{text}\": Password Mismatch, referer: https://{text}/")
    return (f'Nov 22 10:00:00 web1 nginx: 2026/11/22 10:00:00 [error] 1#1: *5 user "{text.replace(":", "")}": '
            f'password mismatch, client: {peer}, server: shop.example.test, request: "GET /?{text} HTTP/1.1", '
            f'host: "{text}", referrer: "{text}"')


def test_client_text_never_chooses_the_address(wb):
    rng = random.Random(20261122)
    for _ in range(400):
        peer = rng.choice(["203.0.113.200", "2001:db8::200"])
        line = (access_line(rng, peer, rng.choice(["apache_access", "nginx_access"])) if rng.random() < 0.7
                else error_line(rng, peer))
        got = outcome(wb, line)
        assert VICTIM not in got, line
        assert "@" not in got or got.startswith(peer + "@"), (got, line)


def test_a_piece_of_a_cut_line_never_counts_its_first_field(wb):
    """Apache's logger cuts a long line into messages: a later piece begins with client text.
    Whatever that text imitates, the piece ends with the true peer, so it does not count."""
    rng = random.Random(7)
    for _ in range(200):
        whole = access_line(rng, "203.0.113.201")
        cut = rng.randrange(60, len(whole) - 20)
        forged = ('Nov 22 10:00:00 web1 apache_access: 198.51.100.9 shop.example.test '
                  '[22/Nov/2026:10:00:00 +0100] "GET /.env HTTP/1.1" 404 0 "-" "x" "-" ')
        for piece in (whole[:cut], "Nov 22 10:00:00 web1 apache_access: " + whole[cut:],
                      forged + whole[cut:], forged + "198.51.100.9 " + whole[cut:]):
            assert VICTIM not in outcome(wb, piece), piece
