"""Run the system tier: ``python -m system_apis`` (settings from PSGW_* env or PSGW_SETTINGS_FILE)."""

from runtime.serve import serve
from runtime.settings import load_settings
from system_apis.app import SERVICE, create_app
from system_apis.settings import SystemSettings


def main() -> None:
    settings = load_settings(SystemSettings)
    serve(create_app(settings), host=settings.host, port=settings.port, service=SERVICE,
          log_level=settings.log_level)


if __name__ == "__main__":
    main()
