"""The CRM system API: accounts (customers), opportunities, signed contracts, rate cards as sold."""
