"""prefect.yaml build steps: the image's build arguments, and a clear stop when no Docker engine answers.

``image_build_args`` gives the Dockerfile's ``BASE_IMAGE``: ``INSIGHTFLOW_BASE_IMAGE`` when set (a mirror
of Prefect's image, or a stand-in where Docker Hub is out of reach, see docs/deploy.md), else the
Dockerfile's own default, read from the Dockerfile so the two cannot disagree. A plain ``{{ $VAR }}``
in prefect.yaml would turn an unset variable into an empty string and a warning on every deploy.


The image build (prefect-docker's ``build_docker_image``) needs a Docker engine. Without one, docker-py
fails deep inside the step and ``prefect deploy`` prints a long traceback that never says what to do.
This step runs just before the build: it asks the engine Prefect would use (``DOCKER_HOST`` or the local
socket) to answer a ping and, when none does, ends the command with a one-line message that names the
engine, the cause and the way to run the deployments without Docker (``python -m flows.serve``).

It ends with ``SystemExit``: ``prefect deploy`` prints any other exception from a step with its traceback,
and passes ``SystemExit`` through, so its message is the last line the user sees (exit status 1).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

DEFAULT_ENGINE = "unix:///var/run/docker.sock"
NO_ENGINE = (
    "prefect deploy builds the deployment image and needs a Docker engine, but none answers at {engine} "
    "({cause}). Start Docker or set DOCKER_HOST; to run both deployments locally without Docker, use "
    "`python -m flows.serve --sample` (docs/deploy.md, section 7)."
)


def image_build_args(dockerfile: str = "Dockerfile") -> dict[str, str]:
    """``base_image`` and ``extra_ca_certs`` for the build step's ``buildargs``.

    ``extra_ca_certs`` is the PEM text of ``INSIGHTFLOW_BUILD_EXTRA_CA`` (a file, e.g. a proxy's CA, or
    a directory of ``*.crt`` such as ``/usr/local/share/ca-certificates``), for builds behind a
    TLS-intercepting proxy through the Docker API, which cannot mount the host's CA store. Only the
    Dockerfile's discarded dependency stage sees it; empty when unset.
    """
    override = os.environ.get("INSIGHTFLOW_BASE_IMAGE", "").strip()
    if override:
        base = override
    else:
        match = re.search(r"^ARG BASE_IMAGE=(\S+)", Path(dockerfile).read_text(), re.M)
        if not match:
            raise SystemExit(f"{dockerfile} declares no default for ARG BASE_IMAGE; set INSIGHTFLOW_BASE_IMAGE")
        base = match.group(1)
    return {"base_image": base, "extra_ca_certs": _extra_ca_certs(os.environ.get("INSIGHTFLOW_BUILD_EXTRA_CA", ""))}


def _extra_ca_certs(location: str) -> str:
    if not location.strip():
        return ""
    path = Path(location.strip())
    files = sorted(path.glob("*.crt")) if path.is_dir() else [path]
    if not files:  # a directory of local CAs with none in it: nothing to add
        return ""
    try:
        pem = "".join(f.read_text() for f in files)
    except OSError as exc:
        raise SystemExit(f"INSIGHTFLOW_BUILD_EXTRA_CA={location}: cannot read it ({exc})") from None
    if "-----BEGIN CERTIFICATE-----" not in pem:
        raise SystemExit(f"INSIGHTFLOW_BUILD_EXTRA_CA={location}: no PEM certificate there")
    return pem


def _cause(exc: BaseException) -> str:
    """The innermost exception of a docker-py error, in a few words (docker-py nests the useful part)."""
    while exc.__context__ is not None and exc.__context__ is not exc:
        exc = exc.__context__
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:160] if text else type(exc).__name__


def check_docker_engine(timeout: int = 10) -> dict[str, str]:
    """Ping the Docker engine from the environment; exit with one clear line when none answers."""
    import docker
    from docker.errors import DockerException

    engine = os.environ.get("DOCKER_HOST") or DEFAULT_ENGINE
    try:
        client = docker.from_env(timeout=timeout)
        try:
            client.ping()
        finally:
            client.close()
    except (DockerException, OSError) as exc:  # OSError covers requests' errors from ping()
        raise SystemExit(NO_ENGINE.format(engine=engine, cause=_cause(exc))) from None
    return {"docker_engine": engine}
