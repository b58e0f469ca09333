"""The OpenAPI schema documents every answer an operation can give, errors included.

Views document what their own code answers (`shop.api.error_responses`); the answers the
machinery around them gives to any operation are added here, each with the JSON `Error` body:

- 401 (with the Authorization challenge) wherever a token or session is read: a bad token is
  refused even on a public read;
- 403 where a permission can refuse an authenticated caller, or CSRF a session's write;
- 400 and 415 for a request body that is malformed or of another media type;
- 404 for a path with an id;
- 500 and 503 everywhere: 503 with Retry-After while the database is unreachable
  (shop.outage, shop.middleware).
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from rest_framework import permissions

from shop.api import ErrorSerializer, IsStaffOrReadOnly

# Permissions that never refuse a read, or refuse only the anonymous (a 401, not a 403).
_NEVER_FORBID_READS = (
    permissions.AllowAny,
    permissions.IsAuthenticated,
    permissions.IsAuthenticatedOrReadOnly,
    IsStaffOrReadOnly,
)
_DESCRIPTIONS = {
    "400": "The request is malformed or a value is not acceptable.",
    "401": "No credentials, or invalid ones.",
    "403": "The caller may not do this.",
    "404": "No such object.",
    "415": "The request body is not of a supported media type.",
    "500": "An unexpected error; it is logged with the request id.",
    "503": "The database is unreachable, or the shop is in maintenance (`code: maintenance`); "
    "retry after the given seconds.",
}
RETRY_AFTER_HEADER = {
    "Retry-After": {
        "schema": {"type": "integer", "minimum": 0},
        "description": "Seconds to wait before retrying.",
        "required": True,
    }
}


class ShopAutoSchema(AutoSchema):
    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        responses = operation["responses"]
        for code in self._error_codes(operation):
            if code not in responses:
                responses[code] = self._get_response_for_code(ErrorSerializer, code)
                responses[code]["description"] = _DESCRIPTIONS[code]
        responses["503"].setdefault("headers", {}).update(RETRY_AFTER_HEADER)
        return operation

    def _error_codes(self, operation: dict) -> list[str]:
        codes = []
        if operation.get("requestBody"):
            codes += ["400", "415"]
        if self.view.get_authenticators():
            codes.append("401")
            if self.method not in permissions.SAFE_METHODS or not all(
                isinstance(p, _NEVER_FORBID_READS) for p in self.view.get_permissions()
            ):
                codes.append("403")
        if "{" in self.path:
            codes.append("404")
        return [*codes, "500", "503"]


class MonitoringTokenScheme(OpenApiAuthenticationExtension):
    """`Authorization: Bearer <MONITORING_TOKEN>` (monitoring.auth) as a security scheme."""

    target_class = "monitoring.auth.MonitoringTokenAuthentication"
    name = "monitoringToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer"}
