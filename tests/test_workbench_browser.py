"""The inspector workbench in a real browser: Debian's headless Chromium driven by Playwright.

Load the suspect list, filter it, open a facility, record a case outcome, restart the server and
find the outcome still there. Skips only when /usr/bin/chromium is absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fraudscan.serving import AccessFile
from fraudscan.serving.demo import free_port, served_copy, start_server, stop, wait_ready
from fraudscan.workspace import Workspace

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="/usr/bin/chromium is absent (apt-get install chromium)")


@pytest.fixture(scope="module")
def world(small_world: Workspace, tmp_path_factory: pytest.TempPathFactory):
    ws = served_copy(small_world.path, tmp_path_factory.mktemp("workbench") / "ws",
                     cache=tmp_path_factory.getbasetemp() / "served_world")
    token = AccessFile(ws.path).create("inspector", ["D1", "D2"], name="王检查员")[0]
    return ws, token


def test_workbench_end_to_end(world):
    from playwright.sync_api import sync_playwright

    ws, token = world
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = ws.path / "serve-browser.log"
    srv = start_server(ws.path, port, log=log)
    try:
        wait_ready(port, proc=srv)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
            page = browser.new_page()
            page.set_default_timeout(20_000)
            # login → the suspect list, in Chinese
            page.goto(f"{base}/wb/")
            assert "/wb/login" in page.url
            page.fill("#token", token)
            page.click("#login")
            page.wait_for_selector("#suspects")
            assert "可疑线索" in page.content()
            rows = page.locator("tr.lead-row")
            n_all = rows.count()
            assert n_all > 0
            districts = set(page.locator("tr.lead-row").evaluate_all(
                "rs => rs.map(r => r.dataset.district)"))
            assert districts <= {"D1", "D2"}
            # filter by district
            page.select_option("#f-district", "D1")
            page.click("#f-submit")
            page.wait_for_selector("#suspects")
            got = set(page.locator("tr.lead-row").evaluate_all(
                "rs => rs.map(r => r.dataset.district)"))
            assert got == {"D1"}
            # English switch
            page.click("#lang-switch")
            page.wait_for_selector("#suspects")
            assert "Suspects" in page.content()
            # open a facility: grade, charts
            page.locator("tr.lead-row a.fac").first.click()
            page.wait_for_selector("#facility-name")
            assert page.locator("#grade").inner_text() in (
                "A", "B", "C", "D", "blue", "yellow", "orange", "red")
            assert page.locator("#peer-chart rect").count() > 0
            fac_url = page.url
            # record an outcome
            lead_id = page.locator("#o-lead option").first.get_attribute("value")
            page.select_option("#o-outcome", "confirmed")
            page.fill("#o-amount", "888.5")
            page.fill("#o-note", "browser-test 查实")
            page.click("#o-save")
            page.wait_for_selector("#outcomes tr.outcome-row")
            assert "browser-test 查实" in page.locator("#outcomes").inner_text()
            browser.close()
        # restart the server: the outcome is still there
        stop(srv)
        srv = start_server(ws.path, port, log=log)
        wait_ready(port, proc=srv)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
            page = browser.new_page()
            page.set_default_timeout(20_000)
            page.goto(f"{base}/wb/login")
            page.fill("#token", token)
            page.click("#login")
            page.wait_for_selector("#suspects")
            page.goto(fac_url)
            page.wait_for_selector("#outcomes")
            text = page.locator("#outcomes").inner_text()
            assert "browser-test 查实" in text and lead_id in text
            # the suspect list shows the outcome and filters by it
            page.goto(f"{base}/wb/?status=confirmed&lang=en")
            page.wait_for_selector("#suspects")
            assert lead_id in page.locator("#suspects").inner_text()
            browser.close()
    finally:
        stop(srv)
    audit = (ws.path / "serve" / "audit.jsonl").read_text(encoding="utf-8")
    assert '"action": "outcome"' in audit and "王检查员" in audit
