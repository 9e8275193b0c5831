"""The command line as a user runs it: ``python -m chalicelib ...`` in a subprocess."""
import json
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PARALLEL = os.path.join(ROOT, "state_machines", "parallel-approval.json")
INCSQUARE = os.path.join(ROOT, "state_machines", "incsquare.json")


def cli(*args: str, cwd) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-m", "chalicelib", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def one_line_error(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, done
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.fixture
def suspended(tmp_path):
    """The whole output of ``run`` on the two-approver definition, saved as result.json."""
    done = cli("run", PARALLEL, "--input", '{"amount": 5}', cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "SUSPENDED"
    assert [s["id"] for s in result["suspensions"]] == ["p1", "p2"]
    (tmp_path / "result.json").write_text(done.stdout)
    return result


def test_resume_takes_the_whole_result_that_run_printed(tmp_path, suspended):
    done = cli("resume", PARALLEL, "p1", "--snapshot", "@result.json", "--result", '{"decision": "approve"}',
               cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "SUSPENDED"
    assert [s["id"] for s in result["suspensions"]] == ["p2"]
    (tmp_path / "second.json").write_text(done.stdout)

    done = cli("resume", PARALLEL, "--point", "p2", "--snapshot", "@second.json",
               "--result", '{"decision": "approve"}', cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    final = json.loads(done.stdout)
    assert final["status"] == "SUCCEEDED"
    assert final["output"]["answers"] == [{"decision": "approve"}, {"decision": "approve"}]


def test_resume_takes_the_snapshot_alone_too(tmp_path, suspended):
    (tmp_path / "snapshot.json").write_text(json.dumps(suspended["snapshot"]))
    done = cli("resume", PARALLEL, "p2", "--snapshot", "@snapshot.json", "--result", '{"decision": "reject"}',
               cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert [s["id"] for s in json.loads(done.stdout)["suspensions"]] == ["p1"]


def test_resume_without_a_point_answers_the_only_open_one(tmp_path):
    done = cli("run", INCSQUARE, "--input", '{"value": 6}', cwd=tmp_path)
    (tmp_path / "result.json").write_text(done.stdout)
    done = cli("resume", INCSQUARE, "--snapshot", "@result.json", "--result", '{"approved": true}', cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"status": "SUCCEEDED", "output": {"value": 50, "approved": True}}


def test_a_point_that_is_not_open_is_named_with_the_open_ones(tmp_path, suspended):
    line = one_line_error(cli("resume", PARALLEL, "p9", "--snapshot", "@result.json", cwd=tmp_path))
    assert line.endswith("suspension point 'p9' is not open; open points: p1, p2")

    line = one_line_error(cli("resume", PARALLEL, "--snapshot", "@result.json", cwd=tmp_path))
    assert "open points: p1, p2" in line


def test_a_snapshot_of_another_definition_has_its_own_message(tmp_path, suspended):
    line = one_line_error(cli("resume", INCSQUARE, "p1", "--snapshot", "@result.json", cwd=tmp_path))
    assert "different definition" in line
    assert "not open" not in line


def test_results_without_a_snapshot_and_other_json_are_refused_in_one_line(tmp_path):
    done = cli("run", INCSQUARE, "--input", '{"value": "six"}', cwd=tmp_path)
    assert json.loads(done.stdout)["status"] == "FAILED"
    (tmp_path / "failed.json").write_text(done.stdout)
    assert "FAILED result" in one_line_error(cli("resume", INCSQUARE, "p1", "--snapshot", "@failed.json",
                                                 cwd=tmp_path))
    assert "not a snapshot" in one_line_error(cli("resume", INCSQUARE, "p1", "--snapshot", "[1, 2]",
                                                  cwd=tmp_path))


@pytest.mark.parametrize("args, expected", [
    (["resume", INCSQUARE, "p1", "--snapshot", "@missing.json"], "cannot read missing.json"),
    (["resume", INCSQUARE, "p1", "--snapshot", "@."], "cannot read ."),
    (["resume", INCSQUARE, "p1", "--snapshot", "@broken.json"], "--snapshot file broken.json is not valid JSON"),
    (["resume", INCSQUARE, "p1", "--snapshot", "{not json"], "--snapshot is not valid JSON"),
    (["resume", INCSQUARE, "p1", "--snapshot", "{}", "--result", "@missing.json"], "cannot read missing.json"),
    (["run", INCSQUARE, "--input", "@missing.json"], "cannot read missing.json"),
    (["run", INCSQUARE, "--input", "@binary.bin"], "cannot read binary.bin"),
    (["run", INCSQUARE, "--input", "{'value': 6}"], "--input is not valid JSON"),
    (["run", INCSQUARE, "--input", "[" * 100_000], "--input is not valid JSON"),
    (["run", "missing.json"], "cannot read missing.json"),
    (["validate", "missing.json"], "cannot read missing.json"),
])
def test_unreadable_files_and_invalid_json_are_one_line_errors(tmp_path, args, expected):
    (tmp_path / "broken.json").write_text('{"status": ')
    (tmp_path / "binary.bin").write_bytes(b"\xff\xfe\x00")
    line = one_line_error(cli(*args, cwd=tmp_path))
    assert line.startswith(f"python -m chalicelib {args[0]}: error: ")
    assert expected in line


@pytest.mark.parametrize("command", [[], ["run"], ["resume"], ["validate"], ["tick"]])
def test_help_is_plain_text(tmp_path, command):
    done = cli(*command, "--help", cwd=tmp_path)
    assert done.returncode == 0
    assert done.stdout.startswith("usage: python -m chalicelib")
    assert not re.search(r"``|`|:func:|:class:|::", done.stdout), done.stdout


def test_test_state_runs_one_state_and_shows_each_step(tmp_path):
    (tmp_path / "state.json").write_text(json.dumps({
        "Type": "Task", "Resource": "module:increment", "InputPath": "$.payload", "ResultPath": "$.result",
        "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Recover"}], "Next": "Done"}))
    done = cli("test-state", "state.json", "--input", '{"payload": {"value": 1}}', "--inspection-level", "DEBUG",
               cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["status"], result["nextState"]) == ("SUCCEEDED", "Done")
    assert result["output"] == {"payload": {"value": 1}, "result": {"value": 2}}
    assert result["inspectionData"]["afterInputPath"] == {"value": 1}

    done = cli("test-state", "state.json", "--input", '{"payload": {}}', "--mock-error", "Boom",
               "--mock-cause", "mocked", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    caught = json.loads(done.stdout)
    assert (caught["status"], caught["nextState"], caught["output"]) == (
        "CAUGHT_ERROR", "Recover", {"Error": "Boom", "Cause": "mocked"})


def test_test_state_of_a_machine_state_that_fails_exits_1(tmp_path):
    done = cli("test-state", INCSQUARE, "--state-name", "Suspend", "--mock-result", '{"note": "hi"}',
               cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "SUCCEEDED"
    (tmp_path / "fail.json").write_text('{"Type": "Fail", "Error": "Nope"}')
    done = cli("test-state", "fail.json", cwd=tmp_path)
    assert done.returncode == 1 and json.loads(done.stdout) == {"status": "FAILED", "error": "Nope"}


def test_test_state_refusals_are_one_line(tmp_path):
    (tmp_path / "pass.json").write_text('{"Type": "Pass", "End": true}')
    assert "only for a Task" in one_line_error(cli("test-state", "pass.json", "--mock-result", "1", cwd=tmp_path))
    assert "not both" in one_line_error(cli("test-state", "pass.json", "--mock-result", "1", "--mock-error", "E",
                                            cwd=tmp_path))
    assert "not valid JSON" in one_line_error(cli("test-state", "pass.json", "--input", "{x", cwd=tmp_path))
    done = cli("test-state", "pass.json", "--state-name", "X", cwd=tmp_path)
    assert "whole state machine" in one_line_error(done)
