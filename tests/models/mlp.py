"""A small classifier with a training step, declared with build() (the first convention)."""

import numpy as np

import graphc as gc



def build():
    x = gc.placeholder(gc.float32, (None, 4), name="x")
    y = gc.placeholder(gc.int64, (None,), name="y")
    W1 = gc.Variable(gc.init.glorot_uniform((4, 8), seed=1), name="W1")
    b1 = gc.Variable(np.zeros(8, np.float32), name="b1")
    W2 = gc.Variable(gc.init.glorot_uniform((8, 3), seed=2), name="W2")
    b2 = gc.Variable(np.full(3, 0.1, np.float32), name="b2")
    logits = gc.nn.relu(x @ W1 + b1) @ W2 + b2
    probs = gc.nn.softmax(logits, name="probs")
    loss = gc.losses.sparse_softmax_cross_entropy(y, logits)
    train = gc.train.GradientDescentOptimizer(0.1).minimize(loss)
    return gc.Signature(inputs={"x": x, "y": y}, outputs={"probs": probs, "loss": loss},
                        updates=[train])
