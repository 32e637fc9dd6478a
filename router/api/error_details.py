"""RouterErrors as google.rpc.Status (ErrorInfo, RetryInfo, BadRequest): the one mapping from the error
tree (router/errors.py) to the details clients read from `grpc-status-details-bin`."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from router.errors import RouterError, shown

DOMAIN = "roadwork.v1"  # google.rpc.ErrorInfo.domain of every error the router sends
RETRY_AFTER_KEY = "retry-after-ms"  # the old retry hint, kept next to RetryInfo for one release (until 0.3)
# gRPC clients refuse trailers over 8 KiB by default (16 KiB for sure): the message goes twice in the
# Status (and percent-encoded as grpc-message), so it is cut to this many UTF-8 bytes, and a metadata
# value (it may echo a client's id) to MAX_METADATA_CHARS characters.
MAX_MESSAGE_BYTES = 1024
MAX_METADATA_CHARS = 128
Metadata = tuple[tuple[str, str | bytes], ...]


def _message(text: str) -> str:
    data = text.encode()
    if len(data) <= MAX_MESSAGE_BYTES:
        return text
    return data[: MAX_MESSAGE_BYTES - 3].decode(errors="ignore") + "…"


def status_pb(err: RouterError, request_id: str = "") -> status_pb2.Status:
    """The error as a Status: ErrorInfo always, RetryInfo for a retry hint, BadRequest for an invalid field."""
    status = status_pb2.Status(code=err.code.value[0], message=_message(err.message))
    metadata = {key: shown(value, MAX_METADATA_CHARS) for key, value in err.metadata.items() if value}
    if request_id:
        metadata["request_id"] = request_id
    invalid_field = err.field if err.code is grpc.StatusCode.INVALID_ARGUMENT else ""
    if err.field and not invalid_field:
        metadata["field"] = err.field
    status.details.add().Pack(error_details_pb2.ErrorInfo(reason=err.reason, domain=DOMAIN, metadata=metadata))
    if err.retry_after_s is not None:
        retry = error_details_pb2.RetryInfo()
        retry.retry_delay.FromMilliseconds(round(err.retry_after_s * 1000))
        status.details.add().Pack(retry)
    if invalid_field:
        violation = error_details_pb2.BadRequest.FieldViolation(
            field=invalid_field, description=status.message, reason=err.reason
        )
        status.details.add().Pack(error_details_pb2.BadRequest(field_violations=[violation]))
    return status


def trailers(err: RouterError, request_id: str = "") -> tuple[grpc.StatusCode, str, Metadata]:
    """(code, message, trailing metadata) to end a call with: the Status, and the old `retry-after-ms`."""
    status = rpc_status.to_status(status_pb(err, request_id))
    extra = ((RETRY_AFTER_KEY, str(int(err.retry_after_s * 1000))),) if err.retry_after_s is not None else ()
    return status.code, status.details, (*status.trailing_metadata, *extra)


def item_status_pb(code_name: str, message: str, reason: str) -> status_pb2.Status:
    """A bulk item's stored error as a Status (with no ErrorInfo for one stored before reasons existed)."""
    code = grpc.StatusCode.__members__.get(code_name, grpc.StatusCode.UNKNOWN)
    status = status_pb2.Status(code=code.value[0], message=message)
    if reason:
        status.details.add().Pack(error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN))
    return status
