"""The one source of training defaults: `TrainConfig`, plus each model preset's defaults from the lecture.

The CLI builds its flags from `TrainConfig`'s fields (their `metadata` holds help text and choices), the app's
form reads the same fields, and every run saves `config.to_dict()` as `config.json`. A value left as `None`
when calling `TrainConfig.for_model` takes the preset's default.

Where the lecture (`cnn-lecture.txt`) gives a setting, the preset quotes it:
- softmax (lines 230-262): `optimizer='sgd'` (plain SGD, no momentum), `batch_size=100, epochs=10`.
  Learning rate 0.1, not Keras's default 0.01: the lecture's code feeds raw 0-255 pixels, where 0.01 is a big
  step; we scale pixels to [0, 1] (as the tensorflow-without-a-phd source does), which shrinks each step's
  effect on the logits 255^2-fold. Measured on full MNIST, 10 epochs: 90.3% at 0.01, 92.2% at 0.1.
- mlp-sigmoid (lines 266-276): five sigmoid layers, the compile call unchanged, so still plain SGD at 0.1.
  It learns slowly on purpose (11% after epoch 1, ~86% after 10): the lecture's next step fixes that.
- mlp-relu (lines 280-295): He init, the Adam optimiser (Keras default lr 0.001) and ReLU.
- mlp (lines 327-379): Dense 128 he_normal ReLU, Dropout 0.2, Adam, `lr_decay(epoch) = 0.01 * 0.6**epoch`
  with no floor, `batch_size=100, epochs=10`.
- cnn (lines 1700-1790): the architecture only; the lecture shows no compile call, so it continues the lecture's
  last recipe (Adam + the 0.6**epoch decay) from Adam's own default lr 0.001, as a conv net with a 1024-unit
  dense layer is unstable at Adam lr 0.01.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace

from convtui.core.errors import UsageError
from convtui.runtime import MAX_THREADS

MODELS = ("softmax", "mlp-sigmoid", "mlp-relu", "mlp", "cnn")
OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("constant", "decay")


class ConfigError(UsageError, ValueError):
    """A setting outside its allowed range. The message names the concept ("learning rate -1.0 is invalid: must
    be a number above 0"); `setting`, `value` and `rule` let each face say it in its own words (the CLI names
    the flag, the app's form the field)."""

    def __init__(self, message: str, setting: str | None = None, value=None, rule: str | None = None):
        super().__init__(message)
        self.setting, self.value, self.rule = setting, value, rule


@dataclass(frozen=True)
class Preset:
    """A model's defaults, each taken from the lecture (see the module docstring for line numbers)."""

    optimizer: str
    lr: float
    schedule: str
    dropout: float = 0.0
    epochs: int = 10
    batch_size: int = 100


PRESETS: dict[str, Preset] = {
    "softmax": Preset(optimizer="sgd", lr=0.1, schedule="constant"),
    "mlp-sigmoid": Preset(optimizer="sgd", lr=0.1, schedule="constant"),
    "mlp-relu": Preset(optimizer="adam", lr=0.001, schedule="constant"),
    "mlp": Preset(optimizer="adam", lr=0.01, schedule="decay", dropout=0.2),
    "cnn": Preset(optimizer="adam", lr=0.001, schedule="decay"),
}

# Fields the preset fills in when the caller leaves them as None.
PRESET_FIELDS = ("optimizer", "lr", "schedule", "dropout", "epochs", "batch_size")


def _opt(help_text: str, label: str, kind=str, low=None, high=None, **extra) -> dict:
    """Field metadata: help text, the concept's name in messages, the value's type and its inclusive range."""
    return {"help": help_text, "label": label, "kind": kind, "low": low, "high": high, **extra}


MAX_EPOCHS, MAX_BATCH, MAX_COUNT, MAX_SEED, MAX_LR = 10_000, 65_536, 10 ** 9, 2 ** 63 - 1, 1e6
MAX_BUDGET = 7 * 24 * 3600  # seconds


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run's numbers. Frozen: change it with `dataclasses.replace`."""

    model: str = field(default="cnn", metadata=_opt("model preset, in the lecture's order", "model",
                                                     choices=MODELS))
    epochs: int = field(default=10, metadata=_opt("total number of epochs (a resumed run continues up to it)",
                                                  "epochs", int, 1, MAX_EPOCHS))
    batch_size: int = field(default=100, metadata=_opt("images per training step", "batch size", int, 1, MAX_BATCH))
    lr: float = field(default=0.001, metadata=_opt("learning rate (the first epoch's, under decay)",
                                                   "learning rate", float, 0.0, MAX_LR))
    optimizer: str = field(default="adam", metadata=_opt("optimiser", "optimiser", choices=OPTIMIZERS))
    schedule: str = field(default="decay", metadata=_opt(
        "learning-rate schedule: constant, or decay = lr * DECAY**epoch", "schedule", choices=SCHEDULES))
    decay: float = field(default=0.6, metadata=_opt("decay factor per epoch under --schedule decay",
                                                    "decay factor", float, 0.0, 1.0))
    momentum: float = field(default=0.0, metadata=_opt("SGD momentum (0 = plain SGD, as in the lecture)",
                                                       "momentum", float, 0.0, 1.0))
    dropout: float = field(default=0.0, metadata=_opt(
        "dropout rate before the last dense layer (the mlp preset has 0.2; 0 = none)", "dropout rate", float,
        0.0, 1.0))
    seed: int = field(default=0, metadata=_opt("seed for initial weights, shuffling and dropout", "seed", int, 0,
                                               MAX_SEED))
    limit: int | None = field(default=None, metadata=_opt("train on the first N training images only",
                                                          "image limit", int, 1, MAX_COUNT))
    validate: bool = field(default=True, metadata=_opt("measure test-set loss and accuracy after each epoch",
                                                       "validation", bool))
    log_every: int = field(default=100, metadata=_opt(
        "steps between plain progress lines (non-terminal output)", "log interval", int, 1, MAX_COUNT))
    threads: int | None = field(default=None, metadata=_opt(
        "numeric threads (BLAS and Numba); default: all cores", "thread count", int, 1, MAX_THREADS))
    time_budget: int | None = field(default=None, metadata=_opt(
        "stop after this many seconds of training, validate and save (a class-length run, e.g. 300); "
        "default: no limit", "time budget", int, 1, MAX_BUDGET))
    data: str | None = field(default=None, metadata=_opt(
        "folder of MNIST-layout IDX files (e.g. Fashion-MNIST); default: the bundled MNIST", "data folder"))

    @classmethod
    def for_model(cls, model: str = "cnn", **overrides) -> "TrainConfig":
        """The preset's defaults for `model`, with every override that is not None applied on top."""
        if model not in PRESETS:
            raise ConfigError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
        preset = PRESETS[model]
        unknown = set(overrides) - {f.name for f in fields(cls)}
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        values = {name: getattr(preset, name) for name in PRESET_FIELDS}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(model=model, **values).validated()

    def validated(self) -> "TrainConfig":
        """Return self if every value has its field's type and range, else raise ConfigError naming it."""
        if self.model not in PRESETS:
            raise ConfigError(f"unknown model {self.model!r}; choose one of {', '.join(MODELS)}", "model",
                              self.model, f"choose one of {', '.join(MODELS)}")
        for f in fields(self):
            problem = field_problem(f, getattr(self, f.name))
            if problem is not None:
                value = getattr(self, f.name)
                shown = shown_value(repr(value) if isinstance(value, str) and f.metadata["kind"] is not str else value)
                raise ConfigError(f"{f.metadata['label']} {shown} is invalid: {problem}", f.name, value, problem)
        return self

    def learning_rate(self, epoch: int) -> float:
        """The learning rate for a 0-based epoch. Under decay: lr(epoch) = lr0 * 0.6**epoch (lecture line 344)."""
        if self.schedule == "decay":
            return self.lr * self.decay ** epoch
        return self.lr

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """Rebuild a saved config; settings this version does not know are ignored, missing ones take defaults."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known}).validated()

    def with_overrides(self, **overrides) -> "TrainConfig":
        """A copy with every override that is not None applied (used when resuming with new flags)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None}).validated()


def field_problem(f, value) -> str | None:
    """Why `value` does not fit field `f` (type, choices, range), or None when it does. The one check behind the
    config, the CLI's flags and the app's form."""
    meta = f.metadata
    if value is None and f.default is None:
        return None
    if meta.get("choices") and value not in meta["choices"]:
        return f"choose one of {', '.join(meta['choices'])}"
    kind, low, high = meta.get("kind", str), meta.get("low"), meta.get("high")
    if kind is bool:
        return None if isinstance(value, bool) else "must be true or false"
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            return f"must be a whole number from {low} to {high:,}"
    elif kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or abs(value) > 1e308 \
                or not math.isfinite(value):  # the size check first: math.isfinite(10**400) overflows
            return "must be a number"
        if f.name == "lr" and not 0.0 < value <= high:
            return f"must be a number above 0 and at most {high:g}"
        if f.name == "decay" and not 0.0 < value <= 1.0:
            return "must be above 0 and at most 1"
        if f.name in ("momentum", "dropout") and not 0.0 <= value < 1.0:
            return "must be at least 0 and below 1"
    elif not isinstance(value, str):
        return "must be text"
    return None


def shown_value(value) -> str:
    """A value as a message quotes it: a file from elsewhere may hold a 400-digit number, so keep it short."""
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def config_field(name: str):
    """The dataclass field of TrainConfig called `name`."""
    return next(f for f in fields(TrainConfig) if f.name == name)
