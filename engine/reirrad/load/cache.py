"""A cache of what is slow to rebuild and wholly determined by files: a loaded rule pack, its data, a compiled pack.

An entry is a pickle in the user's cache folder (``REIRRAD_CACHE_DIR``, else ``$XDG_CACHE_HOME/reirrad``, else
``~/.cache/reirrad``), named by the sha256 of everything it depends on: the input files' names and bytes, the JSON
Schemas, the Python version, and the package's own source files (names, sizes, modification times), so that an edit
to a rule, a schema or the code is a miss. ``REIRRAD_CACHE=off`` turns it off. A cache that cannot be read or
written is passed over: it changes how fast an answer comes, never the answer. Only successful builds are stored;
a refusal is recomputed, with its messages, every time.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
import tempfile
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from typing import TypeVar

from reirrad.load.paths import schemas_dir, tool_version

__all__ = ["cache_folder", "cached"]

T = TypeVar("T")
_FORMAT = "1"
_PACKAGE = Path(__file__).resolve().parents[1]


def cache_folder() -> Path | None:
    """Where entries are kept, or None when the cache is turned off."""
    if os.environ.get("REIRRAD_CACHE", "").lower() in ("off", "0", "no"):
        return None
    configured = os.environ.get("REIRRAD_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "reirrad"


@cache
def _code_fingerprint() -> str:
    """The package's source files by name, size and modification time, with the versions that shape a pickle."""
    digest = hashlib.sha256(f"{_FORMAT}|{sys.version}|{tool_version()}".encode())
    for path in sorted(_PACKAGE.rglob("*.py")):
        stat = path.stat()
        digest.update(f"{path.relative_to(_PACKAGE)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _key(kind: str, inputs: Iterable[Path], extra: tuple[str, ...]) -> str:
    digest = hashlib.sha256(f"{kind}|{_code_fingerprint()}|{'|'.join(extra)}\n".encode())
    for path in [*sorted(inputs), *sorted(schemas_dir().glob("*.json"))]:
        digest.update(f"{path.absolute()}\n".encode())  # absolute, not resolve(): no system call per file
        digest.update(path.read_bytes())
    return digest.hexdigest()


def cached(kind: str, inputs: Iterable[Path], build: Callable[[], T], *extra: str) -> T:
    """``build()``, or what an earlier ``build()`` with the same inputs, schemas, code and ``extra`` returned."""
    folder = cache_folder()
    if folder is None:
        return build()
    try:
        entry = folder / f"{kind}-{_key(kind, inputs, extra)}.pickle"
    except OSError:
        return build()
    try:
        with entry.open("rb") as f:
            value: T = pickle.load(f)
        return value
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError, ValueError):
        pass
    value = build()
    _store(folder, entry, value)
    return value


def _store(folder: Path, entry: Path, value: object) -> None:
    tmp: Path | None = None
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{entry.stem}-", delete=False) as f:
            tmp = Path(f.name)
            pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, entry)
        tmp = None
    except (OSError, pickle.PicklingError, TypeError, AttributeError):
        pass
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
