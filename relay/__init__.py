"""The JobMon relay: Clarens-compatible XML-RPC over HTTPS, mapping DNs to jobs."""
