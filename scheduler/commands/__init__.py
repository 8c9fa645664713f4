"""The command line: one module per command; each parses its options, calls a use case and
renders the result. :mod:`scheduler.commands.main` holds the entry points."""

from __future__ import annotations

import os

# The commands use no pydantic plugins, and looking for them reads the metadata of every
# installed distribution at each start (the first model built triggers it). A setting of the
# user's own is kept.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
