"""pixelpipe: prompt → safety → budget → dedup → job → provider → storage → delivery → ledger."""

__version__ = "0.1.0"
