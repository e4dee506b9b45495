"""Shared test setup: quiet TensorFlow, two logical CPUs, a clean policy per test."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import keras  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from tests._required import missing_requirement  # noqa: E402

# Logical devices must be configured before TensorFlow initializes its
# runtime, so this runs at import time, before any test touches a tensor.
_cpus = tf.config.list_physical_devices("CPU")
try:
    tf.config.set_logical_device_configuration(
        _cpus[0],
        [tf.config.LogicalDeviceConfiguration()] * 2,
    )
except RuntimeError:  # runtime already initialized by a plugin import
    pass


@pytest.fixture(autouse=True)
def _clean_keras_state():
    """Each test starts in float32 with a fixed seed and a fresh session."""
    keras.mixed_precision.set_global_policy("float32")
    keras.utils.set_random_seed(1234)
    yield
    keras.mixed_precision.set_global_policy("float32")
    # Skip the full gc.collect(): it costs ~1 s per test; memory is ample.
    keras.backend.clear_session(free_memory=False)


@pytest.fixture(scope="session")
def two_cpu_strategy():
    """MirroredStrategy over the two logical CPU devices.

    The same object as `kerasft.distribute.strategy("mirrored")`: a second
    MirroredStrategy over the same devices in one process fails with "Shape
    mismatch in the collective instance", so kerasft keeps one per device set.
    """
    devices = tf.config.list_logical_devices("CPU")
    if len(devices) < 2:
        missing_requirement("two logical CPU devices could not be configured")
    from kerasft import distribute

    strategy = distribute.strategy("mirrored")
    assert strategy.num_replicas_in_sync == 2
    return strategy
