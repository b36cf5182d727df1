"""Generated realistic logs: 70% noise, 30% attacks from tens of thousands of sources, IPv6 among them.

Attacks of WatchLG are the sshd lines of a brute force (failed passwords,
invalid users, the disconnects that follow); the other modules' attacks are
their own rules' example lines (`# example: LINE => ADDR`) with the address
replaced.  Noise is what a busy server logs besides: sessions, cron, sudo,
deliveries, logins that work, and the module's superflous strings.
"""
import ipaddress
import os
import random
import sys
from typing import List

from common import ROOT

sys.path.insert(0, ROOT)
from lib.rules import examples, read_superflous, rule_files  # noqa: E402

LG_NOISE = [
    "sshd[{p}]: Accepted publickey for deploy from {ip} port {port} ssh2: ED25519 SHA256:q1w2e3r4t5y6u7i8o9p0",
    "sshd[{p}]: pam_unix(sshd:session): session opened for user deploy(uid=1000) by (uid=0)",
    "sshd[{p}]: pam_unix(sshd:session): session closed for user deploy",
    "CRON[{p}]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)",
    "systemd-logind[612]: New session {p} of user deploy.",
    "sudo[{p}]:   deploy : TTY=pts/0 ; PWD=/home/deploy ; USER=root ; COMMAND=/usr/bin/apt-get update",
    "systemd[1]: Started session-{p}.scope - Session {p} of User deploy.",
]
LG_ATTACK = [
    "sshd[{p}]: Failed password for root from {ip} port {port} ssh2",
    "sshd[{p}]: Failed password for invalid user {u} from {ip} port {port} ssh2",
    "sshd[{p}]: Invalid user {u} from {ip} port {port}",
    "sshd[{p}]: Connection closed by authenticating user root {ip} port {port} [preauth]",
    "sshd[{p}]: Disconnected from invalid user {u} {ip} port {port} [preauth]",
]
MX_NOISE = [
    "postfix/smtpd[{p}]: connect from mail{n}.example.org[{ip}]",
    "postfix/smtpd[{p}]: disconnect from mail{n}.example.org[{ip}] ehlo=2 starttls=1 mail=1 rcpt=1 data=1 quit=1 commands=7",
    "postfix/smtpd[{p}]: 4F2A{n}: client=mail{n}.example.org[{ip}]",
    "postfix/cleanup[{p}]: 4F2A{n}: message-id=<{n}.{p}@example.org>",
    "postfix/qmgr[812]: 4F2A{n}: from=<news@example.org>, size={p}, nrcpt=1 (queue active)",
    "postfix/local[{p}]: 4F2A{n}: to=<alice@example.net>, relay=local, delay=0.1, status=sent (delivered to mailbox)",
    "postfix/qmgr[812]: 4F2A{n}: removed",
    "dovecot: imap-login: Login: user=<alice>, method=PLAIN, rip={ip}, lip=192.0.2.1, mpid={p}, TLS, session=<a{n}>",
]
USERS = ["admin", "oracle", "test", "ubuntu", "pi", "git", "postgres", "user1"]


def sources(rnd: random.Random, n: int, v6_share: float = 0.1) -> List[str]:
    """Addresses a daemon would count: no loopback, link-local, reserved or multicast."""
    out = []
    while len(out) < n:
        if rnd.random() < v6_share:
            out.append(str(ipaddress.ip_address((0x2001 << 112) | (0x0db8 << 96) | rnd.getrandbits(64))))
            continue
        a = ipaddress.ip_address(rnd.randrange(1 << 24, 223 << 24))
        if not (a.is_loopback or a.is_link_local or a.is_reserved or a.is_unspecified or a.is_multicast):
            out.append(str(a))
    return out


def rule_attacks(token: str) -> List[str]:
    """The module's example lines that inject, the address as {ip}, without the syslog header."""
    out = []
    for path in rule_files(_rules(token)):
        for ex in examples(path):
            text, ip = ex.line, ex.expect
            if ip in (None, "forward") or text.count(ip) != 1 or not text.startswith("Nov "):
                continue
            body = text.split(" ", 4)[4]              # after 'Nov 22 10:00:00 HOST '
            out.append(body.replace("{", "{{").replace("}", "}}").replace(ip, "{ip}"))
    return out


def superflous_noise(token: str) -> List[str]:
    return ["daemon[{p}]: note" + s.replace("{", "{{").replace("}", "}}") for s in read_superflous(_rules(token))]


def _rules(token: str) -> str:
    return os.path.join(ROOT, "modules", f"Watch{token}", "rules")


def make(token: str, path: str, n: int, seed: int = 42, n_sources: int = 20000) -> int:
    """Write n lines for module `token`; returns how many are attacks."""
    rnd = random.Random(seed)
    ips = sources(rnd, n_sources)
    if token == "LG":
        noise, attack = LG_NOISE, LG_ATTACK
    else:
        noise = (MX_NOISE if token == "MX" else []) + superflous_noise(token)
        attack = rule_attacks(token)
    if not noise or not attack:
        raise RuntimeError(f"no noise or attack lines for Watch{token}")
    attacks = 0
    with open(path, "w") as f:
        for i in range(n):
            t = f"Nov 22 {10 + i // 360000 % 10:02d}:{i // 6000 % 60:02d}:{i // 100 % 60:02d} srv "
            is_attack = rnd.random() < 0.3
            attacks += is_attack
            tpl = rnd.choice(attack if is_attack else noise)
            f.write(t + tpl.format(p=rnd.randrange(1000, 60000), ip=rnd.choice(ips), port=rnd.randrange(1024, 65535),
                                   u=rnd.choice(USERS), n=rnd.randrange(1000, 9999)) + "\n")
    return attacks
