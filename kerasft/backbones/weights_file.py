"""Loading a local weights file into a backbone, with a clear mismatch error.

Keras reports a file saved from a model with its classification top as an
opaque layer-count error (legacy `.h5`, keras#14321) or, for `.weights.h5`,
silently ignores the extra layers. Here the file's layout is compared with
the model's first, and a mismatch names the file, the counts and the layers.
"""

import os
import tempfile

import h5py

_LEGACY_SUFFIXES = (".h5", ".hdf5")
_TOP_HINT = (
    "The file holds every layer of the model plus more: it looks saved from "
    "a model with its classification top (include_top=True), while kerasft "
    "backbones are built with include_top=False. Save the weights of the "
    "architecture built without its top (`keras.applications.<Model>("
    "include_top=False).save_weights('x.weights.h5')`), or load this file "
    "into the model with its top and pass the model cut below the top to "
    "`kerasft.backbones.from_model`."
)
_ARCHITECTURE_HINT = (
    "The file looks saved from another architecture or variant."
)


def load_weights_file(model, path, backbone_name=None):
    """Loads `path` into `model` after checking that the two match.

    Args:
        model: a built Keras model.
        path: a Keras 3 `.weights.h5` file, or a legacy `.h5`/`.hdf5`
            weights file (the format of the `keras.applications` downloads).
        backbone_name: name used in error messages. Defaults to
            `model.name`.

    Raises:
        ValueError: the file is missing, has an unsupported format, or does
            not match the model (names the file and the mismatch).
    """
    path = os.fspath(path)
    who = backbone_name or model.name
    if not os.path.isfile(path):
        raise ValueError(
            f"Weights file {path!r} for backbone {who!r} does not exist. "
            "`weights` must be None, 'imagenet' or the path of an existing "
            "weights file."
        )
    if path.endswith(".weights.h5"):
        problems = _keras3_mismatch(model, path)
    elif path.endswith(_LEGACY_SUFFIXES):
        problems = _legacy_mismatch(model, path)
    else:
        raise ValueError(
            f"Weights file {path!r} for backbone {who!r} must end in "
            "`.weights.h5` (Keras 3) or `.h5`/`.hdf5` (legacy Keras)."
        )
    if problems:
        raise ValueError(
            f"Weights file {path!r} does not match backbone {who!r}: "
            + " ".join(problems)
        )
    model.load_weights(path)


# === Keras 3 `.weights.h5` ===


def _keras3_layout(path):
    """`{store path: (layer name, [shapes])}` of a `.weights.h5` file."""
    layout = {}
    with h5py.File(path, "r") as f:

        def visit(name, obj):
            if isinstance(obj, h5py.Group) and (
                name == "vars" or name.endswith("/vars")
            ):
                shapes = [
                    tuple(obj[k].shape)
                    for k in sorted(obj.keys(), key=_int_or_str)
                    if isinstance(obj[k], h5py.Dataset)
                ]
                if shapes:
                    layer = obj.attrs.get("name", name)
                    layout[name[: -len("vars")]] = (str(layer), shapes)

        f.visititems(visit)
    return layout


def _int_or_str(key):
    return (0, int(key)) if key.isdigit() else (1, key)


def _is_legacy_file(path):
    with h5py.File(path, "r") as f:
        return "layer_names" in f.attrs


def _keras3_mismatch(model, path):
    if _is_legacy_file(path):
        return [
            "it is a legacy Keras HDF5 weights file; rename it to end in "
            "`.h5` instead of `.weights.h5`."
        ]
    with tempfile.TemporaryDirectory() as tmp:
        # The model's own save gives the exact layout Keras will look up.
        reference = os.path.join(tmp, "expected.weights.h5")
        model.save_weights(reference)
        expected = _keras3_layout(reference)
    found = _keras3_layout(path)
    if not found and _legacy_layer_names(path) is None:
        return ["the file holds no Keras weights."]
    return _compare(
        [(key, *expected[key]) for key in expected],
        [(key, *found[key]) for key in found],
        keyed=True,
    )


# === Legacy `.h5` (keras.applications downloads) ===


def _legacy_layer_names(path):
    with h5py.File(path, "r") as f:
        names = f.attrs.get("layer_names")
        if names is None:
            return None
        return [n.decode() if isinstance(n, bytes) else str(n) for n in names]


def _legacy_layout(path):
    """`[(layer name, [shapes])]` of the weighted layers, in file order."""
    layout = []
    with h5py.File(path, "r") as f:
        if "layer_names" not in f.attrs and "model_weights" in f:
            f = f["model_weights"]
        for name in f.attrs["layer_names"]:
            name = name.decode() if isinstance(name, bytes) else str(name)
            if name == "top_level_model_weights":
                continue
            weight_names = f[name].attrs.get("weight_names", [])
            shapes = []
            for w in weight_names:
                w = w.decode() if isinstance(w, bytes) else str(w)
                shapes.append(tuple(f[name][w].shape))
            if shapes:
                layout.append((name, shapes))
    return layout


def _legacy_mismatch(model, path):
    with h5py.File(path, "r") as f:
        is_legacy = "layer_names" in f.attrs or (
            "model_weights" in f and "layer_names" in f["model_weights"].attrs
        )
        is_keras3 = "layers" in f or "vars" in f
    if not is_legacy:
        if is_keras3:
            return [
                "it is a Keras 3 weights file; rename it to end in "
                "`.weights.h5`."
            ]
        return ["the file holds no Keras weights."]
    expected = [
        (layer.name, layer.name, [tuple(w.shape) for w in layer.weights])
        for layer in model.layers
        if layer.weights
    ]
    found = [(name, name, shapes) for name, shapes in _legacy_layout(path)]
    # Legacy files load by position, as Keras does.
    return _compare(expected, found, keyed=False)


# === Comparison ===


def _compare(expected, found, keyed):
    """Problems between `[(key, layer name, shapes)]` lists, or `[]`."""
    problems = []
    n_exp = len(expected)
    n_found = len(found)
    arrays_exp = sum(len(s) for _, _, s in expected)
    arrays_found = sum(len(s) for _, _, s in found)
    if keyed:
        exp = {k: (n, s) for k, n, s in expected}
        got = {k: (n, s) for k, n, s in found}
        extra = [got[k][0] for k in got if k not in exp]
        missing = [exp[k][0] for k in exp if k not in got]
        pairs = [(exp[k], got[k]) for k in exp if k in got]
    else:
        exp_names = {n for _, n, _ in expected}
        got_names = {n for _, n, _ in found}
        extra = [n for _, n, _ in found if n not in exp_names]
        missing = [n for _, n, _ in expected if n not in got_names]
        pairs = [((e[1], e[2]), (g[1], g[2])) for e, g in zip(expected, found)]
    if n_exp != n_found or (keyed and (extra or missing)):
        problems.append(
            f"the file holds {n_found} layers with weights ({arrays_found} "
            f"arrays), the model {n_exp} ({arrays_exp} arrays)."
        )
        if extra:
            problems.append(f"In the file only: {_names(extra)}.")
        if missing:
            problems.append(f"In the model only: {_names(missing)}.")
        if extra and not missing:
            problems.append(_TOP_HINT)
        else:
            problems.append(_ARCHITECTURE_HINT)
    shape_problems = []
    for (exp_name, exp_shapes), (got_name, got_shapes) in pairs:
        if exp_shapes != got_shapes:
            shape_problems.append(
                f"layer {exp_name!r}: file {_shapes(got_shapes)}"
                + (f" (as {got_name!r})" if got_name != exp_name else "")
                + f", model {_shapes(exp_shapes)}"
            )
    if shape_problems and not (problems and not keyed):
        problems.append(
            "Shapes differ (another input shape, number of channels or "
            "architecture variant?): "
            + "; ".join(shape_problems[:5])
            + (
                f"; and {len(shape_problems) - 5} more."
                if len(shape_problems) > 5
                else "."
            )
        )
    return problems


def _names(names, limit=8):
    shown = ", ".join(repr(n) for n in names[:limit])
    if len(names) > limit:
        shown += f" and {len(names) - limit} more"
    return shown


def _shapes(shapes):
    return "[" + ", ".join(str(s) for s in shapes) + "]"
