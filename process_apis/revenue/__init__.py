"""Revenue recognition: each contract's schedule planned from its terms, recognised period by period in the ERP."""
