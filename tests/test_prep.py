"""Prep: what it reports, what --install runs, and that it never prompts."""
import os

import pytest

from lib import config, prep, syslogconf


class Done:
    def __init__(self, rc=0):
        self.returncode = rc


def settings_env(tmp_path, **extra):
    values = {"FIFO_BASE": tmp_path / "pipes", "DATA_DIR": tmp_path / "data", "LOG_DIR": tmp_path / "log",
              "RUN_DIR": tmp_path / "run", "WHITELIST": tmp_path / "whitelist", "FIREWALL": "ipset"}
    values.update(extra)
    conf = tmp_path / "t.conf"
    conf.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return {"WATCHER_CONF": str(conf), "SSH_CLIENT": "::ffff:198.51.100.99 50000 22"}


def test_missing_logger_is_a_warning_missing_ipset_a_failure(tmp_path):
    env = settings_env(tmp_path)
    have = {"ipset", "iptables", "ip6tables", "apt-get"}
    out = []
    rc = prep.prepare(out.append, env, which=lambda n: n in have and f"/usr/sbin/{n}")
    text = "\n".join(out)
    assert rc == 0, text
    assert "warning: no rsyslog or syslog-ng" in text and "apt-get install -y rsyslog" in text
    assert "198.51.100.99" in (tmp_path / "whitelist").read_text()      # IPv4-mapped written as IPv4
    out.clear()
    rc = prep.prepare(out.append, env, which=lambda n: n in {"apt-get"} and "/usr/bin/apt-get")
    text = "\n".join(out)
    assert rc == 1
    assert "missing: ipset; install it: apt-get install -y ipset" in text
    assert "missing: iptables; install it: apt-get install -y iptables" in text


def test_rhel_commands(tmp_path):
    env = settings_env(tmp_path)
    out = []
    prep.prepare(out.append, env, which=lambda n: n == "dnf" and "/usr/bin/dnf")
    text = "\n".join(out)
    assert "dnf install -y ipset" in text and "dnf install -y iptables-nft" in text


def test_install_runs_the_package_manager_without_prompting_and_writes_the_snippet(tmp_path, monkeypatch):
    if os.geteuid() != 0:
        pytest.skip("--install needs root")
    env = settings_env(tmp_path)
    installed = set()
    ran = []

    def which(name):
        return f"/usr/bin/{name}" if name in {"apt-get"} | installed else None

    def run(argv, **kw):
        ran.append((argv, kw.get("stdin"), kw.get("env", {}).get("DEBIAN_FRONTEND")))
        if argv[:2] == ["apt-get", "install"]:
            installed.update({"ipset", "iptables", "ip6tables", "rsyslogd"})
        return Done(0 if argv[0] == "apt-get" else 3)
    snippet = tmp_path / "rsyslog.d" / "60-watcher.conf"
    monkeypatch.setitem(syslogconf.SNIPPET_PATHS, "rsyslog", str(snippet))
    out = []
    assert prep.prepare(out.append, env, install=True, which=which, run=run) == 0, out
    install = [r for r in ran if r[0][:2] == ["apt-get", "install"]][0]
    assert install[0][2] == "-y" and {"ipset", "iptables", "rsyslog"} <= set(install[0])
    assert install[1] is not None and install[2] == "noninteractive"     # never waits on a prompt
    text = snippet.read_text()
    assert str(tmp_path / "pipes" / "WatchLG") in text and "ompipe" in text
    out.clear()
    assert prep.prepare(out.append, env, install=True, which=which, run=run) == 0
    assert not any("wrote" in l or "created" in l for l in out)          # twice: nothing changes


def test_syslog_config_paths_follow_the_settings(tmp_path):
    env = settings_env(tmp_path)
    s = config.load(None, env)
    text = syslogconf.rsyslog(s, ["LG"])
    assert f'pipe="{tmp_path}/pipes/WatchLG"' in text and 'prifilt("auth,authpriv.*")' in text
    assert 'action.resumeRetryCount="-1"' in text and 'queue.saveOnShutdown="on"' in text
    assert '$inputname == "imuxsock"' in text and "[watcher uid=%$!uid%" in text
    ng = syslogconf.syslog_ng(s, ["LG"], "s_sys")
    assert f'pipe("{tmp_path}/pipes/WatchLG"' in ng and "source(s_sys)" in ng
