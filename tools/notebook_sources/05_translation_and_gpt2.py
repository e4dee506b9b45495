# %% [markdown]
# # Translation with T5 and domain adaptation of GPT-2
#
# The tutorials fine-tune T5 with `TFAutoModelForSeq2SeqLM` ("translate English to German:
# ...") and GPT-2 with `TFGPT2LMHeadModel` on a legal corpus. That code no longer runs
# (transformers 5 has no TensorFlow classes), and the GPT-2 part never trained: it called
# `model.train(input_ids)`, a mode switch, on a corpus cut at 1024 tokens.
#
# Here the same two jobs run on KerasHub's `T5Seq2SeqLM` and `GPT2CausalLM` through kerasft:
#
# 1. `kerasft.recipes.seq2seq`: number words to digits ("three hundred twelve" -> "312"),
#    scored with BLEU and exact match.
# 2. `kerasft.recipes.causal_lm`: a corpus longer than the model's context, packed into
#    windows with a stride so every token is trained on; validation perplexity and samples.
# 3. LoRA adapters, saved alone or merged, and `kerasft.generate` on the finished runs.
#
# In Colab the models are the `t5_small_multi` and `gpt2_base_en` KerasHub presets
# (downloaded); in the test suite (`SMOKE=1`) tiny random-init models stand in for them.

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

T5_EPOCHS = 2 if SMOKE else 5
GPT2_EPOCHS = 2 if SMOKE else 3
SEQUENCE_LENGTH = 32 if SMOKE else 256
NUM_BEAMS = 1 if SMOKE else 4  # beam search (on top of greedy) in evaluation
# Tiny models run faster in float32 on a CPU; "auto" picks mixed precision where it pays.
PRECISION = "float32" if SMOKE else "auto"

# %%
import json
import tempfile

import keras
import numpy as np

import kerasft

keras.utils.set_random_seed(0)
WORK = tempfile.mkdtemp()


def t5_model():
    if SMOKE:  # a tiny T5 on the test checkpoint's SentencePiece vocabulary
        from tests.recipes.seq2seq_data import tiny_t5

        return tiny_t5(hidden_dim=32, num_layers=1)
    return "t5_small_multi"


def gpt2_model():
    if SMOKE:  # a tiny GPT-2 on the test checkpoint's byte-level BPE
        from tests.recipes.causal_lm_data import tiny_gpt2

        return tiny_gpt2(hidden_dim=64)
    return "gpt2_base_en"

# %% [markdown]
# ## 1. T5: number words to digits
#
# A CSV of `source,target` pairs; `task_prefix` is prepended to every source, as T5 expects.
# Sources and targets longer than their lengths are counted and reported, never cut silently.

# %%
ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen "
        "fourteen fifteen sixteen seventeen eighteen nineteen").split()
TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_words(n):
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10 - 2] + ("" if n % 10 == 0 else " " + ONES[n % 10])
    rest = "" if n % 100 == 0 else " " + number_words(n % 100)
    return ONES[n // 100] + " hundred" + rest


rng = np.random.default_rng(0)
numbers = rng.permutation(1000)[: 96 if SMOKE else 1000]
pairs_csv = os.path.join(WORK, "numbers.csv")
with open(pairs_csv, "w") as f:
    f.write("source,target\n")
    f.writelines(f"{number_words(int(n))},{n}\n" for n in numbers)
print(open(pairs_csv).read().splitlines()[:3])

# %%
translation = kerasft.recipes.seq2seq(
    train=pairs_csv, backbone=t5_model(), task_prefix="digits: ",
    source_length=16, target_length=8, epochs=T5_EPOCHS, batch_size=16,
    learning_rate=2e-3 if SMOKE else 5e-4, num_beams=NUM_BEAMS, precision=PRECISION,
    output_dir=os.path.join(WORK, "translate"), verbose=0,
)
for key in ("val_bleu", "val_exact_match", "val_rougeL", "val_beam_bleu"):
    if key in translation.metrics:
        print(f"{key}: {translation.metrics[key]:.3f}")
print(open(os.path.join(WORK, "translate", "predictions.csv")).read().splitlines()[:4])

# %% [markdown]
# ## 2. GPT-2 on a corpus longer than its context
#
# A folder of `.txt` files, one document per file. One of them is far longer than
# `sequence_length`: the tutorial's `truncation=True` kept only its start. `causal_lm` packs
# all documents, separated by GPT-2's end-of-text token, into windows of `sequence_length`
# tokens starting every `stride` tokens (here they overlap by a quarter, for context), pads
# and masks the last one, and logs how many tokens and windows each split has.

# %%
SUBJECTS = ["the party", "the tenant", "the court", "the company", "the buyer"]
VERBS = ["shall give", "shall pay", "may send", "shall keep"]
OBJECTS = ["notice", "the payment", "the contract", "a copy of the agreement"]


def clause(i):
    return (f"{SUBJECTS[i % 5]} {VERBS[i % 4]} {OBJECTS[i % 3]} "
            f"pursuant to section {i % 9 + 1}.")


corpus_dir = os.path.join(WORK, "legal")
os.makedirs(corpus_dir)
for d in range(20 if SMOKE else 200):
    n = 60 if d == 0 else 3  # the first document is a long one
    with open(os.path.join(corpus_dir, f"doc_{d:03d}.txt"), "w") as f:
        f.write(" ".join(clause(d + i) for i in range(n)))

lm = kerasft.recipes.causal_lm(
    train=corpus_dir, backbone=gpt2_model(), sequence_length=SEQUENCE_LENGTH,
    stride=SEQUENCE_LENGTH * 3 // 4, epochs=GPT2_EPOCHS, batch_size=8,
    learning_rate=1e-3 if SMOKE else 5e-5, prompts=["the court", "the tenant shall"],
    sample_length=24 if SMOKE else 64, sampler="top_k", top_k=10, precision=PRECISION,
    output_dir=os.path.join(WORK, "legal_run"), verbose=0,
)
for key in ("train_tokens", "train_windows", "val_tokens", "val_windows"):
    print(f"{key}: {lm.metrics[key]}")
print(f"validation perplexity: {lm.metrics['val_perplexity']:.2f}")
samples = json.load(open(os.path.join(WORK, "legal_run", "samples.json")))
for sample in samples["samples"]:
    print(repr(sample["text"]))

# %% [markdown]
# ## 3. LoRA: adapters alone, or merged
#
# `lora_rank` trains low-rank adapters on the attention projections and nothing else. The
# run folder then keeps the adapters alone (`lora.weights.h5`) and the base's name (or, for
# a model given in Python, `base_preset/` saved before training); `merge_lora=True` writes
# the merged model as `model.keras` instead, with the same outputs.

# %%
lora_options = dict(
    train=corpus_dir, backbone=gpt2_model(), sequence_length=SEQUENCE_LENGTH,
    epochs=1, batch_size=8, learning_rate=1e-2 if SMOKE else 1e-4, lora_rank=4,
    precision=PRECISION, verbose=0,
)
adapters = kerasft.recipes.causal_lm(output_dir=os.path.join(WORK, "lora"), **lora_options)
merged = kerasft.recipes.causal_lm(
    output_dir=os.path.join(WORK, "lora_merged"), merge_lora=True, **lora_options
)
for name in ("lora", "lora_merged"):
    files = sorted(os.listdir(os.path.join(WORK, name)))
    print(name, [f for f in files if f in ("lora.weights.h5", "base_preset", "model.keras")])
size = os.path.getsize(os.path.join(WORK, "lora", "lora.weights.h5"))
print(f"lora.weights.h5: {size / 1024:.0f} KiB")

# %% [markdown]
# ## 4. `kerasft generate`
#
# Any finished run folder of either recipe generates again: from Python as here, or
# `kerasft generate RUN_DIR --prompt TEXT --sampler top_p --seed 0` in a shell. Seq2seq
# prompts get the run's `task_prefix`.

# %%
print(kerasft.generate(os.path.join(WORK, "translate"), ["three hundred twelve", "forty"]))
print(kerasft.generate(os.path.join(WORK, "lora"), ["the court"], max_length=16))
print(kerasft.generate(os.path.join(WORK, "lora_merged"), ["the court", "the buyer"],
                       sampler="top_p", top_p=0.9, seed=0, max_length=16))
