"""``gc.keras.layers``: Keras-like layers that build graphc ops.

Images are channels-first (NCHW) and conv kernels OIHW, graphc's layout (Keras's default
is NHWC); recurrent layers take batch-major ``(N, T, features)`` sequences, as Keras.
"""

from graphc.frontends.keras.layers.base import Layer
from graphc.frontends.keras.layers.conv import (AveragePooling2D, Conv2D, Conv2DTranspose,
                                                GlobalAveragePooling2D, MaxPooling2D)
from graphc.frontends.keras.layers.core import (Activation, Dense, Dropout, Embedding, Flatten,
                                                Reshape)
from graphc.frontends.keras.layers.merge import Add, Concatenate
from graphc.frontends.keras.layers.normalization import BatchNormalization, LayerNormalization
from graphc.frontends.keras.layers.recurrent import GRU, LSTM, SimpleRNN

__all__ = ["Layer", "Dense", "Activation", "Flatten", "Reshape", "Dropout", "Embedding", "Add",
           "Concatenate", "Conv2D", "Conv2DTranspose", "MaxPooling2D", "AveragePooling2D",
           "GlobalAveragePooling2D", "BatchNormalization", "LayerNormalization", "SimpleRNN",
           "LSTM", "GRU"]
