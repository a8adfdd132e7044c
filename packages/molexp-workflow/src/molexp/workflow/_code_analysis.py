"""The normalized identity of one piece of Python code and the global names it refers to.

A function's identity is the sha256 of its AST with positions, comments, docstrings and
decorators removed, used only when the source text read now compiles to the very code object that
runs (a file edited after its module was imported no longer describes that code); otherwise it is
the sha256 of its bytecode (``co_code``, constants and names, recursively through nested code
objects), which is only stable within one Python minor version. Module-level statements (the
assignment that builds a module-level object) and class bodies are identified by their
normalized AST alone. Analyses of functions are memoized per code object.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import linecache
import textwrap
import threading
import tokenize
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import CodeType, FunctionType
from typing import Any, Literal

from molexp.workflow._hashing import dumps_canonical, sha256_hex, to_canonical

__all__ = [
    "CodeAnalysis",
    "CodeOrigin",
    "analyse",
    "binding_statements",
    "class_body_analysis",
    "module_tree",
    "source_compiles_to",
    "statements_analysis",
]

CodeOrigin = Literal["source", "bytecode"]


@dataclasses.dataclass(frozen=True, slots=True)
class CodeAnalysis:
    """What one code object contributes: its digest and the names it may call."""

    origin: CodeOrigin
    digest: str
    source: str
    references: tuple[tuple[str, ...], ...]
    self_attributes: tuple[str, ...]


# Keyed by code object *identity*: equal code objects (``code.__eq__`` ignores the file name and
# default values) may come from different sources, so equality must not share an analysis.
_analysis_memo: dict[int, tuple[weakref.ref[CodeType], CodeAnalysis]] = {}
_memo_lock = threading.Lock()
_MODULE_TREE_MEMO_SIZE = 256
_module_trees: dict[str, tuple[str, ast.Module]] = {}


def module_tree(filename: str, module_globals: dict[str, Any]) -> tuple[str, ast.Module] | None:
    """The text and parsed tree of the file a function comes from, or None if unavailable.

    Files are read afresh (``linecache`` can serve stale text when a file is rewritten within
    one timestamp tick); other sources (notebook cells, zip imports) come from ``linecache``.
    """
    text = ""
    if Path(filename).is_file():
        try:
            with tokenize.open(filename) as handle:
                text = handle.read()
        except (OSError, SyntaxError, UnicodeDecodeError):
            return None
    else:
        text = "".join(linecache.getlines(filename, module_globals))
    if not text:
        return None
    cached = _module_trees.get(filename)
    if cached is not None and cached[0] == text:
        return cached
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    if len(_module_trees) >= _MODULE_TREE_MEMO_SIZE:
        _module_trees.pop(next(iter(_module_trees)))
    _module_trees[filename] = (text, tree)
    return text, tree


_compiled_modules: dict[str, tuple[str, dict[tuple[str, int], list[CodeType]] | None]] = {}


def source_compiles_to(code: CodeType, parsed: tuple[str, ast.Module]) -> bool:
    """Whether the source text read now is what ``code`` was compiled from.

    A file edited after its module was imported holds other text than the code that runs:
    hashing that text would file the old code's results under the new code's key (a false
    cache hit once the new code runs). The text is compiled once (memoized per file and text)
    and the function's code object must equal one compiled from it at the same place
    (``code.__eq__`` compares the bytecode, constants, names and line table).
    """
    text, tree = parsed
    cached = _compiled_modules.get(code.co_filename)
    if cached is None or cached[0] != text:
        codes: dict[tuple[str, int], list[CodeType]] | None = None
        try:
            module = compile(
                tree,
                code.co_filename,
                "exec",
                flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
                dont_inherit=True,
            )
        except (SyntaxError, ValueError):
            pass
        else:
            codes = {}
            for nested in _nested_codes(module):
                codes.setdefault((nested.co_name, nested.co_firstlineno), []).append(nested)
        if len(_compiled_modules) >= _MODULE_TREE_MEMO_SIZE:
            _compiled_modules.pop(next(iter(_compiled_modules)), None)
        cached = _compiled_modules[code.co_filename] = (text, codes)
    compiled = cached[1]
    if compiled is None:
        return False
    return code in compiled.get((code.co_name, code.co_firstlineno), [])


def _first_line(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    return node.decorator_list[0].lineno if node.decorator_list else node.lineno


def _find_lambda(tree: ast.Module, code: CodeType) -> ast.Lambda | None:
    starts = [
        (line, col)
        for line, _, col, end_col in code.co_positions()
        if line is not None and col is not None and (col, end_col) != (0, 0)
    ]
    if not starts:
        return None
    position = starts[0]
    candidates = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Lambda)
        and node.lineno == code.co_firstlineno
        and (node.body.lineno, node.body.col_offset)
        <= position
        <= (node.body.end_lineno or 0, node.body.end_col_offset or 0)
    ]
    return candidates[0] if len(candidates) == 1 else None


_FunctionIndex = dict[tuple[str, int], list[ast.FunctionDef | ast.AsyncFunctionDef]]
_function_indexes: weakref.WeakKeyDictionary[ast.Module, _FunctionIndex] = (
    weakref.WeakKeyDictionary()
)


def _function_index(tree: ast.Module) -> _FunctionIndex:
    """``(name, first line) -> def statements`` of a parsed module, built once per tree."""
    with _memo_lock:
        index = _function_indexes.get(tree)
    if index is None:
        index = {}
        for candidate in ast.walk(tree):
            if isinstance(candidate, ast.FunctionDef | ast.AsyncFunctionDef):
                key = (candidate.name, _first_line(candidate))
                index.setdefault(key, []).append(candidate)
        with _memo_lock:
            _function_indexes[tree] = index
    return index


def _find_node(
    tree: ast.Module, code: CodeType
) -> ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | None:
    """The AST node ``code`` was compiled from; None when ambiguous or the file has moved on."""
    node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | None
    if code.co_name == "<lambda>":
        node = _find_lambda(tree, code)
    else:
        matches = _function_index(tree).get((code.co_name, code.co_firstlineno), [])
        node = matches[0] if len(matches) == 1 else None
    if node is None:
        return None
    last_line = max((line for _, line, _, _ in code.co_positions() if line is not None), default=0)
    return node if last_line <= (node.end_lineno or 0) else None


def _is_docstring(statement: ast.stmt) -> bool:
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and isinstance(statement.value.value, str)
    )


def _strip_docstrings(node: ast.AST) -> None:
    for child in ast.walk(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            body = child.body
            if body and _is_docstring(body[0]):
                child.body = body[1:] or [ast.Pass()]


def _normalized_dump(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> str:
    """``ast.dump`` without positions, decorators or docstrings."""
    clean = copy.deepcopy(node)
    if isinstance(clean, ast.FunctionDef | ast.AsyncFunctionDef):
        clean.decorator_list = []
    _strip_docstrings(clean)
    for child in ast.walk(clean):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            child.decorator_list = []
    return ast.dump(clean, annotate_fields=True, include_attributes=False)


def _attribute_chain(node: ast.Attribute) -> tuple[str, ...] | None:
    parts: list[str] = []
    current: ast.expr = node
    while isinstance(current, ast.Attribute):
        parts.append(current.attr)
        current = current.value
    if not isinstance(current, ast.Name):
        return None
    parts.append(current.id)
    return tuple(reversed(parts))


def _nested_codes(code: CodeType) -> Iterator[CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, CodeType):
            yield from _nested_codes(const)


def _references(
    node: ast.AST, global_names: set[str], self_name: str | None
) -> tuple[tuple[tuple[str, ...], ...], tuple[str, ...]]:
    chains: set[tuple[str, ...]] = set()
    self_attributes: set[str] = set()

    def visit(current: ast.AST) -> None:
        if isinstance(current, ast.Attribute):
            chain = _attribute_chain(current)
            if chain is not None:
                if chain[0] == self_name:
                    self_attributes.add(chain[1])
                elif chain[0] in global_names:
                    chains.add(chain)
                return
        elif (
            isinstance(current, ast.Name)
            and isinstance(current.ctx, ast.Load)
            and current.id in global_names
        ):
            chains.add((current.id,))
        for child in ast.iter_child_nodes(current):
            visit(child)

    visit(node)
    return tuple(sorted(chains)), tuple(sorted(self_attributes))


def _first_parameter(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> str | None:
    positional = [*node.args.posonlyargs, *node.args.args]
    return positional[0].arg if positional else None


def _source_analysis(fn: FunctionType) -> CodeAnalysis | None:
    code = fn.__code__
    parsed = module_tree(code.co_filename, fn.__globals__)
    if parsed is None:
        return None
    text, tree = parsed
    node = _find_node(tree, code)
    if node is None or not source_compiles_to(code, parsed):
        return None
    if isinstance(node, ast.Lambda):
        source = ast.get_source_segment(text, node) or ""
    else:
        lines = text.splitlines(keepends=True)[_first_line(node) - 1 : node.end_lineno]
        source = textwrap.dedent("".join(lines))
    global_names = {name for nested in _nested_codes(code) for name in nested.co_names}
    global_names.update(code.co_freevars)
    references, self_attributes = _references(node, global_names, _first_parameter(node))
    return CodeAnalysis(
        origin="source",
        digest=sha256_hex(_normalized_dump(node)),
        source=source,
        references=references,
        self_attributes=self_attributes,
    )


def _bytecode_tree(code: CodeType, docstring: str | None) -> dict[str, Any]:
    consts = list(code.co_consts)
    if docstring is not None and consts and consts[0] == docstring:
        consts = consts[1:]
    return {
        "code": code.co_code.hex(),
        "consts": [_const_tree(const) for const in consts],
        "names": list(code.co_names),
        "varnames": list(code.co_varnames),
        "freevars": list(code.co_freevars),
    }


def _const_tree(const: object) -> Any:
    if isinstance(const, CodeType):
        return {"$code": _bytecode_tree(const, None)}
    if const is Ellipsis:
        return {"$ellipsis": True}
    if isinstance(const, tuple):
        return {"$tuple": [_const_tree(item) for item in const]}
    if isinstance(const, frozenset):
        return {"$set": sorted(dumps_canonical(_const_tree(item)) for item in const)}
    return to_canonical(const, label="constant")


def _bytecode_analysis(fn: FunctionType) -> CodeAnalysis:
    code = fn.__code__
    names = sorted({name for nested in _nested_codes(code) for name in nested.co_names})
    references = sorted({(name,) for name in names} | {(name,) for name in code.co_freevars})
    qualname = f"{fn.__module__}.{fn.__qualname__}"
    return CodeAnalysis(
        origin="bytecode",
        digest=sha256_hex(dumps_canonical(_bytecode_tree(code, fn.__doc__))),
        source=f"# source unavailable: code_hash of {qualname} computed from bytecode\n",
        references=tuple(references),
        self_attributes=tuple(names),
    )


def analyse(fn: FunctionType) -> CodeAnalysis:
    """Memoized per code object: the digest and references of one function."""
    code = fn.__code__
    marker = id(code)
    with _memo_lock:
        cached = _analysis_memo.get(marker)
    if cached is not None and cached[0]() is code:
        return cached[1]
    analysis = _source_analysis(fn) or _bytecode_analysis(fn)

    def forget(_: weakref.ref[CodeType]) -> None:
        with _memo_lock:
            current = _analysis_memo.get(marker)
            if current is not None and current[0]() is None:
                del _analysis_memo[marker]

    with _memo_lock:
        _analysis_memo[marker] = (weakref.ref(code, forget), analysis)
    return analysis


def _root_name(node: ast.expr) -> str | None:
    """The name at the root of ``a``, ``a.b``, ``a[0].c`` or ``*a``."""
    current = node
    while isinstance(current, ast.Attribute | ast.Subscript | ast.Starred):
        current = current.value
    return current.id if isinstance(current, ast.Name) else None


def _stored_names(target: ast.expr) -> set[str]:
    if isinstance(target, ast.Tuple | ast.List):
        return {name for element in target.elts for name in _stored_names(element)}
    root = _root_name(target)
    return {root} if root is not None else set()


def _binds(statement: ast.stmt, name: str) -> bool:
    """Whether a module-level statement assigns or mutates ``name``."""
    if isinstance(statement, ast.Assign):
        return any(name in _stored_names(target) for target in statement.targets)
    if isinstance(statement, ast.AnnAssign | ast.AugAssign):
        return name in _stored_names(statement.target)
    if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call):
        func = statement.value.func
        return isinstance(func, ast.Attribute) and _root_name(func) == name
    return False


def _module_level(body: Sequence[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements run at import time: the module body and blocks nested in it (not defs)."""
    for statement in body:
        yield statement
        if isinstance(statement, ast.If | ast.For | ast.While | ast.With):
            yield from _module_level([*statement.body, *getattr(statement, "orelse", [])])
        elif isinstance(statement, ast.Try):
            blocks = [statement.body, statement.orelse, statement.finalbody]
            blocks += [handler.body for handler in statement.handlers]
            for block in blocks:
                yield from _module_level(block)


def binding_statements(tree: ast.Module, name: str) -> tuple[list[ast.stmt], list[ast.ImportFrom]]:
    """Module-level statements that assign or mutate ``name``, and those importing it."""
    bound: list[ast.stmt] = []
    imports: list[ast.ImportFrom] = []
    for statement in _module_level(tree.body):
        if isinstance(statement, ast.ImportFrom):
            if any((alias.asname or alias.name) == name for alias in statement.names):
                imports.append(statement)
        elif _binds(statement, name):
            bound.append(statement)
    return bound, imports


def statements_analysis(statements: Sequence[ast.stmt], source: str) -> CodeAnalysis:
    """Digest and references of module-level statements (every name in them is global)."""
    body = [copy.deepcopy(statement) for statement in statements]
    module = ast.Module(body=body, type_ignores=[])
    _strip_docstrings(module)
    names = {node.id for node in ast.walk(module) if isinstance(node, ast.Name)}
    references, _ = _references(module, names, None)
    return CodeAnalysis(
        origin="source",
        digest=sha256_hex(ast.dump(module, annotate_fields=True, include_attributes=False)),
        source=source,
        references=references,
        self_attributes=(),
    )


def _class_node(tree: ast.Module, qualname: str) -> ast.ClassDef | None:
    """The ``class`` statement of ``qualname`` (classes nested in classes included)."""
    if "<locals>" in qualname:
        return None
    scope: Sequence[ast.stmt] = list(_module_level(tree.body))
    found: ast.ClassDef | None = None
    for part in qualname.split("."):
        matches = [node for node in scope if isinstance(node, ast.ClassDef) and node.name == part]
        if len(matches) != 1:
            return None
        found = matches[0]
        scope = found.body
    return found


def class_body_analysis(tree: ast.Module, text: str, qualname: str) -> CodeAnalysis | None:
    """Bases, keywords, decorators and non-method statements of a class (methods are folded
    one by one), or None when the class statement cannot be found."""
    node = _class_node(tree, qualname)
    if node is None:
        return None
    body = [
        statement
        for index, statement in enumerate(node.body)
        if not isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef)
        and not (index == 0 and _is_docstring(statement))
    ]
    header = ast.Expr(
        value=ast.Tuple(elts=[*node.bases, *node.decorator_list], ctx=ast.Load()),
    )
    keywords = [ast.Expr(value=keyword.value) for keyword in node.keywords]
    source = ast.get_source_segment(text, node) or ""
    return statements_analysis([header, *keywords, *body], source)
