"""The watch loop every module runs: FIFO -> filter -> affairs -> firewall.

One thread reads the FIFO and decides; DNS answers come back from worker
threads through a pipe on the same selector, so a slow resolver never
stalls reading.  A line goes down the assembled filter; an inject with a
valid address becomes an affair (lib.affairs); a forward goes to the
companion's FIFO; an untreated line goes to the trace file when TRACE=on.
Counters (lines, matches per rule, untreated) are written to
$RUN_DIR/WatchXX.stats once a second for `watcher.py status`.
SIGTERM/SIGINT stop the loop cleanly; SIGHUP re-reads the whitelist.
"""
import json
import os
import selectors
import signal
import time
from typing import Callable, Dict, Optional

from lib import firewall as fwmod
from lib.addresses import Protected, parse_peer
from lib.affairs import Tracker
from lib.db import Database
from lib.dnsclass import Background, Classifier, make_resolver
from lib.errors import WatcherError
from lib.fifo import FifoReader, ensure_fifo
from lib.log import LogFile, NullLog
from lib import sender
from lib.rules import Filter, rules_dir
from lib.sender import SenderCheck


BATCH_LINES = 500       # one database transaction and one firewall flush cover at most this many lines
BATCH_SECONDS = 0.05    # or this much work, whichever comes first


class HeldLog:
    """Decision lines held back until their batch is in the database and the kernel:
    the log never tells of a ban that a crash undid."""

    def __init__(self, log):
        self.log, self.lines = log, []

    def write(self, text: str) -> None:
        self.lines.append(text)

    def flush(self) -> None:
        lines, self.lines = self.lines, []
        for text in lines:
            self.log.write(text)


class Counters:
    def __init__(self, now: float):
        self.started, self.lines, self.untreated, self.ignored = now, 0, 0, 0
        self.forwarded, self.invalid, self.rules = 0, 0, {}
        self.refused = 0          # lines whose kernel-vouched sender is not the daemon's
        self.last_line = None     # epoch of the last line read: `watcher.py report` judges a silent FIFO by it

    def as_dict(self) -> dict:
        return {"pid": os.getpid(), "started": self.started, "lines": self.lines,
                "untreated": self.untreated, "ignored": self.ignored, "forwarded": self.forwarded,
                "invalid": self.invalid, "refused": self.refused, "rules": self.rules, "last_line": self.last_line}

    def save(self, path: str) -> None:
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.as_dict(), f)
        os.replace(tmp, path)


class Forwarder:
    """Hand a line to a companion module's FIFO (MX -> MB); opened read-write so a
    companion that is down does not lose it: the line waits in the pipe."""

    def __init__(self, settings):
        self.settings = settings
        self._fds: Dict[str, int] = {}

    def __call__(self, to: str, line: str) -> None:
        fd = self._fds.get(to)
        if fd is None:
            path = self.settings.fifo(to)
            ensure_fifo(path)
            fd = self._fds[to] = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        data = memoryview((line + "\n").encode("utf-8", "replace"))
        while data:
            try:
                data = data[os.write(fd, data):]       # a long line may go in several writes
            except BlockingIOError:        # companion's pipe full: wait for it to drain
                time.sleep(0.001)


class Module:
    """One running module: decides on lines, keeps its counters."""

    def __init__(self, settings, fw, log, trace, tracker: Tracker, flt: Filter,
                 forward: Optional[Callable[[str, str], None]] = None, now=time.time):
        self.settings, self.fw, self.log, self.trace = settings, fw, log, trace
        self.tracker, self.filter, self.forward, self.now = tracker, flt, forward, now
        self.counters = Counters(now())
        self._oddities = set()
        self.senders = SenderCheck(settings.SENDER_CHECK, settings.SENDER_USERS, settings.SENDER_PROGRAMS)

    def oddity(self, kind: str) -> None:
        """Log an odd input once per kind, not once per line."""
        if kind not in self._oddities:
            self._oddities.add(kind)
            self.log.write(f"[INPUT] {kind} (reported once)")

    def handle(self, line: str):
        c = self.counters
        c.lines += 1
        c.last_line = self.now()
        raw = line                  # forwarded as it came, credentials and all
        creds, line = sender.split(line)
        refused = self.senders.refuse(creds)
        if refused:                 # a forged line: somebody else wrote what the daemon would
            c.refused += 1
            self.oddity(f"line refused: {refused}")
            self.trace.write(f"[REFUSED] {refused}: '{line[:300]}'")
            return None
        try:
            v = self.filter.filter(line)
        except Exception as e:      # a rule's bug must not stop the module
            tb = e.__traceback__
            while tb.tb_next:
                tb = tb.tb_next
            self.oddity(f"rule error at {self.filter.where(tb.tb_lineno)}: {type(e).__name__}: {e}")
            v = None
        if v is None:
            c.untreated += 1
            self.trace.write(f"[UNTREATED] '{line}'")
            return None
        if v.rule:
            c.rules[v.rule] = c.rules.get(v.rule, 0) + 1
        if v.action == "ignore":
            c.ignored += 1
            return None
        if v.action == "forward":
            c.forwarded += 1
            if self.forward:
                self.forward(v.to, raw)
            return None
        addr = parse_peer(v.ip)
        if addr is None:
            c.invalid += 1
            self.trace.write(f"[{v.rule}] no valid peer address ({v.ip!r}) in '{line[:300]}'")
            return None
        if v.action == "success":
            return self.tracker.success(addr, v.rule, self.now())
        try:
            return self.tracker.inject(addr, v.rule, v.port, self.now(), vhost=v.vhost)
        except WatcherError as e:   # firewall refused: the database has it, start restores it
            self.log.write(f"[{v.rule}] {addr}: firewall error: {e}")
            return None


def _write_pid(path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        with open(path) as f:
            pid = int(f.read().strip())
        if pid != os.getpid() and _alive(pid, os.path.basename(path)[:-4]):
            raise WatcherError(f"{path}: already running as pid {pid} (watcher.py stop first)")
    except (OSError, ValueError):
        pass
    with open(path + ".tmp", "w") as f:
        f.write(f"{os.getpid()}\n")
    os.replace(path + ".tmp", path)


def _alive(pid: int, name: str) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return name.encode() in f.read()
    except OSError:
        return False


def reassert(db, fw, now: float) -> int:
    """Put this module's custody and tarpit (back) into the kernel.  A module killed
    between committing an affair and telling the kernel left that ban in the
    database only; the restarted module makes the kernel agree with it."""
    n = 0
    for ip in db.custody():
        fw.custody(ip, ":" in ip)
        n += 1
    for ip, left in db.tarpit(now):
        fw.tarpit(ip, left, ":" in ip)
        n += 1
    fw.flush()
    return n


def run(settings, stop_after: Optional[float] = None) -> int:
    """Run the module of `settings` until SIGTERM; the body of WatchXX.py."""
    name = settings.name
    log = LogFile(settings.log_file, name)
    trace = LogFile(settings.trace_file, name) if settings.TRACE else NullLog()
    if settings.FIREWALL != "dry-run" and os.geteuid() != 0:
        raise WatcherError("needs root to change the firewall (or set FIREWALL=dry-run)")
    flt = Filter(rules_dir(settings), settings.module)
    db = Database(settings.database)
    fw = fwmod.backend(settings, say=log.write, feeds=False)    # bans only: no feed sets, nor lib.lists' 7 MB
    protected = Protected.load(settings.WHITELIST)
    background = None
    if settings.DNS_CLASSIFY:
        resolver = make_resolver(settings.DNS_SERVER, settings.DNS_TIMEOUT)
        background = Background(Classifier(resolver).classify)
    fw.keep_process()           # one long-lived `ipset -` for this module's bans
    db.checkpoint_aside()       # the disk syncs of WAL checkpoints off the reading thread
    held = HeldLog(log)
    tracker = Tracker(settings.module, db, fw, protected, settings.MAX_AFFAIRS, settings.TARPIT_TIMEOUT,
                      held, classify=background.submit if background else None)
    ensure_fifo(settings.fifo())
    module = Module(settings, fw, log, trace, tracker, flt, Forwarder(settings))
    reader = FifoReader(settings.fifo(), on_oddity=module.oddity)
    _write_pid(settings.pid_file)
    if settings.FIREWALL != "dry-run":
        reassert(db, fw, time.time())
    log.write(f"started: {len(flt.files)} rule files, FIFO {settings.fifo()} (pipe {reader.pipe_size} bytes), "
              f"firewall {settings.FIREWALL}, DNS {'on' if background else 'off'}")
    sel = selectors.DefaultSelector()
    sel.register(reader, selectors.EVENT_READ, "fifo")
    if background:
        sel.register(background, selectors.EVENT_READ, "dns")
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    sel.register(wake_r, selectors.EVENT_READ, "signal")
    signal.set_wakeup_fd(wake_w)
    flags = {"stop": False, "hup": False}
    signal.signal(signal.SIGTERM, lambda *_: flags.__setitem__("stop", True))
    signal.signal(signal.SIGINT, lambda *_: flags.__setitem__("stop", True))
    signal.signal(signal.SIGHUP, lambda *_: flags.__setitem__("hup", True))
    deadline = time.monotonic() + stop_after if stop_after else None
    next_save = 0.0

    def settle() -> None:
        """After a commit: tell the kernel what the batch decided, then log it."""
        try:
            fw.flush()
        except WatcherError as e:       # the database has it: `watcher.py start` restores it
            log.write(f"firewall error: {e}")
        held.flush()

    def handle(lines) -> None:
        """Lines in batches: each one database transaction (BATCH_LINES, BATCH_SECONDS),
        committed before the kernel is told."""
        i = 0
        while i < len(lines):
            end, until = min(len(lines), i + BATCH_LINES), time.monotonic() + BATCH_SECONDS
            with db.transaction():
                while i < end:
                    module.handle(lines[i])
                    i += 1
                    if time.monotonic() > until:
                        break
            settle()

    try:
        while not flags["stop"]:
            for key, _ in sel.select(timeout=1.0):
                if key.data == "fifo":
                    handle(reader.peek())
                    reader.commit()             # out of the pipe only once in the database
                    if reader.partial:          # half a line in the pipe: let the writer finish it
                        time.sleep(0.005)
                elif key.data == "dns":
                    with db.transaction():
                        for ip, result in background.answers():
                            try:
                                tracker.classified(ip, result)
                            except WatcherError as e:
                                log.write(f"[DNS] {ip}: firewall error: {e}")
                    settle()
                else:
                    try:
                        os.read(wake_r, 512)
                    except BlockingIOError:
                        pass
            if flags["hup"]:
                flags["hup"] = False
                tracker.protected = Protected.load(settings.WHITELIST)
                log.write("SIGHUP: whitelist re-read")
            if time.monotonic() >= next_save:
                module.counters.save(settings.stats_file)
                next_save = time.monotonic() + 1.0
            if deadline and time.monotonic() > deadline:
                break
    finally:
        module.counters.save(settings.stats_file)
        log.write(f"stopped after {module.counters.lines} lines")
        for path in (settings.pid_file,):
            try:
                os.unlink(path)
            except OSError:
                pass
        if background:
            background.close()
        fw.close()
        db.close()
    return 0


def module_main(token: str) -> None:
    """Entry point of modules/WatchXX/WatchXX.py."""
    from lib import config
    from lib.errors import cli_main

    def main(argv) -> int:
        if argv and argv[0] in ("-h", "--help"):
            print(f"usage: Watch{token}.py\n\nRuns the Watch{token} module in the foreground (watcher.py start "
                  f"runs it in the background). Settings: watcher.conf, Watch{token}.conf, $WATCHER_CONF.")
            return 0
        if argv:
            raise WatcherError(f"unexpected argument {argv[0]!r} (see --help)", 64)
        return run(config.load(token))

    cli_main(main, f"Watch{token}")
