"""`kerasft.generate` and `kerasft generate`: text from a finished run.

A run of the `seq2seq` or `causal_lm` recipe is read back as it was
written (`kerasft.recipes._generative`): `model.keras`, or the base model
(`generative.json`'s `base`, or the run's `base_preset/`) with the LoRA
adapters of `lora.weights.h5` loaded onto it. Seq2seq prompts get the run's
`task_prefix`; causal LM generations start with their prompt.

Samplers are KerasHub's: `greedy`, `beam` (`num_beams`), `top_k` and
`top_p`, the random ones seeded, so a seed gives the same text again. A
model whose output layer is larger than its tokenizer's vocabulary (T5:
32128 logits, 32000 SentencePiece pieces) never picks the ids the tokenizer
cannot decode: their logits are masked while sampling (`limit_vocabulary`).

This module imports neither TensorFlow nor Keras until it runs, so
`kerasft --help` stays fast.
"""

SAMPLERS = ("greedy", "beam", "top_k", "top_p")
_BATCH = 32

__all__ = [
    "SAMPLERS", "generate", "generate_with", "limit_vocabulary", "make_sampler",
]


def make_sampler(name="greedy", top_k=50, top_p=0.9, num_beams=4, seed=None):
    """A KerasHub sampler.

    Args:
        name: `"greedy"`, `"beam"`, `"top_k"` or `"top_p"`. Defaults to
            `"greedy"`.
        top_k: tokens considered per step by `"top_k"`. Defaults to `50`.
        top_p: probability mass kept per step by `"top_p"`. Defaults to
            `0.9`.
        num_beams: beams of `"beam"`. Defaults to `4`.
        seed: seed of the random samplers. Defaults to `None`.

    Returns:
        A `keras_hub.samplers.Sampler`.

    Example:
    ```python
    sampler = kerasft.generation.make_sampler("top_p", top_p=0.8, seed=1)
    ```
    """
    name = name.replace("-", "_") if isinstance(name, str) else name
    if name not in SAMPLERS:
        raise ValueError(
            f"`sampler` must be one of {SAMPLERS}. Received: sampler={name!r}"
        )
    for arg, value in (("top_k", top_k), ("num_beams", num_beams)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(
                f"`{arg}` must be a positive integer. Received: {arg}={value!r}"
            )
    if not isinstance(top_p, (int, float)) or not 0 < top_p <= 1:
        raise ValueError(f"`top_p` must be in (0, 1]. Received: top_p={top_p!r}")
    import keras_hub

    samplers = keras_hub.samplers
    if name == "greedy":
        return samplers.GreedySampler()
    if name == "beam":
        return samplers.BeamSampler(num_beams=num_beams)
    if name == "top_k":
        return samplers.TopKSampler(k=top_k, seed=seed)
    return samplers.TopPSampler(p=top_p, seed=seed)


def generate_with(task, prompts, sampler, max_length=None, batch_size=_BATCH):
    """Generated strings of a KerasHub `CausalLM`/`Seq2SeqLM` for `prompts`.

    Ids past the tokenizer's vocabulary are never generated
    (`limit_vocabulary`). Prompts go to the task as Python lists of
    strings (some KerasHub tokenizers refuse numpy string arrays).

    Args:
        task: a KerasHub generative task with its preprocessor.
        prompts: a list of strings.
        sampler: a KerasHub sampler (`make_sampler`) or its name.
        max_length: tokens to generate up to (causal LM: prompt included;
            seq2seq: the output). Defaults to `None`, meaning the
            preprocessor's length.
        batch_size: prompts per `generate` call. Defaults to `32`.

    Returns:
        A list of strings, one per prompt.
    """
    import keras_hub

    # What `CausalLM.compile(sampler=...)` sets, without recompiling the
    # training state (the optimizer may be absent from a loaded model).
    task.sampler = limit_vocabulary(keras_hub.samplers.get(sampler), task)
    task.generate_function = None
    run = _generate_batch
    if _pads_with_end_token(task):
        run = _generate_then_cut
    import warnings

    from kerasft.loading import MASK_WARNING

    out = []
    for start in range(0, len(prompts), batch_size):
        batch = [str(p) for p in prompts[start:start + batch_size]]
        with warnings.catch_warnings():
            # KerasHub's T5 attention ignores input masks by design.
            warnings.filterwarnings("ignore", message=MASK_WARNING)
            texts = run(task, batch, max_length)
        if isinstance(texts, (str, bytes)):
            texts = [texts]
        out.extend(
            t.decode("utf-8") if isinstance(t, bytes) else str(t)
            for t in list(texts)
        )
    return out


def limit_vocabulary(sampler, task):
    """`sampler`, made to skip the ids `task`'s tokenizer cannot decode.

    A model may have more output ids than its tokenizer has tokens (T5's
    32128 logits for 32000 SentencePiece pieces, padded for speed); an
    untrained or lightly trained model can pick one, and detokenizing it
    fails ("piece id is out of range"). The returned sampler sets the
    logits of ids `>= tokenizer.vocabulary_size()` to a large negative
    value before `sampler` picks a token, so they are never chosen. T5
    tokenizers from `kerasft.backbones` count their `<extra_id_N>`
    sentinels in `vocabulary_size()` (32100 for T5), so sentinels stay
    generatable and `detokenize` prints them; only the padding rows past
    them are masked.

    Args:
        sampler: a `keras_hub.samplers.Sampler`.
        task: a KerasHub `CausalLM`/`Seq2SeqLM` with its preprocessor.

    Returns:
        `sampler` itself when every id decodes, else a wrapping sampler.

    Example:
    ```python
    task.sampler = limit_vocabulary(keras_hub.samplers.GreedySampler(), task)
    ```
    """
    tokenizer = getattr(task.preprocessor, "tokenizer", None)
    if tokenizer is None or isinstance(sampler, _limited_sampler_class()):
        return sampler
    size = int(tokenizer.vocabulary_size())
    outputs = getattr(task.backbone, "vocabulary_size", None)
    if outputs is None or size >= int(outputs):
        return sampler
    return _limited_sampler_class()(sampler, size)


_LIMITED = []


def _limited_sampler_class():
    """The `VocabularyLimit` sampler class (made on first use, so that
    importing this module imports no Keras)."""
    if _LIMITED:
        return _LIMITED[0]
    import keras
    import keras_hub

    @keras.saving.register_keras_serializable(package="kerasft")
    class VocabularyLimit(keras_hub.samplers.Sampler):
        """Runs `sampler` with the logits of ids `>= vocabulary_size`
        masked: those ids are never sampled."""

        def __init__(self, sampler, vocabulary_size, **kwargs):
            super().__init__(**kwargs)
            self.sampler = keras_hub.samplers.get(sampler)
            self.vocabulary_size = int(vocabulary_size)

        @property
        def variables(self):
            return self.sampler.variables

        def __call__(self, next, *args, **kwargs):
            ops = keras.ops
            size = self.vocabulary_size

            def limited_next(*next_args, **next_kwargs):
                logits, hidden_states, cache = next(*next_args, **next_kwargs)
                ids = ops.arange(ops.shape(logits)[-1])
                low = ops.cast(-1e9, logits.dtype)
                logits = ops.where(ids[None, :] < size, logits, low)
                return logits, hidden_states, cache

            return self.sampler(limited_next, *args, **kwargs)

        def get_config(self):
            config = super().get_config()
            config.update(
                sampler=keras_hub.samplers.serialize(self.sampler),
                vocabulary_size=self.vocabulary_size,
            )
            return config

    _LIMITED.append(VocabularyLimit)
    return VocabularyLimit


def _generate_batch(task, prompts, max_length):
    return task.generate(prompts, max_length=max_length)


def _pads_with_end_token(task):
    """Whether a causal LM's tokenizer pads with its end token (a GPT-2
    vocabulary whose `<|endoftext|>` has id 0, KerasHub's GPT-2 pad id).

    KerasHub 0.32's samplers stop once every row holds a stop token past
    its prompt, and count the padding after the prompt: such a model would
    stop before generating anything.
    """
    import keras_hub

    if isinstance(task, keras_hub.models.Seq2SeqLM):
        return False
    tokenizer = getattr(task.preprocessor, "tokenizer", None)
    end = getattr(tokenizer, "end_token_id", None)
    return end is not None and end == getattr(tokenizer, "pad_token_id", None)


def _generate_then_cut(task, prompts, max_length):
    """Generates to `max_length` without stop tokens, then ends each row at
    its first generated end token (what the stop tokens would have done)."""
    import numpy as np

    preprocessor = task.preprocessor
    inputs = preprocessor.generate_preprocess(
        prompts, sequence_length=max_length or preprocessor.sequence_length
    )
    inputs = {k: np.asarray(v) for k, v in inputs.items()}
    task.preprocessor = None
    try:
        outputs = task.generate(inputs, stop_token_ids=None)
    finally:
        task.preprocessor = preprocessor
    ids = np.asarray(outputs["token_ids"])
    end = preprocessor.tokenizer.end_token_id
    generated_end = (ids == end) & ~inputs["padding_mask"]
    after_end = np.cumsum(generated_end, axis=-1) > 0
    return preprocessor.generate_postprocess(
        {"token_ids": ids, "padding_mask": ~after_end}
    )


def generate(run_dir, prompts, max_length=None, sampler="greedy", num_beams=4,
             top_k=50, top_p=0.9, seed=None):
    """Generates text with a finished `seq2seq` or `causal_lm` run.

    Args:
        run_dir: the run's output folder.
        prompts: a string or a list of strings (seq2seq: sources, which get
            the run's `task_prefix`; causal LM: the text to continue).
        max_length: tokens to generate up to (causal LM: prompt included).
            Defaults to `None`, meaning the run's length.
        sampler: `"greedy"`, `"beam"`, `"top_k"` or `"top_p"`. Defaults to
            `"greedy"`.
        num_beams: beams of `"beam"`. Defaults to `4`.
        top_k: tokens considered per step by `"top_k"`. Defaults to `50`.
        top_p: probability mass kept by `"top_p"`. Defaults to `0.9`.
        seed: seed of `"top_k"`/`"top_p"`. Defaults to `None`.

    Returns:
        A list of strings, one per prompt (a string for a string prompt).

    Example:
    ```python
    kerasft.generate("runs/legal", ["The party of the first part"],
                     sampler="top_p", seed=0)
    ```
    """
    single = isinstance(prompts, str)
    prompt_list = [prompts] if single else list(prompts)
    if not prompt_list or not all(isinstance(p, str) for p in prompt_list):
        raise ValueError(
            "`prompts` must be a string or a non-empty list of strings. "
            f"Received: prompts={prompts!r}"
        )
    if max_length is not None and (
        isinstance(max_length, bool) or not isinstance(max_length, int)
        or max_length < 1
    ):
        raise ValueError(
            "`max_length` must be a positive integer or None. Received: "
            f"max_length={max_length!r}"
        )
    chosen = make_sampler(sampler, top_k=top_k, top_p=top_p,
                          num_beams=num_beams, seed=seed)
    task, info = load_run(run_dir)
    prefix = info.get("task_prefix") or ""
    texts = generate_with(task, [prefix + p for p in prompt_list], chosen,
                          max_length)
    return texts[0] if single else texts


def load_run(run_dir):
    """`(task, generative.json data)` of a finished generative run folder
    (read by `kerasft.load`)."""
    from kerasft import loading
    from kerasft.recipes import _generative
    from kerasft.recipes import registry

    directory = loading.check_run_folder(run_dir)
    recipe = loading.recipe_of(directory)
    if recipe is None or not registry.get(recipe).generative:
        raise ValueError(
            f"{directory!r} is not a finished seq2seq or causal-lm run"
            + (f" (it holds a {recipe} run)" if recipe else "")
            + ". `generate` needs the output folder of `kerasft seq2seq` or "
            "`kerasft causal-lm`; other runs predict with `kerasft predict`."
        )
    run = loading.load(directory, recipe=recipe)
    return run.model, run.read_json(_generative.GENERATIVE_FILE)


# === Command line ===


def add_parser(sub):
    """Adds the `generate` subcommand to `sub` (argparse subparsers)."""
    p = sub.add_parser(
        "generate",
        help="Generate text with a finished seq2seq or causal-lm run.",
        description="Load RUN_DIR (model.keras, or the base model plus the "
        "LoRA adapters of lora.weights.h5) and print one generation per "
        "--prompt.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR",
                   help="A finished seq2seq or causal-lm run folder.")
    p.add_argument("--prompt", action="append", required=True, metavar="TEXT",
                   help="A prompt (repeat for more).")
    p.add_argument("--max-length", type=int, default=None, metavar="N",
                   help="Tokens to generate up to (causal LM: prompt "
                   "included; default: the run's length).")
    p.add_argument("--sampler", choices=SAMPLERS, default="greedy",
                   help="Default: greedy.")
    p.add_argument("--num-beams", type=int, default=4, metavar="K",
                   help="Beams of --sampler beam (default: 4).")
    p.add_argument("--top-k", type=int, default=50, metavar="K",
                   help="Tokens per step of --sampler top_k (default: 50).")
    p.add_argument("--top-p", type=float, default=0.9, metavar="P",
                   help="Probability mass of --sampler top_p (default: 0.9).")
    p.add_argument("--seed", type=int, default=None, metavar="S",
                   help="Seed of the top_k/top_p samplers.")


def run_command(args):
    """Runs a parsed `generate` command; prints one generation per prompt
    (a line `---` between them); returns the exit status."""
    texts = generate(
        args.run_dir, args.prompt, max_length=args.max_length,
        sampler=args.sampler, num_beams=args.num_beams, top_k=args.top_k,
        top_p=args.top_p, seed=args.seed,
    )
    print("\n---\n".join(texts))
    return 0
