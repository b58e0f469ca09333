from drf_spectacular.utils import extend_schema
from rest_framework import generics, permissions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from shop.api import ShopPagination, error_responses
from shop.errors import Conflict
from shop.orders import selectors, services
from shop.orders.models import Order
from shop.orders.serializers import OrderCreateSerializer, OrderSerializer, OrderStatusSerializer

# What a customer may still cancel themselves; later steps need staff.
CUSTOMER_CANCELLABLE = frozenset({Order.Status.PENDING, Order.Status.PAID})


class OrderListCreateView(generics.ListAPIView):
    permission_classes = (permissions.IsAuthenticated,)
    serializer_class = OrderSerializer
    pagination_class = ShopPagination

    def get_queryset(self):
        return selectors.order_list(user=self.request.user)

    @extend_schema(
        request=OrderCreateSerializer,
        responses={201: OrderSerializer, **error_responses(400, 401, 403, 409, 415)},
    )
    def post(self, request):
        serializer = OrderCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        items = [(i["product"], i["quantity"]) for i in serializer.validated_data["items"]]
        order = services.order_create(user=request.user, items=items)
        order = selectors.order_get(user=request.user, order_id=order.pk)
        return Response(OrderSerializer(order).data, status=status.HTTP_201_CREATED)


class OrderDetailView(APIView):
    permission_classes = (permissions.IsAuthenticated,)

    @extend_schema(responses={200: OrderSerializer, **error_responses(401, 403, 404)})
    def get(self, request, pk: int):
        return Response(OrderSerializer(selectors.order_get(user=request.user, order_id=pk)).data)


class OrderCancelView(APIView):
    permission_classes = (permissions.IsAuthenticated,)

    @extend_schema(
        request=None, responses={200: OrderSerializer, **error_responses(401, 403, 404, 409)}
    )
    def post(self, request, pk: int):
        order = selectors.order_get(user=request.user, order_id=pk)
        staff_only = Order.Status.CANCELLED in services.TRANSITIONS[order.status]
        if staff_only and not request.user.is_staff and order.status not in CUSTOMER_CANCELLABLE:
            raise Conflict(
                f"An order that is {order.status} can only be cancelled by staff.",
                code="invalid_transition",
            )
        services.order_transition(
            order_id=order.pk, status=Order.Status.CANCELLED, reason="cancelled"
        )
        return Response(OrderSerializer(selectors.order_get(user=request.user, order_id=pk)).data)


class OrderStatusView(APIView):
    """Staff move orders along: processing, shipped, delivered (or cancelled, failed)."""

    permission_classes = (permissions.IsAdminUser,)

    @extend_schema(
        request=OrderStatusSerializer,
        responses={200: OrderSerializer, **error_responses(400, 401, 403, 404, 409, 415)},
    )
    def post(self, request, pk: int):
        serializer = OrderStatusSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.order_transition(order_id=pk, **serializer.validated_data)
        return Response(OrderSerializer(selectors.order_get(user=request.user, order_id=pk)).data)
