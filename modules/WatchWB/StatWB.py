#!/usr/bin/env python3
"""StatWB [--stdout | --out FILE] [--vhost NAME]: WatchWB's statistics per day as CSV,
one per virtual host mailed to its owner (VHOST_OWNERS) and the server's total
mailed to REPORTMAIL, so no customer sees another's figures.  All of it is
lib/stats.py."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__)))))

from lib.stats import module_main  # noqa: E402

if __name__ == "__main__":
    module_main("WB")
