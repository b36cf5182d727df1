"""One block list's entries: parsing a downloaded body, and validating each entry.

A body is a whole list or ListError: an empty download, a text list whose
last line has no newline, Spamhaus JSON lines without the final
{"type": "metadata"} line are cut short.  Each entry is checked on its own:
an address or network no narrower than MIN_PREFIX, none of the special
ranges (loopback, link-local, multicast, ...), never one that holds this
host's own address; the others load.
"""
import ipaddress
import json
from typing import List, Optional, Sequence, Tuple

from lib.addresses import Address, Network
from lib.errors import ListError, located

MIN_PREFIX = {4: 8, 6: 19}      # anything wider is a mistake, not a block list
FORMATS = ("plain", "nixspam", "spamhaus")
_BOGUS = [(ipaddress.ip_network(n), why) for n, why in (
    ("0.0.0.0/8", "'this network' (0.0.0.0/8)"), ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"), ("224.0.0.0/4", "multicast"), ("255.255.255.255/32", "broadcast"),
    ("::/128", "the unspecified address"), ("::1/128", "loopback"), ("::ffff:0:0/96", "IPv4-mapped space"),
    ("fe80::/10", "link-local"), ("ff00::/8", "multicast"))]


# ---------------------------------------------------------------- one entry
def check_network(net: Network, own: Sequence[Address] = ()) -> None:
    """ValueError saying why `net` must never go into a drop set."""
    if net.prefixlen < MIN_PREFIX[net.version]:
        raise ValueError(f"{net} is wider than /{MIN_PREFIX[net.version]}")
    for bad, why in _BOGUS:
        if bad.version == net.version and net.overlaps(bad):
            raise ValueError(f"{net} is {why}" if net.subnet_of(bad) else f"{net} covers {why} ({bad})")
    for addr in own:
        if addr.version == net.version and not addr.is_loopback and addr in net:
            raise ValueError(f"{net} holds this host's own address {addr}")


def check_entry(text: Optional[str], own: Sequence[Address] = ()) -> Network:
    """The network one list entry names, or ValueError saying why it is refused."""
    if not text:
        raise ValueError("no address")
    if "%" in text or len(text) > 60:
        raise ValueError(f"not an address or network: {text[:60]!r}")
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ValueError(f"not an address or network: {text[:60]!r}") from None
    if net.version == 6 and net.prefixlen >= 96 and net.network_address.ipv4_mapped:
        net = ipaddress.ip_network(f"{net.network_address.ipv4_mapped}/{net.prefixlen - 96}")
    check_network(net, own)
    return net


def validate(entries: Sequence[Tuple[int, Optional[str]]], own: Sequence[Address],
             where: str) -> Tuple[List[Network], List[str]]:
    """Networks of the good entries (each once) and 'WHERE:LINE: rejected ...' for the others."""
    nets, seen, problems = [], set(), []
    for n, text in entries:
        try:
            net = check_entry(text, own)
        except ValueError as e:
            problems.append(located(where, n, f"rejected: {e}"))
            continue
        if net not in seen:
            seen.add(net)
            nets.append(net)
    return nets, problems


# ---------------------------------------------------------------- one body
def _text_lines(body: str) -> List[str]:
    if not body.endswith("\n"):
        raise ListError("truncated: the last line has no newline (download cut short?)")
    return body.splitlines()


def _parse_json_lines(body: str) -> List[Tuple[int, Optional[str]]]:
    lines = body.splitlines()
    numbered = [(n, l.strip()) for n, l in enumerate(lines, 1) if l.strip()]
    entries, last_meta = [], False
    for i, (n, line) in enumerate(numbered):
        try:
            obj = json.loads(line)
        except ValueError:
            if i == len(numbered) - 1:
                raise ListError(f"truncated: line {n} is cut off and the final metadata line is missing") from None
            raise ListError(f"line {n} is not JSON: {line[:40]!r}") from None
        if not isinstance(obj, dict):
            raise ListError(f"line {n} is not a JSON object: {line[:40]!r}")
        last_meta = obj.get("type") == "metadata"
        if not last_meta:
            cidr = obj.get("cidr")
            entries.append((n, cidr.strip() if isinstance(cidr, str) else None))
    if not last_meta:
        raise ListError('truncated: no final {"type": "metadata"} line')
    return entries


def parse(body: str, fmt: str) -> List[Tuple[int, Optional[str]]]:
    """(line number, entry text) of a list body; ListError when the body is not a whole list.

    plain: one address or network a line, '#' or ';' comments.  nixspam: the
    NiX Spam dump, 'TIMESTAMP ADDRESS' a line (a bare address is taken too).
    spamhaus: JSON lines ({"cidr": ...} objects, a final metadata object) or
    the legacy text format ('CIDR ; SBLnnnn', ';' comment lines).
    """
    if not body.strip():
        raise ListError("empty download")
    if fmt == "spamhaus" and body.lstrip().startswith("{"):
        return _parse_json_lines(body)
    entries = []
    for n, line in enumerate(_text_lines(body), 1):
        text = line.split("#", 1)[0].split(";", 1)[0].strip()
        if not text:
            continue
        words = text.split()
        if fmt == "nixspam" and len(words) == 2 and words[0].isdigit():
            text = words[1]
        entries.append((n, text))
    return entries
