"""The CPU predictor that tests/servers/cog.py serves with a real cog server."""
