"""The files of the block lists under DATA_DIR/lists: the state every load
records (lists.state.json, read by `watcher.py status` and `report`), written
whole or not at all under a lock, one process at a time.
"""
import contextlib
import fcntl
import json
import os
import time
from typing import Dict, Iterator

from lib.errors import ListError, WatcherError


def lists_dir(data_dir: str) -> str:
    path = os.path.join(data_dir, "lists")
    try:
        os.makedirs(path, mode=0o755, exist_ok=True)
        ignore = os.path.join(path, ".gitignore")
        if not os.path.exists(ignore):      # runtime files: never committed, even when DATA_DIR is the checkout
            with open(ignore, "w") as f:
                f.write("# written by Watcher: caches and state of the block lists\n*\n")
    except OSError as e:
        raise WatcherError(f"{path}: cannot create: {e.strerror} (run as root?)") from None
    return path


def state_path(data_dir: str) -> str:
    return os.path.join(data_dir, "lists", "lists.state.json")


def read_state(data_dir: str) -> Dict[str, dict]:
    try:
        with open(state_path(data_dir)) as f:
            state = json.load(f)
        return state if isinstance(state, dict) else {}
    except (OSError, ValueError):
        return {}


def write_atomic(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise WatcherError(f"{path}: cannot write: {e.strerror}") from None


@contextlib.contextmanager
def locked(path: str, what: str, wait: float = 60.0) -> Iterator[None]:
    """One process at a time per list (cron runs that overlap, start at boot)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise WatcherError(f"{path}: cannot open: {e.strerror}") from None
    try:
        end = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > end:
                    raise ListError(f"{what}: another load has held {path} for {wait:.0f} s") from None
                time.sleep(0.1)
        yield
    finally:
        os.close(fd)


def record(data_dir: str, name: str, loaded: float, entries: int, ok: bool, message: str) -> None:
    """Note a load in lists.state.json (read by `watcher.py status` and `report`)."""
    d = lists_dir(data_dir)
    with locked(os.path.join(d, ".state.lock"), "lists.state.json"):
        state = read_state(data_dir)
        state[name] = {"loaded": int(loaded), "entries": int(entries), "ok": bool(ok), "message": message}
        write_atomic(state_path(data_dir), (json.dumps(state, indent=1, sort_keys=True) + "\n").encode())
