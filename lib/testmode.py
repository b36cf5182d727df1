"""`watcher.py test MODULE [FILE|-] [--json]`: the filter over a log, nothing touched.

Like fail2ban-regex: the module's assembled filter and the address checks
(an invalid or loopback address never injects), no database, no firewall,
no whitelist.  --json prints exactly one object per input line, in order;
a line MX forwards is run through MB's filter and reported with "via".
"""
import json
import sys
from typing import Dict, IO, Iterable, Optional

from lib.addresses import parse_peer
from lib.errors import WatcherError
from lib.rules import Filter


def verdict_of(flt: Filter, line: str, companions: Dict[str, Filter], depth: int = 0) -> dict:
    v = flt.filter(line)
    if v is None:
        return {"rule": None, "ip": None, "action": "untreated"}
    if v.action == "forward" and v.to in companions and depth == 0:
        out = verdict_of(companions[v.to], line, companions, depth + 1)
        out["via"] = v.to
        return out
    if v.action == "forward":
        return {"rule": v.rule, "ip": None, "action": "forward"}
    if v.action == "inject":
        addr = parse_peer(v.ip)
        if addr is None:           # matched, but no valid peer: never injects
            return {"rule": v.rule, "ip": None, "action": "ignore"}
        return {"rule": v.rule, "ip": str(addr), "action": "inject"}
    # success (a login that clears affairs) and superflous lines count nothing
    return {"rule": v.rule, "ip": None, "action": "ignore"}


def _lines(stream) -> Iterable[str]:
    for raw in stream:
        yield raw.rstrip(b"\r\n").replace(b"\0", b"").decode("utf-8", "replace")


def run(flt: Filter, companions: Dict[str, Filter], stream, out: IO[str], as_json: bool) -> int:
    total = untreated = ignored = injected = forwarded = 0
    per_rule: Dict[str, int] = {}
    addresses: Dict[str, int] = {}
    write = out.write
    for n, line in enumerate(_lines(stream), 1):
        r = verdict_of(flt, line, companions)
        total += 1
        if as_json:
            obj = {"line": n}
            obj.update(r)
            write(json.dumps(obj) + "\n")
            continue
        action = r["action"]
        if r["rule"]:
            per_rule[r["rule"]] = per_rule.get(r["rule"], 0) + 1
        if action == "untreated":
            untreated += 1
        elif action == "inject":
            injected += 1
            addresses[r["ip"]] = addresses.get(r["ip"], 0) + 1
        elif action == "forward":
            forwarded += 1
        else:
            ignored += 1
    if not as_json:
        write(f"Lines: {total}, inject: {injected}, ignore: {ignored}, forward: {forwarded}, "
              f"untreated: {untreated}\n")
        if per_rule:
            write("Matches per rule:\n")
            for rule, n in sorted(per_rule.items(), key=lambda kv: (-kv[1], kv[0])):
                write(f"  {n:8d}  {rule}\n")
        write(f"Addresses injected: {len(addresses)}\n")
        for ip, n in sorted(addresses.items(), key=lambda kv: (-kv[1], kv[0]))[:20]:
            write(f"  {n:8d}  {ip}\n")
        if len(addresses) > 20:
            write(f"  ... and {len(addresses) - 20} more (--json lists every line)\n")
    return 0


def open_input(path: Optional[str]):
    if path in (None, "-"):
        return sys.stdin.buffer
    try:
        return open(path, "rb")
    except OSError as e:
        raise WatcherError(f"{path}: cannot read: {e.strerror}") from None
