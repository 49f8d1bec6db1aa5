"""What a pool admin installs on execute nodes: starter hooks, startd cron, USER_JOB_WRAPPER."""
