"""What the assembled ladder's tests say about the lines each rule can decide.

Watcher's rules test a line with plain checks first: `Pattern in REPLY`
and `begins(REPLY, Pattern)` (the daemon's message begins with it).  Read
from the syntax tree of the assembled filter (lib.rules), two things follow:

- `guards`: for each rule, strings one of which its line holds whenever its
  test is true, and most often strings its message then begins with: a
  line that meets no rule's guard gets no verdict.  `watcher.py test`
  (lib.scan) skips the other lines of a log in bulk.
- `dispatch`: for each rule whose test holds only when the message begins
  with one of some strings, the first K characters of the message tell
  whether it can decide a line.  The filter then runs, in the ladder's
  order, only the rules that can, and every rule that cannot be read so.

A rule is read this way only when evaluating its test up to that check
does nothing but look at the line (a call to anything else first, a
loop, an `else:` keeps it in every case), and only while the names the
checks rely on (REPLY, begins, message and the constants they name) are
not bound anywhere else.  Otherwise the answer is None and every line goes
down the whole ladder.
"""
import ast
import copy
from typing import Dict, FrozenSet, List, NamedTuple, Optional, Set, Tuple

REPLY, BEGINS, MESSAGE = "REPLY", "begins", "message"
MSG = "_MSG_"           # in a dispatched ladder: the parameter holding message(REPLY)
_INTROSPECTION = {"locals", "vars", "eval", "exec", "globals", "dir"}
MAX_KEY = 16            # at most this many characters of the message choose the rules
Env = Dict[str, Tuple[str, ...]]


def _strings(node, env: Env) -> Optional[Tuple[str, ...]]:
    """The string(s) a constant expression stands for: 'x', ('x', 'y') or a name bound to one."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return (node.value,)
    if isinstance(node, ast.Tuple) and node.elts and all(
            isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
        return tuple(e.value for e in node.elts)
    if isinstance(node, ast.Name):
        return env.get(node.id)
    return None


def begins_strings(node, env: Env) -> Optional[Tuple[str, ...]]:
    """The strings of a `begins(REPLY, X)` test, None for anything else."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == BEGINS \
            and len(node.args) == 2 and not node.keywords and isinstance(node.args[0], ast.Name) \
            and node.args[0].id == REPLY:
        return _strings(node.args[1], env)
    return None


def contains_strings(node, env: Env) -> Optional[Tuple[str, ...]]:
    """The string of an `X in REPLY` test, None for anything else."""
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], ast.In) \
            and isinstance(node.comparators[0], ast.Name) and node.comparators[0].id == REPLY:
        found = _strings(node.left, env)
        return found if found and len(found) == 1 else None
    return None


def _test_guard(node, env: Env) -> Optional[Set[str]]:
    """Strings one of which the line holds whenever `node` is true; None when that cannot be told
    or when evaluating `node` may do more than look at the line."""
    found = contains_strings(node, env) or begins_strings(node, env)
    if found:                           # begins: the message begins with it, so the line holds it
        return set(found)
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
        parts = [_test_guard(v, env) for v in node.values]
        return None if any(p is None for p in parts) else set().union(*parts)
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
        best = None
        for value in node.values:          # only up to the first test that is not a plain check
            part = _test_guard(value, env)
            if part is None:
                break
            if best is None or min(map(len, part)) > min(map(len, best)):
                best = part
        return best
    return None


def requires(node, env: Env) -> Optional[Set[str]]:
    """Strings one of which the message begins with whenever `node` is true; None when that
    cannot be told or when evaluating `node` until it is false may do more than look at the line."""
    found = begins_strings(node, env)
    if found is not None:
        return set(found) if all(found) else None
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
        parts = [requires(v, env) for v in node.values]
        return None if any(p is None for p in parts) else set().union(*parts)
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
        for value in node.values:          # the first requirement, after plain checks only
            part = requires(value, env)
            if part is not None:
                return part
            if _test_guard(value, env) is None:
                return None
    return None


def _bound_elsewhere(func: ast.FunctionDef) -> FrozenSet[str]:
    """Names bound anywhere in the function but by its top-level `NAME = constant` lines
    (remembered on the node: the dispatch, the guards and the fast lane all ask)."""
    known = getattr(func, "_bound_elsewhere", None)
    if known is None:
        known = func._bound_elsewhere = frozenset(_find_bound(func))
    return known


def assigned(stmt: ast.stmt) -> Optional[str]:
    """NAME of a `NAME = value` statement, else None."""
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
        return stmt.targets[0].id
    return None


def constant_name(stmt: ast.stmt) -> Optional[str]:
    """NAME of a `NAME = 'x'` or `NAME = ('x', ...)` the env takes in, else None."""
    name = assigned(stmt)
    return name if name is not None and _strings(stmt.value, {}) is not None else None


def inert(stmt: ast.stmt) -> bool:
    """`pass`, or a lone constant (a docstring): a statement that does nothing."""
    return isinstance(stmt, ast.Pass) or (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant))


def _find_bound(func: ast.FunctionDef) -> Set[str]:
    top = {id(s.targets[0]) for s in func.body if constant_name(s)}
    names: Set[str] = set()
    for node in ast.walk(ast.Module(body=func.body, type_ignores=[])):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load) and id(node) not in top:
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            names.update(node.names)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(getattr(node, "name", None), str):     # except ... as NAME, match patterns
            names.add(node.name)
        elif isinstance(getattr(node, "rest", None), str):
            names.add(node.rest)
    return names


def _statements(body: List[ast.stmt], unstable: FrozenSet[str]):
    """(statement, env) for each of the function's top-level statements `body`: env holds the
    constants bound before it."""
    env: Env = {}
    for stmt in body:
        yield stmt, env
        name = assigned(stmt)
        if name is not None:
            value = _strings(stmt.value, {})
            if value is None or name in unstable:
                env = {k: v for k, v in env.items() if k != name}
            else:
                env = dict(env, **{name: value})


TAIL = "for s in SUPERFLOUS:\n    if s in REPLY:\n        return IGNORE\nreturn None\n"   # the assembler's last lines
_TAIL = ast.dump(ast.Module(body=ast.parse(TAIL).body, type_ignores=[]))


def ends_with_tail(body: List[ast.stmt]) -> bool:
    """The statements end with the assembler's TAIL (the superflous strings, then no verdict)."""
    return len(body) >= 2 and ast.dump(ast.Module(body=body[-2:], type_ignores=[])) == _TAIL


class Guard(NamedTuple):
    """What a line holds whenever one rule's test is true: one of `holds`, and (unless
    None) a message beginning with one of `begins`."""
    holds: FrozenSet[str]
    begins: Optional[FrozenSet[str]]


def guards(func: ast.FunctionDef) -> Optional[List[Guard]]:
    """The Guard of each rule of an assembled ladder's function (lib.rules.Filter.function),
    or None when a line might get a verdict that no guard tells."""
    if not isinstance(func, ast.FunctionDef):
        return None
    unstable = _bound_elsewhere(func)
    if {REPLY, BEGINS} & unstable:
        return None
    body = list(func.body)
    if not ends_with_tail(body):
        return None
    found: List[Guard] = []
    for stmt, env in _statements(body[:-2], unstable):
        if assigned(stmt):
            if _strings(stmt.value, {}) is None and not isinstance(stmt.value, ast.Constant):
                return None                 # an assignment that computes something
        elif isinstance(stmt, ast.If) and not stmt.orelse:
            part = _test_guard(stmt.test, env)
            if part is None or "" in part:
                return None
            need = requires(stmt.test, env)
            found.append(Guard(frozenset(part), None if need is None else frozenset(need)))
        elif not inert(stmt):
            return None
    return found


class Dispatch:
    """Which top-level statements of the ladder to run for a message: `table` maps the
    message's first `width` characters to their indexes; a message whose start is not
    there runs `default` (the statements no requirement keeps out)."""

    def __init__(self, width: int, table: Dict[str, List[int]], default: List[int]):
        self.width, self.table, self.default = width, table, default


def dispatch(func: ast.FunctionDef) -> Optional[Dispatch]:
    """The Dispatch of the assembled ladder's function, or None when no rule can be left out."""
    unstable = _bound_elsewhere(func)
    if {REPLY, BEGINS, MESSAGE, MSG} & unstable or any(
            isinstance(n, ast.Name) and n.id == MSG for stmt in func.body for n in ast.walk(stmt)):
        return None
    needs: List[Optional[Set[str]]] = []
    for stmt, env in _statements(func.body, unstable):
        need = None
        if isinstance(stmt, ast.If) and not stmt.orelse:
            need = requires(stmt.test, env)
        needs.append(need)
    wanted = [n for n in needs if n]
    if not wanted:
        return None
    width = min(MAX_KEY, min(len(s) for n in wanted for s in n))
    keys = {s[:width] for n in wanted for s in n}
    table = {k: [i for i, n in enumerate(needs) if n is None or any(s[:width] == k for s in n)] for k in keys}
    return Dispatch(width, table, [i for i, n in enumerate(needs) if n is None])


def _loads(nodes) -> Set[str]:
    return {n.id for node in nodes for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


class _UseMessage(ast.NodeTransformer):
    """begins(REPLY, X) -> _MSG_.startswith(X) and message(REPLY) -> _MSG_: the message the
    dispatch has read already (only where those names are extract's: Dispatch checks)."""

    def visit_Call(self, node):
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.args and not node.keywords \
                and isinstance(node.args[0], ast.Name) and node.args[0].id == REPLY:
            msg = ast.copy_location(ast.Name(MSG, ast.Load()), node)
            if node.func.id == BEGINS and len(node.args) == 2:
                return ast.copy_location(ast.Call(ast.Attribute(msg, "startswith", ast.Load()), [node.args[1]], []),
                                         node)
            if node.func.id == MESSAGE and len(node.args) == 1:
                return msg
        return node


def _reading_message(func: ast.FunctionDef) -> List[Tuple[ast.stmt, Set[str]]]:
    """Each top-level statement with its begins/message calls reading _MSG_, and the names it
    loads: worked out once per ladder (remembered on the node), every variant picks from them."""
    known = getattr(func, "_reading_message", None)
    if known is None:
        rewritten = [_UseMessage().visit(copy.deepcopy(stmt)) for stmt in func.body]
        known = func._reading_message = [(stmt, _loads([stmt])) for stmt in rewritten]
    return known


def variant_body(func: ast.FunctionDef, keep: List[int]) -> List[ast.stmt]:
    """The statements `keep` of the ladder, for a function that gets the message as _MSG_:
    its begins/message calls read _MSG_, and a top-level `NAME = constant` that no kept
    statement reads before NAME is bound again is left out."""
    picked = [_reading_message(func)[i] for i in keep]
    body = [stmt for stmt, _ in picked]
    if set().union(*(loads for _, loads in picked)) & _INTROSPECTION:
        return body
    out: List[ast.stmt] = []
    for i, stmt in enumerate(body):
        name, used = constant_name(stmt), False
        if name:
            for later, loads in picked[i + 1:]:
                if name in loads:
                    used = True
                    break
                if assigned(later) == name:
                    break
            if not used:
                continue
        out.append(stmt)
    return out or [ast.Pass()]


def read(func: ast.FunctionDef) -> Tuple[List[Tuple[ast.stmt, Env]], FrozenSet[str]]:
    """The ladder's top-level statements, each with the constants bound before it, and the
    names bound anywhere else (no statement can be sure of their values)."""
    unstable = _bound_elsewhere(func)
    return list(_statements(func.body, unstable)), unstable
