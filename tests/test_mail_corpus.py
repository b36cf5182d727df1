"""WatchMX's and WatchMB's shipped ladders over a corpus of mail lines, each with the verdict it must get.

tests/data/mail-corpus.txt holds `EXPECT<TAB>LINE` under `## type` headings (see its
head for the EXPECT words).  Each line goes through WatchMX's assembled filter and,
when WatchMX forwards it, through WatchMB's: `lib.testmode.verdict_of`, what
`watcher.py test MX FILE --json` prints.  198.51.100.0/24 appears only as client
text: no line, and no line built here, may count or clear it.
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
from lib.testmode import verdict_of  # noqa: E402

MX_RULES = os.path.join(ROOT, "modules", "WatchMX", "rules")
MB_RULES = os.path.join(ROOT, "modules", "WatchMB", "rules")
CORPUS = os.path.join(ROOT, "tests", "data", "mail-corpus.txt")
VICTIM = "198.51.100."


CASES, SECTIONS = load_corpus(CORPUS)


@pytest.fixture(scope="module")
def mx():
    return Filter(MX_RULES, "MX")


@pytest.fixture(scope="module")
def mb():
    return Filter(MB_RULES, "MB")


def outcome(mx: Filter, mb: Filter, line: str) -> str:
    """'ADDR', 'MB:ADDR', 'MB:success:ADDR', 'MB:none', 'ignore' or 'untreated'."""
    r = verdict_of(mx, line, {"MB": mb})
    if r.get("via") == "MB":
        v = mb.filter(line)                       # verdict_of reports a success as ignore: look closer
        if v is not None and v.action == "success":
            addr = parse_peer(v.ip)
            return f"MB:success:{addr}" if addr else "MB:none"
        return f"MB:{r['ip']}" if r["action"] == "inject" else "MB:none"
    if r["action"] == "inject":
        return r["ip"]
    return r["action"]


def expected(expect: str) -> str:
    if expect.startswith("MB:success:"):
        head, addr = "MB:success", expect[len("MB:success:"):]
    elif expect.startswith("MB:"):
        head, addr = "MB", expect[3:]
    else:
        head, addr = "", expect
    if addr in ("none", "ignore", "untreated"):
        return f"{head}:{addr}" if head else addr
    canonical = parse_peer(addr)
    assert canonical is not None, f"corpus names an address that parse_peer refuses: {addr}"
    return f"{head}:{canonical}" if head else str(canonical)


def check(expect: str, got: str) -> bool:
    want = expected(expect)
    if want == "none":
        return got in ("ignore", "untreated")
    return got == want


def test_corpus_covers_each_message_type_three_times():
    thin = {s: n for s, n in SECTIONS.items() if n < 3}
    assert not thin, f"sections with fewer than 3 lines: {thin}"
    assert len(SECTIONS) >= 35


@pytest.mark.parametrize("n,section,expect,line", CASES, ids=[f"line{c[0]}" for c in CASES])
def test_corpus_line(mx, mb, n, section, expect, line):
    got = outcome(mx, mb, line)
    assert check(expect, got), f"{CORPUS}:{n} [{section}] expected {expect}, got {got}: {line}"


def test_every_rule_of_both_modules_is_exercised(mx, mb):
    """Each shipped rule decides at least one corpus line (a rule nobody triggers is untested)."""
    seen = {"MX": set(), "MB": set()}
    for _, _, _, line in CASES:
        v = mx.filter(line)
        if v is not None and v.rule:
            seen["MX"].add(v.rule)
            if v.action == "forward":
                w = mb.filter(line)
                if w is not None and w.rule:
                    seen["MB"].add(w.rule)
    assert set(mx.rule_names) - seen["MX"] == set()
    assert set(mb.rule_names) - seen["MB"] == set()


def test_a_forwarded_line_is_decided_by_mb_alone(mx, mb):
    """What WatchMX forwards it never counts itself; WatchMB's verdict is the only one."""
    forwarded = 0
    for _, _, expect, line in CASES:
        v = mx.filter(line)
        if v is not None and v.action == "forward":
            forwarded += 1
            assert v.ip is None and v.to == "MB"
            assert expect.startswith("MB:"), line
        else:
            assert not expect.startswith("MB:"), line
    assert forwarded >= 40


def test_test_mode_cli_prints_what_the_corpus_says(tmp_path, mx, mb):
    """`watcher.py test MX FILE --json`: one object per line, MB's verdict with "via": "MB"."""
    log = tmp_path / "mail.log"
    log.write_text("".join(line + "\n" for _, _, _, line in CASES), encoding="utf-8")
    r = subprocess.run([sys.executable, os.path.join(ROOT, "watcher.py"), "test", "MX", str(log), "--json"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert [x["line"] for x in rows] == list(range(1, len(CASES) + 1))
    for row, (n, _, expect, line) in zip(rows, CASES):
        want = verdict_of(mx, line, {"MB": mb})
        assert {k: v for k, v in row.items() if k != "line"} == want, f"{CORPUS}:{n}"
        assert (row.get("via") == "MB") == expect.startswith("MB:"), f"{CORPUS}:{n}"
    summary = subprocess.run([sys.executable, os.path.join(ROOT, "watcher.py"), "test", "MX", str(log)],
                             capture_output=True, text=True, timeout=60)
    assert summary.returncode == 0 and f"Lines: {len(CASES)}, inject: " in summary.stdout


def test_test_mb_runs_mb_alone(tmp_path, mb):
    """`watcher.py test MB`: WatchMB's ladder only, no WatchMX in front (Postfix rejects are untreated)."""
    lines = [line for _, _, expect, line in CASES if expect.startswith("MB:") or expect[:1].isdigit()]
    log = tmp_path / "mb.log"
    log.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    r = subprocess.run([sys.executable, os.path.join(ROOT, "watcher.py"), "test", "MB", str(log), "--json"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(rows) == len(lines) and all("via" not in x for x in rows)
    for row, line in zip(rows, lines):
        assert {k: v for k, v in row.items() if k != "line"} == verdict_of(mb, line, {})
    assert any(x["action"] == "inject" for x in rows) and any(x["action"] == "untreated" for x in rows)


def test_victim_address_is_never_counted_nor_cleared(mx, mb):
    for _, _, _, line in CASES:
        assert VICTIM not in outcome(mx, mb, line), line
        v = mb.filter(line)
        assert v is None or VICTIM not in str(v.ip), line


# ---- lines built here ---------------------------------------------------

HEADERS = ["Nov 22 10:00:00 mx1 postfix/smtpd[4244]: ", "Nov 22 10:00:00 mx1 postfix/postscreen[900]: ",
           "2026-11-22T10:00:00.123456+01:00 mx1 dovecot: ", "<22>1 2026-11-22T10:00:00.1Z mx1 dovecot 812 - - ",
           "Nov 22 10:00:00 mx1 dbmail-imapd[2102]: ", "Nov 22 10:00:00 mx1 imapd-ssl: ",
           "Nov 22 10:00:00 mx1 postfix/submission/smtpd[4245]: "]

# Client text that names the victim comes wrapped as the daemons print it (inside
# helo=<...>, user=<...>, an envelope address); the daemons' own words and fields
# name 203.0.113.1.  However shuffled, the victim must never come out.
VOCABULARY = ["NOQUEUE:", "reject:", "RCPT", "from", "unknown[203.0.113.1]", "[203.0.113.1]:25", "203.0.113.1",
              "rip=203.0.113.1,", "ip=[::ffff:203.0.113.1]", "helo=<unknown[198.51.100.9]>",
              "helo=<[198.51.100.9]>", "from=<x@[198.51.100.9]>", 'to=<"x from unknown[198.51.100.9]"@example.com>',
              "user=<a, rip=198.51.100.9, lip=192.0.2.1>,", "user=<rip=198.51.100.9>,", "user=<x>,",
              "(auth failed, 1 attempts in 2 secs):", "(auth_failed):", "imap-login:", "Login:", "Login aborted:",
              "Disconnected", "554", "5.7.1", "<x>:", "Relay access denied;", "connect", "lost connection after",
              "AUTH", "warning:", "SASL", "LOGIN", "authentication failed:", "sasl_username=x from unknown[198.51.100.9]",
              "SSL_accept error", "PREGREET", "HANGUP", "DNSBL rank 5 for", "after", "0.1", "login rejected: user [",
              "user [x] from [198.51.100.9:1]]", "user [x] coming from [198.51.100.9]]", "] from [",
              "] tried to login with wrong password", "LOGIN FAILED,", "user=x ip=[::ffff:198.51.100.9]",
              "passwd-file(x ,198.51.100.9 ,<s>):", "unknown user", "Password mismatch", "hostname",
              "does not resolve to address", "limit exceeded:", "for service smtp", "too many errors after",
              "improper command pipelining after", ":", "]", "[", ",", "): ", "method=PLAIN,", "session=<a>"]


def test_word_soup_of_mail_vocabulary_never_counts_the_victim(mx, mb):
    """Shuffled fragments of the daemons' own messages, the victim's address among them."""
    rnd = random.Random(2026)
    for _ in range(3000):
        body = " ".join(rnd.choice(VOCABULARY) for _ in range(rnd.randrange(1, 25)))
        for header in HEADERS:
            got = outcome(mx, mb, header + body)
            assert VICTIM not in got, header + body


@pytest.mark.parametrize("header", HEADERS)
def test_a_megabyte_line_never_counts_the_victim(mx, mb, header):
    for body in ("NOQUEUE: reject: RCPT from unknown[203.0.113.1]: 554 5.7.1 <x>: Relay access denied; helo=<"
                 + "unknown[198.51.100.9] " * 40000 + ">",
                 "imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<" + "a, rip=198.51.100.9" * 40000,
                 "warning: unknown[203.0.113.1]: SASL LOGIN authentication failed: "
                 + "x from unknown[198.51.100.9] " * 40000,
                 "auth: passwd-file(" + "x,198.51.100.9" * 60000 + "): unknown user"):
        line = header + body
        assert len(line) > 500000
        assert VICTIM not in outcome(mx, mb, line), body[:60]


def test_binary_garbage_never_counts(mx, mb):
    rnd = random.Random(7)
    for _ in range(300):
        raw = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 400)))
        body = raw.replace(b"\0", b"").decode("utf-8", "replace")
        for header in HEADERS:
            got = outcome(mx, mb, header + body)
            assert got in ("ignore", "untreated", "MB:none"), (header + body, got)
