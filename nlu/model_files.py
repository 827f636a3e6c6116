"""A model saved as several files that no reader ever sees half replaced.

A model is a JSON file (what it is, its thresholds, its fingerprint) and data files
(weights, graphs). Renaming each file into place one by one is not enough: a reader that
starts between two renames loads one training's weights with another training's JSON, and
two trainings at once interleave their files. So each save writes its data files under
names of their own (`weights.<save>.npz`), writes the JSON that names them last and swaps
it in with one rename. A reader reads the JSON first and then the files it names, which
stay those of one save; if a writer removed them in between, the reader reads the new
JSON and its files. Writers take the folder's lock, so only one saves at a time, and
each removes the files of earlier saves once its JSON is in place.

Models saved before this (`weights.npz` beside `model.json`, no file list) still load.
"""

from __future__ import annotations

import fcntl
import json
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

Loaded = TypeVar("Loaded")

# A reader retries this often when writers keep replacing the model under it.
_READ_ATTEMPTS = 5
_LOCK_FILE = ".lock"


@contextmanager
def saving(directory: Path) -> Iterator[str]:
    """Hold the folder's writer lock for one save; gives the save's name for its files."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / _LOCK_FILE, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield uuid.uuid4().hex[:12]
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def file_of_save(kind: str, save: str) -> str:
    """`weights.npz` of save `ab12` is `weights.ab12.npz`."""
    stem, _, suffix = kind.partition(".")
    return f"{stem}.{save}.{suffix}"


def publish(
    directory: Path, meta_file: str, meta: Mapping[str, Any], kinds: Mapping[str, str]
) -> None:
    """Swap in `meta`, which names this save's data files under `meta["files"]`, then
    remove the data files of every other save of the same `kinds` (file name by role).
    Call inside `saving`."""
    staged = directory / f"{meta_file}.{uuid.uuid4().hex[:8]}.tmp"
    staged.write_text(json.dumps(meta), encoding="utf-8")
    staged.replace(directory / meta_file)
    _remove_other_saves(directory, meta_file, kinds, keep=set(meta.get("files", {}).values()))


def remove(directory: Path, meta_file: str, kinds: Mapping[str, str]) -> None:
    """Remove the model: its JSON first (so no reader starts on it), then its files."""
    if not directory.exists():
        return
    with saving(directory):
        (directory / meta_file).unlink(missing_ok=True)
        _remove_other_saves(directory, meta_file, kinds, keep=set())


def read(
    directory: Path,
    meta_file: str,
    kinds: Mapping[str, str],
    load: Callable[[Path, dict[str, Any], dict[str, Path]], Loaded],
) -> Loaded:
    """`load(directory, meta, files)` on the JSON and the data files it names (role → path).

    A save that lands while the files are read removes them; then the new JSON is read
    and loaded instead. Only when the JSON did not change is a missing file an error."""
    for attempt in range(1, _READ_ATTEMPTS + 1):
        text = (directory / meta_file).read_text(encoding="utf-8")
        meta = json.loads(text)
        if not isinstance(meta, dict):
            raise ValueError(f"{directory / meta_file}: not a JSON object")
        named = meta.get("files") or kinds  # saved before file lists: the plain names
        files = {role: directory / str(name) for role, name in named.items()}
        try:
            return load(directory, meta, files)
        except FileNotFoundError:
            replaced = _read_or_none(directory / meta_file) != text
            if not replaced or attempt == _READ_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def _read_or_none(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def _remove_other_saves(
    directory: Path, meta_file: str, kinds: Mapping[str, str], keep: set[str]
) -> None:
    for kind in kinds.values():
        stem, _, suffix = kind.partition(".")
        for path in directory.glob(f"{stem}.*"):
            if path.name in keep:
                continue
            if path.name == kind or (path.name.endswith(f".{suffix}") and _is_save_of(path, stem)):
                path.unlink(missing_ok=True)
            elif path.name.startswith(f"{kind}.") and path.name.endswith(".tmp"):
                path.unlink(missing_ok=True)  # a writer stopped half way, before this
    for staged in directory.glob(f"{meta_file}.*.tmp"):
        staged.unlink(missing_ok=True)


def _is_save_of(path: Path, stem: str) -> bool:
    """`weights.ab12cd34ef56.npz` (a save's file) or `weights.tmp.npz` (the old staging)."""
    middle = path.name[len(stem) + 1 :].split(".", 1)[0]
    return middle == "tmp" or (len(middle) == 12 and all(c in "0123456789abcdef" for c in middle))
