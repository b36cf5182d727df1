"""Addresses: what counts as an attacker's address, and who is never banned.

`parse_peer` is the one gate every address passes before it is counted or
banned: it must be a valid IPv4 or IPv6 address (IPv4-mapped IPv6 becomes
IPv4) and a routable peer (not loopback, unspecified, multicast or
link-local).  `Protected` holds what always wins: the whitelist file and the
host's own addresses.
"""
import ipaddress
import json
import re
from typing import Callable, Iterable, List, Optional, Tuple, Union

from lib.errors import WatcherError, located

Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


def parse_peer(text: Optional[str]) -> Optional[Address]:
    """The address a rule extracted, or None when it must never be counted."""
    if not text or len(text) > 45:
        return None
    if text[0] == "[" and text[-1] == "]":
        text = text[1:-1]
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if addr.version == 6 and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    if (addr.is_loopback or addr.is_unspecified or addr.is_multicast
            or addr.is_link_local or addr.is_reserved and addr.version == 4):
        return None
    return addr


_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_DOTTED_QUAD = re.compile(r"%s(?:\.%s){3}\Z" % (_OCTET, _OCTET)).match    # no leading zero, no sign


def peer_text(text: Optional[str]) -> Optional[str]:
    """str(parse_peer(text)), or None: a dotted quad as ipaddress writes it is read without ipaddress."""
    if text and _DOTTED_QUAD(text):
        first, second, _ = text.split(".", 2)
        a = int(first)
        # loopback 127/8, link-local 169.254/16, multicast 224/4, reserved 240/4, unspecified
        if a == 127 or a >= 224 or (a == 169 and second == "254") or text == "0.0.0.0":
            return None
        return text
    addr = parse_peer(text)
    return None if addr is None else str(addr)


def set_suffix(addr) -> str:
    """ipset twin for an address or network: '' for IPv4, '6' for IPv6."""
    return "6" if addr.version == 6 else ""


def read_list(path: str, check: Optional[Callable[[Network], None]] = None) -> Tuple[List[Network], List[str]]:
    """Addresses/networks of a whitelist or blacklist file.

    Returns (networks, problems); each problem reads 'FILE:LINE: ...'.
    A missing file is an empty list.  `check(net)` may refuse a network with
    ValueError (its message becomes the problem).
    """
    nets, problems = [], []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return nets, problems
    except OSError as e:
        raise WatcherError(located(path, None, f"cannot read: {e.strerror}")) from None
    for n, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].split(";", 1)[0].strip()
        if not text:
            continue
        try:
            if "%" in text:             # a scoped address: ipset would refuse the whole load
                raise ValueError
            net = ipaddress.ip_network(text.split()[0], strict=False)
        except ValueError:
            problems.append(located(path, n, f"not an address or network: {text[:50]!r}"))
            continue
        if net.version == 6 and net.prefixlen >= 96 and net.network_address.ipv4_mapped:
            net = ipaddress.ip_network(f"{net.network_address.ipv4_mapped}/{net.prefixlen - 96}")
        if check is not None:
            try:
                check(net)
            except ValueError as e:
                problems.append(located(path, n, str(e)))
                continue
        nets.append(net)
    return nets, problems


def host_addresses(run=None) -> List[Address]:
    """The host's own addresses (all interfaces, all namespaces' view of them)."""
    import subprocess               # here: `watcher.py test` never needs it
    found = []
    try:
        out = (run or subprocess.run)(["ip", "-j", "addr", "show"], capture_output=True, text=True, timeout=5)
        for link in json.loads(out.stdout or "[]"):
            for info in link.get("addr_info", []):
                try:
                    found.append(ipaddress.ip_address(info["local"]))
                except (KeyError, ValueError):
                    pass
    except (OSError, ValueError, subprocess.SubprocessError):
        pass
    return found


class Protected:
    """Networks that always win: never counted, never banned."""

    def __init__(self, networks: Iterable[Network] = (), own: Iterable[Address] = ()):
        self.networks = list(networks)
        self.own = set(own)

    @classmethod
    def load(cls, whitelist_path: str, own: Optional[Iterable[Address]] = None) -> "Protected":
        nets, _ = read_list(whitelist_path)
        return cls(nets, host_addresses() if own is None else own)

    def why(self, addr: Address) -> Optional[str]:
        """Why `addr` must never be banned, or None."""
        if addr in self.own:
            return "one of this host's own addresses"
        for net in self.networks:
            if addr.version == net.version and addr in net:
                return f"whitelisted ({net})"
        return None
