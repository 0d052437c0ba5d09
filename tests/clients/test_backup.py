"""The known data of a backup, compared without a cluster."""

from __future__ import annotations

from pytest_codelab.clients import backup


def _snapshot(**changes: object) -> backup.Snapshot:
    fields: dict[str, object] = {
        "tables": {backup.TABLE: "500:abc", "sessions": "3:def"},
        "redis_key": "codelab:gate:backup:1",
        "redis_value": "v",
        "secret_data": {"token": "s3cr3t"},
        "configmap_data": {"seed": "1", "rows": "500"},
    }
    fields.update(changes)
    return backup.Snapshot(**fields)  # type: ignore[arg-type]


def test_equal_snapshots_have_no_differences() -> None:
    assert _snapshot().differences(_snapshot()) == []


def test_differences_name_what_was_lost_without_showing_secrets() -> None:
    got = _snapshot(
        tables={backup.TABLE: "0:d41d8cd98f00b204e9800998ecf8427e"},
        redis_value="",
        secret_data={},
        configmap_data={},
    )
    diffs = _snapshot().differences(got)
    empty = "0:d41d8cd98f00b204e9800998ecf8427e"
    assert diffs[0] == f"table {backup.TABLE}: count:md5 500:abc before, {empty} after"
    assert diffs[1] == "table sessions: count:md5 3:def before, None after"
    assert any(d.startswith("redis key codelab:gate:backup:1: value differs") for d in diffs)
    assert f"secret/{backup.OBJECT_NAME}: data differs or is missing" in diffs
    assert "s3cr3t" not in " ".join(diffs) and "s3cr3t" not in repr(_snapshot())


def test_checksum_sql_orders_rows_and_handles_empty_tables() -> None:
    sql = backup.checksum_sql("t")
    assert "ORDER BY t::text" in sql and "coalesce(" in sql and sql.endswith("FROM t t")
