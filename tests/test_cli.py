"""Foreseeable mistakes: one clear line, a non-zero exit, never a traceback."""
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from conftest import ROOT, one_clear_line

PROJECT_FILES = ("watcher.py", "Prep", "watcher.conf", "lib", "modules")


@pytest.fixture
def checkout(tmp_path):
    """A copy of the project, so a test may break its rules."""
    dest = tmp_path / "watcher"
    dest.mkdir()
    for name in PROJECT_FILES:
        src = os.path.join(ROOT, name)
        if os.path.isdir(src):
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("*.db*", "__pycache__", "*.trace"))
        else:
            shutil.copy2(src, dest / name)
    return dest


def conf_for(base, **extra):
    values = {"FIFO_BASE": f"{base}/pipes", "DATA_DIR": f"{base}/data", "LOG_DIR": f"{base}/log",
              "RUN_DIR": f"{base}/run", "WHITELIST": f"{base}/whitelist", "BLACKLIST": f"{base}/blacklist",
              "FIREWALL": "dry-run", "DNS_CLASSIFY": "off"}
    values.update(extra)
    path = os.path.join(base, "test.conf")
    with open(path, "w") as f:
        f.write("".join(f"{k}={v}\n" for k, v in values.items()))
    return path


def run(project, conf, *args, env=None, python=sys.executable, **kw):
    script = "Prep" if args[0] == "Prep" else "watcher.py"
    argv = [python, os.path.join(str(project), script)] + list(args[1:] if script == "Prep" else args)
    e = dict(env or os.environ, WATCHER_CONF=conf)
    return subprocess.run(argv, env=e, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, **kw)


def test_help_and_usage_errors(tmp_path):
    conf = conf_for(tmp_path)
    r = run(ROOT, conf, "--help")
    assert r.returncode == 0 and "start" in r.stdout and "unban" in r.stdout and "test" in r.stdout
    one_clear_line(run(ROOT, conf, "frobnicate"), "invalid choice")
    assert run(ROOT, conf, "frobnicate").returncode == 64
    one_clear_line(run(ROOT, conf, "ban", "999.1.1.1"), "not an address")
    one_clear_line(run(ROOT, conf, "test", "XX", "/dev/null"), "no such module")
    one_clear_line(run(ROOT, conf, "test", "LG", str(tmp_path / "missing.log")), "missing.log", "cannot read")


def test_bad_conf_line(tmp_path):
    conf = conf_for(tmp_path, MAX_AFFAIRS="lots")
    line = one_clear_line(run(ROOT, conf, "status"), "test.conf:", "MAX_AFFAIRS")
    assert line.startswith("watcher.py: ")


def python_for_nobody():
    """An interpreter the user nobody may run (this one may live under /root)."""
    for candidate in (sys.executable, "/usr/bin/python3", "/usr/local/bin/python3"):
        path = os.path.realpath(candidate)
        parts = path.split(os.sep)
        ok = all(os.stat(os.sep.join(parts[:i]) or "/").st_mode & 0o001 for i in range(2, len(parts)))
        if os.path.exists(path) and ok and os.stat(path).st_mode & 0o001:
            return candidate
    return None


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to the user nobody")
def test_no_root(tmp_path):
    python = python_for_nobody()
    if python is None:
        pytest.skip("no python3 that the user nobody may execute")
    base = tempfile.mkdtemp(prefix="watcher-noroot-")
    nobody = dict(preexec_fn=lambda: (os.setgid(65534), os.setuid(65534)), python=python)
    try:
        os.chmod(base, 0o755)
        conf = conf_for(base, FIREWALL="ipset")
        os.chmod(conf, 0o644)
        one_clear_line(run(ROOT, conf, "start", **nobody), "needs root")
        one_clear_line(run(ROOT, conf, "unban", "198.51.100.7", **nobody), "needs root")
        one_clear_line(run(ROOT, conf, "stop", "--flush", **nobody), "needs root")
    finally:
        shutil.rmtree(base)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (start checks it before looking for ipset)")
def test_ipset_missing(tmp_path, checkout):
    conf = conf_for(tmp_path, FIREWALL="ipset")
    empty = tmp_path / "bin"
    empty.mkdir()
    env = dict(os.environ, PATH=str(empty))
    r = run(checkout, conf, "Prep", env=env)
    assert r.returncode == 1 and "missing: ipset; install it: " in r.stdout
    one_clear_line(run(checkout, conf, "start", env=env), "ipset not found", "apt-get install ipset")


def test_rule_with_a_syntax_error(tmp_path, checkout):
    conf = conf_for(tmp_path)
    assert run(checkout, conf, "Prep").returncode == 0
    bad = checkout / "modules" / "WatchLG" / "rules" / "105-broken.rule"
    bad.write_text('RULE = "broken"\nPattern = "x"\nif Pattern in REPLY return inject()\n')
    os.chmod(bad, 0o644)
    line = one_clear_line(run(checkout, conf, "start"), "105-broken.rule:3:", "invalid syntax")
    assert not os.path.exists(os.path.join(tmp_path, "run", "watcher.pid"))
    one_clear_line(run(checkout, conf, "test", "LG", "/dev/null"), "105-broken.rule:3:")
    assert line


def test_rule_writable_by_others(tmp_path, checkout):
    conf = conf_for(tmp_path)
    assert run(checkout, conf, "Prep").returncode == 0
    rules = sorted((checkout / "modules" / "WatchLG" / "rules").glob("*.rule"))
    os.chmod(rules[0], 0o666)
    one_clear_line(run(checkout, conf, "start"), rules[0].name, "writable by group or others", "chmod go-w")
    os.chmod(rules[0], 0o644)
    os.chmod(rules[0].parent, 0o777)
    one_clear_line(run(checkout, conf, "start"), "rules", "writable by group or others")
    os.chmod(rules[0].parent, 0o755)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown a file to another user")
def test_rule_owned_by_another_user(tmp_path, checkout):
    conf = conf_for(tmp_path)
    assert run(checkout, conf, "Prep").returncode == 0
    rules = sorted((checkout / "modules" / "WatchLG" / "rules").glob("*.rule"))
    os.chown(rules[0], 65534, 65534)
    one_clear_line(run(checkout, conf, "start"), rules[0].name, "owned by uid 65534")


def test_module_without_database_says_run_prep(tmp_path):
    conf = conf_for(tmp_path)
    one_clear_line(run(ROOT, conf, "start"), "run ./Prep")
