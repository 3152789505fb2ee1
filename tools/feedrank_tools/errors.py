"""The tools' one error type."""


class ToolsError(Exception):
    """A failure with a stable code, a message that names the culprit (file, tensor, line,
    field) and whether retrying the same operation could help.

    Codes: "bad_argument" (a caller passed something invalid: shape, dtype, NaN, unknown
    category...), "bad_bundle" (a bundle on disk is malformed), "bad_event" (a user-activity
    record is malformed), "bad_state" (a user-state JSON document is malformed), "io" (a file
    could not be read or written; retryable).
    """

    def __init__(self, code: str, message: str, retryable: bool = False):
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable

    def __str__(self) -> str:
        return self.message
