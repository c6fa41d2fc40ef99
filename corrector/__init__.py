"""The error loop: feedback on recorded answers, protocol changes proposed on git branches, review, and audit views."""
