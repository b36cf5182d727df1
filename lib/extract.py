"""Address extraction: the peer's address from the daemon's fixed format.

Rules call these (directly or through `inject()`'s module default).  Each
anchors on the part of the line the daemon writes itself, so text an
attacker controls (a user name, a HELO, an e-mail address) never chooses
the address: sshd writes the peer as the *last* ' from ADDR port N', after
any user name.  They only cut text; `lib.addresses.parse_peer` validates.

Client text can also quote a whole daemon message (a disconnect reason, a
version string, a certificate ID).  So a rule first checks that the
*message* begins with its pattern (`begins`: the syslog header is the
logger's, and client text never comes first), then takes the peer from the
place the daemon's format puts it.  sshd hands syslog at most 500
characters: the end of a message that long may be client text (`sshd_cut`).
"""
import re
from typing import Optional, Tuple

Peer = Tuple[Optional[str], Optional[int]]
WORD = "[^ ,;\t\r\n]"                       # a character of an address word
_WORD_END = re.compile("[ ,;\t\r\n]")      # what ends an address word
_ASCII_DIGITS = re.compile("[0-9]*")


def _word_end(text: str, start: int) -> int:
    """Index of the first character from `start` on that ends a word (or the end)."""
    m = _WORD_END.search(text, start)
    return m.start() if m else len(text)


def _digits_end(text: str, start: int) -> int:
    """Index after the run of digits (str.isdigit) at text[start:]; 0-9 in C first."""
    end, n = _ASCII_DIGITS.match(text, start).end(), len(text)
    while end < n and text[end].isdigit():
        end += 1
    return end


def _port(text: str, start: int) -> Optional[int]:
    """The N of ' port N' at text[start:], if that is what follows."""
    if not text.startswith(" port ", start):
        return None
    end = _digits_end(text, start + 6)
    digits = text[start + 6:end]
    return int(digits) if digits and len(digits) <= 5 else None


def token_after(text: str, marker: str, last: bool = True) -> Tuple[Optional[str], int]:
    """The word after `marker` (its last occurrence unless last=False) and where it ends."""
    i = text.rfind(marker) if last else text.find(marker)
    if i < 0:
        return None, -1
    start = i + len(marker)
    end = _word_end(text, start)
    return text[start:end] or None, end


def from_port(text: str) -> Peer:
    """sshd: the last ' from ADDR' (with ' port N' when present)."""
    ip, end = token_after(text, " from ")
    if ip is None:
        return None, None
    return ip, _port(text, end)


def first_from(text: str) -> Peer:
    """The first ' from ADDR': for lines where client text follows (disconnect reasons)."""
    ip, end = token_after(text, " from ", last=False)
    return (ip, _port(text, end)) if ip else (None, None)


def bare_port(text: str) -> Peer:
    """sshd's '... user NAME ADDR port N' lines: the word before the last ' port N'."""
    i = text.rfind(" port ")
    if i < 0:
        return None, None
    start = text.rfind(" ", 0, i) + 1
    return text[start:i] or None, _port(text, i)


def bracket(text: str, marker: str = "[") -> Peer:
    """Postfix 'name[ADDR]' (the last such group before ']:' or end)."""
    end = text.rfind("]")
    while end > 0:
        start = text.rfind(marker, 0, end)
        if start < 0:
            return None, None
        candidate = text[start + len(marker):end]
        if candidate and all(c in "0123456789abcdefABCDEF:." for c in candidate):
            return candidate, None
        end = text.rfind("]", 0, start)
    return None, None


def field(text: str, key: str) -> Peer:
    """'key=ADDR' as Dovecot's rip= (the daemon's own field: last occurrence)."""
    ip, _ = token_after(text, key)
    return (ip.strip("<>"), None) if ip else (None, None)


def message(text: str) -> str:
    """The daemon's own message: the line without its syslog header.

    Headers: traditional and RFC 3339 ('... TAG[PID]: MSG', the first ': '
    ends the header: timestamps and host names hold no ': '), RFC 5424
    ('<PRI>1 TIME HOST APP PROCID MSGID SD MSG').  rsyslog's 'message
    repeated N times: [ MSG]' and a leading 'error: ' or 'fatal: ' (sshd's
    log level) are taken off too.  Trailing spaces are kept: they are part
    of what the daemon wrote (see `peer_ending`).
    """
    global _last_message
    last = _last_message
    if text is last[0]:         # the rules of a ladder ask for one line's message several times
        return last[1]
    msg = parse_message(text)
    _last_message = (text, msg)
    return msg


_last_message = ("", "")        # (line, its message): holding the line keeps its id unique


def _after_pri(text: str) -> int:
    """Where the line goes on after a leading syslog '<PRI>' (0 without one)."""
    if text.startswith("<"):
        close = text.find(">", 1, 6)
        if close > 1 and text[1:close].isdigit():
            return close + 1
    return 0


def parse_message(text: str) -> str:
    """message(text) without the memory of the last line."""
    if text.endswith(("\r", "\n")):
        text = text.rstrip("\r\n")
    start = _after_pri(text) if text.startswith("<") else 0
    if start and text.startswith("1 ", start):
        return _unwrap(_rfc5424_message(text, start + 2))
    colon = text.find(": ", start)
    msg = text[colon + 2:] if colon >= 0 else text[start:]
    # most messages begin with none of _unwrap's prefixes: one look at the first letter
    return _unwrap(msg) if msg[:1] in WRAPPED_FIRST else msg


def _rfc5424_message(text: str, i: int) -> str:
    for _ in range(5):                      # TIMESTAMP HOSTNAME APP-NAME PROCID MSGID
        i = text.find(" ", i) + 1
        if i == 0:
            return ""
    if text.startswith("-", i):             # no structured data
        i += 1
    else:                                   # [id k="v" ...][...]: ']' and '"' escaped by '\\'
        while text.startswith("[", i):
            quoted, i = False, i + 1
            while i < len(text):
                c = text[i]
                if c == "\\":
                    i += 2
                    continue
                i += 1
                if c == '"':
                    quoted = not quoted
                elif c == "]" and not quoted:
                    break
            else:
                return ""
    msg = text[i + 1:] if text.startswith(" ", i) else text[i:]
    return msg[1:] if msg.startswith("\ufeff") else msg


WRAPPED_FIRST = "mef"        # the first letters of what _unwrap takes off: 'message repeated', 'error: ', 'fatal: '


def _unwrap(msg: str) -> str:
    if msg.startswith("message repeated ") and msg.endswith("]"):
        i = msg.find(": [ ")
        if i >= 0:
            msg = msg[i + 4:-1]
    if msg.startswith(("error: ", "fatal: ")):
        msg = msg[7:]
    return msg


def begins(text: str, pattern) -> bool:
    """The daemon's message starts with `pattern` (or one of a tuple of them): the
    daemon wrote it, no client text did."""
    return message(text).startswith(pattern)


SSHD_MESSAGE_MAX = 500      # sshd hands syslog "%.500s": longer messages are cut
SSHD_CUT = SSHD_MESSAGE_MAX - 20    # a message this long may have been cut: its end may be client text


def sshd_cut(text: str) -> bool:
    """The message is long enough to have been cut by sshd: its end may be
    client text instead of what sshd wrote after it (the peer, a reason)."""
    return len(text) >= SSHD_CUT


def peer_after(text: str, marker: str) -> Peer:
    """The word after the first `marker` (and N of a ' port N' that follows): for
    messages whose peer comes first and client text later ('Unable to negotiate
    with ADDR port N: ... Their offer: CLIENT TEXT')."""
    ip, end = token_after(text, marker, last=False)
    return (ip, _port(text, end)) if ip else (None, None)


def from_end(text: str) -> Peer:
    """The peer of a message that ends with ' from ADDR' or ' from ADDR port N'
    ('Invalid user NAME from ADDR port N'): the user name before it is client
    text, and a ' from ' that does not end the message is not sshd's.
    Nothing from a message sshd may have cut (sshd_cut)."""
    i = text.rfind(" from ")
    if i < 0 or sshd_cut(text):
        return None, None
    ip, end = word_at(text, i + 6)
    if end == len(text):
        return ip, None
    port, after = _port_end(text, end)
    return (ip, port) if port is not None and after == len(text) else (None, None)


def from_before(text: str, marker: str) -> Peer:
    """The last ' from ADDR' before the first `marker`: 'User NAME from ADDR not
    allowed because shell PATH does not exist' (the reason may name a path).
    Nothing from a message sshd may have cut (sshd_cut)."""
    cut = text.find(marker)
    return from_port(text[:cut]) if cut >= 0 and not sshd_cut(text) else (None, None)


def peer_ending(text: str, reason: str) -> Peer:
    """sshd's '... ADDR port N: REASON[ [preauth]]' (a disconnect): the peer before the
    fixed reason that ends the message.  User names in these messages are not
    shortened ('Disconnecting invalid user NAME ADDR port N: ...'): a message
    sshd may have cut (sshd_cut) may end in client text, so it yields nothing.
    """
    if sshd_cut(text):
        return None, None
    if text.endswith(" [preauth]"):
        text = text[:-10]
    if not reason or not text.endswith(reason):
        return None, None
    return bare_port(text[:-len(reason)])


def _port_end(text: str, start: int) -> Tuple[Optional[int], int]:
    """(N, index after N) of ' port N' at text[start:], or (None, start)."""
    if not text.startswith(" port ", start):
        return None, start
    end = _digits_end(text, start + 6)
    digits = text[start + 6:end]
    return (int(digits), end) if digits and len(digits) <= 5 else (None, start)


def ssh2_peer(text: str) -> Peer:
    """The peer of sshd's verdict on an authentication request (pass the message):
    'Failed|Accepted|Postponed METHOD for [invalid user ]USER from ADDR port N ssh2[: KEY INFO]'
    and 'maximum authentication attempts exceeded for USER from ADDR port N ssh2 [preauth]'.

    The user name is client text (up to 100 bytes) before the peer; the key
    information of publickey and hostbased (a certificate's ID, the client's
    user and host names) is client text after it.  So the peer is the
    ' from ADDR port N ssh2' that ends the message (or precedes ' [preauth]');
    for publickey and hostbased also one followed by ': KEY INFO', but only when
    it is the only such place in the message: two mean client text imitates
    the daemon, and which one sshd wrote cannot be told.  A place that ends
    where sshd may have cut the message (sshd_cut) may be client text: not
    taken.  (Key information after the peer may run past the cut: a long
    certificate ID does not hide a login.)
    """
    head = text.find(" for ")
    keyed = head > 0 and text.endswith((" publickey", " hostbased"), 0, head)
    if len(text) < SSHD_CUT and text.isascii():
        return _ssh2_search(text, keyed)
    return _ssh2_places(text, keyed)


def _ssh2_search(text: str, keyed: bool) -> Peer:
    """ssh2_peer of an ASCII message shorter than the limit, with one regex search: what
    _ssh2_places finds there.  A place that ends the message is unique (the address word
    holds no space); places before ': ' (keyed) may not be."""
    if keyed:
        places = _SSH2_KEYED.findall(text)
        if len(places) != 1:
            return None, None
        ip, port = places[0]
    else:
        m = _SSH2_END.search(text)
        if m is None:
            return None, None
        ip, port = m.groups()
    return ip, int(port)


def _ssh2_places(text: str, keyed: bool) -> Peer:
    """ssh2_peer the long way: every ' from ADDR port N ssh2' before the limit, in turn."""
    found = []
    # a place ending at SSHD_CUT or beyond may be cut client text; ASCII: str.isdigit is [0-9], one regex
    limit, ascii_only = SSHD_CUT, text.isascii()
    i = text.find(" from ", 0, limit)
    while i >= 0:
        if ascii_only:
            m = _SSH2_PLACE.match(text, i + 6)
            ip, digits = m.groups() if m else (None, "")
            ip, port, after = (ip, int(digits), m.end()) if ip and len(digits) <= 5 else (None, None, 0)
        else:
            ip, end = word_at(text, i + 6)
            port, after = _port_end(text, end)
            after = after + 5 if ip and port is not None and text.startswith(" ssh2", after) else 0
        if after:
            if after >= limit:
                break
            if (after == len(text) or (after == len(text) - 10 and text.endswith(" [preauth]"))
                    or (keyed and text.startswith(": ", after))):
                found.append((ip, port))
        i = text.find(" from ", i + 1, limit)
    return found[0] if len(found) == 1 else (None, None)


_SSH2_PLACE = re.compile("(%s*) port ([0-9]+) ssh2" % WORD)   # ssh2_peer's ' from ADDR port N ssh2'
_SSH2_END = re.compile(" from (%s+) port ([0-9]{1,5}) ssh2(?: \\[preauth\\])?\\Z" % WORD)
_SSH2_KEYED = re.compile(" from (%s+) port ([0-9]{1,5}) ssh2(?=: | \\[preauth\\]\\Z|\\Z)" % WORD)


def word_at(text: str, start: int) -> Tuple[Optional[str], int]:
    """The address-like word at text[start:] and where it ends."""
    end = _word_end(text, start)
    return text[start:end] or None, end


def program(text: str) -> Tuple[str, Optional[int]]:
    """The syslog tag: ('postfix/smtpd', 4244) of '... postfix/smtpd[4244]: MSG',
    ('dovecot', None) of '... dovecot: MSG'; ('', None) without one.  Headers as
    `message` reads them (traditional, RFC 3339, RFC 5424 APP-NAME and PROCID)."""
    start = _after_pri(text)
    if start and text.startswith("1 ", start):
        f = text[start + 2:].split(" ", 4)
        if len(f) < 5:
            return "", None
        return ("" if f[2] == "-" else f[2]), (int(f[3]) if f[3].isdigit() else None)
    colon = text.find(": ", start)
    if colon < 0:
        return "", None
    tag = text[max(start, text.rfind(" ", start, colon) + 1):colon]
    name, _, pid = tag.partition("[")
    pid = pid[:-1] if pid.endswith("]") else ""
    return name, (int(pid) if pid.isdigit() and len(pid) <= 10 else None)
