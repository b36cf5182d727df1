#!/usr/bin/env python3
"""The rule tools of a module's rules/ folder, as in the manual (3.1.2).

Each module's rules/ holds symlinks to this file; the name it is called by
picks the tool, the folder it is called from picks the module:

  ./check-rule FILE...     syntax, ownership and the rule's own example lines
  ./check-all-rules        every rule file (enabled and -disabled), then the
                           enabled ones in the assembled ladder
  ./mkfilter               assemble the ladder and print its source
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.realpath(__file__))))

from lib.errors import UsageError, WatcherError, cli_main  # noqa: E402
from lib.rules import Filter, rule_files, run_examples  # noqa: E402


def module_of(rules_dir: str) -> str:
    name = os.path.basename(os.path.dirname(os.path.abspath(rules_dir)))
    if not name.startswith("Watch"):
        raise UsageError(f"{rules_dir}: not the rules folder of a module (modules/WatchXX/rules)")
    return name[len("Watch"):]


def check(paths, module: str, ladder=None) -> int:
    bad = 0
    for path in paths:
        try:
            problems = run_examples(path, module, ladder)
        except WatcherError as e:
            problems = [str(e)]
        for p in problems:
            print(p)
        bad += bool(problems)
        if not problems:
            print(f"{os.path.basename(path)}: ok")
    return 1 if bad else 0


def main(argv) -> int:
    tool = os.path.basename(sys.argv[0])
    rules_dir = os.path.dirname(os.path.abspath(sys.argv[0]))
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    module = module_of(rules_dir)
    if tool == "check-rule":
        if not argv:
            raise UsageError("usage: ./check-rule FILE.rule [FILE...]")
        return check([os.path.abspath(p) for p in argv], module)
    if tool == "check-all-rules":
        status = check(rule_files(rules_dir, disabled=True), module)
        if status == 0:
            ladder = Filter(rules_dir, module)
            status = check(rule_files(rules_dir), module, ladder)
            print(f"ladder: {len(ladder.files)} rule files, {len(ladder.rule_names)} rules, "
                  f"{len(ladder.superflous)} superflous strings: " + ("ok" if status == 0 else "see above"))
        return status
    if tool == "mkfilter":
        sys.stdout.write(Filter(rules_dir, module).assembled())
        return 0
    raise UsageError(f"call me as check-rule, check-all-rules or mkfilter (not {tool})")


if __name__ == "__main__":
    cli_main(main, os.path.basename(sys.argv[0]))
