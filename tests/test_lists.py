"""Block lists without the kernel: parsing both Spamhaus formats, plain and
NiX Spam lists, validation of every entry, the FEEDS file, downloads from a
real HTTP server on loopback (404, slow, cut short, too big, gzip), the
refresh interval and its cache, the state file, and the command lines in
dry-run."""
import gzip
import ipaddress
import json
import os
import shutil
import subprocess
import threading
import time

import pytest

import listserver
from conftest import ROOT, one_clear_line, tool
from lib import firewall, listentries, lists, liststore
from lib.errors import WatcherError
from lib.lists import BlockList, ListError
from listserver import drop_json

OWN = [ipaddress.ip_address("192.0.2.1"), ipaddress.ip_address("2001:db8::1"), ipaddress.ip_address("127.0.0.1")]
T0 = 1_800_000_000.0


# ---------------------------------------------------------------- parsing
def test_spamhaus_json_lines_give_every_cidr_and_need_the_final_metadata_line():
    body = drop_json(["203.0.113.0/24", "198.51.100.0/25"])
    assert listentries.parse(body, "spamhaus") == [(1, "203.0.113.0/24"), (2, "198.51.100.0/25")]
    # no trailing newline after the metadata line is fine: the metadata line is the end mark
    assert len(listentries.parse(body.rstrip("\n"), "spamhaus")) == 2
    with pytest.raises(ListError, match="metadata"):
        listentries.parse(drop_json(["203.0.113.0/24"], metadata=False), "spamhaus")
    cut = body[:body.rindex('"copyright"')]              # cut in the middle of the last line
    with pytest.raises(ListError, match="truncated"):
        listentries.parse(cut, "spamhaus")
    with pytest.raises(ListError, match="line 2 is not JSON"):
        listentries.parse('{"cidr": "203.0.113.0/24"}\n<html>\n{"type": "metadata"}\n', "spamhaus")


def test_spamhaus_legacy_text_format_and_its_comments():
    body = ("; Spamhaus DROP List 2026/11/22 - (c) 2026 The Spamhaus Project\n; Last-Modified: now\n"
            "203.0.113.0/24 ; SBL123\n\n198.51.100.0/25 ; SBL124\n")
    assert listentries.parse(body, "spamhaus") == [(3, "203.0.113.0/24"), (5, "198.51.100.0/25")]
    with pytest.raises(ListError, match="no newline"):
        listentries.parse(body + "198.51.1", "spamhaus")


def test_plain_and_nixspam_formats():
    plain = "# a feed\n203.0.113.5\n2001:db8:5::/48 ; a comment\n198.51.100.7  # another\n203.0.113.9 extra\n"
    assert listentries.parse(plain, "plain") == [(2, "203.0.113.5"), (3, "2001:db8:5::/48"), (4, "198.51.100.7"),
                                           (5, "203.0.113.9 extra")]
    nix = "1700000000 203.0.113.5\n1700000001 2001:db8::5\n203.0.113.6\n# comment\n"
    assert listentries.parse(nix, "nixspam") == [(1, "203.0.113.5"), (2, "2001:db8::5"), (3, "203.0.113.6")]
    for fmt in ("plain", "nixspam", "spamhaus"):
        with pytest.raises(ListError, match="empty"):
            listentries.parse(" \n", fmt)


@pytest.mark.parametrize("text,why", [
    ("0.0.0.0/0", "wider than /8"),
    ("10.0.0.0/7", "wider than /8"),
    ("2001::/16", "wider than /19"),
    ("::/0", "wider than /19"),
    ("127.0.0.1", "loopback"),
    ("::1", "loopback"),
    ("224.0.0.5", "multicast"),
    ("ff02::1", "multicast"),
    ("169.254.1.1", "link-local"),
    ("fe80::/64", "link-local"),
    ("0.0.0.0", "this network"),
    ("::", "unspecified"),
    ("192.0.2.0/24", "this host's own address 192.0.2.1"),
    ("2001:db8::/32", "this host's own address 2001:db8::1"),
    ("::ffff:192.0.2.1", "this host's own address"),
    ("not-an-ip", "not an address"),
    ("1.2.3.400", "not an address"),
    ("2001:db8:9::1%eth0", "not an address"),
    ("203.0.113.9 extra", "not an address"),
    (None, "no address"),
])
def test_absurd_or_malformed_entries_are_refused(text, why):
    with pytest.raises(ValueError, match=why):
        listentries.check_entry(text, OWN)


@pytest.mark.parametrize("text,net", [
    ("203.0.113.5", "203.0.113.5/32"),
    ("203.0.113.5/24", "203.0.113.0/24"),          # host bits: the network is meant
    ("10.0.0.0/8", "10.0.0.0/8"),                  # as wide as allowed; private space is a list's business
    ("2a06:e000::/19", "2a06:e000::/19"),
    ("::ffff:203.0.113.5", "203.0.113.5/32"),
])
def test_good_entries(text, net):
    assert str(listentries.check_entry(text, OWN)) == net


def test_validate_reports_file_and_line_and_keeps_the_rest_once():
    entries = [(1, "203.0.113.0/24"), (2, "0.0.0.0/0"), (3, "junk"), (4, "203.0.113.0/24"), (5, "2001:db8:7::/48")]
    nets, problems = listentries.validate(entries, OWN, "http://x/list")
    assert [str(n) for n in nets] == ["203.0.113.0/24", "2001:db8:7::/48"]
    assert problems[0].startswith("http://x/list:2: rejected: 0.0.0.0/0 is wider than /8")
    assert problems[1].startswith("http://x/list:3: rejected: not an address")


# ---------------------------------------------------------------- the FEEDS file
def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return str(path)


def test_feeds_file(tmp_path):
    path = write(tmp_path / "feeds.conf", "# comment\n\nssh_de https://lists.example.test/ssh.txt\n"
                                          "nix http://mirror.example.test/nixspam-ip.dump.gz nixspam 30m # old\n"
                                          "edrop https://mirror.example.test/drop.json spamhaus 1d\n")
    feeds = lists.read_feeds(path)
    assert [(f.name, f.urls, f.fmt, f.interval) for f in feeds] == [
        ("ssh_de", ("https://lists.example.test/ssh.txt",), "plain", 3600),
        ("nix", ("http://mirror.example.test/nixspam-ip.dump.gz",), "nixspam", 1800),
        ("edrop", ("https://mirror.example.test/drop.json",), "spamhaus", 86400)]
    assert feeds[1].where == f"{path}:4"


@pytest.mark.parametrize("line,why", [
    ("ssh_de", "expected NAME URL"),
    ("a b c d e", "expected NAME URL"),
    ("9lives http://x.test/l", "not a usable set name"),
    ("bad-name http://x.test/l", "not a usable set name"),
    ("a23456789012345678901234567 http://x.test/l", "at most 26 characters"),
    ("custody http://x.test/l", "one of Watcher's own sets"),
    ("whitelist6 http://x.test/l", "one of Watcher's own sets"),
    ("highjackers http://x.test/l", "one of Watcher's own sets"),
    ("feed http://x.test/l\nfeed6 http://x.test/m", "already used by feed feed"),
    ("feed http://x.test/l\nfeed http://x.test/m", "already used by feed feed"),
    ("feed ftp://x.test/l", "not an http:// or https:// URL"),
    ("feed http://x.test/l json", "unknown format 'json'"),
    ("feed http://x.test/l 6h", "interval comes after it"),
    ("feed http://x.test/l plain 6w", "interval '6w'"),
    ("feed http://x.test/l plain 10s", "shorter than 60 s"),
])
def test_feeds_file_mistakes_name_file_and_line(tmp_path, line, why):
    path = write(tmp_path / "feeds.conf", "# feeds\n" + line + "\n")
    with pytest.raises(WatcherError) as e:
        lists.read_feeds(path)
    assert str(e.value).startswith(f"{path}:{1 + line.count(chr(10)) + 1}: ") and why in str(e.value)


def test_the_shipped_feeds_conf_parses_and_loads_nothing_by_default():
    assert lists.read_feeds(os.path.join(ROOT, "dynloaders", "feeds.conf")) == []
    text = open(os.path.join(ROOT, "dynloaders", "feeds.conf")).read()
    assert "https://lists.blocklist.de/lists/ssh.txt" in text and "https://lists.blocklist.de/lists/mail.txt" in text


def test_backend_gets_a_set_pair_per_feed_dropped_after_highjackers(instance, tmp_path):
    feeds = write(tmp_path / "feeds.conf", "ssh_de http://x.test/ssh.txt\nmail_de http://x.test/mail.txt\n")
    from lib import config
    s = config.load(None, instance(FEEDS=feeds).env)
    fw = firewall.backend(s, say=lambda _: None)
    assert fw.extra_sets == ["ssh_de", "mail_de"]
    ipset = firewall.Ipset(str(tmp_path / "created"), extra_sets=fw.extra_sets)
    assert ("mail_de6", "mail_de", "inet6") in ipset.all_sets()
    order = [r[3] for r in firewall.chain_rules(fw.extra_sets)]
    assert order == ["whitelist", "highjackers", "ssh_de", "mail_de", "custody", "tarpit", "blacklist"]


# ---------------------------------------------------------------- a real HTTP server on loopback
@pytest.fixture(scope="module")
def web(tmp_path_factory):
    """(base URL, the served folder: files["/name"] = body)."""
    root = str(tmp_path_factory.mktemp("www"))
    s = listserver.server(root, 0)
    threading.Thread(target=s.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{s.server_address[1]}", listserver.Folder(root)
    s.shutdown()
    s.server_close()


def test_fetch_from_a_real_server(web):
    base, files = web
    files["/ok.txt"] = b"203.0.113.5\n"
    files["/nix.gz"] = gzip.compress(b"1700000000 203.0.113.5\n")
    files["/big.txt"] = b"203.0.113.5\n" * 200
    assert lists.fetch(base + "/ok.txt", 5) == b"203.0.113.5\n"
    assert lists.fetch(base + "/nix.gz", 5) == b"1700000000 203.0.113.5\n"
    with pytest.raises(ListError, match=r"/missing.txt: HTTP 404"):
        lists.fetch(base + "/missing.txt", 5)
    with pytest.raises(ListError, match="truncated"):
        lists.fetch(base + "/cut", 5)
    with pytest.raises(ListError, match="cap"):
        lists.fetch(base + "/big.txt", 5, max_bytes=1000)
    files["/bomb.gz"] = gzip.compress(b"0" * 100000)
    with pytest.raises(ListError, match="unpacked"):
        lists.fetch(base + "/bomb.gz", 5, max_bytes=1000)
    files["/cutgz.gz"] = gzip.compress(b"203.0.113.5\n" * 100)[:-12]
    with pytest.raises(ListError, match="gzip"):
        lists.fetch(base + "/cutgz.gz", 5)
    started = time.monotonic()
    with pytest.raises(ListError, match="within 1 s"):
        lists.fetch(base + "/slow", 1)
    assert time.monotonic() - started < 2.5


def test_fetch_of_a_closed_port_is_one_clear_error():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ListError, match="cannot download"):
        lists.fetch(f"http://127.0.0.1:{port}/drop.json", 2)


# ---------------------------------------------------------------- refresh: interval, cache, state
class Fetcher:
    def __init__(self, bodies):
        self.bodies, self.calls = dict(bodies), []

    def __call__(self, url, timeout):
        self.calls.append(url)
        body = self.bodies[url]
        if isinstance(body, Exception):
            raise body
        return body


SPAM = BlockList("highjackers", ("http://t/v4", "http://t/v6"), "spamhaus", 3600)


def good_bodies():
    return {"http://t/v4": drop_json(["203.0.113.0/24", "198.51.100.0/24", "0.0.0.0/0"]).encode(),
            "http://t/v6": drop_json(["2001:db8:100::/48"]).encode()}


def test_refresh_downloads_then_uses_the_cache_within_the_interval(tmp_path):
    fw, data, out = firewall.Recording(), str(tmp_path), []
    f = Fetcher(good_bodies())
    msg = lists.refresh(SPAM, fw, data, now=T0, own=OWN, fetcher=f, say=out.append)
    assert "loaded 2 IPv4 and 1 IPv6 networks from a fresh download" in msg and "1 entry rejected" in msg
    assert set(fw.sets["highjackers"]) == {"203.0.113.0/24", "198.51.100.0/24"}
    assert set(fw.sets["highjackers6"]) == {"2001:db8:100::/48"}
    assert any("http://t/v4:3: rejected: 0.0.0.0/0 is wider than /8" in o for o in out)
    state = json.load(open(os.path.join(data, "lists", "lists.state.json")))
    assert state["highjackers"] == {"loaded": int(T0), "entries": 3, "ok": True,
                                    "message": state["highjackers"]["message"]}
    assert "downloaded from http://t/v4" in state["highjackers"]["message"]
    # within the hour: no download, the cached copy is loaded (even into a flushed set), and it says so
    fw.sets["highjackers"].clear()
    f.calls.clear()
    msg = lists.refresh(SPAM, fw, data, now=T0 + 3500, own=OWN, fetcher=f, say=out.append)
    assert f.calls == [] and "cached copy" in msg and "less than 1 h old" in msg and "--force" in msg
    assert set(fw.sets["highjackers"]) == {"203.0.113.0/24", "198.51.100.0/24"}
    # --force downloads anyway, and so does a run after the hour
    lists.refresh(SPAM, fw, data, now=T0 + 3500, own=OWN, fetcher=f, force=True, say=out.append)
    assert f.calls == ["http://t/v4", "http://t/v6"]
    f.calls.clear()
    lists.refresh(SPAM, fw, data, now=T0 + 3500 + 3600 - 61, own=OWN, fetcher=f, say=out.append)
    assert f.calls == []
    # an hourly cron job that starts a moment early is still due (a minute's grace)
    lists.refresh(SPAM, fw, data, now=T0 + 3500 + 3600 - 59, own=OWN, fetcher=f, say=out.append)
    assert len(f.calls) == 2
    # another URL is another list: no cached copy of the old one stands in for it
    moved = BlockList("highjackers", ("http://t/v4", "http://u/v6"), "spamhaus", 3600)
    f.bodies["http://u/v6"] = f.bodies["http://t/v6"]
    f.calls.clear()
    lists.refresh(moved, fw, data, now=T0 + 7200 + 60, own=OWN, fetcher=f, say=out.append)
    assert f.calls == ["http://t/v4", "http://u/v6"]


@pytest.mark.parametrize("v4,why", [
    (ListError("HTTP 404 Not Found"), "HTTP 404"),
    (drop_json(["203.0.113.0/24"], metadata=False).encode(), "truncated"),
    (drop_json([]).encode(), "no entries"),
    (b"<html><body>Service unavailable</body></html>\n", "not a spamhaus list"),
    (b"; Spamhaus DROP List\n203.0.113.0/24 ; SBL1\n198.51.1", "truncated"),
])
def test_a_failed_load_leaves_sets_cache_and_traffic_as_they_were(tmp_path, v4, why):
    fw, data = firewall.Recording(), str(tmp_path)
    lists.refresh(SPAM, fw, data, now=T0, own=OWN, fetcher=Fetcher(good_bodies()), say=lambda _: None)
    before = {k: dict(v) for k, v in fw.sets.items()}
    cache = open(os.path.join(data, "lists", "highjackers.0.cache"), "rb").read()
    bad = dict(good_bodies(), **{"http://t/v4": v4})
    with pytest.raises(ListError) as e:
        lists.refresh(SPAM, fw, data, now=T0 + 10, own=OWN, fetcher=Fetcher(bad), force=True, say=lambda _: None)
    assert why in str(e.value) and "keep what they held (3 entries)" in str(e.value)
    assert "\n" not in str(e.value)
    assert fw.sets == before
    assert open(os.path.join(data, "lists", "highjackers.0.cache"), "rb").read() == cache
    st = liststore.read_state(data)["highjackers"]
    assert st["ok"] is False and st["entries"] == 3 and st["loaded"] == int(T0 + 10) and why in st["message"]


def test_start_loads_the_cached_copy_into_empty_sets_only(tmp_path):
    from types import SimpleNamespace
    data = str(tmp_path)
    s = SimpleNamespace(DATA_DIR=data, FEEDS=str(tmp_path / "none.conf"),
                        SPAMHAUS_DROP_URL="http://t/v4", SPAMHAUS_DROPV6_URL="http://t/v6")
    fw, out = firewall.Recording(), []
    lists.load_cached(fw, s, say=out.append, now=T0, own=OWN)
    assert "no cached copy yet" in out[0] and "highjackers" not in fw.sets
    lists.refresh(SPAM, firewall.Recording(), data, now=T0, own=OWN, fetcher=Fetcher(good_bodies()),
                  say=lambda _: None)
    lists.load_cached(fw, s, say=out.append, now=T0 + 86400 * 3, own=OWN)     # days later: no interval at boot
    assert set(fw.sets["highjackers"]) == {"203.0.113.0/24", "198.51.100.0/24"}
    assert liststore.read_state(data)["highjackers"]["message"].startswith("cached copy of ")
    fw.sets["highjackers"] = {"192.0.2.99/32": None}                           # loaded already: left alone
    lists.load_cached(fw, s, say=out.append, now=T0 + 86400 * 3, own=OWN)
    assert fw.sets["highjackers"] == {"192.0.2.99/32": None}


# ---------------------------------------------------------------- static lists
def test_blacklist_reports_bad_lines_and_loads_the_rest(tmp_path):
    from types import SimpleNamespace
    black = write(tmp_path / "blacklist", "# mine\n203.0.113.7\nnonsense\n0.0.0.0/0\n2001:db8:bad::/48\n"
                                          "192.0.2.0/24\n203.0.113.7 # again\n")
    s = SimpleNamespace(DATA_DIR=str(tmp_path), BLACKLIST=black, WHITELIST=str(tmp_path / "whitelist"))
    fw, out = firewall.Recording(), []
    lists.load_static(fw, s, "blacklist", say=out.append, own=OWN, now=T0)
    assert set(fw.sets["blacklist"]) == {"203.0.113.7/32"} and set(fw.sets["blacklist6"]) == {"2001:db8:bad::/48"}
    assert f"warning: {black}:3: not an address or network: 'nonsense' (line skipped)" in out
    assert any(o.startswith(f"warning: {black}:4: 0.0.0.0/0 is wider than /8") for o in out)
    assert any(o.startswith(f"warning: {black}:6: 192.0.2.0/24 holds this host's own address") for o in out)
    assert out[-1] == f"blacklist: 1 IPv4 and 1 IPv6 entries from {black}"
    st = liststore.read_state(str(tmp_path))["blacklist"]
    assert st["ok"] and st["entries"] == 2 and "3 lines skipped" in st["message"]
    with pytest.raises(WatcherError, match="whitelist-sample"):
        lists.load_static(fw, s, "whitelist", say=out.append)
    # the whitelist may hold the host's own addresses (Prep puts them there)
    write(s.WHITELIST, "192.0.2.1\n2001:db8::/32\n")
    lists.load_static(fw, s, "whitelist", say=out.append, own=OWN)
    assert set(fw.sets["whitelist"]) == {"192.0.2.1/32"} and set(fw.sets["whitelist6"]) == {"2001:db8::/32"}


def test_status_lines_show_entries_time_and_outcome(tmp_path):
    from types import SimpleNamespace
    s = SimpleNamespace(DATA_DIR=str(tmp_path), FEEDS=write(tmp_path / "feeds.conf", "ssh_de http://x.test/s\n"),
                        SPAMHAUS_DROP_URL="http://t/v4", SPAMHAUS_DROPV6_URL="http://t/v6")
    liststore.record(str(tmp_path), "highjackers", T0, 1234, True, "downloaded from http://t/v4")
    liststore.record(str(tmp_path), "ssh_de", T0, 10, False, "HTTP 404 Not Found; ssh_de/ssh_de6 keep what they held")
    lines = lists.status_lines(s)
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(T0))
    assert lines[0] == "Lists:"
    assert f"  highjackers: 1234 entries, last load {when} ok: downloaded from http://t/v4" in lines
    assert f"  ssh_de: 10 entries, last load {when} FAILED: HTTP 404 Not Found; ssh_de/ssh_de6 keep what they held" \
        in lines
    assert "  whitelist: never loaded" in lines


# ---------------------------------------------------------------- the command lines (dry-run)
def test_spamhaus_command_in_dry_run(web, instance):
    base, files = web
    files["/cli4.json"] = drop_json(["203.0.113.0/24"]).encode()
    files["/cli6.json"] = drop_json(["2001:db8:100::/48"]).encode()
    w = instance(SPAMHAUS_DROP_URL=base + "/cli4.json", SPAMHAUS_DROPV6_URL=base + "/cli6.json")
    r = tool(w, "dynloaders/spamhaus")
    assert r.returncode == 0, r.stderr
    assert "would load 1 + 1 entries into highjackers" in r.stdout and "fresh download" in r.stdout
    r = tool(w, "dynloaders/spamhaus")
    assert r.returncode == 0 and "cached copy" in r.stdout
    assert os.path.exists(w.path("data", "lists", "lists.state.json"))
    w404 = instance(SPAMHAUS_DROP_URL=base + "/none.json", SPAMHAUS_DROPV6_URL=base + "/cli6.json")
    one_clear_line(tool(w404, "dynloaders/spamhaus"), "spamhaus: highjackers:", "HTTP 404", "keep what they held")
    one_clear_line(tool(w, "dynloaders/spamhaus", "--timeout", "0"), "--timeout")
    r = w.run("status")
    assert "highjackers: 2 entries, last load" in r.stdout and " ok: " in r.stdout


def test_feeds_command_in_dry_run(web, instance, tmp_path):
    base, files = web
    files["/ssh.txt"] = b"203.0.113.5\n2001:db8:5::1\n"
    feeds = write(tmp_path / "feeds.conf", f"ssh_de {base}/ssh.txt\nmissing {base}/missing.txt\n")
    w = instance(FEEDS=feeds)
    r = tool(w, "dynloaders/feeds")
    assert r.returncode == 1 and "ssh_de: loaded 1 IPv4 and 1 IPv6 networks" in r.stdout
    one_clear_line(r, "feeds: missing:", "HTTP 404")
    r = tool(w, "dynloaders/feeds", "ssh_de")
    assert r.returncode == 0 and "cached copy" in r.stdout
    one_clear_line(tool(w, "dynloaders/feeds", "nosuch"), "no feed nosuch")
    write(feeds, "ssh_de http://x.test/a\nbad-name http://x.test/b\n")
    one_clear_line(tool(w, "dynloaders/feeds"), f"{feeds}:2:", "not a usable set name")
    write(feeds, "# nothing yet\n")
    r = tool(w, "dynloaders/feeds")
    assert r.returncode == 0 and "no feeds" in r.stdout


def test_blacklist_and_whitelist_commands_in_dry_run(instance):
    w = instance()
    one_clear_line(tool(w, "Blacklist"), "no such file", "blacklist-sample")
    one_clear_line(tool(w, "Whitelist", "extra"), "unexpected argument")
    write(w.path("blacklist"), "203.0.113.7\n2001:db8:bad::/48\nbogus\n")
    r = tool(w, "Blacklist")
    assert r.returncode == 0, r.stderr
    assert f"{w.path('blacklist')}:3: not an address or network" in r.stdout
    assert "would load 1 + 1 entries into blacklist/blacklist6" in r.stdout
    write(w.path("whitelist"), "198.51.100.7\n")
    r = tool(w, "Whitelist")
    assert r.returncode == 0 and "no module running" in r.stdout
    assert tool(w, "Whitelist", "--help").returncode == 0


def test_samples_load_cleanly(tmp_path):
    from types import SimpleNamespace
    for base in ("blacklist", "whitelist"):
        s = SimpleNamespace(DATA_DIR=str(tmp_path), BLACKLIST=os.path.join(ROOT, "blacklist-sample"),
                            WHITELIST=os.path.join(ROOT, "whitelist-sample"))
        out = []
        lists.load_static(firewall.Recording(), s, base, say=out.append, own=[])
        assert not [o for o in out if o.startswith("warning")], out


def test_the_new_scripts_need_nothing_newer_than_python_3_9():
    vermin = shutil.which("vermin") or os.path.join(ROOT, ".venv", "bin", "vermin")
    if not os.path.exists(vermin):
        pytest.skip("vermin missing: pip install vermin (tests/run does)")
    targets = ["lib/lists.py", "dynloaders/spamhaus", "dynloaders/feeds", "Blacklist", "Whitelist"]
    r = subprocess.run([vermin, "--target=3.9-", "--no-tips", "--violations", "--eval-annotations",
                        "--backport", "dataclasses", *targets], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
