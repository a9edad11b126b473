"""Safe extraction of .zip uploads.

Every member is checked before anything is written: absolute paths, ``..`` components,
drive letters, symlinks and a total uncompressed size (or member count) over the limit are
refused with a :class:`~hardex_nb.errors.FormatError` naming each bad member.
"""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path, PurePosixPath

from ..errors import FormatError

MAX_TOTAL_BYTES = 8 * 1024**3
MAX_MEMBERS = 200_000


def check_members(zip_path: str | Path, *, max_total_bytes: int = MAX_TOTAL_BYTES,
                  max_members: int = MAX_MEMBERS) -> list[zipfile.ZipInfo]:
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
            raise FormatError(f"{zip_path.name}: {len(infos)} members is over the limit of "
                              f"{max_members}; split the archive.")
        total = 0
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
                files.append(info)
            total += info.file_size
        if total > max_total_bytes:
            problems.append(f"total uncompressed size {total} bytes is over the limit of "
                            f"{max_total_bytes} bytes")
    if problems:
        raise FormatError(f"{zip_path.name}: refused, nothing was extracted", problems)
    return files


def safe_extract(zip_path: str | Path, dest: str | Path, **limits) -> list[Path]:
    """Extract the regular files of a checked zip under ``dest``; returns their paths."""
    members = check_members(zip_path, **limits)
    dest = Path(dest)
    out: list[Path] = []
    with zipfile.ZipFile(zip_path) as zf:
        for info in members:
            parts = [p for p in PurePosixPath(info.filename.replace("\\", "/")).parts if p != "."]
            if not parts or parts[0].startswith("__MACOSX"):
                continue
            target = dest.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as dst:
                written = 0
                while chunk := src.read(1 << 20):
                    written += len(chunk)
                    if written > info.file_size:  # a header that lies about the size
                        raise FormatError(f"{Path(zip_path).name}: member {info.filename} is "
                                          "larger than its header says; refused.")
                    dst.write(chunk)
            out.append(target)
    return out
