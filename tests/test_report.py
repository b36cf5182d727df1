"""watcher.py report: warnings first, then the modules' databases, the firewall and the dynloaders."""
import json
import os
import time

import pytest

from conftest import wait_for
from lib import config, report
from lib import db as dbmod
from lib.db import Database, Host
from lib.errors import WatcherError

DAY = 86400


def feed_db(path, now):
    db = Database(path)
    try:
        with db.transaction():
            rows = [("203.0.113.1", "NXDOMAIN", now - 3600, 5, now - 3500, None),
                    ("203.0.113.2", "TRUEHOST", now - 600, 2, None, now + 600),
                    ("203.0.113.3", "UNKNOWN", now - 3 * DAY, 1, None, None)]
            for ip, cls, t, n, dropped, until in rows:
                db.put(Host(ip, cls, None, "root-login", "LG", t, t, n, dropped, until))
                for k in range(n):
                    db.add_event(t + k, ip, "root-login" if k % 2 == 0 else "invalid-user", "LG")
    finally:
        db.close()


def test_report_of_a_stopped_watcher_warns_and_counts_the_database(instance):
    w = instance()
    assert w.run("Prep").returncode == 0
    feed_db(w.path("data", "WatchLG.db"), time.time())
    r = w.run("report")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert out.startswith("Watcher-Report")
    assert out.index("Warnings") < out.index("Modules") < out.index("Firewall") < out.index("Dynloaders")
    assert "! WatchLG is not running" in out
    assert "addresses 3 (NXDOMAIN 1, FAKEHOST 0, TRUEHOST 1, UNKNOWN 1); in tarpit 1, in custody 1" in out
    assert "top rules: root-login 5, invalid-user 3" in out
    attackers = out.split("top attackers of the last 24 h:")[1].split("\n\n")[0]
    assert "203.0.113.1" in attackers and "203.0.113.2" in attackers
    assert "203.0.113.3" not in attackers                      # its affairs are 3 days old
    assert "5 affairs" in attackers
    assert "no state file (lists.state.json)" in out


def test_silent_fifo_is_warned_until_a_line_comes(instance):
    w = instance(FIFO_SILENCE_WARN=1)
    assert w.run("Prep").returncode == 0
    r = w.run("start")
    assert r.returncode == 0, r.stderr
    warned = []

    def silent():                       # WatchLG's own warning: the modules start one after another
        out = w.run("report").stdout
        warned.append(out)
        return f"its FIFO {w.fifo()} has been silent for" in out
    assert wait_for(silent, 10, 0.2), warned[-1]
    out = warned[-1]
    assert "WatchLG: running, pid" in out and "no line yet" in out
    assert f"its FIFO {w.fifo()} has been silent" in out and "FIFO_SILENCE_WARN=1 s" in out
    assert "is not running" not in out
    w.write(["Nov 22 10:00:00 host sshd[1]: Connection closed by 198.51.100.9 port 22 [preauth]"])
    assert wait_for(lambda: "last line" in w.run("report").stdout, 10, 0.2)


def test_report_in_process_judges_silence_with_injected_time(instance):
    w = instance()                   # FIFO_SILENCE_WARN 86400 by default
    assert w.run("Prep").returncode == 0
    assert w.run("start").returncode == 0
    master = config.load(None, w.env)
    mods = {"LG": config.load("LG", w.env)}
    assert wait_for(lambda: os.path.exists(mods["LG"].stats_file))
    started = json.load(open(mods["LG"].stats_file))["started"]
    now_text = report.Report(master, mods, None, started + 3600).text()
    assert "silent" not in now_text and "none" in now_text.split("Modules")[0]
    later = report.Report(master, mods, None, started + 2 * DAY + 3600).text()
    assert "has been silent for 2 d 01 h (FIFO_SILENCE_WARN=86400 s)" in later


def test_dynloader_state_is_shown_and_a_failed_load_warned(instance):
    w = instance()
    assert w.run("Prep").returncode == 0
    now = time.time()
    state = {"spamhaus": {"loaded": now - 7200, "entries": 1432, "ok": True, "message": ""},
             "nixspam": {"loaded": now - 3 * DAY, "entries": 10, "ok": False,
                         "message": "download failed: HTTP 404; the old set is kept"}}
    os.makedirs(w.path("data", "lists"), exist_ok=True)
    with open(w.path("data", "lists", "lists.state.json"), "w") as f:
        json.dump(state, f)
    out = w.run("report").stdout
    assert "Dynloaders (" in out
    assert "spamhaus" in out and "1432 entries, ok" in out and "(2 h 00 min ago)" in out
    assert "10 entries, FAILED: download failed: HTTP 404" in out
    assert "! dynloader nixspam: last load failed: download failed: HTTP 404" in out


def test_report_mail(instance, smtp_sink):
    w = instance(MAILHOST=smtp_sink.mailhost, REPORTMAIL="ops@example.test")
    assert w.run("Prep").returncode == 0
    r = w.run("report", "--mail")
    assert r.returncode == 0, r.stderr
    assert "mailed to ops@example.test" in r.stdout
    msg = smtp_sink.messages[0]
    assert msg["Subject"].startswith("Watcher-Report ") and msg["To"] == "ops@example.test"
    assert msg.get_content_type() == "text/plain"
    assert "WatchLG is not running" in msg.get_content()
    w2 = instance(MAILHOST="127.0.0.1:1")
    assert w2.run("Prep").returncode == 0
    r = w2.run("report", "--mail")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "127.0.0.1:1" in r.stderr


def test_fifo_silence_warn_is_validated(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("FIFO_SILENCE_WARN=soon\n")
    with pytest.raises(WatcherError) as e:
        config.load(None, {"WATCHER_CONF": str(conf)})
    assert "bad.conf:1" in str(e.value) and "FIFO_SILENCE_WARN" in str(e.value)
    conf.write_text("FIFO_SILENCE_WARN=3600\n")
    assert config.load(None, {"WATCHER_CONF": str(conf)}).FIFO_SILENCE_WARN == 3600


def test_report_shows_the_kernel_sets_and_chain_counters(netns_pair, instance):
    net = netns_pair
    w = instance(prefix=["ip", "netns", "exec", net.srv], FIREWALL="ipset")
    assert w.run("Prep").returncode == 0
    assert w.run("start").returncode == 0
    try:
        ip = net.atk_ips[1]
        assert w.run("ban", ip).returncode == 0
        assert not net.connect(ip, timeout=0.3)          # a dropped SYN (and its retries) counts
        out = w.run("report").stdout
        fw = out.split("Firewall (ipset)")[1]
        sets = {l.split()[0]: int(l.split()[1]) for l in fw.splitlines()
                if len(l.split()) == 2 and l.split()[1].isdigit()}
        assert sets["custody"] == 1 and sets["custody6"] == 0 and "whitelist" in sets and "tarpit" in sets
        assert "chain WATCHER (iptables)" in fw and "chain WATCHER (ip6tables)" in fw
        custody = [l for l in fw.split("chain WATCHER (ip6tables)")[0].splitlines() if l.endswith("DROP custody")]
        assert len(custody) == 1 and int(custody[0].split()[0]) >= 1
        assert "addresses 1 (" in out and "in custody 1" in out
        net.sh("iptables", "-D", "INPUT", "-j", "WATCHER", ns=net.srv)
        assert "! iptables INPUT has no jump to WATCHER" in w.run("report").stdout
    finally:
        w.run("stop", "--flush")


def test_mx_and_mb_share_one_database_counted_once(instance):
    w = instance()
    assert w.run("Prep").returncode == 0
    master = config.load(None, w.env)
    mx, mb = config.load("MX", w.env), config.load("MB", w.env)
    assert mx.database == mb.database
    dbmod.create(mx.database, os.path.join(config.module_dir("LG"), "WatchLG.schema"))
    feed_db(mx.database, time.time())
    text = report.Report(master, {"MX": mx, "MB": mb}, None, time.time(), alive=lambda s: None).text()
    assert text.count("addresses 3 (") == 1
    assert "WatchMB: NOT RUNNING" in text and "database shared with WatchMX (counted there)" in text
    assert "! WatchMX is not running" in text and "! WatchMB is not running" in text
