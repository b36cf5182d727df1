"""StatWB: one CSV per virtual host mailed to its owner, the server's total to REPORTMAIL.

A real SMTP server on loopback (aiosmtpd, the smtp_sink fixture) takes the mails;
each customer's mail must hold their own host's figures and addresses and nothing
of another customer's (no other host's name, no address counted only elsewhere)."""
import csv
import io
import os
import subprocess
import sys
import time

import pytest

from conftest import ROOT
from lib import db as dbmod
from lib import stats
from lib.db import Database, Host
from lib.mail import MailError

OWNERS = {"shop.example.test": "alice@example.test", "blog.example.test": "bob@example.test"}


def noon(days_ago: int) -> float:
    t = time.localtime(time.time() - days_ago * 86400)
    return time.mktime((t.tm_year, t.tm_mon, t.tm_mday, 12, 0, 0, 0, 0, -1))


# (address, class, dropped days ago or None, [(days ago, rule, vhost), ...])
FEED = [
    ("203.0.113.1", "NXDOMAIN", 2, [(2, "attack-path", "shop.example.test"), (2, "flood", "shop.example.test")]),
    ("203.0.113.2", "TRUEHOST", None, [(1, "apache-auth", "shop.example.test")] * 3),
    ("2001:db8::3", "UNKNOWN", 0, [(0, "nginx-auth", "blog.example.test")] * 5),
    ("203.0.113.4", "FAKEHOST", None, [(1, "bad-agent", "news.example.test")]),          # nobody's host
    ("203.0.113.5", "UNKNOWN", None, [(0, "apache-auth", None)]),                       # no host known
]


@pytest.fixture
def wb(tmp_path):
    """A WatchWB database fed directly, and the settings that point StatWB at it."""
    data = tmp_path / "data"
    data.mkdir()
    path = str(data / "WatchWB.db")
    dbmod.create(path, os.path.join(ROOT, "lib", "schema.sql"))
    d = Database(path)
    with d.transaction():
        for ip, cls, dropped, events in FEED:
            first = min(noon(a) for a, _, _ in events)
            d.put(Host(ip, cls, None, events[-1][1], "WB", first, max(noon(a) for a, _, _ in events), len(events),
                       noon(dropped) + 30 if dropped is not None else None, None))
            for k, (a, rule, vhost) in enumerate(events):
                d.add_event(noon(a) + k, ip, rule, "WB", vhost)
    d.close()

    def environ(mailhost, **extra):
        conf = tmp_path / "stat.conf"
        values = {"DATA_DIR": str(data), "LOG_DIR": str(tmp_path / "log"), "MAILHOST": mailhost,
                  "REPORTMAIL": "root@example.test",
                  "VHOST_OWNERS": ",".join(f"{h}:{m}" for h, m in OWNERS.items())}
        values.update(extra)
        conf.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
        return dict(os.environ, WATCHER_CONF=str(conf))
    return environ, str(data)


def whole_text(msg) -> str:
    """Everything a recipient can read: headers, text, HTML, every attachment."""
    parts = [str(msg["Subject"]), str(msg["To"])]
    for part in msg.walk():
        if part.get_content_maintype() != "multipart":
            content = part.get_content()
            parts.append(content.decode() if isinstance(content, bytes) else content)
    return "\n".join(parts)


def csv_of(msg):
    att = next(a for a in msg.iter_attachments() if a.get_content_type() == "text/csv")
    content = att.get_content()
    rows = list(csv.reader(io.StringIO(content.decode() if isinstance(content, bytes) else content)))
    return att.get_filename(), rows[0], rows[1:]


def column_sum(header, rows, name):
    return sum(int(r[header.index(name)]) for r in rows) if name in header else 0


def test_each_owner_gets_their_own_host_and_root_gets_the_total(wb, smtp_sink):
    environ, _ = wb
    said = []
    assert stats.main("WB", [], environ=environ(smtp_sink.mailhost), say=said.append) == 0
    by_to = {}
    for (sender, rcpts), msg in zip(smtp_sink.envelopes, smtp_sink.messages):
        assert rcpts == [str(msg["To"])]
        by_to.setdefault(str(msg["To"]), []).append(msg)
    assert sorted(by_to) == ["alice@example.test", "bob@example.test", "root@example.test"]
    assert len(by_to["root@example.test"]) == 2             # the total and the host without an owner

    alice = by_to["alice@example.test"][0]
    text = whole_text(alice)
    assert "Statistics-WB shop.example.test " in str(alice["Subject"])
    name, header, rows = csv_of(alice)
    assert name.startswith("StatWB-shop.example.test-") and name.endswith(".csv")
    assert column_sum(header, rows, "introduced") == 2 and column_sum(header, rows, "dropped") == 1
    assert column_sum(header, rows, "rule:apache-auth") == 3 and column_sum(header, rows, "rule:flood") == 1
    assert "rule:nginx-auth" not in header and "rule:bad-agent" not in header
    assert "203.0.113.1" in text and "203.0.113.2" in text
    for other in ("blog.example.test", "news.example.test", "2001:db8::3", "203.0.113.4", "203.0.113.5"):
        assert other not in text, other

    bob = by_to["bob@example.test"][0]
    text = whole_text(bob)
    name, header, rows = csv_of(bob)
    assert column_sum(header, rows, "rule:nginx-auth") == 5 and column_sum(header, rows, "UNKNOWN") == 1
    assert "2001:db8::3" in text
    for other in ("shop.example.test", "news.example.test", "203.0.113.1", "203.0.113.2", "203.0.113.4"):
        assert other not in text, other

    total = next(m for m in by_to["root@example.test"] if csv_of(m)[0].startswith("StatWB-2"))
    name, header, rows = csv_of(total)
    assert column_sum(header, rows, "introduced") == len(FEED)
    assert sum(column_sum(header, rows, h) for h in header if h.startswith("rule:")) == 12
    unowned = next(m for m in by_to["root@example.test"] if m is not total)
    assert "news.example.test" in str(unowned["Subject"]) and "203.0.113.4" in whole_text(unowned)
    assert len(said) == 4 and any("mailed to alice@example.test" in s for s in said)


def test_stdout_per_host_and_an_unknown_host(wb):
    environ, _ = wb
    env = environ("127.0.0.1:9")
    out = io.StringIO()
    assert stats.main("WB", ["--stdout", "--vhost", "Blog.Example.Test"], environ=env, out=out) == 0
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert column_sum(rows[0], rows[1:], "rule:nginx-auth") == 5 and "rule:apache-auth" not in rows[0]
    out = io.StringIO()
    assert stats.main("WB", ["--stdout"], environ=env, out=out) == 0          # the total, as StatLG's
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert column_sum(rows[0], rows[1:], "introduced") == len(FEED)
    r = subprocess.run([sys.executable, os.path.join(ROOT, "modules", "WatchWB", "StatWB"), "--stdout",
                        "--vhost", "nowhere.example.test"], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 64 and "nowhere.example.test" in r.stderr and "Traceback" not in r.stderr


def test_when_the_mail_fails_every_csv_is_kept(wb):
    environ, data = wb
    with pytest.raises(MailError) as e:
        stats.main("WB", [], environ=environ("127.0.0.1:9"))
    assert "and 3 more mails failed" in str(e.value)
    kept = sorted(os.listdir(data))
    for host in ("shop.example.test", "blog.example.test", "news.example.test"):
        assert any(k.startswith(f"StatWB-{host}-") for k in kept), kept
    assert any(k.startswith("StatWB-2") for k in kept)


def test_the_statwb_launcher_runs_as_cron_does(wb, smtp_sink):
    environ, _ = wb
    r = subprocess.run(["./StatWB"], cwd=os.path.join(ROOT, "modules", "WatchWB"), capture_output=True, text=True,
                       env=environ(smtp_sink.mailhost), timeout=60)
    assert r.returncode == 0, r.stderr
    assert len(smtp_sink.messages) == 4
