"""The ERP system API: legal entities, periods, customers, contracts, dimensions, postings, invoices, revenue."""
