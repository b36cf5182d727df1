"""Address extraction: the peer's address from the daemon's fixed format.

Rules call these (directly or through `inject()`'s module default).  Each
anchors on the part of the line the daemon writes itself, so text an
attacker controls (a user name, a HELO, an e-mail address) never chooses
the address: sshd writes the peer as the *last* ' from ADDR port N', after
any user name.  They only cut text; `lib.addresses.parse_peer` validates.
"""
from typing import Optional, Tuple

Peer = Tuple[Optional[str], Optional[int]]


def _port(text: str, start: int) -> Optional[int]:
    """The N of ' port N' at text[start:], if that is what follows."""
    if not text.startswith(" port ", start):
        return None
    end = start + 6
    while end < len(text) and text[end].isdigit():
        end += 1
    digits = text[start + 6:end]
    return int(digits) if digits and len(digits) <= 5 else None


def token_after(text: str, marker: str, last: bool = True) -> Tuple[Optional[str], int]:
    """The word after `marker` (its last occurrence unless last=False) and where it ends."""
    i = text.rfind(marker) if last else text.find(marker)
    if i < 0:
        return None, -1
    start = i + len(marker)
    end = start
    n = len(text)
    while end < n and text[end] not in " ,;\t\r\n":
        end += 1
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


DEFAULTS = {"LG": from_port}
