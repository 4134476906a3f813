"""``python -m rsd_mini``: see :mod:`rsd_mini.cli`."""

from rsd_mini.cli import main

raise SystemExit(main())
