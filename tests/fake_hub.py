"""A small Hub-compatible HTTP server for tests: the endpoints the real huggingface_hub client calls
(and `datasets.load_dataset`, for dataset repos).

Repos live in memory as a list of commits (sha -> {path: bytes}) per branch. Every file is
uploaded "regular" (base64 inside the NDJSON commit body), so no LFS or Xet storage is needed;
clients must run with HF_HUB_DISABLE_XET=1. Downloads answer HEAD and GET on
`/{repo}/resolve/{revision}/{path}` with the headers `file_download.py` requires (X-Repo-Commit,
ETag, Content-Length), and 404s carry the X-Error-Code the client maps to its exceptions.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional
from urllib.parse import unquote, urlparse

REPO = r"(?P<repo>[^/]+/[^/]+)"
KIND = r"(?:models|datasets)"  # one namespace for both kinds: test repos do not share names
REV = r"(?P<rev>[^/?]+)"


def git_blob_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Repo:
    private: bool
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)  # sha -> files
    branches: dict[str, str] = field(default_factory=dict)  # branch -> sha
    log: list[dict[str, Any]] = field(default_factory=list)  # one entry per commit: branch, sha, summary

    def resolve(self, revision: str) -> Optional[str]:
        revision = unquote(revision)
        return self.branches.get(revision) or (revision if revision in self.commits else None)


class FakeHub:
    """Start with `FakeHub()`, point clients at `.endpoint`, `.close()` when done."""

    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        repo = self.repos[repo_id]
        return repo.commits[repo.resolve(revision)]

    def commit(self, repo_id: str, branch: str, lines: list[dict[str, Any]]) -> str:
        repo = self.repos[repo_id]
        files = dict(repo.commits[repo.branches[branch]]) if branch in repo.branches else {}
        summary = ""
        for line in lines:
            value = line["value"]
            if line["key"] == "header":
                summary = value["summary"]
            elif line["key"] == "file":
                files[value["path"]] = base64.b64decode(value["content"])
            elif line["key"] == "deletedFile":
                files.pop(value["path"], None)
            else:
                raise ValueError(f"unsupported commit operation {line['key']!r}")
        sha = hashlib.sha1(f"{repo_id}{len(repo.commits)}{summary}".encode()).hexdigest()
        repo.commits[sha] = files
        repo.branches[branch] = sha
        repo.log.append({"branch": branch, "sha": sha, "summary": summary, "files": sorted(files)})
        return sha


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes = b"", headers: Optional[dict[str, str]] = None, head: bool = False) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def _json(self, status: int, payload: Any, headers: Optional[dict[str, str]] = None) -> None:
            self._send(status, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})})

        def _error(self, status: int, code: str, message: str, head: bool = False, extra: Optional[dict] = None,
                   **headers: str) -> None:
            body = json.dumps({"error": message, **(extra or {})}).encode()
            self._send(status, body, {"Content-Type": "application/json", "X-Error-Code": code, **headers}, head=head)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length", 0)))

        def _route(self, method: str) -> None:
            path = urlparse(self.path).path
            with hub.lock:
                hub.requests.append((method, path))
                for pattern, name in ROUTES.get(method, []):
                    match = re.fullmatch(pattern, path)
                    if match:
                        return getattr(self, name)(**match.groupdict())
            self._error(404, "NotFound", f"fake hub has no route for {method} {path}")

        def do_GET(self) -> None:
            self._route("GET")

        def do_HEAD(self) -> None:
            self._route("HEAD")

        def do_POST(self) -> None:
            self._route("POST")

        def _repo(self, repo: str, head: bool = False) -> Optional[Repo]:
            found = hub.repos.get(repo)
            if found is None:
                self._error(404, "RepoNotFound", f"Repository {repo} not found", head=head)
            return found

        def create_repo(self) -> None:
            payload = json.loads(self._body())
            repo_id = f"{payload['organization']}/{payload['name']}"
            if repo_id in hub.repos:  # the Hub's 409 names the existing repo's url, which create_repo returns
                return self._error(409, "RepoExists", "You already created this model repo",
                                   extra={"url": f"{hub.endpoint}/{repo_id}"})
            hub.repos[repo_id] = Repo(private=payload.get("visibility") == "private")
            hub.commit(repo_id, "main", [{"key": "header", "value": {"summary": "initial commit"}}])
            self._json(200, {"url": f"{hub.endpoint}/{repo_id}"})

        def validate_yaml(self) -> None:
            self._body()
            self._json(200, {"errors": [], "warnings": []})

        def create_branch(self, repo: str, branch: str) -> None:
            self._body()
            found = self._repo(repo)
            if found is None:
                return
            if branch in found.branches:
                return self._error(409, "BranchExists", f"branch {branch} exists")
            found.branches[branch] = found.branches["main"]
            self._json(200, {})

        def preupload(self, repo: str, rev: str) -> None:
            payload = json.loads(self._body())
            found = self._repo(repo)
            if found is None:
                return
            current = found.commits.get(found.resolve(rev) or "", {})
            files = [
                {"path": item["path"], "uploadMode": "regular", "shouldIgnore": False,
                 "oid": git_blob_oid(current[item["path"]]) if item["path"] in current else None}
                for item in payload["files"]
            ]
            self._json(200, {"files": files, "commitOid": found.resolve(rev)})

        def commit(self, repo: str, rev: str) -> None:
            lines = [json.loads(line) for line in self._body().splitlines() if line.strip()]
            if self._repo(repo) is None:
                return
            sha = hub.commit(repo, unquote(rev), lines)
            self._json(200, {"commitUrl": f"{hub.endpoint}/{repo}/commit/{sha}", "commitOid": sha, "success": True})

        def model_info(self, repo: str, rev: str = "main") -> None:
            found = self._repo(repo)
            if found is None:
                return
            sha = found.resolve(rev)
            if sha is None:
                return self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
            files = found.commits[sha]
            self._json(200, {"id": repo, "modelId": repo, "sha": sha, "private": found.private, "tags": [],
                             "siblings": [{"rfilename": name, "size": len(data)} for name, data in sorted(files.items())]})

        def tree(self, repo: str, rev: str, folder: Optional[str] = None) -> None:
            found = self._repo(repo)
            if found is None:
                return
            files = found.commits[found.resolve(rev)]
            prefix = f"{unquote(folder).strip('/')}/" if folder else ""
            self._json(200, [{"type": "file", "path": name, "size": len(data), "oid": git_blob_oid(data)}
                             for name, data in sorted(files.items()) if name.startswith(prefix)])

        def resolve(self, repo: str, rev: str, path: str, head: bool = False) -> None:
            found = self._repo(repo, head=head)
            if found is None:
                return
            sha = found.resolve(rev)
            if sha is None:
                return self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}", head=head)
            data = found.commits[sha].get(unquote(path))
            if data is None:
                return self._error(404, "EntryNotFound", f"{path} does not exist", head=head, **{"X-Repo-Commit": sha})
            headers = {"X-Repo-Commit": sha, "ETag": f'"{git_blob_oid(data)}"', "Content-Type": "application/octet-stream"}
            self._send(200, data, headers, head=head)

        def resolve_head(self, repo: str, rev: str, path: str) -> None:
            self.resolve(repo, rev, path, head=True)

    ROUTES = {
        "POST": [
            (r"/api/repos/create", "create_repo"),
            (r"/api/validate-yaml", "validate_yaml"),
            (rf"/api/{KIND}/{REPO}/branch/(?P<branch>[^/]+)", "create_branch"),
            (rf"/api/{KIND}/{REPO}/preupload/{REV}", "preupload"),
            (rf"/api/{KIND}/{REPO}/commit/{REV}", "commit"),
        ],
        "GET": [
            (rf"/api/{KIND}/{REPO}/revision/{REV}", "model_info"),
            (rf"/api/{KIND}/{REPO}", "model_info"),
            (rf"/api/{KIND}/{REPO}/tree/{REV}(?:/(?P<folder>.*))?", "tree"),
            (rf"/(?:datasets/)?{REPO}/resolve/{REV}/(?P<path>.+)", "resolve"),
        ],
        "HEAD": [(rf"/(?:datasets/)?{REPO}/resolve/{REV}/(?P<path>.+)", "resolve_head")],
    }
    return Handler
