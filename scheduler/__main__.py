"""``python -m scheduler`` runs the ``review-scheduler`` command."""

from __future__ import annotations

from scheduler.commands.main import main

main()
