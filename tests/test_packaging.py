"""pyproject.toml and environment.yml declare the same packages; the README states the commands."""

import re
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_name(r) for r in project["dependencies"]}
    declared |= {_name(r) for r in project["optional-dependencies"]["dev"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    listed = set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            listed |= {_name(r) for r in dep["pip"]}
        else:
            listed.add(_name(dep))
    listed -= {"python", "pip"}
    assert declared == listed, (
        f"only in pyproject: {sorted(declared - listed)}; "
        f"only in environment.yml: {sorted(listed - declared)}"
    )


def test_readme_names_the_two_commands_and_ci_calls_make_test():
    readme = (ROOT / "README.md").read_text()
    assert "make lab" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_readme_is_a_short_user_document_with_its_pictures():
    readme = (ROOT / "README.md").read_text()
    lines = readme.splitlines()
    assert len(lines) <= 90, f"README.md has {len(lines)} lines; the internals belong in docs/"
    assert "pip install hardex_nb" in readme
    pictures = re.findall(r"!\[[^\]]+\]\(([^)]+)\)", readme)
    assert len(pictures) >= 2, "the README shows the widgets"
    for rel in pictures:
        picture = ROOT / rel
        assert picture.is_file(), rel
        assert picture.stat().st_size < 150_000, f"{rel}: keep committed pictures small"
    for rel in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (ROOT / rel).is_file(), f"README links to {rel}, which is not there"


def test_one_version_and_jupyterlab_is_an_extra():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" in project["project"]["dynamic"] and "version" not in project["project"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "hardex_nb.__version__"}
    runtime = {_name(r) for r in project["project"]["dependencies"]}
    assert "jupyterlab" not in runtime and "notebook" not in runtime
    assert {_name(r) for r in project["project"]["optional-dependencies"]["lab"]} == {"jupyterlab"}


def test_public_result_types_are_exported():
    import hardex_nb as hx

    for name in (
        "AnnotationImport",
        "DetectionReport",
        "ClassificationReport",
        "Reason",
        "HardType",
    ):
        assert name in hx.__all__ and getattr(hx, name).__module__.startswith("hardex_nb.")
    assert sorted(hx.__all__) == sorted(set(hx.__all__))
    missing = [n for n in hx.__all__ if not hasattr(hx, n)]
    assert not missing, missing


def test_import_is_quick_and_torch_loads_with_the_first_job():
    """A notebook that only labels, imports or evaluates never waits for torch (~3 s here)."""
    import subprocess
    import sys

    probe = (
        "import sys, hardex_nb as hx\n"
        "before = sorted(m for m in ('torch', 'torchvision') if m in sys.modules)\n"
        "hx.Dataset, hx.Annotator, hx.evaluate_detections\n"
        "after_widgets = 'torch' in sys.modules\n"
        "from hardex_nb import train\n"
        "print(before, after_widgets, hx.train is train, train.__module__, 'torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["[]", "False", "True", "hardex_nb.jobs.train", "True"], out


def test_every_docs_page_is_in_the_nav_and_every_nav_entry_exists():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())

    def entries(nav):
        for item in nav:
            for value in item.values() if isinstance(item, dict) else [item]:
                if isinstance(value, list):
                    yield from entries(value)
                else:
                    yield value

    listed = set(entries(config["nav"]))
    docs = ROOT / "docs"
    pages = {
        p.relative_to(docs).as_posix() for p in docs.rglob("*.md") if "notebooks" not in p.parts
    }
    assert pages <= listed, f"pages not in the nav: {sorted(pages - listed)}"
    for entry in listed:
        assert (docs / entry).is_file(), entry
