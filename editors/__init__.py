"""Editing methods behind one interface: MEMOIR first, baselines beside it."""
