"""Starting workflows: one class that creates a flow run of a Prefect deployment.

Commands call ``WorkflowLauncher.launch`` inside their database transaction and do not
wait for the run: the run is created SCHEDULED and a worker picks it up. Every launch
carries an idempotency key, so a command retried after a crash (run created, commit
lost) gets the same run back from Prefect instead of a second one. If Prefect cannot be
reached, or the deployment does not exist, ``launch`` raises
``WorkflowEngineUnavailable`` and the command's transaction rolls back.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio.from_thread
from pydantic import BaseModel

from blocks.platform.workflows import REQUEST_MODELS, deployment_path, flow_parameters
from core.errors import UpstreamRejected, WorkflowEngineUnavailable, shorten
from core.telemetry import traceparent as current_traceparent

if TYPE_CHECKING:
    from prefect.client.orchestration import PrefectClient

DEFAULT_TIMEOUT_SECONDS = 10.0
# The flow-run label Prefect's engine reads a parent trace context from.
TRACEPARENT_LABEL = "__OTEL_TRACEPARENT"


@dataclass(frozen=True)
class LaunchedRun:
    flow_run_id: str
    ui_url: str | None


def _ui_base(api_url: str | None, ui_url: str | None) -> str | None:
    if ui_url:
        return ui_url.rstrip("/")
    if api_url:
        return api_url.rstrip("/").removesuffix("/api")
    return None


class WorkflowLauncher:
    """Creates flow runs of ``<Workflow>/idp`` deployments through Prefect's async client.

    Without ``api_url``, Prefect's settings (``PREFECT_API_URL``, ``PREFECT_UI_URL``) are
    read when the launcher is built. Without a UI URL, links use the API URL minus ``/api``.
    """

    def __init__(
        self,
        *,
        api_url: str | None = None,
        ui_url: str | None = None,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        if api_url is None:
            from prefect.settings import get_current_settings

            current = get_current_settings()
            api_url = current.api.url
            ui_url = ui_url or current.ui_url  # PREFECT_UI_URL, else derived from the API's
        self.api_url = api_url
        self.ui_base_url = _ui_base(api_url, ui_url)
        self.timeout_seconds = timeout_seconds
        self._tls: ssl.SSLContext | None = None

    def flow_run_url(self, flow_run_id: str | None) -> str | None:
        """The Prefect UI page of a run (None when there is no run or no UI)."""
        if not flow_run_id or not self.ui_base_url:
            return None
        return f"{self.ui_base_url}/runs/flow-run/{flow_run_id}"

    async def launch(
        self,
        workflow: str,
        request: BaseModel,
        *,
        idempotency_key: str,
        traceparent: str | None = None,
    ) -> LaunchedRun:
        """Create a run of ``workflow`` with ``request`` as its one parameter; do not wait.

        The run carries the W3C ``traceparent`` of the command's span (given, or the
        current one) in Prefect's ``__OTEL_TRACEPARENT`` label: the flow-run process opens
        its flow span as a child of it, so the command and the workflow are one trace.
        """
        expected = REQUEST_MODELS.get(workflow)
        if expected is None or not isinstance(request, expected):
            raise TypeError(f"{workflow} takes a {expected}, not {type(request).__name__}")
        parent = traceparent or current_traceparent()
        flow_run_id = await self._create_flow_run(
            deployment_path(workflow),
            flow_parameters(request),
            idempotency_key,
            {TRACEPARENT_LABEL: parent} if parent else {},
        )
        return LaunchedRun(flow_run_id, self.flow_run_url(flow_run_id))

    def _client(self) -> PrefectClient:
        """Prefect's async client (what ``get_client()`` builds) on *this* launcher's URL.

        ``get_client()`` reads the URL from ambient settings; pinning them per call costs a
        settings rebuild (~0.25 s), so the client is built the same way, directly.
        """
        import httpx
        from prefect.client.orchestration import PrefectClient
        from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_KEY

        assert self.api_url
        tls = self._tls_context()
        # One quick reconnect, not Prefect's default three with backoff: the command holds
        # its database transaction meanwhile, and its caller may retry a 503 itself.
        transport = httpx.AsyncHTTPTransport(retries=1, verify=tls)
        return PrefectClient(
            self.api_url,
            api_key=PREFECT_API_KEY.value(),
            auth_string=PREFECT_API_AUTH_STRING.value(),
            httpx_settings={"timeout": self.timeout_seconds, "transport": transport, "verify": tls},
        )

    def _tls_context(self) -> ssl.SSLContext:
        """Prefect's TLS settings, loaded once (a CA bundle costs ~60 ms per client)."""
        if self._tls is None:
            import certifi
            from prefect.settings import (
                PREFECT_API_SSL_CERT_FILE,
                PREFECT_API_TLS_INSECURE_SKIP_VERIFY,
            )

            if PREFECT_API_TLS_INSECURE_SKIP_VERIFY.value():
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            else:
                cafile = PREFECT_API_SSL_CERT_FILE.value() or certifi.where()
                context = ssl.create_default_context(cafile=cafile)
            self._tls = context
        return self._tls

    async def _create_flow_run(
        self,
        deployment: str,
        parameters: dict[str, Any],
        idempotency_key: str,
        labels: dict[str, str],
    ) -> str:
        import httpx
        from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError

        if not self.api_url:
            # get_client() would start a throw-away ephemeral server here: refuse instead.
            raise WorkflowEngineUnavailable("PREFECT_API_URL is not set")
        details = {"deployment": deployment}
        try:
            async with self._client() as client:
                found = await client.read_deployment_by_name(deployment)
                run = await client.create_flow_run_from_deployment(
                    found.id,
                    parameters=parameters,
                    idempotency_key=idempotency_key,
                    labels=dict(labels) or None,
                )
        except ObjectNotFound as exc:
            raise WorkflowEngineUnavailable(
                f"deployment {deployment} does not exist", details=details
            ) from exc
        except PrefectHTTPStatusError as exc:
            status = exc.response.status_code
            if status >= 500 or status in (408, 429):
                raise WorkflowEngineUnavailable(
                    f"Prefect answered {status}", details=details, upstream_status=status
                ) from exc
            # 409/422: the parameters do not match the deployment's schema (a contract bug).
            raise UpstreamRejected(
                f"Prefect refused the run ({status})", details=details, upstream_status=status
            ) from exc
        except (httpx.HTTPError, OSError) as exc:
            raise WorkflowEngineUnavailable(
                shorten(f"Prefect API unreachable: {type(exc).__name__}"), details=details
            ) from exc
        return str(run.id)


def launch_from_thread(
    launcher: WorkflowLauncher, workflow: str, request: BaseModel, *, idempotency_key: str
) -> LaunchedRun:
    """Run ``launcher.launch`` from a sync endpoint (an AnyIO worker thread of the app).

    The request's span is current in this thread, not in the event loop's: its
    ``traceparent`` is taken here.
    """
    call = partial(
        launcher.launch,
        workflow,
        request,
        idempotency_key=idempotency_key,
        traceparent=current_traceparent(),
    )
    return anyio.from_thread.run(call)
