"""Security API (staff, or the monitoring token for reading):

- GET /api/security/events/?type=&ip=&since=  the stored events, newest first (paginated);
- GET /api/security/blocks/                    addresses blocked now;
- DELETE /api/security/blocks/<ip>/            lift a block (staff only; recorded).
"""

from __future__ import annotations

import ipaddress

from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from monitoring.auth import MONITORING_AUTHENTICATION, IsMonitoringReader
from security import blocks
from security.events import TYPES
from security.models import BlockedIp, SecurityEvent
from shop.api import error_responses


class EventSerializer(serializers.ModelSerializer):
    class Meta:
        model = SecurityEvent
        fields = ["id", "at", "type", "severity", "ip", "username", "actor", "detail"]


class BlockSerializer(serializers.ModelSerializer):
    class Meta:
        model = BlockedIp
        fields = ["ip", "blocked_at", "until", "reason"]


class EventList(ListAPIView):
    authentication_classes = MONITORING_AUTHENTICATION
    permission_classes = (IsMonitoringReader,)
    serializer_class = EventSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("type", str, enum=list(TYPES), description="Only this type"),
            OpenApiParameter("ip", str, description="Only events of this client address"),
            OpenApiParameter("since", str, description="ISO 8601: only events from then on"),
        ],
        responses={200: EventSerializer(many=True), **error_responses(400, 401, 403)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        query = SecurityEvent.objects.all()
        params = self.request.query_params
        if "type" in params:
            if params["type"] not in TYPES:
                raise ValidationError({"type": f"unknown type; one of {', '.join(TYPES)}"})
            query = query.filter(type=params["type"])
        if "ip" in params:
            query = query.filter(ip=_address(params["ip"]))
        if "since" in params:
            since = parse_datetime(params["since"])
            if since is None:
                raise ValidationError({"since": "expected an ISO 8601 date and time"})
            query = query.filter(at__gte=since)
        return query


class BlockList(ListAPIView):
    authentication_classes = MONITORING_AUTHENTICATION
    permission_classes = (IsMonitoringReader,)
    serializer_class = BlockSerializer
    pagination_class = None

    @extend_schema(responses={200: BlockSerializer(many=True), **error_responses(401, 403)})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        return blocks.active()


class BlockDetail(APIView):
    permission_classes = (permissions.IsAdminUser,)

    @extend_schema(request=None, responses={204: None, **error_responses(400, 401, 403, 404)})
    def delete(self, request, ip: str):
        if not blocks.unblock(_address(ip), actor=request.user.get_username()):
            raise NotFound("That address is not blocked.")
        return Response(status=204)


def _address(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValidationError({"ip": f"{value!r} is not an IP address"}) from None
