"""crm_platform: CRM changes, exports and touches become one validated, versioned event log."""

__version__ = "0.1.0"
