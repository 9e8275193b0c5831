"""Approval pages in a real browser: headless Chromium (Debian's chromium + chromium-driver) with Selenium.

Runs against a ``chalice local`` process. Nothing is downloaded: the browser and
its driver are the system's; the diagram script is switched off so the pages
need no network. Screenshots go to a temporary folder, and also to
``$BROWSER_SCREENSHOTS_DIR`` when set (``make screenshots`` refreshes docs/).
"""
from __future__ import annotations

import json
import os
import shutil

import pytest

from ..local_server import call, chalice_local

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars"]

try:
    from selenium import webdriver
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.chrome.service import Service as DriverService
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait
except ImportError:  # pragma: no cover - .ci/run installs it
    webdriver = None

MISSING = [what for what, ok in (
    ("the selenium package (pip install -r requirements-dev.txt)", webdriver is not None),
    (f"Chromium at {CHROMIUM} (apt-get install chromium)", os.access(CHROMIUM, os.X_OK)),
    (f"chromedriver at {CHROMEDRIVER} (apt-get install chromium-driver)", os.access(CHROMEDRIVER, os.X_OK)),
) if not ok]
pytestmark = pytest.mark.skipif(bool(MISSING), reason="no browser to test with: missing " + "; ".join(MISSING))

REQUEST = {"item": "standing desk", "requester": "Mia", "reason": "Back pain; the doctor recommends it.",
           "approver": "lead@example.com"}


@pytest.fixture
def server(redis_client, tmp_path):
    with chalice_local(tmp_path / "chalice-local.log", OUTBOX_DIR=str(tmp_path / "outbox"),
                       EMAIL_MODE="outbox", DIAGRAM_SCRIPT_URL="") as base:
        yield base


def make_browser(profile, javascript: bool = True, width: int = 900, height: int = 1300):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS + [f"--user-data-dir={profile}", f"--window-size={width},{height}"]:
        options.add_argument(flag)
    if not javascript:
        options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium fetch a driver
    return webdriver.Chrome(service=DriverService(executable_path=CHROMEDRIVER), options=options)


@pytest.fixture
def screenshots(tmp_path):
    folder = tmp_path / "screenshots"
    folder.mkdir()
    extra = os.environ.get("BROWSER_SCREENSHOTS_DIR")

    def take(browser, name: str) -> None:
        path = folder / f"{name}.png"
        assert browser.save_screenshot(str(path))
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        if extra:
            os.makedirs(extra, exist_ok=True)
            shutil.copy(path, os.path.join(extra, f"{name}.png"))

    return take


def start(server: str) -> dict:
    status, document = call("POST", server + "/executions",
                            json.dumps({"stateMachine": "approval", "input": REQUEST}).encode())
    assert status == 200 and document["status"] == "SUSPENDED", document
    return document


def execution(server: str, document: dict) -> dict:
    return call("GET", f"{server}/executions/{document['executionId']}")[1]


def wait_for_page(browser, eyebrow: str) -> None:
    """Until the page's eyebrow line reads ``eyebrow`` (shown in capitals by the style sheet).

    While the old page goes, reading it may fail (a stale element, or Chromium's "unhandled inspector
    error" mid-navigation): such reads are retried until the new page is there or the wait times out.
    """
    WebDriverWait(browser, 15, ignored_exceptions=(StaleElementReferenceException, WebDriverException)).until(
        lambda b: any(e.text.lower() == eyebrow for e in b.find_elements(By.CSS_SELECTOR, ".eyebrow")))


def heading(browser) -> str:
    return browser.find_element(By.TAG_NAME, "h1").text


def test_approver_answers_with_the_form_without_javascript(server, tmp_path, screenshots):
    document = start(server)
    [waiting] = document["continuations"]
    browser = make_browser(tmp_path / "profile", javascript=False)
    try:
        browser.get(waiting["url"])
        assert heading(browser) == "Approve standing desk for Mia?"
        page = browser.find_element(By.TAG_NAME, "main").text
        assert "Back pain; the doctor recommends it." in page and "lead@example.com" not in page
        assert execution(server, document)["status"] == "SUSPENDED"  # opening the page changed nothing
        browser.find_element(By.CSS_SELECTOR, "label[for=choice-1]").click()  # labels work as controls
        assert browser.find_element(By.ID, "choice-1").is_selected()
        browser.find_element(By.ID, "field-1").send_keys("Fine, within budget.")
        screenshots(browser, "approval-page")
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait_for_page(browser, "answer recorded")
        outcome = browser.find_element(By.TAG_NAME, "main").text
        assert "approve" in outcome and "Fine, within budget." in outcome
        assert [li.text for li in browser.find_elements(By.CSS_SELECTOR, "ol.trail li")] == ["Decide", "Approved"]
        assert "The workflow has finished." in outcome
        screenshots(browser, "outcome-page")
    finally:
        browser.quit()
    done = execution(server, document)
    assert done["status"] == "SUCCEEDED"
    assert done["output"]["outcome"] == "approved"
    assert done["output"]["answer"] == {"decision": "approve", "comment": "Fine, within budget."}


def test_one_click_link_decides_only_when_the_button_is_pressed(server, tmp_path, screenshots):
    document = start(server)
    [waiting] = document["continuations"]
    browser = make_browser(tmp_path / "profile")
    try:  # a phone's screen: 360 CSS pixels wide
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                {"width": 360, "height": 740, "deviceScaleFactor": 2, "mobile": True})
        browser.get(waiting["decisions"]["reject"])
        assert heading(browser) == "Approve standing desk for Mia?"
        assert "You are about to answer: reject" in browser.find_element(By.TAG_NAME, "main").text
        browser.refresh()  # a scanner or a second look: still nothing decided
        assert execution(server, document)["status"] == "SUSPENDED"
        assert call("GET", waiting["url"])[1]["status"] == "waiting"
        assert browser.execute_script(
            "return window.innerWidth === 360 && document.documentElement.scrollWidth <= 360")  # no sideways scrolling
        screenshots(browser, "confirm-page")
        [button] = browser.find_elements(By.CSS_SELECTOR, "button[type=submit]")
        assert button.text == "Confirm: reject"
        button.click()
        wait_for_page(browser, "answer recorded")
        assert execution(server, document)["output"]["outcome"] == "rejected"
        browser.get(waiting["decisions"]["approve"])  # the other link, later: it is used up
        wait_for_page(browser, "already answered")
        assert not browser.find_elements(By.CSS_SELECTOR, "button")
    finally:
        browser.quit()
    assert execution(server, document)["output"]["answer"] == {"decision": "reject"}


def test_developer_lists_executions_and_follows_one_to_its_questions(server, tmp_path, screenshots):
    """The list page with its filters, an execution's page (status, questions, history, diagram), and on
    from there to the question's own page."""
    document = start(server)
    other = call("POST", server + "/executions", json.dumps({"stateMachine": "incsquare", "input": {"value": 2}}).encode())[1]
    assert call("POST", f"{server}/continuations/{other['continuations'][0]['id']}", b"{}")[1]["status"] == "SUCCEEDED"
    browser = make_browser(tmp_path / "profile")
    try:
        browser.get(server + "/executions")
        wait_for_page(browser, "executions")
        rows = browser.find_elements(By.CSS_SELECTOR, "#executions tbody tr")
        assert [r.find_elements(By.TAG_NAME, "td")[2].text for r in rows] == ["SUCCEEDED", "SUSPENDED"]
        Select(browser.find_element(By.ID, "filter-status")).select_by_value("SUSPENDED")
        browser.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").click()
        WebDriverWait(browser, 15).until(lambda b: "status=SUSPENDED" in b.current_url)
        [row] = browser.find_elements(By.CSS_SELECTOR, "#executions tbody tr")
        assert row.find_element(By.TAG_NAME, "td").text == document["executionId"]
        screenshots(browser, "executions-page")
        row.find_element(By.TAG_NAME, "a").click()
        wait_for_page(browser, "execution")
        assert browser.find_element(By.ID, "execution-status").text == "SUSPENDED"
        assert heading(browser) == document["executionId"]
        [question] = browser.find_elements(By.CSS_SELECTOR, "#questions li")
        assert "Approve standing desk for Mia?" in question.text and "AskByEmail" in question.text
        events = [r.find_elements(By.TAG_NAME, "td")[1].text for r in browser.find_elements(By.CSS_SELECTOR, "#history tbody tr")]
        assert events[0] == "ExecutionStarted" and events[-1] == "ExecutionSuspended"
        browser.find_element(By.CSS_SELECTOR, "#diagram-box summary").click()  # no diagram script: its text
        diagram = browser.find_element(By.ID, "diagram").text
        assert '["AskByEmail"]' in diagram and " waiting" in diagram
        screenshots(browser, "execution-page")
        question.find_element(By.LINK_TEXT, "Open the question").click()
        wait_for_page(browser, "your answer is needed")
        assert heading(browser) == "Approve standing desk for Mia?"
    finally:
        browser.quit()
    assert execution(server, document)["status"] == "SUSPENDED"  # looking changed nothing
