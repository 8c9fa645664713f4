"""review-scheduler: keep patient-facing health information reviewed on time.

The package reads as a one-way pipeline, one module per stage:
files (loader) -> metadata (metadata, cadence) -> review state (review, routing)
-> report (report) / reminders (reminders, mail) -> delivery (mail, state).
"""

from __future__ import annotations

__version__ = "0.1.0"
