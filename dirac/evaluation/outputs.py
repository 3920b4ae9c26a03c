"""An output folder that knows what dirac wrote into it (``manifest.json``), so nothing else is ever deleted.

Rules (checked by :meth:`OutputFolder.prepare` before anything is written):

* a folder holding files dirac did not write (not in its ``manifest.json``), or outputs of an earlier run
  (a manifest), is refused unless ``overwrite=True``;
* with ``overwrite=True`` only the files listed in the previous manifest are removed (stale outputs go), and
  every other file stays untouched; they go just before this run's first write (or at :meth:`finish`), so a run
  that stops earlier — a setting refused after the folder check — leaves the folder as it was;
* no output lands on a file dirac did not write, nor goes through a symbolic link inside the folder;
* Hydra's job ``.log`` and wandb's run files (``wandb/``) are not dirac's output and are ignored (``sample.py``'s
  ``.hydra/`` record is written through this folder, like any output).

Every write is atomic (:mod:`dirac.io`); each file is listed in the manifest before it is written (``complete:
false`` until :meth:`finish`), so even an interrupted run's outputs can be removed with ``overwrite=true``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from torch import Tensor

from ..distributed import is_main, on_main, world
from ..io import atomic_write, before_each_write, check_finite_image, save_image, to_json, write_json
from ..runlock import LOCK_NAME
from ..shipped import refuse_shipped

log = logging.getLogger("dirac.sample")

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "dirac-outputs"


def read_manifest(folder: Path) -> list[str]:
    """Relative paths listed in ``folder/manifest.json`` (empty when there is none)."""
    path = folder / MANIFEST
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text())
        files = data["files"] if data.get("format") == MANIFEST_FORMAT else None
    except (ValueError, TypeError, KeyError, AttributeError):
        files = None
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise ValueError(f"{path} is not a dirac manifest; remove it yourself or choose another output folder")
    odd = [f for f in files if not _written_form(f)]
    if odd:
        raise ValueError(
            f"{path} lists {odd[0]!r}, not a path dirac writes (relative, normalised, inside the folder); the "
            f"manifest was edited: remove it yourself or choose another output folder"
        )
    return files


def _written_form(rel: str) -> bool:
    """Whether ``rel`` has the form of a path dirac lists: relative, normalised (no empty, ``.`` or ``..``
    components), names a file system takes (no NUL, at most 255 bytes each)."""
    parts = rel.split("/")
    try:
        return all(p not in ("", ".", "..") and "\x00" not in p and len(p.encode()) <= 255 for p in parts)
    except UnicodeEncodeError:  # a lone surrogate: no name dirac wrote
        return False


def _inside(folder: Path, rel: str) -> Path | None:
    """``folder/rel`` when it names a path inside ``folder`` without ``..`` and without passing through a symbolic
    link (the last component may be one: unlinking it removes the link, not what it points to); else ``None``."""
    root = Path(os.path.abspath(folder))
    path = Path(os.path.abspath(root / rel))
    if not path.is_relative_to(root) or path == root:
        return None
    parts = path.relative_to(root).parts
    return None if any(root.joinpath(*parts[:k]).is_symlink() for k in range(1, len(parts))) else path


HYDRA_RECORD = (".hydra/config.yaml", ".hydra/overrides.yaml", ".hydra/hydra.yaml")
"""What Hydra (and dirac before it wrote the record itself) left unlisted beside a run's manifest."""


def _existing(folder: Path, ignore: Iterable[str]) -> list[str]:
    skip = set(ignore)
    out = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if (p.is_file() or p.is_symlink()) and rel not in skip and not rel.startswith("wandb/"):
            out.append(rel)
    return out


class OutputFolder:
    """Writes images and JSON under ``root`` and records them; see the module docstring for the rules."""

    def __init__(
        self,
        root: str | Path,
        ignore: Iterable[str] = (),
        active: bool | None = None,
        record: dict[str, str] | None = None,
    ) -> None:
        self.root = Path(root)
        self.ignore = set(ignore) | {LOCK_NAME}  # the run lock's file stays (removing it would race a waiting run)
        self.written: list[str] = []
        self.foreign: set[str] = set()  # files present before the run that dirac did not write (prepare)
        self.stale: list[str] = []  # the previous run's files, removed just before this run's first write
        self.record = dict(record or {})  # {relative path: text} written first (sample.py's .hydra/ record)
        self._started = False
        # under several processes only the main one writes; the others run the same code and write nothing
        self.active = is_main() if active is None else active

    def prepare(self, overwrite: bool = False) -> list[str]:
        """Check the folder (see the rules) and the paths of ``record``; with ``overwrite`` the previous run's files
        are removed just before this run's first write. Returns them. Under several processes the main process
        checks and every rank raises its refusal."""
        return on_main(self._prepare, overwrite) if self.active or world()[1] > 1 else []

    def _prepare(self, overwrite: bool) -> list[str]:
        refuse_shipped(self.root, "write outputs")
        self.root.mkdir(parents=True, exist_ok=True)
        previous = read_manifest(self.root)
        present = _existing(self.root, self.ignore | {MANIFEST})
        if previous:  # an earlier dirac's sample run: its Hydra-written record belongs to that run
            previous += [f for f in HYDRA_RECORD if f in present and f not in previous]
        foreign = [f for f in present if f not in set(previous)]
        self.foreign = set(foreign)  # kept whatever happens: an output of the same name is refused (_record)
        if (self.root / "checkpoints").is_dir():
            raise FileExistsError(
                f"output folder {self.root} holds a training run (checkpoints/); write these outputs "
                f"to a folder of their own (hydra.run.dir=...)"
            )
        if (foreign or previous) and not overwrite:
            what = (
                f"files dirac did not write (e.g. {foreign[0]})"
                if foreign
                else f"outputs of an earlier run ({MANIFEST})"
            )
            raise FileExistsError(
                f"output folder {self.root} already holds {what}; choose a new folder (hydra.run.dir=...) or pass "
                f"overwrite=true (removes only the files listed in its {MANIFEST}, nothing else)"
            )
        for rel in self.record:  # refused now, before any work, not at the first write
            self._check_target(rel)
        self._check_folders([*previous, *self.record])
        self.stale = [f for f in previous if f not in self.ignore]  # never the job log or the lock, even if listed
        return list(self.stale)

    def _check_folders(self, paths: Iterable[str]) -> None:
        """Refuse a file dirac did not write where these outputs' folders go (``figures``, ``.hydra``, …): the run
        would stop at its write after the previous run's files were removed."""
        for rel in paths:
            parts = rel.split("/")[:-1]
            for k in range(1, len(parts) + 1):
                folder = "/".join(parts[:k])
                if folder in self.foreign:
                    raise FileExistsError(
                        f"{self.root / folder} is a file or link dirac did not write where outputs go in a folder "
                        f"of that name; move it, or choose another output folder (hydra.run.dir=...)"
                    )

    def _check_target(self, rel: str) -> Path:
        """``root/rel`` if this run may write it: inside the folder, not the manifest, not through a link, not a
        file dirac did not write."""
        path = _inside(self.root, rel)
        if path is None or path == Path(os.path.abspath(self.root / MANIFEST)):
            raise ValueError(
                f"refusing to write {rel!r} in {self.root}: outputs go inside the folder (not through a symbolic "
                f"link) and never over its {MANIFEST}; remove the link or choose another output folder"
            )
        if rel in self.foreign:
            raise FileExistsError(
                f"{self.root / rel} is a file dirac did not write and this run would replace it; move it, or choose "
                f"another output folder (hydra.run.dir=...)"
            )
        return path

    def _start(self) -> None:
        """Once, before this run's first file: remove the previous run's files (``stale``), then write ``record``."""
        if self._started:
            return
        self._started = True
        removed, kept = 0, []
        for rel in self.stale:
            path = _inside(self.root, rel)
            if path is not None and (path.is_file() or path.is_symlink()):
                path.unlink()
                removed += 1
            elif path is None:
                kept.append(rel)
        (self.root / MANIFEST).unlink(missing_ok=True)
        if removed:
            log.info("overwrite=true: removed %d files of the previous run (listed in its manifest)", removed)
        if kept:
            log.warning("left in place (they lie outside the folder or behind a symbolic link): %s", kept)
        for rel, text in self.record.items():
            self.text(rel, text)

    def produce(self, write: Callable[..., Any], *args: Any, **kwargs: Any) -> list[Path]:
        """``write(*args, **kwargs)`` (figure code returning the path, or paths, it wrote under ``root``) on the
        writing process only, its files recorded; ``[]`` on the others."""
        if not self.active:
            return []
        with before_each_write(self._claim):  # each file listed (or refused) before the figure code writes it
            made = write(*args, **kwargs)
        paths = [made] if isinstance(made, (str, Path)) else list(made or [])
        self.adopt(paths)
        return [Path(p) for p in paths]

    def _claim(self, path: str | Path) -> None:
        """:meth:`_record` for a file figure code is about to write (its path made relative to ``root``)."""
        self._record(os.path.relpath(os.path.abspath(path), os.path.abspath(self.root)))

    def _record(self, rel: str) -> Path:
        """List ``rel`` in the manifest *before* it is written, so an interrupted run's files stay removable."""
        self._check_target(rel)
        self._start()
        if rel not in self.written:
            self.written.append(rel)
            self._write_manifest(complete=False)
        return self.root / rel

    def text(self, rel: str, content: str) -> None:
        """A text file at ``root/rel`` (atomic)."""
        if self.active:
            atomic_write(self._record(rel), content)

    def _write_manifest(self, complete: bool) -> Path:
        data = {"format": MANIFEST_FORMAT, "version": 1, "complete": complete, "files": sorted(self.written)}
        with before_each_write(lambda _: None):  # dirac's own bookkeeping, also while figure code runs
            return write_json(self.root / MANIFEST, data)

    def image(self, rel: str, x: Tensor) -> None:
        """Save one ``(C, H, W)`` image in [0, 1] as PNG at ``root/rel`` (non-finite images are refused, before
        anything of the previous run is removed)."""
        if self.active:
            check_finite_image(x, self.root / rel)
            save_image(x, self._record(rel))

    def json(self, rel: str, obj: Any) -> None:
        """Strict JSON (no NaN; refused before anything of the previous run is removed) at ``root/rel``."""
        if self.active:
            text = to_json(obj) + "\n"
            atomic_write(self._record(rel), text)

    def adopt(self, paths: Iterable[str | Path]) -> None:
        """Record files written by other code (figures: a PNG and its JSON) under ``root``."""
        if not self.active:
            return
        for p in paths:
            p = Path(p)
            for f in (p, p.with_suffix(".json")) if p.suffix == ".png" else (p,):  # a figure's JSON twin
                if f.is_file():
                    self._claim(f)

    def finish(self) -> Path:
        """Write ``manifest.json`` listing every file of this run (on the writing process)."""
        if not self.active:
            return self.root / MANIFEST
        self._start()
        return self._write_manifest(complete=True)
