"""Writes the tiny T5 / Flan-T5 / GPT-2 / BART fixtures in `tests/fixtures/`.

The folders are Hugging Face checkpoints in the layout users download:
`config.json`, `model.safetensors` and tokenizer files, with random weights
made with a fixed seed, plus `reference.npz`, the logits Hugging Face PyTorch
computes for a few fixed inputs. kerasft's parity tests
(`tests/backbones/test_t5_checkpoint.py`, `test_generative.py`) load the
folders through `kerasft.backbones.load_task` and compare against these
arrays, so torch and transformers are needed only to regenerate the
fixtures, never to run tests. Made with torch 2.13.0 (CPU), transformers
5.24.0, tokenizers 0.23.3, sentencepiece 0.2.3; the output is byte-identical
from run to run:

    python -m venv /tmp/torchvenv
    /tmp/torchvenv/bin/pip install torch==2.13.0 "transformers>=5,<6" \
        safetensors sentencepiece tokenizers
    /tmp/torchvenv/bin/python tools/make_generative_fixtures.py

Folders written:
- `t5_tiny/`: Flan-T5 style (gated-gelu feed-forward, untied `lm_head`).
- `t5_v1_tiny/`: original T5 style (relu, `lm_head` tied to the embedding,
  so the decoder output is scaled by `d_model ** -0.5` before it).
- `gpt2_tiny/`: GPT-2 with a byte-level BPE tokenizer.
- `bart_tiny/`: BART with a byte-level BPE tokenizer (loaded through
  KerasHub's own converter).

The tokenizers are trained offline on a corpus of English number words
("zero" .. "nineteen", "twenty" .. "ninety", "hundred", "thousand"), the
digits and plain lowercase English words, so synthetic tasks (number words
to digits, reversing word lists, short texts) tokenize into few pieces.
"""

import io
import json
import os
import random
import shutil
import sys

import numpy as np

sys.path.insert(
    0, os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
)
from tests.fixtures.tiny_generative import ONES  # noqa: E402
from tests.fixtures.tiny_generative import TENS  # noqa: E402
from tests.fixtures.tiny_generative import WORDS  # noqa: E402
from tests.fixtures.tiny_generative import number_words  # noqa: E402


SEED = 1234
FIXTURES = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    "tests",
    "fixtures",
)

def corpus(rng):
    lines = []
    for n in list(range(1000)) + rng.sample(range(1000, 10000), 2000):
        lines.append(f"{number_words(n)} {n}")
    for _ in range(3000):
        lines.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12))))
    # Single-word lines: sentencepiece's unigram trainer keeps whole words
    # as pieces only when they also occur on their own.
    lines += WORDS * 5 + (ONES + TENS + ["hundred", "thousand"]) * 20
    lines += ["0 1 2 3 4 5 6 7 8 9 . , ! ? : ; ' \" ( ) -"] * 20
    return lines


# Fixed inputs whose logits are recorded.
TEXTS = [
    "three hundred twelve",
    "translate english to german: the cat is on the table",
    "reverse: red blue green",
    "summarize: the court shall give notice of the payment term",
]
T5_DECODER_TEXTS = ["312", "die katze", "green blue red", "notice"]
GPT2_TEXTS = [
    "the cat sat on the table and the dog",
    "twenty one 21 forty two 42",
    "the party shall give notice",
    "Hello World, 2024!",
]


def train_sentencepiece(lines, folder):
    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=model,
        vocab_size=512,
        hard_vocab_limit=False,
        split_digits=True,
        model_type="unigram",
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        pad_piece="<pad>",
        eos_piece="</s>",
        unk_piece="<unk>",
        character_coverage=1.0,
        num_threads=1,
        minloglevel=2,
    )
    path = os.path.join(folder, "spiece.model")
    with open(path, "wb") as f:
        f.write(model.getvalue())
    return path


def tokenizer_reference(spiece_path):
    """Ids of TEXTS from sentencepiece and from transformers' T5 tokenizer."""
    import sentencepiece as spm
    import transformers

    sp = spm.SentencePieceProcessor(model_file=spiece_path)
    sp_ids = [sp.encode(t) + [1] for t in TEXTS]
    hf = transformers.AutoTokenizer.from_pretrained(os.path.dirname(spiece_path))
    hf_ids = [hf(t)["input_ids"] for t in TEXTS]
    return sp_ids, hf_ids


def pad(rows, value=0):
    width = max(len(r) for r in rows)
    ids = np.full((len(rows), width), value, "int32")
    mask = np.zeros((len(rows), width), "int32")
    for i, r in enumerate(rows):
        ids[i, : len(r)] = r
        mask[i, : len(r)] = 1
    return ids, mask


def make_t5(folder, spiece_path, gated):
    import torch
    import transformers
    from safetensors.torch import save_file

    os.makedirs(folder, exist_ok=True)
    if os.path.abspath(spiece_path) != os.path.abspath(
        os.path.join(folder, "spiece.model")
    ):
        shutil.copy(spiece_path, os.path.join(folder, "spiece.model"))
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=spiece_path)
    # Real checkpoints pad the embedding past the tokenizer (32128 > 32100).
    vocab_size = (sp.get_piece_size() + 7) // 8 * 8 + 8
    config = transformers.T5Config(
        vocab_size=vocab_size,
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        relative_attention_num_buckets=32,
        relative_attention_max_distance=128,
        dropout_rate=0.1,
        layer_norm_epsilon=1e-6,
        feed_forward_proj="gated-gelu" if gated else "relu",
        tie_word_embeddings=not gated,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    torch.manual_seed(SEED + (1 if gated else 2))
    model = transformers.T5ForConditionalGeneration(config)
    # Keep HF's T5 init, but make the norm scales and the relative attention
    # buckets clearly non-trivial so that a mis-mapped weight shows up.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layer_norm" in name:
                p.normal_(1.0, 0.2)
            elif "relative_attention_bias" in name:
                p.normal_(0.0, 1.0)
    tensors = {
        k: v.detach().clone().contiguous()
        for k, v in model.state_dict().items()
        if "embed_tokens" not in k and k != "lm_head.weight"
    }
    # Written by hand, in the layout of the checkpoints on the Hub:
    # transformers 5 always ties `lm_head` on save, so `save_pretrained`
    # cannot write a Flan-T5 (untied, unscaled) checkpoint.
    if gated:
        # Flan-T5 / T5 v1.1: separate lm_head, no decoder output scaling.
        tensors["lm_head.weight"] = torch.randn(vocab_size, config.d_model)
    else:
        # Original T5: older files also hold the tied copies.
        for key in ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight"):
            tensors[key] = tensors["shared.weight"].clone()
        tensors["lm_head.weight"] = tensors["shared.weight"].clone()
    save_file(tensors, os.path.join(folder, "model.safetensors"), {"format": "pt"})
    hf_config = config.to_dict()
    hf_config.pop("scale_decoder_outputs", None)
    hf_config["tie_word_embeddings"] = not gated
    hf_config["architectures"] = ["T5ForConditionalGeneration"]
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(hf_config, f, indent=2, sort_keys=True)
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump({"model_max_length": 512, "extra_ids": 0}, f)
    # The reference is what transformers makes of the folder.
    model = transformers.T5ForConditionalGeneration.from_pretrained(folder)
    model.eval()
    same = torch.equal(model.lm_head.weight, model.shared.weight)
    if same == gated or model.config.scale_decoder_outputs == gated:
        raise AssertionError("transformers did not read the head as intended")
    encoder_ids, encoder_mask = pad([sp.encode(t) + [1] for t in TEXTS])
    decoder_ids, decoder_mask = pad([[0] + sp.encode(t) for t in T5_DECODER_TEXTS])
    with torch.no_grad():
        out = model(
            input_ids=torch.tensor(encoder_ids, dtype=torch.long),
            attention_mask=torch.tensor(encoder_mask, dtype=torch.long),
            decoder_input_ids=torch.tensor(decoder_ids, dtype=torch.long),
            decoder_attention_mask=torch.tensor(decoder_mask, dtype=torch.long),
            output_hidden_states=True,
        )
    sp_ids, hf_ids = tokenizer_reference(spiece_path)
    if sp_ids != hf_ids:
        raise AssertionError(f"sentencepiece {sp_ids} != transformers {hf_ids}")
    token_ids, token_mask = pad(sp_ids)
    np.savez_compressed(
        os.path.join(folder, "reference.npz"),
        encoder_token_ids=encoder_ids,
        encoder_padding_mask=encoder_mask,
        decoder_token_ids=decoder_ids,
        decoder_padding_mask=decoder_mask,
        logits=out.logits.numpy().astype("float32"),
        encoder_sequence_output=out.encoder_last_hidden_state.numpy(),
        texts=np.array(TEXTS),
        tokenized_ids=token_ids,
        tokenized_mask=token_mask,
    )


def train_bpe(folder, lines, special_tokens):
    """A byte-level BPE (GPT-2 / BART `vocab.json` + `merges.txt`)."""
    import tokenizers

    os.makedirs(folder, exist_ok=True)
    bpe = tokenizers.ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        lines,
        vocab_size=1000,
        min_frequency=2,
        special_tokens=special_tokens,
        show_progress=False,
    )
    bpe.save_model(folder)
    return bpe


def make_bart(folder, lines):
    import torch
    import transformers

    bpe = train_bpe(folder, lines, ["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    config = transformers.BartConfig(
        vocab_size=bpe.get_vocab_size(),
        d_model=32,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=64,
        bos_token_id=0,
        pad_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=2,
        forced_bos_token_id=0,
    )
    torch.manual_seed(SEED + 4)
    model = transformers.BartForConditionalGeneration(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layer_norm" in name and name.endswith("weight"):
                p.normal_(1.0, 0.2)
            elif p.dim() > 1 or name.endswith("bias"):
                p.normal_(0.0, 0.2)
    model.eval()
    model.save_pretrained(folder, safe_serialization=True)
    # The configs on the Hub (and KerasHub's converter) carry
    # `num_hidden_layers`, which transformers 5 no longer writes.
    config_path = os.path.join(folder, "config.json")
    with open(config_path) as f:
        hf_config = json.load(f)
    hf_config["num_hidden_layers"] = config.encoder_layers
    with open(config_path, "w") as f:
        json.dump(hf_config, f, indent=2, sort_keys=True)
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump({"model_max_length": 64}, f)
    hf = transformers.AutoTokenizer.from_pretrained(folder)
    encoder_ids, encoder_mask = pad([hf(t)["input_ids"] for t in TEXTS], value=1)
    decoder_ids, decoder_mask = pad(
        [[2] + hf(t)["input_ids"][:-1] for t in T5_DECODER_TEXTS], value=1
    )
    model = transformers.BartForConditionalGeneration.from_pretrained(folder)
    model.eval()
    with torch.no_grad():
        logits = model(
            input_ids=torch.tensor(encoder_ids, dtype=torch.long),
            attention_mask=torch.tensor(encoder_mask, dtype=torch.long),
            decoder_input_ids=torch.tensor(decoder_ids, dtype=torch.long),
            decoder_attention_mask=torch.tensor(decoder_mask, dtype=torch.long),
        ).logits
    np.savez_compressed(
        os.path.join(folder, "reference.npz"),
        encoder_token_ids=encoder_ids,
        encoder_padding_mask=encoder_mask,
        decoder_token_ids=decoder_ids,
        decoder_padding_mask=decoder_mask,
        logits=logits.numpy().astype("float32"),
    )


def make_gpt2(folder, lines):
    import torch
    import transformers

    bpe = train_bpe(folder, lines, ["<|endoftext|>"])
    eot = bpe.token_to_id("<|endoftext|>")
    config = transformers.GPT2Config(
        vocab_size=bpe.get_vocab_size(),
        n_positions=128,
        n_embd=32,
        n_layer=2,
        n_head=4,
        bos_token_id=eot,
        eos_token_id=eot,
    )
    torch.manual_seed(SEED + 3)
    model = transformers.GPT2LMHeadModel(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "ln_" in name and name.endswith("weight"):
                p.normal_(1.0, 0.2)
            else:
                p.normal_(0.0, 0.2)
    model.eval()
    model.save_pretrained(folder, safe_serialization=True)
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump(
            {
                "model_max_length": 128,
                "bos_token": "<|endoftext|>",
                "eos_token": "<|endoftext|>",
                "unk_token": "<|endoftext|>",
            },
            f,
        )
    hf = transformers.AutoTokenizer.from_pretrained(folder)
    rows = [hf(t)["input_ids"] for t in GPT2_TEXTS]
    token_ids, padding_mask = pad(rows, value=eot)
    with torch.no_grad():
        logits = model(
            input_ids=torch.tensor(token_ids, dtype=torch.long),
            attention_mask=torch.tensor(padding_mask, dtype=torch.long),
        ).logits
    np.savez_compressed(
        os.path.join(folder, "reference.npz"),
        token_ids=token_ids,
        padding_mask=padding_mask,
        logits=logits.numpy().astype("float32"),
        texts=np.array(GPT2_TEXTS),
    )


def main():
    rng = random.Random(SEED)
    lines = corpus(rng)
    t5 = os.path.join(FIXTURES, "t5_tiny")
    os.makedirs(t5, exist_ok=True)
    spiece = train_sentencepiece(lines, t5)
    make_t5(t5, spiece, gated=True)
    make_t5(os.path.join(FIXTURES, "t5_v1_tiny"), spiece, gated=False)
    make_gpt2(os.path.join(FIXTURES, "gpt2_tiny"), lines)
    make_bart(os.path.join(FIXTURES, "bart_tiny"), lines)
    for name in ("t5_tiny", "t5_v1_tiny", "gpt2_tiny", "bart_tiny"):
        folder = os.path.join(FIXTURES, name)
        size = sum(
            os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder)
        )
        print(f"{name}: {sorted(os.listdir(folder))} {size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
