"""The sample payload `jobmon demo` submits (``process_events.py``)."""

from pathlib import Path

SCRIPT = Path(__file__).with_name("process_events.py")
