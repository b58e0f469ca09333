"""Loading `alertmanager.yml` in Alertmanager 0.25's format, every problem as `file:line`.

`config_load(path, env=os.environ)` returns a `Config` or raises `ConfigError` listing every
problem at once. What the notifier does not support is refused by name, not ignored: an
Alertmanager field outside the supported set ("not supported by the notifier"), a receiver
type other than email, Slack and webhook, and anything Alertmanager itself does not know.

The environment fills in what differs per deployment first (environment.py), so the shipped
file stays a valid Alertmanager file with local defaults.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

from monitoring.configfile import Reader
from monitoring.notify.amtemplate import TemplateSet, is_default_reference
from monitoring.notify.environment import (
    APP_CHANNELS,
    APP_RECEIVER_PATH,
    environment_apply,
    from_env_note,
)
from monitoring.notify.matchers import (
    EQUAL,
    REGEX,
    Matcher,
    MatcherError,
    Matchers,
    parse_matchers,
)
from monitoring.notify.timeintervals import (
    TimeInterval,
    TimeIntervalError,
    check_location,
    parse_days_of_month,
    parse_months,
    parse_time_range,
    parse_weekdays,
    parse_years,
)
from monitoring.rules.gofmt import LABEL_NAME_RE, parse_duration_ms

__all__ = ["Config", "config_load"]


# Fields real Alertmanager 0.25 has that the notifier refuses (rather than call them unknown).
_HTTP_UNSUPPORTED = {
    "oauth2",
    "bearer_token",
    "bearer_token_file",
    "tls_config",
    "proxy_url",
    "no_proxy",
    "proxy_from_environment",
    "proxy_connect_header",
    "follow_redirects",
    "enable_http2",
}
_GLOBAL_UNSUPPORTED = {
    "pagerduty_url",
    "opsgenie_api_url",
    "opsgenie_api_key",
    "opsgenie_api_key_file",
    "wechat_api_url",
    "wechat_api_secret",
    "wechat_api_corp_id",
    "victorops_api_url",
    "victorops_api_key",
    "victorops_api_key_file",
    "telegram_api_url",
    "webex_api_url",
}
_RECEIVER_UNSUPPORTED = {
    "discord_configs",
    "pagerduty_configs",
    "opsgenie_configs",
    "wechat_configs",
    "pushover_configs",
    "victorops_configs",
    "sns_configs",
    "telegram_configs",
    "webex_configs",
}
_EMAIL_UNSUPPORTED = {"tls_config"}
_SLACK_UNSUPPORTED = {
    "fields",
    "short_fields",
    "callback_id",
    "image_url",
    "thumb_url",
    "link_names",
    "mrkdwn_in",
    "actions",
}


@dataclass(frozen=True)
class HTTPConfig:
    """The supported part of Prometheus' HTTP client configuration."""

    authorization_type: str = "Bearer"
    authorization_credentials: str | None = None
    authorization_credentials_file: str | None = None
    basic_auth_username: str | None = None
    basic_auth_password: str | None = None
    basic_auth_password_file: str | None = None


@dataclass(frozen=True)
class GlobalConfig:
    resolve_timeout_ms: int = 300_000
    smtp_from: str | None = None
    smtp_hello: str = "localhost"
    smtp_smarthost: str | None = None  # host:port
    smtp_auth_username: str | None = None
    smtp_auth_password: str | None = None
    smtp_auth_password_file: str | None = None
    smtp_auth_identity: str | None = None
    smtp_auth_secret: str | None = None
    smtp_require_tls: bool = True
    slack_api_url: str | None = None
    slack_api_url_file: str | None = None
    http_config: HTTPConfig = HTTPConfig()


@dataclass(frozen=True)
class EmailConfig:
    """One `email_configs` entry, the global SMTP settings already filled in."""

    to: str
    from_: str
    smarthost: str
    hello: str = "localhost"
    auth_username: str | None = None
    auth_password: str | None = None
    auth_password_file: str | None = None
    auth_identity: str | None = None
    auth_secret: str | None = None
    require_tls: bool = True
    headers: Mapping[str, str] = field(default_factory=dict)  # values are templates
    html: str | None = None  # a template; None: the channel's own HTML part
    text: str | None = None  # a template; None: the channel's own text part
    send_resolved: bool = False


@dataclass(frozen=True)
class SlackConfig:
    """One `slack_configs` entry; `api_url`/`api_url_file` fall back to the global ones.
    `channel` … `icon_url` are templates (None: the channel's own message for that part)."""

    api_url: str | None = None
    api_url_file: str | None = None
    channel: str | None = None
    username: str | None = None
    color: str | None = None
    title: str | None = None
    title_link: str | None = None
    pretext: str | None = None
    text: str | None = None
    footer: str | None = None
    fallback: str | None = None
    icon_emoji: str | None = None
    icon_url: str | None = None
    send_resolved: bool = False
    http_config: HTTPConfig = HTTPConfig()


# SlackConfig's template fields, `channel` … `icon_url`: what the loader reads as templates
# and what the Slack channel renders.
SLACK_TEXT_FIELDS = (
    "channel",
    "username",
    "color",
    "title",
    "title_link",
    "pretext",
    "text",
    "footer",
    "fallback",
    "icon_emoji",
    "icon_url",
)


@dataclass(frozen=True)
class WebhookConfig:
    url: str
    max_alerts: int = 0  # 0: all
    send_resolved: bool = True
    http_config: HTTPConfig = HTTPConfig()

    @property
    def channel(self) -> str | None:
        """ "sms" or "dashboard" for a webhook to the app's receiver; None for a plain one."""
        path = urlsplit(self.url).path
        if path.startswith(APP_RECEIVER_PATH):
            name = path[len(APP_RECEIVER_PATH) :].strip("/")
            return name if name in APP_CHANNELS else None
        return None


@dataclass(frozen=True)
class Receiver:
    name: str
    email_configs: tuple[EmailConfig, ...] = ()
    slack_configs: tuple[SlackConfig, ...] = ()
    webhook_configs: tuple[WebhookConfig, ...] = ()


@dataclass(frozen=True)
class RouteConfig:
    """One node of the `route` tree as written (inheritance happens in `routing.Route`)."""

    receiver: str | None = None
    group_by: tuple[str, ...] | None = None  # None: inherit; `...` sets group_by_all
    group_by_all: bool = False
    matchers: Matchers = Matchers()
    continue_: bool = False
    mute_time_intervals: tuple[str, ...] = ()
    active_time_intervals: tuple[str, ...] = ()
    group_wait_ms: int | None = None
    group_interval_ms: int | None = None
    repeat_interval_ms: int | None = None
    routes: tuple[RouteConfig, ...] = ()
    line: int = field(default=0, compare=False)  # where it is written, for messages


@dataclass(frozen=True)
class InhibitRule:
    source: Matchers
    target: Matchers
    equal: tuple[str, ...] = ()


@dataclass(frozen=True)
class Config:
    path: str
    global_: GlobalConfig
    route: RouteConfig
    receivers: Mapping[str, Receiver]
    inhibit_rules: tuple[InhibitRule, ...] = ()
    time_intervals: Mapping[str, tuple[TimeInterval, ...]] = field(default_factory=dict)
    templates: tuple[Path, ...] = ()  # the files the globs name
    template_set: TemplateSet = field(default_factory=TemplateSet)  # their `define`s


# --- loading -------------------------------------------------------------------------------


def config_load(
    path: Path | str, *, env: Mapping[str, str] | None = None, text: str | None = None
) -> Config:
    """Parse and validate one alertmanager.yml; `ConfigError` lists every problem."""
    reader = Reader(path, text)
    if reader.root is not None:
        environment_apply(reader.root, os.environ if env is None else env)
    config = _Loader(reader).load() if not reader.errors else None
    reader.raise_if_errors()
    assert config is not None
    return config


class _Loader:
    def __init__(self, reader: Reader):
        self.r = reader
        self.base = Path(reader.path).parent
        self.global_slack_written = False
        self.template_set = TemplateSet()

    # Small typed readers on top of configfile.Reader.

    def fields(
        self,
        node: Node | None,
        where: str,
        supported: set[str],
        alertmanager_only: frozenset[str] | set[str] = frozenset(),
    ) -> dict[str, Node]:
        out = self.r.mapping(node, where, allowed=supported | alertmanager_only)
        for key in sorted(alertmanager_only & set(out)):
            self.r.error(
                self.key_node(node, key), f"{where}: field {key!r} is not supported by the notifier"
            )
            del out[key]
        return out

    def key_node(self, node: Node, key: str) -> Node:
        if isinstance(node, MappingNode):
            for k, _ in node.value:
                if isinstance(k, ScalarNode) and k.value == key:
                    return k
        return node

    def text(self, node: Node | None, where: str) -> str | None:
        if node is None or (isinstance(node, ScalarNode) and node.tag.endswith(":null")):
            return None
        if isinstance(node, ScalarNode) and node.tag.endswith((":int", ":float", ":bool")):
            return node.value  # Go's yaml reads a scalar into a string field as written
        return self.r.string(node, where)

    def boolean(self, node: Node | None, where: str, default: bool) -> bool:
        if node is None:
            return default
        if isinstance(node, ScalarNode) and node.tag.endswith(":bool"):
            return bool(yaml.safe_load(node.value))
        self.r.error(node, f"{where}: expected true or false")
        return default

    def duration(self, node: Node | None, where: str, *, nonzero: bool = False) -> int | None:
        text = self.text(node, where)
        if text is None:
            return None
        value = parse_duration_ms(text)
        if value is None:
            self.r.error(node, f"{where}: {text!r} is not a duration (like 0s, 30s, 5m, 4h)")
        elif nonzero and value == 0:
            self.r.error(node, f"{where} cannot be zero")
            return None
        return value

    def strings(self, node: Node | None, where: str) -> tuple[str, ...]:
        out = []
        for item in self.r.sequence(node, where):
            value = self.text(item, where)
            if value is not None:
                out.append(value)
        return tuple(out)

    def url(self, node: Node | None, where: str) -> str | None:
        value = self.text(node, where)
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            problem = f"{value!r} is not an http(s) URL with a host{from_env_note(node)}"
            self.r.error(node, f"{where}: {problem}")
            return None
        return value

    def label_name(self, node: Node, where: str) -> str | None:
        name = self.text(node, where)
        if name is not None and not LABEL_NAME_RE.match(name):
            self.r.error(node, f"{where}: invalid label name {name!r}")
            return None
        return name

    def file(self, node: Node | None, where: str) -> str | None:
        value = self.text(node, where)
        return str(self.base / value) if value else None

    # The sections.

    def load(self) -> Config | None:
        root = self.r.root
        top = self.fields(
            root,
            "top level",
            {
                "global",
                "route",
                "receivers",
                "inhibit_rules",
                "templates",
                "time_intervals",
                "mute_time_intervals",
            },
        )
        global_ = self.global_config(top.get("global"))
        templates = self.templates(top.get("templates"))
        receivers = self.receivers(top.get("receivers"), global_)
        intervals = self.time_intervals(top)
        inhibit_rules = tuple(
            rule
            for i, node in enumerate(self.r.sequence(top.get("inhibit_rules"), "inhibit_rules"))
            if (rule := self.inhibit_rule(node, f"inhibit_rules[{i}]")) is not None
        )
        if "route" not in top:
            self.r.error(root, "no routes provided (a `route:` with a default receiver)")
            return None
        route = self.route(top["route"], "route")
        self.check_root(top["route"], route)
        self.check_references(top["route"], route, receivers, intervals)
        return Config(
            path=self.r.path,
            global_=global_,
            route=route,
            receivers=receivers,
            inhibit_rules=inhibit_rules,
            time_intervals=intervals,
            templates=templates,
            template_set=self.template_set,
        )

    def http_config(self, node: Node | None, where: str) -> HTTPConfig:
        if node is None:
            return HTTPConfig()
        f = self.fields(node, where, {"authorization", "basic_auth"}, _HTTP_UNSUPPORTED)
        auth = self.fields(
            f.get("authorization"),
            f"{where}.authorization",
            {"type", "credentials", "credentials_file"},
        )
        basic = self.fields(
            f.get("basic_auth"), f"{where}.basic_auth", {"username", "password", "password_file"}
        )
        for section, name, a, b in (
            (auth, "authorization", "credentials", "credentials_file"),
            (basic, "basic_auth", "password", "password_file"),
        ):
            if a in section and b in section:
                self.r.error(section[b], f"{where}.{name}: at most one of {a} & {b}")
        if auth and basic:
            self.r.error(node, f"{where}: at most one of basic_auth & authorization")
        kind = self.text(auth.get("type"), f"{where}.authorization.type") or "Bearer"
        if kind.lower() == "basic":
            self.r.error(auth["type"], f"{where}.authorization.type: use basic_auth for Basic")
        return HTTPConfig(
            authorization_type=kind,
            authorization_credentials=self.text(auth.get("credentials"), where),
            authorization_credentials_file=self.file(auth.get("credentials_file"), where),
            basic_auth_username=self.text(basic.get("username"), where),
            basic_auth_password=self.text(basic.get("password"), where),
            basic_auth_password_file=self.file(basic.get("password_file"), where),
        )

    def global_config(self, node: Node | None) -> GlobalConfig:
        supported = {
            "resolve_timeout",
            "http_config",
            "smtp_from",
            "smtp_hello",
            "smtp_smarthost",
            "smtp_auth_username",
            "smtp_auth_password",
            "smtp_auth_password_file",
            "smtp_auth_identity",
            "smtp_auth_secret",
            "smtp_require_tls",
            "slack_api_url",
            "slack_api_url_file",
        }
        f = self.fields(node, "global", supported, _GLOBAL_UNSUPPORTED)
        # A global Slack URL that is written but wrong is reported once, not per receiver.
        self.global_slack_written = "slack_api_url" in f or "slack_api_url_file" in f
        for a, b in (
            ("slack_api_url", "slack_api_url_file"),
            ("smtp_auth_password", "smtp_auth_password_file"),
        ):
            if a in f and b in f:
                self.r.error(f[b], f"global: at most one of {a} & {b} must be configured")
        strings = supported - {"resolve_timeout", "http_config", "smtp_require_tls"}
        text = {key: self.text(f.get(key), f"global.{key}") for key in strings}
        return GlobalConfig(
            resolve_timeout_ms=self.duration(f.get("resolve_timeout"), "global.resolve_timeout")
            if "resolve_timeout" in f
            else GlobalConfig.resolve_timeout_ms,
            smtp_from=text["smtp_from"],
            smtp_hello=text["smtp_hello"] or "localhost",
            smtp_smarthost=self.smarthost(f.get("smtp_smarthost"), "global.smtp_smarthost"),
            smtp_auth_username=text["smtp_auth_username"],
            smtp_auth_password=text["smtp_auth_password"],
            smtp_auth_password_file=self.file(f.get("smtp_auth_password_file"), "global"),
            smtp_auth_identity=text["smtp_auth_identity"],
            smtp_auth_secret=text["smtp_auth_secret"],
            smtp_require_tls=self.boolean(
                f.get("smtp_require_tls"), "global.smtp_require_tls", True
            ),
            slack_api_url=self.url(f.get("slack_api_url"), "global.slack_api_url"),
            slack_api_url_file=self.file(f.get("slack_api_url_file"), "global"),
            http_config=self.http_config(f.get("http_config"), "global.http_config"),
        )

    def smarthost(self, node: Node | None, where: str) -> str | None:
        value = self.text(node, where)
        if value is None:
            return None
        host, sep, port = value.rpartition(":")
        if not sep or not port:
            self.r.error(
                node, f"{where}: address {value!r}: port cannot be empty{from_env_note(node)}"
            )
            return None
        return value

    def receivers(self, node: Node | None, global_: GlobalConfig) -> dict[str, Receiver]:
        out: dict[str, Receiver] = {}
        for i, item in enumerate(self.r.sequence(node, "receivers")):
            where = f"receivers[{i}]"
            supported = {"name", "email_configs", "slack_configs", "webhook_configs"}
            f = self.fields(item, where, supported, _RECEIVER_UNSUPPORTED)
            name = self.text(f.get("name"), f"{where}.name")
            if not name:
                self.r.error(item, f"{where}: missing name in receiver")
                continue
            where = f"receiver {name!r}"
            if name in out:
                self.r.error(f["name"], f"notification config name {name!r} is not unique")
            emails = self.items(f.get("email_configs"), where, "email_configs", global_, self.email)
            slacks = self.items(f.get("slack_configs"), where, "slack_configs", global_, self.slack)
            hooks = self.items(
                f.get("webhook_configs"), where, "webhook_configs", global_, self.webhook
            )
            out[name] = Receiver(name, emails, slacks, hooks)
        return out

    def items(
        self,
        node: Node | None,
        where: str,
        key: str,
        global_: GlobalConfig,
        parse: Callable[[Node, str, GlobalConfig], Any],
    ) -> tuple:
        parsed = (
            parse(item, f"{where} {key}[{i}]", global_)
            for i, item in enumerate(self.r.sequence(node, f"{where}.{key}"))
        )
        return tuple(p for p in parsed if p is not None)

    def email(self, node: Node, where: str, g: GlobalConfig) -> EmailConfig | None:
        supported = {
            "send_resolved",
            "to",
            "from",
            "hello",
            "smarthost",
            "auth_username",
            "auth_password",
            "auth_password_file",
            "auth_secret",
            "auth_identity",
            "headers",
            "html",
            "text",
            "require_tls",
        }
        f = self.fields(node, where, supported, _EMAIL_UNSUPPORTED)
        text = {key: self.text(f.get(key), f"{where}.{key}") for key in supported - {"headers"}}
        for key in ("html", "text"):
            text[key] = self.template(f.get(key), text[key], f"{where}.{key}")
        if not text["to"]:
            self.r.error(node, f"{where}: missing to address in email config")
        smarthost = self.smarthost(f.get("smarthost"), f"{where}.smarthost") or g.smtp_smarthost
        if smarthost is None:
            self.r.error(node, f"{where}: no global SMTP smarthost set")
        sender = text["from"] or g.smtp_from
        if not sender:
            self.r.error(node, f"{where}: no global SMTP from set")
        headers: dict[str, str] = {}
        header_node = f.get("headers")
        for name, value in self.r.mapping(
            header_node, f"{where}.headers", allowed=_AnyKey()
        ).items():
            canonical = "-".join(part.capitalize() for part in name.split("-"))
            if canonical in headers:
                self.r.error(value, f"{where}: duplicate header {canonical!r} in email config")
            header = self.text(value, f"{where}.headers.{name}") or ""
            header = self.template(value, header, f"{where}.headers.{name}")
            if header is not None:  # Alertmanager's default subject: our own
                headers[canonical] = header
        if not (text["to"] and smarthost and sender):
            return None
        password, password_file = (
            text["auth_password"],
            self.file(f.get("auth_password_file"), where),
        )
        if password and password_file:
            self.r.error(node, f"{where}: at most one of auth_password & auth_password_file")
        if not password and not password_file:
            password, password_file = g.smtp_auth_password, g.smtp_auth_password_file
        return EmailConfig(
            to=text["to"],
            from_=sender,
            smarthost=smarthost,
            hello=text["hello"] or g.smtp_hello,
            auth_username=text["auth_username"] or g.smtp_auth_username,
            auth_password=password,
            auth_password_file=password_file,
            auth_identity=text["auth_identity"] or g.smtp_auth_identity,
            auth_secret=text["auth_secret"] or g.smtp_auth_secret,
            require_tls=self.boolean(f.get("require_tls"), where, g.smtp_require_tls),
            headers=headers,
            html=text["html"],
            text=text["text"],
            send_resolved=self.boolean(f.get("send_resolved"), where, False),
        )

    def slack(self, node: Node, where: str, g: GlobalConfig) -> SlackConfig | None:
        supported = {*SLACK_TEXT_FIELDS, "send_resolved", "api_url", "api_url_file", "http_config"}
        f = self.fields(node, where, supported, _SLACK_UNSUPPORTED)
        if "api_url" in f and "api_url_file" in f:
            self.r.error(node, f"{where}: at most one of api_url & api_url_file must be configured")
        api_url = self.url(f.get("api_url"), f"{where}.api_url")
        api_url_file = self.file(f.get("api_url_file"), where)
        if "api_url" not in f and "api_url_file" not in f:
            api_url, api_url_file = g.slack_api_url, g.slack_api_url_file
            if api_url is None and api_url_file is None and not self.global_slack_written:
                self.r.error(
                    node, f"{where}: no global Slack API URL set either inline or in a file"
                )
                return None
        return SlackConfig(
            api_url=api_url,
            api_url_file=api_url_file,
            send_resolved=self.boolean(f.get("send_resolved"), where, False),
            http_config=self.http_config(f.get("http_config"), f"{where}.http_config")
            if "http_config" in f
            else g.http_config,
            **{
                key: self.template(f.get(key), self.text(f.get(key), f"{where}.{key}"), where, key)
                for key in SLACK_TEXT_FIELDS
            },
        )

    def webhook(self, node: Node, where: str, g: GlobalConfig) -> WebhookConfig | None:
        f = self.fields(node, where, {"send_resolved", "url", "max_alerts", "http_config"})
        url = self.url(f.get("url"), f"{where}.url")
        if "url" not in f:
            self.r.error(node, f"{where}: missing URL in webhook config")
        max_alerts = 0
        if "max_alerts" in f:
            number = self.r.number(f["max_alerts"], f"{where}.max_alerts")
            if number is not None and (number < 0 or number != int(number)):
                self.r.error(f["max_alerts"], f"{where}.max_alerts: expected a whole number ≥ 0")
            max_alerts = int(number or 0)
        if url is None:
            return None
        return WebhookConfig(
            url=url,
            max_alerts=max_alerts,
            send_resolved=self.boolean(f.get("send_resolved"), where, True),
            http_config=self.http_config(f.get("http_config"), f"{where}.http_config")
            if "http_config" in f
            else g.http_config,
        )

    def matchers(self, f: dict[str, Node], where: str, prefix: str = "") -> Matchers:
        """`matchers` (new syntax) plus the deprecated `match`/`match_re` maps."""
        found: list[Matcher] = []
        for op, key in ((EQUAL, f"{prefix}match"), (REGEX, f"{prefix}match_re")):
            node = f.get(key)
            if node is None:
                continue
            for name, value_node in self.r.mapping(
                node, f"{where}.{key}", allowed=_AnyKey()
            ).items():
                if not LABEL_NAME_RE.match(name):
                    self.r.error(
                        self.key_node(node, name), f"{where}.{key}: invalid label name {name!r}"
                    )
                    continue
                value = self.text(value_node, f"{where}.{key}.{name}")
                if value is None:
                    continue
                try:
                    found.append(Matcher.new(name, op, value))
                except MatcherError as exc:
                    self.r.error(value_node, f"{where}.{key}.{name}: {exc}")
        key = f"{prefix}matchers"
        for item in self.r.sequence(f.get(key), f"{where}.{key}"):
            line = self.text(item, f"{where}.{key}")
            if line is None:
                continue
            try:
                found.extend(parse_matchers(line))
            except MatcherError as exc:
                self.r.error(item, f"{where}.{key}: {exc}")
        return Matchers.of(found)

    def route(self, node: Node, where: str) -> RouteConfig:
        f = self.fields(
            node,
            where,
            {
                "receiver",
                "group_by",
                "match",
                "match_re",
                "matchers",
                "mute_time_intervals",
                "active_time_intervals",
                "continue",
                "routes",
                "group_wait",
                "group_interval",
                "repeat_interval",
            },
        )
        group_by: list[str] | None = None
        group_by_all = False
        seen: set[str] = set()
        for item in self.r.sequence(f.get("group_by"), f"{where}.group_by"):
            label = self.text(item, f"{where}.group_by")
            if label == "...":
                group_by_all = True
            elif label is not None:
                if not LABEL_NAME_RE.match(label):
                    self.r.error(item, f"{where}: invalid label name {label!r} in group_by list")
                elif label in seen:
                    self.r.error(item, f"{where}: duplicated label {label!r} in group_by")
                seen.add(label)
                group_by = [*(group_by or []), label]
        if group_by and group_by_all:
            self.r.error(
                f["group_by"],
                f"{where}: cannot have wildcard group_by (`...`) and other labels at the same time",
            )
        line = node.start_mark.line + 1
        return RouteConfig(
            receiver=self.text(f.get("receiver"), f"{where}.receiver") or None,
            group_by=tuple(group_by) if group_by is not None else None,
            group_by_all=group_by_all,
            matchers=self.matchers(f, where),
            continue_=self.boolean(f.get("continue"), f"{where}.continue", False),
            mute_time_intervals=self.strings(f.get("mute_time_intervals"), where),
            active_time_intervals=self.strings(f.get("active_time_intervals"), where),
            group_wait_ms=self.duration(f.get("group_wait"), f"{where}.group_wait"),
            group_interval_ms=self.duration(
                f.get("group_interval"), f"{where}.group_interval", nonzero=True
            ),
            repeat_interval_ms=self.duration(
                f.get("repeat_interval"), f"{where}.repeat_interval", nonzero=True
            ),
            routes=tuple(
                self.route(child, f"{where}.routes[{i}]")
                for i, child in enumerate(self.r.sequence(f.get("routes"), f"{where}.routes"))
            ),
            line=line,
        )

    def check_root(self, node: Node, route: RouteConfig) -> None:
        if not route.receiver:
            self.r.error(node, "route: root route must specify a default receiver")
        if route.matchers:
            self.r.error(node, "route: root route must not have any matchers")
        if route.mute_time_intervals:
            self.r.error(node, "route: root route must not have any mute time intervals")
        if route.active_time_intervals:
            self.r.error(node, "route: root route must not have any active time intervals")

    def check_references(
        self, node: Node, route: RouteConfig, receivers: Mapping[str, Receiver], intervals
    ) -> None:
        def walk(r: RouteConfig) -> None:
            at = f"{self.r.path}:{r.line}"
            if r.receiver and r.receiver not in receivers:
                self.r.errors.append(f"{at}: undefined receiver {r.receiver!r} used in route")
            for name in (*r.mute_time_intervals, *r.active_time_intervals):
                if name not in intervals:
                    self.r.errors.append(f"{at}: undefined time interval {name!r} used in route")
            for child in r.routes:
                walk(child)

        walk(route)

    def inhibit_rule(self, node: Node, where: str) -> InhibitRule | None:
        keys = {
            f"{side}{kind}"
            for side in ("source_", "target_")
            for kind in ("match", "match_re", "matchers")
        }
        f = self.fields(node, where, keys | {"equal"})
        equal = tuple(
            name
            for item in self.r.sequence(f.get("equal"), f"{where}.equal")
            if (name := self.label_name(item, f"{where}.equal")) is not None
        )
        return InhibitRule(
            source=self.matchers(f, where, "source_"),
            target=self.matchers(f, where, "target_"),
            equal=equal,
        )

    def time_intervals(self, top: dict[str, Node]) -> dict[str, tuple[TimeInterval, ...]]:
        out: dict[str, tuple[TimeInterval, ...]] = {}
        for key in ("mute_time_intervals", "time_intervals"):
            for i, item in enumerate(self.r.sequence(top.get(key), key)):
                where = f"{key}[{i}]"
                f = self.fields(item, where, {"name", "time_intervals"})
                name = self.text(f.get("name"), f"{where}.name")
                if not name:
                    self.r.error(item, f"{where}: missing name")
                    continue
                if name in out:
                    self.r.error(f["name"], f"{where}: time interval {name!r} is not unique")
                entries = self.r.sequence(f.get("time_intervals"), f"{where}.time_intervals")
                out[name] = tuple(self.time_interval(e, f"time interval {name!r}") for e in entries)
        return out

    def time_interval(self, node: Node, where: str) -> TimeInterval:
        f = self.fields(
            node, where, {"times", "weekdays", "days_of_month", "months", "years", "location"}
        )
        parsers = {
            "weekdays": parse_weekdays,
            "days_of_month": parse_days_of_month,
            "months": parse_months,
            "years": parse_years,
        }
        ranges: dict[str, tuple | None] = {}
        for key, parse in parsers.items():
            if key not in f:
                ranges[key] = None
                continue
            parsed = []
            for item in self.r.sequence(f[key], f"{where}.{key}"):
                try:
                    parsed.append(parse(self.text(item, f"{where}.{key}") or ""))
                except TimeIntervalError as exc:
                    self.r.error(item, f"{where}.{key}: {exc}")
            ranges[key] = tuple(parsed)
        times = None
        if "times" in f:
            times = []
            for item in self.r.sequence(f["times"], f"{where}.times"):
                t = self.fields(item, f"{where}.times", {"start_time", "end_time"})
                start = self.text(t.get("start_time"), where)
                end = self.text(t.get("end_time"), where)
                try:
                    if not start or not end:
                        raise TimeIntervalError("both start and end times must be provided")
                    times.append(parse_time_range(start, end))
                except TimeIntervalError as exc:
                    self.r.error(item, f"{where}.times: {exc}")
            times = tuple(times)
        location = None
        if "location" in f:
            try:
                location = check_location(self.text(f["location"], where) or "")
            except TimeIntervalError as exc:
                self.r.error(f["location"], f"{where}.location: {exc}")
        return TimeInterval(times=times, location=location, **ranges)

    def template(
        self, node: Node | None, text: str | None, where: str, key: str = ""
    ) -> str | None:
        """A template-valued field: checked now (a typo is refused at load, not found at the
        first alert); a bare reference to Alertmanager's default template means unset."""
        where = f"{where}.{key}" if key else where
        if text is None or is_default_reference(text):
            return None
        problem = self.template_set.check(text)
        if problem is not None:
            self.r.error(node, f"{where}: {problem}")
        return text

    def templates(self, node: Node | None) -> tuple[Path, ...]:
        """The files the `templates:` globs name, parsed: a file that does not parse is
        refused here, naming the config's line and the template file's own line."""
        paths: list[Path] = []
        written_at: dict[str, Node] = {}  # a file -> the glob that names it
        for item in self.r.sequence(node, "templates"):
            pattern = self.text(item, "templates")
            if pattern is None:
                continue
            full = pattern if os.path.isabs(pattern) else str(self.base / pattern)
            found = [Path(p) for p in sorted(glob.glob(full))]
            written_at.update((str(p), item) for p in found)
            paths.extend(found)
        self.template_set, errors = TemplateSet.load(paths)
        for problem in errors:  # "file:line: …"
            path = next((p for p in written_at if problem.startswith(f"{p}:")), None)
            self.r.error(written_at.get(path) if path else node, f"templates: {problem}")
        return tuple(paths)


class _AnyKey:
    """`allowed` for a mapping whose keys are data (labels, headers), not field names."""

    def __contains__(self, key: object) -> bool:
        return True
