"""The JobMon relay: Clarens-compatible XML-RPC over HTTPS, mapping DNs to jobs."""

__version__ = "0.1.0"
