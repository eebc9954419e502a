"""Bulk provisioning of SIP phones: CSV files read, validated and written (``csvfile``), and
imported or exported through the API client (``importer``). No CLI here: the command line and,
later, the web console wire these."""
