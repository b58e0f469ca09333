"""Accounts: registration, login and logout. Views call these; they send the shop's signals."""

from django.contrib.auth import authenticate, login, logout
from django.contrib.auth.models import AbstractBaseUser, User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from rest_framework.authtoken.models import Token

from shop import signals
from shop.errors import Conflict, ShopError


class LoginFailed(ShopError):
    status_code = 401
    default_code = "invalid_credentials"
    headers = {"WWW-Authenticate": "Token"}


def user_register(*, username: str, email: str, password: str) -> User:
    if User.objects.filter(username__iexact=username).exists():
        raise Conflict("A user with that username already exists.", code="username_taken")
    user = User(username=username, email=email)
    try:
        validate_password(password, user=user)
    except ValidationError as error:
        raise ValidationError({"password": error.messages}) from None
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
            transaction.on_commit(lambda: signals.user_registered.send(sender=User, user=user))
    except IntegrityError:  # the same name registered at the same moment
        raise Conflict("A user with that username already exists.", code="username_taken") from None
    return user


def user_login(*, request: HttpRequest, username: str, password: str) -> tuple[User, Token]:
    """Authenticate, start a session and return the user's API token.

    Every attempt, failed or not, is announced with `login_attempted` (the security monitoring
    counts failures per client address, hence the request).
    """
    user = authenticate(request, username=username, password=password)
    if user is None:
        signals.login_attempted.send(
            sender=User, user=None, success=False, username=username, request=request
        )
        raise LoginFailed("Invalid username or password.")
    token = user_session_start(request=request, user=user)
    signals.login_attempted.send(
        sender=User, user=user, success=True, username=username, request=request
    )
    return user, token


def user_session_start(*, request: HttpRequest, user: User) -> Token:
    """Log the user in on this session and hand out their API token (one per user)."""
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    token, _ = Token.objects.get_or_create(user=user)
    return token


def user_logout(*, request: HttpRequest, user: AbstractBaseUser) -> None:
    """End the session and revoke the API token (token clients log in again)."""
    Token.objects.filter(user=user).delete()
    logout(request)
