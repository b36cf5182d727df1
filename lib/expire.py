"""Expiry: forget addresses not seen for a number of days, in the database and the kernel.

Model (manual 1.3.1): `ExpireXX [days]` deletes from the module database
every address whose last affair is older than `days` (default
EXPIRATIONDAYS; 0 removes everything seen before now), with the events
older than the same cutoff, then takes those addresses out of tarpit and
custody (and their IPv6 twins) at once: no restart.  MX's database holds
MB's rows too, so ExpireMX expires both.

The database goes first, in one transaction: an affair a running module
counts meanwhile either keeps its row (its last_seen is fresh) or comes
after the delete and puts the address back by itself.  The kernel's sets are
shared by all modules, the databases are not: an address that another
module's database still keeps in custody or in a live tarpit stays in the
kernel.  If the kernel refuses, the database has already forgotten the
addresses and `watcher.py restart` makes the kernel match it again.
"""
import re
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Optional

from lib.db import Database
from lib.dnsclass import FAKEHOST, NXDOMAIN, TRUEHOST, UNKNOWN
from lib.errors import UsageError, WatcherError

CLASSES = (NXDOMAIN, FAKEHOST, TRUEHOST, UNKNOWN)      # the order of every count per class
DAY = 86400
MAX_DAYS = 10 ** 7          # keeps the cutoff a float; more days than that expire nothing anyway


@dataclass(frozen=True)
class Expired:
    days: int
    cutoff: float
    per_class: Dict[str, int]
    released: List[str] = field(default_factory=list)   # taken out of the kernel's sets
    kept: Dict[str, str] = field(default_factory=dict)   # address -> module database that still holds it
    was_custody: int = 0
    was_tarpit: int = 0

    @property
    def total(self) -> int:
        return sum(self.per_class.values())

    def summary(self, name: str) -> str:
        classes = ", ".join(f"{c} {self.per_class.get(c, 0)}" for c in self.per_class)
        text = (f"removed {self.total} address{'es' if self.total != 1 else ''} not seen for {self.days} "
                f"day{'s' if self.days != 1 else ''} from {name}'s database ({classes}); "
                f"{self.was_custody} were in custody, {self.was_tarpit} in tarpit; "
                f"{len(self.released)} taken out of the kernel's sets")
        if self.kept:
            holders = sorted(set(self.kept.values()))
            text += f", {len(self.kept)} kept there (still held by {', '.join(holders)})"
        return text


def parse_days(argv: List[str], default: int, prog: str = "ExpireXX") -> int:
    """The command line of ExpireXX: nothing, or one whole number of days (0 or more)."""
    if len(argv) > 1:
        raise UsageError(f"too many arguments {' '.join(argv)!r} (usage: {prog} [days])")
    if not argv:
        return default
    if not re.fullmatch(r"[0-9]+", argv[0]):
        raise UsageError(f"days must be a whole number of 0 or more, not {argv[0]!r} (usage: {prog} [days])")
    return int(argv[0])


def expire(db: Database, fw, days: int, now: float, others: Optional[Mapping[str, Database]] = None) -> Expired:
    """Expire `db` (the module's own database); `others`: name -> another module's database."""
    cutoff = now - min(days, MAX_DAYS) * DAY
    gone = db.expire(cutoff)
    per_class = {c: 0 for c in CLASSES}
    for h in gone:
        per_class[h.cls] = per_class.get(h.cls, 0) + 1
    ips = [h.ip for h in gone]
    kept: Dict[str, str] = {}
    for name, other in (others or {}).items():
        for ip in other.held(ips, now):
            kept.setdefault(ip, name)
    released = [ip for ip in ips if ip not in kept]
    result = Expired(days, cutoff, per_class, released, kept,
                     was_custody=sum(1 for h in gone if h.dropped is not None),
                     was_tarpit=sum(1 for h in gone if h.dropped is None and (h.tarpit_until or 0) > now))
    try:
        fw.release_all(released)
    except WatcherError as e:
        raise WatcherError(f"{result.summary('the module')}; but the kernel refused: {e} "
                           f"(watcher.py restart makes the kernel match the databases)") from None
    return result


def main(token: str, argv: List[str], environ=None, now: Optional[float] = None,
         say: Callable[[str], None] = print) -> int:
    """ExpireXX: the body of modules/WatchXX/ExpireXX.py."""
    import os
    import time
    from lib import config, control, firewall as fwmod
    from lib.log import LogFile

    environ = os.environ if environ is None else environ
    if argv and argv[0] in ("-h", "--help"):
        say(f"usage: Expire{token} [days]\n\nRemoves every address not seen for `days` (default "
            f"EXPIRATIONDAYS; 0: everything seen before now) from Watch{token}'s database and at once "
            f"from tarpit and custody in the kernel.")
        return 0
    settings = config.load(token, environ)
    days = parse_days(argv, settings.EXPIRATIONDAYS, f"Expire{token}")
    control.need_root(settings)
    now = time.time() if now is None else now
    log = LogFile(settings.log_file, f"Expire{token}", now=lambda: now)
    own = Database(settings.database)
    others: Dict[str, Database] = {}
    try:
        for path, other in control.databases(control.module_settings(environ)).items():
            if path != settings.database and os.path.exists(path):
                others["Watch" + other] = Database(path)
        fw = fwmod.backend(settings, say=log.write)
        result = expire(own, fw, days, now, others)
    except WatcherError as e:
        log.write(f"expiry failed: {e}")
        raise
    finally:
        own.close()
        for d in others.values():
            d.close()
    text = result.summary(f"Watch{token}")
    log.write(text)
    say(f"Expire{token}: {text}")
    return 0


def module_main(token: str) -> None:
    """Entry point of modules/WatchXX/ExpireXX.py."""
    from lib.errors import cli_main
    cli_main(lambda argv: main(token, argv), f"Expire{token}")
