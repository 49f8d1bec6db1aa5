"""Submit-file templates with the JobMon wrapper injected, and their renderer."""
