"""TrainConfig: the lecture's preset defaults, overrides, validation and the 0.6**epoch schedule."""

import json
import math

import pytest

from convtui.core.training.config import MODELS, PRESETS, ConfigError, TrainConfig


def test_presets_cover_every_model_in_lecture_order():
    assert MODELS == ("softmax", "mlp-sigmoid", "mlp-relu", "mlp", "cnn")
    assert set(PRESETS) == set(MODELS)


@pytest.mark.parametrize("model, optimizer, lr, schedule, dropout", [
    ("softmax", "sgd", 0.1, "constant", 0.0),       # lecture: optimizer='sgd' (lr for [0, 1] pixels)
    ("mlp-sigmoid", "sgd", 0.1, "constant", 0.0),   # same compile call, more layers
    ("mlp-relu", "adam", 0.001, "constant", 0.0),   # "better optimizer, e.g. Adam" (Keras default lr)
    ("mlp", "adam", 0.01, "decay", 0.2),            # lr_decay = 0.01 * 0.6**epoch, Dropout(0.2)
    ("cnn", "adam", 0.001, "decay", 0.0),
])
def test_preset_defaults(model, optimizer, lr, schedule, dropout):
    config = TrainConfig.for_model(model)
    assert (config.optimizer, config.lr, config.schedule, config.dropout) == (optimizer, lr, schedule, dropout)
    assert (config.epochs, config.batch_size) == (10, 100)  # model.fit(..., batch_size=100, epochs=10)
    assert config.momentum == 0.0 and config.decay == 0.6 and config.seed == 0 and config.validate


def test_overrides_win_and_none_keeps_the_preset():
    config = TrainConfig.for_model("mlp", epochs=3, lr=None, optimizer="sgd", limit=500)
    assert (config.epochs, config.lr, config.optimizer, config.limit) == (3, 0.01, "sgd", 500)


def test_lecture_decay_has_no_floor():
    config = TrainConfig.for_model("mlp")
    # def lr_decay(epoch): return 0.01 * math.pow(0.6, epoch)
    for epoch in range(12):
        assert config.learning_rate(epoch) == pytest.approx(0.01 * math.pow(0.6, epoch), rel=1e-12)
    assert config.learning_rate(9) == pytest.approx(1.00777e-4, rel=1e-4)
    constant = TrainConfig.for_model("softmax")
    assert [constant.learning_rate(e) for e in (0, 5)] == [0.1, 0.1]


@pytest.mark.parametrize("overrides, message", [
    ({"epochs": -1}, "epochs -1 is invalid"),
    ({"epochs": 0}, "epochs 0 is invalid"),
    ({"batch_size": 0}, "batch size 0 is invalid"),
    ({"lr": -1.0}, "learning rate -1.0 is invalid"),
    ({"lr": float("nan")}, "learning rate nan is invalid"),
    ({"limit": 0}, "image limit 0 is invalid"),
    ({"threads": 0}, "thread count 0 is invalid"),
    ({"dropout": 1.0}, "dropout rate 1.0 is invalid"),
    ({"momentum": -0.1}, "momentum -0.1 is invalid"),
    ({"decay": 0.0}, "decay factor 0.0 is invalid"),
    ({"seed": -3}, "seed -3 is invalid"),
    ({"optimizer": "rmsprop"}, "optimiser rmsprop is invalid"),
    ({"log_every": 0}, "log interval 0 is invalid"),
    ({"threads": 40000}, "thread count 40000 is invalid: must be a whole number from 1 to 256"),
    ({"epochs": "3"}, "epochs '3' is invalid"),
    ({"batch_size": 10 ** 7}, "batch size 10000000 is invalid"),
    ({"lr": 1e300}, "learning rate 1e\\+300 is invalid"),
])
def test_bad_values_name_the_concept(overrides, message):
    with pytest.raises(ConfigError, match=message) as caught:
        TrainConfig.for_model("mlp", **overrides)
    # Each face words it itself from these: the CLI names the flag, the app's form its field.
    setting = next(iter(overrides))
    assert caught.value.setting == setting and str(caught.value.value) == str(overrides[setting])
    assert caught.value.rule and caught.value.exit_code == 2


def test_unknown_model_and_setting():
    with pytest.raises(ConfigError, match="unknown model 'lenet'"):
        TrainConfig.for_model("lenet")
    with pytest.raises(ConfigError, match="unknown setting"):
        TrainConfig.for_model("mlp", colour="red")


def test_round_trip_through_json_and_frozen():
    config = TrainConfig.for_model("cnn", epochs=2, limit=1000, seed=7)
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(AttributeError):
        config.epochs = 3
    assert config.with_overrides(epochs=5, lr=None).epochs == 5


def test_from_dict_ignores_unknown_keys_from_newer_versions():
    values = TrainConfig.for_model("mlp").to_dict() | {"future_knob": 1}
    assert TrainConfig.from_dict(values).model == "mlp"
