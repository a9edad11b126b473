"""Safe extraction of .zip uploads.

Every member is checked before anything is written: absolute paths, ``..`` components,
drive letters, symlinks, two members that would land on the same path (``x.png`` twice,
``./y.png`` and ``y.png``), and a total uncompressed size (or member count) over the limit
are refused with a `hardex_nb.errors.FormatError` naming each bad member. Sizes are
checked as the archive declares them, before extraction, and extraction stops at the
declared size.
"""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path, PurePosixPath

from ..errors import FormatError

MAX_TOTAL_BYTES = 8 * 1024**3
MAX_MEMBERS = 200_000


def check_members(
    zip_path: str | Path, *, max_total_bytes: int = MAX_TOTAL_BYTES, max_members: int = MAX_MEMBERS
) -> list[zipfile.ZipInfo]:
    """Return the regular-file members of a zip, refusing it whole if any member is unsafe."""
    zip_path = Path(zip_path)
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise FormatError(f"{zip_path.name}: not a readable .zip file ({exc}).") from exc
    problems: list[str] = []
    files: list[zipfile.ZipInfo] = []
    with zf:
        infos = zf.infolist()
        if len(infos) > max_members:
            raise FormatError(
                f"{zip_path.name}: {len(infos)} members is over the limit of "
                f"{max_members}; split the archive."
            )
        total = 0
        seen: dict[tuple[str, ...], str] = {}
        for info in infos:
            name = info.filename
            pure = PurePosixPath(name.replace("\\", "/"))
            mode = info.external_attr >> 16
            if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
                problems.append(f"{name}: absolute path")
            elif ".." in pure.parts:
                problems.append(f"{name}: path climbs out of the archive with '..'")
            elif stat.S_ISLNK(mode):
                problems.append(f"{name}: symbolic link")
            elif info.is_dir():
                continue
            else:
                key = member_parts(name)
                if key in seen:
                    problems.append(
                        f"{name}: lands on the same path as {seen[key]}; every "
                        "member needs its own name"
                    )
                else:
                    seen[key] = name
                    files.append(info)
            total += info.file_size
        folders = {key[:i] for key in seen for i in range(1, len(key))}
        problems += [
            f"{seen[key]}: a file where another member needs a folder"
            for key in seen
            if key in folders
        ]
        if total > max_total_bytes:
            problems.append(
                f"total uncompressed size {total} bytes is over the limit of "
                f"{max_total_bytes} bytes"
            )
    if problems:
        raise FormatError(f"{zip_path.name}: refused, nothing was extracted", problems)
    return files


def member_parts(name: str) -> tuple[str, ...]:
    """Where a member lands under the extraction folder, as path parts."""
    return tuple(p for p in PurePosixPath(name.replace("\\", "/")).parts if p not in (".", ""))


def safe_extract(
    zip_path: str | Path,
    dest: str | Path,
    *,
    max_member_bytes: int | None = None,
    too_large: list[tuple[str, int]] | None = None,
    **limits,
) -> list[Path]:
    """Extract the regular files of a checked zip under ``dest``; returns their paths.

    Members whose declared size is over ``max_member_bytes`` are not extracted; they are
    listed in ``too_large`` as (name, declared bytes)."""
    members = check_members(zip_path, **limits)
    dest = Path(dest)
    out: list[Path] = []
    with zipfile.ZipFile(zip_path) as zf:
        for info in members:
            parts = list(member_parts(info.filename))
            if not parts or parts[0].startswith("__MACOSX"):
                continue
            if max_member_bytes is not None and info.file_size > max_member_bytes:
                if too_large is not None:
                    too_large.append((parts[-1], info.file_size))
                continue
            target = dest.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as dst:
                written = 0
                while chunk := src.read(1 << 20):
                    written += len(chunk)
                    if written > info.file_size:  # a header that lies about the size
                        raise FormatError(
                            f"{Path(zip_path).name}: member {info.filename} is "
                            "larger than its header says; refused."
                        )
                    dst.write(chunk)
            out.append(target)
    return out
