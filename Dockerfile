# The Airflow image of the production stack: Airflow 3.3 with socialsync installed from this tree.
FROM apache/airflow:3.3.2-python3.11
COPY --chown=airflow:root pyproject.toml constraints.txt README.md /opt/socialsync/
COPY --chown=airflow:root include /opt/socialsync/include
RUN pip install --no-cache-dir -c /opt/socialsync/constraints.txt /opt/socialsync
COPY --chown=airflow:root dags /opt/airflow/dags
