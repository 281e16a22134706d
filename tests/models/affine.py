"""y = tanh(x @ W + b): a module-level Signature (the second convention)."""

import numpy as np

import graphc as gc


x = gc.placeholder(gc.float64, (None, 3), name="x")
W = gc.Variable(np.arange(6, dtype=np.float64).reshape(3, 2) / 10, name="W")
b = gc.Variable(np.array([0.5, -0.5]), name="b")
y = gc.tanh(x @ W + b, name="y")
signature = gc.Signature(inputs=[x], outputs=[y])
