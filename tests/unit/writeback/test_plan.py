"""The write-back planner: a pure function of warehouse state, settings and a day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from sfsync.writeback import (
    PlannedAction,
    WritebackPlan,
    choose_owner,
    next_attempt_day,
    plan_writeback,
)
from sfsync.writeback._keys import complete_key, flag_key, parse_task_key, task_key
from tests.unit.writeback.builders import (
    BOSS,
    FALLBACK,
    GONE,
    INACTIVE_FALLBACK,
    MISSING_USER,
    NO_MANAGER,
    NOW,
    OPP,
    OPP2,
    ORPHAN_REP,
    REP,
    TODAY,
    USERS,
    finding,
    ledger,
    opportunity,
    settings,
    sfid,
    state,
    task,
)

KEY0 = task_key("missing_rev_rec_terms", OPP, 1, 0)
TASK_ID = sfid("00T", 1)


def only(plan: WritebackPlan) -> PlannedAction:
    assert len(plan.actions) == 1, [a.as_dict() for a in plan.actions]
    return plan.actions[0]


# --------------------------------------------------------------------------- owners


@pytest.mark.parametrize(
    ("owner", "fallback", "expected_owner", "reason_part", "problem_part"),
    [
        pytest.param(REP, None, REP, None, None, id="active owner"),
        pytest.param(
            MISSING_USER, None, MISSING_USER, None, None, id="unknown owner: assumed active"
        ),
        pytest.param(
            GONE, None, BOSS, "assigned to their manager Cy Boss", None, id="inactive -> manager"
        ),
        pytest.param(
            ORPHAN_REP,
            FALLBACK,
            FALLBACK,
            "manager Di Left",
            None,
            id="inactive manager -> fallback",
        ),
        pytest.param(
            NO_MANAGER, FALLBACK, FALLBACK, "has no manager", None, id="no manager -> fallback"
        ),
        pytest.param(
            NO_MANAGER, None, None, None, "fallback_owner_id is not set", id="no fallback"
        ),
        pytest.param(NO_MANAGER, MISSING_USER, None, None, "does not exist", id="fallback unknown"),
        pytest.param(
            NO_MANAGER, INACTIVE_FALLBACK, None, None, "is inactive", id="fallback inactive"
        ),
        pytest.param(None, FALLBACK, FALLBACK, "no owner", None, id="no owner -> fallback"),
    ],
)
def test_owner_chain(
    owner: str | None,
    fallback: str | None,
    expected_owner: str | None,
    reason_part: str | None,
    problem_part: str | None,
) -> None:
    """Owner if active, else the manager if active, else the fallback; each step explained."""
    choice = choose_owner(owner, USERS, fallback)
    assert choice.owner_id == expected_owner
    if reason_part:
        assert choice.reassigned_reason is not None
        assert reason_part in choice.reassigned_reason
    else:
        assert choice.reassigned_reason is None
    if problem_part:
        assert choice.problem is not None
        assert problem_part in choice.problem
    else:
        assert choice.problem is None


def test_an_active_owner_keeps_the_manager_and_fallback_for_salesforce_to_decide() -> None:
    """If Salesforce says the owner is inactive after all, the Task moves down this chain."""
    assert choose_owner(REP, USERS, FALLBACK).next_owners == (BOSS, FALLBACK)


def test_a_fifteen_character_fallback_id_is_recognised() -> None:
    assert choose_owner(NO_MANAGER, USERS, FALLBACK[:15]).owner_id == FALLBACK


def test_a_reassigned_task_is_planned_for_the_manager_and_reported() -> None:
    plan = plan_writeback(
        state([finding()], opportunities=[opportunity(owner=GONE)]), settings(), TODAY
    )
    action = only(plan)
    assert (action.action, action.owner_id, action.original_owner_id) == ("create_task", BOSS, GONE)
    assert plan.reassignments == (action,)


def test_a_bad_fallback_skips_that_finding_and_the_rest_goes_on() -> None:
    """A fallback owner that does not exist is reported on the record; other findings proceed."""
    plan = plan_writeback(
        state(
            [finding(1), finding(2, opp_id=OPP2)],
            opportunities=[opportunity(owner=NO_MANAGER), opportunity(OPP2, owner=REP)],
        ),
        settings(fallback_owner_id=MISSING_USER),
        TODAY,
    )
    by_opp = {a.opportunity_id: a for a in plan.actions}
    assert by_opp[OPP].action == "skip"
    assert by_opp[OPP].skip_code == "no_active_owner"
    assert f"writeback.fallback_owner_id {MISSING_USER} does not exist" in by_opp[OPP].reason
    assert by_opp[OPP2].action == "create_task"


# --------------------------------------------------------------------------- tasks


def test_a_new_finding_gets_one_task_with_subject_due_date_priority_and_key() -> None:
    plan = plan_writeback(state([finding()]), settings(), TODAY)
    action = only(plan)
    assert action.action == "create_task"
    assert action.key == KEY0 == f"sfsync:missing_rev_rec_terms:{OPP}:1:0"
    assert action.subject == "[sfsync] Rev Rec Terms not entered: Acme 10 instruments"
    assert action.due_date == TODAY + timedelta(days=7)
    assert action.priority == "Normal"
    assert action.status == "Not Started"
    assert action.owner_id == REP
    assert action.reason == "new finding"
    record = action.task_record()
    assert record["WhatId"] == OPP
    assert record["ActivityDate"] == "2024-08-22"


def test_due_days_and_priority_come_from_the_rule_settings() -> None:
    plan = plan_writeback(
        state([finding(rule="close_date_past")]),
        settings(rules={"close_date_past": {"due_in_days": 1, "priority": "Low"}}),
        TODAY,
    )
    action = only(plan)
    assert (action.due_date, action.priority) == (TODAY + timedelta(days=1), "Low")


@pytest.mark.parametrize(
    ("rule", "phrases"),
    [
        (
            "missing_rev_rec_terms",
            [
                "Rev Rec Terms is blank",
                "Rev Rec Terms must be entered before the Prove stage can be completed.",
                "Stage: Prove",
            ],
        ),
        (
            "close_date_past",
            ["close date 2024-08-01 is in the past", "today is 2024-08-15", "60,000.00 USD"],
        ),
        ("stale_last_modified", ["for 16 days", "limit is 14 days", "Days since then: 16"]),
        ("close_date_slipping", ["4 times", "Days open: 237", "stage change: 100"]),
    ],
)
def test_descriptions_say_what_is_wrong_the_values_and_how_to_fix(
    rule: str, phrases: list[str]
) -> None:
    action = only(plan_writeback(state([finding(rule=rule)]), settings(), TODAY))
    assert action.description is not None
    for phrase in ["What is wrong:", "Values seen:", "How to fix:", *phrases]:
        assert phrase in action.description
    assert action.description.rstrip().endswith(f"sfsync key: {action.key}")
    assert "None" not in action.description


def test_subjects_are_cut_to_255_characters() -> None:
    plan = plan_writeback(
        state([finding()], opportunities=[opportunity(name="x" * 400)]), settings(), TODAY
    )
    subject = only(plan).subject
    assert subject is not None
    assert len(subject) == 255
    assert subject.endswith("…")


def test_the_subject_prefix_is_configurable() -> None:
    action = only(plan_writeback(state([finding()]), settings(subject_prefix="[Hygiene]"), TODAY))
    assert action.subject is not None
    assert action.subject.startswith("[Hygiene] Rev Rec Terms not entered: ")


@pytest.mark.parametrize(
    ("findings", "opps", "cfg", "code"),
    [
        ([finding(status="waived")], [], {}, "waived"),
        ([finding()], [opportunity(closed=True)], {}, "closed_opportunity"),
        ([finding()], [opportunity(deleted=True)], {}, "deleted_opportunity"),
        (
            [finding()],
            [],
            {"rules": {"missing_rev_rec_terms": {"enabled": False}}},
            "rule_disabled",
        ),
        ([finding()], [], {"tasks": False}, "tasks_disabled"),
    ],
    ids=["waived", "closed", "deleted", "rule disabled", "tasks disabled"],
)
def test_skips_say_why(
    findings: list[Any], opps: list[Any], cfg: dict[str, Any], code: str
) -> None:
    action = only(plan_writeback(state(findings, opportunities=opps), settings(**cfg), TODAY))
    assert (action.action, action.skip_code) == ("skip", code)
    assert action.reason


def test_an_opportunity_missing_from_the_warehouse_is_never_written() -> None:
    plan = plan_writeback(state([finding(opp_id=sfid("006", 77))]), settings(), TODAY)
    assert only(plan).skip_code == "deleted_opportunity"


# --------------------------------------------------------------------------- existing Tasks


def test_an_open_task_is_not_duplicated() -> None:
    plan = plan_writeback(
        state(
            [finding()],
            ledger_rows=[ledger(KEY0, salesforce_id=TASK_ID)],
            tasks=[task(TASK_ID, key=KEY0)],
        ),
        settings(),
        TODAY,
    )
    assert only(plan).skip_code == "task_open"
    assert plan.creates == 0


def test_a_confirmed_task_not_yet_synced_counts_as_open() -> None:
    plan = plan_writeback(
        state([finding()], ledger_rows=[ledger(KEY0, salesforce_id=TASK_ID)]), settings(), TODAY
    )
    assert only(plan).skip_code == "task_open"


def test_an_open_sfsync_task_the_ledger_does_not_know_blocks_a_new_one() -> None:
    """A Task with a key for this (opportunity, rule) counts even without a ledger row."""
    foreign = task_key("missing_rev_rec_terms", OPP, 999, 0)
    plan = plan_writeback(state([finding()], tasks=[task(TASK_ID, key=foreign)]), settings(), TODAY)
    assert only(plan).skip_code == "task_open"


def test_an_open_task_of_an_earlier_finding_is_kept_for_the_new_one() -> None:
    """Resolved then reopened: the open Task is neither completed nor joined by a second one."""
    old_key = task_key("missing_rev_rec_terms", OPP, 1, 0)
    plan = plan_writeback(
        state(
            [finding(1, status="resolved"), finding(2)],
            ledger_rows=[ledger(old_key, finding_id=1, salesforce_id=TASK_ID)],
            tasks=[task(TASK_ID, key=old_key)],
        ),
        settings(),
        TODAY,
    )
    assert only(plan).skip_code == "task_open"


@pytest.mark.parametrize(
    ("days_ago", "renotify", "expected"),
    [
        (3, 14, "skip"),
        (13, 14, "skip"),
        (14, 14, "create_task"),
        (30, 14, "create_task"),
        (0, 0, "create_task"),
    ],
)
@pytest.mark.parametrize("how", ["completed", "deleted"])
def test_a_task_a_person_completed_or_deleted_comes_back_only_after_renotify(
    days_ago: int, renotify: int, expected: str, how: str
) -> None:
    closed_at = datetime(2024, 8, 15, 12, 0, tzinfo=UTC) - timedelta(days=days_ago)
    plan = plan_writeback(
        state(
            [finding()],
            ledger_rows=[ledger(KEY0, salesforce_id=TASK_ID)],
            tasks=[
                task(
                    TASK_ID,
                    key=KEY0,
                    closed=how == "completed",
                    deleted=how == "deleted",
                    closed_at=closed_at,
                )
            ],
        ),
        settings(renotify_after_days=renotify),
        TODAY,
    )
    action = only(plan)
    assert action.action == expected
    if expected == "skip":
        assert action.skip_code == "renotify_pending"
        assert how in action.reason
    else:
        assert action.key == task_key("missing_rev_rec_terms", OPP, 1, 1)
        assert action.reason.startswith("renotify")


def test_a_resolved_finding_completes_its_open_task_with_a_note() -> None:
    previous = f"What is wrong: ...\n\nsfsync key: {KEY0}"
    plan = plan_writeback(
        state(
            [finding(status="resolved")],
            ledger_rows=[ledger(KEY0, salesforce_id=TASK_ID)],
            tasks=[task(TASK_ID, key=KEY0, description=previous)],
        ),
        settings(),
        TODAY,
    )
    action = only(plan)
    assert action.action == "complete_task"
    assert action.task_id == TASK_ID
    assert action.status == "Completed"
    assert action.key == complete_key(TASK_ID)
    assert action.description is not None
    assert action.description.startswith(previous)
    assert "2024-08-15: resolved" in action.description


def test_a_task_already_completed_by_sfsync_is_left_alone() -> None:
    plan = plan_writeback(
        state(
            [finding(status="resolved")],
            ledger_rows=[
                ledger(KEY0, salesforce_id=TASK_ID),
                ledger(
                    complete_key(TASK_ID), row_id=2, action="complete_task", salesforce_id=TASK_ID
                ),
            ],
            tasks=[task(TASK_ID, key=KEY0)],  # the warehouse has not synced the completion yet
        ),
        settings(),
        TODAY,
    )
    assert plan.actions == ()


def test_a_resolved_finding_whose_task_a_person_closed_needs_nothing() -> None:
    plan = plan_writeback(
        state(
            [finding(status="resolved")],
            ledger_rows=[ledger(KEY0, salesforce_id=TASK_ID)],
            tasks=[
                task(TASK_ID, key=KEY0, closed=True, closed_at=datetime(2024, 8, 1, tzinfo=UTC))
            ],
        ),
        settings(),
        TODAY,
    )
    assert plan.actions == ()


# --------------------------------------------------------------------------- ledger states


def test_a_write_in_doubt_is_reconciled_and_resent_with_the_same_key() -> None:
    plan = plan_writeback(
        state([finding()], ledger_rows=[ledger(KEY0, state="sent", attempts=1)]), settings(), TODAY
    )
    action = only(plan)
    assert (action.action, action.key, action.reconcile, action.attempts) == (
        "create_task",
        KEY0,
        True,
        1,
    )


def test_a_refused_write_is_retried_with_the_same_key() -> None:
    plan = plan_writeback(
        state(
            [finding()],
            ledger_rows=[ledger(KEY0, state="failed", attempts=2, error_code="UNABLE_TO_LOCK_ROW")],
        ),
        settings(max_attempts=5),
        TODAY,
    )
    action = only(plan)
    assert (action.action, action.key, action.reconcile) == ("create_task", KEY0, False)
    assert action.reason == "retry after UNABLE_TO_LOCK_ROW (attempt 3)"
    assert [f.key for f in plan.failures] == [KEY0]


def test_a_transient_failure_that_outlasts_max_attempts_backs_off() -> None:
    """Five lock errors in a row (max_attempts 5): the sixth attempt waits a day."""
    row = ledger(KEY0, state="failed", attempts=5, error_code="UNABLE_TO_LOCK_ROW", updated_at=NOW)
    waiting = only(plan_writeback(state([finding()], ledger_rows=[row]), settings(), TODAY))
    assert (waiting.action, waiting.skip_code) == ("skip", "retry_later")
    assert "attempt 6 on 2024-08-16" in waiting.reason
    later = only(
        plan_writeback(state([finding()], ledger_rows=[row]), settings(), TODAY + timedelta(days=1))
    )
    assert (later.action, later.key) == ("create_task", KEY0)


def test_a_retry_keeps_an_owner_salesforce_refused() -> None:
    """The warehouse still thinks REP is active; Salesforce said otherwise last time."""
    plan = plan_writeback(
        state(
            [finding()],
            ledger_rows=[
                ledger(
                    KEY0,
                    state="failed",
                    owner_id=BOSS,
                    original_owner_id=REP,
                    reassigned_reason="Salesforce refused owner",
                    error_code="UNABLE_TO_LOCK_ROW",
                )
            ],
        ),
        settings(),
        TODAY,
    )
    assert (only(plan).owner_id, only(plan).original_owner_id) == (BOSS, REP)


@pytest.mark.parametrize("state_", ["failed", "abandoned"])  # abandoned: by an older sfsync
def test_a_refusal_waits_then_is_retried_with_the_same_key(state_: str) -> None:
    """Refused on the 15th (attempt 1): shown waiting that day, retried on the 16th."""
    rows = [
        ledger(
            KEY0,
            state=state_,
            attempts=1,
            error_code="FIELD_CUSTOM_VALIDATION_EXCEPTION",
            error_message="Tasks need a type",
            updated_at=NOW,
        )
    ]
    plan = plan_writeback(state([finding()], ledger_rows=rows), settings(), TODAY)
    action = only(plan)
    assert (action.skip_code, action.key) == ("retry_later", KEY0)
    assert "FIELD_CUSTOM_VALIDATION_EXCEPTION: Tasks need a type" in action.reason
    assert "attempt 2 on 2024-08-16" in action.reason
    assert [f.key for f in plan.failures] == [KEY0]
    retried = only(
        plan_writeback(state([finding()], ledger_rows=rows), settings(), TODAY + timedelta(days=1))
    )
    assert (retried.action, retried.key) == ("create_task", KEY0)


@pytest.mark.parametrize(("attempts", "waits"), [(1, 1), (2, 2), (3, 4), (4, 7), (9, 7)])
def test_refusals_back_off_to_retry_max_days(attempts: int, waits: int) -> None:
    row = ledger(
        KEY0, state="failed", attempts=attempts, error_code="INVALID_FIELD", updated_at=NOW
    )
    assert next_attempt_day(row, settings().writeback, ZoneInfo("UTC")) == TODAY + timedelta(
        days=waits
    )


def test_a_superseded_row_does_not_block_a_new_key() -> None:
    plan = plan_writeback(
        state([finding()], ledger_rows=[ledger(KEY0, state="abandoned", error_code="SUPERSEDED")]),
        settings(),
        TODAY,
    )
    assert only(plan).key == task_key("missing_rev_rec_terms", OPP, 1, 1)


@pytest.mark.parametrize("row_state", ["planned", "failed"])
def test_unsent_writes_of_a_resolved_finding_are_abandoned(row_state: str) -> None:
    plan = plan_writeback(
        state([finding(status="resolved")], ledger_rows=[ledger(KEY0, state=row_state)]),
        settings(),
        TODAY,
    )
    assert plan.actions == ()
    assert plan.abandon == (KEY0,)


def test_a_write_in_doubt_of_a_resolved_finding_is_reconciled_not_resent() -> None:
    plan = plan_writeback(
        state([finding(status="resolved")], ledger_rows=[ledger(KEY0, state="sent")]),
        settings(),
        TODAY,
    )
    action = only(plan)
    assert (action.action, action.skip_code, action.reconcile, action.key) == (
        "skip",
        "in_doubt",
        True,
        KEY0,
    )


# --------------------------------------------------------------------------- cap


@pytest.mark.parametrize(("cap", "over"), [(3, False), (2, True), (0, True)])
def test_with_over_cap_refuse_the_cap_counts_task_creations(cap: int, over: bool) -> None:
    findings = [
        finding(1, rule="missing_rev_rec_terms"),
        finding(2, rule="close_date_past"),
        finding(3, rule="missing_rev_rec_terms", opp_id=OPP2),
    ]
    wb = settings(max_tasks_per_run=cap, over_cap="refuse")
    plan = plan_writeback(state(findings), wb, TODAY)
    assert plan.creates == 3
    assert plan.over_cap is over


def test_by_default_a_backlog_over_the_cap_is_spread_over_runs_errors_first() -> None:
    """The first nightly run on a big org must not fail every night: up to the cap are
    created (error-severity rules first, then the oldest findings), the rest wait."""
    findings = [
        finding(1, rule="missing_rev_rec_terms"),
        finding(2, rule="missing_rev_rec_terms", opp_id=OPP2),
        finding(3, rule="close_date_past"),
    ]
    plan = plan_writeback(state(findings), settings(max_tasks_per_run=2), TODAY)
    assert plan.creates == 2
    assert not plan.over_cap
    created = {(a.rule, a.finding_id) for a in plan.actions if a.action == "create_task"}
    assert created == {("close_date_past", 3), ("missing_rev_rec_terms", 1)}
    [waiting] = [a for a in plan.actions if a.skip_code == "over_cap"]
    assert waiting.finding_id == 2
    assert "writeback.max_tasks_per_run = 2" in waiting.reason
    assert plan.deferred == 1


# --------------------------------------------------------------------------- flags

FLAGS = {"enabled": True}


def test_flags_are_off_by_default() -> None:
    plan = plan_writeback(state([finding()]), settings(), TODAY)
    assert {a.action for a in plan.actions} == {"create_task"}


@pytest.mark.parametrize(
    ("current_rules", "current_ext", "expected"),
    [
        (
            None,
            None,
            {
                "Sfsync_Flags__c": "close_date_slipping;missing_rev_rec_terms",
                "Sfsync_Month_Extensions__c": 4.0,
            },
        ),
        ("missing_rev_rec_terms;close_date_slipping", 4.0, None),
        ("close_date_slipping, missing_rev_rec_terms", 4, None),
        (
            "missing_rev_rec_terms",
            4.0,
            {"Sfsync_Flags__c": "close_date_slipping;missing_rev_rec_terms"},
        ),
        ("close_date_slipping;missing_rev_rec_terms", 3.0, {"Sfsync_Month_Extensions__c": 4.0}),
    ],
    ids=["unset", "same", "same, other spelling", "rules changed", "extensions changed"],
)
def test_flags_are_written_only_when_they_change(
    current_rules: str | None, current_ext: float | None, expected: dict[str, Any] | None
) -> None:
    plan = plan_writeback(
        state(
            [finding(1), finding(2, rule="close_date_slipping")],
            opportunities=[
                opportunity(
                    flag_rules=current_rules, flag_extensions=current_ext, month_extensions=4
                )
            ],
        ),
        settings(flags=FLAGS, tasks=False),
        TODAY,
    )
    flags = [a for a in plan.actions if a.action in ("set_flag", "clear_flag")]
    if expected is None:
        assert flags == []
    else:
        assert len(flags) == 1
        assert flags[0].action == "set_flag"
        assert dict(flags[0].fields) == expected
        assert flags[0].key == flag_key(OPP, expected)


def test_flags_are_cleared_when_no_finding_is_open() -> None:
    plan = plan_writeback(
        state(
            [],
            opportunities=[opportunity(flag_rules="close_date_past", flag_extensions=5.0)],
        ),
        settings(flags=FLAGS),
        TODAY,
    )
    action = only(plan)
    assert action.action == "clear_flag"
    assert dict(action.fields) == {"Sfsync_Flags__c": None, "Sfsync_Month_Extensions__c": None}


def test_waived_findings_are_not_flagged() -> None:
    plan = plan_writeback(
        state(
            [finding(status="waived")],
            opportunities=[opportunity(flag_rules="missing_rev_rec_terms")],
        ),
        settings(flags=FLAGS),
        TODAY,
    )
    assert [a.action for a in plan.actions if a.action != "skip"] == ["clear_flag"]


def test_flags_are_never_written_to_a_closed_opportunity() -> None:
    plan = plan_writeback(
        state([], opportunities=[opportunity(closed=True, flag_rules="close_date_past")]),
        settings(flags=FLAGS),
        TODAY,
    )
    action = only(plan)
    assert (action.action, action.skip_code) == ("skip", "closed_opportunity")


def test_flags_written_after_the_last_sync_are_not_written_again() -> None:
    fields = {"Sfsync_Flags__c": "missing_rev_rec_terms"}
    synced = datetime(2024, 8, 15, 8, 0, tzinfo=UTC)
    row = ledger(
        flag_key(OPP, fields),
        action="set_flag",
        rule="flags",
        finding_id=None,
        confirmed_at=synced + timedelta(minutes=5),
    )
    plan = plan_writeback(
        state([finding()], opportunities=[opportunity(synced_at=synced)], ledger_rows=[row]),
        settings(flags=FLAGS, tasks=False),
        TODAY,
    )
    flags = [a for a in plan.actions if a.fields]
    assert [(a.action, a.skip_code) for a in flags] == [("skip", "awaiting_sync")]


# --------------------------------------------------------------------------- purity and keys


def test_the_plan_is_deterministic_and_keys_are_stable() -> None:
    findings = [
        finding(3, rule="close_date_past", opp_id=OPP2),
        finding(1),
        finding(2, rule="stale_last_modified"),
    ]
    first = plan_writeback(state(findings), settings(), TODAY)
    second = plan_writeback(state(list(reversed(findings))), settings(), TODAY)
    assert first == second
    assert [a.key for a in first.actions] == [
        task_key("close_date_past", OPP2, 3, 0),
        task_key("missing_rev_rec_terms", OPP, 1, 0),
        task_key("stale_last_modified", OPP, 2, 0),
    ]


def test_keys_round_trip() -> None:
    key = task_key("close_date_slipping", OPP, 42, 3)
    parsed = parse_task_key(key)
    assert parsed is not None
    assert (parsed.rule, parsed.opportunity_id, parsed.finding_id, parsed.n) == (
        "close_date_slipping",
        OPP,
        42,
        3,
    )
    assert parse_task_key(complete_key(TASK_ID)) is None
    assert parse_task_key("sfsync:flags:x:y") is None
    assert parse_task_key("something else") is None


def test_counts_per_rule_and_action() -> None:
    plan = plan_writeback(
        state([finding(1), finding(2, rule="close_date_past", status="waived")]), settings(), TODAY
    )
    assert plan.counts() == {
        "create_task": 1,
        "complete_task": 0,
        "set_flag": 0,
        "clear_flag": 0,
        "skip": 1,
    }
    assert plan.counts_by_rule()["close_date_past"]["skip"] == 1
    assert plan.skip_reasons() == {"waived": 1}
    assert plan.as_dict()["counts"] == plan.counts()


def test_an_unsent_write_next_to_an_open_task_is_abandoned() -> None:
    spare = task_key("missing_rev_rec_terms", OPP, 1, 1)
    plan = plan_writeback(
        state(
            [finding()],
            ledger_rows=[
                ledger(KEY0, salesforce_id=TASK_ID),
                ledger(spare, row_id=2, state="planned"),
            ],
            tasks=[task(TASK_ID, key=KEY0)],
        ),
        settings(),
        TODAY,
    )
    assert only(plan).skip_code == "task_open"
    assert plan.abandon == (spare,)
