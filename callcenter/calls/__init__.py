"""Calls: the call tracker (channels grouped by Linkedid) and the call log."""
