"""The interpreter's tests (no Redis)."""
