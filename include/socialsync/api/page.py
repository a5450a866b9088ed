"""The pages shown in Airflow's UI (plugin external views, rendered in the UI's frame).

``jobs.html``: Browse -> Sync jobs, each network's latest jobs. ``run.html``: the Sync jobs tab of a
DAG run, that run's jobs (any DAG's run shows the tab; a run of another DAG says so).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from jinja2 import DictLoader, Environment

_BASE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>socialsync: {{ title }}</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #1a202c; }
  h1 { font-size: 1.4rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
  table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
  th, td { text-align: left; padding: 0.3rem 0.6rem; border-bottom: 1px solid #e2e8f0; }
  th { background: #f7fafc; }
  .status { padding: 0.1rem 0.5rem; border-radius: 0.6rem; font-weight: 600; }
  .succeeded { background: #c6f6d5; } .failed { background: #fed7d7; } .partial { background: #fefcbf; }
  .running, .pending { background: #bee3f8; } .superseded, .skipped { background: #edf2f7; }
  .muted { color: #718096; } .error { color: #c53030; max-width: 30rem; }
</style>
</head>
<body>
{% block content %}{% endblock %}
</body>
</html>
"""

_MACROS = """
{% macro statuses(counts) -%}
  {% for status, count in counts | dictsort %}
    <span class="status {{ status }}">{{ count }} {{ status }}</span>
  {% else %}no jobs{% endfor %}
{%- endmacro %}

{% macro when(value) -%}{{ value.strftime("%Y-%m-%d %H:%M:%S") if value else "" }}{%- endmacro %}

{% macro jobs_table(jobs, dag_id, run_links) -%}
  <table>
    <thead><tr><th>Job</th><th>Profile</th><th>Status</th>{% if run_links %}<th>Run</th>{% endif %}
      <th>Continues</th><th>Started</th><th>Finished</th><th>Pages</th><th>Items</th><th>Units</th>
      <th>Error</th></tr></thead>
    <tbody>
    {% for job in jobs %}
    <tr data-job="{{ job.id }}">
      <td>{{ job.id }}</td><td>{{ job.entity_id }}</td>
      <td><span class="status {{ job.status }}">{{ job.status }}</span></td>
      {% if run_links %}<td>{% if job.run_id %}<a href="/dags/{{ dag_id }}/runs/{{ job.run_id | urlencode }}"
        target="_top">{{ job.run_id }}</a>{% endif %}</td>{% endif %}
      <td>{{ job.previous_job_id or "" }}</td>
      <td>{{ when(job.started_at) }}</td><td>{{ when(job.finished_at) }}</td>
      <td>{{ job.counts["pages"] }}</td><td data-testid="items">{{ job.counts["items"] }}</td>
      <td>{{ "%g" | format(job.units) if job.units is not none else "" }}</td>
      <td class="error">{{ job.error_type or "" }}
        {%- if job.error_message %}: {{ job.error_message[:200] }}{% endif %}</td>
    </tr>
    {% endfor %}
    </tbody>
  </table>
{%- endmacro %}
"""

_JOBS = """{% extends "base.html" %}{% from "macros.html" import statuses, jobs_table %}
{% block content %}
<h1>Recent sync jobs</h1>
<p class="muted">Each job is one profile in one run; the run link opens it in Airflow.
  As of {{ now.strftime("%Y-%m-%d %H:%M UTC") }}.</p>
{% for network in networks %}
<section data-network="{{ network.name }}">
  <h2>{{ network.name }} <a href="/dags/{{ network.dag_id }}" target="_top" class="muted">{{ network.dag_id }}</a></h2>
  <p data-testid="latest-run">{% if network.latest_run %}Latest run
    <a href="/dags/{{ network.dag_id }}/runs/{{ network.latest_run | urlencode }}"
      target="_top">{{ network.latest_run }}</a>:
    {{ statuses(network.latest) }}{% else %}No runs yet.{% endif %}</p>
  {% if network.jobs %}{{ jobs_table(network.jobs, network.dag_id, True) }}
  {% else %}<p class="muted">No jobs yet.</p>{% endif %}
</section>
{% else %}
<p>You may read none of the networks' DAGs.</p>
{% endfor %}
{% endblock %}
"""

_RUN = """{% extends "base.html" %}{% from "macros.html" import statuses, jobs_table %}
{% block content %}
{% if network is none %}
<p class="muted" data-testid="not-socialsync">{{ dag_id }} is not a socialsync sync DAG: its runs open no sync jobs.</p>
{% else %}
<h1>Sync jobs of this run</h1>
<p class="muted">{{ network.name }}, run {{ run_id }}; as of {{ now.strftime("%Y-%m-%d %H:%M:%S UTC") }}.</p>
<p data-testid="summary">{{ statuses(summary) }}</p>
{% if jobs %}{{ jobs_table(jobs, network.dag_id, False) }}
{% if more %}<p class="muted">The first {{ jobs | length }} jobs; the API lists them all:
  <code>/socialsync/v1/networks/{{ network.name }}/runs/{{ run_id }}/jobs</code></p>{% endif %}
{% else %}<p class="muted">No jobs yet: plan opens them when the run starts.</p>{% endif %}
{% endif %}
{% endblock %}
"""

_environment = Environment(
    loader=DictLoader({"base.html": _BASE, "macros.html": _MACROS, "jobs.html": _JOBS, "run.html": _RUN}),
    autoescape=True,
)


def render_jobs_page(networks: list[dict[str, Any]], now: datetime) -> str:
    return _environment.get_template("jobs.html").render(title="recent sync jobs", networks=networks, now=now)


def render_run_page(dag_id: str, run_id: str, network: dict[str, Any] | None, summary: dict[str, int],
                    jobs: list[dict[str, Any]], more: bool, now: datetime) -> str:
    return _environment.get_template("run.html").render(
        title=f"sync jobs of {run_id}", dag_id=dag_id, run_id=run_id, network=network, summary=summary, jobs=jobs,
        more=more, now=now)
