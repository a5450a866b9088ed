"""Warehouse storage: tables, upserts and job bookkeeping (SQLAlchemy 2, SQLite or PostgreSQL)."""
