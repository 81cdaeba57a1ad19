"""The audit rules, one module each, and the registry the rest of sfsync reads them from.

See :mod:`sfsync.audit.rules._base` for what a rule declares. Every public module of
this package is imported (and so registers its rule) when the package is: a new rule
is one new file here. The built-in rules, in order: ``close_date_past``,
``stale_last_modified``, ``missing_rev_rec_terms``, ``close_date_slipping``
(docs/rules.md defines each).
"""

import importlib
import pkgutil

from sfsync.audit.rules._base import (
    Explanation,
    Rule,
    RuleMatch,
    TaskDefaults,
    all_rules,
    check_rule_ids,
    get_rule,
    register,
    registered,
    required_fields,
    rule_ids,
    select_rules,
)

__all__ = [
    "Explanation",
    "Rule",
    "RuleMatch",
    "TaskDefaults",
    "all_rules",
    "check_rule_ids",
    "get_rule",
    "register",
    "registered",
    "required_fields",
    "rule_ids",
    "select_rules",
]

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")
