"""Runs the commands of a Markdown document's code blocks for real, in order, the way the `eventsourcing`
library tests its docs (tests/docs_tests/test_docs.py there): every block is taken from the document itself,
so a command that drifts from the code fails a test instead of a reader; blocks run in document order and
share their state (a later block reads what an earlier one wrote); Python runs padded to its document
lines, so a traceback names the document's line. What this adds for shell blocks: each command is run and
judged alone, and a failure names `DOCUMENT:LINE`.

How a block is checked is said by invisible HTML comments just above it (GitHub does not render them):

    <!-- doc-test: skip on "crm relay" (needs the Kafka broker) -->   not run; a `crm` command is still
                                                                      asked for `--help` (it must exist)
    <!-- doc-test: expect-exit 2 -->                                  exit status 2 instead of 0
    <!-- doc-test: before crm demo --leads 200 (a smaller history) -->  a hidden command run first
    <!-- doc-test: install (…) -->                                    not run; the script must be executable
    <!-- doc-test: ci (…) -->                                         `.ci/run` must run it

`on "TEXT"` narrows a marker to the block's commands that contain TEXT; `(…)` is for the reader.
In a `console` block, lines after a `$ command` are output that must appear in what it printed.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from click.testing import Result
from typer.testing import CliRunner

MARKER = re.compile(r'<!--\s*doc-test:\s*(?P<action>[a-z-]+)(?:\s+on\s+"(?P<only>[^"]+)")?'
                    r'(?P<argument>[^(]*?)\s*(?:\(.*)?-->\s*$')
FENCE = re.compile(r"^```\s*(?P<language>[\w-]*)\s*$")
ACTIONS = frozenset({"skip", "expect-exit", "before", "install", "ci"})
SHELL = frozenset({"bash", "sh", "shell", "console"})
RUNS = SHELL | {"python"}
PLACEHOLDER = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$")  # DEAL_ID, CUSTOMER_ID: never CNY, never A=b
ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=")
TAIL_LINES = 30  # of a failed command's output: enough for a traceback's end, short enough to read


class DocumentError(Exception):
    """The document cannot be read as a test (a marker without its block, an unknown action, …)."""


@dataclass(frozen=True)
class Marker:
    action: str
    argument: str
    only: str | None
    line: int

    def applies_to(self, command: Command) -> bool:
        return self.only is None or self.only in " ".join(command.words)


@dataclass(frozen=True)
class Block:
    """One fenced block; `lines[i]` is line `first + i` of the document."""

    language: str
    first: int
    lines: tuple[str, ...]
    markers: tuple[Marker, ...]

    def marked(self, action: str) -> list[Marker]:
        return [m for m in self.markers if m.action == action]


@dataclass(frozen=True)
class Command:
    line: int
    text: str
    words: tuple[str, ...]
    expected: tuple[str, ...] = ()


@dataclass
class Session:
    """What the commands of one document share: their folder, the `crm` app, placeholders, outputs."""

    document: Path
    folder: Path
    app: object
    placeholders: Mapping[str, Callable[[Session], str]]
    outputs: list[str] = field(default_factory=list)
    namespace: dict[str, object] = field(default_factory=dict)
    runner: CliRunner = field(default_factory=CliRunner)

    def where(self, line: int) -> str:
        return f"{self.document.name}:{line}"


# --- reading the document --------------------------------------------------------------------------------


def read_blocks(document: Path) -> list[Block]:
    """The fenced blocks of `document` in order, each with the markers just above it."""
    lines = document.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    markers: list[Marker] = []
    index = 0
    while index < len(lines):
        text, number = lines[index], index + 1
        if (marker := _marker(text, document, number)) is not None:
            markers.append(marker)
        elif (fence := FENCE.match(text)) is not None:
            index = _closing_fence(lines, index, document)
            blocks.append(Block(fence["language"], number + 1, tuple(lines[number:index]), tuple(markers)))
            markers = []
        elif text.strip() and markers:
            raise DocumentError(f"{document.name}:{markers[0].line}: a doc-test marker must stand just above "
                                f"a code block, but line {number} is text")
        index += 1
    return blocks


def _marker(text: str, document: Path, number: int) -> Marker | None:
    if "doc-test:" not in text:
        return None
    found = MARKER.match(text.strip())
    if found is None or found["action"] not in ACTIONS:
        raise DocumentError(f"{document.name}:{number}: cannot read {text.strip()!r}; "
                            f"actions are {', '.join(sorted(ACTIONS))}")
    return Marker(found["action"], found["argument"].strip(), found["only"], number)


def _closing_fence(lines: list[str], opening: int, document: Path) -> int:
    for index in range(opening + 1, len(lines)):
        if lines[index].strip() == "```":
            return index
    raise DocumentError(f"{document.name}:{opening + 1}: this code block is never closed")


def commands_of(block: Block, document: Path) -> list[Command]:
    """The block's commands, one per `;` or `&&`; a console block's output lines go with their command."""
    if block.language == "console":
        return _console_commands(block, document)
    commands: list[Command] = []
    for number, text in _joined_lines(block):
        commands += [Command(number, shlex.join(words), words) for words in split_commands(text, document, number)]
    return commands


def _joined_lines(block: Block) -> Iterator[tuple[int, str]]:
    """Lines with their trailing-backslash continuations joined, numbered by their first line."""
    pending, start = "", 0
    for offset, text in enumerate(block.lines):
        start = start if pending else block.first + offset
        pending += text.rstrip("\\") + " " if text.endswith("\\") else text
        if not text.endswith("\\"):
            if pending.strip():
                yield start, pending.strip()
            pending = ""


def _console_commands(block: Block, document: Path) -> list[Command]:
    commands: list[Command] = []
    for offset, text in enumerate(block.lines):
        number = block.first + offset
        if text.startswith("$ "):
            commands += [Command(number, shlex.join(words), words)
                         for words in split_commands(text[2:], document, number)]
        elif text.strip() and commands:
            last = commands[-1]
            commands[-1] = Command(last.line, last.text, last.words, last.expected + (text.strip(),))
    return commands


def split_commands(text: str, document: Path, number: int) -> list[tuple[str, ...]]:
    """Shell words of each command on a line, comments dropped; a pipe is refused (one command at a time)."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    commands: list[tuple[str, ...]] = [()]
    for word in lexer:
        if word in (";", "&&"):
            commands.append(())
        elif set(word) <= set(";&|"):
            raise DocumentError(f"{document.name}:{number}: {word!r} in {text!r}: the doc test runs one "
                                "command at a time; write the commands out one by one")
        else:
            commands[-1] += (word,)
    return [words for words in commands if words]


# --- running it ----------------------------------------------------------------------------------------


def run_document(blocks: list[Block], session: Session) -> list[str]:
    """Run every shell and Python block in order (install blocks are only checked, by `check_installs`);
    returns one message per failure, each naming the document's line."""
    failures: list[str] = []
    for block in blocks:
        if block.language not in RUNS or block.marked("install"):
            continue
        for before in block.marked("before"):
            _run_before(before, session)
        if block.language == "python":
            failures += _run_python(block, session)
        else:
            failures += [f for c in commands_of(block, session.document) if (f := _run_command(c, block, session))]
    return failures


def _run_before(marker: Marker, session: Session) -> None:
    """A hidden set-up command: everything after it depends on it, so its failure stops the run."""
    for words in split_commands(marker.argument, session.document, marker.line):
        command = Command(marker.line, marker.argument, words)
        failure = _judge(command, _execute(command, session), 0, session)
        if failure:
            raise AssertionError(f"the set-up of the doc test failed:\n{failure}")


def _run_command(command: Command, block: Block, session: Session) -> str | None:
    markers = [m for m in block.markers if m.applies_to(command)]
    if any(m.action == "skip" for m in markers):
        return _check_skipped(command, session)
    exits = [int(m.argument) for m in markers if m.action == "expect-exit"]
    return _judge(command, _execute(command, session), exits[-1] if exits else 0, session)


def _check_skipped(command: Command, session: Session) -> str | None:
    """A skipped `crm` command must still exist with the options it shows: `--help` after them says so."""
    _, program, arguments = _parts(command.words)
    if not _is_crm(program):
        return None
    helped = Command(command.line, command.text + " --help", command.words + ("--help",))
    return _judge(helped, _invoke_crm(arguments + ["--help"], {}, session), 0, session)


def _judge(command: Command, outcome: tuple[int, str], expected_exit: int, session: Session) -> str | None:
    exit_code, output = outcome
    session.outputs.append(output)
    missing = [line for line in command.expected if _folded(line) not in _folded(output)]
    if exit_code == expected_exit and not missing:
        return None
    problem = f"exited {exit_code}, expected {expected_exit}" if exit_code != expected_exit else \
        "did not print " + "; ".join(repr(line) for line in missing)
    tail = "\n".join("    " + line for line in output.rstrip().splitlines()[-TAIL_LINES:])
    return f"{session.where(command.line)}: `{command.text}` {problem}:\n{tail}"


def _folded(text: str) -> str:
    """Rich wraps and pads tables: compare text with its white space folded."""
    return " ".join(text.split())


def _execute(command: Command, session: Session) -> tuple[int, str]:
    assignments, program, arguments = _parts(tuple(_filled(w, command, session) for w in command.words))
    if _is_crm(program):
        return _invoke_crm(arguments, assignments, session)
    completed = subprocess.run([program, *arguments], cwd=session.folder, env={**os.environ, **assignments},
                               capture_output=True, text=True, timeout=120)
    return completed.returncode, completed.stdout + completed.stderr


def _invoke_crm(arguments: list[str], assignments: dict[str, str], session: Session) -> tuple[int, str]:
    """In this process through typer's CliRunner: a new `crm` process costs 2.5–5 s of imports."""
    result = session.runner.invoke(session.app, arguments, env=assignments)  # type: ignore[arg-type]
    return result.exit_code, result.output + _unexpected(result)


def _unexpected(result: Result) -> str:
    if result.exception is None or isinstance(result.exception, SystemExit):
        return ""
    return "".join(traceback.format_exception(result.exception))


def _parts(words: tuple[str, ...]) -> tuple[dict[str, str], str, list[str]]:
    """(`NAME=value` prefixes, program, arguments) of one shell command."""
    count = next(i for i, word in enumerate(words) if not ASSIGNMENT.match(word))
    assignments = dict(word.split("=", 1) for word in words[:count])
    return assignments, words[count], list(words[count + 1:])


def _is_crm(program: str) -> bool:
    return program in ("crm", ".venv/bin/crm")


def _filled(word: str, command: Command, session: Session) -> str:
    if not PLACEHOLDER.match(word):
        return word
    if word not in session.placeholders:
        raise DocumentError(f"{session.where(command.line)}: the doc test has no value for {word} "
                            f"(add one to its placeholders)")
    return session.placeholders[word](session)


def _run_python(block: Block, session: Session) -> list[str]:
    """Padded with empty lines to its place in the document, so a traceback names the document's line."""
    source = "\n" * (block.first - 1) + "\n".join(block.lines) + "\n"
    try:
        exec(compile(source, str(session.document), "exec"), session.namespace)  # noqa: S102 — the docs' own code
    except Exception:  # every failure of the document's code is reported, with its line
        return [f"{session.where(block.first)}: the Python block failed:\n{traceback.format_exc()}"]
    return []


# --- the set-up commands, checked without running them ---------------------------------------------------


def check_installs(blocks: list[Block], root: Path, document: Path) -> list[str]:
    """Each command of an `install` block names an executable script of the repository; a `ci` block's
    script is what `.ci/run` runs."""
    failures: list[str] = []
    for block in (b for b in blocks if b.marked("install")):
        for command in commands_of(block, document):
            failures += _check_script(command, block, root, document)
    if not any(block.marked("ci") for block in blocks):
        failures.append(f"{document.name}: no block is marked `doc-test: ci`: which command does CI run?")
    return failures


def _check_script(command: Command, block: Block, root: Path, document: Path) -> list[str]:
    script = command.words[1] if command.words[0] in ("bash", "sh") else command.words[0]
    where = f"{document.name}:{command.line}: `{command.text}`"
    if not (root / script).is_file() or not os.access(root / script, os.X_OK):
        return [f"{where}: {script} is not an executable file of the repository"]
    if block.marked("ci") and not _runs(root / ".ci" / "run", script):
        return [f"{where}: .ci/run does not run {script}"]
    return []


def _runs(ci_script: Path, script: str) -> bool:
    if not ci_script.is_file() or not os.access(ci_script, os.X_OK):
        return False
    lines = ci_script.read_text(encoding="utf-8").splitlines()
    return any(script in line.split("#", 1)[0] for line in lines if not line.lstrip().startswith("#"))
