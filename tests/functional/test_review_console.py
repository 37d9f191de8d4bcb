"""The review console over real HTTP on loopback: the queue, a flag's evidence, escaping, CSRF, verdicts with
their override guard, the access token, and verdicts reaching the next training set."""

from __future__ import annotations

import html
import http.client
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pandas as pd
import pyarrow.parquet as pq
import pytest
from review_fixtures import FLAG_DAY, HOSTILE_PLAYER, World, build_world, console_for, running_console

from playerguard.errors import ConfigError
from playerguard.features.api import build_training_set
from playerguard.inference.flags import Flag
from playerguard.review.commands import check_binding
from playerguard.review.queue import OutboxQueue, QueueFilter
from playerguard.review.verdicts import VerdictConflict, record_verdict
from playerguard.settings import Settings
from playerguard.stream.notifiers.local import OutboxNotifier


class Client:
    """A browser-ish HTTP client: keeps cookies, never follows redirects."""

    def __init__(self, base: str, headers: dict[str, str] | None = None) -> None:
        self.netloc = urlsplit(base).netloc
        self.cookies: dict[str, str] = {}
        self.headers = headers or {}

    def request(
        self,
        method: str,
        path: str,
        form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], str]:
        connection = http.client.HTTPConnection(self.netloc, timeout=30)
        sent = {**self.headers, **(headers or {})}
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form)
            sent.setdefault("Content-Type", "application/x-www-form-urlencoded")
        connection.request(method, path, body=body, headers=sent)
        response = connection.getresponse()
        text = response.read().decode()
        for name, value in response.getheaders():
            if name.lower() == "set-cookie":
                key, _, rest = value.partition("=")
                self.cookies[key] = rest.split(";")[0]
        connection.close()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, text

    def get(self, path: str, **kwargs: object) -> tuple[int, dict[str, str], str]:
        return self.request("GET", path, **kwargs)  # type: ignore[arg-type]

    def post(self, path: str, form: dict[str, str], **kwargs: object) -> tuple[int, dict[str, str], str]:
        return self.request("POST", path, form, **kwargs)  # type: ignore[arg-type]


def _csrf(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]


def _queue_ids(page: str) -> list[str]:
    return re.findall(r'<tr data-href="[^"]*" data-flag="([0-9a-f]+)"', page)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("review") / "home")


@pytest.fixture
def world(pristine: World, tmp_path: Path) -> World:
    """A copy of the module's world that a test may change."""
    home = tmp_path / "world"
    shutil.copytree(pristine.home, home)
    return World(Settings(home=home), pristine.features, pristine.flags)


@pytest.fixture
def site(world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("PLAYERGUARD_REVIEWER", "alice")
    with running_console(console_for(world)) as url:
        yield url


def _flag(world: World, player_id: str | None = None, model: str = "inhuman_play") -> Flag:
    return next(
        f for f in world.flags if f.model == model and (player_id is None or f.player_id == player_id)
    )


def test_the_queue_lists_pending_flags_most_severe_and_highest_score_first(world: World, site: str) -> None:
    status, headers, page = Client(site).get("/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    severity = {"high": 0, "medium": 1, "low": 2}
    expected = sorted(world.flags, key=lambda f: (severity[f.severity], -f.score, f.flag_id))
    assert _queue_ids(page) == [f.flag_id for f in expected]
    assert 'data-status="pending">pending <b>7</b>' in page and "confirmed <b>0</b>" in page
    assert "default-src 'none'" in headers["content-security-policy"]


def test_the_queue_filters_by_model_action_day_and_status(world: World, site: str) -> None:
    client = Client(site)
    churn = {f.flag_id for f in world.flags if f.model == "churn"}
    assert set(_queue_ids(client.get("/?model=churn")[2])) == churn
    assert set(_queue_ids(client.get("/?action=retention_offer&day=2026-01-10")[2])) == churn
    assert _queue_ids(client.get("/?day=2026-01-09")[2]) == []
    assert _queue_ids(client.get("/?status=confirmed")[2]) == []
    assert len(_queue_ids(client.get("/?status=all")[2])) == len(world.flags)
    status, _, page = client.get("/?status=maybe")
    assert status == 400 and "status must be" in page


def test_pages_of_the_queue_follow_each_other_and_read_indexes(world: World) -> None:
    queue = OutboxQueue.from_home(world.home)
    queue.prepare()
    everything = queue.page(QueueFilter(), 1, page_size=100).rows
    pages = [queue.page(QueueFilter(), n, page_size=3) for n in (1, 2, 3)]
    assert [r.flag_id for p in pages for r in p.rows] == [r.flag_id for r in everything]
    assert pages[0].pages == 3 and pages[0].total == len(world.flags)
    for filters in (
        QueueFilter(),
        QueueFilter(model="churn"),
        QueueFilter(action="review"),
        QueueFilter(None),
    ):
        plan = queue.query_plan(filters)
        assert "TEMP B-TREE" not in plan and "USING INDEX review_queue" in plan, plan
    # a day is a range on the outbox's (status, event_epoch) index; only that day's flags are then sorted
    assert "USING INDEX flags_status" in queue.query_plan(QueueFilter(day="2026-01-10"))


def test_values_from_flags_render_as_text_never_as_markup(world: World, site: str) -> None:
    hostile = _flag(world, HOSTILE_PLAYER)
    client = Client(site)
    for path in ("/", f"/flags/{hostile.flag_id}"):
        status, _, page = client.get(path)
        assert status == 200
        assert "<script>window" not in page and "<b>bold</b>" not in page
        assert html.escape(HOSTILE_PLAYER) in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page
    status, _, page = client.get("/flags/%3Cscript%3E")
    assert status == 404 and "<script>" not in page and "&lt;script&gt;" in page


def test_a_flag_page_shows_scores_reasons_against_the_population_rules_play_and_history(
    world: World, site: str
) -> None:
    top = world.flags[0]  # the highest headshot rate of the simulated players
    _, _, page = Client(site).get(f"/flags/{top.flag_id}")
    assert f'<span id="player">{top.player_id}</span>' in page
    assert '<tr data-model="inhuman_play"><td>inhuman_play</td><td class="num">0.950</td><td>3</td>' in page
    assert "not flagged" in page  # churn and purchase: no flag for this player
    headshot = re.search(r"<code>headshot_rate_28d</code>.*?<span class=\"pct\">p(\d+)</span>", page)
    assert headshot is not None and int(headshot.group(1)) >= 95
    with_values = int(
        world.features["headshot_rate_28d"].notna().sum()
    )  # the snapshot's players with a value
    assert f"{with_values} players" in page
    assert '<ul id="rules"><li><code>sustained_headshots</code>' in page
    lake = pd.read_parquet(world.settings.lake_dir / "events" / "event_date=2026-01-10")
    matches = int(((lake["player_id"] == top.player_id) & (lake["event_type"] == "match_end")).sum())
    row = re.search(
        r"<td>match_end</td><td><svg.*?</svg></td><td class=\"num\">[\d,]+</td><td class=\"num\">(\d+)", page
    )
    assert row is not None and int(row.group(1)) == matches
    assert '<tr class="current"><td><a href="/flags/' + top.flag_id in page
    day = lake[(lake["player_id"] == top.player_id) & (lake["event_type"] == "match_end")]
    rate = day["headshots"].sum() / day["hits"].sum()  # the attribute behind the top reason, on the flag day
    trend = re.search(r'<section id="trend">.*?</section>', page, re.DOTALL)
    assert trend is not None and "sum(headshots) / sum(hits) on match_end" in trend.group(0)
    assert f"{FLAG_DAY}: {rate:.4g}</title>" in trend.group(0)


def test_a_verdict_post_without_the_csrf_token_or_from_another_origin_is_refused(
    world: World, site: str
) -> None:
    flag = _flag(world)
    client = Client(site)
    token = _csrf(client.get(f"/flags/{flag.flag_id}")[2])
    path = f"/flags/{flag.flag_id}/verdict"
    stranger = Client(site)
    assert stranger.post(path, {"verdict": "confirmed", "csrf": token})[0] == 403  # no cookie
    assert client.post(path, {"verdict": "confirmed", "csrf": "x" * 43})[0] == 403  # wrong token
    forged = client.post(
        path, {"verdict": "confirmed", "csrf": token}, headers={"Origin": "http://evil.example"}
    )
    assert forged[0] == 403
    assert OutboxNotifier.from_home(world.home).entry(flag.flag_id).status == "pending"


def test_confirm_then_a_changed_verdict_needs_an_override_and_says_what_it_replaces(
    world: World, site: str
) -> None:
    flag = _flag(world)
    labels = world.home / "labels" / "review_verdicts.parquet"
    client = Client(site)
    path = f"/flags/{flag.flag_id}"
    token = _csrf(client.get(path)[2])

    status, headers, _ = client.post(
        path + "/verdict", {"verdict": "confirmed", "note": "aimbot <3", "csrf": token}
    )
    assert status == 303 and f"done={flag.flag_id}" in headers["location"]
    assert headers["location"].startswith("/flags/")  # on to the next flag of the queue
    assert OutboxNotifier.from_home(world.home).entry(flag.flag_id).status == "confirmed"
    assert pq.read_table(labels).to_pylist() == [
        {"player_id": flag.player_id, "label": 1, "source": "review"}
    ]
    _, _, after = client.get(headers["location"])
    assert 'id="notice"' in after and "confirmed by alice" in after

    status, _, page = client.post(path + "/verdict", {"verdict": "dismissed", "csrf": token})
    assert status == 409 and "already confirmed" in page and 'id="override"' in page
    assert OutboxNotifier.from_home(world.home).entry(flag.flag_id).status == "confirmed"

    status, headers, _ = client.post(
        path + "/verdict", {"verdict": "dismissed", "override": "1", "csrf": token}
    )
    assert status == 303
    assert OutboxNotifier.from_home(world.home).entry(flag.flag_id).status == "dismissed"
    assert pq.read_table(labels).to_pylist() == [
        {"player_id": flag.player_id, "label": 0, "source": "review"}
    ]
    _, _, page = client.get(path)
    assert "dismissed by alice, replacing confirmed" not in page  # the banner shows only after a post
    _, _, banner = client.get(f"{path}?done={flag.flag_id}")
    assert "dismissed by alice, replacing confirmed" in banner
    assert "alice confirmed: aimbot &lt;3" in page  # the history keeps every verdict and note, escaped
    assert "alice dismissed (replacing confirmed)" in page


def test_the_reviewer_header_names_the_reviewer(world: World, site: str) -> None:
    flag = _flag(world, model="churn")
    client = Client(site, headers={"X-Playerguard-Reviewer": "bob@studio"})
    token = _csrf(client.get(f"/flags/{flag.flag_id}")[2])
    status, _, _ = client.post(f"/flags/{flag.flag_id}/verdict", {"verdict": "dismissed", "csrf": token})
    assert status == 303
    assert OutboxQueue.from_home(world.home).last_review(flag.flag_id).reviewer == "bob@studio"
    assert not (world.home / "labels" / "review_verdicts.parquet").exists()  # churn verdicts are not labels


def test_confirmed_players_are_positive_and_dismissed_negative_in_the_next_training_set(
    world: World, site: str
) -> None:
    confirmed, dismissed = world.flags[0], world.flags[1]
    client = Client(site)
    for flag, verdict in ((confirmed, "confirmed"), (dismissed, "dismissed")):
        token = _csrf(client.get(f"/flags/{flag.flag_id}")[2])
        assert client.post(f"/flags/{flag.flag_id}/verdict", {"verdict": verdict, "csrf": token})[0] == 303
    training = build_training_set(world.settings, [datetime(2026, 1, 8, tzinfo=UTC)], horizon_days=2)
    labels = training.set_index("player_id")["label_inhuman_play"]
    assert labels[confirmed.player_id] == 1 and labels[dismissed.player_id] == 0
    others = labels.drop([confirmed.player_id, dismissed.player_id])
    assert others.isna().all()  # no other label source in this world


def test_off_loopback_needs_allow_remote_and_a_token(world: World) -> None:
    check_binding("127.0.0.1", False, None)
    with pytest.raises(ConfigError, match="--allow-remote"):
        check_binding("0.0.0.0", False, "t" * 20)
    with pytest.raises(ConfigError, match="token"):
        check_binding("0.0.0.0", True, None)
    check_binding("0.0.0.0", True, "t" * 20)
    secret = "s3cret-token-for-the-test"
    with running_console(console_for(world, token=secret)) as url:
        client = Client(url)
        assert client.get("/")[0] == 401
        assert Client(url, headers={"Authorization": f"Bearer {secret}"}).get("/")[0] == 200
        status, headers, _ = client.get(f"/?status=all&token={secret}")
        assert status == 303 and headers["location"] == "/?status=all" and client.cookies
        assert client.get("/")[0] == 200


def test_the_review_command_serves_the_home_it_is_given(world: World, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "playerguard.cli", "review", "--port", "0", "--home", str(world.home)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()  # type: ignore[union-attr]
        url = re.search(r"on (http://127\.0\.0\.1:\d+)", line)
        assert url is not None, line + process.stderr.read()  # type: ignore[union-attr]
        deadline = time.monotonic() + 20
        while True:
            try:
                status, _, page = Client(url.group(1)).get("/")
                break
            except ConnectionError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert status == 200 and len(_queue_ids(page)) == len(world.flags)
    finally:
        process.terminate()
        process.wait(timeout=20)
    refused = subprocess.run(
        [*command[:-4], "--host", "0.0.0.0", "--home", str(world.home)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode == 2 and "--allow-remote" in refused.stderr


def test_a_verdict_racing_another_reviewer_is_refused_rather_than_overwriting(world: World) -> None:
    flag = _flag(world)
    queue = OutboxQueue.from_home(world.home)
    queue.prepare()
    outbox = OutboxNotifier.from_home(world.home)
    seen = outbox.entry(flag.flag_id)  # pending when this reviewer looked
    outbox.review(flag.flag_id, "confirmed")  # another reviewer, meanwhile
    reads = iter([seen])
    real_entry = outbox.entry
    outbox.entry = lambda flag_id: next(reads, None) or real_entry(flag_id)  # type: ignore[method-assign]
    with pytest.raises(VerdictConflict, match="already confirmed"):
        record_verdict(outbox, queue, world.home, flag.flag_id, "dismissed", reviewer="dave")
    assert real_entry(flag.flag_id).status == "confirmed" and queue.last_review(flag.flag_id) is None
    outbox.close()
