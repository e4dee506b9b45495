"""`folder_trim_steps`: Hugging Face's offset trimming read from a folder.

A table of (tokenizer class, tokenizer.json post processor,
tokenizer_config.json) -> trimming passes, as transformers 5.25 sets them
up (checked against `AutoTokenizer` on fixture copies; the parity on the
whole corpus is in `test_byte_level_bpe.py`).
"""

import pytest

from kerasft.backbones._offsets import folder_trim_steps


def _byte_level(trim, prefix=False):
    return {"type": "ByteLevel", "add_prefix_space": prefix,
            "trim_offsets": trim, "use_regex": True}


_TEMPLATE = {"type": "TemplateProcessing", "single": [], "pair": [], "special_tokens": {}}
_ROBERTA = {"type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 0],
            "trim_offsets": True, "add_prefix_space": True}


@pytest.mark.parametrize(
    "tokenizer_class, post_processor, config, expected",
    [
        ("GPT2Tokenizer", None, None, ()),  # no tokenizer.json
        ("GPT2Tokenizer", _TEMPLATE, None, ()),
        ("GPT2Tokenizer", _byte_level(False), None, ()),  # OpenAI's gpt2
        ("GPT2Tokenizer", _byte_level(True), None, (False,)),
        ("GPT2Tokenizer", _byte_level(True, True), None, (True,)),
        ("GPT2Tokenizer", _ROBERTA, None, (True,)),
        ("GPT2Tokenizer", {"type": "Sequence", "processors": [_byte_level(True), _TEMPLATE]},
         None, (False,)),
        ("GPT2Tokenizer", {"type": "Sequence", "processors": [_byte_level(True),
                                                               _byte_level(True, True)]},
         None, (False, True)),
        # add_bos_token does not replace tokenizer.json's post processor.
        ("GPT2Tokenizer", _byte_level(True), {"add_bos_token": False}, (False,)),
        # RobertaProcessing without its trim fields is read as BertProcessing.
        ("GPT2Tokenizer", {"type": "RobertaProcessing", "sep": ["</s>", 2],
                           "cls": ["<s>", 0]}, None, ()),
        # RoBERTa/BART: tokenizer_config.json decides, tokenizer.json is ignored.
        ("BartTokenizer", None, None, (False,)),
        ("BartTokenizer", _byte_level(False), None, (False,)),
        ("RobertaTokenizer", _TEMPLATE, {"trim_offsets": False}, ()),
        ("RobertaTokenizer", None, {"add_prefix_space": True}, (True,)),
        # tokenizer_config.json's tokenizer_class names the class.
        ("GPT2Tokenizer", _byte_level(False), {"tokenizer_class": "RobertaTokenizer"}, (False,)),
        ("BartTokenizer", _byte_level(False), {"tokenizer_class": "PreTrainedTokenizerFast"}, ()),
    ],
)
def test_folder_trim_steps(tokenizer_class, post_processor, config, expected):
    spec = None if post_processor is None else {"post_processor": post_processor}
    assert folder_trim_steps(tokenizer_class, spec, config) == expected


def test_unknown_or_incomplete_post_processors_are_refused():
    with pytest.raises(ValueError, match="type='Mystery'"):
        folder_trim_steps("GPT2Tokenizer", {"post_processor": {"type": "Mystery"}})
    with pytest.raises(ValueError, match="must set `trim_offsets`"):
        folder_trim_steps("GPT2Tokenizer", {"post_processor": {"type": "ByteLevel"}})
