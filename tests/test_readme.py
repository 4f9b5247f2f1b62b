"""The README's code runs as written (issue 22).

- Every fenced block tagged ```` ```python ```` is a complete script: it runs in a fresh interpreter
  (``KERAS_BACKEND=tensorflow``, ``TF_CPP_MIN_LOG_LEVEL=3``) in an empty temporary folder and must exit
  0. A block that is deliberately not runnable (a signature listing, say) is tagged
  ```` ```python skip ```` (GitHub still highlights it) or ```` ```text ````; keep that rare.
- Every ``kerasinit`` command line, in ```` ```bash ````/```` ```console ```` blocks (``$ kerasinit ...``)
  and in inline code spans, names a real subcommand and only flags that its ``--help`` lists (the
  command's own help, so the check follows the command line wherever it is defined).
  ``$ kerasinit describe ...`` lines are run: a line commented ``# error: <message> ...`` must fail
  with that message, a ``# <claim>`` comment must appear in the output, and the output printed
  under a command in the README must match, except the ``sampled`` line (its draws depend on the
  backend).
- Every initializer name the README uses (layer arguments, ``describe``/``plot-bounds`` arguments,
  the rows of the ``compare`` table, quoted snake_case names in the prose) is a name that
  ``kerasinit list`` prints and that ``kerasinit.get`` resolves.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

import kerasinit
from kerasinit.initializers.registry import resolve

README = Path(__file__).resolve().parents[1] / "README.md"
TEXT = README.read_text(encoding="utf-8")
#: fenced blocks: (info string, body)
BLOCKS = [(m.group(1).strip(), m.group(2)) for m in re.finditer(r"^```([^\n]*)\n(.*?)^```", TEXT, re.M | re.S)]
PROSE = re.sub(r"^```[^\n]*\n.*?^```", "", TEXT, flags=re.M | re.S)
PYTHON = [body for info, body in BLOCKS if info == "python"]
#: the README section of each python block (test ids)
SECTIONS = [re.findall(r"^## (.+)$", TEXT[: m.start()], re.M)[-1]
            for m in re.finditer(r"^```python\n", TEXT, re.M)]
CLI = [sys.executable, "-m", "kerasinit"]
ENV = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
#: the command as a reader runs it: Keras's backend unset, so list/describe take the light NumPy one
CLI_ENV = {k: v for k, v in ENV.items() if k != "KERAS_BACKEND"}


def test_readme_blocks_are_tagged():
    """Every block says what it is; python blocks are either run or marked ``python skip``."""
    infos = [info for info, _ in BLOCKS]
    assert "" not in infos, "untagged code block in README.md"
    assert all(i.split()[0] in ("python", "bash", "console", "text") for i in infos), infos
    assert all(i in ("python", "python skip") for i in infos if i.startswith("python")), infos
    assert len(PYTHON) >= 5, f"expected the README's python examples, found {len(PYTHON)}"
    assert sum(info == "python skip" for info in infos) <= 1, "keep non-runnable python blocks rare"


@pytest.mark.slow
@pytest.mark.parametrize("code", PYTHON, ids=SECTIONS)
def test_python_block_runs_as_written(code, tmp_path):
    script = tmp_path / "block.py"
    script.write_text(code, encoding="utf-8")
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=ENV, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, f"README block failed ({proc.returncode}):\n{code}\n--- stderr\n{proc.stderr[-4000:]}"


# ----------------------------------------------------------------------------- the command line
def _command_lines() -> list[tuple[str, str | None]]:
    """Every ``kerasinit ...`` command in the README: (command, the output printed under it or None)."""
    found: list[tuple[str, str | None]] = []
    for info, body in BLOCKS:
        if info not in ("bash", "console"):
            continue
        lines = re.sub(r"\\\n\s*", " ", body).splitlines()  # join continuation lines
        for i, line in enumerate(lines):
            command = line[2:] if info == "console" and line.startswith("$ ") else line if info == "bash" else None
            if command is None or not re.match(r"(\w+=\S+\s+)*kerasinit\b", command):
                continue
            output = []
            for after in lines[i + 1:]:
                if info != "console" or after.startswith("$ "):
                    break
                output.append(after)
            found.append((command, "\n".join(output) if output else None))
    for span in re.findall(r"`([^`]+)`", PROSE):
        span = " ".join(span.split())
        if re.match(r"(\w+=\S+\s+)*kerasinit (?!>)[-a-z]", span):
            found.append((span, None))
    return found


COMMANDS = _command_lines()


def _tokens(command: str) -> list[str]:
    words = shlex.split(command.split(" # ")[0].replace("[", " ").replace("]", " "))
    while words and "=" in words[0] and not words[0].startswith("-"):  # KERAS_BACKEND=... kerasinit
        words.pop(0)
    assert words[0] == "kerasinit", command
    return words[1:]


@cache
def _help(*sub: str) -> str:
    proc = subprocess.run([*CLI, *sub, "--help"], env=CLI_ENV, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"`kerasinit {' '.join(sub)} --help` failed:\n{proc.stderr[-3000:]}"
    return proc.stdout


def _mentions(help_text: str, flag: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", help_text) is not None


def _subcommand(words: list[str]) -> tuple[list[str], str | None, list[str]]:
    """(global flags, subcommand or None, the words after it)."""
    flags = []
    while words and words[0].startswith("-"):
        flags.append(words.pop(0))
    return flags, (words[0] if words and words[0] != "..." else None), words[1:]


def test_readme_names_commands():
    assert len(COMMANDS) >= 8, COMMANDS
    subs = {_subcommand(_tokens(c))[1] for c, _ in COMMANDS}
    assert {"compare", "describe", "list", "plot-bounds", "lottery", "prune-at-init"} <= subs, subs


@pytest.mark.parametrize("command", sorted({c for c, _ in COMMANDS}), ids=lambda c: " ".join(c.split(" # ")[0].split()))
def test_command_uses_real_subcommand_and_flags(command):
    flags, sub, rest = _subcommand(_tokens(command))
    top = _help()
    for flag in flags:
        assert _mentions(top, flag.split("=")[0]), f"{command!r}: `kerasinit --help` has no {flag}"
    if sub is None:
        return
    assert _mentions(top, sub), f"{command!r}: {sub!r} is not a subcommand of `kerasinit --help`:\n{top}"
    text = _help(sub)
    for word in rest:
        if word.startswith("--"):
            flag = word.split("=")[0]
            assert _mentions(text, flag), f"{command!r}: `kerasinit {sub} --help` has no {flag}:\n{text}"


DESCRIBE = [(c, out) for c, out in COMMANDS if _subcommand(_tokens(c))[1] == "describe" and "..." not in c]


@pytest.mark.parametrize("command, printed", DESCRIBE, ids=[c for c, _ in DESCRIBE])
def test_describe_lines_print_what_the_readme_says(command, printed):
    proc = subprocess.run([*CLI, *_tokens(command)], env=CLI_ENV, capture_output=True, text=True, timeout=120)
    comment = command.split(" # ", 1)[1].strip() if " # " in command else ""
    if comment.startswith("error:"):
        message = comment.removeprefix("error:").split("...")[0].strip()
        assert proc.returncode != 0 and message in proc.stderr, (command, proc.stderr)
        return
    assert proc.returncode == 0, (command, proc.stderr[-3000:])
    out = [" ".join(line.split()) for line in proc.stdout.splitlines()]
    if comment:
        assert any(" ".join(comment.split()) in line for line in out), (command, proc.stdout)
    for line in (printed or "").splitlines():
        if line.split() and line.split()[0] != "sampled":
            assert " ".join(line.split()) in out, f"{command!r} no longer prints {line.strip()!r}:\n{proc.stdout}"


# ----------------------------------------------------------------------------- initializer names
def _initializer_names() -> set[str]:
    """The initializer names the README uses."""
    names = set(re.findall(r'kernel_initializer="([a-z][a-z0-9_]*)"', TEXT))
    for command, _ in COMMANDS:
        _, sub, rest = _subcommand(_tokens(command))
        comment = command.split(" # ", 1)[1] if " # " in command else ""
        if sub in ("describe", "plot-bounds") and not comment.strip().startswith("error:"):
            positional = [w for w in rest if not w.startswith("-")]
            after_flag = {rest[i + 1] for i, w in enumerate(rest[:-1]) if w.startswith("-") and "=" not in w}
            names |= {w for w in positional if w not in after_flag and w != "..."}
        if "--inits" in rest:
            names |= {n for n in rest[rest.index("--inits") + 1].split(",") if n != "..."}
    for info, body in BLOCKS:  # the first column of the compare table
        if info == "console":
            names |= set(re.findall(r"^│ ([a-z][a-z0-9_]*) +│", body, re.M))
    # quoted snake_case names in the prose that are not policy names
    from kerasinit.policies import POLICIES

    names |= {n for n in re.findall(r'`"([a-z][a-z0-9]*_[a-z0-9_]+)"`', PROSE) if n not in POLICIES}
    return names


def test_readme_initializer_names_are_listed_and_resolve():
    names = _initializer_names()
    assert {"zero_init", "kwon_tanh_uniform", "mimetic_qk", "mimetic_vo", "xavier_uniform"} <= names, names
    proc = subprocess.run([*CLI, "list", "--json"], env=CLI_ENV, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    listed = {row["name"] for row in json.loads(proc.stdout)}
    assert not names - listed, f"README names missing from `kerasinit list`: {sorted(names - listed)}"
    for name in sorted(names):
        cls = resolve(name)
        if cls is not kerasinit.FromArray:  # FromArray needs its values
            assert type(kerasinit.get(name)) is cls, name
