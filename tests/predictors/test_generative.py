"""Generated text CSV of seq2seq (with its task prefix) and causal LM runs:
the same text `kerasft.generate` gives for the run folder."""

import pytest

from kerasft import generation, recipes
from kerasft.predictors import generative
from tests.predictors._load import header, load, read_csv

FAST = dict(precision="float32", strategy="default", verbose=0)
PROMPTS = ["three hundred one", "forty two", "seven"]


@pytest.mark.slow
def test_seq2seq_prompts_get_the_task_prefix(tmp_path):
    from tests.recipes.seq2seq_data import number_pairs, tiny_t5

    out = tmp_path / "run"
    recipes.seq2seq(train=number_pairs(range(16)),
                    backbone=tiny_t5(hidden_dim=32, num_layers=1),
                    source_length=8, target_length=6, epochs=1, batch_size=8,
                    validation_split=0.0,
                    task_prefix="digits: ", output_dir=str(out), **FAST)
    run = load(out, "seq2seq")
    table = tmp_path / "prompts.csv"
    table.write_text("source,other\n" + "".join(f"{p},x\n" for p in PROMPTS))
    target = tmp_path / "generated.csv"
    result = generative.predict(run, str(table), str(target), batch_size=2,
                                verbose=0)
    assert header(target) == ["input", "generated", "error"]
    rows = read_csv(target)
    assert [r["input"] for r in rows] == PROMPTS
    # kerasft.generate adds the run's task_prefix too: the same texts.
    assert [r["generated"] for r in rows] == generation.generate(str(out), PROMPTS)
    assert result.files == [str(target)]
    with pytest.raises(ValueError, match="`top_k` ranks classes"):
        generative.predict(run, str(table), str(target), top_k=3)
    from kerasft.exporting import export

    with pytest.raises(ValueError, match=r"seq2seq run .* `kerasft generate"):
        export(str(out), str(tmp_path / "saved"))


@pytest.mark.slow
def test_causal_lm_continues_each_line(tmp_path, capsys):
    from tests.recipes.causal_lm_data import counting_corpus, tiny_gpt2, write_folder

    folder = write_folder(tmp_path / "corpus", counting_corpus(40), per_file=10)
    out = tmp_path / "run"
    recipes.causal_lm(train=folder, backbone=tiny_gpt2(), sequence_length=16,
                      epochs=1, batch_size=8, output_dir=str(out), **FAST)
    run = load(out, "causal_lm")
    lines = tmp_path / "prompts.txt"
    lines.write_text("\n".join(PROMPTS) + "\n")
    target = tmp_path / "generated.csv"
    generative.predict(run, str(lines), str(target), verbose=0)
    rows = read_csv(target)
    assert [r["generated"] for r in rows] == generation.generate(str(out), PROMPTS)
    assert all(r["generated"].startswith(r["input"]) for r in rows)
    from kerasft import cli

    assert cli.main(["export", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "causal_lm run" in err[0], err
    assert "`kerasft generate" in err[0]
