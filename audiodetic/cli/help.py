"""How every ``audiodetic`` command shows its options: each option has one line of help and one true default.

:class:`CommandParser` is the parser class of the whole command tree (sub-commands inherit it), and its
:class:`HelpFormatter` appends ``(default X)`` to an option's help unless the help already says its default, or the
default is empty (``None``, ``False``, an empty list): the default is then stated exactly once, and it is the value
argparse really uses.
"""

from __future__ import annotations

import argparse
from typing import Any


class HelpFormatter(argparse.HelpFormatter):
    """Appends the default to help texts that do not mention one (see the module doc)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text.lower() or "%(default)" in text or not shows_default(action):
            return text
        return f"{text} (default %(default)s)"


def shows_default(action: argparse.Action) -> bool:
    """Whether an option's default is worth stating (not ``None``, ``False``, empty or suppressed)."""
    default: Any = action.default
    return (action.option_strings != [] and default is not None and default is not False
            and default != [] and default != argparse.SUPPRESS)


class CommandParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` with :class:`HelpFormatter` unless another formatter is asked for."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)
