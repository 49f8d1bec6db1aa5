"""The worker side: wrapper and daemon that run beside the payload. Standard library only, Python >= 3.6."""

__version__ = "0.1.0"
