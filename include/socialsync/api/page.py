"""The jobs page shown in Airflow's UI (a plugin external view, rendered in the UI's frame)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from jinja2 import Environment

_TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>socialsync: recent sync jobs</title>
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
<h1>Recent sync jobs</h1>
<p class="muted">Each job is one profile in one run; the run link opens it in Airflow.
  As of {{ now.strftime("%Y-%m-%d %H:%M UTC") }}.</p>
{% for network in networks %}
<section data-network="{{ network.name }}">
  <h2>{{ network.name }} <a href="/dags/{{ network.dag_id }}" target="_top" class="muted">{{ network.dag_id }}</a></h2>
  <p data-testid="last-day">Last 24 hours:
  {% for status, count in network.last_day | dictsort %}
    <span class="status {{ status }}">{{ count }} {{ status }}</span>
  {% else %}no jobs{% endfor %}
  </p>
  {% if network.jobs %}
  <table>
    <thead><tr><th>Job</th><th>Profile</th><th>Status</th><th>Run</th><th>Started</th><th>Finished</th>
      <th>Pages</th><th>Items</th><th>Error</th></tr></thead>
    <tbody>
    {% for job in network.jobs %}
    <tr data-job="{{ job.id }}">
      <td>{{ job.id }}</td><td>{{ job.entity_id }}</td>
      <td><span class="status {{ job.status }}">{{ job.status }}</span></td>
      <td>{% if job.run_id %}<a href="/dags/{{ network.dag_id }}/runs/{{ job.run_id | urlencode }}"
        target="_top">{{ job.run_id }}</a>{% endif %}</td>
      <td>{{ job.started_at.strftime("%Y-%m-%d %H:%M:%S") if job.started_at else "" }}</td>
      <td>{{ job.finished_at.strftime("%Y-%m-%d %H:%M:%S") if job.finished_at else "" }}</td>
      <td>{{ job.counts["pages"] }}</td><td data-testid="items">{{ job.counts["items"] }}</td>
      <td class="error">{{ job.error_type or "" }}
        {%- if job.error_message %}: {{ job.error_message[:200] }}{% endif %}</td>
    </tr>
    {% endfor %}
    </tbody>
  </table>
  {% else %}<p class="muted">No jobs yet.</p>{% endif %}
</section>
{% else %}
<p>You may read none of the networks' DAGs.</p>
{% endfor %}
</body>
</html>
"""

_environment = Environment(autoescape=True)
_page = _environment.from_string(_TEMPLATE)


def render_jobs_page(networks: list[dict[str, Any]], now: datetime) -> str:
    return _page.render(networks=networks, now=now)
