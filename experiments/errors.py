"""The experiments' errors: part of the sandbox's one exception family, so the CLI prints them as one line."""
from synthetic_data.errors import ZandbakError


class ExperimentError(ZandbakError):
    """An experiment cannot be found, declared, scaffolded or run as asked. The message says what and what is allowed."""


class PredictionError(ExperimentError):
    """An experiment's predictions do not have the task's shape: a missing or extra column, a wrong type or value,
    a missing, extra or repeated row."""


class ExperimentWarning(UserWarning):
    """A file under teams/ declares an experiment that cannot be used; discovery skips it and goes on."""
