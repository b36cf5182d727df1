"""Rules and mkfilter: the ordered ladder of `.rule` snippets as one function.

A rule file is the body of the filter function, in the spirit of the
original bash rules: it names itself (`RULE = "root-login"`), sets a plain
`Pattern` and decides in one line, `if Pattern in REPLY: return inject()`.
Files `rules/NNN-name.rule` run in numeric order; the first rule that
returns a verdict wins.  `NNN-name.rule-disabled` files are skipped.  When
no rule decides, a line holding one of the strings of `rules/superflous_map`
is ignored quietly; any other line is UNTREATED.

Each file is compiled on its own under its real path first, so a mistake
reads `rules/170-NOQUEUE.rule:3: invalid syntax`; then the ladder is
assembled into one function whose source is kept and can be printed.
Calls to the verdict functions get the current RULE and REPLY passed in by
the assembler, so a rule writes `inject()` and nothing more.  Rules are
code run as root: a file (or the rules folder) that another user owns or
that group or others can write is refused.

Example lines ride along in the file:
    # example: <a log line> => 203.0.113.5      (the rule must yield that address)
    # example: <a log line> => none             (the rule must not inject it)
"""
import ast
import copy
import glob
import os
import re
import stat
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

from lib import extract, ladder, mailfields, weblog
from lib.addresses import parse_peer
from lib.errors import WatcherError, located, read_text

VERDICTS = ("inject", "forward", "success", "ignore")
_EXAMPLE = re.compile(r"^#\s*example:\s?(.*?)\s+=>\s+(\S+)\s*$")
_RULE_FILE = re.compile(r"^\d{3}-[\w.+-]+\.rule(-disabled)?$")


class Verdict(NamedTuple):
    action: str                 # inject, forward, success, ignore
    rule: Optional[str]
    ip: Optional[str]           # text as the rule cut it; validated by the caller
    port: Optional[int] = None
    to: Optional[str] = None    # forward target module
    vhost: Optional[str] = None     # WatchWB: the virtual host the request was for


IGNORE = Verdict("ignore", None, None)
_new_verdict = tuple.__new__        # Verdict(...) without the keyword handling: the hot path makes one per match
# where inject() without an address finds the peer, per module
DEFAULT_PEER = {"LG": extract.from_port, "MX": mailfields.postfix_client, "MB": mailfields.mailbox_peer}


class RuleError(WatcherError):
    pass


class Example(NamedTuple):
    path: str
    lineno: int
    line: str
    expect: Optional[str]       # address, or None for 'none'


def check_owner(path: str, euid: Optional[int] = None) -> None:
    """Refuse code that someone else could have changed."""
    euid = os.geteuid() if euid is None else euid
    try:
        st = os.stat(path)
    except OSError as e:
        raise RuleError(located(path, None, f"cannot read: {e.strerror}")) from None
    if st.st_uid != euid and st.st_uid != 0:
        raise RuleError(located(path, None, f"owned by uid {st.st_uid}, not by the user running Watcher "
                                            f"(uid {euid}): chown it or remove it"))
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise RuleError(located(path, None, f"writable by group or others (mode {stat.S_IMODE(st.st_mode):o}): "
                                            f"chmod go-w {path}"))


def _verdict_functions(module: str) -> Dict[str, Callable]:
    default = DEFAULT_PEER.get(module, extract.from_port)

    def inject(RULE, REPLY, ip=None, port=None, vhost=None):
        if ip is None:
            ip, port = default(REPLY)
        elif isinstance(ip, tuple):
            ip, port = ip
        return _new_verdict(Verdict, ("inject", RULE, ip, port, None, vhost))

    def success(RULE, REPLY, ip=None):
        if ip is None:
            ip, _ = default(REPLY)
        elif isinstance(ip, tuple):
            ip = ip[0]
        return _new_verdict(Verdict, ("success", RULE, ip, None, None, None))

    def forward(RULE, REPLY, to="MB"):
        return Verdict("forward", RULE, None, None, to)

    def ignore(RULE, REPLY):
        return _new_verdict(Verdict, ("ignore", RULE, None, None, None, None))

    return {"inject": inject, "success": success, "forward": forward, "ignore": ignore}


def _namespace(module: str, rules_dir: Optional[str] = None, check_perms: bool = True) -> dict:
    ns = {"__builtins__": __builtins__, "Verdict": Verdict, "IGNORE": IGNORE}
    ns.update(_verdict_functions(module))
    for name in ("token_after", "from_port", "first_from", "bare_port", "bracket", "field",
                 "message", "begins", "peer_after", "from_before", "peer_ending", "ssh2_peer",
                 "sshd_cut", "from_end", "program"):
        ns[name] = getattr(extract, name)
    for name in ("postfix_mta", "postfix_client", "postfix_reject", "postfix_unverified",
                 "dovecot_reason", "dovecot_login", "dovecot_passdb", "courier_peer", "dbmail_message",
                 "dbmail_peer", "mailbox_peer"):
        ns[name] = getattr(mailfields, name)
    # WatchWB's web_* names (lib.weblog), bound to a Web of this namespace's own: each
    # assembled filter keeps its own flood window and reads rules_dir's lists
    ns.update(weblog.names(module, rules_dir, check_owner if check_perms else None))
    return ns


class _PassRuleAndReply(ast.NodeTransformer):
    """inject(...) -> inject(RULE, REPLY, ...), likewise for every verdict."""

    def visit_Call(self, node):
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id in VERDICTS:
            node.args[:0] = [ast.Name("RULE", ast.Load()), ast.Name("REPLY", ast.Load())]
        return node


def _indent(text: str) -> str:
    return "".join("    " + l if l.strip() else l for l in text.splitlines(True))


def _body(path: str) -> str:
    text = read_text(path, RuleError)
    return text if text.endswith("\n") else text + "\n"


def compile_rule(path: str, module: str = "LG", check_perms: bool = True):
    """One rule file as a function REPLY -> Verdict|None (syntax errors name FILE:LINE)."""
    if check_perms:
        check_owner(path)
    text = _body(path)
    source = "def _rule(REPLY, RULE=None):\n" + _indent(text) + "    return None\n"
    try:
        tree = ast.parse(source, path)
    except SyntaxError as e:
        raise RuleError(located(path, max(1, (e.lineno or 1) - 1), e.msg)) from None
    for stmt in tree.body[0].body:          # line numbers of the file, not of the wrapper
        ast.increment_lineno(stmt, -1)
    tree = ast.fix_missing_locations(_PassRuleAndReply().visit(tree))
    ns = _namespace(module, os.path.dirname(path), check_perms)
    exec(compile(tree, path, "exec"), ns)
    return ns["_rule"]


def examples(path: str) -> List[Example]:
    out = []
    for n, line in enumerate(_body(path).splitlines(), 1):
        m = _EXAMPLE.match(line.strip())
        if m:
            expect = None if m.group(2).lower() == "none" else m.group(2)
            out.append(Example(path, n, m.group(1), expect))
    return out


def rule_files(rules_dir: str, disabled: bool = False) -> List[str]:
    pattern = "[0-9][0-9][0-9]-*.rule" + ("*" if disabled else "")
    return sorted(p for p in glob.glob(os.path.join(rules_dir, pattern))
                  if _RULE_FILE.match(os.path.basename(p)))


def rules_dir(settings) -> str:
    """A module's rules folder."""
    return os.path.join(settings.module_path, "rules")


def read_superflous(rules_dir: str) -> List[str]:
    path = os.path.join(rules_dir, "superflous_map")
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return [l.rstrip("\n") for l in f if l.strip() and not l.startswith("#")]
    except FileNotFoundError:
        return []


class Filter:
    """The assembled ladder: `filter(line) -> Verdict | None` (None: untreated)."""

    def __init__(self, rules_dir: str, module: str, check_perms: bool = True):
        self.rules_dir, self.module = rules_dir, module
        if check_perms:
            check_owner(rules_dir)
        self.files = rule_files(rules_dir)
        if not self.files:
            raise RuleError(located(rules_dir, None, "no NNN-name.rule files: a module needs at least one rule"))
        self.superflous = read_superflous(rules_dir)
        parts = ["def _filter(REPLY, RULE=None):\n"]
        self.line_map: List[Tuple[int, str]] = []
        line = 2
        for path in self.files:
            if check_perms:
                check_owner(path)
            body = _indent(_body(path))
            parts.append(f"    # ---- {os.path.relpath(path, os.path.dirname(rules_dir))}\n")
            self.line_map.append((line + 1, path))
            parts.append(body)
            line += 1 + body.count("\n")
        parts.append(_indent(ladder.TAIL))
        self.source = "".join(parts)
        self.filename = f"<filter of {rules_dir}>"
        try:
            tree = ast.fix_missing_locations(_PassRuleAndReply().visit(ast.parse(self.source)))
            code = compile(tree, self.filename, "exec")
        except SyntaxError as e:
            for path in self.files:         # the file alone names its own line
                compile_rule(path, module, check_perms)
            raise RuleError(f"{self.where(e.lineno or 1)}: {e.msg}") from None
        ns = _namespace(module, rules_dir, check_perms)
        ns["SUPERFLOUS"] = tuple(self.superflous)
        exec(code, ns)
        self.ladder = ns["_filter"]                 # every rule, in order
        self.function = tree.body[0]                # its syntax tree (verdict calls pass RULE and REPLY)
        self.plan = ladder.dispatch(self.function)
        self.route = _dispatching(self.function, self.plan, ns, self.filename)
        self.filter = self.route.function() if self.route else self.ladder
        self.rule_names = _rule_names(self.source)

    def where(self, lineno: int) -> str:
        """Map a line of the assembled source back to 'rule file:line'."""
        best = None
        for start, path in self.line_map:
            if start <= lineno:
                best = (start, path)
        return f"{best[1]}:{lineno - best[0] + 1}" if best else f"{self.filename}:{lineno}"

    def assembled(self) -> str:
        return self.source


def _dispatching(func: ast.FunctionDef, plan: Optional[ladder.Dispatch], ns: dict,
                 filename: str) -> Optional["Route"]:
    """The ladder as functions that run only the rules that can decide a line: those
    lib.ladder.dispatch keeps for the start of the line's message (rule tests that
    require `begins(REPLY, ...)`), in the ladder's order.  None when no rule can be left out."""
    if plan is None:
        return None
    variants: Dict[Tuple[int, ...], Callable] = {}

    def variant(keep: List[int]) -> Callable:
        key = tuple(keep)
        if key not in variants:
            args = copy.deepcopy(func.args)         # (REPLY, RULE=None, _MSG_=None)
            args.args.append(ast.arg(ladder.MSG))
            args.defaults.append(ast.Constant(None))
            name = f"{func.name}_{len(variants)}"
            part = ast.FunctionDef(name=name, args=args, body=ladder.variant_body(func, keep),
                                   decorator_list=[], returns=None, lineno=func.lineno, col_offset=0)
            code = compile(ast.fix_missing_locations(ast.Module(body=[part], type_ignores=[])), filename, "exec")
            exec(code, ns)                  # the ladder's own globals: a rule's `global` state is one
            variants[key] = ns.pop(name)
        return variants[key]

    table: Dict[str, Callable] = {}

    def later(start: str, keep: List[int]) -> Callable:
        def first(REPLY, RULE=None, _MSG_=None):    # compiled when a message first asks for it
            table[start] = f = variant(keep)
            return f(REPLY, RULE, _MSG_)
        return first
    for start, keep in plan.table.items():
        table[start] = later(start, keep)
    return Route(plan.width, table, variant(plan.default))


class Route(NamedTuple):
    """The dispatched ladder: the rules for a message are table.get(message[:width], default),
    called as f(line, None, message)."""
    width: int
    table: Dict[str, Callable]
    default: Callable

    def function(self) -> Callable:
        width, get, default, message = self.width, self.table.get, self.default, extract.parse_message

        def dispatch(REPLY: str):
            msg = message(REPLY)
            return get(msg[:width], default)(REPLY, None, msg)
        return dispatch


def _rule_names(source: str) -> List[str]:
    return re.findall(r'^\s*RULE\s*=\s*["\']([^"\']+)["\']', source, re.M)


def _outcome(v: Optional[Verdict]) -> str:
    """What an example line yields: an address, 'forward' or 'none'."""
    if v is None or v.action == "ignore":
        return "none"
    if v.action == "forward":
        return "forward"
    addr = parse_peer(v.ip)
    return str(addr) if addr else "none"


def _canonical(expect: Optional[str]) -> str:
    if expect is None:
        return "none"
    addr = parse_peer(expect)
    return str(addr) if addr else expect


def run_examples(path: str, module: str, ladder: Optional[Filter] = None) -> List[str]:
    """Problems with a rule's examples, alone (and within the ladder when given)."""
    problems = []
    rule = compile_rule(path, module)
    exs = examples(path)
    if not exs:
        problems.append(located(path, None, "carries no '# example: LINE => ADDR|none' line"))
    for ex in exs:
        v = rule(ex.line)
        got, want = _outcome(v), _canonical(ex.expect)
        if got != want:
            problems.append(located(path, ex.lineno, f"example yields {got}, expected {want}"))
        elif ladder is not None and want != "none" and path in ladder.files:
            lv = ladder.filter(ex.line)
            if lv is None or lv.rule != v.rule:
                problems.append(located(path, ex.lineno, f"in the ladder {lv.rule if lv else 'nothing'} decides "
                                                         f"this example before {v.rule}: reorder the files"))
    return problems
