"""The dashboard's pages, one module each; each adds its routes to the dashboard's router."""

from jobs.dashboard.pages import accounts, failed, job, overview, queues, schedules, static

__all__ = ["PAGES"]

#: Every page module, in the order of the navigation.
PAGES = (overview, queues, job, failed, schedules, accounts, static)
