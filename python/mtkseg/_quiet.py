"""Quiet by default: mute what LiteRT's C++ prints to file descriptor 2.

LiteRT writes ``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.`` on every model
load, accelerator registry lines when a ``CompiledModel`` is made and ``DestroyAccelerator``
lines when one is destroyed, straight to fd 2: Python's :mod:`logging` and
``TF_CPP_MIN_LOG_LEVEL`` do not reach it.  :func:`native_output_muted` redirects fd 2 to a
temporary file around such calls and replays what was captured into
``logging.getLogger("mtkseg.runtime")`` at DEBUG level, so nothing is lost, only hidden.

One switch shows everything: ``MTKSEG_LOG_LEVEL=debug`` in the environment (read when
``mtkseg`` is imported) or ``mtkseg -v``/``--verbose`` on the command line calls
:func:`set_log_level`, which sets the ``mtkseg`` logger's level, gives it a stderr handler and
turns the muting off (the native lines then print as they happen).

:func:`demoted_logs` turns the WARNING/INFO records of the current thread into DEBUG ones
for a moment: :meth:`mtkseg.Segmenter.replicate` uses it so a fallback (e.g. XNNPACK cannot
prepare the model) is logged once per Segmenter, not once per replica.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
import tempfile
import threading
from typing import Iterator, Optional, Set, Union

__all__ = ["native_output_muted", "demoted_logs", "set_log_level", "muting_enabled", "configure_from_env",
           "ENV_VAR"]

#: Environment variable read at import: ``debug``, ``info``, ``warning`` (default), ``error``.
ENV_VAR = "MTKSEG_LOG_LEVEL"
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "warn": logging.WARNING,
           "error": logging.ERROR, "critical": logging.CRITICAL}

log = logging.getLogger("mtkseg.runtime")

_lock = threading.Lock()
_depth = 0  # threads inside native_output_muted (fd 2 is process-wide: redirected once for all)
_saved_fd: Optional[int] = None
_capture = None  # the temporary file fd 2 points at while muted
_muting = True
_handler: Optional[logging.Handler] = None
_atexit_installed = False


def muting_enabled() -> bool:
    """Whether :func:`native_output_muted` mutes (False after ``set_log_level("debug")``)."""
    return _muting


def set_log_level(level: Union[str, int]) -> None:
    """Set the ``mtkseg`` logger's level (``"debug"``, ``"info"``, ``"warning"``, ... or a number).

    Below WARNING the logger gets a stderr handler (once) so the messages show; at DEBUG the
    native output of LiteRT is no longer muted.

    Raises:
        InvalidArgumentError: an unknown level name.
    """
    global _muting, _handler
    if isinstance(level, str):
        key = level.strip().lower()
        if key not in _LEVELS:
            from .errors import InvalidArgumentError

            raise InvalidArgumentError(f"log level: expected one of {', '.join(sorted(set(_LEVELS) - {'warn'}))}, "
                                       f"got {level!r} (check {ENV_VAR} or -v)")
        value = _LEVELS[key]
    else:
        value = int(level)
    root = logging.getLogger("mtkseg")
    root.setLevel(value)
    if value < logging.WARNING and _handler is None:
        _handler = logging.StreamHandler(sys.stderr)
        _handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(_handler)
    _muting = value > logging.DEBUG


def configure_from_env() -> None:
    """Apply ``MTKSEG_LOG_LEVEL`` if set (called when ``mtkseg`` is imported).  A bad value is
    reported as a warning (an import must not fail over it) and ignored."""
    text = os.environ.get(ENV_VAR, "").strip()
    if not text:
        return
    try:
        set_log_level(text)
    except Exception as exc:  # InvalidArgumentError; never fail the import
        logging.getLogger("mtkseg").warning("%s ignored: %s", ENV_VAR, exc)


def _mute_at_exit() -> None:
    # LiteRT destroys its accelerator registry after Python's atexit handlers ran and prints
    # ``DestroyAccelerator`` lines; tracebacks of uncaught errors are printed before this.
    if not _muting:
        return
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)


def _replay(text: str) -> None:
    for line in text.splitlines():
        if line.strip():
            log.debug("native: %s", line.rstrip())


@contextlib.contextmanager
def native_output_muted() -> Iterator[None]:
    """Within the block, what native code writes to fd 2 is captured and replayed into the
    ``mtkseg.runtime`` logger at DEBUG level on exit.

    Thread-safe and re-entrant: fd 2 is redirected when the first thread enters and restored
    when the last one leaves (output of other threads meanwhile is captured too).  A no-op
    when muting is off (``MTKSEG_LOG_LEVEL=debug``) or fd 2 is not usable.
    """
    global _depth, _saved_fd, _capture, _atexit_installed
    if not _muting:
        yield
        return
    entered = False
    with _lock:
        if _depth == 0:
            try:
                sys.stderr.flush()
                capture = tempfile.TemporaryFile(mode="w+b", prefix="mtkseg-native-")
                saved = os.dup(2)
            except (OSError, ValueError, AttributeError):
                capture = None
            if capture is not None:
                os.dup2(capture.fileno(), 2)
                _saved_fd, _capture = saved, capture
                if not _atexit_installed:
                    atexit.register(_mute_at_exit)
                    _atexit_installed = True
        if _capture is not None:
            _depth += 1
            entered = True
    try:
        yield
    finally:
        if entered:
            text = ""
            with _lock:
                _depth -= 1
                if _depth == 0 and _capture is not None and _saved_fd is not None:
                    os.dup2(_saved_fd, 2)
                    os.close(_saved_fd)
                    capture, _capture, _saved_fd = _capture, None, None
                    try:
                        capture.seek(0)
                        text = capture.read().decode("utf-8", "replace")
                    finally:
                        capture.close()
            if text:
                _replay(text)


class _Demote(logging.Filter):
    """Logger filter: records made on the registered threads become DEBUG records."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: Set[int] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if threading.get_ident() in self.threads and record.levelno > logging.DEBUG:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


_demote = _Demote()
_demote_lock = threading.Lock()
_demote_depth = 0


@contextlib.contextmanager
def demoted_logs() -> Iterator[None]:
    """Within the block, records of the ``mtkseg.runtime`` logger made on this thread are
    logged at DEBUG (used for replicas: their messages repeat the original's)."""
    global _demote_depth
    me = threading.get_ident()
    loggers = [logging.getLogger("mtkseg.runtime")]
    with _demote_lock:
        already = me in _demote.threads
        _demote.threads.add(me)
        if _demote_depth == 0:
            for lg in loggers:
                lg.addFilter(_demote)
        _demote_depth += 1
    try:
        yield
    finally:
        with _demote_lock:
            if not already:
                _demote.threads.discard(me)
            _demote_depth -= 1
            if _demote_depth == 0:
                for lg in loggers:
                    lg.removeFilter(_demote)
