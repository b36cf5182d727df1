"""The corpus files of tests/data: '## message type' headings, then 'EXPECT<TAB>LINE' lines."""


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
