"""One exception family: the CLI turns these into a one-line message and exit code 2."""


class ZandbakError(Exception):
    """Base class of every user-facing error of the sandbox."""


class ConfigError(ZandbakError):
    """A configuration value is not allowed. The message names the option, the value and what is allowed."""

    def __init__(self, option: str, problem: str, allowed: str):
        self.option, self.problem, self.allowed = option, problem, allowed
        super().__init__(f"{option}: {problem}; allowed: {allowed}")


class DataError(ZandbakError):
    """An input file or table cannot be used (missing, wrong column, wrong type, not marked synthetic)."""
