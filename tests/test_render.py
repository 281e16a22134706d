"""graphc.render: DOT and text renderings, with and without Graphviz."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphc import render
from graphc.frontends.script import load_model_file

MODELS = Path(__file__).parent / "models"


@pytest.fixture(scope="module")
def signature():
    return load_model_file(str(MODELS / "mlp.py")).signature


def test_forward_view_has_no_backward_nodes(signature):
    view = render.graph_view(signature)
    names = {n.name for n in view.nodes}
    assert {"x", "W1", "probs"} <= names and not view.backward
    assert not any(n.op == "assign" for n in view.nodes)


def test_backward_view_adds_the_training_step(signature):
    view = render.graph_view(signature, backward=True)
    back = [n for n in view.nodes if n.id in view.backward]
    assert any(n.op == "assign" for n in back) and len(back) > 10


def test_dot_document(signature):
    groups = {"kernel 0: relu": ["add", "relu"], "gone": ["not-a-node"]}
    dot = render.to_dot(render.graph_view(signature, backward=True, groups=groups,
                                          title="mlp"))
    assert dot.startswith("digraph graphc {") and dot.rstrip().endswith("}")
    assert "subgraph cluster_0" in dot and 'label="kernel 0: relu"' in dot
    assert "gone" not in dot  # a group of unknown nodes is dropped
    assert "=> output probs" in dot and "style=dashed" in dot


def test_text_rendering(signature):
    text = render.to_text(render.graph_view(signature, backward=True,
                                            groups={"k": ["add", "relu"]}))
    assert "forward (" in text and "backward (" in text and "[kernel k]" in text
    assert "=> output loss" in text
    assert any(line.startswith("      add ") for line in text.splitlines())


def test_write_without_graphviz_falls_back_to_dot(signature, tmp_path, monkeypatch):
    monkeypatch.setattr(render.shutil, "which", lambda name: None)
    written, note = render.write_rendering(render.graph_view(signature), str(tmp_path / "g.svg"))
    assert written.endswith("g.dot") and Path(written).read_text().startswith("digraph")
    assert "not installed" in note and "dot -Tsvg" in note
    assert not (tmp_path / "g.svg").exists()


@pytest.mark.parametrize("name", ["g.txt", "g.dot"])
def test_write_text_formats(signature, tmp_path, name):
    written, _ = render.write_rendering(render.graph_view(signature), str(tmp_path / name))
    assert Path(written).stat().st_size > 100


def test_unknown_format(signature, tmp_path):
    with pytest.raises(ValueError, match="unknown picture format"):
        render.write_rendering(render.graph_view(signature), str(tmp_path / "g.jpg"))


@pytest.mark.skipif(not render.have_graphviz(), reason="Graphviz's dot is not installed")
def test_svg_through_graphviz(signature, tmp_path):
    written, note = render.write_rendering(render.graph_view(signature, backward=True),
                                           str(tmp_path / "g.svg"))
    assert note == "" and "<svg" in Path(written).read_text()
