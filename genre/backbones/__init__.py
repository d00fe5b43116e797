"""Pretrained audio encoders ported to Keras 3 (see `genre.backbones.musicnn`)."""
