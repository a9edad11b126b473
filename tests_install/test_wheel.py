"""The built wheel works where a user puts it: a fresh venv, its runtime dependencies only.

Not part of ``make test`` (installing torch into a new venv takes a few minutes): ``make wheel``
runs it, and so does CI after ``make test``. It builds the wheel with ``python -m build``,
installs it (not editable) with nothing of the dev or lab extras, and then, in that venv:

- imports ``hardex_nb`` from the venv's site-packages, not from this checkout;
- finds no JupyterLab there (it is the ``lab`` extra: users bring their own front end);
- checks every widget's ES module bundle and stylesheet come from the installed files, and that
  node parses each bundle;
- runs the quickstart notebook's first cells (images in, a dataset, labels, an Annotator).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# the torch pair the Makefile installs (pip takes it from this machine's disk), read from there
TORCH_PAIR = re.search(r"^TORCH_PAIR \?= (.+)$", (ROOT / "Makefile").read_text(), re.M)[1].split()
# cells of notebooks/01_quickstart.ipynb up to the first training: imports and images,
# the dataset, five labels per class, an Annotator
QUICKSTART_CELLS = 7


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert done.returncode == 0, (
        f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(ROOT)])
    (built,) = out.glob("hardex_nb-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(tmp_path_factory, wheel: Path) -> Path:
    env = tmp_path_factory.mktemp("venv")
    base = getattr(sys, "_base_executable", sys.executable)
    _run([base, "-m", "venv", str(env)])
    pip = [
        str(env / "bin" / "python"),
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
    ]
    # the wheel and what it requires; scikit-learn is the quickstart's data (its digits), not ours
    _run([*pip, str(wheel), *TORCH_PAIR, "scikit-learn"])
    return env


def test_wheel_holds_every_widget_file(wheel: Path):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = archive.read(meta).decode()
    static = ROOT / "hardex_nb" / "widgets" / "static"
    expected = {
        f"hardex_nb/{p.relative_to(ROOT / 'hardex_nb').as_posix()}"
        for p in static.rglob("*")
        if p.is_file()
    }
    assert expected <= names, f"missing from the wheel: {sorted(expected - names)}"
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    runtime = [r for r in requires if "extra ==" not in r]
    assert not any("jupyterlab" in r for r in runtime), runtime
    assert any("jupyterlab" in r and 'extra == "lab"' in r for r in requires), requires


CHECK = textwrap.dedent(
    """
    import importlib.util, json, sysconfig
    from pathlib import Path

    import hardex_nb as hx

    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    out = {"file": hx.__file__, "in_site": Path(hx.__file__).resolve().is_relative_to(site),
           "version": hx.__version__, "jupyterlab": importlib.util.find_spec("jupyterlab") is not None,
           "widgets": {}}
    from hardex_nb.widgets._base import STATIC

    out["static"] = str(STATIC)
    out["static_in_site"] = Path(STATIC).resolve().is_relative_to(site)
    sheet = (Path(STATIC) / "hardex.css").read_text()
    for cls in (hx.Annotator, hx.Review, hx.Gallery, hx.ReportView, hx.ConfusionMatrix):
        out["widgets"][cls.__name__] = {"css_is_installed_file": str(cls._css) == sheet,
                                        "css_bytes": len(str(cls._css)), "esm": str(cls._esm)}
    print(json.dumps(out))
    """
)


def test_installed_package_loads_its_widgets_from_site_packages(venv: Path, tmp_path: Path):
    done = _run([str(venv / "bin" / "python"), "-c", CHECK], cwd=tmp_path)
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["in_site"], f"hardex_nb imported from {found['file']}, not the venv"
    assert not found["jupyterlab"], "JupyterLab came with the runtime dependencies"
    import hardex_nb

    assert found["version"] == hardex_nb.__version__
    assert set(found["widgets"]) == {
        "Annotator",
        "Review",
        "Gallery",
        "ReportView",
        "ConfusionMatrix",
    }
    node = shutil.which("node")
    assert found["static_in_site"], f"the widgets' files load from {found['static']}, not the venv"
    for name, w in found["widgets"].items():
        assert w["css_is_installed_file"] and w["css_bytes"] > 1000, name
        assert "export default" in w["esm"], f"{name}'s bundle has no default export"
        assert "import {" not in w["esm"], f"{name}'s bundle still imports a sibling module"
        if node:
            module = tmp_path / f"{name}.mjs"
            module.write_text(w["esm"])
            _run([node, "--check", str(module)])


def test_quickstart_first_cells_run_headless(venv: Path, tmp_path: Path):
    cells = json.loads((ROOT / "notebooks" / "01_quickstart.ipynb").read_text())["cells"]
    code = ["".join(c["source"]) for c in cells[:QUICKSTART_CELLS] if c["cell_type"] == "code"]
    assert any("hx.Annotator(" in c for c in code), (
        "the quickstart's first cells no longer open an Annotator"
    )
    script = "\n\n".join(code) + textwrap.dedent(
        """

        widget = hx.Annotator(ds, sample_id=first['3'][0])
        assert widget.sample["sample_id"] == first['3'][0], widget.sample
        counts = ds.samples["status"].value_counts().to_dict()
        print("STATUS", counts)
        """
    )
    env = {**os.environ, "MPLBACKEND": "Agg", "TMPDIR": str(tmp_path)}
    done = _run([str(venv / "bin" / "python"), "-c", script], cwd=tmp_path, env=env)
    status = next(line for line in done.stdout.splitlines() if line.startswith("STATUS"))
    assert "'labeled': 50" in status, status
