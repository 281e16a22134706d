"""The ``graphc`` command line: a thin argparse layer over :mod:`graphc.cli_commands`.

Subcommands: ``compile`` (model file -> ``.graphc`` bundle or ``.onnx``), ``run`` (an
artifact on ``.npy``/``.npz`` inputs), ``show`` (draw the graph), ``bench`` (time it).

Exit status: 0 on success; 2 on a usage error (unknown flag, missing file, a badly written
``--input``); 1 when the work fails (a model file that raises, a tampered bundle, inputs
that do not fit the signature, a target that is not built); 130 on Ctrl-C and 141 when
the reader of the output goes away (``| head``), as shells do. Errors are one message on
stderr; ``--verbose`` adds the Python traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback

from graphc._version import __version__

DESCRIPTION = """\
graphc is a define-then-run deep-learning compiler: build a static graph in Python,
let graphc add the gradients, optimize and fuse it, and run it on the reference (NumPy),
cpu (Numba), cuda or onnx target.

example:
  graphc compile model.py --target cpu -o model.graphc
  graphc run model.graphc --input x=x.npy
  graphc show model.py -o graph.svg --backward
  graphc bench model.py --target cpu --batch 64

exit status: 0 success, 1 failure, 2 usage error (--verbose shows tracebacks)
"""

TARGETS = ("cpu", "cuda", "onnx", "reference")

COMPILE_HELP = """\
Compile a model file into one artifact: a .graphc bundle (optimized graph, weights,
generated kernel sources, manifest with hashes) or, for --target onnx, a .onnx file.

What is compiled, in order: build() returning gc.Signature(...) or a Keras model; a
module-level gc.Signature or Keras model; else the placeholders as inputs and the
tensors named by --output as outputs.

example:
  graphc compile model.py --target reference -o model.graphc --explain
  graphc compile model.py --target cpu --output probs --weights ckpt.npz
"""

RUN_HELP = """\
Run a .graphc bundle or a .onnx file. Inputs come from .npy files (NAME=file.npy) or
.npz files (NAME=file.npz, or just file.npz whose keys are the input names). Outputs
are printed, or written as DIR/NAME.npy with --output-dir (/ and : in names become _).

example:
  graphc run model.graphc --input x=x.npy --output-dir out/
"""

SHOW_HELP = """\
Draw the graph of a model file or bundle: .svg/.png/.pdf through Graphviz when its `dot`
program is installed (otherwise a .dot file is written and the command to render it
shown), .dot, or .txt (indented text). Without -o, the text is printed.

example:
  graphc show model.py -o graph.svg --backward
  graphc show model.graphc -o graph.txt --fused
"""

BENCH_HELP = """\
Time the compiled model on synthetic inputs (unknown dims = --batch): warm-up calls,
then the median of timed calls for the forward run and, if the model has updates, the
training step; also the compile time, cold (first) and warm (again in this process).

example:
  graphc bench model.py --target cpu --batch 64 --repeat 50
"""


def _common() -> argparse.ArgumentParser:
    # SUPPRESS: a subcommand's default must not overwrite `graphc --verbose COMMAND`.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="show Python tracebacks on errors")
    return common


def _sub(commands: argparse._SubParsersAction, name: str, help_: str, text: str
         ) -> argparse.ArgumentParser:
    return commands.add_parser(name, help=help_, description=text, parents=[_common()],
                               formatter_class=argparse.RawDescriptionHelpFormatter)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with the compile, run, show and bench subcommands."""
    from graphc import cli_bench, cli_commands, cli_run

    # prog is fixed so `python -m graphc` prints "graphc ...", not "__main__.py ...".
    parser = argparse.ArgumentParser(prog="graphc", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="show Python tracebacks on errors")
    commands = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND",
                                     help="run `graphc COMMAND --help` for its options")

    p = _sub(commands, "compile", "compile a model file into a .graphc bundle or .onnx",
             COMPILE_HELP)
    p.add_argument("model", help="the model file (model.py)")
    p.add_argument("--target", "-t", choices=TARGETS, default="cpu",
                   help="what to compile for (default: cpu)")
    p.add_argument("-o", "--out", metavar="OUT",
                   help="the artifact to write (default: MODEL.graphc, or MODEL.onnx)")
    p.add_argument("--output", action="append", metavar="NAME",
                   help="a tensor to output, by name (repeatable); replaces the outputs")
    p.add_argument("--weights", metavar="CKPT.npz",
                   help="variable values to bundle (an .npz from gc.train.Saver or a Keras "
                        "model's save_weights)")
    p.add_argument("--explain", action="store_true",
                   help="print each pass's changes, the fused kernels and planned memory")
    p.set_defaults(func=cli_commands.cmd_compile)

    p = _sub(commands, "run", "run a .graphc bundle or .onnx file on .npy/.npz inputs",
             RUN_HELP)
    p.add_argument("artifact", help="a .graphc bundle or a .onnx file")
    p.add_argument("--input", "-i", action="append", metavar="NAME=FILE",
                   help="an input: NAME=file.npy, NAME=file.npz or file.npz (repeatable)")
    p.add_argument("--output-dir", metavar="DIR", help="write each output as DIR/NAME.npy")
    p.add_argument("--train", action="store_true",
                   help="run one training step (bundles with updates) instead of inference")
    p.set_defaults(func=cli_run.cmd_run)

    p = _sub(commands, "show", "draw the graph of a model file or bundle", SHOW_HELP)
    p.add_argument("source", help="a model file (model.py) or a .graphc bundle")
    p.add_argument("-o", "--out", metavar="FILE",
                   help="graph.svg|.png|.pdf|.dot|.txt (default: print text)")
    p.add_argument("--backward", action="store_true",
                   help="also draw the training step (gradients and updates)")
    p.add_argument("--fused", action="store_true",
                   help="draw fusion groups as clusters (when the backend reports them)")
    p.add_argument("--target", "-t", choices=TARGETS, default=None,
                   help="whose fusion groups to draw (default: the bundle's, else cpu)")
    p.add_argument("--output", action="append", metavar="NAME",
                   help="a tensor to output, by name (as for compile)")
    p.set_defaults(func=cli_commands.cmd_show)

    p = _sub(commands, "bench", "time a compiled model (and its training step)", BENCH_HELP)
    p.add_argument("source", help="a model file (model.py) or a .graphc bundle")
    p.add_argument("--target", "-t", choices=TARGETS, default=None,
                   help="what to compile for (default: the bundle's, else cpu when built)")
    p.add_argument("--batch", "-b", type=int, default=32, help="size of unknown dims (32)")
    p.add_argument("--repeat", type=int, default=20, help="timed calls (20)")
    p.add_argument("--warmup", type=int, default=3, help="untimed calls first (3)")
    p.add_argument("--output", action="append", metavar="NAME",
                   help="a tensor to output, by name (as for compile)")
    p.set_defaults(func=cli_bench.cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI on ``argv`` (default: ``sys.argv[1:]``) and return the exit code:
    0 success, 1 failure, 2 usage error. argparse's own exits (``--help``, ``--version``,
    usage errors) are turned into return values so callers and tests get an int."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits; hand its code back instead
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    if args.command is None:  # bare `graphc`: show what there is to do
        parser.print_help()
        return 0
    return _dispatch(args)


def _dispatch(args: argparse.Namespace) -> int:
    from graphc.cli_commands import UsageError
    from graphc.errors import GraphcError

    verbose = getattr(args, "verbose", False)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("graphc: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `graphc show model.py | head`: the reader left; stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the exit-time flush does not fail again
        return 141
    except UsageError as err:
        _report(f"graphc {args.command}: error: {err}", verbose)
        print(f"run `graphc {args.command} --help` for usage", file=sys.stderr)
        return 2
    except (GraphcError, FileNotFoundError, PermissionError, IsADirectoryError,
            ValueError, RuntimeError) as err:
        # Expected failures: the message says what is wrong; the traceback is graphc's.
        _report(f"graphc {args.command}: error: {err}", verbose)
        return 1
    except Exception as err:  # noqa: BLE001 - a graphc bug: say so, keep the exit code
        _report(f"graphc {args.command}: internal error: {type(err).__name__}: {err}\n"
                "this is a bug in graphc; please report it with the output of --verbose",
                verbose)
        return 1


def _report(message: str, verbose: bool) -> None:
    if verbose:
        traceback.print_exc()
    print(message, file=sys.stderr)
