"""``python -m reirrad.audit``: the audit and synth subcommands without the main CLI."""

from .cli import main

raise SystemExit(main())
