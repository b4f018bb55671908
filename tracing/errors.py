"""Errors a user can cause: each carries one line saying what happened and what to do."""


class UserError(Exception):
    """A failure caused by input or environment; printed as one line, never a traceback."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code
