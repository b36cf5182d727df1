"""Settings: plain KEY=VALUE files, later wins.

Order: built-in defaults, `watcher.conf` in MASTER_PATH, the module's
`WatchXX.conf` (for WatchMB, WatchMX.conf first: the companion shares its
database and settings), then the file named by $WATCHER_CONF.  Every value is parsed
and checked here, once; an unknown key or a bad value stops the program with
'FILE:LINE: what is wrong' instead of being guessed at.  `$MASTER_PATH` and
`$MODULE_PATH` may be used inside values.
"""
import ipaddress
import os
import re
from typing import Callable, Dict, Mapping, Optional, Tuple

from lib.errors import WatcherError, located, read_text

MASTER_PATH = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODULES = ("LG", "MX", "MB", "WB")
COMPANION_OF = {"MB": "MX"}     # WatchMB reads what WatchMX forwards and counts in its database


def module_dir(token: str) -> str:
    return os.path.join(MASTER_PATH, "modules", "Watch" + token)


def _path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError("must be an absolute path")
    return os.path.normpath(value)


def _onoff(value: str) -> bool:
    if value.lower() not in ("on", "off"):
        raise ValueError("must be on or off")
    return value.lower() == "on"


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise ValueError("must be a whole number of at least 1")
    return int(value)


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value not in allowed:
            raise ValueError("must be one of " + ", ".join(allowed))
        return value
    return parse


def _mailhost(value: str) -> str:
    if value != "sendmail" and not re.fullmatch(r"[\w.\-]+(:\d{1,5})?|\[[0-9a-fA-F:.]+\](:\d{1,5})?", value):
        raise ValueError("must be host[:port] or sendmail")
    return value


def _dns_server(value: str) -> Optional[Tuple[str, int]]:
    if not value:
        return None
    host, port = value, 53
    m = re.fullmatch(r"\[([0-9a-fA-F:.]+)\]:(\d+)|([0-9.]+):(\d+)", value)
    if m:
        host, port = (m.group(1) or m.group(3)), int(m.group(2) or m.group(4))
    ipaddress.ip_address(host)   # ValueError names the problem
    if not 0 < port < 65536:
        raise ValueError("port must be 1-65535")
    return host, port


def _mail(value: str) -> str:
    if not re.fullmatch(r"[^@\s,]+@[^@\s,]+", value):
        raise ValueError("must be one e-mail address")
    return value


def _names(value: str) -> Tuple[str, ...]:
    names = tuple(n for n in value.replace(",", " ").split() if n)
    for n in names:
        if not re.fullmatch(r"[A-Za-z0-9_.][A-Za-z0-9_.@+-]*", n):
            raise ValueError(f"{n!r} is not a user or program name (a comma-separated list)")
    return names


def _networks(value: str) -> Tuple:
    nets = []
    for item in (v for v in value.replace(",", " ").split() if v):
        try:
            nets.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not an address or network (a comma-separated list)") from None
    return tuple(nets)


def _owners(value: str) -> Dict[str, str]:
    """'shop.example.test:alice@example.test,blog.example.test:bob@example.test' -> {host: address}."""
    owners: Dict[str, str] = {}
    for item in (v for v in value.replace(",", " ").split() if v):
        host, sep, mail = item.partition(":")
        if not sep or not re.fullmatch(r"[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?", host):
            raise ValueError(f"{item!r} is not VHOST:ADDRESS (e.g. shop.example.test:alice@example.test)")
        if host.lower() in owners:
            raise ValueError(f"{host!r} is given twice")
        try:
            owners[host.lower()] = _mail(mail)
        except ValueError:
            raise ValueError(f"{item!r}: {mail!r} is not one e-mail address") from None
    return owners


def _url(value: str) -> str:
    if not re.match(r"https?://\S+$", value):
        raise ValueError("must be an http:// or https:// URL")
    return value


# key -> (default text, parser); defaults are parsed like file values.
KEYS: Dict[str, Tuple[str, Callable[[str], object]]] = {
    "FIFO_BASE": ("/var/log/.pipes", _path),
    "DATA_DIR": ("$MODULE_PATH", _path),
    "LOG_DIR": ("/var/log", _path),
    "RUN_DIR": ("/run/watcher", _path),
    "TRACE": ("off", _onoff),
    "FIREWALL": ("ipset", _choice("ipset", "dry-run")),
    "MAX_AFFAIRS": ("5", _positive),
    "TARPIT_TIMEOUT": ("60", _positive),
    "EXPIRATIONDAYS": ("30", _positive),
    "REPORTMAIL": ("root@localhost", _mail),
    "MAILHOST": ("localhost:25", _mailhost),
    "DNS_TIMEOUT": ("2", _positive),
    "DNS_SERVER": ("", _dns_server),
    "DNS_CLASSIFY": ("on", _onoff),
    "SENDER_CHECK": ("on", _choice("on", "off", "strict")),
    "WHITELIST": ("$MASTER_PATH/whitelist", _path),
    "BLACKLIST": ("$MASTER_PATH/blacklist", _path),
    "SPAMHAUS_DROP_URL": ("https://www.spamhaus.org/drop/drop_v4.json", _url),
    "SPAMHAUS_DROPV6_URL": ("https://www.spamhaus.org/drop/drop_v6.json", _url),
    "FEEDS": ("$MASTER_PATH/dynloaders/feeds.conf", _path),
    "FIFO_SILENCE_WARN": ("86400", _positive),
    "SENDER_USERS": ("", _names),
    "SENDER_PROGRAMS": ("", _names),
    "TRUSTED_PROXIES": ("", _networks),
    "FLOOD_REQUESTS": ("600", _positive),
    "FLOOD_WINDOW": ("60", _positive),
    "VHOST_OWNERS": ("", _owners),
}

_LINE = re.compile(r"([A-Z][A-Z0-9_]*)\s*=\s*(.*)")


class Settings(Mapping):
    """Parsed settings of one module (or of the master when module is None).

    Read like a mapping (`s["MAX_AFFAIRS"]`) or as attributes
    (`s.MAX_AFFAIRS`); `origin(key)` tells which file set a value.
    """

    def __init__(self, values: Dict[str, object], origins: Dict[str, str], module: Optional[str]):
        self._values, self._origins, self.module = values, origins, module

    def __getitem__(self, key):
        return self._values[key]

    def __getattr__(self, key):
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(key) from None

    def __iter__(self):
        return iter(self._values)

    def __len__(self):
        return len(self._values)

    def origin(self, key: str) -> str:
        return self._origins.get(key, "built-in default")

    @property
    def name(self) -> str:
        return "Watch" + (self.module or "er")

    def fifo(self, token: Optional[str] = None) -> str:
        return os.path.join(self.FIFO_BASE, "Watch" + (token or self.module))

    @property
    def database(self) -> str:
        """MB shares MX's database (the manual's 'companion process')."""
        owner = "MX" if self.module == "MB" else self.module
        return os.path.join(self.DATA_DIR, f"Watch{owner}.db")

    @property
    def log_file(self) -> str:
        return os.path.join(self.LOG_DIR, self.name + ".log")

    @property
    def trace_file(self) -> str:
        return os.path.join(self.DATA_DIR, self.name + ".trace")

    @property
    def pid_file(self) -> str:
        return os.path.join(self.RUN_DIR, self.name + ".pid")

    @property
    def stats_file(self) -> str:
        return os.path.join(self.RUN_DIR, self.name + ".stats")

    @property
    def module_path(self) -> str:
        return module_dir(self.module) if self.module else MASTER_PATH


def parse_file(path: str, keys: Mapping = KEYS) -> Dict[str, Tuple[str, int]]:
    """KEY=VALUE lines of one file -> {key: (raw value, line number)}."""
    found = {}
    lines = read_text(path).splitlines()
    for n, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        m = _LINE.fullmatch(text)
        if not m:
            raise WatcherError(located(path, n, f"expected KEY=VALUE, got {text[:60]!r}"))
        key, value = m.group(1), m.group(2).strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:                     # trailing comment
            value = value.split(" #", 1)[0].rstrip()
        if key not in keys:
            raise WatcherError(located(path, n, f"unknown setting {key} (known: see README 'Settings')"))
        found[key] = (value, n)
    return found


def load(module: Optional[str] = None, environ: Mapping = os.environ,
         master_path: str = MASTER_PATH, extra_keys: Optional[Mapping] = None) -> Settings:
    """Read the settings for `module` ('LG', 'MX', ...) or for the master."""
    keys = dict(KEYS, **(extra_keys or {}))
    mpath = os.path.join(master_path, "modules", f"Watch{module}") if module else master_path
    raw = {k: (default, "built-in default", None) for k, (default, _) in keys.items()}
    files = [os.path.join(master_path, "watcher.conf")]
    owner = COMPANION_OF.get(module)
    if owner:       # a companion shares its owner's database and settings, then adds its own
        files.append(os.path.join(master_path, "modules", f"Watch{owner}", f"Watch{owner}.conf"))
        mpath_data = os.path.join(master_path, "modules", f"Watch{owner}")
    else:
        mpath_data = mpath
    if module:
        files.append(os.path.join(mpath, f"Watch{module}.conf"))
    if environ.get("WATCHER_CONF"):
        files.append(environ["WATCHER_CONF"])
        if not os.path.isfile(environ["WATCHER_CONF"]):
            raise WatcherError(f"WATCHER_CONF={environ['WATCHER_CONF']}: no such file")
    for path in files:
        if os.path.isfile(path):
            for key, (value, n) in parse_file(path, keys).items():
                raw[key] = (value, path, n)
    values, origins = {}, {}
    for key, (value, path, n) in raw.items():
        text = value.replace("$MASTER_PATH", master_path).replace(
            "$MODULE_PATH", mpath_data if key == "DATA_DIR" else mpath)
        try:
            values[key] = keys[key][1](text)
        except ValueError as e:
            where = located(path, n, "") if n else "built-in default: "
            raise WatcherError(f"{where}{key}={value!r} {e}".replace(": :", ":")) from None
        origins[key] = f"{path}:{n}" if n else path
    return Settings(values, origins, module)
