"""The cuda target's generated kernels compile for a real GPU, checked without one.

The simulator runs kernels as Python, so it accepts code that Numba's CUDA compiler
rejects (a NumPy function without a device version; the two-argument ``max``, broken on
the CUDA target since Numba 0.66). Where the CUDA toolkit's NVVM is installed, Numba
compiles to PTX without a driver: a separate process (the simulator is chosen when numba
is first imported) lowers every op case's graph and its gradient graph for the cuda
target and compiles each distinct fused kernel, ``flat`` and ``nd``, to PTX.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent('''
    import sys
    from types import SimpleNamespace
    import numpy as np
    import numba.cuda.dispatcher
    from numba import cuda, from_dtype, types
    # A device function called by a kernel is compiled for the current device's compute
    # capability, which needs a driver: name one instead (compile_ptx's own cc).
    numba.cuda.dispatcher.get_current_device = \
        lambda: SimpleNamespace(compute_capability=(7, 5))
    try:
        cuda.compile_ptx(lambda a: None, (types.float32[::1],), cc=(7, 5))
    except Exception as err:
        print("NO NVVM:", type(err).__name__, str(err).splitlines()[0] if str(err) else "")
        sys.exit(0)
    import graphc as gc
    from graphc.backends.numba_cpu import cache
    from graphc.backends.numba_cuda import LIBRARY
    from graphc.backends.numba_cuda.codegen import generate
    from graphc.lower import lower
    from graphc.program import build_program
    from op_cases import CASES
    from test_ops import _build, _grad_inputs, _inputs, _weighted_sum

    def graphs(case):
        arrays = _inputs(case, "float32")
        graph, phs, outs = _build(case, arrays)
        yield graph, outs, phs
        if not case.grad:
            return
        floats = [phs[i] for i in _grad_inputs(case, arrays)]
        with graph.as_default():
            loss = _weighted_sum(outs, np.random.default_rng(0))
            grads = [g for g in gc.gradients(loss, floats) if g is not None] \\
                if loss is not None and floats else []
        if grads:
            yield graph, grads, phs

    def array(spec):
        return from_dtype(spec.dtype.np)[::1]

    seen, failed = set(), []
    for case in CASES:
        for graph, fetches, feeds in graphs(case):
            plan = lower(build_program(graph, fetches, feeds), LIBRARY)
            for step in (s for s in plan.steps if s.kind == "fused"):
                src = generate(step)
                if src.source in seen:
                    continue
                seen.add(src.source)
                module = cache.load_source(src.source)
                ins = [array(s.specs[i]) for s, i in step.inputs]
                out = array(step.nodes[-1].specs[0])
                dims = types.UniTuple(types.int64, max(src.rank, 1))
                sigs = {"flat": (out, *ins), "nd": (out, *ins, dims, *[dims] * len(ins))}
                for name, sig in sigs.items():
                    try:
                        cuda.compile_ptx(getattr(module, name).py_func, sig, cc=(7, 5))
                    except Exception as err:
                        ops = " ".join(n.op for n in step.nodes)
                        failed.append(f"{case.name}: {name} of ({ops}): "
                                      f"{str(err).splitlines()[0]}")
    print("KERNELS:", len(seen))
    print("FAILED:", *failed, sep="\\n")
''')


def test_every_fused_kernel_compiles_to_ptx() -> None:
    tests = Path(__file__).parent
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="0",
               PYTHONPATH=os.pathsep.join([str(tests), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         env=env, timeout=1200, cwd=tests)
    assert out.returncode == 0, out.stderr[-3000:]
    if "NO NVVM:" in out.stdout:
        pytest.skip(f"the CUDA toolkit's NVVM is not installed here ({out.stdout.strip()})")
    kernels = int(out.stdout.split("KERNELS:")[1].split()[0])
    failed = out.stdout.split("FAILED:")[1].strip()
    assert kernels > 50 and not failed, failed
