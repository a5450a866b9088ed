# Airflow DAGs of socialsync: per network in its registry, the daily sync and the rebuild-from-raw DAG.
# This is the one file a deployment adds to its DAGs folder (see the README's "Install into your Airflow").
from socialsync.dags import *  # noqa: F403
