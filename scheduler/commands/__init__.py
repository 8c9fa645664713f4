"""The command line: one module per command; each parses its options, calls a use case and
renders the result. :mod:`scheduler.commands.main` holds the entry points."""
