"""``python -m mtkseg.train ...``: the same options as ``mtkseg train ...``."""

import argparse
import sys

from ..cli.train import HELP, add_arguments, handler
from ..errors import MtksegError


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mtkseg.train", description=HELP)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return handler(args)
    except MtksegError as exc:
        print(f"mtkseg train: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
