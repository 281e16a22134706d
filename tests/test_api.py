"""The public names of API.md that exist so far: outside code relies on them, so none may
disappear. (Names of later issues are added here as they land.)"""

from __future__ import annotations

import pytest

import graphc as gc

TOP_LEVEL = """
Graph get_default_graph reset_default_graph name_scope placeholder constant Variable
float16 float32 float64 int32 int64 bool Tensor
add subtract multiply divide pow negative abs sign exp log log1p sqrt rsqrt square sin cos tanh
sigmoid erf maximum minimum floor ceil round clip_by_value matmul transpose reshape expand_dims
squeeze concat stack split slice gather one_hot pad tile broadcast_to where cast equal not_equal
greater greater_equal less less_equal logical_and logical_or logical_not reduce_sum reduce_mean
reduce_max reduce_min reduce_prod argmax argmin zeros ones zeros_like ones_like fill range
random_normal random_uniform stop_gradient identity assign assign_add assign_sub group norm
gradients global_variables_initializer trainable_variables global_variables Session compile
save_graph load_graph scan Signature load
ShapeError DTypeError FeedError GraphError GradientError TargetError CheckpointError
""".split()

NN = """relu relu6 leaky_relu elu selu gelu softplus sigmoid tanh softmax log_softmax bias_add
l2_loss softmax_cross_entropy_with_logits sparse_softmax_cross_entropy_with_logits
sigmoid_cross_entropy_with_logits conv2d conv2d_transpose max_pool2d avg_pool2d global_avg_pool2d
batch_normalization batch_norm layer_norm dropout embedding_lookup lstm gru simple_rnn""".split()
LOSSES = """mean_squared_error absolute_difference huber_loss log_loss softmax_cross_entropy
sparse_softmax_cross_entropy""".split()
INIT = """zeros ones constant random_normal random_uniform truncated_normal glorot_uniform
glorot_normal he_uniform he_normal orthogonal""".split()
KERAS = """Sequential Model Input Dense Conv2D Conv2DTranspose MaxPooling2D AveragePooling2D
GlobalAveragePooling2D Flatten Reshape Dropout BatchNormalization LayerNormalization Activation
Add Concatenate Embedding SimpleRNN LSTM GRU""".split()
DATASETS = "load_digits load_mnist load_fashion_mnist load_cifar10".split()
TRAIN = """GradientDescentOptimizer MomentumOptimizer AdamOptimizer AdagradOptimizer
RMSPropOptimizer Saver""".split()


@pytest.mark.parametrize("module, names", [
    (gc, TOP_LEVEL), (gc.nn, NN), (gc.losses, LOSSES), (gc.init, INIT), (gc.train, TRAIN),
    (gc.regularizers, ["l1", "l2"]), (gc.keras, KERAS), (gc.datasets, DATASETS),
    (gc.keras.callbacks, ["EarlyStopping", "ModelCheckpoint"]), (gc.onnx, ["export", "load"]),
], ids=["gc", "gc.nn", "gc.losses", "gc.init", "gc.train", "gc.regularizers", "gc.keras",
        "gc.datasets", "gc.keras.callbacks", "gc.onnx"])
def test_public_names_exist_and_are_documented(module, names) -> None:
    missing = [n for n in names if not hasattr(module, n)]
    assert not missing, f"missing from {module.__name__}: {missing}"
    undocumented = [n for n in names if callable(getattr(module, n)) and not isinstance(
        getattr(module, n), gc.DType) and not (getattr(module, n).__doc__ or "").strip()]
    assert not undocumented, f"public names without a docstring: {undocumented}"


def test_optimizer_methods() -> None:
    for name in TRAIN[:-1]:
        cls = getattr(gc.train, name)
        for method in ("minimize", "compute_gradients", "apply_gradients"):
            assert callable(getattr(cls, method))
