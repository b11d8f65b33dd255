"""Subscribers: the registry, bulk import, and the spatial index that answers "who is inside".

A library: it knows nothing of Kafka or HTTP.
"""
