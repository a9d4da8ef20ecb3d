"""Model presets: the lecture's architectures, shapes, parameter counts and seeding."""

import numpy as np
import pytest

from convtui.core.training.config import MODELS
from convtui.core.nn.layers import Dropout, Sigmoid
from convtui.core.nn.architectures import build_model, dropout_layers

# Parameter counts worked out by hand from the lecture's layer sizes.
EXPECTED_PARAMS = {
    "softmax": 784 * 10 + 10,
    "mlp-sigmoid": (784 * 200 + 200) + (200 * 100 + 100) + (100 * 60 + 60) + (60 * 30 + 30) + (30 * 10 + 10),
    "mlp-relu": (784 * 200 + 200) + (200 * 100 + 100) + (100 * 60 + 60) + (60 * 30 + 30) + (30 * 10 + 10),
    "mlp": (784 * 128 + 128) + (128 * 10 + 10),
    "cnn": (5 * 5 * 1 * 32 + 32) + (5 * 5 * 32 * 64 + 64) + (7 * 7 * 64 * 1024 + 1024) + (1024 * 10 + 10),
}


@pytest.mark.parametrize("name", MODELS)
def test_parameter_counts_match_the_lecture(name):
    model = build_model(name, seed=0)
    assert sum(p.value.size for p in model.params()) == EXPECTED_PARAMS[name]
    assert all(p.value.dtype == np.float32 for p in model.params())
    assert model.shapes()[-1][1] == (10,)


def test_cnn_feature_map_shapes_follow_the_lecture():
    shapes = [shape for _, shape in build_model("cnn", seed=0).shapes()]
    # [28,28,32] -> pool [14,14,32] -> [14,14,64] -> pool [7,7,64] -> 3136 -> 1024 -> 10 (lecture, CNN in TF 2-7)
    assert shapes == [(32, 28, 28), (32, 28, 28), (32, 14, 14), (64, 14, 14), (64, 14, 14), (64, 7, 7),
                      (3136,), (1024,), (1024,), (10,)]


def test_mlp_has_dropout_02_before_the_output_and_others_none():
    mlp = build_model("mlp", seed=0)
    assert [layer.rate for layer in dropout_layers(mlp)] == [0.2]
    assert isinstance(mlp.layers[-2], Dropout)
    assert dropout_layers(build_model("cnn", seed=0)) == []
    assert dropout_layers(build_model("mlp", seed=0, dropout=0.0)) == []
    assert [d.rate for d in dropout_layers(build_model("cnn", seed=0, dropout=0.5))] == [0.5]


def test_mlp_sigmoid_uses_sigmoid_hidden_layers():
    hidden = [type(layer) for layer in build_model("mlp-sigmoid", seed=0).layers if not hasattr(layer, "w")][1:]
    assert hidden == [Sigmoid] * 4


def test_same_seed_same_weights_other_seed_other_weights():
    a, b, c = (build_model("mlp", seed=s) for s in (3, 3, 4))
    for pa, pb, pc in zip(a.params(), b.params(), c.params()):
        assert pa.name == pb.name
        np.testing.assert_array_equal(pa.value, pb.value)
    assert not np.array_equal(a.params()[0].value, c.params()[0].value)


def test_dropout_rate_does_not_change_initial_weights():
    a, b = build_model("cnn", seed=1), build_model("cnn", seed=1, dropout=0.3)
    for pa, pb in zip(a.params(), b.params()):
        np.testing.assert_array_equal(pa.value, pb.value)


def test_param_names_are_unique_and_layer_named():
    names = [p.name for p in build_model("cnn", seed=0).params()]
    assert names == ["conv1.w", "conv1.b", "conv2.w", "conv2.b", "dense1.w", "dense1.b", "output.w", "output.b"]


def test_unknown_model_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown model 'resnet'"):
        build_model("resnet", seed=0)
