"""The affair ladder: from a counted attempt to tarpit and custody.

For each affair of an address (already validated by `parse_peer`):
whitelisted addresses and the host's own are never counted; the affair is
committed to the database first, then the firewall is told, so the kernel
never holds a ban the database does not know.  Below MAX_AFFAIRS the
address sits in `tarpit` for affairs x TARPIT_TIMEOUT seconds; at
MAX_AFFAIRS the DROP is recorded and it goes into `custody`.

On first sight an address is classified by DNS in the background; until
the answer comes it counts from 1 (UNKNOWN).  An answer of NXDOMAIN or
FAKEHOST re-decides at once: affairs become MAX_AFFAIRS-1 plus those seen
since the first.  A successful login clears affairs and tarpit, never
custody.  Lines a daemon writes for one attempt (same address and source
port, or no port, within DEDUP_SECONDS, but another rule) count once.
"""
import time
from dataclasses import replace
from typing import Callable, Dict, NamedTuple, Optional, Tuple

from lib.db import Database, Host
from lib.dnsclass import SUSPECT, UNKNOWN, Classification

DEDUP_SECONDS = 10.0


class Decision(NamedTuple):
    ip: str
    cls: str
    affairs: int
    outcome: str        # TARPIT, DROP, PROTECTED, COMPANION, CLEARED
    seconds: int = 0    # tarpit timeout


class Tracker:
    def __init__(self, module: str, db: Database, firewall, protected, max_affairs: int,
                 tarpit_timeout: int, log, classify: Optional[Callable[[str], None]] = None,
                 known: Optional[Dict[str, Classification]] = None):
        self.module, self.db, self.fw, self.protected = module, db, firewall, protected
        self.max, self.timeout, self.log = max_affairs, tarpit_timeout, log
        self.classify = classify          # submit(ip): ask DNS in the background
        self.known: Dict[str, Classification] = known if known is not None else {}
        # address -> its recent attempts (start, rule bits, port), the latest last: one small
        # tuple per address, so a flood of 100,000 new addresses costs a few MB, not 50
        self._attempts: Dict[str, Tuple[Tuple[float, int, Optional[int]], ...]] = {}
        self._bits: Dict[str, int] = {}   # rule -> its bit in an attempt's rule bits
        self._asked = set()               # asked DNS once in this process; the answer lands in `known`

    # -- helpers --------------------------------------------------------
    def _companion(self, ip: str, port: Optional[int], rule: str, now: float) -> bool:
        """True when this line is another line of an attempt already counted.

        An attempt is a group of lines of one address, one source port (or
        none: sshd's PAM and 'not allowed' lines carry no port) within
        DEDUP_SECONDS, each rule at most once; a rule seen again starts the
        next attempt (a second password on the same connection).
        """
        bit = self._bits.get(rule)
        if bit is None:
            bit = self._bits[rule] = 1 << len(self._bits)
        atts = self._attempts.get(ip, ())
        if port is None:
            if atts:
                t, bits, p = atts[-1]
                if now - t <= DEDUP_SECONDS and not bits & bit:
                    self._attempts[ip] = atts[:-1] + ((t, bits | bit, p),)
                    return True
            self._start(ip, atts, (now, bit, None), now)
            return False
        for k, (t, bits, p) in enumerate(atts):
            if p == port:
                if now - t <= DEDUP_SECONDS and not bits & bit:
                    self._attempts[ip] = atts[:k] + ((t, bits | bit, p),) + atts[k + 1:]
                    return True
                break
        for t, bits, p in atts:
            if p is None:                   # a port-less line just before: taken out in any case
                atts = tuple(a for a in atts if a[2] is not None)
                if now - t <= DEDUP_SECONDS and not bits & bit:
                    self._start(ip, atts, (t, bits | bit, port), now)
                    return True
                break
        self._start(ip, atts, (now, bit, port), now)
        return False

    def _start(self, ip: str, atts: tuple, attempt: Tuple[float, int, Optional[int]], now: float) -> None:
        """`attempt` replaces the address's attempt of its port and becomes the latest."""
        if len(self._attempts) > 100000:    # stale attempts are as good as none: drop them
            kept = {}
            for addr, old in self._attempts.items():
                if any(now - a[0] <= DEDUP_SECONDS for a in old):     # the latest stays last
                    kept[addr] = tuple(a for a in old[:-1] if now - a[0] <= DEDUP_SECONDS) + old[-1:]
            self._attempts = kept
        self._attempts[ip] = tuple(a for a in atts if a[2] != attempt[2]) + (attempt,)

    def _apply(self, host: Host, now: float, rule: str, vhost: Optional[str] = None) -> Decision:
        """Tell the firewall what the (committed) host row says (and the log, with the
        virtual host the affair was on, for WatchWB)."""
        v6 = ":" in host.ip
        on = f" on {vhost}" if vhost else ""
        if host.dropped is not None:
            self.fw.custody(host.ip, v6)
            d = Decision(host.ip, host.cls, host.affairs, "DROP")
            self.log.write(f"[{rule}] {host.ip} {host.cls} affairs {host.affairs}/{self.max} -> DROP{on}")
        else:
            seconds = int(host.tarpit_until - now + 0.5)
            self.fw.tarpit(host.ip, seconds, v6)
            d = Decision(host.ip, host.cls, host.affairs, "TARPIT", seconds)
            self.log.write(f"[{rule}] {host.ip} {host.cls} affairs {host.affairs}/{self.max} -> TARPIT {seconds}s{on}")
        return d

    def _ladder(self, host: Host, affairs: int, now: float, **changes) -> Host:
        dropped = host.dropped
        if dropped is None and affairs >= self.max:
            dropped = now
        until = None if dropped is not None else now + affairs * self.timeout
        return replace(host, affairs=affairs, dropped=dropped, tarpit_until=until, **changes)

    # -- verbs ----------------------------------------------------------
    def inject(self, addr, rule: str, port: Optional[int] = None, now: Optional[float] = None,
               vhost: Optional[str] = None) -> Decision:
        now = time.time() if now is None else now
        ip = str(addr)
        why = self.protected.why(addr)
        if why:
            return Decision(ip, "", 0, "PROTECTED")
        if self._companion(ip, port, rule, now):
            return Decision(ip, "", 0, "COMPANION")
        ask = False
        with self.db.transaction():
            host = self.db.get(ip)
            if host is None:
                known = self.known.get(ip)
                cls, name = (known.cls, known.name) if known else (UNKNOWN, None)
                affairs = self.max - 1 if cls in SUSPECT else 1
                host = Host(ip, cls, name, rule, self.module, now, now, 0, None, None)
                ask = known is None and ip not in self._asked
            else:
                affairs = host.affairs + 1
                ask = host.cls == UNKNOWN and ip not in self.known and ip not in self._asked
            host = self._ladder(host, max(affairs, 1), now, rule=rule, module=self.module, last_seen=now)
            self.db.put(host)
            self.db.add_event(now, ip, rule, self.module, vhost)
        if ask and self.classify is not None:
            self._asked.add(ip)
            self.classify(ip)
        return self._apply(host, now, rule, vhost)

    def classified(self, ip: str, result: Classification, now: Optional[float] = None) -> Optional[Decision]:
        """A DNS answer came back: store the class and re-decide a suspect."""
        now = time.time() if now is None else now
        self.known[ip] = result
        with self.db.transaction():
            host = self.db.get(ip)
            if host is None or host.cls == result.cls and host.name == result.name:
                return None
            first = host.cls == UNKNOWN and result.cls in SUSPECT and host.dropped is None
            affairs = self.max - 1 + max(0, host.affairs - 1) if first else host.affairs
            if first:
                host = self._ladder(host, affairs, now, cls=result.cls, name=result.name)
            else:
                host = replace(host, cls=result.cls, name=result.name)
            self.db.put(host)
        if not first:
            self.log.write(f"[DNS] {ip} is {result.cls}" + (f" ({result.name})" if result.name else ""))
            return None
        return self._apply(host, now, f"DNS {result.cls}")

    def success(self, addr, rule: str, now: Optional[float] = None) -> Optional[Decision]:
        """A successful login: forget affairs and tarpit, keep custody."""
        now = time.time() if now is None else now
        ip = str(addr)
        with self.db.transaction():
            cleared = self.db.clear(ip, keep_custody=True)
        if not cleared:
            return None
        self.fw.release(ip, ":" in ip, tarpit_only=True)
        self.log.write(f"[{rule}] {ip} logged in: affairs and tarpit cleared")
        return Decision(ip, "", 0, "CLEARED")
