"""WatchLG's shipped ladder over a corpus of sshd lines with the verdict each must get.

tests/data/sshd-corpus.txt holds `EXPECT<TAB>LINE` under `## type` headings
(see its head for the EXPECT words).  Each line goes through the module's
assembled filter and `parse_peer`, as `watcher.py test LG` does it; then again
through a copy of the ladder with the disabled probe rules enabled.
"""
import os
import shutil
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from corpus import load_corpus  # noqa: E402
from lib.addresses import parse_peer  # noqa: E402
from lib.rules import Filter  # noqa: E402

RULES = os.path.join(ROOT, "modules", "WatchLG", "rules")
CORPUS = os.path.join(ROOT, "tests", "data", "sshd-corpus.txt")


CASES, SECTIONS = load_corpus(CORPUS)


def outcome(flt: Filter, line: str) -> str:
    """What the line does: 'inject ADDR', 'success ADDR', 'ignore', 'untreated' or 'invalid'."""
    v = flt.filter(line)
    if v is None:
        return "untreated"
    if v.action in ("ignore", "forward"):
        return v.action
    addr = parse_peer(v.ip)
    return f"{v.action} {addr}" if addr is not None else "invalid"


def canonical(text: str) -> str:
    addr = parse_peer(text)
    assert addr is not None, f"corpus names an address that parse_peer refuses: {text}"
    return str(addr)


def check(expect: str, got: str, probes_enabled: bool) -> bool:
    if expect.startswith("probe:"):
        return got == f"inject {canonical(expect[6:])}" if probes_enabled else not got.startswith("inject")
    if expect.startswith("success:"):
        return got == f"success {canonical(expect[8:])}"
    if expect == "none":
        return got in ("ignore", "untreated", "invalid")
    if expect == "ignore":
        return got == "ignore" or (probes_enabled and not got.startswith(("inject", "success")))
    if expect == "untreated":
        return got == "untreated"
    return got == f"inject {canonical(expect)}"


@pytest.fixture(scope="module")
def shipped():
    return Filter(RULES, "LG")


@pytest.fixture(scope="module")
def probes_enabled(tmp_path_factory):
    dest = tmp_path_factory.mktemp("lg") / "WatchLG" / "rules"
    dest.mkdir(parents=True)
    for d in (dest.parent, dest):
        os.chmod(d, 0o755)
    for name in os.listdir(RULES):
        src = os.path.join(RULES, name)
        if os.path.isfile(src) and not os.path.islink(src):
            target = dest / name.replace(".rule-disabled", ".rule")
            shutil.copyfile(src, target)
            os.chmod(target, 0o644)
    return Filter(str(dest), "LG")


def test_corpus_covers_each_message_type_three_times():
    thin = {s: n for s, n in SECTIONS.items() if n < 3}
    assert not thin, f"sections with fewer than 3 lines: {thin}"
    assert len(SECTIONS) >= 30


@pytest.mark.parametrize("n,section,expect,line", CASES, ids=[f"line{c[0]}" for c in CASES])
def test_corpus_line_as_shipped(shipped, n, section, expect, line):
    got = outcome(shipped, line)
    assert check(expect, got, False), f"{CORPUS}:{n} [{section}] expected {expect}, got {got}: {line}"


@pytest.mark.parametrize("n,section,expect,line", CASES, ids=[f"line{c[0]}" for c in CASES])
def test_corpus_line_with_probe_rules_enabled(probes_enabled, n, section, expect, line):
    got = outcome(probes_enabled, line)
    assert check(expect, got, True), f"{CORPUS}:{n} [{section}] expected {expect}, got {got}: {line}"


def test_victim_address_is_never_counted(shipped, probes_enabled):
    """198.51.100.0/24 appears only as client text: no line may inject or clear it."""
    for _, _, _, line in CASES:
        for flt in (shipped, probes_enabled):
            assert "198.51.100." not in outcome(flt, line), line


# ---- lines built here ---------------------------------------------------

HEADERS = ["Nov 22 10:00:00 web1 sshd[4242]: ", "2026-11-22T10:00:00.123456+01:00 web1 sshd-session[4242]: ",
           "<38>1 2026-11-22T10:00:00.123Z web1 sshd 4242 - - "]


@pytest.mark.parametrize("header", HEADERS)
def test_a_megabyte_line_never_injects(shipped, probes_enabled, header):
    attack = "Failed password for root from 198.51.100.7 port 22 ssh2 "
    for body in (attack * ((1 << 20) // len(attack)),
                 "Failed password for invalid user " + "x from 198.51.100.7 port 22 ssh2 " * 30000,
                 "Invalid user " + "a" * (1 << 20) + " from 198.51.100.7 port 22 x",
                 "Disconnecting invalid user " + "a" * (1 << 20) + " 198.51.100.7 port 22: "
                 "Too many authentication failures [preauth]"):
        line = header + body
        assert len(line) > 900000
        for flt in (shipped, probes_enabled):
            assert not outcome(flt, line).startswith(("inject", "success")), body[:60]


def test_binary_garbage_never_injects(shipped, probes_enabled):
    import random
    rnd = random.Random(2026)
    for _ in range(300):
        raw = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 400)))
        line = raw.replace(b"\0", b"").decode("utf-8", "replace")        # as the reader hands it on
        for flt in (shipped, probes_enabled):
            assert not outcome(flt, HEADERS[0] + line).startswith(("inject", "success"))


def test_word_soup_of_sshd_vocabulary_never_counts_the_victim(shipped, probes_enabled):
    """Shuffled fragments of sshd's own messages, with the victim's address among them."""
    import random
    rnd = random.Random(7)
    words = ["Failed", "password", "for", "root", "invalid", "user", "from", "198.51.100.7", "port", "22",
             "ssh2", "ssh2:", "[preauth]", "Invalid", "Accepted", "publickey", "Disconnecting", ":", "Too",
             "many", "authentication", "failures", "error:", "PAM:", "not", "allowed", "because", "]"]
    for _ in range(3000):
        body = " ".join(rnd.choice(words) for _ in range(rnd.randrange(1, 25)))
        for header in HEADERS:
            for flt in (shipped, probes_enabled):
                assert "198.51.100.7" not in outcome(flt, header + body), header + body


@pytest.mark.parametrize("tail", [
    " from 198.51.100.7 port 22 ssh2",
    " from 198.51.100.7 port 22 ssh2 [preauth]",
    " from 198.51.100.7 port 22",
    " from 198.51.100.7",
    " 198.51.100.7 port 22: Too many authentication failures [preauth]",
])
def test_client_text_at_sshds_500_character_cut_is_not_trusted(shipped, probes_enabled, tail):
    """sshd cuts messages at 500 characters.  Where a user name is not shortened
    (disconnect lines) a long one can put a forged ending exactly at the cut,
    with the real peer cut away; lines whose user name sshd does shorten to 100
    bytes cannot reach the cut, and are not trusted there either."""
    for head in ("Disconnecting invalid user ", "Connection closed by invalid user ",
                 "Received disconnect from 203.0.113.50 port 1:11: ", "Failed password for invalid user ",
                 "Failed publickey for invalid user ", "Invalid user ", "User ",
                 "error: maximum authentication attempts exceeded for invalid user ",
                 "error: PAM: Authentication failure for illegal user ", "Accepted password for ",
                 "Bad protocol version identification '"):
        msg = head + "a" * (500 - len(head) - len(tail)) + tail
        assert len(msg) == 500
        for header in HEADERS:
            for flt in (shipped, probes_enabled):
                assert "198.51.100.7" not in outcome(flt, header + msg), msg
