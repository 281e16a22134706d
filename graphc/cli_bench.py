"""``graphc bench``: time a compiled model (and its training step) on synthetic inputs.

Inputs are made from the signature: every unknown dimension becomes ``--batch``; floats
are drawn from a standard normal, integers are zeros (valid class labels and indices),
booleans False. Each timing is ``--warmup`` untimed calls, then ``--repeat`` timed ones,
reported as median (and min / 90th percentile). Compile time is measured twice in this
process: *cold* (the first compile: code generation, JIT, disk caches) and *warm* (the
same signature compiled again in a new session: what in-process caches save).
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any, Callable

import numpy as np

from graphc.signature import Signature

__all__ = ["synthetic_inputs", "time_calls", "cmd_bench"]


def synthetic_inputs(signature: Signature, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    """An array for every input of ``signature``, unknown dims set to ``batch``."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for name, t in signature.inputs.items():
        if t.shape is None:
            raise ValueError(f"input {name} has an unknown rank; bench cannot make data for it")
        shape = tuple(batch if d is None else d for d in t.shape)
        dtype = t.dtype.np
        if np.issubdtype(dtype, np.floating):
            feeds[name] = rng.standard_normal(shape).astype(dtype)
        else:
            feeds[name] = np.zeros(shape, dtype)
    return feeds


def time_calls(fn: Callable[[], Any], warmup: int, repeat: int) -> dict[str, float]:
    """Seconds per call of ``fn``: median, min and 90th percentile over ``repeat`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {"median": float(np.median(times)), "min": float(np.min(times)),
            "p90": float(np.percentile(times, 90))}


def _fmt(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:8.1f} us"
    if seconds < 1:
        return f"{seconds * 1e3:8.2f} ms"
    return f"{seconds:8.2f} s "


def cmd_bench(args: argparse.Namespace) -> int:
    """Compile the model (file or bundle) for ``--target`` and time it."""
    from graphc.cli_commands import UsageError, _load_model, initial_weights
    from graphc.session import Session
    from graphc.targets import resolve_target

    if args.batch < 1 or args.repeat < 1 or args.warmup < 0:
        raise UsageError("--batch and --repeat must be at least 1, --warmup at least 0")
    if args.source.endswith(".py"):
        model = _load_model(args.source, args.output)
        signature = model.signature
        weights, _ = initial_weights(signature.graph)
        target = resolve_target(args.target)
    elif os.path.exists(args.source):
        from graphc.bundle import read_bundle

        bundle = read_bundle(args.source)
        signature, weights = bundle.signature, bundle.weights
        target = resolve_target(args.target or bundle.target)
    else:
        raise UsageError(f"no such file: {args.source}")
    feeds = synthetic_inputs(signature, args.batch)
    from graphc.bundle import feed_tensors

    inputs, outputs = feed_tensors(signature), list(signature.outputs.values())
    arrays = [feeds[n] for n in signature.inputs] + list(signature.fixed.values())
    print(f"graphc bench: {os.path.basename(args.source)} on {target}, batch {args.batch}, "
          f"{args.warmup} warm-up + {args.repeat} timed calls", flush=True)

    def compiled(fetches: list) -> tuple[Callable, float]:
        t0 = time.perf_counter()
        sess = Session(signature.graph, target)
        sess.state.update({k: np.array(v, copy=True) for k, v in weights.items()})
        exe = sess.make_callable(fetches, inputs)
        return exe, time.perf_counter() - t0

    rows = []
    _, cold = compiled(outputs)
    forward, warm = compiled(outputs)
    print(f"  compile (forward)    cold {_fmt(cold)}   warm {_fmt(warm)}", flush=True)
    stats = time_calls(lambda: forward(*arrays), args.warmup, args.repeat)
    rows.append(("forward", stats))
    if signature.updates:
        fetches = [*outputs, *signature.updates]
        _, cold = compiled(fetches)
        train, warm = compiled(fetches)
        print(f"  compile (train step) cold {_fmt(cold)}   warm {_fmt(warm)}", flush=True)
        rows.append(("train step", time_calls(lambda: train(*arrays), args.warmup, args.repeat)))
    for label, s in rows:
        rate = args.batch / s["median"] if s["median"] > 0 else float("inf")
        print(f"  {label:<20} median {_fmt(s['median'])}   min {_fmt(s['min'])}   "
              f"p90 {_fmt(s['p90'])}   ({rate:,.0f} examples/s)", flush=True)
    return 0
