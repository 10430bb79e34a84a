"""Evaluation suites: data, metrics, the sequential protocol, reports."""
