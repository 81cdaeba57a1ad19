"""The committed watermark never passes a row of the window that was not read.

A REST query cursor is a snapshot of *which* rows match, in ``(SystemModstamp, Id)``
order, but a page carries each row's values as of when the page is fetched. A rep
who edits a deal while the pull runs moves its ``SystemModstamp`` past the window's
upper bound, and that new value arrives at the deal's old position, ahead of rows
not yet read. If that value became the watermark, a crash (or a cursor restart)
would skip every row between the deal's old position and its new stamp, for good.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sfsync.devorg._http import Request, Response
from sfsync.extract import run_sync
from tests.cli_helpers import run_sfsync
from tests.integration.conftest import OrgFactory, RunningOrg
from tests.integration.kills import CRASHED, finish, sfsync_process
from tests.integration.sync_helpers import mismatches, settle

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
