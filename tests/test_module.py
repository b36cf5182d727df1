"""A module running for real (FIREWALL=dry-run, no root needed): FIFO in, database and log out."""
import json
import os
import signal
import time

from conftest import wait_for

FAIL = "Nov 22 10:00:{s:02d} web1 sshd[4242]: Failed password for root from {ip} port {port} ssh2"
INVALID = "Nov 22 10:00:{s:02d} web1 sshd[4243]: Invalid user admin from {ip} port {port}"
ACCEPTED = "Nov 22 10:00:{s:02d} web1 sshd[4244]: Accepted password for alice from {ip} port {port} ssh2"


def affairs(inst, ip):
    d = inst.db()
    try:
        h = d.get(ip)
        return (h.affairs, h.dropped is not None) if h else (0, False)
    finally:
        d.close()


def test_brute_force_lands_in_custody_and_status_shows_it(instance):
    w = instance(MAX_AFFAIRS=5)
    r = w.run("Prep")
    assert r.returncode == 0, r.stdout + r.stderr
    r = w.run("start")
    assert r.returncode == 0, r.stderr
    w.write([FAIL.format(s=i, ip="198.51.100.7", port=40000 + i) for i in range(5)])
    assert wait_for(lambda: affairs(w, "198.51.100.7") == (5, True))
    log = w.log()
    assert "[root-login] 198.51.100.7 UNKNOWN affairs 4/5 -> TARPIT 240s" in log or "affairs 4/5 -> TARPIT 240s" in log
    assert "198.51.100.7 UNKNOWN affairs 5/5 -> DROP" in log
    assert "dry-run: ipset -exist add custody 198.51.100.7" in log
    # a successful login clears affairs, not custody; another address's tarpit is cleared
    w.write([INVALID.format(s=1, ip="2001:db8::7", port=5), ACCEPTED.format(s=2, ip="2001:db8::7", port=6),
             ACCEPTED.format(s=3, ip="198.51.100.7", port=7), "Nov 22 10:00:04 web1 CRON[1]: junk line"])
    assert wait_for(lambda: "2001:db8::7 logged in" in w.log())
    assert affairs(w, "2001:db8::7") == (0, False)
    assert affairs(w, "198.51.100.7")[1] is True
    time.sleep(1.2)                 # counters are written once a second
    r = w.run("status")
    assert r.returncode == 0
    assert "WatchLG: running, pid" in r.stdout
    assert "addresses tracked 2, in tarpit 0, in custody 1" in r.stdout
    assert "lines read 9" in r.stdout and "untreated 1" in r.stdout
    with open(w.path("run", "WatchLG.stats")) as f:
        assert sum(json.load(f)["rules"].values()) >= 8
    assert "junk line" in open(w.path("data", "WatchLG.trace")).read()      # TRACE=on: UNTREATED
    r = w.run("stop")
    assert r.returncode == 0 and not os.path.exists(w.path("run", "WatchLG.pid"))
    assert "not running" in w.run("status").stdout


def test_supervisor_restarts_a_killed_module_and_no_line_is_lost(instance):
    w = instance(MAX_AFFAIRS=50)
    assert w.run("Prep").returncode == 0
    assert w.run("start").returncode == 0
    pid = int(open(w.path("run", "WatchLG.pid")).read())
    logger = os.open(w.fifo(), os.O_RDWR | os.O_NONBLOCK)     # as rsyslog's ompipe holds it
    try:
        os.kill(pid, signal.SIGKILL)
        # written while the module is down: waits in the pipe for the next process
        for i in range(3):
            os.write(logger, (FAIL.format(s=i, ip="198.51.100.8", port=41000 + i) + "\n").encode())
        # a writer that comes and goes (no logger holding the pipe): the supervisor keeps it
        w.write([FAIL.format(s=9, ip="198.51.100.8", port=41009)])
        t = time.monotonic()
        assert wait_for(lambda: affairs(w, "198.51.100.8")[0] == 4, 5)
        assert time.monotonic() - t < 3
    finally:
        os.close(logger)
    assert int(open(w.path("run", "WatchLG.pid")).read()) != pid
    assert "exited with status -9" in open(w.path("log", "watcher.log")).read()


def test_second_start_changes_nothing(instance):
    w = instance()
    assert w.run("Prep").returncode == 0
    assert w.run("start").returncode == 0
    pid = open(w.path("run", "WatchLG.pid")).read()
    r = w.run("start")
    assert r.returncode == 0 and "already running" in r.stdout
    assert open(w.path("run", "WatchLG.pid")).read() == pid


def test_ban_and_unban_in_dry_run(instance):
    w = instance()
    assert w.run("Prep").returncode == 0
    r = w.run("ban", "203.0.113.9")
    assert r.returncode == 0 and "dry-run: ipset -exist add custody 203.0.113.9" in r.stdout
    assert affairs(w, "203.0.113.9") == (5, True)
    r = w.run("unban", "203.0.113.9")
    assert r.returncode == 0 and "cleared in WatchLG" in r.stdout
    assert affairs(w, "203.0.113.9") == (0, False)
    with open(w.path("whitelist"), "a") as f:
        f.write("203.0.113.0/24\n")
    r = w.run("ban", "203.0.113.10")
    assert r.returncode != 0 and "whitelisted" in r.stderr


def test_prep_twice_changes_nothing_and_whitelists_the_ssh_session(instance):
    w = instance()
    w.env["SSH_CLIENT"] = "198.51.100.99 50000 22"
    r = w.run("Prep")
    assert r.returncode == 0 and "created" in r.stdout
    assert "198.51.100.99" in open(w.path("whitelist")).read()
    assert oct(os.stat(w.path("log", "WatchLG.log")).st_mode & 0o777) == "0o600"
    assert oct(os.stat(w.path("data", "WatchLG.db")).st_mode & 0o777) == "0o600"
    before = {p: os.stat(os.path.join(dp, p)).st_mtime_ns for dp, _, fs in os.walk(w.base) for p in fs}
    r = w.run("Prep")
    assert r.returncode == 0 and "created" not in r.stdout
    after = {p: os.stat(os.path.join(dp, p)).st_mtime_ns for dp, _, fs in os.walk(w.base) for p in fs}
    assert before == after


def test_test_mode_json_and_summary(instance, tmp_path):
    w = instance()
    log = tmp_path / "auth.log"
    log.write_text("\n".join([
        FAIL.format(s=1, ip="203.0.113.5", port=1),
        "Nov 22 10:00:02 web1 polkitd[535]: Loading rules from directory /etc/polkit-1/rules.d",
        "Nov 22 10:00:03 web1 sshd[9]: Failed password for invalid user x from 198.51.100.7 port 22 "
        "from 203.0.113.6 port 2 ssh2",
        FAIL.format(s=4, ip="127.0.0.1", port=4),
        FAIL.format(s=5, ip="::ffff:203.0.113.8", port=5),
    ]) + "\n")
    r = w.run("test", "LG", str(log), "--json")
    assert r.returncode == 0
    rows = [json.loads(l) for l in r.stdout.splitlines()]
    assert [x["line"] for x in rows] == [1, 2, 3, 4, 5]
    assert (rows[0]["action"], rows[0]["ip"]) == ("inject", "203.0.113.5")
    assert rows[1] == {"line": 2, "rule": None, "ip": None, "action": "untreated"}
    assert rows[2]["ip"] == "203.0.113.6"
    assert rows[3]["action"] != "inject" and rows[3]["ip"] is None
    assert rows[4]["ip"] == "203.0.113.8"
    r = w.run("test", "LG", "-", input=log.read_text())
    assert r.returncode == 0 and "Lines: 5, inject: 3" in r.stdout and "untreated: 1" in r.stdout
