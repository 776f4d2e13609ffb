"""A monitoring dashboard for operators, served by FastAPI (needs the ``web`` extra).

Pages: the overview (queues, workers, finished and failed work per family, the domains'
health, refreshed in place), each family's queue, a job, failed jobs, schedules, and sync
accounts with AI tasks. See :mod:`jobs.dashboard.app` for how to serve it and
:mod:`jobs.dashboard.security` for who may see it.
"""

from jobs.dashboard.app import create_dashboard, dashboard_router

__all__ = ["create_dashboard", "dashboard_router"]
