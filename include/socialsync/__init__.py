"""socialsync: a daily, resumable copy of social-network data, orchestrated by Apache Airflow 3."""

from __future__ import annotations

__version__ = "0.1.0"
