"""Mail lines: the peer of Postfix, Dovecot, Courier and DBmail (WatchMX and WatchMB).

Mail lines carry much client text: HELO names, envelope addresses (quoted
local parts may hold spaces and brackets), user names, SASL answers.  Each
extractor below first checks which program wrote the line (the syslog tag,
which no client writes), then takes the peer from the one place that
program puts it.  The second item of the Peer is the attempt key that
lib.affairs uses to count the lines of one attempt once: the client port
where the daemon logs one, else Postfix's smtpd process id (one smtpd
serves one SMTP session at a time) or Dovecot's session id.
"""
import zlib
from typing import Optional, Tuple

from lib.extract import Peer, message, program, token_after, word_at

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
    ip, end = word_at(msg, i + 6)
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
