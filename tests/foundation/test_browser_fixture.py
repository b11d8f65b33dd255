"""The browser fixture: headless Chromium loads a page from a real loopback server and runs it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.async_api import Browser

from tests.services.browser import running_chromium

pytestmark = pytest.mark.browser

_PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>wayhome smoke</title></head>
<body><h1>loading</h1><ul id="cases"></ul>
<script>
fetch("/cases.json").then(r => r.json()).then(cases => {
  document.querySelector("h1").textContent = cases.length + " open cases";
  for (const c of cases) {
    const li = document.createElement("li");
    li.textContent = c.id + ": " + c.radius_m + " m";
    document.getElementById("cases").appendChild(li);
  }
});
</script></body></html>"""

_CASES = [{"id": "case-1", "radius_m": 1200}, {"id": "case-2", "radius_m": 4500}]


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        if self.path == "/":
            body, kind = _PAGE, "text/html; charset=utf-8"
        elif self.path == "/cases.json":
            body, kind = json.dumps(_CASES).encode(), "application/json"
        else:
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def page_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


async def test_chromium_renders_a_page_whose_script_fetches_data_from_the_server(
    browser: Browser, page_url: str
) -> None:
    page = await browser.new_page()
    try:
        await page.goto(page_url)
        await page.wait_for_function("document.querySelector('h1').textContent !== 'loading'")
        assert await page.title() == "wayhome smoke"
        assert await page.inner_text("h1") == "2 open cases"
        items = await page.locator("#cases li").all_inner_texts()
        assert items == ["case-1: 1200 m", "case-2: 4500 m"]
    finally:
        await page.close()


async def test_a_missing_resource_answers_404_to_the_browser(
    browser: Browser, page_url: str
) -> None:
    page = await browser.new_page()
    try:
        response = await page.goto(page_url + "nowhere")
        assert response is not None
        assert response.status == 404
    finally:
        await page.close()


def test_a_plain_test_can_drive_chromium_through_the_sync_api(page_url: str) -> None:
    with running_chromium() as chromium:
        page = chromium.new_page()
        page.goto(page_url)
        page.wait_for_function("document.querySelector('h1').textContent !== 'loading'")
        assert page.inner_text("h1") == "2 open cases"
