"""A crash loses no synced row: killed syncs, and the watermark never passing unread rows.

Every kill is at a named crash point or on a request the dev org holds.

The committed watermark never passes a row of the window that was not read.

A REST query cursor is a snapshot of *which* rows match, in ``(SystemModstamp, Id)``
order, but a page carries each row's values as of when the page is fetched. A rep
who edits a deal while the pull runs moves its ``SystemModstamp`` past the window's
upper bound, and that new value arrives at the deal's old position, ahead of rows
not yet read. If that value became the watermark, a crash (or a cursor restart)
would skip every row between the deal's old position and its new stamp, for good.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from sfsync.devorg._http import Request, Response
from sfsync.extract import run_sync
from sfsync.warehouse.models import Run
from tests.cli_helpers import run_sfsync
from tests.integration.conftest import OrgFactory, RunningOrg
from tests.integration.sync_helpers import mismatches, random_changes, settle
from tests.reliability.kills import CRASHED, KILLED, Gate, finish, sfsync_process

PAGE = 200
EDITED_AT = 1500  # the edited deal's position in the window's order: on the 8th page


def _edit_when_page_is_fetched(org: RunningOrg, offset: int) -> dict[str, Any]:
    """Edit the deal at ``EDITED_AT`` as a rep, right before the page at ``offset`` is served."""
    ordered = org.org.query("SELECT Id, OwnerId FROM Opportunity ORDER BY SystemModstamp, Id")
    target = ordered[EDITED_AT]
    done: dict[str, Any] = {"target": target["Id"], "edited": False}

    def hook(phase: str, req: Request, _response: Response | None) -> None:
        page = "/query/01g" in req.path and req.path.endswith(f"-{offset}")
        if phase == "before" and page and not done["edited"]:
            org.org.update(
                "Opportunity",
                target["Id"],
                {"Description": "edited by a rep during the sync"},
                as_user=target["OwnerId"],
            )
            done["edited"] = True

    org.server.add_hook(hook)
    return done


@pytest.mark.parametrize("killed_after_page", [8, 9, 13])
def test_an_edit_during_the_pull_and_a_kill_lose_no_row(
    running_org: OrgFactory, db_url: str, tmp_path: Path, killed_after_page: int
) -> None:
    """SIGKILL after the page holding the edited deal (or later): the next syncs catch up."""
    org = running_org(3000, database_url=db_url, extra={"sync": {"page_size": PAGE}})
    edit = _edit_when_page_is_fetched(org, offset=(EDITED_AT // PAGE) * PAGE)
    log = tmp_path / "sync.log"
    crash = f"sync.page_committed:{killed_after_page}"
    code = finish(
        sfsync_process("sync", "--object", "Opportunity", env=org.env, log=log, crash_at=crash)
    )
    assert code == CRASHED, log.read_text()[-2000:]
    assert edit["edited"]
    for _ in range(2):
        settle()
        again = run_sfsync("sync", env=org.env)
        assert again.exit_code == 0, again.stderr
    assert mismatches(org.org, org.settings, org.warehouse()) == {}


def test_a_cursor_that_expires_after_an_edit_restarts_where_reading_stopped(
    running_org: OrgFactory,
) -> None:
    """INVALID_QUERY_LOCATOR after the edited deal's page: the restart re-reads the rest."""
    org = running_org(3000, extra={"sync": {"page_size": PAGE}})
    edited_page = (EDITED_AT // PAGE) * PAGE
    edit = _edit_when_page_is_fetched(org, offset=edited_page)
    expired: list[str] = []

    def expire(phase: str, req: Request, _response: Response | None) -> None:
        page = "/query/01g" in req.path and req.path.endswith(f"-{edited_page + PAGE}")
        if phase == "before" and page and not expired:
            cursor = req.path.rsplit("/", 1)[-1].split("-")[0]
            org.org.drop_cursor(cursor)
            expired.append(cursor)

    org.server.add_hook(expire)
    warehouse = org.warehouse()
    result = run_sync(warehouse, org.settings, objects=["Opportunity"])
    assert result.status == "ok"
    assert edit["edited"]
    assert expired
    settle()
    assert run_sync(warehouse, org.settings).status == "ok"
    assert mismatches(org.org, org.settings, warehouse) == {}


def _is_page_request(req: Request) -> bool:
    """A REST query page after the first, or a Bulk 2.0 result page."""
    return (req.method == "GET" and "/query/01g" in req.path) or req.path.endswith("/results")


# Where each killed sync dies: (Bulk?, named crash point, n) or (Bulk?, "held page", n).
# The first rounds interrupt the first, long pull (46 REST pages of 200 rows, or Bulk
# pages of 1,000); later rounds follow changes made to the org, so that every point is
# reached: each sync refreshes 4 reference objects and commits 6 incremental ones,
# and 30+ changed opportunities are at least a page.
KILLS: tuple[tuple[bool, str, int], ...] = (
    (True, "sync.bulk_job_created", 1),
    (False, "sync.page_committed", 2),
    (True, "sync.page_committed", 1),
    (False, "held page", 2),
    (True, "held page", 1),
    (False, "sync.page_committed", 3),
    (True, "sync.bulk_job_created", 1),
    (False, "held page", 1),
    (False, "sync.reference_committed", 3),
    (True, "sync.object_committed", 1),
    (False, "sync.object_committed", 2),
    (True, "sync.reference_committed", 4),
    (False, "sync.page_committed", 1),
    (True, "sync.object_committed", 6),
    (False, "sync.object_committed", 3),
    (True, "sync.page_committed", 1),
    (False, "sync.reference_committed", 1),
    (True, "sync.object_committed", 2),
    (False, "sync.page_committed", 1),
    (True, "sync.object_committed", 5),
)


def test_killed_syncs_lose_and_duplicate_nothing(running_org: OrgFactory, tmp_path: Path) -> None:
    """20 SIGKILLs at named points and in-flight pages, changes in between: an exact copy."""
    org = running_org(
        1200, extra={"sync": {"bulk_poll_s": 0.05, "bulk_page_size": 1000, "page_size": 200}}
    )
    rng = random.Random(20)
    log = tmp_path / "sync.log"
    for round_, (bulk, kill, nth) in enumerate(KILLS):
        env = {**org.env, "SFSYNC_SYNC__BULK_THRESHOLD": "500" if bulk else "1000000"}
        if kill == "held page":
            gate = Gate(org.server, _is_page_request, nth=nth)
            code = gate.kill_when_held(sfsync_process("sync", env=env, log=log))
            assert code == KILLED, f"round {round_}: exit {code}; see {log}"
        else:
            code = finish(sfsync_process("sync", env=env, log=log, crash_at=f"{kill}:{nth}"))
            assert code == CRASHED, f"round {round_} ({kill}:{nth}): exit {code}; see {log}"
        if round_ >= 7:
            settle()
            random_changes(org.org, rng, updates=30, soft_deletes=3, purges=1, creates=5)
    settle()
    final = run_sfsync("sync", env=org.env)
    assert final.exit_code == 0, final.stderr
    warehouse = org.warehouse()
    assert mismatches(org.org, org.settings, warehouse) == {}
    with warehouse.session() as session:
        statuses = set(session.scalars(select(Run.status)).all())
    assert "running" in statuses or "interrupted" in statuses  # the killed runs left evidence
