"""Embedded services for local runs and tests: PostgreSQL with pgvector and a private Redis.

Nothing here imports Django: settings ask these modules *where* the servers live, and the run command and the
test suite start them before Django connects.
"""
