"""The package's public names are pinned, so they cannot drift by accident."""

import jobs


def test_public_names_are_exactly_these() -> None:
    """`jobs.__all__` lists the supported API and every name in it exists."""
    assert sorted(jobs.__all__) == sorted(
        [
            "NO_RETRY",
            "ConfigurationError",
            "Cron",
            "FamilyWorkerSettings",
            "JobArgumentsError",
            "JobContext",
            "JobSpec",
            "JobsError",
            "JobsPool",
            "PermanentJobError",
            "RetryPolicy",
            "Settings",
            "TransientJobError",
            "UnknownJobError",
            "UnstorableTextError",
            "WorkerClients",
            "all_jobs",
            "create_pool",
            "declare_family",
            "get_job",
            "get_settings",
            "job",
            "load_settings",
        ]
    )
    assert all(hasattr(jobs, name) for name in jobs.__all__)
