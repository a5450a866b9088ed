# The Airflow image of the production stack: Airflow 3.3 with socialsync installed from this tree.
FROM apache/airflow:3.3.2-python3.11
COPY --chown=airflow:root pyproject.toml constraints.txt README.md /opt/socialsync/
COPY --chown=airflow:root include /opt/socialsync/include
# Editable (-e): Python imports socialsync from /opt/socialsync/include itself, so the ./include mount
# of docker-compose.yaml makes the working tree's code the live code (a restart picks up a change)
# and the image still runs on its own copy without the mount. The console script and the
# dependencies are installed as usual. Its entry points register the provider (connection types, hooks)
# and the plugin (the sync API, the jobs page): nothing goes into /opt/airflow/plugins.
RUN pip install --no-cache-dir -c /opt/socialsync/constraints.txt -e "/opt/socialsync[postgres,celery,sandbox]"
COPY --chown=airflow:root dags /opt/airflow/dags
