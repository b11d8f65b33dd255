"""Where could the child be now: geodesic discs, the reach model, search areas and rings.

A library: it knows nothing of Kafka or HTTP.
"""
