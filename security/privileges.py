"""Privilege escalation audit: a user gaining staff or superuser status, a group or a
permission (directly, or through a group gaining a permission) is a `privilege_granted` event
naming who changed what for whom. The actor is the signed-in user of the current request, else
the operating-system user (a management command, a shell)."""

from __future__ import annotations

import getpass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db.models.signals import m2m_changed, post_save, pre_save
from django.dispatch import receiver

from monitoring.logging.context import request_var
from security import events

User = get_user_model()
_FLAGS = ("is_staff", "is_superuser")


def actor() -> tuple[str, str | None]:
    """(who, from which address) is making the change."""
    request = request_var.get()
    if request is not None:
        user = request.__dict__.get("user")
        ip = getattr(request, "client_ip", None)
        if user is not None and user.is_authenticated:
            return user.get_username(), ip
        return "anonymous", ip
    try:
        return f"system:{getpass.getuser()}", None
    except (KeyError, OSError):
        return "system", None


def _granted(username: str, what: str, detail: dict) -> None:
    who, ip = actor()
    events.record(
        "privilege_granted",
        ip=ip,
        username=username,
        actor=who,
        detail={"granted": what, **detail},
    )


@receiver(pre_save, sender=User, dispatch_uid="security.user_flags_before")
def _remember_flags(sender, instance, **kwargs) -> None:
    if instance.pk is None:
        instance._security_flags = (False, False)
        return
    old = sender.objects.filter(pk=instance.pk).values_list(*_FLAGS).first()
    instance._security_flags = old or (False, False)


@receiver(post_save, sender=User, dispatch_uid="security.user_flags_after")
def _flags_changed(sender, instance, **kwargs) -> None:
    before = getattr(instance, "_security_flags", (False, False))
    for flag, was in zip(_FLAGS, before, strict=True):
        if getattr(instance, flag) and not was:
            _granted(instance.get_username(), flag, {})


@receiver(m2m_changed, sender=User.groups.through, dispatch_uid="security.user_groups")
def _groups_changed(sender, instance, action, reverse, model, pk_set, **kwargs) -> None:
    if action != "post_add" or not pk_set:
        return
    if reverse:  # group.user_set.add(users)
        for user in User.objects.filter(pk__in=pk_set):
            _granted(user.get_username(), f"group:{instance.name}", {})
    else:
        for group in Group.objects.filter(pk__in=pk_set):
            _granted(instance.get_username(), f"group:{group.name}", {})


@receiver(
    m2m_changed, sender=User.user_permissions.through, dispatch_uid="security.user_permissions"
)
def _permissions_changed(sender, instance, action, reverse, model, pk_set, **kwargs) -> None:
    if action != "post_add" or not pk_set:
        return
    if reverse:
        codename = instance.codename
        for user in User.objects.filter(pk__in=pk_set):
            _granted(user.get_username(), f"permission:{codename}", {})
    else:
        for perm in Permission.objects.filter(pk__in=pk_set):
            _granted(instance.get_username(), f"permission:{perm.codename}", {})


@receiver(m2m_changed, sender=Group.permissions.through, dispatch_uid="security.group_permissions")
def _group_permissions_changed(sender, instance, action, reverse, model, pk_set, **kwargs) -> None:
    if action != "post_add" or not pk_set or reverse:
        return
    for perm in Permission.objects.filter(pk__in=pk_set):
        _granted(f"group:{instance.name}", f"permission:{perm.codename}", {})
