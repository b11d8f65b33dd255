"""Real services for the test session: Apache Kafka (KRaft), PostgreSQL + PostGIS, Chromium.

Each module starts one service on loopback ports chosen at run time, in a temporary directory,
and stops it without leaving processes or files behind. ``tests/conftest.py`` turns them into
session fixtures that start only when a test asks for them.
"""
