"""The reliability suite runs on the integration fixtures: a dev org, SQLite and PostgreSQL."""

from tests.integration.conftest import org_files, running_org

__all__ = ["org_files", "running_org"]
