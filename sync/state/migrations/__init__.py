"""Alembic migrations of the state store (every table on ``sync.state.store.METADATA``).

``env.py`` runs on the connection ``sync/state/migrate.py`` hands it; ``versions/`` holds
one file per schema change, numbered ``0001``, ``0002``, ... (see docs/architecture.md).
"""
