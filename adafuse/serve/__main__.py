"""`python -m adafuse.serve`: the Hydra command that loads an ensemble and serves it.

    python -m adafuse.serve                                   # embedded pair, 127.0.0.1:8000
    python -m adafuse.serve models=llama31_mistral dtype=bfloat16 serve.host=0.0.0.0
    python -m adafuse.serve decoder=greedy decoder.model_index=1 serve.model_id=gemma

Config: conf/serve.yaml (the models, decoder and shortcuts of `adafuse.run`, and `serve.*`).
Bad input is one `error:` line and exit 2 before any model loads. SIGTERM (or Ctrl-C) stops
taking requests, gives those in flight `serve.grace_seconds` to finish, cancels the rest and
exits 0."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from adafuse import cli
from adafuse.errors import AdaFuseError
from adafuse.serve import config as serve_config

log = logging.getLogger("adafuse.serve")

CONF = Path(__file__).resolve().parents[2] / "conf"


@hydra.main(version_base=None, config_path=str(CONF), config_name="serve")
def serve(cfg: DictConfig) -> None:
    try:
        config = OmegaConf.to_container(cfg, resolve=True)
        serve_config.check(config)
        app, settings = prepare(config)
        run_server(app, settings)
    except AdaFuseError as exc:  # here, not around Hydra: Hydra would report it in three lines
        cli.fail(exc)


def prepare(config: dict):
    """Load the models and build the decoder and the app (after the checks)."""
    from adafuse.decoding import build_decoder
    from adafuse.runner.experiment import load_models
    from adafuse.runner.threads import apply_threads
    from adafuse.serve.app import build_app
    from adafuse.serve.chat import ServedModel

    apply_threads(config.get("threads", "auto"))
    models = [ServedModel.of(lm) for lm in load_models(config["models"])]
    args = dict(config["decoder"])
    batch_size = int(args.pop("batch_size", config["batch_size"]))
    decoder = build_decoder(args, models, config.get("engine"))
    model_id = serve_config.model_id(config, [lm.name for lm in models])
    app = build_app(decoder, model_id=model_id, batch_size=batch_size,
                    max_new_tokens=int(config["max_new_tokens"]),
                    prefix_min_chars=int(config["serve"]["prefix_min_chars"]))
    return app, config["serve"]


def run_server(app, settings: dict) -> None:
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(
        app, host=settings["host"], port=settings["port"], access_log=False, log_config=None,
        timeout_graceful_shutdown=settings["grace_seconds"], lifespan="on"))
    log.info("listening on http://%s:%d (SIGTERM: in-flight requests get %g s to finish)",
             settings["host"], settings["port"], settings["grace_seconds"])
    # uvicorn stops gracefully on SIGTERM / Ctrl-C, then raises the signal again for the
    # handlers it found; these take it as done, so a stopped server exits 0
    import signal

    before = {sig: signal.signal(sig, lambda signum, frame: None) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run()
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
    if not server.started:  # uvicorn logged why (the port was taken after the check)
        raise AdaFuseError(f"the server did not start on {settings['host']}:{settings['port']}")


def main() -> None:
    """Hydra's entry, with its errors on one line and exit status 2 for bad input (as
    `adafuse.run`'s)."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from adafuse.run import one_line

    full_error = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        with cli.usage_errors("python -m adafuse.serve"):
            serve()
    except AdaFuseError as exc:
        cli.fail(exc)
    except KeyboardInterrupt:  # before the server took over the signals (loading the models)
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except (HydraException, OmegaConfBaseException) as exc:
        if full_error:
            raise
        cli.fail(serve_config.did_you_mean(one_line(exc)))


if __name__ == "__main__":
    main()
