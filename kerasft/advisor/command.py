"""`kerasft advise DATA --backbone ...`: the advice from the command line.

`main_advise(argv)` parses the arguments, runs `kerasft.advise` and prints
the "measured -> chosen -> because" table (the CLI wires it as the
`advise` subcommand).
"""

import argparse
import os


DESCRIPTION = (
    "Measure labelled images or texts against a pretrained backbone and "
    "print the fine-tuning plan (strategy, epochs, rates, layer decay) "
    "with the reason for each choice."
)


def parser():
    p = argparse.ArgumentParser(prog="kerasft advise", description=DESCRIPTION)
    add_arguments(p)
    return p


def add_arguments(p):
    """Adds `kerasft advise`'s arguments to the argparse parser `p`."""
    p.add_argument(
        "data",
        help="Training images: a folder with one sub-folder per class, or a "
             ".npz file with arrays x (images) and y (integer labels); or, "
             "with a text backbone, a CSV/TSV of text,label rows.",
    )
    p.add_argument(
        "--backbone", required=True,
        help="A registry name (kerasft.backbones.list_backbones), a saved "
             ".keras model, or a text encoder: a BERT-family folder "
             "(Hugging Face or KerasHub layout) or KerasHub preset name.",
    )
    p.add_argument("--max-length", type=int, default=128,
                   help="Tokens per text of a text backbone. Defaults to "
                        "128.")
    p.add_argument("--weights", default="imagenet",
                   help="Weights of a registry backbone: imagenet, a file, "
                        "or none. Defaults to imagenet.")
    p.add_argument("--image-size", type=int, default=224,
                   help="Image side of a registry backbone. Defaults to 224.")
    p.add_argument("--batch-size", type=int, default=32,
                   help="Training batch size (steps per epoch). Defaults to 32.")
    p.add_argument("--max-samples", type=int, default=1000,
                   help="Examples measured (a stratified subset). "
                        "Defaults to 1000.")
    p.add_argument("--no-lr-sweep", action="store_true",
                   help="Skip lr_find; use the default rates.")
    p.add_argument("--output", default=None,
                   help="Write the advice as JSON to this file "
                        "(e.g. advice.json).")
    p.add_argument("--seed", type=int, default=0)


def _backbone(args):
    import keras

    from kerasft import backbones

    if _is_text(args):
        return backbones.bert(args.backbone, sequence_length=args.max_length)
    if args.backbone.endswith(".keras"):
        if not os.path.exists(args.backbone):
            raise SystemExit(f"Backbone file {args.backbone!r} does not exist.")
        return backbones.from_model(keras.models.load_model(args.backbone))
    weights = None if str(args.weights).lower() == "none" else args.weights
    return backbones.get(
        args.backbone, weights=weights,
        input_shape=(args.image_size, args.image_size, 3),
    )


def _is_text(args):
    """A text backbone: a model folder, or data that is a CSV/TSV."""
    return os.path.isdir(args.backbone) or args.data.lower().endswith(
        (".csv", ".tsv"))


def _texts(path, backbone, max_length):
    """`(token inputs, labels)` of a CSV/TSV of text(,text_pair),label."""
    from kerasft.data.text import read_text_csv, tokenize

    try:
        table = read_text_csv(path)
    except (OSError, ValueError) as e:
        raise SystemExit(str(e)) from e
    return tokenize(table.texts, backbone.tokenizer, table.pairs,
                    max_length), table.labels


def _data(path):
    if path.endswith(".npz"):
        import numpy as np

        with np.load(path) as arrays:
            missing = {"x", "y"} - set(arrays.files)
            if missing:
                raise SystemExit(
                    f"{path!r} must hold arrays 'x' and 'y'. Missing: "
                    f"{sorted(missing)}; found {arrays.files}."
                )
            return arrays["x"], arrays["y"]
    if not os.path.isdir(path):
        raise SystemExit(
            f"DATA must be a folder of class sub-folders or a .npz file. "
            f"Received: {path!r}"
        )
    return path


def main_advise(argv=None):
    """Runs `kerasft advise`; returns the exit status (0)."""
    return run(parser().parse_args(argv))


def run(args):
    """Runs parsed `kerasft advise` arguments; returns the exit status."""
    from kerasft.advisor.advising import advise

    backbone = _backbone(args)
    if backbone.task == "text":
        data = _texts(args.data, backbone, args.max_length)
    else:
        data = _data(args.data)
    advice = advise(
        data, backbone, batch_size=args.batch_size,
        max_samples=args.max_samples, lr_sweep=not args.no_lr_sweep,
        seed=args.seed,
    )
    print(advice.table())
    if args.output:
        advice.to_json(args.output)
        print(f"Wrote {args.output}")
    return 0
