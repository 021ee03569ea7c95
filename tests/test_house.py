"""The house rules a newcomer relies on, read from the source: small modules and functions, imports that run one
way, and no code that nothing uses."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"device/flowercam": "flowercam", "build_models": "build_models", "calibration": "calibration"}
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 300, 60
# Called by a framework, not by our code: Keras layers and callbacks, http.server, pickle.
CALLED_BY_A_FRAMEWORK = {"on_epoch_begin", "on_epoch_end", "on_train_batch_end", "call", "handle_error", "do_GET",
                         "do_POST", "log_message", "find_class", "persistent_load"}
# Used outside the product on purpose: the synthetic class folders are the tests' and the demos' data.
FOR_TESTS_AND_DEMOS = {"write_class_folders"}


def _modules() -> dict[str, Path]:
    modules = {}
    for folder, package in PACKAGES.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = [package, *path.relative_to(ROOT / folder).with_suffix("").parts]
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def test_no_module_or_function_is_too_long_to_read():
    too_long = []
    for name, path in _modules().items():
        text = path.read_text()
        if len(text.splitlines()) > MAX_MODULE_LINES:
            too_long.append(f"{name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    too_long.append(f"{name}.{node.name}: {lines} lines")
    assert not too_long, too_long


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules ``name`` imports, wherever in the file (a lazy import is still a dependency)."""
    found = set()
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else [])) \
                if node.level else node.module
            targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):
                found.add(target)
    return found


def test_no_import_loop():
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    loops = []

    def visit(name: str, trail: list[str]) -> None:
        for dep in graph[name]:
            if dep in trail:
                loops.append(" -> ".join(trail[trail.index(dep):] + [dep]))
            elif dep not in done:
                visit(dep, trail + [dep])
        done.add(name)

    done: set[str] = set()
    for name in graph:
        if name not in done:
            visit(name, [name])
    assert not loops, loops


# The device package's floors, lowest first: a module imports only from its own part or the floors below it.
# errors and the package root sit under everything; model and sources share a floor and know nothing of each other.
LAYERS = ({"flowercam", "flowercam.errors"}, {"flowercam.model", "flowercam.sources"},
          {"flowercam.learning", "flowercam.season"}, {"flowercam.daemon"}, {"flowercam.cli"})


def _part(module: str) -> str:
    """The device part a module belongs to: flowercam.model.scores -> flowercam.model."""
    if module == "flowercam.__main__":  # ``python -m flowercam`` is the command line's
        return "flowercam.cli"
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 and parts[1] not in ("errors", "__main__") else module


def _floor(part: str) -> int:
    floors = [i for i, layer in enumerate(LAYERS) if part in layer]
    assert floors, f"{part}: not on any floor of LAYERS (add it where it belongs)"
    return floors[0]


def test_the_device_parts_import_downward_only():
    """model (and sources) below learning below daemon below cli; nothing imports upward or sideways."""
    modules = _modules()
    upward = []
    for name, path in modules.items():
        if not name.startswith("flowercam"):
            continue
        part = _part(name)
        for dep in _imports(name, path, modules):
            if not dep.startswith("flowercam"):
                upward.append(f"{name} -> {dep} (the device imports no workstation code)")
                continue
            dep_part = _part(dep)
            if dep_part != part and (_floor(dep_part) > _floor(part) or
                                     (_floor(dep_part) == _floor(part) and _floor(part) > 0)):
                upward.append(f"{name} -> {dep}")
    assert not upward, upward


def test_the_device_has_no_loose_modules():
    """Every device module lives in a part (model, learning, sources, daemon, cli), except the package root,
    its errors and ``python -m flowercam``."""
    loose = [n for n in _modules() if n.count(".") == 1 and n.startswith("flowercam.")
             and _part(n) == n and n not in LAYERS[0] and not (ROOT / "device" / n.replace(".", "/")).is_dir()]
    assert not loose, loose


def _references(text: str) -> set[str]:
    """The names a module uses (never those it only defines): loaded names, attributes, imported names, keyword
    arguments, and the words of its string literals other than docstrings (a name passed as a string counts)."""
    tree = ast.parse(text)
    docstrings = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)}
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Store):
            found.add(node.id)
        elif isinstance(node, ast.Attribute):
            found.add(node.attr)
        elif isinstance(node, ast.ImportFrom | ast.Import):
            found.update(alias.name.rpartition(".")[2] for alias in node.names)
        elif isinstance(node, ast.keyword) and node.arg:
            found.add(node.arg)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            found.update(re.findall(r"[A-Za-z_]\w*", node.value))
    return found


def _definitions(tree: ast.Module) -> list[ast.AST]:
    """Functions, classes, methods and module-level constants (UPPER_CASE names)."""
    nodes = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)]
    nodes += [m for n in tree.body if isinstance(n, ast.ClassDef) for m in n.body if isinstance(m, ast.FunctionDef)]
    nodes += [target for n in tree.body if isinstance(n, ast.Assign | ast.AnnAssign)
              for target in (n.targets if isinstance(n, ast.Assign) else [n.target])
              if isinstance(target, ast.Name) and target.id.isupper()]
    return nodes


def test_nothing_is_defined_that_only_the_tests_use():
    """Every function, class, method and module-level constant of the product is used somewhere in the product or
    the bench scripts (the tests do not count: code only they call is not part of what ships). Uses are read from
    the syntax tree, so a definition, a comment or a docstring is no use."""
    product = [p for folder in (*PACKAGES, "bench") for p in (ROOT / folder).rglob("*.py")]
    uses = set().union(*(_references(path.read_text()) for path in product))
    for page in (ROOT / "device" / "flowercam").rglob("*.html"):
        uses.update(re.findall(r"[A-Za-z_]\w*", page.read_text()))
    unused = []
    for name, path in _modules().items():
        for node in _definitions(ast.parse(path.read_text())):
            label = getattr(node, "name", None) or node.id
            decorated = any(not (isinstance(d, ast.Name) and d.id in ("staticmethod", "classmethod", "property"))
                            for d in getattr(node, "decorator_list", []))  # a command or a route: the framework's
            if label.startswith("__") or decorated or label in CALLED_BY_A_FRAMEWORK | FOR_TESTS_AND_DEMOS:
                continue
            if label not in uses:
                unused.append(f"{name}.{label}")
    assert not unused, unused


def test_an_unused_constant_is_found():
    """The check above can fail: a constant defined and never used is not a use of itself."""
    tree = ast.parse('"""Doc naming UNUSED_ONE."""\nUNUSED_ONE = 1\nUSED = 2\nprint(USED)\n')
    names = [getattr(n, "name", None) or n.id for n in _definitions(tree)]
    assert names == ["UNUSED_ONE", "USED"] and "UNUSED_ONE" not in _references(ast.unparse(tree))
