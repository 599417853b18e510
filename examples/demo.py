"""`make demo`: our issuer plus the example MCP server it protects, and how to connect a client.

Runs `bootstrapdemo` (the demo operator and project "demo", whose resource is
http://127.0.0.1:8001/mcp), makes once an introspection-only secret for the MCP
server (kept in var/demo-mcp.json, git-ignored), then serves the issuer (mcpauth_service.serve) and
`examples/mcp_server.py` until Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def manage(*args: str) -> dict | None:
    done = subprocess.run([PYTHON, "manage.py", *args, "--json"], cwd=ROOT, capture_output=True, text=True, check=False)
    return json.loads(done.stdout) if done.returncode == 0 else None


def credentials(var_dir: Path) -> dict:
    """The MCP server's introspection secret, made the first time only (bootstrapdemo makes the end user)."""
    path = var_dir / "demo-mcp.json"
    saved = json.loads(path.read_text()) if path.exists() else {}
    if "secret" not in saved:
        secret = manage("createsecret", "--project", "demo", "--name", "Example MCP server",
                        "--permissions", "introspect")
        if secret is None:
            sys.exit("createsecret failed")
        saved["secret"] = secret["secret"]
    var_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(saved))
    path.chmod(0o600)
    return saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, help="web worker processes (default: WEB_WORKERS or the CPU count)")
    args = parser.parse_args()
    demo = manage("bootstrapdemo")
    if demo is None:
        sys.exit("bootstrapdemo failed (run `make migrate` first)")
    saved = credentials(Path(os.environ.get("MCPAUTH_VAR_DIR", ROOT / "var")))
    mcp_url = "http://127.0.0.1:8001/mcp"

    serve = [PYTHON, "-m", "mcpauth_service.serve", "--host", args.host, "--port", str(args.port)]
    issuer = subprocess.Popen(serve + (["--workers", str(args.workers)] if args.workers else []), cwd=ROOT)
    server = subprocess.Popen(
        [PYTHON, str(ROOT / "examples" / "mcp_server.py"), "--issuer", demo["issuer"], "--port", "8001"],
        cwd=ROOT, env={**os.environ, "MCPAUTH_INTROSPECTION_SECRET": saved["secret"]})
    print("\n".join([
        "",
        "  mcpauth demo",
        f"  Issuer:              {demo['issuer']}",
        f"  Dashboard:           {demo['dashboard']}  ({demo['email']} / {demo['password']})",
        f"  MCP server:          {mcp_url}",
        f"  End user sign-in:    {demo['end_user_email']} / {demo['end_user_password']}",
        "",
        "  Connect MCP Inspector:",
        "    npx @modelcontextprotocol/inspector",
        f"    Transport 'Streamable HTTP', URL {mcp_url}, then 'Open Auth Settings' -> 'Quick OAuth Flow'",
        "  Connect Claude Code:",
        f"    claude mcp add --transport http mcpauth-demo {mcp_url}",
        "    then /mcp in Claude Code and 'Authenticate' (your browser opens the sign-in page)",
        "  (Claude Desktop and claude.ai reach only public HTTPS servers: deploy with PUBLIC_URL=https://...)",
        "",
        "  Ctrl-C stops both.",
        "",
    ]), flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stop both on SIGTERM too, not just Ctrl-C
    try:
        while issuer.poll() is None and server.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for process in (server, issuer):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=15)


if __name__ == "__main__":
    main()
