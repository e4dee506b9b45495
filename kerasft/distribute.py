"""Distribution strategy, precision policy and batch/learning-rate scaling.

`strategy("auto")` picks, in order:

1. `TPUStrategy` when a TPU resolves through
   `tf.distribute.cluster_resolver.TPUClusterResolver` (Colab TPU, TPU node
   named by `TPU_NAME`, or a TPU VM, which resolves as `tpu="local"`);
2. `MultiWorkerMirroredStrategy` when `TF_CONFIG` names more than one task;
3. `MirroredStrategy` when more than one GPU is visible;
4. otherwise the default (no-op) strategy.

`precision("auto")` picks `mixed_bfloat16` on TPU and on CPUs whose flags show
bfloat16 matrix support (`avx512_bf16` or `amx_bf16`), `mixed_float16` on GPUs
of compute capability >= 7.0, and `float32` elsewhere.

The user gives a per-replica batch size; the input pipeline uses
`global_batch_size(per_replica, strategy)`. The learning rate is scaled with
an explicit rule (`scale_learning_rate`): `"linear"` (the default of the
recipes, Goyal et al. 2017), `"sqrt"` (often better for Adam), or `"none"`.
"""

import glob
import json
import math
import os

import keras
import tensorflow as tf

__all__ = [
    "global_batch_size",
    "is_chief",
    "is_tpu",
    "num_replicas",
    "precision",
    "scale_learning_rate",
    "strategy",
    "task_info",
]

STRATEGY_NAMES = ("auto", "tpu", "mirrored", "multiworker", "default")
POLICY_NAMES = (
    "auto",
    "float32",
    "mixed_float16",
    "mixed_bfloat16",
    "float16",
    "bfloat16",
    "float64",
)
LR_RULES = ("linear", "sqrt", "none")

_MIN_GPU_CAPABILITY = (7, 0)
_CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


# === TF_CONFIG ===


def _tf_config():
    """`TF_CONFIG` parsed, or `{}` when unset; `ValueError` when malformed."""
    raw = os.environ.get("TF_CONFIG", "")
    if not raw.strip():
        return {}
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ValueError(
            f"`TF_CONFIG` must be JSON. Received: TF_CONFIG={raw!r} ({e})"
        ) from None
    if not isinstance(config, dict):
        raise ValueError(
            f"`TF_CONFIG` must be a JSON object. Received: TF_CONFIG={raw!r}"
        )
    return config


def _cluster_size(config):
    """Number of chief + worker tasks named in a parsed `TF_CONFIG`."""
    cluster = config.get("cluster", {}) or {}
    return sum(len(cluster.get(kind, []) or []) for kind in ("chief", "worker"))


def task_info():
    """`(task_type, task_id)` from `TF_CONFIG`; `("worker", 0)` when unset.

    Example:
    >>> task_info()  # without TF_CONFIG
    ('worker', 0)
    """
    task = _tf_config().get("task", {}) or {}
    return task.get("type", "worker"), int(task.get("index", 0))


def is_chief():
    """Whether this process writes final outputs in a multi-worker run.

    The chief is the `"chief"` task when the cluster has one, else worker 0.
    Single-process runs are always chief.

    Example:
    >>> is_chief()
    True
    """
    config = _tf_config()
    if _cluster_size(config) <= 1:
        return True
    task_type, task_id = task_info()
    cluster = config.get("cluster", {})
    if "chief" in cluster and cluster["chief"]:
        return task_type == "chief"
    return task_type == "worker" and task_id == 0


# === Strategy ===


def _tpu_hint():
    """The `tpu=` argument for `TPUClusterResolver` when a TPU may exist.

    Returns `None` when nothing suggests a TPU, so `strategy("auto")` does not
    query cloud services on ordinary machines.
    """
    if os.environ.get("TPU_NAME"):
        return os.environ["TPU_NAME"]
    if os.environ.get("COLAB_TPU_ADDR"):
        return ""
    if os.environ.get("TPU_ACCELERATOR_TYPE") or glob.glob("/dev/accel*"):
        return "local"
    return None


def _tpu_strategy(tpu):
    """Resolve, connect, initialize: the standard TPUStrategy sequence."""
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
        tpu=tpu or None
    )
    if tpu != "local":
        tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def _try_tpu():
    hint = _tpu_hint()
    if hint is None:
        return None
    try:
        return _tpu_strategy(hint)
    except (ValueError, RuntimeError, tf.errors.NotFoundError):
        return None


# One MirroredStrategy per device set and process: a second one over the
# same devices restarts TensorFlow's collective instance keys while the
# runtime still holds the first one's groups, and its first all-reduce fails
# with "Shape mismatch in the collective instance 100" (seen when a recipe is
# called twice in one Colab session).
_MIRRORED = {}


def _mirrored():
    """MirroredStrategy over every GPU, or every logical CPU when no GPU."""
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices(
        "CPU"
    )
    key = tuple(d.name for d in devices)
    if key not in _MIRRORED:
        _MIRRORED[key] = tf.distribute.MirroredStrategy(list(key))
    return _MIRRORED[key]


def strategy(spec="auto", tpu=None):
    """Returns a `tf.distribute.Strategy` chosen by name or automatically.

    Build the model, optimizer and metrics inside `strategy.scope()`, and set
    `TF_CONFIG` before calling this for multi-worker training.

    Args:
        spec: `"auto"`, `"tpu"`, `"mirrored"`, `"multiworker"`, `"default"`,
            or a `tf.distribute.Strategy` (returned as is). `"mirrored"`
            replicates over every GPU, or over every logical CPU device when
            there is no GPU. Defaults to `"auto"`.
        tpu: TPU name or address for `"tpu"`; `"local"` on a TPU VM.
            Defaults to `None` (resolved from the environment).

    Returns:
        The strategy.

    Example:
    >>> s = strategy("default")
    >>> s.num_replicas_in_sync
    1
    """
    if isinstance(spec, tf.distribute.Strategy):
        return spec
    if not isinstance(spec, str) or spec not in STRATEGY_NAMES:
        raise ValueError(
            f"`strategy` must be one of {STRATEGY_NAMES} or a "
            f"tf.distribute.Strategy. Received: strategy={spec!r}"
        )
    if spec == "tpu":
        hint = tpu if tpu is not None else _tpu_hint()
        try:
            return _tpu_strategy(hint)
        except (ValueError, RuntimeError, tf.errors.NotFoundError) as e:
            raise RuntimeError(
                f"No TPU could be resolved (tpu={hint!r}): {e}. On a TPU VM "
                "pass tpu='local'; on Colab select a TPU runtime."
            ) from e
    if spec == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if spec == "mirrored":
        return _mirrored()
    if spec == "default":
        return tf.distribute.get_strategy()
    # auto
    found = _try_tpu()
    if found is not None:
        return found
    if _cluster_size(_tf_config()) > 1:
        return tf.distribute.MultiWorkerMirroredStrategy()
    if len(tf.config.list_physical_devices("GPU")) > 1:
        return _mirrored()
    return tf.distribute.get_strategy()


def num_replicas(strategy_or_replicas=None):
    """Number of replicas of a strategy (or an int passed through)."""
    if strategy_or_replicas is None:
        return tf.distribute.get_strategy().num_replicas_in_sync
    if isinstance(strategy_or_replicas, int):
        if strategy_or_replicas < 1:
            raise ValueError(
                "The number of replicas must be >= 1. Received: "
                f"{strategy_or_replicas}"
            )
        return strategy_or_replicas
    return strategy_or_replicas.num_replicas_in_sync


def global_batch_size(per_replica_batch_size, strategy=None):
    """Per-replica batch size times the number of replicas.

    Args:
        per_replica_batch_size: batch size each replica sees.
        strategy: a strategy or a replica count. Defaults to the current one.

    Example:
    >>> global_batch_size(32, 8)
    256
    """
    if (
        not isinstance(per_replica_batch_size, int)
        or isinstance(per_replica_batch_size, bool)
        or per_replica_batch_size < 1
    ):
        raise ValueError(
            "`batch_size` (per replica) must be a positive integer. "
            f"Received: batch_size={per_replica_batch_size!r}"
        )
    return per_replica_batch_size * num_replicas(strategy)


def scale_learning_rate(learning_rate, strategy=None, rule="linear"):
    """Scales a learning rate tuned for one replica to `n` replicas.

    The global batch grows with the replica count, so the rate is scaled:
    `"linear"` multiplies by `n` (Goyal et al., 2017: SGD), `"sqrt"` by
    `sqrt(n)` (a common choice for Adam), `"none"` leaves it unchanged.

    Args:
        learning_rate: the rate tuned at the per-replica batch size.
        strategy: a strategy or a replica count. Defaults to the current one.
        rule: `"linear"`, `"sqrt"` or `"none"`. Defaults to `"linear"`.

    Example:
    >>> scale_learning_rate(1e-3, 4, rule="sqrt")
    0.002
    """
    if rule not in LR_RULES:
        raise ValueError(
            f"`rule` must be one of {LR_RULES}. Received: rule={rule!r}"
        )
    if not isinstance(learning_rate, (int, float)) or learning_rate < 0:
        raise ValueError(
            "`learning_rate` must be a non-negative number. "
            f"Received: learning_rate={learning_rate!r}"
        )
    n = num_replicas(strategy)
    factor = {"linear": n, "sqrt": math.sqrt(n), "none": 1}[rule]
    return float(learning_rate) * factor


# === Precision ===


def _cpu_flags():
    """The CPU feature flags from /proc/cpuinfo (empty set if unreadable)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _gpu_capabilities():
    """Compute capabilities `(major, minor)` of the visible GPUs."""
    capabilities = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        capabilities.append(tuple(details.get("compute_capability", (0, 0))))
    return capabilities


def is_tpu(strategy):
    """Whether `strategy` is a TPU strategy (`TPUStrategy` or its V1/V2
    classes), by class name so no TPU library needs to load.

    Example:
    >>> is_tpu(tf.distribute.get_strategy())
    False
    """
    return strategy is not None and "TPU" in type(strategy).__name__


def auto_policy_name(strategy=None):
    """The policy name `precision("auto")` would choose (nothing is set)."""
    if is_tpu(strategy):
        return "mixed_bfloat16"
    capabilities = _gpu_capabilities()
    if capabilities:
        if all(c >= _MIN_GPU_CAPABILITY for c in capabilities):
            return "mixed_float16"
        return "float32"
    if _cpu_flags() & set(_CPU_BF16_FLAGS):
        return "mixed_bfloat16"
    return "float32"


def precision(policy="auto", strategy=None):
    """Sets and returns the global Keras dtype policy.

    Args:
        policy: `"auto"` or a Keras policy name (`"float32"`,
            `"mixed_float16"`, `"mixed_bfloat16"`, ...). `"auto"` picks
            `mixed_bfloat16` on TPU and on CPUs with `avx512_bf16`/`amx_bf16`,
            `mixed_float16` on GPUs of compute capability >= 7.0, else
            `float32`. Defaults to `"auto"`.
        strategy: the strategy in use (a TPUStrategy forces
            `mixed_bfloat16` under `"auto"`). Defaults to `None`.

    Returns:
        The `keras.DTypePolicy` now global.

    Example:
    >>> precision("float32").name
    'float32'
    """
    if isinstance(policy, keras.DTypePolicy):
        policy = policy.name
    if not isinstance(policy, str) or policy not in POLICY_NAMES:
        raise ValueError(
            f"`precision` must be one of {POLICY_NAMES}. "
            f"Received: precision={policy!r}"
        )
    name = auto_policy_name(strategy) if policy == "auto" else policy
    keras.mixed_precision.set_global_policy(name)
    return keras.mixed_precision.global_policy()
