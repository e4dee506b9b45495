import keras
import numpy as np
import pytest

from kerasft import heads


def _all_heads():
    return [
        heads.classification(3, hidden_units=(8,)),
        heads.classification(1, hidden_units=(8,)),
        heads.multilabel(3, hidden_units=(8,)),
        heads.regression(2, hidden_units=(8,)),
        heads.detection(3, conv_filters=(8,), hidden_units=(8,)),
    ]


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_outputs_are_float32_under_mixed_precision(policy):
    keras.mixed_precision.set_global_policy(policy)
    x = np.random.rand(2, 4, 4, 8).astype("float32")
    for head in _all_heads():
        inputs = keras.Input((4, 4, 8))
        model = keras.Model(inputs, head(inputs))
        assert model.get_layer("head_dense_0").compute_dtype == policy[6:]
        for tensor in keras.tree.flatten(model.output):
            assert tensor.dtype == "float32"
        for array in keras.tree.flatten(model.predict(x, verbose=0)):
            assert array.dtype == np.float32


def test_base_head_needs_call_and_loss():
    head = heads.Head(name="mine")
    with pytest.raises(NotImplementedError):
        head(keras.Input((3,)))
    with pytest.raises(NotImplementedError):
        head.compile_kwargs()
    assert head.get_config() == {"name": "mine"}
