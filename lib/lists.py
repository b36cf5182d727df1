"""Block lists: the Spamhaus DROP list, further public feeds, and the static
blacklist and whitelist, each loaded into its ipset pair NAME / NAME6.

Model.  A downloaded list is a name (the set pair it fills), one or more URLs,
a format and a refresh interval.  Loading it is all or nothing: every source
is downloaded (one deadline for the whole answer, a size cap) and parsed;
each entry is validated on its own (a malformed or absurd entry is reported
and left out, the rest loads); then the pair is replaced by `ipset swap`
(firewall `load` builds aside).  Whatever goes wrong before the swap - a
failed, truncated or empty download, a body that is not a list, the kernel
refusing - leaves the sets as they were and is one line for the user.

Invariants:
- a list is downloaded at most once per refresh interval, counted from its
  last successful download; a run within the interval loads the cached copy
  instead (`--force` downloads anyway);
- the cache (<DATA_DIR>/lists/NAME.N.cache) only ever holds a copy that
  loaded; `watcher.py start` loads it into empty sets and never downloads;
- every load, good or bad, is recorded in <DATA_DIR>/lists/lists.state.json
  as {"NAME": {"loaded": epoch, "entries": n, "ok": bool, "message": str}}.

Truncation: a Spamhaus JSON-lines list must end with its {"type": "metadata"}
line; a text list must end with a newline (a download cut mid-line lacks
it); a body shorter than its Content-Length, a broken chunked body and a gzip
stream without its end are truncated too.

Reading the entries of a body is lib.listentries'; the files under
DATA_DIR/lists (state, lock) are lib.liststore's; downloading is lib.fetch's;
the command lines are lib.listcmd's.
"""
import json
import os
import re
import signal
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from lib import config, firewall
from lib.addresses import Address, Network, host_addresses, read_list
from lib.errors import ListError, WatcherError, located
from lib.fetch import DEFAULT_TIMEOUT, fetch
from lib.listentries import FORMATS, check_network, parse, validate
from lib.liststore import lists_dir, locked, read_state, record, write_atomic

Say = Callable[[str], None]
Fetcher = Callable[[str, float], bytes]

SPAMHAUS_INTERVAL = 3600        # Spamhaus: automated downloads at least an hour apart
FEED_INTERVAL = 3600
MIN_INTERVAL = 60
CRON_GRACE = 60                 # an hourly cron job may start a second early: still due
NAME_MAX = 31 - len("6-new")    # ipset names hold 31 characters; the temporary set adds '6-new'
SHOW_PROBLEMS = 10
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_SPAN = re.compile(r"(\d+)([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class BlockList:
    name: str                   # the ipset pair NAME / NAME6
    urls: Tuple[str, ...]
    fmt: str = "plain"
    interval: int = FEED_INTERVAL
    where: str = ""             # where it is defined, for messages


# ---------------------------------------------------------------- what is listed where
def spamhaus_list(settings) -> BlockList:
    return BlockList("highjackers", (settings.SPAMHAUS_DROP_URL, settings.SPAMHAUS_DROPV6_URL),
                     "spamhaus", SPAMHAUS_INTERVAL, "SPAMHAUS_DROP_URL / SPAMHAUS_DROPV6_URL")


def parse_interval(text: str) -> int:
    m = _SPAN.fullmatch(text)
    if not m:
        raise ValueError(f"interval {text!r}: write seconds or a number with s, m, h or d (30m, 6h, 1d)")
    seconds = int(m.group(1)) * _UNITS[m.group(2)]
    if seconds < MIN_INTERVAL:
        raise ValueError(f"interval {text!r} is shorter than {MIN_INTERVAL} s")
    return seconds


def read_feeds(path: str) -> List[BlockList]:
    """The FEEDS file: `NAME URL [FORMAT [INTERVAL]]` a line, '#' comments."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        raise WatcherError(located(path, None, "no such file (FEEDS; dynloaders/feeds.conf is the sample)")) from None
    except OSError as e:
        raise WatcherError(located(path, None, f"cannot read: {e.strerror}")) from None
    own = {s + sfx for s in firewall.SET_TYPES for sfx in ("", "6")}
    feeds: List[BlockList] = []
    taken: Dict[str, str] = {}
    for n, line in enumerate(lines, 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if not 2 <= len(words) <= 4:
            raise WatcherError(located(path, n, "expected NAME URL [FORMAT [INTERVAL]]"))
        name, url = words[0], words[1]
        fmt = words[2] if len(words) > 2 else "plain"
        if not _NAME.fullmatch(name) or len(name) > NAME_MAX:
            raise WatcherError(located(path, n, f"{name!r} is not a usable set name: a letter, then letters, "
                                                f"digits or _, at most {NAME_MAX} characters"))
        clash = {name, name + "6"} & (own | set(taken))
        if clash:
            whose = taken.get(sorted(clash)[0])
            raise WatcherError(located(path, n, f"set {sorted(clash)[0]} of feed {name} is already "
                                                + (f"used by feed {whose}" if whose else "one of Watcher's own sets")))
        if not re.match(r"https?://\S+$", url):
            raise WatcherError(located(path, n, f"{url!r} is not an http:// or https:// URL"))
        if fmt not in FORMATS:
            raise WatcherError(located(path, n, f"unknown format {fmt!r} (plain, nixspam or spamhaus; "
                                                f"an interval comes after it: {name} URL plain 6h)"))
        try:
            interval = parse_interval(words[3]) if len(words) > 3 else FEED_INTERVAL
        except ValueError as e:
            raise WatcherError(located(path, n, str(e))) from None
        taken.update({name: name, name + "6": name})
        feeds.append(BlockList(name, (url,), fmt, interval, f"{path}:{n}"))
    return feeds


def feed_sets(settings) -> List[str]:
    """Set names of the feeds (firewall.backend creates them and DROPs them in the chain)."""
    if not os.path.exists(settings.FEEDS):
        return []
    return [f.name for f in read_feeds(settings.FEEDS)]


def _note(data_dir: str, name: str, loaded: float, entries: int, ok: bool, message: str, say: Say) -> None:
    """record(), where a state file that cannot be written must not stop the load (start at boot)."""
    try:
        record(data_dir, name, loaded, entries, ok, message)
    except WatcherError as e:
        say(f"warning: {name}: state not saved: {e}")


def _cache_files(data_dir: str, lst: BlockList) -> List[str]:
    return [os.path.join(data_dir, "lists", f"{lst.name}.{i}.cache") for i in range(len(lst.urls))]


def _meta_file(data_dir: str, lst: BlockList) -> str:
    return os.path.join(data_dir, "lists", f"{lst.name}.meta.json")


def _read_meta(data_dir: str, lst: BlockList) -> Optional[dict]:
    try:
        with open(_meta_file(data_dir, lst)) as f:
            meta = json.load(f)
        if isinstance(meta, dict) and isinstance(meta.get("fetched"), (int, float)):
            return meta
    except (OSError, ValueError):
        pass
    return None


def _read_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def _span(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)} {unit}"
    return f"{int(seconds)} s"


# ---------------------------------------------------------------- loading a downloaded list
def _split(nets: Sequence[Network]) -> Tuple[List[str], List[str]]:
    """IPv4 and IPv6 entries, each once (so the counts said are the kernel's)."""
    unique = list(dict.fromkeys(nets))
    return [str(n) for n in unique if n.version == 4], [str(n) for n in unique if n.version == 6]


def _parse_all(lst: BlockList, bodies: Sequence[bytes], sources: Sequence[str],
               own: Sequence[Address]) -> Tuple[List[Network], List[str]]:
    """Good networks and rejects of every source; ListError when a source is not a whole, real list."""
    nets: List[Network] = []
    problems: List[str] = []
    for src, body in zip(sources, bodies):
        try:
            entries = parse(body.decode("utf-8-sig", errors="replace"), lst.fmt)
        except ListError as e:
            raise ListError(f"{src}: {e}") from None
        if not entries:
            raise ListError(f"{src}: no entries (an empty list is never loaded)")
        good, bad = validate(entries, own, src)
        if len(bad) > len(good):
            raise ListError(f"{src}: not a {lst.fmt} list: {len(bad)} of {len(entries)} entries refused "
                            f"(line {bad[0][len(src) + 1:]})")
        problems += bad
        nets += good                    # _split keeps each network once
    return nets, problems


def _report(problems: Sequence[str], say: Say) -> None:
    for p in problems[:SHOW_PROBLEMS]:
        say(f"warning: {p}")
    if len(problems) > SHOW_PROBLEMS:
        say(f"warning: ... and {_entries(len(problems) - SHOW_PROBLEMS)} more rejected")


def refresh(lst: BlockList, fw, data_dir: str, force: bool = False, timeout: float = DEFAULT_TIMEOUT,
            say: Say = print, now: Optional[float] = None, own: Optional[Sequence[Address]] = None,
            fetcher: Optional[Fetcher] = None) -> str:
    """Load `lst` into its sets: a fresh download when due, else the cached copy.

    Returns the line that says what happened; raises ListError (after noting
    the failure in the state file) when the sets were left as they were."""
    now = time.time() if now is None else now
    own = host_addresses() if own is None else own
    fetcher = fetcher or (lambda url, t: fetch(url, t))
    d = lists_dir(data_dir)
    caches = _cache_files(data_dir, lst)
    with locked(os.path.join(d, f"{lst.name}.lock"), lst.name):
        meta = _read_meta(data_dir, lst)
        cached: Optional[Tuple[List[Network], List[str]]] = None
        if (not force and meta and meta.get("urls") == list(lst.urls)
                and 0 <= now - meta["fetched"] < lst.interval - CRON_GRACE
                and all(os.path.exists(c) for c in caches)):
            try:
                cached = _parse_all(lst, [_read_bytes(c) for c in caches], caches, own)
            except (OSError, ListError) as e:      # a damaged cache: download instead
                say(f"warning: {lst.name}: cached copy unusable ({e}); downloading")
        if cached is not None:
            nets, problems = cached
            bodies: List[bytes] = []
            how = (f"the cached copy of {_when(meta['fetched'])}: the last download is less than "
                   f"{_span(lst.interval)} old (next download from {_when(meta['fetched'] + lst.interval)}, "
                   f"or use --force)")
            state_how = f"cached copy of {_when(meta['fetched'])} (within the {_span(lst.interval)} refresh interval)"
        else:
            try:
                bodies = [fetcher(url, timeout) for url in lst.urls]
                nets, problems = _parse_all(lst, bodies, lst.urls, own)
            except ListError as e:
                raise _failed(data_dir, lst, now, str(e)) from None
            how = "a fresh download from " + ", ".join(lst.urls)
            state_how = "downloaded from " + ", ".join(lst.urls)
        v4, v6 = _split(nets)
        try:
            fw.load(lst.name, v4, v6)
        except WatcherError as e:
            raise _failed(data_dir, lst, now, f"the firewall refused the load: {e}") from None
        if bodies:                      # only a copy that loaded becomes the last good copy
            for path, body in zip(caches, bodies):
                write_atomic(path, body)
            write_atomic(_meta_file(data_dir, lst), json.dumps({"fetched": int(now), "urls": list(lst.urls)}).encode())
    if bodies:                          # a cached copy's rejects were shown when it was downloaded
        _report(problems, say)
    rejected = f"; {_entries(len(problems))} rejected" if problems else ""
    record(data_dir, lst.name, now, len(v4) + len(v6), True, state_how + rejected)
    return f"{lst.name}: loaded {len(v4)} IPv4 and {len(v6)} IPv6 networks from {how}{rejected}"


def _entries(n: int) -> str:
    return f"{n} entry" if n == 1 else f"{n} entries"


def _failed(data_dir: str, lst: BlockList, now: float, why: str) -> ListError:
    held = read_state(data_dir).get(lst.name, {}).get("entries", 0)
    message = f"{why}; {lst.name}/{lst.name}6 keep what they held"
    record(data_dir, lst.name, now, held, False, message)
    return ListError(f"{lst.name}: {message} ({held} entries)")


def configured(settings) -> List[BlockList]:
    """Every downloaded list the settings name: Spamhaus DROP, then the feeds."""
    feeds = read_feeds(settings.FEEDS) if os.path.exists(settings.FEEDS) else []
    return [spamhaus_list(settings)] + feeds


def load_cached(fw, settings, say: Say = print, now: Optional[float] = None,
                own: Optional[Sequence[Address]] = None) -> None:
    """At start (boot): each list's last good copy into its sets while they are empty.

    Never downloads, never stops the start: a list without a usable copy is a warning."""
    now = time.time() if now is None else now
    sizes = fw.sizes()
    for lst in configured(settings):
        if sizes.get(lst.name) or sizes.get(lst.name + "6"):
            continue                     # loaded already (a restart): the dynloader keeps it fresh
        caches = _cache_files(settings.DATA_DIR, lst)
        if not all(os.path.exists(c) for c in caches):
            say(f"{lst.name}: no cached copy yet (the first run of its dynloader downloads one)")
            continue
        if own is None:
            own = host_addresses()
        meta = _read_meta(settings.DATA_DIR, lst) or {}
        of = f" of {_when(meta['fetched'])}" if "fetched" in meta else ""
        try:
            bodies = [_read_bytes(c) for c in caches]
            nets, problems = _parse_all(lst, bodies, caches, own)
            v4, v6 = _split(nets)
            fw.load(lst.name, v4, v6)
        except (OSError, WatcherError) as e:
            message = f"cached copy{of} not loaded at start: {e}"
            _note(settings.DATA_DIR, lst.name, now, 0, False, message, say)
            say(f"warning: {lst.name}: {message}")
            continue
        _note(settings.DATA_DIR, lst.name, now, len(v4) + len(v6), True, f"cached copy{of} loaded at start", say)
        say(f"{lst.name}: {len(v4)} IPv4 and {len(v6)} IPv6 networks from the cached copy{of}")


# ---------------------------------------------------------------- the static lists
def load_static(fw, settings, base: str, say: Say = print, now: Optional[float] = None,
                own: Optional[Sequence[Address]] = None, missing_ok: bool = False) -> Dict[str, int]:
    """The WHITELIST or BLACKLIST file into whitelist/whitelist6 or blacklist/blacklist6.

    Bad lines are reported with file and line and skipped; the blacklist
    also refuses what check_network refuses (it would cut off the host).
    An empty file empties the set: that is how a static list is cleared."""
    now = time.time() if now is None else now
    path = settings.WHITELIST if base == "whitelist" else settings.BLACKLIST
    if not os.path.exists(path):
        if missing_ok:
            return {}
        sample = os.path.join(config.MASTER_PATH, f"{base}-sample")
        raise WatcherError(f"{path}: no such file ({base.upper()}); start from the sample: cp {sample} {path}")
    check = None
    if base == "blacklist":
        own = host_addresses() if own is None else own
        check = lambda net: check_network(net, own)  # noqa: E731
    nets, problems = read_list(path, check=check)
    for p in problems:
        say(f"warning: {p} (line skipped)")
    v4, v6 = _split(nets)
    try:
        counts = fw.load(base, v4, v6)
    except WatcherError as e:
        _note(settings.DATA_DIR, base, now, read_state(settings.DATA_DIR).get(base, {}).get("entries", 0),
              False, f"the firewall refused the load: {e}", say)
        raise
    skipped = f"; {len(problems)} lines skipped" if problems else ""
    _note(settings.DATA_DIR, base, now, len(v4) + len(v6), True, f"from {path}{skipped}", say)
    say(f"{base}: {len(v4)} IPv4 and {len(v6)} IPv6 entries from {path}")
    return counts


def hup_modules(environ=os.environ, say: Say = print) -> List[str]:
    """Tell every running module to re-read the whitelist (SIGHUP)."""
    from lib.supervise import alive, installed_modules, read_pid
    told = []
    for token in installed_modules():
        s = config.load(token, environ)
        pid = read_pid(s.pid_file)
        if alive(pid, s.name):
            try:
                os.kill(pid, signal.SIGHUP)
                told.append(f"{s.name} (pid {pid})")
            except OSError as e:
                say(f"warning: {s.name} (pid {pid}): cannot signal: {e.strerror}")
    return told


# ---------------------------------------------------------------- status
def status_lines(settings) -> List[str]:
    """One line per list for `watcher.py status`: entries, time and outcome of its last load."""
    state = read_state(settings.DATA_DIR)
    lines = ["Lists:"]
    names = ["whitelist", "blacklist"]
    try:
        names += [lst.name for lst in configured(settings)]
    except WatcherError as e:
        names.append("highjackers")
        lines.append(f"  warning: {e}")
    names += sorted(n for n in state if n not in names)      # e.g. a feed since removed from FEEDS
    for name in names:
        st = state.get(name)
        if not isinstance(st, dict) or not isinstance(st.get("loaded"), (int, float)):
            lines.append(f"  {name}: never loaded")
            continue
        lines.append(f"  {name}: {_entries(int(st.get('entries', 0)))}, last load {_when(st['loaded'])} "
                     f"{'ok' if st.get('ok') else 'FAILED'}: {st.get('message', '')}")
    return lines
