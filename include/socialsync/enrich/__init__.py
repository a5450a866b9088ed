"""Enrichment: ML text analysis and image recognition through the external async job APIs."""
