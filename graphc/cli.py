"""The ``graphc`` command line.

Only ``--help`` and ``--version`` exist so far; subcommands (compile, run, export, show,
bench) are added to the ``commands`` subparsers object built in :func:`build_parser`.
"""

from __future__ import annotations

import argparse

from graphc._version import __version__

DESCRIPTION = """\
graphc is a define-then-run deep-learning compiler: build a static graph in Python,
let graphc add the gradients, optimize and fuse it, and run it on the reference (NumPy),
cpu (Numba), cuda or onnx target.

example:
  graphc compile model.py --target cpu -o model.gc
"""


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser, with an (empty) subparsers group for the commands."""
    # prog is fixed so `python -m graphc` prints "graphc ...", not "__main__.py ...".
    parser = argparse.ArgumentParser(
        prog="graphc",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    # Subcommands come later: keep this object (commands = parser.add_subparsers(...))
    # and call commands.add_parser("compile", ...) with set_defaults(func=...).
    parser.add_subparsers(dest="command", title="commands", metavar="COMMAND",
                          help="run `graphc COMMAND --help` for its options")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI on ``argv`` (default: ``sys.argv[1:]``) and return the exit code.

    0 on success, 2 on a usage error. argparse's own exits (``--help``, ``--version``,
    usage errors) are turned into return values so callers and tests get an int.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits; hand its code back instead
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    if args.command is None:  # bare `graphc`: show what there is to do
        parser.print_help()
        return 0
    return 0  # unreachable until subcommands exist; they will dispatch here
