"""Safe output files, used by every CLI writer, the video sinks and the report writers.

Rules (one place, so ``mtkseg video in.mp4 -o in.mp4`` cannot truncate its input):

* never write over an input: the same file after resolving links (``os.path.samefile``);
* never write through a symbolic link planted at the output path: refuse it;
* refuse an existing output unless ``overwrite=True`` (the CLI's ``--overwrite``);
* write atomically: into a temporary file in the same folder, then ``os.replace``, so a
  crash leaves the previous file (or nothing), never half a file.

Every refusal raises :class:`~mtkseg.errors.OutputError` (``OutputExistsError`` for an
existing file) whose message names the path and says what to do.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterable, Iterator, Optional, Union

from .errors import OutputError, OutputExistsError

__all__ = ["check_output", "check_folder", "ensure_dir", "atomic_path", "new_temp_path", "commit", "write_bytes", "write_text",
           "write_image", "TMP_PREFIX"]

PathLike = Union[str, os.PathLike]
#: Temporary files are hidden siblings of the output: ``.<name>.<random>.part<suffix>``.
TMP_PREFIX = "."


def _same_file(a: Path, b: PathLike) -> bool:
    try:
        if os.path.realpath(a) == os.path.realpath(b):  # also catches missing/../ parts stat cannot follow
            return os.path.exists(b)
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def check_output(path: PathLike, *, inputs: Iterable[Optional[PathLike]] = (), overwrite: bool = False,
                 what: str = "output") -> Path:
    """Check that ``path`` may be written (see the module rules); returns it as a Path.

    Args:
        path: the output file.
        inputs: files the command reads (None entries are ignored); the output may not be any of them.
        overwrite: allow replacing an existing regular file.
        what: how the output is named in messages (e.g. ``"-o"``).
    """
    out = Path(path)
    if os.path.islink(out):
        raise OutputError(f"{what}: {str(out)!r} is a symbolic link; refusing to write through it "
                          "(remove the link or choose another path)")
    for item in inputs:
        if item is not None and _same_file(out, item):
            raise OutputError(f"{what}: {str(out)!r} is the input {os.fspath(item)!r}; writing it would destroy "
                              "the input, choose a different output path")
    if out.exists():
        if out.is_dir():
            raise OutputError(f"{what}: {str(out)!r} is a folder; give a file path")
        if not overwrite:
            raise OutputExistsError(f"{what}: {str(out)!r} already exists; pass --overwrite (overwrite=True) "
                                    "to replace it, or choose another path")
    parent = out.parent
    if parent.exists() and not parent.is_dir():
        raise OutputError(f"{what}: cannot write {str(out)!r}: {str(parent)!r} is a file, not a folder")
    return out


def check_folder(path: PathLike, pattern: str, *, overwrite: bool = False, what: str = "output folder") -> Path:
    """Check that folder ``path`` may receive files named like ``pattern`` (a glob): it is not
    a file, and without ``overwrite`` holds no such files yet (they would be replaced)."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{what}: {str(folder)!r} exists and is not a folder; choose another path")
    if folder.is_dir() and not overwrite:
        existing = sum(1 for _ in folder.glob(pattern))
        if existing:
            raise OutputExistsError(f"{what}: {str(folder)!r} already holds {existing} file(s) named {pattern}; "
                                    "pass --overwrite to replace them, or choose an empty folder")
    return folder


def ensure_dir(path: PathLike, what: str = "output folder") -> Path:
    """Create folder ``path`` (and its parents) or raise :class:`OutputError` saying why not."""
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError(f"{what}: {str(folder)!r} exists and is not a folder; choose another path") from None
    except NotADirectoryError:
        raise OutputError(f"{what}: cannot create {str(folder)!r}: a part of the path is a file") from None
    except OSError as exc:
        raise OutputError(f"{what}: cannot create {str(folder)!r}: {exc.strerror or exc}") from None
    return folder


@contextlib.contextmanager
def atomic_path(path: PathLike, *, inputs: Iterable[Optional[PathLike]] = (), overwrite: bool = False,
                what: str = "output", fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix) to write; on success it replaces
    ``path`` atomically, on an exception it is removed.  Checks run before and again just
    before the replace (a link or an input may have appeared meanwhile)."""
    inputs = [i for i in inputs if i is not None]
    out = check_output(path, inputs=inputs, overwrite=overwrite, what=what)
    ensure_dir(out.parent if str(out.parent) else ".", what=what)
    existed = out.exists()
    tmp = new_temp_path(out, what=what)
    try:
        yield tmp
        commit(tmp, out, inputs=inputs, overwrite=overwrite, what=what, existed=existed, fsync=fsync)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def new_temp_path(out: Path, what: str = "output") -> Path:
    """An empty, new hidden file beside ``out`` with the same suffix (OpenCV picks formats by it)."""
    try:
        fd, name = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{out.name}.", suffix=".part" + out.suffix,
                                    dir=str(out.parent) or ".")
    except OSError as exc:
        raise OutputError(f"{what}: cannot write in {str(out.parent)!r}: {exc.strerror or exc}") from None
    os.close(fd)
    return Path(name)


def commit(tmp: Path, out: Path, *, inputs: Iterable[PathLike] = (), overwrite: bool = False,
           what: str = "output", existed: bool = False, fsync: bool = True) -> None:
    """Move finished temporary file ``tmp`` onto ``out`` (after an fsync unless ``fsync=False``).
    ``existed``: ``out`` was already there when the write began (and overwriting it was allowed)."""
    check_output(out, inputs=inputs, overwrite=overwrite or existed, what=what)
    with contextlib.suppress(OSError):
        if not fsync:
            raise OSError
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    try:
        os.replace(tmp, out)
    except OSError as exc:
        raise OutputError(f"{what}: cannot write {str(out)!r}: {exc.strerror or exc}") from None


def write_bytes(path: PathLike, data: bytes, **kw) -> Path:
    """Write ``data`` to ``path`` atomically (keywords as :func:`atomic_path`)."""
    with atomic_path(path, **kw) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
    return Path(path)


def write_text(path: PathLike, text: str, **kw) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return write_bytes(path, text.encode("utf-8"), **kw)


def write_image(path: PathLike, image, **kw) -> Path:
    """Encode ``image`` by the extension of ``path`` (OpenCV) and write it atomically."""
    import cv2
    import numpy as np

    out = Path(path)
    what = kw.get("what", "output")
    try:
        ok, buf = cv2.imencode(out.suffix or ".png", np.ascontiguousarray(image))
    except cv2.error as exc:
        raise OutputError(f"{what}: cannot encode {str(out)!r}: {exc}") from None
    if not ok:
        raise OutputError(f"{what}: cannot encode {str(out)!r} (unknown image extension?)")
    return write_bytes(out, buf.tobytes(), **kw)
