"""Built-in plugins, registered through the ``modelmon`` entry-point group
exactly like third-party ones (see ``pyproject.toml``)."""
