"""Persistence: SQLAlchemy 2.0 async engine, declarative base, migrations."""
