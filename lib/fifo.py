"""FIFO reading: the system logger's named pipe as a stream of text lines.

The FIFO is opened read-write, so the module is itself a writer: open never
blocks, a logger closing or restarting never gives EOF, and what sits in
the pipe when a module restarts stays for the next process.  The pipe is
enlarged (F_SETPIPE_SZ, up to /proc/sys/fs/pipe-max-size) so a burst does
not fill it and make rsyslog suspend its action.  Lines come out as str:
invalid UTF-8 replaced, NULs dropped, a line longer than MAX_LINE cut to
MAX_LINE (the rest of it discarded); none of it is ever fatal.  Lines
leave the pipe only when the module has acted on them (see FifoReader).
"""
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


def _libc_tee():
    """tee(2) through the C library (Python has no os.tee); None where it is missing."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        tee = libc.tee
    except (OSError, AttributeError):
        return None
    tee.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_size_t, ctypes.c_uint]
    tee.restype = ctypes.c_ssize_t
    return tee, ctypes.get_errno


SPLICE_F_NONBLOCK = 2


class FifoReader:
    """Lines out of a FIFO, taken out of the pipe only once acted on.

    `peek()` copies what the pipe holds into a private pipe with tee(2) and
    returns its complete lines without consuming them; `commit()` then takes
    exactly those bytes out of the FIFO.  A module killed between the two
    leaves the lines in the pipe for the next process: a crash can make a
    line count twice, never lose it.  Where tee(2) is missing, lines are
    consumed as they are read.
    """

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
        self.pipe_size = self._enlarge(self.fd, pipe_size or min(pipe_max(), 1 << 20))
        self._tee = _libc_tee()
        if self._tee:
            self._priv_r, self._priv_w = os.pipe()
            os.set_blocking(self._priv_r, False)
            self._enlarge(self._priv_w, self.pipe_size)
        self._buf = b""            # only without tee: a partial line read out of the pipe
        self._pending = 0          # bytes peeked and not yet committed
        self._skipping = False     # inside an overlong line: drop up to its newline
        self.partial = False       # the pipe holds only part of a line: wait for the rest

    @staticmethod
    def _enlarge(fd: int, size: int) -> int:
        import fcntl
        try:
            return fcntl.fcntl(fd, F_SETPIPE_SZ, size)
        except OSError:
            return 65536

    def fileno(self) -> int:
        return self.fd

    def _copy(self) -> bytes:
        """What the FIFO holds now, without taking it out."""
        tee, get_errno = self._tee
        n = tee(self.fd, self._priv_w, self.pipe_size, SPLICE_F_NONBLOCK)
        if n < 0:
            if get_errno() == 11:       # EAGAIN: empty
                return b""
            raise OSError(get_errno(), os.strerror(get_errno()))
        chunks, left = [], n
        while left > 0:
            chunk = os.read(self._priv_r, left)
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def peek(self) -> List[str]:
        """The complete lines the pipe holds, not yet taken out of it."""
        if self._pending:
            self.commit()
        if not self._tee:
            return self._read_consuming()
        data = self._copy()
        end = data.rfind(b"\n") + 1
        self.partial = bool(data) and end == 0
        if end == 0:
            if len(data) >= MAX_LINE:       # an overlong line without its end yet
                first = [] if self._skipping else [data[:MAX_LINE]]
                if first:
                    self.oddity("overlong line cut to %d bytes" % MAX_LINE)
                self._pending, self._skipping, self.partial = len(data), True, False
                return self._decode(first)
            return []
        self._pending = end
        parts = data[:end - 1].split(b"\n")
        if self._skipping:
            parts.pop(0)
            self._skipping = False
        return self._decode(parts)

    def commit(self) -> None:
        """Take what the last peek() returned out of the FIFO."""
        left = self._pending
        while left > 0:
            left -= len(os.read(self.fd, left))
        self._pending = 0

    def read_lines(self) -> List[str]:
        """Whatever complete lines are available now, consumed at once (never blocks)."""
        lines = self.peek()
        self.commit()
        return lines

    def _read_consuming(self) -> List[str]:
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
        return self._decode(parts)

    def _decode(self, parts) -> List[str]:
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
        if self._tee:
            os.close(self._priv_r)
            os.close(self._priv_w)
