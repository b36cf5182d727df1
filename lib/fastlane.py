"""The fast lane of `watcher.py test`: a plain rule's verdict read with one regex match.

`watcher.py test` needs of each line only its rule, its action and, for an
inject, the address text.  In a dispatched ladder (lib.ladder.dispatch)
most rules are plain: their test holds exactly when the message begins with
one of some strings (`Pattern in REPLY and begins(REPLY, Pattern)`: a
message beginning with the pattern holds it, and so does the line), and
they return ignore(), success(...) or inject(H(message(REPLY))) with H an
extract helper that has a regex twin below.  For the rules the dispatch
keeps for a message start, one regex with an alternative per rule, in the
ladder's order, tells which rule decides (the first alternative that
matches is the first rule whose test holds) and cuts the address.

A rule that is not plain but still needs its message to begin with some
strings is an *escape*: when its alternative matches, the ladder decides
the line.  So does every line the lane cannot read as the rules would (not
ASCII, long enough for sshd's cut, a <PRI> or RFC 5424 header, a message
rsyslog or sshd wrapped), and every line of a message start among whose
rules one runs for every line.  tests/test_ladder.py holds the lane to the
ladder on the modules' corpora and the twins to the helpers.
"""
import ast
import re
from collections import Counter as Tally
from operator import methodcaller
from typing import Callable, Dict, Hashable, List, Optional, Tuple

from lib import extract, ladder

LIMIT = extract.SSHD_CUT                    # a shorter message is never one sshd may have cut
# Regex twins of extract helpers on an ASCII message shorter than LIMIT: group 1 is the
# address word (empty: none).
TWINS = {
    # ssh2_peer, not keyed: the ' from ADDR port N ssh2' that ends the message (it is unique)
    "ssh2_peer": ".* from (%s+) port [0-9]{1,5} ssh2(?: \\[preauth\\])?\\Z" % extract.WORD,
    # from_end: the last ' from ' (none starts after its space); ADDR or ADDR port N ends the message
    "from_end": ".* (?!.* from )from (%s*)(?: port [0-9]{1,5})?\\Z" % extract.WORD,
}
TOTAL = {"ssh2_peer", "from_end"}           # helpers with an answer for any text: they never raise
NEEDED = {"inject", "success", "ignore", "IGNORE", "SUPERFLOUS", "RULE", ladder.BEGINS, ladder.MESSAGE} | TOTAL
IGNORED, INJECTED, ESCAPE = 0, 1, 2
Key = Hashable
Rule = Tuple[int, Tuple[str, ...], str, Optional[str]]     # kind, prefixes, rule name, twin


def _keyed(prefix: str) -> Optional[bool]:
    """Whether ssh2_peer reads a message beginning with `prefix` as keyed (publickey or
    hostbased: key information may follow the peer); None when the prefix cannot tell."""
    head = prefix.find(" for ")
    if head < 0:
        return None
    return head > 0 and prefix.endswith((" publickey", " hostbased"), 0, head)


def _on_message(node) -> Optional[str]:
    """H of an expression H(message(REPLY)), else None."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and len(node.args) == 1 \
            and not node.keywords:
        inner = node.args[0]
        if isinstance(inner, ast.Call) and isinstance(inner.func, ast.Name) and inner.func.id == ladder.MESSAGE \
                and len(inner.args) == 1 and not inner.keywords and isinstance(inner.args[0], ast.Name) \
                and inner.args[0].id == ladder.REPLY:
            return node.func.id
    return None


def _rule(stmt: ast.If, env) -> Optional[Rule]:
    """How the lane reads a rule; None when its test does not need a message start."""
    need = ladder.requires(stmt.test, env)
    if not need:
        return None
    prefixes = tuple(sorted(need))
    escape = (ESCAPE, prefixes, "", None)
    name = env.get("RULE")
    if not (len(stmt.body) == 1 and isinstance(stmt.body[0], ast.Return) and name and len(name) == 1):
        return escape
    tests = stmt.test.values if isinstance(stmt.test, ast.BoolOp) and isinstance(stmt.test.op, ast.And) \
        else [stmt.test]
    for test in tests:
        held = ladder.contains_strings(test, env)
        if held and all(held[0] in p for p in prefixes):
            continue                        # a message beginning with a prefix holds it
        if set(ladder.begins_strings(test, env) or ()) == set(prefixes):
            continue
        return escape
    call = stmt.body[0].value               # verdict(RULE, REPLY, ...): the assembler passes both
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and not call.keywords
            and len(call.args) in (2, 3)):
        return escape
    verdict, helper = call.func.id, (_on_message(call.args[2]) if len(call.args) == 3 else None)
    if verdict == "ignore" and len(call.args) == 2:
        return IGNORED, prefixes, name[0], None
    if verdict == "success" and (len(call.args) == 2 or helper in TOTAL):
        return IGNORED, prefixes, name[0], None         # the summary counts a success as ignored
    if verdict == "inject" and (helper == "from_end"
                                or (helper == "ssh2_peer" and all(_keyed(p) is False for p in prefixes))):
        return INJECTED, prefixes, name[0], helper
    return escape


_NEVER = re.compile("(?!)").match         # a lane without rules: no line matches


class Lane:
    """The rules the dispatch keeps for one message start as one regex: .match(message)
    -> m, and alts[m.lastindex] is (kind, rule name, address group); prefixes[i] are the
    message starts of the i-th rule."""

    def __init__(self, rules: List[Rule], start: str, width: int):
        parts, self.alts, self.prefixes, group = [], {}, [], 0
        for kind, prefixes, name, twin in rules:
            mine = [p for p in prefixes if p[:width] == start]  # another start has a lane of its own
            self.prefixes.append(tuple(mine))
            alt = "(?=" + "|".join(map(re.escape, mine)) + ")"
            addr = None
            if kind == INJECTED:
                alt += "(?:" + TWINS[twin] + ")?"
                group += 1
                addr = group
            group += 1
            self.alts[group] = (kind, name, addr)
            parts.append(alt + "()")        # closed last: m.lastindex names the alternative
        self.match = re.compile("|".join(parts)).match if parts else None


class FastLane:
    """The lane of a Filter; .usable is False when its ladder has none."""

    def __init__(self, flt):
        self.usable = False
        if flt.plan is None:
            return
        stmts, unstable = ladder.read(flt.function)
        if NEEDED & unstable or not ladder.ends_with_tail([s for s, _ in stmts]):
            return
        self.width = flt.plan.width
        self.lanes: Dict[str, Optional[Lane]] = {}
        for start, keep in flt.plan.table.items():
            rules = self._rules(stmts, keep)
            self.lanes[start] = None if rules is None else Lane(rules, start, self.width)
        rules = self._rules(stmts, flt.plan.default)
        self.default = None if rules is None else Lane(rules, "", self.width)
        self.usable = True

    @staticmethod
    def _rules(stmts, keep: List[int]) -> Optional[List[Rule]]:
        """The lane's reading of the statements `keep` (the tail, which the dispatch keeps for
        every message, last); None when one runs for every line."""
        rules = []
        for i in keep[:-2]:
            stmt, env = stmts[i]
            if ladder.constant_name(stmt) or ladder.inert(stmt):
                continue
            rule = _rule(stmt, env) if isinstance(stmt, ast.If) and not stmt.orelse else None
            if rule is None:
                return None
            rules.append(rule)
        return rules

    def _bind(self, ignored: Callable[[str], Key]):
        """(lanes.get, default) with each lane as (match, [group -> (kind, key or rule, address
        group, keys: address text -> key)], (prefixes, key) of a lane whose one rule is ignored
        whenever the message begins with one of them)."""
        def bind(lane: Optional[Lane]):
            if lane is None:
                return None
            alts = [None] * (max(lane.alts, default=0) + 1)
            for g, (kind, rule, addr) in lane.alts.items():
                alts[g] = (kind, ignored(rule) if kind == IGNORED else rule, addr, {})
            kinds = [alt for alt in alts if alt is not None]
            one = (lane.prefixes[0], kinds[0][1]) if len(kinds) == 1 and kinds[0][0] == IGNORED else None
            return lane.match or _NEVER, alts, one
        return {k: bind(v) for k, v in self.lanes.items()}.get, bind(self.default)

    def counter(self, slow: Callable[[str], Key], superflous: Callable[[str], object],
                ignored: Callable[[str], Key], injected: Callable[[str, Optional[str]], Key],
                fell_through: Tuple[Key, Key]) -> Callable[[List[str]], Dict[Key, int]]:
        """count(lines): how many of `lines` (without newlines or carriage returns) got each
        verdict key: ignored(rule), injected(rule, address text or None), fell_through[0] (no
        rule, a superflous string) or [1] (untreated), or slow(line): the ladder's own."""
        get, default = self._bind(ignored)
        width = self.width
        sup_key, untreated = fell_through

        def count(lines: List[str]) -> Dict[Key, int]:
            out: List[Key] = []
            append = out.append
            if lines and (max(map(len, lines)) >= LIMIT or not all(map(str.isascii, lines))
                          or any(map(methodcaller("startswith", "<"), lines))):
                plain, lines = lines, []        # the lines the lane can read, the others to the ladder
                for line in plain:
                    if line[:1] == "<" or len(line) >= LIMIT or not line.isascii():
                        append(slow(line))
                    else:
                        lines.append(line)
            for line in lines:
                start = line.find(": ") + 2     # the message, as extract.parse_message cuts it
                if start == 1:
                    start = 0
                lead = line[start:start + width]
                lane = get(lead, default)
                if lane is None or lead[:1] in extract.WRAPPED_FIRST:   # maybe a message rsyslog or sshd wrapped
                    append(slow(line))
                    continue
                one = lane[2]
                if one is not None and line.startswith(one[0], start):
                    append(one[1])
                    continue
                if one is not None:
                    append(sup_key if superflous(line) else untreated)
                    continue
                m = lane[0](line, start)
                if m is None:                   # no rule decides: the superflous strings do
                    append(sup_key if superflous(line) else untreated)
                    continue
                kind, what, addr, keys = lane[1][m.lastindex]
                if kind == IGNORED:
                    append(what)
                elif kind == INJECTED:
                    text = m.group(addr) or None
                    key = keys.get(text)
                    if key is None:
                        if len(keys) >= 100000:
                            keys.clear()
                        key = keys[text] = injected(what, text)
                    append(key)
                else:
                    append(slow(line))
            return Tally(out)
        return count
