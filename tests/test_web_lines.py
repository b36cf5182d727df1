"""lib/weblog.py: reading Apache's and nginx's lines, the shipped lists, trusted proxies.

The address of a line is the field the server wrote; X-Forwarded-For is believed
only from a peer in TRUSTED_PROXIES; times come from the lines; the lists are
checked like rules (FILE:LINE errors, refused when others may change them)."""
import calendar
import ipaddress
import os
import shutil
import time
from types import SimpleNamespace

import pytest

from conftest import ROOT
from lib import weblog
from lib.errors import WatcherError
from lib.rules import Filter, RuleError

WB_RULES = os.path.join(ROOT, "modules", "WatchWB", "rules")


def settings(proxies=(), limit=600, window=60):
    return SimpleNamespace(TRUSTED_PROXIES=tuple(ipaddress.ip_network(p) for p in proxies),
                           FLOOD_REQUESTS=limit, FLOOD_WINDOW=window)


def access(peer, xff="-", target="/.env", end=None, tag="apache_access", vhost="shop.example.test",
           when="22/Nov/2026:10:00:00 +0100", status=404, agent="Mozilla/5.0"):
    return (f'Nov 22 10:00:00 web1 {tag}: {peer} {vhost} [{when}] "GET {target} HTTP/1.1" {status} 196 "-" '
            f'"{agent}" "{xff}" {end or peer}')


APACHE = ("Nov 22 10:00:00 web1 apache2[4242]: [auth_basic:error] [pid 4242:tid 1] {vhost}[client {client}] "
          "AH01617: user bob: authentication failure for \"/\": Password Mismatch")
NGINX = ('Nov 22 10:00:00 web1 nginx: 2026/11/22 10:00:00 [error] 4242#4242: *{conn} user "bob": password mismatch, '
         'client: {client}, server: {server}, request: "GET / HTTP/1.1", host: "x"')


# ---- error logs -------------------------------------------------------------------
@pytest.mark.parametrize("field,addr,port", [
    ("203.0.113.5:51234", "203.0.113.5", 51234),
    ("2001:db8::7:51236", "2001:db8::7", 51236),          # Apache 2.4 writes IPv6 without brackets
    ("[2001:db8::8]:51237", "2001:db8::8", 51237),
    ("::ffff:203.0.113.9:40000", "::ffff:203.0.113.9", 40000),
])
def test_apache_client_field_ipv4_and_ipv6(field, addr, port):
    w = weblog.parse(APACHE.format(vhost="[vhost Shop.Example.Test] ", client=field))
    assert (w.kind, w.peer, w.key, w.vhost) == ("error", addr, port, "shop.example.test")
    assert w.message.startswith("AH01617: user bob")
    assert weblog.parse(APACHE.format(vhost="", client=field)).vhost is None


def test_apache_message_quoting_a_client_field_without_one_of_its_own_is_not_read():
    line = ("Nov 22 10:00:00 web1 apache2[4242]: [core:error] [pid 1:tid 1] AH00126: Invalid URI in request "
            "[client 198.51.100.9:1] AH01617: x")
    assert weblog.parse(line) is None
    assert weblog.parse(line.replace("apache2[4242]", "sshd[4242]")) is None       # not Apache's tag


def test_nginx_client_server_and_connection():
    w = weblog.parse(NGINX.format(conn=17, client="2001:db8::31", server="Blog.Example.Test"))
    assert (w.kind, w.peer, w.key, w.vhost, w.message) == ("error", "2001:db8::31", 17, "blog.example.test",
                                                           'user "bob": password mismatch')
    # the user name holds no ':' (nginx cuts it there): the first ', client: ' is nginx's
    line = NGINX.format(conn=1, client="203.0.113.5", server="x").replace('user "bob"', 'user "a, client 198.51.100.9"')
    assert weblog.parse(line).peer == "203.0.113.5"


# ---- access logs -------------------------------------------------------------------
def test_access_line_fields():
    line = access("2001:db8::41", agent='sqlmap \\"x\\" 198.51.100.9', target="/a?b=%2e%2e/")
    w = weblog.parse(line)
    assert (w.kind, w.peer, w.vhost, w.method, w.target, w.status) == (
        "access", "2001:db8::41", "shop.example.test", "GET", "/a?b=%2e%2e/", 404)
    assert w.agent == 'sqlmap \\"x\\" 198.51.100.9' and w.forwarded == "-"
    assert w.time == calendar.timegm((2026, 11, 22, 9, 0, 0)) == weblog.access_time("22/Nov/2026:10:00:00 +0100")


def test_access_line_must_end_with_its_own_peer_unless_nginx_sent_it_whole():
    assert weblog.parse(access("203.0.113.5", end="203.0.113.6")) is None             # two lines' pieces
    cut = access("203.0.113.5")[:-40]
    assert weblog.parse(cut) is None                                                   # Apache's logger: a piece
    w = weblog.parse(cut.replace("apache_access", "nginx_access"))                    # nginx: cut at its end only
    assert w is not None and w.peer == "203.0.113.5" and w.target == "/.env"
    assert weblog.parse(access("203.0.113.5") + " 203.0.113.5") is None               # more after the end


@pytest.mark.parametrize("text,epoch", [
    ("22/Nov/2026:10:00:00 +0100", calendar.timegm((2026, 11, 22, 9, 0, 0))),
    ("22/Nov/2026:10:00:00 -0530", calendar.timegm((2026, 11, 22, 15, 30, 0))),
    ("01/Jan/2027:00:00:00 +0000", calendar.timegm((2027, 1, 1, 0, 0, 0))),
    ("22/Foo/2026:10:00:00 +0100", None),
    ("22/Nov/2026 10:00:00", None),
])
def test_access_time(text, epoch):
    assert weblog.access_time(text) == epoch


def test_syslog_time_rfc3339_and_traditional_with_the_right_year():
    assert weblog.syslog_time("2026-11-22T10:00:00.5+01:00 web1 x: y") == calendar.timegm((2026, 11, 22, 9, 0, 0)) + 0.5
    assert weblog.syslog_time("<14>1 2026-11-22T09:00:00Z web1 x 1 - - y") == calendar.timegm((2026, 11, 22, 9, 0, 0))
    new_year = time.mktime((2027, 1, 1, 0, 0, 10, 0, 0, -1))
    t = weblog.syslog_time("Dec 31 23:59:59 web1 x: y", now=new_year)
    assert time.localtime(t)[:6] == (2026, 12, 31, 23, 59, 59)
    assert weblog.syslog_time("garbage", now=new_year) is None


def test_the_syslog_time_stands_in_for_an_unreadable_access_time():
    line = access("203.0.113.5", when="yesterday at ten").replace("Nov 22 10:00:00", "2026-11-22T10:00:00+00:00")
    assert weblog.parse(line).time == calendar.timegm((2026, 11, 22, 10, 0, 0))


# ---- trusted proxies ---------------------------------------------------------------
def test_forwarded_for_is_believed_only_from_a_trusted_proxy():
    web = weblog.Web("WB", settings=settings(["10.0.0.0/29", "fd00::5/128"]))
    assert web.client(access("203.0.113.5", xff="198.51.100.9"))[0] == "203.0.113.5"            # untrusted peer
    assert web.client(access("10.0.0.5", xff="198.51.100.9, 203.0.113.7"))[0] == "203.0.113.7"   # rightmost
    assert web.client(access("fd00::5", xff="203.0.113.8, 10.0.0.2"))[0] == "203.0.113.8"        # proxy chain
    assert web.client(access("10.0.0.5", xff="2001:db8::9"))[0] == "2001:db8::9"
    for xff in ("-", "10.0.0.1", "unknown, 10.0.0.1", "203.0.113.9, garbage"):                   # nobody to blame
        assert web.client(access("10.0.0.5", xff=xff)) == (None, None), xff
    # an error line from a proxy names the proxy: never banned (use mod_remoteip / realip)
    assert web.client(NGINX.format(conn=1, client="10.0.0.5", server="x")) == (None, None)
    assert web.client(NGINX.format(conn=1, client="203.0.113.5", server="x")) == ("203.0.113.5", 1)


def test_each_request_is_an_attempt_of_its_own():
    web = weblog.Web("WB", settings=settings())
    a, b = web.client(access("203.0.113.5")), web.client(access("203.0.113.5", target="/.git/"))
    assert a[0] == b[0] == "203.0.113.5" and a[1] != b[1]


# ---- lists -------------------------------------------------------------------------
def test_path_entries_with_method_and_status(tmp_path):
    p = tmp_path / "attack-paths"
    p.write_text("# c\n/.env\nPOST /wp-login.php 200,404   # guessing\n/xmlrpc.php 403\n")
    web = weblog.Web("WB", settings=settings())
    web.paths = weblog.read_paths(str(p))
    assert web.paths[1] == weblog.PathEntry("/wp-login.php", "POST", (200, 404))
    assert web.attack_path(access("203.0.113.5", target="/x/.ENV"))
    assert web.attack_path(access("203.0.113.5", target="/%2Eenv"))          # percent-decoded once
    line = access("203.0.113.5", target="/wp-login.php", status=200)
    assert not web.attack_path(line)                                        # GET
    assert web.attack_path(line.replace('"GET ', '"POST '))
    assert not web.attack_path(line.replace('"GET ', '"POST ').replace(" 200 ", " 302 "))
    assert web.attack_path(access("203.0.113.5", target="/xmlrpc.php", status=403))
    assert not web.attack_path(access("203.0.113.5", target="/xmlrpc.php", status=200))


@pytest.mark.parametrize("text,where", [("/ok\nGET /a b c\n", 2), ("/a 20x\n", 1), ("GET /a 200 404\n", 1)])
def test_a_bad_list_line_names_file_and_line(tmp_path, text, where):
    p = tmp_path / "attack-paths"
    p.write_text(text)
    with pytest.raises(WatcherError) as e:
        weblog.read_paths(str(p))
    assert str(e.value).startswith(f"{p}:{where}: ")


@pytest.fixture
def rules_copy(tmp_path):
    dest = tmp_path / "WatchWB" / "rules"
    shutil.copytree(WB_RULES, dest, symlinks=True)
    os.chmod(tmp_path / "WatchWB", 0o755)
    return dest


@pytest.mark.parametrize("name", ["attack-paths", "bad-agents"])
def test_a_list_others_can_write_is_refused_like_a_rule(rules_copy, name):
    os.chmod(rules_copy / name, 0o664)
    with pytest.raises(RuleError) as e:
        Filter(str(rules_copy), "WB")
    assert str(rules_copy / name) in str(e.value) and "chmod" in str(e.value)
    Filter(str(rules_copy), "WB", check_perms=False)          # watcher.py test reads it anyway


def test_an_edited_list_is_what_the_filter_uses(rules_copy):
    line = access("203.0.113.5", target="/our-old-admin/", status=404)
    assert Filter(str(rules_copy), "WB").filter(line).rule == "request"
    with open(rules_copy / "attack-paths", "a") as f:
        f.write("/our-old-admin/\n")
    v = Filter(str(rules_copy), "WB").filter(line)
    assert (v.rule, v.ip, v.vhost) == ("attack-path", "203.0.113.5", "shop.example.test")
    (rules_copy / "bad-agents").write_text("curl/\n")
    v = Filter(str(rules_copy), "WB").filter(access("203.0.113.6", target="/", status=200, agent="curl/8.5.0"))
    assert (v.rule, v.ip) == ("bad-agent", "203.0.113.6")
