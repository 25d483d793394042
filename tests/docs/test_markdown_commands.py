"""The doc test's own reading of Markdown: a broken command, a missing output line, a misplaced marker or a
missing set-up script each fail with the document's line, and the markers mean what the README says."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateways.cli.main import app
from tests.support.markdown_commands import DocumentError, Session, check_installs, read_blocks, run_document


def document(folder: Path, text: str) -> Path:
    path = folder / "DOC.md"
    path.write_text(text, encoding="utf-8")
    return path


def run(folder: Path, text: str) -> list[str]:
    path = document(folder, text)
    return run_document(read_blocks(path), Session(path, folder, app, {"A_NAME": lambda session: "funnel"}))


def test_a_command_that_fails_is_named_by_its_document_line_with_its_output(tmp_path: Path) -> None:
    failures = run(tmp_path, "Intro\n\n```bash\ncrm --help\ncrm funnel --no-such-option  # a comment\n```\n")

    assert len(failures) == 1
    assert failures[0].startswith("DOC.md:5: `crm funnel --no-such-option` exited 2, expected 0:")
    assert "No such option" in failures[0]


def test_each_command_of_a_line_is_judged_alone(tmp_path: Path) -> None:
    failures = run(tmp_path, "```sh\ncrm --help ; crm no-such-command && crm --help\n```\n")

    assert [f.splitlines()[0] for f in failures] == ["DOC.md:2: `crm no-such-command` exited 2, expected 0:"]


def test_an_expected_exit_status_and_a_skip_are_taken_from_the_markers(tmp_path: Path) -> None:
    text = ("<!-- doc-test: expect-exit 2 (a usage error) -->\n```bash\ncrm funnel --no-such-option\n```\n\n"
            '<!-- doc-test: skip on "crm projections follow" (runs until stopped) -->\n'
            "```bash\ncrm projections follow ; crm projections resume A_NAME --no-such-option\n```\n")

    failures = run(tmp_path, text)

    assert [f.splitlines()[0] for f in failures] == [
        "DOC.md:8: `crm projections resume A_NAME --no-such-option` exited 2, expected 0:"]


def test_a_skipped_command_must_still_exist(tmp_path: Path) -> None:
    failures = run(tmp_path, '<!-- doc-test: skip (needs a broker) -->\n```bash\ncrm no-such-command --once\n```\n')

    assert failures[0].startswith("DOC.md:3: `crm no-such-command --once --help` exited 2")


def test_the_output_a_console_block_shows_must_be_printed(tmp_path: Path) -> None:
    text = "```console\n$ crm --help\nEvent-sourced   CRM.\n$ crm --help\nA line it never prints\n```\n"

    failures = run(tmp_path, text)

    assert [f.splitlines()[0] for f in failures] == [
        "DOC.md:4: `crm --help` did not print 'A line it never prints':"]


def test_python_blocks_share_their_names_and_a_failure_names_the_document_line(tmp_path: Path) -> None:
    text = "```python\nanswer = 42\n```\n\nText\n\n```python\nassert answer == 42\nraise ValueError('x')\n```\n"

    failures = run(tmp_path, text)

    assert len(failures) == 1 and failures[0].startswith("DOC.md:8: the Python block failed")
    assert f'File "{tmp_path / "DOC.md"}", line 9' in failures[0]


@pytest.mark.parametrize("text, message", [
    ("<!-- doc-test: skip -->\nSome text\n```bash\ncrm --help\n```\n", "DOC.md:1: a doc-test marker must stand"),
    ("<!-- doc-test: ignore -->\n```bash\ncrm --help\n```\n", "DOC.md:1: cannot read"),
    ("```bash\ncrm --help\n", "DOC.md:1: this code block is never closed"),
])
def test_a_document_the_test_cannot_read_is_refused_with_its_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(DocumentError, match=message):
        read_blocks(document(tmp_path, text))


def test_a_pipe_or_an_unknown_placeholder_is_refused_with_its_line(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match=r"DOC.md:2: '\|' in"):
        run(tmp_path, "```bash\ncrm projections rebuild | follow\n```\n")
    with pytest.raises(DocumentError, match="DOC.md:2: the doc test has no value for DEAL_ID"):
        run(tmp_path, "```bash\ncrm deal history DEAL_ID\n```\n")


def test_set_up_commands_must_be_executable_scripts_and_the_ci_one_run_by_ci(tmp_path: Path) -> None:
    (tmp_path / "setup.sh").write_text("#!/bin/sh\n")
    (tmp_path / "setup.sh").chmod(0o755)
    (tmp_path / ".ci").mkdir()
    (tmp_path / ".ci" / "run").write_text("#!/bin/sh\n# bash setup.sh is only mentioned here\nbash other.sh\n")
    (tmp_path / ".ci" / "run").chmod(0o755)
    path = document(tmp_path, "<!-- doc-test: install -->\n```bash\nbash missing.sh\n```\n\n"
                              "<!-- doc-test: install -->\n<!-- doc-test: ci -->\n```bash\nbash setup.sh\n```\n")

    failures = check_installs(read_blocks(path), tmp_path, path)

    assert failures == ["DOC.md:3: `bash missing.sh`: missing.sh is not an executable file of the repository",
                        "DOC.md:9: `bash setup.sh`: .ci/run does not run setup.sh"]
