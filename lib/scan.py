"""Bulk matching for `watcher.py test`: a whole log's verdicts, the ladder run only where it can decide.

Model: a rule decides a line only when its test holds, and the tests of
Watcher's rules begin with plain substring checks.  From the assembled
ladder, `lib.ladder.guards` derives each rule's *guard*: strings one
of which its line holds, and most often strings one of which its message
begins with (None when the rules cannot be read that way: then every line
goes down the ladder).

`Counter` takes a log in large blocks and searches each block in C for
the guards and for the superflous strings.  Message starts are searched
after ': ' and at line starts (a regex whose fixed first characters the
engine skips to at memchr speed); the strings lines hold, with one regular
expression whose every branch is anchored at one of a few characters that
are rare in that log.  Only the lines found are cut out and decided (by
the ladder, or together by `decide_many`: lib.fastlane); the others are
counted as ignored (superflous) or untreated without being looked at one
by one.  The counts are exactly those of running the ladder on every
line.  `count_file` splits a large file among forked processes, one per CPU.
"""
import os
import re
from collections import Counter as Tally
from itertools import repeat
from operator import add
from typing import Callable, Dict, FrozenSet, Hashable, Iterable, Iterator, List, Optional, Sequence, Tuple

from lib.ladder import Guard

BLOCK = 1 << 20                 # bytes read at a time
SAMPLE = 256 << 10              # the start of a log that chooses how to search it
RARITY_SAMPLE = 16 << 10        # the part of it whose characters choose the search anchors


# ---- one regular expression for 'holds one of these strings' --------------
def contains_regex(strings: Iterable[str], sample: str = "") -> "re.Pattern":
    """A regex whose search finds a place where one of `strings` occurs (exactly).

    Every branch starts with one of a few characters that are rare in
    `sample` and that together occur in every string (a greedy weighted set
    cover); the part of a string before that character is checked by a
    look-behind.  All branches start with a literal, so the regex engine
    skips in C every position that holds none of these characters.
    """
    strings = sorted(set(s for s in strings if s))
    counted = Tally(sample[:RARITY_SAMPLE])         # one pass in C
    freq = {c: counted[c] + 1 for c in set("".join(strings))}
    uncovered, anchors = set(strings), []
    while uncovered:
        best = min(set("".join(uncovered)), key=lambda c: (freq[c] / sum(c in s for s in uncovered), c))
        anchors.append(best)
        uncovered = {s for s in uncovered if best not in s}
    groups: Dict[str, list] = {}
    for s in strings:
        c = min((a for a in anchors if a in s), key=lambda a: freq[a])
        j = s.index(c)
        rest = "(?<=" + re.escape(s[:j + 1]) + ")" if j else ""
        groups.setdefault(c, []).append(rest + re.escape(s[j + 1:]))
    branches = [re.escape(c) + (alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")")
                for c, alts in sorted(groups.items())]
    return re.compile("|".join(branches) if branches else "(?!)")


def starts_regex(strings: Iterable[str]) -> str:
    """A regex matching, where it is tried, the start of a text that begins with one of
    `strings`: a tree of their characters, so that the engine looks at each character
    once and tries few branches (an alternation of the strings tries every one)."""
    strings = sorted(set(strings))
    if "" in strings:
        return ""
    # a string beginning with another adds nothing
    heads = [s for i, s in enumerate(strings) if not any(s.startswith(o) for o in strings[:i])]

    def tree(words: List[str]) -> str:
        if words == [""]:
            return ""
        groups: Dict[str, List[str]] = {}
        for w in words:
            groups.setdefault(w[0], []).append(w[1:])
        parts = [re.escape(c) + tree(rest) for c, rest in sorted(groups.items())]
        return parts[0] if len(parts) == 1 else "(?:" + "|".join(parts) + ")"
    return tree(heads) if heads else "(?!)"


def _line_spans(text: str, matches: Iterator["re.Match"]) -> Tuple[List[int], List[int]]:
    """[start, end) of the line of each match (a match that runs to its line's end), in C."""
    found = list(matches)
    return (list(map(add, map(text.rfind, repeat("\n"), repeat(0), map(re.Match.start, found)), repeat(1))),
            list(map(re.Match.end, found)))


def _fewest(strings: Iterable[str]) -> FrozenSet[str]:
    """The strings without those holding another: a line holds one of these exactly when it
    holds one of `strings`."""
    strings = set(strings)
    return frozenset(s for s in strings if not any(o != s and o in s for o in strings))


# ---- the bulk pass -----------------------------------------------------------
def blocks(stream, size: int = BLOCK) -> Iterator[str]:
    """The stream's text in large pieces that end at a line end (the last one may not):
    NULs dropped and bad UTF-8 replaced, as `watcher.py test` reads each line."""
    rest = b""
    while True:
        chunk = stream.read(size)
        if not chunk:
            break
        chunk = rest + chunk
        cut = chunk.rfind(b"\n") + 1
        if cut == 0:
            rest = chunk
            continue
        rest = chunk[cut:]
        yield chunk[:cut].replace(b"\0", b"").decode("utf-8", "replace")
    if rest:
        yield rest.replace(b"\0", b"").decode("utf-8", "replace")


Key = Hashable


class Counter:
    """Counts the verdict keys of a log's lines, running the ladder (`decide`) only on
    the lines that hold a guard; the others count as `ignored` (holding a superflous
    string) or `untreated`.  A block with a line holding `exact_prefix` (which `strip`
    takes off before the ladder sees the line: a string found may be in it) is decided
    line by line."""

    def __init__(self, guards: Optional[Sequence[Guard]], superflous: Iterable[str],
                 decide: Callable[[str], Key], ignored: Key, untreated: Key, exact_prefix: str = "",
                 strip: Callable[[str], str] = lambda line: line,
                 decide_many: Optional[Callable[[List[str]], Dict[Key, int]]] = None):
        self.rules, self.superflous = guards, tuple(s for s in superflous if s)
        self.guards = None if guards is None else _fewest({s for g in guards for s in g.holds})
        self.decide, self.ignored, self.untreated, self.prefix = decide, ignored, untreated, exact_prefix
        self.strip = strip
        self.decide_many = decide_many or (lambda lines: Tally(map(decide, lines)))
        self.counts: Dict[Key, int] = Tally()
        # built by prepare(): the searches, and what chose them
        self._sample = ""
        self._guard = self._sup_lines = self._colon = self._at_line = None
        self._begins: Tuple[str, ...] = ()
        self._holds: Tuple[str, ...] = ()
        self._present: Dict[Tuple[str, ...], Callable] = {}

    def prepare(self, sample: str) -> None:
        """Build the searches, their anchors chosen by the characters of `sample`."""
        if self.rules is None:
            return
        self._sample = sample
        sup = contains_regex(self.superflous, sample).pattern if self.superflous else "(?!)"
        # one match per line that holds a superflous string: the match runs to the line's end
        self._sup_lines = re.compile("(?:" + sup + ")()[^\n]*").findall
        # the message starts, searched after ': ' (the usual header's end, sshd's 'error: ', rsyslog's
        # 'message repeated N times: [ ') and at line starts, instead of the strings a rule's line holds
        # when those are not much rarer in the sample
        begins, holds = set(), set()
        lines = sample.count("\n") + 1
        for g in self.rules:
            if g.begins is not None and all(g.begins) and (
                    all(any(h in b for h in g.holds) for b in g.begins)
                    or sum(sample.count(": " + b) + sample.count("\n" + b) for b in g.begins)
                    <= sum(map(sample.count, g.holds)) + lines // 100):
                begins |= g.begins
            else:
                holds |= g.holds
        if begins:
            tree = starts_regex(begins)
            self._colon = re.compile(": (?:" + tree + "|\\[ " + tree + ")[^\n]*").finditer
            self._at_line = re.compile("\n" + tree + "[^\n]*").finditer
            self._begins = tuple(sorted(begins))
            self._holds = tuple(sorted(_fewest(holds)))

    def _candidates(self, text: str) -> Tuple[List[int], List[int]]:
        """[start, end) of each line of `text` holding a guard (or beginning with a rule's
        message start), in order."""
        if self._colon is None or ("<" in text and (text.startswith("<") or "\n<" in text)):
            if self._guard is None:         # one match per line that holds a guard, to the line's end
                self._guard = re.compile("(?:" + contains_regex(self.guards, self._sample).pattern + ")[^\n]*").finditer
            return _line_spans(text, self._guard(text))     # a <PRI> header: the message begins elsewhere
        starts, ends = _line_spans(text, self._colon(text))
        more = [(m.start() + 1, m.end()) for m in self._at_line(text)]
        if text.startswith(self._begins):
            nl = text.find("\n")
            more.append((0, nl if nl >= 0 else len(text)))
        present = tuple(h for h in self._holds if h in text)
        if present:
            search = self._present.get(present)
            if search is None:
                search = self._present[present] = re.compile("(?:" + contains_regex(present).pattern + ")[^\n]*").finditer
            more += zip(*_line_spans(text, search(text)))
        if more:                        # every match runs to its line's end: one end per start
            spans = dict(zip(starts, ends))
            spans.update(more)
            starts = sorted(spans)
            ends = list(map(spans.__getitem__, starts))
        return starts, ends

    def add(self, text: str) -> None:
        counts, decide = self.counts, self.decide
        if self.rules is None or "\r" in text or (self.prefix and self.prefix in text):
            lines, strip = text.split("\n"), self.strip
            if text.endswith("\n"):
                lines.pop()
            counts.update(decide(strip(line.rstrip("\r"))) for line in lines)
            return
        if self._sup_lines is None:
            self.prepare(text[:SAMPLE])
        # the lines holding a guard, cut out in C: [start, end) of each, the start found
        # back from the match, the end by the search's [^\n]*
        starts, ends = self._candidates(text)
        cut = text.__getitem__
        counts.update(self.decide_many(list(map(cut, map(slice, starts, ends)))))
        # the other lines: a superflous string makes them ignored, else untreated.  The
        # text without the decided lines (each left as an empty line) reads as those lines alone
        ends.insert(0, 0)
        starts.append(len(text))
        others = "".join(map(cut, map(slice, ends, starts)))
        ignored = len(self._sup_lines(others))
        decided = len(ends) - 1
        rest = others.count("\n") + (0 if text.endswith("\n") else 1) - decided - ignored
        for key, n in ((self.ignored, ignored), (self.untreated, rest)):
            if n:
                counts[key] = counts.get(key, 0) + n


def count_stream(counter: Counter, stream) -> Dict[Key, int]:
    for text in blocks(stream):
        counter.add(text)
    return counter.counts


class _Part:
    """Bytes start..end of a file descriptor, read with pread: no shared file offset."""

    def __init__(self, fd: int, start: int, end: int):
        self.fd, self.pos, self.end = fd, start, end

    def read(self, size: int) -> bytes:
        data = os.pread(self.fd, min(size, self.end - self.pos), self.pos) if self.pos < self.end else b""
        self.pos += len(data)
        return data


def count_file(counter: Counter, fd: int, jobs: int = 1,
               reduce: Callable[[Dict[Key, int]], Dict[Key, int]] = dict) -> Dict[Key, int]:
    """reduce(the counts) of a regular file (an open descriptor), split at line ends into
    `jobs` parts counted by forked processes at once (this process counts the first part).
    `reduce` must add up: the reduced counts of the parts are added."""
    import pickle                   # the counts of the forked processes come back pickled
    size = os.fstat(fd).st_size
    counter.prepare(os.pread(fd, SAMPLE, 0).replace(b"\0", b"").decode("utf-8", "replace"))
    cuts = [0]
    for k in range(1, jobs):
        at = max(cuts[-1], size * k // jobs)
        while at < size:                # to the next line end
            chunk = os.pread(fd, 65536, at)
            nl = chunk.find(b"\n")
            if nl >= 0:
                at += nl + 1
                break
            at += len(chunk)
        cuts.append(min(at, size))
    cuts.append(size)
    parts = [(a, b) for a, b in zip(cuts, cuts[1:]) if b > a] or [(0, 0)]
    children = []
    for a, b in parts[1:]:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:                    # the child: count its part, send the counts, leave at once
            code = 1
            try:
                os.close(r)
                for text in blocks(_Part(fd, a, b)):
                    counter.add(text)
                with os.fdopen(w, "wb") as out:
                    pickle.dump(reduce(counter.counts), out)
                code = 0
            finally:
                os._exit(code)
        os.close(w)
        children.append((pid, r))
    for text in blocks(_Part(fd, *parts[0])):
        counter.add(text)
    total = reduce(counter.counts)
    for pid, r in children:
        with os.fdopen(r, "rb") as inp:
            data = inp.read()
        _, status = os.waitpid(pid, 0)
        if status != 0 or not data:
            raise RuntimeError(f"a counting process failed (status {status})")
        for key, n in pickle.loads(data).items():
            total[key] = total.get(key, 0) + n
    return total
