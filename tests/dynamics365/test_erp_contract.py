"""The ERP system API's contract suite (tests/system/test_erp_api.py), run as is on the ``dynamics365`` backend: the
same canonical answers from Dynamics 365 Finance OData as from the default sandbox ERP and NetSuite."""

from tests.system.test_erp_api import *  # noqa: F403 - the suite is test_erp_api's __all__, one list for every backend
