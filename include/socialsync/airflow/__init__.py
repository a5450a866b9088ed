"""The only corner of socialsync that imports Airflow: task callables, connections, sensor, trigger."""
