"""The HR system API: workers with effective-dated cost rates, roles, cost centers, business units."""
