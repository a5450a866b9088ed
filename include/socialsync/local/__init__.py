"""Running socialsync on one machine: the Astronomer settings file, the demo, the local Airflow."""
