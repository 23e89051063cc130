"""``python -m txtestserver``: the same as the ``txtestserver`` command."""

from ._cli import main

raise SystemExit(main())
