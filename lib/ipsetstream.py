"""One long-lived `ipset` process per module: bans applied in microseconds, each confirmed.

See IpsetStream for the protocol; lib.firewall's Ipset backend uses it once a
module calls keep_process().
"""
import os
import select
import subprocess
import time
from typing import Callable, List, Optional, Sequence

MARKER_SET = "custody"
MARKER = f"test {MARKER_SET} 127.0.0.1"        # loopback is never banned: always 'is NOT in set'
MARKER_REPLIES = (f"127.0.0.1 is NOT in set {MARKER_SET}.", f"Warning: 127.0.0.1 is in set {MARKER_SET}.")


class _Stalled(Exception):
    pass


class IpsetStream:
    """One long-lived `ipset -exist -` process, fed the commands of a module's bans.

    Interactive ipset applies each line as soon as it reads it (a long-lived
    `ipset restore` would apply nothing before its end of input): about 20 us
    a command, against more than a millisecond for a process per command.
    It writes nothing for a command that worked and one line on standard
    error for one that failed, while `test` always answers there.  So every
    batch ends with MARKER, and the batch is done when MARKER's answer comes:
    any line before it is a failure.  A batch with a failure, or a process
    that died or gave no answer within `timeout`, is applied again through
    `fallback` (`ipset -exist restore`, which names the line that failed);
    every command is idempotent (-exist), so applying one twice does no harm.
    A dead process is started anew at the next batch.
    """

    def __init__(self, argv: Sequence[str], fallback: Callable[[List[str]], List[str]], timeout: float = 5.0):
        self.argv, self.fallback, self.timeout = list(argv), fallback, timeout
        self.proc: Optional[subprocess.Popen] = None
        self.started = 0                # processes started (1 + restarts)
        self.fallbacks = 0              # batches applied again through `fallback`
        self._buf = b""

    def _start(self) -> None:
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, close_fds=True)
        os.set_blocking(self.proc.stdin.fileno(), False)
        os.set_blocking(self.proc.stderr.fileno(), False)
        self._buf = b""
        self.started += 1

    def apply(self, commands: List[str]) -> List[str]:
        """Apply `commands` (ipset command lines); the failures as 'COMMAND: message'."""
        if not commands:
            return []
        try:
            if self.proc is None or self.proc.poll() is not None:
                self._start()
            failed = self._exchange(commands)
        except (OSError, ValueError, _Stalled):
            self.close(kill=True)
            failed = ["process"]
        if not failed:
            return []
        self.fallbacks += 1
        return self.fallback(commands)

    def _exchange(self, commands: List[str]) -> List[str]:
        """Write the batch and MARKER, reading answers meanwhile (a full error pipe must not
        block ipset while we wait to write); the lines that came before MARKER's answer."""
        data = memoryview(("".join(c + "\n" for c in commands) + MARKER + "\n").encode())
        fin, ferr = self.proc.stdin.fileno(), self.proc.stderr.fileno()
        lines: List[str] = []
        end = time.monotonic() + self.timeout
        poller = select.poll()
        poller.register(ferr, select.POLLIN)
        poller.register(fin, select.POLLOUT)
        while True:
            if data:
                try:
                    data = data[os.write(fin, data):]
                except BlockingIOError:
                    pass
                if not data:
                    poller.unregister(fin)
            try:
                chunk = os.read(ferr, 65536)
                if not chunk:
                    raise OSError("ipset exited")
                self._buf += chunk
            except BlockingIOError:
                pass
            while b"\n" in self._buf:
                raw, self._buf = self._buf.split(b"\n", 1)
                line = raw.decode("utf-8", "replace").strip()
                if line in MARKER_REPLIES:
                    return lines
                lines.append(line)
                if len(lines) > len(commands):      # MARKER failed too: every line is in
                    return lines
            left = end - time.monotonic()
            if left <= 0:
                raise _Stalled()
            poller.poll(left * 1000)

    def close(self, kill: bool = False) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            if kill:
                proc.kill()
            else:
                proc.stdin.close()
            proc.wait(timeout=5)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        for f in (proc.stdin, proc.stderr):
            try:
                f.close()
            except (OSError, ValueError):
                pass
