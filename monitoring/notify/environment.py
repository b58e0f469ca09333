"""Deployment endpoints and secrets from the environment, put into alertmanager.yml's node tree.

One function, `environment_apply`, serves both ways of running: the embedded notifier applies
it when it loads the file, and `config_render` writes the result for real Alertmanager (which
cannot read the environment and has no `*_file` field for an SMTP host or a webhook URL). The
shipped file keeps local defaults and stays valid for `amtool check-config` unchanged.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from monitoring.configfile import Reader

# The app's Alertmanager receiver. A webhook under it names one of our channels beside
# Alertmanager's format: real Alertmanager posts there (the app delivers), the embedded
# notifier delivers the channel itself.
APP_RECEIVER_PATH = "/api/monitoring/alertmanager/"
APP_CHANNELS = ("sms", "dashboard")
DEADMANS_SWITCH = "deadmans-switch"  # the receiver whose webhook URL is WATCHDOG_WEBHOOK_URL


def environment_apply(root: Node | None, env: Mapping[str, str]) -> None:
    """Put the deployment's endpoints and secrets into the node tree (in place).

    EMAIL_HOST/EMAIL_PORT → global.smtp_smarthost; SLACK_WEBHOOK_URL → global.slack_api_url;
    WATCHDOG_WEBHOOK_URL → the url of the `deadmans-switch` receiver's webhooks; APP_URL (and
    MONITORING_TOKEN as a bearer credential) → webhooks to the app's receiver.
    """
    if not isinstance(root, MappingNode):
        return
    top = _pairs(root)
    global_node = top.get("global")
    if env.get("EMAIL_HOST") or env.get("SLACK_WEBHOOK_URL"):
        if not isinstance(global_node, MappingNode):
            global_node = MappingNode("tag:yaml.org,2002:map", [], root.start_mark, root.end_mark)
            root.value.insert(0, (_scalar("global", root), global_node))
        if env.get("EMAIL_HOST"):
            port = env.get("EMAIL_PORT") or "25"
            _set(global_node, "smtp_smarthost", f"{env['EMAIL_HOST']}:{port}", "EMAIL_HOST")
        if env.get("SLACK_WEBHOOK_URL"):
            _drop(global_node, "slack_api_url_file")
            _set(global_node, "slack_api_url", env["SLACK_WEBHOOK_URL"], "SLACK_WEBHOOK_URL")
    receivers = top.get("receivers")
    for receiver in receivers.value if isinstance(receivers, SequenceNode) else ():
        if not isinstance(receiver, MappingNode):
            continue
        fields = _pairs(receiver)
        name = fields.get("name")
        webhooks = fields.get("webhook_configs")
        for hook in webhooks.value if isinstance(webhooks, SequenceNode) else ():
            url = _pairs(hook).get("url") if isinstance(hook, MappingNode) else None
            if not isinstance(url, ScalarNode):
                continue
            if isinstance(name, ScalarNode) and name.value == DEADMANS_SWITCH:
                if env.get("WATCHDOG_WEBHOOK_URL"):
                    _set(hook, "url", env["WATCHDOG_WEBHOOK_URL"], "WATCHDOG_WEBHOOK_URL")
            elif APP_RECEIVER_PATH in url.value:
                if env.get("APP_URL"):
                    tail = url.value[url.value.index(APP_RECEIVER_PATH) :]
                    _set(hook, "url", env["APP_URL"].rstrip("/") + tail, "APP_URL")
                if env.get("MONITORING_TOKEN"):
                    http = _child_mapping(hook, "http_config")
                    # The app takes the bearer token only; Alertmanager refuses a second kind.
                    for other in ("basic_auth", "bearer_token", "bearer_token_file", "oauth2"):
                        _drop(http, other)
                    auth = _child_mapping(http, "authorization")
                    _drop(auth, "credentials_file")
                    _set(auth, "credentials", env["MONITORING_TOKEN"], "MONITORING_TOKEN")


class _EnvScalar(ScalarNode):
    """A value from the environment, placed (for messages) where the file had the default."""

    def __init__(self, value: str, variable: str, near: Node):
        super().__init__("tag:yaml.org,2002:str", value, near.start_mark, near.end_mark)
        self.variable = variable


def from_env_note(node: Node | None) -> str:
    """' (from $VAR)' for a value the environment put there, for error messages."""
    return f" (from ${node.variable})" if isinstance(node, _EnvScalar) else ""


def _scalar(value: str, near: Node | None = None) -> ScalarNode:
    mark = near.start_mark if near is not None else None
    return ScalarNode("tag:yaml.org,2002:str", value, mark, mark)


def _pairs(node: MappingNode) -> dict[str, Node]:
    return {k.value: v for k, v in node.value if isinstance(k, ScalarNode)}


def _set(node: MappingNode, key: str, value: str, variable: str) -> None:
    """`key: value` in the mapping, the value marked as coming from `$variable`."""
    for i, (k, old) in enumerate(node.value):
        if isinstance(k, ScalarNode) and k.value == key:
            node.value[i] = (k, _EnvScalar(value, variable, old))
            return
    node.value.append((_scalar(key, node), _EnvScalar(value, variable, node)))


def _drop(node: MappingNode, key: str) -> None:
    node.value[:] = [
        (k, v) for k, v in node.value if not (isinstance(k, ScalarNode) and k.value == key)
    ]


def _child_mapping(node: MappingNode, key: str) -> MappingNode:
    child = _pairs(node).get(key)
    if not isinstance(child, MappingNode):
        child = MappingNode("tag:yaml.org,2002:map", [], node.start_mark, node.end_mark)
        _drop(node, key)
        node.value.append((_scalar(key, node), child))
    return child


def config_render(path: Path | str, env: Mapping[str, str] | None = None) -> str:
    """The shipped file with the environment applied, for real Alertmanager (comments go).

    ConfigError when a webhook to the app's receiver would go without credentials: the app
    answers 401, which Alertmanager does not retry, so SMS and dashboard notifications would
    be dropped (the embedded notifier needs none: it delivers those channels itself)."""
    reader = Reader(path)
    reader.raise_if_errors()
    env_ = os.environ if env is None else env
    environment_apply(reader.root, env_)
    _templates_default(reader.root, Path(path).resolve().parent, ack_page(env_))
    _paths_absolute(reader.root, Path(path).resolve().parent)
    for hook in _app_webhooks(reader.root):
        http = _pairs(hook).get("http_config")
        auth = _pairs(http).get("authorization") if isinstance(http, MappingNode) else None
        fields = _pairs(auth) if isinstance(auth, MappingNode) else {}
        if not any(
            isinstance(fields.get(key), ScalarNode) and fields[key].value
            for key in ("credentials", "credentials_file")
        ):
            reader.error(
                hook,
                "a webhook to the app's receiver without credentials: set MONITORING_TOKEN"
                " (make up keeps it in var/monitoring_token); the app would refuse it (401)"
                " and Alertmanager does not retry that",
            )
    reader.raise_if_errors()
    return yaml.serialize(reader.root, Dumper=yaml.SafeDumper)


# What a receiver of the rendered file says where the shipped file leaves it unset: the
# shipped templates (deploy/alertmanager/templates/), since Alertmanager's own Slack text is
# empty and its email cannot carry our links. Each is (the integration, the template its
# file must define, the fields). The embedded notifier keeps its own layout for unset fields.
TEMPLATE_DEFAULTS = (
    (
        "slack_configs",
        "pasargad.slack.title",
        {
            "title": '{{ template "pasargad.slack.title" . }}',
            "text": '{{ template "pasargad.slack.text" . }}{ack}',
        },
    ),
    (
        "email_configs",
        "pasargad.email.top",
        {
            "html": '{{ template "pasargad.email.top" . }}{ack}{{ template "pasargad.email.bottom" . }}'
        },
    ),
)

# Alertmanager's templates cannot sign the one-click acknowledgement link the embedded
# notifier puts in its messages (monitoring.acknowledge.links): a rendered Slack text and
# email link each firing alert to its acknowledgement form on the dashboard instead (staff
# sign in there). `{page}` is the dashboard's alerts page.
ACK_LINKS = {
    "slack_configs": (
        "{{ range .Alerts.Firing }}Acknowledge <{page}#ack={{ .Fingerprint }}"
        "|{{ .Labels.alertname }}{{ if .Labels.instance }} on {{ .Labels.instance }}"
        "{{ end }}>\n{{ end }}"
    ),
    "email_configs": (
        '{{ if .Alerts.Firing }}<h2 style="font-size:16px;margin:16px 0 4px;">Acknowledge</h2>'
        '<ul>{{ range .Alerts.Firing }}<li><a href="{page}#ack={{ .Fingerprint }}">'
        "{{ .Labels.alertname }}{{ if .Labels.instance }} on {{ .Labels.instance }}{{ end }}"
        "</a></li>{{ end }}</ul>{{ end }}"
    ),
}


def ack_page(env: Mapping[str, str]) -> str:
    """The dashboard's alerts page, where staff acknowledge (NOTIFY_DASHBOARD_URL, else the
    site's SITE_URL + /dashboard/), or "" when neither is set. Characters that would break a
    link, an HTML attribute or a Go template are percent-encoded."""
    dashboard = env.get("NOTIFY_DASHBOARD_URL", "")
    if not dashboard and env.get("SITE_URL"):
        dashboard = env["SITE_URL"].rstrip("/") + "/dashboard/"
    if not dashboard:
        return ""
    return quote(dashboard.rstrip("/") + "/alerts/", safe=":/?&=%;,@+$!~*()[]-._")


def _templates_default(root: Node | None, base: Path, ack_page: str = "") -> None:
    """Unset Slack `title`/`text` and email `html` point at the shipped templates, when the
    file's `templates` globs (relative to `base`) load a file defining them (a user's own
    file gets nothing); with `ack_page`, each links every firing alert to its
    acknowledgement form."""
    receivers = _pairs(root).get("receivers") if isinstance(root, MappingNode) else None
    if not isinstance(receivers, SequenceNode):
        return
    defined = _templates_defined(root, base)
    for kind, needed, fields in TEMPLATE_DEFAULTS:
        if needed not in defined:
            continue
        ack = ACK_LINKS[kind].replace("{page}", ack_page) if ack_page else ""
        for receiver in receivers.value:
            configs = _pairs(receiver).get(kind) if isinstance(receiver, MappingNode) else None
            for config in configs.value if isinstance(configs, SequenceNode) else ():
                if not isinstance(config, MappingNode):
                    continue
                for key, value in fields.items():
                    if key not in _pairs(config):
                        value = value.replace("{ack}", ack)
                        config.value.append((_scalar(key, config), _scalar(value, config)))


def _templates_defined(root: MappingNode, base: Path) -> set[str]:
    """The names the file's template globs define."""
    names: set[str] = set()
    globs = _pairs(root).get("templates")
    for item in globs.value if isinstance(globs, SequenceNode) else ():
        if isinstance(item, ScalarNode) and item.value:
            for name in glob.glob(os.path.join(base, item.value)):
                text = Path(name).read_text(errors="replace")
                names.update(re.findall(r'\{\{-?\s*define\s+"([^"]+)"', text))
    return names


def placeholders_left(rendered: str) -> list[str]:
    """The variables whose shipped placeholder (`https://….invalid/set-VARIABLE`) is still in
    a rendered file: those endpoints are unreachable until the variable is set."""
    return sorted(set(re.findall(r"\.invalid/set-([A-Z_]+)", rendered)))


def _paths_absolute(node: Node | None, base: Path) -> None:
    """Template globs and `*_file` paths made absolute (in place): both are relative to the
    file that names them, and the rendered copy lives elsewhere ($VAR_DIR)."""
    if isinstance(node, SequenceNode):
        for item in node.value:
            _paths_absolute(item, base)
        return
    if not isinstance(node, MappingNode):
        return
    for i, (key, value) in enumerate(node.value):
        name = key.value if isinstance(key, ScalarNode) else ""
        if name == "templates" and isinstance(value, SequenceNode):
            value.value[:] = [_absolute(item, base) for item in value.value]
        elif name.endswith("_file") and isinstance(value, ScalarNode):
            node.value[i] = (key, _absolute(value, base))
        else:
            _paths_absolute(value, base)


def _absolute(node: Node, base: Path) -> Node:
    if not isinstance(node, ScalarNode) or not node.value or os.path.isabs(node.value):
        return node
    return ScalarNode(node.tag, str(base / node.value), node.start_mark, node.end_mark)


def _app_webhooks(root: Node | None) -> list[MappingNode]:
    receivers = _pairs(root).get("receivers") if isinstance(root, MappingNode) else None
    hooks = []
    for receiver in receivers.value if isinstance(receivers, SequenceNode) else ():
        webhooks = (
            _pairs(receiver).get("webhook_configs") if isinstance(receiver, MappingNode) else None
        )
        for hook in webhooks.value if isinstance(webhooks, SequenceNode) else ():
            url = _pairs(hook).get("url") if isinstance(hook, MappingNode) else None
            if isinstance(url, ScalarNode) and APP_RECEIVER_PATH in url.value:
                hooks.append(hook)
    return hooks
