"""Web server lines for WatchWB: who sent a request, to which virtual host, how fast.

Model.  Apache 2.4 and nginx reach WatchWB through the system logger, with
the formats that `watcher.py syslog-config apache|nginx` prints:

  error log   Apache  '... apache2[PID]: [MODULE:LEVEL] [pid N:tid T] [vhost V] [client ADDR:PORT] AHnnnnn: ...'
              nginx   '... nginx: YYYY/MM/DD HH:MM:SS [LEVEL] PID#TID: *CONN MESSAGE, client: ADDR, server: V, ...'
  access log  both    '... apache_access: ADDR VHOST [TIME] "REQUEST" STATUS BYTES "REFERER" "AGENT" "XFF" ADDR'
                      (tag nginx_access for nginx)

The address is always a field the server wrote before any client text:
Apache's first `[client ` (its fixed fields come before the message, the
URI and the referer after it), nginx's first `, client: ` (the basic-auth
user name before it cannot hold a ':'), the first field of an access line.
Request line, referer, agent and X-Forwarded-For are client text: they decide
whether a line counts, never whom.  X-Forwarded-For is read only when the
peer is one of TRUSTED_PROXIES: its rightmost address that is not a trusted
proxy is the client; a trusted proxy itself is never the culprit.

Apache's access lines pass through `logger`, which cuts a line longer than
its -S size into several messages, and a pipe that many children write can
interleave long lines: the start of such a piece is client text.  So the
access format repeats the peer at the end, and a line counts only when it is
whole and both agree (the end is the server's).  nginx sends each line
itself as one message: a line the logger cut at its end still names the
peer first and counts.

Floods: more than FLOOD_REQUESTS requests from one client to one virtual
host within FLOOD_WINDOW seconds, timed by the lines' own timestamps (the
access log's [TIME], else the syslog header), so a log file replayed by
`watcher.py test` is judged as the running module judged it.  The window
lives in a `Web` object, one per assembled filter (lib.rules puts it into
the filter's namespace), never in the database.
"""
import collections
import ipaddress
import os
import re
import time
import zlib
from typing import Callable, Deque, Dict, List, NamedTuple, Optional, Sequence, Tuple

from lib import extract
from lib.errors import WatcherError, located, read_text

Peer = Tuple[Optional[str], Optional[int]]
_APACHE_CODE = re.compile(r"\bAH\d{5}: ")   # Apache's message ids: the message (%M) starts there
ACCESS_SUFFIX = "_access"           # the access logs' syslog tags: apache_access, nginx_access
NATIVE_ACCESS = ("nginx_access",)  # tags of servers that send each access line as one message
APACHE_PROGRAMS = ("apache2", "httpd", "apache")   # Apache's error log tag: its program name
PATH_LIST, AGENT_LIST = "attack-paths", "bad-agents"
MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep",
                                      "Oct", "Nov", "Dec"), 1)}


class ListError(WatcherError):
    pass


# ---- one line, parsed ------------------------------------------------------
class WebLine(NamedTuple):
    kind: str                       # "access" or "error"
    peer: Optional[str]             # the address the server wrote (before any proxy logic)
    key: Optional[int]              # one request's key for lib.affairs (port, connection or line)
    vhost: Optional[str]
    message: str = ""               # error: the server's message after its fixed fields
    time: Optional[float] = None    # access: the request's time
    method: str = ""
    target: Optional[str] = None    # access: the request target as logged (None: cut or garbled)
    status: Optional[int] = None
    agent: Optional[str] = None
    forwarded: Optional[str] = None     # X-Forwarded-For as logged ("-" when none)


def _quoted(msg: str, pos: int) -> Tuple[Optional[str], int]:
    """The "..." field at msg[pos:] (Apache escapes '"' as '\\"', nginx as '\\x22'):
    (its text, index after the closing quote), or (None, -1) when it is not there or not closed."""
    if not msg.startswith('"', pos):
        return None, -1
    q = pos + 1
    while True:
        q = msg.find('"', q)
        if q < 0:
            return None, -1
        back = q - 1
        while msg[back] == "\\":
            back -= 1
        if (q - 1 - back) % 2 == 0:     # an even run of backslashes: the quote is a real one
            return msg[pos + 1:q], q + 1
        q += 1


def _word(msg: str, pos: int) -> Tuple[str, int]:
    end = msg.find(" ", pos)
    return (msg[pos:], len(msg)) if end < 0 else (msg[pos:end], end)


def _vhost(text: Optional[str]) -> Optional[str]:
    return text.lower() if text and text != "-" else None


_last_time = ("", None)


def _timegm(t) -> int:
    """calendar.timegm, imported on first use (3 ms of start-up, datetime and locale, that every
    module paid); the first call puts it in this name's place."""
    global _timegm
    from calendar import timegm as _timegm
    return _timegm(t)


def _unquote(text: str) -> str:
    """urllib.parse.unquote, imported on first use like _timegm."""
    global _unquote
    from urllib.parse import unquote as _unquote
    return _unquote(text)


def access_time(text: str) -> Optional[float]:
    """'22/Nov/2026:10:00:00 +0100' (Apache's %t without brackets, nginx's $time_local) -> epoch."""
    global _last_time
    if text == _last_time[0]:
        return _last_time[1]
    t = None
    try:
        if len(text) == 26 and text[2] == "/" and text[6] == "/" and text[20] == " ":
            secs = _timegm((int(text[7:11]), MONTHS[text[3:6]], int(text[0:2]), int(text[12:14]),
                                    int(text[15:17]), int(text[18:20]), 0, 0, 0))
            sign = -1 if text[21] == "-" else 1
            t = float(secs - sign * (int(text[22:24]) * 3600 + int(text[24:26]) * 60))
    except (KeyError, ValueError):
        t = None
    _last_time = (text, t)
    return t


def syslog_time(line: str, now: Optional[float] = None) -> Optional[float]:
    """The syslog header's time: RFC 3339 / RFC 5424 ('2026-11-22T10:00:00.5+01:00') or the
    traditional 'Nov 22 10:00:00' (local time, the year that puts it at most a day ahead of now)."""
    text = line
    if text.startswith("<"):
        close = text.find(">", 1, 6)
        if close > 0:
            text = text[close + 1:]
            if text.startswith("1 "):
                text = text[2:]
    stamp = text.split(" ", 1)[0]
    if len(stamp) >= 19 and stamp[4] == "-" and stamp[10] == "T":
        return _rfc3339(stamp)
    if len(text) >= 15 and text[:3] in MONTHS and text[6] == " " and text[9] == ":":
        now = time.time() if now is None else now
        try:
            year = time.localtime(now).tm_year
            for y in (year, year - 1):
                t = time.mktime((y, MONTHS[text[:3]], int(text[4:6]), int(text[7:9]), int(text[10:12]),
                                 int(text[13:15]), 0, 0, -1))
                if t <= now + 86400:
                    return t
        except ValueError:
            return None
    return None


def _rfc3339(stamp: str) -> Optional[float]:
    """'2026-11-22T10:00:00[.fraction](Z|+01:00)' -> epoch (any number of fraction digits)."""
    try:
        t = float(_timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")))
    except ValueError:
        return None
    rest = stamp[19:]
    if rest.startswith("."):
        digits = len(rest) - len(rest[1:].lstrip("0123456789"))
        t += float("0" + rest[:digits]) if digits > 1 else 0.0
        rest = rest[digits:]
    if rest in ("Z", "z"):
        return t
    if len(rest) == 6 and rest[0] in "+-" and rest[3] == ":" and (rest[1:3] + rest[4:]).isdigit():
        offset = int(rest[1:3]) * 3600 + int(rest[4:]) * 60
        return t - offset if rest[0] == "+" else t + offset
    return None


def parse_access(msg: str, native: bool, line: str = "") -> Optional[WebLine]:
    """An access line of Watcher's format (module docstring), or None when it is not one
    or cannot be trusted (a piece of a longer line)."""
    peer, pos = _word(msg, 0)
    if not peer or pos >= len(msg):
        return None
    vhost, pos = _word(msg, pos + 1)
    if not msg.startswith(" [", pos):
        return None
    close = msg.find("] ", pos + 2)
    if close < 0:
        return None
    when = access_time(msg[pos + 2:close])
    if when is None and line:
        when = syslog_time(line)
    fields = {"kind": "access", "peer": peer, "key": None, "vhost": _vhost(vhost), "time": when}
    request, pos = _quoted(msg, close + 2)
    if request is not None:
        words = request.split(" ")
        fields["method"] = words[0]
        fields["target"] = words[1] if len(words) >= 2 else None
        status, pos = _word(msg, pos + 1) if msg.startswith(" ", pos) else ("", -1)
        if status.isdigit() and len(status) == 3:
            fields["status"] = int(status)
        _, pos = _word(msg, pos + 1) if pos > 0 and msg.startswith(" ", pos) else ("", -1)     # bytes
        referer = agent = forwarded = None
        if pos > 0 and msg.startswith(" ", pos):
            referer, pos = _quoted(msg, pos + 1)
        if referer is not None and msg.startswith(" ", pos):
            agent, pos = _quoted(msg, pos + 1)
        if agent is not None and msg.startswith(" ", pos):
            forwarded, pos = _quoted(msg, pos + 1)
        fields["agent"], fields["forwarded"] = agent, forwarded
        if forwarded is not None and msg.startswith(" ", pos):
            if msg[pos + 1:] == peer and fields["status"] is not None:
                return WebLine(**fields)                    # whole: the server wrote both ends
            return None                                     # another line's end: not one request
    # the line ends early: cut by the logger.  Its start is the server's only where the
    # server sent the line as one message; from Apache's logger it may be a piece's client text.
    return WebLine(**fields) if native else None


def parse_error(msg: str) -> Optional[WebLine]:
    """An Apache or nginx error-log message (module docstring), or None."""
    if msg.startswith("["):                                 # Apache 2.4
        i = msg.find("[client ")
        if i < 0:
            return None
        head = msg[:i]
        if '"' in head or _APACHE_CODE.search(head):
            return None             # no client field of Apache's: this '[client ' is the message's text
        end = msg.find("] ", i + 8)
        if end < 0:
            return None
        field = msg[i + 8:end]
        if field.startswith("["):                           # [client [2001:db8::1]:1234]
            close = field.find("]")
            addr, port = field[1:close], field[close + 2:]
        else:                                               # [client 2001:db8::1:1234], [client 1.2.3.4:5]
            addr, _, port = field.rpartition(":")
        v = head.find("[vhost ")
        vhost = head[v + 7:head.find("]", v)] if v >= 0 else None
        return WebLine("error", addr or None, int(port) if port.isdigit() and len(port) <= 5 else None,
                       _vhost(vhost), msg[end + 2:])
    # nginx: 'YYYY/MM/DD HH:MM:SS [LEVEL] PID#TID: [*CONN ]MESSAGE[, client: ADDR, server: NAME, ...]'
    if len(msg) < 22 or msg[4] != "/" or msg[7] != "/" or msg[10] != " " or msg[19:21] != " [":
        return None
    colon = msg.find(": ", 21)
    level_end = msg.find("] ", 20)
    if colon < 0 or level_end < 0 or not msg[level_end + 2:colon].replace("#", "").isdigit():
        return None
    body, key = msg[colon + 2:], None
    if body.startswith("*"):
        conn, _, rest = body[1:].partition(" ")
        if conn.isdigit():
            body, key = rest, int(conn) & 0xFFFFFFFF
    c = body.find(", client: ")
    if c < 0:
        return WebLine("error", None, key, None, body)
    addr, end = extract.token_after(body, ", client: ", last=False)
    vhost = None
    if body.startswith(", server: ", end):
        vhost, _ = extract.token_after(body[end:], ", server: ", last=False)
    return WebLine("error", addr, key, _vhost(vhost), body[:c])


def parse(line: str) -> Optional[WebLine]:
    """A web server's line as WatchWB reads it (syslog header and all), or None.  The
    syslog tag says who wrote it: an access log's tag, Apache's or nginx's name."""
    prog, _ = extract.program(line)
    if prog.endswith(ACCESS_SUFFIX):
        return parse_access(extract.message(line), prog in NATIVE_ACCESS, line)
    if prog in APACHE_PROGRAMS:
        msg = extract.message(line)
        return parse_error(msg) if msg.startswith("[") else None
    if prog.startswith("nginx"):
        msg = extract.message(line)
        return None if msg.startswith("[") else parse_error(msg)
    return None


# ---- the shipped lists ---------------------------------------------------------
class PathEntry(NamedTuple):
    text: str                       # lower case; matched in the target, raw and percent-decoded once
    method: Optional[str] = None
    statuses: Tuple[int, ...] = ()


def _lines(path: str, check: Optional[Callable[[str], None]]) -> List[Tuple[int, str]]:
    if check:
        check(path)
    text = read_text(path, ListError)
    out = []
    for n, raw in enumerate(text.splitlines(), 1):
        item = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if item:
            out.append((n, item))
    return out


def _statuses(word: str) -> Optional[Tuple[int, ...]]:
    parts = word.split(",")
    if all(p.isdigit() and len(p) == 3 for p in parts):
        return tuple(int(p) for p in parts)
    return None


def read_paths(path: str, check: Optional[Callable[[str], None]] = None) -> List[PathEntry]:
    """rules/attack-paths: '[METHOD] TEXT [STATUS,...]' a line, '#' comments."""
    entries = []
    for n, item in _lines(path, check):
        words = item.split()
        method = words.pop(0) if len(words) > 1 and words[0].isalpha() and words[0].isupper() else None
        statuses: Tuple[int, ...] = ()
        if len(words) == 2:
            found = _statuses(words[1])
            if found is None:
                raise ListError(located(path, n, f"{words[1]!r} is not a status list like 200,404 "
                                                  "(entry: [METHOD] TEXT [STATUS,...])"))
            statuses, words = found, words[:1]
        if len(words) != 1:
            raise ListError(located(path, n, f"expected [METHOD] TEXT [STATUS,...], got {item[:60]!r}"))
        entries.append(PathEntry(words[0].lower(), method, statuses))
    return entries


def read_agents(path: str, check: Optional[Callable[[str], None]] = None) -> List[str]:
    """rules/bad-agents: one text a line (spaces allowed), matched in the User-Agent, any case."""
    return [item.lower() for _, item in _lines(path, check)]


# ---- floods --------------------------------------------------------------------
class FloodWindow:
    """Requests per (client, virtual host) in a sliding window of line times.

    `hit` records one request and answers True when it is the one over the
    limit; that key then starts afresh, so a flood that goes on is one more
    affair per `limit` further requests (the tarpit grows like any affair's).
    """

    def __init__(self, limit: int, window: float):
        self.limit, self.window = limit, window
        self._seen: Dict[Tuple[str, Optional[str]], Deque[float]] = {}
        self._latest = 0.0
        self._hits = 0

    def hit(self, key: Tuple[str, Optional[str]], when: float) -> bool:
        q = self._seen.get(key)
        if q is None:
            q = self._seen[key] = collections.deque()
        elif q and when < q[-1]:
            when = q[-1]                # a line written a little out of order counts at its key's latest time
        horizon = when - self.window
        while q and q[0] <= horizon:
            q.popleft()
        q.append(when)
        self._latest = max(self._latest, when)
        self._hits += 1
        if self._hits >= 50000:
            self._sweep()
        if len(q) > self.limit:
            q.clear()
            return True
        return False

    def _sweep(self) -> None:
        """Forget keys with nothing inside the window (memory stays bounded by the busy ones)."""
        horizon = self._latest - self.window
        self._seen = {k: q for k, q in self._seen.items() if q and q[-1] > horizon}
        self._hits = 0


# ---- what rules use -------------------------------------------------------------
def _networks(values: Sequence) -> Tuple:
    return tuple(ipaddress.ip_network(v) if isinstance(v, str) else v for v in values)


class Web:
    """WatchWB's view of the lines, one per assembled filter: its settings, lists and flood window.

    Settings (TRUSTED_PROXIES, FLOOD_REQUESTS, FLOOD_WINDOW) are read when
    first needed, from the module's configuration unless given; the lists
    from the rules folder when it holds them (refused like a rule when
    another user could change them).
    """

    def __init__(self, module: str, rules_dir: Optional[str] = None, settings=None,
                 check: Optional[Callable[[str], None]] = None):
        self.module, self.rules_dir = module, rules_dir
        self._settings = settings
        self._flood: Optional[FloodWindow] = None
        self._trusted: Optional[Tuple] = None
        self.paths: List[PathEntry] = []
        self.agents: List[str] = []
        if rules_dir:
            p, a = os.path.join(rules_dir, PATH_LIST), os.path.join(rules_dir, AGENT_LIST)
            if os.path.exists(p):
                self.paths = read_paths(p, check)
            if os.path.exists(a):
                self.agents = read_agents(a, check)
        self._last: Tuple[str, Optional[WebLine]] = ("", None)

    @property
    def settings(self):
        if self._settings is None:
            from lib import config
            self._settings = config.load(self.module)
        return self._settings

    @property
    def trusted(self) -> Tuple:
        if self._trusted is None:
            self._trusted = _networks(self.settings.TRUSTED_PROXIES)
        return self._trusted

    @property
    def window(self) -> FloodWindow:
        if self._flood is None:
            self._flood = FloodWindow(self.settings.FLOOD_REQUESTS, self.settings.FLOOD_WINDOW)
        return self._flood

    def line(self, text: str) -> Optional[WebLine]:
        """The parsed line (kept for the next call: the rules of a ladder ask several times)."""
        last = self._last
        if text is last[0]:
            return last[1]
        parsed = parse(text)
        self._last = (text, parsed)
        return parsed

    def _is_trusted(self, text: str) -> Optional[bool]:
        try:
            addr = ipaddress.ip_address(text[1:-1] if text.startswith("[") and text.endswith("]") else text)
        except ValueError:
            return None
        if addr.version == 6 and addr.ipv4_mapped:
            addr = addr.ipv4_mapped
        return any(addr.version == n.version and addr in n for n in self.trusted)

    def client(self, text: str) -> Peer:
        """The client of a request: the address the server wrote, or behind a trusted proxy the
        rightmost address of X-Forwarded-For that is not a trusted proxy; (None, None) when no
        address can be trusted (a trusted proxy is never the client)."""
        w = self.line(text)
        if w is None or not w.peer:
            return None, None
        trusted = self._is_trusted(w.peer)
        if trusted is None:
            return None, None
        key = w.key if w.kind == "error" else zlib.crc32(text.encode("utf-8", "replace"))
        if not trusted:         # an access line's key is the line: each request is an attempt of its own
            return w.peer, key
        if w.kind != "access" or not w.forwarded or w.forwarded == "-":
            return None, None
        for hop in reversed(w.forwarded.split(",")):
            hop = hop.strip()
            hop_trusted = self._is_trusted(hop)
            if hop_trusted is None:
                return None, None       # not an address: what stands left of it proves nothing
            if not hop_trusted:
                return hop, key
        return None, None

    def vhost(self, text: str) -> Optional[str]:
        w = self.line(text)
        return w.vhost if w else None

    def message(self, text: str) -> str:
        """An error line's own message after the server's fixed fields ('' for other lines):
        Apache 'AH01617: user bob: ...', nginx 'user "bob": password mismatch'."""
        w = self.line(text)
        return w.message if w and w.kind == "error" else ""

    def flood(self, text: str) -> bool:
        """Count this access line's request; True when its client is over the limit for its host."""
        w = self.line(text)
        if w is None or w.kind != "access" or w.time is None:
            return False
        ip, _ = self.client(text)
        return ip is not None and self.window.hit((ip, w.vhost), w.time)

    def attack_path(self, text: str) -> bool:
        """The request asks for a path of the attack-paths list (with its method and status)."""
        w = self.line(text)
        if w is None or w.kind != "access" or not w.target:
            return False
        raw = w.target.lower()
        decoded = _unquote(raw) if "%" in raw else raw
        for e in self.paths:
            if (e.text in raw or e.text in decoded) and (e.method is None or e.method == w.method) \
                    and (not e.statuses or w.status in e.statuses):
                return True
        return False

    def bad_agent(self, text: str) -> bool:
        """The User-Agent holds a text of the bad-agents list."""
        w = self.line(text)
        if w is None or w.kind != "access" or not w.agent:
            return False
        agent = w.agent.lower()
        return any(a in agent for a in self.agents)


def names(module: str, rules_dir: Optional[str] = None, check: Optional[Callable[[str], None]] = None) -> dict:
    """The rules' names for one filter's namespace, bound to a fresh `Web`."""
    web = Web(module, rules_dir, check=check)
    return {"web_client": web.client, "web_vhost": web.vhost, "web_message": web.message,
            "web_flood": web.flood, "web_attack_path": web.attack_path, "web_bad_agent": web.bad_agent}
