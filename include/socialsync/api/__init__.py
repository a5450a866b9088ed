"""The sync API and the jobs page, served by Airflow's API server through ``plugins/socialsync_plugin.py``."""
