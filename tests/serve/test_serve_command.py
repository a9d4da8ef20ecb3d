"""`convtui serve` without a browser: the missing extra, the flags, the host warning, the websocket cap, and
Ctrl+C (or a killed server) leaving no session process behind."""

from __future__ import annotations

import asyncio
import builtins
import signal
import time

import pytest

from convtui import cli
from tests.serve.server import alive, served

textual_serve = pytest.importorskip("textual_serve", reason="the serve extra is not installed")


def run_serve(capsys, *argv: str) -> tuple[int, str]:
    code = cli.main(["serve", *argv])
    return code, capsys.readouterr().err


def test_a_missing_extra_is_one_line_saying_how_to_install_it(capsys, monkeypatch):
    real_import = builtins.__import__

    def without_textual_serve(name, *args, **kwargs):
        if name.split(".")[0] in ("textual_serve", "aiohttp"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_textual_serve)
    code, err = run_serve(capsys)
    assert code == 1
    assert err == 'convtui serve: error: the serve command needs its extra: pip install "convtui[serve]"\n'


@pytest.mark.parametrize(("argv", "message"), [
    (["--port", "0"], "--port 0 is invalid: must be from 1 to 65535"),
    (["--port", "65536"], "--port 65536 is invalid: must be from 1 to 65535"),
    (["--max-sessions", "0"], "--max-sessions 0 is invalid: must be from 1 to 1000"),
    (["--max-sessions", "-3"], "--max-sessions -3 is invalid: must be from 1 to 1000"),
    (["--training-slots", "0"], "--training-slots 0 is invalid: must be from 1 to 64"),
    (["--session-threads", "0"], "--session-threads 0 is invalid: must be from 1 to "),
    (["--host", ""], "--host '' is invalid: give an address such as 127.0.0.1 or 0.0.0.0"),
    (["--host", "a b"], "--host 'a b' is invalid: give an address such as 127.0.0.1 or 0.0.0.0"),
])
def test_bad_flags_exit_2_with_the_flag_named(capsys, argv, message):
    code, err = run_serve(capsys, *argv)
    assert code == 2
    assert err.startswith(f"convtui serve: error: {message}") and err.count("\n") == 1


def test_a_non_number_is_refused_by_argparse(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["serve", "--port", "eighty"])
    assert exit_info.value.code == 2
    assert "argument --port: invalid int value: 'eighty'" in capsys.readouterr().err


@pytest.mark.parametrize(("host", "local"), [
    ("127.0.0.1", True), ("localhost", True), ("LocalHost", True), ("::1", True), ("[::1]", True),
    ("127.0.0.2", True),
    ("0.0.0.0", False), ("::", False), ("192.168.1.10", False), ("example.org", False)])
def test_only_loopback_addresses_count_as_local(host, local):
    from convtui.serving import is_loopback_name

    assert is_loopback_name(host) is local


def test_a_network_address_warns_there_is_no_authentication_and_names_ssh_L(capsys, monkeypatch, tmp_path):
    from convtui import serving

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(serving.ClassroomServer, "serve", lambda self: None)  # do not actually listen
    code, err = run_serve(capsys, "--host", "0.0.0.0", "--port", "8123")
    assert code == 0
    assert err == ("convtui serve: warning: 0.0.0.0:8123 is reachable from other machines and there is no "
                   "authentication: anyone who can reach it gets a session. Safer: keep the default --host "
                   "127.0.0.1 and let each person tunnel in with: ssh -L 8123:localhost:8123 user@host\n")
    code, err = run_serve(capsys, "--host", "127.0.0.1")
    assert (code, err) == (0, "")


def test_each_session_gets_the_confined_environment(tmp_path):
    from convtui import serving

    environment = serving.session_environment(tmp_path / "runs", tmp_path / "slots", 2, 1)
    runs = (tmp_path / "runs").resolve()
    assert environment == {
        "CONVTUI_SERVED_RUNS": str(runs), "CONVTUI_RUNS_DIR": str(runs), "CONVTUI_XO_DIR": str(runs / "xo"),
        "CONVTUI_TRAINING_SLOTS": str(tmp_path / "slots"), "CONVTUI_TRAINING_SLOT_COUNT": "2",
        "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}


async def open_sessions(url: str, count: int):
    import aiohttp

    client = aiohttp.ClientSession()
    sockets = [await client.ws_connect(f"{url}ws?width=100&height=30") for _ in range(count)]
    return client, sockets


@pytest.mark.slow
def test_ctrl_c_ends_every_session_and_leaves_no_process(tmp_path):
    async def scenario():
        with served(tmp_path, "--max-sessions", "3") as server:
            client, sockets = await open_sessions(server.url, 3)
            sessions = server.wait_for_sessions(3)
            server.process.send_signal(signal.SIGINT)
            deadline = time.monotonic() + 30
            while server.process.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.1)  # keep the loop turning so the tabs see their sockets close
            assert server.process.returncode == 128 + signal.SIGINT
            assert [pid for pid in sessions if alive(pid)] == []
            assert "convtui: ending 3 session(s)" in server.output()
            await client.close()
    asyncio.run(scenario())


@pytest.mark.slow
def test_a_killed_server_takes_its_sessions_with_it(tmp_path):
    async def scenario():
        with served(tmp_path) as server:
            client, _sockets = await open_sessions(server.url, 2)
            sessions = server.wait_for_sessions(2)
            time.sleep(2)  # the apps are up and past their start-up
            server.process.send_signal(signal.SIGKILL)
            server.process.wait(10)
            deadline = time.monotonic() + 20
            while any(alive(pid) for pid in sessions) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert [pid for pid in sessions if alive(pid)] == []
            await client.close()
    asyncio.run(scenario())


@pytest.mark.slow
def test_a_websocket_beyond_the_cap_gets_the_message_and_no_process(tmp_path):
    """Two tabs that loaded the page before either connected: the second socket is told, no app starts."""
    async def scenario():
        with served(tmp_path, "--max-sessions", "1") as server:
            client, (first, second) = await open_sessions(server.url, 2)
            message = await asyncio.wait_for(second.receive(), 10)
            assert b"The class is full: 1 of 1 sessions in use; try again when someone leaves." in message.data
            assert len(server.wait_for_sessions(1)) == 1
            await client.close()
    asyncio.run(scenario())


@pytest.mark.slow
def test_pages_from_elsewhere_and_rebound_names_are_refused(tmp_path):
    """Another site's page in the learner's browser may not open a session (Origin), and a localhost server
    answers to localhost names only (a DNS-rebinding page names its own host)."""
    import urllib.error
    import urllib.request

    def status(url: str, headers: dict[str, str]) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as response:
                return response.status, ""
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    with served(tmp_path) as server:
        ws = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
              "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
        host = f"127.0.0.1:{server.port}"
        assert status(f"{server.url}ws", {**ws, "Origin": "http://evil.example"}) == (
            403, "convtui: a page at http://evil.example may not open a session here")
        assert status(server.url, {"Host": f"evil.example:{server.port}"}) == (
            403, "convtui: this server answers to localhost only")
        assert status(server.url, {"Host": f"localhost:{server.port}"})[0] == 200
        assert status(server.url, {"Host": host, "Origin": f"http://{host}"})[0] == 200
        assert server.wait_for_sessions(0) == set()


def test_a_runs_file_where_the_folder_should_be_is_one_line(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").write_text("not a folder")
    code, err = run_serve(capsys)
    assert code == 1
    assert err == f"convtui serve: error: cannot serve {tmp_path.resolve() / 'runs'}: not a folder\n"


@pytest.mark.slow
def test_a_port_in_use_is_one_line(tmp_path):
    import socket
    import subprocess
    import sys

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "convtui", "serve", "--port", str(port)], cwd=tmp_path,
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "serving" not in result.stdout  # never announced: it is not serving
    assert result.stderr == (f"convtui serve: error: cannot listen on 127.0.0.1:{port}: "
                                  f"address already in use\n"), result.stderr


@pytest.mark.parametrize(("required", "outcome"), [("1", "Failed"), ("", "Skipped"), ("0", "Skipped")])
def test_without_a_browser_the_browser_tests_skip_unless_ci_requires_them(monkeypatch, required, outcome):
    from tests.serve import browser

    monkeypatch.setattr(browser, "CHROMIUM", "/nonexistent/chromium")
    monkeypatch.setenv(browser.REQUIRE_VARIABLE, required)
    with pytest.raises(BaseException) as stopped:
        browser.need_browser()
    assert type(stopped.value).__name__ == outcome
    assert "/nonexistent/chromium is missing (apt-get install chromium chromium-driver)" in str(stopped.value)
