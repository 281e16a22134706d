"""graphc: a define-then-run deep-learning compiler (``import graphc as gc``).

Build a static graph (placeholders, variables, ops), let graphc add the backward graph
(:func:`gradients`, ``gc.train``), and run it with a :class:`Session` on a target.
The public names are listed in API.md; they follow TensorFlow 1.x.
"""

from graphc._version import __version__
from graphc.dtypes import (DType, as_dtype, bool, float16, float32, float64, int8, int16,  # noqa: A004
                           int32, int64, uint8)
from graphc.errors import (CheckpointError, DTypeError, FeedError, FileFormatError, GradientError,
                           GraphcError, GraphError, ShapeError, TargetError)
from graphc.graph import Graph, Node, Tensor, get_default_graph, name_scope, reset_default_graph
from graphc.ops import operators as _operators  # noqa: F401  (attaches Tensor's operators)
from graphc.ops.creation import (fill, ones, ones_like, random_normal, random_uniform, range,  # noqa: A004
                                 set_random_seed, zeros, zeros_like)
from graphc.ops.elementwise import (abs, add, cast, ceil, clip_by_value, cos, divide, equal, erf,  # noqa: A004
                                    exp, floor, floordiv, greater, greater_equal, identity, less,
                                    less_equal, log, log1p, logical_and, logical_not, logical_or,
                                    maximum, minimum, mod, multiply, negative, not_equal, pow,
                                    round, rsqrt, sigmoid, sign, sin, sqrt, square, stop_gradient,
                                    subtract, tanh, where)
from graphc.ops.control import scan
from graphc.ops.linalg import matmul
from graphc.ops.reduce import (argmax, argmin, norm, reduce_max, reduce_mean, reduce_min,
                               reduce_prod, reduce_sum)
from graphc.ops.indexing import gather, one_hot, slice  # noqa: A004
from graphc.ops.shape import (broadcast_to, concat, expand_dims, pad, reshape, shape, split,
                              squeeze, stack, tile, transpose, unstack)
from graphc.ops.state import assign, assign_add, assign_sub, constant, group, no_op, placeholder
from graphc.variables import (Variable, global_variables, global_variables_initializer,
                              trainable_variables, variables_initializer)
from graphc.autodiff import gradients
from graphc.serialization import load_graph, save_graph
from graphc.signature import Signature
from graphc.bundle import load
from graphc.session import Executable, Session, compile  # noqa: A004
from graphc.targets import available_targets
from graphc import init, random_bits  # noqa: E402
from graphc import losses, nn  # noqa: E402
from graphc import regularizers, train  # noqa: E402
from graphc import onnx  # noqa: E402
from graphc import datasets  # noqa: E402


def __getattr__(name: str):
    """``gc.keras``, imported on first use: the Keras-like frontend's modules (~5 ms) are
    not needed by graph-level programs (Session, gc.train, the CLI's compile)."""
    if name == "keras":
        from graphc.frontends import keras
        globals()["keras"] = keras  # later lookups skip this function
        return keras
    raise AttributeError(f"module 'graphc' has no attribute {name!r}")
