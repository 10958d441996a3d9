"""Authentication, authorisation and start-up safety checks."""
