"""Exception queue process API: the governed remediation queue (assign, resolve, retry) with history."""
