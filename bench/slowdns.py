"""A flood of new addresses while DNS answers slowly.

A small DNS server on loopback inside Watcher's namespace answers every
query with NXDOMAIN after DELAY seconds (many queries in flight at once).
WatchLG runs with DNS_CLASSIFY=on against it; N new attackers (one line
each) go through the FIFO.  Reading must not wait for DNS: the clock for
lines/s stops when tarpit holds all N (each first affair goes there at once,
as UNKNOWN); the same flood with DNS off is the reference.  Classification
catches up behind: addresses classified NXDOMAIN per second over the
first seconds (Background's workers each wait DELAY for an answer).
"""
import os
import sqlite3
import time
from typing import Dict

from common import PY, addresses, pour, set_size, spawn, sshd_lines, wait_for

SERVER = r'''
import heapq, select, socket, sys, time
import dns.message, dns.rcode
delay, port = float(sys.argv[1]), int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", port))
due = []
while True:
    wait = max(0.0, due[0][0] - time.monotonic()) if due else 1.0
    if select.select([s], [], [], wait)[0]:
        data, peer = s.recvfrom(4096)
        try:
            q = dns.message.from_wire(data)
        except Exception:
            continue
        r = dns.message.make_response(q)
        r.set_rcode(dns.rcode.NXDOMAIN)
        heapq.heappush(due, (time.monotonic() + delay, id(r), r.to_wire(), peer))
    while due and due[0][0] <= time.monotonic():
        _, _, wire, peer = heapq.heappop(due)
        s.sendto(wire, peer)
'''


def classified(db: str) -> int:
    conn = sqlite3.connect(db, timeout=30)
    try:
        return conn.execute("SELECT count(*) FROM hosts WHERE class = 'NXDOMAIN'").fetchone()[0]
    finally:
        conn.close()


def flood(n: int, delay: float, dns_on: bool, follow: float = 10.0) -> Dict[str, float]:
    from daemon import finish, start_watcher
    port = 5300 + os.getpid() % 500
    settings = {"MAX_AFFAIRS": 5, "DNS_CLASSIFY": "on" if dns_on else "off",
                "DNS_SERVER": f"127.0.0.1:{port}", "DNS_TIMEOUT": 5}
    w = start_watcher("dns" if dns_on else "nodns", **settings)
    server = spawn([PY, "-c", SERVER, str(delay), str(port)], ns=w.ns) if dns_on else None
    try:
        time.sleep(0.3)
        ips = addresses(n, "100.104.0.0")
        t0 = pour(w.fifo(), sshd_lines(ips))
        ok = wait_for(lambda: set_size(w.ns, "tarpit") >= n, 300, 0.01)
        read = time.perf_counter() - t0
        out = {"lines_per_s": n / read if ok else 0.0}
        if dns_on:                  # classification catches up behind: its rate over `follow` seconds
            time.sleep(max(0.0, follow - (time.perf_counter() - t0)))
            out["classified_per_s"] = classified(w.database()) / (time.perf_counter() - t0)
        return out
    finally:
        if server:
            server.kill()
        finish(w)
