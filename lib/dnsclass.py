"""DNS classification of an address (the seeds' IP classes).

NXDOMAIN: no PTR name.  FAKEHOST: a PTR name whose A/AAAA records do not
contain the address.  TRUEHOST: a PTR name that maps back.  UNKNOWN: the
lookup failed (timeout, SERVFAIL, REFUSED, no server); that proves nothing,
so the address counts from 1 like a TRUEHOST.

`Classifier.classify` asks synchronously; `Background` runs it on worker
threads so DNS never stalls the reading of a FIFO: answers queue up and a
file descriptor becomes readable for the watch loop's selector.
"""
import ipaddress
import os
import queue
import threading
from typing import List, NamedTuple, Optional, Tuple

from lib.errors import WatcherError

NXDOMAIN, FAKEHOST, TRUEHOST, UNKNOWN = "NXDOMAIN", "FAKEHOST", "TRUEHOST", "UNKNOWN"
SUSPECT = (NXDOMAIN, FAKEHOST)
DNSPYTHON_HINT = ("dnspython is missing: apt-get install python3-dnspython (RHEL: dnf install python3-dns; "
                  "elsewhere pip install dnspython), or set DNS_CLASSIFY=off")


class Classification(NamedTuple):
    cls: str
    name: Optional[str] = None


def make_resolver(server: Optional[Tuple[str, int]], timeout: float):
    """A dnspython resolver: the system's, or only `server` (ip, port)."""
    try:
        import dns.resolver
    except ImportError:
        raise WatcherError(DNSPYTHON_HINT) from None
    if server:
        r = dns.resolver.Resolver(configure=False)
        r.nameservers, r.port = [server[0]], server[1]
    else:
        try:
            r = dns.resolver.Resolver()
        except dns.resolver.NoResolverConfiguration:
            r = dns.resolver.Resolver(configure=False)
            r.nameservers = []
    r.timeout = r.lifetime = float(timeout)
    r.cache = None
    return r


class Classifier:
    """Synchronous classification through a dnspython-compatible resolver."""

    def __init__(self, resolver=None, enabled: bool = True):
        self.resolver, self.enabled = resolver, enabled

    def classify(self, ip: str) -> Classification:
        if not self.enabled or self.resolver is None:
            return Classification(UNKNOWN)
        import dns.exception
        import dns.resolver
        import dns.reversename
        addr = ipaddress.ip_address(ip)
        try:
            answer = self.resolver.resolve(dns.reversename.from_address(ip), "PTR")
            names = [str(r.target).rstrip(".") for r in answer]
        except dns.resolver.NXDOMAIN:
            return Classification(NXDOMAIN)
        except dns.resolver.NoAnswer:
            return Classification(NXDOMAIN)        # the reverse zone exists, this address has no name
        except (dns.exception.DNSException, OSError, ValueError):
            return Classification(UNKNOWN)
        failed = False
        for name in names:
            try:
                ans = self.resolver.resolve(name, "AAAA" if addr.version == 6 else "A")
            except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
                continue
            except (dns.exception.DNSException, OSError, ValueError):
                failed = True
                continue
            if addr in {ipaddress.ip_address(a.address) for a in ans}:
                return Classification(TRUEHOST, name)
        # a forward lookup that failed proves nothing either
        return Classification(UNKNOWN, names[0] if names else None) if failed else Classification(FAKEHOST, names[0])


class Background:
    """Classify on worker threads; the owner polls `fileno()` and calls `answers()`."""

    def __init__(self, classify, workers: int = 4):
        self._classify = classify
        self._jobs: "queue.Queue[Optional[str]]" = queue.Queue()
        self._done: "queue.Queue[Tuple[str, Classification]]" = queue.Queue()
        self._rfd, self._wfd = os.pipe()
        os.set_blocking(self._rfd, False)
        self._pending = set()
        self._threads = [threading.Thread(target=self._work, daemon=True) for _ in range(workers)]
        for t in self._threads:
            t.start()

    def fileno(self) -> int:
        return self._rfd

    def submit(self, ip: str) -> None:
        if ip not in self._pending:
            self._pending.add(ip)
            self._jobs.put(ip)

    def _work(self) -> None:
        while True:
            ip = self._jobs.get()
            if ip is None:
                return
            try:
                result = self._classify(ip)
            except Exception:      # a resolver bug must not kill the worker: the address stays UNKNOWN
                result = Classification(UNKNOWN)
            self._done.put((ip, result))
            try:
                os.write(self._wfd, b"x")
            except BlockingIOError:
                pass

    def answers(self) -> List[Tuple[str, Classification]]:
        try:
            while os.read(self._rfd, 4096):
                pass
        except BlockingIOError:
            pass
        out = []
        while True:
            try:
                ip, result = self._done.get_nowait()
            except queue.Empty:
                break
            self._pending.discard(ip)
            out.append((ip, result))
        return out

    def pending(self) -> int:
        return len(self._pending)

    def close(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)
