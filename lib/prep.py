"""Prep: make a machine ready for Watcher, never asking a question.

Without options it changes nothing outside Watcher's own paths: it creates
each module's database from its schema template, the FIFOs (writable by
the system logger, also on Ubuntu where rsyslog runs as user syslog), the
log files (0600) and, the first time, the whitelist with the address of the
SSH session it runs from and the host's own addresses, so the
administrator cannot lock themself out.  It reports what is missing with
the exact command that installs it.  `--install` also installs the missing
packages and writes the system logger's snippet.  The files of dist/
(logrotate config, systemd unit) are filled in with the install path and
settings: printed as the command that installs them, written by
`--install`; the crontab sample is only printed.  Running it twice changes
nothing.
"""
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from typing import Callable, Dict, List, Optional, Tuple

from lib import config, db, syslogconf
from lib.addresses import host_addresses, parse_peer
from lib.fifo import ensure_fifo
from lib.supervise import installed_modules

Say = Callable[[str], None]

# what -> (test, package per package manager)
PACKAGES = {
    "ipset": {"apt-get": "ipset", "dnf": "ipset", "yum": "ipset", "zypper": "ipset"},
    "iptables": {"apt-get": "iptables", "dnf": "iptables-nft", "yum": "iptables", "zypper": "iptables"},
    "dnspython": {"apt-get": "python3-dnspython", "dnf": "python3-dns", "yum": "python3-dns",
                  "zypper": "python3-dnspython"},
    "system logger": {"apt-get": "rsyslog", "dnf": "rsyslog", "yum": "rsyslog", "zypper": "rsyslog"},
}


def package_manager(which=shutil.which) -> Optional[str]:
    for pm in ("apt-get", "dnf", "yum", "zypper"):
        if which(pm):
            return pm
    return None


def install_command(pm: Optional[str], packages: List[str]) -> str:
    if pm == "apt-get":
        return "apt-get install -y " + " ".join(packages)
    if pm:
        return f"{pm} install -y " + " ".join(packages)
    return "install " + ", ".join(packages) + " with your distribution's package manager"


def missing(settings, which=shutil.which, find_spec=importlib.util.find_spec) -> Dict[str, bool]:
    """What is missing -> whether it is required (False: a warning only)."""
    out = {}
    if settings.FIREWALL == "ipset":
        if not which("ipset"):
            out["ipset"] = True
        if not which("iptables") or not which("ip6tables"):
            out["iptables"] = True
    if settings.DNS_CLASSIFY and find_spec("dns") is None:
        out["dnspython"] = True
    if not (which("rsyslogd") or which("syslog-ng")):
        out["system logger"] = False
    return out


def ssh_client(environ) -> Optional[str]:
    """The address of the SSH session Prep runs from ($SSH_CLIENT: 'ADDR PORT PORT')."""
    words = (environ.get("SSH_CLIENT") or environ.get("SSH_CONNECTION") or "").split()
    if words:
        addr = parse_peer(words[0])
        if addr:
            return str(addr)
    return None


def first_whitelist(path: str, environ, own=None) -> Optional[List[str]]:
    """Write the whitelist the first time; the entries written, or None when it existed."""
    if os.path.exists(path):
        return None
    entries: List[Tuple[str, str]] = []
    client = ssh_client(environ)
    if client:
        entries.append((client, "the SSH session Prep ran from"))
    for addr in (host_addresses() if own is None else own):
        if not (addr.is_loopback or addr.is_link_local):
            entries.append((str(addr), "this host"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "w") as f:
        f.write("# Watcher whitelist: addresses and networks never counted, always let through.\n"
                "# One a line, IPv4 or IPv6, '#' comments.  Reload with ./Whitelist.\n")
        for addr, why in entries:
            f.write(f"{addr}\t# {why}\n")
    return [a for a, _ in entries]


def touch_private(path: str) -> bool:
    if os.path.exists(path):
        return False
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    return True


def prepare(say: Say = print, environ=os.environ, install: bool = False,
            which=shutil.which, run=subprocess.run) -> int:
    master = config.load(None, environ)
    mods = {t: config.load(t, environ) for t in installed_modules()}
    status = 0
    pm = package_manager(which)
    lacking = missing(master, which)
    if lacking and install:
        if os.geteuid() != 0:
            say("error: --install needs root")
            return 1
        pkgs = [PACKAGES[m][pm] for m in lacking] if pm else []
        if not pm:
            say("error: no apt-get, dnf, yum or zypper to install " + ", ".join(lacking))
            return 1
        say("installing: " + " ".join(pkgs))
        env = dict(environ, DEBIAN_FRONTEND="noninteractive")
        if pm == "apt-get":
            run(["apt-get", "update", "-q"], env=env, stdin=subprocess.DEVNULL)
        r = run(install_command(pm, pkgs).split(), env=env, stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            say(f"error: {install_command(pm, pkgs)} failed with status {r.returncode}")
            return 1
        importlib.invalidate_caches()
        lacking = missing(master, which)
    for what, required in lacking.items():
        cmd = install_command(pm, [PACKAGES[what][pm] if pm else what])
        if required:
            say(f"missing: {what}; install it: {cmd}  (or ./Prep --install)")
            status = 1
        else:
            say(f"warning: no rsyslog or syslog-ng (a journald-only system cannot feed a FIFO); "
                f"install one: {cmd}  (or ./Prep --install)")
    try:
        for token, s in mods.items():
            schema = os.path.join(s.module_path, f"Watch{token}.schema")
            if token == "MB" and "MX" in mods:
                continue                              # MB shares MX's database
            if os.path.exists(schema):
                if db.create(s.database, schema):
                    say(f"created {s.database}")
            if ensure_fifo(s.fifo()):
                say(f"created FIFO {s.fifo()}")
            if touch_private(s.log_file):
                say(f"created {s.log_file} (0600)")
        for token, s in mods.items():
            if token == "MB" and ensure_fifo(s.fifo()):
                say(f"created FIFO {s.fifo()}")
        os.makedirs(master.RUN_DIR, mode=0o755, exist_ok=True)
        wrote = first_whitelist(master.WHITELIST, environ)
        if wrote is not None:
            say(f"created {master.WHITELIST} with " + (", ".join(wrote) if wrote else "no entries"))
    except PermissionError as e:
        say(f"error: {e.filename}: permission denied; run ./Prep as root")
        return 1
    if install:
        status = max(status, write_snippet(master, list(mods), say, which, run))
    status = max(status, dist_files(master, mods, say, install, run))
    say("Prep: done" if status == 0 else "Prep: done, but see the lines above")
    return status


def write_snippet(master, modules: List[str], say: Say, which=shutil.which, run=subprocess.run) -> int:
    if which("rsyslogd"):
        logger, text, service = "rsyslog", syslogconf.rsyslog(master, modules), "rsyslog"
    elif which("syslog-ng"):
        logger, text, service = "syslog-ng", syslogconf.syslog_ng(master, modules), "syslog-ng"
    else:
        return 0
    path = syslogconf.SNIPPET_PATHS[logger]
    try:
        with open(path) as f:
            if f.read() == text:
                return 0
    except OSError:
        pass
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    say(f"wrote {path}")
    if which("systemctl") and run(["systemctl", "is-active", "--quiet", service]).returncode == 0:
        run(["systemctl", "restart", service])
        say(f"restarted {service}")
    else:
        say(f"restart {logger} so that it reads {path}")
    return 0


# ---------------------------------------------------------------- dist/: files an administrator installs
# Templates with @KEY@ placeholders, filled in from the install path and the settings.  Without
# --install Prep prints the command that installs each one (a plain sed, to read before running);
# with --install it writes them.  The crontab sample is only ever printed.
DIST_DIR = os.path.join(config.MASTER_PATH, "dist")
DIST_TARGETS = {"logrotate.conf": "/etc/logrotate.d/watcher",
                "watcher.service": "/etc/systemd/system/watcher.service"}


def dist_values(master, mods: Dict[str, config.Settings], python: Optional[str] = None) -> Dict[str, str]:
    def files(paths):
        seen = dict.fromkeys(paths)           # ordered, without repeats
        return " ".join(f'"{p}"' if " " in p else p for p in seen)
    return {"MASTER_PATH": config.MASTER_PATH, "PYTHON": python or sys.executable, "RUN_DIR": master.RUN_DIR,
            "LOG_FILES": files([s.log_file for s in mods.values()] + [os.path.join(master.LOG_DIR, "watcher.log")]),
            "TRACE_FILES": files(s.trace_file for s in mods.values())}


def render(name: str, values: Dict[str, str], dist_dir: str = DIST_DIR) -> str:
    with open(os.path.join(dist_dir, name), encoding="utf-8") as f:
        text = f.read()
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    return text


def sed_command(name: str, values: Dict[str, str], target: str, dist_dir: str = DIST_DIR) -> str:
    """The shell command that writes what `render` gives to `target`."""
    with open(os.path.join(dist_dir, name), encoding="utf-8") as f:
        template = f.read()
    exprs = []
    for key, value in values.items():
        if f"@{key}@" in template:
            value = value.replace("\\", "\\\\").replace("|", "\\|").replace("&", "\\&")
            exprs.append("-e " + shlex.quote(f"s|@{key}@|{value}|g"))
    return f"sed {' '.join(exprs)} {shlex.quote(os.path.join(dist_dir, name))} > {shlex.quote(target)}"


def crontab_lines(values: Dict[str, str], dist_dir: str = DIST_DIR) -> List[str]:
    """The sample's lines; a line whose program is not installed comes out commented."""
    out = []
    for line in render("crontab.sample", values, dist_dir).splitlines():
        m = re.search(r"\bcd (\S+) && (\S+)", line)
        if m and not line.startswith("#") and not os.path.exists(os.path.join(m.group(1), m.group(2))):
            line = f"#{line}   # not installed"
        out.append(line)
    return out


def systemd_running() -> bool:
    return os.path.isdir("/run/systemd/system")       # sd_booted(3)


def dist_files(master, mods, say: Say, install: bool, run=subprocess.run,
               targets: Optional[Dict[str, str]] = None, dist_dir: str = DIST_DIR,
               booted: Callable[[], bool] = systemd_running) -> int:
    targets = DIST_TARGETS if targets is None else targets
    values = dist_values(master, mods)
    if not os.path.isdir(dist_dir):          # a partial copy of the tree: nothing to offer, nothing wrong
        say(f"note: no {dist_dir}: no logrotate, systemd or cron files to offer")
        return 0
    for name, target in targets.items():
        text = render(name, values, dist_dir)
        try:
            with open(target, encoding="utf-8") as f:
                if f.read() == text:
                    continue
            state = "differs from " + os.path.join(dist_dir, name)
        except OSError:
            state = "is missing"
        if not install:
            say(f"{target} {state}; install it with ./Prep --install, or:")
            say("  " + sed_command(name, values, target, dist_dir)
                + (" && systemctl daemon-reload" if name.endswith(".service") else ""))
            continue
        try:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target + ".tmp", "w", encoding="utf-8") as f:
                f.write(text)
            os.chmod(target + ".tmp", 0o644)
            os.replace(target + ".tmp", target)
        except OSError as e:
            say(f"error: cannot write {target}: {e.strerror}; run ./Prep --install as root")
            return 1
        say(f"wrote {target}")
        if name.endswith(".service"):
            if booted():
                run(["systemctl", "daemon-reload"])
                say("systemctl daemon-reload done; start Watcher at boot with: systemctl enable watcher")
            else:
                say("systemd is not running here: the unit is used once it is (systemctl enable watcher)")
    say("cron: add these lines to root's crontab (crontab -e); Prep never writes it:")
    for line in crontab_lines(values, dist_dir):
        if line and not line.startswith("# "):
            say("  " + line)
    return 0

