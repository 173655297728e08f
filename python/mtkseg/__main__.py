"""``python -m mtkseg`` runs the command line, like the ``mtkseg`` script."""

import sys

from .cli import main

sys.exit(main())
