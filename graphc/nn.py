"""``gc.nn``: neural-network ops (activations, softmax, cross-entropies, convolution,
pooling, normalization, dropout, embeddings, recurrent layers).

The ops are defined under :mod:`graphc.ops`; this module is the public namespace.
Convolution and pooling use NCHW inputs with OIHW weights.
"""

from graphc.ops.conv import conv2d, conv2d_transpose
from graphc.ops.dropout import dropout
from graphc.ops.elementwise import sigmoid, tanh
from graphc.ops.embedding import embedding_lookup
from graphc.ops.nn import (bias_add, elu, gelu, l2_loss, leaky_relu, log_softmax, relu, relu6,
                           selu, sigmoid_cross_entropy_with_logits, softmax,
                           softmax_cross_entropy_with_logits, softplus,
                           sparse_softmax_cross_entropy_with_logits)
from graphc.ops.normalization import batch_norm, batch_normalization, layer_norm
from graphc.ops.pool import avg_pool2d, global_avg_pool2d, max_pool2d
from graphc.ops.rnn import (gru, gru_weights_from_onnx, gru_weights_to_onnx, lstm,
                            lstm_weights_from_onnx, lstm_weights_to_onnx, rnn_weights_from_onnx,
                            rnn_weights_to_onnx, simple_rnn)

__all__ = ["relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "softplus", "sigmoid", "tanh",
           "softmax", "log_softmax", "bias_add", "l2_loss", "softmax_cross_entropy_with_logits",
           "sparse_softmax_cross_entropy_with_logits", "sigmoid_cross_entropy_with_logits",
           "conv2d", "conv2d_transpose", "max_pool2d", "avg_pool2d", "global_avg_pool2d",
           "batch_normalization", "batch_norm", "layer_norm", "dropout", "embedding_lookup",
           "lstm", "gru", "simple_rnn", "lstm_weights_to_onnx", "lstm_weights_from_onnx",
           "gru_weights_to_onnx", "gru_weights_from_onnx", "rnn_weights_to_onnx",
           "rnn_weights_from_onnx"]
