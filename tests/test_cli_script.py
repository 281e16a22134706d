"""The model-file convention (frontends/script.py) and gc.Signature, in process."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

import graphc as gc
from graphc.errors import GraphError
from graphc.frontends.script import ModelFileError, load_model_file
from graphc.signature import Signature, as_signature, is_keras_like

MODELS = Path(__file__).parent / "models"


def _write(tmp_path: Path, text: str, name: str = "model.py") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_build_function_wins(tmp_path):
    model = load_model_file(MODELS / "mlp.py")
    assert model.source == "build()"
    assert list(model.signature.inputs) == ["x", "y"]
    assert list(model.signature.outputs) == ["probs", "loss"]
    assert len(model.signature.updates) == 1


def test_module_level_signature():
    model = load_model_file(str(MODELS / "affine.py"))
    assert model.source == "module-level signature"
    assert list(model.signature.inputs) == ["x"] and list(model.signature.outputs) == ["y"]


def test_placeholders_and_output_names():
    model = load_model_file(str(MODELS / "plain.py"), ["total", "diff"])
    # only the placeholders the outputs need, in creation order
    assert list(model.signature.inputs) == ["a", "b"]
    assert list(model.signature.outputs) == ["total", "diff"]


def test_output_flag_replaces_signature_outputs():
    model = load_model_file(str(MODELS / "mlp.py"), ["probs"])
    assert list(model.signature.outputs) == ["probs"]


def test_keras_like_model_is_duck_typed(tmp_path):
    path = _write(tmp_path, """
        import graphc as gc

        class Tiny:
            def __init__(self):
                self.inputs = [gc.placeholder(gc.float32, (None, 2), name="inp")]
                self.outputs = [gc.nn.relu(self.inputs[0], name="out")]

        model = Tiny()
    """)
    model = load_model_file(path)
    assert model.source == "module-level model"
    assert list(model.signature.outputs) == ["out"]


def test_keras_model_with_dropout_compiles_its_inference_outputs():
    # The flag-free outputs: no random op (Dropout) in what a bundle's inference runs, the
    # same values as the outputs with the training flag fed False.
    from graphc.frontends import keras
    from graphc.program import build_program

    with gc.Graph().as_default():
        model = keras.Sequential([keras.layers.Dense(8, activation="relu", input_shape=(4,)),
                                  keras.layers.Dropout(0.5), keras.layers.Dense(3)])
        sig, graph = as_signature(model), model.graph
        program = build_program(graph, list(sig.outputs.values()), list(sig.inputs.values()))
        assert not [n for n in program.nodes if n.op.startswith("random")]
        assert list(sig.outputs) == [t.name for t in model.outputs]  # the public names
        x = np.random.default_rng(0).random((5, 4), dtype=np.float32)
        sess = gc.Session(graph, "reference")
        got = sess.run(list(sig.outputs.values()), {model.inputs[0]: x})[0]
        want = sess.run(model.outputs[0], {model.inputs[0]: x, model.training_flag: False})
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_nothing_found_says_what_to_write(tmp_path):
    path = _write(tmp_path, "import graphc as gc\nx = gc.placeholder(gc.float32, (2,))\n")
    with pytest.raises(ModelFileError, match=r"(?s)nothing to compile.*build\(\).*--output"):
        load_model_file(path)


def test_ambiguity_lists_candidates(tmp_path):
    path = _write(tmp_path, """
        import graphc as gc
        from graphc.signature import Signature
        x = gc.placeholder(gc.float32, (None,), name="x")
        first = Signature([x], [x * 2.0])
        second = Signature([x], [x * 3.0])
    """)
    with pytest.raises(ModelFileError, match="first, second"):
        load_model_file(path)


def test_unknown_output_name(tmp_path):
    with pytest.raises(ModelFileError, match="--output.*totl.*did you mean 'total'"):
        load_model_file(str(MODELS / "plain.py"), ["totl"])


def test_syntax_error_points_at_the_users_line(tmp_path):
    path = _write(tmp_path, "import graphc as gc\ny = (1 +\n")
    with pytest.raises(ModelFileError, match="not valid Python") as info:
        load_model_file(path)
    assert "model.py" in str(info.value) and "script.py" not in str(info.value)


def test_exception_shows_only_user_frames(tmp_path):
    path = _write(tmp_path, """
        import graphc as gc

        def helper(x):
            return gc.matmul(x, gc.ones((4, 2)))

        x = gc.placeholder(gc.float32, (None, 3), name="x")
        y = helper(x)
    """)
    with pytest.raises(ModelFileError) as info:
        load_model_file(path)
    text = str(info.value)
    assert "line 8, in <module>" in text and "line 5, in helper" in text
    assert "ShapeError: matmul: inner dimensions differ" in text
    assert "graphc/ops" not in text and "script.py" not in text


def test_build_returning_junk(tmp_path):
    path = _write(tmp_path, "def build():\n    return 42\n")
    with pytest.raises(ModelFileError, match="build\\(\\) returned int"):
        load_model_file(path)


def test_sys_exit_in_model_file(tmp_path):
    path = _write(tmp_path, "import sys\nsys.exit(3)\n")
    with pytest.raises(ModelFileError, match="sys.exit"):
        load_model_file(path)


def test_main_block_does_not_run_and_neighbours_import(tmp_path):
    _write(tmp_path, "SCALE = 4.0\n", "helpers.py")
    path = _write(tmp_path, """
        import graphc as gc
        from helpers import SCALE
        from graphc.signature import Signature
        x = gc.placeholder(gc.float32, (None,), name="x")
        signature = Signature([x], {"scaled": x * SCALE})
        if __name__ == "__main__":
            raise SystemExit("must not run")
    """)
    assert list(load_model_file(path).signature.outputs) == ["scaled"]


def test_default_graph_is_restored(tmp_path):
    before = gc.get_default_graph()
    load_model_file(str(MODELS / "affine.py"))
    assert gc.get_default_graph() is before
    path = _write(tmp_path, "import graphc as gc\ngc.reset_default_graph()\n"
                  "x = gc.placeholder(gc.float32, (None,), name='x')\ny = gc.exp(x, name='y')\n")
    assert list(load_model_file(path, ["y"]).signature.inputs) == ["x"]
    assert gc.get_default_graph() is before


def test_missing_file():
    with pytest.raises(FileNotFoundError):
        load_model_file("/nonexistent/model.py")


def test_signature_checks():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 2), name="x")
        y = gc.exp(x, name="y")
        with pytest.raises(GraphError, match="must be placeholders"):
            Signature([y], [y])
        with pytest.raises(GraphError, match="at least one output"):
            Signature([x], [])
        with pytest.raises(GraphError, match="used twice"):
            Signature([x, x], [y])
        sig = Signature({"input": x}, y)
    assert list(sig.inputs) == ["input"] and sig.outputs["y"] is y
    assert "float32[None, 2]" in repr(sig)
    assert as_signature(sig) is sig and as_signature(3) is None
    assert not is_keras_like(sig) and not is_keras_like(np.zeros(2))
