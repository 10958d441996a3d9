"""A process's logging (cli._logging): pixelpipe's own INFO lines, and not httpx's line per
request — it names the full URL (an output's URL may carry a signature) on every provider call."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_PROCESS = """
import http.server, logging, sys, threading
import httpx
from pixelpipe.cli import _logging
from pixelpipe.settings import Settings

class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # the test server's own line is not the subject
        pass

server = http.server.HTTPServer(("127.0.0.1", 0), Quiet)
threading.Thread(target=server.serve_forever, daemon=True).start()
_logging(Settings(data_dir=sys.argv[1], log_level=sys.argv[2]))
logging.getLogger("pixelpipe.worker").info("an INFO line of ours")
port = server.server_address[1]
httpx.get(f"http://127.0.0.1:{port}/?X-Amz-Signature=secret-ish", timeout=5)
server.shutdown()
"""


def run_process(tmp_path: Path, level: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _PROCESS, str(tmp_path), level],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_info_logs_ours_but_not_httpxs_line_per_request(tmp_path: Path) -> None:
    logged = run_process(tmp_path, "INFO")
    assert "an INFO line of ours" in logged
    assert "HTTP Request" not in logged and "X-Amz-Signature" not in logged, logged


def test_warning_logs_neither(tmp_path: Path) -> None:
    logged = run_process(tmp_path, "WARNING")
    assert "an INFO line of ours" not in logged and "HTTP Request" not in logged, logged
