"""``python -m reirrad``."""

from .cli import main

raise SystemExit(main())
