"""``python -m tconv``: the ``tconv`` command (:mod:`tconv.cli`)."""

import sys

from .cli import main

sys.exit(main())
