"""Tests of gc.train (optimizers) and gc.regularizers, on the reference target.

Every rule is checked against a NumPy transcription of its published (TF1) update rule on a
quadratic loss whose gradient depends on the variable, ``grad = A * w + c_k`` with ``c_k``
fed per step, so the snapshot semantics (all new values from start-of-run values) are
exercised too.
"""

import numpy as np
import pytest

import graphc as gc
from graphc import regularizers, train

TOL = dict(rtol=1e-6, atol=1e-6)
W0 = np.array([[0.5, -1.0, 2.0], [1.5, 0.0, -0.3]])
A = np.array([[1.0, 2.0, 0.5], [0.2, 3.0, 1.0]])
RNG = np.random.default_rng(0)
C = RNG.normal(size=(6,) + W0.shape) * 3.0
LRS = [0.1, 0.05, 0.2, 0.01, 0.3, 0.07]


# -- NumPy references: each takes the per-step learning rates and a gradient function -----

def _clip(g, clipnorm=None, clipvalue=None):
    if clipnorm is not None:
        g = g * clipnorm / max(np.sqrt(np.sum(g * g)), clipnorm)
    if clipvalue is not None:
        g = np.clip(g, -clipvalue, clipvalue)
    return g


def ref_sgd(w, grad, lrs):
    for k, lr in enumerate(lrs):
        w = w - lr * grad(w, k)
        yield w


def ref_momentum(w, grad, lrs, momentum, use_nesterov=False):
    accum = np.zeros_like(w)
    for k, lr in enumerate(lrs):
        g = grad(w, k)
        accum = momentum * accum + g
        w = w - lr * (g + momentum * accum if use_nesterov else accum)
        yield w


def ref_adam(w, grad, lrs, beta1=0.9, beta2=0.999, epsilon=1e-8):
    m, v = np.zeros_like(w), np.zeros_like(w)
    for t, lr in enumerate(lrs, start=1):
        g = grad(w, t - 1)
        lr_t = lr * np.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        w = w - lr_t * m / (np.sqrt(v) + epsilon)
        yield w


def ref_adagrad(w, grad, lrs, initial_accumulator_value=0.1):
    accum = np.full_like(w, initial_accumulator_value)
    for k, lr in enumerate(lrs):
        g = grad(w, k)
        accum = accum + g * g
        w = w - lr * g / np.sqrt(accum)
        yield w


def ref_rmsprop(w, grad, lrs, decay=0.9, momentum=0.0, epsilon=1e-10, centered=False):
    ms, mg, mom = np.ones_like(w), np.zeros_like(w), np.zeros_like(w)
    for k, lr in enumerate(lrs):
        g = grad(w, k)
        ms = decay * ms + (1 - decay) * g * g
        if centered:
            mg = decay * mg + (1 - decay) * g
            den = ms - mg * mg + epsilon
        else:
            den = ms + epsilon
        mom = momentum * mom + lr * g / np.sqrt(den)
        w = w - mom
        yield w


# (name, optimizer class, NumPy reference, hyperparameters)
CASES = [
    ("sgd", train.GradientDescentOptimizer, ref_sgd, {}),
    ("momentum", train.MomentumOptimizer, ref_momentum, {"momentum": 0.9}),
    ("nesterov", train.MomentumOptimizer, ref_momentum, {"momentum": 0.8, "use_nesterov": True}),
    ("adam", train.AdamOptimizer, ref_adam, {}),
    ("adam_custom", train.AdamOptimizer, ref_adam, {"beta1": 0.5, "beta2": 0.9, "epsilon": 1e-3}),
    ("adagrad", train.AdagradOptimizer, ref_adagrad, {}),
    ("adagrad_init", train.AdagradOptimizer, ref_adagrad, {"initial_accumulator_value": 1.5}),
    ("rmsprop", train.RMSPropOptimizer, ref_rmsprop, {}),
    ("rmsprop_momentum", train.RMSPropOptimizer, ref_rmsprop,
     {"decay": 0.8, "momentum": 0.7, "epsilon": 1e-4}),
    ("rmsprop_centered", train.RMSPropOptimizer, ref_rmsprop, {"centered": True, "momentum": 0.5}),
]
IDS = [c[0] for c in CASES]


def _graph_grad(clipnorm=None, clipvalue=None):
    return lambda w, k: _clip(A * w + C[k], clipnorm, clipvalue)


def _train(make_opt, steps, dtype=np.float64, lr_feed=None, **minimize_kw):
    """Run ``steps`` steps of ``make_opt(lr)`` on the quadratic; returns the w after each."""
    g = gc.Graph()
    with g.as_default():
        w = gc.Variable(W0.astype(dtype), name="w")
        c = gc.placeholder(dtype, shape=W0.shape, name="c")
        loss = 0.5 * gc.reduce_sum(A.astype(dtype) * gc.square(w)) + gc.reduce_sum(c * w)
        lr = gc.placeholder(lr_feed, shape=(), name="lr") if lr_feed else None
        opt = make_opt(lr)
        op = opt.minimize(loss, **minimize_kw)
    sess = gc.Session(g, target="reference")
    out = []
    for k in range(steps):
        feed = {c: C[k].astype(dtype)}
        if lr is not None:
            feed[lr] = LRS[k]
        sess.run(op, feed)
        out.append(sess.run(w))
    return out


def _check(got, want, tol=TOL):
    want = list(want)
    assert len(got) == len(want)
    for k, (a, b) in enumerate(zip(got, want)):
        np.testing.assert_allclose(a, b, err_msg=f"step {k + 1}", **tol)


# -- the rules ---------------------------------------------------------------------------

@pytest.mark.parametrize("name,cls,ref,hyper", CASES, ids=IDS)
def test_rule_matches_numpy(name, cls, ref, hyper):
    lr = 0.05
    got = _train(lambda _: cls(lr, **hyper), 5)
    _check(got, ref(W0, _graph_grad(), [lr] * 5, **hyper))


@pytest.mark.parametrize("name,cls,ref,hyper", CASES, ids=IDS)
def test_placeholder_learning_rate_changes_between_steps(name, cls, ref, hyper):
    got = _train(lambda lr: cls(lr, **hyper), 6, lr_feed=gc.float64)
    _check(got, ref(W0, _graph_grad(), LRS, **hyper))


@pytest.mark.parametrize("name,cls,ref,hyper", CASES[::3], ids=IDS[::3])
def test_float32_learning_rate_tensor_on_float64_variable(name, cls, ref, hyper):
    got = _train(lambda lr: cls(lr, **hyper), 4, lr_feed=gc.float32)
    lrs = [float(np.float32(x)) for x in LRS[:4]]
    _check(got, ref(W0, _graph_grad(), lrs, **hyper))


@pytest.mark.parametrize("name,cls,ref,hyper", CASES, ids=IDS)
def test_clipnorm_and_clipvalue(name, cls, ref, hyper):
    for clip in ({"clipnorm": 1.5}, {"clipvalue": 0.4}, {"clipnorm": 2.0, "clipvalue": 0.6}):
        got = _train(lambda _: cls(0.05, **hyper, **clip), 4)
        _check(got, ref(W0, _graph_grad(**clip), [0.05] * 4, **hyper))


@pytest.mark.parametrize("name,cls,ref,hyper", [CASES[0], CASES[3], CASES[8]],
                         ids=[IDS[0], IDS[3], IDS[8]])
def test_float32_variables(name, cls, ref, hyper):
    got = _train(lambda _: cls(0.05, **hyper), 4, dtype=np.float32)
    assert got[0].dtype == np.float32
    _check(got, ref(W0, _graph_grad(), [0.05] * 4, **hyper), dict(rtol=1e-4, atol=1e-5))


def test_clipnorm_is_per_variable():
    g = gc.Graph()
    with g.as_default():
        a = gc.Variable(np.zeros(2), name="a")
        b = gc.Variable(np.zeros(3), name="b")
        ca, cb = np.array([3.0, 4.0]), np.array([0.1, 0.2, -0.2])
        loss = gc.reduce_sum(ca * a) + gc.reduce_sum(cb * b)
        grads = train.GradientDescentOptimizer(1.0, clipnorm=1.0).compute_gradients(loss)
    ga, gb = gc.Session(g, target="reference").run([grads[0][0], grads[1][0]])
    np.testing.assert_allclose(ga, ca / 5.0)  # norm 5 -> rescaled to norm 1
    np.testing.assert_allclose(gb, cb)  # norm 0.3 -> unchanged


def test_learning_rate_schedule_from_global_step():
    g = gc.Graph()
    with g.as_default():
        step = gc.Variable(np.int64(0), name="global_step", trainable=False)
        w = gc.Variable(np.array([1.0, -2.0]), name="w")
        lr = 0.5 / (1.0 + gc.cast(step, gc.float64))
        op = train.GradientDescentOptimizer(lr).minimize(0.5 * gc.reduce_sum(gc.square(w)),
                                                        global_step=step)
    sess = gc.Session(g, target="reference")
    want = np.array([1.0, -2.0])
    for k in range(4):
        sess.run(op)
        want = want - 0.5 / (1 + k) * want  # the schedule reads the step from the run's start
        np.testing.assert_allclose(sess.run(w), want, **TOL)
    assert sess.run(step) == 4


def test_global_step_increments_once_per_run():
    g = gc.Graph()
    with g.as_default():
        step = gc.Variable(np.int64(5), name="global_step", trainable=False)
        w = gc.Variable(np.ones(3), name="w")
        loss = gc.reduce_sum(gc.square(w))
        op = train.AdamOptimizer(0.1).minimize(loss, global_step=step)
        plain = train.AdamOptimizer(0.1, name="Adam2").minimize(loss)
    sess = gc.Session(g, target="reference")
    for _ in range(3):
        sess.run(op)
    sess.run(plain)
    assert sess.run(step) == 8 and sess.run(step).dtype == np.int64


def test_apply_gradients_with_explicit_gradients_and_none():
    g = gc.Graph()
    with g.as_default():
        a = gc.Variable(np.array([1.0, 2.0]), name="a")
        b = gc.Variable(np.array([3.0]), name="b")
        opt = train.MomentumOptimizer(0.5, 0.9)
        op = opt.apply_gradients([(gc.constant(np.array([1.0, -1.0])), a), (None, b)])
    assert opt.get_slot(b, "momentum") is None  # no slot for a variable without gradient
    sess = gc.Session(g, target="reference")
    sess.run(op)
    sess.run(op)
    np.testing.assert_allclose(sess.run(a), [1.0 - 0.5 - 0.5 * 1.9, 2.0 + 0.5 + 0.5 * 1.9])
    np.testing.assert_allclose(sess.run(b), [3.0])


def test_compute_gradients_gives_none_for_unused_variables():
    g = gc.Graph()
    with g.as_default():
        a = gc.Variable(np.array([1.0, 2.0]), name="a")
        b = gc.Variable(np.array([3.0]), name="b")
        gc.Variable(np.array([3.0]), name="frozen", trainable=False)
        pairs = train.GradientDescentOptimizer(0.1).compute_gradients(gc.reduce_sum(a * a))
    assert [v for _, v in pairs] == [a, b]
    assert pairs[0][0] is not None and pairs[1][0] is None
    op = train.GradientDescentOptimizer(0.1).apply_gradients(pairs)
    sess = gc.Session(g, target="reference")
    sess.run(op)
    np.testing.assert_allclose(sess.run(a), [0.8, 1.6])


def test_var_list_restricts_the_update():
    g = gc.Graph()
    with g.as_default():
        a = gc.Variable(np.array([1.0]), name="a")
        b = gc.Variable(np.array([1.0]), name="b")
        op = train.GradientDescentOptimizer(0.1).minimize(gc.reduce_sum(a * b), var_list=[b])
    sess = gc.Session(g, target="reference")
    sess.run(op)
    assert sess.run(a)[0] == 1.0 and sess.run(b)[0] == pytest.approx(0.9)


def test_minimize_builds_in_the_variables_graph():
    g = gc.Graph()
    with g.as_default():
        w = gc.Variable(np.array([1.0, 2.0]), name="w")
        loss = gc.reduce_sum(gc.square(w))
    other = gc.Graph()
    with other.as_default():  # a different default graph while minimize runs
        op = train.AdamOptimizer(0.1).minimize(loss)
    assert op.graph is g and not other.variables
    assert "w/Adam" in g.variables
    gc.Session(g, target="reference").run(op)


# -- slots -------------------------------------------------------------------------------

SLOTS = [
    (train.GradientDescentOptimizer(0.1), [], {}),
    (train.MomentumOptimizer(0.1, 0.9), ["w/Momentum"], {"momentum": 0.0}),
    (train.AdamOptimizer(), ["w/Adam", "w/Adam_1"], {"m": 0.0, "v": 0.0}),
    (train.AdagradOptimizer(0.1, 0.25), ["w/Adagrad"], {"accumulator": 0.25}),
    (train.RMSPropOptimizer(0.1), ["w/RMSProp", "w/RMSProp_1"], {"rms": 1.0, "momentum": 0.0}),
    (train.RMSPropOptimizer(0.1, centered=True), ["w/RMSProp", "w/RMSProp_1", "w/RMSProp_2"],
     {"rms": 1.0, "mg": 0.0, "momentum": 0.0}),
]


@pytest.mark.parametrize("opt,names,fills", SLOTS, ids=[repr(s[0]) + str(len(s[1])) for s in SLOTS])
def test_slots_names_values_and_created_once(opt, names, fills):
    g = gc.Graph()
    with g.as_default():
        w = gc.Variable(np.array([[1.0, 2.0, 3.0]], np.float32), name="w")
        loss = gc.reduce_sum(gc.square(w))
        with gc.name_scope("train"):  # slots are named after the variable, not the scope
            op1 = opt.minimize(loss)
        n_vars = len(gc.global_variables(g))
        op2 = opt.minimize(loss * 2.0)
        assert len(gc.global_variables(g)) == n_vars  # the second minimize reuses the slots
    made = [v for v in gc.global_variables(g) if v.name.startswith("w/")]
    assert [v.name for v in made] == names
    assert gc.trainable_variables(g) == [w]
    assert sorted(opt.get_slot_names()) == sorted(fills)
    sess = gc.Session(g, target="reference")
    for slot_name, fill in fills.items():
        slot = opt.get_slot(w, slot_name)
        assert slot in made and not slot.trainable
        assert slot.shape == w.shape and slot.dtype == w.dtype
        np.testing.assert_array_equal(sess.run(slot), np.full((1, 3), fill, np.float32))
    sess.run(op1)
    sess.run(op2)


def test_adam_step_counter_is_shared_and_non_trainable():
    g = gc.Graph()
    with g.as_default():
        a = gc.Variable(np.ones(2), name="a")
        b = gc.Variable(np.ones(3, np.float32), name="b")
        opt = train.AdamOptimizer(0.1)
        op = opt.minimize(gc.reduce_sum(a * a) + gc.cast(gc.reduce_sum(b * b), gc.float64))
        t = opt.iterations
        assert t.name == "Adam/iterations" and not t.trainable and t.dtype == gc.int64
        assert [v.name for v in opt.variables()] == ["a/Adam", "a/Adam_1", "b/Adam", "b/Adam_1",
                                                     "Adam/iterations"]
    sess = gc.Session(g, target="reference")
    for _ in range(3):
        sess.run(op)
    assert sess.run(t) == 3


def test_two_optimizers_get_distinct_slots():
    g = gc.Graph()
    with g.as_default():
        w = gc.Variable(np.ones(2), name="w")
        loss = gc.reduce_sum(w * w)
        o1, o2 = train.AdamOptimizer(0.1), train.AdamOptimizer(0.1, name="Adam2")
        o1.minimize(loss)
        o2.minimize(loss)
    assert o1.get_slot(w, "m").name == "w/Adam"
    assert o2.get_slot(w, "m").name == "w/Adam2" and o2.get_slot(w, "v").name == "w/Adam2_1"
    assert len({v.name for v in gc.global_variables(g)}) == len(gc.global_variables(g))


def test_global_variables_initializer_resets_slots():
    g = gc.Graph()
    with g.as_default():
        w = gc.Variable(np.ones(2), name="w")
        opt = train.MomentumOptimizer(0.1, 0.9)
        op = opt.minimize(gc.reduce_sum(w * w))
        init = gc.global_variables_initializer()
    sess = gc.Session(g, target="reference")
    sess.run(op)
    assert sess.run(opt.get_slot(w, "momentum"))[0] != 0
    sess.run(init)
    np.testing.assert_array_equal(sess.run(opt.get_slot(w, "momentum")), [0.0, 0.0])


# -- errors ------------------------------------------------------------------------------

def _simple():
    g = gc.Graph()
    with g.as_default():
        w = gc.Variable(np.ones(2), name="w")
        c = gc.placeholder(gc.float64, shape=(2,), name="c")
    return g, w, c


def test_no_gradients_for_any_variable():
    g, w, c = _simple()
    with g.as_default():
        with pytest.raises(gc.GradientError, match="no gradients provided for any variable"):
            train.GradientDescentOptimizer(0.1).minimize(gc.reduce_sum(c * c), var_list=[w])
        with pytest.raises(gc.GradientError, match="no gradients provided"):
            train.AdamOptimizer().apply_gradients([(None, w)])


def test_no_variables_to_optimize():
    g = gc.Graph()
    with g.as_default():
        c = gc.placeholder(gc.float64, shape=(2,), name="c")
        with pytest.raises(gc.GraphError, match="no variables to optimize"):
            train.GradientDescentOptimizer(0.1).minimize(gc.reduce_sum(c * c))


@pytest.mark.parametrize("bad", ["tensor", "array", "string"])
def test_var_list_item_must_be_a_variable(bad):
    g, w, c = _simple()
    with g.as_default():
        item = {"tensor": w * 2.0, "array": np.ones(2), "string": "w"}[bad]
        loss = gc.reduce_sum(w * c)
        with pytest.raises(gc.GraphError, match="must hold gc.Variable"):
            train.AdamOptimizer().minimize(loss, var_list=[w, item])
        with pytest.raises(gc.GraphError, match="must hold gc.Variable"):
            train.AdamOptimizer().apply_gradients([(c, item)])


def test_learning_rate_tensor_must_be_a_float_scalar():
    g, w, c = _simple()
    with g.as_default():
        with pytest.raises(gc.ShapeError, match="scalar"):
            train.GradientDescentOptimizer(c)
        with pytest.raises(gc.ShapeError, match="scalar"):
            train.AdamOptimizer(gc.placeholder(gc.float32, name="lr_unknown_rank"))
        with pytest.raises(gc.DTypeError, match="float"):
            train.MomentumOptimizer(gc.placeholder(gc.int64, shape=()), 0.9)


@pytest.mark.parametrize("make,match", [
    (lambda: train.MomentumOptimizer(0.1, -0.5), "momentum"),
    (lambda: train.AdamOptimizer(beta1=1.0), "beta1"),
    (lambda: train.AdamOptimizer(beta2=-0.1), "beta2"),
    (lambda: train.AdamOptimizer(epsilon=-1e-8), "epsilon"),
    (lambda: train.AdagradOptimizer(0.1, initial_accumulator_value=0.0), "initial_acc"),
    (lambda: train.RMSPropOptimizer(0.1, decay=1.5), "decay"),
    (lambda: train.GradientDescentOptimizer(0.1, clipnorm=0.0), "clipnorm"),
    (lambda: train.GradientDescentOptimizer(0.1, clipvalue=-1.0), "clipvalue"),
    (lambda: train.GradientDescentOptimizer(float("nan")), "finite"),
])
def test_bad_hyperparameters(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_non_number_learning_rate():
    with pytest.raises(TypeError, match="learning_rate"):
        train.GradientDescentOptimizer("0.1")
    with pytest.raises(TypeError, match="learning_rate"):
        train.GradientDescentOptimizer(True)


def test_apply_gradients_checks_pairs():
    g, w, c = _simple()
    with g.as_default():
        opt = train.GradientDescentOptimizer(0.1)
        with pytest.raises(gc.GraphError, match="twice"):
            opt.apply_gradients([(c, w), (c, w)])
        with pytest.raises(gc.DTypeError, match="dtype"):
            opt.apply_gradients([(gc.cast(c, gc.float32), w)])
        with pytest.raises(gc.ShapeError, match="shape"):
            opt.apply_gradients([(gc.reduce_sum(c, keepdims=True) * gc.constant(np.ones((2, 2))),
                                  w)])
        with pytest.raises(gc.GraphError, match="pairs"):
            opt.apply_gradients([w])


def test_two_train_ops_on_one_variable_in_one_run_are_refused():
    g, w, c = _simple()
    with g.as_default():
        loss = gc.reduce_sum(w * c)
        op1 = train.GradientDescentOptimizer(0.1).minimize(loss)
        op2 = train.MomentumOptimizer(0.1, 0.9).minimize(loss)
    sess = gc.Session(g, target="reference")
    with pytest.raises(gc.GraphError, match="assigned twice"):
        sess.run([op1, op2], {c: np.ones(2)})


# -- end to end: linear regression y = 2x + 1 --------------------------------------------

E2E = [
    (lambda: train.GradientDescentOptimizer(0.5), 150),
    (lambda: train.MomentumOptimizer(0.1, 0.9), 150),
    (lambda: train.MomentumOptimizer(0.1, 0.9, use_nesterov=True), 150),
    (lambda: train.AdamOptimizer(0.1), 300),
    (lambda: train.AdagradOptimizer(0.8), 200),
    (lambda: train.RMSPropOptimizer(0.01), 400),
    (lambda: train.RMSPropOptimizer(0.01, momentum=0.5, centered=True), 400),
]


@pytest.mark.parametrize("make,steps", E2E, ids=[f"e2e{i}" for i in range(len(E2E))])
def test_linear_regression_converges(make, steps):
    rng = np.random.default_rng(1)
    xs = rng.uniform(-1, 1, size=(64, 1)).astype(np.float32)
    ys = 2.0 * xs + 1.0
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, shape=(None, 1), name="x")
        y = gc.placeholder(gc.float32, shape=(None, 1), name="y")
        w = gc.Variable(np.zeros((1, 1), np.float32), name="w")
        b = gc.Variable(np.zeros((1,), np.float32), name="b")
        loss = gc.reduce_mean(gc.square(x @ w + b - y))
        op = make().minimize(loss)
    sess = gc.Session(g, target="reference")
    for _ in range(steps):
        value, _ = sess.run([loss, op], {x: xs, y: ys})
    value = sess.run(loss, {x: xs, y: ys})
    assert value < 1e-3, value
    np.testing.assert_allclose(sess.run(w)[0, 0], 2.0, atol=0.05)
    np.testing.assert_allclose(sess.run(b)[0], 1.0, atol=0.05)


# -- regularizers ------------------------------------------------------------------------

WR = np.array([[1.0, -2.0], [0.5, -0.25]])


@pytest.mark.parametrize("reg,want", [
    (regularizers.l1(0.1), 0.1 * 3.75),
    (regularizers.l2(0.1), 0.1 * 5.3125),  # not halved (Keras)
    (regularizers.l1_l2(l1=0.2, l2=0.3), 0.2 * 3.75 + 0.3 * 5.3125),
    (regularizers.l1_l2(l1=0.2), 0.2 * 3.75),
    (regularizers.l1_l2(), 0.0),
    (regularizers.l2(0), 0.0),
])
def test_regularizer_values(reg, want):
    g = gc.Graph()
    with g.as_default():
        w = gc.Variable(WR, name="w")
        penalty = reg(w)
        p32 = reg(gc.constant(WR.astype(np.float32)))
    assert penalty.shape == () and penalty.dtype == gc.float64 and p32.dtype == gc.float32
    sess = gc.Session(g, target="reference")
    np.testing.assert_allclose(sess.run(penalty), want, rtol=1e-12)
    np.testing.assert_allclose(sess.run(p32), want, rtol=1e-6)


def test_regularizer_gradients():
    g = gc.Graph()
    with g.as_default():
        w = gc.Variable(WR, name="w")
        g1, g2, g12 = gc.gradients([regularizers.l1(0.1)(w)], [w]) + \
            gc.gradients(regularizers.l2(0.1)(w), w) + \
            gc.gradients(regularizers.l1_l2(0.2, 0.3)(w), w)
        assert gc.gradients(regularizers.l1_l2()(w), w) == [None]
    sess = gc.Session(g, target="reference")
    np.testing.assert_allclose(sess.run(g1), 0.1 * np.sign(WR))
    np.testing.assert_allclose(sess.run(g2), 0.2 * WR)
    np.testing.assert_allclose(sess.run(g12), 0.2 * np.sign(WR) + 0.6 * WR)


def test_regularizer_in_training():
    g = gc.Graph()
    with g.as_default():
        w = gc.Variable(WR, name="w")
        op = train.GradientDescentOptimizer(0.5).minimize(regularizers.l2(0.1)(w))
    sess = gc.Session(g, target="reference")
    sess.run(op)
    np.testing.assert_allclose(sess.run(w), WR * (1 - 0.5 * 0.2))


def test_regularizer_errors_and_repr():
    for bad in (-0.1, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="scale"):
            regularizers.l1(bad)
        with pytest.raises(ValueError, match="scale"):
            regularizers.l2(bad)
    with pytest.raises(ValueError, match="l2"):
        regularizers.l1_l2(l1=0.1, l2=-1)
    with pytest.raises(TypeError):
        regularizers.l2("0.1")
    with pytest.raises(TypeError):
        regularizers.l1(None)
    g = gc.Graph()
    with g.as_default():
        with pytest.raises(gc.DTypeError, match="float"):
            regularizers.l2(0.1)(gc.constant(np.array([1, 2], np.int64)))
    assert repr(regularizers.l1(0.01)) == "<gc.regularizers.l1(scale=0.01)>"
    assert repr(regularizers.l2(1)) == "<gc.regularizers.l2(scale=1.0)>"
    assert repr(regularizers.l1_l2(0.1, 0.2)) == "<gc.regularizers.l1_l2(l1=0.1, l2=0.2)>"
    assert regularizers.l2(0.1).get_config() == {"l1": 0.0, "l2": 0.1}
    assert regularizers.l2(0.1) == regularizers.l1_l2(l2=0.1)


def test_saver_is_exported():
    from graphc.checkpoint import Saver

    assert train.Saver is Saver
