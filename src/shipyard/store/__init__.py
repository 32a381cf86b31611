"""Persistence: SQLAlchemy tables, repositories implementing ports.repositories, Alembic migrations."""
