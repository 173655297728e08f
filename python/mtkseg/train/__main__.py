"""``python -m mtkseg.train ...`` runs ``mtkseg train ...``."""

import sys

from ..cli import main

sys.exit(main(["train", *sys.argv[1:]]))
