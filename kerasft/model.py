"""`build_model`: raw inputs -> preprocessing -> nested backbone -> head."""

import keras

from kerasft import _grouping
from kerasft.freezing import freeze_batchnorm


def build_model(backbone, head, name=None, remat=False, train_batchnorm=False):
    """Builds the fine-tuning model: backbone nested as one layer, then a head.

    Images: `Input(name="image")` on raw pixels (the backbone's
    `input_range`, usually [0, 255]) -> `kerasft.layers.Preprocess(mode)`
    (once, only when `backbone.preprocess_mode` is not `None`/`"none"`) ->
    `backbone.model(x, training=False)` -> `head(features)`. Text: fresh
    inputs mirroring the backbone's input dict -> backbone -> head.

    The backbone stays one nested layer named `backbone.name`
    (`model.get_layer(backbone.name)`); head layers are ordinary layers of
    the outer model named with the head's prefix. The model is not compiled.

    BatchNorm: the backbone is called with `training=False`, but during
    `fit` Keras still passes `training=True` into a nested model
    (keras#20285), so a trainable BatchNorm would normalize with batch
    statistics and move its moving mean and variance. `build_model`
    therefore makes every BatchNormalization layer of the backbone
    non-trainable (inference mode, statistics fixed), so compiling and
    fitting straight away, without `kerasft.freeze`, is safe; `freeze` and
    `ProgressiveUnfreeze` keep them so. This also makes the step cheaper
    (measured: bf16 ResNet50 1.45x -> 1.8x the float32 tutorial step).

    Video: a head with a `frames` attribute (`kerasft.heads.
    video_classification`) makes the input clips `Input(name="video")`
    `[batch, frames, h, w, c]`; the frames are folded into the batch before
    the preprocessing and the backbone and unfolded after it, so the head
    receives per-frame features `[batch, frames, ...]`.

    Every variable's group (`"head"` or a backbone group) is recorded for
    `kerasft.optimizers.LayerwiseLR`.

    Args:
        backbone: a `kerasft.backbones.Backbone`.
        head: a `kerasft.heads.Head`, or any callable mapping backbone
            features to outputs.
        name: model name. Defaults to `f"{backbone.name}_{head.name}"`.
        remat: gradient checkpointing. When `True`, each backbone group
            recomputes its activations in the backward pass
            (`kerasft.remat.rematerialize`): less peak memory for more step
            time. Defaults to `False`.
        train_batchnorm: leave the backbone's BatchNorm layers trainable,
            so that they use batch statistics during `fit` and update their
            moving statistics (training from scratch, or large batches of a
            new domain). Defaults to `False`.

    Returns:
        An uncompiled `keras.Model`.

    Example:
    ```python
    backbone = kerasft.backbones.get("mobilenetv2", input_shape=(32, 32, 3))
    head = kerasft.heads.classification(10)
    model = kerasft.build_model(backbone, head)
    model.compile(optimizer="adam", **head.compile_kwargs())
    ```
    """
    if not callable(head):
        raise TypeError(
            "`head` must be a kerasft.heads.Head or a callable mapping "
            f"features to outputs. Received: head={head!r}"
        )
    if not isinstance(train_batchnorm, bool):
        raise TypeError(
            "`train_batchnorm` must be a bool. Received: "
            f"train_batchnorm={train_batchnorm!r}"
        )
    if backbone.task in ("causal_lm", "seq2seq"):
        raise ValueError(
            f"`build_model` takes image and text encoder backbones; "
            f"{backbone.name!r} is a {backbone.task} model, which keeps its "
            "own language-model head. Fine-tune its KerasHub task directly "
            "(`kerasft.recipes.seq2seq` / `causal_lm`, or `model.fit` with "
            "`kerasft.freeze(task, backbone, ...)`). Received: "
            f"backbone.task={backbone.task!r}"
        )
    if name is None:
        name = f"{backbone.name}_{getattr(head, 'name', 'head')}"
    # Video heads declare `frames`: clips in, the backbone runs per frame.
    frames = getattr(head, "frames", None) if backbone.task != "text" else None
    if backbone.task == "text":
        inputs = keras.tree.map_structure(_mirror_input, backbone.model.input)
        x = inputs
    elif frames:
        from kerasft.heads.video_classification import (
            FramesFromBatch,
            FramesToBatch,
        )

        inputs = keras.Input(
            shape=(frames, *backbone.model.input_shape[1:]), name="video"
        )
        x = FramesToBatch(name="frames_to_batch")(inputs)
    else:
        inputs = keras.Input(
            shape=tuple(backbone.model.input_shape[1:]), name="image"
        )
        x = inputs
    if backbone.task != "text":
        if backbone.preprocess_mode not in (None, "none"):
            # Imported here: kerasft.layers must not be needed to import
            # this module.
            from kerasft.layers import Preprocess

            x = Preprocess(backbone.preprocess_mode)(x)
    if remat:
        from kerasft.remat import rematerialize

        nested = rematerialize(backbone)
    else:
        nested = backbone.model
    features = nested(x, training=False)
    if frames:
        features = FramesFromBatch(frames, name="batch_to_frames")(
            features
        )
    if (
        isinstance(features, dict)
        and isinstance(inputs, dict)
        and "padding_mask" in inputs
    ):
        # Heads that score tokens (question answering) mask padding inside
        # the model; pooled heads ignore the extra key.
        features = {**features, "padding_mask": inputs["padding_mask"]}
    outputs = head(features)
    model = keras.Model(inputs, outputs, name=name)
    if not train_batchnorm:
        freeze_batchnorm(backbone.model)
    _grouping.tag_model(model, backbone)
    return model


def _mirror_input(tensor):
    return keras.Input(
        shape=tuple(tensor.shape[1:]),
        dtype=tensor.dtype,
        name=getattr(tensor, "name", None),
    )
