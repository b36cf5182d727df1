"""Rules carry their own evidence, and the rule loader keeps its promises.

Every rule file of every module (modules/Watch*/rules/NNN-*.rule and
*.rule-disabled, found by glob so a new module is covered without touching
this file) must carry example lines, at least one the file decides and one
it does not, and every example must yield what it says: alone, and in the
module's assembled ladder.  A disabled file is checked in a copy of the
ladder where every disabled file is enabled, as an administrator enabling
it would get it.
"""
import glob
import os
import shutil
import stat
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from lib.addresses import parse_peer  # noqa: E402
from lib.rules import Filter, RuleError, compile_rule, examples, rule_files, run_examples  # noqa: E402

RULES_DIRS = sorted(glob.glob(os.path.join(ROOT, "modules", "Watch*", "rules")))
RULE_FILES = [p for d in RULES_DIRS for p in rule_files(d, disabled=True)]


def module_of(path: str) -> str:
    """Module token of a rule file or rules folder: WatchLG -> LG."""
    rules_dir = path if os.path.isdir(path) else os.path.dirname(path)
    return os.path.basename(os.path.dirname(rules_dir))[len("Watch"):]


def short(path: str) -> str:
    return os.path.relpath(path, ROOT)


_LADDERS = {}


def ladder_of(rules_dir: str) -> Filter:
    if rules_dir not in _LADDERS:
        _LADDERS[rules_dir] = Filter(rules_dir, module_of(rules_dir))
    return _LADDERS[rules_dir]


@pytest.fixture(scope="session")
def all_enabled(tmp_path_factory):
    """rules_dir -> a copy of it with every .rule-disabled enabled (paths map into the copy)."""
    copies = {}
    for rules_dir in RULES_DIRS:
        module = os.path.basename(os.path.dirname(rules_dir))
        dest = tmp_path_factory.mktemp("enabled") / module / "rules"
        dest.mkdir(parents=True)
        os.chmod(dest.parent, 0o755)
        os.chmod(dest, 0o755)
        for name in os.listdir(rules_dir):
            src = os.path.join(rules_dir, name)
            if os.path.isfile(src) and not os.path.islink(src):
                target = dest / (name[:-len("-disabled")] if name.endswith(".rule-disabled") else name)
                shutil.copyfile(src, target)
                os.chmod(target, 0o644)
        copies[rules_dir] = (str(dest), Filter(str(dest), module_of(rules_dir)))
    return copies


def test_every_module_has_rules():
    assert RULES_DIRS, "no modules/Watch*/rules folder"
    for rules_dir in RULES_DIRS:
        assert rule_files(rules_dir), f"{short(rules_dir)}: no NNN-name.rule file"
        ladder_of(rules_dir)                        # assembles without error


@pytest.mark.parametrize("path", RULE_FILES, ids=short)
def test_rule_examples_hold(path, all_enabled):
    """Each example yields its address (or none), alone and in the ladder."""
    assert examples(path), f"{short(path)} carries no '# example: LINE => ADDR|none' line"
    rules_dir = os.path.dirname(path)
    if path.endswith(".rule"):
        problems = run_examples(path, module_of(path), ladder_of(rules_dir))
    else:
        copy_dir, ladder = all_enabled[rules_dir]
        enabled = os.path.join(copy_dir, os.path.basename(path)[:-len("-disabled")])
        problems = run_examples(enabled, module_of(path), ladder)
    assert problems == []


@pytest.mark.parametrize("path", RULE_FILES, ids=short)
def test_rule_examples_show_both_sides(path):
    """At least one example the file decides, and one it must leave alone."""
    rule = compile_rule(path, module_of(path))
    decided = left = 0
    for ex in examples(path):
        v = rule(ex.line)
        if v is not None and (v.action in ("ignore", "forward") or parse_peer(v.ip) is not None):
            decided += 1
        else:
            left += 1
    assert decided, f"{short(path)}: no example that the rule decides"
    assert left, f"{short(path)}: no example that the rule must not decide (=> none)"


LG_FILES = [p for p in RULE_FILES if module_of(p) == "LG"]


@pytest.mark.parametrize("path", LG_FILES, ids=short)
def test_lg_none_examples_are_not_counted_by_any_rule(path, all_enabled):
    """In WatchLG an example '=> none' is a line the module does not count, not merely
    one this file leaves to a later rule (a reader takes it as the former)."""
    rules_dir = os.path.dirname(path)
    ladder = ladder_of(rules_dir) if path.endswith(".rule") else all_enabled[rules_dir][1]
    for ex in examples(path):
        if ex.expect is None:
            v = ladder.filter(ex.line)
            counted = v is not None and v.action == "inject" and parse_peer(v.ip) is not None
            assert not counted, f"{short(path)}:{ex.lineno}: the ladder counts this '=> none' line ({v.rule} {v.ip})"


@pytest.mark.parametrize("rules_dir", RULES_DIRS, ids=short)
def test_shipped_rule_files_are_not_writable_by_others(rules_dir):
    for path in rule_files(rules_dir, disabled=True):
        mode = stat.S_IMODE(os.stat(path).st_mode)
        assert not mode & (stat.S_IWGRP | stat.S_IWOTH), f"{short(path)} has mode {mode:o}: chmod 644"


def test_lg_success_rule_comes_after_every_failure_rule():
    rules_dir = os.path.join(ROOT, "modules", "WatchLG", "rules")
    files = ladder_of(rules_dir).files
    success = [p for p in files if "success(" in open(p, encoding="utf-8").read()]
    assert success and success == files[-len(success):]


# ---- the loader ---------------------------------------------------------

def write(path, text, mode=0o644):
    path.write_text(text)
    os.chmod(path, mode)
    return str(path)


def rules_folder(tmp_path):
    d = tmp_path / "WatchLG" / "rules"
    d.mkdir(parents=True)
    os.chmod(d, 0o755)
    return d


ROOT_RULE = '''RULE = "root-login"
Pattern = "Failed password for root from "
# example: Nov 22 10:00:00 web1 sshd[4242]: Failed password for root from 203.0.113.5 port 4242 ssh2 => 203.0.113.5
# example: Nov 22 10:00:00 web1 sshd[4242]: Accepted password for root from 203.0.113.5 port 4242 ssh2 => none
if Pattern in REPLY: return inject()
'''


def test_a_rule_without_examples_is_reported(tmp_path):
    d = rules_folder(tmp_path)
    path = write(d / "100-bare.rule", 'RULE = "bare"\nif "Failed" in REPLY: return inject()\n')
    problems = run_examples(path, "LG")
    assert len(problems) == 1 and problems[0].startswith(path) and "example" in problems[0]


def test_a_wrong_example_is_reported_with_its_line(tmp_path):
    d = rules_folder(tmp_path)
    text = ROOT_RULE.replace("=> 203.0.113.5", "=> 203.0.113.6")
    path = write(d / "100-root.rule", text)
    assert run_examples(path, "LG") == [f"{path}:3: example yields 203.0.113.5, expected 203.0.113.6"]


def test_a_syntax_error_names_file_and_line(tmp_path):
    d = rules_folder(tmp_path)
    path = write(d / "170-broken.rule", 'RULE = "broken"\nPattern = "x"\nif Pattern in REPLY return inject()\n')
    with pytest.raises(RuleError) as e:
        compile_rule(path, "LG")
    assert str(e.value).startswith(f"{path}:3: ")
    with pytest.raises(RuleError) as e:                # the ladder reports it the same way
        Filter(str(d), "LG")
    assert str(e.value).startswith(f"{path}:3: ")


@pytest.mark.parametrize("mode", [0o664, 0o646], ids=["group-writable", "world-writable"])
def test_a_rule_others_can_write_is_refused(tmp_path, mode):
    d = rules_folder(tmp_path)
    path = write(d / "100-root.rule", ROOT_RULE, mode)
    with pytest.raises(RuleError) as e:
        Filter(str(d), "LG")
    assert path in str(e.value) and "chmod" in str(e.value)


def test_the_first_rule_that_decides_wins(tmp_path):
    d = rules_folder(tmp_path)
    write(d / "100-root.rule", ROOT_RULE)
    write(d / "200-any-failure.rule", 'RULE = "any-failure"\nif "Failed password" in REPLY: return ignore()\n')
    write(d / "050-two-in-one.rule", 'RULE = "first"\nif "from 192.0.2.1 " in REPLY: return inject()\n'
                                     'RULE = "second"\nif "from 192.0.2." in REPLY: return ignore()\n')
    f = Filter(str(d), "LG")
    v = f.filter("Nov 22 10:00:00 web1 sshd[1]: Failed password for root from 203.0.113.5 port 4242 ssh2")
    assert (v.action, v.rule, v.ip, v.port) == ("inject", "root-login", "203.0.113.5", 4242)
    v = f.filter("Nov 22 10:00:00 web1 sshd[1]: Failed password for deploy from 203.0.113.5 port 4242 ssh2")
    assert (v.action, v.rule) == ("ignore", "any-failure")
    v = f.filter("Nov 22 10:00:00 web1 sshd[1]: Failed password for root from 192.0.2.1 port 1 ssh2")
    assert (v.action, v.rule, v.ip) == ("inject", "first", "192.0.2.1")
    v = f.filter("Nov 22 10:00:00 web1 sshd[1]: Failed password for root from 192.0.2.9 port 1 ssh2")
    assert (v.action, v.rule) == ("ignore", "second")


def test_superflous_map_lines_are_ignored_and_rules_come_first(tmp_path):
    d = rules_folder(tmp_path)
    write(d / "100-root.rule", ROOT_RULE)
    write(d / "superflous_map", "# harmless\nsession opened for user\nServer listening on\n")
    f = Filter(str(d), "LG")
    v = f.filter("Nov 22 10:00:00 web1 sshd[1]: pam_unix(sshd:session): session opened for user root(uid=0) by (uid=0)")
    assert v.action == "ignore" and v.ip is None
    assert f.filter("Nov 22 10:00:00 web1 sshd[1]: Server listening on 0.0.0.0 port 22.").action == "ignore"
    assert f.filter("Nov 22 10:00:00 web1 sshd[1]: something never seen") is None       # untreated
    assert f.filter("Nov 22 10:00:00 web1 sshd[1]: # harmless") is None                 # comments are no strings
    v = f.filter("Nov 22 10:00:00 web1 sshd[1]: Failed password for root from 203.0.113.5 port 22 ssh2 "
                 "session opened for user")
    assert v.action == "inject" and v.rule == "root-login"


def test_disabled_rule_files_are_not_in_the_ladder(tmp_path):
    d = rules_folder(tmp_path)
    write(d / "100-root.rule", ROOT_RULE)
    write(d / "110-probe.rule-disabled",
          'RULE = "probe"\nPattern = "Connection closed by "\n'
          '# example: Nov 22 10:00:00 web1 sshd[1]: Connection closed by 203.0.113.5 port 22 [preauth] => 203.0.113.5\n'
          '# example: Nov 22 10:00:00 web1 sshd[1]: Connection closed by remote host => none\n'
          'if Pattern in REPLY: return inject(bare_port(REPLY))\n')
    f = Filter(str(d), "LG")
    assert [os.path.basename(p) for p in f.files] == ["100-root.rule"]
    assert "probe" not in f.rule_names and "Connection closed by" not in f.assembled()
    assert f.filter("Nov 22 10:00:00 web1 sshd[1]: Connection closed by 203.0.113.5 port 22 [preauth]") is None
    disabled = str(d / "110-probe.rule-disabled")
    assert disabled in rule_files(str(d), disabled=True)
    assert run_examples(disabled, "LG", f) == []       # still checked on its own


def test_shipped_lg_ladder_leaves_out_disabled_files():
    rules_dir = os.path.join(ROOT, "modules", "WatchLG", "rules")
    disabled = [p for p in rule_files(rules_dir, disabled=True) if p.endswith("-disabled")]
    assert disabled, "the probe rules ship disabled"
    assert not set(disabled) & set(ladder_of(rules_dir).files)
    v = ladder_of(rules_dir).filter("Nov 22 10:00:00 web1 sshd[1]: Connection closed by 203.0.113.5 port 22 [preauth]")
    assert v is None or v.action != "inject"
