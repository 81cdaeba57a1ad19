"""What the deploy tests share: the repository's files, the lint tools, and a literal
walk through the shell steps of deploy/README.md."""

from __future__ import annotations

import fnmatch
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DEPLOY_README = DEPLOY / "README.md"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
MANIFESTS = sorted(DEPLOY.glob("kubernetes-*.yaml"))
IMAGE_HEALTHCHECK = "/usr/local/lib/sfsync/healthcheck.py"


def tool(name: str) -> Path:
    """A lint tool of the test extra, from this environment (else PATH)."""
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return beside
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: it is in the test extra (python3 dev.py setup)")
    return Path(found)


def repo_files() -> set[str]:
    """The repository's files as a fresh clone has them: tracked, plus new files not ignored."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    names = {name for name in listed.stdout.decode().split("\0") if name}
    return {name for name in names if (ROOT / name).is_file()}  # not files deleted meanwhile


def yaml_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def compose_references(compose: dict[str, Any]) -> list[str]:
    """Host paths the compose file needs, relative to its directory: bind-mount
    sources, secret and config files, and each build context's Dockerfile."""
    found: list[str] = []
    for service in compose.get("services", {}).values():
        build = service.get("build")
        if build is not None:
            context = build if isinstance(build, str) else build.get("context", ".")
            dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile")
            found.append(f"{context}/{dockerfile or 'Dockerfile'}")
        for volume in service.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source")
            if isinstance(source, str) and source.startswith((".", "/")):
                found.append(source)
        found.extend(
            env_file if isinstance(env_file, str) else env_file["path"]
            for env_file in _as_list(service.get("env_file"))
        )
    for section in ("secrets", "configs"):
        for item in (compose.get(section) or {}).values():
            if "file" in item:
                found.append(item["file"])
    return found


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


# --------------------------------------------------------------------------- the README


def shell_blocks(markdown: str) -> list[str]:
    """The ```sh (or bash, shell) fenced blocks, in order."""
    return re.findall(r"^```(?:sh|bash|shell)\n(.*?)^```", markdown, re.MULTILINE | re.DOTALL)


def inline_paths(markdown: str) -> set[str]:
    """Repository paths named in the prose (in `code` spans) outside the code blocks."""
    prose = re.sub(r"^```.*?^```", "", markdown, flags=re.MULTILINE | re.DOTALL)
    spans = re.findall(r"`([^`\n]+)`", prose)
    return {span for span in spans if _PATH.match(span) and "/" in span}


def markdown_links(markdown: str) -> list[str]:
    return re.findall(r"\]\(([^)#\s]+)", markdown)


_PATH = re.compile(r"^(?:\./)?[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.*-]+)*/?$")
_FILE_SUFFIXES = {".yaml", ".yml", ".py", ".json", ".md", ".toml", ".ini", ".txt", ".html"}
_SEPARATORS = {";", "&&", "||", "|", "(", ")", "&", "\n"}


def _norm(path: PurePosixPath) -> PurePosixPath:
    parts: list[str] = []
    for part in path.parts:
        if part == "..":
            if parts:
                parts.pop()
        elif part != ".":
            parts.append(part)
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


@dataclass
class Walk:
    """A file system that starts as an empty directory and changes as the steps say.

    ``git clone URL DIR`` puts the repository's files in DIR; ``mkdir``, ``cp``,
    ``rm``, ``cd`` and output redirections do what they do. Every other word that
    looks like a relative path (a known file suffix, or a first component that
    exists) must exist when its step runs. ``docker compose`` (with ``-f`` or
    ``COMPOSE_FILE``) needs every file the compose file references, ``docker
    build`` a Dockerfile in its context.
    """

    repository: set[str]
    files: set[PurePosixPath] = field(default_factory=set)
    dirs: set[PurePosixPath] = field(default_factory=lambda: {PurePosixPath(".")})
    cwd: PurePosixPath = field(default_factory=lambda: PurePosixPath("."))
    clone: PurePosixPath | None = None
    env: dict[str, str] = field(default_factory=dict)
    created: set[PurePosixPath] = field(default_factory=set)  # by a step, ever
    problems: list[str] = field(default_factory=list)
    step: str = ""

    # ---------------------------------------------------------------- the file system

    def here(self, word: str) -> PurePosixPath:
        return _norm(self.cwd / word)

    def exists(self, path: PurePosixPath) -> bool:
        if any(char in path.name for char in "*?["):
            pattern = str(path)
            return any(fnmatch.fnmatch(str(p), pattern) for p in self.files | self.dirs)
        return path in self.files or path in self.dirs

    def need(self, path: PurePosixPath, what: str = "file") -> None:
        if not self.exists(path):
            self.problems.append(f"{self.step!r}: {what} {path} does not exist at this step")

    def add_file(self, path: PurePosixPath) -> None:
        if path.parent not in self.dirs:
            self.problems.append(f"{self.step!r}: directory {path.parent} does not exist")
        self.files.add(path)
        self.created.add(path)

    def add_dir(self, path: PurePosixPath, *, parents: bool) -> None:
        missing = [p for p in [path, *path.parents] if p not in self.dirs]
        if len(missing) > 1 and not parents:
            self.problems.append(f"{self.step!r}: directory {path.parent} does not exist")
        self.dirs.update(missing)
        self.created.update(missing)

    def repo_path(self, path: PurePosixPath) -> str | None:
        """``path`` relative to the checkout, if it is inside it."""
        if self.clone is None or not path.is_relative_to(self.clone):
            return None
        return str(path.relative_to(self.clone))

    # ---------------------------------------------------------------- the steps

    def run(self, block: str) -> None:
        text = block.replace("\\\n", " ")
        for line in text.splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                self.step = line.strip()
                for command in self._commands(line):
                    self._command(command)

    @staticmethod
    def _commands(line: str) -> Iterator[list[str]]:
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        command: list[str] = []
        for word in lexer:
            if word in _SEPARATORS:
                if command:
                    yield command
                command = []
            else:
                command.append(word)
        if command:
            yield command

    def _command(self, words: list[str]) -> None:
        words = self._redirections(words)
        while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
            self._assign(words.pop(0))
        while words and words[0] in ("sudo", "export", "command", "exec"):
            if words.pop(0) == "export":
                for word in words:
                    self._assign(word)
                return
        if not words:
            return
        name, args = words[0], words[1:]
        if name == "git" and args[:1] == ["clone"]:
            self._clone(args[1:])
        elif name == "cd":
            target = self.here(args[0] if args else ".")
            self.need(target, "directory")
            self.cwd = target
        elif name == "mkdir":
            self._mkdir(args)
        elif name == "cp":
            self._cp(args)
        elif name == "rm":
            self._rm(args)
        else:
            if name == "docker" and args[:1] == ["compose"]:
                self._compose(args[1:])
            elif name == "docker" and args[:1] == ["build"]:
                self._build(args[1:])
            self._paths(args)

    def _assign(self, word: str) -> None:
        key, _, value = word.partition("=")
        self.env[key] = value
        self._paths([word])

    def _redirections(self, words: list[str]) -> list[str]:
        rest: list[str] = []
        index = 0
        while index < len(words):
            word = words[index]
            if word in (">", ">>", "<") and index + 1 < len(words):
                target = words[index + 1]
                if not target.startswith("/") and "$" not in target:
                    if word == "<":
                        self.need(self.here(target))
                    else:
                        self.add_file(self.here(target))
                index += 2
                continue
            if word.isdigit() and index + 1 < len(words) and words[index + 1] in (">", ">>"):
                index += 1  # 2>file: the number is not an argument
                continue
            rest.append(word)
            index += 1
        return rest

    def _is_path(self, word: str) -> bool:
        if "$" in word or ":" in word or "@" in word or word.startswith(("-", "/")):
            return False
        if not _PATH.match(word):
            return False
        path = PurePosixPath(word)
        if path.suffix in _FILE_SUFFIXES:
            return True
        return "/" in word and self.exists(self.here(path.parts[0]))

    def _paths(self, args: list[str]) -> None:
        for arg in args:
            word = arg.rsplit("=", 1)[-1] if "=" in arg else arg
            if self._is_path(word):
                self.need(self.here(word))

    def _clone(self, args: list[str]) -> None:
        positional = [a for a in args if not a.startswith("-")]
        url = positional[0]
        target = positional[1] if len(positional) > 1 else PurePosixPath(url).stem
        self.clone = self.here(target)
        self.dirs.add(self.clone)
        for name in self.repository:
            path = self.clone / name
            self.files.add(path)
            self.dirs.update(p for p in path.parents if p.is_relative_to(self.clone))

    def _mkdir(self, args: list[str]) -> None:
        parents = False
        skip = False
        for arg in args:
            if skip:
                skip = False
            elif arg in ("-m", "--mode"):
                skip = True
            elif arg.startswith("-"):
                parents = parents or "p" in arg.lstrip("-") or arg == "--parents"
            else:
                self.add_dir(self.here(arg), parents=parents)

    def _cp(self, args: list[str]) -> None:
        positional = [a for a in args if not a.startswith("-")]
        *sources, target = positional
        destination = self.here(target)
        for source in sources:
            self.need(self.here(source))
            into = destination / PurePosixPath(source).name
            self.add_file(into if destination in self.dirs else destination)

    def _rm(self, args: list[str]) -> None:
        force = any(a.startswith("-") and "f" in a for a in args)
        for arg in (a for a in args if not a.startswith("-")):
            path = self.here(arg)
            if not force:
                self.need(path)
            self.files.discard(path)

    def _compose(self, args: list[str]) -> None:
        files: list[str] = []
        global_options = iter(args)
        for arg in global_options:  # up to the subcommand (`logs -f` is not a file)
            if arg in ("-f", "--file"):
                files.append(next(global_options, ""))
            elif arg in ("-p", "--project-name", "--profile", "--env-file"):
                next(global_options, "")
            elif not arg.startswith("-"):
                break
        if not files and "COMPOSE_FILE" in self.env:
            files = self.env["COMPOSE_FILE"].split(":")
        if not files:
            self.problems.append(f"{self.step!r}: which compose file? (-f or COMPOSE_FILE)")
            return
        for name in files:
            path = self.here(name)
            self.need(path)
            inside = self.repo_path(path)
            if inside is None or not (ROOT / inside).is_file():
                continue
            document = yaml.safe_load((ROOT / inside).read_text(encoding="utf-8"))
            for reference in compose_references(document):
                if not reference.startswith("/"):
                    self.need(_norm(path.parent / reference), "file the compose file names:")

    def _build(self, args: list[str]) -> None:
        takes_value = {"-t", "--tag", "-f", "--file", "--build-arg", "--target", "--platform"}
        positional: list[str] = []
        skip = False
        for arg in args:
            if skip:
                skip = False
            elif arg in takes_value:
                skip = True
            elif not arg.startswith("-"):
                positional.append(arg)
        if positional:
            self.need(self.here(positional[-1]) / "Dockerfile", "Dockerfile")


def walk_readme(markdown: str, repository: set[str]) -> Walk:
    walk = Walk(repository)
    for block in shell_blocks(markdown):
        walk.run(block)
    return walk
