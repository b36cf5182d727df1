#!/usr/bin/env python3
"""WatchLG: the login watcher.

Reads sshd's lines from $FIFO_BASE/WatchLG, counts failed logins per
address and drops attackers in the kernel.  All of it is lib/; this module
brings only its rules (rules/), its settings (WatchLG.conf) and its schema.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__)))))

from lib.watch import module_main  # noqa: E402

if __name__ == "__main__":
    module_main("LG")
