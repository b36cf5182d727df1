"""The command lines of the list loaders: dynloaders/spamhaus, dynloaders/feeds,
./Blacklist and ./Whitelist.  Thin: the work is lib.lists'.
"""
import argparse
import os
import sys
from typing import Optional, Sequence

from lib import config, firewall
from lib.errors import UsageError, WatcherError
from lib.fetch import DEFAULT_TIMEOUT
from lib.lists import Say, hup_modules, load_static, read_feeds, refresh, spamhaus_list


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(f"{message} (see {self.prog} --help)")


def _settings(environ):
    s = config.load(None, environ)
    if s.FIREWALL != "dry-run" and os.geteuid() != 0:
        raise WatcherError("needs root to change the firewall (run with sudo, or set FIREWALL=dry-run "
                           "to try it without touching the kernel)")
    return s


def _firewall(s, say: Say):
    fw = firewall.backend(s, say=say)
    firewall.ready(fw, say)     # a dynloader may run before `watcher.py start` (cron @reboot)
    return fw


def _loader_parser(prog: str, doc: str, names: bool = False) -> argparse.ArgumentParser:
    p = _Parser(prog=prog, description=doc)
    p.add_argument("--force", action="store_true", help="download even within the refresh interval")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                   help=f"for each whole download (default {DEFAULT_TIMEOUT:g})")
    if names:
        p.add_argument("names", nargs="*", metavar="NAME", help="only these feeds (default: all)")
    return p


def spamhaus_main(argv: Sequence[str], environ=os.environ, say: Say = print) -> int:
    p = _loader_parser("spamhaus", "Load the Spamhaus DROP list (SPAMHAUS_DROP_URL, SPAMHAUS_DROPV6_URL) "
                                   "into highjackers / highjackers6; at most one download per hour.")
    args = p.parse_args(argv)
    if args.timeout <= 0:
        raise UsageError("--timeout must be more than 0 seconds")
    s = _settings(environ)
    say(refresh(spamhaus_list(s), _firewall(s, say), s.DATA_DIR, force=args.force, timeout=args.timeout, say=say))
    return 0


def feeds_main(argv: Sequence[str], environ=os.environ, say: Say = print,
               err: Optional[Say] = None) -> int:
    err = err or (lambda m: print(f"feeds: {m}", file=sys.stderr))
    p = _loader_parser("feeds", "Load every list of the FEEDS file (NAME URL [FORMAT [INTERVAL]] a line) "
                                "into its set pair NAME / NAME6.", names=True)
    args = p.parse_args(argv)
    if args.timeout <= 0:
        raise UsageError("--timeout must be more than 0 seconds")
    s = _settings(environ)
    feeds = read_feeds(s.FEEDS)
    unknown = [n for n in args.names if n not in {f.name for f in feeds}]
    if unknown:
        raise UsageError(f"no feed {', '.join(unknown)} in {s.FEEDS}")
    feeds = [f for f in feeds if not args.names or f.name in args.names]
    fw = _firewall(s, say)      # the chain and sets as FEEDS says now: a feed taken out is gone
    if not feeds:
        say(f"no feeds in {s.FEEDS}: nothing to load (add one: NAME URL [FORMAT [INTERVAL]])")
        return 0
    failed = 0
    for lst in feeds:
        try:
            say(refresh(lst, fw, s.DATA_DIR, force=args.force, timeout=args.timeout, say=say))
        except WatcherError as e:
            err(str(e))
            failed += 1
    return 1 if failed else 0


def static_main(base: str, argv: Sequence[str], environ=os.environ, say: Say = print) -> int:
    prog = base.capitalize()
    if argv and argv[0] in ("-h", "--help"):
        say(f"usage: ./{prog}\n\nReload the {base.upper()} file (addresses and networks, IPv4 and IPv6, "
            f"'#' comments) into {base}/{base}6 by swap, without a restart."
            + (" Running modules re-read it (SIGHUP)." if base == "whitelist" else ""))
        return 0
    if argv:
        raise UsageError(f"unexpected argument {argv[0]!r}: it takes none and reads the file named by {base.upper()}")
    s = _settings(environ)
    load_static(_firewall(s, say), s, base, say)
    if base == "whitelist":
        told = hup_modules(environ, say)
        say("told " + ", ".join(told) + " to re-read it" if told else "no module running to tell")
    return 0
