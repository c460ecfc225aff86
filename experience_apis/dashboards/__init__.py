"""Dashboards for delivery and finance leads: insights figures shaped for one page, plus the page itself."""
