"""Run the process tier: ``python -m process_apis``."""

from process_apis.app import SERVICE, create_app
from process_apis.settings import ProcessSettings
from runtime.serve import serve
from runtime.settings import load_settings


def main() -> None:
    settings = load_settings(ProcessSettings)
    serve(create_app(settings), host=settings.host, port=settings.port, service=SERVICE,
          log_level=settings.log_level)


if __name__ == "__main__":
    main()
