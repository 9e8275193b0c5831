"""Task resources' tests."""
