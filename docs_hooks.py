"""MkDocs hooks: the Annotator's key tables come from its own key table (``annotator/keys.js``).

A page that holds ``<!-- annotator-keys -->`` gets the keys as the widget's help panel shows
them, read by node from the module the widget runs, so the docs cannot drift from the keys.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

KEYS_JS = Path(__file__).parent / "hardex_nb" / "widgets" / "static" / "annotator" / "keys.js"
MARK = "<!-- annotator-keys -->"
WHERE = {None: "everywhere", "detection": "detection (box tools)", "review": "Review only"}


def key_tables() -> str:
    """The key tables in Markdown, one per place the keys work."""
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("building the docs needs node (it reads annotator/keys.js)")
    script = (
        f"const m = await import({json.dumps(KEYS_JS.resolve().as_uri())});"
        "console.log(JSON.stringify({keys: m.KEYS, extra: m.EXTRA_HELP,"
        " detection: m.EXTRA_DETECTION_HELP}));"
    )
    done = subprocess.run(
        [node, "--input-type=module", "-e", script], capture_output=True, text=True, check=True
    )
    table = json.loads(done.stdout)
    groups: dict[str | None, list[tuple[str, str]]] = {k: [] for k in WHERE}
    for row in table["keys"]:
        shown, what, where = row[1], row[2], row[4] if len(row) > 4 else None
        groups[where].append((shown, what))
    groups[None] += [tuple(r) for r in table["extra"]]
    groups["detection"] += [tuple(r) for r in table["detection"]]
    out = []
    for where, rows in groups.items():
        out += [f"**{WHERE[where].capitalize()}**", "", "| key | does |", "| --- | --- |"]
        out += [f"| <kbd>{k.replace('|', '&#124;')}</kbd> | {what} |" for k, what in rows]
        out.append("")
    return "\n".join(out)


def on_page_markdown(markdown: str, page, config, files) -> str:
    if MARK in markdown:
        markdown = markdown.replace(MARK, key_tables())
    return markdown
