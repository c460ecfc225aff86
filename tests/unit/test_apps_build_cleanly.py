"""Every Litestar app of the product builds with no deprecation warning: what Litestar 3 will refuse never ships.

pytest turns deprecations into errors (pyproject ``filterwarnings``); building the apps here, in-process, is what
makes a handler declared in the old style (inferred query, path or dependency parameters, ``data`` without a body
marker, ``Parameter(query=...)``) fail this test instead of a start-up log line nobody reads.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
from litestar import Litestar

from experience_apis.app import create_app as create_experience_app
from experience_apis.settings import ExperienceSettings
from gateway import config as gateway_config
from gateway.app import Gateway
from gateway.control import create_control_app
from gateway.launcher import REPO_ROOT
from process_apis.app import create_app as create_process_app
from process_apis.settings import ProcessSettings
from sandbox.__main__ import build_app
from system_apis.app import create_app as create_system_app
from system_apis.settings import SystemSettings


def gateway_control(data_dir: Path) -> Litestar:
    return create_control_app(Gateway(gateway_config.load(REPO_ROOT / "gateway.yaml"), data_dir))


APPS: dict[str, Callable[[Path], object]] = {
    "system": lambda d: create_system_app(SystemSettings(data_dir=str(d))),
    "process": lambda d: create_process_app(ProcessSettings(data_dir=str(d))),
    "experience": lambda d: create_experience_app(ExperienceSettings()),
    "gateway-control": gateway_control,
    **{f"sandbox-{system}": (lambda d, s=system: build_app(s, d)) for system in ("psa", "erp", "hr", "crm")},
    "sandbox-psa-certinia": lambda d: build_app("psa", d, dialect="certinia"),
    "sandbox-erp-dynamics365": lambda d: build_app("erp", d, dialect="dynamics365"),
    "sandbox-erp-s4hana": lambda d: build_app("erp", d, dialect="s4hana"),
}


@pytest.mark.parametrize("name", sorted(APPS))
def test_the_app_builds_without_a_deprecation_warning(name: str, tmp_path: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        APPS[name](tmp_path)
    deprecations = [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)]
    assert deprecations == []
