"""Subcommands of ``modelmon``: one module each, with ``register(subparsers)``.

A module adds its parser with ``help=`` (shown in ``modelmon --help``) and
``set_defaults(func=handler)``; ``handler(args) -> int`` is the exit status.
Group commands (``modelmon edge run``) set ``_parser`` to print their help
when called without a subcommand. Modules named ``_*`` are helpers, not commands.
"""
