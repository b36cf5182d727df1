"""FIFO reading: the system logger's named pipe as a stream of text lines.

The FIFO is opened read-write, so the module is itself a writer: open never
blocks, a logger closing or restarting never gives EOF, and what sits in
the pipe when a module restarts stays for the next process.  The pipe is
enlarged (F_SETPIPE_SZ, up to /proc/sys/fs/pipe-max-size) so a burst does
not fill it and make rsyslog suspend its action.  Lines come out as str:
invalid UTF-8 replaced, NULs dropped, a line longer than MAX_LINE cut to
MAX_LINE (the rest of it discarded); none of it is ever fatal.
"""
import grp
import os
import pwd
import stat
from typing import Callable, List, Optional

from lib.errors import WatcherError

F_SETPIPE_SZ = 1031          # fcntl.F_SETPIPE_SZ from Python 3.10 on; the value is Linux's
MAX_LINE = 16384
SYSLOG_USERS = ("syslog",)   # Ubuntu's rsyslog drops privileges to this user


def logger_owner() -> tuple:
    """(uid, gid) the system logger writes as: root, or syslog on Ubuntu."""
    for user in SYSLOG_USERS:
        try:
            pw = pwd.getpwnam(user)
            return 0, pw.pw_gid
        except KeyError:
            pass
    return 0, 0


def ensure_fifo(path: str, owner: Optional[tuple] = None) -> bool:
    """Create the FIFO (0600, or 0660 with the logger user's group) if missing; True when made."""
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        os.mkfifo(path, 0o600)
        uid, gid = owner or logger_owner()
        if os.geteuid() == 0:
            os.chown(path, uid, gid)
        os.chmod(path, 0o660 if gid else 0o600)   # ompipe opens O_RDWR: read and write
        return True
    if not stat.S_ISFIFO(st.st_mode):
        raise WatcherError(f"{path}: exists and is not a FIFO: move it aside and run ./Prep")
    return False


def pipe_max() -> int:
    try:
        with open("/proc/sys/fs/pipe-max-size") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 1 << 20


class FifoReader:
    def __init__(self, path: str, on_oddity: Callable[[str], None] = lambda kind: None,
                 pipe_size: Optional[int] = None):
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise WatcherError(f"{path}: no such FIFO; run ./Prep (or check FIFO_BASE)") from None
        if not stat.S_ISFIFO(st.st_mode):
            raise WatcherError(f"{path}: not a FIFO; move it aside and run ./Prep")
        try:
            self.fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as e:
            raise WatcherError(f"{path}: cannot open the FIFO: {e.strerror}") from None
        self.path, self.oddity = path, on_oddity
        self.pipe_size = self._enlarge(pipe_size or min(pipe_max(), 1 << 20))
        self._buf = b""
        self._skipping = False

    def _enlarge(self, size: int) -> int:
        import fcntl
        try:
            return fcntl.fcntl(self.fd, F_SETPIPE_SZ, size)
        except OSError:
            return 65536

    def fileno(self) -> int:
        return self.fd

    def read_lines(self) -> List[str]:
        """Whatever complete lines are available now (never blocks)."""
        try:
            chunk = os.read(self.fd, 1 << 16)
        except BlockingIOError:
            return []
        if not chunk:
            return []
        parts = (self._buf + chunk).split(b"\n")
        self._buf = parts.pop()
        if self._skipping and parts:          # the tail of an overlong line
            parts.pop(0)
            self._skipping = False
        if len(self._buf) > MAX_LINE:
            if not self._skipping:
                parts.append(self._buf[:MAX_LINE])
                self.oddity("overlong line cut to %d bytes" % MAX_LINE)
            self._buf, self._skipping = b"", True
        lines = []
        for raw in parts:
            if len(raw) > MAX_LINE:
                raw = raw[:MAX_LINE]
                self.oddity("overlong line cut to %d bytes" % MAX_LINE)
            if b"\0" in raw:
                raw = raw.replace(b"\0", b"")
                self.oddity("NUL bytes dropped")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                text = raw.decode("utf-8", "replace")
                self.oddity("invalid UTF-8 replaced")
            text = text.rstrip("\r")
            if text:
                lines.append(text)
        return lines

    def close(self) -> None:
        os.close(self.fd)
