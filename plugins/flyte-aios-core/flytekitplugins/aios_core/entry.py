"""The ``aios`` console script: starts the CLI without pydantic's plugin discovery.

Pydantic looks for plugins in the entry points of every installed distribution when the first model is built: about
0.1 s of every command in an environment with flytekit and torch (214 distributions here), for plugins the CLI does not
use. The command sets ``PYDANTIC_DISABLE_PLUGINS=__all__`` for its own process unless the variable is set already:
``PYDANTIC_DISABLE_PLUGINS=`` (empty) keeps them on. Importing the pack as a library changes nothing.
"""

from __future__ import annotations

import os


def main() -> None:
    """Console-script entry point (:func:`flytekitplugins.aios_core.cli.main` after the setting above)."""
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    from flytekitplugins.aios_core.cli import main as cli_main

    cli_main()
