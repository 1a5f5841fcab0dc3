"""Xero OAuth2 against the fake: consent on localhost, sealed grants, one refresh for every worker.

Each worker is a token source over a state-store engine of its own (its own connections),
as two processes would be, against SQLite and PostgreSQL stores alike.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from sync.connectors.xero.connect import ConnectFailed, connect
from sync.connectors.xero.fake import FakeXero
from sync.connectors.xero.grant_source import OAuthTokenSource
from sync.connectors.xero.oauth import DEFAULT_SCOPES, XeroApp, consent_request, oauth_token_source
from sync.connectors.xero.tokens import XeroTokenSource
from sync.exceptions import Fatal
from sync.state.oauth_grants import OAUTH_GRANTS, GrantStore, NotConnected, ReconnectNeeded
from sync.state.sealing import KEYS_ENV, Sealer, SealingError
from sync.state.store import StateDatabase
from tests.conftest import MINTED_TOKENS, private_pg_schema

CLIENT_SECRET = "xero-client-secret-for-the-tests"
KEY_OLD, KEY_NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()
MINTED_TOKENS.update({CLIENT_SECRET, KEY_OLD, KEY_NEW})


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def xero(clock: Clock) -> Iterator[FakeXero]:
    fake = FakeXero(client_secret=CLIENT_SECRET, clock=clock)
    yield fake
    # Every token the fake issued is a secret the session's log check looks for.
    MINTED_TOKENS.update(fake.access, fake.refresh)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
        return
    with private_pg_schema() as url:
        yield url


def _app(port: int = 8765) -> XeroApp:
    base = "http://xero.test"
    return XeroApp("sandbox-client", CLIENT_SECRET, identity_url=base, login_url=base, api_url=base,
                   redirect_uri=f"http://127.0.0.1:{port}/callback")  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _store(url: str, clock: Clock, keys: list[str] | None = None) -> GrantStore:
    db = StateDatabase(url)
    db.migrate()
    return GrantStore(db, Sealer(keys or [KEY_NEW]), clock=clock)


def _follow_consent(xero: FakeXero) -> callable:  # type: ignore[valid-type]
    """What a browser does: open the consent URL, then follow Xero's redirect to the localhost callback."""

    def browse(url: str) -> None:
        with httpx.Client(transport=httpx.MockTransport(xero.handler)) as to_xero:
            answer = to_xero.get(url)
        assert answer.status_code == 302
        httpx.get(answer.headers["location"], timeout=5)

    return browse


def _connected(xero: FakeXero, store: GrantStore, name: str = "books") -> None:
    app = _app(_free_port())
    with httpx.Client(transport=httpx.MockTransport(xero.handler)) as http:
        connect(app, store, name, http, echo=lambda _: None, on_url=_follow_consent(xero), timeout_s=10)


def _source(store: GrantStore, xero: FakeXero, name: str = "books") -> OAuthTokenSource:
    return OAuthTokenSource(store, name, _app(), httpx.Client(transport=httpx.MockTransport(xero.handler)))


def _works(xero: FakeXero, token: str) -> bool:
    with httpx.Client(transport=httpx.MockTransport(xero.handler)) as http:
        return http.get("http://xero.test/connections", headers={"Authorization": f"Bearer {token}"}).is_success


# -- consent ----------------------------------------------------------------------------------------


def test_consent_url_asks_for_granular_scopes_with_state_and_pkce() -> None:
    request = consent_request("cid", "http://localhost:8765/callback")
    url = httpx.URL(request.url)
    assert url.host == "login.xero.com" and url.path == "/identity/connect/authorize"
    scopes = url.params["scope"].split()
    assert scopes == list(DEFAULT_SCOPES) and "offline_access" in scopes
    assert "accounting.transactions" not in scopes and "accounting.reports.read" not in scopes
    assert url.params["state"] == request.state and len(request.state) >= 32
    assert url.params["code_challenge_method"] == "S256" and request.code_verifier not in request.url
    assert consent_request("cid", "http://localhost:8765/callback").state != request.state


def test_connect_stores_a_sealed_grant_with_the_tenant(xero: FakeXero, tmp_path: Path, clock: Clock) -> None:
    store = _store(f"sqlite:///{tmp_path / 'state.db'}", clock)
    lines: list[str] = []
    app = _app(_free_port())
    with httpx.Client(transport=httpx.MockTransport(xero.handler)) as http:
        connect(app, store, "books", http, echo=lines.append, on_url=_follow_consent(xero), timeout_s=10)
    grant = store.load("books")
    assert grant is not None and grant.tenant_id == xero.tenant_id and grant.status == "connected"
    assert _works(xero, grant.access_token)
    assert any("login" not in line and xero.tenant_id in line for line in lines)
    with store.db.engine.connect() as conn:
        stored = conn.execute(sa.select(OAUTH_GRANTS)).mappings().one()
    # At rest the tokens are Fernet tokens, not the tokens themselves.
    assert grant.access_token not in str(dict(stored)) and grant.refresh_token not in str(dict(stored))
    assert grant.access_token not in repr(grant) and grant.access_token not in " ".join(lines)


def test_a_callback_with_another_state_is_refused_and_waited_past(xero: FakeXero, tmp_path: Path, clock: Clock) -> None:
    store = _store(f"sqlite:///{tmp_path / 'state.db'}", clock)
    app = _app(_free_port())
    forged: list[int] = []

    def attacker_then_browser(url: str) -> None:
        code = xero.consent()  # a code the attacker got for their own organisation
        forged.append(httpx.get(f"{app.redirect_uri}?code={code}&state=forged", timeout=5).status_code)
        _follow_consent(xero)(url)

    with httpx.Client(transport=httpx.MockTransport(xero.handler)) as http:
        connect(app, store, "books", http, echo=lambda _: None, on_url=attacker_then_browser, timeout_s=10)
    assert forged == [400]
    assert xero.refreshes == 0 and len(xero.codes) == 1  # the forged code was never exchanged


def test_refused_consent_and_no_callback_fail_plainly(xero: FakeXero, tmp_path: Path, clock: Clock) -> None:
    store = _store(f"sqlite:///{tmp_path / 'state.db'}", clock)
    app = _app(_free_port())

    def deny(url: str) -> None:
        state = httpx.URL(url).params["state"]
        httpx.get(f"{app.redirect_uri}?error=access_denied&state={state}", timeout=5)

    with httpx.Client(transport=httpx.MockTransport(xero.handler)) as http:
        with pytest.raises(ConnectFailed, match="access_denied"):
            connect(app, store, "books", http, echo=lambda _: None, on_url=deny, timeout_s=10)
        with pytest.raises(ConnectFailed, match="no callback"):
            connect(_app(_free_port()), store, "books", http, echo=lambda _: None, timeout_s=0.2)
    assert store.load("books") is None


def test_the_code_is_worthless_without_the_pkce_verifier(xero: FakeXero) -> None:
    request = consent_request(
        "sandbox-client", "http://127.0.0.1:1/cb", authorize_url="http://xero.test/identity/connect/authorize"
    )
    with httpx.Client(transport=httpx.MockTransport(xero.handler)) as http:
        code = httpx.URL(http.get(request.url).headers["location"]).params["code"]
        answer = http.post("http://xero.test/connect/token", auth=("sandbox-client", CLIENT_SECRET),
                           data={"grant_type": "authorization_code", "code": code, "redirect_uri": "http://127.0.0.1:1/cb",
                                 "code_verifier": "not-the-verifier" * 4})  # fmt: skip
    assert answer.status_code == 400 and answer.json() == {"error": "invalid_grant"}


# -- refresh ----------------------------------------------------------------------------------------


def test_two_workers_refreshing_at_once_both_keep_working(xero: FakeXero, store_url: str, clock: Clock) -> None:
    _connected(xero, _store(store_url, clock))
    workers = [_source(_store(store_url, clock), xero) for _ in range(2)]
    assert all(isinstance(w, XeroTokenSource) for w in workers)
    first = [w.access_token() for w in workers]
    assert first[0] == first[1] and xero.refreshes == 0

    clock.now += 31 * 60  # the access token expired for everyone
    xero.latency_s = 0.3  # the refresh stays in flight while the other worker arrives
    start = threading.Barrier(2)
    tokens: list[str] = []
    errors: list[BaseException] = []

    def work(source: OAuthTokenSource) -> None:
        start.wait()
        try:
            tokens.append(source.access_token())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    xero.latency_s = 0
    assert errors == []
    assert xero.refreshes == 1  # the loser read the stored new pair instead of refreshing again
    assert len(set(tokens)) == 1 and tokens[0] != first[0] and _works(xero, tokens[0])

    clock.now += 31 * 60  # and the rotated refresh token that was stored works for the next round
    assert _works(xero, workers[1].access_token()) and xero.refreshes == 2


def test_a_refused_access_token_is_refreshed_once(xero: FakeXero, tmp_path: Path, clock: Clock) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    _connected(xero, _store(url, clock))
    source = _source(_store(url, clock), xero)
    token = source.access_token()
    xero.access.pop(token)  # Xero dropped it early
    source.invalidate()
    fresh = source.access_token()
    assert fresh != token and _works(xero, fresh) and xero.refreshes == 1
    assert source.access_token() == fresh and xero.refreshes == 1


def test_a_revoked_grant_needs_reconnecting_without_a_retry_storm(
    xero: FakeXero, tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    from structlog.testing import capture_logs

    url = f"sqlite:///{tmp_path / 'state.db'}"
    _connected(xero, _store(url, clock))
    source = _source(_store(url, clock), xero)
    xero.revoke()
    clock.now += 31 * 60
    before = xero.requests
    with capture_logs() as logs:
        with pytest.raises(ReconnectNeeded, match="reconnect") as raised:
            source.access_token()
        for _ in range(5):  # every later call (any worker) fails at once
            with pytest.raises(ReconnectNeeded):
                source.access_token()
        with pytest.raises(ReconnectNeeded):
            _source(_store(url, clock), xero).access_token()
    assert isinstance(raised.value, Fatal)  # the connector stops the run on Fatal
    assert xero.requests - before == 1  # one refused refresh, then nothing
    alerts = [e for e in logs if e.get("alert")]
    assert len(alerts) == 1 and alerts[0]["log_level"] == "error" and "reconnect" in alerts[0]["event"]
    grant = _store(url, clock).load("books")
    assert grant is not None and grant.status == "reconnect" and "invalid_grant" in (grant.reason or "")

    from sync.cli_xero import grant_lines

    assert any("RECONNECT NEEDED" in line for line in grant_lines(url))
    from sync.state.sync_store import SyncStore

    assert SyncStore(StateDatabase(url)).grants()["books"]["status"] == "reconnect_needed"  # the alert's input
    _connected(xero, _store(url, clock))  # a person consents again: the grant works again
    assert _works(xero, _source(_store(url, clock), xero).access_token())
    assert SyncStore(StateDatabase(url)).grants()["books"]["status"] == "ok"


def test_a_refresh_token_inside_its_grace_still_refreshes(xero: FakeXero, tmp_path: Path, clock: Clock) -> None:
    """The reason a lost answer is harmless: the refresh token sent stays valid for 30 minutes."""
    url = f"sqlite:///{tmp_path / 'state.db'}"
    _connected(xero, _store(url, clock))
    old = _store(url, clock).load("books")
    assert old is not None
    with httpx.Client(transport=httpx.MockTransport(xero.handler)) as http:

        def refresh(token: str) -> int:
            return http.post("http://xero.test/connect/token", auth=("sandbox-client", CLIENT_SECRET),
                             data={"grant_type": "refresh_token", "refresh_token": token}).status_code  # fmt: skip

        assert refresh(old.refresh_token) == 200
        clock.now += 29 * 60
        assert refresh(old.refresh_token) == 200
        clock.now += 2 * 60
        assert refresh(old.refresh_token) == 400


def test_not_connected_is_a_plain_fatal(xero: FakeXero, tmp_path: Path, clock: Clock) -> None:
    source = _source(_store(f"sqlite:///{tmp_path / 'state.db'}", clock), xero)
    with pytest.raises(NotConnected, match="xero connect"):
        source.access_token()


# -- sealing ----------------------------------------------------------------------------------------


def test_key_rotation_loses_nothing(xero: FakeXero, tmp_path: Path, clock: Clock) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    _connected(xero, _store(url, clock, [KEY_OLD]))
    token = _store(url, clock, [KEY_OLD]).load("books")
    assert token is not None

    rotated = _store(url, clock, [KEY_NEW, KEY_OLD])  # the new key first, the old one still opens
    loaded = rotated.load("books")
    assert loaded is not None and loaded.access_token == token.access_token
    with pytest.raises(SealingError, match=KEYS_ENV):
        _store(url, clock, [KEY_NEW]).load("books")  # the old key dropped too early: a clear error

    clock.now += 31 * 60  # a refresh writes the row again, sealed with the new key
    assert _works(xero, _source(rotated, xero).access_token())
    assert _store(url, clock, [KEY_NEW]).load("books") is not None


def test_rekey_moves_every_row_onto_the_newest_key(xero: FakeXero, tmp_path: Path, clock: Clock) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    _connected(xero, _store(url, clock, [KEY_OLD]), "books")
    _connected(xero, _store(url, clock, [KEY_OLD]), "other-books")
    assert _store(url, clock, [KEY_NEW, KEY_OLD]).rekey() == 2
    assert _store(url, clock, [KEY_NEW, KEY_OLD]).rekey() == 0
    new_only = _store(url, clock, [KEY_NEW])
    assert new_only.load("books") is not None and new_only.load("other-books") is not None


# Named ids: the truncated key is made afresh by each process (pytest-xdist workers must collect the same ids).
@pytest.mark.parametrize(
    "value", ["", "  ,  ", "not-a-key", KEY_NEW[:-4]], ids=["empty", "blank-list", "not-a-key", "truncated-key"]
)
def test_missing_or_bad_keys_are_refused_without_echoing_them(value: str) -> None:
    with pytest.raises(SealingError, match=KEYS_ENV) as raised:
        Sealer.from_environ({KEYS_ENV: value})
    assert (value.strip(" ,") or "\0") not in str(raised.value)


def test_the_seam_factory_builds_a_working_source(xero: FakeXero, tmp_path: Path, clock: Clock) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    _connected(xero, _store(url, clock))
    destination = {"kind": "xero", "url": "http://xero.test", "client_id": "sandbox-client",
                   "client_secret": CLIENT_SECRET}  # fmt: skip
    source = oauth_token_source(StateDatabase(url), destination, name="books",
                                http=httpx.Client(transport=httpx.MockTransport(xero.handler)),
                                environ={KEYS_ENV: f"{KEY_NEW}"})  # fmt: skip
    assert source.tenant_id() == xero.tenant_id and _works(xero, source.access_token())
    assert "sandbox-client" not in repr(source) or CLIENT_SECRET not in repr(source)


def test_sync_status_says_reconnect_in_plain_words(xero: FakeXero, tmp_path: Path, clock: Clock) -> None:
    from click.testing import CliRunner

    from gateway.cli import main
    from legacy_adapters.demo import DEMO_MAPPING_PATH

    url = f"sqlite:///{tmp_path / 'state.db'}"
    _connected(xero, _store(url, clock), "shop")  # the demo's syncs all go to the destination "shop"
    xero.revoke()
    clock.now += 31 * 60
    with pytest.raises(ReconnectNeeded):
        _source(_store(url, clock), xero, "shop").access_token()
    result = CliRunner().invoke(main, ["sync", "status", "-c", str(DEMO_MAPPING_PATH)],
                                env={"BRIDGEHEAD_STATE_URL": url})  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.output.splitlines()]
    assert {r[1] for r in rows if r and r[0] in ("items", "stock", "customers")} == {"reconnect"}
    assert "RECONNECT NEEDED" in result.output and "bridgehead xero connect --destination shop" in result.output
    assert all(t not in result.output for t in xero.refresh)


def test_xero_cli_errors_are_one_line_and_exit_2(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from gateway.cli import main
    from legacy_adapters.demo import DEMO_MAPPING_PATH

    env = {"BRIDGEHEAD_STATE_URL": f"sqlite:///{tmp_path / 'state.db'}"}
    result = CliRunner().invoke(main, ["xero", "connect", "-c", str(DEMO_MAPPING_PATH), "--destination", "nope"],
                                env=env)  # fmt: skip
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "sync.destinations" in result.output and "'nope'" in result.output
    assert len(CliRunner().invoke(main, ["xero", "keygen"]).output.strip()) == 44


def test_revoking_at_xero_disconnects_and_the_next_refresh_says_reconnect(
    xero: FakeXero, tmp_path: Path, clock: Clock
) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    _connected(xero, _store(url, clock))
    source = _source(_store(url, clock), xero)
    token = source.access_token()
    grant = _store(url, clock).load("books")
    assert grant is not None
    with httpx.Client(transport=httpx.MockTransport(xero.handler)) as http:
        revoked = http.post("http://xero.test/connect/revocation", auth=("sandbox-client", CLIENT_SECRET),
                            data={"token": grant.refresh_token})  # fmt: skip
    assert revoked.status_code == 200 and not _works(xero, token)
    source.invalidate()  # what the connector does after the 401
    with pytest.raises(ReconnectNeeded):
        source.access_token()
