"""`watcher.py test MODULE [FILE|-] [--json]`: the filter over a log, nothing touched.

Like fail2ban-regex: the module's assembled filter and the address checks
(an invalid or loopback address never injects), no database, no firewall,
no whitelist.  --json prints exactly one object per input line, in order;
a line MX forwards is run through MB's filter and reported with "via".
"""
import heapq
import json
import os
import stat
import sys
from typing import Callable, Dict, IO, Iterable, List, Optional, Tuple, Union

from lib import ladder, scan
from lib.addresses import peer_text
from lib.fastlane import FastLane
from lib.errors import WatcherError
from lib.rules import Filter
from lib.sender import PREFIX, split


PARALLEL_BYTES = 16 << 20     # a file this large is counted by several processes at once
MAX_JOBS = 8
_PEERS: Dict[Optional[str], Optional[str]] = {}


def _peer(text: Optional[str]) -> Optional[str]:
    """peer_text(text), remembered: a log names the same attackers again and again."""
    try:
        return _PEERS[text]
    except KeyError:
        pass
    if len(_PEERS) >= 100000:
        _PEERS.clear()
    _PEERS[text] = out = peer_text(text)
    return out


UNTREATED = (None, None, "untreated", None)
IGNORED = (None, None, "ignore", None)          # a superflous line: ignore_key(None)


def _verdict(flt: Filter, line: str, companions: Dict[str, Filter], depth: int = 0) -> Tuple:
    """(rule, ip, action, via) of one line."""
    return _judged(flt.filter(line), line, companions, depth)


def ignore_key(rule: Optional[str]) -> Tuple:
    """The verdict key of a line a rule ignores: success (a login that clears affairs) and
    superflous lines count nothing either."""
    return rule, None, "ignore", None


def inject_key(rule: str, text: Optional[str]) -> Tuple:
    """The verdict key of a line whose rule injects the address `text`: matched, but without a
    valid peer it never injects."""
    ip = _peer(text)
    return (rule, ip, "inject", None) if ip is not None else ignore_key(rule)


def _judged(v, line: str, companions: Dict[str, Filter], depth: int) -> Tuple:
    """(rule, ip, action, via) of the filter's verdict `v` on `line`."""
    if v is None:
        return UNTREATED
    if v.action == "forward" and v.to in companions and depth == 0:
        return _verdict(companions[v.to], line, companions, depth + 1)[:3] + (v.to,)
    if v.action == "forward":
        return v.rule, None, "forward", None
    if v.action == "inject":
        return inject_key(v.rule, v.ip)
    return ignore_key(v.rule)


def decider(flt: Filter, companions: Dict[str, Filter]) -> Callable[[str], Tuple]:
    """_verdict(flt, line, companions) as one function of the line."""
    filt = flt.filter
    return lambda line: _judged(filt(line), line, companions, 0)


def verdict_of(flt: Filter, line: str, companions: Dict[str, Filter], depth: int = 0) -> dict:
    rule, ip, action, via = _verdict(flt, line, companions, depth)
    out = {"rule": rule, "ip": ip, "action": action}
    if via:
        out["via"] = via
    return out


def _lines(stream) -> Iterable[str]:
    """Lines as the module sees them: bytes repaired, Watcher's sender prefix taken off."""
    for raw in stream:
        yield split(raw.rstrip(b"\r\n").replace(b"\0", b"").decode("utf-8", "replace"))[1]


def run(flt: Filter, companions: Dict[str, Filter], stream, out: IO[str], as_json: bool) -> int:
    total = untreated = ignored = injected = forwarded = 0
    per_rule: Dict[str, int] = {}
    addresses: Dict[str, int] = {}
    write = out.write
    if as_json:
        for n, line in enumerate(_lines(stream), 1):
            obj = {"line": n}
            obj.update(verdict_of(flt, line, companions))
            write(json.dumps(obj) + "\n")
        return 0
    # the summary needs no line order: lib.scan runs the ladder only on lines a rule can decide
    for key, k in _counts(flt, companions, stream).items():
        if isinstance(key, str):
            addresses[key] = k
            continue
        rule, action = key
        total += k
        if rule:
            per_rule[rule] = per_rule.get(rule, 0) + k
        if action == "untreated":
            untreated += k
        elif action == "inject":
            injected += k
        elif action == "forward":
            forwarded += k
        else:
            ignored += k
    if not as_json:
        write(f"Lines: {total}, inject: {injected}, ignore: {ignored}, forward: {forwarded}, "
              f"untreated: {untreated}\n")
        if per_rule:
            write("Matches per rule:\n")
            for rule, n in sorted(per_rule.items(), key=lambda kv: (-kv[1], kv[0])):
                write(f"  {n:8d}  {rule}\n")
        write(f"Addresses injected: {len(addresses)}\n")
        for ip, n in heapq.nsmallest(20, addresses.items(), key=lambda kv: (-kv[1], kv[0])):
            write(f"  {n:8d}  {ip}\n")
        if len(addresses) > 20:
            write(f"  ... and {len(addresses) - 20} more (--json lists every line)\n")
    return 0


def summary(counts: Dict[Tuple, int]) -> Dict[Union[Tuple, str], int]:
    """Of the lines per verdict, what the summary prints: the lines per (rule, action), and
    per address (its text as the key) the lines that inject it.  The processes that count a
    large file's parts send each other these (half a file's (rule, address) pairs were 1 MB
    of pickle, 60 ms to read and add up)."""
    out: Dict[Union[Tuple, str], int] = {}
    for (rule, ip, action, _), n in counts.items():
        key = (rule, action)
        out[key] = out.get(key, 0) + n
        if action == "inject":
            out[ip] = out.get(ip, 0) + n
    return out


def counter(flt: Filter, companions: Dict[str, Filter], fast: bool = True) -> scan.Counter:
    """The bulk counter of the lines' verdicts (fast=False: without the fast lane, every line
    found goes down the ladder)."""
    decide = decider(flt, companions)
    return scan.Counter(ladder.guards(flt.function), flt.superflous, decide, IGNORED, UNTREATED,
                        exact_prefix=PREFIX, strip=lambda line: split(line)[1],
                        decide_many=fast_counter(flt, decide) if fast else None)


def _counts(flt: Filter, companions: Dict[str, Filter], stream) -> Dict[Union[Tuple, str], int]:
    """summary() of how many lines got each verdict.  A large regular file is split among
    the CPUs this process may use; standard input is read by this process alone."""
    count = counter(flt, companions)
    try:
        regular = stat.S_ISREG(os.fstat(stream.fileno()).st_mode) and stream.tell() == 0
        size = os.fstat(stream.fileno()).st_size
    except (AttributeError, OSError, ValueError):
        regular, size = False, 0
    if regular and size >= PARALLEL_BYTES:
        jobs = min(len(os.sched_getaffinity(0)), MAX_JOBS)
        return scan.count_file(count, stream.fileno(), jobs, reduce=summary)
    return summary(scan.count_stream(count, stream))


def fast_counter(flt: Filter, decide: Callable[[str], Tuple]) -> Optional[Callable[[List[str]], Dict[Tuple, int]]]:
    """The counts of many lines' verdicts through lib.fastlane; None when the ladder has no lane."""
    lane = FastLane(flt)
    if not lane.usable:
        return None
    return lane.counter(decide, scan.contains_regex(flt.superflous).search, ignore_key, inject_key,
                        (IGNORED, UNTREATED))


def open_input(path: Optional[str]):
    if path in (None, "-"):
        return sys.stdin.buffer
    try:
        return open(path, "rb")
    except OSError as e:
        raise WatcherError(f"{path}: cannot read: {e.strerror}") from None
