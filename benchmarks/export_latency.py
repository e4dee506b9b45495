"""Batch-1 latency of an exported MobileNetV2: Keras, SavedModel, TFLite.

The model is what the image recipes build: `backbones.get("mobilenetv2",
weights=None)` at 224x224 + `build_model` (preprocessing inside) + a
10-class softmax head, exported with `kerasft.export`. Each format predicts
one raw-pixel image at a time; the script reports the median per-image
latency over `--runs` calls (after `--warmup` calls), alternating the
formats for `--rounds` rounds and taking the median round, plus file sizes
and the int8/float32 TFLite size and speed ratios.

- Keras: `model.predict_on_batch` (what a Python user calls) and the model
  called inside a `tf.function` (the same graph without `predict`'s
  per-call overhead);
- SavedModel: the `serve` endpoint of `tf.saved_model.load`;
- TFLite: the `ai-edge-litert` interpreter (`--threads`, XNNPACK), float32,
  float16 weights, dynamic-range and full int8 (calibrated on
  `--calibration` random images: the weights are random too, so only
  speed and size mean anything here, not accuracy).

Usage:
    .venv/bin/python benchmarks/export_latency.py [--runs 50] [--rounds 3]
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import kerasft  # noqa: E402
from kerasft import backbones, heads  # noqa: E402

SIZE = 224


def _median_ms(fn, image, runs, warmup):
    for _ in range(warmup):
        fn(image)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn(image)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def _tflite_runner(path, threads):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path, num_threads=threads)
    source = interpreter.get_input_details()[0]
    target = interpreter.get_output_details()[0]
    interpreter.resize_tensor_input(source["index"], [1, SIZE, SIZE, 3])
    interpreter.allocate_tensors()

    def run(image):
        interpreter.set_tensor(source["index"], image)
        interpreter.invoke()
        return interpreter.get_tensor(target["index"])

    return run


def _size_mb(path):
    if os.path.isdir(path):
        return sum(
            os.path.getsize(os.path.join(root, f))
            for root, _, files in os.walk(path) for f in files
        ) / 1e6
    return os.path.getsize(path) / 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--calibration", type=int, default=64)
    args = parser.parse_args()

    import keras

    keras.utils.set_random_seed(0)
    backbone = backbones.get("mobilenetv2", weights=None,
                             input_shape=(SIZE, SIZE, 3))
    model = kerasft.build_model(backbone, heads.classification(10))
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 255, (1, SIZE, SIZE, 3)).astype("float32")
    calibration = rng.uniform(0, 255, (args.calibration, SIZE, SIZE, 3)).astype(
        "float32")

    tmp = tempfile.mkdtemp(prefix="export_latency_")
    paths = {"saved_model": os.path.join(tmp, "saved_model")}
    start = time.perf_counter()
    kerasft.export(model, paths["saved_model"])
    exports = {"saved_model": time.perf_counter() - start}
    for quantize in (None, "float16", "dynamic", "int8"):
        name = f"tflite_{quantize or 'float32'}"
        paths[name] = os.path.join(tmp, f"{name}.tflite")
        start = time.perf_counter()
        kerasft.export(model, paths[name], format="tflite", quantize=quantize,
                       representative_data=calibration if quantize == "int8" else None)
        exports[name] = time.perf_counter() - start

    graph_call = tf.function(lambda x: model(x, training=False))
    served = tf.saved_model.load(paths["saved_model"])
    runners = {
        "keras_predict_on_batch": model.predict_on_batch,
        "keras_tf_function": graph_call,
        "saved_model": served.serve,
    }
    for name in ("tflite_float32", "tflite_float16", "tflite_dynamic", "tflite_int8"):
        runners[name] = _tflite_runner(paths[name], args.threads)

    reference = model.predict_on_batch(image)
    rounds = {name: [] for name in runners}
    for _ in range(args.rounds):
        for name, fn in runners.items():
            rounds[name].append(_median_ms(fn, image, args.runs, args.warmup))

    print(f"MobileNetV2 {SIZE}x{SIZE}, weights=None, batch 1, median of "
          f"{args.rounds} rounds x {args.runs} calls; TFLite threads="
          f"{args.threads}; TensorFlow {tf.__version__}, Keras {keras.__version__}")
    print(f"{'format':24s} {'ms/image':>9s} {'size MB':>8s} {'max |diff|':>10s} {'export s':>8s}")
    latency = {}
    for name, fn in runners.items():
        latency[name] = statistics.median(rounds[name])
        diff = float(np.max(np.abs(np.asarray(fn(image)) - reference)))
        key = name if name in paths else None
        size = f"{_size_mb(paths[key]):8.2f}" if key else f"{'':8s}"
        seconds = f"{exports[key]:8.1f}" if key else ""
        print(f"{name:24s} {latency[name]:9.2f} {size} {diff:10.2e} {seconds}")
    size_ratio = _size_mb(paths["tflite_int8"]) / _size_mb(paths["tflite_float32"])
    speedup = latency["tflite_float32"] / latency["tflite_int8"]
    print(f"int8 vs float32 TFLite: size x{size_ratio:.2f}, speed x{speedup:.2f} "
          "(float32 latency / int8 latency)")


if __name__ == "__main__":
    main()
