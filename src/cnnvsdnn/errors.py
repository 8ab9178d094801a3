"""The errors a user can meet. Each carries its exit code (SPEC section 9).

Raise these with a one-line message that says what is wrong and how to fix it; the CLI prints
``cnnvsdnn: error: <message>`` on stderr and exits with ``exit_code``, without a traceback.
"""


class CnnvsdnnError(Exception):
    """A failure during work (exit code 1)."""

    exit_code = 1


class ConfigError(CnnvsdnnError):
    """A bad config value or command-line argument (exit code 2)."""

    exit_code = 2


class DataError(CnnvsdnnError):
    """A dataset that is missing, corrupt or cannot be fetched (exit code 2)."""

    exit_code = 2
