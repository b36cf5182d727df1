"""Matching throughput: `watcher.py test MODULE FILE` beside fail2ban-regex and sshg-parser.

Runs are interleaved (Watcher, fail2ban-regex, sshg-parser, then again) so
a slower or busier moment of the machine weighs on all alike; each figure
is the median of the runs, the ratios are ratios of medians.  Every tool
reads the same file: fail2ban-regex with Debian's sshd filter, sshg-parser
on its standard input.
"""
import os
import shutil
import subprocess
import time
from typing import Dict, List, Optional

from common import PY, ROOT, median

F2B_FILTER = "/etc/fail2ban/filter.d/sshd.conf"
SSHG_PARSER = "/usr/libexec/sshguard/sshg-parser"


def timed(argv: List[str], stdin_path: Optional[str] = None) -> float:
    t = time.perf_counter()
    with open(stdin_path or os.devnull, "rb") as inp:
        r = subprocess.run(argv, stdin=inp, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT,
                           timeout=1800)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])}: exit {r.returncode}: {r.stderr.decode(errors='replace')[-300:]}")
    return dt


def byte_compile() -> None:
    """lib byte-compiled, as on a machine where Watcher has run once (whatever PYTHONDONTWRITEBYTECODE says)."""
    subprocess.run([PY, "-m", "compileall", "-q", os.path.join(ROOT, "lib")], stdout=subprocess.DEVNULL, check=True)


def compare(token: str, log: str, lines: int, runs: int) -> Dict[str, object]:
    """Seconds per tool (lists of runs) on `log`."""
    tools = {"watcher": [PY, os.path.join(ROOT, "watcher.py"), "test", token, log],
             "watcher_1cpu": None}
    if token == "LG":
        if shutil.which("fail2ban-regex") and os.path.exists(F2B_FILTER):
            tools["fail2ban-regex"] = ["fail2ban-regex", log, F2B_FILTER]
        if os.path.exists(SSHG_PARSER):
            tools["sshg-parser"] = [SSHG_PARSER]
    out = {name: [] for name in tools}
    for _ in range(runs):
        for name, argv in tools.items():
            if name == "watcher_1cpu":      # through a pipe: one process, no split of the file
                out[name].append(timed(["sh", "-c", 'cat "$1" | "$2" "$3" test "$4" -', "sh", log, PY,
                                        os.path.join(ROOT, "watcher.py"), token]))
            elif name == "sshg-parser":
                out[name].append(timed(argv, stdin_path=log))
            else:
                out[name].append(timed(argv))
    result = {"module": token, "lines": lines, "runs": out}
    result["median"] = {name: median(v) for name, v in out.items()}
    return result
