"""The ``audiodetic`` command.

Each subcommand lives in its own module ``audiodetic.cli.<name>`` that defines ``register(subparsers)`` (adds its
parser and sets ``func``) and ``run(args) -> int``. Heavy imports happen inside ``run`` so ``--help`` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from audiodetic import __version__, status
from audiodetic.cli.help import CommandParser
from audiodetic.errors import AudiodeticError

# Modules in the order their commands appear in --help. ``download`` also registers ``models``.
SUBCOMMAND_MODULES = ("detect", "video", "embed", "bridge", "download", "eval", "demo")


def build_parser() -> argparse.ArgumentParser:
    parser = CommandParser(
        prog="audiodetic",
        description="Find and segment the things in a picture that make a given sound.",
    )
    parser.add_argument("--version", action="version", version=f"audiodetic {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(f"audiodetic.cli.{name}")
        except ModuleNotFoundError as error:
            if error.name == f"audiodetic.cli.{name}":
                continue  # that command is not part of this build
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code (0 ok, 1 runtime failure, 2 usage error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        with status.quiet_while(bool(getattr(args, "no_progress", False))):
            return int(args.func(args) or 0)
    except (AudiodeticError, FileNotFoundError, ValueError) as error:
        print(f"audiodetic {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"audiodetic {args.command}: interrupted", file=sys.stderr)
        return 130
