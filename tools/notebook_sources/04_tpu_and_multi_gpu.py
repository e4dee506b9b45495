# %% [markdown]
# # The same fine-tuning on a TPU, several GPUs, or a CPU
#
# One notebook for every machine: `kerasft.distribute.strategy("auto")` picks `TPUStrategy`
# on a Colab TPU runtime or a TPU VM, `MultiWorkerMirroredStrategy` when `TF_CONFIG` names
# several workers, `MirroredStrategy` on several GPUs, and the default strategy otherwise;
# `kerasft.distribute.precision("auto")` picks `mixed_bfloat16` on TPUs (and CPUs with bfloat16
# units), `mixed_float16` on recent GPUs, `float32` elsewhere.
#
# In Colab: *Runtime -> Change runtime type -> TPU*, then run all. On a CPU (and in the test
# suite, `SMOKE=1`) the notebook splits the CPU into two logical devices so the multi-replica
# code path (`MirroredStrategy`, per-replica batches, gradient all-reduce) really runs.
#
# The settings a TPU needs, each applied below:
#
# | setting | why |
# |---|---|
# | model, optimizer and metrics created inside `strategy.scope()` | variables made outside are not replicated (keras#17187) |
# | `drop_remainder=True` | TPUs compile for static shapes; a short last batch recompiles or fails (keras-hub#443) |
# | global batch = per-replica batch x replicas | each replica gets `batch / replicas` examples (keras-io#1507) |
# | learning rate scaled with an explicit rule | a larger global batch takes fewer, larger steps |
# | `mixed_bfloat16`, float32 output layer | TPUs compute in bfloat16; the softmax stays float32 (tensorflow#34406) |
# | augmentation in `tf.data`, on float32 | random image layers fail on bfloat16 and have no XLA kernel (keras#17508) |
# | `steps_per_execution` > 1 | fewer host round trips per step on a TPU |
# | `TF_CONFIG` set before the strategy exists, only the chief writes files | multi-worker runs (tensorflow#31154) |

# %%
import sys

# kerasft is not on PyPI (a package published there under that name would not
# be this project). In Colab, set KERASFT to where to install it from: the
# project's repository ("git+https://<host>/<owner>/kerasft.git") or a wheel you
# built with `python -m build` and uploaded ("/content/kerasft-<version>-py3-none-any.whl").
# Elsewhere install it first (`pip install -e .` in a checkout); this cell then does nothing.
KERASFT = ""

if "google.colab" in sys.modules:
    import pathlib

    if not KERASFT:
        raise ValueError(
            "Set KERASFT in the first cell to the kerasft repository "
            "(git+https://...) or the path of a kerasft wheel: kerasft is not on PyPI."
        )
    _url = KERASFT if "://" in KERASFT else pathlib.Path(KERASFT).resolve().as_uri()
    %pip install -q "kerasft @ {_url}"

# %%
import os

SMOKE = os.environ.get("SMOKE") == "1"

# Logical CPU devices to split the CPU into when there is no TPU/GPU (0 or 1: no split).
CPU_REPLICAS = 2 if SMOKE else 0
IMAGE_SIZE = 32 if SMOKE else 96
PER_REPLICA_BATCH = 8 if SMOKE else 64
EPOCHS = 2 if SMOKE else 8
SAMPLES = 256 if SMOKE else None
BASE_LEARNING_RATE = 1e-3  # tuned for one replica at PER_REPLICA_BATCH

# %% [markdown]
# ## 1. Strategy and precision
#
# Logical devices must be configured before TensorFlow starts its runtime, so this is the
# first cell that touches TensorFlow devices.

# %%
import keras
import numpy as np
import tensorflow as tf

import kerasft

tf.get_logger().setLevel("ERROR")  # MirroredStrategy logs every all-reduce at INFO level

if CPU_REPLICAS > 1 and not tf.config.list_physical_devices("GPU"):
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * CPU_REPLICAS
    )

strategy = kerasft.distribute.strategy("auto")
if strategy.num_replicas_in_sync == 1 and len(tf.config.list_logical_devices("CPU")) > 1:
    strategy = kerasft.distribute.strategy("mirrored")  # every logical CPU device
policy = kerasft.distribute.precision("auto", strategy=strategy)
print(type(strategy).__name__, "with", strategy.num_replicas_in_sync, "replicas |", policy.name)

# %% [markdown]
# ## 2. Batch size and learning rate
#
# You choose the per-replica batch; the pipeline batches by the global one. The learning rate
# tuned for one replica is scaled by the square root of the replica count (a common rule for
# Adam; `rule="linear"` is the rule for SGD).

# %%
global_batch = kerasft.distribute.global_batch_size(PER_REPLICA_BATCH, strategy)
learning_rate = kerasft.distribute.scale_learning_rate(BASE_LEARNING_RATE, strategy, rule="sqrt")
print("global batch", global_batch, "| learning rate", learning_rate)

# %% [markdown]
# ## 3. Input pipeline
#
# Digits from scikit-learn as RGB images in [0, 255] (in-memory arrays work on TPU VMs; on a
# remote TPU node, files must be on GCS). Augmentation runs in `tf.data` on float32 before
# batching into static shapes.

# %%
from sklearn.datasets import load_digits

digits = load_digits()
images = np.repeat(digits.images[..., None] * (255.0 / 16.0), 3, axis=-1).astype("float32")
labels = digits.target.astype("int32")
if SAMPLES:
    images, labels = images[:SAMPLES], labels[:SAMPLES]
split = int(0.8 * len(images))

augment = kerasft.augment.ImageAugmentation(
    rotation_range=10, width_shift_range=0.1, height_shift_range=0.1, seed=0
)


def pipeline(x, y, training):
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if training:
        ds = ds.shuffle(len(x), seed=0)
    ds = ds.batch(global_batch, drop_remainder=True)  # static shapes for TPUs
    ds = ds.map(lambda x, y: (tf.image.resize(x, (IMAGE_SIZE, IMAGE_SIZE)), y))
    if training:
        ds = ds.map(lambda x, y: (augment(x, training=True), y))
    return ds.prefetch(tf.data.AUTOTUNE)


train_ds = pipeline(images[:split], labels[:split], training=True)
val_ds = pipeline(images[split:], labels[split:], training=False)

# %% [markdown]
# ## 4. Model, optimizer and metrics inside the scope
#
# The same recipe as in notebook 01: a backbone with its preprocessing inside the model, a
# classification head whose output layer computes in float32, progressive unfreezing with
# layer-wise rates. Everything that creates variables is inside `strategy.scope()`.

# %%
weights = None if SMOKE else "imagenet"
with strategy.scope():
    backbone = kerasft.backbones.get(
        "mobilenetv2", weights=weights, input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3)
    )
    head = kerasft.heads.classification(10, dropout=0.2)
    model = kerasft.build_model(backbone, head)
    kerasft.freeze(model, backbone, "progressive")
    optimizer = kerasft.optimizers.LayerwiseLR(
        keras.optimizers.Adam(learning_rate), layer_decay=0.8
    )
    model.compile(
        optimizer=optimizer,
        steps_per_execution=1 if SMOKE else 8,
        **head.compile_kwargs(),
    )
print("output dtype:", model.output.dtype, "| variable dtype:", model.weights[0].dtype)

# %%
# epoch -> number of top backbone groups that train
schedule = {0: 0, 1: "all"} if SMOKE else {0: 0, 2: 4, 4: "all"}
unfreeze = kerasft.callbacks.ProgressiveUnfreeze(backbone, schedule)
history = model.fit(
    train_ds, validation_data=val_ds, epochs=EPOCHS, callbacks=[unfreeze], verbose=2
)

# %% [markdown]
# ## 5. Save from the chief only
#
# In a multi-worker run every worker executes this notebook's code; only the chief writes the
# final files (the others would race on the same path).

# %%
if kerasft.distribute.is_chief():
    model.save("tpu_model.keras")
    reloaded = keras.models.load_model("tpu_model.keras")
    batch, _ = next(iter(val_ds))
    np.testing.assert_allclose(
        reloaded.predict(batch, verbose=0), model.predict(batch, verbose=0), atol=1e-3
    )
    print("saved and reloaded tpu_model.keras")

# %% [markdown]
# ## 6. The same in one call: `kerasft.recipes.progressive_fine_tuning`
#
# The recipe composes the steps above: it resolves the strategy and the precision, scales the
# batch and the learning rate, builds everything inside the scope, trains the head, then opens
# the top groups progressively, and writes `metrics.json`, `history.csv`, `model.keras` and
# plots into `output_dir` (from the chief only). The same options exist as a command:
# `kerasft progressive-fine-tuning --help`. `strategy` takes a name (`"auto"`, as in a script
# on a TPU VM) or, as here, the strategy object already made: one process should create one
# strategy, since TensorFlow's collective ops do not expect two multi-device strategies to
# train side by side.

# %%
import kerasft.recipes

result = kerasft.recipes.progressive_fine_tuning(
    train=(images[:split], labels[:split]),
    validation=(images[split:], labels[split:]),
    backbone="mobilenetv2",
    weights=weights or "none",
    image_size=IMAGE_SIZE,
    epochs=3 if SMOKE else EPOCHS,
    head_epochs=1,
    unfreeze_groups=4,
    batch_size=PER_REPLICA_BATCH,
    learning_rate=BASE_LEARNING_RATE,
    lr_scaling="sqrt",
    layer_decay=0.8,
    augment={"rotation_range": 10, "width_shift_range": 0.1, "height_shift_range": 0.1},
    strategy=strategy,  # the one made above; in a script, strategy="auto"
    precision="auto",
    output_dir="runs/04_recipe",
    overwrite=True,
    verbose=2,
)
print({name: round(value, 3) for name, value in result.metrics.items() if "/" not in name})
print(sorted(os.listdir(result.output_dir)))
