"""The ``websocket``, ``ratelimit``, ``auth`` and ``webhooks`` sections: defaults, and errors that name the key.

Plus the platform demo itself, driven directly: faults and rotation phases switched at run time,
and the secrets directory reused across restarts (what the sandbox relies on).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from opsverify.config.base import Safety
from opsverify.config.model import load_environment
from opsverify.errors import ConfigError
from opsverify_sandbox.platform_demo import start_platform_demo
from opsverify_sandbox.process import free_port

BASE = {
    "websocket": {"name": "w", "url": "ws://127.0.0.1:1/ws"},
    "ratelimit": {"name": "r", "url": "http://127.0.0.1:1/api", "limit": 5},
    "auth": {"name": "a", "base_url": "http://127.0.0.1:1"},
    "webhooks": {"name": "h", "url": "http://127.0.0.1:1/hook", "secret": {"env": "S"}},
}


def _load(tmp_path: Path, section: str, extra: dict[str, Any], tier: str = "dev") -> Any:
    path = tmp_path / "env.yaml"
    path.write_text(json.dumps({"name": "cfg", "tier": tier, section: [{**BASE[section], **extra}]}))
    return load_environment(path).targets(section)[0]


def test_defaults_are_filled_from_the_tier_and_the_limit(tmp_path: Path) -> None:
    ws = _load(tmp_path, "websocket", {"send": "hello"}, tier="production")
    assert ws.reply_contains == "hello"  # a plain-text message expects its echo
    assert (ws.max_latency_ms.warn, ws.max_latency_ms.critical) == (400, 800)  # production http_latency_ms
    assert _load(tmp_path, "ratelimit", {}).burst == 10  # 2 x limit
    auth = _load(tmp_path, "auth", {"admin_paths": ["/admin", {"path": "/admin/x", "method": "POST"}],
                                    "base_url": "https://api.example.com/"})
    assert [p.name for p in auth.admin_paths] == ["GET-/admin", "POST-/admin/x"]
    assert auth.base_url == "https://api.example.com" and auth.jwks_path == "/.well-known/jwks.json"
    assert _load(tmp_path, "webhooks", {"dry_run": True}).safety is None  # the probes' dry-run form decides
    assert _load(tmp_path, "webhooks", {"dry_run": True, "safety": "mutating"}).safety == Safety.mutating


@pytest.mark.parametrize(("section", "extra", "problem"), [
    ("websocket", {"url": "http://x/ws"}, "String should match pattern '^wss?://'"),
    ("websocket", {"send": '{"type": "ping"}'}, "say what the reply must be"),
    ("ratelimit", {"max_requests": 5}, "max_requests (5) must be above limit (5)"),
    ("auth", {"refresh_path": "/auth/refresh"}, "refresh_path needs a client"),
    ("auth", {"client": {"client_id": "c", "client_secret": {"env": "X"}}, "revoke": {"admin_token": {"env": "A"}}},
     "revoke needs a client (to mint the token it revokes) and me_path"),
    ("auth", {"retired_api_keys": [{"name": "k", "key": {"env": "K"}}]}, "retired_api_keys needs api_key"),
    ("auth", {"jwt": {"algorithms": ["HS256"]}}, "HS256 tokens are verified with a shared secret: set hmac_secret"),
    ("auth", {"jwks": {"kids": ["a"], "retired_kids": ["a"]}}, "kid 'a' is listed both as expected and as retired"),
    ("auth", {"rotation": {"phase": "during"}}, "rotation.phase"),
    ("auth", {"rotation": {"phase": "after"}}, "a rotation needs api_key and/or signing_key"),
    ("webhooks", {"algorithm": "md5"}, "unknown HMAC algorithm 'md5'"),
    ("webhooks", {"signature_format": "{algorithm}={digest}"}, "must contain {hex} or {base64}"),
    ("webhooks", {"safety": "read_only"}, "read_only cannot lower what this target's checks send"),
    ("ratelimit", {"safety": "read_only"}, "set dry_run: true"),
])
def test_config_errors_name_the_key(tmp_path: Path, section: str, extra: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, section, extra)
    assert problem in str(caught.value) and f"{section}[0]" in str(caught.value)


def test_demo_switches_faults_and_rotation_phases_at_run_time_and_keeps_its_secrets(tmp_path: Path) -> None:
    demo = start_platform_demo(tmp_path, {"edge": (free_port(), "")})
    test_key = {"x-test-key": demo.secret("test-key").read_text().strip()}
    first_key = demo.secret("api-key-current").read_text()
    try:
        assert httpx.get(demo.url("edge", "/admin/tokens"), timeout=10).status_code == 401
        switched = httpx.post(demo.url("edge", "/_test/faults"), json={"faults": ["admin-open"]}, headers=test_key,
                              timeout=10)
        assert switched.json() == {"faults": ["admin-open"]}
        assert httpx.get(demo.url("edge", "/admin/tokens"), timeout=10).status_code == 200
        unknown = httpx.post(demo.url("edge", "/_test/faults"), json={"faults": ["gremlins"]}, headers=test_key,
                             timeout=10)
        assert unknown.status_code == 400 and "gremlins" in unknown.text

        kids = [k["kid"] for k in httpx.get(demo.url("edge", "/.well-known/jwks.json"), timeout=10).json()["keys"]]
        assert kids == ["platform-2025-07"]  # the default phase is after
        httpx.post(demo.url("edge", "/_test/rotation"), json={"signing_key": "overlap"}, headers=test_key,
                   timeout=10).raise_for_status()
        kids = [k["kid"] for k in httpx.get(demo.url("edge", "/.well-known/jwks.json"), timeout=10).json()["keys"]]
        assert sorted(kids) == ["platform-2025-01", "platform-2025-07"]
        bad = httpx.post(demo.url("edge", "/_test/rotation"), json={"api_key": "later"}, headers=test_key, timeout=10)
        assert bad.status_code == 400
    finally:
        demo.stop()
    again = start_platform_demo(tmp_path, {"edge": (free_port(), "")})
    try:
        assert again.secret("api-key-current").read_text() == first_key
        assert oct(again.secret("api-key-current").stat().st_mode & 0o777) == "0o600"
    finally:
        again.stop()
