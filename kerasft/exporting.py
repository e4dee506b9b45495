"""`kerasft.export`: a trained model or run folder as a SavedModel or TFLite.

Image models keep their preprocessing inside (`build_model` puts it
there), so the export takes raw pixels, `[0, 255]`, at any batch size and
returns what the model returns: probabilities for classification heads.
The SavedModel has endpoints `serve` (float32 pixels, also
`serving_default`), `serve_uint8` (uint8 pixels) and `class_names` (no
arguments, a string tensor); the class names are also written as
`assets.extra/labels.json`. A TFLite file takes float32 pixels; its class
names go next to it (`model.tflite` -> `model.labels.json`).

Video models take clips the same way (`(batch, frames, h, w, 3)` pixels,
`serve` and `serve_uint8`). Detection and segmentation models return what
`model.predict` returns: a dict of `bbox_regression` and `classification`
(one box per image), raw RetinaNet `bbox_regression` deltas and
`cls_logits` per anchor (decode them with the head's `decode`, as `kerasft
predict` does), or per-pixel logits.

Text models: the SavedModel of a text run folder (or with `preprocessor=`)
has `serve_text`, taking strings (the KerasHub WordPiece preprocessor runs
inside, as `tensorflow_text` ops: `import tensorflow_text` before loading
it), besides `serve`, taking the token ids the model was trained on
(`token_ids`, `padding_mask`, `segment_ids`, as `kerasft.data.tokenize`
makes them). Text classification and token classification take `texts`;
question answering takes `questions` and `contexts` (one window each, no
`doc_stride`) and returns `start_logits` and `end_logits`. TFLite has no
kernels for those ops, so a TFLite text model takes token ids (see
`docs/deploy.md`).

Seq2seq, causal LM and image captioning runs decode token by token and
have no one-call serving signature: exporting their run folder is refused,
naming `kerasft generate` / `kerasft predict` instead.

The graph work is Keras's (`keras.export.ExportArchive`) and TensorFlow's
(`tf.lite.TFLiteConverter`); this module picks signatures and converter
settings.
"""

import json
import os
import shutil

FORMATS = ("saved_model", "tflite")
QUANTIZATIONS = (None, "float16", "dynamic", "int8")
# Examples the int8 calibration reads from `representative_data`.
CALIBRATION_EXAMPLES = 200


def export(
    model_or_run_dir,
    path,
    format="saved_model",
    quantize=None,
    representative_data=None,
    class_names=None,
    preprocessor=None,
):
    """Exports a model (or a finished run folder's model) for serving.

    Args:
        model_or_run_dir: a `keras.Model`, or a recipe run folder (its
            `model.keras` and `labels.json`).
        path: the SavedModel folder, or the `.tflite` file, to write.
        format: `"saved_model"` or `"tflite"`. Defaults to
            `"saved_model"`.
        quantize: TFLite only: `None` (float32), `"float16"` (float16
            weights), `"dynamic"` (int8 weights, float activations) or
            `"int8"` (int8 weights and activations, calibrated on
            `representative_data`; float32 input and output). Defaults to
            `None`.
        representative_data: for `quantize="int8"`: inputs the model sees
            in use (an array, a batched `tf.data.Dataset` of inputs or of
            `(inputs, labels)`); the first 200 examples calibrate.
            Defaults to `None`.
        class_names: class names to store with the export. Defaults to
            `None`: a run folder's `labels.json`.
        preprocessor: SavedModel of a text model: a KerasHub text
            preprocessor (`backbone.tokenizer`) to put inside a `serve_text`
            endpoint taking strings. Defaults to `None`: a text run
            folder's own (from its `config.json` backbone).

    Returns:
        `path`.

    Example:
    ```python
    kerasft.export("runs/flowers", "exports/flowers.tflite", format="tflite")
    ```
    """
    _check_arguments(format, quantize, representative_data)
    model, class_names, run_config = _resolve_model(model_or_run_dir, class_names)
    path = os.fspath(path)
    if format == "saved_model":
        preprocessor = _text_preprocessor(model, run_config, preprocessor)
        _write_saved_model(model, path, class_names, preprocessor)
    else:
        _write_tflite(model, path, class_names, quantize, representative_data)
    return path


def _check_arguments(format, quantize, representative_data):
    if format not in FORMATS:
        raise ValueError(
            f"`format` must be one of {FORMATS}. Received: format={format!r}"
        )
    if quantize not in QUANTIZATIONS:
        raise ValueError(
            f"`quantize` must be one of {QUANTIZATIONS}. "
            f"Received: quantize={quantize!r}"
        )
    if quantize is not None and format != "tflite":
        raise ValueError(
            "`quantize` applies to TFLite files only; a SavedModel keeps the "
            f"model's float weights. Received: format={format!r}, "
            f"quantize={quantize!r}. Use format='tflite'."
        )
    if quantize == "int8" and representative_data is None:
        raise ValueError(
            "`quantize='int8'` needs `representative_data`: a few hundred "
            "inputs like those the model will see (e.g. training images), "
            "to calibrate the activation ranges."
        )


def _resolve_model(model_or_run_dir, class_names):
    import keras

    if isinstance(model_or_run_dir, keras.Model):
        return model_or_run_dir, _names(class_names), {}
    if isinstance(model_or_run_dir, (str, os.PathLike)):
        from kerasft import loading

        directory = loading.check_run_folder(model_or_run_dir)
        refuse_unservable(loading.recipe_of(directory), directory)
        run = loading.load(directory)
        refuse_unservable(run.recipe, directory)
        return run.model, _names(class_names) or run.class_names, run.config
    raise TypeError(
        "`model_or_run_dir` must be a `keras.Model` or a run folder path. "
        f"Received: {type(model_or_run_dir).__name__}"
    )


# Recipes whose runs decode token by token: no one-call serving signature.
_UNSERVABLE = {
    "seq2seq": "generate text with `kerasft generate {dir} PROMPT ...` or "
               "`kerasft predict {dir} PROMPTS.txt`",
    "causal_lm": "generate text with `kerasft generate {dir} PROMPT ...` or "
                 "`kerasft predict {dir} PROMPTS.txt`",
    "image_captioning": "caption images with `kerasft predict {dir} IMAGES`",
}


def refuse_unservable(recipe, directory):
    """Raises a one-line `ValueError` for a run whose model has no serving
    signature (seq2seq, causal LM, captioning: they decode token by token),
    naming the command that serves it instead."""
    if recipe is None:
        return
    from kerasft.recipes import registry

    task = registry.get(recipe).task
    if task in _UNSERVABLE:
        raise ValueError(
            f"`kerasft export` cannot export the {task} run {directory!r}: "
            "its model decodes token by token and has no serving signature; "
            + _UNSERVABLE[task].format(dir=directory) + "."
        )


def _names(class_names):
    return None if class_names is None else [str(n) for n in class_names]


# === Recipes' `export` option ===

# Where a recipe run's exports go, next to its model.keras.
RUN_EXPORTS = {"saved_model": "model_saved_model", "tflite": "model.tflite"}


def export_formats(value):
    """A recipe's `export` option as a tuple of formats (TensorFlow-free).

    Accepts `None`, a format, a comma-separated string
    (`"saved_model,tflite"`, as the command line gives it) or a list.
    """
    if value is None or (
        isinstance(value, str) and value.strip().lower() in ("", "none")
    ):
        return ()
    formats = value
    if isinstance(value, str):
        formats = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(formats, (list, tuple)) or any(
        f not in FORMATS for f in formats
    ):
        raise ValueError(
            f"`export` must list formats from {FORMATS}, e.g. "
            f"['saved_model', 'tflite']. Received: export={value!r}"
        )
    return tuple(dict.fromkeys(formats))


def export_run(directory, model, formats, class_names=None):
    """Exports `model` next to a run's `model.keras`; returns `{format: path}`.

    float32 only: quantized TFLite files need calibration data, so they are
    made afterwards with `kerasft export RUN_DIR --quantize ...`.
    """
    paths = {}
    for format in export_formats(formats):
        path = os.path.join(directory, RUN_EXPORTS[format])
        export(model, path, format=format, class_names=class_names)
        paths[format] = path
    return paths


# === Signatures ===


def input_specs(model):
    """`tf.TensorSpec`s of the model's inputs (batch size left free).

    A single input gives one spec; a dict of inputs gives a dict of specs
    keyed by input name.
    """
    import tensorflow as tf

    def spec(tensor, name=None):
        shape = [None] + list(tensor.shape[1:])
        return tf.TensorSpec(shape, tensor.dtype, name=name or tensor.name)

    inputs = model.inputs
    if len(inputs) == 1:
        return spec(inputs[0], "inputs")
    if isinstance(model.input, dict):
        return {k: spec(t, k) for k, t in model.input.items()}
    raise ValueError(
        f"Cannot export {model.name!r}: it has {len(inputs)} positional "
        "inputs; kerasft exports models with one input or a dict of inputs."
    )


def _is_image_spec(spec):
    import tensorflow as tf

    return (  # images (batch, h, w, c) or clips (batch, frames, h, w, c)
        isinstance(spec, tf.TensorSpec)
        and spec.shape.rank in (4, 5)
        and spec.dtype.is_floating
    )


def _serving_functions(model):
    """`{endpoint: (tf.function, input_signature)}` for the model."""
    import tensorflow as tf

    spec = input_specs(model)
    if isinstance(spec, tf.TensorSpec) and spec.dtype == tf.string:
        raise ValueError(
            f"Cannot export {model.name!r}: its input is a string tensor."
        )

    def call(inputs):
        return model(inputs, training=False)

    if not _is_image_spec(spec):
        fn = tf.function(lambda inputs: call(inputs))
        return {"serve": (fn, [spec])}
    pixels = tf.TensorSpec(spec.shape, tf.float32, name="images")
    uint8 = tf.TensorSpec(spec.shape, tf.uint8, name="images")
    serve = tf.function(lambda images: call(tf.cast(images, spec.dtype)))
    serve_uint8 = tf.function(lambda images: call(tf.cast(images, spec.dtype)))
    return {"serve": (serve, [pixels]), "serve_uint8": (serve_uint8, [uint8])}


# === SavedModel ===


def _text_preprocessor(model, run_config, preprocessor):
    """The KerasHub preprocessor for a `serve_text` endpoint, or `None`."""
    if not isinstance(model.input, dict) or "token_ids" not in model.input:
        return None
    length = model.input["token_ids"].shape[1] or run_config.get("max_length")
    from kerasft.data import text as text_data

    if preprocessor is not None:
        return text_data._preprocessor(preprocessor, length)
    source = run_config.get("backbone")
    if not isinstance(source, str):
        return None
    from kerasft import backbones

    return text_data._preprocessor(
        backbones.bert(source, sequence_length=length).tokenizer, length
    )


def _write_saved_model(model, path, class_names, preprocessor=None):
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    archive.track(model)
    if preprocessor is not None:
        # Strings in (first endpoint, so also `serving_default`): the
        # WordPiece tokenizer runs inside, as `tensorflow_text` ops.
        if not preprocessor.built:
            preprocessor(tf.constant(["built"]))  # ExportArchive tracks built layers
        archive.track(preprocessor)
        strings = lambda name: tf.TensorSpec([None], tf.string, name=name)  # noqa: E731
        if _takes_pairs(model):  # QA: [CLS] question [SEP] context [SEP]
            # `x=`: a bare 2-tuple would read as KerasHub's (x, y).
            serve_text = tf.function(lambda questions, contexts: model(
                preprocessor(x=(questions, contexts)), training=False))
            signature = [strings("questions"), strings("contexts")]
        else:
            serve_text = tf.function(
                lambda texts: model(preprocessor(texts), training=False)
            )
            signature = [strings("texts")]
        archive.add_endpoint("serve_text", serve_text, input_signature=signature)
    for name, (fn, signature) in _serving_functions(model).items():
        archive.add_endpoint(name, fn, input_signature=signature)
    names = tf.constant(class_names or [], tf.string)
    archive.add_endpoint(
        "class_names", tf.function(lambda: names), input_signature=[]
    )
    tmp = path.rstrip("/\\") + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    archive.write_out(tmp, verbose=False)
    if class_names is not None:
        extra = os.path.join(tmp, "assets.extra")
        os.makedirs(extra, exist_ok=True)
        with open(os.path.join(extra, "labels.json"), "w") as f:
            json.dump(class_names, f)
    shutil.rmtree(path, ignore_errors=True)
    os.replace(tmp, path)


def _takes_pairs(model):
    """Whether a text model reads (question, context) pairs: a QA head's
    `start_logits`/`end_logits` outputs."""
    return isinstance(model.output, dict) and "start_logits" in model.output


# === TFLite ===


def labels_path(tflite_path):
    """Where the class names of a TFLite file go: `x.tflite` -> `x.labels.json`."""
    root, _ = os.path.splitext(os.fspath(tflite_path))
    return root + ".labels.json"


def _write_tflite(model, path, class_names, quantize, representative_data):
    import tempfile

    import tensorflow as tf

    with tempfile.TemporaryDirectory() as tmp:
        saved = os.path.join(tmp, "saved_model")
        _write_saved_model(model, saved, None)
        converter = tf.lite.TFLiteConverter.from_saved_model(
            saved, signature_keys=["serve"]
        )
        _configure(converter, model, quantize, representative_data)
        try:
            flatbuffer = converter.convert()
        except Exception as e:  # the converter raises ConverterError & co.
            reason = str(e).strip().splitlines()
            raise ValueError(
                f"{model.name!r} cannot be exported to TFLite"
                f"{f' with quantize={quantize!r}' if quantize else ''}: "
                f"{reason[0] if reason else type(e).__name__}. The "
                "SavedModel format has no such limit."
            ) from e
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    with open(path + ".tmp", "wb") as f:
        f.write(flatbuffer)
    os.replace(path + ".tmp", path)
    if class_names is not None:
        with open(labels_path(path), "w") as f:
            json.dump(class_names, f)


def _configure(converter, model, quantize, representative_data):
    import tensorflow as tf

    if quantize is None:
        return
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "int8":
        converter.representative_dataset = _calibration(
            representative_data, input_specs(model)
        )
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS_INT8
        ]


def _calibration(data, spec):
    """A representative-dataset generator: single examples as float32."""
    import numpy as np
    import tensorflow as tf

    if isinstance(data, tf.data.Dataset):
        def examples():
            for batch in data:
                if isinstance(batch, tuple):
                    batch = batch[0]
                for item in _unbatch(batch):
                    yield item
    else:
        def examples():
            yield from _unbatch(data)

    def as_input(example):
        if isinstance(example, dict):
            return {k: example[k][None].astype(spec[k].dtype.as_numpy_dtype)
                    for k in spec}
        return [np.asarray(example, np.float32)[None]]

    def generator():
        for i, example in enumerate(examples()):
            if i >= CALIBRATION_EXAMPLES:
                return
            yield as_input(example)

    return generator


def _unbatch(batch):
    import numpy as np

    if isinstance(batch, dict):
        arrays = {k: np.asarray(v) for k, v in batch.items()}
        n = len(next(iter(arrays.values())))
        for i in range(n):
            yield {k: v[i] for k, v in arrays.items()}
        return
    for item in np.asarray(batch):
        yield item
