"""The HTTP API of the dispatch service."""
