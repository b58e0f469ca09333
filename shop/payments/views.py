from drf_spectacular.utils import extend_schema
from rest_framework import generics, permissions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from shop.api import ShopPagination, error_responses
from shop.payments import selectors, services
from shop.payments.gateways import Card, error_message
from shop.payments.models import Payment
from shop.payments.serializers import (
    PaymentCreateSerializer,
    PaymentFailedSerializer,
    PaymentSerializer,
)


class PaymentListCreateView(generics.ListAPIView):
    permission_classes = (permissions.IsAuthenticated,)
    serializer_class = PaymentSerializer
    pagination_class = ShopPagination

    def get_queryset(self):
        return selectors.payment_list(user=self.request.user)

    @extend_schema(
        request=PaymentCreateSerializer,
        responses={
            201: PaymentSerializer,
            402: PaymentFailedSerializer,
            **error_responses(400, 401, 403, 404, 409, 415),
        },
        description="Pay a pending order. A declined card answers 402 with the stored, "
        "failed payment and the provider's error code.",
    )
    def post(self, request):
        serializer = PaymentCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        card = Card(
            number=data["card_number"],
            exp_month=data["exp_month"],
            exp_year=data["exp_year"],
            cvc=data["cvc"],
        )
        payment = services.payment_process(
            order_id=data["order"], user=request.user, provider=data["provider"], card=card
        )
        body = PaymentSerializer(payment).data
        if payment.status == Payment.Status.SUCCEEDED:
            return Response(body, status=status.HTTP_201_CREATED)
        failure = {
            "detail": error_message(payment.error_code),
            "code": payment.error_code,
            "payment": body,
        }
        return Response(failure, status=status.HTTP_402_PAYMENT_REQUIRED)


class PaymentDetailView(APIView):
    permission_classes = (permissions.IsAuthenticated,)

    @extend_schema(responses={200: PaymentSerializer, **error_responses(401, 403, 404)})
    def get(self, request, pk: int):
        payment = selectors.payment_get(user=request.user, payment_id=pk)
        return Response(PaymentSerializer(payment).data)
