"""The dispatch log: an append-only Merkle log (RFC 9162) with signed, witnessed checkpoints.

A library: it knows nothing of Kafka or HTTP.
"""
