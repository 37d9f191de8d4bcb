"""The review console in a real browser: open the queue, walk it with the keyboard, open a flag, confirm it
with a note, dismiss another, and find the verdicts in the outbox and the label file. Screenshots land in
tests/artifacts/review/ (git-ignored); the test prints where."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from review_fixtures import HOSTILE_PLAYER, World, build_world, console_for, running_console

from playerguard.review.queue import OutboxQueue
from playerguard.stream.notifiers.local import OutboxNotifier

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "review"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    webdriver = pytest.importorskip("selenium.webdriver")
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("needs Debian's chromium and chromium-driver (make browser installs them)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",  # Chromium refuses to run as root (CI) with its sandbox
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        "--window-size=1280,1600",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _shot(driver: object, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    driver.save_screenshot(str(path))  # type: ignore[attr-defined]
    print(f"screenshot: {path}")
    return path


def _wait(driver: object, condition: object, timeout: float = 10) -> object:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def test_a_reviewer_confirms_a_flag_from_the_queue_in_a_browser(
    browser: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver = browser
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    world: World = build_world(tmp_path / "home")
    monkeypatch.setenv("PLAYERGUARD_REVIEWER", "carol")
    top = world.flags[0]  # high severity: first in the queue
    with running_console(console_for(world)) as url:
        driver.get(url + "/")
        rows = driver.find_elements(By.CSS_SELECTOR, "#queue tbody tr[data-flag]")
        assert rows[0].get_attribute("data-flag") == top.flag_id
        assert len(rows) == len(world.flags)
        assert HOSTILE_PLAYER in driver.find_element(By.ID, "queue").text  # shown as text
        body = driver.find_element(By.TAG_NAME, "body")
        body.send_keys("j")
        body.send_keys("j")
        body.send_keys("k")
        selected = driver.find_element(By.CSS_SELECTOR, "#queue tr.selected")
        assert selected.get_attribute("data-flag") == top.flag_id
        _shot(driver, "01-queue.png")

        body.send_keys(Keys.ENTER)
        _wait(driver, lambda d: d.find_elements(By.ID, "reasons"))
        assert driver.find_element(By.ID, "player").text == top.player_id
        assert len(driver.find_elements(By.CSS_SELECTOR, "#reasons svg.pbar")) == 3
        assert driver.find_elements(By.CSS_SELECTOR, "#activity svg.bars")
        assert "sustained_headshots" in driver.find_element(By.ID, "rules").text
        assert driver.find_elements(By.CSS_SELECTOR, "#trend svg.lines circle")
        _shot(driver, "02-flag.png")

        driver.find_element(By.ID, "note").send_keys("aim snaps through smoke, 3 matches")
        driver.find_element(By.TAG_NAME, "h1").click()  # leave the note: shortcuts are off while typing
        driver.find_element(By.TAG_NAME, "body").send_keys("c")
        _wait(driver, lambda d: d.find_elements(By.ID, "notice"))
        notice = driver.find_element(By.ID, "notice").text
        assert "confirmed by carol" in notice and top.player_id in notice
        assert driver.find_element(By.ID, "player").text != top.player_id  # on to the next flag
        _shot(driver, "03-after-confirm.png")

        driver.find_element(By.TAG_NAME, "body").send_keys("u")  # back to the queue, one flag fewer
        _wait(driver, lambda d: d.find_elements(By.ID, "queue"))
        counts = driver.find_element(By.ID, "counts").text
        assert f"pending {len(world.flags) - 1}" in counts and "confirmed 1" in counts
        assert top.flag_id not in driver.page_source
        _shot(driver, "04-queue-after-verdict.png")

        hostile = next(f for f in world.flags if f.player_id == HOSTILE_PLAYER)
        driver.get(f"{url}/flags/{hostile.flag_id}")
        assert driver.find_element(By.ID, "player").text == HOSTILE_PLAYER
        assert driver.execute_script("return window.__pwned === undefined")
        _shot(driver, "05-hostile-player.png")
        driver.find_element(By.TAG_NAME, "body").send_keys("d")
        _wait(driver, lambda d: d.find_elements(By.ID, "notice"))
        assert "dismissed by carol" in driver.find_element(By.ID, "notice").text

    outbox = OutboxNotifier.from_home(world.home)
    assert outbox.entry(top.flag_id).status == "confirmed"
    outbox.close()
    review = OutboxQueue.from_home(world.home).last_review(top.flag_id)
    assert review is not None and (review.reviewer, review.note) == (
        "carol",
        "aim snaps through smoke, 3 matches",
    )
    labels = pq.read_table(world.home / "labels" / "review_verdicts.parquet").to_pylist()
    assert sorted(labels, key=lambda row: row["label"]) == [
        {"player_id": HOSTILE_PLAYER, "label": 0, "source": "review"},
        {"player_id": top.player_id, "label": 1, "source": "review"},
    ]
