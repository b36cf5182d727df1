"""The corpus files of tests/data: '## message type' headings, then 'EXPECT<TAB>LINE' lines."""
import glob
import os

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


MODULES = [t for t in ("LG", "MX", "MB", "WB") if os.path.isdir(os.path.join(ROOT, "modules", f"Watch{t}", "rules"))]


def module_lines(token):
    """Every example line of module `token`'s rule files (disabled ones too), and every line of
    every corpus."""
    from lib.rules import examples, rule_files     # conftest has put the checkout on sys.path
    lines = [ex.line for path in rule_files(os.path.join(ROOT, "modules", f"Watch{token}", "rules"), disabled=True)
             for ex in examples(path)]
    for corpus in sorted(glob.glob(os.path.join(ROOT, "tests", "data", "*-corpus.txt"))):
        lines += [line for _, _, _, line in load_corpus(corpus)[0]]
    return lines
