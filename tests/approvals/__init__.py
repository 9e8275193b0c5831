"""Approval pages, forms, links and email; the browser test."""
