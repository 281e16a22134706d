"""``gc.nn``: neural-network ops (activations, softmax, cross-entropies, ...).

The ops are defined in :mod:`graphc.ops.nn`; this module is the public namespace.
"""

from graphc.ops.elementwise import sigmoid, tanh
from graphc.ops.nn import (bias_add, elu, gelu, l2_loss, leaky_relu, log_softmax, relu, relu6,
                           selu, sigmoid_cross_entropy_with_logits, softmax,
                           softmax_cross_entropy_with_logits, softplus,
                           sparse_softmax_cross_entropy_with_logits)

__all__ = ["relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "softplus", "sigmoid", "tanh",
           "softmax", "log_softmax", "bias_add", "l2_loss", "softmax_cross_entropy_with_logits",
           "sparse_softmax_cross_entropy_with_logits", "sigmoid_cross_entropy_with_logits"]
