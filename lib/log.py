"""Module log and trace files: one line per decision, root-only files.

Lines read `20261122T08:02:23 WatchLG[13117]: [root-login] 203.0.113.5
NXDOMAIN affairs 5/5 -> DROP` (WatchWB adds ` on VHOST`, the virtual host the
affair was on).  Files are created mode 0600 and reopened
when logrotate moved them away (the inode check of WatchedFileHandler).
"""
import os
import time
from typing import Callable, Optional


def stamp(t: float) -> str:
    return time.strftime("%Y%m%dT%H:%M:%S", time.localtime(t))


class LogFile:
    def __init__(self, path: str, name: str, now: Callable[[], float] = time.time, echo=None):
        self.path, self.name, self.now, self.echo = path, name, now, echo
        self.pid = os.getpid()
        self._f = None
        self._ino = None

    def _open(self) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._f = os.fdopen(fd, "a", encoding="utf-8", errors="replace")
        self._ino = os.fstat(fd).st_ino

    def write(self, text: str) -> None:
        line = f"{stamp(self.now())} {self.name}[{self.pid}]: {text}\n"
        try:
            if self._f is None or os.stat(self.path).st_ino != self._ino:
                self.close()
                self._open()
        except FileNotFoundError:
            self.close()
            self._open()
        self._f.write(line)
        self._f.flush()
        if self.echo:
            self.echo(line.rstrip("\n"))

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


class NullLog:
    def write(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


def open_log(path: Optional[str], name: str, now=time.time):
    return LogFile(path, name, now) if path else NullLog()
