"""`CaptionGenerator`: greedy and beam-search captions from a caption model.

The model of `kerasft.heads.captioning.caption_model` is cut at its
encoder tokens (its nested `caption_decoder` model is the rest): the
encoder runs once per image batch, then KerasHub's
`GreedySampler` / `BeamSampler` extend `[START]` one token at a time,
calling the decoder on the prompt so far (the encoder tokens travel as the
samplers' cache, so beams repeat and reorder them), until every caption
has produced `[END]` or `max_length` tokens. The whole loop is one
`tf.function` per sampler.
"""

import keras
import numpy as np

from kerasft.heads.captioning import (
    DECODER,
    END,
    ENCODER_TOKENS,
    START,
    decode_captions,
)

__all__ = ["CaptionGenerator"]


class CaptionGenerator:
    """Captions images with a trained caption model and its tokenizer.

    Args:
        model: a model made by `caption_model` (or loaded from its `.keras`
            file).
        tokenizer: the run's `caption_tokenizer`.

    Example:
    ```python
    generator = CaptionGenerator(model, tokenizer)
    generator.caption(images)                # greedy
    generator.caption(images, num_beams=3)   # beam search
    ```
    """

    def __init__(self, model, tokenizer):
        import tensorflow as tf

        try:
            encoded = model.get_layer(ENCODER_TOKENS).output
        except ValueError:
            raise ValueError(
                "`model` must be a caption model (kerasft.heads.captioning."
                f"caption_model): it has no layer {ENCODER_TOKENS!r}."
            ) from None
        inputs = model.input
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = int(inputs["tokens"].shape[1])
        self.encoder = keras.Model(inputs["image"], encoded)
        self.decoder = model.get_layer(DECODER)
        self.start_id = tokenizer.token_to_id(START)
        self.end_id = tokenizer.token_to_id(END)
        self._functions = {}
        self._tf = tf

    def _function(self, num_beams):
        if num_beams in self._functions:
            return self._functions[num_beams]
        import keras_hub

        tf = self._tf
        if num_beams == 1:
            sampler = keras_hub.samplers.GreedySampler()
        else:
            sampler = keras_hub.samplers.BeamSampler(num_beams=num_beams)
        length = self.max_length

        def next_token(prompt, cache, index):
            logits = self.decoder(
                {"encoder_tokens": cache, "tokens": prompt}, training=False
            )
            return logits[:, index - 1, :], None, cache

        shape = tuple(self.encoder.input_shape[1:])

        @tf.function(input_signature=[tf.TensorSpec((None, *shape), tf.float32)])
        def generate(images):
            encoded = self.encoder(images, training=False)
            batch = tf.shape(images)[0]
            prompt = tf.concat([
                tf.fill([batch, 1], self.start_id),
                tf.zeros([batch, length - 1], tf.int32),
            ], axis=1)
            mask = tf.concat([
                tf.ones([batch, 1], tf.bool), tf.zeros([batch, length - 1], tf.bool)
            ], axis=1)
            return sampler(next_token, prompt, cache=encoded, index=1,
                           mask=mask, stop_token_ids=[self.end_id])

        self._functions[num_beams] = generate
        return generate

    def generate_ids(self, images, num_beams=1):
        """Token ids `[n, max_length]` (`[START]` first) for a batch of raw
        images (the model's input range, usually [0, 255])."""
        if isinstance(num_beams, bool) or not isinstance(num_beams, int) or (
            num_beams < 1
        ):
            raise ValueError(
                "`num_beams` must be a positive integer. Received: "
                f"num_beams={num_beams!r}"
            )
        images = self._tf.convert_to_tensor(images, self._tf.float32)
        return np.asarray(self._function(num_beams)(images))

    def caption(self, images, num_beams=1, batch_size=32):
        """Captions (strings) of `images`: an array `[n, h, w, 3]`, or a
        `tf.data.Dataset` of image batches.

        Args:
            images: raw images, or a dataset yielding batches of them.
            num_beams: 1 for greedy decoding, more for beam search.
                Defaults to `1`.
            batch_size: images per call for arrays. Defaults to `32`.

        Returns:
            A list of strings, one per image.
        """
        if isinstance(images, self._tf.data.Dataset):
            batches = images
        else:
            images = np.asarray(images, "float32")
            if images.ndim == 3:
                images = images[None]
            batches = [images[i:i + batch_size]
                       for i in range(0, len(images), batch_size)]
        out = []
        for batch in batches:
            out.extend(decode_captions(
                self.tokenizer, self.generate_ids(batch, num_beams)
            ))
        return out
