"""Settings: defaults, the order of the files, and one clear line for every mistake."""

import pytest

from lib import config
from lib.errors import WatcherError


def write(path, text):
    path.write_text(text)
    return str(path)


def test_defaults_are_the_design_table(tmp_path):
    s = config.load("LG", environ={}, master_path=str(tmp_path))
    assert s.FIFO_BASE == "/var/log/.pipes" and s.LOG_DIR == "/var/log" and s.RUN_DIR == "/run/watcher"
    assert s.MAX_AFFAIRS == 5 and s.TARPIT_TIMEOUT == 60 and s.EXPIRATIONDAYS == 30
    assert s.DATA_DIR == str(tmp_path / "modules" / "WatchLG")
    assert s.WHITELIST == str(tmp_path / "whitelist")
    assert (s.FIREWALL, s.TRACE, s.DNS_CLASSIFY, s.DNS_SERVER, s.SENDER_CHECK) == ("ipset", False, True, None, "on")
    assert s.fifo() == "/var/log/.pipes/WatchLG" and s.pid_file == "/run/watcher/WatchLG.pid"


def test_later_files_win(tmp_path):
    write(tmp_path / "watcher.conf", "MAX_AFFAIRS=7\nTARPIT_TIMEOUT=10\nREPORTMAIL=a@example.test\n")
    (tmp_path / "modules" / "WatchLG").mkdir(parents=True)
    write(tmp_path / "modules" / "WatchLG" / "WatchLG.conf", "MAX_AFFAIRS=3  # the module's own\n")
    extra = write(tmp_path / "extra.conf", "TARPIT_TIMEOUT=30\nDNS_SERVER=127.0.0.1:5353\n")
    s = config.load("LG", environ={"WATCHER_CONF": extra}, master_path=str(tmp_path))
    assert (s.MAX_AFFAIRS, s.TARPIT_TIMEOUT, s.REPORTMAIL) == (3, 30, "a@example.test")
    assert s.DNS_SERVER == ("127.0.0.1", 5353)
    assert s.origin("MAX_AFFAIRS").endswith("WatchLG.conf:1")
    assert config.load(None, environ={"WATCHER_CONF": extra}, master_path=str(tmp_path)).MAX_AFFAIRS == 7


def test_mb_shares_mx_database(tmp_path):
    extra = write(tmp_path / "x.conf", "DATA_DIR=/srv/w\n")
    assert config.load("MB", {"WATCHER_CONF": extra}, str(tmp_path)).database == "/srv/w/WatchMX.db"


@pytest.mark.parametrize("text, message", [
    ("MAX_AFFAIRS=five\n", "x.conf:1: MAX_AFFAIRS='five' must be a whole number"),
    ("\n# comment\nMAXAFFAIRS=5\n", "x.conf:3: unknown setting MAXAFFAIRS"),
    ("FIREWALL=nft\n", "x.conf:1: FIREWALL='nft' must be one of ipset, dry-run"),
    ("FIFO_BASE=pipes\n", "x.conf:1: FIFO_BASE='pipes' must be an absolute path"),
    ("TRACE=yes\n", "x.conf:1: TRACE='yes' must be on or off"),
    ("DNS_SERVER=localhost\n", "x.conf:1: DNS_SERVER='localhost'"),
    ("just words\n", "x.conf:1: expected KEY=VALUE"),
])
def test_mistakes_name_file_and_line(tmp_path, text, message):
    extra = write(tmp_path / "x.conf", text)
    with pytest.raises(WatcherError) as e:
        config.load("LG", {"WATCHER_CONF": extra}, str(tmp_path))
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_missing_watcher_conf_file_is_an_error(tmp_path):
    with pytest.raises(WatcherError, match="no such file"):
        config.load("LG", {"WATCHER_CONF": str(tmp_path / "nope.conf")}, str(tmp_path))


def test_companion_mb_takes_mx_settings_and_database(tmp_path):
    for token, text in (("MX", "MAX_AFFAIRS=3\nSENDER_USERS=root,postfix\n"), ("MB", "TARPIT_TIMEOUT=30\n")):
        (tmp_path / "modules" / f"Watch{token}").mkdir(parents=True)
        write(tmp_path / "modules" / f"Watch{token}" / f"Watch{token}.conf", text)
    mb = config.load("MB", environ={}, master_path=str(tmp_path))
    assert (mb.MAX_AFFAIRS, mb.TARPIT_TIMEOUT, mb.SENDER_USERS) == (3, 30, ("root", "postfix"))
    assert mb.database == config.load("MX", environ={}, master_path=str(tmp_path)).database \
        == str(tmp_path / "modules" / "WatchMX" / "WatchMX.db")
    assert config.load("MX", environ={}, master_path=str(tmp_path)).TARPIT_TIMEOUT == 60   # not the other way
