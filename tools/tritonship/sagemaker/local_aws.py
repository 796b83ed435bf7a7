"""A local AWS stand-in (moto) behind ``AWS_ENDPOINT_URL``: what it lacks, in one line.

Pointing ``AWS_ENDPOINT_URL`` at a moto server runs the real promote code without AWS
(docs/deploying.md). moto answers a call it does not implement with Werkzeug's HTML "500
Internal Server Error" page, which botocore reports as error code ``500`` with that page as
its message: indistinguishable from a real failure. :func:`explain` turns such an answer,
from a loopback endpoint, into one line that names the call the stand-in lacks.

This module is the one place that knows what moto lacks (moto 5.x, checked with 5.2.6):

- ``UpdateEndpoint`` and Service Quotas' ``ListServiceQuotas`` /
  ``ListAWSDefaultServiceQuotas``: ``moto/core/responses.py`` ``call_action`` raises
  ``NotImplementedError("The update_endpoint action has not been implemented")``, which
  the server turns into the HTML 500 page;
- ``InvokeEndpoint`` runs no model: ``moto/sagemakerruntime/models.py`` ``invoke_endpoint``
  answers a canned placeholder (body ``"body"``, Content-Type ``"content_type"``) unless a
  result was queued through ``/moto-api/static/sagemaker/endpoint-results``, and a binary
  body fails before that (``moto/core/responses.py`` decodes every body as UTF-8:
  ``UnicodeDecodeError``, the same HTML 500).
"""

from __future__ import annotations

from tritonship.sagemaker import settings

#: Where the recipe and the list of what the stand-in lacks live.
DOCS = "docs/deploying.md"
#: What moto's InvokeEndpoint answers when no result was queued: (body, Content-Type).
MOTO_PLACEHOLDER = (b"body", "content_type")
#: Calls moto lacks, with the service whose endpoint variable applies (botocore's id).
MISSING = {
    "UpdateEndpoint": ("sagemaker", "moto does not implement UpdateEndpoint"),
    "ListServiceQuotas": ("service-quotas", "moto does not implement ListServiceQuotas"),
    "ListAWSDefaultServiceQuotas": (
        "service-quotas",
        "moto does not implement ListAWSDefaultServiceQuotas",
    ),
    "InvokeEndpoint": (
        "sagemaker-runtime",
        "moto's InvokeEndpoint runs no model (a binary body fails with a 500 page, JSON gets a "
        "canned placeholder)",
    ),
}
#: Error codes a server gives for a call it does not have.
_NOT_IMPLEMENTED_CODES = frozenset({"NotImplemented", "NotImplementedException"})


def local_endpoint(service: str) -> str | None:
    """The loopback URL ``service`` is sent to (a local stand-in), else None."""
    url = settings.aws_endpoint_url(service)
    return url if url and settings.is_loopback_url(url) else None


def explain(err: BaseException) -> str | None:
    """One line for a call a local stand-in cannot answer, else None (a real failure).

    ``err`` is a botocore ``ClientError``: its ``operation_name`` says which call failed.
    """
    operation = getattr(err, "operation_name", None) or ""
    service, lacks = MISSING.get(operation, (None, None))
    url = local_endpoint(service) if service else _any_local_endpoint()
    if url is None or not _unimplemented(err):
        return None
    what = lacks or f"the local AWS stand-in does not answer {operation or 'this call'}"
    return f"{what}: {url} is a local stand-in, not AWS; see {DOCS}"


def placeholder_line(endpoint_url: str) -> str:
    """The line for moto's canned InvokeEndpoint answer (no model behind it)."""
    return (
        f"{endpoint_url} answered moto's canned placeholder, not a model's output: "
        f"{MISSING['InvokeEndpoint'][1]}; see {DOCS}"
    )


def is_placeholder(body: bytes, content_type: str | None) -> bool:
    """Whether an InvokeEndpoint answer is moto's canned placeholder."""
    return (body, content_type) == MOTO_PLACEHOLDER


def _any_local_endpoint() -> str | None:
    """``AWS_ENDPOINT_URL`` when it points at this machine."""
    return local_endpoint("")


def _unimplemented(err: BaseException) -> bool:
    """Whether the answer is an HTML 500 page or a NotImplemented code (no AWS error)."""
    response = getattr(err, "response", None) or {}
    error = response.get("Error", {})
    code = str(error.get("Code", ""))
    message = str(error.get("Message", "")).lstrip().lower()
    html = message.startswith(("<!doctype html", "<html"))
    return code in _NOT_IMPLEMENTED_CODES or (code == "500" and (html or not message))
