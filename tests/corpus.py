"""The corpus files of tests/data: '## message type' headings, then 'EXPECT<TAB>LINE' lines."""
import glob
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_corpus(path):
    """[(lineno, section, expect, line)] and {section: count of lines}."""
    cases, sections, section = [], {}, None
    with open(path, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            raw = raw.rstrip("\n")
            if raw.startswith("## "):
                section = raw[3:].strip()
                sections[section] = 0
                continue
            if not raw.strip() or raw.startswith("#"):
                continue
            expect, tab, line = raw.partition("\t")
            assert tab, f"{path}:{n}: no TAB between EXPECT and LINE"
            assert section, f"{path}:{n}: line before the first '## type' heading"
            sections[section] += 1
            cases.append((n, section, expect, line))
    return cases, sections


_EXAMPLE = re.compile(r"^#\s*example:\s?(.*?)\s+=>\s+(\S+)\s*$")
MODULES = [t for t in ("LG", "MX", "MB", "WB") if os.path.isdir(os.path.join(ROOT, "modules", f"Watch{t}", "rules"))]


def module_lines(token):
    """Every example line of module `token`'s rule files, and every line of every corpus."""
    lines = []
    for path in glob.glob(os.path.join(ROOT, "modules", f"Watch{token}", "rules", "[0-9]*.rule*")):
        with open(path, encoding="utf-8") as f:
            lines += [m.group(1) for m in map(_EXAMPLE.match, (l.strip() for l in f)) if m]
    for corpus in glob.glob(os.path.join(ROOT, "tests", "data", "*-corpus.txt")):
        with open(corpus, encoding="utf-8") as f:
            lines += [l.rstrip("\n").partition("\t")[2] for l in f if "\t" in l and not l.startswith("#")]
    return lines
