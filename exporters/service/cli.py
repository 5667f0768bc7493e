"""``modelmon serve``: the exporter service (/metrics, /ingest, /healthz) on gunicorn."""

from __future__ import annotations

import argparse

from modelmon.config import ConfigError, load_serve_config, parse_listen
from modelmon.hookspecs import SubParsers, hookimpl


def register(sub: SubParsers) -> None:
    p = sub.add_parser(
        "serve",
        help="run the exporter service: /metrics, POST /ingest, /healthz",
        description="Serve Prometheus KPIs of models whose servers send events to POST /ingest.",
    )
    p.add_argument("--config", help="YAML config file (see docs/serve.md); defaults apply without")
    p.add_argument("--listen", help="HOST:PORT, overrides the config's listen (default 127.0.0.1:9110)")
    p.add_argument("--header-timeout", type=float, default=10.0, metavar="SECONDS",
                   help="close a client that has not sent its request headers within this "
                   "time (answer 408; default 10)")
    p.add_argument("--body-timeout", type=float, default=30.0, metavar="SECONDS",
                   help="close a client that has not sent its request body within this time "
                   "after its headers (answer 408; default 30)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from modelmon.exporters.service.app import create_app
    from modelmon.exporters.service.http_worker import ReadLimits
    from modelmon.exporters.service.web_config import load_web_config
    from modelmon.exporters.service.wsgi import gunicorn_options, run_gunicorn

    for flag, seconds in (("--header-timeout", args.header_timeout),
                          ("--body-timeout", args.body_timeout)):
        if not seconds > 0:
            raise ConfigError(f"{flag}: expected a number of seconds > 0, got {seconds}")
    config = load_serve_config(args.config)
    host, port = parse_listen(args.listen) if args.listen else (config.host, config.port)
    # Validate the web config before forking so a typo fails here, with its field name.
    web = load_web_config(config.web_config_file)
    if config.raw.get("logs") is not None:
        from modelmon.exporters.logs.config import check_sink, shipper_options

        try:
            shipper_options(config.raw["logs"], config.base_dir)
            check_sink(config.raw["logs"], config.base_dir)
        except ConfigError as exc:
            raise ConfigError(f"config file {args.config}: {exc}") from None
    if config.raw.get("bundles") is not None:
        from modelmon.exporters.edge.bundles.server import bundles_dir

        try:
            bundles_dir(config.raw["bundles"], config.base_dir)
        except ConfigError as exc:
            raise ConfigError(f"config file {args.config}: {exc}") from None
    scheme = "https" if web.tls else "http"

    def banner() -> None:
        # Printed by gunicorn once it listens: the URL works when it is shown.
        print(f"modelmon serve: {scheme}://{host}:{port}/metrics, POST /ingest, /healthz",
              flush=True)

    try:
        # Loads the certificate and key: a bad one fails here, naming its field.
        options = gunicorn_options(
            host, port, threads=config.threads, tls=web.tls, on_ready=banner,
            limits=ReadLimits(header_timeout=args.header_timeout, body_timeout=args.body_timeout,
                              max_body_bytes=config.ingest.max_body_bytes),
        )
    except ConfigError as exc:
        raise ConfigError(f"web config file {config.web_config_file}: {exc}") from None
    run_gunicorn(lambda: create_app(config, web_config=web), options)
    return 0


@hookimpl
def modelmon_register_commands(subparsers: SubParsers) -> None:
    register(subparsers)
