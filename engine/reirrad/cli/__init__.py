"""The ``reirrad`` command: argparse, exit codes and error printing; one module per subcommand."""

from reirrad.cli.main import main

__all__ = ["main"]
