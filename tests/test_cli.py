"""CLI tests through typer's CliRunner: exit codes, stdout and stderr kept apart, --json shapes."""

from __future__ import annotations

import json
import os

import git
import pytest
from typer.testing import CliRunner

from cli import app
from tests.conftest import STARTER, protocol_text, write_library

runner = CliRunner()


def invoke(*args: str, input: str | None = None):
    return runner.invoke(app, list(args), input=input)


@pytest.fixture
def library(tmp_path):
    files = {
        "alpha.md": protocol_text("alpha", keywords="\n  - any: [demo finding]", aliases="[alpha syndrome]"),
        "beta.md": protocol_text("beta", keywords="\n  - any: [other finding]"),
    }
    return write_library(tmp_path / "lib", files, commit=True)


def test_check_valid_library_exits_zero(library):
    result = invoke("check", str(library))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "2 protocols valid, 0 errors, 0 warnings"


def test_check_reports_path_line_and_exits_one(tmp_path):
    folder = write_library(tmp_path / "lib", {"bad.md": protocol_text("bad").replace("owner: test team", "owner:\ttest team")})
    result = invoke("check", str(folder))
    assert result.exit_code == 1
    assert f"{folder / 'bad.md'}:6: tab character in the front matter" in result.stdout


def test_check_json_lists_problems(tmp_path):
    folder = write_library(tmp_path / "lib", {"a.md": protocol_text("same"), "b.md": protocol_text("same")})
    result = invoke("check", str(folder), "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["ok"] is False
    assert any("duplicate id" in problem["message"] for problem in data["problems"])


def test_check_missing_folder_is_clear_error(tmp_path):
    result = invoke("check", str(tmp_path / "nowhere"))
    assert result.exit_code == 1
    assert "does not exist" in result.stderr
    assert "Traceback" not in result.output


def test_check_file_reports_only_its_problems(tmp_path):
    folder = write_library(
        tmp_path / "lib",
        {
            "good.md": protocol_text("good"),
            "bad.md": protocol_text("bad").replace("owner: test team", "owner:\ttest team"),
        },
    )
    good = invoke("check", str(folder / "good.md"))
    assert good.exit_code == 0, good.output
    assert good.stdout.strip() == "1 protocol valid, 0 errors, 0 warnings"

    bad = invoke("check", str(folder / "bad.md"), "--json")
    assert bad.exit_code == 1
    data = json.loads(bad.stdout)
    assert data["protocols"] == 0
    assert {problem["path"] for problem in data["problems"]} == {str(folder / "bad.md")}


def test_check_file_sees_folder_links(tmp_path):
    linked = protocol_text("first", confusable_with="[missing]")
    folder = write_library(tmp_path / "lib", {"first.md": linked, "second.md": protocol_text("second")})
    result = invoke("check", str(folder / "first.md"))
    assert result.exit_code == 1
    assert f"{folder / 'first.md'}:15: confusable_with names unknown id 'missing'" in result.stdout
    assert "0 protocols valid, 1 error, 0 warnings" in result.stdout


def test_check_rejects_non_protocol_file(tmp_path):
    folder = write_library(tmp_path / "lib", {"a.md": protocol_text("a")})
    (folder / "notes.txt").write_text("hello", encoding="utf-8")
    (folder / "folder.md").mkdir()
    for name in ("notes.txt", "README.md", "absent.md"):
        result = invoke("check", str(folder / name))
        assert result.exit_code == 1
        assert "Traceback" not in result.output
        assert str(folder / name) in result.stderr


def test_check_starter_library_passes():
    result = invoke("check", str(STARTER))
    assert result.exit_code == 0, result.output


def test_list_json_has_commit(library):
    result = invoke("list", "--library", str(library), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    head = git.Repo(library).head.commit.hexsha
    assert [item["id"] for item in data] == ["alpha", "beta"]
    assert {item["commit"] for item in data} == {head}


def test_list_uses_environment_library(library, monkeypatch):
    monkeypatch.setenv("PROTOCOL_LIBRARY", str(library))
    result = invoke("list")
    assert result.exit_code == 0, result.output
    assert "alpha" in result.stdout


def test_show_prints_body_and_sources(library):
    result = invoke("show", "alpha", "--library", str(library))
    assert result.exit_code == 0, result.output
    assert "alpha@1.0" in result.stdout
    assert "A named public source" in result.stdout
    assert "1. Do the first thing." in result.stdout


def test_show_unknown_id_names_known_ids(library):
    result = invoke("show", "gamma", "--library", str(library))
    assert result.exit_code == 1
    assert "no protocol with id 'gamma'" in result.stderr
    assert "alpha, beta" in result.stderr


def test_route_json_has_scores_and_reasons(library):
    result = invoke("route", "DEMO FINDING today", "--library", str(library), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [candidate["id"] for candidate in data["candidates"]] == ["alpha"]
    assert data["candidates"][0]["score"] > 0
    assert data["candidates"][0]["reasons"]


@pytest.mark.parametrize("query", ["", "   ", "???", "\n\n"], ids=["empty", "spaces", "punctuation", "newlines"])
def test_route_junk_is_no_match(library, query):
    result = invoke("route", query, "--library", str(library), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["no_match"] is True


def test_route_reads_stdin(library):
    result = invoke("route", "-", "--library", str(library), "--json", input="demo finding")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["candidates"][0]["id"] == "alpha"


def test_route_huge_query_does_not_crash(library):
    query = "filler words " * 20000 + " demo finding"
    result = invoke("route", query, "--library", str(library), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["candidates"][0]["id"] == "alpha"


def test_outside_git_warns_on_stderr(tmp_path):
    folder = write_library(tmp_path / "lib", {"alpha.md": protocol_text("alpha")})
    result = invoke("list", "--library", str(folder))
    assert result.exit_code == 0
    assert "not in a git repository" in result.stderr
    assert "not in a git repository" not in result.stdout


def test_init_creates_repository_with_starter(tmp_path):
    target = tmp_path / "team-library"
    result = invoke("init", str(target), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    repo = git.Repo(target)
    assert repo.head.commit.hexsha == data["commit"]
    assert data["protocols"] >= 16
    assert invoke("check", str(target)).exit_code == 0


def test_init_refuses_non_empty_folder(tmp_path):
    (tmp_path / "x.txt").write_text("keep me")
    result = invoke("init", str(tmp_path))
    assert result.exit_code == 1
    assert "not empty" in result.stderr
    assert (tmp_path / "x.txt").read_text() == "keep me"


def test_model_missing_file_is_one_sentence(tmp_path):
    result = invoke("model", "--model", str(tmp_path / "missing.gguf"))
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: model file")
    assert "not found" in result.stderr
    assert "Traceback" not in result.output


def test_model_not_gguf_is_rejected(tmp_path):
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"not a model")
    result = invoke("model", "--model", str(fake))
    assert result.exit_code == 1
    assert "not a GGUF file" in result.stderr


@pytest.mark.model
def test_truncated_model_fails_cleanly_on_ask(tmp_path, library, require_model):
    truncated = tmp_path / "truncated.gguf"
    with require_model.open("rb") as source:
        truncated.write_bytes(source.read(4 << 20))
    result = invoke("ask", "demo finding", "--library", str(library), "--model", str(truncated))
    assert result.exit_code == 1
    assert "could not load" in result.stderr
    assert "Traceback" not in result.output


def test_corrupt_default_model_gives_fix(data_home, tmp_path, require_model):
    link = data_home / "models" / require_model.name
    link.unlink()
    link.write_bytes(b"GGUF" + b"\0" * 1000)
    result = invoke("model")
    assert result.exit_code == 1
    assert "corrupt or truncated" in result.stderr
    assert "protocol model install --force" in result.stderr


def test_model_shows_path_hash_and_size(require_model):
    result = invoke("model", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["sha256"] == "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
    assert data["size"] == require_model.stat().st_size
    assert data["source"] == "default"


def test_log_empty_then_json(library):
    result = invoke("log")
    assert result.exit_code == 0
    assert "No answers recorded yet." in result.stdout
    assert json.loads(invoke("log", "--json").stdout) == []


def write_cases(path, rows):
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n", encoding="utf-8")
    return path


def test_eval_rules_only_reports_totals(library, tmp_path):
    cases = write_cases(tmp_path / "cases.jsonl", [
        {"id": "c1", "query": "demo finding seen today", "expected": ["alpha"], "tags": ["T"]},
        {"id": "c2", "query": "wifi password please", "expected": [], "tags": ["Z"]},
        {"id": "c3", "query": "other finding seen today", "expected": ["alpha"], "forbidden": ["beta"]},
    ])
    result = invoke("eval", str(cases), "--library", str(library), "--rules-only", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [case["passed"] for case in data["cases"]] == [True, True, False]
    assert data["cases"][2]["violations"] == ["beta"]
    assert data["totals"]["exact_accuracy"] == round(2 / 3, 4)
    assert data["totals"]["forbidden_violations"] == 1
    assert data["totals"]["no_match_precision"] == 1.0
    assert data["per_tag"]["Z"] == {"cases": 1, "passed": 1, "exact_accuracy": 1.0}


def test_eval_min_accuracy_sets_exit_code(library, tmp_path):
    cases = write_cases(tmp_path / "cases.jsonl", [
        {"id": "c1", "query": "demo finding seen today", "expected": ["alpha"]},
        {"id": "c2", "query": "other finding seen today", "expected": ["alpha"]},
    ])
    below = invoke("eval", str(cases), "--library", str(library), "--rules-only", "--min-accuracy", "0.9")
    assert below.exit_code == 1
    assert "below --min-accuracy" in below.stderr
    met = invoke("eval", str(cases), "--library", str(library), "--rules-only", "--min-accuracy", "0.5")
    assert met.exit_code == 0, met.output


def test_eval_rejects_unknown_protocol_id(library, tmp_path):
    cases = write_cases(tmp_path / "cases.jsonl", [{"id": "c1", "query": "q", "expected": ["gamma"]}])
    result = invoke("eval", str(cases), "--library", str(library), "--rules-only")
    assert result.exit_code == 1
    assert "unknown protocol ids ['gamma']" in result.stderr


def test_eval_reads_yaml_cases(library, tmp_path):
    cases = tmp_path / "cases.yaml"
    cases.write_text("cases:\n  - id: y1\n    query: demo finding seen today\n    expected: [alpha]\n", encoding="utf-8")
    result = invoke("eval", str(cases), "--library", str(library), "--rules-only", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["totals"]["passed"] == 1


def test_init_into_existing_file_is_clear_error(tmp_path):
    target = tmp_path / "afile"
    target.write_text("keep")
    result = invoke("init", str(target))
    assert result.exit_code == 1
    assert "is not a folder" in result.stderr
    assert target.read_text() == "keep"


def test_log_does_not_replay_terminal_escapes(library):
    invoke("route", "x", "--library", str(library))
    from router.audit import AnswerRecord, save_record

    save_record(AnswerRecord(
        query="\x1b[2J\x1b[31mFAKE\x1b[0m ???", library_path=str(library), library_commit=None, candidates=[],
        chosen=[], choice_source="none", citations=[], model_path=None, model_sha256=None, answer="", no_match=True,
    ))
    result = invoke("log")
    assert result.exit_code == 0
    assert "\x1b" not in result.stdout
    assert "FAKE" in result.stdout


def test_check_reports_pipe_without_waiting(tmp_path):
    folder = write_library(tmp_path / "lib", {"a.md": protocol_text("a")})
    os.mkfifo(folder / "pipe.md")
    result = invoke("check", str(folder))
    assert result.exit_code == 1
    assert f"{folder / 'pipe.md'}:1: not a regular file" in result.stdout
    assert "1 protocol valid, 1 error" in result.stdout


def test_check_names_unreadable_link_target(tmp_path):
    files = {"first.md": protocol_text("first", confusable_with="[second]"), "second.md": "no front matter"}
    folder = write_library(tmp_path / "lib", files)
    result = invoke("check", str(folder / "first.md"))
    assert result.exit_code == 1
    assert "files left out for errors, which may define it: second.md" in result.stdout


def test_check_rejects_self_link(tmp_path):
    folder = write_library(tmp_path / "lib", {"a.md": protocol_text("a", confusable_with="[a]")})
    result = invoke("check", str(folder))
    assert result.exit_code == 1
    assert "confusable_with names the protocol itself ('a')" in result.stdout


def test_check_link_note_skips_read_files(tmp_path):
    files = {
        "first.md": protocol_text("first", confusable_with="[missing]"),
        "second.md": protocol_text("second", confusable_with="[absent]"),
        "third.md": "no front matter",
    }
    folder = write_library(tmp_path / "lib", files)

    result = invoke("check", str(folder))

    assert result.exit_code == 1
    assert result.stdout.count("which may define it: third.md)") == 2
    assert "first.md)" not in result.stdout
