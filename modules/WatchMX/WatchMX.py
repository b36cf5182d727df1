#!/usr/bin/env python3
"""WatchMX: the mail transport watcher.

Reads the mail facility (Postfix, and the mailbox daemons that log there)
from $FIFO_BASE/WatchMX, counts the affairs of SMTP clients and drops
spammers in the kernel; mailbox and SASL authentication failures go on to
WatchMB's FIFO (a rule's `return forward()`), which counts them in the same
database.  All of it is lib/; this module brings only its rules (rules/),
its settings (WatchMX.conf) and its schema.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__)))))

from lib.watch import module_main  # noqa: E402

if __name__ == "__main__":
    module_main("MX")
