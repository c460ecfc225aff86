"""Finance operations: the exception queue, invoicing, reconciliation, month-end settlement and provisioning."""
