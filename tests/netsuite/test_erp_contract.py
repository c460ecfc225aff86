"""The ERP system API's contract suite (tests/system/test_erp_api.py), run as is on the ``netsuite`` backend: the
same canonical answers from NetSuite REST as from the default sandbox ERP."""

from tests.system.test_erp_api import *  # noqa: F403 - the suite is test_erp_api's __all__, one list for every backend
