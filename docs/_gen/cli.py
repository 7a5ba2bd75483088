"""The command-line reference page, generated from the ``biotune-optuna`` parser.

One section per command, in the order ``--help`` lists them: its description, its usage line
and a table of its arguments with their help. Options hidden from ``--help`` are left out here
too. Nothing is written by hand, so the page cannot disagree with the command.
"""

from __future__ import annotations

import argparse

import registries
from text import cell


PAGE = "reference/cli.md"


def _name(action: argparse.Action) -> str:
    if not action.option_strings:
        return f"`{action.metavar or action.dest}`"
    names = ", ".join(f"`{o}`" for o in action.option_strings)
    if action.nargs == 0:
        return names
    value = action.metavar or action.dest.upper()
    return f"{names} `{value}`"


def _arguments(parser: argparse.ArgumentParser) -> list[str]:
    rows = ["| argument | what it does |", "|---|---|"]
    for action in parser._actions:
        if action.help == argparse.SUPPRESS or isinstance(action, argparse._HelpAction):
            continue
        help_text = (action.help or "") % {"default": action.default, "prog": parser.prog}
        if action.choices and action.option_strings and not action.metavar:
            help_text += f" (one of {', '.join(f'`{c}`' for c in action.choices)})"
        name = _name(action).replace("|", "\\|")  # N|auto
        rows.append(f"| {name} | {cell(help_text)} |")
    return rows


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _usage(parser: argparse.ArgumentParser) -> str:
    """The usage lines as ``--help`` prints them in a terminal 88 columns wide."""
    formatter = argparse.HelpFormatter(parser.prog, width=88)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups)
    lines = formatter.format_help().strip().split("\n")
    return "\n".join(line.removeprefix("usage: ").removeprefix(" " * 7) for line in lines)


def page() -> str:
    """The page's Markdown."""
    parser = registries.parser()
    lines = [
        "# Command line",
        "",
        "<!-- Generated from the parser by docs/_gen/cli.py: edit the parser, not this page. -->",
        "",
        cell(parser.description or ""),
        "",
        "```text",
        _usage(parser),
        "```",
        "",
        "Exit codes: 0 done, 2 bad input (one line on stderr, nothing written to the storage), "
        "1 any other failure (the study stays resumable).",
    ]
    for name, command in _commands(parser).items():
        lines += ["", f"## `{name}`", "", cell(command.description or ""), ""]
        lines += ["```text", _usage(command), "```", "", *_arguments(command)]
    return "\n".join(lines) + "\n"
