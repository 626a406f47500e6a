"""A small JSON client of the Kubernetes API, built from a kubeconfig, for the demo and the tests.

The runner writes pod and node status the way a kubelet does (merge patches on `/status`), which
is plain HTTP; a dict-in, dict-out client keeps those requests exactly as the API sees them.
"""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

MERGE_PATCH = "application/merge-patch+json"


class KubeApiError(RuntimeError):
    """The API server answered with an error status."""

    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"{method} {path} -> {status}: {body[:500]}")
        self.status = status


class KubeApi:
    """Requests as the current context's user of a kubeconfig (client certificate or token)."""

    def __init__(self, kubeconfig: Path, credentials_dir: Path, timeout: float = 30.0) -> None:
        config = yaml.safe_load(kubeconfig.read_text())
        context_name = config["current-context"]
        context = _named(config["contexts"], context_name)["context"]
        cluster = _named(config["clusters"], context["cluster"])["cluster"]
        user = _named(config["users"], context["user"])["user"]
        self.server = str(cluster["server"]).rstrip("/")
        self.timeout = timeout
        self._headers: dict[str, str] = {"Accept": "application/json"}
        self._ssl = ssl.create_default_context(
            cadata=base64.b64decode(cluster["certificate-authority-data"]).decode()
        )
        if "token" in user:
            self._headers["Authorization"] = f"Bearer {user['token']}"
        else:
            # ssl loads a client certificate only from files.
            credentials_dir.mkdir(parents=True, exist_ok=True)
            cert, key = credentials_dir / "client.crt", credentials_dir / "client.key"
            for path, field in ((cert, "client-certificate-data"), (key, "client-key-data")):
                path.write_bytes(base64.b64decode(user[field]))
                path.chmod(0o600)
            self._ssl.load_cert_chain(str(cert), str(key))

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        query: Mapping[str, str] | None = None,
    ) -> Any:
        """One request; returns the decoded JSON body, raises KubeApiError on >= 400."""
        url = f"{self.server}{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None if body is None else json.dumps(body).encode()
        headers = {**self._headers, "Content-Type": content_type}
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self._ssl) as answer:
                raw: bytes = answer.read()
        except urllib.error.HTTPError as error:
            body = error.read().decode(errors="replace")
            raise KubeApiError(method, path, error.code, body) from None
        return json.loads(raw) if raw else None

    def get(self, path: str, **query: str) -> Any:
        return self.request("GET", path, query=query)

    def items(self, path: str, **query: str) -> list[dict[str, Any]]:
        """The `items` of a list request."""
        listed: list[dict[str, Any]] = self.get(path, **query)["items"]
        return listed

    def merge_patch(self, path: str, body: Mapping[str, Any]) -> Any:
        return self.request("PATCH", path, dict(body), content_type=MERGE_PATCH)

    def create(self, path: str, body: Mapping[str, Any]) -> Any:
        return self.request("POST", path, dict(body))

    def delete(self, path: str, body: Mapping[str, Any] | None = None) -> Any:
        return self.request("DELETE", path, None if body is None else dict(body))


def _named(entries: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(entry for entry in entries if entry["name"] == name)
