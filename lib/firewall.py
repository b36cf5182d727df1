"""The firewall: every kernel change Watcher makes goes through here.

Model (DESIGN.md 'Firewall'): ipsets, each with an IPv6 twin (suffix 6), and
one iptables/ip6tables chain WATCHER jumped to from the top of INPUT:
RETURN for the whitelist first, then DROP for highjackers, dynloader sets,
custody, tarpit and blacklist.  The verbs are idempotent: `setup` twice
changes nothing, `ban` of a present entry only refreshes its timeout.
Watcher never flushes or destroys a set or chain it did not create: the sets
it created are listed in a state file, and an existing set of the wrong type
or a foreign WATCHER chain is an error, not something to take over.

Backends: `Ipset` (the kernel, through the ipset and iptables commands,
optionally prefixed, e.g. by `ip netns exec NS`), `DryRun` (logs what it
would do) and `Recording` (in memory, for unit tests).
"""
import os
import re
import shutil
import subprocess
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from lib.errors import WatcherError
from lib.ipsetstream import IpsetStream

CHAIN = "WATCHER"
MAXELEM = 1048576
MIN_HASHSIZE = 1024
BULK = 5000             # a flush of more commands than this goes through `ipset restore`
# name -> ipset type and options; order is the chain's order after the whitelist
DROP_SETS = ("highjackers", "custody", "tarpit", "blacklist")
SET_TYPES = {
    "whitelist": "hash:net",
    "highjackers": "hash:net",
    "custody": "hash:ip",
    "tarpit": "hash:ip",
    "blacklist": "hash:net",
}
INSTALL_HINT = "install it: apt-get install ipset iptables (RHEL: dnf install ipset iptables-nft)"


class FirewallError(WatcherError):
    pass


def family_sets(name: str) -> Tuple[str, str]:
    return name, name + "6"


def _create_args(name: str, base: str, family: str, entries: int = 0) -> List[str]:
    """`ipset create` arguments; a set about to hold `entries` gets a hash that fits them
    from the start (growing one entry at a time rehashes it again and again)."""
    args = [name, SET_TYPES.get(base, "hash:net"), "family", family, "maxelem", str(MAXELEM)]
    if entries > MIN_HASHSIZE * 2:
        args += ["hashsize", str(1 << (entries // 2 - 1).bit_length())]
    if base == "tarpit":
        args += ["timeout", "0"]
    return args


def chain_rules(extra_sets: Sequence[str] = (), v6: bool = False) -> List[List[str]]:
    """The WATCHER chain's rules, whitelist RETURN first."""
    sfx = "6" if v6 else ""
    rules = [["-m", "set", "--match-set", "whitelist" + sfx, "src", "-j", "RETURN"]]
    order = ["highjackers", *extra_sets, "custody", "tarpit", "blacklist"]
    rules += [["-m", "set", "--match-set", s + sfx, "src", "-j", "DROP"] for s in order]
    return rules


class Ipset:
    """The real kernel, through ipset and iptables/ip6tables."""

    def __init__(self, state_file: str, prefix: Sequence[str] = (), extra_sets: Sequence[str] = ()):
        self.prefix = list(prefix)
        self.state_file = state_file
        self.extra_sets = list(extra_sets)   # dynloader sets, hash:net, dropped like highjackers
        self.stream: Optional[IpsetStream] = None
        self._queue: List[str] = []

    # -- a module's bans: one long-lived process, commands queued until flush() --
    def keep_process(self, timeout: float = 5.0) -> None:
        """From now on tarpit, custody and release queue their command; `flush` applies the
        queue through one long-lived `ipset -` process (see IpsetStream)."""
        if self.stream is None:
            self.stream = IpsetStream(self.prefix + ["ipset", "-exist", "-"], self._apply_restore, timeout)

    def _do(self, command: str) -> None:
        if self.stream is not None:
            self._queue.append(command)
        else:
            self._run(["ipset", "-exist"] + command.split())

    def flush(self) -> int:
        """Apply the queued commands; FirewallError names those the kernel refused
        (after a second try).  Returns how many were applied."""
        queue, self._queue = self._queue, []
        if not queue:
            return 0
        # thousands at once (a restarted module re-asserting its bans): one `ipset restore`
        # applies them several times faster than the interactive process
        failed = self._apply_restore(queue) if len(queue) > BULK else self.stream.apply(queue)
        if failed:
            more = f" (and {len(failed) - 3} more)" if len(failed) > 3 else ""
            raise FirewallError(f"ipset refused {len(failed)} of {len(queue)} commands: "
                                + "; ".join(failed[:3]) + more)
        return len(queue)

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()

    def _apply_restore(self, commands: List[str]) -> List[str]:
        """Apply commands through `ipset -exist restore`, again without each line that
        fails (restore stops there); the failures."""
        failed = []
        while commands:
            r = self._run(["ipset", "-exist", "restore"], stdin="".join(c + "\n" for c in commands), check=False)
            if r.returncode == 0:
                break
            m = re.search(r"Error in line (\d+): (.*)", r.stderr)
            if not m or not 0 < int(m.group(1)) <= len(commands):
                return failed + [f"{c}: {r.stderr.strip() or 'ipset restore failed'}" for c in commands]
            k, why = int(m.group(1)), m.group(2).strip()
            # ipset sends the adds of one set together: those before the failed line may be
            # lost with it, so all but that line go again (-exist: twice does no harm)
            bad, commands = commands[k - 1], commands[:k - 1] + commands[k:]
            failed.append(f"{bad}: {why}")
            if "set with the given name does not exist" in why:     # the same for all the set's lines
                gone = bad.split()[1]
                failed += [f"{c}: {why}" for c in commands if c.split()[1] == gone]
                commands = [c for c in commands if c.split()[1] != gone]
        return failed

    # -- plumbing -------------------------------------------------------
    def _run(self, argv: List[str], stdin: Optional[str] = None, check: bool = True):
        if not self.prefix and not shutil.which(argv[0]):
            raise FirewallError(f"{argv[0]} not found; {INSTALL_HINT}")
        try:
            r = subprocess.run(self.prefix + argv, input=stdin, capture_output=True, text=True, timeout=60)
        except FileNotFoundError:
            raise FirewallError(f"{argv[0]} not found; {INSTALL_HINT}") from None
        if check and r.returncode != 0:
            msg = (r.stderr or r.stdout).strip().splitlines()
            text = msg[-1] if msg else f"exit status {r.returncode}"
            if "Operation not permitted" in text or "must be root" in text or "Permission denied" in text:
                raise FirewallError(f"{argv[0]}: {text}: run as root (or FIREWALL=dry-run)")
            raise FirewallError(f"{' '.join(argv[:3])}: {text}")
        return r

    def _restore(self, lines: Iterable[str]) -> None:
        self._run(["ipset", "-exist", "restore"], stdin="".join(l + "\n" for l in lines))

    def _created(self) -> set:
        try:
            with open(self.state_file) as f:
                return set(f.read().split())
        except OSError:
            return set()

    def _remember(self, names: Iterable[str], forget: Iterable[str] = ()) -> None:
        known = (self._created() | set(names)) - set(forget)
        os.makedirs(os.path.dirname(self.state_file), exist_ok=True)
        with open(self.state_file, "w") as f:
            f.write("\n".join(sorted(known)) + "\n")

    def existing_sets(self) -> Dict[str, Tuple[str, str, int]]:
        """name -> (type, family, entries) of every set in the kernel."""
        out = self._run(["ipset", "list", "-t"]).stdout
        sets, name, typ, fam = {}, None, "", ""
        for line in out.splitlines():
            key, _, value = line.partition(":")
            value = value.strip()
            if key == "Name":
                name, typ, fam = value, "", ""
            elif key == "Type":
                typ = value
            elif key == "Header":
                words = value.split()
                fam = words[words.index("family") + 1] if "family" in words else ""
            elif key == "Number of entries" and name:
                sets[name] = (typ, fam, int(value))
        return sets

    # -- verbs ----------------------------------------------------------
    def all_sets(self) -> List[Tuple[str, str, str]]:
        """(name, base, family) of every set Watcher uses."""
        bases = ["whitelist", *DROP_SETS[:1], *self.extra_sets, *DROP_SETS[1:]]
        return [(b + sfx, b, fam) for b in bases for sfx, fam in (("", "inet"), ("6", "inet6"))]

    def setup(self) -> List[str]:
        """Create what is missing; returns what was created (empty: nothing changed)."""
        have = self.existing_sets()
        made, lines = [], []
        for name, base, fam in self.all_sets():
            want = SET_TYPES.get(base, "hash:net")
            if name in have:
                typ, hfam, _ = have[name]
                if typ != want or hfam != fam:
                    raise FirewallError(f"ipset {name} exists as {typ} {hfam}, Watcher needs {want} {fam}: "
                                        f"it is not Watcher's; rename or destroy it first")
                continue
            lines.append("create " + " ".join(_create_args(name, base, fam)))
            made.append(name)
        if lines:
            self._restore(lines)
            self._remember(made)
        for tool, v6 in (("iptables", False), ("ip6tables", True)):
            made += self._setup_chain(tool, v6)
        return made

    def prune(self) -> List[str]:
        """Destroy the sets Watcher created and uses no more (a feed taken out of FEEDS),
        after setup() rewrote the chain without them; a set something else still refers
        to stays.  Returns what was destroyed."""
        stale = self._unused(self._created())
        if not stale:
            return []
        have = self.existing_sets()
        destroyed = self._destroy([n for n in stale if n in have])
        self._remember([], forget=[n for n in stale if n not in have] + destroyed)
        return destroyed

    def _unused(self, created: set) -> List[str]:
        """The sets of `created` (the state file's names) that Watcher uses no more."""
        wanted = {name for name, _, _ in self.all_sets()}
        return sorted(n for n in created if ":" not in n and n not in wanted)

    def _destroy(self, names: Iterable[str]) -> List[str]:
        """`ipset destroy` each set of `names`; those destroyed (one in use stays)."""
        return [n for n in names if self._run(["ipset", "destroy", n], check=False).returncode == 0]

    def _setup_chain(self, tool: str, v6: bool) -> List[str]:
        made = []
        want = [" ".join(r) for r in chain_rules(self.extra_sets, v6)]
        r = self._run([tool, "-w", "-S", CHAIN], check=False)
        if r.returncode != 0:
            self._run([tool, "-w", "-N", CHAIN])
            self._remember([f"{tool}:{CHAIN}"])
            have = []
            made.append(f"{tool} chain {CHAIN}")
        else:
            have = [l.split(None, 2)[2] for l in r.stdout.splitlines() if l.startswith(f"-A {CHAIN} ")]
        if have != want:
            ours = f"{tool}:{CHAIN}" in self._created() or all("--match-set" in l for l in have)
            if not ours:
                raise FirewallError(f"{tool} chain {CHAIN} exists with rules Watcher did not write: "
                                    f"rename it or remove it ({tool} -F {CHAIN}; {tool} -X {CHAIN})")
            self._run([tool, "-w", "-F", CHAIN])
            for rule in chain_rules(self.extra_sets, v6):
                self._run([tool, "-w", "-A", CHAIN] + rule)
            made.append(f"{tool} rules of {CHAIN}")
        if self._run([tool, "-w", "-C", "INPUT", "-j", CHAIN], check=False).returncode != 0:
            self._run([tool, "-w", "-I", "INPUT", "1", "-j", CHAIN])
            made.append(f"{tool} INPUT jump to {CHAIN}")
        return made

    def jump_present(self) -> Dict[str, bool]:
        return {tool: self._run([tool, "-w", "-C", "INPUT", "-j", CHAIN], check=False).returncode == 0
                for tool in ("iptables", "ip6tables")}

    def tarpit(self, ip: str, seconds: int, v6: bool) -> None:
        self._do(f"add tarpit{'6' if v6 else ''} {ip} timeout {int(seconds)}")

    def custody(self, ip: str, v6: bool) -> None:
        self._do(f"add custody{'6' if v6 else ''} {ip}")

    def release(self, ip: str, v6: bool, tarpit_only: bool = False) -> None:
        sfx = "6" if v6 else ""
        names = ["tarpit"] if tarpit_only else ["tarpit", "custody"]
        if self.stream is not None:
            self._queue += [f"del {n}{sfx} {ip}" for n in names]
        else:
            self._restore([f"del {n}{sfx} {ip}" for n in names])

    def release_all(self, ips: Iterable[str]) -> None:
        """Take many addresses out of tarpit and custody in one `ipset restore`
        (ExpireXX); sets that do not exist (Watcher never started) are skipped."""
        have = self.existing_sets()
        lines = [f"del {n}{'6' if ':' in ip else ''} {ip}" for ip in ips for n in ("tarpit", "custody")]
        lines = [l for l in lines if l.split()[1] in have]
        if lines:
            self._restore(lines)

    def chain_counters(self) -> Dict[str, List[Tuple[int, int, str, str]]]:
        """tool -> (packets, bytes, target, match-set) per rule of the WATCHER chain,
        from `iptables -L WATCHER -v -x -n`; a tool without the chain is left out."""
        out = {}
        for tool in ("iptables", "ip6tables"):
            r = self._run([tool, "-w", "-L", CHAIN, "-v", "-x", "-n"], check=False)
            if r.returncode != 0:
                continue
            rows = []
            for line in r.stdout.splitlines()[2:]:
                words = line.split()
                if len(words) < 3 or not words[0].isdigit():
                    continue
                where = words.index("match-set") if "match-set" in words else -1
                rows.append((int(words[0]), int(words[1]), words[2],
                             words[where + 1] if 0 <= where < len(words) - 1 else ""))
            out[tool] = rows
        return out

    def load(self, base: str, entries_v4: Iterable[str], entries_v6: Iterable[str],
             timeouts: Optional[Dict[str, int]] = None) -> Dict[str, int]:
        """Replace the contents of a set pair at once: build aside, then swap."""
        timeouts = timeouts or {}
        lines, counts = [], {}
        for sfx, fam, entries in (("", "inet", entries_v4), ("6", "inet6", entries_v6)):
            name, tmp = base + sfx, f"{base}{sfx}-new"
            entries = entries if isinstance(entries, (list, tuple, set, dict)) else list(entries)
            lines += [f"destroy {tmp}", "create " + " ".join(_create_args(tmp, base, fam, len(entries)))]
            n = 0
            for e in entries:
                lines.append(f"add {tmp} {e}" + (f" timeout {timeouts[e]}" if e in timeouts else ""))
                n += 1
            lines += [f"swap {tmp} {name}", f"destroy {tmp}"]
            counts[name] = n
        # `destroy` of a missing temp set fails the whole restore: leave out those not there
        lines = _drop_first_destroys(lines, self.existing_sets())
        try:
            self._restore(lines)
        except FirewallError:
            for sfx in ("", "6"):
                self._run(["ipset", "destroy", f"{base}{sfx}-new"], check=False)
            raise
        return counts

    def sizes(self) -> Dict[str, int]:
        have = self.existing_sets()
        return {name: have[name][2] for name, _, _ in self.all_sets() if name in have}

    def teardown(self) -> List[str]:
        """Remove the chain and the sets Watcher created (stop --flush)."""
        created, removed = self._created(), []
        for tool in ("iptables", "ip6tables"):
            if f"{tool}:{CHAIN}" in created or self._run([tool, "-w", "-S", CHAIN], check=False).returncode == 0:
                while self._run([tool, "-w", "-D", "INPUT", "-j", CHAIN], check=False).returncode == 0:
                    pass
                if f"{tool}:{CHAIN}" in created:
                    self._run([tool, "-w", "-F", CHAIN], check=False)
                    if self._run([tool, "-w", "-X", CHAIN], check=False).returncode == 0:
                        removed.append(f"{tool} chain {CHAIN}")
        have = self.existing_sets()
        ours = [name for name, _, _ in self.all_sets() if name in created] + self._unused(created)
        removed += self._destroy([name for name in ours if name in have])
        try:
            os.unlink(self.state_file)
        except OSError:
            pass
        return removed


def _drop_first_destroys(lines: List[str], have: dict) -> List[str]:
    """Leave out 'destroy X-new' of a leftover set that does not exist."""
    out, created = [], set()
    for line in lines:
        if line.startswith(("destroy ", "create ")):       # (100,000 'add' lines need no look)
            words = line.split()
            if words[0] == "create":
                created.add(words[1])
            elif words[1] not in have and words[1] not in created:
                continue
        out.append(line)
    return out


class DryRun:
    """Decides everything, touches nothing: each kernel change is only logged."""

    def __init__(self, say: Callable[[str], None] = print, extra_sets: Sequence[str] = ()):
        self.say = say
        self.extra_sets = list(extra_sets)

    def setup(self) -> List[str]:
        self.say(f"dry-run: would create the Watcher ipsets and chain {CHAIN}")
        return []

    def prune(self) -> List[str]:
        return []

    def jump_present(self) -> Dict[str, bool]:
        return {}

    def keep_process(self, timeout: float = 5.0) -> None:     # each verb is applied at once here
        pass

    def flush(self) -> int:
        return 0

    def close(self) -> None:
        pass

    def tarpit(self, ip: str, seconds: int, v6: bool) -> None:
        self.say(f"dry-run: ipset -exist add tarpit{'6' if v6 else ''} {ip} timeout {int(seconds)}")

    def custody(self, ip: str, v6: bool) -> None:
        self.say(f"dry-run: ipset -exist add custody{'6' if v6 else ''} {ip}")

    def release(self, ip: str, v6: bool, tarpit_only: bool = False) -> None:
        self.say(f"dry-run: ipset del {'tarpit' if tarpit_only else 'tarpit/custody'}{'6' if v6 else ''} {ip}")

    def release_all(self, ips: Iterable[str]) -> None:
        ips = list(ips)
        if ips:
            self.say(f"dry-run: ipset del tarpit/custody (and their 6 twins) of {len(ips)} addresses")

    def chain_counters(self) -> Dict[str, List[Tuple[int, int, str, str]]]:
        return {}

    def load(self, base, entries_v4, entries_v6, timeouts=None) -> Dict[str, int]:
        counts = {base: len(list(entries_v4)), base + "6": len(list(entries_v6))}
        self.say(f"dry-run: would load {counts[base]} + {counts[base + '6']} entries into {base}/{base}6")
        return counts

    def sizes(self) -> Dict[str, int]:
        return {}

    def teardown(self) -> List[str]:
        self.say(f"dry-run: would remove Watcher's ipsets and chain {CHAIN}")
        return []


class Recording(DryRun):
    """In-memory sets for unit tests: what a test can assert on without a kernel."""

    def __init__(self):
        super().__init__(say=lambda _: None)
        self.sets: Dict[str, Dict[str, Optional[int]]] = {}
        self.calls: List[tuple] = []

    def _set(self, name):
        return self.sets.setdefault(name, {})

    def tarpit(self, ip, seconds, v6):
        self.calls.append(("tarpit", ip, int(seconds)))
        self._set("tarpit" + ("6" if v6 else ""))[ip] = int(seconds)

    def custody(self, ip, v6):
        self.calls.append(("custody", ip))
        self._set("custody" + ("6" if v6 else ""))[ip] = None

    def release(self, ip, v6, tarpit_only=False):
        self.calls.append(("release", ip, tarpit_only))
        sfx = "6" if v6 else ""
        for n in (["tarpit"] if tarpit_only else ["tarpit", "custody"]):
            self._set(n + sfx).pop(ip, None)

    def release_all(self, ips):
        for ip in ips:
            self.release(ip, ":" in ip)

    def load(self, base, entries_v4, entries_v6, timeouts=None):
        timeouts = timeouts or {}
        self.sets[base] = {e: timeouts.get(e) for e in entries_v4}
        self.sets[base + "6"] = {e: timeouts.get(e) for e in entries_v6}
        return {base: len(self.sets[base]), base + "6": len(self.sets[base + "6"])}

    def sizes(self):
        return {k: len(v) for k, v in self.sets.items()}


def ready(fw, say: Callable[[str], None]) -> None:
    """setup() and prune(): the sets and chain the settings ask for, and no others of Watcher's."""
    made = fw.setup()
    if made:
        say("created: " + ", ".join(made))
    gone = fw.prune()
    if gone:
        say("removed: " + ", ".join(gone) + " (no feed of that name in FEEDS any more)")


def backend(settings, say: Callable[[str], None] = print, prefix: Sequence[str] = (), feeds: bool = True):
    """The firewall the settings ask for, with a set pair per feed of the FEEDS file
    (feeds=False: without them, for a module that only bans and releases addresses)."""
    extra = []
    if feeds:
        from lib.lists import feed_sets     # here, not at the top: lib.lists builds on this module
        extra = feed_sets(settings)
    if settings.FIREWALL == "dry-run":
        return DryRun(say, extra_sets=extra)
    return Ipset(os.path.join(settings.RUN_DIR, "firewall.created"), prefix=prefix, extra_sets=extra)
