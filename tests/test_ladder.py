"""The dispatched ladder decides every line exactly as the whole ladder does.

lib.ladder reads the rules' tests: a rule that can only decide a line whose
message begins with some strings is left out for the other messages
(Filter.filter runs the dispatch, Filter.ladder every rule).  The two must
give the same verdict on every line: the shipped modules' example lines and
corpora, the same lines cut and wrapped in the syslog formats the reader
knows, and rule folders written to break the reading (a rule that rebinds
a name the checks rely on, calls something first, has an `else:`, changes
a pattern inside an `if`).  And sshd's peer, read with one regex search on
short ASCII messages, must be what the place-by-place reading gives.
"""
import glob
import os
import random
import re

import pytest

from conftest import ROOT
from lib import extract
from lib.rules import Filter

MODULES = [t for t in ("LG", "MX", "MB", "WB") if os.path.isdir(os.path.join(ROOT, "modules", f"Watch{t}", "rules"))]
_EXAMPLE = re.compile(r"^#\s*example:\s?(.*?)\s+=>\s+(\S+)\s*$")


def module_lines(token):
    lines = []
    for path in glob.glob(os.path.join(ROOT, "modules", f"Watch{token}", "rules", "[0-9]*.rule*")):
        with open(path, encoding="utf-8") as f:
            lines += [m.group(1) for m in map(_EXAMPLE.match, (l.strip() for l in f)) if m]
    for corpus in glob.glob(os.path.join(ROOT, "tests", "data", "*-corpus.txt")):
        with open(corpus, encoding="utf-8") as f:
            lines += [l.rstrip("\n").partition("\t")[2] for l in f if "\t" in l and not l.startswith("#")]
    return lines


def variations(line):
    """The line, its message alone, under other syslog headers, wrapped by rsyslog, cut short."""
    msg = extract.message(line)
    yield line
    yield msg
    yield "<38>1 2026-11-22T10:00:00.1+00:00 srv sshd 4242 - - " + msg
    yield "<38>1 2026-11-22T10:00:00+00:00 srv sshd 4242 - [origin ip=\"1.2.3.4\"] " + msg
    yield "Nov 22 10:00:00 srv sshd[1]: error: " + msg
    yield "Nov 22 10:00:00 srv sshd[1]: message repeated 2 times: [ " + msg + "]"
    yield "Nov 22 10:00:00 srv sshd[1]: " + msg + "\r"
    yield line[:len(line) // 2]
    yield line[:-3]


def same(flt, lines):
    for line in lines:
        assert flt.filter(line) == flt.ladder(line), line


@pytest.mark.parametrize("token", MODULES)
def test_shipped_ladders_dispatch_as_they_decide(token):
    flt = Filter(os.path.join(ROOT, "modules", f"Watch{token}", "rules"), token, check_perms=False)
    lines = [v for line in module_lines(token) for v in variations(line)]
    assert len(lines) > 500
    same(flt, lines)


def test_the_sshd_ladder_is_dispatched():
    flt = Filter(os.path.join(ROOT, "modules", "WatchLG", "rules"), "LG", check_perms=False)
    assert flt.route is not None and flt.route.width >= 4
    assert {"Fail", "Inva", "Acce"} <= set(flt.route.table)


def rules(tmp_path, files, superflous=""):
    d = tmp_path / "rules"
    d.mkdir(mode=0o755)
    for name, text in files.items():
        (d / name).write_text(text)
        (d / name).chmod(0o644)
    if superflous:
        (d / "superflous_map").write_text(superflous)
        (d / "superflous_map").chmod(0o644)
    return Filter(str(d), "LG")


LINES = ["Nov 22 10:00:00 srv sshd[1]: Failed password for root from 192.0.2.1 port 22 ssh2",
         "Nov 22 10:00:00 srv sshd[1]: Failed password for invalid user Invalid user from 192.0.2.2 port 22 ssh2",
         "Nov 22 10:00:00 srv sshd[1]: Invalid user Failed password for  from 192.0.2.3 port 22",
         "Nov 22 10:00:00 srv sshd[1]: User bob from 192.0.2.4 not allowed because not listed in AllowUsers",
         "Nov 22 10:00:00 srv sshd[1]: Fa",
         "Nov 22 10:00:00 srv sshd[1]: ",
         "Nov 22 10:00:00 srv CRON[2]: pam_unix(cron:session): session opened for user root",
         "Failed password for root from 192.0.2.5 port 22 ssh2",
         ""]
FAILED = 'RULE = "failed"\nPattern = "Failed password for "\nif Pattern in REPLY and begins(REPLY, Pattern): return inject()\n'
INVALID = 'RULE = "invalid"\nif begins(REPLY, ("Invalid user ", "User ")): return inject()\n'


def test_rules_are_left_out_only_for_messages_they_cannot_decide(tmp_path):
    flt = rules(tmp_path, {"100-a.rule": FAILED, "200-b.rule": INVALID}, superflous="pam_unix(cron:session)\n")
    assert flt.route is not None
    same(flt, LINES)
    assert flt.filter(LINES[2]).rule == "invalid"
    assert flt.filter(LINES[6]).action == "ignore" and flt.filter(LINES[4]) is None


@pytest.mark.parametrize("odd", [
    'RULE = "c"\nbegins = lambda line, p: True\n',                       # rebinds begins
    'RULE = "c"\ndef message(line):\n    return "Failed password for x"\n',  # rebinds message
    'RULE = "c"\nREPLY = REPLY.replace("Invalid", "Failed")\n',         # rebinds the line
    'RULE = "c"\n_MSG_ = "Failed password for "\n',                      # the dispatch's own name
])
def test_a_ladder_that_rebinds_what_the_checks_read_is_not_dispatched(tmp_path, odd):
    flt = rules(tmp_path, {"050-odd.rule": odd, "100-a.rule": FAILED, "200-b.rule": INVALID})
    assert flt.route is None
    assert flt.filter is flt.ladder


@pytest.mark.parametrize("odd", [
    # a call before the check: runs for every line
    'RULE = "c"\nif len(REPLY) > 60 and begins(REPLY, "Zzz"): return ignore()\nif len(REPLY) > 90: return ignore()\n',
    # an else: runs when the check fails
    'RULE = "c"\nif begins(REPLY, "Zzz"):\n    pass\nelse:\n    if "192.0.2.3" in REPLY: return ignore()\n',
    # a pattern changed inside an if: the next rule's check is not the constant it seems
    'RULE = "c"\nPattern = "Zzz"\nif "192.0.2.2" in REPLY:\n    Pattern = "Fai"\nif begins(REPLY, Pattern): return ignore()\n',
    # a loop
    'RULE = "c"\nfor w in ("192.0.2.3", "192.0.2.4"):\n    if w in REPLY: return ignore()\n',
])
def test_rules_that_cannot_be_read_run_for_every_line(tmp_path, odd):
    flt = rules(tmp_path, {"050-odd.rule": odd, "100-a.rule": FAILED, "200-b.rule": INVALID})
    same(flt, LINES)
    assert any(flt.filter(line) is not None and flt.filter(line).rule == "c" for line in LINES)


def test_a_rule_error_names_its_file_and_line_through_the_dispatch(tmp_path):
    flt = rules(tmp_path, {"100-a.rule": 'RULE = "a"\nif begins(REPLY, "Failed "):\n    return inject(1 / 0)\n'})
    with pytest.raises(ZeroDivisionError) as e:
        flt.filter(LINES[0])
    tb = e.value.__traceback__
    while tb.tb_next:
        tb = tb.tb_next
    assert flt.where(tb.tb_lineno).endswith("100-a.rule:3")


def test_ssh2_peer_one_search_reads_what_the_places_give():
    words = [" from ", "from", " port ", "22", "123456", "192.0.2.7", "::1", " ssh2", " [preauth]", ": ", "x",
             " ", ",", "\t", "0", "Failed publickey for ", "Accepted hostbased for ", "Failed password for "]
    rnd = random.Random(7)
    for _ in range(100000):
        text = "".join(rnd.choice(words) for _ in range(rnd.randrange(1, 12)))
        head = text.find(" for ")
        keyed = head > 0 and text.endswith((" publickey", " hostbased"), 0, head)
        assert extract._ssh2_search(text, keyed) == extract._ssh2_places(text, keyed), text


def test_ssh2_peer_takes_the_place_that_ends_the_message_after_a_user_named_from():
    msg = "Failed password for invalid user x from from 192.0.2.8 port 2222 ssh2"
    assert extract.ssh2_peer(msg) == ("192.0.2.8", 2222)
    assert extract._ssh2_places(msg, False) == ("192.0.2.8", 2222)


def test_a_call_before_the_check_runs_for_every_line(tmp_path):
    key = f"watcher-test-{tmp_path.name}"
    flt = rules(tmp_path, {"050-odd.rule": f'RULE = "c"\nimport sys\nseen = sys.modules.setdefault("{key}", [])\n'
                                          'if seen.append(1) is None and begins(REPLY, "Zzz"): return ignore()\n'
                                          'if len(seen) % 2 == 0: return ignore()\n',
                           "100-a.rule": FAILED})
    got = [flt.filter(LINES[0]) for _ in range(4)]
    assert [v.rule for v in got] == ["failed", "c", "failed", "c"]
