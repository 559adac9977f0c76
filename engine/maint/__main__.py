"""``python -m reirrad.maint rules ...``."""

from .cli import main

raise SystemExit(main())
