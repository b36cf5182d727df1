"""dist/: the systemd unit, the logrotate config and the crontab sample, filled in by Prep.

The unit is checked by systemd-analyze and by running its ExecStart/ExecStop
the way systemd would (Type=forking: the start command returns, the PIDFile
names the process that stays); the logrotate config by a real logrotate run
while a module log is written; the crontab lines by running them as cron
would, from /bin/sh."""
import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT
from lib import config, prep
from lib.log import LogFile
from lib.supervise import alive, installed_modules, read_pid


TARGETS = dict(prep.DIST_TARGETS)      # the real ones, before conftest points them into tmp_path


def settings(w):
    return config.load(None, w.env), {t: config.load(t, w.env) for t in installed_modules()}


def rendered(w, name):
    master, mods = settings(w)
    return prep.render(name, prep.dist_values(master, mods))


def directives(text):
    out = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            out.setdefault(k, []).append(v)
    return out


def test_unit_passes_systemd_analyze_verify(instance, tmp_path):
    tool = shutil.which("systemd-analyze")
    if not tool:
        pytest.skip("systemd-analyze missing: apt-get install systemd (tests/run does)")
    w = instance()
    unit = tmp_path / "watcher.service"
    unit.write_text(rendered(w, "watcher.service"))
    r = subprocess.run([tool, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    d = directives(unit.read_text())
    assert d["After"] == ["network-online.target rsyslog.service syslog-ng.service"]
    assert d["Wants"] == ["network-online.target"] and d["WantedBy"] == ["multi-user.target"]
    assert d["ExecStart"] == [f"{sys.executable} {ROOT}/watcher.py start"]
    assert not re.search(r"@[A-Z_]+@", unit.read_text())             # every placeholder filled


def test_unit_start_and_stop_behave_as_type_forking_expects(instance, tmp_path):
    """systemd runs ExecStart, waits for it to exit, then reads PIDFile: it must name the live
    supervisor; ExecStop must stop it."""
    w = instance()
    assert w.run("Prep").returncode == 0
    d = directives(rendered(w, "watcher.service"))
    assert d["Type"] == ["forking"]
    start = subprocess.run(shlex.split(d["ExecStart"][0]), env=w.env, capture_output=True, text=True,
                           timeout=60, stdin=subprocess.DEVNULL)
    assert start.returncode == 0, start.stderr
    pid = read_pid(d["PIDFile"][0])
    assert pid and alive(pid, "_supervise")
    assert "WatchLG: running" in w.run("status").stdout
    stop = subprocess.run(shlex.split(d["ExecStop"][0]), env=w.env, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)
    assert stop.returncode == 0, stop.stderr
    assert not alive(pid, "_supervise")


def test_logrotate_config_rotates_the_log_and_the_module_follows(instance, tmp_path):
    tool = shutil.which("logrotate")
    if not tool:
        pytest.skip("logrotate missing: apt-get install logrotate (tests/run does)")
    if os.geteuid() != 0:
        pytest.skip("the config says `su root root`: logrotate must run as root")
    w = instance(TRACE="on")
    master, mods = settings(w)
    conf = tmp_path / "watcher.logrotate"
    conf.write_text(rendered(w, "logrotate.conf"))
    s = mods["LG"]
    heads = [l.split() for l in conf.read_text().splitlines() if l.endswith(" {")]
    assert len(heads) == 2
    assert set(heads[0][:-1]) == {m.log_file for m in mods.values()} | {f"{master.LOG_DIR}/watcher.log"}
    assert set(heads[1][:-1]) == {m.trace_file for m in mods.values()}
    log = LogFile(s.log_file, "WatchLG")
    log.write("before the rotation")
    trace = LogFile(s.trace_file, "WatchLG")
    trace.write("[UNTREATED] 'a line'")
    state = tmp_path / "state"
    r = subprocess.run([tool, "-f", "-s", str(state), str(conf)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "error" not in r.stderr.lower(), r.stderr
    assert "before the rotation" in open(s.log_file + ".1").read()
    assert os.stat(s.log_file).st_mode & 0o777 == 0o600            # `create 0600`, as the modules make it
    log.write("after the rotation")                               # the writer reopens by itself
    assert "after the rotation" in open(s.log_file).read()
    assert "after the rotation" not in open(s.log_file + ".1").read()
    assert os.path.exists(s.trace_file + ".1")
    log.close()
    trace.close()


def test_prep_prints_the_install_commands_and_they_write_what_install_would(instance, tmp_path):
    w = instance()
    r = w.run("Prep")
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    for name, target in TARGETS.items():
        if os.path.exists(target) and open(target).read() == rendered(w, name):
            continue                                 # installed on this machine already: nothing to say
        assert f"{target} is missing" in out or f"{target} differs" in out
        cmd = next(l.strip() for l in out.splitlines() if l.strip().startswith("sed ") and f"> {target}" in l)
        cmd = cmd.split(" && ")[0].replace(f"> {target}", f"> {tmp_path / name}")
        assert subprocess.run(["sh", "-c", cmd], timeout=30).returncode == 0
        assert (tmp_path / name).read_text() == rendered(w, name)
    assert "root's crontab" in out and "Prep never writes it" in out
    assert f"cd {ROOT}/modules/WatchLG && ./ExpireLG" in out
    assert f"cd {ROOT}/modules/WatchLG && ./StatLG >/dev/null 2>&1" in out
    for token in ("LG", "MX", "WB"):       # a line whose program is not there comes out commented
        line = next(l for l in out.splitlines() if f"./Stat{token}" in l)
        there = os.path.exists(os.path.join(ROOT, "modules", f"Watch{token}", f"Stat{token}"))
        assert line.strip().startswith("#") != there, line
        assert line.endswith("# not installed") != there, line


def test_install_writes_the_files_and_reloads_systemd_only_when_it_runs(instance, tmp_path):
    w = instance()
    master, mods = settings(w)
    targets = {"logrotate.conf": str(tmp_path / "etc/logrotate.d/watcher"),
               "watcher.service": str(tmp_path / "etc/systemd/system/watcher.service")}
    ran, said = [], []
    rc = prep.dist_files(master, mods, said.append, True, run=lambda argv, **kw: ran.append(argv),
                         targets=targets, booted=lambda: True)
    assert rc == 0
    for name, path in targets.items():
        assert open(path).read() == rendered(w, name) and os.stat(path).st_mode & 0o777 == 0o644
    assert ran == [["systemctl", "daemon-reload"]]
    assert not any("crontab" in argv for argv in map(" ".join, ran))     # never writes a crontab
    said.clear()
    ran.clear()
    prep.dist_files(master, mods, said.append, True, run=lambda argv, **kw: ran.append(argv),
                    targets=targets, booted=lambda: False)
    assert ran == [] and not any(l.startswith("wrote") for l in said)    # unchanged: nothing written
    os.unlink(targets["watcher.service"])
    prep.dist_files(master, mods, said.append, True, run=lambda argv, **kw: ran.append(argv),
                    targets=targets, booted=lambda: False)
    assert ran == [] and any("systemd is not running here" in l for l in said)


def test_crontab_lines_work_as_written(instance, smtp_sink):
    """Each active line, run by /bin/sh as cron would (with the test's python3 first on PATH)."""
    w = instance(MAILHOST=smtp_sink.mailhost)
    assert w.run("Prep").returncode == 0
    master, mods = settings(w)
    lines = [l for l in prep.crontab_lines(prep.dist_values(master, mods))
             if l and not l.startswith("#") and "dynloaders/" not in l]     # those fetch from the Internet
    assert len(lines) >= 3
    env = dict(w.env, PATH=os.path.dirname(sys.executable) + os.pathsep + "/usr/bin:/bin")
    for line in lines:
        command = re.split(r"\s+", line, maxsplit=5)[5]
        r = subprocess.run(["/bin/sh", "-c", command], env=env, capture_output=True, text=True, timeout=60,
                           cwd="/", stdin=subprocess.DEVNULL)
        assert r.returncode == 0, (line, r.stderr)
    subjects = [m["Subject"].split()[0] for m in smtp_sink.messages]
    assert "Statistics-LG" in subjects and "Watcher-Report" in subjects


def test_a_tree_without_dist_is_not_an_error(instance, tmp_path):
    w = instance()
    master, mods = settings(w)
    said = []
    assert prep.dist_files(master, mods, said.append, False, dist_dir=str(tmp_path / "nodist")) == 0
    assert said == [f"note: no {tmp_path / 'nodist'}: no logrotate, systemd or cron files to offer"]
