"""kerasft.distribute: strategy resolution, precision choice, batch/LR scaling.

TPUs, GPUs and a real cluster cannot run on this machine: tests named
`test_routing_only_*` check only which strategy or policy `auto` picks, with
`TPUClusterResolver`, the connect/initialize calls, `TPUStrategy`,
`MultiWorkerMirroredStrategy` or the device list monkeypatched; they train
nothing. MirroredStrategy runs for real on two logical CPUs, and two local
worker processes run MultiWorkerMirroredStrategy for real
(`test_multiworker_*`, here and in tests/recipes/test_distributed.py).
"""

import json

import keras
import pytest
import tensorflow as tf

from kerasft import distribute


@pytest.fixture
def no_cluster_env(monkeypatch):
    for name in ("TF_CONFIG", "TPU_NAME", "COLAB_TPU_ADDR", "TPU_ACCELERATOR_TYPE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(distribute.glob, "glob", lambda pattern: [])


class _FakeResolver:
    created = []

    def __init__(self, tpu=None):
        self.tpu = tpu
        _FakeResolver.created.append(tpu)


class FakeTPUStrategy:
    def __init__(self, resolver):
        self.resolver = resolver
        self.num_replicas_in_sync = 8


@pytest.fixture
def fake_tpu(monkeypatch):
    calls = []
    _FakeResolver.created = []
    monkeypatch.setattr(
        tf.distribute.cluster_resolver, "TPUClusterResolver", _FakeResolver
    )
    monkeypatch.setattr(
        tf.config,
        "experimental_connect_to_cluster",
        lambda r: calls.append(("connect", r.tpu)),
    )
    monkeypatch.setattr(
        tf.tpu.experimental,
        "initialize_tpu_system",
        lambda r: calls.append(("initialize", r.tpu)),
    )
    monkeypatch.setattr(tf.distribute, "TPUStrategy", FakeTPUStrategy)
    return calls


def test_explicit_names_and_passthrough(no_cluster_env):
    default = distribute.strategy("default")
    assert default is tf.distribute.get_strategy()
    assert distribute.strategy(default) is default
    assert distribute.strategy("auto") is tf.distribute.get_strategy()


def test_mirrored_uses_two_logical_cpus():
    s = distribute.strategy("mirrored")
    assert isinstance(s, tf.distribute.MirroredStrategy)
    assert s.num_replicas_in_sync == 2
    # One per device set: a second MirroredStrategy would break collectives.
    assert distribute.strategy("mirrored") is s


@pytest.mark.parametrize("bad", ["gpu", "", 3, None])
def test_unknown_strategy_name_is_an_error(bad):
    with pytest.raises(ValueError, match="`strategy` must be one of"):
        distribute.strategy(bad)


def test_routing_only_auto_without_tpu_hint_never_queries_a_resolver(
    no_cluster_env, fake_tpu
):
    distribute.strategy("auto")
    assert _FakeResolver.created == []
    assert fake_tpu == []


@pytest.mark.parametrize(
    "env, expected_tpu, connects",
    [
        ({"TPU_NAME": "my-tpu"}, "my-tpu", True),
        ({"COLAB_TPU_ADDR": "10.0.0.2:8470"}, None, True),
        ({"TPU_ACCELERATOR_TYPE": "v4-8"}, "local", False),
    ],
)
def test_routing_only_auto_resolves_connects_initializes_fake_tpu(
    no_cluster_env, fake_tpu, monkeypatch, env, expected_tpu, connects
):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    s = distribute.strategy("auto")
    assert isinstance(s, FakeTPUStrategy)
    assert s.resolver.tpu == expected_tpu
    steps = [c[0] for c in fake_tpu]
    assert steps == (["connect", "initialize"] if connects else ["initialize"])


def test_routing_only_tpu_vm_detected_from_dev_accel(no_cluster_env, fake_tpu, monkeypatch):
    monkeypatch.setattr(distribute.glob, "glob", lambda p: ["/dev/accel0"])
    s = distribute.strategy("auto")
    assert s.resolver.tpu == "local"


def test_routing_only_auto_falls_back_when_resolver_fails(no_cluster_env, monkeypatch):
    def failing(tpu=None):
        raise ValueError("Please provide a TPU Name to connect to.")

    monkeypatch.setattr(
        tf.distribute.cluster_resolver, "TPUClusterResolver", failing
    )
    monkeypatch.setenv("TPU_NAME", "missing")
    assert distribute.strategy("auto") is tf.distribute.get_strategy()
    with pytest.raises(RuntimeError, match="No TPU could be resolved"):
        distribute.strategy("tpu")


def _cluster(n_workers, task_type="worker", index=0, chief=False):
    cluster = {"worker": [f"127.0.0.1:{2000 + i}" for i in range(n_workers)]}
    if chief:
        cluster["chief"] = ["127.0.0.1:1999"]
    return json.dumps(
        {"cluster": cluster, "task": {"type": task_type, "index": index}}
    )


def test_tf_config_parsing(no_cluster_env, monkeypatch):
    assert distribute.task_info() == ("worker", 0)
    assert distribute.is_chief()
    monkeypatch.setenv("TF_CONFIG", _cluster(2, "worker", 1))
    assert distribute.task_info() == ("worker", 1)
    assert not distribute.is_chief()
    monkeypatch.setenv("TF_CONFIG", _cluster(2, "worker", 0))
    assert distribute.is_chief()
    monkeypatch.setenv("TF_CONFIG", _cluster(2, "worker", 0, chief=True))
    assert not distribute.is_chief()
    monkeypatch.setenv("TF_CONFIG", _cluster(2, "chief", 0, chief=True))
    assert distribute.is_chief()
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="`TF_CONFIG` must be JSON"):
        distribute.is_chief()


def test_routing_only_auto_picks_multiworker_only_for_several_tasks(
    no_cluster_env, monkeypatch
):
    made = []
    monkeypatch.setattr(
        tf.distribute,
        "MultiWorkerMirroredStrategy",
        lambda: made.append("mwms") or "mwms",
    )
    monkeypatch.setenv("TF_CONFIG", _cluster(1))
    assert distribute.strategy("auto") is tf.distribute.get_strategy()
    monkeypatch.setenv("TF_CONFIG", _cluster(2, "worker", 1))
    assert distribute.strategy("auto") == "mwms"
    assert made == ["mwms"]


def test_routing_only_auto_picks_mirrored_for_several_gpus(no_cluster_env, monkeypatch):
    monkeypatch.setattr(
        tf.config, "list_physical_devices", lambda kind=None: ["g0", "g1"]
    )
    monkeypatch.setattr(distribute, "_mirrored", lambda: "mirrored")
    assert distribute.strategy("auto") == "mirrored"


@pytest.mark.parametrize(
    "flags, gpus, expected",
    [
        ({"avx2", "avx512f"}, [], "float32"),
        ({"avx512f", "avx512_bf16"}, [], "mixed_bfloat16"),
        ({"amx_bf16", "amx_tile"}, [], "mixed_bfloat16"),
        ({"avx512_bf16"}, [(8, 0)], "mixed_float16"),
        (set(), [(7, 0), (7, 5)], "mixed_float16"),
        (set(), [(6, 1)], "float32"),
        ({"avx512_bf16"}, [(8, 0), (6, 0)], "float32"),
    ],
)
def test_precision_auto_choice(monkeypatch, flags, gpus, expected):
    monkeypatch.setattr(distribute, "_cpu_flags", lambda: flags)
    monkeypatch.setattr(distribute, "_gpu_capabilities", lambda: gpus)
    policy = distribute.precision("auto")
    assert policy.name == expected
    assert keras.mixed_precision.global_policy().name == expected


def test_routing_only_precision_auto_on_fake_tpu_is_bfloat16(monkeypatch):
    monkeypatch.setattr(distribute, "_cpu_flags", lambda: set())
    monkeypatch.setattr(distribute, "_gpu_capabilities", lambda: [])
    assert distribute.precision("auto").name == "float32"
    fake = FakeTPUStrategy(None)
    assert distribute.precision("auto", fake).name == "mixed_bfloat16"


def test_cpu_flags_reads_this_machine():
    flags = distribute._cpu_flags()  # kerasft's own helper
    assert "fpu" in flags or not flags  # readable /proc/cpuinfo lists fpu


def test_precision_explicit_and_invalid():
    assert distribute.precision("mixed_float16").compute_dtype == "float16"
    assert distribute.precision("float32").name == "float32"
    with pytest.raises(ValueError, match="`precision` must be one of"):
        distribute.precision("half")


@pytest.mark.parametrize(
    "lr, n, rule, expected",
    [
        (1e-3, 1, "linear", 1e-3),
        (1e-3, 8, "linear", 8e-3),
        (1e-3, 4, "sqrt", 2e-3),
        (1e-3, 8, "none", 1e-3),
    ],
)
def test_scale_learning_rate(lr, n, rule, expected):
    assert distribute.scale_learning_rate(lr, n, rule) == pytest.approx(expected)


def test_scale_learning_rate_and_batch_with_a_strategy(two_cpu_strategy):
    assert distribute.global_batch_size(16, two_cpu_strategy) == 32
    assert distribute.scale_learning_rate(
        0.1, two_cpu_strategy
    ) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="`rule` must be one of"):
        distribute.scale_learning_rate(0.1, 2, rule="cubic")
    with pytest.raises(ValueError, match="`batch_size`"):
        distribute.global_batch_size(0, 2)


@pytest.mark.slow
def test_multiworker_fit_and_evaluate_in_a_scope_keras_gets_back(tmp_path):
    """Two local workers: `fit` and `evaluate` work inside the runner's
    multi-worker scope, and after it Keras's trainer and the model are as
    they were (no process-wide patch left behind)."""
    import os
    import socket
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sockets = [socket.socket() for _ in range(2)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    workers = [f"127.0.0.1:{s.getsockname()[1]}" for s in sockets]
    for s in sockets:
        s.close()
    procs = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "PYTHONPATH": root, "TF_CONFIG": json.dumps(tf_config),
               "CUDA_VISIBLE_DEVICES": ""}
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "tests._multiworker_child"], cwd=root, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        ))
    for proc in procs:
        output, _ = proc.communicate(timeout=400)
        text = output.decode()
        assert proc.returncode == 0, text[-4000:]
        result = json.loads(text.strip().splitlines()[-1])
        assert result["strategy"] == "CollectiveAllReduceStrategy"
        assert len(result["loss"]) == 2 and all(v == v for v in result["loss"])
        assert {"loss", "accuracy"} <= set(result["evaluated"])
        assert result["restored"] is True
        assert result["predictions"] == [48, 3]
