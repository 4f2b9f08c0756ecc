"""One loopback endpoint for the whole AWS path: Athena answered here, every other service by moto.

An AWS SDK pointed at ``AWS_ENDPOINT_URL`` sends every service to the same host, so the split is by
request: a JSON-protocol call whose ``X-Amz-Target`` starts with ``AmazonAthena.`` goes to api.Athena,
anything else (S3, Glue, STS, IAM, ECS, moto's own ``/moto-api``) to moto's WSGI application, in this
process. ``/moto-api/reset`` also clears Athena's query history and work groups.
"""

from __future__ import annotations

import json
import logging
import threading

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from standins.aws.api import ApiError, Athena
from standins.aws.caller import NotAuthorized, authorize, caller_of


class AthenaDispatcher:
    """WSGI app: Athena's actions to ``api.Athena``, the rest to moto."""

    def __init__(self, moto_app, athena: Athena) -> None:
        self.moto_app = moto_app
        self.athena = athena

    def __call__(self, environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target.startswith("AmazonAthena."):
            return self._athena(Request(environ), target.split(".", 1)[1])(environ, start_response)
        if environ.get("PATH_INFO", "").startswith("/moto-api/reset"):
            self.athena.reset()
        return self.moto_app(environ, start_response)

    def _athena(self, request: Request, action: str) -> Response:
        caller = caller_of(request.headers.get("Authorization", ""))
        try:
            body = json.loads(request.get_data() or b"{}")
            authorize(
                request.method,
                request.path,
                request.get_data(),
                dict(request.headers),
                action,
                self.athena.work_group_of(body),
                caller.region,
            )
            payload, status = self.athena.handle(action, body, caller), 200
        except NotAuthorized as exc:
            payload, status = {"__type": exc.code, "Message": exc.message}, 400
        except ApiError as exc:
            payload, status = {"__type": exc.code, "Message": exc.message}, 400
        except KeyError as exc:
            payload, status = {"__type": "InvalidRequestException", "Message": f"missing parameter {exc}"}, 400
        response = Response(json.dumps(payload, default=str), status=status, content_type="application/x-amz-json-1.1")
        if status != 200:
            response.headers["x-amzn-ErrorType"] = payload["__type"]
        return response


class AwsStandIn:
    """The stand-in as a server in this process (tests); ``python -m standins.aws`` runs one on its own."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host, self.port = host, port
        self.athena: Athena | None = None
        self._server = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> AwsStandIn:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        moto_app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(self.host, self.port, None, threaded=True, request_handler=MotoRequestHandler)
        self.port = self._server.server_address[1]
        self.athena = Athena(self.url)
        self._server.app = AthenaDispatcher(moto_app, self.athena)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="aws-standin")
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
