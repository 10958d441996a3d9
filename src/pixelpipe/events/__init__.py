"""Live events: fan-out of "job X changed" notifications to SSE streams."""

from pixelpipe.events.base import Notifier
from pixelpipe.events.local import LocalNotifier

__all__ = ["LocalNotifier", "Notifier"]
