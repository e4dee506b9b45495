"""Every private Keras, TensorFlow and KerasHub access kerasft makes.

kerasft needs a few internals that have no public route. Each one lives
here as one small function that names the versions it was checked on, so
an upgrade breaks in one place, loudly: when an internal is missing, the
function raises `KerasInternalError` naming the kerasft feature and the
installed versions. Nothing falls back silently.

Checked on: Keras 3.15.1, TensorFlow 2.21.0, KerasHub 0.32.
"""

import contextlib

import keras


class KerasInternalError(RuntimeError):
    """A Keras/TensorFlow/KerasHub internal kerasft relies on is missing."""


def installed_versions():
    """`"Keras X, TensorFlow Y, KerasHub Z"` as installed."""
    parts = [f"Keras {keras.__version__}"]
    try:
        import tensorflow as tf

        parts.append(f"TensorFlow {tf.__version__}")
    except ImportError:  # pragma: no cover - TensorFlow is a dependency
        pass
    try:
        import keras_hub

        parts.append(f"KerasHub {keras_hub.__version__}")
    except ImportError:
        pass
    return ", ".join(parts)


def missing(feature, internal, checked_on, error=None):
    """A `KerasInternalError` for `feature`, which needs `internal`."""
    return KerasInternalError(
        f"{feature} needs the internal `{internal}` (checked on "
        f"{checked_on}), which this installation lacks ({installed_versions()}). "
        "Install a tested version (see setup.cfg) or report this at kerasft."
        + (f" Cause: {error!r}" if error is not None else "")
    )


# === Optimizers ===

# Every access below was checked on Keras 3.15.1 with TensorFlow 2.21.0, whose
# `BaseOptimizer.apply` runs: drop `None` gradients, unscale, then
# `_backend_apply_gradients` (clipping, `self._apply_weight_decay(vars)`,
# `self._backend_update_step(grads, vars, lr)`, which holds per-step state
# such as Nadam's `_u_product` and calls `self.update_step(g, v, lr)` once
# per variable, on TF inside `distribution.extended.update`; then EMA), then
# constraints and `iterations += 1`.
_OPTIMIZERS_CHECKED = "Keras 3.15.1, TensorFlow 2.21.0"
_WRAPPERS = "kerasft's optimizer wrappers"


def optimizer_variable_key(optimizer, variable):
    """The key `optimizer` indexes `variable` by (`Optimizer._var_key`).

    The same for a `keras.Variable`, its `tf.Variable` and, under
    `tf.distribute`, each replica's component. Checked on Keras 3.15.1.
    """
    try:
        var_key = optimizer._var_key
    except AttributeError as error:
        raise missing(
            _WRAPPERS, "Optimizer._var_key", _OPTIMIZERS_CHECKED, error
        ) from None
    return var_key(variable)


def optimizer_built_keys(optimizer):
    """The keys (`optimizer_variable_key`) of the variables a built Keras
    optimizer was built for (`Optimizer._trainable_variables_indices`).
    Checked on Keras 3.15.1."""
    try:
        return set(optimizer._trainable_variables_indices)
    except AttributeError as error:
        raise missing(
            "ProgressiveUnfreeze (does the optimizer know every variable?)",
            "Optimizer._trainable_variables_indices",
            _OPTIMIZERS_CHECKED,
            error,
        ) from None


def optimizer_uses_weight_decay(optimizer, variable):
    """Whether `optimizer` decays `variable`: its `weight_decay` is set and
    `exclude_from_weight_decay` did not exclude it
    (`Optimizer._use_weight_decay`). Checked on Keras 3.15.1."""
    if optimizer.weight_decay is None:
        return False
    try:
        use_weight_decay = optimizer._use_weight_decay
    except AttributeError as error:
        raise missing(
            "LayerwiseLR (weight decay)", "Optimizer._use_weight_decay",
            _OPTIMIZERS_CHECKED, error,
        ) from None
    return use_weight_decay(variable)


def untracked_attributes():
    """Context manager: attributes set inside are not tracked by Keras
    (`keras.src.utils.tracking.DotNotTrackScope`, what Keras's own
    `Optimizer.build` runs under), so lists of model variables do not become
    optimizer variables. Checked on Keras 3.15.1."""
    try:
        from keras.src.utils import tracking

        return tracking.DotNotTrackScope()
    except (ImportError, AttributeError) as error:
        raise missing(
            _WRAPPERS,
            "keras.src.utils.tracking.DotNotTrackScope",
            _OPTIMIZERS_CHECKED,
            error,
        ) from None


def strategy_supports_no_merge_call():
    """Whether the current `tf.distribute` strategy updates variables
    without `merge_call` (`tf.__internal__.distribute.
    strategy_supports_no_merge_call`). Checked on TensorFlow 2.21.0."""
    import tensorflow as tf

    try:
        check = tf.__internal__.distribute.strategy_supports_no_merge_call
    except AttributeError as error:
        raise missing(
            "GradientAccumulator under tf.distribute",
            "tf.__internal__.distribute.strategy_supports_no_merge_call",
            _OPTIMIZERS_CHECKED,
            error,
        ) from None
    return check()


def supports_update_step_hook(optimizer):
    """Whether `update_step_hook` can scale `optimizer`'s steps per variable.

    False for an optimizer class with its own decoupled weight decay pass
    (Keras's `Muon`), which the hook cannot scale. Checked on Keras 3.15.1.
    """
    base = keras.optimizers.Optimizer
    for name in ("_apply_weight_decay", "_backend_update_step", "update_step"):
        if not hasattr(base, name):
            raise missing(
                "LayerwiseLR", f"Optimizer.{name}", _OPTIMIZERS_CHECKED
            )
    return type(optimizer)._apply_weight_decay is base._apply_weight_decay


@contextlib.contextmanager
def update_step_hook(optimizer, update_step):
    """Within the block, `optimizer.apply` runs its own code (clipping,
    per-step state, distribution, EMA, constraints, step counter) except
    that each variable's update calls
    `update_step(original_update_step, gradient, variable, learning_rate)`,
    and the optimizer's decoupled weight decay pass is skipped: the hook
    decays each variable itself, at the rate it chooses.

    The two methods (`update_step`, `_apply_weight_decay`) are replaced on
    the instance for the block only. Installs nest (a `MirroredStrategy`
    runs one block per replica thread, interleaved): the first installs,
    the last out removes. Checked on Keras 3.15.1 (see the section note).
    """
    if not supports_update_step_hook(optimizer):
        raise TypeError(
            f"`{type(optimizer).__name__}` applies its own weight decay, "
            "which kerasft cannot scale per variable."
        )
    state = optimizer.__dict__.get("_kerasft_update_step_hook")
    if state is None:
        original = type(optimizer).update_step.__get__(optimizer)

        def hooked(gradient, variable, learning_rate):
            return update_step(original, gradient, variable, learning_rate)

        state = [0]
        # `object.__setattr__`: not tracked by Keras or TensorFlow.
        object.__setattr__(optimizer, "update_step", hooked)
        object.__setattr__(optimizer, "_apply_weight_decay", _no_weight_decay)
        object.__setattr__(optimizer, "_kerasft_update_step_hook", state)
    state[0] += 1
    try:
        yield
    finally:
        state[0] -= 1
        if state[0] == 0:
            for name in (
                "update_step",
                "_apply_weight_decay",
                "_kerasft_update_step_hook",
            ):
                object.__delattr__(optimizer, name)


def _no_weight_decay(variables):
    del variables  # Decayed per variable by the `update_step_hook` hook.


# === Layers and models ===

_LAYERS_CHECKED = "Keras 3.15.1"


def sublayers(layer):
    """The layers `layer` tracks directly, nested models included.

    `keras.Model.layers` is public but a plain `keras.layers.Layer` holding
    sublayers (KerasHub blocks, user layers) has no public list, and a
    BatchNormalization inside one must still be frozen.
    """
    try:
        flatten = layer._flatten_layers
    except AttributeError as error:
        raise missing(
            "Freezing (BatchNorm inside nested layers)",
            "keras.layers.Layer._flatten_layers",
            _LAYERS_CHECKED,
            error,
        ) from None
    return list(flatten(include_self=False, recursive=False))


def is_functional(model):
    """Whether `model` is a functional `keras.Model` (graph of layer calls)."""
    try:
        from keras.src.models.functional import Functional
    except ImportError as error:
        raise missing(
            "Gradient checkpointing (kerasft.remat)",
            "keras.src.models.functional.Functional",
            _LAYERS_CHECKED,
            error,
        ) from None
    return isinstance(model, Functional)


def functional_nodes_by_depth(model):
    """`{depth: [Node, ...]}` of a functional model (0 = the outputs).

    Each Node exposes `operation`, `input_tensors`, `outputs` and
    `is_input`; `node_call_arguments` replays its call.
    """
    try:
        return model._nodes_by_depth
    except AttributeError as error:
        raise missing(
            "Gradient checkpointing (kerasft.remat)",
            "Functional._nodes_by_depth",
            _LAYERS_CHECKED,
            error,
        ) from None


def node_call_arguments(node, values):
    """`(args, kwargs)` of `node`'s call with its input tensors replaced
    through `values` (`{id(tensor): replacement}`)."""
    try:
        fill_in = node.arguments.fill_in
    except AttributeError as error:
        raise missing(
            "Gradient checkpointing (kerasft.remat)",
            "Node.arguments.fill_in",
            _LAYERS_CHECKED,
            error,
        ) from None
    return fill_in(values)


def keep_input_dtype(layer):
    """Makes `layer.__call__` pass its inputs through as given: no cast to
    the compute dtype (raw pixels stay float32 under a mixed policy) and
    non-tensor positional arguments allowed. Call it in `__init__`, after
    `super().__init__`; Keras's own preprocessing layers set the same two
    flags."""
    for flag in ("_convert_input_args", "_allow_non_tensor_positional_args"):
        if not hasattr(layer, flag):
            raise missing(
                "Float32 preprocessing and augmentation layers",
                f"keras.layers.Layer.{flag}",
                _LAYERS_CHECKED,
            )
    layer._convert_input_args = False
    layer._allow_non_tensor_positional_args = True


def all_layers(layer):
    """`layer` and every layer it tracks, recursively (nested models and
    custom layers included), each once."""
    try:
        flatten = layer._flatten_layers
    except AttributeError as error:
        raise missing(
            "Walking every nested layer (resume, freezing)",
            "keras.layers.Layer._flatten_layers",
            _LAYERS_CHECKED,
            error,
        ) from None
    return list(flatten(include_self=True, recursive=True))


def seed_generators(layer):
    """The `keras.random.SeedGenerator`s `layer` itself owns (dropout and
    random layers), whose states a checkpoint must keep for exact resume."""
    try:
        return list(layer._seed_generators)
    except AttributeError as error:
        raise missing(
            "Exact resume (random layer states)",
            "keras.layers.Layer._seed_generators",
            _LAYERS_CHECKED,
            error,
        ) from None


# === Distribution and training ===

_TRAINING_CHECKED = "Keras 3.15.1, TensorFlow 2.21.0"


def symbolic_build(model, data_batch):
    """Creates the variables of a compiled `model` (layers, metrics, loss,
    optimizer) from one batch, as `fit` would."""
    try:
        build = model._symbolic_build
    except AttributeError as error:
        raise missing(
            "Multi-worker training", "Trainer._symbolic_build",
            _TRAINING_CHECKED, error,
        ) from None
    build(data_batch=data_batch)


@contextlib.contextmanager
def fit_without_symbolic_build(model):
    """Inside, `model.fit`/`evaluate` skip Keras's build from the first
    distributed batch (call `symbolic_build` first). The model's own
    method is back on exit."""
    if not hasattr(model, "_maybe_symbolic_build"):
        raise missing(
            "Multi-worker training", "TensorFlowTrainer._maybe_symbolic_build",
            _TRAINING_CHECKED,
        )
    own = vars(model).get("_maybe_symbolic_build")
    # An instance attribute shadows the method for this model only.
    object.__setattr__(
        model, "_maybe_symbolic_build", lambda iterator=None, data_batch=None: None
    )
    try:
        yield
    finally:
        if own is None:
            object.__delattr__(model, "_maybe_symbolic_build")
        else:
            object.__setattr__(model, "_maybe_symbolic_build", own)


@contextlib.contextmanager
def replaced_reduce_per_replica(make_replacement):
    """Inside, Keras's TensorFlow trainer reduces per-replica step outputs
    with `make_replacement(original)`; the original is back on exit.

    The trainer looks the function up when it traces a train/test function,
    so functions traced inside keep the replacement.
    """
    try:
        from keras.src.backend.tensorflow import trainer

        original = trainer.reduce_per_replica
    except (ImportError, AttributeError) as error:
        raise missing(
            "Multi-worker training",
            "keras.src.backend.tensorflow.trainer.reduce_per_replica",
            _TRAINING_CHECKED, error,
        ) from None
    trainer.reduce_per_replica = make_replacement(original)
    try:
        yield
    finally:
        trainer.reduce_per_replica = original


def set_initial_epoch(model, epoch):
    """Makes the `fit` in progress continue at `epoch` (0-based): Keras
    3.15 `fit` reads `model._initial_epoch` after `on_train_begin`, as
    Keras's own `BackupAndRestore` sets it; no public route exists."""
    if not hasattr(model, "_initial_epoch"):
        raise missing(
            "Resuming inside fit", "Trainer._initial_epoch", _TRAINING_CHECKED
        )
    model._initial_epoch = epoch


# === KerasHub ===

_HUB_CHECKED = "KerasHub 0.32"


def _preset_utils(feature):
    try:
        from keras_hub.src.utils import preset_utils
    except ImportError as error:
        raise missing(
            feature, "keras_hub.src.utils.preset_utils", _HUB_CHECKED, error
        ) from None
    return preset_utils


def _preset_call(feature, name, *args):
    utils = _preset_utils(feature)
    try:
        function = getattr(utils, name)
    except AttributeError as error:
        raise missing(
            feature, f"keras_hub.src.utils.preset_utils.{name}", _HUB_CHECKED,
            error,
        ) from None
    return function(*args)


def preset_load_json(preset, file_name, feature="Loading a KerasHub preset"):
    """The JSON file `file_name` of a preset (local folder, `hf://`, Kaggle)."""
    return _preset_call(feature, "load_json", preset, file_name)


def preset_file_exists(preset, file_name, feature="Loading a KerasHub preset"):
    """Whether the preset holds `file_name`."""
    return _preset_call(feature, "check_file_exists", preset, file_name)


def preset_get_file(preset, file_name, feature="Loading a KerasHub preset"):
    """A local path to the preset's `file_name` (downloaded if remote)."""
    return _preset_call(feature, "get_file", preset, file_name)


# === KerasHub RetinaNet parts (not exported by keras_hub) ===

_RETINANET_CHECKED = "KerasHub 0.32.0, Keras 3.15.1"
_RETINANET = "kerasft's RetinaNet head (kerasft.heads.retinanet)"


def _retinanet_class(module, name):
    try:
        imported = __import__(
            f"keras_hub.src.models.retinanet.{module}", fromlist=[name]
        )
        return getattr(imported, name)
    except (ImportError, AttributeError) as error:
        raise missing(
            _RETINANET, f"keras_hub.src.models.retinanet.{module}.{name}",
            _RETINANET_CHECKED, error,
        ) from None


def retinanet_feature_pyramid_class():
    """KerasHub's `FeaturePyramid` layer (FPN over `{"P3": ..., ...}`).
    Checked on KerasHub 0.32.0 with Keras 3.15.1."""
    return _retinanet_class("feature_pyramid", "FeaturePyramid")


def retinanet_prediction_head_class():
    """KerasHub's RetinaNet `PredictionHead` layer (conv tower + logits).
    Checked on KerasHub 0.32.0 with Keras 3.15.1."""
    return _retinanet_class("prediction_head", "PredictionHead")


def retinanet_label_encoder_class():
    """KerasHub's `RetinaNetLabelEncoder` (anchor matching + box deltas).
    Checked on KerasHub 0.32.0 with Keras 3.15.1."""
    return _retinanet_class("retinanet_label_encoder", "RetinaNetLabelEncoder")


# === Variable paths and LoRA (kerasft.backbones.keras_hub, .lora) ===

_LORA_CHECKED = "Keras 3.15.1, KerasHub 0.32.0"


def set_variable_path(variable, path):
    """Sets `variable.path` (`keras.Variable._path`; the property is
    read-only). KerasHub's T5 creates its relative attention bias outside
    its layer's name scope, so the encoder's and the decoder's both read
    `self_attention/embeddings`; group regexes need them apart. Checked on
    Keras 3.15.1 (the path is only read for display, optimizer slot names
    and kerasft's grouping; saving goes by position)."""
    if not hasattr(variable, "_path"):
        raise missing(
            "kerasft.backbones.from_keras_hub (variable paths)",
            "keras.Variable._path",
            _LORA_CHECKED,
        )
    variable._path = path


def lora_base_kernel(layer):
    """The kernel variable of a LoRA-enabled `Dense`/`EinsumDense` without
    its adapters (`layer._kernel`; the `kernel` property adds
    `lora_alpha / lora_rank * lora_kernel_a @ lora_kernel_b` and casts to
    the compute dtype). Checked on Keras 3.15.1."""
    try:
        return layer._kernel
    except AttributeError as error:
        raise missing(
            "kerasft.backbones.merge_lora",
            f"{type(layer).__name__}._kernel",
            _LORA_CHECKED,
            error,
        ) from None


def forget_lora_layers(hub_backbone):
    """Clears a KerasHub `Backbone`'s record of its LoRA layers
    (`_lora_enabled_layers`, set by `Backbone.enable_lora` and read by its
    `save_lora_weights`) once the adapters are merged away. Checked on
    KerasHub 0.32.0."""
    if hasattr(hub_backbone, "_lora_enabled_layers"):
        hub_backbone._lora_enabled_layers = []


# === Saving: kerasft's objects found by any `load_model` ===

_SAVING_CHECKED = "Keras 3.15.1"


class _RegisteringOnLookup(dict):
    """Keras's global custom-object table, which imports kerasft's
    registering modules the first time Keras looks up a `kerasft>` name
    that is not registered yet. Keras reads the table by membership and
    item access (`get_registered_object`), so any `load_model` in a process
    that imported kerasft finds kerasft's layers, whatever the import order,
    and importing kerasft never imports its layers early."""

    def __init__(self, objects, prefix, register):
        super().__init__(objects)
        self._prefix = prefix
        self._register = register
        self._registered = False

    def _before_lookup(self, key):
        if (
            not self._registered
            and isinstance(key, str)
            and key.startswith(self._prefix)
            and not dict.__contains__(self, key)
        ):
            self._registered = True
            self._register()

    def __contains__(self, key):
        self._before_lookup(key)
        return super().__contains__(key)

    def __getitem__(self, key):
        self._before_lookup(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self._before_lookup(key)
        return super().get(key, default)


def register_on_lookup(prefix, register):
    """Makes Keras call `register()` (once) when it first looks up a
    registered name starting with `prefix` that is not registered yet.

    Replaces `keras.src.saving.object_registration.GLOBAL_CUSTOM_OBJECTS`
    (the dict `keras.saving.get_custom_objects()` returns and
    `register_keras_serializable` writes) with a dict subclass holding the
    same entries. Checked on Keras 3.15.1, whose `get_registered_object`
    tests `name in GLOBAL_CUSTOM_OBJECTS` through the module attribute.
    """
    import importlib

    feature = "Loading kerasft models without importing their modules first"
    try:
        registration = importlib.import_module(
            "keras.src.saving.object_registration"
        )
        table = registration.GLOBAL_CUSTOM_OBJECTS
    except (ImportError, AttributeError) as e:
        raise missing(
            feature, "keras.src.saving.object_registration.GLOBAL_CUSTOM_OBJECTS",
            _SAVING_CHECKED, e,
        ) from e
    if not isinstance(table, dict):
        raise missing(feature, "GLOBAL_CUSTOM_OBJECTS as a dict", _SAVING_CHECKED)
    if isinstance(table, _RegisteringOnLookup):
        return
    registration.GLOBAL_CUSTOM_OBJECTS = _RegisteringOnLookup(
        table, prefix, register
    )


def parent_store_values(store):
    """The arrays Keras saved one level above `store` in the same weights
    file (e.g. `optimizer` for `optimizer/inner_optimizer`), or `None`.

    `keras.Model.save`/`load_weights` hand `load_own_variables` only the
    entry of its own path. An optimizer wrapped by `LossScaleOptimizer`
    under `mixed_float16`, loading a file saved without it, finds its whole
    state one level up. Reads `keras.src.saving.saving_lib.H5IOStore`'s
    `h5_file` and `_h5_entry_path` (checked on Keras 3.15.1); other stores
    (sharded, npz) give `None`.
    """
    import numpy as np

    path = getattr(store, "_h5_entry_path", None)
    h5_file = getattr(store, "h5_file", None)
    if not path or h5_file is None or "/" not in path:
        return None
    parent = path.rsplit("/", 1)[0]
    try:
        group = h5_file[parent]["vars"]
        return [np.asarray(group[str(i)]) for i in range(len(group))]
    except (KeyError, TypeError, ValueError):
        return None


# === KerasHub WordPiece ===


def wordpiece_set_max_bytes(tokenizer, max_bytes):
    """Rebuilds a KerasHub `WordPieceTokenizer`'s `tf_text` WordPiece
    (`_fast_word_piece`) with `max_bytes_per_word=max_bytes` (KerasHub
    fixes 100 bytes; Hugging Face counts 100 characters). Checked on
    KerasHub 0.32 with tensorflow-text 2.21."""
    import tensorflow_text as tf_text

    feature = "kerasft's Hugging Face WordPiece tokenizer"
    if not hasattr(tokenizer, "_fast_word_piece"):
        raise missing(feature, "WordPieceTokenizer._fast_word_piece", "KerasHub 0.32")
    tokenizer._fast_word_piece = tf_text.FastWordpieceTokenizer(
        vocab=tokenizer.vocabulary,
        token_out_type=tokenizer.compute_dtype,
        suffix_indicator=tokenizer.suffix_indicator,
        max_bytes_per_word=max_bytes,
        unknown_token=tokenizer.oov_token,
        no_pretokenization=True,
        support_detokenization=True,
    )


# === KerasHub byte-level BPE merges (kerasft.backbones._byte_level_bpe) ===

_BPE_FEATURE = "kerasft's Hugging Face byte-level BPE tokenizer (TensorFlow graph path)"
_BPE_INTERNALS = (
    "_maybe_initialized_tf", "cache", "_bpe_merge_and_update_cache_tf", "token_to_id_map",
)


def bpe_merge_words(tokenizer, words):
    """KerasHub `BytePairTokenizer`'s TensorFlow BPE merges of pre-split
    words: `(pieces, ids)`, two ragged `[len(words), None]` tensors, the
    merged tokens and their ids (-1 for a piece not in the vocabulary).
    `words` is a 1-D string tensor of raw UTF-8 pieces (no empty ones);
    the special tokens among them, put in the cache at construction, map
    to themselves.

    Does what `BytePairTokenizer._tokenize_tf` does after its own
    splitting: `_maybe_initialized_tf()`, the `cache` lookup, merging the
    unseen words with `_bpe_merge_and_update_cache_tf` and mapping pieces
    with `token_to_id_map` (checked on KerasHub 0.32 with TensorFlow 2.21).
    """
    import tensorflow as tf

    for name in _BPE_INTERNALS:
        if not hasattr(tokenizer, name):
            raise missing(_BPE_FEATURE, f"BytePairTokenizer.{name}", _HUB_CHECKED)
    tokenizer._maybe_initialized_tf()
    cache = tokenizer.cache
    lookup = cache.lookup(words)
    unseen = lookup == ""

    def merge_unseen():
        tokenizer._bpe_merge_and_update_cache_tf(tf.boolean_mask(words, unseen))
        return cache.lookup(words)

    merged = tf.cond(tf.reduce_any(unseen), merge_unseen, lambda: lookup)
    pieces = tf.strings.split(merged, sep=" ")
    return pieces, tokenizer.token_to_id_map.lookup(pieces)
