"""``wayhome demo`` plays a case end to end and says where to look."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from dispatch.demo import demo_settings, run_demo
from dispatch.settings import Settings

pytestmark = pytest.mark.tansu


async def test_the_demo_plays_a_case_from_report_to_cancel(
    tansu_bootstrap: str, tmp_path: Path
) -> None:
    settings = demo_settings(
        Settings(
            KAFKA_BOOTSTRAP_SERVERS=tansu_bootstrap,
            http_port=0,
            fetch_max_wait_ms=50,
            delivery_guarantee="at_least_once",
            worker_id="demo-test",
        ),
        tmp_path,
    )
    console = Console(record=True, width=200)
    seen = await run_demo(
        settings, subscribers=2000, hours=1.0, speed=1800, exit_at_end=True, console=console
    )
    assert seen["alerted"] > 0
    kinds = seen["log_kinds"]
    assert kinds.pop("dispatch") == seen["tick"] + 1, "one log entry per dispatch"
    assert kinds == {"case_opened": 1, "sighting": 1, "resolution": 1}
    assert seen["log_size"] == seen["tick"] + 4
    text = console.export_text()
    assert "found." in text and "/v1/cases/demo-zhengzhou/area" in text
    assert "/v1/ledger/checkpoint" in text and "alert.cap" in text
