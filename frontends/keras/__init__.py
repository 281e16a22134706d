"""``gc.keras``: a Keras-like frontend that builds graphc graphs.

Layers are called on graphc Tensors and add ops to the graph right away, so a Keras model
compiles, differentiates and exports like a hand-built graph. Images are channels-first
(NCHW, graphc's layout; conv kernels OIHW), unlike Keras's default NHWC.

    import graphc as gc
    keras = gc.keras
    model = keras.Sequential([keras.layers.Dense(64, activation="relu", input_shape=(64,)),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=10, validation_split=0.1)
"""

from graphc import regularizers  # keras.regularizers.l2(...), as in Keras: graphc's own
from graphc.frontends.keras import callbacks, layers, losses, metrics, optimizers, utils
from graphc.frontends.keras.layers import *  # noqa: F401,F403  (gc.keras.Dense too)
from graphc.frontends.keras.layers import __all__ as _layer_names
from graphc.frontends.keras.models import Input, Model, Sequential

__all__ = ["Sequential", "Model", "Input", "layers", "optimizers", "losses", "metrics",
           "callbacks", "utils", "regularizers", *_layer_names]
