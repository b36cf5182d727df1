#!/usr/bin/env python3
"""StatMX [--stdout | --out FILE]: WatchMX's statistics per day as CSV (WatchMB's
affairs included: they share the database), mailed to REPORTMAIL with a chart of
introduced against dropped.  All of it is lib/stats.py."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__)))))

from lib.stats import module_main  # noqa: E402

if __name__ == "__main__":
    module_main("MX")
