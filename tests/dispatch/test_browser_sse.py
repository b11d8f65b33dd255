"""A web app in headless Chromium follows a subscriber's notices stream and sees the alert.

Browsers' ``EventSource`` cannot send an ``Authorization`` header, so a web app reads the stream
with ``fetch`` and a stream reader, as this page does; the test checks that what Chromium parses
from the service's server-sent events is the notice, whole, and carries no private field.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser

from dispatch.clock import ManualClock
from dispatch.service import Service
from dispatch.settings import Settings
from tests.dispatch.harness import START, ApiServer, case_body, device, eventually, prefix

pytestmark = [pytest.mark.browser, pytest.mark.tansu]

# Reads the stream until the first event of ``kind`` and returns [event name, data].
_READ_FIRST_EVENT = """
async ([path, token, kind]) => {
  const response = await fetch(path, {headers: {Authorization: "Bearer " + token}});
  if (!response.ok) return ["http " + response.status, ""];
  window.streamOpen = true;
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const {value, done} = await reader.read();
    if (done) return ["closed", ""];
    buffer += value.replaceAll("\\r\\n", "\\n");
    let end;
    while ((end = buffer.indexOf("\\n\\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (event === kind) { reader.cancel(); return [event, data.join("\\n")]; }
    }
  }
}
"""


async def test_a_web_app_in_chromium_reads_the_alert_from_the_notices_stream(
    browser: Browser, tansu_bootstrap: str, tmp_path: Path
) -> None:
    settings = Settings(
        KAFKA_BOOTSTRAP_SERVERS=tansu_bootstrap,
        data_dir=tmp_path,
        topic_prefix=prefix(),
        partitions=1,
        fetch_max_wait_ms=50,
        delivery_guarantee="at_least_once",
        worker_id=f"browser-{tmp_path.name[-12:]}",
    )
    service = await Service(settings, ManualClock(START)).start()
    assert service.app is not None and service.tokens is not None
    api = await ApiServer(service.app).start()
    police = {"Authorization": f"Bearer {service.tokens.create('police')}"}
    platform_token = service.tokens.create("platform")
    page = await browser.new_page()
    try:
        async with httpx.AsyncClient(base_url=api.url, timeout=10) as client:
            response = await client.post(
                "/v1/subscribers",
                headers={"Authorization": f"Bearer {platform_token}"},
                json=device("web-1", 15, {"kind": "sse"}, language="zh"),
            )
            assert response.status_code == 201, response.text
            assert service.dispatcher is not None
            await eventually(lambda: len(service.dispatcher.directory) == 1, what="subscriber")

            # The page comes from the API's own origin, so its fetch needs no CORS.
            await page.goto(f"{api.url}/healthz")
            reading = page.evaluate(
                _READ_FIRST_EVENT, ["/v1/subscribers/web-1/notices", platform_token, "alert"]
            )
            reading_task = asyncio.ensure_future(reading)
            await page.wait_for_function("window.streamOpen === true")

            body = case_body("c-browser")
            response = await client.post("/v1/cases", headers=police, json=body)
            assert response.status_code == 201, response.text
            event, data = await asyncio.wait_for(reading_task, 30)

        assert event == "alert"
        notice = json.loads(data)
        assert notice["type"] == "Alert" and notice["case_id"] == "c-browser"
        assert notice["subscriber_id"] == "web-1" and notice["language"] == "zh"
        assert notice["area"]["geometry"]["type"] in ("Polygon", "MultiPolygon")
        assert all(value not in data for value in body["private"].values())
    finally:
        await page.close()
        await api.stop()
        await service.stop()
