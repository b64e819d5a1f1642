"""The web page in a real headless browser: Debian's chromium driven by selenium, a tiny model in-process.

Outside CI (``CI`` unset) the test skips, with the reason, when chromium or chromedriver is missing; in CI a
missing browser fails it (``.ci/run`` installs ``chromium chromium-driver fonts-noto-cjk``).
"""

import os
import shutil

import pytest
import torch

from helpers.talk_model import GREETING, serving, slowed, train_chat_model
from pedgpt.inference.safety import DISCLAIMER, triage
from pedgpt.inference.server import create_app

URGENT = "宝宝3个月，嘴唇发紫，喘不上气"

# Records, on every change of the page, whether the emergency banner shows and the last answer's text.
OBSERVE = """
window.pedgptLog = [];
const last = () => [...document.querySelectorAll('.msg.assistant')].pop();
new MutationObserver(() => window.pedgptLog.push({
  emergency: !document.getElementById('emergency').hidden,
  answer: last() ? last().textContent : null,
})).observe(document.body, {subtree: true, childList: true, characterData: true, attributes: true});
"""


def _browser_paths():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    missing = [name for name, path in (("chromium", chromium), ("chromedriver", driver)) if path is None]
    if missing:
        reason = f"{' and '.join(missing)} not installed (apt-get install chromium chromium-driver fonts-noto-cjk)"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser test: {reason}")
        pytest.skip(reason)
    return chromium, driver


@pytest.fixture
def browser(tmp_path):
    chromium, driver_path = _browser_paths()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1000,900",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def loaded():
    torch.set_num_threads(1)
    return train_chat_model()


def _send(driver, text):
    from selenium.webdriver.common.by import By

    box = driver.find_element(By.ID, "input")
    box.clear()
    box.send_keys(text)
    driver.find_element(By.ID, "send").click()


def _answer_done(driver):
    return driver.execute_script(
        "const a = [...document.querySelectorAll('.msg.assistant')].pop();"
        "return a && !a.classList.contains('streaming') && !document.getElementById('send').disabled ? a.textContent : null;"
    )


def test_page_streams_answers_and_shows_the_emergency_banner(browser, loaded, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    wait = WebDriverWait(browser, 60, poll_frequency=0.1)
    with serving(create_app(loaded, default_task="consult")) as url, slowed(loaded.model, 0.03):
        browser.get(url)
        wait.until(lambda d: d.execute_script("return document.body.dataset.ready === '1'"))
        assert DISCLAIMER in browser.find_element(By.ID, "disclaimer").text
        select = Select(browser.find_element(By.ID, "task"))
        assert select.first_selected_option.get_attribute("value") == "consult"
        assert {"medkqa", "evidiag", "trerecom", "consult", "general"} <= {
            o.get_attribute("value") for o in select.options
        }
        assert not browser.find_element(By.ID, "emergency").is_displayed()

        browser.execute_script(OBSERVE)
        _send(browser, GREETING[0])
        assert wait.until(_answer_done) == GREETING[1]
        partial = {e["answer"] for e in browser.execute_script("return window.pedgptLog") if e["answer"]}
        assert len(partial) >= 3 and all(GREETING[1].startswith(p) for p in partial)  # it grew piece by piece
        assert not browser.find_element(By.ID, "emergency").is_displayed()

        browser.find_element(By.ID, "new-chat").click()
        assert browser.find_elements(By.CSS_SELECTOR, ".msg") == []
        browser.execute_script(OBSERVE)
        _send(browser, URGENT)
        wait.until(_answer_done)
        banner = browser.find_element(By.ID, "emergency")
        assert banner.is_displayed() and triage(URGENT).message in banner.text
        log = browser.execute_script("return window.pedgptLog")
        first_shown = next(e for e in log if e["emergency"])
        assert not first_shown["answer"]  # the guidance came before any model text
        kinds = [e.get_attribute("class") for e in browser.find_elements(By.CSS_SELECTOR, ".msg")]
        assert kinds[:2] == ["msg user", "msg urgent"] and kinds[2].startswith("msg assistant")
        shot = tmp_path / "chat.png"
        assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000

        browser.find_element(By.ID, "new-chat").click()
        assert not browser.find_element(By.ID, "emergency").is_displayed()
