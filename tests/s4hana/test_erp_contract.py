"""The ERP system API's contract suite (tests/system/test_erp_api.py), run as is on the ``s4hana`` backend: the same
canonical answers from SAP S/4HANA Cloud OData as from the default sandbox ERP, NetSuite and Dynamics 365."""

from tests.system.test_erp_api import *  # noqa: F403 - the suite is test_erp_api's __all__, one list for every backend
