"""WatchMX and WatchMB running for real (FIREWALL=dry-run, no root needed): mail lines
into WatchMX's FIFO, mailbox failures forwarded to WatchMB, both counting in one
database, and what `watcher.py status` shows of the pair."""
import csv
import json
import os
import signal
import subprocess
import sys
import time

from conftest import wait_for

DOVECOT = ("Nov 22 10:00:{s:02d} mx1 dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): "
           "user=<info>, method=PLAIN, rip={ip}, lip=192.0.2.1, TLS, session=<s{s}x{ip}>")
SASL = "Nov 22 10:00:{s:02d} mx1 postfix/submission/smtpd[{pid}]: warning: unknown[{ip}]: SASL LOGIN authentication failed: UGFzc3dvcmQ6"
LOST_AUTH = "Nov 22 10:00:{s:02d} mx1 postfix/submission/smtpd[{pid}]: lost connection after AUTH from unknown[{ip}]"
RELAY = ("Nov 22 10:00:{s:02d} mx1 postfix/smtpd[{pid}]: NOQUEUE: reject: RCPT from unknown[{ip}]: 554 5.7.1 "
         "<v@example.org>: Relay access denied; from=<a@example.net> to=<v@example.org> proto=ESMTP helo=<x>")
LOGIN = ("Nov 22 10:00:{s:02d} mx1 dovecot: imap-login: Login: user=<bob>, method=PLAIN, rip={ip}, lip=192.0.2.1, "
         "mpid=3121, TLS, session=<ok{s}>")
SENT = ("Nov 22 10:00:{s:02d} mx1 postfix/smtp[4400]: 4F2B81C0A2: to=<x@example.org>, relay=mx.example.org[{ip}]:25, "
        "delay=0.8, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 9A1B2C3D4E)")


def host(inst, ip):
    d = inst.db("MX")
    try:
        h = d.get(ip)
        return (h.affairs, h.dropped is not None, h.module) if h else (0, False, None)
    finally:
        d.close()


def events(inst, ip):
    d = inst.db("MX")
    try:
        return dict(d.conn.execute("SELECT module, count(*) FROM events WHERE ip = ? GROUP BY module",
                                   (ip,)).fetchall())
    finally:
        d.close()


def started(instance, **settings):
    w = instance(**settings)
    r = w.run("Prep")
    assert r.returncode == 0, r.stdout + r.stderr
    assert os.path.exists(w.path("data", "WatchMX.db")) and not os.path.exists(w.path("data", "WatchMB.db"))
    assert os.path.exists(w.fifo("MB"))
    r = w.run("start")
    assert r.returncode == 0, r.stderr
    assert "WatchMX (pid" in r.stdout and "WatchMB (pid" in r.stdout
    return w


def test_forwarded_failures_count_once_in_mb_and_status_shows_the_pair(instance):
    w = started(instance, MAX_AFFAIRS=5)
    brute, spammer, user = "203.0.113.5", "2001:db8::6", "198.51.100.20"
    lines = [DOVECOT.format(s=i, ip=brute) for i in range(5)]
    lines += [RELAY.format(s=i, pid=4244, ip=spammer) for i in range(2)]
    lines += [SASL.format(s=10, pid=4300, ip=user), LOST_AUTH.format(s=10, pid=4300, ip=user),   # one session
              LOGIN.format(s=11, ip=user), SENT.format(s=12, ip="192.0.2.60"),
              "Nov 22 10:00:13 mx1 something: never seen"]
    w.write(lines, token="MX")
    assert wait_for(lambda: host(w, brute)[:2] == (5, True))
    assert wait_for(lambda: host(w, spammer)[0] == 2)
    assert wait_for(lambda: f"{user} logged in" in w.log("MB"))
    # forwarded lines are WatchMB's alone: never counted by WatchMX as well
    assert events(w, brute) == {"MB": 5} and events(w, spammer) == {"MX": 2}
    assert events(w, user) == {"MB": 1}                    # SASL failure + lost connection of one session
    assert host(w, user)[0] == 0                           # the successful login cleared it
    assert f"[dovecot-auth-failed] {brute} UNKNOWN affairs 5/5 -> DROP" in w.log("MB")
    assert "dry-run: ipset -exist add custody 203.0.113.5" in w.log("MB")
    assert brute not in w.log("MX") and f"[relay-denied] {spammer} UNKNOWN affairs 2/5" in w.log("MX")
    assert "never seen" in open(w.path("data", "WatchMX.trace")).read()
    time.sleep(1.2)                                        # counters are written once a second
    mx = json.load(open(w.path("run", "WatchMX.stats")))
    mb = json.load(open(w.path("run", "WatchMB.stats")))
    assert (mx["lines"], mx["forwarded"], mx["untreated"]) == (len(lines), 8, 1)
    assert (mb["lines"], mb["forwarded"]) == (8, 0)
    assert mb["rules"] == {"dovecot-auth-failed": 5, "sasl-failed": 1, "auth-aborted": 1, "dovecot-login": 1}
    r = w.run("status")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "WatchMX: running, pid" in out and "WatchMB: running, pid" in out
    assert out.index("WatchMX:") < out.index("WatchMB:")
    mx_part, mb_part = out[out.index("WatchMX:"):out.index("WatchMB:")], out[out.index("WatchMB:"):]
    assert f"lines read {len(lines)}, untreated 1, ignored 1, " in mx_part and "forwarded 8" in mx_part
    assert "lines read 8, untreated 0, ignored 0, " in mb_part and "forwarded 0" in mb_part
    assert "WatchMX forwarded 8 lines to it" in out
    assert "addresses tracked 3, in tarpit 1, in custody 1 (WatchMX and WatchMB together)" in out
    r = w.run("stop")
    assert r.returncode == 0
    assert "WatchMX: not running" in w.run("status").stdout


def test_mx_and_mb_count_the_same_address_at_once(instance):
    """Postfix lines (WatchMX) and Dovecot lines (WatchMB) for one address, interleaved:
    two processes writing the same row of the shared database, nothing lost."""
    w = started(instance, MAX_AFFAIRS=1000)
    ip = "203.0.113.7"
    lines = []
    for i in range(60):
        lines.append(RELAY.format(s=i % 60, pid=5000 + i, ip=ip))
        lines.append(DOVECOT.format(s=i % 60, ip=ip).replace("session=<", f"session=<{i}"))
    w.write(lines, token="MX")
    assert wait_for(lambda: host(w, ip)[0] == 120, 15), host(w, ip)
    assert events(w, ip) == {"MX": 60, "MB": 60}
    for token in ("MX", "MB"):
        assert "locked" not in w.log(token)


def test_a_line_forwarded_while_mb_is_down_waits_in_the_pipe(instance):
    w = started(instance, MAX_AFFAIRS=50)
    ip = "203.0.113.8"
    pid = int(open(w.path("run", "WatchMB.pid")).read())
    os.kill(pid, signal.SIGKILL)
    # WatchMX forwards at once: the lines wait in WatchMB's FIFO (held open by the
    # supervisor and by WatchMX's forwarder) until the supervisor has restarted it
    w.write([DOVECOT.format(s=i, ip=ip) for i in range(3)], token="MX")
    assert wait_for(lambda: host(w, ip)[0] == 3, 10)
    assert int(open(w.path("run", "WatchMB.pid")).read()) != pid
    assert "WatchMB exited with status -9" in open(w.path("log", "watcher.log")).read()
    assert events(w, ip) == {"MB": 3}


def test_expiremx_and_statmx_cover_mbs_rows(instance):
    """The cron tools of the manual's crontab, run as written from the module folder:
    MB's affairs live in MX's database, so ExpireMX and StatMX see them."""
    w = started(instance, MAX_AFFAIRS=5)
    w.write([DOVECOT.format(s=i, ip="203.0.113.9") for i in range(2)]
            + [RELAY.format(s=3, pid=4244, ip="203.0.113.10")], token="MX")
    assert wait_for(lambda: host(w, "203.0.113.9")[0] == 2 and host(w, "203.0.113.10")[0] == 1)
    folder = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "modules", "WatchMX")
    r = subprocess.run([sys.executable, "./StatMX", "--stdout"], cwd=folder, env=w.env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(r.stdout.splitlines()))
    assert sum(int(x["introduced"]) for x in rows) == 2                # one address of MB's, one of MX's
    assert sum(int(x.get("rule:dovecot-auth-failed") or 0) for x in rows) == 2
    assert sum(int(x.get("rule:relay-denied") or 0) for x in rows) == 1
    r = subprocess.run([sys.executable, "./ExpireMX", "0"], cwd=folder, env=w.env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "removed 2 addresses" in r.stdout
    assert host(w, "203.0.113.9") == (0, False, None) and host(w, "203.0.113.10") == (0, False, None)
