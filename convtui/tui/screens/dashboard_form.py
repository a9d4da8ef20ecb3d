"""The training form: one field per TrainConfig setting, derived from the dataclass (its single source of
defaults), so the app, the CLI and the saved config.json can never disagree about names or defaults."""

from __future__ import annotations

from dataclasses import fields

from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Input, Label, Select

from convtui.core.training.config import PRESET_FIELDS, PRESETS, ConfigError, TrainConfig

# The settings a learner changes from the app, in the order the form shows them.
TRAIN_FIELDS = {f.name: f for f in fields(TrainConfig)}
# A class-length run (stop when the time budget runs out) is shown once TrainConfig has the field.
FORM_FIELDS = ("model", "epochs", "batch_size", "lr", "optimizer", "schedule", "decay", "dropout", "seed", "limit",
               *(("time_budget",) if "time_budget" in TRAIN_FIELDS else ()))
PLACEHOLDERS = {"limit": "all", "time_budget": "off, e.g. 5 min"}  # what an empty field means
DURATION_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}


def field_text(value) -> str:
    return "" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def parse_field(name: str, text: str):
    """Text of an Input -> the field's type; empty means "the default" (None). Raises ConfigError."""
    text = text.strip()
    if not text:
        return None
    if name == "time_budget":
        return parse_duration(text)
    kind = TRAIN_FIELDS[name].metadata["kind"]
    try:
        return kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise ConfigError(f"{field_label(name)} must be {what}, not {text!r}") from None  # the form's words


def parse_duration(text: str) -> int:
    """"5 min", "90 s", "1h" or a bare number of seconds (as TrainConfig and the CLI take it) -> seconds."""
    number, unit = text.rstrip("abcdefghijklmnopqrstuvwxyz ").strip(), text.lstrip("0123456789. ").strip()
    try:
        return int(round(float(number) * DURATION_UNITS[unit or "s"]))  # TrainConfig counts whole seconds
    except (ValueError, KeyError):
        raise ConfigError(f"{field_label('time_budget')} must be a duration such as 5 min or 90 s, "
                          f"not {text!r}") from None


def shown_text(name: str, value) -> str:
    """A field's value as the form shows it: a time budget in minutes when whole ("5 min")."""
    if name == "time_budget" and value is not None:
        return f"{value / 60:g} min" if value % 60 == 0 else f"{value:g} s"
    return field_text(value)


def form_message(exc: ConfigError) -> str:
    """The form's wording of a config problem: the field as the form labels it, the value, and the rule."""
    if exc.setting is None or exc.setting not in FORM_FIELDS:
        return str(exc)
    return f"{field_label(exc.setting)} {exc.value}: {exc.rule}"


def field_label(name: str) -> str:
    return "budget" if name == "time_budget" else name.replace("_", " ")


class TrainForm(VerticalScroll):
    """Inputs and selects for the FORM_FIELDS; `config()` validates them into a TrainConfig."""

    DEFAULT_CSS = """
    TrainForm { width: 36; height: 1fr; padding: 0 1; border-right: vkey $primary-darken-2; }
    TrainForm .form-row { height: 1; margin-bottom: 1; }
    TrainForm .form-row Label { width: 11; color: $text-muted; }
    TrainForm .form-row Input, TrainForm .form-row Select { width: 1fr; }
    TrainForm #form-start { width: 100%; }
    TrainForm #form-error { color: $error; margin-top: 1; width: 100%; }
    """

    class StartRequested(Message):
        """Enter in a field or the Start button."""

    def __init__(self, initial: TrainConfig | None = None, **kwargs):
        super().__init__(**kwargs)
        self.initial = initial or TrainConfig.for_model("cnn")
        self._model = self.initial.model
        # What the form itself last put in each field: a field whose text differs was typed by the learner, and
        # a new preset must not overwrite it (changing the model after typing epochs 3 keeps the 3).
        self.filled: dict[str, object] = {}

    def compose(self) -> ComposeResult:
        for name in FORM_FIELDS:
            spec = TRAIN_FIELDS[name]
            value = getattr(self.initial, name)
            choices, help_text = spec.metadata.get("choices"), spec.metadata.get("help")
            with Horizontal(classes="form-row"):
                yield Label(field_label(name))
                if choices:
                    self.filled[name] = value
                    yield Select([(c, c) for c in choices], value=value, allow_blank=False, id=f"form-{name}",
                                 tooltip=help_text, compact=True)
                else:
                    self.filled[name] = shown_text(name, value)
                    yield Input(shown_text(name, value), placeholder=PLACEHOLDERS.get(name, ""),
                                id=f"form-{name}", tooltip=help_text, compact=True)
        yield Button("Start (ctrl+s)", id="form-start", variant="success", compact=True)
        yield Label("", id="form-error")

    def on_select_changed(self, event: Select.Changed) -> None:
        # Select also reports its first value on mount: only a real change of preset resets the fields.
        if event.select.id == "form-model" and isinstance(event.value, str) and event.value != self._model:
            self._model = event.value
            self.apply_preset(event.value)

    def apply_preset(self, model: str) -> None:
        """A new model preset brings its own lecture defaults (optimiser, lr, schedule, ...) into every field the
        learner has not typed in; a typed value stays."""
        preset = PRESETS[model]
        for name in PRESET_FIELDS:
            if name not in FORM_FIELDS:
                continue
            widget = self.query_one(f"#form-{name}")
            if widget.value != self.filled.get(name):
                continue  # the learner's own value
            value = getattr(preset, name)
            value = value if isinstance(widget, Select) else shown_text(name, value)
            widget.value = self.filled[name] = value

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.post_message(self.StartRequested())

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "form-start":
            event.stop()
            self.post_message(self.StartRequested())

    def config(self) -> TrainConfig:
        """The form as a validated config; raises ConfigError with a message for the user."""
        values = {}
        for name in FORM_FIELDS:
            widget = self.query_one(f"#form-{name}")
            values[name] = widget.value if isinstance(widget, Select) else parse_field(name, widget.value)
        model = values.pop("model")
        # Settings the form does not show (data folder, threads, ...) come from the initial config.
        hidden = {name: getattr(self.initial, name) for name in TRAIN_FIELDS if name not in FORM_FIELDS}
        return TrainConfig.for_model(model, **{**hidden, **values})

    def show_error(self, text: str) -> None:
        self.query_one("#form-error", Label).update(text)
