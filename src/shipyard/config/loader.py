"""Reading shipyard.yaml: YAML with line numbers, validated, every error as file:line: field: reason."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from shipyard.config.schema import ProjectConfig
from shipyard.errors import ConfigError

MAX_BYTES = 256 * 1024
"""A shipyard.yaml is a few KiB; past this it is not a configuration file."""
MAX_DEPTH = 64
"""Nesting of mappings and lists; the real schema needs about 8."""
MAX_NODES = 100_000
"""Nodes after every alias is expanded: a billion-laughs file is refused before it is walked."""

_CROSS = re.compile(r"^(?P<field>[a-z_][\w\[\].-]*): (?P<reason>.+)$", re.S)
_REASONS = {
    "extra_forbidden": "unknown field",
    "missing": "required field is missing",
}


def load_config_file(path: str | Path) -> ProjectConfig:
    """The file at ``path``; a missing file gives the defaults."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        data = b""
    return load_config(decode_config(data, str(path)), str(path))


def decode_config(data: bytes | None, file: str = "shipyard.yaml") -> str:
    """The file's text: UTF-8, at most ``MAX_BYTES``; otherwise a ConfigError with the line."""
    data = data or b""
    if len(data) > MAX_BYTES:
        raise ConfigError(file, None, "(file)", f"{len(data)} bytes is over the {MAX_BYTES} limit")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(
            file, line, "(file)", f"not UTF-8 (byte 0x{data[exc.start]:02x}); save it as UTF-8"
        ) from None


def _bounded(text: str, file: str) -> None:
    """Refuse deep nesting before composing (PyYAML composes recursively)."""
    if len(text.encode()) > MAX_BYTES:
        raise ConfigError(file, None, "(file)", f"over the {MAX_BYTES} byte limit")
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                line = event.start_mark.line + 1 if event.start_mark else None
                raise ConfigError(file, line, "(yaml)", f"nested more than {MAX_DEPTH} levels deep")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _expanded_size(file: str, root: yaml.Node) -> None:
    """Count the nodes as the loader will build them (aliases expanded), memoized per node, so
    an alias bomb costs one pass over its few distinct nodes and is refused."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        total = 1
        if isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            total += sum(size(v) for v in node.value)
        if total > MAX_NODES:
            line = node.start_mark.line + 1
            raise ConfigError(
                file, line, "(yaml)", f"expands to more than {MAX_NODES} values (aliases?)"
            )
        sizes[id(node)] = total
        return total

    size(root)


def load_config(text: str, file: str = "shipyard.yaml") -> ProjectConfig:
    """Parse and validate; raise ConfigError naming the first problem. Empty text gives defaults."""
    try:
        _bounded(text, file)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        if root is not None:
            _expanded_size(file, root)
        data = yaml.safe_load(text) if root is not None else {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(file, mark.line + 1 if mark else None, "(yaml)", problem) from None
    if root is not None:
        _no_duplicate_keys(file, root, [])
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(file, 1, "(root)", "the file must be a mapping of fields")
    try:
        return ProjectConfig.model_validate(data)
    except ValidationError as exc:
        raise _config_error(file, root, data, exc) from None


def line_at(text: str, path: list[int | str]) -> int | None:
    """1-based line of ``path`` (or its deepest existing parent) in a file that loads."""
    return _line_of(yaml.compose(text, Loader=yaml.SafeLoader), path)


def _no_duplicate_keys(file: str, node: yaml.Node, path: list[int | str]) -> None:
    """PyYAML keeps the last of two equal keys; a config file with both is a mistake."""
    if isinstance(node, yaml.MappingNode):
        seen: set[object] = set()
        for key, value in node.value:
            if key.value in seen:
                line = key.start_mark.line + 1
                raise ConfigError(file, line, _dotted([*path, key.value]), "duplicate key")
            seen.add(key.value)
            _no_duplicate_keys(file, value, [*path, key.value])
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _no_duplicate_keys(file, item, [*path, i])


def _config_error(
    file: str, root: yaml.Node | None, data: Any, exc: ValidationError
) -> ConfigError:
    err = exc.errors(include_url=False)[0]
    path = _real_path(data, err["loc"])
    reason = _REASONS.get(err["type"], str(err["msg"]))
    if err["type"] == "value_error":
        reason = reason.removeprefix("Value error, ")
        cross = _CROSS.match(reason)
        if cross:  # a model-level rule names the field below the model it checked
            path = path + _parse_path(cross.group("field"))
            reason = cross.group("reason")
    return ConfigError(file, _line_of(root, path), _dotted(path) or "(root)", reason)


def _real_path(data: Any, loc: tuple[int | str, ...]) -> list[int | str]:
    """Pydantic adds union member names to locations; keep only the steps that exist in the data."""
    path: list[int | str] = []
    node = data
    for step in loc:
        found, child = _child(node, step)
        if found:
            path.append(step)
            node = child
        elif (
            isinstance(node, dict)
            and isinstance(step, str)
            and step[:1].islower()
            and "[" not in step
        ):
            path.append(step)  # a missing or unknown key: name it, the line is its parent's
            node = None
    return path


def _child(node: Any, step: int | str) -> tuple[bool, Any]:
    if isinstance(node, dict) and step in node:
        return True, node[step]
    if isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
        return True, node[step]
    return False, None


def _parse_path(text: str) -> list[int | str]:
    out: list[int | str] = []
    for name, index in re.findall(r"([A-Za-z_][\w-]*)|\[(\d+)\]", text):
        out.append(int(index) if index else name)
    return out


def _dotted(path: list[int | str]) -> str:
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else step)
    return text


def _line_of(root: yaml.Node | None, path: list[int | str]) -> int | None:
    """1-based line of the deepest node on ``path`` that exists."""
    if root is None:
        return None
    node: yaml.Node = root
    line = node.start_mark.line + 1
    for step in path:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == step), None)
            if match is None:
                return line
            line = match[0].start_mark.line + 1
            node = match[1]
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value)
        ):
            node = node.value[step]
            line = node.start_mark.line + 1
        else:
            return line
    return line
