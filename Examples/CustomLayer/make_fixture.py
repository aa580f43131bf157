#!/usr/bin/env python3
"""Makes fixture/: a real Keras model with the custom layer my_layers>ScaledTanh, exported.

    python3 Examples/CustomLayer/make_fixture.py     (needs tensorflow-cpu==2.20.0 safetensors)
"""
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras  # noqa: E402
from keras_export import export_model  # noqa: E402


@keras.saving.register_keras_serializable(package="my_layers")
class ScaledTanh(keras.layers.Layer):
    """y = scale * tanh(alpha * x), alpha a trained weight per feature."""

    def __init__(self, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale

    def build(self, input_shape):
        self.alpha = self.add_weight(name="alpha", shape=(input_shape[-1],), initializer="ones")

    def call(self, x):
        return self.scale * keras.ops.tanh(self.alpha * x)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


keras.utils.set_random_seed(7)
model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8), ScaledTanh(scale=2.5), keras.layers.Dense(3, activation="softmax")])
rng = np.random.default_rng(7)
for v in model.variables:
    v.assign(rng.normal(0, 0.8, size=v.shape).astype("float32"))
x = rng.normal(0, 1, size=(5, 6)).astype("float32")
export_model(model, os.path.join(HERE, "fixture"), sample_input=x)
print("wrote", os.path.join(HERE, "fixture"))
