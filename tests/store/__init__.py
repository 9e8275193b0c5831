"""The store's tests: the stored record format."""
