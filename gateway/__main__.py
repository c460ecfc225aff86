"""Run the gateway: ``python -m gateway`` (PSGW_CONFIG_FILE, PSGW_DATA_DIR, PSGW_PORT, PSGW_DATABASE_URL...)."""

import sys
from pathlib import Path

from gateway import config as gateway_config
from gateway.app import Gateway
from gateway.server import serve
from gateway.settings import GatewaySettings
from gateway.workers import supervise, worker_count
from runtime.settings import load_settings


def main() -> None:
    settings = load_settings(GatewaySettings)
    if worker_count(settings) > 1:
        sys.exit(supervise(settings))
    config = gateway_config.load(settings.config_file)
    app = Gateway(config, Path(settings.data_dir), config_file=Path(settings.config_file), settings=settings)
    serve(app, host=settings.host or config.listen.host, port=settings.port or config.listen.port,
          server=settings.server, log_level=settings.log_level, reuse_port=settings.reuse_port)


if __name__ == "__main__":
    main()
