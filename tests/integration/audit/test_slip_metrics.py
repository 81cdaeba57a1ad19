"""``slip_metrics``: the companion metrics of docs/rules.md's precise definitions."""

from __future__ import annotations

from datetime import date

from sfsync.audit import slip_metrics
from sfsync.config import AuditSettings
from tests.integration.audit.load import load_org, new_warehouse
from tests.unit.audit.org import Org

TODAY = date(2024, 8, 15)


def test_days_open_and_stage_changes_for_closed_reopened_and_snapshot_only_deals(
    db_url: str,
) -> None:
    org = Org.standard()
    closed_twice = org.opportunity(
        stage="Closed Won",
        created="2024-01-01T10:00:00",
        close_date="2024-06-01",
        history=(
            ("2024-01-01T10:00:00", "2024-03-31", "Create"),
            ("2024-03-01T10:00:00", "2024-03-31", "Closed Lost"),
            ("2024-04-01T10:00:00", "2024-05-31", "Qualify"),
            ("2024-06-01T10:00:00", "2024-06-01", "Closed Won"),
        ),
    )
    reopened = org.opportunity(
        stage="Qualify",
        created="2024-01-01T10:00:00",
        close_date="2024-09-30",
        history=(
            ("2024-01-01T10:00:00", "2024-03-31", "Create"),
            ("2024-03-01T10:00:00", "2024-03-31", "Closed Lost"),
            ("2024-04-01T10:00:00", "2024-05-31", "Qualify"),
            # An amount change: same stage, same month; not a stage change.
            ("2024-04-20T10:00:00", "2024-05-02", "Qualify"),
        ),
    )
    never_changed = org.opportunity(
        stage="Create",
        created="2024-08-05T10:00:00",
        close_date="2024-12-31",
        history=(("2024-08-05T10:00:00", "2024-10-31", "Create"),),
    )
    snapshots_only = org.opportunity(
        stage="Develop",
        created="2024-02-01T10:00:00",
        close_date="2024-11-15",
        snapshots=(
            ("2024-06-01", "2024-07-31", "Qualify"),
            ("2024-07-01", "2024-09-30", "Develop"),
            ("2024-08-01", "2024-10-31", "Develop"),
        ),
    )
    warehouse = new_warehouse(db_url)
    load_org(warehouse, org)
    settings = AuditSettings()
    open_only = {m.opportunity_id: m for m in slip_metrics(warehouse, settings, TODAY)}
    assert set(open_only) == {reopened, never_changed, snapshots_only}
    every = {
        m.opportunity_id: m for m in slip_metrics(warehouse, settings, TODAY, include_closed=True)
    }
    warehouse.dispose()

    assert every[closed_twice].days_open == (date(2024, 6, 1) - date(2024, 1, 1)).days
    assert every[closed_twice].days_since_stage_change == (TODAY - date(2024, 6, 1)).days
    assert every[closed_twice].month_extensions == 2  # Mar -> May, May -> Jun

    assert open_only[reopened].days_open == (TODAY - date(2024, 1, 1)).days
    assert open_only[reopened].days_since_stage_change == (TODAY - date(2024, 4, 1)).days
    # 03-31, 03-31, 05-31, 05-02, then current 09-30: Mar->May and May->Sep.
    assert open_only[reopened].month_extensions == 2
    assert open_only[reopened].lower_bound is False

    assert open_only[never_changed].days_since_stage_change == 10
    assert open_only[never_changed].month_extensions == 1  # Oct -> Dec (the current value)

    # Jul -> Sep -> Oct -> Nov (current): 3 extensions, a lower bound; stage changed 07-01.
    assert open_only[snapshots_only].month_extensions == 3
    assert open_only[snapshots_only].lower_bound is True
    assert open_only[snapshots_only].source == "snapshots"
    assert open_only[snapshots_only].days_since_stage_change == (TODAY - date(2024, 7, 1)).days
