"""Errors the shop's services raise. The API's exception handler turns them into 4xx answers.

ShopError            400, the base: a request the shop refuses, with a reason
├── InvalidRequest   400, e.g. an unknown product id or payment provider
├── PermissionDenied 403, e.g. paying someone else's order
├── NotFound         404
└── Conflict         409, e.g. not enough stock, an invalid status transition
"""


class ShopError(Exception):
    status_code = 400
    default_code = "invalid"
    headers: dict[str, str] = {}

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code


class InvalidRequest(ShopError):
    pass


class PermissionDenied(ShopError):
    status_code = 403
    default_code = "permission_denied"


class NotFound(ShopError):
    status_code = 404
    default_code = "not_found"


class Conflict(ShopError):
    status_code = 409
    default_code = "conflict"
