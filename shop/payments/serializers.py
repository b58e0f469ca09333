from rest_framework import serializers

from shop.orders.serializers import MAX_ID
from shop.payments.gateways import GATEWAYS
from shop.payments.models import Payment


class PaymentCreateSerializer(serializers.Serializer):
    order = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    provider = serializers.ChoiceField(choices=sorted(GATEWAYS), default="sandbox")
    # Spaces and dashes as people type them are accepted; the digits go to the gateway,
    # which judges the number itself (a failed Luhn check is a declined payment, as on Stripe).
    card_number = serializers.RegexField(
        r"^[0-9 -]{12,23}\Z",
        write_only=True,
        error_messages={"invalid": "A card number is 12 to 19 digits."},
    )
    exp_month = serializers.IntegerField(min_value=1, max_value=12)
    exp_year = serializers.IntegerField(min_value=2000, max_value=2100)
    cvc = serializers.RegexField(
        r"^[0-9]{1,4}\Z", write_only=True, error_messages={"invalid": "A CVC is digits only."}
    )

    def validate_card_number(self, value: str) -> str:
        digits = value.replace(" ", "").replace("-", "")
        if not 12 <= len(digits) <= 19:
            raise serializers.ValidationError("A card number is 12 to 19 digits.")
        return digits


class PaymentSerializer(serializers.ModelSerializer):
    order_number = serializers.CharField(source="order.number", read_only=True)

    class Meta:
        model = Payment
        fields = [
            "id",
            "order",
            "order_number",
            "provider",
            "amount",
            "currency",
            "status",
            "error_code",
            "card_last4",
            "created_at",
            "captured_at",
        ]
        read_only_fields = fields


class PaymentFailedSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField()
    payment = PaymentSerializer()
