"""The ledger on SQLite (embedded) or PostgreSQL (scale-out)."""

from pixelpipe.ledger.sql.ledger import SqlLedger
from pixelpipe.ledger.sql.reserve import make_reservation

__all__ = ["SqlLedger", "make_reservation"]
