"""Data shipped with geo: the rail sample and an approximate country outline."""
