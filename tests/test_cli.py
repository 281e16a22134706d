"""The graphc command line through its real entry point (subprocesses), plus a few
in-process checks of help texts and exit codes.

Subprocesses cost about a second each, so each test does one realistic session."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import graphc as gc
from graphc.cli import main
from graphc.frontends.script import load_model_file
from graphc.targets import available_targets

MODELS = Path(__file__).parent / "models"
FEEDS = {"x": np.linspace(-2, 2, 20, dtype=np.float32).reshape(5, 4),
         "y": np.array([0, 1, 2, 1, 0])}


def graphc(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run `python -m graphc ARGS` (the console script's code path) in ``cwd``."""
    return subprocess.run([sys.executable, "-m", "graphc", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def python_outputs(model: str, feeds: dict) -> dict:
    """What the model computes when run in Python, on the reference target."""
    loaded = load_model_file(str(MODELS / model))
    sig = loaded.signature
    values = gc.Session(loaded.graph, "reference").run(
        list(sig.outputs.values()), {sig.inputs[k]: v for k, v in feeds.items()})
    return dict(zip(sig.outputs, values))


def _save_feeds(folder: Path) -> list[str]:
    args = []
    for name, value in FEEDS.items():
        np.save(folder / f"{name}.npy", value)
        args += ["--input", f"{name}={folder / f'{name}.npy'}"]
    return args


BUNDLE_TARGETS = [t for t in ("reference", "cpu") if t in available_targets()]


@pytest.mark.parametrize("target", BUNDLE_TARGETS)
def test_compile_run_matches_python(tmp_path, target):
    res = graphc("compile", MODELS / "mlp.py", "--target", target, "-o", "m.graphc",
                 "--explain", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "wrote m.graphc" in res.stdout and "forward:" in res.stdout
    if target == "cpu":  # how the target runs each program (backend's explain_plan hook)
        assert "  runs as one compiled function\n" in res.stdout
        assert "runs step by step (a training step: it writes variables)" in res.stdout
    res = graphc("run", "m.graphc", *_save_feeds(tmp_path), "--output-dir", "out", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    want = python_outputs("mlp.py", FEEDS)
    for name, value in want.items():
        np.testing.assert_allclose(np.load(tmp_path / "out" / f"{name}.npy"), value,
                                   rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("target", BUNDLE_TARGETS)
def test_keras_example_compiles_and_runs(tmp_path, target):
    # examples/mlp_digits.py has build() -> keras.Sequential: the first convention.
    example = Path(__file__).resolve().parents[1] / "examples" / "mlp_digits.py"
    res = graphc("compile", example, "--target", target, "-o", "d.graphc", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    x = np.random.default_rng(0).random((7, 64), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    res = graphc("run", "d.graphc", "--input", f"input={tmp_path / 'x.npy'}", "--output-dir",
                 "out", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    (got,) = [np.load(p) for p in (tmp_path / "out").iterdir()]
    # The same model built in this process, run in Python with the bundle's weights.
    from graphc.bundle import read_bundle

    weights = read_bundle(str(tmp_path / "d.graphc")).weights
    sig = load_model_file(str(example)).signature
    sess = gc.Session(sig.graph, "reference")
    # Keras numbers layer names per process (dense, dense_1...), so pair by creation order.
    assert [w.shape for w in weights.values()] == [v.shape for v in sig.graph.variables.values()]
    sess.state.update(zip(sig.graph.variables, weights.values()))
    feeds = {sig.inputs["input"]: x, **sig.fixed}
    (want,) = sess.run(list(sig.outputs.values()), feeds)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_keras_save_weights_file_is_read_by_compile_weights(tmp_path):
    # Trained weights saved from Python with model.save_weights ("0/kernel"...), compiled
    # in another process, where Keras may name the variables differently.
    example = Path(__file__).resolve().parents[1] / "examples" / "mlp_digits.py"
    import importlib.util

    spec = importlib.util.spec_from_file_location("mlp_digits_example", example)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with gc.Graph().as_default():
        model = module.build()
    rng = np.random.default_rng(3)
    model.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in model.get_weights()])
    model.save_weights(tmp_path / "w.npz")
    res = graphc("compile", example, "--target", "reference", "-o", "d.graphc",
                 "--weights", "w.npz", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    x = rng.random((3, 64), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    res = graphc("run", "d.graphc", "--input", f"input={tmp_path / 'x.npy'}", "--output-dir",
                 "out", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    (got,) = [np.load(p) for p in (tmp_path / "out").iterdir()]
    np.testing.assert_allclose(got, model.predict(x), rtol=1e-5, atol=1e-6)


def test_bundle_survives_a_move_to_a_new_directory(tmp_path):
    res = graphc("compile", MODELS / "affine.py", "--target", "reference", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    shutil.move(str(tmp_path / "affine.graphc"), moved / "a.graphc")
    x = np.arange(6, dtype=np.float64).reshape(2, 3)
    np.savez(moved / "in.npz", x=x)
    res = graphc("run", "a.graphc", "--input", "in.npz", cwd=moved)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("y: float64[2, 2]")
    want = python_outputs("affine.py", {"x": x})["y"]
    printed = np.array([[float(v) for v in line.strip(" []").split()]
                        for line in res.stdout.splitlines()[1:]])
    np.testing.assert_allclose(printed, want, rtol=1e-5)


@pytest.mark.skipif("onnx" not in available_targets(), reason="the onnx target is not built")
def test_onnx_compile_and_run(tmp_path):
    res = graphc("compile", MODELS / "affine.py", "--target", "onnx", "-o", "a.onnx",
                 cwd=tmp_path)
    if res.returncode != 0 and "not built yet" in res.stderr:
        pytest.skip("the ONNX exporter is not built yet")
    assert res.returncode == 0, res.stderr
    x = np.linspace(0, 1, 9).reshape(3, 3)
    np.save(tmp_path / "x.npy", x)
    res = graphc("run", "a.onnx", "--input", "x=x.npy", "--output-dir", "o", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    (out,) = (tmp_path / "o").iterdir()
    np.testing.assert_allclose(np.load(out), python_outputs("affine.py", {"x": x})["y"],
                               rtol=1e-6)


def test_bad_model_files_exit_1_with_the_users_traceback(tmp_path):
    (tmp_path / "boom.py").write_text("import graphc as gc\n\ndef f():\n"
                                      "    return 1 / 0\n\nf()\n")
    res = graphc("compile", "boom.py", "--target", "reference", cwd=tmp_path)
    assert res.returncode == 1
    assert 'boom.py", line 6, in <module>' in res.stderr and "ZeroDivisionError" in res.stderr
    assert "frontends" not in res.stderr and "cli.py" not in res.stderr
    (tmp_path / "empty.py").write_text("x = 1\n")
    res = graphc("compile", "empty.py", cwd=tmp_path)
    assert res.returncode == 1 and "build()" in res.stderr and "--output" in res.stderr


def test_usage_errors_exit_2(tmp_path):
    res = graphc("compile", MODELS / "mlp.py", "--target", "tpu", cwd=tmp_path)
    assert res.returncode == 2 and "invalid choice" in res.stderr
    res = graphc("run", "missing.graphc", cwd=tmp_path)
    assert res.returncode == 2 and "no such file" in res.stderr


def test_bad_inputs_and_tampering_exit_1(tmp_path):
    assert graphc("compile", MODELS / "mlp.py", "--target", "reference", "-o", "m.graphc",
                  cwd=tmp_path).returncode == 0
    np.save(tmp_path / "bad.npy", np.zeros((5, 7), np.float32))
    res = graphc("run", "m.graphc", "--input", "x=bad.npy", "--input", "y=bad.npy",
                 cwd=tmp_path)
    assert res.returncode == 1
    assert "expected shape [None, 4]" in res.stderr and "y: int64[None]" in res.stderr
    _edit_graph(tmp_path / "m.graphc", b'"op":"relu"', b'"op":"tanh"')
    res = graphc("run", "m.graphc", "--input", "x=bad.npy", "--verbose", cwd=tmp_path)
    assert res.returncode == 1 and "refused" in res.stderr and "Traceback" in res.stderr


def _edit_graph(bundle: Path, old: bytes, new: bytes) -> None:
    """Edit graph.json inside the bundle's graph member, as someone tampering would."""
    with zipfile.ZipFile(bundle) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    inner = io.BytesIO(members["graph.graphc"])
    with zipfile.ZipFile(inner) as zf:
        parts = {n: zf.read(n) for n in zf.namelist()}
    assert old in parts["graph.json"]
    parts["graph.json"] = parts["graph.json"].replace(old, new)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for n, d in parts.items():
            zf.writestr(n, d)
    members["graph.graphc"] = out.getvalue()
    with zipfile.ZipFile(bundle, "w") as zf:
        for n, d in members.items():
            zf.writestr(n, d)


def test_show_and_bench(tmp_path):
    res = graphc("show", MODELS / "mlp.py", "-o", "g.svg", "--backward", "--fused",
                 cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    written = tmp_path / ("g.svg" if shutil.which("dot") else "g.dot")
    assert written.stat().st_size > 1000
    res = graphc("bench", MODELS / "mlp.py", "--target", "reference", "--repeat", "3",
                 "--warmup", "1", "--batch", "8", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "forward" in res.stdout and "train step" in res.stdout and "cold" in res.stdout


@pytest.mark.parametrize("command", [None, "compile", "run", "show", "bench"])
def test_help_shows_an_example(command, capsys):
    assert main([command, "--help"] if command else ["--help"]) == 0
    assert "example" in capsys.readouterr().out


def test_in_process_exit_codes(tmp_path, capsys):
    assert main(["compile", str(tmp_path / "nope.py")]) == 2
    assert main(["show", str(MODELS / "plain.py"), "--output", "total",
                 "-o", str(tmp_path / "g.txt")]) == 0
    assert (tmp_path / "g.txt").read_text().startswith("plain.py")
    assert main(["show", str(MODELS / "plain.py"), "-o", str(tmp_path / "g.gif")]) == 2
    assert main(["compile", str(MODELS / "plain.py"), "-o", str(tmp_path / "p.graphc")]) == 1
    err = capsys.readouterr().err
    assert "nothing to compile" in err


def test_parse_inputs(tmp_path):
    from graphc.cli_commands import UsageError
    from graphc.cli_run import parse_inputs

    np.save(tmp_path / "a.npy", np.ones(2))
    np.savez(tmp_path / "one.npz", whatever=np.zeros(3))
    np.savez(tmp_path / "two.npz", p=np.zeros(1), q=np.ones(1))
    feeds = parse_inputs([f"a={tmp_path / 'a.npy'}", f"b={tmp_path / 'one.npz'}",
                          str(tmp_path / "two.npz")])
    assert sorted(feeds) == ["a", "b", "p", "q"] and feeds["b"].shape == (3,)
    with pytest.raises(UsageError, match="NAME=file.npy"):
        parse_inputs([str(tmp_path / "a.npy")])
    with pytest.raises(UsageError, match="given twice"):
        parse_inputs([f"p={tmp_path / 'a.npy'}", str(tmp_path / "two.npz")])
    with pytest.raises(gc.GraphcError, match="none is called 'r'"):
        parse_inputs([f"r={tmp_path / 'two.npz'}"])


def test_run_train_step_and_bench_a_bundle(tmp_path, capsys):
    out = str(tmp_path / "m.graphc")
    assert main(["compile", str(MODELS / "mlp.py"), "--target", "reference", "-o", out]) == 0
    args = []
    for name, value in FEEDS.items():
        np.save(tmp_path / f"{name}.npy", value)
        args += ["--input", f"{name}={tmp_path / f'{name}.npy'}"]
    assert main(["run", out, *args, "--train"]) == 0
    assert "loss: float32[]" in capsys.readouterr().out
    assert main(["bench", out, "--repeat", "2", "--warmup", "0"]) == 0
    assert "train step" in capsys.readouterr().out
    assert main(["bench", out, "--batch", "0"]) == 2


def test_cuda_without_gpu_still_compiles(tmp_path, monkeypatch, capsys):
    # A stand-in cuda backend (the reference one) on a machine without a GPU.
    from graphc import bundle_run, targets

    monkeypatch.setitem(targets.TARGETS, "cuda", "graphc.backends.reference")
    monkeypatch.setattr(bundle_run, "gpu_available", lambda: False)
    out = str(tmp_path / "c.graphc")
    assert main(["compile", str(MODELS / "affine.py"), "--target", "cuda", "-o", out]) == 0
    assert "kernels compile when the bundle first runs on a GPU" in capsys.readouterr().out
    np.save(tmp_path / "x.npy", np.zeros((1, 3)))
    assert main(["run", out, "--input", f"x={tmp_path / 'x.npy'}"]) == 1
    assert "no CUDA GPU is available" in capsys.readouterr().err
