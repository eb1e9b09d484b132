"""DVC data registry: a git + DVC workspace, its remote, and versioning of single files with tags."""

from __future__ import annotations

import fcntl
import logging
import os
import random
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from mlops_provider.exceptions import DvcError, RevisionNotFound
from mlops_provider.hooks.connections import DVC_FIELD_BEHAVIOUR, optional_connection
from mlops_provider.layout import DVC_DEFAULT_CONN_ID
from mlops_provider.utils.extras import require
from mlops_provider.utils.files import atomic_path, md5_of_file
from mlops_provider.utils.paths import dvc_remote_dir, dvc_workspace_dir

if TYPE_CHECKING:
    import pandas as pd

GIT_IDENTITY = ("-c", "user.name=airflow-provider-mlops", "-c", "user.email=mlops@airflow.invalid")
REMOTE_NAME = "storage"
#: Publishing a version to the registry's git remote: attempts before giving up when other workers keep winning.
PUSH_ATTEMPTS = 8
#: A (possibly abbreviated) git commit id: the one kind of rev besides a tag that names a fixed version.
COMMIT_ID = re.compile(r"[0-9a-fA-F]{7,40}")

#: Which DVC remote options the connection's login and password fill, by the remote URL's scheme.
CREDENTIAL_OPTIONS: dict[str, tuple[str, str]] = {
    "s3": ("access_key_id", "secret_access_key"),
    "ssh": ("user", "password"),
    "http": ("user", "password"),
    "https": ("user", "password"),
    "webdav": ("user", "password"),
    "webdavs": ("user", "password"),
    "azure": ("account_name", "account_key"),
    "oss": ("oss_key_id", "oss_key_secret"),
}
#: DVC remote options that are secrets: written to the untracked ``.dvc/config.local``, never committed, even when
#: they come in ``remote_options``.
SECRET_OPTIONS = frozenset(
    {
        "password", "secret_access_key", "session_token", "account_key", "sas_token", "connection_string",
        "client_secret", "oss_key_secret", "token", "gdrive_client_secret", "keyfile", "key_file", "passphrase",
    }
)  # fmt: skip
#: Lock files git leaves when a process is killed mid-operation; under the hook's own lock none is live.
_GIT_LOCK_FILES = ("index.lock", "HEAD.lock", "config.lock", "packed-refs.lock", "shallow.lock")

# DVC's API prints "To track the changes with git, run: git add ..." hints meant for people at a terminal.
logging.getLogger("dvc.repo.scm_context").setLevel(logging.WARNING)


def split_userinfo(url: str) -> tuple[str, str | None, str | None]:
    """``url`` without its userinfo, and the user and password it carried (percent-decoded), or None.

    ``https://deploy:p%40ss@host/dvc`` -> ``("https://host/dvc", "deploy", "p@ss")``; a local folder and a URL
    without userinfo come back unchanged with ``(None, None)``.
    """
    from urllib.parse import unquote, urlsplit, urlunsplit

    if "://" not in url:
        return url, None, None
    parts = urlsplit(url)
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at:
        return url, None, None
    user, colon, password = userinfo.partition(":")
    return urlunsplit(parts._replace(netloc=host)), unquote(user) or None, unquote(password) if colon else None


class DvcHook(BaseHook):
    """Owns one DVC workspace (a git repository with DVC) used as the data registry, and its remote.

    Without a connection (or with the default connection id absent) the workspace is created on first use in
    ``$MLOPS_HOME/data-registry`` with a local folder remote in ``$MLOPS_HOME/dvc-remote``. A connection of
    type ``dvc`` configures:

    - ``host``: URL or path of an existing data registry git repository to clone (optional);
    - ``login``/``password``: credentials of the DVC remote, mapped by the remote's scheme (``CREDENTIAL_OPTIONS``:
      S3 access key id and secret, SSH/HTTP/WebDAV user and password, Azure account name and key). They are
      written to ``.dvc/config.local`` (mode 0600), which git never tracks, and never into a URL. A user and
      password in ``remote_url`` itself (``https://user:pw@host/dvc``) are taken out of the URL and treated the
      same way (the connection's login/password win); the committed ``.dvc/config`` holds the URL without them;
    - extras: ``workspace`` (local folder of the clone), ``remote_url`` (``s3://bucket/prefix``, a folder...),
      ``remote_options`` (e.g. ``{"endpointurl": "http://minio:9000"}``; committed to ``.dvc/config`` except the
      secret ones of ``SECRET_OPTIONS``), ``remote_secret_options`` (any further secret option, e.g. a key file,
      written only to ``.dvc/config.local``), ``git_password`` (token for the git host, passed through
      ``GIT_ASKPASS``, never in a URL).

    All writes hold an exclusive file lock on the workspace, so concurrent tasks on one machine queue instead of
    colliding on DVC's and git's own locks. Because no git process of ours can run while the lock is held, a write
    that finds git's lock files (a task killed mid-commit: OOM, node crash) removes them and unstages what the
    killed write had staged before it starts; every commit names its own paths, so nothing of another write ends
    up in it.

    Across machines (workers without a common disk), give the connection a ``host``: every worker clones the
    registry into its own workspace, fetches it before it reads or writes (tags included, pruned to the remote's),
    and publishes a version with one atomic ``git push`` of the branch and the version's tag. A push rejected
    because another worker published first (non-fast-forward, or an immutable tag it created) is retried from the
    remote's new state, up to ``PUSH_ATTEMPTS`` times; the git remote, not a lock, decides who wins. The file lock
    then only keeps tasks on one machine from colliding in the same workspace.

    :param dvc_conn_id: Airflow connection id (type ``dvc``).
    :param workspace: local workspace folder; overrides the connection's ``workspace`` extra.
    """

    conn_name_attr = "dvc_conn_id"
    default_conn_name = DVC_DEFAULT_CONN_ID
    conn_type = "dvc"
    hook_name = "DVC data registry"

    def __init__(self, dvc_conn_id: str = default_conn_name, workspace: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        require("dvc", user=f"{type(self).__name__} ({dvc_conn_id})")
        self.dvc_conn_id = dvc_conn_id
        self._workspace_override = workspace
        self._fresh = False  # fetched from the registry's git remote by this hook instance
        self._lock_depth = 0
        self.push_attempts = 0  # pushes this hook made to the git remote (a retried publication counts each)

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return DVC_FIELD_BEHAVIOUR

    @cached_property
    def _settings(self) -> dict[str, Any]:
        conn = optional_connection(self, self.dvc_conn_id)
        if conn is None:
            return {}
        extra = conn.extra_dejson
        return {
            "git_url": conn.host or None,
            "login": conn.login or None,
            "password": conn.password or None,
            "workspace": extra.get("workspace"),
            "remote_url": extra.get("remote_url"),
            "remote_options": extra.get("remote_options") or {},
            "remote_secret_options": extra.get("remote_secret_options") or {},
            "git_password": extra.get("git_password"),
        }

    @property
    def workspace(self) -> Path:
        """Local folder of the workspace."""
        return Path(self._workspace_override or self._settings.get("workspace") or dvc_workspace_dir())

    @property
    def registry(self) -> str:
        """The data registry's identity (in lineage): its git URL, or ``file://<workspace>`` for a local one."""
        return str(self._settings.get("git_url") or f"file://{self.workspace}")

    @property
    def has_git_remote(self) -> bool:
        """Whether the registry is a git remote that every worker clones (the connection's ``host``)."""
        return bool(self._settings.get("git_url"))

    @property
    def remote_url(self) -> str:
        """URL of the DVC remote (never with credentials: a user and password in the connection's URL are cut)."""
        return split_userinfo(self._configured_remote_url)[0]

    @property
    def _configured_remote_url(self) -> str:
        return str(self._settings.get("remote_url") or dvc_remote_dir())

    # -- process helpers -------------------------------------------------------------------------------

    def _git(self, *args: str, check: bool = True, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, GIT_TERMINAL_PROMPT="0")
        git_password = self._settings.get("git_password")
        if git_password:
            askpass = self.workspace.parent / f".{self.workspace.name}.askpass"
            if not askpass.exists():
                askpass.write_text('#!/bin/sh\nprintf "%s" "$MLOPS_GIT_PASSWORD"\n')
                askpass.chmod(0o700)
            env.update(GIT_ASKPASS=str(askpass), MLOPS_GIT_PASSWORD=str(git_password))
        proc = subprocess.run(
            ["git", *GIT_IDENTITY, *args], cwd=cwd or self.workspace, env=env, capture_output=True, text=True
        )
        if check and proc.returncode != 0:
            raise DvcError(
                f"git {args[0]} failed in data registry {self.workspace} (exit {proc.returncode}): "
                f"{(proc.stderr or proc.stdout).strip()[-800:]}"
            )
        return proc

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive lock on the workspace for the duration of the block (waits for other holders); re-entrant
        within this hook (a read inside a write does not wait for itself)."""
        if self._lock_depth:
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
            return
        self.workspace.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.workspace.parent / f".{self.workspace.name}.lock"
        with open(lock_path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            self._lock_depth = 1
            try:
                yield
            finally:
                self._lock_depth = 0
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _repo(self) -> Any:
        from dvc.repo import Repo

        return Repo(str(self.workspace))

    def _has_origin(self) -> bool:
        return self._git("remote", check=False).stdout.split().count("origin") > 0

    # -- workspace -------------------------------------------------------------------------------------

    def ensure_workspace(self) -> Path:
        """Create (or clone) the workspace and configure its remote; safe to call any number of times."""
        with self.locked():
            self._publish(self._ensure_workspace_unlocked)
        return self.workspace

    def _ensure_fresh(self) -> None:
        """Before a read: with a git remote, the workspace exists and holds the remote's versions (fetched once per
        hook instance; a version another worker published is then visible here)."""
        if self._fresh or not self._settings.get("git_url"):
            return
        self.ensure_workspace()

    def _branch(self) -> str:
        return self._git("symbolic-ref", "--short", "HEAD").stdout.strip() or "main"

    def _sync_unlocked(self) -> None:
        """Make the workspace the remote's state: fetch the branch and the tags (local tags the remote lacks are
        pruned: a version whose push failed never happened) and reset to the remote branch. Nothing of value is
        lost: this workspace only ever holds commits that are pushed, or that are redone after a rejected push."""
        if not self._has_origin():
            return
        self._git("fetch", "--quiet", "--prune", "--prune-tags", "--force", "origin",
                  "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*")  # fmt: skip
        remote_branch = f"refs/remotes/origin/{self._branch()}"
        if self._git("rev-parse", "--verify", "--quiet", remote_branch, check=False).returncode == 0:
            self._git("reset", "--quiet", "--hard", remote_branch)
        self._fresh = True

    def _up_to_date(self) -> bool:
        """Whether the remote branch already is the workspace's HEAD."""
        head = self._git("rev-parse", "--verify", "--quiet", "HEAD", check=False).stdout.strip()
        remote = f"refs/remotes/origin/{self._branch()}"
        return bool(head) and head == self._git("rev-parse", "--verify", "--quiet", remote, check=False).stdout.strip()

    def _before_push(self) -> None:
        """Called between the local commit and the push (a seam for tests that make another worker win)."""

    def _publish(self, work: Callable[[], Any], tags: Callable[[Any], list[str]] = lambda _: []) -> Any:
        """Run ``work`` (local commits and tags) on the remote's latest state and push its result atomically: the
        branch and ``tags(result)`` (``+`` in front: a tag that may move). Retried from the new remote state when
        another worker published first. Without a git remote, ``work`` runs once and nothing is pushed."""
        if not self._settings.get("git_url"):
            self._recover_unlocked()
            return work()
        rejected = ""
        for attempt in range(1, PUSH_ATTEMPTS + 1):
            self._recover_unlocked()
            if (self.workspace / ".git").exists():
                self._sync_unlocked()
            result = work()
            pending_tags = tags(result)
            if not pending_tags and self._up_to_date():
                return result  # nothing new to publish (a reader's fetch, an existing version)
            self._before_push()
            refspecs = [f"HEAD:refs/heads/{self._branch()}"]
            for tag in pending_tags:
                force, name = tag.startswith("+"), tag.lstrip("+")
                refspecs.append(f"{'+' if force else ''}refs/tags/{name}:refs/tags/{name}")
            self.push_attempts += 1
            proc = self._git("push", "--porcelain", "--atomic", "origin", *refspecs, check=False)
            if proc.returncode == 0:
                self._fresh = True
                return result
            output = (proc.stdout + proc.stderr).strip()
            if "[rejected]" not in output and "non-fast-forward" not in output and "already exists" not in output:
                raise DvcError(f"git push to {self._settings.get('git_url')} failed (exit {proc.returncode}): "
                               f"{output[-800:]}")  # fmt: skip
            rejected = output[-400:]
            self.log.info("Another worker published to the data registry first (attempt %d): retrying", attempt)
            time.sleep(random.uniform(0.05, 0.3) * attempt)
        raise DvcError(
            f"data registry {self._settings.get('git_url')}: the push was rejected {PUSH_ATTEMPTS} times, other "
            f"workers kept publishing first; clear the task to try again. Last rejection: {rejected}"
        )

    def _recover_unlocked(self) -> list[str]:
        """Clear what a killed write left behind; call only while holding ``locked()``.

        Under the hook's lock no git process of ours runs on the workspace, so git lock files are stale: they are
        removed. Changes a killed write had staged or made to tracked files (a ``.dvc`` file not committed) are
        reset to the last commit, so they cannot slip into the next commit. Returns what was cleared.
        """
        git_dir = self.workspace / ".git"
        if not git_dir.is_dir():
            return []
        cleared = []
        stale = [git_dir / name for name in _GIT_LOCK_FILES] + list((git_dir / "refs").rglob("*.lock"))
        for path in stale:
            if path.exists():
                path.unlink()
                cleared.append(str(path.relative_to(self.workspace)))
        has_head = self._git("rev-parse", "--verify", "--quiet", "HEAD", check=False).returncode == 0
        if has_head:
            dirty = self._git("status", "--porcelain", "--untracked-files=no").stdout.splitlines()
            if dirty:
                self._git("reset", "--quiet", "--hard", "HEAD")
                cleared.extend(f"uncommitted change {line.strip()}" for line in dirty)
        if cleared:
            self.log.warning(
                "Data registry %s: cleared what an interrupted write left (a killed task): %s",
                self.workspace, "; ".join(cleared),
            )  # fmt: skip
        return cleared

    def _commit(self, message: str, *paths: str) -> bool:
        """Stage and commit exactly ``paths`` (nothing else that may be staged); False when they did not change."""
        self._git("add", "--", *paths)
        if self._git("diff", "--cached", "--quiet", "--", *paths, check=False).returncode == 0:
            return False
        self._git("commit", "--quiet", "-m", message, "--only", "--", *paths)
        return True

    def _ensure_workspace_unlocked(self) -> None:
        """Create, clone and configure the workspace; runs only as (part of) the work of :meth:`_publish`, which
        has already cleared what an interrupted write left."""
        ws = self.workspace
        git_url = self._settings.get("git_url")
        if not (ws / ".git").exists():
            if git_url:
                self.log.info("Cloning data registry into %s", ws)
                ws.parent.mkdir(parents=True, exist_ok=True)
                self._git("clone", "--quiet", str(git_url), str(ws), cwd=ws.parent)
                if self._git("rev-parse", "--verify", "--quiet", "HEAD", check=False).returncode != 0:
                    # An empty registry, or one whose HEAD names another branch: work on main.
                    self._git("symbolic-ref", "HEAD", "refs/heads/main")
                self._sync_unlocked()
            else:
                ws.mkdir(parents=True, exist_ok=True)
                self._git("init", "--quiet", "--initial-branch=main")
        if not (ws / ".dvc").exists():
            from dvc.repo import Repo

            Repo.init(str(ws)).close()
            self._commit("Initialise the DVC data registry", ".dvc", ".dvcignore")
        self._configure_remote()

    def _remote_config(self) -> tuple[dict[str, str], dict[str, str]]:
        """The remote's options split into what is committed (``.dvc/config``) and the secrets (``config.local``)."""
        url, url_login, url_password = split_userinfo(self._configured_remote_url)
        scheme = url.split("://", 1)[0] if "://" in url else ""
        if (url_login or url_password) and scheme not in CREDENTIAL_OPTIONS:
            if url_password:
                raise DvcError(
                    f"connection {self.dvc_conn_id!r}: the remote_url {url!r} carries a password in its user part, "
                    f"which would be committed to the data registry's .dvc/config. Put the credentials of a "
                    f"{scheme}:// remote in the extra remote_secret_options, and remove them from the URL."
                )
            url, url_login = self._configured_remote_url, None  # a user name alone (hdfs://user@host) is no secret
        login = self._settings.get("login") or url_login
        password = self._settings.get("password") or url_password
        public: dict[str, str] = {"url": url}
        secret: dict[str, str] = {}
        for key, value in (self._settings.get("remote_options") or {}).items():
            (secret if str(key) in SECRET_OPTIONS else public)[str(key)] = str(value)
        if login or password:
            if scheme not in CREDENTIAL_OPTIONS:
                raise DvcError(
                    f"connection {self.dvc_conn_id!r} has a login/password, but its remote_url {url!r} is "
                    f"{'a ' + scheme + ':// remote' if scheme else 'a local folder'}: login/password fill the "
                    f"credentials of {', '.join(s + '://' for s in CREDENTIAL_OPTIONS)} remotes. Put other secrets "
                    "in the extra remote_secret_options, or remove them."
                )
            login_key, password_key = CREDENTIAL_OPTIONS[scheme]
            if login:
                secret[login_key] = str(login)
            if password:
                secret[password_key] = str(password)
            if scheme in ("http", "https") and login and password:
                public.setdefault("auth", "basic")  # DVC's HTTP remote ignores user and password without it
        secret.update({str(k): str(v) for k, v in (self._settings.get("remote_secret_options") or {}).items()})
        return public, secret

    def _configure_remote(self) -> None:
        """Make the workspace's remote what the connection says (the connection is the source of truth).

        Options go to the tracked ``.dvc/config``; credentials and secret options only to ``.dvc/config.local``
        (ignored by git). Only ``.dvc/config`` is ever committed by this step."""
        public, secret = self._remote_config()
        if "://" not in public["url"]:
            Path(public["url"]).mkdir(parents=True, exist_ok=True)
        repo = self._repo()
        try:
            with repo.config.edit("repo") as config:
                if config["remote"].get(REMOTE_NAME) != public or config["core"].get("remote") != REMOTE_NAME:
                    config["remote"][REMOTE_NAME] = public
                    config["core"]["remote"] = REMOTE_NAME
                    config["core"]["analytics"] = False
            if secret:
                local_file = self.workspace / ".dvc" / "config.local"
                local_file.touch(mode=0o600)  # DVC rewrites the file in place: it keeps this mode
                local_file.chmod(0o600)  # a file an older version of the hook wrote with the umask's 0644
                with repo.config.edit("local") as local:
                    stored = local["remote"].setdefault(REMOTE_NAME, {})
                    if any(stored.get(k) != v for k, v in secret.items()):
                        stored.update(secret)
        finally:
            repo.close()
        self._commit(f"Configure DVC remote {REMOTE_NAME}", ".dvc/config")

    # -- reading ---------------------------------------------------------------------------------------

    def resolve_rev(self, rev: str) -> str:
        """The commit sha of a tag, branch or sha; a clear error when it does not exist."""
        if not rev or rev.startswith("-") or any(ord(c) < 32 or ord(c) == 127 for c in rev):
            raise RevisionNotFound(f"{rev!r} is not a revision (empty, an option or a control character)")
        self._ensure_fresh()
        if not (self.workspace / ".git").exists():
            raise RevisionNotFound(f"revision {rev!r} does not exist: data registry {self.workspace} has no versions")
        proc = self._git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
        if proc.returncode != 0 and self._settings.get("git_url"):
            with self.locked():  # published by another worker since this hook fetched: fetch again
                self._sync_unlocked()
            proc = self._git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
        if proc.returncode != 0:
            raise RevisionNotFound(f"revision {rev!r} does not exist in data registry {self.workspace}")
        return proc.stdout.strip()

    def rev_kind(self, rev: str) -> str:
        """How ``rev`` names its commit: ``tag``, ``branch`` (local or remote-tracking: it moves), ``commit`` (a hex
        commit id) or ``expression`` (anything else git resolves, e.g. ``HEAD`` or ``<tag>~1``)."""
        self._ensure_fresh()

        def is_ref(name: str) -> bool:  # exactly this ref (rev-parse would also accept refs/heads/main~1)
            return self._git("show-ref", "--verify", "--quiet", name, check=False).returncode == 0

        if is_ref(f"refs/tags/{rev}"):
            return "tag"
        if is_ref(f"refs/heads/{rev}") or is_ref(f"refs/remotes/{rev}"):
            return "branch"
        if COMMIT_ID.fullmatch(rev):
            return "commit"
        return "expression"

    def dvc_file_at(self, path: str, rev: str) -> dict[str, Any] | None:
        """The ``outs`` entry of ``<path>.dvc`` at ``rev``, or None when the file does not exist there."""
        import yaml

        self._ensure_fresh()
        proc = self._git("show", f"{rev}:{path}.dvc", check=False)
        if proc.returncode != 0:
            return None
        outs = (yaml.safe_load(proc.stdout) or {}).get("outs") or []
        return dict(outs[0]) if outs else None

    def describe_commit(self, rev: str) -> dict[str, Any]:
        """A data version for people: ``{rev, date, subject, trailers, tags, files, workspace, remote}``.

        ``files`` lists every ``.dvc`` file the commit changed as ``{path, md5, size}``; ``trailers`` are the
        commit message's ``Key: value`` lines (the Airflow run that made the version).
        """
        sha = self.resolve_rev(rev)
        date, subject, body = self._git("show", "-s", "--format=%cI%n%s%n%b", sha).stdout.split("\n", 2)
        trailers = dict(line.split(": ", 1) for line in body.splitlines() if ": " in line and not line.startswith(" "))
        changed = self._git("diff-tree", "--no-commit-id", "--name-only", "-r", "--root", sha).stdout.split()
        files = []
        for name in changed:
            if name.endswith(".dvc"):
                out = self.dvc_file_at(name[: -len(".dvc")], sha) or {}
                files.append({"path": name[: -len(".dvc")], "md5": out.get("md5"), "size": out.get("size")})
        return {
            "rev": sha,
            "date": date,
            "subject": subject,
            "trailers": trailers,
            "tags": self._git("tag", "--points-at", sha).stdout.split(),
            "files": files,
            "workspace": str(self.workspace),
            "remote": self.remote_url,
        }

    def tag_sha(self, tag: str) -> str | None:
        """The commit ``tag`` points to now, or None. With a git remote it is asked of the remote (``git
        ls-remote``: a version another worker just published is seen, and no workspace is needed, as in the
        triggerer); else read from the workspace. An unreachable remote raises DvcError."""
        url = self._settings.get("git_url")
        if not url:
            if not (self.workspace / ".git").exists():
                return None
            proc = self._git("rev-parse", "--verify", "--quiet", f"refs/tags/{tag}^{{commit}}", check=False)
            return (proc.stdout.strip() or None) if proc.returncode == 0 else None
        self.workspace.parent.mkdir(parents=True, exist_ok=True)  # the askpass helper of a password lives there
        refs = self._git("ls-remote", "--tags", url, f"refs/tags/{tag}", f"refs/tags/{tag}^{{}}",
                         cwd=self.workspace.parent).stdout  # fmt: skip
        found = {ref: sha for sha, ref in (line.split("\t", 1) for line in refs.splitlines() if "\t" in line)}
        return found.get(f"refs/tags/{tag}^{{}}") or found.get(f"refs/tags/{tag}")  # an annotated tag's commit

    def tags(self, pattern: str) -> list[str]:
        """Tags matching a glob pattern, sorted by name."""
        self._ensure_fresh()
        return sorted(self._git("tag", "--list", pattern).stdout.split())

    def read_to(self, path: str, rev: str, target: Path) -> dict[str, Any]:
        """Write the bytes of ``path`` at ``rev`` to ``target`` (atomically); returns ``{path, rev, md5, size}``.

        The object is copied from the workspace's DVC cache when it is there (content-addressed by md5, checked
        after the copy); otherwise DVC reads it (from the remote). A read that does not match the versioned md5
        leaves ``target`` untouched.
        """
        import dvc.api

        sha = self.resolve_rev(rev)
        out = self.dvc_file_at(path, sha)
        if out is None:
            raise DvcError(f"{path} is not versioned at {rev!r} ({sha[:10]}) in data registry {self.workspace}")
        cached = self._cache_object(str(out.get("md5") or ""))
        with atomic_path(target) as tmp:
            if cached is not None:  # no DVC repo opened: ~0.2 s a read (issue 31)
                shutil.copyfile(cached, tmp)
            else:
                with dvc.api.open(path, repo=str(self.workspace), rev=sha, mode="rb") as src, open(tmp, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
            md5 = md5_of_file(tmp)
            if md5 != out["md5"] and cached is not None:
                raise DvcError(
                    f"{path}@{rev}: the local DVC cache object {cached} is corrupt (md5 {md5}, versioned "
                    f"{out['md5']}): delete it and clear the task; the version is read again from the remote"
                )
            if md5 != out["md5"]:
                raise DvcError(f"{path}@{rev}: read md5 {md5} differs from the versioned md5 {out['md5']}")
        return {"path": path, "rev": sha, "md5": md5, "size": target.stat().st_size}

    def _cache_object(self, md5: str) -> Path | None:
        """The workspace's DVC cache object of a file version (DVC 3's ``.dvc/cache/files/md5/<2>/<30>``), or None
        when it is not there (a directory's ``.dir`` entry is left to DVC)."""
        if len(md5) != 32 or not all(c in "0123456789abcdef" for c in md5):
            return None
        candidate = self.workspace / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
        return candidate if candidate.is_file() else None

    def read_frame(self, path: str, rev: str, columns: list[str] | None = None) -> pd.DataFrame:
        """The Parquet file ``path`` at ``rev`` as a DataFrame (md5-checked like ``read_to``; ``columns`` only)."""
        import pandas as pd

        with tempfile.TemporaryDirectory(prefix="dvc-read-") as tmp:
            local = Path(tmp) / Path(path).name
            self.read_to(path, rev, local)
            return pd.read_parquet(local, columns=columns)

    # -- writing ---------------------------------------------------------------------------------------

    def version_file(
        self, source: Path, path: str, tag: str, metadata: dict[str, str], *, immutable_tag: bool = False
    ) -> dict[str, Any]:
        """Version ``source`` as ``path`` (relative to the workspace) and point ``tag`` at that version.

        Order: copy into the workspace, ``dvc add``, ``dvc push`` (the data is on the remote before anything
        refers to it), git commit of the ``.dvc`` file with ``metadata`` as trailers, then the tag. Identical
        content already under ``tag`` is a no-op: no commit, no push, tag unchanged. Changed content makes
        one new commit; earlier versions stay in the history. The tag then moves, unless ``immutable_tag``: a tag
        that others cite (a training set a model was trained on) never moves, and the new version gets the
        first free tag ``<tag>.r2``, ``<tag>.r3``, ... (which sort after ``tag`` and before the next day's tag).

        Returns ``{path, rev, tag, md5, size, remote, created}`` (``tag``: the tag that names this version).
        """
        source = Path(source)
        if not source.is_file():
            raise DvcError(f"file to version {source} does not exist")
        if Path(path).is_absolute() or ".." in Path(path).parts:
            raise DvcError(f"path in the data registry must be relative and inside it, got {path!r}")
        md5 = md5_of_file(source)
        with self.locked():
            return self._publish(
                lambda: self._version_unlocked(source, path, tag, md5, metadata, immutable_tag),
                tags=lambda result: [] if not result["created"] else [("" if immutable_tag else "+") + result["tag"]],
            )

    def _version_unlocked(
        self, source: Path, path: str, tag: str, md5: str, metadata: dict[str, str], immutable_tag: bool
    ) -> dict[str, Any]:
        """One attempt of :meth:`version_file` on the workspace's current state (commit and tag, not pushed)."""
        self._ensure_workspace_unlocked()
        existing_tag = self._tag_with_content(tag, path, md5, revisions=immutable_tag)
        if existing_tag is not None:
            rev = self.resolve_rev(existing_tag)
            self.log.info("%s is already versioned with md5 %s at %s (%s): nothing to do", path, md5, existing_tag, rev)
            return self._describe(path, rev, existing_tag, md5, source.stat().st_size, created=False)
        if immutable_tag and self._tag_exists(tag):
            first, tag = tag, self._free_revision_tag(tag)
            self.log.warning("Tag %s names other content and never moves: this version is tagged %s", first, tag)

        target = self.workspace / path
        with atomic_path(target) as tmp:
            shutil.copyfile(source, tmp)
        repo = self._repo()
        try:
            repo.add(str(target))  # collects every stage of the registry once (DVC's overlap check)
            # the new .dvc file as the target: DVC reads that file alone (the data path would collect every stage
            # of the registry again: ~3 ms a versioned file, a year of daily partitions ~1 s a version)
            pushed = repo.push(targets=[f"{target}.dvc"])
        except Exception as exc:
            raise DvcError(f"dvc add/push of {path} in {self.workspace} to {self.remote_url} failed: {exc}") from exc
        finally:
            repo.close()
        self.log.info("Pushed %s file(s) of %s to the DVC remote", pushed, path)
        trailers = "\n".join(f"{key}: {value}" for key, value in metadata.items())
        message = f"Version {path} ({md5[:10]})\n\nData-Md5: {md5}\nData-Tag: {tag}\n{trailers}\n"
        self._commit(message, f"{path}.dvc", str(Path(path).parent / ".gitignore"))
        # The commit that versioned these bytes: HEAD, or (same content as the workspace's current version,
        # so nothing was committed) the last commit that changed the .dvc file, never an unrelated later one.
        rev = self.last_version_commit(path)
        self._git("tag", *(() if immutable_tag else ("--force",)), tag, rev)
        return self._describe(path, rev, tag, md5, source.stat().st_size, created=True)

    def last_version_commit(self, path: str, rev: str = "HEAD") -> str:
        """The newest commit up to ``rev`` that changed ``<path>.dvc`` (versioned that file)."""
        sha = self._git("log", "-1", "--format=%H", rev, "--", f"{path}.dvc").stdout.strip()
        if not sha:
            raise DvcError(f"{path} was never versioned in data registry {self.workspace}")
        return sha

    def versions_file(self, rev: str, path: str) -> bool:
        """Whether commit ``rev`` itself versioned ``path`` (changed its ``.dvc`` file)."""
        sha = self.resolve_rev(rev)
        changed = self._git("diff-tree", "--no-commit-id", "--name-only", "-r", "--root", sha, "--", f"{path}.dvc")
        return bool(changed.stdout.strip())

    def _tag_exists(self, tag: str) -> bool:
        return self._git("rev-parse", "--verify", "--quiet", f"refs/tags/{tag}", check=False).returncode == 0

    def _free_revision_tag(self, tag: str) -> str:
        number = 2
        while self._tag_exists(f"{tag}.r{number}"):
            number += 1
        return f"{tag}.r{number}"

    def revision_tags(self, tag: str) -> list[str]:
        """``tag`` and its rebuilt revisions ``<tag>.r2``, ``<tag>.r3``... that exist, oldest first."""
        found = [t for t in self.tags(f"{tag}.r*") if t.rsplit(".r", 1)[1].isdigit()]
        found = [tag, *found] if self._tag_exists(tag) else found
        return sorted(found, key=lambda t: 1 if t == tag else int(t.rsplit(".r", 1)[1]))

    def _tag_with_content(self, tag: str, path: str, md5: str, *, revisions: bool) -> str | None:
        """The tag (or, with ``revisions``, the newest of its revisions) that already versions ``path`` with ``md5``."""
        candidates = self.revision_tags(tag) if revisions else [tag]
        for name in reversed(candidates):
            found = self._tagged_version(name, path)
            if found is not None and found[1] == md5:
                return name
        return None

    def _tagged_version(self, tag: str, path: str) -> tuple[str, str] | None:
        proc = self._git("rev-parse", "--verify", "--quiet", f"refs/tags/{tag}^{{commit}}", check=False)
        if proc.returncode != 0:
            return None
        rev = proc.stdout.strip()
        out = self.dvc_file_at(path, rev)
        return (rev, str(out["md5"])) if out else None

    def _describe(self, path: str, rev: str, tag: str, md5: str, size: int, *, created: bool) -> dict[str, Any]:
        return {
            "path": path,
            "rev": rev,
            "tag": tag,
            "md5": md5,
            "size": size,
            "remote": self.remote_url,
            "workspace": str(self.workspace),
            "created": created,
        }

    def test_connection(self) -> tuple[bool, str]:
        """Create or open the workspace and check that the remote answers."""
        try:
            self.ensure_workspace()
            repo = self._repo()
            try:
                repo.status(cloud=True)
            finally:
                repo.close()
        except Exception as exc:
            return False, f"{type(exc).__name__}: {exc}"
        return True, f"Data registry {self.workspace} with remote {self.remote_url} is usable"
