"""A block-list web server for the tests, and Spamhaus DROP bodies to serve.

It serves the files of a folder over HTTP, and two broken answers: /slow
sends its headers at once, then a trickle that takes 30 s; /cut promises
5,000 bytes, sends one line and hangs up.  test_lists.py runs it in a
thread; test_lists_kernel.py runs this file as a script in the server's
network namespace: `python3 listserver.py ROOT PORT`.
"""
import http.server
import json
import os
import sys
import time


def drop_json(nets, metadata=True):
    """A Spamhaus DROP list in JSON lines; without its final metadata line when metadata=False."""
    lines = [json.dumps({"cidr": n, "sblid": f"SBL{100 + i}", "rir": "ripencc"}) for i, n in enumerate(nets)]
    if metadata:
        lines.append(json.dumps({"type": "metadata", "timestamp": int(time.time()), "size": 1,
                                 "records": len(nets), "copyright": "test"}))
    return "\n".join(lines) + "\n"


def handler(root: str):
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            name = os.path.basename(self.path.split("?")[0])
            if name == "slow":
                self.send_response(200)
                self.send_header("Content-Length", "100000")
                self.end_headers()
                for _ in range(60):
                    try:
                        self.wfile.write(b'{"cidr": "203.0.113.0/24"}\n')
                        self.wfile.flush()
                    except OSError:
                        return
                    time.sleep(0.5)
                return
            if name == "cut":
                self.send_response(200)
                self.send_header("Content-Length", "5000")
                self.end_headers()
                self.wfile.write(b'{"cidr": "10.88.0.4/31", "sblid": "SBL9"}\n')
                return
            try:
                with open(os.path.join(root, name), "rb") as f:
                    body = f.read()
            except OSError:
                self.send_error(404, "Not Found")
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
    return Handler


def server(root: str, port: int) -> http.server.ThreadingHTTPServer:
    s = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler(root))
    s.daemon_threads = True
    return s


class Folder:
    """The served folder: folder["/name"] = body (bytes or text) writes the file, del removes it."""

    def __init__(self, root: str):
        self.root = root

    def _path(self, name: str) -> str:
        return os.path.join(self.root, os.path.basename(name))

    def __setitem__(self, name: str, body) -> None:
        with open(self._path(name), "wb" if isinstance(body, bytes) else "w") as f:
            f.write(body)

    def __delitem__(self, name: str) -> None:
        os.unlink(self._path(name))


if __name__ == "__main__":
    server(sys.argv[1], int(sys.argv[2])).serve_forever()
