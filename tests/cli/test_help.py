"""Every option of every ``audiodetic`` command has one line of help and states its default once."""

from __future__ import annotations

import argparse
import re

from audiodetic.cli import build_parser
from audiodetic.cli.help import shows_default


def _options(parser: argparse.ArgumentParser, path: list[str]):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options(sub, [*path, name])
        elif not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            yield " ".join(path), parser, action


def test_every_option_has_help_and_one_true_default() -> None:
    problems = []
    for command, parser, action in _options(build_parser(), ["audiodetic"]):
        name = "/".join(action.option_strings) or action.dest
        if not action.help or not action.help.strip():
            problems.append(f"{command} {name}: no help")
            continue
        shown = parser._get_formatter()._expand_help(action)
        stated = len(re.findall(r"\(default\b|\bdefault:|\bdefault \S", shown))
        if stated > 1:
            problems.append(f"{command} {name}: the default is stated {stated} times: {shown!r}")
        if shows_default(action) and stated == 0:
            problems.append(f"{command} {name}: the default {action.default!r} is not stated: {shown!r}")
        if "(default: None)" in shown or "(default: False)" in shown:
            problems.append(f"{command} {name}: an empty default is shown: {shown!r}")
    assert not problems, "\n".join(problems)


def test_auto_default_is_the_value_argparse_uses() -> None:
    parser = build_parser()
    detect = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["detect"]
    action = next(a for a in detect._actions if "--score-threshold" in a.option_strings)
    shown = detect._get_formatter()._expand_help(action)
    assert f"default {action.default}" in shown.replace("default:", "default").replace("  ", " ")
