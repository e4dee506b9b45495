"""The `kerasft export`, `predict` and `tune` subcommands.

They work on finished run folders (or a recipe name, for `tune`) rather
than on a recipe config, so they have their own small parsers here;
`kerasft.cli` adds them and hands them their arguments. Nothing here
imports TensorFlow until the command runs, so `kerasft --help` stays fast.
"""

COMMANDS = ("export", "predict", "tune")


def add_parsers(sub):
    """Adds the three subcommands to `sub` (an argparse subparsers action)."""
    p = sub.add_parser(
        "export",
        help="Export a finished run as a SavedModel or TFLite file.",
        description="Export RUN_DIR's model.keras for serving: a SavedModel "
        "folder or a .tflite file, taking raw pixels and returning "
        "probabilities, with the class names stored alongside.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="A finished run folder.")
    p.add_argument("--format", choices=("saved_model", "tflite"),
                   default="saved_model", help="Default: saved_model.")
    p.add_argument("--quantize", choices=("float16", "dynamic", "int8"),
                   default=None, help="TFLite quantization (default: none). "
                   "int8 calibrates on the run's training data.")
    p.add_argument("--output", metavar="PATH", default=None,
                   help="Where to write (default: RUN_DIR/model_saved_model "
                   "or RUN_DIR/model[_QUANTIZE].tflite).")

    p = sub.add_parser(
        "predict",
        help="Predict new inputs with a finished run of any recipe.",
        description="Batch inference with RUN_DIR (read by kerasft.load), one "
        "row per input, in what the recipe predicts: classes and "
        "probabilities (image, text, video), boxes plus overlay images "
        "(object detection), mask PNGs plus a colour key (segmentation), "
        "captions, entities (token classification), answers (question "
        "answering) or generated text (seq2seq, causal LM). Files beside the "
        "CSV go in a folder named after it. Unreadable inputs get an `error` "
        "and are listed.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="A finished run folder.")
    p.add_argument("input", metavar="INPUT",
                   help="A folder (images, clips or .txt files), a CSV file, a "
                   "text file with one path, text or prompt per line, or for "
                   "question answering a SQuAD JSON or question,context CSV.")
    p.add_argument("--output", default="predictions.csv", metavar="FILE",
                   help="The CSV to write (.jsonl for entities or answers as "
                   "JSON lines). Default: predictions.csv.")
    p.add_argument("--top-k", type=int, default=None, metavar="K",
                   help="Also write the K most probable classes per input.")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--quiet", action="store_true", help="No progress bar.")

    p = sub.add_parser(
        "tune",
        help="Hyperparameter search over a recipe's options (KerasTuner).",
        description="Search recipe config fields with KerasTuner. Every "
        "trial is a recipe run in OUTPUT/trial_<id>; the search resumes "
        "after an interruption; the best config is written to "
        "OUTPUT/best.json (`kerasft RECIPE --config OUTPUT/best.json`).",
    )
    p.add_argument("recipe", metavar="RECIPE",
                   help="A recipe subcommand, e.g. image-classification.")
    p.add_argument("--search-space", required=True, metavar="JSON",
                   help="A JSON file {field: spec} (see docs/tuning.md).")
    p.add_argument("--config", metavar="FILE", required=True,
                   help="The recipe options every trial shares (JSON/YAML).")
    p.add_argument("--objective", default="val_accuracy")
    p.add_argument("--max-trials", type=int, default=10)
    p.add_argument("--algorithm", choices=("bayesian", "hyperband", "random"),
                   default="bayesian")
    p.add_argument("--output", default="tuning", metavar="DIR",
                   help="Default: ./tuning.")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true",
                   help="Replace another search in --output (by default the "
                   "same search resumes, and another is refused).")


def run(args):
    """Runs a parsed export/predict/tune command; returns the exit status."""
    return {"export": _export, "predict": _predict, "tune": _tune}[
        args.command
    ](args)


def _export(args):
    import os

    from kerasft import exporting
    from kerasft.loading import check_run_folder

    check_run_folder(args.run_dir)
    path = args.output
    if path is None:
        name = "model_saved_model" if args.format == "saved_model" else (
            f"model_{args.quantize}.tflite" if args.quantize else "model.tflite"
        )
        path = os.path.join(args.run_dir, name)
    data = _training_inputs(args.run_dir) if args.quantize == "int8" else None
    exporting.export(args.run_dir, path, format=args.format,
                     quantize=args.quantize, representative_data=data)
    print(f"Exported {args.format} to {os.path.abspath(path)}")
    return 0


def _training_inputs(run_dir):
    """The run's training inputs, for int8 calibration (image recipes with
    a folder or CSV as `train`)."""
    import json
    import os

    import numpy as np

    from kerasft import loading

    run = loading.load(run_dir)
    train = run.config.get("train")
    if not isinstance(train, str) or not os.path.exists(train):
        raise ValueError(
            f"--quantize int8 calibrates on the run's training data, but "
            f"config.json's `train` ({json.dumps(train)}) is not a folder "
            "or file here. Use kerasft.export(..., representative_data=...) "
            "in Python."
        )
    from kerasft.predict import _image_inputs
    from kerasft.data.images import load_files

    height, width, channels = run.model.inputs[0].shape[1:]
    paths = _image_inputs(train)[:1000]
    rng = np.random.default_rng(0)
    paths = [paths[i] for i in rng.permutation(len(paths))[:200]]
    loaded = load_files(paths, np.zeros(len(paths)), (height, width),
                        channels=channels or 3)
    return loaded.dataset.map(lambda image, target, size: image).batch(32)


def _predict(args):
    from kerasft.predict import predict_to_csv

    result = predict_to_csv(args.run_dir, args.input, args.output,
                            top_k=args.top_k, batch_size=args.batch_size,
                            verbose=0 if args.quiet else 1)
    print(f"Wrote {len(result.rows)} rows to {result.output}"
          f" ({len(result.unreadable)} unreadable)")
    return 0


def _tune(args):
    from kerasft.recipes.config import load_config_file
    from kerasft.tuning import read_search_space, tune

    space = read_search_space(args.search_space)
    result = tune(
        args.recipe, space, objective=args.objective,
        max_trials=args.max_trials, algorithm=args.algorithm,
        directory=args.output, seed=args.seed,
        config=load_config_file(args.config), overwrite=args.overwrite,
    )
    print(f"Best {args.objective}: {result.best_score:.4f} with "
          f"{result.best_values}; config in {result.best_config_path}")
    return 0
