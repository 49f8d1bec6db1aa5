"""The ``jobmon`` command: one module per command (``cmd_*.py``), wired in ``main.py``."""
