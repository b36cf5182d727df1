"""Downloading a list: one deadline for the whole answer, a size cap, nothing half.

`fetch(url)` returns the whole body (gunzipped when the server sent gzip) or
raises ListError with one line that says why: an HTTP error, no answer
within the deadline (name lookup included: the download runs on a helper
thread), more than the cap (also once unpacked, against gzip bombs), or an
answer cut short (Content-Length, chunked encoding or the gzip stream).
"""
import http.client
import socket
import threading
import urllib.error
import urllib.request
import zlib

from typing import Dict

from lib.errors import ListError

MAX_BYTES = 32 << 20            # no public list Watcher knows of comes near; a runaway answer stops here
DEFAULT_TIMEOUT = 30.0          # seconds for a whole download, name lookup included
USER_AGENT = "Watcher-dynloader/1 (+python-urllib)"


def _gunzip(body: bytes, max_bytes: int) -> bytes:
    if body[:2] != b"\x1f\x8b":
        return body
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(body, max_bytes + 1)
    except zlib.error as e:
        raise ListError(f"broken gzip data: {e}") from None
    if len(out) > max_bytes:
        raise ListError(f"more than {max_bytes >> 20} MiB once unpacked")
    if not d.eof:
        raise ListError("truncated: the gzip stream ends early")
    return out


def _download(url: str, timeout: float, max_bytes: int, urlopen) -> bytes:
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"})
    try:
        with urlopen(req, timeout=timeout) as resp:
            length = (resp.headers.get("Content-Length") or "").strip()
            if length.isdigit():
                if int(length) > max_bytes:
                    raise ListError(f"{length} bytes, more than the cap of {max_bytes >> 20} MiB")
                return resp.read()          # raises IncompleteRead when the body is short
            body = resp.read(max_bytes + 1)
            if len(body) > max_bytes:
                raise ListError(f"more than the cap of {max_bytes >> 20} MiB")
            return body
    except ListError:
        raise
    except urllib.error.HTTPError as e:
        raise ListError(f"HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        reason = e.reason
        if isinstance(reason, (socket.timeout, TimeoutError)):
            raise ListError(f"no answer within {timeout:g} s") from None
        raise ListError(f"cannot download: {getattr(reason, 'strerror', None) or reason}") from None
    except http.client.IncompleteRead as e:
        raise ListError(f"truncated: the connection closed after {len(e.partial)} bytes") from None
    except (socket.timeout, TimeoutError):
        raise ListError(f"no answer within {timeout:g} s") from None
    except (OSError, http.client.HTTPException, ValueError) as e:
        raise ListError(f"download failed: {e or type(e).__name__}") from None


def fetch(url: str, timeout: float = DEFAULT_TIMEOUT, max_bytes: int = MAX_BYTES,
          urlopen=urllib.request.urlopen) -> bytes:
    """The body at `url` (gunzipped), all of it within `timeout` seconds and `max_bytes`.

    The download runs in a helper thread so that one deadline bounds the
    name lookup and a server that trickles bytes, which socket timeouts
    alone do not."""
    result: Dict[str, object] = {}

    def work():
        try:
            result["body"] = _download(url, timeout, max_bytes, urlopen)
        except BaseException as e:      # handed over to the caller's thread
            result["error"] = e
    worker = threading.Thread(target=work, name="fetch", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise ListError(f"{url}: no complete answer within {timeout:g} s")
    if "error" in result:
        e = result["error"]
        if isinstance(e, ListError):
            raise ListError(f"{url}: {e}") from None
        raise e                         # a bug: keep its traceback
    try:
        return _gunzip(result["body"], max_bytes)
    except ListError as e:
        raise ListError(f"{url}: {e}") from None
