#!/usr/bin/env python3
"""Watcher master: firewall set-up, restore, and the modules' supervisor.

  ./watcher.py start | stop [--flush] | restart | status
  ./watcher.py ban IP [--module XX] | unban IP
  ./watcher.py test MODULE [LOGFILE|-] [--json]
  ./watcher.py syslog-config rsyslog|syslog-ng|apache|nginx
  ./watcher.py report [--mail]
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))

from lib import config, testmode  # noqa: E402
from lib.errors import UsageError, cli_main  # noqa: E402
from lib.rules import Filter, rules_dir  # noqa: E402
from lib.supervise import installed_modules, supervise  # noqa: E402


class Parser(argparse.ArgumentParser):
    def error(self, message):          # one line, exit 64, like every other usage mistake
        raise UsageError(f"{message} (see watcher.py --help)")


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="watcher.py", description="Watcher: real-time intrusion detection and prevention.",
               epilog="Settings: watcher.conf, modules/WatchXX/WatchXX.conf, then $WATCHER_CONF.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.add_parser("start", help="create sets and chain, restore bans, start the modules")
    s = sub.add_parser("stop", help="stop the modules (the firewall stays as it is)")
    s.add_argument("--flush", action="store_true", help="also remove Watcher's sets and chain")
    sub.add_parser("restart", help="stop, then start")
    sub.add_parser("status", help="modules, counters, addresses and set sizes")
    b = sub.add_parser("ban", help="put an address into custody at once")
    b.add_argument("ip")
    b.add_argument("--module", default="LG", help="module database that records it (default LG)")
    u = sub.add_parser("unban", help="take an address out of tarpit and custody, clear it everywhere")
    u.add_argument("ip")
    t = sub.add_parser("test", help="run a module's filter over a log file; touches nothing")
    t.add_argument("module", metavar="MODULE", help="LG, MX, MB or WB")
    t.add_argument("logfile", nargs="?", default="-", help="log file, or - for standard input")
    t.add_argument("--json", action="store_true", help="one JSON object per input line")
    c = sub.add_parser("syslog-config", help="print the system logger's configuration for the FIFOs "
                                             "(apache, nginx: the web server's, for WatchWB)")
    c.add_argument("logger", choices=["rsyslog", "syslog-ng", "apache", "nginx"])
    c.add_argument("--source", default="s_src", help="syslog-ng source name (default s_src)")
    r = sub.add_parser("report", help="the Watcher-Report: warnings, firewall, dynloaders, databases")
    r.add_argument("--mail", action="store_true", help="mail it to REPORTMAIL instead of printing it")
    sub.add_parser("_supervise")       # internal: the supervisor process
    return p


def main(argv) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.command is None:
        p.print_help()
        return 64
    if args.command != "test":      # `test` starts faster without the block lists' imports (http, ssl)
        from lib import control
    if args.command == "start":
        return control.start()
    if args.command == "stop":
        return control.stop(flush=args.flush)
    if args.command == "restart":
        control.stop()
        return control.start()
    if args.command == "status":
        return control.status()
    if args.command == "ban":
        return control.ban(args.ip, args.module)
    if args.command == "unban":
        return control.unban(args.ip)
    if args.command == "test":
        token = args.module.upper().replace("WATCH", "")
        if token not in installed_modules():
            raise UsageError(f"test {args.module}: no such module (have: {', '.join(installed_modules())})")
        flt = Filter(rules_dir(config.load(token)), token, check_perms=False)
        companions = {}
        if token == "MX" and "MB" in installed_modules():
            companions["MB"] = Filter(rules_dir(config.load("MB")), "MB", check_perms=False)
        return testmode.run(flt, companions, testmode.open_input(args.logfile), sys.stdout, args.json)
    if args.command == "syslog-config":
        from lib import syslogconf
        if args.logger in ("apache", "nginx"):
            sys.stdout.write(syslogconf.apache() if args.logger == "apache" else syslogconf.nginx())
            return 0
        s = config.load(None)
        mods = installed_modules()
        text = (syslogconf.rsyslog(s, mods) if args.logger == "rsyslog"
                else syslogconf.syslog_ng(s, mods, args.source))
        sys.stdout.write(text)
        return 0
    if args.command == "report":
        from lib import report
        return report.main(mail=args.mail)
    if args.command == "_supervise":
        s = config.load(None)
        mods = installed_modules()
        return supervise(mods, s.RUN_DIR, s.LOG_DIR, [s.fifo(t) for t in mods])
    return 64


if __name__ == "__main__":
    cli_main(main, "watcher.py")
