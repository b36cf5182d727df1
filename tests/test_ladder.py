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
The fast lane of `watcher.py test` (lib.fastlane) must count what the
ladder gives on the same lines, read most of sshd's lines itself, and hand
the ladder every line and rule it cannot read.
"""
import os
import random
import re
from collections import Counter

import pytest

from conftest import ROOT
from corpus import MODULES, module_lines
from lib import extract, testmode
from lib.addresses import parse_peer, peer_text
from lib.fastlane import TWINS, FastLane
from lib.rules import Filter

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


def test_a_rule_s_global_state_is_one_whatever_rules_the_dispatch_runs(tmp_path):
    counting = ('RULE = "c"\nglobal seen\ntry:\n    seen += 1\nexcept NameError:\n    seen = 1\n'
                'if seen % 2 == 0: return ignore()\n')
    lines = [LINES[0], LINES[2], LINES[3], LINES[0], LINES[6], LINES[2]] * 2
    files = {"050-count.rule": counting, "100-a.rule": FAILED, "200-b.rule": INVALID}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    dispatched = rules(tmp_path / "a", files)
    whole = rules(tmp_path / "b", files)
    assert dispatched.route is not None
    got = [dispatched.filter(line) for line in lines]
    assert got == [whole.ladder(line) for line in lines]
    assert [v.rule if v else None for v in got].count("c") == 6


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


def test_peer_text_reads_dotted_quads_as_parse_peer_does():
    rnd = random.Random(11)
    octets = ["0", "1", "9", "10", "99", "100", "127", "169", "199", "223", "224", "239", "240", "249", "250",
              "254", "255", "256", "300", "01", "001", "-1", "+1", " 1", "1 ", "", "x", "1e1", "\u0661"]
    texts = ["0.0.0.0", "127.0.0.1", "169.254.1.1", "169.253.1.1", "255.255.255.255", "1.2.3.4\n", "::1",
             "::ffff:192.0.2.1", "[192.0.2.1]", "2001:db8::1", None]
    for _ in range(100000):
        texts.append(".".join(rnd.choice(octets) if rnd.random() < 0.5 else str(rnd.randrange(256))
                              for _ in range(rnd.choice((3, 4, 4, 4, 5)))))
    for text in texts:
        addr = parse_peer(text)
        assert peer_text(text) == (None if addr is None else str(addr)), repr(text)


def test_a_call_before_the_check_runs_for_every_line(tmp_path):
    key = f"watcher-test-{tmp_path.name}"
    flt = rules(tmp_path, {"050-odd.rule": f'RULE = "c"\nimport sys\nseen = sys.modules.setdefault("{key}", [])\n'
                                          'if seen.append(1) is None and begins(REPLY, "Zzz"): return ignore()\n'
                                          'if len(seen) % 2 == 0: return ignore()\n',
                           "100-a.rule": FAILED})
    got = [flt.filter(LINES[0]) for _ in range(4)]
    assert [v.rule for v in got] == ["failed", "c", "failed", "c"]


# ---- the fast lane of `watcher.py test` (lib.fastlane) -----------------------------------
def lane_counts(flt, lines, slow_lines=None):
    """testmode's counts of `lines` through the lane (slow_lines collects what it hands back)."""
    decide = testmode.decider(flt, {})

    def slow(line):
        if slow_lines is not None:
            slow_lines.append(line)
        return decide(line)
    count = testmode.fast_counter(flt, slow)
    assert count is not None, "the ladder has no lane"
    return dict(count(lines))


def ladder_counts(flt, lines):
    return dict(Counter(testmode._verdict(flt, line, {}) for line in lines))


def odd_lines(lines):
    """Lines the lane must hand to the ladder: long, not ASCII, <PRI>, wrapped, no header."""
    for line in lines:
        msg = extract.message(line)
        yield line + " " + "x" * 500
        yield line.replace("root", "r\u00f6\u00f6t").replace("admin", "\u00e4dmin")
        yield "<38>" + line
        yield "Nov 22 10:00:00 srv sshd[1]: message repeated 2 times: [ " + msg + "]"
        yield "Nov 22 10:00:00 srv sshd[1]: error: " + msg
        yield msg


def test_the_fast_lane_counts_as_the_ladder_on_the_sshd_corpus():
    flt = Filter(os.path.join(ROOT, "modules", "WatchLG", "rules"), "LG", check_perms=False)
    lines = [l for l in module_lines("LG") if l and "\n" not in l and "\r" not in l]
    slow = []
    assert lane_counts(flt, lines, slow) == ladder_counts(flt, lines)
    assert len(slow) < len(lines) // 3          # most of sshd's lines are read by the lane
    everything = lines + list(odd_lines(lines))
    assert lane_counts(flt, everything) == ladder_counts(flt, everything)


def test_the_lane_reads_plain_sshd_lines_itself():
    flt = Filter(os.path.join(ROOT, "modules", "WatchLG", "rules"), "LG", check_perms=False)
    lines = ["Nov 22 10:00:00 srv sshd[1]: Failed password for root from 192.0.2.1 port 22 ssh2",
             "Nov 22 10:00:00 srv sshd[1]: Failed password for invalid user a b from 2001:db8::1 port 22 ssh2",
             "Nov 22 10:00:00 srv sshd[1]: Invalid user x from 192.0.2.2 port 4",
             "Nov 22 10:00:00 srv sshd[1]: Invalid user x from 192.0.2.2 port 4 from",
             "Nov 22 10:00:00 srv sshd[1]: Accepted publickey for a from 192.0.2.3 port 5 ssh2: ED25519 SHA256:x",
             "Nov 22 10:00:00 srv sshd[1]: Connection closed by authenticating user root 192.0.2.4 port 6 [preauth]",
             "Nov 22 10:00:00 srv sshd[1]: Failed password for root from 127.0.0.1 port 22 ssh2",
             "Nov 22 10:00:00 srv sshd[1]: Connection closed by 192.0.2.5 port 7 [preauth]",
             "Nov 22 10:00:00 srv sshd[1]: Fail"]
    slow = []
    got = lane_counts(flt, lines, slow)
    assert slow == [] and got == ladder_counts(flt, lines)
    assert got[("root-password", "192.0.2.1", "inject", None)] == 1
    assert got[("root-password", None, "ignore", None)] == 1          # loopback never injects
    assert got[("invalid-user", None, "ignore", None)] == 1            # a ' from' after the peer


def test_the_lane_hands_rules_it_cannot_read_to_the_ladder(tmp_path):
    key = f"watcher-lane-{tmp_path.name}"
    flt = rules(tmp_path, {
        "100-a.rule": FAILED,
        "110-b.rule": 'RULE = "b"\nif begins(REPLY, "Invalid user ") and REPLY.endswith("22"): return ignore()\n',
        "120-c.rule": 'RULE = "c"\nif begins(REPLY, "Invalid user "): return inject(from_port(message(REPLY)))\n',
        "130-d.rule": 'RULE = "d"\nif begins(REPLY, "User ") and "192.0.2.4" in REPLY: return success()\n',
        "140-e.rule": f'RULE = "e"\nif begins(REPLY, "Fa"):\n    import sys\n    sys.modules.setdefault("{key}", []).append(1)\n'
                      '    return ignore()\n'}, superflous="pam_unix(cron:session)\n")
    lines = [l for l in LINES if l]
    slow = []
    assert lane_counts(flt, lines, slow) == ladder_counts(flt, lines)
    assert slow and len(slow) < len(lines)


def test_a_ladder_with_a_rule_for_every_line_has_no_lane(tmp_path):
    flt = rules(tmp_path, {"100-a.rule": FAILED, "200-b.rule": 'RULE = "b"\nif "x" in REPLY: return ignore()\n'})
    lane = FastLane(flt)
    assert not lane.usable or all(v is None for v in lane.lanes.values())
    lines = [l for l in LINES if l]
    if lane.usable:
        assert lane_counts(flt, lines) == ladder_counts(flt, lines)


@pytest.mark.parametrize("helper", sorted(TWINS))
def test_the_lane_reads_addresses_as_the_helpers_do(helper):
    twin = re.compile(TWINS[helper])
    words = [" from ", "from", " port ", "22", "123456", "192.0.2.7", "::1", " ssh2", " [preauth]", ": ", "x",
             " ", ",", "\t", "0", "Failed password for ", "Invalid user "]
    rnd = random.Random(11)
    for _ in range(100000):
        text = "".join(rnd.choice(words) for _ in range(rnd.randrange(1, 12)))
        m = twin.match(text)
        got = (m.group(1) or None) if m else None
        want = getattr(extract, helper)(text)[0]
        assert got == want, text
