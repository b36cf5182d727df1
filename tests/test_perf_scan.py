"""The bulk pass of `watcher.py test` (lib.scan) counts exactly what the ladder gives line by line.

Guards come from the assembled ladder's source; a line that holds none of them
is never given to the ladder.  The counts of the bulk pass (in one process and
split among processes) must equal those of running every line through the
ladder, on each shipped module's corpus and example lines and on awkward input:
carriage returns, NULs, bad UTF-8, no final newline, Watcher's sender prefix."""
import io
import os
import random
import re

import pytest

from conftest import ROOT
from corpus import MODULES, module_lines
from lib import extract, scan, testmode
from lib.ladder import Guard, guards
from lib.rules import Filter
from lib.sender import PREFIX

def ladder(token):
    return Filter(os.path.join(ROOT, "modules", f"Watch{token}", "rules"), token, check_perms=False)


def sample_lines(token):
    lines = module_lines(token)
    lines += ["", "Nov 22 10:00:00 srv CRON[1]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)",
              "Nov 22 10:00:00 srv kernel: something never seen"]
    # a block holding Watcher's sender prefix is decided line by line (test_awkward_input...):
    # without it the bulk pass is what runs
    return [l for l in lines if PREFIX not in l and "\r" not in l]


def counts_line_by_line(flt, companions, data: bytes):
    out = {}
    for line in testmode._lines(io.BytesIO(data)):
        key = testmode._verdict(flt, line, companions)
        out[key] = out.get(key, 0) + 1
    return out


def counter(flt, companions):
    """testmode's bulk counter without the fast lane: what the search finds goes down the ladder."""
    return testmode.counter(flt, companions, fast=False)


@pytest.mark.parametrize("token", MODULES)
def test_bulk_counts_equal_the_ladder_line_by_line(token, tmp_path):
    flt = ladder(token)
    companions = {"MB": ladder("MB")} if token == "MX" and "MB" in MODULES else {}
    lines = sample_lines(token) * 3
    data = ("\n".join(lines) + "\n").encode()
    want = counts_line_by_line(flt, companions, data)
    got = scan.count_stream(counter(flt, companions), io.BytesIO(data))
    assert got == want
    path = tmp_path / "log"
    path.write_bytes(data)
    with open(path, "rb") as f:                      # split among three processes
        assert scan.count_file(counter(flt, companions), f.fileno(), jobs=3) == want


def wrapped(lines, pri=True):
    """Each line as it is, and its message under the other headers the reader knows (those
    beginning with a <PRI> only when `pri`: a block holding one is searched otherwise)."""
    for line in lines:
        if not pri and line.startswith("<"):
            continue
        msg = extract.message(line)
        yield line
        yield msg                                                       # no header: it begins the line
        if pri:
            yield "<38>" + line
            yield "<38>1 2026-11-22T10:00:00+00:00 srv sshd 42 - [x a=\"1\"] " + msg
        yield "Nov 22 10:00:00 srv sshd[1]: message repeated 3 times: [ " + msg + "]"
        yield "Nov 22 10:00:00 srv sshd[1]: error: " + msg
        yield "Nov 22 10:00:00 srv sshd[1]: x: " + msg                  # not after the first ': '


@pytest.mark.parametrize("pri", [True, False], ids=["with-pri", "without-pri"])
@pytest.mark.parametrize("token", MODULES)
def test_the_watcher_test_command_counts_as_the_ladder_under_every_header(token, pri, tmp_path, monkeypatch):
    """testmode's whole bulk path (the search for guards, the fast lane, the split among
    processes) against the ladder line by line."""
    flt = ladder(token)
    companions = {"MB": ladder("MB")} if token == "MX" and "MB" in MODULES else {}
    data = ("\n".join(wrapped(sample_lines(token), pri)) + "\n").encode()
    want = counts_line_by_line(flt, companions, data)
    assert testmode._counts(flt, companions, io.BytesIO(data)) == testmode.summary(want)
    path = tmp_path / "log"
    path.write_bytes(data * 20)
    monkeypatch.setattr(testmode, "PARALLEL_BYTES", 1)              # split among the CPUs
    with open(path, "rb") as f:
        got = testmode._counts(flt, companions, f)
    assert got == testmode.summary({k: 20 * n for k, n in want.items()})


def test_a_message_without_a_header_counts_first_in_a_block_too():
    flt = ladder("LG")
    lines = ["Failed password for root from 203.0.113.9 port 22 ssh2",
             "Nov 22 10:00:00 srv sshd[1]: Invalid user a from 203.0.113.8 port 22",
             "Invalid user b from 203.0.113.7 port 22", "Accepted password for c from 203.0.113.6 port 22 ssh2"]
    for data in ["\n".join(lines), "\n".join(lines[::-1]) + "\n"]:
        want = counts_line_by_line(flt, {}, data.encode())
        assert sum(n for (rule, _, action, _), n in want.items() if action == "inject") == 3
        assert scan.count_stream(counter(flt, {}), io.BytesIO(data.encode())) == want, data


def test_awkward_input_counts_the_same():
    flt = ladder("LG")
    fail = "Nov 22 10:00:00 srv sshd[1]: Failed password for root from 203.0.113.{} port 22 ssh2"
    session = "Nov 22 10:00:00 srv sshd[2]: pam_unix(sshd:session): session closed for user deploy"
    for data in [
        (fail.format(1) + "\r\n" + session + "\r\n").encode(),                 # carriage returns
        (fail.format(2) + "\n" + session + "\0\n\xff\xfe junk\n").encode("latin-1"),   # NUL, bad UTF-8
        (fail.format(3) + "\n" + session).encode(),                            # no final newline
        (f"{PREFIX}0 exe=/usr/sbin/sshd] " + fail.format(4) + "\n"             # the sender prefix
         f"{PREFIX}1000] Nov 22 10:00:00 srv x: session closed for user x\n" + session + "\n").encode(),
    ]:
        want = counts_line_by_line(flt, {}, data)
        assert scan.count_stream(counter(flt, {}), io.BytesIO(data)) == want, data


def test_guards_are_unknown_when_a_rule_is_not_plain_checks(tmp_path):
    d = tmp_path / "rules"
    d.mkdir(mode=0o755)
    (d / "100-a.rule").write_text('RULE = "a"\nPattern = "Failed password for "\n'
                                  'if Pattern in REPLY and begins(REPLY, Pattern): return inject()\n')
    (d / "200-b.rule").write_text('RULE = "b"\nif begins(REPLY, ("Invalid user ", "User ")): return inject()\n')
    for p in d.iterdir():
        p.chmod(0o644)
    assert guards(Filter(str(d), "LG").function) == [
        Guard(frozenset({"Failed password for "}), frozenset({"Failed password for "})),
        Guard(frozenset({"Invalid user ", "User "}), frozenset({"Invalid user ", "User "}))]
    (d / "300-c.rule").write_text('RULE = "c"\nfor w in ("x", "y"):\n    if w in REPLY: return ignore()\n')
    (d / "300-c.rule").chmod(0o644)
    assert guards(Filter(str(d), "LG").function) is None          # a loop: every line is decided
    (d / "300-c.rule").write_text('RULE = "c"\nif check(REPLY) and "x" in REPLY: return ignore()\n')
    assert guards(Filter(str(d), "LG").function) is None          # a call before the check


def test_starts_regex_matches_exactly_the_texts_beginning_with_a_string():
    rnd = random.Random(5)
    letters = "ab( )\\n"
    for _ in range(2000):
        strings = ["".join(rnd.choice(letters) for _ in range(rnd.randrange(1, 5))) for _ in range(rnd.randrange(1, 6))]
        rx = re.compile(scan.starts_regex(strings))
        for _ in range(20):
            text = "".join(rnd.choice(letters) for _ in range(rnd.randrange(0, 6)))
            assert bool(rx.match(text)) == text.startswith(tuple(strings)), (strings, text)


def test_a_rule_is_searched_by_its_message_start_unless_the_strings_it_holds_are_much_rarer():
    pam = ("Nov 22 10:00:00 srv sshd[{}]: pam_unix(sshd:session): session opened for user deploy(uid=1000) by (uid=0)")
    sample = "\n".join(pam.format(i) for i in range(200))
    d = ladder("LG")
    c = counter(d, {})
    c.prepare(sample)
    assert "(sshd:auth): " in c._holds and "pam_" not in c._begins     # pam_ begins every line
    c = counter(d, {})
    c.prepare("Nov 22 10:00:00 srv sshd[1]: Accepted publickey for deploy from 192.0.2.1 port 22 ssh2\n" * 200)
    assert "pam_" in c._begins and not c._holds


def test_contains_regex_finds_exactly_the_lines_holding_a_string():
    strings = ["pam_unix(sshd:session): session opened", "Accepted ", " ; COMMAND=", "x"]
    rx = scan.contains_regex(strings, sample="aaaa bbbb Accepted")
    for text in ["a pam_unix(sshd:session): session opened b", "Accepted", "zzz ; COMMAND=/bin/x", "x",
                 "pam_unix(sshd:session): session closed", "accepted", "yyy"]:
        assert bool(rx.search(text)) == any(s in text for s in strings), text
