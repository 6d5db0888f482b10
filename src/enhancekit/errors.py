"""The one exception type meant for users.

Library code raises :class:`EnhanceKitError` for anything a user can fix (a bad file, an unknown model name,
a missing weights file, mismatched sizes). The CLI catches it once and prints it as a single line.
"""


class EnhanceKitError(Exception):
    """An error caused by user input, printed by the CLI as one line without a traceback."""
