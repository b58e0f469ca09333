from drf_spectacular.utils import extend_schema
from rest_framework import permissions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from shop.accounts import services
from shop.accounts.serializers import (
    AuthResultSerializer,
    LoginSerializer,
    RegisterSerializer,
    UserSerializer,
)
from shop.api import error_responses


class RegisterView(APIView):
    # No session authentication here: a stale session cookie must not demand a CSRF token.
    authentication_classes = ()
    permission_classes = (permissions.AllowAny,)

    @extend_schema(
        request=RegisterSerializer,
        responses={201: AuthResultSerializer, **error_responses(400, 409, 415)},
        auth=[],
    )
    def post(self, request):
        serializer = RegisterSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = services.user_register(**serializer.validated_data)
        token = services.user_session_start(request=request._request, user=user)
        body = {"user": UserSerializer(user).data, "token": token.key}
        return Response(body, status=status.HTTP_201_CREATED)


class LoginView(APIView):
    authentication_classes = ()
    permission_classes = (permissions.AllowAny,)

    @extend_schema(
        request=LoginSerializer,
        responses={200: AuthResultSerializer, **error_responses(400, 401, 415)},
        auth=[],
    )
    def post(self, request):
        serializer = LoginSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user, token = services.user_login(request=request._request, **serializer.validated_data)
        return Response({"user": UserSerializer(user).data, "token": token.key})


class LogoutView(APIView):
    permission_classes = (permissions.IsAuthenticated,)

    @extend_schema(request=None, responses={204: None, **error_responses(401, 403)})
    def post(self, request):
        services.user_logout(request=request._request, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    permission_classes = (permissions.IsAuthenticated,)

    @extend_schema(responses={200: UserSerializer, **error_responses(401, 403)})
    def get(self, request):
        return Response(UserSerializer(request.user).data)
