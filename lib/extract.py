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
import zlib
from typing import Optional, Tuple

Peer = Tuple[Optional[str], Optional[int]]
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
    msg = _message(text)
    _last_message = (text, msg)
    return msg


_last_message = ("", "")        # (line, its message): holding the line keeps its id unique


def _message(text: str) -> str:
    text = text.rstrip("\r\n")
    start = 0
    if text.startswith("<"):
        close = text.find(">", 1, 6)
        if close > 1 and text[1:close].isdigit():
            start = close + 1
            if text.startswith("1 ", start):
                return _unwrap(_rfc5424_message(text, start + 2))
    colon = text.find(": ", start)
    return _unwrap(text[colon + 2:] if colon >= 0 else text[start:])


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


def sshd_cut(text: str) -> bool:
    """The message is long enough to have been cut by sshd: its end may be
    client text instead of what sshd wrote after it (the peer, a reason)."""
    return len(text) >= SSHD_MESSAGE_MAX - 20


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
    ip, end = _word(text, i + 6)
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
    found = []
    limit = SSHD_MESSAGE_MAX - 20           # a place ending beyond may be cut client text
    ascii_only = text.isascii()             # then str.isdigit is [0-9]: one regex reads the place
    i = text.find(" from ", 0, limit)
    while i >= 0:
        if ascii_only:
            m = _SSH2_PLACE.match(text, i + 6)
            ip, digits = m.groups() if m else (None, "")
            ip, port, after = (ip, int(digits), m.end()) if ip and len(digits) <= 5 else (None, None, 0)
        else:
            ip, end = _word(text, i + 6)
            port, after = _port_end(text, end)
            after = after + 5 if ip and port is not None and text.startswith(" ssh2", after) else 0
        if after:
            if after >= limit:
                break
            if (after == len(text) or (after == len(text) - 10 and text.endswith(" [preauth]"))
                    or (keyed and text.startswith(": ", after))):
                found.append((ip, port))
        i = text.find(" from ", i + 6, limit)
    return found[0] if len(found) == 1 else (None, None)


_SSH2_PLACE = re.compile("([^ ,;\t\r\n]*) port ([0-9]+) ssh2")   # ssh2_peer's ' from ADDR port N ssh2'


def _word(text: str, start: int) -> Tuple[Optional[str], int]:
    end = _word_end(text, start)
    return text[start:end] or None, end


# ---- mail: Postfix, Dovecot, Courier, DBmail (WatchMX and WatchMB) ---------
#
# Mail lines carry much client text: HELO names, envelope addresses (quoted
# local parts may hold spaces and brackets), user names, SASL answers.  Each
# extractor below first checks which program wrote the line (the syslog tag,
# which no client writes), then takes the peer from the one place that
# program puts it.  The second item of the Peer is the attempt key that
# lib.affairs uses to count the lines of one attempt once: the client port
# where the daemon logs one, else Postfix's smtpd process id (one smtpd
# serves one SMTP session at a time) or Dovecot's session id.

_HOSTNAME = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_")
POSTFIX_CLIENT_DAEMONS = ("smtpd", "postscreen")
_CLIENT_MARKS = frozenset("=<>@\"'")
COURIER_PROGRAMS = ("imapd", "imapd-ssl", "pop3d", "pop3d-ssl", "courierpop3login", "courier-imapd",
                    "courier-pop3d")
PASSDB_FAILURES = ("unknown user", "Password mismatch")
MAILBOX_MESSAGE_MAX = 900   # see mailbox_cut


def mailbox_cut(msg: str) -> bool:
    """A mailbox daemon's message this long may have been cut (DBmail cuts its messages
    at 4 KB, syslog daemons cut long lines: rsyslog at 8 KB by default, old ones at
    1 KB; real login lines are a few hundred characters): its end may be client text
    instead of the fields the daemon wrote after the user name, so the extractors
    that read from the right yield nothing from it."""
    return len(msg) > MAILBOX_MESSAGE_MAX


def program(text: str) -> Tuple[str, Optional[int]]:
    """The syslog tag: ('postfix/smtpd', 4244) of '... postfix/smtpd[4244]: MSG',
    ('dovecot', None) of '... dovecot: MSG'; ('', None) without one.  Headers as
    `message` reads them (traditional, RFC 3339, RFC 5424 APP-NAME and PROCID)."""
    start = 0
    if text.startswith("<"):
        close = text.find(">", 1, 6)
        if close > 1 and text[1:close].isdigit():
            start = close + 1
            if text.startswith("1 ", start):
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


def _postfix(text: str) -> Tuple[Optional[str], Optional[int]]:
    """(message, pid) of a line from Postfix's smtpd or postscreen, else (None, None)."""
    prog, pid = program(text)
    service, _, daemon = prog.rpartition("/")
    if not service or daemon not in POSTFIX_CLIENT_DAEMONS:
        return None, None
    return message(text), pid


def postfix_mta(text: str) -> bool:
    """The line comes from the smtpd of Postfix's MTA port (tag 'postfix/smtpd'), not
    from a submission service logging as 'postfix/submission/smtpd' or 'postfix/smtps/smtpd'."""
    prog, _ = program(text)
    return prog.count("/") == 1 and prog.endswith("/smtpd")


def postfix_client(text: str, marker: str = " from ") -> Peer:
    """Postfix's client field: NAME[ADDR] (postscreen: [ADDR]:PORT) right after the
    fixed `marker` of smtpd's or postscreen's message ('NOQUEUE: reject: RCPT from
    NAME[ADDR]: ...', 'lost connection after AUTH from NAME[ADDR]', 'DNSBL rank 3 for
    [ADDR]:PORT'; marker 'warning: ' for 'warning: NAME[ADDR]: SASL LOGIN ...').

    It must be the message's first bracket group: everything before it is
    Postfix's own words (never with '=', '<', '>', '@' or quotes, which client
    text brings), client text (HELO, sender, recipient, SASL answers) only
    comes after it, so a bracket there never chooses the address.  NAME is the
    verified reverse name or 'unknown': host name characters only.
    """
    msg, pid = _postfix(text)
    if msg is None:
        return None, None
    open_ = msg.find("[")
    if open_ < 0:
        return None, None
    name_start = msg.rfind(" ", 0, open_) + 1
    if not _HOSTNAME.issuperset(msg[name_start:open_]):
        return None, None
    head = msg[:name_start]
    if not (head.endswith(marker) if marker.startswith(" ") else head == marker) or _CLIENT_MARKS & set(head):
        return None, None
    close = msg.find("]", open_)
    if close < 0:
        return None, None
    port = None
    if msg.startswith(":", close + 1):
        end = close + 2
        while end < len(msg) and msg[end].isdigit():
            end += 1
        if 2 < end - close <= 7:
            port = int(msg[close + 2:end])
    return msg[open_ + 1:close] or None, port if port is not None else pid


def postfix_reject(text: str) -> str:
    """The rest of smtpd's reject message ('RCPT from NAME[ADDR]: 554 5.7.1 ...') when
    the message is 'NOQUEUE: reject: ...' or 'QUEUEID: reject: ...', else ''."""
    msg, _ = _postfix(text)
    if msg is None:
        return ""
    i = msg.find(": reject: ")
    return msg[i + 10:] if 0 < i <= 20 and msg[:i].isalnum() else ""


def postfix_unverified(text: str) -> Peer:
    """smtpd's 'warning: hostname NAME does not resolve to address ADDR[: ERROR]' and the
    older 'warning: ADDR: hostname NAME verification failed: ...' / 'warning: ADDR:
    address not listed for hostname NAME'.  NAME comes from the client's reverse DNS
    (host name characters only, no spaces): the address is where Postfix puts it."""
    msg, pid = _postfix(text)
    if msg is None or not msg.startswith("warning: "):
        return None, None
    if msg.startswith("warning: hostname "):
        name_end = msg.find(" ", 18)
        if (name_end < 0 or not _HOSTNAME.issuperset(msg[18:name_end])
                or not msg.startswith(" does not resolve to address ", name_end)):
            return None, None
        start = name_end + 29
    else:
        start = 9
    end = msg.find(": ", start)
    addr = msg[start:end if end >= 0 else len(msg)]
    if start == 9 and not (msg.startswith(" hostname ", end + 1) or msg.startswith(" address not listed", end + 1)):
        return None, None
    return (addr or None), pid


def _session_key(msg: str, marker: str, end: str) -> Optional[int]:
    """A number for Dovecot's session id (the last `marker`...`end`), for lib.affairs."""
    i = msg.rfind(marker)
    if i < 0:
        return None
    j = msg.find(end, i + len(marker))
    return _key(msg[i + len(marker):j]) if j > i + len(marker) else None


def _key(session: str) -> int:
    return zlib.crc32(session.encode("utf-8", "replace"))


def _dovecot(text: str) -> Optional[str]:
    prog, _ = program(text)
    return message(text) if prog == "dovecot" else None


def dovecot_reason(text: str) -> str:
    """What a Dovecot login process (imap-login, pop3-login, submission-login,
    managesieve-login) says before its fields: 'Disconnected (auth failed, 1 attempts
    in 2 secs)', 'Login aborted: Connection closed (auth failed, ...) (auth_failed)',
    'Login'; '' for any other line.  The user name comes after it: client text."""
    msg = _dovecot(text)
    if msg is None:
        return ""
    colon = msg.find("-login: ")
    if colon <= 0 or not msg[:colon].isalnum():
        return ""
    start = colon + 8
    ends = [i for i in (msg.find(": user=<", start), msg.find(": method=", start), msg.find(": rip=", start))
            if i >= 0]
    return msg[start:min(ends)] if ends else ""


def dovecot_login(text: str) -> Peer:
    """rip= of a Dovecot login process line: the last ', rip=' (or ': rip=' when it is the
    first field).  user=<...> comes before it and may hold ', rip=...'; what follows it
    is Dovecot's own fields (lip, mpid, TLS, session=<ID> last), with no '>' but the
    session's: a rip= inside user=<...> is followed by its closing '>'."""
    if not dovecot_reason(text):
        return None, None
    msg = message(text)
    i = max(msg.rfind(", rip="), msg.rfind(": rip="))
    u = msg.find(": user=<")
    if i < 0 or mailbox_cut(msg) or u >= 0 and msg.find(">", u, i) < 0:
        return None, None                   # no rip= after the user field closed
    ip, end = _word(msg, i + 6)
    rest = msg[end:]
    s = rest.rfind(", session=<")
    if rest and not rest.startswith(", ") or ">" in (rest[:s] if s >= 0 and rest.endswith(">") else rest):
        return None, None                   # what follows rip= is not Dovecot's fields: no rip= of Dovecot's
    return ip, _session_key(msg, "session=<", ">")


def dovecot_passdb(text: str) -> Peer:
    """Dovecot's auth / auth-worker: 'DRIVER(USER,ADDR[,master][,<SESSION>]): MESSAGE', e.g.
    'passwd-file(bob,203.0.113.5,<a1b2>): unknown user' or 'pam(bob,203.0.113.5):
    pam_authenticate() failed: Authentication failure (password mismatch?)'.

    USER is client text and may hold commas and '): ', so the field is read from the
    right: the MESSAGE must be one of Dovecot's (PASSDB_FAILURES, or PAM's words after
    'pam_authenticate() failed: ') and end the line, with at most the SHA1 of the
    password and ' - trying the next passdb' after it.  With auth_verbose_passwords=plain
    the password (client text) ends the line: such lines yield nothing.
    """
    msg = _dovecot(text)
    if msg is None or "(given password: " in msg or mailbox_cut(msg):
        return None, None
    for tail in (" - trying the next passdb", " - trying the next userdb"):
        if msg.endswith(tail):
            msg = msg[:-len(tail)]
    sha = msg.rfind(" (SHA1 of given password: ")
    if sha >= 0 and msg.endswith(")") and all(c in "0123456789abcdef" for c in msg[sha + 26:-1]):
        msg = msg[:sha]
    i = msg.rfind("): ")
    said = msg[i + 3:]
    if i < 0 or not (said in PASSDB_FAILURES or said.startswith("pam_authenticate() failed: ")):
        return None, None
    fields, key = msg[:i], None
    if fields.endswith(">"):
        s = fields.rfind(",<")
        if s < 0:
            return None, None
        key = _key(fields[s + 2:-1])
        fields = fields[:s]
    if fields.endswith(",master"):
        fields = fields[:-7]
    c = fields.rfind(",")
    return (fields[c + 1:] or None, key) if c >= 0 and "(" in fields[:c] else (None, None)


def courier_peer(text: str) -> Peer:
    """Courier's 'LOGIN FAILED, [method=M, ]user=NAME, ip=[ADDR][, port=[N]]' and 'LOGIN,
    user=NAME, ip=[ADDR]': the last ', ip=[' (the user name comes before it)."""
    prog, _ = program(text)
    if prog not in COURIER_PROGRAMS:
        return None, None
    msg = message(text)
    i = msg.rfind(", ip=[")
    j = msg.find("]", i) if i >= 0 else -1
    if j < 0 or mailbox_cut(msg):
        return None, None
    rest = msg[j + 1:]                      # Courier's own fields only: ', port=[N]', ', protocol=IMAP'
    if any(" " in f or "=" not in f for f in rest.split(", ")[1:]) or rest and not rest.startswith(", "):
        return None, None
    port, _ = token_after(rest, ", port=[", last=False)
    return msg[i + 6:j] or None, int(port[:-1]) if port and port[:-1].isdigit() else None


def dbmail_message(text: str) -> str:
    """DBmail's own words: what follows 'Level:[module] function(+N): ' and the session
    pointer '[0x...] ' of a dbmail-* program's line; '' for any other line."""
    prog, _ = program(text)
    if not prog.startswith("dbmail"):
        return ""
    msg = message(text)
    i = msg.find("): ")
    if i < 0 or ":[" not in msg[:i]:
        return ""
    if mailbox_cut(msg):
        return ""
    said = msg[i + 3:]
    if said.startswith("[0x"):
        j = said.find("] ")
        said = said[j + 2:] if j > 0 else ""
    return said


def dbmail_peer(text: str) -> Peer:
    """DBmail's login failures and successes (dbmail_message), the address taken at the
    fixed end of the message: the user name [NAME] comes before it and may imitate it.
      pop3d 3.x: 'user [NAME] coming from [ADDR] tried to login with wrong password'
      imapd 3.x: 'login rejected: user [NAME] from [ADDR:PORT]' (and 'login accepted: ...')
      imapd 2.x: 'user (name NAME) coming from [ADDR] login rejected' (and '... login accepted')
    """
    said = dbmail_message(text)
    if said.startswith(("user [", "user (name ")):
        for ending in ("] tried to login with wrong password", "] login rejected", "] login accepted"):
            if said.endswith(ending):
                i = said.rfind(" coming from [", 0, len(said) - len(ending))
                return (said[i + 14:len(said) - len(ending)] or None, None) if i >= 0 else (None, None)
    elif said.startswith(("login rejected: user [", "login accepted: user [")) and said.endswith("]"):
        i = said.rfind("] from [")
        addr, _, port = said[i + 8:-1].rpartition(":")
        if i >= 0 and addr and port.isdigit() and len(port) <= 5:
            return addr, int(port)
    return None, None


def mailbox_peer(text: str) -> Peer:
    """WatchMB's default: the peer as the program that wrote the line names it."""
    prog, _ = program(text)
    if prog == "dovecot":
        return dovecot_login(text) if dovecot_reason(text) else dovecot_passdb(text)
    if prog.startswith("dbmail"):
        return dbmail_peer(text)
    if prog in COURIER_PROGRAMS:
        return courier_peer(text)
    msg, _ = _postfix(text)
    return postfix_client(text, "warning: ") if msg and msg.startswith("warning: ") else postfix_client(text)


DEFAULTS = {"LG": from_port, "MX": postfix_client, "MB": mailbox_peer}
