"""Persistence: SQLAlchemy tables, Alembic migrations and typed query functions.

Rows never leave this package: query functions return the frozen records of ``records.py``.
"""
