"""Run the experience tier: ``python -m experience_apis``."""

from experience_apis.app import SERVICE, create_app
from experience_apis.settings import ExperienceSettings
from runtime.serve import serve
from runtime.settings import load_settings


def main() -> None:
    settings = load_settings(ExperienceSettings)
    serve(create_app(settings), host=settings.host, port=settings.port, service=SERVICE,
          log_level=settings.log_level)


if __name__ == "__main__":
    main()
