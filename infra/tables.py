"""Kept for imports written before the definition moved: re-exports
:mod:`chalicelib.adapters.dynamodb_table`, the one definition of the table and the
schedule group (it lives in ``chalicelib/`` because the deployed code needs its key
names, and Chalice bundles only ``app.py`` and ``chalicelib/``)."""

from __future__ import annotations

from chalicelib.adapters.dynamodb_table import (
    GSI1,
    GSI2,
    TTL_ATTRIBUTE,
    create_schedule_group,
    create_table,
    schedule_group_name,
    table_definition,
    table_name,
)

__all__ = [
    "GSI1",
    "GSI2",
    "TTL_ATTRIBUTE",
    "create_schedule_group",
    "create_table",
    "schedule_group_name",
    "table_definition",
    "table_name",
]
