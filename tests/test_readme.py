"""The README's examples do what it says: its library example runs as written."""
import contextlib
import io
import os
import re
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _python_blocks() -> list[str]:
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as handle:
        return re.findall(r"```python\n(.*?)```", handle.read(), re.S)


def test_the_library_example_runs_as_written_and_prints_what_it_says():
    block = next(b for b in _python_blocks() if "from chalicelib import run, resume" in b)
    promised = re.search(r"print\(.*\)\s+# (.*)", block).group(1).strip()
    out = io.StringIO()
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(block, "README.md", "exec"), {})
    finally:
        os.chdir(cwd)
    assert out.getvalue().strip() == promised


def test_make_conformance_without_the_shared_cases_fails_with_one_clear_line(tmp_path):
    checkout = tmp_path / "clone"
    checkout.mkdir()
    (checkout / "Makefile").write_text(open(os.path.join(ROOT, "Makefile"), encoding="utf-8").read())
    bin_dir = checkout / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / ".installed").touch()
    os.utime(bin_dir / ".installed", (4e9, 4e9))
    for name in ("requirements.txt", "requirements-dev.txt"):
        (checkout / name).write_text("")
        os.utime(checkout / name, (1e9, 1e9))
    done = subprocess.run(["make", "-s", "conformance"], cwd=checkout, capture_output=True, text=True)
    assert done.returncode != 0
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert len(lines) == 1 and "../shared/conformance" in lines[0] and "missing" in lines[0]
