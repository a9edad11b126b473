"""The package's layering, read from its import statements (docs/ARCHITECTURE.md).

Each module imports only modules of its own layer or below; the array modules (hard,
evaluation, tiling) and training know nothing of the Dataset or the store; and only the
dataset's own modules (dataset, ingest, runlog) use its internals.
"""

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "hardex_nb"

# lower number = lower layer (see docs/ARCHITECTURE.md)
LAYERS = {
    "hardex_nb.errors": 0,
    "hardex_nb.progress": 0,
    "hardex_nb._frames": 0,
    "hardex_nb.reasons": 0,
    "hardex_nb.geometry": 0,
    "hardex_nb.staging": 0,
    "hardex_nb.processes": 0,
    "hardex_nb.annotation_rules": 0,
    "hardex_nb.coco_kernels": 0,
    "hardex_nb.media": 1,
    "hardex_nb.store": 2,
    "hardex_nb.formats": 3,
    "hardex_nb.tiling": 3,
    "hardex_nb.dataset": 4,
    "hardex_nb.ingest": 4,
    "hardex_nb.runlog": 4,
    "hardex_nb.evaluation": 5,
    "hardex_nb.hard": 5,
    "hardex_nb.review_time": 5,
    "hardex_nb.tide": 5,
    "hardex_nb.pointing": 5,
    "hardex_nb.training": 6,
    "hardex_nb.jobs": 7,
    "hardex_nb.widgets": 8,
    "hardex_nb.cli": 8,
    "hardex_nb": 9,
}
KNOWS_NO_DATASET = (
    "hardex_nb.hard",
    "hardex_nb.review_time",
    "hardex_nb.pointing",
    "hardex_nb.evaluation",
    "hardex_nb.coco_kernels",
    "hardex_nb.tide",
    "hardex_nb.tiling",
    "hardex_nb.training",
    "hardex_nb.formats",
    "hardex_nb.media",
    "hardex_nb.store",
)
# the only module that may touch a Dataset's private attributes (ds._samples, ...); its
# other modules (ingest, runlog) receive them as ``ds.room``, which nothing else uses
DATASET_ROOM = ("dataset.py",)
ROOM_USERS = ("dataset.py", "ingest.py", "runlog.py")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, *, modules: bool = False, typing: bool = True) -> set[str]:
    """The package's modules ``path`` imports. ``modules``: ``from x import name`` as the
    module ``x.name`` where that is a module; ``typing=False`` leaves out what is imported
    for type checkers only (``if TYPE_CHECKING:``), which never runs."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    tree = ast.parse(path.read_text())
    hidden: set[int] = set()
    for node in ast.walk(tree):
        if not typing and isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            hidden.update(id(n) for b in node.body for n in ast.walk(b))
    for node in ast.walk(tree):
        if id(node) in hidden:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                if node.module is None:  # from . import a, b
                    found.update(f"{target}.{a.name}" for a in node.names)
                    continue
            else:
                target = node.module or ""
            if not target.startswith("hardex_nb"):
                continue
            if modules:
                found.update(
                    f"{target}.{a.name}" if f"{target}.{a.name}" in MODULES else target
                    for a in node.names
                )
            else:
                found.add(target)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("hardex_nb"))
    return found


MODULES = {_module_name(p) for p in PACKAGE.rglob("*.py")}


def _layer(module: str) -> tuple[str, int]:
    best = max((key for key in LAYERS if module == key or module.startswith(key + ".")), key=len)
    return best, LAYERS[best]


def test_every_module_is_in_a_layer():
    for path in PACKAGE.rglob("*.py"):
        assert _layer(_module_name(path))[0], path


def test_no_module_imports_a_layer_above_it():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = _module_name(path)
        home, rank = _layer(name)
        for target in _imports(path):
            there, target_rank = _layer(target)
            if target_rank > rank:
                wrong.append(
                    f"{name} ({home}, layer {rank}) imports {target} ({there}, layer {target_rank})"
                )
    assert wrong == []


def test_array_modules_and_training_know_nothing_of_the_dataset():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = _module_name(path)
        if name.startswith(KNOWS_NO_DATASET):
            wrong += [
                f"{name} imports {t}"
                for t in _imports(path)
                if t.startswith(("hardex_nb.dataset", "hardex_nb.jobs", "hardex_nb.widgets"))
            ]
    assert wrong == []


def test_no_module_outside_the_dataset_room_reaches_into_its_internals():
    pattern = re.compile(r"\b(?:ds|dataset|into|self\.ds|run\.dataset|self\.dataset)\._[a-z_]+")
    reach = {
        f"{p.relative_to(PACKAGE)}: {hit}"
        for p in PACKAGE.rglob("*.py")
        if not (p.parent == PACKAGE and p.name in DATASET_ROOM)
        for hit in pattern.findall(p.read_text())
    }
    assert reach == set()


def test_widgets_never_import_jobs():
    wrong = [
        f"{_module_name(p)} imports {t}"
        for p in sorted((PACKAGE / "widgets").rglob("*.py"))
        for t in _imports(p)
        if t.startswith("hardex_nb.jobs")
    ]
    assert wrong == []


def test_no_import_circle_in_the_package():
    """Every import, also one inside a function (what runs when it is called); a package's
    own ``__init__`` is read before its modules, so a module importing it closes no circle."""
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {
        name: {
            t
            for t in _imports(path, modules=True, typing=False)
            if t in paths
            and t != name
            and not (paths[t].name == "__init__.py" and name.startswith(t + "."))
        }
        for name, path in paths.items()
    }
    circles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                circles.append(" -> ".join([*path[path.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert circles == []


def test_only_the_dataset_modules_use_its_room():
    pattern = re.compile(r"\.room\b")
    users = {
        str(p.relative_to(PACKAGE))
        for p in PACKAGE.rglob("*.py")
        if not (p.parent == PACKAGE and p.name in ROOM_USERS) and pattern.search(p.read_text())
    }
    assert users == set()


# what only the rules module may define: a label name, box, polygon or score check
RULE_DEFINITIONS = re.compile(
    r"^\s*def (_?check_(label|label_names?|box|points|polygon|score|score_origin)|"
    r"_?unit_score|label_problem|storable|_?finite|polygon_area|polygon_parts|"
    r"_?annotation_row)\b",
    re.M,
)
RULE_HOMES = ("annotation_rules.py", "geometry.py")  # polygon helpers are geometry


def test_no_module_outside_the_rules_module_defines_an_annotation_rule():
    found = [
        f"{p.relative_to(PACKAGE)}: {m.group(0).strip()}"
        for p in sorted(PACKAGE.rglob("*.py"))
        if not (p.parent == PACKAGE and p.name in RULE_HOMES)
        for m in RULE_DEFINITIONS.finditer(p.read_text())
    ]
    assert found == []
