"""Where a node or one of its inputs is written in a workflow file (for errors with a line)."""

from __future__ import annotations

import json
import re

_OBJECT_KEY = re.compile(r'^\s*"([^"]+)"\s*:\s*\{')
_INSIDE_A_NODE = ("inputs", "_meta")


class JsonLines:
    """The workflow file's text: the line of a node's key, or of an input inside that node."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()

    def at(self, line: int, message: str) -> str:
        return f"{self.path}:{line}: {message}"

    def node(self, node_id: str) -> int:
        """The line of ``"<node_id>": {`` (a key, not a link ``["<node_id>", 0]``); 1 if unseen."""
        key = re.compile(rf"{re.escape(json.dumps(node_id))}\s*:\s*\{{")
        return next((i + 1 for i, line in enumerate(self.lines) if key.search(line)), 1)

    def input(self, node_id: str, name: str) -> int:
        """The line of input ``name`` of node ``node_id``; the node's line if unseen."""
        start = self.node(node_id)
        key = re.compile(rf"{re.escape(json.dumps(name))}\s*:")
        for i in range(start - 1, len(self.lines)):
            line = self.lines[i]
            other = _OBJECT_KEY.match(line)
            if i >= start and other and other.group(1) not in _INSIDE_A_NODE:
                break  # the next node
            if key.search(line):
                return i + 1
        return start
