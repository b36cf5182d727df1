#!/usr/bin/env python3
"""ExpireWB [days]: forget the web clients not seen for `days` (default EXPIRATIONDAYS),
in WatchWB's database and at once in the kernel's sets.  All of it is lib/expire.py."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__)))))

from lib.expire import module_main  # noqa: E402

if __name__ == "__main__":
    module_main("WB")
