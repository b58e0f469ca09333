"""API-wide behaviour: every error answers JSON with a reason, never an HTML 500 page."""

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from django.http import Http404
from drf_spectacular.utils import inline_serializer
from rest_framework import exceptions, permissions, serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from shop.errors import ShopError
from shop.outage import RETRY_AFTER_SECONDS, UNAVAILABLE_BODY, database_unavailable

logger = logging.getLogger("shop.api")


def exception_handler(exc, context):
    if database_unavailable(exc):
        # Logged by Django at ERROR as any 5xx ("Service Unavailable: <path>"), no traceback.
        return Response(
            UNAVAILABLE_BODY,
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    if isinstance(exc, DataError):
        # The database refused a value the validation let through (e.g. a NUL character in
        # a lookup on PostgreSQL): still the client's input, so a 400, but worth a warning.
        logger.warning("Database refused request data: %s", exc)
        exc = exceptions.ValidationError({"detail": "A value in the request is not acceptable."})
    if isinstance(exc, ShopError):
        return Response(
            {"detail": exc.message, "code": exc.code}, status=exc.status_code, headers=exc.headers
        )
    if isinstance(exc, Http404):  # as DRF's handler does, but here, so the code is known
        exc = exceptions.NotFound(*exc.args)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if response.status_code == status.HTTP_400_BAD_REQUEST and not isinstance(response.data, dict):
        response = Response({"detail": response.data}, status=response.status_code)
    if (
        isinstance(exc, exceptions.APIException)
        and set(response.data) == {"detail"}
        and isinstance(exc.get_codes(), str)
    ):
        # One error shape for the whole API: {"detail", "code"}, as ShopError answers.
        response.data["code"] = exc.get_codes()
    return response


class SafeJSONParser(JSONParser):
    """DRF's JSON parser, but absurdly deep nesting is a 400, not a RecursionError (500)."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - nested too deeply.") from None


class SafeJSONRenderer(JSONRenderer):
    """Renders UTF-8 JSON; text that cannot be UTF-8 (a lone surrogate echoed back in a
    validation message) is escaped instead of failing the response with a 500."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        try:
            return super().render(data, accepted_media_type, renderer_context)
        except UnicodeEncodeError:
            self.ensure_ascii = True
            return super().render(data, accepted_media_type, renderer_context)


class ShopPagination(LimitOffsetPagination):
    """Limit/offset paging with both bounded, so a huge offset cannot overflow the database."""

    default_limit = 50
    max_limit = 200
    max_offset = 1_000_000_000

    def get_offset(self, request) -> int:
        return min(super().get_offset(request), self.max_offset)


class IsStaffOrReadOnly(permissions.BasePermission):
    """Anyone may read; only staff may write (catalog management)."""

    def has_permission(self, request, view) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return True
        return bool(request.user and request.user.is_authenticated and request.user.is_staff)


# The error body every 4xx answer shares; referenced by the views' schema annotations.
ErrorSerializer = inline_serializer(
    name="Error",
    fields={
        "detail": serializers.CharField(required=False),
        "code": serializers.CharField(required=False),
    },
)


def error_responses(*codes: int) -> dict:
    return {code: ErrorSerializer for code in codes}
