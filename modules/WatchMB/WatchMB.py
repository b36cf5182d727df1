#!/usr/bin/env python3
"""WatchMB: the mailbox and SASL access watcher, WatchMX's companion.

Reads what WatchMX forwards into $FIFO_BASE/WatchMB (Dovecot, Courier and
DBmail login failures, Postfix SASL failures, failed TLS handshakes of
unknown clients) and counts them in WatchMX's database.  All of it is lib/;
this module brings only its rules (rules/) and its settings (WatchMB.conf).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__)))))

from lib.watch import module_main  # noqa: E402

if __name__ == "__main__":
    module_main("MB")
