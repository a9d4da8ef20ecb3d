"""The CLI's wording of TrainConfig's checks: flags are named as the user typed them (`--lr -1.0 is invalid`).

The checks themselves live in `TrainConfig` (`field_problem`); this module only says them in the CLI's words.
"""

from __future__ import annotations

from convtui.core.errors import UsageError
from convtui.core.training.config import ConfigError, config_field, field_problem, shown_value


def check_flag(name: str, value):
    """`value` if it fits TrainConfig's field `name`, else a UsageError in the CLI's words. For the commands
    that take a setting before a config exists (eval's and bench's --threads)."""
    problem = field_problem(config_field(name), value)
    if problem is not None:
        raise UsageError(f"--{name.replace('_', '-')} {shown_value(value)} is invalid: {problem}")
    return value


def flag_message(exc: ConfigError) -> str:
    """The CLI's wording of a config problem: the flag and the value the user typed."""
    if exc.setting is None:
        return str(exc)
    return f"--{exc.setting.replace('_', '-')} {shown_value(exc.value)} is invalid: {exc.rule}"
