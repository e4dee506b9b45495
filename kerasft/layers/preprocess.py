"""`Preprocess`: a family's `preprocess_input` as a serializable Keras layer."""

import warnings

import keras
import numpy as np
from keras import ops

from kerasft import _keras_compat

MODES = ("caffe", "tf", "torch", "none")

# The constants of `keras.applications.imagenet_utils.preprocess_input`.
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)


def looks_unit_scaled(max_abs, expected_max=255.0):
    """Whether values with largest magnitude `max_abs` look already scaled to
    [0, 1] (or [-1, 1]) for a model that expects values up to `expected_max`.
    """
    return expected_max > 1.0 and max_abs <= 1.0


def unit_scale_message(max_value, expected_range, who):
    """The warning text shared by `Preprocess` and `check_input_range`."""
    return (
        f"{who} received images whose largest value is {max_value:.4g}, but "
        f"it expects raw pixel values in the range {tuple(expected_range)}. "
        "The images look already scaled to [0, 1] (e.g. divided by 255): "
        "pass raw [0, 255] pixels, the model applies its own preprocessing. "
        "Scaling twice silently ruins accuracy."
    )


@keras.saving.register_keras_serializable(package="kerasft")
class Preprocess(keras.layers.Layer):
    """Reproduces `keras.applications.<family>.preprocess_input` in a model.

    Computes in float32 whatever the dtype policy (so `mixed_float16` or
    `mixed_bfloat16` do not round raw pixel values before scaling), then
    casts to the layer's compute dtype. Takes raw pixels in [0, 255] of any
    numeric dtype (`uint8` too). When called eagerly on images whose values
    all lie within [-1, 1], warns that they look already scaled (graph calls
    add no checks). Whether it warns depends only on the images of that
    call: no state is kept between calls, so checking one array never
    silences or triggers the warning for another.

    Args:
        mode: `"caffe"` (RGB -> BGR, minus the ImageNet mean per channel;
            ResNet50, VGG), `"tf"` (scale to [-1, 1]; MobileNetV2,
            Xception, ResNetV2), `"torch"` (scale to [0, 1], then normalize
            by the ImageNet mean and std; DenseNet) or `"none"` (identity;
            EfficientNet and ConvNeXt rescale inside the model). Defaults to
            `"none"`.
        data_format: `"channels_last"` or `"channels_first"`. Defaults to
            `None`, meaning `keras.config.image_data_format()`.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`).

    Example:

    >>> import numpy as np
    >>> layer = Preprocess("tf")
    >>> np.asarray(layer(np.array([[[[0.0, 127.5, 255.0]]]])))
    array([[[[-1.,  0.,  1.]]]], dtype=float32)
    """

    def __init__(self, mode="none", data_format=None, **kwargs):
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(
                f"`mode` must be one of {MODES}. Received: mode={mode!r}"
            )
        if data_format not in (None, "channels_last", "channels_first"):
            raise ValueError(
                "`data_format` must be None, 'channels_last' or "
                f"'channels_first'. Received: data_format={data_format!r}"
            )
        self.mode = mode
        self.data_format = data_format
        # Math runs in float32: keep Keras from casting raw pixels to the
        # compute dtype (float16/bfloat16) before `call`.
        _keras_compat.keep_input_dtype(self)

    def call(self, inputs):
        x = ops.cast(ops.convert_to_tensor(inputs), "float32")
        self._maybe_warn(x)
        data_format = self.data_format or keras.config.image_data_format()
        channel_axis = -1 if data_format == "channels_last" else 1
        if self.mode == "tf":
            x = x / 127.5
            x = x - 1.0
        elif self.mode == "torch":
            x = x / 255.0
            x = x + self._per_channel(-np.array(_TORCH_MEAN), x, channel_axis)
            x = x / self._per_channel(np.array(_TORCH_STD), x, channel_axis)
        elif self.mode == "caffe":
            x = ops.flip(x, axis=channel_axis)
            x = x + self._per_channel(
                -np.array(_CAFFE_MEAN_BGR), x, channel_axis
            )
        return ops.cast(x, self.compute_dtype)

    @staticmethod
    def _per_channel(values, x, channel_axis):
        shape = [1] * len(x.shape)
        shape[channel_axis] = len(values)
        return ops.reshape(ops.convert_to_tensor(values, "float32"), shape)

    def _maybe_warn(self, x):
        if not _executing_eagerly():
            return
        max_abs = float(ops.convert_to_numpy(ops.max(ops.abs(x))))
        if looks_unit_scaled(max_abs):
            max_value = float(ops.convert_to_numpy(ops.max(x)))
            warnings.warn(
                unit_scale_message(
                    max_value, (0, 255), f"Preprocess(mode={self.mode!r})"
                ),
                stacklevel=3,
            )

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(inputs.shape, dtype=self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update({"mode": self.mode, "data_format": self.data_format})
        return config


def _executing_eagerly():
    if keras.config.backend() != "tensorflow":
        return False
    import tensorflow as tf

    return tf.executing_eagerly()
