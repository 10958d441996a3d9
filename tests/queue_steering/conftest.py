from tests.jobs.conftest import notifier, sql_store, store  # noqa: F401 - every store runs these
