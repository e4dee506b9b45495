"""Keras's own optimizer tests, run through kerasft's wrappers.

The installed `keras` wheel ships its optimizer tests
(`keras/src/optimizers/*_test.py`: golden values over several steps, weight
decay with exclusions, EMA, serialization). Each runs here unchanged except
that the optimizer class it builds is replaced by a factory returning
`LayerwiseLR(optimizer)` (no rates: every variable at the base rate) or
`GradientAccumulator(optimizer, 1)`, wrappers with nothing to change. A test
that passes for the bare optimizer must pass wrapped; one that fails bare on
this installation is skipped with its error. `EXCLUDED` lists the tests
that read private state or count variables, with the reason.

`loss_scale_optimizer_test.py` runs with its `SGD` wrapped, so
`LossScaleOptimizer` wraps kerasft's wrappers; `optimizer_test.py` (the base
class: EMA, clipping, constraints, `set_weights`, checkpoints) runs with
`keras.optimizers`' classes wrapped.
"""

import importlib
import types
import unittest

import keras
import pytest

from kerasft.optimizers import GradientAccumulator
from kerasft.optimizers import LayerwiseLR

# Test module (in keras.src.optimizers) -> (TestCase class, class to wrap).
SUITES = {
    "adam_test": ("AdamTest", "Adam"),
    "adamw_test": ("AdamWTest", "AdamW"),
    "sgd_test": ("SGDTest", "SGD"),
    "rmsprop_test": ("RMSpropTest", "RMSprop"),
    "nadam_test": ("NadamTest", "Nadam"),
    "lion_test": ("LionTest", "Lion"),
    "adafactor_test": ("AdafactorTest", "Adafactor"),
    "lamb_test": ("LambTest", "Lamb"),
    "loss_scale_optimizer_test": ("LossScaleOptimizerTest", "SGD"),
    "optimizer_test": ("OptimizerTest", None),  # `optimizers.<Class>`
}

_PRIVATE_CLIP = (
    "reads the private `_clip_gradients` (clipping is compared with the bare "
    "optimizer in test_optimizer_api.py)"
)

_KERAS_ACCUMULATION = (
    "sets Keras's own `gradient_accumulation_steps` on the wrapped optimizer, "
    "which both wrappers reject by design (GradientAccumulator replaces it; "
    "test_optimizer_api.py compares it with Keras's accumulation)"
)

# (module, test without its parameter suffix, wrapper or "*") -> why it
# cannot run through a wrapper.
EXCLUDED = {
    ("*", "test_clip_norm", "*"): _PRIVATE_CLIP,
    ("*", "test_clip_value", "*"): _PRIVATE_CLIP,
    ("adam_test", "test_ema", "*"): (
        "reads the private `_model_variables_moving_average` (EMA and "
        "`finalize_variable_values` are compared in test_optimizer_api.py)"
    ),
    ("adam_test", "test_ema_overwrite_frequency", "*"): (
        "reads the private `_model_variables_moving_average` (EMA overwrite "
        "is compared in test_optimizer_api.py)"
    ),
    ("nadam_test", "test_build_with_empty_var_list", "*"): (
        "reads Nadam's private `_u_product`"
    ),
    ("sgd_test", "test_single_step", "accumulate"): (
        "asserts `len(optimizer.variables) == 2`; GradientAccumulator adds "
        "one accumulator per variable and a batch counter"
    ),
    ("optimizer_test", "test_ema", "*"): (
        "reads the private `_model_variables_moving_average`"
    ),
    ("optimizer_test", "test_ema_with_model_fit", "*"): (
        "reads the private `_model_variables_moving_average`"
    ),
    ("optimizer_test", "test_get_method", "*"): (
        "asserts the class `keras.optimizers.get` returns "
        "(`isinstance(obj, optimizers.SGD)`)"
    ),
    ("optimizer_test", "test_optimizer_auto_naming", "*"): (
        "asserts class-derived auto names (`adam`, `adam_1`); a wrapper "
        "names itself"
    ),
    ("optimizer_test", "test_gradient_accumulation", "*"): _KERAS_ACCUMULATION,
    ("optimizer_test", "test_gradient_accumulation_with_weigth_decay", "*"): (
        _KERAS_ACCUMULATION
    ),
    (
        "optimizer_test",
        "test_overwrite_with_gradient_with_gradient_accumulation",
        "*",
    ): _KERAS_ACCUMULATION,
}


WRAPPERS = {
    "layerwise": LayerwiseLR,
    "accumulate": lambda optimizer: GradientAccumulator(optimizer, 1),
}


def _factory(wrap, cls):
    """Stands in for an optimizer class: builds it, returns it wrapped."""
    return lambda *args, **kwargs: wrap(cls(*args, **kwargs))


def _module(name):
    return importlib.import_module(f"keras.src.optimizers.{name}")


def _cases():
    for name, (case, _) in SUITES.items():
        cls = getattr(_module(name), case)
        for test in unittest.TestLoader().getTestCaseNames(cls):
            for wrapper in WRAPPERS:
                yield pytest.param(
                    name, test, wrapper, id=f"{name}-{test}-{wrapper}"
                )


def _excluded(name, test, wrapper):
    base = test.rstrip("0123456789")  # absl's parameterized suffix
    for m in (name, "*"):
        for t in (test, base):
            for w in (wrapper, "*"):
                if (m, t, w) in EXCLUDED:
                    return EXCLUDED[m, t, w]
    return None


def _run(name, test):
    """Runs one Keras test (setUp, test, tearDown); raises on failure."""
    case, _ = SUITES[name]
    getattr(_module(name), case)(test).debug()


_BARE = {}


def _bare_error(name, test):
    """None if the test passes for the bare optimizer, else its error."""
    if (name, test) not in _BARE:
        try:
            _run(name, test)
            _BARE[name, test] = None
        except unittest.SkipTest as e:
            _BARE[name, test] = f"skipped bare: {e}"
        except Exception as e:  # noqa: BLE001 - reported as the skip reason
            _BARE[name, test] = f"fails bare: {type(e).__name__}: {e}"
        finally:
            keras.mixed_precision.set_global_policy("float32")
    return _BARE[name, test]


def _wrap_module(monkeypatch, name, wrap):
    module = _module(name)
    _, target = SUITES[name]
    if target is not None:
        cls = getattr(module, target)
        monkeypatch.setattr(module, target, _factory(wrap, cls))
        return
    # `optimizer_test` builds `optimizers.<Class>(...)` and
    # `optimizers.get(...)`: a namespace whose optimizer classes and `get`
    # return wrapped optimizers, everything else the real module.
    real = module.optimizers
    namespace = types.SimpleNamespace(**vars(real))
    for attr, value in vars(real).items():
        if (
            isinstance(value, type)
            and issubclass(value, keras.optimizers.Optimizer)
            and value is not keras.optimizers.Optimizer
            and value is not keras.optimizers.LossScaleOptimizer
        ):
            setattr(namespace, attr, _factory(wrap, value))

    def get(identifier, **kwargs):
        optimizer = real.get(identifier, **kwargs)
        return None if optimizer is None else wrap(optimizer)

    namespace.get = get
    monkeypatch.setattr(module, "optimizers", namespace)


@pytest.mark.parametrize("name,test,wrapper", list(_cases()))
def test_keras_optimizer_test_passes_wrapped(name, test, wrapper, monkeypatch):
    reason = _excluded(name, test, wrapper)
    if reason:
        pytest.skip(f"excluded: {reason}")
    error = _bare_error(name, test)
    if error:
        pytest.skip(error)
    _wrap_module(monkeypatch, name, WRAPPERS[wrapper])
    _run(name, test)


@pytest.mark.parametrize("wrapper", list(WRAPPERS))
def test_the_harness_hands_the_tests_wrapped_optimizers(wrapper, monkeypatch):
    kinds = {"layerwise": LayerwiseLR, "accumulate": GradientAccumulator}
    for name, (_, target) in SUITES.items():
        _wrap_module(monkeypatch, name, WRAPPERS[wrapper])
        module = _module(name)
        if target is None:
            made = [module.optimizers.Adam(), module.optimizers.get("sgd")]
        else:
            made = [getattr(module, target)()]
        for optimizer in made:
            assert isinstance(optimizer, kinds[wrapper]), (name, optimizer)
