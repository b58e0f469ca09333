from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from shop.api import IsStaffOrReadOnly, ShopPagination, error_responses
from shop.catalog import selectors, services
from shop.catalog.serializers import (
    CategorySerializer,
    ProductSerializer,
    StockReceiptSerializer,
)

WRITE_ERRORS = error_responses(400, 401, 403, 409, 415)


class _CatalogViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Public reads, staff writes. Writes go through the catalog services."""

    permission_classes = (IsStaffOrReadOnly,)
    pagination_class = ShopPagination
    http_method_names = ["get", "post", "put", "patch", "head", "options"]
    lookup_value_converter = "int"

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        instance = self.service_create(serializer.validated_data)
        return Response(self.get_serializer(instance).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        instance = self.get_object()
        partial = kwargs.get("partial", False)
        serializer = self.get_serializer(instance, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        instance = self.service_update(instance, serializer.validated_data)
        return Response(self.get_serializer(instance).data)


@extend_schema_view(
    create=extend_schema(responses={201: CategorySerializer, **WRITE_ERRORS}),
    update=extend_schema(
        responses={200: CategorySerializer, **WRITE_ERRORS, **error_responses(404)}
    ),
    partial_update=extend_schema(
        responses={200: CategorySerializer, **WRITE_ERRORS, **error_responses(404)}
    ),
    retrieve=extend_schema(responses={200: CategorySerializer, **error_responses(404)}),
)
class CategoryViewSet(_CatalogViewSet):
    serializer_class = CategorySerializer

    def get_queryset(self):
        return selectors.category_list()

    def service_create(self, data):
        return services.category_create(name=data["name"], slug=data["slug"])

    def service_update(self, instance, data):
        return services.category_update(category=instance, data=data)


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("category", str, description="Only products in this category slug"),
            OpenApiParameter(
                "low_stock", bool, description="Only products at or below their threshold"
            ),
        ]
    ),
    create=extend_schema(responses={201: ProductSerializer, **WRITE_ERRORS}),
    update=extend_schema(
        responses={200: ProductSerializer, **WRITE_ERRORS, **error_responses(404)}
    ),
    partial_update=extend_schema(
        responses={200: ProductSerializer, **WRITE_ERRORS, **error_responses(404)}
    ),
    retrieve=extend_schema(responses={200: ProductSerializer, **error_responses(404)}),
)
class ProductViewSet(_CatalogViewSet):
    serializer_class = ProductSerializer

    def get_queryset(self):
        user = self.request.user
        return selectors.product_list(
            include_inactive=bool(user and user.is_staff),
            category=self.request.query_params.get("category") or None,
            low_stock=self.request.query_params.get("low_stock") in ("true", "1"),
        )

    def service_create(self, data):
        return services.product_create(data=data)

    def service_update(self, instance, data):
        return services.product_update(product=instance, data=data)

    @extend_schema(
        request=StockReceiptSerializer,
        responses={200: ProductSerializer, **error_responses(400, 401, 403, 404, 409, 415)},
        description="Book a delivery into stock: adds `quantity` units (staff only).",
    )
    @action(detail=True, methods=["post"], permission_classes=[permissions.IsAdminUser])
    def restock(self, request, pk=None):
        serializer = StockReceiptSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        product = services.stock_receive(
            product_id=int(pk), quantity=serializer.validated_data["quantity"]
        )
        return Response(self.get_serializer(product).data)
