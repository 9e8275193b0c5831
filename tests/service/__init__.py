"""The service's tests, against real Redis servers."""
