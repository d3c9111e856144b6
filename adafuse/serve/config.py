"""The server's config schema and its checks (all before any model loads).

The models, decoder, shortcuts, threads and engine nodes are `adafuse.run`'s (its schema
module's dataclasses, its config groups under conf/); `serve` is this command's own node.
The checks are `adafuse.run`'s `check_config` plus the address to listen on."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any, List, Optional

from adafuse.errors import AdaFuseError
from adafuse.runner import schema  # registers the decoder schemas and resolvers first

SERVE_DEFAULT_PORT = 8000


@dataclass
class ServeConf:
    host: str = "127.0.0.1"
    port: int = SERVE_DEFAULT_PORT
    model_id: Optional[str] = None  # null: <decoder>:<model>+<model>
    grace_seconds: float = 30.0  # SIGTERM: how long in-flight requests may still run
    prefix_min_chars: int = 200  # a prompt start shared with recent requests this long is prefilled once; 0: off


@dataclass
class ServeConfig:
    models: List[schema.ModelConf] = field(default_factory=list)
    decoder: Any = None
    max_new_tokens: int = 256
    theta_delta: float = schema.RunConfig.theta_delta
    max_words: int = schema.RunConfig.max_words
    num_candidates: int = schema.RunConfig.num_candidates
    batch_size: int = 8
    device: str = "auto"
    dtype: str = "auto"
    threads: Any = "auto"
    engine: schema.EngineConf = field(default_factory=schema.EngineConf)
    serve: ServeConf = field(default_factory=ServeConf)


def register() -> None:
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="adafuse_serve_schema", node=ServeConfig)


register()


def check(config: dict) -> None:
    """Everything a server needs checked before models load: `adafuse.run`'s checks of the
    models, decoder, batch size and threads, then the `serve` node."""
    from adafuse.runner.experiment import check_config

    # check_config checks a run; a server is a run of no task and no logger, and its prompts
    # come from requests (the placeholder prompt satisfies prompt mode's check)
    check_config({**config, "task": None, "logger": None, "prompt": "served", "limit": None,
                  "stop": None, "shard": 0, "num_shards": 1})
    serve = config["serve"]
    host, port = serve["host"], serve["port"]
    if not isinstance(host, str) or not host.strip():
        raise AdaFuseError(f"serve.host={host!r} is not allowed; give an address such as 127.0.0.1 or 0.0.0.0")
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise AdaFuseError(f"serve.port={port!r} is not allowed; it must be an integer in [1, 65535]")
    grace = serve["grace_seconds"]
    if isinstance(grace, bool) or not isinstance(grace, (int, float)) or not 0 <= grace <= 3600:
        raise AdaFuseError(f"serve.grace_seconds={grace!r} is not allowed; it must be a number in [0, 3600]")
    chars = serve["prefix_min_chars"]
    if isinstance(chars, bool) or not isinstance(chars, int) or not 0 <= chars <= 10**6:
        raise AdaFuseError(f"serve.prefix_min_chars={chars!r} is not allowed; it must be an integer in "
                           "[0, 1000000] (0: no shared prefixes)")
    model_id = serve.get("model_id")
    if model_id is not None and (not isinstance(model_id, str) or not model_id.strip()):
        raise AdaFuseError(f"serve.model_id={model_id!r} is not allowed; give a non-empty name or null")
    check_address(host, port)


def check_address(host: str, port: int) -> None:
    """The address can be listened on now (not in use, an address of this machine)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise AdaFuseError(f"serve.host={host!r} is not an address of this machine ({exc.strerror})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise AdaFuseError(f"serve.port={port}: cannot listen on {host}:{port} ({exc.strerror}); "
                               "pick another port (serve.port=...)") from None


def did_you_mean(message: str) -> str:
    """`adafuse.run`'s one-line message, whose suggestion for a key of the server's own nodes
    (`Key 'prt' not in 'ServeConf'`) is made again from the server's keys."""
    import difflib
    import re

    match = re.search(r"[Kk]ey '([^']+)' (?:is )?not in(?: '(ServeConf|ServeConfig)')?", message)
    if not match or (match.group(2) is None and "ServeConfig" not in message and "struct" not in message):
        return message
    if match.group(2) is None and "(did you mean" not in message:
        return message
    key = match.group(1).split(".")[-1]
    known = list(ServeConf.__dataclass_fields__) if match.group(2) == "ServeConf" else \
        list(ServeConfig.__dataclass_fields__)
    close = difflib.get_close_matches(key, sorted(set(known) - {key}), n=1)
    base = message.split(" (did you mean")[0]
    return base + (f" (did you mean {close[0]!r}?)" if close else f"; allowed: {', '.join(known)}")


def model_id(config: dict, model_names: list[str]) -> str:
    """The id the ensemble is served under."""
    given = config["serve"].get("model_id")
    if given:
        return given
    decoder = (config.get("decoder") or {}).get("name") or "decoder"
    return f"{decoder}:{'+'.join(model_names)}"
