"""The ``mtkseg`` command line.

Each sub-command lives in its own module under ``mtkseg.cli`` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a handler
``handler(args) -> int``.  Commands that need the ``train`` extra import TensorFlow
inside their handler, so ``mtkseg --help`` never needs it.

Exit status: 0 done, 1 an error, 2 a usage error (bad option, or an output that would
overwrite an existing file without ``--overwrite``, an input, or a symbolic link), 130
Ctrl-C, 143 SIGTERM, 129 SIGHUP (outputs are finalised in all three).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import List, Optional

from .. import __version__
from ..errors import MtksegError, OutputError
from ._signals import stop_signals_as_interrupt

# Order is the order shown by ``mtkseg --help``.
COMMAND_MODULES = ("info", "run", "video", "eval", "compare", "bench", "train", "export")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mtkseg",
        description="Low-power semantic segmentation of road scenes on edge devices.",
    )
    parser.add_argument("--version", action="version", version=f"mtkseg {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="show mtkseg's debug log and LiteRT's own messages (same as MTKSEG_LOG_LEVEL=debug)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        module.register(subparsers)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verbose:
        from .._quiet import set_log_level

        set_log_level("debug")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        with stop_signals_as_interrupt():  # SIGTERM/SIGHUP finalise outputs like Ctrl-C
            return int(args.func(args) or 0)
    except OutputError as exc:  # nothing was written: a usage error, like argparse's
        print(f"mtkseg {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except MtksegError as exc:
        print(f"mtkseg {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        print(f"mtkseg {args.command}: interrupted" + (f" ({exc.signame})" if hasattr(exc, "signame") else ""),
              file=sys.stderr)
        return getattr(exc, "exit_code", 130)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
