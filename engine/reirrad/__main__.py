"""``python -m reirrad``."""

from reirrad.cli.main import main

raise SystemExit(main())
