"""An example backend that embeds the jobs: its own users and migrations, its own job family.

``examples.backend.app`` is its FastAPI app, ``examples.backend.reports`` its job family
(``arq examples.backend.reports.WorkerSettings``), ``examples.backend.models`` and
``examples/backend/migrations`` its own tables and Alembic history.
"""
