"""What every hardex_nb widget shares: its ES module, message validation, thumbnails."""

from __future__ import annotations

import logging
import math
import re
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Literal, overload

import anywidget
import traitlets

from ..errors import HardexError
from ..media import thumbnail_bytes

if TYPE_CHECKING:
    from ..dataset import Dataset

STATIC = Path(__file__).parent / "static"
_IMPORT = re.compile(r'^import \{[^}]*\} from "(\./|\.\./)([\w/]+\.js)";\n', re.M)


def bundle(name: str) -> str:
    """The ES module of ``static/<name>`` with the modules it imports (``import {...} from
    "./dom.js"``) placed before it, once each, their ``import`` lines removed and their
    ``export`` keywords dropped: one module text, as anywidget loads a single ``_esm``.
    The files stay plain ES modules an editor can follow; no build step is needed."""
    done: list[Path] = []

    def visit(path: Path) -> None:
        if path in done:
            return
        for prefix, target in _IMPORT.findall(path.read_text(encoding="utf-8")):
            visit((path.parent / (prefix + target)).resolve())
        done.append(path)

    main = (STATIC / name).resolve()
    visit(main)
    parts = []
    for path in done:
        text = _IMPORT.sub("", path.read_text(encoding="utf-8"))
        if path != main:
            text = re.sub(r"^export (?=(const|function|class|let) )", "", text, flags=re.M)
        parts.append(f"// ---- {path.relative_to(STATIC.resolve()).as_posix()}\n{text}")
    return "\n".join(parts)


log = logging.getLogger("hardex_nb.widgets")


def _action_of(content) -> str:
    action = content.get("action") if isinstance(content, dict) else None
    return repr(action) if isinstance(action, str) else "a message"


# what the browser asks by itself (a poll for changes, the pixels of a zoomed-in view):
# the message of the person's last action stays shown through them
QUIET = {"poll", "crop"}


class BadMessage(ValueError):
    """A message from the browser that does not have the expected shape."""


class Widget(anywidget.AnyWidget):
    """Base: routes front-end messages to ``_on_<action>`` methods; any error is shown in the
    widget's ``error`` trait and nothing changes."""

    error = traitlets.Unicode("").tag(sync=True)
    notice = traitlets.Unicode("").tag(sync=True)
    # the notice's items, one line each (every file an upload skipped or rejected, with why):
    # a notice with details stays until dismissed, where a plain one fades
    notice_details = traitlets.List(traitlets.Unicode()).tag(sync=True)

    def __init__(self, **traits):
        super().__init__(**traits)
        self.on_msg(self._dispatch)

    def _dispatch(self, _widget, content, buffers) -> None:
        try:
            if not isinstance(content, dict) or not isinstance(content.get("action"), str):
                raise BadMessage("message without an action")
            handler = getattr(self, f"_on_{content['action']}", None)
            if handler is None:
                raise BadMessage(f"unknown action {content['action']!r}")
            if content["action"] not in QUIET:
                self.error = ""
                self.notice = ""  # a notice tells of the last action only
                self.notice_details = []
            ds = getattr(self, "ds", None)
            before = (ds.generation, ds.reloads) if ds is not None else None
            if getattr(handler, "takes_buffers", False):
                handler(content, list(buffers or []))
            else:
                handler(content)
            if content["action"] != "poll" and before is not None:
                self._after_action(*before)
        except (HardexError, BadMessage) as exc:
            self.error = str(exc)
        except Exception as exc:  # a bug, not the user's: shown, and logged with its traceback
            log.exception("%s: %s failed", type(self).__name__, _action_of(content))
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            # the browser counts unanswered messages to notice a kernel that is gone
            seq = content.get("seq") if isinstance(content, dict) else None
            if isinstance(seq, int) and not isinstance(seq, bool):
                self.send({"ack": seq})

    def _after_action(self, generation: int, reloads: int) -> None:
        """After an action: the handler redrew what it changed itself. What another writer
        did meanwhile (its reads found it) or what was not yet drawn when it began is left
        for the next poll to redraw, never marked as seen."""
        if generation == getattr(self, "_seen", None) and self.ds.reloads == reloads:
            self._seen = self.ds.generation

    def _on_poll(self, content: dict) -> None:
        """The browser asks every few seconds: redraw when the dataset changed, here or in
        another process (another widget, a job, a script)."""
        ds = getattr(self, "ds", None)
        if ds is None:
            return
        ds.refresh()
        if ds.generation != getattr(self, "_seen", None):
            self._seen = ds.generation
            self._dataset_changed()

    def _dataset_changed(self) -> None:
        """Redraw from the dataset (each widget says how)."""

    def handle(self, content: dict, buffers: list[bytes] | None = None) -> None:
        """Process one front-end message as if the browser had sent it (for scripts, tests)."""
        self._dispatch(self, content, buffers or [])


def takes_buffers(handler):
    """Mark a message handler that also receives the message's binary buffers."""
    handler.takes_buffers = True
    return handler


def ids_in(content: dict, key: str = "ids") -> list[int]:
    value = content.get(key)
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        raise BadMessage(f"{key}: expected a list of sample ids")
    return value


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "..."


def number_in(content: dict, key: str) -> float:
    """A finite number (a bool is not a number; an int too large for a float is refused)."""
    value = content.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadMessage(f"{key}={_shown(value)}: expected a finite number")
    try:
        out = float(value)
    except OverflowError:
        raise BadMessage(f"{key}={_shown(value)}: expected a finite number") from None
    if not math.isfinite(out):
        raise BadMessage(f"{key}={_shown(value)}: expected a finite number")
    return out


def _typed_in(content: dict, key: str, accepts, expected: str, optional: bool):
    """``content[key]`` when ``accepts`` it (or None when missing and ``optional``)."""
    value = content.get(key)
    if value is None and optional:
        return None
    if not accepts(value):
        raise BadMessage(f"{key}={_shown(value)}: expected {expected}")
    return value


@overload
def int_in(content: dict, key: str, *, optional: Literal[False] = False) -> int: ...
@overload
def int_in(content: dict, key: str, *, optional: bool) -> int | None: ...
def int_in(content: dict, key: str, *, optional: bool = False) -> int | None:
    """A whole number (not a bool)."""
    return _typed_in(
        content,
        key,
        lambda v: isinstance(v, int) and not isinstance(v, bool),
        "a whole number",
        optional,
    )


@overload
def bool_in(content: dict, key: str, *, optional: Literal[False] = False) -> bool: ...
@overload
def bool_in(content: dict, key: str, *, optional: bool) -> bool | None: ...
def bool_in(content: dict, key: str, *, optional: bool = False) -> bool | None:
    """``true`` or ``false`` exactly (not "false", not 0)."""
    return _typed_in(content, key, lambda v: isinstance(v, bool), "true or false", optional)


@overload
def text_in(content: dict, key: str, *, optional: Literal[False] = False) -> str: ...
@overload
def text_in(content: dict, key: str, *, optional: bool) -> str | None: ...
def text_in(content: dict, key: str, *, optional: bool = False) -> str | None:
    return _typed_in(content, key, lambda v: isinstance(v, str), "text", optional)


class Thumbnails:
    """JPEG thumbnails of a dataset's images, computed on demand and kept (LRU)."""

    def __init__(self, ds: Dataset, *, size: int = 160, keep: int = 2000):
        self.ds, self.size, self.keep = ds, size, keep
        self._cache: OrderedDict[int, bytes] = OrderedDict()

    def get(self, sample_id: int) -> bytes:
        if sample_id in self._cache:
            self._cache.move_to_end(sample_id)
            return self._cache[sample_id]
        data = thumbnail_bytes(self.ds.image_path(sample_id), size=self.size)
        self._cache[sample_id] = data
        if len(self._cache) > self.keep:
            self._cache.popitem(last=False)
        return data


def reject_unknown(name: str, given: dict, allowed: set[str]) -> None:
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise TypeError(
            f"{name}() got unexpected keyword argument(s) {unknown}; accepted: {sorted(allowed)}"
        )
