"""Schedules as tables of (step, expected rate), computed by hand."""

import math

import keras
import numpy as np
import pytest

from kerasft.optimizers import Cyclic
from kerasft.optimizers import LayerwiseLR
from kerasft.optimizers import OneCycle
from kerasft.optimizers import SlantedTriangular
from kerasft.optimizers import WarmupSchedule
from tests.helpers import assert_config_roundtrip


def _check_table(schedule, table):
    for step, expected in table:
        got = float(keras.ops.convert_to_numpy(schedule(step)))
        assert got == pytest.approx(expected, rel=1e-5, abs=1e-9), step


def test_warmup_to_a_constant():
    # 0 -> 1.0 over 4 steps, then constant.
    _check_table(
        WarmupSchedule(1.0, warmup_steps=4),
        [(0, 0.0), (1, 0.25), (2, 0.5), (3, 0.75), (4, 1.0), (100, 1.0)],
    )


def test_warmup_from_initial_then_cosine_starts_after_warmup():
    cosine = keras.optimizers.schedules.CosineDecay(1.0, decay_steps=10)
    _check_table(
        WarmupSchedule(cosine, warmup_steps=5, initial=0.5),
        [
            (0, 0.5),
            (1, 0.6),
            (4, 0.9),
            (5, 1.0),  # cosine step 0
            (10, 0.5),  # cosine step 5: (1 + cos(pi / 2)) / 2
            (15, 0.0),  # cosine step 10
            (30, 0.0),
        ],
    )


@pytest.mark.parametrize(
    "base, table",
    [
        (
            keras.optimizers.schedules.PolynomialDecay(
                1.0, decay_steps=4, end_learning_rate=0.0
            ),
            [(2, 1.0), (3, 0.75), (4, 0.5), (6, 0.0)],  # linear decay
        ),
        (
            keras.optimizers.schedules.ExponentialDecay(
                1.0, decay_steps=1, decay_rate=0.5
            ),
            [(1, 0.5), (2, 1.0), (3, 0.5), (5, 0.125)],
        ),
    ],
)
def test_warmup_with_linear_and_exponential_decay(base, table):
    _check_table(WarmupSchedule(base, warmup_steps=2), table)


def test_one_cycle_linear():
    # initial 0.1, peak 1.0 at step 4.5 - 1 = 3.5 ... use pct_start 0.5 of 10:
    # phase 1 ends at step 4, phase 2 at step 9; final 0.1 / 10 = 0.01.
    schedule = OneCycle(1.0, total_steps=10, pct_start=0.5, div_factor=10.0,
                        final_div_factor=10.0, anneal="linear")
    _check_table(
        schedule,
        [
            (0, 0.1),
            (2, 0.55),
            (4, 1.0),
            (5, 1.0 - 0.99 / 5),
            (9, 0.01),
            (20, 0.01),
        ],
    )


def test_one_cycle_cosine():
    schedule = OneCycle(1.0, total_steps=10, pct_start=0.3, div_factor=10.0,
                        final_div_factor=100.0)
    # Phase 1 ends at step 2; phase 2 runs from step 2 to step 9.
    _check_table(
        schedule,
        [
            (0, 0.1),
            (1, 0.55),  # halfway: (0.1 + 1.0) / 2
            (2, 1.0),
            (9, 0.001),
            (
                5,
                0.001 + (1.0 - 0.001) / 2 * (1 + math.cos(math.pi * 3 / 7)),
            ),
        ],
    )


def test_slanted_triangular():
    # T=100, cut_frac=0.1 -> cut 10; ratio 32 -> floor 0.01 / 32.
    _check_table(
        SlantedTriangular(0.01, total_steps=100),
        [
            (0, 0.01 / 32),
            (5, 0.01 * 16.5 / 32),
            (10, 0.01),
            (55, 0.01 * 16.5 / 32),
            (100, 0.01 / 32),
            (150, 0.01 / 32),
        ],
    )


@pytest.mark.parametrize(
    "mode, gamma, table",
    [
        (
            "triangular",
            1.0,
            [(0, 0.1), (2, 0.55), (4, 1.0), (6, 0.55), (8, 0.1), (12, 1.0)],
        ),
        ("triangular2", 1.0, [(4, 1.0), (8, 0.1), (10, 0.325), (12, 0.55),
                              (20, 0.325)]),
        ("exp_range", 0.9, [(0, 0.1), (2, 0.1 + 0.45 * 0.81),
                            (4, 0.1 + 0.9 * 0.6561)]),
    ],
)
def test_cyclic(mode, gamma, table):
    _check_table(Cyclic(0.1, 1.0, step_size=4, mode=mode, gamma=gamma), table)


@pytest.mark.parametrize(
    "schedule",
    [
        WarmupSchedule(
            keras.optimizers.schedules.CosineDecay(1e-3, 100), 10, 1e-5
        ),
        WarmupSchedule(WarmupSchedule(1.0, 3), 2),
        OneCycle(1e-3, 100, 0.3, 10.0, 100.0, "linear"),
        SlantedTriangular(1e-3, 50, 0.2, 16.0),
        Cyclic(1e-4, 1e-3, 20, "exp_range", 0.99),
    ],
)
def test_config_roundtrip(schedule):
    clone = assert_config_roundtrip(schedule)
    for step in (0, 7, 33):
        np.testing.assert_allclose(clone(step), schedule(step))


def test_schedule_drives_an_optimizer_in_fit_and_reloads(tmp_path):
    schedule = WarmupSchedule(0.1, warmup_steps=4)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(LayerwiseLR(keras.optimizers.SGD(schedule)), "mse")
    model.fit(np.ones((8, 2)), np.zeros((8, 1)), batch_size=4, verbose=0)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.05)
    path = str(tmp_path / "m.keras")
    model.save(path)
    reloaded = keras.models.load_model(path)
    assert isinstance(
        reloaded.optimizer.inner_optimizer._learning_rate, WarmupSchedule
    )
    assert float(reloaded.optimizer.learning_rate) == pytest.approx(0.05)


def test_bad_arguments_name_the_argument():
    bad_arguments = [
        (lambda: WarmupSchedule(1.0, 0), "warmup_steps"),
        (lambda: WarmupSchedule("cosine", 10), "schedule"),
        (lambda: OneCycle(1.0, 10, pct_start=1.5), "pct_start"),
        (lambda: OneCycle(1.0, 10, anneal="exp"), "anneal"),
        (lambda: SlantedTriangular(1.0, 5, cut_frac=0.1), "cut_frac"),
        (lambda: SlantedTriangular(1.0, 100, ratio=0.5), "ratio"),
        (lambda: Cyclic(1.0, 0.5, 4), "max_rate"),
        (lambda: Cyclic(0.1, 1.0, 4, mode="sine"), "mode"),
        (lambda: Cyclic(0.1, 1.0, 0), "step_size"),
    ]
    for build, match in bad_arguments:
        with pytest.raises((ValueError, TypeError), match=match):
            build()
