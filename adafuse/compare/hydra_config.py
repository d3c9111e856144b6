"""A run folder's `.hydra/config.yaml`, read as data (a run killed before its first item has no
config in results.json).

Plain YAML only (no tag builds an object), and `${...}` interpolations are not handed to
OmegaConf: a plain reference to another key of the same config (`${theta_delta}`) is followed,
as the runner's own config does; anything else, a resolver call such as `${oc.env:SECRET}`
among them, stays as the text it is. Run folders come from other people: reading one must not
read this machine's environment, nor run anything.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any


def hydra_config(path: Path) -> dict | None:
    """The composed config Hydra saved (a run killed before its first item has no config in
    results.json), as plain YAML data read within adafuse.safe_read's bounds (size, aliases,
    nodes): interpolations stay unresolved text. None when there is no such file; damage (not
    YAML, too large, an alias bomb, not a mapping) is an AdaFuseError naming the file."""
    from adafuse.errors import AdaFuseError
    from adafuse.safe_read import read_yaml

    file = path / ".hydra" / "config.yaml"
    data = read_yaml(file)
    if data is None:
        return None
    if not isinstance(data, dict):
        raise AdaFuseError(f"{file}: not a mapping of keys to values")
    return resolve_references(data)


REFERENCE = re.compile(r"\$\{([A-Za-z_][\w]*(?:\.[\w]+)*)\}")


def resolve_references(config: dict, budget: int | None = None) -> dict:
    """The config with its plain references (`${theta_delta}`, `${task.name}`: another key of
    the same config) replaced by their values; anything else in `${...}`, a resolver call
    such as `${oc.env:HOME}` among them, and a reference to a missing key stay as text.
    References that multiply (a key holding ten references to one holding ten ...) are
    bounded like YAML aliases: past `budget` nodes and characters made, an AdaFuseError."""
    from adafuse.errors import AdaFuseError
    from adafuse.safe_read import MAX_NODES

    left = [MAX_NODES * 8 if budget is None else budget]

    def spend(amount: int) -> None:
        left[0] -= amount
        if left[0] < 0:
            raise AdaFuseError("its ${...} references expand past the bound a config may reach")

    def lookup(path: str, depth: int) -> Any:
        node: Any = config
        for part in path.split("."):
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise KeyError(path)
        return resolve(node, depth + 1)

    def resolve(node: Any, depth: int) -> Any:
        if depth > 20:  # a reference cycle: left as it is
            return node
        spend(1 + (len(node) if isinstance(node, (str, list, dict)) else 0))
        if isinstance(node, dict):
            return {k: resolve(v, depth) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v, depth) for v in node]
        if not isinstance(node, str) or "${" not in node:
            return node
        whole = REFERENCE.fullmatch(node)
        try:
            if whole:
                return lookup(whole.group(1), depth)
            return REFERENCE.sub(lambda m: spent(str(lookup(m.group(1), depth))), node)
        except KeyError:
            return node

    def spent(text: str) -> str:
        spend(len(text))
        return text

    return resolve(config, 0)
