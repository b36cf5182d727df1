#!/usr/bin/env python3
"""WatchWB: the web server watcher (Watcher 1.3).

Reads the web server's facility (Apache 2.4 and nginx, error and access logs
in the formats `watcher.py syslog-config apache|nginx` prints) from
$FIFO_BASE/WatchWB, counts the affairs of clients that guess passwords, ask
for what only attackers ask for, come as known scanners or flood a virtual
host, records the virtual host with each affair, and drops them in the
kernel.  All of it is lib/ (lib/weblog.py reads the lines); this module
brings only its rules and lists (rules/), its settings (WatchWB.conf) and its
schema.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__)))))

from lib.watch import module_main  # noqa: E402

if __name__ == "__main__":
    module_main("WB")
